"""The figures `dmaprof trend` takes from each capture, cached beside the captures.

Analysing a sample takes 0.1-0.5 s, so a series of an hour at one sample a second takes
minutes to analyse; its captures never change. Each capture's trend rows and identity are
kept in ``<its directory>/.dmaprof-cache/<key>.json.gz``, where the key names the capture's
content (the dump's SHA-256 from its metadata, with the zip's CRC-32 and size of the dump:
nothing is inflated to compute it), the charge policy and the dmaprof code that computed it
(a hash of the package's sources: a new version or a local change recomputes). Deleting the
directory deletes the cache with it; a directory that cannot be written is simply not
cached. Entries are JSON, never pickles, and one that cannot be read is recomputed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import asdict, fields
from functools import cache
from pathlib import Path
from typing import Any

from dmaprof.files import write_atomic
from dmaprof.leaks.series import CACHE_DIR
from dmaprof.leaks.seriesstore import sample_identity
from dmaprof.leaks.side import CaptureInfo

CACHE_SCHEMA = "dmaprof.trend-cache/2"  # 2: null figures (unknown in that sample)
ROW_COLUMNS = ("kind", "key", "label", "bytes", "buffers")


@cache
def code_revision() -> str:
    """A hash of dmaprof's own sources: what computed a cached figure."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for source in sorted(package.rglob("*.py")):
        digest.update(str(source.relative_to(package)).encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _entry_path(capture: Path, charge: str) -> Path | None:
    identity = sample_identity(capture)
    if identity is None:
        return None
    key = hashlib.sha256(f"{identity}|{charge}|{code_revision()}".encode()).hexdigest()
    return capture.parent / CACHE_DIR / f"{key[:32]}.json.gz"


Columns = dict[str, list[Any]]  # ROW_COLUMNS -> values; None: an unknown figure


def load_columns(capture: Path, charge: str) -> tuple[CaptureInfo, Columns] | None:
    """The cached identity and trend rows of a capture as plain columns, or None (what
    `trend` reads for thousands of samples: no DataFrame per sample)."""
    entry = _entry_path(capture, charge)
    if entry is None:
        return None
    try:
        doc = json.loads(gzip.decompress(entry.read_bytes()))
        if doc.get("schema") != CACHE_SCHEMA:
            return None
        names = {f.name for f in fields(CaptureInfo)}
        known = {k: v for k, v in doc["info"].items() if k in names}
        info = CaptureInfo(**{**known, "label": str(capture)})
        columns = {c: doc["rows"][c] for c in ROW_COLUMNS}
        if len({len(v) for v in columns.values()}) != 1:
            return None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent, or unreadable: computed again
    return info, columns


def store(capture: Path, charge: str, info: CaptureInfo, rows: Columns) -> None:
    """Keep a capture's trend rows (atomically); a directory that cannot be written is
    left alone."""
    entry = _entry_path(capture, charge)
    if entry is None:
        return
    doc: dict[str, Any] = {
        "schema": CACHE_SCHEMA,
        "info": asdict(info),
        "rows": rows,
    }
    try:
        entry.parent.mkdir(exist_ok=True)
        write_atomic(entry, gzip.compress(json.dumps(doc).encode(), compresslevel=3))
    except OSError:
        return
