"""Fake phone scenes for leak tests: edit a scene, build its root, run the real collector.

Scene edits (on a dict loaded from ``fixtures/phones/pixel-like.json``):

* :func:`add_buffer` creates a buffer and gives it holders (by fd, by mapping, or both);
* :func:`free_buffer` removes a buffer and every reference to it;
* :func:`move_buffer` hands a buffer from one process to another;
* :func:`leak` adds ``n`` buffers of one name held by one process (a leak step).

:func:`capture` builds the phone root, runs the shipped collector in it (chroot, as root)
and returns a ``Capture`` exactly as ``dmaprof snapshot`` would have written it.
:func:`set_start_time` rewrites stat field 22 of a built root (pid reuse).
:func:`rebuild` rewrites a live root in place (between samples of an emulated phone).

Run as ``python -m tests.leaks.phonescene rebuild ROOT SCENE.json`` it rebuilds a root from a
scene file: the CI-script test uses that as its "test suite" that leaks.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dmaprof.capture.container import Capture, write_capture
from dmaprof.capture.metadata import capture_meta
from tests.emuphone import minroot
from tests.emuphone import scene as S

PIXEL = S.FIXTURES / "pixel-like.json"
MAP_BASE = 0x7D00000000


def pixel() -> dict[str, Any]:
    return copy.deepcopy(S.load_scene(PIXEL))


def process(scene: Mapping[str, Any], pid: int) -> dict[str, Any]:
    for p in scene["processes"]:
        if int(p["pid"]) == pid:
            return p  # type: ignore[no-any-return]
    raise KeyError(pid)


def _free_fd(proc: Mapping[str, Any]) -> int:
    used = {int(f["fd"]) for f in proc.get("fds", [])}
    fd = 100
    while fd in used:
        fd += 1
    return fd


def _next_map(proc: Mapping[str, Any], size: int) -> tuple[str, str]:
    ends = [int(m["end"], 16) for m in proc.get("maps", [])]
    start = max([MAP_BASE, *ends]) + 0x100000
    start = (start + 0xFFFFF) & ~0xFFFFF
    return f"{start:x}", f"{start + size:x}"


def add_buffer(
    scene: dict[str, Any],
    inode: int,
    size: int,
    name: str,
    holders: Mapping[int, str],
    exporter: str = "system",
) -> None:
    """``holders``: pid -> ``fd`` | ``map`` | ``both``; no holders: a kernel-only buffer."""
    scene["buffers"].append({"inode": inode, "size": size, "exporter": exporter, "name": name})
    for pid, how in holders.items():
        proc = process(scene, pid)
        if how in ("fd", "both"):
            proc.setdefault("fds", []).append({"fd": _free_fd(proc), "buffer": inode})
        if how in ("map", "both"):
            start, end = _next_map(proc, size)
            proc.setdefault("maps", []).append({"buffer": inode, "start": start, "end": end})


def free_buffer(scene: dict[str, Any], inode: int) -> None:
    scene["buffers"] = [b for b in scene["buffers"] if int(b["inode"]) != inode]
    for proc in scene["processes"]:
        proc["fds"] = [f for f in proc.get("fds", []) if f.get("buffer") != inode]
        proc["maps"] = [m for m in proc.get("maps", []) if int(m["buffer"]) != inode]
        for t in proc.get("threads", []):
            if "fds" in t:
                t["fds"] = [f for f in t["fds"] if f.get("buffer") != inode]


def drop_holder(scene: dict[str, Any], inode: int, pid: int) -> None:
    proc = process(scene, pid)
    proc["fds"] = [f for f in proc.get("fds", []) if f.get("buffer") != inode]
    proc["maps"] = [m for m in proc.get("maps", []) if int(m["buffer"]) != inode]


def move_buffer(scene: dict[str, Any], inode: int, from_pid: int, to_pid: int) -> None:
    drop_holder(scene, inode, from_pid)
    proc = process(scene, to_pid)
    proc.setdefault("fds", []).append({"fd": _free_fd(proc), "buffer": inode})


def leak(
    scene: dict[str, Any],
    pid: int,
    n: int,
    size: int,
    name: str,
    *,
    first_inode: int | None = None,
    how: str = "fd",
    exporter: str = "system",
) -> list[int]:
    """Add ``n`` buffers named ``name`` held by ``pid``; returns their inodes."""
    start = first_inode or max(int(b["inode"]) for b in scene["buffers"]) + 1
    inodes = list(range(start, start + n))
    for inode in inodes:
        add_buffer(scene, inode, size, name, {pid: how}, exporter)
    return inodes


def replace_process(
    scene: dict[str, Any], pid: int, *, name: str, uid: int, cmdline: Iterable[str]
) -> None:
    """The pid now belongs to another program (pid reuse): same pid, new identity; it keeps
    no fds or mappings of the old one."""
    proc = process(scene, pid)
    proc.update(
        name=name,
        uid=uid,
        gid=uid,
        cmdline=list(cmdline),
        fds=[],
        maps=[],
        cgroup=[f"0::/uid_{uid}/pid_{pid}"],
    )
    proc.pop("comm", None)
    proc.pop("threads", None)


def set_start_time(root: Path, pid: int, ticks: int) -> None:
    """Rewrite field 22 (starttime) of /proc/<pid>/stat and of its tasks' stat files."""
    proc = root / "proc" / str(pid)
    paths = [proc / "stat", *sorted((proc / "task").glob("*/stat"))]
    for path in paths:
        text = path.read_text()
        head, _, tail = text.rpartition(") ")
        fields = tail.split()
        fields[19] = str(ticks)  # fields after "(comm)" start at field 3: 22 - 3 = 19
        mode = path.stat().st_mode
        path.chmod(0o644)
        path.write_text(f"{head}) {' '.join(fields)}\n")
        path.chmod(mode & 0o777)


def build_root(
    scene: Mapping[str, Any], dest: Path, variant: str = "modern", user_build: bool = False
) -> Path:
    """``user_build``: other users' fd, fdinfo and maps are closed to the shell user."""
    minroot.build_base_root(dest)
    S.build_scene(scene, dest, variant, user_build=user_build)
    return dest


def rebuild(
    root: Path, scene: Mapping[str, Any], variant: str = "modern", user_build: bool = False
) -> None:
    """Replace the scene part of a built root (``/proc``, ``/sys``, heaps) in place."""
    for part in ("proc", "sys", "dev/dma_heap"):
        S.remove_tree(root / part)
    S.build_scene(scene, root, variant, user_build=user_build)


def scratch_dir() -> Path:
    base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="dmaprof-leaks-", dir=base))


_RUNS = iter(range(1_000_000))


def collect(
    root: Path,
    *,
    serial: str = "emu-5554",
    wallclock: float | None = None,
    uid: int = 0,
    collector_pid: int | None = None,
) -> Capture:
    """Run the collector in ``root`` as `dmaprof snapshot` does (as root, or as ``uid``: the
    shell user is 2000); the capture it would write. ``collector_pid``: the (host) pid the
    collector runs as, e.g. one of the scene's pids."""
    name = f"dp-{next(_RUNS)}"
    wd = S.install_collector(root, uid, name)
    try:
        run = S.run_collector(
            root,
            ["-w", wd],
            uid=uid,
            script=f"{wd}/collect.sh",
            count_spawns=False,
            pid=collector_pid,
        )
    finally:
        S.remove_tree(root / wd.lstrip("/"))
    assert run.returncode == 0, run.stderr
    how = "adbd-root" if uid == 0 else "shell"
    meta = capture_meta(
        run.stdout,
        transport={"kind": "adb", "serial": serial, "root_method": how},
        host_wallclock=wallclock if wallclock is not None else time.time(),
    )
    return Capture(meta, run.stdout)


def capture(
    scene: Mapping[str, Any],
    out: Path | None = None,
    *,
    serial: str = "emu-5554",
    variant: str = "modern",
    start_times: Mapping[int, int] | None = None,
    wallclock: float | None = None,
    uid: int = 0,
    collector_pid: int | None = None,
) -> Capture:
    """Build ``scene``, collect it (as root, or as ``uid`` of a user build: the shell user
    is 2000), and (with ``out``) write the capture file."""
    work = scratch_dir()
    try:
        root = build_root(scene, work / "root", variant, user_build=uid != 0)
        for pid, ticks in (start_times or {}).items():
            set_start_time(root, pid, ticks)
        cap = collect(
            root, serial=serial, wallclock=wallclock, uid=uid, collector_pid=collector_pid
        )
    finally:
        S.remove_tree(work)
    if out is not None:
        write_capture(cap, out, overwrite=True)
    return cap


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "rebuild":
        rebuild(Path(argv[1]), json.loads(Path(argv[2]).read_text()))
        return 0
    print("usage: python -m tests.leaks.phonescene rebuild ROOT SCENE.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
