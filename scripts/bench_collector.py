#!/usr/bin/env python3
"""Benchmark dmaprof's collector: process spawns, wall time and dump size.

Builds the benchmark phone (tests/emuphone/scene.generate_large: 500 processes, 20,000 fds by
default) on a fake root, runs dmaprof/collect/collect.sh chrooted into it under mksh + toybox
and under busybox sh + busybox applets, then on this machine's real /proc. Spawns are counted
exactly: each run happens in a new PID namespace where the collector is pid 2, so the pid of a
probe process forked after it tells how many processes it (and its children) started.

Needs root (chroot, unshare) and the Debian packages mksh, toybox and busybox-static.

    python scripts/bench_collector.py [--procs 500] [--fds 20000] [--repeat 3] [--uid 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.emuphone import minroot
from tests.emuphone import scene as S

BUDGET = 40


@dataclass
class Result:
    label: str
    spawns: int
    reported: str
    seconds: float
    size: int
    fdlinks: int
    fdinfo_files: int


def summarize(label: str, runs: list[S.CollectorRun]) -> Result:
    best = min(runs, key=lambda r: r.seconds)
    for r in runs:
        if r.returncode != 0:
            raise SystemExit(f"{label}: collector failed ({r.returncode}): {r.stderr[:500]!r}")
    text = best.stdout
    nonce = text.split(b"\n", 1)[0].split()[2]
    pre = b"@" + nonce + b" "
    fdlinks = fdinfo = 0
    section = b""
    for line in text.split(b"\n"):
        if line.startswith(pre + b"section "):
            section = line.split()[2]
        elif line.startswith(pre + b"/proc/") and section == b"fdlinks":
            fdlinks += 1
        elif section == b"fdinfo" and line.endswith(b":pos:\t0"):
            fdinfo += 1
    reported = b""
    for line in text.split(b"\n"):
        if line.startswith(b"spawns="):
            reported = line[7:]
    assert best.spawns is not None
    return Result(
        label, best.spawns, reported.decode() or "-", best.seconds, len(text), fdlinks, fdinfo
    )


def run_fake(root: Path, toolset: str, uid: int, repeat: int) -> list[S.CollectorRun]:
    runs = []
    for i in range(repeat):
        wd = S.install_collector(root, uid, f"bench-{toolset}-{uid}-{i}")
        if toolset == "mksh":
            r = S.run_collector(root, ["-w", wd], uid=uid, script=f"{wd}/collect.sh")
        else:  # busybox sh collect.sh: busybox's ash prefers its own applets (standalone shell)
            r = S.run_collector(
                root, [f"{wd}/collect.sh", "-w", wd], uid=uid, shell="/system/bin/busybox",
                script="sh",
            )  # fmt: skip
        runs.append(r)
        shutil.rmtree(root / wd.lstrip("/"))
    return runs


def run_host(shell: list[str], repeat: int) -> list[S.CollectorRun]:
    """``shell collect.sh`` or, for busybox, ``busybox sh collect.sh`` on the real /proc."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": tempfile.gettempdir()}
    if len(shell) == 1:
        return [S.run_collector(None, [], shell=shell[0], env=env) for _ in range(repeat)]
    return [
        S.run_collector(None, [str(S.COLLECTOR)], shell=shell[0], script=shell[1], env=env)
        for _ in range(repeat)
    ]


def getprop_spawns(root: Path) -> int:
    """Processes the fake getprop (minroot's mksh script with a pipeline) starts itself."""
    r = S.run_collector(root, [], script="/system/bin/getprop")
    assert r.spawns is not None
    return r.spawns


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=500)
    ap.add_argument("--fds", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=6, help="threads per process")
    ap.add_argument("--repeat", type=int, default=3, help="runs per target; the fastest is shown")
    ap.add_argument("--uid", type=int, action="append", help="0 and/or 2000 (default: both)")
    ap.add_argument("--no-host", action="store_true", help="skip the real /proc runs")
    ap.add_argument("--keep", type=Path, help="build the phone here and keep it")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (chroot, unshare)")
    uids = args.uid or [0, 2000]

    base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else Path(tempfile.gettempdir())
    top = args.keep or Path(tempfile.mkdtemp(prefix="dmaprof-bench-", dir=base))
    root = top / "root"
    try:
        t0 = time.monotonic()
        scene = S.generate_large(args.procs, args.fds, threads_per_proc=args.threads)
        minroot.build_base_root(root)
        S.build_scene(scene, root, "modern")
        nfds = sum(len(t) for p in scene["processes"] for t in S.fd_tables(p))
        ndma = sum(
            1 for p in scene["processes"] for t in S.fd_tables(p) for f in t if "buffer" in f
        )
        nthreads = sum(1 + len(p.get("threads", [])) for p in scene["processes"])
        print(f"phone: {len(scene['processes'])} processes, {nthreads} threads, {nfds} fds "
              f"({ndma} dma-buf), {len(scene['buffers'])} buffers; built in "
              f"{time.monotonic() - t0:.1f} s under {top}")  # fmt: skip
        gp = getprop_spawns(root)
        print(f"(the fake getprop is an mksh script whose pipeline starts {gp} processes of its "
              "own; a phone's getprop is one toybox process)\n")  # fmt: skip

        results = []
        for toolset in ("mksh", "busybox"):
            for uid in uids:
                label = f"fake {toolset}+{'toybox' if toolset == 'mksh' else 'applets'} uid {uid}"
                results.append(summarize(label, run_fake(root, toolset, uid, args.repeat)))
        if not args.no_host:
            nproc = sum(1 for d in os.listdir("/proc") if d.isdigit())
            for shell in (
                ["/bin/sh"],
                [S.static_mksh()],
                [shutil.which("busybox") or "busybox", "sh"],
            ):
                label = f"host /proc ({nproc} procs) {Path(shell[0]).name}"
                results.append(summarize(label, run_host(shell, args.repeat)))

        print(f"{'target':42} {'spawns':>6} {'tally':>5} {'wall s':>7} {'dump KiB':>9} "
              f"{'fdlinks':>8} {'fdinfo':>7}")  # fmt: skip
        for r in results:
            print(f"{r.label:42} {r.spawns:>6} {r.reported:>5} {r.seconds:>7.2f} "
                  f"{r.size / 1024:>9.0f} {r.fdlinks:>8} {r.fdinfo_files:>7}")  # fmt: skip
        print("\nspawns: counted in a PID namespace (fake runs include the fake getprop's "
              f"{gp}); tally: the collector's own `spawns=` (mksh only)")  # fmt: skip
        worst = max(r.spawns for r in results)
        print(f"budget {BUDGET}: {'OK' if worst <= BUDGET else 'EXCEEDED'} (max {worst})")
        return 0 if worst <= BUDGET else 1
    finally:
        if args.keep is None:
            S.remove_tree(top)


if __name__ == "__main__":
    raise SystemExit(main())
