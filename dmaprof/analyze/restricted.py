"""The report of a capture that could not read every process (a user build's shell user).

:func:`user_build` gives what :func:`dmaprof.analyze.report.build_report` needs for the
user-build keys (access, system totals, graphic buffers, run-as results; docs/user-build.md),
kept apart from the exact figures, and, in a restricted capture, the rows of every view with
each figure that depends on unreadable processes set to ``None`` ("unknown") instead of a
misleading zero.

pss of a buffer shared with processes that could not be read is an **upper bound** (only the
readable holders share it). The buffer's ``count`` (fdinfo: fds + mappings + kernel
references) bounds it from below: every other holder holds at least one reference, so at
most ``count - references seen`` other processes share it. A process whose buffers are all
fully accounted for (``count`` equals the references seen) has an exact pss.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast, get_type_hints

import numpy as np
import pandas as pd

from dmaprof.analyze.analysis import Analysis
from dmaprof.analyze.reporttypes import (
    Access,
    App,
    Buffer,
    Cgroup,
    ExporterGroup,
    GraphicBuffers,
    KernelOnly,
    NameGroup,
    Process,
    RunAs,
    SystemTotals,
    Totals,
)
from dmaprof.analyze.userbuild import graphic_buffers, run_as_results, system_totals

__all__ = ["UserBuild", "null_keys", "pss_bounds", "user_build"]

_PROCESS_IDENTITY = ("pid", "name", "uid", "owner_uid", "cgroup", "is_service")
#: figures of a group (exporter, name) that depend on which buffers processes hold
_GROUP_HELD = (
    "userspace_buffers",
    "userspace_bytes",
    "kernel_only_buffers",
    "kernel_only_bytes",
    "holders",
)
G = TypeVar("G", ExporterGroup, NameGroup)


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
    share = h["shared_pss_bytes"].to_numpy(dtype=np.int64)
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


def null_keys(row: Any, keys: Iterable[str]) -> Any:
    """``row`` with the figures ``keys`` it has set to null ("unknown", never a false 0): the
    one rule for a restricted capture's views and a source's unknown totals."""
    for k in keys:
        if k in row:
            row[k] = None
    return row


@dataclass
class UserBuild:
    """The user-build keys of a report, and the views of a restricted capture."""

    analysis: Analysis
    access: Access
    system_totals: SystemTotals | None
    graphic_buffers: list[GraphicBuffers]
    run_as: list[RunAs]
    warnings: list[str] = field(default_factory=list)

    @property
    def restricted(self) -> bool:
        return bool(self.access["restricted"])

    def processes(self, rows: list[Process]) -> list[Process]:
        """Readable processes get their pss bounds; unreadable ones are listed, all null."""
        if not self.restricted:
            return rows
        return _processes(self.analysis, rows)

    def apps(self, rows: list[App]) -> list[App]:
        """Apps unknown as soon as one of their processes is; else pss bounds."""
        if not self.restricted:
            return rows
        return _apps(self.analysis, rows)

    def cgroups(self, rows: list[Cgroup]) -> list[Cgroup]:
        """Own figures unknown when an unreadable process is directly in the cgroup, subtree
        figures when one is anywhere below."""
        if not self.restricted:
            return rows
        return _cgroups(self.analysis, rows)

    def groups(self, rows: list[G]) -> list[G]:
        """Exporters and names: which buffers processes hold is only partly known."""
        if self.restricted:
            for row in rows:
                null_keys(row, _GROUP_HELD)
        return rows

    def buffers(self, rows: list[Buffer]) -> list[Buffer]:
        """Holders are those seen; kernel_only is unknown unless a holder was seen."""
        if not self.restricted:
            return rows
        a = self.analysis
        counts = a.buffers.set_index("inode")["count"]
        seen = a.references["inode"].dropna().astype("int64").value_counts()
        for b in rows:
            ino = b["inode"]
            c = counts.get(ino)
            n = int(seen.get(ino, 0))
            complete = None if c is None or pd.isna(c) else bool(int(c) <= n)
            b["holders_complete"] = complete if b["holders"] else None
            if not b["holders"]:
                b["kernel_only"] = None
        return rows

    def kernel_only(self, rows: list[KernelOnly]) -> list[KernelOnly] | None:
        return None if self.restricted else rows

    def totals(self, totals: Totals) -> Totals:
        if self.restricted:
            null_keys(totals, ("kernel_only_buffers", "kernel_only_bytes", "aosp_kernel_rss_bytes"))
        return totals


def user_build(analysis: Analysis) -> UserBuild:
    """The user-build keys of ``analysis``'s report: ``access``, ``system_totals``,
    ``graphic_buffers``, ``run_as`` (docs/user-build.md), and whether the capture is
    restricted (its views then null what the unreadable processes make unknown)."""
    dump = analysis.dump
    totals = system_totals(dump)
    results = run_as_results(dump)
    cov = analysis.coverage
    uid = cov.capture_uid
    is_restricted = uid is not None and uid != 0 and bool(cov.processes_unreadable)
    ok = [r.package for r in results if r.status == "ok"]
    access: Access = {
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
    usage = analysis.usage
    uids = dict(zip(usage["pid"].tolist(), usage["uid"].tolist(), strict=True))
    for r in results:
        if r.uid is None and r.pids and r.pids[0] in uids and not pd.isna(uids[r.pids[0]]):
            r.uid = int(uids[r.pids[0]])  # the app side could not read its own status
    return UserBuild(
        analysis=analysis,
        access=access,
        system_totals=cast(SystemTotals, totals.as_dict()) if totals is not None else None,
        graphic_buffers=[cast(GraphicBuffers, g.as_dict()) for g in graphic_buffers(dump)],
        run_as=[cast(RunAs, r.as_dict()) for r in results],
        warnings=[r.describe() for r in results if r.status not in ("ok", "skipped")],
    )


def _unreadable(analysis: Analysis) -> pd.DataFrame:
    u = analysis.usage
    return u[u["unreadable"].to_numpy(dtype=bool)]


def _processes(analysis: Analysis, rows: list[Process]) -> list[Process]:
    bounds = pss_bounds(analysis)
    for row in rows:
        exact, low = bounds.get(int(row["pid"] or 0), (True, row["shared_pss_bytes"]))
        row["pss_exact"] = exact
        row["pss_min_bytes"] = low
    procs = analysis.processes.drop_duplicates("pid")
    all_pids = procs["pid"].tolist()
    argv0 = dict(zip(all_pids, procs["argv0"].astype(object).tolist(), strict=True))
    cmdline = dict(zip(all_pids, procs["cmdline_display"].astype(object).tolist(), strict=True))
    keys = list(rows[0]) if rows else None
    for rec in _unreadable(analysis).to_dict("records"):
        extra: dict[str, Any] = dict.fromkeys(keys) if keys else _empty_process()
        for k in _PROCESS_IDENTITY:
            v = rec.get(k)
            extra[k] = None if v is None or pd.isna(v) else v
        for k in ("pid", "uid", "owner_uid"):
            v = extra[k]
            extra[k] = None if v is None else int(v)
        if extra["is_service"] is not None:
            extra["is_service"] = bool(extra["is_service"])
        a0, cmd = argv0.get(extra["pid"]), cmdline.get(extra["pid"])
        shown = a0.rsplit("/", 1)[-1] if isinstance(a0, str) and a0 else extra["name"]
        extra["display_name"] = shown
        extra["cmdline"] = cmd if isinstance(cmd, str) else None
        extra["unreadable"] = True
        extra["pss_exact"] = None
        extra["pss_min_bytes"] = None
        rows.append(cast(Process, extra))
    return rows


def _empty_process() -> dict[str, Any]:
    return dict.fromkeys(get_type_hints(Process))


def _apps(analysis: Analysis, apps: list[App]) -> list[App]:
    unreadable = _unreadable(analysis)
    unknown_pids = {int(p) for p in unreadable["pid"].tolist()}
    bounds = pss_bounds(analysis)
    # apps whose processes could all not be read: listed too, unknown
    listed = {a["uid"] for a in apps}
    keys = list(apps[0]) if apps else None
    pkgs = analysis.packages
    by_uid: dict[int, list[int]] = {}
    for pid, owner in zip(
        unreadable["pid"].tolist(), unreadable["owner_uid"].tolist(), strict=True
    ):
        if owner is not None and not pd.isna(owner) and int(owner) not in listed:
            by_uid.setdefault(int(owner), []).append(int(pid))
    for owner, pids in sorted(by_uid.items()):
        names = sorted(pkgs.loc[pkgs["uid"] == owner, "package"].astype(str).tolist())
        row: dict[str, Any] = dict.fromkeys(keys) if keys else _empty_app()
        row.update(
            uid=owner,
            packages=names,
            label=",".join(names) or None,
            user_id=owner // 100000,
            app_id=owner % 100000,
            processes=len(pids),
            pids=sorted(pids),
        )
        apps.append(cast(App, row))
    for app in apps:
        app_pids = {int(p) for p in app["pids"] or []}
        if app_pids & unknown_pids:
            null_keys(
                app, ("rss_bytes", "charged_bytes", "pss_bytes", "shared_pss_bytes", "buffers")
            )
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
    return apps


def _empty_app() -> dict[str, Any]:
    return dict.fromkeys(get_type_hints(App))


def _cgroups(analysis: Analysis, rows: list[Cgroup]) -> list[Cgroup]:
    u = analysis.usage
    unknown_pids = {int(p) for p in _unreadable(analysis)["pid"].tolist()}
    cg_of = {int(p): c for p, c in zip(u["pid"].tolist(), u["cgroup"].tolist(), strict=True)}
    paths = [c for p, c in cg_of.items() if p in unknown_pids and isinstance(c, str)]
    for cg in rows:
        path = cg["path"]
        if not isinstance(path, str):
            continue
        prefix = path.rstrip("/") + "/"
        if path in paths:
            null_keys(cg, ("charged_bytes", "pss_bytes", "shared_pss_bytes", "rss_bytes"))
        if any(p == path or p.startswith(prefix) for p in paths):
            null_keys(
                cg,
                (
                    "charged_bytes_with_descendants",
                    "pss_bytes_with_descendants",
                    "shared_pss_bytes_with_descendants",
                    "rss_bytes_with_descendants",
                ),
            )
    return rows
