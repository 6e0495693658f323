"""The ``processes`` table: one row per pid the dump mentions, with what could be read of it
(``state``, ``fds_access``, ``fdinfo_access``, ``maps_access``) and its cgroup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import decode, uniq
from dmaprof.analyze.cgroups import process_cgroups
from dmaprof.analyze.proc import ProcInfo
from dmaprof.analyze.schema import PROCESSES
from dmaprof.capture.dump import Dump, DumpError

ACCESS = ["ok", "denied", "vanished", "none", "unknown"]


def _by_pid(errors: list[DumpError], want: tuple[str, ...] | None = None) -> dict[int, set[str]]:
    """pid -> reasons, for errors about ``/proc/<pid>/<want...>`` paths."""
    out: dict[int, set[str]] = {}
    for e in errors:
        if e.pid is None or e.path is None:
            continue
        if want is not None:
            rest = e.path.split("/", 3)[3] if e.path.count("/") >= 3 else ""
            if e.tid is not None:
                rest = rest.split("/", 2)[2] if rest.count("/") >= 2 else ""
            if not any(rest == w or rest.startswith(w + "/") for w in want):
                continue
        out.setdefault(e.pid, set()).add(e.reason)
    return out


def _access(reasons: set[str] | None, present: bool, default: str = "ok") -> str:
    if reasons:
        if "denied" in reasons:
            return "denied"
        if "vanished" in reasons:
            return "vanished"
    return default if present else "unknown"


CgroupOf = tuple[dict[int, tuple[str, str]], str | None]

#: the last cgroup lines seen and what they gave: the samples of a series repeat them (a
#: process seldom moves), and choosing the hierarchy is 6% of a small sample's analysis
_last_cgroups: tuple[pd.DataFrame, CgroupOf] | None = None


def cgroup_of(lines: pd.DataFrame) -> CgroupOf:
    """pid -> (cgroup path, source) in the hierarchy holding the process tree, and that
    hierarchy (dmaprof.analyze.cgroups). The caller must not change what it returns."""
    global _last_cgroups
    last = _last_cgroups
    if last is not None and last[0].equals(lines):
        return last[1]
    frame, hierarchy = process_cgroups(lines)
    paths = zip(frame["cgroup"].tolist(), frame["cgroup_source"].tolist(), strict=True)
    result = dict(zip(frame["pid"].tolist(), paths, strict=True)), hierarchy
    _last_cgroups = lines.copy(), result
    return result


@dataclass(frozen=True)
class _Errors:
    """pid -> error reasons, per what was being read."""

    proc: dict[int, set[str]]
    fd: dict[int, set[str]]
    fdinfo: dict[int, set[str]]
    maps: dict[int, set[str]]

    @classmethod
    def of(cls, dump: Dump) -> _Errors:
        return cls(
            proc=_by_pid(dump.errors_of("proc"), ("status",)),
            fd=_by_pid(dump.errors_of("fdlinks") + dump.errors_of("fdaccess"), ("fd",)),
            fdinfo=_by_pid(dump.errors_of("fdinfo")),
            maps=_by_pid(dump.errors_of("maps"), ("maps",)),
        )

    def pids(self) -> set[int]:
        return set(self.proc) | set(self.maps) | set(self.fd) | set(self.fdinfo)


def _collector_pids(collector_pid: int | None, ppid: dict[int, int]) -> set[int]:
    """The collector and its descendants."""
    collector: set[int] = set()
    if collector_pid is not None:
        collector.add(collector_pid)
        changed = True
        while changed:
            changed = False
            for p, pp in ppid.items():
                if pp in collector and p not in collector:
                    collector.add(p)
                    changed = True
    return collector


def _state(pid: int, info: ProcInfo, reasons: set[str] | None) -> str:
    if pid in info.status_read:
        return "ok"
    if reasons and "denied" in reasons:
        return "denied"
    return "vanished" if reasons else "unknown"


def _cmdline(pid: int, info: ProcInfo) -> tuple[bytes | None, str | None, str | None]:
    """(raw cmdline, shown with spaces, argv[0])."""
    cmd = info.cmdline.get(pid)
    if cmd is None and pid in info.status_read:
        cmd = b""  # read, but empty (kernel threads, zombies): grep prints no line
    if cmd is None:
        return None, None, None
    trimmed = cmd.rstrip(b"\0")
    argv0 = decode(trimmed.split(b"\0", 1)[0]) if trimmed else None
    return cmd, decode(trimmed.replace(b"\0", b" ")), argv0


def processes_table(
    dump: Dump,
    info: ProcInfo,
    refs: pd.DataFrame,
    fd_pids: set[int],
    fdaccess: set[int],
    fdaccess_present: bool,
    fdlinks_present: bool,
    fdinfo_present: bool,
    maps_present: bool,
    collector_pid: int | None,
    cg: dict[int, tuple[str, str]],
) -> pd.DataFrame:
    """One row per pid the dump mentions (PROCESSES)."""
    errors = _Errors.of(dump)
    ref_pid = refs["pid"].to_numpy(dtype=np.int64)
    pids = sorted(info.pids | set(uniq(ref_pid).tolist()) | fdaccess | errors.pids())
    fd_ref_pids = set(uniq(ref_pid[(refs["kind"] == "fd").to_numpy()]).tolist())
    collector = _collector_pids(collector_pid, info.ppid)
    rows: dict[str, list[Any]] = {c: [] for c in PROCESSES.names}
    for pid in pids:
        cmd, disp, argv0 = _cmdline(pid, info)
        ppid = info.ppid.get(pid)
        kth = info.kthread.get(pid)
        if kth is None:
            kth = pid == 2 or ppid == 2
        state = _state(pid, info, errors.proc.get(pid))
        fda = _access(errors.fd.get(pid), fdlinks_present or fdaccess_present)
        if pid in fdaccess:
            fda = "denied"
        if state == "vanished" and fda == "ok" and pid not in fd_pids:
            fda = "vanished"
        has_fd_refs = pid in fd_ref_pids
        fdi = _access(
            errors.fdinfo.get(pid),
            fdinfo_present or not has_fd_refs,
            "ok" if has_fd_refs else "none",
        )
        c = cg.get(pid)
        for col, value in (
            ("pid", pid), ("tgid", info.tgid.get(pid)), ("ppid", ppid),
            ("name", info.name.get(pid)), ("cmdline", cmd), ("cmdline_display", disp),
            ("argv0", argv0), ("uid", info.uid.get(pid)), ("euid", info.euid.get(pid)),
            ("start_time_ticks", info.start_time.get(pid)),
            ("cgroup", c[0] if c else None), ("cgroup_source", c[1] if c else None),
            ("is_kernel_thread", bool(kth)), ("is_collector", pid in collector),
            ("state", state), ("fds_access", fda), ("fdinfo_access", fdi),
            ("maps_access", _access(errors.maps.get(pid), maps_present)),
            ("kernel_dmabuf_rss_bytes", info.dmabuf_rss.get(pid)),
            ("kernel_dmabuf_pss_bytes", info.dmabuf_pss.get(pid)),
        ):  # fmt: skip
            rows[col].append(value)
    return _frame(rows, len(pids))


def _frame(rows: dict[str, list[Any]], n: int) -> pd.DataFrame:
    data: dict[str, Any] = dict(rows)
    data["pid"] = np.array(rows["pid"], dtype=np.int32)
    # a number no kernel can print (corrupt or hostile dump) becomes unknown, not a crash
    for col in ("tgid", "ppid", "uid", "euid"):
        data[col] = pd.array(_in_range(rows[col], 32), dtype="Int32")
    for col in ("start_time_ticks", "kernel_dmabuf_rss_bytes", "kernel_dmabuf_pss_bytes"):
        data[col] = pd.array(_in_range(rows[col], 64), dtype="Int64")
    for col in ("fds_access", "fdinfo_access", "maps_access"):
        data[col] = pd.Categorical(rows[col], categories=ACCESS)
    data["state"] = pd.Categorical(
        rows["state"], categories=["ok", "vanished", "denied", "unknown"]
    )
    data["cgroup_source"] = pd.Categorical(rows["cgroup_source"])
    return PROCESSES.frame(data, length=n)


def _in_range(values: list[Any], bits: int) -> list[Any]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1)
    return [v if v is None or low <= v < high else None for v in values]
