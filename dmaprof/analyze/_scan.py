"""Vectorised byte scanning over the dump buffer (numpy only; no per-line Python).

The big sections of a dump (``fdinfo``, ``fdlinks``, ``proc``, ``maps``, ``sysfs_buffers``) hold
up to millions of lines. Their parsers work on arrays of positions into one shared buffer:

* :meth:`Scan.lines` gives the start/end of every line of a range,
* :meth:`Scan.win` reads 8 bytes at each of many positions in one gather (an unaligned,
  1-byte-strided ``uint64`` view of the buffer),
* :meth:`Scan.eq` compares a literal at many positions,
* :meth:`Scan.dec` parses the decimal number starting at each position with SWAR
  arithmetic (8 digits per window, up to 18 digits),
* :func:`hexnum`, :func:`dec_before`, :func:`skip_byte` are the same idea for hex numbers,
  digits before a position and runs of one byte,
* :meth:`Scan.slices` and :func:`factorize_ranges` turn a (small) set of ranges into Python
  values, and :func:`lookup` / :func:`uniq` / :func:`sort_order` are the integer helpers
  (sort based: numpy 2's hash-based ``np.unique`` and stable int64 argsorts are slow).

The buffer must be followed by at least 16 zero bytes (:data:`dmaprof.capture.dump.PAD`), so that a
window starting at any position up to the end of the data stays inside it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
Bool = npt.NDArray[np.bool_]

_M7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_C76 = np.uint64(0x7676767676767676)
_H80 = np.uint64(0x8080808080808080)
_X30 = np.uint64(0x3030303030303030)
_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_POW10 = np.array([10**i for i in range(19)], dtype=np.int64)
#: Bytes compared at a time when searching a range for one byte value.
_CHUNK = 1 << 18
#: Largest number of decimal digits :meth:`Scan.dec` converts (fits in int64).
MAX_DIGITS = 18


def literal(text: bytes) -> tuple[np.uint64, np.uint64]:
    """Little-endian ``uint64`` value and mask of a literal of at most 8 bytes."""
    if len(text) > 8:
        raise ValueError("literal longer than 8 bytes")
    value = int.from_bytes(text.ljust(8, b"\0"), "little")
    mask = (1 << (8 * len(text))) - 1
    return np.uint64(value), np.uint64(mask)


def _lowest_nondigit(x: U64) -> I64:
    """Number of leading (lowest-addressed) bytes of ``x ^ '0'*8`` that are digits (0..8)."""
    m = (((x & _M7) + _C76) | x) & _H80  # 0x80 in every byte that is not 0..9
    low = m & (~m + np.uint64(1))  # lowest set bit (0 when all 8 bytes are digits)
    if hasattr(np, "bitwise_count"):
        # popcount(low - 1) = index of the lowest set bit; 64 when low == 0
        bits = np.bitwise_count(low - np.uint64(1)).astype(np.int64)
    else:  # numpy < 2.0
        bits = np.where(
            low == 0, 64, np.log2(np.maximum(low, 1).astype(np.float64)).astype(np.int64)
        )
    return bits // 8


def _swar8(x: U64, n: I64) -> U64:
    """Value of the first ``n`` (0..8) digit bytes of ``x`` (already xor'ed with '0's)."""
    nu = n.astype(np.uint64)
    shift = np.uint64(8) * (np.uint64(8) - nu)
    full = n >= 8
    keep = np.where(full, _ONES, (np.uint64(1) << (np.uint64(8) * nu)) - np.uint64(1))
    y = (x & keep) << np.where(full, np.uint64(0), shift)
    y = np.where(n == 0, np.uint64(0), y)
    y = ((y & np.uint64(0x0F0F0F0F0F0F0F0F)) * np.uint64(2561)) >> np.uint64(8)
    y = ((y & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601)) >> np.uint64(16)
    y = ((y & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)
    return y


class Scan:
    """Vectorised access to one padded buffer."""

    def __init__(self, buf: bytes, length: int | None = None) -> None:
        if len(buf) < 16:
            buf = buf + b"\0" * 16
        self.buf = buf
        self.length = len(buf) if length is None else length
        self.a: npt.NDArray[np.uint8] = np.frombuffer(buf, dtype=np.uint8)
        self.maxpos = len(buf) - 8
        self.u: U64 = np.ndarray(
            shape=(len(buf) - 7,), dtype="<u8", buffer=buf, offset=0, strides=(1,)
        )

    @classmethod
    def of(cls, data: bytes) -> Scan:
        """A scan over a copy of ``data`` with zero padding added."""
        return cls(data + b"\0" * 64, len(data))

    def _clamp(self, pos: I64) -> I64:
        if pos.size and int(pos.max()) > self.maxpos:
            return np.clip(pos, 0, self.maxpos)
        return pos

    # -- lines -------------------------------------------------------------------------

    def lines(self, begin: int, end: int) -> tuple[I64, I64]:
        """Start and end (exclusive, the ``\\n`` position) of every line in ``[begin, end)``.

        A last line without ``\\n`` ends at ``end``.
        """
        if end <= begin:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        nl = self.positions(10, begin, end)
        if nl.size == 0 or nl[-1] != end - 1:
            nl = np.append(nl, np.int64(end))
        starts = np.empty_like(nl)
        starts[0] = begin
        starts[1:] = nl[:-1] + 1
        return starts, nl

    def positions(self, byte: int, begin: int, end: int) -> I64:
        """Sorted positions of ``byte`` in ``[begin, end)``."""
        # in cache-sized chunks: one mask the size of a big section costs more in page
        # faults and memory traffic than the comparison itself
        parts: list[I64] = []
        mask = np.empty(min(max(end - begin, 0), _CHUNK), dtype=np.bool_)
        for at in range(begin, end, _CHUNK):
            stop = min(at + _CHUNK, end)
            m = mask[: stop - at]
            np.equal(self.a[at:stop], byte, out=m)
            found = np.flatnonzero(m)
            if found.size:
                parts.append(found + at)
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(parts).astype(np.int64, copy=False)

    # -- fixed reads ---------------------------------------------------------------------

    def byte(self, pos: I64) -> npt.NDArray[np.uint8]:
        if pos.size and int(pos.max()) >= self.a.size:
            pos = np.clip(pos, 0, self.a.size - 1)
        return self.a[pos]

    def win(self, pos: I64) -> U64:
        """The 8 bytes at each position, as little-endian ``uint64`` (positions past the
        buffer read its last 8 bytes)."""
        return self.u[self._clamp(pos)]

    def eq(self, pos: I64, text: bytes) -> Bool:
        """Whether ``text`` (any length) is found at each position."""
        out = np.ones(pos.shape, dtype=np.bool_)
        for k in range(0, len(text), 8):
            value, mask = literal(text[k : k + 8])
            out &= (self.win(pos + k) & mask) == value
        return out

    def dec(self, pos: I64, limit: I64 | None = None) -> tuple[I64, I64]:
        """Decimal number starting at each position: ``(value, ndigits)``.

        ``ndigits`` counts consecutive ASCII digits (0 when none), capped at 24; the value is
        only meaningful when ``1 <= ndigits <= MAX_DIGITS`` (else 0). ``limit`` (exclusive end
        per position) stops digit runs early, e.g. at the end of the line.
        """
        value = np.zeros(pos.shape, dtype=np.int64)
        ndig = np.zeros(pos.shape, dtype=np.int64)
        if pos.size == 0:
            return value, ndig
        x = self.win(pos) ^ _X30
        n = _lowest_nondigit(x)
        if limit is not None:
            n = np.minimum(n, np.maximum(limit - pos, 0))
        value = _swar8(x, n).astype(np.int64)
        ndig = n.copy()
        more = np.flatnonzero(n == 8)
        for step in (8, 16):
            if more.size == 0:
                break
            p = pos[more] + step
            x2 = self.win(p) ^ _X30
            n2 = _lowest_nondigit(x2)
            if limit is not None:
                n2 = np.minimum(n2, np.maximum(limit[more] - p, 0))
            v2 = _swar8(x2, n2).astype(np.int64)
            ok = ndig[more] + n2 <= MAX_DIGITS
            ok_idx = more[ok]
            value[ok_idx] = value[ok_idx] * _POW10[n2[ok]] + v2[ok]
            ndig[more] += n2
            more = more[n2 == 8]
        value[ndig > MAX_DIGITS] = 0
        return value, ndig

    def span_is_dec(self, begin: I64, end: I64) -> tuple[I64, Bool]:
        """Parse ``[begin, end)`` as a whole decimal number: ``(value, ok)``."""
        value, n = self.dec(begin, end)
        ok = (n == end - begin) & (n >= 1) & (n <= MAX_DIGITS)
        return np.where(ok, value, 0), ok

    # -- to Python -----------------------------------------------------------------------

    def slices(self, begin: I64, end: I64) -> list[bytes]:
        buf = self.buf
        return [buf[b:e] for b, e in zip(begin.tolist(), end.tolist(), strict=True)]


def decode(raw: bytes) -> str:
    """Display form of kernel text: UTF-8, invalid bytes as ``\\xNN``."""
    return raw.decode("utf-8", "backslashreplace")


class ProcPaths:
    """Vectorised parse of ``/proc/<pid>[/task/<tid>]/`` at the start of each position."""

    __slots__ = ("ok", "pid", "rest", "tid")

    def __init__(self, ok: Bool, pid: I64, tid: I64, rest: I64) -> None:
        self.ok = ok
        self.pid = pid
        self.tid = tid  # -1 when the path has no task part
        self.rest = rest  # position after the "/" that ends the pid (or tid) part


def proc_paths(scan: Scan, start: I64, limit: I64) -> ProcPaths:
    ok = scan.eq(start, b"/proc/")
    pid, npid = scan.dec(start + 6, limit)
    ok &= (npid >= 1) & (npid <= 9)
    q = start + 6 + npid
    ok &= scan.byte(q) == 0x2F  # "/"
    tid = np.full(start.shape, -1, dtype=np.int64)
    is_task = ok & scan.eq(q, b"/task/")
    idx = np.flatnonzero(is_task)
    if idx.size:
        t, nt = scan.dec(q[idx] + 6, limit[idx])
        good = (nt >= 1) & (nt <= 9) & (scan.byte(q[idx] + 6 + nt) == 0x2F)
        tid[idx[good]] = t[good]
        q[idx[good]] += 6 + nt[good]
        ok[idx[~good]] = False
    return ProcPaths(ok, pid, tid, q + 1)


def nullable(values: npt.NDArray[np.integer], missing: Bool, dtype: str = "Int64") -> object:
    """A pandas nullable integer array (``Int64``/``Int32``) from values and a missing mask."""
    import pandas as pd

    vals: npt.NDArray[np.integer] = np.where(missing, 0, values).astype(
        np.int64 if dtype == "Int64" else np.int32
    )
    return pd.arrays.IntegerArray(vals, missing.astype(np.bool_, copy=True))


def ndigits(scan: Scan, pos: I64) -> I64:
    """Number of consecutive ASCII digits at each position, within one 8-byte window (0..8)."""
    return _lowest_nondigit(scan.win(pos) ^ _X30)


def first_byte(scan: Scan, pos: I64, width: int, byte: int, equal: bool = True) -> I64:
    """Offset (from ``pos``) of the first byte ``== byte`` (``!= byte`` when ``equal`` is
    False) within ``width`` bytes; ``width`` when there is none. For short searches on
    moderate numbers of positions (a ``len(pos) x width`` matrix)."""
    if pos.size == 0:
        return np.zeros(0, dtype=np.int64)
    idx = pos[:, None] + np.arange(width, dtype=np.int64)[None, :]
    mat = scan.a[np.minimum(idx, scan.a.size - 1)]
    hit = (mat == byte) if equal else (mat != byte)
    any_hit = hit.any(axis=1)
    return np.where(any_hit, hit.argmax(axis=1), width).astype(np.int64)


_HEXVAL = np.full(256, 255, dtype=np.uint8)
for _c in range(10):
    _HEXVAL[48 + _c] = _c
for _c in range(6):
    _HEXVAL[97 + _c] = 10 + _c
    _HEXVAL[65 + _c] = 10 + _c


_L0F = np.uint64(0x0F0F0F0F0F0F0F0F)
_L01 = np.uint64(0x0101010101010101)
_L70 = np.uint64(0x7070707070707070)
_L76 = np.uint64(0x7676767676767676)
_L7F = np.uint64(0x7F7F7F7F7F7F7F7F)
_L30 = np.uint64(0x3030303030303030)
_L27 = np.uint64(0x27)


def _hex8(x: U64) -> tuple[U64, I64]:
    """Lower-case hex digits at the start of each window: (value of the run, its length
    0..8). Upper-case digits end the run (the kernel prints lower case)."""
    v = (x & _L0F) + ((x >> np.uint64(6)) & _L01) * np.uint64(9)  # nibble if x is hex
    big = (v + _L76) & _H80  # nibble >= 10: a letter
    expected = v + _L30 + (big >> np.uint64(7)) * _L27  # the character that nibble prints as
    z = expected ^ x
    nonzero = (((z & _L7F) + _L7F) | z) & _H80
    bad = nonzero | ((v + _L70) & _H80)  # wrong character, or not a nibble (> 15)
    low = bad & (~bad + np.uint64(1))
    if hasattr(np, "bitwise_count"):
        n = np.bitwise_count(low - np.uint64(1)).astype(np.int64) // 8
    else:  # numpy < 2.0
        n = (
            np.where(low == 0, 64, np.log2(np.maximum(low, 1).astype(np.float64)).astype(np.int64))
            // 8
        )
    nu = n.astype(np.uint64)
    full = n >= 8
    keep = np.where(full, _ONES, (np.uint64(1) << (np.uint64(8) * nu)) - np.uint64(1))
    y = (v & keep) << np.where(full, np.uint64(0), np.uint64(8) * (np.uint64(8) - nu))
    y = np.where(n == 0, np.uint64(0), y)
    y = ((y & _L0F) * np.uint64(4097)) >> np.uint64(8)
    y = ((y & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(16777217)) >> np.uint64(16)
    y = ((y & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(281474976710657)) >> np.uint64(32)
    value: U64 = (y & np.uint64(0xFFFFFFFF)).astype(np.uint64)
    return value, n.astype(np.int64)


def hexnum(scan: Scan, pos: I64, width: int = 16) -> tuple[I64, I64]:
    """Lower-case hex number at each position: ``(value, ndigits)``; ``ndigits`` is 17 when
    the run is longer than 16 digits or the value does not fit in int64 (value 0)."""
    if pos.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    v1, n1 = _hex8(scan.win(pos))
    value = v1.copy()
    n = n1.copy()
    more = np.flatnonzero(n1 == 8)
    if more.size:
        v2, n2 = _hex8(scan.win(pos[more] + 8))
        value[more] = (v1[more] << (np.uint64(4) * n2.astype(np.uint64))) | v2
        n[more] = 8 + n2
        full = more[n2 == 8]
        if full.size:
            _, n3 = _hex8(scan.win(pos[full] + 16))
            n[full[n3 > 0]] = 17
    ok = (n <= min(width, 16)) & (value < np.uint64(1 << 63))
    n = np.where(ok, n, 17)
    return np.where(ok, value, np.uint64(0)).astype(np.int64), n


def factorize_ranges(scan: Scan, begin: I64, end: I64, width: int = 32) -> tuple[I64, list[bytes]]:
    """Codes and distinct byte strings (in sorted byte order) of the ranges ``[begin, end)``.

    Ranges of up to ``width`` bytes (a multiple of 8) become rows of big-endian ``uint64``
    words, zero padded, plus the length: one ``lexsort`` of those columns orders them exactly
    as the bytes compare, and equal neighbours share a code. Longer ones are handled in
    Python."""
    n = begin.size
    codes = np.full(n, -1, dtype=np.int64)
    values: list[bytes] = []
    if n == 0:
        return codes, values
    length = end - begin
    short = np.flatnonzero((length >= 0) & (length <= width))
    if short.size:
        sb, sl = begin[short], length[short]
        words: list[U64] = []
        for k in range(0, width, 8):
            valid = np.clip(sl - k, 0, 8).astype(np.uint64)
            mask = np.where(
                valid >= 8, _ONES, (np.uint64(1) << (np.uint64(8) * valid)) - np.uint64(1)
            )
            words.append((scan.win(sb + k) & mask).byteswap())
        # lexsort: the last key is the primary one
        order = np.lexsort((sl, *reversed(words)))
        new = np.empty(short.size, dtype=np.bool_)
        new[0] = True
        new[1:] = sl[order][1:] != sl[order][:-1]
        for w in words:
            ws = w[order]
            new[1:] |= ws[1:] != ws[:-1]
        inv = np.empty(short.size, dtype=np.int64)
        inv[order] = np.cumsum(new) - 1
        reps = short[order[new]]
        values = scan.slices(begin[reps], end[reps])
        codes[short] = inv
    if short.size < n:
        index = {v: i for i, v in enumerate(values)}
        is_short = np.zeros(n, dtype=np.bool_)
        is_short[short] = True
        rest = np.flatnonzero(~is_short)
        for i, raw in zip(rest.tolist(), scan.slices(begin[rest], end[rest]), strict=True):
            c = index.get(raw)
            if c is None:
                c = len(values)
                index[raw] = c
                values.append(raw)
            codes[i] = c
    return codes, values


def dec_before(scan: Scan, end: I64) -> tuple[I64, I64]:
    """Decimal digits immediately before each ``end`` (exclusive), at most 8:
    ``(value, ndigits)``; ``ndigits`` is 8 when there may be more."""
    if end.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    x = scan.win(end - 8) ^ _X30
    m = (((x & _M7) + _C76) | x) & _H80  # 0x80 in every byte that is not a digit
    # index of the highest set bit; exact through float64 (the dropped low bits are < half
    # an ulp because only bits 7, 15, ..., 63 can be set)
    _, exp = np.frexp(np.maximum(m, 1).astype(np.float64))
    top_byte = (exp.astype(np.int64) - 1) // 8
    n = np.where(m == 0, 8, 7 - top_byte).astype(np.int64)
    shift = np.uint64(8) * (np.uint64(8) - n.astype(np.uint64))
    y = np.where(n == 0, np.uint64(0), x >> np.minimum(shift, np.uint64(63)))
    return _swar8(y, n).astype(np.int64), n


def uniq(x: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Sorted distinct values (sort based: numpy 2's hash-based ``np.unique`` is slow on
    large integer arrays)."""
    if x.size == 0:
        return x.copy()
    y = np.sort(x)
    keep = np.empty(y.size, dtype=np.bool_)
    keep[0] = True
    keep[1:] = y[1:] != y[:-1]
    return y[keep]


def uniq_counts(x: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Sorted distinct values and how often each occurs."""
    if x.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return x.copy(), z
    y = np.sort(x)
    starts = np.flatnonzero(np.r_[True, y[1:] != y[:-1]])
    return y[starts], np.diff(np.append(starts, y.size))


def sort_order(x: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """A stable sort order of ``x``. When the values and the row numbers fit together in 63
    bits, one plain sort of the packed ``value << bits | row`` does it (much faster than a
    stable argsort of int64 in numpy)."""
    n = x.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    bits = max(1, int(n - 1).bit_length())
    lo, hi = int(x.min()), int(x.max())
    if lo >= 0 and hi < (1 << (63 - bits)):
        packed = np.sort((x << bits) | np.arange(n, dtype=np.int64))
        return packed & ((1 << bits) - 1)
    return np.argsort(x, kind="stable").astype(np.int64)


def uniq_index(
    x: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Sorted distinct values, the index of the first occurrence of each, and the inverse
    (index into the distinct values for every element)."""
    if x.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return x.copy(), z, z
    order = sort_order(x)
    y = x[order]
    new = np.empty(y.size, dtype=np.bool_)
    new[0] = True
    new[1:] = y[1:] != y[:-1]
    starts = np.flatnonzero(new)
    inv = np.empty(x.size, dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    return y[starts], order[starts], inv


def isin(x: npt.NDArray[np.int64], values: npt.NDArray[np.int64]) -> Bool:
    """``np.isin`` through a sorted table and ``searchsorted``."""
    return lookup(x, uniq(values))[1]


def objects(series: object) -> npt.NDArray[np.object_]:
    """A Series' values as Python objects, missing values as None."""
    import pandas as pd

    assert isinstance(series, pd.Series)
    out = np.array(series.astype(object).to_numpy(dtype=object), dtype=object, copy=True)
    out[series.isna().to_numpy()] = None
    return out


#: Keys below this use a dense index table in :func:`lookup` (4 Mi entries, 32 MiB).
DENSE_LIMIT = 1 << 22


def lookup(
    keys: npt.NDArray[np.int64], table: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], Bool]:
    """Row of the sorted, distinct ``table`` holding each key, and whether it was found.

    Small non-negative keys (pids, dma-buf inodes) go through a dense index table (one
    gather); others through ``searchsorted``."""
    if table.size == 0 or keys.size == 0:
        return np.zeros(keys.shape, np.int64), np.zeros(keys.shape, np.bool_)
    tmax = int(table[-1])
    if int(table[0]) >= 0 and tmax < DENSE_LIMIT:
        dense = np.full(tmax + 1, -1, dtype=np.int64)
        dense[table] = np.arange(table.size, dtype=np.int64)
        inside = (keys >= 0) & (keys <= tmax)
        row = np.where(inside, dense[np.where(inside, keys, 0)], -1)
        found = row >= 0
        return np.maximum(row, 0), found
    j = np.minimum(np.searchsorted(table, keys), table.size - 1)
    return j, table[j] == keys


def skip_byte(scan: Scan, pos: I64, byte: int, limit: int = 128) -> I64:
    """Number of consecutive ``byte`` at each position (at most ``limit``, in 8-byte
    windows)."""
    pat = np.uint64(int.from_bytes(bytes([byte]) * 8, "little"))
    count = np.zeros(pos.size, dtype=np.int64)
    todo = np.arange(pos.size)
    step = 0
    while todo.size and step < limit:
        z = scan.win(pos[todo] + step) ^ pat
        nz = (((z & _L7F) + _L7F) | z) & _H80
        low = nz & (~nz + np.uint64(1))
        if hasattr(np, "bitwise_count"):
            k = np.bitwise_count(low - np.uint64(1)).astype(np.int64) // 8
        else:  # numpy < 2.0
            k = (
                np.where(
                    low == 0, 64, np.log2(np.maximum(low, 1).astype(np.float64)).astype(np.int64)
                )
                // 8
            )
        count[todo] += k
        todo = todo[k == 8]
        step += 8
    return np.minimum(count, limit)
