"""The HTML report of one capture (`dmaprof show --format html`), drawn from its
``dmaprof.report/1`` document: no analysis here, only shaping those figures for plotly.js
and the page's tables. A null figure stays null (the page shows "unknown") and is never
drawn as an area of size 0."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.render.htmlpage import (
    TREEMAP_TILES,
    Block,
    Col,
    Tree,
    page,
    size_text,
    table_block,
    treemap_block,
)

# treemap tiles drawn one by one (the rest are summed: "smaller buffers", "other
# processes"), so that a 2,000-process capture still opens in a browser within 3 s
MAX_LEAVES = 2000
MAX_PROCESSES = 300
MAX_FLOWS = 60  # Sankey links; the rest are summed as "other apps" per service


# --------------------------------------------------------------------------- show


def _process_path(row: Any, apps: dict[Any, str]) -> list[tuple[str, str]]:
    name = row.display_name if isinstance(row.display_name, str) else row.pname
    return [
        (f"e/{row.exporter}", str(row.exporter)),
        (f"e/{row.exporter}/{row.uid}", apps.get(row.uid, f"uid {row.uid}")),
        (f"e/{row.exporter}/{row.uid}/{row.pid}", f"{name} ({row.pid})"),
    ]


def _app_labels(report: dict[str, Any]) -> dict[Any, str]:
    out = {}
    for app in report.get("apps") or []:
        packages = app.get("packages") or []
        out[app.get("uid")] = (
            app.get("label") or (packages[0] if packages else None) or f"uid {app.get('uid')}"
        )
    return out


def _holder_shares(report: dict[str, Any]) -> pd.DataFrame:
    """One row per (buffer, readable holder): the part of the holder's charged bytes
    that buffer stands for. Buffers are weighted as the charge policy weighs them (full:
    the size; otherwise the size split among holders, as pss), then scaled so that each
    process's tiles add up to its own charged figure from the report."""
    bufs = pd.DataFrame(
        report.get("buffers") or [], columns=["inode", "size_bytes", "exporter", "name", "holders"]
    )
    procs = pd.DataFrame(
        report.get("processes") or [],
        columns=["pid", "uid", "name", "display_name", "charged_bytes"],
    )
    procs = procs[procs["charged_bytes"].notna() & (procs["charged_bytes"] > 0)]
    bufs = bufs.assign(n=bufs["holders"].map(len))
    pairs = bufs[bufs["n"] > 0].explode("holders").rename(columns={"holders": "pid"})
    pairs = pairs.astype({"pid": np.int64, "size_bytes": np.float64})
    full = report.get("charge") == "full"
    pairs["w"] = pairs["size_bytes"] if full else pairs["size_bytes"] / pairs["n"]
    pairs = pairs.merge(procs.rename(columns={"name": "pname"}), on="pid", how="inner")
    if pairs.empty:
        return pairs.assign(share=np.zeros(0, dtype=np.int64))
    total = pairs.groupby("pid")["w"].transform("sum")
    share = np.rint(pairs["charged_bytes"] * pairs["w"] / total).astype(np.int64)
    # rounding: the residue goes to each process's last tile, so the tiles sum exactly
    pairs["share"] = share
    summed = pairs.groupby("pid")["share"].transform("sum")
    residue = pairs["charged_bytes"].astype(np.int64) - summed
    last = ~pairs["pid"].duplicated(keep="last")
    pairs.loc[last, "share"] += residue[last]
    return pairs.sort_values("share", ascending=False, kind="stable")


def show_treemap(report: dict[str, Any]) -> Block:
    """exporter → app → process → buffer, each process's tiles adding up to its charged
    bytes; kernel-only buffers in a branch of their own; processes whose charge is unknown
    are left out (said in the caption), not drawn as empty tiles."""
    apps = _app_labels(report)
    unknown = sum(p.get("charged_bytes") is None for p in report.get("processes") or [])
    pairs = _holder_shares(report)
    pairs["exporter"] = pairs["exporter"].fillna("<unknown>")
    by_pid = pairs.groupby("pid")["share"].sum().sort_values(ascending=False, kind="stable")
    top = pairs["pid"].isin(by_pid.index[:MAX_PROCESSES])
    tree = Tree()
    others = pairs[~top].groupby(["exporter", "uid"], sort=False)["share"].sum()
    keys: list[tuple[str, Any]] = others.index.tolist()
    for (exporter, uid), value in zip(keys, others.tolist(), strict=True):
        tree.add(
            [
                (f"e/{exporter}", str(exporter)),
                (f"e/{exporter}/{uid}", apps.get(uid, f"uid {uid}")),
                (f"e/{exporter}/{uid}/others", "other processes"),
            ],
            int(value),
        )
    shown = pairs[top]
    drawn = shown.iloc[:MAX_LEAVES]
    row: Any  # a namedtuple of the frame's columns
    for row in drawn.itertuples(index=False):
        tree.add(
            [
                *_process_path(row, apps),
                (
                    f"e/{row.exporter}/{row.uid}/{row.pid}/{row.inode}",
                    f"{row.name if isinstance(row.name, str) else 'inode'} #{row.inode}",
                ),
            ],
            int(row.share),
            f"{size_text(int(row.size_bytes))} buffer, held by {row.n} process(es)",
        )
    rest = (
        shown.iloc[MAX_LEAVES:]
        .groupby(["exporter", "uid", "pid"], sort=False)
        .agg(
            share=("share", "sum"), display_name=("display_name", "first"), pname=("pname", "first")
        )
    )
    for row in rest.reset_index().itertuples(index=False):
        tree.add(
            [
                *_process_path(row, apps),
                (f"e/{row.exporter}/{row.uid}/{row.pid}/more", "smaller buffers"),
            ],
            int(row.share),
        )
    leaves_total = int(pairs["share"].sum())
    for buf in report.get("kernel_only") or []:
        exporter = buf.get("exporter") or "<unknown>"
        tree.add(
            [
                ("kernel", "kernel-only (no process holds it)"),
                (f"kernel/{exporter}", exporter),
                (
                    f"kernel/{exporter}/{buf.get('inode')}",
                    f"{buf.get('name') or 'inode'} #{buf.get('inode')}",
                ),
            ],
            int(buf.get("size_bytes") or 0),
        )
    totals = report.get("totals") or {}
    if totals.get("kernel_only_bytes") is None and totals.get("bytes") is not None:
        unseen = int(totals["bytes"]) - leaves_total
        if unseen > 0:  # known to exist, holders not known: its own labelled tile
            tree.add(
                [("unattributed", "holders unknown (unreadable processes)")],
                unseen,
                "inventory bytes no readable process accounts for",
            )
    caption = (
        f"Sized by the '{report.get('charge')}' charge policy's figure. "
        "Click a tile to zoom in, the top bar to zoom out."
    )
    if unknown:
        caption += (
            f" {unknown} processes could not be read: their charge is unknown and "
            "they have no tiles."
        )
    if len(by_pid) > MAX_PROCESSES or len(tree.value) > TREEMAP_TILES:
        caption += (
            f" The {TREEMAP_TILES} largest tiles are drawn; smaller processes and buffers "
            "are summed as 'other' (every one is in the tables below)."
        )
    return treemap_block(
        "treemap", "Who holds the DMA-BUF memory", tree.nodes(TREEMAP_TILES), caption
    )


def _shared_pairs(
    report: dict[str, Any],
) -> tuple[dict[tuple[str, str], list[int]], dict[tuple[str, str], int]]:
    """For the buffers a graphics/media service holds with an app: [buffers, bytes] per
    (service, app), and bytes per (exporter, service)."""
    procs = {p.get("pid"): p for p in report.get("processes") or []}
    apps = _app_labels(report)
    pairs: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    heaps: dict[tuple[str, str], int] = defaultdict(int)
    for buf in report.get("buffers") or []:
        holders = [procs[p] for p in buf.get("holders") or [] if p in procs]
        services = {
            str(p.get("display_name") or p.get("name")) for p in holders if p.get("is_service")
        }
        clients = {
            apps.get(p.get("uid"), f"uid {p.get('uid')}")
            for p in holders
            if not p.get("is_service")
        }
        size = int(buf.get("size_bytes") or 0)
        for pair in ((s, c) for s in services for c in clients):
            pairs[pair][0] += 1
            pairs[pair][1] += size
        if clients:
            for service in services:
                heaps[(str(buf.get("exporter") or "<unknown>"), service)] += size
    return pairs, heaps


def sharing(report: dict[str, Any]) -> tuple[Block | None, Block]:
    """Bytes of the buffers each graphics/media service shares with each app: a Sankey
    chart (heap → service → app) and the service-app pairs as a table."""
    pairs, heaps = _shared_pairs(report)
    rows: list[dict[str, Any]] = [
        {"service": s, "app": c, "buffers": n, "bytes": b}
        for (s, c), (n, b) in sorted(pairs.items(), key=lambda kv: -kv[1][1])
    ]
    table = table_block(
        "sharing",
        "Buffers services share with apps",
        [
            ("service", "service", "text"),
            ("app", "app", "text"),
            ("buffers", "buffers", "int"),
            ("bytes", "bytes of those buffers", "bytes"),
        ],
        rows,
        caption="Each buffer counts once for every service-app pair holding it.",
    )
    if not rows:
        return None, table
    return _sankey(rows, heaps), table


def _sankey(rows: list[dict[str, Any]], heaps: dict[tuple[str, str], int]) -> Block:
    flows = rows[:MAX_FLOWS]
    rest: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows[MAX_FLOWS:]:
        rest[r["service"]][0] += r["buffers"]
        rest[r["service"]][1] += r["bytes"]
    flows += [
        {"service": s, "app": "other apps", "buffers": n, "bytes": b} for s, (n, b) in rest.items()
    ]
    # three columns; a name may stand in two (an app called like a heap): keyed by column
    columns = [
        sorted({e for e, _ in heaps}),
        sorted({r["service"] for r in flows}),
        sorted({r["app"] for r in flows}),
    ]
    kinds = ["heap", "service", "app"]
    index: dict[tuple[int, str], int] = {}
    for col, names in enumerate(columns):
        for name in names:
            index[(col, name)] = len(index)
    links = [
        (index[(0, e)], index[(1, s)], b, f"{size_text(b)} of {e} buffers {s} shares with apps")
        for (e, s), b in sorted(heaps.items())
    ] + [
        (
            index[(1, r["service"])],
            index[(2, r["app"])],
            r["bytes"],
            f"{r['buffers']} buffers, {size_text(r['bytes'])}",
        )
        for r in flows
    ]
    trace = {
        "type": "sankey",
        "arrangement": "snap",
        "node": {
            "label": [name for names in columns for name in names],
            "pad": 12,
            "customdata": [kinds[col] for col, names in enumerate(columns) for _ in names],
            "hovertemplate": "%{label} (%{customdata})<extra></extra>",
        },
        "link": {
            "source": [link[0] for link in links],
            "target": [link[1] for link in links],
            "value": [link[2] for link in links],
            "customdata": [link[3] for link in links],
            "hovertemplate": "%{source.label} → %{target.label}<br>%{customdata}<extra></extra>",
        },
    }
    return {
        "type": "chart",
        "id": "sankey",
        "title": "Sharing: heap → graphics/media service → app",
        "caption": "Where the buffers that services (compositor, allocator, codecs) share with "
        "apps come from, and which apps hold them. Width: bytes of those buffers; a buffer "
        "counts once per service on the left and once per service-app pair on the right"
        + (
            f"; beyond the {MAX_FLOWS} widest service-app flows, apps are summed as 'other apps'."
            if len(rows) > MAX_FLOWS
            else "."
        ),
        "traces": [trace],
        "layout": {"height": max(360, 28 * max(len(c) for c in columns))},
    }


PROCESS_COLS: list[Col] = [
    ("pid", "pid", "int"),
    ("display_name", "process", "text"),
    ("app", "app", "text"),
    ("uid", "uid", "int"),
    ("charged_bytes", "charged", "bytes"),
    ("rss_bytes", "rss", "bytes"),
    ("shared_pss_bytes", "pss", "bytes"),
    ("buffers", "buffers", "int"),
    ("fds", "fds", "int"),
    ("maps", "maps", "int"),
    ("is_service", "service", "text"),
    ("cgroup", "cgroup", "text"),
]


def _header_show(report: dict[str, Any]) -> list[tuple[str, str | None]]:
    dev, cov = report.get("device") or {}, report.get("coverage") or {}
    totals, access = report.get("totals") or {}, report.get("access") or {}
    return [
        ("device", dev.get("model")),
        ("serial", dev.get("serial")),
        ("android", dev.get("android_release")),
        ("kernel", dev.get("kernel_release")),
        ("captured", dev.get("captured_at")),
        ("mode", access.get("mode")),
        ("source", (report.get("source") or {}).get("kind")),
        ("charge", report.get("charge")),
        (
            "coverage",
            f"{cov.get('processes')} processes, {cov.get('processes_unreadable')} unreadable",
        ),
        ("all buffers", f"{totals.get('buffers')} · {size_text(totals.get('bytes'))}"),
        ("held by processes", size_text(totals.get("userspace_bytes"))),
        ("kernel-only", size_text(totals.get("kernel_only_bytes"))),
    ]


def _notes_show(report: dict[str, Any]) -> list[str]:
    cov, access = report.get("coverage") or {}, report.get("access") or {}
    notes = []
    unreadable = cov.get("unreadable") or []
    if unreadable:
        names = ", ".join(
            f"{u.get('name')} ({u.get('pid')}: {'/'.join(u.get('what') or [])})"
            for u in unreadable[:20]
        )
        more = f" and {len(unreadable) - 20} more" if len(unreadable) > 20 else ""
        notes.append(f"{len(unreadable)} processes could not be read: {names}{more}")
    if cov.get("missing_sources"):
        notes.append("sources absent: " + ", ".join(map(str, cov["missing_sources"])))
    if cov.get("lower_bound"):
        notes.append("totals that unreadable processes could change are lower bounds")
    if access.get("note"):
        notes.append(str(access["note"]))
    notes.extend(
        item if isinstance(item, str) else str(item.get("text") or item)
        for item in report.get("limitations") or []
    )
    notes.extend(str(w) for w in report.get("warnings") or [])
    return notes


def show_html(report: dict[str, Any]) -> str:
    """The page of one capture (`dmaprof show --format html`)."""
    apps = _app_labels(report)
    procs = [{**p, "app": apps.get(p.get("uid"))} for p in report.get("processes") or []]
    names = {
        p.get("pid"): f"{p.get('display_name') or p.get('name')} ({p.get('pid')})" for p in procs
    }
    buffers = report.get("buffers") or []
    sankey, share_table = sharing(report)
    tiles = show_treemap(report)
    tiles["pick"] = {
        "table": "buffers",
        "column": 4,
        "what": "pid",
        "pattern": r"^e/[^/]+/[^/]+/(\d+)$",
    }
    blocks: list[Block] = [tiles]
    if sankey:
        blocks.append(sankey)
    blocks += [
        share_table,
        table_block(
            "processes",
            "Processes",
            PROCESS_COLS,
            procs,
            caption="Click a process to list its buffers and their co-holders.",
            select={"table": "buffers", "from": 0, "to": 4, "what": "pid", "label": 1},
        ),
        table_block(
            "buffers",
            "Buffers",
            [
                ("inode", "inode", "int"),
                ("name", "name", "text"),
                ("exporter", "exporter", "text"),
                ("size_bytes", "size", "bytes"),
                ("holders", "holders", "pids"),
                ("kernel_only", "kernel-only", "text"),
                ("count", "refs", "int"),
            ],
            buffers,
        ),
        table_block(
            "apps",
            "Apps",
            [
                ("uid", "uid", "int"),
                ("label", "app", "text"),
                ("packages", "packages", "text"),
                ("charged_bytes", "charged", "bytes"),
                ("rss_bytes", "rss", "bytes"),
                ("processes", "processes", "int"),
                ("buffers", "buffers", "int"),
            ],
            report.get("apps") or [],
        ),
        table_block(
            "exporters",
            "Exporters / heaps",
            [
                ("exporter", "exporter", "text"),
                ("buffers", "buffers", "int"),
                ("bytes", "bytes", "bytes"),
                ("userspace_bytes", "held by processes", "bytes"),
                ("kernel_only_bytes", "kernel-only", "bytes"),
                ("holders", "holders", "int"),
            ],
            report.get("exporters") or [],
        ),
        table_block(
            "cgroups",
            "Cgroups",
            [
                ("path", "cgroup", "text"),
                # a cgroup's pss_bytes is its charged figure (dmaprof.report/1)
                ("pss_bytes", "charged", "bytes"),
                ("pss_bytes_with_descendants", "charged with descendants", "bytes"),
                ("rss_bytes_with_descendants", "rss with descendants", "bytes"),
                ("processes_with_descendants", "processes", "int"),
            ],
            report.get("cgroups") or [],
        ),
    ]
    model = (report.get("device") or {}).get("model") or "capture"
    return page(
        f"dmaprof report: {model}", _header_show(report), _notes_show(report), blocks, names=names
    )
