"""The framed dump reader (dmaprof.capture.dump)."""

from __future__ import annotations

import time

import pytest
from analyze_dumpgen import NONCE, DumpBuilder, files_body

from dmaprof.capture.dump import DumpFormatError, classify_error, parse_dump
from dmaprof.errors import BadCaptureError, ExitCode


def small() -> bytes:
    d = DumpBuilder()
    d.kv("meta", [("collector_version", 1), ("pid", 4242), ("uid", 0)])
    d.text("props", "[ro.product.model]: [Pixel 8]\n")
    d.files(
        "proc",
        {
            "/proc/1/status": "Name:\tinit\nUmask:\t0000\n",
            "/proc/1/cmdline": b"/init\0second\0",
            "/proc/2/cmdline": b"",
        },
    )
    d.stat(
        "fdlinks",
        ["/proc/1/fd/3 /proc/1/fd/3 -> '/dmabuf:a\nb'", "/proc/1/fd/4 /proc/1/fd/4 -> '/dev/null'"],
    )
    d.errors(
        "fdlinks",
        [
            "stat: can't stat '/proc/9/fd/4': No such file or directory",
            "stat: /proc/9/fd/5: No such file or directory",
        ],
    )
    d.section("maps", "files", b"", rc=1)
    d.section("futuristic", "blob", b"anything\n")
    return d.build()


def test_sections_kinds_rc_lines() -> None:
    d = parse_dump(small())
    assert d.version == 1 and d.nonce == NONCE.encode()
    assert d.names == ["meta", "props", "proc", "fdlinks", "fdlinks.err", "maps", "futuristic"]
    assert not d.truncated and d.done
    meta = d.section("meta")
    assert meta is not None and meta.kind == "kv" and meta.rc == 0 and meta.complete
    assert meta.kv_dict() == {"collector_version": "1", "pid": "4242", "uid": "0"}
    props = d.section("props")
    assert props is not None and props.lines == [b"[ro.product.model]: [Pixel 8]"]
    maps = d.section("maps")
    assert maps is not None and maps.rc == 1 and maps.lines == [] and maps.files == {}
    fut = d.section("futuristic")
    assert fut is not None and fut.kind == "blob" and fut.lines == [b"anything"]
    assert any("unknown kind" in w for w in d.warnings)


def test_files_mapping_rejoins_lines_and_keeps_nuls() -> None:
    d = parse_dump(small())
    proc = d.section("proc")
    assert proc is not None
    assert proc.files == {
        "/proc/1/status": b"Name:\tinit\nUmask:\t0000",
        "/proc/1/cmdline": b"/init\0second\0",
    }  # empty file: no line


def test_stat_records_keep_newlines_in_targets() -> None:
    d = parse_dump(small())
    sec = d.section("fdlinks")
    assert sec is not None
    assert sec.records == [
        b"/proc/1/fd/3 /proc/1/fd/3 -> '/dmabuf:a\nb'",
        b"/proc/1/fd/4 /proc/1/fd/4 -> '/dev/null'",
    ]


def test_errors_classified() -> None:
    d = parse_dump(small())
    errs = d.errors_of("fdlinks")
    assert [(e.command, e.path, e.reason, e.pid) for e in errs] == [
        ("stat", "/proc/9/fd/4", "vanished", 9),
        ("stat", "/proc/9/fd/5", "vanished", 9),
    ]


@pytest.mark.parametrize(
    ("line", "command", "path", "reason"),
    [
        ("grep: /proc/123/maps: Permission denied", "grep", "/proc/123/maps", "denied"),
        (
            "stat: can't stat '/proc/9/fd/4': No such file or directory",
            "stat",
            "/proc/9/fd/4",
            "vanished",
        ),
        ("stat: /proc/9/fd/4: No such file or directory", "stat", "/proc/9/fd/4", "vanished"),
        ("stat: '/proc/9/fd/4': No such file or directory", "stat", "/proc/9/fd/4", "vanished"),
        (
            "stat: cannot read symbolic link '/proc/1/fd/3': Permission denied",
            "stat",
            "/proc/1/fd/3",
            "denied",
        ),
        ("ls: can't open '/proc/77/fd': Permission denied", "ls", "/proc/77/fd", "denied"),
        (
            "grep: /sys/kernel/debug/dma_buf/bufinfo: No such file or directory",
            "grep",
            "/sys/kernel/debug/dma_buf/bufinfo",
            "absent",
        ),
        (
            "grep: /proc/5/task/6/fdinfo/3: No such process",
            "grep",
            "/proc/5/task/6/fdinfo/3",
            "vanished",
        ),
        ("grep: /proc/1/environ: Operation not permitted", "grep", "/proc/1/environ", "denied"),
        ("sh: getprop: not found", "sh", "getprop", "other"),
        ("something odd", None, None, "other"),
    ],
)
def test_error_shapes(line: str, command: str | None, path: str | None, reason: str) -> None:
    e = classify_error(line.encode(), "x")
    assert (e.command, e.path, e.reason) == (command, path, reason)


def test_task_path_in_error() -> None:
    e = classify_error(b"grep: /proc/5/task/6/fdinfo/3: Permission denied")
    assert (e.pid, e.tid) == (5, 6)


def test_truncated_dump() -> None:
    data = (
        DumpBuilder()
        .kv("meta", {"pid": 1})
        .section("proc", "files", b"/proc/1/status:Name:\tinit\n", end=False)
        .build(done=False)
    )
    d = parse_dump(data)
    assert d.truncated
    proc = d.section("proc")
    assert proc is not None and not proc.complete and proc.rc is None
    assert proc.files == {"/proc/1/status": b"Name:\tinit"}


def test_truncated_mid_line() -> None:
    data = DumpBuilder().section("proc", "files", b"/proc/1/status:Na", end=False).build(done=False)
    d = parse_dump(data)
    proc = d.section("proc")
    assert d.truncated and proc is not None and proc.lines == [b"/proc/1/status:Na"]


@pytest.mark.parametrize(
    "data", [b"", b"hello\n", b"PK\x03\x04zipzip", b"DMAPROF-DUMP\n", b"DMAPROF-DUMP x abc\n"]
)
def test_not_a_dump(data: bytes) -> None:
    with pytest.raises(DumpFormatError) as ei:
        parse_dump(data)
    assert isinstance(ei.value, BadCaptureError)
    assert ei.value.exit_code == ExitCode.BAD_CAPTURE


def test_newer_version_refused() -> None:
    with pytest.raises(DumpFormatError, match="version 2"):
        parse_dump(DumpBuilder(version=2).build())


def test_preamble_and_crlf() -> None:
    data = b"WARNING: linker: something\n" + small().replace(b"\n", b"\r\n")
    d = parse_dump(data)
    assert d.preamble.startswith(b"WARNING")
    sec = d.section("proc")
    assert sec is not None and sec.files["/proc/1/status"] == b"Name:\tinit\nUmask:\t0000"
    assert len(d.warnings) >= 2


def test_content_cannot_forge_frames() -> None:
    # a file line that looks like a framing line of another nonce is just content
    body = files_body({"/proc/1/cmdline": b"@deadbeef section evil kv\n@deadbeef done\n"})
    d = parse_dump(DumpBuilder().section("proc", "files", body).build())
    assert d.names == ["proc"] and not d.truncated
    sec = d.section("proc")
    assert sec is not None
    assert sec.files["/proc/1/cmdline"] == b"@deadbeef section evil kv\n@deadbeef done"


def test_missing_end_line_before_next_section() -> None:
    d = DumpBuilder()
    d.section("a", "kv", b"x=1\n", end=False)
    d.kv("b", {"y": 2})
    dump = parse_dump(d.build())
    assert dump.names == ["a", "b"]
    a = dump.section("a")
    assert a is not None and not a.complete and a.kv == [("x", "1")]


def test_stray_lines_outside_sections() -> None:
    d = DumpBuilder().raw(b"noise\n").kv("a", {"x": 1}).build()
    dump = parse_dump(d)
    assert dump.stray == [b"noise"]


def test_stat_section_without_end_before_done() -> None:
    d = DumpBuilder()
    d.section(
        "fdlinks", "stat", b"@" + NONCE.encode() + b" /proc/1/fd/3 x -> '/dmabuf:'\n", end=False
    )
    dump = parse_dump(d.build())
    sec = dump.section("fdlinks")
    assert sec is not None and not sec.complete and len(sec.records) == 1 and dump.done


def test_twenty_megabytes_parse_fast() -> None:
    line = b"/proc/1234/fdinfo/56:exp_name:\tsystem\n"
    body = line * (20_000_000 // len(line))
    stat = b"".join(
        b"@" + NONCE.encode() + b" /proc/1/fd/%d /proc/1/fd/%d -> '/dmabuf:x'\n" % (i, i)
        for i in range(50_000)
    )
    data = DumpBuilder().section("fdinfo", "files", body).section("fdlinks", "stat", stat).build()
    assert len(data) > 20_000_000
    best = float("inf")
    for _ in range(3):
        t = time.process_time()
        d = parse_dump(data)
        best = min(best, time.process_time() - t)
    assert d.names == ["fdinfo", "fdlinks"]
    assert best < 0.5, f"parse_dump took {best:.3f} s of CPU for 20 MB"
