"""Regenerate the bundled sample captures in fixtures/captures/ through the real stack.

Each sample is a fake phone scene (fixtures/phones/*.json) served by the emulated phone,
snapshotted with `dmaprof snapshot` through Debian's adb server: exactly what a user gets
from a phone. Run from the repository root:

    .venv/bin/python scripts/make_sample_capture.py [SCENE ...]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.emuphone.harness import AdbServer  # noqa: E402
from tests.emuphone.minroot import build_base_root  # noqa: E402
from tests.emuphone.scene import build_scene  # noqa: E402


def make(scene: str, *, shell_uid: int | None = None, suffix: str = "") -> Path:
    out = REPO / "fixtures" / "captures" / f"{scene}{suffix}.dmaprof"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        build_base_root(root)
        build_scene(REPO / "fixtures" / "phones" / f"{scene}.json", root)
        with AdbServer(Path(tmp) / "adb") as server:
            phone = server.phone(root, shell_uid=shell_uid)
            subprocess.run(
                [sys.executable, "-m", "dmaprof", "snapshot", "-q", "--force", "-o", str(out)],
                env=phone.env,
                check=True,
            )
    return out


if __name__ == "__main__":
    for name in sys.argv[1:] or ["pixel-like"]:
        make(name)
        make(name, shell_uid=2000, suffix="-shell")
