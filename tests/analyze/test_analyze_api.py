"""Public API shape: entry points, isolation from the CLI stack, dmabuf_dump text."""

from __future__ import annotations

import subprocess
import sys

import pytest
from analyze_dumpgen import Buf, Proc, Scene

from dmaprof.analyze import analyze, build_report, format_dmabuf_dump
from dmaprof.capture.dump import parse_dump


def test_analysis_never_imports_adbutils_or_click() -> None:
    code = (
        "import sys, dmaprof.analyze, dmaprof.capture.dump; "
        "bad = [m for m in ('adbutils', 'click', 'rich') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_analyze_accepts_bytes_or_dump() -> None:
    data = Scene(buffers=[Buf(4, 4096, name="a")], procs=[Proc(10, "p", fds={3: 4})]).build()
    a = analyze(data)
    b = analyze(parse_dump(data))
    assert a.usage.equals(b.usage)
    assert build_report(a, {}) == build_report(b, {})


def test_dmabuf_dump_text_exact() -> None:
    kb = 1024
    sc = Scene(
        buffers=[
            Buf(7, 8 * kb, "system", "fb"),
            Buf(9, 3 * kb, "drm"),
            Buf(11, 64 * kb, "system", "orphan"),
        ],
        procs=[
            Proc(100, "surfaceflinger", fds={3: 7, 4: 9}),
            Proc(200, "com.app", uid=10001, fds={3: 7}, maps=[(9, 0x1000, 0x2000)]),
        ],
        inventory=("sysfs",),
    )
    text = format_dmabuf_dump(analyze(sc.build()))
    assert text == (
        "  surfaceflinger:100  \n"
        "                  Name              Rss              Pss         nr_procs"
        "            Inode               Exporter\n"
        "                    fb             8 kB             4 kB                2"
        "                7                  system\n"
        "             <unknown>             3 kB             1 kB                2"
        "                9                     drm\n"
        "         PROCESS TOTAL            11 kB             5 kB                 \n"
        "----------------------\n"
        "         com.app:200  \n"
        "                  Name              Rss              Pss         nr_procs"
        "            Inode               Exporter\n"
        "                    fb             8 kB             4 kB                2"
        "                7                  system\n"
        "             <unknown>             3 kB             1 kB                2"
        "                9                     drm\n"
        "         PROCESS TOTAL            11 kB             5 kB                 \n"
        "----------------------\n"
        "dmabuf total: 75 kB kernel_rss: 64 kB userspace_rss: 22 kB userspace_pss: 11 kB\n "
    )


def test_dmabuf_dump_without_anything() -> None:
    text = format_dmabuf_dump(analyze(Scene(inventory=()).build()))
    assert text == (
        "Unable to read DMA-BUF per-buffer stats from device\ndmabuf info not found ¯\\_(ツ)_/¯\n"
    )


def test_fdinfo_parsed_in_one_or_two_threads_and_in_pieces_gives_the_same_analysis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import random

    from dmaprof.analyze import analysis, fds

    rng = random.Random(5)
    bufs = [
        Buf(100 + i, 4096 * rng.randint(1, 9), name=rng.choice(["a", "b", None])) for i in range(40)
    ]
    procs = [
        Proc(
            10 + p,
            f"p{p}",
            uid=10000 + p % 3,
            fds={3 + k: rng.choice(bufs).inode for k in range(rng.randint(0, 12))},
            maps=[(rng.choice(bufs).inode, 0x1000 * k, 0x1000 * k + 0x1000) for k in range(2)],
        )
        for p in range(30)
    ]
    data = Scene(buffers=bufs, procs=procs, inventory=("sysfs",)).build()
    monkeypatch.setattr(fds, "SPLIT_MIN_BYTES", 1 << 40)
    whole = analyze(data)
    monkeypatch.setattr(fds, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(analysis, "_CALLER_SECTIONS", {})  # the worker's share: one half
    monkeypatch.setattr(fds, "CHUNK_BYTES", 150)  # fdinfo and fdlinks in many small pieces
    splits: list[int] = []

    def ranges(*args: object) -> list[tuple[int, int]]:
        out = fds.fdinfo_ranges(*args)  # type: ignore[arg-type]
        splits.append(len(out))
        return out

    monkeypatch.setattr(analysis, "fdinfo_ranges", ranges)
    split = analyze(data)
    assert splits == [2]
    assert build_report(split, {}) == build_report(whole, {})
    assert split.references.equals(whole.references)
    assert split.unparsed.equals(whole.unparsed)
    # one thread (a trend's pool workers): the same, and no second thread started
    monkeypatch.setattr(analysis, "_parse_threads", True)
    analysis.use_parse_thread(False)
    threads: list[object] = []
    monkeypatch.setattr(analysis, "ThreadPoolExecutor", lambda **kw: threads.append(kw))
    alone = analyze(data)
    assert threads == [] and splits[-1] == 1
    assert build_report(alone, {}) == build_report(whole, {})
    assert alone.references.equals(whole.references)
    assert alone.unparsed.equals(whole.unparsed)


def test_fd_references_do_not_depend_on_fdinfo_order() -> None:
    """The collector reads fdinfo in the links' order (matched one for one); any other
    order is matched by key and gives the same rows."""
    import numpy as np

    from dmaprof.analyze._scan import Scan
    from dmaprof.analyze.fds import fd_references, parse_fdinfo, parse_fdlinks
    from dmaprof.analyze.unparsed import Unparsed

    bufs = [Buf(100 + i, 4096 * (i + 1), name=f"b{i}") for i in range(6)]
    procs = [
        Proc(10 + p, f"p{p}", fds={3 + k: 100 + (p + k) % 6 for k in range(4)}) for p in range(5)
    ]
    dump = parse_dump(Scene(buffers=bufs, procs=procs).build())
    scan = Scan(dump.buffer, dump.length)
    links = parse_fdlinks(dump, scan, Unparsed())
    info = parse_fdinfo(dump, scan, Unparsed())
    assert np.array_equal(info.key, links.key)  # the collector's order
    aligned = fd_references(dump, scan, Unparsed(), info, links).frame
    order = np.random.default_rng(1).permutation(info.key.size)
    for name in (
        "key",
        "pid",
        "tid",
        "fd",
        "ino",
        "size",
        "count",
        "exp_b",
        "exp_e",
        "name_b",
        "name_e",
        "is_dmabuf",
    ):
        setattr(info, name, getattr(info, name)[order])
    shuffled = fd_references(dump, scan, Unparsed(), info, links).frame
    assert shuffled.equals(aligned)
