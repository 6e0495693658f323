"""``analyze()``: from a dump to every table, the totals, the coverage and the warnings."""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from dmaprof.analyze import fds
from dmaprof.analyze._scan import Scan, decode, nullable, objects, uniq
from dmaprof.analyze.attribution import (
    CHARGE_POLICIES,
    DEFAULT_SERVICE_REGEX,
    attribute,
)
from dmaprof.analyze.bpf import parse_bpf
from dmaprof.analyze.buffers import build_buffers, build_inventory
from dmaprof.analyze.bufinfo import Bufinfo, parse_bufinfo
from dmaprof.analyze.cgroups import process_cgroups
from dmaprof.analyze.fds import (
    FdInfo,
    fd_references,
    fdinfo_ranges,
    join_fdinfo,
    parse_fdinfo_range,
    parse_fdlinks,
)
from dmaprof.analyze.globalfiles import BPF_ITER, BUFINFO, GlobalFiles, parse_global
from dmaprof.analyze.maps import parse_maps
from dmaprof.analyze.proc import ProcInfo, parse_proc
from dmaprof.analyze.schema import ERRORS, HEAPS, POOLS, PROCESSES, REFERENCES
from dmaprof.analyze.sysfs import parse_sysfs
from dmaprof.analyze.system import (
    device_info,
    kib_counters,
    parse_fdaccess,
    parse_heaps,
    parse_ion,
    parse_packages,
    parse_props,
    parse_tasks,
)
from dmaprof.analyze.unparsed import Unparsed
from dmaprof.analyze.userbuild import merge_run_as
from dmaprof.capture.dump import Dump, DumpError, parse_dump

__all__ = ["Analysis", "Coverage", "Totals", "analyze"]


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
    pss_bytes: int
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


@dataclass
class Analysis:
    """Everything ``analyze()`` computed. Tables follow ``dmaprof.analyze.schema``."""

    dump: Dump
    charge: str
    service_regex: str
    device: dict[str, Any]
    processes: pd.DataFrame
    tasks: pd.DataFrame
    references: pd.DataFrame
    inventory: pd.DataFrame
    attachments: pd.DataFrame
    buffers: pd.DataFrame
    holdings: pd.DataFrame
    usage: pd.DataFrame
    apps: pd.DataFrame
    cgroup_usage: pd.DataFrame
    exporters: pd.DataFrame
    names: pd.DataFrame
    kernel_only: pd.DataFrame
    crosscheck: pd.DataFrame
    cgroups: pd.DataFrame
    heaps: pd.DataFrame
    pools: pd.DataFrame
    ion_clients: pd.DataFrame
    packages: pd.DataFrame
    errors: pd.DataFrame
    unparsed: pd.DataFrame
    totals: Totals
    coverage: Coverage
    unparsed_total: int = 0
    bufinfo: Bufinfo | None = None
    warnings: list[str] = field(default_factory=list)
    #: the cgroup hierarchy of the ``cgroup`` column and roll-ups: ``v2``, ``v1:cpuacct``...
    cgroup_hierarchy: str | None = None

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "processes": self.processes,
            "tasks": self.tasks,
            "references": self.references,
            "inventory": self.inventory,
            "attachments": self.attachments,
            "buffers": self.buffers,
            "holdings": self.holdings,
            "usage": self.usage,
            "apps": self.apps,
            "cgroup_usage": self.cgroup_usage,
            "exporters": self.exporters,
            "names": self.names,
            "kernel_only": self.kernel_only,
            "crosscheck": self.crosscheck,
            "cgroups": self.cgroups,
            "heaps": self.heaps,
            "pools": self.pools,
            "ion_clients": self.ion_clients,
            "packages": self.packages,
            "errors": self.errors,
            "unparsed": self.unparsed,
        }


_ACCESS = ["ok", "denied", "vanished", "none", "unknown"]


def _errors_frame(dump: Dump) -> pd.DataFrame:
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


def _by_pid(errors: list[DumpError], want: tuple[str, ...] | None = None) -> dict[int, set[str]]:
    """pid -> reasons, for errors about ``/proc/<pid>/<want...>`` paths."""
    out: dict[int, set[str]] = {}
    for e in errors:
        if e.pid is None or e.path is None:
            continue
        if want is not None:
            rest = e.path.split("/", 3)[3] if e.path.count("/") >= 3 else ""
            if e.tid is not None:
                rest = rest.split("/", 2)[2] if rest.count("/") >= 2 else ""
            if not any(rest == w or rest.startswith(w + "/") for w in want):
                continue
        out.setdefault(e.pid, set()).add(e.reason)
    return out


def _access(reasons: set[str] | None, present: bool, default: str = "ok") -> str:
    if reasons:
        if "denied" in reasons:
            return "denied"
        if "vanished" in reasons:
            return "vanished"
    return default if present else "unknown"


def _cgroup_of(lines: pd.DataFrame) -> tuple[dict[int, tuple[str, str]], str | None]:
    """pid -> (cgroup path, source) in the hierarchy holding the process tree, and that
    hierarchy (dmaprof.analyze.cgroups)."""
    frame, hierarchy = process_cgroups(lines)
    paths = zip(frame["cgroup"].tolist(), frame["cgroup_source"].tolist(), strict=True)
    return dict(zip(frame["pid"].tolist(), paths, strict=True)), hierarchy


def _processes(
    dump: Dump,
    info: ProcInfo,
    refs: pd.DataFrame,
    fd_pids: set[int],
    fdaccess: set[int],
    fdaccess_present: bool,
    fdlinks_present: bool,
    fdinfo_present: bool,
    maps_present: bool,
    collector_pid: int | None,
    cg: dict[int, tuple[str, str]],
) -> pd.DataFrame:
    proc_err = _by_pid(dump.errors_of("proc"), ("status",))
    fd_err = _by_pid(dump.errors_of("fdlinks") + dump.errors_of("fdaccess"), ("fd",))
    fdinfo_err = _by_pid(dump.errors_of("fdinfo"))
    maps_err = _by_pid(dump.errors_of("maps"), ("maps",))
    ref_pid = refs["pid"].to_numpy(dtype=np.int64)
    ref_pids = set(uniq(ref_pid).tolist())
    pids = sorted(
        info.pids
        | ref_pids
        | fdaccess
        | set(proc_err)
        | set(maps_err)
        | set(fd_err)
        | set(fdinfo_err)
    )
    fd_ref_pids = set(uniq(ref_pid[(refs["kind"] == "fd").to_numpy()]).tolist())
    # collector and its descendants
    collector: set[int] = set()
    if collector_pid is not None:
        collector.add(collector_pid)
        changed = True
        while changed:
            changed = False
            for p, pp in info.ppid.items():
                if pp in collector and p not in collector:
                    collector.add(p)
                    changed = True
    rows: dict[str, list[Any]] = {c: [] for c in PROCESSES.names}
    for pid in pids:
        cmd = info.cmdline.get(pid)
        if cmd is None and pid in info.status_read:
            cmd = b""  # read, but empty (kernel threads, zombies): grep prints no line
        disp = argv0 = None
        if cmd is not None:
            trimmed = cmd.rstrip(b"\0")
            disp = decode(trimmed.replace(b"\0", b" "))
            argv0 = decode(trimmed.split(b"\0", 1)[0]) if trimmed else None
        ppid = info.ppid.get(pid)
        kth = info.kthread.get(pid)
        if kth is None:
            kth = pid == 2 or ppid == 2
        reasons = proc_err.get(pid)
        if pid in info.status_read:
            state = "ok"
        elif reasons and "denied" in reasons:
            state = "denied"
        elif reasons:
            state = "vanished"
        else:
            state = "unknown"
        fda = _access(fd_err.get(pid), fdlinks_present or fdaccess_present)
        if pid in fdaccess:
            fda = "denied"
        if state == "vanished" and fda == "ok" and pid not in fd_pids:
            fda = "vanished"
        has_fd_refs = pid in fd_ref_pids
        fdi = _access(
            fdinfo_err.get(pid), fdinfo_present or not has_fd_refs, "ok" if has_fd_refs else "none"
        )
        mpa = _access(maps_err.get(pid), maps_present)
        c = cg.get(pid)
        rows["pid"].append(pid)
        rows["tgid"].append(info.tgid.get(pid))
        rows["ppid"].append(ppid)
        rows["name"].append(info.name.get(pid))
        rows["cmdline"].append(cmd)
        rows["cmdline_display"].append(disp)
        rows["argv0"].append(argv0)
        rows["uid"].append(info.uid.get(pid))
        rows["euid"].append(info.euid.get(pid))
        rows["start_time_ticks"].append(info.start_time.get(pid))
        rows["cgroup"].append(c[0] if c else None)
        rows["cgroup_source"].append(c[1] if c else None)
        rows["is_kernel_thread"].append(bool(kth))
        rows["is_collector"].append(pid in collector)
        rows["state"].append(state)
        rows["fds_access"].append(fda)
        rows["fdinfo_access"].append(fdi)
        rows["maps_access"].append(mpa)
        rows["kernel_dmabuf_rss_bytes"].append(info.dmabuf_rss.get(pid))
        rows["kernel_dmabuf_pss_bytes"].append(info.dmabuf_pss.get(pid))
    data: dict[str, Any] = dict(rows)
    data["pid"] = np.array(rows["pid"], dtype=np.int32)
    # a number no kernel can print (corrupt or hostile dump) becomes unknown, not a crash
    for col in ("tgid", "ppid", "uid", "euid"):
        data[col] = pd.array(_in_range(rows[col], 32), dtype="Int32")
    for col in ("start_time_ticks", "kernel_dmabuf_rss_bytes", "kernel_dmabuf_pss_bytes"):
        data[col] = pd.array(_in_range(rows[col], 64), dtype="Int64")
    for col in ("fds_access", "fdinfo_access", "maps_access"):
        data[col] = pd.Categorical(rows[col], categories=_ACCESS)
    data["state"] = pd.Categorical(
        rows["state"], categories=["ok", "vanished", "denied", "unknown"]
    )
    data["cgroup_source"] = pd.Categorical(rows["cgroup_source"])
    return PROCESSES.frame(data, length=len(pids))


def _in_range(values: list[Any], bits: int) -> list[Any]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1)
    return [v if v is None or low <= v < high else None for v in values]


def _references(fd: pd.DataFrame, mp: pd.DataFrame) -> pd.DataFrame:
    """The fd part and the map part as one REFERENCES table (numpy concatenation)."""
    n_fd, n_mp = len(fd), len(mp)
    n = n_fd + n_mp

    def ints(frame: pd.DataFrame, col: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
        if rows == 0 or col not in frame:
            return np.zeros(rows, np.int64), np.ones(rows, np.bool_)
        s = frame[col]
        return s.to_numpy(dtype=np.int64, na_value=0), s.isna().to_numpy()

    def both(col: str, dtype: str = "Int64") -> Any:
        v1, m1 = ints(fd, col, n_fd)
        v2, m2 = ints(mp, col, n_mp)
        return nullable(np.concatenate([v1, v2]), np.concatenate([m1, m2]), dtype)

    def cats(col: str) -> pd.Categorical:
        parts = []
        for frame, rows in ((fd, n_fd), (mp, n_mp)):
            if rows and col in frame:
                c = frame[col].array
                if not isinstance(c, pd.Categorical):
                    c = pd.Categorical(frame[col])
                parts.append(c.set_categories(c.categories.astype("str")))
            elif rows:
                parts.append(
                    pd.Categorical.from_codes(
                        np.full(rows, -1, np.int8), categories=pd.Index([], dtype="str")
                    )
                )
        if not parts:
            return pd.Categorical([])
        return union_categoricals(parts) if len(parts) > 1 else parts[0]

    z_fd = np.zeros(n_fd, np.int64)
    z_mp = np.zeros(n_mp, np.int64)
    target = np.concatenate(
        [
            fd["target"].to_numpy(dtype=np.int64) if n_fd else z_fd,
            mp["target"].to_numpy(dtype=np.int64) if n_mp else z_mp,
        ]
    )
    return REFERENCES.frame(
        {
            "pid": np.concatenate(
                [
                    fd["pid"].to_numpy(dtype=np.int32) if n_fd else z_fd,
                    mp["pid"].to_numpy(dtype=np.int32) if n_mp else z_mp,
                ]
            ).astype(np.int32),
            "tid": both("tid", "Int32"),
            "kind": pd.Categorical.from_codes(
                np.concatenate([np.zeros(n_fd, np.int8), np.ones(n_mp, np.int8)]),
                categories=pd.Index(["fd", "map"], dtype="str"),
            ),
            "inode": both("inode"),
            "target": pd.Categorical.from_codes(
                target.astype(np.int8), categories=pd.Index(["dmabuf", "anon"], dtype="str")
            ),
            "fd": both("fd", "Int32"),
            "vma_start": both("vma_start"),
            "vma_end": both("vma_end"),
            "vma_offset": both("vma_offset"),
            "mapped_bytes": both("mapped_bytes"),
            "size_bytes": both("size_bytes"),
            "size_source": cats("size_source"),
            "count": both("count"),
            "exporter": cats("exporter"),
            "name": cats("name"),
        },
        length=n,
    )


def analyze(
    dump: bytes | Dump,
    *,
    charge: str = "shared",
    service_regex: str | None = None,
) -> Analysis:
    """Parse every source of a dump and attribute every buffer.

    ``charge`` is ``shared`` (pss, default), ``full`` (rss) or ``client``; ``service_regex``
    replaces the default graphics/media service regex of the client policy.
    """
    if charge not in CHARGE_POLICIES:
        raise ValueError(f"unknown charge policy {charge!r} (one of {', '.join(CHARGE_POLICIES)})")
    if not isinstance(dump, Dump):
        dump = parse_dump(dump)
    dump = merge_run_as(dump)  # user-build mode: processes read through run-as (--app)
    regex = service_regex if service_regex is not None else DEFAULT_SERVICE_REGEX
    warnings: list[str] = list(dump.warnings)
    scan = Scan(dump.buffer, dump.length)
    unparsed = Unparsed()

    # Two threads hand the GIL back and forth at every numpy call; with Python's default
    # 5 ms switch interval the one coming back from numpy waits behind the other's Python
    # code (measured: about 10% of the parallel part).
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, _SWITCH_INTERVAL))
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            fdinfo = _SplitFdinfo(pool, dump, scan)
            return _analyze(dump, scan, unparsed, fdinfo, charge, regex, warnings)
    finally:
        sys.setswitchinterval(previous)


_SWITCH_INTERVAL = 0.0005


#: Sections the calling thread parses while the worker parses its part of ``fdinfo``, with
#: their parse time per byte relative to fdinfo's (measured by scripts/bench_analyze.py).
_CALLER_SECTIONS = {"proc": 2.5, "maps": 1.8, "sysfs_buffers": 1.4, "fdlinks": 0.8, "fdstat": 1.0}


class _SplitFdinfo:
    """The fdinfo section is the largest of a dump. A worker thread parses its first part
    while the calling thread parses the other sections and then the rest of it (numpy
    releases the GIL in its loops). The worker's share is sized by weighted bytes so that
    both threads have about as much to parse."""

    def __init__(self, pool: ThreadPoolExecutor, dump: Dump, scan: Scan) -> None:
        sec = dump.section("fdinfo")
        self.present = sec is not None
        own = sec.size if sec is not None else 0
        other = 0.0
        for name, weight in _CALLER_SECTIONS.items():
            part = dump.section(name)
            other += part.size * weight if part is not None else 0
        share = (own + other) / (2 * own) if own else 1.0
        self.scan = scan
        self.ranges = (
            fdinfo_ranges(
                dump.buffer, sec.begin, sec.end, min(1.0, max(0.5, share)), fds.SPLIT_MIN_BYTES
            )
            if sec is not None
            else []
        )
        self.unparsed = [Unparsed() for _ in self.ranges]
        self.first: Future[FdInfo] | None = None
        if self.ranges:
            b, e = self.ranges[0]
            self.first = pool.submit(parse_fdinfo_range, scan, b, e, self.unparsed[0])

    def result(self, unparsed: Unparsed) -> FdInfo:
        """Parse the rest here, wait for the worker, and join (unparsed lines in order)."""
        rest = [
            parse_fdinfo_range(self.scan, b, e, u)
            for (b, e), u in zip(self.ranges[1:], self.unparsed[1:], strict=True)
        ]
        parts = ([self.first.result()] if self.first is not None else []) + rest
        for u in self.unparsed:
            unparsed.merge(u)
        return join_fdinfo(parts, self.present)


def _analyze(
    dump: Dump,
    scan: Scan,
    unparsed: Unparsed,
    fdinfo: _SplitFdinfo,
    charge: str,
    regex: str,
    warnings: list[str],
) -> Analysis:
    files = parse_global(dump, scan, unparsed)
    props = parse_props(dump, unparsed)
    device = device_info(dump, files, props)
    packages = parse_packages(dump, unparsed)
    heap_names, heap_listed = parse_heaps(dump)
    fdaccess, fdaccess_present = parse_fdaccess(dump)
    tasks = parse_tasks(dump, unparsed)
    info = parse_proc(dump, scan, unparsed)
    mpr = parse_maps(dump, scan, unparsed)
    sysfs = parse_sysfs(dump, scan, unparsed)
    bpf, bpf_read = parse_bpf(files, scan, unparsed)
    bufinfo: Bufinfo | None = None
    raw_bufinfo = files.content(BUFINFO)
    if raw_bufinfo is not None:
        bufinfo = parse_bufinfo(raw_bufinfo)
        for no, line, reason in bufinfo.unparsed:
            unparsed.add("global", BUFINFO, no, line, reason)
        warnings.extend(bufinfo.warnings)
    ion_heaps, ion_clients = parse_ion(dump, unparsed)
    inventory, attachments = build_inventory(sysfs.frame, bpf, bufinfo)
    links = parse_fdlinks(dump, scan, unparsed)
    fdinfo_unparsed = Unparsed()
    fdr = fd_references(dump, scan, unparsed, fdinfo.result(fdinfo_unparsed), links)
    unparsed.merge(fdinfo_unparsed)

    refs = _references(fdr.frame, mpr.frame)
    cgroup_lines = info.cgroups_frame()
    cg, cgroup_hierarchy = _cgroup_of(cgroup_lines)
    processes = _processes(
        dump,
        info,
        refs,
        fdr.links.pids_seen,
        fdaccess,
        fdaccess_present,
        fdr.links.present,
        fdr.info.present,
        mpr.present,
        device.get("collector_pid"),
        cg,
    )
    buffers = build_buffers(refs, inventory, attachments)
    att = attribute(processes, refs, buffers, packages, charge=charge, service_regex=regex)

    sources = _sources(dump, files, sysfs.present, bpf_read, bufinfo, heap_listed, fdr, mpr, info)
    totals = _totals(
        buffers, att.held, inventory, bufinfo, refs, att.usage, sysfs.present, bpf_read, warnings
    )
    kernel_only = (
        att.kernel_only if totals.kernel_only_bytes is not None else att.kernel_only.iloc[0:0]
    )
    coverage = _coverage(processes, dump, device, sources, totals)
    heaps = _heaps(heap_names, ion_heaps, buffers)
    pools = _pools(files, ion_heaps, bufinfo, unparsed)

    if coverage.processes_unreadable:
        names = ", ".join(f"{u['name'] or '?'}({u['pid']})" for u in coverage.unreadable[:10])
        more = "" if coverage.processes_unreadable <= 10 else ", ..."
        warnings.append(
            f"{coverage.processes_unreadable} processes could not be read ({names}{more}); "
            "userspace figures are lower bounds and kernel-only figures upper bounds"
        )
    if len(att.crosscheck):
        warnings.append(
            f"{len(att.crosscheck)} processes disagree with the kernel's dmabuf_rss/dmabuf_pss"
        )
    if totals.anon_fds or totals.anon_maps:
        warnings.append(
            f"{totals.anon_fds} fds and {totals.anon_maps} mappings have no per-buffer identity "
            "(anon_inode:dmabuf or inode unreadable): counted, not deduplicated, not in rss/pss"
        )
    if totals.estimated_buffers:
        warnings.append(
            f"{totals.estimated_buffers} mapped-only buffers have no size source; their mapping "
            "length is used (estimated)"
        )
    if unparsed.total:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(unparsed.by_section.items()))
        warnings.append(f"{unparsed.total} lines not understood ({parts}); see the unparsed table")
    if coverage.missing_sources:
        warnings.append("sources missing from the dump: " + ", ".join(coverage.missing_sources))

    return Analysis(
        dump=dump,
        charge=charge,
        service_regex=regex,
        device=device,
        processes=processes,
        tasks=tasks,
        references=refs,
        inventory=inventory,
        attachments=attachments,
        buffers=buffers,
        holdings=att.holdings,
        usage=att.usage,
        apps=att.apps,
        cgroup_usage=att.cgroups,
        exporters=att.exporters,
        names=att.names,
        kernel_only=kernel_only,
        crosscheck=att.crosscheck,
        cgroups=cgroup_lines,
        cgroup_hierarchy=cgroup_hierarchy,
        heaps=heaps,
        pools=pools,
        ion_clients=ion_clients,
        packages=packages,
        errors=_errors_frame(dump),
        unparsed=unparsed.frame(),
        totals=totals,
        coverage=coverage,
        unparsed_total=unparsed.total,
        bufinfo=bufinfo,
        warnings=warnings,
    )


def _sources(
    dump: Dump,
    files: GlobalFiles,
    sysfs_present: bool,
    bpf_read: bool,
    bufinfo: Bufinfo | None,
    heap_listed: bool,
    fdr: Any,
    mpr: Any,
    info: ProcInfo,
) -> dict[str, str]:
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


def _totals(
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
    size = buffers["size_bytes"].to_numpy(dtype=np.int64)
    inv_mask = buffers["in_inventory"].to_numpy()
    est = buffers["size_estimated"].to_numpy()
    userspace = int(size[held].sum())
    # the inventory: the first global source that was read
    inv_source: str | None = None
    inv_buffers: int | None = None
    inv_bytes: int | None = None
    for src, read in (
        ("bpf", bpf_read),
        ("sysfs", sysfs_present),
        ("debugfs", bufinfo is not None),
    ):
        rows = inventory[inventory["source"] == src]
        if not read or (
            len(rows) == 0
            and not (src == "debugfs" and bufinfo is not None and bufinfo.total_objects is not None)
        ):
            # an empty listing is not taken as "no buffers at all": a device always has some
            continue
        inv_source = src
        inv_buffers = len(rows)
        inv_bytes = int(rows["size_bytes"].fillna(0).to_numpy(dtype=np.int64).sum())
        if (
            src == "debugfs"
            and bufinfo is not None
            and bufinfo.total_objects is not None
            and not bufinfo.complete
            and bufinfo.total_objects > len(rows)
        ):
            # an excerpt: the trailer is the better total
            inv_buffers = bufinfo.total_objects
            inv_bytes = bufinfo.total_bytes
        break
    identified_inventory = inv_source is not None and (
        inventory[inventory["source"] == inv_source]["inode"].notna().all()
    )
    if inv_source is not None and not identified_inventory:
        # pre-5.3 bufinfo: no inodes, so no attribution against it
        n_buffers = int(inv_buffers or 0)
        n_bytes = int(inv_bytes or 0)
        ko_buf = ko_bytes = None
    else:
        n_buffers = len(buffers)
        n_bytes = int(size.sum())
        if inv_source is None:
            ko_buf = ko_bytes = None
        else:
            ko = inv_mask & ~held
            ko_buf = int(ko.sum())
            ko_bytes = int(size[ko].sum())
            extra = ~inv_mask & ~held  # known only from refs without holders: impossible
            del extra
    ident = refs["inode"].isna().to_numpy()
    if ident.any() and ko_bytes is not None:
        # references without identity may hold any inventory buffer: which ones are held by
        # no process cannot be told
        ko_buf = ko_bytes = None
        warnings.append(
            "some references have no per-buffer identity: kernel-only buffers cannot be told "
            "apart from buffers held through them (kernel_only is null)"
        )
    held_not_inv = int((held & ~inv_mask).sum()) if inv_source is not None else 0
    if held_not_inv and identified_inventory:
        warnings.append(
            f"{held_not_inv} buffers held by processes are missing from the {inv_source} "
            "inventory (created while the capture ran?)"
        )
    aosp: int | None = None
    if inv_bytes is not None:
        aosp = inv_bytes - userspace if inv_bytes >= userspace else inv_bytes
        if inv_bytes < userspace:
            warnings.append("Total dmabufs < userspace dmabufs (as dmabuf_dump would warn)")
    isfd = (refs["kind"] == "fd").to_numpy()
    rsize = refs["size_bytes"].to_numpy(dtype=np.int64, na_value=0)
    rmapped = refs["mapped_bytes"].to_numpy(dtype=np.int64, na_value=0)
    return Totals(
        buffers=n_buffers,
        bytes=n_bytes,
        userspace_buffers=int(held.sum()),
        userspace_bytes=userspace,
        kernel_only_buffers=ko_buf,
        kernel_only_bytes=ko_bytes,
        inventory_source=inv_source,
        inventory_buffers=inv_buffers,
        inventory_bytes=inv_bytes,
        held_not_in_inventory=held_not_inv,
        estimated_buffers=int((est & held).sum()),
        estimated_bytes=int(size[est & held].sum()),
        anon_fds=int((ident & isfd).sum()),
        anon_fd_bytes=int(rsize[ident & isfd].sum()),
        anon_maps=int((ident & ~isfd).sum()),
        anon_mapped_bytes=int(rmapped[ident & ~isfd].sum()),
        pss_bytes=int(usage["pss_bytes"].sum()),
        charged_bytes=int(usage["charged_bytes"].sum()),
        aosp_kernel_rss_bytes=aosp,
    )


def _coverage(
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


def _heaps(heap_names: list[str], ion_heaps: list[Any], buffers: pd.DataFrame) -> pd.DataFrame:
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


def _pools(
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
