"""The bundled sample capture gives the figures computed by hand from its scene, and the
README's "try it" command works as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "fixtures" / "captures" / "pixel-like.dmaprof"
EXPECTED = json.loads((REPO / "fixtures" / "phones" / "pixel-like.expected.json").read_text())


def show_json(capture: Path, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "dmaprof", "show", str(capture), "--format", "json", *args],
        capture_output=True,
        check=True,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_sample_totals_match_the_hand_computed_figures() -> None:
    report = show_json(SAMPLE)
    assert report["schema"] == "dmaprof.report/1"
    totals = report["totals"]
    want = EXPECTED["totals"]
    assert totals["buffers"] == want["buffers"]
    assert totals["bytes"] == want["total_bytes"]
    assert totals["userspace_bytes"] == want["userspace_rss_bytes"]
    assert totals["kernel_only_bytes"] == want["kernel_only_bytes"]
    assert sorted(b["inode"] for b in report["kernel_only"]) == want["kernel_only_inodes"]
    assert report["coverage"]["processes_unreadable"] == 0


def test_sample_processes_match_the_hand_computed_figures() -> None:
    report = show_json(SAMPLE)
    got = {p["pid"]: p for p in report["processes"]}
    for pid_text, want in EXPECTED["processes"].items():
        pid = int(pid_text)
        if not want["buffers"]:
            assert pid not in got or got[pid]["rss_bytes"] == 0
            continue
        assert got[pid]["rss_bytes"] == want["rss_bytes"], pid
        assert got[pid]["pss_bytes"] == want["pss_bytes"], pid
        assert got[pid]["buffers"] == len(want["buffers"]), pid
    # under the full policy every process is charged its rss
    full = {p["pid"]: p for p in show_json(SAMPLE, "--charge", "full")["processes"]}
    assert {pid: p["pss_bytes"] for pid, p in full.items()} == {
        pid: p["rss_bytes"] for pid, p in full.items()
    }


def test_sample_exporters_and_buffers() -> None:
    report = show_json(SAMPLE)
    exporters = {e["exporter"]: e for e in report["exporters"]}
    for name, want in EXPECTED["exporters"].items():
        assert exporters[name]["buffers"] == want["count"]
        assert exporters[name]["bytes"] == want["bytes"]
    holders = {b["inode"]: sorted(b["holders"]) for b in report["buffers"]}
    assert holders == {int(k): v for k, v in EXPECTED["holders"].items()}


def test_sample_as_shell_user_is_labelled_a_lower_bound() -> None:
    report = show_json(REPO / "fixtures" / "captures" / "pixel-like-shell.dmaprof")
    assert report["coverage"]["processes_unreadable"] > 0
    assert report["coverage"]["lower_bound"] is True
    assert report["totals"]["bytes"] == EXPECTED["totals"]["total_bytes"]


def test_bundled_root_and_shell_pair_diff_is_no_leak() -> None:
    """The bundled pair is one phone, root then the shell user (same serial and boot):
    nothing happened on it, so no suspect and no breach; what the shell user could not see
    is unknown, and the buffer inventory is exact."""
    captures = REPO / "fixtures" / "captures"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dmaprof",
            "diff",
            str(captures / "pixel-like.dmaprof"),
            str(captures / "pixel-like-shell.dmaprof"),
            "--format",
            "json",
            "--fail-on",
            "kernel_only>1MiB",
            "--fail-on",
            "total>1MiB",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 12, result.stderr  # unknown: neither a pass nor a breach
    doc = json.loads(result.stdout)
    assert (doc["same_device"], doc["same_boot"], doc["suspects"]) == (True, True, [])
    t = doc["totals"]
    assert t["bytes_before"] == t["bytes_after"] == EXPECTED["totals"]["total_bytes"]
    assert (t["delta_bytes"], t["delta_buffers"], t["delta_kernel_only_bytes"]) == (0, 0, None)
    assert [c["status"] for c in doc["budgets"]["checks"]] == ["unknown", "pass"]
    unknown = sorted(r["pid"] for r in doc["processes"] if r["delta_rss_bytes"] is None)
    assert unknown == [1, 590, 598, 612, 640, 700, 1200, 1800, 3100, 3160, 3300]
    known = [r for r in doc["processes"] if r["delta_rss_bytes"] is not None]
    assert [(r["pid"], r["delta_rss_bytes"], r["delta_buffers"]) for r in known] == [(4100, 0, 0)]
    assert doc["buffers"]["moved_count"] == 0 and doc["buffers"]["new_count"] == 0


def test_readme_bundled_pair_command_runs_as_written() -> None:
    text = (REPO / "README.md").read_text()
    match = re.search(
        r"```sh\n(dmaprof diff fixtures/captures/pixel-like\.dmaprof .+?)\n```", text, re.DOTALL
    )
    assert match, "README shows no diff of the bundled pair"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", match.group(1)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 12, result.stderr  # as the README's comment says
    assert "No leak suspects." in result.stdout and "| UNKNOWN" not in result.stdout
    assert "UNKNOWN │ kernel_only>1MiB" in result.stdout


def _readme_try_command() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Try it without a phone", 1)[1]
    match = re.search(r"```sh\n(.+?)\n```", section, re.DOTALL)
    assert match, "README has no try-it command"
    return match.group(1).strip()


@pytest.mark.slow
def test_readme_try_command_works_as_written(tmp_path: Path) -> None:
    """Run the README's one-line command in a clean copy of the repository."""
    copy = tmp_path / "dmaprof"
    shutil.copytree(
        REPO,
        copy,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", ".*_cache"),
    )
    command = _readme_try_command()
    result = subprocess.run(
        ["bash", "-c", command], cwd=copy, capture_output=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    out = result.stdout.decode()
    assert "surfaceflinger" in out and "Totals" in out, out[-3000:]
