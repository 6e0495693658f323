"""Renderers of the attribution report (`dmaprof show`).

They all take the report dict (`dmaprof.report/1`, built by dmaprof.analyze.report) and
write it out: a rich table for people, markdown for CI summaries, CSV and JSON for scripts.
Only the table renderer uses human units; every machine format carries raw integer bytes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dmaprof.render.columns import (
    Column,
    csv_cell,
    fit_columns,
    markdown_table,
    rich_table,
    unknown_bytes,
)
from dmaprof.render.userbuild import print_user_build, restricted, restricted_holders
from dmaprof.units import human_bytes, safe_text


@dataclass(frozen=True)
class View:
    """One `--by` view: which list of the report it shows, and how."""

    section: str
    title: str
    columns: tuple[Column, ...]
    sort_key: str
    #: columns dropped, in this order, when the table is wider than the terminal
    drop: tuple[str, ...] = ()

    @property
    def fold(self) -> tuple[str, ...]:
        """Text columns: wrapped, never cut, when the terminal is narrow."""
        return tuple(c.key for c in self.columns if not c.numeric)


VIEWS: dict[str, View] = {
    "process": View(
        "processes",
        "Processes",
        (
            Column("pid", "pid", "int"),
            Column("display_name", "process"),
            Column("uid", "uid", "int"),
            Column("cgroup", "cgroup"),
            Column("rss_bytes", "rss", "bytes"),
            Column("pss_bytes", "pss / charged", "bytes"),
            Column("buffers", "buffers", "int"),
            Column("fds", "fds", "int"),
            Column("maps", "vmas", "int"),
        ),
        "pss_bytes",
        ("cgroup", "uid", "maps", "fds"),
    ),
    "app": View(
        "apps",
        "Apps (by uid)",
        (
            Column("uid", "uid", "int"),
            Column("label", "app"),
            Column("packages", "packages", "list"),
            Column("rss_bytes", "rss", "bytes"),
            Column("pss_bytes", "pss / charged", "bytes"),
            Column("buffers", "buffers", "int"),
        ),
        "pss_bytes",
        ("buffers",),
    ),
    "cgroup": View(
        "cgroups",
        "cgroups",
        (
            Column("path", "cgroup"),
            Column("pss_bytes", "pss / charged", "bytes"),
            Column("pss_bytes_with_descendants", "incl. descendants", "bytes"),
        ),
        "pss_bytes_with_descendants",
    ),
    "exporter": View(
        "exporters",
        "Exporters / heaps",
        (
            Column("exporter", "exporter"),
            Column("buffers", "buffers", "int"),
            Column("bytes", "bytes", "bytes"),
        ),
        "bytes",
    ),
    "name": View(
        "names",
        "Buffer names",
        (
            Column("name", "name"),
            Column("buffers", "buffers", "int"),
            Column("bytes", "bytes", "bytes"),
        ),
        "bytes",
    ),
    "device": View(
        "attached_devices",
        "Attached devices (importers, from debugfs bufinfo)",
        (
            Column("device", "device"),
            Column("category", "kind"),
            Column("buffers", "buffers", "int"),
            Column("attachments", "attachments", "int"),
            Column("bytes", "bytes", "bytes"),
            Column("exporters", "exporters", "list"),
        ),
        "bytes",
    ),
    "buffer": View(
        "buffers",
        "Buffers",
        (
            Column("inode", "inode", "int"),
            Column("size_bytes", "size", "bytes"),
            Column("exporter", "exporter"),
            Column("name", "name"),
            Column("holders", "holders (pids)", "list"),
        ),
        "size_bytes",
        ("exporter",),
    ),
    # binder buffer memory (dmaprof.analyze.binder): not DMA-BUF, the other IPC memory
    "binder": View(
        "binder.processes",
        "Binder buffers (per process, all contexts)",
        (
            Column("pid", "pid", "int"),
            Column("name", "name"),
            Column("buffers", "buffers", "int"),
            Column("allocated_bytes", "allocated", "bytes"),
            Column("free_bytes", "free", "bytes"),
            Column("resident_bytes", "pages held", "bytes"),
            Column("high_watermark_bytes", "high watermark", "bytes"),
            Column("contexts", "contexts", "list"),
        ),
        "resident_bytes",
        ("high_watermark_bytes", "free_bytes", "contexts"),
    ),
}


def _section(report: dict[str, Any], section: str) -> Any:
    """``report[section]``; a dotted section (``binder.processes``) goes down nested dicts."""
    value: Any = report
    for part in section.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _unknown(report: dict[str, Any], view: View) -> frozenset[str]:
    """Columns the capture's source cannot give (``report["unknown"]``): shown as unknown."""
    return frozenset((report.get("unknown") or {}).get(view.section.split(".")[0], []))


def rows_of(report: dict[str, Any], by: str, top: int | None = None) -> list[dict[str, Any]]:
    view = VIEWS[by]
    rows = list(_section(report, view.section) or [])
    rows.sort(key=lambda row: (-(row.get(view.sort_key) or 0), str(row.get(view.columns[0].key))))
    return rows[:top] if top else rows


# --------------------------------------------------------------------------- rich table


def _table(
    view: View,
    rows: Sequence[dict[str, Any]],
    width: int,
    title: str | None = None,
    unknown: frozenset[str] = frozenset(),
) -> Table:
    columns = fit_columns(view.columns, rows, width, view.drop, unknown, unknown_bytes)
    return rich_table(title or view.title, columns, rows, unknown, unknown_bytes, view.fold, width)


def render_view_table(report: dict[str, Any], by: str, top: int | None, out: Console) -> None:
    _print_header(report, out)
    view = VIEWS[by]
    rows = rows_of(report, by, top)
    if rows:
        out.print(_table(view, rows, out.width, unknown=_unknown(report, view)))
        note = _filled_note(report, view)
        if note:
            out.print(Text(note))
    else:  # a sentence, not an empty table
        out.print(Text(_view_note(report, view)))
    if by == "cgroup" and report.get("cgroup_hierarchy"):
        # Android up to 11 keeps its uid/pid tree in v1 cpuacct, later releases in v2
        out.print(
            Text(
                f"hierarchy: {report['cgroup_hierarchy']} (where the device keeps its process tree)"
            )
        )


def _filled_note(report: dict[str, Any], view: View) -> str | None:
    """What a view with rows still needs said: what it covers, figures it lacks."""
    if view.section == "attached_devices":
        return (report.get("attached_devices_summary") or {}).get("note")
    if view.section.startswith("binder"):  # e.g. the Rust driver's unknown page figures
        note = (report.get("binder") or {}).get("note")
        return str(note) if note else None
    return None


NO_DMABUFS = "No DMA-BUFs in this capture: no process holds one, and the kernel lists none."
NO_HELD = (
    "No process holds a DMA-BUF in this capture; buffers held only by the kernel are unknown "
    "(the kernel's DMA-BUF list is missing or empty, and empty is not taken as none)."
)
#: what an empty view means when the capture's source does not say why
_EMPTY = {
    "processes": "No process holds a DMA-BUF in this capture.",
    "apps": "No app holds a DMA-BUF in this capture.",
    "cgroups": "No cgroup holds a DMA-BUF in this capture.",
    "exporters": "No DMA-BUFs in this capture.",
    "names": "No DMA-BUFs in this capture.",
    "buffers": "No DMA-BUFs in this capture.",
    "attached_devices": (
        "No buffer attached to a device: the importers are listed only by debugfs "
        "dma_buf/bufinfo (root, and a kernel with debugfs), and none is in this capture."
    ),
}


def _view_note(report: dict[str, Any], view: View) -> str:
    """Why a view of this capture is empty, in a sentence."""
    pid = (report.get("filter") or {}).get("pid")
    if pid is not None and view.section in ("processes", "buffers", "exporters", "names"):
        return f"No process {pid} holds a DMA-BUF in this capture."
    if view.section == "attached_devices":  # why it is empty, when the capture says
        summary = (report.get("attached_devices_summary") or {}).get("note")
        if summary:
            return _sentence(str(summary))
    if view.section.startswith("binder"):
        binder = report.get("binder") or {}
        note = binder.get("note") or "no binder buffer data in this capture"
        if pid is not None and binder.get("processes") is not None and not binder.get("note"):
            note = f"no binder buffers of process {pid} in this capture"
        return _sentence(str(note))
    keys = {"apps": "app", "cgroups": "cgroup"}
    for lim in report.get("limitations") or []:
        if lim.get("view") == keys.get(view.section, view.section):
            return f"unknown: {str(lim.get('message')).rstrip('.')}."
    return _EMPTY.get(view.section, "Nothing to show in this capture.")


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def render_default_table(report: dict[str, Any], top: int, out: Console) -> None:
    _print_header(report, out)
    _print_totals(report, out)
    process, exporter = VIEWS["process"], VIEWS["exporter"]
    if not report.get("processes") and not restricted(report):
        totals = report.get("totals") or {}
        if not totals.get("buffers"):
            out.print(Text(NO_DMABUFS if totals.get("kernel_only_bytes") is not None else NO_HELD))
            print_user_build(report, out)
            return
        out.print(Text(_view_note(report, process)))
    elif restricted(report):  # user-build mode: readable processes, then "unknown"
        rows = rows_of(report, "process", None)
        columns = fit_columns(process.columns, rows[:top], out.width, process.drop)
        out.print(restricted_holders(rows, columns, top, "Top holders (readable)", process.fold))
    else:
        out.print(
            _table(
                process,
                rows_of(report, "process", top),
                out.width,
                "Top holders",
                unknown=_unknown(report, process),
            )
        )
    exporters = rows_of(report, "exporter", None)
    if exporters:
        out.print(_table(exporter, exporters, out.width))
    elif report.get("processes"):
        out.print(Text(_view_note(report, exporter)))
    print_user_build(report, out)


def _lower_bound(report: dict[str, Any]) -> bool:
    coverage = report.get("coverage") or {}
    return bool(coverage.get("lower_bound") or coverage.get("processes_unreadable"))


def _print_header(report: dict[str, Any], out: Console) -> None:
    device = report.get("device") or {}
    parts = [
        safe_text(device.get("model") or device.get("serial") or "unknown device"),
        f"Android {device['release']} (API {device.get('sdk')})" if device.get("release") else "",
        f"kernel {safe_text(device.get('kernel_release'))}" if device.get("kernel_release") else "",
        safe_text(device.get("captured_at") or ""),
    ]
    out.print(Text(" · ".join(p for p in parts if p), style="bold"))
    coverage = report.get("coverage") or {}
    unreadable = coverage.get("processes_unreadable") or 0
    line = f"{coverage.get('processes', 0)} processes read"
    if unreadable:
        line += f"; {unreadable} could not be read: figures marked ≥ / ≤ are bounds"
    out.print(Text(line))
    for warning in report.get("warnings") or []:
        out.print(Text(f"warning: {safe_text(warning)}", style="yellow"))
    limits = _limitations_block(report.get("limitations") or [])
    if limits:
        out.print(Text(limits, style="dim"))
    pid_filter = report.get("filter") or {}
    if pid_filter.get("pid") is not None and report.get("processes"):
        proc = report["processes"][0]
        out.print(
            Text(
                f"--pid {pid_filter['pid']}: {safe_text(proc.get('display_name'))} and the "
                f"{len(report.get('buffers') or [])} buffers it holds; the totals, apps, "
                "cgroups and attached devices are the whole device's."
            )
        )


#: a few words for each limitation of an imported source (sources/*: limitation keys)
_LIMITATION_WORDS = {
    "no_device": "the device (model, build, kernel)",
    "no_dmabuf_dump": "per-process buffers (no dmabuf_dump section)",
    "no_dmabuf_dump_b": "exact sizes and kernel-only buffers (no dmabuf_dump -b)",
    "kernel_only_list": "exact sizes and kernel-only buffers (no dmabuf_dump -b)",
    "sizes_estimated": "exact sizes and kernel-only buffers (no dmabuf_dump -b)",
    "no_ps": "uids and apps (no ps section)",
    "uids": "uids and apps",
    "some_uids": "some uids",
    "fd_map_split": "whether a buffer is held by fd or by mapping",
    "cgroups": "cgroups",
    "start_times": "process start times",
    "anon_references": "pre-5.3 fds and mappings",
}


def _limitations_block(limitations: Sequence[dict[str, Any]]) -> str:
    """What an imported source cannot tell, as one short block (each in full: --format
    json, "limitations")."""
    words: list[str] = []
    for lim in limitations:
        word = _LIMITATION_WORDS.get(str(lim.get("key")))
        if word is None:
            word = safe_text(str(lim.get("message") or lim.get("key") or "")).split(":")[0]
        if word and word not in words:
            words.append(word)
    if not words:
        return ""
    return (
        "Unknown in this capture (shown as unknown, never 0): "
        + "; ".join(words)
        + ". Each in full: --format json (limitations), docs/sources.md."
    )


def _print_totals(report: dict[str, Any], out: Console) -> None:
    totals = report.get("totals") or {}
    partial = _lower_bound(report)
    table = Table(title="Totals", title_justify="left", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("bytes", justify="right", no_wrap=True)
    table.add_column("note", overflow="fold")
    total = totals.get("bytes")
    has_inventory = totals.get("kernel_only_bytes") is not None or (
        restricted(report) and totals.get("inventory_source") is not None
    )
    table.add_row(
        "all DMA-BUFs",
        human_bytes(total, lower_bound=not has_inventory),
        f"{totals.get('buffers', 0)} buffers"
        + ("" if has_inventory else " (no global inventory readable: only what processes hold)"),
    )
    table.add_row(
        "held by processes",
        human_bytes(totals.get("userspace_bytes"), lower_bound=partial),
        "fd or mapping",
    )
    kernel_only = totals.get("kernel_only_bytes")
    table.add_row(
        "kernel-only",
        human_bytes(kernel_only, upper_bound=partial) if kernel_only is not None else "unknown",
        "needs every process's fds (root)"
        if restricted(report)
        else "in flight, imported by drivers, or leaked"
        if has_inventory
        else "needs a global inventory",
    )
    pools = totals.get("heap_pool_bytes")
    if pools is not None:
        table.add_row("heap pools", human_bytes(pools), "freed pages kept by the heaps")
    out.print(table)


# --------------------------------------------------------------------------- markdown


def render_markdown(report: dict[str, Any], by: str | None, top: int | None, out: TextIO) -> None:
    totals = report.get("totals") or {}
    out.write(
        f"### DMA-BUF: {human_bytes(totals.get('bytes'))} in {totals.get('buffers', 0)} buffers\n\n"
    )
    views = [by] if by else ["process", "exporter"]
    for name in views:
        view = VIEWS[name]
        table = markdown_table(
            view.columns, rows_of(report, name, top), _unknown(report, view), unknown_bytes
        )
        out.write(f"#### {view.title}\n\n{table}\n\n")
        note = _view_note(report, view) if by else None
        if note:
            out.write(f"{note}\n\n")


# --------------------------------------------------------------------------- csv / json


def render_csv(report: dict[str, Any], by: str, top: int | None, out: TextIO) -> None:
    view = VIEWS[by]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.key for c in view.columns])
    for row in rows_of(report, by, top):
        writer.writerow([csv_cell(row.get(c.key)) for c in view.columns])


def render_json(report: dict[str, Any], out: TextIO) -> None:
    json.dump(report, out, indent=2, ensure_ascii=False, allow_nan=False)
    out.write("\n")
