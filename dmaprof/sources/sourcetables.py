"""The tables of a ``dmabuf_dump`` source built from its parts: processes, references, apps,
pools and unparsed lines, and the charge of each holding under a policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.analyze.attribution import exact_split
from dmaprof.analyze.processes import ACCESS
from dmaprof.analyze.schema import APPS, PROCESSES, REFERENCES, UNPARSED
from dmaprof.analyze.totals import PoolRow, pools_frame
from dmaprof.analyze.uids import uid_kind, uid_name
from dmaprof.sources.bugreport import PsEntry
from dmaprof.sources.dmabuf_dump import DmabufDump


@dataclass
class Buffer:
    """One buffer as the views list it."""

    inode: int
    kb: int | None = None
    exact: int | None = None
    exporter: str | None = None
    name: str | None = None
    nr_procs: int = 0
    in_stats: bool = False


def charge_of(
    charge: str,
    ino: np.ndarray,
    size: np.ndarray,
    pss: np.ndarray,
    app: np.ndarray,
    svc: np.ndarray,
) -> np.ndarray:
    if charge == "shared" or ino.size == 0:
        return pss
    if charge == "full":
        return size.copy()
    starts = np.flatnonzero(np.r_[True, ino[1:] != ino[:-1]])
    gid = np.repeat(np.arange(starts.size), np.diff(np.append(starts, ino.size)))
    g_app = np.add.reduceat(app.astype(np.int64), starts)
    g_svc = np.add.reduceat(svc.astype(np.int64), starts)
    cs = np.cumsum(app.astype(np.int64))
    before = np.where(starts > 0, cs[np.maximum(starts - 1, 0)], 0)
    app_rank = cs - 1 - before[gid]
    client = ((g_app > 0) & (g_svc > 0))[gid]
    share = exact_split(size, g_app[gid], app_rank)
    return np.where(client, np.where(app, share, 0), pss).astype(np.int64)


#: TASK_COMM_LEN - 1: a comm this long may be cut (an app's comm keeps the last 15 bytes of
#: its name, ``om.example.game``; a native process's the first 15 of its executable's)
COMM_LEN = 15


def full_name(comm: str | None, candidate: str | None) -> str | None:
    """The full name (argv[0]'s basename) a process list gives for a pid, when it fits the
    comm dmabuf_dump printed: a pid reused between the two lists keeps its comm."""
    if not comm or not candidate or comm == "N/A":
        return None
    base = candidate.rsplit("/", 1)[-1]
    if base == comm or (len(comm) == COMM_LEN and (base.endswith(comm) or base.startswith(comm))):
        return base
    return None


def processes_table(
    pids: list[int],
    comm: dict[int, str],
    ps: dict[int, PsEntry],
    full: dict[int, list[tuple[str, str]]],
) -> pd.DataFrame:
    names = [comm.get(p) or (ps[p].name if p in ps else None) for p in pids]
    argv0 = [
        next((f for c, _w in full.get(p, []) if (f := full_name(n, c)) is not None), None)
        for p, n in zip(pids, names, strict=True)
    ]
    return PROCESSES.frame(
        {
            "pid": np.array(pids, dtype=np.int32),
            "ppid": pd.array([ps[p].ppid if p in ps else None for p in pids], dtype="Int32"),
            "name": names,
            "argv0": argv0,
            "uid": pd.array([ps[p].uid if p in ps else None for p in pids], dtype="Int32"),
            "cgroup_source": pd.Categorical([None] * len(pids)),
            "state": pd.Categorical(
                ["vanished" if n == "N/A" else "ok" for n in names],
                categories=["ok", "vanished", "denied", "unknown"],
            ),
            "fds_access": pd.Categorical(["unknown"] * len(pids), categories=ACCESS),
            "fdinfo_access": pd.Categorical(["unknown"] * len(pids), categories=ACCESS),
            "maps_access": pd.Categorical(["unknown"] * len(pids), categories=ACCESS),
        },
        length=len(pids),
    )


def references_table(
    pairs: list[tuple[int, int]],
    held: dict[tuple[int, int], list[int | None]],
    h_size: np.ndarray,
    bufs: dict[int, Buffer],
    split_known: bool,
) -> pd.DataFrame:
    """One row per fd and per mapping when ``-a`` split them; otherwise one row of kind
    ``unknown`` per holding (the process holds the buffer, by fd or mapping or both)."""
    pid: list[int] = []
    ino: list[int] = []
    kind: list[str] = []
    sizes: list[int] = []
    for (p, i), s in zip(pairs, h_size.tolist(), strict=True):
        fd, mp = held[(p, i)]
        if split_known and fd is not None and mp is not None:
            entries = ["fd"] * fd + ["map"] * mp
        else:
            entries = ["unknown"] * max(1, fd or 0)
        for k in entries:
            pid.append(p)
            ino.append(i)
            kind.append(k)
            sizes.append(s)
    n = len(pid)
    return REFERENCES.frame(
        {
            "pid": np.array(pid, dtype=np.int32),
            "kind": pd.Categorical(kind, categories=["fd", "map", "unknown"]),
            "inode": pd.array(ino, dtype="Int64"),
            "target": pd.Categorical(["dmabuf"] * n),
            "size_bytes": pd.array(
                [s if k != "map" else None for s, k in zip(sizes, kind, strict=True)],
                dtype="Int64",
            ),
            "size_source": pd.Categorical([None if k == "map" else "dmabuf_dump" for k in kind]),
            "exporter": pd.Categorical([bufs[i].exporter for i in ino]),
            "name": pd.Categorical([bufs[i].name for i in ino]),
        },
        length=n,
    )


def apps_table(
    usage: pd.DataFrame,
    owners: np.ndarray,
    holdings: pd.DataFrame,
    h_pj: np.ndarray,
    charge: str,
    display: list[Any],
    extra_rss: np.ndarray,
) -> pd.DataFrame:
    active = usage["buffers"].to_numpy() > 0
    sel = active & (owners >= 0)
    if not sel.any():
        return APPS.empty()
    h_owner = owners[h_pj] if len(holdings) else np.zeros(0, np.int64)
    hold = pd.DataFrame(
        {
            "owner": h_owner,
            "inode": holdings["inode"].to_numpy(dtype=np.int64),
            "size": holdings["size_bytes"].to_numpy(dtype=np.int64),
        }
    )
    hold = hold[hold["owner"] >= 0].drop_duplicates(["owner", "inode"])
    rss = hold.groupby("owner")["size"].sum()
    nbuf = hold.groupby("owner")["inode"].count()
    u = pd.DataFrame(
        {
            "owner": owners[sel],
            "pid": usage["pid"].to_numpy()[sel].astype(np.int64),
            "pss": usage["shared_pss_bytes"].to_numpy()[sel],
            "charged": usage["charged_bytes"].to_numpy()[sel],
        }
    )
    g = u.groupby("owner", sort=True)
    sums = g[["pss", "charged"]].sum()
    pids = g["pid"].agg(lambda s: tuple(sorted(int(x) for x in s)))  # type: ignore[type-var]
    owner_ids = sums.index.to_numpy(dtype=np.int64)
    names_of: dict[int, tuple[str, ...]] = {}
    shown = [d for d, on in zip(display, sel.tolist(), strict=True) if on]
    for o, n in zip(owners[sel].tolist(), shown, strict=True):
        if isinstance(n, str) and n:
            names_of[int(o)] = tuple(sorted({*names_of.get(int(o), ()), n}))
    # processes whose PROCESS TOTAL stands: what their rows do not show adds to the app
    extra = pd.Series(extra_rss[sel]).groupby(owners[sel]).sum()
    rss_sum = rss.reindex(owner_ids, fill_value=0) + extra.reindex(owner_ids, fill_value=0)
    rss_v = rss_sum.to_numpy(dtype=np.int64)
    frame = APPS.frame(
        {
            "uid": owner_ids.astype(np.int32),
            "user_id": (owner_ids // 100000).astype(np.int32),
            "app_id": (owner_ids % 100000).astype(np.int32),
            "kind": pd.Categorical(
                [uid_kind(int(x)) for x in owner_ids],
                categories=["app", "system", "isolated", "sdk_sandbox", "other"],
            ),
            "label": [_label(int(x), names_of.get(int(x), ())) for x in owner_ids],
            "packages": [() for _ in owner_ids],
            "processes": np.array([len(p) for p in pids.tolist()], dtype=np.int64),
            "pids": pids.tolist(),
            "rss_bytes": rss_v,
            "shared_pss_bytes": sums["pss"].to_numpy(dtype=np.int64),
            "charged_bytes": rss_v if charge == "full" else sums["charged"].to_numpy(np.int64),
            "buffers": nbuf.reindex(owner_ids, fill_value=0).to_numpy(dtype=np.int64),
        },
        length=len(owner_ids),
    )
    return frame.sort_values(["charged_bytes", "uid"], ascending=[False, True], ignore_index=True)


def _label(uid: int, names: tuple[str, ...]) -> str:
    """A system uid's name (``system``); for an app (no package list in these sources), its
    processes' names (full where the bugreport lists them, else the comm: ``om.example.game``,
    Android keeps its last 15 bytes), else Android's user name for the uid (``u0_a245``)."""
    known = uid_name(uid)
    if known:
        return known
    if names:
        return ",".join(names)
    user, app = divmod(uid, 100000)
    if 10000 <= app <= 19999:
        return f"u{user}_a{app - 10000}"
    return str(uid)


def pools_table(d: DmabufDump, meminfo: dict[str, int]) -> pd.DataFrame:
    rows: list[PoolRow] = []
    if d.summary is not None and d.summary.total_kb is not None:
        rows.append(("dmabuf_dump_total", d.summary.total_kb * 1024, None, "dmabuf_dump"))
    if d.summary is not None and d.summary.kernel_rss_kb is not None:
        rows.append(("dmabuf_dump_kernel_rss", d.summary.kernel_rss_kb * 1024, None, "dmabuf_dump"))
    if d.total_size is not None:
        rows.append(("dmabuf_dump_b_total", d.total_size, d.total_count, "dmabuf_dump -b"))
    rows.extend(
        (f"meminfo_{key.removesuffix('_bytes')}", value, None, "dumpsys meminfo")
        for key, value in meminfo.items()
    )
    return pools_frame(rows)


def unparsed_table(d: DmabufDump) -> pd.DataFrame:
    if not d.unparsed:
        return UNPARSED.empty()
    return UNPARSED.frame(
        {
            "section": ["dmabuf_dump"] * len(d.unparsed),
            "line_no": pd.array([u[0] for u in d.unparsed], dtype="Int64"),
            "line": [u[1] for u in d.unparsed],
            "reason": [u[2] for u in d.unparsed],
        }
    )
