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
    """Every process's files in the ``proc`` section (see the module docstring)."""
    info = ProcInfo()
    sec = dump.section("proc")
    if sec is None:
        return info
    info.present = True
    s, e = scan.lines(sec.begin, sec.end)
    if s.size == 0:
        return info
    pid, kind, cstart = _classify(scan, s, e, unparsed)
    info.pids.update(uniq(pid[kind >= 0]).tolist())
    st = np.flatnonzero(kind == 0)
    info.status_read.update(uniq(pid[st]).tolist())
    _read_status(scan, info, cstart[st], e[st], pid[st])
    cl = np.flatnonzero(kind == 1)
    if cl.size:
        info.cmdline = _cmdlines(scan, pid[cl], cstart[cl], e[cl])
    cg = np.flatnonzero(kind == 2)
    _read_cgroups(scan, info, pid[cg], cstart[cg], e[cg], unparsed)
    sl = np.flatnonzero(kind == 3)
    _read_start_times(scan, info, pid[sl], cstart[sl], e[sl], unparsed)
    for k, target in ((4, info.dmabuf_rss), (5, info.dmabuf_pss)):
        idx = np.flatnonzero(kind == k)
        if idx.size:
            _read_counter(scan, target, pid[idx], cstart[idx], s[idx], e[idx], unparsed)
    return info


def _classify(scan: Scan, s: I64, e: I64, unparsed: Unparsed) -> tuple[I64, I64, I64]:
    """Per line: its pid, the index of its file in :data:`_FILES` (-1: not a process's
    file line, reported) and where its content starts."""
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
    return pp.pid, kind, cstart


def _read_status(scan: Scan, info: ProcInfo, cs: I64, ce: I64, sp: I64) -> None:
    """``Name:``, ``Tgid:``, ``PPid:``, ``Uid:`` (real and effective) and ``Kthread:`` of the
    ``status`` lines starting at ``cs`` (the first line of a key per pid wins)."""
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
        _read_uids(scan, info, cs[idx], ce[idx], sp[idx])
    m = scan.eq(cs, b"Kthread:\t")
    if m.any():
        idx = np.flatnonzero(m)
        v, good = _uint_at(scan, cs[idx] + 9, ce[idx])
        for p, x in zip(sp[idx][good].tolist(), v[good].tolist(), strict=True):
            info.kthread[p] = x == 1


def _read_uids(scan: Scan, info: ProcInfo, cs: I64, ce: I64, sp: I64) -> None:
    """The real and effective uid of ``Uid:\t<real>\t<effective>...`` lines."""
    v, n = scan.dec(cs + 5, ce)
    good = (n >= 1) & (n <= 10)
    v2, n2 = scan.dec(cs + 5 + n + 1, ce)
    good2 = good & (n2 >= 1) & (n2 <= 10)
    for p, x, g1, g2, y in zip(
        sp.tolist(),
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


def _cmdlines(scan: Scan, pid: I64, cs: I64, ce: I64) -> dict[int, bytes]:
    """Each pid's cmdline (it spans several lines when an argument holds "\n")."""
    parts: dict[int, list[bytes]] = {}
    for p, raw in zip(pid.tolist(), scan.slices(cs, ce), strict=True):
        parts.setdefault(p, []).append(raw)
    return {p: b"\n".join(v) for p, v in parts.items()}


def _read_cgroups(
    scan: Scan, info: ProcInfo, pid: I64, cs: I64, ce: I64, unparsed: Unparsed
) -> None:
    """``<hierarchy>:<controllers>:<path>`` lines of ``/proc/<pid>/cgroup``."""
    for p, raw in zip(pid.tolist(), scan.slices(cs, ce), strict=True):
        hier, sep1, rest = raw.partition(b":")
        ctl, sep2, path = rest.partition(b":")
        if not (sep1 and sep2) or not hier.strip().isdigit():
            unparsed.add("proc", f"/proc/{p}/cgroup", None, raw, "not a cgroup line")
            continue
        info.cgroup_rows.append((p, int(hier), decode(ctl), decode(path)))


def _read_start_times(
    scan: Scan, info: ProcInfo, pid: I64, cs: I64, ce: I64, unparsed: Unparsed
) -> None:
    """``stat``: field 22 (starttime), counted after the last ")" (the comm may hold one)."""
    for p, raw in zip(pid.tolist(), scan.slices(cs, ce), strict=True):
        close = raw.rfind(b")")
        fields = raw[close + 1 :].split() if close >= 0 else []
        # fields[0] is field 3 (state); field 22 is fields[19]
        if len(fields) >= 20 and fields[19].isdigit():
            info.start_time[p] = int(fields[19])
        else:
            unparsed.add("proc", f"/proc/{p}/stat", None, raw, "no start time (field 22)")


def _read_counter(
    scan: Scan,
    target: dict[int, int],
    pid: I64,
    b: I64,
    s: I64,
    e: I64,
    unparsed: Unparsed,
) -> None:
    """ACK ``dmabuf_rss`` / ``dmabuf_pss``: one number of bytes per line."""
    # skip leading blanks
    for _ in range(4):
        blank = (scan.byte(b) == 0x20) | (scan.byte(b) == 0x09)
        b = np.where(blank & (b < e), b + 1, b)
    v, n = scan.dec(b, e)
    good = (n >= 1) & (n <= 18)
    # a "kB" unit after the number, if a kernel ever prints one
    kb = good & (scan.eq(b + n, b" kB") | scan.eq(b + n, b"kB"))
    v = np.where(kb, v * 1024, v)
    target.update(zip(pid[good].tolist(), v[good].tolist(), strict=True))
    bad = np.flatnonzero(~good)
    if bad.size:
        unparsed.add_lines(scan, "proc", s[bad], e[bad], "not a number")
