"""Say it once, in one form (issue 15): warnings once, on stderr; usage errors as one
`dmaprof: error:` line (exit 2); a missing or unreadable input exits 9 in every command; an
empty view is a sentence, not an empty table; --pid narrows every table it can and says
which figures stay device-wide. Real subprocesses of the real entry point, on the bundled
captures (the emulated phone through the real adb stack) and a raw dmabuf_dump sample."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "fixtures" / "captures" / "demo"
SHELL_CAPTURE = REPO / "fixtures" / "captures" / "pixel-like-shell.dmaprof"
TABLE_CHARS = set("┏┓┗┛┃━┡┩│└┘")


def run(*args: str | Path, user: int | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dmaprof", *map(str, args)]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("dmaprof: error: "), r.stderr
    assert "Traceback" not in r.stderr and "Usage:" not in r.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["show", DEMO / "after.dmaprof", "--by", "bogus"],
        ["bogus"],
        ["diff", DEMO / "after.dmaprof"],
        ["trend", DEMO / "series", "--top", "0"],
        ["export", "-o", "x"],
    ],
    ids=["bad-choice", "no-such-command", "missing-argument", "bad-range", "missing-captures"],
)
def test_usage_errors_are_one_line(args: list[str | Path]) -> None:
    r = run(*args)
    assert r.returncode == 2
    line = one_error_line(r)
    assert "--help'" in line  # where to read more


def test_dmaprof_alone_still_shows_the_help() -> None:
    r = run()
    assert "Commands:" in r.stdout + r.stderr


@pytest.fixture
def request_cleanup() -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def test_missing_or_unreadable_input_is_exit_9_everywhere(
    tmp_path: Path, request_cleanup: list[Path]
) -> None:
    missing = tmp_path / "missing.dmaprof"
    after = DEMO / "after.dmaprof"
    cases = [
        ["show", missing],
        ["diff", missing, after],
        ["diff", after, missing],
        ["diff", after, after, "--budgets", tmp_path / "missing.toml"],
        ["trend", tmp_path / "no-series"],
        ["export", missing, "-o", tmp_path / "ds"],
        ["import", tmp_path / "missing.txt", "-o", tmp_path / "x.dmaprof"],
    ]
    for args in cases:
        r = run(*args)
        assert r.returncode == 9, (args, r.stderr)
        assert "no such" in one_error_line(r)
    # unreadable: a copy only its owner (root) may read, opened by another user, in a
    # directory that user may enter and write (pytest's own tmp_path is root's, 0700)
    import tempfile

    locked = Path(tempfile.mkdtemp(prefix="dmaprof-locked-"))
    request_cleanup.append(locked)
    locked.chmod(0o777)
    copy = locked / "after.dmaprof"
    shutil.copy(after, copy)
    copy.chmod(0o600)
    series = locked / "series"
    shutil.copytree(DEMO / "series", series)
    series.chmod(0o700)
    if os.geteuid() != 0:
        pytest.skip("needs root to run dmaprof as another user")  # the missing cases ran
    for args in (["show", copy], ["diff", copy, copy], ["import", copy, "-o", locked / "o.dmaprof"],
                 ["export", copy, "-o", locked / "ds"], ["trend", series]):  # fmt: skip
        r = run(*args, user=65534)
        assert r.returncode == 9, (args, r.stderr)
        assert "cannot read" in one_error_line(r).lower()


def test_help_and_readme_document_exit_9_for_missing_input() -> None:
    help_text = run("show", "--help").stdout
    assert "9    bad input (missing, unreadable, not a capture" in help_text
    readme = (REPO / "README.md").read_text()
    assert "| 9 | bad input: a file missing or unreadable" in readme


def test_warnings_once_on_stderr(tmp_path: Path) -> None:
    r = run("show", SHELL_CAPTURE)
    assert r.returncode == 0
    assert r.stderr.count("processes could not be read") == 1
    assert "could not be read (" not in r.stdout
    # a table saved to a file stands on its own and keeps the warning
    saved = tmp_path / "report.txt"
    r = run("show", SHELL_CAPTURE, "-o", saved)
    assert "warning: 11 processes could not be read" in saved.read_text()


def test_empty_views_are_sentences() -> None:
    r = run("show", DEMO / "after.dmaprof", "--by", "binder")
    assert r.returncode == 0
    body = r.stdout.split("processes read\n", 1)[1]
    assert not TABLE_CHARS & set(body)
    assert body.strip() == (
        "No binder debug files on this device (binderfs binder_logs and debugfs binder are "
        "both absent)."
    )
    r = run("show", DEMO / "after.dmaprof", "--by", "device")
    assert not TABLE_CHARS & set(r.stdout.split("processes read\n", 1)[1])
    assert "No attachment data: this kernel has no debugfs bufinfo" in r.stdout
    # --pid of no such process: one sentence where the tables were
    r = run("show", DEMO / "after.dmaprof", "--pid", "99999")
    assert r.returncode == 0 and r.stderr == ""
    assert "No process 99999 holds a DMA-BUF in this capture." in r.stdout
    assert "Top holders" not in r.stdout and "Exporters" not in r.stdout
    for by in ("process", "buffer", "exporter", "name"):
        r = run("show", DEMO / "after.dmaprof", "--pid", "99999", "--by", by)
        body = r.stdout.split("processes read\n", 1)[1]
        assert body.strip() == "No process 99999 holds a DMA-BUF in this capture.", by


def test_pid_narrows_every_table_it_can() -> None:
    full = json.loads(run("show", DEMO / "after.dmaprof", "--format", "json").stdout)
    leaky = next(p for p in full["processes"] if p["display_name"] == "com.example.leaky")
    pid = leaky["pid"]
    r = run("show", DEMO / "after.dmaprof", "--pid", str(pid), "--format", "json")
    doc = json.loads(r.stdout)
    assert [p["pid"] for p in doc["processes"]] == [pid]
    held = [b for b in full["buffers"] if pid in b["holders"]]
    assert doc["buffers"] == held and len(held) == leaky["buffers"]
    # exporters and names recounted from its buffers: they add up to its rss
    assert sum(e["bytes"] for e in doc["exporters"]) == leaky["rss_bytes"]
    assert sum(n["buffers"] for n in doc["names"]) == leaky["buffers"]
    names = {n["name"]: n["buffers"] for n in doc["names"]}
    assert names["leaky-thumbnail"] == sum(1 for b in held if b["name"] == "leaky-thumbnail")
    assert doc["filter"] == {
        "pid": pid,
        "device_wide": ["totals", "apps", "cgroups", "kernel_only", "attached_devices"],
    }
    assert doc["totals"] == full["totals"]  # device-wide, and said so
    table = run("show", DEMO / "after.dmaprof", "--pid", str(pid)).stdout
    assert (
        f"--pid {pid}: com.example.leaky and the {len(held)} buffers it holds; the totals, "
        "apps, cgroups and attached devices are the whole device's."
    ) in table


def test_raw_dmabuf_dump_limitations_are_one_short_block(tmp_path: Path) -> None:
    capture = tmp_path / "dd.dmaprof"
    source = REPO / "fixtures" / "dmabuf_dump" / "android16_default.txt"
    assert run("import", source, "-o", capture).returncode == 0
    r = run("show", capture)
    assert r.returncode == 0
    head = r.stdout.split("Totals", 1)[0]
    assert "unknown here" not in head
    block = [line for line in head.splitlines() if line.startswith("Unknown in this capture")]
    assert len(block) == 1
    assert len(head.splitlines()) <= 5  # header, coverage, the block (wrapped at 120)
    for words in ("the device", "cgroups", "process start times", "no dmabuf_dump -b"):
        assert words in head.replace("\n", " ")
