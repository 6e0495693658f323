"""`dmaprof top`: the top DMA-BUF holders of a device, refreshed live."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmaprof.commands.common import EPILOG, app_state, timed
from dmaprof.commands.options import (
    charge_option,
    duration,
    root_option,
    serial_option,
    service_option,
    timeout_option,
)

if TYPE_CHECKING:
    from dmaprof.choices import RootMode

CHARGE_HELP = "How shared buffers are charged (as in `dmaprof show`): pss figures follow it."


@click.command(epilog=EPILOG)
@serial_option
@click.option(
    "--interval",
    default="2s",
    show_default=True,
    callback=duration,
    metavar="DURATION",
    help="Time between refreshes.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    help="Quit after this many refreshes (default: until Ctrl-C).",
)
@click.option(
    "--rows", type=click.IntRange(min=1), default=20, show_default=True, help="Holders shown."
)
@charge_option(CHARGE_HELP)
@service_option
@root_option("Use root as `dmaprof snapshot` does.")
@timeout_option
def top(
    serial: str | None,
    interval: float,
    count: int | None,
    rows: int,
    charge: str,
    service_regex: str | None,
    root_mode: RootMode,
    timeout: float,
) -> None:
    """Watch the top DMA-BUF holders live, with their change since top started.

    One snapshot per refresh. On a terminal the view is redrawn in place; piped, every
    refresh is printed in turn. Ctrl-C quits with exit 0 (the normal way out of top, unlike
    record, whose Ctrl-C means "interrupted": 130). When the first refresh fails, top
    exits with that error's code (4 no device, 5 several, 6 unauthorized, 7 offline...);
    after a first success a failed refresh is shown and retried.
    """
    from dmaprof.collect.sampler import AdbSampler
    from dmaprof.render.live import run_top

    assert interval is not None
    state = app_state()
    sampler = timed(AdbSampler(serial, root_mode=root_mode, timeout=timeout))
    run_top(
        sampler,
        interval_s=interval,
        out=state.out,
        count=count,
        rows=rows,
        charge=charge,
        service_regex=service_regex,
    )
