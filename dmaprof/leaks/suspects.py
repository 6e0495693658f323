"""Leak suspects between two captures, ranked, each with its reason in words.

Kinds, from the most specific to the most general:

``process_buffers``
    A process holds more buffers of one name than before, at least one of them newly
    allocated (same boot only: it needs buffer identity). "com.example.app (3100) holds 42
    more buffers named 'SurfaceView - com.example.app#0' (+168.0 MiB), all held by fd only,
    none freed". Buffers that only moved from one holder to another are not growth.
``mapped_without_fd``
    A process maps more buffers it holds no fd to: the "mmap without munmap" pattern.
``kernel_only``
    More buffers are held by no process at all (in flight over binder, imported by a driver,
    or leaked by the kernel side), broken down by exporter and name.
``process``
    A process grew in a way the suspects above do not explain (across a reboot: per name).
``name``
    More buffers of one name system-wide than the per-process suspects explain.

The score is the growth in bytes; ties go to the more specific kind. Thresholds live in
:class:`SuspectPolicy` (a growth of at least one buffer and one byte by default). An unknown
delta (``<NA>``: a side could not see the figure) is never ranked: a suspect needs growth
that both captures saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from dmaprof.leaks.diffresult import DiffResult
from dmaprof.units import human_bytes, safe_text

KIND_ORDER = {
    "process_buffers": 0,
    "mapped_without_fd": 1,
    "kernel_only": 2,
    "process": 3,
    "name": 4,
}


@dataclass(frozen=True)
class SuspectPolicy:
    min_bytes: int = 1  # growth below this is never a suspect
    min_buffers: int = 1
    max_suspects: int = 100
    explained_share: float = 0.5  # a process's growth is "explained" above this share


def at_least(column: pd.Series, value: int) -> npt.NDArray[np.bool_]:
    """``column >= value`` where the figure is known; an unknown one is never enough."""
    return np.asarray((column >= value).fillna(False).to_numpy(dtype=bool), dtype=bool)


def _known(value: Any) -> int:
    """A row's figure that may be unknown (None/NA) as a count for wording: 0 when unknown."""
    return 0 if value is None or value is pd.NA else int(value)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def _plus(value: int) -> str:
    return ("+" if value >= 0 else "") + human_bytes(value)


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _who(name: Any, pid: Any, by_name: bool) -> str:
    return safe_text(name) if by_name else f"{safe_text(name)} ({int(pid)})"


def find_suspects(d: DiffResult, policy: SuspectPolicy | None = None) -> list[dict[str, Any]]:
    p = policy or SuspectPolicy()
    suspects: list[dict[str, Any]] = []
    covered_bytes: dict[int, int] = {}  # proc id -> largest growth one name suspect explains
    covered_maps: dict[int, int] = {}
    covered_names: dict[str, int] = {}
    if d.same_boot:
        suspects += _process_buffers(d, p, covered_bytes, covered_maps, covered_names)
    suspects += _mapped_without_fd(d, p, covered_maps)
    kernel_only = _kernel_only(d, p)
    suspects += kernel_only
    suspects += _processes(d, p, covered_bytes)
    suspects += _names(d, p, covered_names, bool(kernel_only))
    suspects.sort(key=lambda s: (-s["delta_bytes"], KIND_ORDER[s["kind"]], s["key"]))
    for rank, suspect in enumerate(suspects[: p.max_suspects], start=1):
        suspect["rank"] = rank
    return suspects[: p.max_suspects]


def _process_buffers(
    d: DiffResult,
    p: SuspectPolicy,
    covered_bytes: dict[int, int],
    covered_maps: dict[int, int],
    covered_names: dict[str, int],
) -> list[dict[str, Any]]:
    if len(d.gained) == 0:
        return []
    growth = _NameGrowth.of(d.gained, d.lost)
    m = growth.suspects(p)
    if len(m) == 0:
        return []
    procs = d.processes.set_index("proc")
    label = dict(
        zip(
            d.processes["proc"].tolist(),
            [
                _who(nm, pid, False)
                for nm, pid in zip(
                    d.processes["name"].tolist(), d.processes["pid"].tolist(), strict=True
                )
            ],
            strict=True,
        )
    )
    out = []
    for row in _rows(m):  # bounded: at most max_suspects rows
        others = growth.other_holders(int(row["proc"]), row["name_key"])
        suspect = _process_buffers_suspect(row, procs.loc[row["proc"]], _shared_with(others, label))
        proc_id, key = int(row["proc"]), str(row["name_key"])
        # a process counts as explained only by its largest single name: growth spread over
        # many names (leak-1, leak-2, ...) must still surface as one process-level suspect
        covered_bytes[proc_id] = max(covered_bytes.get(proc_id, 0), int(row["net_bytes"]))
        covered_maps[proc_id] = covered_maps.get(proc_id, 0) + int(row["map_only"])
        covered_names[key] = covered_names.get(key, 0) + int(row["net"])
        out.append(suspect)
    return out


@dataclass
class _NameGrowth:
    """The gained and lost holdings of one boot grouped by (process id, buffer name), one
    int64 key per group; aggregated with bincount."""

    names: npt.NDArray[Any]  # name key per code
    n_names: int
    g_key: npt.NDArray[np.int64]  # per gained holding: its group
    g_bid: npt.NDArray[np.int64]  # per gained holding: its buffer id
    by_bid: npt.NDArray[np.int64]  # the gained holdings' buffer ids, sorted
    proc_by_bid: npt.NDArray[np.int64]  # their process ids, in that order
    groups: pd.DataFrame  # per group: gained and lost counts and bytes, and how held

    @classmethod
    def of(cls, g: pd.DataFrame, lost: pd.DataFrame) -> _NameGrowth:
        codes, names = pd.factorize(
            np.concatenate(
                [g["name_key"].to_numpy(dtype=object), lost["name_key"].to_numpy(dtype=object)]
            )
        )
        n_names = max(len(names), 1)
        g_code, l_code = codes[: len(g)], codes[len(g) :]
        g_proc = g["proc"].to_numpy(dtype=np.int64)
        l_proc = lost["proc"].to_numpy(dtype=np.int64)
        g_key = g_proc * n_names + g_code
        l_key = l_proc * n_names + l_code
        keys, g_inv = np.unique(g_key, return_inverse=True)
        n = keys.size
        fds = g["fds"].to_numpy(dtype=np.int64)
        maps = g["maps"].to_numpy(dtype=np.int64)
        sizes = g["size"].to_numpy(dtype=np.float64)

        def per_key(weights: npt.NDArray[Any] | None = None) -> npt.NDArray[np.int64]:
            return np.bincount(g_inv, weights=weights, minlength=n).astype(np.int64)

        l_pos = np.searchsorted(keys, l_key)
        l_hit = (l_pos < n) & (keys[np.minimum(l_pos, n - 1)] == l_key)
        l_count = np.bincount(l_pos[l_hit], minlength=n).astype(np.int64)
        l_bytes = np.bincount(
            l_pos[l_hit], weights=lost["size"].to_numpy(dtype=np.float64)[l_hit], minlength=n
        ).astype(np.int64)
        groups = pd.DataFrame(
            {
                "proc": keys // n_names,
                "name_key": np.asarray(names, dtype=object)[keys % n_names],
                "g_count": per_key(),
                "g_bytes": per_key(sizes),
                "g_new": per_key(g["new_buffer"].to_numpy(dtype=np.float64)),
                "fd_only": per_key(((fds > 0) & (maps == 0)).astype(np.float64)),
                "map_only": per_key(((fds == 0) & (maps > 0)).astype(np.float64)),
                "both": per_key(((fds > 0) & (maps > 0)).astype(np.float64)),
                "l_count": l_count,
                "l_bytes": l_bytes,
            }
        )
        # holders of every gained holding, sorted by buffer id: "shared with" per suspect
        g_bid = g["bid"].to_numpy(dtype=np.int64)
        order = np.argsort(g_bid, kind="stable")
        return cls(names, n_names, g_key, g_bid, g_bid[order], g_proc[order], groups)

    def suspects(self, p: SuspectPolicy) -> pd.DataFrame:
        """Groups that grew, net of what they lost, with a newly allocated buffer among the
        gained ones; the largest growth first."""
        m = self.groups
        net = (m["g_count"] - m["l_count"]).to_numpy(dtype=np.int64)
        net_bytes = (m["g_bytes"] - m["l_bytes"]).to_numpy(dtype=np.int64)
        keep = (net >= p.min_buffers) & (net_bytes >= p.min_bytes) & (m["g_new"].to_numpy() > 0)
        m = m[keep].assign(net=net[keep], net_bytes=net_bytes[keep])
        return m.sort_values(["net_bytes", "net"], ascending=False, kind="stable").head(
            p.max_suspects
        )

    def other_holders(self, proc: int, name_key: Any) -> npt.NDArray[np.int64]:
        """The other processes (ids, ascending) that gained a buffer this group gained."""
        code = int(np.flatnonzero(self.names == name_key)[0])
        mine = np.unique(self.g_bid[self.g_key == proc * self.n_names + code])
        lo = np.searchsorted(self.by_bid, mine, side="left")
        hi = np.searchsorted(self.by_bid, mine, side="right")
        spans = hi - lo
        flat = np.repeat(lo - np.cumsum(spans) + spans, spans) + np.arange(spans.sum())
        return np.setdiff1d(np.unique(self.proc_by_bid[flat]), [proc])


def _shared_with(others: npt.NDArray[np.int64], label: dict[int, str]) -> str:
    if not others.size:
        return ""
    names_shown = [label[o] for o in others[:3].tolist()]
    more = f" and {others.size - 3} more" if others.size > 3 else ""
    return f"; shared with {', '.join(names_shown)}{more}"


def _holding_mode(gcount: int, fd_only: int, map_only: int, both: int) -> str:
    """How a group's gained buffers are held, in words."""
    if fd_only == gcount:
        return "all held by fd only"
    if map_only == gcount:
        return "all mapped without an fd"
    if both == gcount:
        return "all held by fd and mapped"
    parts = [
        f"{fd_only} by fd only" if fd_only else "",
        f"{map_only} mapped without an fd" if map_only else "",
        f"{both} by fd and mapped" if both else "",
    ]
    # no split at all: a source without it (bugreport, dmabuf_dump) says only "held"
    return ", ".join(x for x in parts if x) or "held by fd or mapping (not known which)"


def _process_buffers_suspect(row: dict[str, Any], proc: pd.Series, shared: str) -> dict[str, Any]:
    who = _who(proc["name"], proc["pid"], False)
    count, gcount, lcount = int(row["net"]), int(row["g_count"]), int(row["l_count"])
    fd_only, map_only, both = int(row["fd_only"]), int(row["map_only"]), int(row["both"])
    mode = _holding_mode(gcount, fd_only, map_only, both)
    freed = "none freed" if lcount == 0 else f"{gcount} gained, {lcount} released"
    new_proc = " (a process started after BEFORE)" if proc["status"] == "new" else ""
    reason = (
        f"{who}{new_proc} holds {count} more {'buffer' if count == 1 else 'buffers'} named "
        f"'{safe_text(row['name_key'])}' ({_plus(int(row['net_bytes']))}), {mode}, "
        f"{freed}{shared}"
    )
    return {
        "kind": "process_buffers",
        "key": f"process:{proc['name']}[{int(proc['pid'])}]/name:{row['name_key']}",
        "delta_bytes": int(row["net_bytes"]),
        "delta_buffers": count,
        "reason": reason,
        "pid": int(proc["pid"]),
        "process": str(proc["name"]),
        "name": str(row["name_key"]),
        "freed": lcount,
        "held_by": {"fd_only": fd_only, "map_only": map_only, "both": both},
    }


def _mapped_without_fd(
    d: DiffResult, p: SuspectPolicy, covered_maps: dict[int, int]
) -> list[dict[str, Any]]:
    x = d.processes
    grow = at_least(x["delta_map_only"], p.min_buffers) & at_least(
        x["delta_map_only_bytes"], p.min_bytes
    )
    out = []
    by_name = not d.same_boot
    for row in _rows(x[grow]):
        count = int(row["delta_map_only"])
        if covered_maps.get(int(row["proc"]), 0) >= count:
            continue  # already told by a process_buffers suspect ("all mapped without an fd")
        out.append(
            {
                "kind": "mapped_without_fd",
                "key": f"process:{row['name']}" + ("" if by_name else f"[{int(row['pid'])}]"),
                "delta_bytes": int(row["delta_map_only_bytes"]),
                "delta_buffers": count,
                "reason": (
                    f"{_who(row['name'], row['pid'], by_name)} maps {_n(count, 'more buffer')} "
                    f"it holds no fd to ({_plus(int(row['delta_map_only_bytes']))}): "
                    "mapped without an fd, the pattern of a missing munmap()"
                ),
                "pid": int(row["pid"]),
                "process": str(row["name"]),
            }
        )
    return out


def _top_growth(frame: pd.DataFrame, column: str, label: str) -> str:
    grow = frame[at_least(frame[column], 1)]
    if len(grow) == 0:
        return ""
    top = grow.sort_values(column, ascending=False).head(2)
    return ", ".join(
        f"{label} '{safe_text(k)}' ({_plus(int(v))})"
        for k, v in zip(top["key"].tolist(), top[column].tolist(), strict=True)
    )


def _kernel_only(d: DiffResult, p: SuspectPolicy) -> list[dict[str, Any]]:
    count = d.totals.get("delta_kernel_only_buffers")
    size = d.totals.get("delta_kernel_only_bytes")
    if count is None or size is None or count < p.min_buffers or size < p.min_bytes:
        return []
    parts = [
        x
        for x in (
            _top_growth(d.exporters, "delta_kernel_only_bytes", "exporter"),
            _top_growth(d.names, "delta_kernel_only_bytes", "name"),
        )
        if x
    ]
    where = f"; most of it: {'; '.join(parts)}" if parts else ""
    return [
        {
            "kind": "kernel_only",
            "key": "kernel_only",
            "delta_bytes": int(size),
            "delta_buffers": int(count),
            "reason": (
                f"{_n(int(count), 'more buffer')} ({_plus(int(size))}) held by no process "
                "(kernel-only: in flight over binder, imported by a driver, or leaked)" + where
            ),
        }
    ]


def _processes(
    d: DiffResult, p: SuspectPolicy, covered_bytes: dict[int, int]
) -> list[dict[str, Any]]:
    x = d.processes
    grow = at_least(x["delta_rss_bytes"], p.min_bytes) & at_least(x["delta_buffers"], p.min_buffers)
    if d.same_boot:
        grow &= at_least(x["gained_new_buffers"], 1)  # buffers only moving are no growth
    by_name = not d.same_boot
    out = []
    for row in _rows(x[grow]):
        delta = int(row["delta_rss_bytes"])
        if covered_bytes.get(int(row["proc"]), 0) >= p.explained_share * delta:
            continue
        who = _who(row["name"], row["pid"], by_name)
        count = int(row["delta_buffers"])
        if by_name:
            text = (
                f"{who} holds {_n(count, 'more buffer')} than before the reboot "
                f"({_plus(delta)} rss, {_plus(int(row['delta_charged_bytes']))} pss)"
            )
        elif row["status"] == "new":
            text = (
                f"{who} started after BEFORE and holds {_n(count, 'buffer')} "
                f"({human_bytes(int(row['rss_bytes_after']))} rss)"
            )
        else:
            text = (
                f"{who} holds {_n(count, 'more buffer')} ({_plus(delta)} rss, "
                f"{_plus(int(row['delta_charged_bytes']))} pss): "
                f"{int(row['gained_buffers'])} gained "
                f"({int(row['gained_new_buffers'])} newly allocated), "
                f"{int(row['lost_buffers'])} released"
            )
        out.append(
            {
                "kind": "process",
                "key": f"process:{row['name']}" + ("" if by_name else f"[{int(row['pid'])}]"),
                "delta_bytes": delta,
                "delta_buffers": count,
                "reason": text,
                "pid": int(row["pid"]),
                "process": str(row["name"]),
            }
        )
    return out


def _names(
    d: DiffResult, p: SuspectPolicy, covered: dict[str, int], has_kernel_suspect: bool
) -> list[dict[str, Any]]:
    x = d.names
    grow = at_least(x["delta_buffers"], p.min_buffers) & at_least(x["delta_bytes"], p.min_bytes)
    out = []
    for row in _rows(x[grow]):
        count = int(row["delta_buffers"])
        kernel_only = max(0, _known(row["delta_kernel_only_buffers"])) if has_kernel_suspect else 0
        unexplained = count - covered.get(str(row["key"]), 0) - kernel_only
        if unexplained < p.min_buffers:
            continue  # told by process_buffers suspects and the kernel_only suspect
        if d.same_boot:
            detail = f"{int(row['new_buffers'])} allocated, {int(row['freed_buffers'])} freed"
        else:
            detail = "compared with before the reboot"
        if _known(row["delta_kernel_only_buffers"]) > 0:
            detail += f"; {int(row['delta_kernel_only_buffers'])} more held by no process"
        out.append(
            {
                "kind": "name",
                "key": f"name:{row['key']}",
                "delta_bytes": int(row["delta_bytes"]),
                "delta_buffers": count,
                "reason": (
                    f"{_n(count, 'more buffer')} named '{safe_text(row['key'])}' system-wide "
                    f"({_plus(int(row['delta_bytes']))}): {detail}"
                ),
                "name": str(row["key"]),
            }
        )
    return out
