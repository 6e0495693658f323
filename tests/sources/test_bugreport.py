"""Bugreports (zip and text) imported to figures computed by hand.

Three generations (scripts/make_source_fixtures.py writes them in dumpstate's and the tools'
exact layouts):

* tokay (Pixel 9, Android 16, 6.1): the default view WITH the Exporter column, -b, meminfo,
  ps; two reports an hour apart, same boot (the world of test_dmabuf_dump.py; in the second
  the game holds three more SurfaceView buffers and 301 is freed);
* lamu (Redmi, Android 13, MediaTek, 5.10): the default view WITHOUT the Exporter column, -b;
* a52q (Galaxy A52, Android 12, 4.19): no sysfs stats, so no -b and no exported total.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from dmaprof.capture.container import load_capture, write_capture
from dmaprof.errors import BadCaptureError
from dmaprof.sources import bugreport as B
from dmaprof.sources.bugreport import parse_bugreport, read_bugreport, user_to_uid
from dmaprof.sources.importer import detect_kind, import_file
from tests.sources.conftest import (
    A52Q,
    LAMU,
    REPORTS,
    SV,
    TOKAY_1,
    TOKAY_2,
    analyzed,
    by_pid,
    keys,
    usage,
    zip_bugreport,
)


def _utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def test_header_props_ps_and_meminfo_of_android16() -> None:
    report = parse_bugreport(TOKAY_1.read_text())
    device = report.device()
    assert device["serial"] == "4B211FDAQ00123"
    assert device["model"] == "Pixel 9"
    assert device["fingerprint"] == (
        "google/tokay/tokay:16/BP2A.250605.031/13578456:user/release-keys"
    )
    assert (device["release"], device["sdk"]) == ("16", 36)
    assert device["kernel_release"] == "6.1.124-android14-11-g2b3c4d5e6f70-ab13203047"
    assert device["boot_id"] == "firstboot:1772433240123"
    # "== dumpstate: 2026-03-02 10:15:30" in Europe/Berlin (CET, UTC+1 until March 29)
    assert report.wallclock == _utc(2026, 3, 2, 9, 15, 30)
    # dumpsys meminfo "Realtime: 8022000" ms (the header's "Uptime: up ... 2 hours, 13 minutes"
    # has minutes only)
    assert (report.uptime_s, report.uptime_source) == (8022.0, "dumpsys meminfo Realtime")
    assert report.meminfo == {
        # DMA-BUF:    27,148K (   16,320K mapped +    10,828K unmapped)
        "dmabuf_bytes": 27148 * 1024,
        "dmabuf_mapped_bytes": 16320 * 1024,
        "dmabuf_unmapped_bytes": 10828 * 1024,
        "dmabuf_heaps_bytes": 27148 * 1024,
        "dmabuf_heaps_pool_bytes": 4096 * 1024,
        # GPU:    12,345K (   11,000K dmabuf +     1,345K private)
        "gpu_bytes": 12345 * 1024,
        "gpu_dmabuf_bytes": 11000 * 1024,
        "gpu_private_bytes": 1345 * 1024,
        "total_ram_bytes": 7824120 * 1024,
    }
    # ps -A -T: one entry per process (threads, TID != PID, dropped), uid from USER
    assert {pid: (e.user, e.uid) for pid, e in report.ps.items()} == {
        1: ("root", 0),
        812: ("system", 1000),
        1040: ("system", 1000),
        2100: ("u0_a194", 10194),
        7001: ("u0_a245", 10245),
    }
    assert report.dmabuf_dump is not None and report.dmabuf_stats is not None
    assert "Dmabuf dump" in report.sections


def test_android16_bugreport_figures() -> None:
    capture, a, report = analyzed(TOKAY_1)
    assert capture.meta["source"]["kind"] == "bugreport"
    assert capture.meta["source"]["dmabuf_formats"] == ["default+exporter", "per_buffer"]
    assert capture.meta["collection"]["wallclock_start"] == int(_utc(2026, 3, 2, 9, 15, 30))
    assert capture.dump == TOKAY_1.read_bytes()  # kept byte for byte
    assert usage(a) == {
        812: (16711680, 8355840),
        1040: (24576000, 12288000),
        2100: (1048677, 524339),  # 401 = 1048677 = 2 x 524338 + 1, the byte to pid 2100
        7001: (8925285, 4468786),
    }
    t = a.totals
    assert (t.buffers, t.bytes, t.userspace_bytes) == (8, 27799653, 25636965)
    assert (t.kernel_only_buffers, t.kernel_only_bytes) == (2, 2162688)
    # the tool's own kernel_rss: 27148 kB exported - 25636965 bytes held -> 2111 kB
    assert t.aosp_kernel_rss_bytes == 2111 * 1024
    apps = {x["uid"]: x for x in report["apps"]}
    # system (1000): composer 8355840 + surfaceflinger 12288000; rss: 101 102 201 202 once
    assert (apps[1000]["label"], apps[1000]["pss_bytes"]) == ("system", 20643840)
    assert apps[1000]["rss_bytes"] == 2 * 8355840 + 2 * 3932160 == 24576000
    # the app's label is its process's full name (CPU INFO's NAME column), not the comm
    assert (apps[10245]["label"], apps[10245]["pss_bytes"]) == ("com.example.game", 4468786)
    assert apps[10194]["processes"] == 1
    p = by_pid(report)[1040]
    assert (p["uid"], p["fds"], p["cgroup"]) == (1000, None, None)
    assert report["cgroups"] == []
    assert report["meminfo"]["dmabuf_bytes"] == 27148 * 1024
    pools = {x["counter"]: x["bytes"] for x in report["pools"]}
    assert pools["dmabuf_dump_b_total"] == 27799653
    assert pools["meminfo_dmabuf"] == 27148 * 1024
    assert keys(report) == {"fd_map_split", "cgroups", "start_times", "anon_references"}
    assert report["totals"]["anon_fds"] is None
    assert report["binder"]["state"] == "not_collected"
    assert report["warnings"] == []


def test_bugreport_zip_is_read_in_place(tmp_path: Path) -> None:
    zipped = zip_bugreport(TOKAY_1, tmp_path / "bugreport-tokay.zip")
    before = sorted(os.listdir(tmp_path))
    assert detect_kind(zipped) == "bugreport"
    capture = import_file(zipped)
    assert sorted(os.listdir(tmp_path)) == before  # nothing extracted
    src = capture.meta["source"]
    assert (src["container"], src["member"]) == ("zip", TOKAY_1.name)
    assert src["sha256"] == hashlib.sha256(TOKAY_1.read_bytes()).hexdigest()
    assert capture.dump == TOKAY_1.read_bytes()
    out = write_capture(capture, tmp_path / "x.dmaprof")
    _c, a, _r = analyzed(TOKAY_1)
    from dmaprof.sources.show import analyze_capture

    a2, _r2 = analyze_capture(load_capture(out))
    assert a2.holdings.equals(a.holdings)


def test_zip_without_main_entry_takes_the_largest_bugreport_txt(tmp_path: Path) -> None:
    zipped = tmp_path / "br.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("bugreport-decoy.txt", "small\n")
        archive.writestr(TOKAY_1.name, TOKAY_1.read_bytes())
    data, member = read_bugreport(zipped)
    assert member == TOKAY_1.name and data == TOKAY_1.read_bytes()


def test_member_over_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zipped = zip_bugreport(TOKAY_1, tmp_path / "br.zip")
    monkeypatch.setattr(B, "MAX_BUGREPORT_BYTES", 1000)
    with pytest.raises(BadCaptureError, match="over the limit"):
        read_bugreport(zipped)


def test_zips_that_are_not_bugreports(tmp_path: Path) -> None:
    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("a.jpg", b"\xff\xd8")
    with pytest.raises(BadCaptureError, match="not a bugreport"):
        detect_kind(other)
    capture = import_file(TOKAY_1)
    path = write_capture(capture, tmp_path / "c.dmaprof")
    with pytest.raises(BadCaptureError, match="already a dmaprof capture"):
        detect_kind(path)


def test_android13_mediatek_bugreport_without_exporter_column() -> None:
    capture, a, report = analyzed(LAMU)
    assert capture.meta["source"]["dmabuf_formats"] == ["default", "per_buffer"]
    assert capture.device["model"] == "Redmi Note 12"
    # Asia/Shanghai is UTC+8: 21:40:07 local
    assert capture.meta["collection"]["wallclock_start"] == int(_utc(2025, 6, 3, 13, 40, 7))
    assert capture.meta["collection"]["uptime_start"] == 86400 + 4 * 3600 + 7 * 60 + 12
    fb, gr1604, cam = 4620288, 1642496, 2097664  # 4512 kB, 1604 kB, 2048 kB + 512 B
    assert usage(a) == {
        611: (3 * fb, 3 * fb // 2),
        # surfaceflinger: 3 framebuffers and 94221 shared by 2, 3 Gralloc buffers alone
        828: (6 * fb + gr1604, 3 * (fb // 2) + gr1604 // 2 + 3 * fb),  # 29364224, 21612544
        977: (gr1604 + cam, gr1604 // 2 + cam // 2),  # 3740160, 1870080
        5120: (cam, cam // 2),  # 2097664, 1048832
    }
    t = a.totals
    # -b: 9 buffers; 150000 (1048576, unnamed) is held by nobody
    assert (t.buffers, t.bytes) == (9, 6 * fb + gr1604 + cam + 1048576)  # 32510464
    assert (t.kernel_only_buffers, t.kernel_only_bytes) == (1, 1048576)
    # no Exporter column: the exporters come from -b
    exporters = {e["exporter"]: (e["buffers"], e["bytes"]) for e in report["exporters"]}
    assert exporters == {"mtk_mm": (8, 30412800), "mtk_mm-uncached": (1, 2097664)}
    apps = {x["uid"]: x["label"] for x in report["apps"]}
    # full names from dumpsys meminfo's "Total PSS by process:" lines
    assert apps == {1000: "system", 1047: "cameraserver", 10098: "com.android.launcher3"}
    names = {p["pid"]: p["display_name"] for p in report["processes"]}
    assert names[611] == "android.hardware.graphics.composer@2.1-service"
    assert names[5120] == "com.android.launcher3"
    assert report["meminfo"]["dmabuf_heaps_pool_bytes"] == 12288 * 1024


def test_android12_bugreport_without_sysfs_stats() -> None:
    capture, a, report = analyzed(A52Q)
    assert capture.meta["source"]["dmabuf_formats"] == ["default"]
    # sizes are kB x 1024: 9001 4096 kB, 9002 1500 kB, 9003 8 kB
    assert usage(a) == {
        733: (4194304 + 1536000, 4194304 + 1536000 // 2),  # 5730304, 4962304
        4410: (1536000 + 8192, 1536000 // 2 + 8192),  # 1544192, 776192
    }
    t = a.totals
    # "Warning: Could not get total exported dmabufs. Kernel size will be 0.": unknown, not 0
    assert t.kernel_only_bytes is None and t.aosp_kernel_rss_bytes is None
    assert t.bytes == 4194304 + 1536000 + 8192
    assert {"sizes_estimated", "kernel_only_list", "exporters"} <= keys(report)
    text = " ".join(report["warnings"])
    assert "Unable to read DMA-BUF sysfs stats from device" in text
    assert "time zone is unknown" in text  # no persist.sys.timezone: the time is taken as UTC
    assert capture.meta["collection"]["wallclock_start"] == int(_utc(2022, 11, 20, 8, 2, 11))


def _ion_era_report() -> str:
    sample = (REPORTS / "dumpsys_meminfo_summary_ion_line_rk3326_android11go.txt").read_text()
    body = "".join(line + "\n" for line in sample.splitlines() if not line.startswith("#"))
    return (
        "========================================================\n"
        "== dumpstate: 2023-10-25 10:00:00\n"
        "========================================================\n\n"
        "Build fingerprint: 'rockchip/rk3326/rk3326:11/RQ3A.211001.001/1:user/release-keys'\n"
        "Kernel: Linux version 4.19.193 (build@host) #1 SMP PREEMPT\n\n"
        "------ DUMPSYS MEMINFO (/system/bin/dumpsys -T 30000 meminfo -a) ------\n" + body
    )


def test_android11_ion_bugreport_gives_totals_only(tmp_path: Path) -> None:
    path = tmp_path / "bugreport-rk3326.txt"
    path.write_text(_ion_era_report())
    capture, a, report = analyzed(path)
    assert a.totals.userspace_bytes == 0 and report["processes"] == []
    # ION:    50,628K (   28,880K mapped +         0K unmapped +    21,748K pools)
    assert report["meminfo"] == {
        "ion_bytes": 50628 * 1024,
        "ion_mapped_bytes": 28880 * 1024,
        "ion_unmapped_bytes": 0,
        "ion_pools_bytes": 21748 * 1024,
        "total_ram_bytes": 8092276 * 1024,
    }
    assert capture.meta["collection"]["uptime_start"] == 849.55  # Realtime: 849550 ms
    assert {"no_dmabuf_dump", "no_dmabuf_dump_b", "no_ps", "no_holders"} <= keys(report)


def test_bugreport_with_nothing_dmabuf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bugreport-empty.txt"
    path.write_text("== dumpstate: 2023-10-25 10:00:00\n------ UPTIME (uptime) ------\n up 1 min\n")
    with pytest.raises(BadCaptureError, match="nothing to import"):
        import_file(path)


def test_meminfo_dmabuf_lines_of_a_real_device() -> None:
    sample = (REPORTS / "dumpsys_meminfo_summary_rockchip_dmabuf_lines.txt").read_text()
    text = "== dumpstate: 2024-01-01 00:00:00\n------ DUMPSYS MEMINFO (dumpsys meminfo) ------\n"
    report = parse_bugreport(text + sample)
    # DMA-BUF:   455,268K (        0K mapped +   455,268K unmapped)
    assert report.meminfo == {
        "dmabuf_bytes": 455268 * 1024,
        "dmabuf_mapped_bytes": 0,
        "dmabuf_unmapped_bytes": 455268 * 1024,
        "dmabuf_heaps_bytes": 89724 * 1024,
        "dmabuf_heaps_pool_bytes": 98980 * 1024,
        "total_ram_bytes": 16071376 * 1024,
    }


def test_section_header_after_dmabuf_dump_may_start_with_a_space() -> None:
    # dmabuf_dump's summary ends with "\n " (a space after the newline)
    text = TOKAY_1.read_text().replace("------ Dmabuf per-buffer", " ------ Dmabuf per-buffer")
    report = parse_bugreport(text)
    assert report.dmabuf_stats is not None and "Total DMA-BUF count: 8" in report.dmabuf_stats
    assert "------" not in (report.dmabuf_dump or "").split("dmabuf total:")[1]


@pytest.mark.parametrize(
    ("user", "uid"),
    [
        ("root", 0),
        ("system", 1000),
        ("u0_a245", 10245),
        ("u10_a3", 1010003),
        ("u0_i7", 99007),
        ("u0_s12", 20012),
        ("u10_system", 1001000),
        ("2000", 2000),
        ("nobody_knows", None),
    ],
)
def test_ps_user_names(user: str, uid: int | None) -> None:
    assert user_to_uid(user) == uid


def test_two_bugreports_of_one_device_share_a_boot() -> None:
    a = import_file(TOKAY_1)
    b = import_file(TOKAY_2)
    assert a.device["serial"] == b.device["serial"]
    assert a.device["boot_id"] == b.device["boot_id"] == "firstboot:1772433240123"
    assert a.device["firstboot"] == b.device["firstboot"] == "1772433240123"
    # 11:15:53 - 10:15:30 local
    assert b.meta["collection"]["wallclock_start"] - a.meta["collection"]["wallclock_start"] == (
        3600 + 23
    )
    _c, _after, _r = analyzed(TOKAY_2)
    names = {n["name"]: n["buffers"] for n in _r["names"]}
    assert names[SV] == 5


def test_full_names_from_a_real_meminfo_and_the_comm_rule() -> None:
    from dmaprof.sources.bugreport import parse_bugreport
    from dmaprof.sources.build import full_name

    # the real "Total RSS by process:" lines of a Rockchip board (fixtures/bugreports)
    sample = (REPORTS / "dumpsys_meminfo_summary_rockchip_dmabuf_lines.txt").read_text()
    text = "== dumpstate: 2024-01-01 00:00:00\n------ DUMPSYS MEMINFO (dumpsys meminfo) ------\n"
    report = parse_bugreport(text + sample)
    names = {pid: c[0][0] for pid, c in report.names.items()}
    assert names[2611] == "com.rockchip.gpadc.yolodemo"
    assert names[796] == "com.android.systemui"
    assert names[625] == "system" and names[331] == "surfaceflinger"
    assert {where for c in report.names.values() for _n, where in c} == {"meminfo"}
    # a comm of 15 bytes is an app name's tail or an executable name's head; a shorter one is
    # whole; a pid reused by another process keeps the comm
    assert full_name("gpadc.yolodemo", "com.rockchip.gpadc.yolodemo") is None  # 14: whole
    assert full_name(".gpadc.yolodemo", "com.rockchip.gpadc.yolodemo") == (
        "com.rockchip.gpadc.yolodemo"
    )
    assert full_name("android.hardwar", "/vendor/bin/hw/android.hardware.gnss-service") == (
        "android.hardware.gnss-service"
    )
    assert full_name("surfaceflinger", "/system/bin/surfaceflinger") == "surfaceflinger"
    assert full_name("om.example.game", "com.other.thing") is None
    assert full_name("N/A", "com.example.game") is None


def test_ps_with_a_name_column_gives_full_names() -> None:
    from dmaprof.sources.bugreport import parse_bugreport

    # `ps -A` (no -T): toybox's default last column is NAME, argv[0]
    text = (
        "== dumpstate: 2024-01-01 00:00:00\n"
        "------ PROCESSES (ps -A) ------\n"
        "USER            PID   PPID     VSZ    RSS WCHAN            ADDR S NAME\n"
        "u0_a245        7001    702 12960428 40120 do_epoll_wait       0 S com.example.game\n"
        "------ 0.1s was the duration of 'PROCESSES' ------\n"
    )
    report = parse_bugreport(text)
    assert report.names == {7001: [("com.example.game", "ps")]}
    assert report.ps[7001].uid == 10245
    # ps -A -T: the last column is CMD, the thread name, which is no full name
    threads = text.replace("NAME\n", "CMD\n").replace("(ps -A)", "(ps -A -T)")
    assert parse_bugreport(threads).names == {}


def test_a_bugreport_without_full_names_says_so() -> None:
    _c, _a, report = analyzed(A52Q)
    [lim] = [x for x in report["limitations"] if x["key"] == "comm_names"]
    assert "droid.launcher3" in lim["message"] and "15-character comm" in lim["message"]


def test_a_cut_name_gives_way_to_one_that_fits() -> None:
    # if a listing cut a name (a `top` line cut at the terminal width), the next list's name
    # for that pid is taken: the first candidate that fits the comm wins
    text = TOKAY_1.read_text().replace(" com.example.game\n", " com.example\n", 1)
    text = text.replace(
        "Total PSS by category:",
        "Total PSS by process:\n    96,000K: com.example.game (pid 7001 "
        "/ activities)\n\nTotal PSS by category:",
        1,
    )
    from dmaprof.sources.bugreport import parse_bugreport
    from dmaprof.sources.build import build_analysis
    from dmaprof.sources.inputs import bugreport_input

    report = parse_bugreport(text)
    assert report.names[7001] == [("com.example", "top"), ("com.example.game", "meminfo")]
    analysis = build_analysis(bugreport_input(report))
    argv0 = dict(zip(analysis.processes["pid"], analysis.processes["argv0"], strict=True))
    assert argv0[7001] == "com.example.game"


def test_full_names_let_the_client_policy_find_vendor_services() -> None:
    """A vendor allocator's comm (`vendor.qti.hard`) matches no service pattern; its full
    name from the bugreport's CPU INFO does, so under --charge client the app that shares a
    buffer with it is charged the whole buffer (4 MiB), the allocator nothing."""
    from dmaprof.sources.bugreport import parse_bugreport
    from dmaprof.sources.build import build_analysis
    from dmaprof.sources.inputs import bugreport_input

    row = "%22s %13d kB %13d kB %16d %16d  %22s\n"
    block = "%16s:%-5d\n" + "%22s %16s %16s %16s %16s %22s\n" % (  # noqa: UP031
        "Name",
        "Rss",
        "Pss",
        "nr_procs",
        "Inode",
        "Exporter",
    )
    dump = "".join(
        block % (comm, pid)
        + row % ("GraphicBuffer", 4096, 2048, 2, 5001, "qcom,system")
        + "%22s %13d kB %13d kB %16s\n" % ("PROCESS TOTAL", 4096, 2048, "")  # noqa: UP031
        + "----------------------\n"
        for comm, pid in (("vendor.qti.hard", 900), ("om.example.game", 7001))
    )
    text = (
        "== dumpstate: 2025-01-01 00:00:00\n"
        "------ CPU INFO (top -b -n 1 -H -s 6 -o pid,tid,user,pr,ni,%cpu,s,virt,res,pcy,cmd,"
        "name) ------\n"
        "  PID   TID USER         PR  NI[%CPU]S VIRT  RES PCY CMD             NAME\n"
        "  900   900 system       20   0  1.0 S  12G  40M  fg vendor.qti.hard "
        "/vendor/bin/hw/vendor.qti.hardware.display.allocator-service\n"
        " 7001  7001 u0_a245      20   0  0.5 S  12G  40M  fg om.example.game com.example.game\n"
        "------ PROCESSES AND THREADS (ps -A -T) ------\n"
        "USER           PID   TID  PPID CMD\n"
        "system         900   900     1 vendor.qti.hard\n"
        "u0_a245       7001  7001   702 om.example.game\n"
        "\n"
        "------ Dmabuf dump (dmabuf_dump) ------\n" + dump
    )
    report = parse_bugreport(text)
    client = build_analysis(bugreport_input(report), charge="client")
    charged = dict(zip(client.usage["pid"], client.usage["charged_bytes"], strict=True))
    assert charged == {900: 0, 7001: 4096 * 1024}
    # with the comm only, nothing says the allocator is a service: the buffer stays split
    report.names.clear()
    comm_only = build_analysis(bugreport_input(report), charge="client")
    charged = dict(zip(comm_only.usage["pid"], comm_only.usage["charged_bytes"], strict=True))
    assert charged == {900: 2048 * 1024, 7001: 2048 * 1024}
