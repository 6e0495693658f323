"""Sources of a capture other than the collector: bugreports and ``dmabuf_dump`` output.

A capture's ``meta.json`` says where its ``dump.bin`` came from (``"source": {"kind": ...}``,
``docs/capture-format.md``); without that key it is a collector dump. :func:`analyze_source`
picks the analysis by that kind, so ``show``, ``diff``, ``trend`` and ``export`` accept every
capture alike. Importing (a file into a capture) is :func:`dmaprof.sources.importer.import_file`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dmaprof.analyze.analysis import Analysis
from dmaprof.capture.container import Capture
from dmaprof.errors import BadCaptureError
from dmaprof.timing import stage

__all__ = [
    "SOURCE_KINDS",
    "analyze_source",
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
            analysis = analyze(capture.dump, charge=charge, service_regex=service_regex)
        source = source_info(capture)
        return analysis if source == analysis.source else replace(analysis, source=source)
    if kind in ("bugreport", "dmabuf_dump"):
        from dmaprof.sources.build import build_analysis
        from dmaprof.sources.inputs import source_input

        with stage(f"analyse {capture.label} (a {kind})"):
            return build_analysis(source_input(capture), charge=charge, service_regex=service_regex)
    raise BadCaptureError(
        f"{capture.label}: a capture of source kind {kind!r}, which this dmaprof cannot read "
        "(written by a newer dmaprof?)"
    )
