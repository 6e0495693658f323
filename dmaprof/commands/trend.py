"""`dmaprof trend`: growth over time of a recorded series, and its leak verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from dmaprof.choices import TREND_KINDS
from dmaprof.commands.common import (
    EPILOG,
    INPUT_PATH,
    app_state,
    check_input,
    output_stream,
    output_target,
)
from dmaprof.commands.options import by_option, format_option, output_option, size
from dmaprof.errors import BudgetBreachedError
from dmaprof.render.formats import HTML, TREND, trend_page
from dmaprof.timing import stage

if TYPE_CHECKING:
    from dmaprof.leaks.trend import TrendResult

FORMAT_HELP = "Output format (default: table, or from the -o extension: .json .csv .md .html)."


@click.command(epilog=EPILOG)
@click.argument("directory", type=INPUT_PATH)
@by_option(TREND_KINDS, "Only the series of one kind.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Rows in table and markdown (leaks are always shown).",
)
@format_option(TREND, FORMAT_HELP)
@output_option
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write charts: FILE.html (the interactive report) or FILE.png (matplotlib).",
)
@click.option(
    "--min-growth",
    callback=size,
    default="1MiB",
    show_default=True,
    metavar="SIZE",
    help="Growth over the window below which no series is a leak.",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.5, 1.0, max_open=True),
    default=0.95,
    show_default=True,
    help="Mann-Kendall confidence a leak needs.",
)
@click.option("--fail-on-leak", is_flag=True, help="Exit 10 when a leak is flagged (CI).")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Analyse every sample again (by default each sample's figures are kept in "
    "a .dmaprof-cache directory beside it).",
)
@click.option(
    "-s",
    "--serial",
    "serial",
    metavar="SERIAL",
    help="The device whose samples to trend, when DIR holds several (exit 5 without it).",
)
def trend(
    directory: Path,
    by: str | None,
    top: int,
    fmt: str | None,
    output: Path | None,
    plot: Path | None,
    min_growth: int,
    confidence: float,
    fail_on_leak: bool,
    no_cache: bool,
    serial: str | None,
) -> None:
    """Growth over time of a series recorded by `dmaprof record`.

    A time series per process (pid + start time), app, exporter and buffer name, with its
    growth rate in bytes/minute (Theil-Sen: the median of pairwise slopes, robust to
    outliers) and a leak verdict: sustained growth (Mann-Kendall confidence, at least 3
    separate rises, at least --min-growth over the window). Any directory of captures
    works too (ordered by name, timed by their metadata), of one device: captures of
    several devices exit 5 unless -s names one.

    Reboots (boot id, else uptime going backwards, else ro.runtime.firstboot) split the
    series; a sample that cannot be placed is kept in the current boot. Figures a sample
    could not see (e.g. taken as the shell user) are left out of their series.
    """
    from dmaprof.leaks.trend import TrendPolicy
    from dmaprof.leaks.trend import trend as run_trend

    state = app_state()
    fmt = TREND.choose(fmt, output)
    policy = TrendPolicy(confidence=confidence, min_growth_bytes=min_growth)
    check_input(directory, directory=True)
    with stage(f"trend of {directory}"):
        result = run_trend(
            directory, policy=policy, progress=state.progress, use_cache=not no_cache, serial=serial
        )
    with output_target(output, by=by, top=top) as target:
        TREND.render(fmt, result, target)
    if plot is not None:
        _write_plot(result, plot)
        state.note(f"wrote {plot}")
    doc = result.doc
    if fail_on_leak and doc["leaks"]:
        raise BudgetBreachedError(
            f"{len(doc['leaks'])} leak(s) flagged: {doc['leaks'][0]['reason']}"
        )


def _write_plot(result: TrendResult, plot: Path) -> None:
    """FILE.html: the interactive report (with the html extra), else static charts; .png."""
    import importlib.util

    from dmaprof.render.plot import write_plot

    with stage(f"plot {plot.name}"):
        if plot.suffix.lower() in HTML.suffixes and importlib.util.find_spec("plotly"):
            text = trend_page(result)  # the report frame, with zoom and the linked table
            with output_stream(plot) as stream:
                stream.write(text)
        else:
            write_plot(result, plot)  # PNG, or static SVG charts without the html extra
