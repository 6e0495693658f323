"""Soak test: `dmaprof record` against the emulated phone for a long time, with host memory
watched. Prints samples taken, gaps (failures), and the recorder's peak memory.

    .venv/bin/python scripts/soak.py [--minutes 60] [--interval 1s] [--out DIR]

Needs what the end-to-end tests need (adb, mksh, toybox, busybox; root for the chroot).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.emuphone.harness import AdbServer  # noqa: E402
from tests.emuphone.minroot import build_base_root  # noqa: E402
from tests.emuphone.scene import build_scene  # noqa: E402


def rss_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--interval", default="1s")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        build_base_root(root)
        build_scene(REPO / "fixtures" / "phones" / "pixel-like.json", root)
        out = args.out or Path(tmp) / "series"
        with AdbServer(Path(tmp) / "adb") as server:
            phone = server.phone(root)
            started = time.monotonic()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dmaprof",
                    "record",
                    "-s",
                    phone.serial,
                    "--interval",
                    args.interval,
                    "--duration",
                    f"{args.minutes * 60:g}s",
                    "-o",
                    str(out),
                    "--force",
                ],
                env=phone.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            rss_samples: list[int] = []
            while proc.poll() is None:
                rss_samples.append(rss_kib(proc.pid, "VmRSS"))
                peak = rss_kib(proc.pid, "VmHWM")
                time.sleep(5)
            _, err = proc.communicate()
            took = time.monotonic() - started
        summary = json.loads((out / "series.json").read_text())
        lines = (out / "samples.ndjson").read_text().splitlines()
        statuses = [json.loads(line)["status"] for line in lines]
        early = [r for r in rss_samples[: max(1, len(rss_samples) // 10)] if r]
        late = [r for r in rss_samples[-max(1, len(rss_samples) // 10) :] if r]
        print(f"ran {took / 60:.1f} min, exit {proc.returncode}, interval {args.interval}")
        print(
            f"samples taken: {statuses.count('ok')}, gaps (failed samples): {statuses.count('gap')}"
        )
        print(f"series status: {summary.get('status')}")
        print(
            f"recorder RSS: first tenth avg {sum(early) // max(1, len(early))} KiB, "
            f"last tenth avg {sum(late) // max(1, len(late))} KiB, peak (VmHWM) {peak} KiB"
        )
        if proc.returncode != 0:
            print(err.decode(errors="replace")[-2000:])
        return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
