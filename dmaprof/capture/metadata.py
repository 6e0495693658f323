"""Capture metadata (`meta.json`, docs/capture-format.md) derived from a raw dump."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

from dmaprof import __version__
from dmaprof.capture.dump import Dump, parse_dump
from dmaprof.errors import BadCaptureError

_PROP_LINE = re.compile(r"^\[([^\]]*)\]: \[(.*)\]$")

# (capability, section, path) — a capability is present when its file was read without error.
_GLOBAL_SOURCES = {
    "debugfs_bufinfo": "/sys/kernel/debug/dma_buf/bufinfo",
    "bpf_iter": "/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf",
    "dma_heap_pools": "/sys/kernel/dma_heap/total_pools_kb",
    "ion": "/sys/kernel/ion/total_heaps_kb",
}


def props_of(dump: Dump) -> dict[str, str]:
    section = dump.section("props")
    props: dict[str, str] = {}
    if section is None:
        return props
    for raw in section.lines:
        match = _PROP_LINE.match(raw.decode("utf-8", "replace").strip())
        if match:
            props[match.group(1)] = match.group(2)
    return props


def _global_text(dump: Dump, path: str) -> str:
    section = dump.section("global")
    if section is None:
        return ""
    return section.files.get(path, b"").decode("utf-8", "replace")


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def capabilities_of(dump: Dump) -> dict[str, bool]:
    global_files = dump.section("global")
    files = global_files.files if global_files else {}
    caps = {name: path in files for name, path in _GLOBAL_SOURCES.items()}
    sysfs = dump.section("sysfs_buffers")
    caps["sysfs_buffers"] = bool(sysfs and sysfs.files)
    ion = dump.section("ion")  # ION's debugfs heaps (4.x kernels have no /sys/kernel/ion)
    caps["ion"] = caps["ion"] or bool(ion and ion.files)
    heaps = dump.section("dma_heap")
    caps["dma_heap"] = bool(heaps and any(k == "heap" for k, _ in heaps.kv))
    proc = dump.section("proc")
    proc_files = proc.files if proc else {}
    caps["dmabuf_rss"] = any(path.endswith("/dmabuf_rss") for path in proc_files)
    maps = dump.section("maps")
    denied_maps = {e.pid for e in dump.errors_of("maps") if e.reason == "denied"}
    caps["maps"] = maps is not None and not (
        denied_maps and len(denied_maps) >= _user_process_count(proc_files)
    )
    fdaccess = dump.section("fdaccess")
    denied_fd = len([k for k, _ in fdaccess.kv if k == "denied"]) if fdaccess else 0
    caps["fdinfo"] = dump.section("fdlinks") is not None and denied_fd < max(
        1, _user_process_count(proc_files)
    )
    packages = dump.section("packages")
    caps["packages"] = bool(packages and packages.lines)
    return caps


def _user_process_count(proc_files: dict[str, bytes]) -> int:
    return sum(1 for path, content in proc_files.items() if path.endswith("/cmdline") and content)


def read_failures_of(dump: Dump) -> dict[str, int]:
    counts = Counter(error.reason for error in dump.all_errors())
    return {reason: counts.get(reason, 0) for reason in ("denied", "vanished", "absent", "other")}


def capture_meta(
    raw_dump: bytes,
    *,
    transport: dict[str, Any],
    host_wallclock: float | None = None,
    host_elapsed_s: float | None = None,
    collector_rc: int | None = 0,
    device_tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything meta.json records, read from the dump itself (so it can be re-derived)."""
    dump = parse_dump(raw_dump)
    if dump.truncated:
        raise BadCaptureError(
            "the collector's dump is truncated (no end marker): the collector was killed or "
            "the device went away; no capture written"
        )
    meta_kv = dump.section("meta")
    collector = meta_kv.kv_dict() if meta_kv else {}
    end = dump.section("end")
    end_kv = end.kv_dict() if end else {}
    props = props_of(dump)
    tags = device_tags or {}
    version_text = _global_text(dump, "/proc/version").strip()
    kernel_release = version_text.split()[2] if version_text.startswith("Linux version ") else ""
    uptime_start = _float(collector.get("uptime_start"))
    uptime_end = _float(end_kv.get("uptime_end"))
    serial = str(transport.get("serial") or "")
    return {
        "dmaprof_version": __version__,
        "collector_version": _int(collector.get("collector_version")),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "transport": transport,
        "device": {
            "serial": serial,
            "model": props.get("ro.product.model") or tags.get("model", ""),
            "manufacturer": props.get("ro.product.manufacturer", ""),
            "device": props.get("ro.product.device") or tags.get("device", ""),
            "fingerprint": props.get("ro.build.fingerprint", ""),
            "release": props.get("ro.build.version.release", ""),
            "sdk": _int(props.get("ro.build.version.sdk")),
            "build_type": props.get("ro.build.type", ""),
            "kernel_release": kernel_release,
            "kernel_version": version_text,
            "boot_id": _global_text(dump, "/proc/sys/kernel/random/boot_id").strip(),
            "firstboot": props.get("ro.runtime.firstboot", ""),
        },
        "collection": {
            "complete": True,
            "collector_rc": collector_rc,
            "uid": _int(collector.get("uid")),
            "gid": _int(collector.get("gid")),
            "wallclock_start": _int(collector.get("wallclock_start")),
            "uptime_start": uptime_start,
            "uptime_end": uptime_end,
            "duration_s": (
                round(uptime_end - uptime_start, 3)
                if uptime_start is not None and uptime_end is not None
                else None
            ),
            "host_wallclock": host_wallclock,
            "host_elapsed_s": round(host_elapsed_s, 3) if host_elapsed_s is not None else None,
            "spawns": _int(end_kv.get("spawns")),
        },
        "capabilities": capabilities_of(dump),
        "read_failures": read_failures_of(dump),
    }
