"""Binder buffer memory: the collector's `binder` section, parsed for several kernel eras,
and read from a fake phone (fixtures/phones/pixel-like.binder.json).

Figures of the fake phone (4 KiB pages; a buffer's bytes are data + offsets + extra):

    pid   contexts           buffers (bytes)                         pages a:l:f   high
    612   binder, hwbinder   240+8, 1024+16 (active)        = 1288   3:1:250 +     6 + 1
                                                                     1:0:253
    1200  binder             4096, 8192+24, 65536+8+16     = 77872  20:4:230      31
    1800  binder             512+8                         = 520    1:2:251       3
    3100  binder             -                             = 0      0:0:254       0

    resident (active + lru pages): 612 (4+1) x 4096 = 20480, 1200 24 x 4096 = 98304,
      1800 3 x 4096 = 12288, 3100 0
    mapped (all pages): 254 pages = 1040384 bytes per context; 612 has two: 2080768
    free = mapped - allocated: 612 2080768 - 1288 = 2079480, 1200 1040384 - 77872 = 962512,
      1800 1040384 - 520 = 1039864, 3100 1040384
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from dmaprof.analyze.binder import binder_report, parse_binder
from dmaprof.analyze.schema import BINDER_VIEW
from dmaprof.capture.dump import parse_dump
from tests.emuphone import scene as S
from tests.sources.conftest import REPO

BINDER = REPO / "fixtures" / "phones" / "pixel-like.binder.json"
RUST = REPO / "fixtures" / "binder" / "rust-6.18"  # see its README.md
BINDERFS = "/dev/binderfs/binder_logs"
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="chroot and uid switching need root")
TOOLS = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("toybox", "busybox", "mksh")),
    reason="needs toybox, busybox and mksh (bash scripts/test.sh installs them)",
)


def binder_scene() -> dict[str, Any]:
    scene: dict[str, Any] = S.load_scene(S.FIXTURES / "pixel-like.json")
    scene["binder"] = json.loads(BINDER.read_text())["binder"]
    return scene


def dump_of(files: dict[str, str], errors: list[str] = ()) -> bytes:  # type: ignore[assignment]
    """A collector dump with only a `binder` section holding these files (grep's output)."""
    n = "0123abcd"
    out = [f"DMAPROF-DUMP 1 {n}\n", f"@{n} section binder files\n"]
    for path, text in files.items():
        out += [f"{path}:{line}\n" for line in text.splitlines()]
    out.append(f"@{n} end binder rc=0\n")
    if errors:
        out += [f"@{n} section binder.err errors\n", *(e + "\n" for e in errors)]
        out.append(f"@{n} end binder.err rc=0\n")
    out.append(f"@{n} done\n")
    return "".join(out).encode()


#: the collector's grep patterns for binder files (dmaprof/collect/collect.sh)
_KEPT = re.compile(
    r"^(proc |context |  buffer|  pages|  free async space|  free oneway space|  ref .*  buffer)"
)


def _keep(text: str) -> str:
    """What the collector's grep keeps of a binder debug file."""
    return "".join(line + "\n" for line in text.splitlines() if _KEPT.match(line))


def test_linux_6_1_format_from_the_fake_phone_files() -> None:
    files = S.binder_files(json.loads(BINDER.read_text())["binder"])
    root = "/sys/kernel/debug/binder"
    dump = dump_of(
        {
            **{f"{root}/{rel}": _keep(text) for rel, text in files.items()},
            "/proc/self/smaps": "KernelPageSize:        4 kB\nKernelPageSize:        4 kB\n",
        }
    )
    report = binder_report(parse_binder(parse_dump(dump)), {612: "surfaceflinger"})
    assert report["state"] == "present" and report["page_size_known"]
    assert report["driver"] == "c" and report["note"] is None
    rows = {r["pid"]: r for r in report["processes"]}
    assert all(list(r) == BINDER_VIEW.names for r in rows.values())
    assert rows[612]["oneway_buffers"] is None  # the C driver does not say
    assert [r["pid"] for r in report["processes"]] == [1200, 612, 1800, 3100]  # by resident
    sf = rows[612]
    assert sf["name"] == "surfaceflinger" and sf["contexts"] == ["binder", "hwbinder"]
    assert (sf["buffers"], sf["active_buffers"], sf["allocated_bytes"]) == (
        2,
        1,
        240 + 8 + 1024 + 16,
    )
    assert (sf["pages_active"], sf["pages_lru"], sf["pages_free"]) == (3 + 1, 1 + 0, 250 + 253)
    assert sf["resident_bytes"] == (4 + 1) * 4096
    assert sf["mapped_bytes"] == 508 * 4096 == 2080768
    assert sf["free_bytes"] == 2080768 - 1288
    assert sf["high_watermark_bytes"] == (6 + 1) * 4096
    assert sf["free_async_space_bytes"] == 2 * 520192
    assert rows[1200]["allocated_bytes"] == 4096 + (8192 + 24) + (65536 + 8 + 16) == 77872
    assert rows[1200]["free_bytes"] == 1040384 - 77872
    assert rows[3100]["buffers"] == 0 and rows[3100]["resident_bytes"] == 0
    assert report["totals"] == {
        "buffers": 6,
        "allocated_bytes": 1288 + 77872 + 520,
        "free_bytes": (2080768 - 1288) + (1040384 - 77872) + (1040384 - 520) + 1040384,
        "mapped_bytes": 2080768 + 3 * 1040384,
        "resident_bytes": 20480 + 98304 + 12288,
        "high_watermark_bytes": (7 + 31 + 3) * 4096,
    }
    assert report["unparsed_lines"] == 0


def test_older_kernels_and_16k_pages() -> None:
    # 5.4: %pK addresses (zeros under kptr_restrict), binderfs logs, 16 KiB pages
    v54 = (
        "proc 900\ncontext binder\n"
        "  buffer 11: 0000000000000000 size 96:0:0 active\n"
        "  buffer 12: 0000000000000000 size 4000:16:8 delivered\n"
    )
    stats54 = (
        "proc 900\ncontext binder\n  free async space 507904\n  buffers: 2\n"
        "  pages: 2:1:60\n  pages high watermark: 5\n"
    )
    # 4.4: no context line, two sizes per buffer, no pages lines
    v44 = "proc 77\n  buffer 17: e5a00000 size 240:8 delivered\n"
    stats44 = "proc 77\n  free async space 520192\n  buffers: 1\n"
    binderfs = "/dev/binderfs/binder_logs"
    dump = dump_of(
        {
            f"{binderfs}/proc/900": v54,
            f"{binderfs}/proc/77": v44,
            f"{binderfs}/stats": stats54 + stats44,
            "/proc/self/smaps": "KernelPageSize:       16 kB\n",
        }
    )
    report = binder_report(parse_binder(parse_dump(dump)))
    assert report["root"] == binderfs and report["page_size_bytes"] == 16384
    rows = {r["pid"]: r for r in report["processes"]}
    assert rows[900]["allocated_bytes"] == 96 + 4000 + 16 + 8
    assert rows[900]["active_buffers"] == 1
    assert rows[900]["resident_bytes"] == 3 * 16384
    assert rows[900]["mapped_bytes"] == 63 * 16384
    assert rows[77]["contexts"] == ["binder"]
    assert rows[77]["allocated_bytes"] == 248
    # no pages lines before 4.14: null, not 0
    assert rows[77]["resident_bytes"] is None and rows[77]["free_bytes"] is None
    assert rows[77]["free_async_space_bytes"] == 520192


def test_states_when_there_is_nothing_to_read() -> None:
    denied = dump_of({}, ["grep: /sys/kernel/debug/binder/proc: Permission denied"])
    assert binder_report(parse_binder(parse_dump(denied)))["state"] == "denied"
    absent = dump_of({}, ["grep: /sys/kernel/debug/binder/proc: No such file or directory"])
    report = binder_report(parse_binder(parse_dump(absent)))
    assert report["state"] == "absent" and "absent" in report["note"]
    old = b"DMAPROF-DUMP 1 n\n@n done\n"
    assert binder_report(parse_binder(parse_dump(old)))["state"] == "missing"


@ROOT_ONLY
@TOOLS
def test_collector_reads_binder_with_one_grep(tmp_path: Path) -> None:
    from tests.emuphone.minroot import build_base_root

    root = tmp_path / "phone"
    build_base_root(root)
    S.build_scene(binder_scene(), root)
    wd = S.install_collector(root, 0, "dp-binder")
    run = S.run_collector(root, ["-w", wd], script=f"{wd}/collect.sh")
    assert run.returncode == 0 and run.stderr == b"", run.stderr
    dump = parse_dump(run.stdout)
    section = dump.section("binder")
    assert section is not None
    # threads, nodes, refs, BC_/BR_ counters are not kept; only the lines the host reads
    kept = {line.split(b":", 1)[1].split()[0] for line in section.lines}
    assert kept <= {
        b"proc",
        b"context",
        b"buffer",
        b"buffers:",
        b"pages:",
        b"pages",
        b"free",
        b"KernelPageSize:",
    }
    info = parse_binder(dump)
    assert info.page_size_known and info.page_size == 4096
    report = binder_report(info)
    assert report["totals"]["allocated_bytes"] == 79680
    # as the shell user of a user build, debugfs is closed: said, not zero
    wd = S.install_collector(root, 2000, "dp-binder-shell")
    run = S.run_collector(root, ["-w", wd], uid=2000, script=f"{wd}/collect.sh")
    shell = binder_report(parse_binder(parse_dump(run.stdout)))
    assert shell["state"] == "denied" and shell["processes"] == []


def _rust_files() -> dict[str, str]:
    return {
        f"{BINDERFS}/{p.relative_to(RUST)}": p.read_text()
        for p in sorted(RUST.rglob("*"))
        if p.is_file() and p.name != "README.md"
    }


def _check_rust_report(report: dict[str, Any]) -> None:
    """The Rust driver's files (fixtures/binder/rust-6.18), by hand:

    pid   contexts          buffers (size, pid, oneway, state)                  bytes
    612   binder, hwbinder  248 from 1200; 1040 from 1800 oneway reserved       1288
                            (the first glued to the ref line before it)
    1200  binder            4096 from 612; 8216 from 1800 oneway; 65560 from    77872
                            3100 reserved (tree allocator; the first glued)
    1800  binder            520 from 1200 (array allocator)                      520
    3100  binder            -                                                    0

    free oneway space: 612 (520192 - 1040) + 520192 = 1039344; 1200 520192 - 8216 =
    511976; 1800 and 3100 520192. No page lines: pages held, free, mapped, high
    watermark unknown (null), not 0.
    """
    assert (report["state"], report["driver"], report["root"]) == ("present", "rust", BINDERFS)
    assert "Rust binder driver prints no page counts" in report["note"]
    rows = {r["pid"]: r for r in report["processes"]}
    assert [r["pid"] for r in report["processes"]] == [1200, 612, 1800, 3100]
    assert all(list(r) == BINDER_VIEW.names for r in report["processes"])  # docs/tables.md
    expected = {
        612: (["binder", "hwbinder"], 2, 1288, 1, 1, 1039344),
        1200: (["binder"], 3, 77872, 1, 1, 511976),
        1800: (["binder"], 1, 520, 0, 0, 520192),
        3100: (["binder"], 0, 0, 0, 0, 520192),
    }
    for pid, (contexts, n, allocated, oneway, reserved, free_oneway) in expected.items():
        r = rows[pid]
        assert r["contexts"] == contexts, pid
        assert (r["buffers"], r["allocated_bytes"]) == (n, allocated), pid
        assert (r["oneway_buffers"], r["reserved_buffers"]) == (oneway, reserved), pid
        assert r["free_async_space_bytes"] == free_oneway, pid
        assert r["active_buffers"] is None, pid  # the C driver's notion, not printed here
        for key in ("pages_active", "pages_lru", "pages_free", "pages_high_watermark"):
            assert r[key] is None, (pid, key)
        for key in ("resident_bytes", "mapped_bytes", "free_bytes", "high_watermark_bytes"):
            assert r[key] is None, (pid, key)
    assert report["totals"] == {
        "buffers": 6,
        "allocated_bytes": 1288 + 77872 + 520,
        "free_bytes": None,
        "mapped_bytes": None,
        "resident_bytes": None,
        "high_watermark_bytes": None,
    }
    assert report["unparsed_lines"] == 0


def test_rust_driver_format_from_the_kernel_format_strings() -> None:
    dump = dump_of(
        {
            **{path: _keep(text) for path, text in _rust_files().items()},
            "/proc/self/smaps": "KernelPageSize:        4 kB\n",
        }
    )
    _check_rust_report(binder_report(parse_binder(parse_dump(dump))))


def test_rust_driver_buffer_line_variants() -> None:
    # the array allocator (oneway true/false), the tree allocator (oneway only when set), an
    # older tree allocator without a space before the state, and a line glued to refs
    text = (
        "proc 5\ncontext binder\n"
        "  buffer 0: 0 size 16 pid 7 oneway true allocated\n"
        "  buffer: 16 size 32 pid 7 oneway reserved\n"
        "  buffer 0: 48 size 64 pid 8 oneway falsereserved\n"
        "  ref 1: desc 0 node 1 s 1 w 1  ref 2: desc 1 dead node 4 s 0 w 1  buffer: 112 size 8 "
        "pid 9 allocated\n"
    )
    report = binder_report(parse_binder(parse_dump(dump_of({f"{BINDERFS}/proc/5": text}))))
    [row] = report["processes"]
    assert (row["buffers"], row["allocated_bytes"]) == (4, 16 + 32 + 64 + 8)
    assert (row["oneway_buffers"], row["reserved_buffers"]) == (2, 2)
    assert report["unparsed_lines"] == 0


@ROOT_ONLY
@TOOLS
@pytest.mark.parametrize("toolset", ["mksh+toybox", "busybox"])
def test_collector_keeps_the_rust_driver_lines(tmp_path: Path, toolset: str) -> None:
    """The real collector (mksh + toybox, and busybox) on a fake phone whose binderfs logs are
    the Rust driver's: it keeps the lines the view needs (the glued ref+buffer line, `free
    oneway space:`), and `show --by binder` gives the figures with unknown pages."""
    from tests.emuphone.minroot import build_base_root
    from tests.test_cli import run_dmaprof

    root = tmp_path / "phone"
    if toolset == "busybox":
        S.build_busybox_root(root)
    else:
        build_base_root(root)
    S.build_scene(S.load_scene(S.FIXTURES / "pixel-like.json"), root)
    for path, text in _rust_files().items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    wd = S.install_collector(root, 0, "dp-rust-binder")
    run = S.run_collector(root, ["-w", wd], script=f"{wd}/collect.sh")
    assert run.returncode == 0 and run.stderr == b"", run.stderr
    dump = parse_dump(run.stdout)
    section = dump.section("binder")
    assert section is not None
    kept = [line.split(b":", 1)[1] for line in section.lines]
    assert sum(line.startswith(b"  ref ") for line in kept) == 2  # the two glued lines
    assert not any(line.startswith((b"  thread", b"  node", b"  threads:")) for line in kept)
    names = {612: "surfaceflinger", 1200: "system_server"}
    _check_rust_report(binder_report(parse_binder(dump), names))
    dump_file = tmp_path / "dump"
    dump_file.write_bytes(run.stdout)
    capture = tmp_path / "rust.dmaprof"
    assert run_dmaprof("import", str(dump_file), "-o", str(capture)).returncode == 0
    shown = run_dmaprof("show", str(capture), "--by", "binder", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)["binder"]
    _check_rust_report(report)
    assert {r["pid"]: r["name"] for r in report["processes"]}[1200] == "system_server"
    table = run_dmaprof(
        "show", str(capture), "--by", "binder", env={**os.environ, "COLUMNS": "160"}
    ).stdout.decode()
    assert "system_server" in table and "76.0 KiB" in table  # 77872 bytes allocated
    assert "unknown" in table and "prints no page counts" in table
