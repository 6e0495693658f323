"""Which cgroup hierarchy holds the device's process tree, and each process's path in it.

Android keeps one cgroup per process, ``/uid_<uid>/pid_<pid>``, but not always in the same
hierarchy: up to Android 11 it is the v1 ``cpuacct`` hierarchy mounted at ``/acct`` (the v2
hierarchy then holds everything at ``/``); later releases keep it in v2. Linux desktops and
boards use v2 (``0::/user.slice/...``) or a hybrid layout. The rule (docs/attribution.md §7):

1. the hierarchy holding a uid/pid tree (the one with most processes in it; ties: v2, then
   the lowest hierarchy id);
2. else v2, when it places at least one process below its root;
3. else the most specific v1 hierarchy (the greatest total path depth over processes; ties:
   ``cpuacct``, ``memory``, then the lowest hierarchy id);
4. else v2 (everything at ``/``), else nothing.

A process without a line in the chosen hierarchy gets its own best line by the same order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Android's per-process cgroup (system/core/libprocessgroup: ``uid_%d/pid_%d``)
UID_PID_PATTERN = r"(?:^|/)uid_\d+/pid_\d+/?$"
_PREFERRED_V1 = ("cpuacct", "memory")


def _ranked(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per (pid, hierarchy), labelled ``v2`` or ``v1:<controllers as printed>``
    (``v1:cpuacct``, ``v1:name=systemd``), with the keys the rule sorts on."""
    v2 = (lines["hierarchy"].to_numpy() == 0) & (lines["controllers"].to_numpy() == "")
    path = lines["path"].astype(str)
    stripped = path.str.strip("/")
    depth = np.where(stripped.to_numpy() == "", 0, stripped.str.count("/").to_numpy() + 1)
    ctl = lines["controllers"].astype(str)
    has = [
        ctl.str.contains(rf"(?:^|,){c}(?:,|$)", regex=True).to_numpy(dtype=bool)
        for c in _PREFERRED_V1
    ]
    pref = np.select(has, list(range(len(_PREFERRED_V1))), len(_PREFERRED_V1)).astype(np.int64)
    return pd.DataFrame(
        {
            "pid": lines["pid"].to_numpy(dtype=np.int64),
            "key": np.where(v2, "v2", ("v1:" + ctl).to_numpy(dtype=object)),
            "hierarchy": lines["hierarchy"].to_numpy(dtype=np.int64),
            "path": path.to_numpy(dtype=object),
            "uidpid": path.str.contains(UID_PID_PATTERN, regex=True).to_numpy(dtype=bool),
            "v2": v2,
            "depth": depth.astype(np.int64),
            "pref": np.where(v2, -1, pref),
        }
    ).drop_duplicates(["pid", "key"], keep="first")


def choose_hierarchy(ranked: pd.DataFrame) -> str | None:
    """The device-wide hierarchy of the rule (its label), or None without cgroup lines."""
    if ranked.empty:
        return None
    per = ranked.groupby("key", sort=False).agg(
        uidpid=("uidpid", "sum"),
        v2=("v2", "first"),
        depth=("depth", "sum"),
        pref=("pref", "first"),
        hierarchy=("hierarchy", "first"),
    )
    tree = per[per["uidpid"] > 0]
    if len(tree):
        best = tree.sort_values(["uidpid", "v2", "hierarchy"], ascending=[False, False, True])
        return str(best.index[0])
    v2 = per[per["v2"]]
    if len(v2) and int(v2["depth"].iloc[0]) > 0:
        return str(v2.index[0])
    v1 = per[~per["v2"] & (per["depth"] > 0)]
    if len(v1):
        best = v1.sort_values(["depth", "pref", "hierarchy"], ascending=[False, True, True])
        return str(best.index[0])
    if len(v2):
        return str(v2.index[0])
    return str(per.sort_values(["pref", "hierarchy"]).index[0])


def process_cgroups(lines: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """``(frame of pid, cgroup, cgroup_source; the hierarchy label)`` from the ``cgroups``
    table (every line of every ``/proc/<pid>/cgroup``)."""
    ranked = _ranked(lines)
    chosen = choose_hierarchy(ranked)
    if chosen is None:
        return pd.DataFrame({"pid": [], "cgroup": [], "cgroup_source": []}), None
    # per process: the chosen hierarchy first, then the same order as the device-wide rule
    order = ranked.assign(
        chosen=ranked["key"].to_numpy() == chosen,
        below=ranked["v2"].to_numpy() & (ranked["depth"].to_numpy() > 0),
    ).sort_values(
        ["pid", "chosen", "uidpid", "below", "depth", "pref", "hierarchy"],
        ascending=[True, False, False, False, False, True, True],
        kind="stable",
    )
    best = order.drop_duplicates("pid", keep="first")
    out = pd.DataFrame(
        {
            "pid": best["pid"].to_numpy(dtype=np.int64),
            "cgroup": best["path"].to_numpy(dtype=object),
            "cgroup_source": best["key"].to_numpy(dtype=object),
        }
    )
    return out, chosen
