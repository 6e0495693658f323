"""The binder view of a phone with the Rust binder driver, snapshotted through the real adb
server: its binderfs logs are fixtures/binder/rust-6.18 (the kernel's format strings)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import REPO, PhoneRoot, run_dmaprof
from tests.emuphone.harness import AdbServer
from tests.emuphone.scene import load_scene

RUST = REPO / "fixtures" / "binder" / "rust-6.18"


def test_rust_binder_driver_phone_snapshot(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root(load_scene(REPO / "fixtures" / "phones" / "pixel-like.json"))
    logs = root / "dev" / "binderfs" / "binder_logs"
    for src in RUST.rglob("*"):
        if src.is_file() and src.name != "README.md":
            dest = logs / src.relative_to(RUST)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read_bytes())
    phone = adb_server.phone(root)
    try:
        out = tmp_path / "rust-binder.dmaprof"
        result = run_dmaprof("snapshot", "-o", out, env=phone.env)
        assert result.returncode == 0, result.stderr
        shown = run_dmaprof("show", out, "--by", "binder", "--format", "json", env=phone.env)
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)["binder"]
        # figures by hand in tests/sources/test_binder.py (_check_rust_report)
        assert (report["state"], report["driver"]) == ("present", "rust")
        assert report["root"] == "/dev/binderfs/binder_logs"
        rows = {r["pid"]: r for r in report["processes"]}
        assert rows[1200]["name"] == "system_server"
        assert (rows[1200]["buffers"], rows[1200]["allocated_bytes"]) == (3, 77872)
        assert (rows[612]["buffers"], rows[612]["allocated_bytes"]) == (2, 1288)
        assert rows[612]["free_async_space_bytes"] == 1039344
        assert report["totals"]["allocated_bytes"] == 79680
        for row in rows.values():
            assert row["resident_bytes"] is None and row["high_watermark_bytes"] is None
        assert report["totals"]["resident_bytes"] is None
        table = run_dmaprof("show", out, "--by", "binder", env={**phone.env, "COLUMNS": "160"})
        text = table.stdout.decode()
        assert "system_server" in text and "76.0 KiB" in text and "unknown" in text
        assert "the Rust binder driver prints no page counts" in text
    finally:
        phone.stop()
