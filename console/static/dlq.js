// Dead letters: filter, page through (the server's "next" cursor), open one
// record, and requeue one, a selection or everything the filter matches —
// always after the server said (dry_run) how many records that touches.
import { $, api, el, fill, inputTime, num, numCell, qs, query, setQuery, showError, start, table, text,
         time, toInput } from "./console.js";

const FILTERS = ["from", "to", "channel", "reason", "stage"];
const POSITION = /^\d+:\d+$/;

let filter = {};      // the applied filter, as the API takes it
let limit = 50;
let cursors = [];     // the cursor of each page shown so far ("" for the first)
let next = null;      // the server's cursor after this page
let records = [];     // this page
const selected = new Set();

function readForm() {
  const f = $("filter").elements;
  const out = {};
  for (const k of FILTERS) {
    const v = f[k].value.trim();
    if (v) out[k] = k === "from" || k === "to" ? inputTime(v) : v;
  }
  const l = parseInt(f.limit.value, 10);
  limit = l >= 1 && l <= 500 ? l : 50;
  return out;
}

function writeForm(q) {
  const f = $("filter").elements;
  for (const k of FILTERS) if (q[k]) f[k].value = k === "from" || k === "to" ? toInput(q[k]) : q[k];
  if (q.limit) f.limit.value = q.limit;
}

function updateButtons() {
  $("requeue-selected").disabled = selected.size === 0;
  $("requeue-selected").textContent = "Requeue selected" + (selected.size ? " (" + selected.size + ")" : "");
  $("page-next").disabled = !next;
  $("page-first").disabled = cursors.length <= 1;
}

function row(r) {
  const box = el("input", { type: "checkbox", checked: selected.has(r.id), "aria-label": "select " + r.id,
    onchange: () => {
      if (box.checked) selected.add(r.id);
      else selected.delete(r.id);
      tr.classList.toggle("selected", box.checked);
      updateButtons();
    } });
  const tr = el("tr", { "data-id": r.id, "data-event-id": r.event_id || null,
                        class: selected.has(r.id) ? "selected" : null },
                el("td", {}, box),
                el("td", {}, el("button", { type: "button", class: "link mono open", text: r.id,
                                            onclick: () => openRecord(r.id) })),
                el("td", { class: "time", text: time(r.timestamp) }),
                el("td", { class: "stage", text: r.stage }),
                el("td", { class: "reason", text: r.reason }),
                el("td", { class: "channel", text: r.channel }),
                el("td", { class: "user", text: r.user_id }),
                el("td", { class: "mono" }, r.event_id
                  ? el("a", { href: "/console/event?event_id=" + encodeURIComponent(r.event_id), text: r.event_id })
                  : ""),
                numCell(r.attempts),
                el("td", { class: "clip error-text", title: text(r.error), text: text(r.error) }));
  return tr;
}

async function loadPage(cursor) {
  const doc = await api("GET", "/v1/dlq" + qs(Object.assign({}, filter, { limit, after: cursor || "" })));
  records = doc.records || [];
  next = doc.next || null;
  const all = el("input", { type: "checkbox", "aria-label": "select this page",
    onchange: () => {
      for (const r of records) if (all.checked) selected.add(r.id); else selected.delete(r.id);
      renderRows();
    } });
  const rows = records.map(row);
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 10, class: "muted", text: "no dead letters match" })));
  fill($("records"), table([{}, "id", "dead-lettered (UTC)", "stage", "reason", "channel", "user", "event",
                            { class: "num", text: "attempts" }, "error"], rows, { id: "records-table" }));
  $("records").querySelector("thead th").append(all);
  updateButtons();
}

function renderRows() {
  const body = $("records").querySelector("tbody");
  if (body) fill(body, records.map(row));
  updateButtons();
}

async function loadStats() {
  try {
    const s = await api("GET", "/v1/dlq/stats" + qs(filter));
    const parts = (s.rows || []).slice(0, 6).map((r) => r.stage + " / " + r.reason + ": " + num(r.count));
    fill($("stats"), num(s.total) + " matching" + (parts.length ? " — " + parts.join(", ") : ""));
    $("stats").dataset.total = String(s.total);
  } catch (e) {
    fill($("stats"), "");
    if (e.status !== 401) showError(e);
  }
}

async function apply() {
  showError(null);
  filter = readForm();
  setQuery(Object.assign({}, filter, { limit: limit === 50 ? "" : limit }));
  selected.clear();
  cursors = [""];
  await Promise.all([loadPage(""), loadStats()]);
}

// ------------------------------------------------------------ one record

function kv(pairs) {
  return el("table", { class: "kv" }, el("tbody", {}, pairs.map(([k, v]) =>
    el("tr", { "data-field": k }, el("th", { text: k }), el("td", { class: "mono", text: text(v) })))));
}

function payloadText(rec) {
  const p = rec.payload;
  if (p && typeof p === "object") return JSON.stringify(p, null, 2);
  if (typeof p === "string") return p;
  if (rec.payload_base64) return rec.payload_base64;
  return p === null || p === undefined ? "" : String(p);
}

async function openRecord(id) {
  if (!POSITION.test(id)) return;
  showError(null);
  const rec = await api("GET", "/v1/dlq/" + id).catch((e) => { showError(e); return null; });
  if (!rec) return;
  const box = $("record");
  const orig = rec.original || {};
  const scalars = Object.entries(rec).filter(([k, v]) =>
    !["headers", "payload", "original", "payload_base64"].includes(k) && (v === null || typeof v !== "object"));
  const headers = Object.entries(rec.headers || {}).map(([k, v]) =>
    el("tr", {}, el("td", { class: "mono", text: k }), el("td", { class: "mono", text: text(v) })));
  const encoding = rec.payload_encoding || (rec.payload_base64 ? "base64" : (rec.payload && typeof rec.payload === "object") ? "json" : "text");
  fill(box,
       el("div", { class: "bar" },
          el("h2", { text: "Record " + (rec.id || id) }),
          el("button", { type: "button", id: "requeue-one", text: "Requeue this record",
                         onclick: () => requeue({ ids: [rec.id || id] }, "record " + (rec.id || id)) }),
          el("button", { type: "button", class: "link", text: "close", onclick: () => { box.hidden = true; } })),
       kv(scalars),
       el("h2", { text: "Original position" }),
       kv([["topic", orig.topic], ["partition", orig.partition], ["offset", orig.offset], ["timestamp", orig.timestamp]]),
       el("h2", { text: "Headers" }),
       table(["name", "value"], headers.length ? headers : [el("tr", {}, el("td", { colspan: 2, text: "none" }))]),
       el("h2", { text: "Payload (" + encoding + ")" }),
       el("pre", { id: "record-payload", text: payloadText(rec) }));
  box.dataset.id = rec.id || id;
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

// ------------------------------------------------------------ requeue

let pending = null; // the request body the dialog would send

async function requeue(body, what) {
  const dlg = $("requeue-dialog");
  pending = null;
  fill($("requeue-what"), "Requeue " + what + ".");
  fill($("requeue-count"), "Counting…");
  fill($("requeue-results"));
  $("requeue-count").dataset.matched = "";
  $("requeue-confirm").disabled = true;
  $("requeue-confirm").hidden = false;
  $("requeue-close").textContent = "Cancel";
  if (!dlg.open) dlg.showModal();
  try {
    const dry = await api("POST", "/v1/dlq/requeue", Object.assign({}, body, { dry_run: true }));
    $("requeue-count").dataset.matched = String(dry.matched);
    fill($("requeue-count"), num(dry.matched) + (dry.matched === 1 ? " record" : " records") + " will be requeued.");
    pending = body;
    $("requeue-confirm").disabled = dry.matched === 0;
  } catch (e) {
    fill($("requeue-count"), "The server refused: " + e.message);
  }
}

async function confirmRequeue() {
  if (!pending) return;
  const body = pending;
  pending = null;
  $("requeue-confirm").disabled = true;
  fill($("requeue-count"), "Requeueing…");
  try {
    const r = await api("POST", "/v1/dlq/requeue", Object.assign({}, body, { dry_run: false }));
    fill($("requeue-count"), ["matched", "requeued", "already_requeued", "skipped", "failed"]
      .map((k) => k.replace("_", " ") + " " + num(r[k] || 0)).join(" · "));
    $("requeue-count").dataset.requeued = String(r.requeued || 0);
    const rows = (r.results || []).map((x) =>
      el("tr", { "data-id": x.id, "data-outcome": x.outcome },
         el("td", { class: "mono", text: x.id }), el("td", { class: "outcome", "data-outcome": x.outcome, text: x.outcome }),
         el("td", { class: "mono", text: text(x.topic) }), el("td", { text: text(x.error) })));
    fill($("requeue-results"), table(["id", "outcome", "to topic", "error"], rows, { id: "requeue-results-table" }),
         r.results_truncated ? el("p", { class: "muted", text: "Only the first " + rows.length + " outcomes are shown." }) : null);
    $("requeue-confirm").hidden = true;
    $("requeue-close").textContent = "Close";
    selected.clear();
    await Promise.all([loadPage(cursors[cursors.length - 1]), loadStats()]);
  } catch (e) {
    fill($("requeue-count"), "The requeue failed: " + e.message);
  }
}

start("dlq", async () => {
  const q = query();
  writeForm(q);
  $("filter").addEventListener("submit", (ev) => { ev.preventDefault(); apply().catch(showError); });
  $("page-next").addEventListener("click", () => {
    if (!next) return;
    cursors.push(next);
    loadPage(next).catch(showError);
  });
  $("page-first").addEventListener("click", () => { cursors = [""]; loadPage("").catch(showError); });
  $("requeue-selected").addEventListener("click", () =>
    requeue({ ids: [...selected] }, selected.size + " selected " + (selected.size === 1 ? "record" : "records")));
  $("requeue-all").addEventListener("click", () =>
    requeue({ filter: Object.assign({}, filter) }, "every record the filter matches" +
      (Object.keys(filter).length ? " (" + Object.entries(filter).map(([k, v]) => k + "=" + v).join(", ") + ")" : " (no filter: all)")));
  $("requeue-confirm").addEventListener("click", () => confirmRequeue());
  $("requeue-close").addEventListener("click", () => { pending = null; $("requeue-dialog").close(); });
  await apply();
  if (q.id && POSITION.test(q.id)) await openRecord(q.id);
});
