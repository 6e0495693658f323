"""Small sections: ``meta``, ``props``, ``packages``, ``dma_heap``, ``fdaccess``, ``tasks``,
``end``, the kernel-wide counters of ``global`` and the legacy ``ion`` heaps."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze.globalfiles import (
    BOOT_ID,
    DMA_HEAP_POOLS,
    ION_HEAPS,
    ION_POOLS,
    UPTIME,
    VERSION,
    GlobalFiles,
)
from dmaprof.analyze.ion import IonHeap, parse_ion_heap
from dmaprof.analyze.schema import ION_CLIENTS, PACKAGES, TASKS
from dmaprof.analyze.unparsed import Unparsed
from dmaprof.capture.dump import Dump

_PROP = re.compile(r"^\[(.*?)\]:\s*\[(.*)\]\s*$")
_PACKAGE = re.compile(r"^package:(\S+)\s+uid:(\d+(?:,\d+)*)\s*$")
_KERNEL = re.compile(r"Linux version (\S+)")
_RELEASE = re.compile(r"^(\d+)\.(\d+)")

PROP_KEYS = {
    "ro.product.model": "model",
    "ro.product.device": "device",
    "ro.product.manufacturer": "manufacturer",
    "ro.build.fingerprint": "fingerprint",
    "ro.build.version.release": "android_release",
    "ro.build.version.sdk": "sdk",
    "ro.build.type": "build_type",
    "ro.debuggable": "debuggable",
    "ro.kernel.version": "kernel_prop",
    # the wall clock (ms) when this boot's system_server started: names the boot, like the
    # kernel's boot_id; bugreports carry only this one
    "ro.runtime.firstboot": "firstboot",
}


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip().split()[0])
    except (ValueError, IndexError):
        return None


def parse_props(dump: Dump, unparsed: Unparsed) -> dict[str, str]:
    sec = dump.section("props")
    props: dict[str, str] = {}
    if sec is None:
        return props
    for no, raw in enumerate(sec.lines, 1):
        text = raw.decode("utf-8", "backslashreplace")
        if not text.strip():
            continue
        m = _PROP.match(text)
        if m is None:
            unparsed.add("props", None, no, text, "not '[key]: [value]'")
            continue
        props[m.group(1)] = m.group(2)
    return props


def device_info(dump: Dump, files: GlobalFiles, props: dict[str, str]) -> dict[str, Any]:
    """What the dump says about the device and the capture (JSON-ready values)."""
    meta = dump.section("meta")
    end = dump.section("end")
    m = meta.kv_dict() if meta else {}
    e = end.kv_dict() if end else {}
    info: dict[str, Any] = {}
    for key, out in PROP_KEYS.items():
        if key in props:
            info[out] = props[key]
    sdk = _int(info.get("sdk"))
    if sdk is not None:
        info["sdk"] = sdk
    version = files.content(VERSION)
    if version is not None:
        text = version.decode("utf-8", "backslashreplace").strip()
        info["kernel_version_string"] = text
        km = _KERNEL.search(text)
        if km:
            info["kernel_release"] = km.group(1)
    elif "kernel_prop" in info:
        info["kernel_release"] = str(info["kernel_prop"]).split()[0]
    release = info.get("kernel_release")
    if isinstance(release, str):
        rm = _RELEASE.match(release)
        if rm:
            info["kernel_major"] = int(rm.group(1))
            info["kernel_minor"] = int(rm.group(2))
    boot = files.content(BOOT_ID)
    if boot is not None:
        info["boot_id"] = boot.decode("ascii", "replace").strip()
    uptime = files.content(UPTIME)
    info["collector_version"] = m.get("collector_version")
    info["capture_uid"] = _int(m.get("uid"))
    info["capture_gid"] = _int(m.get("gid"))
    info["collector_pid"] = _int(m.get("pid"))
    # False: `pid` names no process of the dump's /proc (None: an older collector, which
    # did not say: trusted as before)
    in_proc = m.get("pid_in_proc")
    info["collector_pid_in_proc"] = None if in_proc is None else in_proc == "1"
    info["shell"] = m.get("shell")
    info["wallclock_start"] = _int(m.get("wallclock_start"))
    info["uptime_start"] = _float(m.get("uptime_start")) or (
        _float(uptime.decode("ascii", "replace")) if uptime is not None else None
    )
    info["uptime_end"] = _float(e.get("uptime_end"))
    info["spawns"] = _int(e.get("spawns"))
    info["dump_format"] = dump.version
    info["dump_truncated"] = dump.truncated
    return {k: v for k, v in info.items() if v is not None}


def parse_packages(dump: Dump, unparsed: Unparsed) -> pd.DataFrame:
    sec = dump.section("packages")
    pkgs: list[str] = []
    uids: list[int] = []
    if sec is not None:
        for no, raw in enumerate(sec.lines, 1):
            text = raw.decode("utf-8", "backslashreplace").strip()
            if not text:
                continue
            m = _PACKAGE.match(text)
            if m is None:
                if text.startswith("package:"):
                    # a package without a uid (old `pm` without -U support)
                    unparsed.add("packages", None, no, text, "package line without uid")
                else:
                    unparsed.add("packages", None, no, text, "not 'package:NAME uid:UID'")
                continue
            for u in m.group(2).split(","):
                pkgs.append(m.group(1))
                uids.append(int(u))
    return PACKAGES.frame({"package": pkgs, "uid": np.array(uids, dtype=np.int32)})


def parse_heaps(dump: Dump) -> tuple[list[str], bool]:
    """``/dev/dma_heap`` names, and whether the listing was made (False: no section)."""
    sec = dump.section("dma_heap")
    if sec is None:
        return [], False
    names = [v for k, v in sec.kv if k == "heap" and v]
    return names, True


def parse_fdaccess(dump: Dump) -> tuple[set[int], bool]:
    sec = dump.section("fdaccess")
    if sec is None:
        return set(), False
    denied: set[int] = set()
    for k, v in sec.kv:
        if k == "denied" and v.strip().isdigit():
            denied.add(int(v))
    return denied, True


def parse_tasks(dump: Dump, unparsed: Unparsed) -> pd.DataFrame:
    sec = dump.section("tasks")
    pids: list[int] = []
    tids: list[int] = []
    if sec is not None:
        for k, v in sec.kv:
            if k != "task":
                continue
            p, sep, t = v.partition("/")
            if sep and p.isdigit() and t.isdigit():
                pids.append(int(p))
                tids.append(int(t))
            else:
                unparsed.add("tasks", None, None, f"{k}={v}", "not task=<pid>/<tid>")
    return TASKS.frame({"pid": np.array(pids, np.int32), "tid": np.array(tids, np.int32)})


def kib_counters(files: GlobalFiles, unparsed: Unparsed) -> list[tuple[str, int, int | None, str]]:
    """(counter, bytes, count, path) of the KiB files of the global section."""
    out: list[tuple[str, int, int | None, str]] = []
    for counter, path in (
        ("dma_heap_total_pools", DMA_HEAP_POOLS),
        ("ion_total_heaps", ION_HEAPS),
        ("ion_total_pools", ION_POOLS),
    ):
        content = files.content(path)
        if content is None:
            continue
        text = content.decode("ascii", "replace").strip()
        if text.isdigit():
            out.append((counter, int(text) * 1024, None, path))
        else:
            unparsed.add("global", path, 1, text, "not a number of KiB")
    return out


def parse_ion(dump: Dump, unparsed: Unparsed) -> tuple[list[IonHeap], pd.DataFrame]:
    sec = dump.section("ion")
    heaps: list[IonHeap] = []
    if sec is None:
        return heaps, ION_CLIENTS.empty()
    prefix = "/sys/kernel/debug/ion/heaps/"
    for path, content in sec.files.items():
        if not path.startswith(prefix):
            unparsed.add("ion", path, None, content[:200], "not an ION heap file")
            continue
        heap = parse_ion_heap(path[len(prefix) :], content)
        heaps.append(heap)
        for no, line, reason in heap.unparsed:
            unparsed.add("ion", path, no, line, reason)
    for raw in sec.stray_lines:
        unparsed.add("ion", None, None, raw, "line without a path")
    rows = [(h.heap, c, p, s, o) for h in heaps for (c, p, s, o) in h.clients]
    if not rows:
        return heaps, ION_CLIENTS.empty()
    heap_c, client, pid, size, orph = zip(*rows, strict=True)
    frame = ION_CLIENTS.frame(
        {
            "heap": list(heap_c),
            "client": list(client),
            "pid": np.array(pid, np.int32),
            "size_bytes": np.array(size, np.int64),
            "orphaned": np.array(orph, np.bool_),
        }
    )
    return heaps, frame
