"""Truth on a real kernel, end to end: ``dmaprof snapshot`` through the real adb stack.

One qemu guest (Debian 12's 6.12 kernel, emulator-image mode of ``scripts/vm/run.py``)
runs the Android-like scene and the project's adb daemon ``tests/emuphone/adbd.py``:

* adbd.py is started by /init with the rootfs's python3 (debootstrap'ed, shared read-only
  over 9p), through the rootfs's dynamic loader *outside* the chroot
  (``start_emu(chroot=False)``): it serves the guest's real ``/`` (``--root / --no-chroot``),
  so ``adb push``/``pull`` touch the guest's own ``/data/local/tmp`` and ``adb shell`` runs the
  guest's busybox (its applets are in ``/system/bin``, adbd's Android PATH) against the real
  ``/proc``, ``/sys`` and ``/dev`` where the scene's processes and dma-bufs live;
* qemu forwards a free host port (never 5554-5585) to the guest's 7555;
* on the host, a private adb server (``tests/emuphone/harness.AdbServer``) ``adb connect``s to
  it and ``dmaprof snapshot -s 127.0.0.1:PORT -o x.dmaprof`` runs as a subprocess against that
  server: push of the collector, ``adb shell`` run, pull of the dump, clean-up.

The leaker keeps allocating, except during the snapshot: the test asks the guest over the 9p
share to pause it (``EmuSession.scene_paused()``: SIGUSR1, acknowledged, ground truth copied
while paused; SIGUSR2 afterwards), so the ground truth describes the state the collector saw.
``dmaprof show --format json`` of the capture is then compared with
``vm_truth.expected_report`` (every process, app, cgroup, exporter, kernel-only and total
figure), the dump inside the capture passes the raw-fact checks of ``vm_dump.py``, and
``adb shell ls -A /data/local/tmp`` shows nothing left behind.

Where qemu (or the rootfs build, or adb) cannot run, the tests FAIL with the reason;
``DMAPROF_SKIP_VM=1`` skips them (local runs only).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from vm_dmaprof import report_mismatches, run_dmaprof
from vm_dump import ALL_CHECKS, Snapshot
from vm_testbed import KERNELS, ROOT, fail_vm, load_run_module, skip_if_opted_out

from dmaprof.capture.container import load_capture

pytestmark = [pytest.mark.vm, pytest.mark.slow]

KERNEL = "6.12"
ADBD = ROOT / "tests" / "emuphone" / "adbd.py"
GUEST_PORT = 7555
# adbd.py in the guest: all interfaces (qemu's user network delivers to 10.0.2.15), the real
# root, no chroot; READY on the share once it listens (EmuSession.wait_ready).
ADBD_ARGS = [
    "--host",
    "0.0.0.0",
    "--port",
    str(GUEST_PORT),
    "--root",
    "/",
    "--no-chroot",
    "--port-file",
    "/mnt/host/emu/READY",
    "-v",
]
# Seconds. READY: boot + modules + scene + python3 from 9p under TCG (12-35 s measured, more
# under load); the rootfs build (about 2 min cold) happens before the boot and is not counted.
READY_TIMEOUT_S = 180
QEMU_TIMEOUT_S = 900  # the guest's whole life: qemu is killed after it at the latest
SNAPSHOT_TIMEOUT_S = 300
# Budgets checked by test_emulator_timing (about 4x a loaded run here).
READY_BUDGET_S = 120
SNAPSHOT_BUDGET_S = 60


@dataclass
class EmuRun:
    share: Path
    serial: str
    kver: str
    groundtruth: Path
    capture: Path
    snapshot_rc: int
    snapshot_stdout: bytes
    snapshot_stderr: bytes
    tmp_before: Any  # CompletedProcess of `adb shell ls -A /data/local/tmp`
    tmp_after: Any
    timings: dict[str, float] = field(default_factory=dict)

    def where(self) -> str:
        return f"[{self.kver} emulator mode, {self.serial}, share: {self.share}]"


def _adb_ok(res: Any, what: str, sess: Any) -> None:
    if res.returncode != 0:
        pytest.fail(
            f"{what}: exit {res.returncode}: {res.stdout}{res.stderr}\n{sess.why()}",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def emu_run(tmp_path_factory: pytest.TempPathFactory) -> EmuRun:
    """Boot the guest, connect adb, snapshot with the scene paused, check the device's tmp."""
    skip_if_opted_out()
    if KERNEL not in KERNELS:
        pytest.skip(f"DMAPROF_VM_KERNELS={','.join(KERNELS)} excludes {KERNEL}")
    from tests.emuphone.harness import AdbServer, HarnessError

    run = load_run_module()
    tmp = tmp_path_factory.mktemp("vm-emu")
    t: dict[str, float] = {}
    t0 = time.monotonic()
    try:
        run.ensure_host_tools(emu=True)  # qemu, debootstrap, adb: setup.sh --emu if missing
        t_rootfs = time.monotonic()
        run.build_rootfs()  # cached; about 2 min when cold (debootstrap)
        t["rootfs_s"] = time.monotonic() - t_rootfs
        t_boot = time.monotonic()
        sess = run.start_emu(
            ADBD,
            KERNEL,
            guestport=GUEST_PORT,
            share=tmp / "share",
            args=ADBD_ARGS,
            chroot=False,
            timeout=QEMU_TIMEOUT_S,
        )
    except run.VMError as exc:
        fail_vm(f"the {KERNEL} emulator-image guest", exc)
    with sess:
        try:
            sess.wait_ready(READY_TIMEOUT_S)
        except run.VMError as exc:
            fail_vm(f"adbd.py in the {KERNEL} guest", exc)
        t["ready_s"] = time.monotonic() - t_boot
        shell = sess.guest.marker("shell")
        kver = shell.extra if shell else "?"
        if shell:
            t["boot_guest_uptime_s"] = shell.guest_uptime
            t["boot_host_s"] = shell.host_s
        start = sess.guest.marker("emu_start")
        if start:
            t["script_start_host_s"] = start.host_s
        try:
            # a private server, never on 5037 nor in 5554-5585 (the emulator scan)
            server = AdbServer(tmp / "adb", port=run.free_port()).start()
        except HarnessError as exc:
            fail_vm("the private adb server", exc)
        try:
            serial = sess.address
            t_conn = time.monotonic()
            res = server.adb("connect", serial, timeout=30)
            if not res.stdout.startswith(("connected to", "already connected")):
                pytest.fail(f"adb connect {serial}: {res.stdout!r}\n{sess.why()}", pytrace=False)
            try:
                server.wait_state(serial, "device", 30)
            except HarnessError as exc:
                pytest.fail(f"{serial} never became a device: {exc}\n{sess.why()}")
            t["adb_connect_s"] = time.monotonic() - t_conn
            tmp_before = server.adb("shell", "ls -A /data/local/tmp", serial=serial)
            _adb_ok(tmp_before, "adb shell ls -A /data/local/tmp (before)", sess)
            capture = tmp / "x.dmaprof"
            t_pause = time.monotonic()
            try:
                with sess.scene_paused() as gt:
                    t["pause_s"] = time.monotonic() - t_pause
                    groundtruth = shutil.copytree(gt, tmp / "groundtruth")
                    t_snap = time.monotonic()
                    snap = run_dmaprof(
                        "snapshot",
                        "-s",
                        serial,
                        "-o",
                        capture,
                        env=server.env,
                        timeout=SNAPSHOT_TIMEOUT_S,
                        check=False,
                    )
                    t["snapshot_s"] = time.monotonic() - t_snap
            except run.VMError as exc:
                fail_vm("pausing the scene over the share", exc)
            tmp_after = server.adb("shell", "ls -A /data/local/tmp", serial=serial)
            _adb_ok(tmp_after, "adb shell ls -A /data/local/tmp (after)", sess)
            server.adb("disconnect", serial, timeout=10)
        finally:
            server.stop()
    t["total_s"] = time.monotonic() - t0
    for k, v in t.items():
        t[k] = round(v, 2)
    return EmuRun(
        share=sess.share,
        serial=serial,
        kver=kver,
        groundtruth=Path(groundtruth),
        capture=capture,
        snapshot_rc=snap.returncode,
        snapshot_stdout=snap.stdout,
        snapshot_stderr=snap.stderr,
        tmp_before=tmp_before,
        tmp_after=tmp_after,
        timings=t,
    )


@pytest.fixture(scope="module")
def emu_capture(emu_run: EmuRun) -> EmuRun:
    """The run, provided `dmaprof snapshot` succeeded (else every test says why)."""
    err = emu_run.snapshot_stderr.decode(errors="replace")
    assert emu_run.snapshot_rc == 0 and emu_run.capture.exists(), (
        f"{emu_run.where()}\n`dmaprof snapshot` exited {emu_run.snapshot_rc}:\n{err[-3000:]}"
    )
    assert "Traceback" not in err, f"{emu_run.where()}\n{err[-3000:]}"
    return emu_run


def test_snapshot_through_adb_reaches_the_real_kernel(emu_capture: EmuRun) -> None:
    """The capture came over adb from the guest's kernel, as root (adbd runs as root)."""
    meta = load_capture(emu_capture.capture).meta
    assert meta["transport"] == {
        "kind": "adb",
        "serial": emu_capture.serial,
        "root_method": "adbd-root",
    }, emu_capture.where()
    assert meta["device"]["kernel_release"] == emu_capture.kver, emu_capture.where()
    assert meta["collection"]["uid"] == 0
    assert meta["collection"]["collector_rc"] == 0
    assert meta["collection"]["complete"] is True, emu_capture.where()
    assert str(emu_capture.capture).encode() in emu_capture.snapshot_stderr
    assert b"surfaceflinger" in emu_capture.snapshot_stdout  # the default view


def test_report_matches_groundtruth(emu_capture: EmuRun) -> None:
    """``dmaprof show --format json`` == the figures the ground truth implies."""
    leaky = json.loads((emu_capture.groundtruth / "gt-leaky.json").read_text())
    assert leaky["paused"] is True, "the leaker was not paused during the snapshot"
    assert leaky["leak_count"] > 2, "the leaker never allocated: the scene did not grow"
    failures = report_mismatches(emu_capture.capture, emu_capture.groundtruth)
    assert not failures, f"{emu_capture.where()}\n" + "\n".join(failures)


@pytest.fixture(scope="module")
def emu_snapshot(emu_capture: EmuRun, tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """The dump inside the capture, laid out as a scene-mode snapshot directory."""
    d = tmp_path_factory.mktemp("vm-emu-snap")
    capture = load_capture(emu_capture.capture)
    (d / "dump").write_bytes(capture.dump)
    (d / "rc").write_text(f"{capture.meta['collection']['collector_rc']}\n")
    (d / "stderr").write_bytes(capture.collector_stderr)
    shutil.copytree(emu_capture.groundtruth, d / "groundtruth")
    return Snapshot.load(d)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_dump_over_adb_matches_groundtruth(emu_snapshot: Snapshot, check: Any) -> None:
    """The raw facts that travelled through adb pass the same checks as the scene mode's."""
    failures = check(emu_snapshot)
    assert not failures, f"{emu_snapshot.dir}\n" + "\n".join(failures)


def test_device_tmp_is_left_empty(emu_capture: EmuRun) -> None:
    """`adb shell ls -A /data/local/tmp` in the guest: empty before, empty afterwards."""
    assert emu_capture.tmp_before.stdout == "", emu_capture.tmp_before
    assert emu_capture.tmp_after.returncode == 0, emu_capture.tmp_after
    assert emu_capture.tmp_after.stdout == "", (
        f"{emu_capture.where()}: left on the device: {emu_capture.tmp_after.stdout!r}"
    )


def test_emulator_timing(emu_run: EmuRun, record_property: Any) -> None:
    """Boot to adbd ready and the snapshot through adb stay within budget (JUnit figures)."""
    for k, v in emu_run.timings.items():
        record_property(k, v)
    t = emu_run.timings
    print(f"emulator-mode timings: {t}")
    assert t["ready_s"] < READY_BUDGET_S, f"{emu_run.where()} {t}"
    assert t.get("snapshot_s", 0) < SNAPSHOT_BUDGET_S, f"{emu_run.where()} {t}"
