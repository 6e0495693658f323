"""Rendering of the user-build mode blocks of `dmaprof show` (docs/user-build.md).

A capture taken without root holds, next to the exact figures of the processes it could read,
what the shell user can still read: dumpsys meminfo's system totals, the result of every
``--app`` (run-as), and the graphic buffer lists of SurfaceFlinger and the apps' gfxinfo.
Each is printed as its own block, labelled with its source, never mixed into the exact
figures. Processes that could not be read show as "unknown", never as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dmaprof.render.columns import Column, cell_text, rich_table, unknown_bytes
from dmaprof.units import human_bytes, safe_text

_SYSTEM_TOTALS = (
    ("DMA-BUF (all exported)", "dmabuf_bytes", ""),
    ("  mapped by a process", "dmabuf_mapped_bytes", ""),
    ("  not mapped", "dmabuf_unmapped_bytes", "held by fd only, or by the kernel"),
    ("DMA-BUF heaps", "heaps_bytes", "exported by a /dev/dma_heap heap"),
    ("DMA-BUF heap pools", "heap_pools_bytes", "freed pages kept by the heaps"),
    ("GPU", "gpu_bytes", ""),
    ("  dma-buf", "gpu_dmabuf_bytes", ""),
    ("  private", "gpu_private_bytes", ""),
    ("ION (heaps + pools)", "ion_bytes", ""),
    ("  mapped", "ion_mapped_bytes", ""),
    ("  not mapped", "ion_unmapped_bytes", ""),
    ("  pools", "ion_pools_bytes", ""),
)


def restricted(report: dict[str, Any]) -> bool:
    """The capture could not read every process (no root): see docs/user-build.md."""
    return bool((report.get("access") or {}).get("restricted"))


def pss_text(row: dict[str, Any]) -> Text | None:
    """A pss that depends on unreadable holders, as its range ("min – max"); None when the
    row's pss is exact (or the capture is not restricted)."""
    if row.get("pss_exact") is not False:
        return None
    low, high = row.get("pss_min_bytes"), row.get("shared_pss_bytes")
    text = (
        f"{human_bytes(low)} – {human_bytes(high)}"
        if low is not None
        else human_bytes(high, upper_bound=True)
    )
    return Text(text, justify="right")


def restricted_holders(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    top: int,
    title: str,
    fold: Sequence[str] = (),
) -> Table:
    """Top holders of a restricted capture: the readable processes (a pss that depends on
    unreadable holders shown as its range), then one row for the processes that could not
    be read, all "unknown". ``columns``: the process view's (key, header, kind) columns."""
    readable = [r for r in rows if not r.get("unreadable")][:top]
    unknown = sum(1 for r in rows if r.get("unreadable"))
    table = rich_table(title, columns, [], missing=unknown_bytes, fold=fold)
    for row in readable:
        table.add_row(*(_cell(row, c) for c in columns))
    if unknown:
        cells = [Text("") for _ in columns]
        for i, c in enumerate(columns):
            if c.kind == "bytes":
                cells[i] = Text("unknown", justify="right")
        name_at = next((i for i, c in enumerate(columns) if c.kind == "text"), 0)
        cells[name_at] = Text(f"{unknown} processes not readable", style="italic")
        table.add_row(*cells)
    return table


def _cell(row: dict[str, Any], column: Column) -> Text:
    if column.key == "pss_bytes":
        ranged = pss_text(row)
        if ranged is not None:
            return ranged
    return Text(
        cell_text(row, column, missing=unknown_bytes),
        justify="right" if column.numeric else "left",
    )


def print_user_build(report: dict[str, Any], out: Console) -> None:
    """dumpsys meminfo's totals, the --app run-as results and the graphic buffer lists;
    nothing for a source absent from the capture."""
    access = report.get("access") or {}
    if access.get("restricted"):
        out.print(
            Text(
                f"collected without root (mode: {access.get('mode')}): processes that could "
                "not be read are unknown, and a pss shared with them is shown as a range "
                "(docs/user-build.md)",
                style="italic",
            )
        )
    totals = report.get("system_totals")
    if totals:
        table = Table(
            title="Reported by dumpsys meminfo (system-wide, not per process)",
            title_justify="left",
            show_header=False,
        )
        table.add_column("what")
        table.add_column("bytes", justify="right")
        table.add_column("note")
        for label, key, note in _SYSTEM_TOTALS:
            if totals.get(key) is not None:
                table.add_row(label, human_bytes(totals[key]), note)
        out.print(table)
    run_as = report.get("run_as") or []
    if run_as:
        table = Table(title="Apps read through run-as (--app)", title_justify="left")
        for column in ("package", "result", "pids", "message"):
            table.add_column(column)
        for r in run_as:
            status = str(r.get("status"))
            table.add_row(
                Text(safe_text(r.get("package"))),
                Text(
                    status.replace("_", " "),
                    style="" if status in ("ok", "skipped") else "yellow",
                ),
                Text(", ".join(str(p) for p in r.get("pids") or []) or "-"),
                Text(safe_text(r.get("message") or "")),
            )
        out.print(table)
    lists = report.get("graphic_buffers") or []
    if lists:
        table = Table(
            title="Graphic buffers reported by dumpsys (gralloc bookkeeping, not holdings)",
            title_justify="left",
        )
        for column in ("source", "process", "allocated", "imported", "largest imported"):
            table.add_column(
                column, justify="right" if column in ("allocated", "imported") else "left"
            )
        for g in lists:
            process = safe_text(g.get("process") or "")
            if g.get("pid") is not None:
                process = f"{process} ({g['pid']})"
            imported = sorted(g.get("imported") or [], key=lambda b: -(b.get("size_bytes") or 0))
            largest = ", ".join(
                f"{safe_text(b.get('name'))} {human_bytes(b.get('size_bytes'))}"
                for b in imported[:3]
            )
            table.add_row(
                Text(safe_text(g.get("source"))),
                Text(process or safe_text(g.get("note") or "")),
                Text(_list_total(g.get("allocated"), g.get("allocated_total_bytes"))),
                Text(_list_total(g.get("imported"), g.get("imported_total_bytes"))),
                Text(largest),
            )
        out.print(table)


def _list_total(items: Any, total: int | None) -> str:
    n = len(items or [])
    if total is None and n:
        total = sum(int(b.get("size_bytes") or 0) for b in items)
    return f"{n} · {human_bytes(total)}" if total is not None else str(n)
