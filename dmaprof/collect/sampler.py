"""The device side of `record` and `top`: one capture per call from one device."""

from __future__ import annotations

from typing import Any

from dmaprof.capture.container import Capture
from dmaprof.choices import RootMode
from dmaprof.collect.adb import AdbServer, ServerAddress
from dmaprof.collect.snapshot import take_snapshot
from dmaprof.errors import DmaprofError, InterruptedByUser


class AdbSampler:
    """Takes one capture per call from a device selected like `dmaprof snapshot` does; after
    a failure the device (and the adb server) is looked up again on the next call."""

    def __init__(
        self, serial: str | None, *, root_mode: RootMode = "auto", timeout: float = 120.0
    ) -> None:
        self.serial = serial
        self.root_mode = root_mode
        self.timeout = timeout
        self._device: Any = None

    def __call__(self) -> Capture:
        if self._device is None:
            device = AdbServer(ServerAddress.from_env()).select(self.serial)
            device.timeout = self.timeout
            self._device = device
        try:
            capture = take_snapshot(self._device, root_mode=self.root_mode).capture
            # one series, one device: after a failure look for this one, never another
            self.serial = self.serial or self._device.serial
            return capture
        except InterruptedByUser:
            raise
        except DmaprofError:
            self._device = None
            raise
