"""Fixtures for the leak tests: capture pairs built from fake phone scenes (real collector),
the CLI run in-process, and the end-to-end fixtures of tests/e2e (real adb server, emulated
phone) for the tests that need a device (files named ``test_*_e2e.py``, marked ``e2e``).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dmaprof.capture.container import Capture
from tests.e2e.conftest import adb_server  # noqa: F401  (the session's real adb server)
from tests.leaks import phonescene as P

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if "tests/leaks/" in path and path.endswith("_e2e.py"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def need_device_tools() -> None:
    missing = [t for t in ("adb", "mksh", "toybox", "busybox") if not shutil.which(t)]
    if missing:
        pytest.fail(f"end-to-end tests need {', '.join(missing)}: run `bash scripts/test.sh`")


@dataclass
class Pair:
    before: Path
    after: Path


class Captures:
    """Capture files built once per session: ``pair(name, edit)`` collects the pixel-like
    scene and the scene after ``edit(scene)`` (BEFORE at t=0, AFTER five minutes later)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cache: dict[str, Path] = {}

    def one(self, name: str, scene: dict[str, Any], **kw: Any) -> Path:
        if name not in self.cache:
            path = self.directory / f"{name}.dmaprof"
            P.capture(scene, path, **kw)
            self.cache[name] = path
        return self.cache[name]

    def base(self) -> Path:
        return self.one("base", P.pixel(), wallclock=1_700_000_000.0)

    def pair(self, name: str, edit: Callable[[dict[str, Any]], Any], **kw: Any) -> Pair:
        """``edit`` changes the scene in place; a dict it returns adds capture options."""
        scene = P.pixel()
        edited = edit(scene)
        kw = {"wallclock": 1_700_000_300.0, **(edited if isinstance(edited, dict) else {}), **kw}
        return Pair(self.base(), self.one(name, scene, **kw))


@pytest.fixture(scope="session")
def captures(tmp_path_factory: pytest.TempPathFactory) -> Captures:
    # the collector runs chrooted into the fake phone root, as the emulated phone does
    if os.geteuid() != 0:
        pytest.skip("the fake phone scenes are collected in a chroot: run as root")
    return Captures(tmp_path_factory.mktemp("captures"))


_ANALYSED: dict[tuple[str, str, str | None], Any] = {}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def not_installed(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``not_installed("plotly")``: the package looks absent to the extras' check
    (``importlib.util.find_spec``), as on a machine without that extra."""
    import importlib.util

    real = importlib.util.find_spec

    def hide(package: str) -> None:
        def find_spec(name: str, *args: Any) -> Any:
            return None if name == package else real(name, *args)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    return hide


@pytest.fixture
def dmaprof(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Run]]:
    """Run the CLI in-process through its real entry point (`dmaprof.cli.main`): the exit
    code, stdout and stderr, without a subprocess (pandas imports once)."""
    from dmaprof.cli import main
    from dmaprof.leaks import side as side_module
    from dmaprof.leaks import trend as trend_module

    # each capture file is analysed once per test session (the diff never mutates a Side)
    original = side_module.side_from_capture

    def memo(
        capture: Capture, *, charge: str = "shared", service_regex: str | None = None
    ) -> side_module.Side:
        key = (str(capture.path), charge, service_regex)
        if capture.path is None or key not in _ANALYSED:
            result = original(capture, charge=charge, service_regex=service_regex)
            if capture.path is None:
                return result
            _ANALYSED[key] = result
        return _ANALYSED[key]

    monkeypatch.setattr(side_module, "side_from_capture", memo)
    monkeypatch.setattr(trend_module, "side_from_capture", memo)
    for var in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str | Path, env: dict[str, str] | None = None) -> Run:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    yield run


def capture_of(path: Path) -> Capture:
    from dmaprof.capture.container import load_capture

    return load_capture(path)


PYTHON = sys.executable
