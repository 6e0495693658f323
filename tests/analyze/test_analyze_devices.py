"""The view by attached device, from bufinfo attachments (real samples)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from dmaprof.analyze import analyze, build_report
from dmaprof.analyze.devices import category_of
from dmaprof.analyze.schema import DEVICE_VIEW
from tests.analyze.analyze_dumpgen import DumpBuilder
from tests.analyze.conftest import ROOT as REPO
from tests.analyze.conftest import sample_text
from tests.test_cli import run_dmaprof

BUFINFO = "/sys/kernel/debug/dma_buf/bufinfo"
WIDE = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}


def test_categories_of_real_device_names() -> None:
    assert category_of("soc:hgsl-iommu:gfx3d_user_0") == "gpu"
    assert category_of("fec00000.v3d") == "gpu"
    assert category_of("ae00000.qcom,mdss_mdp:qcom,smmu_sde_unsec_cb") == "display"
    assert category_of("aaa1000.qcom,vidc:non_secure_pixel_cb") == "codec"
    assert category_of("soc:qcom,cam_smmu:msm_cam_smmu_icp") == "camera"
    assert category_of("28027000.virtio-mmio") == "virtual"
    assert category_of("something") == "other"


def test_attached_devices_of_the_raspberry_pi_sample() -> None:
    # 8 buffers: six 622592-byte V4L2 buffers (inodes 75-80) each attached to both "gpu"
    # and "fec00000.v3d", one 1 MiB buffer attached to vcsm-cma, one attached to nothing
    dump = (
        DumpBuilder()
        .files(
            "global",
            {BUFINFO: sample_text("debugfs_bufinfo_rpi4_vb2_vcsm_v3d_tfu_rpicam598_excerpt.txt")},
        )
        .build()
    )
    report = build_report(analyze(dump))
    vb2 = ["videobuf2_dma_contig"]
    assert report["attached_devices"] == [
        {"device": "fec00000.v3d", "category": "gpu", "buffers": 6, "attachments": 6,
         "bytes": 6 * 622592, "exporters": vb2},
        {"device": "gpu", "category": "gpu", "buffers": 6, "attachments": 6,
         "bytes": 6 * 622592, "exporters": vb2},
        {"device": "vcsm-cma", "category": "camera", "buffers": 1, "attachments": 1,
         "bytes": 1048576, "exporters": vb2},
    ]  # fmt: skip


def _capture_of(tmp_path: Path, sample: str) -> Path:
    """A capture of a board whose collector read only this bufinfo (imported as a hand-run
    collector's output would be)."""
    dump = tmp_path / "dump"
    dump.write_bytes(DumpBuilder().files("global", {BUFINFO: sample_text(sample)}).build())
    capture = tmp_path / "board.dmaprof"
    result = run_dmaprof("import", str(dump), "-o", str(capture))
    assert result.returncode == 0, result.stderr
    return capture


def _show(capture: Path, *args: str) -> str:
    result = run_dmaprof("show", str(capture), "--by", "device", *args, env=WIDE)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


def test_show_by_device_on_the_raspberry_pi_samples(tmp_path: Path) -> None:
    """rpicam-apps#598 (6.1): inodes 80-75 are six 622592-byte videobuf2_dma_contig buffers,
    each attached to `gpu` and `fec00000.v3d`; 38 (vc_sm_cma, 1048576) has no attachment; 37
    (videobuf2_dma_contig, 1048576) is attached to `vcsm-cma` (its list is cut after it).
    8 buffers, 6 x 622592 + 2 x 1048576 = 5832704 bytes; 7 attached, 3735552 + 1048576."""
    capture = _capture_of(tmp_path, "debugfs_bufinfo_rpi4_vb2_vcsm_v3d_tfu_rpicam598_excerpt.txt")
    report = json.loads(_show(capture, "--format", "json"))
    assert all(list(r) == DEVICE_VIEW.names for r in report["attached_devices"])
    rows = {r["device"]: r for r in report["attached_devices"]}
    assert [r["device"] for r in report["attached_devices"]] == ["fec00000.v3d", "gpu", "vcsm-cma"]
    assert (rows["gpu"]["buffers"], rows["gpu"]["bytes"]) == (6, 3735552)
    assert (rows["fec00000.v3d"]["buffers"], rows["fec00000.v3d"]["bytes"]) == (6, 3735552)
    assert (rows["vcsm-cma"]["buffers"], rows["vcsm-cma"]["bytes"]) == (1, 1048576)
    summary = report["attached_devices_summary"]
    assert summary["state"] == "attached"
    assert (summary["buffers"], summary["bytes"]) == (8, 5832704)
    assert (summary["buffers_attached"], summary["bytes_attached"]) == (7, 4784128)
    table = _show(capture)
    assert "fec00000.v3d" in table and "vcsm-cma" in table and "3.6 MiB" in table
    assert "7 of 8 buffers in debugfs bufinfo (4784128 of 5832704 bytes)" in table
    rows_csv = list(csv.DictReader(io.StringIO(_show(capture, "--format", "csv"))))
    assert [(r["device"], r["category"], r["buffers"], r["bytes"]) for r in rows_csv] == [
        ("fec00000.v3d", "gpu", "6", "3735552"),
        ("gpu", "gpu", "6", "3735552"),
        ("vcsm-cma", "camera", "1", "1048576"),
    ]
    markdown = _show(capture, "--format", "markdown")
    assert "| fec00000.v3d | gpu | 6 | 6 | 3.6 MiB | videobuf2_dma_contig |" in markdown
    assert "7 of 8 buffers" in markdown


def test_show_by_device_counts_a_device_attached_twice_once(tmp_path: Path) -> None:
    """rpicam-apps#293 (5.x): 4 drm buffers (53248, 258048, 258048, 4096 bytes = 573440);
    14732 (258048) lists `fec00000.v3d` twice: one buffer, two attachments."""
    capture = _capture_of(
        tmp_path, "debugfs_bufinfo_rpi4_v3d_exclusive_fence_no_name_header_rpicam293_excerpt.txt"
    )
    report = json.loads(_show(capture, "--format", "json"))
    assert report["attached_devices"] == [
        {"device": "fec00000.v3d", "category": "gpu", "buffers": 1, "attachments": 2,
         "bytes": 258048, "exporters": ["drm"]},
    ]  # fmt: skip
    summary = report["attached_devices_summary"]
    assert (summary["buffers"], summary["bytes"], summary["bytes_attached"]) == (
        4,
        573440,
        258048,
    )


def test_show_by_device_on_the_amdgpu_sample_says_nothing_is_attached(tmp_path: Path) -> None:
    """kernel bugzilla 214621 (amdgpu, 5.14): 9 drm buffers, 38608896 bytes (the trailer's
    total), every `Attached Devices:` list empty."""
    capture = _capture_of(tmp_path, "debugfs_bufinfo_amdgpu_gentoo_5.14_bz214621.txt")
    report = json.loads(_show(capture, "--format", "json"))
    assert report["attached_devices"] == []
    summary = report["attached_devices_summary"]
    assert summary["state"] == "none_attached"
    assert (summary["buffers"], summary["bytes"], summary["buffers_attached"]) == (
        9,
        38608896,
        0,
    )
    sentence = "no buffer is attached to a device: debugfs bufinfo lists 9 buffers (38608896 bytes)"
    # the table says it as a sentence (capitalised), markdown and stderr as a note
    assert sentence in _show(capture).lower()
    assert sentence in _show(capture, "--format", "markdown").lower()
    result = run_dmaprof("show", str(capture), "--by", "device", "--format", "csv")
    assert result.stdout.decode().splitlines() == [
        "device,category,buffers,attachments,bytes,exporters"
    ]
    assert sentence in result.stderr.decode().lower()


def test_show_by_device_without_bufinfo(tmp_path: Path) -> None:
    # a collector dump without bufinfo, and an imported bugreport: said, not an empty table
    dump = tmp_path / "dump"
    dump.write_bytes(DumpBuilder().files("global", {}).build())
    capture = tmp_path / "none.dmaprof"
    assert run_dmaprof("import", str(dump), "-o", str(capture)).returncode == 0
    assert "no attachment data" in _show(capture).lower()
    report = tmp_path / "br.dmaprof"
    bugreport = REPO / "fixtures" / "bugreports"
    source = next(bugreport.glob("bugreport-tokay-*-10-15-30.txt"))
    assert run_dmaprof("import", str(source), "-o", str(report)).returncode == 0
    text = _show(report)
    assert "no attachment data: a bugreport capture has none" in text.lower()


def test_device_view_of_the_oldest_layout_without_inodes() -> None:
    # etnaviv on i.MX6 (4.11): one 8294400-byte scanout buffer, no inode column, attached to
    # `gpu-subsystem` (the display): attachments are keyed by bufinfo record, not inode
    dump = DumpBuilder().files(
        "global", {BUFINFO: sample_text("debugfs_bufinfo_etnaviv_imx6_4.11_rmk_2017.txt")}
    )
    report = build_report(analyze(dump.build()))
    assert report["attached_devices"] == [
        {"device": "gpu-subsystem", "category": "gpu", "buffers": 1, "attachments": 1,
         "bytes": 8294400, "exporters": ["drm"]},
    ]  # fmt: skip
    assert report["attached_devices_summary"]["bytes_attached"] == 8294400


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
@pytest.mark.skipif(shutil.which("busybox") is None, reason="needs busybox (scripts/test.sh)")
def test_board_collector_reads_the_raspberry_pi_bufinfo(tmp_path: Path) -> None:
    """The hand-run collector on a busybox board whose debugfs bufinfo is the published
    Raspberry Pi text (tabs and all): `dmaprof import` of its output, then `show --by
    device`, gives the figures of test_show_by_device_on_the_raspberry_pi_samples."""
    from tests.emuphone import scene as S

    root = tmp_path / "board"
    S.build_busybox_root(root)
    S.build_scene(S.load_scene(S.FIXTURES / "pixel-like.json"), root)
    bufinfo = root / "sys" / "kernel" / "debug" / "dma_buf" / "bufinfo"
    bufinfo.parent.mkdir(parents=True, exist_ok=True)
    bufinfo.write_bytes(
        sample_text("debugfs_bufinfo_rpi4_vb2_vcsm_v3d_tfu_rpicam598_excerpt.txt") + b"\n"
    )
    wd = S.install_collector(root, 0, "dp-board")
    run = S.run_collector(root, ["-w", wd], script=f"{wd}/collect.sh")
    assert run.returncode == 0, run.stderr
    dump = tmp_path / "dump"
    dump.write_bytes(run.stdout)
    capture = tmp_path / "board.dmaprof"
    assert run_dmaprof("import", str(dump), "-o", str(capture)).returncode == 0
    report = json.loads(_show(capture, "--format", "json"))
    assert [(r["device"], r["buffers"], r["bytes"]) for r in report["attached_devices"]] == [
        ("fec00000.v3d", 6, 3735552),
        ("gpu", 6, 3735552),
        ("vcsm-cma", 1, 1048576),
    ]
    summary = report["attached_devices_summary"]
    assert (summary["buffers"], summary["bytes_attached"]) == (8, 4784128)
