"""Benchmark: bytes per sample of a compact series against standalone captures.

A synthetic 500-process phone (the generator of scripts/bench_analyze.py: 20,000 dma-buf fd
references, 3,000 buffers, a 9 MB dump), ``--samples`` samples, steady and leaking:

* every sample is a new collector run: a new framing nonce, a later uptime, and new CPU
  times (utime, stime) in every process's ``/proc/PID/stat`` (what changes on a steady
  phone);
* leaking: one process holds four more 4 MiB buffers every ``--leak-every`` samples.

Each sample is written as `record` writes it (:class:`SampleWriter`) and as a standalone
capture (the first ``--captures`` only: they are all about the same size). Goal: a steady
phone's series costs at most a tenth of the standalone captures per sample.

    python scripts/bench_series_store.py [--samples 300] [--leak-every 25]
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "analyze"))

MiB = 1024 * 1024
STAT = re.compile(rb"\n(\d+) \(([^)\n]*)\) S (\d+) 0 0 0 0 0 0 0 0 0 0 0 0 ")


def run(label: str, samples: int, leak_every: int | None, captures: int) -> None:
    from analyze_dumpgen import Buf
    from bench_analyze import make_scene

    from dmaprof.capture.container import Capture, write_capture
    from dmaprof.leaks.seriesstore import SampleWriter

    scene = make_scene(500, 20_000, 3_000, 6_000)
    leaker = scene.procs[42]
    base = scene.build()
    nonce0 = base.split(b"\n", 1)[0].split()[-1]
    rng = random.Random(7)
    cpu: dict[bytes, int] = {}
    inode = 10_000_000
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        writer = SampleWriter(out)
        series = standalone = 0
        t_write = 0.0
        for i in range(samples):
            if leak_every and i and i % leak_every == 0:
                for _ in range(4):
                    inode += 1
                    scene.buffers.append(Buf(inode=inode, size=4 * MiB, exporter="system"))
                    leaker.fds[50_000 + inode % 10_000] = inode
                scene.__dict__.pop("_index", None)
                base = scene.build()

            def stat(m: re.Match[bytes]) -> bytes:
                pid = m.group(1)
                cpu[pid] = cpu.get(pid, 0) + rng.randint(0, 40)
                return m.group(0)[: -len(b"0 0 ")] + b"%d %d " % (cpu[pid], cpu[pid] // 3)

            nonce = uuid.UUID(int=rng.getrandbits(128)).hex.encode()
            dump = STAT.sub(stat, base.replace(nonce0, nonce))
            dump = dump.replace(b"uptime_start=1234.56", b"uptime_start=%d.00" % (1234 + i))
            meta = {
                "device": {"serial": "bench", "boot_id": "boot-1"},
                "collection": {"host_wallclock": 1_795_305_481.0 + i, "complete": True},
            }
            t = time.perf_counter()
            path, _ = writer.write(Capture(meta, dump), f"sample-{i:05d}.dmaprof-sample")
            t_write += time.perf_counter() - t
            series += path.stat().st_size
            path.unlink()  # bounded disk; the writer keeps its key in memory
            if i < captures:
                standalone += (
                    write_capture(Capture(meta, dump), out / "c.dmaprof", overwrite=True)
                    .stat()
                    .st_size
                )
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
