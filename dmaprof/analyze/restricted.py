"""The report of a capture that could not read every process (a user build's shell user).

:func:`extend_report` adds the user-build keys (access, system totals, graphic buffers,
run-as results; docs/user-build.md) to the JSON report, kept apart from the exact figures,
and, in a restricted capture, turns every figure that depends on unreadable processes into
``None`` ("unknown") instead of a misleading zero.

pss of a buffer shared with processes that could not be read is an **upper bound** (only the
readable holders share it). The buffer's ``count`` (fdinfo: fds + mappings + kernel
references) bounds it from below: every other holder holds at least one reference, so at
most ``count - references seen`` other processes share it. A process whose buffers are all
fully accounted for (``count`` equals the references seen) has an exact pss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze.analysis import Analysis
from dmaprof.analyze.userbuild import graphic_buffers, run_as_results, system_totals

_PROCESS_IDENTITY = ("pid", "name", "uid", "owner_uid", "cgroup", "is_service")


def restricted(report: dict[str, Any]) -> bool:
    """A capture by a user that could not read every process (not root): figures of the
    processes it could not read are unknown, not zero."""
    cov = report.get("coverage") or {}
    uid = cov.get("capture_uid")
    return uid is not None and uid != 0 and bool(cov.get("processes_unreadable"))


def pss_bounds(analysis: Analysis) -> dict[int, tuple[bool, int | None]]:
    """pid -> (pss exact?, lower bound of pss) for every process holding a buffer.

    A buffer is fully accounted for when its ``count`` equals the references seen (fds and
    mappings of readable processes); otherwise up to ``count - seen`` more processes may share
    it, and its share is at least ``size // (holders + count - seen)``."""
    h = analysis.holdings
    if len(h) == 0:
        return {}
    refs = analysis.references
    ino_refs = refs["inode"].dropna().astype("int64").value_counts()
    counts = analysis.buffers.set_index("inode")["count"]
    ino = h["inode"].to_numpy(dtype=np.int64)
    seen = ino_refs.reindex(ino).fillna(0).to_numpy(dtype=np.int64)
    cnt = counts.reindex(ino)
    known = cnt.notna().to_numpy()
    count = cnt.fillna(0).to_numpy(dtype=np.int64)
    extra = np.maximum(count - seen, 0)
    holders = h["holders"].to_numpy(dtype=np.int64)
    size = h["size_bytes"].to_numpy(dtype=np.int64)
    share = h["pss_bytes"].to_numpy(dtype=np.int64)
    exact = known & (extra == 0)
    low = np.where(exact, share, size // np.maximum(holders + extra, 1))
    out: dict[int, tuple[bool, int | None]] = {}
    for pid, e, k, lo in zip(
        h["pid"].to_numpy(dtype=np.int64).tolist(),
        exact.tolist(),
        known.tolist(),
        low.tolist(),
        strict=True,
    ):
        was_exact, was_low = out.get(pid, (True, 0))
        out[pid] = (
            was_exact and e,
            None if (was_low is None or not k) else was_low + lo,
        )
    return out


def extend_report(report: dict[str, Any], analysis: Analysis) -> None:
    """Add the user-build keys to ``report`` (in place): ``access``, ``system_totals``,
    ``graphic_buffers``, ``run_as``; in a restricted capture also null out what the
    unreadable processes make unknown (docs/user-build.md)."""
    dump = analysis.dump
    totals = system_totals(dump)
    results = run_as_results(dump)
    is_restricted = restricted(report)
    cov = report.get("coverage") or {}
    uid = cov.get("capture_uid")
    ok = [r.package for r in results if r.status == "ok"]
    report["access"] = {
        "mode": "root" if uid == 0 else ("run-as" if ok else "shell"),
        "restricted": is_restricted,
        "run_as_packages": ok,
        "note": (
            "processes that could not be read have unknown (null) figures; pss of a buffer "
            "shared with them is an upper bound (pss_min_bytes is a lower bound)"
            if is_restricted
            else None
        ),
    }
    report["system_totals"] = totals.as_dict() if totals is not None else None
    report["graphic_buffers"] = [g.as_dict() for g in graphic_buffers(dump)]
    uids = dict(zip(analysis.usage["pid"].tolist(), analysis.usage["uid"].tolist(), strict=True))
    for r in results:
        if r.uid is None and r.pids and r.pids[0] in uids and not pd.isna(uids[r.pids[0]]):
            r.uid = int(uids[r.pids[0]])  # the app side could not read its own status
    report["run_as"] = [r.as_dict() for r in results]
    warnings = report.setdefault("warnings", [])
    for r in results:
        if r.status not in ("ok", "skipped"):
            warnings.append(r.describe())
    if is_restricted:
        _label_unknown(report, analysis)


def _label_unknown(report: dict[str, Any], analysis: Analysis) -> None:
    u = analysis.usage
    unreadable = u[u["unreadable"].to_numpy(dtype=bool)]
    unknown_pids = {int(p) for p in unreadable["pid"].tolist()}
    bounds = pss_bounds(analysis)

    # processes: readable ones get their pss bounds; unreadable ones are listed, all null
    rows = report.get("processes") or []
    keys = list(rows[0]) if rows else list(_PROCESS_IDENTITY)
    for row in rows:
        exact, low = bounds.get(int(row["pid"]), (True, row.get("pss_bytes")))
        row["pss_exact"] = exact
        row["pss_min_bytes"] = low
    for rec in unreadable.to_dict("records"):
        extra_row: dict[str, Any] = dict.fromkeys(keys)
        for k in _PROCESS_IDENTITY:
            v = rec.get(k)
            extra_row[k] = None if v is None or pd.isna(v) else v
        for k in ("pid", "uid", "owner_uid"):
            v = extra_row[k]
            extra_row[k] = None if v is None else int(v)
        if extra_row["is_service"] is not None:
            extra_row["is_service"] = bool(extra_row["is_service"])
        extra_row["unreadable"] = True
        extra_row["pss_exact"] = None
        extra_row["pss_min_bytes"] = None
        rows.append(extra_row)
    report["processes"] = rows
    if "display_name" in keys or "cmdline" in keys:
        procs = analysis.processes.drop_duplicates("pid")
        all_pids = procs["pid"].tolist()
        argv0 = dict(zip(all_pids, procs["argv0"].astype(object).tolist(), strict=True))
        cmdline = dict(zip(all_pids, procs["cmdline_display"].astype(object).tolist(), strict=True))
        for row in rows:
            if not row.get("unreadable"):
                continue
            a0, cmd = argv0.get(row["pid"]), cmdline.get(row["pid"])
            if "display_name" in keys:
                row["display_name"] = (
                    a0.rsplit("/", 1)[-1] if isinstance(a0, str) and a0 else row["name"]
                )
            if "cmdline" in keys:
                row["cmdline"] = cmd if isinstance(cmd, str) else None

    # apps whose processes could all not be read: listed too, unknown
    apps = report.setdefault("apps", [])
    listed = {a.get("uid") for a in apps}
    app_keys = list(apps[0]) if apps else ["uid", "packages", "label", "pids", "processes"]
    pkgs = analysis.packages
    by_uid: dict[int, list[int]] = {}
    for pid, owner in zip(
        unreadable["pid"].tolist(), unreadable["owner_uid"].tolist(), strict=True
    ):
        if owner is not None and not pd.isna(owner) and int(owner) not in listed:
            by_uid.setdefault(int(owner), []).append(int(pid))
    for owner, pids in sorted(by_uid.items()):
        names = sorted(pkgs.loc[pkgs["uid"] == owner, "package"].astype(str).tolist())
        row = dict.fromkeys(app_keys)
        row.update(
            uid=owner,
            packages=names,
            label=",".join(names) or None,
            user_id=owner // 100000,
            app_id=owner % 100000,
            processes=len(pids),
            pids=sorted(pids),
            unreadable=True,
            pss_exact=None,
            pss_min_bytes=None,
        )
        for k in ("user_id", "app_id"):
            if k not in app_keys:
                row.pop(k)
        apps.append(row)

    # apps: unknown as soon as one of their processes is; else pss bounds as for processes
    for app in apps:
        app_pids = {int(p) for p in app.get("pids") or []}
        if app_pids & unknown_pids:
            for k in ("rss_bytes", "charged_bytes", "pss_bytes", "shared_pss_bytes", "buffers"):
                if k in app:
                    app[k] = None
            app["unreadable"] = True
            app["pss_exact"] = None
            app["pss_min_bytes"] = None
        else:
            got = [bounds.get(p, (True, 0)) for p in app_pids]
            lows = [lo for _, lo in got]
            app["unreadable"] = False
            app["pss_exact"] = all(e for e, _ in got)
            app["pss_min_bytes"] = (
                None if any(lo is None for lo in lows) else sum(int(lo or 0) for lo in lows)
            )

    # cgroups: own figures unknown when an unreadable process is directly in it, subtree
    # figures when one is anywhere below
    cg_of = {int(p): c for p, c in zip(u["pid"].tolist(), u["cgroup"].tolist(), strict=True)}
    paths = [c for p, c in cg_of.items() if p in unknown_pids and isinstance(c, str)]
    for cg in report.get("cgroups") or []:
        path = cg.get("path")
        if not isinstance(path, str):
            continue
        prefix = path.rstrip("/") + "/"
        if path in paths:
            for k in ("charged_bytes", "pss_bytes", "rss_bytes"):
                cg[k] = None
        if any(p == path or p.startswith(prefix) for p in paths):
            for k in (
                "charged_bytes_with_descendants",
                "pss_bytes_with_descendants",
                "rss_bytes_with_descendants",
            ):
                cg[k] = None

    # exporters and names: which buffers processes hold is only partly known
    for group in (report.get("exporters") or []) + (report.get("names") or []):
        for k in (
            "userspace_buffers",
            "userspace_bytes",
            "kernel_only_buffers",
            "kernel_only_bytes",
            "holders",
        ):
            if k in group:
                group[k] = None

    # buffers: holders are those seen; kernel_only is unknown unless a holder was seen
    counts = analysis.buffers.set_index("inode")["count"]
    refs = analysis.references
    seen = refs["inode"].dropna().astype("int64").value_counts()
    for b in report.get("buffers") or []:
        ino = b.get("inode")
        c = counts.get(ino) if ino is not None else None
        n = int(seen.get(ino, 0)) if ino is not None else 0
        complete = None if c is None or pd.isna(c) else bool(int(c) <= n)
        b["holders_complete"] = complete if b.get("holders") else None
        if not b.get("holders"):
            b["kernel_only"] = None

    report["kernel_only"] = None
    totals = report.get("totals") or {}
    for k in ("kernel_only_buffers", "kernel_only_bytes", "aosp_kernel_rss_bytes"):
        if k in totals:
            totals[k] = None
