"""The click CLI: the `dmaprof` group and its commands, one module each, registered from
:data:`COMMANDS`. A command parses its options, calls the layers below and hands the result
to a renderer of :mod:`dmaprof.render.formats`; errors become exit codes in one place,
:func:`dmaprof.cli.main`.

Heavy modules (pandas, adbutils, the analysis) are imported inside the commands that need
them, so `dmaprof --help` stays fast (``tests/test_cli_home.py`` checks it).
"""

from __future__ import annotations

import logging
import sys

import click

from dmaprof import __version__
from dmaprof.commands.collector import collector
from dmaprof.commands.common import CONTEXT_SETTINGS, EPILOG
from dmaprof.commands.devices import devices
from dmaprof.commands.diff import diff
from dmaprof.commands.export import export
from dmaprof.commands.import_ import import_
from dmaprof.commands.record import record
from dmaprof.commands.show import show
from dmaprof.commands.snapshot import snapshot
from dmaprof.commands.top import top
from dmaprof.commands.trend import trend
from dmaprof.render.console import AppState
from dmaprof.timing import stage

#: every command of `dmaprof`; a new one is a module in this folder and a line here
COMMANDS: list[click.Command] = [
    devices,
    collector,
    snapshot,
    show,
    import_,
    diff,
    record,
    trend,
    top,
    export,
]


@click.group(context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.version_option(__version__, "-V", "--version", prog_name="dmaprof")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", count=True, help="More logs on stderr (-vv for debug).")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="No colours in output.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, no_color: bool) -> None:
    """Who holds the DMA-BUF memory on this device, and what is leaking?

    dmaprof snapshots a device over adb (or reads a dump you collected by hand), attributes
    every DMA-BUF to the processes, apps, cgroups and exporters that hold it, and finds leaks
    between captures.
    """
    ctx.obj = AppState.create(no_color=no_color, debug=debug)
    configure_logging(verbose=verbose, debug=debug)
    # -v: each stage's time (timing.stage), then the whole command's, when it ends
    ctx.with_resource(stage(f"dmaprof {ctx.invoked_subcommand}, in all"))


for _command in COMMANDS:
    cli.add_command(_command)


class _LineFormatter(logging.Formatter):
    """``dmaprof: push the collector: 41 ms``: one plain line per record, ready to paste in
    a bug report (no padding, no wrapping); other libraries' records carry their name."""

    def format(self, record: logging.LogRecord) -> str:
        origin = "dmaprof" if record.name.startswith("dmaprof") else record.name
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        line = f"{origin}: {level}{record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(*, verbose: int = 0, debug: bool = False) -> None:
    """Logs on stderr: warnings, -v adds the stage timings (INFO), -vv/--debug everything."""
    level = (
        logging.DEBUG if debug or verbose > 1 else (logging.INFO if verbose else logging.WARNING)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
