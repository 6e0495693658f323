"""The view by attached (importing) device: which display, GPU, camera or codec imports what.

debugfs `bufinfo` lists every buffer's attachments (`dev_name` of each importing device).
Desktop and board kernels export most buffers from GPU drivers, so the exporter alone says
little; the importers say where the memory goes. A buffer attached to several devices counts
once for each of them (rows do not add up to the total; `buffers_attached` does).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

# (category, pattern on the device name): first match wins. Names seen in bufinfo dumps:
# soc:hgsl-iommu:gfx3d_user_0, fec00000.v3d, ae00000.qcom,mdss_mdp:..., aaa1000.qcom,vidc:*,
# soc:qcom,cam_smmu:msm_cam_smmu_icp, gpu-subsystem, vgem, 28027000.virtio-mmio, hab-aud.
CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("codec", r"vidc|codec|vpu|venc|vdec|mfc|hantro|rkvdec|jpeg|c2|bitstream"),
        ("camera", r"cam|isp|csi|unicam|lwis|vb2|v4l2|vcsm"),
        ("display", r"mdss|mdp|sde|dpu|display|disp|vop|hdmi|dsi|lcd|drm|crtc|hvs|fb"),
        (
            "gpu",
            r"gpu|kgsl|hgsl|gfx|mali|v3d|vc4|amdgpu|radeon|i915|etnaviv|adreno|sgx|panfrost|tfu",
        ),
        ("audio", r"aud|snd|adsp"),
        ("virtual", r"virtio|hab-|vgem"),
    )
)


def category_of(device: str) -> str:
    for name, pattern in CATEGORIES:
        if pattern.search(device):
            return name
    return "other"


def attached_device_rows(buffers: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per importing device: buffers and bytes attached to it (raw bytes)."""
    if len(buffers) == 0 or "attached_devices" not in buffers:
        return []
    exploded = (
        buffers[["inode", "size_bytes", "attached_devices"]]
        .assign(device=buffers["attached_devices"].map(lambda d: list(d) if d else []))
        .explode("device")
        .dropna(subset=["device"])
    )
    if len(exploded) == 0:
        return []
    exploded = exploded.drop_duplicates(["inode", "device"])
    grouped = (
        exploded.groupby("device", sort=False)
        .agg(buffers=("inode", "size"), bytes=("size_bytes", "sum"))
        .reset_index()
        .sort_values(["bytes", "device"], ascending=[False, True])
    )
    return [
        {
            "device": str(device),
            "category": category_of(str(device)),
            "buffers": int(n),
            "bytes": int(b),
        }
        for device, n, b in zip(
            grouped["device"].tolist(),
            grouped["buffers"].tolist(),
            grouped["bytes"].tolist(),
            strict=True,
        )
    ]
