"""Reader of AOSP ``dmabuf_dump`` output, every generation (``android-tools.md`` §1.4-1.5).

One parser for all of them, driven line by line (the output is small: a few thousand lines):

* the default per-process view, with or without the ``Exporter`` column (Nov 2024+), and the
  same view of ``dmabuf_dump PID``;
* ``-a``: the buffer x process table, with ``F(M) refs`` cells (Mar 2021+) or the older
  ``N refs`` cells (fd and map references summed);
* ``-b``: the per-buffer, per-exporter and total statistics (exact byte sizes);
* ``-o csv`` (Aug 2023+) of all of the above.

Lines the parser does not understand (an author's ``...`` elision, a vendor's extra table) are
kept in :attr:`DmabufDump.unparsed`, never fatal. Sizes are what the tool prints: kB (``size /
1024``, rounded down) in the per-process view and the table, bytes in ``-b``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "BufferRow",
    "DmabufDump",
    "ExporterStat",
    "PerBufferStat",
    "ProcessBlock",
    "Summary",
    "Table",
    "TableRow",
    "looks_like_dmabuf_dump",
    "parse_dmabuf_dump",
]

UNKNOWN = "<unknown>"


@dataclass
class BufferRow:
    """One buffer line of a process block (``Name Rss Pss nr_procs Inode [Exporter]``)."""

    name: str | None  # None for `<unknown>` (the tool's word for an unnamed buffer)
    rss_kb: int
    pss_kb: int
    nr_procs: int
    inode: int
    exporter: str | None  # None without the Exporter column, or `<unknown>`
    line_no: int


@dataclass
class ProcessBlock:
    comm: str  # /proc/PID/comm as the tool read it ("N/A" when the process was gone)
    pid: int
    rows: list[BufferRow] = field(default_factory=list)
    total_rss_kb: int | None = None  # the PROCESS TOTAL line
    total_pss_kb: int | None = None
    exporter_column: bool = False


@dataclass
class Summary:
    """``dmabuf total: X kB kernel_rss: Y kB userspace_rss: Z kB userspace_pss: W kB``."""

    total_kb: int | None = None
    kernel_rss_kb: int | None = None
    userspace_rss_kb: int | None = None
    userspace_pss_kb: int | None = None


@dataclass
class TableRow:
    """One row of ``-a``: a buffer and each process's references to it."""

    inode: int
    size_kb: int
    counts: dict[str, int]  # header -> value ("Fd Ref Counts" -> processes with an fd ref)
    refs: dict[int, tuple[int, int | None]]  # pid -> (fd refs, map refs); map None: summed


@dataclass
class Table:
    processes: list[tuple[str, int]] = field(default_factory=list)  # (comm, pid) per column
    rows: list[TableRow] = field(default_factory=list)
    total_kb: int | None = None
    per_pid_kb: dict[int, int] = field(default_factory=dict)
    split: bool = True  # cells say F(M) refs (False: the pre-2021 `N refs`)


@dataclass
class PerBufferStat:
    inode: int
    size: int  # bytes
    exporter: str


@dataclass
class ExporterStat:
    exporter: str
    count: int
    size: int  # bytes


@dataclass
class DmabufDump:
    processes: list[ProcessBlock] = field(default_factory=list)
    summary: Summary | None = None
    table: Table | None = None
    per_buffer: list[PerBufferStat] | None = None  # None: no -b output
    exporters: list[ExporterStat] | None = None
    total_count: int | None = None  # "Total DMA-BUF count"
    total_size: int | None = None  # "Total DMA-BUF size(bytes)"
    formats: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)  # the tool's own messages and warnings
    unparsed: list[tuple[int, str, str]] = field(default_factory=list)  # (line_no, line, why)

    @property
    def empty(self) -> bool:
        return not (
            self.processes
            or self.table
            or self.per_buffer is not None
            or self.summary is not None
            or self.total_size is not None
        )


# ---------------------------------------------------------------------------- line shapes

_BANNER = re.compile(r"^-{10,}\s*(DMA-BUF .*?)\s*-{10,}\s*$")
_SEPARATOR = re.compile(r"^-{10,}\s*$")
_PROC_HEADER = re.compile(r"^\s*(?P<comm>.*?):(?P<pid>\d+)\s*$")
_COLUMNS = re.compile(r"^\s*Name\s+Rss\s+Pss\s+nr_procs\s+Inode(?P<exp>\s+Exporter)?\s*$")
_ROW = re.compile(
    r"^(?P<name>.*?)\s+(?P<rss>\d+)\s*kB\s+(?P<pss>\d+)\s*kB\s+(?P<n>\d+)\s+(?P<ino>\d+)"
    r"(?:\s+(?P<exp>\S.*?))?\s*$"
)
_TOTAL = re.compile(r"^\s*PROCESS TOTAL\s+(?P<rss>\d+)\s*kB\s+(?P<pss>\d+)\s*kB\s*$")
_SUMMARY_KEYS = {
    "dmabuf total": "total_kb",
    "kernel_rss": "kernel_rss_kb",
    "userspace_rss": "userspace_rss_kb",
    "userspace_pss": "userspace_pss_kb",
}
_SUMMARY = re.compile(r"(dmabuf total|kernel_rss|userspace_rss|userspace_pss):\s*(\d+)\s*kB")
_PERBUF_ROW = re.compile(r"^\s*(?P<ino>\d+)\s*\|\s*(?P<size>\d+)\s*\|\s*(?P<exp>.*?)\s*\|?\s*$")
_EXPORTER_ROW = re.compile(r"^\s*(?P<exp>.*?)\s*\|\s*(?P<count>\d+)\s*\|\s*(?P<size>\d+)\s*\|?\s*$")
_TOTAL_STATS = re.compile(
    r"Total DMA-BUF count:\s*(?P<count>\d+),\s*Total DMA-BUF size\(bytes\):\s*(?P<size>\d+)"
)
_CELL_SPLIT = re.compile(r"^\s*(?P<fd>\d+)\s*\(\s*(?P<map>\d+)\s*\)\s*refs\s*$")
_CELL_SUM = re.compile(r"^\s*(?P<refs>\d+)\s*refs\s*$")
_SIZE_KB = re.compile(r"^\s*(\d+)\s*kB\s*$")
_PID_COLUMN = re.compile(r"^(?P<comm>.*):(?P<pid>\d+)$")
_CSV_PROC = re.compile(r"^\t(?P<comm>.*):(?P<pid>\d+)\s*$")
_CSV_ROW = re.compile(
    r'^"(?P<name>.*)",(?P<rss>\d+),(?P<pss>\d+),(?P<n>\d+),(?P<ino>\d+)(?:,(?P<exp>.*))?$'
)
_CSV_PERBUF = re.compile(r'^(?P<ino>\d+),(?P<size>\d+),"(?P<exp>.*)"$')
_CSV_EXPORTER = re.compile(r'^"(?P<exp>.*)",(?P<count>\d+),(?P<size>\d+)$')
_NUMBERS = re.compile(r"^\d+(?:,\d+)*$")

_NOTES = (
    "dmabuf info not found",
    "Warning:",
    "Unable to read",
    "Failed to",
    "Invalid arguments",
    "Usage:",
)


def _name(text: str) -> str | None:
    text = text.strip()
    return None if text in ("", UNKNOWN) else text


def _csv_cells(line: str) -> list[str]:
    """Split a dmabuf_dump CSV line: quoted cells hold no escaped quotes (the tool writes
    names verbatim), so a cell ends at the next `",` or at the end of the line."""
    cells: list[str] = []
    rest = line
    while True:
        if rest.startswith('"'):
            end = rest.find('",', 1)
            if end < 0:
                cells.append(rest[1:-1] if rest.endswith('"') and len(rest) > 1 else rest[1:])
                return cells
            cells.append(rest[1:end])
            rest = rest[end + 2 :]
        else:
            comma = rest.find(",")
            if comma < 0:
                cells.append(rest)
                return cells
            cells.append(rest[:comma])
            rest = rest[comma + 1 :]


def looks_like_dmabuf_dump(text: str) -> bool:
    """Cheap test on the first lines of a file: is this dmabuf_dump output?"""
    head = text[: 64 * 1024]
    return bool(
        re.search(r"^\s*Name\s+Rss\s+Pss\s+nr_procs\s+Inode", head, re.M)
        or "DMA-BUF per-buffer stats" in head
        or "DMA-BUF Table buffer x process" in head
        or '"Name","Rss(kB)","Pss(kB)"' in head
        or re.search(r"^\s*Dmabuf Inode\s*\|", head, re.M)
        or "dmabuf info not found" in head
    )


class _Parser:
    def __init__(self) -> None:
        self.out = DmabufDump()
        self.mode = "process"  # process | per_buffer | exporters | totals | table | other
        self.block: ProcessBlock | None = None
        self.expect: str | None = None  # the next CSV line holds values of this header
        self.table_header_cols: list[str] = []

    # -- helpers
    def unparsed(self, no: int, line: str, why: str) -> None:
        self.out.unparsed.append((no, line[:200], why))

    def close_block(self) -> None:
        self.block = None

    # -- dispatch
    def feed(self, no: int, line: str) -> None:
        stripped = line.strip()
        if not stripped:
            return
        if self.expect is not None:
            self.values(no, stripped)
            return
        banner = _BANNER.match(stripped)
        if banner:
            self.section(banner.group(1))
            return
        if any(stripped.startswith(n) for n in _NOTES) or stripped.startswith("dmabuf info"):
            self.out.notes.append(stripped)
            return
        if stripped in ("...", "…") or stripped.startswith("..."):
            self.unparsed(no, line, "elided in the source")
            return
        if stripped.startswith("Dmabuf Inode") and "|" in stripped:
            # the header of -b's or -a's table; an excerpt may lack the banner line
            if "Size(bytes)" in stripped:
                if self.mode != "per_buffer":
                    self.section("DMA-BUF per-buffer stats")
                return
            if self.mode != "table":
                self.section("DMA-BUF Table buffer x process")
            self.table_line(no, line, stripped)
            return
        if self.mode == "table":
            self.table_line(no, line, stripped)
        elif self.mode == "per_buffer":
            self.per_buffer_line(no, line, stripped)
        elif self.mode == "exporters":
            self.exporter_line(no, line, stripped)
        elif self.mode == "totals":
            self.totals_line(no, line, stripped)
        elif self.mode == "other":
            self.unparsed(no, line, "a table this dmaprof does not read")
        else:
            self.process_line(no, line, stripped)

    def section(self, title: str) -> None:
        self.close_block()
        t = title.lower()
        if "per-buffer" in t:
            self.mode = "per_buffer"
            if self.out.per_buffer is None:
                self.out.per_buffer = []
            self.out.formats.add("per_buffer")
        elif "exporter" in t:
            self.mode = "exporters"
            if self.out.exporters is None:
                self.out.exporters = []
        elif "total" in t:
            self.mode = "totals"
        elif "table" in t:
            self.mode = "table"
            self.out.table = Table()
            self.out.formats.add("table")
        else:
            self.mode = "other"

    # -- the default view (raw and csv)
    def process_line(self, no: int, line: str, s: str) -> None:
        if s.startswith("dmabuf total:") or (_SUMMARY.search(s) and "kB" in s and "|" not in s):
            self.summary(s)
            return
        if s.startswith('"Name","Rss(kB)"'):
            if self.block is not None:
                self.block.exporter_column = '"Exporter"' in s
            self.out.formats.add("csv")
            return
        if s == "PROCESS TOTAL":
            self.expect = "process_total"
            return
        if s == "TOTALS" and line.startswith("\t"):
            self.expect = "csv_totals"
            return
        if s.startswith('"Dmabuf Inode","Size(bytes)"'):
            self.mode = "per_buffer"
            if self.out.per_buffer is None:
                self.out.per_buffer = []
            self.out.formats.update(("per_buffer", "csv"))
            return
        if s.startswith('"Dmabuf Inode","Size(kB)"'):
            self.mode = "table"
            self.out.table = self.out.table or Table()
            self.out.formats.update(("table", "csv"))
            self.table_line(no, line, s)
            return
        csv_proc = _CSV_PROC.match(line)
        if csv_proc:
            self.new_block(csv_proc.group("comm"), int(csv_proc.group("pid")))
            self.out.formats.add("csv")
            return
        csv_row = _CSV_ROW.match(s)
        if csv_row and self.block is not None:
            self.add_row(no, csv_row, csv=True)
            return
        total = _TOTAL.match(s)
        if total:
            if self.block is None:
                self.unparsed(no, line, "PROCESS TOTAL outside a process block")
                return
            self.block.total_rss_kb = int(total.group("rss"))
            self.block.total_pss_kb = int(total.group("pss"))
            return
        cols = _COLUMNS.match(s)
        if cols:
            if self.block is None:
                self.unparsed(no, line, "column header outside a process block")
                return
            self.block.exporter_column = cols.group("exp") is not None
            self.out.formats.add("default+exporter" if self.block.exporter_column else "default")
            return
        if _SEPARATOR.match(s):
            self.close_block()
            return
        row = _ROW.match(line)
        if row and self.block is not None:
            self.add_row(no, row, csv=False)
            return
        header = _PROC_HEADER.match(line)
        if header and " kB" not in line and "|" not in line:
            self.new_block(header.group("comm").strip(), int(header.group("pid")))
            return
        self.unparsed(no, line, "not a dmabuf_dump line")

    def new_block(self, comm: str, pid: int) -> None:
        self.block = ProcessBlock(comm=comm, pid=pid)
        self.out.processes.append(self.block)

    def add_row(self, no: int, m: re.Match[str], *, csv: bool) -> None:
        assert self.block is not None
        exp = m.group("exp")
        if not csv and not self.block.exporter_column and exp is not None:
            # no Exporter header seen (an excerpt without it): take the column as it is
            self.block.exporter_column = True
        self.block.rows.append(
            BufferRow(
                name=_name(m.group("name")),
                rss_kb=int(m.group("rss")),
                pss_kb=int(m.group("pss")),
                nr_procs=int(m.group("n")),
                inode=int(m.group("ino")),
                exporter=_name(exp) if exp is not None else None,
                line_no=no,
            )
        )

    def summary(self, s: str) -> None:
        summary = self.out.summary or Summary()
        for key, value in _SUMMARY.findall(s):
            setattr(summary, _SUMMARY_KEYS[key], int(value))
        self.out.summary = summary
        self.close_block()

    def values(self, no: int, s: str) -> None:
        """CSV: a header line, then the values line of a PROCESS TOTAL or TOTALS block."""
        if s.startswith('"'):
            return  # the header of the values
        expect, self.expect = self.expect, None
        if not _NUMBERS.match(s):
            self.unparsed(no, s, f"expected the values of {expect}")
            return
        nums = [int(x) for x in s.split(",")]
        if expect == "process_total" and self.block is not None and len(nums) >= 2:
            self.block.total_rss_kb, self.block.total_pss_kb = nums[0], nums[1]
        elif expect == "csv_totals" and len(nums) >= 4:
            self.out.summary = Summary(*nums[:4])
            self.close_block()
        elif expect == "total_stats" and len(nums) >= 2:
            self.out.total_count, self.out.total_size = nums[0], nums[1]
        elif expect == "table_totals" and self.out.table is not None and nums:
            self.table_totals(nums[0], nums[1:])
        else:
            self.unparsed(no, s, f"unexpected values for {expect}")

    # -- -b
    def per_buffer_line(self, no: int, line: str, s: str) -> None:
        assert self.out.per_buffer is not None
        if s.startswith("Dmabuf Inode") or s.startswith('"Dmabuf Inode"'):
            if s.startswith('"'):
                self.out.formats.add("csv")
            return
        m = _PERBUF_ROW.match(s) or _CSV_PERBUF.match(s)
        if m:
            self.out.per_buffer.append(
                PerBufferStat(int(m.group("ino")), int(m.group("size")), m.group("exp").strip())
            )
            return
        if s.startswith('"Exporter Name"'):
            self.mode = "exporters"
            if self.out.exporters is None:
                self.out.exporters = []
            return
        self.unparsed(no, line, "not a per-buffer stats line")

    def exporter_line(self, no: int, line: str, s: str) -> None:
        assert self.out.exporters is not None
        if s.startswith("Exporter Name") or s.startswith('"Exporter Name"'):
            return
        if s.startswith('"Total DMA-BUF count"'):
            self.mode = "totals"
            self.expect = "total_stats"
            return
        m = _CSV_EXPORTER.match(s) or _EXPORTER_ROW.match(s)
        if m:
            self.out.exporters.append(
                ExporterStat(m.group("exp").strip(), int(m.group("count")), int(m.group("size")))
            )
            return
        self.unparsed(no, line, "not an exporter stats line")

    def totals_line(self, no: int, line: str, s: str) -> None:
        m = _TOTAL_STATS.search(s)
        if m:
            self.out.total_count = int(m.group("count"))
            self.out.total_size = int(m.group("size"))
            self.mode = "process"
            return
        if s.startswith('"Total DMA-BUF count"'):
            self.expect = "total_stats"
            return
        # the totals line is the last one of -b: whatever follows belongs to another view
        self.mode = "process"
        self.process_line(no, line, s)

    # -- -a
    def table_line(self, no: int, line: str, s: str) -> None:
        table = self.out.table
        assert table is not None
        if s.startswith("Dmabuf Inode") or s.startswith('"Dmabuf Inode"'):
            if s.startswith('"'):
                self.out.formats.add("csv")
            cells = _csv_cells(s) if s.startswith('"') else [c.strip() for c in s.split("|")]
            cells = [c for c in cells if c != ""]
            table.processes = []
            self.table_header_cols = []
            for c in cells[2:]:
                pm = _PID_COLUMN.match(c.strip())
                if pm:
                    table.processes.append((pm.group("comm").strip(), int(pm.group("pid"))))
                elif c.strip() in ("...", "…"):
                    table.processes.append(("...", -1))  # an author's elision: a lost column
                else:
                    self.table_header_cols.append(c.strip())
            return
        if _SEPARATOR.match(s):
            return
        if s.startswith("TOTALS"):
            cells = [c.strip() for c in s[len("TOTALS") :].split("|")]
            total = _SIZE_KB.match(cells[0]) if cells else None
            per = [int(m.group(1)) for c in cells[1:] if (m := _SIZE_KB.match(c))]
            self.table_totals(int(total.group(1)) if total else None, per)
            self.mode = "process"
            return
        if s.startswith('"Total Size(kB)"'):
            self.expect = "table_totals"
            return
        csv = "," in s and "|" not in s
        cells = _csv_cells(s) if csv else s.split("|")
        if cells and not csv and cells[-1].strip() == "":
            cells = cells[:-1]
        if len(cells) < 2 or not cells[0].strip().isdigit():
            self.unparsed(no, line, "not a table row")
            return
        size = cells[1].strip()
        size_m = re.match(r"^(\d+)\s*(?:kB)?$", size)
        if not size_m:
            self.unparsed(no, line, "table row without a size")
            return
        ncount = len(self.table_header_cols)
        counts: dict[str, int] = {}
        for k, header in enumerate(self.table_header_cols):
            cell = cells[2 + k].strip() if 2 + k < len(cells) else ""
            if cell.isdigit():
                counts[header] = int(cell)
        refs: dict[int, tuple[int, int | None]] = {}
        for k, (_comm, pid) in enumerate(table.processes):
            idx = 2 + ncount + k
            if idx >= len(cells) or pid < 0:
                continue
            cell = cells[idx].strip()
            split = _CELL_SPLIT.match(cell)
            if split:
                refs[pid] = (int(split.group("fd")), int(split.group("map")))
                continue
            summed = _CELL_SUM.match(cell)
            if summed:
                refs[pid] = (int(summed.group("refs")), None)
                table.split = False
        table.rows.append(TableRow(int(cells[0]), int(size_m.group(1)), counts, refs))

    def table_totals(self, total: int | None, per: list[int]) -> None:
        table = self.out.table
        assert table is not None
        table.total_kb = total
        pids = [pid for _comm, pid in table.processes if pid >= 0]
        if len(per) == len(pids):
            table.per_pid_kb = dict(zip(pids, per, strict=True))


def parse_dmabuf_dump(text: str) -> DmabufDump:
    """Parse dmabuf_dump output (any generation, raw or csv, any mix of views)."""
    parser = _Parser()
    preamble = True
    for no, line in enumerate(text.splitlines(), start=1):
        if preamble and line.startswith("#"):
            continue  # a file's comment preamble (dmaprof's fixtures say where they come from)
        preamble = False
        parser.feed(no, line.rstrip("\r"))
    out = parser.out
    if out.processes and not out.formats & {"default", "default+exporter", "csv"}:
        # blocks without a column header line (an excerpt): say which layout the rows had
        exp = any(b.exporter_column for b in out.processes)
        out.formats.add("default+exporter" if exp else "default")
    return out
