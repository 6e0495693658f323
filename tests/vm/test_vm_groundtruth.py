"""Truth on a real kernel: dmaprof's collector against real dma-bufs in qemu.

For each kernel (Debian 12's 6.12 and 6.1), ``scripts/vm/run.py`` boots the kernel under
TCG, builds the Android-like scene (``scripts/vm/scene.c``), runs the collector twice with
the leaker paused, and returns the dumps with the scene's ground truth
(docs/vm-testbed.md). These tests check the raw facts of every dump against that truth with
a small independent reader (``vm_dump.py``), and compare ``dmaprof import`` +
``dmaprof show --format json`` with what the truth alone implies
(``vm_truth.expected_report``).

* The collector is ``$DMAPROF_VM_COLLECTOR`` if set, else the output of
  ``python -m dmaprof collector``; until that command exists, the stand-in
  ``standin_collect.sh`` (with a warning).
* Where qemu (or the kernel download) cannot run, the tests FAIL with the reason.
  ``DMAPROF_SKIP_VM=1`` skips them (local runs only); ``DMAPROF_VM_KERNELS=6.12`` restricts
  the kernels. The host packages are installed by ``scripts/vm/setup.sh`` when missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from vm_dump import (
    ALL_CHECKS,
    Snapshot,
    check_created,
    check_fds,
    check_growth,
    check_kernel_only,
    check_maps,
)
from vm_truth import expected_report, pss_shares

ROOT = Path(__file__).resolve().parents[2]
RUN_PY = ROOT / "scripts" / "vm" / "run.py"
STANDIN = Path(__file__).with_name("standin_collect.sh")
KERNELS = tuple(k for k in os.environ.get("DMAPROF_VM_KERNELS", "6.12,6.1").split(",") if k.strip())
SNAPSHOTS = 2
GAP_S = 3
# Budget for one kernel: fetch (cached) + initramfs + boot + scene + snapshots + power-off.
RUN_BUDGET_S = 110

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def load_run_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dmaprof_vm_run", RUN_PY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


PRODUCT_COLLECTOR = ROOT / "dmaprof" / "device" / "collect.sh"


def collector_script(tmp: Path) -> tuple[Path, str]:
    """The collector to push into the guest, and where it came from.

    ``$DMAPROF_VM_COLLECTOR`` if set, else the output of ``python -m dmaprof collector``.
    The stand-in is used only while dmaprof has no collector at all; if dmaprof has one but
    cannot print it, the test fails (a broken CLI must not hide behind the stand-in).
    """
    env = os.environ.get("DMAPROF_VM_COLLECTOR")
    if env:
        return Path(env), f"$DMAPROF_VM_COLLECTOR ({env})"
    res = subprocess.run(
        [sys.executable, "-m", "dmaprof", "collector"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if res.returncode == 0 and res.stdout.strip():
        path = tmp / "collect.sh"
        path.write_bytes(res.stdout)
        return path, "dmaprof collector"
    if PRODUCT_COLLECTOR.exists():
        pytest.fail(
            f"`python -m dmaprof collector` failed (exit {res.returncode}) although "
            f"{PRODUCT_COLLECTOR.relative_to(ROOT)} exists:\n"
            + res.stderr.decode(errors="replace")[-2000:],
            pytrace=False,
        )
    warnings.warn(
        "dmaprof has no collector yet; the VM test runs the stand-in collector "
        f"{STANDIN.name} instead",
        stacklevel=1,
    )
    return STANDIN, f"stand-in ({STANDIN.name})"


@dataclass
class VMRun:
    kernel: str
    dir: Path
    collector: str
    info: dict[str, Any]
    snapshots: list[Snapshot]

    def where(self) -> str:
        return f"[{self.kernel}, collector: {self.collector}, results: {self.dir}]"


@pytest.fixture(scope="module", params=KERNELS)
def vm_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> VMRun:
    kernel: str = request.param
    if os.environ.get("DMAPROF_SKIP_VM", "") == "1":
        pytest.skip("DMAPROF_SKIP_VM=1: the qemu tests are skipped (never set this in CI)")
    run = load_run_module()
    tmp = tmp_path_factory.mktemp(f"vm-{kernel}")
    collector, source = collector_script(tmp)
    try:
        d = run.run_scene(
            kernel=kernel,
            snapshots=SNAPSHOTS,
            gap_s=GAP_S,
            collector=collector,
            out=tmp / "run",
        )
    except run.VMError as exc:
        pytest.fail(
            f"the {kernel} VM test bed could not run: {exc}\n"
            "(see docs/vm-testbed.md; DMAPROF_SKIP_VM=1 skips the VM tests locally)",
            pytrace=False,
        )
    info = json.loads((d / "run.json").read_text())
    snaps = [Snapshot.load(d / "out" / f"snap{n}") for n in range(1, SNAPSHOTS + 1)]
    return VMRun(kernel, d, source, info, snaps)


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


def dmaprof_has(command: str) -> bool:
    """Whether the dmaprof CLI has ``command``; a CLI that crashes fails the test."""
    res = subprocess.run(
        [sys.executable, "-m", "dmaprof", command, "--help"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if res.returncode == 0:
        return True
    err = res.stderr.decode(errors="replace")
    if "No such command" in err:
        return False
    pytest.fail(f"`dmaprof {command} --help` failed (exit {res.returncode}):\n{err[-2000:]}")


def normalize_dmaprof_report(obj: Any) -> dict[str, Any]:
    """Map ``dmaprof show --format json`` (schema ``dmaprof.report/1``) onto the keys of
    ``expected_report`` (charge ``shared``: pss splits a buffer among its holders)."""
    assert obj.get("schema") == "dmaprof.report/1", f"unknown report schema {obj.get('schema')}"
    t = obj["totals"]
    return {
        "total": {"count": t["buffers"], "size": t["bytes"]},
        "userspace": {"count": t["userspace_buffers"], "size": t["userspace_bytes"]},
        "processes": {
            p["pid"]: {"rss": p["rss_bytes"], "pss": p["pss_bytes"], "count": p["buffers"]}
            for p in obj["processes"]
        },
        "uids": {
            a["uid"]: {"rss": a["rss_bytes"], "pss": a["pss_bytes"], "count": a["buffers"]}
            for a in obj["apps"]
        },
        # subtree figures: expected_report's cgroups cover each path with its descendants
        "cgroups": {
            c["path"]: {
                "rss": c["rss_bytes_with_descendants"],
                "pss": c["pss_bytes_with_descendants"],
            }
            for c in obj["cgroups"]
        },
        "exporters": {
            e["exporter"]: {"count": e["buffers"], "size": e["bytes"]} for e in obj["exporters"]
        },
        "kernel_only": {
            "count": t["kernel_only_buffers"],
            "size": t["kernel_only_bytes"],
            "inos": sorted(b["inode"] for b in obj["kernel_only"]),
        },
    }


def compare_reports(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Mismatches between a normalized dmaprof report and expected_report."""
    out: list[str] = []
    for key in ("total", "userspace"):
        out += [
            f"{key}.{k}: dmaprof {got[key][k]} != truth {v}"
            for k, v in want[key].items()
            if got[key].get(k) != v
        ]
    for key in ("processes", "uids", "cgroups", "exporters"):
        for name, w in want[key].items():
            g = got[key].get(name)
            if g is None:
                if w.get("count", 1) or w.get("rss", 1):  # an empty group may be omitted
                    out.append(f"{key}[{name}]: missing from dmaprof's report")
                continue
            out += [
                f"{key}[{name}].{k}: dmaprof {g[k]} != truth {w[k]}"
                for k in ("rss", "pss", "count", "size")
                if k in g and k in w and g[k] != w[k]
            ]
    want_ko = sorted(b["ino"] for b in want["kernel_only"]["buffers"])
    if got["kernel_only"]["inos"] != want_ko:
        out.append(f"kernel-only inodes: dmaprof {got['kernel_only']['inos']} != truth {want_ko}")
    out += [
        f"kernel_only.{k}: dmaprof {got['kernel_only'][k]} != truth {want['kernel_only'][k]}"
        for k in ("count", "size")
        if got["kernel_only"][k] != want["kernel_only"][k]
    ]
    return out


def test_dmaprof_report_matches_groundtruth(vm_run: VMRun, tmp_path: Path) -> None:
    """dmaprof's own figures for each dump == the figures implied by the ground truth."""
    if not (dmaprof_has("import") and dmaprof_has("show")):
        pytest.skip("`dmaprof import` / `dmaprof show` do not exist yet")
    failures: list[str] = []
    for snap in vm_run.snapshots:
        capture = tmp_path / f"{snap.dir.name}.dmaprof"
        subprocess.run(
            [sys.executable, "-m", "dmaprof", "import", str(snap.dir / "dump"), "-o", str(capture)],
            cwd=ROOT,
            check=True,
            timeout=120,
            capture_output=True,
        )
        out = subprocess.run(
            [sys.executable, "-m", "dmaprof", "show", str(capture), "--format", "json"],
            cwd=ROOT,
            check=True,
            timeout=120,
            capture_output=True,
        ).stdout
        got = normalize_dmaprof_report(json.loads(out))
        want = expected_report(snap.gt.dir)
        failures += [f"{snap.dir.name}: {m}" for m in compare_reports(got, want)]
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
