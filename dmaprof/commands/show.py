"""`dmaprof show`: a capture's attribution report, in any of its formats."""

from __future__ import annotations

from pathlib import Path

import click

from dmaprof.choices import SHOW_VIEWS
from dmaprof.commands.common import EPILOG, INPUT_PATH, load_captures, output_target
from dmaprof.commands.options import (
    by_option,
    charge_option,
    format_option,
    output_option,
    service_option,
)
from dmaprof.render.formats import SHOW, ShowInput


@click.command(epilog=EPILOG)
@click.argument("capture_path", metavar="CAPTURE", type=INPUT_PATH)
@by_option(SHOW_VIEWS, "One view instead of the default overview.")
@click.option(
    "--top", type=click.IntRange(min=1), help="Rows per table (default 15; all in csv/json)."
)
@charge_option()
@service_option
@click.option("--pid", type=int, help="Only this process and the buffers it holds.")
@format_option(SHOW, "Output format (default: table, or from the -o extension).")
@output_option
def show(
    capture_path: Path,
    by: str | None,
    top: int | None,
    charge: str,
    service_regex: str | None,
    pid: int | None,
    fmt: str | None,
    output: Path | None,
) -> None:
    """Attribute every DMA-BUF of a capture to processes, apps, cgroups and exporters.

    The default view: the device, what could be read, totals (all buffers, held by
    processes, kernel-only, heap pools), the top holders and the exporters. Figures that
    unreadable processes could change are marked as lower bounds. JSON and CSV carry raw
    integer bytes; JSON always holds the whole report (schema dmaprof.report/1).
    """
    fmt = SHOW.choose(fmt, output)
    [capture] = load_captures([capture_path], "dmaprof.sources.show")
    from dmaprof.sources.show import analyze_capture, only_pid

    analysis, report = analyze_capture(capture, charge=charge, service_regex=service_regex)
    if pid is not None:
        report = only_pid(report, pid)
    with output_target(output, by=by, top=top) as target:
        SHOW.render(fmt, ShowInput(report, analysis), target)
