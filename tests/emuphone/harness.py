"""Run emulated phones (``adbd.py``) behind a private, real adb server, for end-to-end tests.

Typical use, one server and one phone::

    with AdbServer(tmp_path / "adb") as server:
        phone = server.phone(root, shell_uid=2000)   # started, connected, state "device"
        subprocess.run(["dmaprof", "snapshot"], env=phone.env, check=True)
        d = phone.device()                           # adbutils AdbDevice on this server

or ``with EmulatedPhone(root, workdir=tmp_path) as phone:`` which brings its own server.

Several phones may share one server (``server.phone(...)`` again); each is stopped with the
server. Faulty phones: ``server.phone(root, auth="deny", expect="unauthorized")``,
``server.phone(root, offline="vanish", expect="offline")``, ``phone.kill()`` (the phone
vanishes mid-run). The server never starts on 5037 and ``env`` makes adbutils unable to start
a stray one (``ADBUTILS_ADB_PATH`` is a stub that fails). See adb.md sections 1, 3.11, 5, 7.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import adbutils

ADBD = Path(__file__).with_name("adbd.py")
FAIL_STUB = shutil.which("false") or "/bin/false"  # ADBUTILS_ADB_PATH: no stray servers
EMULATOR_PORTS = range(5555, 5586)
LOCALHOST = "127.0.0.1"
_counter = itertools.count(1)


class HarnessError(RuntimeError):
    """The emulated phone or the adb server did not come up (or down) as expected."""


def adb_path() -> str | None:
    """The Debian adb (what tests run against), or None: tests should skip."""
    return shutil.which("adb")


def default_python() -> str:
    """adbd.py is standard library only: prefer the system python3, the one a qemu guest
    has too (and here it starts 3x faster than the venv's pyenv build)."""
    for candidate in ("/usr/bin/python3", "/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


def free_port() -> int:
    """A free TCP port from the OS, outside the adb server's emulator scan (5555-5585)."""
    while True:
        with socket.socket() as s:
            s.bind((LOCALHOST, 0))
            port: int = s.getsockname()[1]
        if port not in EMULATOR_PORTS and port != 5037:
            return port


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((LOCALHOST, port)) == 0


def wait_port_closed(port: int, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port):
        if time.monotonic() > deadline:
            raise HarnessError(f"port {port} still open after {timeout} s")
        time.sleep(0.005)


def _die_with_parent() -> None:
    # If pytest is killed hard, its children go too (PR_SET_PDEATHSIG).
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def _stop_process(proc: subprocess.Popen[Any], timeout: float = 3.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def kill_processes_in(root: Path) -> list[int]:
    """SIGKILL processes left behind by a phone's commands (chrooted into root, or started
    by a non-chroot phone, whose environment names root). Needs root to see them all."""
    want = os.path.realpath(root)
    marker = f"EMUPHONE_ROOT={want}".encode()
    killed = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            inside = os.readlink(f"/proc/{entry.name}/root") == want
            if not inside:
                with open(f"/proc/{entry.name}/environ", "rb") as f:
                    inside = marker in f.read().split(b"\0")
            if inside:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
        except OSError:
            continue
    return killed


def host_query(port: int, service: str, timeout: float = 5.0) -> str:
    """One adb smart-socket host request (e.g. ``host:devices``) on a raw socket: unlike the
    adb CLI or adbutils it can never start a server."""
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as s:
        data = service.encode()
        s.sendall(b"%04x" % len(data) + data)
        status = _recv_exact(s, 4)
        length = int(_recv_exact(s, 4), 16)
        text = _recv_exact(s, length).decode(errors="replace")
        if status != b"OKAY":
            raise HarnessError(f"{service}: {status.decode(errors='replace')} {text}")
        return text


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise HarnessError("adb server closed the connection")
        buf += chunk
    return buf


class AdbServer:
    """A private ``adb -P PORT nodaemon server`` (never 5037), owned by the test."""

    def __init__(self, workdir: Path, *, adb: str | None = None, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.adb_bin = adb or adb_path() or "adb"
        self.port = port or free_port()
        self.home = self.workdir / "home"
        self.log_path = self.workdir / "adb-server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.phones: list[EmulatedPhone] = []

    # -- lifecycle --
    def start(self, timeout: float = 10.0) -> AdbServer:
        self.home.mkdir(parents=True, exist_ok=True)
        for attempt in range(5):
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [self.adb_bin, "-P", str(self.port), "nodaemon", "server"],
                    env=self.server_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    preexec_fn=_die_with_parent,
                )
            deadline = time.monotonic() + timeout
            while not port_open(self.port):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.002)
            else:
                return self
            _stop_process(self.proc)
            if attempt < 4 and "bind" in self.log():  # port taken meanwhile: another one
                self.port = free_port()
                continue
            raise HarnessError(f"adb server on {self.port} did not start:\n{self.log()}")
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop every phone, then kill-server, wait for it, and check the port is closed."""
        for phone in reversed(self.phones):
            phone.stop()
        self.phones.clear()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.adb("kill-server", timeout=10)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        wait_port_closed(self.port)

    def __enter__(self) -> AdbServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- environments --
    def server_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("ANDROID_SERIAL", "ANDROID_ADB_SERVER_ADDRESS", "ADB_VENDOR_KEYS")
        }
        env.update(
            HOME=str(self.home),
            ADB_MDNS="0",
            ADB_USB="0",
            ADB_EMU="0",
            ANDROID_ADB_SERVER_PORT=str(self.port),
        )
        return env

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client subprocess (adb CLI, dmaprof) talking to this server only:
        ANDROID_ADB_SERVER_PORT/HOST, ADBUTILS_ADB_PATH = a failing stub, no ANDROID_SERIAL,
        HOME = the server's private home (keeps tests off the user's ~)."""
        env = self.server_env()
        env.update(ANDROID_ADB_SERVER_HOST=LOCALHOST, ADBUTILS_ADB_PATH=FAIL_STUB)
        return env

    # -- talking to the server --
    def adb(
        self,
        *args: str,
        serial: str | None = None,
        input: bytes | str | None = None,
        timeout: float = 30.0,
        text: bool = True,
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``adb -P PORT [-s SERIAL] ARGS`` (never raises on a non-zero exit)."""
        if not self.alive and args[:1] != ("kill-server",):
            # The CLI would quietly start a daemonized server that outlives the test.
            raise HarnessError(f"adb server on {self.port} is not running")
        cmd = [self.adb_bin, "-P", str(self.port)]
        if serial:
            cmd += ["-s", serial]
        if isinstance(input, str) and not text:
            input = input.encode()
        return subprocess.run(
            [*cmd, *args],
            env=self.env,
            input=input,
            capture_output=True,
            timeout=timeout,
            text=text,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def query(self, service: str) -> str:
        return host_query(self.port, service)

    def devices(self) -> dict[str, str]:
        """serial -> state (device, offline, unauthorized, recovery, ...)."""
        out = {}
        for line in self.query("host:devices").splitlines():
            serial, _, state = line.partition("\t")
            if serial:
                out[serial] = state
        return out

    def wait_state(self, serial: str, state: str | None, timeout: float = 10.0) -> None:
        """Wait until serial is listed in state (None: no longer listed)."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.devices().get(serial)
            if now == state:
                return
            if time.monotonic() > deadline:
                raise HarnessError(f"{serial}: state {now!r}, expected {state!r}")
            time.sleep(0.003)

    def client(self) -> adbutils.AdbClient:
        """adbutils client on this server. Tests should also have ``env`` in os.environ
        (at least ADBUTILS_ADB_PATH) so a dead server cannot be restarted behind their back."""
        import adbutils

        return adbutils.AdbClient(host=LOCALHOST, port=self.port)

    def phone(self, root: Path, **kwargs: Any) -> EmulatedPhone:
        """Start an emulated phone on this server (see EmulatedPhone for the arguments)."""
        return EmulatedPhone(root, server=self, **kwargs).start()


class EmulatedPhone:
    """One ``adbd.py`` process serving ``root``, connected to an AdbServer.

    Arguments map to adbd.py switches (``python3 adbd.py --help``); ``extra_args`` passes
    any other. ``chroot=None`` chroots when running as root. ``expect`` is the state to wait
    for after ``adb connect``: "device", "unauthorized", "offline", "recovery", ... or None
    (do not wait). Without ``server`` the phone starts and owns a private one in ``workdir``.
    """

    def __init__(
        self,
        root: Path,
        server: AdbServer | None = None,
        *,
        workdir: Path | None = None,
        chroot: bool | None = None,
        shell_uid: int | None = None,
        auth: str = "none",
        prompt_delay: float | None = None,
        connect_delay: float | None = None,
        features: str | None = None,
        maxdata: int | None = None,
        proto_version: int | None = None,
        state: str | None = None,
        slow: float | None = None,
        offline: str | None = None,
        die_on: Sequence[str] = (),
        die_after: int | None = None,
        extra_args: Sequence[str] = (),
        expect: str | None = None,
        connect: bool = True,
        timeout: float = 15.0,
        python: str | None = None,
    ) -> None:
        self.root = Path(root)
        self._own_workdir = workdir is None and server is None
        if workdir is None:
            workdir = server.workdir if server else Path(tempfile.mkdtemp(prefix="emuphone-"))
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._owns_server = server is None
        self.server = server or AdbServer(self.workdir / "adb")
        self.chroot = os.geteuid() == 0 if chroot is None else chroot
        self.auth = auth
        self.connect_delay = connect_delay or 0.0
        self.offline = offline
        self.expect = expect or (
            "offline" if offline else "unauthorized" if auth == "deny" else state or "device"
        )
        self.connect_on_start = connect
        self.timeout = timeout
        # -I -S: no site/env lookups, 25+ ms less start-up (adbd is standard library only).
        args = [python or default_python(), "-I", "-S", str(ADBD), "--root", str(self.root)]
        args += ["-v", "--die-with-parent"]
        args.append("--chroot" if self.chroot else "--no-chroot")
        for flag, value in (
            ("--shell-uid", shell_uid),
            ("--prompt-delay", prompt_delay),
            ("--connect-delay", connect_delay),
            ("--features", features),
            ("--maxdata", maxdata),
            ("--proto-version", None if proto_version is None else hex(proto_version)),
            ("--state", state),
            ("--slow", slow),
            ("--offline", offline),
            ("--die-after", die_after),
        ):
            if value is not None:
                args += [flag, str(value)]
        args += ["--auth", auth]
        for spec in die_on:
            args += ["--die-on", spec]
        self.argv = [*args, *extra_args]
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.connect_proc: subprocess.Popen[str] | None = None
        self.connect_message: str | None = None
        self.name = f"adbd-{next(_counter)}"
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def serial(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Server env (see AdbServer.env) plus ANDROID_SERIAL of this phone."""
        return {**self.server.env, "ANDROID_SERIAL": self.serial}

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def device(self) -> adbutils.AdbDevice:
        return self.server.client().device(self.serial)

    def adb(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``adb -P PORT -s SERIAL ARGS`` (see AdbServer.adb)."""
        return self.server.adb(*args, serial=self.serial, **kwargs)

    # -- lifecycle --
    def start(self) -> EmulatedPhone:
        """Start adbd (and the own server, in parallel), connect, wait for ``expect``."""
        port_file = self.workdir / f"{self.name}.port"
        port_file.unlink(missing_ok=True)
        argv = [*self.argv, "--port-file", str(port_file)]
        if self.port:
            argv += ["--port", str(self.port)]  # revive on the same port
        with self.log_path.open("ab") as log:
            # No preexec_fn (it forces a slow fork of the test process): adbd sets its own
            # parent-death signal.
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
            )
        try:
            if self._owns_server and not self.server.alive:
                self.server.start()
            if self not in self.server.phones:
                self.server.phones.append(self)
            deadline = time.monotonic() + self.timeout
            while not port_file.exists():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise HarnessError(f"adbd did not start:\n{self.log()}")
                time.sleep(0.002)
            self.port = int(port_file.read_text())
            if self.connect_on_start:
                self.connect()
        except BaseException:
            self.stop()
            raise
        return self

    def connect(self) -> None:
        """``adb connect`` and check its message (exit code 0 even on failure, adb.md 3.11)."""
        self.connect_proc = subprocess.Popen(
            [self.server.adb_bin, "-P", str(self.server.port), "connect", self.serial],
            env=self.server.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if self.expect is None:
            return
        if self.offline == "silent":
            # The transport is listed "offline" at once, and `adb connect` waits 10 s for a
            # CNXN that never comes: don't wait for it.
            self.server.wait_state(self.serial, self.expect, self.timeout)
            return
        out, _ = self.connect_proc.communicate(timeout=self.timeout)
        self.connect_message = msg = out.strip()
        ok = msg.startswith(("connected to", "already connected to"))
        if msg.startswith("failed to authenticate"):
            ok = self.expect == "unauthorized" or self.auth == "prompt"
        elif msg.startswith("failed to connect"):
            ok = self.connect_delay >= 10  # the entry still turns "device" on a late CNXN
        if not ok:
            raise HarnessError(
                f"adb connect {self.serial}: {msg!r} (expected {self.expect})\n{self.log()}"
            )
        self.server.wait_state(self.serial, self.expect, self.timeout + self.connect_delay)

    def kill(self, wait_offline: bool = True) -> None:
        """The phone vanishes: SIGKILL the daemon (its commands die with it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        kill_processes_in(self.root)
        if wait_offline and self.server.alive:
            self.server.wait_state(self.serial, "offline", self.timeout)

    def revive(self) -> EmulatedPhone:
        """Start the daemon again on the same port ("the phone came back"). The server
        reconnects on its own (0.25 s observed right after kill(); adb.md 3.11 saw 9 s
        after a longer absence): wait with ``server.wait_state(serial, "device")``."""
        self.connect_on_start = False
        return self.start()

    def stop(self) -> None:
        """adb disconnect, terminate adbd, check its port is closed, kill leftovers."""
        if self.port and self.server.alive:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.server.adb("disconnect", self.serial, timeout=10)
        if self.connect_proc is not None:
            _stop_process(self.connect_proc)
            if self.connect_proc.stdout:
                self.connect_proc.stdout.close()
            self.connect_proc = None
        if self.proc is not None:
            _stop_process(self.proc)
            self.proc = None
            kill_processes_in(self.root)
            if self.port:
                wait_port_closed(self.port)
        if self._owns_server:
            self.server.phones.clear()
            self.server.stop()
        elif self in self.server.phones:
            self.server.phones.remove(self)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> EmulatedPhone:
        return self if self.proc is not None else self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def client_env(env: Mapping[str, str]) -> Iterator[None]:
    """Temporarily put a server's env (port, ADBUTILS_ADB_PATH stub) into os.environ, for
    adbutils calls made in the test process itself."""
    keys = ("ANDROID_ADB_SERVER_PORT", "ANDROID_ADB_SERVER_HOST", "ADBUTILS_ADB_PATH")
    saved = {k: os.environ.get(k) for k in (*keys, "ANDROID_SERIAL")}
    try:
        os.environ.pop("ANDROID_SERIAL", None)
        for k in keys:
            if k in env:
                os.environ[k] = env[k]
        if "ANDROID_SERIAL" in env:
            os.environ["ANDROID_SERIAL"] = env["ANDROID_SERIAL"]
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
