"""The compact series (``dmaprof.series/2``): each sample a zstd frame against a key sample.

Consecutive samples of a phone are nearly identical, so a sample is stored as the zstd
frame of its content compressed with an earlier sample (its *key*) as a raw-content
dictionary: a steady phone costs kilobytes per sample instead of a capture's megabyte.
A key is compressed on its own. Every sample file stands alone with its key: loading one
inflates at most two frames, whatever the series' length. Layout: docs/series-format.md.

A sample file (``sample-NNNNN.dmaprof-sample``)::

    DMAPROF-SAMPLE 1 {"sha256": ..., "meta_bytes": ..., "dump_bytes": ..., ...}\\n
    <one zstd frame: meta.json (one line) + dump.bin + collector-stderr.txt>

The collector's framing nonce changes every run; it is swapped for the key's before
compressing (only when the key's nonce is absent from the content: exactly reversible),
and the SHA-256 of the content is checked on every load.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dmaprof.capture.container import (
    MAX_DUMP_BYTES,
    MAX_META_BYTES,
    MAX_STDERR_BYTES,
    Capture,
    capture_identity,
)
from dmaprof.errors import BadCaptureError
from dmaprof.files import write_atomic

SAMPLE_SUFFIX = ".dmaprof-sample"
MAGIC = b"DMAPROF-SAMPLE 1 "
MAX_HEADER = 64 * 1024
LEVEL = 3
#: a new key after this many samples (bounds what one unreadable key costs), or when a
#: sample's frame outgrows a quarter of its key's (the phone drifted from its key)
KEY_EVERY = 600
KEY_DRIFT = 4
_NONCE = re.compile(rb"DMAPROF-DUMP \d+ ([0-9a-f]{8,64})\n")


def _nonce(dump: bytes) -> bytes | None:
    found = _NONCE.match(dump[:200])
    return found.group(1) if found else None


def _window_log(key_size: int) -> int:
    # the key and a sample of about its size must fit the window for matches into the key
    return min(27, max(20, (2 * key_size + (1 << 20)).bit_length()))


def _content(capture: Capture) -> tuple[bytes, dict[str, Any]]:
    meta = json.dumps(capture.meta, sort_keys=True, separators=(",", ":")).encode()
    content = meta + capture.dump + capture.collector_stderr
    header = {
        "sha256": hashlib.sha256(content).hexdigest(),
        "meta_bytes": len(meta),
        "dump_bytes": len(capture.dump),
        "stderr_bytes": len(capture.collector_stderr),
    }
    return content, header


@dataclass
class _Key:
    name: str
    content: bytes
    nonce: bytes | None
    frame_bytes: int
    used: int = 0
    compressor: Any = None


class SampleWriter:
    """Writes the samples of one compact series, choosing its keys."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._key: _Key | None = None

    def write(self, capture: Capture, name: str) -> tuple[Path, dict[str, Any]]:
        """Write ``capture`` as ``name`` atomically; (its path, its header)."""
        import zstandard

        content, base = _content(capture)
        header = dict(base)
        key = self._key
        nonce = _nonce(capture.dump)
        if key is None or key.used >= KEY_EVERY or len(content) > 2 * len(key.content):
            frame, header = self._as_key(zstandard, content, base, name, nonce)
        else:
            data = content
            if nonce and key.nonce and nonce != key.nonce and b"@" + key.nonce not in content:
                data = content.replace(b"@" + nonce, b"@" + key.nonce)
                header["nonce"] = nonce.decode()
            frame = key.compressor.compress(data)
            header["key"] = key.name
            key.used += 1
            if len(frame) * KEY_DRIFT > key.frame_bytes:  # drifted: this sample as a key
                frame, header = self._as_key(zstandard, content, base, name, nonce)
        path = self.directory / name
        line = MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n"
        write_atomic(path, line + frame)
        return path, header

    def _as_key(
        self, zstandard: Any, content: bytes, header: dict[str, Any], name: str, nonce: bytes | None
    ) -> tuple[bytes, dict[str, Any]]:
        frame = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compress(content)
        params = zstandard.ZstdCompressionParameters.from_level(
            LEVEL,
            window_log=_window_log(len(content)),
            hash_log=22,
            chain_log=22,
            write_checksum=1,
        )
        params_dict = zstandard.ZstdCompressionDict(
            content, dict_type=zstandard.DICT_TYPE_RAWCONTENT
        )
        params_dict.precompute_compress(compression_params=params)
        compressor = zstandard.ZstdCompressor(dict_data=params_dict, compression_params=params)
        self._key = _Key(name, content, nonce, len(frame), compressor=compressor)
        return frame, {**header, "key": None}


# --------------------------------------------------------------------------- reading


def is_sample_file(path: Path) -> bool:
    return path.name.endswith(SAMPLE_SUFFIX)


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """A sample file's header and the offset of its frame."""
    try:
        with path.open("rb") as handle:
            head = handle.read(MAX_HEADER)
    except FileNotFoundError:
        raise BadCaptureError(f"{path}: no such file") from None
    except OSError as exc:
        raise BadCaptureError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    end = head.find(b"\n")
    if not head.startswith(MAGIC) or end < 0:
        raise BadCaptureError(f"{path}: not a dmaprof series sample")
    try:
        header = json.loads(head[len(MAGIC) : end])
        if not isinstance(header, dict) or not isinstance(header.get("sha256"), str):
            raise ValueError("no sha256")
    except ValueError as exc:
        raise BadCaptureError(f"{path}: corrupt sample header ({exc})") from None
    return header, end + 1


def sample_identity(path: Path) -> str | None:
    """What names a sample's content (for the trend cache) without inflating it."""
    if not is_sample_file(path):
        return capture_identity(path)
    try:
        header, _ = read_header(path)
    except BadCaptureError:
        return None
    return f"{header['sha256']}:{header.get('dump_bytes')}"


@lru_cache(maxsize=2)
def _key_content(path: Path, mtime_ns: int) -> tuple[bytes, bytes | None]:
    """A key's content and its framing nonce (kept: every sample of the key needs both)."""
    content = _inflate(path, None)
    return content, _nonce(content[int(_header_of(path).get("meta_bytes") or 0) :])


def _inflate(path: Path, key: bytes | None) -> bytes:
    import zstandard

    header, offset = read_header(path)
    limit = MAX_META_BYTES + MAX_DUMP_BYTES + MAX_STDERR_BYTES
    size = sum(int(header.get(k) or 0) for k in ("meta_bytes", "dump_bytes", "stderr_bytes"))
    if size > limit:
        raise BadCaptureError(f"{path}: claims {size} bytes, over the limit")
    frame = path.read_bytes()[offset:]
    try:
        if key is None:
            out = zstandard.ZstdDecompressor().decompress(frame, max_output_size=size)
        else:
            zdict = zstandard.ZstdCompressionDict(key, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            out = zstandard.ZstdDecompressor(dict_data=zdict, max_window_size=1 << 27).decompress(
                frame, max_output_size=size
            )
    except zstandard.ZstdError as exc:
        raise BadCaptureError(f"{path}: truncated or corrupt sample ({exc})") from None
    return bytes(out)


def load_sample(path: Path) -> Capture:
    """A sample of a compact series as a capture (its key read too, when it has one)."""
    header, _ = read_header(path)
    key_name = header.get("key")
    key: bytes | None = None
    key_nonce: bytes | None = None
    if key_name:
        key_path = path.parent / str(key_name)
        try:
            key, key_nonce = _key_content(key_path, key_path.stat().st_mtime_ns)
        except (BadCaptureError, OSError) as exc:
            raise BadCaptureError(
                f"{path}: its key sample {key_name} is unreadable ({exc})"
            ) from None
    content = _inflate(path, key)
    if header.get("nonce") and key_nonce:
        content = content.replace(b"@" + key_nonce, b"@" + str(header["nonce"]).encode())
    if hashlib.sha256(content).hexdigest() != header["sha256"]:
        raise BadCaptureError(f"{path}: corrupt sample: its content does not match its checksum")
    m, d = int(header["meta_bytes"]), int(header["dump_bytes"])
    try:
        meta = json.loads(content[:m])
    except ValueError as exc:
        raise BadCaptureError(f"{path}: corrupt sample metadata ({exc})") from None
    return Capture(meta=meta, dump=content[m : m + d], collector_stderr=content[m + d :], path=path)


def _header_of(path: Path) -> dict[str, Any]:
    return read_header(path)[0]
