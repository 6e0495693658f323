"""`dmaprof import`: turn a file into a capture.

What the file is gets detected (:func:`detect_kind`), or forced with ``--kind``:

* ``collector``: a hand-run collector dump (``sh collect.sh > dump``);
* ``bugreport``: an ``adb bugreport`` zip (only its main ``bugreport-*.txt`` is read, in
  place, never extracted) or that text file;
* ``dmabuf_dump``: the output of ``dmabuf_dump`` (default view, ``-a``, ``-b``, ``-o csv``,
  or several of them in one file).

The capture keeps the source text byte for byte in ``dump.bin``; ``meta.json`` says what it is
(``"source": {"kind": ...}``, docs/capture-format.md).
"""

from __future__ import annotations

import hashlib
import time
import zipfile
from pathlib import Path
from typing import Any

from dmaprof import __version__
from dmaprof.capture.container import MAX_DUMP_BYTES, META_MEMBER, Capture
from dmaprof.capture.dump import DUMP_MAGIC
from dmaprof.capture.metadata import capture_meta
from dmaprof.choices import IMPORT_KINDS
from dmaprof.errors import BadCaptureError

__all__ = ["IMPORT_KINDS", "detect_kind", "import_dump", "import_file"]

_HEAD = 256 * 1024


def import_dump(source: Path, *, serial: str | None = None) -> Capture:
    try:
        size = source.stat().st_size
        if size > MAX_DUMP_BYTES:
            raise BadCaptureError(f"{source}: {size} bytes is over the limit for a dump")
        data = source.read_bytes()
    except OSError as exc:
        raise BadCaptureError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    if DUMP_MAGIC not in data[: 64 * 1024]:
        raise BadCaptureError(
            f"{source}: not a collector dump (run `dmaprof collector > collect.sh` and "
            "`sh collect.sh > dump` on the device)"
        )
    meta = capture_meta(
        data,
        transport={"kind": "import", "serial": serial or "", "source": source.name},
    )
    if not meta["device"]["serial"]:
        meta["device"]["serial"] = serial or meta["device"]["model"] or source.stem
    return Capture(meta, data)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_HEAD)
    except OSError as exc:
        raise BadCaptureError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def detect_kind(path: Path) -> str:
    """collector | bugreport | dmabuf_dump, from the file's first bytes."""
    from dmaprof.sources.bugreport import looks_like_bugreport
    from dmaprof.sources.dmabuf_dump import looks_like_dmabuf_dump

    head = _head(path)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise BadCaptureError(f"{path}: an unreadable zip file ({exc})") from exc
        if META_MEMBER in names:
            raise BadCaptureError(f"{path}: is already a dmaprof capture: nothing to import")
        if any(n.startswith("bugreport") and n.endswith(".txt") for n in names) or (
            "main_entry.txt" in names
        ):
            return "bugreport"
        raise BadCaptureError(f"{path}: a zip file that is not a bugreport (no bugreport-*.txt)")
    if DUMP_MAGIC in head[: 64 * 1024]:
        return "collector"
    text = head.decode("utf-8", "replace")
    if looks_like_bugreport(text):
        return "bugreport"
    if looks_like_dmabuf_dump(text):
        return "dmabuf_dump"
    raise BadCaptureError(
        f"{path}: not a collector dump, a bugreport or dmabuf_dump output (use --kind to say "
        "what it is)"
    )


def import_file(path: Path, *, kind: str = "auto", serial: str | None = None) -> Capture:
    if kind not in IMPORT_KINDS:
        raise ValueError(f"unknown import kind {kind!r}")
    if kind == "auto":
        kind = detect_kind(path)
    if kind == "collector":
        return import_dump(path, serial=serial)
    if kind == "bugreport":
        return _import_bugreport(path, serial)
    return _import_dmabuf_dump(path, serial)


def _base_meta(
    data: bytes, source: dict[str, Any], path: Path, serial: str | None
) -> dict[str, Any]:
    source = {
        **source,
        "file": path.name,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return {
        "dmaprof_version": __version__,
        "collector_version": None,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "transport": {"kind": "import", "serial": serial or "", "source": path.name},
        "source": source,
        "read_failures": {"denied": 0, "vanished": 0, "absent": 0, "other": 0},
    }


def _device(values: dict[str, Any], serial: str | None) -> dict[str, Any]:
    keys = (
        "serial", "model", "manufacturer", "device", "fingerprint", "release", "sdk",
        "build_type", "kernel_release", "kernel_version", "boot_id", "firstboot",
    )  # fmt: skip
    device: dict[str, Any] = {k: values.get(k, None if k == "sdk" else "") for k in keys}
    if serial:
        device["serial"] = serial
    return device


def _collection(wallclock: float | None, uptime: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "complete": True,
        "collector_rc": None,
        "uid": None,
        "gid": None,
        "wallclock_start": int(wallclock) if wallclock is not None else None,
        "uptime_start": uptime,
        "uptime_end": uptime,
        "duration_s": None,
        "host_wallclock": None,
        "host_elapsed_s": None,
        "spawns": None,
        **extra,
    }


def _import_bugreport(path: Path, serial: str | None) -> Capture:
    from dmaprof.sources.bugreport import looks_like_bugreport, parse_bugreport, read_bugreport
    from dmaprof.sources.inputs import decode, dmabuf_dump_of

    data, member = read_bugreport(path)
    text = decode(data)
    if not looks_like_bugreport(text):
        raise BadCaptureError(f"{path}: not a bugreport (no dumpstate header)")
    report = parse_bugreport(text)
    parsed = dmabuf_dump_of(report)
    dmabuf_keys = ("dmabuf_bytes", "ion_bytes")
    if (
        report.dmabuf_dump is None
        and report.dmabuf_stats is None
        and not any(k in report.meminfo for k in dmabuf_keys)
    ):
        raise BadCaptureError(
            f"{path}: this bugreport has no dmabuf_dump sections and no DMA-BUF or ION line in "
            "dumpsys meminfo (Android 11 or older?): nothing to import"
        )
    meta = _base_meta(
        data,
        {
            "kind": "bugreport",
            "member": member,
            "container": "zip" if member is not None else "text",
            "dumpstate": report.header.get("dumpstate"),
            "format_version": report.header.get("Bugreport format version"),
            "dmabuf_formats": sorted(parsed.formats),
            "sections": {
                "dmabuf_dump": report.dmabuf_dump is not None,
                "dmabuf_dump_b": report.dmabuf_stats is not None,
                "meminfo": bool(report.meminfo),
                "ps": bool(report.ps),
                "system_properties": bool(report.props),
            },
        },
        path,
        serial,
    )
    meta["device"] = _device(report.device(), serial)
    meta["collection"] = _collection(
        report.wallclock,
        report.uptime_s,
        uptime_source=report.uptime_source,
        wallclock_source="dumpstate header (device local time)",
    )
    meta["capabilities"] = {
        "dmabuf_dump": report.dmabuf_dump is not None,
        "dmabuf_dump_b": report.dmabuf_stats is not None,
        "meminfo": bool(report.meminfo),
        "ps": bool(report.ps),
    }
    return Capture(meta, data)


def _import_dmabuf_dump(path: Path, serial: str | None) -> Capture:
    from dmaprof.sources.dmabuf_dump import parse_dmabuf_dump
    from dmaprof.sources.inputs import decode

    try:
        size = path.stat().st_size
        if size > MAX_DUMP_BYTES:
            raise BadCaptureError(f"{path}: {size} bytes is over the limit")
        data = path.read_bytes()
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise BadCaptureError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    parsed = parse_dmabuf_dump(decode(data))
    if parsed.empty:
        raise BadCaptureError(f"{path}: no dmabuf_dump output found in it")
    meta = _base_meta(
        data, {"kind": "dmabuf_dump", "dmabuf_formats": sorted(parsed.formats)}, path, serial
    )
    meta["device"] = _device({}, serial)
    # no clock in dmabuf_dump's output: the file's modification time orders a series
    meta["collection"] = _collection(mtime, None, wallclock_source="file modification time")
    meta["capabilities"] = {
        "dmabuf_dump": bool(parsed.processes),
        "dmabuf_dump_a": parsed.table is not None,
        "dmabuf_dump_b": parsed.per_buffer is not None,
    }
    return Capture(meta, data)
