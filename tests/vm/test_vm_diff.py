"""Truth on a real kernel: ``dmaprof diff`` between two snapshots of a growing scene.

The session's scene runs (``vm_run``: 6.12 with the system heap and udmabuf, 6.1 with vgem;
booted once and shared with ``test_vm_groundtruth.py``) hold two dumps taken 3 s apart while
the leaker (``com.example.leaky``) allocates a 64 KiB buffer every 300 ms; it is paused
during each dump, and each dump comes with the ground truth of that moment. Both dumps go
through ``dmaprof import``, then ``dmaprof diff a.dmaprof b.dmaprof --format json``
(``dmaprof.diff/2``), and every figure is checked against what the two ground truths imply
(``vm_dmaprof.expected_diff``): totals, exactly the leaker's new inodes as new buffers,
nothing freed, the change of every process, app, cgroup and exporter, and the leaker named
as the top suspect with its exact growth in bytes and buffers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from vm_dmaprof import dmaprof_has, expected_diff, import_dump, run_dmaprof
from vm_testbed import VMRun

pytestmark = [pytest.mark.vm, pytest.mark.slow]

LEAKER = "com.example.leaky"


@dataclass
class DiffRun:
    vm: VMRun
    got: dict[str, Any]  # dmaprof diff --format json
    want: dict[str, Any]  # expected_diff of the two ground truths
    out: Path

    def where(self) -> str:
        return f"{self.vm.where()} diff: {self.out}"


@pytest.fixture(scope="session")
def diff_run(vm_run: VMRun, tmp_path_factory: pytest.TempPathFactory) -> DiffRun:
    if not all(dmaprof_has(c) for c in ("import", "diff")):
        pytest.fail("`dmaprof import` / `dmaprof diff` are missing from the CLI")
    tmp = tmp_path_factory.mktemp(f"diff-{vm_run.kernel}")
    a, b = vm_run.snapshots[0], vm_run.snapshots[1]
    ca = import_dump(a.dir / "dump", tmp / "a.dmaprof")
    cb = import_dump(b.dir / "dump", tmp / "b.dmaprof")
    out = tmp / "diff.json"
    res = run_dmaprof("diff", ca, cb, "--format", "json")
    out.write_bytes(res.stdout)
    got = json.loads(res.stdout)
    assert got.get("schema") == "dmaprof.diff/2", f"unknown diff schema {got.get('schema')}"
    return DiffRun(vm_run, got, expected_diff(a.gt.dir, b.gt.dir), out)


def test_diff_totals(diff_run: DiffRun) -> None:
    got, want = diff_run.got["totals"], diff_run.want["totals"]
    wrong = [
        f"totals.{k}: dmaprof {got.get(k)} != truth {v}" for k, v in want.items() if got.get(k) != v
    ]
    assert not wrong, diff_run.where() + "\n" + "\n".join(wrong)


def test_diff_new_buffers_are_exactly_the_leakers(diff_run: DiffRun) -> None:
    """``buffers.new``: the leaker's new inodes and nothing else, each with its size,
    exporter, name (None when unnamed) and holder; ``buffers.freed`` is empty."""
    want = diff_run.want
    new = {b["inode"]: b for b in diff_run.got["buffers"]["new"]}
    assert len(want["new"]) >= 3, f"{diff_run.where()}: the leaker grew by < 3 buffers"
    assert set(new) == set(want["new"]), (
        f"{diff_run.where()}\nnew inodes: dmaprof {sorted(new)} != truth {sorted(want['new'])}"
    )
    leak_pid = want["leak"]["pid"]
    wrong = []
    for ino, w in sorted(want["new"].items()):
        assert w["holders"] == [leak_pid], f"truth: new inode {ino} held by {w['holders']}"
        wrong += [
            f"new inode {ino}: {k} dmaprof {new[ino].get(k)!r} != truth {v!r}"
            for k, v in w.items()
            if new[ino].get(k) != v
        ]
    assert not wrong, diff_run.where() + "\n" + "\n".join(wrong)
    assert want["freed"] == [], "truth: a buffer vanished between the snapshots"
    assert diff_run.got["buffers"]["freed"] == [], diff_run.where()


def test_diff_processes_match_groundtruth(diff_run: DiffRun) -> None:
    """Every scene process's change in rss, pss and buffers; every other process of the
    guest (kernel threads, /init, the collector's shells) changes by nothing."""
    rows: dict[int, dict[str, Any]] = {}
    for p in diff_run.got["processes"]:
        rows.setdefault(p["pid"], p)
    wrong = []
    for pid, w in diff_run.want["processes"].items():
        g = rows.get(pid)
        if g is None:
            wrong.append(f"process {pid}: missing from the diff")
            continue
        if g.get("status") != "kept":
            wrong.append(f"process {pid} ({g.get('name')}): status {g.get('status')} != kept")
        for key, field in (
            ("rss", "delta_rss_bytes"),
            ("pss", "delta_pss_bytes"),
            ("count", "delta_buffers"),
        ):
            if g.get(field) != w[key]:
                wrong.append(f"process {pid} ({g.get('name')}): {field} {g.get(field)} != {w[key]}")
    for pid, g in rows.items():
        if pid not in diff_run.want["processes"] and (
            g.get("delta_rss_bytes") or g.get("delta_buffers")
        ):
            wrong.append(f"process {pid} ({g.get('name')}) outside the scene changed: {g}")
    leak = diff_run.want["leak"]
    assert rows.get(leak["pid"], {}).get("name") == LEAKER, diff_run.where()
    assert not wrong, diff_run.where() + "\n" + "\n".join(wrong)


def test_diff_groups_match_groundtruth(diff_run: DiffRun) -> None:
    """Apps (by uid), cgroups (subtrees) and exporters change exactly as the truth says."""
    got, want = diff_run.got, diff_run.want
    wrong: list[str] = []

    def check(kind: str, rows: dict[Any, dict[str, Any]], fields: dict[str, str]) -> None:
        for key, w in want[kind].items():
            g = rows.get(key)
            if g is None:
                if any(w.values()):
                    wrong.append(f"{kind}[{key}]: missing from the diff")
                continue
            wrong.extend(
                f"{kind}[{key}].{field}: dmaprof {g.get(field)} != truth {w[k]}"
                for k, field in fields.items()
                if g.get(field) != w[k]
            )

    check(
        "uids",
        {a["uid"]: a for a in got["apps"]},
        {"rss": "delta_rss_bytes", "pss": "delta_pss_bytes", "count": "delta_buffers"},
    )
    check(
        "cgroups",
        {c["path"]: c for c in got["cgroups"]},
        {"rss": "delta_rss_bytes_with_descendants", "pss": "delta_pss_bytes_with_descendants"},
    )
    check(
        "exporters",
        {e["exporter"]: e for e in got["exporters"]},
        {"size": "delta_bytes", "count": "delta_buffers"},
    )
    assert not wrong, diff_run.where() + "\n" + "\n".join(wrong)


def test_diff_top_suspect_is_the_leaker(diff_run: DiffRun) -> None:
    """The first suspect names com.example.leaky (its pid) with its whole growth between the
    snapshots, in bytes and in buffers, as computed from the two ground truths."""
    suspects = diff_run.got["suspects"]
    leak = diff_run.want["leak"]
    assert suspects, f"{diff_run.where()}: no suspects at all"
    top = suspects[0]
    names_leaker = LEAKER in str(top.get("key", "")) or top.get("process") == LEAKER
    summary = "\n".join(
        f"  #{s.get('rank')} {s.get('kind')} {s.get('key')} {s.get('delta_bytes')} B "
        f"{s.get('delta_buffers')} buffers"
        for s in suspects[:8]
    )
    assert names_leaker and top.get("pid", leak["pid"]) == leak["pid"], (
        f"{diff_run.where()}\ntop suspect is not {LEAKER} ({leak['pid']}):\n{summary}"
    )
    assert (top["delta_bytes"], top.get("delta_buffers")) == (
        leak["delta_bytes"],
        leak["delta_buffers"],
    ), (
        f"{diff_run.where()}\ntop suspect: {top['delta_bytes']} B / "
        f"{top.get('delta_buffers')} buffers, the leaker grew by {leak['delta_bytes']} B / "
        f"{leak['delta_buffers']} buffers (ground truth); suspects:\n{summary}"
    )
    assert top.get("reason"), f"{diff_run.where()}: the top suspect gives no reason"
