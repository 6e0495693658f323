"""User-build mode: what a capture taken without access to other processes' fds can still say.

On a user build the shell user may not read other processes' fds, fdinfo or maps. The
collector then also records what that user *can* read (docs/user-build.md), and this module
turns it into the report:

* :func:`merge_run_as` folds the sections an app side wrote through ``run-as PACKAGE``
  (``runas/PACKAGE/NAME``) into the main sections ``NAME``: those processes become readable
  like any other, and the usual attribution gives their exact per-buffer figures. Called by
  ``analyze()`` before any section is parsed; a dump without such sections is returned as is.
* :func:`parse_meminfo_totals`: the ``DMA-BUF``, ``DMA-BUF Heaps``, ``DMA-BUF Heaps pool``,
  ``GPU`` and ``ION`` lines of ``dumpsys meminfo`` (system totals, no per-process figure).
* :func:`parse_gralloc`: the graphic buffer lists of ``dumpsys SurfaceFlinger`` and
  ``dumpsys gfxinfo PACKAGE`` (libui's GraphicBufferAllocator and the gralloc mapper's
  imported buffers): names and sizes as that process's own bookkeeping reports them.
* :func:`run_as_results`: what happened for every ``--app``.
* :mod:`dmaprof.analyze.restricted` adds all of it to the JSON report.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from dmaprof.capture.dump import PAD, Dump, Section, classify_error

__all__ = [
    "GrallocDump",
    "RunAs",
    "SystemTotals",
    "graphic_buffers",
    "merge_run_as",
    "parse_gralloc",
    "parse_meminfo_totals",
    "run_as_results",
    "system_totals",
]

RUNAS = "runas/"
MEMINFO_SECTION = "dumpsys_meminfo"
SURFACEFLINGER_SECTION = "dumpsys_surfaceflinger"
GFXINFO_PREFIX = "dumpsys_gfxinfo/"
#: Main sections an app side writes too (``runas/PACKAGE/NAME``), merged into ``NAME``.
MERGED = ("fdaccess", "tasks", "fdlinks", "fdinfo", "fdstat", "maps")


# --------------------------------------------------------------------------- run-as merge


def _app_section(name: str) -> tuple[str, str] | None:
    """``runas/PKG/NAME`` -> (PKG, NAME); None for anything else (``runas/PKG`` included)."""
    if not name.startswith(RUNAS):
        return None
    pkg, sep, rest = name[len(RUNAS) :].partition("/")
    return (pkg, rest) if sep and pkg and rest else None


def _with_newline(data: bytes) -> bytes:
    return data if not data or data.endswith(b"\n") else data + b"\n"


def merge_run_as(dump: Dump) -> Dump:
    """The dump with every app side's per-process sections appended to the main ones.

    The main collector could not read those processes: its ``denied=<pid>`` lines (fdaccess)
    and its ``Permission denied`` errors about them are dropped for every pid an app side
    read (``runas/PKG/pids``). Everything else, the ``runas/...`` sections included, is kept
    in order. A dump without app sections is returned unchanged (the same object)."""
    parts = [(s, _app_section(s.name)) for s in dump.sections]
    if not any(p is not None for _, p in parts):
        return dump
    read_pids: set[int] = set()
    extra: dict[str, list[bytes]] = {}
    for s, part in parts:
        if part is None:
            continue
        _pkg, name = part
        if name == "pids":
            read_pids.update(int(v) for k, v in s.kv if k == "pid" and v.isdigit())
            continue
        base = name[:-4] if name.endswith(".err") else name
        if base in MERGED and s.size:
            extra.setdefault(name, []).append(_with_newline(s.content))
    merged = Dump(dump.version, dump.nonce, b"", 0, done=dump.done, preamble=dump.preamble)
    merged.warnings = list(dump.warnings)
    out: list[bytes] = []
    length = 0
    names = {s.name for s in dump.sections}

    def emit(name: str, kind: str, content: bytes, rc: int | None, complete: bool = True) -> None:
        # the merged sections' contents, one after the other: a dump of its own, not parsed
        # again (the parsers read sections by their offsets in the buffer)
        nonlocal length
        data = _with_newline(content)
        out.append(data)
        merged.sections.append(
            Section(name, kind, rc, complete, length, length + len(data), merged)
        )
        length += len(data)

    def keep_error(line: bytes, base: str) -> bool:
        err = classify_error(line, base)
        return not (err.pid in read_pids and err.reason == "denied")

    for s, _ in parts:
        name = s.name
        if name in MERGED:
            content = _with_newline(s.content)
            if name == "fdaccess" and read_pids:
                content = b"".join(
                    line + b"\n"
                    for line in s.lines
                    if not (
                        line.startswith(b"denied=")
                        and line[7:].strip().isdigit()
                        and int(line[7:]) in read_pids
                    )
                )
            emit(name, s.kind, content + b"".join(extra.pop(name, [])), s.rc, s.complete)
            err = name + ".err"
            if err not in names and err in extra:
                emit(err, "errors", b"".join(extra.pop(err)), 0)
        elif s.kind == "errors" and s.base_name in MERGED:
            lines = [ln + b"\n" for ln in s.lines if ln.strip() and keep_error(ln, s.base_name)]
            content = b"".join(lines) + b"".join(extra.pop(name, []))
            if content:
                emit(name, s.kind, content, s.rc, s.complete)
        else:
            emit(name, s.kind, s.content, s.rc, s.complete)
    for name in [n for n in MERGED if n in extra] + [n for n in extra if n.endswith(".err")]:
        if name in extra:  # sections the main collector did not write (e.g. fdstat)
            emit(
                name,
                "errors" if name.endswith(".err") else _kind_of(name),
                b"".join(extra.pop(name)),
                0,
            )
    merged.buffer = b"".join(out) + b"\0" * PAD  # readers' 8-byte windows stay inside
    merged.length = length
    return merged


def _kind_of(name: str) -> str:
    return {"fdaccess": "kv", "tasks": "kv", "fdlinks": "stat", "fdstat": "stat"}.get(name, "files")


# --------------------------------------------------------------------------- run-as status


@dataclass
class RunAs:
    """What ``--app PACKAGE`` gave: ``status`` is ``ok`` (its processes were read),
    ``not_running`` (run-as worked, no process of it was running), ``not_debuggable``,
    ``unknown_package``, ``not_an_application``, ``unavailable`` (no run-as, or disabled),
    ``failed`` (anything else: ``message`` says what), or ``skipped`` (the collector could
    read every process: run-as was not needed)."""

    package: str
    status: str
    message: str | None = None
    pids: list[int] = field(default_factory=list)
    uid: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        what = {
            "ok": f"read through run-as (pids {', '.join(map(str, self.pids))})",
            "not_running": "run-as worked, but no process of it was running",
            "not_debuggable": "not debuggable: run-as refuses it, its processes stay unreadable",
            "unknown_package": "no such package on the device",
            "not_an_application": "not an application: run-as refuses it",
            "unavailable": "run-as is not available on this device",
            "failed": "run-as failed",
            "skipped": "run-as not needed: the collector could read every process",
        }[self.status]
        text = f"--app {self.package}: {what}"
        if self.message and self.status not in ("ok", "skipped", "not_running"):
            text += f" ({self.message})"
        return text


_RUNAS_MESSAGES = (
    ("package not debuggable", "not_debuggable"),
    ("unknown package", "unknown_package"),
    ("package not an application", "not_an_application"),
    ("run-as: not found", "unavailable"),
    ("run-as is disabled", "unavailable"),
)


def run_as_results(dump: Dump) -> list[RunAs]:
    """One :class:`RunAs` per ``runas/PACKAGE`` section, in order."""
    results: list[RunAs] = []
    for s in dump.sections:
        if not s.name.startswith(RUNAS) or s.kind != "kv" or s.name.count("/") != 1:
            continue
        kv = s.kv_dict()
        pkg = kv.get("package") or s.name[len(RUNAS) :]
        errors = [
            ln.decode("utf-8", "backslashreplace").strip()
            for e in dump.sections
            if e.name == s.name + ".err"
            for ln in e.lines
            if ln.strip()
        ]
        message = "; ".join(errors) or None
        pids_sec = dump.section(f"{RUNAS}{pkg}/pids")
        meta = dump.section(f"{RUNAS}{pkg}/meta")
        pids = (
            sorted(int(v) for k, v in pids_sec.kv if k == "pid" and v.isdigit())
            if pids_sec is not None
            else []
        )
        uid_text = meta.kv_dict().get("uid", "") if meta is not None else ""
        uid = int(uid_text) if uid_text.isdigit() else None
        run = kv.get("run", "")
        rc = kv.get("rc", "")
        if run == "skipped":
            status = "skipped"
        elif pids_sec is not None and rc == "0":
            status = "ok" if pids else "not_running"
        else:
            low = (message or "").lower()
            status = next((st for text, st in _RUNAS_MESSAGES if text in low), "failed")
            if rc == "127" and status == "failed":
                status = "unavailable"
        results.append(RunAs(pkg, status, message, pids, uid))
    return results


# --------------------------------------------------------------------------- dumpsys meminfo

_K = r"(-?[\d,]+)K"
_MEMINFO = {
    "dmabuf": re.compile(rf"^\s*DMA-BUF:\s*{_K}(?:\s*\(\s*{_K} mapped \+\s*{_K} unmapped\))?\s*$"),
    "heaps": re.compile(rf"^\s*DMA-BUF Heaps?:\s*{_K}\s*$"),
    "pools": re.compile(rf"^\s*DMA-BUF Heaps? pool:\s*{_K}\s*$"),
    "gpu": re.compile(rf"^\s*GPU:\s*{_K}(?:\s*\(\s*{_K} dmabuf \+\s*{_K} private\))?\s*$"),
    "ion": re.compile(
        rf"^\s*ION:\s*{_K}(?:\s*\(\s*{_K} mapped \+\s*{_K} unmapped(?: \+\s*{_K} pools)?\))?\s*$"
    ),
}


@dataclass
class SystemTotals:
    """System-wide figures ``dumpsys meminfo`` prints (raw bytes, from its K figures; None
    when the line is missing). No per-process figure can be derived from them."""

    source: str = "dumpsys meminfo"
    dmabuf_bytes: int | None = None  # Debug.getDmabufTotalExportedKb()
    dmabuf_mapped_bytes: int | None = None  # unique buffers in any /proc/*/maps
    dmabuf_unmapped_bytes: int | None = None
    heaps_bytes: int | None = None  # exported by a /dev/dma_heap heap
    heap_pools_bytes: int | None = None  # freed pages the heaps keep
    gpu_bytes: int | None = None  # gpu_mem total
    gpu_dmabuf_bytes: int | None = None
    gpu_private_bytes: int | None = None
    ion_bytes: int | None = None  # ION devices (Android <= 11): heaps + pools
    ion_mapped_bytes: int | None = None
    ion_unmapped_bytes: int | None = None
    ion_pools_bytes: int | None = None
    lines: list[str] = field(default_factory=list)  # the lines read, verbatim

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kib(text: str | None) -> int | None:
    return None if text is None else int(text.replace(",", "")) * 1024


def parse_meminfo_totals(text: str | bytes) -> SystemTotals | None:
    """The DMA-BUF / ION / GPU lines of ``dumpsys meminfo`` (any other line is ignored);
    None when there is none."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    t = SystemTotals()
    found = False
    for line in text.splitlines():
        for key, rx in _MEMINFO.items():
            m = rx.match(line)
            if m is None:
                continue
            found = True
            t.lines.append(line.rstrip())
            g = [_kib(x) for x in m.groups()]
            if key == "dmabuf":
                t.dmabuf_bytes, t.dmabuf_mapped_bytes, t.dmabuf_unmapped_bytes = g
            elif key == "heaps":
                t.heaps_bytes = g[0]
            elif key == "pools":
                t.heap_pools_bytes = g[0]
            elif key == "gpu":
                t.gpu_bytes, t.gpu_dmabuf_bytes, t.gpu_private_bytes = g
            else:
                t.ion_bytes, t.ion_mapped_bytes, t.ion_unmapped_bytes, t.ion_pools_bytes = g
            break
    return t if found else None


def system_totals(dump: Dump) -> SystemTotals | None:
    sec = dump.section(MEMINFO_SECTION)
    return parse_meminfo_totals(sec.content) if sec is not None else None


# --------------------------------------------------------------------------- gralloc lists

_GFX_PROC = re.compile(r"^\*\* Graphics info for pid (\d+) \[(.*)\] \*\*\s*$")
_HANDLE = re.compile(r"^\s*(0x[0-9a-fA-F]+|\(nil\)|0)\s*[:|]\s*(.*)$")
_DIMS = re.compile(r"^(\d+)\s*\(\s*(\d+)\)\s*x\s*(\d+)$")
_KIB = re.compile(r"^([0-9.]+)\s*KiB$")
_ALLOC_TOTAL = re.compile(
    r"^Total allocated(?: by GraphicBufferAllocator)? \(estimated?\):\s*([0-9.]+)\s*KB\s*$"
)
_IMPORTED = re.compile(
    r"^\+ name:(.*), id:(\d+), size:([0-9.eE+-]+)\s*KiB, w/h:(\d+)x(\d+)"
    r"(?:, usage: (0x[0-9a-fA-F]+))?"
)
_PLANE_SIZE = re.compile(r"\bsize:(\d+)\s*$")
_IMPORTED_TOTAL = re.compile(r"^Total imported by gralloc:\s*([0-9.eE+-]+)\s*KiB\s*$")


@dataclass
class GrallocDump:
    """One process's gralloc bookkeeping as ``dumpsys`` prints it. Sizes are that
    bookkeeping's (an allocated buffer's size is ``height * stride * bpp``; an imported one
    the mapper's plane sizes); they are not dma-buf holdings and are kept apart from them."""

    source: str  # "dumpsys SurfaceFlinger" or "dumpsys gfxinfo PACKAGE"
    package: str | None = None
    pid: int | None = None
    process: str | None = None
    allocated: list[dict[str, Any]] = field(default_factory=list)
    allocated_total_bytes: int | None = None  # its "Total allocated ... (estimate)" line
    imported: list[dict[str, Any]] = field(default_factory=list)
    imported_total_bytes: int | None = None  # its "Total imported by gralloc" line
    note: str | None = None  # e.g. "No process found for: PACKAGE"
    unparsed_lines: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def empty(self) -> bool:
        return not (self.allocated or self.imported) and self.allocated_total_bytes is None


def _allocated_row(rest: str, handle: str) -> dict[str, Any] | None:
    fields = [f.strip() for f in rest.split("|")]
    if len(fields) < 4:
        return None
    dims = _DIMS.match(fields[1])
    if dims is None:
        return None
    size_m = _KIB.match(fields[0])
    if size_m is None and fields[0] != "unknown":
        return None
    layers: int | None = None
    requestor: str | None = None
    if len(fields) >= 6:  # Android 10+: layer count; requestor last (it may hold "|")
        layers = int(fields[2]) if fields[2].isdigit() else None
        fmt, usage, requestor = fields[3], fields[4], "|".join(fields[5:]).strip()
    elif len(fields) == 5:  # Android 8/9: requestor, no layer count
        fmt, usage, requestor = fields[2], fields[3], fields[4]
    else:  # Android 7: neither
        fmt, usage = fields[2], fields[3]
    return {
        "handle": handle,
        "size_bytes": round(float(size_m.group(1)) * 1024) if size_m else None,
        "width": int(dims.group(1)),
        "stride": int(dims.group(2)),
        "height": int(dims.group(3)),
        "layers": layers,
        "format": fmt,
        "usage": usage.replace(" ", ""),
        "requestor": requestor,
    }


def parse_gralloc(text: str | bytes, source: str, package: str | None = None) -> list[GrallocDump]:
    """Graphic buffer lists of ``dumpsys SurfaceFlinger`` (one process) or ``dumpsys gfxinfo
    PACKAGE`` (one block per ``** Graphics info for pid N [name] **``). Layouts: Android 12+
    (``Handle | Size | W (Stride) x H | Layers | Format | Usage | Requestor`` header),
    Android 10/11 (``HANDLE: SIZE | ...``, no header row), Android <= 9 (``Allocated
    buffers:``, ``Total allocated (estimate)``). Lines outside the lists are ignored; lines
    inside a list that fit none of its forms are counted in ``unparsed_lines``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    dumps: list[GrallocDump] = []
    cur: GrallocDump | None = None
    mode = ""

    def current() -> GrallocDump:
        nonlocal cur
        if cur is None:
            cur = GrallocDump(source, package)
            dumps.append(cur)
        return cur

    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        m = _GFX_PROC.match(line)
        if m:
            cur = GrallocDump(source, package, int(m.group(1)), m.group(2))
            dumps.append(cur)
            mode = ""
            continue
        if line.startswith("No process found for:"):
            current().note = line.strip()
            continue
        if line.startswith(("GraphicBufferAllocator buffers:", "Allocated buffers:")):
            if cur is not None and cur.allocated_total_bytes is not None:
                cur = GrallocDump(source, package, cur.pid, cur.process)  # a second list
                dumps.append(cur)
            mode = "allocated"
            continue
        if line.startswith("Imported gralloc buffers sorted by size"):
            mode = "summary"
            continue
        if line.startswith("Imported gralloc buffers"):
            mode = "imported"
            continue
        m = _ALLOC_TOTAL.match(line)
        if m:
            current().allocated_total_bytes = round(float(m.group(1)) * 1024)
            mode = ""
            continue
        m = _IMPORTED_TOTAL.match(line)
        if m:
            current().imported_total_bytes = round(float(m.group(1)) * 1024)
            mode = ""
            continue
        if not mode:
            continue  # the rest of the dump
        d = current()
        if mode == "allocated":
            if line.lstrip().startswith("Handle"):
                continue
            hm = _HANDLE.match(line)
            row = _allocated_row(hm.group(2), hm.group(1)) if hm else None
            if row is None:
                d.unparsed_lines += 1
            else:
                d.allocated.append(row)
        elif mode == "imported":
            im = _IMPORTED.match(line)
            if im:
                d.imported.append(
                    {
                        "name": im.group(1),
                        "id": int(im.group(2)),
                        "size_bytes": round(float(im.group(3)) * 1024),
                        "size_source": "KiB",
                        "width": int(im.group(4)),
                        "height": int(im.group(5)),
                        "usage": im.group(6),
                    }
                )
            elif line[:1].isspace() and "planes:" in line and d.imported:
                pm = _PLANE_SIZE.search(line)
                last = d.imported[-1]
                if pm:
                    # exact bytes: the sum of the planes (the KiB field is %.2g on Android 11)
                    planes = int(pm.group(1))
                    last["size_bytes"] = (
                        planes if last["size_source"] == "KiB" else last["size_bytes"] + planes
                    )
                    last["size_source"] = "planes"
            else:
                d.unparsed_lines += 1
        elif mode == "summary" and not line.startswith("* name:"):
            d.unparsed_lines += 1
    return [d for d in dumps if not d.empty or d.note]


def graphic_buffers(dump: Dump) -> list[GrallocDump]:
    """Every gralloc list of the dump: SurfaceFlinger's, then each ``--app``'s gfxinfo."""
    out: list[GrallocDump] = []
    sf = dump.section(SURFACEFLINGER_SECTION)
    if sf is not None:
        for d in parse_gralloc(sf.content, "dumpsys SurfaceFlinger"):
            d.process = d.process or "surfaceflinger"
            out.append(d)
    for s in dump.sections:
        if s.name.startswith(GFXINFO_PREFIX) and not s.name.endswith(".err"):
            pkg = s.name[len(GFXINFO_PREFIX) :]
            out.extend(parse_gralloc(s.content, f"dumpsys gfxinfo {pkg}", pkg))
    return out
