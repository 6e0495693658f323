"""The ``references`` table: the fd part and the map part of every process's references."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from dmaprof.analyze._scan import nullable
from dmaprof.analyze.schema import REFERENCES


def references_table(fd: pd.DataFrame, mp: pd.DataFrame) -> pd.DataFrame:
    """The fd part and the map part as one REFERENCES table (numpy concatenation)."""
    n_fd, n_mp = len(fd), len(mp)
    n = n_fd + n_mp

    def ints(frame: pd.DataFrame, col: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
        if rows == 0 or col not in frame:
            return np.zeros(rows, np.int64), np.ones(rows, np.bool_)
        s = frame[col]
        return s.to_numpy(dtype=np.int64, na_value=0), s.isna().to_numpy()

    def both(col: str, dtype: str = "Int64") -> Any:
        v1, m1 = ints(fd, col, n_fd)
        v2, m2 = ints(mp, col, n_mp)
        return nullable(np.concatenate([v1, v2]), np.concatenate([m1, m2]), dtype)

    def cats(col: str) -> pd.Categorical:
        parts = []
        for frame, rows in ((fd, n_fd), (mp, n_mp)):
            if rows and col in frame:
                c = frame[col].array
                if not isinstance(c, pd.Categorical):
                    c = pd.Categorical(frame[col])
                parts.append(c.set_categories(c.categories.astype("str")))
            elif rows:
                parts.append(
                    pd.Categorical.from_codes(
                        np.full(rows, -1, np.int8), categories=pd.Index([], dtype="str")
                    )
                )
        if not parts:
            return pd.Categorical([])
        return union_categoricals(parts) if len(parts) > 1 else parts[0]

    z_fd = np.zeros(n_fd, np.int64)
    z_mp = np.zeros(n_mp, np.int64)
    target = np.concatenate(
        [
            fd["target"].to_numpy(dtype=np.int64) if n_fd else z_fd,
            mp["target"].to_numpy(dtype=np.int64) if n_mp else z_mp,
        ]
    )
    return REFERENCES.frame(
        {
            "pid": np.concatenate(
                [
                    fd["pid"].to_numpy(dtype=np.int32) if n_fd else z_fd,
                    mp["pid"].to_numpy(dtype=np.int32) if n_mp else z_mp,
                ]
            ).astype(np.int32),
            "tid": both("tid", "Int32"),
            "kind": pd.Categorical.from_codes(
                np.concatenate([np.zeros(n_fd, np.int8), np.ones(n_mp, np.int8)]),
                categories=pd.Index(["fd", "map"], dtype="str"),
            ),
            "inode": both("inode"),
            "target": pd.Categorical.from_codes(
                target.astype(np.int8), categories=pd.Index(["dmabuf", "anon"], dtype="str")
            ),
            "fd": both("fd", "Int32"),
            "vma_start": both("vma_start"),
            "vma_end": both("vma_end"),
            "vma_offset": both("vma_offset"),
            "mapped_bytes": both("mapped_bytes"),
            "size_bytes": both("size_bytes"),
            "size_source": cats("size_source"),
            "count": both("count"),
            "exporter": cats("exporter"),
            "name": cats("name"),
        },
        length=n,
    )
