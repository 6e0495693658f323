"""`dmaprof record`: a series of captures of one device into a directory, for `trend`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dmaprof.commands.common import EPILOG, app_state, timed
from dmaprof.commands.options import duration, root_option, serial_option, timeout_option
from dmaprof.timing import stage

if TYPE_CHECKING:
    from dmaprof.choices import RootMode


@click.command(epilog=EPILOG)
@serial_option
@click.option(
    "--interval",
    default="5s",
    show_default=True,
    callback=duration,
    metavar="DURATION",
    help="Time between samples (500ms, 5s, 2m, ...).",
)
@click.option("--count", type=click.IntRange(min=1), help="Number of samples to take.")
@click.option(
    "--duration",
    callback=duration,
    metavar="DURATION",
    help="Or: sample for this long (10m, 2h, ...).",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the series.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Extra attempts of a failed sample before its gap is recorded.",
)
@root_option("Use root as `dmaprof snapshot` does.")
@timeout_option
@click.option("--force", is_flag=True, help="Replace a series already in the directory.")
def record(
    serial: str | None,
    interval: float,
    count: int | None,
    duration: float | None,
    out_dir: Path,
    retries: int,
    root_mode: RootMode,
    timeout: float,
    force: bool,
) -> None:
    """Record a series of captures into a directory, for `dmaprof trend`.

    One capture every --interval, --count times or for --duration. A failed sample is
    retried, then recorded as a gap in DIR/samples.ndjson and DIR/series.json; the series
    goes on. Captures go to disk at once, so memory stays flat however long it runs.
    Each sample's trend figures are computed beside the sampling (one worker process),
    so `dmaprof trend DIR` is fast as soon as recording stops.
    Ctrl-C ends the series cleanly (exit 130): every file in DIR is complete and
    series.json says "interrupted".

    Exit 0 when at least one sample was taken (the last line says how many failed); when
    none was, the device error's code (3 no adb, 4 no device, 5 several, 6 unauthorized,
    7 offline, 8 a device command failed) and nothing is left in DIR. No device, several
    devices, an unauthorized device or no adb end the series at its first sample; after
    the first sample the series follows that device (and only it) through unplugs.
    """
    from dmaprof.collect.sampler import AdbSampler
    from dmaprof.leaks.precompute import SampleFigures
    from dmaprof.leaks.series import RecordPlan, record_series

    if (count is None) == (duration is None):
        raise click.UsageError("give exactly one of --count N or --duration DURATION")
    assert interval is not None
    state = app_state()
    plan = RecordPlan(interval_s=interval, count=count, duration_s=duration, retries=retries)
    sampler = timed(AdbSampler(serial, root_mode=root_mode, timeout=timeout))
    with contextlib.ExitStack() as stack:
        # the last samples' figures are awaited when SampleFigures exits; `tail`, entered
        # before it, exits after it: its stage times that wait
        tail = stack.enter_context(contextlib.ExitStack())
        figures = stack.enter_context(SampleFigures())  # each sample's trend figures, beside
        summary = record_series(
            out_dir, plan, sampler, progress=state.progress, force=force, on_sample=figures.submit
        )
        state.progress("computing the trend figures of the last samples")
        tail.enter_context(stage("trend figures of the last samples"))
    state.note(summary.line)
