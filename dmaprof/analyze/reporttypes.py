"""The ``dmaprof.report/1`` document (``dmaprof show --format json``) as ``TypedDict`` classes.

One class per JSON object; :func:`dmaprof.analyze.report.build_report` builds exactly these,
mypy checks it, and docs/json.md is generated from them (:func:`report_markdown`). The
comment after a key is its meaning in the docs.

Names (one per meaning, docs/tables.md): ``rss_bytes`` is the bytes of every buffer held,
``shared_pss_bytes`` the exact proportional share (each buffer split among its holders) and
``charged_bytes`` the figure under the charge policy (``shared``: the share, ``full``: rss,
``client``: the client charge). In this schema version ``pss_bytes`` of processes, apps and
cgroups is kept as it always was: the *charged* figure (a copy of ``charged_bytes``); in
``totals`` and ``crosscheck`` it is the exact share (as ``shared_pss_bytes``).
"""

from typing import Any, NotRequired, TypedDict

from dmaprof.analyze.jsondoc import markdown

__all__ = ["Report", "report_markdown"]


class Limitation(TypedDict):
    """What a source cannot tell, and why (docs/sources.md)."""

    key: str  # stable identifier: `fd_map_split`, `cgroups`, `uids`, ...
    view: str  # the view it concerns: `processes`, `app`, `cgroup`, `buffer`, `diff`, ...
    message: str  # one sentence for people


class StatedTotal(TypedDict):
    """A dmabuf_dump process block whose PROCESS TOTAL is not the sum of its rows."""

    pid: int  # the process
    name: str  # its name as shown
    rows_rss_kb: int  # sum of its rows' Rss
    total_rss_kb: int  # the PROCESS TOTAL Rss (what the process's rss is taken from)
    rows_pss_kb: int  # sum of its rows' Pss
    total_pss_kb: int | None  # the PROCESS TOTAL Pss (null when not printed)


class Totals(TypedDict):
    """System-wide figures (`Totals` in `dmaprof.analyze.totals`); null when unknown."""

    buffers: int | None  # buffers known
    bytes: int | None  # their bytes
    userspace_bytes: int | None  # bytes of buffers held by >= 1 process
    kernel_only_bytes: int | None  # bytes of inventory buffers no process holds
    userspace_buffers: int | None  # buffers held by >= 1 process
    kernel_only_buffers: int | None  # inventory buffers no process holds
    inventory_source: str | None  # the global listing used: bpf, sysfs, debugfs, dmabuf_dump_b
    inventory_buffers: int | None  # buffers that listing has
    inventory_bytes: int | None  # their bytes
    held_not_in_inventory: int | None  # held buffers the listing lacks (created meanwhile)
    estimated_buffers: int | None  # held buffers whose size is an estimate
    estimated_bytes: int | None  # their bytes
    anon_fds: int | None  # fds without per-buffer identity (not deduplicated)
    anon_fd_bytes: int | None  # the sizes those fds report
    anon_maps: int | None  # mappings without per-buffer identity
    anon_mapped_bytes: int | None  # their mapped bytes
    pss_bytes: int | None  # sum of every process's exact share (== shared_pss_bytes)
    charged_bytes: int | None  # sum of every process's charged figure
    aosp_kernel_rss_bytes: int | None  # dmabuf_dump's kernel_rss, with its quirks
    shared_pss_bytes: int | None  # sum of every process's exact share


class Unreadable(TypedDict):
    """A process some of whose files could not be read."""

    pid: int  # the process
    name: str | None  # its comm
    uid: int | None  # its uid
    what: list[str]  # what was denied: fds, maps, fdinfo


class Coverage(TypedDict):
    """What the capture could read (docs/coverage.md)."""

    processes: int  # userspace processes examined
    processes_unreadable: int  # of them, some of whose files could not be read
    kernel_threads: int  # kernel threads seen (not examined)
    unreadable: list[Unreadable]  # those processes
    processes_vanished: int  # processes gone while the capture ran
    lower_bound: bool  # userspace figures are lower bounds
    capture_uid: int | None  # the uid the collector ran as
    sources: dict[str, str]  # source -> present, empty, absent, denied or missing
    missing_sources: list[str]  # important sources the dump lacks
    truncated: bool  # the dump was cut
    unparsed_lines: int  # lines no parser understood (the unparsed table)


class Process(TypedDict):
    """A process holding a buffer (or, in a restricted capture, one that could not be read)."""

    pid: int | None  # the process
    name: str | None  # the kernel's comm (15 bytes)
    display_name: str | None  # argv[0]'s basename, else the comm: what `ps` shows
    cmdline: str | None  # the command line, NULs as spaces
    uid: int | None  # its uid
    owner_uid: int | None  # the app or system uid it is charged to (docs/attribution.md)
    cgroup: str | None  # its cgroup path
    rss_bytes: int | None  # bytes of every buffer it holds
    charged_bytes: int | None  # its figure under the charge policy
    pss_bytes: int | None  # as charged_bytes (kept for dmaprof.report/1 readers)
    shared_pss_bytes: int | None  # its exact proportional share
    buffers: int | None  # buffers it holds
    fds: int | None  # its fd references
    maps: int | None  # its mappings
    fd_only: int | None  # buffers held only by fd
    map_only: int | None  # buffers held only by mapping
    both: int | None  # buffers held by fd and mapping
    rss_estimated: bool | None  # some of its sizes are estimates
    is_service: bool | None  # matches the client policy's service regex
    anon_fds: int | None  # its fds without per-buffer identity
    anon_fd_bytes: int | None  # their sizes
    anon_maps: int | None  # its mappings without per-buffer identity
    anon_mapped_bytes: int | None  # their bytes
    unreadable: bool | None  # some of its files could not be read
    kernel_dmabuf_rss_bytes: int | None  # the kernel's /proc/<pid>/dmabuf_rss (ACK)
    kernel_dmabuf_pss_bytes: int | None  # the kernel's /proc/<pid>/dmabuf_pss (ACK)
    pss_exact: NotRequired[bool | None]  # restricted capture: its share is exact
    pss_min_bytes: NotRequired[int | None]  # restricted capture: lower bound of its share


class Buffer(TypedDict):
    """A buffer (one per inode)."""

    inode: int  # the buffer's inode
    size_bytes: int  # its size
    exporter: str | None  # its exporter (heap)
    name: str | None  # its name (DMA_BUF_SET_NAME)
    size_source: str | None  # where the size comes from
    size_estimated: bool  # the size is an estimate
    count: int | None  # fdinfo's reference count
    attached_devices: list[str]  # devices that import it (bufinfo)
    in_inventory: bool  # a global listing has it
    sources: str  # the sources that list it, joined by `+`
    holders: list[int]  # pids holding it (those seen)
    kernel_only: bool | None  # listed, held by no process (null when unknown)
    holders_complete: NotRequired[bool | None]  # restricted capture: every holder was seen


class App(TypedDict):
    """An app or system uid and what its processes hold."""

    uid: int  # the owner uid
    packages: list[str]  # its packages
    rss_bytes: int | None  # bytes of every buffer its processes hold (each buffer once)
    charged_bytes: int | None  # sum of its processes' charged figures
    pss_bytes: int | None  # as charged_bytes (kept for dmaprof.report/1 readers)
    shared_pss_bytes: int | None  # sum of its processes' exact shares
    label: str | None  # its name for people
    kind: str | None  # app, system, isolated, sdk_sandbox or other
    user_id: int  # Android user
    app_id: int  # uid within the user
    processes: int  # its processes
    pids: list[int]  # their pids
    buffers: int | None  # buffers they hold (each once)
    unreadable: NotRequired[bool]  # restricted capture: one of its processes is unreadable
    pss_exact: NotRequired[bool | None]  # restricted capture: its share is exact
    pss_min_bytes: NotRequired[int | None]  # restricted capture: lower bound of its share


class Cgroup(TypedDict):
    """A cgroup and what its processes hold (own, and with its descendants)."""

    path: str  # the cgroup path
    charged_bytes: int | None  # its processes' charged figures
    charged_bytes_with_descendants: int | None  # the same for its subtree
    pss_bytes: int | None  # as charged_bytes (kept for dmaprof.report/1 readers)
    pss_bytes_with_descendants: int | None  # as charged_bytes_with_descendants (kept)
    shared_pss_bytes: int | None  # its processes' exact shares
    shared_pss_bytes_with_descendants: int | None  # the same for its subtree
    rss_bytes: int | None  # bytes its processes hold
    rss_bytes_with_descendants: int | None  # the same for its subtree
    processes: int  # its processes
    processes_with_descendants: int  # its subtree's processes
    depth: int  # depth below the root


class ExporterGroup(TypedDict):
    """Buffers by exporter."""

    exporter: str  # the exporter
    buffers: int  # buffers
    bytes: int  # their bytes
    userspace_buffers: int | None  # of them, held by a process
    userspace_bytes: int | None  # their bytes
    kernel_only_buffers: int | None  # of them, held by no process
    kernel_only_bytes: int | None  # their bytes
    holders: int | None  # processes holding one


class NameGroup(TypedDict):
    """Buffers by name (as exporters)."""

    name: str  # the buffer name
    buffers: int  # buffers
    bytes: int  # their bytes
    userspace_buffers: int | None  # of them, held by a process
    userspace_bytes: int | None  # their bytes
    kernel_only_buffers: int | None  # of them, held by no process
    kernel_only_bytes: int | None  # their bytes
    holders: int | None  # processes holding one


class KernelOnly(TypedDict):
    """A buffer a global listing has and no process holds."""

    inode: int  # the buffer's inode
    size_bytes: int  # its size
    exporter: str | None  # its exporter
    name: str | None  # its name
    count: int | None  # fdinfo's reference count
    attached_devices: list[str]  # devices that import it


class AttachedDevice(TypedDict):
    """A device importing buffers (docs/tables.md `attached_devices`)."""

    device: str  # `dev_name()` of the importing device
    category: str  # gpu, display, camera, codec, audio, virtual or other
    buffers: int  # buffers attached to it
    attachments: int  # attachments
    bytes: int  # bytes of those buffers
    exporters: list[str]  # their exporters


class AttachedSummary(TypedDict):
    """What the device view covers."""

    source: str | None  # debugfs_bufinfo, or null
    bufinfo: str | None  # the state of debugfs bufinfo
    buffers: int | None  # buffers bufinfo lists
    bytes: int | None  # their bytes
    buffers_attached: int | None  # of them, attached to a device
    bytes_attached: int | None  # their bytes
    note: str | None  # why the view is empty
    state: str  # attached, none_attached or no_bufinfo


class Heap(TypedDict):
    """A dma-buf heap or ION heap (the `heaps` table)."""

    heap: str  # heap name
    source: str  # dma_heap or ion_debugfs
    buffers: int  # buffers of that exporter
    bytes: int  # their bytes


class Pool(TypedDict):
    """A kernel counter (the `pools` table)."""

    counter: str  # the counter
    bytes: int  # its bytes
    count: int | None  # its count, when it has one
    path: str | None  # where it was read


class Crosscheck(TypedDict):
    """A process whose kernel dmabuf_rss/pss disagree with dmaprof's (the `crosscheck` table)."""

    pid: int  # the process
    name: str | None  # its name
    rss_bytes: int  # dmaprof's rss
    kernel_rss_bytes: int | None  # the kernel's dmabuf_rss
    pss_bytes: int  # dmaprof's exact share (as shared_pss_bytes; kept)
    kernel_pss_bytes: int | None  # the kernel's dmabuf_pss
    rss_agrees: bool  # equal
    pss_agrees: bool  # equal within one byte per buffer
    shared_pss_bytes: int  # dmaprof's exact share


class Access(TypedDict):
    """How the capture could read processes (docs/user-build.md)."""

    mode: str  # root, run-as or shell
    restricted: bool  # some processes could not be read: their figures are null
    run_as_packages: list[str]  # packages read through run-as
    note: str | None  # what null figures mean, in a restricted capture


class SystemTotals(TypedDict):
    """System-wide figures `dumpsys meminfo` printed (raw bytes)."""

    source: str  # dumpsys meminfo
    dmabuf_bytes: int | None  # exported dma-buf total
    dmabuf_mapped_bytes: int | None  # of it, mapped by a process
    dmabuf_unmapped_bytes: int | None  # of it, not mapped
    heaps_bytes: int | None  # exported by a dma-buf heap
    heap_pools_bytes: int | None  # freed pages the heaps keep
    gpu_bytes: int | None  # gpu_mem total
    gpu_dmabuf_bytes: int | None  # of it, dma-bufs
    gpu_private_bytes: int | None  # of it, private
    ion_bytes: int | None  # ION devices: heaps + pools
    ion_mapped_bytes: int | None  # of it, mapped
    ion_unmapped_bytes: int | None  # of it, not mapped
    ion_pools_bytes: int | None  # ION pools
    lines: list[str]  # the lines read, verbatim


class GraphicBuffers(TypedDict):
    """One process's gralloc bookkeeping as `dumpsys` printed it."""

    source: str  # dumpsys SurfaceFlinger or dumpsys gfxinfo PACKAGE
    package: str | None  # the package (gfxinfo)
    pid: int | None  # the process
    process: str | None  # its name
    allocated: list[dict[str, Any]]  # buffers it allocated (name, size_bytes, ...)
    allocated_total_bytes: int | None  # its "Total allocated" line
    imported: list[dict[str, Any]]  # buffers it imported
    imported_total_bytes: int | None  # its "Total imported by gralloc" line
    note: str | None  # e.g. "No process found for: PACKAGE"
    unparsed_lines: int  # lines not understood


class RunAs(TypedDict):
    """What `--app PACKAGE` gave."""

    package: str  # the package
    status: str  # ok, not_running, not_debuggable, unknown_package, unavailable, failed, ...
    message: str | None  # what failed
    pids: list[int]  # its processes read
    uid: int | None  # its uid


class BinderTotals(TypedDict):
    """Binder figures summed over processes (null when no process says)."""

    buffers: int | None  # allocated buffers
    allocated_bytes: int | None  # their bytes
    free_bytes: int | None  # mapped - allocated
    mapped_bytes: int | None  # the mappings' bytes
    resident_bytes: int | None  # pages held
    high_watermark_bytes: int | None  # most pages ever in use


class BinderProcess(TypedDict):
    """Binder buffer memory of one process (docs/tables.md `binder.processes`)."""

    pid: int  # the receiving process
    name: str | None  # its name
    contexts: list[str]  # binder contexts it opened
    buffers: int | None  # allocated buffers
    active_buffers: int | None  # C driver: buffers a transaction still references
    oneway_buffers: int | None  # Rust driver: buffers of oneway transactions
    reserved_buffers: int | None  # Rust driver: buffers the kernel holds
    allocated_bytes: int | None  # bytes of the buffers
    free_bytes: int | None  # mapped - allocated
    mapped_bytes: int | None  # the mapping's pages x page size
    resident_bytes: int | None  # pages held x page size
    pages_active: int | None  # pages in use
    pages_lru: int | None  # freed pages on binder's LRU
    pages_free: int | None  # pages not allocated
    pages_high_watermark: int | None  # most pages ever in use
    high_watermark_bytes: int | None  # pages_high_watermark x page size
    free_async_space_bytes: int | None  # space left for oneway transactions


class Binder(TypedDict):
    """Binder buffer memory (`show --by binder`)."""

    state: str  # present, absent, denied, empty, missing or not_collected
    driver: str | None  # c, rust
    root: str | None  # binderfs or debugfs path read
    page_size_bytes: int  # page size used for page counts
    page_size_known: bool  # the page size was read (else 4 KiB)
    note: str | None  # why the view is empty or partial
    totals: BinderTotals  # sums over processes
    processes: list[BinderProcess]  # per process
    unparsed_lines: int  # files or lines not understood


class CaptureRef(TypedDict):
    """The capture file the report was made from."""

    path: str | None  # its path
    complete: bool  # the collector finished
    schema: str | None  # the capture's meta.json schema


class Unknown(TypedDict, total=False):
    """Figures the source cannot give (null in this report): view -> keys."""

    processes: list[str]  # keys of `processes` rows that are null
    totals: list[str]  # keys of `totals` that are null
    cgroups: list[str]  # keys of `cgroups` rows that are unknown


class Report(TypedDict):
    """The document (`dmaprof.report/1`)."""

    schema: str  # "dmaprof.report/1"
    charge: str  # the charge policy: shared, full or client
    service_regex: str | None  # the client policy's service regex (null for other policies)
    device: dict[str, Any]  # device facts: the dump's, then the capture's (serial, transport...)
    totals: Totals  # system-wide figures
    coverage: Coverage  # what could be read
    processes: list[Process]  # processes holding buffers, by charged bytes
    buffers: list[Buffer]  # buffers, by size
    apps: list[App]  # apps and system uids
    cgroups: list[Cgroup]  # cgroups, by path
    cgroup_hierarchy: str | None  # the hierarchy of the cgroup figures: v2, v1:cpuacct, ...
    exporters: list[ExporterGroup]  # buffers by exporter
    names: list[NameGroup]  # buffers by name
    kernel_only: list[KernelOnly] | None  # buffers no process holds (null when unknown)
    attached_devices: list[AttachedDevice]  # devices importing buffers
    attached_devices_summary: AttachedSummary  # what the device view covers
    heaps: list[Heap]  # heaps
    pools: list[Pool]  # kernel counters
    crosscheck: list[Crosscheck]  # disagreements with the kernel's own figures
    warnings: list[str]  # what to know about these figures
    access: Access  # how processes could be read
    system_totals: SystemTotals | None  # dumpsys meminfo's totals (user-build captures)
    graphic_buffers: list[GraphicBuffers]  # gralloc bookkeeping (user-build captures)
    run_as: list[RunAs]  # --app results
    source: dict[str, Any]  # where the dump came from (meta.json `source`; kind collector...)
    limitations: list[Limitation]  # what the source cannot tell
    binder: Binder  # binder buffer memory
    capture: NotRequired[CaptureRef]  # the capture file (reports made by `show`)
    unknown: NotRequired[Unknown]  # figures the source cannot give (imported sources)
    process_totals: NotRequired[list[StatedTotal]]  # blocks whose PROCESS TOTAL stands
    meminfo: NotRequired[dict[str, int]]  # dumpsys meminfo figures of a bugreport


_PREAMBLE = """
`dmaprof show --format json`. Raw integer bytes; `null` where the capture or its source cannot
tell (never a zero that looks measured). Keys may be added; those below are stable for the
schema version. "always" says whether every report has the key. Generated from
`dmaprof/analyze/reporttypes.py`.
"""


def report_markdown() -> str:
    return markdown(Report, "The report (`dmaprof.report/1`)", _PREAMBLE)
