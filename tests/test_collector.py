"""The collector (dmaprof/collect/collect.sh) against fake phone roots and the host's /proc.

Each run chroots into a fake phone (tests/emuphone/scene.py on top of minroot's mksh + toybox,
or a busybox-only root), as root and as the shell uid 2000, and checks the framed dump of
docs/dump-format.md against the files of the fake root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.emuphone import scene as S

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="chroot and uid switching need root")
TOOLS_MISSING = [t for t in ("busybox", "toybox", "unshare") if shutil.which(t) is None]
pytestmark = [
    ROOT_ONLY,
    pytest.mark.skipif(bool(TOOLS_MISSING), reason=f"missing: {TOOLS_MISSING}"),
]

PIXEL = S.FIXTURES / "pixel-like.json"
DOC_ORDER = [
    "meta", "props", "packages", "global", "dma_heap", "sysfs_buffers", "ion", "proc", "maps",
    "fdaccess", "tasks", "fdlinks", "fdinfo", "fdstat", "binder", "end",
]  # fmt: skip
GLOBAL_FILES = [
    "/proc/version", "/proc/uptime", "/proc/meminfo", "/proc/sys/kernel/random/boot_id",
    "/sys/kernel/debug/dma_buf/bufinfo", "/sys/kernel/dma_heap/total_pools_kb",
    "/sys/kernel/ion/total_heaps_kb", "/sys/kernel/ion/total_pools_kb",
    "/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf",
]  # fmt: skip
PROC_FILES = ["status", "cmdline", "cgroup", "stat", "dmabuf_rss", "dmabuf_pss"]
ENOENT = "No such file or directory"
EACCES = "Permission denied"
SPAWN_BUDGET = 40


# ---------------------------------------------------------------------------- dump parsing


@dataclass
class Section:
    name: str
    kind: str
    lines: list[bytes] = field(default_factory=list)
    rc: int | None = None


@dataclass
class Dump:
    nonce: str
    sections: dict[str, Section]
    order: list[str]
    done: bool

    def files(self, name: str) -> dict[str, list[bytes]]:
        """A `files` section as path -> content lines."""
        out: dict[str, list[bytes]] = {}
        for line in self.sections[name].lines if name in self.sections else []:
            path, _, content = line.partition(b":")
            out.setdefault(path.decode(), []).append(content)
        return out

    def kv(self, name: str) -> list[tuple[str, str]]:
        lines = self.sections[name].lines if name in self.sections else []
        return [tuple(line.decode().split("=", 1)) for line in lines]  # type: ignore[misc]

    def records(self, name: str) -> dict[str, bytes]:
        """A `stat` section as fdpath -> rest of the record (continuation lines joined)."""
        out: dict[str, bytes] = {}
        pre = b"@" + self.nonce.encode() + b" "
        last = None
        for line in self.sections[name].lines if name in self.sections else []:
            if line.startswith(pre):
                path, _, rest = line[len(pre) :].partition(b" ")
                last = path.decode()
                out[last] = rest
            else:
                assert last is not None, line
                out[last] += b"\n" + line
        return out

    def errors(self, name: str) -> dict[str, str]:
        """`NAME.err` as path -> reason (the doc: path between the command and the last ': ')."""
        out: dict[str, str] = {}
        for line in self.sections.get(f"{name}.err", Section("", "")).lines:
            text = line.decode()
            head, _, reason = text.rpartition(": ")
            path = head.partition(": ")[2].removesuffix(": cannot read link")  # busybox
            for junk in ("can't stat ", "cannot stat ", "cannot read symbolic link "):
                path = path.removeprefix(junk)
            out[path.strip("'")] = reason
        return out


def parse_dump(data: bytes) -> Dump:
    assert data.endswith(b"\n"), "a dump ends with a newline"
    lines = data[:-1].split(b"\n")
    magic, version, nonce = lines[0].decode().split(" ")
    assert (magic, version) == ("DMAPROF-DUMP", "1")
    assert nonce and nonce.isalnum()
    pre = b"@" + nonce.encode() + b" "
    sections: dict[str, Section] = {}
    order: list[str] = []
    cur: Section | None = None
    done = False
    for line in lines[1:]:
        assert not done, f"content after done: {line!r}"
        if (line.startswith(pre) and cur is None) or line.startswith(pre + b"end "):
            word, *rest = line[len(pre) :].decode().split(" ")
            if word == "section":
                assert cur is None
                name, kind = rest
                assert kind in {"kv", "text", "files", "stat", "errors"}, kind
                assert name not in sections, f"section {name} twice"
                cur = sections[name] = Section(name, kind)
                order.append(name)
            elif word == "end":
                assert cur is not None and rest[0] == cur.name, line
                assert rest[1].startswith("rc="), line
                cur.rc = int(rest[1][3:])
                cur = None
            else:
                assert word == "done" and not rest, line
                done = True
        else:
            assert cur is not None, f"content outside a section: {line!r}"
            cur.lines.append(line)
    assert cur is None, "unterminated section"
    return Dump(nonce, sections, order, done)


def check_framing(d: Dump) -> None:
    assert d.done, "no done line: truncated dump"
    plain = [n for n in d.order if not n.endswith(".err")]
    assert plain == [n for n in DOC_ORDER if n in plain], f"section order {plain}"
    for i, name in enumerate(d.order):
        if name.endswith(".err"):
            assert d.order[i - 1] == name[:-4], f"{name} does not follow its section"
            assert d.sections[name].kind == "errors"
            assert d.sections[name].lines, f"empty {name}"
    kinds = {"meta": "kv", "props": "text", "packages": "text", "global": "files",
             "dma_heap": "kv", "sysfs_buffers": "files", "ion": "files", "proc": "files",
             "maps": "files", "fdaccess": "kv", "tasks": "kv", "fdlinks": "stat",
             "fdinfo": "files", "fdstat": "stat", "binder": "files", "end": "kv"}  # fmt: skip
    for name in plain:
        assert d.sections[name].kind == kinds[name], name


def link_target(record: bytes) -> str:
    """Target of a `%N` record: after the first ` -> '`, up to the last `'`."""
    _, sep, rest = record.partition(b" -> '")
    assert sep, record
    assert rest.endswith(b"'"), record
    return rest[:-1].decode()


def content_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if not data:
        return []
    return data[:-1].split(b"\n") if data.endswith(b"\n") else data.split(b"\n")


# ---------------------------------------------------------------------------- fake roots


def build_root(dest: Path, toolset: str, variant: str, scene: S.Scene | None = None) -> Path:
    if toolset == "mksh":
        from tests.emuphone import minroot  # the adbd engineer's base root

        minroot.build_base_root(dest)
    else:
        S.build_busybox_root(dest)
    S.build_scene(scene or S.load_scene(PIXEL), dest, variant)
    return dest


def fast_base() -> Path | None:
    """A tmpfs that allows device nodes (/dev/shm here): creating a scene's thousands of small
    files there is ~25x faster than on the disk, and closer to procfs's in-memory costs."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


@pytest.fixture(scope="session")
def phone_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    made: list[Path] = []

    def make(label: str) -> Path:
        base = fast_base()
        if base is None:
            path = tmp_path_factory.mktemp(label)
        else:
            path = Path(tempfile.mkdtemp(prefix=f"dmaprof-{label}-", dir=base))
        made.append(path)
        return path / "root"

    yield make
    for path in made:
        S.remove_tree(path)


@pytest.fixture(scope="session")
def roots(phone_dirs: Callable[[str], Path]) -> Callable[[str, str], Path]:
    cache: dict[tuple[str, str], Path] = {}

    def get(toolset: str, variant: str) -> Path:
        if (toolset, variant) not in cache:
            dest = phone_dirs(f"{toolset}-{variant}")
            cache[toolset, variant] = build_root(dest, toolset, variant)
        return cache[toolset, variant]

    return get


_RUNS = iter(range(1_000_000))


def collect(
    root: Path, uid: int, *, check_writes: bool = True, patch: Callable[[str], str] | None = None
) -> tuple[S.CollectorRun, Dump, Path]:
    """Run the collector as `dmaprof snapshot` does (pushed into a private dir, `-w` that dir)
    and check what every run must satisfy: exit 0, nothing on stderr, valid framing, the
    workdir left as it was found and nothing written outside it."""
    name = f"dp-{uid}-{next(_RUNS)}"
    wd = S.install_collector(root, uid, name)
    host_wd = root / wd.lstrip("/")
    if patch is not None:  # fault injection: a modified copy of the script
        script = host_wd / "collect.sh"
        script.write_text(patch(script.read_text()))
    before = tree_state(root, skip=host_wd)
    run = S.run_collector(root, ["-w", wd], uid=uid, script=f"{wd}/collect.sh")
    assert run.returncode == 0, run.stderr
    assert run.stderr == b"", run.stderr
    dump = parse_dump(run.stdout)
    check_framing(dump)
    assert sorted(os.listdir(host_wd)) == ["collect.sh"], "scratch files left in the workdir"
    if check_writes:
        assert tree_state(root, skip=host_wd) == before, "written outside the workdir"
    return run, dump, host_wd


def tree_state(root: Path, skip: Path) -> dict[str, tuple[int, int, int]]:
    state = {}
    for dirpath, dirs, files in os.walk(root):
        if Path(dirpath) == skip:
            dirs[:] = []
            continue
        for n in dirs + files:
            if Path(dirpath, n) == skip:  # the workdir itself changes (mtime): only it
                continue
            st = os.lstat(os.path.join(dirpath, n))
            state[os.path.join(dirpath, n)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return state


def scene_pids(scene: S.Scene) -> dict[int, dict[str, object]]:
    return {int(p["pid"]): p for p in scene["processes"]}


# ---------------------------------------------------------------------------- the checks


def check_against_root(
    d: Dump, root: Path, uid: int, variant: str, workdir_prefix: str = "/data/local/tmp/dp-"
) -> None:
    scene = S.load_scene(PIXEL)
    kv = S.VARIANTS[variant]
    pids = scene_pids(scene)
    readable = {p for p, proc in pids.items() if uid == 0 or proc["uid"] == uid}

    meta = dict(d.kv("meta"))
    assert meta["collector_version"] == "1"
    assert meta["uid"] == str(uid) and meta["gid"] == str(uid)
    assert meta["uptime_start"] == "8215.42"
    assert meta["workdir"].startswith(workdir_prefix)
    assert d.nonce == scene["uuid"].replace("-", "")

    # props: getprop output filtered to the keys dmaprof uses
    props = [line.decode() for line in d.sections["props"].lines]
    assert "[ro.product.model]: [Pixel-like 8]" in props
    assert "[ro.build.version.sdk]: [34]" in props
    assert "[ro.runtime.firstboot]: [1763769600123]" in props  # names the boot (diff)
    assert not any("ro.secure" in p or "timezone" in p for p in props)
    assert d.sections["props"].rc == 0
    pk = [line.decode() for line in d.sections["packages"].lines]
    assert pk == [f"package:{p['name']} uid:{p['uid']}" for p in scene["packages"]]

    # global files: content as in the root, or the right error
    glob_files = d.files("global")
    glob_err = d.errors("global")
    for path in GLOBAL_FILES:
        host = root / path.lstrip("/")
        if host.exists() and may_read(root, path, uid):
            assert glob_files.get(path, []) == content_lines(host), path
            assert path not in glob_err
        else:
            assert path not in glob_files
            expect = ENOENT if uid == 0 or not _under_debugfs(path) else EACCES
            if uid != 0 and path.endswith("prog_dmabufIter_iter_dmabuf") and host.exists():
                expect = EACCES
            assert glob_err.get(path) == expect, (path, glob_err)

    heaps = d.kv("dma_heap")
    if kv.dma_heap:
        assert heaps == [("heap", h) for h in sorted(scene["heaps"])]
    else:
        assert heaps == [("heap_dir", "absent")]

    sysfs = d.files("sysfs_buffers")
    if kv.sysfs_stats:
        for b in scene["buffers"]:
            base = f"/sys/kernel/dmabuf/buffers/{b['inode']}"
            assert sysfs[f"{base}/size"] == [str(b["size"]).encode()]
            assert sysfs[f"{base}/exporter_name"] == [b["exporter"].encode()]
        assert len(sysfs) == 2 * len(scene["buffers"])
    else:
        assert sysfs == {}
        assert d.errors("sysfs_buffers") == {"/sys/kernel/dmabuf/buffers": ENOENT}
    assert d.errors("ion") == {"/sys/kernel/debug/ion/heaps": ENOENT if uid == 0 else EACCES}

    # proc: every file of every process exactly as in the root
    proc = d.files("proc")
    for pid in pids:
        for name in PROC_FILES:
            host = root / "proc" / str(pid) / name
            if host.exists():
                assert proc.get(f"/proc/{pid}/{name}", []) == content_lines(host), (pid, name)
            else:
                assert f"/proc/{pid}/{name}" not in proc
    assert set(proc) <= {f"/proc/{p}/{n}" for p in pids for n in PROC_FILES}
    assert d.sections["proc"].rc == 0
    assert "proc.err" not in d.sections

    # maps: only the dma-buf lines, of the processes we may read
    maps = d.files("maps")
    maps_err = d.errors("maps")
    for pid in pids:
        path = f"/proc/{pid}/maps"
        lines = content_lines(root / path.lstrip("/"))
        dma = [x for x in lines if b" /dmabuf:" in x or b" anon_inode:dmabuf" in x]
        if pid in readable:
            assert maps.get(path, []) == dma, pid
            assert path not in maps_err
        else:
            assert path not in maps
            assert maps_err[path] == EACCES
    assert not any(b"libdmabufheap" in x for lines in maps.values() for x in lines)

    # fdaccess: exactly the processes uid 2000 may not read
    denied = {int(v) for k, v in d.kv("fdaccess") if k == "denied"}
    assert denied == set(pids) - readable
    assert "fdaccess.err" not in d.sections

    # tasks: the thread with its own fd table, and no thread that shares the leader's
    tasks = [v for k, v in d.kv("tasks") if k == "task"]
    assert tasks == (["640/655"] if 640 in readable else [])

    # fdlinks: every fd of every readable process (and of listed tasks), target as in the root
    links = d.records("fdlinks")
    want: dict[str, str] = {}
    for pid in readable:
        dirs = [f"/proc/{pid}/fd"] + [f"/proc/{t.replace('/', '/task/')}/fd" for t in tasks
                                      if t.startswith(f"{pid}/")]  # fmt: skip
        for fddir in dirs:
            for n in os.listdir(root / fddir.lstrip("/")):
                want[f"{fddir}/{n}"] = os.readlink(root / fddir.lstrip("/") / n)
    assert {p: link_target(r) for p, r in links.items()} == want
    for p, r in links.items():
        name = r.partition(b" -> '")[0].decode()
        assert name.strip("'") == p  # toybox: name; busybox: 'name'
    assert d.sections["fdlinks"].rc == 0

    # fdinfo: the dma-buf fds only, decided by the link target
    dma_fds = {p for p, t in want.items() if t.startswith("/dmabuf:") or t == "anon_inode:dmabuf"}
    fdinfo = d.files("fdinfo")
    assert set(fdinfo) == {p.replace("/fd/", "/fdinfo/") for p in dma_fds}
    for path, lines in fdinfo.items():
        assert lines == content_lines(root / path.lstrip("/")), path
    assert "fdinfo.err" not in d.sections

    # fdstat: only without `ino:` in fdinfo (the fake's links dangle, so stat -L says ENOENT)
    if kv.fdinfo_ino or not dma_fds:
        assert "fdstat" not in d.sections
    else:
        errs = d.errors("fdstat")
        assert set(errs) == dma_fds and set(errs.values()) == {ENOENT}

    end = dict(d.kv("end"))
    assert end["uptime_end"] == "8215.42"


def _allowed(st: os.stat_result, uid: int, bit: int) -> bool:
    """Unix DAC for a user whose only group is its own uid (root: always)."""
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid == uid:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def may_read(root: Path, path: str, uid: int) -> bool:
    """May ``uid`` read the device path ``path`` of the fake root (search every directory)?"""
    cur = root
    for part in Path(path.lstrip("/")).parts[:-1]:
        if not _allowed(cur.stat(), uid, 1):
            return False
        cur = cur / part
    return _allowed(cur.stat(), uid, 1) and _allowed((cur / Path(path).name).stat(), uid, 4)


def _under_debugfs(path: str) -> bool:
    return path.startswith("/sys/kernel/debug/")


# ---------------------------------------------------------------------------- tests


@pytest.mark.parametrize("uid", [0, 2000], ids=["root", "shell"])
@pytest.mark.parametrize("toolset", ["mksh", "busybox"])
@pytest.mark.parametrize("variant", list(S.VARIANTS))
def test_dump_matches_fake_root(
    roots: Callable[[str, str], Path], toolset: str, variant: str, uid: int
) -> None:
    root = roots(toolset, variant)
    run, dump, _ = collect(root, uid)
    check_against_root(dump, root, uid, variant)
    assert run.spawns is not None and run.spawns <= SPAWN_BUDGET
    reported = dict(dump.kv("end")).get("spawns")
    if toolset == "mksh":
        assert reported is not None
        # the fake getprop (minroot's mksh script) starts 4 processes of its own
        assert int(reported) + getprop_spawns(root) - 1 == run.spawns
    else:
        assert reported is None  # busybox runs some applets in-process: no exact tally


_GETPROP: dict[Path, int] = {}


def getprop_spawns(root: Path) -> int:
    if root not in _GETPROP:
        run = S.run_collector(root, [], script="/system/bin/getprop", count_spawns=True)
        _GETPROP[root] = run.spawns + 1  # type: ignore[operator]  # + getprop itself
    return _GETPROP[root]


def test_expected_file_matches_scene() -> None:
    scene = S.load_scene(PIXEL)
    exp = json.loads((S.FIXTURES / "pixel-like.expected.json").read_text())
    figures = S.holder_figures(scene)
    for pid, (rss, pss) in figures.items():
        e = exp["processes"][str(pid)]
        assert (e["rss_bytes"], e["pss_bytes"]) == (rss, pss), pid
        proc = scene_pids(scene)[pid]
        assert sorted(S.held_buffers(proc)) == e["buffers"]
    sizes = {b["inode"]: b["size"] for b in scene["buffers"]}
    held = set().union(*(S.held_buffers(p) for p in scene["processes"]))
    totals = exp["totals"]
    assert totals["total_bytes"] == sum(sizes.values())
    assert totals["kernel_only_inodes"] == sorted(set(sizes) - held)
    assert totals["kernel_only_bytes"] == sum(sizes[i] for i in set(sizes) - held)
    assert totals["userspace_rss_bytes"] == sum(p for _, p in figures.values())
    for name, e in exp["exporters"].items():
        inodes = sorted(b["inode"] for b in scene["buffers"] if b["exporter"] == name)
        assert e["inodes"] == inodes and e["count"] == len(inodes)
        assert e["bytes"] == sum(sizes[i] for i in inodes)
    for ino, holders in exp["holders"].items():
        assert holders == sorted(p["pid"] for p in scene["processes"]
                                 if int(ino) in S.held_buffers(p))  # fmt: skip
    for uid, e in exp["per_uid"].items():
        if uid == "note":
            continue
        procs = [p for p in scene["processes"] if str(p["uid"]) == uid]
        union = set().union(*(S.held_buffers(p) for p in procs))
        assert e["rss_union"] == sum(sizes[i] for i in union), uid
        assert e["pss_sum"] == sum(figures[p["pid"]][1] for p in procs), uid
    no_tasks = S.holder_figures(scene, include_task_tables=False)
    assert list(no_tasks[640]) == [exp["without_task_tables"]["640"]["rss_bytes"],
                                   exp["without_task_tables"]["640"]["pss_bytes"]]  # fmt: skip


def test_bpf_variant_procfs_counters_match_expected(roots: Callable[[str, str], Path]) -> None:
    _, dump, _ = collect(roots("mksh", "bpf"), 0)
    exp = json.loads((S.FIXTURES / "pixel-like.expected.json").read_text())
    proc = dump.files("proc")
    for pid, e in exp["processes"].items():
        assert proc[f"/proc/{pid}/dmabuf_rss"] == [str(e["rss_bytes"]).encode()]
        assert proc[f"/proc/{pid}/dmabuf_pss"] == [str(e["pss_bytes"]).encode()]
    bpf = dump.files("global")["/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf"]
    assert len(bpf) == 4 * 21 and bpf[:4] == [b"1", b"10371072", b"sf-fb0", b"system"]


def test_debugfs_bufinfo_layout(roots: Callable[[str, str], Path]) -> None:
    _, dump, _ = collect(roots("busybox", "debugfs"), 0)
    lines = dump.files("global")["/sys/kernel/debug/dma_buf/bufinfo"]
    header = b"size    \tflags   \tmode    \tcount   \texp_name\tino     \tname"
    assert lines[:3] == [b"", b"Dma-buf Objects:", header]
    assert lines[3] == b"00524288\t00000002\t00080007\t00000001\tcamera\t00000021\t<none>"
    assert lines[-3:] == [b"", b"", b"Total 21 objects, 76726272 bytes"]


def test_globs_that_match_nothing_stay_out(roots: Callable[[str, str], Path]) -> None:
    _, dump, _ = collect(roots("mksh", "modern"), 0)
    assert b"[0-9]" not in b"\n".join(x for s in dump.sections.values() for x in s.lines)
    assert not any("dmabuf_rss" in p for p in dump.files("proc"))


@pytest.mark.parametrize("toolset", ["mksh", "busybox"])
@pytest.mark.parametrize("limit", [1500, 200])
def test_fd_batches_split_to_fit_one_exec(
    roots: Callable[[str, str], Path], toolset: str, limit: int
) -> None:
    """Arguments over the per-exec limit split into batches (1500: by processes; 200: also one
    process's fds by their first digit, the globs that match nothing left out): the same
    records, fdinfo files and no error, in more execs."""
    root = roots(toolset, "modern")
    run, dump, _ = collect(root, 0)
    small, dump2, _ = collect(
        root,
        0,
        patch=lambda t: t.replace("ARG_BYTES_LIMIT=786432", f"ARG_BYTES_LIMIT={limit}", 1),
    )
    assert dump2.records("fdlinks") == dump.records("fdlinks")
    assert dump2.files("fdinfo") == dump.files("fdinfo")
    assert "fdlinks.err" not in dump2.sections and dump2.sections["fdlinks"].rc == 0
    assert small.spawns is not None and run.spawns is not None and small.spawns > run.spawns


@pytest.fixture
def private_root(phone_dirs: Callable[[str], Path]) -> Callable[..., Path]:
    """A fresh fake phone a test may damage."""

    def make(toolset: str = "mksh", variant: str = "modern") -> Path:
        return build_root(phone_dirs(f"own-{toolset}-{variant}"), toolset, variant)

    return make


def test_missing_fd_dir_is_enoent(private_root: Callable[..., Path]) -> None:
    root = private_root()
    shutil.rmtree(root / "proc/3300/fd")  # the process exited between the /proc glob and the walk
    _, dump, _ = collect(root, 0)
    assert dump.errors("fdaccess") == {"/proc/3300/fd": ENOENT}
    assert ("denied", "3300") not in dump.kv("fdaccess")
    assert not any(p.startswith("/proc/3300/") for p in dump.records("fdlinks"))


def test_process_vanishing_between_glob_and_read(private_root: Callable[..., Path]) -> None:
    """A process exits after the shell expanded the fd globs but before stat reads them."""
    root = private_root()
    stat = root / "system/bin/stat"
    stat.unlink()
    # only the stat whose arguments hold 3300's fds (the fd workers run in parallel: another
    # worker's stat may run before this one's globs are expanded)
    stat.write_text(
        '#!/system/bin/sh\ncase " $* " in *" /proc/3300/fd/"*)\n'
        "rm -rf /proc/3300 /proc/3160/fd/30 ;;\nesac\n"
        'exec toybox stat "$@"\n'
    )
    stat.chmod(0o755)
    _, dump, _ = collect(root, 0, check_writes=False)  # the fake stat deletes on purpose
    errs = dump.errors("fdlinks")
    gone = {f"/proc/3300/fd/{n}" for n in (0, 1, 2, 20, 21)} | {"/proc/3160/fd/30"}
    assert {p for p in errs if p.startswith(("/proc/3300/", "/proc/3160/"))} == gone
    assert set(errs.values()) == {ENOENT}
    assert not any(
        p.startswith(("/proc/3300/", "/proc/3160/fd/30")) for p in dump.records("fdlinks")
    )
    assert not any(p.startswith("/proc/3300/") for p in dump.files("fdinfo"))
    assert dump.sections["fdlinks"].rc == 1


def test_process_vanishing_between_walk_and_stat(private_root: Callable[..., Path]) -> None:
    """The fd globs are expanded again for stat: a process gone by then is reported once as
    ENOENT on its fd dir (no literal glob reaches stat), a closed fd just disappears."""
    root = private_root()
    marker = "\tfd_links\n\tw_links_rc=$RC\n"  # in fd_worker, after its walk

    def vanish(text: str) -> str:
        assert marker in text
        # in the worker whose processes these are (even pids: worker a), so that no other
        # worker's walk runs after the removal
        rm = "\tcase $FD_OUT in */dp.a) rm -rf /proc/3300 /proc/3160/fd/30 ;; esac\n"
        return text.replace(marker, rm + marker, 1)

    _, dump, _ = collect(root, 0, check_writes=False, patch=vanish)
    assert dump.errors("fdlinks") == {"/proc/3300/fd": ENOENT}
    links = dump.records("fdlinks")
    assert not any(p.startswith("/proc/3300/") for p in links)
    assert "/proc/3160/fd/30" not in links and "/proc/3160/fd/0" in links
    assert not any(p.startswith("/proc/3300/") for p in dump.files("fdinfo"))
    assert dump.sections["fdlinks"].rc == 0


def test_own_temp_dir_is_removed(private_root: Callable[..., Path]) -> None:
    root = private_root()
    tmp = root / "data/local/tmp"
    shutil.copyfile(S.COLLECTOR, root / "system/bin/dmaprof-collect.sh")
    before = sorted(os.listdir(tmp))
    run = S.run_collector(root, [], uid=2000, script="/system/bin/dmaprof-collect.sh")
    assert run.returncode == 0, run.stderr
    d = parse_dump(run.stdout)
    check_framing(d)
    assert dict(d.kv("meta"))["workdir"].startswith("/data/local/tmp/dmaprof.")
    assert sorted(os.listdir(tmp)) == before
    assert run.spawns is not None
    assert dict(d.kv("end"))["spawns"] == str(run.spawns - getprop_spawns(root) + 1)


@pytest.mark.parametrize("args", [["-w", "/data/local/tmp/nonexistent"], ["-w", "/system"], ["-x"]])
def test_fatal_errors_exit_nonzero(roots: Callable[[str, str], Path], args: list[str]) -> None:
    root = roots("mksh", "modern")
    wd = S.install_collector(root, 2000, f"dp-fatal-{next(_RUNS)}")
    run = S.run_collector(root, args, uid=2000, script=f"{wd}/collect.sh", count_spawns=False)
    assert sorted(os.listdir(root / wd.lstrip("/"))) == ["collect.sh"]
    assert run.returncode == 2
    assert run.stdout == b""
    assert run.stderr.startswith(b"collect.sh: ") or run.stderr.startswith(b"usage: ")


def test_sigterm_removes_scratch_files(private_root: Callable[..., Path]) -> None:
    root = private_root()
    gp = root / "system/bin/getprop"
    gp.write_text("#!/system/bin/sh\nsleep 30\n")
    wd = S.install_collector(root, 0, "dp-term")
    proc = subprocess.Popen(
        [S.host_tool("chroot"), str(root), "/system/bin/sh", f"{wd}/collect.sh", "-w", wd],
        env=S.ANDROID_ENV, stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + 10
    while b"section props" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    rest, _ = proc.communicate(timeout=10)
    assert proc.returncode == 143
    assert b" done" not in seen + rest
    assert sorted(os.listdir(root / wd.lstrip("/"))) == ["collect.sh"]


def test_nonce_fallback_without_uuid(private_root: Callable[..., Path]) -> None:
    root = private_root("busybox")
    (root / "proc/sys/kernel/random/uuid").unlink()
    _, dump, _ = collect(root, 0)
    assert dump.nonce.startswith("p") and dump.nonce[1:].isalnum()


@pytest.mark.parametrize("shell", ["sh", "mksh", "busybox"])
def test_host_proc(tmp_path: Path, shell: str) -> None:
    """On this machine's real /proc (sh is dash on Debian)."""
    argv0 = {"sh": "/bin/sh", "mksh": S.static_mksh(), "busybox": shutil.which("busybox")}[shell]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(tmp_path)}
    if shell == "busybox":  # busybox sh collect.sh
        run = S.run_collector(None, [str(S.COLLECTOR)], shell=str(argv0), script="sh", env=env)
    else:
        run = S.run_collector(None, [], shell=str(argv0), env=env)
    assert run.returncode == 0, run.stderr
    d = parse_dump(run.stdout)
    check_framing(d)
    assert os.listdir(tmp_path) == [], "temp dir not removed"
    assert run.spawns is not None and run.spawns <= SPAWN_BUDGET
    proc = d.files("proc")
    assert "/proc/1/status" in proc and "/proc/1/cmdline" in proc
    # run in a new PID namespace, the collector is pid 2 there but not in the host's /proc
    assert dict(d.kv("meta"))["pid"] == "2"
    assert dict(d.kv("meta"))["pid_in_proc"] == "0"
    assert len(d.records("fdlinks")) > 10
    assert d.errors("sysfs_buffers") or d.files("sysfs_buffers")
    assert dict(d.kv("end"))["uptime_end"]


def test_collector_pid_in_its_own_proc_is_left_out(tmp_path: Path) -> None:
    """On this machine's real /proc, in its PID namespace: `pid` is the collector's own
    process there (`pid_in_proc=1`), and the analysis leaves it out as the collector."""
    from dmaprof.analyze.analysis import analyze

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(tmp_path)}
    run = S.run_collector(None, [], shell="/bin/sh", env=env, count_spawns=False)
    assert run.returncode == 0, run.stderr
    meta = dict(parse_dump(run.stdout).kv("meta"))
    assert meta["pid_in_proc"] == "1"
    procs = analyze(run.stdout).processes.set_index("pid")
    assert bool(procs.loc[int(meta["pid"]), "is_collector"])
    assert procs.loc[int(meta["pid"]), "name"] == "sh"


def test_packages_fall_back_to_pm(private_root: Callable[..., Path]) -> None:
    root = private_root()
    cmd = root / "system/bin/cmd"
    cmd.write_text("#!/system/bin/sh\necho 'cmd: Failure calling service package' >&2\nexit 20\n")
    _, dump, _ = collect(root, 2000)
    scene = S.load_scene(PIXEL)
    assert [x.decode() for x in dump.sections["packages"].lines] == [
        f"package:{p['name']} uid:{p['uid']}" for p in scene["packages"]
    ]
    assert dump.sections["packages"].rc == 0
    assert dump.sections["packages.err"].lines == [b"cmd: Failure calling service package"]


def test_no_getprop_no_cmd_no_pm(private_root: Callable[..., Path]) -> None:
    root = private_root("busybox")
    for tool in ("cmd", "pm", "getprop"):
        (root / "system/bin" / tool).unlink()
    _, dump, _ = collect(root, 0)
    for name, tool in (("props", "getprop"), ("packages", "cmd")):
        assert dump.sections[name].lines == [] and dump.sections[name].rc == 127
        assert dump.sections[f"{name}.err"].lines == [f"sh: {tool}: not found".encode()]


# ---------------------------------------------------------------------------- no /tmp, no TMPDIR
# A serial console or recovery (issue #13 item 3): no /tmp, no TMPDIR, a read-only root (here:
# nothing the shell uid 2000 may write) apart from, at most, one directory.

ANDROID_ENV_NO_TMPDIR = {k: v for k, v in S.ANDROID_ENV.items() if k != "TMPDIR"}


def read_only_phone(root: Path) -> None:
    """No /tmp, /data/local/tmp not writable for uid 2000, the collector in /system/bin."""
    shutil.rmtree(root / "tmp", ignore_errors=True)
    assert not (root / "tmp").exists()
    (root / "data/local/tmp").chmod(0o555)
    shutil.copyfile(S.COLLECTOR, root / "system/bin/dmaprof-collect.sh")


@pytest.mark.parametrize("toolset", ["mksh", "busybox"])
def test_no_writable_dir_runs_without_scratch_files(
    private_root: Callable[..., Path], toolset: str
) -> None:
    root = private_root(toolset)
    read_only_phone(root)
    before = tree_state(root, skip=root / "nonexistent")
    run = S.run_collector(
        root, [], uid=2000, script="/system/bin/dmaprof-collect.sh", env=ANDROID_ENV_NO_TMPDIR
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == b""
    dump = parse_dump(run.stdout)
    check_framing(dump)
    meta = dict(dump.kv("meta"))
    assert meta["workdir_tried"] == "/data/local/tmp /tmp /"  # chroot(1) starts in /
    check_against_root(dump, root, 2000, "modern", workdir_prefix="")
    assert meta["workdir"] == ""
    assert tree_state(root, skip=root / "nonexistent") == before, "written somewhere"
    assert run.spawns is not None and run.spawns <= SPAWN_BUDGET
    if toolset == "mksh":
        assert int(dict(dump.kv("end"))["spawns"]) + getprop_spawns(root) - 1 == run.spawns


@pytest.mark.parametrize("toolset", ["mksh", "busybox"])
def test_current_directory_is_the_last_candidate(
    private_root: Callable[..., Path], toolset: str
) -> None:
    root = private_root(toolset)
    read_only_phone(root)
    w = root / "data/w"
    w.mkdir()
    os.chown(w, 2000, 2000)
    run = S.run_collector(
        root,
        ["cd /data/w && exec /system/bin/sh /system/bin/dmaprof-collect.sh"],
        uid=2000,
        script="-c",
        env=ANDROID_ENV_NO_TMPDIR,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == b""
    dump = parse_dump(run.stdout)
    check_framing(dump)
    check_against_root(dump, root, 2000, "modern", workdir_prefix="/data/w/dmaprof.")
    assert "workdir_tried" not in dict(dump.kv("meta"))
    assert os.listdir(w) == [], "scratch dir left behind"
    if toolset == "mksh":
        assert int(dict(dump.kv("end"))["spawns"]) + getprop_spawns(root) - 1 == run.spawns


def test_tmpdir_comes_first(private_root: Callable[..., Path]) -> None:
    root = private_root()
    read_only_phone(root)
    (root / "data/local/tmp").chmod(0o771)  # writable again, but TMPDIR comes first
    t = root / "data/t"
    t.mkdir()
    os.chown(t, 2000, 2000)
    env = {**ANDROID_ENV_NO_TMPDIR, "TMPDIR": "/data/t"}
    run = S.run_collector(root, [], uid=2000, script="/system/bin/dmaprof-collect.sh", env=env)
    assert run.returncode == 0, run.stderr
    dump = parse_dump(run.stdout)
    assert dict(dump.kv("meta"))["workdir"].startswith("/data/t/dmaprof.")
    assert os.listdir(t) == []


# ---------------------------------------------------------------------------- the read floor


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the floor reader")
@pytest.mark.parametrize("variant", ["modern", "anon_inode"])
def test_floor_reader_reads_what_the_collector_reads(
    roots: Callable[[str, str], Path], tmp_path: Path, variant: str
) -> None:
    """scripts/vm/floor.c (the benchmark's read floor, issue #14) reads the same processes,
    fd links, dma-buf fdinfo files, own fd tables and dma-buf maps lines as the collector."""
    root = roots("mksh", variant)
    floor = root / "system/bin" / f"dpfloor-{os.getpid()}"
    src = Path(__file__).resolve().parents[1] / "scripts/vm/floor.c"
    subprocess.run(["gcc", "-O2", "-static", "-s", "-o", floor, src], check=True)
    try:
        r = subprocess.run(
            [S.host_tool("chroot"), str(root), f"/system/bin/{floor.name}", "read"],
            capture_output=True,
            check=True,
        )
    finally:
        floor.unlink()
    summary = json.loads(r.stderr)
    _, dump, _ = collect(root, 0)
    assert summary["procs"] == len({p.split("/")[2] for p in dump.files("proc")})
    assert summary["fds"] == len(dump.records("fdlinks"))
    assert summary["dmabuf_fds"] == len(dump.files("fdinfo"))
    assert summary["own_fd_tables"] == len(dump.kv("tasks"))
    maps = [line for lines in dump.files("maps").values() for line in lines]
    floor_maps = [x for x in r.stdout.split(b"\n") if x.startswith(b"/proc/") and b"/maps:" in x]
    assert len(floor_maps) == len(maps)
