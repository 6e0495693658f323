"""Renderers of `dmaprof diff` (``dmaprof.diff/2``) and `dmaprof trend` (``dmaprof.trend/2``).

They take the JSON-ready documents and write them out: a rich table for people, markdown
for CI (the same document `diff` appends to ``$GITHUB_STEP_SUMMARY``: verdict first, top
growths, ``<details>`` for the rest), CSV and JSON for scripts. Only the table and markdown
renderers use human units; CSV and JSON carry raw integers.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dmaprof.render.columns import (
    Column,
    cell_style,
    cell_text,
    csv_cell,
    fit_columns,
    markdown_escape,
    markdown_table,
    rich_table,
    unknown_numbers,
)
from dmaprof.units import human_bytes, safe_text, signed_bytes


@dataclass(frozen=True)
class View:
    section: str
    title: str
    columns: tuple[Column, ...]
    changed: tuple[str, ...]  # a row changed when one of these is non-zero (or status != kept)


_GROUP_COLUMNS = (
    Column("status", "status"),
    Column("buffers_after", "buffers", "int"),
    Column("delta_buffers", "Δ buffers", "delta_int"),
    Column("bytes_after", "bytes", "bytes"),
    Column("delta_bytes", "Δ bytes", "delta_bytes"),
    Column("new_buffers", "new", "int"),
    Column("freed_buffers", "freed", "int"),
    Column("delta_kernel_only_bytes", "Δ kernel-only", "delta_bytes"),
)

VIEWS: dict[str, View] = {
    "process": View(
        "processes",
        "Processes",
        (
            Column("pid", "pid", "int"),
            Column("name", "name"),
            Column("status", "status"),
            Column("rss_bytes_before", "rss before", "bytes"),
            Column("rss_bytes_after", "rss after", "bytes"),
            Column("delta_rss_bytes", "Δ rss", "delta_bytes"),
            Column("delta_pss_bytes", "Δ pss / charged", "delta_bytes"),
            Column("delta_buffers", "Δ buffers", "delta_int"),
            Column("gained_buffers", "gained", "int"),
            Column("lost_buffers", "released", "int"),
        ),
        ("delta_rss_bytes", "delta_pss_bytes", "delta_buffers", "gained_buffers", "lost_buffers"),
    ),
    "app": View(
        "apps",
        "Apps (by uid)",
        (
            Column("uid", "uid", "int"),
            Column("label", "name"),
            Column("status", "status"),
            Column("rss_bytes_before", "rss before", "bytes"),
            Column("rss_bytes_after", "rss after", "bytes"),
            Column("delta_rss_bytes", "Δ rss", "delta_bytes"),
            Column("delta_pss_bytes", "Δ pss / charged", "delta_bytes"),
            Column("delta_buffers", "Δ buffers", "delta_int"),
        ),
        ("delta_rss_bytes", "delta_pss_bytes", "delta_buffers"),
    ),
    "cgroup": View(
        "cgroups",
        "cgroups (with descendants)",
        (
            Column("path", "cgroup"),
            Column("status", "status"),
            Column("rss_bytes_with_descendants_after", "rss", "bytes"),
            Column("delta_rss_bytes_with_descendants", "Δ rss", "delta_bytes"),
            Column("pss_bytes_with_descendants_after", "pss / charged", "bytes"),
            Column("delta_pss_bytes_with_descendants", "Δ pss / charged", "delta_bytes"),
        ),
        ("delta_rss_bytes_with_descendants", "delta_pss_bytes_with_descendants"),
    ),
    "exporter": View(
        "exporters",
        "Exporters / heaps",
        (Column("exporter", "exporter"), *_GROUP_COLUMNS),
        ("delta_buffers", "delta_bytes", "new_buffers", "freed_buffers"),
    ),
    "name": View(
        "names",
        "Buffer names",
        (Column("name", "name"), *_GROUP_COLUMNS),
        ("delta_buffers", "delta_bytes", "new_buffers", "freed_buffers"),
    ),
    "buffer": View(
        "buffers",
        "New and freed buffers",
        (
            Column("change", "change"),
            Column("inode", "inode", "int"),
            Column("size_bytes", "size", "bytes"),
            Column("exporter", "exporter"),
            Column("name", "name"),
            Column("holders", "holders (pids)", "list"),
        ),
        (),
    ),
}
SUSPECT_COLUMNS = (
    Column("rank", "#", "int"),
    Column("delta_bytes", "growth", "delta_bytes"),
    Column("kind", "kind"),
    Column("reason", "reason"),
)


def view_rows(doc: dict[str, Any], by: str, *, changed_only: bool = False) -> list[dict[str, Any]]:
    view = VIEWS[by]
    if by == "buffer":
        buffers = doc.get("buffers") or {}
        return [{**b, "change": "new"} for b in buffers.get("new", [])] + [
            {**b, "change": "freed"} for b in buffers.get("freed", [])
        ]
    rows = list(doc.get(view.section) or [])
    if changed_only:  # an unknown change (null) may be one: shown, as "?"
        rows = [
            r
            for r in rows
            if r.get("status") not in (None, "kept")
            or any(r.get(k) or (k in r and r[k] is None) for k in view.changed)
        ]
    return rows


# --------------------------------------------------------------------------- cells


def unknown_mark(column: Column) -> str:
    """A figure a side could not see (null in the JSON): ``?``, explained below the table."""
    return "?" if column.numeric else ""


#: columns a narrow terminal drops first, in this order (a table drops those it has, while
#: it is wider than the terminal); text columns are then wrapped, never cut
NARROW_DROP = (
    "points",
    "first_bytes",
    "rss_bytes_before",
    "rss_bytes_after",
    "lost_buffers",
    "gained_buffers",
    "freed_buffers",
    "new_buffers",
    "delta_kernel_only_bytes",
    "buffers_after",
    "rss_bytes_with_descendants_after",
    "pss_bytes_with_descendants_after",
    "status",
    "inode",
    "delta_buffers",
    "confidence",
    "last_bytes",
)


def _rich_table(
    title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]], width: int | None = None
) -> Table:
    if width is None:
        return rich_table(title, columns, rows, missing=unknown_mark, fold=("reason",))
    kept = fit_columns(columns, rows, width, NARROW_DROP, missing=unknown_mark)
    fold = [c.key for c in kept if not c.numeric]
    return rich_table(title, kept, rows, missing=unknown_mark, fold=fold, width=width)


def _md_table(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> str:
    return markdown_table(columns, rows, missing=unknown_mark)


def unknown_note(doc: dict[str, Any]) -> str | None:
    """The one explanation of every ``?``: why figures are unknown."""
    reasons = doc.get("unknown_reasons") or []
    return "? = unknown: " + "; ".join(reasons) if reasons else None


_md = markdown_escape


# --------------------------------------------------------------------------- header lines


def _elapsed(doc: dict[str, Any]) -> str:
    b = (doc.get("before") or {}).get("captured_at")
    a = (doc.get("after") or {}).get("captured_at")
    if not b or not a:
        return ""
    return f"{b} → {a}"


def headline(doc: dict[str, Any]) -> str:
    after = doc.get("after") or {}
    who = safe_text(after.get("model") or "device")
    if after.get("serial"):
        who += f" ({safe_text(after['serial'])})"
    parts = [f"DMA-BUF diff · {who}", _elapsed(doc), f"charge: {doc.get('charge')}"]
    return " · ".join(p for p in parts if p)


def totals_line(doc: dict[str, Any]) -> str:
    t = doc.get("totals") or {}

    def size(key: str) -> str:
        return "?" if t.get(key) is None else human_bytes(t[key])

    delta, count = t.get("delta_bytes"), t.get("delta_buffers")
    text = (
        f"{size('bytes_before')} → {size('bytes_after')} "
        f"({'?' if delta is None else signed_bytes(int(delta))}), "
        f"{t.get('buffers_before', '?')} → {t.get('buffers_after', '?')} buffers "
        f"({'?' if count is None else format(int(count), '+d')})"
    )
    buffers = doc.get("buffers") or {}
    if buffers.get("compared"):
        text += (
            f"; {buffers.get('new_count', 0)} new ({human_bytes(buffers.get('new_bytes'))}), "
            f"{buffers.get('freed_count', 0)} freed "
            f"({human_bytes(buffers.get('freed_bytes'))}), {buffers.get('kept_count', 0)} "
            f"kept ({buffers.get('moved_count', 0)} changed holders)"
        )
    return text


def _totals_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    t = doc.get("totals") or {}
    rows = []
    for key, label in (
        ("bytes", "all DMA-BUFs"),
        ("userspace_bytes", "held by processes"),
        ("kernel_only_bytes", "kernel-only (held by no process)"),
        ("charged_bytes", "charged (sum of pss)"),
    ):
        rows.append(
            {
                "what": label,
                "before": t.get(f"{key}_before"),
                "after": t.get(f"{key}_after"),
                "delta": t.get(f"delta_{key}"),
            }
        )
    rows.append(
        {
            "what": "buffers",
            "before": t.get("buffers_before"),
            "after": t.get("buffers_after"),
            "delta": t.get("delta_buffers"),
            "count": True,
        }
    )
    return rows


_TOTALS_COLUMNS = (
    Column("what", "total"),
    Column("before", "before", "bytes"),
    Column("after", "after", "bytes"),
    Column("delta", "change", "delta_bytes"),
)
_COUNT_COLUMNS = (
    Column("what", "total"),
    Column("before", "before", "int"),
    Column("after", "after", "int"),
    Column("delta", "change", "delta_int"),
)


def _totals_table(doc: dict[str, Any]) -> Table:
    table = rich_table("Totals", _TOTALS_COLUMNS, [])
    for row in _totals_rows(doc):
        columns = _COUNT_COLUMNS if row.get("count") else _TOTALS_COLUMNS
        table.add_row(
            *(
                Text(cell_text(row, c, missing=unknown_numbers), style=cell_style(row, c))
                for c in columns
            )
        )
    return table


BUDGET_COLUMNS = (Column("status", "status"), Column("name", "rule"), Column("message", "result"))


def _budget_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    checks = (doc.get("budgets") or {}).get("checks") or []
    order = {"fail": 0, "unknown": 1, "warn": 2, "skip": 3, "pass": 4}
    marks = {"fail": "FAIL", "unknown": "UNKNOWN", "warn": "warn", "skip": "skip", "pass": "ok"}
    rows = sorted(checks, key=lambda c: order.get(c["status"], 9))
    return [{**c, "status": marks.get(c["status"], c["status"])} for c in rows]


# --------------------------------------------------------------------------- diff: table


def render_table(doc: dict[str, Any], by: str | None, top: int, out: Console) -> None:
    out.print(Text(headline(doc), style="bold"))
    for warning in doc.get("warnings") or []:
        style = "bold red" if warning.startswith(("REBOOT", "BEFORE (")) else "yellow"
        out.print(Text(f"warning: {safe_text(warning)}", style=style))
    if by is not None:
        view = VIEWS[by]
        rows = view_rows(doc, by, changed_only=True)
        out.print(
            _rich_table(f"{view.title} ({len(rows)} changed)", view.columns, rows[:top], out.width)
        )
        _print_unknown_note(doc, out)
        return
    out.print(Text(totals_line(doc)))
    out.print(_totals_table(doc))
    budgets = doc.get("budgets")
    if budgets:
        out.print(
            _rich_table(
                f"Budgets: {budgets['verdict']}", BUDGET_COLUMNS, _budget_rows(doc), out.width
            )
        )
    suspects = doc.get("suspects") or []
    if suspects:
        out.print(_rich_table("Leak suspects", SUSPECT_COLUMNS, suspects[:top], out.width))
    else:
        out.print(Text("No leak suspects.", style="green"))
    for name in ("process", "exporter"):
        view = VIEWS[name]
        rows = view_rows(doc, name, changed_only=True)
        if rows:
            shown = f", top {top}" if len(rows) > top else ""
            out.print(
                _rich_table(
                    f"{view.title} ({len(rows)} changed{shown})",
                    view.columns,
                    rows[:top],
                    out.width,
                )
            )
    _print_unknown_note(doc, out)


def _print_unknown_note(doc: dict[str, Any], out: Console) -> None:
    note = unknown_note(doc)
    if note:
        out.print(Text(safe_text(note), style="dim"))


# --------------------------------------------------------------------------- diff: markdown


def verdict_heading(doc: dict[str, Any]) -> str:
    budgets = doc.get("budgets")
    if not budgets:
        return "### dmaprof: DMA-BUF diff"
    icon = {"fail": "❌", "unknown": "❔", "warn": "⚠️", "pass": "✅"}.get(budgets["status"], "")
    return f"### {icon} dmaprof: DMA-BUF {budgets['verdict']}"


def _details(title: str, body: str) -> str:
    return f"<details><summary>{_md(title)}</summary>\n\n{body}\n\n</details>\n"


def render_markdown(
    doc: dict[str, Any], by: str | None, top: int, out: TextIO, *, details_limit: int = 200
) -> None:
    """The step-summary document: verdict, totals, budgets, top suspects and growths, then
    ``<details>`` sections for everything else (each at most ``details_limit`` rows)."""
    if by is not None:
        view = VIEWS[by]
        rows = view_rows(doc, by, changed_only=True)
        out.write(f"### {view.title} ({len(rows)} changed)\n\n")
        out.write(_md_table(view.columns, rows[:top]) + "\n")
        note = unknown_note(doc)
        if note:
            out.write(f"\n_{_md(safe_text(note))}_\n")
        return
    parts = [verdict_heading(doc), ""]
    after = doc.get("after") or {}
    who = _md(safe_text(after.get("model") or after.get("serial") or "device"))
    parts.append(f"**{who}** · {_md(totals_line(doc))}")
    parts.append("")
    parts += [f"> **warning:** {_md(safe_text(w))}" for w in doc.get("warnings") or []]
    if doc.get("warnings"):
        parts.append("")
    budgets = doc.get("budgets")
    if budgets:
        parts += [_md_table(BUDGET_COLUMNS, _budget_rows(doc)), ""]
    suspects = doc.get("suspects") or []
    if suspects:
        parts += ["#### Leak suspects", "", _md_table(SUSPECT_COLUMNS, suspects[:5]), ""]
    processes = view_rows(doc, "process", changed_only=True)
    growth = [r for r in processes if (r.get("delta_rss_bytes") or 0) > 0]
    if growth:
        parts += [
            "#### Top growth by process",
            "",
            _md_table(VIEWS["process"].columns, growth[:top]),
            "",
        ]
    note = unknown_note(doc)
    if note:
        parts += [f"_{_md(safe_text(note))}_", ""]
    text = "\n".join(parts) + "\n"
    extra: list[str] = []
    if len(suspects) > 5:
        extra.append(
            _details(
                f"All leak suspects ({len(suspects)})",
                _md_table(SUSPECT_COLUMNS, suspects[:details_limit]),
            )
        )
    for name in ("process", "app", "exporter", "name", "cgroup", "buffer"):
        view = VIEWS[name]
        rows = view_rows(doc, name, changed_only=True)
        if not rows:
            continue
        cut = f", first {details_limit}" if len(rows) > details_limit else ""
        extra.append(
            _details(
                f"{view.title}: {len(rows)} changed{cut}",
                _md_table(view.columns, rows[:details_limit]),
            )
        )
    out.write(text + ("\n" + "\n".join(extra) if extra else ""))


# --------------------------------------------------------------------------- diff: csv, json


def render_csv(doc: dict[str, Any], by: str | None, out: TextIO) -> None:
    """Every row of one view (default: processes), raw values, all columns of the view
    plus the raw before/after figures."""
    name = by or "process"
    view = VIEWS[name]
    rows = view_rows(doc, name)
    keys = [c.key for c in view.columns]
    if rows and name != "buffer":
        keys += [k for k in rows[0] if k not in keys and not isinstance(rows[0][k], list | dict)]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(keys)
    for row in rows:
        writer.writerow([csv_cell(row.get(k)) for k in keys])


def render_json(doc: dict[str, Any], out: TextIO) -> None:
    json.dump(doc, out, indent=2, ensure_ascii=False, allow_nan=False)
    out.write("\n")


# --------------------------------------------------------------------------- trend

TREND_COLUMNS = (
    Column("kind", "kind"),
    Column("label", "series"),
    Column("verdict", "verdict"),
    Column("slope_bytes_per_min", "growth rate", "rate"),
    Column("confidence", "confidence", "pct"),
    Column("first_bytes", "first", "bytes"),
    Column("last_bytes", "last", "bytes"),
    Column("delta_bytes", "change", "delta_bytes"),
    Column("delta_buffers", "Δ buffers", "delta_int"),
    Column("points", "samples", "int"),
)


def trend_rows(doc: dict[str, Any], by: str | None, top: int | None) -> list[dict[str, Any]]:
    """The series of one kind (``by``) or all; with ``top``, the leaks, then the largest
    changes, and in the default view always the total ("all DMA-BUFs")."""
    rows = [s for s in doc.get("series") or [] if by is None or s["kind"] == by]
    if top is not None:
        leaks = [s for s in rows if s["verdict"] == "leak"]
        others = [s for s in rows if s["verdict"] != "leak"]
        rows = leaks + others[: max(0, top - len(leaks))]
        total = [s for s in others if s["kind"] == "total" and s not in rows]
        if by is None and total:
            rows = [*rows[: max(0, top - 1)], *total]
    return rows


def trend_leaks(doc: dict[str, Any], by: str | None) -> list[dict[str, Any]]:
    """The leak verdicts of the kind asked for (all without ``by``)."""
    return [s for s in doc.get("leaks") or [] if by is None or s["kind"] == by]


def trend_headline(doc: dict[str, Any]) -> str:
    dev = doc.get("device") or {}
    who = safe_text(dev.get("model") or dev.get("serial") or "device")
    span = doc.get("span_s") or 0
    return (
        f"DMA-BUF trend · {who} · {doc.get('samples', 0)} samples over {span / 60:.1f} min"
        f" · {doc.get('gaps', 0)} gaps · {len(doc.get('leaks') or [])} leak(s) flagged"
    )


def render_trend_table(doc: dict[str, Any], by: str | None, top: int, out: Console) -> None:
    out.print(Text(trend_headline(doc), style="bold"))
    for warning in doc.get("warnings") or []:
        out.print(Text(f"warning: {safe_text(warning)}", style="yellow"))
    for leak in trend_leaks(doc, by):
        out.print(Text(f"LEAK: {safe_text(leak['reason'])}", style="bold red"))
    out.print(
        _rich_table(
            "Series (leaks first, then the largest changes)",
            TREND_COLUMNS,
            trend_rows(doc, by, top),
            out.width,
        )
    )


def render_trend_markdown(doc: dict[str, Any], by: str | None, top: int, out: TextIO) -> None:
    leaks = trend_leaks(doc, by)
    icon = "❌" if doc.get("leaks") else "✅"
    out.write(f"### {icon} {_md(trend_headline(doc))}\n\n")
    for leak in leaks:
        out.write(f"- **leak:** {_md(safe_text(leak['reason']))}\n")
    if leaks:
        out.write("\n")
    out.write(markdown_table(TREND_COLUMNS, trend_rows(doc, by, top)) + "\n")


def render_trend_csv(doc: dict[str, Any], by: str | None, out: TextIO) -> None:
    rows = trend_rows(doc, by, None)
    keys = [c.key for c in TREND_COLUMNS]
    if rows:
        keys += [k for k in rows[0] if k not in keys and not isinstance(rows[0][k], list | dict)]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(keys)
    for row in rows:
        writer.writerow([row.get(k) for k in keys])


Renderer = Callable[[dict[str, Any], TextIO], None]
