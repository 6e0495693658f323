"""`trend --plot`: the HTML and PNG plots of the bundled demo series (recorded from the demo
phone through the real adb stack) draw the same series in the same colours, with the y axis
from 0, every sample marked, the x axis ending at the last sample, and no "confidence" for a
series too short to test."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from dmaprof.leaks.trend import TrendResult, trend
from dmaprof.render.plot import CHARTS, _png_chart, _series_for, render_html, write_plot
from tests.e2e.conftest import REPO

SERIES = REPO / "fixtures" / "captures" / "demo" / "series"


@pytest.fixture(scope="module")
def result() -> TrendResult:
    return trend(SERIES, use_cache=False)


def _html_charts(page: str) -> list[str]:
    return re.findall(r"<section>.*?</section>", page, re.S)


def test_html_axes_markers_and_colours(result: TrendResult) -> None:
    page = render_html(result)
    charts = _html_charts(page)
    assert len(charts) >= 2
    for chart in charts:
        # y from 0: the lowest tick label is 0; x: the last tick is not past the last sample
        ylabels = re.findall(r'text-anchor="end" font-size="11">([\d.]+) ', chart)
        assert ylabels[0] == "0"
        right = max(float(v) for v in re.findall(r'cx="([\d.]+)"', chart))
        plot_right = 880 - 20
        assert abs(right - plot_right) < 0.2  # the last sample sits on the right edge
        xticks = [float(v) for v in re.findall(r'x1="([\d.]+)" y1="16" x2="[\d.]+" y2', chart)]
        assert max(xticks) <= plot_right + 0.1
        # every sample of every line is marked
        polylines = re.findall(
            r'stroke="(#[0-9a-f]{6})" stroke-width="[\d.]+" points="([^"]+)"', chart
        )
        assert polylines
        for color, points in polylines:
            assert chart.count(f'r="2.5" fill="{color}"') == len(points.split())


def test_png_uses_the_html_colours_and_axes(result: TrendResult, tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    page = render_html(result)
    charts = [(title, _series_for(result, kinds, 8)) for title, kinds in CHARTS]
    charts = [(t, s) for t, s in charts if s]
    assert len(charts) == len(_html_charts(page))
    last_minute = max(float(result.curve(s["kind"], s["key"])[0].max()) for s in charts[0][1])
    for (title, series), html_chart in zip(charts, _html_charts(page), strict=True):
        fig, ax = plt.subplots()
        _png_chart(ax, result, title, series)
        png_colors = [matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()]
        html_colors = re.findall(r'<polyline fill="none" stroke="(#[0-9a-f]{6})"', html_chart)
        assert png_colors == html_colors
        assert ax.get_ylim()[0] == 0
        assert ax.get_xlim() == pytest.approx((0, last_minute))
        assert all(line.get_marker() == "o" for line in ax.get_lines())
        plt.close(fig)
    out = tmp_path / "trend.png"
    write_plot(result, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_samples_show_no_confidence(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.mkdir()
    for sample in sorted(SERIES.glob("sample-*.dmaprof"))[:2]:
        shutil.copy(sample, short / sample.name)
    result = trend(short, use_cache=False)
    assert result.doc["samples"] == 2
    page = render_html(result)
    assert "confidence" not in page.lower()
    assert "too few samples" in page
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for title, kinds in CHARTS:
        series = _series_for(result, kinds, 8)
        if series:
            fig, ax = plt.subplots()
            _png_chart(ax, result, title, series)
            labels = [line.get_label() for line in ax.get_lines()]
            assert labels and not any("confidence" in label for label in labels)
            plt.close(fig)
