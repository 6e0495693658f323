"""`dmaprof import`: turn a hand-run collector dump into a capture."""

from __future__ import annotations

from pathlib import Path

from dmaprof.capture import MAX_DUMP_BYTES, Capture
from dmaprof.dump import DUMP_MAGIC
from dmaprof.errors import BadCaptureError
from dmaprof.metadata import capture_meta


def import_dump(source: Path, *, serial: str | None = None) -> Capture:
    try:
        size = source.stat().st_size
        if size > MAX_DUMP_BYTES:
            raise BadCaptureError(f"{source}: {size} bytes is over the limit for a dump")
        data = source.read_bytes()
    except OSError as exc:
        raise BadCaptureError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    if DUMP_MAGIC not in data[: 64 * 1024]:
        raise BadCaptureError(
            f"{source}: not a collector dump (run `dmaprof collector > collect.sh` and "
            "`sh collect.sh > dump` on the device)"
        )
    meta = capture_meta(
        data,
        transport={"kind": "import", "serial": serial or "", "source": source.name},
    )
    if not meta["device"]["serial"]:
        meta["device"]["serial"] = serial or meta["device"]["model"] or source.stem
    return Capture(meta, data)
