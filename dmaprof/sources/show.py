"""`dmaprof show`: from a capture to the attribution report (`dmaprof.report/1`)."""

from __future__ import annotations

import time
from typing import Any, cast

from dmaprof.analyze.analysis import Analysis
from dmaprof.analyze.report import build_report
from dmaprof.analyze.reporttypes import CaptureRef
from dmaprof.capture.container import Capture
from dmaprof.sources import analyze_source


def capture_device(capture: Capture) -> dict[str, Any]:
    """Device facts recorded at capture time (serial, transport), over the dump's own."""
    device = {k: v for k, v in capture.device.items() if v not in ("", None)}
    collection = capture.meta.get("collection") or {}
    started = collection.get("wallclock_start")
    if isinstance(started, int | float):
        device["captured_at"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
    transport = capture.meta.get("transport") or {}
    device["transport"] = transport.get("kind")
    device["root_method"] = transport.get("root_method")
    device["collected_as_uid"] = collection.get("uid")
    return device


def analyze_capture(
    capture: Capture, *, charge: str = "shared", service_regex: str | None = None
) -> tuple[Analysis, dict[str, Any]]:
    # the analysis by the capture's source kind: collector dump, bugreport, dmabuf_dump text
    analysis = analyze_source(capture, charge=charge, service_regex=service_regex)
    ref: CaptureRef = {
        "path": str(capture.path) if capture.path else None,
        "complete": capture.complete,
        "schema": capture.meta.get("schema"),
    }
    report = build_report(analysis, device=capture_device(capture), capture=ref)
    # renderers read the document as JSON (it may come from a file): a plain dict to them
    return analysis, cast(dict[str, Any], report)


#: report lists that --pid cannot narrow (their rows are sums over other processes too)
DEVICE_WIDE = ("totals", "apps", "cgroups", "kernel_only", "attached_devices")


def only_pid(report: dict[str, Any], pid: int) -> dict[str, Any]:
    """The report narrowed to one process: its row, the buffers it holds, their exporters
    and names (recounted from those buffers) and its binder row. What cannot be narrowed
    stays device-wide, listed in ``filter.device_wide``."""
    narrowed = dict(report)
    narrowed["processes"] = [p for p in report.get("processes", []) if p.get("pid") == pid]
    held = [b for b in report.get("buffers", []) if pid in (b.get("holders") or [])]
    narrowed["buffers"] = held
    narrowed["exporters"] = _regroup(held, "exporter")
    narrowed["names"] = _regroup(held, "name")
    binder = report.get("binder")
    if isinstance(binder, dict) and isinstance(binder.get("processes"), list):
        narrowed["binder"] = {
            **binder,
            "processes": [p for p in binder["processes"] if p.get("pid") == pid],
        }
    narrowed["filter"] = {"pid": pid, "device_wide": list(DEVICE_WIDE)}
    return narrowed


def _regroup(buffers: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """exporters/names rows (the report's group_usage shape) of some buffers, all held."""
    groups: dict[str, dict[str, Any]] = {}
    for b in buffers:
        label = str(b.get(key) or "")
        row = groups.setdefault(
            label,
            {key: label, "buffers": 0, "bytes": 0, "userspace_buffers": 0,
             "userspace_bytes": 0, "kernel_only_buffers": 0, "kernel_only_bytes": 0,
             "holders": 1},
        )  # fmt: skip
        size = int(b.get("size_bytes") or 0)
        row["buffers"] += 1
        row["bytes"] += size
        row["userspace_buffers"] += 1
        row["userspace_bytes"] += size
    return sorted(groups.values(), key=lambda r: (-r["bytes"], r[key]))
