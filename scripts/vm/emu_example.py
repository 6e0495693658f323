#!/usr/bin/env python3
"""Example guest script for ``run.py emu`` (runs inside the guest's python3 chroot).

Listens on $DMAPROF_EMU_PORT, creates /mnt/host/emu/READY, then answers each connection
with one line of JSON about the guest (kernel, python, the scene's dma-bufs) and keeps
serving until a client sends ``quit``. An adb daemon is started the same way (docs/vm-testbed.md,
"Emulator-image mode").

Host side::

    python3 scripts/vm/run.py emu scripts/vm/emu_example.py --hostport 15555 &
    python3 -c "import socket; s=socket.create_connection(('127.0.0.1', 15555)); \\
        print(s.recv(65536).decode()); s.sendall(b'quit\\n')"
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from pathlib import Path


def facts() -> dict[str, object]:
    bufinfo = Path("/sys/kernel/debug/dma_buf/bufinfo")
    total = ""
    if bufinfo.exists():
        lines = [ln for ln in bufinfo.read_text().splitlines() if ln.startswith("Total ")]
        total = lines[-1] if lines else ""
    roles = Path("/run/scene/roles")
    return {
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "bufinfo_total": total,
        "scene_roles": roles.read_text().split("\n") if roles.exists() else [],
    }


def main() -> int:
    port = int(os.environ.get("DMAPROF_EMU_PORT", "7555"))
    srv = socket.create_server(("0.0.0.0", port), reuse_port=True)
    Path("/mnt/host/emu/READY").write_text(f"{port}\n")
    print(f"listening on {port}", flush=True)
    while True:
        conn, peer = srv.accept()
        with conn:
            conn.sendall((json.dumps(facts()) + "\n").encode())
            data = conn.recv(100)
            print(f"{peer}: {data!r}", flush=True)
            if data.strip() == b"quit":
                return 0


if __name__ == "__main__":
    sys.exit(main())
