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

from dataclasses import replace

import numpy as np
import pandas as pd

from dmaprof.leaks.bufferdiff import BufferDiff, buffer_diff
from dmaprof.leaks.comparability import comparability, unknown_reasons
from dmaprof.leaks.diffresult import APP_METRICS, CGROUP_METRICS, GROUP_METRICS, DiffResult
from dmaprof.leaks.frames import held_something, holder_lists, known_sum, member, outer, stable_sort
from dmaprof.leaks.identity import DifferentDevicesError, check_devices, same_device
from dmaprof.leaks.processdiff import (
    HOLDING_COUNTS,
    HoldingDiff,
    process_diff_by_name,
    process_diff_same_boot,
)
from dmaprof.leaks.side import TOTAL_KEYS, Side
from dmaprof.timing import stage

__all__ = [
    "HOLDING_COUNTS",
    "DifferentDevicesError",
    "check_devices",
    "comparability",
    "diff_sides",
    "holder_lists",
    "known_sum",
    "member",
    "same_device",
    "unknown_reasons",
]


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
    warnings += _side_warnings(before, after)
    if same_boot:
        bufs = buffer_diff(before, after)
        procs, hold = process_diff_same_boot(before, after, bufs)
    else:
        bufs = BufferDiff.empty(before, after)
        procs, hold = process_diff_by_name(before, after), HoldingDiff.empty()

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
        apps=_apps(before, after),
        cgroups=_cgroups(before, after),
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


def _side_warnings(before: Side, after: Side) -> list[str]:
    """What either side's collection limits: lower bounds, its sources' limitations, and
    references without identity."""
    warnings: list[str] = []
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
    return warnings


def _apps(before: Side, after: Side) -> pd.DataFrame:
    """Apps by owner uid; those that held nothing on either side are left out."""
    apps = outer(
        before.apps,
        after.apps,
        ["uid"],
        APP_METRICS,
        ["label", "kind", "packages"],
        complete=(before.coverage.uids, after.coverage.uids),
    )
    return stable_sort(
        held_something(apps, APP_METRICS),
        [("delta_charged_bytes", True), ("delta_rss_bytes", True), ("uid", False)],
    )


def _cgroups(before: Side, after: Side) -> pd.DataFrame:
    """Cgroups by path."""
    cgroups = outer(
        before.cgroups,
        after.cgroups,
        ["path"],
        CGROUP_METRICS,
        [],
        complete=(before.coverage.cgroups, after.coverage.cgroups),
    )
    return stable_sort(cgroups, [("delta_charged_bytes_with_descendants", True), ("path", False)])


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


def _groups(
    b: pd.DataFrame,
    a: pd.DataFrame,
    bufs: BufferDiff,
    column: str,
    complete: tuple[bool, bool] = (True, True),
) -> pd.DataFrame:
    out = outer(b, a, ["key"], GROUP_METRICS, [], complete=complete)
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
    return stable_sort(out, [("delta_bytes", True), ("delta_buffers", True), ("key", False)])
