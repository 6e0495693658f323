"""`dmaprof show`: from a capture to the attribution report (`dmaprof.report/1`)."""

from __future__ import annotations

import time
from typing import Any

from dmaprof.analyze.analysis import Analysis
from dmaprof.analyze.report import build_report
from dmaprof.capture import Capture
from dmaprof.sources import analyze_source, finish_report


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
    report = build_report(analysis, device=capture_device(capture))
    report["capture"] = {
        "path": str(capture.path) if capture.path else None,
        "complete": capture.complete,
        "schema": capture.meta.get("schema"),
    }
    finish_report(report, analysis, capture)
    return analysis, report


def only_pid(report: dict[str, Any], pid: int) -> dict[str, Any]:
    """The report narrowed to one process and the buffers it holds."""
    narrowed = dict(report)
    narrowed["processes"] = [p for p in report.get("processes", []) if p.get("pid") == pid]
    narrowed["buffers"] = [b for b in report.get("buffers", []) if pid in (b.get("holders") or [])]
    return narrowed
