"""The ``dmaprof.diff/2`` document (``dmaprof diff --format json``) as ``TypedDict`` classes.

:func:`dmaprof.leaks.diffresult.diff_json` builds exactly these and docs/json.md is generated
from them (:func:`diff_markdown`). ``X_before``, ``X_after`` and ``delta_X`` are written out
for every figure ``X``. Names as in ``dmaprof.report/1`` (:mod:`dmaprof.analyze.reporttypes`):
``rss_bytes``, ``shared_pss_bytes`` (exact share) and ``charged_bytes`` (charge policy); the
kept ``pss_bytes`` of processes, apps and cgroups is the charged figure, of ``totals`` the
exact share.
"""

from typing import Any, NotRequired, TypedDict

from dmaprof.analyze.jsondoc import markdown

__all__ = ["Diff", "diff_markdown"]


class DiffSide(TypedDict):
    """One capture of the comparison."""

    path: str  # the capture's path (or "capture")
    serial: str  # adb serial ("" when unknown)
    model: str  # device model
    fingerprint: str  # build fingerprint
    boot_id: str  # the boot it was taken in
    firstboot: str | None  # ro.runtime.firstboot
    uptime_s: float | None  # device uptime at capture time
    captured_at: str | None  # when, UTC (ISO 8601)
    complete: bool  # the collector finished
    mode: str | None  # root, shell, run-as, bugreport or dmabuf_dump
    source: str | None  # collector, bugreport or dmabuf_dump


class DiffSideCoverage(TypedDict):
    """What a side could see (docs/coverage.md)."""

    mode: str  # root, shell, run-as, bugreport or dmabuf_dump
    source: str  # collector, bugreport or dmabuf_dump
    uid: int | None  # the uid the collector ran as
    processes_unreadable: int  # processes that could not be read
    holders_complete: bool  # every holder of every buffer was seen
    inventory: bool  # a global listing of buffers was read
    cgroups: bool  # cgroups are known
    uids: bool  # uids are known


class DiffCoverage(TypedDict):
    """Coverage of each side."""

    before: DiffSideCoverage  # the first capture
    after: DiffSideCoverage  # the second capture


class DiffTotals(TypedDict):
    """Device-wide figures of both sides."""

    buffers_before: int | None  # buffers known, before
    buffers_after: int | None  # buffers known, after
    delta_buffers: int | None  # after - before (null when either is unknown)
    bytes_before: int | None  # their bytes, before
    bytes_after: int | None  # their bytes, after
    delta_bytes: int | None  # after - before (null when either is unknown)
    userspace_buffers_before: int | None  # buffers held by a process, before
    userspace_buffers_after: int | None  # buffers held by a process, after
    delta_userspace_buffers: int | None  # after - before (null when either is unknown)
    userspace_bytes_before: int | None  # their bytes, before
    userspace_bytes_after: int | None  # their bytes, after
    delta_userspace_bytes: int | None  # after - before (null when either is unknown)
    kernel_only_buffers_before: int | None  # buffers no process holds, before
    kernel_only_buffers_after: int | None  # buffers no process holds, after
    delta_kernel_only_buffers: int | None  # after - before (null when either is unknown)
    kernel_only_bytes_before: int | None  # their bytes, before
    kernel_only_bytes_after: int | None  # their bytes, after
    delta_kernel_only_bytes: int | None  # after - before (null when either is unknown)
    pss_bytes_before: int | None  # sum of the exact shares (as shared_pss_bytes), before
    pss_bytes_after: int | None  # sum of the exact shares (as shared_pss_bytes), after
    delta_pss_bytes: int | None  # after - before (null when either is unknown)
    charged_bytes_before: int | None  # sum of the charged figures, before
    charged_bytes_after: int | None  # sum of the charged figures, after
    delta_charged_bytes: int | None  # after - before (null when either is unknown)
    anon_fds_before: int | None  # fds without per-buffer identity, before
    anon_fds_after: int | None  # fds without per-buffer identity, after
    delta_anon_fds: int | None  # after - before (null when either is unknown)
    anon_fd_bytes_before: int | None  # their sizes, before
    anon_fd_bytes_after: int | None  # their sizes, after
    delta_anon_fd_bytes: int | None  # after - before (null when either is unknown)
    anon_maps_before: int | None  # mappings without per-buffer identity, before
    anon_maps_after: int | None  # mappings without per-buffer identity, after
    delta_anon_maps: int | None  # after - before (null when either is unknown)
    anon_mapped_bytes_before: int | None  # their bytes, before
    anon_mapped_bytes_after: int | None  # their bytes, after
    delta_anon_mapped_bytes: int | None  # after - before (null when either is unknown)
    shared_pss_bytes_before: int | None  # sum of the exact shares, before
    shared_pss_bytes_after: int | None  # sum of the exact shares, after
    delta_shared_pss_bytes: int | None  # after - before (null when either is unknown)


class DiffBuffer(TypedDict):
    """A buffer new in the second capture, or freed since the first."""

    inode: int  # the buffer's inode
    size_bytes: int  # its size
    exporter: str | None  # its exporter ("" when unknown)
    name: str | None  # its name
    holders: list[int]  # pids holding it
    kernel_only: bool | None  # held by no process (null when holders were not all seen)


class DiffBuffers(TypedDict):
    """Buffers by identity (same boot only: `compared`)."""

    compared: bool  # both captures are of one boot: buffers compared by inode
    new: list[DiffBuffer]  # buffers of the second capture only
    freed: list[DiffBuffer]  # buffers of the first capture only
    new_count: int  # how many new
    new_bytes: int  # their bytes
    freed_count: int  # how many freed
    freed_bytes: int  # their bytes
    kept_count: int  # buffers in both
    kept_bytes: int  # their bytes
    moved_count: int  # of them, with other holders


class DiffProcess(TypedDict):
    """A process of either side (matched by pid, start time and name)."""

    pid: int  # the process (the latest pid across a reboot)
    name: str  # its display name
    status: str  # new, exited or kept
    start_time_ticks: int | None  # start time (stat field 22); null across a reboot
    comm: str  # its comm
    uid: int  # its uid (-1 when unknown)
    owner_uid: int  # the uid it is charged to (-1 when unknown)
    cgroup: str  # its cgroup ("" when unknown)
    rss_bytes_before: int | None  # bytes of every buffer it holds, before
    rss_bytes_after: int | None  # bytes of every buffer it holds, after
    delta_rss_bytes: int | None  # after - before (null when either is unknown)
    pss_bytes_before: (
        int | None
    )  # its charged figure (as charged_bytes; kept for dmaprof.diff/2 readers), before
    pss_bytes_after: (
        int | None
    )  # its charged figure (as charged_bytes; kept for dmaprof.diff/2 readers), after
    delta_pss_bytes: int | None  # after - before (null when either is unknown)
    charged_bytes_before: int | None  # its figure under the charge policy, before
    charged_bytes_after: int | None  # its figure under the charge policy, after
    delta_charged_bytes: int | None  # after - before (null when either is unknown)
    shared_pss_bytes_before: int | None  # its exact proportional share, before
    shared_pss_bytes_after: int | None  # its exact proportional share, after
    delta_shared_pss_bytes: int | None  # after - before (null when either is unknown)
    buffers_before: int | None  # buffers it holds, before
    buffers_after: int | None  # buffers it holds, after
    delta_buffers: int | None  # after - before (null when either is unknown)
    fd_only_before: int | None  # buffers held only by fd, before
    fd_only_after: int | None  # buffers held only by fd, after
    delta_fd_only: int | None  # after - before (null when either is unknown)
    map_only_before: int | None  # buffers held only by mapping, before
    map_only_after: int | None  # buffers held only by mapping, after
    delta_map_only: int | None  # after - before (null when either is unknown)
    both_before: int | None  # buffers held by fd and mapping, before
    both_after: int | None  # buffers held by fd and mapping, after
    delta_both: int | None  # after - before (null when either is unknown)
    map_only_bytes_before: int | None  # bytes of buffers held only by mapping, before
    map_only_bytes_after: int | None  # bytes of buffers held only by mapping, after
    delta_map_only_bytes: int | None  # after - before (null when either is unknown)
    fds_before: int | None  # its fd references, before
    fds_after: int | None  # its fd references, after
    delta_fds: int | None  # after - before (null when either is unknown)
    maps_before: int | None  # its mappings, before
    maps_after: int | None  # its mappings, after
    delta_maps: int | None  # after - before (null when either is unknown)
    gained_buffers: int | None  # holdings that appeared
    lost_buffers: int | None  # holdings that went away
    gained_new_buffers: int | None  # of the gained, buffers new in the second capture
    lost_freed_buffers: int | None  # of the lost, buffers freed since the first
    unreadable: bool  # a side could not read it
    pids: NotRequired[list[int]]  # across a reboot: every pid of that name


class DiffApp(TypedDict):
    """An app or system uid of either side."""

    uid: int  # the owner uid
    label: str  # its name for people
    kind: str  # app, system, isolated, sdk_sandbox or other
    packages: list[str]  # its packages
    status: str  # new, gone, kept or unknown
    rss_bytes_before: int | None  # bytes its processes hold, before
    rss_bytes_after: int | None  # bytes its processes hold, after
    delta_rss_bytes: int | None  # after - before (null when either is unknown)
    pss_bytes_before: int | None  # charged figure (as charged_bytes; kept), before
    pss_bytes_after: int | None  # charged figure (as charged_bytes; kept), after
    delta_pss_bytes: int | None  # after - before (null when either is unknown)
    charged_bytes_before: int | None  # sum of its processes' charged figures, before
    charged_bytes_after: int | None  # sum of its processes' charged figures, after
    delta_charged_bytes: int | None  # after - before (null when either is unknown)
    shared_pss_bytes_before: int | None  # sum of their exact shares, before
    shared_pss_bytes_after: int | None  # sum of their exact shares, after
    delta_shared_pss_bytes: int | None  # after - before (null when either is unknown)
    buffers_before: int | None  # buffers they hold, before
    buffers_after: int | None  # buffers they hold, after
    delta_buffers: int | None  # after - before (null when either is unknown)
    processes_before: int | None  # its processes, before
    processes_after: int | None  # its processes, after
    delta_processes: int | None  # after - before (null when either is unknown)


class DiffCgroup(TypedDict):
    """A cgroup of either side."""

    path: str  # the cgroup path
    status: str  # new, gone or kept
    rss_bytes_before: int | None  # bytes its processes hold, before
    rss_bytes_after: int | None  # bytes its processes hold, after
    delta_rss_bytes: int | None  # after - before (null when either is unknown)
    pss_bytes_before: int | None  # charged figure (as charged_bytes; kept), before
    pss_bytes_after: int | None  # charged figure (as charged_bytes; kept), after
    delta_pss_bytes: int | None  # after - before (null when either is unknown)
    charged_bytes_before: int | None  # its processes' charged figures, before
    charged_bytes_after: int | None  # its processes' charged figures, after
    delta_charged_bytes: int | None  # after - before (null when either is unknown)
    rss_bytes_with_descendants_before: int | None  # rss of its subtree, before
    rss_bytes_with_descendants_after: int | None  # rss of its subtree, after
    delta_rss_bytes_with_descendants: int | None  # after - before (null when either is unknown)
    pss_bytes_with_descendants_before: (
        int | None
    )  # charged figure of its subtree (as charged_bytes_with_descendants; kept), before
    pss_bytes_with_descendants_after: (
        int | None
    )  # charged figure of its subtree (as charged_bytes_with_descendants; kept), after
    delta_pss_bytes_with_descendants: int | None  # after - before (null when either is unknown)
    charged_bytes_with_descendants_before: int | None  # charged figure of its subtree, before
    charged_bytes_with_descendants_after: int | None  # charged figure of its subtree, after
    delta_charged_bytes_with_descendants: int | None  # after - before (null when either is unknown)
    processes_before: int | None  # its processes, before
    processes_after: int | None  # its processes, after
    delta_processes: int | None  # after - before (null when either is unknown)


class DiffExporterGroup(TypedDict):
    """Buffers by exporter, both sides."""

    exporter: str  # the exporter
    status: str  # new, gone, kept or unknown
    buffers_before: int | None  # buffers, before
    buffers_after: int | None  # buffers, after
    delta_buffers: int | None  # after - before (null when either is unknown)
    bytes_before: int | None  # their bytes, before
    bytes_after: int | None  # their bytes, after
    delta_bytes: int | None  # after - before (null when either is unknown)
    userspace_buffers_before: int | None  # of them, held by a process, before
    userspace_buffers_after: int | None  # of them, held by a process, after
    delta_userspace_buffers: int | None  # after - before (null when either is unknown)
    userspace_bytes_before: int | None  # their bytes, before
    userspace_bytes_after: int | None  # their bytes, after
    delta_userspace_bytes: int | None  # after - before (null when either is unknown)
    kernel_only_buffers_before: int | None  # of them, held by no process, before
    kernel_only_buffers_after: int | None  # of them, held by no process, after
    delta_kernel_only_buffers: int | None  # after - before (null when either is unknown)
    kernel_only_bytes_before: int | None  # their bytes, before
    kernel_only_bytes_after: int | None  # their bytes, after
    delta_kernel_only_bytes: int | None  # after - before (null when either is unknown)
    holders_before: int | None  # processes holding one, before
    holders_after: int | None  # processes holding one, after
    delta_holders: int | None  # after - before (null when either is unknown)
    new_buffers: int  # buffers new in the second capture
    new_bytes: int  # their bytes
    freed_buffers: int  # buffers freed since the first
    freed_bytes: int  # their bytes


class DiffNameGroup(TypedDict):
    """Buffers by name, both sides (as exporters)."""

    name: str  # the buffer name
    status: str  # new, gone, kept or unknown
    buffers_before: int | None  # buffers, before
    buffers_after: int | None  # buffers, after
    delta_buffers: int | None  # after - before (null when either is unknown)
    bytes_before: int | None  # their bytes, before
    bytes_after: int | None  # their bytes, after
    delta_bytes: int | None  # after - before (null when either is unknown)
    userspace_buffers_before: int | None  # of them, held by a process, before
    userspace_buffers_after: int | None  # of them, held by a process, after
    delta_userspace_buffers: int | None  # after - before (null when either is unknown)
    userspace_bytes_before: int | None  # their bytes, before
    userspace_bytes_after: int | None  # their bytes, after
    delta_userspace_bytes: int | None  # after - before (null when either is unknown)
    kernel_only_buffers_before: int | None  # of them, held by no process, before
    kernel_only_buffers_after: int | None  # of them, held by no process, after
    delta_kernel_only_buffers: int | None  # after - before (null when either is unknown)
    kernel_only_bytes_before: int | None  # their bytes, before
    kernel_only_bytes_after: int | None  # their bytes, after
    delta_kernel_only_bytes: int | None  # after - before (null when either is unknown)
    holders_before: int | None  # processes holding one, before
    holders_after: int | None  # processes holding one, after
    delta_holders: int | None  # after - before (null when either is unknown)
    new_buffers: int  # buffers new in the second capture
    new_bytes: int  # their bytes
    freed_buffers: int  # buffers freed since the first
    freed_bytes: int  # their bytes


class Diff(TypedDict):
    """The document (`dmaprof.diff/2`)."""

    schema: str  # "dmaprof.diff/2"
    charge: str  # the charge policy of both sides
    before: DiffSide  # the first capture
    after: DiffSide  # the second capture
    same_device: bool | None  # both captures are of one device (null when unknown)
    same_boot: bool  # both captures are of one boot
    forced: bool  # compared although devices differ (--force)
    lower_bound: bool  # a side's figures are lower bounds
    coverage: DiffCoverage  # what each side could see
    unknown_reasons: list[str]  # why figures are null, one sentence each
    warnings: list[str]  # what to know about the comparison
    totals: DiffTotals  # device-wide figures
    buffers: DiffBuffers  # new, freed and kept buffers
    processes: list[DiffProcess]  # processes of either side
    apps: list[DiffApp]  # apps of either side
    cgroups: list[DiffCgroup]  # cgroups of either side
    exporters: list[DiffExporterGroup]  # buffers by exporter
    names: list[DiffNameGroup]  # buffers by name
    suspects: list[dict[str, Any]]  # ranked leak suspects: rank, kind, key, delta_bytes, reason...
    budgets: NotRequired[dict[str, Any]]  # budget rules' results (docs/ci.md; with rules only)


_PREAMBLE = """
`dmaprof diff --format json`. Raw integer bytes; `null` where a side could not see the figure
(docs/coverage.md). Keys may be added; those below are stable for the schema version.
Generated from `dmaprof/leaks/difftypes.py`.
"""


def diff_markdown() -> str:
    return markdown(Diff, "The diff (`dmaprof.diff/2`)", _PREAMBLE)


_HEADER = """\
# JSON documents

<!-- Generated from dmaprof/analyze/reporttypes.py and dmaprof/leaks/difftypes.py by
dmaprof.leaks.difftypes.json_markdown(); do not edit: tests/test_json_docs.py checks it. -->

The machine-readable documents of `dmaprof show` and `dmaprof diff`, one table per JSON object.
mypy checks the code that builds them against the same types, and the tests check real
documents against them (no undeclared key, every "always" key present).

## One name per meaning

{names}

Read `shared_pss_bytes` and `charged_bytes`: they mean the same in every document and in
every table. `pss_bytes` stays for the readers of `dmaprof.report/1` and `dmaprof.diff/2`
(its meaning there is the one it always had, as above), in the `--format csv`/`markdown`
columns of `show` and `diff` (the same keys as those documents), and in the datasets of
`dmaprof export` (a `pss_bytes` column beside each `shared_pss_bytes`, with the same values).

"""


#: meaning, tables, JSON (new name), JSON (kept in this schema version), diff and trend sides
_NAMES = (
    ("meaning", "tables (docs/tables.md)", "JSON", "JSON (kept in this schema version)",
     "diff, trend sides"),
    ("---",) * 5,
    ("bytes of every buffer a process holds", "`rss_bytes`", "`rss_bytes`", "", "`rss`"),
    ("exact proportional share (each buffer split among its holders)", "`shared_pss_bytes`",
     "`shared_pss_bytes`", "`pss_bytes` of `totals` and `crosscheck`", "`shared_pss`"),
    ("the figure under the charge policy (`--charge`)", "`charged_bytes`", "`charged_bytes`",
     "`pss_bytes` of processes, apps, cgroups (and their diff rows)", "`charged`"),
)  # fmt: skip


def json_markdown() -> str:
    """docs/json.md: the report and the diff documents."""
    from dmaprof.analyze.reporttypes import report_markdown

    names = "\n".join("| " + " | ".join(row) + " |" for row in _NAMES)
    return _HEADER.format(names=names) + report_markdown() + "\n" + diff_markdown()
