"""The HTML reports of `dmaprof diff` (``dmaprof.diff/2``) and `dmaprof trend`
(``dmaprof.trend/N`` and its points), in the frame of the show report: suspects and leak
verdicts first; unknown changes say "unknown" and get no tile."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dmaprof.render.htmlpage import (
    TREEMAP_TILES,
    Block,
    Col,
    Tree,
    page,
    size_text,
    table_block,
    treemap_block,
)

TREND_SERIES = 8  # curves per chart, as the SVG plot


# --------------------------------------------------------------------------- diff


BUFFER_COLS: list[Col] = [
    ("inode", "inode", "int"),
    ("name", "name", "text"),
    ("exporter", "exporter", "text"),
    ("size_bytes", "size", "bytes"),
    ("holders", "holders", "pids"),
    ("kernel_only", "kernel-only", "text"),
]
DELTA_COLS: list[Col] = [
    ("delta_charged_bytes", "Δ charged", "delta"),
    ("delta_rss_bytes", "Δ rss", "delta"),
    ("delta_buffers", "Δ buffers", "int"),
]


def _side(doc: dict[str, Any], side: str) -> str | None:
    s = doc.get(side) or {}
    if not s:
        return None
    return f"{s.get('model')} · {s.get('mode')} · {s.get('captured_at')}"


def diff_treemap(doc: dict[str, Any]) -> Block:
    """Growth of the charged figure: app → process, positive known deltas only."""
    apps = {a.get("uid"): a.get("label") or f"uid {a.get('uid')}" for a in doc.get("apps") or []}
    tree = Tree()
    unknown = 0
    for proc in doc.get("processes") or []:
        delta = proc.get("delta_charged_bytes")
        if delta is None:
            unknown += 1
        elif delta > 0:
            uid, pid = proc.get("uid"), proc.get("pid")
            tree.add(
                [
                    (f"a/{uid}", apps.get(uid, f"uid {uid}")),
                    (
                        f"a/{uid}/{pid}/{proc.get('status')}",
                        f"{proc.get('name')} ({pid}, {proc.get('status')})",
                    ),
                ],
                int(delta),
                f"{proc.get('delta_buffers')} buffers more",
            )
    caption = f"Growth of the '{doc.get('charge')}' charge per app and process."
    if unknown:
        caption += f" {unknown} processes have an unknown change and no tile."
    if len(tree.value) > TREEMAP_TILES:
        caption += (
            f" The {TREEMAP_TILES} largest tiles are drawn; the growth of the others is "
            "summed per app (every process is in the table below)."
        )
    return treemap_block("treemap", "Where the memory grew", tree.nodes(TREEMAP_TILES), caption)


def diff_html(doc: dict[str, Any]) -> str:
    """The page of a comparison (`dmaprof diff --format html`): suspects first."""
    totals, bufs = doc.get("totals") or {}, doc.get("buffers") or {}
    header = [
        ("before", _side(doc, "before")),
        ("after", _side(doc, "after")),
        ("same boot", str(doc.get("same_boot"))),
        ("charge", doc.get("charge")),
        ("buffers", f"{totals.get('buffers_before')} → {totals.get('buffers_after')}"),
        (
            "bytes",
            f"{size_text(totals.get('bytes_before'))} → {size_text(totals.get('bytes_after'))}",
        ),
        ("new buffers", f"{bufs.get('new_count')} · {size_text(bufs.get('new_bytes'))}"),
        ("freed buffers", f"{bufs.get('freed_count')} · {size_text(bufs.get('freed_bytes'))}"),
    ]
    notes = [*map(str, doc.get("unknown_reasons") or []), *map(str, doc.get("warnings") or [])]
    blocks: list[Block] = [
        table_block(
            "suspects",
            "Leak suspects",
            [
                ("reason", "reason", "text"),
                ("kind", "kind", "text"),
                ("key", "key", "text"),
                ("delta_bytes", "Δ bytes", "delta"),
                ("delta_buffers", "Δ buffers", "int"),
            ],
            doc.get("suspects") or [],
            caption="Ranked on known changes only.",
        ),
        diff_treemap(doc),
        table_block(
            "processes",
            "Processes",
            [
                ("pid", "pid", "int"),
                ("name", "process", "text"),
                ("status", "status", "status"),
                ("uid", "uid", "int"),
                *DELTA_COLS,
                ("charged_bytes_before", "charged before", "bytes"),
                ("charged_bytes_after", "charged after", "bytes"),
                ("gained_new_buffers", "new buffers", "int"),
                ("lost_freed_buffers", "freed buffers", "int"),
            ],
            doc.get("processes") or [],
            caption="Click a process to list the new buffers it holds.",
            select={"table": "new", "from": 0, "to": 4, "what": "pid", "label": 1},
        ),
        table_block("new", "New buffers", BUFFER_COLS, bufs.get("new") or []),
        table_block("freed", "Freed buffers", BUFFER_COLS, bufs.get("freed") or []),
        table_block(
            "apps",
            "Apps",
            [
                ("uid", "uid", "int"),
                ("label", "app", "text"),
                ("status", "status", "status"),
                *DELTA_COLS,
            ],
            doc.get("apps") or [],
        ),
        table_block(
            "exporters",
            "Exporters",
            [
                ("exporter", "exporter", "text"),
                ("status", "status", "status"),
                ("delta_bytes", "Δ bytes", "delta"),
                ("delta_buffers", "Δ buffers", "int"),
                ("bytes_before", "before", "bytes"),
                ("bytes_after", "after", "bytes"),
            ],
            doc.get("exporters") or [],
        ),
        table_block(
            "cgroups",
            "Cgroups",
            [
                ("path", "cgroup", "text"),
                ("status", "status", "status"),
                ("delta_charged_bytes_with_descendants", "Δ charged with descendants", "delta"),
                ("delta_rss_bytes_with_descendants", "Δ rss with descendants", "delta"),
            ],
            doc.get("cgroups") or [],
        ),
    ]
    names = {p.get("pid"): f"{p.get('name')} ({p.get('pid')})" for p in doc.get("processes") or []}
    return page("dmaprof diff", header, notes, blocks, names=names)


# --------------------------------------------------------------------------- trend

TREND_CHARTS = (("total", "kernel_only"), ("process",), ("app",), ("exporter",), ("name",))


def trend_html(doc: dict[str, Any], points: list[dict[str, Any]]) -> str:
    """The page of a series (`dmaprof trend --plot FILE.html`): verdicts on top, one
    zoomable chart per kind, the series table linked to the curves. ``points`` are the
    samples' figures (kind, key, minutes, bytes), as the trend computed them."""
    curves: dict[str, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
    for p in points:
        xs, ys = curves[f"{p['kind']}:{p['key']}"]
        xs.append(round(float(p["minutes"]), 4))
        ys.append(int(p["bytes"]))
    series = [
        {**s, "id": f"{s['kind']}:{s['key']}", "slope": s.get("slope_bytes_per_min")}
        for s in doc.get("series") or []
    ]
    blocks: list[Block] = [
        table_block(
            "leaks",
            "Leak verdicts",
            [
                ("label", "series", "text"),
                ("kind", "kind", "text"),
                ("reason", "reason", "text"),
                ("slope", "bytes/min", "delta"),
                ("delta_bytes", "Δ bytes", "delta"),
            ],
            [s for s in series if s.get("verdict") == "leak"],
        )
    ]
    for kinds in TREND_CHARTS:
        rows = [s for s in series if s["kind"] in kinds]
        if kinds != ("total", "kernel_only"):
            rows = [s for s in rows if s["verdict"] == "leak" or s["delta_bytes"] or s["falls"]]
        rows = rows[:TREND_SERIES]
        if not rows:
            continue
        traces = [
            {
                # SVG lines; one marker per sample only while they stay few
                "type": "scatter",
                "mode": "lines+markers" if len(curves[s["id"]][0]) <= 500 else "lines",
                "name": str(s["label"])[:60],
                "meta": s["id"],
                "x": curves[s["id"]][0],
                "y": curves[s["id"]][1],
                "line": {"width": 3 if s["verdict"] == "leak" else 1.5},
                "hovertemplate": "%{y:.4s}B at %{x:.1f} min<extra>%{fullData.name}</extra>",
            }
            for s in rows
        ]
        blocks.append(
            {
                "type": "chart",
                "id": f"chart-{kinds[0]}",
                "title": f"By {kinds[0]}"
                if kinds[0] != "total"
                else "All DMA-BUFs and kernel-only",
                "traces": traces,
                "layout": {
                    "height": 380,
                    "margin": {"t": 40, "l": 60, "r": 10, "b": 40},
                    "xaxis": {"title": {"text": "minutes"}, "rangeslider": {}},
                    "yaxis": {"title": {"text": "bytes"}, "tickformat": ".3s"},
                    "showlegend": True,
                    "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
                },
            }
        )
    blocks.append(
        table_block(
            "series",
            "All series",
            [
                ("label", "series", "text"),
                ("kind", "kind", "text"),
                ("verdict", "verdict", "verdict"),
                ("slope", "bytes/min", "delta"),
                ("delta_bytes", "Δ bytes", "delta"),
                ("last_bytes", "last", "bytes"),
                ("points", "points", "int"),
                ("unknown_points", "unknown points", "int"),
                ("id", "id", "hidden"),
            ],
            series,
            caption="Click a series to show its curve alone (again: all curves).",
            select={"trace": True, "from": 8},
        )
    )
    dev = doc.get("device") or {}
    header = [
        ("device", dev.get("model")),
        ("serial", dev.get("serial")),
        ("samples", str(doc.get("samples"))),
        ("span", f"{doc.get('span_s')} s"),
        ("start", doc.get("start_utc")),
        ("reboots", str(doc.get("reboots"))),
        ("modes", ", ".join(doc.get("modes") or [])),
        ("leaks", str(len(doc.get("leaks") or []))),
    ]
    return page("dmaprof trend", header, [str(w) for w in doc.get("warnings") or []], blocks)
