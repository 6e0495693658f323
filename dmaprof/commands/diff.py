"""`dmaprof diff`: compare two captures of one device, find what leaks, gate CI on budgets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dmaprof.choices import DIFF_VIEWS, ON_UNKNOWN, OnUnknown
from dmaprof.commands.common import (
    EPILOG,
    INPUT_PATH,
    app_state,
    check_input,
    load_captures,
    output_target,
)
from dmaprof.commands.options import (
    by_option,
    charge_option,
    format_option,
    output_option,
    service_option,
)
from dmaprof.errors import BudgetBreachedError, VerdictUnknownError
from dmaprof.render.formats import DIFF
from dmaprof.timing import stage

if TYPE_CHECKING:
    from dmaprof.leaks.diffresult import DiffResult
    from dmaprof.leaks.rules import BudgetReport, Check
    from dmaprof.render.console import AppState

CHARGE_HELP = "How shared buffers are charged (as in `dmaprof show`): pss figures follow it."
FORMAT_HELP = "Output format (default: table, or from the -o extension: .json .csv .md .html)."


@click.command(epilog=EPILOG)
@click.argument("before", type=INPUT_PATH)
@click.argument("after", type=INPUT_PATH)
@by_option(DIFF_VIEWS, "One view instead of the overview.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="Rows per table (table and markdown; csv and json hold every row).",
)
@charge_option(CHARGE_HELP)
@service_option
@format_option(DIFF, FORMAT_HELP)
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
    type=click.Choice(ON_UNKNOWN),
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
    on_unknown: OnUnknown,
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
    fmt = DIFF.choose(fmt, output)
    result = _compare(before, after, charge, service_regex, force)
    doc = result.to_json()
    report = _evaluate(checks, result, on_unknown)
    if report is not None:
        doc["budgets"] = report.as_dict()
    _say_warnings(state, result.warnings)
    with output_target(output, by=by, top=top) as target:
        DIFF.render(fmt, doc, target)
    if json_path is not None:
        with output_target(json_path) as target:
            DIFF.render("json", doc, target)
    _ci_outputs(state, doc, result, report, junit, summary, annotations, top, started)
    if report is not None:
        _verdict(state, report, on_unknown)


def _checks(
    fail_on: tuple[str, ...], warn_on: tuple[str, ...], budgets: Path | None
) -> list[Check]:
    if not (fail_on or warn_on or budgets):
        return []  # no rules module yet: it loads beside the captures (load_captures)
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


def _compare(
    before: Path, after: Path, charge: str, service_regex: str | None, force: bool
) -> DiffResult:
    captures = load_captures([before, after], "dmaprof.leaks.side", "dmaprof.leaks.diff")
    from dmaprof.leaks.diff import diff_sides
    from dmaprof.leaks.side import side_from_capture

    sides = [
        side_from_capture(capture, charge=charge, service_regex=service_regex)
        for capture in captures
    ]
    return diff_sides(sides[0], sides[1], force=force)


def _evaluate(
    checks: list[Check], result: DiffResult, on_unknown: OnUnknown
) -> BudgetReport | None:
    if not checks:
        return None
    from dmaprof.leaks.rules import evaluate

    with stage(f"evaluate {len(checks)} budget rules"):
        return evaluate(checks, result, on_unknown)


def _say_warnings(state: AppState, warnings: list[str]) -> None:
    """On stderr, whatever the format; a reboot or a swapped pair is said loudly."""
    for warning in warnings:
        loud = warning.startswith(("REBOOT", "BEFORE ("))
        state.err.print(
            f"[bold red]WARNING:[/bold red] {warning}"
            if loud
            else f"[yellow]warning:[/yellow] {warning}",
            highlight=False,
        )


def _ci_outputs(
    state: AppState,
    doc: dict[str, Any],
    result: DiffResult,
    report: BudgetReport | None,
    junit: Path | None,
    summary: bool,
    annotations: str,
    top: int,
    started: float,
) -> None:
    """What CI systems read: the JUnit file, the step summary, the workflow annotations."""
    from dmaprof.render import ci

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

        from dmaprof.render.diff import render_markdown

        buffer = io.StringIO()
        render_markdown(doc, None, min(top, 10), buffer)
        ci.append_step_summary(buffer.getvalue())
    if annotations == "github" or (annotations == "auto" and ci.github_actions()):
        for line in ci.annotation_lines(report, result.warnings, doc["suspects"]):
            click.echo(line, err=True)


def _verdict(state: AppState, report: BudgetReport, on_unknown: OnUnknown) -> None:
    """Exit 10 on a breach, 12 on an unknown verdict (--on-unknown error); else say it."""
    if report.status == "fail":
        reasons = "; ".join(r.message for r in report.failed[:3])
        raise BudgetBreachedError(f"{report.verdict()}: {reasons}")
    if report.status == "unknown":
        reasons = "; ".join(r.message for r in report.unknown[:3])
        raise VerdictUnknownError(f"{report.verdict()}: {reasons}")
    for r in report.unknown:
        state.note(f"warning: {r.message}" if on_unknown == "warn" else r.message)
    state.note(report.verdict())
