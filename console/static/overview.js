// Overview: the numbers of GET /v1/ops/status (what `heraldctl status`
// prints) and the last hour of GET /v1/ops/history as charts, refreshed
// every few seconds.
import { $, api, el, every, fill, num, numCell, showError, start, table, text, time } from "./console.js";
import { lineChart } from "./chart.js";

const REFRESH_MS = 3000;
const expanded = new Set(); // groups whose partitions are shown

function sum(obj) {
  return Object.values(obj || {}).reduce((a, v) => a + (typeof v === "number" ? v : 0), 0);
}

function setTile(id, value, alert) {
  const n = $(id);
  n.textContent = typeof value === "number" ? num(value) : String(value);
  n.dataset.value = typeof value === "number" ? String(value) : "";
  n.dataset.alert = alert ? "true" : "false";
}

function lagTable(status) {
  const byGroup = new Map();
  for (const row of status.lag || []) {
    if (!byGroup.has(row.group)) byGroup.set(row.group, []);
    byGroup.get(row.group).push(row);
  }
  for (const g of Object.keys(status.group_lag || {})) if (!byGroup.has(g)) byGroup.set(g, []);
  const rows = [];
  for (const [group, parts] of [...byGroup].sort((a, b) => a[0].localeCompare(b[0]))) {
    const total = (status.group_lag || {})[group] ?? parts.reduce((a, r) => a + (r.lag || 0), 0);
    const open = expanded.has(group);
    rows.push(el("tr", { "data-group": group },
                 el("td", {}, el("button", {
                   type: "button", class: "link toggle", text: open ? "▾ " + group : "▸ " + group,
                   title: "partitions", onclick: () => {
                     if (open) expanded.delete(group);
                     else expanded.add(group);
                     fill($("lag"), lagTable(status));
                   } })),
                 el("td", { text: [...new Set(parts.map((r) => r.topic))].join(", ") }),
                 el("td", { class: "num", text: parts.length ? String(parts.length) : "–" }),
                 numCell(total, { class: "num lag", "data-value": String(total) })));
    if (!open) continue;
    for (const r of parts) {
      rows.push(el("tr", { class: "sub", "data-group-part": group + "/" + r.topic + "/" + r.partition },
                   el("td", { text: r.topic + " [" + r.partition + "]" }),
                   el("td", { class: "muted", text: "committed " + num(r.committed) + " / end " + num(r.end) }),
                   el("td", {}),
                   numCell(r.lag, { "data-value": String(r.lag) })));
    }
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no consumer groups" })));
  return table(["group", "topics", { class: "num", text: "partitions" }, { class: "num", text: "lag" }], rows,
               { id: "lag-table" });
}

function daemonsTable(status) {
  const rows = (status.daemons || []).map((d) =>
    el("tr", { "data-daemon": d.name, "data-healthy": String(!!d.healthy) },
       el("td", { text: d.name }), el("td", { class: "mono", text: d.addr }),
       el("td", { class: "health", text: d.status || (d.healthy ? "up" : "down") })));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 3, class: "muted", text: "none configured" })));
  return table(["daemon", "address", "health"], rows);
}

function retryTable(status) {
  const rows = Object.entries(status.retry_depth || {}).sort().map(([topic, n]) =>
    el("tr", { "data-topic": topic }, el("td", { text: topic }), numCell(n)));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 2, class: "muted", text: "none" })));
  return table(["topic", { class: "num", text: "waiting" }], rows);
}

function ratesTable(samples) {
  const last = samples.length ? samples[samples.length - 1].rates || {} : {};
  const rows = Object.entries(last).sort().map(([k, v]) =>
    el("tr", { "data-rate": k }, el("td", { text: k }), numCell(v)));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 2, class: "muted", text: "no samples yet" })));
  return table(["stage / channel", { class: "num", text: "per second" }], rows);
}

function heldTable(status) {
  const rows = [];
  for (const [name, h] of [["digest windows", status.digest_windows], ["follow-ups", status.followups]]) {
    if (!h) continue;
    if (h.error) rows.push(el("tr", {}, el("td", { text: name }), el("td", { colspan: 3, text: h.error })));
    else rows.push(el("tr", {}, el("td", { text: name }),
                      el("td", { text: Object.entries(h).map(([k, v]) => k + " " + num(v)).join(", ") })));
  }
  return rows.length ? [el("h2", { text: "Held" }), table(["what", "count"], rows)] : [];
}

// One series per key of sample[field] (an object), or one of a number.
function series(samples, field, names) {
  const keys = new Set();
  for (const s of samples) {
    const v = s[field];
    if (v && typeof v === "object") Object.keys(v).forEach((k) => keys.add(k));
  }
  if (!keys.size && names) return [{ name: names, points: samples.map((s) => [s.t, s[field] ?? null]) }];
  return [...keys].sort().map((k) => ({
    name: k, points: samples.map((s) => [s.t, s[field] && typeof s[field][k] === "number" ? s[field][k] : null]) }));
}

async function refresh() {
  // Each half draws what it has: a failing history leaves the numbers.
  const [st, hi] = await Promise.allSettled([
    api("GET", "/v1/ops/status"),
    api("GET", "/v1/ops/history?minutes=60"),
  ]);
  if (st.status === "rejected") throw st.reason;
  const status = st.value;
  const history = hi.status === "fulfilled" ? hi.value : null;
  const samples = (history && history.samples) || [];
  const lagTotal = sum(status.group_lag);
  const retryTotal = sum(status.retry_depth);
  const daemons = status.daemons || [];
  const up = daemons.filter((d) => d.healthy).length;
  setTile("lag-total", lagTotal, false);
  setTile("dlq-size", status.dlq_size ?? 0, (status.dlq_size || 0) > 0);
  setTile("retry-total", retryTotal, false);
  setTile("daemons-up", daemons.length ? up + " / " + daemons.length : "–", up < daemons.length);
  fill($("lag"), lagTable(status));
  fill($("daemons"), daemonsTable(status));
  fill($("retry"), retryTable(status));
  fill($("rates"), ratesTable(samples));
  fill($("held"), heldTable(status));

  lineChart($("chart-lag"), series(samples, "lag"), { title: "lag" });
  const dlq = series(samples, "dlq", "dlq");
  const retry = samples.map((s) => [s.t, s.retry ? sum(s.retry) : null]);
  lineChart($("chart-dlq"), dlq.concat([{ name: "retry (all)", points: retry }]), { title: "dead letters" });
  lineChart($("chart-rates"), series(samples, "rates"), { title: "throughput", unit: "/s" });

  $("updated").textContent = "updated " + time(Date.now()) + " UTC" +
    (history && history.interval_s ? ", sampled every " + text(history.interval_s) + " s" : "");
  if (hi.status === "rejected") throw hi.reason;
  showError(null);
}

start("overview", () => {
  every(REFRESH_MS, refresh);
});
