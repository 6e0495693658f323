#!/usr/bin/env python3
"""The emulated phone's adb daemon: the device side of the adb transport protocol over TCP.

The real adb server connects to it with ``adb connect 127.0.0.1:PORT``. Shell commands really
run, with ``/system/bin/sh`` of a directory that stands in for the phone's ``/`` (chrooted
into it when ``--chroot`` is given), and the sync service reads and writes files inside that
directory. Standard library only: it also runs inside a qemu guest with a bare python3.

Protocol facts (sizes, flow control, traps) follow the adb reference (adb.md, sections 3-5);
``python3 adbd.py --help`` lists the fault switches.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import os
import pty
import re
import signal
import socket
import stat
import struct
import sys
import termios
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path

try:
    import ctypes

    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except (ImportError, OSError):  # a stripped python3 without ctypes still works
    _LIBC = None

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3

VERSION = 0x01000001
VERSION_NO_CHECKSUM = 0x01000001
MAX_PAYLOAD = 1024 * 1024
# Accept host packets up to this size whatever we negotiated; the host never sends more.
MAX_ACCEPTED_PAYLOAD = 16 * 1024 * 1024

DEFAULT_FEATURES = "shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir,apex,fixed_push_symlink_timestamp"
ANDROID_PATH = (
    "/product/bin:/apex/com.android.runtime/bin:/apex/com.android.art/bin:/system_ext/bin"
    ":/system/bin:/system/xbin:/odm/bin:/vendor/bin:/vendor/xbin"
)
# The adb server scans these ports for emulators (adb.md 3.12): never listen there.
EMULATOR_PORTS = range(5555, 5586)

SYNC_DATA_MAX = 64 * 1024
RECV_CHUNK = 65528  # what adbd puts in one DATA chunk
SYNC_PATH_MAX = 1024

SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN, SHELL_WINSIZE = range(6)

OFFLINE_MODES = ("silent", "drop", "vanish")
AUTH_MODES = ("none", "accept", "deny", "prompt")
DIE_KINDS = ("any", "shell", "send", "recv", "sync")


Service = Callable[["Stream", str], Awaitable[None]]


class StreamClosed(Exception):
    """The stream (or the whole transport) went away while a service used it."""


_verbose = False


def log(msg: str) -> None:
    if _verbose:
        sys.stderr.write(f"adbd[{os.getpid()}] {time.monotonic():.3f} {msg}\n")
        sys.stderr.flush()


def strtoul0(text: str) -> int:
    """C ``strtoul(text, NULL, 0)``: adbd parses the SEND mode this way (octal when 0-led)."""
    text = text.strip()
    m = re.match(r"0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*)", text)
    if not m:
        return 0
    if m.group(1):
        return int(m.group(1), 16)
    if m.group(2):
        return int(m.group(2), 8)
    return int(m.group(3))


def read_props(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return props
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        props.setdefault(key.strip(), value.strip())
    return props


def set_pipe_size(fd: int) -> None:
    # Bigger pipes let one read fill a whole 1 MiB WRTE while we wait for the host's OKAY.
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, MAX_PAYLOAD)


@dataclass
class Options:
    root: Path
    port_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    chroot: bool = False
    shell_uid: int | None = None
    shell_gid: int | None = None
    sh: str = "/system/bin/sh"
    product: str = "emuphone"
    model: str = "EmuPhone"
    device: str = "emu"
    features: str = DEFAULT_FEATURES
    maxdata: int = MAX_PAYLOAD
    proto_version: int = VERSION
    state: str = "device"
    auth: str = "none"
    prompt_delay: float = 1.0
    connect_delay: float = 0.0
    slow: float = 0.0
    bad_checksum: bool = False
    offline: str | None = None
    die_on: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)
    die_after: int = 0
    die_with_parent: bool = False


_PARENT = os.getppid()


def set_parent_death_signal() -> None:
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != _PARENT:  # the parent died before we asked
            os.kill(os.getpid(), signal.SIGTERM)


class Stream:
    """One adb stream: device-side id, host-side id, one WRTE in flight per direction."""

    def __init__(self, transport: Transport, local_id: int, remote_id: int) -> None:
        self.t = transport
        self.local_id = local_id
        self.remote_id = remote_id
        self.closed = False
        self.task: asyncio.Task[None] | None = None
        self._okay = asyncio.Event()
        self._okay.set()  # the first WRTE may follow our OKAY to OPEN at once
        self._send_lock = asyncio.Lock()
        self._inbox: asyncio.Queue[bytearray | None] = asyncio.Queue()

    # -- called by the transport's read loop --
    def on_okay(self) -> None:
        self._okay.set()

    def on_write(self, data: bytearray) -> None:
        self._inbox.put_nowait(data)

    def on_remote_close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.t.send_packet(A_CLSE, self.local_id, self.remote_id)  # each side answers a CLSE
        self._wake()
        if self.task is not None:
            self.task.cancel()  # services clean up in finally (a shell SIGHUPs its child)

    def on_transport_lost(self) -> None:
        self.closed = True
        self._wake()
        if self.task is not None:
            self.task.cancel()

    def _wake(self) -> None:
        self._okay.set()
        self._inbox.put_nowait(None)

    # -- called by services --
    async def send(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        maxdata = self.t.maxdata
        async with self._send_lock:
            for off in range(0, len(view), maxdata):
                await self._okay.wait()
                if self.closed:
                    raise StreamClosed
                self._okay.clear()
                await self.t.pace()
                if self.closed:
                    raise StreamClosed
                self.t.send_packet(A_WRTE, self.local_id, self.remote_id, view[off : off + maxdata])
                await self.t.drain()

    async def recv(self) -> bytearray:
        """The next WRTE payload from the host, empty once the stream is closed.

        The OKAY goes out when the service takes the data, so the host can send the next
        WRTE while this one is processed.
        """
        if self.closed and self._inbox.empty():
            return bytearray()
        data = await self._inbox.get()
        if data is None or self.closed:
            return bytearray()
        await self.t.pace()
        if not self.closed:
            self.t.send_packet(A_OKAY, self.local_id, self.remote_id)
        return data

    async def close(self) -> None:
        if self.closed:
            return
        async with self._send_lock:  # after any WRTE being sent
            if self.closed:
                return
            self.closed = True
            await self.t.pace()
            self.t.send_packet(A_CLSE, self.local_id, self.remote_id)
        self.t.forget(self)


class Inbox:
    """Byte-stream view of a stream's incoming WRTEs (sync requests may straddle them)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.chunks: deque[memoryview] = deque()
        self.avail = 0

    async def _more(self) -> None:
        data = await self.stream.recv()
        if not data:
            raise EOFError
        self.chunks.append(memoryview(data))
        self.avail += len(data)

    async def read_exact(self, n: int) -> bytes:
        while self.avail < n:
            await self._more()
        parts = []
        self.avail -= n
        while n:
            head = self.chunks[0]
            if len(head) <= n:
                parts.append(head)
                self.chunks.popleft()
                n -= len(head)
            else:
                parts.append(head[:n])
                self.chunks[0] = head[n:]
                n = 0
        return b"".join(parts)

    async def copy_to(self, n: int, sink: Callable[[memoryview], None]) -> None:
        """Pass exactly n bytes to sink without joining them (DATA chunks go to a file)."""
        while n:
            if not self.chunks:
                await self._more()
            head = self.chunks[0]
            take = min(n, len(head))
            sink(head[:take])
            if take == len(head):
                self.chunks.popleft()
            else:
                self.chunks[0] = head[take:]
            self.avail -= take
            n -= take


async def wait_readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def wait_writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_writer(fd, ready)
    try:
        await fut
    finally:
        loop.remove_writer(fd)


async def read_fd_into(fd: int, buf: memoryview) -> int:
    """Non-blocking read into buf; 0 at EOF (a pty master reports EIO once the slave is
    gone)."""
    while True:
        try:
            return os.readv(fd, [buf])
        except BlockingIOError:
            await wait_readable(fd)
        except OSError as e:
            if e.errno == errno.EIO:
                return 0
            raise


async def write_fd(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
            view = view[n:]
        except BlockingIOError:
            await wait_writable(fd)


class Daemon:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.root = os.path.realpath(opts.root)
        self.rfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.children: set[int] = set()  # process groups of running commands
        self.transports: set[Transport] = set()
        self.reapers: set[asyncio.Task[None]] = set()
        self.server: asyncio.base_events.Server | None = None
        self.vanished = False  # --offline vanish: refuse everything after the first CNXN

    # -- lifecycle --
    async def serve(self) -> None:
        if self.opts.shell_uid is not None:
            # Root's supplementary groups would leak into the seteuid'd sync operations.
            os.setgroups([])
        sock = self._listen_socket()
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: Transport(self), sock=sock)
        port = sock.getsockname()[1]
        log(f"listening on {self.opts.host}:{port} root={self.root}")
        if self.opts.port_file is not None:
            tmp = self.opts.port_file.with_name(self.opts.port_file.name + ".tmp")
            tmp.write_text(f"{port}\n")
            tmp.replace(self.opts.port_file)  # atomic: the harness sees all or nothing
        stop: asyncio.Future[None] = loop.create_future()

        def on_signal() -> None:
            if not stop.done():
                stop.set_result(None)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal)
        await stop
        log("terminating")
        self.server.close()
        self.kill_children(signal.SIGKILL)
        for t in list(self.transports):
            t.abort()
        # Skip the interpreter's teardown (90 ms on a busy machine): nothing left to flush.
        sys.stderr.flush()
        os._exit(0)

    def _listen_socket(self) -> socket.socket:
        for _ in range(50):
            # proto=IPPROTO_TCP, or asyncio skips TCP_NODELAY on the accepted sockets.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.opts.host, self.opts.port))
            if sock.getsockname()[1] not in EMULATOR_PORTS:
                sock.listen(64)
                sock.setblocking(False)
                return sock
            sock.close()  # the OS handed out an emulator-scan port: take another
        raise OSError(errno.EADDRINUSE, "no usable port")

    def kill_children(self, sig: int) -> None:
        for pgid in list(self.children):
            with contextlib.suppress(OSError):
                os.killpg(pgid, sig)

    def vanish(self) -> None:
        """--offline vanish: the phone disappears from the network after its first connect."""
        log("vanishing (offline mode)")
        self.vanished = True
        for t in list(self.transports):
            t.abort()

    # -- fault: --die-on --
    def die_check(self, kind: str, subject: str) -> bool:
        for want, pattern in self.opts.die_on:
            kinds = {"any": ("shell", "send", "recv"), "sync": ("send", "recv")}.get(want, (want,))
            if kind in kinds and pattern.search(subject):
                return True
        return False

    def die(self, why: str) -> None:
        log(f"dying hard: {why}")
        self.kill_children(signal.SIGKILL)
        os._exit(137)

    # -- the fake root --
    def banner(self) -> bytes:
        props = read_props(Path(self.root, "system/build.prop"))
        name = props.get("ro.product.name", self.opts.product)
        model = props.get("ro.product.model", self.opts.model)
        device = props.get("ro.product.device", self.opts.device)
        text = f"{self.opts.state}::ro.product.name={name};ro.product.model={model};"
        text += f"ro.product.device={device};"
        if self.opts.features:
            text += f"features={self.opts.features}"
        return text.encode()  # no trailing NUL: it would stick to the last feature

    @contextlib.contextmanager
    def as_shell(self) -> Iterator[None]:
        """File operations with the shell user's identity, as adbd (uid 2000) does them.

        Only synchronous code may run inside: the effective ids are process-wide.
        """
        uid, gid = self.opts.shell_uid, self.opts.shell_gid
        if uid is None:
            yield
            return
        os.setegid(gid if gid is not None else uid)
        os.seteuid(uid)
        try:
            yield
        finally:
            os.seteuid(0)
            os.setegid(0)
            if self.opts.die_with_parent:
                set_parent_death_signal()  # any credential change clears it

    def resolve(self, path: str, follow_last: bool) -> str:
        """Map a device path to a path relative to the root fd (``dir_fd=self.rfd``).

        Like a chroot: ``..`` stops at the root and symlinks are followed relative to the
        root, so no path leads outside it. Missing components are kept as they are. Every
        operation is relative to the root fd, so the shell user needs no access to the
        root's host ancestors (a 0700 pytest tmp dir).
        """
        todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
        done: list[str] = []
        links = 0
        while todo:
            name = todo.pop()
            if name == "..":
                if done:
                    done.pop()
                continue
            if not todo and not follow_last:
                done.append(name)
                break
            cur = "/".join([*done, name])
            try:
                st = os.lstat(cur, dir_fd=self.rfd)
            except OSError:
                done.append(name)
                continue
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > 40:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(cur, dir_fd=self.rfd)
                if target.startswith("/"):
                    done = []
                todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
                continue
            done.append(name)
        return "/".join(done) or "."

    def mkdirs(self, rel_dir: str) -> None:
        """adbd's secure_mkdirs: create missing parents 0775 (owned by the shell user)."""
        cur = ""
        for part in rel_dir.split("/"):
            if part in ("", "."):
                continue
            cur = f"{cur}/{part}" if cur else part
            try:
                os.mkdir(cur, 0o775, dir_fd=self.rfd)
                os.chmod(cur, 0o775, dir_fd=self.rfd)  # whatever our umask is
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(cur, dir_fd=self.rfd).st_mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), cur) from None

    def shell_env(self) -> dict[str, str]:
        uid = self.opts.shell_uid if self.opts.shell_uid is not None else os.getuid()
        user = {0: "root", 2000: "shell"}.get(uid, str(uid))
        # Without chroot, absolute device paths mean the host's: point PATH into the root.
        prefix = "" if self.opts.chroot else self.root
        env = {
            "PATH": ":".join(prefix + p for p in ANDROID_PATH.split(":")),
            "TMPDIR": prefix + "/data/local/tmp",
            "ANDROID_DATA": prefix + "/data",
            "ANDROID_ROOT": prefix + "/system",
            "ANDROID_STORAGE": prefix + "/storage",
            "EXTERNAL_STORAGE": prefix + "/sdcard",
            "HOME": prefix + "/",
            "HOSTNAME": "localhost",
            "USER": user,
            "LOGNAME": user,
            "SHELL": "/system/bin/sh",
        }
        if not self.opts.chroot:
            env["EMUPHONE_ROOT"] = self.root  # getprop reads $EMUPHONE_ROOT/system/build.prop
        return env

    def preexec(self, pty_slave: bool) -> Callable[[], None]:
        chroot, root = self.opts.chroot, self.root
        uid, gid = self.opts.shell_uid, self.opts.shell_gid
        libc = _LIBC

        def child() -> None:
            os.setsid()  # its own process group: SIGHUP/kill reach the whole command
            if pty_slave:
                with contextlib.suppress(OSError):
                    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            if chroot:
                os.chroot(root)
                os.chdir("/")
            if uid is not None:
                os.setgroups([])
                os.setgid(gid if gid is not None else uid)
                os.setuid(uid)
            if libc is not None:
                libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the daemon

        return child


class Transport(asyncio.BufferedProtocol):
    """One TCP connection from the adb server.

    A BufferedProtocol: each payload is received straight into its own buffer, which then
    travels to the service without another copy.
    """

    def __init__(self, d: Daemon) -> None:
        self.d = d
        self.opts = d.opts
        self.transport: asyncio.Transport | None = None
        self.version = 0x01000000  # every transport starts at the old version (adb.md 3.1)
        self.maxdata = min(self.opts.maxdata, 4096)
        self.online = False
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.tasks: set[asyncio.Task[None]] = set()
        self.token = b""
        self.cnxn_pending = False
        self.name = "?"
        self.lost = False
        self._header = bytearray(24)
        self._payload: bytearray | None = None
        self._got = 0
        self._fields = (0, 0, 0)
        self._write_ok = asyncio.Event()
        self._write_ok.set()

    # -- asyncio protocol callbacks --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.d.vanished:
            transport.abort()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Without it Nagle holds a WRTE's payload until the host's delayed ACK: +40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.name = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.d.transports.add(self)
        log(f"{self.name}: connected")

    def get_buffer(self, sizehint: int) -> memoryview:
        buf = self._header if self._payload is None else self._payload
        return memoryview(buf)[self._got :]

    def buffer_updated(self, nbytes: int) -> None:
        self._got += nbytes
        if self._payload is None:
            if self._got < 24:
                return
            cmd, arg0, arg1, n, _check, magic = struct.unpack("<6I", self._header)
            if magic != cmd ^ 0xFFFFFFFF or n > MAX_ACCEPTED_PAYLOAD:
                log(f"{self.name}: bad packet header {self._header.hex()}")
                self.abort()
                return
            self._got = 0
            if n:
                self._fields = (cmd, arg0, arg1)
                self._payload = bytearray(n)
                return
            payload = bytearray()
        else:
            if self._got < len(self._payload):
                return
            cmd, arg0, arg1 = self._fields
            payload, self._payload, self._got = self._payload, None, 0
        # data_check is never verified: adb sends 0 once it negotiated 0x01000001.
        self.handle(cmd, arg0, arg1, payload)

    def pause_writing(self) -> None:
        self._write_ok.clear()

    def resume_writing(self) -> None:
        self._write_ok.set()

    def connection_lost(self, exc: Exception | None) -> None:
        log(f"{self.name}: disconnected")
        self.lost = True
        self._write_ok.set()
        self.d.transports.discard(self)
        for s in list(self.streams.values()):
            s.on_transport_lost()
        self.streams.clear()
        for task in list(self.tasks):
            task.cancel()

    # -- output --
    def send_packet(
        self, cmd: int, arg0: int, arg1: int, payload: bytes | bytearray | memoryview = b""
    ) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        check = 0
        if self.version < VERSION_NO_CHECKSUM or self.opts.bad_checksum:
            check = sum(payload) & 0xFFFFFFFF
            if self.opts.bad_checksum:
                check = (check + 0x5A5A) & 0xFFFFFFFF
        n = len(payload)
        header = struct.pack("<6I", cmd, arg0, arg1, n, check, cmd ^ 0xFFFFFFFF)
        if n <= 65536:
            self.transport.write(header + bytes(payload))  # one segment, one syscall
        else:
            self.transport.write(header)
            self.transport.write(payload)

    async def drain(self) -> None:
        await self._write_ok.wait()
        if self.lost:
            raise StreamClosed

    async def pace(self) -> None:
        if self.opts.slow:
            await asyncio.sleep(self.opts.slow)

    def spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def forget(self, s: Stream) -> None:
        if self.streams.get(s.local_id) is s:
            del self.streams[s.local_id]

    # -- input --
    def handle(self, cmd: int, arg0: int, arg1: int, payload: bytearray) -> None:
        if cmd == A_CNXN:
            self.on_host_cnxn(arg0, arg1, payload)
        elif cmd == A_AUTH:
            self.on_auth(arg0, payload)
        elif not self.online:
            return  # like adbd: nothing but CNXN/AUTH before the handshake
        elif cmd == A_OPEN:
            self.on_open(arg0, payload)
        elif cmd == A_OKAY:
            s = self.streams.get(arg1)
            if s is not None and s.remote_id == arg0:
                s.on_okay()
        elif cmd == A_WRTE:
            s = self.streams.get(arg1)
            if s is not None and s.remote_id == arg0:
                s.on_write(payload)
        elif cmd == A_CLSE:
            s = self.streams.get(arg1)
            if s is not None and arg0 in (0, s.remote_id):
                self.forget(s)
                s.on_remote_close()

    def on_host_cnxn(self, version: int, maxdata: int, payload: bytearray) -> None:
        log(f"{self.name}: host CNXN {version:#x} {maxdata} {bytes(payload[:60])!r}")
        for s in list(self.streams.values()):  # a new CNXN resets the transport
            s.on_transport_lost()
        self.streams.clear()
        self.online = False
        self.cnxn_pending = False
        self.version = min(version, self.opts.proto_version)
        self.maxdata = max(256, min(maxdata or MAX_PAYLOAD, self.opts.maxdata))
        if self.opts.offline == "silent":
            return  # TCP is up but the device never answers
        if self.opts.auth == "none":
            self.spawn(self.send_cnxn(self.opts.connect_delay))
        else:
            self.send_token()

    def send_token(self) -> None:
        self.token = os.urandom(20)
        self.send_packet(A_AUTH, AUTH_TOKEN, 0, self.token)

    def on_auth(self, kind: int, payload: bytearray) -> None:
        log(f"{self.name}: AUTH type {kind} ({len(payload)} bytes)")
        mode = self.opts.auth
        if kind == AUTH_SIGNATURE:
            if mode == "accept":
                self.spawn(self.send_cnxn(self.opts.connect_delay))
            else:
                self.send_token()  # unknown key: ask for the next one, as adbd does
        elif kind == AUTH_RSAPUBLICKEY and mode == "prompt" and not self.cnxn_pending:
            # The user taps "Allow" after a while.
            self.spawn(self.send_cnxn(self.opts.prompt_delay + self.opts.connect_delay))

    async def send_cnxn(self, delay: float) -> None:
        self.cnxn_pending = True
        if delay:
            await asyncio.sleep(delay)
        self.send_packet(A_CNXN, self.version, self.maxdata, self.d.banner())
        self.online = True
        log(f"{self.name}: online, version {self.version:#x} maxdata {self.maxdata}")
        if self.opts.offline == "drop":
            await asyncio.sleep(0.05)
            self.abort()
        elif self.opts.offline == "vanish":
            await asyncio.sleep(0.05)
            self.d.vanish()

    def on_open(self, remote_id: int, payload: bytearray) -> None:
        service = payload.rstrip(b"\0").decode("utf-8", "surrogateescape")
        log(f"{self.name}: OPEN {remote_id} {service!r}")
        handler: Service | None = None
        if service.startswith(("shell:", "shell,", "exec:")):
            handler = run_shell
        elif service == "sync:":
            handler = run_sync
        if handler is None or remote_id == 0:
            self.send_packet(A_CLSE, 0, remote_id)  # the client sees FAIL "closed"
            return
        local_id = self.next_id
        self.next_id += 1
        s = Stream(self, local_id, remote_id)
        self.streams[local_id] = s
        s.task = self.spawn(self.serve_stream(s, service, handler))

    async def serve_stream(self, s: Stream, service: str, handler: Service) -> None:
        try:
            await self.pace()
            if s.closed:
                return
            self.send_packet(A_OKAY, s.local_id, s.remote_id)
            await handler(s, service)
        except StreamClosed:
            pass
        except Exception as e:  # a bug in a service must not take the transport down
            log(f"{self.name}: service {service!r} failed: {e!r}")
        finally:
            if not s.closed:
                with contextlib.suppress(StreamClosed, asyncio.CancelledError):
                    await s.close()


# --------------------------------------------------------------------------- shell


def parse_shell_service(service: str) -> tuple[bool, bool, str, str]:
    """(v2, pty, TERM, command) for ``shell[,args]:CMD`` and ``exec:CMD``."""
    head, _, command = service.partition(":")
    args = head.split(",")
    if args[0] == "exec":
        return False, False, "", command
    v2 = "v2" in args
    use_pty = "pty" in args or ("raw" not in args and not command)
    term = next((a[5:] for a in args if a.startswith("TERM=")), "")
    return v2, use_pty, term, command


async def run_shell(s: Stream, service: str) -> None:
    d = s.t.d
    v2, use_pty, term, command = parse_shell_service(service)
    maxdata = s.t.maxdata
    env = d.shell_env()
    if term:
        env["TERM"] = term
    sh = d.opts.sh if d.opts.chroot else d.root + d.opts.sh
    argv = [sh, "-c", command] if command else [sh, "-"]

    to_close: list[int] = []
    master = -1
    if use_pty:
        master, slave = pty.openpty()
        child_fds = (slave, slave, slave)
        stdin_w, outputs = master, [(master, SHELL_STDOUT)]
        to_close.append(slave)
    else:
        in_r, stdin_w = os.pipe()
        out_r, out_w = os.pipe()
        outputs = [(out_r, SHELL_STDOUT)]
        to_close += [in_r, out_w]
        if v2:
            err_r, err_w = os.pipe()
            outputs.append((err_r, SHELL_STDERR))
            to_close.append(err_w)
        else:
            err_w = out_w  # v1 has no stderr: merged into stdout, as adbd does
        child_fds = (in_r, out_w, err_w)
    own_fds = [stdin_w] + [fd for fd, _ in outputs if fd != stdin_w]
    for fd in own_fds:
        os.set_blocking(fd, False)
        set_pipe_size(fd)

    def packet(ident: int, data: bytes) -> bytes:
        return struct.pack("<BI", ident, len(data)) + data if v2 else data

    proc: asyncio.subprocess.Process | None = None
    completed = False
    try:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=child_fds[0],
                stdout=child_fds[1],
                stderr=child_fds[2],
                env=env,
                cwd=None if d.opts.chroot else d.root,
                preexec_fn=d.preexec(use_pty),
            )
        except OSError as e:
            msg = f"{d.opts.sh}: can't execute: {e.strerror}\n".encode()
            await s.send(packet(SHELL_STDERR, msg))
            if v2:
                await s.send(packet(SHELL_EXIT, bytes([127])))
            return
        finally:
            for fd in to_close:
                os.close(fd)
        d.children.add(proc.pid)
        log(f"stream {s.local_id}: pid {proc.pid}: {argv!r}")
        die = d.die_check("shell", command)
        if die and d.opts.die_after <= 0:
            d.die(f"shell {command!r}")
        sent = [0]

        async def pump(fd: int, ident: int) -> None:
            head = 5 if v2 else 0
            while True:
                buf = bytearray(maxdata)  # fresh: the transport may still hold the last one
                n = await read_fd_into(fd, memoryview(buf)[head:])
                if not n:
                    return
                if v2:
                    struct.pack_into("<BI", buf, 0, ident, n)
                await s.send(memoryview(buf)[: head + n])
                sent[0] += n
                if die and sent[0] >= d.opts.die_after:
                    d.die(f"shell {command!r} after {sent[0]} bytes")

        def close_stdin() -> None:
            if stdin_w in own_fds and not use_pty:
                own_fds.remove(stdin_w)
                os.close(stdin_w)

        pumps = [asyncio.ensure_future(pump(fd, ident)) for fd, ident in outputs]
        helpers = [*pumps, asyncio.ensure_future(feed_stdin(s, stdin_w, v2, use_pty, close_stdin))]
        try:
            await asyncio.gather(*pumps)
            rc = await proc.wait()
        finally:
            # Stop every reader/writer before its fd is closed (stale selector entries).
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        d.children.discard(proc.pid)
        code = 128 - rc if rc < 0 else rc  # death by signal N gives 128+N, like adbd
        log(f"stream {s.local_id}: pid {proc.pid} exit {code}")
        if v2:
            await s.send(packet(SHELL_EXIT, bytes([code & 0xFF])))
        completed = True
    finally:
        for fd in own_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        if proc is not None and not completed:
            # The host closed the stream (or the transport died): hang up, as adbd does,
            # also on background jobs still holding the output open.
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGHUP)
        if proc is not None and proc.returncode is not None:
            d.children.discard(proc.pid)
        elif proc is not None:
            reaper = asyncio.ensure_future(reap(d, proc))
            d.reapers.add(reaper)
            reaper.add_done_callback(d.reapers.discard)


async def reap(d: Daemon, proc: asyncio.subprocess.Process) -> None:
    # asyncio.wait, not wait_for: its timeout exception differs before Python 3.11.
    done, _ = await asyncio.wait([asyncio.ensure_future(proc.wait())], timeout=2.0)
    if not done:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
    d.children.discard(proc.pid)


async def feed_stdin(
    s: Stream, fd: int, v2: bool, use_pty: bool, close_stdin: Callable[[], None]
) -> None:
    """Host -> child stdin. Data for a child that stopped reading is dropped (EPIPE)."""
    alive = True

    async def write(data: bytes | bytearray) -> None:
        nonlocal alive
        if alive:
            try:
                await write_fd(fd, data)
            except OSError:
                alive = False

    if not v2:
        while data := await s.recv():
            await write(data)
        return
    inbox = Inbox(s)
    try:
        while True:
            ident, n = struct.unpack("<BI", await inbox.read_exact(5))
            body = await inbox.read_exact(n)
            if ident == SHELL_STDIN:
                await write(body)
            elif ident == SHELL_CLOSE_STDIN and not use_pty:
                # A pty cannot close only its input; adbd ignores this for ptys too.
                alive = False
                close_stdin()
            elif ident == SHELL_WINSIZE and use_pty:
                m = re.match(rb"(\d+)x(\d+),(\d+)x(\d+)", body)
                if m:
                    rows, cols, x, y = (int(g) for g in m.groups())
                    with contextlib.suppress(OSError):
                        winsize = struct.pack("HHHH", rows, cols, x, y)
                        fcntl.ioctl(fd, termios.TIOCSWINSZ, winsize)
    except EOFError:
        pass


# --------------------------------------------------------------------------- sync


def sync_fail(message: str) -> bytes:
    data = message.encode("utf-8", "surrogateescape")
    return b"FAIL" + struct.pack("<I", len(data)) + data


def pack_stat_v1(st: os.stat_result | None) -> bytes:
    if st is None:
        return struct.pack("<III", 0, 0, 0)
    return struct.pack(
        "<III", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF
    )


def pack_stat_v2(st: os.stat_result | None, error: int = 0) -> bytes:
    """The 68 bytes after the id of adbd's sync_stat_v2 (72 in all)."""
    if st is None:
        return struct.pack("<I", error) + bytes(64)
    return struct.pack(
        "<IQQIIIIQqqq",
        0,
        st.st_dev,
        st.st_ino,
        st.st_mode,
        st.st_nlink,
        st.st_uid,
        st.st_gid,
        st.st_size,
        int(st.st_atime),
        int(st.st_mtime),
        int(st.st_ctime),
    )


async def run_sync(s: Stream, _service: str) -> None:
    d = s.t.d
    inbox = Inbox(s)
    while True:
        try:
            hdr = await inbox.read_exact(8)
        except EOFError:
            return
        ident, length = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        if ident == b"QUIT":
            return
        if length > SYNC_PATH_MAX:
            await s.send(sync_fail("path too long"))
            return
        path = (await inbox.read_exact(length)).decode("utf-8", "surrogateescape")
        log(f"stream {s.local_id}: sync {ident.decode(errors='replace')} {path!r}")
        if ident in (b"STAT", b"STA2", b"LST2"):
            await sync_stat(s, d, ident, path)
        elif ident in (b"LIST", b"LIS2"):
            await sync_list(s, d, ident == b"LIS2", path)
        elif ident == b"SEND":
            if not await sync_send(s, d, inbox, path):
                return
        elif ident == b"RECV":
            if not await sync_recv(s, d, path):
                return
        else:
            await s.send(sync_fail(f"unknown command {struct.unpack('<I', ident)[0]:08x}"))
            return


def parent_of(rel: str) -> str:
    return os.path.dirname(rel) or "."


async def sync_stat(s: Stream, d: Daemon, ident: bytes, path: str) -> None:
    st: os.stat_result | None = None
    error = 0
    with d.as_shell():
        try:
            # STAT and LST2 are lstat; STA2 follows symlinks (resolved inside the root).
            st = os.lstat(d.resolve(path, follow_last=ident == b"STA2"), dir_fd=d.rfd)
        except OSError as e:
            error = e.errno or errno.EIO
    # One WRTE per reply: adbutils reads the STAT reply with a single bare recv(12).
    if ident == b"STAT":
        await s.send(b"STAT" + pack_stat_v1(st))
    else:
        await s.send(ident + pack_stat_v2(st, error))


async def sync_list(s: Stream, d: Daemon, v2: bool, path: str) -> None:
    entries: list[tuple[str, os.stat_result | None, int]] = []
    with d.as_shell():
        try:
            rel = d.resolve(path, follow_last=True)
            dfd = os.open(rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=d.rfd)
        except OSError:
            dfd = -1  # adbd: opendir failed -> just DONE
        if dfd >= 0:
            try:
                names = [(".", rel, d.rfd), ("..", parent_of(rel), d.rfd)]
                names += [(n, n, dfd) for n in os.listdir(dfd)]
                for name, where, base in names:
                    try:
                        entries.append((name, os.lstat(where, dir_fd=base), 0))
                    except OSError as e:
                        if v2:
                            entries.append((name, None, e.errno or errno.EIO))
            finally:
                os.close(dfd)
    buf = bytearray()
    limit = s.t.maxdata
    for name, st, err in entries:
        raw = name.encode("utf-8", "surrogateescape")
        if v2:
            ent = b"DNT2" + pack_stat_v2(st, err) + struct.pack("<I", len(raw)) + raw
        elif st is not None:
            ent = b"DENT" + pack_stat_v1(st) + struct.pack("<I", len(raw)) + raw
        else:
            continue
        if buf and len(buf) + len(ent) > limit:
            await s.send(buf)  # keep each entry in one WRTE: adbutils recv()s headers bare
            buf = bytearray()
        buf += ent
    done = b"DONE" + bytes(72 if v2 else 16)
    if buf and len(buf) + len(done) > limit:
        await s.send(buf)
        buf = bytearray()
    buf += done
    await s.send(buf)


async def sync_send(s: Stream, d: Daemon, inbox: Inbox, spec: str) -> bool:
    comma = spec.rfind(",")
    if comma < 0:
        await s.send(sync_fail("missing , in ID_SEND"))
        return False
    path, mode = spec[:comma], strtoul0(spec[comma + 1 :])
    die = d.die_check("send", path)
    if die and d.opts.die_after <= 0:
        d.die(f"SEND {path!r}")
    fd = -1
    error = ""
    rel = ""
    link_target = bytearray()
    is_link = stat.S_ISLNK(mode)
    do_unlink = False
    with d.as_shell():
        try:
            rel = d.resolve(path, follow_last=False)
        except OSError as e:
            error = f"couldn't create file: {e.strerror}"
        if rel:
            # Like adbd: replace regular files and symlinks, never write through a link.
            try:
                st = os.lstat(rel, dir_fd=d.rfd)
                do_unlink = stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)
            except OSError:
                do_unlink = True
            if do_unlink:
                with contextlib.suppress(OSError):
                    os.unlink(rel, dir_fd=d.rfd)
        if rel and not is_link:
            # Owner bits copied to group and others, as adbd does (0755 -> 0777).
            perm = mode & 0o777
            perm |= (perm >> 3) & 0o070
            perm |= (perm >> 3) & 0o007
            fd, error = open_for_send(d, rel, perm)
    if error:
        # adbd reports first, then eats DATA until DONE, then ends the sync service.
        await s.send(sync_fail(error))
        await drain_send(inbox)
        return False

    received = 0
    write_error = ""
    pending: list[memoryview] = []
    pending_bytes = 0

    def flush() -> None:
        # One writev for many small DATA chunks (adbutils sends 4 KiB ones).
        nonlocal write_error, pending_bytes
        try:
            while pending:
                n = os.writev(fd, pending[:1024])
                while n:
                    if n >= len(pending[0]):
                        n -= len(pending.pop(0))
                    else:
                        pending[0] = pending[0][n:]
                        n = 0
        except OSError as e:
            write_error = f"write failed: {e.strerror}"
        pending.clear()
        pending_bytes = 0

    def sink(chunk: memoryview) -> None:
        nonlocal pending_bytes
        if is_link:
            link_target.extend(chunk)
        elif not write_error:
            pending.append(chunk)  # the chunk's buffer is never reused: no copy needed
            pending_bytes += len(chunk)
            if pending_bytes >= MAX_PAYLOAD or len(pending) >= 1024:
                flush()

    try:
        while True:
            hdr = await inbox.read_exact(8)
            ident, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if ident == b"DONE":
                mtime = size
                if fd >= 0:
                    flush()
                if write_error:
                    await s.send(sync_fail(write_error))
                    return False
                break
            if ident != b"DATA":
                await s.send(sync_fail("invalid data message"))
                return False
            if size > SYNC_DATA_MAX:
                await s.send(sync_fail("oversize data message"))
                return False
            await inbox.copy_to(size, sink)
            received += size
            if die and received >= d.opts.die_after:
                d.die(f"SEND {path!r} after {received} bytes")
            if write_error:
                await s.send(sync_fail(write_error))
                await drain_send(inbox)
                return False
    except EOFError:
        return False
    finally:
        if fd >= 0:
            os.close(fd)
            fd = -1
        if write_error and do_unlink:
            with d.as_shell(), contextlib.suppress(OSError):
                os.unlink(rel, dir_fd=d.rfd)

    with d.as_shell():
        try:
            if is_link:
                target = bytes(link_target).rstrip(b"\0")
                try:
                    os.symlink(target, rel, dir_fd=d.rfd)
                except FileNotFoundError:
                    d.mkdirs(parent_of(rel))
                    os.symlink(target, rel, dir_fd=d.rfd)
            os.utime(rel, (mtime, mtime), dir_fd=d.rfd, follow_symlinks=False)
        except OSError as e:
            error = f"{'symlink' if is_link else 'utime'} failed: {e.strerror}"
    if error:
        await s.send(sync_fail(error))
        return False
    await s.send(b"OKAY" + bytes(4))
    return True


def open_for_send(d: Daemon, rel: str, perm: int) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        try:
            fd = os.open(rel, flags, perm, dir_fd=d.rfd)
        except FileNotFoundError:
            try:
                d.mkdirs(parent_of(rel))
            except OSError as e:
                return -1, f"secure_mkdirs failed: {e.strerror}"
            fd = os.open(rel, flags, perm, dir_fd=d.rfd)
        except FileExistsError:
            fd = os.open(rel, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=d.rfd)
        os.fchmod(fd, perm)
    except OSError as e:
        return -1, f"couldn't create file: {e.strerror}"
    return fd, ""


async def drain_send(inbox: Inbox) -> None:
    with contextlib.suppress(EOFError):
        while True:
            hdr = await inbox.read_exact(8)
            if hdr[:4] != b"DATA":
                return
            await inbox.copy_to(struct.unpack("<I", hdr[4:])[0], lambda _chunk: None)


async def sync_recv(s: Stream, d: Daemon, path: str) -> bool:
    die = d.die_check("recv", path)
    if die and d.opts.die_after <= 0:
        d.die(f"RECV {path!r}")
    error = ""
    with d.as_shell():
        try:
            rel = d.resolve(path, follow_last=True)
            fd = os.open(rel, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=d.rfd)
        except OSError as e:
            fd, error = -1, e.strerror or "unknown error"
    if fd < 0:
        await s.send(sync_fail(f"open failed: {error}"))
        return False
    sent = 0
    limit = s.t.maxdata
    try:
        eof = False
        while not eof:
            # Several DATA chunks per WRTE, up to maxdata: 1 MiB WRTEs are what make it
            # fast. Read straight into the WRTE's buffer (a fresh one each time).
            buf = bytearray(limit)
            view = memoryview(buf)
            pos = 0
            while pos + 8 < limit:
                want = min(RECV_CHUNK, limit - pos - 8)
                try:
                    n = os.readv(fd, [view[pos + 8 : pos + 8 + want]])
                except OSError as e:
                    if pos:
                        await s.send(view[:pos])
                    await s.send(sync_fail(f"read failed: {e.strerror}"))
                    return False
                if not n:
                    eof = True
                    struct.pack_into("<4sI", buf, pos, b"DONE", 0)  # room left: pos + 8 < limit
                    pos += 8
                    break
                struct.pack_into("<4sI", buf, pos, b"DATA", n)
                pos += 8 + n
            await s.send(view[:pos])
            sent += pos
            if die and sent >= d.opts.die_after and not eof:
                d.die(f"RECV {path!r} after {sent} bytes")
    finally:
        os.close(fd)
    return True


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="adbd.py",
        description="Emulated Android adb daemon (device side of the adb protocol over TCP). "
        "Connect with: adb connect 127.0.0.1:PORT",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", required=True, type=Path, help="directory standing in for /")
    p.add_argument("--port-file", type=Path, help="write the port here (atomic rename)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=0, help="0 = any free port (never 5555-5585)")
    p.add_argument(
        "--chroot",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="chroot shell commands into --root (needs root); without it commands run with "
        "cwd=ROOT and absolute paths mean the host's",
    )
    p.add_argument(
        "--shell-uid",
        type=int,
        help="run shell commands and sync file operations as this uid (2000 = shell, as "
        "on a phone that is not rooted); needs root",
    )
    p.add_argument("--shell-gid", type=int, help="gid for --shell-uid (default: same number)")
    p.add_argument("--sh", default="/system/bin/sh", help="device path of the shell")
    p.add_argument("--product", default="emuphone", help="ro.product.name if no build.prop")
    p.add_argument("--model", default="EmuPhone", help="ro.product.model if no build.prop")
    p.add_argument("--device", default="emu", help="ro.product.device if no build.prop")
    p.add_argument(
        "--features",
        default=DEFAULT_FEATURES,
        help='banner features; "" = an old device without shell_v2/stat_v2/ls_v2: adb shell '
        "falls back to shell: (exit code always 0), shell2(v2=True) to v1, the CLI to sync v1",
    )
    p.add_argument(
        "--maxdata",
        type=lambda v: int(v, 0),
        default=MAX_PAYLOAD,
        help="own max payload (e.g. 4096 for an old device); negotiated = min(host, own)",
    )
    p.add_argument(
        "--proto-version",
        type=lambda v: int(v, 0),
        default=VERSION,
        help="own protocol version; 0x01000000 = old device (real data checksums are sent)",
    )
    p.add_argument(
        "--state",
        default="device",
        help="banner state: device, recovery, bootloader, sideload, rescue (recovery: listed "
        "as recovery, shell works, adbutils device_list() omits it)",
    )
    p.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default="none",
        help="none: CNXN at once; accept: AUTH token, any signature accepted; deny: never "
        "accepted (host shows unauthorized, adb connect says 'failed to authenticate'); "
        "prompt: accepted --prompt-delay seconds after the host sent its public key",
    )
    p.add_argument("--prompt-delay", type=float, default=1.0, help="seconds for --auth prompt")
    p.add_argument(
        "--connect-delay",
        type=float,
        default=0.0,
        help="seconds before the device's CNXN (over 10 s: adb connect says 'failed to "
        "connect' but the entry turns 'device' when CNXN comes)",
    )
    p.add_argument(
        "--slow",
        type=float,
        default=0.0,
        help="a slow device: sleep this long before every stream packet it sends (OKAY to "
        "OPEN, each WRTE, each OKAY, CLSE)",
    )
    p.add_argument(
        "--bad-checksum",
        action="store_true",
        help="send wrong data_check values (adb 29 never verifies them)",
    )
    p.add_argument(
        "--offline",
        choices=OFFLINE_MODES,
        help="an offline device. silent: TCP accepted, CNXN never sent (listed 'offline' "
        "while adb connect waits, then 'failed to connect'); drop: close each transport "
        "right after CNXN (flaps offline/device as the server reconnects); vanish: close "
        "the transport after the first CNXN and refuse every later connection (stays "
        "'offline')",
    )
    p.add_argument(
        "--die-on",
        action="append",
        default=[],
        metavar="[KIND:]REGEX",
        help="kill the daemon hard (os._exit, children SIGKILLed) when a shell command or "
        "sync path matches REGEX. KIND: shell, send (push), recv (pull), sync (send or "
        "recv), any (default: all three); may be repeated",
    )
    p.add_argument(
        "--die-after",
        type=int,
        default=0,
        metavar="BYTES",
        help="with --die-on: die only after this many bytes of the matching transfer or "
        "command output went through (0: at once)",
    )
    p.add_argument(
        "--die-with-parent",
        action="store_true",
        help="exit when the parent process dies (PR_SET_PDEATHSIG): no orphan daemons if the "
        "test runner is killed",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    a = p.parse_args(argv)

    die_on: list[tuple[str, re.Pattern[str]]] = []
    for spec in a.die_on:
        kind, sep, rx = spec.partition(":")
        if not sep or kind not in DIE_KINDS:
            kind, rx = "any", spec
        die_on.append((kind, re.compile(rx)))
    if (a.chroot or a.shell_uid is not None) and os.geteuid() != 0:
        p.error("--chroot and --shell-uid need root")
    if not a.root.is_dir():
        p.error(f"--root {a.root}: not a directory")
    global _verbose
    _verbose = a.verbose
    if a.die_with_parent:
        set_parent_death_signal()
    return Options(
        root=a.root,
        port_file=a.port_file,
        host=a.host,
        port=a.port,
        chroot=a.chroot,
        shell_uid=a.shell_uid,
        shell_gid=a.shell_gid,
        sh=a.sh,
        product=a.product,
        model=a.model,
        device=a.device,
        features=a.features,
        maxdata=a.maxdata,
        proto_version=a.proto_version,
        state=a.state,
        auth=a.auth,
        prompt_delay=a.prompt_delay,
        connect_delay=a.connect_delay,
        slow=a.slow,
        bad_checksum=a.bad_checksum,
        offline=a.offline,
        die_on=die_on,
        die_after=a.die_after,
        die_with_parent=a.die_with_parent,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    asyncio.run(Daemon(opts).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
