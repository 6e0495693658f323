"""The growth estimators of `dmaprof trend`: Theil-Sen slopes and the Mann-Kendall test.

Why these two: see dmaprof.leaks.trend. numpy only; a series longer than ``limit`` samples is
binned to medians first, so the pairwise slopes stay cheap.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

F64 = npt.NDArray[np.float64]


def theil_sen(x: F64, y: F64) -> tuple[float, float]:
    """(slope, intercept): median pairwise slope, median residual intercept."""
    n = x.size
    if n < 2:
        return 0.0, float(y[0]) if n else 0.0
    i, j = np.triu_indices(n, 1)
    dx = x[j] - x[i]
    ok = dx != 0
    if not ok.any():
        return 0.0, float(np.median(y))
    slope = float(np.median((y[j] - y[i])[ok] / dx[ok]))
    return slope, float(np.median(y - slope * x))


def mann_kendall(x: F64, y: F64) -> tuple[int, float]:
    """(S, confidence that y increases with x): one-sided Mann–Kendall with tie correction."""
    n = x.size
    if n < 3:
        return 0, 0.5
    order = np.argsort(x, kind="stable")
    ys = y[order]
    i, j = np.triu_indices(n, 1)
    s = int(np.sign(ys[j] - ys[i]).sum())
    _, ties = np.unique(ys, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - float((ties * (ties - 1) * (2 * ties + 5)).sum())) / 18.0
    if var <= 0 or s == 0:
        return s, 0.5
    z = (s - 1) / math.sqrt(var) if s > 0 else (s + 1) / math.sqrt(var)
    return s, 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _binned(x: F64, y: F64, limit: int) -> tuple[F64, F64]:
    """At most ``limit`` points: medians of equal-count bins (keeps the trend robust)."""
    if x.size <= limit:
        return x, y
    edges = np.linspace(0, x.size, limit + 1).astype(np.int64)
    bounds = list(itertools.pairwise(edges.tolist()))
    bx = np.array([np.median(x[a:b]) for a, b in bounds])
    by = np.array([np.median(y[a:b]) for a, b in bounds])
    return bx, by


@dataclass(frozen=True)
class Fit:
    slope: float  # per minute
    intercept: float
    confidence: float
    rises: int
    falls: int

    @property
    def monotonic(self) -> bool:
        return self.falls == 0 and self.rises > 0


def fit(x_min: F64, y: F64, limit: int = 300) -> Fit:
    steps = np.diff(y)
    rises, falls = int((steps > 0).sum()), int((steps < 0).sum())
    if np.all(y == y[0]):
        return Fit(0.0, float(y[0]), 0.5, 0, 0)
    bx, by = _binned(x_min, y, limit)
    slope, intercept = theil_sen(bx, by)
    _, confidence = mann_kendall(bx, by)
    return Fit(slope, intercept, confidence, rises, falls)


def sorted_codes(column: pd.Series) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """A column's values as codes into its sorted distinct values (categorical or not)."""
    cat = column.astype("category")
    if not cat.cat.categories.is_monotonic_increasing:
        cat = cat.cat.reorder_categories(sorted(cat.cat.categories))
    codes: npt.NDArray[np.int64] = np.asarray(cat.cat.codes, dtype=np.int64)
    return codes, cat.cat.categories.to_numpy(dtype=object)
