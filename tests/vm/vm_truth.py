"""Ground truth of the VM scene (scripts/vm/scene.c) and the figures it implies.

The scene writes one ``gt-<role>.json`` per process (schema: docs/vm-testbed.md, "Ground
truth"); the guest copies them, with ``roles`` and ``scene.json``, into
``out/snapN/groundtruth/`` while the leaker is paused. :func:`expected_report` computes from
that directory alone what a correct dma-buf profiler must report for the snapshot, with the
accounting of Android's ``dmabuf_dump``:

* a process *holds* a buffer if it has an fd of it (in any of its tasks' fd tables: a task
  with its own fd table counts for its process) or a mapping of it;
* ``rss`` of a process: the sum of the sizes of the distinct buffers it holds;
* ``pss`` of a process: the sum over those buffers of ``size // n`` (``n`` = number of
  processes holding the buffer), with the integer remainder distributed by
  :func:`pss_shares`;
* buffers that no process holds (in flight in an unread socket, held only by a GEM import or
  by the exporter's GEM handle) are *kernel-only*.

Python standard library only, so it can also run inside the guest's python3 rootfs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXP_NAME = {"dma_heap/system": "system", "udmabuf": "udmabuf", "vgem": "drm"}


@dataclass(frozen=True)
class Buffer:
    ino: int
    label: str
    size: int
    requested: int
    backend: str
    exp_name: str
    name: str  # "" for an unnamed buffer
    creator: str  # role


@dataclass(frozen=True)
class FdRef:
    pid: int
    fd: int
    ino: int
    label: str
    tid: int | None  # set for an fd of a task with its own fd table


@dataclass(frozen=True)
class MapRef:
    pid: int
    start: int
    end: int
    ino: int
    fd_open: bool
    label: str


class GroundTruth:
    """The ground-truth directory of one snapshot."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.roles: dict[str, dict[str, Any]] = {}
        for p in sorted(self.dir.glob("gt-*.json")):
            gt = json.loads(p.read_text())
            self.roles[gt["role"]] = gt
        if not self.roles:
            raise FileNotFoundError(f"no gt-*.json in {self.dir}")
        scene = self.dir / "scene.json"
        self.scene: dict[str, Any] = json.loads(scene.read_text()) if scene.exists() else {}
        self.role_pids: dict[str, int] = {}
        roles = self.dir / "roles"
        if roles.exists():
            for line in roles.read_text().splitlines():
                if line.strip():
                    role, pid = line.split()
                    self.role_pids[role] = int(pid)

    # -- per process
    @property
    def by_pid(self) -> dict[int, dict[str, Any]]:
        return {gt["pid"]: gt for gt in self.roles.values()}

    def buffers(self) -> dict[int, Buffer]:
        out: dict[int, Buffer] = {}
        for role, gt in self.roles.items():
            for c in gt["created"]:
                out[c["ino"]] = Buffer(
                    ino=c["ino"],
                    label=c["label"],
                    size=c["size"],
                    requested=c["requested"],
                    backend=c["backend"],
                    exp_name=c.get("exp_name") or EXP_NAME[c["backend"]],
                    name=c["name"],
                    creator=role,
                )
        return out

    def fds(self) -> list[FdRef]:
        return [
            FdRef(gt["pid"], f["fd"], f["ino"], f["label"], f.get("tid"))
            for gt in self.roles.values()
            for f in gt["dmabuf_fds"]
        ]

    def maps(self) -> list[MapRef]:
        return [
            MapRef(
                gt["pid"],
                int(m["start"], 16),
                int(m["end"], 16),
                m["ino"],
                m["fd_open"],
                m["label"],
            )
            for gt in self.roles.values()
            for m in gt["dmabuf_maps"]
        ]

    def holders(self) -> dict[int, set[int]]:
        """ino -> pids that hold it (fd in any task's table, or mapping)."""
        h: dict[int, set[int]] = defaultdict(set)
        for f in self.fds():
            h[f.ino].add(f.pid)
        for m in self.maps():
            h[m.ino].add(m.pid)
        return dict(h)

    def kernel_refs(self) -> dict[int, list[str]]:
        """ino -> kernel-side holders named by the scene (inflight, gem_import, gem_export)."""
        k: dict[int, list[str]] = defaultdict(list)
        for gt in self.roles.values():
            for r in gt["inflight_in_unread_socket"]:
                k[r["ino"]].append("inflight")
            for r in gt["gem_imports"]:
                k[r["ino"]].append("gem_import")
            for r in gt.get("gem_exports", []):
                k[r["ino"]].append("gem_export")
        return dict(k)


def pss_shares(size: int, pids: Iterable[int]) -> dict[int, int]:
    """Split ``size`` bytes of one buffer among the processes holding it.

    Every holder gets ``size // n``; the remainder ``size % n`` goes one byte each to the
    holders with the lowest pids, so the shares sum to ``size`` exactly.

    TODO(remainder rule): align with the rule dmaprof's analyzer adopts (dmabuf_dump
    itself truncates: ``size / n`` per process, remainder lost). Change it here only; every
    expected figure goes through this function. With the scene's page-multiple sizes and at
    most two holders per buffer the remainder is 0 today.
    """
    holders = sorted(set(pids))
    if not holders:
        return {}
    base, rem = divmod(size, len(holders))
    return {pid: base + (1 if i < rem else 0) for i, pid in enumerate(holders)}


def _cgroup_ancestors(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i]) if i else "/" for i in range(len(parts) + 1)]


def _group(
    members: dict[str, list[int]],
    held: dict[int, set[int]],
    pss: dict[int, int],
    sizes: dict[int, int],
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, pids in sorted(members.items()):
        inos = set().union(*(held.get(p, set()) for p in pids)) if pids else set()
        out[key] = {
            "pids": sorted(pids),
            "count": len(inos),
            "rss": sum(sizes[i] for i in inos),
            "pss": sum(pss.get(p, 0) for p in pids),
            "buffers": sorted(inos),
        }
    return out


def expected_report(groundtruth_dir: str | Path) -> dict[str, Any]:
    """What a correct profiler reports for the snapshot, from the ground truth alone.

    Keys (sizes in bytes; ``buffers`` are sorted inode lists):

    * ``total``: ``{count, size}`` of every live dma-buf (every buffer the scene created;
      nothing in the scene frees one);
    * ``processes``: ``{pid: {role, comm, uid, cgroup, count, rss, pss, buffers}}`` for every
      scene process (a process holding nothing has zeros);
    * ``cgroups``: ``{path: {pids, count, rss, pss, buffers}}`` for every cgroup that holds a
      scene process, directly or in its subtree (``/uid_10001`` covers both camera
      processes; ``rss`` dedupes buffers shared inside the group; ``pss`` is the sum of the
      members' pss);
    * ``uids``: the same keyed by uid (per-app aggregation across processes of one uid);
    * ``exporters``: ``{exp_name: {count, size}}`` over all live buffers;
    * ``kernel_only``: ``{count, size, buffers: [{ino, label, size, exp_name, held_by}]}``,
      the live buffers no process holds, ``held_by`` naming the kernel-side holders the
      scene knows (``inflight``, ``gem_import``, ``gem_export``);
    * ``userspace``: ``{count, size}`` of the buffers some process holds.
    """
    gt = GroundTruth(groundtruth_dir)
    bufs = gt.buffers()
    sizes = {ino: b.size for ino, b in bufs.items()}
    holders = gt.holders()
    unknown = set(holders) - set(bufs)
    if unknown:
        raise ValueError(f"ground truth holds inodes nobody created: {sorted(unknown)}")

    held: dict[int, set[int]] = defaultdict(set)
    for ino, pids in holders.items():
        for p in pids:
            held[p].add(ino)
    pss: dict[int, int] = defaultdict(int)
    for ino, pids in holders.items():
        for p, share in pss_shares(sizes[ino], pids).items():
            pss[p] += share

    processes: dict[int, dict[str, Any]] = {}
    cg_members: dict[str, list[int]] = defaultdict(list)
    uid_members: dict[str, list[int]] = defaultdict(list)
    for pid, r in sorted(gt.by_pid.items()):
        inos = held.get(pid, set())
        processes[pid] = {
            "role": r["role"],
            "comm": r["comm"],
            "uid": r["uid"],
            "cgroup": r["cgroup"],
            "count": len(inos),
            "rss": sum(sizes[i] for i in inos),
            "pss": pss.get(pid, 0),
            "buffers": sorted(inos),
        }
        for cg in _cgroup_ancestors(r["cgroup"]):
            cg_members[cg].append(pid)
        uid_members[str(r["uid"])].append(pid)

    exporters: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "size": 0})
    for b in bufs.values():
        exporters[b.exp_name]["count"] += 1
        exporters[b.exp_name]["size"] += b.size

    krefs = gt.kernel_refs()
    kernel_only = [
        {
            "ino": b.ino,
            "label": b.label,
            "size": b.size,
            "exp_name": b.exp_name,
            "held_by": sorted(set(krefs.get(b.ino, []))),
        }
        for b in sorted(bufs.values(), key=lambda b: b.ino)
        if b.ino not in holders
    ]
    return {
        "total": {"count": len(bufs), "size": sum(sizes.values())},
        "processes": processes,
        "cgroups": _group(cg_members, held, pss, sizes),
        "uids": {int(k): v for k, v in _group(uid_members, held, pss, sizes).items()},
        "exporters": dict(sorted(exporters.items())),
        "kernel_only": {
            "count": len(kernel_only),
            "size": sum(k["size"] for k in kernel_only),
            "buffers": kernel_only,
        },
        "userspace": {
            "count": len(holders),
            "size": sum(sizes[i] for i in holders),
        },
    }


def figures(
    holders: dict[int, set[int]], sizes: dict[int, int], pids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """Per-process rss/pss/count for ``pids`` from a holder map (shared by the dump checker)."""
    held: dict[int, set[int]] = defaultdict(set)
    pss: dict[int, int] = defaultdict(int)
    for ino, hs in holders.items():
        for p in hs:
            held[p].add(ino)
        for p, share in pss_shares(sizes[ino], hs).items():
            pss[p] += share
    return {
        p: {
            "count": len(held.get(p, set())),
            "rss": sum(sizes[i] for i in held.get(p, set())),
            "pss": pss.get(p, 0),
        }
        for p in pids
    }
