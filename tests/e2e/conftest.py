"""Fixtures for end-to-end runs: the real adb server, the emulated phone, the real CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emuphone.harness import AdbServer, EmulatedPhone
from tests.emuphone.minroot import build_base_root
from tests.emuphone.scene import build_scene

REPO = Path(__file__).resolve().parents[2]
SCENE = REPO / "fixtures" / "phones" / "pixel-like.json"
DMAPROF = [sys.executable, "-m", "dmaprof"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _need_tools() -> None:
    missing = [tool for tool in ("adb", "mksh", "toybox", "busybox") if not shutil.which(tool)]
    if missing:
        pytest.fail(
            f"end-to-end tests need {', '.join(missing)}: run `bash scripts/test.sh`, which "
            "installs them"
        )


@pytest.fixture(scope="session")
def adb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdbServer]:
    with AdbServer(tmp_path_factory.mktemp("adb")) as server:
        yield server


PhoneRoot = Callable[..., Path]


@pytest.fixture
def phone_root(tmp_path: Path) -> PhoneRoot:
    """Build a fake phone filesystem: the toolbox plus a fixture scene."""
    counter = iter(range(1000))

    def build(scene: Path | dict[str, Any] = SCENE, variant: str = "modern", **kw: Any) -> Path:
        root = tmp_path / f"phone{next(counter)}"
        build_base_root(root)
        build_scene(scene, root, variant, **kw)
        return root

    return build


@pytest.fixture
def phone(adb_server: AdbServer, phone_root: PhoneRoot) -> Iterator[EmulatedPhone]:
    emulated = adb_server.phone(phone_root())
    try:
        yield emulated
    finally:
        emulated.stop()


def run_dmaprof(
    *args: str | Path,
    env: dict[str, str],
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*DMAPROF, *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def start_dmaprof(
    *args: str | Path, env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*DMAPROF, *map(str, args)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def device_tmp_entries(root: Path) -> list[str]:
    return sorted(os.listdir(root / "data" / "local" / "tmp"))


def wait_for_path(pattern: str, root: Path, timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"{pattern} never appeared under {root}")


def interrupt(proc: subprocess.Popen[bytes]) -> tuple[int, bytes, bytes]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err
