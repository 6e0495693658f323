"""The HTML reports of show, diff and trend, opened in a real headless Chromium (Debian's
`chromium`, driven by Playwright; scripts/test.sh installs both). One browser per module.

Figures are checked against the JSON documents of the same commands (`--format json`),
which the rest of the suite pins: the page must show those, never redraw its own."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dmaprof.leaks.series import RecordPlan, record_series
from tests.leaks import phonescene as P
from tests.leaks.conftest import REPO, Captures
from tests.leaks.test_trend import FakeClock, Sampler

MiB = 1024 * 1024
PIXEL = REPO / "fixtures/captures/pixel-like.dmaprof"
SHELL = REPO / "fixtures/captures/pixel-like-shell.dmaprof"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.fail("the HTML tests need Debian's chromium: run `bash scripts/test.sh`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


class Opened:
    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def rows(self, table: str) -> list[list[str]]:
        return self.js(f"""[...document.querySelectorAll('#{table} tbody tr')]
                           .map(tr => [...tr.cells].map(td => td.textContent))""")

    def raw(self, table: str, column: int) -> list[str | None]:
        """The exact byte figures (the cells' titles) of one column."""
        return self.js(f"""[...document.querySelectorAll('#{table} tbody tr')]
                           .map(tr => tr.cells[{column}].title || null)""")


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    pages: list[Opened] = []

    def open_(path: Path) -> Opened:
        page = browser.new_page()
        opened = Opened(page)
        page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: opened.errors.append(str(e)))
        page.on("request", lambda r: opened.requests.append(r.url))
        page.goto(path.as_uri())
        # ready: the first view is drawn; complete: every chart below it too
        page.wait_for_selector("body[data-ready='1']", timeout=60_000, state="attached")
        page.wait_for_selector("body[data-complete='1']", timeout=60_000, state="attached")
        # every column is a key of the document it shows
        absent = page.evaluate("""DMAPROF.blocks.filter(b => b.type === 'table').flatMap(
            b => b.columns.filter(c => c.kind === 'absent').map(c => b.id + '.' + c.key))""")
        assert absent == []
        pages.append(opened)
        return opened

    yield open_
    for opened in pages:
        # no request left the file (the page's CSP would block one: also an error)
        assert [u for u in opened.requests if not u.startswith(("file:", "data:", "blob:"))] == []
        assert opened.errors == []
        opened.page.close()


def png_is_not_blank(png: bytes) -> bool:
    """More than a handful of distinct pixel values in the (zlib-inflated) image rows."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    data, pos = b"", 8
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        if kind == b"IDAT":
            data += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    pixels = zlib.decompress(data)
    return len({pixels[i : i + 3] for i in range(0, len(pixels) - 3, 997)}) > 20


def treemap(opened: Opened) -> dict[str, tuple[str, str, int]]:
    trace = opened.js(
        "(() => { const t = document.getElementById('treemap').data[0];"
        " return [t.ids, t.labels, t.parents, t.values]; })()"
    )
    return {i: (label, parent, value) for i, label, parent, value in zip(*trace, strict=True)}


def sankey(opened: Opened) -> dict[tuple[str, str], int]:
    """(source label, target label) -> bytes of the drawn Sankey's links."""
    node, link = opened.js(
        "(() => { const t = document.getElementById('sankey').data[0];"
        " return [t.node.label, [t.link.source, t.link.target, t.link.value]]; })()"
    )
    return {(node[s], node[t]): v for s, t, v in zip(*link, strict=True)}


def test_show_report_of_the_bundled_capture(tmp_path: Path, dmaprof: Any, open_page: Any) -> None:
    out = tmp_path / "report.html"
    run = dmaprof("show", PIXEL, "-o", out)  # the format from the suffix
    assert run.code == 0, run.stderr
    report = json.loads(dmaprof("show", PIXEL, "--format", "json").stdout)
    assert out.stat().st_size < 10 * MiB
    page = open_page(out)
    # all inline: nothing to fetch (plotly.js names CDNs in code it never runs here)
    assert page.js("document.querySelectorAll('script[src], link, iframe, img[src]').length") == 0
    assert "default-src 'none'" in page.js(
        "document.querySelector('meta[http-equiv=Content-Security-Policy]').content"
    )
    # the top of the treemap: exporters (held by processes) and the kernel-only branch add
    # up to all buffers; each process's tiles to its charged bytes
    nodes = treemap(page)
    roots = {i: v for i, (_, parent, v) in nodes.items() if parent == ""}
    totals = report["totals"]
    assert roots["kernel"] == totals["kernel_only_bytes"] == 3670016
    assert (
        sum(roots.values())
        == totals["charged_bytes"] + totals["kernel_only_bytes"]
        == totals["bytes"]
    )
    for proc in report["processes"]:
        drawn = sum(
            v
            for i, (_, _, v) in nodes.items()
            if i.count("/") == 3 and i.endswith(f"/{proc['pid']}")
        )
        assert drawn == proc["charged_bytes"], proc["name"]
    # the tables hold the report's rows and exact figures
    procs = page.rows("processes")
    assert len(procs) == len(report["processes"])
    charged = [int(t.split()[0]) for t in page.raw("processes", 4)]
    assert charged == [p["charged_bytes"] for p in report["processes"]]
    assert len(page.rows("buffers")) == len(report["buffers"])
    assert len(page.rows("exporters")) == len(report["exporters"])
    # sharing: surfaceflinger with the apps it composes, and the heaps those buffers come from
    shared = {(r[0], r[1]): r for r in page.rows("sharing")}
    assert ("surfaceflinger", "com.android.systemui") in shared
    flows = sankey(page)
    procs = {p["pid"]: p for p in report["processes"]}
    sf_with_apps = [
        b
        for b in report["buffers"]
        if 612 in b["holders"] and any(not procs[h]["is_service"] for h in b["holders"])
    ]
    by_heap: dict[str, int] = {}
    for b in sf_with_apps:
        by_heap[b["exporter"]] = by_heap.get(b["exporter"], 0) + b["size_bytes"]
    assert (
        by_heap and {heap: flows[(heap, "surfaceflinger")] for heap in by_heap} == by_heap
    )  # heap → compositor
    ui = sum(b["size_bytes"] for b in sf_with_apps if 1800 in b["holders"])
    assert flows[("surfaceflinger", "com.android.systemui")] == ui > 0  # compositor → app
    pairs = [(r[0], r[1]) for r in page.rows("sharing")]
    exact = dict(zip(pairs, page.raw("sharing", 3), strict=True))
    assert exact[("surfaceflinger", "com.android.systemui")] == f"{ui} bytes"  # the table too
    # clicking a process lists its buffers, with their co-holders
    page.page.click("#processes tbody tr:has(td:text-is('612'))")
    held = page.rows("buffers")
    assert len(held) == sum(612 in b["holders"] for b in report["buffers"]) == 9
    assert all("surfaceflinger (612)" in row[4] for row in held)
    assert any("," in row[4] for row in held)  # co-holders are named
    page.page.click("#processes tbody tr:has(td:text-is('612'))")  # again: all buffers
    assert len(page.rows("buffers")) == len(report["buffers"])
    # so does a click on a process tile of the treemap (a real mouse click on its box)
    box = page.page.locator("#treemap g.slice:has(text:has-text('surfaceflinger (612)'))").first
    box.click(position={"x": 30, "y": 40}, timeout=5000)
    assert len(page.rows("buffers")) == 9
    # sorting puts unknown last; filtering
    page.page.fill("#buffers-filter", "camera")
    assert 0 < len(page.rows("buffers")) < len(report["buffers"])
    shot = page.page.screenshot()
    assert png_is_not_blank(shot)


def test_unknown_figures_are_marked_not_drawn(tmp_path: Path, dmaprof: Any, open_page: Any) -> None:
    """The shell-user capture: 11 processes unreadable."""
    out = tmp_path / "shell.html"
    assert dmaprof("show", SHELL, "--format", "html", "-o", out).code == 0
    report = json.loads(dmaprof("show", SHELL, "--format", "json").stdout)
    page = open_page(out)
    nodes = treemap(page)
    unreadable = [p for p in report["processes"] if p["charged_bytes"] is None]
    assert len(unreadable) == 11
    assert not any(i.endswith(f"/{p['pid']}") for p in unreadable for i in nodes)
    roots = {i: v for i, (_, parent, v) in nodes.items() if parent == ""}
    assert "kernel" not in roots  # kernel-only bytes are unknown: no tile, not 0
    assert roots["unattributed"] == report["totals"]["bytes"] - report["totals"]["charged_bytes"]
    rows = {r[0]: r for r in page.rows("processes")}
    assert rows["612"][4] == "unknown" and rows["4100"][4] != "unknown"
    assert "11 processes could not be read" in page.js("document.body.textContent")


def test_diff_report_shows_growth_first(
    tmp_path: Path, captures: Captures, dmaprof: Any, open_page: Any
) -> None:
    pair = captures.pair("html-leak", lambda s: P.leak(s, 3100, 4, MiB, "SurfaceView - leak"))
    out = tmp_path / "diff.html"
    assert dmaprof("diff", pair.before, pair.after, "-o", out).code == 0
    doc = json.loads(dmaprof("diff", pair.before, pair.after, "--format", "json").stdout)
    page = open_page(out)
    first = page.js("document.querySelector('main section:not(#notes)').id")
    assert first == "section-suspects"
    assert page.rows("suspects")[0][0] == doc["suspects"][0]["reason"]
    nodes = treemap(page)
    grown = {
        p["pid"]: p["delta_pss_bytes"] for p in doc["processes"] if (p["delta_pss_bytes"] or 0) > 0
    }
    assert grown[3100] == 4 * MiB
    for pid, delta in grown.items():
        assert sum(v for i, (_, _, v) in nodes.items() if f"/{pid}/" in i) == delta
    assert len(page.rows("new")) == doc["buffers"]["new_count"] == 4
    page.page.click("#processes tbody tr:has(td:text-is('3100'))")
    assert len(page.rows("new")) == 4


def test_trend_report_links_table_and_curves(
    tmp_path: Path, captures: Captures, dmaprof: Any, open_page: Any
) -> None:
    scene = P.pixel()
    record_series(
        tmp_path / "t",
        RecordPlan(60.0, count=4, retries=0),
        Sampler(scene),
        clock=FakeClock(),
        after_slot=lambda i: P.leak(scene, 3100, 1, MiB, "SurfaceView - leak"),
    )
    out = tmp_path / "trend.html"
    run = dmaprof("trend", tmp_path / "t", "--format", "json", "--plot", out)
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    page = open_page(out)
    assert page.js("document.querySelector('main section:not(#notes)').id") == "section-leaks"
    assert [r[0] for r in page.rows("leaks")] == [s["label"] for s in doc["leaks"]]
    curve = page.js(
        "document.getElementById('chart-process').data"
        ".find(t => t.meta === 'process:' + "
        f"{json.dumps(doc['leaks'][0]['key'])} || t.name.includes('(3100)')).y"
    )
    assert curve[-1] - curve[0] == 3 * MiB
    # zoom: a range slider; the table's row shows that curve alone
    assert page.js("!!document.querySelector('#chart-process .rangeslider-container')")
    page.page.click("#series tbody tr:has(td:text-is('com.example.camera (3100)'))")
    visible = page.js(
        "document.getElementById('chart-process').data"
        ".filter(t => t.visible !== 'legendonly').map(t => t.name)"
    )
    assert visible == ["com.example.camera (3100)"]


def test_without_plotly_one_line_and_no_file(
    tmp_path: Path, dmaprof: Any, not_installed: Callable[[str], None]
) -> None:
    not_installed("plotly")
    out = tmp_path / "r.html"
    run = dmaprof("show", PIXEL, "-o", out)
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr == "dmaprof: error: HTML reports need plotly: pip install 'dmaprof[html]'\n"
    assert not out.exists()
    # trend --plot FILE.html falls back to the static SVG charts
    plot = tmp_path / "trend.html"
    run = dmaprof("trend", REPO / "fixtures/captures/demo/series", "--plot", plot)
    assert run.code == 0, run.stderr
    page = plot.read_text()
    assert "<svg" in page and "<script" not in page


@pytest.mark.parametrize(
    "phone", ["android9-4.14", "android11-5.4", "android13-5.15", "android16-6.6"]
)
def test_show_report_of_each_generation_phone(
    tmp_path: Path, dmaprof: Any, open_page: Any, phone: str, need_device_tools: None
) -> None:
    """The fixture phones of every Android generation (fixtures/phones), collected by the
    real collector with their kernel's formats: each page opens cleanly and its treemap and
    process table hold the report's figures."""
    from tests.emuphone.scene import load_scene

    capture = tmp_path / f"{phone}.dmaprof"
    P.capture(load_scene(REPO / "fixtures" / "phones" / f"{phone}.json"), capture, variant=phone)
    out = tmp_path / f"{phone}.html"
    assert dmaprof("show", capture, "--format", "html", "-o", out).code == 0
    report = json.loads(dmaprof("show", capture, "--format", "json").stdout)
    page = open_page(out)
    nodes = treemap(page)
    roots = {i: v for i, (_, parent, v) in nodes.items() if parent == ""}
    totals = report["totals"]
    assert sum(roots.values()) == totals["bytes"]
    assert roots["kernel"] == totals["kernel_only_bytes"]
    for proc in report["processes"]:
        drawn = sum(
            v
            for i, (_, _, v) in nodes.items()
            if i.count("/") == 3 and i.endswith(f"/{proc['pid']}")
        )
        assert drawn == proc["charged_bytes"], (phone, proc["name"])
    assert len(page.rows("processes")) == len(report["processes"])
    assert len(page.rows("buffers")) == len(report["buffers"])


def test_show_report_of_a_big_capture(tmp_path: Path, dmaprof: Any, open_page: Any) -> None:
    """600 processes and 3,000 buffers from the benchmark's generator (scripts/bench_html.py
    times 2,000 and 30,000): the first view draws each table's first rows and the first
    chart; 'show more' and the filter reach every row; the treemap's summed tiles and the
    Sankey's 'other apps' keep every byte."""
    from scripts.bench_analyze import make_scene

    dump, capture, out = tmp_path / "big.dump", tmp_path / "big.dmaprof", tmp_path / "big.html"
    dump.write_bytes(make_scene(600, 12_000, 3_000, 2_000).build())
    assert dmaprof("import", dump, "-o", capture).code == 0
    assert dmaprof("show", capture, "-o", out).code == 0
    report = json.loads(dmaprof("show", capture, "--format", "json").stdout)
    page = open_page(out)
    timing = dict(page.js("DMAPROF_TIMING"))
    assert timing["treemap"] <= timing["ready"] <= timing["complete"]
    # tables: the first 200 rows, then 500 more per click; the filter searches all rows
    assert len(page.rows("processes")) == 200
    assert page.js("document.getElementById('processes-count').textContent") == (
        "600 of 600 rows (first 200 shown)"
    )
    page.page.click("#processes-more")
    assert len(page.rows("processes")) == 600
    assert page.js("document.getElementById('processes-more').hidden")
    last = report["buffers"][-1]
    page.page.fill("#buffers-filter", str(last["inode"]))
    assert str(last["inode"]) in [r[0] for r in page.rows("buffers")]
    page.page.fill("#buffers-filter", "")
    # a click on a process: every buffer it holds is counted, the first 200 drawn
    pid = report["processes"][0]["pid"]
    page.page.click(f"#processes tbody tr:has(td:text-is('{pid}'))")
    held = sum(pid in b["holders"] for b in report["buffers"])
    assert held > 200
    assert page.js("document.getElementById('buffers-count').textContent").endswith(
        f"{held} of 3000 rows (first 200 shown)"
    )
    # the treemap: at most 150 tiles and the sums of the rest, every branch its children's sum
    nodes = treemap(page)
    roots = {i: v for i, (_, parent, v) in nodes.items() if parent == ""}
    assert sum(roots.values()) == report["totals"]["bytes"]
    assert len([i for i in nodes if not i.endswith("/~other")]) <= 150
    children: dict[str, int] = {}
    for _, parent, v in nodes.values():
        if parent:
            children[parent] = children.get(parent, 0) + v
    assert all(children[i] == nodes[i][2] for i in children)
    assert any(label.endswith(" smaller") for label, _, _ in nodes.values())
    # the Sankey: service → app links carry every shared byte, 'other apps' included
    procs = {p["pid"]: p for p in report["processes"]}
    shared = 0
    for b in report["buffers"]:
        holders = [procs[h] for h in b["holders"]]
        services = {p["name"] for p in holders if p["is_service"]}
        apps = {p["uid"] for p in holders if not p["is_service"]}
        shared += b["size_bytes"] * len(services) * len(apps)
    assert "other apps" in {target for _, target in sankey(page)}
    to_apps = page.js(
        "(() => { const t = document.getElementById('sankey').data[0];"
        " return t.link.value.filter((_, i) => t.node.customdata[t.link.target[i]] === 'app')"
        ".reduce((a, b) => a + b, 0); })()"
    )
    assert to_apps == shared
