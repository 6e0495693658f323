"""Dumps written by the real collector (dmaprof/collect/collect.sh).

* ``collector_pixel_like_root.dump``: the "pixel-like" emulated phone (see
  fixtures/phones/pixel-like.json) collected as root. Its figures were computed by hand
  (fixtures/phones/pixel-like.expected.json); they are repeated here.
* ``collector_pixel_like_shell.dump``: the same phone collected as the shell uid of a user
  build: every other process is unreadable.
* ``collector_linux_host_*.dump``: the collector run on a Linux host (GNU and busybox
  tools), where links of other users' fds cannot be read.
"""

from __future__ import annotations

import json

from dmaprof.analyze import analyze, build_report, format_dmabuf_dump
from tests.analyze.conftest import DATA

FB = 10371072
CAM = 3121152
EXPECTED = {  # pid: (rss, pss)
    590: (65536, 65536),
    598: (3 * FB, 3 * FB // 2),
    612: (59293696, 26877952),
    640: (6504448, 2342912),
    700: (1572864, 786432),
    1200: (10567680, 3653632),
    1800: (15761408, 8249344),
    3100: (9388032, 4702208),
    3160: (1048576, 524288),
    3300: (5898240, 5111808),
    4100: (10371072, 5185536),
}


def test_pixel_like_as_root() -> None:
    a = analyze((DATA / "collector_pixel_like_root.dump").read_bytes())
    u = a.usage.set_index("pid")
    got = {p: (int(u.loc[p, "rss_bytes"]), int(u.loc[p, "shared_pss_bytes"])) for p in EXPECTED}
    assert got == EXPECTED
    assert (u.loc[1, "rss_bytes"], u.loc[2, "rss_bytes"]) == (0, 0)
    assert a.totals.kernel_only_buffers == 3 and a.totals.buffers == 21
    assert sorted(a.kernel_only["inode"].tolist()) == [19, 20, 21]
    assert a.totals.userspace_bytes == sum(p for _, p in EXPECTED.values())
    assert a.coverage.processes_unreadable == 0 and not a.coverage.lower_bound
    assert a.unparsed_total == 0 and not a.dump.truncated
    # thread 655 of the camera provider has its own fd table: cam-raw-stats (inode 12)
    refs = a.references
    task = refs[refs["tid"].notna()]
    assert task["pid"].tolist() == [640] and 12 in task["inode"].tolist()
    # per uid: thumbnail-cache is held by both processes of uid 10201, counted once
    apps = a.apps.set_index("uid")
    assert apps.loc[10201, "shared_pss_bytes"] == 4702208 + 524288
    assert (
        apps.loc[1000, "rss_bytes"] == 59555840 and apps.loc[1000, "shared_pss_bytes"] == 46153728
    )
    # the decoy fd of screencap (a file named like a dma-buf link) is not a dma-buf
    assert u.loc[4100, "buffers"] == 1
    r = build_report(a, {})
    json.dumps(r)
    assert r["totals"]["buffers"] == 21
    text = format_dmabuf_dump(a)
    assert "surfaceflinger:612" in text and text.endswith("\n ")


def test_pixel_like_as_shell_user() -> None:
    a = analyze((DATA / "collector_pixel_like_shell.dump").read_bytes())
    cov = a.coverage
    assert cov.capture_uid == 2000
    assert cov.processes_unreadable == 11 and cov.lower_bound
    assert {x["pid"] for x in cov.unreadable} == {
        1,
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
    }
    u = a.usage.set_index("pid")
    assert u.loc[4100, "rss_bytes"] == FB and u.loc[4100, "shared_pss_bytes"] == FB
    assert a.totals.kernel_only_bytes is not None  # an upper bound, flagged by lower_bound
    assert cov.sources["bufinfo"] == "denied"


def test_linux_hosts_gnu_and_busybox() -> None:
    for name in ("collector_linux_host_gnu.dump", "collector_linux_host_busybox.dump"):
        a = analyze((DATA / name).read_bytes())
        assert a.unparsed_total == 0, a.unparsed
        assert a.totals.buffers == 0 and a.coverage.processes > 10
        # links of other users' fds cannot be read: recorded, not counted as dma-bufs
        assert a.references.empty
