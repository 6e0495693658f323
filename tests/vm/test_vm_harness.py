"""Unit tests of the VM harness (scripts/vm/run.py) and the dump reader: no qemu needed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from vm_dump import parse_bufinfo, parse_dump, parse_maps_line
from vm_truth import pss_shares

RUN_PY = Path(__file__).resolve().parents[2] / "scripts" / "vm" / "run.py"


@pytest.fixture(scope="module")
def run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dmaprof_vm_run_unit", RUN_PY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_oops_detection(run: ModuleType) -> None:
    assert run.OOPS_RE.search("[    0.1] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI")
    assert run.OOPS_RE.search("Kernel panic - not syncing: Attempted to kill init!")
    assert not run.OOPS_RE.search("@@dmaprof done 12.3")


def test_marker_and_timings(run: ModuleType) -> None:
    m = run.MARKER_RE.match("@@dmaprof snap1_end 8.02 rc=0")
    assert m and m[1] == "snap1_end" and m[3] == "rc=0"
    mk = [
        run.Marker("shell", 4.0, 7.0),
        run.Marker("modules", 5.0, 8.0),
        run.Marker("ready", 5.5, 8.5),
        run.Marker("snap1_start", 6.0, 9.0),
        run.Marker("snap1_end", 7.5, 10.5, "rc=0"),
        run.Marker("done", 9.0, 12.0),
    ]
    t = run.timings(mk)
    assert t["boot_host_s"] == 7.0 and t["collector_s"] == [1.5] and t["scene_s"] == 0.5


def test_kernel_words_and_package_order(run: ModuleType) -> None:
    assert run._words(mode="scene", gap=3.0, exporter=None) == [
        "dmaprof.mode=scene",
        "dmaprof.gap=3",
    ]
    names = [
        "linux-image-6.1.0-9-amd64",
        "linux-image-6.1.0-56-amd64",
        "linux-image-6.1.0-47-amd64",
    ]
    assert sorted(names, key=run._pkg_sort_key)[-1] == "linux-image-6.1.0-56-amd64"


@pytest.mark.parametrize(
    ("cause", "console"), [("oops", "Oops: int3\n"), ("hung", "")], ids=["oops", "hang"]
)
def test_boot_is_retried_once_after_an_oops_or_a_hang(
    run: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cause: str, console: str
) -> None:
    calls: list[int] = []

    def fake_boot(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        failed = len(calls) == 1
        (tmp_path / "console.log").write_text(console if failed else "ok\n")
        markers = [] if failed else [run.Marker("done", 1.0, 2.0)]
        oops, hung = failed and cause == "oops", failed and cause == "hung"
        return run.BootResult(0, False, oops, 1.0, "", markers, ["qemu"], hung=hung)

    monkeypatch.setattr(run, "boot", fake_boot)
    (tmp_path / "out").mkdir()
    res, attempts = run.boot_with_retry(
        SimpleNamespace(kver="test"), tmp_path, tmp_path, [], 10, reset=[tmp_path / "out"]
    )
    assert len(calls) == 2 and res.marker("done") is not None
    assert [a[cause] for a in attempts] == [True, False]
    assert not (tmp_path / "out").exists()  # cleared before the second boot
    assert (tmp_path / "console.attempt1.log").exists()


def test_no_retry_without_oops(
    run: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake_boot(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return run.BootResult(None, True, False, 10.0, "", [], ["qemu"])

    monkeypatch.setattr(run, "boot", fake_boot)
    _res, attempts = run.boot_with_retry(SimpleNamespace(kver="test"), tmp_path, tmp_path, [], 10)
    assert len(calls) == 1 and attempts[0]["timed_out"]


def test_a_silent_guest_is_killed_as_hung(run: ModuleType, tmp_path: Path) -> None:
    # A real process that never prints stands in for qemu stuck before /init.
    guest = run.Guest(["sleep", "60"], tmp_path / "console.log", echo=False)
    guest.kill_if_silent(0.5)
    res = guest.wait(30)
    assert res.hung and res.returncode == -9 and res.wall_s < 20


def test_a_guest_that_reached_init_is_not_killed(run: ModuleType, tmp_path: Path) -> None:
    script = "echo '@@dmaprof shell 1.0'; sleep 1; echo '@@dmaprof done 2.0'"
    guest = run.Guest(["sh", "-c", script], tmp_path / "console.log", echo=False)
    guest.kill_if_silent(20)
    res = guest.wait(30)
    assert not res.hung and res.returncode == 0 and res.marker("done") is not None


def test_parse_dump_framing() -> None:
    n = "abc123"
    data = (
        f"DMAPROF-DUMP 1 {n}\n@{n} section global files\n"
        "/sys/kernel/debug/dma_buf/bufinfo:\n"
        "/sys/kernel/debug/dma_buf/bufinfo:x:y\n"
        f"@{n} end global rc=0\n@{n} section fdlinks stat\n"
        f"@{n} /proc/9/fd/3 '/proc/9/fd/3' -> '/dmabuf:a\nb'\n"
        f"@{n} end fdlinks rc=0\n@{n} done\n"
    ).encode()
    d = parse_dump(data)
    assert d.done and not d.problems
    assert d.files("global")["/sys/kernel/debug/dma_buf/bufinfo"] == [b"", b"x:y"]
    assert d.stat_records("fdlinks") == [b"/proc/9/fd/3 '/proc/9/fd/3' -> '/dmabuf:a\nb'"]
    assert not parse_dump(data.replace(f"@{n} done\n".encode(), b"")).done


def test_parse_bufinfo_and_maps() -> None:
    text = (
        "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n"
        "08294400\t00000002\t00080007\t00000004\tsystem\t00000005\tsf-fb1\n"
        "\tAttached Devices:\n\tvgem\nTotal 1 devices attached\n\n"
        "00065536\t00000002\t00080007\t00000001\tsystem\t00000001\t<none>\n"
        "\tAttached Devices:\nTotal 0 devices attached\n\n\nTotal 2 objects, 8359936 bytes\n"
    )
    b = parse_bufinfo([ln.encode() for ln in text.split("\n")])
    assert not b.problems and b.total_objects == 2 and b.total_bytes == 8359936
    assert b.records[5].attached == ["vgem"] and b.records[1].name == "<none>"
    ml = parse_maps_line(b"7efed8ca1000-7efed948a000 rw-s 100120000 00:0a 4      /dmabuf:sf-fb0")
    assert ml.ino == 4 and ml.offset == 0x100120000 and ml.path == "/dmabuf:sf-fb0"


def test_pss_shares_sum_to_size() -> None:
    for size in (0, 1, 4096, 614400, 8294401):
        for n in (1, 2, 3, 7):
            shares = pss_shares(size, range(100, 100 + n))
            assert sum(shares.values()) == size
            assert max(shares.values()) - min(shares.values()) <= 1
