"""How big the HTML report of a 2,000-process, 30,000-buffer capture is, how long it takes to
write, and how long headless Chromium takes to open it (goals: under 10 MB, open in under 3 s).

    .venv/bin/python scripts/bench_html.py [--rounds 5] [--page FILE.html]

The capture comes from scripts/bench_analyze.py's generator (--save), imported with `dmaprof
import`; the report is written by `dmaprof show --format html` (--page: time that file
instead). Each round opens the page from its file in a fresh tab of Debian's chromium
(Playwright, never `playwright install`), the tests' browser and flags.

"Opens" is the time from the navigation until the page says its first view is drawn and
painted (body[data-ready]): the header and the notes, the treemap, and the first rows of every
table (one frame after they are in the page). "Complete" is until every chart below is drawn
too (body[data-complete]; the Sankey and trend charts are drawn when idle or scrolled to).
Both are wall times seen from Python, file reading and parsing included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.leaks.test_html_report import CHROMIUM, FLAGS  # noqa: E402  (the tests' browser)

# the page's own marks (ms since the navigation), if it has them
PHASES = """(() => { const t = Object.fromEntries(window.DMAPROF_TIMING || []);
  return [t.start, t.ready, t.complete]; })()"""
# an older page has no data block and never says "complete"
DONE = "document.body.dataset.complete || !document.getElementById('dmaprof-data')"


def dmaprof(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "dmaprof", *args], check=True, cwd=REPO)


def write_report(work: Path) -> Path:
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
    print(f"report written in {time.perf_counter() - started:.1f} s")
    return page


def open_once(context: Any, page: Path) -> tuple[float, float, list[float | None]]:
    tab = context.new_page()
    t0 = time.perf_counter()
    tab.goto(page.as_uri(), wait_until="commit")
    tab.wait_for_selector("body[data-ready='1']", state="attached", timeout=120_000)
    ready = time.perf_counter() - t0
    tab.wait_for_function(DONE, timeout=120_000)
    complete = time.perf_counter() - t0
    marks = tab.evaluate(PHASES)
    tab.close()
    return ready, complete, marks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--page", type=Path, help="time this HTML report instead of writing one")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        page = args.page.resolve() if args.page else write_report(work)
        print(f"report: {page.stat().st_size / 2**20:.2f} MiB")
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(work / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            rounds = [open_once(context, page) for _ in range(args.rounds)]
            context.close()
        load = os.getloadavg()
        ready, complete = [r[0] for r in rounds], [r[1] for r in rounds]
        print(
            f"opens (first view drawn) in Chromium: best {min(ready):.2f} s, median "
            f"{statistics.median(ready):.2f} s over {len(ready)} rounds (goal < 3 s)"
        )
        print(
            f"complete (every chart drawn): best {min(complete):.2f} s, "
            f"median {statistics.median(complete):.2f} s"
        )
        best = rounds[ready.index(min(ready))][2]
        if best[0] is not None:
            names = ("script and data parsed", "first view drawn", "every chart drawn")
            print(
                "  page marks of the best round (ms since navigation): "
                + ", ".join(f"{n} {t:.0f}" for n, t in zip(names, best, strict=True) if t)
            )
        print(
            f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
            f"(1/5/15 min) on {os.cpu_count()} CPUs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
