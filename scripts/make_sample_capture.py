"""Regenerate the bundled sample captures in fixtures/captures/ through the real stack.

Each sample is a fake phone scene (fixtures/phones/*.json) served by the emulated phone,
snapshotted with `dmaprof snapshot` through Debian's adb server: exactly what a user gets
from a phone. ``SCENE.dmaprof`` is taken as root; then the phone's adbd restarts as the
shell user on the same port (as after `adb unroot`: same serial, same boot) and
``SCENE-shell.dmaprof`` is taken with ``--root never``. Run from the repository root:

    .venv/bin/python scripts/make_sample_capture.py [SCENE ...]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.emuphone.harness import AdbServer, EmulatedPhone  # noqa: E402
from tests.emuphone.minroot import build_base_root  # noqa: E402
from tests.emuphone.scene import build_scene  # noqa: E402


def _snapshot(phone: EmulatedPhone, out: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "dmaprof", "snapshot", "-q", "--force", *args, "-o", str(out)],
        env=phone.env,
        check=True,
    )


def make(scene: str) -> list[Path]:
    outs = [
        REPO / "fixtures" / "captures" / f"{scene}{suffix}.dmaprof" for suffix in ("", "-shell")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        build_base_root(root)
        build_scene(REPO / "fixtures" / "phones" / f"{scene}.json", root)
        with AdbServer(Path(tmp) / "adb") as server:
            phone = server.phone(root)
            _snapshot(phone, outs[0])
            port = phone.port
            phone.stop()
            shell = EmulatedPhone(root, server, shell_uid=2000)
            shell.port = port  # the same serial: one phone, root then the shell user
            shell.start()
            try:
                _snapshot(shell, outs[1], "--root", "never")
            finally:
                shell.stop()
    return outs


if __name__ == "__main__":
    for name in sys.argv[1:] or ["pixel-like"]:
        make(name)
