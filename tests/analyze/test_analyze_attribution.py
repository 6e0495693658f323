"""Attribution on hand-built scenes, with figures computed by hand.

The scene (sizes in bytes; B1 is deliberately not divisible by its holder counts):

    B1 inode 10  1001  system  "fb"       fd in 100, 200, 300 (+ a mapping in 300)
    B2 inode 11  4096  system  "sf-tmp"   two dup'd fds in 100 (fd only)
    B3 inode 12  8192  system  "leak"     two mappings in 200, no fd (mapped only)
    B4 inode 13     7  system  (unnamed)  fd in 200, mapping in 300
    B5 inode 14 65536  drm     "gem"      no holder (kernel only)
    B6 inode 15 12288  camera  "stats"    fd in thread 301's own table (process 300)

    pid 100 surfaceflinger (uid 1000, /system)
    pid 200 com.app.a (uid 10050, /uid_10050/pid_200)
    pid 300 com.app.a:remote (uid 10050, /uid_10050/pid_300), thread 301 with its own table
    pid 400 screencap (uid 2000, /), holds nothing

pss (exact): B1 1001 = 3 * 333 + 2 -> pids 100, 200 get 334, pid 300 gets 333;
B4 7 = 2 * 3 + 1 -> pid 200 gets 4, pid 300 gets 3.
    pid 100: rss 1001 + 4096 = 5097            pss 334 + 4096 = 4430
    pid 200: rss 1001 + 8192 + 7 = 9200        pss 334 + 8192 + 4 = 8530
    pid 300: rss 1001 + 7 + 12288 = 13296      pss 333 + 3 + 12288 = 12624
    userspace 25584 = 4430 + 8530 + 12624; kernel only 65536; total 91120
client: B1 is held by apps (200, 300) and a service (100): 1001 = 2 * 500 + 1 -> 501 to 200,
500 to 300, 0 to 100. B4 is held by apps only: shared as above.
    pid 100: 4096   pid 200: 501 + 8192 + 4 = 8697   pid 300: 500 + 3 + 12288 = 12791
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from analyze_dumpgen import ANON, Buf, Proc, Scene

from dmaprof.analyze import analyze, build_report, exact_split
from dmaprof.analyze.schema import SCHEMAS

USERSPACE = 25584
KERNEL_ONLY = 65536


def make_scene(**kw: Any) -> Scene:
    buffers = [
        Buf(10, 1001, "system", "fb", count=4),
        Buf(11, 4096, "system", "sf-tmp", count=2),
        Buf(12, 8192, "system", "leak"),
        Buf(13, 7, "system", None),
        Buf(14, 65536, "drm", "gem", devices=("gpu", "display")),
        Buf(15, 12288, "camera", "stats"),
    ]
    procs = [
        Proc(
            100,
            "surfaceflinger",
            uid=1000,
            cgroup="/system",
            cmdline=b"/system/bin/surfaceflinger\0",
            fds={3: 10, 5: 11, 6: 11, 7: "/dev/null", 8: "socket:[1234]"},
        ),
        Proc(
            200,
            "com.app.a",
            uid=10050,
            cgroup="/uid_10050/pid_200",
            cmdline=b"com.app.a\0\0\0\0",
            fds={3: 10, 4: 13},
            maps=[
                (12, 0x7000_0000_1000, 0x7000_0000_2000),
                (12, 0x7000_0000_2000, 0x7000_0000_3000),
            ],
        ),
        Proc(
            300,
            "com.app.a:remote",
            uid=10050,
            cgroup="/uid_10050/pid_300",
            cmdline=b"com.app.a:remote\0",
            fds={9: 10},
            maps=[
                (10, 0x7100_0000_0000, 0x7100_0000_1000),
                (13, 0x7100_0000_1000, 0x7100_0000_2000),
            ],
            tasks={301: {3: 15}},
        ),
        Proc(400, "screencap", uid=2000, cgroup="/", fds={0: "/dev/null"}),
        Proc(2, "kthreadd", uid=0, ppid=0, kthread=True, cgroup="/"),
    ]
    kw.setdefault("packages", {"com.app.a": [10050]})
    return Scene(buffers=buffers, procs=procs, **kw)


def figures(a: Any) -> dict[int, tuple[int, int, int]]:
    u = a.usage.set_index("pid")
    return {
        int(p): (
            int(u.loc[p, "rss_bytes"]),
            int(u.loc[p, "shared_pss_bytes"]),
            int(u.loc[p, "charged_bytes"]),
        )
        for p in (100, 200, 300, 400)
    }


EXPECTED_SHARED = {
    100: (5097, 4430, 4430),
    200: (9200, 8530, 8530),
    300: (13296, 12624, 12624),
    400: (0, 0, 0),
}


@pytest.mark.parametrize(
    "kw",
    [
        {"inventory": ("sysfs",)},
        {"inventory": ("bpf",)},
        {"inventory": ("debugfs",)},
        {"inventory": ("sysfs", "bpf", "debugfs")},
        {"inventory": ("sysfs",), "era": "no_ino"},
        {"inventory": ("debugfs",), "busybox": True},
    ],
    ids=["sysfs", "bpf", "debugfs", "all", "no_ino+fdstat", "busybox"],
)
def test_process_figures_every_source(kw: dict[str, Any]) -> None:
    a = analyze(make_scene(**kw).build())
    assert figures(a) == EXPECTED_SHARED
    t = a.totals
    assert (t.userspace_bytes, t.kernel_only_bytes, t.bytes) == (
        USERSPACE,
        KERNEL_ONLY,
        USERSPACE + KERNEL_ONLY,
    )
    assert (t.buffers, t.userspace_buffers, t.kernel_only_buffers) == (6, 5, 1)
    assert t.shared_pss_bytes == t.charged_bytes == USERSPACE
    assert a.unparsed_total == 0


def test_holdings_and_reference_counts() -> None:
    a = analyze(make_scene().build())
    h = a.holdings.set_index(["pid", "inode"])
    assert (
        h.loc[(100, 10), "shared_pss_bytes"] == 334 and h.loc[(200, 10), "shared_pss_bytes"] == 334
    )
    assert h.loc[(300, 10), "shared_pss_bytes"] == 333
    assert (h.loc[(200, 13), "shared_pss_bytes"], h.loc[(300, 13), "shared_pss_bytes"]) == (4, 3)
    assert (h.loc[(100, 11), "fds"], h.loc[(100, 11), "maps"]) == (2, 0)  # dup'd fds
    assert (
        h.loc[(200, 12), "fds"],
        h.loc[(200, 12), "maps"],
        h.loc[(200, 12), "mapped_bytes"],
    ) == (0, 2, 8192)
    assert (h.loc[(300, 10), "fds"], h.loc[(300, 10), "maps"]) == (1, 1)
    assert h.loc[(300, 15), "fds"] == 1  # through thread 301's own table
    u = a.usage.set_index("pid")
    cols = ["buffers", "fds", "maps", "fd_only", "map_only", "both"]
    assert u.loc[100, cols].tolist() == [2, 3, 0, 2, 0, 0]
    assert u.loc[200, cols].tolist() == [3, 2, 2, 2, 1, 0]
    assert u.loc[300, cols].tolist() == [3, 2, 2, 1, 1, 1]
    refs = a.references
    task_ref = refs[refs["tid"].notna()]
    assert task_ref[["pid", "tid", "fd", "inode"]].astype(int).values.tolist() == [
        [300, 301, 3, 15]
    ]


def test_pss_invariant_per_buffer() -> None:
    a = analyze(make_scene().build())
    per_buf = a.holdings.groupby("inode")["shared_pss_bytes"].sum()
    sizes = a.buffers.set_index("inode")["size_bytes"]
    assert (per_buf == sizes[per_buf.index]).all()


def test_apps_rollup_dedupes_buffers_within_a_uid() -> None:
    a = analyze(make_scene().build())
    apps = a.apps.set_index("uid")
    assert apps.loc[10050, "packages"] == ("com.app.a",)
    assert apps.loc[10050, "pids"] == (200, 300)
    # B1 and B4 are held by both processes of the app: counted once
    assert apps.loc[10050, "rss_bytes"] == 1001 + 8192 + 7 + 12288
    assert apps.loc[10050, "shared_pss_bytes"] == 8530 + 12624
    assert apps.loc[10050, "kind"] == "app"
    assert (
        apps.loc[1000, "label"],
        apps.loc[1000, "rss_bytes"],
        apps.loc[1000, "shared_pss_bytes"],
    ) == (
        "system",
        5097,
        4430,
    )
    assert 2000 not in apps.index  # screencap holds nothing
    assert apps["shared_pss_bytes"].sum() == USERSPACE


def test_cgroups_own_and_with_descendants() -> None:
    a = analyze(make_scene().build())
    cg = a.cgroup_usage.set_index("path")
    assert cg.loc["/system", "shared_pss_bytes"] == 4430
    assert cg.loc["/uid_10050", "shared_pss_bytes"] == 0
    assert cg.loc["/uid_10050", "shared_pss_bytes_with_descendants"] == 8530 + 12624
    assert cg.loc["/uid_10050", "rss_bytes_with_descendants"] == 1001 + 8192 + 7 + 12288
    assert cg.loc["/uid_10050/pid_200", "shared_pss_bytes"] == 8530
    assert cg.loc["/", "shared_pss_bytes_with_descendants"] == USERSPACE
    assert cg.loc["/", "rss_bytes_with_descendants"] == USERSPACE
    assert cg.loc["/", "processes_with_descendants"] == 5  # kthreadd too


def test_exporters_names_kernel_only() -> None:
    a = analyze(make_scene().build())
    b = analyze(make_scene(inventory=("sysfs", "debugfs")).build())
    ex = a.exporters.set_index("key")
    assert ex.loc["system", ["buffers", "bytes", "userspace_bytes", "holders"]].tolist() == [
        4,
        1001 + 4096 + 8192 + 7,
        1001 + 4096 + 8192 + 7,
        3,
    ]
    assert ex.loc["drm", ["bytes", "kernel_only_bytes", "holders"]].tolist() == [65536, 65536, 0]
    assert ex.loc["camera", "userspace_bytes"] == 12288
    nm = a.names.set_index("key")
    assert nm.loc["<unknown>", "bytes"] == 7 + 65536  # sysfs has no names: B5 is unnamed too
    assert nm.loc["fb", "holders"] == 3
    ko = b.kernel_only  # bufinfo gives the name and the attached devices
    assert ko[["inode", "size_bytes", "exporter", "name"]].values.tolist() == [
        [14, 65536, "drm", "gem"]
    ]
    assert ko["attached_devices"].tolist() == [("gpu", "display")]


def test_charge_client() -> None:
    a = analyze(make_scene().build(), charge="client")
    assert figures(a) == {
        100: (5097, 4430, 4096),
        200: (9200, 8530, 8697),
        300: (13296, 12624, 12791),
        400: (0, 0, 0),
    }
    assert a.totals.charged_bytes == USERSPACE
    assert a.usage.set_index("pid").loc[100, "is_service"]
    apps = a.apps.set_index("uid")
    assert apps.loc[10050, "charged_bytes"] == 8697 + 12791
    assert apps.loc[1000, "charged_bytes"] == 4096
    cg = a.cgroup_usage.set_index("path")
    assert cg.loc["/", "charged_bytes_with_descendants"] == USERSPACE


def test_charge_client_custom_regex() -> None:
    # nobody is a service: client charge equals the shared charge
    a = analyze(make_scene().build(), charge="client", service_regex=r"^nothing$")
    assert figures(a) == EXPECTED_SHARED


def test_charge_full() -> None:
    a = analyze(make_scene().build(), charge="full")
    assert figures(a) == {
        100: (5097, 4430, 5097),
        200: (9200, 8530, 9200),
        300: (13296, 12624, 13296),
        400: (0, 0, 0),
    }
    apps = a.apps.set_index("uid")
    assert apps.loc[10050, "charged_bytes"] == 1001 + 8192 + 7 + 12288  # deduplicated rss
    cg = a.cgroup_usage.set_index("path")
    assert cg.loc["/uid_10050", "charged_bytes_with_descendants"] == 21488


def test_unknown_charge_policy() -> None:
    with pytest.raises(ValueError, match="charge"):
        analyze(make_scene().build(), charge="fair")


def test_no_inventory_kernel_only_is_null() -> None:
    a = analyze(make_scene(inventory=()).build())
    # without an inventory, mapped-only B3 is sized by its largest mapping (4096, estimated)
    assert figures(a) == {**EXPECTED_SHARED, 200: (1001 + 4096 + 7, 334 + 4096 + 4, 334 + 4096 + 4)}
    assert a.totals.kernel_only_bytes is None and a.totals.inventory_source is None
    assert a.totals.bytes == USERSPACE - 4096 and len(a.kernel_only) == 0
    assert (a.totals.estimated_buffers, a.totals.estimated_bytes) == (1, 4096)
    r = build_report(a, {})
    assert r["totals"]["kernel_only_bytes"] is None


def test_mapped_only_without_size_source_is_estimated() -> None:
    a = analyze(make_scene(inventory=()).build())
    b = a.buffers.set_index("inode")
    assert (b.loc[12, "size_bytes"], b.loc[12, "size_source"], b.loc[12, "size_estimated"]) == (
        4096,
        "vma_estimate",
        True,
    )  # the largest of its two 4 KiB mappings
    u = a.usage.set_index("pid")
    assert bool(u.loc[200, "rss_estimated"]) and not bool(u.loc[100, "rss_estimated"])


def test_unreadable_process_is_counted_and_named() -> None:
    a = analyze(make_scene(fd_denied=(300,), maps_denied=(300,)).build())
    cov = a.coverage
    assert cov.processes_unreadable == 1 and cov.lower_bound
    assert cov.unreadable == [
        {"pid": 300, "name": "com.app.a:remote", "uid": 10050, "what": ["fds", "maps"]}
    ]
    u = a.usage.set_index("pid")
    assert bool(u.loc[300, "unreadable"]) and u.loc[300, "rss_bytes"] == 0
    # B1 now has two visible holders (1001 = 2 * 500 + 1)
    assert u.loc[100, "shared_pss_bytes"] == 501 + 4096
    assert any("could not be read" in w for w in a.warnings)
    # kernel threads are not counted as unreadable even when fdaccess lists them
    b = analyze(make_scene(fd_denied=(2,)).build())
    assert b.coverage.processes_unreadable == 0


def test_fdinfo_denied_is_unreadable() -> None:
    a = analyze(make_scene(fdinfo_denied=(200,)).build())
    assert a.coverage.unreadable[0]["pid"] == 200
    assert a.coverage.unreadable[0]["what"] == ["fdinfo"]
    u = a.usage.set_index("pid")
    # its fd links are visible but carry no inode: counted as references without identity
    assert u.loc[200, "anon_fds"] == 2 and u.loc[200, "map_only"] == 1


def test_pre_5_3_anon_era() -> None:
    a = analyze(make_scene(era="anon", inventory=("debugfs",)).build())
    u = a.usage.set_index("pid")
    assert (u.loc[100, "fds"], u.loc[100, "anon_fds"], u.loc[100, "rss_bytes"]) == (3, 3, 0)
    assert (u.loc[300, "anon_maps"], u.loc[300, "anon_mapped_bytes"]) == (2, 8192)
    # 3 (pid 100) + 2 (pid 200) + 1 (pid 300) + 1 (thread 301) fds, 4 mappings
    assert (a.totals.userspace_bytes, a.totals.anon_fds, a.totals.anon_maps) == (0, 7, 4)
    assert a.totals.kernel_only_bytes is None  # cannot tell which buffers they hold
    assert len(a.kernel_only) == 0
    assert a.totals.bytes == USERSPACE + KERNEL_ONLY  # the inventory still counts


def test_anon_inode_fdinfo_sizes_are_reported_not_deduplicated() -> None:
    sc = make_scene()
    sc.procs[0].fds[20] = ANON
    sc.procs[0].fds[21] = ANON
    a = analyze(sc.build())
    u = a.usage.set_index("pid")
    assert (u.loc[100, "anon_fds"], u.loc[100, "anon_fd_unknown"]) == (2, 2)
    assert u.loc[100, "rss_bytes"] == 5097


def test_crosscheck_with_ack_counters() -> None:
    sc = make_scene()
    sc.procs[0].dmabuf_rss, sc.procs[0].dmabuf_pss = 5097, 4429  # pss within rounding
    sc.procs[1].dmabuf_rss, sc.procs[1].dmabuf_pss = 9999, 8530  # rss disagrees
    a = analyze(sc.build())
    u = a.usage.set_index("pid")
    assert (u.loc[100, "kernel_dmabuf_rss_bytes"], u.loc[100, "kernel_dmabuf_pss_bytes"]) == (
        5097,
        4429,
    )
    cc = a.crosscheck
    assert cc["pid"].tolist() == [200]
    assert (bool(cc.loc[0, "rss_agrees"]), bool(cc.loc[0, "pss_agrees"])) == (False, True)
    assert any("disagree" in w for w in a.warnings)


def test_owner_uids_isolated_sandbox_multiuser() -> None:
    sc = make_scene()
    sc.procs += [
        Proc(
            500, "com.app.a:sandboxed_process0", uid=99001, cgroup="/uid_99001/pid_500", fds={3: 13}
        ),
        Proc(600, "com.app.a", uid=1010050, cgroup="/uid_1010050/pid_600", fds={3: 15}),
        Proc(700, "com.app.a_sdk_sandbox", uid=20050, cgroup="/uid_20050/pid_700", fds={3: 12}),
        Proc(800, "com.unknown:sandboxed_process0", uid=99002, fds={3: 12}),
    ]
    sc.packages = {"com.app.a": [10050, 1010050]}
    a = analyze(sc.build())
    owners = a.usage.set_index("pid")["owner_uid"]
    assert (owners[500], owners[600], owners[700], owners[800]) == (10050, 1010050, 10050, 99002)
    apps = a.apps.set_index("uid")
    assert apps.loc[10050, "pids"] == (200, 300, 500, 700)
    assert (apps.loc[1010050, "user_id"], apps.loc[1010050, "app_id"]) == (10, 10050)
    assert apps.loc[99002, "kind"] == "isolated"


def test_well_known_uid_names() -> None:
    from dmaprof.analyze.uids import uid_kind, uid_name

    assert [
        uid_name(u) for u in (0, 1000, 1001, 1013, 1040, 1041, 1046, 1047, 1066, 1068, 1072, 2000)
    ] == [
        "root",
        "system",
        "radio",
        "media",
        "mediaex",
        "audioserver",
        "mediacodec",
        "cameraserver",
        "statsd",
        "secure_element",
        "gpu_service",
        "shell",
    ]
    assert uid_name(1001000) == "u10_system" and uid_name(12345) is None
    assert [uid_kind(u) for u in (1000, 10001, 20001, 99001, 1010001)] == [
        "system",
        "app",
        "sdk_sandbox",
        "isolated",
        "app",
    ]


def test_every_table_matches_its_schema() -> None:
    a = analyze(make_scene(inventory=("sysfs", "debugfs")).build())
    checked = 0
    for name, df in a.tables.items():
        schema_name = {
            "usage": "usage",
            "cgroup_usage": "cgroup_usage",
            "exporters": "group_usage",
            "names": "group_usage",
        }.get(name, name)
        SCHEMAS[schema_name].validate(df)
        checked += 1
    assert checked == len(a.tables)


def test_report_contract() -> None:
    a = analyze(make_scene(inventory=("sysfs", "debugfs")).build())
    r = build_report(a, {"serial": "emulator-5554"})
    json.dumps(r)  # serialisable as is

    def no_floats(x: Any) -> None:
        if isinstance(x, dict):
            for v in x.values():
                no_floats(v)
        elif isinstance(x, list):
            for v in x:
                no_floats(v)
        else:
            assert not isinstance(x, float), x

    no_floats({k: v for k, v in r.items() if k != "device"})
    assert r["schema"] == "dmaprof.report/1"
    assert r["device"]["serial"] == "emulator-5554" and r["device"]["model"] == "Pixel Test"
    assert {
        k: r["totals"][k] for k in ("buffers", "bytes", "userspace_bytes", "kernel_only_bytes")
    } == {
        "buffers": 6,
        "bytes": 91120,
        "userspace_bytes": USERSPACE,
        "kernel_only_bytes": KERNEL_ONLY,
    }
    assert {k: r["coverage"][k] for k in ("processes", "processes_unreadable")} == {
        "processes": 4,
        "processes_unreadable": 0,
    }
    procs = {p["pid"]: p for p in r["processes"]}
    assert set(procs) == {100, 200, 300}
    p = procs[200]
    assert {
        k: p[k]
        for k in (
            "pid",
            "name",
            "uid",
            "cgroup",
            "rss_bytes",
            "pss_bytes",
            "buffers",
            "fds",
            "maps",
        )
    } == {
        "pid": 200,
        "name": "com.app.a",
        "uid": 10050,
        "cgroup": "/uid_10050/pid_200",
        "rss_bytes": 9200,
        "pss_bytes": 8530,
        "buffers": 3,
        "fds": 2,
        "maps": 2,
    }
    bufs = {b["inode"]: b for b in r["buffers"]}
    assert bufs[10]["holders"] == [100, 200, 300] and bufs[10]["size_bytes"] == 1001
    assert bufs[14]["holders"] == [] and bufs[14]["kernel_only"]
    assert (bufs[13]["exporter"], bufs[13]["name"]) == ("system", None)
    apps = {x["uid"]: x for x in r["apps"]}
    assert apps[10050]["packages"] == ["com.app.a"] and apps[10050]["rss_bytes"] == 21488
    cgs = {c["path"]: c for c in r["cgroups"]}
    assert cgs["/uid_10050"]["pss_bytes_with_descendants"] == 21154
    exps = {e["exporter"]: e for e in r["exporters"]}
    assert (exps["drm"]["buffers"], exps["drm"]["bytes"]) == (1, 65536)
    # under --charge full, pss_bytes is the charged figure
    rf = build_report(analyze(make_scene().build(), charge="full"), {})
    assert {p["pid"]: p["pss_bytes"] for p in rf["processes"]} == {100: 5097, 200: 9200, 300: 13296}
    assert rf["charge"] == "full"


def test_exact_split_properties() -> None:
    size = np.array([1001] * 3 + [7] * 2)
    n = np.array([3, 3, 3, 2, 2])
    rank = np.array([0, 1, 2, 0, 1])
    assert exact_split(size, n, rank).tolist() == [334, 334, 333, 4, 3]


def test_empty_dump_sections() -> None:
    a = analyze(Scene().build())
    assert a.totals.buffers == 0 and len(a.usage) == 0
    r = build_report(a, {})
    assert r["processes"] == [] and r["buffers"] == []


def test_frames_are_pandas_3() -> None:
    a = analyze(make_scene().build())
    assert isinstance(a.usage["name"].dtype, pd.StringDtype)
    assert a.usage["rss_bytes"].dtype == np.int64
