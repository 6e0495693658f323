"""Turn a capture's raw source text (``dump.bin``) into a :class:`SourceInput`.

Everything is re-derived from the bytes every time a capture is read, like the collector's
dump: the metadata only says which reader to use.
"""

from __future__ import annotations

from typing import Any

from dmaprof.capture.container import Capture
from dmaprof.sources.bugreport import Bugreport, parse_bugreport
from dmaprof.sources.build import SourceInput, limitation
from dmaprof.sources.dmabuf_dump import DmabufDump, parse_dmabuf_dump

__all__ = ["bugreport_input", "decode", "dmabuf_dump_input", "source_input"]


def decode(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def source_input(capture: Capture) -> SourceInput:
    source = capture.meta.get("source") or {}
    kind = source.get("kind")
    text = decode(capture.dump)
    device = {k: v for k, v in capture.device.items() if v not in ("", None)}
    if kind == "bugreport":
        return bugreport_input(parse_bugreport(text), device=device, source=dict(source))
    return dmabuf_dump_input(parse_dmabuf_dump(text), device=device, source=dict(source))


def dmabuf_dump_of(report: Bugreport) -> DmabufDump:
    """The two dmabuf_dump sections of a bugreport, read as one output."""
    text = (report.dmabuf_dump or "") + "\n" + (report.dmabuf_stats or "")
    return parse_dmabuf_dump(text)


def bugreport_input(
    report: Bugreport, *, device: dict[str, Any] | None = None, source: dict[str, Any] | None = None
) -> SourceInput:
    parsed = dmabuf_dump_of(report)
    dev: dict[str, Any] = {k: v for k, v in report.device().items() if v not in ("", None)}
    dev.update(device or {})
    if report.uptime_s is not None:
        dev.setdefault("uptime_start", report.uptime_s)
    warnings: list[str] = []
    limitations = []
    if report.dmabuf_dump is None:
        limitations.append(
            limitation(
                "no_dmabuf_dump",
                "processes",
                "this bugreport has no `Dmabuf dump (dmabuf_dump)` section (Android 11 or "
                "older, or dumpstate skipped it): no per-process DMA-BUF figures",
            )
        )
    if report.dmabuf_stats is None:
        limitations.append(
            limitation(
                "no_dmabuf_dump_b",
                "buffer",
                "this bugreport has no `dmabuf_dump -b` section: no exact sizes and no list of "
                "kernel-only buffers",
            )
        )
    if not report.ps:
        limitations.append(
            limitation(
                "no_ps",
                "app",
                "this bugreport has no process list (`PROCESSES AND THREADS`): no uids",
            )
        )
    if report.wallclock_note:
        warnings.append(report.wallclock_note)
    return SourceInput(
        kind="bugreport",
        parsed=parsed,
        device=dev,
        ps=report.ps,
        names={pid: list(c) for pid, c in report.names.items()},
        meminfo=dict(report.meminfo),
        warnings=warnings,
        limitations=limitations,
        source=dict(source or {}),
    )


def dmabuf_dump_input(
    parsed: DmabufDump,
    *,
    device: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> SourceInput:
    limitations = [
        limitation(
            "no_device",
            "device",
            "raw dmabuf_dump output names no device: model, build and kernel are unknown "
            "(import a bugreport, or give --serial)",
        )
    ]
    if parsed.per_buffer is None:
        limitations.append(
            limitation(
                "no_dmabuf_dump_b",
                "buffer",
                "no `dmabuf_dump -b` output: no exact sizes and no list of kernel-only buffers",
            )
        )
    return SourceInput(
        kind="dmabuf_dump",
        parsed=parsed,
        device=dict(device or {}),
        limitations=limitations,
        source=dict(source or {}),
    )
