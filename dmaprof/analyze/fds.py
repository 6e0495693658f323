"""fd references: ``fdlinks`` (stat records), ``fdinfo`` (files) and ``fdstat`` (stat records).

* ``fdlinks`` tells which fds are dma-bufs: target ``/dmabuf:<name>`` (5.3+, per-buffer
  identity) or ``anon_inode:dmabuf`` (older kernels: every dma-buf shares one inode, so no
  identity). Other targets are ignored.
* ``fdinfo`` gives ``ino:`` (5.14+), ``size:``, ``count:``, ``exp_name:``, ``name:`` of each
  dma-buf fd; an fdinfo with ``exp_name:`` is a dma-buf even without its link record
  (the files themselves are parsed by :mod:`dmaprof.analyze.fdinfo`; here the section is
  cut into ranges and pieces and the parts joined).
* ``fdstat`` (kernels without ``ino:`` in fdinfo) gives ``<inode> <size>`` from ``stat -L``.

An fd is keyed by ``owner * 2**32 + fd`` where ``owner`` is the tid for a task's own fd
table and the pid otherwise (pids and tids share one number space). The inode becomes the
buffer's identity only when the link target starts with ``/dmabuf`` (or, without a link
record, when the fdinfo says ``exp_name:``, which only dma-buf files print); inode numbers of
other filesystems collide with dma-buf inodes.

All per-line work is vectorised (``_scan``); only one name/exporter string per distinct
buffer is turned into Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import (
    I64,
    Bool,
    ProcPaths,
    Scan,
    decode,
    factorize_ranges,
    lookup,
    nullable,
    proc_paths,
    sort_order,
    uniq,
    uniq_counts,
    uniq_index,
)
from dmaprof.analyze.fdinfo import (
    FDINFO_FIELDS,
    OWNER_SHIFT,
    FdInfo,
    concat_fdinfo,
    empty_fdinfo,
    first_newline,
    next_file_start,
    parse_fdinfo_piece,
)
from dmaprof.analyze.unparsed import Unparsed
from dmaprof.capture.dump import Dump

#: A value range whose end is "the next newline" (resolved only for values actually read).
END_AT_NEWLINE = -2

__all__ = [
    "CHUNK_BYTES",
    "END_AT_NEWLINE",
    "OWNER_SHIFT",
    "SPLIT_MIN_BYTES",
    "TARGET_ANON",
    "TARGET_DMABUF",
    "TARGET_OTHER",
    "FdInfo",
    "FdRefs",
    "FdStat",
    "InodeGroups",
    "Links",
    "fd_references",
    "fdinfo_ranges",
    "join_fdinfo",
    "parse_fdinfo",
    "parse_fdinfo_range",
    "parse_fdlinks",
    "parse_fdstat",
    "pieces_of",
]

TARGET_DMABUF = 0
TARGET_ANON = 1
TARGET_OTHER = 2


@dataclass
class Links:
    key: I64  # owner * 2**32 + fd, dma-buf fds only
    pid: I64
    tid: I64
    fd: I64
    target: I64  # TARGET_DMABUF / TARGET_ANON
    name_b: I64  # link name range (after "/dmabuf:"); empty for anon
    name_e: I64
    pids_seen: set[int] = field(default_factory=set)  # pids with any fd record
    fds_seen: dict[int, int] = field(default_factory=dict)  # pid -> number of fd records
    unreadable: dict[int, int] = field(default_factory=dict)  # pid -> links not readable
    present: bool = False


@dataclass
class FdStat:
    key: I64
    ino: I64
    size: I64
    present: bool = False


def _empty_i64() -> I64:
    return np.zeros(0, dtype=np.int64)


_SLOW_REC = re.compile(rb"(/proc/(\d+)(?:/task/(\d+))?/fd/(\d+))(?: (.*))?\Z", re.S)


def _record_bounds(
    scan: Scan, begin: int, end: int, name: str, nonce: bytes, unparsed: Unparsed
) -> tuple[I64, I64, I64]:
    """(record content begin, record end, record line start) of (a piece of) the stat
    section ``name``."""
    s, e = scan.lines(begin, end)
    if s.size == 0:
        return _empty_i64(), _empty_i64(), _empty_i64()
    prefix = b"@" + nonce + b" "
    # "@" and the first 15 characters of the nonce: content cannot forge them (the nonce is
    # chosen when the collector starts); the full prefix length is still skipped below
    isrec = scan.eq(s, prefix[:16])
    rec = np.flatnonzero(isrec)
    if rec.size == 0:
        unparsed.add_lines(scan, name, s, e, "no record line (@<nonce> ...)")
        return _empty_i64(), _empty_i64(), _empty_i64()
    if rec[0] > 0:
        unparsed.add_lines(scan, name, s[: rec[0]], e[: rec[0]], "before the first record")
    last_line = np.empty_like(rec)
    last_line[:-1] = rec[1:] - 1
    last_line[-1] = s.size - 1
    return s[rec] + len(prefix), e[last_line], s[rec]


def _fd_records(
    scan: Scan, begin: int, end: int, name: str, nonce: bytes, unparsed: Unparsed
) -> tuple[I64, I64, ProcPaths, I64, I64, Bool] | None:
    """The records of (a piece of) a stat section that start ``<path>/fd/<n> ``: (record
    begin, record end, the parsed ``/proc/<pid>[/task/<tid>]/`` part, the fd, the position
    of the blank after it, which records have that shape); None when there is no record."""
    rb, re_, _ = _record_bounds(scan, begin, end, name, nonce, unparsed)
    if rb.size == 0:
        return None
    pp = proc_paths(scan, rb, re_)
    ok = pp.ok & scan.eq(pp.rest, b"fd/")
    fd, nfd = scan.dec(pp.rest + 3, re_)
    after = pp.rest + 3 + nfd
    ok &= (nfd >= 1) & (nfd <= 10) & (scan.byte(after) == 0x20)
    return rb, re_, pp, fd, after, ok


def _empty_links() -> Links:
    empty = _empty_i64()
    return Links(empty, empty, empty, empty, empty, empty, empty)


def parse_fdlinks(dump: Dump, scan: Scan, unparsed: Unparsed) -> Links:
    sec = dump.section("fdlinks")
    if sec is None:
        return _empty_links()
    prefix = b"\n@" + dump.nonce + b" "

    def next_record(begin: int, target: int) -> int | None:
        at = scan.buf.find(prefix, target, sec.end)
        return None if at < 0 else at + 1

    pieces = [
        _links_piece(scan, b, e, dump.nonce, unparsed)
        for b, e in pieces_of(sec.begin, sec.end, next_record)
    ]
    out = pieces[0] if len(pieces) == 1 else _empty_links()
    if len(pieces) > 1:
        for name in ("key", "pid", "tid", "fd", "target", "name_b", "name_e"):
            setattr(out, name, np.concatenate([getattr(p, name) for p in pieces]))
        for piece in pieces:  # a process's records may straddle two pieces
            out.pids_seen |= piece.pids_seen
            for counts, more in (
                (out.fds_seen, piece.fds_seen),
                (out.unreadable, piece.unreadable),
            ):
                for pid, n in more.items():
                    counts[pid] = counts.get(pid, 0) + n
    out.present = True
    return out


#: Big sections are parsed in pieces of about this size: every pass of the vectorised
#: parsers over a piece then reads from the CPU cache instead of memory (measured: 2 MiB
#: pieces parse a 54 MB fdinfo section in 0.22 s instead of 0.38 s, a 22 MB fdlinks section
#: in 0.10 s instead of 0.12 s; 256 KiB pieces cost more in numpy calls).
CHUNK_BYTES = 2 << 20


def pieces_of(
    begin: int, end: int, boundary: Callable[[int, int], int | None]
) -> list[tuple[int, int]]:
    """``[begin, end)`` cut into pieces of about :data:`CHUNK_BYTES`. ``boundary(start,
    target)`` is the first place at or after ``target`` where a piece that starts at
    ``start`` may end (a record or file start), None when there is none."""
    pieces: list[tuple[int, int]] = []
    while end - begin > CHUNK_BYTES:
        cut = boundary(begin, begin + CHUNK_BYTES)
        if cut is None:
            break
        pieces.append((begin, cut))
        begin = cut
    pieces.append((begin, end))
    return pieces


def _links_piece(scan: Scan, begin: int, end: int, nonce: bytes, unparsed: Unparsed) -> Links:
    out = _empty_links()
    records = _fd_records(scan, begin, end, "fdlinks", nonce, unparsed)
    if records is None:
        return out
    rb, re_, pp, fd, pe, ok = records
    length = pe - rb
    # toybox: "<path> <path> -> '<target>'"; busybox and GNU: "<path> '<path>' -> '...'"
    a1 = pe + 1 + length
    t12 = scan.eq(a1, b" -> '")
    other = np.flatnonzero(~t12)
    if other.size:
        a1[other] += 2
        t12[other] = scan.eq(a1[other], b" -> '") & (scan.byte(pe[other] + 1) == 0x27)
    ts = a1 + 5
    te = re_ - 1
    ok &= t12 & (te >= ts) & (scan.byte(np.maximum(te, 0)) == 0x27)
    pid, tid = pp.pid.copy(), pp.tid.copy()

    slow = np.flatnonzero(~ok)
    if slow.size:
        # Records the fast path does not recognise (names that differ from the path,
        # unusual quoting): parse them one by one.
        for i, raw in zip(slow.tolist(), scan.slices(rb[slow], re_[slow]), strict=True):
            m = _SLOW_REC.match(raw)
            arrow_at = raw.find(b" -> '") if m else -1
            close = raw.rfind(b"'")
            if m and arrow_at < 0:
                # "<path> '<path>'" (GNU) or "<path> " (busybox): the link could not be read;
                # fdlinks.err says why
                p = int(m.group(2))
                out.unreadable[p] = out.unreadable.get(p, 0) + 1
                continue
            if not m or arrow_at < 0 or close < arrow_at + 5:
                unparsed.add("fdlinks", None, None, raw, "not '<fdpath> <name> -> '<target>''")
                continue
            pid[i] = int(m.group(2))
            tid[i] = int(m.group(3)) if m.group(3) else -1
            fd[i] = int(m.group(4))
            ts[i] = rb[i] + arrow_at + 5
            te[i] = rb[i] + close
            ok[i] = True
    good = np.flatnonzero(ok)
    pid, tid, fd, ts, te = pid[good], tid[good], fd[good], ts[good], te[good]
    upid, counts = uniq_counts(pid)
    out.pids_seen = set(upid.tolist())
    out.fds_seen = dict(zip(upid.tolist(), counts.tolist(), strict=True))

    is_dmabuf = scan.eq(ts, b"/dmabuf") & (te >= ts + 7)
    is_anon = te - ts == 17
    cand = np.flatnonzero(is_anon)
    if cand.size:
        is_anon[cand] = scan.eq(ts[cand], b"anon_inode:dmabuf")
    keep = np.flatnonzero(is_dmabuf | is_anon)
    ts, te = ts[keep], te[keep]
    target = np.where(is_dmabuf[keep], TARGET_DMABUF, TARGET_ANON).astype(np.int64)
    colon = scan.eq(ts, b"/dmabuf:") & (te >= ts + 8)
    name_b = np.where(target == TARGET_DMABUF, np.where(colon, ts + 8, te), te)
    owner = np.where(tid[keep] >= 0, tid[keep], pid[keep])
    out.key = owner * OWNER_SHIFT + fd[keep]
    out.pid, out.tid, out.fd = pid[keep], tid[keep], fd[keep]
    out.target = target
    out.name_b, out.name_e = name_b, te
    return out


#: Sections smaller than this are parsed in one piece.
SPLIT_MIN_BYTES = 1 << 20


def fdinfo_ranges(
    buf: bytes, begin: int, end: int, first_share: float, min_bytes: int = SPLIT_MIN_BYTES
) -> list[tuple[int, int]]:
    """The fdinfo section ``buf[begin:end]`` as one byte range, or two that meet at the
    start of a file, the first about ``first_share`` of the section: two threads can then
    parse it (see :func:`join_fdinfo`). Parsing the parts gives what parsing the whole
    gives."""
    if end <= begin:
        return []
    whole = [(begin, end)]
    if end - begin < min_bytes or not 0 < first_share < 1:
        return whole
    cut = next_file_start(buf, begin, end, begin + int((end - begin) * first_share))
    return whole if cut is None else [(begin, cut), (cut, end)]


def parse_fdinfo_range(scan: Scan, begin: int, end: int, unparsed: Unparsed) -> FdInfo:
    """One range of the fdinfo section (see :func:`fdinfo_ranges`), piece by piece; the
    pieces still need :func:`join_fdinfo`."""
    pieces = [
        parse_fdinfo_piece(scan, b, e, unparsed)
        for b, e in pieces_of(begin, end, lambda b, t: next_file_start(scan.buf, b, end, t))
    ]
    return pieces[0] if len(pieces) == 1 else concat_fdinfo(pieces)


def join_fdinfo(parts: list[FdInfo], present: bool) -> FdInfo:
    """The parts of a section in order, as one; an fd listed twice keeps its last
    occurrence."""
    if not parts:
        out = empty_fdinfo(0)
        out.present = present
        return out
    out = parts[0] if len(parts) == 1 else concat_fdinfo(parts)
    out.present = present
    ng = out.key.size
    if ng and uniq(out.key).size != ng:
        # The same fd listed twice (not adjacent): keep the last occurrence.
        _, last, _ = uniq_index(out.key[::-1])
        keep = np.sort(ng - 1 - last)
        for name in FDINFO_FIELDS:
            setattr(out, name, getattr(out, name)[keep])
    return out


def parse_fdinfo(dump: Dump, scan: Scan, unparsed: Unparsed) -> FdInfo:
    """The whole fdinfo section, in one thread."""
    sec = dump.section("fdinfo")
    if sec is None or sec.size == 0:
        return join_fdinfo([], sec is not None)
    return join_fdinfo([parse_fdinfo_range(scan, sec.begin, sec.end, unparsed)], True)


def parse_fdstat(dump: Dump, scan: Scan, unparsed: Unparsed) -> FdStat:
    sec = dump.section("fdstat")
    empty = _empty_i64()
    out = FdStat(empty, empty, empty)
    if sec is None:
        return out
    out.present = True
    records = _fd_records(scan, sec.begin, sec.end, sec.name, dump.nonce, unparsed)
    if records is None:
        return out
    rb, re_, pp, fd, p1, ok = records
    ino, nino = scan.dec(p1 + 1, re_)
    p2 = p1 + 1 + nino
    ok &= (nino >= 1) & (nino <= 18) & (scan.byte(p2) == 0x20)
    size, nsize = scan.dec(p2 + 1, re_)
    ok &= (nsize >= 1) & (nsize <= 18) & (p2 + 1 + nsize == re_)
    bad = np.flatnonzero(~ok)
    if bad.size:
        for raw in scan.slices(rb[bad], re_[bad]):
            unparsed.add("fdstat", None, None, raw, "not '<fdpath> <inode> <size>'")
    good = np.flatnonzero(ok)
    owner = np.where(pp.tid[good] >= 0, pp.tid[good], pp.pid[good])
    out.key = owner * OWNER_SHIFT + fd[good]
    out.ino = ino[good]
    out.size = size[good]
    return out


@dataclass
class FdRefs:
    """The fd part of the ``references`` table, as columns."""

    frame: pd.DataFrame  # columns of REFERENCES for kind fd
    links: Links
    info: FdInfo
    stat: FdStat


def _lookup(keys: I64, table_keys: I64) -> tuple[I64, np.ndarray]:
    """Row of ``table_keys`` (distinct, any order) for each key; found mask."""
    if table_keys.size == 0:
        return np.zeros(keys.shape, dtype=np.int64), np.zeros(keys.shape, dtype=np.bool_)
    order = sort_order(table_keys)
    j, found = lookup(keys, table_keys[order])
    return order[j], found


@dataclass
class InodeGroups:
    """The rows with an inode (``>= 0``) and, for each, the number of its inode among the
    distinct ones: one factorisation shared by every string column of a table."""

    rows: I64
    inv: I64
    n: int

    @classmethod
    def of(cls, inode: I64) -> InodeGroups:
        rows = np.flatnonzero(inode >= 0)
        distinct, _, inv = uniq_index(inode[rows])
        return cls(rows, inv, distinct.size)


_NO_ROW = np.iinfo(np.int64).max


def _categorical_by_inode(
    scan: Scan, inode: I64, b: I64, e: I64, groups: InodeGroups | None = None
) -> pd.Categorical:
    """Strings for the ranges ``[b, e)`` (``b < 0``: missing; ``e == END_AT_NEWLINE``: to the
    end of the line). Rows with the same inode (>= 0) share one value, the first row's that
    has one, so only one range per buffer is read; equal byte strings are decoded once.
    Empty strings become null. ``groups`` is ``InodeGroups.of(inode)``, when already made."""
    if groups is None:
        groups = InodeGroups.of(inode)
    n = inode.size
    codes = np.full(n, -1, dtype=np.int64)
    has = b >= 0
    sub = has[groups.rows]
    g_has, r_has = groups.inv[sub], groups.rows[sub]
    first = np.full(groups.n, _NO_ROW, dtype=np.int64)
    np.minimum.at(first, g_has, r_has)
    present = first != _NO_ROW
    slot = np.cumsum(present) - 1  # group -> its row among the representatives
    rest = np.flatnonzero(has & (inode < 0))
    reps = first[present]
    rows = np.concatenate([reps, rest])
    rb = b[rows]
    re_ = e[rows].copy()
    nlm = re_ == END_AT_NEWLINE
    if nlm.any():
        re_[nlm] = first_newline(scan, rb[nlm], scan.length)
    raw_codes, raw_values = factorize_ranges(scan, rb, re_)
    # two byte strings can decode to one text (b"\\xff" and b"\xff"): map to text codes
    texts: list[str] = []
    text_index: dict[str, int] = {}
    remap = np.empty(len(raw_values), dtype=np.int64)
    for i, raw in enumerate(raw_values):
        t = decode(raw)
        c = text_index.get(t)
        if c is None:
            c = len(texts)
            text_index[t] = c
            texts.append(t)
        remap[i] = c
    raw_codes = remap[raw_codes] if raw_codes.size else raw_codes
    codes[r_has] = raw_codes[slot[g_has]]
    codes[rest] = raw_codes[reps.size :]
    if "" in texts:
        empty = texts.index("")
        codes[codes == empty] = -1
    return pd.Categorical.from_codes(codes, categories=pd.Index(texts, dtype="str"))


def fd_references(
    dump: Dump,
    scan: Scan,
    unparsed: Unparsed,
    info: FdInfo | None = None,
    links: Links | None = None,
) -> FdRefs:
    """The fd part of the references. ``info`` and ``links`` may be parsed beforehand (e.g.
    in two threads: the fdinfo section is the biggest of a dump)."""
    if links is None:
        links = parse_fdlinks(dump, scan, unparsed)
    if info is None:
        info = parse_fdinfo(dump, scan, unparsed)
    stat = parse_fdstat(dump, scan, unparsed)

    # Rows: every dma-buf link, plus fdinfo files with exp_name that have no link record.
    # The collector reads the fdinfo of the dma-buf links in their order, so the two lists
    # usually match one for one: then no lookup is needed.
    aligned = info.key.size == links.key.size and bool(np.array_equal(info.key, links.key))
    lfound = np.ones(info.key.size, np.bool_) if aligned else _lookup(info.key, links.key)[1]
    extra = np.flatnonzero(info.is_dmabuf & ~lfound)
    key = np.concatenate([links.key, info.key[extra]])
    pid = np.concatenate([links.pid, info.pid[extra]])
    tid = np.concatenate([links.tid, info.tid[extra]])
    fd = np.concatenate([links.fd, info.fd[extra]])
    target = np.concatenate([links.target, np.full(extra.size, TARGET_DMABUF, np.int64)])
    n = key.size
    if aligned:
        ii, ifound = np.arange(n, dtype=np.int64), np.ones(n, np.bool_)
    else:
        ii, ifound = _lookup(key, info.key)
    si, sfound = _lookup(key, stat.key)

    def pick(arr: I64) -> I64:
        out = np.full(n, -1, dtype=np.int64)
        out[ifound] = arr[ii[ifound]]
        return out

    ino = pick(info.ino)
    size = pick(info.size)
    count = pick(info.count)
    exp_b, exp_e = pick(info.exp_b), pick(info.exp_e)
    iname_b, iname_e = pick(info.name_b), pick(info.name_e)
    dm = target == TARGET_DMABUF
    use_stat = dm & (ino < 0) & sfound
    ino[use_stat] = stat.ino[si[use_stat]]
    fill = (size < 0) & use_stat
    size[fill] = stat.size[si[fill]]
    ino[~dm] = -1  # anon_inode: the inode is the shared anonymous inode, not an identity
    size_src = np.where(size >= 0, np.where(use_stat & (pick(info.size) < 0), 1, 0), -1)

    # name: fdinfo "name:", else the link suffix
    lname_b = np.concatenate([links.name_b, np.full(extra.size, -1, np.int64)])
    lname_e = np.concatenate([links.name_e, np.full(extra.size, -1, np.int64)])
    nb = np.where(iname_b >= 0, iname_b, lname_b)
    ne = np.where(iname_b >= 0, iname_e, lname_e)
    nb = np.where((ne > nb) | (ne == END_AT_NEWLINE), nb, -1)

    frame = pd.DataFrame(
        {
            "pid": pid.astype(np.int32),
            "tid": nullable(tid, tid < 0, "Int32"),
            "inode": nullable(ino, ino < 0),
            "target": target,
            "fd": nullable(fd, fd < 0, "Int32"),
            "size_bytes": nullable(size, size < 0),
            "count": nullable(count, count < 0),
        }
    )
    frame["size_source"] = pd.Categorical.from_codes(
        size_src, categories=pd.Index(["fdinfo", "fdstat"], dtype="str")
    )
    groups = InodeGroups.of(ino)
    frame["exporter"] = _categorical_by_inode(scan, ino, exp_b, exp_e, groups)
    frame["name"] = _categorical_by_inode(scan, ino, nb, ne, groups)
    return FdRefs(frame, links, info, stat)
