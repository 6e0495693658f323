"""`dmaprof devices` and `dmaprof snapshot` through the real adb server and an emulated phone.

Nothing here is mocked: dmaprof runs as a subprocess, talks to Debian's adb server on a
private port through adbutils, and the emulated phone runs the shipped collector with mksh and
toybox inside its fake filesystem.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dmaprof.capture.container import load_capture
from dmaprof.capture.dump import parse_dump
from dmaprof.errors import ExitCode
from tests.e2e.conftest import (
    PhoneRoot,
    device_tmp_entries,
    interrupt,
    run_dmaprof,
    start_dmaprof,
    wait_for_path,
)
from tests.emuphone.harness import AdbServer, EmulatedPhone


def _one_error_line(stderr: bytes) -> str:
    text = stderr.decode()
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("dmaprof: error: "), lines
    return lines[0]


# --------------------------------------------------------------------------- devices


def test_devices_lists_the_phone_with_its_facts(phone: EmulatedPhone) -> None:
    result = run_dmaprof("devices", "--format", "json", env=phone.env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["schema"] == "dmaprof.devices/1"
    [device] = [d for d in payload["devices"] if d["serial"] == phone.serial]
    assert device["state"] == "device"
    assert device["model"] == "Pixel-like 8"
    assert device["release"] == "14"
    assert device["sdk"] == "34"
    assert device["kernel"] == "5.15.137-android14-11-g8a1b2c3d4e5f"
    assert device["root"] == "adbd"
    assert device["sources"]["fdinfo"] == "yes"
    assert device["sources"]["sysfs_buffers"] == "yes"
    assert device["sources"]["debugfs_bufinfo"] == "absent"
    table = run_dmaprof("devices", env=phone.env)
    assert table.returncode == 0
    assert phone.serial in table.stdout.decode()


def test_devices_names_unauthorized_and_offline(
    adb_server: AdbServer, phone_root: PhoneRoot
) -> None:
    root = phone_root()
    denied = adb_server.phone(root, auth="deny")
    gone = adb_server.phone(root, offline="vanish")
    try:
        result = run_dmaprof("devices", "--format", "json", env=adb_server.env)
        assert result.returncode == 0, result.stderr
        states = {d["serial"]: d for d in json.loads(result.stdout)["devices"]}
        assert states[denied.serial]["state"] == "unauthorized"
        assert "Allow USB debugging" in states[denied.serial]["error"]
        assert states[gone.serial]["state"] == "offline"
    finally:
        denied.stop()
        gone.stop()


# --------------------------------------------------------------------------- snapshot


def test_snapshot_writes_a_capture_holding_the_phones_files(
    phone: EmulatedPhone, tmp_path: Path
) -> None:
    out = tmp_path / "x.dmaprof"
    result = run_dmaprof("snapshot", "-s", phone.serial, "-o", out, env=phone.env)
    assert result.returncode == 0, result.stderr
    capture = load_capture(out)
    meta = capture.meta
    assert meta["transport"] == {"kind": "adb", "serial": phone.serial, "root_method": "adbd-root"}
    assert meta["device"]["model"] == "Pixel-like 8"
    assert meta["device"]["sdk"] == 34
    assert meta["device"]["firstboot"] == "1763769600123"
    assert meta["device"]["kernel_release"] == "5.15.137-android14-11-g8a1b2c3d4e5f"
    assert (
        meta["device"]["boot_id"]
        == (phone.root / "proc/sys/kernel/random/boot_id").read_text().strip()
    )
    assert meta["collection"]["uid"] == 0
    assert meta["collection"]["complete"] is True
    assert meta["capabilities"]["sysfs_buffers"] is True

    # the raw dump holds what the phone's files hold, byte for byte
    dump = parse_dump(capture.dump)
    assert not dump.truncated
    proc = dump.section("proc")
    assert proc is not None
    for rel in ("proc/612/status", "proc/612/cgroup", "proc/3100/cmdline", "proc/612/stat"):
        expected = (phone.root / rel).read_bytes().rstrip(b"\n")
        assert proc.files["/" + rel] == expected, rel
    maps = dump.section("maps")
    assert maps is not None
    surfaceflinger_maps = (phone.root / "proc/612/maps").read_bytes().splitlines()
    assert maps.files["/proc/612/maps"].splitlines() == [
        line for line in surfaceflinger_maps if b"/dmabuf" in line
    ]
    sysfs = dump.section("sysfs_buffers")
    assert sysfs is not None
    assert sysfs.files["/sys/kernel/dmabuf/buffers/1/size"] == (
        phone.root / "sys/kernel/dmabuf/buffers/1/size"
    ).read_bytes().rstrip(b"\n")

    # the phone is left as it was found
    assert device_tmp_entries(phone.root) == []
    # the default view went to stdout, the capture's path to stderr
    assert b"surfaceflinger" in result.stdout
    assert str(out).encode() in result.stderr


def test_snapshot_uses_android_serial_and_a_default_name(
    phone: EmulatedPhone, tmp_path: Path
) -> None:
    result = run_dmaprof("snapshot", "-q", env=phone.env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = Path(tmp_path / result.stdout.decode().strip())
    assert written.name.startswith("127.0.0.1_") and written.suffix == ".dmaprof"
    assert load_capture(written).meta["transport"]["serial"] == phone.serial


def test_snapshot_as_shell_user_records_what_it_could_not_read(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root(user_build=True)
    phone = adb_server.phone(root, shell_uid=2000)
    try:
        out = tmp_path / "user.dmaprof"
        result = run_dmaprof("snapshot", "-o", out, env=phone.env)
        assert result.returncode == 0, result.stderr
        capture = load_capture(out)
        assert capture.meta["collection"]["uid"] == 2000
        assert capture.meta["transport"]["root_method"] == "shell"
        assert capture.meta["read_failures"]["denied"] > 0
        report = json.loads(run_dmaprof("show", out, "--format", "json", env=phone.env).stdout)
        coverage = report["coverage"]
        assert coverage["processes_unreadable"] > 0
        # surfaceflinger (uid 1000) cannot be read by the shell user; screencap (2000) can
        unreadable = {entry["pid"]: entry for entry in coverage["unreadable"]}
        assert unreadable[612]["name"] == "surfaceflinger"
        readable = {p["pid"] for p in report["processes"]}
        assert 4100 in readable
        shown = run_dmaprof("show", out, env=phone.env)
        # the warning once, on stderr (issue 15); the table marks the bounds
        assert "userspace figures are lower bounds" in shown.stderr.decode()
        assert "figures marked ≥ / ≤ are bounds" in shown.stdout.decode()
        assert device_tmp_entries(root) == []
    finally:
        phone.stop()


def test_snapshot_without_shell_v2_falls_back_to_v1(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root()
    phone = adb_server.phone(root, features="")
    try:
        out = tmp_path / "v1.dmaprof"
        result = run_dmaprof("snapshot", "-o", out, env=phone.env)
        assert result.returncode == 0, result.stderr
        assert load_capture(out).meta["collection"]["complete"]
        assert device_tmp_entries(root) == []
    finally:
        phone.stop()


def test_root_require_fails_cleanly_without_root(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root()
    phone = adb_server.phone(root, shell_uid=2000)
    try:
        out = tmp_path / "r.dmaprof"
        result = run_dmaprof("snapshot", "--root", "require", "-o", out, env=phone.env)
        assert result.returncode == ExitCode.DEVICE_COMMAND
        assert "--root require" in _one_error_line(result.stderr)
        assert not out.exists()
        assert device_tmp_entries(root) == []
    finally:
        phone.stop()


# --------------------------------------------------------------------------- device selection


def test_several_devices_and_no_serial_lists_them(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root()
    first = adb_server.phone(root)
    second = adb_server.phone(root)
    try:
        result = run_dmaprof("snapshot", "-o", tmp_path / "x.dmaprof", env=adb_server.env)
        assert result.returncode == ExitCode.SEVERAL_DEVICES
        line = _one_error_line(result.stderr)
        assert first.serial in line and second.serial in line and "-s" in line
        picked = run_dmaprof(
            "snapshot", "-s", second.serial, "-q", "-o", tmp_path / "x.dmaprof", env=adb_server.env
        )
        assert picked.returncode == 0, picked.stderr
    finally:
        first.stop()
        second.stop()


def test_no_device_says_how_to_connect_one(adb_server: AdbServer, tmp_path: Path) -> None:
    assert adb_server.devices() == {}
    result = run_dmaprof("snapshot", "-o", tmp_path / "x.dmaprof", env=adb_server.env)
    assert result.returncode == ExitCode.NO_DEVICE
    assert "adb connect" in _one_error_line(result.stderr)
    unknown = run_dmaprof("snapshot", "-s", "nosuch:1", env=adb_server.env)
    assert unknown.returncode == ExitCode.NO_DEVICE
    assert "'nosuch:1' not found" in _one_error_line(unknown.stderr)
    assert not list(tmp_path.iterdir())


def test_unauthorized_device(adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path) -> None:
    phone = adb_server.phone(phone_root(), auth="deny")
    try:
        result = run_dmaprof("snapshot", "-o", tmp_path / "x.dmaprof", env=phone.env)
        assert result.returncode == ExitCode.UNAUTHORIZED
        assert "unauthorized" in _one_error_line(result.stderr)
    finally:
        phone.stop()


def test_offline_device(adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path) -> None:
    phone = adb_server.phone(phone_root(), offline="vanish")
    try:
        result = run_dmaprof("snapshot", "-o", tmp_path / "x.dmaprof", env=phone.env)
        assert result.returncode == ExitCode.OFFLINE
        assert "offline" in _one_error_line(result.stderr)
    finally:
        phone.stop()


# --------------------------------------------------------------------------- failures mid-way


@pytest.mark.parametrize(
    ("die_on", "stage"),
    [
        ("send:collect\\.sh", "push"),
        ("shell:collect\\.sh -w", "run"),
        ("recv:/dump$", "pull"),
    ],
)
def test_device_vanishing_mid_snapshot(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path, die_on: str, stage: str
) -> None:
    root = phone_root()
    phone = adb_server.phone(root, die_on=[die_on])
    try:
        out = tmp_path / "x.dmaprof"
        result = run_dmaprof("snapshot", "-o", out, "--timeout", "20", env=phone.env)
        assert result.returncode == ExitCode.OFFLINE, result.stderr
        line = _one_error_line(result.stderr)
        assert "went away" in line and "may be left on the device" in line, (stage, line)
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.dmaprof")]
    finally:
        phone.stop()
    # The phone comes back later. The directory the dead run left behind is swept by the
    # next snapshot (its collector is gone, or it never started and is over a minute old).
    for leftover in (root / "data/local/tmp").glob("dmaprof-*"):
        old = time.time() - 120
        os.utime(leftover, (old, old))
    back = adb_server.phone(root)
    try:
        again = run_dmaprof("snapshot", "-q", "-o", tmp_path / "y.dmaprof", env=back.env)
        assert again.returncode == 0, again.stderr
        assert device_tmp_entries(root) == []
    finally:
        back.stop()


def test_slow_device_times_out(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root()
    phone = adb_server.phone(root, slow=2.5)
    try:
        out = tmp_path / "x.dmaprof"
        started = time.monotonic()
        result = run_dmaprof("snapshot", "--timeout", "1", "-o", out, env=phone.env)
        assert result.returncode == ExitCode.DEVICE_COMMAND, result.stderr
        assert "timed out" in _one_error_line(result.stderr)
        assert time.monotonic() - started < 60
        assert not out.exists()
    finally:
        phone.stop()


def test_collector_failure_writes_no_capture(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root()
    # a device whose /data/local/tmp cannot be written: the push itself fails
    (root / "data/local/tmp").chmod(0o555)
    phone = adb_server.phone(root, shell_uid=2000)
    try:
        out = tmp_path / "x.dmaprof"
        result = run_dmaprof("snapshot", "-o", out, env=phone.env)
        assert result.returncode == ExitCode.DEVICE_COMMAND, result.stderr
        _one_error_line(result.stderr)
        assert not out.exists()
    finally:
        (root / "data/local/tmp").chmod(0o771)
        phone.stop()


def test_ctrl_c_during_the_collector_run(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root()
    # make the collector's run long enough to interrupt: a slow `getprop`
    getprop = root / "system/bin/getprop"
    original = getprop.read_bytes()
    getprop.write_bytes(b"#!/system/bin/sh\nsleep 30\n")
    phone = adb_server.phone(root)
    try:
        out = tmp_path / "x.dmaprof"
        proc = start_dmaprof("snapshot", "-o", out, env=phone.env)
        wait_for_path("data/local/tmp/dmaprof-*/dump", root)
        code, _stdout, stderr = interrupt(proc)
        assert code == ExitCode.INTERRUPTED
        line = _one_error_line(stderr)
        assert "interrupted" in line and "removed" in line
        assert not out.exists()
        deadline = time.monotonic() + 10
        while device_tmp_entries(root) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert device_tmp_entries(root) == []
    finally:
        getprop.write_bytes(original)
        phone.stop()


def test_snapshot_takes_four_device_round_trips(phone: EmulatedPhone, tmp_path: Path) -> None:
    """push, run, pull, remove: every stream the phone's adbd opens is counted."""
    before = phone.log().count(": OPEN ")
    result = run_dmaprof("snapshot", "-q", "-o", tmp_path / "x.dmaprof", env=phone.env)
    assert result.returncode == 0, result.stderr
    opened = [line for line in phone.log().splitlines() if ": OPEN " in line][before:]
    services = [line.split(": OPEN ", 1)[1].split(" ", 1)[1] for line in opened]
    assert len(services) == 4, services
    assert [s.strip("'").split(":", 1)[0].split(",")[0] for s in services] == [
        "sync",
        "shell",
        "sync",
        "shell",
    ]


def test_hand_run_collector_dump_imports_on_this_linux_machine(tmp_path: Path) -> None:
    """The README's recipe for devices without adb, on the machine running the tests."""
    import subprocess

    script = run_dmaprof("collector", env=dict(os.environ))
    assert script.returncode == 0
    (tmp_path / "c.sh").write_bytes(script.stdout)
    with (tmp_path / "dump").open("wb") as dump:
        collected = subprocess.run(["sh", "c.sh"], cwd=tmp_path, stdout=dump, check=False)
    assert collected.returncode == 0
    imported = run_dmaprof("import", "dump", "-o", "y.dmaprof", env=dict(os.environ), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    capture = load_capture(tmp_path / "y.dmaprof")
    assert capture.meta["transport"]["kind"] == "import"
    assert capture.meta["device"]["kernel_release"]
    shown = run_dmaprof("show", "y.dmaprof", "--format", "json", env=dict(os.environ), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["coverage"]["processes"] > 0
    # the collector made its own temporary directory and removed it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.sh", "dump", "y.dmaprof"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a dmaprof capture"),
        (b"PK\x03\x04garbage", "truncated or corrupt"),
        (b"DMAPROF-DUMP 1 abc\n", "raw collector dump"),
    ],
)
def test_show_on_a_bad_capture_is_exit_9(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.dmaprof"
    bad.write_bytes(content)
    result = run_dmaprof("show", bad, env=dict(os.environ))
    assert result.returncode == ExitCode.BAD_CAPTURE
    assert message in _one_error_line(result.stderr)
    assert result.stdout == b""


# --------------------------------------------------------------------------- several devices


def test_snapshot_all_two_phones_concurrently(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    first = adb_server.phone(phone_root())
    second = adb_server.phone(phone_root())
    try:
        out = tmp_path / "captures"
        result = run_dmaprof("snapshot", "--all", "-o", out, env=adb_server.env)
        assert result.returncode == 0, result.stderr
        written = sorted(out.iterdir())
        assert len(written) == 2
        serials = {load_capture(p).meta["transport"]["serial"] for p in written}
        assert serials == {first.serial, second.serial}
        # repeated -s does the same for the devices named
        picked = run_dmaprof(
            "snapshot",
            "-s",
            first.serial,
            "-s",
            second.serial,
            "-o",
            tmp_path / "two",
            "--force",
            env=adb_server.env,
        )
        assert picked.returncode == 0, picked.stderr
        assert len(list((tmp_path / "two").iterdir())) == 2
    finally:
        first.stop()
        second.stop()


def test_snapshot_all_one_phone_failing_midway(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    good_root, bad_root = phone_root(), phone_root()
    good = adb_server.phone(good_root)
    bad = adb_server.phone(bad_root, die_on=["recv:/dump$"])
    try:
        out = tmp_path / "captures"
        result = run_dmaprof("snapshot", "--all", "-o", out, "--timeout", "20", env=adb_server.env)
        assert result.returncode == ExitCode.PARTIAL, result.stderr
        line = _one_error_line(result.stderr.split(b"\n", result.stderr.count(b"\n") - 1)[-1])
        assert "1 of 2 devices failed" in line and bad.serial in line
        [written] = list(out.iterdir())
        assert load_capture(written).meta["transport"]["serial"] == good.serial
        assert device_tmp_entries(good_root) == []
    finally:
        good.stop()
        bad.stop()


def _wait_for_log(phone: EmulatedPhone, needle: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while phone.log().count(needle) < count:
        assert time.monotonic() < deadline, f"{needle!r} x{count} never appeared"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("stage", "needle", "count"), [("push", "'sync:'", 1), ("pull", "'sync:'", 2)]
)
def test_ctrl_c_during_push_and_pull(
    adb_server: AdbServer,
    phone_root: PhoneRoot,
    tmp_path: Path,
    stage: str,
    needle: str,
    count: int,
) -> None:
    root = phone_root()
    # a slow phone (every packet it sends waits 0.3 s) leaves time to press Ctrl-C
    phone = adb_server.phone(root, slow=0.3)
    try:
        out = tmp_path / "x.dmaprof"
        before = phone.log().count(needle)
        proc = start_dmaprof("snapshot", "-o", out, env=phone.env)
        _wait_for_log(phone, needle, before + count)
        code, _stdout, stderr = interrupt(proc)
        assert code == ExitCode.INTERRUPTED, (stage, stderr)
        line = _one_error_line(stderr)
        assert "interrupted" in line, line
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
        deadline = time.monotonic() + 20
        while device_tmp_entries(root) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert device_tmp_entries(root) == [], stage
    finally:
        phone.stop()


def test_collector_killed_by_a_signal(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root()
    # the collector's shell is killed (as by the low-memory killer) while it runs getprop
    getprop = root / "system/bin/getprop"
    getprop.write_bytes(b"#!/system/bin/sh\nkill -9 $PPID\n")
    phone = adb_server.phone(root)
    try:
        out = tmp_path / "x.dmaprof"
        result = run_dmaprof("snapshot", "-o", out, env=phone.env)
        assert result.returncode == ExitCode.DEVICE_COMMAND, result.stderr
        line = _one_error_line(result.stderr)
        assert "collector failed" in line and "no capture written" in line
        assert not out.exists()
        assert device_tmp_entries(root) == []
    finally:
        phone.stop()


def test_eight_phones_at_once(adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path) -> None:
    phones = [adb_server.phone(phone_root()) for _ in range(8)]
    try:
        out = tmp_path / "fleet"
        started = time.monotonic()
        result = run_dmaprof("snapshot", "--all", "-o", out, env=adb_server.env, timeout=300)
        took = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        captures = sorted(out.iterdir())
        assert len(captures) == 8
        serials = {load_capture(p).meta["transport"]["serial"] for p in captures}
        assert serials == {phone.serial for phone in phones}
        assert took < 120
        for phone in phones:
            assert device_tmp_entries(phone.root) == []
    finally:
        for phone in phones:
            phone.stop()
