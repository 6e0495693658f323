"""dmaprof's CLI in the VM tests, and its JSON compared with the scene's ground truth.

Shared by ``test_vm_groundtruth.py`` (dumps collected by /init), ``test_vm_emulator.py``
(a capture taken through the real adb stack) and ``test_vm_diff.py``:

* :func:`run_dmaprof` runs ``python -m dmaprof ...`` as a subprocess, like a user would;
* :func:`normalize_dmaprof_report` maps ``dmaprof show --format json`` (``dmaprof.report/1``)
  onto the keys of :func:`vm_truth.expected_report`, and :func:`compare_reports` lists every
  figure that differs; :func:`report_mismatches` does both for one capture;
* :func:`expected_diff` computes from two ground truths what ``dmaprof diff`` must report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from vm_truth import GroundTruth, expected_report

ROOT = Path(__file__).resolve().parents[2]
DMAPROF = [sys.executable, "-m", "dmaprof"]


def run_dmaprof(
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """``python -m dmaprof ARGS`` from the repository; with ``check`` a non-zero exit fails
    the test with dmaprof's stderr."""
    res = subprocess.run(
        [*DMAPROF, *map(str, args)],
        cwd=ROOT,
        env=dict(env) if env is not None else None,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if check and res.returncode != 0:
        pytest.fail(
            f"`dmaprof {' '.join(map(str, args))}` exited {res.returncode}:\n"
            + res.stderr.decode(errors="replace")[-3000:],
            pytrace=False,
        )
    return res


def dmaprof_has(command: str) -> bool:
    """Whether the dmaprof CLI has ``command``; a CLI that crashes fails the test."""
    res = run_dmaprof(command, "--help", timeout=60, check=False)
    if res.returncode == 0:
        return True
    err = res.stderr.decode(errors="replace")
    if "No such command" in err:
        return False
    pytest.fail(f"`dmaprof {command} --help` failed (exit {res.returncode}):\n{err[-2000:]}")


def import_dump(dump: Path, capture: Path) -> Path:
    """``dmaprof import DUMP -o CAPTURE``."""
    run_dmaprof("import", dump, "-o", capture, "--force")
    return capture


def show_json(capture: Path) -> dict[str, Any]:
    """``dmaprof show CAPTURE --format json``, parsed."""
    out: dict[str, Any] = json.loads(run_dmaprof("show", capture, "--format", "json").stdout)
    return out


def normalize_dmaprof_report(obj: Any) -> dict[str, Any]:
    """Map ``dmaprof show --format json`` (schema ``dmaprof.report/1``) onto the keys of
    ``expected_report`` (charge ``shared``: pss splits a buffer among its holders)."""
    assert obj.get("schema") == "dmaprof.report/1", f"unknown report schema {obj.get('schema')}"
    t = obj["totals"]
    return {
        "total": {"count": t["buffers"], "size": t["bytes"]},
        "userspace": {"count": t["userspace_buffers"], "size": t["userspace_bytes"]},
        "processes": {
            p["pid"]: {"rss": p["rss_bytes"], "pss": p["pss_bytes"], "count": p["buffers"]}
            for p in obj["processes"]
        },
        "uids": {
            a["uid"]: {"rss": a["rss_bytes"], "pss": a["pss_bytes"], "count": a["buffers"]}
            for a in obj["apps"]
        },
        # subtree figures: expected_report's cgroups cover each path with its descendants
        "cgroups": {
            c["path"]: {
                "rss": c["rss_bytes_with_descendants"],
                "pss": c["pss_bytes_with_descendants"],
            }
            for c in obj["cgroups"]
        },
        "exporters": {
            e["exporter"]: {"count": e["buffers"], "size": e["bytes"]} for e in obj["exporters"]
        },
        "kernel_only": {
            "count": t["kernel_only_buffers"],
            "size": t["kernel_only_bytes"],
            "inos": sorted(b["inode"] for b in obj["kernel_only"]),
        },
    }


def compare_reports(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Mismatches between a normalized dmaprof report and expected_report."""
    out: list[str] = []
    for key in ("total", "userspace"):
        out += [
            f"{key}.{k}: dmaprof {got[key][k]} != truth {v}"
            for k, v in want[key].items()
            if got[key].get(k) != v
        ]
    for key in ("processes", "uids", "cgroups", "exporters"):
        for name, w in want[key].items():
            g = got[key].get(name)
            if g is None:
                if w.get("count", 1) or w.get("rss", 1):  # an empty group may be omitted
                    out.append(f"{key}[{name}]: missing from dmaprof's report")
                continue
            out += [
                f"{key}[{name}].{k}: dmaprof {g[k]} != truth {w[k]}"
                for k in ("rss", "pss", "count", "size")
                if k in g and k in w and g[k] != w[k]
            ]
    want_ko = sorted(b["ino"] for b in want["kernel_only"]["buffers"])
    if got["kernel_only"]["inos"] != want_ko:
        out.append(f"kernel-only inodes: dmaprof {got['kernel_only']['inos']} != truth {want_ko}")
    out += [
        f"kernel_only.{k}: dmaprof {got['kernel_only'][k]} != truth {want['kernel_only'][k]}"
        for k in ("count", "size")
        if got["kernel_only"][k] != want["kernel_only"][k]
    ]
    return out


def report_mismatches(capture: Path, groundtruth_dir: Path) -> list[str]:
    """``dmaprof show --format json`` of a capture against ``expected_report``: every
    per-process, per-uid, per-cgroup, per-exporter, kernel-only and total figure."""
    got = normalize_dmaprof_report(show_json(capture))
    return compare_reports(got, expected_report(groundtruth_dir))


# --------------------------------------------------------------------------- diff


def expected_diff(before_gt: Path, after_gt: Path) -> dict[str, Any]:
    """What ``dmaprof diff BEFORE AFTER`` must report for two snapshots of one scene.

    From the two ground truths alone: the totals before/after, the new and freed inodes
    (every buffer the scene created is alive, so ``freed`` is what vanished from the truth),
    each new buffer's size/exporter/name/holders, the per-process, per-uid, per-cgroup
    (subtree) and per-exporter changes, and the leaker's growth (``leak``: pid, name,
    ``delta_bytes``, ``delta_buffers``).
    """
    a, b = expected_report(before_gt), expected_report(after_gt)
    gta, gtb = GroundTruth(before_gt), GroundTruth(after_gt)
    bufs_a, bufs_b = gta.buffers(), gtb.buffers()
    holders_b = gtb.holders()
    new = {
        ino: {
            "size_bytes": buf.size,
            "exporter": buf.exp_name,
            "name": buf.name or None,
            "holders": sorted(holders_b.get(ino, set())),
        }
        for ino, buf in bufs_b.items()
        if ino not in bufs_a
    }

    def delta(x: dict[Any, Any], y: dict[Any, Any], keys: tuple[str, ...]) -> dict[Any, Any]:
        return {
            k: {f: y.get(k, {}).get(f, 0) - x.get(k, {}).get(f, 0) for f in keys}
            for k in sorted(set(x) | set(y), key=str)
        }

    leaky = gtb.roles["leaky"]
    pa, pb = a["processes"][leaky["pid"]], b["processes"][leaky["pid"]]
    return {
        "totals": {
            "bytes_before": a["total"]["size"],
            "bytes_after": b["total"]["size"],
            "delta_bytes": b["total"]["size"] - a["total"]["size"],
        },
        "new": new,
        "freed": sorted(set(bufs_a) - set(bufs_b)),
        "processes": delta(a["processes"], b["processes"], ("rss", "pss", "count")),
        "uids": delta(a["uids"], b["uids"], ("rss", "pss", "count")),
        "cgroups": delta(a["cgroups"], b["cgroups"], ("rss", "pss")),
        "exporters": delta(a["exporters"], b["exporters"], ("size", "count")),
        "leak": {
            "pid": leaky["pid"],
            "name": leaky["cmdline"].split("\0")[0],
            "delta_bytes": pb["rss"] - pa["rss"],
            "delta_buffers": pb["count"] - pa["count"],
        },
    }
