"""User-build mode on the host (dmaprof/analyze/userbuild.py, docs/user-build.md): the parsers
of every new source on real samples and on fixtures written from the documented formats, the
merge of the sections an app side wrote through run-as, pss bounds and the "unknown" report.

Fixtures: fixtures/phones/dumpsys/ (``*_real.txt`` are public samples, the others are written
by hand from the AOSP format strings named in their headers); the dumps of
tests/analyze/data/ (the pixel-like phone collected as root and as the shell user).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from dmaprof.analyze import analyze, build_report
from dmaprof.analyze.restricted import pss_bounds
from dmaprof.analyze.userbuild import (
    merge_run_as,
    parse_gralloc,
    parse_meminfo_totals,
    run_as_results,
)
from dmaprof.capture.dump import parse_dump
from dmaprof.render.report import render_default_table
from tests.emuphone import scene as S

ROOT = Path(__file__).resolve().parents[2]
DUMPSYS = ROOT / "fixtures" / "phones" / "dumpsys"
BUGREPORTS = ROOT / "fixtures" / "bugreports"
DATA = Path(__file__).resolve().parent / "data"
EXPECTED = json.loads((ROOT / "fixtures" / "phones" / "pixel-like.expected.json").read_text())
K = 1024
CAMERA = "com.example.camera"


def fixture(name: str, folder: Path = DUMPSYS) -> str:
    """A fixture's text without its leading ``# source/device/note`` lines."""
    lines = (folder / name).read_text().split("\n")
    i = 0
    while i < len(lines) and re.match(r"# (source|device|note)", lines[i]):
        i += 1
    return "\n".join(lines[i:])


# --------------------------------------------------------------------------- dumpsys meminfo


def test_meminfo_real_rockchip_dmabuf_lines() -> None:
    t = parse_meminfo_totals(
        fixture("dumpsys_meminfo_summary_rockchip_dmabuf_lines.txt", BUGREPORTS)
    )
    assert t is not None and t.source == "dumpsys meminfo"
    assert (t.dmabuf_bytes, t.dmabuf_mapped_bytes, t.dmabuf_unmapped_bytes) == (
        455268 * K,
        0,
        455268 * K,
    )
    assert t.heaps_bytes == 89724 * K and t.heap_pools_bytes == 98980 * K
    assert t.gpu_bytes is None and t.ion_bytes is None  # no such lines: unknown, not 0
    assert len(t.lines) == 3


def test_meminfo_real_ion_line_android11() -> None:
    t = parse_meminfo_totals(
        fixture("dumpsys_meminfo_summary_ion_line_rk3326_android11go.txt", BUGREPORTS)
    )
    assert t is not None
    assert (t.ion_bytes, t.ion_mapped_bytes, t.ion_unmapped_bytes, t.ion_pools_bytes) == (
        50628 * K,
        28880 * K,
        0,
        21748 * K,
    )
    assert t.dmabuf_bytes is None and t.heaps_bytes is None


def test_meminfo_gpu_line_and_negative_figures() -> None:
    t = parse_meminfo_totals(fixture("meminfo_android14_gpu_format.txt"))
    assert t is not None
    assert t.dmabuf_bytes == 1231940 * K and t.dmabuf_unmapped_bytes == -64 * K
    assert (t.gpu_bytes, t.gpu_dmabuf_bytes, t.gpu_private_bytes) == (
        612308 * K,
        398212 * K,
        214096 * K,
    )
    assert t.heaps_bytes == 987644 * K and t.heap_pools_bytes == 41216 * K


def test_meminfo_low_memory_report_forms() -> None:
    t = parse_meminfo_totals(fixture("meminfo_lowmemory_report_format.txt"))
    assert t is not None
    assert t.dmabuf_bytes == 702316 * K and t.dmabuf_mapped_bytes is None
    assert t.heaps_bytes == 655004 * K  # singular "DMA-BUF Heap:"
    assert t.heap_pools_bytes == 0
    assert t.gpu_bytes == 129772 * K and t.gpu_private_bytes is None


def test_meminfo_without_dmabuf_lines_is_none() -> None:
    assert parse_meminfo_totals("Total RAM: 1,000K (status normal)\n") is None
    assert parse_meminfo_totals(b"") is None


def test_meminfo_of_the_emulated_phone_matches_its_scene() -> None:
    scene = S.load_scene(S.FIXTURES / "pixel-like.json")
    t = parse_meminfo_totals(S.dumpsys_meminfo(scene))
    assert t is not None
    totals = EXPECTED["totals"]
    assert t.dmabuf_bytes == totals["total_bytes"]
    assert t.dmabuf_mapped_bytes == totals["mapped_bytes"]
    assert t.heaps_bytes == totals["heap_exported_bytes"]
    assert t.heap_pools_bytes == scene["total_pools_kb"] * K
    assert t.gpu_dmabuf_bytes == EXPECTED["exporters"]["drm"]["bytes"]
    assert t.gpu_private_bytes == scene["gpu_private_kb"] * K
    # an ION-era kernel gets the ION line instead
    ion = parse_meminfo_totals(S.dumpsys_meminfo(scene, S.VARIANTS["anon_inode"]))
    assert ion is not None and ion.dmabuf_bytes is None
    assert ion.ion_bytes == totals["total_bytes"] + scene["total_pools_kb"] * K


# --------------------------------------------------------------------------- gralloc lists


def test_surfaceflinger_android14_layout() -> None:
    [d] = parse_gralloc(fixture("surfaceflinger_android14_format.txt"), "dumpsys SurfaceFlinger")
    assert d.unparsed_lines == 0
    assert [a["requestor"] for a in d.allocated] == [
        "FramebufferSurface",
        "FramebufferSurface",
        "FramebufferSurface",
        "RegionSamplingThread",
        "placeholder",
    ]
    fb = d.allocated[0]
    assert fb["size_bytes"] == 10200 * K
    assert (fb["width"], fb["stride"], fb["height"], fb["layers"]) == (1080, 1088, 2400, 1)
    assert fb["usage"] == "0x1b00"
    assert d.allocated[3]["size_bytes"] == round(2871.25 * K)
    assert d.allocated[4]["size_bytes"] is None  # "unknown"
    assert d.allocated_total_bytes == round(33471.25 * K)
    assert len(d.imported) == 4
    assert d.imported[0]["name"] == "VRI[MainActivity]#0(BLAST Consumer)0"
    assert d.imported[0]["size_bytes"] == 10452992 and d.imported[0]["size_source"] == "planes"
    assert d.imported[2]["size_bytes"] == 7372800
    assert d.imported_total_bytes == 37824 * K


def test_surfaceflinger_android11_layout_and_g_formatted_sizes() -> None:
    [d] = parse_gralloc(fixture("surfaceflinger_android11_format.txt"), "dumpsys SurfaceFlinger")
    assert d.unparsed_lines == 0
    assert [a["size_bytes"] for a in d.allocated] == [256, 4320 * K, 144 * K, None]
    assert d.allocated[2]["requestor"] == "StatusBar#0" and d.allocated[2]["layers"] == 1
    assert d.allocated_total_bytes == round(4464.25 * K)
    # "size:4.3e+03KiB" is rounded by %.2g: the planes give the exact bytes
    assert [b["size_bytes"] for b in d.imported] == [151552, 4448256, 4096]
    assert d.imported_total_bytes == 4500 * K


def test_android9_and_android7_layouts() -> None:
    a9, a7 = parse_gralloc(fixture("surfaceflinger_android9_format.txt"), "dumpsys SurfaceFlinger")
    assert [(r["requestor"], r["layers"]) for r in a9.allocated] == [
        ("FramebufferSurface", 1),
        ("StatusBar", 1),
    ]
    assert a9.allocated_total_bytes == 8505 * K
    [row] = a7.allocated
    assert row["requestor"] is None and row["layers"] is None and row["size_bytes"] == 8100 * K
    assert row["usage"] == "0x00001b00" and a7.allocated_total_bytes == 8100 * K


def test_gfxinfo_one_block_per_process() -> None:
    main, render = parse_gralloc(
        fixture("gfxinfo_app_android14_format.txt"), "dumpsys gfxinfo x", "com.example.viewer"
    )
    assert (main.pid, main.process, main.package) == (
        8123,
        "com.example.viewer",
        "com.example.viewer",
    )
    assert [a["requestor"] for a in main.allocated][-1] == "ImageReader-1008x768f1m3-8123-0"
    assert main.allocated_total_bytes == 23440 * K
    assert [b["size_bytes"] for b in main.imported] == [3096576]
    assert (render.pid, render.allocated, render.allocated_total_bytes) == (8190, [], 0)
    assert render.imported_total_bytes == 0
    assert main.unparsed_lines == render.unparsed_lines == 0


def test_gfxinfo_of_a_package_without_process() -> None:
    [d] = parse_gralloc("No process found for: com.example.none\n", "dumpsys gfxinfo x", "x")
    assert d.note == "No process found for: com.example.none" and d.empty


def test_gralloc_lists_of_the_emulated_phone() -> None:
    scene = S.load_scene(S.FIXTURES / "pixel-like.json")
    [sf] = parse_gralloc(S.dumpsys_surfaceflinger(scene), "dumpsys SurfaceFlinger")
    assert [a["requestor"] for a in sf.allocated] == ["sf-fb0", "sf-fb1", "sf-fb2", "screenshot"]
    assert sf.allocated_total_bytes == 4 * 10371072
    held = {
        int(f["buffer"])
        for p in scene["processes"]
        if p["pid"] == 612
        for f in p["fds"]
        if "buffer" in f
    }
    gralloc = {int(b["inode"]) for b in scene["buffers"] if "allocated_by" in b}
    assert sorted(b["id"] for b in sf.imported) == sorted(held & gralloc)
    assert sf.unparsed_lines == 0


def test_a_list_line_that_fits_no_form_is_counted() -> None:
    text = "GraphicBufferAllocator buffers:\n0xb4 | garbage\nTotal allocated (estimate): 0.00 KB\n"
    [d] = parse_gralloc(text, "dumpsys SurfaceFlinger")
    assert d.unparsed_lines == 1 and d.allocated == []


# --------------------------------------------------------------------------- run-as merge


def _app_side(shell: bytes, root: bytes, pkg: str, pids: tuple[int, ...]) -> bytes:
    """The shell dump with the sections an app side would have written for ``pids``, taken
    from the root dump (the same phone), and its ``runas/PKG`` status, before ``end``."""
    sd, rd = parse_dump(shell), parse_dump(root)
    n = sd.nonce
    at = b"@" + n + b" "
    prefixes = tuple(b"/proc/%d/" % p for p in pids)

    def sec(name: str, kind: str, body: bytes) -> bytes:
        return at + f"section {name} {kind}\n".encode() + body + at + f"end {name} rc=0\n".encode()

    def picked(name: str) -> bytes:
        s = rd.section(name)
        assert s is not None
        out = []
        for line in s.lines:
            text = line[len(b"@" + rd.nonce + b" ") :] if line.startswith(b"@") else line
            if text.startswith(prefixes):
                out.append((at + text if line.startswith(b"@") else text) + b"\n")
        return b"".join(out)

    p = f"runas/{pkg}"
    app = (
        sec(f"{p}/meta", "kv", b"uid=10201\npid=4242\nhome=/data/user/0/%s\n" % pkg.encode())
        + sec(f"{p}/pids", "kv", b"".join(b"pid=%d\n" % x for x in pids))
        + sec(f"{p}/tasks", "kv", b"")
        + sec(f"{p}/fdlinks", "stat", picked("fdlinks"))
        + sec(f"{p}/fdinfo", "files", picked("fdinfo"))
        + sec(f"{p}/maps", "files", picked("maps"))
        + sec(f"{p}/end", "kv", b"spawns=5\n")
        + sec(p, "kv", b"package=%s\nrun=yes\nrc=0\n" % pkg.encode())
    )
    marker = at + b"section end kv\n"
    assert marker in shell
    return shell.replace(marker, app + marker)


@pytest.fixture(scope="module")
def with_camera() -> bytes:
    shell = (DATA / "collector_pixel_like_shell.dump").read_bytes()
    root = (DATA / "collector_pixel_like_root.dump").read_bytes()
    return _app_side(shell, root, CAMERA, (3100, 3160))


def test_merge_is_identity_without_app_sections() -> None:
    d = parse_dump((DATA / "collector_pixel_like_shell.dump").read_bytes())
    assert merge_run_as(d) is d


def test_merge_folds_the_app_side_into_the_main_sections(with_camera: bytes) -> None:
    d = parse_dump(with_camera)
    m = merge_run_as(d)
    assert m.done and not m.truncated
    fdaccess = dict(m.section("fdaccess").kv)  # type: ignore[union-attr]
    denied = {int(v) for k, v in m.section("fdaccess").kv if k == "denied"}  # type: ignore[union-attr]
    assert 3100 not in denied and 3160 not in denied and 612 in denied and fdaccess
    maps_err = [e.pid for e in m.errors_of("maps")]
    assert 3100 not in maps_err and 612 in maps_err
    fdlinks = m.section("fdlinks")
    assert fdlinks is not None and any(r.startswith(b"/proc/3100/fd/") for r in fdlinks.records)
    assert "/proc/3160/maps" in m.section("maps").files  # type: ignore[union-attr]
    # the app side's own sections are kept, for the status and the record
    assert m.section(f"runas/{CAMERA}") is not None
    assert m.section(f"runas/{CAMERA}/pids") is not None


def test_merged_capture_gives_the_apps_exact_figures(with_camera: bytes) -> None:
    a = analyze(with_camera)
    u = a.usage.set_index("pid")
    want = EXPECTED["processes"]
    for pid in (3100, 3160):
        assert not u.loc[pid, "unreadable"]
        assert u.loc[pid, "rss_bytes"] == want[str(pid)]["rss_bytes"]
    # 3160's only buffer is held by 3100 and 3160 alone: exact
    assert u.loc[3160, "shared_pss_bytes"] == want["3160"]["pss_bytes"]
    # 3100 shares cam-preview-0/1 with unreadable processes: its pss is an upper bound, and
    # fdinfo's count bounds it from below exactly here
    bounds = pss_bounds(a)
    assert bounds[3160] == (True, want["3160"]["pss_bytes"])
    exact, low = bounds[3100]
    assert not exact and low == want["3100"]["pss_bytes"]
    assert u.loc[3100, "shared_pss_bytes"] >= want["3100"]["pss_bytes"]
    assert u.loc[612, "unreadable"]


def test_report_labels_what_it_cannot_know(with_camera: bytes) -> None:
    r = build_report(analyze(with_camera), {})
    json.dumps(r, allow_nan=False)
    assert r["access"]["restricted"] and r["access"]["mode"] == "run-as"
    assert r["access"]["run_as_packages"] == [CAMERA]
    procs = {p["pid"]: p for p in r["processes"]}
    assert procs[3160]["pss_exact"] is True
    assert procs[3100]["pss_exact"] is False
    assert procs[3100]["pss_min_bytes"] == EXPECTED["processes"]["3100"]["pss_bytes"]
    for pid in (612, 1200, 3300):
        assert procs[pid]["unreadable"] is True
        assert procs[pid]["rss_bytes"] is None and procs[pid]["pss_bytes"] is None
    apps = {a["uid"]: a for a in r["apps"]}
    assert apps[10201]["rss_bytes"] == EXPECTED["per_uid"]["10201"]["rss_union"]
    assert apps[10201]["pss_min_bytes"] == EXPECTED["per_uid"]["10201"]["pss_sum"]
    assert apps[10202]["rss_bytes"] is None and apps[10202]["packages"] == ["com.example.gallery"]
    assert apps[1000]["pss_bytes"] is None
    assert r["totals"]["kernel_only_bytes"] is None and r["kernel_only"] is None
    assert r["totals"]["bytes"] == EXPECTED["totals"]["total_bytes"]  # sysfs: readable
    buffers = {b["inode"]: b for b in r["buffers"]}
    assert buffers[19]["kernel_only"] is None  # no readable holder: unknown
    assert buffers[13]["holders_complete"] is True and buffers[10]["holders_complete"] is False
    assert all(e["kernel_only_bytes"] is None for e in r["exporters"])
    cgroups = {c["path"]: c for c in r["cgroups"]}
    assert cgroups["/uid_10201"]["rss_bytes_with_descendants"] is not None
    assert cgroups["/"]["rss_bytes_with_descendants"] is None
    [ok] = r["run_as"]
    assert ok["status"] == "ok" and ok["pids"] == [3100, 3160] and ok["uid"] == 10201


def test_table_shows_unknown_and_the_range(with_camera: bytes) -> None:
    r = build_report(analyze(with_camera), {})
    buf = io.StringIO()
    render_default_table(r, 15, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    assert "processes not readable" in text and "unknown" in text
    assert "4.5 MiB – 8.5 MiB" in text  # 3100's pss range
    assert "needs every process's fds (root)" in text
    assert "Apps read through run-as" in text


def test_root_capture_report_is_unchanged() -> None:
    r = build_report(analyze((DATA / "collector_pixel_like_root.dump").read_bytes()), {})
    assert r["access"] == {
        "mode": "root",
        "restricted": False,
        "run_as_packages": [],
        "note": None,
    }
    assert r["system_totals"] is None and r["run_as"] == [] and r["graphic_buffers"] == []
    assert all("pss_exact" not in p for p in r["processes"])
    assert isinstance(r["kernel_only"], list) and r["totals"]["kernel_only_bytes"] is not None


# --------------------------------------------------------------------------- run-as status


def _status_dump(sections: list[tuple[str, str, bytes]]) -> bytes:
    n = b"feedface"
    out = [b"DMAPROF-DUMP 1 feedface\n"]
    for name, kind, body in sections:
        out += [b"@%s section %s %s\n" % (n, name.encode(), kind.encode()), body]
        out.append(b"@%s end %s rc=0\n" % (n, name.encode()))
    out.append(b"@feedface done\n")
    return b"".join(out)


@pytest.mark.parametrize(
    ("run", "rc", "stderr", "status"),
    [
        ("yes", "1", b"run-as: package not debuggable: com.x.y\n", "not_debuggable"),
        ("yes", "1", b"run-as: unknown package: com.x.y\n", "unknown_package"),
        ("yes", "1", b"run-as: package not an application: com.x.y\n", "not_an_application"),
        ("yes", "1", b"run-as: run-as is disabled from the kernel commandline\n", "unavailable"),
        ("failed", "127", b"sh: run-as: not found\n", "unavailable"),
        ("yes", "2", b"collect.sh: cannot create a temp dir in /data/user/0/com.x.y\n", "failed"),
        ("skipped", "0", b"", "skipped"),
    ],
)
def test_run_as_statuses(run: str, rc: str, stderr: bytes, status: str) -> None:
    sections = [("runas/com.x.y", "kv", f"package=com.x.y\nrun={run}\nrc={rc}\n".encode())]
    if stderr:
        sections.append(("runas/com.x.y.err", "errors", stderr))
    [r] = run_as_results(parse_dump(_status_dump(sections)))
    assert r.package == "com.x.y" and r.status == status
    if stderr:
        assert r.message == stderr.decode().strip()
    assert "com.x.y" in r.describe()


def test_run_as_that_found_no_process() -> None:
    dump = _status_dump(
        [
            ("runas/com.x.y/meta", "kv", b"uid=10300\npid=77\nhome=/data/user/0/com.x.y\n"),
            ("runas/com.x.y/pids", "kv", b""),
            ("runas/com.x.y", "kv", b"package=com.x.y\nrun=yes\nrc=0\n"),
        ]
    )
    [r] = run_as_results(parse_dump(dump))
    assert (r.status, r.pids, r.uid) == ("not_running", [], 10300)
