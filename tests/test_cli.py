"""The command line itself: entry points, help, version, and error-to-exit-code mapping."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest

from dmaprof import __version__
from dmaprof.cli import cli

REPO = Path(__file__).resolve().parent.parent


def run_dmaprof(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """Run the real entry point in a subprocess (as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "dmaprof", *args],
        env=env if env is not None else os.environ.copy(),
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def _all_commands() -> list[list[str]]:
    paths: list[list[str]] = [[]]

    def walk(group: click.Group, prefix: list[str]) -> None:
        for name, command in group.commands.items():
            paths.append([*prefix, name])
            if isinstance(command, click.Group):
                walk(command, [*prefix, name])

    walk(cli, [])
    return paths


@pytest.mark.parametrize("command", _all_commands(), ids=lambda c: " ".join(c) or "dmaprof")
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_has_help(command: list[str], flag: str) -> None:
    result = run_dmaprof(*command, flag)
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert text.startswith("Usage: dmaprof")
    # the exit-code table is part of every command's help
    assert "Exit codes:" in text and "130  interrupted" in text


def test_every_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for command in _all_commands()[1:]:
        assert f"dmaprof {' '.join(command)}" in readme, command


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str) -> None:
    result = run_dmaprof(flag)
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"dmaprof, version {__version__}"


def test_console_script_entry_point_matches_module() -> None:
    script = Path(sys.executable).with_name("dmaprof")
    assert script.exists(), "the dmaprof console script is not installed"
    result = subprocess.run([script, "--version"], capture_output=True, check=False)
    assert result.stdout.decode().strip() == f"dmaprof, version {__version__}"


def test_usage_error_is_exit_2() -> None:
    result = run_dmaprof("snapshot", "--root", "sometimes")
    assert result.returncode == 2
    assert b"Invalid value" in result.stderr
    result = run_dmaprof("no-such-command")
    assert result.returncode == 2


def test_collector_prints_the_shipped_script() -> None:
    from dmaprof.collect import collector_script

    result = run_dmaprof("collector")
    assert result.returncode == 0
    assert result.stdout == collector_script()
    assert result.stdout.startswith(b"#!")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env_without_adb(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANDROID_")}
    env["PATH"] = f"{bin_dir}:{Path(sys.executable).parent}"
    env["ANDROID_ADB_SERVER_PORT"] = str(_free_port())
    env["ADBUTILS_ADB_PATH"] = "/bin/false"
    return env


@pytest.mark.parametrize("command", [["devices"], ["snapshot", "-o", "x.dmaprof"]])
def test_no_adb_at_all_is_exit_3_with_one_line(tmp_path: Path, command: list[str]) -> None:
    env = _env_without_adb(tmp_path)
    result = run_dmaprof(*command, env=env, cwd=tmp_path)
    assert result.returncode == 3
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("dmaprof: error: no adb server at 127.0.0.1:")
    assert "install" in lines[0]
    assert "Traceback" not in result.stderr.decode()
    assert not (tmp_path / "x.dmaprof").exists()
    # and no server was started on the port behind our back
    port = int(env["ANDROID_ADB_SERVER_PORT"])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_unreachable_remote_server_is_exit_3(tmp_path: Path) -> None:
    env = _env_without_adb(tmp_path)
    env["ANDROID_ADB_SERVER_HOST"] = "127.0.0.2"
    result = run_dmaprof("devices", env=env)
    assert result.returncode == 3
    assert b"cannot reach the adb server at 127.0.0.2:" in result.stderr


def test_bad_port_variable_is_reported(tmp_path: Path) -> None:
    env = _env_without_adb(tmp_path)
    env["ANDROID_ADB_SERVER_PORT"] = "fifty"
    result = run_dmaprof("devices", env=env)
    assert result.returncode == 3
    assert b"ANDROID_ADB_SERVER_PORT is not a port number" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = _env_without_adb(tmp_path)
    result = run_dmaprof("--debug", "devices", env=env)
    assert result.returncode != 0
    assert b"Traceback" in result.stderr


def test_verbose_logs_each_stage_with_its_time() -> None:
    captures = REPO / "fixtures" / "captures"
    pair = [str(captures / "pixel-like.dmaprof"), str(captures / "pixel-like-shell.dmaprof")]
    env = {**os.environ, "COLUMNS": "300"}
    result = run_dmaprof("-v", "diff", *pair, "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"{")  # stdout stays data
    err = result.stderr.decode()
    for stage in ("load the captures", "analyse ", "diff and leak suspects"):
        lines = [x for x in err.splitlines() if stage in x]
        assert lines and lines[0].rstrip().endswith(" ms"), (stage, err)
    quiet = run_dmaprof("diff", *pair, "--format", "json", env=env)
    assert b" ms" not in quiet.stderr
