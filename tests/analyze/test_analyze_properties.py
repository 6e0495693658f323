"""Property tests: exact pss/charge invariants, and parsers that never crash."""

from __future__ import annotations

import itertools

import numpy as np
from analyze_dumpgen import NONCE, Buf, DumpBuilder, Proc, Scene, files_body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmaprof.analyze import analyze, build_report, exact_split, format_dmabuf_dump
from dmaprof.analyze._scan import Scan
from dmaprof.analyze.fdinfo import _fdinfo_fast, _fdinfo_slow
from dmaprof.analyze.unparsed import Unparsed
from dmaprof.capture.dump import DumpFormatError, parse_dump

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(st.integers(0, 2**53), st.integers(1, 500))
def test_exact_split_sums_to_size(size: int, n: int) -> None:
    shares = exact_split(
        np.full(n, size, np.int64), np.full(n, n, np.int64), np.arange(n, dtype=np.int64)
    )
    assert int(shares.sum()) == size
    assert int(shares.max() - shares.min()) <= 1
    assert list(shares) == sorted(shares, reverse=True)  # the extra bytes go to low ranks


NAMES = [
    "surfaceflinger",
    "com.app.a",
    "com.app.b",
    "android.hardware.graphics.allocator",
    "media.codec",
    "system_server",
    "cameraserver",
]
UIDS = [1000, 10050, 10051, 1000, 1046, 1000, 1047]


@st.composite
def scenes(draw: st.DrawFn) -> Scene:
    nbuf = draw(st.integers(1, 12))
    buffers = [
        Buf(
            100 + i,
            draw(st.integers(1, 10**9)),
            draw(st.sampled_from(["system", "drm", "camera"])),
            draw(st.sampled_from([None, "fb", "gralloc", "a b:c"])),
        )
        for i in range(nbuf)
    ]
    inodes = [b.inode for b in buffers]
    procs = []
    for k in range(draw(st.integers(1, 7))):
        pid = 1000 + 10 * k
        fds = {
            3 + j: ino for j, ino in enumerate(draw(st.lists(st.sampled_from(inodes), max_size=6)))
        }
        maps = [
            (ino, 0x7000_0000_0000 + 0x10000 * j, 0x7000_0000_0000 + 0x10000 * j + 0x1000)
            for j, ino in enumerate(draw(st.lists(st.sampled_from(inodes), max_size=4)))
        ]
        tasks = {}
        if draw(st.booleans()):
            tasks = {pid + 1: {3: draw(st.sampled_from(inodes))}}
        procs.append(
            Proc(
                pid,
                NAMES[k],
                uid=UIDS[k],
                cgroup=draw(
                    st.sampled_from(
                        [
                            f"/uid_{UIDS[k]}/pid_{pid}",
                            f"/uid_{UIDS[k]}/pid_{pid}",
                            "/system",
                            "/system/vendor/hal",
                            "/",
                            f"/uid_{UIDS[k]}",
                        ]
                    )
                ),
                fds=fds,
                maps=maps,
                tasks=tasks,
            )
        )
    inventory = draw(
        st.sampled_from([(), ("sysfs",), ("bpf",), ("debugfs",), ("sysfs", "debugfs")])
    )
    era = draw(st.sampled_from(["modern", "no_ino"]))
    return Scene(
        buffers=buffers,
        procs=procs,
        inventory=inventory,
        era=era,
        busybox=draw(st.booleans()),
        packages={"com.app.a": [10050], "com.app.b": [10051]},
    )


@SETTINGS
@given(scenes(), st.sampled_from(["shared", "client", "full"]))
def test_pss_invariant(scene: Scene, charge: str) -> None:
    a = analyze(scene.build(), charge=charge)
    u = a.usage
    held = a.buffers[a.buffers["inode"].isin(a.holdings["inode"])]
    userspace = int(held["size_bytes"].sum())
    assert a.totals.userspace_bytes == userspace
    assert int(u["shared_pss_bytes"].sum()) == userspace
    assert (u["shared_pss_bytes"] <= u["rss_bytes"]).all()
    per_buf = a.holdings.groupby("inode")["shared_pss_bytes"].sum()
    assert (per_buf == a.buffers.set_index("inode")["size_bytes"][per_buf.index]).all()
    if charge in ("shared", "client"):
        assert int(u["charged_bytes"].sum()) == userspace
        assert int(a.apps["charged_bytes"].sum()) == userspace
        root = a.cgroup_usage.set_index("path").loc["/"]
        assert root["charged_bytes_with_descendants"] == userspace
    else:
        assert (u["charged_bytes"] == u["rss_bytes"]).all()
    if a.totals.kernel_only_bytes is not None:
        assert a.totals.bytes == userspace + a.totals.kernel_only_bytes
    # cgroups: own and subtree figures, recomputed the plain way from holdings
    size_of = a.buffers.set_index("inode")["size_bytes"].to_dict()
    held_by = a.holdings.groupby("pid")["inode"].agg(set).to_dict()
    cg_of = {int(p): c for p, c in zip(u["pid"], u["cgroup"], strict=True) if isinstance(c, str)}
    for row in a.cgroup_usage.itertuples():
        path = str(row.path)
        own = [p for p, c in cg_of.items() if c == path]
        sub = [p for p, c in cg_of.items() if path == "/" or c == path or c.startswith(path + "/")]
        for pids, rss, n in (
            (own, row.rss_bytes, row.processes),
            (sub, row.rss_bytes_with_descendants, row.processes_with_descendants),
        ):
            inodes = set().union(*(held_by.get(p, set()) for p in pids))
            assert rss == sum(size_of[i] for i in inodes), (path, pids)
            assert n == len(pids)
    # app rss is deduplicated: never more than the sum of its processes' rss
    assert int(a.apps["rss_bytes"].sum()) <= int(u["rss_bytes"].sum())
    build_report(a, {})
    format_dmabuf_dump(a)


# -- parsers never crash -----------------------------------------------------------------

SECTIONS = [
    ("proc", "files"),
    ("fdinfo", "files"),
    ("maps", "files"),
    ("global", "files"),
    ("sysfs_buffers", "files"),
    ("ion", "files"),
    ("fdlinks", "stat"),
    ("fdstat", "stat"),
    ("tasks", "kv"),
    ("fdaccess", "kv"),
    ("meta", "kv"),
    ("packages", "text"),
    ("props", "text"),
    ("dma_heap", "kv"),
    ("maps", "errors"),
    ("end", "kv"),
]

PREFIXES = [
    b"/proc/1/status:",
    b"/proc/12/fdinfo/3:",
    b"/proc/12/task/13/fdinfo/4:",
    b"/proc/7/maps:",
    b"/sys/kernel/dmabuf/buffers/5/",
    b"/proc/3/cmdline:",
    b"/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf:",
    b"/sys/kernel/debug/dma_buf/bufinfo:",
    b"/proc/3/fd/4 ",
    b"@" + NONCE.encode() + b" ",
    b"/proc/9/cgroup:",
    b"/proc/9/stat:",
    b"",
]
FRAGMENTS = [
    b"pos:\t0",
    b"ino:\t",
    b"size:\t",
    b"exp_name:\t",
    b"name:\t",
    b"count:\t",
    b"Name:\t",
    b"Uid:\t",
    b" -> '",
    b"/dmabuf:",
    b"anon_inode:dmabuf",
    b"'",
    b"7f00-7f10 rw-s 0 00:0b ",
    b"99999999999999999999999",
    b"\t",
    b" ",
    b":",
    b"Total 3 objects, 9 bytes",
    b"size flags mode count exp_name ino name",
    b"00004096\t00000002\t00080007\t00000001\tsystem\t00000012\t<none>",
    b"\xff\xfe",
    b"\0",
    b"-1",
    b"0::/uid_1/pid_2",
    b"heap=system",
    b"task=1/2",
    b"denied=3",
    b"package:com.x uid:10001",
]


@st.composite
def garbage_dumps(draw: st.DrawFn) -> bytes:
    d = DumpBuilder()
    for name, kind in draw(st.lists(st.sampled_from(SECTIONS), max_size=8)):
        lines = []
        for _ in range(draw(st.integers(0, 12))):
            parts = draw(
                st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=12)), max_size=6)
            )
            line = draw(st.sampled_from(PREFIXES)) + b"".join(parts)
            lines.append(line.replace(b"\n", b" "))
        body = b"".join(x + b"\n" for x in lines)
        if kind == "errors":
            d.section(name + ".err", "errors", body)
        else:
            d.section(name, kind, body, end=draw(st.booleans()))
    return d.build(done=draw(st.booleans()))


@SETTINGS
@given(garbage_dumps())
def test_garbage_never_crashes(data: bytes) -> None:
    a = analyze(data)
    build_report(a, {})
    format_dmabuf_dump(a)


@SETTINGS
@given(st.data())
def test_mutated_real_dump_never_crashes(data: st.DataObject) -> None:
    base = bytearray(
        Scene(
            buffers=[Buf(4, 4096, name="x")],
            procs=[Proc(10, "p", fds={3: 4}, maps=[(4, 0x1000, 0x2000)])],
            inventory=("sysfs", "bpf", "debugfs"),
        ).build()
    )
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(base) - 1))
        op = data.draw(st.sampled_from(["flip", "del", "ins"]))
        if op == "flip":
            base[pos] = data.draw(st.integers(0, 255))
        elif op == "del":
            del base[pos : pos + data.draw(st.integers(1, 40))]
        else:
            base[pos:pos] = data.draw(st.binary(min_size=1, max_size=20))
    try:
        a = analyze(bytes(base))
    except DumpFormatError:
        return  # the header itself was damaged
    build_report(a, {})


@st.composite
def fdinfo_sections(draw: st.DrawFn) -> bytes:
    files = []
    used: set[tuple[int, ...]] = set()
    for _ in range(draw(st.integers(1, 15))):
        pid = draw(st.integers(1, 4194304))
        tid = draw(st.sampled_from([-1, -1, draw(st.integers(1, 4194304))]))
        fd = draw(st.integers(0, 9_999_999))
        # the leader's own task directory is the process's table: the collector lists only
        # other threads' tables, so a tid never equals its pid (nor another file's owner)
        owner = tid if tid >= 0 else pid
        if (pid, tid, fd) in used or tid == pid or (owner, fd) in used:
            continue
        used.add((owner, fd))
        used.add((pid, tid, fd))
        base = f"/proc/{pid}" + (f"/task/{tid}" if tid >= 0 else "") + f"/fdinfo/{fd}"
        lines = ["pos:\t0", "flags:\t02000002", "mnt_id:\t12"]
        if draw(st.booleans()):
            lines.append(f"ino:\t{draw(st.integers(0, 2**40))}")
        lines += [
            f"size:\t{draw(st.integers(0, 2**40))}",
            f"count:\t{draw(st.integers(0, 99))}",
            f"exp_name:\t{draw(st.sampled_from(['system', 'qcom,system', 'drm', '']))}",
        ]
        if draw(st.booleans()):
            lines.append(
                "name:\t"
                + draw(
                    st.text(
                        alphabet=st.characters(blacklist_characters="\n\t", codec="utf-8"),
                        max_size=32,
                    )
                )
            )
        if draw(st.booleans()):
            lines.append("lock:\t1: POSIX  ADVISORY  WRITE 1234 fd:02:1234 0 EOF")
        files.append((base, "\n".join(lines) + "\n"))
    return files_body(files)


@SETTINGS
@given(fdinfo_sections())
def test_fdinfo_fast_path_equals_slow_path(body: bytes) -> None:
    data = b"x\n" + body + b"@end\n" + b"\0" * 64
    scan = Scan(data, len(data))
    begin, end = 2, 2 + len(body)
    fast = _fdinfo_fast(scan, begin, end)
    slow = _fdinfo_slow(scan, begin, end, Unparsed())
    if fast is None:
        return  # shapes the fast path declines (e.g. a tab inside a name)
    for f in ("key", "pid", "tid", "fd", "ino", "size", "count", "exp_b", "name_b"):
        assert getattr(fast, f).tolist() == getattr(slow, f).tolist(), f


def test_parse_dump_of_every_prefix_of_a_dump() -> None:
    data = Scene(buffers=[Buf(4, 4096)], procs=[Proc(10, "p", fds={3: 4})]).build()
    for cut in range(len(DumpBuilder().build(done=False)), len(data), 7):
        a = analyze(data[:cut])
        assert a.dump.truncated or cut >= len(data) - 1  # "done" without its "\\n" still counts
    assert parse_dump(data).done


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.binary(max_size=40)
        | st.sampled_from([b"", b"a", b"a\0", b"system", b"qcom,system", b"x" * 32, b"x" * 33]),
        max_size=60,
    )
)
def test_factorize_ranges_matches_python(strings: list[bytes]) -> None:
    from dmaprof.analyze._scan import factorize_ranges

    data = b"".join(strings)
    scan = Scan.of(data)
    ends = np.cumsum([len(s) for s in strings], dtype=np.int64)
    begins = ends - np.array([len(s) for s in strings], dtype=np.int64)
    codes, values = factorize_ranges(scan, begins, ends)
    assert [values[c] for c in codes.tolist()] == strings
    assert len(set(values)) == len(values)
    short = [v for v in values if len(v) <= 32]
    assert short == sorted({s for s in strings if len(s) <= 32})


@SETTINGS
@given(fdinfo_sections(), st.floats(0.01, 0.99), st.integers(1, 600))
def test_fdinfo_split_in_two_parses_like_the_whole(body: bytes, share: float, chunk: int) -> None:
    """Two threads' ranges, each parsed in pieces of ``chunk`` bytes, give the whole."""
    from dmaprof.analyze import fds
    from dmaprof.analyze.fds import fdinfo_ranges, join_fdinfo, parse_fdinfo_range

    data = b"x\n" + body + b"@end\n" + b"\0" * 64
    scan = Scan(data, len(data))
    begin, end = 2, 2 + len(body)
    whole_unparsed, parts_unparsed = Unparsed(), Unparsed()
    whole = join_fdinfo([parse_fdinfo_range(scan, begin, end, whole_unparsed)], True)
    ranges = fdinfo_ranges(data, begin, end, share, min_bytes=0)
    default_chunk, fds.CHUNK_BYTES = fds.CHUNK_BYTES, chunk
    try:
        pieces = [parse_fdinfo_range(scan, b, e, parts_unparsed) for b, e in ranges]
    finally:
        fds.CHUNK_BYTES = default_chunk
    if not body:
        assert ranges == []
        return
    assert ranges[0][0] == begin and ranges[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    parts = join_fdinfo(pieces, True)
    for f in ("key", "pid", "tid", "fd", "ino", "size", "count", "exp_b", "exp_e", "name_b"):
        assert getattr(parts, f).tolist() == getattr(whole, f).tolist(), f
    assert parts_unparsed.total == whole_unparsed.total
    assert parts_unparsed.by_section == whole_unparsed.by_section
