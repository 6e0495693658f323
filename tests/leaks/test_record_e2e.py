"""`record`, `trend` and `top` through the real adb server and the emulated phone.

The phone serves a fake root built from the pixel-like scene; between samples the test
rewrites that root (one more buffer held by pid 3100 each time) to make a process leak.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dmaprof.capture.container import load_capture
from dmaprof.collect.sampler import AdbSampler
from dmaprof.errors import ExitCode
from dmaprof.leaks import samplecache
from dmaprof.leaks.series import CACHE_DIR, RecordPlan, read_series, record_series
from dmaprof.leaks.trend import sample_outcome, trend
from tests.e2e.conftest import DMAPROF, start_dmaprof, wait_for_path
from tests.emuphone import scene as S
from tests.emuphone.harness import AdbServer, EmulatedPhone, client_env
from tests.leaks import phonescene as P
from tests.leaks.test_trend import FakeClock

MiB = 1024 * 1024


@pytest.fixture
def fake_phone(
    adb_server: AdbServer, need_device_tools: None
) -> Iterator[Callable[[dict[str, Any]], tuple[EmulatedPhone, Path]]]:
    made: list[tuple[EmulatedPhone, Path]] = []

    def start(scene: dict[str, Any]) -> tuple[EmulatedPhone, Path]:
        work = P.scratch_dir()
        root = P.build_root(scene, work / "root")
        phone = adb_server.phone(root)
        made.append((phone, work))
        return phone, root

    yield start
    for phone, work in made:
        phone.stop()
        S.remove_tree(work)


def record_in_process(
    phone: EmulatedPhone,
    out: Path,
    count: int,
    after_slot: Callable[[int], None] | None = None,
    retries: int = 0,
) -> None:
    with client_env(phone.env):
        record_series(
            out,
            RecordPlan(60.0, count=count, retries=retries),
            AdbSampler(phone.serial, timeout=20),
            clock=FakeClock(),
            after_slot=after_slot,
        )


def test_leaking_process_is_flagged_with_its_rate(fake_phone: Any, tmp_path: Path) -> None:
    scene = P.pixel()
    phone, root = fake_phone(scene)

    def leak_one_more(index: int) -> None:
        P.leak(scene, 3100, 1, MiB, "SurfaceView - com.example.camera#0")
        P.rebuild(root, scene)

    record_in_process(phone, tmp_path / "series", 6, leak_one_more)
    header, refs, gaps, _ = read_series(tmp_path / "series")
    assert (header["status"], len(refs), gaps) == ("complete", 6, 0)
    assert header["device"]["serial"] == phone.serial
    assert load_capture(refs[-1].path).meta["transport"]["serial"] == phone.serial
    doc = trend(tmp_path / "series").doc
    leak = doc["leaks"][0]
    assert (leak["kind"], leak["pid"], leak["name"]) == ("process", 3100, "com.example.camera")
    assert leak["slope_bytes_per_min"] == MiB  # one more 1 MiB buffer a minute
    assert leak["reason"].startswith(
        "process com.example.camera (3100) grows by +1.0 MiB/min (+1.00 buffers/min; +5.0 MiB "
        "over 5.0 min, 5 of 5 changes up, never down; confidence"
    )
    flagged = {s["label"] for s in doc["leaks"] if s["kind"] == "process"}
    assert flagged == {"com.example.camera (3100)"}


def test_steady_series_is_not_flagged(fake_phone: Any, tmp_path: Path) -> None:
    phone, _root = fake_phone(P.pixel())
    record_in_process(phone, tmp_path / "steady", 4)
    doc = trend(tmp_path / "steady").doc
    assert doc["samples"] == 4 and doc["leaks"] == []
    assert {s["verdict"] for s in doc["series"]} == {"steady"}


def test_device_gone_for_a_slot_leaves_a_gap(
    fake_phone: Any, adb_server: AdbServer, tmp_path: Path
) -> None:
    phone, _root = fake_phone(P.pixel())

    def outage(index: int) -> None:
        if index == 0:
            phone.kill()
        elif index == 1:
            phone.revive()
            adb_server.wait_state(phone.serial, "device", 30)

    record_in_process(phone, tmp_path / "gap", 3, outage)
    lines = [json.loads(x) for x in (tmp_path / "gap" / "samples.ndjson").read_text().splitlines()]
    assert [x["status"] for x in lines] == ["ok", "gap", "ok"]
    assert "offline" in lines[1]["error"] or "went away" in lines[1]["error"]


def test_record_trend_and_plot_commands(fake_phone: Any, tmp_path: Path, dmaprof: Any) -> None:
    phone, _root = fake_phone(P.pixel())
    out = tmp_path / "cli"
    run = subprocess.run(
        [*DMAPROF, "record", "--count", "3", "--interval", "100ms", "-o", str(out)],
        env=phone.env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == b""  # progress only on a terminal; data: none
    assert f"wrote 3 samples (0 gaps) to {out}".encode() in run.stderr
    assert json.loads((out / "series.json").read_text())["status"] == "complete"
    # record computed every sample's trend figures as it went: trend finds them all cached,
    # and they are the figures a fresh analysis gives
    _, refs, _, _ = read_series(out)
    for ref in refs:
        cached = samplecache.load(ref.path, "shared")
        assert cached is not None, ref.path
        fresh = sample_outcome(ref.path, "shared", use_cache=False)
        assert not isinstance(fresh, str)
        assert cached[1].to_dict("list") == fresh[1]
    plot = tmp_path / "trend.html"
    shown = dmaprof("trend", out, "--format", "json", "--plot", plot)
    assert shown.code == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["schema"] == "dmaprof.trend/2" and doc["samples"] == 3 and doc["leaks"] == []
    assert plot.read_text().startswith("<!DOCTYPE html>")
    table = dmaprof("trend", out)
    assert "DMA-BUF trend · Pixel-like 8 · 3 samples" in table.stdout
    usage = dmaprof("record", "--interval", "1s", "-o", tmp_path / "x")
    assert usage.code == ExitCode.USAGE and "exactly one of --count" in usage.stderr


def test_record_ctrl_c_exits_130_and_leaves_a_consistent_directory(
    fake_phone: Any, tmp_path: Path
) -> None:
    phone, root = fake_phone(P.pixel())
    out = tmp_path / "int"
    proc = start_dmaprof(
        "record", "--count", "500", "--interval", "200ms", "-o", out, env=phone.env
    )
    try:
        wait_for_path("sample-00001.dmaprof", out, timeout=60)
        proc.send_signal(signal.SIGINT)
        _stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    lines = stderr.decode().strip().splitlines()
    assert lines[-1].startswith("dmaprof: error: interrupted: ")
    header, refs, _gaps, _warnings = read_series(out)
    assert header["status"] == "interrupted" and header["samples"] == len(refs) >= 2
    for ref in refs:
        load_capture(ref.path)  # every listed sample is complete
    # no temp files; the only hidden entry is the trend figures record computed as it went
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] in ([], [CACHE_DIR])
    assert not list(out.rglob(".*.tmp"))
    deadline = time.monotonic() + 10
    while list((root / "data/local/tmp").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list((root / "data/local/tmp").iterdir()) == []  # nothing left on the phone


def test_top_batch_mode_and_ctrl_c(fake_phone: Any, dmaprof: Any) -> None:
    phone, root = fake_phone(P.pixel())
    run = dmaprof(
        "top",
        "--count",
        "2",
        "--interval",
        "100ms",
        "--rows",
        "5",
        env={k: v for k, v in phone.env.items() if k.startswith(("ANDROID_", "ADBUTILS_"))},
    )
    assert run.code == 0, run.stderr
    assert run.stdout.count("dmaprof top · Pixel-like 8") == 2  # piped: one view per refresh
    assert "Top holders (by pss / charged)" in run.stdout
    assert "surfaceflinger" in run.stdout
    proc = start_dmaprof("top", "--interval", "200ms", env=phone.env)
    try:
        wait_for_path("data/local/tmp/dmaprof-*", root, timeout=60)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err  # Ctrl-C is the normal way out of top
