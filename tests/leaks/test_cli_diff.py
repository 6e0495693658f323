"""`dmaprof diff` through its real entry point: formats, the JSON contract, the CI gate
(exit 10, JUnit, step summary, annotations), device and reboot checks."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from dmaprof.errors import ExitCode
from tests.leaks import phonescene as P
from tests.leaks.conftest import REPO, Captures, Pair
from tests.leaks.test_diff import SURFACE, leak_four, reboot

MiB = 1024 * 1024


def leak(captures: Captures) -> Pair:
    return captures.pair("leak4", leak_four)


def args(pair: Pair, *more: str | Path) -> list[str | Path]:
    return ["diff", pair.before, pair.after, *more]


def test_json_contract(captures: Captures, dmaprof: Any) -> None:
    run = dmaprof(*args(leak(captures), "--format", "json"))
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["schema"] == "dmaprof.diff/2"
    assert {"bytes_before", "bytes_after", "delta_bytes"} <= set(doc["totals"])
    assert all(
        isinstance(doc["totals"][k], int) for k in ("bytes_before", "bytes_after", "delta_bytes")
    )
    for key in ("new", "freed"):
        assert isinstance(doc["buffers"][key], list)
    [new] = doc["buffers"]["new"][:1]
    assert {"inode", "size_bytes", "exporter", "name", "holders"} <= set(new)
    assert isinstance(new["size_bytes"], int) and isinstance(new["holders"], list)
    for p in doc["processes"]:
        assert isinstance(p["pid"], int) and isinstance(p["name"], str)
        assert p["status"] in ("new", "exited", "kept")
        for k in ("delta_rss_bytes", "delta_pss_bytes", "delta_buffers"):
            assert isinstance(p[k], int)
    for section in ("apps", "cgroups", "exporters", "names"):
        assert isinstance(doc[section], list) and doc[section]
    [suspect] = doc["suspects"]
    assert {"kind", "key", "delta_bytes", "reason"} <= set(suspect)
    assert isinstance(suspect["delta_bytes"], int)
    assert "budgets" not in doc


def test_table_is_the_default_and_names_the_suspect(captures: Captures, dmaprof: Any) -> None:
    run = dmaprof(*args(leak(captures)))
    assert run.code == 0
    assert "Leak suspects" in run.stdout and "+4.0 MiB" in run.stdout
    assert "com.example.camera (3100) holds 4 more buffers named" in run.stdout
    by_app = dmaprof(*args(leak(captures), "--by", "app"))
    assert "Apps (by uid) (1 changed)" in by_app.stdout
    assert "com.example.camera" in by_app.stdout


def test_csv_and_markdown_and_output_files(
    captures: Captures, dmaprof: Any, tmp_path: Path
) -> None:
    run = dmaprof(*args(leak(captures), "--format", "csv", "--by", "buffer"))
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [(r["change"], r["inode"], r["size_bytes"], r["holders"]) for r in rows] == [
        ("new", str(i), str(MiB), "3100") for i in (22, 23, 24, 25)
    ]
    processes = list(
        csv.DictReader(io.StringIO(dmaprof(*args(leak(captures), "--format", "csv")).stdout))
    )
    camera = next(r for r in processes if r["pid"] == "3100")
    assert camera["delta_rss_bytes"] == str(4 * MiB)  # raw integers in machine formats
    out = tmp_path / "diff.md"
    assert dmaprof(*args(leak(captures), "-o", out)).code == 0  # format from the suffix
    text = out.read_text()
    assert text.startswith("### dmaprof: DMA-BUF diff\n")
    assert "#### Leak suspects" in text and "<details><summary>" in text
    assert dmaprof(*args(leak(captures), "-o", tmp_path / "d.json")).code == 0
    assert json.loads((tmp_path / "d.json").read_text())["schema"] == "dmaprof.diff/2"


def test_ci_gate_breach(captures: Captures, dmaprof: Any, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    junit = tmp_path / "out" / "junit.xml"
    run = dmaprof(
        *args(
            leak(captures),
            "--format",
            "json",
            "--fail-on",
            "total>10MiB",
            "--fail-on",
            "app:*>2MiB",
            "--warn-on",
            "exporter:system>0",
            "--fail-on",
            "process:nosuch>0",
            "--junit",
            junit,
        ),
        env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"},
    )
    assert run.code == ExitCode.BUDGET_BREACHED == 10
    doc = json.loads(run.stdout)  # stdout stays data: annotations go to stderr
    assert doc["budgets"]["status"] == "fail"
    assert [(c["name"], c["status"]) for c in doc["budgets"]["checks"]] == [
        ("total>10MiB", "pass"),
        ("app:*>2MiB", "fail"),
        ("process:nosuch>0", "skip"),
        ("exporter:system>0", "warn"),
    ]
    # JUnit: one testcase per rule, the common subset
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    [suite] = list(root)
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert {c.get("classname") for c in cases.values()} == {"dmaprof.budget"}
    failure = cases["app:*>2MiB"].find("failure")
    assert failure is not None and failure.get("type") == "budget"
    assert failure.get("message") == "app:*: com.example.camera +4.0 MiB; fail limit > 2.0 MiB"
    assert cases["process:nosuch>0"].find("skipped") is not None
    assert cases["total>10MiB"].find("failure") is None
    # step summary: appended, verdict first
    text = summary.read_text()
    assert text.startswith(
        "earlier step\n### ❌ dmaprof: DMA-BUF budget breached: 1 of 4 rules failed\n"
    )
    assert "| FAIL | app:*&gt;2MiB |" in text and "#### Top growth by process" in text
    # annotations on stderr, then the one-line error
    lines = run.stderr.splitlines()
    assert (
        "::error title=dmaprof budget app%3A*>2MiB::app:*: com.example.camera +4.0 MiB; "
        "fail limit > 2.0 MiB" in lines
    )
    assert any(
        line.startswith("::warning title=dmaprof budget exporter%3Asystem>0::") for line in lines
    )
    assert lines[-1].startswith("dmaprof: error: budget breached: 1 of 4 rules failed")


def test_ci_gate_pass_and_budget_file(captures: Captures, dmaprof: Any) -> None:
    ok = dmaprof(*args(leak(captures), "--fail-on", "total>10MiB", "--fail-on", "app:*>20MiB"))
    assert ok.code == 0
    assert "within budget: 2 rules passed" in ok.stderr
    # the example budgets: only the system heap must not grow at all
    run = dmaprof(
        *args(
            leak(captures),
            "--format",
            "json",
            "--budgets",
            REPO / "fixtures" / "budgets" / "ci.toml",
        )
    )
    assert run.code == 10
    failed = [
        c["name"] for c in json.loads(run.stdout)["budgets"]["checks"] if c["status"] == "fail"
    ]
    assert failed == ["exporter:system"]


def test_bad_rules_and_files(captures: Captures, dmaprof: Any, tmp_path: Path) -> None:
    usage = dmaprof(*args(leak(captures), "--fail-on", "total"))
    assert usage.code == ExitCode.USAGE
    assert "quote the rule in the shell" in usage.stderr
    bad = tmp_path / "b.toml"
    bad.write_text("[[budget]]\nselect = 'total'\n")
    run = dmaprof(*args(leak(captures), "--budgets", bad))
    assert run.code == ExitCode.ERROR and "needs a fail or a warn limit" in run.stderr
    missing = dmaprof("diff", tmp_path / "nope.dmaprof", leak(captures).after)
    assert missing.code == ExitCode.BAD_CAPTURE and "no such file" in missing.stderr


def test_different_devices_are_refused_unless_forced(captures: Captures, dmaprof: Any) -> None:
    pair = captures.pair("other-serial", lambda s: None, serial="emu-5556")
    run = dmaprof(*args(pair))
    assert run.code == ExitCode.ERROR
    [line] = run.stderr.splitlines()
    assert line.startswith("dmaprof: error: BEFORE (")
    assert "refusing to compare captures of different devices (use --force" in line
    forced = dmaprof(*args(pair, "--force", "--format", "json"))
    assert forced.code == 0
    assert json.loads(forced.stdout)["forced"] is True
    assert "compared anyway (--force)" in forced.stderr


def test_reboot_is_loud(captures: Captures, dmaprof: Any, tmp_path: Path) -> None:
    run = dmaprof(*args(captures.pair("reboot", reboot), "--format", "json"))
    assert run.code == 0
    assert "WARNING: REBOOT: the device rebooted between the captures" in run.stderr
    doc = json.loads(run.stdout)
    assert doc["warnings"][0].startswith("REBOOT") and doc["buffers"]["compared"] is False
    table = dmaprof(*args(captures.pair("reboot", reboot)))
    # piped: said once, on stderr; the table on stdout does not repeat it (issue 15)
    assert table.stderr.count("REBOOT: the device rebooted") == 1
    assert "REBOOT" not in table.stdout
    # a table saved with -o stands on its own: it carries the warning
    saved = tmp_path / "diff.txt"
    dmaprof(*args(captures.pair("reboot", reboot), "-o", saved))
    assert "warning: REBOOT: the device rebooted" in saved.read_text()


def test_summary_can_be_turned_off(captures: Captures, dmaprof: Any, tmp_path: Path) -> None:
    summary = tmp_path / "s.md"
    run = dmaprof(
        *args(leak(captures), "--no-summary", "--annotations", "none"),
        env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"},
    )
    assert run.code == 0 and not summary.exists() and "::" not in run.stderr


def test_name_with_markup_is_escaped_in_markdown(captures: Captures, dmaprof: Any) -> None:
    pair = captures.pair("evil", lambda s: P.leak(s, 3100, 1, MiB, "<img src=x>|pipe"))
    text = dmaprof(*args(pair, "--format", "markdown")).stdout
    assert "<img" not in text and "&lt;img src=x&gt;\\|pipe" in text


def test_surface_name_constant() -> None:
    assert SURFACE.startswith("SurfaceView")


def test_a_bad_duration_or_size_is_a_usage_error_naming_the_option(
    tmp_path: Path, dmaprof: Any
) -> None:
    run = dmaprof("trend", tmp_path, "--min-growth", "1XB")
    assert run.code == ExitCode.USAGE
    assert "--min-growth: cannot read '1XB' as a size" in run.stderr
    run = dmaprof("record", "--interval", "5q", tmp_path / "series")
    assert run.code == ExitCode.USAGE
    assert "--interval: cannot read '5q' as a duration" in run.stderr
