"""`dmaprof devices`: the connected devices and what dmaprof can read on each."""

from __future__ import annotations

import click

from dmaprof.commands.common import EPILOG, output_target
from dmaprof.render.formats import DEVICES
from dmaprof.timing import stage


@click.command(epilog=EPILOG)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(DEVICES.names),
    default=DEVICES.default,
    show_default=True,
    help="Output format.",
)
def devices(fmt: str) -> None:
    """List connected devices and what dmaprof can read on each.

    One shell round trip per device: model, Android release and API level, kernel, whether
    root is available (adbd root or su), and which DMA-BUF sources are readable.
    """
    from dmaprof.collect.adb import AdbServer, ServerAddress
    from dmaprof.collect.probe import probe_devices

    server = AdbServer(ServerAddress.from_env())
    with stage("probe the devices"):
        reports = probe_devices(server)
    with output_target(None) as target:
        DEVICES.render(fmt, reports, target)
