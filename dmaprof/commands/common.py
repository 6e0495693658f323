"""Pieces every command shares: help settings, device options, state, output files."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from dmaprof.console import AppState
from dmaprof.errors import EXIT_CODE_HELP, DmaprofError

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
