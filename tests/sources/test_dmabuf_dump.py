"""Raw dmabuf_dump output, every generation, imported to figures computed by hand.

The generated fixtures (scripts/make_source_fixtures.py) describe one Android 16 phone:

    inode  size (bytes)          exporter         name                  holders (fd(map) refs)
    101    8355840 (8160 KiB)    system           FramebufferSurface    812 1(0), 1040 1(1)
    102    8355840               system           FramebufferSurface    812 1(0), 1040 1(1)
    201    3932160 (3840 KiB)    system           SurfaceView - ...#0   1040 1(0), 7001 1(1)
    202    3932160               system           SurfaceView - ...#0   1040 1(0), 7001 1(1)
    301      12288 (12 KiB)      system           (unnamed)             7001 0(1)
    401    1048677 (1024 KiB+101) system          GraphicBuffer         2100 1(0), 7001 2(0)
    501    2097152               system-uncached  camera-preview        (nobody)
    502      65536               system           (unnamed)             (nobody)

812 android.hardwar (composer), 1040 surfaceflinger, 2100 ndroid.systemui, 7001 om.example.game.
dmabuf_dump prints sizes as size // 1024 kB; only -b has bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dmaprof.analyze.report import format_dmabuf_dump
from dmaprof.errors import BadCaptureError
from dmaprof.sources.dmabuf_dump import parse_dmabuf_dump
from dmaprof.sources.importer import detect_kind, import_file
from tests.sources.conftest import DUMPS, SAMPLES, SV, analyzed, by_pid, keys, usage

MIB8160 = 8160 * 1024  # 8355840: 101, 102
MIB3840 = 3840 * 1024  # 3932160: 201, 202


def _joined(tmp_path: Path, *names: str) -> Path:
    out = tmp_path / "joined.txt"
    out.write_text("".join((DUMPS / n).read_text() for n in names))
    return out


def test_default_view_with_exporter_column() -> None:
    capture, a, report = analyzed(DUMPS / "android16_default.txt")
    assert capture.meta["source"]["kind"] == "dmabuf_dump"
    assert capture.meta["source"]["dmabuf_formats"] == ["default+exporter"]
    # without -b every size is the listed kB x 1024: 401 is 1024 kB -> 1048576 (really 1048677)
    assert usage(a) == {
        # composer: 101 + 102 = 2 x 8355840; pss: each split between 2 holders
        812: (2 * MIB8160, MIB8160),
        # surfaceflinger: 2 x 8355840 + 2 x 3932160 = 24576000; pss 8355840 + 3932160
        1040: (24576000, 12288000),
        # systemui: 401 = 1048576, shared with the game: 524288
        2100: (1048576, 524288),
        # game: 2 x 3932160 + 12288 + 1048576 = 8925184; pss 3932160 + 12288 + 524288
        7001: (8925184, 4468736),
    }
    t = a.totals
    assert t.userspace_bytes == 2 * MIB8160 + 2 * MIB3840 + 12288 + 1048576 == 25636864
    assert t.estimated_buffers == 6 and t.estimated_bytes == 25636864
    # no -b: all and kernel-only come from the summary line, in kB
    assert t.inventory_source == "dmabuf_dump_summary"
    assert t.bytes == 27148 * 1024 == 27799552
    assert t.kernel_only_bytes == 2111 * 1024 == 2161664
    assert t.kernel_only_buffers is None
    exporters = {e["exporter"]: (e["buffers"], e["bytes"]) for e in report["exporters"]}
    assert exporters == {"system": (6, 25636864)}
    names = {n["name"]: n["buffers"] for n in report["names"]}
    assert names == {SV: 2, "FramebufferSurface": 2, "GraphicBuffer": 1, "<unknown>": 1}
    p = by_pid(report)[7001]
    assert p["fds"] is None and p["maps"] is None and p["fd_only"] is None
    assert report["unknown"]["processes"][:5] == ["fds", "maps", "fd_only", "map_only", "both"]
    assert {"fd_map_split", "cgroups", "uids", "no_device", "no_dmabuf_dump_b"} <= keys(report)
    assert "sizes_estimated" in keys(report)
    assert a.coverage.lower_bound is False


def test_csv_gives_the_same_figures_as_raw() -> None:
    _c, raw, _r = analyzed(DUMPS / "android16_default.txt")
    capture, csv, report = analyzed(DUMPS / "android16_csv.txt")
    assert capture.meta["source"]["dmabuf_formats"] == ["csv"]
    assert usage(csv) == usage(raw)
    assert csv.holdings.equals(raw.holdings)
    assert csv.totals.bytes == raw.totals.bytes == 27148 * 1024
    assert report["warnings"] == []


def test_default_view_and_b_give_exact_sizes_and_kernel_only(tmp_path: Path) -> None:
    _c, a, report = analyzed(_joined(tmp_path, "android16_default.txt", "android16_b.txt"))
    assert usage(a) == {
        812: (2 * MIB8160, MIB8160),
        1040: (24576000, 12288000),
        # 401 is 1048677 bytes = 2 x 524338 + 1: the first holder by pid (2100) gets the byte
        2100: (1048677, 524339),
        # 2 x 3932160 + 12288 + 1048677 = 8925285; 3932160 + 12288 + 524338 = 4468786
        7001: (8925285, 4468786),
    }
    t = a.totals
    assert t.inventory_source == "dmabuf_dump_b"
    # -b: 8 buffers, 27799653 bytes = 25636965 held + 2097152 (501) + 65536 (502)
    assert (t.buffers, t.bytes) == (8, 27799653)
    assert t.userspace_bytes == 25636965
    assert (t.kernel_only_buffers, t.kernel_only_bytes) == (2, 2097152 + 65536)
    assert t.estimated_buffers == 0
    assert sorted(k["inode"] for k in report["kernel_only"]) == [501, 502]
    exporters = {e["exporter"]: (e["buffers"], e["bytes"]) for e in report["exporters"]}
    # system: 101 102 201 202 301 401 502 = 16711680 + 7864320 + 12288 + 1048677 + 65536
    assert exporters == {"system": (7, 25702501), "system-uncached": (1, 2097152)}
    assert sum(p["pss_bytes"] for p in report["processes"]) == t.userspace_bytes
    assert "sizes_estimated" not in keys(report)


def test_table_a_splits_fd_and_map_references() -> None:
    capture, a, report = analyzed(DUMPS / "android16_a.txt")
    assert capture.meta["source"]["dmabuf_formats"] == ["table"]
    p = by_pid(report)
    # game: 201 1(1), 202 1(1), 301 0(1), 401 2(0) -> 4 fds, 3 maps; 301 map only, 401 fd only
    assert (p[7001]["fds"], p[7001]["maps"]) == (4, 3)
    assert (p[7001]["fd_only"], p[7001]["map_only"], p[7001]["both"]) == (1, 1, 2)
    # surfaceflinger: 101 1(1), 102 1(1), 201 1(0), 202 1(0)
    assert (p[1040]["fds"], p[1040]["maps"], p[1040]["fd_only"], p[1040]["both"]) == (4, 2, 2, 2)
    assert (p[812]["fds"], p[812]["maps"], p[812]["fd_only"]) == (2, 0, 2)
    assert (p[2100]["fds"], p[2100]["maps"], p[2100]["fd_only"]) == (1, 0, 1)
    kinds = a.references["kind"].astype(str).value_counts().to_dict()
    assert kinds == {"fd": 2 + 4 + 1 + 4, "map": 0 + 2 + 0 + 3}
    assert "fd_map_split" not in keys(report)
    # sizes from the table's kB: the same as the default view's
    assert usage(a)[7001] == (8925184, 4468736)


def test_csv_a_and_b_together(tmp_path: Path) -> None:
    capture, a, report = analyzed(DUMPS / "android16_a_b_csv.txt")
    assert capture.meta["source"]["dmabuf_formats"] == ["csv", "per_buffer", "table"]
    assert usage(a)[7001] == (8925285, 4468786)  # exact sizes from -b, as above
    assert by_pid(report)[7001]["map_only"] == 1
    assert (a.totals.kernel_only_buffers, a.totals.bytes) == (2, 27799653)
    assert report["warnings"] == []


def test_pre_2021_table_sums_references_and_hides_mapped_only_holders() -> None:
    _c, a, report = analyzed(DUMPS / "android11_a_legacy.txt")
    p = by_pid(report)
    # cells are fd+map refs of fd holders only: 301 (mapped by the game, no fd) has no holder
    assert p[7001]["buffers"] == 3
    assert usage(a)[7001] == (2 * MIB3840 + 1048576, MIB3840 + 524288)  # 8912896, 4456448
    assert a.totals.userspace_bytes == 25636864 - 12288
    assert p[7001]["fds"] is None
    assert {"legacy_table", "fd_map_split"} <= keys(report)


def test_android13_default_view_without_exporter_column() -> None:
    """MediaTek world (bugreport fixture lamu): FramebufferSurface 1 2 3 (4512 kB each),
    Gralloc 94221 (1604 kB), 97683 130642 136996 (4512 kB), 140001 (2048 kB)."""
    capture, a, report = analyzed(DUMPS / "android13_default.txt")
    assert capture.meta["source"]["dmabuf_formats"] == ["default"]
    fb = 4512 * 1024  # 4620288
    assert usage(a) == {
        611: (3 * fb, 3 * fb // 2),  # 13860864, 6930432
        # 3 framebuffers (shared), 94221 (1642496, shared), 3 Gralloc alone
        828: (6 * fb + 1604 * 1024, 3 * fb // 2 + 1604 * 1024 // 2 + 3 * fb),  # 29364224, 21612544
        977: (1604 * 1024 + 2048 * 1024, 1604 * 1024 // 2 + 1024 * 1024),  # 3739648, 1869824
        5120: (2048 * 1024, 1024 * 1024),
    }
    assert a.totals.bytes == 31748 * 1024 and a.totals.kernel_only_bytes == 1023 * 1024
    assert report["exporters"] == [
        {
            "exporter": "<unknown>",
            "buffers": 8,
            "bytes": 31461376,
            "userspace_buffers": 8,
            "userspace_bytes": 31461376,
            "kernel_only_buffers": 0,
            "kernel_only_bytes": 0,
            "holders": 4,
        }
    ]
    assert "exporters" in keys(report)


def test_real_excerpt_cuttlefish_pid_view() -> None:
    """`dmabuf_dump 19562` on Cuttlefish (Android docs): 4 of the rows, nr_procs 3 and 2."""
    _c, a, report = analyzed(
        SAMPLES / "dmabuf_dump_pid_exporter_cuttlefish_android_docs_excerpt.txt"
    )
    # the other holders are not listed: pss is the tool's size // nr_procs
    #   3397: 3840 kB / 3 = 1310720   3398: 12 kB / 3 = 4096
    #   3399: 3840 kB / 2 = 1966080   3400: 12 kB / 2 = 6144      -> 3287040 (3210 kB)
    pss_rows = 1310720 + 4096 + 1966080 + 6144
    assert int(a.holdings["shared_pss_bytes"].sum()) == pss_rows
    # the rows (3840 + 12 + 3840 + 12 = 7704 kB) do not add up to PROCESS TOTAL 11556 kB /
    # 5136 kB: the stated total stands for the process, the rows stay what was listed
    assert usage(a) == {19562: (11556 * 1024, 5136 * 1024)}
    assert int(a.holdings["size_bytes"].sum()) == 7704 * 1024
    assert report["process_totals"] == [
        {
            "pid": 19562,
            "name": "droid.bitmaplab",
            "rows_rss_kb": 7704,
            "total_rss_kb": 11556,
            "rows_pss_kb": 3210,
            "total_pss_kb": 5136,
        }
    ]
    [lim] = [x for x in report["limitations"] if x["key"] == "process_totals"]
    assert (
        "droid.bitmaplab (19562): Rss rows 7704 kB, PROCESS TOTAL 11556 kB; "
        "Pss rows 3210 kB, PROCESS TOTAL 5136 kB" in lim["message"]
    )
    row = by_pid(report)[19562]
    assert (row["rss_bytes"], row["pss_bytes"]) == (11556 * 1024, 5136 * 1024)
    # `show --format dmabuf_dump` prints the block as the tool did: its rows, its total
    text = format_dmabuf_dump(a)
    assert "%22s %13d kB %13d kB %16s\n" % ("PROCESS TOTAL", 11556, 5136, "") in text  # noqa: UP031
    # a comm of 15 characters and no process list: said, the comm is all there is
    assert "comm_names" in keys(report)
    holders = dict(zip(a.holdings["inode"], a.holdings["holders"], strict=True))
    assert holders == {3397: 3, 3398: 3, 3399: 2, 3400: 2}
    exporters = {e["exporter"]: e["buffers"] for e in report["exporters"]}
    assert exporters == {"virtio_gpu": 2, "system": 2}
    text = " ".join(report["warnings"])
    assert "held by more processes than the listing shows" in text
    # rows 7704 kB (3840 + 12 + 3840 + 12) against PROCESS TOTAL 11556 kB: cut by the author
    assert "rows 7704 kB, PROCESS TOTAL 11556 kB" in text
    assert a.coverage.lower_bound is True


def test_real_excerpt_mtk_bugreport_section() -> None:
    _c, a, report = analyzed(DUMPS / "dmabuf_dump_default_mtk_bugreport_lamu_excerpt.txt")
    # 7 rows: 3 x 4512 kB shared by 2, 1604 kB shared by 2, 3 x 4512 kB alone = 28676 kB
    # (29364224 bytes, pss 21612544); PROCESS TOTAL 508116 kB / 497347 kB counts every row
    # the author cut: it stands
    assert int(a.holdings["size_bytes"].sum()) == 29364224 == 28676 * 1024
    assert usage(a)[828] == (508116 * 1024, 497347 * 1024)
    [stated] = report["process_totals"]
    assert (stated["rows_rss_kb"], stated["total_rss_kb"]) == (28676, 508116)
    # the printed Pss column: 3 x 2256 + 802 + 3 x 4512 kB
    assert (stated["rows_pss_kb"], stated["total_pss_kb"]) == (21106, 497347)
    assert "rows 28676 kB, PROCESS TOTAL 508116 kB" in " ".join(report["warnings"])
    # the shortened banner and the note in Chinese are not dmabuf_dump lines
    assert len(a.unparsed) == 2


def test_real_excerpt_qcom_all_three_views() -> None:
    capture, a, report = analyzed(SAMPLES / "qcom_sa8397_android16_gvm_dmabuf_excerpts.txt")
    assert capture.meta["source"]["dmabuf_formats"] == ["default+exporter", "per_buffer", "table"]
    parsed = parse_dmabuf_dump(capture.dump.decode())
    assert parsed.summary is not None and parsed.summary.total_kb == 4504628
    assert parsed.summary.kernel_rss_kb == 4116576 and parsed.summary.userspace_pss_kb == 388052
    assert [(s.inode, s.size, s.exporter) for s in parsed.per_buffer or []] == [
        (1976, 8192, "qcom_hgsl"),
        (4070, 131072, "qcom_hgsl"),
        (6265, 5652480, "qcom,system"),
    ]
    assert parsed.table is not None
    assert [(r.inode, r.size_kb, r.refs) for r in parsed.table.rows] == [
        (36, 20, {642: (2, 0)}),
        (41, 25920, {1240: (2, 0)}),
    ]
    # surfaceflinger: 4 + 8192 + 32128 + 28 kB from its block, 25920 kB from the table; the
    # author elided rows ("..."), and the block's PROCESS TOTAL 388052 kB stands
    held = a.holdings[a.holdings["pid"] == 1240]
    assert int(held["size_bytes"].sum()) == (4 + 8192 + 32128 + 28 + 25920) * 1024
    assert usage(a)[1240] == (388052 * 1024, 388052 * 1024)
    # the table says fds for 2 buffers, the block says nothing for 4: the split is unknown
    assert by_pid(report)[1240]["fds"] is None
    assert "missing from dmabuf_dump -b" in " ".join(report["warnings"])


def test_parser_edge_cases() -> None:
    text = (
        "  weird:name:42  \n"
        "                  Name              Rss              Pss         nr_procs"
        "            Inode               Exporter\n"
        "  a 7 kB  b             4 kB             2 kB                2               90"
        "                  system\n"
        "         PROCESS TOTAL             4 kB             2 kB                 \n"
        "----------------------\n"
        "\tapp:7\n"
        '"Name","Rss(kB)","Pss(kB)","nr_procs","Inode","Exporter"\n'
        '"with, comma "and" quotes",8,8,1,91,system\n'
        "dmabuf info not found ¯\\_(ツ)_/¯\n"
    )
    d = parse_dmabuf_dump(text)
    assert [(b.comm, b.pid) for b in d.processes] == [("weird:name", 42), ("app", 7)]
    assert d.processes[0].rows[0].name == "a 7 kB  b"
    assert d.processes[1].rows[0].name == 'with, comma "and" quotes'
    assert d.notes == ["dmabuf info not found ¯\\_(ツ)_/¯"]
    assert d.unparsed == []


def test_detection_and_forcing(tmp_path: Path) -> None:
    assert detect_kind(DUMPS / "android16_b.txt") == "dmabuf_dump"
    assert detect_kind(DUMPS / "android16_a_b_csv.txt") == "dmabuf_dump"
    other = tmp_path / "notes.txt"
    other.write_text("hello\nworld\n")
    with pytest.raises(BadCaptureError, match="--kind"):
        detect_kind(other)
    with pytest.raises(BadCaptureError, match="no dmabuf_dump output"):
        import_file(other, kind="dmabuf_dump")
    with pytest.raises(BadCaptureError, match="not a collector dump"):
        import_file(DUMPS / "android16_b.txt", kind="collector")


def test_serial_names_the_device(tmp_path: Path) -> None:
    capture = import_file(DUMPS / "android16_default.txt", serial="lab-phone-7")
    assert capture.device["serial"] == "lab-phone-7"
    assert capture.meta["transport"] == {
        "kind": "import",
        "serial": "lab-phone-7",
        "source": "android16_default.txt",
    }


def test_show_format_dmabuf_dump_reproduces_the_tools_rows() -> None:
    from dmaprof.analyze.report import format_dmabuf_dump

    original = parse_dmabuf_dump((DUMPS / "android16_default.txt").read_text())
    _c, a, _r = analyzed(DUMPS / "android16_default.txt")
    again = parse_dmabuf_dump(format_dmabuf_dump(a))

    def rows(d: object) -> dict[int, list[tuple[object, ...]]]:
        return {
            b.pid: [(r.name, r.rss_kb, r.pss_kb, r.nr_procs, r.inode, r.exporter) for r in b.rows]
            for b in d.processes  # type: ignore[attr-defined]
        }

    assert rows(again) == rows(original)
    assert {b.pid: b.total_rss_kb for b in again.processes} == {
        b.pid: b.total_rss_kb for b in original.processes
    }


def test_process_total_stands_over_rounded_rows() -> None:
    """fixtures/dmabuf_dump/android14_odd_sizes.txt: sizes that are not whole kB. Each row is
    size / 1024 rounded down, PROCESS TOTAL sum(size) / 1024 (dmabuf_dump.cpp sums bytes):

        3300 camera.provider  7001 4608 B (4 kB)  7002 10752 B (10 kB)  7003 1573632 B (1536 kB)
             rows 1550 kB, PROCESS TOTAL 1551 kB (1588992 B); Pss rows 4 + 10 + 768 = 782 kB,
             PROCESS TOTAL 783 kB (4608 + 10752 + 786816 = 802176 B)
        4400 le.cameraviewer  7003 (1536 kB), 7004 8192 B (8 kB): 1544 kB = 1544 kB, agrees
    """
    _c, a, report = analyzed(DUMPS / "android14_odd_sizes.txt")
    # without -b the rows are kB x 1024; the stated total stands for 3300
    assert usage(a) == {
        3300: (1551 * 1024, 783 * 1024),
        4400: (1536 * 1024 + 8192, 1536 * 1024 // 2 + 8192),
    }
    assert report["process_totals"] == [
        {
            "pid": 3300,
            "name": "camera.provider",
            "rows_rss_kb": 1550,
            "total_rss_kb": 1551,
            "rows_pss_kb": 782,
            "total_pss_kb": 783,
        }
    ]
    [lim] = [x for x in report["limitations"] if x["key"] == "process_totals"]
    assert "camera.provider (3300): Rss rows 1550 kB, PROCESS TOTAL 1551 kB" in lim["message"]
    # within the rounding of 3 rows: not a cut listing
    assert not any("listing is cut" in w for w in report["warnings"])
    row = by_pid(report)[3300]
    assert (row["rss_bytes"], row["pss_bytes"]) == (1551 * 1024, 783 * 1024)
    assert report["totals"]["pss_bytes"] == 783 * 1024 + 1536 * 1024 // 2 + 8192


def test_process_total_stands_in_the_csv_output_too() -> None:
    # `dmabuf_dump -o csv` of the same blocks: PROCESS TOTAL is a header line, then values
    _c, a, report = analyzed(DUMPS / "android14_odd_sizes_csv.txt")
    assert usage(a)[3300] == (1551 * 1024, 783 * 1024)
    [stated] = report["process_totals"]
    assert (stated["rows_rss_kb"], stated["total_rss_kb"]) == (1550, 1551)


def test_exact_sizes_that_round_to_the_total_are_kept() -> None:
    # the same blocks with -b: every row's exact size is known, 1588992 // 1024 == 1551, so
    # the rows explain the total and the exact bytes (and exact split pss) stand
    _c, a, report = analyzed(DUMPS / "android14_odd_sizes_b.txt")
    assert usage(a) == {
        3300: (4608 + 10752 + 1573632, 4608 + 10752 + 1573632 // 2),
        4400: (1573632 + 8192, 1573632 // 2 + 8192),
    }
    assert report["process_totals"] == []
    assert "process_totals" not in keys(report)
