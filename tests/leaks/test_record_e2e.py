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
from dmaprof.leaks.series import CACHE_DIR, RecordPlan, load_input, read_series, record_series
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
    assert load_input(refs[-1].path).meta["transport"]["serial"] == phone.serial
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
        cached = samplecache.load_columns(ref.path, "shared")
        assert cached is not None, ref.path
        fresh = sample_outcome(ref.path, "shared", use_cache=False)
        assert not isinstance(fresh, str)
        assert cached[1] == fresh[1]
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
        wait_for_path("sample-00001.dmaprof-sample", out, timeout=60)
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
        load_input(ref.path)  # every listed sample is complete
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


def check_perfetto_export(
    dmaprof: Any, series: Path, out: Path, taken: list[Any], leaked: list[int]
) -> None:
    """The series as a Perfetto trace, decoded with Perfetto's protos: every track, unit,
    value and time against `dmaprof trend --format json` and the samples' own uptimes; an
    instant per leak verdict; the leaking process's new buffers, one per sample."""
    from tests.leaks.tracecheck import check_counters, check_verdicts, decode, trend_values

    made = dmaprof("export", series, "--format", "perfetto", "-o", out)
    assert made.code == 0, made.stderr
    assert "estimated" not in made.stderr  # every sample has its own uptime
    shown = dmaprof("trend", series, "--format", "json")
    doc = json.loads(shown.stdout)
    result = trend(series)
    assert result.doc == doc
    # each sample's boot clock: the uptime its collector read on the phone
    ts = {n: round(m["collection"]["uptime_start"] * 1e9) for n, (_d, m) in enumerate(taken)}
    assert sorted(ts.values()) == list(ts.values()) and len(set(ts.values())) == 5
    decoded = decode(out)
    assert check_counters(decoded, doc, trend_values(result), ts) > 20
    points = result.points
    last = points.groupby(["kind", "key"], observed=True)["sample"].max()
    check_verdicts(decoded, doc, {f"{k}/{key}": ts[int(n)] for (k, key), n in last.items()})
    leak = next(r for r in doc["leaks"] if r["kind"] == "process" and r["pid"] == 3100)
    new = decoded.instants[f"new buffers: process {leak['label']}"]
    assert [(t, a["inode"], a["size_bytes"]) for t, _n, a in new] == [
        (ts[n + 1], inode, MiB) for n, inode in enumerate(leaked[:4])
    ]  # one buffer leaked after each of the first four samples (the fifth: after the last)
    assert all(a["name"] == "SurfaceView - com.example.camera#0" for _t, _n, a in new)
    assert all("3100" in a["holders"].split(", ") for _t, _n, a in new)


def test_compact_series_addressed_shown_diffed_trended_and_cut_short(
    fake_phone: Any, tmp_path: Path, dmaprof: Any
) -> None:
    """A compact series (dmaprof.series/2) from the emulated phone: every sample loads
    byte for byte as the capture it was, `@first`/`@last`/`@N` work in show and diff, a
    sample is written out as a standalone capture, and a series cut short says so."""
    from dmaprof.capture.container import write_capture
    from dmaprof.leaks.series import load_input

    scene = P.pixel()
    phone, root = fake_phone(scene)
    taken: list[Any] = []
    leaked: list[int] = []

    def leak_one_more(index: int) -> None:
        leaked.extend(P.leak(scene, 3100, 1, MiB, "SurfaceView - com.example.camera#0"))
        up, idle = (float(x) for x in str(scene["uptime"]).split())
        scene["uptime"] = f"{up + 60.25:.2f} {idle + 100:.2f}"  # the boot clock moves on
        P.rebuild(root, scene)

    with client_env(phone.env):
        sampler = AdbSampler(phone.serial, timeout=20)

        def keep() -> Any:
            capture = sampler()
            taken.append((capture.dump, dict(capture.meta)))
            return capture

        out = tmp_path / "compact"
        record_series(
            out, RecordPlan(60.0, count=5), keep, clock=FakeClock(), after_slot=leak_one_more
        )
    header, refs, gaps, warnings = read_series(out)
    assert header["schema"] == "dmaprof.series/2" and (len(refs), gaps, warnings) == (5, 0, [])
    assert all(r.path.name.endswith(".dmaprof-sample") for r in refs)
    for ref, (dump, _meta) in zip(refs, taken, strict=True):
        assert load_input(ref.path).dump == dump  # every sample, byte for byte
    standalone = sum(len(d) for d, _ in taken)
    stored = sum(r.path.stat().st_size for r in refs[1:])
    assert stored * 10 < standalone  # the deltas cost well under a tenth of the dumps
    assert load_input(out / "@last").dump == taken[-1][0]
    assert load_input(out / "@2").dump == taken[2][0]
    shown = dmaprof("show", out / "@last", "--format", "json")
    assert shown.code == 0, shown.stderr
    assert json.loads(shown.stdout)["schema"].startswith("dmaprof.report/")
    diffed = dmaprof("diff", out / "@first", out / "@last", "--format", "json")
    assert diffed.code == 0, diffed.stderr
    suspects = json.loads(diffed.stdout)["suspects"]
    assert any(s.get("pid") == 3100 for s in suspects), suspects
    missing = dmaprof("show", out / "@9")
    assert missing.code == ExitCode.BAD_CAPTURE and "no sample 9" in missing.stderr
    # written out as a standalone capture, it is the capture the phone gave
    alone = write_capture(load_input(out / "@3"), tmp_path / "s3.dmaprof")
    assert load_capture(alone).dump == taken[3][0]
    written = dmaprof("import", out / "@4", "-o", tmp_path / "s4.dmaprof")
    assert written.code == 0, written.stderr
    assert load_capture(tmp_path / "s4.dmaprof").dump == taken[4][0]
    doc = trend(out).doc
    assert doc["samples"] == 5
    assert any(s["kind"] == "process" and s["pid"] == 3100 for s in doc["leaks"])
    check_perfetto_export(dmaprof, out, tmp_path / "dmabuf.pftrace", taken, leaked)
    # cut short: killed after writing sample 4 but before logging it, mid-line
    ndjson = out / "samples.ndjson"
    lines = ndjson.read_text().splitlines(keepends=True)
    ndjson.write_text("".join(lines[:3]) + lines[3][:20])
    (out / ".sample-00005.dmaprof-sample.x.tmp").write_bytes(b"DMAPROF-SAMPLE 1 {")
    state = json.loads((out / "series.json").read_text())
    (out / "series.json").write_text(json.dumps({**state, "status": "recording"}))
    _, refs, _, warnings = read_series(out)
    assert [r.index for r in refs] == [0, 1, 2, 3, 4]  # 3 and 4 taken back from their files
    assert any("last line is partly written" in w for w in warnings), warnings
    assert any("cut short" in w and "partly written, is left out" in w for w in warnings)
    cut = trend(out).doc
    assert cut["samples"] == 5 and any("cut short" in w for w in cut["warnings"])
