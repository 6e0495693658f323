"""The ``global`` section: kernel-wide files, located with one vectorised pass.

Lines are matched against the fixed list of files the collector reads; a file is *present*
when it has lines, *absent* when its read failed with ENOENT, *denied* on EACCES, and
*empty* when it was read (no error) but gave no line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dmaprof.analyze._scan import I64, Scan
from dmaprof.analyze.unparsed import Unparsed
from dmaprof.capture.dump import Dump, DumpError

VERSION = "/proc/version"
UPTIME = "/proc/uptime"
MEMINFO = "/proc/meminfo"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
BUFINFO = "/sys/kernel/debug/dma_buf/bufinfo"
DMA_HEAP_POOLS = "/sys/kernel/dma_heap/total_pools_kb"
ION_HEAPS = "/sys/kernel/ion/total_heaps_kb"
ION_POOLS = "/sys/kernel/ion/total_pools_kb"
BPF_ITER = "/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf"

KNOWN = (VERSION, UPTIME, MEMINFO, BOOT_ID, BUFINFO, DMA_HEAP_POOLS, ION_HEAPS, ION_POOLS, BPF_ITER)


@dataclass
class GlobalFiles:
    scan: Scan
    present: bool = False
    ranges: dict[str, tuple[I64, I64]] = field(default_factory=dict)
    errors: dict[str, DumpError] = field(default_factory=dict)

    def has(self, path: str) -> bool:
        return path in self.ranges

    def state(self, path: str) -> str:
        """``present``, ``empty``, ``absent``, ``denied``, ``error`` or ``missing`` (no
        section)."""
        if path in self.ranges:
            return "present"
        err = self.errors.get(path)
        if err is not None:
            return {"absent": "absent", "vanished": "absent", "denied": "denied"}.get(
                err.reason, "error"
            )
        return "empty" if self.present else "missing"

    def lines(self, path: str) -> list[bytes]:
        r = self.ranges.get(path)
        if r is None:
            return []
        return self.scan.slices(r[0], r[1])

    def content(self, path: str) -> bytes | None:
        if path not in self.ranges:
            return None
        return b"\n".join(self.lines(path))


def parse_global(dump: Dump, scan: Scan, unparsed: Unparsed) -> GlobalFiles:
    out = GlobalFiles(scan)
    sec = dump.section("global")
    for err in dump.errors_of("global"):
        if err.path:
            out.errors[err.path] = err
    if sec is None:
        return out
    out.present = True
    s, e = scan.lines(sec.begin, sec.end)
    if s.size == 0:
        return out
    matched = np.zeros(s.shape, dtype=np.bool_)
    for path in KNOWN:
        lit = path.encode() + b":"
        m = scan.eq(s, lit)
        if m.any():
            idx = np.flatnonzero(m)
            out.ranges[path] = (s[idx] + len(lit), e[idx])
            matched |= m
    bad = np.flatnonzero(~matched)
    if bad.size:
        unparsed.add_lines(scan, "global", s[bad], e[bad], "file not known to this dmaprof")
    return out
