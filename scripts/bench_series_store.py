"""Benchmark: bytes per sample of a compact series against standalone captures.

The synthetic 500-process phone of scripts/synthphone.py (a 9 MB dump; every sample a new
collector run: a new nonce, a later uptime, new CPU times), ``--samples`` samples, steady
and leaking (one process holds four more 4 MiB buffers every ``--leak-every`` samples).

Each sample is written as `record` writes it (:class:`SampleWriter`) and as a standalone
capture (the first ``--captures`` only: they are all about the same size). Goal: a steady
phone's series costs at most a tenth of the standalone captures per sample.

    python scripts/bench_series_store.py [--samples 300] [--leak-every 25]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def run(label: str, samples: int, leak_every: int | None, captures: int) -> None:
    from synthphone import phone_samples

    from dmaprof.capture.container import write_capture
    from dmaprof.leaks.seriesstore import SampleWriter

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        writer = SampleWriter(out)
        series = standalone = 0
        t_write = 0.0
        for i, capture in phone_samples(samples, leak_every):
            t = time.perf_counter()
            path, _ = writer.write(capture, f"sample-{i:05d}.dmaprof-sample")
            t_write += time.perf_counter() - t
            series += path.stat().st_size
            path.unlink()  # bounded disk; the writer keeps its key in memory
            if i < captures:
                standalone += (
                    write_capture(capture, out / "c.dmaprof", overwrite=True).stat().st_size
                )
        dump = capture.dump
    per, alone = series / samples, standalone / min(samples, captures)
    print(
        f"{label:8}: {samples} samples of a {len(dump) / 1e6:.1f} MB dump: series "
        f"{per / 1e3:.1f} kB/sample, standalone capture {alone / 1e3:.0f} kB/sample "
        f"(1/{alone / per:.0f}; goal <= 1/10: {'met' if per * 10 <= alone else 'NOT met'}); "
        f"write {1e3 * t_write / samples:.0f} ms/sample"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--leak-every", type=int, default=25)
    ap.add_argument("--captures", type=int, default=5)
    args = ap.parse_args()
    run("steady", args.samples, None, args.captures)
    run("leaking", args.samples, args.leak_every, args.captures)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
