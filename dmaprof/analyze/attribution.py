"""Who holds which buffer, and what each process, app, cgroup, exporter and name is charged.

Definitions (``docs/attribution.md`` is the reference; they follow AOSP ``dmabuf_dump``):

* A process **holds** a buffer when one of its fd tables (its own, or a thread's unshared
  table) has an fd to it, or it maps it. Only references with an identity (inode) count.
* ``rss`` of a process: sum of the sizes of the distinct buffers it holds.
* ``pss``: each buffer's size split among the distinct processes holding it, in exact
  integer bytes: every holder gets ``size // n``, and the first ``size % n`` holders by
  ascending pid get one byte more. So ``sum(pss) == sum(size of held buffers)``.
* Charge policies: ``shared`` (pss), ``full`` (rss) and ``client`` (a buffer held both by an
  app and by a graphics/media service is charged wholly to its app holders, split exactly
  among them; every other buffer is shared).

Everything here is vectorised (numpy sorts and ``reduceat``); no per-row Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from dmaprof.analyze._scan import isin, lookup, objects, sort_order, uniq
from dmaprof.analyze.schema import (
    APPS,
    CGROUP_USAGE,
    CROSSCHECK,
    GROUP_USAGE,
    HOLDINGS,
    KERNEL_ONLY,
    USAGE,
)
from dmaprof.analyze.uids import (
    is_app_uid,
    owner_uid,
    uid_kind,
    uid_name,
)

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

CHARGE_POLICIES = ("shared", "full", "client")

#: Graphics/media service processes for ``--charge client`` (matched with ``re.search``
#: against the process name, argv[0] and the basename of argv[0]; apps never match).
DEFAULT_SERVICE_PATTERNS: tuple[str, ...] = (
    r"surfaceflinger",
    r"composer",  # android.hardware.graphics.composer*, vendor display composers
    r"android\.hardware\.graphics\.allocator",
    r"gralloc",
    r"camera\.provider",  # android.hardware.camera.provider*, vendor camera providers
    r"^cameraserver$",
    r"^media\.codec$",
    r"^mediacodec$",
    r"^media\.swcodec$",
    r"^mediaswcodec$",
    r"^mediaserver$",
    r"android\.hardware\.media\.c2",
    r"android\.hardware\.media\.omx",
    # vendor names (docs/attribution.md §6 gives a public source for each)
    r"\.display\.allocator",  # Qualcomm vendor.qti.hardware.display.allocator*
    r"\.media\.c2",  # vendor codec2: vendor.qti.media.c2*, samsung.hardware.media.c2*, ...
    r"mtkcodecservice",  # MediaTek vendor.mediatek.hardware.mtkcodecservice*
    r"mediatek\.hardware\.mms",  # MediaTek multimedia service (blits graphic buffers)
    r"^camerahalserver$",  # MediaTek camera HAL
)
DEFAULT_SERVICE_REGEX = "|".join(f"(?:{p})" for p in DEFAULT_SERVICE_PATTERNS)

UNKNOWN_KEY = "<unknown>"


def exact_split(size: I64, n: I64, rank: I64) -> I64:
    """Share of the holder of 0-based ``rank`` among ``n`` holders of a buffer of ``size``
    bytes: ``size // n``, plus one byte for the first ``size % n`` ranks."""
    n = np.maximum(n, 1)
    return size // n + (rank < size % n).astype(np.int64)


@dataclass
class Attribution:
    holdings: pd.DataFrame
    usage: pd.DataFrame
    apps: pd.DataFrame
    cgroups: pd.DataFrame
    exporters: pd.DataFrame
    names: pd.DataFrame
    kernel_only: pd.DataFrame
    crosscheck: pd.DataFrame
    held: Bool  # per buffers row: held by >= 1 process


def _group_starts(sorted_keys: I64) -> I64:
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.empty(sorted_keys.size, dtype=np.bool_)
    new[0] = True
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return np.flatnonzero(new)


def _lookup(keys: I64, table: I64) -> tuple[I64, Bool]:
    """Index into sorted ``table`` for each key, and whether it was found."""
    return lookup(keys, table)


def service_mask(processes: pd.DataFrame, regex: str) -> Bool:
    """Processes matching the service regex (never apps)."""
    pat = re.compile(regex)
    names = objects(processes["name"])
    argv0 = objects(processes["argv0"])
    uids = objects(processes["uid"])
    out = np.zeros(len(processes), dtype=np.bool_)
    for i, (nm, a0, uid) in enumerate(zip(names, argv0, uids, strict=True)):
        if uid is not None and is_app_uid(int(uid)):
            continue
        cands = [x for x in (nm, a0, a0.rsplit("/", 1)[-1] if a0 else None) if x]
        out[i] = any(pat.search(c) for c in cands)
    return out


def owner_uids(processes: pd.DataFrame, packages: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Owner uid per process (-1 when the uid is unknown)."""
    pkg_uids: dict[str, list[int]] = {}
    for pkg, uid in zip(packages["package"].tolist(), packages["uid"].tolist(), strict=True):
        pkg_uids.setdefault(pkg, []).append(int(uid))
    uids = objects(processes["uid"])
    argv0 = objects(processes["argv0"])
    names = objects(processes["name"])
    out = np.full(len(processes), -1, dtype=np.int64)
    for i, (uid, a0, nm) in enumerate(zip(uids, argv0, names, strict=True)):
        if uid is not None:
            out[i] = owner_uid(int(uid), a0, nm, pkg_uids)
    return out


def compute_holdings(
    refs: pd.DataFrame, buffers: pd.DataFrame
) -> tuple[I64, I64, I64, I64, I64, I64, Bool, I64, I64]:
    """(pid, inode, fds, maps, mapped_bytes, size, size_estimated, item, item_sizes) per
    holding, sorted by (inode, pid). ``item`` numbers the distinct buffers 0.. (the row in
    ``buffers``, then any inode missing from it) and ``item_sizes`` gives each one's size:
    small integers that make the per-group "distinct buffers" sorts cheap."""
    ident = refs["inode"].notna().to_numpy()
    pid = refs["pid"].to_numpy(dtype=np.int64)[ident]
    ino = refs["inode"].to_numpy(dtype=np.int64, na_value=0)[ident]
    isfd = (refs["kind"] == "fd").to_numpy()[ident]
    mb = refs["mapped_bytes"].to_numpy(dtype=np.int64, na_value=0)[ident]
    if (
        ino.size
        and int(ino.max()) < (1 << 40)
        and int(ino.min()) >= 0
        and int(pid.max()) < (1 << 23)
    ):
        order = sort_order((ino << 23) | pid)
    else:
        order = np.lexsort((pid, ino))
    pid, ino, isfd, mb = pid[order], ino[order], isfd[order], mb[order]
    if pid.size:
        new = np.empty(pid.size, dtype=np.bool_)
        new[0] = True
        new[1:] = (ino[1:] != ino[:-1]) | (pid[1:] != pid[:-1])
        starts = np.flatnonzero(new)
        fds = np.add.reduceat(isfd.astype(np.int64), starts)
        maps = np.add.reduceat((~isfd).astype(np.int64), starts)
        mapped = np.add.reduceat(mb, starts)
        hp, hi = pid[starts], ino[starts]
    else:
        z = np.zeros(0, np.int64)
        fds = maps = mapped = hp = hi = z
    binodes = buffers["inode"].to_numpy(dtype=np.int64)
    bsize = buffers["size_bytes"].to_numpy(dtype=np.int64)
    j, found = _lookup(hi, binodes)
    size = np.where(found, bsize[j] if binodes.size else 0, 0)
    est = np.where(found, buffers["size_estimated"].to_numpy()[j] if binodes.size else False, False)
    item = np.where(found, j, -1)
    item_sizes = bsize
    if not found.all():
        # buffers are built from these references, so this does not happen; stay exact anyway
        missing, inv = np.unique(hi[~found], return_inverse=True)
        item[~found] = binodes.size + inv
        item_sizes = np.concatenate([bsize, np.zeros(missing.size, np.int64)])
    return hp, hi, fds, maps, mapped, size, est.astype(np.bool_), item, item_sizes


def attribute(
    processes: pd.DataFrame,
    refs: pd.DataFrame,
    buffers: pd.DataFrame,
    packages: pd.DataFrame,
    *,
    charge: str = "shared",
    service_regex: str | None = None,
) -> Attribution:
    if charge not in CHARGE_POLICIES:
        raise ValueError(f"unknown charge policy {charge!r} (one of {', '.join(CHARGE_POLICIES)})")
    regex = service_regex if service_regex is not None else DEFAULT_SERVICE_REGEX

    procs = processes.sort_values("pid", kind="stable").reset_index(drop=True)
    ppid_arr = procs["pid"].to_numpy(dtype=np.int64)
    uid_obj = objects(procs["uid"])
    is_app = np.array([u is not None and is_app_uid(int(u)) for u in uid_obj], dtype=np.bool_)
    is_svc = service_mask(procs, regex)
    owners = owner_uids(procs, packages)

    hp, hi, fds, maps, mapped, size, est, item, item_sizes = compute_holdings(refs, buffers)
    nh = hp.size
    # holders per buffer and rank of each holder (pid ascending within the buffer)
    gstart = _group_starts(hi)
    gcount = np.diff(np.append(gstart, nh)) if nh else np.zeros(0, np.int64)
    gid = np.repeat(np.arange(gstart.size), gcount)
    n = gcount[gid] if nh else np.zeros(0, np.int64)
    rank = np.arange(nh) - gstart[gid] if nh else np.zeros(0, np.int64)
    pss = exact_split(size, n, rank)

    pj, pfound = _lookup(hp, ppid_arr)
    h_app = np.where(pfound, is_app[pj] if ppid_arr.size else False, False).astype(np.bool_)
    h_svc = np.where(pfound, is_svc[pj] if ppid_arr.size else False, False).astype(np.bool_)
    if charge == "shared":
        charged = pss
    elif charge == "full":
        charged = size.copy()
    else:
        if nh:
            g_app = np.add.reduceat(h_app.astype(np.int64), gstart)
            g_svc = np.add.reduceat(h_svc.astype(np.int64), gstart)
            cs = np.cumsum(h_app.astype(np.int64))
            before = np.where(gstart > 0, cs[np.maximum(gstart - 1, 0)], 0)
            app_rank = cs - 1 - before[gid]
            client_buf = (g_app > 0) & (g_svc > 0)
            cb = client_buf[gid]
            app_share = exact_split(size, g_app[gid], app_rank)
            charged = np.where(cb, np.where(h_app, app_share, 0), pss)
        else:
            charged = pss
    holdings = HOLDINGS.frame(
        {
            "pid": hp.astype(np.int32),
            "inode": hi,
            "fds": fds,
            "maps": maps,
            "mapped_bytes": mapped,
            "size_bytes": size,
            "holders": n,
            "pss_bytes": pss,
            "charged_bytes": charged,
        }
    )

    # -- per process ---------------------------------------------------------------------
    npr = ppid_arr.size

    def per_proc(values: npt.NDArray[np.int64] | Bool, sel: Bool | None = None) -> I64:
        if npr == 0:
            return np.zeros(0, np.int64)
        idx, ok = pj, pfound
        v = np.asarray(values, dtype=np.int64)
        if sel is not None:
            ok = ok & sel
        return (
            np.bincount(idx[ok], weights=None if v is None else v[ok], minlength=npr).astype(
                np.int64
            )
            if nh
            else np.zeros(npr, np.int64)
        )

    ones = np.ones(nh, dtype=np.int64)
    rss = per_proc(size)
    pss_p = per_proc(pss)
    charged_p = per_proc(charged)
    nbuf = per_proc(ones)
    fd_only = per_proc(ones, (fds > 0) & (maps == 0))
    map_only = per_proc(ones, (fds == 0) & (maps > 0))
    both = per_proc(ones, (fds > 0) & (maps > 0))
    rss_est = per_proc(ones, est) > 0
    if charge == "full":
        charged_p = rss

    # references of every kind (anon ones included)
    rpid = refs["pid"].to_numpy(dtype=np.int64)
    rfd = (refs["kind"] == "fd").to_numpy()
    rnoid = refs["inode"].isna().to_numpy()
    rj, rfound = _lookup(rpid, ppid_arr)

    def per_proc_refs(values: I64, sel: Bool) -> I64:
        if npr == 0 or rpid.size == 0:
            return np.zeros(npr, np.int64)
        ok = rfound & sel
        return np.bincount(rj[ok], weights=values[ok], minlength=npr).astype(np.int64)

    r_ones = np.ones(rpid.size, dtype=np.int64)
    rsize = refs["size_bytes"].to_numpy(dtype=np.int64, na_value=-1)
    rmapped = refs["mapped_bytes"].to_numpy(dtype=np.int64, na_value=0)
    fds_n = per_proc_refs(r_ones, rfd)
    maps_n = per_proc_refs(r_ones, ~rfd)
    anon_fds = per_proc_refs(r_ones, rfd & rnoid)
    anon_fd_bytes = per_proc_refs(np.maximum(rsize, 0), rfd & rnoid)
    anon_fd_unknown = per_proc_refs(r_ones, rfd & rnoid & (rsize < 0))
    anon_maps = per_proc_refs(r_ones, ~rfd & rnoid)
    anon_mapped = per_proc_refs(rmapped, ~rfd & rnoid)

    unreadable = np.zeros(npr, dtype=np.bool_)
    for col in ("fds_access", "maps_access", "fdinfo_access"):
        unreadable |= (procs[col].astype("str") == "denied").to_numpy()
    unreadable &= ~procs["is_kernel_thread"].to_numpy() & ~procs["is_collector"].to_numpy()

    usage = USAGE.frame(
        {
            "pid": ppid_arr.astype(np.int32),
            "name": procs["name"].array,
            "uid": procs["uid"].array,
            "owner_uid": pd.array(np.where(owners >= 0, owners, 0).astype(np.int32), dtype="Int32"),
            "cgroup": procs["cgroup"].array,
            "is_service": is_svc,
            "rss_bytes": rss,
            "pss_bytes": pss_p,
            "charged_bytes": charged_p,
            "buffers": nbuf,
            "fd_only": fd_only,
            "map_only": map_only,
            "both": both,
            "fds": fds_n,
            "maps": maps_n,
            "rss_estimated": rss_est,
            "anon_fds": anon_fds,
            "anon_fd_bytes": anon_fd_bytes,
            "anon_fd_unknown": anon_fd_unknown,
            "anon_maps": anon_maps,
            "anon_mapped_bytes": anon_mapped,
            "kernel_dmabuf_rss_bytes": procs["kernel_dmabuf_rss_bytes"].array,
            "kernel_dmabuf_pss_bytes": procs["kernel_dmabuf_pss_bytes"].array,
            "unreadable": unreadable,
        }
    )
    usage.loc[owners < 0, "owner_uid"] = pd.NA

    binodes = buffers["inode"].to_numpy(dtype=np.int64)
    held = isin(binodes, hi)

    apps = _apps(usage, item, item_sizes, owners, pj, pfound, packages, charge)
    cgroups = _cgroups(usage, item, item_sizes, pj, pfound, charge)
    exporters = _group_usage(buffers, held, holdings, "exporter")
    names = _group_usage(buffers, held, holdings, "name")
    ko = buffers[buffers["in_inventory"].to_numpy() & ~held]
    kernel_only = KERNEL_ONLY.frame(
        {
            "inode": ko["inode"].to_numpy(dtype=np.int64),
            "size_bytes": ko["size_bytes"].to_numpy(dtype=np.int64),
            "exporter": ko["exporter"].array,
            "name": ko["name"].array,
            "count": ko["count"].array,
            "attached_devices": ko["attached_devices"].tolist(),
        }
    )
    crosscheck = _crosscheck(usage)
    return Attribution(
        holdings, usage, apps, cgroups, exporters, names, kernel_only, crosscheck, held
    )


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
        starts = _group_starts(nodes)
        out[nodes[starts]] = np.add.reduceat(item_sizes[items], starts)
    return out


def _dedup_bytes(keys: I64, items: I64, item_sizes: I64) -> tuple[I64, I64, I64]:
    """Per key: (keys, distinct-buffer bytes, distinct buffers); ``items`` number the
    buffers (0..) and index ``item_sizes``."""
    if keys.size == 0:
        z = np.zeros(0, np.int64)
        return z, z, z
    k, i = _distinct_pairs(keys, items, item_sizes.size)
    starts = _group_starts(k)
    return k[starts], np.add.reduceat(item_sizes[i], starts), np.diff(np.append(starts, k.size))


def _apps(
    usage: pd.DataFrame,
    items: I64,
    item_sizes: I64,
    owners: I64,
    pj: I64,
    pfound: Bool,
    packages: pd.DataFrame,
    charge: str,
) -> pd.DataFrame:
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
            "pss": usage["pss_bytes"].to_numpy(),
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
            "pss_bytes": sums["pss"].to_numpy(dtype=np.int64),
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


def _cgroups(
    usage: pd.DataFrame, items: I64, item_sizes: I64, pj: I64, pfound: Bool, charge: str
) -> pd.DataFrame:
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
    pss = usage["pss_bytes"].to_numpy(dtype=np.int64)
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
            "pss_bytes": own_pss,
            "pss_bytes_with_descendants": sub_pss,
            "charged_bytes": own_chg,
            "charged_bytes_with_descendants": sub_chg,
        }
    )


def _group_usage(
    buffers: pd.DataFrame, held: Bool, holdings: pd.DataFrame, column: str
) -> pd.DataFrame:
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
    j, found = _lookup(hin, binodes)
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


def _crosscheck(usage: pd.DataFrame) -> pd.DataFrame:
    krss = usage["kernel_dmabuf_rss_bytes"]
    kpss = usage["kernel_dmabuf_pss_bytes"]
    sel = (krss.notna() | kpss.notna()).to_numpy()
    if not sel.any():
        return CROSSCHECK.empty()
    u = usage[sel]
    rss = u["rss_bytes"].to_numpy(dtype=np.int64)
    pss = u["pss_bytes"].to_numpy(dtype=np.int64)
    nb = u["buffers"].to_numpy(dtype=np.int64)
    kr = u["kernel_dmabuf_rss_bytes"].to_numpy(dtype=np.int64, na_value=-1)
    kp = u["kernel_dmabuf_pss_bytes"].to_numpy(dtype=np.int64, na_value=-1)
    rss_ok = (kr < 0) | (kr == rss)
    pss_ok = (kp < 0) | (np.abs(kp - pss) <= nb)
    bad = ~(rss_ok & pss_ok)
    if not bad.any():
        return CROSSCHECK.empty()
    return CROSSCHECK.frame(
        {
            "pid": u["pid"].to_numpy()[bad],
            "name": u["name"].array[bad],
            "rss_bytes": rss[bad],
            "kernel_rss_bytes": u["kernel_dmabuf_rss_bytes"].array[bad],
            "pss_bytes": pss[bad],
            "kernel_pss_bytes": u["kernel_dmabuf_pss_bytes"].array[bad],
            "rss_agrees": rss_ok[bad],
            "pss_agrees": pss_ok[bad],
        }
    )


#: the exporter/name roll-up, for sources that build their own tables (dmaprof.sources.build)
group_usage = _group_usage
