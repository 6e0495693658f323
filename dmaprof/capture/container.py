"""The capture file (``.dmaprof``): metadata plus the raw dump, exactly as pulled.

Layout and rules are documented in docs/capture-format.md. In short: a zip archive with
``meta.json`` (schema ``dmaprof.capture/1``) and ``dump.bin`` (the collector's framed dump,
byte for byte). Captures are written to a temporary file and renamed into place, so a capture
that exists is complete (or says in its metadata that it is partial). Loading never extracts
anything to disk, never unpickles, and refuses members larger than a fixed bound.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmaprof.errors import BadCaptureError, DmaprofError
from dmaprof.files import refuse_to_overwrite

SCHEMA = "dmaprof.capture/1"
SCHEMA_NAME, _, _SCHEMA_MAJOR = SCHEMA.partition("/")
SCHEMA_MAJOR = int(_SCHEMA_MAJOR)
META_MEMBER = "meta.json"
DUMP_MEMBER = "dump.bin"
STDERR_MEMBER = "collector-stderr.txt"
ZIP_COMMENT = b"dmaprof capture; see docs/capture-format.md"

# Bounds that keep a hostile or broken capture from exhausting memory (decompression bombs).
MAX_META_BYTES = 4 * 1024 * 1024
MAX_DUMP_BYTES = 512 * 1024 * 1024
MAX_STDERR_BYTES = 16 * 1024 * 1024
RAW_DUMP_MAGIC = b"DMAPROF-DUMP "


@dataclass
class Capture:
    meta: dict[str, Any]
    dump: bytes
    collector_stderr: bytes = b""
    path: Path | None = None

    @property
    def complete(self) -> bool:
        return bool(self.meta.get("collection", {}).get("complete", True))

    @property
    def device(self) -> dict[str, Any]:
        device = self.meta.get("device", {})
        return device if isinstance(device, dict) else {}

    @property
    def label(self) -> str:
        return str(self.path) if self.path else "capture"


def write_capture(capture: Capture, path: Path, *, overwrite: bool = False) -> Path:
    """Write atomically: a reader never sees a half-written capture under `path`."""
    refuse_to_overwrite(path, overwrite)
    meta = dict(capture.meta)
    meta["schema"] = SCHEMA
    meta["dump"] = {
        "member": DUMP_MEMBER,
        "size_bytes": len(capture.dump),
        "sha256": hashlib.sha256(capture.dump).hexdigest(),
    }
    directory = path.parent if str(path.parent) else Path()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        # mkstemp makes the file 0600; a capture gets the usual mode for new files (umask)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
    except OSError as exc:
        raise DmaprofError(f"cannot write {path}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive,
        ):
            archive.comment = ZIP_COMMENT
            archive.writestr(META_MEMBER, json.dumps(meta, indent=2, sort_keys=True) + "\n")
            archive.writestr(DUMP_MEMBER, capture.dump)
            if capture.collector_stderr:
                archive.writestr(STDERR_MEMBER, capture.collector_stderr)
        with tmp.open("rb") as done:
            os.fsync(done.fileno())
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise DmaprofError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    capture.meta = meta
    capture.path = path
    return path


def load_capture(path: Path) -> Capture:
    """Read and validate a capture; any problem is a BadCaptureError with a clear message."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(RAW_DUMP_MAGIC))
    except FileNotFoundError:
        raise BadCaptureError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadCaptureError(f"{path}: is a directory, not a capture") from None
    except OSError as exc:
        raise BadCaptureError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if head.startswith(RAW_DUMP_MAGIC):
        raise BadCaptureError(
            f"{path}: is a raw collector dump, not a capture; turn it into one with "
            f"`dmaprof import {path} -o CAPTURE.dmaprof`"
        )
    if not head.startswith(b"PK"):
        raise BadCaptureError(f"{path}: not a dmaprof capture")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            meta = _checked_meta(archive, path)
            if DUMP_MEMBER not in names:
                raise BadCaptureError(f"{path}: corrupt capture: {DUMP_MEMBER} is missing")
            dump = _read_member(archive, DUMP_MEMBER, MAX_DUMP_BYTES, path)
            stderr = (
                _read_member(archive, STDERR_MEMBER, MAX_STDERR_BYTES, path)
                if STDERR_MEMBER in names
                else b""
            )
    except zipfile.BadZipFile as exc:
        raise BadCaptureError(f"{path}: truncated or corrupt capture ({exc})") from exc
    except (EOFError, zlib.error, zipfile.LargeZipFile, NotImplementedError, ValueError) as exc:
        raise BadCaptureError(f"{path}: corrupt capture ({exc})") from exc
    except OSError as exc:
        raise BadCaptureError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    expected = meta.get("dump", {})
    if not isinstance(expected, dict) or expected.get("sha256") != hashlib.sha256(dump).hexdigest():
        raise BadCaptureError(f"{path}: corrupt capture: the dump does not match its checksum")
    return Capture(meta=meta, dump=dump, collector_stderr=stderr, path=path)


def _checked_meta(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    """``meta.json`` of a capture whose trailer is whole."""
    if META_MEMBER not in archive.namelist():
        raise BadCaptureError(f"{path}: not a dmaprof capture (no {META_MEMBER})")
    if archive.comment != ZIP_COMMENT:
        # dmaprof always writes this trailer; a short one means the file was cut off
        raise BadCaptureError(f"{path}: truncated or corrupt capture (bad trailer)")
    return _load_meta(path, _read_member(archive, META_MEMBER, MAX_META_BYTES, path))


def capture_identity(path: Path) -> str | None:
    """What names a capture's content without inflating its dump: the dump's SHA-256 from
    ``meta.json`` with the zip's CRC-32 and size of ``dump.bin``. None when the file is
    not a readable capture (:func:`load_capture` then says why)."""
    try:
        with zipfile.ZipFile(path) as archive:
            meta = _checked_meta(archive, path)
            dump = archive.getinfo(DUMP_MEMBER)
    except (
        BadCaptureError,
        OSError,
        KeyError,
        zipfile.BadZipFile,
        EOFError,
        zlib.error,
        ValueError,
        NotImplementedError,
    ):
        return None
    recorded = meta.get("dump")
    sha = recorded.get("sha256") if isinstance(recorded, dict) else None
    if not isinstance(sha, str):
        return None
    return f"{sha}:{dump.CRC:08x}:{dump.file_size}"


def _read_member(archive: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise BadCaptureError(f"{path}: {name} claims {info.file_size} bytes, over the limit")
    with archive.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise BadCaptureError(f"{path}: {name} is larger than the limit of {limit} bytes")
    return data


def _load_meta(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadCaptureError(f"{path}: corrupt capture metadata ({exc})") from exc
    if not isinstance(meta, dict):
        raise BadCaptureError(f"{path}: corrupt capture metadata (not an object)")
    schema = meta.get("schema")
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_NAME + "/"):
        raise BadCaptureError(f"{path}: not a dmaprof capture (schema {schema!r})")
    try:
        major = int(schema.split("/", 1)[1].split(".")[0])
    except ValueError:
        raise BadCaptureError(f"{path}: unreadable capture schema {schema!r}") from None
    if major > SCHEMA_MAJOR:
        raise BadCaptureError(
            f"{path}: written by a newer dmaprof (schema {schema}); this dmaprof reads "
            f"{SCHEMA} and older: upgrade dmaprof"
        )
    return meta
