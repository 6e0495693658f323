"""What each app, cgroup, exporter and buffer name holds, from the per-process usage and
the holdings: a buffer held by several members of a group counts once in the group's rss.

Everything here is vectorised (numpy sorts and ``reduceat``); the Python loops run once per
distinct uid or cgroup path, never per holding.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from dmaprof.analyze._scan import lookup, uniq
from dmaprof.analyze.schema import APPS, CGROUP_USAGE, GROUP_USAGE
from dmaprof.analyze.uids import uid_kind, uid_name

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

UNKNOWN_KEY = "<unknown>"


def group_starts(sorted_keys: I64) -> I64:
    """Index of the first row of each run of equal keys."""
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.empty(sorted_keys.size, dtype=np.bool_)
    new[0] = True
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return np.flatnonzero(new)


def _distinct_pairs(keys: I64, items: I64, n_items: int) -> tuple[I64, I64]:
    """The distinct (key, item) pairs, sorted; ``items`` are 0..n_items-1."""
    if keys.size == 0:
        return keys.copy(), items.copy()
    bits = max(1, int(n_items).bit_length())
    if int(keys.min()) >= 0 and int(keys.max()) < (1 << (62 - bits)):
        # one plain sort of packed (key, item) pairs
        c = np.sort((keys << bits) | items)
        new = np.empty(c.size, dtype=np.bool_)
        new[0] = True
        new[1:] = c[1:] != c[:-1]
        c = c[new]
        return c >> bits, c & ((1 << bits) - 1)
    order = np.lexsort((items, keys))
    k, i = keys[order], items[order]
    new = np.empty(k.size, dtype=np.bool_)
    new[0] = True
    new[1:] = (k[1:] != k[:-1]) | (i[1:] != i[:-1])
    return k[new], i[new]


def _bytes_per_node(nodes: I64, items: I64, item_sizes: I64, n_nodes: int) -> I64:
    """Bytes per node of distinct (node, item) pairs sorted by node."""
    out = np.zeros(n_nodes, np.int64)
    if nodes.size:
        starts = group_starts(nodes)
        out[nodes[starts]] = np.add.reduceat(item_sizes[items], starts)
    return out


def _dedup_bytes(keys: I64, items: I64, item_sizes: I64) -> tuple[I64, I64, I64]:
    """Per key: (keys, distinct-buffer bytes, distinct buffers); ``items`` number the
    buffers (0..) and index ``item_sizes``."""
    if keys.size == 0:
        z = np.zeros(0, np.int64)
        return z, z, z
    k, i = _distinct_pairs(keys, items, item_sizes.size)
    starts = group_starts(k)
    return k[starts], np.add.reduceat(item_sizes[i], starts), np.diff(np.append(starts, k.size))


def app_usage(
    usage: pd.DataFrame,
    items: I64,
    item_sizes: I64,
    owners: I64,
    pj: I64,
    pfound: Bool,
    packages: pd.DataFrame,
    charge: str,
) -> pd.DataFrame:
    """The ``apps`` table: processes rolled up by owner uid (docs/attribution.md, "Apps")."""
    active = (
        (usage["buffers"].to_numpy() > 0)
        | (usage["fds"].to_numpy() > 0)
        | (usage["maps"].to_numpy() > 0)
    )
    known = owners >= 0
    sel_uids = uniq(owners[active & known])
    if sel_uids.size == 0:
        return APPS.empty()
    h_owner = np.where(pfound, owners[pj] if owners.size else -1, -1)
    ok = h_owner >= 0
    ku, kbytes, kbufs = _dedup_bytes(h_owner[ok], items[ok], item_sizes)
    rss_map = dict(zip(ku.tolist(), kbytes.tolist(), strict=True))
    buf_map = dict(zip(ku.tolist(), kbufs.tolist(), strict=True))
    df = pd.DataFrame(
        {
            "owner": owners,
            "pid": usage["pid"].to_numpy(),
            "pss": usage["shared_pss_bytes"].to_numpy(),
            "charged": usage["charged_bytes"].to_numpy(),
        }
    )
    df = df[df["owner"].isin(sel_uids)].sort_values(["owner", "pid"], kind="stable")
    g = df.groupby("owner", sort=True)
    sums = g[["pss", "charged"]].sum()
    # the pids of each uid: one split of the (owner, pid)-sorted column
    starts = np.cumsum(g.size().to_numpy())[:-1]
    pids = [tuple(p) for p in np.split(np.asarray(df["pid"].tolist(), dtype=object), starts)]
    pkg_of: dict[int, list[str]] = {}
    for pkg, uid in zip(packages["package"].tolist(), packages["uid"].tolist(), strict=True):
        pkg_of.setdefault(int(uid), []).append(pkg)
    uids = sums.index.to_numpy(dtype=np.int64)
    pkgs = [tuple(sorted(pkg_of.get(int(u), []))) for u in uids]
    labels = [app_label(int(u), p) for u, p in zip(uids, pkgs, strict=True)]
    rss = np.array([rss_map.get(int(u), 0) for u in uids], dtype=np.int64)
    charged = rss if charge == "full" else sums["charged"].to_numpy(dtype=np.int64)
    return APPS.frame(
        {
            "uid": uids.astype(np.int32),
            "user_id": (uids // 100000).astype(np.int32),
            "app_id": (uids % 100000).astype(np.int32),
            "kind": pd.Categorical(
                [uid_kind(int(u)) for u in uids],
                categories=["app", "system", "isolated", "sdk_sandbox", "other"],
            ),
            "label": labels,
            "packages": pkgs,
            "processes": np.array([len(p) for p in pids], dtype=np.int64),
            "pids": pids,
            "rss_bytes": rss,
            "shared_pss_bytes": sums["pss"].to_numpy(dtype=np.int64),
            "charged_bytes": charged,
            "buffers": np.array([buf_map.get(int(u), 0) for u in uids], dtype=np.int64),
        }
    ).sort_values(["charged_bytes", "uid"], ascending=[False, True], ignore_index=True)


def app_label(uid: int, packages: tuple[str, ...]) -> str:
    """A system uid by its name (``system``, not the ``android`` package that shares uid
    1000 with many others), an app by its packages, else the number."""
    name = uid_name(uid)
    if name is not None and uid_kind(uid) == "system":
        return name
    return ",".join(packages) or name or str(uid)


def _norm(path: str) -> str:
    """``/a/b`` for ``/a/b/``, ``a//b`` and the like (the form ``_ancestors`` produces)."""
    parts = [p for p in path.split("/") if p]
    return "/" + "/".join(parts)


def _ancestors(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[: k + 1]) for k in range(len(parts))]


def cgroup_usage(
    usage: pd.DataFrame, items: I64, item_sizes: I64, pj: I64, pfound: Bool, charge: str
) -> pd.DataFrame:
    """The ``cgroup_usage`` table: every cgroup path and its ancestors, own figures and
    figures with descendants."""
    codes, raw_paths = pd.factorize(usage["cgroup"])
    if not len(raw_paths):
        return CGROUP_USAGE.empty()
    norm = [_norm(str(p)) for p in raw_paths]
    upaths = sorted(set(norm))
    all_nodes = sorted({a for p in upaths for a in _ancestors(p)})
    node_id = {p: k for k, p in enumerate(all_nodes)}
    nn = len(all_nodes)
    # own: process -> node; subtree: (process, ancestor) pairs
    code_node = np.array([node_id[p] for p in norm] + [-1], dtype=np.int64)
    proc_node = code_node[np.asarray(codes, dtype=np.int64)]  # code -1 (no cgroup) -> -1
    anc_src: list[int] = []
    anc_dst: list[int] = []
    for p in upaths:
        for a in _ancestors(p):
            anc_src.append(node_id[p])
            anc_dst.append(node_id[a])
    a_src = np.array(anc_src, dtype=np.int64)
    a_dst = np.array(anc_dst, dtype=np.int64)
    pss = usage["shared_pss_bytes"].to_numpy(dtype=np.int64)
    chg = usage["charged_bytes"].to_numpy(dtype=np.int64)
    sel = proc_node >= 0
    own_p = np.bincount(proc_node[sel], minlength=nn).astype(np.int64)
    own_pss = np.bincount(proc_node[sel], weights=pss[sel], minlength=nn).astype(np.int64)
    own_chg = np.bincount(proc_node[sel], weights=chg[sel], minlength=nn).astype(np.int64)

    # subtree = sum over descendants: push each node's own figure to its ancestors
    def subtree(v: I64) -> I64:
        return np.bincount(a_dst, weights=v[a_src], minlength=nn).astype(np.int64)

    sub_p, sub_pss, sub_chg = subtree(own_p), subtree(own_pss), subtree(own_chg)
    # distinct-buffer rss, own and subtree
    h_node = np.where(pfound, proc_node[pj] if proc_node.size else -1, -1)
    ok = h_node >= 0
    # distinct (node, buffer) pairs: the own rss, and what is pushed to the ancestors
    hn, hin = _distinct_pairs(h_node[ok], items[ok], item_sizes.size)
    own_rss = _bytes_per_node(hn, hin, item_sizes, nn)
    depth = np.array([0 if p == "/" else p.count("/") for p in all_nodes], dtype=np.int32)
    parent = np.array(
        [-1 if p == "/" else node_id[p.rsplit("/", 1)[0] or "/"] for p in all_nodes],
        dtype=np.int64,
    )
    # subtree rss, from the deepest level up: a node's distinct buffers are its own and its
    # children's, deduplicated once per level
    sub_rss = np.zeros(nn, np.int64)
    node_depth = depth[hn]
    carry_n = carry_i = np.zeros(0, np.int64)
    for level in range(int(depth.max()), -1, -1):
        at = node_depth == level
        kn, ki = hn[at], hin[at]  # sorted and distinct: a subset of the own pairs
        if carry_n.size:
            kn, ki = _distinct_pairs(
                np.concatenate([kn, carry_n]), np.concatenate([ki, carry_i]), item_sizes.size
            )
        sub_rss += _bytes_per_node(kn, ki, item_sizes, nn)
        carry_n, carry_i = parent[kn], ki
    if charge == "full":
        own_chg, sub_chg = own_rss, sub_rss
    return CGROUP_USAGE.frame(
        {
            "path": all_nodes,
            "depth": depth,
            "processes": own_p,
            "processes_with_descendants": sub_p,
            "rss_bytes": own_rss,
            "rss_bytes_with_descendants": sub_rss,
            "shared_pss_bytes": own_pss,
            "shared_pss_bytes_with_descendants": sub_pss,
            "charged_bytes": own_chg,
            "charged_bytes_with_descendants": sub_chg,
        }
    )


def group_usage(
    buffers: pd.DataFrame, held: Bool, holdings: pd.DataFrame, column: str
) -> pd.DataFrame:
    """Buffers, bytes and distinct holders per value of ``column`` (exporter or name)."""
    if len(buffers) == 0:
        return GROUP_USAGE.empty()
    codes_, uniques = pd.factorize(buffers[column])  # the frame is sorted at the end
    codes = np.asarray(codes_, dtype=np.int64)
    labels = [str(u) for u in uniques]
    if (codes < 0).any():  # no value: the UNKNOWN_KEY group (merged with a real one so named)
        if UNKNOWN_KEY not in labels:
            labels.append(UNKNOWN_KEY)
        codes[codes < 0] = labels.index(UNKNOWN_KEY)
    ng = len(labels)
    size = buffers["size_bytes"].to_numpy(dtype=np.int64)
    inv = buffers["in_inventory"].to_numpy()
    ko = inv & ~held

    def cnt(sel: Bool) -> I64:
        return np.bincount(codes[sel], minlength=ng).astype(np.int64)

    def tot(sel: Bool) -> I64:
        return np.bincount(codes[sel], weights=size[sel], minlength=ng).astype(np.int64)

    allsel = np.ones(codes.size, dtype=np.bool_)
    # distinct holders per group
    binodes = buffers["inode"].to_numpy(dtype=np.int64)
    hin = holdings["inode"].to_numpy(dtype=np.int64)
    j, found = lookup(hin, binodes)
    hcode = codes[j[found]]
    hpid = holdings["pid"].to_numpy(dtype=np.int64)[found]
    pairs = uniq(hcode * (1 << 32) + hpid)
    holders = (
        np.bincount(pairs >> 32, minlength=ng).astype(np.int64)
        if pairs.size
        else np.zeros(ng, np.int64)
    )
    frame = GROUP_USAGE.frame(
        {
            "key": labels,
            "buffers": cnt(allsel),
            "bytes": tot(allsel),
            "userspace_buffers": cnt(held),
            "userspace_bytes": tot(held),
            "kernel_only_buffers": cnt(ko),
            "kernel_only_bytes": tot(ko),
            "holders": holders,
        }
    )
    return frame.sort_values(["bytes", "key"], ascending=[False, True], ignore_index=True)
