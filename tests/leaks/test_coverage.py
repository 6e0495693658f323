"""Verdicts compare like with like: a side that could not see a figure makes it unknown.

The captures are the pixel-like phone collected by the real collector in a chroot, as root
and as the shell user (uid 2000) of a user build (other users' fd, fdinfo and maps closed).
Nothing changes on the phone between a root and a shell capture of one scene: every
difference the diff could report would come from the change of mode alone.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.leaks import phonescene as P
from tests.leaks.conftest import Captures

MiB = 1024 * 1024
SHELL = 2000
T0 = 1_700_000_000.0
SCREENCAP = 4100  # uid 2000: the one process the shell user can read
UNREADABLE = {1, 590, 598, 612, 640, 700, 1200, 1800, 3100, 3160, 3300}


def root_and_shell(captures: Captures) -> tuple[Path, Path]:
    return (
        captures.one("cov-root", P.pixel(), wallclock=T0),
        captures.one("cov-shell", P.pixel(), wallclock=T0 + 60, uid=SHELL),
    )


def diff_json(dmaprof: Any, before: Path, after: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    run = dmaprof("diff", before, after, "--format", "json", *args)
    return run, json.loads(run.stdout)


@pytest.mark.parametrize("order", ["root-then-shell", "shell-then-root"])
def test_a_change_of_mode_is_no_leak(captures: Captures, dmaprof: Any, order: str) -> None:
    root, shell = root_and_shell(captures)
    before, after = (root, shell) if order == "root-then-shell" else (shell, root)
    run, doc = diff_json(dmaprof, before, after)
    assert run.code == 0, run.stderr
    assert doc["schema"] == "dmaprof.diff/2" and doc["same_boot"] is True
    assert doc["suspects"] == []
    # the buffer inventory (sysfs) is exact on both sides: no change
    t = doc["totals"]
    assert (t["delta_bytes"], t["delta_buffers"]) == (0, 0)
    assert t["bytes_before"] == t["bytes_after"] == 76726272
    for key in ("kernel_only_bytes", "kernel_only_buffers", "userspace_bytes", "pss_bytes"):
        assert t[f"delta_{key}"] is None, key
    shell_side = "after" if after == shell else "before"
    assert t[f"kernel_only_bytes_{shell_side}"] is None
    # every unreadable process is listed, kept, with unknown deltas; never a decrease
    rows = {r["pid"]: r for r in doc["processes"]}
    assert set(rows) >= UNREADABLE
    for pid in UNREADABLE:
        r = rows[pid]
        assert r["status"] == "kept", r
        assert r[f"rss_bytes_{shell_side}"] is None
        for key in (
            "delta_rss_bytes",
            "delta_pss_bytes",
            "delta_buffers",
            "gained_buffers",
            "lost_buffers",
        ):
            assert r[key] is None, (pid, key)
    # the readable process is exact in rss; its pss is shared with unreadable holders
    cap = rows[SCREENCAP]
    assert (cap["delta_rss_bytes"], cap["delta_buffers"]) == (0, 0)
    assert cap["delta_pss_bytes"] is None
    assert doc["buffers"]["new_count"] == doc["buffers"]["freed_count"] == 0
    assert doc["buffers"]["moved_count"] == 0  # holders "lost" to unreadability moved nowhere
    exporters = {e["exporter"]: e for e in doc["exporters"]}
    assert exporters["system"]["delta_bytes"] == 0 and exporters["system"]["delta_buffers"] == 0
    assert exporters["system"]["delta_kernel_only_bytes"] is None
    assert all(n["delta_bytes"] is None for n in doc["names"])  # sysfs names no buffer
    apps = {a["uid"]: a for a in doc["apps"]}
    assert apps[10201]["delta_rss_bytes"] is None and apps[2000]["delta_rss_bytes"] == 0
    assert doc["coverage"][shell_side]["mode"] == "shell"
    assert doc["coverage"][shell_side]["processes_unreadable"] == len(UNREADABLE)
    line = doc["warnings"][0]
    assert "compared exactly" in line and "unknown (null, ?)" in line
    assert doc["unknown_reasons"] and "uid 2000" in doc["unknown_reasons"][0]


def test_tables_show_question_marks_and_say_why_once(captures: Captures, dmaprof: Any) -> None:
    root, shell = root_and_shell(captures)
    run = dmaprof("diff", root, shell, "--by", "process")
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    surfaceflinger = next(x for x in lines if "surfaceflinger" in x)
    assert "?" in surfaceflinger and "-" not in surfaceflinger.split("│")[6]
    notes = [x for x in lines if x.startswith("? = unknown:")]
    assert len(notes) == 1 and "uid 2000" in notes[0]


def test_rules_on_unknown_figures(captures: Captures, dmaprof: Any, tmp_path: Path) -> None:
    root, shell = root_and_shell(captures)
    junit = tmp_path / "junit.xml"
    summary = tmp_path / "summary.md"
    run = dmaprof(
        "diff",
        root,
        shell,
        "--fail-on",
        "kernel_only>1MiB",
        "--fail-on",
        "total>1MiB",
        "--junit",
        junit,
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert run.code == 12, run.stderr  # could not tell: neither 0 (pass) nor 10 (breach)
    assert "budget unknown: 1 of 2 rules could not be judged" in run.stderr
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    skipped = cases["kernel_only>1MiB"].find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("unknown: ")
    assert cases["kernel_only>1MiB"].find("failure") is None
    assert (
        cases["total>1MiB"].find("failure") is None and cases["total>1MiB"].find("skipped") is None
    )
    text = summary.read_text()
    assert text.startswith("### ❔ dmaprof: DMA-BUF budget unknown")
    assert "| UNKNOWN | kernel_only&gt;1MiB |" in text
    # the choice is the user's, and never a breach
    warn = dmaprof("diff", root, shell, "--fail-on", "kernel_only>1MiB", "--on-unknown", "warn")
    assert warn.code == 0 and "warning: kernel_only: unknown" in warn.stderr
    assert (
        dmaprof("diff", root, shell, "--fail-on", "kernel_only>1MiB", "--on-unknown", "pass").code
        == 0
    )
    # app:* over an unknown app is unknown too; a process rule on the readable one is judged
    _, doc = diff_json(
        dmaprof,
        root,
        shell,
        "--fail-on",
        "app:*>1MiB",
        "--fail-on",
        "process:screencap>1MiB",
        "--on-unknown",
        "pass",
    )
    checks = {c["name"]: c for c in doc["budgets"]["checks"]}
    assert checks["app:*>1MiB"]["status"] == "unknown" and checks["app:*>1MiB"]["unknown"]
    assert checks["process:screencap>1MiB"]["status"] == "pass"


def test_a_real_leak_is_still_found_across_modes(captures: Captures, dmaprof: Any) -> None:
    root = captures.one("cov-root", P.pixel(), wallclock=T0)
    scene = P.pixel()
    P.leak(scene, SCREENCAP, 5, 4 * MiB, "screencap-leak")
    shell = captures.one("cov-shell-leak", scene, wallclock=T0 + 60, uid=SHELL)
    run, doc = diff_json(
        dmaprof, root, shell, "--fail-on", "total>1MiB", "--fail-on", "kernel_only>1MiB"
    )
    assert run.code == 10, run.stderr  # the real breach; the unknown rule cannot hide it
    assert doc["totals"]["delta_bytes"] == 20 * MiB and doc["totals"]["delta_buffers"] == 5
    top = doc["suspects"][0]
    assert (top["kind"], top["pid"], top["delta_bytes"], top["delta_buffers"]) == (
        "process_buffers",
        SCREENCAP,
        20 * MiB,
        5,
    )
    assert {s["kind"] for s in doc["suspects"]} <= {"process_buffers", "name"}
    status = {c["name"]: c["status"] for c in doc["budgets"]["checks"]}
    assert status == {"total>1MiB": "fail", "kernel_only>1MiB": "unknown"}
    new = doc["buffers"]["new"]
    assert len(new) == 5 and all(b["holders"] == [SCREENCAP] for b in new)
    assert all(b["kernel_only"] is False for b in new)


def test_unreadable_processes_exit_and_reused_pids(captures: Captures, dmaprof: Any) -> None:
    before = captures.one("cov-shell", P.pixel(), wallclock=T0 + 60, uid=SHELL)
    scene = P.pixel()
    scene["processes"] = [p for p in scene["processes"] if int(p["pid"]) != 3160]
    P.replace_process(scene, 3300, name="com.other.app", uid=10300, cmdline=["com.other.app"])
    after = captures.one(
        "cov-shell-exit", scene, wallclock=T0 + 120, uid=SHELL, start_times={3300: 99999}
    )
    run, doc = diff_json(dmaprof, before, after)
    assert run.code == 0, run.stderr
    rows = [(r["pid"], r["status"]) for r in doc["processes"] if r["pid"] in (3160, 3300)]
    assert sorted(rows) == [(3160, "exited"), (3300, "exited"), (3300, "new")]
    for r in doc["processes"]:
        if r["pid"] in (3160, 3300):
            assert r["delta_rss_bytes"] is None, r  # unreadable: its change is unknown
    assert doc["suspects"] == []


def _series_dir(tmp_path: Path, paths: list[Path]) -> Path:
    d = tmp_path / "series"
    d.mkdir()
    for n, p in enumerate(paths):
        shutil.copyfile(p, d / f"s{n:02d}.dmaprof")
    return d


def _leaking_samples(
    captures: Captures, prefix: str, uids: list[int], edit: Any = None
) -> list[Path]:
    paths = []
    for n, uid in enumerate(uids):
        scene = P.pixel()
        if n:
            P.leak(scene, SCREENCAP, n, 2 * MiB, "screencap-leak")
        if edit is not None:
            edit(n, scene)
        paths.append(captures.one(f"{prefix}-{n}", scene, wallclock=T0 + 60 * n, uid=uid))
    return paths


def test_trend_across_a_change_of_mode(captures: Captures, dmaprof: Any, tmp_path: Path) -> None:
    d = _series_dir(tmp_path, _leaking_samples(captures, "mode", [0, 0, 0, SHELL, SHELL, SHELL]))
    run = dmaprof("trend", d, "--format", "json", "--no-cache")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["schema"] == "dmaprof.trend/2" and doc["reboots"] == 0
    assert doc["modes"] == ["root", "shell"]
    assert any("collection mode changed" in w for w in doc["warnings"])
    series = {(s["kind"], s["key"]): s for s in doc["series"]}
    ko = series["kernel_only", "kernel_only"]
    assert (ko["points"], ko["unknown_points"]) == (3, 3)  # never a drop to zero
    assert ko["verdict"] != "shrinking" and ko["delta_bytes"] == 0
    leaking = {(s["kind"], s.get("name") or s["label"]) for s in doc["leaks"]}
    assert ("process", "screencap") in leaking and ("total", "all DMA-BUFs") in leaking
    system = series["app", "1000"]
    assert (system["points"], system["unknown_points"]) == (3, 3)
    assert system["verdict"] == "too_few_samples"  # 3 known points: no verdict, no drop


def test_trend_sample_without_boot_id(captures: Captures, dmaprof: Any, tmp_path: Path) -> None:
    def no_boot_id(n: int, scene: dict[str, Any]) -> None:
        if n == 2:
            scene["boot_id"] = ""

    d = _series_dir(tmp_path, _leaking_samples(captures, "noboot", [0] * 6, no_boot_id))
    run = dmaprof("trend", d, "--format", "json", "--no-cache")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["reboots"] == 0 and doc["samples"] == 6
    total = next(s for s in doc["series"] if s["kind"] == "total")
    assert total["points"] == 6 and total["verdict"] == "leak"


def test_trend_refuses_two_phones_in_one_folder(
    captures: Captures, dmaprof: Any, tmp_path: Path
) -> None:
    ours = _leaking_samples(captures, "mode", [0, 0, 0, SHELL, SHELL, SHELL])[:3]
    theirs = [
        captures.one(f"other-{n}", P.pixel(), wallclock=T0 + 30 + 60 * n, serial="emu-5556")
        for n in range(2)
    ]
    d = _series_dir(tmp_path, [*ours, *theirs])
    run = dmaprof("trend", d, "--no-cache")
    assert run.code == 5, run.stderr
    assert "2 devices: emu-5554 (3 samples), emu-5556 (2 samples)" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    picked = dmaprof("trend", d, "-s", "emu-5554", "--format", "json", "--no-cache")
    assert picked.code == 0, picked.stderr
    doc = json.loads(picked.stdout)
    assert doc["samples"] == 3 and doc["device"]["serial"] == "emu-5554"
    assert dmaprof("trend", d, "-s", "nope", "--no-cache").code == 1


def test_shell_user_without_the_inventory(captures: Captures, dmaprof: Any) -> None:
    """6.18 without sysfs stats: the buffer list is the BPF iterator, which only root reads. As the
    shell user even the buffer totals are unknown, never a drop."""
    root = captures.one("cov-bpf-root", P.pixel(), wallclock=T0, variant="bpf")
    shell = captures.one("cov-bpf-shell", P.pixel(), wallclock=T0 + 60, variant="bpf", uid=SHELL)
    run, doc = diff_json(dmaprof, root, shell, "--fail-on", "total>1MiB")
    assert run.code == 12, run.stderr
    t = doc["totals"]
    assert t["bytes_before"] == 76726272 and t["bytes_after"] is None
    assert t["delta_bytes"] is None and t["delta_buffers"] is None
    assert doc["coverage"]["after"]["inventory"] is False
    assert doc["suspects"] == []
    assert all(e["delta_bytes"] is None for e in doc["exporters"])
