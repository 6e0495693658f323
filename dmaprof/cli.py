"""The `dmaprof` entry point (``[project.scripts]``, ``python -m dmaprof``).

The commands live in :mod:`dmaprof.commands`. Errors are mapped to one line on stderr and a
documented exit code (:class:`dmaprof.errors.ExitCode`) in exactly one place, :func:`main`.
"""

from __future__ import annotations

import sys

import click

from dmaprof.commands import cli
from dmaprof.errors import DmaprofError, ExitCode

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map every dmaprof error to one line on stderr and its exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        returned = cli.main(args=argv, prog_name="dmaprof", standalone_mode=False)
    except DmaprofError as exc:
        if debug:
            raise
        click.echo(f"dmaprof: error: {_one_line(exc.message)}", err=True)
        sys.exit(int(exc.exit_code))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # `dmaprof` alone, or a group without its command: the help, as asked
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"dmaprof: error: {_click_message(exc)}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("dmaprof: interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        # the reader of our stdout went away (e.g. `| head`): not an error worth a traceback
        sys.stderr.close()
        sys.exit(int(ExitCode.OK))
    sys.exit(returned if isinstance(returned, int) else int(ExitCode.OK))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _click_message(exc: click.ClickException) -> str:
    """A usage error as one line, with where to read more (click prints three)."""
    message = _one_line(exc.format_message())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message = message.rstrip(".") + f" (see '{ctx.command_path} --help')"
    return message
