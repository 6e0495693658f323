"""`dmaprof trend`: time series per process, app, exporter and buffer name, and leak verdicts.

Each capture of a series is analysed on its own (one at a time: host memory stays bounded)
and reduced to one row per series and sample: bytes (rss for processes and apps, the size
of the buffers for exporters and names) and buffer count.

Growth rate: the **Theil–Sen** estimator, the median of the slopes between every pair of
samples. It ignores up to ~29 % of outliers (a transient burst, a sample taken mid-frame)
where least squares would follow them. numpy only: with at most ``max_points`` samples per
series (longer series are binned to medians) the pairwise slopes are cheap.

Confidence: the one-sided **Mann–Kendall** test of a monotonic upward trend (the trend test
that pairs with Theil–Sen): ``S = Σ sign(y_j - y_i)`` over the pairs, its variance with the
tie correction, and ``confidence = Φ(z)``, the normal CDF of the continuity-corrected
``z``. A series is flagged as a **leak** when it grows (positive Theil–Sen slope) with
confidence ≥ 0.95, rose at least 3 separate times (one step up is an allocation, not a
leak), and grew by at least ``min_growth_bytes`` over the window (or by
``min_growth_buffers`` buffers: counts are more sensitive than bytes for small buffers).

Processes are identified by pid + start time (a restart starts a new series). A reboot
splits the series: trends use the samples since the last boot only. A reboot is told by the
kernel's boot id, else by the device uptime going backwards, else by
``ro.runtime.firstboot``; a sample whose boot cannot be told is kept in the current boot
(an "unknown boot", never a reboot by itself).

A figure a sample could not see (an app with an unreadable process, kernel-only bytes as the
shell user: docs/coverage.md) is no point of its series: the estimate uses the samples that
saw it, and ``unknown_points`` counts the others. One directory is one device: captures of
several devices are refused unless one is chosen (``serial=``).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from dmaprof.analyze.analysis import use_parse_thread
from dmaprof.errors import BadCaptureError, DmaprofError
from dmaprof.leaks.boots import boot_numbers, mode_warning, one_device
from dmaprof.leaks.estimators import Fit, fit, sorted_codes
from dmaprof.leaks.samplecache import ROW_COLUMNS, Columns
from dmaprof.leaks.series import SampleRef, read_series
from dmaprof.leaks.side import CaptureInfo, Side, side_from_capture
from dmaprof.timing import stage
from dmaprof.units import human_bytes, safe_text, signed_bytes

TREND_SCHEMA = "dmaprof.trend/2"
log = logging.getLogger(__name__)
F64 = npt.NDArray[np.float64]
KIND_ORDER = {"process": 0, "name": 1, "app": 2, "exporter": 3, "kernel_only": 4, "total": 5}


@dataclass(frozen=True)
class TrendPolicy:
    confidence: float = 0.95
    min_points: int = 4
    min_rises: int = 3
    min_growth_bytes: int = 1024 * 1024
    min_growth_buffers: int = 10
    max_points: int = 300


# --------------------------------------------------------------------------- points


@dataclass
class TrendResult:
    doc: dict[str, Any]
    points: pd.DataFrame  # sample, minutes, kind, key, label, bytes, buffers (last boot only)
    #: each sample's identity (``points["sample"]`` indexes it; every boot)
    infos: list[CaptureInfo] = field(default_factory=list)
    #: the (sample, kind, key) a sample could not see: no point, never a zero
    unknown: pd.DataFrame = field(default_factory=pd.DataFrame)

    def curve(self, kind: str, key: str) -> tuple[F64, F64]:
        rows = self.points[(self.points["kind"] == kind) & (self.points["key"] == key)]
        return (
            rows["minutes"].to_numpy(dtype=np.float64),
            rows["bytes"].to_numpy(dtype=np.float64),
        )


def _figures(values: Any) -> list[int | None]:
    """An ``Int64`` column as plain ints, None where unknown."""
    array = pd.array(values, dtype="Int64")
    known = array.to_numpy(dtype=np.int64, na_value=0).tolist()
    return [None if unknown else v for v, unknown in zip(known, array.isna().tolist(), strict=True)]


def _rows(side: Side) -> Columns:
    """One sample's figures as plain columns: one row (kind, key, label, bytes, buffers) per
    series; bytes and buffers are None where the sample could not see them."""
    p = side.processes
    held = (p["rss"].fillna(1) > 0) | (p["buffers"].fillna(1) > 0)
    p = p[held.to_numpy(dtype=bool)]
    pid = p["pid"].astype(str)
    apps = side.apps
    app_label = apps["label"].where(apps["label"] != "", "uid " + apps["uid"].astype(str))
    t = side.totals
    # always a kernel-only row: a sample that cannot tell is an unknown point, not a zero
    parts: list[tuple[str, list[Any], list[Any], list[int | None], list[int | None]]] = [
        ("total", ["total"], ["all DMA-BUFs"], [t.get("bytes")], [t.get("buffers")]),
        (
            "process",
            (pid + "@" + p["start"].astype(str)).tolist(),
            (p["name"].astype(str) + " (" + pid + ")").tolist(),
            _figures(p["rss"].array),
            _figures(p["buffers"].array),
        ),
        (
            "app",
            apps["uid"].astype(str).tolist(),
            app_label.tolist(),
            _figures(apps["rss"].array),
            _figures(apps["buffers"].array),
        ),
        (
            "kernel_only",
            ["kernel_only"],
            ["held by no process"],
            [t.get("kernel_only_bytes")],
            [t.get("kernel_only_buffers")],
        ),
    ]
    for kind, table in (("exporter", side.exporters), ("name", side.names)):
        keys = table["key"].astype(object).tolist()
        parts.append(
            (kind, keys, keys, _figures(table["bytes"].array), _figures(table["buffers"].array))
        )
    columns: Columns = {c: [] for c in ROW_COLUMNS}
    for kind, keys, labels, figures, buffers in parts:
        columns["kind"] += [kind] * len(keys)
        columns["key"] += keys
        columns["label"] += labels
        columns["bytes"] += figures
        columns["buffers"] += buffers
    return columns


def _sample(path: Path, charge: str, use_cache: bool) -> tuple[CaptureInfo, Columns]:
    """One capture's identity and trend rows, analysed (and then cached)."""
    from dmaprof.leaks import samplecache
    from dmaprof.leaks.series import load_input

    side = side_from_capture(load_input(path), charge=charge)
    rows = _rows(side)
    if use_cache:
        samplecache.store(path, charge, side.info, rows)
    return side.info, rows


Outcome = tuple[CaptureInfo, Columns] | str  # a sample's figures, or why it was skipped


def sample_outcome(path: Path, charge: str, use_cache: bool) -> Outcome:
    """A sample's identity and trend rows as plain columns (cached when it has them), or the
    message of a bad capture (what a worker process returns)."""
    from dmaprof.leaks import samplecache

    cached = samplecache.load_columns(path, charge) if use_cache else None
    if cached is not None:
        return cached
    try:
        return _sample(path, charge, use_cache)
    except BadCaptureError as exc:
        return exc.message


#: below this many samples to analyse, starting worker processes costs more than it saves
PARALLEL_FROM = 16


def default_workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _outcomes(
    refs: list[SampleRef], charge: str, use_cache: bool, workers: int, say: Callable[[str], None]
) -> Iterator[tuple[int, Outcome]]:
    """(position, outcome) of every sample, cached ones first (each handed on at once:
    memory holds one sample's columns, not a series'), then the others, analysed on
    ``workers`` processes (every core: a cold hour-long series is minutes of CPU)."""
    from dmaprof.leaks import samplecache

    missing: list[int] = []
    for n, ref in enumerate(refs):
        cached = samplecache.load_columns(ref.path, charge) if use_cache else None
        if cached is None:
            missing.append(n)
        else:
            yield n, cached
    if workers > 1 and len(missing) >= PARALLEL_FROM:
        say(f"analysing {len(missing)} samples on {workers} processes")
        yield from _in_parallel(refs, missing, charge, use_cache, workers)
        return
    for count, n in enumerate(missing, start=1):
        say(f"analysing {refs[n].path.name} ({count}/{len(missing)})")
        yield n, sample_outcome(refs[n].path, charge, use_cache)


def _in_parallel(
    refs: list[SampleRef], missing: list[int], charge: str, use_cache: bool, workers: int
) -> Iterator[tuple[int, Outcome]]:
    """The outcomes of ``missing`` samples from a pool of processes (forkserver: no fork of
    a process with threads); a pool that breaks leaves the rest to this process."""
    done: set[int] = set()
    context = multiprocessing.get_context("forkserver")
    try:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=use_parse_thread, initargs=(False,)
        ) as pool:
            outcomes = pool.map(
                sample_outcome,
                [refs[n].path for n in missing],
                itertools.repeat(charge),
                itertools.repeat(use_cache),
                chunksize=4,
            )
            for n, outcome in zip(missing, outcomes, strict=False):
                done.add(n)
                yield n, outcome
    except (BrokenProcessPool, OSError, RuntimeError) as exc:
        log.debug("analysing in this process: the pool failed (%s)", exc)
    for n in missing:
        if n not in done:
            yield n, sample_outcome(refs[n].path, charge, use_cache)


class _LongTable:
    """The long table of a series, built once from every sample's columns (a DataFrame
    per sample costs more than its analysis when cached). Each (kind, key, label) is kept
    once: the text columns are categorical (a steady series repeats the same keys in
    every sample; an hour of samples would otherwise hold millions of copies)."""

    def __init__(self) -> None:
        self.index: dict[tuple[str, str, str], int] = {}
        self.ids: list[npt.NDArray[np.int64]] = []
        self.values: list[F64] = []
        self.counts: list[F64] = []
        self.samples: list[tuple[int, float, str]] = []  # position, t, boot_id
        self._last: tuple[list[Any], list[Any], list[Any]] | None = None

    def add(self, position: int, t: float, boot_id: str, columns: Columns) -> None:
        keys = (columns["kind"], columns["key"], columns["label"])
        if self._last is not None and keys == self._last:  # the same keys as the sample before
            ids = self.ids[-1]
        else:
            index = self.index
            ids = np.array(
                [index.setdefault(k, len(index)) for k in zip(*keys, strict=True)], dtype=np.int64
            )
            self._last = keys
        self.ids.append(ids)
        self.values.append(np.array(columns["bytes"], dtype=np.float64))  # None: NaN
        self.counts.append(np.array(columns["buffers"], dtype=np.float64))
        self.samples.append((position, t, boot_id))

    def frame(self) -> pd.DataFrame:
        """Samples in the order of their positions, numbered 0, 1, ..."""
        order = sorted(range(len(self.samples)), key=lambda i: self.samples[i][0])
        sizes = np.array([self.ids[i].size for i in order], dtype=np.int64)
        ids = np.concatenate([self.ids[i] for i in order])
        sample = np.repeat(np.arange(len(order), dtype=np.int64), sizes)
        t = np.repeat(np.array([self.samples[i][1] for i in order], dtype=np.float64), sizes)
        boot = np.repeat(np.array([self.samples[i][2] for i in order], dtype=object), sizes)
        out = pd.DataFrame({"sample": sample, "t": t, "boot_id": pd.Categorical(boot.astype(str))})
        triples = list(zip(*self.index, strict=True))
        for column, values in zip(("kind", "key", "label"), triples, strict=True):
            categories, codes = np.unique(np.array(values, dtype=object), return_inverse=True)
            out[column] = pd.Categorical.from_codes(codes[ids], categories=pd.Index(categories))
        for column, parts in (("bytes", self.values), ("buffers", self.counts)):
            v = np.concatenate([parts[i] for i in order])
            unknown = np.isnan(v)
            out[column] = pd.arrays.IntegerArray(np.where(unknown, 0, v).astype(np.int64), unknown)
        return out


def collect_points(
    refs: list[SampleRef],
    *,
    charge: str = "shared",
    progress: Callable[[str], None] | None = None,
    use_cache: bool = True,
    workers: int | None = None,
) -> tuple[pd.DataFrame, list[CaptureInfo], list[str]]:
    """Analyse the samples (those not cached on every core); the long table of their
    figures (all boots)."""
    say = progress or (lambda _m: None)
    table = _LongTable()
    kept: dict[int, CaptureInfo] = {}
    skipped: dict[int, str] = {}
    for n, outcome in _outcomes(refs, charge, use_cache, workers or default_workers(), say):
        ref = refs[n]
        if isinstance(outcome, str):
            skipped[n] = f"skipped {ref.path.name}: {outcome}"
            continue
        info, columns = outcome
        t = ref.t if ref.t is not None else info.wallclock
        if t is None:
            skipped[n] = f"skipped {ref.path.name}: no time recorded"
            continue
        table.add(n, t, info.boot_id, columns)
        kept[n] = info
    infos = [kept[n] for n in sorted(kept)]
    warnings = [skipped[n] for n in sorted(skipped)]
    if not infos:
        return (
            pd.DataFrame(
                columns=["sample", "t", "boot_id", "kind", "key", "label", "bytes", "buffers"]
            ),
            infos,
            warnings,
        )
    return table.frame(), infos, warnings


# --------------------------------------------------------------------------- estimates


def _verdict(
    f_bytes: Fit, f_count: Fit, span_min: float, points: int, p: TrendPolicy
) -> tuple[str, float]:
    if points < p.min_points:
        return "too_few_samples", 0.5
    leak_bytes = (
        f_bytes.slope > 0
        and f_bytes.confidence >= p.confidence
        and f_bytes.rises >= p.min_rises
        and f_bytes.slope * span_min >= p.min_growth_bytes
    )
    leak_count = (
        f_count.slope > 0
        and f_count.confidence >= p.confidence
        and f_count.rises >= p.min_rises
        and f_bytes.slope >= 0
        and f_count.slope * span_min >= p.min_growth_buffers
    )
    if leak_bytes or leak_count:
        conf = max(
            f_bytes.confidence if leak_bytes else 0.0, f_count.confidence if leak_count else 0.0
        )
        return "leak", conf
    if f_bytes.slope > 0 and f_bytes.confidence >= p.confidence:
        return "growing", f_bytes.confidence
    if f_bytes.slope < 0 and f_bytes.confidence <= 1 - p.confidence:
        return "shrinking", 1 - f_bytes.confidence
    return "steady", f_bytes.confidence


def estimate(points: pd.DataFrame, policy: TrendPolicy) -> list[dict[str, Any]]:
    """One estimate per (kind, key) series of ``points`` (one boot); sorted on codes."""
    if points.empty:
        return []
    samples = int(points["sample"].nunique())
    kind_codes, kinds = sorted_codes(points["kind"])
    key_codes, keys = sorted_codes(points["key"])
    label_codes, labels = sorted_codes(points["label"])
    at = np.lexsort((points["minutes"].to_numpy(dtype=np.float64), key_codes, kind_codes))
    kind_codes, key_codes, label_codes = kind_codes[at], key_codes[at], label_codes[at]
    minutes = points["minutes"].to_numpy(dtype=np.float64)[at]
    values = points["bytes"].to_numpy(dtype=np.float64)[at]
    counts = points["buffers"].to_numpy(dtype=np.float64)[at]
    out: list[dict[str, Any]] = []
    change = (kind_codes[1:] != kind_codes[:-1]) | (key_codes[1:] != key_codes[:-1])
    starts = np.r_[0, np.flatnonzero(change) + 1]
    ends = np.r_[starts[1:], len(at)]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        x, y, c = minutes[a:b], values[a:b], counts[a:b]
        f_bytes = fit(x, y, policy.max_points)
        f_count = fit(x, c, policy.max_points)
        span = float(x[-1] - x[0]) if b - a > 1 else 0.0
        verdict, confidence = _verdict(f_bytes, f_count, span, b - a, policy)
        row = {
            "kind": str(kinds[kind_codes[a]]),
            "key": str(keys[key_codes[a]]),
            "label": str(labels[label_codes[b - 1]]),
            "points": b - a,
            "of_samples": samples,
            "span_s": round(span * 60, 3),
            "first_bytes": int(y[0]),
            "last_bytes": int(y[-1]),
            "delta_bytes": int(y[-1] - y[0]),
            "min_bytes": int(y.min()),
            "max_bytes": int(y.max()),
            "first_buffers": int(c[0]),
            "last_buffers": int(c[-1]),
            "delta_buffers": int(c[-1] - c[0]),
            "slope_bytes_per_min": round(f_bytes.slope, 3),
            "slope_buffers_per_min": round(f_count.slope, 6),
            "confidence": round(confidence, 6),
            "rises": f_bytes.rises,
            "falls": f_bytes.falls,
            "monotonic": f_bytes.monotonic,
            "verdict": verdict,
        }
        if row["kind"] == "process":
            pid, _, start = row["key"].partition("@")
            row["pid"] = int(pid)
            row["start_time_ticks"] = int(start) if int(start) >= 0 else None
            row["name"] = row["label"].rsplit(" (", 1)[0]
        row["reason"] = _reason(row, f_bytes, f_count) if verdict == "leak" else None
        out.append(row)
    # leaks first, the most specific kind first (the total always has the steepest slope),
    # then the steepest slope
    order = {"leak": 0, "growing": 1, "shrinking": 2, "steady": 3, "too_few_samples": 4}
    out.sort(
        key=lambda r: (
            order[r["verdict"]],
            KIND_ORDER[r["kind"]],
            -abs(r["slope_bytes_per_min"]),
            -abs(r["delta_bytes"]),
            r.get("pid", 0),
            r["key"],
        )
    )  # pids in numeric order
    return out


def describe_series(kind: str, label: str) -> str:
    """A series in words, as its verdict names it ("app system", "buffers named 'x'")."""
    return {
        "total": "all DMA-BUF memory",
        "kernel_only": "memory held by no process",
        "process": f"process {label}",
        "app": f"app {label}",
        "exporter": f"exporter '{label}'",
        "name": f"buffers named '{label}'",
    }[kind]


def _reason(row: dict[str, Any], f_bytes: Fit, f_count: Fit) -> str:
    rate = ("+" if f_bytes.slope >= 0 else "") + human_bytes(round(f_bytes.slope)) + "/min"
    steps = f"{f_bytes.rises} of {f_bytes.rises + f_bytes.falls} changes up"
    if f_bytes.monotonic:
        steps += ", never down"
    return (
        f"{safe_text(describe_series(row['kind'], row['label']))} "
        f"{'grow' if row['kind'] == 'name' else 'grows'} by "
        f"{rate} ({f_count.slope:+.2f} buffers/min; "
        f"{signed_bytes(row['delta_bytes'])} over {row['span_s'] / 60:.1f} min, {steps}; "
        f"confidence {100 * row['confidence']:.0f}%)"
    )


def _complete(points: pd.DataFrame) -> pd.DataFrame:
    """Apps, exporters, names and kernel-only memory exist in every sample: where a key is
    missing from a sample its figures are zero (a name not yet used, an app not started).
    Processes are left as they are: a process exists from its start to its end."""
    glob = points["kind"].isin(["app", "exporter", "name", "kernel_only"]).to_numpy()
    if not glob.any():
        return points
    g = points[glob]
    per_sample = points.drop_duplicates("sample").set_index("sample")[["t", "boot_id"]]
    keys = g.drop_duplicates(["kind", "key"])[["kind", "key", "label"]]
    grid = keys.merge(per_sample.reset_index(), how="cross")
    full = grid.merge(
        g[["sample", "kind", "key", "bytes", "buffers"]],
        on=["sample", "kind", "key"],
        how="left",
        indicator=True,
    )
    absent = (full.pop("_merge") == "left_only").to_numpy()
    for column in ("bytes", "buffers"):  # absent: zero; present but unknown stays <NA>
        values = full[column].astype("Int64")
        full[column] = values.mask(absent, 0)
    return pd.concat([points[~glob], full[points.columns]], ignore_index=True)


def trend(
    directory: Path,
    listed: tuple[dict[str, Any], list[SampleRef], int, list[str]] | None = None,
    *,
    policy: TrendPolicy | None = None,
    charge: str = "shared",
    progress: Callable[[str], None] | None = None,
    use_cache: bool = True,
    serial: str | None = None,
    workers: int | None = None,
) -> TrendResult:
    """Read a series directory and estimate every series of its last boot (each sample's
    figures are cached beside it: :mod:`dmaprof.leaks.samplecache`); ``listed``: samples
    already listed (``read_series``'s header, refs, gaps, warnings; one capture is a series
    of one sample)."""
    p = policy or TrendPolicy()
    header, refs, gaps, warnings = listed if listed is not None else read_series(directory)
    if not refs:
        raise DmaprofError(f"{directory}: no samples to analyse")
    with stage(f"figures of {len(refs)} samples"):
        points, infos, more = collect_points(
            refs, charge=charge, progress=progress, use_cache=use_cache, workers=workers
        )
    warnings += more
    if points.empty:
        raise BadCaptureError(
            f"{directory}: none of its {len(refs)} samples could be read ({warnings[-1]})"
        )
    points, infos = one_device(points, infos, directory, serial)
    mode_note = mode_warning(infos)
    if mode_note:
        warnings.append(mode_note)
    boots, unknown_boots = boot_numbers(infos)
    reboots = boots[-1]
    if unknown_boots:
        warnings.append(
            f"{unknown_boots} samples carry no boot id, uptime or firstboot that tells their "
            "boot: kept in the boot of the sample before them (never counted as a reboot)"
        )
    if reboots:
        last = boots.index(reboots)
        warnings.append(
            f"the device rebooted {reboots} time(s) during the series; trends use the "
            f"{len(boots) - last} samples since the last boot"
        )
        points = points[points["sample"] >= last]
    points = _complete(points)
    known = (points["bytes"].notna() & points["buffers"].notna()).to_numpy(dtype=bool)
    unknown_points = points[~known]
    points = points[known].astype({"bytes": np.int64, "buffers": np.int64})
    t0 = float(points["t"].min())
    points = points.assign(minutes=(points["t"].to_numpy(dtype=np.float64) - t0) / 60.0)
    series = estimate(points, p)
    missing = unknown_points.groupby(["kind", "key"]).size().to_dict()
    for row in series:
        row["unknown_points"] = int(missing.get((row["kind"], row["key"]), 0))
    leaks = [s for s in series if s["verdict"] == "leak"]
    device = dict(header.get("device") or {})
    if infos:
        last_info = infos[-1]
        device.setdefault("serial", last_info.serial)
        device.setdefault("model", last_info.model)
    span = float(points["t"].max()) - t0
    doc = {
        "schema": TREND_SCHEMA,
        "directory": str(directory),
        "device": device,
        "status": header.get("status"),
        "samples": len(infos),
        "gaps": gaps,
        "span_s": round(span, 3),
        "start_utc": infos[0].captured_at if infos else None,
        "reboots": reboots,
        "unknown_boots": unknown_boots,
        "modes": list(dict.fromkeys(i.mode or "unknown" for i in infos)),
        "policy": {
            "confidence": p.confidence,
            "min_points": p.min_points,
            "min_rises": p.min_rises,
            "min_growth_bytes": p.min_growth_bytes,
            "min_growth_buffers": p.min_growth_buffers,
        },
        "warnings": warnings,
        "leaks": leaks,
        "series": series,
    }
    return TrendResult(doc, points, infos, unknown_points[["sample", "kind", "key"]])
