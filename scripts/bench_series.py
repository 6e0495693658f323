"""Benchmark: `dmaprof trend` over an hour-long series of a 500-process phone.

The series is generated, not recorded: a synthetic 500-process phone (the generator of
scripts/bench_analyze.py, imported: 20,000 dma-buf fd references, 3,000 buffers, 6,000
mappings, a 9 MB dump, about 0.9 MB as a capture) in ``--variants`` states, one process
leaking four 4 MiB buffers from each state to the next. The samples of one state are hard
links of one capture (identical content: the cache beside them keys entries by content,
so the warm run reads one entry per state, as many times as there are samples), timed one
second apart in ``samples.ndjson``, as `dmaprof record` writes it.

* cold: ``trend(use_cache=False)``: every sample loaded and analysed, on ``--workers``
  processes;
* warm: the figures cached (as `dmaprof record` leaves them), ``trend()`` again.

Each run is a fresh process; its wall time and its peak RSS are printed (the pool's workers
are children of the forkserver, not of the run: their memory is not counted).
Goals (2 cores, 3,600 samples): warm <= 10 s, cold <= 5 min.

    python scripts/bench_series.py [--samples 3600] [--variants 12] [--workers 2] [--dir D]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "analyze"))

MiB = 1024 * 1024
T0 = 1_795_305_481.0


def _variants(n: int, processes: int, fds: int, buffers: int, maps: int) -> list[bytes]:
    from analyze_dumpgen import Buf
    from bench_analyze import make_scene

    scene = make_scene(processes, fds, buffers, maps)
    leaker = scene.procs[42]
    dumps = []
    inode = 10_000_000
    for _ in range(n):
        dumps.append(scene.build())
        for _ in range(4):
            inode += 1
            scene.buffers.append(
                Buf(inode=inode, size=4 * MiB, exporter="system", name="leaky", count=1)
            )
            leaker.fds[50_000 + inode % 10_000] = inode
        scene.__dict__.pop("_index", None)  # the generator's inode cache
    return dumps


def generate(directory: Path, samples: int, variants: int, args: argparse.Namespace) -> None:
    from dmaprof.capture.container import Capture, write_capture

    t = time.perf_counter()
    dumps = _variants(variants, args.processes, args.fds, args.buffers, args.maps)
    store = directory / ".states"
    store.mkdir(parents=True)
    states = []
    for n, dump in enumerate(dumps):
        meta = {
            "device": {"serial": "bench", "model": "Bench 500", "boot_id": "boot-1"},
            "collection": {"host_wallclock": T0, "complete": True, "uid": 0},
        }
        states.append(write_capture(Capture(meta, dump), store / f"state-{n}.dmaprof"))
    lines = []
    for i in range(samples):
        name = f"sample-{i:05d}.dmaprof"
        os.link(states[i * variants // samples], directory / name)
        lines.append(
            json.dumps({"index": i, "status": "ok", "file": name, "t": T0 + i, "boot_id": "boot-1"})
        )
    (directory / "samples.ndjson").write_text("\n".join(lines) + "\n")
    size = states[0].stat().st_size
    print(
        f"series: {samples} samples of a {len(dumps[0]) / 1e6:.1f} MB dump "
        f"({size / 1e6:.2f} MB as a capture), {variants} states, generated in "
        f"{time.perf_counter() - t:.1f} s"
    )


def run_trend(directory: Path, cold: bool, workers: int) -> None:
    """In a fresh process: one trend, its time and peak memory as JSON on stdout."""
    from dmaprof.leaks.trend import trend

    t = time.perf_counter()
    result = trend(directory, use_cache=not cold, workers=workers)
    wall = time.perf_counter() - t
    leaks = [s["key"] for s in result.doc["leaks"]]
    print(
        json.dumps(
            {
                "wall_s": wall,
                "samples": result.doc["samples"],
                "series": len(result.doc["series"]),
                "leaks": leaks,
                "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def fill_cache(directory: Path) -> None:
    """What `dmaprof record` leaves: each state's figures in the cache."""
    from dmaprof.leaks.trend import sample_outcome

    for state in sorted((directory / ".states").glob("*.dmaprof")):
        sample_outcome(state, "shared", True)
    # the entries sit beside .states/; the samples (hard links) sit in the series directory
    shutil.copytree(
        directory / ".states" / ".dmaprof-cache", directory / ".dmaprof-cache", dirs_exist_ok=True
    )


def measure(directory: Path, cold: bool, workers: int) -> dict[str, object]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--trend",
            str(directory),
            "--workers",
            str(workers),
            *(["--cold"] if cold else []),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=3600)
    ap.add_argument("--variants", type=int, default=12)
    ap.add_argument("--processes", type=int, default=500)
    ap.add_argument("--fds", type=int, default=20_000)
    ap.add_argument("--buffers", type=int, default=3_000)
    ap.add_argument("--maps", type=int, default=6_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument(
        "--cold-samples",
        type=int,
        help="time the cold trend over this many samples only (same states) and "
        "extrapolate linearly to --samples (a loaded machine: minutes less)",
    )
    ap.add_argument("--dir", type=Path, help="generate here (default: a temporary directory)")
    ap.add_argument("--trend", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.trend:
        run_trend(args.trend, args.cold, args.workers)
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp) / "series"
        directory.mkdir()
        generate(directory, args.samples, args.variants, args)
        fill_cache(directory)
        for label, cold, goal in (("warm", False, 10.0), ("cold", True, 300.0)):
            if cold and args.skip_cold:
                continue
            where, scale = directory, 1.0
            if cold and args.cold_samples and args.cold_samples < args.samples:
                where = Path(tmp) / "cold"
                where.mkdir()
                generate(where, args.cold_samples, args.variants, args)
                scale = args.samples / args.cold_samples
            r = measure(where, cold, args.workers)
            wall = float(r["wall_s"]) * scale  # type: ignore[arg-type]
            if scale != 1.0:
                label += f" ({r['samples']} samples measured: {float(r['wall_s']):.1f} s, "  # type: ignore[arg-type]
                label += f"x{scale:.1f})"
            print(
                f"trend {label:4}: {wall:7.1f} s (goal <= {goal:.0f} s: "
                f"{'met' if wall <= goal else 'NOT met'}), {r['samples']} samples, "
                f"{r['series']} series, leaks {r['leaks']}, peak RSS {r['rss_mib']:.0f} MiB "
                "(the trend process; its pool's workers are not counted)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
