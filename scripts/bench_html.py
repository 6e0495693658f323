"""How big the HTML report of a 2,000-process, 30,000-buffer capture is, how long it takes to
write, and how long headless Chromium takes to draw it (goals: under 10 MB, open in under 3 s).

    .venv/bin/python scripts/bench_html.py [--rounds 3]

The capture comes from scripts/bench_analyze.py's generator (--save), imported with `dmaprof
import`; the report is written by `dmaprof show --format html`; the page is opened from its
file in Debian's chromium (Playwright, never `playwright install`) and timed until the page
says it is drawn (body[data-ready='1']), in a fresh tab each round.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.leaks.test_html_report import CHROMIUM, FLAGS  # noqa: E402  (the tests' browser)


def dmaprof(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "dmaprof", *args], check=True, cwd=REPO)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dump, capture, page = work / "big.dump", work / "big.dmaprof", work / "big.html"
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "bench_analyze.py"),
                "--repeat",
                "1",
                "--save",
                str(dump),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        dmaprof("import", str(dump), "-o", str(capture))
        started = time.perf_counter()
        dmaprof("show", str(capture), "--format", "html", "-o", str(page))
        written = time.perf_counter() - started
        load = os.getloadavg()[0]
        print(
            f"report: {page.stat().st_size / 2**20:.2f} MiB, written in {written:.1f} s "
            f"(load average {load:.2f} on {os.cpu_count()} CPUs)"
        )
        times = []
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(work / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            for _ in range(args.rounds):
                tab = context.new_page()
                t0 = time.perf_counter()
                tab.goto(page.as_uri())
                tab.wait_for_selector("body[data-ready='1']", timeout=120_000)
                times.append(time.perf_counter() - t0)
                tab.close()
            context.close()
        print(
            f"drawn in Chromium: best {min(times):.2f} s, median "
            f"{sorted(times)[len(times) // 2]:.2f} s over {len(times)} rounds (goal < 3 s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
