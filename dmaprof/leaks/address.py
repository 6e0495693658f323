"""Sample addresses: ``DIR/@first``, ``DIR/@last`` and ``DIR/@N`` name one sample of a series
wherever a capture is accepted; a bad address is one line and exit 9 (bad input)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from dmaprof.errors import BadCaptureError

_ADDRESS = re.compile(r"@(first|last|\d+)")
USE = "use DIR/@first, DIR/@last or DIR/@N (N: a slot index, as in samples.ndjson)"


class Indexed(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def path(self) -> Path: ...


def split_address(path: Path) -> tuple[Path, str] | None:
    """``DIR/@17`` -> (DIR, "17"); None when ``path`` is no sample address."""
    found = _ADDRESS.fullmatch(path.name)
    return (path.parent, found.group(1)) if found else None


def check_address(path: Path) -> tuple[Path, str] | None:
    """The address's (directory, which); None for a plain path. A name that starts with ``@``
    and names no file is a mistyped address; a directory that is not there is said first."""
    address = split_address(path)
    if address is None:
        if path.name.startswith("@") and not path.exists():
            raise BadCaptureError(f"{path}: not a sample address: {USE}")
        return None
    directory = address[0]
    if not directory.exists():
        raise BadCaptureError(f"{path}: no such series directory: {directory}")
    if not directory.is_dir():
        raise BadCaptureError(f"{path}: {directory} is not a directory (a series is)")
    return address


def pick(path: Path, which: str, refs: Sequence[Indexed], samples_file: Path) -> Path:
    """The file of sample ``which`` among a series' ``refs`` (in slot order)."""
    directory = path.parent
    if not refs:
        if samples_file.exists():
            raise BadCaptureError(f"{path}: the series in {directory} holds no sample yet")
        raise BadCaptureError(
            f"{path}: {directory} is not a series directory (no samples.ndjson, no captures)"
        )
    if which in ("first", "last"):
        return refs[0 if which == "first" else -1].path
    index = int(which)
    for ref in refs:
        if ref.index == index:
            return ref.path
    gap = _gap_error(samples_file, index)
    if gap is not None:
        raise BadCaptureError(f"{path}: slot {index} of {directory} is a gap, no sample: {gap}")
    raise BadCaptureError(
        f"{path}: no sample {index} in {directory} (its samples are "
        f"{refs[0].index}..{refs[-1].index})"
    )


def _gap_error(samples_file: Path, index: int) -> str | None:
    """Why slot ``index`` is a gap, as ``samples.ndjson`` says; None when it is none."""
    if not samples_file.exists():
        return None
    for line in samples_file.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            if entry.get("status") == "gap" and int(entry["index"]) == index:
                return " ".join(str(entry.get("error") or "failed").split())  # one line
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # an unreadable line: read_series said so
    return None
