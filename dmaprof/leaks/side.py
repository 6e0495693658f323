"""One side of a comparison: what a diff, a trend or `top` needs from one analysed capture.

``Side`` keeps small, typed frames (no raw dump, no references table), so a long series can
be summarised capture by capture without keeping captures in memory. Built with
:func:`side_from_capture` (analyses the capture) or :func:`side_from_analysis` (an
``Analysis`` you already have).

Frames (every byte column ``int64``):

* ``processes``: one row per userspace process (kernel threads and the collector excluded):
  ``pid``, ``start`` (stat field 22, ``-1`` when unknown), ``name`` (display name: argv[0]'s
  basename, else the comm), ``comm``, ``uid``, ``owner_uid``, ``cgroup``, ``rss``, ``pss``
  (charged under the charge policy, as ``pss_bytes`` of ``dmaprof.report/1``),
  ``shared_pss`` (exact proportional share), ``buffers``, ``fd_only``, ``map_only``, ``both``,
  ``map_only_bytes``, ``fds``, ``maps``, ``unreadable``;
* ``holdings``: ``pid``, ``inode``, ``fds``, ``maps``, ``size`` (one row per process and
  buffer it holds);
* ``buffers``: ``inode``, ``size``, ``exporter`` (``""`` when unknown), ``name`` (nullable),
  ``name_key`` (``<unknown>`` when unnamed), ``held`` (by at least one process);
* ``apps``: ``uid``, ``label``, ``kind``, ``packages`` (tuple), ``processes``, ``rss``,
  ``pss``, ``shared_pss``, ``buffers``;
* ``cgroups``: ``path``, ``rss``, ``pss``, ``rss_tree``, ``pss_tree`` (with descendants),
  ``processes``;
* ``exporters`` / ``names``: ``key``, ``buffers``, ``bytes``, ``userspace_buffers``,
  ``userspace_bytes``, ``kernel_only_buffers``, ``kernel_only_bytes``, ``holders``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze.analysis import Analysis
from dmaprof.capture import Capture

UNKNOWN = "<unknown>"  # the key dmaprof's roll-ups use for a missing exporter or name

PROCESS_INTS = (
    "rss", "pss", "shared_pss", "buffers", "fd_only", "map_only", "both", "map_only_bytes",
    "fds", "maps",
)  # fmt: skip
GROUP_INTS = (
    "buffers", "bytes", "userspace_buffers", "userspace_bytes", "kernel_only_buffers",
    "kernel_only_bytes", "holders",
)  # fmt: skip
APP_INTS = ("processes", "rss", "pss", "shared_pss", "buffers")
CGROUP_INTS = ("processes", "rss", "pss", "rss_tree", "pss_tree")
TOTAL_KEYS = (
    "buffers", "bytes", "userspace_buffers", "userspace_bytes", "kernel_only_buffers",
    "kernel_only_bytes", "pss_bytes", "charged_bytes", "anon_fds", "anon_fd_bytes",
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

    def as_dict(self) -> dict[str, Any]:
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
        }


@dataclass
class Side:
    info: CaptureInfo
    charge: str
    totals: dict[str, int | None]
    processes: pd.DataFrame
    holdings: pd.DataFrame
    buffers: pd.DataFrame
    apps: pd.DataFrame
    cgroups: pd.DataFrame
    exporters: pd.DataFrame
    names: pd.DataFrame
    lower_bound: bool = False
    warnings: list[str] = field(default_factory=list)
    # what the capture's source cannot tell (bugreport, dmabuf_dump: no fd/map split, no
    # start times...): one message each, from the analysis's ``limitations``
    limitations: list[str] = field(default_factory=list)
    # process columns the source cannot give (e.g. fds, maps, fd_only: no fd/map split)
    unknown: list[str] = field(default_factory=list)


def side_from_capture(
    capture: Capture, *, charge: str = "shared", service_regex: str | None = None
) -> Side:
    from dmaprof.sources import analyze_source

    analysis = analyze_source(capture, charge=charge, service_regex=service_regex)
    return side_from_analysis(analysis, CaptureInfo.from_capture(capture, analysis))


def _i64(series: pd.Series, fill: int = 0) -> np.ndarray:
    return series.to_numpy(dtype=np.int64, na_value=fill)


def _text(series: pd.Series, fill: str = "") -> np.ndarray:
    return series.astype(object).where(series.notna(), fill).to_numpy(dtype=object)


def side_from_analysis(analysis: Analysis, info: CaptureInfo) -> Side:
    """Project an ``Analysis`` onto the frames of a ``Side`` (vectorised; no row loops)."""
    a = analysis
    t = a.totals
    missing: dict[str, list[str]] = getattr(a, "unknown", None) or {}
    totals: dict[str, int | None] = {
        k: None if k in missing.get("totals", ()) else getattr(t, k) for k in TOTAL_KEYS
    }
    split = [c for c in missing.get("usage", ()) if c in PROCESS_INTS]
    unknown = [*split, "map_only_bytes"] if "map_only" in split else split
    return Side(
        info=info,
        charge=a.charge,
        totals=totals,
        processes=_processes(a),
        holdings=_holdings(a),
        buffers=_buffers(a),
        apps=_apps(a),
        cgroups=_cgroups(a),
        exporters=_groups(a.exporters),
        names=_groups(a.names),
        lower_bound=bool(a.coverage.lower_bound),
        warnings=list(a.warnings),
        limitations=[str(x.get("message")) for x in getattr(a, "limitations", None) or []],
        unknown=unknown,
    )


def display_names(argv0: pd.Series, comm: pd.Series) -> np.ndarray:
    """argv[0]'s basename (``/system/bin/surfaceflinger`` -> ``surfaceflinger``; an app's
    ``com.example.app:remote`` stays whole), else the comm."""
    a0 = argv0.astype(object).where(argv0.notna(), "")
    base = a0.astype(str).str.rsplit("/", n=1).str[-1]
    fallback = comm.astype(object).where(comm.notna(), "?")
    return base.where(base != "", fallback).to_numpy(dtype=object)


def _processes(a: Analysis) -> pd.DataFrame:
    u = a.usage
    p = a.processes[["pid", "start_time_ticks", "argv0", "is_kernel_thread", "is_collector"]]
    m = u.merge(p, on="pid", how="left", validate="one_to_one")
    keep = ~(m["is_kernel_thread"].fillna(False).astype(bool)
             | m["is_collector"].fillna(False).astype(bool))  # fmt: skip
    m = m[keep.to_numpy()]
    pid = _i64(m["pid"])
    h = a.holdings
    map_only = (h["fds"].to_numpy() == 0) & (h["maps"].to_numpy() > 0)
    mob = pd.Series(h["size_bytes"].to_numpy(dtype=np.int64)[map_only]).groupby(
        h["pid"].to_numpy(dtype=np.int64)[map_only]
    ).sum()
    out = pd.DataFrame(
        {
            "pid": pid,
            "start": _i64(m["start_time_ticks"], -1),
            "name": display_names(m["argv0"], m["name"]),
            "comm": _text(m["name"], "?"),
            "uid": _i64(m["uid"], -1),
            "owner_uid": _i64(m["owner_uid"], -1),
            "cgroup": _text(m["cgroup"]),
            "rss": _i64(m["rss_bytes"]),
            "pss": _i64(m["charged_bytes"]),
            "shared_pss": _i64(m["pss_bytes"]),
            "buffers": _i64(m["buffers"]),
            "fd_only": _i64(m["fd_only"]),
            "map_only": _i64(m["map_only"]),
            "both": _i64(m["both"]),
            "map_only_bytes": mob.reindex(pid, fill_value=0).to_numpy(dtype=np.int64),
            "fds": _i64(m["fds"]),
            "maps": _i64(m["maps"]),
            "unreadable": m["unreadable"].to_numpy(dtype=bool),
        }
    )
    return out.reset_index(drop=True)


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


def _apps(a: Analysis) -> pd.DataFrame:
    x = a.apps
    return pd.DataFrame(
        {
            "uid": _i64(x["uid"]),
            "label": _text(x["label"]),
            "kind": _text(x["kind"]),
            "packages": x["packages"].to_numpy(dtype=object),
            "processes": _i64(x["processes"]),
            "rss": _i64(x["rss_bytes"]),
            "pss": _i64(x["charged_bytes"]),
            "shared_pss": _i64(x["pss_bytes"]),
            "buffers": _i64(x["buffers"]),
        }
    )


def _cgroups(a: Analysis) -> pd.DataFrame:
    x = a.cgroup_usage
    return pd.DataFrame(
        {
            "path": _text(x["path"]),
            "processes": _i64(x["processes_with_descendants"]),
            "rss": _i64(x["rss_bytes"]),
            "pss": _i64(x["charged_bytes"]),
            "rss_tree": _i64(x["rss_bytes_with_descendants"]),
            "pss_tree": _i64(x["charged_bytes_with_descendants"]),
        }
    )


def _groups(x: pd.DataFrame) -> pd.DataFrame:
    data: dict[str, Any] = {"key": _text(x["key"], UNKNOWN)}
    for column in GROUP_INTS:
        data[column] = _i64(x[column])
    return pd.DataFrame(data)
