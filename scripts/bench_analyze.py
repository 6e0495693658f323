"""Benchmark: parse + attribute a synthetic dump of a big device.

2,000 processes, 200,000 dma-buf fd references, 30,000 buffers (plus non-dma-buf fds,
40,000 mappings, sysfs per-buffer stats). Prints the dump size, the time of parse_dump,
of analyze() (parse + attribute) and of build_report(), and the peak RSS of the process.
Goals on a 2-core machine: parse + attribute <= 1 s, peak RSS <= 1 GiB.

    python scripts/bench_analyze.py [--processes N] [--fds N] [--buffers N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "analyze"))

from analyze_dumpgen import Buf, Proc, Scene  # noqa: E402

from dmaprof.analyze import analyze, build_report  # noqa: E402
from dmaprof.capture.dump import parse_dump  # noqa: E402

EXPORTERS = [
    "system",
    "system",
    "system",
    "qcom,system",
    "qcom_hgsl",
    "qcom_hgsl",
    "drm",
    "system-uncached",
]
NAMES = [
    "gralloc",
    "FramebufferSurface",
    "GraphicBuffer",
    "qcom,system",
    "",
    "camera",
    "media.codec",
    "RenderEngine",
]
SIZES = [4096, 8192, 65536, 262144, 1048576, 2408448, 4620288, 8294400]


def make_scene(n_proc: int, n_fds: int, n_buf: int, n_maps: int, seed: int = 1) -> Scene:
    rng = random.Random(seed)
    buffers = [
        Buf(
            inode=1000 + i,
            size=rng.choice(SIZES),
            exporter=rng.choice(EXPORTERS),
            name=rng.choice(NAMES) or None,
            count=rng.randint(1, 6),
        )
        for i in range(n_buf)
    ]
    inodes = [b.inode for b in buffers]
    procs: list[Proc] = []
    # a few heavy holders (surfaceflinger-like), the rest spread evenly
    weights = [50.0 if i < 5 else 1.0 for i in range(n_proc)]
    total_w = sum(weights)
    fd_counts = [int(n_fds * w / total_w) for w in weights]
    fd_counts[-1] += n_fds - sum(fd_counts)
    map_counts = [int(n_maps * w / total_w) for w in weights]
    map_counts[-1] += n_maps - sum(map_counts)
    for i in range(n_proc):
        pid = 100 + i * 7
        if i < 5:
            name, uid, cg = f"surfaceflinger{i}", 1000, "/system"
        elif i % 3 == 0:
            name, uid, cg = f"vendor.svc{i}", 1000 + i % 60, "/system"
        else:
            uid = 10000 + i % 400
            name, cg = f"com.example.app{i % 400}", f"/uid_{uid}/pid_{pid}"
        fds: dict[int, int | str] = {}
        for k in range(fd_counts[i]):
            fds[20 + k] = rng.choice(inodes)
        for k in range(20):  # ordinary fds
            fds[k] = "/dev/null" if k < 3 else f"socket:[{rng.randint(1000, 99999)}]"
        maps = []
        base = 0x7F0000000000
        for k in range(map_counts[i]):
            ino = rng.choice(inodes)
            maps.append((ino, base + k * 0x100000, base + k * 0x100000 + 0x40000))
        procs.append(
            Proc(
                pid=pid,
                name=name,
                uid=uid,
                cgroup=cg,
                fds=fds,
                maps=maps,
                cmdline=name.encode() + b"\0",
            )
        )
    pk = {f"com.example.app{k}": [10000 + k] for k in range(400)}
    return Scene(buffers=buffers, procs=procs, inventory=("sysfs",), packages=pk)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processes", type=int, default=2000)
    ap.add_argument("--fds", type=int, default=200_000)
    ap.add_argument("--buffers", type=int, default=30_000)
    ap.add_argument("--maps", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--charge", default="shared")
    ap.add_argument("--save", metavar="PATH", help="also write the generated dump to PATH")
    ap.add_argument(
        "--load",
        metavar="PATH",
        help="analyse this dump instead of generating one (then the peak RSS "
        "is the analysis's own)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.load:
        data = Path(args.load).read_bytes()
        print(f"dump: {len(data) / 1e6:.1f} MB read from {args.load}")
    else:
        data = make_scene(args.processes, args.fds, args.buffers, args.maps).build()
        gen = time.perf_counter() - t0
        print(
            f"dump: {len(data) / 1e6:.1f} MB generated in {gen:.1f} s "
            f"({args.processes} processes, {args.fds} dma-buf fds, {args.buffers} buffers, "
            f"{args.maps} mappings)"
        )
        if args.save:
            Path(args.save).write_bytes(data)
    best_parse = best_report = best_cpu = float("inf")
    totals: list[float] = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        c = time.process_time()
        dump = parse_dump(data)
        t_parse = time.perf_counter() - t
        a = analyze(dump, charge=args.charge)
        t_total = time.perf_counter() - t
        c_total = time.process_time() - c
        t = time.perf_counter()
        build_report(a, {})
        t_report = time.perf_counter() - t
        best_parse = min(best_parse, t_parse)
        totals.append(t_total)
        best_cpu = min(best_cpu, c_total)
        best_report = min(best_report, t_report)
        del a, dump
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"load average (1 min): {load:.2f} on {os.cpu_count()} CPUs (other work slows "
        "wall times down)"
    )
    print(f"parse_dump:           {best_parse * 1000:8.0f} ms")
    print(
        f"parse + attribute:    {min(totals) * 1000:8.0f} ms wall (best of {len(totals)}; "
        f"median {statistics.median(totals) * 1000:.0f} ms), {best_cpu * 1000:.0f} ms CPU"
        "   (goal <= 1000 ms)"
    )
    print(f"build_report:         {best_report * 1000:8.0f} ms")
    what = "the dump and the analysis" if args.load else "the generator too"
    print(f"peak RSS:             {peak / 2**20:8.0f} MiB  (goal <= 1024 MiB; {what})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
