"""HTML reports of `show`, `diff` and `trend`, drawn from their JSON documents
(``dmaprof.report/1``, ``dmaprof.diff/2``, ``dmaprof.trend/N``): no analysis here, only
shaping those figures for plotly.js and the page's tables. A null figure stays null
(the page shows "unknown") and is never drawn as an area of size 0."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dmaprof.render.htmlpage import Block, page
from dmaprof.units import human_bytes

# treemap tiles drawn one by one (the rest are summed: "smaller buffers", "other
# processes"), so that a 2,000-process capture still opens in a browser within 3 s
MAX_LEAVES = 2000
MAX_PROCESSES = 300
MAX_NODES = 600  # tiles of the treemap; smaller ones are summed as "other" per branch
MAX_FLOWS = 60  # Sankey links; the rest are summed as "other apps" per service
TREND_SERIES = 8  # curves per chart, as the SVG plot

Col = tuple[str, str, str]  # key, label, kind: bytes|delta|int|text|status|verdict|hidden


def _size(value: Any) -> str:
    return "unknown" if value is None else human_bytes(int(value))


def _table(
    block_id: str,
    title: str,
    columns: Sequence[Col],
    rows: Iterable[dict[str, Any]],
    caption: str | None = None,
    select: dict[str, Any] | None = None,
) -> Block:
    rows = list(rows)
    present = {k for row in rows for k in row}
    # a key the document lacks (an older schema) is "absent", not a column of unknowns
    cols = [
        {
            "key": k,
            "label": label,
            "kind": kind if not rows or k in present else "absent",
            "hidden": kind == "hidden",
        }
        for k, label, kind in columns
    ]
    data = [[_cell(row.get(k)) for k, _, _ in columns] for row in rows]
    block: Block = {
        "type": "table",
        "id": block_id,
        "title": title,
        "columns": cols,
        "rows": data,
        "caption": caption,
    }
    if select:
        block["select"] = select
    return block


def _cell(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def _treemap(
    block_id: str, title: str, nodes: list[tuple[str, str, str, int, str]], caption: str
) -> Block:
    """``nodes``: (id, label, parent id, value, hover text); values are totals of their
    children (plotly's branchvalues="total")."""
    ids, labels, parents, values, hover = (
        (list(col) for col in zip(*nodes, strict=True)) if nodes else ([], [], [], [], [])
    )
    trace = {
        "type": "treemap",
        "ids": ids,
        "labels": labels,
        "parents": parents,
        "values": values,
        "customdata": hover,
        "branchvalues": "total",
        "hovertemplate": "<b>%{label}</b><br>%{customdata}<extra></extra>",
        "texttemplate": "%{label}<br>%{customdata}",
        "maxdepth": 3,
        "marker": {"line": {"width": 1}},
    }
    return {
        "type": "chart",
        "id": block_id,
        "title": title,
        "caption": caption,
        "traces": [trace],
        "layout": {"height": 560},
    }


class _Tree:
    """Treemap nodes summed bottom-up, so every branch is the total of its tiles."""

    def __init__(self) -> None:
        self.label: dict[str, str] = {}
        self.parent: dict[str, str] = {}
        self.value: dict[str, int] = defaultdict(int)
        self.extra: dict[str, str] = {}

    def add(self, path: Sequence[tuple[str, str]], value: int, hover: str = "") -> None:
        parent = ""
        for node_id, label in path:
            self.label.setdefault(node_id, label)
            self.parent.setdefault(node_id, parent)
            self.value[node_id] += value
            parent = node_id
        if hover:
            self.extra[path[-1][0]] = hover

    def nodes(self, limit: int = 0) -> list[tuple[str, str, str, int, str]]:
        """The nodes, at most ``limit`` of the largest (0: all); what a kept branch loses
        becomes its "other" tile, so every branch still sums to its figure."""
        depth: dict[str, int] = {}
        for i in self.value:  # parents are added before their children
            depth[i] = depth[self.parent[i]] + 1 if self.parent[i] else 0
        order = sorted(
            (i for i, v in self.value.items() if v > 0), key=lambda i: (-self.value[i], depth[i])
        )
        keep = order[:limit] if limit else order
        kept = set(keep)
        shown: dict[str, int] = defaultdict(int)
        for i in keep:
            if self.parent[i]:
                shown[self.parent[i]] += self.value[i]
        out = [
            (
                i,
                self.label[i],
                self.parent[i],
                self.value[i],
                _size(self.value[i]) + (" · " + self.extra[i] if i in self.extra else ""),
            )
            for i in keep
        ]
        for parent, value in shown.items():
            if parent in kept and value < self.value[parent]:
                rest = self.value[parent] - value
                out.append((f"{parent}/~other", "other", parent, rest, _size(rest)))
        return out


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
    tree = _Tree()
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
            f"{_size(int(row.size_bytes))} buffer, held by {row.n} process(es)",
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
    if len(by_pid) > MAX_PROCESSES or len(tree.value) > MAX_NODES:
        caption += (
            f" The {MAX_NODES} largest tiles are drawn; smaller processes and buffers "
            "are summed as 'other' (every one is in the tables below)."
        )
    return _treemap("treemap", "Who holds the DMA-BUF memory", tree.nodes(MAX_NODES), caption)


def sharing(report: dict[str, Any]) -> tuple[Block | None, Block]:
    """Bytes of the buffers each graphics/media service shares with each app: a Sankey
    chart (services → apps) and the same pairs as a table."""
    procs = {p.get("pid"): p for p in report.get("processes") or []}
    apps = _app_labels(report)
    pairs: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
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
        for pair in ((s, c) for s in services for c in clients):
            pairs[pair][0] += 1
            pairs[pair][1] += int(buf.get("size_bytes") or 0)
    rows: list[dict[str, Any]] = [
        {"service": s, "app": c, "buffers": n, "bytes": b}
        for (s, c), (n, b) in sorted(pairs.items(), key=lambda kv: -kv[1][1])
    ]
    table = _table(
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
    flows = rows[:MAX_FLOWS]
    rest: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows[MAX_FLOWS:]:
        rest[r["service"]][0] += r["buffers"]
        rest[r["service"]][1] += r["bytes"]
    flows += [
        {"service": s, "app": "other apps", "buffers": n, "bytes": b} for s, (n, b) in rest.items()
    ]
    left = sorted({r["service"] for r in flows})
    right = sorted({r["app"] for r in flows})
    index = {n: i for i, n in enumerate(left)}
    trace = {
        "type": "sankey",
        "arrangement": "snap",
        "node": {
            "label": [*left, *right],
            "pad": 12,
            "customdata": [*(["service"] * len(left)), *(["app"] * len(right))],
            "hovertemplate": "%{label} (%{customdata})<extra></extra>",
        },
        "link": {
            "source": [index[r["service"]] for r in flows],
            "target": [len(left) + right.index(r["app"]) for r in flows],
            "value": [r["bytes"] for r in flows],
            "customdata": [f"{r['buffers']} buffers, {_size(r['bytes'])}" for r in flows],
            "hovertemplate": "%{source.label} → %{target.label}<br>%{customdata}<extra></extra>",
        },
    }
    chart = {
        "type": "chart",
        "id": "sankey",
        "title": "Sharing: graphics/media services → apps",
        "caption": "Width: bytes of the buffers a service and an app both hold"
        + (
            f"; beyond the {MAX_FLOWS} widest flows, apps are summed as 'other apps'."
            if len(rows) > MAX_FLOWS
            else "."
        ),
        "traces": [trace],
        "layout": {"height": max(360, 28 * max(len(left), len(right)))},
    }
    return chart, table


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
        ("all buffers", f"{totals.get('buffers')} · {_size(totals.get('bytes'))}"),
        ("held by processes", _size(totals.get("userspace_bytes"))),
        ("kernel-only", _size(totals.get("kernel_only_bytes"))),
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
    blocks: list[Block] = [show_treemap(report)]
    if sankey:
        blocks.append(sankey)
    blocks += [
        share_table,
        _table(
            "processes",
            "Processes",
            PROCESS_COLS,
            procs,
            caption="Click a process to list its buffers and their co-holders.",
            select={"table": "buffers", "from": 0, "to": 4, "what": "pid", "label": 1},
        ),
        _table(
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
                ("sources", "seen in", "text"),
            ],
            buffers,
        ),
        _table(
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
        _table(
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
        _table(
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


# --------------------------------------------------------------------------- diff


def _side(doc: dict[str, Any], side: str) -> str | None:
    s = doc.get(side) or {}
    if not s:
        return None
    return f"{s.get('model')} · {s.get('mode')} · {s.get('captured_at')}"


def diff_treemap(doc: dict[str, Any]) -> Block:
    """Growth of the charged figure: app → process, positive known deltas only."""
    apps = {a.get("uid"): a.get("label") or f"uid {a.get('uid')}" for a in doc.get("apps") or []}
    tree = _Tree()
    unknown = 0
    for proc in doc.get("processes") or []:
        delta = proc.get("delta_pss_bytes")
        if delta is None:
            unknown += 1
        elif delta > 0:
            uid, pid = proc.get("uid"), proc.get("pid")
            tree.add(
                [
                    (f"a/{uid}", apps.get(uid, f"uid {uid}")),
                    (
                        f"a/{uid}/{pid}/{proc.get('status')}",
                        f"{proc.get('name')} ({pid}, {proc.get('status')})",
                    ),
                ],
                int(delta),
                f"{proc.get('delta_buffers')} buffers more",
            )
    caption = f"Growth of the '{doc.get('charge')}' charge per app and process."
    if unknown:
        caption += f" {unknown} processes have an unknown change and no tile."
    return _treemap("treemap", "Where the memory grew", tree.nodes(), caption)


def diff_html(doc: dict[str, Any]) -> str:
    """The page of a comparison (`dmaprof diff --format html`): suspects first."""
    totals, bufs = doc.get("totals") or {}, doc.get("buffers") or {}
    header = [
        ("before", _side(doc, "before")),
        ("after", _side(doc, "after")),
        ("same boot", str(doc.get("same_boot"))),
        ("charge", doc.get("charge")),
        ("buffers", f"{totals.get('buffers_before')} → {totals.get('buffers_after')}"),
        ("bytes", f"{_size(totals.get('bytes_before'))} → {_size(totals.get('bytes_after'))}"),
        ("new buffers", f"{bufs.get('new_count')} · {_size(bufs.get('new_bytes'))}"),
        ("freed buffers", f"{bufs.get('freed_count')} · {_size(bufs.get('freed_bytes'))}"),
    ]
    notes = [*map(str, doc.get("unknown_reasons") or []), *map(str, doc.get("warnings") or [])]
    buffer_cols: list[Col] = [
        ("inode", "inode", "int"),
        ("name", "name", "text"),
        ("exporter", "exporter", "text"),
        ("size_bytes", "size", "bytes"),
        ("holders", "holders", "pids"),
        ("kernel_only", "kernel-only", "text"),
    ]
    delta_cols: list[Col] = [
        ("delta_pss_bytes", "Δ charged", "delta"),
        ("delta_rss_bytes", "Δ rss", "delta"),
        ("delta_buffers", "Δ buffers", "int"),
    ]
    blocks: list[Block] = [
        _table(
            "suspects",
            "Leak suspects",
            [
                ("reason", "reason", "text"),
                ("kind", "kind", "text"),
                ("key", "key", "text"),
                ("delta_bytes", "Δ bytes", "delta"),
                ("delta_buffers", "Δ buffers", "int"),
            ],
            doc.get("suspects") or [],
            caption="Ranked on known changes only.",
        ),
        diff_treemap(doc),
        _table(
            "processes",
            "Processes",
            [
                ("pid", "pid", "int"),
                ("name", "process", "text"),
                ("status", "status", "status"),
                ("uid", "uid", "int"),
                *delta_cols,
                ("pss_bytes_before", "charged before", "bytes"),
                ("pss_bytes_after", "charged after", "bytes"),
                ("gained_new_buffers", "new buffers", "int"),
                ("lost_freed_buffers", "freed buffers", "int"),
            ],
            doc.get("processes") or [],
            caption="Click a process to list the new buffers it holds.",
            select={"table": "new", "from": 0, "to": 4, "what": "pid", "label": 1},
        ),
        _table("new", "New buffers", buffer_cols, bufs.get("new") or []),
        _table("freed", "Freed buffers", buffer_cols, bufs.get("freed") or []),
        _table(
            "apps",
            "Apps",
            [
                ("uid", "uid", "int"),
                ("label", "app", "text"),
                ("status", "status", "status"),
                *delta_cols,
            ],
            doc.get("apps") or [],
        ),
        _table(
            "exporters",
            "Exporters",
            [
                ("exporter", "exporter", "text"),
                ("status", "status", "status"),
                ("delta_bytes", "Δ bytes", "delta"),
                ("delta_buffers", "Δ buffers", "int"),
                ("bytes_before", "before", "bytes"),
                ("bytes_after", "after", "bytes"),
            ],
            doc.get("exporters") or [],
        ),
        _table(
            "cgroups",
            "Cgroups",
            [
                ("path", "cgroup", "text"),
                ("status", "status", "status"),
                ("delta_pss_bytes_with_descendants", "Δ charged with descendants", "delta"),
                ("delta_rss_bytes_with_descendants", "Δ rss with descendants", "delta"),
            ],
            doc.get("cgroups") or [],
        ),
    ]
    names = {p.get("pid"): f"{p.get('name')} ({p.get('pid')})" for p in doc.get("processes") or []}
    return page("dmaprof diff", header, notes, blocks, names=names)


# --------------------------------------------------------------------------- trend

TREND_CHARTS = (("total", "kernel_only"), ("process",), ("app",), ("exporter",), ("name",))


def trend_html(doc: dict[str, Any], points: list[dict[str, Any]]) -> str:
    """The page of a series (`dmaprof trend --plot FILE.html`): verdicts on top, one
    zoomable chart per kind, the series table linked to the curves. ``points`` are the
    samples' figures (kind, key, minutes, bytes), as the trend computed them."""
    curves: dict[str, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
    for p in points:
        xs, ys = curves[f"{p['kind']}:{p['key']}"]
        xs.append(round(float(p["minutes"]), 4))
        ys.append(int(p["bytes"]))
    series = [
        {**s, "id": f"{s['kind']}:{s['key']}", "slope": s.get("slope_bytes_per_min")}
        for s in doc.get("series") or []
    ]
    blocks: list[Block] = [
        _table(
            "leaks",
            "Leak verdicts",
            [
                ("label", "series", "text"),
                ("kind", "kind", "text"),
                ("reason", "reason", "text"),
                ("slope", "bytes/min", "delta"),
                ("delta_bytes", "Δ bytes", "delta"),
            ],
            [s for s in series if s.get("verdict") == "leak"],
        )
    ]
    for kinds in TREND_CHARTS:
        rows = [s for s in series if s["kind"] in kinds]
        if kinds != ("total", "kernel_only"):
            rows = [s for s in rows if s["verdict"] == "leak" or s["delta_bytes"] or s["falls"]]
        rows = rows[:TREND_SERIES]
        if not rows:
            continue
        traces = [
            {
                "type": "scattergl" if len(curves[s["id"]][0]) > 2000 else "scatter",
                "mode": "lines+markers",
                "name": str(s["label"])[:60],
                "meta": s["id"],
                "x": curves[s["id"]][0],
                "y": curves[s["id"]][1],
                "line": {"width": 3 if s["verdict"] == "leak" else 1.5},
                "hovertemplate": "%{y:.4s}B at %{x:.1f} min<extra>%{fullData.name}</extra>",
            }
            for s in rows
        ]
        blocks.append(
            {
                "type": "chart",
                "id": f"chart-{kinds[0]}",
                "title": f"By {kinds[0]}"
                if kinds[0] != "total"
                else "All DMA-BUFs and kernel-only",
                "traces": traces,
                "layout": {
                    "height": 380,
                    "margin": {"t": 10, "l": 60, "r": 10, "b": 40},
                    "xaxis": {"title": {"text": "minutes"}, "rangeslider": {}},
                    "yaxis": {"title": {"text": "bytes"}, "tickformat": ".3s"},
                    "legend": {"orientation": "h"},
                },
            }
        )
    blocks.append(
        _table(
            "series",
            "All series",
            [
                ("label", "series", "text"),
                ("kind", "kind", "text"),
                ("verdict", "verdict", "verdict"),
                ("slope", "bytes/min", "delta"),
                ("delta_bytes", "Δ bytes", "delta"),
                ("last_bytes", "last", "bytes"),
                ("points", "points", "int"),
                ("unknown_points", "unknown points", "int"),
                ("id", "id", "hidden"),
            ],
            series,
            caption="Click a series to show its curve alone (again: all curves).",
            select={"trace": True, "from": 8},
        )
    )
    dev = doc.get("device") or {}
    header = [
        ("device", dev.get("model")),
        ("serial", dev.get("serial")),
        ("samples", str(doc.get("samples"))),
        ("span", f"{doc.get('span_s')} s"),
        ("start", doc.get("start_utc")),
        ("reboots", str(doc.get("reboots"))),
        ("modes", ", ".join(doc.get("modes") or [])),
        ("leaks", str(len(doc.get("leaks") or []))),
    ]
    return page("dmaprof trend", header, [str(w) for w in doc.get("warnings") or []], blocks)
