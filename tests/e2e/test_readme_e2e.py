"""The README's first steps, run as written: the leak fixtures (show, diff, trend --plot) and
"Try it live" against `scripts/demo-phone` (devices, snapshot, show, top, record, trend, diff).

Each command line is taken from README.md itself and run with bash in a scratch directory
that looks like the repository root to it: `.venv/bin/dmaprof` (and `.venv/bin/activate`)
run this interpreter's dmaprof, and `fixtures/captures/demo` is a copy (trend writes its cache
beside the samples). The only change to a line: the demo phone's port in `adb connect`, as
the test runs the phone on a free port (and its own adb server, never 5037)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO
from tests.emuphone.demo import DEMO_PHONE, DemoPhoneProcess
from tests.emuphone.harness import port_open

README = REPO / "README.md"


def readme_block(after: str) -> list[str]:
    """The command lines of the first ```sh block after the line containing ``after``."""
    text = README.read_text()
    start = text.index(after)
    match = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert match, f"no sh block after {after!r}"
    return [line for line in match.group(1).splitlines() if line.strip()]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A directory where the README's relative paths work."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    dmaprof = bin_dir / "dmaprof"
    dmaprof.write_text(f'#!/bin/sh\nexec {sys.executable} -m dmaprof "$@"\n')
    dmaprof.chmod(0o755)
    (bin_dir / "activate").write_text(f'PATH="{bin_dir}:$PATH"\nexport PATH\n')
    shutil.copytree(REPO / "fixtures" / "captures" / "demo", tmp_path / "fixtures/captures/demo")
    return tmp_path


def run_line(
    line: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"source .venv/bin/activate && {line}"],
        cwd=cwd,
        env={**(env or {}), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_readme_perfetto_trace_of_the_demo_series(workspace: Path) -> None:
    """README's Perfetto line, as written, on the bundled demo series: decoded with
    Perfetto's protos and checked against the trend of the same series."""
    from dmaprof.capture.container import load_capture
    from dmaprof.leaks.series import read_series
    from dmaprof.leaks.trend import trend
    from tests.leaks.tracecheck import check_counters, check_verdicts, decode, trend_values

    (line,) = readme_block("### A Perfetto trace")
    r = run_line(line, workspace)
    assert r.returncode == 0, r.stderr
    assert "boot-clock time is estimated from the host clock" in r.stderr  # a frozen uptime
    series = workspace / "fixtures/captures/demo/series"
    result = trend(series)
    doc = result.doc
    decoded = decode(workspace / "dmabuf.pftrace")
    # the demo phone's /proc/uptime is frozen: the first sample's uptime, then host time
    _, refs, _, _ = read_series(series)
    up = load_capture(refs[0].path).meta["collection"]["uptime_start"]
    assert {load_capture(r.path).meta["collection"]["uptime_start"] for r in refs} == {up}
    ts = {n: round(up * 1e9) + round((ref.t - refs[0].t) * 1e9) for n, ref in enumerate(refs)}
    assert check_counters(decoded, doc, trend_values(result), ts) > 100
    last = result.points.groupby(["kind", "key"], observed=True)["sample"].max()
    check_verdicts(decoded, doc, {f"{k}/{key}": ts[int(n)] for (k, key), n in last.items()})
    leaky = next(r for r in doc["leaks"] if r["kind"] == "process")
    new = decoded.instants[f"new buffers: process {leaky['label']}"]
    # as many new buffers as the process gained, each named and sized as the leak's
    assert len(new) == leaky["delta_buffers"] == 6
    assert {(a["name"], a["size_bytes"]) for _t, _n, a in new} == {("leaky-thumbnail", 4 << 20)}
    assert len({a["inode"] for _t, _n, a in new}) == len(new)


def test_readme_leak_fixture_commands(workspace: Path) -> None:
    lines = readme_block("Then find a leak")
    assert [line.split()[1] for line in lines] == ["show", "diff", "trend"]
    out = {}
    for line in lines:
        r = run_line(line, workspace)
        assert r.returncode == 0, (line, r.stderr)
        out[line.split()[1]] = r.stdout
    assert "com.example.leaky" in out["show"]
    # the pair: one device, five buffers leaked between the two snapshots
    suspects = out["diff"].split("Leak suspects", 1)[1]
    assert re.search(
        r"com\.example\.leaky \(\d+\) holds 5 more buffers named\s+'leaky-thumbnail'", suspects
    ), suspects
    assert "refus" not in out["diff"]
    # the series: the same leak, flagged with its growth
    assert re.search(r"LEAK: process com\.example\.leaky \(\d+\) grows", out["trend"])
    assert re.search(r"LEAK: buffers named 'leaky-thumbnail' grow", out["trend"])
    html = (workspace / "trend.html").read_text()
    assert "<svg" in html and "com.example.leaky" in html


@pytest.mark.slow
def test_readme_try_it_live(workspace: Path) -> None:
    lines = readme_block("In a second terminal")
    assert lines[0] == "source .venv/bin/activate"
    commands = [line.split()[1] for line in lines[1:]]
    assert commands[0] == "connect" and {"devices", "snapshot", "show", "top", "record"} <= set(
        commands
    )
    assert {"trend", "diff"} <= set(commands)
    with DemoPhoneProcess(workdir=workspace / "phone") as phone:
        env = phone.env
        outputs: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line.startswith("adb connect "):
                assert line == "adb connect 127.0.0.1:5600"  # the demo's default port
                line = f"adb connect {phone.serial}"
            r = run_line(line, workspace, env)
            assert r.returncode == 0, (line, r.stdout, r.stderr)
            assert "Traceback" not in r.stderr
            outputs.append((line, r.stdout))
        built = re.search(r"building the phone in (\S+)", phone._read(phone._err))
    assert phone.returncode == 0, phone.stderr
    assert "nothing left running" in phone.stderr
    got = dict(outputs)
    assert "connected to" in got[f"adb connect {phone.serial}"]
    assert phone.serial in got["dmaprof devices"]
    show = got["dmaprof show before.dmaprof"]
    assert "com.example.leaky" in show and "surfaceflinger" in show
    assert "surfaceflinger" in got["dmaprof top --count 3"]
    samples = (workspace / "series" / "samples.ndjson").read_text().splitlines()
    assert len(samples) >= 8
    assert re.search(
        r"LEAK: process com\.example\.leaky \(\d+\) grows", got["dmaprof trend series/"]
    )
    diff = got["dmaprof diff before.dmaprof after.dmaprof"]
    assert re.search(r"com\.example\.leaky \(\d+\) holds \d+ more buffers named", diff), diff
    # Ctrl-C left nothing: both ports closed, the phone's files gone
    assert not port_open(phone.port) and not port_open(phone.adb_port)
    assert built and not Path(built.group(1)).exists()


def test_demo_phone_says_why_it_cannot_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, str(DEMO_PHONE), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 1
    assert (
        r.stderr == f"demo-phone: cannot start: port {port} is taken: choose another with --port\n"
    )
    r = subprocess.run(
        [sys.executable, str(DEMO_PHONE)],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert r.stderr.startswith(
        "demo-phone: cannot start: adb, mksh, toybox, busybox not found: install the "
        "Debian/Ubuntu packages (sudo apt-get install adb mksh toybox busybox-static)"
    )
    assert len(r.stderr.splitlines()) == 1
