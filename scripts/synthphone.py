"""A synthetic 500-process phone sampled over time, for the series benchmarks.

The phone is the generator of scripts/bench_analyze.py (20,000 dma-buf fd references,
3,000 buffers, 6,000 mappings: a 9 MB dump). Each sample is what a new collector run on a
steady phone gives: a new framing nonce, a later uptime, and new CPU times (utime, stime)
in every process's ``/proc/PID/stat``. With ``leak_every``, one process (pid 394, the
scene's 43rd) holds four more 4 MiB buffers every ``leak_every`` samples.
"""

from __future__ import annotations

import random
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "analyze"))

from dmaprof.capture.container import Capture  # noqa: E402

MiB = 1024 * 1024
T0 = 1_795_305_481.0  # the first sample's host wall clock
UPTIME0 = 1234  # the generator's uptime, in seconds
STAT = re.compile(rb"\n(\d+) \(([^)\n]*)\) S (\d+) 0 0 0 0 0 0 0 0 0 0 0 0 ")


def phone_samples(
    samples: int, leak_every: int | None = None, *, seed: int = 7
) -> Iterator[tuple[int, Capture]]:
    """(index, capture) of ``samples`` samples one second apart."""
    from analyze_dumpgen import Buf
    from bench_analyze import make_scene

    scene = make_scene(500, 20_000, 3_000, 6_000)
    leaker = scene.procs[42]
    base = scene.build()
    nonce0 = base.split(b"\n", 1)[0].split()[-1]
    rng = random.Random(seed)
    cpu: dict[bytes, int] = {}
    inode = 10_000_000
    for i in range(samples):
        if leak_every and i and i % leak_every == 0:
            for _ in range(4):
                inode += 1
                scene.buffers.append(
                    Buf(inode=inode, size=4 * MiB, exporter="system", name="leaky", count=1)
                )
                leaker.fds[50_000 + inode % 10_000] = inode
            scene.__dict__.pop("_index", None)  # the generator's inode cache
            base = scene.build()

        def stat(m: re.Match[bytes]) -> bytes:
            pid = m.group(1)
            cpu[pid] = cpu.get(pid, 0) + rng.randint(0, 40)
            return m.group(0)[: -len(b"0 0 ")] + b"%d %d " % (cpu[pid], cpu[pid] // 3)

        nonce = uuid.UUID(int=rng.getrandbits(128)).hex.encode()
        dump = STAT.sub(stat, base.replace(nonce0, nonce))
        uptime = b"%d.00" % (UPTIME0 + i)
        dump = dump.replace(b"uptime_start=1234.56", b"uptime_start=" + uptime)
        dump = dump.replace(b"1234.56 2345.67\n", uptime + b" 2345.67\n")
        meta = {
            "device": {"serial": "bench", "model": "Bench 500", "boot_id": "boot-1"},
            "collection": {"host_wallclock": T0 + i, "complete": True, "uid": 0},
        }
        yield i, Capture(meta, dump)
