"""The trend estimator (Theil–Sen slope, Mann–Kendall confidence, leak verdicts), the series
directory written by `record` (gaps, bounded state, interruption) and the HTML plot."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dmaprof.capture.container import Capture
from dmaprof.errors import DeviceCommandError, DmaprofError, InterruptedByUser
from dmaprof.leaks.estimators import fit, mann_kendall, theil_sen
from dmaprof.leaks.series import RecordPlan, read_series, record_series
from dmaprof.leaks.trend import TrendPolicy, trend
from dmaprof.render.plot import nice_ticks, render_html, write_plot
from tests.leaks import phonescene as P
from tests.leaks.conftest import Captures

MiB = 1024 * 1024


# --------------------------------------------------------------------------- estimators


def test_theil_sen_ignores_outliers() -> None:
    x = np.arange(10, dtype=np.float64)
    y = 3.0 * x + 7.0
    y[[2, 7]] = [500.0, -400.0]  # two wild samples out of ten
    slope, intercept = theil_sen(x, y)
    assert (slope, intercept) == (3.0, 7.0)
    ls = np.polyfit(x, y, 1)[0]
    assert abs(ls - 3.0) > 10  # least squares follows them


def test_mann_kendall() -> None:
    x = np.arange(6, dtype=np.float64)
    s, confidence = mann_kendall(x, x.copy())
    assert s == 15 and confidence == pytest.approx(0.99574, abs=1e-4)
    s, confidence = mann_kendall(x, -x)
    assert s == -15 and confidence == pytest.approx(1 - 0.99574, abs=1e-4)
    assert mann_kendall(x, np.ones(6)) == (0, 0.5)


def verdict(values: list[float], policy: TrendPolicy | None = None) -> tuple[str, float]:
    from dmaprof.leaks.trend import _verdict

    x = np.arange(len(values), dtype=np.float64)  # one sample a minute
    y = np.array(values, dtype=np.float64) * MiB
    p = policy or TrendPolicy()
    f = fit(x, y)
    counts = fit(x, np.array(values, dtype=np.float64))
    return _verdict(f, counts, float(x[-1]), len(values), p)[0], f.slope


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([10, 11, 12, 13, 14, 15], "leak"),  # monotonic, sustained
        ([10, 12, 11, 13, 15, 14, 16, 18, 17, 19], "leak"),  # sawtooth with net growth
        ([10, 10, 10, 10, 10, 10], "steady"),
        ([10, 11, 10, 11, 10, 11, 10, 11], "steady"),  # churn
        ([10, 10, 10, 30, 30, 30, 30], "growing"),  # one allocation: a step, not a leak
        ([20, 19, 18, 17, 16, 15], "shrinking"),
        ([10, 11, 12], "too_few_samples"),
        ([10.0, 10.1, 10.2, 10.3, 10.4, 10.5], "growing"),  # +0.5 MiB in all: under the floor
    ],
)
def test_verdicts(values: list[float], expected: str) -> None:
    assert verdict(values)[0] == expected


def test_small_buffers_leak_by_count() -> None:
    """+4 KiB buffers: bytes stay under the 1 MiB floor, the count is the signal."""
    x = np.arange(8, dtype=np.float64)
    counts = np.arange(100, 100 + 8 * 3, 3, dtype=np.float64)
    from dmaprof.leaks.trend import _verdict

    result = _verdict(fit(x, counts * 4096), fit(x, counts), 7.0, 8, TrendPolicy())
    assert result[0] == "leak"


def test_nice_ticks() -> None:
    assert nice_ticks(0, 17) == [0, 5, 10, 15, 20]
    assert nice_ticks(0, 15) == [0, 5, 10, 15]
    assert nice_ticks(0, 0.9) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


# --------------------------------------------------------------------------- record loop


class FakeClock:
    """Time moves only when the loop sleeps: one slot per interval, exactly."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_700_000_000.0 + self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


class Sampler:
    """Captures the scene as it is now; fails on the given calls."""

    def __init__(self, scene: dict[str, Any], fail: set[int] | None = None) -> None:
        self.scene = scene
        self.fail = fail or set()
        self.calls = 0

    def __call__(self) -> Capture:
        self.calls += 1
        if self.calls in self.fail:
            raise DeviceCommandError("device emu-5554: timed out while running `sh`")
        return P.capture(self.scene)


@pytest.fixture
def leaking(captures: Captures) -> dict[str, Any]:
    return P.pixel()


def test_record_retries_records_gaps_and_goes_on(tmp_path: Path, leaking: dict[str, Any]) -> None:
    clock = FakeClock()
    # call 2 fails then succeeds on retry; calls 4 and 5 (slot 3 and its retry) fail: a gap
    sampler = Sampler(leaking, fail={2, 4, 5})
    summary = record_series(
        tmp_path / "s",
        RecordPlan(60.0, count=4, retries=1, retry_delay_s=5.0),
        sampler,
        clock=clock,
    )
    assert (summary.status, summary.samples, summary.gaps, summary.slots) == ("complete", 3, 1, 4)
    lines = [json.loads(x) for x in (tmp_path / "s" / "samples.ndjson").read_text().splitlines()]
    assert [(x["index"], x["status"], x["attempts"]) for x in lines] == [
        (0, "ok", 1),
        (1, "ok", 2),
        (2, "gap", 2),
        (3, "ok", 1),
    ]
    assert lines[2]["error"] == "device emu-5554: timed out while running `sh`"
    # slots stay on schedule: retries wait within the slot (5 s), never past it
    assert [x["t"] - 1_700_000_000.0 for x in lines] == [0.0, 65.0, 125.0, 180.0]
    series = json.loads((tmp_path / "s" / "series.json").read_text())
    assert (series["status"], series["samples"], series["gaps"]) == ("complete", 3, 1)
    assert series["recent_gaps"][0]["index"] == 2
    assert sorted(p.name for p in (tmp_path / "s").glob("*.dmaprof-sample")) == [
        "sample-00000.dmaprof-sample",
        "sample-00001.dmaprof-sample",
        "sample-00003.dmaprof-sample",
    ]


def test_record_by_duration(tmp_path: Path, leaking: dict[str, Any]) -> None:
    summary = record_series(
        tmp_path / "d", RecordPlan(60.0, duration_s=150.0), Sampler(leaking), clock=FakeClock()
    )
    assert summary.slots == 3  # at 0, 60 and 120 s


def test_interrupted_series_is_consistent(tmp_path: Path, leaking: dict[str, Any]) -> None:
    sampler = Sampler(leaking)

    def ctrl_c(index: int) -> None:
        if index == 1:
            raise KeyboardInterrupt

    with pytest.raises(InterruptedByUser) as info:
        record_series(
            tmp_path / "i",
            RecordPlan(60.0, count=10),
            sampler,
            clock=FakeClock(),
            after_slot=ctrl_c,
        )
    assert "interrupted: 2 samples and 0 gaps kept" in info.value.message
    series = json.loads((tmp_path / "i" / "series.json").read_text())
    assert series["status"] == "interrupted" and series["ended_utc"]
    _header, refs, _gaps, warnings = read_series(tmp_path / "i")
    assert [r.path.name for r in refs] == [
        "sample-00000.dmaprof-sample",
        "sample-00001.dmaprof-sample",
    ]
    assert "the series was interrupted (Ctrl-C) before its planned end" in warnings


def test_existing_series_needs_force(tmp_path: Path, leaking: dict[str, Any]) -> None:
    plan = RecordPlan(60.0, count=1)
    record_series(tmp_path / "f", plan, Sampler(leaking), clock=FakeClock())
    trend(tmp_path / "f")  # leaves the samples' figures in .dmaprof-cache
    assert (tmp_path / "f" / ".dmaprof-cache").is_dir()
    with pytest.raises(DmaprofError, match="already holds a series"):
        record_series(tmp_path / "f", plan, Sampler(leaking), clock=FakeClock())
    record_series(tmp_path / "f", plan, Sampler(leaking), clock=FakeClock(), force=True)
    assert not (tmp_path / "f" / ".dmaprof-cache").exists()  # gone with the old samples


def test_trend_of_a_leaking_series(tmp_path: Path, leaking: dict[str, Any], dmaprof: Any) -> None:
    """Record from fake phone scenes while pid 3100 leaks 1 MiB a minute (with one gap)."""

    def grow(index: int) -> None:
        P.leak(leaking, 3100, 1, MiB, "SurfaceView - leak")

    record_series(
        tmp_path / "t",
        RecordPlan(60.0, count=6, retries=0),
        Sampler(leaking, fail={3}),
        clock=FakeClock(),
        after_slot=grow,
    )
    result = trend(tmp_path / "t")
    doc = result.doc
    assert (doc["samples"], doc["gaps"], doc["span_s"]) == (5, 1, 300.0)
    first = doc["leaks"][0]
    assert (first["kind"], first["label"], first["pid"], first["name"]) == (
        "process",
        "com.example.camera (3100)",
        3100,
        "com.example.camera",
    )
    assert first["slope_bytes_per_min"] == MiB
    assert first["confidence"] > 0.95 and first["monotonic"]
    assert first["reason"] == (
        "process com.example.camera (3100) grows by +1.0 MiB/min (+1.00 buffers/min; +5.0 MiB "
        "over 5.0 min, 4 of 4 changes up, never down; confidence 99%)"
    )
    assert {s["kind"] for s in doc["leaks"]} == {"process", "name", "app", "exporter", "total"}
    steady = {s["label"]: s["verdict"] for s in doc["series"] if s["kind"] == "process"}
    assert steady["surfaceflinger (612)"] == "steady"
    # the plot: self-contained HTML, one SVG chart per kind that moves
    html = render_html(result)
    assert "<script" not in html and "http" not in html and "<link" not in html
    assert html.count("<svg") == 5 and "LEAK: process com.example.camera (3100)" in html
    write_plot(result, tmp_path / "plot.html")
    assert (tmp_path / "plot.html").read_text() == html
    with pytest.raises(DmaprofError, match=r"must end in \.html or \.png"):
        write_plot(result, tmp_path / "plot.svg")
    # the command: a CI gate on leaks, and every format
    gate = dmaprof("trend", tmp_path / "t", "--fail-on-leak", "--format", "markdown")
    assert gate.code == 10
    assert gate.stdout.startswith("### ❌ DMA-BUF trend · Pixel-like 8 · 5 samples over 5.0 min")
    assert "- **leak:** process com.example.camera (3100) grows by +1.0 MiB/min" in gate.stdout
    assert "dmaprof: error: 5 leak(s) flagged: process com.example.camera (3100)" in gate.stderr
    rows = dmaprof("trend", tmp_path / "t", "--format", "csv", "--by", "process").stdout
    assert rows.splitlines()[1].startswith(f"process,com.example.camera (3100),leak,{MiB}.0,")
    table = dmaprof("trend", tmp_path / "t", "--min-growth", "10MiB")
    assert table.code == 0 and "LEAK" not in table.stdout  # 5 MiB in all: under the floor


def test_trend_of_a_plain_directory_of_captures(tmp_path: Path, captures: Captures) -> None:
    """No samples.ndjson: every capture is a sample, timed by its metadata."""
    scene = P.pixel()
    for n in range(4):
        P.capture(scene, tmp_path / f"c{n}.dmaprof", wallclock=1_700_000_000.0 + 120 * n)
    doc = trend(tmp_path).doc
    assert (doc["samples"], doc["span_s"], doc["leaks"]) == (4, 360.0, [])
    assert {s["verdict"] for s in doc["series"]} == {"steady"}


def test_truncated_sample_line_is_skipped(tmp_path: Path, leaking: dict[str, Any]) -> None:
    record_series(tmp_path / "x", RecordPlan(60.0, count=2), Sampler(leaking), clock=FakeClock())
    with (tmp_path / "x" / "samples.ndjson").open("a") as handle:
        handle.write('{"index": 2, "status": "o')  # killed mid-write
    _header, refs, _gaps, warnings = read_series(tmp_path / "x")
    assert len(refs) == 2 and any(re.search(r"samples.ndjson:3: unreadable", w) for w in warnings)


def test_trend_caches_each_sample_beside_it(
    tmp_path: Path, leaking: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from dmaprof.leaks import trend as trend_module

    def grow(index: int) -> None:
        P.leak(leaking, 3100, 1, MiB, "SurfaceView - leak")

    series = tmp_path / "s"
    record_series(  # a series of standalone captures (dmaprof.series/1): files replaced below
        series,
        RecordPlan(60.0, count=4),
        Sampler(leaking),
        clock=FakeClock(),
        after_slot=grow,
        compact=False,
    )
    analysed: list[str] = []
    real = trend_module.side_from_capture

    def counting(capture: Capture, **kw: Any) -> Any:
        analysed.append(capture.path.name if capture.path else "?")
        return real(capture, **kw)

    monkeypatch.setattr(trend_module, "side_from_capture", counting)
    first = trend(series).doc
    assert len(analysed) == 4
    assert len(list((series / ".dmaprof-cache").glob("*.json.gz"))) == 4
    # again: every sample comes from the cache, with the same figures
    analysed.clear()
    assert trend(series).doc == first and analysed == []
    # the cache is keyed by content: a copy of a sample is the same sample
    shutil.copy(series / "sample-00000.dmaprof", series / "sample-00002.dmaprof")
    copied = trend(series).doc
    assert analysed == [] and copied != first
    # a sample whose content changed under the same name is analysed again
    P.capture(P.pixel(), series / "sample-00002.dmaprof", wallclock=1_700_000_000.0)
    changed = trend(series).doc
    assert analysed == ["sample-00002.dmaprof"]  # (the base scene, as sample 0 was)
    # an entry that cannot be read is computed again; --no-cache analyses everything
    for entry in (series / ".dmaprof-cache").glob("*.json.gz"):
        entry.write_bytes(b"not gzip")
    analysed.clear()
    assert trend(series).doc == changed and len(analysed) == 4
    analysed.clear()
    assert trend(series, use_cache=False).doc == changed and len(analysed) == 4


def _info(boot: str = "", uptime: float | None = None, firstboot: str = "") -> Any:
    from dmaprof.leaks.side import CaptureInfo

    return CaptureInfo("x", serial="s", boot_id=boot, uptime_s=uptime, firstboot=firstboot)


def test_reboots_by_boot_id_then_uptime_then_firstboot() -> None:
    from dmaprof.leaks.boots import boot_numbers

    # boot ids tell; a sample without one is placed by its uptime against its neighbour
    assert boot_numbers([_info("a", 10), _info("a", 20), _info("", 30), _info("b", 5)]) == (
        [0, 0, 0, 1],
        0,
    )
    # no boot ids at all: the uptime going backwards is a reboot
    assert boot_numbers([_info(uptime=100), _info(uptime=200), _info(uptime=3)]) == ([0, 0, 1], 0)
    # only ro.runtime.firstboot (bugreports): it names the boot
    assert boot_numbers([_info(firstboot="1"), _info(firstboot="1"), _info(firstboot="2")]) == (
        [0, 0, 1],
        0,
    )
    # nothing tells: an unknown boot, kept in the current one, never a reboot by itself
    assert boot_numbers([_info("a"), _info(), _info("a")]) == ([0, 0, 0], 1)
    # a reboot before an undecidable sample is still seen by the next one that tells
    assert boot_numbers([_info("a"), _info("b"), _info(), _info("b")]) == ([0, 1, 1, 1], 1)


def test_trend_views_keep_the_total_and_filter_leaks_by_kind() -> None:
    from dmaprof.render.diff import trend_leaks, trend_rows

    def series(kind: str, key: str, verdict: str) -> dict[str, Any]:
        return {"kind": kind, "key": key, "label": key, "verdict": verdict}

    rows = [series("process", f"{p}@1", "leak") for p in (3100, 3160)]
    rows += [series("name", f"n{i}", "growing") for i in range(5)]
    rows.append(series("total", "total", "steady"))
    doc = {"series": rows, "leaks": rows[:2]}
    shown = trend_rows(doc, None, 4)
    assert len(shown) == 4 and shown[-1]["kind"] == "total"  # all DMA-BUFs stays in view
    assert [r["kind"] for r in trend_rows(doc, "total", 20)] == ["total"]
    assert trend_leaks(doc, "total") == [] and len(trend_leaks(doc, None)) == 2


def test_trend_orders_pids_numerically() -> None:
    import pandas as pd

    from dmaprof.leaks.trend import estimate

    rows = [
        {
            "sample": sample,
            "minutes": float(sample),
            "kind": "process",
            "key": f"{pid}@1",
            "label": f"p ({pid})",
            "bytes": 1,
            "buffers": 1,
        }
        for sample in range(5)
        for pid in (900, 10000, 3100)
    ]
    out = estimate(pd.DataFrame(rows), TrendPolicy())
    assert [r["pid"] for r in out] == [900, 3100, 10000]


def test_trend_of_a_series_with_no_readable_sample_is_bad_input(
    dmaprof: Any, tmp_path: Path
) -> None:
    """Exit 9 (bad input, README's exit codes), one line naming the first skipped sample."""
    from dmaprof.errors import ExitCode

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sample-00000.dmaprof").write_bytes(b"PK\x03\x04 not a zip")
    run = dmaprof("trend", bad)
    assert run.code == ExitCode.BAD_CAPTURE and run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1
    assert "none of its 1 samples could be read" in run.stderr
    assert "sample-00000.dmaprof" in run.stderr
