"""Machine-readable report (``dmaprof show --format json``) and AOSP ``dmabuf_dump`` text.

:func:`build_report` returns plain Python values only (``int``, ``str``, ``bool``, ``None``,
lists, dicts): sizes are raw integer bytes, never floats. The keys listed in the
``REPORT_SCHEMA`` contract are stable; others may be added.

Figures follow the analysis's charge policy: ``pss_bytes`` of processes, apps and cgroups is
the *charged* figure (``shared``: exact pss; ``full``: rss; ``client``: client charge).
``shared_pss_bytes`` always holds the exact proportional share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import objects
from dmaprof.analyze.analysis import Analysis
from dmaprof.analyze.devices import attached_device_rows, attached_device_summary
from dmaprof.analyze.restricted import extend_report

REPORT_SCHEMA = "dmaprof.report/1"


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


def _records(df: pd.DataFrame, columns: dict[str, str]) -> list[dict[str, Any]]:
    """Rows of ``df`` as dicts, renaming ``source column -> key``."""
    cols = [_column(df[src]) for src in columns]
    keys = list(columns.values())
    return [dict(zip(keys, row, strict=True)) for row in zip(*cols, strict=True)] if cols else []


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


def build_report(analysis: Analysis, device: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report. ``device`` (e.g. the adb serial and state) overrides what the dump
    says about the device."""
    a = analysis
    dev = dict(a.device)
    if device:
        dev.update(device)
    t = a.totals
    totals = {
        "buffers": t.buffers,
        "bytes": t.bytes,
        "userspace_bytes": t.userspace_bytes,
        "kernel_only_bytes": t.kernel_only_bytes,
        **{
            k: v
            for k, v in t.as_dict().items()
            if k not in ("buffers", "bytes", "userspace_bytes", "kernel_only_bytes")
        },
    }
    c = a.coverage
    coverage = {
        "processes": c.processes,
        "processes_unreadable": c.processes_unreadable,
        **{k: v for k, v in c.as_dict().items() if k not in ("processes", "processes_unreadable")},
        "truncated": a.dump.truncated,
        "unparsed_lines": a.unparsed_total,
    }

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
    processes = _records(
        active,
        {
            "pid": "pid",
            "name": "name",
            "display_name": "display_name",
            "cmdline": "cmdline",
            "uid": "uid",
            "owner_uid": "owner_uid",
            "cgroup": "cgroup",
            "rss_bytes": "rss_bytes",
            "charged_bytes": "pss_bytes",
            "pss_bytes": "shared_pss_bytes",
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
        },
    )
    for p in processes:
        p["charged_bytes"] = p["pss_bytes"]

    holders = holders_by_inode(a)
    b = a.buffers.sort_values(["size_bytes", "inode"], ascending=[False, True])
    buffers = _records(
        b,
        {
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
        },
    )
    for row in buffers:
        hs = holders.get(row["inode"], [])
        row["holders"] = hs
        row["kernel_only"] = bool(row["in_inventory"] and not hs)

    apps = _records(
        a.apps,
        {
            "uid": "uid",
            "packages": "packages",
            "rss_bytes": "rss_bytes",
            "charged_bytes": "pss_bytes",
            "pss_bytes": "shared_pss_bytes",
            "label": "label",
            "kind": "kind",
            "user_id": "user_id",
            "app_id": "app_id",
            "processes": "processes",
            "pids": "pids",
            "buffers": "buffers",
        },
    )
    for row in apps:
        row["charged_bytes"] = row["pss_bytes"]
    cg = a.cgroup_usage.sort_values(["path"])
    cgroups = _records(
        cg,
        {
            "path": "path",
            "charged_bytes": "pss_bytes",
            "charged_bytes_with_descendants": "pss_bytes_with_descendants",
            "pss_bytes": "shared_pss_bytes",
            "pss_bytes_with_descendants": "shared_pss_bytes_with_descendants",
            "rss_bytes": "rss_bytes",
            "rss_bytes_with_descendants": "rss_bytes_with_descendants",
            "processes": "processes",
            "processes_with_descendants": "processes_with_descendants",
            "depth": "depth",
        },
    )
    group_cols = {
        "buffers": "buffers",
        "bytes": "bytes",
        "userspace_buffers": "userspace_buffers",
        "userspace_bytes": "userspace_bytes",
        "kernel_only_buffers": "kernel_only_buffers",
        "kernel_only_bytes": "kernel_only_bytes",
        "holders": "holders",
    }
    exporters = _records(a.exporters, {"key": "exporter", **group_cols})
    names = _records(a.names, {"key": "name", **group_cols})
    kernel_only = _records(
        a.kernel_only,
        {
            "inode": "inode",
            "size_bytes": "size_bytes",
            "exporter": "exporter",
            "name": "name",
            "count": "count",
            "attached_devices": "attached_devices",
        },
    )
    crosscheck = _records(a.crosscheck, {c: c for c in a.crosscheck.columns})
    heaps = _records(a.heaps, {c: c for c in a.heaps.columns})
    pools = _records(a.pools, {c: c for c in a.pools.columns})
    report = {
        "schema": REPORT_SCHEMA,
        "charge": a.charge,
        "service_regex": a.service_regex if a.charge == "client" else None,
        "device": {k: _py(v) for k, v in dev.items()},
        "totals": totals,
        "coverage": coverage,
        "processes": processes,
        "buffers": buffers,
        "apps": apps,
        "cgroups": cgroups,
        "cgroup_hierarchy": a.cgroup_hierarchy,
        "exporters": exporters,
        "names": names,
        "kernel_only": kernel_only,
        "attached_devices": attached_device_rows(a.inventory, a.attachments),
        "attached_devices_summary": attached_device_summary(
            a.inventory, a.attachments, a.coverage.sources.get("bufinfo")
        ),
        "heaps": heaps,
        "pools": pools,
        "crosscheck": crosscheck,
        "warnings": list(a.warnings),
    }
    extend_report(report, a)  # user-build mode: dumpsys totals, run-as, unknown figures
    return report


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
    fd_inodes |= set(getattr(a, "named_inodes", ()))
    names = a.usage.set_index("pid")["name"]
    stated = {int(t["pid"]): t for t in getattr(a, "stated_totals", None) or []}
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
