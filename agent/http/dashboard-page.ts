/**
 * The dashboard page: one HTML document with its style and script inline (no build step,
 * no external asset, works from `npm run agent` and from the compiled dist alike).
 *
 * The script is plain ES5-ish JavaScript written without template literals, so this file
 * can hold it in a template string untouched. It builds every node with textContent, never
 * innerHTML with data: stream names, ids and reasons come from the operator's tables.
 * Data arrives as server-sent events (`dashboard/events`, event "state"); without
 * EventSource it polls `dashboard/state`. The stream-health part (dashboard-health.ts)
 * also reads `health/streams` once a minute or so for its chart.
 */
import { HEALTH_SCRIPT, HEALTH_SECTION, HEALTH_STYLE } from "./dashboard-health.js";

export const STYLE = `
:root { --bg:#0f1419; --panel:#171e26; --line:#263241; --text:#d8e1ea; --dim:#8a9aab; --ok:#3fb97c; --warn:#e0a93a; --bad:#e5534b; --info:#4c9be8; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; flex-wrap:wrap; align-items:center; gap:14px; padding:12px 20px; border-bottom:1px solid var(--line); background:var(--panel); }
header h1 { font-size:17px; margin:0 10px 0 0; letter-spacing:.3px; }
.pill { padding:2px 10px; border-radius:999px; font-size:12px; font-weight:600; border:1px solid var(--line); }
.pill.orchestrated { background:#173826; color:var(--ok); border-color:#235c3d; }
.pill.hashed { background:#3d2f12; color:var(--warn); border-color:#6b5220; }
.kv { color:var(--dim); } .kv b { color:var(--text); font-weight:600; }
#live { margin-left:auto; display:flex; align-items:center; gap:6px; color:var(--dim); font-size:12px; }
#live i { width:9px; height:9px; border-radius:50%; background:var(--bad); display:inline-block; }
#live.on i { background:var(--ok); box-shadow:0 0 6px var(--ok); }
main { padding:16px 20px; display:grid; gap:16px; }
.tiles { display:grid; grid-template-columns:repeat(auto-fit, minmax(150px,1fr)); gap:10px; }
.tile { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
.tile .n { font-size:24px; font-weight:700; } .tile .l { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.5px; }
.tile.alert .n { color:var(--bad); }
section h2 { font-size:13px; color:var(--dim); text-transform:uppercase; letter-spacing:.6px; margin:0 0 8px; font-weight:600; }
#fleet { display:grid; grid-template-columns:repeat(auto-fill, minmax(230px,1fr)); gap:10px; }
.card { background:var(--panel); border:1px solid var(--line); border-left:4px solid var(--c, var(--info)); border-radius:8px; padding:10px 12px; position:relative; }
.card.draining { background-image:repeating-linear-gradient(135deg, transparent 0 10px, rgba(224,169,58,.07) 10px 20px); }
.card.inactive, .card.removed { opacity:.55; }
.card .top { display:flex; align-items:center; gap:8px; }
.card .id { font-weight:700; font-size:15px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.crown { color:#f5c542; font-size:12px; font-weight:700; border:1px solid #6b5a20; border-radius:4px; padding:0 5px; }
.state { margin-left:auto; font-size:11px; font-weight:700; text-transform:uppercase; padding:1px 7px; border-radius:4px; }
.state.active { background:#173826; color:var(--ok); } .state.warning { background:#3d2f12; color:var(--warn); }
.state.draining { background:#3d2f12; color:var(--warn); } .state.recovering { background:#13304d; color:var(--info); }
.state.inactive, .state.removed { background:#3a1d1d; color:var(--bad); }
.state.legacy { background:#2a2540; color:#b9a7ff; } .card.legacy { border-style:dashed; }
.bar { height:12px; background:#0b1015; border:1px solid var(--line); border-radius:6px; margin:9px 0 4px; overflow:hidden; display:flex; }
.bar .fill { background:var(--c, var(--info)); height:100%; transition:width .4s; }
.bar .rev { background:repeating-linear-gradient(45deg, var(--warn) 0 4px, transparent 4px 8px); height:100%; }
.load { display:flex; justify-content:space-between; font-size:12px; color:var(--dim); }
.load b { color:var(--text); }
.meta { display:flex; flex-wrap:wrap; gap:4px 12px; font-size:12px; color:var(--dim); margin-top:6px; }
.dot { width:8px; height:8px; border-radius:50%; display:inline-block; margin-right:4px; vertical-align:middle; }
.dot.ok { background:var(--ok); } .dot.bad { background:var(--bad); } .dot.none { background:var(--dim); }
#map { display:flex; flex-wrap:wrap; gap:2px; background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:8px; }
#map span { width:10px; height:10px; border-radius:2px; background:var(--c); }
#map.big span { width:15px; height:15px; border-radius:3px; }
#map span.un { background:transparent; outline:1.5px solid var(--bad); outline-offset:-1.5px; }
#legend { display:flex; flex-wrap:wrap; gap:4px 14px; font-size:12px; color:var(--dim); margin-top:6px; }
#legend span::before { content:""; display:inline-block; width:9px; height:9px; border-radius:2px; background:var(--c); margin-right:5px; vertical-align:-1px; }
.two { display:grid; grid-template-columns: 2fr 1fr; gap:16px; }
@media (max-width: 900px) { .two { grid-template-columns: 1fr; } }
#moves { list-style:none; margin:0; padding:0; background:var(--panel); border:1px solid var(--line); border-radius:8px; max-height:340px; overflow:auto; }
#moves li { display:flex; gap:10px; padding:5px 10px; border-bottom:1px solid var(--line); font-size:12.5px; }
#moves li:last-child { border-bottom:0; }
#moves .t { color:var(--dim); font-variant-numeric:tabular-nums; white-space:nowrap; }
.reason { margin-left:auto; font-size:11px; padding:0 6px; border-radius:4px; background:#1d2a38; color:var(--info); white-space:nowrap; }
.reason.failover, .reason.capacity { background:#3a1d1d; color:var(--bad); } .reason.drain { background:#3d2f12; color:var(--warn); }
#unassigned-list { font-size:12px; color:var(--bad); word-break:break-all; background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:8px 10px; min-height:36px; }
.empty { color:var(--dim); font-style:italic; padding:8px 10px; }
#error { display:none; background:#3a1d1d; color:#ffb4ae; padding:8px 20px; }
${HEALTH_STYLE}`;

export const SCRIPT = `
(function () {
  "use strict";
  var STATES = ["active", "warning", "recovering", "draining", "legacy", "inactive", "removed"];
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); }
  // Colours by rank among the known instance ids (golden-angle hues): distinct for
  // similar names, and stable while the fleet does not change.
  var palette = {};
  function setPalette(list) {
    palette = {};
    list.map(function (i) { return i.instance_id; }).sort().forEach(function (id, k) {
      palette[id] = "hsl(" + Math.round((k * 137.508 + 200) % 360) + ", 62%, 58%)";
    });
  }
  function color(id) { return palette[id] || "hsl(0, 0%, 60%)"; }
  function ago(ms) {
    if (ms === null || ms === undefined) return "never";
    if (ms < 1500) return "now";
    if (ms < 90000) return Math.round(ms / 1000) + " s ago";
    if (ms < 5400000) return Math.round(ms / 60000) + " min ago";
    return Math.round(ms / 3600000) + " h ago";
  }
  function clock(iso) { var d = new Date(iso); return isNaN(d.getTime()) ? "" : d.toLocaleTimeString(); }
  function cmpId(a, b) {
    var na = typeof a === "number", nb = typeof b === "number";
    if (na && nb) return a - b;
    if (na !== nb) return na ? -1 : 1;
    return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
  }
  function tile(label, value, alert, id) {
    var t = el("div", "tile" + (alert ? " alert" : ""));
    var n = el("div", "n", value);
    if (id) n.id = id;
    t.appendChild(n);
    t.appendChild(el("div", "l", label));
    return t;
  }

  function renderHeader(s) {
    var mode = $("mode");
    mode.textContent = s.mode;
    mode.className = "pill " + s.mode;
    $("epoch").textContent = String(s.epoch);
    $("leader").textContent = s.leader ? s.leader.id + (s.leader.ready ? "" : " (starting)") : "none";
    $("answered").textContent = s.answered_by;
    $("updated").textContent = clock(s.generated_at);
  }

  function renderTiles(s, inst) {
    var t = $("tiles");
    clear(t);
    var live = s.instances.active + s.instances.warning + s.instances.recovering;
    t.appendChild(tile("instances serving", live + " / " + s.instances.total, false, "live-count"));
    t.appendChild(tile("draining", s.instances.draining, false, "draining-count"));
    t.appendChild(tile("late / inactive", s.instances.warning + " / " + s.instances.inactive, s.instances.inactive > 0, "inactive-count"));
    t.appendChild(tile("streams assigned", s.streams.assigned + " / " + s.streams.active, false, "assigned-count"));
    t.appendChild(tile("unassigned", s.streams.unassigned, s.streams.unassigned > 0, "unassigned-count"));
    if (s.streams.legacy > 0) t.appendChild(tile("legacy (" + s.instances.legacy + " without sidecar)", s.streams.legacy, false, "legacy-count"));
    t.appendChild(tile("imbalance (limit " + inst.summary.imbalance_threshold + ")", inst.summary.system_imbalance.toFixed(2), inst.summary.system_imbalance > inst.summary.imbalance_threshold, "imbalance"));
    var lr = s.last_rebalance;
    t.appendChild(tile(lr ? "last moves: " + clock(lr.at) : "last moves", lr ? lr.moved + " · " + lr.reason : "none", false, "last-rebalance"));
  }

  function renderFleet(inst, owned) {
    var f = $("fleet");
    clear(f);
    var list = inst.instances.slice().sort(function (a, b) {
      return STATES.indexOf(a.status) - STATES.indexOf(b.status) || (a.instance_id < b.instance_id ? -1 : 1);
    });
    if (list.length === 0) f.appendChild(el("div", "empty", "No instance has registered yet."));
    list.forEach(function (i) {
      var c = el("div", "card " + i.status);
      c.setAttribute("data-instance", i.instance_id);
      c.setAttribute("data-status", i.status);
      c.style.setProperty("--c", color(i.instance_id));
      var top = el("div", "top");
      var idn = el("span", "id", i.instance_id);
      idn.title = i.host ? i.instance_id + " on " + i.host : i.instance_id;
      top.appendChild(idn);
      if (i.is_leader) { var cr = el("span", "crown", "\\u2605 leader"); cr.setAttribute("data-leader", "1"); top.appendChild(cr); }
      top.appendChild(el("span", "state " + i.status, i.status));
      c.appendChild(top);
      var bar = el("div", "bar");
      var cap = Math.max(i.max_streams, 1);
      var steady = Math.max(0, i.current_streams - i.revoking_streams);
      var fill = el("div", "fill"); fill.style.width = Math.min(100, 100 * steady / cap) + "%";
      var rev = el("div", "rev"); rev.style.width = Math.min(100, 100 * i.revoking_streams / cap) + "%";
      bar.appendChild(fill); bar.appendChild(rev);
      bar.title = i.current_streams + " of " + i.max_streams + " streams" + (i.revoking_streams ? ", " + i.revoking_streams + " being handed off" : "");
      c.appendChild(bar);
      var load = el("div", "load");
      var l1 = el("span"); var b = el("b", null, i.current_streams); b.className = "current"; l1.appendChild(b); l1.appendChild(document.createTextNode(" / " + i.max_streams + " streams"));
      load.appendChild(l1);
      load.appendChild(el("span", null, i.load_percentage + "%"));
      c.appendChild(load);
      var meta = el("div", "meta");
      var w = el("span");
      var wk = i.worker ? (i.worker.kind === "none" ? "none" : i.worker.ok ? "ok" : "bad") : "none";
      w.appendChild(el("i", "dot " + wk));
      w.appendChild(document.createTextNode(i.worker ? (i.worker.kind === "none" ? "no worker yet" : "worker " + (i.worker.ok ? "ok" : "silent " + ago(i.worker.last_seen_ms_ago))) : "no heartbeat"));
      meta.appendChild(w);
      meta.appendChild(el("span", null, "heartbeat " + ago(i.last_heartbeat_ms_ago)));
      if (i.mode) meta.appendChild(el("span", null, i.mode));
      meta.appendChild(el("span", null, i.processed_total + " processed" + (i.errors_total ? ", " + i.errors_total + " errors" : "")));
      if (i.location) meta.appendChild(el("span", null, i.location));
      if (i.version) meta.appendChild(el("span", null, "v" + i.version));
      c.appendChild(meta);
      degradedMark(c, i);
      f.appendChild(c);
    });
  }

  function renderMap(st) {
    var m = $("map"), lg = $("legend");
    clear(m); clear(lg);
    m.className = st.streams.active <= 300 ? "big" : "";
    var all = [];
    st.distribution.forEach(function (d) {
      d.streams.forEach(function (s) { all.push({ id: s, owner: d.instance_id }); });
      var sp = el("span", null, d.instance_id + " (" + d.count + ")");
      sp.style.setProperty("--c", color(d.instance_id));
      lg.appendChild(sp);
    });
    st.unassigned.forEach(function (s) { all.push({ id: s, owner: null }); });
    all.sort(function (a, b) { return cmpId(a.id, b.id); });
    if (all.length === 0) m.appendChild(el("div", "empty", "No active stream in the catalog."));
    all.forEach(function (x) {
      var sq = el("span", x.owner ? null : "un");
      if (x.owner) sq.style.setProperty("--c", color(x.owner));
      sq.title = "stream " + x.id + (x.owner ? " \\u2192 " + x.owner : " \\u2014 unassigned");
      m.appendChild(sq);
    });
    if (st.unassigned.length) {
      var u = el("span", null, "unassigned (" + st.unassigned.length + ")");
      u.style.setProperty("--c", "transparent");
      u.style.color = "var(--bad)";
      lg.appendChild(u);
    }
    var ul = $("unassigned-list");
    clear(ul);
    if (st.unassigned.length === 0) ul.appendChild(el("span", "empty", "Every active stream has an owner."));
    else ul.textContent = st.unassigned.slice(0, 300).join(", ") + (st.unassigned.length > 300 ? " \\u2026" : "");
  }

  function describe(e) {
    var s = e.stream_id === null ? "" : "stream " + e.stream_id + ": ";
    switch (e.kind) {
      case "assign": return s + (e.from ? e.from + " \\u2192 " : "\\u2192 ") + e.to;
      case "revoke": return s + "handing off from " + e.from + (e.to ? " to " + e.to : "");
      case "unassign": return s + "taken from " + e.from;
      case "leader": return (e.to || "?") + " elected leader (epoch " + e.epoch + ")";
      case "drain": return (e.from || "?") + " drain requested";
      case "undrain": return (e.from || "?") + " undrained";
      case "mode": return "cluster mode " + (e.reason || "changed");
      case "unplaced": return ((e.detail && e.detail.count) || "some") + " stream(s) could not be placed";
      default: return e.kind + (e.stream_id !== null ? " " + e.stream_id : "");
    }
  }

  function renderMoves(st) {
    var ul = $("moves");
    clear(ul);
    if (st.recent_changes.length === 0) ul.appendChild(el("li", "empty", "Nothing has moved yet."));
    st.recent_changes.forEach(function (e) {
      var li = el("li", "move");
      li.setAttribute("data-kind", e.kind);
      li.appendChild(el("span", "t", clock(e.at)));
      li.appendChild(el("span", null, describe(e)));
      if (e.reason && e.kind !== "mode") li.appendChild(el("span", "reason " + e.reason, e.reason));
      ul.appendChild(li);
    });
  }

${HEALTH_SCRIPT}
  var lastSeq = 0;
  function render(state) {
    if (!state || !state.status) return;
    $("error").style.display = "none";
    setPalette(state.instances.instances);
    renderHeader(state.status);
    renderTiles(state.status, state.instances);
    renderFleet(state.instances);
    renderMap(state.streams);
    renderMoves(state.streams);
    renderHealthMap(state.streams);
    renderFailing(state.streams);
    document.body.setAttribute("data-seq", String(++lastSeq));
  }
  function problem(msg) { var e = $("error"); e.textContent = msg; e.style.display = "block"; }
  function live(on) { $("live").className = on ? "on" : ""; $("live-text").textContent = on ? "live" : "reconnecting\\u2026"; }

  function poll() {
    fetch("dashboard/state", { cache: "no-store" })
      .then(function (r) { return r.json().then(function (b) { if (!r.ok) throw new Error(b.message || ("HTTP " + r.status)); return b; }); })
      .then(function (b) { live(true); render(b); })
      .catch(function (e) { live(false); problem(String(e.message || e)); })
      .then(function () { setTimeout(poll, 2000); });
  }
  function connect() {
    if (!window.EventSource) return poll();
    var es = new EventSource("dashboard/events");
    es.addEventListener("state", function (m) { live(true); render(JSON.parse(m.data)); });
    es.addEventListener("problem", function (m) { problem(JSON.parse(m.data).message); });
    es.onerror = function () { live(false); };
  }
  connect();
  pollHealth();
})();
`;

export function page(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fingerv7 fleet</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>fingerv7 fleet</h1>
  <span id="mode" class="pill">…</span>
  <span class="kv">leader <b id="leader">…</b></span>
  <span class="kv">epoch <b id="epoch">…</b></span>
  <span class="kv">answered by <b id="answered">…</b></span>
  <span id="live"><i></i><span id="live-text">connecting…</span> · <span id="updated"></span></span>
</header>
<div id="error"></div>
<main>
  <div id="tiles" class="tiles"></div>
  <section><h2>Instances: load against capacity</h2><div id="fleet"></div></section>
  <div class="two">
    <section><h2>Streams, coloured by who serves them</h2><div id="map"></div><div id="legend"></div>
      <h2 style="margin-top:14px">Unassigned streams</h2><div id="unassigned-list"></div></section>
    <section><h2>Recent changes and why</h2><ul id="moves"></ul></section>
  </div>${HEALTH_SECTION}
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
