"""What CI systems read: JUnit XML, GitHub workflow-command annotations, the step summary.

* JUnit: the subset every consumer reads (Jenkins, GitLab, Azure; cocotb documents it):
  ``testsuites/testsuite/testcase/failure/skipped/system-out``, ``time`` in seconds. One
  ``<testcase classname="dmaprof.budget">`` per rule; a breached rule has a
  ``<failure type="budget">``, a rule that matched nothing a ``<skipped>``, and so does a
  rule that could not be judged (``<skipped message="unknown: ...">``: its figure is unknown
  on a side; never a pass, never a failure).
* Annotations: ``::error title=...::message`` / ``::warning``, written to stderr (the
  Actions runner reads workflow commands on stdout and stderr; stdout stays data). GitHub
  shows at most 10 of each kind per step, so at most 10 of each are written, worst first.
* Step summary: markdown appended to ``$GITHUB_STEP_SUMMARY`` (1 MiB cap per step; the
  summary is cut to stay well under it).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dmaprof.errors import DmaprofError
from dmaprof.leaks.rules import BudgetReport

JUNIT_CLASS = "dmaprof.budget"
MAX_ANNOTATIONS = 10  # per kind and step, GitHub's limit
SUMMARY_LIMIT = 1024 * 1024  # GitHub's cap on one step's summary
SUMMARY_BUDGET = 512 * 1024  # what dmaprof allows itself, leaving room for other tools


def junit_xml(report: BudgetReport, *, elapsed_s: float = 0.0, suite: str = JUNIT_CLASS) -> bytes:
    tests = len(report.results)
    failures = len(report.failed)
    skipped = sum(1 for r in report.results if r.status in ("skip", "unknown"))
    attrs = {
        "name": suite,
        "tests": str(tests),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": f"{elapsed_s:.3f}",
    }
    root = ET.Element("testsuites", {**attrs, "name": "dmaprof"})
    suite_el = ET.SubElement(root, "testsuite", attrs)
    for result in report.results:
        case = ET.SubElement(
            suite_el,
            "testcase",
            {"classname": JUNIT_CLASS, "name": result.check.name, "time": "0.000"},
        )
        details = _details(result)
        if result.status == "fail":
            failure = ET.SubElement(case, "failure", {"message": result.message, "type": "budget"})
            failure.text = details
            continue
        if result.status == "skip":
            ET.SubElement(case, "skipped", {"message": result.message})
        elif result.status == "unknown":
            ET.SubElement(case, "skipped", {"message": f"unknown: {result.message}"})
        out = ET.SubElement(case, "system-out")
        out.text = f"[{result.status}] {result.message}\n{details}"
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"


def _details(result: Any) -> str:
    lines = [f"rule: {result.check.name} (from {result.check.source})"]
    lines += [
        f"{o.key}: before {_figure(o.before)} after {_figure(o.after)} delta "
        f"{format(o.delta, '+d') if o.known else 'unknown'}"
        for o in result.observations[:50]
    ]
    if len(result.observations) > 50:
        lines.append(f"... {len(result.observations) - 50} more")
    return "\n".join(lines) + "\n"


def _figure(value: int | None) -> str:
    return "unknown" if value is None else str(value)


def write_junit(path: Path, report: BudgetReport, *, elapsed_s: float = 0.0) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(junit_xml(report, elapsed_s=elapsed_s))
    except OSError as exc:
        raise DmaprofError(f"cannot write {path}: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------- annotations


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(kind: str, title: str, message: str) -> str:
    return f"::{kind} title={_escape_property(title)}::{_escape_data(message)}"


def annotation_lines(
    report: BudgetReport | None, warnings: list[str], suspects: list[Mapping[str, Any]]
) -> list[str]:
    """Workflow commands for a diff: breached rules as errors; rules over their warn limit,
    a reboot between the captures and the top leak suspect as warnings."""
    errors: list[str] = []
    warns: list[str] = []
    if report is not None:
        errors += [
            annotation("error", f"dmaprof budget {r.check.name}", r.message) for r in report.failed
        ]
        warns += [
            annotation("warning", f"dmaprof budget {r.check.name}", r.message)
            for r in report.unknown + report.warned
        ]
    warns += [annotation("warning", "dmaprof diff", w) for w in warnings if w.startswith("REBOOT")]
    if suspects and (report is None or report.status != "pass"):
        top = suspects[0]
        warns.append(annotation("warning", "dmaprof leak suspect", str(top["reason"])))
    return errors[:MAX_ANNOTATIONS] + warns[:MAX_ANNOTATIONS]


def github_actions(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("GITHUB_ACTIONS") == "true"


# --------------------------------------------------------------------------- step summary


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append to ``$GITHUB_STEP_SUMMARY`` when set; returns the file written, if any."""
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    data = markdown.encode("utf-8")
    if len(data) > SUMMARY_BUDGET:
        cut = data[:SUMMARY_BUDGET].decode("utf-8", "ignore")
        cut = cut[: cut.rfind("\n") + 1]
        data = (
            cut + "\n_(summary cut to stay under GitHub's size limit; the full "
            "report is in the JSON artifact)_\n"
        ).encode("utf-8")
    path = Path(target)
    try:
        with path.open("ab") as handle:
            handle.write(data)
    except OSError as exc:
        raise DmaprofError(
            f"cannot append to $GITHUB_STEP_SUMMARY ({path}): {exc.strerror or exc}"
        ) from exc
    return path
