"""Something other than an adb server on the adb port: exit 3, "not an adb server", quickly.

Each case is a real local listener on a free port; dmaprof runs as a real subprocess against
it with ANDROID_ADB_SERVER_PORT, exactly as a user whose port is taken would."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.emuphone.harness import FAIL_STUB, LOCALHOST

Serve = Callable[[socket.socket], None]


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = HTTPServer((LOCALHOST, 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _listener(serve: Serve) -> Iterator[int]:
    lsock = socket.socket()
    lsock.bind((LOCALHOST, 0))
    lsock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def loop() -> None:
        lsock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)
            serve(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield lsock.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        lsock.close()


@pytest.fixture
def closing_port() -> Iterator[int]:
    yield from _listener(lambda conn: conn.close())


@pytest.fixture
def silent_port() -> Iterator[int]:
    yield from _listener(lambda conn: None)  # accepts, reads nothing, never answers


def _devices(port: int) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {
        "PATH": "/usr/bin:/bin",
        "ANDROID_ADB_SERVER_HOST": LOCALHOST,
        "ANDROID_ADB_SERVER_PORT": str(port),
        "ADBUTILS_ADB_PATH": FAIL_STUB,
        "HOME": "/nonexistent",
    }
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "dmaprof", "devices"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return r, time.monotonic() - t0


@pytest.mark.parametrize("kind", ["http_port", "closing_port", "silent_port"])
def test_not_an_adb_server(kind: str, request: pytest.FixtureRequest) -> None:
    port = request.getfixturevalue(kind)
    r, seconds = _devices(port)
    assert r.returncode == 3, r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"dmaprof: error: not an adb server at {LOCALHOST}:{port}")
    assert "Traceback" not in r.stderr
    assert seconds < 8, seconds
