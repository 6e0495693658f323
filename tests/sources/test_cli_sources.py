"""The CLI on imported bugreports: import, show (unknowns said, not zeros), diff, trend,
export to CSV. Real entry point in a subprocess."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tests.sources.conftest import SV, TOKAY_1, TOKAY_2, zip_bugreport
from tests.test_cli import run_dmaprof


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("bugreports")
    out = []
    for k, txt in enumerate((TOKAY_1, TOKAY_2)):
        zipped = zip_bugreport(txt, d / txt.with_suffix(".zip").name)
        capture = d / f"{k}.dmaprof"
        result = run_dmaprof("import", str(zipped), "-o", str(capture))
        assert result.returncode == 0, result.stderr
        assert result.stdout == b""
        out.append(capture)
    return out[0], out[1]


def test_show_says_what_a_bugreport_cannot_tell(pair: tuple[Path, Path]) -> None:
    before, _after = pair
    report = json.loads(run_dmaprof("show", str(before), "--format", "json").stdout)
    assert report["source"]["kind"] == "bugreport"
    assert report["device"]["model"] == "Pixel 9"
    assert [p["fds"] for p in report["processes"]] == [None] * 4
    assert any(lim["key"] == "fd_map_split" for lim in report["limitations"])
    table = run_dmaprof("show", str(before), env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    text = table.stdout.decode()
    assert table.returncode == 0, table.stderr
    assert "unknown" in text and "surfaceflinger" in text
    cgroups = run_dmaprof("show", str(before), "--by", "cgroup").stdout.decode()
    assert "unknown: no cgroups" in cgroups
    binder = run_dmaprof("show", str(before), "--by", "binder").stdout.decode()
    assert "has no binder buffer data" in binder


def test_diff_of_two_bugreports(pair: tuple[Path, Path]) -> None:
    before, after = pair
    result = run_dmaprof("diff", str(before), str(after), "--format", "json")
    assert result.returncode == 0, result.stderr
    d = json.loads(result.stdout)
    assert (d["same_device"], d["same_boot"]) == (True, True)
    # three new SurfaceView buffers (3 x 3932160), 301 (12288) freed
    assert d["totals"]["delta_bytes"] == 3 * 3932160 - 12288 == 11784192
    assert (d["buffers"]["new_count"], d["buffers"]["freed_count"]) == (3, 1)
    assert d["buffers"]["freed_bytes"] == 12288
    [suspect] = d["suspects"]
    assert (suspect["pid"], suspect["name"]) == (7001, SV)
    assert suspect["delta_bytes"] == 3 * 3932160
    assert "not known which" in suspect["reason"]
    game = next(p for p in d["processes"] if p["pid"] == 7001)
    # 8925285 -> 2 x 3932160 + 3 x 3932160 + 1048677 (301 gone)
    assert (game["rss_bytes_before"], game["rss_bytes_after"]) == (8925285, 20709477)
    assert game["fds_before"] is None and game["delta_map_only"] is None
    assert d["totals"]["anon_fds_before"] is None
    assert any("fd_only, map_only" in w for w in d["warnings"])
    table = run_dmaprof("diff", str(before), str(after))
    assert table.returncode == 0 and b"com.example.game" in table.stdout


def test_trend_over_bugreports(pair: tuple[Path, Path], tmp_path: Path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    for k, capture in enumerate(pair):
        (series / f"{k}.dmaprof").write_bytes(capture.read_bytes())
    result = run_dmaprof("trend", str(series), "--format", "json")
    assert result.returncode == 0, result.stderr
    trend = json.loads(result.stdout)
    assert trend["samples"] == 2
    assert trend["span_s"] == pytest.approx(3600 + 23)


def test_export_csv(pair: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    result = run_dmaprof("export", str(pair[0]), str(pair[1]), "--format", "csv", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert b"wrote 2 captures of 1 devices" in result.stderr
    with (out / "apps.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    game = [r for r in rows if r["label"] == "com.example.game"]
    assert [int(r["pss_bytes"]) for r in game] == [4468786, 16252978]
    # the tables' name of the exact share, and the datasets' first name kept beside it
    assert all(r["shared_pss_bytes"] == r["pss_bytes"] for r in rows)
    assert {r["serial"] for r in rows} == {"4B211FDAQ00123"}
    with (out / "processes.csv").open() as handle:
        procs = list(csv.DictReader(handle))
    assert {r["fds"] for r in procs} == {""}  # unknown: empty, never 0
    # exported again: already there, skipped, the files untouched (issue 15: export adds)
    text = (out / "apps.csv").read_text()
    again = run_dmaprof("export", str(pair[0]), "--format", "csv", "-o", str(out))
    assert again.returncode == 0 and b"skipped 1 already there" in again.stderr
    assert (out / "apps.csv").read_text() == text
    forced = run_dmaprof("export", str(pair[0]), "--format", "csv", "--force", "-o", str(out))
    assert forced.returncode == 0 and b"wrote 1 captures" in forced.stderr
    with (out / "apps.csv").open() as handle:
        assert [
            int(r["pss_bytes"]) for r in csv.DictReader(handle) if r["label"] == "com.example.game"
        ] == [4468786]


def test_import_kind_and_errors(tmp_path: Path) -> None:
    result = run_dmaprof("import", str(TOKAY_1), "--kind", "collector", "-o", str(tmp_path / "x"))
    assert result.returncode == 9
    assert b"not a collector dump" in result.stderr
    nothing = tmp_path / "n.txt"
    nothing.write_text("nothing here\n")
    result = run_dmaprof("import", str(nothing), "-o", str(tmp_path / "y"))
    assert result.returncode == 9 and b"--kind" in result.stderr


def _comm_alone(text: str, comm: str) -> bool:
    """Whether `comm` appears other than as the tail of its full name."""
    return re.search(r"(?<![\w.])" + re.escape(comm), text) is not None


def test_full_names_in_every_view_and_in_budgets(pair: tuple[Path, Path]) -> None:
    """The bugreport's dmabuf_dump and ps name processes by their 15-byte comm
    (`om.example.game`, `ndroid.systemui`); its CPU INFO (`top ... cmd,name`) NAME column
    gives argv[0]: every view and the budget output show that."""
    before, after = pair
    wide = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    outputs = {
        "table": run_dmaprof("show", str(before), env=wide).stdout.decode(),
        "process": run_dmaprof("show", str(before), "--by", "process", env=wide).stdout.decode(),
        "app": run_dmaprof("show", str(before), "--by", "app", env=wide).stdout.decode(),
        "csv": run_dmaprof("show", str(before), "--format", "csv").stdout.decode(),
        "markdown": run_dmaprof("show", str(before), "--format", "markdown").stdout.decode(),
        "app csv": run_dmaprof(
            "show", str(before), "--by", "app", "--format", "csv"
        ).stdout.decode(),
    }
    for view, text in outputs.items():
        assert "com.example.game" in text, view
        if view not in ("app", "app csv"):  # the app view lists apps, not processes
            assert "com.android.systemui" in text, view
        assert not _comm_alone(text, "om.example.game"), view
        assert not _comm_alone(text, "ndroid.systemui"), view
    report = json.loads(run_dmaprof("show", str(before), "--format", "json").stdout)
    shown = {p["pid"]: p["display_name"] for p in report["processes"]}
    assert shown == {
        812: "android.hardware.graphics.composer3-service.pixel",
        1040: "surfaceflinger",
        2100: "com.android.systemui",
        7001: "com.example.game",
    }
    # the comm is kept beside it (it is what dmabuf_dump printed)
    assert {p["pid"]: p["name"] for p in report["processes"]}[7001] == "om.example.game"
    assert {a["uid"]: a["label"] for a in report["apps"]}[10245] == "com.example.game"
    # budgets select and report processes by the full name: +3 x 3932160 - 12288 for the game
    gate = run_dmaprof(
        "diff", str(before), str(after), "--fail-on", "process:com.example.game>10MiB"
    )
    assert gate.returncode == 10, gate.stderr
    text = (gate.stdout + gate.stderr).decode()
    assert "process:com.example.game" in text
    assert not _comm_alone(text, "om.example.game")
