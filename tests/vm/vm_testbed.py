"""The qemu testbed (``scripts/vm/run.py``) as the VM tests use it.

* :func:`load_run_module`: ``scripts/vm/run.py`` imported once (standard library only);
* :func:`collector_script`: the collector pushed into the guest by the scene runs;
* :func:`scene_run`: one scene run per kernel for the whole session (two snapshots 3 s
  apart, the leaker paused during each), shared by ``test_vm_groundtruth.py`` and
  ``test_vm_diff.py`` through the ``vm_run`` fixture of ``conftest.py``;
* :func:`skip_if_opted_out` / :func:`fail_vm`: ``DMAPROF_SKIP_VM=1`` is the only way to skip;
  where qemu cannot run, the tests fail with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
from vm_dump import Snapshot

ROOT = Path(__file__).resolve().parents[2]
RUN_PY = ROOT / "scripts" / "vm" / "run.py"
KERNELS = tuple(
    k.strip() for k in os.environ.get("DMAPROF_VM_KERNELS", "6.12,6.1").split(",") if k.strip()
)
SNAPSHOTS = 2
GAP_S = 3


def load_run_module() -> ModuleType:
    """scripts/vm/run.py as a module (loaded once: its atexit hook kills live guests)."""
    name = "dmaprof_vm_run"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, RUN_PY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def skip_if_opted_out() -> None:
    if os.environ.get("DMAPROF_SKIP_VM", "") == "1":
        pytest.skip("DMAPROF_SKIP_VM=1: the qemu tests are skipped (never set this in CI)")


def fail_vm(what: str, exc: BaseException) -> NoReturn:
    pytest.fail(
        f"{what} could not run: {exc}\n"
        "(see docs/vm-testbed.md; DMAPROF_SKIP_VM=1 skips the VM tests locally)",
        pytrace=False,
    )


def collector_script(tmp: Path) -> tuple[Path, str]:
    """The collector to push into the guest, and where it came from.

    ``$DMAPROF_VM_COLLECTOR`` if set, else the output of ``python -m dmaprof collector``; if
    that command fails, the test fails (there is no stand-in to fall back on).
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
    if res.returncode != 0 or not res.stdout.strip():
        pytest.fail(
            f"`python -m dmaprof collector` failed (exit {res.returncode}):\n"
            + res.stderr.decode(errors="replace")[-2000:],
            pytrace=False,
        )
    path = tmp / "collect.sh"
    path.write_bytes(res.stdout)
    return path, "dmaprof collector"


@dataclass
class VMRun:
    kernel: str
    dir: Path
    collector: str
    info: dict[str, Any]
    snapshots: list[Snapshot]

    def where(self) -> str:
        return f"[{self.kernel}, collector: {self.collector}, results: {self.dir}]"


_RUNS: dict[str, VMRun] = {}


def scene_run(kernel: str, tmp_path_factory: pytest.TempPathFactory) -> VMRun:
    """The session's scene run of ``kernel`` (booted on first use, then reused)."""
    if kernel in _RUNS:
        return _RUNS[kernel]
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
        fail_vm(f"the {kernel} VM test bed", exc)
    info = json.loads((d / "run.json").read_text())
    snaps = [Snapshot.load(d / "out" / f"snap{n}") for n in range(1, SNAPSHOTS + 1)]
    _RUNS[kernel] = VMRun(kernel, d, source, info, snaps)
    return _RUNS[kernel]
