"""Options several commands share, each declared once, with its choices taken from the
library's own constants (a new charge policy or view needs no edit here).

Those constants live in modules that import pandas or adbutils; :class:`LibraryChoice` reads
them only when a command's help is shown or its value is checked, so `dmaprof --help` and
the commands that do not take the option stay fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args

import click

from dmaprof.render.formats import Registry

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class LibraryChoice(click.Choice[str]):
    """A choice among the values a library function returns, asked for at first use."""

    def __init__(self, values: Callable[[], Iterable[str]]) -> None:
        self._values = values
        self._choices: tuple[str, ...] | None = None
        self.case_sensitive = True

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        if self._choices is None:
            self._choices = tuple(self._values())
        return self._choices

    @choices.setter
    def choices(self, values: Sequence[str]) -> None:
        self._choices = tuple(values)


def charge_policies() -> Iterable[str]:
    from dmaprof.analyze.attribution import CHARGE_POLICIES

    return CHARGE_POLICIES


def root_modes() -> Iterable[str]:
    from dmaprof.collect.snapshot import RootMode

    return get_args(RootMode)


def on_unknown_policies() -> Iterable[str]:
    from dmaprof.leaks.rules import ON_UNKNOWN

    return ON_UNKNOWN


def show_views() -> Iterable[str]:
    from dmaprof.render.report import VIEWS

    return VIEWS


def diff_views() -> Iterable[str]:
    from dmaprof.render.diff import VIEWS

    return VIEWS


def trend_kinds() -> Iterable[str]:
    from dmaprof.leaks.trend import KINDS

    return KINDS


def import_kinds() -> Iterable[str]:
    from dmaprof.sources.importer import IMPORT_KINDS

    return IMPORT_KINDS


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
        type=LibraryChoice(charge_policies),
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
        type=LibraryChoice(root_modes),
        default="auto",
        show_default=True,
        help=help,
    )


def by_option(views: Callable[[], Iterable[str]], help: str) -> Decorator:
    return click.option("--by", type=LibraryChoice(views), help=help)


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
