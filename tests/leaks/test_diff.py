"""Exact diffs of hand-made capture pairs with known answers.

Every capture is the pixel-like fixture phone (fixtures/phones/pixel-like.json) collected by
the real collector, before and after an edit whose effect is computed here by hand: sizes
are the scene's own (FB = 10371072, CAM = 3121152, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dmaprof.capture.dump import parse_dump
from dmaprof.leaks.diff import DifferentDevicesError, diff_sides
from dmaprof.leaks.side import Side, side_from_capture
from tests.leaks import phonescene as P
from tests.leaks.conftest import Captures, Pair, capture_of

MiB = 1024 * 1024
SURFACE = "SurfaceView - com.example.camera#0"


_SIDES: dict[Path, Side] = {}


def side(path: Path) -> Side:
    """Each capture is analysed once per session (the base capture is in every pair)."""
    if path not in _SIDES:
        _SIDES[path] = side_from_capture(capture_of(path))
    return _SIDES[path]


def sides(pair: Any) -> tuple[Side, Side]:
    return side(pair.before), side(pair.after)


def doc_of(pair: Any, **kw: Any) -> dict[str, Any]:
    before, after = sides(pair)
    return diff_sides(before, after, **kw).to_json()


def by_pid(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    rows = [p for p in doc["processes"] if p["status"] == "kept"]
    return {p["pid"]: p for p in rows}


def changed(doc: dict[str, Any]) -> dict[int, tuple[int, int, int]]:
    """pid -> (delta rss, delta pss, delta buffers) of the processes that changed."""
    return {
        p["pid"]: (p["delta_rss_bytes"], p["delta_pss_bytes"], p["delta_buffers"])
        for p in doc["processes"]
        if p["delta_rss_bytes"] or p["delta_pss_bytes"] or p["delta_buffers"]
    }


# --------------------------------------------------------------------------- growth


def leak_four(scene: dict[str, Any]) -> None:
    P.leak(scene, 3100, 4, MiB, SURFACE, first_inode=22)


def test_growth_of_one_app(captures: Captures) -> None:
    doc = doc_of(captures.pair("leak4", leak_four))
    assert doc["schema"] == "dmaprof.diff/2"
    assert doc["same_device"] is True and doc["same_boot"] is True and doc["warnings"] == []
    t = doc["totals"]
    assert (t["bytes_before"], t["bytes_after"], t["delta_bytes"]) == (76726272, 80920576, 4 * MiB)
    assert (t["buffers_before"], t["buffers_after"], t["delta_buffers"]) == (21, 25, 4)
    assert t["delta_kernel_only_bytes"] == 0
    assert doc["buffers"]["new"] == [
        {
            "inode": i,
            "size_bytes": MiB,
            "exporter": "system",
            "name": SURFACE,
            "holders": [3100],
            "kernel_only": False,
        }
        for i in (22, 23, 24, 25)
    ]
    assert doc["buffers"]["freed"] == []
    assert (doc["buffers"]["kept_count"], doc["buffers"]["moved_count"]) == (21, 0)
    assert changed(doc) == {3100: (4 * MiB, 4 * MiB, 4)}
    camera = by_pid(doc)[3100]
    assert camera["name"] == "com.example.camera"
    assert (camera["rss_bytes_before"], camera["rss_bytes_after"]) == (9388032, 9388032 + 4 * MiB)
    assert (camera["gained_buffers"], camera["gained_new_buffers"], camera["lost_buffers"]) == (
        4,
        4,
        0,
    )
    assert camera["start_time_ticks"] == 812
    [app] = [a for a in doc["apps"] if a["delta_rss_bytes"]]
    assert (app["uid"], app["label"], app["delta_rss_bytes"], app["delta_buffers"]) == (
        10201,
        "com.example.camera",
        4 * MiB,
        4,
    )
    cgroups = {c["path"]: c["delta_rss_bytes_with_descendants"] for c in doc["cgroups"]}
    assert cgroups["/uid_10201/pid_3100"] == cgroups["/uid_10201"] == cgroups["/"] == 4 * MiB
    [system] = [e for e in doc["exporters"] if e["exporter"] == "system"]
    assert (system["delta_bytes"], system["new_buffers"], system["freed_buffers"]) == (
        4 * MiB,
        4,
        0,
    )
    names = {n["name"]: n for n in doc["names"]}
    assert names[SURFACE]["status"] == "new" and names[SURFACE]["delta_buffers"] == 4
    assert doc["suspects"] == [
        {
            "kind": "process_buffers",
            "key": f"process:com.example.camera[3100]/name:{SURFACE}",
            "delta_bytes": 4 * MiB,
            "delta_buffers": 4,
            "reason": f"com.example.camera (3100) holds 4 more buffers named '{SURFACE}' "
            "(+4.0 MiB), all held by fd only, none freed",
            "pid": 3100,
            "process": "com.example.camera",
            "name": SURFACE,
            "freed": 0,
            "held_by": {"fd_only": 4, "map_only": 0, "both": 0},
            "rank": 1,
        }
    ]


@pytest.mark.parametrize(("side_taken", "pid"), [("after", 598), ("before", 3300)])
def test_collector_running_as_a_scene_pid_leaves_that_process_in(
    captures: Captures, side_taken: str, pid: int
) -> None:
    """Chrooted over the fake /proc, the collector runs with a host pid. When that pid is one
    of the scene's (598: the composer, holding sf-fb0..2 with surfaceflinger; 3300: the
    gallery) it is not that process, which stays in: the diff is the one of
    test_growth_of_one_app (a CI run once had the composer dropped as "the collector" on one
    side: moved_count 3, composer exited)."""
    base_kw: dict[str, Any] = {"wallclock": 1_700_000_000.0}
    if side_taken == "before":
        before = captures.one(f"base-as-{pid}", P.pixel(), collector_pid=pid, **base_kw)
        after = captures.pair("leak4", leak_four).after
    else:
        before = captures.base()
        after = captures.pair(f"leak4-as-{pid}", leak_four, collector_pid=pid).after
    taken = before if side_taken == "before" else after
    meta_section = parse_dump(capture_of(taken).dump).section("meta")
    assert meta_section is not None
    meta = meta_section.kv_dict()
    assert (meta["pid"], meta["pid_in_proc"]) == (str(pid), "0")
    doc = doc_of(Pair(before, after))
    assert (doc["buffers"]["kept_count"], doc["buffers"]["moved_count"]) == (21, 0)
    assert by_pid(doc)[pid]["status"] == "kept"
    assert changed(doc) == {3100: (4 * MiB, 4 * MiB, 4)}
    expected = doc_of(captures.pair("leak4", leak_four))
    assert doc["processes"] == expected["processes"]
    assert doc["buffers"] == expected["buffers"] and doc["suspects"] == expected["suspects"]


def test_growth_shared_with_surfaceflinger_names_both_holders(captures: Captures) -> None:
    def shared(scene: dict[str, Any]) -> None:
        for inode in (22, 23):
            P.add_buffer(scene, inode, 2 * MiB, SURFACE, {3100: "fd", 612: "both"})

    doc = doc_of(captures.pair("shared", shared))
    assert changed(doc) == {3100: (4 * MiB, 2 * MiB, 2), 612: (4 * MiB, 2 * MiB, 2)}
    assert [b["holders"] for b in doc["buffers"]["new"]] == [[612, 3100], [612, 3100]]
    reasons = [s["reason"] for s in doc["suspects"]]
    assert reasons == [
        f"com.example.camera (3100) holds 2 more buffers named '{SURFACE}' (+4.0 MiB), all "
        "held by fd only, none freed; shared with surfaceflinger (612)",
        f"surfaceflinger (612) holds 2 more buffers named '{SURFACE}' (+4.0 MiB), all held by "
        "fd and mapped, none freed; shared with com.example.camera (3100)",
    ]


# --------------------------------------------------------------------------- pid reuse


def reuse_pid(scene: dict[str, Any]) -> dict[str, Any]:
    # the gallery (pid 3300) died; its own buffers died with it; the pid went to a new app
    for inode in (16, 17):
        P.free_buffer(scene, inode)
    P.drop_holder(scene, 15, 3300)
    P.replace_process(
        scene, 3300, name="com.example.newapp", uid=10203, cmdline=["com.example.newapp"]
    )
    scene["packages"].append({"name": "com.example.newapp", "uid": 10203})
    P.add_buffer(scene, 30, 524288, "newapp-buf", {3300: "fd"})
    return {"start_times": {3300: 9000}}


def test_reused_pid_is_a_new_process(captures: Captures) -> None:
    doc = doc_of(captures.pair("reuse", reuse_pid))
    rows = [p for p in doc["processes"] if p["pid"] == 3300]
    assert [
        (p["status"], p["name"], p["start_time_ticks"], p["delta_rss_bytes"], p["delta_buffers"])
        for p in rows
    ] == [
        ("new", "com.example.newapp", 9000, 524288, 1),
        ("exited", "com.example.gallery", 812, -5898240, -3),
    ]
    # mediaswcodec is now the only holder of c2-output-0: its pss doubles, its rss stays
    assert by_pid(doc)[700]["delta_rss_bytes"] == 0
    assert by_pid(doc)[700]["delta_pss_bytes"] == 786432
    assert [(b["inode"], b["holders"]) for b in doc["buffers"]["freed"]] == [
        (16, [3300]),
        (17, [3300]),
    ]
    assert [(b["inode"], b["holders"]) for b in doc["buffers"]["new"]] == [(30, [3300])]
    apps = {a["uid"]: a["status"] for a in doc["apps"]}
    assert (apps[10202], apps[10203]) == ("gone", "new")
    [suspect] = doc["suspects"]
    assert suspect["reason"] == (
        "com.example.newapp (3300) (a process started after BEFORE) holds 1 more buffer named "
        "'newapp-buf' (+512.0 KiB), all held by fd only, none freed"
    )


# --------------------------------------------------------------------------- moves, frees


def test_buffer_moving_between_holders_is_not_growth(captures: Captures) -> None:
    doc = doc_of(captures.pair("move", lambda s: P.move_buffer(s, 9, 1200, 1800)))
    assert doc["totals"]["delta_bytes"] == 0 and doc["totals"]["delta_buffers"] == 0
    assert doc["buffers"]["new"] == doc["buffers"]["freed"] == []
    assert doc["buffers"]["moved_count"] == 1
    assert changed(doc) == {1800: (196608, 196608, 1), 1200: (-196608, -196608, -1)}
    assert (by_pid(doc)[1800]["gained_buffers"], by_pid(doc)[1800]["gained_new_buffers"]) == (1, 0)
    assert by_pid(doc)[1200]["lost_buffers"] == 1
    assert doc["suspects"] == []


def test_freed_buffers(captures: Captures) -> None:
    def free(scene: dict[str, Any]) -> None:
        P.free_buffer(scene, 13)
        P.free_buffer(scene, 18)

    doc = doc_of(captures.pair("freed", free))
    assert doc["totals"]["delta_bytes"] == -(2097152 + 10371072)
    assert doc["buffers"]["freed"] == [
        {
            "inode": 18,
            "size_bytes": 10371072,
            "exporter": "system",
            "name": "screenshot",
            "holders": [612, 4100],
            "kernel_only": False,
        },
        {
            "inode": 13,
            "size_bytes": 2097152,
            "exporter": "system",
            "name": "cam-jpeg-out",
            "holders": [3100],
            "kernel_only": False,
        },
    ]
    assert doc["buffers"]["new"] == []
    assert changed(doc) == {
        3100: (-2097152, -2097152, -1),
        612: (-10371072, -5185536, -1),
        4100: (-10371072, -5185536, -1),
    }
    assert doc["suspects"] == []
    [exp] = [e for e in doc["exporters"] if e["exporter"] == "system"]
    assert (exp["freed_buffers"], exp["freed_bytes"]) == (2, 2097152 + 10371072)


def test_unchanged_device(captures: Captures) -> None:
    base = captures.base()
    doc = doc_of(type("Pair", (), {"before": base, "after": base}))
    assert doc["totals"]["delta_bytes"] == 0
    assert changed(doc) == {}
    assert doc["buffers"]["new"] == doc["buffers"]["freed"] == [] and doc["suspects"] == []
    assert all(p["status"] == "kept" for p in doc["processes"])
    assert {p["pid"] for p in doc["processes"]} == {
        590,
        598,
        612,
        640,
        700,
        1200,
        1800,
        3100,
        3160,
        3300,
        4100,
    }


# --------------------------------------------------------------------------- mappings, kernel


def test_mapped_without_fd_growth(captures: Captures) -> None:
    def maps(scene: dict[str, Any]) -> None:
        P.add_buffer(scene, 40, 262144, "mapleak", {3300: "map"})
        P.add_buffer(scene, 41, 262144, "mapleak", {3300: "map"})
        # systemui closes its fd of StatusBar#0 but keeps the mapping
        ui = P.process(scene, 1800)
        ui["fds"] = [f for f in ui["fds"] if f.get("buffer") != 5]

    doc = doc_of(captures.pair("maps", maps))
    gallery, ui = by_pid(doc)[3300], by_pid(doc)[1800]
    assert (gallery["delta_map_only"], gallery["delta_map_only_bytes"]) == (2, 524288)
    assert (ui["delta_map_only"], ui["delta_both"], ui["delta_map_only_bytes"]) == (1, -1, 622592)
    assert ui["delta_rss_bytes"] == 0
    assert [(s["kind"], s["reason"]) for s in doc["suspects"]] == [
        (
            "mapped_without_fd",
            "com.android.systemui (1800) maps 1 more buffer it holds no fd to "
            "(+608.0 KiB): mapped without an fd, the pattern of a missing munmap()",
        ),
        (
            "process_buffers",
            "com.example.gallery (3300) holds 2 more buffers named 'mapleak' "
            "(+512.0 KiB), all mapped without an fd, none freed",
        ),
    ]


def test_kernel_only_growth(captures: Captures) -> None:
    def inflight(scene: dict[str, Any]) -> None:
        P.add_buffer(scene, 50, MiB, "binder-inflight-2", {})
        P.add_buffer(scene, 51, MiB, "binder-inflight-2", {})

    doc = doc_of(captures.pair("kernel", inflight))
    # sysfs (the modern variant's inventory) has no names: nobody holds them, so no fdinfo
    t = doc["totals"]
    assert (t["delta_kernel_only_buffers"], t["delta_kernel_only_bytes"]) == (2, 2 * MiB)
    assert [b["kernel_only"] for b in doc["buffers"]["new"]] == [True, True]
    assert changed(doc) == {}
    assert [(s["kind"], s["reason"]) for s in doc["suspects"]] == [
        (
            "kernel_only",
            "2 more buffers (+2.0 MiB) held by no process (kernel-only: in flight "
            "over binder, imported by a driver, or leaked); most of it: exporter 'system' "
            "(+2.0 MiB); name '<unknown>' (+2.0 MiB)",
        ),
    ]


# --------------------------------------------------------------------------- reboot, device


def reboot(scene: dict[str, Any]) -> None:
    scene["boot_id"] = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
    leak_four(scene)
    P.free_buffer(scene, 13)


def test_reboot_shows_only_aggregates(captures: Captures) -> None:
    doc = doc_of(captures.pair("reboot", reboot))
    assert doc["same_boot"] is False
    assert doc["warnings"][0].startswith("REBOOT: the device rebooted between the captures")
    buffers = doc["buffers"]
    assert (buffers["compared"], buffers["new"], buffers["freed"]) == (False, [], [])
    assert doc["totals"]["delta_bytes"] == 4 * MiB - 2097152
    camera = [p for p in doc["processes"] if p["name"] == "com.example.camera"]
    assert [
        (p["status"], p["pids"], p["start_time_ticks"], p["delta_rss_bytes"], p["delta_buffers"])
        for p in camera
    ] == [("kept", [3100], None, 2 * MiB, 3)]
    kinds = {s["kind"] for s in doc["suspects"]}
    assert "process_buffers" not in kinds  # needs buffer identity
    assert [s["reason"] for s in doc["suspects"] if s["kind"] == "process"] == [
        "com.example.camera holds 3 more buffers than before the reboot (+2.0 MiB rss, "
        "+2.0 MiB pss)"
    ]
    assert [s["reason"] for s in doc["suspects"] if s["kind"] == "name"] == [
        f"4 more buffers named '{SURFACE}' system-wide (+4.0 MiB): compared with before the reboot"
    ]


def test_different_device_is_refused(captures: Captures) -> None:
    pair = captures.pair("other-serial", lambda s: None, serial="emu-5556")
    before, after = sides(pair)
    with pytest.raises(DifferentDevicesError) as info:
        diff_sides(before, after)
    assert "refusing to compare captures of different devices" in info.value.message
    assert "emu-5554" in info.value.message and "emu-5556" in info.value.message
    forced = diff_sides(before, after, force=True).to_json()
    assert forced["forced"] is True and forced["same_device"] is False
    assert "compared anyway (--force)" in forced["warnings"][0]


def test_device_by_model_and_fingerprint_without_serials(captures: Captures) -> None:
    same = captures.pair("noserial-b", lambda s: None, serial="")
    other = captures.pair(
        "noserial-a",
        lambda s: s["props"].update(
            {"ro.build.fingerprint": "fakeco/pixellike/pixellike:15/AP1A/1:user/release-keys"}
        ),
        serial="",
    )
    base = side(captures.one("noserial", P.pixel(), serial="", wallclock=1_700_000_000.0))
    assert diff_sides(base, side(same.after)).same_device is True
    with pytest.raises(DifferentDevicesError):
        diff_sides(base, side(other.after))


# --------------------------------------------------------------------------- hand-written dumps


def test_fds_without_identity_are_called_out() -> None:
    """Kernels before 5.3 (anon_inode:dmabuf): no buffer identity behind the fds."""
    from dmaprof.analyze import analyze
    from dmaprof.leaks.side import CaptureInfo, side_from_analysis
    from tests.analyze.analyze_dumpgen import Buf, Proc, Scene

    def side(fds: dict[int, int | str]) -> Side:
        scene = Scene(
            era="anon",
            buffers=[Buf(1, 4096), Buf(2, 8192)],
            procs=[Proc(pid=100, name="app", fds=fds)],
        )
        return side_from_analysis(analyze(scene.build()), CaptureInfo("x", serial="s", boot_id="b"))

    doc = diff_sides(side({5: 1}), side({5: 1, 6: 2})).to_json()
    assert doc["warnings"][0].startswith(
        "fds and mappings without per-buffer identity (BEFORE 1, AFTER 2; anon_inode:dmabuf"
    )
    assert [(p["pid"], p["delta_fds"], p["delta_rss_bytes"]) for p in doc["processes"]] == [
        (100, 1, 0)
    ]


def test_benchmark_script_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import runpy
    import sys

    from tests.leaks.conftest import REPO

    monkeypatch.setattr(
        sys,
        "argv",
        [
            "bench_diff.py",
            "--processes",
            "40",
            "--fds",
            "2000",
            "--buffers",
            "600",
            "--maps",
            "200",
            "--repeat",
            "1",
        ],
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / "scripts" / "bench_diff.py"), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "diff itself, total:" in out and "found: 60 new, 60 freed" in out


def test_bugreport_against_snapshot_compares_firstboot() -> None:
    from dmaprof.leaks.diff import check_devices
    from dmaprof.leaks.side import CaptureInfo

    snap = CaptureInfo("snap", serial="S1", boot_id="0d1e2f3a-4b5c", firstboot="1772433240123")
    report = CaptureInfo(
        "br", serial="S1", boot_id="firstboot:1772433240123", firstboot="1772433240123"
    )
    same, same_boot, warnings = check_devices(report, snap, force=False)
    assert (same, same_boot, warnings) == (True, True, [])

    later = CaptureInfo(
        "br2", serial="S1", boot_id="firstboot:1772499999999", firstboot="1772499999999"
    )
    same, same_boot, warnings = check_devices(snap, later, force=False)
    assert (same, same_boot) == (True, False)
    assert warnings[0].startswith("REBOOT: the device rebooted between the captures")

    # an older snapshot without the property: nothing tells, so no buffer-level claims
    old = CaptureInfo("old", serial="S1", boot_id="0d1e2f3a-4b5c")
    same, same_boot, warnings = check_devices(old, report, force=False)
    assert (same, same_boot) == (True, False)
    assert len(warnings) == 1
    assert warnings[0].startswith("cannot tell whether the device rebooted between the captures")

    # two snapshots: the kernel's boot id decides, whatever firstboot says
    again = CaptureInfo("again", serial="S1", boot_id="0d1e2f3a-4b5c", firstboot="1")
    assert check_devices(snap, again, force=False)[1] is True
