"""scripts/bench_series_store.py runs as the README says and prints its figures (a short run:
the README's 300-sample figures come from the same code)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_series_store_prints_bytes_per_sample_and_the_verdict() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "scripts/bench_series_store.py",
            "--samples",
            "20",
            "--leak-every",
            "5",
            "--captures",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = run.stdout.splitlines()
    for label in ("steady", "leaking"):
        [line] = [line for line in lines if line.startswith(label)]
        series, capture = map(float, re.findall(r"([\d.]+) kB/sample", line))
        assert 0 < series < capture / 10, line  # even 20 samples, key included, beat 1/10
        assert "goal <= 1/10: met" in line
    assert re.search(r"^peak RSS \d+ MiB$", lines[-1])
