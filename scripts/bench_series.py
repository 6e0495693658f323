"""Benchmark: `dmaprof trend` over an hour-long series of a 500-process phone.

The series is generated, not recorded: the synthetic 500-process phone of
scripts/synthphone.py (20,000 dma-buf fd references, 3,000 buffers, 6,000 mappings, a 9 MB
dump; every sample a new collector run: new nonce, uptime and CPU times), one process
leaking four 4 MiB buffers every ``--leak-every`` samples, written one second apart through
the recorder's own writer (a compact ``dmaprof.series/2``, as `dmaprof record` writes it).

* cold: ``trend()`` with no cached figures: every sample loaded and analysed on
  ``--workers`` processes, and its figures stored in the cache (what a first `trend` of a
  series does);
* warm: ``trend()`` again, every sample's figures read from the cache (as `dmaprof record`
  leaves them).

Each run is a fresh process; its wall time and its peak RSS are printed (the pool's workers
are children of the forkserver, not of the run: their memory is not counted).
Goals (2 cores, 3,600 samples): warm <= 10 s, cold <= 5 min.

    python scripts/bench_series.py [--samples 3600] [--leak-every N] [--workers 2] [--dir D]
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


GOAL_SAMPLES = 3600  # an hour at 1 s


def generate(directory: Path, samples: int, leak_every: int) -> None:
    """The series as `dmaprof record` writes it: compact samples, ``samples.ndjson`` and
    ``series.json``, through the recorder's own writer."""
    from synthphone import T0, phone_samples

    from dmaprof.leaks.series import RecordPlan, SeriesWriter

    t = time.perf_counter()
    writer = SeriesWriter.create(
        directory, RecordPlan(interval_s=1.0, count=samples), started=T0, force=False
    )
    for i, capture in phone_samples(samples, leak_every):
        writer.add_sample(i, capture, t=T0 + i, elapsed_s=0.5, attempts=1)
        size = len(capture.dump)
    writer.finish("complete", T0 + samples)
    on_disk = sum(p.stat().st_size for p in directory.iterdir())
    print(
        f"series: {samples} samples of a {size / 1e6:.1f} MB dump, one process leaking "
        f"16 MiB every {leak_every} samples: {on_disk / 1e6:.1f} MB on disk, written in "
        f"{time.perf_counter() - t:.1f} s"
    )


def run_trend(directory: Path, cold: bool, workers: int) -> None:
    """In a fresh process: one trend (cold: from an empty cache), its time and peak memory
    as JSON on stdout."""
    from dmaprof.leaks.series import CACHE_DIR
    from dmaprof.leaks.trend import trend

    if cold:
        shutil.rmtree(directory / CACHE_DIR, ignore_errors=True)
    t = time.perf_counter()
    result = trend(directory, workers=workers)
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
    ap.add_argument("--samples", type=int, default=GOAL_SAMPLES)
    ap.add_argument(
        "--leak-every", type=int, help="samples between leak steps (default: a twelfth of them)"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", type=Path, help="generate here (default: a temporary directory)")
    ap.add_argument("--trend", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.trend:
        run_trend(args.trend, args.cold, args.workers)
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp) / "series"
        generate(directory, args.samples, args.leak_every or max(1, args.samples // 12))
        for label, cold, goal in (("cold", True, 300.0), ("warm", False, 10.0)):
            r = measure(directory, cold, args.workers)
            wall = float(r["wall_s"])  # type: ignore[arg-type]
            verdict = "met" if wall <= goal else "NOT met"
            if args.samples != GOAL_SAMPLES:
                verdict = f"the goal is for {GOAL_SAMPLES} samples"
            print(
                f"trend {label}: {wall:7.1f} s (goal <= {goal:.0f} s: {verdict}), "
                f"{r['samples']} samples, "
                f"{r['series']} series, leaks {r['leaks']}, peak RSS {r['rss_mib']:.0f} MiB "
                "(the trend process; its pool's workers are not counted)",
                flush=True,
            )
        print(f"load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
