"""The ``inventory`` (global per-buffer sources) and ``buffers`` (one row per inode) tables.

Per column, the first source that knows the value wins, in this order: fd references
(fdinfo, then ``stat -L``), BPF iterator, sysfs, debugfs bufinfo, mappings (a buffer only
known from maps gets the length of its largest mapping as an *estimated* size, like AOSP's
fallback; AOSP takes the first mapping seen, the largest is deterministic and never smaller).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import I64, nullable, objects, sort_order, uniq
from dmaprof.analyze.bufinfo import Bufinfo
from dmaprof.analyze.schema import ATTACHMENTS, BUFFERS, INVENTORY

_SOURCES = ("fdinfo", "fdstat", "maps", "bpf", "sysfs", "debugfs")  # bitmask order


def build_inventory(
    sysfs: pd.DataFrame, bpf: pd.DataFrame, bufinfo: Bufinfo | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inventory, attachments) tables."""
    parts: list[pd.DataFrame] = []
    if len(bpf):
        parts.append(
            INVENTORY.frame(
                {
                    "source": pd.Categorical.from_codes(np.zeros(len(bpf), np.int8), _cats("bpf")),
                    "inode": bpf["inode"].to_numpy(dtype=np.int64),
                    "size_bytes": bpf["size_bytes"].array,
                    "exporter": bpf["exporter"].array,
                    "name": bpf["name"].array,
                }
            )
        )
    if len(sysfs):
        parts.append(
            INVENTORY.frame(
                {
                    "source": pd.Categorical.from_codes(
                        np.zeros(len(sysfs), np.int8), _cats("sysfs")
                    ),
                    "inode": sysfs["inode"].to_numpy(dtype=np.int64),
                    "size_bytes": sysfs["size_bytes"].array,
                    "exporter": sysfs["exporter"].array,
                    "attachments": sysfs["attachments"].array,
                }
            )
        )
    att_rows: list[tuple[int | None, int, str]] = []
    if bufinfo is not None and bufinfo.records:
        recs = bufinfo.records
        parts.append(
            INVENTORY.frame(
                {
                    "source": pd.Categorical.from_codes(
                        np.zeros(len(recs), np.int8), _cats("debugfs")
                    ),
                    "inode": pd.array([r.inode for r in recs], dtype="Int64"),
                    "size_bytes": pd.array([r.size for r in recs], dtype="Int64"),
                    "exporter": [r.exporter for r in recs],
                    "name": [r.name for r in recs],
                    "count": pd.array([r.count for r in recs], dtype="Int64"),
                    "flags": pd.array([r.flags for r in recs], dtype="Int64"),
                    "mode": pd.array([r.mode for r in recs], dtype="Int64"),
                    "attachments": pd.array([len(r.devices) for r in recs], dtype="Int64"),
                    "fences": pd.array([len(r.fences) for r in recs], dtype="Int64"),
                    "extra": [r.extra for r in recs],
                }
            )
        )
        att_rows.extend((r.inode, k, dev) for k, r in enumerate(recs) for dev in r.devices)
    if parts:
        for part in parts:
            part["source"] = part["source"].cat.set_categories(["sysfs", "bpf", "debugfs"])
        inv = INVENTORY.frame(pd.concat(parts, ignore_index=True))
    else:
        inv = INVENTORY.empty()
    if att_rows:
        ino, rec, dev = zip(*att_rows, strict=True)
        att = ATTACHMENTS.frame(
            {
                "inode": pd.array(list(ino), dtype="Int64"),
                "record": np.array(rec, np.int64),
                "device": list(dev),
            }
        )
    else:
        att = ATTACHMENTS.empty()
    return inv, att


def _cats(*names: str) -> pd.Index:
    return pd.Index(list(names), dtype="str")


_SIZE_SOURCES = ["fdinfo", "fdstat", "bpf", "sysfs", "debugfs", "vma_estimate", "unknown"]


class _Groups:
    """Rows grouped by inode with one stable sort, for "first valid value per inode"."""

    def __init__(self, ino: I64) -> None:
        self.order = sort_order(ino)
        si = ino[self.order]
        self.sorted_ino = si
        new = np.empty(si.size, dtype=np.bool_)
        if si.size:
            new[0] = True
            new[1:] = si[1:] != si[:-1]
        self.gid = np.cumsum(new) - 1

    def first(self, valid: np.ndarray) -> tuple[I64, I64]:
        """(inodes, row index of their first valid row)."""
        idx = np.flatnonzero(valid[self.order])
        if not idx.size:
            z = np.zeros(0, dtype=np.int64)
            return z, z
        g = self.gid[idx]
        keep = np.empty(idx.size, dtype=np.bool_)
        keep[0] = True
        keep[1:] = g[1:] != g[:-1]
        rows = self.order[idx[keep]]
        return self.sorted_ino[idx[keep]], rows


def _first_valid(
    ino: I64, valid: np.ndarray, values: np.ndarray, groups: _Groups | None = None
) -> tuple[I64, np.ndarray]:
    """Per distinct inode among the valid rows: the value of its first valid row."""
    g = groups if groups is not None else _Groups(ino)
    u, rows = g.first(valid)
    return u, values[rows]


def _ints(s: pd.Series) -> I64:
    return s.to_numpy(dtype=np.int64, na_value=-1)


def _strs(s: pd.Series) -> np.ndarray:
    return s.astype("object").where(s.notna(), None).to_numpy(dtype=object)


class _Column:
    """A per-inode column filled source by source, first source first."""

    def __init__(self, inodes: I64, fill: int | None, dtype: type) -> None:
        self.inodes = inodes
        self.vals: np.ndarray = np.empty(inodes.size, dtype=dtype)
        self.vals[:] = fill
        self.known = np.zeros(inodes.size, dtype=np.bool_)
        self.source = np.full(inodes.size, -1, dtype=np.int64)

    def offer(
        self,
        ino: I64,
        values: np.ndarray,
        valid: np.ndarray,
        source: int = -1,
        groups: _Groups | None = None,
    ) -> None:
        u, v = _first_valid(ino, valid, values, groups)
        if not u.size:
            return
        pos = np.searchsorted(self.inodes, u)
        take = ~self.known[pos]
        self.vals[pos[take]] = v[take]
        self.known[pos[take]] = True
        self.source[pos[take]] = source


def build_buffers(
    refs: pd.DataFrame, inventory: pd.DataFrame, attachments: pd.DataFrame
) -> pd.DataFrame:
    """One row per inode known from any source (see the module docstring)."""
    kind_fd = (refs["kind"] == "fd").to_numpy()
    r_ino = _ints(refs["inode"])
    fd_rows = np.flatnonzero(kind_fd & (r_ino >= 0))
    map_rows = np.flatnonzero(~kind_fd & (r_ino >= 0))
    inv_src = objects(inventory["source"])
    inv_ino = _ints(inventory["inode"])
    parts = {
        src: np.flatnonzero((inv_src == src) & (inv_ino >= 0))
        for src in ("bpf", "sysfs", "debugfs")
    }
    all_ino = np.concatenate(
        [r_ino[fd_rows], r_ino[map_rows]] + [inv_ino[p] for p in parts.values()]
    )
    inodes = uniq(all_ino)
    if inodes.size == 0:
        return BUFFERS.empty()
    columns = _BufferColumns(inodes)
    # 1. fd references (fdinfo, else stat -L)
    if fd_rows.size:
        columns.offer_fds(refs, r_ino[fd_rows], fd_rows)
    # 2-4. the global inventory
    for bit, (src, rows) in zip((3, 4, 5), parts.items(), strict=True):
        if rows.size:
            columns.offer_inventory(inventory, inv_ino[rows], rows, src, bit)
    # 5. mappings: the largest VMA of a buffer no other source sizes
    if map_rows.size:
        columns.offer_maps(refs, r_ino[map_rows], map_rows)
    return columns.frame(_attached_devices(attachments, inodes))


class _BufferColumns:
    """The columns of the ``buffers`` table, offered source by source (first one wins)."""

    def __init__(self, inodes: I64) -> None:
        self.inodes = inodes
        self.size = _Column(inodes, -1, np.int64)
        self.exporter = _Column(inodes, None, object)
        self.name = _Column(inodes, None, object)
        self.count = _Column(inodes, -1, np.int64)
        self.attach = _Column(inodes, -1, np.int64)
        self.present = np.zeros(inodes.size, dtype=np.int64)  # bitmask of sources

    def mark(self, ino: I64, bit: int) -> None:
        if ino.size:
            self.present[np.searchsorted(self.inodes, uniq(ino))] |= 1 << bit

    def offer_fds(self, refs: pd.DataFrame, fi: I64, fd_rows: I64) -> None:
        fsize = _ints(refs["size_bytes"])[fd_rows]
        is_stat = (refs["size_source"] == "fdstat").to_numpy()[fd_rows]
        gr = _Groups(fi)
        self.size.offer(fi, fsize, (fsize >= 0) & ~is_stat, 0, gr)
        self.size.offer(fi, fsize, (fsize >= 0) & is_stat, 1, gr)
        ecat = refs["exporter"].array
        ncat = refs["name"].array
        ecodes = np.asarray(ecat.codes)[fd_rows]
        ncodes = np.asarray(ncat.codes)[fd_rows]
        ecats = np.asarray(ecat.categories, dtype=object)
        ncats = np.asarray(ncat.categories, dtype=object)
        u, c = _first_valid(fi, ecodes >= 0, ecodes, gr)
        self.exporter.offer(u, ecats[c], np.ones(u.size, np.bool_))
        u, c = _first_valid(fi, ncodes >= 0, ncodes, gr)
        self.name.offer(u, ncats[c], np.ones(u.size, np.bool_))
        fcount = _ints(refs["count"])[fd_rows]
        self.count.offer(fi, fcount, fcount >= 0, -1, gr)
        self.mark(fi[~is_stat], 0)
        self.mark(fi[is_stat], 1)

    def offer_inventory(
        self, inventory: pd.DataFrame, ii: I64, rows: I64, src: str, bit: int
    ) -> None:
        isz = _ints(inventory["size_bytes"])[rows]
        self.size.offer(ii, isz, isz >= 0, {"bpf": 2, "sysfs": 3, "debugfs": 4}[src])
        iexp = _strs(inventory["exporter"])[rows]
        self.exporter.offer(ii, iexp, iexp != None)  # noqa: E711 - elementwise
        inam = _strs(inventory["name"])[rows]
        self.name.offer(ii, inam, inam != None)  # noqa: E711
        icnt = _ints(inventory["count"])[rows]
        self.count.offer(ii, icnt, icnt >= 0)
        iat = _ints(inventory["attachments"])[rows]
        self.attach.offer(ii, iat, iat >= 0)
        self.mark(ii, bit)

    def offer_maps(self, refs: pd.DataFrame, mi: I64, map_rows: I64) -> None:
        mb = _ints(refs["mapped_bytes"])[map_rows]
        order = np.lexsort((-mb, mi))
        self.size.offer(mi[order], mb[order], np.ones(order.size, np.bool_), 5)
        mcat = refs["name"].array
        mcodes = np.asarray(mcat.codes)[map_rows]
        u, c = _first_valid(mi, mcodes >= 0, mcodes)
        self.name.offer(u, np.asarray(mcat.categories, dtype=object)[c], np.ones(u.size, np.bool_))
        self.mark(mi, 2)

    def frame(self, devices: list[tuple[str, ...]]) -> pd.DataFrame:
        present = self.present
        labels = {
            m: "+".join(lbl for b, lbl in enumerate(_SOURCES) if m >> b & 1)
            for m in uniq(present).tolist()
        }
        sources = [labels[m] for m in present.tolist()]
        in_inv = (present & ((1 << 3) | (1 << 4) | (1 << 5))) != 0
        size = self.size
        ssrc = np.where(size.known, size.source, 6)
        svals = np.where(size.known, size.vals, 0)
        count, attach = self.count.vals, self.attach.vals
        return BUFFERS.frame(
            {
                "inode": self.inodes,
                "size_bytes": svals,
                "size_source": pd.Categorical.from_codes(ssrc, categories=_cats(*_SIZE_SOURCES)),
                "size_estimated": ssrc == 5,
                "exporter": self.exporter.vals,
                "name": self.name.vals,
                "count": nullable(count, count < 0),
                "attached_devices": devices,
                "attachments": nullable(attach, attach < 0),
                "in_inventory": in_inv,
                "sources": sources,
            }
        )


def _attached_devices(attachments: pd.DataFrame, inodes: I64) -> list[tuple[str, ...]]:
    """The devices attached to each buffer (debugfs ``Attached Devices:``), per inode."""
    devices: dict[int, tuple[str, ...]] = {}
    att = attachments[attachments["inode"].notna()]
    if len(att):
        for ino, grp in att.groupby("inode", sort=False)["device"]:
            devices[int(str(ino))] = tuple(str(x) for x in grp.tolist())
    empty: tuple[str, ...] = ()
    if not devices:
        return [empty] * inodes.size
    return [devices.get(i, empty) for i in inodes.tolist()]
