"""Table columns shared by every renderer: one cell formatter, one rich table, one markdown
table and one CSV cell rule for `show`, `diff` and `trend`.

Human units appear only in the rich and markdown cells; CSV cells are the raw values.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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


def rich_table(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[dict[str, Any]],
    unknown: Collection[str] = (),
    missing: Missing = blank,
    fold: Collection[str] = (),
) -> Table:
    """A rich table; ``fold`` names the columns whose long text wraps instead of being cut."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(
            column.header,
            justify="right" if column.numeric else "left",
            overflow="fold" if column.key in fold else "ellipsis",
        )
    for row in rows:
        table.add_row(
            *(
                Text(
                    cell_text(row, c, unknown, missing),
                    style=cell_style(row, c),
                    justify="right" if c.numeric else "left",
                )
                for c in columns
            )
        )
    return table


def markdown_escape(value: str) -> str:
    """Keep a cell inside its table cell and out of HTML (GitHub renders both)."""
    return (
        value.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")
    )


def markdown_table(
    columns: Sequence[Column],
    rows: Sequence[dict[str, Any]],
    unknown: Collection[str] = (),
    missing: Missing = blank,
) -> str:
    header = "| " + " | ".join(c.header for c in columns) + " |"
    align = "| " + " | ".join("---:" if c.numeric else "---" for c in columns) + " |"
    body = [
        "| " + " | ".join(markdown_escape(cell_text(row, c, unknown, missing)) for c in columns)
        + " |"
        for row in rows
    ]
    return "\n".join([header, align, *body])


def csv_cell(value: Any) -> Any:
    """A raw value for CSV: lists become space-separated, everything else stays as is."""
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return value
