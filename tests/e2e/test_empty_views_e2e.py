"""Empty views say so in a sentence: a phone with no DMA-BUFs at all (the emulated phone
through the real adb server, its scene stripped of buffers) and this Linux machine, whose
kernel may have no DMA-BUF list at all (then kernel-only buffers are unknown, not none)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.conftest import SCENE, PhoneRoot, run_dmaprof
from tests.emuphone.harness import AdbServer
from tests.emuphone.scene import load_scene

TABLE = set("┏┓┃━┡┩")


def test_a_phone_with_no_dmabufs(
    adb_server: AdbServer, phone_root: PhoneRoot, tmp_path: Path
) -> None:
    scene = load_scene(SCENE)
    scene["buffers"] = []
    for proc in scene["processes"]:
        proc["fds"] = [f for f in proc.get("fds", []) if "buffer" not in f]
        proc["maps"] = []
        for thread in proc.get("threads", []):
            if "fds" in thread:
                thread["fds"] = [f for f in thread["fds"] if "buffer" not in f]
    scene.pop("gpu_private_kb", None)
    phone = adb_server.phone(phone_root(scene))
    try:
        out = tmp_path / "empty.dmaprof"
        snap = run_dmaprof("snapshot", "-q", "-o", out, env=phone.env)
        assert snap.returncode == 0, snap.stderr
    finally:
        phone.stop()
    shown = run_dmaprof("show", out, env={**os.environ, "COLUMNS": "100"})
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    body = text.split("Totals", 1)[1].rsplit("┘", 1)[1]
    # the sysfs list is there but empty, which the analysis never takes as "none at all"
    assert " ".join(body.split()) == (
        "No process holds a DMA-BUF in this capture; buffers held only by the kernel are "
        "unknown (the kernel's DMA-BUF list is missing or empty, and empty is not taken as "
        "none)."
    )
    assert not TABLE & set(body)  # no empty Top holders / Exporters tables
    for by, sentence in (
        ("process", "No process holds a DMA-BUF in this capture."),
        ("exporter", "No DMA-BUFs in this capture."),
        ("name", "No DMA-BUFs in this capture."),
        ("buffer", "No DMA-BUFs in this capture."),
    ):
        view = run_dmaprof("show", out, "--by", by, env=dict(os.environ)).stdout.decode()
        rest = view.split("processes read\n", 1)[1]
        assert rest.strip() == sentence, (by, view)


def test_this_machine(tmp_path: Path) -> None:
    out = tmp_path / "local.dmaprof"
    snap = run_dmaprof("snapshot", "--local", "-q", "-o", out, env=dict(os.environ))
    assert snap.returncode == 0, snap.stderr
    shown = run_dmaprof("show", out, "--format", "json", env=dict(os.environ))
    import json

    report = json.loads(shown.stdout)
    text = run_dmaprof("show", out, env=dict(os.environ)).stdout.decode()
    if report["processes"]:
        assert "Top holders" in text  # a machine with DMA-BUFs: its table
        return
    last = text.strip().splitlines()[-1]
    if report["totals"].get("kernel_only_bytes") is None:
        assert last.startswith("No process holds a DMA-BUF in this capture; buffers held only")
    else:
        assert last.startswith("No DMA-BUFs in this capture")
    assert "Top holders" not in text
