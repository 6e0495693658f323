"""Collects what the parsers did not understand: kept and counted, never fatal."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import I64, Scan, decode
from dmaprof.analyze.schema import UNPARSED

#: At most this many unparsed lines are kept as rows; all of them are counted.
MAX_ROWS = 10_000
_CUT = 200


class Unparsed:
    def __init__(self) -> None:
        self._rows: list[tuple[str, str | None, int | None, str, str]] = []
        self.total = 0
        self.by_section: Counter[str] = Counter()

    def add(
        self,
        section: str,
        path: str | None,
        line_no: int | None,
        line: bytes | str,
        reason: str,
    ) -> None:
        self.total += 1
        self.by_section[section] += 1
        if len(self._rows) < MAX_ROWS:
            text = decode(line) if isinstance(line, bytes) else line
            self._rows.append((section, path, line_no, text[:_CUT], reason))

    def add_lines(
        self,
        scan: Scan,
        section: str,
        starts: I64,
        ends: I64,
        reason: str,
        line_nos: I64 | None = None,
        path: str | None = None,
    ) -> None:
        """Record whole lines given by position arrays (vectorised parsers)."""
        n = int(starts.size)
        if n == 0:
            return
        self.total += n
        self.by_section[section] += n
        room = MAX_ROWS - len(self._rows)
        if room <= 0:
            return
        take = min(room, n)
        ends_cut = np.minimum(ends[:take], starts[:take] + 4 * _CUT)
        lines = scan.slices(starts[:take], ends_cut)
        nos: list[int | None] = (
            [int(x) for x in line_nos[:take].tolist()] if line_nos is not None else [None] * take
        )
        for raw, no in zip(lines, nos, strict=True):
            text = decode(raw)
            p = path
            if p is None and section in _PATH_SECTIONS:
                head, sep, _ = raw.partition(b":")
                p = decode(head) if sep else None
            self._rows.append((section, p, no, text[:_CUT], reason))

    def merge(self, other: Unparsed) -> None:
        """Add the lines another collector recorded (e.g. in a worker thread)."""
        self.total += other.total
        for section, count in other.by_section.items():
            self.by_section[section] = self.by_section.get(section, 0) + count
        room = MAX_ROWS - len(self._rows)
        self._rows.extend(other._rows[: max(room, 0)])

    def frame(self) -> pd.DataFrame:
        if not self._rows:
            return UNPARSED.empty()
        sec, path, no, line, reason = zip(*self._rows, strict=True)
        return UNPARSED.frame(
            {
                "section": list(sec),
                "path": list(path),
                "line_no": pd.array(list(no), dtype="Int64"),
                "line": list(line),
                "reason": list(reason),
            }
        )


_PATH_SECTIONS = frozenset({"proc", "fdinfo", "maps", "sysfs_buffers", "global", "ion"})
