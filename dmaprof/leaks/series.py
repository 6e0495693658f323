"""`dmaprof record`: a series of captures in one directory, safe however long it runs.

The directory (``dmaprof.series/2``, docs/series-format.md; ``/1`` in docs/ci.md):

``sample-00000.dmaprof-sample`` ...
    one compact sample per successful sample (:mod:`dmaprof.leaks.seriesstore`; a series
    of ``/1`` holds ``sample-00000.dmaprof`` captures), written atomically (a file that
    exists is complete);
``samples.ndjson``
    one JSON line per sample slot, appended as the series goes: ``{"index", "status": "ok",
    "file", "t", "elapsed_s", "attempts", "boot_id"}`` or ``{"index", "status": "gap", "t",
    "error", "attempts"}``. A gap is a slot whose sample failed after its retries; the series
    goes on;
``series.json``
    a small summary rewritten atomically after every slot: status (``recording``,
    ``complete`` or ``interrupted``), plan, device, counts and the last gaps.

Host memory stays bounded: captures go to disk at once and are not kept; the summary keeps
counters and the last few gaps only. Ctrl-C ends the series cleanly: the sample in flight
is abandoned (and removed from the device), the files on disk stay consistent, series.json
says ``interrupted`` and the command exits 130.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dmaprof import __version__
from dmaprof.capture.container import Capture, write_capture
from dmaprof.errors import (
    AdbUnavailableError,
    BadCaptureError,
    DmaprofError,
    InterruptedByUser,
    NoDeviceError,
    SeveralDevicesError,
    UnauthorizedError,
)
from dmaprof.files import write_atomic
from dmaprof.leaks.address import check_address, pick
from dmaprof.leaks.seriesstore import SAMPLE_SUFFIX, SampleWriter, is_sample_file, load_sample

SERIES_SCHEMA = "dmaprof.series/2"
SERIES_MAJOR = 2
SERIES_FILE = "series.json"
SAMPLES_FILE = "samples.ndjson"
SAMPLE_PREFIX = "sample-"
#: Where `trend` keeps each sample's figures (dmaprof.leaks.samplecache).
CACHE_DIR = ".dmaprof-cache"
RECENT_GAPS = 20
#: errors that end a series before its first sample: no device to wait for will come back by
#: retrying (a device that goes offline or times out is retried as planned)
FIRST_SAMPLE_FATAL = (AdbUnavailableError, NoDeviceError, SeveralDevicesError, UnauthorizedError)


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def wall(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class RecordPlan:
    interval_s: float
    count: int | None = None  # sample slots
    duration_s: float | None = None  # or: slots while the slot starts within this time
    retries: int = 2  # extra attempts of a failed sample, within its slot
    retry_delay_s: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval_s,
            "count": self.count,
            "duration_s": self.duration_s,
            "retries": self.retries,
        }


Sampler = Callable[[], Capture]


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block is done (the files it writes stay consistent)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass
class SeriesWriter:
    """Owns the series directory: captures, ``samples.ndjson`` and ``series.json``."""

    directory: Path
    plan: RecordPlan
    started: float
    status: str = "recording"
    samples: int = 0
    gaps: int = 0
    slots: int = 0
    device: dict[str, Any] = field(default_factory=dict)
    boot_ids: list[str] = field(default_factory=list)
    first_sample: str | None = None
    last_sample: str | None = None
    recent_gaps: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_GAPS))
    _pending: dict[str, Any] | None = None
    _updated: float = 0.0
    compact: bool = True
    _store: SampleWriter | None = None

    @classmethod
    def create(
        cls, directory: Path, plan: RecordPlan, *, started: float, force: bool, compact: bool = True
    ) -> SeriesWriter:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DmaprofError(f"cannot create {directory}: {exc.strerror or exc}") from exc
        ours = [
            p
            for p in directory.iterdir()
            if p.name in (SERIES_FILE, SAMPLES_FILE)
            or (p.name.startswith(SAMPLE_PREFIX) and p.name.endswith((".dmaprof", SAMPLE_SUFFIX)))
        ]
        if ours and not force:
            raise DmaprofError(
                f"{directory} already holds a series; will not overwrite it without --force"
            )
        for path in ours:
            path.unlink()
        if ours:  # the old samples' cached trend figures go with them
            shutil.rmtree(directory / CACHE_DIR, ignore_errors=True)
        writer = cls(directory, plan, started, compact=compact)
        writer._save(started)
        return writer

    def _line(self, entry: dict[str, Any]) -> None:
        try:
            with (self.directory / SAMPLES_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:  # a full disk: the series cannot go on
            raise SeriesWriteError(
                f"cannot append to {self.directory / SAMPLES_FILE}: {exc.strerror or exc}"
            ) from exc

    def add_sample(
        self, index: int, capture: Capture, *, t: float, elapsed_s: float, attempts: int
    ) -> None:
        suffix = SAMPLE_SUFFIX if self.compact else ".dmaprof"
        name = f"{SAMPLE_PREFIX}{index:05d}{suffix}"
        device = capture.device
        entry = {
            "index": index,
            "status": "ok",
            "file": name,
            "t": round(t, 3),
            "elapsed_s": round(elapsed_s, 3),
            "attempts": attempts,
            "boot_id": device.get("boot_id") or None,
        }
        self._pending = entry
        if self.compact:
            self._store = self._store or SampleWriter(self.directory)
            try:
                capture.path, header = self._store.write(capture, name)
            except OSError as exc:
                raise DmaprofError(f"cannot write {name}: {exc.strerror or exc}") from exc
            entry["sha256"], entry["key"] = header["sha256"], header.get("key")
        else:
            write_capture(capture, self.directory / name, overwrite=True)
        with _sigint_deferred():
            self._commit(entry, device)

    def _commit(self, entry: dict[str, Any], device: dict[str, Any]) -> None:
        self._line(entry)
        self._pending = None
        self.samples += 1
        self.slots += 1
        self.first_sample = self.first_sample or entry["file"]
        self.last_sample = entry["file"]
        if not self.device:
            self.device = {k: device.get(k) for k in ("serial", "model", "fingerprint")}
        boot = entry.get("boot_id")
        if boot and boot not in self.boot_ids:
            self.boot_ids.append(boot)
        self._save(entry["t"])

    def drop_pending(self) -> None:
        self._pending = None

    def add_gap(self, index: int, *, t: float, error: str, attempts: int) -> None:
        entry = {
            "index": index,
            "status": "gap",
            "t": round(t, 3),
            "error": error,
            "attempts": attempts,
        }
        with _sigint_deferred():
            self._line(entry)
            self.gaps += 1
            self.slots += 1
            self.recent_gaps.append(entry)
            self._save(t)

    def finish(self, status: str, now: float) -> None:
        with _sigint_deferred():
            pending = self._pending
            if pending is not None and (self.directory / pending["file"]).exists():
                # interrupted between writing the capture and logging it: log it now
                self._commit(pending, {})
            self.status = status
            self._save(now, ended=True)

    def _save(self, now: float, ended: bool = False) -> None:
        self._updated = now
        _atomic_json(
            self.directory / SERIES_FILE,
            {
                "schema": SERIES_SCHEMA if self.compact else "dmaprof.series/1",
                "dmaprof_version": __version__,
                "status": self.status,
                "plan": self.plan.as_dict(),
                "started_utc": _utc(self.started),
                "updated_utc": _utc(now),
                "ended_utc": _utc(now) if ended else None,
                "device": self.device,
                "boot_ids": self.boot_ids,
                "slots": self.slots,
                "samples": self.samples,
                "gaps": self.gaps,
                "first_sample": self.first_sample,
                "last_sample": self.last_sample,
                "recent_gaps": list(self.recent_gaps),
                "samples_file": SAMPLES_FILE,
            },
        )


class SeriesWriteError(DmaprofError):
    """The series' own files cannot be written (a full disk): the series ends here."""


@dataclass
class RecordSummary:
    directory: Path
    status: str
    samples: int
    gaps: int
    slots: int

    @property
    def line(self) -> str:
        """The last line `record` prints."""
        line = f"wrote {self.samples} samples ({self.gaps} gaps) to {self.directory}"
        if self.gaps:
            line += f": {self.gaps} of {self.slots} samples failed (listed in samples.ndjson)"
        return line


def record_series(
    directory: Path,
    plan: RecordPlan,
    sampler: Sampler,
    *,
    clock: Clock | None = None,
    progress: Callable[[str], None] | None = None,
    after_slot: Callable[[int], None] | None = None,
    force: bool = False,
    on_sample: Callable[[Path], None] | None = None,
    compact: bool = True,
) -> RecordSummary:
    """Sample every ``plan.interval_s`` until ``plan.count`` slots or ``plan.duration_s``.

    A slot starts every interval; when a sample overruns its slot, the next one starts at
    once and the schedule continues from there (no bursts to catch up). A failed sample is
    retried ``plan.retries`` times (never past its slot's end, when it can be avoided); if
    all attempts fail the slot is recorded as a gap and the series goes on.
    ``after_slot(index)`` is called after every slot (tests use it to change the device);
    ``on_sample(path)`` after each sample is written (`record` computes its trend figures).
    """
    if plan.count is None and plan.duration_s is None:
        raise ValueError("a plan needs a count or a duration")
    clock = clock or SystemClock()
    say = progress or (lambda _message: None)
    created = not directory.exists()
    writer = SeriesWriter.create(
        directory, plan, started=clock.wall(), force=force, compact=compact
    )
    t0 = clock.monotonic()
    due = t0
    index = 0
    status = "complete"
    error: DmaprofError | None = None
    try:
        while True:
            if plan.count is not None and index >= plan.count:
                break
            if plan.duration_s is not None and due - t0 > plan.duration_s + 1e-6:
                break
            now = clock.monotonic()
            if due > now:
                clock.sleep(due - now)
            slot_end = due + plan.interval_s
            error = (
                _one_slot(writer, index, plan, sampler, clock, slot_end, say, on_sample) or error
            )
            if writer.samples == 0 and isinstance(error, FIRST_SAMPLE_FATAL):
                break
            if after_slot is not None:
                after_slot(index)
            index += 1
            due = max(slot_end, clock.monotonic())
    except (KeyboardInterrupt, InterruptedByUser):
        status = "interrupted"
    if writer.samples == 0 and error is not None and status == "complete":
        _remove_series(directory, created)
        raise type(error)(f"no sample taken: {error.message}", exit_code=error.exit_code)
    writer.finish(status, clock.wall())
    summary = RecordSummary(directory, status, writer.samples, writer.gaps, writer.slots)
    if status == "interrupted":
        raise InterruptedByUser(
            f"interrupted: {writer.samples} samples and {writer.gaps} gaps kept in {directory} "
            f"({SERIES_FILE} says interrupted)"
        )
    return summary


def _remove_series(directory: Path, created: bool) -> None:
    """A series that took no sample leaves nothing behind that looks like one."""
    for name in (SERIES_FILE, SAMPLES_FILE):
        (directory / name).unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _one_slot(
    writer: SeriesWriter,
    index: int,
    plan: RecordPlan,
    sampler: Sampler,
    clock: Clock,
    slot_end: float,
    say: Callable[[str], None],
    on_sample: Callable[[Path], None] | None = None,
) -> DmaprofError | None:
    """One sample (with its retries); the error of its last failed attempt, if any."""
    total = f"/{plan.count}" if plan.count is not None else ""
    error = ""
    failure: DmaprofError | None = None
    attempts = 0
    wall = clock.wall()
    while attempts <= plan.retries:
        attempts += 1
        wall = clock.wall()
        started = clock.monotonic()
        try:
            capture = sampler()
        except InterruptedByUser:
            raise
        except DmaprofError as exc:
            error, failure = exc.message, exc
            if isinstance(exc, FIRST_SAMPLE_FATAL) and writer.samples == 0:
                break  # nothing to retry for: no device, several, unauthorized, no adb
            say(f"sample {index + 1}{total}: attempt {attempts} failed: {error}")
            if attempts <= plan.retries:
                room = slot_end - clock.monotonic()
                delay = min(plan.retry_delay_s * attempts, room) if room > 0 else 0.0
                if delay > 0:
                    clock.sleep(delay)
            continue
        elapsed = clock.monotonic() - started
        try:
            writer.add_sample(index, capture, t=wall, elapsed_s=elapsed, attempts=attempts)
        except SeriesWriteError:
            raise
        except DmaprofError as exc:  # e.g. the disk is full: a gap, not the end of the series
            writer.drop_pending()
            error, failure = f"cannot write the capture: {exc.message}", exc
            break
        say(f"sample {index + 1}{total}: ok ({len(capture.dump):,} bytes, {elapsed:.1f} s)")
        if on_sample is not None and capture.path is not None:
            on_sample(capture.path)
        return None
    writer.add_gap(index, t=wall, error=error, attempts=attempts)
    say(f"sample {index + 1}{total}: gap recorded after {attempts} attempts")
    return failure


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class SampleRef:
    index: int
    path: Path
    t: float | None
    boot_id: str | None


_SAMPLE_NAME = re.compile(rf"{SAMPLE_PREFIX}(\d+)(\.dmaprof|{re.escape(SAMPLE_SUFFIX)})")


def read_series(directory: Path) -> tuple[dict[str, Any], list[SampleRef], int, list[str]]:
    """(series.json or {}, the samples in order, the number of gaps, warnings).

    Without ``samples.ndjson`` (a directory of captures made otherwise) every ``*.dmaprof``
    file is a sample, in name order, timed by its own metadata. A series cut short (record
    killed, the machine down, a full disk) loads what it holds and says so: a sample file
    written but not yet listed is taken back, a partly written one is left out."""
    if not directory.is_dir():
        raise DmaprofError(f"{directory}: not a directory (record one with `dmaprof record`)")
    warnings: list[str] = []
    header = _header(directory, warnings)
    samples_file = directory / SAMPLES_FILE
    refs: list[SampleRef] = []
    gaps = 0
    if samples_file.exists():
        refs, gaps = _listed(directory, warnings)
        refs += _unlisted(directory, refs, gaps, warnings)
        missing = [r for r in refs if not r.path.exists()]
        if missing:
            warnings.append(f"{len(missing)} samples listed in {SAMPLES_FILE} are missing")
            refs = [r for r in refs if r.path.exists()]
    else:
        paths = sorted(directory.glob("*.dmaprof"))
        refs = [SampleRef(i, p, None, None) for i, p in enumerate(paths)]
    if header.get("status") == "interrupted":
        warnings.append("the series was interrupted (Ctrl-C) before its planned end")
    elif header.get("status") == "recording" and samples_file.exists():
        partial = sorted(p.name for p in directory.glob(f".{SAMPLE_PREFIX}*.tmp"))
        lost = f" ({partial[0]}, partly written, is left out)" if partial else ""
        warnings.append(
            f"the series was cut short: {SERIES_FILE} still says recording (record was "
            f"killed, the machine stopped or its disk filled); {len(refs)} samples load, "
            f"the sample being written then is lost{lost}"
        )
    return header, refs, gaps, warnings


def _header(directory: Path, warnings: list[str]) -> dict[str, Any]:
    series_file = directory / SERIES_FILE
    if not series_file.exists():
        return {}
    try:
        header = json.loads(series_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        warnings.append(f"{series_file}: unreadable ({exc}); using the samples alone")
        return {}
    schema = str(header.get("schema") or "")
    major = schema.rpartition("/")[2]
    if schema.startswith("dmaprof.series/") and major.isdigit() and int(major) > SERIES_MAJOR:
        raise DmaprofError(
            f"{directory}: written by a newer dmaprof (schema {schema}); this dmaprof reads "
            f"{SERIES_SCHEMA} and older: upgrade dmaprof"
        )
    return header if isinstance(header, dict) else {}


def _listed(directory: Path, warnings: list[str]) -> tuple[list[SampleRef], int]:
    samples_file = directory / SAMPLES_FILE
    refs: list[SampleRef] = []
    gaps = 0
    with samples_file.open(encoding="utf-8", errors="replace") as handle:
        lines = handle.read().split("\n")
    last = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
    for number, line in enumerate(lines[:last], start=1):
        try:
            entry = json.loads(line)
            if entry.get("status") == "gap":
                gaps += 1
                continue
            refs.append(
                SampleRef(
                    int(entry["index"]),
                    directory / str(entry["file"]),
                    float(entry["t"]) if entry.get("t") is not None else None,
                    entry.get("boot_id"),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            if number == last and lines[-1] != "":
                warnings.append(
                    f"{samples_file}:{number}: unreadable line skipped: the last line is "
                    "partly written (cut short)"
                )
            else:
                warnings.append(f"{samples_file}:{number}: unreadable line skipped")
    return refs, gaps


def _unlisted(
    directory: Path, refs: list[SampleRef], gaps: int, warnings: list[str]
) -> list[SampleRef]:
    """Sample files after the last listed slot (written, then the series stopped before
    it was logged): complete (written atomically), so they are taken back."""
    after = max((r.index for r in refs), default=-1)
    found: list[SampleRef] = []
    for path in sorted(directory.glob(f"{SAMPLE_PREFIX}*")):
        match = _SAMPLE_NAME.fullmatch(path.name)
        if match and int(match.group(1)) > after and int(match.group(1)) >= len(refs) + gaps:
            found.append(SampleRef(int(match.group(1)), path, None, None))
    if found:
        warnings.append(
            f"{len(found)} sample(s) written but not listed in {SAMPLES_FILE} (the series "
            f"stopped before logging them) are taken back: {found[0].path.name}"
        )
    return found


# --------------------------------------------------------------------------- addresses


def resolve(path: Path) -> Path:
    """The file of a sample address (``DIR/@first``, ``DIR/@last``, ``DIR/@N``: N is the
    sample's index, as in its file name and ``samples.ndjson``), or ``path`` itself."""
    address = check_address(path)
    if address is None:
        return path
    directory, which = address
    try:
        _, refs, _, _ = read_series(directory)
    except DmaprofError as exc:
        raise BadCaptureError(f"{path}: {exc.message}") from None
    return pick(path, which, refs, directory / SAMPLES_FILE)


def load_input(path: Path) -> Capture:
    """A capture, a sample file of a compact series, or a sample address (``DIR/@N``)."""
    from dmaprof.capture.container import load_capture

    target = resolve(path)
    return load_sample(target) if is_sample_file(target) else load_capture(target)
