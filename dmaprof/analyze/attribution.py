"""Who holds which buffer, and what each process, app, cgroup, exporter and name is charged.

Definitions (``docs/attribution.md`` is the reference; they follow AOSP ``dmabuf_dump``):

* A process **holds** a buffer when one of its fd tables (its own, or a thread's unshared
  table) has an fd to it, or it maps it. Only references with an identity (inode) count.
* ``rss`` of a process: sum of the sizes of the distinct buffers it holds.
* ``pss``: each buffer's size split among the distinct processes holding it, in exact
  integer bytes: every holder gets ``size // n``, and the first ``size % n`` holders by
  ascending pid get one byte more. So ``sum(pss) == sum(size of held buffers)``.
* Charge policies: ``shared`` (pss), ``full`` (rss) and ``client`` (a buffer held both by an
  app and by a graphics/media service is charged wholly to its app holders, split exactly
  among them; every other buffer is shared).

Everything here is vectorised (numpy sorts and ``reduceat``); no per-row Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from dmaprof.analyze._scan import isin, lookup, objects, sort_order
from dmaprof.analyze.rollups import (
    UNKNOWN_KEY,
    app_label,
    app_usage,
    cgroup_usage,
    group_starts,
    group_usage,
)
from dmaprof.analyze.schema import CROSSCHECK, HOLDINGS, KERNEL_ONLY, USAGE
from dmaprof.analyze.uids import is_app_uid, owner_uid
from dmaprof.choices import CHARGE_POLICIES

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


#: Graphics/media service processes for ``--charge client`` (matched with ``re.search``
#: against the process name, argv[0] and the basename of argv[0]; apps never match).
DEFAULT_SERVICE_PATTERNS: tuple[str, ...] = (
    r"surfaceflinger",
    r"composer",  # android.hardware.graphics.composer*, vendor display composers
    r"android\.hardware\.graphics\.allocator",
    r"gralloc",
    r"camera\.provider",  # android.hardware.camera.provider*, vendor camera providers
    r"^cameraserver$",
    r"^media\.codec$",
    r"^mediacodec$",
    r"^media\.swcodec$",
    r"^mediaswcodec$",
    r"^mediaserver$",
    r"android\.hardware\.media\.c2",
    r"android\.hardware\.media\.omx",
    # vendor names (docs/attribution.md §6 gives a public source for each)
    r"\.display\.allocator",  # Qualcomm vendor.qti.hardware.display.allocator*
    r"\.media\.c2",  # vendor codec2: vendor.qti.media.c2*, samsung.hardware.media.c2*, ...
    r"mtkcodecservice",  # MediaTek vendor.mediatek.hardware.mtkcodecservice*
    r"mediatek\.hardware\.mms",  # MediaTek multimedia service (blits graphic buffers)
    r"^camerahalserver$",  # MediaTek camera HAL
)
DEFAULT_SERVICE_REGEX = "|".join(f"(?:{p})" for p in DEFAULT_SERVICE_PATTERNS)

__all__ = [
    "CHARGE_POLICIES",
    "DEFAULT_SERVICE_PATTERNS",
    "DEFAULT_SERVICE_REGEX",
    "UNKNOWN_KEY",
    "Attribution",
    "app_label",
    "attribute",
    "compute_holdings",
    "exact_split",
    "owner_uids",
    "service_mask",
]


def exact_split(size: I64, n: I64, rank: I64) -> I64:
    """Share of the holder of 0-based ``rank`` among ``n`` holders of a buffer of ``size``
    bytes: ``size // n``, plus one byte for the first ``size % n`` ranks."""
    n = np.maximum(n, 1)
    return size // n + (rank < size % n).astype(np.int64)


@dataclass
class Attribution:
    holdings: pd.DataFrame
    usage: pd.DataFrame
    apps: pd.DataFrame
    cgroups: pd.DataFrame
    exporters: pd.DataFrame
    names: pd.DataFrame
    kernel_only: pd.DataFrame
    crosscheck: pd.DataFrame
    held: Bool  # per buffers row: held by >= 1 process


def _lookup(keys: I64, table: I64) -> tuple[I64, Bool]:
    """Index into sorted ``table`` for each key, and whether it was found."""
    return lookup(keys, table)


def service_mask(processes: pd.DataFrame, regex: str) -> Bool:
    """Processes matching the service regex (never apps)."""
    pat = re.compile(regex)
    names = objects(processes["name"])
    argv0 = objects(processes["argv0"])
    uids = objects(processes["uid"])
    out = np.zeros(len(processes), dtype=np.bool_)
    for i, (nm, a0, uid) in enumerate(zip(names, argv0, uids, strict=True)):
        if uid is not None and is_app_uid(int(uid)):
            continue
        cands = [x for x in (nm, a0, a0.rsplit("/", 1)[-1] if a0 else None) if x]
        out[i] = any(pat.search(c) for c in cands)
    return out


def owner_uids(processes: pd.DataFrame, packages: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Owner uid per process (-1 when the uid is unknown)."""
    pkg_uids: dict[str, list[int]] = {}
    for pkg, uid in zip(packages["package"].tolist(), packages["uid"].tolist(), strict=True):
        pkg_uids.setdefault(pkg, []).append(int(uid))
    uids = objects(processes["uid"])
    argv0 = objects(processes["argv0"])
    names = objects(processes["name"])
    out = np.full(len(processes), -1, dtype=np.int64)
    for i, (uid, a0, nm) in enumerate(zip(uids, argv0, names, strict=True)):
        if uid is not None:
            out[i] = owner_uid(int(uid), a0, nm, pkg_uids)
    return out


def compute_holdings(
    refs: pd.DataFrame, buffers: pd.DataFrame
) -> tuple[I64, I64, I64, I64, I64, I64, Bool, I64, I64]:
    """(pid, inode, fds, maps, mapped_bytes, size, size_estimated, item, item_sizes) per
    holding, sorted by (inode, pid). ``item`` numbers the distinct buffers 0.. (the row in
    ``buffers``, then any inode missing from it) and ``item_sizes`` gives each one's size:
    small integers that make the per-group "distinct buffers" sorts cheap."""
    ident = refs["inode"].notna().to_numpy()
    pid = refs["pid"].to_numpy(dtype=np.int64)[ident]
    ino = refs["inode"].to_numpy(dtype=np.int64, na_value=0)[ident]
    isfd = (refs["kind"] == "fd").to_numpy()[ident]
    mb = refs["mapped_bytes"].to_numpy(dtype=np.int64, na_value=0)[ident]
    if (
        ino.size
        and int(ino.max()) < (1 << 40)
        and int(ino.min()) >= 0
        and int(pid.max()) < (1 << 23)
    ):
        order = sort_order((ino << 23) | pid)
    else:
        order = np.lexsort((pid, ino))
    pid, ino, isfd, mb = pid[order], ino[order], isfd[order], mb[order]
    if pid.size:
        new = np.empty(pid.size, dtype=np.bool_)
        new[0] = True
        new[1:] = (ino[1:] != ino[:-1]) | (pid[1:] != pid[:-1])
        starts = np.flatnonzero(new)
        fds = np.add.reduceat(isfd.astype(np.int64), starts)
        maps = np.add.reduceat((~isfd).astype(np.int64), starts)
        mapped = np.add.reduceat(mb, starts)
        hp, hi = pid[starts], ino[starts]
    else:
        z = np.zeros(0, np.int64)
        fds = maps = mapped = hp = hi = z
    binodes = buffers["inode"].to_numpy(dtype=np.int64)
    bsize = buffers["size_bytes"].to_numpy(dtype=np.int64)
    j, found = _lookup(hi, binodes)
    size = np.where(found, bsize[j] if binodes.size else 0, 0)
    est = np.where(found, buffers["size_estimated"].to_numpy()[j] if binodes.size else False, False)
    item = np.where(found, j, -1)
    item_sizes = bsize
    if not found.all():
        # buffers are built from these references, so this does not happen; stay exact anyway
        missing, inv = np.unique(hi[~found], return_inverse=True)
        item[~found] = binodes.size + inv
        item_sizes = np.concatenate([bsize, np.zeros(missing.size, np.int64)])
    return hp, hi, fds, maps, mapped, size, est.astype(np.bool_), item, item_sizes


def attribute(
    processes: pd.DataFrame,
    refs: pd.DataFrame,
    buffers: pd.DataFrame,
    packages: pd.DataFrame,
    *,
    charge: str = "shared",
    service_regex: str | None = None,
) -> Attribution:
    """Holdings, per-process usage and every roll-up of one capture (module docstring)."""
    if charge not in CHARGE_POLICIES:
        raise ValueError(f"unknown charge policy {charge!r} (one of {', '.join(CHARGE_POLICIES)})")
    regex = service_regex if service_regex is not None else DEFAULT_SERVICE_REGEX
    procs = processes.sort_values("pid", kind="stable").reset_index(drop=True)
    uid_obj = objects(procs["uid"])
    is_app = np.array([u is not None and is_app_uid(int(u)) for u in uid_obj], dtype=np.bool_)
    is_svc = service_mask(procs, regex)
    owners = owner_uids(procs, packages)
    h = _holdings(procs, refs, buffers, is_app, is_svc, charge)
    holdings = h.frame()
    usage = _usage(procs, refs, h, is_svc, owners, charge)
    held = isin(buffers["inode"].to_numpy(dtype=np.int64), h.inode)
    return Attribution(
        holdings=holdings,
        usage=usage,
        apps=app_usage(
            usage, h.item, h.item_sizes, owners, h.proc_row, h.proc_found, packages, charge
        ),
        cgroups=cgroup_usage(usage, h.item, h.item_sizes, h.proc_row, h.proc_found, charge),
        exporters=group_usage(buffers, held, holdings, "exporter"),
        names=group_usage(buffers, held, holdings, "name"),
        kernel_only=_kernel_only(buffers, held),
        crosscheck=_crosscheck(usage),
        held=held,
    )


@dataclass
class _Held:
    """One row per (buffer, holding process), sorted by (inode, pid), with each holder's
    shares (:func:`compute_holdings` gives the first nine fields)."""

    pid: I64
    inode: I64
    fds: I64
    maps: I64
    mapped: I64
    size: I64
    estimated: Bool
    item: I64
    item_sizes: I64
    holders: I64  # processes holding the row's buffer
    pss: I64
    charged: I64
    proc_row: I64  # the holder's row in the pid-sorted processes (where proc_found)
    proc_found: Bool

    def frame(self) -> pd.DataFrame:
        return HOLDINGS.frame(
            {
                "pid": self.pid.astype(np.int32),
                "inode": self.inode,
                "fds": self.fds,
                "maps": self.maps,
                "mapped_bytes": self.mapped,
                "size_bytes": self.size,
                "holders": self.holders,
                "shared_pss_bytes": self.pss,
                "charged_bytes": self.charged,
            }
        )


def _holdings(
    procs: pd.DataFrame,
    refs: pd.DataFrame,
    buffers: pd.DataFrame,
    is_app: Bool,
    is_svc: Bool,
    charge: str,
) -> _Held:
    hp, hi, fds, maps, mapped, size, est, item, item_sizes = compute_holdings(refs, buffers)
    gstart, gid, n, rank = _holder_ranks(hi)
    pss = exact_split(size, n, rank)
    ppid_arr = procs["pid"].to_numpy(dtype=np.int64)
    pj, pfound = _lookup(hp, ppid_arr)
    h_app = np.where(pfound, is_app[pj] if ppid_arr.size else False, False).astype(np.bool_)
    h_svc = np.where(pfound, is_svc[pj] if ppid_arr.size else False, False).astype(np.bool_)
    charged = _charged(charge, size, pss, h_app, h_svc, gstart, gid)
    return _Held(
        hp, hi, fds, maps, mapped, size, est, item, item_sizes, n, pss, charged, pj, pfound
    )


def _holder_ranks(inodes: I64) -> tuple[I64, I64, I64, I64]:
    """For holdings sorted by (inode, pid): the first row of each buffer, and per row its
    buffer's number, its buffer's holder count and its rank among them (pid ascending)."""
    nh = inodes.size
    gstart = group_starts(inodes)
    gcount = np.diff(np.append(gstart, nh)) if nh else np.zeros(0, np.int64)
    gid = np.repeat(np.arange(gstart.size), gcount)
    n = gcount[gid] if nh else np.zeros(0, np.int64)
    rank = np.arange(nh) - gstart[gid] if nh else np.zeros(0, np.int64)
    return gstart, gid, n, rank


def _charged(
    charge: str, size: I64, pss: I64, h_app: Bool, h_svc: Bool, gstart: I64, gid: I64
) -> I64:
    """What each holding is charged under the policy ``charge``."""
    if charge == "shared":
        return pss
    if charge == "full":
        return size.copy()
    if not size.size:
        return pss
    # client: a buffer held by an app and a service is split among its app holders only
    g_app = np.add.reduceat(h_app.astype(np.int64), gstart)
    g_svc = np.add.reduceat(h_svc.astype(np.int64), gstart)
    cs = np.cumsum(h_app.astype(np.int64))
    before = np.where(gstart > 0, cs[np.maximum(gstart - 1, 0)], 0)
    app_rank = cs - 1 - before[gid]
    client_buf = (g_app > 0) & (g_svc > 0)
    app_share = exact_split(size, g_app[gid], app_rank)
    return np.where(client_buf[gid], np.where(h_app, app_share, 0), pss)


def _sum_per_process(
    rows: I64, found: Bool, n_procs: int, values: I64 | Bool, sel: Bool | None = None
) -> I64:
    """Per process: the sum of ``values`` over the entries (holdings or references) found
    at process row ``rows`` and selected by ``sel``."""
    if n_procs == 0 or rows.size == 0:
        return np.zeros(n_procs, np.int64)
    ok = found if sel is None else found & sel
    v = np.asarray(values, dtype=np.int64)
    return np.bincount(rows[ok], weights=v[ok], minlength=n_procs).astype(np.int64)


def _held_columns(h: _Held, n_procs: int, charge: str) -> dict[str, npt.NDArray[Any]]:
    """Per process: what its holdings add up to (one holding per distinct buffer)."""

    def total(values: I64 | Bool, sel: Bool | None = None) -> I64:
        return _sum_per_process(h.proc_row, h.proc_found, n_procs, values, sel)

    ones = np.ones(h.pid.size, dtype=np.int64)
    by_fd, mapped = h.fds > 0, h.maps > 0
    rss = total(h.size)
    return {
        "rss_bytes": rss,
        "shared_pss_bytes": total(h.pss),
        "charged_bytes": rss if charge == "full" else total(h.charged),
        "buffers": total(ones),
        "fd_only": total(ones, by_fd & ~mapped),
        "map_only": total(ones, ~by_fd & mapped),
        "both": total(ones, by_fd & mapped),
        "rss_estimated": total(ones, h.estimated) > 0,
    }


def _reference_columns(refs: pd.DataFrame, pids: I64) -> dict[str, I64]:
    """Per process: its references of every kind, those without identity (anon) too."""
    rpid = refs["pid"].to_numpy(dtype=np.int64)
    is_fd = (refs["kind"] == "fd").to_numpy()
    anon = refs["inode"].isna().to_numpy()
    rows, found = _lookup(rpid, pids)

    def total(values: I64, sel: Bool) -> I64:
        return _sum_per_process(rows, found, pids.size, values, sel)

    ones = np.ones(rpid.size, dtype=np.int64)
    size = refs["size_bytes"].to_numpy(dtype=np.int64, na_value=-1)
    mapped = refs["mapped_bytes"].to_numpy(dtype=np.int64, na_value=0)
    return {
        "fds": total(ones, is_fd),
        "maps": total(ones, ~is_fd),
        "anon_fds": total(ones, is_fd & anon),
        "anon_fd_bytes": total(np.maximum(size, 0), is_fd & anon),
        "anon_fd_unknown": total(ones, is_fd & anon & (size < 0)),
        "anon_maps": total(ones, ~is_fd & anon),
        "anon_mapped_bytes": total(mapped, ~is_fd & anon),
    }


def _unreadable(procs: pd.DataFrame) -> Bool:
    """Processes whose fds, maps or fdinfo were denied (kernel threads and the collector
    aside: they have nothing to read)."""
    out = np.zeros(len(procs), dtype=np.bool_)
    for col in ("fds_access", "maps_access", "fdinfo_access"):
        out |= (procs[col].astype("str") == "denied").to_numpy()
    out &= ~procs["is_kernel_thread"].to_numpy() & ~procs["is_collector"].to_numpy()
    return out


def _usage(
    procs: pd.DataFrame, refs: pd.DataFrame, h: _Held, is_svc: Bool, owners: I64, charge: str
) -> pd.DataFrame:
    """The ``usage`` table: one row per process (pid-sorted)."""
    pids = procs["pid"].to_numpy(dtype=np.int64)
    usage = USAGE.frame(
        {
            "pid": pids.astype(np.int32),
            "name": procs["name"].array,
            "uid": procs["uid"].array,
            "owner_uid": pd.array(np.where(owners >= 0, owners, 0).astype(np.int32), dtype="Int32"),
            "cgroup": procs["cgroup"].array,
            "is_service": is_svc,
            **_held_columns(h, pids.size, charge),
            **_reference_columns(refs, pids),
            "kernel_dmabuf_rss_bytes": procs["kernel_dmabuf_rss_bytes"].array,
            "kernel_dmabuf_pss_bytes": procs["kernel_dmabuf_pss_bytes"].array,
            "unreadable": _unreadable(procs),
        }
    )
    usage.loc[owners < 0, "owner_uid"] = pd.NA
    return usage


def _kernel_only(buffers: pd.DataFrame, held: Bool) -> pd.DataFrame:
    """Buffers in the inventory that no process holds."""
    ko = buffers[buffers["in_inventory"].to_numpy() & ~held]
    return KERNEL_ONLY.frame(
        {
            "inode": ko["inode"].to_numpy(dtype=np.int64),
            "size_bytes": ko["size_bytes"].to_numpy(dtype=np.int64),
            "exporter": ko["exporter"].array,
            "name": ko["name"].array,
            "count": ko["count"].array,
            "attached_devices": ko["attached_devices"].tolist(),
        }
    )


def _crosscheck(usage: pd.DataFrame) -> pd.DataFrame:
    krss = usage["kernel_dmabuf_rss_bytes"]
    kpss = usage["kernel_dmabuf_pss_bytes"]
    sel = (krss.notna() | kpss.notna()).to_numpy()
    if not sel.any():
        return CROSSCHECK.empty()
    u = usage[sel]
    rss = u["rss_bytes"].to_numpy(dtype=np.int64)
    pss = u["shared_pss_bytes"].to_numpy(dtype=np.int64)
    nb = u["buffers"].to_numpy(dtype=np.int64)
    kr = u["kernel_dmabuf_rss_bytes"].to_numpy(dtype=np.int64, na_value=-1)
    kp = u["kernel_dmabuf_pss_bytes"].to_numpy(dtype=np.int64, na_value=-1)
    rss_ok = (kr < 0) | (kr == rss)
    pss_ok = (kp < 0) | (np.abs(kp - pss) <= nb)
    bad = ~(rss_ok & pss_ok)
    if not bad.any():
        return CROSSCHECK.empty()
    return CROSSCHECK.frame(
        {
            "pid": u["pid"].to_numpy()[bad],
            "name": u["name"].array[bad],
            "rss_bytes": rss[bad],
            "kernel_rss_bytes": u["kernel_dmabuf_rss_bytes"].array[bad],
            "shared_pss_bytes": pss[bad],
            "kernel_pss_bytes": u["kernel_dmabuf_pss_bytes"].array[bad],
            "rss_agrees": rss_ok[bad],
            "pss_agrees": pss_ok[bad],
        }
    )
