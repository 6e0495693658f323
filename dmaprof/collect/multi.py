"""Snapshot several devices at once (`snapshot --all`, repeated `-s`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dmaprof.capture.container import write_capture
from dmaprof.choices import RootMode
from dmaprof.collect.adb import AdbServer
from dmaprof.collect.snapshot import take_snapshot
from dmaprof.errors import DmaprofError, NoDeviceError
from dmaprof.records import Outcome

MAX_PARALLEL = 8


def capture_name(serial: str, when: float) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in serial)[:64] or "device"
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}.dmaprof"


def snapshot_devices(
    server: AdbServer,
    serials: list[str] | None,
    directory: Path,
    *,
    root_mode: RootMode = "auto",
    timeout: float = 120.0,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """One capture per device, taken concurrently. Errors are per device, never raised."""
    say = progress or (lambda _msg: None)
    if serials is None:
        serials = [entry.serial for entry in server.devices()]
        if not serials:
            raise NoDeviceError(
                "no device connected: plug one in with USB debugging enabled, or "
                "`adb connect HOST:PORT` for a device on the network"
            )
    started = time.time()

    def one(serial: str) -> Outcome:
        outcome = Outcome(serial)
        begin = time.monotonic()
        try:
            device = server.select(serial)
            device.timeout = timeout
            say(f"{serial}: collecting")
            result = take_snapshot(device, root_mode=root_mode)
            target = directory / capture_name(serial, started)
            write_capture(result.capture, target, overwrite=overwrite)
            outcome.path = target
            say(f"{serial}: wrote {target}")
        except DmaprofError as exc:
            outcome.error = exc.message
            outcome.exit_code = int(exc.exit_code)
            say(f"{serial}: failed: {exc.message}")
        outcome.elapsed_s = time.monotonic() - begin
        return outcome

    directory.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(serials))) as pool:
        return list(pool.map(one, serials))
