"""One documented schema per table the analyzer produces.

Every DataFrame dmaprof builds goes through :meth:`Schema.frame`, which orders the columns
and coerces them to the declared dtypes, so the tables always match their documentation.
``docs/tables.md`` is generated from :data:`SCHEMAS` (:func:`tables_markdown`) and a test
checks that the file is up to date.

dtypes (pandas 3):

* ``int64`` / ``int32``: never missing. Bytes are always ``int64`` raw bytes, never floats.
* ``Int64`` / ``Int32``: pandas' nullable integers, for values a source may not give.
* ``str``: pandas 3's string dtype (missing values are NaN, shown as null in JSON).
* ``category``: a small set of string values.
* ``bool``: never missing.
* ``object``: Python objects, named in the unit column (``bytes``, ``tuple[str]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["REPORT_VIEWS", "SCHEMAS", "Column", "Schema", "SchemaError", "tables_markdown"]

_DTYPES = frozenset({"int64", "int32", "Int64", "Int32", "str", "category", "bool", "object"})


class SchemaError(ValueError):
    """A frame does not match its schema (a dmaprof bug, not a user error)."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: str
    unit: str
    doc: str

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"column {self.name}: unknown dtype {self.dtype}")


@dataclass(frozen=True, slots=True)
class Schema:
    name: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def empty(self) -> pd.DataFrame:
        return self.frame({})

    def frame(
        self, data: Mapping[str, Any] | pd.DataFrame, length: int | None = None
    ) -> pd.DataFrame:
        """Build the table from column data; missing columns are filled with nulls
        (nullable dtypes), ``False`` (bool), ``0`` (int) or empty values."""
        if isinstance(data, pd.DataFrame):
            n = len(data)
            source: Mapping[str, Any] = {c: data[c] for c in data.columns}
        else:
            source = data
            if length is not None:
                n = length
            else:
                n = 0
                for v in source.values():
                    n = len(v)
                    break
        out: dict[str, Any] = {}
        for col in self.columns:
            if col.name in source:
                out[col.name] = _coerce(source[col.name], col, n)
            else:
                out[col.name] = _coerce(None, col, n)
        df = pd.DataFrame(out, index=pd.RangeIndex(n))
        return df

    def validate(self, df: pd.DataFrame) -> None:
        """Raise :class:`SchemaError` unless ``df`` has exactly these columns and dtypes."""
        if list(df.columns) != self.names:
            raise SchemaError(f"{self.name}: columns {list(df.columns)} != {self.names}")
        for col in self.columns:
            if not _dtype_ok(df[col.name], col.dtype):
                raise SchemaError(
                    f"{self.name}.{col.name}: dtype {df[col.name].dtype} != {col.dtype}"
                )

    def markdown(self) -> str:
        lines = [
            f"## `{self.name}`",
            "",
            self.doc,
            "",
            "| column | dtype | unit | meaning |",
            "| --- | --- | --- | --- |",
        ]
        for c in self.columns:
            doc = c.doc.replace("|", "\\|")
            lines.append(f"| `{c.name}` | {c.dtype} | {c.unit} | {doc} |")
        return "\n".join(lines) + "\n"


def _dtype_ok(s: pd.Series, dtype: str) -> bool:
    d = s.dtype
    if dtype == "str":
        return isinstance(d, pd.StringDtype)
    if dtype == "category":
        return isinstance(d, pd.CategoricalDtype)
    if dtype == "object":
        return d == np.dtype(object)
    if dtype in ("Int64", "Int32"):
        return str(d) == dtype
    return str(d) == dtype


def _coerce(values: Any, col: Column, n: int) -> Any:
    dt = col.dtype
    if values is None:
        if dt in ("int64", "int32"):
            return np.zeros(n, dtype=dt)
        if dt == "bool":
            return np.zeros(n, dtype=np.bool_)
        if dt in ("Int64", "Int32"):
            return pd.arrays.IntegerArray(np.zeros(n, dtype=dt.lower()), np.ones(n, dtype=np.bool_))
        if dt == "str":
            return pd.Series([None] * n, dtype="str").array
        if dt == "category":
            return pd.Categorical([None] * n)
        return np.full(n, None, dtype=object)
    if isinstance(values, pd.Series):
        values = values.array
    if _dtype_matches(values, dt):
        return values
    if dt in ("int64", "int32", "bool"):
        return np.asarray(values, dtype=dt)
    if dt in ("Int64", "Int32"):
        if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
            return pd.arrays.IntegerArray(
                values.astype(dt.lower()), np.zeros(values.shape, dtype=np.bool_)
            )
        return pd.Series(list(values), dtype=dt).array
    if dt == "str":
        return pd.array(values, dtype="str")
    if dt == "category":
        if isinstance(values, pd.Categorical):
            return values
        return pd.Categorical(values)
    arr = np.empty(n, dtype=object)
    arr[:] = list(values)
    return arr


def _dtype_matches(values: Any, dt: str) -> bool:
    d = getattr(values, "dtype", None)
    if d is None:
        return False
    if dt == "str":
        return isinstance(d, pd.StringDtype) and d.na_value is np.nan
    if dt == "category":
        return isinstance(d, pd.CategoricalDtype)
    if dt == "object":
        return False
    return str(d) == dt


def C(name: str, dtype: str, unit: str, doc: str) -> Column:
    return Column(name, dtype, unit, doc)


# ---------------------------------------------------------------------------------------
# Parsed sources
# ---------------------------------------------------------------------------------------

PROCESSES = Schema(
    "processes",
    "One row per process (thread-group leader) seen in the `proc` section or referenced by "
    "an fd, a mapping or an error. Built by `dmaprof.analyze.proc`.",
    (
        C("pid", "int32", "pid", "process id (`/proc/<pid>`)"),
        C("tgid", "Int32", "pid", "`Tgid:` of `status` (equals pid for a leader)"),
        C("ppid", "Int32", "pid", "`PPid:` of `status`"),
        C("name", "str", "-", "`Name:` of `status` (the comm, at most 15 bytes)"),
        C(
            "cmdline",
            "object",
            "bytes",
            "`/proc/<pid>/cmdline` exactly as read (NUL-separated argv; None when not read)",
        ),
        C(
            "cmdline_display",
            "str",
            "-",
            "cmdline for display: trailing NULs removed, other "
            "NULs shown as spaces, invalid UTF-8 as \\xNN",
        ),
        C("argv0", "str", "-", "first NUL-separated word of cmdline"),
        C("uid", "Int32", "uid", "real uid (first field of `Uid:` in `status`)"),
        C("euid", "Int32", "uid", "effective uid (second field of `Uid:`)"),
        C(
            "start_time_ticks",
            "Int64",
            "clock ticks",
            "field 22 of `/proc/<pid>/stat` (start time after boot, in USER_HZ ticks)",
        ),
        C(
            "cgroup",
            "str",
            "-",
            "path in the hierarchy holding the process tree (docs/attribution.md §7): the "
            "uid/pid tree wherever it lives (Android 10/11: v1 `cpuacct`), else the v2 path, "
            "else the most specific v1 path",
        ),
        C(
            "cgroup_source",
            "category",
            "-",
            "hierarchy of that path: `v2`, `v1:<controllers as printed>` or null",
        ),
        C(
            "is_kernel_thread",
            "bool",
            "-",
            "`Kthread: 1` in status, else pid 2 or a child of pid 2 (kthreadd)",
        ),
        C(
            "is_collector",
            "bool",
            "-",
            "the collector's shell or one of its children (none when the dump's "
            "`pid_in_proc=0`: its pid is not one of this `/proc`)",
        ),
        C(
            "state",
            "category",
            "-",
            "`ok` (status read), `vanished` (ENOENT/ESRCH while "
            "read), `denied`, or `unknown` (not in the proc section)",
        ),
        C(
            "fds_access",
            "category",
            "-",
            "the fd table: `ok`, `denied` (EACCES, or listed in "
            "`fdaccess`), `vanished`, or `unknown` (section missing)",
        ),
        C(
            "fdinfo_access",
            "category",
            "-",
            "fdinfo of its dma-buf fds: `ok`, `denied`, "
            "`vanished` (some fd closed meanwhile), `none` (no dma-buf fd), `unknown`",
        ),
        C(
            "maps_access",
            "category",
            "-",
            "`/proc/<pid>/maps`: `ok`, `denied`, `vanished`, `unknown`",
        ),
        C(
            "kernel_dmabuf_rss_bytes",
            "Int64",
            "bytes",
            "ACK `/proc/<pid>/dmabuf_rss` (null when absent)",
        ),
        C(
            "kernel_dmabuf_pss_bytes",
            "Int64",
            "bytes",
            "ACK `/proc/<pid>/dmabuf_pss` (null when absent)",
        ),
    ),
)

TASKS = Schema(
    "tasks",
    "Threads with an fd table of their own (`tasks` section: `unshare(CLONE_FILES)`). Their "
    "fds count for their process.",
    (
        C("pid", "int32", "pid", "process (thread-group leader)"),
        C("tid", "int32", "tid", "thread id"),
    ),
)

REFERENCES = Schema(
    "references",
    "One row per dma-buf reference a task holds: an fd (`kind` fd) or a mapping (`kind` map). "
    "Built from `fdlinks`, `fdinfo`, `fdstat` (`dmaprof.analyze.fds`) and `maps` "
    "(`dmaprof.analyze.maps`). `inode` is set only when the fd target or the maps path "
    "starts with `/dmabuf` (inode numbers of other filesystems collide); `anon_inode:dmabuf` "
    "references (kernels before 5.3) have no per-buffer identity.",
    (
        C("pid", "int32", "pid", "process holding the reference"),
        C(
            "tid",
            "Int32",
            "tid",
            "thread whose own fd table holds the fd; null for the process's table and for mappings",
        ),
        C("kind", "category", "-", "`fd` or `map`"),
        C("inode", "Int64", "-", "dma-buf inode; null without identity"),
        C("target", "category", "-", "`dmabuf` (`/dmabuf:...`) or `anon` (`anon_inode:dmabuf`)"),
        C("fd", "Int32", "-", "fd number (kind fd)"),
        C("vma_start", "Int64", "address", "mapping start (kind map)"),
        C("vma_end", "Int64", "address", "mapping end, exclusive (kind map)"),
        C(
            "vma_offset",
            "Int64",
            "bytes",
            "offset column of maps (DRM exporters show a fake mmap offset)",
        ),
        C("mapped_bytes", "Int64", "bytes", "vma_end - vma_start (kind map)"),
        C(
            "size_bytes",
            "Int64",
            "bytes",
            "buffer size this reference reports: fdinfo "
            "`size:`, else `stat -L` size (fdstat); null for maps",
        ),
        C("size_source", "category", "-", "`fdinfo` or `fdstat` (null when size_bytes is)"),
        C("count", "Int64", "-", "fdinfo `count:` (struct file refcount, not a process count)"),
        C("exporter", "category", "-", "fdinfo `exp_name:`"),
        C(
            "name",
            "category",
            "-",
            "buffer name: fdinfo `name:`, else the suffix of the fd "
            "link or maps path after `/dmabuf:` (null when empty)",
        ),
    ),
)

INVENTORY = Schema(
    "inventory",
    "Per-buffer records of the global sources: sysfs `/sys/kernel/dmabuf/buffers`, the BPF "
    "iterator `/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf`, and debugfs `bufinfo`. One row "
    "per (source, buffer).",
    (
        C("source", "category", "-", "`sysfs`, `bpf` or `debugfs`"),
        C("inode", "Int64", "-", "buffer inode (null in the pre-5.3 bufinfo layout)"),
        C("size_bytes", "Int64", "bytes", "buffer size"),
        C("exporter", "str", "-", "exporter name"),
        C("name", "str", "-", "buffer name (BPF, bufinfo; `<none>` and empty become null)"),
        C("count", "Int64", "-", "struct file refcount (bufinfo)"),
        C("flags", "Int64", "-", "f_flags (bufinfo, hex in the file)"),
        C("mode", "Int64", "-", "f_mode (bufinfo, hex in the file)"),
        C(
            "attachments",
            "Int64",
            "-",
            "number of attached devices (bufinfo; sysfs `attachments/` of 5.13)",
        ),
        C("fences", "Int64", "-", "number of fence lines (bufinfo)"),
        C("extra", "str", "-", "vendor extra column (`buf name` of some Qualcomm bufinfo)"),
    ),
)

ATTACHMENTS = Schema(
    "attachments",
    "Devices attached to buffers (debugfs `bufinfo` `Attached Devices:` lists).",
    (
        C("inode", "Int64", "-", "buffer inode (null in the pre-5.3 layout)"),
        C("record", "int64", "-", "index of the buffer's record in bufinfo"),
        C("device", "str", "-", "device name (`dev_name()` of the importer)"),
    ),
)

BUFFERS = Schema(
    "buffers",
    "One row per dma-buf with an identity (inode), from every source: global inventory and "
    "the references. Built by `dmaprof.analyze.buffers`.",
    (
        C("inode", "int64", "-", "dma-buf inode (unique per boot on current kernels)"),
        C("size_bytes", "int64", "bytes", "buffer size (see size_source)"),
        C(
            "size_source",
            "category",
            "-",
            "where the size comes from, by priority: `fdinfo`, "
            "`fdstat`, `bpf`, `sysfs`, `debugfs`, `vma_estimate` (largest mapping of a buffer "
            "no other source knows), `unknown` (a source listed it without a size: 0)",
        ),
        C("size_estimated", "bool", "-", "size_source is `vma_estimate`"),
        C("exporter", "str", "-", "exporter name (fdinfo, else BPF, sysfs, bufinfo)"),
        C(
            "name",
            "str",
            "-",
            "buffer name (fdinfo, else BPF, bufinfo, fd link or maps path suffix)",
        ),
        C("count", "Int64", "-", "struct file refcount (fdinfo, else bufinfo)"),
        C(
            "attached_devices",
            "object",
            "tuple[str]",
            "devices attached (bufinfo); empty tuple when none or unknown",
        ),
        C("attachments", "Int64", "-", "number of attachments when a source tells it"),
        C("in_inventory", "bool", "-", "listed by a global source (sysfs, BPF, bufinfo)"),
        C("sources", "str", "-", "`+`-joined sources that know the buffer"),
    ),
)

HOLDINGS = Schema(
    "holdings",
    "One row per (process, buffer) the process holds by fd or mapping; the basis of every "
    "figure. Built by `dmaprof.analyze.attribution`.",
    (
        C("pid", "int32", "pid", "holder process"),
        C("inode", "int64", "-", "buffer"),
        C("fds", "int64", "-", "fds of the process (all its tables) on the buffer"),
        C("maps", "int64", "-", "mappings (VMAs) of the buffer in the process"),
        C("mapped_bytes", "int64", "bytes", "sum of those VMAs' lengths"),
        C("size_bytes", "int64", "bytes", "buffer size"),
        C("holders", "int64", "-", "distinct processes holding the buffer"),
        C(
            "shared_pss_bytes",
            "int64",
            "bytes",
            "exact integer share: size // holders, +1 byte for the "
            "first size % holders holders by ascending pid",
        ),
        C("charged_bytes", "int64", "bytes", "share under the analysis's charge policy"),
    ),
)

USAGE = Schema(
    "usage",
    "Per-process figures (`Analysis.usage`). Built by `dmaprof.analyze.attribution`.",
    (
        C("pid", "int32", "pid", "process"),
        C("name", "str", "-", "process name (`status` Name)"),
        C("uid", "Int32", "uid", "real uid"),
        C(
            "owner_uid",
            "Int32",
            "uid",
            "uid the process is rolled up under (isolated and SDK "
            "sandbox uids mapped to their app, see docs/attribution.md)",
        ),
        C("cgroup", "str", "-", "cgroup path"),
        C("is_service", "bool", "-", "matches the graphics/media service regex (`client` charge)"),
        C("rss_bytes", "int64", "bytes", "sum of the sizes of the distinct buffers held"),
        C(
            "shared_pss_bytes",
            "int64",
            "bytes",
            "exact proportional share (sum of holdings.shared_pss_bytes)",
        ),
        C(
            "charged_bytes",
            "int64",
            "bytes",
            "figure under the charge policy (shared: pss, full: rss, client: client charge)",
        ),
        C("buffers", "int64", "-", "distinct buffers held"),
        C("fd_only", "int64", "-", "buffers held by fd and not mapped"),
        C("map_only", "int64", "-", "buffers mapped with no fd open"),
        C("both", "int64", "-", "buffers held by fd and mapped"),
        C("fds", "int64", "-", "dma-buf fds (all tables; anon_inode fds included)"),
        C("maps", "int64", "-", "dma-buf mappings (anon_inode ones included)"),
        C("rss_estimated", "bool", "-", "rss includes a vma_estimate size"),
        C(
            "anon_fds",
            "int64",
            "-",
            "fds without identity (`anon_inode:dmabuf`, or no inode readable)",
        ),
        C(
            "anon_fd_bytes",
            "int64",
            "bytes",
            "sum of the sizes those fds report (fdinfo); not deduplicated",
        ),
        C("anon_fd_unknown", "int64", "-", "those fds whose size is unknown"),
        C("anon_maps", "int64", "-", "mappings without identity"),
        C("anon_mapped_bytes", "int64", "bytes", "their mapped length; not deduplicated"),
        C("kernel_dmabuf_rss_bytes", "Int64", "bytes", "ACK `/proc/<pid>/dmabuf_rss`"),
        C("kernel_dmabuf_pss_bytes", "Int64", "bytes", "ACK `/proc/<pid>/dmabuf_pss`"),
        C(
            "unreadable",
            "bool",
            "-",
            "its fds or maps could not be read (denied): its figures are lower bounds",
        ),
    ),
)

KERNEL_ONLY = Schema(
    "kernel_only",
    "Buffers listed by a global source that no process holds by fd or mapping (in-flight "
    "binder/SCM_RIGHTS fds, driver imports, GEM handles).",
    (
        C("inode", "int64", "-", "buffer"),
        C("size_bytes", "int64", "bytes", "size"),
        C("exporter", "str", "-", "exporter"),
        C("name", "str", "-", "name"),
        C("count", "Int64", "-", "struct file refcount when known"),
        C("attached_devices", "object", "tuple[str]", "attached devices (bufinfo)"),
    ),
)

APPS = Schema(
    "apps",
    "Roll-up per owner uid (apps and system uids).",
    (
        C("uid", "int32", "uid", "owner uid"),
        C("user_id", "int32", "-", "uid // 100000"),
        C("app_id", "int32", "-", "uid % 100000"),
        C(
            "kind",
            "category",
            "-",
            "`app`, `system`, `isolated` (not mapped to an app), "
            "`sdk_sandbox` (not mapped), `other`",
        ),
        C(
            "label",
            "str",
            "-",
            "well-known name of a system uid (below 10000), else package names joined by "
            "`,`, else the uid",
        ),
        C("packages", "object", "tuple[str]", "package names of the uid"),
        C("processes", "int64", "-", "processes rolled up"),
        C("pids", "object", "tuple[int]", "their pids"),
        C("rss_bytes", "int64", "bytes", "distinct buffers held by any of its processes"),
        C("shared_pss_bytes", "int64", "bytes", "sum of its processes' exact pss"),
        C("charged_bytes", "int64", "bytes", "under the charge policy (full: rss_bytes)"),
        C("buffers", "int64", "-", "distinct buffers held"),
    ),
)

CGROUP_USAGE = Schema(
    "cgroup_usage",
    "Roll-up per cgroup path (every ancestor of a process's cgroup appears).",
    (
        C("path", "str", "-", "cgroup path"),
        C("depth", "int32", "-", "number of path components (`/` is 0)"),
        C("processes", "int64", "-", "processes directly in the cgroup"),
        C("processes_with_descendants", "int64", "-", "processes in the subtree"),
        C("rss_bytes", "int64", "bytes", "distinct buffers held by its own processes"),
        C("rss_bytes_with_descendants", "int64", "bytes", "distinct buffers held in the subtree"),
        C("shared_pss_bytes", "int64", "bytes", "sum of own processes' pss"),
        C("shared_pss_bytes_with_descendants", "int64", "bytes", "sum over the subtree"),
        C("charged_bytes", "int64", "bytes", "own, under the charge policy"),
        C("charged_bytes_with_descendants", "int64", "bytes", "subtree, under the charge policy"),
    ),
)

GROUP_USAGE = Schema(
    "group_usage",
    "Roll-up of buffers per exporter (`Analysis.exporters`) or per buffer name (`Analysis.names`).",
    (
        C("key", "str", "-", "exporter or buffer name (`<unknown>` when missing)"),
        C("buffers", "int64", "-", "buffers"),
        C("bytes", "int64", "bytes", "their total size"),
        C("userspace_buffers", "int64", "-", "buffers held by at least one process"),
        C("userspace_bytes", "int64", "bytes", "their size"),
        C("kernel_only_buffers", "int64", "-", "buffers in the inventory held by no process"),
        C("kernel_only_bytes", "int64", "bytes", "their size"),
        C("holders", "int64", "-", "distinct processes holding any of them"),
    ),
)

CGROUPS = Schema(
    "cgroups",
    "Every line of `/proc/<pid>/cgroup` (v2 `0::/path` and v1 `N:controllers:/path`).",
    (
        C("pid", "int32", "pid", "process"),
        C("hierarchy", "int32", "-", "hierarchy id (0 for cgroup v2)"),
        C("controllers", "str", "-", "controllers (empty for v2)"),
        C("path", "str", "-", "cgroup path"),
    ),
)

HEAPS = Schema(
    "heaps",
    "DMA-BUF heaps (`/dev/dma_heap/*`) and ION heaps (debugfs `ion/heaps/*`).",
    (
        C("heap", "str", "-", "heap name"),
        C("source", "category", "-", "`dma_heap` or `ion_debugfs`"),
        C("buffers", "int64", "-", "buffers whose exporter is this heap name"),
        C("bytes", "int64", "bytes", "their total size"),
    ),
)

POOLS = Schema(
    "pools",
    "Kernel-wide counters, converted to bytes.",
    (
        C(
            "counter",
            "str",
            "-",
            "`dma_heap_total_pools`, `ion_total_heaps`, "
            "`ion_total_pools`, `ion_heap_total:<heap>`, `ion_heap_orphaned:<heap>`, "
            "`ion_heap_deferred_free:<heap>`, `ion_heap_pool_total:<heap>`, "
            "`bufinfo_total` (the `Total N objects, B bytes` trailer)",
        ),
        C("bytes", "int64", "bytes", "value in bytes (files in KiB are multiplied by 1024)"),
        C("count", "Int64", "-", "object count when the counter has one"),
        C("path", "str", "-", "file it was read from"),
    ),
)

ION_CLIENTS = Schema(
    "ion_clients",
    "Legacy ION debugfs per-heap client lines (`/sys/kernel/debug/ion/heaps/<heap>`).",
    (
        C("heap", "str", "-", "heap"),
        C("client", "str", "-", "client (task comm)"),
        C("pid", "int32", "pid", "client pid"),
        C("size_bytes", "int64", "bytes", "size of the line (one allocation or a sum)"),
        C("orphaned", "bool", "-", "from the `orphaned allocations` part"),
    ),
)

PACKAGES = Schema(
    "packages",
    "`cmd package list packages -U`: one row per (package, uid).",
    (
        C("package", "str", "-", "package name"),
        C("uid", "int32", "uid", "uid (several per package with several users)"),
    ),
)

ERRORS = Schema(
    "errors",
    "Every classified line of the `*.err` sections.",
    (
        C("section", "str", "-", "section whose command failed"),
        C("command", "str", "-", "command name"),
        C("path", "str", "-", "path the message is about"),
        C("pid", "Int32", "pid", "pid of a `/proc/<pid>/...` path"),
        C("tid", "Int32", "tid", "tid of a `/proc/<pid>/task/<tid>/...` path"),
        C("reason", "category", "-", "`denied`, `vanished`, `absent`, `other`"),
        C("message", "str", "-", "the text after the last `: `"),
    ),
)

UNPARSED = Schema(
    "unparsed",
    "Lines (or fields) no parser understood; kept and counted, never fatal.",
    (
        C("section", "str", "-", "dump section"),
        C("path", "str", "-", "file inside the section (files sections)"),
        C("line_no", "Int64", "-", "1-based line number within the file (or section)"),
        C("line", "str", "-", "the line (cut to 200 characters)"),
        C("reason", "str", "-", "why it was not understood"),
    ),
)

CROSSCHECK = Schema(
    "crosscheck",
    "Processes whose ACK `/proc/<pid>/dmabuf_rss`/`dmabuf_pss` disagree with dmaprof's "
    "figures from fds and maps.",
    (
        C("pid", "int32", "pid", "process"),
        C("name", "str", "-", "process name"),
        C("rss_bytes", "int64", "bytes", "dmaprof's rss"),
        C("kernel_rss_bytes", "Int64", "bytes", "the kernel's dmabuf_rss"),
        C("shared_pss_bytes", "int64", "bytes", "dmaprof's exact pss"),
        C("kernel_pss_bytes", "Int64", "bytes", "the kernel's dmabuf_pss"),
        C("rss_agrees", "bool", "-", "equal"),
        C("pss_agrees", "bool", "-", "equal within the rounding of one byte per buffer held"),
    ),
)

SCHEMAS: dict[str, Schema] = {
    s.name: s
    for s in (
        PROCESSES,
        TASKS,
        REFERENCES,
        INVENTORY,
        ATTACHMENTS,
        BUFFERS,
        HOLDINGS,
        USAGE,
        KERNEL_ONLY,
        APPS,
        CGROUP_USAGE,
        GROUP_USAGE,
        CGROUPS,
        HEAPS,
        POOLS,
        ION_CLIENTS,
        PACKAGES,
        ERRORS,
        UNPARSED,
        CROSSCHECK,
    )
}

# ---------------------------------------------------------------------------- report views
# Rows of the JSON report's views that are not analysis DataFrames (`dmaprof show --by`):
# documented here so that docs/tables.md lists them with the tables; tests check that the
# rows carry exactly these keys. dtypes name the JSON values (Int64: a number or null).

BINDER_VIEW = Schema(
    "binder.processes",
    '`show --by binder` (`report["binder"]["processes"]`, built by '
    "`dmaprof.analyze.binder`): binder buffer memory per process, every context (`binder`, "
    "`hwbinder`, `vndbinder`) summed, from binderfs `binder_logs` or debugfs `binder` "
    "(`proc/<pid>` and `stats`). Both drivers are read: the C driver prints page counts "
    "(4.14+), the Rust driver (6.18+) prints none, so its page figures are null (`unknown` "
    'in tables), never 0. `report["binder"]` also has `state`, `driver` (`c`, `rust`), '
    "`root`, `page_size_bytes`, `note` and `totals`.",
    (
        C("pid", "int64", "pid", "process (the receiver: buffers live in its mapping)"),
        C("name", "str", "-", "process name (the analysis' processes table)"),
        C("contexts", "object", "list[str]", "binder contexts the process opened"),
        C("buffers", "Int64", "-", "allocated buffers (proc file lines, else stats `buffers:`)"),
        C(
            "active_buffers",
            "Int64",
            "-",
            "C driver: buffers a transaction still references (`active`); null for Rust",
        ),
        C(
            "oneway_buffers",
            "Int64",
            "-",
            "Rust driver: buffers of oneway (async) transactions; null for C",
        ),
        C(
            "reserved_buffers",
            "Int64",
            "-",
            "Rust driver: buffers the kernel holds (`reserved`, not yet or no longer the "
            "receiver's); null for C",
        ),
        C(
            "allocated_bytes",
            "Int64",
            "bytes",
            "bytes of the buffers: C `size data:offsets:extra` summed, Rust `size` (the "
            "whole allocation); null without proc files",
        ),
        C("free_bytes", "Int64", "bytes", "mapped - allocated (null when either is unknown)"),
        C(
            "mapped_bytes",
            "Int64",
            "bytes",
            "the mapping's pages (active + lru + free) x page size; null without `pages:`",
        ),
        C(
            "resident_bytes",
            "Int64",
            "bytes",
            "pages held (active + lru) x page size: memory no per-process accounting shows",
        ),
        C("pages_active", "Int64", "pages", "pages in use (`pages: A:L:F`)"),
        C("pages_lru", "Int64", "pages", "freed pages kept on binder's LRU (reclaimable)"),
        C("pages_free", "Int64", "pages", "pages of the mapping not allocated"),
        C("pages_high_watermark", "Int64", "pages", "most pages ever in use"),
        C("high_watermark_bytes", "Int64", "bytes", "pages_high_watermark x page size"),
        C(
            "free_async_space_bytes",
            "Int64",
            "bytes",
            "space left for oneway transactions (C `free async space`, Rust `free oneway space:`)",
        ),
    ),
)

DEVICE_VIEW = Schema(
    "attached_devices",
    '`show --by device` (`report["attached_devices"]`, built by '
    "`dmaprof.analyze.devices`): the devices that import buffers, from debugfs `bufinfo` "
    "attachments (the only source of them). A buffer attached to several devices counts for "
    'each; `report["attached_devices_summary"]` has the buffers and bytes bufinfo lists, '
    "how many are attached (`buffers_attached`, `bytes_attached`), a `state` "
    "(`attached`, `none_attached`, `no_bufinfo`) and a `note` saying why the view is empty.",
    (
        C("device", "str", "-", "`dev_name()` of the importing device"),
        C(
            "category",
            "str",
            "-",
            "`gpu`, `display`, `camera`, `codec`, `audio`, `virtual` or `other` (by name)",
        ),
        C("buffers", "int64", "-", "buffers attached to the device (each counted once)"),
        C("attachments", "int64", "-", "attachments (a device may attach a buffer twice)"),
        C("bytes", "int64", "bytes", "bytes of those buffers (bufinfo's sizes)"),
        C("exporters", "object", "list[str]", "exporters of those buffers"),
    ),
)

REPORT_VIEWS: dict[str, Schema] = {s.name: s for s in (BINDER_VIEW, DEVICE_VIEW)}

_VIEWS_PREAMBLE = """\
# Report views

Lists of the JSON report (`dmaprof show --format json`, schema `dmaprof.report/1`) that are
not analysis tables: raw integer bytes, null where the source did not say. Every key of the
report is in [json.md](json.md).

"""

_PREAMBLE = """\
# dmaprof tables

<!-- Generated from dmaprof/analyze/schema.py by dmaprof.analyze.schema.tables_markdown();
     tests/analyze check that this file is up to date. Do not edit by hand. -->

`dmaprof.analyze.analyze()` returns an `Analysis` whose tables are pandas DataFrames with
the schemas below. Sizes are raw bytes in `int64` (never floats; KiB sources are converted).
Nullable columns use pandas' `Int64`/`Int32`/`str` dtypes; null means "the source did not
say", never zero. Text read from the kernel is decoded as UTF-8 with invalid bytes shown as
`\\xNN`; the exact bytes of a command line are kept in `processes.cmdline`.

Names: in every table `rss_bytes` is the bytes of the buffers held, `shared_pss_bytes` the
exact proportional share and `charged_bytes` the figure under the charge policy, the same
names as in the JSON documents (where the kept `pss_bytes` of processes, apps and cgroups is
the charged figure): see [json.md](json.md#one-name-per-meaning). The datasets of
`dmaprof export` also keep the first name of the exact share, `pss_bytes`, beside it.

"""


def tables_markdown() -> str:
    """The content of ``docs/tables.md``."""
    return (
        _PREAMBLE
        + "\n".join(s.markdown() for s in SCHEMAS.values())
        + "\n"
        + _VIEWS_PREAMBLE
        + "\n".join(s.markdown() for s in REPORT_VIEWS.values())
    )
