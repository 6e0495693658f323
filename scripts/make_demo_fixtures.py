"""Regenerate the leak fixtures in fixtures/captures/demo/ through the real stack.

`scripts/demo-phone` (the emulated phone with com.example.leaky leaking a 4 MiB buffer every
2 s here) is snapshotted with `dmaprof snapshot` through Debian's adb server: a before/after
pair of the one device with the leak between them, and a short `dmaprof record` series.
Run from the repository root:

    .venv/bin/python scripts/make_demo_fixtures.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.emuphone.demo import DemoPhoneProcess  # noqa: E402

OUT = REPO / "fixtures" / "captures" / "demo"


def dmaprof(*args: str | Path, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "dmaprof", *map(str, args)], env=env, check=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "demo"
        staging.mkdir()
        with DemoPhoneProcess("--leak-every", "2", workdir=Path(tmp) / "phone") as phone:
            env = phone.env
            dmaprof("snapshot", "-q", "-o", staging / "before.dmaprof", env=env)
            time.sleep(9)  # four or five leaked buffers
            dmaprof("snapshot", "-q", "-o", staging / "after.dmaprof", env=env)
            dmaprof("record", "--interval", "2s", "--count", "6", "-o", staging / "series", env=env)
        if phone.returncode != 0:
            raise SystemExit(f"demo-phone exited {phone.returncode}:\n{phone.stderr}")
        for cache in staging.rglob(".dmaprof-cache"):
            shutil.rmtree(cache)
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.copytree(staging, OUT)
    for path in OUT.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # series.json is written 0600
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
