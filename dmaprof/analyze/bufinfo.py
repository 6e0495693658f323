"""debugfs ``/sys/kernel/debug/dma_buf/bufinfo``, every generation -> inventory rows (source
``debugfs``), attachments, fences and the ``Total N objects, B bytes`` trailer.

Generations (``docs/attribution.md`` lists the samples each one is tested on):

* oldest (before 5.3): ``size flags mode count exp_name``, no inode, no name;
* 5.3 .. ~5.19: header ``... exp_name ino`` without ``name``; rows carry the name as a
  trailing (often empty) field; fence lines ``Exclusive fence:``/``Shared fence:`` or
  ``read fence:``/``write fence:``;
* 6.x: header ``... exp_name ino name``; unnamed buffers print ``<none>``;
* vendor layouts with an extra ``buf name`` column (``... exp_name buf name ino`` header,
  rows ``size flags mode count exp_name buf_name ino name``).

Copies of the file met in bug reports and mail have tabs turned into spaces, long lines
wrapped (the inode on the next line) and ``> `` quoting; the parser copes with all three.
Fields: ``size`` decimal, ``flags``/``mode`` hex, ``count`` decimal, ``ino`` decimal
zero-padded. Rows come newest first. Lines not understood are reported, never fatal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dmaprof.analyze._scan import decode

_TOTAL_OBJECTS = re.compile(r"^Total\s+(\d+)\s+objects,\s+(\d+)\s+bytes\s*$")
_TOTAL_DEVICES = re.compile(r"^Total\s+(\d+)\s+devices\s+attached\s*$")
_DEC = re.compile(r"^\d+$")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_FENCE = re.compile(r"fence\s*:", re.I)
_HEADER_WORDS = frozenset({"size", "flags", "mode", "count", "exp_name", "ino", "name", "buf"})


@dataclass
class BufinfoRecord:
    size: int
    flags: int
    mode: int
    count: int
    exporter: str
    inode: int | None
    name: str | None
    extra: str | None = None  # vendor "buf name" column
    devices: list[str] = field(default_factory=list)
    fences: list[str] = field(default_factory=list)
    declared_devices: int | None = None
    line_no: int = 0


@dataclass
class Bufinfo:
    records: list[BufinfoRecord] = field(default_factory=list)
    total_objects: int | None = None
    total_bytes: int | None = None
    layout: str = "unknown"  # oldest | ino | ino+name | vendor | unknown
    unparsed: list[tuple[int, str, str]] = field(default_factory=list)  # line_no, line, reason
    warnings: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """The trailer was read and agrees with the records."""
        return (
            self.total_objects is not None
            and self.total_objects == len(self.records)
            and self.total_bytes == sum(r.size for r in self.records)
        )


def _is_record_start(tokens: list[str]) -> bool:
    return (
        len(tokens) >= 5
        and bool(_DEC.match(tokens[0]))
        and bool(_HEX.match(tokens[1]))
        and bool(_HEX.match(tokens[2]))
        and bool(_DEC.match(tokens[3]))
    )


def _name(text: str) -> str | None:
    text = text.strip()
    if not text or text == "<none>":
        return None
    return text


def parse_bufinfo(content: bytes) -> Bufinfo:
    """Parse the text of a ``bufinfo`` file (any generation; see the module docstring)."""
    reader = _Reader(_unquoted_lines(content))
    reader.run()
    out = reader.out
    if out.layout == "unknown" and out.records:
        out.layout = "ino" if all(r.inode is not None for r in out.records) else "oldest"
    if out.total_objects is not None and out.total_objects != len(out.records):
        out.warnings.append(
            f"bufinfo declares {out.total_objects} objects but {len(out.records)} were listed"
            " (an excerpt, or buffers created/freed while it was read)"
        )
    elif out.total_bytes is not None and out.total_bytes != sum(r.size for r in out.records):
        out.warnings.append(
            f"bufinfo declares {out.total_bytes} bytes but its records sum to "
            f"{sum(r.size for r in out.records)}"
        )
    return out


def _unquoted_lines(content: bytes) -> list[str]:
    """The lines, without a mail-quoting prefix ("> ") taken from the banner line."""
    raw_lines = content.split(b"\n")
    lines = [decode(x).rstrip("\r") for x in raw_lines]
    prefix = ""
    for line in lines:
        k = line.find("Dma-buf Objects:")
        if k > 0 and set(line[:k]) <= {">", " "}:
            prefix = line[:k]
            break
    qprefix = prefix.rstrip()

    def unquote(line: str) -> str:
        if prefix and line.startswith(prefix):
            return line[len(prefix) :]
        if qprefix and line.startswith(qprefix):
            return line[len(qprefix) :]
        return line

    return [unquote(x) for x in lines]


class _Reader:
    """What :func:`parse_bufinfo` knows while it reads the lines one by one."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.out = Bufinfo()
        self.vendor = False
        self.has_ino: bool | None = None
        self.cur: BufinfoRecord | None = None  # the record the detail lines belong to
        self.in_devices = False

    def run(self) -> None:
        i, n = 0, len(self.lines)
        while i < n:
            i = self.line(i)

    def line(self, i: int) -> int:
        """Read line ``i``; returns the index of the next line to read."""
        line = self.lines[i]
        no = i + 1
        i += 1
        stripped = line.strip()
        if not stripped:
            self.in_devices = False
            return i
        tokens = stripped.split()
        if stripped == "Dma-buf Objects:":
            return i
        m = _TOTAL_OBJECTS.match(stripped)
        if m:
            self.out.total_objects = int(m.group(1))
            self.out.total_bytes = int(m.group(2))
            self.cur = None
            self.in_devices = False
            return i
        if tokens[0] == "size" and "flags" in tokens and set(tokens) <= _HEADER_WORDS:
            return self.header(tokens, i)
        if _is_record_start(tokens):
            return self.record(line, tokens, i, no)
        self.detail(line, stripped, no)
        return i

    def header(self, tokens: list[str], i: int) -> int:
        """The column header, which tells the layout of the rows after it."""
        header = list(tokens)
        # A wrapped header continues on the next line ("ino", "ino name").
        if i < len(self.lines):
            nxt = self.lines[i].split()
            if nxt and set(nxt) <= {"ino", "name"}:
                header += nxt
                i += 1
        self.vendor = "buf" in header
        self.has_ino = "ino" in header
        if self.vendor:
            self.out.layout = "vendor"
        elif self.has_ino:
            self.out.layout = "ino+name" if header[-1] == "name" else "ino"
        else:
            self.out.layout = "oldest"
        return i

    def record(self, line: str, tokens: list[str], i: int, no: int) -> int:
        rec, consumed = _record(line, tokens, self.lines, i, self.vendor, self.has_ino)
        if rec is None:
            self.out.unparsed.append((no, line, "bufinfo row with unexpected fields"))
            return i
        rec.line_no = no
        self.out.records.append(rec)
        self.cur = rec
        self.in_devices = False
        return i + consumed

    def detail(self, line: str, stripped: str, no: int) -> None:
        """A line under a record (its device count, devices or fences), else unparsed."""
        cur = self.cur
        m = _TOTAL_DEVICES.match(stripped)
        if m and cur is not None:
            cur.declared_devices = int(m.group(1))
            if cur.declared_devices != len(cur.devices):
                self.out.warnings.append(
                    f"bufinfo line {no}: {cur.declared_devices} devices declared, "
                    f"{len(cur.devices)} listed"
                )
            self.in_devices = False
            return
        if cur is not None and stripped == "Attached Devices:":
            self.in_devices = True
            return
        if cur is not None and line[:1] in (" ", "\t"):
            if self.in_devices:
                cur.devices.append(stripped)
                return
            if _FENCE.search(stripped):
                cur.fences.append(stripped)
                return
        self.out.unparsed.append((no, line, "not a bufinfo line"))


def _record(
    line: str,
    tokens: list[str],
    lines: list[str],
    nxt: int,
    vendor: bool,
    has_ino: bool | None,
) -> tuple[BufinfoRecord | None, int]:
    """Parse one row; returns the record and how many following lines it consumed."""
    body = line.strip(" ")
    fields = body.split("\t")
    tab_mode = len(fields) >= 5 and all(
        _DEC.match(f.strip()) or _HEX.match(f.strip()) for f in fields[:4]
    )
    if tab_mode:
        head = [f.strip() for f in fields[:5]]
        rest = list(fields[5:])
        rest_tokens = [r.strip() for r in rest]
    else:
        head = tokens[:5]
        rest_tokens = tokens[5:]
        rest = rest_tokens
    size, flags, mode, count = int(head[0]), int(head[1], 16), int(head[2], 16), int(head[3])
    exporter = head[4]
    inode: int | None = None
    name: str | None = None
    extra: str | None = None
    consumed = 0
    if vendor:
        if len(rest_tokens) >= 2 and _DEC.match(rest_tokens[1]):
            extra = rest_tokens[0]
            inode = int(rest_tokens[1])
            name = _name((" " if not tab_mode else "\t").join(rest[2:]))
        elif len(rest_tokens) >= 1 and _DEC.match(rest_tokens[0]):
            inode = int(rest_tokens[0])
            name = _name(" ".join(rest_tokens[1:]))
        else:
            return None, 0
    elif rest_tokens and rest_tokens[0] and _DEC.match(rest_tokens[0]):
        inode = int(rest_tokens[0])
        name = _name(("\t" if tab_mode else " ").join(rest[1:]))
    elif not any(rest_tokens):
        if has_ino is not False and nxt < len(lines):
            # The line was wrapped after exp_name: the inode (and name) are on the next line.
            cont = lines[nxt].split()
            if 1 <= len(cont) <= 2 and _DEC.match(cont[0]) and not _is_record_start(cont):
                inode = int(cont[0])
                name = _name(" ".join(cont[1:]))
                consumed = 1
    elif has_ino is False:
        exporter = " ".join([exporter, *rest_tokens])
    else:
        return None, 0
    return (
        BufinfoRecord(size, flags, mode, count, exporter, inode, name, extra),
        consumed,
    )
