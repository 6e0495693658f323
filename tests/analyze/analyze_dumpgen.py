"""Build collector dumps (``docs/dump-format.md``) for tests and benchmarks.

Two levels:

* :class:`DumpBuilder` writes sections exactly as the collector frames them (``files``
  sections are grep output: every line prefixed with ``PATH:``).
* :class:`Scene` describes a device (buffers, processes with fds/maps, kernel era, which
  global sources exist) and renders a complete dump from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

NONCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def _b(x: str | bytes) -> bytes:
    return x if isinstance(x, bytes) else x.encode()


class DumpBuilder:
    def __init__(self, nonce: str = NONCE, version: int = 1) -> None:
        self.nonce = _b(nonce)
        self.parts: list[bytes] = [b"DMAPROF-DUMP %d %s\n" % (version, self.nonce)]

    @property
    def at(self) -> bytes:
        return b"@" + self.nonce + b" "

    def section(
        self, name: str, kind: str, body: bytes, rc: int | None = 0, end: bool = True
    ) -> DumpBuilder:
        self.parts.append(self.at + b"section %s %s\n" % (_b(name), _b(kind)))
        self.parts.append(body)
        if end:
            self.parts.append(self.at + b"end %s rc=%d\n" % (_b(name), rc or 0))
        return self

    def kv(
        self,
        name: str,
        pairs: Iterable[tuple[str, str | int]] | Mapping[str, str | int],
        rc: int = 0,
    ) -> DumpBuilder:
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        body = b"".join(b"%s=%s\n" % (_b(k), _b(str(v))) for k, v in items)
        return self.section(name, "kv", body, rc)

    def text(self, name: str, text: str | bytes, rc: int = 0) -> DumpBuilder:
        t = _b(text)
        if t and not t.endswith(b"\n"):
            t += b"\n"
        return self.section(name, "text", t, rc)

    def files(
        self,
        name: str,
        files: Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]],
        rc: int = 0,
    ) -> DumpBuilder:
        return self.section(name, "files", files_body(files), rc)

    def stat(self, name: str, records: Iterable[str | bytes], rc: int = 0) -> DumpBuilder:
        body = b"".join(self.at + _b(r) + b"\n" for r in records)
        return self.section(name, "stat", body, rc)

    def errors(self, name: str, lines: Iterable[str | bytes], rc: int = 0) -> DumpBuilder:
        body = b"".join(_b(x) + b"\n" for x in lines)
        return self.section(name + ".err", "errors", body, rc)

    def raw(self, data: bytes) -> DumpBuilder:
        self.parts.append(data)
        return self

    def build(self, done: bool = True) -> bytes:
        tail = [self.at + b"done\n"] if done else []
        return b"".join(self.parts + tail)


def files_body(files: Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]]) -> bytes:
    """grep -a -H '' output: every line of every file, prefixed with its path."""
    items = files.items() if isinstance(files, Mapping) else files
    out: list[bytes] = []
    for path, content in items:
        c = _b(content)
        if not c:
            continue  # an empty file gives no line
        if c.endswith(b"\n"):
            c = c[:-1]
        p = _b(path) + b":"
        out.extend(p + line + b"\n" for line in c.split(b"\n"))
    return b"".join(out)


# ---------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------

ANON = "anon"


@dataclass
class Buf:
    inode: int
    size: int
    exporter: str = "system"
    name: str | None = None
    count: int = 1
    devices: tuple[str, ...] = ()


@dataclass
class Proc:
    pid: int
    name: str
    uid: int = 1000
    cmdline: bytes | None = None  # default: name + NUL
    cgroup: str | None = "/system"
    ppid: int = 1
    fds: dict[int, int | str] = field(default_factory=dict)  # fd -> inode | ANON | other target
    maps: list[tuple[int | str, int, int]] = field(default_factory=list)  # (inode|ANON, start, end)
    tasks: dict[int, dict[int, int | str]] = field(default_factory=dict)  # tid -> fds
    kthread: bool = False
    dmabuf_rss: int | None = None
    dmabuf_pss: int | None = None
    cgroup_v1: list[str] = field(default_factory=list)  # extra "N:ctl:/path" lines
    start_time: int = 100


@dataclass
class Scene:
    buffers: list[Buf] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    #: "modern" (5.14+: /dmabuf links, fdinfo with ino), "no_ino" (5.3-5.13: fdstat section),
    #: "anon" (before 5.3: anon_inode:dmabuf, fdinfo without dma-buf lines)
    era: str = "modern"
    inventory: tuple[str, ...] = ("sysfs",)  # any of sysfs, bpf, debugfs
    fd_denied: tuple[int, ...] = ()  # pids listed in fdaccess (fd table unreadable)
    maps_denied: tuple[int, ...] = ()
    fdinfo_denied: tuple[int, ...] = ()
    packages: dict[str, list[int]] = field(default_factory=dict)
    heaps: tuple[str, ...] = ("system",)
    busybox: bool = False
    collector_pid: int = 30000
    capture_uid: int = 0
    pools_kb: int | None = None
    done: bool = True
    props: dict[str, str] = field(
        default_factory=lambda: {
            "ro.product.model": "Pixel Test",
            "ro.build.version.sdk": "35",
            "ro.build.type": "userdebug",
        }
    )
    kernel: str = "6.6.50-android15-8"

    def buf(self, inode: int) -> Buf:
        index = self.__dict__.get("_index")
        if index is None or len(index) != len(self.buffers):
            index = {b.inode: b for b in self.buffers}
            self.__dict__["_index"] = index
        return index[inode]

    # -- rendering ------------------------------------------------------------------------

    def _target(self, v: int | str) -> str:
        if isinstance(v, int):
            if self.era == "anon":
                return "anon_inode:dmabuf"
            b = self.buf(v)
            return f"/dmabuf:{b.name or ''}"
        if v == ANON:
            return "anon_inode:dmabuf"
        return v

    def _fdinfo(self, v: int | str, fd: int) -> str | None:
        if isinstance(v, str) and v != ANON:
            return None
        lines = ["pos:\t0", "flags:\t02000002", "mnt_id:\t12"]
        if self.era == "anon" or v == ANON:
            return "\n".join(lines) + "\n"
        assert isinstance(v, int)
        b = self.buf(v)
        if self.era == "modern":
            lines.append(f"ino:\t{b.inode}")
        lines += [f"size:\t{b.size}", f"count:\t{b.count}", f"exp_name:\t{b.exporter}"]
        if b.name:
            lines.append(f"name:\t{b.name}")
        return "\n".join(lines) + "\n"

    def build(self) -> bytes:
        d = DumpBuilder()
        d.kv(
            "meta",
            [
                ("collector_version", 1),
                ("pid", self.collector_pid),
                ("uid", self.capture_uid),
                ("gid", self.capture_uid),
                ("uptime_start", "1234.56"),
                ("wallclock_start", 1700000000),
                ("shell", "/system/bin/sh"),
                ("workdir", "/data/local/tmp"),
            ],
        )
        d.text("props", "".join(f"[{k}]: [{v}]\n" for k, v in self.props.items()))
        if self.packages:
            d.text(
                "packages",
                "".join(
                    f"package:{p} uid:{','.join(str(u) for u in uids)}\n"
                    for p, uids in self.packages.items()
                ),
            )
        glob: list[tuple[str, str]] = [
            ("/proc/version", f"Linux version {self.kernel} (builder@host) #1 SMP PREEMPT\n"),
            ("/proc/uptime", "1234.56 2345.67\n"),
            ("/proc/sys/kernel/random/boot_id", "b0e1d2c3-0000-1111-2222-333344445555\n"),
        ]
        glob_err: list[str] = []
        if "debugfs" in self.inventory:
            glob.append(("/sys/kernel/debug/dma_buf/bufinfo", self.bufinfo()))
        else:
            glob_err.append("grep: /sys/kernel/debug/dma_buf/bufinfo: No such file or directory")
        if self.pools_kb is not None:
            glob.append(("/sys/kernel/dma_heap/total_pools_kb", f"{self.pools_kb}\n"))
        if "bpf" in self.inventory:
            lines = []
            for b in self.buffers:
                lines += [str(b.inode), str(b.size), b.name or "", b.exporter]
            glob.append(("/sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf", "\n".join(lines) + "\n"))
        else:
            glob_err.append(
                "grep: /sys/fs/bpf/dmabuf/prog_dmabufIter_iter_dmabuf: No such file or directory"
            )
        d.files("global", glob)
        if glob_err:
            d.errors("global", glob_err)
        d.kv("dma_heap", [("heap", h) for h in self.heaps] or [("heap_dir", "absent")])
        if "sysfs" in self.inventory:
            sf: list[tuple[str, str]] = []
            for b in self.buffers:
                root = f"/sys/kernel/dmabuf/buffers/{b.inode}"
                sf.append((f"{root}/exporter_name", b.exporter + "\n"))
                sf.append((f"{root}/size", f"{b.size}\n"))
            d.files("sysfs_buffers", sf)
        else:
            d.files("sysfs_buffers", [])
            d.errors(
                "sysfs_buffers", ["grep: /sys/kernel/dmabuf/buffers: No such file or directory"]
            )
        # proc
        pf: list[tuple[str, bytes | str]] = []
        for p in self.procs:
            status = (
                f"Name:\t{p.name}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{p.pid}\n"
                f"Ngid:\t0\nPid:\t{p.pid}\nPPid:\t{p.ppid}\nTracerPid:\t0\n"
                f"Uid:\t{p.uid}\t{p.uid}\t{p.uid}\t{p.uid}\n"
                f"Gid:\t{p.uid}\t{p.uid}\t{p.uid}\t{p.uid}\n"
                f"Kthread:\t{1 if p.kthread else 0}\nThreads:\t1\n"
            )
            pf.append((f"/proc/{p.pid}/status", status))
            cmd = (
                p.cmdline
                if p.cmdline is not None
                else (b"" if p.kthread else p.name.encode() + b"\0")
            )
            pf.append((f"/proc/{p.pid}/cmdline", cmd))
            cg = "".join(f"{x}\n" for x in p.cgroup_v1)
            if p.cgroup is not None:
                cg += f"0::{p.cgroup}\n"
            pf.append((f"/proc/{p.pid}/cgroup", cg))
            comm = p.name[:15]
            fields = ["S", str(p.ppid)] + ["0"] * 17 + [str(p.start_time)] + ["0"] * 10
            pf.append((f"/proc/{p.pid}/stat", f"{p.pid} ({comm}) {' '.join(fields)}\n"))
            if p.dmabuf_rss is not None:
                pf.append((f"/proc/{p.pid}/dmabuf_rss", f"{p.dmabuf_rss}\n"))
            if p.dmabuf_pss is not None:
                pf.append((f"/proc/{p.pid}/dmabuf_pss", f"{p.dmabuf_pss}\n"))
        d.files("proc", pf)
        # maps
        mf: list[tuple[str, str]] = []
        maps_err = [f"grep: /proc/{pid}/maps: Permission denied" for pid in self.maps_denied]
        for p in self.procs:
            if p.pid in self.maps_denied or not p.maps:
                continue
            lines = []
            for ino, start, end in p.maps:
                if ino == ANON or self.era == "anon":
                    path, inode = "anon_inode:dmabuf", 4242
                else:
                    assert isinstance(ino, int)
                    b = self.buf(ino)
                    path, inode = f"/dmabuf:{b.name or ''}", b.inode
                lines.append(f"{start:x}-{end:x} rw-s 00000000 00:0b {inode}{' ' * 26}{path}")
            mf.append((f"/proc/{p.pid}/maps", "\n".join(lines) + "\n"))
        d.files("maps", mf, rc=0 if mf else 1)
        if maps_err:
            d.errors("maps", maps_err)
        d.kv("fdaccess", [("denied", pid) for pid in self.fd_denied])
        task_pairs = [(p.pid, tid) for p in self.procs for tid in p.tasks]
        d.kv("tasks", [("task", f"{pid}/{tid}") for pid, tid in task_pairs])
        # fdlinks / fdinfo / fdstat
        recs: list[str] = []
        fi: list[tuple[str, str]] = []
        fi_err: list[str] = []
        st: list[str] = []
        for p in self.procs:
            if p.pid in self.fd_denied:
                continue
            tables: list[tuple[str, dict[int, int | str]]] = [(f"/proc/{p.pid}", p.fds)]
            tables += [(f"/proc/{p.pid}/task/{tid}", fds) for tid, fds in p.tasks.items()]
            for base, fds in tables:
                for fd, v in sorted(fds.items()):
                    path = f"{base}/fd/{fd}"
                    name = f"'{path}'" if self.busybox else path
                    recs.append(f"{path} {name} -> '{self._target(v)}'")
                    info = self._fdinfo(v, fd)
                    if info is None:
                        continue
                    ipath = f"{base}/fdinfo/{fd}"
                    if p.pid in self.fdinfo_denied:
                        fi_err.append(f"grep: {ipath}: Permission denied")
                        continue
                    fi.append((ipath, info))
                    if self.era == "no_ino" and isinstance(v, int):
                        b = self.buf(v)
                        st.append(f"{path} {b.inode} {b.size}")
                    elif self.era != "modern":
                        st.append(f"{path} 4242 0")  # the shared anonymous inode
        d.stat("fdlinks", recs)
        d.files("fdinfo", fi)
        if fi_err:
            d.errors("fdinfo", fi_err)
        if self.era != "modern":
            d.stat("fdstat", st)
        d.kv("end", [("uptime_end", "1235.01"), ("spawns", 12)])
        return d.build(done=self.done)

    def bufinfo(self) -> str:
        """6.x layout (ino + name header, `<none>`), newest first."""
        out = [
            "",
            "Dma-buf Objects:",
            "size    \tflags   \tmode    \tcount   \texp_name\tino     \tname",
        ]
        for b in sorted(self.buffers, key=lambda x: -x.inode):
            out.append(
                f"{b.size:08d}\t00000002\t00080007\t{b.count:08d}\t{b.exporter}\t"
                f"{b.inode:08d}\t{b.name or '<none>'}"
            )
            out.append("\tAttached Devices:")
            out += [f"\t{dev}" for dev in b.devices]
            out.append(f"Total {len(b.devices)} devices attached")
            out.append("")
        out.append("")
        total = sum(b.size for b in self.buffers)
        out.append(f"Total {len(self.buffers)} objects, {total} bytes")
        return "\n".join(out) + "\n"
