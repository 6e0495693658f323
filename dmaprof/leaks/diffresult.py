"""The result of comparing two captures, and its JSON document (``dmaprof.diff/2``).

:class:`DiffResult` holds the diff's tables (computed by :mod:`dmaprof.leaks.diff`);
:func:`diff_json` writes them out: raw integer bytes everywhere, ``null`` for a figure a side
could not see (docs/coverage.md), never a false zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.leaks.side import CaptureInfo, Coverage

SCHEMA = "dmaprof.diff/2"

# Side column -> metric name used in the JSON (``<metric>_before``, ``_after``, ``delta_``).
PROCESS_METRICS = {
    "rss": "rss_bytes",
    "pss": "pss_bytes",
    "shared_pss": "shared_pss_bytes",
    "buffers": "buffers",
    "fd_only": "fd_only",
    "map_only": "map_only",
    "both": "both",
    "map_only_bytes": "map_only_bytes",
    "fds": "fds",
    "maps": "maps",
}
APP_METRICS = {
    "rss": "rss_bytes",
    "pss": "pss_bytes",
    "shared_pss": "shared_pss_bytes",
    "buffers": "buffers",
    "processes": "processes",
}
CGROUP_METRICS = {
    "rss": "rss_bytes",
    "pss": "pss_bytes",
    "rss_tree": "rss_bytes_with_descendants",
    "pss_tree": "pss_bytes_with_descendants",
    "processes": "processes",
}
GROUP_METRICS = {
    "buffers": "buffers",
    "bytes": "bytes",
    "userspace_buffers": "userspace_buffers",
    "userspace_bytes": "userspace_bytes",
    "kernel_only_buffers": "kernel_only_buffers",
    "kernel_only_bytes": "kernel_only_bytes",
    "holders": "holders",
}


@dataclass
class DiffResult:
    before: CaptureInfo
    after: CaptureInfo
    charge: str
    same_device: bool | None
    same_boot: bool
    forced: bool
    totals: dict[str, int | None]
    processes: pd.DataFrame
    apps: pd.DataFrame
    cgroups: pd.DataFrame
    exporters: pd.DataFrame
    names: pd.DataFrame
    new_buffers: pd.DataFrame  # inode, size, exporter, name, name_key, held, holders
    freed_buffers: pd.DataFrame
    kept: dict[str, int]  # buffers, bytes, moved (holders changed)
    gained: pd.DataFrame  # holdings that appeared: proc, bid, new_buffer, size, fds, maps, ...
    lost: pd.DataFrame  # holdings that went away
    warnings: list[str] = field(default_factory=list)
    lower_bound: bool = False
    suspects: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # process metrics a side cannot give
    coverage_before: Coverage = field(default_factory=Coverage)
    coverage_after: Coverage = field(default_factory=Coverage)
    # why figures are unknown, one sentence each (shown once below the tables)
    unknown_reasons: list[str] = field(default_factory=list)

    @property
    def identity(self) -> bool:
        """Per-buffer identity is meaningful (same boot): new/freed lists exist."""
        return self.same_boot

    def to_json(self) -> dict[str, Any]:
        return diff_json(self)


# --------------------------------------------------------------------------- JSON


def py(value: Any) -> Any:
    """numpy/pandas scalars and containers -> JSON-ready Python values."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, tuple | list | np.ndarray):
        return [py(v) for v in value]
    return value


def nullable_values(column: pd.Series) -> list[Any]:
    """A column's values as Python objects, ``None`` where ``<NA>`` (an unknown figure)."""
    return column.astype(object).where(column.notna(), None).tolist()


_PLAIN = (str, int, bool, list)  # already JSON-ready (holder lists hold Python ints)


def records(df: pd.DataFrame, columns: dict[str, str]) -> list[dict[str, Any]]:
    """Rows as dicts (``source column -> key``), converting column by column."""
    if len(df) == 0:
        return []
    cols: list[list[Any]] = []
    for src in columns:
        s = df[src]
        if s.dtype.kind in "iub" and not s.hasnans:
            cols.append(s.to_numpy().tolist())
        elif s.dtype.kind in "iub":  # Int64 with <NA>: unknown figures are null
            cols.append(nullable_values(s))
        else:
            cols.append([v if type(v) in _PLAIN else py(v) for v in s.to_numpy(dtype=object)])
    keys = list(columns.values())
    return [dict(zip(keys, row, strict=True)) for row in zip(*cols, strict=True)]


def _metric_columns(metrics: dict[str, str]) -> dict[str, str]:
    return {
        column: column
        for metric in metrics.values()
        for column in (f"{metric}_before", f"{metric}_after", f"delta_{metric}")
    }


def buffer_records(frame: pd.DataFrame, holders_complete: bool = True) -> list[dict[str, Any]]:
    """New or freed buffers; ``kernel_only`` is unknown (null) for a buffer with no holder
    seen in a capture that could not read every holder."""
    rows = records(
        frame,
        {
            "inode": "inode",
            "size": "size_bytes",
            "exporter": "exporter",
            "name": "name",
            "holders": "holders",
        },
    )
    for row in rows:
        row["kernel_only"] = (
            None if not (holders_complete or row["holders"]) else (not row["holders"])
        )
    return rows


def diff_json(d: DiffResult) -> dict[str, Any]:
    process_columns = {
        "pid": "pid",
        "name": "name",
        "status": "status",
        "delta_rss_bytes": "delta_rss_bytes",
        "delta_pss_bytes": "delta_pss_bytes",
        "delta_buffers": "delta_buffers",
        "start": "start_time_ticks",
        "comm": "comm",
        "uid": "uid",
        "owner_uid": "owner_uid",
        "cgroup": "cgroup",
        **_metric_columns(PROCESS_METRICS),
        "gained_buffers": "gained_buffers",
        "lost_buffers": "lost_buffers",
        "gained_new_buffers": "gained_new_buffers",
        "lost_freed_buffers": "lost_freed_buffers",
        "unreadable": "unreadable",
    }
    processes = records(d.processes, process_columns)
    if not d.same_boot:
        pids = d.processes["pids"].to_numpy(dtype=object)
        for row, group in zip(processes, pids, strict=True):
            row["pids"] = py(group) if isinstance(group, tuple) else []
            row["start_time_ticks"] = None
    for row in processes:
        if row["start_time_ticks"] is not None and row["start_time_ticks"] < 0:
            row["start_time_ticks"] = None
        for column in d.unknown:  # a source without them (bugreport): null, not a false 0
            metric = PROCESS_METRICS.get(column, column)
            for key in (f"{metric}_before", f"{metric}_after", f"delta_{metric}"):
                if key in row:
                    row[key] = None
    apps = records(
        d.apps,
        {
            "uid": "uid",
            "label": "label",
            "kind": "kind",
            "packages": "packages",
            "status": "status",
            **_metric_columns(APP_METRICS),
        },
    )
    cgroups = records(
        d.cgroups, {"path": "path", "status": "status", **_metric_columns(CGROUP_METRICS)}
    )
    group_columns = {
        **_metric_columns(GROUP_METRICS),
        "new_buffers": "new_buffers",
        "new_bytes": "new_bytes",
        "freed_buffers": "freed_buffers",
        "freed_bytes": "freed_bytes",
    }
    exporters = records(d.exporters, {"key": "exporter", "status": "status", **group_columns})
    names = records(d.names, {"key": "name", "status": "status", **group_columns})
    totals = dict(d.totals)
    return {
        "schema": SCHEMA,
        "charge": d.charge,
        "before": d.before.as_dict(),
        "after": d.after.as_dict(),
        "same_device": d.same_device,
        "same_boot": d.same_boot,
        "forced": d.forced,
        "lower_bound": d.lower_bound,
        "coverage": {"before": d.coverage_before.as_dict(), "after": d.coverage_after.as_dict()},
        "unknown_reasons": list(d.unknown_reasons),
        "warnings": list(d.warnings),
        "totals": totals,
        "buffers": {
            "compared": d.same_boot,
            "new": buffer_records(d.new_buffers, d.coverage_after.holders_complete),
            "freed": buffer_records(d.freed_buffers, d.coverage_before.holders_complete),
            "new_count": len(d.new_buffers),
            "new_bytes": int(d.new_buffers["size"].sum()) if len(d.new_buffers) else 0,
            "freed_count": len(d.freed_buffers),
            "freed_bytes": int(d.freed_buffers["size"].sum()) if len(d.freed_buffers) else 0,
            "kept_count": d.kept["buffers"],
            "kept_bytes": d.kept["bytes"],
            "moved_count": d.kept["moved"],
        },
        "processes": processes,
        "apps": apps,
        "cgroups": cgroups,
        "exporters": exporters,
        "names": names,
        "suspects": [dict(s) for s in d.suspects],
    }
