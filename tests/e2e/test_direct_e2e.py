"""`dmaprof snapshot --local` on this machine and `--ssh` through a real sshd on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmaprof.capture.container import load_capture
from dmaprof.errors import ExitCode
from tests.e2e.conftest import run_dmaprof

SSHD = "/usr/sbin/sshd"


def _collector_workdir(capture_path: Path) -> Path:
    """The scratch directory the collector used (it records it in its meta section)."""
    from dmaprof.capture.dump import parse_dump

    meta = parse_dump(load_capture(capture_path).dump).section("meta")
    assert meta is not None
    return Path(meta.kv_dict()["workdir"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sshd:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.key = workdir / "client_key"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sshd:
        if not (os.access(SSHD, os.X_OK) and shutil.which("ssh-keygen") and shutil.which("ssh")):
            pytest.fail("needs openssh-server and openssh-client: run `bash scripts/test.sh`")
        if os.geteuid() != 0:
            pytest.skip("the loopback sshd test runs sshd as root (CI and scripts/test.sh do)")
        host_key = self.workdir / "host_key"
        for key in (host_key, self.key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        authorized = self.workdir / "authorized_keys"
        authorized.write_text((self.workdir / "client_key.pub").read_text())
        authorized.chmod(0o600)
        config = self.workdir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {authorized}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"PidFile {self.workdir / 'sshd.pid'}\nStrictModes no\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "sshd.log").open("wb"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        raise AssertionError((self.workdir / "sshd.log").read_text())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def options(self) -> list[str]:
        return [
            "--ssh-option",
            f"IdentityFile={self.key}",
            "--ssh-option",
            "StrictHostKeyChecking=no",
            "--ssh-option",
            f"UserKnownHostsFile={self.workdir / 'known_hosts'}",
        ]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    server = Sshd(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def _report(path: Path) -> dict[str, object]:
    result = run_dmaprof("show", path, "--format", "json", env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_local_snapshot(tmp_path: Path) -> None:
    out = tmp_path / "local.dmaprof"
    result = run_dmaprof("snapshot", "--local", "-q", "-o", out, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    capture = load_capture(out)
    assert capture.meta["transport"]["kind"] == "local"
    assert capture.meta["collection"]["uid"] == os.geteuid()
    assert (
        capture.meta["device"]["boot_id"]
        == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    )
    workdir = _collector_workdir(out)
    assert workdir.name.startswith("dmaprof-")
    assert not workdir.exists()


def test_ssh_and_local_snapshots_of_this_machine_agree(sshd: Sshd, tmp_path: Path) -> None:
    env = dict(os.environ)
    local = tmp_path / "local.dmaprof"
    remote = tmp_path / "ssh.dmaprof"
    first = run_dmaprof("snapshot", "--local", "-q", "-o", local, env=env)
    assert first.returncode == 0, first.stderr
    second = run_dmaprof(
        "snapshot",
        "--ssh",
        f"root@127.0.0.1:{sshd.port}",
        *sshd.options,
        "-q",
        "-o",
        remote,
        env=env,
    )
    assert second.returncode == 0, second.stderr
    a, b = load_capture(local), load_capture(remote)
    assert b.meta["transport"]["kind"] == "ssh"
    assert b.meta["transport"]["serial"] == f"root@127.0.0.1:{sshd.port}"
    for key in ("boot_id", "kernel_release", "kernel_version"):
        assert a.meta["device"][key] == b.meta["device"][key], key
    assert a.meta["collection"]["uid"] == b.meta["collection"]["uid"] == 0
    assert a.meta["capabilities"] == b.meta["capabilities"]
    ra, rb = _report(local), _report(remote)
    assert ra["totals"] == rb["totals"]
    # nothing was left behind on either side (same machine)
    assert not _collector_workdir(local).exists()
    assert not _collector_workdir(remote).exists()


def test_ssh_to_nowhere_is_one_clear_line(tmp_path: Path) -> None:
    port = _free_port()
    result = run_dmaprof(
        "snapshot",
        "--ssh",
        f"127.0.0.1:{port}",
        "--ssh-option",
        "StrictHostKeyChecking=no",
        "-o",
        tmp_path / "x.dmaprof",
        env=dict(os.environ),
    )
    assert result.returncode == ExitCode.OFFLINE
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dmaprof: error: ssh 127.0.0.1:{port}:")
    assert not (tmp_path / "x.dmaprof").exists()


@pytest.mark.parametrize("target", ["-oProxyCommand=touch /tmp/pwned", "a b", "host;rm -rf x"])
def test_hostile_ssh_targets_are_refused(target: str, tmp_path: Path) -> None:
    result = run_dmaprof("snapshot", "--ssh", target, env=dict(os.environ))
    assert result.returncode == ExitCode.ERROR
    assert b"not an ssh target" in result.stderr
