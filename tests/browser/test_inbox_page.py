#!/usr/bin/python3
"""The example inbox page (examples/inbox/) in a real browser.

A whole in-app pipeline runs against the Kafka and PostgreSQL of
dev/services, as an operator starts it (cdp.Stack): herald-dispatcher,
herald-worker --channel inapp, herald-realtime and herald-gateway (with
CORS for the page's origin).  The page is served from a static HTTP
server on another port, so every call it makes is cross-origin, and
opened in headless Chromium, driven over the DevTools protocol
(cdp.Cdp).  The test publishes events through the gateway and asserts
what a user sees: the message appears in the page, the unread badge counts it,
the page's "Mark read" button takes it back to 0, and a title made of
markup shows as text.

Environment: as tests/browser/cdp.py says (dev/services, HERALD_BROWSER_OUT).
"""

import os
import secrets
import sys
import time
import urllib.parse

from cdp import Failure, log, main, start_chromium, wait_until

TOKEN_SECRET = "browser-test-user-token-secret-of-32-bytes"
EVENT_S = 20  # from a publish to the message in the page


def start_realtime(stack, name, port=0):
    rt = stack.spawn(name, [os.path.join(stack.bin, "herald-realtime")],
                     stack.env(HERALD_REALTIME_LISTEN="127.0.0.1:%d" % port,
                               HERALD_USER_TOKEN_SECRET=TOKEN_SECRET,
                               HERALD_SHUTDOWN_TIMEOUT="5s"))
    stack.realtime_port = stack.from_log(name, rt, r"listening on port (\d+)")
    stack.ready(name, rt, stack.from_log(name, rt, r"metrics on port (\d+)"))


def up(stack):
    stack.up()
    origin = "http://127.0.0.1:%d" % stack.start_static(
        os.path.join(stack.src, "examples", "inbox"))
    stack.start_dispatcher()
    stack.start_worker("inapp")
    start_realtime(stack, "realtime")
    stack.start_gateway(HERALD_USER_TOKEN_SECRET=TOKEN_SECRET,
                        HERALD_GATEWAY_CORS_ORIGINS=origin)
    return origin


PAGE_STATE = """(() => {
  const s = document.getElementById("status"), u = document.getElementById("unread");
  return {
    state: s ? s.dataset.state : null, status: s ? s.textContent : null,
    unread: u ? u.textContent : null,
    images: document.querySelectorAll("#messages img").length,
    xss: typeof window.heraldXss !== "undefined",
    messages: [...document.querySelectorAll("#messages [data-message-id]")].map(li => ({
      id: li.dataset.messageId, read: li.dataset.read,
      title: li.querySelector(".title").textContent,
      body: li.querySelector(".body").textContent,
      button: !!li.querySelector("button.mark-read")})),
  };
})()"""


def run(stack):
    origin = up(stack)
    user = "browser-" + secrets.token_hex(4)
    stack.api("PUT", "/v1/users/" + user, {"name": "Browser User", "timezone": "UTC"})
    stack.api("PUT", "/v1/templates/browser.note/inapp",
              {"subject": "{{data.title}}", "body": "{{data.body}}"})
    token = stack.api("POST", "/v1/users/%s/tokens" % user, {"ttl_seconds": 900}, want=201)["token"]

    cdp = start_chromium(stack)
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(domain + ".enable")
        frag = urllib.parse.urlencode({
            "gateway": stack.gateway,
            "realtime": "ws://127.0.0.1:%d" % stack.realtime_port,
            "user": user, "token": token})
        url = "%s/index.html#%s" % (origin, frag)
        cdp.call("Page.navigate", {"url": url})
        shots = stack.out

        def check(what, cond):
            return cdp.until(what, PAGE_STATE, cond, EVENT_S, os.path.join(shots, "failed.png"))

        check("the page to connect with unread 0",
              lambda s: s["state"] == "connected" and s["unread"] == "0")
        cdp.screenshot(os.path.join(shots, "1-connected.png"))

        # A message arrives: in the list, counted on the badge.
        title = "Your order shipped " + secrets.token_hex(3)
        stack.api("POST", "/v1/events", {"type": "browser.note", "user_id": user,
                                         "data": {"title": title, "body": "It left the depot."}},
                  want=202)
        s = check("the message in the page and unread 1",
                  lambda s: any(m["title"] == title for m in s["messages"]) and s["unread"] == "1")
        msg = next(m for m in s["messages"] if m["title"] == title)
        assert msg["body"] == "It left the depot." and msg["read"] == "false" and msg["button"], msg
        cdp.screenshot(os.path.join(shots, "2-message.png"))

        # Marked read from the page: the badge drops and the inbox agrees.
        clicked = cdp.evaluate(
            "(() => { const b = document.querySelector("
            "'[data-message-id=\"%s\"] button.mark-read'); if (b) b.click(); return !!b; })()"
            % msg["id"])
        if not clicked:
            raise Failure("no mark-read button for " + msg["id"])
        check("the badge back to 0 and the message read",
              lambda s: s["unread"] == "0" and
              any(m["id"] == msg["id"] and m["read"] == "true" for m in s["messages"]))
        inbox = stack.api("GET", "/v1/users/%s/inbox" % user)
        assert inbox["unread_count"] == 0, inbox
        assert [m["read_at"] is not None for m in inbox["messages"]] == [True], inbox
        cdp.screenshot(os.path.join(shots, "3-read.png"))

        # Markup in a title is text: no element made of it, no handler run.
        xss = '<img src=x onerror="window.heraldXss=1"><b>bold</b>'
        stack.api("POST", "/v1/events", {"type": "browser.note", "user_id": user,
                                         "data": {"title": xss, "body": "<script>1</script>"}},
                  want=202)
        s = check("the markup title as text and unread 1",
                  lambda s: any(m["title"] == xss for m in s["messages"]) and s["unread"] == "1")
        m = next(m for m in s["messages"] if m["title"] == xss)
        assert m["body"] == "<script>1</script>", m
        assert s["images"] == 0, "an <img> was made from a title: %r" % s
        time.sleep(0.5)  # an onerror handler would have run by now
        assert not cdp.evaluate(PAGE_STATE)["xss"], "a title's markup ran in the page"
        assert cdp.evaluate("document.querySelectorAll('#messages b, #messages script').length") == 0
        cdp.screenshot(os.path.join(shots, "4-markup-as-text.png"))

        # herald-realtime restarts (close 1012) and misses what happens
        # meanwhile: a new instance reads inbox.updates from its end.  The
        # page reconnects with the last seq it saw and is caught up.
        seq = stack.api("GET", "/v1/users/%s/inbox/counts" % user)["seq"]
        opened = len(cdp.sockets)
        stack.stop_one("realtime")
        check("the page to notice the close", lambda s: s["state"] != "connected")
        late = "Sent while you were away " + secrets.token_hex(3)
        stack.api("POST", "/v1/events", {"type": "browser.note", "user_id": user,
                                         "data": {"title": late, "body": "Caught up."}},
                  want=202)
        wait_until("the message stored while herald-realtime is down",
                   lambda: any(m["title"] == late for m in
                               stack.api("GET", "/v1/users/%s/inbox" % user)["messages"]),
                   EVENT_S)
        start_realtime(stack, "realtime-2", stack.realtime_port)
        check("the page reconnected, with the message and unread 2",
              lambda s: s["state"] == "connected" and s["unread"] == "2" and
              any(m["title"] == late for m in s["messages"]))
        again = [u for u in cdp.sockets[opened:] if "last_event_id=" in u]
        if not again or not again[-1].endswith("&last_event_id=%d" % seq):
            raise Failure("the page reconnected without last_event_id=%d: %r"
                          % (seq, cdp.sockets[opened:]))
        cdp.screenshot(os.path.join(shots, "5-caught-up.png"))
    except BaseException:
        for note in cdp.notes[-40:]:
            log("page: " + note)
        raise
    finally:
        cdp.close()


if __name__ == "__main__":
    sys.exit(main(run))
