"""One side of a comparison: what a diff, a trend or `top` needs from one analysed capture.

``Side`` keeps small, typed frames (no raw dump, no references table), so a long series can
be summarised capture by capture without keeping captures in memory. Built with
:func:`side_from_capture` (analyses the capture) or :func:`side_from_analysis` (an
``Analysis`` you already have).

Frames (identity columns ``int64``; figures ``Int64``, ``<NA>`` where the capture could
not see them: an unreadable process, the roll-ups that include it, every held-by-process and
kernel-only figure while a holder was unreadable; docs/coverage.md; :class:`Coverage` says
what the side could see):

* ``processes``: one row per userspace process (kernel threads and the collector excluded):
  ``pid``, ``start`` (stat field 22, ``-1`` when unknown), ``name`` (display name: argv[0]'s
  basename, else the comm), ``comm``, ``uid``, ``owner_uid``, ``cgroup``, ``rss``, ``charged``
  (under the charge policy: ``charged_bytes``, and ``pss_bytes`` of ``dmaprof.report/1``),
  ``shared_pss`` (exact proportional share: ``shared_pss_bytes``), ``buffers``, ``fd_only``,
  ``map_only``, ``both``, ``map_only_bytes``, ``fds``, ``maps``, ``unreadable``;
* ``holdings``: ``pid``, ``inode``, ``fds``, ``maps``, ``size`` (one row per process and
  buffer it holds);
* ``buffers``: ``inode``, ``size``, ``exporter`` (``""`` when unknown), ``name`` (nullable),
  ``name_key`` (``<unknown>`` when unnamed), ``held`` (by at least one process);
* ``apps``: ``uid``, ``label``, ``kind``, ``packages`` (tuple), ``processes``, ``rss``,
  ``charged``, ``shared_pss``, ``buffers``;
* ``cgroups``: ``path``, ``rss``, ``charged``, ``rss_tree``, ``charged_tree`` (with descendants),
  ``processes``;
* ``exporters`` / ``names``: ``key``, ``buffers``, ``bytes``, ``userspace_buffers``,
  ``userspace_bytes``, ``kernel_only_buffers``, ``kernel_only_bytes``, ``holders``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze.analysis import Analysis
from dmaprof.capture.container import Capture
from dmaprof.leaks.difftypes import DiffSide, DiffSideCoverage

UNKNOWN = "<unknown>"  # the key dmaprof's roll-ups use for a missing exporter or name

PROCESS_INTS = (
    "rss", "charged", "shared_pss", "buffers", "fd_only", "map_only", "both", "map_only_bytes",
    "fds", "maps",
)  # fmt: skip
GROUP_INTS = (
    "buffers", "bytes", "userspace_buffers", "userspace_bytes", "kernel_only_buffers",
    "kernel_only_bytes", "holders",
)  # fmt: skip
APP_INTS = ("processes", "rss", "charged", "shared_pss", "buffers")
CGROUP_INTS = ("processes", "rss", "charged", "rss_tree", "charged_tree")
TOTAL_KEYS = (
    "buffers", "bytes", "userspace_buffers", "userspace_bytes", "kernel_only_buffers",
    "kernel_only_bytes", "shared_pss_bytes", "charged_bytes", "anon_fds", "anon_fd_bytes",
    "anon_maps", "anon_mapped_bytes",
)  # fmt: skip


@dataclass(frozen=True)
class CaptureInfo:
    """Who and when: device identity, boot and time of one capture."""

    label: str
    serial: str = ""
    model: str = ""
    fingerprint: str = ""
    boot_id: str = ""
    firstboot: str = ""  # ro.runtime.firstboot: names the boot in bugreports and snapshots
    uptime_s: float | None = None
    wallclock: float | None = None  # seconds since the epoch (host clock, else device clock)
    complete: bool = True
    mode: str = ""  # root | shell | run-as | bugreport | dmabuf_dump (Coverage.mode)
    source: str = ""  # collector | bugreport | dmabuf_dump

    @classmethod
    def from_capture(cls, capture: Capture, analysis: Analysis | None = None) -> CaptureInfo:
        meta = capture.meta
        device = capture.device
        collection = meta.get("collection") or {}
        transport = meta.get("transport") or {}
        dev = analysis.device if analysis is not None else {}
        wall = collection.get("host_wallclock")
        if not isinstance(wall, int | float):
            wall = collection.get("wallclock_start")
        uptime = collection.get("uptime_start")
        if not isinstance(uptime, int | float):
            uptime = dev.get("uptime_start")
        return cls(
            label=str(capture.path) if capture.path else "capture",
            serial=str(device.get("serial") or transport.get("serial") or ""),
            model=str(device.get("model") or dev.get("model") or ""),
            fingerprint=str(device.get("fingerprint") or dev.get("fingerprint") or ""),
            boot_id=str(device.get("boot_id") or dev.get("boot_id") or ""),
            firstboot=str(device.get("firstboot") or dev.get("firstboot") or ""),
            uptime_s=float(uptime) if isinstance(uptime, int | float) else None,
            wallclock=float(wall) if isinstance(wall, int | float) else None,
            complete=capture.complete,
        )

    @property
    def device_name(self) -> str:
        if self.serial and self.model:
            return f"{self.serial} ({self.model})"
        return self.serial or self.model or "unknown device"

    @property
    def captured_at(self) -> str | None:
        if self.wallclock is None:
            return None
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.wallclock))

    def as_dict(self) -> DiffSide:
        return {
            "path": self.label,
            "serial": self.serial,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "boot_id": self.boot_id,
            "firstboot": self.firstboot or None,
            "uptime_s": self.uptime_s,
            "captured_at": self.captured_at,
            "complete": self.complete,
            "mode": self.mode or None,
            "source": self.source or None,
        }


@dataclass(frozen=True)
class Coverage:
    """What one side could see, so a comparison knows which of its figures it may trust.

    ``mode`` is how the capture was collected: ``root``, ``shell`` (any uid but 0: the
    shell user of a production phone, a desktop user), ``run-as`` (shell plus the app
    processes read through run-as), or the source for imports (``bugreport``,
    ``dmabuf_dump``: dumpstate's dmabuf_dump runs as root but tells no fd/map split)."""

    mode: str = "root"
    source: str = "collector"
    uid: int | None = None
    unreadable: int = 0  # processes whose fds or maps were denied
    inventory: bool = True  # a global buffer list was read (bpf, sysfs or debugfs)
    named_inventory: bool = True  # ... and it names the buffers (bpf, debugfs; not sysfs)
    cgroups: bool = True  # the source records each process's cgroup
    uids: bool = True  # the source records each process's uid (apps)

    @property
    def holders_complete(self) -> bool:
        """Every holder of every buffer was seen: kernel-only figures are known."""
        return self.unreadable == 0

    @property
    def exporters_listed(self) -> bool:
        """Every buffer's exporter is known: per-exporter counts and bytes are exact."""
        return self.inventory or self.holders_complete

    @property
    def names_listed(self) -> bool:
        """Every buffer's name is known (sysfs stats name none: then only the fdinfo of
        every holder tells them all)."""
        return self.named_inventory or self.holders_complete

    @property
    def describe(self) -> str:
        if self.source != "collector":
            return f"imported from a {self.source}"
        who = (
            "as root"
            if self.mode == "root"
            else (f"as uid {self.uid}" if self.uid is not None else "without root")
        )
        if self.mode == "run-as":
            who += " with run-as"
        if self.unreadable:
            who += f", {self.unreadable} processes unreadable"
        return who

    def as_dict(self) -> DiffSideCoverage:
        return {
            "mode": self.mode,
            "source": self.source,
            "uid": self.uid,
            "processes_unreadable": self.unreadable,
            "holders_complete": self.holders_complete,
            "inventory": self.inventory,
            "cgroups": self.cgroups,
            "uids": self.uids,
        }


@dataclass
class Side:
    info: CaptureInfo
    charge: str
    totals: dict[str, int | None]
    processes: pd.DataFrame
    apps: pd.DataFrame
    exporters: pd.DataFrame
    names: pd.DataFrame
    # the analysis the holdings, buffers and cgroups frames are projected from, when first
    # read (a trend reads none of them)
    analysis: Analysis = field(repr=False)
    pss_unknown: np.ndarray = field(repr=False)  # per row of ``processes``
    lower_bound: bool = False
    warnings: list[str] = field(default_factory=list)
    # what the capture's source cannot tell (bugreport, dmabuf_dump: no fd/map split, no
    # start times...): one message each, from the analysis's ``limitations``
    limitations: list[str] = field(default_factory=list)
    # process columns the source cannot give (e.g. fds, maps, fd_only: no fd/map split)
    unknown: list[str] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)

    @cached_property
    def holdings(self) -> pd.DataFrame:
        return _holdings(self.analysis)

    @cached_property
    def buffers(self) -> pd.DataFrame:
        return _buffers(self.analysis)

    @cached_property
    def cgroups(self) -> pd.DataFrame:
        return _cgroups(self.analysis, self.processes, self.pss_unknown)


def side_from_capture(
    capture: Capture, *, charge: str = "shared", service_regex: str | None = None
) -> Side:
    from dmaprof.sources import analyze_source, source_kind

    analysis = analyze_source(capture, charge=charge, service_regex=service_regex)
    return side_from_analysis(
        analysis, CaptureInfo.from_capture(capture, analysis), source=source_kind(capture)
    )


def _i64(series: pd.Series, fill: int = 0) -> np.ndarray:
    return series.to_numpy(dtype=np.int64, na_value=fill)


def _text(series: pd.Series, fill: str = "") -> np.ndarray:
    return series.astype(object).where(series.notna(), fill).to_numpy(dtype=object)


def masked(values: np.ndarray, unknown: np.ndarray) -> pd.arrays.IntegerArray:
    """An ``Int64`` column: ``values`` where known, ``<NA>`` where ``unknown``."""
    return pd.arrays.IntegerArray(
        np.asarray(values, dtype=np.int64), np.asarray(unknown, dtype=bool).copy()
    )


def _coverage(a: Analysis, source: str) -> Coverage:
    from dmaprof.analyze.userbuild import run_as_results

    c = a.coverage
    uid = c.capture_uid
    if source != "collector":
        mode = source
    elif uid == 0:
        mode = "root"
    elif any(r.status == "ok" for r in run_as_results(a.dump)):
        mode = "run-as"
    else:
        mode = "shell"
    usage_unknown = a.unknown.get("usage", [])
    return Coverage(
        mode=mode,
        source=source,
        uid=uid,
        unreadable=int(c.processes_unreadable),
        inventory=a.totals.inventory_source is not None or source != "collector",
        named_inventory=a.totals.inventory_source in ("bpf", "debugfs") or source != "collector",
        cgroups="cgroup" not in usage_unknown,
        uids="owner_uid" not in usage_unknown,
    )


def side_from_analysis(analysis: Analysis, info: CaptureInfo, *, source: str = "collector") -> Side:
    """Project an ``Analysis`` onto the frames of a ``Side`` (vectorised; no row loops).

    Figures the capture could not see are ``<NA>`` (docs/coverage.md): the usage of an
    unreadable process, a pss shared with one, the roll-ups that include one, and every
    kernel-only and held-by-process figure while any holder was unreadable."""
    a = analysis
    t = a.totals
    coverage = _coverage(a, source)
    missing = a.unknown
    split = [c for c in missing.get("usage", ()) if c in PROCESS_INTS]
    unknown = [*split, "map_only_bytes"] if "map_only" in split else split
    processes, pss_unknown = _processes(a, coverage, unknown)
    totals_of = t.as_dict()
    totals: dict[str, int | None] = {
        k: None if k in missing.get("totals", ()) else totals_of[k] for k in TOTAL_KEYS
    }
    if not coverage.holders_complete:
        for key in TOTAL_KEYS:
            if key not in ("buffers", "bytes") or not coverage.inventory:
                totals[key] = None
    limitations = a.limitations
    return Side(
        info=replace(info, mode=coverage.mode, source=coverage.source),
        charge=a.charge,
        totals=totals,
        processes=processes,
        apps=_apps(a, processes, pss_unknown, coverage),
        exporters=_groups(a.exporters, coverage, coverage.exporters_listed),
        names=_groups(a.names, coverage, coverage.names_listed),
        analysis=a,
        pss_unknown=pss_unknown,
        lower_bound=bool(a.coverage.lower_bound),
        warnings=list(a.warnings),
        limitations=[str(x.get("message")) for x in limitations],
        unknown=unknown,
        coverage=coverage,
    )


def display_names(argv0: pd.Series, comm: pd.Series) -> np.ndarray:
    """argv[0]'s basename (``/system/bin/surfaceflinger`` -> ``surfaceflinger``; an app's
    ``com.example.app:remote`` stays whole), else the comm."""
    a0 = argv0.astype(object).where(argv0.notna(), "")
    base = a0.astype(str).str.rsplit("/", n=1).str[-1]
    fallback = comm.astype(object).where(comm.notna(), "?")
    return base.where(base != "", fallback).to_numpy(dtype=object)


USAGE_INTS = tuple(c for c in PROCESS_INTS if c not in ("charged", "shared_pss"))


def _pss_inexact_pids(a: Analysis) -> np.ndarray:
    """Pids holding a buffer that more processes may share than were seen: the buffer's
    file count (sysfs or debugfs) exceeds its references read, or there is no count."""
    h = a.holdings
    if len(h) == 0:
        return np.zeros(0, dtype=np.int64)
    ino = h["inode"].to_numpy(dtype=np.int64)
    refs = a.references["inode"].dropna().to_numpy(dtype=np.int64)
    seen = pd.Series(refs).value_counts().reindex(ino, fill_value=0).to_numpy(dtype=np.int64)
    count = a.buffers.drop_duplicates("inode").set_index("inode")["count"].reindex(ino)
    cnt = count.to_numpy(dtype=np.float64, na_value=np.nan)
    exact = ~np.isnan(cnt) & (cnt <= seen)
    return np.unique(h["pid"].to_numpy(dtype=np.int64)[~exact])


def _processes(
    a: Analysis, coverage: Coverage, unknown_columns: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The process frame (``Int64`` figures, ``<NA>`` where unknown) and, per row, whether
    its pss is unknown."""
    u = a.usage
    p = a.processes[["pid", "start_time_ticks", "argv0", "is_kernel_thread", "is_collector"]]
    m = u.merge(p, on="pid", how="left", validate="one_to_one")
    keep = ~(m["is_kernel_thread"].fillna(False).astype(bool)
             | m["is_collector"].fillna(False).astype(bool))  # fmt: skip
    m = m[keep.to_numpy()]
    pid = _i64(m["pid"])
    h = a.holdings
    map_only = (h["fds"].to_numpy() == 0) & (h["maps"].to_numpy() > 0)
    mob = (
        pd.Series(h["size_bytes"].to_numpy(dtype=np.int64)[map_only])
        .groupby(h["pid"].to_numpy(dtype=np.int64)[map_only])
        .sum()
    )
    unreadable = m["unreadable"].to_numpy(dtype=bool)
    pss_unknown = unreadable.copy()
    if not coverage.holders_complete:
        pss_unknown |= np.isin(pid, _pss_inexact_pids(a))
    values = {
        "rss": _i64(m["rss_bytes"]),
        "charged": _i64(m["charged_bytes"]),
        "shared_pss": _i64(m["shared_pss_bytes"]),
        "buffers": _i64(m["buffers"]),
        "fd_only": _i64(m["fd_only"]),
        "map_only": _i64(m["map_only"]),
        "both": _i64(m["both"]),
        "map_only_bytes": mob.reindex(pid, fill_value=0).to_numpy(dtype=np.int64),
        "fds": _i64(m["fds"]),
        "maps": _i64(m["maps"]),
    }
    everywhere = np.ones(len(pid), dtype=bool)
    figures = {}
    for column, v in values.items():
        unknown = pss_unknown if column == "shared_pss" else unreadable
        if column == "charged" and a.charge != "full":  # charged from shares, not sizes
            unknown = pss_unknown
        figures[column] = masked(v, everywhere if column in unknown_columns else unknown)
    out = pd.DataFrame(
        {
            "pid": pid,
            "start": _i64(m["start_time_ticks"], -1),
            "name": display_names(m["argv0"], m["name"]),
            "comm": _text(m["name"], "?"),
            "uid": _i64(m["uid"], -1),
            "owner_uid": _i64(m["owner_uid"], -1),
            "cgroup": _text(m["cgroup"]),
            **figures,
            "unreadable": unreadable,
        }
    )
    return out.reset_index(drop=True), pss_unknown


def _holdings(a: Analysis) -> pd.DataFrame:
    h = a.holdings
    return pd.DataFrame(
        {
            "pid": _i64(h["pid"]),
            "inode": _i64(h["inode"]),
            "fds": _i64(h["fds"]),
            "maps": _i64(h["maps"]),
            "size": _i64(h["size_bytes"]),
        }
    )


def _buffers(a: Analysis) -> pd.DataFrame:
    b = a.buffers
    inode = _i64(b["inode"])
    held = np.isin(inode, a.holdings["inode"].to_numpy(dtype=np.int64))
    name = b["name"].astype(object).where(b["name"].notna() & (b["name"] != ""), None)
    return pd.DataFrame(
        {
            "inode": inode,
            "size": _i64(b["size_bytes"]),
            "exporter": _text(b["exporter"]),
            "name": name.to_numpy(dtype=object),
            "name_key": name.where(name.notna(), UNKNOWN).to_numpy(dtype=object),
            "held": held,
        }
    )


def _apps(
    a: Analysis, procs: pd.DataFrame, pss_unknown: np.ndarray, coverage: Coverage
) -> pd.DataFrame:
    """Apps by owner uid; an app with an unreadable process is listed (held nothing, or
    not: unknown) and its figures are ``<NA>``."""
    from dmaprof.analyze.attribution import app_label
    from dmaprof.analyze.uids import uid_kind

    if not coverage.uids:
        return _empty_apps()
    x = a.apps
    owner = procs["owner_uid"].to_numpy(dtype=np.int64)
    unreadable = procs["unreadable"].to_numpy(dtype=bool)
    rss_unknown_uids = np.unique(owner[unreadable & (owner >= 0)])
    pss_unknown_uids = np.unique(owner[pss_unknown & (owner >= 0)])
    uids = _i64(x["uid"])
    extra = np.setdiff1d(rss_unknown_uids, uids)
    pkg_of: dict[int, list[str]] = {}
    pk = a.packages
    for pkg, uid in zip(pk["package"].tolist(), pk["uid"].tolist(), strict=True):
        pkg_of.setdefault(int(uid), []).append(str(pkg))
    extra_pkgs = [tuple(sorted(pkg_of.get(int(u), []))) for u in extra.tolist()]
    all_uids = np.concatenate([uids, extra])
    zeros = np.zeros(extra.size, dtype=np.int64)

    def col(name: str) -> np.ndarray:
        return np.concatenate([_i64(x[name]), zeros])

    rss_unknown = np.isin(all_uids, rss_unknown_uids)
    pss_unknown_rows = np.isin(all_uids, pss_unknown_uids)
    charged_unknown = rss_unknown if a.charge == "full" else pss_unknown_rows
    return pd.DataFrame(
        {
            "uid": all_uids,
            "label": np.concatenate(
                [
                    _text(x["label"]),
                    np.array(
                        [
                            app_label(int(u), p)
                            for u, p in zip(extra.tolist(), extra_pkgs, strict=True)
                        ],
                        dtype=object,
                    ),
                ]
            ),
            "kind": np.concatenate(
                [
                    _text(x["kind"]),
                    np.array([uid_kind(int(u)) for u in extra.tolist()], dtype=object),
                ]
            ),
            "packages": np.concatenate(
                [x["packages"].to_numpy(dtype=object), _objects(extra_pkgs)]
            ),
            "processes": masked(col("processes"), rss_unknown),
            "rss": masked(col("rss_bytes"), rss_unknown),
            "charged": masked(col("charged_bytes"), charged_unknown),
            "shared_pss": masked(col("shared_pss_bytes"), pss_unknown_rows),
            "buffers": masked(col("buffers"), rss_unknown),
        }
    )


def _empty_apps() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "uid": np.zeros(0, np.int64),
            "label": np.zeros(0, object),
            "kind": np.zeros(0, object),
            "packages": np.zeros(0, object),
        }
    )
    for column in APP_INTS:
        frame[column] = pd.array([], dtype="Int64")
    return frame


def _objects(items: list[Any]) -> np.ndarray:
    """A 1-d object array of ``items`` (numpy would turn a list of tuples into 2-d)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def _ancestor_paths(paths: np.ndarray) -> set[str]:
    """Every cgroup path in ``paths`` and all of its ancestors ("/" included)."""
    out: set[str] = set()
    for path in set(paths.tolist()):
        if not isinstance(path, str) or not path:
            continue
        parts = [p for p in path.split("/") if p]
        out.update("/" + "/".join(parts[:k]) for k in range(len(parts) + 1))
    return out


def _cgroups(a: Analysis, procs: pd.DataFrame, pss_unknown: np.ndarray) -> pd.DataFrame:
    """Cgroups; own figures ``<NA>`` when an unreadable process is directly in the cgroup,
    subtree figures when one is anywhere below it."""
    x = a.cgroup_usage
    path = _text(x["path"])
    cg = procs["cgroup"].to_numpy(dtype=object)
    unreadable = procs["unreadable"].to_numpy(dtype=bool)
    own_rss = np.isin(path, cg[unreadable])
    own_pss = np.isin(path, cg[pss_unknown])
    tree_rss = np.isin(path, list(_ancestor_paths(cg[unreadable])))
    tree_pss = np.isin(path, list(_ancestor_paths(cg[pss_unknown])))
    charged_own = own_rss if a.charge == "full" else own_pss
    charged_tree = tree_rss if a.charge == "full" else tree_pss
    return pd.DataFrame(
        {
            "path": path,
            "processes": masked(_i64(x["processes_with_descendants"]), np.zeros(len(x), bool)),
            "rss": masked(_i64(x["rss_bytes"]), own_rss),
            "charged": masked(_i64(x["charged_bytes"]), charged_own),
            "rss_tree": masked(_i64(x["rss_bytes_with_descendants"]), tree_rss),
            "charged_tree": masked(_i64(x["charged_bytes_with_descendants"]), charged_tree),
        }
    )


def _groups(x: pd.DataFrame, coverage: Coverage, listed: bool) -> pd.DataFrame:
    """Exporters or names: counts and bytes stay known when the inventory lists every buffer
    by that key (``listed``); who holds them does not when a holder was unreadable."""
    data: dict[str, Any] = {"key": _text(x["key"], UNKNOWN)}
    held_unknown = not coverage.holders_complete
    for column in GROUP_INTS:
        unknown = held_unknown and (column not in ("buffers", "bytes") or not listed)
        data[column] = masked(_i64(x[column]), np.full(len(x), unknown))
    return pd.DataFrame(data)
