// dmaprof HTML report: draws the page from its JSON data block with the inlined plotly.js.
// Null figures are unknown: shown as "unknown", never as 0.
// Order of drawing, so that a big capture opens fast: the header, the notes, every table's
// first rows and the first chart at once (body[data-ready]); the other charts when they come
// near the view or the browser is idle, whichever is first (body[data-complete]).
"use strict";
(function () {
  const D = window.DMAPROF = JSON.parse(document.getElementById("dmaprof-data").textContent);
  const FIRST_ROWS = 200;  // rows drawn per table at first (the filter reaches all of them)
  const MORE_ROWS = 500;   // rows one "show more" adds
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
  function bytes(n) {
    if (n === null || n === undefined) return null;
    let v = Math.abs(n), u = 0;
    while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
    return (n < 0 ? "-" : "") + (u ? v.toFixed(1) : String(v)) + " " + UNITS[u];
  }
  function cell(value, kind) {
    const td = el("td");
    if (value === null || value === undefined) {
      // a missing figure is unknown; a missing text (an unnamed buffer) is just empty
      if (kind === "absent") td.title = "not in this document";
      else if (kind !== "text") { td.className = "unknown"; td.textContent = "unknown"; }
      return td;
    }
    if (kind === "bytes" || kind === "delta") {
      td.className = "num";
      td.textContent = (kind === "delta" && value > 0 ? "+" : "") + bytes(value);
      td.title = String(value) + " bytes";
    } else if (kind === "int") {
      td.className = "num"; td.textContent = String(value);
    } else if (kind === "pids") {
      td.textContent = value.map(p => D.names[p] || String(p)).join(", ");
    } else if (Array.isArray(value)) {
      td.textContent = value.join(", ");
    } else {
      td.textContent = String(value);
      if (kind === "verdict" || kind === "status") td.className = kind + "-" + value;
    }
    return td;
  }

  function header() {
    const h = el("header");
    h.appendChild(el("h1", {}, D.title));
    const dl = el("dl");
    for (const [k, v] of D.header) {
      const div = el("div");
      div.appendChild(el("dt", {}, k));
      div.appendChild(el("dd", { class: v === null ? "unknown" : "" }, v === null ? "unknown" : v));
      dl.appendChild(div);
    }
    h.appendChild(dl);
    document.body.appendChild(h);
  }

  function notes(main) {
    if (!D.notes.length) return;
    const s = el("section", { id: "notes" });
    s.appendChild(el("h2", {}, "What could not be seen, and warnings"));
    const ul = el("ul", { class: "notes" });
    for (const n of D.notes) ul.appendChild(el("li", {}, n));
    s.appendChild(ul);
    main.appendChild(s);
  }

  // a chart's section at once, its plot by draw() (at most once; returns plotly's promise)
  const CHARTS = [];
  function chart(main, spec) {
    const s = el("section", { id: "section-" + spec.id });
    s.appendChild(el("h2", {}, spec.title));
    if (spec.caption) s.appendChild(el("p", {}, spec.caption));
    const layout = Object.assign({ margin: { t: 10, l: 10, r: 10, b: 10 }, height: 480 },
                                 spec.layout || {});
    // the empty box keeps the chart's height, so the page does not jump when it is drawn
    const div = el("div", { class: "chart", id: spec.id, style: "height:" + layout.height + "px" });
    s.appendChild(div);
    main.appendChild(s);
    const c = { div, drawn: null };
    c.draw = () => c.drawn || (c.drawn = plot(div, spec, layout));
    CHARTS.push(c);
    return c;
  }
  function plot(div, spec, layout) {
    const done = Plotly.newPlot(div, spec.traces, layout, { displaylogo: false, responsive: true });
    if (spec.pick) {
      // a process tile also lists that process's buffers in the table below
      const pattern = new RegExp(spec.pick.pattern);
      div.on("plotly_treemapclick", ev => {
        const m = pattern.exec(String(ev.points[0].id));
        const target = TABLES[spec.pick.table];
        if (!m || !target) return;
        target.state.pin = { column: spec.pick.column, value: Number(m[1]),
                             label: spec.pick.what + " " + m[1] + " " + ev.points[0].label };
        target.draw();
      });
    }
    return done;
  }

  // a sortable, filterable table; `select` filters another table by a column
  const TABLES = {};
  function table(main, spec) {
    const s = el("section", { id: "section-" + spec.id });
    s.appendChild(el("h2", {}, spec.title));
    if (spec.caption) s.appendChild(el("p", {}, spec.caption));
    const bar = el("div", { class: "filter" });
    const input = el("input", { type: "search", placeholder: "filter", id: spec.id + "-filter" });
    const count = el("span", { class: "count", id: spec.id + "-count" });
    bar.appendChild(input); bar.appendChild(count);
    s.appendChild(bar);
    const wrap = el("div", { class: "tablewrap" });
    const t = el("table", { id: spec.id });
    const thead = el("thead"), tr = el("tr");
    spec.columns.forEach((c, i) => {
      const th = el("th", { title: c.help || c.key }, c.label);
      th.addEventListener("click", () => sortBy(i));
      tr.appendChild(th);
    });
    thead.appendChild(tr); t.appendChild(thead);
    const tbody = el("tbody"); t.appendChild(tbody);
    wrap.appendChild(t); s.appendChild(wrap); main.appendChild(s);
    const more = el("button", { type: "button", class: "more", id: spec.id + "-more" });
    s.appendChild(more);
    const kinds = spec.columns.map(c => c.kind);
    // what the filter matches: built on the first filter, not for every page opened
    let text = null;
    const rowText = r => r.map((v, c) => v === null ? "unknown" :
      kinds[c] === "pids" ? v.map(p => D.names[p] || p).join(" ") : String(v)).join(" ")
      .toLowerCase();
    const state = { order: spec.rows.map((_, i) => i), key: null, dir: 1, pin: null,
                    limit: FIRST_ROWS };
    function sortBy(i) {
      state.dir = state.key === i ? -state.dir : (spec.columns[i].kind === "text" ? 1 : -1);
      state.key = i;
      const dir = state.dir;
      // unknown (null) sorts last either way: it is not a small number
      state.order.sort((a, b) => {
        const x = spec.rows[a][i], y = spec.rows[b][i];
        if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      draw();
    }
    function draw() {
      const q = input.value.trim().toLowerCase();
      if (q && !text) text = spec.rows.map(rowText);
      tbody.textContent = "";
      const rows = document.createDocumentFragment();
      let shown = 0, matched = 0;
      for (const i of state.order) {
        const row = spec.rows[i];
        if (state.pin) {
          const v = row[state.pin.column];
          if (!(Array.isArray(v) ? v.includes(state.pin.value) : v === state.pin.value)) continue;
        }
        if (q && !text[i].includes(q)) continue;
        matched++;
        if (shown >= state.limit) continue;
        shown++;
        const tr = el("tr");
        row.forEach((v, c) => { if (!spec.columns[c].hidden) tr.appendChild(cell(v, spec.columns[c].kind)); });
        if (spec.select) {
          tr.className = "clickable";
          tr.addEventListener("click", () => pick(spec, row, tr));
        }
        rows.appendChild(tr);
      }
      tbody.appendChild(rows);
      count.textContent = (state.pin ? state.pin.label + ": " : "") + matched + " of " +
        spec.rows.length + " rows" + (matched > shown ? " (first " + shown + " shown)" : "");
      more.hidden = matched <= shown;
      more.textContent = "show " + Math.min(MORE_ROWS, matched - shown) + " more rows";
    }
    more.addEventListener("click", () => { state.limit += MORE_ROWS; draw(); });
    // hidden columns get no header either
    spec.columns.forEach((c, i) => { if (c.hidden) thead.rows[0].cells[i].style.display = "none"; });
    input.addEventListener("input", draw);
    TABLES[spec.id] = { spec, state, draw, section: s };
    draw();
  }
  function pick(spec, row, tr) {
    if (spec.select.trace) {
      const key = row[spec.select.from];
      const again = tr.classList.contains("selected");
      document.querySelectorAll("#" + spec.id + " tr.selected").forEach(r => r.classList.remove("selected"));
      if (!again) tr.classList.add("selected");
      window.DMAPROF_isolate(key, again);
      return;
    }
    const target = TABLES[spec.select.table];
    if (!target) return;
    const value = row[spec.select.from];
    const same = target.state.pin && target.state.pin.value === value;
    document.querySelectorAll("#" + spec.id + " tr.selected").forEach(r => r.classList.remove("selected"));
    if (same) {
      target.state.pin = null;
    } else {
      tr.classList.add("selected");
      const name = spec.select.label === undefined ? "" : " " + row[spec.select.label];
      target.state.pin = { column: spec.select.to, value: value,
                           label: spec.select.what + " " + value + name };
    }
    target.draw();
    if (!same) target.section.scrollIntoView({ block: "nearest" });
  }

  function start() {
    const timing = window.DMAPROF_TIMING = [["start", performance.now()]];
    header();
    const main = el("main");
    document.body.appendChild(main);
    notes(main);
    let first = null;
    for (const block of D.blocks) {
      if (block.type === "chart") {
        const c = chart(main, block);
        if (!first) first = c.draw();
      } else table(main, block);
      timing.push([block.id, performance.now()]);
    }
    // trend: a row of the series table shows its curve alone in its chart
    window.DMAPROF_isolate = function (key, reset) {
      CHARTS.forEach(c => c.draw());
      document.querySelectorAll(".chart").forEach(div => {
        if (!div.data) return;
        const vis = div.data.map(t => reset || t.meta === key ? true : "legendonly");
        if (div.data.some(t => t.meta === key)) Plotly.restyle(div, { visible: vis });
      });
    };
    // "ready": what is on screen is drawn and painted (after the next frame)
    Promise.resolve(first).then(() => requestAnimationFrame(() => setTimeout(() => {
      timing.push(["ready", performance.now()]);
      document.body.setAttribute("data-ready", "1");
      rest();
    })));
  }
  function rest() {
    const pending = CHARTS.filter(c => !c.drawn);
    const near = new IntersectionObserver(entries => entries.forEach(e => {
      if (e.isIntersecting) pending.filter(c => c.div === e.target).forEach(c => c.draw());
    }), { rootMargin: "300px" });
    pending.forEach(c => near.observe(c.div));
    const idle = window.requestIdleCallback || (f => setTimeout(f, 50));
    const next = () => {
      const c = pending.find(c => !c.drawn);
      if (!c) {
        near.disconnect();
        window.DMAPROF_TIMING.push(["complete", performance.now()]);
        document.body.setAttribute("data-complete", "1");
        return;
      }
      Promise.resolve(c.draw()).then(() => idle(next));
    };
    idle(next);
  }
  start();
})();
