"""The on-call board: one static page whose script polls the API and acknowledges episodes.

It leads with "open now", one row per thread from /v1/threads (the threads alerting now, highest
level and score first, with an ack button for an episode nobody acknowledged yet), and keeps the
recent transitions from /v1/alerts below it. Static so it needs no token itself; the API calls
carry the bearer token the operator gives once in the address (``/#token=...``), kept in this
browser's localStorage. Every value from a mention is set with textContent (never innerHTML) and
only http(s) links are made clickable: alert texts are written by strangers on the internet.
"""

from __future__ import annotations

# What the script reads of a /v1/threads entry (``t.…``) and of a /v1/alerts one (``a.…``),
# dotted for nested keys. A test checks the script against these lists and the lists against
# real answers of the daemon, so a field renamed on one side only breaks it.
THREAD_FIELDS = (
    "acked",
    "brand",
    "episode_id",
    "explanation.authors",
    "explanation.crossed",
    "explanation.rate_per_min",
    "headline",
    "level",
    "pending_level",
    "score",
    "since",
    "sparkline",
    "thread_id",
    "url",
)
ALERT_FIELDS = (
    "acked",
    "at",
    "episode_id",
    "headline",
    "level",
    "sparkline",
    "state",
    "thread_id",
    "url",
    "why",
)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>watchtower</title>
<style>
 body{font:14px system-ui,sans-serif;margin:1rem;background:#111;color:#ddd}
 h1{font-size:1.2rem;margin:0 0 .5rem} h2{font-size:1rem;margin:1.2rem 0 0}
 #status{color:#888;font-size:.85rem} .empty{color:#8c8;margin:.5rem 0}
 table{border-collapse:collapse;width:100%;margin-top:.5rem}
 th,td{padding:.35rem .5rem;border-bottom:1px solid #333;text-align:left;vertical-align:top}
 .spark{font-family:monospace;letter-spacing:1px;white-space:pre}
 .lvl{font-weight:bold;text-transform:uppercase} .critical{color:#f55} .watch{color:#fb3}
 .pending{color:#999} .resolved,.acked{opacity:.55}
 .headline{display:block;color:#999;font-size:.85rem;max-width:32rem}
 a{color:#8cf} button{cursor:pointer}
</style></head>
<body>
<h1>watchtower</h1>
<div id="status">loading...</div>
<h2>open now</h2>
<p id="open-empty" class="empty" hidden>no thread is alerting</p>
<table><thead><tr><th>level</th><th>since</th><th>thread</th><th>brand</th><th>score</th>
<th>growth</th><th>why</th><th>link</th><th>ack</th></tr></thead><tbody id="open"></tbody>
</table>
<h2>recent transitions</h2>
<p id="recent-empty" class="empty" hidden>no transition yet</p>
<table><thead><tr><th>at</th><th>level</th><th>state</th><th>thread</th><th>growth</th>
<th>why</th><th>link</th><th></th></tr></thead><tbody id="recent"></tbody></table>
<script>
"use strict";
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) { localStorage.setItem("wt-token", hash.get("token")); location.hash = ""; }
function headers() {
  const token = localStorage.getItem("wt-token");
  return token ? {"Authorization": "Bearer " + token} : {};
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
    const anchor = document.createElement("a");
    anchor.href = url; anchor.textContent = "open"; anchor.target = "_blank";
    anchor.rel = "noopener noreferrer";
    td.appendChild(anchor);
  }
}
function threadCell(row, id, headline) {  // the id, and under it what the thread is about
  const td = cell(row, id);
  if (headline) {
    const about = document.createElement("span");
    about.className = "headline"; about.textContent = headline;
    td.appendChild(about);
  }
}
function ackButton(td, episode) {
  const b = document.createElement("button");
  b.textContent = "ack"; b.onclick = () => ack(episode);
  td.appendChild(b);
}
function levelClass(level) { return "lvl " + (level === "critical" ? "critical" : "watch"); }
async function ack(episode) {
  const r = await fetch("v1/alerts/" + encodeURIComponent(episode) + "/ack",
                        {method: "POST", headers: headers()});
  refresh(r.ok ? "acknowledged" : "ack failed: " + r.status);
}
function fixed(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : value;
}
function threadWhy(t) {
  const parts = [...t.explanation.crossed];
  parts.push(fixed(t.explanation.rate_per_min, 1) + "/min",
             fixed(t.explanation.authors, 0) + " authors");
  return parts.join("; ");
}
function levelText(t) {  // a thread may be heading for a higher level, or not alerting yet
  if (!t.level) return "pending " + (t.pending_level || "");
  return t.pending_level ? t.level + " (" + t.pending_level + " pending)" : t.level;
}
function renderOpen(threads) {
  const body = document.getElementById("open");
  body.replaceChildren();
  let alerting = 0;
  for (const t of threads) {
    const row = document.createElement("tr");
    if (t.acked) row.className = "acked";
    if (t.level) alerting += 1;
    cell(row, levelText(t), t.level ? levelClass(t.level) : "lvl pending");
    cell(row, t.since);
    threadCell(row, t.thread_id, t.headline);
    cell(row, t.brand);
    cell(row, fixed(t.score, 2));
    cell(row, t.sparkline, "spark");
    cell(row, threadWhy(t));
    link(row, t.url);
    const td = cell(row, t.acked ? "acked" : "");
    if (t.level && !t.acked && t.episode_id) ackButton(td, t.episode_id);
    body.appendChild(row);
  }
  document.getElementById("open-empty").hidden = alerting > 0;
  return alerting;
}
function renderRecent(alerts) {
  const body = document.getElementById("recent");
  body.replaceChildren();
  for (const a of alerts) {
    const row = document.createElement("tr");
    if (a.state === "resolved") row.className = "resolved";
    cell(row, a.at);
    cell(row, a.level, levelClass(a.level));
    cell(row, a.acked ? a.state + " (acked)" : a.state);
    threadCell(row, a.thread_id, a.headline);
    cell(row, a.sparkline, "spark");
    cell(row, a.why);
    link(row, a.url);
    const td = cell(row, "");
    if (a.state !== "resolved" && !a.acked && a.episode_id) ackButton(td, a.episode_id);
    body.appendChild(row);
  }
  document.getElementById("recent-empty").hidden = alerts.length > 0;
}
async function refresh(note) {
  const status = document.getElementById("status");
  try {
    const [threads, alerts] = await Promise.all([
      fetch("v1/threads", {headers: headers()}),
      fetch("v1/alerts?limit=100", {headers: headers()}),
    ]);
    if (threads.status === 401 || alerts.status === 401) {
      status.textContent = "unauthorised: open /#token=YOUR_TOKEN"; return;
    }
    if (!threads.ok || !alerts.ok) {
      status.textContent = "the daemon answered " + threads.status + " / " + alerts.status;
      return;
    }
    const alerting = renderOpen((await threads.json()).threads || []);
    renderRecent((await alerts.json()).alerts || []);
    const now = alerting + " alerting, updated " + new Date().toLocaleTimeString();
    status.textContent = note ? note + "; " + now : now;
  } catch (e) { status.textContent = "cannot reach the daemon: " + e; }
}
refresh();
setInterval(() => refresh(), 5000);
</script></body></html>
"""
