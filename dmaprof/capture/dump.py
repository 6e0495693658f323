"""Reader of the collector's framed dump (``dmaprof.dump/1``, ``docs/dump-format.md``).

``parse_dump(data)`` only finds the framing lines (a few literal searches over the whole
stream, no per-line Python) and records where each section's content lies in one shared
buffer. Everything else is computed lazily, per section, when asked for:

* ``Section.lines``   the raw content lines (``bytes``, without ``\\n``),
* ``Section.files``   for ``files`` sections: ``{path: content}`` (lines re-joined with ``\\n``),
* ``Section.records`` for ``stat`` sections: the records, without the ``@<nonce> `` prefix,
* ``Section.errors``  for ``errors`` sections: classified :class:`DumpError` messages,
* ``Section.kv``      for ``kv`` sections: ``(key, value)`` pairs.

The analysis parsers of the big sections (``fdinfo``, ``fdlinks``, ``proc``, ``maps``) do not
go through these Python views: they scan :attr:`Dump.buffer` between
``Section.begin``/``Section.end`` with numpy (``dmaprof.analyze._scan``).

Deviations the reader tolerates (each one is reported in :attr:`Dump.warnings`):

* bytes before the ``DMAPROF-DUMP`` line (an old ``adb shell`` mixing stderr into stdout),
* ``\\r\\n`` line ends (``adb shell`` through a pty translates ``\\n``; undone exactly),
* a missing ``@N done`` (:attr:`Dump.truncated`), a section without its ``end`` line,
  content lines outside any section, unknown section kinds and names.

Input that is not a dump at all raises :class:`DumpFormatError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from dmaprof.errors import BadCaptureError

__all__ = [
    "DUMP_MAGIC",
    "SUPPORTED_VERSION",
    "Dump",
    "DumpError",
    "DumpFormatError",
    "ErrorReason",
    "Section",
    "classify_error",
    "parse_dump",
]

DUMP_MAGIC = b"DMAPROF-DUMP"
SUPPORTED_VERSION = 1
#: How far into the stream the ``DMAPROF-DUMP`` line may start (after stray shell noise).
_MAX_PREAMBLE = 64 * 1024
#: Zero bytes appended to a truncated dump (whose last section runs to the end of the data) so
#: that the vectorised readers' 8-byte windows at its last bytes stay inside the buffer. A
#: complete dump ends with framing lines, which give that margin without a copy.
PAD = 64

ErrorReason = Literal["denied", "vanished", "absent", "other"]

_KINDS = frozenset({"kv", "text", "files", "stat", "errors"})


class DumpFormatError(BadCaptureError):
    """The input is not a collector dump (or one of a format version this dmaprof cannot read)."""


@dataclass(frozen=True, slots=True)
class DumpError:
    """One classified line of an ``errors`` section.

    ``reason`` is ``denied`` (EACCES/EPERM: the collector may not read it), ``vanished``
    (ENOENT/ESRCH under ``/proc/<pid>/``: the process or fd went away while the collector ran),
    ``absent`` (ENOENT elsewhere: the interface does not exist on this device) or ``other``.
    """

    section: str  # the section whose command failed ("maps" for "maps.err")
    command: str | None  # "grep", "stat", "ls", ...
    path: str | None
    reason: ErrorReason
    message: str  # the text after the last ": ", e.g. "Permission denied"
    line: str  # the whole line (invalid UTF-8 shown as \\xNN)
    pid: int | None  # from a /proc/<pid>/... path
    tid: int | None  # from a /proc/<pid>/task/<tid>/... path


_PROC_PATH = re.compile(r"^/proc/(\d+)(?:/task/(\d+))?(?:/|$)")
_QUOTED = re.compile(r"'(/.*)'\s*$")
_DENIED = ("permission denied", "operation not permitted")
_ENOENT = ("no such file or directory",)
_ESRCH = ("no such process",)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def classify_error(line: bytes, section: str = "") -> DumpError:
    """Classify one stderr line of a collector command.

    Handles busybox (``stat: can't stat '/p': No such file or directory``,
    ``ls: can't open '/p': Permission denied``) and toybox (``stat: /p: No such file or
    directory``, ``grep: /p: Permission denied``) shapes: the command is the text before the
    first ``": "``, the reason the text after the last ``": "``, the path what lies between
    (unquoted when busybox quoted it).
    """
    text = _text(line.rstrip(b"\r"))
    command: str | None = None
    path: str | None = None
    message = text
    first = text.find(": ")
    last = text.rfind(": ")
    if first >= 0:
        command = text[:first].strip() or None
        if last > first:
            middle = text[first + 2 : last]
            message = text[last + 2 :]
            quoted = _QUOTED.search(middle)
            path = quoted.group(1) if quoted else middle.strip()
        else:
            message = text[first + 2 :]
    low = message.strip().lower()
    pid = tid = None
    if path is not None:
        m = _PROC_PATH.match(path)
        if m:
            pid = int(m.group(1))
            tid = int(m.group(2)) if m.group(2) else None
    reason: ErrorReason
    if any(low.startswith(d) for d in _DENIED):
        reason = "denied"
    elif any(low.startswith(d) for d in _ENOENT):
        reason = "vanished" if pid is not None else "absent"
    elif any(low.startswith(d) for d in _ESRCH):
        reason = "vanished"
    else:
        reason = "other"
    return DumpError(
        section=section,
        command=command,
        path=path,
        reason=reason,
        message=message.strip(),
        line=text,
        pid=pid,
        tid=tid,
    )


@dataclass(eq=False)
class Section:
    """One framed section. ``begin``/``end`` delimit its content in :attr:`Dump.buffer`.

    The content ends with the ``\\n`` of its last line (``end`` points past it), except in a
    truncated dump where the last line may be cut.
    """

    name: str
    kind: str
    rc: int | None  # None: no end line (truncated), or an rc that is not a number
    complete: bool  # the "@N end NAME" line was seen
    begin: int
    end: int
    _dump: Dump = field(repr=False)

    @property
    def content(self) -> bytes:
        """The raw content bytes (a copy)."""
        return self._dump.buffer[self.begin : self.end]

    @property
    def size(self) -> int:
        return self.end - self.begin

    @property
    def base_name(self) -> str:
        """``maps`` for ``maps.err``; the name itself otherwise."""
        return self.name[:-4] if self.name.endswith(".err") else self.name

    @cached_property
    def lines(self) -> list[bytes]:
        """Content lines without their ``\\n`` (one split of the section)."""
        data = self.content
        if not data:
            return []
        if data.endswith(b"\n"):
            data = data[:-1]
        return data.split(b"\n")

    @cached_property
    def files(self) -> dict[str, bytes]:
        """``files`` sections: path -> content (the file's lines re-joined with ``\\n``).

        Lines without a ``PATH:`` prefix cannot come from grep; they are listed in
        :attr:`stray_lines`. Keys are the paths decoded as UTF-8 (invalid bytes as ``\\xNN``).
        """
        parts: dict[str, list[bytes]] = {}
        stray: list[bytes] = []
        for line in self.lines:
            path, sep, rest = line.partition(b":")
            if not sep:
                stray.append(line)
                continue
            key = path.decode("utf-8", "backslashreplace")
            bucket = parts.get(key)
            if bucket is None:
                parts[key] = [rest]
            else:
                bucket.append(rest)
        self.__dict__["stray_lines"] = stray
        return {k: b"\n".join(v) for k, v in parts.items()}

    @cached_property
    def stray_lines(self) -> list[bytes]:
        """Lines of a ``files`` section that have no ``PATH:`` prefix."""
        if self.kind != "files":
            return []
        _ = self.files
        return list(self.__dict__.get("stray_lines", []))

    @cached_property
    def records(self) -> list[bytes]:
        """``stat`` sections: one record per ``@<nonce> `` line plus its continuation lines,
        with the ``@<nonce> `` prefix removed and the final ``\\n`` dropped."""
        data = self.content
        prefix = b"@" + self._dump.nonce + b" "
        if data.endswith(b"\n"):
            data = data[:-1]
        if not data:
            return []
        chunks = data.split(b"\n" + prefix)
        first = chunks[0]
        if first.startswith(prefix):
            chunks[0] = first[len(prefix) :]
        elif first:
            # Lines before the first record are not records; keep them visible.
            self._dump.warnings.append(
                f"section {self.name}: content before the first record: {_text(first[:80])!r}"
            )
            chunks = chunks[1:]
        else:
            chunks = chunks[1:]
        return chunks

    @cached_property
    def errors(self) -> list[DumpError]:
        """``errors`` sections: each non-empty line classified."""
        base = self.base_name
        return [classify_error(line, base) for line in self.lines if line.strip()]

    @cached_property
    def kv(self) -> list[tuple[str, str]]:
        """``kv`` sections: ``(key, value)`` pairs in order (keys may repeat)."""
        out: list[tuple[str, str]] = []
        for line in self.lines:
            key, sep, value = line.partition(b"=")
            if sep:
                out.append((_text(key.strip()), _text(value.rstrip(b"\r"))))
        return out

    def kv_dict(self) -> dict[str, str]:
        """``kv`` pairs as a dict (the last value of a repeated key wins)."""
        return dict(self.kv)


@dataclass(eq=False)
class Dump:
    """A parsed dump: framing only; see the module docstring."""

    version: int
    nonce: bytes
    buffer: bytes  # the stream (CRLF undone), zero-padded when it ends inside a section
    length: int  # length of the stream inside ``buffer``
    sections: list[Section] = field(default_factory=list)
    done: bool = False
    preamble: bytes = b""
    stray: list[bytes] = field(default_factory=list)  # content lines outside any section
    warnings: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        """True when ``@N done`` is missing: the collector was killed or the device lost."""
        return not self.done

    def section(self, name: str) -> Section | None:
        """The first section called ``name``, or None when the dump has none."""
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def sections_named(self, name: str) -> list[Section]:
        return [s for s in self.sections if s.name == name]

    def has(self, name: str) -> bool:
        return self.section(name) is not None

    def errors_of(self, name: str) -> list[DumpError]:
        """Classified stderr lines of section ``name`` (from every ``NAME.err`` section)."""
        out: list[DumpError] = []
        for s in self.sections:
            if s.name == name + ".err":
                out.extend(s.errors)
        return out

    def all_errors(self) -> Iterator[DumpError]:
        for s in self.sections:
            if s.kind == "errors":
                yield from s.errors

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sections]


_HEADER = re.compile(rb"DMAPROF-DUMP[ \t]+(\S+)[ \t]+([A-Za-z0-9_.-]+)[ \t]*\r?$")


def _find_header(data: bytes) -> tuple[int, re.Match[bytes]]:
    pos = 0
    limit = min(len(data), _MAX_PREAMBLE)
    while pos <= limit:
        i = data.find(DUMP_MAGIC, pos, limit + len(DUMP_MAGIC))
        if i < 0:
            break
        if i == 0 or data[i - 1 : i] == b"\n":
            eol = data.find(b"\n", i)
            line = data[i : eol if eol >= 0 else len(data)]
            m = _HEADER.match(line)
            if m:
                return i, m
        pos = i + 1
    raise DumpFormatError(
        "not a dmaprof dump: no 'DMAPROF-DUMP <version> <nonce>' line at the start of the input"
    )


def _find_frames(data: bytes, nonce: bytes, body_start: int) -> list[tuple[int, int, bytes]]:
    """(line start, line end, line after "@N ") of every framing line, in one pass.

    Only framing lines and ``stat`` records start with ``@<nonce> `` (content cannot forge the
    nonce). Inside a ``stat`` section the search jumps straight to its ``end`` line, so the
    records are not visited one by one.
    """
    at = b"@" + nonce + b" "
    needle = b"\n" + at
    frames: list[tuple[int, int, bytes]] = []
    length = len(data)
    pos = body_start - 1  # the "\n" that ends the header line
    if not data.startswith(at, body_start):
        pos = data.find(needle, body_start - 1)
    while pos >= 0:
        ls = pos + 1
        le = data.find(b"\n", ls)
        if le < 0:
            le = length
        line = data[ls + len(at) : le]
        head, _, rest = line.partition(b" ")
        word = head.rstrip(b"\r")
        if word in (b"section", b"end", b"done"):
            frames.append((ls, le, line))
            if word == b"done":
                break
            if word == b"section":
                parts = rest.split()
                if len(parts) >= 2 and parts[1] == b"stat":
                    # jump over the records to the section's end line (or whatever frame
                    # comes first if it is missing: another section start, done)
                    end_at = data.find(needle + b"end ", le)
                    sec_at = data.find(needle + b"section ", le, end_at if end_at >= 0 else length)
                    done_at = data.find(needle + b"done", le, end_at if end_at >= 0 else length)
                    cands = [x for x in (end_at, sec_at, done_at) if x >= 0]
                    pos = min(cands) if cands else -1
                    continue
        pos = data.find(needle, le)
    return frames


def parse_dump(data: bytes | bytearray | memoryview) -> Dump:
    """Parse the framing of a collector dump. Cheap: content is interpreted lazily.

    Raises :class:`DumpFormatError` when ``data`` is not a dump or is of an unsupported
    format version.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    warnings: list[str] = []
    start, header = _find_header(data)
    version = _format_version(header.group(1))
    nonce = header.group(2)
    preamble = data[:start]
    if preamble:
        warnings.append(f"{len(preamble)} bytes before the DMAPROF-DUMP line were ignored")
    if header.group(0).endswith(b"\r"):
        # A pty turned every \n into \r\n (and a content \r\n into \r\r\n): undo exactly.
        data = data[:start] + data[start:].replace(b"\r\n", b"\n")
        warnings.append("line ends were \\r\\n (adb shell through a pty); converted back")
    dump = Dump(
        version=version,
        nonce=nonce,
        buffer=data,
        length=len(data),
        preamble=preamble,
        warnings=warnings,
    )
    first_eol = data.find(b"\n", start)
    if first_eol < 0:
        dump.buffer = data + b"\0" * PAD
        return dump  # header only: truncated, no sections
    body_start = first_eol + 1
    _Framer(dump, body_start).read(_find_frames(data, nonce, body_start))
    return dump


def _format_version(raw: bytes) -> int:
    try:
        version = int(raw)
    except ValueError:
        raise DumpFormatError(f"not a dmaprof dump: bad format version {raw!r}") from None
    if version != SUPPORTED_VERSION:
        raise DumpFormatError(
            f"dump format version {version} is not supported "
            f"(this dmaprof reads version {SUPPORTED_VERSION}); upgrade dmaprof"
        )
    return version


class _Framer:
    """Builds a dump's sections from its framing lines, in order; content lines outside
    every section are kept as stray lines."""

    def __init__(self, dump: Dump, body_start: int) -> None:
        self.dump = dump
        self.data = dump.buffer
        self.length = dump.length
        self.current: tuple[str, str, int] | None = None  # (name, kind, content begin)
        self.cursor = body_start

    def read(self, frames: list[tuple[int, int, bytes]]) -> None:
        for ls, le, line in frames:
            words = line.split()
            head = words[0] if words else b""
            if head == b"section":
                self.section(words, ls, le)
            elif head == b"end":
                self.end(words, ls, le)
            else:
                self.done(ls, le)
                break
        self.finish()

    def stray_between(self, a: int, b: int) -> None:
        if b > a:
            chunk = self.data[a:b]
            self.dump.stray.extend(x for x in chunk.rstrip(b"\n").split(b"\n"))

    def close(self, current: tuple[str, str, int], rc: int | None, ended: bool, at: int) -> None:
        name, kind, begin = current
        self.dump.sections.append(Section(name, kind, rc, ended, begin, at, self.dump))
        self.current = None

    def section(self, words: list[bytes], ls: int, le: int) -> None:
        if self.current is not None:
            self.dump.warnings.append(f"section {self.current[0]} has no end line")
            self.close(self.current, None, False, ls)
        else:
            self.stray_between(self.cursor, ls)
        name = _text(words[1]) if len(words) > 1 else ""
        kind = _text(words[2]) if len(words) > 2 else ""
        if kind not in _KINDS:
            self.dump.warnings.append(
                f"section {name!r} has unknown kind {kind!r}; kept as raw lines"
            )
        self.current = (name, kind, min(le + 1, self.length))
        self.cursor = min(le + 1, self.length)

    def end(self, words: list[bytes], ls: int, le: int) -> None:
        end_name = _text(words[1]) if len(words) > 1 else ""
        rc: int | None = None
        for w in words[2:]:
            if w.startswith(b"rc="):
                try:
                    rc = int(w[3:])
                except ValueError:
                    rc = None
        if self.current is None:
            self.dump.warnings.append(f"end line for {end_name!r} without a section start")
            self.stray_between(self.cursor, ls)
        else:
            name = self.current[0]
            if end_name != name:
                self.dump.warnings.append(
                    f"section {name!r} closed by an end line for {end_name!r}"
                )
            self.close(self.current, rc, True, ls)
        self.cursor = min(le + 1, self.length)

    def done(self, ls: int, le: int) -> None:
        if self.current is not None:
            self.dump.warnings.append(f"section {self.current[0]} has no end line")
            self.close(self.current, None, False, ls)
        else:
            self.stray_between(self.cursor, ls)
        self.dump.done = True
        cursor = min(le + 1, self.length)
        if cursor < self.length and self.data[cursor : self.length].strip():
            self.dump.warnings.append("content after the done line was ignored")
            self.stray_between(cursor, self.length)
        self.cursor = self.length

    def finish(self) -> None:
        dump = self.dump
        if self.current is not None:
            dump.warnings.append(f"dump truncated inside section {self.current[0]}")
            self.close(self.current, None, False, self.length)
        elif self.cursor < self.length:
            self.stray_between(self.cursor, self.length)
        if not dump.done:
            # The last section runs to the end of the data: pad it (one copy) so that
            # vectorised readers' 8-byte windows at its last bytes stay inside the buffer.
            dump.buffer = self.data + b"\0" * PAD
        if dump.stray:
            dump.warnings.append(f"{len(dump.stray)} lines outside any section were ignored")
        if not dump.done:
            dump.warnings.append(
                "dump is truncated: no done line (collector killed or device lost)"
            )
