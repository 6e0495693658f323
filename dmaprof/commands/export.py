"""`dmaprof export`: many captures' tables as a Parquet (or CSV) dataset for fleet queries."""

from __future__ import annotations

from pathlib import Path

import click

from dmaprof.commands.common import EPILOG, INPUT_PATH, app_state
from dmaprof.commands.options import charge_option
from dmaprof.render.formats import EXPORT, ExportJob, Target


@click.command(epilog=EPILOG)
@click.argument("captures", metavar="CAPTURE...", nargs=-1, required=True, type=INPUT_PATH)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT.names),
    default=EXPORT.default,
    show_default=True,
    help="parquet: DIR/<table>/device=<serial>/capture=<id>/part-0.parquet (needs the "
    "dmaprof[parquet] extra); csv: DIR/<table>.csv.",
)
@click.option(
    "-o",
    "--output",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Dataset directory (created; new captures are added to an existing one).",
)
@charge_option("How shared buffers are charged in the exported pss figures (as in `dmaprof show`).")
@click.option(
    "--force",
    is_flag=True,
    help="Rewrite captures exported before (CSV: rewrite the files with these captures only). "
    "Without it, captures already in the dataset (same capture id) are skipped.",
)
def export(captures: tuple[Path, ...], fmt: str, directory: Path, charge: str, force: bool) -> None:
    """Export the tables of many captures as one dataset, for DuckDB, Spark or pandas.

    CAPTURE is a capture file, or a directory of them (its *.dmaprof files): snapshots and
    imported bugreports alike. Tables: processes, buffers, references, holdings, apps,
    cgroups, exporters, names, kernel_only; every row carries the capture's device and build
    (serial, model, fingerprint, release, sdk, kernel_release, boot_id, wallclock) and its id.
    Query examples: docs/fleet.md.
    """
    state = app_state()
    job = ExportJob(captures, charge=charge, overwrite=force)
    result = EXPORT.render(fmt, job, Target(None, state.note, path=directory))
    devices = len({c["device"] for c in result.captures})
    summary = (
        f"wrote {len(result.captures)} captures of {devices} devices to {directory} "
        f"({result.files} {fmt} files)"
    )
    if result.already:
        summary += f"; skipped {len(result.already)} already there"
    if result.duplicates:
        summary += f"; skipped {len(result.duplicates)} given twice"
    state.note(summary)
