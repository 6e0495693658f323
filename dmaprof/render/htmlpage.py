"""The frame of every HTML report and its blocks (tables, treemaps): one self-contained
page (plotly.js, styles, script and data inline; nothing fetched when it is opened). What
goes in it is built by :mod:`dmaprof.render.html` (show) and :mod:`dmaprof.render.htmlleaks`
(diff, trend) from those commands' JSON documents."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

from dmaprof.errors import DmaprofError
from dmaprof.units import human_bytes

Block = dict[str, Any]


def plotly_js() -> str:
    """plotly.js as shipped inside Plotly's Python package (the `html` extra)."""
    try:
        from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
    except ImportError as exc:
        raise DmaprofError("HTML reports need plotly: pip install 'dmaprof[html]'") from exc
    return str(get_plotlyjs())


def _asset(name: str) -> str:
    return resources.files("dmaprof.render").joinpath("assets", name).read_text("utf-8")


def _script_json(data: Any) -> str:
    # inside <script>, "</" could end the element early; "\u2028" breaks old parsers
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def page(
    title: str,
    header: list[tuple[str, str | None]],
    notes: list[str],
    blocks: list[Block],
    names: dict[Any, str] | None = None,
) -> str:
    """The whole page. ``header`` holds (label, value) pairs (None: unknown), ``blocks`` the
    charts ({"type": "chart", "traces": plotly traces, ...}) and tables ({"type": "table",
    "columns": [...], "rows": [[...]]}) in page order; ``names`` names the pids of
    "pids" columns (holders)."""
    data = {
        "title": title,
        "header": header,
        "notes": notes,
        "blocks": blocks,
        "names": {str(k): v for k, v in (names or {}).items()},
    }
    escaped = title.replace("&", "&amp;").replace("<", "&lt;")
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n',
            # no request may leave the page, whatever a library tries
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
            'img-src data: blob:; font-src data:">\n',
            f"<title>{escaped}</title>\n<style>{_asset('report.css')}</style>\n</head><body>\n",
            f"<script>{plotly_js()}</script>\n",
            f"<script>window.DMAPROF={_script_json(data)};</script>\n",
            f"<script>{_asset('report.js')}</script>\n</body></html>\n",
        ]
    )


# --------------------------------------------------------------------------- blocks

Col = tuple[str, str, str]  # key, label, kind: bytes|delta|int|text|status|verdict|hidden


def size_text(value: Any) -> str:
    return "unknown" if value is None else human_bytes(int(value))


def table_block(
    block_id: str,
    title: str,
    columns: Sequence[Col],
    rows: Iterable[dict[str, Any]],
    caption: str | None = None,
    select: dict[str, Any] | None = None,
) -> Block:
    rows = list(rows)
    present = {k for row in rows for k in row}
    # a key the document lacks (an older schema) is "absent", not a column of unknowns
    cols = [
        {
            "key": k,
            "label": label,
            "kind": kind if not rows or k in present else "absent",
            "hidden": kind == "hidden",
        }
        for k, label, kind in columns
    ]
    data = [[_cell(row.get(k)) for k, _, _ in columns] for row in rows]
    block: Block = {
        "type": "table",
        "id": block_id,
        "title": title,
        "columns": cols,
        "rows": data,
        "caption": caption,
    }
    if select:
        block["select"] = select
    return block


def _cell(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def treemap_block(
    block_id: str, title: str, nodes: list[tuple[str, str, str, int, str]], caption: str
) -> Block:
    """``nodes``: (id, label, parent id, value, hover text); values are totals of their
    children (plotly's branchvalues="total")."""
    ids, labels, parents, values, hover = (
        (list(col) for col in zip(*nodes, strict=True)) if nodes else ([], [], [], [], [])
    )
    trace = {
        "type": "treemap",
        "ids": ids,
        "labels": labels,
        "parents": parents,
        "values": values,
        "customdata": hover,
        "branchvalues": "total",
        "hovertemplate": "<b>%{label}</b><br>%{customdata}<extra></extra>",
        "texttemplate": "%{label}<br>%{customdata}",
        "maxdepth": 3,
        "marker": {"line": {"width": 1}},
    }
    return {
        "type": "chart",
        "id": block_id,
        "title": title,
        "caption": caption,
        "traces": [trace],
        "layout": {"height": 560},
    }


class Tree:
    """Treemap nodes summed bottom-up, so every branch is the total of its tiles."""

    def __init__(self) -> None:
        self.label: dict[str, str] = {}
        self.parent: dict[str, str] = {}
        self.value: dict[str, int] = defaultdict(int)
        self.extra: dict[str, str] = {}

    def add(self, path: Sequence[tuple[str, str]], value: int, hover: str = "") -> None:
        parent = ""
        for node_id, label in path:
            self.label.setdefault(node_id, label)
            self.parent.setdefault(node_id, parent)
            self.value[node_id] += value
            parent = node_id
        if hover:
            self.extra[path[-1][0]] = hover

    def nodes(self, limit: int = 0) -> list[tuple[str, str, str, int, str]]:
        """The nodes, at most ``limit`` of the largest (0: all); what a kept branch loses
        becomes its "other" tile, so every branch still sums to its figure."""
        depth: dict[str, int] = {}
        for i in self.value:  # parents are added before their children
            depth[i] = depth[self.parent[i]] + 1 if self.parent[i] else 0
        order = sorted(
            (i for i, v in self.value.items() if v > 0), key=lambda i: (-self.value[i], depth[i])
        )
        keep = order[:limit] if limit else order
        kept = set(keep)
        shown: dict[str, int] = defaultdict(int)
        for i in keep:
            if self.parent[i]:
                shown[self.parent[i]] += self.value[i]
        out = [
            (
                i,
                self.label[i],
                self.parent[i],
                self.value[i],
                size_text(self.value[i]) + (" · " + self.extra[i] if i in self.extra else ""),
            )
            for i in keep
        ]
        for parent, value in shown.items():
            if parent in kept and value < self.value[parent]:
                rest = self.value[parent] - value
                out.append((f"{parent}/~other", "other", parent, rest, size_text(rest)))
        return out
