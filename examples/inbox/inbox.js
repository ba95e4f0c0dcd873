// A minimal Herald inbox page (docs/inapp-client.md): live counts over
// herald-realtime's WebSocket, the messages from the gateway's inbox API.
//
// Configuration comes from the URL fragment (or the query string):
//   index.html#gateway=http://127.0.0.1:8080&realtime=ws://127.0.0.1:8090&user=u1&token=v1...
// The fragment is never sent to the server that serves this page, so the
// token stays out of its access log.
"use strict";

(function () {
  const params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
  const cfg = {
    gateway: (params.get("gateway") || "").replace(/\/+$/, ""),
    realtime: (params.get("realtime") || "").replace(/\/+$/, ""),
    user: params.get("user") || "",
    token: params.get("token") || "",
  };

  const $unread = document.getElementById("unread");
  const $status = document.getElementById("status");
  const $list = document.getElementById("messages");
  const $empty = document.getElementById("empty");

  let lastSeq = 0;       // the highest seq seen: last_event_id on reconnect
  let countsSeq = -1;    // the seq of the counts on the badge
  let attempt = 0;       // failed connections in a row, for the backoff
  let loading = null;    // the list load under way
  let loadAgain = false; // a change arrived while it ran

  function setStatus(state, text) {
    $status.dataset.state = state;
    $status.textContent = text;
  }

  // The badge shows the counts of the newest change: events and mark
  // answers both carry its seq, and may arrive in either order.
  function setCounts(seq, unread) {
    if (typeof seq !== "number" || typeof unread !== "number" || seq < countsSeq) return;
    countsSeq = seq;
    $unread.textContent = String(unread);
    $unread.dataset.count = String(unread);
  }

  function userPath(tail) {
    return cfg.gateway + "/v1/users/" + encodeURIComponent(cfg.user) + tail;
  }

  // A call to the inbox API with the user token; throws with the gateway's
  // error code (or the HTTP status) on a refusal.
  async function api(method, tail, body) {
    const headers = { Authorization: "Bearer " + cfg.token };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(userPath(tail), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const doc = await res.json().catch(() => null);
    if (!res.ok) {
      const err = new Error((doc && doc.error && doc.error.message) || "HTTP " + res.status);
      err.status = res.status;
      throw err;
    }
    return doc;
  }

  // One message as an element.  Title and body go in as text, never as
  // HTML: they come from templates filled with event data.
  function messageElement(m) {
    const li = document.createElement("li");
    li.dataset.messageId = m.id;
    li.dataset.read = m.read_at ? "true" : "false";

    const title = document.createElement("span");
    title.className = "title";
    title.textContent = m.title || "(no title)";
    const body = document.createElement("p");
    body.className = "body";
    body.textContent = m.body;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = new Date(m.created_at).toLocaleString();

    li.append(title, body, meta);
    if (!m.read_at) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "mark-read";
      button.textContent = "Mark read";
      button.addEventListener("click", () => markRead(m.id, button));
      li.append(" ", button);
    }
    return li;
  }

  async function markRead(id, button) {
    button.disabled = true;
    try {
      const res = await api("POST", "/inbox/mark", { action: "read", ids: [id] });
      setCounts(res.seq, res.unread_count);
      const li = button.closest("li");
      li.dataset.read = "true";
      button.remove();
    } catch (e) {
      button.disabled = false;
      setStatus($status.dataset.state, "mark failed: " + e.message);
    }
  }

  // Loads the newest page; changes that arrive meanwhile load it once more
  // afterwards, so a burst of events costs two requests, not one each.
  function reload() {
    if (loading) {
      loadAgain = true;
      return loading;
    }
    loading = (async () => {
      do {
        loadAgain = false;
        try {
          const page = await api("GET", "/inbox?page_size=50");
          $list.replaceChildren(...page.messages.map(messageElement));
          $empty.hidden = page.messages.length > 0;
        } catch (e) {
          setStatus($status.dataset.state, "cannot load the inbox: " + e.message);
        }
      } while (loadAgain);
      loading = null;
    })();
    return loading;
  }

  function onEvent(ev) {
    if (typeof ev.seq === "number" && ev.seq > lastSeq) lastSeq = ev.seq;
    setCounts(ev.seq, ev.unread_count);
    // counts: the first event of every connection (the list may be stale
    // after a gap); message, state: a change; reset: too many changes to
    // list, start over.
    if (ev.type === "counts" || ev.type === "message" || ev.type === "state" ||
        ev.type === "reset") {
      reload();
    }
  }

  // Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to 30 s, each
  // between half and all of that, so clients dropped together (a restart,
  // close code 1012) do not come back together.
  function backoffMs() {
    const ceiling = Math.min(30000, 500 * 2 ** Math.min(attempt, 6));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  function connect() {
    let url = cfg.realtime + "/v1/users/" + encodeURIComponent(cfg.user) + "/live?token=" +
      encodeURIComponent(cfg.token);
    if (lastSeq > 0) url += "&last_event_id=" + lastSeq;
    setStatus("connecting", attempt === 0 ? "connecting" : "reconnecting");

    const ws = new WebSocket(url);
    let live = false;
    ws.addEventListener("message", (msg) => {
      let ev;
      try {
        ev = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      if (!live) {
        live = true;
        attempt = 0;
        setStatus("connected", "connected");
      }
      onEvent(ev);
    });
    ws.addEventListener("close", async (close) => {
      // A refusal before the upgrade (401, 403, 429, 503) reaches a page as
      // a bare 1006: ask the gateway whether the token is still good.
      if (!live) {
        try {
          await api("GET", "/inbox/counts");
        } catch (e) {
          if (e.status === 401 || e.status === 403) {
            // A real page mints a new token on its backend here.
            setStatus("unauthorized", "the token was refused: " + e.message);
            return;
          }
        }
      }
      attempt++;
      // 1012: the server restarts; 1013: this client fell behind; both
      // mean reconnect (with last_event_id, to catch up), as any close does.
      const delay = close.code === 1012 ? Math.min(backoffMs(), 1000) : backoffMs();
      setStatus("waiting", "disconnected (" + close.code + "); retrying in " +
        Math.round(delay / 100) / 10 + " s");
      setTimeout(connect, delay);
    });
  }

  if (!cfg.gateway || !cfg.realtime || !cfg.user || !cfg.token) {
    setStatus("error", "missing gateway, realtime, user or token in the URL fragment");
    return;
  }
  connect();
})();
