#!/usr/bin/env python3
"""dmaprof's qemu testbed: a stock Debian kernel with real dma-bufs (docs/vm-testbed.md).

Python 3.11 standard library only. The steps, each bounded by a timeout and cached under one
directory (``$DMAPROF_VM_CACHE``, default ``~/.cache/dmaprof-vm``):

1. ``fetch_kernel``: ``apt-get download`` the newest Debian 12 kernel package of a series
   (``6.12``: ``linux-image-6.12.*+deb12-amd64-unsigned``; ``6.1``:
   ``linux-image-6.1.0-*-amd64``), ``dpkg -x`` it, keep vmlinuz plus the modules the guest
   needs (dependencies resolved with ``modinfo -F depends``, decompressed on the host).
2. ``build_initramfs``: busybox-static with one symlink per applet, the static scene program
   (``gcc -O2 -static -pthread scene.c``), the modules with their load order, ``/init``.
3. ``boot``: ``qemu-system-x86_64`` under TCG with the result directory shared over 9p
   (tag ``host0``) and no network. A boot whose console shows an Oops or a panic is retried
   once (multi-threaded TCG oopses about once in 15 boots).

Main entry: ``run_scene(kernel="6.12", snapshots=2, gap_s=3, collector=PATH, out=DIR)``
returns the result directory::

    DIR/collect.sh                    the collector, as pushed to the guest
    DIR/console.log                   the serial console (the last attempt)
    DIR/run.json                      kernel, qemu command, attempts, timing markers
    DIR/out/snapN/dump                the collector's stdout in the guest
    DIR/out/snapN/stderr, rc, time    its stderr, exit status, guest uptime start/end
    DIR/out/snapN/groundtruth/        gt-<role>.json, roles, scene.json (kernel-vm.md §9)
    DIR/out/dmesg, DIR/out/scene/     guest dmesg and the scene's logs

Command line: ``run.py scene|boot|shell|fetch|initramfs|rootfs|emu|clean`` (``--help``).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import json
import lzma
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENE_C = HERE / "scene.c"
SCALE_C = HERE / "scale.c"  # the scale scene of the collector benchmark
FLOOR_C = HERE / "floor.c"  # the collector's read floor, and a timer
INIT_SH = HERE / "init.sh"
SETUP_SH = HERE / "setup.sh"

# Bump when the layout of a cached artefact changes, so old caches are not reused.
CACHE_LAYOUT = "1"

SERIES: dict[str, str] = {
    # series -> regex over package names (apt-cache search --names-only)
    "6.12": r"^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$",
    "6.1": r"^linux-image-6\.1\.0-[0-9]+-amd64$",
}
# Modules the guest loads at boot (dependencies are added), and for the emulator mode.
BASE_MODULES = ("virtio_pci", "9p", "9pnet_virtio", "vgem")
NET_MODULES = ("virtio_net",)

QEMU = "qemu-system-x86_64"
QEMU_MACHINE = ["-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "1024"]
KERNEL_APPEND = "console=ttyS0 panic=-1 loglevel=4"
OOPS_RE = re.compile(r"\bOops\b|Kernel panic|\bBUG: |general protection fault")
MARKER_RE = re.compile(r"^@@dmaprof (\S+) ([0-9.]+)(?: (.*))?$")
HOST_TOOLS = ("qemu-system-x86_64", "busybox", "cpio", "modinfo", "gcc", "dpkg", "apt-get")
EMU_TOOLS = ("debootstrap", "adb")  # the rootfs build; adb for the host side of adbd tests

T_APT = 300.0  # apt-get download / update
# /init's first marker comes 8-12 s after qemu starts here; a guest silent for this long
# hung in early boot (seen once in CI under multi-threaded TCG) and is booted again.
T_FIRST_MARKER = 90.0
FIRST_MARKER = "shell"  # the first line /init prints (scripts/vm/init.sh)
T_DPKG = 180.0  # dpkg -x
T_TOOL = 60.0  # modinfo, gcc, cpio, busybox --list


class VMError(RuntimeError):
    """A step of the testbed failed; the message says which and why."""


# --------------------------------------------------------------------------- utilities

_T0 = time.monotonic()
VERBOSE = os.environ.get("DMAPROF_VM_VERBOSE", "") not in ("", "0")


def log(msg: str) -> None:
    print(f"[vm {time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    env = os.environ.get("DMAPROF_VM_CACHE")
    d = Path(env) if env else Path.home() / ".cache" / "dmaprof-vm"
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def cache_lock(name: str = "lock") -> Iterator[None]:
    """Serialise cache writers (parallel test workers, two terminals)."""
    with (cache_dir() / name).open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run(
    argv: Sequence[str | Path],
    timeout: float,
    *,
    cwd: Path | None = None,
    check: bool = True,
    stdout: Any = subprocess.PIPE,
    stdin: Any = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command with a hard timeout; the whole process group is killed on expiry."""
    args = [str(a) for a in argv]
    with subprocess.Popen(
        args,
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise VMError(f"timed out after {timeout:.0f}s: {' '.join(args)}") from None
    res = subprocess.CompletedProcess(args, proc.returncode, out, err)
    if check and res.returncode != 0:
        raise VMError(
            f"command failed (exit {res.returncode}): {' '.join(args)}\n{(err or '').strip()}"
        )
    return res


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_host_tools(emu: bool = False) -> None:
    """Install what is missing (fresh CI machine) with setup.sh; fail clearly otherwise."""
    tools = (*HOST_TOOLS, *EMU_TOOLS) if emu else HOST_TOOLS
    missing = [t for t in tools if shutil.which(t) is None and not Path("/sbin", t).exists()]
    if missing or not Path("/usr/include/linux/dma-heap.h").exists():
        log(f"missing host tools {missing}: running {SETUP_SH}")
        run(["sh", SETUP_SH, *(["--emu"] if emu else [])], 1200, stdout=None)
    still = [t for t in tools if shutil.which(t) is None and not Path("/sbin", t).exists()]
    if still:
        raise VMError(f"host tools still missing after setup.sh: {still}")


# --------------------------------------------------------------------------- kernels


@dataclass
class Kernel:
    series: str
    package: str
    kver: str
    dir: Path
    vmlinuz: Path
    base_modules: list[str] = field(default_factory=list)  # load order, file stems
    net_modules: list[str] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        d = asdict(self)
        d["dir"] = str(self.dir)
        d["vmlinuz"] = str(self.vmlinuz)
        return d


def _pkg_sort_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name))


def list_kernel_packages(series: str) -> list[str]:
    """Package names of a series known to apt, newest first (apt-get update if none)."""
    if series not in SERIES:
        raise VMError(f"unknown kernel series {series!r}; known: {sorted(SERIES)}")
    pat = SERIES[series]

    def search() -> list[str]:
        res = run(["apt-cache", "search", "--names-only", pat], T_TOOL, check=False)
        names = [ln.split(" - ", 1)[0].strip() for ln in res.stdout.splitlines()]
        return sorted((n for n in names if re.match(pat, n)), key=_pkg_sort_key, reverse=True)

    names = search()
    if not names:
        log("apt-cache knows no kernel package: apt-get update")
        prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
        run([*prefix, "apt-get", "update", "-q"], T_APT, check=False, stdout=None)
        names = search()
    return names


def _cached_kernels(series: str) -> list[Path]:
    root = cache_dir() / "kernels"
    if not root.is_dir():
        return []
    pat = re.compile(SERIES[series])
    dirs = [d for d in root.iterdir() if pat.match(d.name) and (d / ".complete").exists()]
    return sorted(dirs, key=lambda d: _pkg_sort_key(d.name), reverse=True)


def _load_kernel(d: Path) -> Kernel:
    meta = json.loads((d / "kernel.json").read_text())
    return Kernel(
        series=meta["series"],
        package=meta["package"],
        kver=meta["kver"],
        dir=d,
        vmlinuz=d / "vmlinuz",
        base_modules=meta["base_modules"],
        net_modules=meta["net_modules"],
    )


def _modules_wanted_key() -> str:
    return ",".join(BASE_MODULES) + "|" + ",".join(NET_MODULES) + "|" + CACHE_LAYOUT


def fetch_kernel(series: str, package: str | None = None) -> Kernel:
    """The prepared kernel of a series: the newest package apt offers, cached after once.

    ``DMAPROF_VM_OFFLINE=1`` (or apt failing) uses the newest prepared kernel in the cache.
    ``package`` (or ``$DMAPROF_VM_KERNEL_6_12`` / ``$DMAPROF_VM_KERNEL_6_1``) pins one.
    """
    package = package or os.environ.get("DMAPROF_VM_KERNEL_" + series.replace(".", "_"))
    pinned = package is not None
    with cache_lock():
        cached = _cached_kernels(series)
        offline = os.environ.get("DMAPROF_VM_OFFLINE", "") not in ("", "0")
        if package is None and offline:
            if not cached:
                raise VMError(f"DMAPROF_VM_OFFLINE set but no {series} kernel is cached")
            return _load_kernel(cached[0])
        candidates = [package] if package else list_kernel_packages(series)
        if not candidates:
            if cached:
                log(f"apt knows no {series} kernel; using cached {cached[0].name}")
                return _load_kernel(cached[0])
            raise VMError(
                f"apt knows no package matching {SERIES[series]}: are bookworm-security and "
                "bookworm-updates in the apt sources (a Debian 12 host is required)?"
            )
        errors: list[str] = []
        for pkg in candidates[:3]:
            d = cache_dir() / "kernels" / pkg
            if (d / ".complete").exists():
                k = _load_kernel(d)
                meta = json.loads((d / "kernel.json").read_text())
                if meta.get("wanted") == _modules_wanted_key():
                    return k
            try:
                deb = _download_deb(pkg)
                k = _prepare_kernel(series, pkg, deb)
            except VMError as exc:
                errors.append(f"{pkg}: {exc}")
                log(f"cannot use {pkg}: {exc}")
                continue
            if not pinned:
                _prune_old(series, keep=pkg)
            return k
        if cached:
            log(f"falling back to cached {cached[0].name}")
            return _load_kernel(cached[0])
        raise VMError(f"no usable {series} kernel:\n" + "\n".join(errors))


def _download_deb(pkg: str) -> Path:
    debs = cache_dir() / "debs"
    debs.mkdir(exist_ok=True)
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if found:
        return found[-1]
    log(f"apt-get download {pkg}")
    with tempfile.TemporaryDirectory(dir=debs, prefix=".dl-") as tmp:
        os.chmod(tmp, 0o755)  # apt's _apt sandbox user must be able to write as root
        for attempt in (1, 2):
            res = run(["apt-get", "download", "-q", pkg], T_APT, cwd=Path(tmp), check=False)
            got = list(Path(tmp).glob("*.deb"))
            if res.returncode == 0 and got:
                dst = debs / got[0].name
                got[0].replace(dst)
                return dst
            log(f"apt-get download {pkg} failed (attempt {attempt}): {res.stderr.strip()}")
    raise VMError(f"apt-get download {pkg} failed")


def _resolve_modules(
    moddir: Path, builtin: set[str], wanted: Sequence[str], have: Sequence[str] = ()
) -> list[str]:
    """Load order (module names) for ``wanted``, dependencies first, via modinfo."""
    files: dict[str, Path] = {}
    for f in moddir.rglob("*.ko*"):
        stem = f.name.split(".ko", 1)[0]
        files[stem.replace("-", "_")] = f
    order: list[str] = list(have)
    visiting: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in order or name in builtin:
            return
        if name in visiting:
            raise VMError(f"module dependency cycle at {name}")
        f = files.get(name)
        if f is None:
            raise VMError(f"module {name} is neither built in nor in {moddir}")
        visiting.add(name)
        deps = run(["modinfo", "-F", "depends", f], T_TOOL).stdout.strip()
        for dep in filter(None, deps.split(",")):
            visit(dep.strip())
        visiting.discard(name)
        order.append(name)

    for w in wanted:
        visit(w)
    return order[len(have) :]


def _prepare_kernel(series: str, pkg: str, deb: Path) -> Kernel:
    kernels = cache_dir() / "kernels"
    kernels.mkdir(exist_ok=True)
    dst = kernels / pkg
    log(f"dpkg -x {deb.name}")
    with tempfile.TemporaryDirectory(dir=kernels, prefix=".x-") as tmp:
        tree = Path(tmp) / "tree"
        run(["dpkg", "-x", deb, tree], T_DPKG)
        vmlinuz = sorted((tree / "boot").glob("vmlinuz-*"))
        if not vmlinuz:
            raise VMError(f"{deb.name} has no boot/vmlinuz-*")
        kver = vmlinuz[0].name.removeprefix("vmlinuz-")
        moddir = tree / "lib" / "modules" / kver
        builtin: set[str] = set()
        bfile = moddir / "modules.builtin"
        if bfile.exists():
            for line in bfile.read_text().split():
                builtin.add(Path(line).name.split(".ko", 1)[0].replace("-", "_"))
        base = _resolve_modules(moddir / "kernel", builtin, BASE_MODULES)
        net = _resolve_modules(moddir / "kernel", builtin, NET_MODULES, have=base)
        out = Path(tmp) / "prepared"
        (out / "modules").mkdir(parents=True)
        shutil.copy2(vmlinuz[0], out / "vmlinuz")
        cfg = tree / "boot" / f"config-{kver}"
        if cfg.exists():
            shutil.copy2(cfg, out / "config")
        files = {f.name.split(".ko", 1)[0].replace("-", "_"): f for f in moddir.rglob("*.ko*")}
        for name in base + net:
            _decompress_module(files[name], out / "modules" / f"{name}.ko")
        meta = {
            "series": series,
            "package": pkg,
            "deb": deb.name,
            "kver": kver,
            "base_modules": base,
            "net_modules": net,
            "wanted": _modules_wanted_key(),
        }
        (out / "kernel.json").write_text(json.dumps(meta, indent=1) + "\n")
        (out / ".complete").touch()
        if dst.exists():
            shutil.rmtree(dst)
        out.rename(dst)
    log(f"kernel {kver}: modules {' '.join(base)} | net: {' '.join(net) or '-'}")
    return _load_kernel(dst)


def _decompress_module(src: Path, dst: Path) -> None:
    if src.name.endswith(".ko.xz"):
        dst.write_bytes(lzma.decompress(src.read_bytes()))
    elif src.name.endswith(".ko.zst"):
        with dst.open("wb") as fh:
            run(["zstd", "-dc", src], T_TOOL, stdout=fh)
    elif src.name.endswith(".ko.gz"):
        import gzip

        dst.write_bytes(gzip.decompress(src.read_bytes()))
    else:
        shutil.copy2(src, dst)


def _prune_old(series: str, keep: str) -> None:
    """Keep the cache bounded: drop other packages of the series (deb and prepared tree)."""
    pat = re.compile(SERIES[series])
    for d in (cache_dir() / "kernels").iterdir():
        if pat.match(d.name) and d.name != keep:
            log(f"pruning cached kernel {d.name}")
            shutil.rmtree(d, ignore_errors=True)
    for deb in (cache_dir() / "debs").glob("*.deb"):
        name = deb.name.split("_", 1)[0]
        if pat.match(name) and name != keep:
            deb.unlink(missing_ok=True)


# --------------------------------------------------------------------------- initramfs


def build_static(src_path: Path) -> Path:
    """A static program of the testbed (scene.c, scale.c, floor.c), compiled once per content."""
    src = src_path.read_bytes()
    gcc_ver = run(["gcc", "-dumpfullversion"], T_TOOL).stdout.strip()
    key = hashlib.sha256(src + gcc_ver.encode() + CACHE_LAYOUT.encode()).hexdigest()[:16]
    build = cache_dir() / "build"
    build.mkdir(exist_ok=True)
    stem = src_path.stem
    out = build / f"{stem}-{key}"
    if out.exists():
        return out
    log(f"gcc -O2 -static -pthread {src_path.name}")
    tmp = build / f".{stem}-{key}.{os.getpid()}"
    run(
        ["gcc", "-O2", "-static", "-pthread", "-Wall", "-Wextra", "-s", "-o", tmp, src_path],
        T_TOOL * 2,
    )
    tmp.replace(out)
    for old in build.glob(f"{stem}-*"):
        if old != out:
            old.unlink(missing_ok=True)
    return out


def build_scene() -> Path:
    """The static scene program, compiled once per scene.c content."""
    return build_static(SCENE_C)


def _busybox() -> Path:
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(p).exists():
            return Path(p)
    raise VMError("busybox not found (apt-get install busybox-static)")


def build_initramfs(kernel: Kernel) -> Path:
    """initramfs.cpio.gz for a kernel; rebuilt only when an input changed."""
    scene = build_scene()
    extra = {"scale": build_static(SCALE_C), "floor": build_static(FLOOR_C)}
    busybox = _busybox()
    h = hashlib.sha256()
    for part in (
        CACHE_LAYOUT,
        kernel.package,
        json.dumps([kernel.base_modules, kernel.net_modules]),
        sha256_file(busybox),
        sha256_file(scene),
        *(sha256_file(p) for p in extra.values()),
        sha256_file(INIT_SH),
        sha256_file(Path(__file__)),  # how the image is laid out
    ):
        h.update(part.encode() + b"\0")
    key = h.hexdigest()[:16]
    idir = cache_dir() / "initramfs"
    idir.mkdir(exist_ok=True)
    out = idir / f"{kernel.package}-{key}.cpio.gz"
    if out.exists():
        return out
    log(f"building initramfs for {kernel.kver}")
    with tempfile.TemporaryDirectory(dir=idir, prefix=".root-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # becomes the guest's "/": mkdtemp made it 0700
        for d in (
            "bin",
            "sbin",
            "usr/bin",
            "usr/sbin",
            "proc",
            "sys",
            "dev",
            "run",
            "tmp",
            "mnt/host",
            "mnt/rootfs",
            "data/local/tmp",
            "etc",
            "lib/modules",
            "vendor/bin/hw",
            "system/bin",
            "root",
        ):
            (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        applets = run([busybox, "--list-full"], T_TOOL).stdout.split()
        for rel in applets:
            link = root / rel
            if rel == "bin/busybox" or link.exists():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            depth = rel.count("/")
            link.symlink_to("../" * depth + "bin/busybox")
        # Android's /system/bin holds sh and the toybox applets, and adb shell's PATH (in
        # the emulator mode, adbd.py's) looks only there: the busybox applets, likewise.
        for rel in applets:
            link = root / "system" / "bin" / Path(rel).name
            if not link.exists() and not link.is_symlink():
                link.symlink_to("../../bin/busybox")
        for name, prog in {"scene": scene, **extra}.items():
            shutil.copy2(prog, root / "bin" / name)
            (root / "bin" / name).chmod(0o755)
        shutil.copy2(INIT_SH, root / "init")
        (root / "init").chmod(0o755)
        for name in kernel.base_modules + kernel.net_modules:
            shutil.copy2(kernel.dir / "modules" / f"{name}.ko", root / "lib/modules")
        (root / "lib/modules/base.order").write_text("".join(f"{m}\n" for m in kernel.base_modules))
        (root / "lib/modules/net.order").write_text("".join(f"{m}\n" for m in kernel.net_modules))
        (root / "etc/kver").write_text(kernel.kver + "\n")
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc/group").write_text("root:x:0:\n")
        names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        tmp_out = idir / f".{out.name}.{os.getpid()}"
        with tmp_out.open("wb") as fh:
            cpio = subprocess.Popen(
                ["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
                cwd=root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            gz = subprocess.Popen(["gzip", "-6", "-n"], stdin=cpio.stdout, stdout=fh)
            assert cpio.stdin is not None and cpio.stdout is not None
            cpio.stdout.close()
            cpio.stdin.write(("\n".join([".", *names]) + "\n").encode())
            cpio.stdin.close()
            if cpio.wait(T_TOOL) != 0 or gz.wait(T_TOOL) != 0:
                raise VMError("cpio | gzip failed")
        tmp_out.replace(out)
    for old in idir.glob(f"{kernel.package}-*.cpio.gz"):
        if old != out:
            old.unlink(missing_ok=True)
    log(f"initramfs {out.name}: {out.stat().st_size / 1e6:.2f} MB")
    return out


# --------------------------------------------------------------------------- boot


@dataclass
class Marker:
    name: str
    guest_uptime: float
    host_s: float  # seconds since qemu was started
    extra: str = ""


@dataclass
class BootResult:
    returncode: int | None
    timed_out: bool
    oops: bool
    wall_s: float
    console: str
    markers: list[Marker]
    cmd: list[str]
    hung: bool = False  # killed: no marker within T_FIRST_MARKER (never reached /init)

    def marker(self, name: str) -> Marker | None:
        return next((m for m in self.markers if m.name == name), None)


def qemu_command(
    kernel: Kernel,
    initrd: Path,
    share: Path,
    words: Sequence[str],
    *,
    interactive: bool = False,
    rootfs: Path | None = None,
    hostfwd: Sequence[tuple[int, int]] = (),
) -> list[str]:
    cmd = [QEMU, *QEMU_MACHINE, "-no-reboot", "-no-user-config", "-nodefaults"]
    if interactive:
        cmd += ["-nographic", "-serial", "mon:stdio"]
    else:
        cmd += ["-display", "none", "-serial", "stdio", "-monitor", "none"]
    if hostfwd:
        fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{h}-:{g}" for h, g in hostfwd)
        cmd += ["-nic", f"user,model=virtio-net-pci,{fwd}"]
    else:
        cmd += ["-nic", "none"]
    cmd += [
        "-kernel",
        str(kernel.vmlinuz),
        "-initrd",
        str(initrd),
        "-virtfs",
        f"local,path={share},mount_tag=host0,security_model=none,id=host0",
    ]
    if rootfs is not None:
        cmd += [
            "-virtfs",
            f"local,path={rootfs},mount_tag=rootfs,security_model=none,readonly=on,id=rootfs",
        ]
    cmd += ["-append", " ".join([KERNEL_APPEND, *words])]
    return cmd


_LIVE_GUESTS: set[Guest] = set()


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL qemu when run.py dies (Linux PR_SET_PDEATHSIG, best effort)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


@atexit.register
def _kill_live_guests() -> None:
    for g in list(_LIVE_GUESTS):
        g.kill()


class Guest:
    """A running qemu: the console is logged (with host timestamps) and scanned for markers.

    qemu runs in its own session (a terminal's Ctrl-C reaches only run.py) and is killed
    when run.py exits, however it exits (PR_SET_PDEATHSIG follows the *thread* that started
    qemu: start guests from a thread that outlives them, e.g. the main thread).
    """

    def __init__(self, cmd: list[str], console_log: Path, echo: bool = VERBOSE) -> None:
        self.cmd = cmd
        self.markers: list[Marker] = []
        self.lines: list[str] = []
        self.t0 = time.monotonic()
        self._cond = threading.Condition()
        self._logf = console_log.open("w", encoding="utf-8", errors="replace")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        _LIVE_GUESTS.add(self)
        self._echo = echo
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        self.timed_out = False
        self.hung = False

    def _reader(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            now = time.monotonic() - self.t0
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self._logf.write(f"[{now:7.2f}] {line}\n")
            self._logf.flush()
            if self._echo:
                print(f"  | {line}", file=sys.stderr, flush=True)
            m = MARKER_RE.match(line.strip())
            with self._cond:
                self.lines.append(line)
                if m:
                    self.markers.append(Marker(m[1], float(m[2]), round(now, 3), m[3] or ""))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_marker(self, names: Sequence[str], timeout: float) -> Marker | None:
        """The first of ``names`` to appear; None on timeout, exit or an Oops."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.markers:
                    if m.name in names:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None or self._oops_seen():
                    return None
                self._cond.wait(min(left, 0.5))

    def marker(self, name: str) -> Marker | None:
        with self._cond:
            return next((m for m in self.markers if m.name == name), None)

    def tail(self, n: int) -> list[str]:
        with self._cond:
            return self.lines[-n:]

    def _oops_seen(self) -> bool:  # caller holds self._cond
        return any(OOPS_RE.search(line) for line in self.lines[-50:])

    def oopsed_or_exited(self) -> bool:
        with self._cond:
            return self.proc.poll() is not None or self._oops_seen()

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> BootResult:
        """Wait for qemu to exit (killed after ``timeout`` s from its start)."""
        try:
            self.proc.wait(timeout=max(0.0, timeout - (time.monotonic() - self.t0)))
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.kill()
            self.proc.wait()
        _LIVE_GUESTS.discard(self)
        self._thread.join(10)
        self._logf.close()
        console = "\n".join(self.lines)
        return BootResult(
            returncode=self.proc.returncode,
            timed_out=self.timed_out,
            oops=bool(OOPS_RE.search(console)),
            wall_s=round(time.monotonic() - self.t0, 3),
            console=console,
            markers=list(self.markers),
            cmd=self.cmd,
            hung=self.hung,
        )

    def reached_init(self) -> bool:
        return self.marker(FIRST_MARKER) is not None

    def kill_if_silent(self, first_marker_s: float) -> None:
        """Kill the guest if /init has not spoken within ``first_marker_s`` (a boot hang)."""
        self.wait_marker([FIRST_MARKER], first_marker_s)
        if not (self.reached_init() or self.oopsed_or_exited()):
            self.hung = True
            self.kill()


def boot(
    kernel: Kernel,
    initrd: Path,
    share: Path,
    words: Sequence[str],
    timeout: float,
    console_log: Path,
    *,
    rootfs: Path | None = None,
    hostfwd: Sequence[tuple[int, int]] = (),
    echo: bool = VERBOSE,
    first_marker_s: float = T_FIRST_MARKER,
) -> BootResult:
    """Boot once, non-interactively, until the guest powers off or ``timeout`` expires.

    A guest that prints no marker within ``first_marker_s`` is killed as hung.
    """
    cmd = qemu_command(kernel, initrd, share, words, rootfs=rootfs, hostfwd=hostfwd)
    guest = Guest(cmd, console_log, echo)
    guest.kill_if_silent(min(first_marker_s, timeout))
    return guest.wait(timeout)


def _words(**kw: object) -> list[str]:
    """Kernel command-line words ``dmaprof.KEY=VALUE`` read by the guest's /init."""
    out = []
    for k, v in kw.items():
        if v is None or v == "":
            continue
        if isinstance(v, float):
            v = f"{v:g}"
        out.append(f"dmaprof.{k}={v}")
    return out


def boot_with_retry(
    kernel: Kernel,
    initrd: Path,
    share: Path,
    words: Sequence[str],
    timeout: float,
    *,
    done_marker: str = "done",
    reset: Sequence[Path] = (),
    rootfs: Path | None = None,
    hostfwd: Sequence[tuple[int, int]] = (),
) -> tuple[BootResult, list[dict[str, Any]]]:
    """Boot; after an Oops/panic or an early-boot hang, clear ``reset`` and boot once more."""
    attempts: list[dict[str, Any]] = []
    for attempt in (1, 2):
        log(f"booting {kernel.kver} (attempt {attempt}, timeout {timeout:.0f}s)")
        res = boot(
            kernel,
            initrd,
            share,
            words,
            timeout,
            share / "console.log",
            rootfs=rootfs,
            hostfwd=hostfwd,
        )
        ok = res.marker(done_marker) is not None and not res.timed_out
        attempts.append(
            {
                "attempt": attempt,
                "returncode": res.returncode,
                "timed_out": res.timed_out,
                "oops": res.oops,
                "hung": res.hung,
                "wall_s": res.wall_s,
                "ok": ok,
            }
        )
        if res.oops or res.hung:
            shutil.copy2(share / "console.log", share / f"console.attempt{attempt}.log")
        if ok or not (res.oops or res.hung) or attempt == 2:
            return res, attempts
        if res.hung:
            log(f"the guest printed nothing in {T_FIRST_MARKER:.0f}s (boot hang): retrying once")
        else:
            log("the guest kernel oopsed/panicked (known TCG flake): retrying once")
        for p in reset:
            shutil.rmtree(p, ignore_errors=True)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- scene


def run_scene(
    kernel: str = "6.12",
    snapshots: int = 2,
    gap_s: float = 3,
    collector: str | Path | None = None,
    out: str | Path | None = None,
    exporter: str | None = None,
    *,
    leak_ms: int = 300,
    settle_s: float = 0,
    collector_timeout_s: float = 60,
    timeout: float | None = None,
    readonly: bool = False,
) -> Path:
    """Boot ``kernel``, build the scene, take ``snapshots`` collector dumps; return the dir.

    ``readonly``: the collector runs in a chroot with no ``/tmp``, no ``TMPDIR`` and a
    read-only root apart from ``/data/w`` (a tmpfs): odd snapshots in ``/data/w``, even ones
    in ``/`` (nothing writable). ``out/snapN/cwd`` and ``out/snapN/w_after`` (the listing of
    ``/data/w`` afterwards) say which.

    ``collector`` is a POSIX sh script run in the guest as
    ``sh /data/local/tmp/collect.sh > out/snapN/dump 2> out/snapN/stderr``.
    ``exporter`` forces the exporter of the shared buffers (``system``, ``vgem``,
    ``udmabuf``); default: the first available of those. Raises VMError on failure; the
    result directory then still holds the console log for diagnosis.
    """
    if collector is None:
        raise VMError("run_scene needs collector=PATH (a POSIX sh script)")
    collector = Path(collector)
    if not collector.is_file():
        raise VMError(f"collector {collector} is not a file")
    if snapshots < 1:
        raise VMError("snapshots must be >= 1")
    t_start = time.monotonic()
    ensure_host_tools()
    k = fetch_kernel(kernel)
    t_kernel = time.monotonic()
    initrd = build_initramfs(k)
    t_initrd = time.monotonic()
    res_dir = Path(out) if out else Path(tempfile.mkdtemp(prefix=f"dmaprof-vm-{kernel}-"))
    res_dir.mkdir(parents=True, exist_ok=True)
    res_dir = res_dir.resolve()
    shutil.rmtree(res_dir / "out", ignore_errors=True)
    shutil.copy2(collector, res_dir / "collect.sh")
    words = _words(
        mode="scene",
        snaps=snapshots,
        gap=gap_s,
        leak_ms=leak_ms,
        exporter=exporter,
        settle=settle_s or None,
        ctimeout=collector_timeout_s,
        ro=1 if readonly else None,
    )
    if timeout is None:
        timeout = 90 + settle_s + snapshots * (gap_s + collector_timeout_s + 10)
    res, attempts = boot_with_retry(k, initrd, res_dir, words, timeout, reset=[res_dir / "out"])
    t_end = time.monotonic()
    info: dict[str, Any] = {
        "kernel": k.meta(),
        "initramfs": str(initrd),
        "collector": str(collector),
        "params": {
            "snapshots": snapshots,
            "gap_s": gap_s,
            "exporter": exporter,
            "leak_ms": leak_ms,
            "readonly": readonly,
        },
        "qemu": res.cmd,
        "attempts": attempts,
        "markers": [asdict(m) for m in res.markers],
        "host_s": {
            "fetch_kernel": round(t_kernel - t_start, 3),
            "initramfs": round(t_initrd - t_kernel, 3),
            "qemu": res.wall_s,
            "total": round(t_end - t_start, 3),
        },
        "timings": timings(res.markers),
    }
    (res_dir / "run.json").write_text(json.dumps(info, indent=1) + "\n")
    if res.marker("done") is None:
        tail = "\n".join(res.console.splitlines()[-25:])
        why = "timed out" if res.timed_out else f"qemu exited {res.returncode}"
        if res.hung:
            why = f"printed nothing in {T_FIRST_MARKER:.0f}s on its last boot"
        raise VMError(
            f"{kernel}: the guest did not finish ({why}; oops={res.oops}). "
            f"Console: {res_dir / 'console.log'}\n--- last lines ---\n{tail}"
        )
    err = res_dir / "out" / "error"
    if err.exists():
        raise VMError(f"{kernel}: guest reported: {err.read_text().strip()}")
    for n in range(1, snapshots + 1):
        if not (res_dir / "out" / f"snap{n}" / "dump").exists():
            raise VMError(f"{kernel}: snapshot {n} has no dump")
    log(f"{k.kver}: done in {info['host_s']['total']:.1f}s (qemu {res.wall_s:.1f}s) -> {res_dir}")
    return res_dir


def run_bench(
    kernel: str = "6.12",
    collector: str | Path | None = None,
    out: str | Path | None = None,
    *,
    procs: int = 500,
    bufs: int = 200,
    dmafds: int = 40,
    otherfds: int = 30,
    maps: int = 100,
    rounds: int = 5,
    timeout: float | None = None,
    probe: str | Path | None = None,
) -> Path:
    """Boot ``kernel`` with the scale scene (scale.c) and time the read floor (floor.c) and
    ``sh collect.sh`` interleaved, ``rounds`` times after one warm-up round; returns the
    result dir: ``out/bench.jsonl`` (one line per run: round, what, floor.c's ``time``
    figures), ``out/dump`` and ``out/floor.out`` (the last run of each), ``out/floor.summary``
    (what the floor read: procs, fds, dmabuf_fds, ...). ``probe``: a sh script run in the
    guest after the rounds (the scene still up), its output in ``out/probe.log``."""
    if collector is None or not Path(collector).is_file():
        raise VMError(f"run_bench needs collector=PATH (a POSIX sh script), got {collector}")
    ensure_host_tools()
    k = fetch_kernel(kernel)
    initrd = build_initramfs(k)
    res_dir = Path(out) if out else Path(tempfile.mkdtemp(prefix=f"dmaprof-bench-{kernel}-"))
    res_dir.mkdir(parents=True, exist_ok=True)
    res_dir = res_dir.resolve()
    shutil.rmtree(res_dir / "out", ignore_errors=True)
    shutil.copy2(collector, res_dir / "collect.sh")
    (res_dir / "probe.sh").unlink(missing_ok=True)
    if probe is not None:
        shutil.copy2(probe, res_dir / "probe.sh")
    words = _words(
        mode="bench",
        procs=procs,
        bufs=bufs,
        dmafds=dmafds,
        otherfds=otherfds,
        maps=maps,
        rounds=rounds,
    )
    if timeout is None:
        timeout = 180 + (rounds + 1) * 120
    res, attempts = boot_with_retry(k, initrd, res_dir, words, timeout, reset=[res_dir / "out"])
    info = {"kernel": k.meta(), "attempts": attempts, "markers": [asdict(m) for m in res.markers]}
    (res_dir / "run.json").write_text(json.dumps(info, indent=1) + "\n")
    err = res_dir / "out" / "error"
    if err.exists():
        raise VMError(f"{kernel} bench: guest reported: {err.read_text().strip()}")
    if res.marker("done") is None or not (res_dir / "out" / "bench.jsonl").exists():
        tail = "\n".join(res.console.splitlines()[-25:])
        raise VMError(f"{kernel} bench: the guest did not finish\n--- last lines ---\n{tail}")
    return res_dir


def timings(markers: Sequence[Marker]) -> dict[str, Any]:
    """Per-phase figures from the guest's markers (guest uptime and host wall clock)."""
    by = {m.name: m for m in markers}
    t: dict[str, Any] = {}
    if "shell" in by:
        t["boot_guest_uptime_s"] = by["shell"].guest_uptime
        t["boot_host_s"] = by["shell"].host_s
    if "modules" in by and "shell" in by:
        t["modules_s"] = round(by["modules"].guest_uptime - by["shell"].guest_uptime, 3)
    if "ready" in by and "modules" in by:
        t["scene_s"] = round(by["ready"].guest_uptime - by["modules"].guest_uptime, 3)
    snaps = []
    for m in markers:
        if m.name.startswith("snap") and m.name.endswith("_end"):
            start = by.get(m.name[: -len("_end")] + "_start")
            if start:
                snaps.append(round(m.guest_uptime - start.guest_uptime, 3))
    if snaps:
        t["collector_s"] = snaps
    if "done" in by:
        t["done_guest_uptime_s"] = by["done"].guest_uptime
        t["done_host_s"] = by["done"].host_s
    return t


def run_boot(kernel: str = "6.12", out: str | Path | None = None) -> dict[str, Any]:
    """Boot to the /init shell, load modules, power off: the boot-time measurement."""
    ensure_host_tools()
    k = fetch_kernel(kernel)
    initrd = build_initramfs(k)
    res_dir = Path(out or tempfile.mkdtemp(prefix=f"dmaprof-vm-boot-{kernel}-")).resolve()
    res_dir.mkdir(parents=True, exist_ok=True)
    res, attempts = boot_with_retry(k, initrd, res_dir, _words(mode="boot"), 120)
    t = timings(res.markers)
    t.update(wall_s=res.wall_s, attempts=attempts, kver=k.kver, dir=str(res_dir))
    if res.marker("done") is None:
        raise VMError(f"boot of {k.kver} did not finish; see {res_dir / 'console.log'}")
    return t


def run_shell(kernel: str = "6.12", share: str | Path | None = None, scene: bool = True) -> int:
    """Interactive serial console (Ctrl-A X quits qemu); the scene is started first."""
    ensure_host_tools()
    k = fetch_kernel(kernel)
    initrd = build_initramfs(k)
    sh = Path(share or tempfile.mkdtemp(prefix="dmaprof-vm-shell-")).resolve()
    sh.mkdir(parents=True, exist_ok=True)
    words = _words(mode="shell", scene=1 if scene else 0)
    cmd = qemu_command(k, initrd, sh, words, interactive=True)
    log(f"share {sh}; quit with Ctrl-A X")
    return subprocess.call(cmd)


# --------------------------------------------------------------------------- emulator mode


def build_rootfs(mirror: str = "http://deb.debian.org/debian") -> Path:
    """A debootstrap'ed Debian 12 tree with python3, cached; shared read-only over 9p."""
    ensure_host_tools(emu=True)
    if os.geteuid() != 0:
        raise VMError("debootstrap needs root")
    root = cache_dir() / "rootfs" / f"bookworm-python3-{CACHE_LAYOUT}"
    if (root / ".complete").exists():
        return root
    with cache_lock("rootfs.lock"):
        if (root / ".complete").exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"debootstrap bookworm -> {root} (about 30-60 s)")
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3-minimal",
                "bookworm",
                tmp,
                mirror,
            ],
            900,
        )
        log("apt-get install python3 in the chroot")
        run(
            [
                "chroot",
                tmp,
                "/usr/bin/env",
                "DEBIAN_FRONTEND=noninteractive",
                "apt-get",
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "python3",
            ],
            600,
        )
        run(["chroot", tmp, "apt-get", "clean"], 120, check=False)
        for d in ("mnt/host", "data/local/tmp", "run/dmaprof"):
            (tmp / d).mkdir(parents=True, exist_ok=True)
        (tmp / ".complete").touch()
        tmp.rename(root)
    return root


class EmuSession:
    """A guest running a python3 script in the rootfs chroot, a host port forwarded to it.

    ``wait_ready()`` returns once the script created ``/mnt/host/emu/READY`` (the share),
    which it should do after binding its port; ``stop()`` kills qemu. Use as a context
    manager. ``share`` holds ``console.log`` and ``out/emu.log`` (the script's output).
    """

    def __init__(self, guest: Guest, share: Path, hostport: int) -> None:
        self.guest = guest
        self.share = share
        self.hostport = hostport
        self._ctl_n = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.hostport}"

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        ready = self.share / "emu" / "READY"
        while not ready.exists():
            if self.guest.proc.poll() is not None or self.guest.marker("failed"):
                raise VMError(f"the guest stopped before the script was ready: {self.why()}")
            if time.monotonic() > deadline:
                raise VMError(
                    f"the script did not create {ready} within {timeout:.0f}s: {self.why()}"
                )
            time.sleep(0.2)

    def why(self) -> str:
        """What went wrong, for an error message: the guest's error, the script's output,
        the console's last lines."""
        parts = [f"share {self.share}"]
        err = self.share / "out" / "error"
        if err.exists():
            parts.append(f"guest error: {err.read_text().strip()}")
        log_ = self.share / "out" / "emu.log"
        if log_.exists():
            tail = log_.read_text(errors="replace").splitlines()[-10:]
            parts.append("--- script output (last lines) ---\n" + "\n".join(tail))
        parts.append("--- console (last lines) ---\n" + "\n".join(self.guest.tail(20)))
        return "\n".join(parts)

    # -- the scene's leaker, paused on request (init.sh emu_control)
    def _control(self, what: str, timeout: float) -> Path:
        ctl = self.share / "emu" / "ctl"
        ctl.mkdir(parents=True, exist_ok=True)
        self._ctl_n += 1
        ident = f"{what}-{self._ctl_n}"
        ack = ctl / f"{ident}.ack"
        tmp = ctl / f".{ident}.tmp"
        tmp.write_text(what + "\n")
        tmp.rename(ctl / f"{ident}.req")  # atomic: the guest never reads half a request
        deadline = time.monotonic() + timeout
        while not ack.exists():
            if self.guest.proc.poll() is not None:
                raise VMError(f"the guest exited while asked to {what}: {self.why()}")
            if time.monotonic() > deadline:
                raise VMError(
                    f"the guest did not answer '{what}' within {timeout:.0f}s "
                    "(was it started with scene=False?)"
                )
            time.sleep(0.05)
        answer = ack.read_text().strip()
        if answer != "ok":
            raise VMError(f"the guest could not {what} the scene: {answer}")
        return ctl / f"{ident}.gt"

    def pause_scene(self, timeout: float = 30) -> Path:
        """Stop the leaker (SIGUSR1, acknowledged) and return the ground-truth directory
        (``gt-*.json``, ``roles``, ``scene.json``) the guest copied while it is stopped."""
        gt = self._control("pause", timeout)
        if not (gt / "roles").exists():
            raise VMError(f"the guest paused the scene but left no ground truth in {gt}")
        return gt

    def resume_scene(self, timeout: float = 30) -> None:
        """Let the leaker allocate again (SIGUSR2, acknowledged)."""
        self._control("resume", timeout)

    @contextlib.contextmanager
    def scene_paused(self, timeout: float = 30) -> Iterator[Path]:
        """``with s.scene_paused() as gt_dir:`` the scene holds still inside the block."""
        gt = self.pause_scene(timeout)
        try:
            yield gt
        finally:
            if self.guest.proc.poll() is None:
                self.resume_scene(timeout)

    def stop(self) -> BootResult:
        self.guest.kill()
        return self.guest.wait(5)

    def __enter__(self) -> EmuSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


EMULATOR_SCAN_PORTS = range(5554, 5586)  # the adb server probes these for emulators


def free_port() -> int:
    """A free TCP port on 127.0.0.1 outside adb's emulator-scan range."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in EMULATOR_SCAN_PORTS:
            return port
    raise VMError("no free TCP port")


def start_emu(
    script: str | Path,
    kernel: str = "6.12",
    hostport: int = 0,
    guestport: int = 7555,
    share: str | Path | None = None,
    *,
    scene: bool = True,
    args: Sequence[str] = (),
    timeout: float = 3600,
    leak_ms: int = 300,
    chroot: bool = True,
) -> EmuSession:
    """Boot with user networking and start ``python3 script args`` in the rootfs chroot.

    The host's 127.0.0.1:hostport (0: a free port, see ``EmuSession.address``) is forwarded
    to the guest's guestport, so an adb daemon written in Python that listens there on
    0.0.0.0 is reachable with ``adb connect 127.0.0.1:hostport``. Avoid 5554-5585 on both
    sides: the adb server scans them for emulators.

    The script runs as root in the chroot with ``DMAPROF_EMU_PORT`` set and the share at
    /mnt/host (the script and the ``*.py`` files next to it are copied to /mnt/host/emu/).
    The guest's /proc, /sys, /dev and /run are bound in, so it sees the scene's processes
    and dma-bufs. With ``chroot=False`` the script runs in the guest's own root instead
    (the initramfs, busybox applets in /system/bin as on a phone), with the rootfs's python3
    started through the rootfs's dynamic loader: an adb daemon then serves the guest's real
    /, and its shell commands run with the guest's busybox. The scene runs unless
    ``scene=False``; its leaker keeps allocating (``leak_ms``) except between
    ``EmuSession.pause_scene()`` and ``resume_scene()``. qemu is killed after ``timeout``
    seconds at most. An Oops/panic or a hang before the script starts is retried once.
    """
    ensure_host_tools(emu=True)
    k = fetch_kernel(kernel)
    initrd = build_initramfs(k)
    rootfs = build_rootfs()
    hostport = hostport or free_port()
    sh = Path(share or tempfile.mkdtemp(prefix="dmaprof-vm-emu-")).resolve()
    emu = sh / "emu"
    emu.mkdir(parents=True, exist_ok=True)
    script = Path(script).resolve()
    for py in script.parent.glob("*.py"):  # so that the script can import its siblings
        shutil.copy2(py, emu / py.name)
    shutil.copy2(script, emu / script.name)
    (emu / "script").write_text(script.name + "\n")
    (emu / "args").write_text("".join(f"{a}\n" for a in args))
    words = _words(
        mode="emu",
        scene=1 if scene else 0,
        port=guestport,
        leak_ms=leak_ms,
        emu_chroot=1 if chroot else 0,
    )
    cmd = qemu_command(k, initrd, sh, words, rootfs=rootfs, hostfwd=[(hostport, guestport)])
    for attempt in (1, 2):
        (sh / "emu" / "READY").unlink(missing_ok=True)
        shutil.rmtree(sh / "out", ignore_errors=True)
        shutil.rmtree(sh / "emu" / "ctl", ignore_errors=True)
        log(f"booting {k.kver} in emulator mode (attempt {attempt}), port {hostport}")
        guest = Guest(cmd, sh / "console.log")
        threading.Thread(target=guest.wait, args=(timeout,), daemon=True).start()
        if guest.wait_marker(["emu_start", "failed"], 120) is not None or attempt == 2:
            break
        if guest.reached_init() and not guest.oopsed_or_exited():
            break
        log("the guest hung, oopsed or died before the script started: retrying once")
        guest.kill()
    return EmuSession(guest, sh, hostport)


def run_emu(
    script: str | Path,
    kernel: str = "6.12",
    hostport: int = 0,
    guestport: int = 7555,
    share: str | Path | None = None,
    timeout: float = 3600,
    scene: bool = True,
    args: Sequence[str] = (),
    leak_ms: int = 300,
    chroot: bool = True,
) -> BootResult:
    """Blocking variant of :func:`start_emu`: returns when the script exits (the guest
    then powers off) or ``timeout`` expires."""
    sess = start_emu(
        script,
        kernel,
        hostport,
        guestport,
        share,
        scene=scene,
        args=args,
        timeout=timeout,
        leak_ms=leak_ms,
        chroot=chroot,
    )
    log(f"guest running; forwarded {sess.address}; script output in {sess.share / 'out'}")
    print(f"forwarded: {sess.address}", flush=True)
    return sess.guest.wait(timeout)


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="run.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("scene", help="boot, build the scene, take collector snapshots")
    p.add_argument("--kernel", default="6.12", choices=sorted(SERIES))
    p.add_argument("--snapshots", type=int, default=2)
    p.add_argument("--gap", type=float, default=3.0, help="seconds between snapshots")
    p.add_argument("--collector", required=True, help="POSIX sh collector script")
    p.add_argument("--out", help="result directory (default: a new temp dir)")
    p.add_argument("--exporter", choices=["system", "vgem", "udmabuf"])
    p.add_argument("--leak-ms", type=int, default=300)
    p.add_argument("--timeout", type=float)

    p = sub.add_parser("boot", help="boot to the /init shell and power off (timing)")
    p.add_argument("--kernel", default="6.12", choices=sorted(SERIES))
    p.add_argument("--out")

    p = sub.add_parser("shell", help="interactive guest shell on the serial console")
    p.add_argument("--kernel", default="6.12", choices=sorted(SERIES))
    p.add_argument("--share")
    p.add_argument("--no-scene", action="store_true")

    p = sub.add_parser("fetch", help="download and prepare the kernels")
    p.add_argument("--kernel", choices=sorted(SERIES), action="append")

    p = sub.add_parser("initramfs", help="build (or find cached) initramfs images")
    p.add_argument("--kernel", choices=sorted(SERIES), action="append")

    sub.add_parser("rootfs", help="debootstrap the python3 rootfs for the emulator mode")

    p = sub.add_parser(
        "emu",
        help="run a python3 script in the guest, port forwarded",
        description="run.py emu [options] SCRIPT [-- ARGS...]: boot with user networking, "
        "forward 127.0.0.1:HOSTPORT to the guest's GUESTPORT and run python3 SCRIPT ARGS in "
        "the debootstrap'ed rootfs; returns when the script exits.",
    )
    p.add_argument("script")
    p.add_argument("args", nargs="*", help="arguments for the script (after --)")
    p.add_argument("--leak-ms", type=int, default=300)
    p.add_argument("--kernel", default="6.12", choices=sorted(SERIES))
    p.add_argument("--hostport", type=int, default=0, help="default: a free port")
    p.add_argument("--guestport", type=int, default=7555)
    p.add_argument("--share")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--no-scene", action="store_true")
    p.add_argument(
        "--no-chroot",
        action="store_true",
        help="run the script in the guest's own root (busybox in /system/bin), with the "
        "rootfs's python3 started by its dynamic loader",
    )

    sub.add_parser("clean", help="delete the cache directory")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run atexit: kill qemu

    try:
        if a.cmd == "scene":
            d = run_scene(
                a.kernel,
                a.snapshots,
                a.gap,
                a.collector,
                a.out,
                a.exporter,
                leak_ms=a.leak_ms,
                timeout=a.timeout,
            )
            print(d)
            print(json.dumps(json.loads((d / "run.json").read_text())["timings"]))
        elif a.cmd == "boot":
            print(json.dumps(run_boot(a.kernel, a.out), indent=1))
        elif a.cmd == "shell":
            return run_shell(a.kernel, a.share, scene=not a.no_scene)
        elif a.cmd in ("fetch", "initramfs"):
            ensure_host_tools()
            for s in a.kernel or sorted(SERIES):
                k = fetch_kernel(s)
                print(f"{s}: {k.package} ({k.kver}) {k.dir}")
                if a.cmd == "initramfs":
                    print(f"  {build_initramfs(k)}")
        elif a.cmd == "rootfs":
            print(build_rootfs())
        elif a.cmd == "emu":
            res = run_emu(
                a.script,
                a.kernel,
                a.hostport,
                a.guestport,
                a.share,
                a.timeout,
                scene=not a.no_scene,
                args=a.args,
                leak_ms=a.leak_ms,
                chroot=not a.no_chroot,
            )
            return 0 if res.marker("done") else 1
        elif a.cmd == "clean":
            shutil.rmtree(cache_dir(), ignore_errors=True)
    except VMError as exc:
        print(f"run.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
