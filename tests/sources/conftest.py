"""Helpers for the bugreport / dmabuf_dump import tests."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from dmaprof.capture.container import Capture
from dmaprof.sources.importer import import_file
from dmaprof.sources.show import analyze_capture

REPO = Path(__file__).resolve().parents[2]
DUMPS = REPO / "fixtures" / "dmabuf_dump"
REPORTS = REPO / "fixtures" / "bugreports"
SAMPLES = REPO / "fixtures" / "samples"  # real outputs (../shared/samples), not ours
TOKAY_1 = REPORTS / "bugreport-tokay-BP2A.250605.031-2026-03-02-10-15-30.txt"
TOKAY_2 = REPORTS / "bugreport-tokay-BP2A.250605.031-2026-03-02-11-15-53.txt"
LAMU = REPORTS / "bugreport-lamu-TP1A.220624.014-2025-06-03-21-40-07.txt"
A52Q = REPORTS / "bugreport-a52q-SP1A.210812.016-2022-11-20-08-02-11.txt"
SV = "SurfaceView - com.example.game#0"


def zip_bugreport(txt: Path, dest: Path) -> Path:
    """A bugreport zip as `adb bugreport` writes it: the main text, `main_entry.txt` naming
    it, `version.txt`, and other members that are not the report."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("version.txt", "2.0")
        archive.writestr("dumpstate_board.txt", "------ board ------\n")
        archive.writestr("FS/proc/version", "Linux version ...\n")
        archive.writestr("bugreport-old-decoy.txt", "too small to be the main entry\n")
        archive.writestr(txt.name, txt.read_bytes())
        archive.writestr("main_entry.txt", txt.name)
    return dest


def analyzed(path: Path, **kwargs: Any) -> tuple[Capture, Any, dict[str, Any]]:
    capture = import_file(path, **kwargs)
    analysis, report = analyze_capture(capture)
    return capture, analysis, report


def by_pid(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(p["pid"]): p for p in report["processes"]}


def usage(analysis: Any) -> dict[int, tuple[int, int]]:
    """pid -> (rss bytes, pss bytes)."""
    u = analysis.usage
    return {
        int(p): (int(r), int(s))
        for p, r, s in zip(u["pid"], u["rss_bytes"], u["shared_pss_bytes"], strict=True)
    }


def keys(report: dict[str, Any]) -> set[str]:
    return {lim["key"] for lim in report["limitations"]}
