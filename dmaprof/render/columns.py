"""Table columns shared by every renderer: one cell formatter, one rich table, one markdown
table and one CSV cell rule for `show`, `diff` and `trend`.

Human units appear only in the rich and markdown cells; CSV cells are the raw values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from dmaprof.units import human_bytes, safe_text, signed_bytes

Kind = Literal["bytes", "delta_bytes", "int", "delta_int", "text", "list", "rate", "pct"]


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: Kind = "text"

    @property
    def numeric(self) -> bool:
        return self.kind not in ("text", "list")


def blank(column: Column) -> str:
    """What a missing value shows by default: nothing."""
    return ""


def unknown_bytes(column: Column) -> str:
    """A missing byte figure in a report is one nobody could measure: "unknown"."""
    return "unknown" if column.kind == "bytes" else ""


def unknown_numbers(column: Column) -> str:
    """Every missing figure is unknown (text cells stay empty)."""
    return "unknown" if column.numeric else ""


#: How a renderer shows a value that is missing (None) and not listed as unknown.
Missing = Callable[[Column], str]


def cell_text(
    row: dict[str, Any],
    column: Column,
    unknown: Collection[str] = (),
    missing: Missing = blank,
) -> str:
    """The human text of one cell. A missing value is ``unknown`` when the source cannot
    give that column, else ``missing(column)``."""
    value = row.get(column.key)
    if value is None:
        return "unknown" if column.key in unknown else missing(column)
    if column.kind == "bytes":
        return human_bytes(int(value))
    if column.kind == "delta_bytes":
        return signed_bytes(int(value)) if value else "0 B"
    if column.kind == "delta_int":
        return f"{int(value):+d}" if value else "0"
    if column.kind == "int":
        return str(value)
    if column.kind == "list":
        return ", ".join(safe_text(v) for v in value)
    if column.kind == "rate":
        return signed_bytes(round(value)) + "/min"
    if column.kind == "pct":
        return f"{100 * float(value):.0f}%"
    return safe_text(value)


def cell_style(row: dict[str, Any], column: Column) -> str:
    """Growth in red, shrinkage in green."""
    value = row.get(column.key)
    if column.kind in ("delta_bytes", "delta_int", "rate") and isinstance(value, int | float):
        return "red" if value > 0 else ("green" if value < 0 else "")
    return ""


def natural_width(
    column: Column,
    rows: Sequence[dict[str, Any]],
    unknown: Collection[str] = (),
    missing: Missing = blank,
) -> int:
    """The cells a column needs to show its header and every value on one line."""
    cells = (cell_len(cell_text(row, column, unknown, missing)) for row in rows)
    return max(cell_len(column.header), *cells) if rows else cell_len(column.header)


def fit_columns(
    columns: Sequence[Column],
    rows: Sequence[dict[str, Any]],
    width: int,
    drop: Sequence[str] = (),
    unknown: Collection[str] = (),
    missing: Missing = blank,
) -> list[Column]:
    """The columns to show in ``width`` cells: while the table at its natural width is
    wider, the columns named in ``drop`` go, in that order (the least useful first). What
    is still too wide is then folded by rich, in the text columns only."""
    kept = list(columns)
    widths = {c.key: natural_width(c, rows, unknown, missing) for c in columns}

    def total() -> int:  # cells + one padding each side + the borders between and around
        return sum(widths[c.key] for c in kept) + 3 * len(kept) + 1

    for key in drop:
        if total() <= width:
            break
        kept = [c for c in kept if c.key != key]
    return kept


SHORT_TEXT = 16  # text columns at most this wide are not folded while a longer one can be
_BREAK_AFTER = re.compile(r"[^./@:_\-\s]*[./@:_\-\s]+|[^./@:_\-\s]+")


def wrap_name(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` cells, broken after the separators of package
    and service names (``.``, ``/``, ``@``, ``:``, ``_``, ``-``) rather than inside a word."""
    if width < 1 or cell_len(text) <= width:
        return text
    lines: list[str] = []
    line = ""
    for token in _BREAK_AFTER.findall(text):
        while cell_len(token) > width:  # a word longer than the column: cut it, no choice
            room = width - cell_len(line)
            if room <= 0:
                lines.append(line)
                line, room = "", width
            line, token = line + token[:room], token[room:]
            lines.append(line)
            line = ""
        if cell_len(line) + cell_len(token) > width and line:
            lines.append(line)
            line = ""
        line += token
    if line:
        lines.append(line)
    return "\n".join(part.rstrip() for part in lines)


def _fold_widths(
    columns: Sequence[Column],
    rows: Sequence[dict[str, Any]],
    width: int,
    fold: Collection[str],
    unknown: Collection[str],
    missing: Missing,
) -> dict[str, int]:
    """How many cells each folding column gets when the table must fit ``width``: what the
    other columns leave, shared in proportion to their natural widths."""
    natural = {c.key: natural_width(c, rows, unknown, missing) for c in columns}
    folding = [c.key for c in columns if c.key in fold]
    # short words (a status, a kind) stay whole: the long names share what is left
    long_names = [k for k in folding if natural[k] > SHORT_TEXT]
    folding = long_names or folding
    fixed = sum(w for k, w in natural.items() if k not in folding) + 3 * len(columns) + 1
    room = width - fixed
    want = sum(natural[k] for k in folding)
    if not folding or want <= room:
        return {}
    header = {c.key: cell_len(c.header) for c in columns}
    return {k: max(8, header[k], room * natural[k] // want) for k in folding}


def rich_table(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[dict[str, Any]],
    unknown: Collection[str] = (),
    missing: Missing = blank,
    fold: Collection[str] = (),
    width: int | None = None,
) -> Table:
    """A rich table; ``fold`` names the columns whose long text wraps instead of being cut
    (figures never wrap). With ``width`` (the terminal's), a folding column's long names are
    broken at their separators so that the table fits."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(
            column.header,
            justify="right" if column.numeric else "left",
            overflow="fold" if column.key in fold else "ellipsis",
            no_wrap=column.numeric,
        )
    budget = _fold_widths(columns, rows, width, fold, unknown, missing) if width else {}
    for row in rows:
        cells = []
        for c in columns:
            text = cell_text(row, c, unknown, missing)
            if c.key in budget:
                text = wrap_name(text, budget[c.key])
            cells.append(
                Text(text, style=cell_style(row, c), justify="right" if c.numeric else "left")
            )
        table.add_row(*cells)
    return table


def markdown_escape(value: str) -> str:
    """Keep a cell inside its table cell and out of HTML (GitHub renders both)."""
    return value.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def markdown_table(
    columns: Sequence[Column],
    rows: Sequence[dict[str, Any]],
    unknown: Collection[str] = (),
    missing: Missing = blank,
) -> str:
    header = "| " + " | ".join(c.header for c in columns) + " |"
    align = "| " + " | ".join("---:" if c.numeric else "---" for c in columns) + " |"
    body = [
        "| "
        + " | ".join(markdown_escape(cell_text(row, c, unknown, missing)) for c in columns)
        + " |"
        for row in rows
    ]
    return "\n".join([header, align, *body])


def csv_cell(value: Any) -> Any:
    """A raw value for CSV: lists become space-separated, everything else stays as is."""
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return value
