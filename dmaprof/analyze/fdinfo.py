"""The ``/proc/<pid>[/task/<tid>]/fdinfo/<fd>`` files of a byte range of the ``fdinfo``
section -> one :class:`FdInfo` row per file (``docs/dump-format.md``).

Two parsers give the same rows: a vectorised one for kernel-shaped input (every line
``key:\tvalue``, every file starting with ``pos:``) and a line-by-line one for anything else
(copies with the tab turned into spaces, unknown keys, files without ``pos:``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dmaprof.analyze._scan import I64, Scan, dec_before, decode, first_byte
from dmaprof.analyze.unparsed import Unparsed

#: An fd's key is ``owner * OWNER_SHIFT + fd`` (owner: the tid for a task's own fd table).
OWNER_SHIFT = np.int64(1 << 32)


@dataclass
class FdInfo:
    key: I64
    pid: I64
    tid: I64
    fd: I64
    ino: I64  # -1 when absent
    size: I64  # -1 when absent
    count: I64  # -1 when absent
    exp_b: I64  # -1 when absent
    exp_e: I64
    name_b: I64  # -1 when absent
    name_e: I64
    is_dmabuf: np.ndarray  # has exp_name
    present: bool = False
    has_ino: bool = False


def empty_fdinfo(ng: int) -> FdInfo:
    def m1() -> I64:
        return np.full(ng, -1, dtype=np.int64)

    return FdInfo(
        m1(),
        m1(),
        m1(),
        m1(),
        m1(),
        m1(),
        m1(),
        m1(),
        m1(),
        m1(),
        m1(),
        np.zeros(ng, dtype=np.bool_),
    )


# fdinfo keys; the first 4 bytes of each are distinct, which makes a one-gather lookup.
_KEYS = (
    b"pos:",
    b"flags:",
    b"mnt_id:",
    b"ino:",
    b"size:",
    b"count:",
    b"exp_name:",
    b"name:",
    b"lock:",
)
K_INO, K_SIZE, K_COUNT, K_EXP, K_NAME = 3, 4, 5, 6, 7


# The two bytes before ":\t" -> key index in _KEYS ("me" is exp_name or name: resolved by
# the byte six before the tab, "_" or ":").
_PAIR_TABLE = np.full(1 << 16, -1, dtype=np.int8)
for _pair, _code in (
    (b"os", 0),
    (b"gs", 1),
    (b"id", 2),
    (b"no", 3),
    (b"ze", 4),
    (b"nt", 5),
    (b"me", 6),
    (b"ck", 8),
):
    _PAIR_TABLE[int.from_bytes(_pair, "little")] = _code
_KLEN = np.array([len(k) for k in _KEYS], dtype=np.int64)
# What the 8 bytes before each key's tab must be: the path's ":" and the key (its last 8
# bytes for exp_name, whose ":e" is checked apart), as (value, mask) per key index.
_KEY_WINDOW = np.zeros(len(_KEYS), dtype=np.uint64)
_KEY_MASK = np.zeros(len(_KEYS), dtype=np.uint64)
for _code, _key in enumerate(_KEYS):
    _tail = (b":" + _key)[-8:]
    _KEY_WINDOW[_code] = int.from_bytes(_tail.rjust(8, b"\0"), "little")
    _KEY_MASK[_code] = int.from_bytes((b"\xff" * len(_tail)).rjust(8, b"\0"), "little")


def _fdinfo_fast(scan: Scan, begin: int, end: int) -> FdInfo | None:
    """Vectorised fdinfo parse for kernel-shaped input, or None when the section does not
    look like it (then :func:`_fdinfo_slow` parses it line by line).

    Every kernel fdinfo line is ``key:\tvalue`` and every file starts with ``pos:``, so the
    tabs locate the keys, the ``pos:`` lines start the files, and the path (pid, tid, fd) is
    parsed once per file, backwards from the colon that ends it.
    """
    tabs = scan.positions(9, begin, end)
    if tabs.size == 0:
        return None
    code8 = _key_codes(scan, tabs)
    if code8 is None:
        return None
    # tab indices per key (one stable radix sort of the int8 codes)
    order = np.argsort(code8, kind="stable")
    bounds = np.searchsorted(code8[order], np.arange(len(_KEYS) + 1))
    by_key = {k: order[bounds[k] : bounds[k + 1]] for k in range(len(_KEYS))}
    if not scan.eq(tabs[by_key[K_EXP]] - 10, b":e").all():
        return None
    anchors = by_key[0]
    if anchors.size == 0 or anchors[0] != 0:
        return None
    apc = tabs[anchors] - 5  # "<path>:pos:\t"
    paths = _anchor_paths(scan, apc, begin)
    if paths is None:
        return None
    pid, tid, fd, line_start = paths
    out = empty_fdinfo(anchors.size)
    if not _read_values(scan, out, tabs, code8, by_key, apc - line_start, end):
        return None
    owner = np.where(tid >= 0, tid, pid)
    out.key = owner * OWNER_SHIFT + fd
    out.pid, out.tid, out.fd = pid, tid, fd
    out.is_dmabuf = out.exp_b >= 0
    out.has_ino = bool((out.ino >= 0).any())
    return out


def _key_codes(scan: Scan, tabs: I64) -> npt.NDArray[np.int8] | None:
    """The index in :data:`_KEYS` of the key before each tab; None when a key is unknown
    or a tab is inside a value (the slow path sorts it out)."""
    # the 8 bytes before each tab: the two before ":\t" name the key (a 64 Ki table), the
    # rest check it, with the path's ":" in front (one gather for every line)
    window = scan.win(tabs - 8)
    code8 = _PAIR_TABLE[((window >> np.uint64(40)) & np.uint64(0xFFFF)).astype(np.intp)]
    if (code8 < 0).any():
        return None
    is_name = (code8 == K_EXP) & (((window >> np.uint64(16)) & np.uint64(0xFF)) == 0x3A)
    code8[is_name] = K_NAME
    if not ((window & _KEY_MASK[code8]) == _KEY_WINDOW[code8]).all():
        return None
    return code8


def _anchor_paths(scan: Scan, apc: I64, begin: int) -> tuple[I64, I64, I64, I64] | None:
    """(pid, tid, fd, line start) of each file, its path ``/proc/<pid>[/task/<tid>]/fdinfo/
    <fd>`` parsed backwards from the colon at ``apc`` that ends it on its ``pos:`` line;
    None when a path is not of that shape."""
    fd, nfd = dec_before(scan, apc)
    ok = (nfd >= 1) & (nfd <= 7) & scan.eq(apc - nfd - 8, b"/fdinfo/")
    p1 = apc - nfd - 8
    d1, nd1 = dec_before(scan, p1)
    ok &= (nd1 >= 1) & (nd1 <= 7)
    head = p1 - nd1
    is_proc = scan.eq(head - 6, b"/proc/")
    is_task = ~is_proc & scan.eq(head - 6, b"/task/")
    pid = np.where(is_proc, d1, -1)
    tid = np.full(apc.size, -1, dtype=np.int64)
    if is_task.any():
        ti = np.flatnonzero(is_task)
        d2, nd2 = dec_before(scan, head[ti] - 6)
        good = (nd2 >= 1) & (nd2 <= 7) & scan.eq(head[ti] - 6 - nd2 - 6, b"/proc/")
        pid[ti[good]] = d2[good]
        tid[ti[good]] = d1[ti[good]]
        head[ti[good]] = head[ti[good]] - 6 - nd2
        ok[ti[~good]] = False
    ok &= is_proc | is_task
    line_start = head - 6
    first = scan.byte(np.maximum(line_start - 1, 0))
    ok &= (first == 0x0A) | (line_start == begin)
    if not ok.all():
        return None
    return pid, tid, fd, line_start


def _read_values(
    scan: Scan,
    out: FdInfo,
    tabs: I64,
    code8: npt.NDArray[np.int8],
    by_key: dict[int, I64],
    path_len: I64,
    end: int,
) -> bool:
    """Fill ``out``'s ino, size, count, exporter and name ranges, file by file; False when
    a value is not as the kernel prints it (then the slow path parses the section)."""
    # every tab belongs to the file of the last anchor ("pos:" line) before it. A file
    # without its "pos:" line would merge into the previous one and repeat its keys: then
    # the slow path parses the section.
    vs_all = tabs + 1
    fid = np.cumsum(code8 == 0) - 1
    klen = _KLEN[code8]
    for k, name in (
        (K_INO, "ino"),
        (K_SIZE, "size"),
        (K_COUNT, "count"),
        (K_EXP, "exp_b"),
        (K_NAME, "name_b"),
    ):
        idx = by_key[k]
        if not idx.size:
            continue
        f = fid[idx]
        if f.size > 1 and bool((f[1:] == f[:-1]).any()):
            return False
        vs = vs_all[idx]
        if k in (K_EXP, K_NAME):
            # The value ends where the next line starts, minus its "\n". The next line's
            # start is its tab minus its key and its path (as long as its file's anchor's).
            nxt = idx + 1
            last = nxt >= tabs.size
            nxt = np.minimum(nxt, tabs.size - 1)
            nstart = tabs[nxt] - klen[nxt] - 1 - path_len[fid[nxt]]
            ve = np.where(last, -1, nstart - 1)
            if last.any():
                ve[last] = first_newline(scan, vs[last], end)
            if not ((ve >= vs) & (scan.byte(np.maximum(ve, 0)) == 0x0A)).all():
                return False
            getattr(out, name)[f] = vs
            getattr(out, "exp_e" if k == K_EXP else "name_e")[f] = ve
            continue
        v, n = scan.dec(vs)
        if not ((n >= 1) & (n <= 18) & (scan.byte(vs + n) == 0x0A)).all():
            return False
        getattr(out, name)[f] = v
    return True


def _fdinfo_slow(scan: Scan, begin: int, end: int, unparsed: Unparsed) -> FdInfo:
    """Line-by-line fdinfo parse: any input, exact, slower."""
    s, e = scan.lines(begin, end)
    rows: dict[int, dict[str, int]] = {}
    order: list[int] = []
    meta: dict[int, tuple[int, int, int]] = {}
    for ls, le, raw in zip(s.tolist(), e.tolist(), scan.slices(s, e), strict=True):
        m = _SLOW_FDINFO.match(raw)
        if m is None:
            unparsed.add("fdinfo", None, None, raw, "not /proc/<pid>/fdinfo/<fd>:...")
            continue
        pid = int(m.group(1))
        tid = int(m.group(2)) if m.group(2) else -1
        fd = int(m.group(3))
        key = (tid if tid >= 0 else pid) * int(OWNER_SHIFT) + fd
        rec = rows.get(key)
        if rec is None:
            rec = rows[key] = {}
            order.append(key)
            meta[key] = (pid, tid, fd)
        field_, sep, value = m.group(4).partition(b":")
        vstart = ls + m.start(4) + len(field_) + 1
        # the kernel separates with one tab (the value may start with blanks of its own);
        # copies with the tab turned into spaces lose that distinction
        stripped = value[1:] if value[:1] == b"\t" else value.lstrip(b" ")
        vstart += len(value) - len(stripped)
        value = stripped
        name = field_.decode("ascii", "replace")
        if not sep or name not in _FIELD_NAMES:
            unparsed.add(
                "fdinfo", decode(m.group(0).partition(b":")[0]), None, raw, "unknown fdinfo field"
            )
            continue
        if name in ("ino", "size", "count"):
            v = value.rstrip(b" \r\t")
            if v.isdigit() and len(v) <= 18:
                rec[name] = int(v)
            else:
                unparsed.add("fdinfo", None, None, raw, "not a number")
        elif name in ("exp_name", "name"):
            rec[name + "_b"] = vstart
            rec[name + "_e"] = le
    ng = len(order)
    out = empty_fdinfo(ng)
    for i, key in enumerate(order):
        rec = rows[key]
        out.key[i] = key
        out.pid[i], out.tid[i], out.fd[i] = meta[key]
        out.ino[i] = rec.get("ino", -1)
        out.size[i] = rec.get("size", -1)
        out.count[i] = rec.get("count", -1)
        out.exp_b[i] = rec.get("exp_name_b", -1)
        out.exp_e[i] = rec.get("exp_name_e", -1)
        out.name_b[i] = rec.get("name_b", -1)
        out.name_e[i] = rec.get("name_e", -1)
    out.is_dmabuf = out.exp_b >= 0
    out.has_ino = bool((out.ino >= 0).any())
    return out


_SLOW_FDINFO = re.compile(rb"/proc/(\d+)(?:/task/(\d+))?/fdinfo/(\d+):(.*)\Z", re.S)
_FIELD_NAMES = frozenset(
    {"pos", "flags", "mnt_id", "ino", "size", "count", "exp_name", "name", "lock"}
)


FDINFO_FIELDS = (
    "key",
    "pid",
    "tid",
    "fd",
    "ino",
    "size",
    "count",
    "exp_b",
    "exp_e",
    "name_b",
    "name_e",
    "is_dmabuf",
)


def next_file_start(buf: bytes, begin: int, end: int, target: int) -> int | None:
    """The start of the first fdinfo file at or after ``target`` in ``buf[begin:end]``: a
    ``pos:`` line whose path differs from the line before it, a boundary both parsers
    agree on. None when there is none."""
    at = buf.find(b":pos:\t", target, end)
    if at < 0:
        return None
    line = buf.rfind(b"\n", begin, at) + 1
    if line <= begin:
        return None
    prev = buf.rfind(b"\n", begin, line - 1) + 1
    here = _SLOW_FDINFO.match(buf[line : at + 6])
    before = _SLOW_FDINFO.match(buf[prev : line - 1])
    if here is None or before is None or here.group(1, 2, 3) == before.group(1, 2, 3):
        return None
    return line


def first_newline(scan: Scan, pos: I64, limit: int) -> I64:
    """Position of the first "\n" at or after each position (``limit`` when none)."""
    out = np.full(pos.size, limit, dtype=np.int64)
    todo = np.arange(pos.size)
    p = pos.copy()
    width = 64
    while todo.size:
        off = first_byte(scan, p[todo], width, 0x0A)
        found = off < width
        out[todo[found]] = np.minimum(p[todo[found]] + off[found], limit)
        p[todo] = p[todo] + width
        nxt = todo[~found]
        todo = nxt[p[nxt] < limit]
    return out


def parse_fdinfo_piece(scan: Scan, begin: int, end: int, unparsed: Unparsed) -> FdInfo:
    """The files of ``[begin, end)``, by the fast parser when it can."""
    fast = _fdinfo_fast(scan, begin, end)
    if fast is None:
        fast = _fdinfo_slow(scan, begin, end, unparsed)
    return fast


def concat_fdinfo(parts: list[FdInfo]) -> FdInfo:
    """The rows of several parts, in order."""
    out = empty_fdinfo(0)
    for name in FDINFO_FIELDS:
        setattr(out, name, np.concatenate([getattr(p, name) for p in parts]))
    out.has_ino = any(p.has_ino for p in parts)
    return out
