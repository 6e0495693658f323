"""Processes compared: within one boot by ``(pid, start time)``, with the buffers each one
gained and lost; across a reboot summed per ``(display name, uid)``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from dmaprof.leaks.bufferdiff import BufferDiff
from dmaprof.leaks.diffresult import PROCESS_METRICS
from dmaprof.leaks.frames import held_something, known_sum, member, outer, stable_sort
from dmaprof.leaks.side import Side, masked

I64 = npt.NDArray[np.int64]


@dataclass
class HoldingDiff:
    gained: pd.DataFrame
    lost: pd.DataFrame

    @classmethod
    def empty(cls) -> HoldingDiff:
        cols = [
            "proc",
            "bid",
            "pid",
            "inode",
            "size",
            "fds",
            "maps",
            "name_key",
            "exporter",
            "new_buffer",
            "freed_buffer",
        ]
        return cls(pd.DataFrame({c: [] for c in cols}), pd.DataFrame({c: [] for c in cols}))


HOLDING_COUNTS = ("gained_buffers", "lost_buffers", "gained_new_buffers", "lost_freed_buffers")


def _ids_of(pids: pd.Series, ids: I64, wanted: pd.Series) -> I64:
    """The process id of each pid in ``wanted`` (-1 when the pid is not a known process)."""
    where = pd.Index(pids.to_numpy(dtype=np.int64)).get_indexer(wanted.to_numpy(dtype=np.int64))
    return np.where(where >= 0, ids[np.maximum(where, 0)], -1).astype(np.int64)


def _process_ids(before: pd.DataFrame, after: pd.DataFrame) -> tuple[I64, I64]:
    """Process identity ids: BEFORE rows get their row number; an AFTER row gets the id of
    the BEFORE process it continues (same pid and start time), else a fresh one."""
    nb, na = len(before), len(after)
    m = (
        before[["pid", "start", "comm"]]
        .assign(ib=np.arange(nb))
        .merge(
            after[["pid", "start", "comm"]].assign(ia=np.arange(na)),
            on="pid",
            how="inner",
            suffixes=("_b", "_a"),
            validate="one_to_one",
        )
    )
    sb = m["start_b"].to_numpy(dtype=np.int64)
    sa = m["start_a"].to_numpy(dtype=np.int64)
    unknown = (sb < 0) | (sa < 0)
    same_comm = m["comm_b"].to_numpy(dtype=object) == m["comm_a"].to_numpy(dtype=object)
    same = ((sb == sa) & ~unknown) | (unknown & same_comm)
    after_id = np.arange(na, dtype=np.int64) + nb
    after_id[m["ia"].to_numpy(dtype=np.int64)[same]] = m["ib"].to_numpy(dtype=np.int64)[same]
    return np.arange(nb, dtype=np.int64), after_id


def process_diff_same_boot(
    before: Side, after: Side, bufs: BufferDiff
) -> tuple[pd.DataFrame, HoldingDiff]:
    pb, pa = before.processes, after.processes
    id_b, id_a = _process_ids(pb, pa)
    labels = ["pid", "start", "name", "comm", "uid", "owner_uid", "cgroup", "unreadable"]
    procs = outer(
        pb.assign(proc=id_b),
        pa.assign(proc=id_a),
        ["proc"],
        PROCESS_METRICS,
        labels,
        gone="exited",
    )
    procs["unreadable"] = procs["unreadable"].astype(bool)
    # a process unreadable on either side: its holdings are no evidence of change
    unknown_ids = procs["proc"].to_numpy(dtype=np.int64)[unknown_rows(procs)]
    hold = _holding_changes(before, after, bufs, id_b, id_a, unknown_ids)
    n_ids = int(max(id_a.max(initial=-1), id_b.max(initial=-1)) + 1)
    _count_holding_changes(procs, hold, n_ids)
    # kept buffers whose holders changed
    gained, lost = hold.gained, hold.lost
    moved = np.union1d(
        gained["bid"].to_numpy(dtype=np.int64)[~gained["new_buffer"].to_numpy(dtype=bool)],
        lost["bid"].to_numpy(dtype=np.int64)[~lost["freed_buffer"].to_numpy(dtype=bool)],
    )
    bufs.kept["moved"] = int(moved.size)
    return _finish_processes(procs), hold


def _holding_changes(
    before: Side, after: Side, bufs: BufferDiff, id_b: I64, id_a: I64, unknown_ids: I64
) -> HoldingDiff:
    """The holdings only one side has, of processes readable on both sides."""
    # holdings, keyed by one int64: process id * n_bids + buffer id
    pb, pa = before.processes, after.processes
    hb, ha = before.holdings, after.holdings
    nb = bufs.n_before
    proc_b = _ids_of(pb["pid"], id_b, hb["pid"])
    proc_a = _ids_of(pa["pid"], id_a, ha["pid"])
    bid_b = pd.Index(before.buffers["inode"]).get_indexer(hb["inode"]).astype(np.int64)
    row_a = pd.Index(after.buffers["inode"]).get_indexer(ha["inode"]).astype(np.int64)
    bid_a = np.where(row_a >= 0, bufs.after_bid[np.maximum(row_a, 0)], -1)
    n_bids = nb + len(after.buffers) + 1
    ok_b = (proc_b >= 0) & (bid_b >= 0) & ~member(proc_b, unknown_ids)
    ok_a = (proc_a >= 0) & (bid_a >= 0) & ~member(proc_a, unknown_ids)
    key_b = proc_b * n_bids + bid_b
    key_a = proc_a * n_bids + bid_a
    lost_mask = ok_b & ~member(key_b, key_a[ok_a])
    gained_mask = ok_a & ~member(key_a, key_b[ok_b])

    # per buffer id: name key, exporter, freed (BEFORE ids) -- new ids come after nb
    name_by_bid = np.full(n_bids, "", dtype=object)
    exp_by_bid = np.full(n_bids, "", dtype=object)
    name_by_bid[:nb] = before.buffers["name_key"].to_numpy(dtype=object)
    exp_by_bid[:nb] = before.buffers["exporter"].to_numpy(dtype=object)
    new_rows = np.flatnonzero(bufs.after_bid >= nb)
    name_by_bid[bufs.after_bid[new_rows]] = after.buffers["name_key"].to_numpy(dtype=object)[
        new_rows
    ]
    exp_by_bid[bufs.after_bid[new_rows]] = after.buffers["exporter"].to_numpy(dtype=object)[
        new_rows
    ]
    freed_by_bid = np.zeros(n_bids, dtype=bool)
    freed_by_bid[:nb] = True
    freed_by_bid[bufs.after_bid[bufs.after_bid < nb]] = False

    def side_frame(
        h: pd.DataFrame, proc: I64, bid: I64, mask: npt.NDArray[np.bool_]
    ) -> pd.DataFrame:
        b = bid[mask]
        return pd.DataFrame(
            {
                "proc": proc[mask],
                "bid": b,
                "pid": h["pid"].to_numpy(dtype=np.int64)[mask],
                "inode": h["inode"].to_numpy(dtype=np.int64)[mask],
                "size": h["size"].to_numpy(dtype=np.int64)[mask],
                "fds": h["fds"].to_numpy(dtype=np.int64)[mask],
                "maps": h["maps"].to_numpy(dtype=np.int64)[mask],
                "name_key": name_by_bid[b],
                "exporter": exp_by_bid[b],
                "new_buffer": b >= nb,
                "freed_buffer": freed_by_bid[b],
            }
        )

    return HoldingDiff(
        side_frame(ha, proc_a, bid_a, gained_mask), side_frame(hb, proc_b, bid_b, lost_mask)
    )


def _count_holding_changes(procs: pd.DataFrame, hold: HoldingDiff, n_ids: int) -> None:
    """Per process: buffers gained and lost, and how many of them are new or freed buffers
    (unknown where the process is unreadable on a side)."""
    gained, lost = hold.gained, hold.lost
    g_proc = gained["proc"].to_numpy(dtype=np.int64)
    l_proc = lost["proc"].to_numpy(dtype=np.int64)
    proc_ids = procs["proc"].to_numpy(dtype=np.int64)
    procs["gained_buffers"] = np.bincount(g_proc, minlength=n_ids)[proc_ids]
    procs["lost_buffers"] = np.bincount(l_proc, minlength=n_ids)[proc_ids]
    procs["gained_new_buffers"] = np.bincount(
        g_proc, weights=gained["new_buffer"].to_numpy(dtype=np.float64), minlength=n_ids
    ).astype(np.int64)[proc_ids]
    procs["lost_freed_buffers"] = np.bincount(
        l_proc, weights=lost["freed_buffer"].to_numpy(dtype=np.float64), minlength=n_ids
    ).astype(np.int64)[proc_ids]
    unknown = unknown_rows(procs)
    for column in HOLDING_COUNTS:
        procs[column] = masked(procs[column].to_numpy(dtype=np.int64), unknown)


def unknown_rows(procs: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Rows whose usage is unknown on a side (unreadable there)."""
    return np.asarray(
        procs["rss_bytes_before"].isna().to_numpy() | procs["rss_bytes_after"].isna().to_numpy(),
        dtype=bool,
    )


def process_diff_by_name(before: Side, after: Side) -> pd.DataFrame:
    """Across a reboot: processes summed per (display name, uid)."""
    sums = list(PROCESS_METRICS)

    def agg(p: pd.DataFrame) -> pd.DataFrame:
        g = p.groupby(["name", "uid"], sort=False, dropna=False)
        out = known_sum(p, ["name", "uid"], sums)
        first = g[["comm", "owner_uid", "cgroup"]].first()
        out = out.join(first)
        out["pid"] = g["pid"].min()
        out["start"] = -1
        out["unreadable"] = g["unreadable"].any()
        out["pids"] = [tuple(sorted(v)) for v in g["pid"].agg(list).tolist()]
        return out.reset_index()

    b, a = agg(before.processes), agg(after.processes)
    labels = ["pid", "start", "comm", "owner_uid", "cgroup", "unreadable", "pids"]
    procs = outer(b, a, ["name", "uid"], PROCESS_METRICS, labels, gone="exited")
    procs["proc"] = np.arange(len(procs), dtype=np.int64)
    procs["unreadable"] = procs["unreadable"].astype(bool)
    unknown = unknown_rows(procs)
    for column in HOLDING_COUNTS:
        procs[column] = masked(np.zeros(len(procs), dtype=np.int64), unknown)
    return _finish_processes(procs)


def _finish_processes(procs: pd.DataFrame) -> pd.DataFrame:
    """Drop processes that held nothing on either side (an unreadable one may have: kept);
    sort by growth."""
    procs = held_something(procs, {m: m for m in ("rss_bytes", "fds", "maps", "buffers")})
    for column in ("pid", "start", "uid", "owner_uid"):
        procs[column] = procs[column].to_numpy(dtype=np.int64)
    return stable_sort(
        procs,
        [
            ("delta_charged_bytes", True),
            ("delta_rss_bytes", True),
            ("pid", False),
            ("status", False),
        ],
    )
