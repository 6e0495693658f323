"""Figures of the whole device: the totals, the coverage (what could be read), the sources'
states, the heaps and the pool counters."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import objects
from dmaprof.analyze.bufinfo import Bufinfo
from dmaprof.analyze.globalfiles import BPF_ITER, BUFINFO, GlobalFiles
from dmaprof.analyze.schema import ERRORS, HEAPS, POOLS
from dmaprof.analyze.system import kib_counters
from dmaprof.analyze.unparsed import Unparsed
from dmaprof.capture.dump import Dump

__all__ = ["Coverage", "Inventory", "Totals", "held_totals", "totals_of"]


@dataclass(frozen=True)
class Totals:
    """System-wide figures, raw bytes. ``None`` means the dump cannot tell."""

    buffers: int  # buffers known (identified ones; the inventory's count without identity)
    bytes: int
    userspace_buffers: int  # held by >= 1 process
    userspace_bytes: int  # == sum of every process's pss == sum of every charged figure
    kernel_only_buffers: int | None  # in the inventory, held by no process
    kernel_only_bytes: int | None  # == bytes - userspace_bytes; None without an inventory
    inventory_source: str | None  # bpf | sysfs | debugfs
    inventory_buffers: int | None
    inventory_bytes: int | None
    held_not_in_inventory: int  # buffers held but missing from the inventory (race)
    estimated_buffers: int  # held buffers whose size is a vma estimate
    estimated_bytes: int
    anon_fds: int  # references without identity (pre-5.3 anon_inode:dmabuf, unread inode)
    anon_fd_bytes: int  # the sizes they report (not deduplicated)
    anon_maps: int
    anon_mapped_bytes: int
    shared_pss_bytes: int
    charged_bytes: int
    aosp_kernel_rss_bytes: int | None  # dmabuf_dump's kernel_rss, with its quirks

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Coverage:
    processes: int  # userspace processes examined (kernel threads and the collector excluded)
    kernel_threads: int
    processes_unreadable: int
    unreadable: list[dict[str, Any]]  # pid, name, uid, what (["fds", "maps", "fdinfo"])
    processes_vanished: int
    lower_bound: bool  # userspace figures are lower bounds (unreadable processes, truncation)
    capture_uid: int | None
    sources: dict[str, str]  # source -> present | empty | absent | denied | missing
    missing_sources: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def errors_frame(dump: Dump) -> pd.DataFrame:
    errs = list(dump.all_errors())
    if not errs:
        return ERRORS.empty()
    return ERRORS.frame(
        {
            "section": [e.section for e in errs],
            "command": [e.command for e in errs],
            "path": [e.path for e in errs],
            "pid": pd.array([e.pid for e in errs], dtype="Int32"),
            "tid": pd.array([e.tid for e in errs], dtype="Int32"),
            "reason": pd.Categorical(
                [e.reason for e in errs], categories=["denied", "vanished", "absent", "other"]
            ),
            "message": [e.message for e in errs],
        }
    )


def source_states(
    dump: Dump,
    files: GlobalFiles,
    sysfs_present: bool,
    bpf_read: bool,
    bufinfo: Bufinfo | None,
    heap_listed: bool,
) -> dict[str, str]:
    """source -> present, empty, absent or missing."""

    def sec_state(name: str) -> str:
        s = dump.section(name)
        if s is None:
            return "missing"
        errs = dump.errors_of(name)
        if s.size == 0 and errs and all(e.reason == "absent" for e in errs):
            return "absent"
        return "present" if s.size else "empty"

    out = {
        "proc": sec_state("proc"),
        "fdlinks": sec_state("fdlinks"),
        "fdinfo": sec_state("fdinfo"),
        "fdstat": sec_state("fdstat"),
        "maps": sec_state("maps"),
        "tasks": sec_state("tasks"),
        "fdaccess": sec_state("fdaccess"),
        "packages": sec_state("packages"),
        "props": sec_state("props"),
        "ion": sec_state("ion"),
    }
    sysfs_sec = dump.section("sysfs_buffers")
    out["sysfs_buffers"] = (
        "missing" if sysfs_sec is None else ("present" if sysfs_present else "absent")
    )
    out["bpf_iterator"] = files.state(BPF_ITER) if not bpf_read or files.has(BPF_ITER) else "empty"
    out["bufinfo"] = files.state(BUFINFO)
    out["dma_heap"] = "present" if heap_listed else "missing"
    return out


@dataclass(frozen=True)
class Inventory:
    """The global listing of buffers a capture read, and what it says about them."""

    source: str | None = None  # bpf | sysfs | debugfs | dmabuf_dump_b | dmabuf_dump_summary
    buffers: int | None = None
    bytes: int | None = None


def _inventory(
    inventory: pd.DataFrame, bufinfo: Bufinfo | None, sysfs_present: bool, bpf_read: bool
) -> Inventory:
    """The first global source that was read."""
    for src, read in (
        ("bpf", bpf_read),
        ("sysfs", sysfs_present),
        ("debugfs", bufinfo is not None),
    ):
        rows = inventory[inventory["source"] == src]
        trailer = src == "debugfs" and bufinfo is not None and bufinfo.total_objects is not None
        if not read or (len(rows) == 0 and not trailer):
            # an empty listing is not taken as "no buffers at all": a device always has some
            continue
        n, size = len(rows), int(rows["size_bytes"].fillna(0).to_numpy(dtype=np.int64).sum())
        if (
            trailer
            and bufinfo is not None
            and bufinfo.total_objects is not None
            and not bufinfo.complete
            and bufinfo.total_objects > len(rows)
        ):
            # an excerpt: the trailer is the better total
            return Inventory(src, bufinfo.total_objects, bufinfo.total_bytes)
        return Inventory(src, n, size)
    return Inventory()


def held_totals(
    size: np.ndarray,
    held: np.ndarray,
    estimated: np.ndarray,
    usage: pd.DataFrame,
    *,
    inventory: Inventory,
    buffers: int,
    bytes: int,
    kernel_only: tuple[int | None, int | None],
    held_not_in_inventory: int,
    aosp_kernel_rss_bytes: int | None,
    anon: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> Totals:
    """The totals from the buffers' sizes, which are held and estimated, and the usage table
    (the same for every source); the inventory figures come from the source."""
    anon_fds, anon_fd_bytes, anon_maps, anon_mapped_bytes = anon
    return Totals(
        buffers=buffers,
        bytes=bytes,
        userspace_buffers=int(held.sum()),
        userspace_bytes=int(size[held].sum()),
        kernel_only_buffers=kernel_only[0],
        kernel_only_bytes=kernel_only[1],
        inventory_source=inventory.source,
        inventory_buffers=inventory.buffers,
        inventory_bytes=inventory.bytes,
        held_not_in_inventory=held_not_in_inventory,
        estimated_buffers=int((estimated & held).sum()),
        estimated_bytes=int(size[estimated & held].sum()),
        anon_fds=anon_fds,
        anon_fd_bytes=anon_fd_bytes,
        anon_maps=anon_maps,
        anon_mapped_bytes=anon_mapped_bytes,
        shared_pss_bytes=int(usage["shared_pss_bytes"].sum()),
        charged_bytes=int(usage["charged_bytes"].sum()),
        aosp_kernel_rss_bytes=aosp_kernel_rss_bytes,
    )


def _anon(refs: pd.DataFrame) -> tuple[int, int, int, int]:
    """References without per-buffer identity: fds, their bytes, mappings, their bytes."""
    ident = refs["inode"].isna().to_numpy()
    isfd = (refs["kind"] == "fd").to_numpy()
    rsize = refs["size_bytes"].to_numpy(dtype=np.int64, na_value=0)
    rmapped = refs["mapped_bytes"].to_numpy(dtype=np.int64, na_value=0)
    return (
        int((ident & isfd).sum()),
        int(rsize[ident & isfd].sum()),
        int((ident & ~isfd).sum()),
        int(rmapped[ident & ~isfd].sum()),
    )


def totals_of(
    buffers: pd.DataFrame,
    held: np.ndarray,
    inventory: pd.DataFrame,
    bufinfo: Bufinfo | None,
    refs: pd.DataFrame,
    usage: pd.DataFrame,
    sysfs_present: bool,
    bpf_read: bool,
    warnings: list[str],
) -> Totals:
    """The totals of a collector dump."""
    size = buffers["size_bytes"].to_numpy(dtype=np.int64)
    inv_mask = buffers["in_inventory"].to_numpy()
    userspace = int(size[held].sum())
    inv = _inventory(inventory, bufinfo, sysfs_present, bpf_read)
    identified_inventory = inv.source is not None and (
        inventory[inventory["source"] == inv.source]["inode"].notna().all()
    )
    ko: tuple[int | None, int | None] = (None, None)
    if inv.source is not None and not identified_inventory:
        # pre-5.3 bufinfo: no inodes, so no attribution against it
        n_buffers, n_bytes = int(inv.buffers or 0), int(inv.bytes or 0)
    else:
        n_buffers, n_bytes = len(buffers), int(size.sum())
        if inv.source is not None:
            kernel = inv_mask & ~held
            ko = (int(kernel.sum()), int(size[kernel].sum()))
    if refs["inode"].isna().to_numpy().any() and ko[1] is not None:
        # references without identity may hold any inventory buffer: which ones are held by
        # no process cannot be told
        ko = (None, None)
        warnings.append(
            "some references have no per-buffer identity: kernel-only buffers cannot be told "
            "apart from buffers held through them (kernel_only is null)"
        )
    held_not_inv = int((held & ~inv_mask).sum()) if inv.source is not None else 0
    if held_not_inv and identified_inventory:
        warnings.append(
            f"{held_not_inv} buffers held by processes are missing from the {inv.source} "
            "inventory (created while the capture ran?)"
        )
    aosp: int | None = None
    if inv.bytes is not None:
        aosp = inv.bytes - userspace if inv.bytes >= userspace else inv.bytes
        if inv.bytes < userspace:
            warnings.append("Total dmabufs < userspace dmabufs (as dmabuf_dump would warn)")
    return held_totals(
        size,
        held,
        buffers["size_estimated"].to_numpy(),
        usage,
        inventory=inv,
        buffers=n_buffers,
        bytes=n_bytes,
        kernel_only=ko,
        held_not_in_inventory=held_not_inv,
        aosp_kernel_rss_bytes=aosp,
        anon=_anon(refs),
    )


def analysis_warnings(
    coverage: Coverage, totals: Totals, crosscheck: int, unparsed: Unparsed
) -> list[str]:
    """What a reader of a collector dump's figures must know, one sentence each."""
    out: list[str] = []
    if coverage.processes_unreadable:
        names = ", ".join(f"{u['name'] or '?'}({u['pid']})" for u in coverage.unreadable[:10])
        more = "" if coverage.processes_unreadable <= 10 else ", ..."
        out.append(
            f"{coverage.processes_unreadable} processes could not be read ({names}{more}); "
            "userspace figures are lower bounds and kernel-only figures upper bounds"
        )
    if crosscheck:
        out.append(f"{crosscheck} processes disagree with the kernel's dmabuf_rss/dmabuf_pss")
    if totals.anon_fds or totals.anon_maps:
        out.append(
            f"{totals.anon_fds} fds and {totals.anon_maps} mappings have no per-buffer identity "
            "(anon_inode:dmabuf or inode unreadable): counted, not deduplicated, not in rss/pss"
        )
    if totals.estimated_buffers:
        out.append(
            f"{totals.estimated_buffers} mapped-only buffers have no size source; their mapping "
            "length is used (estimated)"
        )
    if unparsed.total:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(unparsed.by_section.items()))
        out.append(f"{unparsed.total} lines not understood ({parts}); see the unparsed table")
    if coverage.missing_sources:
        out.append("sources missing from the dump: " + ", ".join(coverage.missing_sources))
    return out


def coverage_of(
    processes: pd.DataFrame,
    dump: Dump,
    device: dict[str, Any],
    sources: dict[str, str],
    totals: Totals,
) -> Coverage:
    kth = processes["is_kernel_thread"].to_numpy()
    coll = processes["is_collector"].to_numpy()
    user = ~kth & ~coll
    unread: list[dict[str, Any]] = []
    fa = processes["fds_access"].astype("str").to_numpy()
    ma = processes["maps_access"].astype("str").to_numpy()
    ia = processes["fdinfo_access"].astype("str").to_numpy()
    names = objects(processes["name"])
    uids = objects(processes["uid"])
    pids = processes["pid"].to_numpy()
    for i in np.flatnonzero(user & ((fa == "denied") | (ma == "denied") | (ia == "denied"))):
        what = [w for w, a in (("fds", fa[i]), ("maps", ma[i]), ("fdinfo", ia[i])) if a == "denied"]
        unread.append(
            {
                "pid": int(pids[i]),
                "name": names[i],
                "uid": None if uids[i] is None else int(uids[i]),
                "what": what,
            }
        )
    vanished = int((user & (processes["state"].astype("str") == "vanished").to_numpy()).sum())
    important = ("proc", "fdlinks", "fdinfo", "maps")
    missing = [k for k, v in sources.items() if v == "missing" and k in important]
    if sources.get("fdinfo") == "missing" and sources.get("fdstat") != "missing":
        missing.remove("fdinfo")
    return Coverage(
        processes=int(user.sum()),
        kernel_threads=int(kth.sum()),
        processes_unreadable=len(unread),
        unreadable=unread,
        processes_vanished=vanished,
        lower_bound=bool(unread) or dump.truncated or bool(missing),
        capture_uid=device.get("capture_uid"),
        sources=sources,
        missing_sources=missing,
    )


def heaps_table(heap_names: list[str], ion_heaps: list[Any], buffers: pd.DataFrame) -> pd.DataFrame:
    rows: list[tuple[str, str]] = [(h, "dma_heap") for h in heap_names]
    rows += [(h.heap, "ion_debugfs") for h in ion_heaps]
    if not rows:
        return HEAPS.empty()
    exp = objects(buffers["exporter"])
    size = buffers["size_bytes"].to_numpy(dtype=np.int64)
    nb: list[int] = []
    nbytes: list[int] = []
    for h, _src in rows:
        m = exp == h
        nb.append(int(m.sum()))
        nbytes.append(int(size[m].sum()))
    return HEAPS.frame(
        {
            "heap": [r[0] for r in rows],
            "source": pd.Categorical([r[1] for r in rows], categories=["dma_heap", "ion_debugfs"]),
            "buffers": np.array(nb, np.int64),
            "bytes": np.array(nbytes, np.int64),
        }
    )


def pools_table(
    files: GlobalFiles, ion_heaps: list[Any], bufinfo: Bufinfo | None, unparsed: Unparsed
) -> pd.DataFrame:
    rows = kib_counters(files, unparsed)
    for h in ion_heaps:
        path = f"/sys/kernel/debug/ion/heaps/{h.heap}"
        for key, counter in (
            ("total", "ion_heap_total"),
            ("total orphaned", "ion_heap_orphaned"),
            ("deferred free", "ion_heap_deferred_free"),
        ):
            if key in h.totals:
                rows.append((f"{counter}:{h.heap}", h.totals[key], None, path))
        if h.pool_total is not None:
            rows.append((f"ion_heap_pool_total:{h.heap}", h.pool_total, None, path))
    if bufinfo is not None and bufinfo.total_bytes is not None:
        rows.append(("bufinfo_total", bufinfo.total_bytes, bufinfo.total_objects, BUFINFO))
    return pools_frame(rows)


PoolRow = tuple[str, int, int | None, str]  # counter, bytes, count (or None), path


def pools_frame(rows: list[PoolRow]) -> pd.DataFrame:
    """The ``pools`` table (schema POOLS) from its rows, whatever source counted them."""
    if not rows:
        return POOLS.empty()
    return POOLS.frame(
        {
            "counter": [r[0] for r in rows],
            "bytes": np.array([r[1] for r in rows], np.int64),
            "count": pd.array([r[2] for r in rows], dtype="Int64"),
            "path": [r[3] for r in rows],
        }
    )
