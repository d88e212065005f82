/**
 * The console's static files: its stylesheet and its one small script
 * (charts, the database picker, the Jobs page's live rows), kept here as text
 * so the compiled worker needs no file beside it; uPlot (MIT, pinned in
 * package.json) is served from node_modules as it is. The script builds rows
 * with textContent only: no data ever reaches innerHTML, and the CSP allows
 * no inline script.
 */
import fs from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export interface Asset {
  type: string;
  body: Buffer;
}

const CSS = `
:root { --bad: #b3261e; --ok: #1e7b34; --muted: #666; --line: #ddd; font-family: system-ui, sans-serif; font-size: 14px; color: #222; }
body { margin: 0; }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em; background: #1f2933; color: #fff; flex-wrap: wrap; }
header a { color: #cde; text-decoration: none; margin-right: 1em; }
header a[aria-current] { color: #fff; font-weight: bold; border-bottom: 2px solid #fff; }
header .viewer { margin-left: auto; color: #aab; font-size: .9em; }
header select { font: inherit; }
main { padding: 0 1.2em 2em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; } h3 { font-size: 1em; }
table.grid { border-collapse: collapse; width: 100%; }
table.grid th, table.grid td { border-bottom: 1px solid var(--line); padding: .3em .5em; text-align: left; vertical-align: top; }
table.grid th { background: #f4f5f7; position: sticky; top: 0; }
td.error, td.payload { max-width: 28em; overflow-wrap: anywhere; }
td.worker { font-family: monospace; font-size: .85em; }
pre { white-space: pre-wrap; margin: .3em 0; }
.status { padding: 0 .4em; border-radius: 3px; background: #eee; }
.status-succeeded, .status-sent, .status-verified { background: #d8f0dc; color: var(--ok); }
.status-failed, .status-abandoned, .status-corrupt { background: #fadbd8; color: var(--bad); }
.status-running, .status-rendering, .status-sending, .status-uploading { background: #dce8fa; }
.bad { color: var(--bad); font-weight: bold; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .8em 1em; min-width: 12em; }
.card .big { font-size: 1.8em; font-weight: bold; display: block; }
.card.actions { display: flex; gap: .5em; align-items: center; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
.charts figure { flex: 1 1 28em; margin: 0; }
.chart { min-height: 240px; }
.filters { display: flex; flex-wrap: wrap; gap: 1em; align-items: end; margin-bottom: 1em; }
.filters label { display: flex; flex-direction: column; font-size: .9em; color: var(--muted); }
.pages { display: flex; gap: 2em; margin-top: 1em; }
.notice { background: #fff7d6; border: 1px solid #e8d48a; padding: .6em 1em; }
.hint, .empty { color: var(--muted); }
form.action { display: inline; }
#live-state[data-state=live] { color: var(--ok); } #live-state[data-state=reconnecting] { color: var(--bad); }
tr[data-live] { animation: flash 2s; }
@keyframes flash { from { background: #fff3b0; } to { background: transparent; } }
.calendar { display: flex; gap: 2px; overflow-x: auto; padding-bottom: .5em; }
.week { display: flex; flex-direction: column; gap: 2px; }
.day { display: inline-block; width: 11px; height: 11px; border-radius: 2px; background: #ebedf0; box-sizing: border-box; }
.day-ok { background: #40a05a; } .day-failed { background: #d73a2f; } .day-mixed { background: #e8a33d; } .day-pruned { background: #b8d9c0; }
.day-future { background: transparent; }
.day[class*=tiers-] { background: #1e6b34; }
.day.restore-ok { border: 2px solid #1a4fa0; } .day.restore-failed { border: 2px solid #d73a2f; }
.legend .day { margin: 0 .2em 0 1em; vertical-align: middle; }
.two { display: flex; gap: 2em; flex-wrap: wrap; } .two > div { flex: 1 1 24em; }
.subnav a { margin-right: 1em; } .subnav a[aria-current] { font-weight: bold; }
`;

const JS = `"use strict";
(function () {
  document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });

  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  function fmtBytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    var data = source ? JSON.parse(source.textContent) : null;
    if (!data || !data.x.length || !data.tasks.length) { el.textContent = "No data yet."; el.className += " empty"; return; }
    if (!window.uPlot) { el.textContent = "The chart library did not load."; return; }
    var bytes = el.getAttribute("data-kind") === "bytes";
    var series = [{}].concat(data.tasks.map(function (t, i) {
      return { label: t, stroke: COLORS[i % COLORS.length], width: 2, points: { show: bytes || data.x.length < 40 },
               value: bytes ? function (u, v) { return v == null ? "" : fmtBytes(v); } : undefined };
    }));
    var x = { time: true };
    if (data.range) x.range = function () { return data.range; };
    var opts = { width: Math.max(300, el.clientWidth || 600), height: 220, series: series, scales: { x: x },
                 axes: [{}, bytes ? { values: function (u, vals) { return vals.map(fmtBytes); }, size: 90 } : {}] };
    new window.uPlot(opts, [data.x].concat(data.series), el);
    el.setAttribute("data-rendered", "yes");
  });

  var table = document.getElementById("jobs");
  if (table && window.EventSource) live(table);

  function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }
  function utc(at) { var d = new Date(at); return isNaN(d) ? String(at) : d.toISOString().slice(0, 19).replace("T", " "); }
  function duration(ms) {
    if (ms == null) return "";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    if (ms < 3600000) return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
    return Math.floor(ms / 3600000) + " h " + Math.round((ms % 3600000) / 60000) + " min";
  }
  function retryForm(f, jobId) {
    var form = document.createElement("form");
    form.method = "post"; form.action = "/console/actions/retry"; form.className = "action";
    [["csrf", f.csrf], ["db", f.db], ["job", String(jobId)]].forEach(function (kv) {
      var i = document.createElement("input"); i.type = "hidden"; i.name = kv[0]; i.value = kv[1]; form.appendChild(i);
    });
    var b = document.createElement("button"); b.type = "submit"; b.textContent = "Retry"; form.appendChild(b);
    return form;
  }
  function fill(tr, e, f) {
    while (tr.cells.length < 10) tr.insertCell(-1);
    var c = tr.cells;
    text(c[0], utc(e.started_at));
    text(c[1], e.task);
    text(c[2], e.job_id);
    text(c[3], e.attempt + "/" + e.max_attempts);
    c[4].textContent = "";
    var s = document.createElement("span"); s.className = "status status-" + e.status; s.textContent = e.status; c[4].appendChild(s);
    text(c[5], duration(e.duration_ms));
    text(c[6], e.worker_id); c[6].className = "worker";
    if (e.error || e.error_class) { c[7].textContent = ""; var p = document.createElement("span"); p.className = "text"; p.textContent = e.error || e.error_class; c[7].appendChild(p); }
    c[7].className = "error";
    if (e.payload) { c[8].textContent = ""; var q = document.createElement("span"); q.className = "text"; q.textContent = e.payload; c[8].appendChild(q); }
    c[8].className = "payload";
    c[9].textContent = "";
    if (e.status === "failed" && e.attempt >= e.max_attempts) c[9].appendChild(retryForm(f, e.job_id));
    tr.className = "row-" + e.status;
    tr.setAttribute("data-seq", String(e.seq));
  }
  function matches(e, f) {
    if (f.task && e.task !== f.task) return false;
    if (f.status && e.status !== f.status) return false;
    var t = new Date(e.started_at).getTime();
    if (f.from && t < new Date(f.from).getTime()) return false;
    if (f.to && t >= new Date(f.to).getTime()) return false;
    return true;
  }
  function live(table) {
    var f = table.dataset;
    var state = document.getElementById("live-state");
    function show(s) { if (state) { state.setAttribute("data-state", s); state.textContent = s === "live" ? "live" : s === "busy" ? "busy, retrying…" : s + "…"; } }
    var es = new EventSource(f.events);
    es.addEventListener("state", function (m) {
      var s = JSON.parse(m.data);
      // More was missed than a replay gives (a long sleep, a busy hour): the page itself is read again.
      if (s === "stale") { es.close(); location.reload(); return; }
      show(s);
    });
    es.onerror = function () { if (!state || state.getAttribute("data-state") !== "busy") show("reconnecting"); };
    es.onmessage = function (m) {
      var e = JSON.parse(m.data);
      var body = table.tBodies[0];
      var row = null;
      for (var i = 0; i < body.rows.length; i++) if (body.rows[i].getAttribute("data-run") === String(e.id)) { row = body.rows[i]; break; }
      // An event older than what the row shows (a replay after a reconnect) changes nothing.
      if (row) { if (!(Number(row.getAttribute("data-seq")) >= e.seq)) fill(row, e, f); return; }
      if (f.insert !== "yes" || !matches(e, f)) return;
      row = document.createElement("tr");
      row.setAttribute("data-run", String(e.id));
      row.setAttribute("data-live", String(Date.now()));
      fill(row, e, f);
      body.insertBefore(row, body.firstChild);
      while (body.rows.length > 200) body.deleteRow(-1);
      var empty = document.getElementById("jobs-empty");
      if (empty) empty.parentNode.removeChild(empty);
    };
  }
})();
`;

const UPLOT_JS = "uplot/dist/uPlot.iife.min.js";
const UPLOT_CSS = "uplot/dist/uPlot.min.css";

let cache: Map<string, Asset> | undefined;

/** The static files by path under /console/static/. */
export function assets(): Map<string, Asset> {
  cache ??= new Map([
    ["console.css", { type: "text/css; charset=utf-8", body: Buffer.from(CSS) }],
    ["console.js", { type: "text/javascript; charset=utf-8", body: Buffer.from(JS) }],
    ["uplot.min.js", { type: "text/javascript; charset=utf-8", body: fs.readFileSync(require.resolve(UPLOT_JS)) }],
    ["uplot.min.css", { type: "text/css; charset=utf-8", body: fs.readFileSync(require.resolve(UPLOT_CSS)) }],
  ]);
  return cache;
}
