"""Fake phone filesystems ("scenes") for the emulated phone and the collector tests.

A scene is a JSON file (``fixtures/phones/*.json``) that a human can read and compute figures
from by hand: processes with their fds, mappings and threads, the dma-buf buffers, packages and
properties. :func:`build_scene` turns one scene into the directory tree the collector reads
(``/proc``, ``/sys``, ``/dev/dma_heap``, ``/system/build.prop``, ``cmd``/``pm`` stand-ins), in
one of several kernel eras (:data:`VARIANTS`). The shell, toybox/busybox, ``getprop``,
``/dev/null`` and ``/data/local/tmp`` come from ``minroot.build_base_root``; call it on the same
directory (before or after).

Scene schema (``"schema": "dmaprof.scene/1"``); every key not marked optional is required::

    name, description (optional)        str
    uptime                              "8215.42 31024.77"  (/proc/uptime)
    boot_id, uuid                       /proc/sys/kernel/random/{boot_id,uuid}
    props                               {key: value}        -> /system/build.prop
    packages                            [{name, uid}]       -> `cmd package list packages -U`
        debuggable, system (optional)   bools: run-as works for it; not listed by `-3`
    heaps                               [name]              -> /dev/dma_heap/<name>
    total_pools_kb                      int                 -> /sys/kernel/dma_heap/total_pools_kb
    meminfo_kb                          {field: kB}         -> /proc/meminfo
    buffers: [{
        inode                           int, unique
        size                            bytes
        exporter                        exp_name (a heap name, or e.g. "drm" for a GPU export)
        name                            "" = unnamed (fd link `/dmabuf:`)
        attached (optional)             [device name]       (debugfs bufinfo)
        kernel_refs (optional)          struct-file refs held by the kernel (importers, binder
                                        transactions in flight); default 1 for a buffer no
                                        process holds, else 0. Only feeds `count`.
        allocated_by, usage (optional)  a gralloc buffer: pid whose GraphicBufferAllocator
                                        made it, usage bits ("0x1b00"); feeds the dumpsys
                                        stand-in's gralloc lists
    }]
    gpu_private_kb (optional)           GPU private memory of the dumpsys meminfo GPU line
    processes: [{
        pid, ppid, uid, gid             int
        name                            process name (display)
        comm (optional)                 /proc/<pid>/comm, default: name cut to 15 bytes (the
                                        last 15 for zygote children, like Android's setArgV0)
        cmdline                         [argv...]; [] for a kernel thread
        zygote (optional)               true: cmdline is argv[0] NUL-padded to zygote_cmdline_len
        kernel_thread (optional)        true: no maps lines, no fds
        cgroup                          [line], e.g. ["0::/uid_10201/pid_3100"]
        fds: [{fd, buffer: inode} | {fd, target: "socket:[1234]"}]
        maps: [{buffer: inode, start: "7a1c200000", end: "7a1c4f9000"}]   (dma-buf VMAs)
        threads (optional): [{tid, name, fds (optional)}]
                                        a thread with "fds" has its own fd table
                                        (unshare(CLONE_FILES)); others share the leader's
    }]
    zygote_cmdline_len (optional)       default 96
    variant, cgroup_tree (optional)     the generation phones' kernel (a name in
                                        :data:`GENERATION_VARIANTS`) and the hierarchy of
                                        their process tree (``cpuacct`` or ``v2``), read by
                                        tests/e2e/generation_truth.py
    processes[].service (optional)      true: a graphics/media service by docs/attribution.md
                                        §6 (set by hand; the truth calculation's `client` charge)
    binder (optional): {                binder debug files, the kernel's 6.1 print format
        root (optional)                 "debugfs" (/sys/kernel/debug/binder, root only on a
                                        user build, default) or "binderfs"
                                        (/dev/binderfs/binder_logs)
        page_size_kb (optional)         KernelPageSize of /proc/self/smaps, default 4
        procs: [{pid, context ("binder" | "hwbinder" | "vndbinder"),
                 buffers: [{id, offset, data, offsets, extra (optional), active (optional)}],
                 pages: [active, lru, free], high_watermark, free_async_space}]
    }                                   -> proc/<pid> (print_binder_proc) and stats
                                        (print_binder_proc_stats); see :func:`binder_files`

Figures (dmabuf_dump definitions): a process holds a buffer if it (any of its fd tables) has an
fd to it or maps it; rss = sum of the sizes of the distinct buffers it holds; pss = sum of
size // number of holding processes. :func:`holder_figures` computes them (the hand-computed
``*.expected.json`` files are checked against it in the tests).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENE_SCHEMA = "dmaprof.scene/1"
SHELL_UID = 2000
ZYGOTE_CMDLINE_LEN = 96
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "phones"

Scene = dict[str, Any]


@dataclass(frozen=True)
class KernelVariant:
    """What one kernel era shows of the same scene."""

    name: str
    release: str
    link_style: str  # "dmabuf": fd link `/dmabuf:NAME` (5.3+); "anon_inode": `anon_inode:dmabuf`
    fdinfo_dmabuf: bool  # size/count/exp_name/name lines in fdinfo (5.3+)
    fdinfo_ino: bool  # generic `ino:` line in fdinfo (5.14+)
    sysfs_stats: bool  # /sys/kernel/dmabuf/buffers (5.13 .. 6.18, ACK 5.10+)
    bpf_iter: bool  # /sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf (6.16+ Android)
    debugfs: bool  # /sys/kernel/debug/dma_buf/bufinfo present (root only)
    procfs_dmabuf: bool  # /proc/<pid>/dmabuf_rss, dmabuf_pss (ACK, 2025)
    dma_heap: bool  # /dev/dma_heap (5.6+) and /sys/kernel/dma_heap/total_pools_kb (ACK)
    mnt_id: int  # mnt_id of the dmabuf pseudo-fs in fdinfo
    dev: str  # device column of dma-buf VMAs in maps
    anon_inode: int = 0  # the one inode every dma-buf shares before 5.3
    # dma-buf fds resolve to files `/dmabuf:NAME` of the buffer's size, so `stat -L` of the fd
    # gives inode and size as on 5.3-5.13 (the buffers then carry those files' inode numbers:
    # see :func:`stat_backed_scene`)
    fdstat_files: bool = False
    bufinfo_layout: str = "6.x"  # "6.x" (name header, `<none>`) or "5.3" (5.3-5.19 layout)
    ion: bool = False  # /dev/ion; ACK android11-5.4's /sys/kernel/ion/total_{heaps,pools}_kb


VARIANTS: dict[str, KernelVariant] = {
    v.name: v
    for v in (
        KernelVariant(
            "modern",
            "5.15.137-android14-11-g8a1b2c3d4e5f",
            "dmabuf",
            True,
            True,
            True,
            False,
            False,
            False,
            True,
            12,
            "00:0b",
        ),
        KernelVariant(
            "no_ino",
            "5.10.43",
            "dmabuf",
            True,
            False,
            False,
            False,
            False,
            False,
            True,
            11,
            "00:0a",
        ),
        KernelVariant(
            "anon_inode",
            "4.9.337-g1f2e3d4c5b6a",
            "anon_inode",
            False,
            False,
            False,
            False,
            False,
            False,
            False,
            13,
            "00:0d",
            anon_inode=7352,
        ),
        KernelVariant(
            "bpf",
            "6.18.2-android17-0-g0f1e2d3c4b5a",
            "dmabuf",
            True,
            True,
            False,
            True,
            False,
            True,
            True,
            12,
            "00:0b",
        ),
        KernelVariant(
            "debugfs",
            "6.1.99-android14-11-g7e6d5c4b3a29",
            "dmabuf",
            True,
            True,
            True,
            False,
            True,
            False,
            True,
            12,
            "00:0b",
        ),
    )
}


#: One kernel per Android generation, as the generation phones (fixtures/phones/android*.json,
#: their ``variant`` key) need them: Android 9 on 4.14 (ACK backport of the 5.3 dma-buf inode
#: and name patches: `/dmabuf:` links, bufinfo with `ino`, but no dma-buf fdinfo lines; ION),
#: Android 11 on 5.4 (fdinfo without `ino:`, debugfs bufinfo, no sysfs stats; ION with its ACK
#: sysfs totals), Android 13 on 5.15 (sysfs per-buffer stats, `ino:` in fdinfo, dma-buf heaps),
#: Android 16 on android15-6.6 (the BPF iterator instead of sysfs stats).
GENERATION_VARIANTS: dict[str, KernelVariant] = {
    v.name: v
    for v in (
        KernelVariant(
            "android9-4.14",
            "4.14.180-perf-g6c3e1a2b9d47",
            "dmabuf",
            False,
            False,
            False,
            False,
            True,
            False,
            False,
            10,
            "00:0a",
            fdstat_files=True,
            bufinfo_layout="5.3",
            ion=True,
        ),
        KernelVariant(
            "android11-5.4",
            "5.4.86-qgki-g0f9c8e7d6a51",
            "dmabuf",
            True,
            False,
            False,
            False,
            True,
            False,
            False,
            11,
            "00:0a",
            fdstat_files=True,
            bufinfo_layout="5.3",
            ion=True,
        ),
        KernelVariant(
            "android13-5.15",
            "5.15.74-android13-8-00012-g2b3c4d5e6f70",
            "dmabuf",
            True,
            True,
            True,
            False,
            False,
            False,
            True,
            12,
            "00:0b",
        ),
        KernelVariant(
            "android16-6.6",
            "6.6.66-android15-8-gb1c2d3e4f5a6-ab12876543",
            "dmabuf",
            True,
            True,
            False,
            True,
            False,
            False,
            True,
            12,
            "00:0b",
        ),
    )
}


def kernel_variant(variant: str) -> KernelVariant:
    """A variant of :data:`VARIANTS` or :data:`GENERATION_VARIANTS` by name."""
    kv = VARIANTS.get(variant) or GENERATION_VARIANTS.get(variant)
    if kv is None:
        known = ", ".join([*VARIANTS, *GENERATION_VARIANTS])
        raise ValueError(f"unknown variant {variant!r}; known: {known}")
    return kv


# ---------------------------------------------------------------------------- loading


def load_scene(path: Path | str) -> Scene:
    """Read and validate a scene JSON file."""
    scene: Scene = json.loads(Path(path).read_text())
    validate_scene(scene)
    return scene


def validate_scene(scene: Mapping[str, Any]) -> None:
    """Raise ValueError when the scene is inconsistent (unknown buffer, duplicate pid...)."""
    if scene.get("schema") != SCENE_SCHEMA:
        raise ValueError(f"scene schema is {scene.get('schema')!r}, expected {SCENE_SCHEMA!r}")
    inodes = [int(b["inode"]) for b in scene["buffers"]]
    if len(set(inodes)) != len(inodes):
        raise ValueError("duplicate buffer inode")
    known = set(inodes)
    ids: set[int] = set()
    for p in scene["processes"]:
        pid = int(p["pid"])
        for i in [pid, *(int(t["tid"]) for t in p.get("threads", []))]:
            if i in ids:
                raise ValueError(f"duplicate pid/tid {i}")
            ids.add(i)
        for table in [p.get("fds", []), *(t["fds"] for t in p.get("threads", []) if "fds" in t)]:
            nums = [int(f["fd"]) for f in table]
            if len(set(nums)) != len(nums):
                raise ValueError(f"pid {pid}: duplicate fd number")
            for f in table:
                if ("buffer" in f) == ("target" in f):
                    raise ValueError(f"pid {pid} fd {f['fd']}: need exactly one of buffer/target")
                if "buffer" in f and int(f["buffer"]) not in known:
                    raise ValueError(f"pid {pid} fd {f['fd']}: unknown buffer {f['buffer']}")
        for m in p.get("maps", []):
            if int(m["buffer"]) not in known:
                raise ValueError(f"pid {pid}: map of unknown buffer {m['buffer']}")
            if int(m["start"], 16) >= int(m["end"], 16):
                raise ValueError(f"pid {pid}: map {m['start']}-{m['end']} is empty")


def fd_tables(proc: Mapping[str, Any]) -> list[list[Mapping[str, Any]]]:
    """The fd tables of a process: the leader's, then each own-table thread's."""
    return [
        list(proc.get("fds", [])),
        *(list(t["fds"]) for t in proc.get("threads", []) if "fds" in t),
    ]


def held_buffers(proc: Mapping[str, Any], *, include_task_tables: bool = True) -> set[int]:
    """Inodes a process holds through an fd (any of its fd tables) or a mapping."""
    tables = fd_tables(proc) if include_task_tables else [list(proc.get("fds", []))]
    held = {int(f["buffer"]) for table in tables for f in table if "buffer" in f}
    held |= {int(m["buffer"]) for m in proc.get("maps", [])}
    return held


def holder_figures(
    scene: Mapping[str, Any], *, include_task_tables: bool = True
) -> dict[int, tuple[int, int]]:
    """pid -> (rss, pss) in bytes, dmabuf_dump's definitions (pss uses integer division)."""
    sizes = {int(b["inode"]): int(b["size"]) for b in scene["buffers"]}
    held = {
        int(p["pid"]): held_buffers(p, include_task_tables=include_task_tables)
        for p in scene["processes"]
    }
    nprocs: dict[int, int] = {}
    for inodes in held.values():
        for ino in inodes:
            nprocs[ino] = nprocs.get(ino, 0) + 1
    return {
        pid: (sum(sizes[i] for i in inodes), sum(sizes[i] // nprocs[i] for i in inodes))
        for pid, inodes in held.items()
    }


def refcounts(scene: Mapping[str, Any]) -> dict[int, int]:
    """fdinfo/bufinfo `count`: fds + VMAs + kernel refs (the struct-file refcount)."""
    counts = {int(b["inode"]): 0 for b in scene["buffers"]}
    for p in scene["processes"]:
        for table in fd_tables(p):
            for f in table:
                if "buffer" in f:
                    counts[int(f["buffer"])] += 1
        for m in p.get("maps", []):
            counts[int(m["buffer"])] += 1
    for b in scene["buffers"]:
        ino = int(b["inode"])
        counts[ino] += int(b.get("kernel_refs", 1 if counts[ino] == 0 else 0))
    return counts


# ---------------------------------------------------------------------------- building


def build_scene(
    scene: Mapping[str, Any] | Path | str,
    dest: Path,
    variant: str = "modern",
    *,
    user_build: bool = True,
    share_task_dirs: bool = False,
    dumpsys: bool = False,
    run_as: bool = False,
) -> None:
    """Write the fake phone filesystem of ``scene`` under ``dest`` as ``variant`` shows it.

    ``user_build``: per-process fd, fdinfo and maps of processes not owned by the shell uid
    (2000) are root-owned 0500/0400 and debugfs is 0700, so uid 2000 gets EACCES as on a
    user build (needs root to chown; without root the modes are left open).
    ``share_task_dirs``: threads that share the leader's fd table get ``task/<tid>/fd`` and
    ``fdinfo`` as symlinks to the leader's directories instead of copies (for big scenes).
    ``dumpsys``: a ``/system/bin/dumpsys`` stand-in answering ``meminfo``, ``SurfaceFlinger``
    and ``gfxinfo PACKAGE`` from the scene (:func:`dumpsys_output`).
    ``run_as``: ``run-as`` as on a phone (:func:`build_run_as`): ``/data/system/packages.list``,
    the apps' data directories, the privileged helper, and the ``/proc`` entries of a
    debuggable package's processes owned by its uid (a debuggable app is dumpable), so that
    only ``run-as`` reveals them. Needs root and gcc.
    """
    if not isinstance(scene, Mapping):
        scene = load_scene(scene)
    else:
        validate_scene(scene)
    kv = kernel_variant(variant)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)  # the phone's / (a 0700 temp dir would lock the shell user out)
    if kv.fdstat_files:
        scene = stat_backed_scene(scene, dest)
    restrict = user_build and os.geteuid() == 0
    buffers = {int(b["inode"]): b for b in scene["buffers"]}
    counts = refcounts(scene)
    figures = holder_figures(scene)

    dumpable = debuggable_uids(scene) if run_as else frozenset()
    proc = dest / "proc"
    proc.mkdir(exist_ok=True)
    for p in scene["processes"]:
        _build_process(
            proc, p, buffers, counts, figures, scene, kv, restrict, share_task_dirs, dumpable
        )
    _build_globals(dest, scene, kv)
    _build_buffer_inventories(dest, scene, counts, kv, restrict)
    if "binder" in scene:
        _build_binder(dest, scene["binder"])
    _build_android(dest, scene)
    if dumpsys:
        _build_dumpsys(dest, scene, kv)
    if run_as:
        build_run_as(dest, scene)


def backing_file(dest: Path, name: str) -> Path:
    """The file a ``/dmabuf:NAME`` fd link resolves to on a ``fdstat_files`` variant."""
    return Path(dest) / f"dmabuf:{name}"


def stat_backed_scene(scene: Mapping[str, Any], dest: Path) -> Scene:
    """``scene`` with every buffer backed by a file ``dest/dmabuf:NAME`` of its size, and its
    inode renumbered to that file's inode number (so fd links, ``stat -L``, maps and bufinfo
    all agree, as on a 5.3-5.13 kernel). Buffer names must be unique (one unnamed at most)."""
    names = [str(b["name"]) for b in scene["buffers"]]
    if len(set(names)) != len(names) or any("/" in n for n in names):
        raise ValueError("a stat-backed scene needs a distinct name without '/' per buffer")
    renumber: dict[int, int] = {}
    for b in scene["buffers"]:
        path = backing_file(dest, str(b["name"]))
        with path.open("wb") as f:
            f.truncate(int(b["size"]))  # sparse: st_size is the buffer size
        path.chmod(0o444)
        renumber[int(b["inode"])] = path.stat().st_ino
    out: Scene = json.loads(json.dumps(scene))
    for b in out["buffers"]:
        b["inode"] = renumber[int(b["inode"])]
    for p in out["processes"]:
        for table in [p.get("fds", []), *(t.get("fds", []) for t in p.get("threads", []))]:
            for f in table:
                if "buffer" in f:
                    f["buffer"] = renumber[int(f["buffer"])]
        for m in p.get("maps", []):
            m["buffer"] = renumber[int(m["buffer"])]
    validate_scene(out)
    return out


def _w(path: Path, data: str | bytes, mode: int = 0o444) -> None:
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    path.chmod(mode)


def _comm(p: Mapping[str, Any]) -> str:
    if "comm" in p:
        return str(p["comm"])
    name = str(p["name"])
    if p.get("kernel_thread"):
        return name[:15]
    if p.get("zygote"):
        return name[-15:]
    return Path(str(p["cmdline"][0])).name[:15] if p.get("cmdline") else name[:15]


def _link_target(
    f: Mapping[str, Any], buffers: Mapping[int, Mapping[str, Any]], kv: KernelVariant
) -> str:
    if "target" in f:
        return str(f["target"])
    if kv.link_style == "anon_inode":
        return "anon_inode:dmabuf"
    return "/dmabuf:" + str(buffers[int(f["buffer"])]["name"])


def _fdinfo(
    f: Mapping[str, Any],
    buffers: Mapping[int, Mapping[str, Any]],
    counts: Mapping[int, int],
    kv: KernelVariant,
) -> str:
    fd = int(f["fd"])
    flags = "0100000" if fd <= 2 else "02000002"
    if "buffer" not in f:
        mnt, ino = (26, 4) if str(f["target"]).startswith("/dev/") else (15, 40000 + 7 * fd)
        text = f"pos:\t0\nflags:\t{flags}\nmnt_id:\t{mnt}\n"
        return text + (f"ino:\t{ino}\n" if kv.fdinfo_ino else "")
    b = buffers[int(f["buffer"])]
    text = f"pos:\t0\nflags:\t02000002\nmnt_id:\t{kv.mnt_id}\n"
    if kv.fdinfo_ino:
        text += f"ino:\t{int(b['inode'])}\n"
    if kv.fdinfo_dmabuf:
        text += f"size:\t{int(b['size'])}\ncount:\t{counts[int(b['inode'])]}\n"
        text += f"exp_name:\t{b['exporter']}\n"
        if b["name"]:
            text += f"name:\t{b['name']}\n"
    return text


def _maps_line(start: str, end: str, perms: str, offset: int, dev: str, ino: int, path: str) -> str:
    head = f"{start}-{end} {perms} {offset:08x} {dev} {ino}"
    return (head.ljust(72) + " " + path).rstrip() + "\n"


def _maps(p: Mapping[str, Any], buffers: Mapping[int, Mapping[str, Any]], kv: KernelVariant) -> str:
    if p.get("kernel_thread"):
        return ""
    exe = (
        str(p["cmdline"][0])
        if p.get("cmdline") and not p.get("zygote")
        else "/system/bin/app_process64"
    )
    pid = int(p["pid"])
    rows: list[tuple[int, str]] = [
        (
            0x5A6F4E2000 + pid * 0x10000,
            _maps_line(
                f"{0x5A6F4E2000 + pid * 0x10000:x}",
                f"{0x5A6F4E9000 + pid * 0x10000:x}",
                "r--p",
                0,
                "fd:03",
                1599,
                exe,
            ),
        ),
        (
            0x6F56F04000,
            _maps_line(
                "6f56f04000",
                "6f56f05000",
                "r--p",
                0x2000,
                "fd:03",
                3467,
                "/system/lib64/libdmabufheap.so",
            ),
        ),
        (
            0x7B8A000000,
            _maps_line("7b8a000000", "7b8a200000", "rw-p", 0, "00:00", 0, "[anon:libc_malloc]"),
        ),
        (0x7FC16F4000, _maps_line("7fc16f4000", "7fc1715000", "rw-p", 0, "00:00", 0, "[stack]")),
    ]
    for m in p.get("maps", []):
        b = buffers[int(m["buffer"])]
        if kv.link_style == "anon_inode":
            ino, path = kv.anon_inode, "anon_inode:dmabuf"
        else:
            ino, path = int(b["inode"]), "/dmabuf:" + str(b["name"])
        rows.append(
            (int(m["start"], 16), _maps_line(m["start"], m["end"], "rw-s", 0, kv.dev, ino, path))
        )
    return "".join(line for _, line in sorted(rows))


def _status(
    name: str, pid: int, tgid: int, ppid: int, uid: int, gid: int, nthreads: int, kthread: bool
) -> str:
    lines = [
        f"Name:\t{name}",
        "Umask:\t0077" if not kthread else "Umask:\t0000",
        "State:\tS (sleeping)",
        f"Tgid:\t{tgid}",
        "Ngid:\t0",
        f"Pid:\t{pid}",
        f"PPid:\t{ppid}",
        "TracerPid:\t0",
        f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}",
        f"Gid:\t{gid}\t{gid}\t{gid}\t{gid}",
        "FDSize:\t128",
        "Groups:\t" + ("" if kthread else "1065 3009 "),
        f"NStgid:\t{tgid}",
        f"NSpid:\t{pid}",
        f"NSpgid:\t{tgid}",
        f"NSsid:\t{tgid}",
    ]
    if not kthread:
        lines += [
            "VmPeak:\t 2391284 kB",
            "VmSize:\t 2338580 kB",
            "VmRSS:\t   64512 kB",
            "RssAnon:\t   20480 kB",
            "RssFile:\t   43008 kB",
            "RssShmem:\t    1024 kB",
        ]
    lines += [
        f"Threads:\t{nthreads}",
        "voluntary_ctxt_switches:\t1519",
        "nonvoluntary_ctxt_switches:\t77",
    ]
    return "\n".join(lines) + "\n"


def _stat(pid: int, comm: str, ppid: int, nthreads: int) -> str:
    fields = [
        str(pid),
        f"({comm})",
        "S",
        str(ppid),
        str(pid),
        "0",
        "0",
        "-1",
        "4194624",
        "1520",
        "0",
        "3",
        "0",
        "31",
        "12",
        "0",
        "0",
        "20",
        "0",
        str(nthreads),
        "0",
        "812",
        "2394611712",
        "16128",
        "18446744073709551615",
    ] + ["0"] * 27
    return " ".join(fields) + "\n"


def _cmdline(p: Mapping[str, Any], zlen: int) -> bytes:
    argv = [str(a) for a in p.get("cmdline", [])]
    if not argv:
        return b""
    if p.get("zygote"):
        return argv[0].encode().ljust(zlen, b"\0")
    return b"".join(a.encode() + b"\0" for a in argv)


def _fd_dir(
    d: Path,
    di: Path,
    fds: Iterable[Mapping[str, Any]],
    buffers: Mapping[int, Mapping[str, Any]],
    counts: Mapping[int, int],
    kv: KernelVariant,
) -> None:
    d.mkdir()
    di.mkdir()
    for f in fds:
        os.symlink(_link_target(f, buffers, kv), d / str(int(f["fd"])))
        _w(di / str(int(f["fd"])), _fdinfo(f, buffers, counts, kv), 0o400)


def _build_process(
    proc: Path,
    p: Mapping[str, Any],
    buffers: Mapping[int, Mapping[str, Any]],
    counts: Mapping[int, int],
    figures: Mapping[int, tuple[int, int]],
    scene: Mapping[str, Any],
    kv: KernelVariant,
    restrict: bool,
    share_task_dirs: bool,
    dumpable: frozenset[int] = frozenset(),
) -> None:
    pid, ppid, uid, gid = int(p["pid"]), int(p["ppid"]), int(p["uid"]), int(p["gid"])
    kthread = bool(p.get("kernel_thread"))
    comm = _comm(p)
    threads = list(p.get("threads", []))
    nthreads = 1 + len(threads)
    pd = proc / str(pid)
    pd.mkdir()
    _w(pd / "status", _status(comm, pid, pid, ppid, uid, gid, nthreads, kthread))
    _w(pd / "cmdline", _cmdline(p, int(scene.get("zygote_cmdline_len", ZYGOTE_CMDLINE_LEN))))
    _w(pd / "comm", comm + "\n", 0o644)
    _w(pd / "cgroup", "".join(f"{line}\n" for line in p["cgroup"]))
    _w(pd / "stat", _stat(pid, comm, ppid, nthreads))
    _w(pd / "maps", _maps(p, buffers, kv))
    if kv.procfs_dmabuf:
        rss, pss = figures[pid]
        _w(pd / "dmabuf_rss", f"{rss}\n")
        _w(pd / "dmabuf_pss", f"{pss}\n")
    fds = [] if kthread else list(p.get("fds", []))
    _fd_dir(pd / "fd", pd / "fdinfo", fds, buffers, counts, kv)
    task = pd / "task"
    task.mkdir()
    tasks: list[tuple[int, str, list[Mapping[str, Any]] | None]] = [(pid, comm, None)]
    tasks += [(int(t["tid"]), str(t["name"])[:15], t.get("fds")) for t in threads]
    owned: list[Path] = [pd / "fd", pd / "fdinfo"]
    for tid, tname, own in tasks:
        td = task / str(tid)
        td.mkdir()
        _w(td / "status", _status(tname, tid, pid, ppid, uid, gid, nthreads, kthread))
        _w(td / "comm", tname + "\n", 0o644)
        _w(td / "stat", _stat(tid, tname, ppid, nthreads))
        if own is None and share_task_dirs:
            os.symlink("../../fd", td / "fd")
            os.symlink("../../fdinfo", td / "fdinfo")
        else:
            _fd_dir(td / "fd", td / "fdinfo", fds if own is None else own, buffers, counts, kv)
            owned += [td / "fd", td / "fdinfo"]
        td.chmod(0o555)
    task.chmod(0o555)
    if restrict:
        # the kernel makes /proc/<pid>/fd etc. the task's own when it is dumpable (the shell
        # user's processes, a debuggable app's), root's otherwise
        own = uid == SHELL_UID or uid in dumpable
        owner = uid if own else 0
        ogid = gid if own else 0
        for d in owned:
            for child in d.iterdir():
                os.lchown(child, owner, ogid)
            os.chown(d, owner, ogid)
            d.chmod(0o500)
        os.chown(pd / "maps", owner, ogid)
        (pd / "maps").chmod(0o444 if owner == SHELL_UID else 0o400)
    else:
        for d in owned:
            d.chmod(0o555)
            if d.name == "fdinfo":
                for child in d.iterdir():
                    child.chmod(0o444)
    pd.chmod(0o555)


def _meminfo(values: Mapping[str, int]) -> str:
    return "".join(f"{k + ':':<15}{int(v):>9} kB\n" for k, v in values.items())


def _build_globals(dest: Path, scene: Mapping[str, Any], kv: KernelVariant) -> None:
    proc = dest / "proc"
    _w(
        proc / "version",
        f"Linux version {kv.release} (android-build@build-host) "
        "(Android (10087095, +pgo, +bolt, +lto, -mlgo, based on r487747c) clang version 17.0.2) "
        "#1 SMP PREEMPT Mon Jan 15 12:00:00 UTC 2024\n",
    )
    _w(proc / "uptime", str(scene["uptime"]).strip() + "\n")
    _w(proc / "meminfo", _meminfo(scene["meminfo_kb"]))
    rnd = proc / "sys" / "kernel" / "random"
    rnd.mkdir(parents=True, exist_ok=True)
    _w(rnd / "boot_id", str(scene["boot_id"]) + "\n")
    _w(rnd / "uuid", str(scene["uuid"]) + "\n")


def _mkdev(path: Path) -> None:
    try:
        os.mknod(path, 0o444 | stat.S_IFCHR, os.makedev(250, 0))
    except OSError:  # not root: an empty file has the same name, which is all the collector reads
        _w(path, b"")


def _build_buffer_inventories(
    dest: Path,
    scene: Mapping[str, Any],
    counts: Mapping[int, int],
    kv: KernelVariant,
    restrict: bool,
) -> None:
    buffers = sorted(scene["buffers"], key=lambda b: int(b["inode"]))
    kernel = dest / "sys" / "kernel"
    kernel.mkdir(parents=True, exist_ok=True)
    if kv.sysfs_stats:
        root = kernel / "dmabuf" / "buffers"
        root.mkdir(parents=True)
        for b in buffers:
            d = root / str(int(b["inode"]))
            d.mkdir()
            _w(d / "exporter_name", f"{b['exporter']}\n")
            _w(d / "size", f"{int(b['size'])}\n")
    if kv.bpf_iter:
        d = dest / "sys" / "fs" / "bpf" / "dmabuf"
        d.mkdir(parents=True)
        # Android's dmabufIter.c: 4 lines per buffer (inode, size, name with newlines
        # replaced by spaces, exporter)
        text = "".join(
            f"{int(b['inode'])}\n{int(b['size'])}\n"
            f"{str(b['name']).replace(chr(10), ' ')}\n{b['exporter']}\n"
            for b in buffers
        )
        _w(d / "prog_dmabufIter_iter_dmabuf", text, 0o400 if restrict else 0o444)
    debug = kernel / "debug"
    debug.mkdir(exist_ok=True)
    if kv.debugfs:
        (debug / "dma_buf").mkdir()
        _w(
            debug / "dma_buf" / "bufinfo",
            bufinfo(scene, counts, layout=kv.bufinfo_layout),
            0o444,
        )
    debug.chmod(0o700 if restrict else 0o755)
    if kv.dma_heap:
        heaps = dest / "dev" / "dma_heap"
        heaps.mkdir(parents=True, exist_ok=True)
        for h in scene["heaps"]:
            _mkdev(heaps / str(h))
        (kernel / "dma_heap").mkdir(exist_ok=True)
        _w(kernel / "dma_heap" / "total_pools_kb", f"{int(scene['total_pools_kb'])}\n")
    if kv.ion:
        (dest / "dev").mkdir(exist_ok=True)
        _mkdev(dest / "dev" / "ion")
        if kv.debugfs:
            (debug / "ion" / "heaps").mkdir(parents=True, exist_ok=True)
            _w(debug / "ion" / "heaps" / "system", ion_heap(scene), 0o444)
        if kv.release.startswith("5.4"):  # ACK android11-5.4 only
            ion_kb = sum(int(b["size"]) for b in buffers if b["exporter"] == "ion") // 1024
            (kernel / "ion").mkdir(exist_ok=True)
            _w(kernel / "ion" / "total_heaps_kb", f"{ion_kb}\n")
            _w(kernel / "ion" / "total_pools_kb", f"{int(scene['total_pools_kb'])}\n")


def bufinfo(
    scene: Mapping[str, Any], counts: Mapping[int, int] | None = None, *, layout: str = "6.x"
) -> str:
    """debugfs ``dma_buf/bufinfo`` in the exact 6.x layout (kernel-interfaces.md §14.4), or
    with ``layout="5.3"`` the 5.3-5.19 one: no ``name`` header, an unnamed buffer's name
    printed as an empty string (kernel-interfaces.md §4)."""
    counts = refcounts(scene) if counts is None else counts
    old_layout = layout == "5.3"
    out = [
        "\nDma-buf Objects:\n",
        "size    \tflags   \tmode    \tcount   \texp_name\tino     \n"
        if old_layout
        else "size    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n",
    ]
    total = 0
    newest_first = sorted(scene["buffers"], key=lambda b: -int(b["inode"]))
    for b in newest_first:
        ino, size = int(b["inode"]), int(b["size"])
        out.append(
            f"{size:08d}\t00000002\t00080007\t{counts[ino]:08d}\t{b['exporter']}\t{ino:08d}\t"
            f"{b['name'] or ('' if old_layout else '<none>')}\n"
        )
        out.append("\tAttached Devices:\n")
        out.extend(f"\t{dev}\n" for dev in b.get("attached", []))
        out.append(f"Total {len(b.get('attached', []))} devices attached\n\n")
        total += size
    out.append(f"\nTotal {len(newest_first)} objects, {total} bytes\n")
    return "".join(out)


def ion_heap(scene: Mapping[str, Any]) -> str:
    """debugfs ``ion/heaps/system`` as ``ion_debug_heap_show`` prints it (kernel-interfaces.md
    §8) for the scene's ``ion`` buffers: one client row per process holding some by fd (its
    comm, pid and their total size), then the totals; buffers no fd holds count as orphaned."""
    ion = {int(b["inode"]): int(b["size"]) for b in scene["buffers"] if b["exporter"] == "ion"}
    sep = "-" * 52 + "\n"
    out = [f"{'client':>16} {'pid':>16} {'size':>16}\n", sep]
    by_fd: set[int] = set()
    for p in sorted(scene["processes"], key=lambda p: int(p["pid"])):
        mine = {
            int(f["buffer"]) for t in fd_tables(p) for f in t if int(f.get("buffer", -1)) in ion
        }
        by_fd |= mine
        if mine:
            out.append(f"{_comm(p):>16} {int(p['pid']):>16} {sum(ion[i] for i in mine):>16}\n")
    orphaned = sum(size for i, size in ion.items() if i not in by_fd)
    out += [sep, "orphaned allocations (info is from last known client):\n", sep]
    out.append(f"{'total orphaned':>16} {orphaned:>16}\n")
    out.append(f"{'total ':>16} {sum(ion.values()):>16}\n")
    out.append(f"{'deferred free':>16} {0:>16}\n")
    out.append(sep)
    return "".join(out)


def binder_files(binder: Mapping[str, Any]) -> dict[str, str]:
    """``proc/<pid>`` and ``stats`` of the binder debug directory, in the exact text of
    Linux 6.1's ``print_binder_proc`` (via ``proc_show``) and ``print_binder_proc_stats``:
    threads, nodes and refs lines included (the collector must drop them)."""
    files: dict[str, list[str]] = {}
    stats = [
        "binder stats:\n",
        "BC_TRANSACTION: 48213\n",
        "BC_REPLY: 30411\n",
        "BR_TRANSACTION: 48170\n",
        "proc: active 61 total 61\n",
    ]
    for entry in binder["procs"]:
        pid, ctx = int(entry["pid"]), str(entry["context"])
        out = files.setdefault(str(pid), ["binder proc state:\n"])
        out += [
            f"proc {pid}\n",
            f"context {ctx}\n",
            f"  thread {pid}: l 00 need_return 0 tr 0\n",
            f"  thread {pid + 1}: l 12 need_return 0 tr 0\n",
            f"  node {pid * 10 + 1}: u0000007b3e5c8a40 c0000007b3e5a1f90 pri 0:139 hs 1 hw 1 "
            "ls 0 lw 0 is 1 iw 1 tr 1 proc 1200\n",
            f"  ref {pid * 10 + 2}: desc 0 node 1 s 1 w 1 d 0000000000000000\n",
        ]
        for b in entry.get("buffers", []):
            out.append(
                f"  buffer {int(b['id'])}: {int(b['offset']):x} size {int(b['data'])}:"
                f"{int(b['offsets'])}:{int(b.get('extra', 0))} "
                f"{'active' if b.get('active') else 'delivered'}\n"
            )
        active, lru, free = (int(x) for x in entry["pages"])
        stats += [
            f"proc {pid}\n",
            f"context {ctx}\n",
            "  threads: 2\n",
            "  requested threads: 0+1/15\n",
            "  ready threads 1\n",
            f"  free async space {int(entry['free_async_space'])}\n",
            "  nodes: 1\n",
            "  refs: 1 s 1 w 1\n",
            f"  buffers: {len(entry.get('buffers', []))}\n",
            f"  pages: {active}:{lru}:{free}\n",
            f"  pages high watermark: {int(entry['high_watermark'])}\n",
            "  pending transactions: 0\n",
            "  BC_TRANSACTION: 12\n",
            "  BR_REPLY: 12\n",
        ]
    text = {f"proc/{pid}": "".join(lines) for pid, lines in files.items()}
    text["stats"] = "".join(stats)
    return text


def _build_binder(dest: Path, binder: Mapping[str, Any]) -> None:
    if binder.get("root", "debugfs") == "binderfs":
        root = dest / "dev" / "binderfs" / "binder_logs"
        root.mkdir(parents=True, exist_ok=True)
    else:
        debug = dest / "sys" / "kernel" / "debug"
        debug.mkdir(parents=True, exist_ok=True)
        root = debug / "binder"
        root.mkdir(exist_ok=True)
    (root / "proc").mkdir(exist_ok=True)
    for rel, text in binder_files(binder).items():
        _w(root / rel, text, 0o444)
    # grep's own smaps (the collector reads its KernelPageSize lines): the fake /proc has no
    # `self`, so a plain file stands in for it
    me = dest / "proc" / "self"
    me.mkdir(parents=True, exist_ok=True)
    kb = int(binder.get("page_size_kb", 4))
    _w(
        me / "smaps",
        "5a5a5a000-5a5a7c000 r--p 00000000 fd:00 1234   /system/bin/toybox\n"
        f"Size:                136 kB\nKernelPageSize:        {kb} kB\nMMUPageSize:        "
        f"{kb} kB\n",
    )


def _build_android(dest: Path, scene: Mapping[str, Any]) -> None:
    system = dest / "system"
    (system / "bin").mkdir(parents=True, exist_ok=True)
    _w(
        system / "build.prop",
        "# fake phone (tests/emuphone/scene.py)\n"
        + "".join(f"{k}={v}\n" for k, v in scene["props"].items()),
        0o644,
    )
    listing = "".join(
        f"echo 'package:{p['name']} uid:{int(p['uid'])}'\n" for p in scene["packages"]
    )
    # `-3`: third-party packages (not flagged "system" in the scene; app uids only)
    third = "".join(
        f"echo 'package:{p['name']}'\n"
        for p in scene["packages"]
        if int(p["uid"]) >= 10000 and not p.get("system")
    )
    for tool, args in (("cmd", "package list packages -U"), ("pm", "list packages -U")):
        other = args.replace("-U", "-3")
        script = (
            "#!/system/bin/sh\n"
            f"# stand-in for Android's `{tool} {args}` and `{tool} {other}` (dmaprof fake "
            "phone); builtins only\n"
            f'if [ "$*" = "{other}" ]; then\n' + third + "\texit 0\nfi\n"
            f'if [ "$*" != "{args}" ]; then\n'
            f"\techo \"{tool}: the fake phone only answers '{tool} {args}'\" >&2\n"
            "\texit 255\n"
            "fi\n" + listing
        )
        _w(system / "bin" / tool, script, 0o755)


# ---------------------------------------------------------------------------- user-build mode
# What a phone offers the shell user besides /proc: `dumpsys` (system totals, graphic buffer
# lists) and `run-as` (a debuggable app's own view). docs/user-build.md.

AID_PACKAGE_INFO = 1032
RUN_AS_C = Path(__file__).with_name("runas.c")
RUN_AS_CACHE = Path(tempfile.gettempdir()) / "dmaprof-emuphone-cache"


def debuggable_uids(scene: Mapping[str, Any]) -> frozenset[int]:
    """uids of the packages flagged ``"debuggable": true`` (apps only)."""
    return frozenset(
        int(p["uid"]) for p in scene["packages"] if p.get("debuggable") and int(p["uid"]) >= 10000
    )


def packages_list(scene: Mapping[str, Any]) -> str:
    """``/data/system/packages.list``: ``name uid debuggable data_dir seinfo gids
    profileable_from_shell version`` per package (what run-as and installd read)."""
    out = []
    for p in scene["packages"]:
        uid = int(p["uid"])
        if uid < 10000:
            continue
        seinfo = "platform:privapp" if p.get("system") else "default:targetSdkVersion=34"
        out.append(
            f"{p['name']} {uid} {1 if p.get('debuggable') else 0} /data/user/0/{p['name']} "
            f"{seinfo} 3003 0 1\n"
        )
    return "".join(out)


def run_as_helper() -> Path:
    """The compiled run-as helper (tests/emuphone/runas.c), built once per source."""
    import hashlib

    src = RUN_AS_C.read_bytes()
    key = hashlib.sha256(src).hexdigest()[:16]
    RUN_AS_CACHE.mkdir(mode=0o700, exist_ok=True)
    out = RUN_AS_CACHE / f"run-as-{key}"
    if not out.exists():
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            raise FileNotFoundError("the emulated phone's run-as needs gcc: apt-get install gcc")
        tmp = RUN_AS_CACHE / f".run-as-{key}.{os.getpid()}"
        subprocess.run(
            [gcc, "-O2", "-static", "-Wall", "-Wextra", "-s", "-o", str(tmp), str(RUN_AS_C)],
            check=True,
            capture_output=True,
        )
        tmp.replace(out)
    return out


def _set_run_as_privileges(path: Path) -> str:
    """root:shell 0750 with the file capabilities CAP_SETUID+CAP_SETGID (as Android ships
    run-as); setuid root where the filesystem takes no capability xattr. Returns which."""
    import struct

    os.chown(path, 0, SHELL_UID)
    path.chmod(0o750)
    # struct vfs_cap_data, revision 2, effective: permitted = CAP_SETGID (6) | CAP_SETUID (7)
    caps = struct.pack("<IIIII", 0x02000001, (1 << 6) | (1 << 7), 0, 0, 0)
    try:
        os.setxattr(path, "security.capability", caps)
        return "capabilities"
    except OSError:
        path.chmod(0o4750)
        return "setuid"


def build_run_as(dest: Path, scene: Mapping[str, Any]) -> None:
    """``run-as`` on the fake phone: packages.list (root:package_info 0640), a data directory
    per app (/data/user/0/<pkg>, owned by the app, 0700; /data/data links there), and the
    privileged helper as /system/bin/run-as. Needs root (chown, capabilities)."""
    if os.geteuid() != 0:
        raise PermissionError("run-as on the emulated phone needs root (chown, capabilities)")
    system = dest / "data" / "system"
    system.mkdir(parents=True, exist_ok=True)
    system.chmod(0o771)
    plist = system / "packages.list"
    plist.write_text(packages_list(scene))
    os.chown(plist, 0, AID_PACKAGE_INFO)
    plist.chmod(0o640)
    user0 = dest / "data" / "user" / "0"
    user0.mkdir(parents=True, exist_ok=True)
    (dest / "data" / "user").chmod(0o711)
    user0.chmod(0o771)
    if not (dest / "data" / "data").is_symlink():
        os.symlink("/data/user/0", dest / "data" / "data")
    for p in scene["packages"]:
        uid = int(p["uid"])
        if uid < 10000:
            continue
        home = user0 / str(p["name"])
        home.mkdir(exist_ok=True)
        os.chown(home, uid, uid)
        home.chmod(0o700)
    target = dest / "system" / "bin" / "run-as"
    if target.exists() or target.is_symlink():
        target.unlink()
    shutil.copyfile(run_as_helper(), target)
    _set_run_as_privileges(target)


def _kb(value: int) -> str:
    """ActivityManagerService's stringifyKBSize: ``%,9dK``."""
    return f"{value:>9,}K"


def dumpsys_meminfo(scene: Mapping[str, Any], kv: KernelVariant | None = None) -> str:
    """``dumpsys meminfo`` of the scene: the header and the global summary (the per-process
    sections are left out). DMA-BUF figures from the buffers: total = every buffer, mapped =
    buffers some process maps, heaps = buffers whose exporter is a /dev/dma_heap name, pool =
    ``total_pools_kb``; GPU = buffers exported by ``drm`` plus ``gpu_private_kb``. A kernel
    without dma-buf heaps (ION era) gets the ``ION:`` line instead (docs/user-build.md)."""
    kv = kv or VARIANTS["modern"]
    sizes = {int(b["inode"]): int(b["size"]) for b in scene["buffers"]}
    mapped = {int(m["buffer"]) for p in scene["processes"] for m in p.get("maps", [])}
    total_kb = sum(sizes.values()) // 1024
    mapped_kb = sum(sizes[i] for i in mapped) // 1024
    heaps = set(scene["heaps"])
    heap_kb = sum(int(b["size"]) for b in scene["buffers"] if b["exporter"] in heaps) // 1024
    pool_kb = int(scene["total_pools_kb"])
    gpu_dmabuf_kb = sum(int(b["size"]) for b in scene["buffers"] if b["exporter"] == "drm") // 1024
    gpu_private_kb = int(scene.get("gpu_private_kb", 0))
    mem = scene["meminfo_kb"]
    total_ram = int(mem.get("MemTotal", 0))
    free = int(mem.get("MemFree", 0))
    cached = int(mem.get("Cached", 0))
    up = str(scene["uptime"]).split()
    lines = [
        "Applications Memory Usage (in Kilobytes):",
        f"Uptime: {int(float(up[0]) * 1000)} Realtime: {int(float(up[-1]) * 1000)}",
        "",
        "Total PSS by process:",
        *(
            f"{_kb(4096 + int(p['pid']))}: {p['name']} (pid {int(p['pid'])})"
            for p in scene["processes"]
            if not p.get("kernel_thread")
        ),
        "",
        f"Total RAM: {_kb(total_ram).strip()} (status normal)",
        f" Free RAM: {_kb(free + cached)} ({_kb(cached)} cached kernel + {_kb(free)} free)",
    ]
    if kv.dma_heap:
        lines += [
            f"DMA-BUF: {_kb(total_kb)} ({_kb(mapped_kb)} mapped + {_kb(total_kb - mapped_kb)} "
            "unmapped)",
            f"DMA-BUF Heaps: {_kb(heap_kb)}",
            f"DMA-BUF Heaps pool: {_kb(pool_kb)}",
            f"      GPU: {_kb(gpu_dmabuf_kb + gpu_private_kb)} ({_kb(gpu_dmabuf_kb)} dmabuf + "
            f"{_kb(gpu_private_kb)} private)",
        ]
    else:
        lines.append(
            f"      ION: {_kb(total_kb + pool_kb)} ({_kb(mapped_kb)} mapped + "
            f"{_kb(total_kb - mapped_kb)} unmapped + {_kb(pool_kb)} pools)"
        )
    used = total_ram - free - cached
    lines += [
        f" Used RAM: {_kb(used)} ({_kb(used // 2)} used pss + {_kb(used - used // 2)} kernel)",
        f" Lost RAM: {_kb(0)}",
        f"     ZRAM: {_kb(4)} physical used for {_kb(0)} in swap ({_kb(4194300)} total swap)",
        f"   Tuning: 256 (large 512), oom {_kb(322560)}, restore limit {_kb(107520)} "
        "(high-end-gfx)",
    ]
    return "\n".join(lines) + "\n"


def _gralloc(scene: Mapping[str, Any], pids: set[int]) -> str:
    """What libui's GraphicBufferAllocator::dump() and the mapper's dumpBuffers() print in the
    processes ``pids`` (Android 12+ layouts, docs/user-build.md): buffers marked
    ``"allocated_by"`` one of them, then the gralloc buffers they hold by fd ("imported").
    Geometry: stride = width = 1024 pixels of 4 bytes, height = size / 4096 (scene sizes are
    page multiples), so the estimate equals the size."""
    gralloc = [b for b in scene["buffers"] if "allocated_by" in b]
    held: set[int] = set()
    for p in scene["processes"]:
        if int(p["pid"]) in pids:
            for table in fd_tables(p):
                held |= {int(f["buffer"]) for f in table if "buffer" in f}
    out = [
        "GraphicBufferAllocator buffers:",
        f"{'Handle':>10} | {'Size':>11} | {'W (Stride) x H':>18} | Layers | {'Format':>8} | "
        f"{'Usage':>10} | Requestor",
    ]
    total = 0
    for b in gralloc:
        if int(b["allocated_by"]) not in pids:
            continue
        size = int(b["size"])
        size_text = f"{size / 1024:7.2f} KiB"
        usage = int(str(b.get("usage", "0xb00")), 16)
        out.append(
            f"0xb400007a1c2d{int(b['inode']):04x} | {size_text:>11} | {1024:4d} ({1024:4d}) x "
            f"{size // 4096:4d} | {1:6d} | {1:8X} | 0x{usage:8x} | {b['name']}"
        )
        total += size
    out.append(f"Total allocated by GraphicBufferAllocator (estimate): {total / 1024:.2f} KB")
    out.append("Imported gralloc buffers:")
    imported = [b for b in gralloc if int(b["inode"]) in held]
    for b in imported:
        size = int(b["size"])
        usage = int(str(b.get("usage", "0xb00")), 16)
        out.append(
            f"+ name:{b['name']}, id:{int(b['inode'])}, size:{size / 1024:.2f}KiB, "
            f"w/h:1024x{size // 4096}, usage: 0x{usage:x}, req fmt:1, fourcc/mod:875708993/0, "
            "dataspace: 0x0, compressed: false"
        )
        out.append(f"\tplanes: R/G/B/A:\t w/h:1024x{size // 4096}, stride:4096 bytes, size:{size}")
    out.append("Imported gralloc buffers sorted by size:")
    by_name: dict[str, list[int]] = {}
    for b in imported:
        by_name.setdefault(str(b["name"]), []).append(int(b["size"]))
    for name, sizes in sorted(by_name.items(), key=lambda kv_: -sum(kv_[1])):
        out.append(f"* name:{name}, totalSize:{sum(sizes) // 1024}KiB, count:{len(sizes)}")
    out.append(f"Total imported by gralloc: {sum(int(b['size']) for b in imported) / 1024:.2f}KiB")
    return "\n".join(out) + "\n"


def dumpsys_surfaceflinger(scene: Mapping[str, Any]) -> str:
    """``dumpsys SurfaceFlinger`` of the scene: a few lines of the real dump around the
    graphic buffer lists of the process named ``surfaceflinger``."""
    sf = {int(p["pid"]) for p in scene["processes"] if p["name"] == "surfaceflinger"}
    head = (
        "Build configuration: [sf PRESENT_TIME_OFFSET=0 FORCE_HWC_FOR_RBG_TO_YUV=0 "
        "MAX_VIRT_DISPLAY_DIM=0 RUNNING_WITHOUT_SYNC_FRAMEWORK=0 "
        "NUM_FRAMEBUFFER_SURFACE_BUFFERS=3]\n\n"
        "Scheduler:\n+  Touch timer: off\n\n"
        "Total missed frame count: 3\n\n"
    )
    tail = (
        "FlagManager values: \ndemo_flag: -1\n"
        "TimeStats miniDump:\nNumber of layers currently being tracked is 0\n\n"
        '+ Layer (Display 0 name="Built-in Screen"#1) uid=1000\n'
        "  Region TransparentRegion (this=0 count=0)\n"
    )
    return head + _gralloc(scene, sf) + tail


def dumpsys_gfxinfo(scene: Mapping[str, Any], package: str) -> str:
    """``dumpsys gfxinfo PACKAGE``: per process of the package (name = package or
    ``package:suffix``), hwui's header and the process's gralloc lists (RenderProxy::
    dumpGraphicsMemory appends GraphicBufferAllocator's dump)."""
    procs = [
        p
        for p in scene["processes"]
        if p["name"] == package or str(p["name"]).startswith(package + ":")
    ]
    if not procs:
        return f"No process found for: {package}\n"
    out = ["Applications Graphics Acceleration Info:", "Uptime: 8215420 Realtime: 31024770", ""]
    for p in procs:
        pid = int(p["pid"])
        out += [
            f"** Graphics info for pid {pid} [{p['name']}] **",
            "",
            "Stats since: 8215420000000ns",
            "Total frames rendered: 120",
            "Janky frames: 0 (0.00%)",
            "",
            "Pipeline=Skia (Vulkan)",
            "",
            _gralloc(scene, {pid}),
        ]
    return "\n".join(out) + "\n"


def dumpsys_output(scene: Mapping[str, Any], kv: KernelVariant | None = None) -> dict[str, str]:
    """Argument line -> output of the dumpsys stand-in."""
    out = {"meminfo": dumpsys_meminfo(scene, kv), "SurfaceFlinger": dumpsys_surfaceflinger(scene)}
    for p in scene["packages"]:
        out[f"gfxinfo {p['name']}"] = dumpsys_gfxinfo(scene, str(p["name"]))
    return out


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _build_dumpsys(dest: Path, scene: Mapping[str, Any], kv: KernelVariant) -> None:
    """/system/bin/dumpsys: prints the canned outputs with `print -r` (builtins only, so the
    collector's spawn count stays exact)."""
    arms = []
    for args, text in dumpsys_output(scene, kv).items():
        body = "".join(f"\tprint -r -- {_sh_quote(line)}\n" for line in text.splitlines())
        arms.append(f"{_sh_quote(args)})\n{body}\t;;\n")
    script = (
        "#!/system/bin/sh\n"
        "# stand-in for Android's dumpsys (dmaprof fake phone, tests/emuphone/scene.py)\n"
        'case "$*" in\n'
        + "".join(arms)
        + 'gfxinfo\\ *)\n\tprint -r -- "No process found for: ${2:-}"\n\t;;\n'
        + '*)\n\tprint -r -- "Can\'t find service: $1"\n\texit 0\n\t;;\nesac\n'
    )
    _w(dest / "system" / "bin" / "dumpsys", script, 0o755)


# ---------------------------------------------------------------------------- utilities


def remove_tree(path: Path) -> None:
    """rm -rf for a built scene (its 0500 dirs are not writable even by their owner)."""
    if not path.exists():
        return
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            p = Path(root) / d
            if not p.is_symlink():
                p.chmod(0o755)
    shutil.rmtree(path)


def generate_large(
    n_procs: int = 500,
    n_fds: int = 20000,
    *,
    dmabuf_fd_share: float = 0.55,
    n_buffers: int = 400,
    threads_per_proc: int = 6,
    maps_per_proc: int = 8,
    own_table_every: int = 50,
    seed: int = 1,
) -> Scene:
    """A big phone for the benchmark: ``n_procs`` processes (plus init and kthreadd) with
    ``n_fds`` fds in total, about ``dmabuf_fd_share`` of them dma-buf fds spread over
    ``n_buffers`` buffers (most buffers shared by many processes, like the qemu scale scene of
    kernel-vm.md §14), ``threads_per_proc`` threads per process and one thread with its own fd
    table in every ``own_table_every``-th process."""
    rnd = random.Random(seed)
    exporters = ["system", "system", "system", "system-uncached", "drm", "camera"]
    buffers: list[dict[str, Any]] = [
        {
            "inode": i,
            "size": 4096 * rnd.choice([16, 64, 256, 1024, 2532]),
            "exporter": rnd.choice(exporters),
            "name": rnd.choice(["", f"buf-{i}", f"gralloc-{i}"]),
            "attached": ["1c240000.drmdecon"] if i % 7 == 0 else [],
        }
        for i in range(1, n_buffers + 1)
    ]
    others = [
        "/dev/null",
        "/dev/binderfs/binder",
        "/dev/binderfs/hwbinder",
        "anon_inode:[eventpoll]",
        "anon_inode:[eventfd]",
        "anon_inode:sync_file",
        "/system/framework/framework.jar",
        "/dev/ashmem",
    ]
    scene: Scene = {
        "schema": SCENE_SCHEMA,
        "name": f"large-{n_procs}p-{n_fds}fd",
        "uptime": "86400.00 300000.00",
        "boot_id": "5a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "uuid": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        "props": {
            "ro.product.model": "Large Fake",
            "ro.build.version.sdk": "35",
            "ro.build.type": "user",
            "ro.debuggable": "0",
        },
        "packages": [{"name": f"com.example.app{i}", "uid": 10000 + i} for i in range(n_procs)],
        "heaps": ["system", "system-uncached", "camera"],
        "total_pools_kb": 20480,
        "meminfo_kb": {"MemTotal": 11718080, "MemFree": 301204, "MemAvailable": 5120384},
        "buffers": buffers,
        "processes": [
            {
                "pid": 1,
                "ppid": 0,
                "uid": 0,
                "gid": 0,
                "name": "init",
                "cmdline": ["/system/bin/init", "second_stage"],
                "cgroup": ["0::/"],
                "fds": [{"fd": 0, "target": "/dev/null"}],
            },
            {
                "pid": 2,
                "ppid": 0,
                "uid": 0,
                "gid": 0,
                "name": "kthreadd",
                "cmdline": [],
                "kernel_thread": True,
                "cgroup": ["0::/"],
                "fds": [],
            },
        ],
    }
    base, extra = divmod(n_fds, n_procs)
    tid = 100000
    for i in range(n_procs):
        pid = 1000 + i
        nfd = base + (1 if i < extra else 0)
        fds: list[dict[str, Any]] = []
        for fd in range(nfd):
            if fd > 2 and rnd.random() < dmabuf_fd_share:
                fds.append({"fd": fd, "buffer": rnd.randint(1, n_buffers)})
            else:
                fds.append(
                    {"fd": fd, "target": others[fd % len(others)] if fd > 2 else "/dev/null"}
                )
        maps = []
        for k in range(maps_per_proc):
            b = buffers[rnd.randrange(n_buffers)]
            start = 0x7A00000000 + k * 0x10000000
            maps.append(
                {"buffer": b["inode"], "start": f"{start:x}", "end": f"{start + int(b['size']):x}"}
            )
        threads: list[dict[str, Any]] = []
        for k in range(threads_per_proc):
            tid += 1
            t: dict[str, Any] = {"tid": tid, "name": f"binder:{pid}_{k + 1}"}
            if k == 0 and i % own_table_every == 0:
                t["name"] = "Worker"
                t["fds"] = [
                    {"fd": 0, "target": "/dev/null"},
                    {"fd": 3, "buffer": rnd.randint(1, n_buffers)},
                ]
            threads.append(t)
        app = i >= 60
        uid = 10000 + i if app else 1000
        scene["processes"].append(
            {
                "pid": pid,
                "ppid": 1,
                "uid": uid,
                "gid": uid,
                "name": f"com.example.app{i}" if app else f"vendor.svc{i}",
                "cmdline": [f"com.example.app{i}"] if app else [f"/vendor/bin/hw/vendor.svc{i}"],
                "zygote": app,
                "cgroup": [f"0::/uid_{uid}/pid_{pid}" if app else "0::/system"],
                "fds": fds,
                "maps": maps,
                "threads": threads,
            }
        )
    validate_scene(scene)
    return scene


# ---------------------------------------------------------------------------- harness
# Shared by tests/test_collector.py and scripts/bench_collector.py: a busybox-only phone root
# and a runner that executes the collector in a fake root (chroot) or on the host, counting
# the processes it starts exactly with a PID namespace.

COLLECTOR = Path(__file__).resolve().parents[2] / "dmaprof" / "collect" / "collect.sh"
ANDROID_ENV = {
    "PATH": "/product/bin:/apex/com.android.runtime/bin:/system_ext/bin:/system/bin:/system/xbin"
    ":/odm/bin:/vendor/bin:/vendor/xbin",
    "TMPDIR": "/data/local/tmp",
    "ANDROID_DATA": "/data",
    "ANDROID_ROOT": "/system",
    "HOME": "/",
    "SHELL": "/system/bin/sh",
}

BUSYBOX_GETPROP = r"""#!/system/bin/sh
# getprop for the busybox-only fake phone: properties from /system/build.prop.
if [ $# -eq 0 ]; then
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		'#'* | '') ;;
		*=*) printf '[%s]: [%s]\n' "${line%%=*}" "${line#*=}" ;;
		esac
	done </system/build.prop | sort
	exit 0
fi
while IFS= read -r line || [ -n "$line" ]; do
	case $line in "$1="*) printf '%s\n' "${line#*=}"; exit 0 ;; esac
done </system/build.prop
printf '%s\n' "${2:-}"
"""


def static_mksh() -> str:
    """A static mksh of the host (the musl build runs in an empty chroot)."""
    for pattern in (
        "/usr/lib/*-linux-musl*/bin/mksh",
        "/usr/lib/klibc/bin/mksh",
        "/bin/mksh-static",
    ):
        for path in sorted(Path("/").glob(pattern.lstrip("/"))):
            if os.access(path, os.X_OK):
                return str(path.resolve())
    raise FileNotFoundError("no static mksh: apt-get install mksh")


def build_busybox_root(dest: Path) -> None:
    """A phone root whose shell and every applet is busybox (``/system/bin/sh`` -> busybox),
    with a busybox ``getprop``, ``/dev/null``, ``/etc/passwd`` and a shell-owned
    ``/data/local/tmp``. Add a scene with :func:`build_scene`."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    sbin = dest / "system" / "bin"
    sbin.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(busybox, sbin / "busybox")
    (sbin / "busybox").chmod(0o755)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        if applet != "busybox" and not (sbin / applet).exists():
            os.symlink("busybox", sbin / applet)
    _w(sbin / "getprop", BUSYBOX_GETPROP, 0o755)
    for d in ("dev", "etc", "tmp"):
        (dest / d).mkdir(exist_ok=True)
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/:/system/bin/sh\nshell:x:2000:2000:shell:/:/system/bin/sh\n"
    )
    (dest / "etc" / "group").write_text("root:x:0:\nshell:x:2000:\n")
    if os.geteuid() == 0 and not (dest / "dev" / "null").exists():
        os.mknod(dest / "dev" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        (dest / "dev" / "null").chmod(0o666)
    tmp = dest / "data" / "local" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(tmp, SHELL_UID, SHELL_UID)
    tmp.chmod(0o771)


def install_collector(root: Path, uid: int = 0, name: str = "dmaprof-snap") -> str:
    """Push collect.sh into a fresh private dir under /data/local/tmp (as `dmaprof snapshot`
    does); returns the device path of that dir."""
    wd = root / "data" / "local" / "tmp" / name
    wd.mkdir()
    shutil.copyfile(COLLECTOR, wd / "collect.sh")
    if os.geteuid() == 0:
        os.chown(wd, uid, uid)
        os.chown(wd / "collect.sh", uid, uid)
    wd.chmod(0o700)
    return f"/data/local/tmp/{name}"


def host_tool(name: str) -> str:
    """Absolute path of a host program (runs with the phone's PATH do not find it)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise FileNotFoundError(f"{name} not found on the host")
    return path


@dataclass
class CollectorRun:
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float
    spawns: int | None  # processes started below the collector shell (PID-namespace count)


def run_collector(
    root: Path | None,
    args: list[str],
    *,
    uid: int = 0,
    shell: str = "/system/bin/sh",
    script: str | None = None,
    env: Mapping[str, str] | None = None,
    count_spawns: bool = True,
    timeout: float = 300,
    pid: int | None = None,
) -> CollectorRun:
    """Run ``shell script args...`` chrooted into ``root`` (``None``: on the host) as ``uid``.

    ``pid`` (root, without ``count_spawns``): the collector gets that pid, in a new PID
    namespace whose last pid is set just before it starts (as a host whose pid counter is
    there would give it).

    With ``count_spawns`` (root only) it runs in a new PID namespace: the wrapper is pid 1, the
    collector pid 2, so the pid of one probe process forked afterwards tells exactly how many
    processes the collector and its children started."""
    script = script or str(COLLECTOR)
    env = dict(ANDROID_ENV if env is None else env)
    if root is not None:
        cmd = [host_tool("chroot")]
        if uid:
            cmd += [f"--userspec={uid}:{uid}", f"--groups={uid}"]
        cmd += [str(root), shell, script, *args]
    else:
        cmd = [shell, script, *args]
        if uid:
            cmd = [
                host_tool("setpriv"),
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                *cmd,
            ]
    with tempfile.TemporaryDirectory(prefix="dmaprof-run-") as tmp:
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        if count_spawns:
            mksh = static_mksh()
            wrapper = (
                '"$@" >"$DP_OUT" 2>"$DP_ERR"; rc=$?; '
                f"p=$(exec {mksh} -c 'echo $$'); echo \"$rc $p\""
            )
            full = [
                host_tool("unshare"),
                "--fork",
                "--pid",
                "--",
                mksh,
                "-c",
                wrapper,
                "wrap",
                *cmd,
            ]
            wenv = {**env, "DP_OUT": str(out), "DP_ERR": str(err)}
            t0 = time.monotonic()
            r = subprocess.run(full, env=wenv, capture_output=True, timeout=timeout, check=True)
            seconds = time.monotonic() - t0
            rc_text, probe = r.stdout.split()
            return CollectorRun(
                int(rc_text), out.read_bytes(), err.read_bytes(), seconds, int(probe) - 3
            )
        if pid is not None:
            # the shell forks the collector right after writing ns_last_pid: it gets ``pid``
            cmd = [
                host_tool("unshare"),
                "--pid",
                "--fork",
                "/bin/sh",
                "-c",
                f'echo {pid - 1} >/proc/sys/kernel/ns_last_pid && "$@"',
                "sh",
                *cmd,
            ]
        t0 = time.monotonic()
        with out.open("wb") as fo, err.open("wb") as fe:
            proc = subprocess.run(cmd, env=env, stdout=fo, stderr=fe, timeout=timeout, check=False)
        seconds = time.monotonic() - t0
        return CollectorRun(proc.returncode, out.read_bytes(), err.read_bytes(), seconds, None)
