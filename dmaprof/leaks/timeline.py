"""The figures of a trend on the device's boot clock: what `dmaprof export --format perfetto`
draws (docs/perfetto.md).

Every figure is the trend's own (:class:`dmaprof.leaks.trend.TrendResult`: its points, its
verdicts), so the trace and `dmaprof trend` agree by construction. This module only places
them in time and chooses the tracks:

* a sample's time is its collector's ``uptime_start`` (``/proc/uptime``: CLOCK_BOOTTIME) in
  nanoseconds; a sample whose uptime is missing or does not move on from the sample before
  (a frozen ``/proc/uptime``) is placed by the host clock from the last sample that had one
  (an estimate, said in a warning); none at all: the export fails, exit 9;
* one boot: the samples the trend uses (since the last reboot), like the trend;
* counter tracks: the total, kernel-only memory, every exporter, every app and the ``top``
  processes with the highest peak (plus every process flagged as a leak). A figure a sample
  could not see is no point (never a zero); a process that is gone (or holds nothing) at a
  sample after one where it was seen gets a 0 there, so its track does not stay at its last
  value;
* instants: one per leak verdict (at the last sample of its series), and one per new buffer
  of each flagged series (a buffer, by inode + size + exporter, not in the sample before).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from dmaprof.errors import BadCaptureError
from dmaprof.leaks.trend import TrendResult, describe_series
from dmaprof.units import human_bytes

#: counter track groups, in the order the trace lists them
GROUPS = ("total", "kernel_only", "exporter", "app", "process")
TOP_PROCESSES = 20
#: new-buffer instants per flagged series and sample; the rest are summed in one more
MAX_NEW_PER_SAMPLE = 50
#: the kinds of leak verdict whose new buffers are drawn (a total's are every new buffer)
SUSPECT_KINDS = ("process", "app", "exporter", "name", "kernel_only")
NS = 1_000_000_000
Value = str | int | float


@dataclass(frozen=True)
class SampleTime:
    sample: int  # the trend's sample number
    path: Path
    ts_ns: int  # CLOCK_BOOTTIME
    measured: bool  # False: placed by the host clock from a sample with an uptime
    wallclock: float | None


@dataclass
class Track:
    uuid: int
    kind: str
    key: str
    name: str
    description: str
    points: list[tuple[int, int]] = field(default_factory=list)  # (ts_ns, bytes)


@dataclass(frozen=True)
class Instant:
    track: str  # "leak verdicts", or the flagged series' "new buffers: ..." track
    ts_ns: int
    name: str
    args: dict[str, Value]


@dataclass
class Timeline:
    source: str
    device: dict[str, Any]
    boot_id: str
    samples: list[SampleTime]
    tracks: list[Track]
    instants: list[Instant]
    warnings: list[str]


def track_uuid(*parts: str) -> int:
    """A stable 63-bit track id (the same series gets the same id in every export)."""
    digest = hashlib.sha256("\x1f".join(("dmaprof", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1 or 1


def sample_times(result: TrendResult) -> tuple[list[SampleTime], list[str]]:
    """Each sample of the trend's boot on the boot clock (see the module's docstring)."""
    points = result.points
    per_sample = points.drop_duplicates("sample").sort_values("sample")
    order = per_sample["sample"].to_numpy(dtype=np.int64).tolist()
    host = per_sample["t"].to_numpy(dtype=np.float64).tolist()
    ts: list[int | None] = []
    measured: list[bool] = []
    anchor: tuple[int, float] | None = None
    last: int | None = None
    for n, t in zip(order, host, strict=True):
        up = result.infos[n].uptime_s
        value = round(up * NS) if up is not None else None
        if value is not None and (last is None or value > last):
            anchor = (value, t)
            ts.append(value)
            measured.append(True)
        else:
            ts.append(anchor[0] + round((t - anchor[1]) * NS) if anchor else None)
            measured.append(False)
        last = ts[-1] if ts[-1] is not None else last
    first = next((i for i, m in enumerate(measured) if m), None)
    if first is None:
        raise BadCaptureError(
            "no sample records the device's uptime (its boot clock): a Perfetto trace of it "
            "would not line up with the device's own traces"
        )
    for i in range(first):  # before the first uptime: back from it by the host clock
        ts[i] = round(int(ts[first] or 0) - (host[first] - host[i]) * NS)
    out = [
        SampleTime(n, Path(result.infos[n].label), int(v or 0), m, result.infos[n].wallclock)
        for n, v, m in zip(order, ts, measured, strict=True)
        if v is not None and v >= 0
    ]
    warnings: list[str] = []
    estimated = sum(not s.measured for s in out)
    if estimated:
        warnings.append(
            f"{estimated} of {len(out)} samples carry no uptime that moves on from the sample "
            "before (a missing or frozen /proc/uptime): their boot-clock time is estimated "
            "from the host clock"
        )
    if len(out) < len(order):
        warnings.append(
            f"{len(order) - len(out)} samples before the boot clock's zero are left out"
        )
    return out, warnings


def _names(kind: str, key: str, label: str) -> tuple[str, str]:
    """A track's name and description."""
    if kind == "total":
        return "DMA-BUF total", "bytes of every DMA-BUF (held or not)"
    if kind == "kernel_only":
        return "DMA-BUF kernel-only", "bytes of the buffers no process holds (by fd or mapping)"
    if kind == "exporter":
        return f"exporter {key}", f"bytes of the buffers exported by {key}"
    if kind == "app":
        return label, f"rss of app uid {key}: bytes of the buffers its processes hold"
    pid, _, start = key.partition("@")
    return label, f"rss of process {pid} (start time {start} ticks): bytes of its buffers"


def _chosen(result: TrendResult, top: int) -> pd.DataFrame:
    """The points of the drawn series (top processes by peak, every flagged one)."""
    points = result.points[result.points["kind"].isin(GROUPS).to_numpy(dtype=bool)]
    procs = points[(points["kind"] == "process").to_numpy(dtype=bool)]
    peak = procs.groupby("key", observed=True)["bytes"].max()
    ranked = sorted(peak.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    keep = {str(k) for k, _ in ranked[:top]}
    keep |= {s["key"] for s in result.doc["leaks"] if s["kind"] == "process"}
    drawn = (points["kind"] != "process").to_numpy(dtype=bool) | points["key"].isin(keep).to_numpy(
        dtype=bool
    )
    return points[drawn]


def build_tracks(
    result: TrendResult, times: list[SampleTime], top: int = TOP_PROCESSES
) -> list[Track]:
    """The counter tracks, in the trace's order: by group, then by peak (highest first)."""
    ts_of = {s.sample: s.ts_ns for s in times}
    order = [s.sample for s in times]
    points = _chosen(result, top)
    points = points[points["sample"].isin(ts_of).to_numpy(dtype=bool)]
    unknown = {
        (int(s), str(k), str(key))
        for s, k, key in result.unknown[["sample", "kind", "key"]].itertuples(index=False)
    }
    tracks: list[tuple[tuple[int, int, str], Track]] = []
    for (kind, key), rows in points.groupby(["kind", "key"], observed=True, sort=False):
        kind, key = str(kind), str(key)
        rows = rows.sort_values("sample")
        name, description = _names(kind, key, str(rows["label"].iloc[-1]))
        track = Track(track_uuid(kind, key), kind, key, name, description)
        seen = dict(
            zip(
                rows["sample"].to_numpy(dtype=np.int64).tolist(),
                rows["bytes"].to_numpy(dtype=np.int64).tolist(),
                strict=True,
            )
        )
        before = "absent"
        for n in order:
            if n in seen:
                track.points.append((ts_of[n], seen[n]))
                before = "seen"
            elif (n, kind, key) in unknown:
                before = "unknown"  # no point: never drawn as 0
            else:
                if kind == "process" and before != "absent":
                    track.points.append((ts_of[n], 0))  # gone, or holds nothing now
                before = "absent"
        if track.points:
            rank = (GROUPS.index(kind), -max(v for _, v in track.points), key)
            tracks.append((rank, track))
    return [t for _, t in sorted(tracks, key=lambda x: x[0])]


def _what(row: dict[str, Any]) -> str:
    return describe_series(row["kind"], row["label"])


def verdict_instants(result: TrendResult, times: list[SampleTime]) -> list[Instant]:
    """One instant per leak verdict, at the last sample of its series."""
    ts_of = {s.sample: s.ts_ns for s in times}
    points = result.points
    last = points.groupby(["kind", "key"], observed=True)["sample"].max()
    out = []
    for row in result.doc["leaks"]:
        sample = int(last.get((row["kind"], row["key"]), -1))
        if sample not in ts_of:
            continue
        args: dict[str, Value] = {
            k: row[k]
            for k in (
                "kind",
                "key",
                "label",
                "reason",
                "slope_bytes_per_min",
                "slope_buffers_per_min",
                "confidence",
                "delta_bytes",
                "delta_buffers",
                "span_s",
            )
        }
        out.append(Instant("leak verdicts", ts_of[sample], f"leak: {_what(row)}", args))
    return out


Loader = Callable[[Path], Any]  # a sample's path -> its Side (dmaprof.leaks.side.Side)


def _matches(row: dict[str, Any], side: Any, new: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Which of the new buffers belong to the flagged series ``row``."""
    from dmaprof.leaks.side import UNKNOWN

    kind, key = row["kind"], row["key"]
    if kind == "kernel_only":
        held: npt.NDArray[np.bool_] = new["held"].to_numpy(dtype=bool)
        return ~held
    if kind == "exporter":
        exporter = new["exporter"].astype(str).where(new["exporter"].astype(str) != "", UNKNOWN)
        same: npt.NDArray[np.bool_] = (exporter == key).to_numpy(dtype=bool)
        return same
    if kind == "name":
        named: npt.NDArray[np.bool_] = (new["name_key"].astype(str) == key).to_numpy(dtype=bool)
        return named
    p = side.processes
    if kind == "process":
        pid, _, start = key.partition("@")
        mine = p[(p["pid"] == int(pid)) & (p["start"] == int(start))]
    else:
        mine = p[p["owner_uid"] == int(key)]
    pids = set(mine["pid"].astype(int).tolist())
    return np.array([bool(pids.intersection(h)) for h in new["holders"]], dtype=bool)


def _buffer_instants(track: str, ts: int, new: pd.DataFrame, also: list[str]) -> list[Instant]:
    rows = new.to_dict("records")
    out = []
    for b, flagged in zip(rows[:MAX_NEW_PER_SAMPLE], also[:MAX_NEW_PER_SAMPLE], strict=True):
        name = b["name"] if isinstance(b["name"], str) else None
        args: dict[str, Value] = {
            "inode": int(b["inode"]),
            "size_bytes": int(b["size"]),
            "exporter": str(b["exporter"]),
            "name": name or "",
            "holders": ", ".join(str(h) for h in b["holders"]),
            "flagged": flagged,
        }
        what = f"'{name}'" if name else "(unnamed)"
        out.append(Instant(track, ts, f"new buffer {what} {human_bytes(int(b['size']))}", args))
    rest = rows[MAX_NEW_PER_SAMPLE:]
    if rest:
        size = sum(int(b["size"]) for b in rest)
        args = {"buffers": len(rest), "size_bytes": size}
        label = f"{len(rest)} more new buffers {human_bytes(size)}"
        out.append(Instant(track, ts, label, args))
    return out


def _flagged(leaks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leak verdicts whose new buffers are drawn, the most specific kind first."""
    order = {k: n for n, k in enumerate(SUSPECT_KINDS)}
    return sorted((r for r in leaks if r["kind"] in order), key=lambda r: order[r["kind"]])


def _changed(
    result: TrendResult, times: list[SampleTime], flagged: list[dict[str, Any]]
) -> list[int]:
    """Positions in ``times`` (from 1) where a flagged series' figures differ from the
    sample before (a figure that appears, disappears or is unknown counts as a change)."""
    if not flagged or len(times) < 2:
        return []
    p = result.points
    flagged_points = np.zeros(len(p), dtype=bool)  # a few flagged series, millions of points
    for kind, key in {(r["kind"], r["key"]) for r in flagged}:
        flagged_points |= ((p["kind"] == kind) & (p["key"] == key)).to_numpy(dtype=bool)
    mine = p[flagged_points]
    figures: dict[int, set[tuple[str, str, int, int]]] = {}
    for kind, key, n, b, c in mine[["kind", "key", "sample", "bytes", "buffers"]].itertuples(
        index=False
    ):
        figures.setdefault(int(n), set()).add((str(kind), str(key), int(b), int(c)))
    order = [s.sample for s in times]
    return [
        i
        for i in range(1, len(order))
        if figures.get(order[i], set()) != figures.get(order[i - 1], set())
    ]


def new_buffer_instants(
    result: TrendResult,
    times: list[SampleTime],
    load: Loader,
    progress: Callable[[str], None] | None = None,
) -> list[Instant]:
    """Each new buffer of a flagged series, sample by sample, once: on the track of the most
    specific flagged series it belongs to (a process before its name, app and exporter),
    the others named in its ``flagged`` argument. Only the samples where a flagged series'
    bytes or buffer count changed are analysed (with the sample before), two at a time
    (memory stays bounded); nothing to do without a leak verdict."""
    from dmaprof.leaks.bufferdiff import buffer_diff

    flagged = _flagged(result.doc["leaks"])
    changed = _changed(result, times, flagged)
    say = progress or (lambda _m: None)
    out: list[Instant] = []
    loaded: tuple[int, Any] | None = None
    for count, i in enumerate(changed, start=1):
        say(f"new buffers of the flagged series: sample {count}/{len(changed)}")
        before = loaded[1] if loaded and loaded[0] == i - 1 else load(times[i - 1].path)
        after = load(times[i].path)
        loaded = (i, after)
        sample = times[i]
        new = buffer_diff(before, after).new.reset_index(drop=True)
        if not len(new):
            continue
        hits = np.stack([_matches(row, after, new) for row in flagged])  # series x buffer
        taken = np.zeros(len(new), dtype=bool)
        for n, row in enumerate(flagged):
            mine = hits[n] & ~taken
            taken |= mine
            if not mine.any():
                continue
            also = [
                ", ".join(_what(flagged[k]) for k in np.flatnonzero(hits[:, b]).tolist())
                for b in np.flatnonzero(mine).tolist()
            ]
            track = f"new buffers: {_what(row)}"
            out.extend(_buffer_instants(track, sample.ts_ns, new[mine], also))
    return out


def timeline(
    result: TrendResult,
    load: Loader,
    *,
    top: int = TOP_PROCESSES,
    progress: Callable[[str], None] | None = None,
) -> Timeline:
    """The trace's content: the trend's figures on the boot clock, its verdicts, the flagged
    series' new buffers (``load`` turns a sample's path into its Side)."""
    times, warnings = sample_times(result)
    doc = result.doc
    before = len({int(s) for s in result.points["sample"].tolist()})
    if doc.get("reboots"):
        warnings.append(
            f"the device rebooted during the series: the trace holds the {before} samples "
            "of its last boot (the boot clock starts again at each boot), as the trend does"
        )
    tracks = build_tracks(result, times, top)
    instants = verdict_instants(result, times)
    instants += new_buffer_instants(result, times, load, progress)
    boot = result.infos[times[0].sample].boot_id if times else ""
    return Timeline(
        source=str(doc.get("directory") or ""),
        device=dict(doc.get("device") or {}),
        boot_id=boot,
        samples=times,
        tracks=tracks,
        instants=sorted(instants, key=lambda i: i.ts_ns),
        warnings=warnings,
    )


def side_loader(charge: str) -> Loader:
    """A sample's path -> its Side (analysed now: new buffers need the buffer tables)."""
    from dmaprof.leaks import side as side_module
    from dmaprof.leaks.series import load_input

    return lambda path: side_module.side_from_capture(load_input(path), charge=charge)


def trend_for_trace(
    path: Path, *, charge: str = "shared", progress: Callable[[str], None] | None = None
) -> TrendResult:
    """The trend a trace is drawn from: of a series directory (its cached figures), or of one
    capture, series sample or sample address (``DIR/@N``): one point per series."""
    from dmaprof.leaks.address import split_address
    from dmaprof.leaks.series import SampleRef, load_input, resolve
    from dmaprof.leaks.trend import trend

    if split_address(path) is None and path.is_dir():
        return trend(path, charge=charge, progress=progress)
    target = resolve(path)
    load_input(target)  # a missing, corrupt or foreign file: its own error, exit 9
    refs = [SampleRef(0, target, None, None)]
    # one capture: no cache written beside it (a user's file, not a series of ours)
    return trend(path, ({}, refs, 0, []), charge=charge, progress=progress, use_cache=False)
