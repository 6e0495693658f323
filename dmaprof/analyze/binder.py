"""Binder buffer memory per process, from the dump's ``binder`` section.

Binder transactions are copied into a buffer the kernel allocates in the *receiving* process's
binder mapping (``mmap`` of ``/dev/binder``, ``/dev/hwbinder``, ``/dev/vndbinder``: one per
context, usually 1 MiB - 8 KiB). The pages behind it are the kernel's, allocated on demand,
kept on an LRU when freed and reclaimed by a shrinker: memory no per-process accounting shows
(background/004 in the project's notes). The collector (``docs/dump-format.md``, section
``binder``) keeps these lines of binderfs's ``binder_logs`` or debugfs's ``binder``:

``proc/<pid>`` (``print_binder_proc``), one block per context the process opened::

    proc 1040
    context binder
      buffer 4711: 0 size 240:8:0 delivered        # 5.x/6.x: offset (or address) in hex
      buffer 4712: 0000000000000000 size 96:0:0 active   # 4.14-5.x: %pK of the address
      buffer 17: e5a00000 size 240:8 delivered            # before 4.5: no extra_buffers_size

``stats`` (``print_binder_proc_stats``), per process and context::

    proc 1040
    context binder
      free async space 520192
      buffers: 2
      pages: 3:1:250            # active : lru : free   (4.14+)
      pages high watermark: 6   # (4.14+)

The Rust binder driver (``drivers/android/binder/``, upstream 6.18+, and Android kernels that
ship it) prints the same files its own way (``process.rs`` ``debug_print``/
``debug_print_stats``, ``range_alloc/{array,tree}.rs`` ``debug_print``)::

    proc 1200
    context binder
      ref 4: desc 0 node 3 s 1 w 1  ref 42: desc 1 node 9 s 1 w 1  buffer: 0 size 96 pid 6 reserved
      buffer: 4096 size 8224 pid 1800 oneway allocated   # tree allocator (oneway only if so)
      buffer 0: 0 size 240 pid 612 oneway false allocated   # array allocator (<= 8 buffers)

    proc 1200                                  # stats
    context binder
      threads: 4
      requested threads: 0+2/15
      free oneway space: 503808
      buffers: 3
      outstanding transactions: 0

A buffer's ``size`` is the whole allocation (data, offsets, extra, already aligned); ``pid``
the sender; ``reserved``/``allocated`` whether the kernel or the receiver has it now. A ref
line ends without a newline, so the refs and the first line after them (often the first
buffer) share one line. There are no ``pages:`` or high-watermark lines: every page figure
of that driver is unknown (null), never 0.

``/proc/self/smaps``'s ``KernelPageSize:`` lines give the page size (16 KiB pages exist).

A buffer's bytes are ``data:offsets:extra`` as printed (before the kernel rounds each up to a
pointer's size). ``state`` ``active`` means a transaction still references the buffer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import cast

from dmaprof.analyze.reporttypes import Binder, BinderProcess, BinderTotals
from dmaprof.capture.dump import Dump

__all__ = ["BinderContext", "BinderInfo", "binder_report", "parse_binder"]

DEFAULT_PAGE_SIZE = 4096
SECTION = "binder"
_ROOTS = ("/dev/binderfs/binder_logs", "/sys/kernel/debug/binder")

_PROC = re.compile(r"^proc (\d+)\s*$")
_CONTEXT = re.compile(r"^context (\S+)\s*$")
_BUFFER = re.compile(r"^\s+buffer (\d+): (\S+) size (\d+):(\d+)(?::(\d+))? (\w+)")
_BUFFERS = re.compile(r"^\s+buffers: (\d+)\s*$")
_PAGES = re.compile(r"^\s+pages: (\d+):(\d+):(\d+)\s*$")
_HIGH = re.compile(r"^\s+pages high watermark: (\d+)\s*$")
_ASYNC = re.compile(r"^\s+free async space (\d+)\s*$")
# the Rust driver: anywhere in a line (a ref line before it has no newline)
_RUST_BUFFER = re.compile(
    r"  buffer(?: \d+)?: (\d+) size (\d+) pid (\d+)( oneway(?: (true|false))?)? ?"
    r"(allocated|reserved)\b"
)
_ONEWAY = re.compile(r"^\s+free oneway space: (\d+)\s*$")
_PAGE_SIZE = re.compile(r"^KernelPageSize:\s+(\d+) kB")


@dataclass
class BinderContext:
    pid: int
    context: str
    buffers: int = 0  # allocated buffers listed in proc/<pid>
    active: int = 0  # of them, still referenced by a transaction
    allocated_bytes: int = 0
    listed: bool = False  # proc/<pid> had this block
    stats_buffers: int | None = None  # `buffers: N` of stats
    pages_active: int | None = None
    pages_lru: int | None = None
    pages_free: int | None = None
    pages_high: int | None = None
    free_async_space: int | None = None
    oneway: int = 0  # buffers of oneway transactions (the Rust driver says which)
    reserved: int = 0  # buffers the kernel holds (Rust `reserved`)


@dataclass
class BinderInfo:
    state: str  # present | absent | denied | empty | missing (older collector)
    root: str | None = None  # binderfs or debugfs path read
    page_size: int = DEFAULT_PAGE_SIZE
    page_size_known: bool = False
    contexts: dict[tuple[int, str], BinderContext] = field(default_factory=dict)
    unparsed: int = 0
    drivers: set[str] = field(default_factory=set)  # "c", "rust": whose format was read

    @property
    def driver(self) -> str | None:
        return "+".join(sorted(self.drivers)) or None


def _ctx(info: BinderInfo, pid: int, context: str) -> BinderContext:
    key = (pid, context)
    if key not in info.contexts:
        info.contexts[key] = BinderContext(pid, context)
    return info.contexts[key]


def parse_binder(dump: Dump) -> BinderInfo:
    section = dump.section(SECTION)
    if section is None:
        return BinderInfo("missing")
    errors = [e for e in dump.errors_of(SECTION) if e.path and not e.path.startswith("/proc/")]
    files = section.files
    info = BinderInfo("present")
    for path, content in files.items():
        text = content.decode("utf-8", "backslashreplace")
        if path.startswith("/proc/"):
            m = next((_PAGE_SIZE.match(line) for line in text.splitlines()), None)
            if m:
                info.page_size = int(m.group(1)) * 1024
                info.page_size_known = True
            continue
        root = next((r for r in _ROOTS if path.startswith(r + "/")), None)
        if root is None:
            info.unparsed += 1
            continue
        info.root = root
        rel = path[len(root) + 1 :]
        if rel.startswith("proc/"):
            _parse_proc_file(text, info)
        elif rel == "stats":
            _parse_stats(text, info)
        else:
            info.unparsed += 1
    if not info.contexts:
        reasons = {e.reason for e in errors}
        if "denied" in reasons:
            info.state = "denied"
        elif reasons and reasons <= {"absent", "vanished"}:
            info.state = "absent"
        else:
            info.state = "empty"
    return info


def _parse_proc_file(text: str, info: BinderInfo) -> None:
    pid: int | None = None
    ctx: BinderContext | None = None
    for line in text.splitlines():
        m = _PROC.match(line)
        if m:
            pid, ctx = int(m.group(1)), None
            continue
        m = _CONTEXT.match(line)
        if m and pid is not None:
            ctx = _ctx(info, pid, m.group(1))
            ctx.listed = True
            continue
        m = _BUFFER.match(line)
        if m and pid is not None:
            if ctx is None:  # kernels before 4.11 print no context line: binder's
                ctx = _ctx(info, pid, "binder")
                ctx.listed = True
            ctx.buffers += 1
            ctx.allocated_bytes += int(m.group(3)) + int(m.group(4)) + int(m.group(5) or 0)
            ctx.active += m.group(6) == "active"
            info.drivers.add("c")
            continue
        r = _RUST_BUFFER.search(line)
        if r and pid is not None and ctx is not None:
            ctx.buffers += 1
            ctx.allocated_bytes += int(r.group(2))
            ctx.oneway += r.group(4) is not None and r.group(5) != "false"
            ctx.reserved += r.group(6) == "reserved"
            info.drivers.add("rust")
            continue
        info.unparsed += 1


def _parse_stats(text: str, info: BinderInfo) -> None:
    pid: int | None = None
    ctx: BinderContext | None = None
    pending: BinderContext | None = None
    for line in text.splitlines():
        m = _PROC.match(line)
        if m:
            pid = int(m.group(1))
            pending = BinderContext(pid, "binder")
            ctx = None
            continue
        m = _CONTEXT.match(line)
        if m and pid is not None:
            ctx = _ctx(info, pid, m.group(1))
            pending = None
            continue
        if ctx is None and pending is not None:
            # no context line (old kernel): the block is binder's
            ctx = _ctx(info, pending.pid, "binder")
            pending = None
        if ctx is None:
            info.unparsed += 1
            continue
        m_buffers, m_async = _BUFFERS.match(line), _ASYNC.match(line) or _ONEWAY.match(line)
        m_high, m_pages = _HIGH.match(line), _PAGES.match(line)
        if m_buffers:
            ctx.stats_buffers = int(m_buffers.group(1))
        elif m_async:
            ctx.free_async_space = int(m_async.group(1))
            info.drivers.add("rust" if "oneway" in line else "c")
        elif m_high:
            ctx.pages_high = int(m_high.group(1))
        elif m_pages:
            ctx.pages_active, ctx.pages_lru, ctx.pages_free = (int(x) for x in m_pages.groups())
        else:
            info.unparsed += 1


def _sum(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def binder_report(info: BinderInfo, names: dict[int, str] | None = None) -> Binder:
    """The ``binder`` key of ``dmaprof.report/1``: per process (every context summed) the
    allocated buffers and their bytes, the mapping's pages (active, on the LRU, not
    allocated), the high watermark, in raw bytes; null where the kernel did not say."""
    names = names or {}
    page = info.page_size
    rust, c_driver = "rust" in info.drivers, info.drivers != {"rust"}
    by_pid: dict[int, list[BinderContext]] = {}
    for (pid, _c), ctx in sorted(info.contexts.items()):
        by_pid.setdefault(pid, []).append(ctx)
    rows: list[BinderProcess] = []
    for pid, ctxs in by_pid.items():
        listed = any(c.listed for c in ctxs)
        buffers = sum(c.buffers for c in ctxs) if listed else _sum([c.stats_buffers for c in ctxs])
        allocated = sum(c.allocated_bytes for c in ctxs) if listed else None
        active = _sum([c.pages_active for c in ctxs])
        lru = _sum([c.pages_lru for c in ctxs])
        free = _sum([c.pages_free for c in ctxs])
        high = _sum([c.pages_high for c in ctxs])
        total = None if active is None or lru is None or free is None else active + lru + free
        mapped = None if total is None else total * page
        rows.append(
            {
                "pid": pid,
                "name": names.get(pid),
                "contexts": [c.context for c in ctxs],
                "buffers": buffers,
                # C: a transaction still references it; the Rust driver does not say that
                "active_buffers": sum(c.active for c in ctxs) if listed and c_driver else None,
                "oneway_buffers": sum(c.oneway for c in ctxs) if listed and rust else None,
                "reserved_buffers": sum(c.reserved for c in ctxs) if listed and rust else None,
                "allocated_bytes": allocated,
                "free_bytes": None if mapped is None or allocated is None else mapped - allocated,
                "mapped_bytes": mapped,
                "resident_bytes": None if active is None or lru is None else (active + lru) * page,
                "pages_active": active,
                "pages_lru": lru,
                "pages_free": free,
                "pages_high_watermark": high,
                "high_watermark_bytes": None if high is None else high * page,
                "free_async_space_bytes": _sum([c.free_async_space for c in ctxs]),
            }
        )
    rows.sort(key=lambda r: (-(r["resident_bytes"] or 0), -(r["allocated_bytes"] or 0), r["pid"]))
    keys = ("buffers", "allocated_bytes", "free_bytes", "mapped_bytes", "resident_bytes",
            "high_watermark_bytes")  # fmt: skip
    totals = cast(BinderTotals, {k: _sum([r[k] for r in rows]) for k in keys})  # type: ignore[literal-required]
    notes = {
        "missing": "no binder section: the capture was taken by a collector before binder support",
        "absent": "no binder debug files on this device (binderfs binder_logs and debugfs "
        "binder are both absent)",
        "denied": "binder debug files are not readable (needs root; debugfs is root-only)",
        "empty": "the binder debug files list no process",
    }
    note = notes.get(info.state)
    if info.state == "present" and rust:
        note = (
            "the Rust binder driver prints no page counts: pages held, free bytes, mapped "
            "bytes and the high watermark are unknown"
        )
    return {
        "state": info.state,
        "driver": info.driver,
        "root": info.root,
        "page_size_bytes": page,
        "page_size_known": info.page_size_known,
        "note": note,
        "totals": totals,
        "processes": rows,
        "unparsed_lines": info.unparsed,
    }
