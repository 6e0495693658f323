"""`dmaprof diff`, `dmaprof record`, `dmaprof trend` and `dmaprof top`: finding leaks.

Thin click commands over ``dmaprof.leaks``. Heavy modules (pandas, the analyzer, adbutils,
rich tables) are imported inside the command functions, so `dmaprof --help` stays fast.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dmaprof.commands.common import (
    EPILOG,
    INPUT_PATH,
    app_state,
    check_input,
    load_captures,
    output_format,
    output_stream,
    serial_option,
    timeout_option,
)
from dmaprof.errors import BudgetBreachedError, DmaprofError, VerdictUnknownError

VIEWS = ["process", "app", "cgroup", "exporter", "name", "buffer"]
FORMATS = ["table", "json", "csv", "markdown", "html"]

charge_option = click.option(
    "--charge",
    type=click.Choice(["shared", "full", "client"]),
    default="shared",
    show_default=True,
    help="How shared buffers are charged (as in `dmaprof show`): pss figures follow it.",
)
service_option = click.option(
    "--service",
    "service_regex",
    metavar="REGEX",
    help="With --charge client: processes (name or cmdline) that count as services.",
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Output format (default: table, or from the -o extension: .json .csv .md .html).",
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
root_option = click.option(
    "--root",
    "root_mode",
    type=click.Choice(["auto", "never", "require"]),
    default="auto",
    show_default=True,
    help="Use root as `dmaprof snapshot` does.",
)


Q = TypeVar("Q", int, float)


def _parsed(param: click.Parameter, value: str | None, parse: Callable[..., Q]) -> Q | None:
    """A duration or size option's value, parsed; a bad one is a usage error naming it."""
    if value is None:
        return None
    from dmaprof.leaks.quantities import QuantityError

    try:
        return parse(value, what=f"--{(param.name or '').replace('_', '-')}")
    except QuantityError as exc:
        raise click.BadParameter(exc.message) from None


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from dmaprof.leaks.quantities import parse_duration

    return _parsed(param, value, parse_duration)


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from dmaprof.leaks.quantities import parse_size

    return _parsed(param, value, parse_size)


# --------------------------------------------------------------------------- diff


@click.command(epilog=EPILOG)
@click.argument("before", type=INPUT_PATH)
@click.argument("after", type=INPUT_PATH)
@click.option("--by", type=click.Choice(VIEWS), help="One view instead of the overview.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="Rows per table (table and markdown; csv and json hold every row).",
)
@charge_option
@service_option
@format_option
@output_option
@click.option("--force", is_flag=True, help="Compare captures of different devices anyway.")
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="RULE",
    help="Exit 10 when RULE is breached, e.g. 'total>10MiB', 'app:*>20MiB' "
    "(repeatable; quote it in the shell; syntax in docs/ci.md).",
)
@click.option(
    "--warn-on",
    "warn_on",
    multiple=True,
    metavar="RULE",
    help="Like --fail-on, but only warn (annotation, summary, JUnit output).",
)
@click.option(
    "--budgets",
    type=INPUT_PATH,
    metavar="FILE.toml",
    help="Budget file with warn and fail limits (docs/ci.md).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write the JSON document to FILE (e.g. a CI artifact "
    "while the table goes to the log).",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help='Write one JUnit <testcase classname="dmaprof.budget"> per rule.',
)
@click.option(
    "--on-unknown",
    "on_unknown",
    type=click.Choice(["error", "warn", "pass"]),
    default="error",
    show_default=True,
    help="A rule whose figure a side could not see (e.g. kernel_only as the shell "
    "user): error exits 12, warn warns and exits 0, pass only records it. Never a "
    "breach (exit 10 is only for real breaches).",
)
@click.option(
    "--summary/--no-summary",
    default=True,
    show_default=True,
    help="Append a markdown summary to $GITHUB_STEP_SUMMARY when it is set.",
)
@click.option(
    "--annotations",
    type=click.Choice(["auto", "github", "none"]),
    default="auto",
    show_default=True,
    help="GitHub ::error/::warning lines on stderr (auto: when GITHUB_ACTIONS=true).",
)
def diff(
    before: Path,
    after: Path,
    by: str | None,
    top: int,
    charge: str,
    service_regex: str | None,
    fmt: str | None,
    output: Path | None,
    force: bool,
    fail_on: tuple[str, ...],
    warn_on: tuple[str, ...],
    budgets: Path | None,
    json_path: Path | None,
    junit: Path | None,
    on_unknown: str,
    summary: bool,
    annotations: str,
) -> None:
    """Compare two captures of one device and find what leaks.

    Buffers that are new, freed or kept (identity: inode + size + exporter within one
    boot); the change of every process (identity: pid + start time, so a reused pid is a
    new process), app, cgroup, exporter and buffer name in bytes (rss and pss/charged) and
    in buffers; and ranked leak suspects, each with its reason.

    Captures of different devices are refused unless --force. Across a reboot only
    aggregate changes are shown (processes matched by name), with a loud warning.

    With --fail-on/--warn-on/--budgets, diff is a CI gate: a breached rule exits 10
    (distinct from errors), --junit writes a JUnit file, a markdown summary is appended to
    $GITHUB_STEP_SUMMARY and ::error/::warning annotations are printed under GitHub Actions.

    Figures a side could not see (a root capture against a shell-user one, a bugreport
    against a snapshot) are unknown: null in JSON, ? in tables, never a change. A rule on
    an unknown figure is "unknown": exit 12 by default (--on-unknown).
    """
    state = app_state()
    started = time.monotonic()
    checks = _checks(fail_on, warn_on, budgets)
    fmt = output_format(fmt, output)
    captures = load_captures([before, after], "dmaprof.leaks.side", "dmaprof.leaks.diff")
    from dmaprof.leaks.diff import diff_sides
    from dmaprof.leaks.rules import evaluate
    from dmaprof.leaks.side import side_from_capture
    from dmaprof.render import ci
    from dmaprof.render import diff as render

    sides = [
        side_from_capture(capture, charge=charge, service_regex=service_regex)
        for capture in captures
    ]
    result = diff_sides(sides[0], sides[1], force=force)
    doc = result.to_json()
    report = evaluate(checks, result, on_unknown) if checks else None  # type: ignore[arg-type]
    if report is not None:
        doc["budgets"] = report.as_dict()
    for warning in result.warnings:
        loud = warning.startswith(("REBOOT", "BEFORE ("))
        state.err.print(
            f"[bold red]WARNING:[/bold red] {warning}"
            if loud
            else f"[yellow]warning:[/yellow] {warning}",
            highlight=False,
        )
    with output_stream(output) as stream:
        if fmt == "json":
            render.render_json(doc, stream)
        elif fmt == "html":
            from dmaprof.render.htmlleaks import diff_html

            stream.write(diff_html(doc))
        elif fmt == "csv":
            render.render_csv(doc, by, stream)
        elif fmt == "markdown":
            render.render_markdown(doc, by, top, stream)
        else:
            console = state.out if stream is sys.stdout else state.file_console(stream)
            # on stdout the warnings would be said twice: they are on stderr already
            doc_shown = {**doc, "warnings": []} if stream is sys.stdout else doc
            render.render_table(doc_shown, by, top, console)
    if json_path is not None:
        with output_stream(json_path) as stream:
            render.render_json(doc, stream)
    if junit is not None:
        if report is None:
            state.note(
                "warning: --junit without --fail-on/--warn-on/--budgets: no rules, "
                "an empty test suite"
            )
        from dmaprof.leaks.rules import BudgetReport

        ci.write_junit(junit, report or BudgetReport([]), elapsed_s=time.monotonic() - started)
    if summary:
        import io

        buffer = io.StringIO()
        render.render_markdown(doc, None, min(top, 10), buffer)
        ci.append_step_summary(buffer.getvalue())
    if annotations == "github" or (annotations == "auto" and ci.github_actions()):
        for line in ci.annotation_lines(report, result.warnings, doc["suspects"]):
            click.echo(line, err=True)
    if report is not None:
        if report.status == "fail":
            reasons = "; ".join(r.message for r in report.failed[:3])
            raise BudgetBreachedError(f"{report.verdict()}: {reasons}")
        if report.status == "unknown":
            reasons = "; ".join(r.message for r in report.unknown[:3])
            raise VerdictUnknownError(f"{report.verdict()}: {reasons}")
        for r in report.unknown:
            state.note(f"warning: {r.message}" if on_unknown == "warn" else r.message)
        state.note(report.verdict())


def _checks(fail_on: tuple[str, ...], warn_on: tuple[str, ...], budgets: Path | None) -> list[Any]:
    from dmaprof.leaks.rules import Level, RuleError, load_budgets, parse_rule

    checks = []
    levels: tuple[tuple[str, tuple[str, ...], Level], ...] = (
        ("--fail-on", fail_on, "fail"),
        ("--warn-on", warn_on, "warn"),
    )
    for option, rules, level in levels:
        for rule in rules:
            try:
                checks.append(parse_rule(rule, level, source=option))
            except RuleError as exc:  # a bad rule on the command line is a usage error
                raise click.BadParameter(exc.message, param_hint=option) from None
    if budgets is not None:
        check_input(budgets)
        checks += load_budgets(budgets)
    return checks


# --------------------------------------------------------------------------- record


@click.command(epilog=EPILOG)
@serial_option
@click.option(
    "--interval",
    default="5s",
    show_default=True,
    callback=_duration,
    metavar="DURATION",
    help="Time between samples (500ms, 5s, 2m, ...).",
)
@click.option("--count", type=click.IntRange(min=1), help="Number of samples to take.")
@click.option(
    "--duration",
    callback=_duration,
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
@root_option
@timeout_option
@click.option("--force", is_flag=True, help="Replace a series already in the directory.")
def record(
    serial: str | None,
    interval: float,
    count: int | None,
    duration: float | None,
    out_dir: Path,
    retries: int,
    root_mode: str,
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
    sampler = AdbSampler(serial, root_mode=root_mode, timeout=timeout)
    with SampleFigures() as figures:  # each sample's trend figures, beside the sampling
        summary = record_series(
            out_dir, plan, sampler, progress=state.progress, force=force, on_sample=figures.submit
        )
        state.progress("computing the trend figures of the last samples")
    state.note(summary.line)


# --------------------------------------------------------------------------- trend


@click.command(epilog=EPILOG)
@click.argument("directory", type=INPUT_PATH)
@click.option(
    "--by",
    type=click.Choice(["total", "kernel_only", "process", "app", "exporter", "name"]),
    help="Only the series of one kind.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Rows in table and markdown (leaks are always shown).",
)
@format_option
@output_option
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write charts: FILE.html (the interactive report) or FILE.png (matplotlib).",
)
@click.option(
    "--min-growth",
    callback=_size,
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
    from dmaprof.render import diff as render
    from dmaprof.render.plot import write_plot

    state = app_state()
    fmt = output_format(fmt, output)
    policy = TrendPolicy(confidence=confidence, min_growth_bytes=min_growth)
    check_input(directory, directory=True)
    result = run_trend(
        directory, policy=policy, progress=state.progress, use_cache=not no_cache, serial=serial
    )
    doc = result.doc
    with output_stream(output) as stream:
        if fmt == "json":
            render.render_json(doc, stream)
        elif fmt == "html":
            stream.write(trend_page(result))
        elif fmt == "csv":
            render.render_trend_csv(doc, by, stream)
        elif fmt == "markdown":
            render.render_trend_markdown(doc, by, top, stream)
        else:
            console = state.out if stream is sys.stdout else state.file_console(stream)
            render.render_trend_table(_warned(state, doc, stream), by, top, console)
    if plot is not None and plot.suffix.lower() in (".html", ".htm") and _has_plotly():
        text = trend_page(result)  # the report frame, with zoom and the linked table
        with output_stream(plot) as stream:
            stream.write(text)
        state.note(f"wrote {plot}")
    elif plot is not None:
        write_plot(result, plot)  # PNG, or HTML with static SVG charts without the html extra
        state.note(f"wrote {plot}")
    if fail_on_leak and doc["leaks"]:
        raise BudgetBreachedError(
            f"{len(doc['leaks'])} leak(s) flagged: {doc['leaks'][0]['reason']}"
        )


def _warned(state: Any, doc: dict[str, Any], stream: Any) -> dict[str, Any]:
    """Say a table's warnings once, on stderr; a table written to stdout leaves them out
    (a table written to a file keeps them: it must stand on its own)."""
    for warning in doc.get("warnings") or []:
        state.note(f"warning: {warning}")
    return {**doc, "warnings": []} if stream is sys.stdout else doc


# --------------------------------------------------------------------------- top


@click.command(epilog=EPILOG)
@serial_option
@click.option(
    "--interval",
    default="2s",
    show_default=True,
    callback=_duration,
    metavar="DURATION",
    help="Time between refreshes.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    help="Quit after this many refreshes (default: until Ctrl-C).",
)
@click.option(
    "--rows", type=click.IntRange(min=1), default=20, show_default=True, help="Holders shown."
)
@charge_option
@service_option
@root_option
@timeout_option
def top(
    serial: str | None,
    interval: float,
    count: int | None,
    rows: int,
    charge: str,
    service_regex: str | None,
    root_mode: str,
    timeout: float,
) -> None:
    """Watch the top DMA-BUF holders live, with their change since top started.

    One snapshot per refresh. On a terminal the view is redrawn in place; piped, every
    refresh is printed in turn. Ctrl-C quits with exit 0 (the normal way out of top, unlike
    record, whose Ctrl-C means "interrupted": 130). When the first refresh fails, top
    exits with that error's code (4 no device, 5 several, 6 unauthorized, 7 offline...);
    after a first success a failed refresh is shown and retried.
    """
    from dmaprof.collect.sampler import AdbSampler
    from dmaprof.render.live import run_top

    assert interval is not None
    state = app_state()
    sampler = AdbSampler(serial, root_mode=root_mode, timeout=timeout)
    run_top(
        sampler,
        interval_s=interval,
        out=state.out,
        count=count,
        rows=rows,
        charge=charge,
        service_regex=service_regex,
    )


__all__ = ["DmaprofError", "diff", "record", "top", "trend"]


def trend_page(result: Any) -> str:
    from dmaprof.render.htmlleaks import trend_html

    points = result.points[["kind", "key", "minutes", "bytes"]].to_dict("records")
    return trend_html(result.doc, points)


def _has_plotly() -> bool:
    import importlib.util

    return importlib.util.find_spec("plotly") is not None
