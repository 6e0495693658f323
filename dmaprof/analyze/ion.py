"""Legacy ION debugfs heaps (``/sys/kernel/debug/ion/heaps/<heap>``, Android <= 11 kernels).

``ion_debug_heap_show`` prints a ``client pid size`` table, an ``orphaned allocations`` table
(``comm pid size kmap_cnt refcount``), then ``total orphaned``, ``total`` and ``deferred
free`` lines, then heap-specific lines (Qualcomm: page pools, ``pool total (...) = N``).
Vendor variants append histogram columns to each client row; they are ignored. Lines that
are neither are reported as unparsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ROW = re.compile(r"^\s*(\S.*?)\s+(\d+)\s+(\d+)(?:\s+.*)?$")
_TOTAL = re.compile(r"^\s*(total orphaned|total|deferred free)\s+(\d+)\s*$")
_POOL_TOTAL = re.compile(r"^\s*pool total\b.*=\s*(\d+)\s*$")
_SEPARATOR = re.compile(r"^-{8,}")


@dataclass
class IonHeap:
    heap: str
    clients: list[tuple[str, int, int, bool]] = field(default_factory=list)  # client pid size orph
    totals: dict[str, int] = field(default_factory=dict)  # total, total orphaned, deferred free
    pool_total: int | None = None
    unparsed: list[tuple[int, str, str]] = field(default_factory=list)


def parse_ion_heap(heap: str, content: bytes) -> IonHeap:
    out = IonHeap(heap)
    orphaned = False
    in_tables = True
    for no, raw in enumerate(content.decode("utf-8", "backslashreplace").split("\n"), 1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped:
            continue
        low = stripped.lower()
        if _SEPARATOR.match(stripped):
            continue
        if low.startswith("client") and "pid" in low and "size" in low:
            continue  # header (vendor variants glue the separator and buckets onto it)
        if low.startswith("orphaned allocations"):
            orphaned = True
            continue
        m = _TOTAL.match(low)
        if m:
            out.totals[m.group(1)] = int(m.group(2))
            if m.group(1) == "deferred free":
                in_tables = False
            continue
        m = _POOL_TOTAL.match(low)
        if m:
            out.pool_total = int(m.group(1))
            continue
        if in_tables and "total" not in out.totals:
            m = _ROW.match(line)
            if m:
                out.clients.append((m.group(1), int(m.group(2)), int(m.group(3)), orphaned))
                continue
        out.unparsed.append((no, line, "not an ION heap line (heap-specific debug output)"))
    return out
