"""`dmaprof export --format perfetto`: the trace decoded with Perfetto's own protos and checked
against `dmaprof trend` (docs/perfetto.md). The emulated phone's series is in
test_record_e2e.py, the bundled demo series in tests/e2e/test_readme_e2e.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dmaprof.capture.container import load_capture
from dmaprof.errors import ExitCode
from dmaprof.leaks.trend import trend
from tests.e2e.conftest import DMAPROF, REPO
from tests.leaks.tracecheck import check_counters, decode, trend_values

CAPTURES = REPO / "fixtures" / "captures"
BUGREPORTS = REPO / "fixtures" / "bugreports"


def uptime_ns(path: Path) -> int:
    return round(float(load_capture(path).meta["collection"]["uptime_start"]) * 1e9)


def test_two_real_bugreports_on_their_boot_clock(dmaprof: Any, tmp_path: Path) -> None:
    """Two bugreports of one Pixel, an hour apart in one boot (a source we did not write):
    their `dumpsys meminfo` Realtime (elapsedRealtime: CLOCK_BOOTTIME) places each sample."""
    series = tmp_path / "tokay"
    series.mkdir()
    names = sorted(BUGREPORTS.glob("bugreport-tokay-*.txt"))
    for n, report in enumerate(names):
        done = dmaprof("import", report, "-o", series / f"{n}.dmaprof")
        assert done.code == 0, done.stderr
    out = tmp_path / "tokay.pftrace"
    made = dmaprof("export", series, "--format", "perfetto", "-o", out)
    assert made.code == 0, made.stderr
    assert f"wrote {out}: " in made.stderr
    doc = json.loads(dmaprof("trend", series, "--format", "json").stdout)
    result = trend(series)
    assert result.doc == doc
    ts = {0: uptime_ns(series / "0.dmaprof"), 1: uptime_ns(series / "1.dmaprof")}
    assert ts == {0: 8022 * 10**9, 1: 11645 * 10**9}  # the two reports' Realtime
    decoded = decode(out)
    assert check_counters(decoded, doc, trend_values(result), ts) >= 5
    assert "leak verdicts" not in decoded.instants  # two samples: no verdict


@pytest.mark.parametrize("name", ["pixel-like.dmaprof", "pixel-like-shell.dmaprof"])
def test_one_capture_is_one_point_per_track(dmaprof: Any, tmp_path: Path, name: str) -> None:
    """One capture exports too; the shell user's capture cannot see kernel-only memory: no
    point there (and no track), never a 0."""
    capture = CAPTURES / name
    out = tmp_path / "one.pftrace"  # the suffix picks the format
    made = dmaprof("export", capture, "-o", out)
    assert made.code == 0, made.stderr
    assert not (CAPTURES / ".dmaprof-cache").exists()  # nothing written beside the capture
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(capture, alone / name)
    doc = json.loads(dmaprof("trend", alone, "--format", "json").stdout)
    decoded = decode(out)
    ts = {0: uptime_ns(capture)}
    assert check_counters(decoded, doc, trend_values(trend(alone)), ts) > 5
    assert all(len(points) == 1 for points in decoded.counters.values())
    report = json.loads(dmaprof("show", capture, "--format", "json").stdout)
    total = decoded.by_name("DMA-BUF total", "DMA-BUF (dmaprof)")
    assert decoded.counters[total.uuid] == [(ts[0], report["totals"]["bytes"])]
    kernel = [d for d in decoded.counter_tracks if d.name == "DMA-BUF kernel-only"]
    if report["totals"]["kernel_only_bytes"] is None:
        assert kernel == []
    else:
        assert decoded.counters[kernel[0].uuid] == [(ts[0], report["totals"]["kernel_only_bytes"])]


def test_bad_input_is_one_line_and_its_exit_code(dmaprof: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sample-00000.dmaprof").write_bytes(b"PK\x03\x04 not a zip")
    run = dmaprof("export", bad, "--format", "perfetto", "-o", tmp_path / "t.pftrace")
    assert run.code == ExitCode.BAD_CAPTURE and "could be read" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "t.pftrace").exists()
    run = dmaprof("export", bad / "@3", "-o", tmp_path / "t.pftrace")
    assert run.code == ExitCode.BAD_CAPTURE and len(run.stderr.strip().splitlines()) == 1
    two = dmaprof("export", CAPTURES / "pixel-like.dmaprof", bad, "-o", tmp_path / "t.pftrace")
    assert two.code == ExitCode.USAGE and "one series or capture" in two.stderr
    there = tmp_path / "there.pftrace"
    there.write_bytes(b"keep")
    again = dmaprof("export", CAPTURES / "pixel-like.dmaprof", "-o", there)
    assert again.code == ExitCode.ERROR and "--force" in again.stderr
    assert there.read_bytes() == b"keep"
    into_dir = dmaprof("export", CAPTURES / "pixel-like.dmaprof", "--format", "perfetto", "-o", bad)
    assert into_dir.code == ExitCode.ERROR and "is a directory" in into_dir.stderr


def test_without_perfetto_installed_it_stops_before_any_work(
    tmp_path: Path, dmaprof: Any, not_installed: Callable[[str], None]
) -> None:
    not_installed("perfetto")
    out = tmp_path / "t.pftrace"
    run = dmaprof("export", CAPTURES / "pixel-like.dmaprof", "-o", out)
    assert (run.code, run.stdout) == (ExitCode.ERROR, "") and not out.exists()
    assert run.stderr == (
        "dmaprof: error: Perfetto traces need the perfetto and protobuf packages: "
        "pip install 'dmaprof[perfetto]'\n"
    )


def test_without_the_extra_it_names_the_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "no-perfetto"
    (blocker / "perfetto").mkdir(parents=True)
    (blocker / "perfetto" / "__init__.py").write_text("raise ImportError('no perfetto here')\n")
    out = tmp_path / "t.pftrace"
    run = subprocess.run(
        [*DMAPROF, "export", str(CAPTURES / "pixel-like.dmaprof"), "-o", str(out)],
        env={"PYTHONPATH": f"{blocker}:{REPO}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == ExitCode.ERROR, run.stderr
    assert run.stderr.count("\n") == 1 and "pip install 'dmaprof[perfetto]'" in run.stderr
    assert "Traceback" not in run.stderr and not out.exists()


def test_a_process_that_exits_drops_to_zero(captures: Any, dmaprof: Any, tmp_path: Path) -> None:
    """A process gone at the second sample gets a 0 there (a counter keeps its last value
    otherwise); every other point is the trend's. Two captures of the pixel-like scene by the
    real collector, five minutes apart on the boot clock; the camera app exits between them."""

    def camera_exits(scene: dict[str, Any]) -> None:
        scene["processes"] = [p for p in scene["processes"] if int(p["pid"]) != 3100]
        up, idle = (float(x) for x in str(scene["uptime"]).split())
        scene["uptime"] = f"{up + 300:.2f} {idle + 500:.2f}"

    pair = captures.pair("camera-exits", camera_exits)
    series = tmp_path / "exits"
    series.mkdir()
    shutil.copy(pair.before, series / "a.dmaprof")
    shutil.copy(pair.after, series / "b.dmaprof")
    out = tmp_path / "exits.pftrace"
    made = dmaprof("export", series, "-o", out, "--top", "1000")
    assert made.code == 0, made.stderr
    assert "estimated" not in made.stderr
    doc = json.loads(dmaprof("trend", series, "--format", "json").stdout)
    ts = {0: uptime_ns(pair.before), 1: uptime_ns(pair.after)}
    assert ts[1] - ts[0] == 300 * 10**9
    decoded = decode(out)
    check_counters(decoded, doc, trend_values(trend(series)), ts, top=1000)
    camera = [d for d in decoded.counter_tracks if d.name == "com.example.camera (3100)"]
    assert len(camera) == 1 and decoded.descriptors[camera[0].parent_uuid].name == "processes"
    points = decoded.counters[camera[0].uuid]
    assert points[0][0] == ts[0] and points[0][1] > 0 and points[1] == (ts[1], 0)


def test_a_reboot_keeps_the_last_boot_and_an_address_exports_one_sample(
    captures: Any, dmaprof: Any, tmp_path: Path
) -> None:
    """The boot clock starts again at a reboot: the trace holds the last boot's samples (the
    trend's) and says so; `DIR/@N` exports that one sample."""

    def rebooted(scene: dict[str, Any], uptime: float) -> None:
        scene["boot_id"] = "0b00b1e5-0000-4000-8000-000000000001"
        scene["uptime"] = f"{uptime:.2f} {uptime * 3:.2f}"

    first = captures.pair("reboot-1", lambda s: rebooted(s, 40.5)).after
    second = captures.pair("reboot-2", lambda s: rebooted(s, 100.75), wallclock=1_700_000_360.0)
    series = tmp_path / "boots"
    series.mkdir()
    for n, path in enumerate((captures.base(), first, second.after)):
        shutil.copy(path, series / f"sample-{n:05d}.dmaprof")
    out = tmp_path / "boots.pftrace"
    made = dmaprof("export", series, "-o", out)
    assert made.code == 0, made.stderr
    assert "rebooted" in made.stderr and "last boot" in made.stderr
    doc = json.loads(dmaprof("trend", series, "--format", "json").stdout)
    assert doc["reboots"] == 1
    ts = {1: 40_500_000_000, 2: 100_750_000_000}
    decoded = decode(out)
    check_counters(decoded, doc, trend_values(trend(series)), ts)
    stamps = {t for points in decoded.counters.values() for t, _ in points}
    assert stamps == set(ts.values())  # nothing of the first boot
    one = tmp_path / "one.pftrace"
    assert dmaprof("export", series / "@2", "-o", one).code == 0
    single = decode(one)
    assert {t for points in single.counters.values() for t, _ in points} == {ts[2]}
