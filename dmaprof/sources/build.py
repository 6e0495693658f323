"""From what ``dmabuf_dump`` printed to dmaprof's tables (an :class:`Analysis`).

The tables are the collector's (``dmaprof.analyze.schema``), built from less information, and
the analysis says which figures the source cannot give (:attr:`SourceAnalysis.unknown`, shown
as null in JSON and ``unknown`` in tables) and why (:attr:`SourceAnalysis.limitations`):

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

from dmaprof.analyze.analysis import Analysis, Coverage, Totals
from dmaprof.analyze.attribution import (
    CHARGE_POLICIES,
    DEFAULT_SERVICE_REGEX,
    _group_usage,
    exact_split,
    service_mask,
)
from dmaprof.analyze.schema import (
    APPS,
    ATTACHMENTS,
    BUFFERS,
    CGROUP_USAGE,
    CGROUPS,
    CROSSCHECK,
    ERRORS,
    HEAPS,
    HOLDINGS,
    INVENTORY,
    ION_CLIENTS,
    KERNEL_ONLY,
    PACKAGES,
    POOLS,
    PROCESSES,
    REFERENCES,
    TASKS,
    UNPARSED,
    USAGE,
)
from dmaprof.analyze.uids import is_app_uid, owner_uid, uid_kind, uid_name
from dmaprof.capture.dump import parse_dump
from dmaprof.sources.bugreport import PsEntry
from dmaprof.sources.dmabuf_dump import DmabufDump

__all__ = ["SourceAnalysis", "SourceInput", "build_analysis"]

#: A dump with no section: the ``Analysis.dump`` of a source that is not a collector dump.
_EMPTY_DUMP = b"DMAPROF-DUMP 1 source\n@source done\n"

SPLIT_COLUMNS = ["fds", "maps", "fd_only", "map_only", "both"]
ANON_TOTALS = ["anon_fds", "anon_fd_bytes", "anon_maps", "anon_mapped_bytes"]


@dataclass
class SourceAnalysis(Analysis):
    """An :class:`Analysis` of a bugreport or of dmabuf_dump text."""

    source: dict[str, Any] = field(default_factory=dict)
    limitations: list[dict[str, str]] = field(default_factory=list)
    #: table -> columns the source cannot give (null in JSON, ``unknown`` in tables)
    unknown: dict[str, list[str]] = field(default_factory=dict)
    meminfo: dict[str, int] = field(default_factory=dict)
    #: buffers whose name the tool printed (``format_dmabuf_dump`` shows them)
    named_inodes: frozenset[int] = frozenset()
    #: processes whose figures are their block's PROCESS TOTAL, not the sum of its rows
    stated_totals: list[dict[str, Any]] = field(default_factory=list)


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
    limitations: list[dict[str, str]] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)


def limitation(key: str, view: str, message: str) -> dict[str, str]:
    return {"key": key, "view": view, "message": message}


@dataclass
class _Buffer:
    inode: int
    kb: int | None = None
    exact: int | None = None
    exporter: str | None = None
    name: str | None = None
    nr_procs: int = 0
    in_stats: bool = False


def build_analysis(
    src: SourceInput, *, charge: str = "shared", service_regex: str | None = None
) -> SourceAnalysis:
    if charge not in CHARGE_POLICIES:
        raise ValueError(f"unknown charge policy {charge!r} (one of {', '.join(CHARGE_POLICIES)})")
    regex = service_regex if service_regex is not None else DEFAULT_SERVICE_REGEX
    d = src.parsed
    warnings = list(src.warnings)
    limitations = list(src.limitations)

    # -- what the views say -----------------------------------------------------------------
    bufs: dict[int, _Buffer] = {}
    comm: dict[int, str] = {}
    held: dict[tuple[int, int], list[int | None]] = {}  # (pid, inode) -> [fd refs, map refs]
    tool_totals: dict[int, tuple[int | None, int | None, int, int]] = {}
    for block in d.processes:
        comm.setdefault(block.pid, block.comm)
        rss_kb = pss_kb = 0
        for row in block.rows:
            b = bufs.setdefault(row.inode, _Buffer(row.inode))
            b.kb = max(b.kb or 0, row.rss_kb)
            b.nr_procs = max(b.nr_procs, row.nr_procs)
            b.exporter = b.exporter or row.exporter
            b.name = b.name or row.name
            held.setdefault((block.pid, row.inode), [None, None])
            rss_kb += row.rss_kb
            pss_kb += row.pss_kb
        tool_totals[block.pid] = (block.total_rss_kb, block.total_pss_kb, rss_kb, pss_kb)
    table = d.table
    split_known = table is not None and table.split and bool(table.rows)
    if table is not None:
        for c, pid in table.processes:
            if pid >= 0:
                comm.setdefault(pid, c)
        for trow in table.rows:
            b = bufs.setdefault(trow.inode, _Buffer(trow.inode))
            b.kb = max(b.kb or 0, trow.size_kb)
            b.nr_procs = max(b.nr_procs, len(trow.refs))
            for pid, (fd, mp) in trow.refs.items():
                held[(pid, trow.inode)] = [fd, mp]
    holder_view = bool(d.processes) or (table is not None and bool(table.rows))
    # the split is known only where -a said it for every holding (not for a holding only the
    # per-process view lists)
    split_known = split_known and all(fd is not None and mp is not None for fd, mp in held.values())
    stats = {s.inode: s for s in d.per_buffer or []}
    for s in stats.values():
        b = bufs.setdefault(s.inode, _Buffer(s.inode))
        b.exact = s.size
        b.in_stats = True
        b.exporter = b.exporter or (s.exporter or None)

    # -- buffers ----------------------------------------------------------------------------
    inodes = np.array(sorted(bufs), dtype=np.int64)
    blist = [bufs[int(i)] for i in inodes]
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
    in_inventory = np.array([b.in_stats and holder_view for b in blist], dtype=np.bool_)
    buffers = BUFFERS.frame(
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
                    for x, on in (
                        ("dmabuf_dump", b.kb is not None),
                        ("dmabuf_dump_b", b.in_stats),
                    )
                    if on
                )
                for b in blist
            ],
        },
        length=len(blist),
    )
    inventory = INVENTORY.frame(
        {
            "source": pd.Categorical(["dmabuf_dump_b"] * len(stats)),
            "inode": pd.array([s.inode for s in stats.values()], dtype="Int64"),
            "size_bytes": pd.array([s.size for s in stats.values()], dtype="Int64"),
            "exporter": [s.exporter for s in stats.values()],
        },
        length=len(stats),
    )

    # -- processes ----------------------------------------------------------------------------
    pids = sorted(comm.keys() | {p for p, _ in held})
    procs = _processes(pids, comm, src.ps, src.names)
    size_of = dict(zip(inodes.tolist(), size.tolist(), strict=True))

    # -- holdings -----------------------------------------------------------------------------
    pairs = sorted(held, key=lambda pi: (pi[1], pi[0]))  # by inode, then pid
    h_pid = np.array([p for p, _ in pairs], dtype=np.int64)
    h_ino = np.array([i for _, i in pairs], dtype=np.int64)
    h_size = np.array([size_of[i] for _, i in pairs], dtype=np.int64)
    h_fds = np.array([held[pi][0] or 0 for pi in pairs], dtype=np.int64)
    h_maps = np.array([held[pi][1] or 0 for pi in pairs], dtype=np.int64)
    known = np.zeros(len(pairs), dtype=np.int64)
    rank = np.zeros(len(pairs), dtype=np.int64)
    if pairs:
        starts = np.flatnonzero(np.r_[True, h_ino[1:] != h_ino[:-1]])
        counts = np.diff(np.append(starts, len(pairs)))
        gid = np.repeat(np.arange(starts.size), counts)
        known = counts[gid]
        rank = np.arange(len(pairs)) - starts[gid]
    nr = np.array([bufs[int(i)].nr_procs for i in h_ino], dtype=np.int64)
    complete = nr <= known
    holders = np.maximum(known, nr)
    pss = np.where(
        complete, exact_split(h_size, known, rank), h_size // np.maximum(holders, 1)
    ).astype(np.int64)
    partial = int((~complete).sum())
    if partial:
        warnings.append(
            f"{len(set(h_ino[~complete].tolist()))} buffers are held by more processes than the "
            "listing shows (dmabuf_dump PID, or an excerpt): their pss is size // nr_procs as "
            "the tool counts it, and the other holders are missing"
        )

    p_index = {pid: k for k, pid in enumerate(pids)}
    h_pj = np.array([p_index[int(p)] for p in h_pid], dtype=np.int64)
    is_svc = service_mask(procs, regex)
    uids = procs["uid"].to_numpy(dtype=np.int64, na_value=-1)
    is_app = np.array([u >= 0 and is_app_uid(int(u)) for u in uids], dtype=np.bool_)
    charged = _charge(
        charge,
        h_ino,
        h_size,
        pss,
        is_app[h_pj] if pairs else is_app[:0],
        is_svc[h_pj] if pairs else is_svc[:0],
    )
    holdings = HOLDINGS.frame(
        {
            "pid": h_pid.astype(np.int32),
            "inode": h_ino,
            "fds": h_fds,
            "maps": h_maps,
            "mapped_bytes": np.zeros(len(pairs), np.int64),
            "size_bytes": h_size,
            "holders": holders,
            "pss_bytes": pss,
            "charged_bytes": charged,
        },
        length=len(pairs),
    )

    references = _references(pairs, held, h_size, bufs, split_known)

    # -- per process --------------------------------------------------------------------------
    npr = len(pids)

    def per_proc(values: np.ndarray, sel: np.ndarray | None = None) -> np.ndarray:
        if not pairs:
            return np.zeros(npr, np.int64)
        ok = np.ones(len(pairs), np.bool_) if sel is None else sel
        return np.bincount(h_pj[ok], weights=values[ok], minlength=npr).astype(np.int64)

    ones = np.ones(len(pairs), np.int64)
    est_h = np.array([bufs[int(i)].exact is None for i in h_ino], dtype=np.bool_)
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
    rss_p = per_proc(h_size)
    pss_p = per_proc(pss)
    charged_p = rss_p.copy() if charge == "full" else per_proc(charged)
    est_p = per_proc(ones, est_h) > 0
    stated = _stated_totals(tool_totals, pids, display, rss_p, est_p)
    extra_rss = np.zeros(npr, np.int64)
    for st in stated:
        # the block's PROCESS TOTAL stands over its rows (see _stated_totals)
        j = p_index[st.pid]
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
            "pss_bytes": pss_p,
            "charged_bytes": charged_p,
            "buffers": per_proc(ones),
            "fd_only": per_proc(ones, (h_fds > 0) & (h_maps == 0)),
            "map_only": per_proc(ones, (h_fds == 0) & (h_maps > 0)),
            "both": per_proc(ones, (h_fds > 0) & (h_maps > 0)),
            "fds": per_proc(h_fds),
            "maps": per_proc(h_maps),
            "rss_estimated": est_p,
            "kernel_dmabuf_rss_bytes": procs["kernel_dmabuf_rss_bytes"].array,
            "kernel_dmabuf_pss_bytes": procs["kernel_dmabuf_pss_bytes"].array,
        },
        length=npr,
    )
    _check_tool_totals(
        tool_totals, usage, display, warnings, partial > 0, {st.pid for st in stated}
    )
    if stated:
        limitations.append(_stated_limitation(stated))

    held_mask = np.isin(inodes, h_ino)
    apps = _apps(usage, owners, holdings, h_pj, charge, display, extra_rss)
    exporters = _group_usage(buffers, held_mask, holdings, "exporter")
    names = _group_usage(buffers, held_mask, holdings, "name")
    ko = buffers[in_inventory & ~held_mask]
    kernel_only = KERNEL_ONLY.frame(
        {
            "inode": ko["inode"].to_numpy(dtype=np.int64),
            "size_bytes": ko["size_bytes"].to_numpy(dtype=np.int64),
            "exporter": ko["exporter"].array,
            "name": ko["name"].array,
            "attached_devices": [() for _ in range(len(ko))],
        },
        length=len(ko),
    )

    # -- totals, coverage, limitations --------------------------------------------------------
    summary = d.summary
    bad_summary = any(
        n.startswith("Warning: Could not get total") or n.startswith("Warning: Total dmabufs <")
        for n in d.notes
    )
    userspace = int(size[held_mask].sum())
    inv_source: str | None = None
    inv_buffers: int | None = None
    inv_bytes: int | None = None
    ko_buffers: int | None = None
    ko_bytes: int | None = None
    if stats and holder_view:
        inv_source = "dmabuf_dump_b"
        inv_buffers = len(stats)
        inv_bytes = int(sum(s.size for s in stats.values()))
        ko_buffers, ko_bytes = len(ko), int(ko["size_bytes"].sum())
    elif (
        summary is not None
        and summary.total_kb is not None
        and summary.kernel_rss_kb is not None
        and not bad_summary
    ):
        inv_source = "dmabuf_dump_summary"
        inv_bytes = summary.total_kb * 1024
        ko_bytes = summary.kernel_rss_kb * 1024
    aosp = (
        summary.kernel_rss_kb * 1024
        if summary is not None and summary.kernel_rss_kb is not None and not bad_summary
        else None
    )
    held_est = held_mask & estimated
    all_buffers = inv_buffers if inv_buffers is not None else len(blist)
    all_bytes = inv_bytes if inv_bytes is not None else int(size.sum())
    missing_held = held_mask & ~in_inventory
    if inv_source == "dmabuf_dump_b" and missing_held.any():
        # held buffers -b does not list: it ran at another moment (bugreport), or an excerpt
        warnings.append(
            f"{int(missing_held.sum())} buffers held by processes are missing from dmabuf_dump "
            "-b (it ran at another moment, or the text is an excerpt): the totals add them"
        )
        all_buffers += int(missing_held.sum())
        all_bytes += int(size[missing_held].sum())
    totals = Totals(
        buffers=all_buffers,
        bytes=all_bytes,
        userspace_buffers=int(held_mask.sum()),
        userspace_bytes=userspace,
        kernel_only_buffers=ko_buffers,
        kernel_only_bytes=ko_bytes,
        inventory_source=inv_source,
        inventory_buffers=inv_buffers,
        inventory_bytes=inv_bytes,
        held_not_in_inventory=int(missing_held.sum()) if inv_source == "dmabuf_dump_b" else 0,
        estimated_buffers=int(held_est.sum()),
        estimated_bytes=int(size[held_est].sum()),
        anon_fds=0,
        anon_fd_bytes=0,
        anon_maps=0,
        anon_mapped_bytes=0,
        pss_bytes=int(usage["pss_bytes"].sum()),
        charged_bytes=int(usage["charged_bytes"].sum()),
        aosp_kernel_rss_bytes=aosp,
    )
    vanished = sum(1 for p in pids if comm.get(p) == "N/A")
    sources = {
        "dmabuf_dump": "present" if d.processes else "missing",
        "dmabuf_dump_a": "present" if table is not None else "missing",
        "dmabuf_dump_b": "present" if d.per_buffer is not None else "missing",
        "dmabuf_dump_summary": "present" if summary is not None else "missing",
        "ps": "present" if src.ps else "missing",
        "meminfo": "present" if src.meminfo else "missing",
    }
    missing = [k for k in ("dmabuf_dump", "dmabuf_dump_b") if sources[k] == "missing"]
    if sources["dmabuf_dump_a"] == "present" and "dmabuf_dump" in missing:
        missing.remove("dmabuf_dump")
    coverage = Coverage(
        processes=npr,
        kernel_threads=0,
        processes_unreadable=0,
        unreadable=[],
        processes_vanished=vanished,
        lower_bound=partial > 0
        or any(w.startswith("the listing") for w in warnings)
        or not holder_view,
        capture_uid=None,
        sources=sources,
        missing_sources=missing,
    )
    unknown = _limitations(src, d, split_known, holder_view, totals, limitations, procs)
    unparsed = _unparsed(d)
    if len(unparsed):
        warnings.append(
            f"{len(unparsed)} lines of the dmabuf_dump output not understood; see the "
            "unparsed table"
        )
    warnings.extend(f"dmabuf_dump said: {note}" for note in d.notes)

    return SourceAnalysis(
        dump=parse_dump(_EMPTY_DUMP),
        charge=charge,
        service_regex=regex,
        device=dict(src.device),
        processes=procs,
        tasks=TASKS.empty(),
        references=references,
        inventory=inventory,
        attachments=ATTACHMENTS.empty(),
        buffers=buffers,
        holdings=holdings,
        usage=usage,
        apps=apps,
        cgroup_usage=CGROUP_USAGE.empty(),
        exporters=exporters,
        names=names,
        kernel_only=kernel_only,
        crosscheck=CROSSCHECK.empty(),
        cgroups=CGROUPS.empty(),
        heaps=HEAPS.empty(),
        pools=_pools(d, src.meminfo),
        ion_clients=ION_CLIENTS.empty(),
        packages=PACKAGES.empty(),
        errors=ERRORS.empty(),
        unparsed=unparsed,
        totals=totals,
        coverage=coverage,
        unparsed_total=len(unparsed),
        warnings=warnings,
        source=dict(src.source),
        limitations=limitations,
        unknown=unknown,
        meminfo=dict(src.meminfo),
        named_inodes=frozenset(b.inode for b in blist if b.name),
        stated_totals=[st.as_dict() for st in stated],
    )


def _charge(
    charge: str,
    ino: np.ndarray,
    size: np.ndarray,
    pss: np.ndarray,
    app: np.ndarray,
    svc: np.ndarray,
) -> np.ndarray:
    if charge == "shared" or ino.size == 0:
        return pss
    if charge == "full":
        return size.copy()
    starts = np.flatnonzero(np.r_[True, ino[1:] != ino[:-1]])
    gid = np.repeat(np.arange(starts.size), np.diff(np.append(starts, ino.size)))
    g_app = np.add.reduceat(app.astype(np.int64), starts)
    g_svc = np.add.reduceat(svc.astype(np.int64), starts)
    cs = np.cumsum(app.astype(np.int64))
    before = np.where(starts > 0, cs[np.maximum(starts - 1, 0)], 0)
    app_rank = cs - 1 - before[gid]
    client = ((g_app > 0) & (g_svc > 0))[gid]
    share = exact_split(size, g_app[gid], app_rank)
    return np.where(client, np.where(app, share, 0), pss).astype(np.int64)


#: TASK_COMM_LEN - 1: a comm this long may be cut (an app's comm keeps the last 15 bytes of
#: its name, ``om.example.game``; a native process's the first 15 of its executable's)
COMM_LEN = 15


def full_name(comm: str | None, candidate: str | None) -> str | None:
    """The full name (argv[0]'s basename) a process list gives for a pid, when it fits the
    comm dmabuf_dump printed: a pid reused between the two lists keeps its comm."""
    if not comm or not candidate or comm == "N/A":
        return None
    base = candidate.rsplit("/", 1)[-1]
    if base == comm or (len(comm) == COMM_LEN and (base.endswith(comm) or base.startswith(comm))):
        return base
    return None


def _processes(
    pids: list[int],
    comm: dict[int, str],
    ps: dict[int, PsEntry],
    full: dict[int, list[tuple[str, str]]],
) -> pd.DataFrame:
    names = [comm.get(p) or (ps[p].name if p in ps else None) for p in pids]
    argv0 = [
        next((f for c, _w in full.get(p, []) if (f := full_name(n, c)) is not None), None)
        for p, n in zip(pids, names, strict=True)
    ]
    return PROCESSES.frame(
        {
            "pid": np.array(pids, dtype=np.int32),
            "ppid": pd.array([ps[p].ppid if p in ps else None for p in pids], dtype="Int32"),
            "name": names,
            "argv0": argv0,
            "uid": pd.array([ps[p].uid if p in ps else None for p in pids], dtype="Int32"),
            "cgroup_source": pd.Categorical([None] * len(pids)),
            "state": pd.Categorical(
                ["vanished" if n == "N/A" else "ok" for n in names],
                categories=["ok", "vanished", "denied", "unknown"],
            ),
            "fds_access": pd.Categorical(["unknown"] * len(pids), categories=_ACCESS),
            "fdinfo_access": pd.Categorical(["unknown"] * len(pids), categories=_ACCESS),
            "maps_access": pd.Categorical(["unknown"] * len(pids), categories=_ACCESS),
        },
        length=len(pids),
    )


_ACCESS = ["ok", "denied", "vanished", "none", "unknown"]


def _references(
    pairs: list[tuple[int, int]],
    held: dict[tuple[int, int], list[int | None]],
    h_size: np.ndarray,
    bufs: dict[int, _Buffer],
    split_known: bool,
) -> pd.DataFrame:
    """One row per fd and per mapping when ``-a`` split them; otherwise one row of kind
    ``unknown`` per holding (the process holds the buffer, by fd or mapping or both)."""
    pid: list[int] = []
    ino: list[int] = []
    kind: list[str] = []
    sizes: list[int] = []
    for (p, i), s in zip(pairs, h_size.tolist(), strict=True):
        fd, mp = held[(p, i)]
        if split_known and fd is not None and mp is not None:
            entries = ["fd"] * fd + ["map"] * mp
        else:
            entries = ["unknown"] * max(1, fd or 0)
        for k in entries:
            pid.append(p)
            ino.append(i)
            kind.append(k)
            sizes.append(s)
    n = len(pid)
    return REFERENCES.frame(
        {
            "pid": np.array(pid, dtype=np.int32),
            "kind": pd.Categorical(kind, categories=["fd", "map", "unknown"]),
            "inode": pd.array(ino, dtype="Int64"),
            "target": pd.Categorical(["dmabuf"] * n),
            "size_bytes": pd.array(
                [s if k != "map" else None for s, k in zip(sizes, kind, strict=True)],
                dtype="Int64",
            ),
            "size_source": pd.Categorical([None if k == "map" else "dmabuf_dump" for k in kind]),
            "exporter": pd.Categorical([bufs[i].exporter for i in ino]),
            "name": pd.Categorical([bufs[i].name for i in ino]),
        },
        length=n,
    )


def _apps(
    usage: pd.DataFrame,
    owners: np.ndarray,
    holdings: pd.DataFrame,
    h_pj: np.ndarray,
    charge: str,
    display: list[Any],
    extra_rss: np.ndarray,
) -> pd.DataFrame:
    active = usage["buffers"].to_numpy() > 0
    sel = active & (owners >= 0)
    if not sel.any():
        return APPS.empty()
    h_owner = owners[h_pj] if len(holdings) else np.zeros(0, np.int64)
    hold = pd.DataFrame(
        {
            "owner": h_owner,
            "inode": holdings["inode"].to_numpy(dtype=np.int64),
            "size": holdings["size_bytes"].to_numpy(dtype=np.int64),
        }
    )
    hold = hold[hold["owner"] >= 0].drop_duplicates(["owner", "inode"])
    rss = hold.groupby("owner")["size"].sum()
    nbuf = hold.groupby("owner")["inode"].count()
    u = pd.DataFrame(
        {
            "owner": owners[sel],
            "pid": usage["pid"].to_numpy()[sel].astype(np.int64),
            "pss": usage["pss_bytes"].to_numpy()[sel],
            "charged": usage["charged_bytes"].to_numpy()[sel],
        }
    )
    g = u.groupby("owner", sort=True)
    sums = g[["pss", "charged"]].sum()
    pids = g["pid"].agg(lambda s: tuple(sorted(int(x) for x in s)))  # type: ignore[type-var]
    owner_ids = sums.index.to_numpy(dtype=np.int64)
    names_of: dict[int, tuple[str, ...]] = {}
    shown = [d for d, on in zip(display, sel.tolist(), strict=True) if on]
    for o, n in zip(owners[sel].tolist(), shown, strict=True):
        if isinstance(n, str) and n:
            names_of[int(o)] = tuple(sorted({*names_of.get(int(o), ()), n}))
    # processes whose PROCESS TOTAL stands: what their rows do not show adds to the app
    extra = pd.Series(extra_rss[sel]).groupby(owners[sel]).sum()
    rss_sum = rss.reindex(owner_ids, fill_value=0) + extra.reindex(owner_ids, fill_value=0)
    rss_v = rss_sum.to_numpy(dtype=np.int64)
    frame = APPS.frame(
        {
            "uid": owner_ids.astype(np.int32),
            "user_id": (owner_ids // 100000).astype(np.int32),
            "app_id": (owner_ids % 100000).astype(np.int32),
            "kind": pd.Categorical(
                [uid_kind(int(x)) for x in owner_ids],
                categories=["app", "system", "isolated", "sdk_sandbox", "other"],
            ),
            "label": [_label(int(x), names_of.get(int(x), ())) for x in owner_ids],
            "packages": [() for _ in owner_ids],
            "processes": np.array([len(p) for p in pids.tolist()], dtype=np.int64),
            "pids": pids.tolist(),
            "rss_bytes": rss_v,
            "pss_bytes": sums["pss"].to_numpy(dtype=np.int64),
            "charged_bytes": rss_v if charge == "full" else sums["charged"].to_numpy(np.int64),
            "buffers": nbuf.reindex(owner_ids, fill_value=0).to_numpy(dtype=np.int64),
        },
        length=len(owner_ids),
    )
    return frame.sort_values(["charged_bytes", "uid"], ascending=[False, True], ignore_index=True)


def _label(uid: int, names: tuple[str, ...]) -> str:
    """A system uid's name (``system``); for an app (no package list in these sources), its
    processes' names (full where the bugreport lists them, else the comm: ``om.example.game``,
    Android keeps its last 15 bytes), else Android's user name for the uid (``u0_a245``)."""
    known = uid_name(uid)
    if known:
        return known
    if names:
        return ",".join(names)
    user, app = divmod(uid, 100000)
    if 10000 <= app <= 19999:
        return f"u{user}_a{app - 10000}"
    return str(uid)


@dataclass(frozen=True)
class StatedTotal:
    """A process block whose ``PROCESS TOTAL`` is not the sum of its rows."""

    pid: int
    name: str
    rows_rss_kb: int
    total_rss_kb: int
    rows_pss_kb: int
    total_pss_kb: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "name": self.name,
            "rows_rss_kb": self.rows_rss_kb,
            "total_rss_kb": self.total_rss_kb,
            "rows_pss_kb": self.rows_pss_kb,
            "total_pss_kb": self.total_pss_kb,
        }

    def text(self) -> str:
        pss = (
            f"; Pss rows {self.rows_pss_kb} kB, PROCESS TOTAL {self.total_pss_kb} kB"
            if self.total_pss_kb is not None
            else ""
        )
        return (
            f"{self.name} ({self.pid}): Rss rows {self.rows_rss_kb} kB, "
            f"PROCESS TOTAL {self.total_rss_kb} kB{pss}"
        )


def _stated_totals(
    tool: dict[int, tuple[int | None, int | None, int, int]],
    pids: list[int],
    display: list[Any],
    rss: np.ndarray,
    estimated: np.ndarray,
) -> list[StatedTotal]:
    """Blocks whose PROCESS TOTAL Rss differs from the sum of their rows. dmabuf_dump sums the
    buffers' bytes and divides once (``rss / 1024``) but prints each row as ``size / 1024``,
    and an excerpt may cut rows: the stated total is what the tool measured, so it stands.
    Where every row has an exact size (``-b``) that rounds to the stated total, the rows
    explain it and the exact bytes are kept."""
    index = {pid: k for k, pid in enumerate(pids)}
    out: list[StatedTotal] = []
    for pid, (t_rss, t_pss, rows_rss, rows_pss) in sorted(tool.items()):
        if t_rss is None or t_rss == rows_rss or pid not in index:
            continue
        j = index[pid]
        if not estimated[j] and int(rss[j]) // 1024 == t_rss:
            continue
        name = display[j] if isinstance(display[j], str) else "?"
        out.append(StatedTotal(pid, name, rows_rss, t_rss, rows_pss, t_pss))
    return out


def _stated_limitation(stated: list[StatedTotal]) -> dict[str, str]:
    return limitation(
        "process_totals",
        "processes",
        "the PROCESS TOTAL stands where a process block's rows do not add up to it "
        "(dmabuf_dump sums bytes before rounding each row down to kB; an excerpt may cut "
        "rows): the process's rss and pss are its stated total in kB x 1024, its buffer rows "
        "are only those listed: " + "; ".join(st.text() for st in stated),
    )


def _check_tool_totals(
    tool: dict[int, tuple[int | None, int | None, int, int]],
    usage: pd.DataFrame,
    display: list[Any],
    warnings: list[str],
    partial: bool,
    stated: set[int],
) -> None:
    """Each block's PROCESS TOTAL against its rows: an excerpt (rows cut) or a Pss column of
    another era (mapped-only pss, 2020-2022) shows up here."""
    cut: list[str] = []
    pss_other = 0
    pids = usage["pid"].astype(int).tolist()
    names = dict(zip(pids, display, strict=True))
    nbuf = dict(zip(pids, usage["buffers"].astype(int).tolist(), strict=True))
    pss = dict(zip(pids, usage["pss_bytes"].astype(int).tolist(), strict=True))
    for pid, (t_rss, t_pss, rows_rss, _rows_pss) in sorted(tool.items()):
        name = names.get(pid) or "?"
        nrows = nbuf.get(pid, 0)
        if t_rss is not None and not rows_rss <= t_rss <= rows_rss + nrows:
            cut.append(f"{name}({pid}): rows {rows_rss} kB, PROCESS TOTAL {t_rss} kB")
        elif (
            t_pss is not None
            and pid in pss
            and pid not in stated
            and not partial
            and abs(pss[pid] // 1024 - t_pss) > nrows + 1
        ):
            # exact split vs size // n per buffer: at most 1 kB apart unless another definition
            pss_other += 1
    if cut:
        more = f" and {len(cut) - 3} more" if len(cut) > 3 else ""
        warnings.append(
            "the listing is cut: some processes' rows do not add up to their PROCESS TOTAL ("
            + "; ".join(cut[:3])
            + more
            + "); their rss and pss are the stated totals, the buffer tables hold the rows "
            "shown only"
        )
    if pss_other:
        warnings.append(
            f"for {pss_other} processes dmabuf_dump's Pss column differs from size / holders: "
            "this dmabuf_dump counted pss from mappings only (its 2020-2022 definition); "
            "dmaprof's pss splits each buffer among every holder"
        )


def _limitations(
    src: SourceInput,
    d: DmabufDump,
    split_known: bool,
    holder_view: bool,
    totals: Totals,
    out: list[dict[str, str]],
    procs: pd.DataFrame,
) -> dict[str, list[str]]:
    unknown: dict[str, list[str]] = {
        "processes": ["start_time_ticks", "cgroup", "cmdline"]
        + ([] if procs["argv0"].notna().any() else ["argv0"]),
        "holdings": ["mapped_bytes"],
        "totals": list(ANON_TOTALS),
    }
    what = "this bugreport" if src.kind == "bugreport" else "dmabuf_dump's output"
    if not holder_view:
        out.append(
            limitation(
                "no_holders",
                "processes",
                f"{what} has no per-process view (only dmabuf_dump -b): nothing says which "
                "process holds which buffer",
            )
        )
    if d.table is not None and d.table.rows and not d.table.split:
        out.append(
            limitation(
                "legacy_table",
                "processes",
                "this dmabuf_dump -a predates 2021: its cells sum fd and map references and "
                "show only processes with an fd, so a buffer only mapped has no holder here",
            )
        )
    if not split_known:
        unknown["usage"] = list(SPLIT_COLUMNS)
        unknown["holdings"] += ["fds", "maps"]
        out.append(
            limitation(
                "fd_map_split",
                "processes",
                "fds, maps, fd_only, map_only, both: dmabuf_dump's per-process view lists the "
                "buffers a process holds, not whether by fd or by mapping (only dmabuf_dump -a "
                "tells that)",
            )
        )
    unknown["usage"] = [*unknown.get("usage", []), "cgroup"]
    out.append(
        limitation(
            "cgroups",
            "cgroup",
            f"no cgroups: {what} does not record a process's cgroup",
        )
    )
    if procs["uid"].isna().all():
        unknown["usage"] = [*unknown.get("usage", []), "uid", "owner_uid"]
        out.append(
            limitation(
                "uids",
                "app",
                f"no uids: {what} has no process list, so processes cannot be rolled up to apps "
                "(a bugreport's `ps` section gives them)",
            )
        )
    elif procs["uid"].isna().any():
        out.append(
            limitation(
                "some_uids",
                "app",
                f"{int(procs['uid'].isna().sum())} processes have no uid in the process list "
                "(gone before ps ran, or a user name dmaprof does not know): left out of apps",
            )
        )
    comms = procs["name"].astype(object).tolist()
    argv0 = procs["argv0"].astype(object).tolist()
    cut_names = [
        n
        for n, a in zip(comms, argv0, strict=True)
        if isinstance(n, str) and len(n) == COMM_LEN and not isinstance(a, str)
    ]
    if cut_names:
        more = ", ..." if len(cut_names) > 3 else ""
        out.append(
            limitation(
                "comm_names",
                "processes",
                f"{len(cut_names)} processes are named by their 15-character comm "
                f"({', '.join(cut_names[:3])}{more}), which may be cut: {what} has no process "
                "list with their full names (a bugreport's CPU INFO `top` NAME column, a `ps` "
                "NAME column or dumpsys meminfo's per-process lines)",
            )
        )
    out.append(
        limitation(
            "start_times",
            "diff",
            "no process start times: diff identifies a process by pid and name only (a reused "
            "pid with the same name looks like the same process)",
        )
    )
    out.append(
        limitation(
            "anon_references",
            "totals",
            "fds and mappings without per-buffer identity (kernels before 5.3) are invisible to "
            "dmabuf_dump: anon_* totals are unknown",
        )
    )
    if totals.estimated_buffers:
        out.append(
            limitation(
                "sizes_estimated",
                "buffer",
                f"{totals.estimated_buffers} buffers have no exact size (no dmabuf_dump -b line "
                "for them): their size is the listed kB x 1024, up to 1023 bytes low each",
            )
        )
    if totals.kernel_only_buffers is None:
        out.append(
            limitation(
                "kernel_only_list",
                "buffer",
                "kernel-only buffers cannot be listed without dmabuf_dump -b"
                + (
                    " (their total is the summary's kernel_rss, in kB)"
                    if totals.kernel_only_bytes is not None
                    else ", nor their total"
                ),
            )
        )
    if not any(r.exporter for b in d.processes for r in b.rows) and not d.per_buffer:
        out.append(
            limitation(
                "exporters",
                "exporter",
                "no exporters: this dmabuf_dump prints no Exporter column and there is no -b",
            )
        )
    return unknown


def _pools(d: DmabufDump, meminfo: dict[str, int]) -> pd.DataFrame:
    rows: list[tuple[str, int, int | None, str]] = []
    if d.summary is not None and d.summary.total_kb is not None:
        rows.append(("dmabuf_dump_total", d.summary.total_kb * 1024, None, "dmabuf_dump"))
    if d.summary is not None and d.summary.kernel_rss_kb is not None:
        rows.append(("dmabuf_dump_kernel_rss", d.summary.kernel_rss_kb * 1024, None, "dmabuf_dump"))
    if d.total_size is not None:
        rows.append(("dmabuf_dump_b_total", d.total_size, d.total_count, "dmabuf_dump -b"))
    rows.extend(
        (f"meminfo_{key.removesuffix('_bytes')}", value, None, "dumpsys meminfo")
        for key, value in meminfo.items()
    )
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


def _unparsed(d: DmabufDump) -> pd.DataFrame:
    if not d.unparsed:
        return UNPARSED.empty()
    return UNPARSED.frame(
        {
            "section": ["dmabuf_dump"] * len(d.unparsed),
            "line_no": pd.array([u[0] for u in d.unparsed], dtype="Int64"),
            "line": [u[1] for u in d.unparsed],
            "reason": [u[2] for u in d.unparsed],
        }
    )
