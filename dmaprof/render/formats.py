"""Output formats: one registry per document (show, diff, trend, devices, export) that maps a
``--format`` name, or the suffix of the ``-o`` file, to the renderer that writes it.

The command line reads its ``--format`` choices here, so this module imports nothing heavy at
module level: each renderer imports its render module when it runs (``dmaprof --help`` stays
fast). A new format is one entry in a registry; every command that uses it gets it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TextIO, TypeVar, cast

from dmaprof.errors import DmaprofError
from dmaprof.timing import stage

if TYPE_CHECKING:
    from rich.console import Console

    from dmaprof.analyze.analysis import Analysis
    from dmaprof.leaks.trend import TrendResult
    from dmaprof.records import DeviceReport
    from dmaprof.render.export import ExportResult
    from dmaprof.render.perfetto import TraceSummary

D = TypeVar("D")
R = TypeVar("R")


@dataclass(frozen=True)
class Format:
    """A format's name, the ``-o`` suffixes that pick it, and an optional module it needs
    (a format of an extra: the check runs before any work and before any file is opened)."""

    name: str
    suffixes: tuple[str, ...] = ()
    needs: tuple[str, str] | None = None  # (module, what to say when it is missing)


@dataclass
class Target:
    """Where a renderer writes, and what a command asked of the rendering."""

    stream: TextIO | None
    note: Callable[[str], None]
    to_stdout: bool = False
    console_for: Callable[[TextIO], Console] | None = None
    by: str | None = None
    top: int | None = None
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def console(self) -> Console:
        """A rich console over the stream (stdout's own console on stdout)."""
        assert self.stream is not None and self.console_for is not None
        return self.console_for(self.stream)

    @property
    def out(self) -> TextIO:
        assert self.stream is not None
        return self.stream

    def table_doc(self, doc: dict[str, Any], *, said: bool = False) -> dict[str, Any]:
        """A table's document: on stdout its warnings go to stderr, once (``said``: they were
        said there already), and the table leaves them out; a file keeps them, it must stand
        on its own."""
        if not self.to_stdout:
            return doc
        if not said:
            for warning in doc.get("warnings") or []:
                self.note(f"warning: {warning}")
        return {**doc, "warnings": []}


Renderer = Callable[[D, Target], R]


class Registry(Generic[D, R]):
    """The formats of one document, in the order ``--help`` lists them; the first is the
    default."""

    def __init__(
        self, what: str, entries: Mapping[Format, Renderer[D, R]], *, verb: str = "render"
    ) -> None:
        self.what = what
        self.verb = verb
        self._formats = {f.name: f for f in entries}
        self._renderers = {f.name: r for f, r in entries.items()}

    @property
    def names(self) -> list[str]:
        return list(self._formats)

    @property
    def default(self) -> str:
        return self.names[0]

    def suffixes(self) -> Iterator[str]:
        for f in self._formats.values():
            yield from f.suffixes

    def choose(self, fmt: str | None, output: Path | None = None) -> str:
        """``--format``, else the one the ``-o`` file's suffix names, else the default; fails
        (before any work) when the format's optional module is not installed."""
        if fmt is None:
            suffix = output.suffix.lower() if output is not None else None
            by_suffix = {s: f.name for f in self._formats.values() for s in f.suffixes}
            fmt = by_suffix.get(suffix or "", self.default)
        needs = self._formats[fmt].needs
        if needs is not None and importlib.util.find_spec(needs[0]) is None:
            raise DmaprofError(needs[1])
        return fmt

    def render(self, fmt: str, doc: D, target: Target) -> R:
        with stage(f"{self.verb} the {self.what} as {fmt}"):
            return self._renderers[fmt](doc, target)


HTML = Format(
    "html",
    (".html", ".htm"),
    needs=("plotly", "HTML reports need plotly: pip install 'dmaprof[html]'"),
)
TABLE = Format("table", (".txt",))
JSON = Format("json", (".json",))
CSV = Format("csv", (".csv",))
MARKDOWN = Format("markdown", (".md",))


# --------------------------------------------------------------------------- show


@dataclass(frozen=True)
class ShowInput:
    """What `dmaprof show` renders: the report, and the analysis behind it (dmabuf_dump)."""

    report: dict[str, Any]
    analysis: Analysis


def _show_table(src: ShowInput, target: Target) -> None:
    from dmaprof.render.report import render_default_table, render_view_table

    report = target.table_doc(src.report)
    if target.by:
        render_view_table(report, target.by, target.top or 15, target.console)
    else:
        render_default_table(report, target.top or 15, target.console)


def _show_json(src: ShowInput, target: Target) -> None:
    from dmaprof.render.report import render_json

    render_json(src.report, target.out)


def _show_csv(src: ShowInput, target: Target) -> None:
    from dmaprof.render.report import render_csv

    report = src.report
    render_csv(report, target.by or "process", target.top, target.out)
    if target.by == "device" and not report.get("attached_devices"):
        target.note((report.get("attached_devices_summary") or {}).get("note") or "")


def _show_markdown(src: ShowInput, target: Target) -> None:
    from dmaprof.render.report import render_markdown

    render_markdown(src.report, target.by, target.top or 15, target.out)


def _show_dmabuf_dump(src: ShowInput, target: Target) -> None:
    from dmaprof.analyze.report import format_dmabuf_dump

    target.out.write(format_dmabuf_dump(src.analysis))


def _show_html(src: ShowInput, target: Target) -> None:
    from dmaprof.render.html import show_html

    target.out.write(show_html(src.report))


SHOW: Registry[ShowInput, None] = Registry(
    "report",
    {
        TABLE: _show_table,
        JSON: _show_json,
        CSV: _show_csv,
        MARKDOWN: _show_markdown,
        Format("dmabuf_dump"): _show_dmabuf_dump,
        HTML: _show_html,
    },
)


# --------------------------------------------------------------------------- diff


def _diff_table(doc: dict[str, Any], target: Target) -> None:
    from dmaprof.render.diff import render_table

    # `diff` says its warnings on stderr before any format: a table on stdout leaves them out
    render_table(target.table_doc(doc, said=True), target.by, target.top or 15, target.console)


def _diff_json(doc: dict[str, Any], target: Target) -> None:
    from dmaprof.render.diff import render_json

    render_json(doc, target.out)


def _diff_csv(doc: dict[str, Any], target: Target) -> None:
    from dmaprof.render.diff import render_csv

    render_csv(doc, target.by, target.out)


def _diff_markdown(doc: dict[str, Any], target: Target) -> None:
    from dmaprof.render.diff import render_markdown

    render_markdown(doc, target.by, target.top or 15, target.out)


def _diff_html(doc: dict[str, Any], target: Target) -> None:
    from dmaprof.render.htmlleaks import diff_html

    target.out.write(diff_html(doc))


DIFF: Registry[dict[str, Any], None] = Registry(
    "diff",
    {
        TABLE: _diff_table,
        JSON: _diff_json,
        CSV: _diff_csv,
        MARKDOWN: _diff_markdown,
        HTML: _diff_html,
    },
)


# --------------------------------------------------------------------------- trend


def trend_page(result: TrendResult) -> str:
    """The interactive HTML report of a trend (the show report's frame, zoomable charts)."""
    from dmaprof.render.htmlleaks import trend_html

    points = result.points[["kind", "key", "minutes", "bytes"]].to_dict("records")
    return trend_html(result.doc, cast("list[dict[str, Any]]", points))


def _trend_table(result: TrendResult, target: Target) -> None:
    from dmaprof.render.diff import render_trend_table

    doc = target.table_doc(result.doc)
    render_trend_table(doc, target.by, target.top or 20, target.console)


def _trend_json(result: TrendResult, target: Target) -> None:
    from dmaprof.render.diff import render_json

    render_json(result.doc, target.out)


def _trend_csv(result: TrendResult, target: Target) -> None:
    from dmaprof.render.diff import render_trend_csv

    render_trend_csv(result.doc, target.by, target.out)


def _trend_markdown(result: TrendResult, target: Target) -> None:
    from dmaprof.render.diff import render_trend_markdown

    render_trend_markdown(result.doc, target.by, target.top or 20, target.out)


def _trend_html(result: TrendResult, target: Target) -> None:
    target.out.write(trend_page(result))


TREND: Registry[TrendResult, None] = Registry(
    "trend",
    {
        TABLE: _trend_table,
        JSON: _trend_json,
        CSV: _trend_csv,
        MARKDOWN: _trend_markdown,
        HTML: _trend_html,
    },
)


# --------------------------------------------------------------------------- devices


def _devices_table(reports: list[DeviceReport], target: Target) -> None:
    from dmaprof.render.devices import render_devices_table

    render_devices_table(reports, target.console)


def _devices_json(reports: list[DeviceReport], target: Target) -> None:
    from dmaprof.render.devices import render_devices_json

    render_devices_json(reports, target.out)


DEVICES: Registry[list[DeviceReport], None] = Registry(
    "devices", {TABLE: _devices_table, JSON: _devices_json}
)


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportJob:
    """What `dmaprof export` writes: captures (files or directories of them), as one dataset
    in ``Target.path``."""

    captures: tuple[Path, ...]
    charge: str
    overwrite: bool


def _export_dataset(fmt: str) -> Renderer[ExportJob, ExportResult]:
    def write(job: ExportJob, target: Target) -> ExportResult:
        from dmaprof.render.export import export_captures

        assert target.path is not None
        return export_captures(
            job.captures,
            target.path,
            fmt=fmt,
            charge=job.charge,
            overwrite=job.overwrite,
            progress=target.note,
        )

    return write


def _export_perfetto(job: ExportJob, target: Target) -> TraceSummary:
    from dmaprof.render.perfetto import export_trace

    # one series or capture: `dmaprof export` says so as a usage error before any work
    assert target.path is not None and len(job.captures) == 1
    return export_trace(
        job.captures[0],
        target.path,
        charge=job.charge,
        top=target.top or 20,
        overwrite=job.overwrite,
        note=target.note,
        progress=target.extra.get("progress"),
    )


PERFETTO = Format(
    "perfetto",
    (".pftrace", ".perfetto-trace"),
    needs=(
        "perfetto",
        "Perfetto traces need the perfetto and protobuf packages: pip install 'dmaprof[perfetto]'",
    ),
)
EXPORT: Registry[ExportJob, ExportResult | TraceSummary] = Registry(
    "dataset",
    {
        Format("parquet"): _export_dataset("parquet"),
        Format("csv"): _export_dataset("csv"),
        PERFETTO: _export_perfetto,
    },
    verb="write",
)
