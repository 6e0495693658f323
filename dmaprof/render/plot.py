"""Plots of `dmaprof trend`: one self-contained HTML page with inline SVG charts.

No JavaScript, no CDN, no external file: the page opens offline and can be uploaded as a
CI artifact. Charts: all DMA-BUF memory (and the part held by no process), then the top
processes, apps, exporters and buffer names (leaks first, then the steepest slopes), each
line with its Theil–Sen fit dashed. Hovering a point shows its value (SVG ``<title>``).

``FILE.png`` is drawn with matplotlib (the ``dmaprof[plot]`` extra): the same charts, series,
colours and axes (y from 0, x ending at the last sample, every sample marked).
"""

from __future__ import annotations

import html
import importlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dmaprof.errors import DmaprofError
from dmaprof.leaks.trend import TrendResult
from dmaprof.units import human_bytes, signed_bytes

PALETTE = (
    "#d62728",
    "#1f77b4",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)
WIDTH, HEIGHT = 880, 300
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 16, 40
MAX_MARKERS = 200  # points per series drawn as hoverable markers

CHARTS = (
    ("All DMA-BUFs", ("total", "kernel_only")),
    ("Processes (rss)", ("process",)),
    ("Apps (rss)", ("app",)),
    ("Exporters", ("exporter",)),
    ("Buffer names", ("name",)),
)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step) * step
    count_needed = math.ceil((hi - first) / step - 1e-9) + 1  # the last tick covers hi
    return [round(first + k * step, 10) for k in range(count_needed)]


def _byte_ticks(lo: float, hi: float) -> tuple[list[float], int]:
    unit = int(1024 ** max(0, min(4, int(math.log(max(hi, 1), 1024)))))
    return [t * unit for t in nice_ticks(lo / unit, hi / unit)], unit


def _series_for(result: TrendResult, kinds: Sequence[str], limit: int) -> list[dict[str, Any]]:
    rows = [s for s in result.doc["series"] if s["kind"] in kinds]
    if kinds == ("total", "kernel_only"):
        return rows
    moving = [s for s in rows if s["verdict"] == "leak" or s["delta_bytes"] or s["falls"]]
    return moving[:limit]


def series_colors(series: Sequence[dict[str, Any]]) -> list[str]:
    """The colour of each series of one chart, the same in the HTML and the PNG plot."""
    return [PALETTE[n % len(PALETTE)] for n in range(len(series))]


def _confidence(s: dict[str, Any]) -> str | None:
    """ "97%", or None when the series is too short for a trend test to mean anything."""
    value = s.get("confidence")
    if value is None or s.get("points", 0) < 3 or s.get("verdict") == "too_few_samples":
        return None
    return f"{100 * float(value):.0f}%"


def _chart(result: TrendResult, title: str, series: list[dict[str, Any]]) -> str:
    curves = [result.curve(s["kind"], s["key"]) for s in series]
    xs = np.concatenate([c[0] for c in curves]) if curves else np.zeros(1)
    ys = np.concatenate([c[1] for c in curves]) if curves else np.zeros(1)
    x_hi = float(xs.max()) if xs.size and xs.max() > 0 else 1.0
    y_lo, y_hi = 0.0, float(ys.max()) if ys.size else 1.0
    y_hi = y_hi * 1.05 if y_hi > 0 else 1.0
    yticks, unit = _byte_ticks(y_lo, y_hi)
    y_hi = max(y_hi, yticks[-1])
    # the x axis ends at the last sample: ticks past it are dropped, not the axis stretched
    xticks = [t for t in nice_ticks(0.0, x_hi) if t <= x_hi * (1 + 1e-9)]
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x_max, y_min, y_max = float(x_hi), float(y_lo), float(y_hi)

    def sx(v: float) -> float:
        return LEFT + pw * v / x_max

    def sy(v: float) -> float:
        return TOP + ph * (1 - (v - y_min) / (y_max - y_min))

    out = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{html.escape(title)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fff" stroke="#ccc"/>',
    ]
    unit_name = _UNIT_NAMES[unit]
    for t in yticks:
        ty = sy(t)
        out.append(
            f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{LEFT + pw}" y2="{ty:.1f}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" '
            f'font-size="11">{t / unit:g} {unit_name}</text>'
        )
    for t in xticks:
        tx = sx(t)
        out.append(f'<line x1="{tx:.1f}" y1="{TOP}" x2="{tx:.1f}" y2="{TOP + ph}" stroke="#eee"/>')
        out.append(
            f'<text x="{tx:.1f}" y="{TOP + ph + 16}" text-anchor="middle" '
            f'font-size="11">{t:g}</text>'
        )
    out.append(
        f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 4}" text-anchor="middle" '
        'font-size="11">minutes since the first sample</text>'
    )
    for color, s, (x, y) in zip(series_colors(series), series, curves, strict=True):
        width = 3 if s["verdict"] == "leak" else 1.5
        pts = " ".join(
            f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(x.tolist(), y.tolist(), strict=True)
        )
        label = html.escape(s["label"])
        out.append(
            f'<g><title>{label}</title><polyline fill="none" stroke="{color}" '
            f'stroke-width="{width}" points="{pts}"/></g>'
        )
        if x.size >= 2 and s["slope_bytes_per_min"]:
            slope = s["slope_bytes_per_min"]
            mid_x, mid_y = float(np.median(x)), float(np.median(y))
            y0 = mid_y + slope * (float(x[0]) - mid_x)
            y1 = mid_y + slope * (float(x[-1]) - mid_x)
            out.append(
                f'<line x1="{sx(float(x[0])):.1f}" y1="{sy(y0):.1f}" '
                f'x2="{sx(float(x[-1])):.1f}" y2="{sy(y1):.1f}" stroke="{color}" '
                'stroke-dasharray="5,4" stroke-width="1" opacity="0.7"/>'
            )
        if x.size <= MAX_MARKERS:
            for a, b in zip(x.tolist(), y.tolist(), strict=True):
                out.append(
                    f'<circle cx="{sx(a):.1f}" cy="{sy(b):.1f}" r="2.5" fill="{color}">'
                    f"<title>{label}: {html.escape(human_bytes(int(b)))} at "
                    f"{a:.2f} min</title></circle>"
                )
    out.append("</svg>")
    legend = ["<ul class='legend'>"]
    for color, s in zip(series_colors(series), series, strict=True):
        rate = signed_bytes(round(s["slope_bytes_per_min"])) + "/min"
        flag = " <b>LEAK</b>" if s["verdict"] == "leak" else ""
        confidence = _confidence(s)
        legend.append(
            f"<li><span class='swatch' style='background:{color}'></span>"
            f"{html.escape(s['label'])}: {html.escape(human_bytes(s['last_bytes']))} "
            f"({html.escape(signed_bytes(s['delta_bytes']))}), {html.escape(rate)}"
            + (f", confidence {confidence}" if confidence else "")
            + f"{flag}</li>"
        )
    legend.append("</ul>")
    return f"<section><h2>{html.escape(title)}</h2>\n" + "\n".join(out + legend) + "</section>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.leak { color: #b00; font-weight: bold; }
.legend { list-style: none; padding: 0; font-size: 13px; }
.legend li { margin: 2px 0; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
          vertical-align: middle; }
.warn { color: #a60; }
"""


def render_html(result: TrendResult, *, per_chart: int = 8) -> str:
    doc = result.doc
    device = doc.get("device") or {}
    title = f"dmaprof trend: {device.get('model') or device.get('serial') or 'device'}"
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{doc['samples']} samples over {doc['span_s'] / 60:.1f} min, "
        f"{doc['gaps']} gaps, {len(doc['leaks'])} leak(s) flagged "
        + (
            f"(Theil–Sen slope; Mann–Kendall confidence ≥ "
            f"{100 * doc['policy']['confidence']:.0f}%).</p>"
            if doc["samples"] >= 3
            else "(too few samples for a trend test).</p>"
        ),
    ]
    parts += [f"<p class='warn'>warning: {html.escape(w)}</p>" for w in doc["warnings"]]
    parts += [f"<p class='leak'>LEAK: {html.escape(s['reason'])}</p>" for s in doc["leaks"]]
    for chart_title, kinds in CHARTS:
        series = _series_for(result, kinds, per_chart)
        if series:
            parts.append(_chart(result, chart_title, series))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_png(result: TrendResult, path: Path, *, per_chart: int = 8) -> None:
    """The HTML page's charts as one PNG: the same series, colours, markers and axes."""
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        raise DmaprofError(
            "a PNG plot needs matplotlib, which is not installed: "
            "pip install 'dmaprof[plot]' (or write an .html plot, which needs nothing)"
        ) from None
    charts = [(t, _series_for(result, k, per_chart)) for t, k in CHARTS]
    charts = [(t, s) for t, s in charts if s]
    fig, axes = plt.subplots(len(charts), 1, figsize=(10, 3.2 * len(charts)), squeeze=False)
    for ax, (title, series) in zip(axes[:, 0], charts, strict=True):
        _png_chart(ax, result, title, series)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _png_chart(ax: Any, result: TrendResult, title: str, series: list[dict[str, Any]]) -> None:
    curves = [result.curve(s["kind"], s["key"]) for s in series]
    x_hi = max((float(x.max()) for x, _y in curves if x.size), default=0.0) or 1.0
    y_hi = max((float(y.max()) for _x, y in curves if y.size), default=0.0)
    _ticks, unit = _byte_ticks(0.0, y_hi * 1.05 if y_hi > 0 else 1.0)
    for color, s, (x, y) in zip(series_colors(series), series, curves, strict=True):
        leak = s["verdict"] == "leak"
        confidence = _confidence(s)
        label = s["label"] + (" (LEAK)" if leak else "")
        if confidence:
            label += f", confidence {confidence}"
        ax.plot(
            x,
            y / unit,
            color=color,
            linewidth=3 if leak else 1.5,
            marker="o" if x.size <= MAX_MARKERS else None,
            markersize=3,
            label=label,
        )
    ax.set_title(title)
    ax.set_ylabel(_UNIT_NAMES[unit])
    ax.set_xlabel("minutes since the first sample")
    ax.set_xlim(0, x_hi)
    ax.set_ylim(bottom=0, top=(y_hi * 1.05 / unit) if y_hi > 0 else 1)
    ax.legend(fontsize=7, loc="upper left")


_UNIT_NAMES = {1: "B", 1024: "KiB", 1024**2: "MiB", 1024**3: "GiB", 1024**4: "TiB"}


def write_plot(result: TrendResult, path: Path) -> None:
    suffix = path.suffix.lower()
    try:
        if suffix in (".html", ".htm"):
            path.write_text(render_html(result), encoding="utf-8")
        elif suffix == ".png":
            write_png(result, path)
        else:
            raise DmaprofError(f"--plot {path}: the file name must end in .html or .png")
    except OSError as exc:
        raise DmaprofError(f"cannot write {path}: {exc.strerror or exc}") from exc
