"""The hand-run collector where there is no /tmp, no TMPDIR and a read-only root (issue #13
item 3: a serial console, recovery), on a real kernel.

``run_scene(readonly=True)`` runs the collector with busybox in a chroot of the guest's root
bound read-only, without /tmp and TMPDIR, with one writable tmpfs at /data/w
(docs/vm-testbed.md): snapshot 1 runs in /data/w (the current directory is the only
writable candidate: the scratch directory goes there), snapshot 2 in / (nothing writable:
no scratch files at all). Both dumps must pass every ground-truth check and give dmaprof's
figures exactly, as the normal scene runs do; /data/w must be empty afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vm_dmaprof import dmaprof_has, import_dump, report_mismatches
from vm_dump import ALL_CHECKS, Snapshot
from vm_testbed import KERNELS, collector_script, fail_vm, load_run_module, skip_if_opted_out

pytestmark = [pytest.mark.vm, pytest.mark.slow]

_RUNS: dict[str, list[Snapshot]] = {}


@pytest.fixture(scope="module", params=KERNELS)
def ro_snaps(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    skip_if_opted_out()
    kernel = request.param
    if kernel not in _RUNS:
        run = load_run_module()
        tmp = tmp_path_factory.mktemp(f"vm-ro-{kernel}")
        collector, _ = collector_script(tmp)
        try:
            d = run.run_scene(kernel=kernel, snapshots=2, gap_s=1, collector=collector,
                              out=tmp / "run", readonly=True)  # fmt: skip
        except run.VMError as exc:
            fail_vm(f"the {kernel} read-only VM test bed", exc)
        _RUNS[kernel] = [Snapshot.load(d / "out" / f"snap{n}") for n in (1, 2)]
    return kernel, _RUNS[kernel]


def meta(snap: Snapshot) -> dict[str, str]:
    return dict(snap.dump.kv("meta"))


def test_scratch_dir_in_the_current_directory(ro_snaps: Any) -> None:
    kernel, (snap, _) = ro_snaps
    assert (snap.dir / "cwd").read_text().strip() == "/data/w"
    assert (snap.dir / "rc").read_text().strip() == "0", (snap.dir / "stderr").read_text()
    assert (snap.dir / "stderr").read_bytes() == b""
    m = meta(snap)
    assert m["workdir"].startswith("/data/w/dmaprof."), (kernel, m)
    assert (snap.dir / "w_after").read_text() == "", "scratch files left in /data/w"


def test_no_writable_directory_no_scratch_files(ro_snaps: Any) -> None:
    kernel, (_, snap) = ro_snaps
    assert (snap.dir / "cwd").read_text().strip() == "/"
    assert (snap.dir / "rc").read_text().strip() == "0", (snap.dir / "stderr").read_text()
    assert (snap.dir / "stderr").read_bytes() == b""
    m = meta(snap)
    assert m["workdir"] == "" and m["workdir_tried"] == "/data/local/tmp /tmp /", (kernel, m)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_dumps_match_groundtruth(ro_snaps: Any, check: Any) -> None:
    kernel, snaps = ro_snaps
    failures = [f"{s.dir.name}: {msg}" for s in snaps for msg in check(s)]
    assert not failures, f"[{kernel}, read-only root]\n" + "\n".join(failures)


def test_dmaprof_figures_match_groundtruth(ro_snaps: Any, tmp_path: Path) -> None:
    kernel, snaps = ro_snaps
    assert dmaprof_has("import") and dmaprof_has("show")
    failures: list[str] = []
    for snap in snaps:
        capture = import_dump(snap.dir / "dump", tmp_path / f"{snap.dir.name}.dmaprof")
        failures += [f"{snap.dir.name}: {m}" for m in report_mismatches(capture, snap.gt.dir)]
    assert not failures, f"[{kernel}, read-only root]\n" + "\n".join(failures)
    assert json.loads((snaps[0].dir / "rc").read_text()) == 0
