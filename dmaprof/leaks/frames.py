"""Two sides' keyed tables merged into BEFORE, AFTER and delta columns, and the vectorised
helpers the diffs share. A figure a side could not see stays unknown (``<NA>``), and so does
every delta and sum that needs it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from dmaprof.leaks.side import masked

I64 = npt.NDArray[np.int64]


def _side_values(
    column: pd.Series, present: npt.NDArray[np.bool_], complete: bool
) -> tuple[I64, npt.NDArray[np.bool_]]:
    """One side's figure per merged row and whether it is unknown: where the row is absent
    it is 0, unless that side's table is incomplete (then unknown)."""
    values = column.astype("Int64")
    unknown = np.where(present, values.isna().to_numpy(dtype=bool), not complete)
    ints: I64 = np.asarray(values.to_numpy(dtype=np.int64, na_value=0), dtype=np.int64)
    return ints, np.asarray(unknown, dtype=bool)


def outer(
    b: pd.DataFrame,
    a: pd.DataFrame,
    key: list[str],
    metrics: dict[str, str],
    labels: Sequence[str],
    *,
    gone: str = "gone",
    complete: tuple[bool, bool] = (True, True),
) -> pd.DataFrame:
    """Outer-merge two keyed frames; ``<metric>_before``, ``<metric>_after``, ``delta_<metric>``
    for every metric (``Int64``: unknown on a side, unknown delta), ``status``
    new/``gone``/kept and labels from AFTER (else BEFORE). ``complete``: whether a row absent
    from BEFORE / AFTER means zero (else unknown: that side's source cannot list them)."""
    m = b.merge(
        a,
        on=key,
        how="outer",
        suffixes=("_b", "_a"),
        indicator=True,
        validate="one_to_one",
        sort=False,
    )
    ind = m["_merge"].to_numpy(dtype=object)
    data: dict[str, Any] = {k: m[k].to_numpy(dtype=object) for k in key}
    # absent from a side that cannot list every key (names unseen as the shell user): unknown
    gone_or = gone if complete[1] else "unknown"
    new_or = "new" if complete[0] else "unknown"
    data["status"] = np.where(
        ind == "left_only", gone_or, np.where(ind == "right_only", new_or, "kept")
    )
    for column in labels:
        after = m[f"{column}_a"].to_numpy(dtype=object)
        before = m[f"{column}_b"].to_numpy(dtype=object)
        data[column] = np.where(ind == "left_only", before, after)
    in_b, in_a = ind != "right_only", ind != "left_only"
    for column, metric in metrics.items():
        vb, ub = _side_values(m[f"{column}_b"], in_b, complete[0])
        va, ua = _side_values(m[f"{column}_a"], in_a, complete[1])
        data[f"{metric}_before"] = masked(vb, ub)
        data[f"{metric}_after"] = masked(va, ua)
        data[f"delta_{metric}"] = masked(va - vb, ub | ua)
    return pd.DataFrame(data)


def stable_sort(df: pd.DataFrame, keys: Sequence[tuple[str, bool]]) -> pd.DataFrame:
    """Stable sort by several columns (True: descending)."""
    if len(df) == 0:
        return df.reset_index(drop=True)
    return df.sort_values(
        [k for k, _ in keys], ascending=[not d for _, d in keys], kind="stable"
    ).reset_index(drop=True)


def member(values: I64, pool: I64) -> npt.NDArray[np.bool_]:
    """``np.isin`` for int64 keys through pandas' hash table (numpy 2.4's isin is several
    times slower on a few hundred thousand keys)."""
    if pool.size == 0 or values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    return np.asarray(pd.Index(values).isin(pool), dtype=bool)


def holder_lists(wanted: I64, bids: I64, pids: I64) -> list[list[int]]:
    """For each buffer id in ``wanted``, the sorted pids holding it (holdings given as
    parallel ``bids``/``pids``). Sort + searchsorted + split: no per-row Python besides
    turning the arrays into lists."""
    if wanted.size == 0:
        return []
    keep = member(bids, wanted)
    bids, pids = bids[keep], pids[keep]
    order = np.lexsort((pids, bids))
    sb, sp = bids[order], pids[order]
    lo = np.searchsorted(sb, wanted, side="left")
    hi = np.searchsorted(sb, wanted, side="right")
    flat = sp.tolist()
    return [flat[i:j] for i, j in zip(lo.tolist(), hi.tolist(), strict=True)]


def known_sum(frame: pd.DataFrame, by: str | list[str], columns: Sequence[str]) -> pd.DataFrame:
    """Per group sums of ``Int64`` columns; ``<NA>`` where any member is unknown (a sum over
    an unknown part is unknown, not the sum of the known parts)."""
    g = frame.groupby(by, sort=False, dropna=False)
    sums = g[list(columns)].sum()
    gaps = (
        frame[list(columns)]
        .isna()
        .groupby(
            [frame[k] for k in ([by] if isinstance(by, str) else by)], sort=False, dropna=False
        )
        .any()
    )
    out = pd.DataFrame(index=sums.index)
    for column in columns:
        out[column] = masked(
            sums[column].to_numpy(dtype=np.int64, na_value=0),
            gaps[column].reindex(sums.index).to_numpy(dtype=bool),
        )
    return out


def held_something(frame: pd.DataFrame, metrics: dict[str, str]) -> pd.DataFrame:
    """Rows with a non-zero or unknown figure on either side (the rest held nothing)."""
    active = np.zeros(len(frame), dtype=bool)
    for metric in metrics.values():
        for side in ("before", "after"):
            column = frame[f"{metric}_{side}"]
            active |= (column.isna() | (column.fillna(0) != 0)).to_numpy(dtype=bool)
    return frame[active]
