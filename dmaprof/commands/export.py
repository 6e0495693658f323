"""`dmaprof export`: many captures' tables as a Parquet (or CSV) dataset for fleet queries, or
a series as a Perfetto trace."""

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
    default=None,
    help="parquet (default): DIR/<table>/device=<serial>/capture=<id>/part-0.parquet (needs "
    "the dmaprof[parquet] extra); csv: DIR/<table>.csv; perfetto (default for -o *.pftrace): "
    "one trace file of one series or capture (needs the dmaprof[perfetto] extra).",
)
@click.option(
    "-o",
    "--output",
    "directory",
    type=click.Path(path_type=Path),
    required=True,
    help="Dataset directory (created; new captures are added to an existing one); perfetto: "
    "the trace file.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="perfetto: the processes drawn, by peak (every process flagged as a leak is too).",
)
@charge_option("How shared buffers are charged in the exported pss figures (as in `dmaprof show`).")
@click.option(
    "--force",
    is_flag=True,
    help="Rewrite captures exported before (CSV: rewrite the files with these captures only). "
    "Without it, captures already in the dataset (same capture id) are skipped; perfetto: "
    "overwrite the trace file.",
)
def export(
    captures: tuple[Path, ...],
    fmt: str | None,
    directory: Path,
    top: int,
    charge: str,
    force: bool,
) -> None:
    """Export the tables of many captures as one dataset, for DuckDB, Spark or pandas.

    CAPTURE is a capture file, or a directory of them (its *.dmaprof files): snapshots and
    imported bugreports alike. Tables: processes, buffers, references, holdings, apps,
    cgroups, exporters, names, kernel_only; every row carries the capture's device and build
    (serial, model, fingerprint, release, sdk, kernel_release, boot_id, wallclock) and its id.
    Query examples: docs/fleet.md.

    With --format perfetto (or -o FILE.pftrace), CAPTURE is one series directory (or one
    capture, or a sample DIR/@N) and -o the trace: counter tracks of the total, kernel-only
    memory, every exporter, every app and the --top processes on the device's boot clock,
    and instants for leak verdicts and the flagged series' new buffers (docs/perfetto.md).
    """
    from dmaprof.render.export import ExportResult

    state = app_state()
    fmt = EXPORT.choose(fmt, directory)
    if fmt == "perfetto" and len(captures) != 1:
        raise click.UsageError(
            f"a Perfetto trace is of one series or capture: give one ({len(captures)} given)"
        )
    job = ExportJob(captures, charge=charge, overwrite=force)
    target = Target(None, state.note, path=directory, top=top, extra={"progress": state.progress})
    result = EXPORT.render(fmt, job, target)
    if not isinstance(result, ExportResult):  # a Perfetto trace
        state.note(result.line)
        return
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
