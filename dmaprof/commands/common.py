"""Pieces every command shares: help settings, device options, state, output files."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dmaprof.errors import EXIT_CODE_HELP, BadCaptureError, DmaprofError
from dmaprof.render.console import AppState

if TYPE_CHECKING:
    from dmaprof.capture.container import Capture

CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
}
EPILOG = "\b\n" + EXIT_CODE_HELP

serial_option = click.option(
    "-s",
    "--serial",
    envvar="ANDROID_SERIAL",
    show_envvar=True,
    help="Device serial, as in `adb -s` (default: the only connected device).",
)
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for any one device operation.",
)


#: An input file or directory argument. click's own checks are off (they would make a
#: missing or unreadable input a usage error, exit 2): :func:`check_input` and the loaders
#: make it exit 9 in every command, as README's exit-code table says.
INPUT_PATH = click.Path(path_type=Path, readable=False)


def check_input(path: Path, *, directory: bool = False) -> None:
    """Fail with exit 9 when an input file (``directory``: an input directory) is missing,
    unreadable or of the wrong kind."""
    import os

    try:
        st = path.stat()
    except FileNotFoundError:
        raise BadCaptureError(f"{path}: no such {'directory' if directory else 'file'}") from None
    except OSError as exc:
        raise BadCaptureError(f"{path}: cannot read: {exc.strerror or exc}") from None
    import stat

    if directory and not stat.S_ISDIR(st.st_mode):
        raise BadCaptureError(f"{path}: not a directory")
    if not directory and stat.S_ISDIR(st.st_mode):
        raise BadCaptureError(f"{path}: is a directory, not a file")
    if not os.access(path, os.R_OK | (os.X_OK if directory else 0)):
        raise BadCaptureError(f"{path}: cannot read: permission denied")


def app_state() -> AppState:
    state = click.get_current_context().find_object(AppState)
    assert state is not None
    return state


@contextlib.contextmanager
def output_stream(output: Path | None) -> Iterator[Any]:
    if output is None:
        yield sys.stdout
        return
    try:
        handle = output.open("w", encoding="utf-8")
    except OSError as exc:
        raise DmaprofError(f"cannot write {output}: {exc.strerror or exc}") from exc
    with handle:
        yield handle


def load_captures(paths: Sequence[Path], *modules: str) -> list[Capture]:
    """Load captures (read, inflate, checksum) in a thread while ``modules`` (pandas and
    the analysis: the slow part of starting up) are imported here. Inflating and hashing
    release the GIL, so a big capture costs little more than the imports. Errors come out
    in the order of ``paths``."""
    import importlib
    from concurrent.futures import ThreadPoolExecutor

    from dmaprof.leaks.series import load_input
    from dmaprof.timing import stage

    with (
        stage("load the captures (and import the analysis)"),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        jobs = [pool.submit(load_input, path) for path in paths]  # DIR/@N too
        for module in modules:
            importlib.import_module(module)
        return [job.result() for job in jobs]


_FORMAT_BY_SUFFIX = {
    ".json": "json",
    ".csv": "csv",
    ".md": "markdown",
    ".txt": "table",
    ".html": "html",
    ".htm": "html",
}


def output_format(fmt: str | None, output: Path | None) -> str:
    """``--format``, else the one the ``-o`` file's extension names, else ``table``."""
    if fmt is None:
        fmt = _FORMAT_BY_SUFFIX.get(output.suffix.lower(), "table") if output else "table"
    if fmt == "html":
        require_html()
    return fmt


def require_html() -> None:
    """Fail before any work, and before any file is opened, without the `html` extra."""
    import importlib.util

    if importlib.util.find_spec("plotly") is None:
        raise DmaprofError("HTML reports need plotly: pip install 'dmaprof[html]'")
