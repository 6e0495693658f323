"""Verdicts through the real adb server and the emulated phone: root then shell user on one
phone, and `record`/`top` that cannot reach a device.

The shell-user snapshot is of the same phone (same serial, same boot): its adbd restarts as
the shell user on the same port, as after `adb unroot` or when `adb root` races the boot.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmaprof.errors import ExitCode
from tests.e2e.conftest import DMAPROF
from tests.emuphone import scene as S
from tests.emuphone.harness import AdbServer, EmulatedPhone
from tests.leaks import phonescene as P

MiB = 1024 * 1024


def run(
    *args: str | Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DMAPROF, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def user_build_root(need_device_tools: None) -> Iterator[tuple[dict[str, object], Path]]:
    scene = P.pixel()
    work = P.scratch_dir()
    root = P.build_root(scene, work / "root", user_build=True)
    yield scene, root
    S.remove_tree(work)


def test_root_then_shell_user_of_one_phone(
    adb_server: AdbServer, user_build_root: tuple, tmp_path: Path
) -> None:
    scene, root = user_build_root
    phone = adb_server.phone(root)
    first, rooted, shell = (
        tmp_path / n for n in ("first.dmaprof", "root.dmaprof", "shell.dmaprof")
    )
    try:
        assert run("snapshot", "-o", first, env=phone.env).returncode == 0
        P.leak(scene, 3100, 3, 2 * MiB, "SurfaceView - com.example.camera#0")  # type: ignore[arg-type]
        P.rebuild(root, scene, user_build=True)  # type: ignore[arg-type]
        assert run("snapshot", "-o", rooted, env=phone.env).returncode == 0
        serial = phone.serial
        phone.stop()
        phone = EmulatedPhone(root, adb_server, shell_uid=2000)
        phone.port = int(serial.rsplit(":", 1)[1])  # adbd restarts as the shell user
        phone.start()
        assert phone.serial == serial
        made = run("snapshot", "--root", "never", "-o", shell, env=phone.env)
        assert made.returncode == 0, made.stderr
    finally:
        phone.stop()
    # one scene, root then shell user, in both orders: nothing happened on the phone
    for before, after in ((rooted, shell), (shell, rooted)):
        got = run(
            "diff",
            before,
            after,
            "--format",
            "json",
            "--fail-on",
            "kernel_only>1MiB",
            "--fail-on",
            "total>1MiB",
            env=phone.env,
        )
        assert got.returncode == ExitCode.VERDICT_UNKNOWN, got.stderr
        doc = json.loads(got.stdout)
        assert doc["same_device"] is True and doc["same_boot"] is True
        assert doc["suspects"] == []
        status = {c["name"]: c["status"] for c in doc["budgets"]["checks"]}
        assert status == {"kernel_only>1MiB": "unknown", "total>1MiB": "pass"}
        t = doc["totals"]
        assert (t["delta_bytes"], t["delta_buffers"]) == (0, 0)
        assert t["delta_kernel_only_bytes"] is None and t["delta_userspace_bytes"] is None
        unknown = {r["pid"] for r in doc["processes"] if r["delta_rss_bytes"] is None}
        assert unknown == {1, 590, 598, 612, 640, 700, 1200, 1800, 3100, 3160, 3300}
    # across the leak, root then shell: the buffer totals saw it exactly, no holder could
    across = json.loads(run("diff", first, shell, "--format", "json", env=phone.env).stdout)
    assert (across["totals"]["delta_bytes"], across["totals"]["delta_buffers"]) == (6 * MiB, 3)
    assert [b["kernel_only"] for b in across["buffers"]["new"]] == [None] * 3
    assert not [s for s in across["suspects"] if s["kind"] in ("kernel_only", "process")]
    # two root snapshots with the real leak between them: a real breach, exit 10
    real = run("diff", first, rooted, "--format", "json", "--fail-on", "total>1MiB", env=phone.env)
    assert real.returncode == ExitCode.BUDGET_BREACHED, real.stderr
    top = json.loads(real.stdout)["suspects"][0]
    assert (top["kind"], top["pid"], top["delta_bytes"]) == ("process_buffers", 3100, 6 * MiB)


def test_record_and_top_without_a_device(adb_server: AdbServer, tmp_path: Path) -> None:
    out = tmp_path / "s"
    got = run("record", "--interval", "1s", "--count", "2", "-o", out, env=adb_server.env)
    assert got.returncode == ExitCode.NO_DEVICE, got.stderr
    assert got.stderr.strip().splitlines()[-1].startswith("dmaprof: error: no sample taken")
    assert not out.exists()  # nothing that looks like a series
    unknown = run(
        "record",
        "-s",
        "nosuch:1",
        "--interval",
        "1s",
        "--count",
        "2",
        "-o",
        out,
        env=adb_server.env,
    )
    assert unknown.returncode == ExitCode.NO_DEVICE and not out.exists()
    top = run("top", "--count", "2", "--interval", "100ms", env=adb_server.env)
    assert top.returncode == ExitCode.NO_DEVICE, top.stderr
    assert "dmaprof: error:" in top.stderr
    top = run("top", "-s", "nosuch:1", "--count", "2", env=adb_server.env)
    assert top.returncode == ExitCode.NO_DEVICE, top.stderr


@pytest.mark.parametrize(
    ("how", "code"), [("unauthorized", ExitCode.UNAUTHORIZED), ("offline", ExitCode.OFFLINE)]
)
def test_record_and_top_with_an_unusable_device(
    adb_server: AdbServer, user_build_root: tuple, tmp_path: Path, how: str, code: int
) -> None:
    _scene, root = user_build_root
    kw: dict[str, str] = {"auth": "deny"} if how == "unauthorized" else {"offline": "vanish"}
    phone = adb_server.phone(root, **kw)
    try:
        out = tmp_path / "s"
        got = run(
            "record",
            "--interval",
            "200ms",
            "--count",
            "2",
            "--retries",
            "0",
            "-o",
            out,
            env=phone.env,
        )
        assert got.returncode == code, got.stderr
        assert not out.exists()
        top = run("top", "--count", "1", env=phone.env)
        assert top.returncode == code, top.stderr
    finally:
        phone.stop()


def test_record_follows_its_first_device_only(
    adb_server: AdbServer, user_build_root: tuple, tmp_path: Path
) -> None:
    """Phone A is unplugged after the first sample and phone B plugged in: with no -s the
    series keeps to A (gaps), and never mixes B's samples into A's series."""
    from dmaprof.collect.sampler import AdbSampler
    from dmaprof.leaks.series import RecordPlan, read_series, record_series
    from tests.emuphone.harness import client_env
    from tests.leaks.test_trend import FakeClock

    _scene, root = user_build_root
    first = adb_server.phone(root)
    others: list[EmulatedPhone] = []

    def swap(index: int) -> None:
        if index == 0:
            first.stop()
            adb_server.wait_state(first.serial, None)
            others.append(adb_server.phone(root))

    try:
        env = {k: v for k, v in first.env.items() if k != "ANDROID_SERIAL"}
        with client_env(env):
            summary = record_series(
                tmp_path / "s",
                RecordPlan(60.0, count=3, retries=0),
                AdbSampler(None, timeout=20),
                clock=FakeClock(),
                after_slot=swap,
            )
    finally:
        for phone in [first, *others]:
            phone.stop()
    assert (summary.samples, summary.gaps) == (1, 2)
    header, refs, gaps, _ = read_series(tmp_path / "s")
    assert len(refs) == 1 and gaps == 2 and header["device"]["serial"] == first.serial
