"""Machine-readable report (``dmaprof show --format json``) and AOSP ``dmabuf_dump`` text.

:func:`build_report` builds the whole ``dmaprof.report/1`` document from one
:class:`Analysis`, whatever its source, as the ``TypedDict`` classes of
:mod:`dmaprof.analyze.reporttypes` (docs/json.md is generated from them): plain Python values
only, sizes in raw integer bytes, ``None`` for a figure the capture or its source cannot give.

Figures follow the analysis's charge policy: ``charged_bytes`` (and, as it always was in this
schema version, ``pss_bytes``) of processes, apps and cgroups is the *charged* figure
(``shared``: exact pss; ``full``: rss; ``client``: client charge); ``shared_pss_bytes`` always
holds the exact proportional share.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import objects
from dmaprof.analyze.analysis import Analysis
from dmaprof.analyze.binder import BinderInfo, binder_report
from dmaprof.analyze.devices import attached_device_rows, attached_device_summary
from dmaprof.analyze.reporttypes import (
    App,
    AttachedSummary,
    Binder,
    Buffer,
    CaptureRef,
    Cgroup,
    Coverage,
    Crosscheck,
    ExporterGroup,
    Heap,
    KernelOnly,
    NameGroup,
    Pool,
    Process,
    Report,
    Totals,
    Unknown,
    Unreadable,
)
from dmaprof.analyze.restricted import UserBuild, null_keys, user_build

REPORT_SCHEMA = "dmaprof.report/1"

#: JSON key -> column of the ``usage`` table (processes rows)
PROCESS_KEYS = {
    "pid": "pid",
    "name": "name",
    "display_name": "display_name",
    "cmdline": "cmdline",
    "uid": "uid",
    "owner_uid": "owner_uid",
    "cgroup": "cgroup",
    "rss_bytes": "rss_bytes",
    "pss_bytes": "charged_bytes",
    "shared_pss_bytes": "shared_pss_bytes",
    "buffers": "buffers",
    "fds": "fds",
    "maps": "maps",
    "fd_only": "fd_only",
    "map_only": "map_only",
    "both": "both",
    "rss_estimated": "rss_estimated",
    "is_service": "is_service",
    "anon_fds": "anon_fds",
    "anon_fd_bytes": "anon_fd_bytes",
    "anon_maps": "anon_maps",
    "anon_mapped_bytes": "anon_mapped_bytes",
    "unreadable": "unreadable",
    "kernel_dmabuf_rss_bytes": "kernel_dmabuf_rss_bytes",
    "kernel_dmabuf_pss_bytes": "kernel_dmabuf_pss_bytes",
    "charged_bytes": "charged_bytes",
}
BUFFER_KEYS = {
    "inode": "inode",
    "size_bytes": "size_bytes",
    "exporter": "exporter",
    "name": "name",
    "size_source": "size_source",
    "size_estimated": "size_estimated",
    "count": "count",
    "attached_devices": "attached_devices",
    "in_inventory": "in_inventory",
    "sources": "sources",
}
APP_KEYS = {
    "uid": "uid",
    "packages": "packages",
    "rss_bytes": "rss_bytes",
    "pss_bytes": "charged_bytes",
    "shared_pss_bytes": "shared_pss_bytes",
    "label": "label",
    "kind": "kind",
    "user_id": "user_id",
    "app_id": "app_id",
    "processes": "processes",
    "pids": "pids",
    "buffers": "buffers",
    "charged_bytes": "charged_bytes",
}
CGROUP_KEYS = {
    "path": "path",
    "pss_bytes": "charged_bytes",
    "pss_bytes_with_descendants": "charged_bytes_with_descendants",
    "shared_pss_bytes": "shared_pss_bytes",
    "shared_pss_bytes_with_descendants": "shared_pss_bytes_with_descendants",
    "rss_bytes": "rss_bytes",
    "rss_bytes_with_descendants": "rss_bytes_with_descendants",
    "processes": "processes",
    "processes_with_descendants": "processes_with_descendants",
    "depth": "depth",
    "charged_bytes": "charged_bytes",
    "charged_bytes_with_descendants": "charged_bytes_with_descendants",
}
GROUP_KEYS = {
    "buffers": "buffers",
    "bytes": "bytes",
    "userspace_buffers": "userspace_buffers",
    "userspace_bytes": "userspace_bytes",
    "kernel_only_buffers": "kernel_only_buffers",
    "kernel_only_bytes": "kernel_only_bytes",
    "holders": "holders",
}
KERNEL_ONLY_KEYS = {
    "inode": "inode",
    "size_bytes": "size_bytes",
    "exporter": "exporter",
    "name": "name",
    "count": "count",
    "attached_devices": "attached_devices",
}


def _py(v: Any) -> Any:
    """numpy/pandas scalars -> JSON-ready Python values (NA -> None)."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.floating):
        return None if np.isnan(v) else float(v)
    if isinstance(v, tuple | list):
        return [_py(x) for x in v]
    return v


def _column(s: pd.Series) -> list[Any]:
    """A column as JSON-ready Python values (numpy scalars -> int/bool, NA -> None,
    tuples -> lists)."""
    if s.dtype == object:
        return [list(x) if isinstance(x, tuple) else _py(x) for x in s.tolist()]
    if s.dtype.kind in "iub" and not s.hasnans:
        return list(s.to_numpy().tolist())
    values = objects(s).tolist()
    return [_py(x) if not isinstance(x, int | str) else x for x in values]


def records(
    df: pd.DataFrame, keys: dict[str, str], unknown: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Rows of ``df`` as dicts of ``key -> value of its column``; the keys in ``unknown``
    (figures the source cannot give) are null in every row."""
    converted: dict[str, list[Any]] = {}
    cols: list[list[Any]] = []
    nulls = [None] * len(df)
    for key, src in keys.items():
        if key in unknown:
            cols.append(nulls)
            continue
        if src not in converted:
            converted[src] = _column(df[src])
        cols.append(converted[src])
    names = list(keys)
    return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)] if cols else []


def holders_by_inode(analysis: Analysis) -> dict[int, list[int]]:
    h = analysis.holdings
    if len(h) == 0:
        return {}
    ino = h["inode"].to_numpy(dtype=np.int64)
    pid = h["pid"].to_numpy(dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, ino[1:] != ino[:-1]])
    ends = np.append(starts[1:], ino.size).tolist()
    pids = pid.tolist()
    keys = ino[starts].tolist()
    return {k: pids[a:b] for k, a, b in zip(keys, starts.tolist(), ends, strict=True)}


def build_report(
    analysis: Analysis,
    device: dict[str, Any] | None = None,
    capture: CaptureRef | None = None,
) -> Report:
    """The JSON report. ``device`` (e.g. the adb serial and state) overrides what the dump
    says about the device; ``capture`` names the capture file it was read from."""
    a = analysis
    dev = dict(a.device)
    if device:
        dev.update(device)
    ub = user_build(a)
    unknown = a.unknown
    usage_cols = [c for c in unknown.get("usage", []) if c]
    report: Report = {
        "schema": REPORT_SCHEMA,
        "charge": a.charge,
        "service_regex": a.service_regex if a.charge == "client" else None,
        "device": {k: _py(v) for k, v in dev.items()},
        "totals": _totals(a, ub, frozenset(unknown.get("totals", []))),
        "coverage": _coverage(a),
        "processes": ub.processes(_processes(a, frozenset(usage_cols))),
        "buffers": ub.buffers(_buffers(a)),
        "apps": ub.apps(cast(list[App], records(a.apps, APP_KEYS))),
        "cgroups": ub.cgroups(
            cast(list[Cgroup], records(a.cgroup_usage.sort_values(["path"]), CGROUP_KEYS))
        ),
        "cgroup_hierarchy": a.cgroup_hierarchy,
        "exporters": ub.groups(
            cast(list[ExporterGroup], records(a.exporters, {"exporter": "key", **GROUP_KEYS}))
        ),
        "names": ub.groups(cast(list[NameGroup], records(a.names, {"name": "key", **GROUP_KEYS}))),
        "kernel_only": ub.kernel_only(
            cast(list[KernelOnly], records(a.kernel_only, KERNEL_ONLY_KEYS))
        ),
        "attached_devices": attached_device_rows(a.inventory, a.attachments),
        "attached_devices_summary": _attached_summary(a),
        "heaps": cast(list[Heap], records(a.heaps, {c: c for c in a.heaps.columns})),
        "pools": cast(list[Pool], records(a.pools, {c: c for c in a.pools.columns})),
        "crosscheck": cast(
            list[Crosscheck],
            records(
                a.crosscheck,
                {**{c: c for c in a.crosscheck.columns}, "pss_bytes": "shared_pss_bytes"},
            ),
        ),
        "warnings": [*a.warnings, *ub.warnings],
        "access": ub.access,
        "system_totals": ub.system_totals,
        "graphic_buffers": ub.graphic_buffers,
        "run_as": ub.run_as,
        "source": dict(a.source),
        "limitations": list(a.limitations),
        "binder": _binder(a),
    }
    if capture is not None:
        report["capture"] = capture
    if unknown:
        report["unknown"] = _unknown(a, usage_cols)
    if a.stated_totals is not None:
        report["process_totals"] = list(a.stated_totals)
    if a.meminfo:
        report["meminfo"] = dict(a.meminfo)
    return report


def _totals(a: Analysis, ub: UserBuild, unknown: frozenset[str]) -> Totals:
    t = a.totals.as_dict()
    out = cast(Totals, {**t, "pss_bytes": t["shared_pss_bytes"]})  # the /1 name, kept
    return ub.totals(null_keys(out, unknown))


def _coverage(a: Analysis) -> Coverage:
    c = a.coverage
    return {
        "processes": c.processes,
        "processes_unreadable": c.processes_unreadable,
        "kernel_threads": c.kernel_threads,
        "unreadable": [cast(Unreadable, dict(u)) for u in c.unreadable],
        "processes_vanished": c.processes_vanished,
        "lower_bound": c.lower_bound,
        "capture_uid": c.capture_uid,
        "sources": dict(c.sources),
        "missing_sources": list(c.missing_sources),
        "truncated": a.dump.truncated,
        "unparsed_lines": a.unparsed_total,
    }


def _processes(a: Analysis, unknown: frozenset[str]) -> list[Process]:
    u = a.usage
    active = u[(u["buffers"] > 0) | (u["fds"] > 0) | (u["maps"] > 0)]
    active = active.sort_values(
        ["charged_bytes", "rss_bytes", "pid"], ascending=[False, False, True]
    )
    # what `ps` shows (argv[0], full package names) next to the kernel's 15-byte comm
    by_pid = a.processes.drop_duplicates("pid").set_index("pid")
    argv0 = active["pid"].map(by_pid["argv0"]).astype(object)
    display = argv0.where(argv0.notna() & (argv0 != ""), active["name"].astype(object))
    active = active.assign(
        display_name=display.map(lambda v: v.rsplit("/", 1)[-1] if isinstance(v, str) else v),
        cmdline=active["pid"].map(by_pid["cmdline_display"]).astype(object),
    )
    return cast(list[Process], records(active, PROCESS_KEYS, unknown))


def _buffers(a: Analysis) -> list[Buffer]:
    holders = holders_by_inode(a)
    b = a.buffers.sort_values(["size_bytes", "inode"], ascending=[False, True])
    rows = cast(list[Buffer], records(b, BUFFER_KEYS))
    for row in rows:
        hs = holders.get(row["inode"], [])
        row["holders"] = hs
        row["kernel_only"] = bool(row["in_inventory"] and not hs)
    return rows


def _attached_summary(a: Analysis) -> AttachedSummary:
    summary = attached_device_summary(a.inventory, a.attachments, a.coverage.sources.get("bufinfo"))
    kind = a.source_kind
    if kind != "collector":
        summary["state"] = "no_bufinfo"
        summary["note"] = (
            f"no attachment data: a {kind} capture has none (only debugfs bufinfo lists the "
            "devices that import a buffer)"
        )
    return summary


def _binder(a: Analysis) -> Binder:
    """The binder view (``dmaprof show --by binder``)."""
    kind = a.source_kind
    if kind != "collector":
        out = binder_report(BinderInfo("not_collected"))
        out["note"] = f"a {kind} capture has no binder buffer data (only the collector reads it)"
        return out
    p = a.processes
    names = {
        int(pid): str(name)
        for pid, name in zip(p["pid"].tolist(), p["name"].astype(object).tolist(), strict=True)
        if isinstance(name, str)
    }
    return binder_report(a.binder, names)


def _unknown(a: Analysis, usage_cols: list[str]) -> Unknown:
    """Which keys of the report are null because the source cannot give them."""
    out: Unknown = {}
    if usage_cols:
        out["processes"] = usage_cols
    out["totals"] = list(a.unknown.get("totals", []))
    if any(lim.get("key") == "cgroups" for lim in a.limitations):
        out["cgroups"] = ["path", "pss_bytes", "pss_bytes_with_descendants"]
    return out


# AOSP dmabuf_dump RawOutput (libdmabufinfo/tools/include/dmabuf_output_helper.h)
_PROC = "%16s:%-5d\n"
_HEAD = "%22s %16s %16s %16s %16s %22s\n"
_ROW = "%22s %13d kB %13d kB %16d %16d  %22s\n"
_TOTAL = "%22s %13d kB %13d kB %16s\n"
_SUMMARY = "dmabuf total: %d kB kernel_rss: %d kB userspace_rss: %d kB userspace_pss: %d kB\n "


def _printf(fmt: str, *args: object) -> str:
    """C printf semantics for the AOSP formats above (%-style is the point here)."""
    return fmt % args


def format_dmabuf_dump(analysis: Analysis) -> str:
    """AOSP ``dmabuf_dump`` default (per-process) view, with its printf layout and its own
    figures (``Pss = size / nr_procs`` with integer division, kB = bytes / 1024), so the
    text can be compared with the tool's output. Processes come by ascending pid (the tool
    prints them in hash order) and buffers by ascending inode (as the tool does)."""
    a = analysis
    h = a.holdings
    out: list[str] = []
    if a.totals.inventory_bytes is None:
        out.append("Unable to read DMA-BUF per-buffer stats from device\n")
    if len(h) == 0:
        out.append("dmabuf info not found ¯\\_(ツ)_/¯\n")
        return "".join(out)
    buffers = a.buffers.set_index("inode")
    fd_inodes = set(
        a.references.loc[(a.references["kind"] == "fd") & a.references["inode"].notna(), "inode"]
        .astype(int)
        .tolist()
    )
    # an imported dmabuf_dump/bugreport: the tool printed these names itself
    fd_inodes |= a.named_inodes
    names = a.usage.set_index("pid")["name"]
    stated = {int(t["pid"]): t for t in a.stated_totals or []}
    order = h.sort_values(["pid", "inode"])
    total_rss = total_pss = 0
    for pid, grp in order.groupby("pid", sort=True):
        comm = names.get(pid)
        comm_s = (
            "N/A" if comm is None or (isinstance(comm, float) and np.isnan(comm)) else str(comm)
        )
        out.append(_printf(_PROC, comm_s, int(str(pid))))
        out.append(_printf(_HEAD, "Name", "Rss", "Pss", "nr_procs", "Inode", "Exporter"))
        rss = pss = 0
        for ino, size, n in zip(
            grp["inode"].tolist(), grp["size_bytes"].tolist(), grp["holders"].tolist(), strict=True
        ):
            row = buffers.loc[ino]
            name = row["name"] if ino in fd_inodes else None
            name_s = name if isinstance(name, str) and name else "<unknown>"
            exp = row["exporter"]
            exp_s = exp if isinstance(exp, str) and exp else "<unknown>"
            bpss = size // n
            out.append(_printf(_ROW, name_s, size // 1024, bpss // 1024, n, ino, exp_s))
            rss += size
            pss += bpss
        told = stated.get(int(str(pid)))
        if told is not None:  # an import whose PROCESS TOTAL is not its rows' sum: as printed
            rss = int(told["total_rss_kb"]) * 1024
            pss = pss if told["total_pss_kb"] is None else int(told["total_pss_kb"]) * 1024
        out.append(_printf(_TOTAL, "PROCESS TOTAL", rss // 1024, pss // 1024, ""))
        out.append("----------------------\n")
        total_rss += rss
        total_pss += pss
    userspace = int(a.buffers.loc[a.buffers["inode"].isin(h["inode"]), "size_bytes"].sum())
    inv = a.totals.inventory_bytes or 0
    if inv >= userspace:
        kernel_rss = inv - userspace
    else:
        out.append("Warning: Total dmabufs < userspace dmabufs\n")
        kernel_rss = inv
    out.append(
        _printf(
            _SUMMARY,
            (userspace + kernel_rss) // 1024,
            kernel_rss // 1024,
            total_rss // 1024,
            total_pss // 1024,
        )
    )
    return "".join(out)
