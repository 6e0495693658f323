"""Sources of a capture other than the collector: bugreports and ``dmabuf_dump`` output.

A capture's ``meta.json`` says where its ``dump.bin`` came from (``"source": {"kind": ...}``,
``docs/capture-format.md``); without that key it is a collector dump. :func:`analyze_source`
picks the analysis by that kind, so ``show``, ``diff``, ``trend`` and ``export`` accept every
capture alike. Importing (a file into a capture) is :func:`dmaprof.sources.importer.import_file`.
"""

from __future__ import annotations

from typing import Any

from dmaprof.analyze.analysis import Analysis
from dmaprof.capture.container import Capture
from dmaprof.errors import BadCaptureError
from dmaprof.timing import stage

__all__ = [
    "SOURCE_KINDS",
    "analyze_source",
    "binder_of",
    "finish_report",
    "limitations_of",
    "source_info",
    "source_kind",
]

#: kinds of ``dump.bin`` a capture can hold
SOURCE_KINDS = ("collector", "bugreport", "dmabuf_dump")


def source_info(capture: Capture) -> dict[str, Any]:
    source = capture.meta.get("source")
    if isinstance(source, dict) and isinstance(source.get("kind"), str):
        return dict(source)
    return {"kind": "collector"}


def source_kind(capture: Capture) -> str:
    return str(source_info(capture)["kind"])


def analyze_source(
    capture: Capture, *, charge: str = "shared", service_regex: str | None = None
) -> Analysis:
    """The analysis of any capture, by its source kind."""
    kind = source_kind(capture)
    if kind == "collector":
        from dmaprof.analyze.analysis import analyze

        with stage(f"analyse {capture.label} ({len(capture.dump):,} bytes of dump)"):
            return analyze(capture.dump, charge=charge, service_regex=service_regex)
    if kind in ("bugreport", "dmabuf_dump"):
        from dmaprof.sources.build import build_analysis
        from dmaprof.sources.inputs import source_input

        with stage(f"analyse {capture.label} (a {kind})"):
            return build_analysis(source_input(capture), charge=charge, service_regex=service_regex)
    raise BadCaptureError(
        f"{capture.label}: a capture of source kind {kind!r}, which this dmaprof cannot read "
        "(written by a newer dmaprof?)"
    )


def limitations_of(analysis: Analysis) -> list[dict[str, str]]:
    return list(getattr(analysis, "limitations", []) or [])


def finish_report(report: dict[str, Any], analysis: Analysis, capture: Capture) -> None:
    """Add the source, its limitations and what it cannot tell to a ``dmaprof.report/1``:
    figures a source cannot give become null (never a zero that looks measured)."""
    report["source"] = source_info(capture)
    report["limitations"] = limitations_of(analysis)
    unknown: dict[str, list[str]] = dict(getattr(analysis, "unknown", {}) or {})
    report_unknown: dict[str, list[str]] = {}
    usage_cols = [c for c in unknown.get("usage", []) if c]
    if usage_cols:
        for row in report.get("processes") or []:
            for col in usage_cols:
                if col in row:
                    row[col] = None
        report_unknown["processes"] = usage_cols
    for key in unknown.get("totals", []):
        if key in report.get("totals", {}):
            report["totals"][key] = None
    if unknown:
        report_unknown["totals"] = list(unknown.get("totals", []))
        if any(lim.get("key") == "cgroups" for lim in report["limitations"]):
            report_unknown["cgroups"] = ["path", "pss_bytes", "pss_bytes_with_descendants"]
        report["unknown"] = report_unknown
    stated = getattr(analysis, "stated_totals", None)
    if stated is not None:
        report["process_totals"] = list(stated)
    meminfo = getattr(analysis, "meminfo", None)
    if meminfo:
        report["meminfo"] = dict(meminfo)
    report["binder"] = binder_of(analysis, capture)
    kind = source_kind(capture)
    summary = report.get("attached_devices_summary")
    if kind != "collector" and isinstance(summary, dict):
        summary["state"] = "no_bufinfo"
        summary["note"] = (
            f"no attachment data: a {kind} capture has none (only debugfs bufinfo lists the "
            "devices that import a buffer)"
        )


def binder_of(analysis: Analysis, capture: Capture) -> dict[str, Any]:
    """The binder view of a capture (``dmaprof show --by binder``)."""
    from dmaprof.analyze.binder import BinderInfo, binder_report, parse_binder

    kind = source_kind(capture)
    if kind != "collector":
        out = binder_report(BinderInfo("not_collected"))
        out["note"] = f"a {kind} capture has no binder buffer data (only the collector reads it)"
        return out
    p = analysis.processes
    names = {
        int(pid): str(name)
        for pid, name in zip(p["pid"].tolist(), p["name"].astype(object).tolist(), strict=True)
        if isinstance(name, str)
    }
    return binder_report(parse_binder(analysis.dump), names)
