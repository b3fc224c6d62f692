/**
 * The dashboard's stream-health part (dashboard-page.ts puts it in the page): streams
 * coloured by health with a legend, the failing and quarantined streams with their last
 * error, the degraded mark on an instance card, and a chart of served and healthy streams
 * over the last hour (inline SVG from GET /health/streams, one sample per minute).
 *
 * Same rules as the page's script: ES5-ish, no template literals, every node built with
 * textContent or SVG attributes, never innerHTML. It shows what the agent reports and
 * computes nothing about health itself: /streams/status names the failing, quarantined
 * and unknown streams, and every other active stream is ok (the legend's counts are the
 * agent's).
 */

export const HEALTH_STYLE = `
.hl-ok { --c:var(--ok); } .hl-failing { --c:var(--warn); } .hl-quarantined { --c:var(--bad); } .hl-unknown { --c:#55657a; }
#health-map { display:flex; flex-wrap:wrap; gap:2px; background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:8px; }
#health-map span { width:10px; height:10px; border-radius:2px; background:var(--c); }
#health-map.big span { width:15px; height:15px; border-radius:3px; }
#health-map span.un { outline:1.5px dashed var(--text); outline-offset:-1.5px; }
#health-legend { display:flex; flex-wrap:wrap; gap:4px 14px; font-size:12px; color:var(--dim); margin-top:6px; }
#health-legend span::before { content:""; display:inline-block; width:9px; height:9px; border-radius:2px; background:var(--c); margin-right:5px; vertical-align:-1px; }
#failing { width:100%; border-collapse:collapse; background:var(--panel); border:1px solid var(--line); border-radius:8px; font-size:12.5px; }
#failing th { text-align:left; color:var(--dim); font-weight:600; padding:5px 10px; border-bottom:1px solid var(--line); }
#failing td { padding:5px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
#failing td.err { color:#ffb4ae; word-break:break-word; }
.hbadge { font-size:11px; font-weight:700; text-transform:uppercase; padding:1px 7px; border-radius:4px; }
.hbadge.failing { background:#3d2f12; color:var(--warn); } .hbadge.quarantined { background:#3a1d1d; color:var(--bad); }
.card.degraded { outline:2px dashed var(--bad); outline-offset:-2px; }
.degraded-mark { font-size:11px; font-weight:700; color:var(--bad); margin-top:6px; }
#health-chart { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:6px 8px; }
#health-chart svg { width:100%; height:150px; display:block; }
#health-chart .axis { stroke:var(--line); } #health-chart text { fill:var(--dim); font-size:10px; }
#health-chart .served { stroke:var(--info); } #health-chart .healthy { stroke:var(--ok); } #health-chart .catalog { stroke:var(--dim); stroke-dasharray:3 3; }
#health-chart polyline { fill:none; stroke-width:1.8; }
#health-chart circle.served { fill:var(--info); } #health-chart circle.healthy { fill:var(--ok); } #health-chart circle.catalog { fill:var(--dim); }
.reason.failing, .reason.worker-degraded { background:#3d2f12; color:var(--warn); } .reason.quarantined { background:#3a1d1d; color:var(--bad); }
`;

/** Functions used by the page's render(); they expect the page's el(), clear(), cmpId() and clock(). */
export const HEALTH_SCRIPT = `
  var HEALTH = ["ok", "failing", "quarantined", "unknown"];
  // The SVG namespace, from an <svg> the HTML parser made (no URL spelled out in the page).
  var SVG = $("svg-ns").namespaceURI;

  // The agent names the failing, quarantined and unknown (never heard) active streams;
  // every other active stream is ok (shared/stream-health.ts decides, not this page).
  function healthOf(st) {
    var h = {};
    (st.unknown_streams || []).forEach(function (s) { h[String(s)] = "unknown"; });
    (st.failing_streams || []).forEach(function (s) { h[String(s.id)] = "failing"; });
    (st.quarantined_streams || []).forEach(function (s) { h[String(s.id)] = "quarantined"; });
    st.distribution.forEach(function (d) {
      d.streams.forEach(function (s) { var k = String(s); if (!h[k]) h[k] = "ok"; });
    });
    st.unassigned.forEach(function (s) { var k = String(s); if (!h[k]) h[k] = "ok"; });
    return h;
  }

  function renderHealthMap(st) {
    var m = $("health-map"), lg = $("health-legend");
    clear(m); clear(lg);
    m.className = st.streams.active <= 300 ? "big" : "";
    var h = healthOf(st), owner = {};
    st.distribution.forEach(function (d) { d.streams.forEach(function (s) { owner[String(s)] = d.instance_id; }); });
    var all = [];
    st.distribution.forEach(function (d) { d.streams.forEach(function (s) { all.push(s); }); });
    st.unassigned.forEach(function (s) { all.push(s); });
    all.sort(cmpId);
    all.forEach(function (s) {
      var k = String(s), hh = h[k] || "unknown";
      var sq = el("span", "hl-" + hh + (owner[k] ? "" : " un"));
      sq.setAttribute("data-health", hh);
      sq.title = "stream " + s + ": " + hh + (owner[k] ? " on " + owner[k] : ", unassigned");
      m.appendChild(sq);
    });
    var counts = st.health || {};
    HEALTH.forEach(function (k) {
      var n = counts[k] !== undefined ? counts[k] : all.filter(function (s) { return (h[String(s)] || "unknown") === k; }).length;
      var sp = el("span", "hl-" + k, k + " (" + n + ")");
      sp.setAttribute("data-legend", k);
      lg.appendChild(sp);
    });
  }

  function renderFailing(st) {
    var t = $("failing");
    clear(t);
    var rows = [];
    (st.quarantined_streams || []).forEach(function (s) {
      rows.push({ s: s, kind: "quarantined", where: "nobody \\u00b7 retry " + (s.retry_at ? clock(s.retry_at) : "?") });
    });
    (st.failing_streams || []).forEach(function (s) { rows.push({ s: s, kind: "failing", where: s.owner || "nobody" }); });
    if (rows.length === 0) {
      var tr0 = el("tr"); var td0 = el("td", "empty", "No stream is failing or quarantined."); td0.colSpan = 5; tr0.appendChild(td0); t.appendChild(tr0);
      return;
    }
    var head = el("tr");
    ["stream", "health", "where", "since", "last error"].forEach(function (x) { head.appendChild(el("th", null, x)); });
    t.appendChild(head);
    rows.forEach(function (r) {
      var tr = el("tr");
      tr.setAttribute("data-stream", String(r.s.id));
      tr.setAttribute("data-health", r.kind);
      tr.appendChild(el("td", null, r.s.id + (r.s.name ? " " + r.s.name : "")));
      var b = el("td"); b.appendChild(el("span", "hbadge " + r.kind, r.kind)); tr.appendChild(b);
      tr.appendChild(el("td", null, r.where));
      tr.appendChild(el("td", null, r.s.since ? clock(r.s.since) : ""));
      tr.appendChild(el("td", "err", r.s.error || "\\u2014"));
      t.appendChild(tr);
    });
  }

  function degradedMark(card, i) {
    if (!i.degraded) return;
    card.className += " degraded";
    card.setAttribute("data-degraded", i.degraded_reason || "yes");
    var why = i.degraded_reason === "rate-limited" ? "rate-limited" + (i.degraded_until ? " until " + clock(i.degraded_until) : "") : "its streams fail";
    card.appendChild(el("div", "degraded-mark", "\\u26a0 degraded: " + why + "; gets no new stream"));
  }

  function svg(tag, attrs) {
    var n = document.createElementNS(SVG, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) n.setAttribute(k, String(attrs[k]));
    return n;
  }

  // Served and healthy streams (and the catalog size, dashed) over the last hour.
  function renderChart(samples, nowMs) {
    var box = $("health-chart");
    clear(box);
    if (!samples || samples.length === 0) { box.appendChild(el("div", "empty", "No sample yet: the leader records one a minute.")); return; }
    var W = 600, H = 150, L = 34, R = 8, T = 8, B = 18, span = 3600000, t0 = nowMs - span;
    var top = 1;
    samples.forEach(function (s) { top = Math.max(top, s.streams, s.served, s.healthy); });
    var x = function (at) { return L + (W - L - R) * Math.max(0, Math.min(1, (new Date(at).getTime() - t0) / span)); };
    var y = function (v) { return T + (H - T - B) * (1 - v / top); };
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
    s.appendChild(svg("line", { "class": "axis", x1: L, y1: y(0), x2: W - R, y2: y(0) }));
    s.appendChild(svg("line", { "class": "axis", x1: L, y1: T, x2: L, y2: y(0) }));
    var lab = function (tx, ty, text, anchor) { var n = svg("text", { x: tx, y: ty, "text-anchor": anchor || "end" }); n.textContent = text; s.appendChild(n); };
    lab(L - 4, y(top) + 4, String(top)); lab(L - 4, y(0), "0");
    lab(L, H - 4, "60 min ago", "start"); lab(W - R, H - 4, "now");
    ["catalog", "served", "healthy"].forEach(function (k) {
      var key = k === "catalog" ? "streams" : k;
      var pts = samples.map(function (p) { return x(p.at).toFixed(1) + "," + y(p[key]).toFixed(1); });
      if (pts.length === 1) pts.push((x(samples[0].at) + 2).toFixed(1) + "," + y(samples[0][key]).toFixed(1));
      var end = samples[samples.length - 1];
      s.appendChild(svg("circle", { "class": k, cx: x(end.at).toFixed(1), cy: y(end[key]).toFixed(1), r: 2.5 }));
      var line = svg("polyline", { "class": k, points: pts.join(" ") });
      line.setAttribute("data-series", k);
      var tt = svg("title", {}); tt.textContent = k + ": " + samples[samples.length - 1][key] + " now"; line.appendChild(tt);
      s.appendChild(line);
    });
    box.appendChild(s);
    var last = samples[samples.length - 1];
    var cap = el("div", "kv", "now " + last.served + " of " + last.streams + " served, " + last.healthy + " served and healthy \\u00b7 ");
    cap.id = "health-now";
    var k1 = el("span", null, "\\u2014 served "), k2 = el("span", null, "\\u2014 healthy "), k3 = el("span", null, "- - catalog");
    k1.style.color = "var(--info)"; k2.style.color = "var(--ok)";
    cap.appendChild(k1); cap.appendChild(k2); cap.appendChild(k3);
    box.appendChild(cap);
  }

  function pollHealth() {
    fetch("health/streams?minutes=60", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (b) { renderChart(b.samples, Date.now()); document.body.setAttribute("data-health-samples", String(b.samples.length)); })
      .catch(function (e) { var box = $("health-chart"); clear(box); box.appendChild(el("div", "empty", "Stream-health history unavailable: " + String(e.message || e))); })
      .then(function () { setTimeout(pollHealth, 30000); });
  }
`;

export const HEALTH_SECTION = `
  <div class="two">
    <section><h2>Streams, coloured by health</h2><div id="health-map"></div><div id="health-legend"></div>
      <h2 style="margin-top:14px">Served and healthy, last hour</h2><div id="health-chart"></div>
      <svg id="svg-ns" width="0" height="0" aria-hidden="true" style="position:absolute"></svg></section>
    <section><h2>Failing and quarantined streams</h2><table id="failing"></table></section>
  </div>`;
