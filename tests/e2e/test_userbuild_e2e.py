"""User-build mode end to end (docs/user-build.md): the emulated phone runs shell commands as
uid 2000 with most of /proc closed, like a production phone, and offers what such a phone
offers the shell user: `dumpsys` (meminfo, SurfaceFlinger, gfxinfo) and `run-as`.

run-as is real: /system/bin/run-as is a small C program (tests/emuphone/runas.c) with the
file capabilities CAP_SETUID+CAP_SETGID (as Android ships it), which checks
/data/system/packages.list and switches to the app's uid only for a debuggable package; the
fake /proc entries of a debuggable app's processes belong to its uid (a debuggable app is
dumpable), so the kernel lets that uid, and only it, read them. com.example.camera (pids 3100
and 3160) is debuggable, com.example.gallery (3300) is not.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from dmaprof.capture.container import load_capture
from dmaprof.capture.dump import parse_dump
from tests.e2e.conftest import REPO, PhoneRoot, device_tmp_entries, run_dmaprof
from tests.emuphone.harness import AdbServer, EmulatedPhone

EXPECTED = json.loads((REPO / "fixtures" / "phones" / "pixel-like.expected.json").read_text())
CAMERA, GALLERY = "com.example.camera", "com.example.gallery"
K = 1024

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("gcc") or shutil.which("cc")),
    reason="run-as on the emulated phone needs root (chown, capabilities) and gcc",
)


@pytest.fixture
def user_phone(adb_server: AdbServer, phone_root: PhoneRoot) -> Any:
    """A user build: shell uid 2000, dumpsys and run-as."""
    root = phone_root(dumpsys=True, run_as=True)
    phone = adb_server.phone(root, shell_uid=2000)
    try:
        yield phone
    finally:
        phone.stop()


def _snapshot(phone: EmulatedPhone, out: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    result = run_dmaprof("snapshot", "-o", out, *args, env=phone.env)
    assert result.returncode == 0, result.stderr
    shown = run_dmaprof("show", out, "--format", "json", env=phone.env)
    assert shown.returncode == 0, shown.stderr
    return result, json.loads(shown.stdout)


def _app_home(phone: EmulatedPhone, package: str) -> list[str]:
    return sorted(os.listdir(phone.root / "data" / "user" / "0" / package))


def test_debuggable_app_is_read_exactly_and_the_rest_is_unknown(
    user_phone: EmulatedPhone, tmp_path: Path
) -> None:
    out = tmp_path / "user.dmaprof"
    result, report = _snapshot(user_phone, out, "--app", CAMERA)
    # no --app note: the only warning is the report's, said once on stderr (issue 15)
    warnings = [line for line in result.stderr.splitlines() if line.startswith(b"warning")]
    assert len(warnings) == 1 and b"processes could not be read" in warnings[0], result.stderr
    capture = load_capture(out)
    assert capture.meta["collection"]["uid"] == 2000
    assert capture.meta["transport"]["root_method"] == "shell"
    assert capture.meta["transport"]["apps"] == [CAMERA]

    # the dumpsys totals, in their own key, raw bytes from the K figures
    totals = report["system_totals"]
    assert totals["source"] == "dumpsys meminfo"
    assert totals["dmabuf_bytes"] == EXPECTED["totals"]["total_bytes"]
    assert totals["dmabuf_mapped_bytes"] == EXPECTED["totals"]["mapped_bytes"]
    assert totals["dmabuf_unmapped_bytes"] == (
        EXPECTED["totals"]["total_bytes"] - EXPECTED["totals"]["mapped_bytes"]
    )
    assert totals["heaps_bytes"] == EXPECTED["totals"]["heap_exported_bytes"]
    assert totals["heap_pools_bytes"] == 8192 * K
    assert totals["gpu_dmabuf_bytes"] == EXPECTED["exporters"]["drm"]["bytes"]
    assert totals["gpu_private_bytes"] == 20480 * K
    assert totals["gpu_bytes"] == totals["gpu_dmabuf_bytes"] + totals["gpu_private_bytes"]

    # the app's processes: exact where no unreadable process shares a buffer
    procs = {p["pid"]: p for p in report["processes"]}
    want = EXPECTED["processes"]
    assert procs[3100]["rss_bytes"] == want["3100"]["rss_bytes"]
    assert procs[3160]["rss_bytes"] == want["3160"]["rss_bytes"]
    assert procs[3160]["pss_bytes"] == want["3160"]["pss_bytes"]
    assert procs[3160]["pss_exact"] is True
    # 3100 shares cam-preview-0/1 with surfaceflinger and the camera HAL (unreadable): its
    # pss is an upper bound; fdinfo's count gives the lower bound, here the true figure
    assert procs[3100]["pss_exact"] is False
    assert procs[3100]["pss_min_bytes"] == want["3100"]["pss_bytes"]
    assert procs[3100]["pss_bytes"] >= want["3100"]["pss_bytes"]
    assert procs[3100]["buffers"] == len(want["3100"]["buffers"])
    apps = {a["uid"]: a for a in report["apps"]}
    assert apps[10201]["rss_bytes"] == EXPECTED["per_uid"]["10201"]["rss_union"]
    assert apps[10201]["pss_min_bytes"] == EXPECTED["per_uid"]["10201"]["pss_sum"]

    # everything else is unknown: null in JSON, not zero
    for pid in (590, 598, 612, 640, 700, 1200, 1800, 3300):
        assert procs[pid]["unreadable"] is True, pid
        assert procs[pid]["rss_bytes"] is None and procs[pid]["pss_bytes"] is None, pid
    assert apps[10202]["rss_bytes"] is None and apps[1000]["pss_bytes"] is None
    assert report["totals"]["kernel_only_bytes"] is None
    assert report["kernel_only"] is None
    assert report["access"] == {
        "mode": "run-as",
        "restricted": True,
        "run_as_packages": [CAMERA],
        "note": report["access"]["note"],
    }
    [run_as] = report["run_as"]
    assert (run_as["status"], run_as["pids"], run_as["uid"]) == ("ok", [3100, 3160], 10201)

    # other sources: SurfaceFlinger's and the app's gralloc lists, each marked with its source
    sources = {(g["source"], g["pid"]) for g in report["graphic_buffers"]}
    assert ("dumpsys SurfaceFlinger", None) in sources
    assert (f"dumpsys gfxinfo {CAMERA}", 3100) in sources
    sf = next(g for g in report["graphic_buffers"] if g["source"] == "dumpsys SurfaceFlinger")
    assert [a["requestor"] for a in sf["allocated"]] == ["sf-fb0", "sf-fb1", "sf-fb2", "screenshot"]

    # the table says "unknown" and shows each block apart
    table = run_dmaprof("show", out, env={**user_phone.env, "COLUMNS": "200"}).stdout.decode()
    assert "unknown" in table and "processes not readable" in table
    assert "Reported by dumpsys meminfo" in table and "Apps read through run-as" in table
    assert "Graphic buffers reported by dumpsys" in table

    # nothing left behind: the shell's workdir and the app's scratch dir are gone
    assert device_tmp_entries(user_phone.root) == []
    assert _app_home(user_phone, CAMERA) == []


def test_non_debuggable_and_unknown_apps_are_reported(
    user_phone: EmulatedPhone, tmp_path: Path
) -> None:
    out = tmp_path / "gallery.dmaprof"
    result, report = _snapshot(user_phone, out, "--app", GALLERY, "--app", "com.example.nope")
    err = result.stderr.decode()
    assert f"--app {GALLERY}: not debuggable" in err
    assert "run-as: package not debuggable: com.example.gallery" in err
    assert "--app com.example.nope: no such package" in err
    assert out.exists()  # the rest of the capture is written
    status = {r["package"]: r for r in report["run_as"]}
    assert status[GALLERY]["status"] == "not_debuggable"
    assert status["com.example.nope"]["status"] == "unknown_package"
    assert any("not debuggable" in w for w in report["warnings"])
    procs = {p["pid"]: p for p in report["processes"]}
    assert procs[3300]["unreadable"] is True and procs[3300]["rss_bytes"] is None
    assert report["access"]["mode"] == "shell"
    assert report["system_totals"]["dmabuf_bytes"] == EXPECTED["totals"]["total_bytes"]
    # gfxinfo works for any app: the gallery's own gralloc list, marked as such
    gallery = [g for g in report["graphic_buffers"] if g["package"] == GALLERY]
    assert [g["pid"] for g in gallery] == [3300]
    assert [a["requestor"] for a in gallery[0]["allocated"]] == ["GLConsumer"]
    nope = [g for g in report["graphic_buffers"] if g["package"] == "com.example.nope"]
    assert nope and nope[0]["note"] == "No process found for: com.example.nope"
    assert device_tmp_entries(user_phone.root) == []


def test_shell_snapshot_without_app_still_reads_the_system_totals(
    user_phone: EmulatedPhone, tmp_path: Path
) -> None:
    out = tmp_path / "shell.dmaprof"
    _, report = _snapshot(user_phone, out)
    assert report["run_as"] == [] and report["access"]["mode"] == "shell"
    assert report["system_totals"]["heaps_bytes"] == EXPECTED["totals"]["heap_exported_bytes"]
    procs = {p["pid"]: p for p in report["processes"]}
    assert procs[3100]["rss_bytes"] is None  # not asked for: unknown
    # screencap runs as the shell uid: readable; its buffer is shared with surfaceflinger
    assert procs[4100]["rss_bytes"] == EXPECTED["processes"]["4100"]["rss_bytes"]
    assert procs[4100]["pss_min_bytes"] == EXPECTED["processes"]["4100"]["pss_bytes"]
    dump = parse_dump(load_capture(out).dump)
    assert dump.section("dumpsys_meminfo") is not None
    assert not any(n.startswith("runas/") for n in dump.names)


def test_root_snapshot_stays_fast_and_skips_user_build_sources(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root(dumpsys=True, run_as=True)
    phone = adb_server.phone(root)  # adbd runs as root
    try:
        out = tmp_path / "root.dmaprof"
        _, report = _snapshot(phone, out, "--app", CAMERA)
        dump = parse_dump(load_capture(out).dump)
        assert not any(n.startswith("dumpsys_") for n in dump.names)
        assert [r["status"] for r in report["run_as"]] == ["skipped"]
        assert report["access"]["mode"] == "root" and not report["access"]["restricted"]
        assert report["system_totals"] is None
        procs = {p["pid"]: p for p in report["processes"]}
        assert procs[3100]["pss_bytes"] == EXPECTED["processes"]["3100"]["pss_bytes"]
        assert procs[612]["rss_bytes"] == EXPECTED["processes"]["612"]["rss_bytes"]
    finally:
        phone.stop()


def test_devices_says_which_modes_each_phone_offers(
    adb_server: AdbServer, phone_root: PhoneRoot
) -> None:
    shell = adb_server.phone(phone_root(dumpsys=True, run_as=True), shell_uid=2000)
    rooted = adb_server.phone(phone_root(run_as=True))
    plain = adb_server.phone(phone_root(), shell_uid=2000)
    try:
        result = run_dmaprof("devices", "--format", "json", env=adb_server.env)
        assert result.returncode == 0, result.stderr
        devices = {d["serial"]: d for d in json.loads(result.stdout)["devices"]}
        user = devices[shell.serial]
        assert user["modes"] == ["run-as", "shell"]
        assert user["run_as"] == [CAMERA] and user["run_as_checked"] == 2
        assert devices[rooted.serial]["modes"] == ["root", "run-as", "shell"]
        assert devices[plain.serial]["modes"] == ["shell"]
        assert devices[plain.serial]["run_as_checked"] is None  # no run-as on that phone
        table = run_dmaprof("devices", env={**adb_server.env, "COLUMNS": "250"}).stdout.decode()
        assert f"run-as: {CAMERA}" in table and "shell only" in table
    finally:
        for phone in (shell, rooted, plain):
            phone.stop()


def test_bad_package_names_are_refused(user_phone: EmulatedPhone, tmp_path: Path) -> None:
    result = run_dmaprof(
        "snapshot", "-o", tmp_path / "x.dmaprof", "--app", "a;reboot", env=user_phone.env
    )
    assert result.returncode != 0
    assert b"not a package name" in result.stderr
    assert not (tmp_path / "x.dmaprof").exists()


def test_app_side_spawns_are_counted_once(phone_root: PhoneRoot) -> None:
    """The run-as side's fd steps run in the foreground of the collector's shell; the tally
    its dump reports is the number of processes really started (mksh: each one fork+exec),
    the foreground worker's counted once."""
    from tests.emuphone import scene as S
    from tests.test_collector import getprop_spawns, parse_dump

    root = phone_root(dumpsys=True, run_as=True)
    wd = S.install_collector(root, 2000, "dp-app-spawns")
    run = S.run_collector(root, ["-a", CAMERA], uid=2000, script=f"{wd}/collect.sh")
    assert run.returncode == 0, run.stderr
    dump = parse_dump(run.stdout)
    assert run.spawns is not None
    main = int(dict(dump.kv("end"))["spawns"])
    app = int(dict(dump.kv(f"runas/{CAMERA}/end"))["spawns"])  # run-as's own shell
    assert app > 0
    assert main + app == run.spawns - getprop_spawns(root) + 1
