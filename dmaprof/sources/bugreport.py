"""Reader of Android bugreports (``adb bugreport``): the parts dmaprof uses.

A bugreport is a zip holding one main text file (``bugreport-<device>-<build>-<date>.txt``,
named by ``main_entry.txt``) written by ``dumpstate``; ``adb bugreport`` of old devices, or an
unzipped report, is that text itself. dmaprof reads only:

* the dumpstate header: ``== dumpstate: <local time>``, ``Build fingerprint: '<fp>'``,
  ``Kernel: Linux version ...``, ``Uptime: up N weeks, N days, N hours, N minutes``,
  ``Android SDK version: N`` (newer releases);
* ``------ SYSTEM PROPERTIES (getprop) ------``: ``[key]: [value]`` lines;
* ``------ Dmabuf dump (dmabuf_dump) ------`` and
  ``------ Dmabuf per-buffer/per-exporter/per-device stats (dmabuf_dump -b) ------``
  (Android 12+);
* the ``DMA-BUF``/``ION``/``GPU`` lines of ``dumpsys meminfo`` (``DUMP OF SERVICE [HIGH ]meminfo:``
  inside a ``DUMPSYS`` section, or an old ``DUMPSYS MEMINFO`` section) and its
  ``Uptime: N Realtime: N`` line;
* the process list (``------ PROCESSES AND THREADS (ps -A -T ...) ------``): uid (from the
  USER name), ppid and name of every process;
* full process names (:attr:`Bugreport.names`): ``ps -A -T``'s ``CMD`` is the thread name,
  the kernel's 15-byte comm (``om.example.game``), so the full name comes from a column that
  prints argv[0]: ``NAME`` of ``------ CPU INFO (top -b -n 1 -H -s 6 -o ...,cmd,name) ------``,
  a ``ps`` whose last column is ``NAME``/``ARGS``/``CMDLINE``, or the ``Total PSS by
  process:`` / ``Total RSS by process:`` lines of ``dumpsys meminfo``
  (``    148,616K: com.example.game (pid 7001 / activities)``).

Section headers are ``------ <title> (<command>) ------`` (dumpstate's ``RunCommand``); one may
start with a space, because ``dmabuf_dump``'s own output ends with ``"\\n "``.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dmaprof.analyze.uids import (
    FIRST_APP,
    FIRST_ISOLATED,
    FIRST_SDK_SANDBOX,
    USER_OFFSET,
    WELL_KNOWN_UIDS,
)
from dmaprof.errors import BadCaptureError

__all__ = [
    "MAX_BUGREPORT_BYTES",
    "Bugreport",
    "PsEntry",
    "looks_like_bugreport",
    "parse_bugreport",
    "read_bugreport",
    "user_to_uid",
]

#: The largest main text dmaprof reads (real ones are 20-150 MB).
MAX_BUGREPORT_BYTES = 512 * 1024 * 1024

DMABUF_DUMP_TITLE = "Dmabuf dump"
DMABUF_STATS_TITLE = "Dmabuf per-buffer/per-exporter/per-device stats"

_MARK = "------ "
_TITLED = re.compile(r"^(?P<title>.*?) \((?P<cmd>.*)\)(?: ------)?$")
_DURATION = re.compile(r"^[\d.]+s was the duration of ")
_PROP = re.compile(r"^\[(?P<k>[^\]]*)\]: \[(?P<v>.*)\]\s*$", re.M)
_SERVICE = re.compile(r"DUMP OF SERVICE (?:[A-Z]+ )?(?P<name>\S+):\s*$")
_KB = r"(-?[\d,]+)K"
# ActivityManagerService's "%s: %s (pid %d%s)" lines of "Total PSS/RSS by process:"
_MEMINFO_PROC = re.compile(
    r"^\s*[\d,]+K: (?P<name>\S(?:.*?\S)?) \(pid (?P<pid>\d+)(?: / activities)?\)\s*$", re.M
)
#: ps/top columns that print argv[0] (toybox: NAME "Process name (PID's argv[0])")
_ARGV_COLUMNS = ("NAME", "ARGS", "CMDLINE")


@dataclass(frozen=True)
class PsEntry:
    pid: int
    ppid: int | None
    uid: int | None
    user: str
    name: str


@dataclass
class Bugreport:
    header: dict[str, str] = field(default_factory=dict)
    props: dict[str, str] = field(default_factory=dict)
    dmabuf_dump: str | None = None  # body of the "Dmabuf dump" section
    dmabuf_stats: str | None = None  # body of the "dmabuf_dump -b" section
    meminfo: dict[str, int] = field(default_factory=dict)  # bytes
    uptime_s: float | None = None
    uptime_source: str | None = None
    wallclock: float | None = None  # seconds since the epoch
    wallclock_note: str | None = None
    ps: dict[int, PsEntry] = field(default_factory=dict)
    #: pid -> candidate full names (argv[0]) in the order met, each with the part it came from
    #: (``top``, ``ps``, ``meminfo``); the reader takes the first that fits the comm
    names: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)  # titles seen, in order
    notes: list[str] = field(default_factory=list)

    @property
    def kernel_version(self) -> str:
        return self.header.get("Kernel", "").strip()

    @property
    def kernel_release(self) -> str:
        parts = self.kernel_version.split()
        return parts[2] if len(parts) > 2 and parts[:2] == ["Linux", "version"] else ""

    @property
    def fingerprint(self) -> str:
        fp = self.header.get("Build fingerprint", "").strip().strip("'")
        return fp if fp and fp != "(unknown)" else self.props.get("ro.build.fingerprint", "")

    @property
    def sdk(self) -> int | None:
        text = self.props.get("ro.build.version.sdk") or self.header.get("Android SDK version", "")
        try:
            return int(text.strip())
        except ValueError:
            return None

    def device(self) -> dict[str, object]:
        p = self.props
        firstboot = p.get("ro.runtime.firstboot", "").strip()
        return {
            "serial": p.get("ro.serialno") or p.get("ro.boot.serialno") or "",
            "model": p.get("ro.product.model", ""),
            "manufacturer": p.get("ro.product.manufacturer", ""),
            "device": p.get("ro.product.device", ""),
            "fingerprint": self.fingerprint,
            "release": p.get("ro.build.version.release", ""),
            "sdk": self.sdk,
            "build_type": p.get("ro.build.type", ""),
            "kernel_release": self.kernel_release,
            "kernel_version": self.kernel_version,
            # no /proc/sys/kernel/random/boot_id in a bugreport: ro.runtime.firstboot (the
            # wall clock, in ms, when this boot's system_server first started) names the boot
            "boot_id": f"firstboot:{firstboot}" if firstboot.isdigit() else "",
            "firstboot": firstboot if firstboot.isdigit() else "",
        }


def looks_like_bugreport(text: str) -> bool:
    head = text[: 256 * 1024]
    return (
        "== dumpstate: " in head
        or "------ SYSTEM PROPERTIES (" in head
        or ("Build fingerprint: '" in head and "------ " in head)
    )


def read_bugreport(path: Path) -> tuple[bytes, str | None]:
    """The main text of a bugreport (.zip or .txt) and the zip member it came from.

    A zip is read in place (never extracted to disk); the member must be at most
    :data:`MAX_BUGREPORT_BYTES` bytes, checked before and while decompressing it.
    """
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise BadCaptureError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if magic != b"PK\x03\x04":
        size = path.stat().st_size
        if size > MAX_BUGREPORT_BYTES:
            raise BadCaptureError(f"{path}: {size} bytes is over the limit for a bugreport")
        return path.read_bytes(), None
    try:
        with zipfile.ZipFile(path) as archive:
            member = _main_member(archive, path)
            info = archive.getinfo(member)
            if info.file_size > MAX_BUGREPORT_BYTES:
                raise BadCaptureError(
                    f"{path}: {member} claims {info.file_size} bytes, over the limit"
                )
            with archive.open(info) as stream:
                data = stream.read(MAX_BUGREPORT_BYTES + 1)
            if len(data) > MAX_BUGREPORT_BYTES:
                raise BadCaptureError(f"{path}: {member} is larger than the limit")
            return data, member
    except zipfile.BadZipFile as exc:
        raise BadCaptureError(f"{path}: not a readable bugreport zip ({exc})") from exc
    except (EOFError, zipfile.LargeZipFile, NotImplementedError, ValueError) as exc:
        raise BadCaptureError(f"{path}: corrupt bugreport zip ({exc})") from exc


def _main_member(archive: zipfile.ZipFile, path: Path) -> str:
    names = archive.namelist()
    if "main_entry.txt" in names:
        info = archive.getinfo("main_entry.txt")
        if info.file_size <= 4096:
            entry = archive.read(info).decode("utf-8", "replace").strip()
            if entry in names:
                return entry
    candidates = [
        n for n in names if "/" not in n and n.startswith("bugreport") and n.endswith(".txt")
    ]
    if not candidates:
        candidates = [n for n in names if "/" not in n and n.endswith(".txt")]
        candidates = [n for n in candidates if n not in ("main_entry.txt", "version.txt")]
    if not candidates:
        raise BadCaptureError(f"{path}: a zip without a bugreport-*.txt: not a bugreport")
    return max(candidates, key=lambda n: archive.getinfo(n).file_size)


# ---------------------------------------------------------------------------- parsing


def parse_bugreport(text: str) -> Bugreport:
    out = Bugreport()
    _parse_header(text, out)
    # section headers: one regex pass over the text, bodies are slices between them
    heads: list[tuple[int, int, str, str]] = []  # (start of line, end of line, title, cmd)
    for start, end, rest in _marked_lines(text, _MARK):
        if _DURATION.match(rest):
            heads.append((start, end, "", ""))  # ends the section before it
            continue
        titled = _TITLED.match(rest)
        if titled:
            heads.append((start, end, titled.group("title").strip(), titled.group("cmd")))
        elif rest.endswith("------"):
            heads.append((start, end, rest[: -len("------")].strip(), ""))
    for k, (_start, end, title, cmd) in enumerate(heads):
        if not title:
            continue
        body_end = heads[k + 1][0] if k + 1 < len(heads) else len(text)
        body = text[end + 1 : body_end] if end < len(text) else ""
        out.sections.append(title)
        if title == DMABUF_DUMP_TITLE or (title.startswith("Dmabuf dump") and "-b" not in cmd):
            out.dmabuf_dump = body if out.dmabuf_dump is None else out.dmabuf_dump + body
        elif title.startswith("Dmabuf per-buffer") or (title.startswith("Dmabuf") and "-b" in cmd):
            out.dmabuf_stats = body if out.dmabuf_stats is None else out.dmabuf_stats + body
        elif title == "SYSTEM PROPERTIES":
            out.props.update({m.group("k"): m.group("v") for m in _PROP.finditer(body)})
        elif title.startswith("PROCESSES") and not out.ps:
            out.ps = _parse_ps(body)
            if _full_name_column(body):
                for pid, entry in out.ps.items():
                    _candidate(out, pid, entry.name, "ps")
        elif title == "CPU INFO" and "top" in cmd:
            for pid, name in _parse_top_names(body).items():
                _candidate(out, pid, name, "top")
        elif title == "DUMPSYS MEMINFO" and not out.meminfo:
            _parse_meminfo(body, out)
        elif title == "UPTIME" and out.uptime_s is None:
            up = _uptime_command(body)
            if up is not None:
                out.uptime_s, out.uptime_source = up, "uptime"
    if not out.meminfo:
        for _start, end, rest in _marked_lines(text, "DUMP OF SERVICE "):
            m = _SERVICE.match("DUMP OF SERVICE " + rest)
            if m is None or m.group("name") != "meminfo":
                continue
            _parse_meminfo(text[end : _service_end(text, end)], out)
            if out.meminfo:
                break
    _wallclock(out)
    return out


def _marked_lines(text: str, mark: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, rest) of every line that is ``mark`` + rest, after blanks: found with
    ``str.find`` (a ``^``-anchored multiline regex tries every offset of a 100 MB text)."""
    pos = 0
    while True:
        i = text.find(mark, pos)
        if i < 0:
            return
        line_start = text.rfind("\n", 0, i) + 1
        line_end = text.find("\n", i)
        if line_end < 0:
            line_end = len(text)
        if not text[line_start:i].strip(" \t"):
            yield line_start, line_end, text[i + len(mark) : line_end].rstrip(" \t\r")
        pos = line_end if line_end > i else i + len(mark)


def _service_end(text: str, start: int) -> int:
    ends = [
        i
        for i in (
            text.find("\n--------- ", start),
            text.find("\nDUMP OF SERVICE ", start),
            text.find("\n------ ", start),
        )
        if i >= 0
    ]
    return min(ends) if ends else len(text)


_HEADER_KEYS = (
    "Build",
    "Build fingerprint",
    "Bootloader",
    "Radio",
    "Network",
    "Android SDK version",
    "Kernel",
    "Uptime",
    "Bugreport format version",
    "Dumpstate info",
)


def _parse_header(text: str, out: Bugreport) -> None:
    head = text[: 64 * 1024]
    m = re.search(r"^== dumpstate: (.+?)\s*$", head, re.M)
    if m:
        out.header["dumpstate"] = m.group(1)
    for key in _HEADER_KEYS:
        km = re.search(rf"^{re.escape(key)}: (.*)$", head, re.M)
        if km and key not in out.header:
            out.header[key] = km.group(1).rstrip("\r")
    up = out.header.get("Uptime", "")
    if up.strip().startswith("up"):
        seconds = 0
        found = False
        for n, unit in re.findall(r"(\d+) (year|week|day|hour|minute|second)s?", up):
            found = True
            seconds += (
                int(n)
                * {
                    "year": 31536000,
                    "week": 604800,
                    "day": 86400,
                    "hour": 3600,
                    "minute": 60,
                    "second": 1,
                }[unit]
            )
        if found:
            out.uptime_s, out.uptime_source = float(seconds), "header (minutes)"


def _uptime_command(body: str) -> float | None:
    """toybox ``uptime``: `` 12:00:01 up 2 days,  3:04,  0 users, load average: ...``."""
    m = re.search(r"up\s+(?:(\d+) days?,\s*)?(?:(\d+):(\d+)|(\d+) min)", body)
    if not m:
        return None
    days = int(m.group(1) or 0)
    hours = int(m.group(2) or 0)
    minutes = int(m.group(3) or m.group(4) or 0)
    return float(days * 86400 + hours * 3600 + minutes * 60)


def _kb(text: str) -> int:
    return int(text.replace(",", "")) * 1024


def _parse_meminfo(body: str, out: Bugreport) -> None:
    """The DMA-BUF, ION and GPU lines of ``dumpsys meminfo`` (K with thousands separators)."""
    mi: dict[str, int] = {}
    m = re.search(
        rf"^\s*DMA-BUF:\s+{_KB}(?:\s*\(\s*{_KB} mapped \+\s*{_KB} unmapped\))?", body, re.M
    )
    if m:
        mi["dmabuf_bytes"] = _kb(m.group(1))
        if m.group(2):
            mi["dmabuf_mapped_bytes"] = _kb(m.group(2))
            mi["dmabuf_unmapped_bytes"] = _kb(m.group(3))
    m = re.search(rf"^\s*DMA-BUF Heaps?:\s+{_KB}\s*$", body, re.M)
    if m:
        mi["dmabuf_heaps_bytes"] = _kb(m.group(1))
    m = re.search(rf"^\s*DMA-BUF Heaps pool:\s+{_KB}", body, re.M)
    if m:
        mi["dmabuf_heaps_pool_bytes"] = _kb(m.group(1))
    m = re.search(
        rf"^\s*ION:\s+{_KB}(?:\s*\(\s*{_KB} mapped \+\s*{_KB} unmapped \+\s*{_KB} pools\))?",
        body,
        re.M,
    )
    if m:
        mi["ion_bytes"] = _kb(m.group(1))
        if m.group(2):
            mi["ion_mapped_bytes"] = _kb(m.group(2))
            mi["ion_unmapped_bytes"] = _kb(m.group(3))
            mi["ion_pools_bytes"] = _kb(m.group(4))
    m = re.search(rf"^\s*GPU:\s+{_KB}(?:\s*\(\s*{_KB} dmabuf \+\s*{_KB} private\))?", body, re.M)
    if m:
        mi["gpu_bytes"] = _kb(m.group(1))
        if m.group(2):
            mi["gpu_dmabuf_bytes"] = _kb(m.group(2))
            mi["gpu_private_bytes"] = _kb(m.group(3))
    m = re.search(rf"^\s*Total RAM:\s+{_KB}", body, re.M)
    if m:
        mi["total_ram_bytes"] = _kb(m.group(1))
    if mi:
        out.meminfo.update(mi)
    for m in _MEMINFO_PROC.finditer(body):
        _candidate(out, int(m.group("pid")), m.group("name"), "meminfo")
    up = re.search(r"^Uptime: (\d+) Realtime: (\d+)\s*$", body, re.M)
    if up:
        # elapsed realtime in ms (CLOCK_BOOTTIME, like /proc/uptime): better than the header
        out.uptime_s, out.uptime_source = int(up.group(2)) / 1000.0, "dumpsys meminfo Realtime"


# ---------------------------------------------------------------------------- ps


_USER_APP = re.compile(r"^u(?P<user>\d+)_(?P<kind>a|i|s)(?P<n>\d+)$")
_USER_SYS = re.compile(r"^u(?P<user>\d+)_(?P<name>[a-z_]+)$")
_NAME_TO_UID = {name: uid for uid, name in WELL_KNOWN_UIDS.items()}


def user_to_uid(user: str) -> int | None:
    """Android's ``ps`` USER column back to a uid: ``u0_a123`` -> 10123, ``u10_i5`` ->
    1099005, ``u0_s3`` -> 20003, ``system`` -> 1000, ``u10_system`` -> 1001000, a number
    -> itself; ``None`` for a name this table does not know."""
    if user.isdigit():
        return int(user)
    m = _USER_APP.match(user)
    if m:
        base = {"a": FIRST_APP, "i": FIRST_ISOLATED, "s": FIRST_SDK_SANDBOX}[m.group("kind")]
        return int(m.group("user")) * USER_OFFSET + base + int(m.group("n"))
    if user in _NAME_TO_UID:
        return _NAME_TO_UID[user]
    m = _USER_SYS.match(user)
    if m and m.group("name") in _NAME_TO_UID:
        return int(m.group("user")) * USER_OFFSET + _NAME_TO_UID[m.group("name")]
    return None


def _parse_ps(body: str) -> dict[int, PsEntry]:
    """toybox ``ps -A [-T] [-Z] [-O ...]``: columns found by the header's names; with ``-T``
    only a process's main thread (TID == PID) is kept; the last column (NAME/CMD/ARGS) may
    hold spaces."""
    lines = body.splitlines()
    out: dict[int, PsEntry] = {}
    for k, line in enumerate(lines):
        cols = line.split()
        if "PID" in cols and "USER" in cols:
            header = cols
            rest = lines[k + 1 :]
            break
    else:
        return out
    i_user, i_pid = header.index("USER"), header.index("PID")
    i_tid = header.index("TID") if "TID" in header else None
    i_ppid = header.index("PPID") if "PPID" in header else None
    ncol = len(header)
    for line in rest:
        cells = line.split(None, ncol - 1)
        if len(cells) < ncol or not cells[i_pid].isdigit():
            if line.startswith("------") or not line.strip():
                break
            continue
        pid = int(cells[i_pid])
        if i_tid is not None and cells[i_tid] != cells[i_pid]:
            continue
        ppid = int(cells[i_ppid]) if i_ppid is not None and cells[i_ppid].isdigit() else None
        user = cells[i_user]
        out[pid] = PsEntry(pid, ppid, user_to_uid(user), user, cells[-1].strip())
    return out


def _candidate(out: Bugreport, pid: int, name: str, where: str) -> None:
    names = out.names.setdefault(pid, [])
    if all(n != name for n, _w in names):
        names.append((name, where))


def _full_name_column(body: str) -> bool:
    """Whether a ps listing's last column prints argv[0] (not the thread name ``CMD``)."""
    for line in body.splitlines():
        cols = line.split()
        if "PID" in cols and "USER" in cols:
            return cols[-1] in _ARGV_COLUMNS
    return False


def _parse_top_names(body: str) -> dict[int, str]:
    """toybox ``top -b -H -o pid,tid,...,cmd,name``: the ``NAME`` column (argv[0] of the
    process) of each process's main thread. ``CMD`` (a thread name) may hold spaces, so NAME
    is cut at the header's column, where toybox left-aligns it."""
    out: dict[int, str] = {}
    lines = body.splitlines()
    head = next(
        (k for k, line in enumerate(lines) if "PID" in line.split() and line.endswith("NAME")),
        None,
    )
    if head is None:
        return out
    cols = lines[head].split()
    at = lines[head].rindex("NAME")
    i_pid = cols.index("PID")
    i_tid = cols.index("TID") if "TID" in cols else None
    for line in lines[head + 1 :]:
        cells = line.split()
        if len(cells) <= max(i_pid, i_tid or 0) or not cells[i_pid].isdigit():
            continue
        if i_tid is not None and cells[i_tid] != cells[i_pid]:
            continue
        name = line[at:].strip() if len(line) > at and line[at - 1] == " " else ""
        if name and " " not in name:
            out.setdefault(int(cells[i_pid]), name)
    return out


# ---------------------------------------------------------------------------- time


def _wallclock(out: Bugreport) -> None:
    stamp = out.header.get("dumpstate", "").strip()
    try:
        local = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return
    tz_name = out.props.get("persist.sys.timezone", "").strip()
    tz: dt.tzinfo | None = None
    if tz_name:
        try:
            from zoneinfo import ZoneInfo

            tz = ZoneInfo(tz_name)
        except (KeyError, ValueError, OSError, ImportError):
            tz = None
    if tz is None:
        out.wallclock = local.replace(tzinfo=dt.UTC).timestamp()
        out.wallclock_note = (
            "the dumpstate time is the device's local time and its time zone is unknown: "
            "taken as UTC"
        )
        return
    out.wallclock = local.replace(tzinfo=tz).timestamp()
