"""Talking to an Android device through the user's adb server, with adbutils.

Everything adbutils or the socket layer can raise is turned into a ``DmaprofError`` here, at
the boundary, so the rest of dmaprof never sees ``AdbError``, ``EOFError`` or ``OSError``.

Two adbutils behaviours are worked around on purpose:

* adbutils starts ``adb start-server`` by itself when the server socket refuses, and it does
  so without ``-P``, i.e. possibly on a port the user never asked for. dmaprof checks the
  server itself first and, like the adb CLI, starts one only on the port the user chose.
* adbutils' sync calls have no timeout and drop the device's failure reason. dmaprof speaks
  the (small) sync protocol itself over adbutils' transport, with a per-operation timeout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dmaprof.errors import (
    AdbUnavailableError,
    DeviceCommandError,
    DmaprofError,
    NoDeviceError,
    OfflineError,
    SeveralDevicesError,
    UnauthorizedError,
)

DEFAULT_PORT = 5037
DEFAULT_TIMEOUT_S = 60.0
_SYNC_CHUNK = 64 * 1024

# adbutils runs `$ADBUTILS_ADB_PATH start-server` when it cannot reach the server; pointing it
# at a command that fails keeps it from starting a stray server on a port nobody asked for.
_NO_AUTOSTART = shutil.which("false") or "/bin/false"


@dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerAddress:
        env = os.environ if environ is None else environ
        host = env.get("ANDROID_ADB_SERVER_HOST") or _host_from_address(
            env.get("ANDROID_ADB_SERVER_ADDRESS")
        )
        port_text = env.get("ANDROID_ADB_SERVER_PORT") or str(DEFAULT_PORT)
        try:
            port = int(port_text)
        except ValueError:
            raise AdbUnavailableError(
                f"ANDROID_ADB_SERVER_PORT is not a port number: {port_text!r}"
            ) from None
        return cls(host or "127.0.0.1", port)

    @property
    def is_local(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _host_from_address(address: str | None) -> str | None:
    # the adb CLI's ANDROID_ADB_SERVER_ADDRESS may be "host" or "tcp:host:port"
    if not address:
        return None
    parts = address.split(":")
    return parts[1] if parts[0] == "tcp" and len(parts) > 1 else parts[0]


@dataclass(frozen=True)
class DeviceEntry:
    """One line of `adb devices -l`."""

    serial: str
    state: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShellResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


def _server_reachable(address: ServerAddress, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout):
            return True
    except OSError:
        return False


# How long a server may take to answer `host:version`: a real one answers in milliseconds.
_HANDSHAKE_TIMEOUT_S = 3.0


def _check_is_adb(address: ServerAddress, timeout: float = _HANDSHAKE_TIMEOUT_S) -> None:
    """Ask ``host:version`` on a raw socket: something else on the port (an HTTP server, a
    socket that closes at once, a listener that never replies) would otherwise make adbutils
    hang or fail with a confusing protocol error."""
    request = b"host:version"
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(b"%04x" % len(request) + request)
            reply = _read_exact(conn, 8)
    except TimeoutError:
        raise AdbUnavailableError(
            f"not an adb server at {address}: no reply within {timeout:g} s"
        ) from None
    except (OSError, EOFError) as exc:
        reason = "it closed the connection" if isinstance(exc, EOFError) else str(exc)
        raise AdbUnavailableError(f"not an adb server at {address}: {reason}") from None
    if reply[:4] != b"OKAY" or not all(c in b"0123456789abcdefABCDEF" for c in reply[4:]):
        shown = reply.decode("ascii", "replace").strip() or repr(reply)
        raise AdbUnavailableError(f"not an adb server at {address}: it answered {shown!r}")


def _start_server(address: ServerAddress) -> None:
    """Start the adb server the way `adb` itself would, on the port the user chose."""
    adb = shutil.which("adb")
    if adb is None:
        raise AdbUnavailableError(
            f"no adb server at {address} and no `adb` on PATH: install Android platform-tools "
            "(Debian/Ubuntu: apt install adb) or start a server"
        )
    try:
        subprocess.run(
            [adb, "-P", str(address.port), "start-server"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=30,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        raise AdbUnavailableError(f"could not start the adb server on {address}: {exc}") from exc
    if not _server_reachable(address):
        raise AdbUnavailableError(f"started adb, but its server at {address} does not answer")


class AdbServer:
    """The user's adb server (``ANDROID_ADB_SERVER_HOST``/``ANDROID_ADB_SERVER_PORT``)."""

    def __init__(self, address: ServerAddress, *, start_if_needed: bool = True) -> None:
        os.environ["ADBUTILS_ADB_PATH"] = _NO_AUTOSTART
        if not _server_reachable(address):
            if not (start_if_needed and address.is_local):
                raise AdbUnavailableError(
                    f"cannot reach the adb server at {address} (is `adb start-server` running?)"
                )
            _start_server(address)
        _check_is_adb(address)
        import adbutils  # imported here: it is slow to import and only device commands need it

        self.address = address
        self._client = adbutils.AdbClient(host=address.host, port=address.port)

    def devices(self) -> list[DeviceEntry]:
        with _adb_errors("listing devices"):
            infos = self._client.list(extended=True)
        return [DeviceEntry(i.serial, i.state, dict(i.tags)) for i in infos]

    def select(self, serial: str | None) -> Device:
        """Pick a device exactly as adb does: -s/ANDROID_SERIAL, else the only one."""
        entries = self.devices()
        if serial:
            match = [e for e in entries if e.serial == serial]
            if not match:
                seen = ", ".join(e.serial for e in entries) or "none"
                raise NoDeviceError(f"device '{serial}' not found (connected: {seen})")
            entry = match[0]
        else:
            ready = [e for e in entries if e.state == "device"]
            if len(ready) > 1:
                serials = ", ".join(e.serial for e in ready)
                raise SeveralDevicesError(
                    f"more than one device connected ({serials}): choose one with -s SERIAL "
                    "or ANDROID_SERIAL"
                )
            if not ready:
                if entries:
                    _raise_for_state(entries[0])
                raise NoDeviceError(
                    "no device connected: plug one in with USB debugging enabled, or "
                    "`adb connect HOST:PORT` for a device on the network"
                )
            entry = ready[0]
        _raise_for_state(entry)
        return Device(self._client.device(entry.serial), entry)


def _raise_for_state(entry: DeviceEntry) -> None:
    if entry.state == "device":
        return
    if entry.state == "unauthorized":
        raise UnauthorizedError(
            f"device {entry.serial} is unauthorized: unlock it and accept the "
            "'Allow USB debugging' prompt for this computer"
        )
    if entry.state == "offline":
        raise OfflineError(
            f"device {entry.serial} is offline: reconnect it (or `adb reconnect`) and retry"
        )
    if entry.state in ("recovery", "rescue", "sideload", "bootloader"):
        raise OfflineError(f"device {entry.serial} is in {entry.state} mode, not booted")
    raise OfflineError(f"device {entry.serial} is not ready (state: {entry.state})")


@contextlib.contextmanager
def _adb_errors(doing: str, serial: str | None = None) -> Iterator[None]:
    """Translate adbutils/socket failures into dmaprof errors."""
    from adbutils.errors import AdbConnectionError, AdbError, AdbTimeout

    who = f"device {serial}" if serial else "adb"
    try:
        yield
    except DmaprofError:
        raise
    except AdbTimeout as exc:
        raise DeviceCommandError(f"{who}: timed out while {doing}") from exc
    except AdbConnectionError as exc:
        raise AdbUnavailableError(f"lost the adb server while {doing}: {exc}") from exc
    except AdbError as exc:
        text = str(exc)
        lowered = text.lower()
        if "unauthorized" in lowered:
            raise UnauthorizedError(f"{who} is unauthorized ({doing})") from exc
        if "offline" in lowered or "not found" in lowered or "closed" in lowered:
            raise OfflineError(f"{who} went away while {doing} ({text})") from exc
        raise DeviceCommandError(f"{who}: {doing} failed: {text}") from exc
    except (EOFError, ConnectionError, struct.error) as exc:
        raise OfflineError(f"{who} went away while {doing}") from exc
    except TimeoutError as exc:
        raise DeviceCommandError(f"{who}: timed out while {doing}") from exc
    except OSError as exc:
        raise OfflineError(f"{who}: connection failed while {doing}: {exc}") from exc


class Device:
    """One selected device. Every method is one adb round trip."""

    def __init__(self, adb_device: Any, entry: DeviceEntry) -> None:
        self._dev = adb_device
        self.entry = entry
        self.serial = entry.serial
        self.timeout = DEFAULT_TIMEOUT_S

    def shell(self, command: str, *, timeout: float | None = None) -> ShellResult:
        """Run `command` with shell protocol v2 (real exit code, separate stderr).

        Devices without shell_v2 (Android < 7) get adbutils' v1 fallback, whose exit code
        comes from an `echo` appended to the command.
        """
        with _adb_errors(f"running `{_short(command)}`", self.serial):
            result = self._dev.shell2(
                command, timeout=timeout or self.timeout, encoding=None, v2=True
            )
        return ShellResult(int(result.returncode), result.stdout, result.stderr or b"")

    def push(self, data: bytes, remote_path: str, mode: int = 0o700) -> None:
        with (
            _adb_errors(f"pushing {remote_path}", self.serial),
            self._sync("SEND", f"{remote_path},{0o100000 | mode}") as conn,
        ):
            for start in range(0, len(data), _SYNC_CHUNK):
                chunk = data[start : start + _SYNC_CHUNK]
                conn.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
            conn.sendall(b"DONE" + struct.pack("<I", 0))
            status, length = _read_header(conn)
            if status != b"OKAY":
                reason = _read_exact(conn, length).decode("utf-8", "replace")
                raise DeviceCommandError(f"pushing {remote_path} failed: {reason}")

    def pull(self, remote_path: str) -> bytes:
        parts: list[bytes] = []
        with (
            _adb_errors(f"pulling {remote_path}", self.serial),
            self._sync("RECV", remote_path) as conn,
        ):
            while True:
                status, length = _read_header(conn)
                if status == b"DATA":
                    parts.append(_read_exact(conn, length))
                elif status == b"DONE":
                    break
                elif status == b"FAIL":
                    reason = _read_exact(conn, length).decode("utf-8", "replace")
                    raise DeviceCommandError(f"pulling {remote_path} failed: {reason}")
                else:
                    raise OfflineError(f"device {self.serial} sent a broken reply while pulling")
        return b"".join(parts)

    @contextlib.contextmanager
    def _sync(self, request: str, path: str) -> Iterator[socket.socket]:
        encoded = path.encode("utf-8")
        with self._dev.open_transport(timeout=self.timeout) as transport:
            transport.send_command("sync:")
            transport.check_okay()
            conn: socket.socket = transport.conn
            conn.sendall(request.encode() + struct.pack("<I", len(encoded)) + encoded)
            yield conn
            conn.sendall(b"QUIT" + struct.pack("<I", 0))


def _read_exact(conn: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = conn.recv(size - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return bytes(buf)


def _read_header(conn: socket.socket) -> tuple[bytes, int]:
    header = _read_exact(conn, 8)
    return header[:4], struct.unpack("<I", header[4:])[0]


def _short(command: str, limit: int = 60) -> str:
    first = command.strip().splitlines()[0] if command.strip() else command
    return first if len(first) <= limit else first[: limit - 1] + "…"
