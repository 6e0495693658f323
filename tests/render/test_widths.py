"""`dmaprof show` at 80, 120 and 200 columns (rich Console widths), every view.

The capture is the bundled demo phone snapshot (fixtures/captures/demo/after.dmaprof: 320
processes with long package and HAL names, taken through the real adb stack). Each rendering
is pinned as a golden file (tests/render/golden/; regenerate with DMAPROF_UPDATE_GOLDENS=1
after checking the difference by eye), and checked for what makes it readable: no line wider
than the terminal, no name cut with "…", every figure on one line, every process name whole
once its wrapped pieces are joined, the least useful columns dropped first."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from dmaprof.capture.container import load_capture
from dmaprof.render.report import VIEWS, render_default_table, render_view_table
from dmaprof.sources.show import analyze_capture

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "fixtures" / "captures" / "demo" / "after.dmaprof"
GOLDEN = Path(__file__).with_name("golden")
WIDTHS = (80, 120, 200)
BY = [None, "process", "app", "cgroup", "exporter", "name", "buffer", "device", "binder"]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return analyze_capture(load_capture(CAPTURE))[1]


def render(report: dict[str, Any], by: str | None, width: int) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, no_color=True, highlight=False, soft_wrap=False)
    if by is None:
        render_default_table(report, 15, console)
    else:
        render_view_table(report, by, 15, console)
    return buf.getvalue()


def rows_of_table(text: str, title: str) -> list[list[str]]:
    """The body rows of the table titled ``title``, each a list of cells, with the pieces of a
    wrapped cell joined (a continuation row has an empty first cell)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows: list[list[str]] = []
    for line in lines[start + 4 :]:
        if not line.startswith("│"):
            break
        cells = [c.strip() for c in line.strip("│").split("│")]
        if rows and not cells[0]:
            rows[-1] = [a + b for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    return rows


def header_of_table(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    return [c.strip() for c in lines[start + 2].strip("┃").split("┃")]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("by", BY, ids=lambda b: b or "default")
def test_show_fits_and_is_pinned(report: dict[str, Any], by: str | None, width: int) -> None:
    text = render(report, by, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    golden = GOLDEN / f"show-{by or 'default'}-{width}.txt"
    if os.environ.get("DMAPROF_UPDATE_GOLDENS"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("width", WIDTHS)
def test_process_names_whole_and_figures_on_one_line(report: dict[str, Any], width: int) -> None:
    text = render(report, None, width)
    header = header_of_table(text, "Top holders")
    rows = rows_of_table(text, "Top holders")
    names = {p["display_name"] for p in report["processes"]}
    shown = [dict(zip(header, r, strict=True)) for r in rows]
    assert len(shown) == 15
    for row in shown:
        assert row["process"] in names  # whole, not "com.ex…"
    # a figure is never split over two lines: a continuation line has no figure
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Top holders"))
    for line in lines[start + 4 :]:
        if not line.startswith("│"):
            break
        cells = [c.strip() for c in line.strip("│").split("│")]
        if not cells[0]:
            assert not any(re.search(r"\d", c) for c in cells[2:]), line
    expected = {
        80: ["pid", "process", "rss", "pss / charged", "buffers"],
        120: ["pid", "process", "uid", "rss", "pss / charged", "buffers", "fds", "vmas"],
        200: ["pid", "process", "uid", "cgroup", "rss", "pss / charged", "buffers", "fds",
              "vmas"],
    }  # fmt: skip
    assert header == expected[width]  # cgroup goes first, then uid, vmas and fds


def test_views_cover_every_by_choice() -> None:
    assert set(BY) - {None} == set(VIEWS)


# --------------------------------------------------------------------------- diff, trend


@pytest.fixture(scope="module")
def diff_doc() -> dict[str, Any]:
    from dmaprof.leaks.diff import diff_sides
    from dmaprof.leaks.side import side_from_capture

    before, after = (
        side_from_capture(load_capture(CAPTURE.with_name(n)))
        for n in ("before.dmaprof", "after.dmaprof")
    )
    return diff_sides(before, after).to_json()


@pytest.fixture(scope="module")
def trend_doc() -> dict[str, Any]:
    from dmaprof.leaks.trend import trend

    return trend(CAPTURE.with_name("series"), use_cache=False).doc


def _console(width: int) -> tuple[io.StringIO, Console]:
    buf = io.StringIO()
    return buf, Console(file=buf, width=width, no_color=True, highlight=False, soft_wrap=False)


def _check(text: str, width: int, name: str) -> None:
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    golden = GOLDEN / f"{name}-{width}.txt"
    if os.environ.get("DMAPROF_UPDATE_GOLDENS"):
        golden.write_text(text)
    assert text == golden.read_text()


DIFF_BY = [None, "process", "cgroup", "exporter", "name", "buffer"]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("by", DIFF_BY, ids=lambda b: b or "default")
def test_diff_fits_and_is_pinned(diff_doc: dict[str, Any], by: str | None, width: int) -> None:
    from dmaprof.render.diff import render_table

    buf, console = _console(width)
    render_table(diff_doc, by, 15, console)
    text = buf.getvalue()
    _check(text, width, f"diff-{by or 'default'}")
    if by is None:
        # the suspect's reason is whole once its wrapped lines are joined
        flat = " ".join(text.replace("│", " ").split())
        assert "com.example.leaky (646) holds 5 more buffers named 'leaky-thumbnail'" in flat


@pytest.mark.parametrize("width", WIDTHS)
def test_trend_fits_and_is_pinned(trend_doc: dict[str, Any], width: int) -> None:
    from dmaprof.render.diff import render_trend_table

    buf, console = _console(width)
    render_trend_table(trend_doc, None, 20, console)
    text = buf.getvalue()
    _check(text, width, "trend-default")
    header = header_of_table(text, "Series")
    assert {"kind", "series", "verdict", "growth rate", "change"} <= set(header)
    rows = rows_of_table(text, "Series")
    # whole once joined (a break at a space loses the space: compare without them)
    labels = {s["label"].replace(" ", "") for s in trend_doc["series"]}
    for row in rows:
        assert dict(zip(header, row, strict=True))["series"].replace(" ", "") in labels, row
