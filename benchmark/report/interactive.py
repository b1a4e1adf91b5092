"""The interactive learning-curve explorer embedded in index.html (offline: no CDN, no files).

One ``<section>`` holds the mean, sample std and seed count per (protocol, dataset, model,
metric, fraction) as JSON and ~150 lines of plain JavaScript drawing SVG: switch dataset,
metric and threshold protocol, tick models on and off, click a name to highlight it, hover a
point for mean ± std. The focus model and ``--highlight`` models start highlighted over
muted others. When the page has loaded, the section carries ``data-ready="1"`` and
``data-models-drawn`` (tests read them from a headless browser); a script error sets
``data-error``.
"""

from __future__ import annotations

import html
import json

import pandas as pd

from benchmark.report import tables
from benchmark.report.inputs import MAIN_METRICS, PROTOCOLS, metrics_long, order_metrics

SECTION_ID = "mlc-explorer"  # not the heading's anchor (interactive-learning-curves)


def curves_data(runs: pd.DataFrame, models: list[str], strong: list[str], colours: dict[str, str],
                protocol: str, metrics: list[str] | None = None) -> dict:
    """Every point the explorer can draw, under every protocol the store has."""
    points, protocols, present = [], [], set()
    for name in PROTOCOLS:
        long = metrics_long(runs, name)
        long = long[long["model"].isin(models)]
        if metrics:
            long = long[long["metric"].isin(metrics)]
        if long.empty:
            continue
        protocols.append(name)
        present |= set(long["metric"])
        for row in tables.summarise(long).itertuples(index=False):
            std = None if pd.isna(row.std) else round(float(row.std), 6)
            points.append([name, row.dataset, row.model, row.metric, float(row.fraction),
                           round(float(row.mean), 6), std, int(row.n)])
    ordered = order_metrics(present)
    main = [m for m in ordered if m in MAIN_METRICS] + [m for m in ordered if m not in MAIN_METRICS]
    return {"protocols": protocols, "protocol": protocol if protocol in protocols else protocols[0],
            "datasets": sorted({p[1] for p in points}), "metrics": main, "models": list(models),
            "strong": [m for m in strong if m in models], "colours": colours, "points": points}


_SCRIPT = r"""
(function () {
  var root = document.getElementById("SECTION_ID");
  window.addEventListener("error", function (e) { root.setAttribute("data-error", String(e.message)); });
  var D = JSON.parse(document.getElementById("mlc-curves-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var state = {protocol: D.protocol, dataset: D.datasets[0], metric: D.metrics[0],
               shown: {}, strong: {}};
  D.models.forEach(function (m) { state.shown[m] = true; });
  D.strong.forEach(function (m) { state.strong[m] = true; });
  var controls = root.querySelector(".mlc-controls"), legend = root.querySelector(".mlc-legend");
  var svg = root.querySelector("svg"), tip = root.querySelector(".mlc-tip");

  function select(label, key, values) {
    var wrap = document.createElement("label"), box = document.createElement("select");
    wrap.textContent = label + " ";
    values.forEach(function (v) {
      var o = document.createElement("option"); o.value = v; o.textContent = v;
      if (v === state[key]) { o.selected = true; }
      box.appendChild(o);
    });
    box.addEventListener("change", function () { state[key] = box.value; draw(); });
    box.setAttribute("data-key", key);
    wrap.appendChild(box); controls.appendChild(wrap);
  }
  select("Dataset", "dataset", D.datasets);
  select("Metric", "metric", D.metrics);
  select("Protocol", "protocol", D.protocols);

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    parent.appendChild(node); return node;
  }
  function fmt(v) { return v === null ? "\u2014" : v.toFixed(3); }

  function legendRow(m) {
    var row = document.createElement("div"), box = document.createElement("input"), name = document.createElement("span");
    row.className = "mlc-item"; box.type = "checkbox"; box.checked = !!state.shown[m];
    box.addEventListener("change", function () { state.shown[m] = box.checked; draw(); });
    name.textContent = m; name.title = "click to highlight";
    name.style.color = D.colours[m]; name.style.fontWeight = state.strong[m] ? "bold" : "normal";
    name.addEventListener("click", function () { state.strong[m] = !state.strong[m]; draw(); });
    row.appendChild(box); row.appendChild(name); legend.appendChild(row);
  }

  function draw() {
    var W = 760, H = 420, L = 60, R = 20, T = 20, B = 50;
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    legend.innerHTML = ""; D.models.forEach(legendRow);
    var pts = D.points.filter(function (p) {
      return p[0] === state.protocol && p[1] === state.dataset && p[3] === state.metric;
    });
    var byModel = {};
    pts.forEach(function (p) { (byModel[p[2]] = byModel[p[2]] || []).push(p); });
    var drawn = D.models.filter(function (m) { return state.shown[m] && byModel[m]; });
    var lo = Infinity, hi = -Infinity;
    drawn.forEach(function (m) { byModel[m].forEach(function (p) {
      var s = p[6] || 0; lo = Math.min(lo, p[5] - s); hi = Math.max(hi, p[5] + s); }); });
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    var pad = Math.max((hi - lo) * 0.06, 0.005); lo -= pad; hi += pad;
    var x = function (f) { return L + f * (W - L - R); };
    var y = function (v) { return T + (hi - v) / (hi - lo) * (H - T - B); };
    el("rect", {x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#999"}, svg);
    var fractions = {};
    pts.forEach(function (p) { fractions[p[4]] = true; });
    Object.keys(fractions).forEach(function (f) {
      var t = el("text", {x: x(+f), y: H - B + 18, "text-anchor": "middle", "font-size": 12}, svg); t.textContent = (+f).toString();
    });
    for (var i = 0; i <= 5; i++) {
      var v = lo + (hi - lo) * i / 5;
      el("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eee"}, svg);
      var t = el("text", {x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11}, svg); t.textContent = v.toFixed(3);
    }
    var lab = el("text", {x: (L + W - R) / 2, y: H - 10, "text-anchor": "middle", "font-size": 12}, svg);
    lab.textContent = "training fraction (" + state.metric + ", " + state.protocol + " protocol, mean \u00b1 std over seeds)";
    var anyStrong = drawn.some(function (m) { return state.strong[m]; });
    var order = drawn.filter(function (m) { return !state.strong[m]; }).concat(drawn.filter(function (m) { return state.strong[m]; }));
    order.forEach(function (m) {
      var rows = byModel[m].slice().sort(function (a, b) { return a[4] - b[4]; });
      var strong = !anyStrong || state.strong[m], colour = D.colours[m];
      var g = el("g", {"class": "mlc-curve", "data-model": m, opacity: strong ? 1 : 0.35}, svg);
      if (strong) {
        var band = rows.map(function (p) { return x(p[4]) + "," + y(p[5] + (p[6] || 0)); })
          .concat(rows.slice().reverse().map(function (p) { return x(p[4]) + "," + y(p[5] - (p[6] || 0)); }));
        el("polygon", {points: band.join(" "), fill: colour, opacity: 0.15}, g);
      }
      el("polyline", {points: rows.map(function (p) { return x(p[4]) + "," + y(p[5]); }).join(" "),
                      fill: "none", stroke: strong ? colour : "#888", "stroke-width": strong && anyStrong ? 3 : 1.3}, g);
      rows.forEach(function (p) {
        var c = el("circle", {cx: x(p[4]), cy: y(p[5]), r: strong ? 4.5 : 3, fill: strong ? colour : "#aaa", stroke: "#333",
                              "stroke-width": 0.5, "class": "mlc-point"}, g);
        c.addEventListener("mouseenter", function (e) {
          tip.textContent = m + " at " + p[4] + ": " + fmt(p[5]) + " \u00b1 " + fmt(p[6]) + " (" + p[7] + " seeds)";
          tip.style.display = "block"; tip.style.left = (e.offsetX + 12) + "px"; tip.style.top = (e.offsetY + 12) + "px";
        });
        c.addEventListener("mouseleave", function () { tip.style.display = "none"; });
      });
    });
    root.setAttribute("data-models-drawn", String(drawn.length));
    root.setAttribute("data-ready", "1");
  }
  draw();
})();
"""

_STYLE = """
#SECTION_ID { position: relative; }
#SECTION_ID .mlc-controls label { margin-right: 1.2em; }
#SECTION_ID .mlc-wrap { display: flex; gap: 1em; align-items: flex-start; position: relative; }
#SECTION_ID .mlc-legend { columns: 2; font-size: 0.9em; }
#SECTION_ID .mlc-item span { cursor: pointer; }
#SECTION_ID .mlc-tip { position: absolute; display: none; background: #fff; border: 1px solid #666;
  padding: 2px 6px; font-size: 0.85em; pointer-events: none; white-space: nowrap; }
"""


def explorer_html(data: dict) -> str:
    """The section: controls, an SVG, a legend with toggles, the data and the script."""
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (f'<section id="{SECTION_ID}" data-ready="0">'
            f"<style>{_STYLE.replace('SECTION_ID', SECTION_ID)}</style>"
            f"<p>{html.escape('Pick a dataset, metric and threshold protocol; tick models on or off; click a model name to highlight it; hover a point for mean ± std.')}</p>"
            '<div class="mlc-controls"></div><div class="mlc-wrap">'
            '<svg width="760" height="420" role="img" aria-label="learning curves"></svg>'
            '<div class="mlc-legend"></div><div class="mlc-tip"></div></div>'
            f'<script type="application/json" id="mlc-curves-data">{payload}</script>'
            f"<script>{_SCRIPT.replace('SECTION_ID', SECTION_ID)}</script></section>")


def standalone(index_html: str) -> str:
    """The explorer section of an index.html as a page of its own (for a browser screenshot)."""
    start = index_html.index(f'<section id="{SECTION_ID}"')
    end = index_html.index("</section>", start) + len("</section>")
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><style>body { font-family: system-ui, sans-serif; '
            'margin: 1em; }</style></head><body>' + index_html[start:end] + "</body></html>\n")
