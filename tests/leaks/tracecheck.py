"""Reading a Perfetto trace back with Perfetto's own proto definitions (the perfetto
package's ``perfetto_trace_pb2``), and checking it against `dmaprof trend`'s figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

from dmaprof.leaks.trend import TrendResult

GROUP_OF = {"exporter": "exporters", "app": "apps", "process": "processes"}
ROOT = "DMA-BUF (dmaprof)"


@dataclass
class Decoded:
    descriptors: dict[int, Any] = field(default_factory=dict)
    counters: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    instants: dict[str, list[tuple[int, str, dict[str, Any]]]] = field(default_factory=dict)

    def by_name(self, name: str, parent: str) -> Any:
        found = [
            d
            for d in self.descriptors.values()
            if d.name == name and self.descriptors[d.parent_uuid].name == parent
        ]
        assert len(found) == 1, (name, parent, len(found))
        return found[0]

    @property
    def counter_tracks(self) -> list[Any]:
        return [d for d in self.descriptors.values() if d.HasField("counter")]


def _value(a: Any) -> Any:
    for kind in ("string_value", "int_value", "double_value"):
        if a.HasField(kind):
            return getattr(a, kind)
    raise AssertionError(f"annotation {a.name} has no value")


def decode(path: Path) -> Decoded:
    """Every track, counter point and instant of the trace; checks the packet framing (one
    sequence, its incremental state cleared first, every packet on CLOCK_BOOTTIME)."""
    trace = pb.Trace.FromString(path.read_bytes())
    out = Decoded()
    packets = list(trace.packet)
    assert packets, "an empty trace"
    first = packets[0]
    assert first.first_packet_on_sequence
    assert first.sequence_flags == pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
    assert {p.trusted_packet_sequence_id for p in packets} == {first.trusted_packet_sequence_id}
    assert {p.timestamp_clock_id for p in packets} == {pb.BUILTIN_CLOCK_BOOTTIME}
    names: dict[int, str] = {}
    for p in packets:
        if p.HasField("track_descriptor"):
            d = p.track_descriptor
            assert d.uuid not in out.descriptors, f"track {d.name} described twice"
            out.descriptors[d.uuid] = d
            names[d.uuid] = d.name
        elif p.HasField("track_event"):
            e = p.track_event
            assert p.sequence_flags == pb.TracePacket.SEQ_NEEDS_INCREMENTAL_STATE
            assert e.track_uuid in out.descriptors, "an event before its track's descriptor"
            if e.type == pb.TrackEvent.TYPE_COUNTER:
                assert out.descriptors[e.track_uuid].HasField("counter")
                out.counters.setdefault(e.track_uuid, []).append((p.timestamp, e.counter_value))
            else:
                assert e.type == pb.TrackEvent.TYPE_INSTANT
                args = {a.name: _value(a) for a in e.debug_annotations}
                track = names[e.track_uuid]
                out.instants.setdefault(track, []).append((p.timestamp, e.name, args))
    stamps = [p.timestamp for p in packets if p.HasField("track_event")]
    assert stamps == sorted(stamps), "events out of time order"
    return out


def trend_values(result: TrendResult) -> dict[tuple[str, str], dict[int, int]]:
    """(kind, key) -> sample -> bytes: the trend's own per-sample figures."""
    out: dict[tuple[str, str], dict[int, int]] = {}
    for kind, key, sample, value in result.points[["kind", "key", "sample", "bytes"]].itertuples(
        index=False
    ):
        out.setdefault((str(kind), str(key)), {})[int(sample)] = int(value)
    return out


def track_name(row: dict[str, Any]) -> str:
    kind = row["kind"]
    if kind == "total":
        return "DMA-BUF total"
    if kind == "kernel_only":
        return "DMA-BUF kernel-only"
    if kind == "exporter":
        return f"exporter {row['key']}"
    return str(row["label"])


def drawn(doc: dict[str, Any], top: int = 20) -> list[dict[str, Any]]:
    """The trend series the trace draws: total, kernel-only, exporters, apps, the ``top``
    processes by peak and every process flagged as a leak."""
    rows = [r for r in doc["series"] if r["kind"] in ("total", "kernel_only", "exporter", "app")]
    procs = sorted(
        (r for r in doc["series"] if r["kind"] == "process"),
        key=lambda r: (-r["max_bytes"], r["key"]),
    )
    leaks = {r["key"] for r in doc["leaks"] if r["kind"] == "process"}
    return rows + [r for n, r in enumerate(procs) if n < top or r["key"] in leaks]


def check_counters(
    decoded: Decoded,
    doc: dict[str, Any],
    values: dict[tuple[str, str], dict[int, int]],
    ts: dict[int, int],
    top: int = 20,
) -> int:
    """Every counter track against the trend: its name, group and unit; its points, one per
    sample the trend has a figure for, at that sample's boot-clock time (``ts``) with the
    trend's value (``values``: (kind, key) -> sample -> bytes), and the JSON document's
    points, first, last, min and max. A process gets a 0 only where it is gone. Returns the
    number of tracks checked."""
    rows = drawn(doc, top)
    assert len(decoded.counter_tracks) == len(rows)
    for row in rows:
        parent = GROUP_OF.get(row["kind"], ROOT)
        d = decoded.by_name(track_name(row), parent)
        assert d.counter.unit == pb.CounterDescriptor.UNIT_SIZE_BYTES
        points = decoded.counters[d.uuid]
        mine = values[(row["kind"], row["key"])]
        known = [(t, v) for t, v in points if t in {ts[s] for s in mine}]
        assert known == [(ts[s], v) for s, v in sorted(mine.items())], row["key"]
        extra = [(t, v) for t, v in points if (t, v) not in known]
        assert row["kind"] == "process" or not extra, (row["key"], extra)
        assert all(v == 0 for _, v in extra), extra  # a process gone: 0, not its last value
        got = [v for _, v in known]
        assert len(got) == row["points"]
        assert (got[0], got[-1]) == (row["first_bytes"], row["last_bytes"])
        assert (min(got), max(got)) == (row["min_bytes"], row["max_bytes"])
    return len(rows)


def check_verdicts(decoded: Decoded, doc: dict[str, Any], last_ts: dict[str, int]) -> None:
    """One instant per leak verdict, with its reason, at the last sample of its series."""
    verdicts = decoded.instants.get("leak verdicts", [])
    assert len(verdicts) == len(doc["leaks"])
    for row in doc["leaks"]:
        match = [v for v in verdicts if v[2]["key"] == row["key"] and v[2]["kind"] == row["kind"]]
        assert len(match) == 1, row["key"]
        ts, name, args = match[0]
        assert name.startswith("leak: ") and args["reason"] == row["reason"]
        assert ts == last_ts[row["kind"] + "/" + row["key"]]
