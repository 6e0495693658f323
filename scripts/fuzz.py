"""Run the fuzz targets of tests/fuzzing.py with a large budget and print the counts.

    .venv/bin/python scripts/fuzz.py [--cases 100000]

Each target gets an equal share of the cases. Exits non-zero on the first failure, with the
smallest failing input hypothesis finds.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzzing import (
    SAMPLE_BYTES,
    SAMPLE_DUMP,
    capture_bytes_with,
    check_dump,
    check_load_capture,
    check_parse_dump,
    mutated,
    mutated_dump,
)


def _counting(check: Callable[[bytes], None], runs: list[int]) -> Callable[[bytes], None]:
    def counted(data: bytes) -> None:
        runs[0] += 1
        check(data)

    return counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    targets = {
        "capture: mutated file": (mutated(SAMPLE_BYTES), check_load_capture),
        "capture: random bytes": (st.binary(max_size=4096), check_load_capture),
        "capture: hostile members": (
            st.tuples(st.binary(max_size=512), mutated(SAMPLE_DUMP)).map(
                lambda pair: capture_bytes_with(*pair)
            ),
            check_load_capture,
        ),
        "dump framing: mutated lines": (mutated_dump(), check_parse_dump),
        "dump framing: mutated bytes": (mutated(SAMPLE_DUMP), check_parse_dump),
        "analysis: mutated lines": (mutated_dump(), check_dump),
        "analysis: mutated bytes": (mutated(SAMPLE_DUMP), check_dump),
    }
    # a whole analysis costs ~50 ms: those targets get a tenth of the others' share
    weights = {name: (1 if name.startswith("analysis") else 10) for name in targets}
    unit = args.cases / sum(weights.values())
    total = 0
    for name, (strategy, check) in targets.items():
        share = max(1, round(unit * weights[name]))
        runs = [0]
        counted = _counting(check, runs)

        started = time.monotonic()
        test = settings(
            max_examples=share,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(strategy)(counted))
        test()
        total += runs[0]
        print(
            f"{name}: {runs[0]} cases, no failure ({time.monotonic() - started:.0f} s)", flush=True
        )
    print(f"total: {total} cases, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
