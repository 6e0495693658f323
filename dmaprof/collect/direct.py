"""Running the collector without adb: on this machine (`--local`) or over ssh (`--ssh`).

Both run the very same collector once and read its dump from stdout, so no dump file exists
anywhere but in the capture. Over ssh it is one connection: the script goes in on stdin, the
dump comes back on stdout, and a trap removes the remote scratch directory on every exit.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dmaprof.errors import AdbUnavailableError, DeviceCommandError, DmaprofError, OfflineError
from dmaprof.units import last_line

# The collector refuses nothing on its own; these are the runner's own failures.
_RC_NO_WORKDIR = 97
_SSH_FAILED = 255

# Runs on the remote side with the collector on stdin. `mktemp -d` gives a private directory
# (0700); the trap removes it whatever happens, including a dropped connection (SIGHUP).
_REMOTE_TEMPLATE = (
    'W=$(mktemp -d "${{TMPDIR:-/tmp}}/dmaprof.XXXXXX") || exit {rc};'
    " trap 'rm -rf \"$W\"' EXIT; trap 'exit 129' HUP; trap 'exit 143' TERM; trap 'exit 130' INT;"
    ' cat >"$W/collect.sh" && {prefix}sh "$W/collect.sh" -w "$W"'
)


@dataclass(frozen=True)
class CollectorOutput:
    returncode: int
    dump: bytes
    stderr: bytes


@dataclass(frozen=True)
class SshTarget:
    user: str | None
    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> SshTarget:
        """`[USER@]HOST[:PORT]` or `ssh://[USER@]HOST[:PORT]`."""
        spec = text.removeprefix("ssh://")
        match = re.fullmatch(r"(?:([^@\s/]+)@)?(\[[0-9a-fA-F:]+\]|[^:@\s/]+)(?::(\d{1,5}))?", spec)
        if not match or match.group(2).startswith("-"):
            raise DmaprofError(f"not an ssh target: {text!r} (expected [USER@]HOST[:PORT])")
        port = int(match.group(3)) if match.group(3) else None
        return cls(match.group(1), match.group(2).strip("[]"), port)

    @property
    def label(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.host}{port}"


def _run(
    argv: list[str], script: bytes, timeout: float, what: str
) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise AdbUnavailableError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    try:
        out, err = proc.communicate(script, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise DeviceCommandError(f"{what}: timed out after {timeout:g} s") from None
    except BaseException:
        _kill_group(proc)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # SIGHUP first: the remote/locally running shell's trap removes its directory
    for sig in (signal.SIGHUP, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(timeout=3)
            break
        except subprocess.TimeoutExpired:
            continue


def run_local(script: bytes, *, sudo: bool = False, timeout: float = 120.0) -> CollectorOutput:
    """Run the collector on this machine, in a private temporary directory."""
    sh = shutil.which("sh")
    if sh is None:
        raise DeviceCommandError("no `sh` on this machine")
    prefix: list[str] = []
    if sudo:
        sudo_bin = shutil.which("sudo")
        if sudo_bin is None:
            raise DeviceCommandError("--sudo given, but there is no `sudo` on this machine")
        prefix = [sudo_bin, "-n", "--"]
    workdir = Path(tempfile.mkdtemp(prefix="dmaprof-"))
    try:
        (workdir / "collect.sh").write_bytes(script)
        if sudo:
            # root writes scratch files here; they are removed with the directory below
            workdir.chmod(0o755)
        done = _run(
            [*prefix, sh, str(workdir / "collect.sh"), "-w", str(workdir)],
            b"",
            timeout,
            "the collector on this machine",
        )
    finally:
        _remove_tree(workdir, sudo)
    if sudo and done.returncode != 0 and b"password is required" in done.stderr:
        raise DeviceCommandError("sudo needs a password: run `sudo -v` first, then retry")
    return CollectorOutput(done.returncode, done.stdout, done.stderr)


def _remove_tree(path: Path, sudo: bool) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if path.exists() and sudo:
        subprocess.run(["sudo", "-n", "rm", "-rf", "--", str(path)], check=False)


def run_ssh(
    target: SshTarget,
    script: bytes,
    *,
    sudo: bool = False,
    options: tuple[str, ...] = (),
    timeout: float = 120.0,
) -> CollectorOutput:
    """Run the collector over one ssh connection; the dump comes back on stdout."""
    ssh = shutil.which("ssh")
    if ssh is None:
        raise AdbUnavailableError(
            "no `ssh` client on this machine (Debian: apt install openssh-client)"
        )
    remote = _REMOTE_TEMPLATE.format(rc=_RC_NO_WORKDIR, prefix="sudo -n " if sudo else "")
    argv = [ssh, "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(min(timeout, 60))}"]
    for option in options:
        argv += ["-o", option]
    if target.port:
        argv += ["-p", str(target.port)]
    if target.user:
        argv += ["-l", target.user]
    # "--" ends ssh's options: a host can never be taken for one; the remote command is one
    # quoted word for the remote shell
    argv += ["--", target.host, "sh -c " + shlex.quote(remote)]
    done = _run(argv, script, timeout, f"ssh {target.label}")
    if done.returncode == _SSH_FAILED:
        reason = last_line(done.stderr) or "connection failed"
        raise OfflineError(f"ssh {target.label}: {reason}")
    if done.returncode == _RC_NO_WORKDIR:
        raise DeviceCommandError(f"ssh {target.label}: cannot make a temporary directory there")
    return CollectorOutput(done.returncode, done.stdout, done.stderr)
