"""Sample addresses (``DIR/@first``, ``DIR/@last``, ``DIR/@N``) in `show`, `diff` and `import`:
the same report and diff as the sample's own file, and one line and exit 9 for a bad address.

Two series: the bundled demo series (``dmaprof.series/1``, recorded from the emulated phone),
and a compact ``dmaprof.series/2`` one written by `record_series` from the demo's captures,
with a gap in slot 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dmaprof.capture.container import Capture, load_capture
from dmaprof.errors import DeviceCommandError, ExitCode
from dmaprof.leaks.series import RecordPlan, read_series, record_series
from tests.leaks.conftest import REPO, Run
from tests.leaks.test_trend import FakeClock

DEMO = REPO / "fixtures" / "captures" / "demo" / "series"
GAP_SLOT = 2


@pytest.fixture(scope="module")
def compact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Slots 0..6 from the demo's six captures, slot 2 a gap (the sampler fails there)."""
    captures = [load_capture(p) for p in sorted(DEMO.glob("sample-*.dmaprof"))]
    slot = 0

    def sampler() -> Capture:
        if slot == GAP_SLOT:
            raise DeviceCommandError("device 127.0.0.1:5555 went offline")
        return captures.pop(0)

    def next_slot(index: int) -> None:
        nonlocal slot
        slot = index + 1

    out = tmp_path_factory.mktemp("series") / "compact"
    record_series(out, RecordPlan(60.0, count=7), sampler, clock=FakeClock(), after_slot=next_slot)
    return out


def _json(run: Run) -> Any:
    assert run.code == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("series", ["demo", "compact"])
def test_show_and_diff_of_an_address_are_those_of_its_file(
    series: str, compact: Path, dmaprof: Callable[..., Run]
) -> None:
    directory = DEMO if series == "demo" else compact
    header, refs, gaps, warnings = read_series(directory)
    assert (len(refs), warnings) == (6, [])
    assert gaps == (0 if series == "demo" else 1)
    [third] = [r.path for r in refs if r.index == 3]
    files = {"first": refs[0].path, "last": refs[-1].path, "3": third}
    if series == "compact":
        assert header["schema"] == "dmaprof.series/2" and refs[2].index == 3  # after the gap
        assert files["3"].name.endswith(".dmaprof-sample")
    for which, path in files.items():
        shown = _json(dmaprof("show", directory / f"@{which}", "--format", "json"))
        assert shown == _json(dmaprof("show", path, "--format", "json")), which
    by_address = _json(
        dmaprof("diff", directory / "@first", directory / "@last", "--format", "json")
    )
    by_file = _json(dmaprof("diff", refs[0].path, refs[-1].path, "--format", "json"))
    assert by_address == by_file
    assert by_address["suspects"], "the demo series leaks: its first and last samples differ"


def test_compact_samples_are_the_demo_captures(compact: Path) -> None:
    """The compact series' samples are the demo's captures, byte for byte, slot 2 skipped."""
    from dmaprof.leaks.series import load_input

    demo = sorted(DEMO.glob("sample-*.dmaprof"))
    for index, original in zip((0, 1, 3, 4, 5, 6), demo, strict=True):
        assert load_input(compact / f"@{index}").dump == load_capture(original).dump
    assert load_input(compact / "@last").dump == load_capture(demo[-1]).dump


def test_import_writes_an_address_out(
    compact: Path, tmp_path: Path, dmaprof: Callable[..., Run]
) -> None:
    out = tmp_path / "s4.dmaprof"
    run = dmaprof("import", compact / "@4", "-o", out)
    assert run.code == 0, run.stderr
    assert load_capture(out).dump == load_capture(sorted(DEMO.glob("sample-*"))[3]).dump


def _bad_addresses(compact: Path, tmp_path: Path) -> list[tuple[Path, str]]:
    empty = tmp_path / "empty"
    empty.mkdir()
    started = tmp_path / "started"
    started.mkdir()
    (started / "samples.ndjson").write_text("")
    return [
        (compact / "@99", "no sample 99 in"),
        (compact / f"@{GAP_SLOT}", "slot 2 of"),  # and the gap's reason
        (compact / "@lastt", "not a sample address: use DIR/@first"),
        (compact / "@-1", "not a sample address"),
        (tmp_path / "nowhere" / "@first", "no such series directory"),
        (DEMO / "sample-00000.dmaprof" / "@first", "is not a directory"),
        (empty / "@last", "is not a series directory"),
        (started / "@first", "holds no sample yet"),
    ]


def test_bad_addresses_are_one_line_and_exit_9(
    compact: Path, tmp_path: Path, dmaprof: Callable[..., Run]
) -> None:
    for address, said in _bad_addresses(compact, tmp_path):
        for args in (
            ("show", address),
            ("diff", address, DEMO / "@last"),
            ("diff", DEMO / "@first", address),
            ("import", address, "-o", tmp_path / "out.dmaprof"),
        ):
            run = dmaprof(*args)
            assert run.code == ExitCode.BAD_CAPTURE, (args, run.stderr)
            lines = run.stderr.splitlines()
            assert len(lines) == 1 and said in lines[0] and str(address) in lines[0], (args, lines)
            assert run.stdout == ""
    gap = dmaprof("show", compact / f"@{GAP_SLOT}")
    assert "is a gap, no sample: device 127.0.0.1:5555 went offline" in gap.stderr
