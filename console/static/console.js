// What every console page shares: the session and its CSRF token, calls to
// the /v1 APIs, errors, the navigation bar, DOM building and formatting.
//
// Data reaches the DOM only as text (el() and textContent), never as
// markup: event data and dead-letter payloads are whatever a client sent.

const LOGIN = "/console/login";

let csrf = null; // the session's CSRF token, kept in memory only

export class ApiError extends Error {
  constructor(status, doc) {
    const e = (doc && doc.error) || {};
    super(e.message || "HTTP " + status);
    this.status = status;
    this.code = e.code || "http_" + status;
    this.field = e.field || null;
  }
}

// Sends the browser to the login page, which comes back here afterwards.
export function toLogin() {
  const next = location.pathname + location.search;
  location.replace(LOGIN + "?next=" + encodeURIComponent(next));
}

// One call to a /v1 API with the session cookie; the CSRF token goes with
// every request that changes something.  Resolves to the parsed body (null
// for 204); a 401 ends the page's session, anything else not 2xx throws.
export async function api(method, path, body, { redirect = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrf) headers["X-CSRF-Token"] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const doc = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.status === 401 && redirect) {
    toLogin();
    throw new ApiError(401, doc);
  }
  if (!res.ok) throw new ApiError(res.status, doc);
  return doc;
}

// The session behind the cookie (and its CSRF token, into memory), or a
// redirect to the login page.
export async function session() {
  const s = await api("GET", "/v1/console/session");
  csrf = s.csrf_token;
  return s;
}

// Keeps the token a fresh login answered with.
export function setCsrf(token) {
  csrf = token;
}

// Builds an element: attrs are properties or attributes ("class", "data-*",
// "on*" handlers), children are nodes or strings (as text).
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else if (k in node && !k.startsWith("data-") && !k.startsWith("aria-")) node[k] = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Replaces a node's children.
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

// ------------------------------------------------------------ formatting

const nf = new Intl.NumberFormat("en-US");

export function num(n) {
  if (n === null || n === undefined || n === "") return "–";
  if (typeof n !== "number") return String(n);
  if (!Number.isInteger(n)) return n.toFixed(n < 10 ? 2 : 1);
  return nf.format(n);
}

function pad(n, w = 2) {
  return String(n).padStart(w, "0");
}

// RFC 3339 or epoch ms as "2026-12-07 15:44:37" (UTC, as the inputs are).
export function time(t) {
  if (t === null || t === undefined || t === "") return "–";
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return (d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
          " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()));
}

export function clock(t) {
  const d = new Date(t);
  return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
}

// A datetime-local input's value read as UTC, as RFC 3339; "" stays "".
export function inputTime(value) {
  if (!value) return "";
  const d = new Date(value + (value.length === 16 ? ":00Z" : "Z"));
  if (Number.isNaN(d.getTime())) throw new Error("not a time: " + value);
  return d.toISOString();
}

// RFC 3339 back into a datetime-local value (UTC).
export function toInput(rfc) {
  if (!rfc) return "";
  const d = new Date(rfc);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString().slice(0, 19);
}

// A value of unknown shape as one line of text.
export function text(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// A number cell: right-aligned by the stylesheet.
export function numCell(n, attrs) {
  return el("td", Object.assign({ class: "num", text: num(n) }, attrs || {}));
}

export function table(headings, rows, attrs) {
  return el("table", attrs || {},
            el("thead", {}, el("tr", {}, headings.map((h) =>
              el("th", typeof h === "string" ? { text: h } : h)))),
            el("tbody", {}, rows));
}

// ------------------------------------------------------------ page frame

// Shows an error (or clears it with null) in the page's #error banner.
export function showError(err) {
  const box = $("error");
  if (!box) return;
  if (!err) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const parts = [err.message || String(err)];
  if (err.code) parts.push("(" + err.code + (err.field ? ", field " + err.field : "") + ")");
  fill(box, parts.join(" "));
  box.hidden = false;
}

const PAGES = [
  ["overview", "/console/", "Overview"],
  ["dlq", "/console/dlq", "Dead letters"],
  ["event", "/console/event", "Events"],
  ["replay", "/console/replay", "Replay"],
];

function nav(active, who) {
  const out = el("button", { type: "button", class: "link", id: "logout", text: "Sign out",
    onclick: async () => {
      try {
        await api("DELETE", "/v1/console/session", undefined, { redirect: false });
      } catch (e) {
        if (e.status !== 401) return showError(e);
      }
      csrf = null;
      location.replace(LOGIN);
    } });
  return el("nav", {},
            el("span", { class: "brand", text: "Herald" }),
            PAGES.map(([id, href, label]) =>
              el("a", { href, text: label, class: id === active ? "active" : null,
                        "aria-current": id === active ? "page" : null })),
            el("span", { class: "who", text: who ? "key " + who : "" }),
            out);
}

// Starts a page that needs the session: fetches it (or goes to the login
// page), draws the navigation, then runs main(session).
export async function start(active, main) {
  let s;
  try {
    s = await session();
  } catch (e) {
    if (e.status !== 401) showError(e);
    return;
  }
  document.body.prepend(nav(active, s.key_id));
  try {
    await main(s);
  } catch (e) {
    showError(e);
  }
}

// The page's query string as an object, and back.
export function query() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

export function setQuery(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
}

// A query string for an API path from the non-empty values.
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? "?" + s : "";
}

// Repeats fn every interval_ms, never two at once, until the page goes.
export function every(intervalMs, fn) {
  let timer = null;
  async function tick() {
    try {
      await fn();
    } catch (e) {
      showError(e);
    }
    timer = setTimeout(tick, intervalMs);
  }
  tick();
  return () => clearTimeout(timer);
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
