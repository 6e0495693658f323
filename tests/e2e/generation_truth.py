"""The hand-computed report of a generation phone, worked out from its scene alone.

This is an independent calculation (nothing from dmaprof is imported): it follows the
definitions written in docs/attribution.md with plain Python over the scene's fds, mappings,
uids and cgroup lines, and with the scene's own ``service`` flags (set by hand from §6's
table) instead of dmaprof's regex. ``fixtures/phones/<phone>.expected.json`` holds its output;
tests/e2e/test_generations_e2e.py checks that the file still equals this calculation and that
dmaprof's report equals the file.

Buffers are listed by name and size, not inode (every generation phone names each buffer
once), because on the phones whose inodes come from ``stat -L`` the inode numbers belong to
the host filesystem. The name of a buffer no process holds is known only from an inventory
that prints names (debugfs bufinfo, the BPF iterator); sysfs stats give exporter and size
only, so on a sysfs-only phone a kernel-only buffer's name is unknown ("").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHARGES = ("shared", "full", "client")


def is_app(uid: int) -> bool:
    app_id = uid % 100000
    return 10000 <= app_id <= 29999 or 90000 <= app_id <= 99999


def owner_uid(proc: Mapping[str, Any], packages: Mapping[str, int]) -> int:
    """§7: isolated / app-zygote uids belong to the package their process name names."""
    uid = int(proc["uid"])
    if 90000 <= uid % 100000 <= 99999:
        name = str(proc["name"])
        package = name.split(":", 1)[0].removesuffix("_zygote")
        if package in packages:
            return (uid // 100000) * 100000 + packages[package] % 100000
    if 20000 <= uid % 100000 <= 29999:
        return uid - 10000
    return uid


def held(proc: Mapping[str, Any]) -> set[int]:
    tables = [proc.get("fds", []), *(t.get("fds", []) for t in proc.get("threads", []))]
    out = {int(f["buffer"]) for table in tables for f in table if "buffer" in f}
    return out | {int(m["buffer"]) for m in proc.get("maps", [])}


def split(size: int, pids: list[int]) -> dict[int, int]:
    """size // n each, one more byte to the first size % n holders by ascending pid."""
    n = len(pids)
    return {p: size // n + (1 if k < size % n else 0) for k, p in enumerate(sorted(pids))}


def cgroup_of(proc: Mapping[str, Any], tree: str) -> str:
    """The process's line in the hierarchy the scene names as its process tree."""
    for line in proc["cgroup"]:
        hier, ctl, path = line.split(":", 2)
        if (tree == "v2" and hier == "0" and ctl == "") or tree in ctl.split(","):
            return path
    raise ValueError(f"pid {proc['pid']} has no {tree} line")


def ancestors(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[: k + 1]) for k in range(len(parts))]


def charged_shares(
    sizes: Mapping[int, int], holders: Mapping[int, list[int]], apps: set[int], services: set[int]
) -> dict[str, dict[int, dict[int, int]]]:
    """charge -> buffer -> pid -> bytes charged."""
    out: dict[str, dict[int, dict[int, int]]] = {c: {} for c in CHARGES}
    for ino, pids in holders.items():
        if not pids:
            continue
        shared = split(sizes[ino], pids)
        out["shared"][ino] = shared
        out["full"][ino] = dict.fromkeys(pids, sizes[ino])
        app_holders = [p for p in pids if p in apps]
        if app_holders and any(p in services for p in pids):
            client = dict.fromkeys(pids, 0)
            client.update(split(sizes[ino], app_holders))
            out["client"][ino] = client
        else:
            out["client"][ino] = shared
    return out


def expected_report(
    scene: Mapping[str, Any], *, inventory_names: bool, dma_heap: bool, ion_debugfs: bool
) -> dict[str, Any]:
    """``inventory_names``: the phone's buffer inventory prints names (bufinfo, BPF);
    ``dma_heap``: it lists ``/dev/dma_heap``; ``ion_debugfs``: it has ION's debugfs heap."""
    buffers = {int(b["inode"]): b for b in scene["buffers"]}
    sizes = {i: int(b["size"]) for i, b in buffers.items()}
    procs = {int(p["pid"]): p for p in scene["processes"]}
    hold = {pid: held(p) for pid, p in procs.items()}
    holders = {i: sorted(pid for pid, h in hold.items() if i in h) for i in buffers}
    # the name the report can know: from an fd link or mapping path, else from the inventory
    name_of = {
        i: str(b["name"]) if holders[i] or inventory_names else "" for i, b in buffers.items()
    }
    apps = {pid for pid, p in procs.items() if is_app(int(p["uid"]))}
    services = {pid for pid, p in procs.items() if p.get("service") and pid not in apps}
    packages = {str(p["name"]): int(p["uid"]) for p in scene["packages"]}
    owner = {pid: owner_uid(p, packages) for pid, p in procs.items()}
    cgroup = {pid: cgroup_of(p, str(scene["cgroup_tree"])) for pid, p in procs.items()}
    shares = charged_shares(sizes, holders, apps, services)

    held_ids = {i for i, hs in holders.items() if hs}
    userspace = sum(sizes[i] for i in held_ids)
    total = sum(sizes.values())
    report: dict[str, Any] = {
        "scene": scene["name"],
        "computed": "tests/e2e/generation_truth.py from the scene (docs/attribution.md)",
        "cgroup_hierarchy": "v2" if scene["cgroup_tree"] == "v2" else f"v1:{scene['cgroup_tree']}",
        "totals": {
            "buffers": len(buffers),
            "bytes": total,
            "userspace_bytes": userspace,
            "kernel_only_bytes": total - userspace,
        },
        "kernel_only": sorted(name_of[i] for i in buffers if i not in held_ids),
        "buffers": sorted(
            (
                {
                    "name": name_of[i],
                    "size_bytes": sizes[i],
                    "exporter": str(buffers[i]["exporter"]),
                    "holders": holders[i],
                }
                for i in buffers
            ),
            key=lambda b: (b["name"], b["size_bytes"]),
        ),
    }
    for key, field in (("exporters", "exporter"), ("names", "name")):
        groups: dict[str, dict[str, int]] = {}
        for i, b in buffers.items():
            k = (name_of[i] if field == "name" else str(b[field])) or "<unknown>"
            g = groups.setdefault(
                k,
                {
                    "buffers": 0,
                    "bytes": 0,
                    "userspace_bytes": 0,
                    "kernel_only_bytes": 0,
                    "kernel_only_buffers": 0,
                },
            )
            g["buffers"] += 1
            g["bytes"] += sizes[i]
            if i in held_ids:
                g["userspace_bytes"] += sizes[i]
            else:
                g["kernel_only_bytes"] += sizes[i]
                g["kernel_only_buffers"] += 1
        report[key] = groups

    # heaps (§ heaps table): a dma-buf heap's buffers are those its name exported; ION
    # exports everything as `ion`, so its debugfs heap `system` matches no exporter
    heaps = []
    if dma_heap:
        for h in scene["heaps"]:
            mine = [i for i, b in buffers.items() if b["exporter"] == h]
            heaps.append(
                {
                    "heap": h,
                    "source": "dma_heap",
                    "buffers": len(mine),
                    "bytes": sum(sizes[i] for i in mine),
                }
            )
    if ion_debugfs:
        heaps.append({"heap": "system", "source": "ion_debugfs", "buffers": 0, "bytes": 0})
        report["ion_heap_total"] = sum(
            sizes[i] for i, b in buffers.items() if b["exporter"] == "ion"
        )
    report["heaps"] = heaps

    nodes = sorted({a for c in cgroup.values() for a in ancestors(c)})
    report["charges"] = {}
    for charge in CHARGES:
        charged = {
            pid: sum(shares[charge][i][pid] for i in hold[pid] if i in shares[charge])
            for pid in procs
        }
        processes = {
            str(pid): {
                "name": str(procs[pid]["name"]),
                "rss_bytes": sum(sizes[i] for i in hold[pid]),
                "pss_bytes": charged[pid],
                "shared_pss_bytes": sum(shares["shared"][i][pid] for i in hold[pid]),
                "buffers": len(hold[pid]),
                "cgroup": cgroup[pid],
            }
            for pid in sorted(procs)
            if hold[pid]
        }
        by_owner: dict[int, list[int]] = {}
        for pid in procs:
            by_owner.setdefault(owner[pid], []).append(pid)
        app_rows = {}
        for uid, pids in sorted(by_owner.items()):
            union = set().union(*(hold[p] for p in pids))
            if not union:
                continue
            rss = sum(sizes[i] for i in union)
            app_rows[str(uid)] = {
                "rss_bytes": rss,
                "pss_bytes": rss if charge == "full" else sum(charged[p] for p in pids),
                "pids": sorted(pids),
            }
        cg_rows = {}
        for node in nodes:
            own = [p for p in procs if cgroup[p] == node]
            sub = [p for p in procs if node in ancestors(cgroup[p])]
            own_u = set().union(*(hold[p] for p in own)) if own else set()
            sub_u = set().union(*(hold[p] for p in sub)) if sub else set()
            own_rss = sum(sizes[i] for i in own_u)
            sub_rss = sum(sizes[i] for i in sub_u)
            cg_rows[node] = {
                "processes": len(own),
                "processes_with_descendants": len(sub),
                "rss_bytes": own_rss,
                "rss_bytes_with_descendants": sub_rss,
                "pss_bytes": own_rss if charge == "full" else sum(charged[p] for p in own),
                "pss_bytes_with_descendants": (
                    sub_rss if charge == "full" else sum(charged[p] for p in sub)
                ),
            }
        report["charges"][charge] = {"processes": processes, "apps": app_rows, "cgroups": cg_rows}
    return report
