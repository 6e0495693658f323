"""Sizes, counts, percentages and durations as people write them: ``10MiB``, ``5s``, ``10%``.

Sizes are binary: ``K``, ``KB``, ``KiB`` all mean 1024 bytes (kernel and Android memory
figures are KiB-based, and ``dumpsys`` writes ``MB`` for 2**20), ``M``/``MB``/``MiB`` 2**20,
and so on. A bare number is bytes for a size and seconds for a duration.
"""

from __future__ import annotations

import math
import re

from dmaprof.errors import DmaprofError

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_DURATION_UNITS = {
    "": 1.0,
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([A-Za-z%]*)\s*$")


class QuantityError(DmaprofError):
    """A size, count or duration that cannot be read."""


def parse_size(text: str | int, *, what: str = "size") -> int:
    """``"10MiB"`` -> 10485760. Integers pass through. Fractions are allowed (``1.5GiB``)
    and rounded to whole bytes."""
    if isinstance(text, bool):
        raise QuantityError(f"{what}: expected a size, got {text!r}")
    if isinstance(text, int):
        return text
    match = _NUMBER.match(str(text))
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise QuantityError(
            f"{what}: cannot read {text!r} as a size (examples: 4096, 512KiB, 10MiB, 1.5GiB)"
        )
    value = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    return round(value)


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """``"5s"`` -> 5.0, ``"10m"`` -> 600.0, ``"250ms"`` -> 0.25; a bare number is seconds."""
    if isinstance(text, bool):
        raise QuantityError(f"{what}: expected a duration, got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _NUMBER.match(text)
        if not match or match.group(2).lower() not in _DURATION_UNITS:
            raise QuantityError(
                f"{what}: cannot read {text!r} as a duration (examples: 500ms, 5s, 10m, 1h)"
            )
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise QuantityError(f"{what}: must be more than zero, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """600 -> '10m', 5 -> '5s', 0.25 -> '250ms', 5400 -> '1h30m'."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
