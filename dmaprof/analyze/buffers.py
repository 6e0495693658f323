"""The ``inventory`` (global per-buffer sources) and ``buffers`` (one row per inode) tables.

Per column, the first source that knows the value wins, in this order: fd references
(fdinfo, then ``stat -L``), BPF iterator, sysfs, debugfs bufinfo, mappings (a buffer only
known from maps gets the length of its largest mapping as an *estimated* size, like AOSP's
fallback; AOSP takes the first mapping seen, the largest is deterministic and never smaller).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dmaprof.analyze._scan import isin, uniq
from dmaprof.analyze.bufinfo import Bufinfo
from dmaprof.analyze.schema import ATTACHMENTS, BUFFERS, INVENTORY

_SOURCES = ("fdinfo", "fdstat", "maps", "bpf", "sysfs", "debugfs")


def build_inventory(
    sysfs: pd.DataFrame, bpf: pd.DataFrame, bufinfo: Bufinfo | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inventory, attachments) tables."""
    parts: list[pd.DataFrame] = []
    if len(bpf):
        parts.append(INVENTORY.frame({
            "source": pd.Categorical(["bpf"] * len(bpf)),
            "inode": bpf["inode"].to_numpy(dtype=np.int64),
            "size_bytes": bpf["size_bytes"].array,
            "exporter": bpf["exporter"].array,
            "name": bpf["name"].array,
        }))
    if len(sysfs):
        parts.append(INVENTORY.frame({
            "source": pd.Categorical(["sysfs"] * len(sysfs)),
            "inode": sysfs["inode"].to_numpy(dtype=np.int64),
            "size_bytes": sysfs["size_bytes"].array,
            "exporter": sysfs["exporter"].array,
            "attachments": sysfs["attachments"].array,
        }))
    att_rows: list[tuple[int | None, int, str]] = []
    if bufinfo is not None and bufinfo.records:
        recs = bufinfo.records
        parts.append(INVENTORY.frame({
            "source": pd.Categorical(["debugfs"] * len(recs)),
            "inode": pd.array([r.inode for r in recs], dtype="Int64"),
            "size_bytes": pd.array([r.size for r in recs], dtype="Int64"),
            "exporter": [r.exporter for r in recs],
            "name": [r.name for r in recs],
            "count": pd.array([r.count for r in recs], dtype="Int64"),
            "flags": pd.array([r.flags for r in recs], dtype="Int64"),
            "mode": pd.array([r.mode for r in recs], dtype="Int64"),
            "attachments": pd.array([len(r.devices) for r in recs], dtype="Int64"),
            "fences": pd.array([len(r.fences) for r in recs], dtype="Int64"),
            "extra": [r.extra for r in recs],
        }))
        for k, r in enumerate(recs):
            for dev in r.devices:
                att_rows.append((r.inode, k, dev))
    if parts:
        inv = pd.concat(parts, ignore_index=True)
        inv["source"] = pd.Categorical(inv["source"].astype("str"),
                                       categories=["sysfs", "bpf", "debugfs"])
        inv = INVENTORY.frame(inv)
    else:
        inv = INVENTORY.empty()
    if att_rows:
        ino, rec, dev = zip(*att_rows, strict=True)
        att = ATTACHMENTS.frame({"inode": pd.array(list(ino), dtype="Int64"),
                                 "record": np.array(rec, np.int64), "device": list(dev)})
    else:
        att = ATTACHMENTS.empty()
    return inv, att


def _facts(frame: pd.DataFrame, rank: int | np.ndarray, source: str | np.ndarray) -> pd.DataFrame:
    """Normalised (inode, rank, src, size_bytes, exporter, name, count, attachments) rows."""
    n = len(frame)
    out = pd.DataFrame({
        "inode": frame["inode"].to_numpy(dtype=np.int64),
        "rank": np.broadcast_to(np.asarray(rank, dtype=np.int64), (n,)).copy(),
        "src": np.broadcast_to(np.asarray(source, dtype=object), (n,)).copy(),
    })
    for col in ("size_bytes", "count", "attachments"):
        if col in frame:
            out[col] = pd.array(frame[col].array, dtype="Int64")
        else:
            out[col] = pd.array([pd.NA] * n, dtype="Int64")
    for col in ("exporter", "name"):
        if col in frame:
            out[col] = frame[col].astype("object").where(frame[col].notna(), None).to_numpy()
        else:
            out[col] = np.full(n, None, dtype=object)
    return out


def build_buffers(
    refs: pd.DataFrame, inventory: pd.DataFrame, attachments: pd.DataFrame
) -> pd.DataFrame:
    """One row per inode known from any source (see the module docstring)."""
    facts: list[pd.DataFrame] = []
    fd = refs[(refs["kind"] == "fd") & refs["inode"].notna()]
    if len(fd):
        g = fd.groupby("inode", sort=False, observed=True)
        fdf = g.agg(
            size_bytes=("size_bytes", "first"),
            size_source=("size_source", "first"),
            count=("count", "first"),
        ).reset_index()
        # strings: one value per inode (all fds of a buffer report the same)
        exp = (fd[fd["exporter"].notna()].drop_duplicates("inode")
               .set_index("inode")["exporter"])
        nam = fd[fd["name"].notna()].drop_duplicates("inode").set_index("inode")["name"]
        fdf["exporter"] = exp.reindex(fdf["inode"]).astype("str").array
        fdf["name"] = nam.reindex(fdf["inode"]).astype("str").array
        src = np.where(fdf["size_source"].astype("str").eq("fdstat").to_numpy(), "fdstat",
                       "fdinfo")
        rank = np.where(src == "fdstat", 1, 0)
        f = _facts(fdf, rank, src)
        facts.append(f)
    for source, rank in (("bpf", 2), ("sysfs", 3), ("debugfs", 4)):
        inv = inventory[(inventory["source"] == source) & inventory["inode"].notna()]
        if len(inv):
            inv = inv.drop_duplicates("inode")
            facts.append(_facts(inv, rank, source))
    mp = refs[(refs["kind"] == "map") & refs["inode"].notna()]
    if len(mp):
        g = mp.groupby("inode", sort=False, observed=True)
        mpf = g.agg(size_bytes=("mapped_bytes", "max")).reset_index()
        nam = mp[mp["name"].notna()].drop_duplicates("inode").set_index("inode")["name"]
        mpf["name"] = nam.reindex(mpf["inode"]).astype("str").array
        facts.append(_facts(mpf, 5, "maps"))
    if not facts:
        return BUFFERS.empty()
    allf = pd.concat(facts, ignore_index=True)
    # size_source per row (the fd rows carry fdinfo/fdstat already)
    size_src = allf["src"].to_numpy(dtype=object).copy()
    size_src[size_src == "maps"] = "vma_estimate"
    allf["size_source"] = size_src
    allf.loc[allf["size_bytes"].isna(), "size_source"] = None
    allf = allf.sort_values(["inode", "rank"], kind="stable")
    g = allf.groupby("inode", sort=True)
    first = g.agg(
        size_bytes=("size_bytes", "first"),
        size_source=("size_source", "first"),
        exporter=("exporter", "first"),
        name=("name", "first"),
        count=("count", "first"),
        attachments=("attachments", "first"),
    )
    inodes = first.index.to_numpy(dtype=np.int64)
    # sources: bitmask per inode -> "+"-joined labels
    mask = np.zeros(inodes.size, dtype=np.int64)
    src_arr = allf["src"].to_numpy(dtype=object)
    ino_arr = allf["inode"].to_numpy(dtype=np.int64)
    for bit, label in enumerate(_SOURCES):
        sel = ino_arr[src_arr == label]
        if sel.size:
            mask |= isin(inodes, sel).astype(np.int64) << bit
    labels = {m: "+".join(lbl for b, lbl in enumerate(_SOURCES) if m >> b & 1)
              for m in uniq(mask).tolist()}
    sources = [labels[m] for m in mask.tolist()]
    inv_inodes = inventory["inode"].dropna().to_numpy(dtype=np.int64)
    in_inv = isin(inodes, inv_inodes)

    size = first["size_bytes"]
    size_known = size.notna().to_numpy()
    size_vals = np.where(size_known, size.fillna(0).to_numpy(dtype=np.int64), 0)
    ssrc = first["size_source"].to_numpy(dtype=object)
    ssrc = np.where(size_known, ssrc, "unknown")

    devices: dict[int, tuple[str, ...]] = {}
    att = attachments[attachments["inode"].notna()]
    if len(att):
        for ino, grp in att.groupby("inode", sort=False)["device"]:
            devices[int(ino)] = tuple(grp.astype(str).tolist())
    empty: tuple[str, ...] = ()
    dev_col = [devices.get(i, empty) for i in inodes.tolist()] if devices else [empty] * len(
        inodes)

    return BUFFERS.frame({
        "inode": inodes,
        "size_bytes": size_vals,
        "size_source": pd.Categorical(
            ssrc, categories=["fdinfo", "fdstat", "bpf", "sysfs", "debugfs", "vma_estimate",
                              "unknown"]),
        "size_estimated": ssrc == "vma_estimate",
        "exporter": first["exporter"].astype("str").array,
        "name": first["name"].astype("str").array,
        "count": pd.array(first["count"].astype("Int64").array, dtype="Int64"),
        "attached_devices": dev_col,
        "attachments": pd.array(first["attachments"].astype("Int64").array, dtype="Int64"),
        "in_inventory": in_inv,
        "sources": sources,
    })
