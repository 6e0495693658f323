"""Property tests: hostile captures and dumps never crash dmaprof (CI budget; the full
budget runs with `python scripts/fuzz.py`)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import (
    SAMPLE_BYTES,
    SAMPLE_DUMP,
    capture_bytes_with,
    check_dump,
    check_load_capture,
    mutated,
    mutated_dump,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
# a whole analysis per example: fewer in CI, the full budget runs in scripts/fuzz.py
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(mutated(SAMPLE_BYTES))
def test_mutated_capture_files(data: bytes) -> None:
    check_load_capture(data)


@FAST
@given(st.binary(max_size=2048))
def test_random_bytes_as_capture(data: bytes) -> None:
    check_load_capture(data)
    check_load_capture(b"PK\x03\x04" + data)


@FAST
@given(st.binary(max_size=512), mutated(SAMPLE_DUMP))
def test_captures_with_hostile_members(meta: bytes, dump: bytes) -> None:
    check_load_capture(capture_bytes_with(meta, dump))
    check_load_capture(capture_bytes_with(b'{"schema": "dmaprof.capture/1"}', dump))


@SLOW
@given(mutated_dump())
def test_mutated_dumps_analyze_or_fail_cleanly(data: bytes) -> None:
    check_dump(data)


@SLOW
@given(mutated(SAMPLE_DUMP))
def test_byte_mutated_dumps_analyze_or_fail_cleanly(data: bytes) -> None:
    check_dump(data)
