"""Fuzz targets shared by the property tests (tests/test_fuzz.py) and scripts/fuzz.py.

Every target feeds hostile bytes to one entry point and accepts exactly two outcomes: a
result, or the documented error (BadCaptureError, exit code 9). Anything else — a crash, a
different exception, a float where an int belongs — fails the target.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from dmaprof.capture.container import DUMP_MEMBER, META_MEMBER, ZIP_COMMENT, load_capture
from dmaprof.capture.dump import parse_dump
from dmaprof.errors import BadCaptureError

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "fixtures" / "captures" / "pixel-like.dmaprof"
SAMPLE_BYTES = SAMPLE.read_bytes()
SAMPLE_DUMP = load_capture(SAMPLE).dump
SAMPLE_LINES = SAMPLE_DUMP.split(b"\n")


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """A copy of `data` with a few random edits: flips, cuts, insertions, duplications."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not out:
            break
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "dup"]))
        at = draw(st.integers(0, len(out) - 1))
        if op == "flip":
            out[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del out[at : at + draw(st.integers(1, 64))]
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif op == "truncate":
            del out[at:]
        else:
            out[at:at] = out[at : at + draw(st.integers(1, 200))]
    return bytes(out)


@st.composite
def mutated_dump(draw: st.DrawFn) -> bytes:
    """The sample's dump with whole lines replaced, dropped, repeated or garbled."""
    lines = list(SAMPLE_LINES)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["garble", "drop", "repeat", "binary", "split"]))
        if op == "garble":
            lines[at] = draw(mutated(lines[at] or b"x"))
        elif op == "drop":
            del lines[at]
        elif op == "repeat":
            lines.insert(at, lines[at])
        elif op == "binary":
            lines[at] = draw(st.binary(max_size=80)).replace(b"\n", b" ")
        else:
            cut = draw(st.integers(0, max(0, len(lines[at]) - 1)))
            lines[at : at + 1] = [lines[at][:cut], lines[at][cut:]]
        if not lines:
            break
    return b"\n".join(lines)


def capture_bytes_with(meta: bytes, dump: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.comment = ZIP_COMMENT
        archive.writestr(META_MEMBER, meta)
        archive.writestr(DUMP_MEMBER, dump)
    return buffer.getvalue()


def check_load_capture(data: bytes) -> None:
    """load_capture either returns a capture or raises BadCaptureError."""
    with tempfile.NamedTemporaryFile(suffix=".dmaprof") as handle:
        handle.write(data)
        handle.flush()
        try:
            capture = load_capture(Path(handle.name))
        except BadCaptureError:
            return
        assert isinstance(capture.dump, bytes)


def _ints_are_ints(value: Any, where: str = "report") -> None:
    """Every byte figure is an int (never a float, never NaN)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("bytes") and item is not None:
                assert isinstance(item, int) and not isinstance(item, bool), f"{where}.{key}"
            _ints_are_ints(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value[:50]:
            _ints_are_ints(item, where)


def check_parse_dump(data: bytes) -> None:
    """The framing reader alone: a Dump, or BadCaptureError."""
    try:
        dump = parse_dump(data)
    except BadCaptureError:
        return
    for section in dump.sections:
        _ = section.lines, section.files if section.kind == "files" else None
        _ = section.records if section.kind == "stat" else None
        _ = section.errors if section.kind == "errors" else None


def check_dump(data: bytes) -> None:
    """parse_dump + analyze + build_report either work or raise BadCaptureError, and the
    report keeps its invariants: integer bytes, pss adding up to the userspace total."""
    from dmaprof.analyze.analysis import analyze
    from dmaprof.analyze.report import build_report

    try:
        dump = parse_dump(data)
    except BadCaptureError:
        return
    analysis = analyze(dump)
    report = build_report(analysis, {})
    _ints_are_ints(report)
    shared = sum(p.get("shared_pss_bytes", p["pss_bytes"]) for p in report["processes"])
    totals = report["totals"]
    assert shared == totals["userspace_bytes"], (shared, totals["userspace_bytes"])
