"""Compare two captures of one device: what was allocated, freed, kept, and who grew.

Identities (all matching is vectorised: pandas merges with ``indicator=True`` and numpy
index arithmetic, no per-row Python):

* a **buffer** is ``(inode, size, exporter)`` within one boot (an inode reused for another
  buffer of another size or exporter is a freed buffer plus a new one);
* a **process** is ``(pid, start time)`` (stat field 22), so a reused pid is a new process;
  when one side does not know the start time, the pid and the comm must agree;
* apps by owner uid, cgroups by path, exporters and buffer names by their key.

Across a reboot (different ``boot_id``; a bugreport, which has no kernel boot id, and a
snapshot are compared by ``ro.runtime.firstboot``, and when neither tells, the pair is
treated as across a reboot) buffer identities mean nothing: no new/freed buffer
lists and no buffer-level suspects are produced, and processes are matched by
``(display name, uid)`` instead of pid (their figures summed per name).

A figure a side could not see (an unreadable process, kernel-only bytes while a holder was
unreadable, a column a source cannot give: docs/coverage.md) is ``<NA>`` on that side, and so
is every delta that needs it: never a zero, a decrease or an increase. Holdings of a process
unreadable on either side are left out of the gained/lost buffers, so a change of collection
mode is never growth.

``diff_sides(before, after)`` returns a :class:`DiffResult`; ``DiffResult.to_json()`` is the
``dmaprof.diff/2`` document (raw integer bytes everywhere; ``null`` for unknown figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from dmaprof.errors import DmaprofError
from dmaprof.leaks.diffresult import (
    APP_METRICS,
    CGROUP_METRICS,
    GROUP_METRICS,
    PROCESS_METRICS,
    DiffResult,
)
from dmaprof.leaks.side import TOTAL_KEYS, CaptureInfo, Coverage, Side, masked
from dmaprof.timing import stage

I64 = npt.NDArray[np.int64]


class DifferentDevicesError(DmaprofError):
    """The two captures come from different devices (exit 1; ``--force`` compares anyway)."""


# --------------------------------------------------------------------------- devices


def same_device(before: CaptureInfo, after: CaptureInfo) -> bool | None:
    """Serials when both have one, else model + build fingerprint; None when unknowable."""
    if before.serial and after.serial:
        return before.serial == after.serial
    if before.model and after.model and before.fingerprint and after.fingerprint:
        return (before.model, before.fingerprint) == (after.model, after.fingerprint)
    if before.model and after.model and before.model != after.model:
        return False
    return None


def check_devices(
    before: CaptureInfo, after: CaptureInfo, *, force: bool
) -> tuple[bool | None, bool, list[str]]:
    """(same device, same boot, warnings); raises DifferentDevicesError unless ``force``."""
    warnings: list[str] = []
    same = same_device(before, after)
    if same is False:
        message = (
            f"BEFORE ({before.label}) is from {_describe(before)} but AFTER ({after.label}) is "
            f"from {_describe(after)}"
        )
        if not force:
            raise DifferentDevicesError(
                f"{message}: refusing to compare captures of different devices "
                "(use --force to compare them anyway)"
            )
        warnings.append(
            f"{message}; compared anyway (--force): buffer identities mean "
            "nothing across devices, so only aggregate changes are shown"
        )
    elif same is None:
        warnings.append(
            "cannot tell whether both captures come from the same device (no serial, model "
            "or build fingerprint recorded)"
        )
    undecided = False
    if same is False:
        same_boot = False
    elif before.firstboot and after.firstboot and _kind(before) != _kind(after):
        # a bugreport (no kernel boot id) against a snapshot: the boot's firstboot property
        same_boot = before.firstboot == after.firstboot
    elif before.boot_id and after.boot_id and _kind(before) == _kind(after):
        same_boot = before.boot_id == after.boot_id
    elif before.boot_id and after.boot_id:
        same_boot, undecided = False, True
        warnings.append(
            f"cannot tell whether the device rebooted between the captures (boot ids of "
            f"different kinds, {before.boot_id} and {after.boot_id}, and no "
            "ro.runtime.firstboot on both): compared as across a reboot, so only aggregate "
            "changes are shown"
        )
    else:
        same_boot = True
        warnings.append("a capture has no boot id: assuming both come from the same boot")
    if same is not False and not same_boot and not undecided:
        warnings.append(
            f"REBOOT: the device rebooted between the captures (boot id {before.boot_id or '?'} "
            f"-> {after.boot_id or '?'}); buffer identities mean nothing across a reboot, so "
            "only aggregate changes are shown (no new/freed buffers, no buffer-level suspects; "
            "processes are matched by name)"
        )
    elif (
        same_boot
        and before.uptime_s is not None
        and after.uptime_s is not None
        and after.uptime_s < before.uptime_s
    ):
        warnings.append(
            "AFTER was captured before BEFORE (device uptime "
            f"{after.uptime_s:.0f} s < {before.uptime_s:.0f} s): are the arguments swapped?"
        )
    for side, word in ((before, "BEFORE"), (after, "AFTER")):
        if not side.complete:
            warnings.append(f"{word} ({side.label}) is an incomplete capture")
    return same, same_boot, warnings


def _kind(info: CaptureInfo) -> str:
    """Which boot id a capture has: the kernel's, or a bugreport's ``firstboot:`` one."""
    return "firstboot" if info.boot_id.startswith("firstboot:") else "kernel"


def _describe(info: CaptureInfo) -> str:
    parts = [f"serial {info.serial}" if info.serial else ""]
    if info.model:
        parts.append(f"model {info.model}")
    if info.fingerprint and not info.serial:
        parts.append(f"build {info.fingerprint}")
    text = ", ".join(p for p in parts if p)
    return text or "an unknown device"


# --------------------------------------------------------------------------- helpers


def _side_values(
    column: pd.Series, present: npt.NDArray[np.bool_], complete: bool
) -> tuple[I64, npt.NDArray[np.bool_]]:
    """One side's figure per merged row and whether it is unknown: where the row is absent
    it is 0, unless that side's table is incomplete (then unknown)."""
    values = column.astype("Int64")
    unknown = np.where(present, values.isna().to_numpy(dtype=bool), not complete)
    ints: I64 = np.asarray(values.to_numpy(dtype=np.int64, na_value=0), dtype=np.int64)
    return ints, np.asarray(unknown, dtype=bool)


def _outer(
    b: pd.DataFrame,
    a: pd.DataFrame,
    key: list[str],
    metrics: dict[str, str],
    labels: Sequence[str],
    *,
    gone: str = "gone",
    complete: tuple[bool, bool] = (True, True),
) -> pd.DataFrame:
    """Outer-merge two keyed frames; ``<metric>_before``, ``<metric>_after``, ``delta_<metric>``
    for every metric (``Int64``: unknown on a side, unknown delta), ``status``
    new/``gone``/kept and labels from AFTER (else BEFORE). ``complete``: whether a row absent
    from BEFORE / AFTER means zero (else unknown: that side's source cannot list them)."""
    m = b.merge(
        a,
        on=key,
        how="outer",
        suffixes=("_b", "_a"),
        indicator=True,
        validate="one_to_one",
        sort=False,
    )
    ind = m["_merge"].to_numpy(dtype=object)
    data: dict[str, Any] = {k: m[k].to_numpy(dtype=object) for k in key}
    # absent from a side that cannot list every key (names unseen as the shell user): unknown
    gone_or = gone if complete[1] else "unknown"
    new_or = "new" if complete[0] else "unknown"
    data["status"] = np.where(
        ind == "left_only", gone_or, np.where(ind == "right_only", new_or, "kept")
    )
    for column in labels:
        after = m[f"{column}_a"].to_numpy(dtype=object)
        before = m[f"{column}_b"].to_numpy(dtype=object)
        data[column] = np.where(ind == "left_only", before, after)
    in_b, in_a = ind != "right_only", ind != "left_only"
    for column, metric in metrics.items():
        vb, ub = _side_values(m[f"{column}_b"], in_b, complete[0])
        va, ua = _side_values(m[f"{column}_a"], in_a, complete[1])
        data[f"{metric}_before"] = masked(vb, ub)
        data[f"{metric}_after"] = masked(va, ua)
        data[f"delta_{metric}"] = masked(va - vb, ub | ua)
    return pd.DataFrame(data)


def _sort(df: pd.DataFrame, keys: Sequence[tuple[str, bool]]) -> pd.DataFrame:
    """Stable sort by several columns (True: descending)."""
    if len(df) == 0:
        return df.reset_index(drop=True)
    return df.sort_values(
        [k for k, _ in keys], ascending=[not d for _, d in keys], kind="stable"
    ).reset_index(drop=True)


def member(values: I64, pool: I64) -> npt.NDArray[np.bool_]:
    """``np.isin`` for int64 keys through pandas' hash table (numpy 2.4's isin is several
    times slower on a few hundred thousand keys)."""
    if pool.size == 0 or values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    return np.asarray(pd.Index(values).isin(pool), dtype=bool)


def holder_lists(wanted: I64, bids: I64, pids: I64) -> list[list[int]]:
    """For each buffer id in ``wanted``, the sorted pids holding it (holdings given as
    parallel ``bids``/``pids``). Sort + searchsorted + split: no per-row Python besides
    turning the arrays into lists."""
    if wanted.size == 0:
        return []
    keep = member(bids, wanted)
    bids, pids = bids[keep], pids[keep]
    order = np.lexsort((pids, bids))
    sb, sp = bids[order], pids[order]
    lo = np.searchsorted(sb, wanted, side="left")
    hi = np.searchsorted(sb, wanted, side="right")
    flat = sp.tolist()
    return [flat[i:j] for i, j in zip(lo.tolist(), hi.tolist(), strict=True)]


# --------------------------------------------------------------------------- diff


def diff_sides(
    before: Side,
    after: Side,
    *,
    force: bool = False,
    suspects: bool = True,
) -> DiffResult:
    """Compare two sides. Raises DifferentDevicesError for two devices unless ``force``."""
    with stage("diff and leak suspects"):
        return _diff_sides(before, after, force=force, suspects=suspects)


def _diff_sides(before: Side, after: Side, *, force: bool, suspects: bool) -> DiffResult:
    same, same_boot, warnings = check_devices(before.info, after.info, force=force)
    if before.charge != after.charge:
        raise ValueError("both sides must be analysed with the same charge policy")
    before, after = _comparable_inventories(before, after)
    for side, word in ((before, "BEFORE"), (after, "AFTER")):
        if side.lower_bound and side.coverage.holders_complete:
            warnings.append(
                f"{word}: some sources could not be read; its per-process figures are lower bounds"
            )
    for text in dict.fromkeys([*before.limitations, *after.limitations]):
        word = "BEFORE and AFTER"
        if text not in after.limitations:
            word = "BEFORE"
        elif text not in before.limitations:
            word = "AFTER"
        warnings.append(f"{word}: {text}")
    anon = [
        sum((side.totals.get(k) or 0) for k in ("anon_fds", "anon_maps"))
        for side in (before, after)
    ]
    if any(anon):
        warnings.append(
            f"fds and mappings without per-buffer identity (BEFORE {anon[0]}, AFTER {anon[1]}; "
            "anon_inode:dmabuf of kernels before 5.3, or an unreadable inode): they count in "
            "fds/maps per process but not in rss/pss, and the buffers they hold look kernel-only"
        )

    if same_boot:
        bufs = _buffer_diff(before, after)
        procs, hold = _process_diff_same_boot(before, after, bufs)
    else:
        bufs = _BufferDiff.empty(before, after)
        procs, hold = _process_diff_by_name(before, after), _HoldingDiff.empty()

    cb, ca = before.coverage, after.coverage
    result = DiffResult(
        before=before.info,
        after=after.info,
        charge=after.charge,
        same_device=same,
        same_boot=same_boot,
        forced=force and same is False,
        totals=_totals(before, after),
        processes=procs,
        apps=_sort(
            _held_something(
                _outer(
                    before.apps,
                    after.apps,
                    ["uid"],
                    APP_METRICS,
                    ["label", "kind", "packages"],
                    complete=(cb.uids, ca.uids),
                ),
                APP_METRICS,
            ),
            [("delta_pss_bytes", True), ("delta_rss_bytes", True), ("uid", False)],
        ),
        cgroups=_sort(
            _outer(
                before.cgroups,
                after.cgroups,
                ["path"],
                CGROUP_METRICS,
                [],
                complete=(cb.cgroups, ca.cgroups),
            ),
            [("delta_pss_bytes_with_descendants", True), ("path", False)],
        ),
        exporters=_groups(
            before.exporters,
            after.exporters,
            bufs,
            "exporter",
            (cb.exporters_listed, ca.exporters_listed),
        ),
        names=_groups(
            before.names, after.names, bufs, "name_key", (cb.names_listed, ca.names_listed)
        ),
        new_buffers=bufs.new,
        freed_buffers=bufs.freed,
        kept=bufs.kept,
        gained=hold.gained,
        lost=hold.lost,
        warnings=warnings,
        lower_bound=before.lower_bound or after.lower_bound,
        unknown=sorted({*before.unknown, *after.unknown}),
        coverage_before=cb,
        coverage_after=ca,
    )
    result.unknown_reasons = unknown_reasons(result)
    line = comparability(result)
    if line:
        result.warnings.insert(0, line)
    if suspects:
        from dmaprof.leaks.suspects import find_suspects

        result.suspects = find_suspects(result)
    return result


def _comparable_inventories(before: Side, after: Side) -> tuple[Side, Side]:
    """A side that read no buffer inventory counts only held buffers in its buffer totals
    and per-exporter/name figures: against a side that read one, those are unknown."""
    if before.coverage.inventory == after.coverage.inventory:
        return before, after

    def held_only(side: Side) -> Side:
        if side.coverage.inventory:
            return side
        totals = {**side.totals, "buffers": None, "bytes": None}
        groups = [
            g.assign(
                buffers=pd.array([None] * len(g), dtype="Int64"),
                bytes=pd.array([None] * len(g), dtype="Int64"),
            )
            for g in (side.exporters, side.names)
        ]
        return replace(side, totals=totals, exporters=groups[0], names=groups[1])

    return held_only(before), held_only(after)


def _totals(before: Side, after: Side) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for key in TOTAL_KEYS:
        b, a = before.totals.get(key), after.totals.get(key)
        out[f"{key}_before"] = b
        out[f"{key}_after"] = a
        out[f"delta_{key}"] = None if b is None or a is None else a - b
    return out


@dataclass
class _BufferDiff:
    new: pd.DataFrame
    freed: pd.DataFrame
    kept: dict[str, int]
    before_bid: I64  # per BEFORE buffers row: its buffer id (its row number)
    after_bid: I64  # per AFTER buffers row: the BEFORE id when kept, else n_before + row
    n_before: int

    @classmethod
    def empty(cls, before: Side, after: Side) -> _BufferDiff:
        cols = ["inode", "size", "exporter", "name", "name_key", "held", "holders"]
        return cls(
            pd.DataFrame({c: [] for c in cols}),
            pd.DataFrame({c: [] for c in cols}),
            {"buffers": 0, "bytes": 0, "moved": 0},
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            0,
        )


@dataclass
class _HoldingDiff:
    gained: pd.DataFrame
    lost: pd.DataFrame

    @classmethod
    def empty(cls) -> _HoldingDiff:
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


_BUFFER_KEY = ["inode", "size", "exporter"]


def _buffer_diff(before: Side, after: Side) -> _BufferDiff:
    bb, ba = before.buffers, after.buffers
    nb, na = len(bb), len(ba)
    m = (
        bb[_BUFFER_KEY]
        .assign(ib=np.arange(nb))
        .merge(
            ba[_BUFFER_KEY].assign(ia=np.arange(na)),
            on=_BUFFER_KEY,
            how="outer",
            indicator=True,
        )
    )
    both = (m["_merge"] == "both").to_numpy()
    ib = m["ib"].to_numpy(dtype=np.float64)
    ia = m["ia"].to_numpy(dtype=np.float64)
    kept_b = ib[both].astype(np.int64)
    kept_a = ia[both].astype(np.int64)
    after_bid = np.arange(na, dtype=np.int64) + nb
    after_bid[kept_a] = kept_b
    is_new = after_bid >= nb
    is_freed = np.ones(nb, dtype=bool)
    is_freed[kept_b] = False

    hb, ha = before.holdings, after.holdings
    hb_bid = pd.Index(bb["inode"]).get_indexer(hb["inode"]).astype(np.int64)
    ha_row = pd.Index(ba["inode"]).get_indexer(ha["inode"]).astype(np.int64)
    ha_bid = np.where(ha_row >= 0, after_bid[np.maximum(ha_row, 0)], -1)

    new = ba[is_new].reset_index(drop=True)
    new = new.assign(
        holders=pd.Series(
            holder_lists(after_bid[is_new], ha_bid, ha["pid"].to_numpy(dtype=np.int64)),
            dtype=object,
        )
    )
    freed = bb[is_freed].reset_index(drop=True)
    freed = freed.assign(
        holders=pd.Series(
            holder_lists(
                np.flatnonzero(is_freed).astype(np.int64),
                hb_bid,
                hb["pid"].to_numpy(dtype=np.int64),
            ),
            dtype=object,
        )
    )
    kept_sizes = bb["size"].to_numpy(dtype=np.int64)[kept_b]
    return _BufferDiff(
        new=_sort(new, [("size", True), ("inode", False)]),
        freed=_sort(freed, [("size", True), ("inode", False)]),
        kept={"buffers": int(kept_b.size), "bytes": int(kept_sizes.sum()), "moved": 0},
        before_bid=np.arange(nb, dtype=np.int64),
        after_bid=after_bid,
        n_before=nb,
    )


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


def _process_diff_same_boot(
    before: Side, after: Side, bufs: _BufferDiff
) -> tuple[pd.DataFrame, _HoldingDiff]:
    pb, pa = before.processes, after.processes
    id_b, id_a = _process_ids(pb, pa)
    labels = ["pid", "start", "name", "comm", "uid", "owner_uid", "cgroup", "unreadable"]
    procs = _outer(
        pb.assign(proc=id_b),
        pa.assign(proc=id_a),
        ["proc"],
        PROCESS_METRICS,
        labels,
        gone="exited",
    )
    procs["unreadable"] = procs["unreadable"].astype(bool)
    # a process unreadable on either side: its holdings are no evidence of change
    unknown_ids = procs["proc"].to_numpy(dtype=np.int64)[_unknown_rows(procs)]

    # holdings, keyed by one int64: process id * n_bids + buffer id
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

    gained = side_frame(ha, proc_a, bid_a, gained_mask)
    lost = side_frame(hb, proc_b, bid_b, lost_mask)

    # per process: buffers gained / lost, and how many of the gained ones are new buffers
    n_ids = int(max(id_a.max(initial=-1), id_b.max(initial=-1)) + 1)
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
    unknown = _unknown_rows(procs)
    for column in HOLDING_COUNTS:
        procs[column] = masked(procs[column].to_numpy(dtype=np.int64), unknown)

    # kept buffers whose holders changed
    moved = np.union1d(
        gained["bid"].to_numpy(dtype=np.int64)[~gained["new_buffer"].to_numpy(dtype=bool)],
        lost["bid"].to_numpy(dtype=np.int64)[~lost["freed_buffer"].to_numpy(dtype=bool)],
    )
    bufs.kept["moved"] = int(moved.size)
    return _finish_processes(procs), _HoldingDiff(gained, lost)


HOLDING_COUNTS = ("gained_buffers", "lost_buffers", "gained_new_buffers", "lost_freed_buffers")


def _unknown_rows(procs: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Rows whose usage is unknown on a side (unreadable there)."""
    return np.asarray(
        procs["rss_bytes_before"].isna().to_numpy() | procs["rss_bytes_after"].isna().to_numpy(),
        dtype=bool,
    )


def known_sum(frame: pd.DataFrame, by: str | list[str], columns: Sequence[str]) -> pd.DataFrame:
    """Per group sums of ``Int64`` columns; ``<NA>`` where any member is unknown (a sum over
    an unknown part is unknown, not the sum of the known parts)."""
    g = frame.groupby(by, sort=False, dropna=False)
    sums = g[list(columns)].sum()
    gaps = (
        frame[list(columns)]
        .isna()
        .groupby(
            [frame[k] for k in ([by] if isinstance(by, str) else by)], sort=False, dropna=False
        )
        .any()
    )
    out = pd.DataFrame(index=sums.index)
    for column in columns:
        out[column] = masked(
            sums[column].to_numpy(dtype=np.int64, na_value=0),
            gaps[column].reindex(sums.index).to_numpy(dtype=bool),
        )
    return out


def _process_diff_by_name(before: Side, after: Side) -> pd.DataFrame:
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
    procs = _outer(b, a, ["name", "uid"], PROCESS_METRICS, labels, gone="exited")
    procs["proc"] = np.arange(len(procs), dtype=np.int64)
    procs["unreadable"] = procs["unreadable"].astype(bool)
    unknown = _unknown_rows(procs)
    for column in HOLDING_COUNTS:
        procs[column] = masked(np.zeros(len(procs), dtype=np.int64), unknown)
    return _finish_processes(procs)


def _held_something(frame: pd.DataFrame, metrics: dict[str, str]) -> pd.DataFrame:
    """Rows with a non-zero or unknown figure on either side (the rest held nothing)."""
    active = np.zeros(len(frame), dtype=bool)
    for metric in metrics.values():
        for side in ("before", "after"):
            column = frame[f"{metric}_{side}"]
            active |= (column.isna() | (column.fillna(0) != 0)).to_numpy(dtype=bool)
    return frame[active]


def _finish_processes(procs: pd.DataFrame) -> pd.DataFrame:
    """Drop processes that held nothing on either side (an unreadable one may have: kept);
    sort by growth."""
    procs = _held_something(procs, {m: m for m in ("rss_bytes", "fds", "maps", "buffers")})
    for column in ("pid", "start", "uid", "owner_uid"):
        procs[column] = procs[column].to_numpy(dtype=np.int64)
    return _sort(
        procs,
        [("delta_pss_bytes", True), ("delta_rss_bytes", True), ("pid", False), ("status", False)],
    )


def _groups(
    b: pd.DataFrame,
    a: pd.DataFrame,
    bufs: _BufferDiff,
    column: str,
    complete: tuple[bool, bool] = (True, True),
) -> pd.DataFrame:
    out = _outer(b, a, ["key"], GROUP_METRICS, [], complete=complete)
    # per key: new and freed buffers (same boot only)
    for kind, frame in (("new", bufs.new), ("freed", bufs.freed)):
        if len(frame):
            keys = frame[column].astype(object).where(frame[column] != "", "<unknown>")
            grouped = frame.assign(k=keys.to_numpy(dtype=object)).groupby("k")["size"]
            counts = grouped.size()
            sizes = grouped.sum()
            key = out["key"].to_numpy(dtype=object)
            out[f"{kind}_buffers"] = counts.reindex(key, fill_value=0).to_numpy(dtype=np.int64)
            out[f"{kind}_bytes"] = sizes.reindex(key, fill_value=0).to_numpy(dtype=np.int64)
        else:
            out[f"{kind}_buffers"] = np.zeros(len(out), dtype=np.int64)
            out[f"{kind}_bytes"] = np.zeros(len(out), dtype=np.int64)
    return _sort(out, [("delta_bytes", True), ("delta_buffers", True), ("key", False)])


# --------------------------------------------------------------------------- coverage


def _unknown_processes(d: DiffResult) -> int:
    return int(_unknown_rows(d.processes).sum()) if len(d.processes) else 0


def unknown_reasons(d: DiffResult) -> list[str]:
    """Why figures are unknown (null, ``?``): one sentence per cause and side."""
    out: list[str] = []
    for word, c in (("BEFORE", d.coverage_before), ("AFTER", d.coverage_after)):
        if not c.holders_complete:
            out.append(
                f"{word} was collected {c.describe}: their figures, the apps and cgroups they "
                "belong to, pss shared with them, and the kernel-only and held-by-process "
                "totals are unknown there"
                + ("" if c.inventory else ", and so are the buffer totals (no inventory)")
            )
        if (
            c.holders_complete
            and not c.inventory
            and (d.coverage_before.inventory or d.coverage_after.inventory)
        ):
            out.append(
                f"{word} read no buffer inventory (BPF, sysfs or debugfs): its buffer "
                "totals and per-exporter and per-name figures count held buffers only, "
                "so they are unknown against the other side's"
            )
        if not c.cgroups:
            out.append(f"{word} ({c.source}) records no cgroups: cgroup figures are unknown")
        if not c.uids:
            out.append(f"{word} ({c.source}) records no uids: app figures are unknown")
    if d.unknown:
        out.append(f"{', '.join(d.unknown)}: a side's source cannot tell them (docs/sources.md)")
    return out


def comparability(d: DiffResult) -> str | None:
    """One line on what a pair collected differently can compare, or None when both sides
    saw everything the same way."""
    cb, ca = d.coverage_before, d.coverage_after
    if (
        (cb.mode, cb.source) == (ca.mode, ca.source)
        and cb.holders_complete
        and (ca.holders_complete)
        and not d.unknown
    ):
        return None
    exact, unknown = [], []
    if cb.inventory and ca.inventory:
        exact.append("the buffer totals and each exporter's buffers and bytes")
    if not (cb.names_listed and ca.names_listed):
        unknown.append("per-name figures (names come from the fdinfo of unreadable holders)")
    n_unknown = _unknown_processes(d)
    readable = len(d.processes) - n_unknown
    if d.same_boot:
        exact.append(f"{_count(readable, 'process')} seen on both sides (rss, buffers)")
    if not (cb.holders_complete and ca.holders_complete):
        unknown.append("kernel-only and held-by-process figures")
        unknown.append(
            f"{_count(n_unknown, 'process')} unreadable on a side, with their apps "
            "and cgroups, and pss shared with them"
        )
    if d.unknown:
        unknown.append(", ".join(d.unknown))
    if not (cb.cgroups and ca.cgroups):
        unknown.append("cgroups")
    if not (cb.uids and ca.uids):
        unknown.append("apps")
    text = f"BEFORE was {_how(cb)} and AFTER {_how(ca)}: compared exactly: {'; '.join(exact)}"
    if unknown:
        text += f"; unknown (null, ?): {'; '.join(unknown)}"
    return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith("s") else f"{n} {noun}s"


def _how(c: Coverage) -> str:
    return f"imported from a {c.source}" if c.source != "collector" else f"collected {c.describe}"
