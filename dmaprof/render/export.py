"""``dmaprof export``: the tables of many captures as one dataset, for DuckDB, Spark, pandas.

Parquet (``pyarrow``, the ``dmaprof[parquet]`` extra) is written hive-style, one file per
table, device and capture::

    DIR/<table>/device=<serial>/capture=<id>/part-0.parquet

so ``read_parquet('DIR/processes/**/*.parquet', hive_partitioning = true)`` sees every
capture, with ``device`` and ``capture`` as columns. CSV is one file per table
(``DIR/<table>.csv``), every capture's rows one after the other.

Every row carries the capture's metadata (:data:`META_COLUMNS`): serial, model, fingerprint,
release, sdk, kernel release, boot id, wall-clock time, source kind, capture id. The capture
id is the first 16 hex digits of the SHA-256 of the capture's raw dump, so exporting the
same capture twice names the same partition. Every file of a table has the same columns and
types (from ``dmaprof.analyze.schema``), also when it holds no rows; figures a capture's source
cannot give (``Analysis.unknown``) are null. Sizes are integer bytes.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze.analysis import Analysis
from dmaprof.analyze.schema import SCHEMAS, Column, Schema
from dmaprof.capture.container import Capture, load_capture
from dmaprof.errors import DmaprofError

__all__ = [
    "EXPORT_FORMATS",
    "META_COLUMNS",
    "TABLES",
    "ExportResult",
    "capture_id",
    "capture_paths",
    "export_captures",
    "table_frames",
]

EXPORT_FORMATS = ("parquet", "csv")
PARQUET_EXTRA = "dmaprof[parquet]"

#: exported table -> (Analysis attribute, schema)
TABLES: dict[str, tuple[str, str]] = {
    "processes": ("usage", "usage"),
    "buffers": ("buffers", "buffers"),
    "references": ("references", "references"),
    "holdings": ("holdings", "holdings"),
    "apps": ("apps", "apps"),
    "cgroups": ("cgroup_usage", "cgroup_usage"),
    "exporters": ("exporters", "group_usage"),
    "names": ("names", "group_usage"),
    "kernel_only": ("kernel_only", "kernel_only"),
}
#: the datasets' first names of the exact share, kept beside the tables' names (a column
#: of the same values right after it), so queries written against them keep working
KEPT_NAMES = {
    "shared_pss_bytes": "pss_bytes",
    "shared_pss_bytes_with_descendants": "pss_bytes_with_descendants",
}
#: columns of ``processes`` taken from ``Analysis.processes`` next to ``Analysis.usage``
PROCESS_EXTRA = ("ppid", "argv0", "cmdline_display", "start_time_ticks", "state")
#: (column, pyarrow type name) of the metadata every exported row carries
META_COLUMNS: tuple[tuple[str, str], ...] = (
    ("capture_id", "string"),
    ("capture_file", "string"),
    ("source_kind", "string"),
    ("serial", "string"),
    ("model", "string"),
    ("manufacturer", "string"),
    ("fingerprint", "string"),
    ("release", "string"),
    ("sdk", "int32"),
    ("kernel_release", "string"),
    ("boot_id", "string"),
    ("wallclock", "timestamp"),
    ("uptime_s", "float64"),
    ("charge", "string"),
)
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class ExportResult:
    directory: Path
    fmt: str
    captures: list[dict[str, Any]] = field(default_factory=list)  # id, file, device, rows
    files: int = 0
    #: captures already in the dataset before this run (same capture id): file, id
    already: list[dict[str, str]] = field(default_factory=list)
    #: captures given twice in this run (same capture id as an earlier one): file, id
    duplicates: list[dict[str, str]] = field(default_factory=list)


def capture_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; a directory gives its ``*.dmaprof`` files (sorted)."""
    out: list[Path] = []
    for path in paths:
        try:
            is_dir = path.is_dir()
        except OSError:  # e.g. a parent directory it may not enter: load_capture says so
            is_dir = False
        if is_dir:
            found = sorted(path.glob("*.dmaprof"))
            if not found:
                raise DmaprofError(f"{path}: no *.dmaprof captures in this directory")
            out.extend(found)
        else:
            out.append(path)
    return out


def capture_id(capture: Capture) -> str:
    return hashlib.sha256(capture.dump).hexdigest()[:16]


def partition_value(text: str) -> str:
    """A hive partition value: letters, digits, ``.``, ``_``, ``-`` (others become ``_``)."""
    value = _SAFE.sub("_", text)[:128]
    return value if value.strip("._") else "unknown"


def _meta(capture: Capture, analysis: Analysis, cid: str) -> dict[str, Any]:
    from dmaprof.leaks.side import CaptureInfo
    from dmaprof.sources import source_kind

    info = CaptureInfo.from_capture(capture, analysis)
    device = capture.device
    dev = analysis.device or {}

    def text(key: str) -> str | None:
        value = device.get(key) or dev.get(key)
        return str(value) if value not in (None, "") else None

    sdk = device.get("sdk") or dev.get("sdk")
    return {
        "capture_id": cid,
        "capture_file": capture.path.name if capture.path else None,
        "source_kind": source_kind(capture),
        "serial": info.serial or None,
        "model": info.model or None,
        "manufacturer": text("manufacturer"),
        "fingerprint": info.fingerprint or None,
        "release": text("release"),
        "sdk": int(sdk) if isinstance(sdk, int | str) and str(sdk).isdigit() else None,
        "kernel_release": text("kernel_release"),
        "boot_id": info.boot_id or None,
        "wallclock": (
            pd.Timestamp(info.wallclock, unit="s", tz="UTC") if info.wallclock is not None else None
        ),
        "uptime_s": info.uptime_s,
        "charge": analysis.charge,
    }


def table_frames(analysis: Analysis) -> dict[str, tuple[pd.DataFrame, Schema]]:
    """Each exported table of one analysis, nulled where its source cannot tell."""
    unknown = analysis.unknown
    tables = analysis.tables
    out: dict[str, tuple[pd.DataFrame, Schema]] = {}
    for table, (attr, schema_name) in TABLES.items():
        frame = tables[attr].copy()
        schema = with_kept_names(SCHEMAS[schema_name])
        nulls = unknown.get("usage" if table == "processes" else table, [])
        for column in nulls:
            if column in frame.columns:
                frame[column] = pd.Series([None] * len(frame), dtype="object")
        if table == "processes":
            extra = analysis.processes[["pid", *PROCESS_EXTRA]].drop_duplicates("pid")
            frame = frame.merge(extra, on="pid", how="left", validate="many_to_one")
            for column in unknown.get("processes", []):
                if column in frame.columns:
                    frame[column] = pd.Series([None] * len(frame), dtype="object")
        for new, kept in KEPT_NAMES.items():
            if new in frame.columns:
                frame[kept] = frame[new]
        out[table] = (frame, schema)
    return out


def with_kept_names(schema: Schema) -> Schema:
    """``schema`` with each kept name's column right after the column it aliases."""
    columns: list[Column] = []
    for c in schema.columns:
        columns.append(c)
        if c.name in KEPT_NAMES:
            columns.append(replace(c, name=KEPT_NAMES[c.name], doc=f"as {c.name} (kept name)"))
    return replace(schema, columns=tuple(columns))


def _arrow_type(pa: Any, dtype: str, unit: str) -> Any:
    if dtype in ("int64", "Int64"):
        return pa.int64()
    if dtype in ("int32", "Int32"):
        return pa.int32()
    if dtype == "bool":
        return pa.bool_()
    if dtype == "object":
        return pa.list_(pa.int64() if "int" in unit else pa.string())
    return pa.string()


def _arrow_schema(pa: Any, table: str, schema: Schema) -> Any:
    fields = [pa.field(c.name, _arrow_type(pa, c.dtype, c.unit)) for c in schema.columns]
    if table == "processes":
        by_name = {c.name: c for c in SCHEMAS["processes"].columns}
        fields += [
            pa.field(n, _arrow_type(pa, by_name[n].dtype, by_name[n].unit)) for n in PROCESS_EXTRA
        ]
    meta_types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "float64": pa.float64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    fields += [pa.field(name, meta_types[kind]) for name, kind in META_COLUMNS]
    return pa.schema(fields)


def _column_values(series: pd.Series) -> list[Any]:
    values = series.astype(object).tolist()
    out: list[Any] = []
    for v in values:
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        elif isinstance(v, tuple):
            out.append(list(v))
        elif isinstance(v, np.integer):
            out.append(int(v))
        elif isinstance(v, np.bool_):
            out.append(bool(v))
        else:
            out.append(v)
    return out


def _arrow_table(pa: Any, frame: pd.DataFrame, arrow_schema: Any, meta: dict[str, Any]) -> Any:
    n = len(frame)
    arrays = []
    for f in arrow_schema:
        if f.name in meta:
            values = [meta[f.name]] * n
        elif f.name in frame.columns:
            values = _column_values(frame[f.name])
        else:
            values = [None] * n
        arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def export_captures(
    paths: Iterable[Path],
    directory: Path,
    *,
    fmt: str = "parquet",
    charge: str = "shared",
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Analyse each capture (one at a time) and write its tables into ``directory``."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    pa = pq = None
    if fmt == "parquet":
        try:
            import pyarrow  # type: ignore[import-untyped]
            import pyarrow.parquet  # type: ignore[import-untyped]
        except ImportError:
            raise DmaprofError(
                f"Parquet export needs pyarrow, which is not installed: install the "
                f"{PARQUET_EXTRA} extra (pip install '{PARQUET_EXTRA}'), or use --format csv"
            ) from None
        pa, pq = pyarrow, pyarrow.parquet
    files = capture_paths(paths)
    try:
        if directory.exists() and not directory.is_dir():
            raise DmaprofError(f"{directory} exists and is not a directory")
    except OSError as exc:  # a parent it may not enter
        raise DmaprofError(f"cannot create {directory}: {exc.strerror or exc}") from None
    result = ExportResult(directory, fmt)
    csv_writers: dict[str, Any] = {}
    # capture ids already in the dataset: added to, never rewritten (unless overwrite)
    present: set[str] = set()
    if fmt == "csv" and not overwrite:
        present = _csv_capture_ids(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DmaprofError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    seen: set[str] = set()
    try:
        for path in files:
            from dmaprof.sources import analyze_source

            capture = load_capture(path)
            cid = capture_id(capture)
            if cid in seen:
                result.duplicates.append({"file": str(path), "id": cid})
                if progress:
                    progress(f"skipped {path}: the same capture as an earlier one ({cid})")
                continue
            seen.add(cid)
            if not overwrite and (cid in present or _parquet_has(directory, cid, fmt)):
                result.already.append({"file": str(path), "id": cid})
                if progress:
                    progress(f"skipped {path}: already in {directory} (capture {cid})")
                continue
            analysis = analyze_source(capture, charge=charge)
            meta = _meta(capture, analysis, cid)
            device = partition_value(meta["serial"] or meta["model"] or "unknown")
            frames = table_frames(analysis)
            rows = {t: len(f) for t, (f, _s) in frames.items()}
            if fmt == "parquet":
                result.files += _write_parquet(
                    pa, pq, directory, device, cid, frames, meta, overwrite
                )
            else:
                _write_csv(directory, frames, meta, csv_writers, append=not overwrite)
            result.captures.append({"id": cid, "file": str(path), "device": device, "rows": rows})
            if progress:
                progress(f"exported {path} (device {device}, capture {cid})")
    finally:
        for handle, _writer in csv_writers.values():
            handle.close()
    if fmt == "csv":
        result.files = len(csv_writers)
    return result


def _write_parquet(
    pa: Any,
    pq: Any,
    directory: Path,
    device: str,
    cid: str,
    frames: dict[str, tuple[pd.DataFrame, Schema]],
    meta: dict[str, Any],
    overwrite: bool,
) -> int:
    targets = {
        t: directory / t / f"device={device}" / f"capture={cid}" / "part-0.parquet" for t in frames
    }
    for table, (frame, schema) in frames.items():
        arrow = _arrow_table(pa, frame, _arrow_schema(pa, table, schema), meta)
        target = targets[table]
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            pq.write_table(arrow, tmp, compression="zstd")
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return len(targets)


def _parquet_has(directory: Path, cid: str, fmt: str) -> bool:
    """Every table of capture ``cid`` is in the Parquet dataset (a capture whose export was
    cut short has only some: it is written again)."""
    if fmt != "parquet":
        return False
    return all(any(directory.glob(f"{t}/device=*/capture={cid}/part-0.parquet")) for t in TABLES)


def _csv_capture_ids(directory: Path) -> set[str]:
    """Capture ids found in the dataset's CSV files (a capture may have no rows in a table)."""
    ids: set[str] = set()
    for table in TABLES:
        path = directory / f"{table}.csv"
        if not path.exists():
            continue
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader, [])
                if "capture_id" not in header:
                    raise DmaprofError(
                        f"{path} is not a dmaprof CSV table (no capture_id column); "
                        "use --force to replace it"
                    )
                col = header.index("capture_id")
                ids.update(row[col] for row in reader if len(row) > col)
        except OSError as exc:
            raise DmaprofError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return ids


def _csv_rows(frame: pd.DataFrame, columns: list[str], meta: dict[str, Any]) -> Iterator[list[Any]]:
    data = {c: _column_values(frame[c]) if c in frame.columns else None for c in columns}
    for i in range(len(frame)):
        row: list[Any] = []
        for c in columns:
            if c in meta:
                v = meta[c]
                row.append(v.isoformat() if isinstance(v, pd.Timestamp) else v)
                continue
            col = data[c]
            v = col[i] if col is not None else None
            row.append(" ".join(str(x) for x in v) if isinstance(v, list) else v)
        yield row


def _write_csv(
    directory: Path,
    frames: dict[str, tuple[pd.DataFrame, Schema]],
    meta: dict[str, Any],
    writers: dict[str, Any],
    *,
    append: bool,
) -> None:
    for table, (frame, schema) in frames.items():
        columns = [c.name for c in schema.columns]
        if table == "processes":
            columns += list(PROCESS_EXTRA)
        columns += [name for name, _kind in META_COLUMNS]
        if table not in writers:
            writers[table] = _csv_writer(directory / f"{table}.csv", columns, append)
        _handle, writer = writers[table]
        writer.writerows(_csv_rows(frame, columns, meta))


def _csv_writer(path: Path, columns: list[str], append: bool) -> tuple[Any, Any]:
    """A writer that adds rows to ``path`` (its header must be ``columns``) or starts it."""
    if append and path.exists() and path.stat().st_size:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        if header != columns:
            raise DmaprofError(
                f"{path} has other columns than this dmaprof writes (an older export?); "
                "use --force to rewrite the dataset"
            )
        handle = path.open("a", newline="", encoding="utf-8")
        return handle, csv.writer(handle, lineterminator="\n")
    handle = path.open("w", newline="", encoding="utf-8")
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    return handle, writer
