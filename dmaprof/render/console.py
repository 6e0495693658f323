"""Terminal state, injected rather than read from globals (tests swap the consoles)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console


def _isatty(file: TextIO) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False


def _console(file: TextIO, no_color: bool) -> Console:
    console = Console(file=file, no_color=no_color, highlight=False, soft_wrap=False)
    if not _isatty(file):
        # Piped or redirected: wide enough that no cell is cut ("…") for lack of room. A
        # shell's COLUMNS describes its terminal, not this file, so it only ever widens.
        console.width = max(_PIPE_WIDTH, _int(os.environ.get("COLUMNS")))
    return console


_PIPE_WIDTH = 200


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


@dataclass
class AppState:
    """What every command needs: where data goes (stdout) and where talk goes (stderr)."""

    out: Console
    err: Console
    debug: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def create(cls, *, no_color: bool = False, debug: bool = False) -> AppState:
        """The consoles of this process (logging is set up by the CLI: ``-v``, ``--debug``)."""
        return cls(_console(sys.stdout, no_color), _console(sys.stderr, no_color), debug)

    def file_console(self, file: TextIO) -> Console:
        return Console(file=file, no_color=True, highlight=False, width=160)

    def progress(self, message: str) -> None:
        """A status line on stderr, only when a person is watching it."""
        if self.err.is_terminal:
            self.err.print(f"[dim]… {message}[/dim]")

    def note(self, message: str) -> None:
        self.err.print(message, markup=False)
