"""Trend figures computed while `dmaprof record` runs, so `trend` is fast the moment it stops.

Each sample, once written, is handed to one worker process that analyses it and stores its
trend rows in the sample cache (:mod:`dmaprof.leaks.samplecache`, the same entries `trend`
reads). The worker runs beside the sampling loop, never in it: a sample's analysis
(0.1-0.5 s on a big phone) does not delay the next slot. The queue holds paths only; when
recording ends the samples still queued are analysed before `record` returns (Ctrl-C skips
them: `trend` computes what the cache lacks). Any failure of the worker only leaves figures
uncached.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


def _ignore_sigint() -> None:
    # Ctrl-C is the recording's to handle: the worker must not die mid-entry
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def figures_of(path: Path, charge: str) -> bool:
    """Analyse one sample into the cache (in the worker); False when it could not be read."""
    from dmaprof.leaks.trend import sample_outcome

    return not isinstance(sample_outcome(path, charge, True), str)


class SampleFigures:
    """``with SampleFigures() as figures: record_series(..., on_sample=figures.submit)``."""

    def __init__(self, charge: str = "shared") -> None:
        self.charge = charge
        self._pool: ProcessPoolExecutor | None = None
        self._pending: deque[Future[bool]] = deque()
        self.submitted = 0
        self.failed = 0

    def __enter__(self) -> SampleFigures:
        try:
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("forkserver"), initializer=_ignore_sigint
            )
        except (OSError, ValueError) as exc:  # no processes here: trend computes them later
            log.debug("no worker for trend figures: %s", exc)
        return self

    def submit(self, path: Path) -> None:
        if self._pool is None:
            return
        while self._pending and self._pending[0].done():
            self._settle(self._pending.popleft())
        try:
            self._pending.append(self._pool.submit(figures_of, path, self.charge))
            self.submitted += 1
        except RuntimeError as exc:  # a broken pool: the rest stays uncached
            log.debug("trend figures not computed for %s: %s", path, exc)
            self._pool = None

    def _settle(self, future: Future[bool]) -> None:
        try:
            ok = future.result()
        except Exception as exc:  # a worker failure only loses the cache entry
            log.debug("trend figures failed: %s", exc)
            ok = False
        self.failed += not ok

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is None:
            return
        if kind is None:
            while self._pending:
                self._settle(self._pending.popleft())
            self._pool.shutdown(wait=True)
        else:
            self._pool.shutdown(wait=False, cancel_futures=True)
