"""Rendering of `dmaprof devices`."""

from __future__ import annotations

import json
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dmaprof.records import SOURCES, DeviceReport

_MARK = {"yes": "✓", "denied": "denied", "absent": "-", "unknown": "?"}


def render_devices_table(reports: list[DeviceReport], out: Console) -> None:
    if not reports:
        out.print("no devices (connect one with USB debugging, or `adb connect HOST:PORT`)")
        return
    table = Table(title="Devices", title_justify="left")
    for column in ("serial", "state", "model", "Android", "API", "kernel", "root"):
        table.add_column(column)
    table.add_column("modes")
    table.add_column("readable DMA-BUF sources")
    for report in reports:
        readable = ", ".join(
            name if report.sources.get(name) == "yes" else f"{name}: {report.sources[name]}"
            for name in SOURCES
            if report.sources.get(name) in ("yes", "denied")
        )
        table.add_row(
            Text(report.serial),
            Text(report.state),
            Text(report.model),
            Text(report.release),
            Text(report.sdk),
            Text(report.kernel),
            Text(report.root),
            Text(_modes(report)),
            Text(report.error or readable or "-"),
        )
    out.print(table)


def _modes(report: DeviceReport) -> str:
    """root (how) / run-as: the debuggable apps / shell; "-" for a device not probed."""
    if report.error or not report.modes:
        return "-"
    parts = []
    for mode in report.modes:
        if mode == "root":
            parts.append(f"root ({report.root})")
        elif mode == "run-as":
            more = "…" if report.run_as_truncated else ""
            parts.append("run-as: " + ", ".join(report.run_as) + more)
        elif len(report.modes) == 1:
            parts.append("shell only")
        else:
            parts.append("shell")
    return "; ".join(parts)


def render_devices_json(reports: list[DeviceReport], out: TextIO) -> None:
    payload = {"schema": "dmaprof.devices/1", "devices": [r.to_json() for r in reports]}
    out.write(json.dumps(payload, indent=2) + "\n")
