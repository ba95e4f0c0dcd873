// Events: find an event by its id, its user or an idempotency key, then
// read its timeline — published, dispatched, every attempt (the failed ones
// that were retried too), outcomes, receipts, digests, follow-ups, and why
// anything was skipped.
import { $, api, el, fill, numCell, qs, query, setQuery, showError, start, table, text, time } from "./console.js";

const BY = ["event_id", "user_id", "idempotency_key"];
let search = null; // {by, value}
let next = null;

function summary(s) {
  if (!s || typeof s !== "object") return text(s);
  return Object.entries(s).map(([k, v]) => k + " " + text(v)).join(", ");
}

function eventRow(e) {
  return el("tr", { "data-event-id": e.event_id },
            el("td", { class: "mono" }, el("button", { type: "button", class: "link open", text: e.event_id,
                                                       onclick: () => openTimeline(e.event_id) })),
            el("td", { text: e.type }),
            el("td", { text: e.user_id }),
            el("td", { text: time(e.created_at) }),
            numCell(e.deliveries),
            el("td", { class: "summary", text: summary(e.status_summary) }));
}

async function runSearch(more) {
  showError(null);
  const doc = await api("GET", "/v1/events" + qs({ [search.by]: search.value, limit: 20, after: more ? next : "" }));
  const events = doc.events || [];
  next = doc.next || null;
  const headings = ["event", "type", "user", "created (UTC)", { class: "num", text: "deliveries" }, "status"];
  if (!more) {
    const rows = events.map(eventRow);
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "no events found" })));
    fill($("events"),
         el("p", { class: "muted", id: "events-caption",
                   text: "Events with " + search.by.replace("_", " ") + " " + search.value }),
         table(headings, rows, { id: "events-table" }));
  } else {
    $("events").querySelector("tbody").append(...events.map(eventRow));
  }
  $("events-next").hidden = !next;
  if (!more && events.length === 1) await openTimeline(events[0].event_id);
}

function detail(d) {
  if (d === null || d === undefined) return "";
  if (typeof d === "object") return Object.entries(d).map(([k, v]) => k + "=" + text(v)).join(" ");
  return String(d);
}

// The members of an entry that have no column of their own.
const COLUMNS = new Set(["at", "kind", "channel", "attempt", "status", "reason", "detail"]);
function extras(e) {
  return Object.entries(e).filter(([k]) => !COLUMNS.has(k))
    .map(([k, v]) => k + "=" + (k === "not_before" ? time(v) : text(v))).join(" ");
}

async function openTimeline(id) {
  showError(null);
  const doc = await api("GET", "/v1/events/" + encodeURIComponent(id) + "/timeline");
  const box = $("timeline");
  const head = Object.entries(doc).filter(([k, v]) => k !== "entries" && (v === null || typeof v !== "object"));
  const data = doc.data !== undefined ? JSON.stringify(doc.data, null, 2) : null;
  const rows = (doc.entries || []).map((e) =>
    el("tr", { "data-kind": e.kind, "data-status": e.status || "" },
       el("td", { class: "time", text: time(e.at) }),
       el("td", { class: "kind", text: e.kind }),
       el("td", { class: "channel", text: text(e.channel) }),
       numCell(e.attempt, { class: "num attempt" }),
       el("td", { class: "status", text: text(e.status) }),
       el("td", { class: "reason", text: text(e.reason) }),
       el("td", { class: "detail", text: [detail(e.detail), extras(e)].filter(Boolean).join(" · ") })));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "nothing recorded" })));
  const skipped = (doc.entries || []).filter((e) => e.kind === "skipped").length;
  fill(box,
       el("h2", { text: "Timeline of " + (doc.event_id || id) }),
       el("table", { class: "kv" }, el("tbody", {}, head.map(([k, v]) =>
         el("tr", { "data-field": k }, el("th", { text: k }), el("td", { class: "mono", text: text(v) }))))),
       skipped ? el("p", { class: "muted", text: skipped + " skipped (see the reason column)" }) : null,
       table(["at (UTC)", "kind", "channel", { class: "num", text: "attempt" }, "status", "reason",
              "detail"], rows, { id: "timeline-table" }),
       data ? [el("h2", { text: "Data" }), el("pre", { id: "event-data", text: data })] : null);
  box.dataset.eventId = doc.event_id || id;
  box.hidden = false;
  setQuery(Object.assign({ event_id: doc.event_id || id }, search && search.by !== "event_id" ? { [search.by]: search.value } : {}));
}

start("event", async () => {
  const form = $("search");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    search = { by: form.elements.by.value, value: form.elements.value.value.trim() };
    if (!search.value) return;
    setQuery({ [search.by]: search.value });
    $("timeline").hidden = true;
    runSearch(false).catch(showError);
  });
  $("events-next").addEventListener("click", () => runSearch(true).catch(showError));
  const q = query();
  const by = BY.find((k) => q[k] && k !== "event_id") || (q.event_id ? "event_id" : null);
  if (by) {
    form.elements.by.value = by;
    form.elements.value.value = q[by];
    search = { by, value: q[by] };
    await runSearch(false);
    if (q.event_id && by !== "event_id") await openTimeline(q.event_id);
  }
});
