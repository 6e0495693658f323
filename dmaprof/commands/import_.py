"""`dmaprof import`: a collector dump, a bugreport or dmabuf_dump output as a capture."""

from __future__ import annotations

from pathlib import Path

import click

from dmaprof.choices import IMPORT_KINDS
from dmaprof.commands.common import EPILOG, INPUT_PATH, app_state, check_input
from dmaprof.timing import stage


@click.command("import", epilog=EPILOG)
@click.argument("source", type=INPUT_PATH)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Capture file to write.",
)
@click.option("--serial", "serial", default=None, help="Device name to record in the capture.")
@click.option(
    "--kind",
    type=click.Choice(IMPORT_KINDS),
    default="auto",
    show_default=True,
    help="What SOURCE is (auto: detected from its content).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing capture file.")
def import_(source: Path, output: Path, serial: str | None, kind: str, force: bool) -> None:
    """Turn a collector dump, a bugreport or dmabuf_dump output into a capture.

    SOURCE is a collector dump (`sh collect.sh > dump`), an `adb bugreport` zip (only its
    main text is read, never extracted) or its .txt, or the output of `dmabuf_dump` (default
    view, -a, -b, -o csv). The capture keeps SOURCE's text byte for byte. A sample of a
    series (DIR/@first, DIR/@last, DIR/@N) is written out as a standalone capture.
    """
    from dmaprof.capture.container import write_capture
    from dmaprof.leaks.address import check_address
    from dmaprof.leaks.series import load_input
    from dmaprof.leaks.seriesstore import is_sample_file
    from dmaprof.sources.importer import import_file

    state = app_state()
    if check_address(source) is not None or is_sample_file(source):
        capture = load_input(source)  # a sample of a series, as it was taken
    else:
        check_input(source)
        with stage(f"read {source}"):
            capture = import_file(source, kind=kind, serial=serial)
    with stage("write the capture"):
        write_capture(capture, output, overwrite=force)
    state.note(f"wrote {output}")
