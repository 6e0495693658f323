"""Hostile content from the device: names with quotes, newlines, control characters,
terminal escape sequences and invalid UTF-8 are shown escaped in tables and exact in JSON,
and never reach a shell unquoted."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dmaprof.capture.container import load_capture
from tests.e2e.conftest import SCENE, PhoneRoot, device_tmp_entries, run_dmaprof
from tests.emuphone.harness import AdbServer
from tests.emuphone.scene import load_scene

ESCAPE = "\x1b[2J\x1b]0;owned\x07"
HOSTILE_BUFFER = 'it\'s "quoted"\x1b[31m'  # fits DMA_BUF_NAME_LEN (32 bytes)
HOSTILE_APP = "com.evil'$(touch /tmp/x)`id`" + ESCAPE


def _hostile_scene() -> dict[str, Any]:
    scene: dict[str, Any] = json.loads(json.dumps(load_scene(SCENE)))
    for proc in scene["processes"]:
        if proc["pid"] == 3300:
            proc["name"] = HOSTILE_APP
            proc["cmdline"] = [HOSTILE_APP]
            proc["comm"] = "evil\x1b[2Jcomm"
    for buffer in scene["buffers"]:
        if buffer["inode"] == 16:
            buffer["name"] = HOSTILE_BUFFER
    return scene


def test_hostile_names_are_escaped_in_tables_and_exact_in_json(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    root = phone_root(_hostile_scene())
    # a byte sequence that is not UTF-8, straight into a cmdline and a buffer name
    (root / "proc/3160/cmdline").write_bytes(b"com.example.camera:\xff\xfe\x80remote\x00")
    phone = adb_server.phone(root)
    try:
        out = tmp_path / "hostile.dmaprof"
        result = run_dmaprof("snapshot", "-o", out, env=phone.env)
        assert result.returncode == 0, result.stderr
        assert device_tmp_entries(root) == []
        assert not Path("/tmp/x").exists()  # nothing was ever run from a name
        table = run_dmaprof("show", out, "--by", "process", env=dict(os.environ)).stdout
        assert b"\x1b" not in table, "a terminal escape reached the terminal"
        assert b"\\x1b" in table
        buffers = run_dmaprof("show", out, "--by", "buffer", env=dict(os.environ)).stdout
        assert b"\x1b" not in buffers
        report = json.loads(
            run_dmaprof("show", out, "--format", "json", env=dict(os.environ)).stdout
        )
        names = {b["inode"]: b["name"] for b in report["buffers"]}
        assert names[16] == HOSTILE_BUFFER
        by_pid = {p["pid"]: p for p in report["processes"]}
        assert by_pid[3300]["name"] == "evil\x1b[2Jcomm"
        csv_out = run_dmaprof("show", out, "--format", "csv", env=dict(os.environ))
        assert csv_out.returncode == 0
        markdown = run_dmaprof("show", out, "--format", "markdown", env=dict(os.environ))
        assert markdown.returncode == 0 and b"\x1b" not in markdown.stdout
        assert load_capture(out).dump  # the raw bytes are kept as they were
    finally:
        phone.stop()


def test_hostile_serial_is_never_run(adb_server: AdbServer, tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    serial = f"x;touch {canary};$(touch {canary})"
    result = run_dmaprof("snapshot", "-s", serial, "-o", tmp_path / "x.dmaprof", env=adb_server.env)
    assert result.returncode == 4
    assert not canary.exists()
    assert b"not found" in result.stderr
