"""The view by attached (importing) device: which display, GPU, camera or codec imports what.

debugfs `bufinfo` lists every buffer's attachments (`dev_name` of each importing device).
Desktop and board kernels export most buffers from GPU drivers, so the exporter alone says
little; the importers say where the memory goes. A buffer attached to several devices counts
once for each of them (rows do not add up to the total; `buffers_attached` does).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from dmaprof.analyze.reporttypes import AttachedDevice, AttachedSummary

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


def attached_device_rows(
    inventory: pd.DataFrame, attachments: pd.DataFrame
) -> list[AttachedDevice]:
    """One row per importing device: the bufinfo buffers attached to it (a buffer a device
    attached twice counts once in ``buffers``/``bytes``, twice in ``attachments``), their
    bytes (bufinfo's sizes, raw) and exporters. Pre-5.3 buffers (no inode) count too: the
    attachments are keyed by bufinfo record."""
    if len(attachments) == 0:
        return []
    records = _bufinfo_records(inventory)
    att = pd.DataFrame(
        {
            "record": attachments["record"].to_numpy(dtype=np.int64),
            "device": attachments["device"].astype(object).to_numpy(),
        }
    )
    att = att.merge(records, on="record", how="left")
    counted = att.groupby("device", sort=False)["record"].size().rename("attachments")
    unique = att.drop_duplicates(["record", "device"])
    grouped = unique.groupby("device", sort=False).agg(
        buffers=("record", "size"),
        bytes=("size_bytes", "sum"),
        exporters=("exporter", lambda e: tuple(sorted({x for x in e if isinstance(x, str)}))),
    )
    grouped = grouped.join(counted).reset_index()
    grouped = grouped.sort_values(["bytes", "device"], ascending=[False, True])
    return [
        {
            "device": str(device),
            "category": category_of(str(device)),
            "buffers": int(n),
            "attachments": int(k),
            "bytes": int(b),
            "exporters": list(e),
        }
        for device, n, k, b, e in zip(
            grouped["device"].tolist(),
            grouped["buffers"].tolist(),
            grouped["attachments"].tolist(),
            grouped["bytes"].tolist(),
            grouped["exporters"].tolist(),
            strict=True,
        )
    ]


def _bufinfo_records(inventory: pd.DataFrame) -> pd.DataFrame:
    """bufinfo's records in file order (``attachments.record`` indexes them)."""
    inv = inventory[inventory["source"].astype(object) == "debugfs"]
    return pd.DataFrame(
        {
            "record": np.arange(len(inv), dtype=np.int64),
            "size_bytes": inv["size_bytes"].to_numpy(dtype=np.int64, na_value=0),
            "exporter": inv["exporter"].astype(object).to_numpy(),
        }
    )


#: why a capture has no attachment data, by the state of its bufinfo file
_NO_BUFINFO = {
    "denied": "debugfs bufinfo was not readable (it needs root and a mounted debugfs)",
    "absent": "this kernel has no debugfs bufinfo (debugfs not mounted, or CONFIG_DEBUG_FS off)",
    "error": "debugfs bufinfo could not be read",
}


def attached_device_summary(
    inventory: pd.DataFrame, attachments: pd.DataFrame, bufinfo_state: str | None
) -> AttachedSummary:
    """What the device view covers, and a sentence when it is empty: no bufinfo read (it is
    the only source of attachments), or bufinfo read but no buffer attached to a device."""
    records = _bufinfo_records(inventory)
    attached = np.unique(attachments["record"].to_numpy(dtype=np.int64))
    sizes = records["size_bytes"].to_numpy(dtype=np.int64)
    out: AttachedSummary = {
        "state": "attached",
        "source": "debugfs_bufinfo" if len(records) else None,
        "bufinfo": bufinfo_state,
        "buffers": len(records) if len(records) else None,
        "bytes": int(sizes.sum()) if len(records) else None,
        "buffers_attached": int(attached.size) if len(records) else None,
        "bytes_attached": int(sizes[attached].sum()) if len(records) else None,
        "note": None,
    }
    if not len(records):
        why = _NO_BUFINFO.get(
            bufinfo_state or "", "this capture has no debugfs bufinfo (collected without it)"
        )
        if bufinfo_state in ("present", "empty"):
            why = "debugfs bufinfo lists no buffer"
        out["state"] = "no_bufinfo"
        out["note"] = (
            f"no attachment data: {why}; only bufinfo lists the devices that import a buffer"
        )
    elif not attached.size:
        out["state"] = "none_attached"
        out["note"] = (
            f"no buffer is attached to a device: debugfs bufinfo lists {len(records)} buffers "
            f"({int(sizes.sum())} bytes), each with an empty `Attached Devices:` list (a "
            "driver using the buffers it exported does not attach to them)"
        )
    else:
        out["state"] = "attached"
        out["note"] = (
            f"{int(attached.size)} of {len(records)} buffers in debugfs bufinfo "
            f"({int(sizes[attached].sum())} of {int(sizes.sum())} bytes) are attached to a "
            "device; a buffer attached to several devices counts for each of them"
        )
    return out
