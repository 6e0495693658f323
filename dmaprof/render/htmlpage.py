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

# the trace types in the plotly.js bundle (scripts/build_plotly_bundle.sh)
TRACE_TYPES = frozenset({"treemap", "sankey", "scatter"})
# tiles a treemap draws at most (the rest summed per branch): at 300 tiles, drawing the
# treemap of a 2,000-process capture took most of the time to open its page
TREEMAP_TILES = 150


PLOTLY_BUNDLE = "plotly-dmaprof.min.js"


def plotly_js() -> str:
    """A partial plotly.js (treemap, sankey and scatter only), built from the npm package by
    scripts/build_plotly_bundle.sh: a page parses it in a fifth of the full bundle's time."""
    try:
        return _asset(PLOTLY_BUNDLE)
    except FileNotFoundError as exc:
        raise DmaprofError(f"the package lacks its plotly.js bundle ({PLOTLY_BUNDLE})") from exc


def _asset(name: str) -> str:
    return resources.files("dmaprof.render").joinpath("assets", name).read_text("utf-8")


def _script_json(data: Any) -> str:
    # inside <script>, "</script" or "<!--" would change how the page is parsed: no "<" at
    # all (it can only stand in a string, where "\\u003c" is the same text to JSON.parse)
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c")


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
    for block in blocks:
        for trace in block.get("traces") or []:
            if trace["type"] not in TRACE_TYPES:  # the page would fail to draw it
                raise ValueError(f"the plotly.js bundle has no {trace['type']!r} trace")
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
            # JSON.parse of a data block is faster than parsing the same text as a script
            '<script type="application/json" id="dmaprof-data">',
            _script_json(data),
            "</script>\n",
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


Node = tuple[str, str, str, int, str, str]  # id, label, parent id, value, size text, detail


def treemap_block(block_id: str, title: str, nodes: list[Node], caption: str) -> Block:
    """``nodes``: values are totals of their children (plotly's branchvalues="total"). A
    tile shows its label and size; the detail is for the hover only (less text to fit)."""
    ids, labels, parents, values, sizes, details = (
        (list(col) for col in zip(*nodes, strict=True)) if nodes else ([], [], [], [], [], [])
    )
    trace = {
        "type": "treemap",
        "ids": ids,
        "labels": labels,
        "parents": parents,
        "values": values,
        "customdata": [[size, detail] for size, detail in zip(sizes, details, strict=True)],
        "branchvalues": "total",
        "hovertemplate": "<b>%{label}</b><br>%{customdata[0]}<br>%{customdata[1]}<extra></extra>",
        "texttemplate": "%{label}<br>%{customdata[0]}",
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

    def nodes(self, limit: int = 0) -> list[Node]:
        """The nodes, at most ``limit`` of the largest (0: all) and the sums of the rest: what
        a kept branch does not draw becomes its "N smaller" tile, and roots beyond the limit
        one root of their own, so every byte stays drawn and every branch sums to its figure."""
        depth: dict[str, int] = {}
        for i in self.value:  # parents are added before their children
            depth[i] = depth[self.parent[i]] + 1 if self.parent[i] else 0
        # largest first; a parent is never smaller than its child, so it comes first
        order = sorted(
            (i for i, v in self.value.items() if v > 0), key=lambda i: (-self.value[i], depth[i])
        )
        roots = [i for i in order if not self.parent[i]]
        limit = limit or len(order)
        keep = roots if len(roots) <= limit else roots[: max(limit - 1, 1)]
        kept = set(keep)
        for i in order:
            if len(keep) >= limit:
                break
            if self.parent[i] in kept:
                keep.append(i)
                kept.add(i)
        out = [
            (
                i,
                self.label[i],
                self.parent[i],
                self.value[i],
                size_text(self.value[i]),
                self.extra.get(i, ""),
            )
            for i in keep
        ]
        shown: dict[str, int] = defaultdict(int)
        for i in keep:
            shown[self.parent[i]] += self.value[i]
        hidden: dict[str, int] = defaultdict(int)  # children a kept branch does not draw
        for i in order:
            if i not in kept and (self.parent[i] in kept or not self.parent[i]):
                hidden[self.parent[i]] += 1
        for parent, count in hidden.items():
            if parent and not shown[parent]:
                continue  # none of its children drawn: the kept tile is whole as it is
            rest = (sum(self.value[i] for i in roots) if not parent else self.value[parent]) - (
                shown[parent]
            )
            node_id = f"{parent}/~other" if parent else "~other"
            out.append((node_id, f"{count} smaller", parent, rest, size_text(rest), "summed"))
        return out
