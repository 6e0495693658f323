"""`dmaprof export --format perfetto`: a trend as a Perfetto trace (docs/perfetto.md).

The trace is a ``perfetto.protos.Trace`` (TracePacket protobuf) built with the classes the
``perfetto`` package ships (the ``dmaprof[perfetto]`` extra: perfetto + protobuf). One packet
sequence: its first packet clears the incremental state; then a track descriptor per track
(a root "DMA-BUF (dmaprof)", groups for exporters, apps, processes, verdicts and new
buffers, and under them the counter tracks, unit bytes) and the events in time order, every
one on CLOCK_BOOTTIME (the device's boot clock: the collector's uptime), so the tracks line
up with a Perfetto trace of the same device taken at the same time. What is drawn is
:mod:`dmaprof.leaks.timeline`'s; this module only encodes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dmaprof.errors import DmaprofError
from dmaprof.files import refuse_to_overwrite, write_atomic
from dmaprof.leaks.timeline import Instant, Timeline, Track, track_uuid

PERFETTO_EXTRA = "dmaprof[perfetto]"
MISSING = f"Perfetto traces need the perfetto and protobuf packages: pip install '{PERFETTO_EXTRA}'"
#: the one packet sequence of the trace (an id unlikely to clash with a system trace's
#: sequences when the two files are concatenated)
SEQUENCE_ID = 0x646D6162  # "dmab"
BOOTTIME = 6  # BUILTIN_CLOCK_BOOTTIME
GROUP_TITLES = {
    "total": None,
    "kernel_only": None,
    "exporter": "exporters",
    "app": "apps",
    "process": "processes",
}


def proto() -> Any:
    """``perfetto_trace_pb2`` (generated, untyped), or the one-line error of a missing extra."""
    try:
        from perfetto.protos.perfetto.trace import perfetto_trace_pb2
    except Exception as exc:  # ImportError, or protobuf's runtime version check
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DmaprofError(f"{MISSING} ({reason})") from None
    return perfetto_trace_pb2


@dataclass
class TraceSummary:
    path: Path
    samples: int
    tracks: int
    points: int
    instants: int
    warnings: list[str] = field(default_factory=list)

    @property
    def line(self) -> str:
        return (
            f"wrote {self.path}: {self.tracks} counter tracks, {self.points} points of "
            f"{self.samples} samples, {self.instants} instants (open it in ui.perfetto.dev)"
        )


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class _Writer:
    """Packets of one sequence, each encoded as soon as the next one starts: the trace is
    its bytes (``Trace.packet`` is field 1, so a trace is its packets one after the other,
    each tagged and length-prefixed), not a tree of messages in memory."""

    def __init__(self, pb: Any, first_ts: int) -> None:
        self.pb = pb
        self.data = bytearray()
        self.first_ts = first_ts
        self.count = 0
        self._open: Any = None

    def packet(self, ts: int | None = None) -> Any:
        self.flush()
        packet = self._open = self.pb.TracePacket()
        packet.trusted_packet_sequence_id = SEQUENCE_ID
        packet.timestamp = self.first_ts if ts is None else ts
        packet.timestamp_clock_id = BOOTTIME
        if self.count == 0:
            packet.first_packet_on_sequence = True
            packet.sequence_flags = self.pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
        self.count += 1
        return packet

    def flush(self) -> None:
        if self._open is not None:
            body = self._open.SerializeToString()
            self.data += b"\x0a" + _varint(len(body)) + body  # field 1, length-delimited
            self._open = None

    def group(
        self, uuid: int, name: str, parent: int | None, description: str = "", rank: int = 0
    ) -> None:
        d = self.packet().track_descriptor
        d.uuid = uuid
        d.name = name
        if parent is not None:
            d.parent_uuid = parent
        if description:
            d.description = description
        d.child_ordering = self.pb.TrackDescriptor.EXPLICIT
        d.sibling_order_rank = rank

    def counter(self, track: Track, parent: int, rank: int) -> None:
        d = self.packet().track_descriptor
        d.uuid = track.uuid
        d.parent_uuid = parent
        d.name = track.name
        d.description = track.description
        d.sibling_order_rank = rank
        d.counter.unit = self.pb.CounterDescriptor.UNIT_SIZE_BYTES

    def event(self, ts: int) -> Any:
        packet = self.packet(ts)
        packet.sequence_flags = self.pb.TracePacket.SEQ_NEEDS_INCREMENTAL_STATE
        return packet.track_event


def _annotate(event: Any, args: dict[str, str | int | float]) -> None:
    for name, value in args.items():
        a = event.debug_annotations.add()
        a.name = name
        if isinstance(value, bool) or not isinstance(value, int | float):
            a.string_value = str(value)
        elif isinstance(value, int):
            a.int_value = value
        else:
            a.double_value = value


def _descriptors(w: _Writer, t: Timeline) -> dict[str, int]:
    """The root, the groups and the counter tracks; the uuid of each instant track."""
    root = track_uuid("root")
    device = t.device.get("model") or t.device.get("serial") or "device"
    w.group(root, "DMA-BUF (dmaprof)", None, f"{device}, boot {t.boot_id or 'unknown'}")
    groups: dict[str, int] = {}
    for rank, (kind, title) in enumerate(GROUP_TITLES.items()):
        if title is not None and any(tr.kind == kind for tr in t.tracks):
            groups[kind] = track_uuid("group", kind)
            w.group(groups[kind], title, root, rank=rank)
    for rank, track in enumerate(t.tracks):
        w.counter(track, groups.get(track.kind, root), rank)
    instant_tracks: dict[str, int] = {}
    names = list(dict.fromkeys(i.track for i in t.instants))
    new_group = track_uuid("group", "new buffers")
    if any(n != "leak verdicts" for n in names):
        w.group(new_group, "new buffers of the flagged series", root, rank=len(GROUP_TITLES) + 1)
    for rank, name in enumerate(names):
        instant_tracks[name] = track_uuid("instants", name)
        if name == "leak verdicts":  # after the counters' groups, before the new buffers
            w.group(instant_tracks[name], name, root, rank=len(GROUP_TITLES))
        else:
            w.group(instant_tracks[name], name, new_group, rank=rank)
    return instant_tracks


def trace_bytes(t: Timeline) -> bytes:
    """The encoded ``Trace`` of a timeline."""
    pb = proto()
    if not t.samples:
        raise DmaprofError("no sample to draw: the trace would be empty")
    w = _Writer(pb, t.samples[0].ts_ns)
    instant_tracks = _descriptors(w, t)
    events: list[tuple[int, int, Track | Instant, int]] = []
    for track in t.tracks:
        events.extend((ts, 0, track, value) for ts, value in track.points)
    events.extend((i.ts_ns, 1, i, n) for n, i in enumerate(t.instants))
    for ts, _, item, value in sorted(events, key=lambda e: (e[0], e[1])):
        event = w.event(ts)
        if isinstance(item, Track):
            event.type = pb.TrackEvent.TYPE_COUNTER
            event.track_uuid = item.uuid
            event.counter_value = value
        else:
            event.type = pb.TrackEvent.TYPE_INSTANT
            event.track_uuid = instant_tracks[item.track]
            event.name = item.name
            _annotate(event, item.args)
    w.flush()
    return bytes(w.data)


def check_output(path: Path, overwrite: bool) -> None:
    """A trace is one file: not a directory, nor a file there already (unless --force)."""
    if path.is_dir():
        raise DmaprofError(f"{path} is a directory: a Perfetto trace is one file")
    refuse_to_overwrite(path, overwrite)


def write_trace(
    t: Timeline, path: Path, *, overwrite: bool = False, note: Callable[[str], None] | None = None
) -> TraceSummary:
    """Encode ``t`` and write it to ``path`` (atomically: a reader never sees half a trace)."""
    data = trace_bytes(t)
    try:
        check_output(path, overwrite)
        write_atomic(path, data)
    except OSError as exc:
        raise DmaprofError(f"cannot write {path}: {exc.strerror or exc}") from None
    for warning in t.warnings:
        if note is not None:
            note(f"warning: {warning}")
    return TraceSummary(
        path,
        samples=len(t.samples),
        tracks=len(t.tracks),
        points=sum(len(tr.points) for tr in t.tracks),
        instants=len(t.instants),
        warnings=list(t.warnings),
    )


def export_trace(
    path: Path,
    output: Path,
    *,
    charge: str = "shared",
    top: int = 20,
    overwrite: bool = False,
    note: Callable[[str], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TraceSummary:
    """A series directory, one capture, sample or sample address -> a Perfetto trace file."""
    from dmaprof.leaks.timeline import side_loader, timeline, trend_for_trace

    proto()  # a missing extra, or an output that cannot be, fails before any analysis
    check_output(output, overwrite)
    result = trend_for_trace(path, charge=charge, progress=progress)
    for warning in result.doc["warnings"]:
        if note is not None:
            note(f"warning: {warning}")
    drawn = timeline(result, side_loader(charge), top=top, progress=progress)
    return write_trace(drawn, output, overwrite=overwrite, note=note)
