"""The view by attached device, from bufinfo attachments (real samples)."""

from __future__ import annotations

from dmaprof.analyze import analyze, build_report
from dmaprof.analyze.devices import category_of
from tests.analyze.analyze_dumpgen import DumpBuilder
from tests.analyze.conftest import sample_text

BUFINFO = "/sys/kernel/debug/dma_buf/bufinfo"


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
    assert report["attached_devices"] == [
        {"device": "fec00000.v3d", "category": "gpu", "buffers": 6, "bytes": 6 * 622592},
        {"device": "gpu", "category": "gpu", "buffers": 6, "bytes": 6 * 622592},
        {"device": "vcsm-cma", "category": "camera", "buffers": 1, "bytes": 1048576},
    ]
