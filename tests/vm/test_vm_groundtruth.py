"""Truth on a real kernel: dmaprof's collector against real dma-bufs in qemu.

For each kernel (Debian 12's 6.12 and 6.1), ``scripts/vm/run.py`` boots the kernel under
TCG, builds the Android-like scene (``scripts/vm/scene.c``), runs the collector twice with
the leaker paused, and returns the dumps with the scene's ground truth
(docs/vm-testbed.md). These tests check the raw facts of every dump against that truth with
a small independent reader (``vm_dump.py``), and compare ``dmaprof import`` +
``dmaprof show --format json`` with what the truth alone implies
(``vm_truth.expected_report``).

* The collector is ``$DMAPROF_VM_COLLECTOR`` if set, else the output of
  ``python -m dmaprof collector`` (the test fails when that command fails).
* Where qemu (or the kernel download) cannot run, the tests FAIL with the reason.
  ``DMAPROF_SKIP_VM=1`` skips them (local runs only); ``DMAPROF_VM_KERNELS=6.12`` restricts
  the kernels. The host packages are installed by ``scripts/vm/setup.sh`` when missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from vm_dmaprof import dmaprof_has, import_dump, report_mismatches
from vm_dump import (
    ALL_CHECKS,
    Snapshot,
    check_created,
    check_fds,
    check_growth,
    check_kernel_only,
    check_maps,
)
from vm_testbed import VMRun
from vm_truth import expected_report, pss_shares

# Budget for one kernel: fetch (cached) + initramfs + boot + scene + snapshots + power-off.
RUN_BUDGET_S = 110

pytestmark = [pytest.mark.vm, pytest.mark.slow]

# The session-scoped ``vm_run`` fixture (conftest.py, vm_testbed.scene_run) boots each
# kernel once; test_vm_diff.py reuses the same runs.


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_dump_matches_groundtruth(vm_run: VMRun, check: Any) -> None:
    failures = [f"{s.dir.name}: {msg}" for s in vm_run.snapshots for msg in check(s)]
    assert not failures, f"{vm_run.where()}\n" + "\n".join(failures)


def test_leak_growth_between_snapshots(vm_run: VMRun) -> None:
    a, b = vm_run.snapshots[0], vm_run.snapshots[1]
    failures = check_growth(a, b)
    assert not failures, f"{vm_run.where()}\n" + "\n".join(failures)


def test_expected_report_is_consistent(vm_run: VMRun) -> None:
    """expected_report's own invariants, on the scene's known shape."""
    for snap in vm_run.snapshots:
        rep = expected_report(snap.gt.dir)
        procs = rep["processes"]
        assert sum(p["pss"] for p in procs.values()) == rep["userspace"]["size"]
        assert rep["userspace"]["size"] + rep["kernel_only"]["size"] == rep["total"]["size"]
        labels = {b["label"] for b in rep["kernel_only"]["buffers"]}
        assert labels == {"sf-fb2", "inflight-orphan"}, vm_run.where()
        by_role = {p["role"]: p for p in procs.values()}
        cam, remote = by_role["camera"], by_role["camera_remote"]
        uid = rep["uids"][10001]
        assert uid["rss"] == cam["rss"] + remote["rss"]  # no buffer shared inside the uid
        sf = by_role["surfaceflinger"]
        assert sf["pss"] < sf["rss"]  # cam-preview-0 is shared with the camera
        shared = set(cam["buffers"]) & set(sf["buffers"])
        assert len(shared) == 1
        assert rep["cgroups"]["/"]["rss"] == rep["userspace"]["size"]
    assert pss_shares(10, [3, 1, 2]) == {1: 4, 2: 3, 3: 3}


def test_run_timing(vm_run: VMRun, record_property: Any) -> None:
    """Stays well under 2 minutes per kernel; the figures go into the JUnit report."""
    host = vm_run.info["host_s"]
    t = vm_run.info["timings"]
    for k, v in {**host, **{f"guest_{k}": v for k, v in t.items()}}.items():
        record_property(k, v)
    assert host["total"] < RUN_BUDGET_S, f"{vm_run.where()} took {host}"


def test_dmaprof_report_matches_groundtruth(vm_run: VMRun, tmp_path: Path) -> None:
    """dmaprof's own figures for each dump == the figures implied by the ground truth."""
    if not (dmaprof_has("import") and dmaprof_has("show")):
        pytest.skip("`dmaprof import` / `dmaprof show` do not exist yet")
    failures: list[str] = []
    for snap in vm_run.snapshots:
        capture = import_dump(snap.dir / "dump", tmp_path / f"{snap.dir.name}.dmaprof")
        failures += [f"{snap.dir.name}: {m}" for m in report_mismatches(capture, snap.gt.dir)]
    assert not failures, f"{vm_run.where()}\n" + "\n".join(failures)


def test_checker_detects_wrong_truth(vm_run: VMRun, tmp_path: Path) -> None:
    """The checks are not vacuous: a doctored ground truth must fail them."""
    src = vm_run.snapshots[0].dir
    dst = tmp_path / "snap1"
    shutil.copytree(src, dst)
    gt_dir = dst / "groundtruth"
    cam = json.loads((gt_dir / "gt-camera.json").read_text())
    cam["dmabuf_fds"].pop()  # an fd the dump shows but the truth forgets
    cam["dmabuf_maps"][0]["end"] = "1000"  # a VMA that does not exist
    (gt_dir / "gt-camera.json").write_text(json.dumps(cam))
    remote = json.loads((gt_dir / "gt-camera_remote.json").read_text())
    remote["dmabuf_fds"], remote["dmabuf_maps"] = [], []  # its buffer looks kernel-only now
    (gt_dir / "gt-camera_remote.json").write_text(json.dumps(remote))
    alloc = json.loads((gt_dir / "gt-allocator.json").read_text())
    alloc["created"][0]["size"] += 4096  # wrong size
    (gt_dir / "gt-allocator.json").write_text(json.dumps(alloc))
    s = Snapshot.load(dst)
    assert check_fds(s), "check_fds missed a forgotten fd"
    assert check_maps(s), "check_maps missed a wrong VMA"
    assert check_created(s), "check_created missed a wrong size"
    assert check_kernel_only(s), "check_kernel_only missed a holder the truth forgot"
