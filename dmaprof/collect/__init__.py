"""Scripts that run on the device. They are package data, loaded with importlib.resources."""

from __future__ import annotations

import re
from importlib.resources import files


def collector_script() -> bytes:
    """The collector (`collect.sh`): a POSIX sh script, see docs/dump-format.md."""
    return files("dmaprof.collect").joinpath("collect.sh").read_bytes()


def collector_version() -> int:
    match = re.search(rb"^COLLECTOR_VERSION=(\d+)", collector_script(), re.MULTILINE)
    return int(match.group(1)) if match else 0
