"""scripts/bench_series_store.py and scripts/bench_series.py run as the README says and print
their figures (short runs: the README's figures come from the same code)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def bench(script: str, *args: str) -> list[str]:
    """The lines a benchmark prints on stdout (it must exit 0)."""
    run = subprocess.run(
        [sys.executable, f"scripts/{script}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return run.stdout.splitlines()


def test_bench_series_store_prints_bytes_per_sample_and_the_verdict() -> None:
    lines = bench(
        "bench_series_store.py", "--samples", "20", "--leak-every", "5", "--captures", "1"
    )
    for label in ("steady", "leaking"):
        [line] = [line for line in lines if line.startswith(label)]
        series, capture = map(float, re.findall(r"([\d.]+) kB/sample", line))
        assert 0 < series < capture / 10, line  # even 20 samples, key included, beat 1/10
        assert "goal <= 1/10: met" in line
    assert re.search(r"^peak RSS \d+ MiB$", lines[-1])


def test_bench_series_times_a_cold_and_a_warm_trend_of_a_recorded_series() -> None:
    lines = bench("bench_series.py", "--samples", "24", "--leak-every", "6")
    assert re.match(r"series: 24 samples of a 9\.3 MB dump, .* every 6 samples", lines[0])
    for label in ("cold", "warm"):
        [line] = [line for line in lines if line.startswith(f"trend {label}:")]
        assert "24 samples" in line and "the goal is for 3600 samples" in line, line
        # the leaker (pid 394) and its 16 MiB steps are found whether the figures are cached
        assert "'394@100'" in line and "'leaky'" in line, line
    assert lines[-1].startswith("load average ")
