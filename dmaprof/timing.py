"""Stage timings for `-v`: how long each step of a command took, logged on stderr.

A user who reports a slow snapshot runs it again with ``-v`` and gets one line per stage
("push: 41 ms", "run the collector: 812 ms", ...). Every layer may use it: it needs only
the standard library's logging (the CLI decides whether INFO lines are shown).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

log = logging.getLogger("dmaprof.timing")


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Log ``name: N ms`` at INFO when the block ends (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        log.info("%s: %.0f ms", name, (time.perf_counter() - started) * 1000)
