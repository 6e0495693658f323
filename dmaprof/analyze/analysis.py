"""``analyze()``: from a dump to every table, the totals, the coverage and the warnings."""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dmaprof.analyze import fds
from dmaprof.analyze._scan import Scan
from dmaprof.analyze.attribution import CHARGE_POLICIES, DEFAULT_SERVICE_REGEX, attribute
from dmaprof.analyze.binder import BinderInfo, parse_binder
from dmaprof.analyze.bpf import parse_bpf
from dmaprof.analyze.buffers import build_buffers, build_inventory
from dmaprof.analyze.bufinfo import Bufinfo, parse_bufinfo
from dmaprof.analyze.fds import (
    FdInfo,
    FdRefs,
    fd_references,
    fdinfo_ranges,
    join_fdinfo,
    parse_fdinfo_range,
    parse_fdlinks,
)
from dmaprof.analyze.globalfiles import BUFINFO, GlobalFiles, parse_global
from dmaprof.analyze.maps import MapRefs, parse_maps
from dmaprof.analyze.proc import ProcInfo, parse_proc
from dmaprof.analyze.processes import cgroup_of, processes_table
from dmaprof.analyze.references import references_table
from dmaprof.analyze.reporttypes import Limitation, StatedTotal
from dmaprof.analyze.schema import (
    ATTACHMENTS,
    CGROUP_USAGE,
    CGROUPS,
    CROSSCHECK,
    ERRORS,
    HEAPS,
    ION_CLIENTS,
    PACKAGES,
    TASKS,
)
from dmaprof.analyze.sysfs import SysfsResult, parse_sysfs
from dmaprof.analyze.system import (
    device_info,
    parse_fdaccess,
    parse_heaps,
    parse_ion,
    parse_packages,
    parse_props,
    parse_tasks,
)
from dmaprof.analyze.totals import (
    Coverage,
    Totals,
    analysis_warnings,
    coverage_of,
    errors_frame,
    heaps_table,
    pools_table,
    source_states,
    totals_of,
)
from dmaprof.analyze.unparsed import Unparsed
from dmaprof.analyze.userbuild import merge_run_as
from dmaprof.capture.dump import Dump, parse_dump

__all__ = ["COLLECTOR_SOURCE", "Analysis", "Coverage", "Totals", "analyze"]

#: ``Analysis.source`` of a collector dump (a capture's ``meta.json`` without ``source``)
COLLECTOR_SOURCE: dict[str, Any] = {"kind": "collector"}


@dataclass
class Analysis:
    """Everything known about one capture, whatever its source (a collector dump, a bugreport,
    dmabuf_dump text). Tables follow ``dmaprof.analyze.schema``; a table a source cannot give
    is empty, a column it cannot give is listed in :attr:`unknown`."""

    dump: Dump  # the collector dump (an empty one for other sources)
    charge: str
    service_regex: str
    device: dict[str, Any]
    processes: pd.DataFrame
    references: pd.DataFrame
    inventory: pd.DataFrame
    buffers: pd.DataFrame
    holdings: pd.DataFrame
    usage: pd.DataFrame
    apps: pd.DataFrame
    exporters: pd.DataFrame
    names: pd.DataFrame
    kernel_only: pd.DataFrame
    pools: pd.DataFrame
    unparsed: pd.DataFrame
    totals: Totals
    coverage: Coverage
    tasks: pd.DataFrame = field(default_factory=TASKS.empty)
    attachments: pd.DataFrame = field(default_factory=ATTACHMENTS.empty)
    cgroup_usage: pd.DataFrame = field(default_factory=CGROUP_USAGE.empty)
    crosscheck: pd.DataFrame = field(default_factory=CROSSCHECK.empty)
    cgroups: pd.DataFrame = field(default_factory=CGROUPS.empty)
    heaps: pd.DataFrame = field(default_factory=HEAPS.empty)
    ion_clients: pd.DataFrame = field(default_factory=ION_CLIENTS.empty)
    packages: pd.DataFrame = field(default_factory=PACKAGES.empty)
    errors: pd.DataFrame = field(default_factory=ERRORS.empty)
    unparsed_total: int = 0
    bufinfo: Bufinfo | None = None
    warnings: list[str] = field(default_factory=list)
    #: the cgroup hierarchy of the ``cgroup`` column and roll-ups: ``v2``, ``v1:cpuacct``...
    cgroup_hierarchy: str | None = None
    #: binder buffer memory (the dump's ``binder`` section; ``not_collected`` for other sources)
    binder: BinderInfo = field(default_factory=lambda: BinderInfo("not_collected"))
    #: where the dump came from: the capture's ``meta.json`` ``source`` (docs/capture-format.md)
    source: dict[str, Any] = field(default_factory=lambda: dict(COLLECTOR_SOURCE))
    #: what the source cannot tell, and why (docs/sources.md)
    limitations: list[Limitation] = field(default_factory=list)
    #: table -> columns the source cannot give (null in JSON, ``unknown`` in tables); the
    #: ``usage`` and ``totals`` entries also name keys of the report's processes and totals
    unknown: dict[str, list[str]] = field(default_factory=dict)
    #: ``dumpsys meminfo`` figures of a bugreport (raw bytes)
    meminfo: dict[str, int] = field(default_factory=dict)
    #: buffers whose name dmabuf_dump printed (``format_dmabuf_dump`` shows those names)
    named_inodes: frozenset[int] = frozenset()
    #: dmabuf_dump blocks whose PROCESS TOTAL stands over their rows (None: not a dmabuf_dump)
    stated_totals: list[StatedTotal] | None = None

    @property
    def source_kind(self) -> str:
        return str(self.source.get("kind", "collector"))

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

    if not _parse_threads:
        fdinfo = _SplitFdinfo(None, dump, scan)
        return _analyze(dump, scan, unparsed, fdinfo, charge, regex, warnings)
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
_parse_threads = True


def use_parse_thread(enabled: bool) -> None:
    """Whether this process parses a dump's fdinfo in a second thread (the default). Off for
    a pool of processes that already keeps every core busy: there the second thread only
    adds its hand-overs of the GIL (measured: 10-15% more CPU per sample)."""
    global _parse_threads
    _parse_threads = enabled


def _collector_pid(device: dict[str, Any]) -> int | None:
    """The collector's pid in the dump's /proc; None when its pid is not one of them (run
    chrooted over another /proc, or in another PID namespace): a process of that pid there
    is someone else, not to be left out as the collector."""
    if device.get("collector_pid_in_proc") is False:
        return None
    pid = device.get("collector_pid")
    return pid if isinstance(pid, int) else None


#: Sections the calling thread parses while the worker parses its part of ``fdinfo``, with
#: their parse time per byte relative to fdinfo's (measured by scripts/bench_analyze.py).
_CALLER_SECTIONS = {"proc": 2.5, "maps": 1.8, "sysfs_buffers": 1.4, "fdlinks": 0.8, "fdstat": 1.0}


class _SplitFdinfo:
    """The fdinfo section is the largest of a dump. A worker thread parses its first part
    while the calling thread parses the other sections and then the rest of it (numpy
    releases the GIL in its loops). The worker's share is sized by weighted bytes so that
    both threads have about as much to parse."""

    def __init__(self, pool: ThreadPoolExecutor | None, dump: Dump, scan: Scan) -> None:
        sec = dump.section("fdinfo")
        self.present = sec is not None
        own = sec.size if sec is not None else 0
        other = 0.0
        for name, weight in _CALLER_SECTIONS.items():
            part = dump.section(name)
            other += part.size * weight if part is not None else 0
        share = (own + other) / (2 * own) if own else 1.0
        if pool is None:  # one thread: all of it in result()
            share = 1.0
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
        if self.ranges and pool is not None:
            b, e = self.ranges[0]
            self.first = pool.submit(parse_fdinfo_range, scan, b, e, self.unparsed[0])

    def result(self, unparsed: Unparsed) -> FdInfo:
        """Parse the rest here, wait for the worker, and join (unparsed lines in order)."""
        skip = 0 if self.first is None else 1  # the worker's range
        rest = [
            parse_fdinfo_range(self.scan, b, e, u)
            for (b, e), u in zip(self.ranges[skip:], self.unparsed[skip:], strict=True)
        ]
        parts = ([self.first.result()] if self.first is not None else []) + rest
        for u in self.unparsed:
            unparsed.merge(u)
        return join_fdinfo(parts, self.present)


@dataclass
class _Sections:
    """What the parsers read from a dump, before attribution."""

    files: GlobalFiles
    device: dict[str, Any]
    packages: pd.DataFrame
    heap_names: list[str]
    heap_listed: bool
    fdaccess: set[int]
    fdaccess_present: bool
    tasks: pd.DataFrame
    info: ProcInfo
    maps: MapRefs
    sysfs: SysfsResult
    bpf: pd.DataFrame
    bpf_read: bool
    bufinfo: Bufinfo | None
    ion_heaps: list[Any]
    ion_clients: pd.DataFrame
    fdr: FdRefs


def _parse(
    dump: Dump, scan: Scan, unparsed: Unparsed, fdinfo: _SplitFdinfo, warnings: list[str]
) -> _Sections:
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
    links = parse_fdlinks(dump, scan, unparsed)
    fdinfo_unparsed = Unparsed()
    fdr = fd_references(dump, scan, unparsed, fdinfo.result(fdinfo_unparsed), links)
    unparsed.merge(fdinfo_unparsed)
    return _Sections(
        files, device, packages, heap_names, heap_listed, fdaccess, fdaccess_present, tasks,
        info, mpr, sysfs, bpf, bpf_read, bufinfo, ion_heaps, ion_clients, fdr,
    )  # fmt: skip


def _analyze(
    dump: Dump,
    scan: Scan,
    unparsed: Unparsed,
    fdinfo: _SplitFdinfo,
    charge: str,
    regex: str,
    warnings: list[str],
) -> Analysis:
    p = _parse(dump, scan, unparsed, fdinfo, warnings)
    inventory, attachments = build_inventory(p.sysfs.frame, p.bpf, p.bufinfo)
    refs = references_table(p.fdr.frame, p.maps.frame)
    cgroup_lines = p.info.cgroups_frame()
    cg, cgroup_hierarchy = cgroup_of(cgroup_lines)
    processes = processes_table(
        dump,
        p.info,
        refs,
        p.fdr.links.pids_seen,
        p.fdaccess,
        p.fdaccess_present,
        p.fdr.links.present,
        p.fdr.info.present,
        p.maps.present,
        _collector_pid(p.device),
        cg,
    )
    buffers = build_buffers(refs, inventory, attachments)
    att = attribute(processes, refs, buffers, p.packages, charge=charge, service_regex=regex)
    sources = source_states(dump, p.files, p.sysfs.present, p.bpf_read, p.bufinfo, p.heap_listed)
    totals = totals_of(
        buffers, att.held, inventory, p.bufinfo, refs, att.usage, p.sysfs.present, p.bpf_read,
        warnings,
    )  # fmt: skip
    kernel_only = (
        att.kernel_only if totals.kernel_only_bytes is not None else att.kernel_only.iloc[0:0]
    )
    coverage = coverage_of(processes, dump, p.device, sources, totals)
    warnings.extend(analysis_warnings(coverage, totals, len(att.crosscheck), unparsed))
    return Analysis(
        dump=dump,
        charge=charge,
        service_regex=regex,
        device=p.device,
        processes=processes,
        tasks=p.tasks,
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
        heaps=heaps_table(p.heap_names, p.ion_heaps, buffers),
        pools=pools_table(p.files, p.ion_heaps, p.bufinfo, unparsed),
        ion_clients=p.ion_clients,
        packages=p.packages,
        errors=errors_frame(dump),
        unparsed=unparsed.frame(),
        totals=totals,
        coverage=coverage,
        unparsed_total=unparsed.total,
        bufinfo=p.bufinfo,
        warnings=warnings,
        binder=parse_binder(dump),
    )
