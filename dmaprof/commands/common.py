"""Pieces every command shares: help settings, state, input checks, output files and targets."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dmaprof.errors import EXIT_CODE_HELP, BadCaptureError, DmaprofError
from dmaprof.render.console import AppState
from dmaprof.render.formats import Target
from dmaprof.timing import stage

if TYPE_CHECKING:
    from dmaprof.capture.container import Capture
    from dmaprof.leaks.series import Sampler

CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
}
EPILOG = "\b\n" + EXIT_CODE_HELP

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

    with (
        stage("load the captures (and import the analysis)"),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        jobs = [pool.submit(load_input, path) for path in paths]  # DIR/@N too
        for module in modules:
            importlib.import_module(module)
        return [job.result() for job in jobs]


@contextlib.contextmanager
def output_target(
    output: Path | None, *, by: str | None = None, top: int | None = None
) -> Iterator[Target]:
    """A renderer's target: stdout (its console, its warnings said on stderr), or the ``-o``
    file (a plain console of its own)."""
    state = app_state()
    with output_stream(output) as stream:
        yield Target(
            stream,
            state.note,
            to_stdout=stream is sys.stdout,
            console_for=lambda s: state.out if s is sys.stdout else state.file_console(s),
            by=by,
            top=top,
        )


def timed(sampler: Sampler) -> Sampler:
    """The sampler, each call logged with its time at -v (numbered: a slow sample stands out
    among the others)."""
    taken = 0

    def sample() -> Capture:
        nonlocal taken
        taken += 1
        with stage(f"sample {taken}"):
            return sampler()

    return sample
