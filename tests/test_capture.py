"""The capture container: round trip, atomic writes, and every kind of bad file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from dmaprof.capture.container import (
    DUMP_MEMBER,
    MAX_META_BYTES,
    META_MEMBER,
    ZIP_COMMENT,
    Capture,
    load_capture,
    write_capture,
)
from dmaprof.errors import BadCaptureError, DmaprofError, ExitCode

DUMP = (
    b"DMAPROF-DUMP 1 abc\n@abc section meta kv\ncollector_version=1\n"
    b"@abc end meta rc=0\n@abc done\n"
)


def _capture() -> Capture:
    return Capture(meta={"device": {"serial": "x"}, "collection": {"complete": True}}, dump=DUMP)


def test_round_trip_keeps_the_dump_byte_for_byte(tmp_path: Path) -> None:
    path = write_capture(_capture(), tmp_path / "a.dmaprof")
    loaded = load_capture(path)
    assert loaded.dump == DUMP
    assert loaded.meta["schema"] == "dmaprof.capture/1"
    assert loaded.meta["dump"]["size_bytes"] == len(DUMP)
    assert loaded.device == {"serial": "x"}
    assert loaded.complete
    # nothing but the capture itself is left in the directory (no temporary files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dmaprof"]


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "a.dmaprof"
    target.write_bytes(b"precious")
    with pytest.raises(DmaprofError, match="will not overwrite"):
        write_capture(_capture(), target)
    assert target.read_bytes() == b"precious"
    write_capture(_capture(), target, overwrite=True)
    assert load_capture(target).dump == DUMP


def _expect_bad(path: Path, match: str) -> None:
    with pytest.raises(BadCaptureError, match=match) as info:
        load_capture(path)
    assert info.value.exit_code == ExitCode.BAD_CAPTURE


def test_missing_file_and_directory(tmp_path: Path) -> None:
    _expect_bad(tmp_path / "nope.dmaprof", "no such file")
    _expect_bad(tmp_path, "is a directory")


def test_raw_dump_gets_a_hint_to_import(tmp_path: Path) -> None:
    raw = tmp_path / "dump"
    raw.write_bytes(DUMP)
    _expect_bad(raw, "dmaprof import")


def test_not_a_capture(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    _expect_bad(other, "not a dmaprof capture")
    empty = tmp_path / "empty.dmaprof"
    empty.write_bytes(b"")
    _expect_bad(empty, "not a dmaprof capture")
    foreign_zip = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign_zip, "w") as archive:
        archive.writestr("hello.txt", "hi")
    _expect_bad(foreign_zip, "no meta.json")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
def test_truncated_capture(tmp_path: Path, keep: float) -> None:
    path = write_capture(_capture(), tmp_path / "a.dmaprof")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    _expect_bad(path, "truncated or corrupt|corrupt")


def test_flipped_byte_is_detected(tmp_path: Path) -> None:
    capture = Capture(meta={}, dump=DUMP * 50)
    path = write_capture(capture, tmp_path / "a.dmaprof")
    data = bytearray(path.read_bytes())
    # flip a byte inside the compressed dump member (after the local header of meta.json)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(DUMP_MEMBER)
    offset = info.header_offset + 30 + len(DUMP_MEMBER) + 5
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    _expect_bad(path, "corrupt")


def test_checksum_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "a.dmaprof"
    meta = {"schema": "dmaprof.capture/1", "dump": {"sha256": "0" * 64}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.comment = ZIP_COMMENT
        archive.writestr(META_MEMBER, json.dumps(meta))
        archive.writestr(DUMP_MEMBER, DUMP)
    _expect_bad(path, "checksum")


def test_newer_schema_is_refused_with_upgrade_hint(tmp_path: Path) -> None:
    path = tmp_path / "a.dmaprof"
    with zipfile.ZipFile(path, "w") as archive:
        archive.comment = ZIP_COMMENT
        archive.writestr(META_MEMBER, json.dumps({"schema": "dmaprof.capture/2"}))
        archive.writestr(DUMP_MEMBER, DUMP)
    _expect_bad(path, "newer dmaprof.*upgrade")


def test_garbage_metadata(tmp_path: Path) -> None:
    path = tmp_path / "a.dmaprof"
    with zipfile.ZipFile(path, "w") as archive:
        archive.comment = ZIP_COMMENT
        archive.writestr(META_MEMBER, b"\xff{not json")
        archive.writestr(DUMP_MEMBER, DUMP)
    _expect_bad(path, "corrupt capture metadata")


def test_decompression_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.dmaprof"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.comment = ZIP_COMMENT
        archive.writestr(META_MEMBER, b" " * (MAX_META_BYTES + 10))
        archive.writestr(DUMP_MEMBER, DUMP)
    _expect_bad(path, "over the limit")


def test_member_names_are_never_extracted(tmp_path: Path) -> None:
    """A capture holding a path-traversal member is read without touching the filesystem."""
    path = write_capture(_capture(), tmp_path / "sub" / "a.dmaprof")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("../../evil.txt", "owned")
    before = set(tmp_path.rglob("*"))
    assert load_capture(path).dump == DUMP
    assert set(tmp_path.rglob("*")) == before
