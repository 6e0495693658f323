#!/usr/bin/env python3
"""The collector against its read floor: wall time, CPU time, spawns, dump bytes (issue #14).

Two targets, each a scale scene of ``--procs`` processes with ``--dmafds`` dma-buf fds over
``--bufs`` shared buffers, ``--otherfds`` other fds and about ``--maps`` maps lines each:

* ``vm``: the qemu testbed (docs/vm-testbed.md) on Debian's 6.12 kernel, 2 vCPUs, real
  dma-bufs (scripts/vm/scale.c); the floor reader (scripts/vm/floor.c: one process reading
  exactly what the collector reads) and ``sh collect.sh > dump`` (busybox sh, root, the dump
  on tmpfs) run interleaved for ``--rounds`` rounds after one warm-up round.
* ``phone``: the emulated phone (tests/emuphone: mksh + toybox in a chroot over a fake
  root on /dev/shm), the floor built for the host and run in the chroot, likewise
  interleaved; spawns counted exactly in a PID namespace.

Prints, per target and program: best and median wall time, user+sys CPU of the best-wall
run and the median CPU, spawns, dump bytes; then the ratios collector/floor. Needs root.

    python scripts/bench_collector_vm.py [--target vm|phone|both] [--rounds 5] [--procs 500]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.emuphone import minroot  # noqa: E402
from tests.emuphone import scene as S  # noqa: E402

WALL_GOAL = 1.25
CPU_GOAL = 1.5
SPAWN_BUDGET = 40


@dataclass
class Runs:
    what: str
    wall: list[float]
    cpu: list[float]
    spawns: list[int]
    bytes: list[int]

    @property
    def best(self) -> int:
        return min(range(len(self.wall)), key=self.wall.__getitem__)


def load_run_py() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("dmaprof_vm_run", ROOT / "scripts/vm/run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["dmaprof_vm_run"] = mod
    spec.loader.exec_module(mod)
    return mod


def collector_text() -> bytes:
    """The script `dmaprof collector` prints."""
    return subprocess.run(
        [sys.executable, "-m", "dmaprof", "collector"], cwd=ROOT, capture_output=True, check=True
    ).stdout


def runs_from(lines: list[dict[str, Any]], what: str, rounds: int) -> Runs:
    rs = [x["run"] for x in lines if x["what"] == what and x["round"] >= 1][:rounds]
    for r in rs:
        if r["rc"] != 0:
            raise SystemExit(f"{what} failed in the guest: rc {r['rc']}")
    return Runs(
        what,
        [r["wall_s"] for r in rs],
        [r["user_s"] + r["sys_s"] for r in rs],
        [r["spawns"] for r in rs],
        [r["bytes"] for r in rs],
    )


def bench_vm(args: argparse.Namespace, tmp: Path) -> tuple[Runs, Runs, str]:
    run = load_run_py()
    script = tmp / "collect.sh"
    script.write_bytes(collector_text())
    d = run.run_bench(
        "6.12",
        script,
        tmp / "vm",
        procs=args.procs,
        bufs=args.bufs,
        dmafds=args.dmafds,
        otherfds=args.otherfds,
        maps=args.maps,
        rounds=args.rounds,
    )
    lines = [json.loads(x) for x in (d / "out/bench.jsonl").read_text().splitlines()]
    summary = (d / "out/floor.summary").read_text().strip()
    dump = (d / "out/dump").read_bytes()
    if not dump.rstrip(b"\n").endswith(b" done"):
        raise SystemExit(f"the collector's dump is truncated; stderr: {d / 'out/dump.stderr'}")
    kver = json.loads((d / "run.json").read_text())["kernel"]["kver"]
    what = f"VM testbed, {kver}, busybox sh, 2 vCPUs; floor read {summary}"
    return runs_from(lines, "floor", args.rounds), runs_from(lines, "collector", args.rounds), what


def pad_maps(root: Path, lines: int) -> None:
    """Fill every fake /proc/PID/maps up to about ``lines`` lines with library mappings (the
    fake phone writes only a few plus the dma-buf ones; a real app maps hundreds)."""
    for maps in (root / "proc").glob("[0-9]*/maps"):
        text = maps.read_text()
        have = text.count("\n")
        if not text:
            continue
        extra = "".join(
            f"7f{k:08x}000-7f{k:08x}fff r-xp 00000000 fd:03 {4000 + k}"
            f"                    /system/lib64/libfake{k}.so\n"
            for k in range(max(0, lines - have))
        )
        maps.chmod(0o644)
        maps.write_text(text + extra)
        maps.chmod(0o444)


def bench_phone(args: argparse.Namespace, tmp: Path) -> tuple[Runs, Runs, str]:
    n_fds = args.procs * (args.dmafds + args.otherfds + 3)
    scene = S.generate_large(
        args.procs,
        n_fds,
        dmabuf_fd_share=args.dmafds / (args.dmafds + args.otherfds),
        n_buffers=args.bufs,
        threads_per_proc=1,
        maps_per_proc=2,
    )
    base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else tmp
    top = Path(tempfile.mkdtemp(prefix="dmaprof-floor-", dir=base))
    try:
        root = top / "root"
        minroot.build_base_root(root)
        S.build_scene(scene, root, "modern")
        pad_maps(root, args.maps)
        floor = root / "system/bin/dpfloor"
        subprocess.run(
            ["gcc", "-O2", "-static", "-s", "-o", floor, ROOT / "scripts/vm/floor.c"], check=True
        )
        host_floor = top / "floor"
        shutil.copy2(floor, host_floor)
        wd = S.install_collector(root, 0, "bench")
        (root / wd.lstrip("/") / "collect.sh").write_bytes(collector_text())
        chroot = [S.host_tool("chroot"), str(root)]
        progs = {
            "floor": [*chroot, "/system/bin/dpfloor", "read"],
            "collector": [*chroot, "/system/bin/sh", f"{wd}/collect.sh", "-w", wd],
        }
        lines: list[dict[str, Any]] = []
        for rnd in range(args.rounds + 1):
            for what, cmd in progs.items():
                out = top / f"{what}.out"
                r = subprocess.run(
                    [str(host_floor), "time", str(out), *cmd],
                    env=S.ANDROID_ENV,
                    capture_output=True,
                    check=True,
                )
                lines.append({"round": rnd, "what": what, "run": json.loads(r.stdout)})
        floor_runs = runs_from(lines, "floor", args.rounds)
        coll_runs = runs_from(lines, "collector", args.rounds)
        # spawns: /proc/stat counts the whole host; count exactly in a PID namespace instead
        exact = S.run_collector(root, ["-w", wd], script=f"{wd}/collect.sh")
        if exact.returncode != 0:
            raise SystemExit(f"collector failed in the phone: {exact.stderr[:300]!r}")
        assert exact.spawns is not None
        coll_runs.spawns = [exact.spawns] * len(coll_runs.wall)
        floor_runs.spawns = [0] * len(floor_runs.wall)
        summary = subprocess.run(
            [*chroot, "/system/bin/dpfloor", "read"], capture_output=True, check=True
        ).stderr.decode()
        what = f"emulated phone, mksh + toybox, fake root on {base}; floor read {summary.strip()}"
        return floor_runs, coll_runs, what
    finally:
        S.remove_tree(top)


def report(title: str, floor: Runs, coll: Runs) -> bool:
    print(f"\n{title}")
    print(f"{'':10} {'best s':>7} {'median s':>8} {'cpu s':>6} {'cpu med':>7} {'spawns':>6} "
          f"{'dump bytes':>11}")  # fmt: skip
    for r in (floor, coll):
        b = r.best
        print(f"{r.what:10} {r.wall[b]:>7.2f} {statistics.median(r.wall):>8.2f} {r.cpu[b]:>6.2f} "
              f"{statistics.median(r.cpu):>7.2f} {max(r.spawns):>6} {r.bytes[b]:>11}")  # fmt: skip
    wall = min(coll.wall) / min(floor.wall)
    wall_med = statistics.median(coll.wall) / statistics.median(floor.wall)
    cpu = statistics.median(coll.cpu) / statistics.median(floor.cpu)
    spawns = max(coll.spawns)
    ok = wall <= WALL_GOAL and cpu <= CPU_GOAL and spawns <= SPAWN_BUDGET
    print(f"collector/floor: wall {wall:.2f}x best (goal <= {WALL_GOAL}), {wall_med:.2f}x "
          f"median; CPU {cpu:.2f}x median (goal <= {CPU_GOAL}); spawns {spawns} "
          f"(goal <= {SPAWN_BUDGET}): {'OK' if ok else 'NOT MET'}")  # fmt: skip
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=["vm", "phone", "both"], default="both")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--procs", type=int, default=500)
    ap.add_argument("--bufs", type=int, default=200)
    ap.add_argument("--dmafds", type=int, default=40)
    ap.add_argument("--otherfds", type=int, default=30)
    ap.add_argument("--maps", type=int, default=100)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (qemu's cache, chroot, unshare)")
    ok = True
    with tempfile.TemporaryDirectory(prefix="dmaprof-bench-") as t:
        tmp = Path(t)
        if args.target in ("vm", "both"):
            floor, coll, what = bench_vm(args, tmp)
            ok &= report(what, floor, coll)
        if args.target in ("phone", "both"):
            floor, coll, what = bench_phone(args, tmp)
            ok &= report(what, floor, coll)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
