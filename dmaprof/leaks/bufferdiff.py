"""Buffers of one boot compared by identity ``(inode, size, exporter)``: new, freed and kept
buffers, and the id each buffer gets so that holdings can be compared (module
:mod:`dmaprof.leaks.diff` has the rules)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from dmaprof.leaks.frames import holder_lists, stable_sort
from dmaprof.leaks.side import Side

I64 = npt.NDArray[np.int64]


@dataclass
class BufferDiff:
    new: pd.DataFrame
    freed: pd.DataFrame
    kept: dict[str, int]
    before_bid: I64  # per BEFORE buffers row: its buffer id (its row number)
    after_bid: I64  # per AFTER buffers row: the BEFORE id when kept, else n_before + row
    n_before: int

    @classmethod
    def empty(cls, before: Side, after: Side) -> BufferDiff:
        cols = ["inode", "size", "exporter", "name", "name_key", "held", "holders"]
        return cls(
            pd.DataFrame({c: [] for c in cols}),
            pd.DataFrame({c: [] for c in cols}),
            {"buffers": 0, "bytes": 0, "moved": 0},
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            0,
        )


_BUFFER_KEY = ["inode", "size", "exporter"]


def buffer_diff(before: Side, after: Side) -> BufferDiff:
    bb, ba = before.buffers, after.buffers
    nb, na = len(bb), len(ba)
    m = (
        bb[_BUFFER_KEY]
        .assign(ib=np.arange(nb))
        .merge(
            ba[_BUFFER_KEY].assign(ia=np.arange(na)),
            on=_BUFFER_KEY,
            how="outer",
            indicator=True,
        )
    )
    both = (m["_merge"] == "both").to_numpy()
    ib = m["ib"].to_numpy(dtype=np.float64)
    ia = m["ia"].to_numpy(dtype=np.float64)
    kept_b = ib[both].astype(np.int64)
    kept_a = ia[both].astype(np.int64)
    after_bid = np.arange(na, dtype=np.int64) + nb
    after_bid[kept_a] = kept_b
    is_new = after_bid >= nb
    is_freed = np.ones(nb, dtype=bool)
    is_freed[kept_b] = False

    hb, ha = before.holdings, after.holdings
    hb_bid = pd.Index(bb["inode"]).get_indexer(hb["inode"]).astype(np.int64)
    ha_row = pd.Index(ba["inode"]).get_indexer(ha["inode"]).astype(np.int64)
    ha_bid = np.where(ha_row >= 0, after_bid[np.maximum(ha_row, 0)], -1)

    new = ba[is_new].reset_index(drop=True)
    new = new.assign(
        holders=pd.Series(
            holder_lists(after_bid[is_new], ha_bid, ha["pid"].to_numpy(dtype=np.int64)),
            dtype=object,
        )
    )
    freed = bb[is_freed].reset_index(drop=True)
    freed = freed.assign(
        holders=pd.Series(
            holder_lists(
                np.flatnonzero(is_freed).astype(np.int64),
                hb_bid,
                hb["pid"].to_numpy(dtype=np.int64),
            ),
            dtype=object,
        )
    )
    kept_sizes = bb["size"].to_numpy(dtype=np.int64)[kept_b]
    return BufferDiff(
        new=stable_sort(new, [("size", True), ("inode", False)]),
        freed=stable_sort(freed, [("size", True), ("inode", False)]),
        kept={"buffers": int(kept_b.size), "bytes": int(kept_sizes.sum()), "moved": 0},
        before_bid=np.arange(nb, dtype=np.int64),
        after_bid=after_bid,
        n_before=nb,
    )
