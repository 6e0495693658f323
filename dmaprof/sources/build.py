"""From what ``dmabuf_dump`` printed to dmaprof's tables (an :class:`Analysis`).

The tables are the collector's (``dmaprof.analyze.schema``), built from less information, and
the analysis says which figures the source cannot give (:attr:`Analysis.unknown`, shown
as null in JSON and ``unknown`` in tables) and why (:attr:`Analysis.limitations`):

* **holdings** come from the per-process view (a process lists every buffer it holds by fd or
  mapping) and from ``-a``'s table (which also splits fd and map references). Without ``-a``
  the fd/map split is unknown: ``fds``, ``maps``, ``fd_only``, ``map_only``, ``both``.
* **sizes** are exact when ``-b`` lists the buffer (bytes); otherwise the view's ``Rss`` in kB
  times 1024 (``size_source`` ``kb_estimate``, ``size_estimated`` true): the tool prints
  ``size / 1024`` rounded down, so the estimate is at most 1023 bytes low.
* **pss** follows the collector's rule (every holder gets ``size // n``, the first
  ``size % n`` holders by pid one byte more) when every holder of a buffer is listed; when a
  listing is partial (``dmabuf_dump PID``, an excerpt), ``n`` is the tool's ``nr_procs`` and
  each listed holder gets ``size // nr_procs``.
* **kernel-only** buffers are those ``-b`` lists that no process holds; without ``-b`` only
  their total is known (the summary's ``kernel_rss``).
* **processes** have no start time, cgroup or cmdline; a uid only when the source has a process
  list (a bugreport's ``ps``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze.analysis import Analysis
from dmaprof.analyze.attribution import (
    CHARGE_POLICIES,
    DEFAULT_SERVICE_REGEX,
    exact_split,
    service_mask,
)
from dmaprof.analyze.reporttypes import Limitation
from dmaprof.analyze.rollups import group_usage
from dmaprof.analyze.schema import BUFFERS, HOLDINGS, INVENTORY, KERNEL_ONLY, USAGE
from dmaprof.analyze.totals import Coverage, Inventory, Totals, held_totals
from dmaprof.analyze.uids import is_app_uid, owner_uid
from dmaprof.capture.dump import parse_dump
from dmaprof.sources.bugreport import PsEntry
from dmaprof.sources.dmabuf_dump import DmabufDump, PerBufferStat
from dmaprof.sources.limits import (
    StatedTotal,
    check_tool_totals,
    limitation,
    source_limitations,
    stated_limitation,
    stated_totals,
)
from dmaprof.sources.sourcetables import (
    Buffer,
    apps_table,
    charge_of,
    full_name,
    pools_table,
    processes_table,
    references_table,
    unparsed_table,
)

__all__ = ["SourceInput", "build_analysis", "full_name", "limitation"]

#: A dump with no section: the ``Analysis.dump`` of a source that is not a collector dump.
_EMPTY_DUMP = b"DMAPROF-DUMP 1 source\n@source done\n"


@dataclass
class SourceInput:
    kind: str  # bugreport | dmabuf_dump
    parsed: DmabufDump
    device: dict[str, Any] = field(default_factory=dict)
    ps: dict[int, PsEntry] = field(default_factory=dict)
    #: pid -> candidate (full name, where from): argv[0] from the bugreport's top/ps/meminfo
    names: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    meminfo: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    limitations: list[Limitation] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)


#: (PROCESS TOTAL Rss kB, its Pss kB, sum of the rows' Rss kB, of their Pss kB)
ToolTotals = dict[int, tuple[int | None, int | None, int, int]]


@dataclass
class _Views:
    """What the views of the output say, merged: buffers, names, who holds what."""

    bufs: dict[int, Buffer] = field(default_factory=dict)
    comm: dict[int, str] = field(default_factory=dict)
    held: dict[tuple[int, int], list[int | None]] = field(default_factory=dict)  # [fds, maps]
    tool_totals: ToolTotals = field(default_factory=dict)
    stats: dict[int, PerBufferStat] = field(default_factory=dict)
    split_known: bool = False  # -a split fd and map references for every holding
    holder_view: bool = False  # some view says which process holds which buffer


def _read_views(d: DmabufDump) -> _Views:
    v = _Views()
    for block in d.processes:
        v.comm.setdefault(block.pid, block.comm)
        rss_kb = pss_kb = 0
        for row in block.rows:
            b = v.bufs.setdefault(row.inode, Buffer(row.inode))
            b.kb = max(b.kb or 0, row.rss_kb)
            b.nr_procs = max(b.nr_procs, row.nr_procs)
            b.exporter = b.exporter or row.exporter
            b.name = b.name or row.name
            v.held.setdefault((block.pid, row.inode), [None, None])
            rss_kb += row.rss_kb
            pss_kb += row.pss_kb
        v.tool_totals[block.pid] = (block.total_rss_kb, block.total_pss_kb, rss_kb, pss_kb)
    table = d.table
    if table is not None:
        for c, pid in table.processes:
            if pid >= 0:
                v.comm.setdefault(pid, c)
        for trow in table.rows:
            b = v.bufs.setdefault(trow.inode, Buffer(trow.inode))
            b.kb = max(b.kb or 0, trow.size_kb)
            b.nr_procs = max(b.nr_procs, len(trow.refs))
            for pid, (fd, mp) in trow.refs.items():
                v.held[(pid, trow.inode)] = [fd, mp]
    v.holder_view = bool(d.processes) or (table is not None and bool(table.rows))
    # the split is known only where -a said it for every holding (not for a holding only the
    # per-process view lists)
    v.split_known = (
        table is not None
        and table.split
        and bool(table.rows)
        and all(fd is not None and mp is not None for fd, mp in v.held.values())
    )
    v.stats = {s.inode: s for s in d.per_buffer or []}
    for s in v.stats.values():
        b = v.bufs.setdefault(s.inode, Buffer(s.inode))
        b.exact = s.size
        b.in_stats = True
        b.exporter = b.exporter or (s.exporter or None)
    return v


@dataclass
class _Buffers:
    """The buffers table and its columns as arrays (by inode)."""

    frame: pd.DataFrame
    inventory: pd.DataFrame
    listed: list[Buffer]
    inodes: np.ndarray
    size: np.ndarray
    estimated: np.ndarray
    in_inventory: np.ndarray


def _buffers(v: _Views, warnings: list[str]) -> _Buffers:
    inodes = np.array(sorted(v.bufs), dtype=np.int64)
    blist = [v.bufs[int(i)] for i in inodes]
    size = np.array(
        [b.exact if b.exact is not None else (b.kb or 0) * 1024 for b in blist], dtype=np.int64
    )
    estimated = np.array([b.exact is None for b in blist], dtype=np.bool_)
    mismatch = sum(
        1 for b in blist if b.exact is not None and b.kb is not None and b.exact // 1024 != b.kb
    )
    if mismatch:
        warnings.append(
            f"{mismatch} buffers have another size in dmabuf_dump -b than in the per-process "
            "view (the two ran at different times); -b's exact size is used"
        )
    in_inventory = np.array([b.in_stats and v.holder_view for b in blist], dtype=np.bool_)
    frame = BUFFERS.frame(
        {
            "inode": inodes,
            "size_bytes": size,
            "size_source": pd.Categorical(
                ["per_buffer_stats" if not e else "kb_estimate" for e in estimated],
                categories=["per_buffer_stats", "kb_estimate"],
            ),
            "size_estimated": estimated,
            "exporter": [b.exporter for b in blist],
            "name": [b.name for b in blist],
            "attached_devices": [() for _ in blist],
            "in_inventory": in_inventory,
            "sources": [
                "+".join(
                    x
                    for x, on in (("dmabuf_dump", b.kb is not None), ("dmabuf_dump_b", b.in_stats))
                    if on
                )
                for b in blist
            ],
        },
        length=len(blist),
    )
    stats = list(v.stats.values())
    inventory = INVENTORY.frame(
        {
            "source": pd.Categorical(["dmabuf_dump_b"] * len(stats)),
            "inode": pd.array([s.inode for s in stats], dtype="Int64"),
            "size_bytes": pd.array([s.size for s in stats], dtype="Int64"),
            "exporter": [s.exporter for s in stats],
        },
        length=len(stats),
    )
    return _Buffers(frame, inventory, blist, inodes, size, estimated, in_inventory)


@dataclass
class _Holdings:
    """One entry per (pid, inode), by inode then pid."""

    pairs: list[tuple[int, int]]
    pid: np.ndarray
    inode: np.ndarray
    size: np.ndarray
    fds: np.ndarray
    maps: np.ndarray
    holders: np.ndarray
    pss: np.ndarray
    partial: np.ndarray  # more holders than the listing shows


def _holdings(v: _Views, size_of: dict[int, int], warnings: list[str]) -> _Holdings:
    """Each holder's share: the collector's exact split when every holder of a buffer is
    listed, else ``size // nr_procs`` as the tool counts it."""
    pairs = sorted(v.held, key=lambda pi: (pi[1], pi[0]))  # by inode, then pid
    h_ino = np.array([i for _, i in pairs], dtype=np.int64)
    h_size = np.array([size_of[i] for _, i in pairs], dtype=np.int64)
    known = np.zeros(len(pairs), dtype=np.int64)
    rank = np.zeros(len(pairs), dtype=np.int64)
    if pairs:
        starts = np.flatnonzero(np.r_[True, h_ino[1:] != h_ino[:-1]])
        counts = np.diff(np.append(starts, len(pairs)))
        gid = np.repeat(np.arange(starts.size), counts)
        known = counts[gid]
        rank = np.arange(len(pairs)) - starts[gid]
    nr = np.array([v.bufs[int(i)].nr_procs for i in h_ino], dtype=np.int64)
    complete = nr <= known
    holders = np.maximum(known, nr)
    pss = np.where(
        complete, exact_split(h_size, known, rank), h_size // np.maximum(holders, 1)
    ).astype(np.int64)
    if (~complete).any():
        warnings.append(
            f"{len(set(h_ino[~complete].tolist()))} buffers are held by more processes than the "
            "listing shows (dmabuf_dump PID, or an excerpt): their pss is size // nr_procs as "
            "the tool counts it, and the other holders are missing"
        )
    return _Holdings(
        pairs=pairs,
        pid=np.array([p for p, _ in pairs], dtype=np.int64),
        inode=h_ino,
        size=h_size,
        fds=np.array([v.held[pi][0] or 0 for pi in pairs], dtype=np.int64),
        maps=np.array([v.held[pi][1] or 0 for pi in pairs], dtype=np.int64),
        holders=holders,
        pss=pss,
        partial=~complete,
    )


def build_analysis(
    src: SourceInput, *, charge: str = "shared", service_regex: str | None = None
) -> Analysis:
    if charge not in CHARGE_POLICIES:
        raise ValueError(f"unknown charge policy {charge!r} (one of {', '.join(CHARGE_POLICIES)})")
    regex = service_regex if service_regex is not None else DEFAULT_SERVICE_REGEX
    d = src.parsed
    warnings = list(src.warnings)
    limitations = list(src.limitations)
    v = _read_views(d)
    bt = _buffers(v, warnings)
    pids = sorted(v.comm.keys() | {p for p, _ in v.held})
    procs = processes_table(pids, v.comm, src.ps, src.names)
    h = _holdings(v, dict(zip(bt.inodes.tolist(), bt.size.tolist(), strict=True)), warnings)
    p_index = {pid: k for k, pid in enumerate(pids)}
    h_pj = np.array([p_index[int(p)] for p in h.pid], dtype=np.int64)
    is_svc = service_mask(procs, regex)
    uids = procs["uid"].to_numpy(dtype=np.int64, na_value=-1)
    is_app = np.array([u >= 0 and is_app_uid(int(u)) for u in uids], dtype=np.bool_)
    charged = charge_of(charge, h.inode, h.size, h.pss, is_app[h_pj], is_svc[h_pj])
    holdings = HOLDINGS.frame(
        {
            "pid": h.pid.astype(np.int32),
            "inode": h.inode,
            "fds": h.fds,
            "maps": h.maps,
            "mapped_bytes": np.zeros(len(h.pairs), np.int64),
            "size_bytes": h.size,
            "holders": h.holders,
            "shared_pss_bytes": h.pss,
            "charged_bytes": charged,
        },
        length=len(h.pairs),
    )
    owners, display = _owners_and_names(procs, pids, v.comm, uids)
    usage, stated, extra_rss = _usage(
        v, h, h_pj, charged, procs, pids, owners, is_svc, charge, display
    )
    check_tool_totals(
        v.tool_totals, usage, display, warnings, bool(h.partial.any()), {st.pid for st in stated}
    )
    if stated:
        limitations.append(stated_limitation(stated))
    held_mask = np.isin(bt.inodes, h.inode)
    ko = bt.frame[bt.in_inventory & ~held_mask]
    totals = _totals(d, v, bt, held_mask, ko, usage, warnings)
    coverage = _coverage(d, src, v, pids, bool(h.partial.any()), warnings)
    unknown = source_limitations(
        src.kind, d, v.split_known, v.holder_view, totals, limitations, procs
    )
    unparsed = unparsed_table(d)
    if len(unparsed):
        warnings.append(
            f"{len(unparsed)} lines of the dmabuf_dump output not understood; see the "
            "unparsed table"
        )
    warnings.extend(f"dmabuf_dump said: {note}" for note in d.notes)
    return Analysis(
        dump=parse_dump(_EMPTY_DUMP),
        charge=charge,
        service_regex=regex,
        device=dict(src.device),
        processes=procs,
        references=references_table(h.pairs, v.held, h.size, v.bufs, v.split_known),
        inventory=bt.inventory,
        buffers=bt.frame,
        holdings=holdings,
        usage=usage,
        apps=apps_table(usage, owners, holdings, h_pj, charge, display, extra_rss),
        exporters=group_usage(bt.frame, held_mask, holdings, "exporter"),
        names=group_usage(bt.frame, held_mask, holdings, "name"),
        kernel_only=KERNEL_ONLY.frame(
            {
                "inode": ko["inode"].to_numpy(dtype=np.int64),
                "size_bytes": ko["size_bytes"].to_numpy(dtype=np.int64),
                "exporter": ko["exporter"].array,
                "name": ko["name"].array,
                "attached_devices": [() for _ in range(len(ko))],
            },
            length=len(ko),
        ),
        pools=pools_table(d, src.meminfo),
        unparsed=unparsed,
        totals=totals,
        coverage=coverage,
        unparsed_total=len(unparsed),
        warnings=warnings,
        source=dict(src.source),
        limitations=limitations,
        unknown=unknown,
        meminfo=dict(src.meminfo),
        named_inodes=frozenset(b.inode for b in bt.listed if b.name),
        stated_totals=[st.as_dict() for st in stated],
    )


def _owners_and_names(
    procs: pd.DataFrame, pids: list[int], comm: dict[int, str], uids: np.ndarray
) -> tuple[np.ndarray, list[Any]]:
    """Each process's owner uid (-1: unknown) and the name shown for it (argv[0], else comm)."""
    owners = np.array(
        [
            owner_uid(int(u), None, c, {}) if u >= 0 else -1
            for u, c in zip(uids.tolist(), [comm.get(p) for p in pids], strict=True)
        ],
        dtype=np.int64,
    )
    argv0_list = procs["argv0"].astype(object).tolist()
    comm_list = procs["name"].astype(object).tolist()
    display = [a if isinstance(a, str) else n for a, n in zip(argv0_list, comm_list, strict=True)]
    return owners, display


def _usage(
    v: _Views,
    h: _Holdings,
    h_pj: np.ndarray,
    charged: np.ndarray,
    procs: pd.DataFrame,
    pids: list[int],
    owners: np.ndarray,
    is_svc: np.ndarray,
    charge: str,
    display: list[Any],
) -> tuple[pd.DataFrame, list[StatedTotal], np.ndarray]:
    """The usage table, the blocks whose PROCESS TOTAL stands, and the rss those add."""
    npr = len(pids)
    n = len(h.pairs)

    def per_proc(values: np.ndarray, sel: np.ndarray | None = None) -> np.ndarray:
        if not n:
            return np.zeros(npr, np.int64)
        ok = np.ones(n, np.bool_) if sel is None else sel
        return np.bincount(h_pj[ok], weights=values[ok], minlength=npr).astype(np.int64)

    ones = np.ones(n, np.int64)
    est_h = np.array([v.bufs[int(i)].exact is None for i in h.inode], dtype=np.bool_)
    rss_p = per_proc(h.size)
    pss_p = per_proc(h.pss)
    charged_p = rss_p.copy() if charge == "full" else per_proc(charged)
    est_p = per_proc(ones, est_h) > 0
    stated = stated_totals(v.tool_totals, pids, display, rss_p, est_p)
    extra_rss = np.zeros(npr, np.int64)
    index = {pid: k for k, pid in enumerate(pids)}
    for st in stated:
        # the block's PROCESS TOTAL stands over its rows (see stated_totals)
        j = index[st.pid]
        new_rss = st.total_rss_kb * 1024
        new_pss = st.total_pss_kb * 1024 if st.total_pss_kb is not None else int(pss_p[j])
        extra_rss[j] = new_rss - rss_p[j]
        charged_p[j] = new_rss if charge == "full" else max(0, charged_p[j] + new_pss - pss_p[j])
        rss_p[j], pss_p[j], est_p[j] = new_rss, new_pss, True
    usage = USAGE.frame(
        {
            "pid": np.array(pids, dtype=np.int32),
            "name": procs["name"].array,
            "uid": procs["uid"].array,
            "owner_uid": pd.array(
                [int(o) if o >= 0 else None for o in owners.tolist()], dtype="Int32"
            ),
            "cgroup": procs["cgroup"].array,
            "is_service": is_svc,
            "rss_bytes": rss_p,
            "shared_pss_bytes": pss_p,
            "charged_bytes": charged_p,
            "buffers": per_proc(ones),
            "fd_only": per_proc(ones, (h.fds > 0) & (h.maps == 0)),
            "map_only": per_proc(ones, (h.fds == 0) & (h.maps > 0)),
            "both": per_proc(ones, (h.fds > 0) & (h.maps > 0)),
            "fds": per_proc(h.fds),
            "maps": per_proc(h.maps),
            "rss_estimated": est_p,
            "kernel_dmabuf_rss_bytes": procs["kernel_dmabuf_rss_bytes"].array,
            "kernel_dmabuf_pss_bytes": procs["kernel_dmabuf_pss_bytes"].array,
        },
        length=npr,
    )
    return usage, stated, extra_rss


def _totals(
    d: DmabufDump,
    v: _Views,
    bt: _Buffers,
    held_mask: np.ndarray,
    ko: pd.DataFrame,
    usage: pd.DataFrame,
    warnings: list[str],
) -> Totals:
    """The inventory is ``-b``'s list when there is a holder view, else the summary line's
    figures (total and kernel_rss) when the tool trusted them."""
    summary = d.summary
    bad_summary = any(
        n.startswith("Warning: Could not get total") or n.startswith("Warning: Total dmabufs <")
        for n in d.notes
    )
    inv = Inventory()
    ko_figures: tuple[int | None, int | None] = (None, None)
    if v.stats and v.holder_view:
        inv = Inventory("dmabuf_dump_b", len(v.stats), int(sum(s.size for s in v.stats.values())))
        ko_figures = (len(ko), int(ko["size_bytes"].sum()))
    elif (
        summary is not None
        and summary.total_kb is not None
        and summary.kernel_rss_kb is not None
        and not bad_summary
    ):
        inv = Inventory("dmabuf_dump_summary", None, summary.total_kb * 1024)
        ko_figures = (None, summary.kernel_rss_kb * 1024)
    aosp = (
        summary.kernel_rss_kb * 1024
        if summary is not None and summary.kernel_rss_kb is not None and not bad_summary
        else None
    )
    all_buffers = inv.buffers if inv.buffers is not None else len(bt.listed)
    all_bytes = inv.bytes if inv.bytes is not None else int(bt.size.sum())
    missing_held = held_mask & ~bt.in_inventory
    if inv.source == "dmabuf_dump_b" and missing_held.any():
        # held buffers -b does not list: it ran at another moment (bugreport), or an excerpt
        warnings.append(
            f"{int(missing_held.sum())} buffers held by processes are missing from dmabuf_dump "
            "-b (it ran at another moment, or the text is an excerpt): the totals add them"
        )
        all_buffers += int(missing_held.sum())
        all_bytes += int(bt.size[missing_held].sum())
    return held_totals(
        bt.size,
        held_mask,
        bt.estimated,
        usage,
        inventory=inv,
        buffers=all_buffers,
        bytes=all_bytes,
        kernel_only=ko_figures,
        held_not_in_inventory=int(missing_held.sum()) if inv.source == "dmabuf_dump_b" else 0,
        aosp_kernel_rss_bytes=aosp,
    )


def _coverage(
    d: DmabufDump,
    src: SourceInput,
    v: _Views,
    pids: list[int],
    partial: bool,
    warnings: list[str],
) -> Coverage:
    sources = {
        "dmabuf_dump": "present" if d.processes else "missing",
        "dmabuf_dump_a": "present" if d.table is not None else "missing",
        "dmabuf_dump_b": "present" if d.per_buffer is not None else "missing",
        "dmabuf_dump_summary": "present" if d.summary is not None else "missing",
        "ps": "present" if src.ps else "missing",
        "meminfo": "present" if src.meminfo else "missing",
    }
    missing = [k for k in ("dmabuf_dump", "dmabuf_dump_b") if sources[k] == "missing"]
    if sources["dmabuf_dump_a"] == "present" and "dmabuf_dump" in missing:
        missing.remove("dmabuf_dump")
    return Coverage(
        processes=len(pids),
        kernel_threads=0,
        processes_unreadable=0,
        unreadable=[],
        processes_vanished=sum(1 for p in pids if v.comm.get(p) == "N/A"),
        lower_bound=partial
        or any(w.startswith("the listing") for w in warnings)
        or not v.holder_view,
        capture_uid=None,
        sources=sources,
        missing_sources=missing,
    )
