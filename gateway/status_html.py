"""The status page itself: one HTML document with its style and script inline (no build step,
nothing to install with the package), and a Content-Security-Policy that allows exactly them.

The chart is hand-written SVG. Every value from the server is set with ``textContent`` or as
an SVG attribute, never parsed as HTML.
"""

from __future__ import annotations

import base64
import hashlib

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; background: #f6f7f9; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
#meta, .muted { color: #667; font-size: .85rem; }
table { border-collapse: collapse; background: #fff; min-width: 40rem; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #e3e6ea; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.bound { color: #13795b; font-weight: 600; } .down { color: #b3261e; font-weight: 600; }
.standby { color: #667; }
.bar { display: inline-block; width: 6rem; height: .6rem; background: #e3e6ea; }
.bar > i { display: block; height: 100%; background: #2f6fde; }
#chart { background: #fff; border: 1px solid #e3e6ea; }
#legend span { margin-right: 1rem; } #legend i { display: inline-block; width: .8rem;
  height: .8rem; margin-right: .3rem; vertical-align: -1px; }
#login { background: #fff; padding: 1rem; border: 1px solid #e3e6ea; max-width: 30rem; }
#login[hidden], #main[hidden] { display: none; }
#error { color: #b3261e; }
"""

SCRIPT = r"""
"use strict";
const KEY = "smsgw.status.key";
const REFRESH_MS = 3000;
const COLORS = {accepted: "#8a94a6", submitted: "#2f6fde", delivered: "#13795b",
                failed: "#b3261e", undelivered: "#e07b00"};
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const ns = ["svg", "path", "line", "text", "circle"].includes(tag)
    ? "http://www.w3.org/2000/svg" : null;
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function takeKeyFromFragment() {
  const m = location.hash.match(/key=([^&]+)/);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);  // the key leaves the address bar
  }
}

function showLogin(message) {
  $("main").hidden = true;
  $("login").hidden = false;
  $("error").textContent = message || "";
}

function pct(x) { return x === null || x === undefined ? "-" : (100 * x).toFixed(1) + " %"; }
function time(ms) { return new Date(ms).toLocaleTimeString(); }
function hhmm(ms) {
  return new Date(ms).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

function sum(a, b) { return a.map((x, i) => x + b[i]); }

function renderChannels(data) {
  const rows = data.channels.map((c) => {
    const bar = el("span", {class: "bar", title: c.inFlight + " of " + c.binds * c.window});
    const fill = el("i");
    fill.style.width = Math.min(100, 100 * c.windowUse) + "%";
    bar.append(fill);
    return el("tr", {"data-channel": c.name},
      el("td", {}, c.name),
      el("td", {class: "n " + (c.bound ? "bound" : "down"), "data-k": "binds"},
         c.bound + " / " + c.binds),
      el("td", {class: "n", "data-k": "window"}, c.inFlight + " / " + c.binds * c.window, " ",
         bar),
      el("td", {class: "n", "data-k": "queued"}, c.queued),
      el("td", {class: "n", "data-k": "scheduled"}, c.scheduled),
      el("td", {class: "n", "data-k": "awaiting"}, c.awaitingReceipt),
      el("td", {class: "n", "data-k": "submitted"}, c.totals.submitted),
      el("td", {class: "n", "data-k": "delivered"}, c.totals.delivered),
      el("td", {class: "n", "data-k": "error-rate"}, pct(c.errorRate)),
      el("td", {class: "n", "data-k": "retry-rate"}, pct(c.retryRate)),
      el("td", {class: "n", "data-k": "reconnects"}, c.reconnects));
  });
  $("channels").replaceChildren(...rows);
  const sessions = data.channels.flatMap((c) => c.sessions.map((s) => el("tr", {},
    el("td", {}, c.name), el("td", {}, s.worker), el("td", {}, "#" + s.index + " " + s.kind),
    el("td", {class: s.state}, s.state), el("td", {class: "n"}, s.inFlight))));
  $("sessions").replaceChildren(...sessions);
}

function renderRoutes(data) {
  $("routes").replaceChildren(...data.routes.map((r) => el("tr", {"data-route": r.name},
    el("td", {}, r.name),
    el("td", {class: "n", "data-k": "routed"}, r.routed),
    el("td", {"data-k": "split"}, Object.entries(r.channels).map(([ch, n]) =>
      ch + " " + n + " (" + pct(r.routed ? n / r.routed : null) + ")").join(", ")),
    el("td", {class: "n", "data-k": "failovers"}, r.failovers))));
  $("no-routes").hidden = data.routes.length > 0;
}

function renderTotals(data) {
  for (const what of Object.keys(COLORS)) {
    const n = data.channels.reduce((acc, c) => acc + (c.totals[what] || 0), 0);
    $("totals").querySelector('[data-k="' + what + '"]').textContent = n;
  }
  $("jobs").textContent = data.jobs;
  $("workers").textContent = data.workers.length;
}

function renderChart(data) {
  const W = 720, H = 220, L = 40, B = 24, T = 10;
  const n = data.minutes.length;
  const series = {};
  for (const what of Object.keys(COLORS)) {
    series[what] = data.channels.reduce((acc, c) => sum(acc, c.series[what]),
                                        new Array(n).fill(0));
  }
  const top = Math.max(1, ...Object.values(series).flat());
  const x = (i) => L + (W - L - 10) * (n > 1 ? i / (n - 1) : 0);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const svg = $("chart");
  svg.replaceChildren();
  for (const v of [0, top / 2, top]) {
    svg.append(el("line", {x1: L, x2: W - 10, y1: y(v), y2: y(v), stroke: "#e3e6ea"}));
    svg.append(el("text", {x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11,
                           fill: "#667"}, Math.round(v)));
  }
  data.minutes.forEach((m, i) => {
    if (i % 5 === 0 || i === n - 1) {
      svg.append(el("text", {x: x(i), y: H - 6, "text-anchor": "middle", "font-size": 11,
                             fill: "#667"}, hhmm(m)));
    }
  });
  for (const [what, values] of Object.entries(series)) {
    const d = values.map((v, i) => (i ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1));
    svg.append(el("path", {d: d.join(" "), fill: "none", stroke: COLORS[what],
                           "stroke-width": 2, "data-series": what}));
  }
}

function renderFailures(data) {
  $("failures").replaceChildren(...data.failures.map((f) => el("tr", {},
    el("td", {}, time(f.at)), el("td", {}, f.channel), el("td", {}, f.apiMessageId),
    el("td", {}, f.status), el("td", {}, f.detail))));
  $("no-failures").hidden = data.failures.length > 0;
}

async function refresh() {
  const key = sessionStorage.getItem(KEY);
  if (!key) { showLogin(""); return; }
  let resp;
  try {
    resp = await fetch("status.json", {headers: {Authorization: "Bearer " + key},
                                       cache: "no-store"});
  } catch (err) {
    $("meta").textContent = "gateway unreachable: " + err;
    return;
  }
  if (resp.status === 401 || resp.status === 403) {
    const body = await resp.json().catch(() => ({}));
    sessionStorage.removeItem(KEY);
    showLogin((body.ResponseStatus || {}).Message || "this key may not see the status page");
    return;
  }
  if (!resp.ok) { $("meta").textContent = "status unavailable (" + resp.status + ")"; return; }
  const data = await resp.json();
  $("login").hidden = true;
  $("main").hidden = false;
  renderChannels(data);
  renderRoutes(data);
  renderTotals(data);
  renderChart(data);
  renderFailures(data);
  $("meta").textContent = "updated " + time(data.now) + ", every " + REFRESH_MS / 1000 + " s";
  document.body.dataset.updated = String(data.now);
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $("key").value.trim());
  $("key").value = "";
  refresh();
});
$("legend").replaceChildren(...Object.entries(COLORS).map(([what, color]) => {
  const swatch = el("i");
  swatch.style.background = color;
  return el("span", {}, swatch, what);
}));
takeKeyFromFragment();
refresh();
setInterval(refresh, REFRESH_MS);
"""

BODY = """
<h1>smsgw status</h1>
<p><a href="/docs">API docs</a> · <a href="/metadata">metadata pages</a></p>
<div id="meta">loading…</div>
<form id="login" hidden>
  <p>An <b>Admin</b> API key is needed to see the status of this gateway. It is kept in this
  tab only. (Or open <code>/admin/status#key=…</code>.)</p>
  <input id="key" type="password" autocomplete="off" size="40" placeholder="API key">
  <button type="submit">Show</button>
  <p id="error"></p>
</form>
<div id="main" hidden>
  <p id="totals" class="muted">Last 15 minutes, all channels:
    accepted <b data-k="accepted">-</b>, submitted <b data-k="submitted">-</b>,
    delivered <b data-k="delivered">-</b>, failed <b data-k="failed">-</b>,
    undelivered <b data-k="undelivered">-</b>. Jobs waiting <b id="jobs">-</b>;
    workers <b id="workers">-</b>.</p>
  <h2>Channels</h2>
  <table>
    <thead><tr><th>channel</th><th class="n">binds up</th><th class="n">window in use</th>
      <th class="n">queued</th><th class="n">scheduled</th><th class="n">awaiting receipt</th>
      <th class="n">submitted</th><th class="n">delivered</th><th class="n">error rate</th>
      <th class="n">retries</th><th class="n">reconnects</th></tr></thead>
    <tbody id="channels"></tbody>
  </table>
  <p class="muted">Counts and rates over the last 15 minutes. Error rate: failed, undelivered,
  expired or rejected, of the messages that ended; retries: per submitted message.</p>
  <h2>Routes</h2>
  <p id="no-routes" class="muted">No routed messages in the last 15 minutes.</p>
  <table>
    <thead><tr><th>route</th><th class="n">accepted</th><th>split over its channels</th>
      <th class="n">failed over</th></tr></thead>
    <tbody id="routes"></tbody>
  </table>
  <p class="muted">Messages each route sent to each channel when they were accepted, and how
  many of them moved to another channel of their route since (failover).</p>
  <h2>Throughput per minute</h2>
  <div id="legend"></div>
  <svg id="chart" width="720" height="220" viewBox="0 0 720 220" role="img"
       aria-label="messages per minute"></svg>
  <h2>Binds</h2>
  <table>
    <thead><tr><th>channel</th><th>worker</th><th>bind</th><th>state</th>
      <th class="n">in flight</th></tr></thead>
    <tbody id="sessions"></tbody>
  </table>
  <h2>Latest failures</h2>
  <p id="no-failures" class="muted">None.</p>
  <table>
    <thead><tr><th>at</th><th>channel</th><th>apiMessageId</th><th>status</th>
      <th>detail</th></tr></thead>
    <tbody id="failures"></tbody>
  </table>
</div>
"""

PAGE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    f"<title>smsgw status</title><style>{STYLE}</style></head>"
    f"<body>{BODY}<script>{SCRIPT}</script></body></html>\n"
)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Only this page's own inline script and style run; it may fetch from its own origin only.
CSP = (f"default-src 'none'; script-src {_sha256(SCRIPT)}; style-src {_sha256(STYLE)}; "
       "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
