"""The JSON contracts (``dmaprof.report/1``, ``dmaprof.diff/2``) are the TypedDicts of
``dmaprof/analyze/reporttypes.py`` and ``dmaprof/leaks/difftypes.py``: docs/json.md is
generated from them, and real documents (collector captures as root and as the shell user,
bugreports and dmabuf_dump text from devices) have exactly their keys."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from dmaprof.analyze import reporttypes as rt
from dmaprof.analyze.jsondoc import keys, problems, reachable, required_keys
from dmaprof.analyze.report import (
    APP_KEYS,
    BUFFER_KEYS,
    CGROUP_KEYS,
    GROUP_KEYS,
    KERNEL_ONLY_KEYS,
    PROCESS_KEYS,
)
from dmaprof.capture.container import Capture, load_capture
from dmaprof.leaks import difftypes as dt
from dmaprof.leaks.diff import diff_sides
from dmaprof.leaks.side import side_from_capture
from dmaprof.sources.importer import import_file
from dmaprof.sources.show import analyze_capture

ROOT = Path(__file__).resolve().parents[1]
TOKAY = "bugreport-tokay-BP2A.250605.031-2026-03-02-{}.txt"


@pytest.fixture(scope="module")
def captures() -> dict[str, Capture]:
    return {
        "root": load_capture(ROOT / "fixtures/captures/pixel-like.dmaprof"),
        "shell": load_capture(ROOT / "fixtures/captures/pixel-like-shell.dmaprof"),
        "bugreport": import_file(ROOT / "fixtures/bugreports" / TOKAY.format("10-15-30")),
        "bugreport2": import_file(ROOT / "fixtures/bugreports" / TOKAY.format("11-15-53")),
        "dmabuf_dump": import_file(ROOT / "fixtures/dmabuf_dump/android14_odd_sizes_b.txt"),
    }


def test_json_md_is_up_to_date() -> None:
    current = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    assert current == dt.json_markdown(), (
        "docs/json.md is stale: regenerate it with\n"
        "  python -c 'from dmaprof.leaks.difftypes import json_markdown; "
        'open("docs/json.md", "w").write(json_markdown())\''
    )


@pytest.mark.parametrize("root", [rt.Report, dt.Diff])
def test_every_key_has_a_meaning_and_a_section(root: type) -> None:
    text = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    for cls in reachable(root):
        assert f"### {cls.__name__}\n" in text
        assert cls.__doc__, cls.__name__
        for key in keys(cls):
            assert f"| `{key}` |" in text, (cls.__name__, key)


def test_column_maps_give_the_declared_keys() -> None:
    """The builder's key -> column maps and the types name the same keys (the restricted
    capture's bounds and holders_complete are added by dmaprof.analyze.restricted)."""
    restricted = {"pss_exact", "pss_min_bytes", "unreadable", "holders_complete"}
    assert set(PROCESS_KEYS) == keys(rt.Process) - {"pss_exact", "pss_min_bytes"}
    assert set(APP_KEYS) == keys(rt.App) - restricted
    assert set(BUFFER_KEYS) | {"holders", "kernel_only"} == keys(rt.Buffer) - restricted
    assert set(CGROUP_KEYS) == keys(rt.Cgroup)
    assert {"exporter", *GROUP_KEYS} == keys(rt.ExporterGroup)
    assert {"name", *GROUP_KEYS} == keys(rt.NameGroup)
    assert set(KERNEL_ONLY_KEYS) == keys(rt.KernelOnly)


def _json(doc: Any) -> Any:
    return json.loads(json.dumps(doc))  # exactly what --format json prints


@pytest.mark.parametrize("name", ["root", "shell", "bugreport", "dmabuf_dump"])
def test_real_reports_have_the_declared_keys(captures: dict[str, Capture], name: str) -> None:
    for charge in ("shared", "client"):
        _analysis, report = analyze_capture(captures[name], charge=charge)
        doc = _json(report)
        assert problems(doc, rt.Report) == []
        assert required_keys(rt.Report) <= doc.keys()
    if name == "shell":  # restricted: the bounds and the unknown rows are there
        assert doc["access"]["restricted"] is True
        assert any(p["unreadable"] for p in doc["processes"])
        assert all("pss_exact" in p for p in doc["processes"])
        # a cgroup holding an unreadable process: its figures are unknown, every name of them
        held = {p["cgroup"] for p in doc["processes"] if p["unreadable"] and p["cgroup"]}
        rows = [c for c in doc["cgroups"] if c["path"] in held]
        assert rows
        for c in rows:
            for key in ("rss_bytes", "charged_bytes", "pss_bytes", "shared_pss_bytes"):
                assert c[key] is None, (c["path"], key)
    if name in ("bugreport", "dmabuf_dump"):
        assert {"unknown", "process_totals"} <= doc.keys()


def test_one_name_per_meaning_in_the_report(captures: dict[str, Capture]) -> None:
    """shared_pss_bytes is the exact share and charged_bytes the charged figure in every
    object of the report; the kept pss_bytes is what it always was."""
    analysis, report = analyze_capture(captures["root"], charge="full")
    u = analysis.usage.set_index("pid")
    for p in report["processes"]:
        assert p["shared_pss_bytes"] == u.loc[p["pid"], "shared_pss_bytes"]
        assert p["charged_bytes"] == p["pss_bytes"] == p["rss_bytes"]  # full: charged = rss
    for c in report["cgroups"]:
        assert c["charged_bytes"] == c["pss_bytes"]
        assert c["charged_bytes_with_descendants"] == c["pss_bytes_with_descendants"]
    t = report["totals"]
    assert t["shared_pss_bytes"] == t["pss_bytes"] == int(analysis.usage["shared_pss_bytes"].sum())
    assert t["charged_bytes"] == int(analysis.usage["charged_bytes"].sum())


@pytest.mark.parametrize(
    ("before", "after", "force"),
    [("root", "shell", True), ("bugreport", "bugreport2", False), ("root", "root", False)],
)
def test_real_diffs_have_the_declared_keys(
    captures: dict[str, Capture], before: str, after: str, force: bool
) -> None:
    sides = [side_from_capture(captures[n], charge="client") for n in (before, after)]
    doc = _json(diff_sides(sides[0], sides[1], force=force).to_json())
    assert problems(doc, dt.Diff) == []
    for p in doc["processes"]:
        assert p["charged_bytes_after"] == p["pss_bytes_after"]
        assert p["delta_charged_bytes"] == p["delta_pss_bytes"]
    t = doc["totals"]
    assert t["delta_shared_pss_bytes"] == t["delta_pss_bytes"]


def test_types_are_what_the_checker_reads() -> None:
    """problems() flags an undeclared key, a missing one and a wrong type."""
    good: dict[str, Any] = {"key": "cgroups", "view": "cgroup", "message": "no cgroups"}
    assert problems(good, rt.Limitation) == []
    assert problems({**good, "extra": 1}, rt.Limitation) == ["$.extra: not declared in Limitation"]
    assert problems({"key": "k", "view": "v"}, rt.Limitation) == ["$.message: missing"]
    assert problems({**good, "view": 3}, rt.Limitation)[0].startswith("$.view: int")
    assert "pss_exact" in get_type_hints(rt.Process)


def test_the_diff_example_of_ci_md_has_declared_keys_only() -> None:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    at = text.index('"schema": "dmaprof.diff/2"')
    block = text[text.rindex("```json", 0, at) + len("```json") : text.index("```", at)]
    example = json.loads(block, strict=False)
    wrong = [p for p in problems(example, dt.Diff) if "not declared" in p and "...:" not in p]
    assert wrong == []
    assert "json.md" in text


def test_prose_key_lists_name_declared_keys() -> None:
    """The key lists of docs/user-build.md and docs/coverage.md are the types' keys."""
    user_build = (ROOT / "docs" / "user-build.md").read_text(encoding="utf-8")
    m = re.search(
        r"report key `system_totals` holds raw integer bytes:(.*?)These", user_build, re.S
    )
    assert m is not None
    named = set(re.findall(r"`([a-z_]+)`", m.group(1)))
    assert named - {"null"} == keys(rt.SystemTotals)
    coverage = (ROOT / "docs" / "coverage.md").read_text(encoding="utf-8")
    m = re.search(r"each side's `coverage` \((.*?)\)", coverage, re.S)
    assert m is not None
    assert set(re.findall(r"`([a-z_]+)`", m.group(1))) == keys(dt.DiffSideCoverage)
