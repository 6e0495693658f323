"""Real outputs (fixtures/samples) parse to the figures a person computes from them."""

from __future__ import annotations

import re

import pytest
from analyze_dumpgen import Buf, DumpBuilder, Proc, Scene, files_body

from dmaprof.analyze import analyze, format_dmabuf_dump
from dmaprof.analyze.bufinfo import parse_bufinfo
from dmaprof.analyze.ion import parse_ion_heap
from tests.analyze.conftest import sample_parts, sample_text

BUFINFO = "/sys/kernel/debug/dma_buf/bufinfo"


def with_bufinfo(text: bytes) -> bytes:
    d = DumpBuilder()
    d.section("global", "files", files_body({BUFINFO: text}))
    return d.build()


def test_radeon_5_19_wrapped_and_spaces() -> None:
    b = parse_bufinfo(sample_text("debugfs_bufinfo_radeon_ubuntu_5.19.txt"))
    assert b.layout == "ino"
    assert len(b.records) == 11 and b.total_objects == 11
    assert sum(r.size for r in b.records) == 59682816 == b.total_bytes
    assert b.complete
    assert [r.inode for r in b.records] == [110, 106, 105, 104, 103, 101, 84, 83, 72, 14, 11]
    assert [len(r.fences) for r in b.records] == [2, 1, 1, 2, 1, 1, 2, 0, 1, 0, 1]
    assert [r.count for r in b.records] == [3, 3, 3, 3, 3, 2, 3, 3, 3, 3, 2]
    assert {r.exporter for r in b.records} == {"drm"}
    assert all(r.name is None and r.devices == [] for r in b.records)
    # through the whole pipeline: 11 kernel-only buffers
    a = analyze(with_bufinfo(sample_text("debugfs_bufinfo_radeon_ubuntu_5.19.txt")))
    assert (a.totals.buffers, a.totals.bytes) == (11, 59682816)
    assert a.totals.inventory_source == "debugfs"
    assert a.totals.kernel_only_bytes == 59682816 and len(a.kernel_only) == 11
    assert a.exporters.loc[0, "key"] == "drm" and a.exporters.loc[0, "bytes"] == 59682816
    assert a.pools.set_index("counter").loc["bufinfo_total", "bytes"] == 59682816


def test_amdgpu_5_14_header_and_rows_wrapped() -> None:
    b = parse_bufinfo(sample_text("debugfs_bufinfo_amdgpu_gentoo_5.14_bz214621.txt"))
    assert b.layout == "ino"
    assert len(b.records) == 9 and sum(r.size for r in b.records) == 38608896
    assert (b.total_objects, b.total_bytes) == (9, 38608896) and b.complete
    assert [r.inode for r in b.records] == [
        415409,
        414559,
        414537,
        415280,
        244896,
        242446,
        58778,
        58661,
        3715,
    ]
    assert [r.count for r in b.records] == [3, 3, 3, 3, 3, 3, 3, 4, 2]
    assert sum(len(r.fences) for r in b.records) == 6
    # the shell prompt and comment lines copied with the file are reported, not fatal
    assert [no for no, _, _ in b.unparsed] == [1, 2, 4]


def test_etnaviv_4_11_oldest_layout() -> None:
    b = parse_bufinfo(sample_text("debugfs_bufinfo_etnaviv_imx6_4.11_rmk_2017.txt"))
    assert b.layout == "oldest" and len(b.records) == 1 and b.complete
    r = b.records[0]
    assert (r.size, r.flags, r.mode, r.count, r.exporter, r.inode, r.name) == (
        8294400,
        0,
        5,
        5,
        "drm",
        None,
        None,
    )
    assert r.devices == ["gpu-subsystem"] and len(r.fences) == 1
    # no identity: totals come from the inventory, attribution is impossible
    a = analyze(with_bufinfo(sample_text("debugfs_bufinfo_etnaviv_imx6_4.11_rmk_2017.txt")))
    assert (a.totals.buffers, a.totals.bytes) == (1, 8294400)
    assert a.totals.kernel_only_bytes is None and len(a.buffers) == 0


def test_sony_vendor_layout_with_buf_name_column() -> None:
    b = parse_bufinfo(sample_text("debugfs_bufinfo_qcom_sony_ion_vendor_layout_2021_excerpt.txt"))
    assert b.layout == "vendor" and len(b.records) == 4
    assert [r.inode for r in b.records] == [7400825, 7400824, 7400823, 7400822]
    assert [r.name for r in b.records] == [
        "dmabuf17728",
        "dmabuf17727",
        "dmabuf17726",
        "dmabuf17725",
    ]
    assert [r.extra for r in b.records] == [r.name for r in b.records]
    assert [r.size for r in b.records] == [32768, 11083776, 32768, 11083776]
    assert {r.exporter for r in b.records} == {"ion-system-1006-allocator-servi"}
    assert [r.devices for r in b.records][1] == ["ae00000.qcom,mdss_mdp:qcom,smmu_sde_unsec_cb"]
    # an excerpt: the trailer is kept, the mismatch reported
    assert (b.total_objects, b.total_bytes) == (654, 744144896) and not b.complete
    assert any("654 objects" in w for w in b.warnings)
    a = analyze(
        with_bufinfo(sample_text("debugfs_bufinfo_qcom_sony_ion_vendor_layout_2021_excerpt.txt"))
    )
    assert (a.totals.inventory_buffers, a.totals.inventory_bytes) == (654, 744144896)
    assert a.buffers.set_index("inode").loc[7400824, "attached_devices"] == (
        "ae00000.qcom,mdss_mdp:qcom,smmu_sde_unsec_cb",
    )


def test_rpi4_trailing_empty_name_and_cut_excerpt() -> None:
    b = parse_bufinfo(
        sample_text("debugfs_bufinfo_rpi4_v3d_exclusive_fence_no_name_header_rpicam293_excerpt.txt")
    )
    assert b.layout == "ino"
    assert [(r.inode, r.size, r.name) for r in b.records] == [
        (15622, 53248, None),
        (15598, 258048, None),
        (14732, 258048, None),
        (14318, 4096, None),
    ]
    assert b.records[2].devices == ["fec00000.v3d", "fec00000.v3d"] and b.records[2].count == 9
    assert b.total_objects is None
    assert [line for _, line, _ in b.unparsed] == ["Total 0"]


def test_rpi4_6x_none_names_several_importers() -> None:
    b = parse_bufinfo(sample_text("debugfs_bufinfo_rpi4_vb2_vcsm_v3d_tfu_rpicam598_excerpt.txt"))
    assert [r.inode for r in b.records] == [80, 79, 78, 77, 76, 75, 38, 37]
    assert sum(r.size for r in b.records) == 6 * 622592 + 2 * 1048576
    assert all(r.name is None for r in b.records)
    assert b.records[0].devices == ["gpu", "fec00000.v3d"]
    assert (b.records[6].exporter, b.records[6].count, b.records[6].devices) == ("vc_sm_cma", 1, [])
    assert b.records[7].devices == ["vcsm-cma"]


def test_ion_debugfs_heap_fixtures() -> None:
    parts = sample_parts("ion_debugfs_heap_system_aosp_testfixture_pixel_qcom_sargo.txt")
    first = parse_ion_heap("system", parts["DEBUG_SYSTEM_ION_HEAP_CONTENTS"])
    assert first.totals == {"total orphaned": 0, "total": 55193600, "deferred free": 0}
    assert first.pool_total == 83570688
    per_pid: dict[int, int] = {}
    for _, pid, size, _ in first.clients:
        per_pid[pid] = per_pid.get(pid, 0) + size
    assert per_pid == {765: 69632, 96: 12288, 1232: 16728064, 611: 50642944}
    sargo = parse_ion_heap("system", parts["DEBUG_SYSTEM_ION_HEAP_CONTENTS_SARGO"])
    assert [(c, p, s) for c, p, s, _ in sargo.clients] == [
        ("system_server", 1705, 58097664),
        ("audio@2.0-servi", 851, 16384),
        ("audio@2.0-servi", 851, 4096),
        ("audio@2.0-servi", 851, 4096),
    ]
    assert sargo.totals["total"] == 159928320
    # in a dump: clients table and per-heap counters
    d = DumpBuilder().section(
        "ion",
        "files",
        files_body({"/sys/kernel/debug/ion/heaps/system": parts["DEBUG_SYSTEM_ION_HEAP_CONTENTS"]}),
    )
    a = analyze(d.build())
    assert int(a.ion_clients["size_bytes"].sum()) == 67452928
    pools = a.pools.set_index("counter")["bytes"]
    assert pools["ion_heap_total:system"] == 55193600
    assert pools["ion_heap_pool_total:system"] == 83570688
    assert (a.heaps["heap"].tolist(), a.heaps["source"].astype(str).tolist()) == (
        ["system"],
        ["ion_debugfs"],
    )


def _fd_dump(fdinfo: bytes, target: str, pid: int = 1234, fd: int = 77) -> bytes:
    d = DumpBuilder()
    d.files(
        "proc",
        {
            f"/proc/{pid}/status": f"Name:\tcamerahalserver\nPid:\t{pid}\nUid:\t1047\t1047"
            "\t1047\t1047\n"
        },
    )
    d.stat("fdlinks", [f"/proc/{pid}/fd/{fd} /proc/{pid}/fd/{fd} -> '{target}'"])
    d.section("fdinfo", "files", files_body({f"/proc/{pid}/fdinfo/{fd}": fdinfo}))
    return d.build()


def test_mtk_fdinfo_name_with_colon() -> None:
    a = analyze(
        _fd_dump(
            sample_text("fdinfo_mtk_camera_halbuf_malloc_hook_14.txt"),
            "/dmabuf:1440x1080-NV21-halbuf:b1",
        )
    )
    r = a.references.iloc[0]
    assert (r["inode"], r["size_bytes"], r["count"], r["exporter"], r["name"]) == (
        16335,
        2408448,
        2,
        "mtk_mm",
        "1440x1080-NV21-halbuf:b1",
    )
    assert a.usage.set_index("pid").loc[1234, "rss_bytes"] == 2408448
    assert a.totals.kernel_only_bytes is None  # no global inventory


def test_qcom_fdinfo_with_spaces_instead_of_tabs() -> None:
    block = sample_parts("qcom_sa8397_android16_gvm_dmabuf_excerpts.txt")[
        "/proc/<pid>/fdinfo/<fd> for a dma-buf (companion note; only the dma-buf-relevant "
        "lines were quoted)"
    ]
    a = analyze(_fd_dump(block.strip() + b"\n", "/dmabuf:qcom,system", fd=100))
    r = a.references.iloc[0]
    assert (r["inode"], r["size_bytes"], r["count"], r["exporter"], r["name"]) == (
        168,
        11522048,
        8,
        "qcom,system",
        "qcom,system",
    )
    assert len(a.unparsed) == 0


def test_mtk_surfaceflinger_maps_excerpt() -> None:
    text = sample_text("proc_maps_dmabuf_surfaceflinger_mtk8195_android11_excerpt.txt")
    d = DumpBuilder().section("maps", "files", files_body({"/proc/500/maps": text}))
    a = analyze(d.build())
    maps = a.references[a.references["kind"] == "map"]
    assert sorted(maps["inode"].tolist()) == [70383, 87763]
    sizes = a.buffers.set_index("inode")["size_bytes"]
    assert (sizes[87763], sizes[70383]) == (0x2060000, 0x90C000)
    assert a.buffers["size_estimated"].all()  # no other size source: vma length
    u = a.usage.set_index("pid").loc[500]
    assert (u["rss_bytes"], u["maps"], u["map_only"], bool(u["rss_estimated"])) == (
        0x2060000 + 0x90C000,
        2,
        2,
        True,
    )
    # the author's "....." elision is reported; non-dma-buf lines are ignored
    assert a.unparsed["line"].tolist() == ["....."]


def test_pre_5_3_anon_inode_links() -> None:
    lines = sample_text("fd_symlinks_anon_inode_dmabuf_cog_87_excerpt.txt").split(b"\n")
    recs = []
    for line in lines:
        m = re.search(rb" (\d+) -> (anon_inode:dmabuf)$", line)
        if m:
            fd = m.group(1).decode()
            recs.append(f"/proc/709/fd/{fd} /proc/709/fd/{fd} -> 'anon_inode:dmabuf'")
    assert len(recs) == 11
    d = DumpBuilder().stat("fdlinks", recs).build()
    a = analyze(d)
    u = a.usage.set_index("pid").loc[709]
    assert (u["fds"], u["anon_fds"], u["anon_fd_unknown"], u["buffers"], u["rss_bytes"]) == (
        11,
        11,
        11,
        0,
        0,
    )
    assert a.totals.anon_fds == 11 and a.references["inode"].isna().all()


def test_dma_heap_listing() -> None:
    names = sample_text("ls_dev_dma_heap_qcom_centos_automotive_kmod_mr24.txt").split()[4:]
    assert names == [
        b"linux,cma",
        b"qcom,secure-pixel",
        b"qcom,system-uncached",
        b"qcom,secure-non-pixel",
        b"qcom,system",
        b"system",
    ]
    d = DumpBuilder().kv("dma_heap", [("heap", n.decode()) for n in names]).build()
    a = analyze(d)
    assert a.heaps["heap"].tolist() == [n.decode() for n in names]


def test_dmabuf_dump_layout_matches_cuttlefish_excerpt() -> None:
    """The per-process block of the Cuttlefish excerpt, rebuilt from a scene with the same
    buffers, is reproduced character for character (header and buffer rows)."""
    text = sample_text("dmabuf_dump_pid_exporter_cuttlefish_android_docs_excerpt.txt")
    # The page indents the block; with AOSP's "%16s:%-5d" the first line is
    # " droid.bitmaplab:19562" (22 columns), so the page's own indent is 7 spaces, and every
    # line lines up with the printf widths once those 7 are removed.
    published = [line[7:] for line in text.decode().split("\n") if line.strip()]
    kb = 1024
    bufs = [
        Buf(3397, 3840 * kb, "virtio_gpu"),
        Buf(3398, 12 * kb, "system", "system"),
        Buf(3399, 3840 * kb, "virtio_gpu"),
        Buf(3400, 12 * kb, "system", "system"),
    ]
    app = Proc(19562, "droid.bitmaplab", uid=10100, fds={10: 3397, 11: 3398, 12: 3399, 13: 3400})
    others = [
        Proc(300, "surfaceflinger", fds={5: 3397, 6: 3398, 7: 3399, 8: 3400}),
        Proc(301, "android.hardwar", fds={5: 3397, 6: 3398}),
    ]
    a = analyze(Scene(buffers=bufs, procs=[app, *others], inventory=("sysfs",)).build())
    out = format_dmabuf_dump(a).split("\n")
    i = [line.strip() for line in out].index("droid.bitmaplab:19562")
    assert out[i] == "%16s:%-5d" % ("droid.bitmaplab", 19562)  # noqa: UP031 - AOSP printf
    block = out[i : i + 6]
    assert block[0] == published[0]
    assert block[1:6] == published[1:6]


@pytest.mark.parametrize(
    "name",
    [
        "debugfs_bufinfo_amdgpu_gentoo_5.14_bz214621.txt",
        "debugfs_bufinfo_etnaviv_imx6_4.11_rmk_2017.txt",
        "debugfs_bufinfo_qcom_sony_ion_vendor_layout_2021_excerpt.txt",
        "debugfs_bufinfo_radeon_ubuntu_5.19.txt",
        "debugfs_bufinfo_rpi4_v3d_exclusive_fence_no_name_header_rpicam293_excerpt.txt",
        "debugfs_bufinfo_rpi4_vb2_vcsm_v3d_tfu_rpicam598_excerpt.txt",
    ],
)
def test_every_bufinfo_sample_in_a_dump(name: str) -> None:
    a = analyze(with_bufinfo(sample_text(name)))
    assert a.totals.inventory_source == "debugfs"
    assert len(a.inventory) == len(parse_bufinfo(sample_text(name)).records)
