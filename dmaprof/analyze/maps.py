"""``maps`` section: the dma-buf lines of every ``/proc/<pid>/maps`` -> map references.

A line is ``start-end perms offset dev inode   path``. The path ``/dmabuf:<name>`` (5.3+)
makes the inode column the buffer's identity; ``anon_inode:dmabuf`` (older kernels) has no
identity (every dma-buf shares the anonymous inode). Each VMA is one map reference, as in
AOSP's ``ReadDmaBufMapRefs``. Other lines are ignored (counted as unparsed when malformed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import Scan, hexnum, nullable, proc_paths, skip_byte, uniq
from dmaprof.analyze.fds import TARGET_ANON, TARGET_DMABUF, TARGET_OTHER, _categorical_by_inode
from dmaprof.analyze.unparsed import Unparsed
from dmaprof.capture.dump import Dump

_LINE = re.compile(
    rb"([0-9A-Fa-f]+)-([0-9A-Fa-f]+)\s+(\S+)\s+([0-9A-Fa-f]+)\s+(\S+)\s+(\d+)(?:[ \t]+(.*))?\Z",
    re.S,
)
_MAX = (1 << 63) - 1


@dataclass
class MapRefs:
    frame: pd.DataFrame
    pids_seen: set[int] = field(default_factory=set)
    present: bool = False


def parse_maps(dump: Dump, scan: Scan, unparsed: Unparsed) -> MapRefs:
    sec = dump.section("maps")
    out = MapRefs(_frame([], [], [], [], [], [], None, None), present=sec is not None)
    if sec is None:
        return out
    s, e = scan.lines(sec.begin, sec.end)
    if s.size == 0:
        return out
    pp = proc_paths(scan, s, e)
    ok = pp.ok & (pp.tid < 0) & scan.eq(pp.rest, b"maps:")
    bad = np.flatnonzero(~ok)
    if bad.size:
        unparsed.add_lines(scan, "maps", s[bad], e[bad], "not /proc/<pid>/maps:...")
    good = np.flatnonzero(ok)
    pid = pp.pid[good]
    out.pids_seen = set(uniq(pid).tolist())
    c0 = pp.rest[good] + 5
    e = e[good]
    # start-end perms offset dev inode   path
    v_start, n1 = hexnum(scan, c0)
    fast = (n1 >= 1) & (n1 <= 16) & (scan.byte(c0 + n1) == 0x2D)
    p = c0 + n1 + 1
    v_end, n2 = hexnum(scan, p)
    fast &= (n2 >= 1) & (n2 <= 16) & (scan.byte(p + n2) == 0x20)
    p = p + n2 + 1
    fast &= scan.byte(p + 4) == 0x20
    p = p + 5
    v_off, n3 = hexnum(scan, p)
    fast &= (n3 >= 1) & (n3 <= 16) & (scan.byte(p + n3) == 0x20)
    p = p + n3 + 1
    _, nmaj = hexnum(scan, p)
    _, nmin = hexnum(scan, p + nmaj + 1)
    nd = nmaj + 1 + nmin
    fast &= (
        (nmaj >= 1)
        & (nmaj <= 8)
        & (scan.byte(p + nmaj) == 0x3A)
        & (nmin >= 1)
        & (nmin <= 8)
        & (scan.byte(p + nd) == 0x20)
    )
    p = p + nd + 1
    v_ino, ni = scan.dec(p, e)
    fast &= (ni >= 1) & (ni <= 18)
    p = p + ni
    k = skip_byte(scan, p, 0x20)
    ps = p + k
    fast &= (k >= 1) & (k < 128) & (ps < e) & (p + ni <= e)
    fast &= v_end >= v_start
    target = np.full(good.size, TARGET_OTHER, dtype=np.int64)
    pend = e.copy()
    # trailing blanks are not part of the path
    for _ in range(2):
        tail = scan.byte(np.maximum(pend - 1, 0))
        pend = np.where((pend > ps) & (tail == 0x20), pend - 1, pend)
    is_dm = fast & scan.eq(ps, b"/dmabuf")
    is_anon = fast & (pend - ps == 17) & scan.eq(ps, b"anon_inode:dmabuf")
    target[is_dm] = TARGET_DMABUF
    target[is_anon] = TARGET_ANON
    name_b = np.where(scan.eq(ps, b"/dmabuf:") & (pend > ps + 8), ps + 8, -1)
    name_b = np.where(is_dm, name_b, -1)

    slow = np.flatnonzero(~fast)
    for i, raw in zip(slow.tolist(), scan.slices(c0[slow], e[slow]), strict=True):
        m = _LINE.match(raw)
        if m is None:
            unparsed.add("maps", f"/proc/{int(pid[i])}/maps", None, raw, "not a maps line")
            continue
        path = (m.group(7) or b"").rstrip(b" ")
        if path.startswith(b"/dmabuf"):
            target[i] = TARGET_DMABUF
        elif path == b"anon_inode:dmabuf":
            target[i] = TARGET_ANON
        else:
            continue
        start, end, off = int(m.group(1), 16), int(m.group(2), 16), int(m.group(4), 16)
        if end < start or end > _MAX or off > _MAX:
            unparsed.add("maps", f"/proc/{int(pid[i])}/maps", None, raw, "bad address range")
            target[i] = TARGET_OTHER
            continue
        v_start[i], v_end[i], v_off[i] = start, end, off
        v_ino[i] = int(m.group(6))
        pstart = c0[i] + m.start(7) if m.group(7) else -1
        name_b[i] = pstart + 8 if path.startswith(b"/dmabuf:") and len(path) > 8 else -1
        pend[i] = pstart + len(path) if pstart >= 0 else -1
    keep = np.flatnonzero(target != TARGET_OTHER)
    ino = np.where(target[keep] == TARGET_DMABUF, v_ino[keep], -1)
    names = _categorical_by_inode(scan, ino, name_b[keep], pend[keep])
    out.frame = _frame(
        pid[keep], target[keep], ino, v_start[keep], v_end[keep], v_off[keep], names, None
    )
    return out


def _frame(
    pid: Any,
    target: Any,
    ino: Any,
    start: Any,
    end: Any,
    off: Any,
    names: pd.Categorical | None,
    _unused: None,
) -> pd.DataFrame:
    pid_a = np.asarray(pid, dtype=np.int32)
    n = pid_a.size
    ino_a = np.asarray(ino, dtype=np.int64)
    s_a = np.asarray(start, dtype=np.int64)
    e_a = np.asarray(end, dtype=np.int64)
    none = np.zeros(n, dtype=np.bool_)
    return pd.DataFrame(
        {
            "pid": pid_a,
            "inode": nullable(ino_a, ino_a < 0),
            "target": np.asarray(target, dtype=np.int64),
            "vma_start": nullable(s_a, none),
            "vma_end": nullable(e_a, none),
            "vma_offset": nullable(np.asarray(off, dtype=np.int64), none),
            "mapped_bytes": nullable(e_a - s_a, none),
            "name": names if names is not None else pd.Categorical([None] * n),
        }
    )
