"""Options several commands share, each declared once.

Their choices come from :mod:`dmaprof.choices`, the import-light module the library's own
code takes them from too (importing the modules that act on them would put pandas on every
``--help``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dmaprof.choices import CHARGE_POLICIES, ROOT_MODES
from dmaprof.render.formats import Registry

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


CHARGE_HELP = (
    "shared: pss (size split among holders); full: rss (whole size to every holder); "
    "client: buffers shared by an app and graphics/media services are charged to the app."
)
ROOT_HELP = (
    "auto: use root when adbd is root or `su` works; never: stay the shell user; "
    "require: fail without root."
)


def charge_option(help: str = CHARGE_HELP) -> Decorator:
    return click.option(
        "--charge",
        type=click.Choice(CHARGE_POLICIES),
        default="shared",
        show_default=True,
        help=help,
    )


service_option = click.option(
    "--service",
    "service_regex",
    metavar="REGEX",
    help="With --charge client: processes (name or cmdline) that count as services.",
)


def root_option(help: str = ROOT_HELP) -> Decorator:
    return click.option(
        "--root",
        "root_mode",
        type=click.Choice(ROOT_MODES),
        default="auto",
        show_default=True,
        help=help,
    )


def by_option(views: tuple[str, ...], help: str) -> Decorator:
    return click.option("--by", type=click.Choice(views), help=help)


def format_option(registry: Registry[Any, Any], help: str) -> Decorator:
    """``--format`` among a registry's formats; no default: :meth:`Registry.choose` picks
    one from the ``-o`` suffix."""
    return click.option("--format", "fmt", type=click.Choice(registry.names), help=help)


output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)

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


# --------------------------------------------------------------------------- quantities

Q = TypeVar("Q", int, float)


def _parsed(param: click.Parameter, value: str | None, parse: Callable[..., Q]) -> Q | None:
    """A duration or size option's value, parsed; a bad one is a usage error naming it."""
    if value is None:
        return None
    from dmaprof.leaks.quantities import QuantityError

    try:
        return parse(value, what=f"--{(param.name or '').replace('_', '-')}")
    except QuantityError as exc:
        raise click.BadParameter(exc.message) from None


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """click callback: ``500ms``, ``5s``, ``2m``... in seconds."""
    from dmaprof.leaks.quantities import parse_duration

    return _parsed(param, value, parse_duration)


def size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """click callback: ``1MiB``, ``512k``... in bytes."""
    from dmaprof.leaks.quantities import parse_size

    return _parsed(param, value, parse_size)
