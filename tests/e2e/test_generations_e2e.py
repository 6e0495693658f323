"""One phone per Android generation, through the real adb server and the emulated phone: each
gives its hand-computed report (fixtures/phones/<phone>.expected.json) exactly, in every view
and charge policy.

The phones (fixtures/phones/android*.json) follow the documented formats of their kernel
(../shared/reference/kernel-interfaces.md; tests/emuphone/scene.py GENERATION_VARIANTS):
Android 9 on 4.14 (ION, `/dmabuf:` links, no dma-buf fdinfo lines, v1 cgroups only), Android
11 on 5.4 (fdinfo without `ino:`, debugfs bufinfo, the uid/pid tree in v1 cpuacct and `0::/`),
Android 13 on 5.15 (sysfs stats, the tree in v2), Android 16 on 6.6 (the BPF iterator). Each
snapshot is taken once per phone (`dmaprof snapshot`); every view and charge is then analysed
from that capture, and once through `dmaprof show` itself.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dmaprof.analyze import DEFAULT_SERVICE_REGEX
from dmaprof.capture.container import load_capture
from dmaprof.render.report import render_csv
from dmaprof.sources.show import analyze_capture
from tests.e2e.conftest import REPO, run_dmaprof
from tests.e2e.generation_truth import CHARGES, expected_report, is_app
from tests.emuphone.harness import AdbServer
from tests.emuphone.minroot import build_base_root
from tests.emuphone.scene import build_scene, kernel_variant, load_scene, remove_tree

PHONES = REPO / "fixtures" / "phones"
GENERATIONS = ("android9-4.14", "android11-5.4", "android13-5.15", "android16-6.6")
#: processes named by vendors (docs/attribution.md §6, the vendor rows), per phone
VENDOR_SERVICES = {
    "android9-4.14": ["vendor.qti.hardware.display.allocator@1.0-service"],
    "android11-5.4": ["camerahalserver", "vendor.mediatek.hardware.mms@1.5-service"],
    "android13-5.15": ["samsung.hardware.media.c2@1.2-service"],
    "android16-6.6": [
        "vendor.qti.hardware.display.allocator-service",
        "vendor.qti.media.c2@1.0-service",
    ],
}
VIEW_KEYS = {
    "process": ("processes", "pid"),
    "app": ("apps", "uid"),
    "cgroup": ("cgroups", "path"),
    "exporter": ("exporters", "exporter"),
    "name": ("names", "name"),
    "buffer": ("buffers", "name"),
}


def scene_of(phone: str) -> dict[str, Any]:
    scene: dict[str, Any] = load_scene(PHONES / f"{phone}.json")
    return scene


def truth(phone: str) -> dict[str, Any]:
    kv = kernel_variant(phone)
    return expected_report(
        scene_of(phone),
        inventory_names=kv.debugfs or kv.bpf_iter,
        dma_heap=kv.dma_heap,
        ion_debugfs=kv.ion and kv.debugfs,
    )


def expected_of(phone: str) -> dict[str, Any]:
    want: dict[str, Any] = json.loads((PHONES / f"{phone}.expected.json").read_text())
    return want


@pytest.mark.parametrize("phone", GENERATIONS)
def test_the_expected_file_is_the_hand_calculation(phone: str) -> None:
    scene = scene_of(phone)
    assert scene["variant"] == phone
    assert expected_of(phone) == json.loads(json.dumps(truth(phone)))


# Worked by hand from the scenes (FB = 10371072, CAM = 3121152):
#   all buffers: 2 FB + 65536 + 2 CAM + 1572864 + 1048576 + 20480 + 2097152 + 4194304 + 131072
#     + 622592 + 1048576 + 2097152 + 196608 + 1179648 + 2359296 = 43618304 (android11-5.4:
#     + mms-blit 786432 = 44404736); kernel-only: binder-inflight + gpu-import = 3145728
#   com.example.camera (uid 10201, two processes) holds SurfaceView-cam, cam-preview (CAM each),
#     thumb-cache 1048576 (both processes), gralloc-handoff 1179648, cam-raw 2359296
#     (+ mms-blit on android11): rss 10829824 (11616256);
#     shared: CAM/3 + CAM/3 + 1048576 + 1179648/2 + 2359296/2 = 4898816 (+ 786432/2: 5292032);
#     client: every one of them is shared with a service or only with itself: all its rss
HAND = {
    "android9-4.14": (43618304, 10829824, 4898816),
    "android11-5.4": (44404736, 11616256, 5292032),
    "android13-5.15": (43618304, 10829824, 4898816),
    "android16-6.6": (43618304, 10829824, 4898816),
}


@pytest.mark.parametrize("phone", GENERATIONS)
def test_the_expected_file_agrees_with_the_figures_worked_by_hand(phone: str) -> None:
    want = expected_of(phone)
    total, camera_rss, camera_shared = HAND[phone]
    assert want["totals"]["bytes"] == total
    assert want["totals"]["kernel_only_bytes"] == 3145728
    assert want["totals"]["userspace_bytes"] == total - 3145728
    for charge, charged in (
        ("shared", camera_shared),
        ("full", camera_rss),
        ("client", camera_rss),
    ):
        app = want["charges"][charge]["apps"]["10201"]
        assert (app["rss_bytes"], app["pss_bytes"]) == (camera_rss, charged), charge
        tree = want["charges"][charge]["cgroups"]["/uid_10201"]
        assert tree["pss_bytes_with_descendants"] == charged
        assert tree["rss_bytes_with_descendants"] == camera_rss


@pytest.fixture(scope="module", params=GENERATIONS)
def capture(
    request: pytest.FixtureRequest, adb_server: AdbServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """One snapshot of the phone through adb, as root (adbd root)."""
    phone_name = str(request.param)
    work = tmp_path_factory.mktemp(phone_name)
    root = work / "root"
    build_base_root(root)
    build_scene(scene_of(phone_name), root, phone_name)
    phone = adb_server.phone(root)
    try:
        out = work / f"{phone_name}.dmaprof"
        result = run_dmaprof("snapshot", "-q", "-s", phone.serial, "-o", out, env=phone.env)
        assert result.returncode == 0, result.stderr.decode()
        devices = run_dmaprof("devices", "--format", "json", env=phone.env)
        assert devices.returncode == 0, devices.stderr.decode()
        [device] = [d for d in json.loads(devices.stdout)["devices"] if d["serial"] == phone.serial]
        SOURCES[phone_name] = device["sources"]
        yield phone_name, out
    finally:
        phone.stop()
        remove_tree(root)


SOURCES: dict[str, dict[str, str]] = {}  # `dmaprof devices` of each phone, while it was up


def test_devices_names_the_sources_of_each_kernel(capture: tuple[str, Path]) -> None:
    phone, path = capture
    kv = kernel_variant(phone)
    yes = {True: "yes", False: "absent"}
    assert {k: SOURCES[phone][k] for k in ("sysfs_buffers", "bpf_iter", "debugfs_bufinfo")} == {
        "sysfs_buffers": yes[kv.sysfs_stats],
        "bpf_iter": yes[kv.bpf_iter],
        "debugfs_bufinfo": yes[kv.debugfs],
    }
    assert SOURCES[phone]["dma_heap"] == yes[kv.dma_heap]
    assert SOURCES[phone]["ion"] == yes[kv.ion]
    assert SOURCES[phone]["fdinfo"] == "yes"
    capabilities = load_capture(path).meta["capabilities"]
    assert capabilities["ion"] is kv.ion
    assert capabilities["sysfs_buffers"] is kv.sysfs_stats
    assert capabilities["bpf_iter"] is kv.bpf_iter


def _report(path: Path, charge: str) -> dict[str, Any]:
    _, report = analyze_capture(load_capture(path), charge=charge)
    return report


def _check(report: dict[str, Any], want: dict[str, Any], charge: str) -> None:
    assert report["warnings"] == [], report["warnings"]
    assert report["coverage"]["lower_bound"] is False
    assert report["cgroup_hierarchy"] == want["cgroup_hierarchy"]
    totals = report["totals"]
    assert {k: totals[k] for k in want["totals"]} == want["totals"]
    names = {b["inode"]: b["name"] or "" for b in report["buffers"]}
    assert sorted(names[b["inode"]] for b in report["kernel_only"]) == want["kernel_only"]
    got_buffers = sorted(
        (
            {
                "name": b["name"] or "",
                "size_bytes": b["size_bytes"],
                "exporter": b["exporter"],
                "holders": sorted(b["holders"]),
            }
            for b in report["buffers"]
        ),
        key=lambda b: (b["name"], b["size_bytes"]),
    )
    assert got_buffers == want["buffers"]
    for section, key in (("exporters", "exporter"), ("names", "name")):
        got = {
            r[key]: {k: r[k] for k in next(iter(want[section].values()))} for r in report[section]
        }
        assert got == want[section], section
    assert [{k: h[k] for k in ("heap", "source", "buffers", "bytes")} for h in report["heaps"]] == (
        want["heaps"]
    )
    if "ion_heap_total" in want:
        pools = {p["counter"]: p for p in report["pools"]}
        assert pools["ion_heap_total:system"]["bytes"] == want["ion_heap_total"]
    per = want["charges"][charge]
    # `name` in the expected file is for the reader (the report's is the 15-byte comm)
    fields = [k for k in next(iter(per["processes"].values())) if k != "name"]
    got_procs = {str(p["pid"]): {k: p[k] for k in fields} for p in report["processes"]}
    assert got_procs == {pid: {k: p[k] for k in fields} for pid, p in per["processes"].items()}
    app_fields = ("rss_bytes", "pss_bytes", "pids")
    got_apps = {
        str(a["uid"]): {k: a[k] for k in app_fields} for a in report["apps"] if a["rss_bytes"]
    }
    assert got_apps == per["apps"]
    cg_fields = next(iter(per["cgroups"].values())).keys()
    got_cg = {c["path"]: {k: c[k] for k in cg_fields} for c in report["cgroups"]}
    assert got_cg == per["cgroups"]


@pytest.mark.parametrize("charge", CHARGES)
def test_every_generation_gives_its_hand_computed_report(
    capture: tuple[str, Path], charge: str
) -> None:
    phone, path = capture
    _check(_report(path, charge), expected_of(phone), charge)


def _csv_rows(report: dict[str, Any], by: str) -> dict[str, dict[str, str]]:
    out = io.StringIO()
    render_csv(report, by, None, out)
    key = VIEW_KEYS[by][1]
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    if by == "buffer":
        return {f"{r['name']}/{r['size_bytes']}": r for r in rows}
    return {(r.get(key) or ""): r for r in rows}


@pytest.mark.parametrize("charge", CHARGES)
def test_every_view_shows_the_hand_computed_figures(capture: tuple[str, Path], charge: str) -> None:
    phone, path = capture
    want = expected_of(phone)
    per = want["charges"][charge]
    report = _report(path, charge)
    procs = _csv_rows(report, "process")
    assert {
        pid: (int(r["rss_bytes"]), int(r["pss_bytes"]), int(r["buffers"]), r["cgroup"])
        for pid, r in procs.items()
    } == {
        pid: (p["rss_bytes"], p["pss_bytes"], p["buffers"], p["cgroup"])
        for pid, p in per["processes"].items()
    }
    apps = {u: r for u, r in _csv_rows(report, "app").items() if int(r["rss_bytes"])}
    assert {u: (int(r["rss_bytes"]), int(r["pss_bytes"])) for u, r in apps.items()} == {
        u: (a["rss_bytes"], a["pss_bytes"]) for u, a in per["apps"].items()
    }
    cgroups = _csv_rows(report, "cgroup")
    assert {
        p: (int(r["pss_bytes"]), int(r["pss_bytes_with_descendants"])) for p, r in cgroups.items()
    } == {p: (c["pss_bytes"], c["pss_bytes_with_descendants"]) for p, c in per["cgroups"].items()}
    for by in ("exporter", "name"):
        section = VIEW_KEYS[by][0]
        rows = _csv_rows(report, by)
        assert {k: (int(r["buffers"]), int(r["bytes"])) for k, r in rows.items()} == {
            k: (g["buffers"], g["bytes"]) for k, g in want[section].items()
        }, by
    buffers = _csv_rows(report, "buffer")
    assert {k: (r["exporter"], int(r["size_bytes"])) for k, r in buffers.items()} == {
        f"{b['name']}/{b['size_bytes']}": (b["exporter"], b["size_bytes"]) for b in want["buffers"]
    }


def test_dmaprof_show_prints_the_same_report(capture: tuple[str, Path]) -> None:
    phone, path = capture
    env = {"PATH": os.environ.get("PATH", "")}
    shown = run_dmaprof("show", path, "--format", "json", "--charge", "client", env=env)
    assert shown.returncode == 0, shown.stderr.decode()
    _check(json.loads(shown.stdout), expected_of(phone), "client")
    table = run_dmaprof("show", path, "--by", "cgroup", env=env)
    assert table.returncode == 0, table.stderr.decode()
    assert f"hierarchy: {expected_of(phone)['cgroup_hierarchy']}" in table.stdout.decode()


def test_vendor_named_services_are_charged_nothing_for_app_buffers(
    capture: tuple[str, Path],
) -> None:
    """Item 5 of issue #13: under `--charge client` with the default service list, a
    vendor-named allocator, codec or camera HAL that shares a buffer with an app is charged
    nothing for it (the app is charged the whole buffer)."""
    phone, path = capture
    analysis, report = analyze_capture(load_capture(path), charge="client")
    assert report["service_regex"] == DEFAULT_SERVICE_REGEX
    procs = analysis.processes.set_index("pid")
    app_pids = {int(p) for p, uid in procs["uid"].items() if is_app(int(uid))}
    holders = analysis.holdings.groupby("inode")["pid"].apply(set).to_dict()
    holdings = analysis.holdings.set_index(["pid", "inode"])
    services = set(analysis.usage.loc[analysis.usage["is_service"], "pid"].astype(int))
    checked = 0
    for name in VENDOR_SERVICES[phone]:
        [pid] = [int(p) for p, n in procs["argv0"].items() if str(n).endswith("/" + name)]
        assert pid in services, name
        for inode, pids in holders.items():
            # only buffers it shares with apps alone: no other service makes it a client buffer
            if pid in pids and pids & app_pids and not (pids - app_pids - {pid}) & services:
                assert holdings.loc[(pid, inode), "charged_bytes"] == 0, (name, inode)
                app_share = sum(
                    int(holdings.loc[(p, inode), "charged_bytes"]) for p in pids & app_pids
                )
                assert app_share == int(holdings.loc[(pid, inode), "size_bytes"])
                checked += 1
    assert checked >= len(VENDOR_SERVICES[phone])


def test_the_device_view_of_every_generation(capture: tuple[str, Path]) -> None:
    """`show --by device`: per importing device, the buffers its debugfs bufinfo lists as
    attached to it, worked out from the scene's `attached` lists; a phone whose kernel keeps
    no bufinfo (sysfs stats, the BPF iterator) says so instead of showing an empty table."""
    phone, path = capture
    scene = scene_of(phone)
    report = _report(path, "shared")
    rows = {
        r["device"]: (r["buffers"], r["attachments"], r["bytes"])
        for r in report["attached_devices"]
    }
    if kernel_variant(phone).debugfs:
        want: dict[str, list[int]] = {}
        for b in scene["buffers"]:
            for dev in sorted(set(b.get("attached", []))):
                got = want.setdefault(dev, [0, 0, 0])
                got[0] += 1
                got[1] += b["attached"].count(dev)
                got[2] += int(b["size"])
        assert want, phone  # the phones with bufinfo have attached buffers
        assert rows == {d: tuple(v) for d, v in want.items()}
    else:
        assert rows == {}
        sentence = report["attached_devices_summary"]["note"]
        assert "bufinfo" in sentence
    table = run_dmaprof("show", path, "--by", "device", env={**os.environ, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr.decode()
