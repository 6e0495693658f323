"""A small, independent reader of collector dumps and the raw-fact checks of the VM test.

Deliberately separate from dmaprof's own parsers: it reads the framed stream of
docs/dump-format.md and the kernel formats of kernel-interfaces.md §14 with a few lines of
code each, so the VM test checks the collector's output (and the kernel) against the
scene's ground truth without trusting the code under test. Every ``check_*`` function
returns a list of human-readable failures (empty = pass).
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from vm_truth import GroundTruth, expected_report, figures

# --------------------------------------------------------------------------- framing


@dataclass
class Section:
    name: str
    kind: str
    lines: list[bytes] = field(default_factory=list)
    rc: int | None = None  # None: no end line (truncated)


@dataclass
class Dump:
    nonce: str
    sections: dict[str, Section]
    order: list[str]
    done: bool
    problems: list[str]

    def files(self, name: str) -> dict[str, list[bytes]]:
        """A ``files`` section as {path: content lines}."""
        out: dict[str, list[bytes]] = defaultdict(list)
        sec = self.sections.get(name)
        for line in sec.lines if sec else []:
            path, sep, content = line.partition(b":")
            if sep:
                out[path.decode("utf-8", "surrogateescape")].append(content)
        return dict(out)

    def kv(self, name: str) -> list[tuple[str, str]]:
        sec = self.sections.get(name)
        out = []
        for line in sec.lines if sec else []:
            k, _, v = line.decode("utf-8", "surrogateescape").partition("=")
            out.append((k, v))
        return out

    def stat_records(self, name: str) -> list[bytes]:
        """A ``stat`` section's records, without the ``@nonce `` prefix (may hold ``\\n``)."""
        sec = self.sections.get(name)
        prefix = b"@" + self.nonce.encode() + b" "
        recs: list[bytes] = []
        for line in sec.lines if sec else []:
            if line.startswith(prefix):
                recs.append(line[len(prefix) :])
            elif recs:
                recs[-1] += b"\n" + line
        return recs


def parse_dump(data: bytes) -> Dump:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    problems: list[str] = []
    m = re.fullmatch(rb"DMAPROF-DUMP 1 (\S+)", lines[0]) if lines else None
    if not m:
        return Dump("", {}, [], False, ["first line is not 'DMAPROF-DUMP 1 <nonce>'"])
    nonce = m[1].decode()
    prefix = b"@" + m[1] + b" "
    sections: dict[str, Section] = {}
    order: list[str] = []
    cur: Section | None = None
    done = False
    for i, line in enumerate(lines[1:], start=2):
        if line.startswith(prefix):
            rest = line[len(prefix) :]
            if rest.startswith(b"section "):
                parts = rest.decode().split()
                if cur is not None:
                    problems.append(f"line {i}: section {parts[1]} opens inside {cur.name}")
                cur = Section(parts[1], parts[2] if len(parts) > 2 else "")
                if cur.name in sections:
                    problems.append(f"line {i}: section {cur.name} repeated")
                sections[cur.name] = cur
                order.append(cur.name)
                continue
            if rest.startswith(b"end "):
                em = re.fullmatch(rb"end (\S+) rc=(-?\d+)", rest)
                if not em or cur is None or em[1].decode() != cur.name:
                    problems.append(f"line {i}: unexpected {rest!r}")
                else:
                    cur.rc = int(em[2])
                cur = None
                continue
            if rest == b"done":
                done = True
                continue
            if cur is not None and cur.kind == "stat":
                cur.lines.append(line)
                continue
            problems.append(f"line {i}: unknown framing line {rest[:60]!r}")
        elif cur is not None:
            cur.lines.append(line)
        else:
            problems.append(f"line {i}: content outside a section: {line[:60]!r}")
    if cur is not None:
        problems.append(f"section {cur.name} has no end line")
    return Dump(nonce, sections, order, done, problems)


def load_dump(path: str | Path) -> Dump:
    return parse_dump(Path(path).read_bytes())


# --------------------------------------------------------------------------- kernel formats


@dataclass
class BufRecord:
    size: int
    flags: int
    mode: int
    count: int
    exp_name: str
    ino: int
    name: str  # "<none>" for an unnamed buffer
    attached: list[str] = field(default_factory=list)


@dataclass
class Bufinfo:
    records: dict[int, BufRecord]
    total_objects: int | None
    total_bytes: int | None
    problems: list[str]


def parse_bufinfo(lines: list[bytes]) -> Bufinfo:
    """debugfs dma_buf/bufinfo (kernel-interfaces.md §14.4)."""
    recs: dict[int, BufRecord] = {}
    problems: list[str] = []
    total_obj = total_bytes = None
    cur: BufRecord | None = None
    in_att = False
    for raw in lines:
        line = raw.decode("utf-8", "surrogateescape")
        if not line.strip() or line.startswith(("Dma-buf Objects:", "size")):
            in_att = False
            continue
        m = re.fullmatch(r"Total (\d+) objects, (\d+) bytes", line)
        if m:
            total_obj, total_bytes = int(m[1]), int(m[2])
            continue
        if re.fullmatch(r"Total \d+ devices attached", line):
            in_att = False
            continue
        if line.startswith("\t"):
            if line.strip() == "Attached Devices:":
                in_att = True
            elif in_att and cur is not None:
                cur.attached.append(line.strip())
            continue
        f = line.split("\t", 6)
        if len(f) != 7:
            problems.append(f"bufinfo: unparsed line {line!r}")
            continue
        try:
            cur = BufRecord(
                int(f[0]), int(f[1], 16), int(f[2], 16), int(f[3]), f[4], int(f[5]), f[6]
            )
        except ValueError:
            problems.append(f"bufinfo: unparsed record {line!r}")
            continue
        if cur.ino in recs:
            problems.append(f"bufinfo: inode {cur.ino} listed twice")
        recs[cur.ino] = cur
    return Bufinfo(recs, total_obj, total_bytes, problems)


def parse_fdinfo(lines: list[bytes]) -> dict[str, str]:
    out = {}
    for raw in lines:
        k, sep, v = raw.decode("utf-8", "surrogateescape").partition(":")
        if sep:
            out[k] = v.strip("\t ")
    return out


@dataclass(frozen=True)
class MapsLine:
    start: int
    end: int
    perms: str
    offset: int
    dev: str
    ino: int
    path: str


def parse_maps_line(raw: bytes) -> MapsLine:
    f = raw.decode("utf-8", "surrogateescape").split(None, 5)
    start, end = f[0].split("-")
    return MapsLine(
        int(start, 16),
        int(end, 16),
        f[1],
        int(f[2], 16),
        f[3],
        int(f[4]),
        f[5] if len(f) > 5 else "",
    )


def is_dmabuf_target(target: str) -> bool:
    return target.startswith("/dmabuf:") or target == "anon_inode:dmabuf"


FD_PATH = re.compile(r"/proc/(\d+)(?:/task/(\d+))?/fd/(\d+)")


@dataclass(frozen=True)
class FdKey:
    pid: int
    tid: int | None
    fd: int


def fd_links(dump: Dump) -> dict[FdKey, tuple[str, str]]:
    """{fd: (fdpath, link target)} from the ``fdlinks`` section."""
    out: dict[FdKey, tuple[str, str]] = {}
    for rec in dump.stat_records("fdlinks"):
        text = rec.decode("utf-8", "surrogateescape")
        path, _, rest = text.partition(" ")
        m = FD_PATH.fullmatch(path)
        i = rest.find(" -> '")
        if not m or i < 0:
            continue
        target = rest[i + len(" -> '") : rest.rfind("'")]
        tid = int(m[2]) if m[2] else None
        out[FdKey(int(m[1]), tid, int(m[3]))] = (path, target)
    return out


@dataclass
class Snapshot:
    """One snapshot directory: the dump plus its ground truth."""

    dir: Path
    dump: Dump
    gt: GroundTruth
    bufinfo: Bufinfo

    @classmethod
    def load(cls, d: str | Path) -> Snapshot:
        d = Path(d)
        dump = load_dump(d / "dump")
        lines = dump.files("global").get("/sys/kernel/debug/dma_buf/bufinfo", [])
        return cls(d, dump, GroundTruth(d / "groundtruth"), parse_bufinfo(lines))

    def dmabuf_fds(self) -> dict[FdKey, tuple[str, str]]:
        return {k: v for k, v in fd_links(self.dump).items() if is_dmabuf_target(v[1])}

    def dmabuf_maps(self) -> dict[int, list[MapsLine]]:
        out: dict[int, list[MapsLine]] = defaultdict(list)
        for path, lines in self.dump.files("maps").items():
            m = re.fullmatch(r"/proc/(\d+)/maps", path)
            if not m:
                continue
            for raw in lines:
                ml = parse_maps_line(raw)
                if ml.path.startswith("/dmabuf") or ml.path == "anon_inode:dmabuf":
                    out[int(m[1])].append(ml)
        return dict(out)

    def holders(self) -> dict[int, set[int]]:
        """ino -> pids holding it, from the dump alone (fdinfo inode, maps inode)."""
        h: dict[int, set[int]] = defaultdict(set)
        fdinfo = self.dump.files("fdinfo")
        for key, (path, _t) in self.dmabuf_fds().items():
            info = parse_fdinfo(fdinfo.get(path.replace("/fd/", "/fdinfo/"), []))
            if "ino" in info:
                h[int(info["ino"])].add(key.pid)
        for pid, maps in self.dmabuf_maps().items():
            for ml in maps:
                h[ml.ino].add(pid)
        return dict(h)


# --------------------------------------------------------------------------- checks

REQUIRED_SECTIONS = ("meta", "global", "proc", "maps", "tasks", "fdlinks", "fdinfo")


def check_framing(s: Snapshot) -> list[str]:
    f = [f"framing: {p}" for p in s.dump.problems]
    if not s.dump.done:
        f.append("framing: no '@N done' line: the dump is truncated")
    f += [f"framing: section {n} missing" for n in REQUIRED_SECTIONS if n not in s.dump.sections]
    rc = (s.dir / "rc").read_text().strip() if (s.dir / "rc").exists() else "?"
    if rc != "0":
        f.append(f"collector exit status {rc}; stderr: {(s.dir / 'stderr').read_text()[:500]}")
    return f


def check_bufinfo(s: Snapshot) -> list[str]:
    b = s.bufinfo
    f = list(b.problems)
    if b.total_objects is None:
        return [*f, "bufinfo: no 'Total N objects, B bytes' line"]
    if b.total_objects != len(b.records):
        f.append(f"bufinfo: Total says {b.total_objects} objects, {len(b.records)} records")
    if b.total_bytes != sum(r.size for r in b.records.values()):
        f.append(f"bufinfo: Total says {b.total_bytes} bytes, records sum differently")
    created = set(s.gt.buffers())
    if set(b.records) != created:
        f.append(
            f"bufinfo inodes != created: extra {sorted(set(b.records) - created)}, "
            f"missing {sorted(created - set(b.records))}"
        )
    return f


def check_identity(s: Snapshot) -> list[str]:
    """comm, uid, thread count, cgroup and cmdline of every scene process."""
    f: list[str] = []
    proc = s.dump.files("proc")
    for pid, r in sorted(s.gt.by_pid.items()):
        who = f"{r['role']}[{pid}]"
        status = parse_fdinfo(proc.get(f"/proc/{pid}/status", []))
        if not status:
            f.append(f"{who}: no /proc/{pid}/status in the dump")
            continue
        if status.get("Name") != r["comm"]:
            f.append(f"{who}: comm {status.get('Name')!r} != {r['comm']!r}")
        uid = status.get("Uid", "").split()
        if not uid or int(uid[0]) != r["uid"]:
            f.append(f"{who}: Uid {uid} != {r['uid']}")
        if status.get("Threads") != str(len(r["threads"])):
            f.append(f"{who}: Threads {status.get('Threads')} != {len(r['threads'])}")
        cg = [c.decode() for c in proc.get(f"/proc/{pid}/cgroup", [])]
        if cg != [f"0::{r['cgroup']}"]:
            f.append(f"{who}: cgroup {cg} != ['0::{r['cgroup']}']")
        cmd = proc.get(f"/proc/{pid}/cmdline", [])
        want = r["cmdline"].encode("utf-8", "surrogateescape")
        if cmd != [want]:
            got = b"|".join(cmd)
            f.append(
                f"{who}: cmdline {got[:60]!r} ({len(got)} bytes) "
                f"!= {want[:60]!r} ({len(want)} bytes)"
            )
    return f


def check_tasks(s: Snapshot) -> list[str]:
    """Exactly the scene's own-fd-table tasks are listed for the scene's processes."""
    pids = set(s.gt.by_pid)
    got = set()
    for k, v in s.dump.kv("tasks"):
        if k == "task":
            p, t = (int(x) for x in v.split("/"))
            if p in pids:
                got.add((p, t))
    want = {(r["pid"], t) for r in s.gt.roles.values() for t in r["own_fd_table_tids"]}
    return [] if got == want else [f"tasks: dump lists {sorted(got)}, truth {sorted(want)}"]


def check_fds(s: Snapshot) -> list[str]:
    """dma-buf fds (incl. own-fd-table tasks): set, fdinfo, link target, bufinfo agree."""
    f: list[str] = []
    pids = set(s.gt.by_pid)
    bufs = s.gt.buffers()
    got = {k: v for k, v in s.dmabuf_fds().items() if k.pid in pids}
    want = {FdKey(r.pid, r.tid, r.fd): r for r in s.gt.fds()}
    if set(got) != set(want):
        f.append(
            f"dma-buf fds: extra in dump {sorted(map(tuple_of, set(got) - set(want)))}, "
            f"missing {sorted(map(tuple_of, set(want) - set(got)))}"
        )
    fdinfo = s.dump.files("fdinfo")
    for key in sorted(set(got) & set(want), key=tuple_of):
        path, target = got[key]
        truth = want[key]
        b = bufs.get(truth.ino)
        where = f"{path} ({truth.label})"
        info = parse_fdinfo(fdinfo.get(path.replace("/fd/", "/fdinfo/"), []))
        if not info:
            f.append(f"{where}: no fdinfo in the dump")
            continue
        if info.get("ino") != str(truth.ino):
            f.append(f"{where}: fdinfo ino {info.get('ino')} != {truth.ino}")
        if b is None:
            f.append(f"{where}: inode {truth.ino} was not created by the scene")
            continue
        if info.get("size") != str(b.size):
            f.append(f"{where}: fdinfo size {info.get('size')} != {b.size}")
        if info.get("exp_name") != b.exp_name:
            f.append(f"{where}: fdinfo exp_name {info.get('exp_name')} != {b.exp_name}")
        if info.get("name") != (b.name or None):  # unnamed: no name: line at all
            f.append(f"{where}: fdinfo name {info.get('name')!r} != {b.name or None!r}")
        flags = int(info.get("flags", "0"), 8)
        if flags & 0o3 != 0o2 or not flags & 0o2000000:
            f.append(f"{where}: fdinfo flags {info.get('flags')} lack O_RDWR|O_CLOEXEC")
        if target != f"/dmabuf:{b.name}":
            f.append(f"{where}: link target {target!r} != '/dmabuf:{b.name}'")
        rec = s.bufinfo.records.get(truth.ino)
        if rec is None:
            f.append(f"{where}: inode {truth.ino} not in bufinfo")
    return f


def tuple_of(k: FdKey) -> tuple[int, int, int]:
    return (k.pid, k.tid or 0, k.fd)


def check_maps(s: Snapshot) -> list[str]:
    f: list[str] = []
    bufs = s.gt.buffers()
    got_all = s.dmabuf_maps()
    devs = {ml.dev for maps in got_all.values() for ml in maps}
    if len(devs) > 1:
        f.append(f"maps: dma-buf VMAs on several devices {sorted(devs)}")
    for pid, r in sorted(s.gt.by_pid.items()):
        got = {(ml.start, ml.end, ml.ino) for ml in got_all.get(pid, [])}
        want = {(m.start, m.end, m.ino) for m in s.gt.maps() if m.pid == pid}
        if got != want:
            f.append(f"{r['role']}[{pid}]: dma-buf VMAs {sorted(got)} != truth {sorted(want)}")
        for ml in got_all.get(pid, []):
            b = bufs.get(ml.ino)
            if b is None or ml.ino not in s.bufinfo.records:
                f.append(f"{r['role']}[{pid}]: VMA inode {ml.ino} unknown / not in bufinfo")
            elif ml.path != f"/dmabuf:{b.name}":
                f.append(f"{r['role']}[{pid}]: VMA path {ml.path!r} != '/dmabuf:{b.name}'")
            if not ml.perms.endswith("s"):
                f.append(f"{r['role']}[{pid}]: VMA {ml.perms} is not shared")
    return f


def check_created(s: Snapshot) -> list[str]:
    """Every created buffer is in bufinfo with its size, name, exporter, attachments."""
    f: list[str] = []
    imported = {ino for ino, why in s.gt.kernel_refs().items() if "gem_import" in why}
    for ino, b in sorted(s.gt.buffers().items()):
        rec = s.bufinfo.records.get(ino)
        if rec is None:
            f.append(f"{b.label} (ino {ino}) not in bufinfo")
            continue
        if rec.size != b.size or b.size < b.requested:
            f.append(f"{b.label}: bufinfo size {rec.size}, truth {b.size} (asked {b.requested})")
        if rec.exp_name != b.exp_name:
            f.append(f"{b.label}: bufinfo exp_name {rec.exp_name} != {b.exp_name}")
        if rec.name != (b.name or "<none>"):
            f.append(f"{b.label}: bufinfo name {rec.name!r} != {b.name or '<none>'!r}")
        # vgem importing a buffer another driver exported attaches to it; importing its own
        # (exp_name drm) export is a self-import without an attachment
        want_att = ["vgem"] if ino in imported and b.exp_name != "drm" else []
        if rec.attached != want_att:
            f.append(f"{b.label}: attached devices {rec.attached} != {want_att}")
    return f


def check_refcounts(s: Snapshot) -> list[str]:
    """bufinfo ``count`` is the struct-file refcount: fds + VMAs + in-flight messages.

    Exact for buffers of non-DRM exporters without imports; a lower bound otherwise (a GEM
    import or the DRM exporter's handle adds references of its own, kernel-interfaces §14.6).
    """
    f: list[str] = []
    refs: dict[int, int] = defaultdict(int)
    for r in s.gt.fds():
        refs[r.ino] += 1
    for m in s.gt.maps():
        refs[m.ino] += 1
    krefs = s.gt.kernel_refs()
    for ino, why in krefs.items():
        refs[ino] += why.count("inflight")
    for ino, b in sorted(s.gt.buffers().items()):
        rec = s.bufinfo.records.get(ino)
        if rec is None:
            continue
        exact = b.exp_name != "drm" and "gem_import" not in krefs.get(ino, [])
        if (exact and rec.count != refs[ino]) or rec.count < refs[ino]:
            f.append(
                f"{b.label}: bufinfo count {rec.count}, expected {refs[ino]}"
                f"{'' if exact else ' or more'}"
            )
    return f


def check_kernel_only(s: Snapshot) -> list[str]:
    """bufinfo inodes no fd and no VMA references == the truth's kernel-only buffers."""
    referenced = set()
    fdinfo = s.dump.files("fdinfo")
    for path, _target in s.dmabuf_fds().values():
        info = parse_fdinfo(fdinfo.get(path.replace("/fd/", "/fdinfo/"), []))
        if "ino" in info:
            referenced.add(int(info["ino"]))
    referenced |= {ml.ino for maps in s.dmabuf_maps().values() for ml in maps}
    got = set(s.bufinfo.records) - referenced
    want = {k["ino"] for k in expected_report(s.gt.dir)["kernel_only"]["buffers"]}
    return [] if got == want else [f"kernel-only inodes: dump {sorted(got)}, truth {sorted(want)}"]


def check_figures(s: Snapshot) -> list[str]:
    """Per-process rss/pss computed from the dump's raw facts == expected_report's."""
    exp = expected_report(s.gt.dir)
    sizes = {ino: r.size for ino, r in s.bufinfo.records.items()}
    holders = s.holders()
    missing = set(holders) - set(sizes)
    if missing:
        return [f"held inodes missing from bufinfo: {sorted(missing)}"]
    got = figures(holders, sizes, list(exp["processes"]))
    f = [
        f"{want['role']}[{pid}]: {k} from dump {got[pid][k]} != expected {want[k]}"
        for pid, want in exp["processes"].items()
        for k in ("count", "rss", "pss")
        if got[pid][k] != want[k]
    ]
    if s.bufinfo.total_bytes != exp["total"]["size"]:
        f.append(f"total bytes {s.bufinfo.total_bytes} != expected {exp['total']['size']}")
    return f


def check_growth(a: Snapshot, b: Snapshot, min_new: int = 3) -> list[str]:
    """Between two snapshots only the leaker allocated, and nothing was freed."""
    f: list[str] = []
    ia, ib = set(a.bufinfo.records), set(b.bufinfo.records)
    if ia - ib:
        f.append(f"buffers disappeared between snapshots: {sorted(ia - ib)}")
    leak_a = {c["ino"] for c in a.gt.roles["leaky"]["created"]}
    leak_b = {c["ino"] for c in b.gt.roles["leaky"]["created"]}
    if ib - ia != leak_b - leak_a:
        f.append(f"new buffers {sorted(ib - ia)} != leaker's new ones {sorted(leak_b - leak_a)}")
    if len(ib - ia) < min_new:
        f.append(f"only {len(ib - ia)} new buffers between snapshots (expected >= {min_new})")
    f += [
        f"{s.dir.name}: the leaker's ground truth is not paused"
        for s in (a, b)
        if s.gt.roles["leaky"].get("paused") is not True
    ]
    return f


ALL_CHECKS = (
    check_framing,
    check_bufinfo,
    check_identity,
    check_tasks,
    check_fds,
    check_maps,
    check_created,
    check_refcounts,
    check_kernel_only,
    check_figures,
)


def check_all(snapshot_dirs: list[Path]) -> list[str]:
    """Every check on every snapshot, plus growth between consecutive ones."""
    snaps = [Snapshot.load(d) for d in snapshot_dirs]
    out = [f"{s.dir.name}: {msg}" for s in snaps for c in ALL_CHECKS for msg in c(s)]
    for a, b in itertools.pairwise(snaps):
        out += [f"{a.dir.name}->{b.dir.name}: {msg}" for msg in check_growth(a, b)]
    return out


if __name__ == "__main__":  # python3 tests/vm/vm_dump.py RESULT_DIR
    import sys

    root = Path(sys.argv[1])
    dirs = sorted((root / "out").glob("snap*"), key=lambda p: int(p.name[4:]))
    problems = check_all(dirs)
    print("\n".join(problems) or f"all checks pass on {len(dirs)} snapshots")
    sys.exit(1 if problems else 0)
