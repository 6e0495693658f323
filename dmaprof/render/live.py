"""`dmaprof top`: the top DMA-BUF holders of a device, refreshed live, with their change
since `top` started (like top(1)).

Each refresh takes one snapshot, analyses it and diffs it against the first one (same
process identities as `dmaprof diff`). On a terminal the view is redrawn in place
(rich.live); otherwise every refresh is printed in turn (batch mode, like ``top -b``). A
failed refresh is shown in the header and retried at the next interval (but when the
first refresh fails, top exits with that error's code); a reboot restarts the baseline.
Ctrl-C quits with exit 0 (the normal way to leave top). Unknown figures (a process the
capture could not read) show as ``?``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dmaprof.errors import DmaprofError, InterruptedByUser
from dmaprof.leaks.diff import diff_sides
from dmaprof.leaks.diffresult import DiffResult
from dmaprof.leaks.series import Clock, Sampler, SystemClock
from dmaprof.leaks.side import Side, side_from_capture
from dmaprof.units import human_bytes, safe_text, signed_bytes


def _known(value: Any) -> int | None:
    return None if value is None or value is pd.NA else int(value)


def _size(value: Any) -> str:
    v = _known(value)
    return "?" if v is None else human_bytes(v)


def _count(value: Any) -> str:
    v = _known(value)
    return "?" if v is None else str(v)


def _delta(raw: Any, *, count: bool = False) -> Text:
    value = _known(raw)
    if value is None:  # a side could not see it (an unreadable process)
        return Text("?", style="dim", justify="right")
    text = (f"{value:+d}" if value else "0") if count else (signed_bytes(value) if value else "0")
    return Text(
        text, style="red" if value > 0 else ("green" if value < 0 else "dim"), justify="right"
    )


def build_view(
    d: DiffResult | None,
    *,
    refresh: int,
    interval_s: float,
    error: str | None,
    elapsed_s: float,
    rows: int,
    note: str | None = None,
) -> Group:
    parts: list[Any] = []
    if d is None:
        parts.append(
            Text(
                f"dmaprof top · waiting for the first sample · every {interval_s:g}s", style="bold"
            )
        )
    else:
        t = d.totals
        who = safe_text(d.after.model or d.after.serial or "device")
        parts.append(
            Text(
                f"dmaprof top · {who} · refresh {refresh} every {interval_s:g}s · changes since "
                f"{elapsed_s:.0f}s ago",
                style="bold",
            )
        )
        ko, held = t.get("kernel_only_bytes_after"), t.get("userspace_bytes_after")
        line = Text(
            f"total {_size(t['bytes_after'])} ({signed_bytes(int(t['delta_bytes'] or 0))})"
            f" in {_count(t['buffers_after'])} buffers ({int(t['delta_buffers'] or 0):+d}) · "
            f"held by processes {_size(held) if held is not None else 'unknown'} · kernel-only "
            f"{_size(ko) if ko is not None else 'unknown'}"
        )
        parts.append(line)
    if note:
        parts.append(Text(note, style="yellow"))
    if error:
        parts.append(Text(f"last refresh failed: {error} (retrying)", style="red"))
    table = Table(title="Top holders (by pss / charged)", title_justify="left", expand=False)
    for header in (
        "pid",
        "name",
        "pss",
        "Δ pss",
        "rss",
        "Δ rss",
        "buffers",
        "Δ buf",
        "fds",
        "maps",
    ):
        table.add_column(header, justify="left" if header == "name" else "right")
    if d is not None:
        p = d.processes
        p = (
            p[p["status"] != "exited"]
            .sort_values(
                ["charged_bytes_after", "rss_bytes_after", "pid"], ascending=[False, False, True]
            )
            .head(rows)
        )
        for r in p.to_dict("records"):  # at most `rows` rows
            table.add_row(
                str(r["pid"]),
                Text(safe_text(r["name"]) + (" (new)" if r["status"] == "new" else "")),
                _size(r["charged_bytes_after"]),
                _delta(r["delta_charged_bytes"]),
                _size(r["rss_bytes_after"]),
                _delta(r["delta_rss_bytes"]),
                _count(r["buffers_after"]),
                _delta(r["delta_buffers"], count=True),
                _count(r["fds_after"]),
                _count(r["maps_after"]),
            )
        gone = int((d.processes["status"] == "exited").sum())
        if gone:
            parts.append(Text(f"{gone} holders exited since the start", style="dim"))
    parts.append(table)
    return Group(*parts)


@contextlib.contextmanager
def _live(out: Console) -> Iterator[Callable[[Group], None]]:
    if out.is_terminal:
        with Live(console=out, auto_refresh=False, transient=False) as live:
            yield lambda view: live.update(view, refresh=True)
    else:
        yield out.print


def run_top(
    sampler: Sampler,
    *,
    interval_s: float,
    out: Console,
    count: int | None = None,
    rows: int = 20,
    charge: str = "shared",
    service_regex: str | None = None,
    clock: Clock | None = None,
) -> int:
    """Refresh until ``count`` refreshes (None: until Ctrl-C); returns the exit code (0)."""
    clock = clock or SystemClock()
    baseline: Side | None = None
    started = clock.monotonic()
    last: DiffResult | None = None
    refresh = 0
    try:
        with _live(out) as show:
            while count is None or refresh < count:
                due = clock.monotonic() + interval_s
                error = note = None
                try:
                    side = side_from_capture(sampler(), charge=charge, service_regex=service_regex)
                    if baseline is not None and side.info.boot_id != baseline.info.boot_id:
                        note = "the device rebooted: changes are counted from now on"
                        baseline = None
                    if baseline is None:
                        baseline, started = side, clock.monotonic()
                    last = diff_sides(baseline, side, force=True, suspects=False)
                except InterruptedByUser:
                    raise
                except DmaprofError as exc:
                    if last is None and baseline is None:
                        raise  # the first refresh failed: its error and exit code
                    error = exc.message
                refresh += 1
                show(
                    build_view(
                        last,
                        refresh=refresh,
                        interval_s=interval_s,
                        error=error,
                        elapsed_s=clock.monotonic() - started,
                        rows=rows,
                        note=note,
                    )
                )
                if count is not None and refresh >= count:
                    break
                wait = due - clock.monotonic()
                if wait > 0:
                    clock.sleep(wait)
    except (KeyboardInterrupt, InterruptedByUser):
        return 0
    return 0
