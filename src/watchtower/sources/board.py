"""The on-call board: one static page whose script polls /v1/alerts and acknowledges episodes.

Static so it needs no token itself; the API calls carry the bearer token the operator gives once
in the address (``/#token=...``), kept in this browser's localStorage. Every value from a mention
is set with textContent (never innerHTML) and only http(s) links are made clickable: alert texts
are written by strangers on the internet.
"""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>watchtower</title>
<style>
 body{font:14px system-ui,sans-serif;margin:1rem;background:#111;color:#ddd}
 h1{font-size:1.2rem;margin:0 0 .5rem} #status{color:#888;font-size:.85rem}
 table{border-collapse:collapse;width:100%;margin-top:.5rem}
 th,td{padding:.35rem .5rem;border-bottom:1px solid #333;text-align:left;vertical-align:top}
 .spark{font-family:monospace;letter-spacing:1px;white-space:pre}
 .lvl{font-weight:bold;text-transform:uppercase} .critical{color:#f55} .watch{color:#fb3}
 .resolved{opacity:.5} a{color:#8cf} button{cursor:pointer}
</style></head>
<body>
<h1>watchtower: escalations</h1>
<div id="status">loading...</div>
<table><thead><tr><th>at</th><th>level</th><th>state</th><th>thread</th><th>growth</th>
<th>why</th><th>link</th><th></th></tr></thead><tbody id="rows"></tbody></table>
<script>
"use strict";
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) { localStorage.setItem("wt-token", hash.get("token")); location.hash = ""; }
function headers() {
  const t = localStorage.getItem("wt-token");
  return t ? {"Authorization": "Bearer " + t} : {};
}
function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function link(row, url) {
  const td = cell(row, "");
  if (typeof url === "string" && /^https?:\\/\\//.test(url)) {
    const a = document.createElement("a");
    a.href = url; a.textContent = "open"; a.rel = "noopener noreferrer"; a.target = "_blank";
    td.appendChild(a);
  }
}
async function ack(episode) {
  const r = await fetch("v1/alerts/" + encodeURIComponent(episode) + "/ack",
                        {method: "POST", headers: headers()});
  document.getElementById("status").textContent = r.ok ? "acknowledged" : "ack failed: " + r.status;
  refresh();
}
function render(alerts) {
  const body = document.getElementById("rows");
  body.replaceChildren();
  for (const a of alerts) {
    const row = document.createElement("tr");
    if (a.state === "resolved") row.className = "resolved";
    cell(row, a.at);
    cell(row, a.level, "lvl " + (a.level === "critical" ? "critical" : "watch"));
    cell(row, a.acked ? a.state + " (acked)" : a.state);
    cell(row, a.thread_id);
    cell(row, a.sparkline, "spark");
    cell(row, a.why);
    link(row, a.url);
    const td = cell(row, "");
    if (a.state !== "resolved" && !a.acked && a.episode_id) {
      const b = document.createElement("button");
      b.textContent = "ack"; b.onclick = () => ack(a.episode_id);
      td.appendChild(b);
    }
    body.appendChild(row);
  }
}
async function refresh() {
  const status = document.getElementById("status");
  try {
    const r = await fetch("v1/alerts?limit=100", {headers: headers()});
    if (r.status === 401) { status.textContent = "unauthorised: open /#token=YOUR_TOKEN"; return; }
    const data = await r.json();
    render(data.alerts || []);
    status.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) { status.textContent = "cannot reach the daemon: " + e; }
}
refresh();
setInterval(refresh, 5000);
</script></body></html>
"""
