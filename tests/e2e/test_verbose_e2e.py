"""`-v` through the real adb server and the emulated phone: every stage of a snapshot and of
each recorded sample is logged with its time, one plain line each, on stderr only (what a
user pastes when reporting a slow snapshot)."""

from __future__ import annotations

import re
from pathlib import Path

from dmaprof.capture.container import load_capture
from tests.e2e.conftest import run_dmaprof
from tests.emuphone.harness import EmulatedPhone

LINE = re.compile(r"dmaprof: (.+): (\d+) ms")


def _stages(stderr: bytes) -> list[str]:
    return [m[1] for line in stderr.decode().splitlines() if (m := LINE.fullmatch(line))]


def test_verbose_snapshot_times_each_stage(phone: EmulatedPhone, tmp_path: Path) -> None:
    out = tmp_path / "x.dmaprof"
    result = run_dmaprof("-v", "snapshot", "-s", phone.serial, "-o", out, env=phone.env)
    assert result.returncode == 0, result.stderr
    stages = _stages(result.stderr)
    # in the order they ran: probe the device, push, run, pull, clean up, write, then the view
    assert stages[:6] == [
        "find the device",
        "push the collector",
        "run the collector",
        "pull the dump",
        "clean up on the device",
        "write the capture",
    ], stages
    dump_bytes = len(load_capture(out).dump)
    assert stages[6] == f"analyse {out} ({dump_bytes:,} bytes of dump)", stages
    assert stages[7:] == ["render the report as table", "dmaprof snapshot, in all"], stages
    # stdout is the view only: no log line reached it
    assert b" ms" not in result.stdout and b"surfaceflinger" in result.stdout
    # without -v: none of it
    quiet = run_dmaprof("snapshot", "-s", phone.serial, "-o", out, "--force", env=phone.env)
    assert quiet.returncode == 0, quiet.stderr
    assert _stages(quiet.stderr) == []


def test_verbose_record_times_each_sample(phone: EmulatedPhone, tmp_path: Path) -> None:
    out = tmp_path / "series"
    result = run_dmaprof(
        "-v",
        "record",
        "-s",
        phone.serial,
        "--count",
        "2",
        "--interval",
        "200ms",
        "-o",
        out,
        env=phone.env,
    )
    assert result.returncode == 0, result.stderr
    stages = _stages(result.stderr)
    for n in (1, 2):
        assert f"sample {n}" in stages, stages
    # each sample's own stages come before its line
    first = stages.index("sample 1")
    assert stages[first - 4 : first] == [
        "push the collector",
        "run the collector",
        "pull the dump",
        "clean up on the device",
    ], stages
    assert stages[-2:] == ["trend figures of the last samples", "dmaprof record, in all"], stages
    assert result.stdout == b""
