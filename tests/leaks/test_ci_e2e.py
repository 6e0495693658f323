"""The docs/ci.md workflow, run for real: scripts/ci-emulator.sh against the emulated phone.

The emulator runner's `script:` line is `bash scripts/ci-emulator.sh`; here the same script
runs with its environment pointed at the emulated phone (ANDROID_SERIAL, the adb server's
port), with GitHub's variables set (GITHUB_ACTIONS, GITHUB_STEP_SUMMARY), and a "test
suite" that makes an app leak on the phone. The job must fail with exit 10 (a budget
breach, not an error), write the JUnit file and append the summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from dmaprof.capture.container import load_capture
from dmaprof.errors import ExitCode
from tests.emuphone import scene as S
from tests.emuphone.harness import AdbServer
from tests.leaks import phonescene as P
from tests.leaks.conftest import REPO

MiB = 1024 * 1024
BUDGETS = """\
min = "1MiB"
fail_on = ["buffers>100"]

[[budget]]
select = "total"
warn = "4MiB"
fail = "64MiB"

[[budget]]
select = "app:*"
fail = "6MiB"

[[budget]]
select = "process:surfaceflinger"
fail = "1MiB"
"""


@pytest.fixture
def job(adb_server: AdbServer, need_device_tools: None, tmp_path: Path) -> Any:
    work = P.scratch_dir()
    scene = P.pixel()
    root = P.build_root(scene, work / "root")
    phone = adb_server.phone(root)
    leaked = P.pixel()
    P.leak(leaked, 3100, 8, MiB, "SurfaceView - com.example.camera#0")  # +8 MiB: over 6 MiB
    (tmp_path / "leaked.json").write_text(json.dumps(leaked))
    (tmp_path / "budgets.toml").write_text(BUDGETS)
    summary = tmp_path / "summary.md"
    env = {
        **phone.env,
        "DMAPROF": f"{sys.executable} -m dmaprof",
        "DMAPROF_OUT": str(tmp_path / "dmaprof-out"),
        "DMAPROF_BUDGETS": str(tmp_path / "budgets.toml"),
        "DMAPROF_TEST_CMD": f"{sys.executable} -m tests.leaks.phonescene rebuild {root} "
        f"{tmp_path / 'leaked.json'}",
        "DMAPROF_BOOT_TIMEOUT": "30",
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    env.pop("EMULATOR_PORT", None)
    yield env, tmp_path, summary, root
    phone.stop()
    S.remove_tree(work)


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "ci-emulator.sh")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ci_emulator_script_fails_the_job_on_a_leak(job: Any) -> None:
    env, tmp_path, summary, _root = job
    result = run_script(env)
    assert result.returncode == ExitCode.BUDGET_BREACHED, result.stderr
    out = tmp_path / "dmaprof-out"
    assert sorted(p.name for p in out.iterdir()) == [
        "after.dmaprof",
        "before.dmaprof",
        "diff.json",
        "dmaprof-junit.xml",
    ]
    assert load_capture(out / "before.dmaprof").meta["collection"]["complete"]
    doc = json.loads((out / "diff.json").read_text())
    assert doc["totals"]["delta_bytes"] == 8 * MiB
    assert doc["suspects"][0]["reason"].startswith(
        "com.example.camera (3100) holds 8 more buffers named "
        "'SurfaceView - com.example.camera#0' (+8.0 MiB), all held by fd only, none freed"
    )
    # JUnit: one testcase per rule; the app rule failed, the others passed
    suite = ET.parse(out / "dmaprof-junit.xml").getroot()[0]
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == ["buffers>100", "total", "app:*", "process:surfaceflinger"]
    assert {c.get("classname") for c in cases.values()} == {"dmaprof.budget"}
    failed = [n for n, c in cases.items() if c.find("failure") is not None]
    assert failed == ["app:*"]
    # the step summary: verdict first, then the top growths
    text = summary.read_text()
    assert text.startswith("### ❌ dmaprof: DMA-BUF budget breached: 1 of 4 rules failed\n")
    assert "| FAIL | app:* | app:*: com.example.camera +8.0 MiB; fail limit &gt; 6.0 MiB |" in text
    assert "| warn | total |" in text
    assert "#### Top growth by process" in text
    # annotations (workflow commands) for the failed and the warned rule
    assert (
        "::error title=dmaprof budget app%3A*::app:*: com.example.camera +8.0 MiB; fail "
        "limit > 6.0 MiB" in result.stderr
    )
    assert (
        "::warning title=dmaprof budget total::total grew by +8.0 MiB; warn limit > 4.0 "
        "MiB" in result.stderr
    )
    # the job log shows the table too
    assert "Leak suspects" in result.stdout
    assert text.count("dmaprof: DMA-BUF budget") == 1


def test_ci_emulator_script_within_budget_keeps_the_test_suites_failure(job: Any) -> None:
    env, _tmp_path, summary, _root = job
    env["DMAPROF_TEST_CMD"] = "exit 3"  # the suite fails, and leaks nothing
    result = run_script(env)
    assert result.returncode == 3, result.stderr  # the tests' own failure is the job's
    assert summary.read_text().startswith("### ✅ dmaprof: DMA-BUF within budget: 4 rules passed")
    assert "::error" not in result.stderr


def test_ci_emulator_script_on_an_image_without_root_reports_unknown_rules(
    adb_server: AdbServer, need_device_tools: None, tmp_path: Path
) -> None:
    """A production image: adbd stays the shell user, so kernel-only bytes cannot be told.
    The rule is neither passed nor breached: JUnit skips it with the reason, the summary
    says UNKNOWN, and the job exits 12 (10 is only for real breaches)."""
    work = P.scratch_dir()
    root = P.build_root(P.pixel(), work / "root", user_build=True)
    phone = adb_server.phone(root, shell_uid=2000)
    try:
        summary = tmp_path / "summary.md"
        env = {
            **phone.env,
            "DMAPROF": f"{sys.executable} -m dmaprof",
            "DMAPROF_OUT": str(tmp_path / "out"),
            "DMAPROF_TEST_CMD": "true",
            "DMAPROF_FAIL_ON": "kernel_only>1MiB total>1MiB",
            "DMAPROF_BOOT_TIMEOUT": "30",
            "GITHUB_ACTIONS": "true",
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        env.pop("EMULATOR_PORT", None)
        result = run_script(env)
        assert result.returncode == ExitCode.VERDICT_UNKNOWN, result.stderr
        suite = ET.parse(tmp_path / "out" / "dmaprof-junit.xml").getroot()[0]
        assert suite.get("skipped") == "1" and suite.get("failures") == "0"
        cases = {c.get("name"): c for c in suite.iter("testcase")}
        skipped = cases["kernel_only>1MiB"].find("skipped")
        assert skipped is not None
        assert skipped.get("message", "").startswith("unknown: kernel_only: unknown")
        assert "uid 2000" in skipped.get("message", "")
        assert cases["total>1MiB"].find("skipped") is None
        text = summary.read_text()
        assert text.startswith(
            "### ❔ dmaprof: DMA-BUF budget unknown: 1 of 2 rules could not be judged\n"
        )
        assert "| UNKNOWN | kernel_only&gt;1MiB | kernel_only: unknown" in text
        assert (
            "::warning title=dmaprof budget kernel_only>1MiB::kernel_only: unknown" in result.stderr
        )
        doc = json.loads((tmp_path / "out" / "diff.json").read_text())
        assert doc["budgets"]["status"] == "unknown" and doc["totals"]["delta_bytes"] == 0
    finally:
        phone.stop()
        S.remove_tree(work)
