"""The result of comparing two captures, and its JSON document (``dmaprof.diff/2``).

:class:`DiffResult` holds the diff's tables (computed by :mod:`dmaprof.leaks.diff`);
:func:`diff_json` writes them out as the TypedDicts of :mod:`dmaprof.leaks.difftypes`: raw
integer bytes everywhere, ``null`` for a figure a side could not see (docs/coverage.md), never
a false zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from dmaprof.analyze.report import GROUP_KEYS
from dmaprof.leaks.difftypes import (
    Diff,
    DiffApp,
    DiffBuffer,
    DiffBuffers,
    DiffCgroup,
    DiffExporterGroup,
    DiffNameGroup,
    DiffProcess,
    DiffTotals,
)
from dmaprof.leaks.side import CaptureInfo, Coverage

SCHEMA = "dmaprof.diff/2"

# Side column -> metric name used in the JSON (``<metric>_before``, ``_after``, ``delta_``).
PROCESS_METRICS = {
    "rss": "rss_bytes",
    "charged": "charged_bytes",
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
    "charged": "charged_bytes",
    "shared_pss": "shared_pss_bytes",
    "buffers": "buffers",
    "processes": "processes",
}
CGROUP_METRICS = {
    "rss": "rss_bytes",
    "charged": "charged_bytes",
    "rss_tree": "rss_bytes_with_descendants",
    "charged_tree": "charged_bytes_with_descendants",
    "processes": "processes",
}
#: an exporter's or a name's figures: the same columns as the report's groups
GROUP_METRICS = GROUP_KEYS


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
        """The JSON document as a plain dict (what renderers and ``--format json`` read)."""
        return cast(dict[str, Any], diff_json(self))


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


def keyed_records(
    df: pd.DataFrame, keys: dict[str, str], unknown: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Rows as dicts of ``key -> value of its column`` (a column may give several keys);
    the keys in ``unknown`` are null in every row."""
    if len(df) == 0:
        return []
    converted: dict[str, list[Any]] = {}
    cols: list[list[Any]] = []
    nulls: list[Any] = [None] * len(df)
    for key, src in keys.items():
        if key in unknown:
            cols.append(nulls)
            continue
        if src not in converted:
            s = df[src]
            if s.dtype.kind in "iub" and not s.hasnans:
                converted[src] = s.to_numpy().tolist()
            elif s.dtype.kind in "iub":  # Int64 with <NA>: unknown figures are null
                converted[src] = nullable_values(s)
            else:
                converted[src] = [
                    v if type(v) in _PLAIN else py(v) for v in s.to_numpy(dtype=object)
                ]
        cols.append(converted[src])
    names = list(keys)
    return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]


def _triples(metrics: dict[str, str], aliases: dict[str, str] | None = None) -> dict[str, str]:
    """key -> column for ``<metric>_before``, ``<metric>_after`` and ``delta_<metric>``; an
    alias (the kept ``pss_bytes`` for ``charged_bytes``) reads the same columns."""
    out: dict[str, str] = {}
    for metric in metrics.values():
        for name in (metric, *[k for k, v in (aliases or {}).items() if v == metric]):
            out[f"{name}_before"] = f"{metric}_before"
            out[f"{name}_after"] = f"{metric}_after"
            out[f"delta_{name}"] = f"delta_{metric}"
    return out


#: the /1 names kept beside the one name per meaning (docs/json.md)
_CHARGED = {"pss_bytes": "charged_bytes"}
_CGROUP_CHARGED = {
    "pss_bytes": "charged_bytes",
    "pss_bytes_with_descendants": "charged_bytes_with_descendants",
}


def buffer_records(frame: pd.DataFrame, holders_complete: bool = True) -> list[DiffBuffer]:
    """New or freed buffers; ``kernel_only`` is unknown (null) for a buffer with no holder
    seen in a capture that could not read every holder."""
    rows = cast(
        list[DiffBuffer],
        keyed_records(
            frame,
            {
                "inode": "inode",
                "size_bytes": "size",
                "exporter": "exporter",
                "name": "name",
                "holders": "holders",
                "kernel_only": "holders",
            },
        ),
    )
    for row in rows:
        row["kernel_only"] = (
            None if not (holders_complete or row["holders"]) else (not row["holders"])
        )
    return rows


def _unknown_keys(unknown: list[str]) -> frozenset[str]:
    """Keys of process rows a side's source cannot give (a bugreport: no fd/map split)."""
    out: set[str] = set()
    for column in unknown:
        metric = PROCESS_METRICS.get(column, column)
        out.update((f"{metric}_before", f"{metric}_after", f"delta_{metric}"))
    return frozenset(out)


def _processes(d: DiffResult) -> list[DiffProcess]:
    keys = {
        "pid": "pid",
        "name": "name",
        "status": "status",
        "delta_rss_bytes": "delta_rss_bytes",
        "delta_charged_bytes": "delta_charged_bytes",
        "delta_buffers": "delta_buffers",
        "start_time_ticks": "start",
        "comm": "comm",
        "uid": "uid",
        "owner_uid": "owner_uid",
        "cgroup": "cgroup",
        **_triples(PROCESS_METRICS, _CHARGED),
        "gained_buffers": "gained_buffers",
        "lost_buffers": "lost_buffers",
        "gained_new_buffers": "gained_new_buffers",
        "lost_freed_buffers": "lost_freed_buffers",
        "unreadable": "unreadable",
    }
    unknown = _unknown_keys(d.unknown)
    unknown |= {k for k, v in keys.items() if v in unknown}  # pss_bytes_* with charged_bytes_*
    rows = cast(list[DiffProcess], keyed_records(d.processes, keys, unknown))
    if not d.same_boot:
        pids = d.processes["pids"].to_numpy(dtype=object)
        for row, group in zip(rows, pids, strict=True):
            row["pids"] = py(group) if isinstance(group, tuple) else []
            row["start_time_ticks"] = None
    for row in rows:
        start = row["start_time_ticks"]
        if start is not None and start < 0:
            row["start_time_ticks"] = None
    return rows


def _totals(d: DiffResult) -> DiffTotals:
    t = d.totals
    kept = {  # the /1 names of the exact share, kept
        "pss_bytes_before": t.get("shared_pss_bytes_before"),
        "pss_bytes_after": t.get("shared_pss_bytes_after"),
        "delta_pss_bytes": t.get("delta_shared_pss_bytes"),
    }
    return cast(DiffTotals, {**t, **kept})


def _buffers(d: DiffResult) -> DiffBuffers:
    new, freed = d.new_buffers, d.freed_buffers
    return {
        "compared": d.same_boot,
        "new": buffer_records(new, d.coverage_after.holders_complete),
        "freed": buffer_records(freed, d.coverage_before.holders_complete),
        "new_count": len(new),
        "new_bytes": int(new["size"].sum()) if len(new) else 0,
        "freed_count": len(freed),
        "freed_bytes": int(freed["size"].sum()) if len(freed) else 0,
        "kept_count": d.kept["buffers"],
        "kept_bytes": d.kept["bytes"],
        "moved_count": d.kept["moved"],
    }


def diff_json(d: DiffResult) -> Diff:
    """The ``dmaprof.diff/2`` document (:mod:`dmaprof.leaks.difftypes`, docs/json.md)."""
    group_keys = {
        **_triples(GROUP_METRICS),
        "new_buffers": "new_buffers",
        "new_bytes": "new_bytes",
        "freed_buffers": "freed_buffers",
        "freed_bytes": "freed_bytes",
    }
    apps = keyed_records(
        d.apps,
        {
            "uid": "uid",
            "label": "label",
            "kind": "kind",
            "packages": "packages",
            "status": "status",
            **_triples(APP_METRICS, _CHARGED),
        },
    )
    cgroups = keyed_records(
        d.cgroups, {"path": "path", "status": "status", **_triples(CGROUP_METRICS, _CGROUP_CHARGED)}
    )
    exporters = keyed_records(d.exporters, {"exporter": "key", "status": "status", **group_keys})
    names = keyed_records(d.names, {"name": "key", "status": "status", **group_keys})
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
        "totals": _totals(d),
        "buffers": _buffers(d),
        "processes": _processes(d),
        "apps": cast(list[DiffApp], apps),
        "cgroups": cast(list[DiffCgroup], cgroups),
        "exporters": cast(list[DiffExporterGroup], exporters),
        "names": cast(list[DiffNameGroup], names),
        "suspects": [dict(s) for s in d.suspects],
    }
