#!/usr/bin/python3
"""The operator console (console/, served by herald-gateway) in a real browser.

An SMS pipeline runs against the Kafka and PostgreSQL of dev/services
(cdp.Stack): herald-test-http-provider as the SMS provider,
herald-dispatcher, herald-worker --channel sms and herald-gateway with
HERALD_CONSOLE_SECRET, sampling every second.  Headless Chromium opens
the console's pages and the test asserts what an operator sees:

- without a session every page sends the browser to the login page and
  the APIs answer 401; the login page takes the admin key and lands on
  the overview;
- a POST the page's session makes without its CSRF token is refused (403
  csrf_failed);
- the overview shows the SMS worker's lag growing while the worker is
  stopped and falling back to 0 once it runs again;
- the event page shows a delivery that failed once and was retried;
- a poison event (the provider refuses it for good) shows in the DLQ page
  with its reason; requeued from the page (after the dialog's count), it
  reaches the provider exactly once;
- markup in event data (in the dead letter's payload) and in the
  event's idempotency key shows as text and never runs (window.__xss
  stays unset);
- a replay previewed and started from the page runs to "done";
- after "Sign out", the pages send the browser to the login page again.

A screenshot of each page goes to HERALD_BROWSER_OUT.  Environment: as
tests/browser/cdp.py says.
"""

import json
import os
import secrets
import sys
import urllib.parse

from cdp import Failure, log, main, request, start_chromium, wait_until

SECRET = "console-browser-test-secret-of-at-least-32-bytes"
SETTLE_S = 60  # from a publish (or a worker's start) to what the page shows
LAG_EVENTS = 8
# No quotes, so the payload's JSON shows it unescaped.
XSS = "<img src=x onerror=window.__xss=1><script>window.__xss=2</script>x-marks"
XSS_KEY = "<img/src=x/onerror=window.__xss=3>key-"  # an Idempotency-Key has no spaces


class Provider:
    """herald-test-http-provider, as the SMS endpoint; scripted over /_control."""

    def __init__(self, stack):
        self.stack = stack
        p = stack.spawn("sms-provider", [os.path.join(stack.bin, "herald-test-http-provider"),
                                         "--listen", "127.0.0.1:0", "--threads", "2"], dict(os.environ))
        self.port = stack.from_log("sms-provider", p, r"listening on 127\.0\.0\.1:(\d+)")
        self.url = "http://127.0.0.1:%d" % self.port

    def control(self, settings):
        status, doc = request("POST", self.url + "/_control", settings)
        if status != 200:
            raise Failure("provider /_control %r: %d %r" % (settings, status, doc))

    def sent_for(self, event_id):
        status, doc = request("GET", self.url + "/_records")
        if status != 200 or not isinstance(doc, list):
            raise Failure("provider /_records: %d %r" % (status, doc))
        return [r for r in doc if r.get("event_id") == event_id]


def up(stack):
    stack.up()
    provider = Provider(stack)
    stack.sms_env = {"HERALD_SMS_PROVIDER": "http", "HERALD_SMS_URL": provider.url + "/sms",
                     "HERALD_SMS_FROM": "+15550000000", "HERALD_SMS_MAX_ATTEMPTS": "3",
                     "HERALD_WORKER_DRAIN_TIMEOUT": "5s"}
    stack.start_dispatcher()
    stack.start_worker("sms", **stack.sms_env)
    stack.start_gateway(HERALD_CONSOLE_SECRET=SECRET, HERALD_CONSOLE_SAMPLE_INTERVAL_S="1",
                        **console_env(stack))
    return provider


def publish(stack, user, data, key=None):
    headers = {"Authorization": "Bearer " + stack.api_key}
    if key:
        headers["Idempotency-Key"] = key
    status, doc = request("POST", stack.gateway + "/v1/events",
                          {"type": "console.note", "user_id": user, "data": data}, headers)
    if status != 202:
        raise Failure("POST /v1/events answered %d: %r" % (status, doc))
    return doc["event_id"]


def wait_delivery(stack, event_id, status):
    """Until the event's SMS delivery has status (GET /v1/events/{id})."""
    def settled():
        code, doc = request("GET", stack.gateway + "/v1/events/" + event_id,
                            headers={"Authorization": "Bearer " + stack.api_key})
        if code != 200:
            return None
        return doc if any(d.get("channel") == "sms" and d.get("status") == status
                          for d in doc.get("deliveries", [])) else None
    return wait_until("event %s delivered with status %s" % (event_id, status), settled, SETTLE_S)


def js(s):
    return json.dumps(s)


def attr(name, value):
    """A JS expression: the CSS selector [name="value"], value escaped."""
    return "'[%s=\"' + CSS.escape(%s) + '\"]'" % (name, js(value))


def console_env(stack):
    """What /v1/ops/status reports: this run's groups and daemons' ops addresses."""
    return {"HERALD_STATUS_GROUP": "%sdispatcher,%sworker.sms" % (stack.prefix, stack.prefix),
            "HERALD_STATUS_DISPATCHER": "127.0.0.1:%d" % stack.ops["dispatcher"],
            "HERALD_STATUS_WORKER_SMS": "127.0.0.1:%d" % stack.ops["worker-sms"],
            "HERALD_STATUS_HEALTH_TIMEOUT": "1s"}


def run(stack):
    provider = up(stack)
    user = "console-" + secrets.token_hex(4)
    stack.api("PUT", "/v1/users/" + user, {"name": "Console User", "timezone": "UTC",
                                            "phone": "+15550001234"})
    stack.api("PUT", "/v1/templates/console.note/sms", {"body": "Note: {{data.note}}"})
    group = stack.prefix + "worker.sms"
    base = stack.gateway
    shots = stack.out

    # Without a session the APIs say 401.
    for path in ("/v1/console/session", "/v1/ops/status", "/v1/dlq"):
        status, doc = request("GET", base + path)
        if status != 401:
            raise Failure("GET %s without a session answered %d: %r" % (path, status, doc))

    cdp = start_chromium(stack, "1280,900")
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(domain + ".enable")

        def go(path):
            cdp.call("Page.navigate", {"url": base + path})

        def until(what, expr, cond=bool, timeout_s=SETTLE_S):
            return cdp.until(what, expr, cond, timeout_s, os.path.join(shots, "failed.png"))

        def no_xss(where):
            if cdp.evaluate("typeof window.__xss") != "undefined":
                raise Failure("markup ran in the %s page" % where)

        # Without a session every page goes to the login page.
        for path in ("/console/", "/console/dlq", "/console/event", "/console/replay"):
            go(path)
            until("%s to send the browser to the login page" % path,
                  "location.pathname === '/console/login' && !!document.getElementById('login-form')")
        cdp.screenshot(os.path.join(shots, "1-login.png"))

        # A wrong key is refused in the page; the admin key signs in.
        cdp.evaluate("document.getElementById('api-key').value = 'hk_wrong';"
                     "document.getElementById('login-form').requestSubmit(); true")
        until("the login page to refuse a wrong key",
              "!document.getElementById('error').hidden && location.pathname === '/console/login'")
        cdp.evaluate("document.getElementById('api-key').value = %s;"
                     "document.getElementById('login-form').requestSubmit(); true" % js(stack.api_key))
        until("the overview after signing in",
              "location.pathname === '/console/' && !!document.getElementById('lag-table')")

        # The session's cookie alone does not make a change: the CSRF token must come too.
        for headers in ("{}", "{'X-CSRF-Token': 'not-the-token'}"):
            refused = cdp.evaluate(
                "fetch('/v1/dlq/requeue', {method: 'POST', headers: Object.assign("
                "{'Content-Type': 'application/json'}, %s), body: JSON.stringify("
                "{ids: ['0:0'], dry_run: true})}).then(async r => [r.status, (await r.json())"
                ".error.code])" % headers)
            if refused != [403, "csrf_failed"]:
                raise Failure("a POST without the CSRF token answered %r" % refused)

        # Lag: grows while the SMS worker is stopped, falls when it runs again.
        lag = ("(() => { const c = document.querySelector('#lag-table tr' + %s + ' td.lag');"
               " return c ? Number(c.dataset.value) : null; })()" % attr("data-group", group))
        until("the overview to show group %s" % group, lag, lambda v: v == 0)
        stack.stop_one("worker-sms")
        for i in range(LAG_EVENTS):
            publish(stack, user, {"note": "lag %d" % i})
        until("the overview's lag of %s to reach %d" % (group, LAG_EVENTS), lag,
              lambda v: v is not None and v >= LAG_EVENTS)
        until("the lag chart to have samples",
              "document.querySelectorAll('#chart-lag svg path.line').length > 0")
        cdp.screenshot(os.path.join(shots, "2-overview-lag.png"))
        stack.start_worker("sms", name="worker-sms-2",
                           HERALD_METRICS_ADDR="127.0.0.1:%d" % stack.ops["worker-sms"],
                           **stack.sms_env)
        until("the overview's lag of %s back to 0" % group, lag, lambda v: v == 0)
        cdp.screenshot(os.path.join(shots, "3-overview.png"))

        # A delivery that failed once and was retried, on the event page.
        provider.control({"fail_status": 503, "fail_count": 1, "match": "/sms"})
        retried = publish(stack, user, {"note": "retried"})
        wait_delivery(stack, retried, "sent")
        go("/console/event?event_id=" + retried)
        attempts = until(
            "the event page's timeline with two attempts",
            "(() => { const rows = [...document.querySelectorAll('#timeline-table tr[data-kind]')];"
            " return rows.map(r => [r.dataset.kind, r.dataset.status,"
            " r.querySelector('.detail').textContent]); })()",
            lambda rows: len([r for r in rows if r[0] == "attempt"]) >= 2)
        if not any(r[0] == "attempt" and r[1] == "retrying" for r in attempts) or \
           not any(r[0] == "attempt" and r[1] == "sent" for r in attempts):
            raise Failure("the timeline shows no retried attempt before the sent one: %r" % attempts)
        cdp.screenshot(os.path.join(shots, "4-event-retries.png"))

        # A poison event: refused for good, dead-lettered, shown with its reason.
        provider.control({"fail_status": 400, "fail_count": 1, "match": "/sms"})
        key = XSS_KEY + secrets.token_hex(4)
        poison = publish(stack, user, {"note": XSS}, key)
        wait_delivery(stack, poison, "failed")
        # The worker writes the dead letter around when it records the status.
        wait_until("the poison event in GET /v1/dlq",
                   lambda: any(r.get("event_id") == poison for r in
                               stack.api("GET", "/v1/dlq?stage=worker.sms&limit=500")["records"]),
                   SETTLE_S)
        go("/console/dlq?stage=worker.sms")
        row = "document.querySelector('#records-table tr' + %s)" % attr("data-event-id", poison)
        until("the poison event in the DLQ page",
              "(() => { const r = %s; return r && r.querySelector('.reason').textContent; })()" % row,
              lambda v: v == "permanent_failure")
        pos = cdp.evaluate("%s.dataset.id" % row)
        cdp.evaluate("%s.querySelector('button.open').click(); true" % row)
        shown = until("the dead letter opened, its payload as text",
                      "(() => { const p = document.getElementById('record-payload');"
                      " return p && document.getElementById('record').dataset.id === %s"
                      " ? p.textContent : null; })()" % js(pos))
        record = stack.api("GET", "/v1/dlq/" + pos)
        if XSS not in json.dumps(record, ensure_ascii=False):
            raise Failure("the dead letter's payload does not carry the markup: %r" % record)
        if XSS not in shown:
            raise Failure("the payload's markup is not shown as text: %r" % shown)
        if cdp.evaluate("document.querySelectorAll('#record img, #record script').length") != 0:
            raise Failure("an element was made from the payload's markup")
        no_xss("DLQ")
        cdp.screenshot(os.path.join(shots, "5-dlq-record.png"))

        # Requeued from the page: the dialog counts first, then it is delivered once.
        cdp.evaluate("%s.querySelector('input[type=checkbox]').click();"
                     "document.getElementById('requeue-selected').click(); true" % row)
        until("the requeue dialog's dry-run count",
              "document.getElementById('requeue-count').dataset.matched", lambda v: v == "1")
        cdp.screenshot(os.path.join(shots, "6-dlq-confirm.png"))
        cdp.evaluate("document.getElementById('requeue-confirm').click(); true")
        until("the requeue's outcome in the dialog",
              "(() => { const r = document.querySelector('#requeue-results tr' + %s);"
              " return r && r.dataset.outcome; })()" % attr("data-id", pos), lambda v: v == "requeued")
        cdp.screenshot(os.path.join(shots, "7-dlq-requeued.png"))
        wait_delivery(stack, poison, "sent")
        got = wait_until("the requeued SMS at the provider", lambda: provider.sent_for(poison),
                         SETTLE_S)
        again = stack.api("POST", "/v1/dlq/requeue", {"ids": [pos], "dry_run": False})
        if again.get("already_requeued") != 1 or again.get("requeued") != 0:
            raise Failure("a second requeue of %s did not say already_requeued: %r" % (pos, again))
        got = provider.sent_for(poison)
        if len(got) != 1:
            raise Failure("the requeued SMS reached the provider %d times: %r" % (len(got), got))

        # The poison event found by its key (made of markup): text, never run.
        go("/console/event?idempotency_key=" + urllib.parse.quote(key, safe=""))
        until("the poison event found by its idempotency key",
              "(() => { const r = document.querySelector('#events-table tr' + %s);"
              " return r && r.dataset.eventId; })()" % attr("data-event-id", poison),
              lambda v: v == poison)
        until("the poison event's timeline",
              "document.getElementById('timeline').dataset.eventId", lambda v: v == poison)
        caption = cdp.evaluate("document.getElementById('events-caption').textContent")
        if key not in caption:
            raise Failure("the search caption does not show the key as text: %r" % caption)
        timeline = stack.api("GET", "/v1/events/%s/timeline" % poison)
        if key in json.dumps(timeline):
            until("the timeline's key as text", "document.getElementById('timeline').textContent",
                  lambda t: key in t)
        if cdp.evaluate("document.querySelectorAll('main img, main script').length") != 0:
            raise Failure("an element was made from the event's markup")
        no_xss("event")
        cdp.screenshot(os.path.join(shots, "8-event.png"))

        # Replay: preview (a count), start, progress until done.
        go("/console/replay")
        until("the replay page", "!!document.getElementById('runs-table')")
        cdp.evaluate("document.querySelector('#window [name=user_id]').value = %s;"
                     "document.getElementById('window').requestSubmit(); true" % js(user))
        count = until("the replay preview's count",
                      "document.getElementById('preview-result').dataset.events",
                      lambda v: v not in (None, ""))
        if int(count) < LAG_EVENTS + 2:
            raise Failure("the preview counts %s events of %s, expected %d or more"
                          % (count, user, LAG_EVENTS + 2))
        cdp.evaluate("document.getElementById('start').click(); true")
        until("the replay run to finish", "document.getElementById('run').dataset.state",
              lambda v: v in ("done", "failed"))
        state = cdp.evaluate("document.getElementById('run').dataset.state")
        if state != "done":
            raise Failure("the replay run ended %s: %s" % (
                state, cdp.evaluate("document.getElementById('run').textContent")))
        cdp.screenshot(os.path.join(shots, "9-replay.png"))

        # Signed out: the pages go to the login page, the APIs say 401.
        cdp.evaluate("document.getElementById('logout').click(); true")
        until("the login page after signing out", "location.pathname === '/console/login'")
        go("/console/dlq")
        until("/console/dlq to send the browser to the login page after signing out",
              "location.pathname === '/console/login' && !!document.getElementById('login-form')")
        status = cdp.evaluate("fetch('/v1/ops/status').then(r => r.status)")
        if status != 401:
            raise Failure("GET /v1/ops/status after signing out answered %r" % status)
        no_xss("login")
    except BaseException:
        for note in cdp.notes[-40:]:
            log("page: " + note)
        raise
    finally:
        cdp.close()


if __name__ == "__main__":
    sys.exit(main(run))
