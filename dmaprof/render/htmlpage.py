"""The frame of every HTML report: one self-contained page (plotly.js, styles, script and
data inline; nothing fetched when it is opened). What goes in it is built by
:mod:`dmaprof.render.html` from the JSON documents of show, diff and trend."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from dmaprof.errors import DmaprofError

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
