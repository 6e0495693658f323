"""``proc`` section: ``status``, ``cmdline``, ``cgroup``, ``stat``, ``dmabuf_rss``, ``dmabuf_pss``
of every process -> the base of the ``processes`` table and the ``cgroups`` table.

Lines are classified with numpy (path -> pid and file, ``status`` key); only the few lines
that are kept (one ``Name:`` per process, its cmdline, cgroup and stat lines) are turned into
Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import I64, Scan, decode, proc_paths, uniq
from dmaprof.analyze.schema import CGROUPS
from dmaprof.analyze.unparsed import Unparsed
from dmaprof.capture.dump import Dump

_FILES = (
    (b"status:", "status"),
    (b"cmdline:", "cmdline"),
    (b"cgroup:", "cgroup"),
    (b"stat:", "stat"),
    (b"dmabuf_rss:", "dmabuf_rss"),
    (b"dmabuf_pss:", "dmabuf_pss"),
    (b"dmabuf_rss_hwm:", "dmabuf_rss_hwm"),
)


@dataclass
class ProcInfo:
    """What the ``proc`` section says, per pid (dicts keyed by pid)."""

    pids: set[int] = field(default_factory=set)
    name: dict[int, str] = field(default_factory=dict)
    tgid: dict[int, int] = field(default_factory=dict)
    ppid: dict[int, int] = field(default_factory=dict)
    uid: dict[int, int] = field(default_factory=dict)
    euid: dict[int, int] = field(default_factory=dict)
    kthread: dict[int, bool] = field(default_factory=dict)
    cmdline: dict[int, bytes] = field(default_factory=dict)
    start_time: dict[int, int] = field(default_factory=dict)
    dmabuf_rss: dict[int, int] = field(default_factory=dict)
    dmabuf_pss: dict[int, int] = field(default_factory=dict)
    cgroup_rows: list[tuple[int, int, str, str]] = field(default_factory=list)
    status_read: set[int] = field(default_factory=set)
    present: bool = False

    def cgroups_frame(self) -> pd.DataFrame:
        if not self.cgroup_rows:
            return CGROUPS.empty()
        pid, hier, ctl, path = zip(*self.cgroup_rows, strict=True)
        return CGROUPS.frame(
            {
                "pid": list(pid),
                "hierarchy": list(hier),
                "controllers": list(ctl),
                "path": list(path),
            }
        )


def _uint_at(scan: Scan, pos: I64, limit: I64) -> tuple[I64, np.ndarray]:
    v, n = scan.dec(pos, limit)
    return v, (n >= 1) & (n <= 18)


def parse_proc(dump: Dump, scan: Scan, unparsed: Unparsed) -> ProcInfo:
    info = ProcInfo()
    sec = dump.section("proc")
    if sec is None:
        return info
    info.present = True
    s, e = scan.lines(sec.begin, sec.end)
    if s.size == 0:
        return info
    pp = proc_paths(scan, s, e)
    ok = pp.ok & (pp.tid < 0)
    q = pp.rest
    kind = np.full(s.shape, -1, dtype=np.int64)
    cstart = np.zeros_like(s)
    for k, (lit, _name) in enumerate(_FILES):
        m = ok & (kind < 0) & scan.eq(q, lit)
        kind[m] = k
        cstart[m] = q[m] + len(lit)
    bad = np.flatnonzero(kind < 0)
    if bad.size:
        unparsed.add_lines(scan, "proc", s[bad], e[bad], "not a /proc/<pid>/<file> line")
    pid = pp.pid
    info.pids.update(uniq(pid[kind >= 0]).tolist())

    # -- status --------------------------------------------------------------------------
    st = np.flatnonzero(kind == 0)
    info.status_read.update(uniq(pid[st]).tolist())
    cs, ce, sp = cstart[st], e[st], pid[st]
    m = scan.eq(cs, b"Name:\t")
    if m.any():
        idx = np.flatnonzero(m)
        names = scan.slices(cs[idx] + 6, ce[idx])
        for p, raw in zip(sp[idx].tolist(), names, strict=True):
            info.name.setdefault(p, decode(raw))
    for lit, target in ((b"Tgid:\t", info.tgid), (b"PPid:\t", info.ppid)):
        m = scan.eq(cs, lit)
        if m.any():
            idx = np.flatnonzero(m)
            v, good = _uint_at(scan, cs[idx] + len(lit), ce[idx])
            for p, x in zip(sp[idx][good].tolist(), v[good].tolist(), strict=True):
                target.setdefault(p, x)
    m = scan.eq(cs, b"Uid:\t")
    if m.any():
        idx = np.flatnonzero(m)
        v, n = scan.dec(cs[idx] + 5, ce[idx])
        good = (n >= 1) & (n <= 10)
        v2, n2 = scan.dec(cs[idx] + 5 + n + 1, ce[idx])
        good2 = good & (n2 >= 1) & (n2 <= 10)
        for p, x, g1, g2, y in zip(
            sp[idx].tolist(),
            v.tolist(),
            good.tolist(),
            good2.tolist(),
            v2.tolist(),
            strict=True,
        ):
            if g1:
                info.uid.setdefault(p, x)
            if g2:
                info.euid.setdefault(p, y)
    m = scan.eq(cs, b"Kthread:\t")
    if m.any():
        idx = np.flatnonzero(m)
        v, good = _uint_at(scan, cs[idx] + 9, ce[idx])
        for p, x in zip(sp[idx][good].tolist(), v[good].tolist(), strict=True):
            info.kthread[p] = x == 1

    # -- cmdline (may span several lines when an argument holds "\n") -----------------------
    cl = np.flatnonzero(kind == 1)
    if cl.size:
        parts: dict[int, list[bytes]] = {}
        for p, raw in zip(pid[cl].tolist(), scan.slices(cstart[cl], e[cl]), strict=True):
            parts.setdefault(p, []).append(raw)
        info.cmdline = {p: b"\n".join(v) for p, v in parts.items()}

    # -- cgroup ---------------------------------------------------------------------------
    cg = np.flatnonzero(kind == 2)
    for p, raw in zip(pid[cg].tolist(), scan.slices(cstart[cg], e[cg]), strict=True):
        hier, sep1, rest = raw.partition(b":")
        ctl, sep2, path = rest.partition(b":")
        if not (sep1 and sep2) or not hier.strip().isdigit():
            unparsed.add("proc", f"/proc/{p}/cgroup", None, raw, "not a cgroup line")
            continue
        info.cgroup_rows.append((p, int(hier), decode(ctl), decode(path)))

    # -- stat: field 22 (starttime) after the last ")" -------------------------------------
    sl = np.flatnonzero(kind == 3)
    for p, raw in zip(pid[sl].tolist(), scan.slices(cstart[sl], e[sl]), strict=True):
        close = raw.rfind(b")")
        fields = raw[close + 1 :].split() if close >= 0 else []
        # fields[0] is field 3 (state); field 22 is fields[19]
        if len(fields) >= 20 and fields[19].isdigit():
            info.start_time[p] = int(fields[19])
        else:
            unparsed.add("proc", f"/proc/{p}/stat", None, raw, "no start time (field 22)")

    # -- ACK dmabuf_rss / dmabuf_pss ------------------------------------------------------
    for k, target in ((4, info.dmabuf_rss), (5, info.dmabuf_pss)):
        idx = np.flatnonzero(kind == k)
        if not idx.size:
            continue
        b = cstart[idx]
        # skip leading blanks
        for _ in range(4):
            blank = (scan.byte(b) == 0x20) | (scan.byte(b) == 0x09)
            b = np.where(blank & (b < e[idx]), b + 1, b)
        v, n = scan.dec(b, e[idx])
        good = (n >= 1) & (n <= 18)
        # a "kB" unit after the number, if a kernel ever prints one
        kb = good & (scan.eq(b + n, b" kB") | scan.eq(b + n, b"kB"))
        v = np.where(kb, v * 1024, v)
        for p, x in zip(pid[idx][good].tolist(), v[good].tolist(), strict=True):
            target[p] = x
        bad_i = idx[~good]
        if bad_i.size:
            unparsed.add_lines(scan, "proc", s[bad_i], e[bad_i], "not a number")
    return info
