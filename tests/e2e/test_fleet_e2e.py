"""Fleet workflows end to end: captures of several devices (snapshots of emulated phones,
imported bugreports) exported as one Parquet dataset and queried with DuckDB; the binder view
of a phone snapshot taken through the real adb server."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from dmaprof.capture.container import load_capture
from dmaprof.leaks.side import CaptureInfo
from dmaprof.sources import analyze_source
from tests.e2e.conftest import REPO, PhoneRoot, run_dmaprof
from tests.emuphone.harness import AdbServer
from tests.emuphone.scene import load_scene
from tests.sources.conftest import LAMU, TOKAY_1, TOKAY_2, zip_bugreport

CAPTURES = sorted((REPO / "fixtures" / "captures").glob("*.dmaprof"))
TOP_APPS = """
WITH latest AS (
  SELECT device, max(wallclock) AS wallclock FROM apps GROUP BY device
)
SELECT a.label, count(DISTINCT a.device) AS devices, sum(a.pss_bytes) AS pss_bytes
FROM apps a JOIN latest USING (device, wallclock)
GROUP BY a.label
ORDER BY pss_bytes DESC, a.label
"""


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANDROID_")}
    env.update(extra or {})
    return env


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """fixtures/captures/*.dmaprof (one emulated phone, as root and as the shell user) plus
    three imported bugreports
    (two of one Pixel, one of a MediaTek phone), exported as one dataset."""
    d = tmp_path_factory.mktemp("fleet")
    captures = [d / p.name for p in CAPTURES]
    for src, dst in zip(CAPTURES, captures, strict=True):
        shutil.copy(src, dst)
    for txt in (TOKAY_1, TOKAY_2, LAMU):
        zipped = zip_bugreport(txt, d / txt.with_suffix(".zip").name)
        out = d / f"{txt.stem}.dmaprof"
        result = run_dmaprof("import", zipped, "-o", out, env=_env())
        assert result.returncode == 0, result.stderr
        captures.append(out)
    dataset = d / "dataset"
    result = run_dmaprof("export", *captures, "-o", dataset, env=_env())
    assert result.returncode == 0, result.stderr
    assert b"wrote 5 captures of 3 devices" in result.stderr
    return dataset, captures


def _report(capture: Path) -> dict[str, Any]:
    result = run_dmaprof("show", capture, "--format", "json", env=_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_parquet_layout_is_hive_partitioned(fleet: tuple[Path, list[Path]]) -> None:
    dataset, _captures = fleet
    tables = sorted(p.name for p in dataset.iterdir())
    assert tables == [
        "apps", "buffers", "cgroups", "exporters", "holdings", "kernel_only", "names",
        "processes", "references",
    ]  # fmt: skip
    parts = sorted(p.relative_to(dataset / "apps") for p in (dataset / "apps").rglob("*.parquet"))
    assert len(parts) == 5
    assert all(str(p).startswith("device=") and p.name == "part-0.parquet" for p in parts)
    assert {p.parts[0] for p in parts} >= {"device=4B211FDAQ00123", "device=lamu0a1b2c3d"}


def test_top_apps_by_pss_across_devices_with_duckdb(fleet: tuple[Path, list[Path]]) -> None:
    duckdb = pytest.importorskip("duckdb")
    dataset, captures = fleet
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW apps AS SELECT * FROM read_parquet('{dataset}/apps/**/*.parquet', "
        "hive_partitioning = true)"
    )
    got = {label: (devices, pss) for label, devices, pss in con.execute(TOP_APPS).fetchall()}

    # the oracle: each device's latest capture's own apps table (the analysis export reads)
    latest: dict[str, tuple[float, Any]] = {}
    for path in captures:
        capture = load_capture(path)
        info = CaptureInfo.from_capture(capture)
        if info.serial not in latest or (info.wallclock or 0) > latest[info.serial][0]:
            latest[info.serial] = (info.wallclock or 0, analyze_source(capture).apps)
    expected: dict[str | None, list[int | None]] = {}
    for _when, apps in latest.values():
        for label, pss in zip(apps["label"].astype(object), apps["shared_pss_bytes"], strict=True):
            expected.setdefault(label if isinstance(label, str) else None, []).append(int(pss))

    def total(values: list[int | None]) -> int | None:  # SQL's sum: nulls ignored
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    assert got == {label: (len(v), total(v)) for label, v in expected.items()}

    # by hand, the bugreports: Pixel 9 (its later report) and the MediaTek phone
    #   system (1000): Pixel composer 8355840 + surfaceflinger 12288000 = 20643840;
    #     MediaTek composer 6930432 + surfaceflinger 21612544 = 28542976
    #   the game: 3932160 (201, 202 shared) + 3 x 3932160 (alone) + 524338 (401) = 16252978
    #   cameraserver (1047, MediaTek camerahalserver): 821248 + 1048832 = 1870080
    #   apps are labelled by their processes' full names (CPU INFO / dumpsys meminfo)
    pixel = _report(captures[3])["apps"]  # the Pixel's later bugreport
    mtk = _report(captures[4])["apps"]
    assert {a["label"]: a["pss_bytes"] for a in pixel} == {
        "system": 20643840,
        "com.example.game": 16252978,
        "com.android.systemui": 524339,
    }
    assert {a["label"]: a["pss_bytes"] for a in mtk} == {
        "system": 28542976,
        "cameraserver": 1870080,
        "com.android.launcher3": 1048832,
    }
    assert got["com.example.game"] == (1, 16252978)
    # uid 1000 is "system" everywhere: on the two bugreports (no package list) and on the
    # rooted emulated phone (its package list gives uid 1000 the `android` package, which
    # stays in `packages`): pss_sum of uid 1000 in fixtures/phones/pixel-like.expected.json.
    # The emulated phone's latest capture is its shell-user one, which cannot read uid 1000's
    # processes: its apps table has no system row, so the latest-capture query counts two.
    assert got["system"] == (2, 20643840 + 28542976)
    rooted = next(c for c in captures if c.name == "pixel-like.dmaprof")
    assert {a["label"]: a["pss_bytes"] for a in _report(rooted)["apps"]}["system"] == 46153728
    assert "android" not in got
    # the top row is the largest sum
    first = con.execute(TOP_APPS).fetchone()
    assert first is not None
    assert first[2] == max(pss for _d, pss in got.values() if pss is not None)


def test_growth_per_fingerprint_and_metadata_columns(fleet: tuple[Path, list[Path]]) -> None:
    duckdb = pytest.importorskip("duckdb")
    dataset, _captures = fleet
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW processes AS SELECT * FROM read_parquet("
        f"'{dataset}/processes/**/*.parquet', hive_partitioning = true)"
    )
    rows = con.execute(
        """
        WITH per_capture AS (
          SELECT device, capture, fingerprint, wallclock, sum(pss_bytes) AS pss_bytes
          FROM processes GROUP BY ALL
        )
        SELECT fingerprint, count(DISTINCT device) AS devices,
               arg_max(pss_bytes, wallclock) - arg_min(pss_bytes, wallclock) AS growth
        FROM per_capture GROUP BY fingerprint ORDER BY fingerprint
        """
    ).fetchall()
    growth = {fp: (devices, g) for fp, devices, g in rows}
    # the Pixel's two bugreports: +3 x 3932160 - 12288 of userspace pss
    pixel = "google/tokay/tokay:16/BP2A.250605.031/13578456:user/release-keys"
    assert growth[pixel] == (1, 3 * 3932160 - 12288)
    meta = con.execute(
        "SELECT DISTINCT source_kind, model, sdk, kernel_release FROM processes "
        "WHERE device = 'lamu0a1b2c3d'"
    ).fetchall()
    assert meta == [("bugreport", "Redmi Note 12", 33, "5.10.149-android12-9-o-g0ea8ea6d8f4e")]
    # unknown figures are null, not 0: bugreports have no fd/map split, snapshots do
    split = dict(
        con.execute(
            "SELECT source_kind, count(*) FILTER (WHERE fds IS NULL) FROM processes GROUP BY 1"
        ).fetchall()
    )
    assert split["collector"] == 0 and split["bugreport"] > 0


def test_export_without_pyarrow_names_the_extra(
    fleet: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    _dataset, captures = fleet
    blocker = tmp_path / "no-pyarrow"
    (blocker / "pyarrow").mkdir(parents=True)
    (blocker / "pyarrow" / "__init__.py").write_text("raise ImportError('no pyarrow here')\n")
    result = run_dmaprof(
        "export", captures[0], "-o", tmp_path / "ds", env=_env({"PYTHONPATH": str(blocker)})
    )
    assert result.returncode == 1
    assert b"dmaprof[parquet]" in result.stderr and b"Traceback" not in result.stderr


def test_binder_view_of_a_phone_snapshot(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    scene = load_scene(REPO / "fixtures" / "phones" / "pixel-like.json")
    binder = json.loads((REPO / "fixtures" / "phones" / "pixel-like.binder.json").read_text())
    scene["binder"] = binder["binder"]
    phone = adb_server.phone(phone_root(scene))
    try:
        out = tmp_path / "binder.dmaprof"
        result = run_dmaprof("snapshot", "-o", out, env=phone.env)
        assert result.returncode == 0, result.stderr
        shown = run_dmaprof("show", out, "--by", "binder", "--format", "json", env=phone.env)
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)["binder"]
        assert report["state"] == "present"
        assert report["root"] == "/sys/kernel/debug/binder"
        rows = {r["pid"]: r for r in report["processes"]}
        # figures by hand in tests/sources/test_binder.py
        assert rows[1200]["name"] == "system_server"
        assert (rows[1200]["buffers"], rows[1200]["allocated_bytes"]) == (3, 77872)
        assert rows[1200]["resident_bytes"] == 24 * 4096
        assert rows[612]["contexts"] == ["binder", "hwbinder"]
        assert rows[612]["high_watermark_bytes"] == 7 * 4096
        assert report["totals"]["resident_bytes"] == 131072
        table = run_dmaprof("show", out, "--by", "binder", env={**phone.env, "COLUMNS": "160"})
        text = table.stdout.decode()
        assert "system_server" in text and "76.0 KiB" in text  # 77872 bytes allocated
    finally:
        phone.stop()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_adds_to_a_dataset_and_skips_what_is_there(
    fleet: tuple[Path, list[Path]], tmp_path: Path, fmt: str
) -> None:
    _dataset, captures = fleet
    ds = tmp_path / "ds"

    def export(*args: str | Path) -> str:
        result = run_dmaprof("export", "--format", fmt, *args, "-o", ds, env=_env())
        assert result.returncode == 0, result.stderr
        return result.stderr.decode()

    def capture_ids() -> list[str]:
        if fmt == "parquet":
            parts = (ds / "processes").glob("device=*/capture=*/part-0.parquet")
            return sorted(p.parent.name.removeprefix("capture=") for p in parts)
        import csv

        with (ds / "processes.csv").open(newline="") as handle:
            return sorted({row["capture_id"] for row in csv.DictReader(handle)})

    first = export(captures[0], captures[3])
    assert "wrote 2 captures" in first
    before = capture_ids()
    assert len(before) == 2
    text_before = (ds / "processes.csv").read_text() if fmt == "csv" else ""
    # the whole fleet on top: the two already there are skipped, the three others added
    again = export(*captures)
    assert "wrote 3 captures" in again and "skipped 2 already there" in again
    assert "exists" not in again
    after = capture_ids()
    assert len(after) == 5 and set(before) <= set(after)
    if fmt == "csv":
        # appended, not rewritten: the first export's lines are still the file's first lines
        text = (ds / "processes.csv").read_text()
        assert text.startswith(text_before) and len(text) > len(text_before)
    # nothing new: nothing written, every capture counted as skipped
    third = export(*captures)
    assert "wrote 0 captures" in third and "skipped 5 already there" in third
    assert capture_ids() == after
    # --force rewrites
    forced = run_dmaprof("export", "--format", fmt, "--force", *captures[:2], "-o", ds, env=_env())
    assert forced.returncode == 0 and b"wrote 2 captures" in forced.stderr
    assert len(capture_ids()) == (5 if fmt == "parquet" else 2)
