"""`dmaprof collector`: the collector script, to run by hand on any Linux device."""

from __future__ import annotations

import sys

import click

from dmaprof.commands.common import EPILOG


@click.command(epilog=EPILOG)
def collector() -> None:
    """Print the collector script.

    Run it by hand on any Linux device (ssh, serial console) and import its output:

    \b
      dmaprof collector > collect.sh
      sh collect.sh > dump          # on the device, as root for the full picture
      dmaprof import dump -o device.dmaprof
    """
    from dmaprof.collect import collector_script

    sys.stdout.buffer.write(collector_script())
    sys.stdout.buffer.flush()
