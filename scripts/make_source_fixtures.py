# ruff: noqa: UP031  (C printf layouts are the point of this script)
"""Write fixtures/dmabuf_dump/*.txt and fixtures/bugreports/*.txt.

The layouts are AOSP's exact printf formats (libdmabufinfo ``dmabuf_output_helper.h``,
``dmabuf_dump.cpp``; dumpstate's ``PrintHeader`` and ``RunCommand`` headers; toybox ``ps``;
``dumpsys meminfo``), as described in android-tools.md §1.4-1.5 and §2. The *worlds* (which
process holds which buffer) are small and chosen so that every figure can be computed by hand;
the tests in tests/sources/ write that arithmetic down. Real excerpts are copied verbatim by
hand (see the headers of the copied files), not generated here.

Run: python scripts/make_source_fixtures.py  (rewrites the generated files only)
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DUMPS = REPO / "fixtures" / "dmabuf_dump"
REPORTS = REPO / "fixtures" / "bugreports"


@dataclass
class Buf:
    inode: int
    size: int
    exporter: str
    name: str
    refs: dict[int, tuple[int, int]] = field(default_factory=dict)  # pid -> (fds, maps)

    @property
    def pids(self) -> list[int]:
        return sorted(self.refs)

    def pss(self) -> int:
        return self.size // len(self.refs) if self.refs else 0


@dataclass
class World:
    comm: dict[int, str]
    bufs: list[Buf]
    order: list[int]  # order of the per-process blocks (the tool's hash order)


def _held(world: World) -> list[Buf]:
    return [b for b in world.bufs if b.refs]


# ---------------------------------------------------------------------------- dmabuf_dump


def default_view(
    world: World, *, exporter: bool, warning: str | None = None, exported_kb: int | None = None
) -> str:
    out: list[str] = []
    total_rss = total_pss = 0
    for pid in world.order:
        out.append("%16s:%-5d\n" % (world.comm[pid], pid))
        if exporter:
            out.append(
                "%22s %16s %16s %16s %16s %22s\n"
                % ("Name", "Rss", "Pss", "nr_procs", "Inode", "Exporter")
            )
        else:
            out.append("%22s %16s %16s %16s %16s\n" % ("Name", "Rss", "Pss", "nr_procs", "Inode"))
        rss = pss = 0
        for b in sorted((b for b in world.bufs if pid in b.refs), key=lambda b: b.inode):
            name = b.name or "<unknown>"
            if exporter:
                out.append(
                    "%22s %13d kB %13d kB %16d %16d  %22s\n"
                    % (name, b.size // 1024, b.pss() // 1024, len(b.refs), b.inode, b.exporter)
                )
            else:
                out.append(
                    "%22s %13d kB %13d kB %16d %16d\n"
                    % (name, b.size // 1024, b.pss() // 1024, len(b.refs), b.inode)
                )
            rss += b.size
            pss += b.pss()
        out.append("%22s %13d kB %13d kB %16s\n" % ("PROCESS TOTAL", rss // 1024, pss // 1024, ""))
        out.append("----------------------\n")
        total_rss += rss
        total_pss += pss
    userspace = sum(b.size for b in _held(world))
    if exported_kb is None:
        kernel_rss = 0
        out.append(
            warning or "Warning: Could not get total exported dmabufs. Kernel size will be 0.\n"
        )
    else:
        kernel_rss = exported_kb * 1024 - userspace
    out.append(
        "dmabuf total: %d kB kernel_rss: %d kB userspace_rss: %d kB userspace_pss: %d kB\n "
        % (
            (userspace + kernel_rss) // 1024,
            kernel_rss // 1024,
            total_rss // 1024,
            total_pss // 1024,
        )
    )
    return "".join(out)


def default_csv(world: World, exported_kb: int) -> str:
    out: list[str] = []
    total_rss = total_pss = 0
    for pid in world.order:
        out.append("\t%s:%d\n" % (world.comm[pid], pid))
        out.append('"Name","Rss(kB)","Pss(kB)","nr_procs","Inode","Exporter"\n')
        rss = pss = 0
        for b in sorted((b for b in world.bufs if pid in b.refs), key=lambda b: b.inode):
            out.append(
                '"%s",%d,%d,%d,%d,%s\n'
                % (
                    b.name or "<unknown>",
                    b.size // 1024,
                    b.pss() // 1024,
                    len(b.refs),
                    b.inode,
                    b.exporter,
                )
            )
            rss += b.size
            pss += b.pss()
        out.append("\nPROCESS TOTAL\n")
        out.append('"Rss total(kB)","Pss total(kB)"\n')
        out.append("%d,%d\n" % (rss // 1024, pss // 1024))
        out.append("----------------------\n")
        total_rss += rss
        total_pss += pss
    userspace = sum(b.size for b in _held(world))
    kernel_rss = exported_kb * 1024 - userspace
    out.append("\tTOTALS\n")
    out.append('"dmabuf total (kB)","kernel_rss (kB)","userspace_rss (kB)","userspace_pss (kB)"\n')
    out.append(
        "%d,%d,%d,%d\n"
        % (
            (userspace + kernel_rss) // 1024,
            kernel_rss // 1024,
            total_rss // 1024,
            total_pss // 1024,
        )
    )
    return "".join(out)


def per_buffer_stats(world: World, *, csv: bool = False) -> str:
    sep = "-----------------------"
    out = [f"\n\n{sep} DMA-BUF per-buffer stats {sep}\n"]
    if csv:
        out.append('"Dmabuf Inode","Size(bytes)","Exporter Name"\n')
        out += ['%d,%d,"%s"\n' % (b.inode, b.size, b.exporter) for b in world.bufs]
    else:
        out.append("    Dmabuf Inode |     Size(bytes) |    Exporter Name                    |\n")
        out += ["%16d |%16d | %16s \n" % (b.inode, b.size, b.exporter) for b in world.bufs]
    out.append(f"\n\n{sep} DMA-BUF exporter stats {sep}\n")
    exporters: dict[str, tuple[int, int]] = {}
    for b in world.bufs:
        c, s = exporters.get(b.exporter, (0, 0))
        exporters[b.exporter] = (c + 1, s + b.size)
    if csv:
        out.append('"Exporter Name","Total Count","Total Size(bytes)"\n')
        out += ['"%s",%d,%d\n' % (e, c, s) for e, (c, s) in sorted(exporters.items())]
    else:
        out.append("      Exporter Name              | Total Count |     Total Size(bytes)   |\n")
        out += ["%32s | %12d| %d\n" % (e, c, s) for e, (c, s) in sorted(exporters.items())]
    out.append(f"\n\n{sep} DMA-BUF total stats {sep}\n")
    total = sum(b.size for b in world.bufs)
    if csv:
        out.append('"Total DMA-BUF count","Total DMA-BUF size(bytes)"\n')
        out.append("%d,%d\n" % (len(world.bufs), total))
    else:
        out.append(
            "Total DMA-BUF count: %d, Total DMA-BUF size(bytes): %d\n" % (len(world.bufs), total)
        )
    return "".join(out)


def table(world: World, *, csv: bool = False, legacy: bool = False) -> str:
    held = _held(world)
    pids = sorted({p for b in held for p in b.refs})
    out = ["\n----------------------- DMA-BUF Table buffer x process --------------------------\n"]
    if csv:
        out.append('"Dmabuf Inode","Size(kB)","Fd Ref Counts","Map Ref Counts"')
        out += [',"%s:%d"' % (world.comm[p], p) for p in pids]
    elif legacy:
        out.append("    Dmabuf Inode |            Size |      Ref Counts |")
        out += ["%16s:%-5d |" % (world.comm[p], p) for p in pids]
    else:
        out.append("    Dmabuf Inode |            Size |   Fd Ref Counts |  Map Ref Counts |")
        out += ["%16s:%-5d |" % (world.comm[p], p) for p in pids]
    out.append("\n")
    per_pid: dict[int, int] = {}
    total = 0
    for b in held:
        fdp = sum(1 for f, _m in b.refs.values() if f)
        mpp = sum(1 for _f, m in b.refs.values() if m)
        if csv:
            out.append("%d,%d,%d,%d" % (b.inode, b.size // 1024, fdp, mpp))
        elif legacy:
            refs = sum(f + m for f, m in b.refs.values() if f)
            out.append("%16d |%13d kB |%16d |" % (b.inode, b.size // 1024, refs))
        else:
            out.append("%16d |%13d kB |%16d |%16d |" % (b.inode, b.size // 1024, fdp, mpp))
        for p in pids:
            f, m = b.refs.get(p, (0, 0))
            if legacy:
                # before 2021: a cell only for fd holders, fd and map refs summed
                out.append("%17d refs |" % (f + m) if f else "%22s |" % "--")
            elif csv:
                out.append(',"%d(%d) refs"' % (f, m) if f or m else ',""')
            else:
                out.append("%9d(%6d) refs |" % (f, m) if f or m else "%22s |" % "--")
            if f or m:
                per_pid[p] = per_pid.get(p, 0) + b.size // 1024
        total += b.size // 1024
        out.append("\n")
    out.append("------------------------------------\n")
    if csv:
        out.append('"Total Size(kB)",')
        out += ['"%s:%d size(kB)",' % (world.comm[p], p) for p in pids]
        out.append("\n%d" % total)
        out += [",%d" % per_pid[p] for p in pids]
    else:
        if legacy:
            out.append("%-16s  %13d kB |%16s |" % ("TOTALS", total, "n/a"))
        else:
            out.append("%-16s  %13d kB |%16s |%16s |" % ("TOTALS", total, "n/a", "n/a"))
        out += ["%19d kB |" % per_pid[p] for p in pids]
    out.append("\n")
    return "".join(out)


# ---------------------------------------------------------------------------- the worlds


def world_pixel(after: bool = False) -> World:
    """Android 16 phone (Pixel-like): exporters `system`, `system-uncached`."""
    comm = {
        812: "android.hardwar",
        1040: "surfaceflinger",
        2100: "ndroid.systemui",
        7001: "om.example.game",
    }
    sv = "SurfaceView - com.example.game#0"
    bufs = [
        Buf(101, 8355840, "system", "FramebufferSurface", {812: (1, 0), 1040: (1, 1)}),
        Buf(102, 8355840, "system", "FramebufferSurface", {812: (1, 0), 1040: (1, 1)}),
        Buf(201, 3932160, "system", sv, {1040: (1, 0), 7001: (1, 1)}),
        Buf(202, 3932160, "system", sv, {1040: (1, 0), 7001: (1, 1)}),
        Buf(301, 12288, "system", "", {7001: (0, 1)}),
        Buf(401, 1048677, "system", "GraphicBuffer", {2100: (1, 0), 7001: (2, 0)}),
        Buf(501, 2097152, "system-uncached", "camera-preview"),
        Buf(502, 65536, "system", ""),
    ]
    if after:
        # the game leaked three more SurfaceView buffers (fd only), freed 301
        bufs = [b for b in bufs if b.inode != 301]
        bufs += [Buf(i, 3932160, "system", sv, {7001: (1, 0)}) for i in (203, 204, 205)]
        bufs.sort(key=lambda b: b.inode)
    return World(comm, bufs, [7001, 1040, 2100, 812])


def world_mtk() -> World:
    """Android 13 MediaTek phone: exporters `mtk_mm`, `mtk_mm-uncached` (names and the
    surfaceflinger rows of samples/dmabuf_dump_default_mtk_bugreport_lamu_excerpt.txt)."""
    comm = {
        611: "android.hardwar",
        828: "surfaceflinger",
        977: "camerahalserver",
        5120: "droid.launcher3",
    }
    fb, gr = "FramebufferSurface", "Gralloc"
    bufs = [
        Buf(1, 4620288, "mtk_mm", fb, {611: (1, 0), 828: (1, 1)}),
        Buf(2, 4620288, "mtk_mm", fb, {611: (1, 0), 828: (1, 1)}),
        Buf(3, 4620288, "mtk_mm", fb, {611: (1, 0), 828: (1, 1)}),
        Buf(94221, 1642496, "mtk_mm", gr, {828: (1, 0), 977: (1, 1)}),
        Buf(97683, 4620288, "mtk_mm", gr, {828: (1, 0)}),
        Buf(130642, 4620288, "mtk_mm", gr, {828: (1, 0)}),
        Buf(136996, 4620288, "mtk_mm", gr, {828: (1, 0)}),
        Buf(140001, 2097664, "mtk_mm-uncached", gr, {977: (1, 0), 5120: (1, 1)}),
        Buf(150000, 1048576, "mtk_mm", ""),
    ]
    return World(comm, bufs, [5120, 828, 977, 611])


def world_android12() -> World:
    """Android 12 on a 5.4 kernel: no sysfs stats, so no -b and no exported total."""
    comm = {733: "surfaceflinger", 4410: "droid.launcher3"}
    bufs = [
        Buf(9001, 4194304, "ion", "FramebufferSurface", {733: (1, 1)}),
        Buf(9002, 1536000, "ion", "", {733: (1, 0), 4410: (1, 1)}),
        Buf(9003, 8192, "ion", "", {4410: (0, 1)}),
    ]
    return World(comm, bufs, [733, 4410])


def world_odd_sizes() -> World:
    """Buffers whose sizes are not whole kB (vendor exporters that do not round to pages):
    each row prints ``size / 1024`` rounded down, PROCESS TOTAL ``sum(size) / 1024``, so the
    rows of pid 3300 add up to less than its total."""
    comm = {3300: "camera.provider", 4400: "le.cameraviewer"}
    bufs = [
        Buf(7001, 4608, "vendor_cam", "meta", {3300: (1, 0)}),  # 4.5 kB
        Buf(7002, 10752, "vendor_cam", "meta", {3300: (1, 0)}),  # 10.5 kB
        Buf(7003, 1573632, "vendor_cam", "preview", {3300: (1, 0), 4400: (1, 1)}),  # 1536.75
        Buf(7004, 8192, "system", "", {4400: (0, 1)}),
    ]
    return World(comm, bufs, [3300, 4400])


# ---------------------------------------------------------------------------- bugreports


@dataclass
class Phone:
    props: dict[str, str]
    header: list[str]
    ps: list[tuple[str, str, int, int, int, str]]  # label, user, pid, tid, ppid, cmd
    meminfo: str
    uptime_ms: int
    # CPU INFO (toybox top -H): (pid, tid, user, cmd = thread name, name = argv[0])
    top: list[tuple[int, int, str, str, str]] = field(default_factory=list)


def _top(rows: Iterable[tuple[int, int, str, str, str]]) -> str:
    """dumpstate's ``top -b -n 1 -H -s 6 -o pid,tid,user,pr,ni,%cpu,s,virt,res,pcy,cmd,name``:
    toybox's column widths (PID 5, TID 5, USER 12, PR 2, NI 3, %CPU 4, S 1, VIRT 4, RES 4,
    PCY 3, CMD 15 left-aligned, NAME the rest), the sort column's header in brackets."""
    out = [
        "Threads: 2143 total,   1 running, 2142 sleeping,   0 stopped,   0 zombie\n",
        "  Mem:  7824120K total,  7422008K used,   402112K free,    12044K buffers\n",
        "  PID   TID USER         PR  NI[%CPU]S VIRT  RES PCY CMD             NAME\n",
    ]
    for k, (pid, tid, user, cmd, name) in enumerate(rows):
        out.append(
            "%5d %5d %-12s %2d %3d %4.1f %s %4s %4s %3s %-15s %s\n"
            % (pid, tid, user, 20, 0, 12.5 - k, "S", "12G", "40M", "fg", cmd, name)
        )
    return "".join(out)


def _props(props: dict[str, str]) -> str:
    return "".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items()))


def _ps(rows: Iterable[tuple[str, str, int, int, int, str]]) -> str:
    out = [
        "LABEL                          USER           PID   TID  PPID     VSZ    RSS WCHAN"
        "            ADDR S PRI  NI RTPRIO SCH  PCY     TIME CMD\n"
    ]
    for label, user, pid, tid, ppid, cmd in rows:
        out.append(
            "%-30s %-10s %7d %5d %5d %7d %6d %-16s %4d %s %3d %3d %6d %3d %4s %8s %s\n"
            % (
                label,
                user,
                pid,
                tid,
                ppid,
                12960428,
                40120,
                "do_epoll_wait",
                0,
                "S",
                19,
                -1,
                0,
                0,
                "fg",
                "00:00:12",
                cmd,
            )
        )
    return "".join(out)


def bugreport(phone: Phone, dmabuf: str | None, dmabuf_b: str | None, *, date: str) -> str:
    out = [
        "========================================================\n",
        f"== dumpstate: {date}\n",
        "========================================================\n",
        "\n",
        *phone.header,
        "\n",
        "------ MEMORY INFO (/proc/meminfo) ------\n",
        "MemTotal:        7824120 kB\nMemFree:          402112 kB\n\n",
    ]
    if phone.top:
        out += [
            "------ CPU INFO (top -b -n 1 -H -s 6 -o "
            "pid,tid,user,pr,ni,%cpu,s,virt,res,pcy,cmd,name) ------\n",
            _top(phone.top),
            "------ 0.187s was the duration of 'CPU INFO' ------\n",
        ]
    out += [
        "------ PROCESSES AND THREADS (ps -A -T -Z -O pri,nice,rtprio,sched,pcy,time) ------\n",
        _ps(phone.ps),
        "\n",
    ]
    if dmabuf is not None:
        out += ["------ Dmabuf dump (dmabuf_dump) ------\n", dmabuf]
        out.append("------ 0.612s was the duration of 'Dmabuf dump' ------\n")
    if dmabuf_b is not None:
        out += [
            "------ Dmabuf per-buffer/per-exporter/per-device stats (dmabuf_dump -b) ------\n",
            dmabuf_b,
            "\n",
        ]
    out += [
        "------ SYSTEM PROPERTIES (getprop) ------\n",
        _props(phone.props),
        "------ 0.101s was the duration of 'SYSTEM PROPERTIES' ------\n",
        "------ DUMPSYS HIGH (/system/bin/dumpsys -T 250 --priority HIGH) ------\n",
        "-------------------------------------------------------------------------------\n",
        "DUMP OF SERVICE HIGH meminfo:\n",
        "Applications Memory Usage (in Kilobytes):\n",
        f"Uptime: {phone.uptime_ms - 61000} Realtime: {phone.uptime_ms}\n",
        "\n",
        phone.meminfo,
        "--------- 0.342s was the duration of dumpsys meminfo, ending at: " + date + "\n",
        "------ 0.402s was the duration of 'DUMPSYS HIGH' ------\n",
        "------ UPTIME (uptime) ------\n",
        " 10:15:31 up  2:13,  0 users,  load average: 4.10, 3.90, 3.80\n",
        "------ 0.002s was the duration of 'UPTIME' ------\n",
    ]
    return "".join(out)


def _meminfo_summary(lines: list[str], procs: Iterable[tuple[int, int, str]] = ()) -> str:
    by_process = "".join(
        "%12s: %s (pid %d%s)\n"
        % (f"{kb:,}K", name, pid, " / activities" if name.startswith("com.") else "")
        for kb, pid, name in procs
    )
    return (
        ("Total PSS by process:\n" + by_process + "\n" if by_process else "")
        + "Total PSS by category:\n    280,864K: .apk mmap\n    170,916K: Native\n\n"
        "Total RAM: 7,824,120K (status normal)\n"
        " Free RAM: 3,120,334K (  997,169K cached pss +   949,736K cached kernel + "
        "1,173,429K free)\n"
        + "".join(lines)
        + " Used RAM: 3,554,710K (2,668,598K used pss +   886,112K kernel)\n"
        " Lost RAM:   144,065K\n"
        "     ZRAM:    12,004K physical used for    40,000K in swap (3,911,736K total swap)\n"
        "   Tuning: 256 (large 512), oom   322,560K, restore limit   107,520K (high-end-gfx)\n"
    )


def pixel(after: bool) -> Phone:
    props = {
        "ro.product.model": "Pixel 9",
        "ro.product.manufacturer": "Google",
        "ro.product.device": "tokay",
        "ro.serialno": "4B211FDAQ00123",
        "ro.build.fingerprint": "google/tokay/tokay:16/BP2A.250605.031/13578456:user/release-keys",
        "ro.build.version.release": "16",
        "ro.build.version.sdk": "36",
        "ro.build.type": "user",
        "persist.sys.timezone": "Europe/Berlin",
        "ro.runtime.firstboot": "1772433240123",
    }
    header = [
        "Build: BP2A.250605.031\n",
        "Build fingerprint: 'google/tokay/tokay:16/BP2A.250605.031/13578456:user/release-keys'\n",
        "Bootloader: ripcurrentpro-16.2-13291556\n",
        "Radio: g5400i-250306-250411-B-13350311\n",
        "Network: (unknown)\n",
        "Module Metadata version: 351014000\n",
        "Android SDK version: 36\n",
        "SDK extensions: ad_services=16 r=16 s=16 t=16 u=16 v=16 \n",
        "Kernel: Linux version 6.1.124-android14-11-g2b3c4d5e6f70-ab13203047 (kleaf@build-host)"
        " (Android (11368308, +pgo, +bolt, +lto, +mlgo, based on r510928) clang version 18.0.0"
        " (https://android.googlesource.com/toolchain/llvm-project"
        " 477610d4d0d988e69dbc3fae4fe86bff3f07f2b5), LLD 18.0.0) #1 SMP PREEMPT"
        " Mon Mar  3 00:00:00 UTC 2025\n",
        "Command line: console=ttynull stack_depot_disable=on cgroup_disable=pressure\n",
        'Bootconfig: androidboot.hardware = "tokay"\n',
        "Uptime: up 0 weeks, 0 days, "
        + ("3 hours, 14 minutes" if after else "2 hours, 13 minutes")
        + "\n",
        "Bugreport format version: 2.0\n",
        "Dumpstate info: id=7 pid=20012 dry_run=0 parallel_run=1 args=-SV bugreport_mode=\n",
    ]
    ps = [
        ("u:r:init:s0", "root", 1, 1, 0, "init"),
        ("u:r:hal_graphics_composer_default:s0", "system", 812, 812, 1, "android.hardwar"),
        ("u:r:hal_graphics_composer_default:s0", "system", 812, 830, 1, "HwBinder:812_1"),
        ("u:r:surfaceflinger:s0", "system", 1040, 1040, 1, "surfaceflinger"),
        ("u:r:surfaceflinger:s0", "system", 1040, 1101, 1, "RenderEngine"),
        ("u:r:platform_app:s0:c512,c768", "u0_a194", 2100, 2100, 702, "ndroid.systemui"),
        ("u:r:untrusted_app:s0:c245,c256,c512,c768", "u0_a245", 7001, 7001, 702, "om.example.game"),
        ("u:r:untrusted_app:s0:c245,c256,c512,c768", "u0_a245", 7001, 7020, 702, "Jit thread pool"),
    ]
    mapped = 16320  # FramebufferSurface x2, mapped by surfaceflinger
    total_kb = 27148 if not after else 38656
    meminfo = _meminfo_summary(
        [
            f"DMA-BUF: {total_kb:>9,}K ({mapped:>9,}K mapped + "
            f"{total_kb - mapped:>9,}K unmapped)\n",
            f"DMA-BUF Heaps: {total_kb:>9,}K\n",
            "DMA-BUF Heaps pool:     4,096K\n",
            "      GPU:    12,345K (   11,000K dmabuf +     1,345K private)\n",
        ]
    )
    uptime_ms = (3 * 3600 + 14 * 60 + 5) * 1000 if after else (2 * 3600 + 13 * 60 + 42) * 1000
    top = [
        (7001, 7001, "u0_a245", "om.example.game", "com.example.game"),
        (7001, 7020, "u0_a245", "Jit thread pool", "com.example.game"),
        (1040, 1101, "system", "RenderEngine", "/system/bin/surfaceflinger"),
        (1040, 1040, "system", "surfaceflinger", "/system/bin/surfaceflinger"),
        (2100, 2100, "u0_a194", "ndroid.systemui", "com.android.systemui"),
        (
            812,
            812,
            "system",
            "android.hardwar",
            "/vendor/bin/hw/android.hardware.graphics.composer3-service.pixel",
        ),
        (1, 1, "root", "init", "/system/bin/init"),
    ]
    return Phone(props, header, ps, meminfo, uptime_ms, top)


def mtk() -> Phone:
    props = {
        "ro.product.model": "Redmi Note 12",
        "ro.product.manufacturer": "Xiaomi",
        "ro.product.device": "lamu",
        "ro.serialno": "lamu0a1b2c3d",
        "ro.build.fingerprint": "Redmi/lamu_global/lamu:13/TP1A.220624.014/V14.0.3.0.TMTMIXM:user/"
        "release-keys",
        "ro.build.version.release": "13",
        "ro.build.version.sdk": "33",
        "ro.build.type": "user",
        "persist.sys.timezone": "Asia/Shanghai",
    }
    header = [
        "Build: TP1A.220624.014\n",
        "Build fingerprint: 'Redmi/lamu_global/lamu:13/TP1A.220624.014/V14.0.3.0.TMTMIXM:user/"
        "release-keys'\n",
        "Bootloader: unknown\n",
        "Radio: MOLY.LR13.R1.MP.V238.P37,MOLY.LR13.R1.MP.V238.P37\n",
        "Network: (unknown)\n",
        "Module Metadata version: 330443000\n",
        "SDK extensions: ad_services=4 r=4 s=4 t=4 \n",
        "Kernel: Linux version 5.10.149-android12-9-o-g0ea8ea6d8f4e (build-user@build-host) "
        "(Android (7284624, based on r416183b) clang version 12.0.5) #1 SMP PREEMPT "
        "Fri Jun 2 10:00:00 CST 2023\n",
        "Command line: console=tty0 root=/dev/ram vmalloc=400M\n",
        "Uptime: up 0 weeks, 1 days, 4 hours, 7 minutes\n",
        "Bugreport format version: 2.0\n",
        "Dumpstate info: id=1 pid=15221 dry_run=0 parallel_run=1 args=-SV bugreport_mode=\n",
    ]
    ps = [
        ("u:r:init:s0", "root", 1, 1, 0, "init"),
        ("u:r:hal_graphics_composer_default:s0", "system", 611, 611, 1, "android.hardwar"),
        ("u:r:surfaceflinger:s0", "system", 828, 828, 1, "surfaceflinger"),
        ("u:r:surfaceflinger:s0", "system", 828, 845, 1, "binder:828_1"),
        ("u:r:mtk_hal_camera:s0", "cameraserver", 977, 977, 1, "camerahalserver"),
        ("u:r:priv_app:s0:c512,c768", "u0_a98", 5120, 5120, 712, "droid.launcher3"),
    ]
    meminfo = _meminfo_summary(
        [
            "DMA-BUF:    31,748K (   30,000K mapped +     1,748K unmapped)\n",
            "DMA-BUF Heaps:    31,748K\n",
            "DMA-BUF Heaps pool:    12,288K\n",
        ],
        [
            (312456, 1534, "system"),
            (150230, 5120, "com.android.launcher3"),
            (96120, 828, "surfaceflinger"),
            (80000, 977, "camerahalserver"),
            (20000, 611, "android.hardware.graphics.composer@2.1-service"),
        ],
    )
    return Phone(props, header, ps, meminfo, (1 * 86400 + 4 * 3600 + 7 * 60 + 12) * 1000)


def android12() -> Phone:
    props = {
        "ro.product.model": "Galaxy A52",
        "ro.product.manufacturer": "samsung",
        "ro.product.device": "a52q",
        "ro.serialno": "R58R12ABCDE",
        "ro.build.fingerprint": "samsung/a52qxx/a52q:12/SP1A.210812.016/A525FXXU4BVJB:user/"
        "release-keys",
        "ro.build.version.release": "12",
        "ro.build.version.sdk": "31",
        "ro.build.type": "user",
    }
    header = [
        "Build: SP1A.210812.016.A525FXXU4BVJB\n",
        "Build fingerprint: 'samsung/a52qxx/a52q:12/SP1A.210812.016/A525FXXU4BVJB:user/"
        "release-keys'\n",
        "Bootloader: A525FXXU4BVJB\n",
        "Radio: A525FXXU4BVJB\n",
        "Network: (unknown)\n",
        "Kernel: Linux version 4.19.157-perf+ (dpi@SWDH7617) (clang version 10.0.7) "
        "#1 SMP PREEMPT Mon Oct 10 12:00:00 KST 2022\n",
        "Command line: console=null androidboot.hardware=qcom\n",
        "Uptime: up 0 weeks, 0 days, 0 hours, 42 minutes\n",
        "Bugreport format version: 2.0\n",
        "Dumpstate info: id=3 pid=9921 dry_run=0 parallel_run=1 args=-SV bugreport_mode=\n",
    ]
    ps = [
        ("u:r:surfaceflinger:s0", "system", 733, 733, 1, "surfaceflinger"),
        ("u:r:priv_app:s0:c512,c768", "u0_a77", 4410, 4410, 690, "droid.launcher3"),
    ]
    meminfo = _meminfo_summary(["DMA-BUF:     5,612K (    5,604K mapped +         8K unmapped)\n"])
    return Phone(props, header, ps, meminfo, (42 * 60 + 3) * 1000)


HEADER = (
    "# generated by scripts/make_source_fixtures.py: AOSP's exact printf layouts "
    "(android-tools.md {ref}), a hand-made world; figures in tests/sources/\n"
)


def main() -> None:
    DUMPS.mkdir(parents=True, exist_ok=True)
    REPORTS.mkdir(parents=True, exist_ok=True)
    w = world_pixel()
    total_kb = sum(b.size for b in w.bufs) // 1024  # GetDmabufTotalExportedKb
    files = {
        DUMPS / "android16_default.txt": default_view(w, exporter=True, exported_kb=total_kb),
        DUMPS / "android16_a.txt": table(w),
        DUMPS / "android16_b.txt": per_buffer_stats(w),
        DUMPS / "android16_csv.txt": default_csv(w, total_kb),
        DUMPS / "android16_a_b_csv.txt": per_buffer_stats(w, csv=True)
        + "\n\n"
        + table(w, csv=True),
        DUMPS / "android13_default.txt": default_view(
            world_mtk(), exporter=False, exported_kb=32510464 // 1024
        ),
        DUMPS / "android11_a_legacy.txt": table(w, legacy=True),
        DUMPS / "android14_odd_sizes.txt": default_view(
            world_odd_sizes(), exporter=True, exported_kb=1560
        ),
        DUMPS / "android14_odd_sizes_csv.txt": default_csv(world_odd_sizes(), 1560),
        DUMPS / "android14_odd_sizes_b.txt": default_view(
            world_odd_sizes(), exporter=True, exported_kb=1560
        )
        + per_buffer_stats(world_odd_sizes()),
    }
    for path, text in files.items():
        path.write_text(HEADER.format(ref="§1.5") + text)
    wa = world_pixel(after=True)
    reports = {
        "bugreport-tokay-BP2A.250605.031-2026-03-02-10-15-30.txt": bugreport(
            pixel(False),
            default_view(w, exporter=True, exported_kb=total_kb),
            per_buffer_stats(w),
            date="2026-03-02 10:15:30",
        ),
        "bugreport-tokay-BP2A.250605.031-2026-03-02-11-15-53.txt": bugreport(
            pixel(True),
            default_view(wa, exporter=True, exported_kb=sum(b.size for b in wa.bufs) // 1024),
            per_buffer_stats(wa),
            date="2026-03-02 11:15:53",
        ),
        "bugreport-lamu-TP1A.220624.014-2025-06-03-21-40-07.txt": bugreport(
            mtk(),
            default_view(world_mtk(), exporter=False, exported_kb=32510464 // 1024),
            per_buffer_stats(world_mtk()),
            date="2025-06-03 21:40:07",
        ),
        "bugreport-a52q-SP1A.210812.016-2022-11-20-08-02-11.txt": bugreport(
            android12(),
            default_view(world_android12(), exporter=False),
            "Unable to read DMA-BUF sysfs stats from device\n",
            date="2022-11-20 08:02:11",
        ),
    }
    for name, text in reports.items():
        (REPORTS / name).write_text(text)


def zip_bugreport(txt: Path, dest: Path) -> Path:
    """A bugreport zip as `adb bugreport` writes it: the main text, main_entry.txt naming it,
    version.txt, and a few other members (tests build them from the .txt fixtures)."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("version.txt", "2.0")
        archive.writestr("dumpstate_board.txt", "------ board ------\n")
        archive.writestr("FS/proc/version", "Linux version ...\n")
        archive.writestr(txt.name, txt.read_bytes())
        archive.writestr("main_entry.txt", txt.name)
    return dest


if __name__ == "__main__":
    main()
