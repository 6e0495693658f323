"""The VM tests import their helpers (vm_truth, vm_dump, vm_dmaprof, vm_testbed) from this
directory; ``vm_run`` is the session's scene run of one kernel (parametrized over
``$DMAPROF_VM_KERNELS``), booted once and shared by every test module that asks for it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from vm_testbed import KERNELS, VMRun, scene_run, skip_if_opted_out  # noqa: E402


@pytest.fixture(scope="session", params=KERNELS)
def vm_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> VMRun:
    """Boot ``request.param`` once per session: two snapshots 3 s apart with ground truth."""
    skip_if_opted_out()
    return scene_run(request.param, tmp_path_factory)
