"""The cgroup rule (docs/attribution.md §7) on `/proc/<pid>/cgroup` lines as each release
prints them.

Line sources: Android 10/11 (`1:cpuacct:/uid_10097/pid_1602` with `0::/`, issue #13 and
../shared/reference/user-journeys.md "Older releases"; the other v1 controllers are those of
Android 10's cgroups.json: blkio, cpu, cpuset, memory, schedtune), Android 12+ as observed on a
real kernel (`0::/uid_10001/pid_163`, `0::/system`: ../shared/reference/kernel-interfaces.md
§14.5), a systemd desktop on the unified hierarchy, a systemd hybrid layout (`name=systemd`
plus controllers, and `0::` on the unified mount) and a legacy v1-only board.
"""

from __future__ import annotations

import pandas as pd
import pytest
from analyze_dumpgen import Buf, Proc, Scene

from dmaprof.analyze import analyze, build_report
from dmaprof.analyze.cgroups import process_cgroups


def lines(text: dict[int, str]) -> pd.DataFrame:
    """``{pid: file text}`` -> the cgroups table (as the proc parser fills it)."""
    rows = []
    for pid, body in text.items():
        for line in body.strip().splitlines():
            hier, ctl, path = line.split(":", 2)
            rows.append((pid, int(hier), ctl, path))
    pid, hier, ctl, path = zip(*rows, strict=True)
    return pd.DataFrame({"pid": pid, "hierarchy": hier, "controllers": ctl, "path": path})


ANDROID_10 = {
    1602: """
6:schedtune:/top-app
5:memory:/
4:cpuset:/top-app
3:cpu:/
2:blkio:/
1:cpuacct:/uid_10097/pid_1602
0::/
""",
    612: """
6:schedtune:/
5:memory:/
4:cpuset:/system-background
3:cpu:/
2:blkio:/
1:cpuacct:/uid_1000/pid_612
0::/
""",
    1: """
6:schedtune:/
5:memory:/
4:cpuset:/
3:cpu:/
2:blkio:/
1:cpuacct:/
0::/
""",
}

ANDROID_9_V1_ONLY = {
    1602: """
5:schedtune:/top-app
4:memory:/
3:cpuset:/top-app
2:cpu:/
1:cpuacct:/uid_10097/pid_1602
""",
    2: """
5:schedtune:/
4:memory:/
3:cpuset:/
2:cpu:/
1:cpuacct:/
""",
}

ANDROID_13 = {
    163: "3:cpuset:/top-app\n2:memory:/\n1:blkio:/\n0::/uid_10001/pid_163\n",
    170: "3:cpuset:/system-background\n0::/system\n",
}

DESKTOP_V2 = {
    4242: "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome.scope\n",
    880: "0::/system.slice/gdm.service\n",
}

HYBRID = {
    4242: """
12:pids:/user.slice/user-1000.slice/session-2.scope
11:memory:/user.slice/user-1000.slice/session-2.scope
4:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
""",
}

LEGACY_V1 = {
    300: """
4:memory:/user.slice
3:cpu,cpuacct:/user.slice
2:devices:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-c1.scope
""",
    301: """
4:memory:/system.slice
3:cpu,cpuacct:/system.slice
2:devices:/system.slice/weston.service
1:name=systemd:/system.slice/weston.service
""",
}


def chosen(text: dict[int, str]) -> tuple[dict[int, tuple[str, str]], str | None]:
    frame, hierarchy = process_cgroups(lines(text))
    got = zip(frame["cgroup"], frame["cgroup_source"], strict=True)
    return dict(zip(frame["pid"].tolist(), got, strict=True)), hierarchy


@pytest.mark.parametrize(
    ("text", "hierarchy", "want"),
    [
        (
            ANDROID_10,
            "v1:cpuacct",
            {
                1602: ("/uid_10097/pid_1602", "v1:cpuacct"),
                612: ("/uid_1000/pid_612", "v1:cpuacct"),
                1: ("/", "v1:cpuacct"),
            },
        ),
        (
            ANDROID_9_V1_ONLY,
            "v1:cpuacct",
            {1602: ("/uid_10097/pid_1602", "v1:cpuacct"), 2: ("/", "v1:cpuacct")},
        ),
        (ANDROID_13, "v2", {163: ("/uid_10001/pid_163", "v2"), 170: ("/system", "v2")}),
        (
            DESKTOP_V2,
            "v2",
            {
                4242: (
                    "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome.scope",
                    "v2",
                ),
                880: ("/system.slice/gdm.service", "v2"),
            },
        ),
        (HYBRID, "v2", {4242: ("/user.slice/user-1000.slice/session-2.scope", "v2")}),
        (
            LEGACY_V1,
            "v1:name=systemd",
            {
                300: ("/user.slice/user-1000.slice/session-c1.scope", "v1:name=systemd"),
                301: ("/system.slice/weston.service", "v1:name=systemd"),
            },
        ),
    ],
    ids=[
        "android10-v1-cpuacct",
        "android9-v1-only",
        "android13-v2",
        "desktop-v2",
        "hybrid",
        "legacy-v1",
    ],
)
def test_the_hierarchy_holding_the_process_tree(
    text: dict[int, str], hierarchy: str, want: dict[int, tuple[str, str]]
) -> None:
    got, used = chosen(text)
    assert used == hierarchy
    assert got == want


def test_a_process_missing_from_the_chosen_hierarchy_gets_its_own_best_line() -> None:
    text = {**ANDROID_10, 77: "4:cpuset:/foreground\n0::/\n"}
    got, used = chosen(text)
    assert used == "v1:cpuacct"
    assert got[77] == ("/foreground", "v1:cpuset")


def test_cgroup_of_reuses_only_what_equal_lines_gave() -> None:
    """cgroup_of keeps the last lines and their result (a series repeats them): one layout
    after another, each again, and one line changed give what a fresh rule gives."""
    from dmaprof.analyze import processes

    layouts = [ANDROID_10, ANDROID_13, ANDROID_13, DESKTOP_V2, ANDROID_10, LEGACY_V1, HYBRID]
    moved = {**ANDROID_13, 163: "0::/uid_10001/pid_999\n"}  # same shape, one path changed
    for text in [*layouts, moved, ANDROID_13]:
        got, used = processes.cgroup_of(lines(text))
        assert (got, used) == chosen(text)
    first = processes.cgroup_of(lines(ANDROID_10))
    assert processes.cgroup_of(lines(ANDROID_10)) is first  # equal lines: not chosen again


# ---------------------------------------------------------------------------- end to end
# A phone of the Android 10/11 layout through analyze(): the roll-ups follow cpuacct's tree,
# not the v2 root where every process sits. Figures by hand:
#   B1 4096 held by 100 (surfaceflinger) and 200 (app)  -> 2048 each
#   B2 8192 held by 200 and 300 (the app's :remote)      -> 4096 each
#   B3 1000 held by 300 only
#   /uid_10050/pid_200: pss 2048 + 4096 = 6144; /uid_10050/pid_300: 4096 + 1000 = 5096
#   /uid_10050 with descendants: pss 11240, rss 4096 + 8192 + 1000 = 13288
#   /uid_1000/pid_100: 2048; / with descendants: 13288 (all userspace)


def _v1_phone(v2_line: bool) -> Scene:
    def proc(pid: int, name: str, uid: int, fds: dict[int, int | str]) -> Proc:
        v1 = ["3:cpuset:/top-app", "2:cpu:/", f"1:cpuacct:/uid_{uid}/pid_{pid}"]
        return Proc(pid, name, uid=uid, cgroup="/" if v2_line else None, cgroup_v1=v1, fds=fds)

    return Scene(
        buffers=[Buf(1, 4096, "ion", "fb"), Buf(2, 8192, "ion", "tex"), Buf(3, 1000, "ion", "x")],
        procs=[
            proc(100, "surfaceflinger", 1000, {3: 1}),
            proc(200, "com.app.a", 10050, {3: 1, 4: 2}),
            proc(300, "com.app.a:remote", 10050, {3: 2, 4: 3}),
        ],
    )


@pytest.mark.parametrize("v2_line", [True, False], ids=["android10-11", "android9"])
def test_roll_ups_follow_the_cpuacct_tree(v2_line: bool) -> None:
    a = analyze(_v1_phone(v2_line).build())
    assert a.cgroup_hierarchy == "v1:cpuacct"
    procs = a.processes.set_index("pid")
    assert procs.loc[200, "cgroup"] == "/uid_10050/pid_200"
    assert procs.loc[200, "cgroup_source"] == "v1:cpuacct"
    cg = a.cgroup_usage.set_index("path")
    assert cg.loc["/uid_10050/pid_200", "shared_pss_bytes"] == 6144
    assert cg.loc["/uid_10050/pid_300", "shared_pss_bytes"] == 5096
    assert cg.loc["/uid_10050", "shared_pss_bytes"] == 0
    assert cg.loc["/uid_10050", "shared_pss_bytes_with_descendants"] == 11240
    assert cg.loc["/uid_10050", "rss_bytes_with_descendants"] == 13288
    assert cg.loc["/uid_1000/pid_100", "shared_pss_bytes"] == 2048
    assert cg.loc["/", "shared_pss_bytes_with_descendants"] == 13288
    assert cg.loc["/", "processes"] == 0
    report = build_report(a)
    assert report["cgroup_hierarchy"] == "v1:cpuacct"
