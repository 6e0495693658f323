"""Files written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dmaprof.errors import DmaprofError


def refuse_to_overwrite(path: Path, overwrite: bool) -> None:
    """The one error for an output file that exists, unless ``--force`` (``overwrite``)."""
    if path.exists() and not overwrite:
        raise DmaprofError(f"{path} exists; will not overwrite it without --force")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``: a
    reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
