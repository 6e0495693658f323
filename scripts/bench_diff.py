"""Benchmark: `dmaprof diff` of two synthetic captures of a big device.

Each capture: 2,000 processes, 200,000 dma-buf fd references and 40,000 mappings over
30,000 buffers (the generator of scripts/bench_analyze.py, imported, not copied). Between
BEFORE and AFTER: 3,000 buffers freed, 3,000 allocated (1-3 holders each), 500 of them
leaked by one process, 2,000 fds moved from one process to another.

Prints the time of the analysis of each capture (not part of the diff) and of the diff
itself: projecting both analyses onto the diff's frames, the diff engine (buffer, process
and holding merges, roll-ups, suspects) and building the dmaprof.diff/2 document.
Goal: the diff itself <= 1 s.

    python scripts/bench_diff.py [--processes N] [--fds N] [--buffers N] [--repeat N]
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_analyze import EXPORTERS, SIZES, make_scene  # noqa: E402

from dmaprof.analyze import analyze  # noqa: E402
from dmaprof.leaks.diff import diff_sides  # noqa: E402
from dmaprof.leaks.side import CaptureInfo, side_from_analysis  # noqa: E402


def evolve(
    scene: object, *, freed: int, allocated: int, leaked: int, moved: int, seed: int = 2
) -> object:
    """AFTER: the same device some time later."""
    from analyze_dumpgen import Buf  # on sys.path through bench_analyze

    after = copy.deepcopy(scene)
    after.__dict__.pop("_index", None)  # the generator's inode cache
    rng = random.Random(seed)
    gone = set(rng.sample([b.inode for b in after.buffers], freed))  # type: ignore[attr-defined]
    after.buffers = [b for b in after.buffers if b.inode not in gone]  # type: ignore[attr-defined]
    procs = after.procs  # type: ignore[attr-defined]
    for p in procs:
        p.fds = {fd: v for fd, v in p.fds.items() if v not in gone}
        p.maps = [m for m in p.maps if m[0] not in gone]
    first = max(b.inode for b in after.buffers) + 1  # type: ignore[attr-defined]
    for i in range(allocated):
        inode = first + i
        leak = i < leaked
        after.buffers.append(
            Buf(  # type: ignore[attr-defined]
                inode=inode,
                size=4194304 if leak else rng.choice(SIZES),
                exporter="system" if leak else rng.choice(EXPORTERS),
                name="SurfaceView - com.example.app42#0" if leak else f"new-{i % 50}",
                count=1,
            )
        )
        holders = [procs[min(42, len(procs) - 1)]] if leak else rng.sample(procs, rng.randint(1, 3))
        for p in holders:
            p.fds[10_000 + len(p.fds)] = inode
    donors = [p for p in procs if len(p.fds) > 40]
    for _ in range(moved):
        src, dst = rng.sample(donors, 2)
        fd, value = next((fd, v) for fd, v in src.fds.items() if isinstance(v, int))
        del src.fds[fd]
        dst.fds[20_000 + len(dst.fds)] = value
    return after


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processes", type=int, default=2000)
    ap.add_argument("--fds", type=int, default=200_000)
    ap.add_argument("--buffers", type=int, default=30_000)
    ap.add_argument("--maps", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    t = time.perf_counter()
    before_scene = make_scene(args.processes, args.fds, args.buffers, args.maps)
    allocated = args.buffers // 10
    after_scene = evolve(
        before_scene,
        freed=allocated,
        allocated=allocated,
        leaked=min(500, allocated // 2),
        moved=min(2000, args.fds // 100),
    )
    dumps = [before_scene.build(), after_scene.build()]  # type: ignore[attr-defined]
    print(
        f"two dumps of {len(dumps[0]) / 1e6:.1f} and {len(dumps[1]) / 1e6:.1f} MB generated "
        f"in {time.perf_counter() - t:.1f} s ({args.processes} processes, {args.fds} dma-buf "
        f"fds, {args.buffers} buffers, {args.maps} mappings each)"
    )
    t, c = time.perf_counter(), time.process_time()
    analyses = [analyze(d) for d in dumps]
    print(
        f"{'analysis of both captures:':27}{(time.perf_counter() - t) * 1000:8.0f} ms wall "
        f"{(time.process_time() - c) * 1000:8.0f} ms cpu   (not part of the diff)"
    )
    infos = [
        CaptureInfo("before", serial="bench", boot_id="b"),
        CaptureInfo("after", serial="bench", boot_id="b"),
    ]
    best = {"sides": float("inf"), "diff": float("inf"), "json": float("inf")}
    cpu = dict(best)
    doc: dict[str, object] = {}
    for _ in range(args.repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        sides = [side_from_analysis(a, i) for a, i in zip(analyses, infos, strict=True)]
        w1, c1 = time.perf_counter(), time.process_time()
        result = diff_sides(sides[0], sides[1])
        w2, c2 = time.perf_counter(), time.process_time()
        doc = result.to_json()
        w3, c3 = time.perf_counter(), time.process_time()
        for key, wall, used in (
            ("sides", w1 - w0, c1 - c0),
            ("diff", w2 - w1, c2 - c1),
            ("json", w3 - w2, c3 - c2),
        ):
            best[key] = min(best[key], wall)
            cpu[key] = min(cpu[key], used)
    for key, label in (
        ("sides", "project analyses -> sides"),
        ("diff", "diff engine + suspects"),
        ("json", "dmaprof.diff/2 document"),
    ):
        print(f"{label + ':':27}{best[key] * 1000:8.0f} ms wall {cpu[key] * 1000:8.0f} ms cpu")
    print(
        f"{'diff itself, total:':27}{sum(best.values()) * 1000:8.0f} ms wall "
        f"{sum(cpu.values()) * 1000:8.0f} ms cpu   (goal <= 1000 ms; best of {args.repeat})"
    )
    buffers = doc["buffers"]
    assert isinstance(buffers, dict)
    suspects = doc["suspects"]
    assert isinstance(suspects, list)
    print(
        f"found: {buffers['new_count']} new, {buffers['freed_count']} freed, "
        f"{buffers['moved_count']} kept buffers with changed holders, {len(suspects)} suspects;"
        f" top: {suspects[0]['reason'] if suspects else '-'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
