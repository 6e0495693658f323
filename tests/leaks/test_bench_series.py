"""scripts/bench_series.py runs as the README says and prints its figures (a short run: the
README's 3,600-sample figures come from the same code)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_series_times_a_cold_and_a_warm_trend_of_a_recorded_series() -> None:
    run = subprocess.run(
        [sys.executable, "scripts/bench_series.py", "--samples", "24", "--leak-every", "6"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert re.match(r"series: 24 samples of a 9\.3 MB dump, .* every 6 samples", lines[0])
    for label in ("cold", "warm"):
        [line] = [line for line in lines if line.startswith(f"trend {label}:")]
        assert "24 samples" in line and "goal <= " in line, line
        # the leaker (pid 394) and its 16 MiB steps are found whether the figures are cached
        assert "'394@100'" in line and "'leaky'" in line, line
    assert lines[-1].startswith("load average ")
