"""`trend` over a series whose samples are partly cached, partly analysed on worker processes:
the same document as analysing every sample in this process, samples in series order.

The samples are the bundled captures of one phone (taken through the real adb server from
the emulated phone), as root and as the shell user, interleaved.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dmaprof.leaks import trend as T
from dmaprof.leaks.series import CACHE_DIR, SAMPLES_FILE

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "captures"


def _series(directory: Path, count: int) -> Path:
    directory.mkdir()
    lines = []
    for i in range(count):
        source = FIXTURES / ("pixel-like.dmaprof" if i % 3 else "pixel-like-shell.dmaprof")
        name = f"sample-{i:05d}.dmaprof"
        shutil.copy(source, directory / name)
        lines.append(
            json.dumps({"index": i, "status": "ok", "file": name, "t": 1_795_305_481.0 + 60 * i})
        )
    (directory / SAMPLES_FILE).write_text("\n".join(lines) + "\n")
    return directory


def _comparable(doc: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in doc.items() if k != "directory"}


def test_parallel_and_partly_cached_trend_equals_serial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(T, "PARALLEL_FROM", 2)  # a pool for a handful of samples
    serial = T.trend(_series(tmp_path / "a", 6), use_cache=False, workers=1)
    directory = _series(tmp_path / "b", 6)
    parallel = T.trend(directory, use_cache=False, workers=2)
    assert _comparable(parallel.doc) == _comparable(serial.doc)
    # one sample's figures cached (its content is shared by the root samples: all hit),
    # the shell-user samples analysed on the pool; the order of the samples is kept
    T.sample_outcome(directory / "sample-00001.dmaprof", "shared", True)
    assert (directory / CACHE_DIR).is_dir()
    mixed = T.trend(directory, workers=2)
    assert _comparable(mixed.doc) == _comparable(serial.doc)
    assert mixed.points.equals(serial.points)
    assert mixed.doc["modes"] == ["shell", "root"] and mixed.doc["samples"] == 6
