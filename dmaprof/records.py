"""Plain records that cross layers: what a device probe found (`dmaprof devices`) and how
one device's snapshot ended (`snapshot --all`). Collect fills them in, render prints them;
neither needs the other's modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SOURCES = (
    "fdinfo",
    "maps",
    "sysfs_buffers",
    "bpf_iter",
    "debugfs_bufinfo",
    "dma_heap",
    "dma_heap_pools",
    "ion",
    "dmabuf_rss",
)


@dataclass
class DeviceReport:
    serial: str
    state: str
    model: str = ""
    manufacturer: str = ""
    release: str = ""
    sdk: str = ""
    build_type: str = ""
    kernel: str = ""
    uid: int | None = None
    root: str = "unknown"  # "adbd", "su", "no", "unknown"
    sources: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    run_as: list[str] = field(default_factory=list)  # debuggable apps run-as opens
    run_as_checked: int | None = None  # third-party packages tried (None: no run-as)
    run_as_truncated: bool = False  # more packages than RUNAS_MAX: not all were tried
    modes: list[str] = field(default_factory=list)  # "root", "run-as", "shell" (best first)

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class Outcome:
    serial: str
    path: Path | None = None
    error: str | None = None
    exit_code: int = 0
    elapsed_s: float = 0.0
