"""Shared helpers for the analysis tests (samples, scenes, dumps)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SAMPLES = ROOT / "fixtures" / "samples"
DATA = HERE / "data"

if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def sample_text(name: str) -> bytes:
    """A sample's published text: the file without its leading ``# source/device/note``
    header lines (the source's own lines, even those starting with ``#``, are kept)."""
    lines = (SAMPLES / name).read_bytes().split(b"\n")
    i = 0
    while (
        i < len(lines)
        and lines[i].startswith(b"# ")
        and any(lines[i][2:].startswith(k) for k in (b"source", b"device", b"note"))
    ):
        i += 1
    return b"\n".join(lines[i:])


def sample_parts(name: str) -> dict[str, bytes]:
    """Samples holding several blocks under ``## TITLE`` lines."""
    out: dict[str, bytes] = {}
    title = None
    buf: list[bytes] = []
    for line in sample_text(name).split(b"\n"):
        if line.startswith(b"## "):
            if title is not None:
                out[title] = b"\n".join(buf)
            title = line[3:].decode()
            buf = []
        else:
            buf.append(line)
    if title is not None:
        out[title] = b"\n".join(buf)
    return out


@pytest.fixture
def samples() -> Path:
    return SAMPLES
