// Replay: a window (from/to, user, type, redeliver), "Preview" asks the
// server how many events it covers (dry_run), "Start" runs it in the
// gateway, and the run's progress is polled until it is done.
import { $, api, el, fill, inputTime, num, numCell, query, setQuery, showError, sleep, start, table, text,
         time, toInput } from "./console.js";

const POLL_MS = 1000;
const POLL_MAX = 3600; // an hour of polling, then the page stops asking
let previewed = null; // the body the preview counted; Start sends exactly it
let watching = null;  // the run being polled

function body() {
  const f = $("window").elements;
  const b = { from: inputTime(f.from.value) };
  if (f.to.value) b.to = inputTime(f.to.value);
  if (f.user_id.value.trim()) b.user_id = f.user_id.value.trim();
  if (f.type.value.trim()) b.type = f.type.value.trim();
  b.redeliver = f.redeliver.checked;
  return b;
}

function invalidate() {
  previewed = null;
  $("start").disabled = true;
  fill($("preview-result"));
}

async function preview() {
  showError(null);
  invalidate();
  const b = body();
  const r = await api("POST", "/v1/replays", Object.assign({}, b, { dry_run: true }));
  $("preview-result").dataset.events = String(r.events);
  fill($("preview-result"), num(r.events) + (r.events === 1 ? " event" : " events") + " in the window" +
       (b.redeliver ? ", delivered again even where they were sent." : "; nothing already sent goes again."));
  previewed = b;
  $("start").disabled = r.events === 0;
}

async function startRun() {
  if (!previewed) return;
  showError(null);
  $("start").disabled = true;
  const r = await api("POST", "/v1/replays", Object.assign({}, previewed, { dry_run: false }));
  previewed = null;
  fill($("preview-result"), "Started run " + r.replay_id + ".");
  setQuery({ id: r.replay_id });
  await watch(r.replay_id);
}

function drawRun(run) {
  const box = $("run");
  const total = run.matched || 0;
  const bar = el("progress", { max: total || 1, value: run.state === "done" ? total || 1 : Math.min(run.published || 0, total) });
  fill(box,
       el("h2", { text: "Run " + run.replay_id }),
       el("p", {}, el("span", { id: "run-state", class: "big", "data-state": run.state, text: run.state }), " ", bar),
       el("table", { class: "kv" }, el("tbody", {},
          [["matched", run.matched], ["scanned", run.scanned], ["published", run.published]].map(([k, v]) =>
            el("tr", { "data-field": k }, el("th", { text: k }), numCell(v))),
          [["window", time(run.from) + " – " + (run.to ? time(run.to) : "now")],
           ["started", time(run.started_at)], ["finished", time(run.finished_at)], ["error", text(run.error)]]
            .map(([k, v]) => el("tr", { "data-field": k }, el("th", { text: k }), el("td", { text: v }))))));
  box.dataset.state = run.state;
  box.hidden = false;
}

async function watch(id) {
  watching = id;
  for (let i = 0; i < POLL_MAX && watching === id; i++) {
    const run = await api("GET", "/v1/replays/" + encodeURIComponent(id));
    drawRun(run);
    if (run.state !== "running") break;
    await sleep(POLL_MS);
  }
  await loadRuns();
}

async function loadRuns() {
  const doc = await api("GET", "/v1/replays");
  const runs = Array.isArray(doc) ? doc : (doc && (doc.replays || doc.runs)) || [];
  const rows = runs.map((r) => el("tr", { "data-replay-id": r.replay_id, "data-state": r.state },
    el("td", { class: "mono" }, el("button", { type: "button", class: "link", text: r.replay_id,
      onclick: () => { setQuery({ id: r.replay_id }); watch(r.replay_id).catch(showError); } })),
    el("td", { text: r.state }), el("td", { text: time(r.started_at) }),
    el("td", { text: time(r.from) + " – " + (r.to ? time(r.to) : "now") }),
    numCell(r.matched), numCell(r.published), el("td", { class: "clip", text: text(r.error) })));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "no runs yet" })));
  fill($("runs"), table(["run", "state", "started (UTC)", "window (UTC)", { class: "num", text: "matched" },
                         { class: "num", text: "published" }, "error"], rows, { id: "runs-table" }));
}

start("replay", async () => {
  const form = $("window");
  const f = form.elements;
  if (!f.from.value) f.from.value = toInput(new Date(Date.now() - 3600e3).toISOString());
  form.addEventListener("input", invalidate);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); preview().catch(showError); });
  $("start").addEventListener("click", () => startRun().catch(showError));
  const q = query();
  await loadRuns().catch(showError);
  if (q.id) await watch(q.id);
});
