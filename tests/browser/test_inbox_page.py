#!/usr/bin/python3
"""The example inbox page (examples/inbox/) in a real browser.

A whole in-app pipeline runs against the Kafka and PostgreSQL of
dev/services, as an operator starts it: a scratch database (heraldctl
migrate), topics under a prefix no other run uses (heraldctl topics
create), an admin key (heraldctl apikey create), then herald-dispatcher,
herald-worker --channel inapp, herald-realtime and herald-gateway (with
CORS for the page's origin).  The page is served from a static HTTP
server on another port, so every call it makes is cross-origin, and
opened in headless Chromium (/usr/bin/chromium), driven over the DevTools
protocol.  The test publishes events through the gateway and asserts what
a user sees: the message appears in the page, the unread badge counts it,
the page's "Mark read" button takes it back to 0, and a title made of
markup shows as text.

Environment: HERALD_BIN_DIR, HERALD_SOURCE_DIR, HERALD_KAFKA_BROKERS,
HERALD_DATABASE_URL (from dev/services); HERALD_BROWSER_OUT, where the
screenshots and the daemons' logs go (kept after the run).  Every wait is
bounded; only 127.0.0.1 is used; every process started is stopped on every
way out.
"""

import base64
import functools
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import websocket  # Debian's python3-websocket (websocket-client)

CHROMIUM = "/usr/bin/chromium"
TOKEN_SECRET = "browser-test-user-token-secret-of-32-bytes"
PHASE_S = 60  # the longest a start-up step may take
EVENT_S = 20  # from a publish to the message in the page


def log(msg):
    print("browser: " + msg, file=sys.stderr, flush=True)


class Failure(Exception):
    pass


def require_env(name):
    v = os.environ.get(name, "")
    if not v:
        raise Failure(name + " is not set: start the services with `eval \"$(dev/services up)\"`")
    return v


def wait_until(what, fn, timeout_s, interval_s=0.2):
    """Polls fn() until it returns something true; bounded in time and count."""
    deadline = time.monotonic() + timeout_s
    last = None
    for _ in range(int(timeout_s / interval_s) + 2):
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    raise Failure("timed out after %ss waiting for %s (last: %r)" % (timeout_s, what, last))


def request(method, url, body=None, headers=None, timeout=15):
    """One request; returns (status, parsed JSON or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as res:
            raw, status = res.read(), res.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


class Stack:
    """The processes and scratch resources of one run, undone by close()."""

    def __init__(self, out):
        self.out = out
        self.logs = os.path.join(out, "logs")
        self.bin = require_env("HERALD_BIN_DIR")
        self.src = require_env("HERALD_SOURCE_DIR")
        self.brokers = require_env("HERALD_KAFKA_BROKERS")
        self.base_db = require_env("HERALD_DATABASE_URL")
        self.prefix = "t%s." % secrets.token_hex(6)
        self.db_name = "herald_test_browser_%s" % secrets.token_hex(5)
        self.db_url = None
        self.topics_made = False
        self.procs = []  # (name, Popen), in start order
        self.tmp = tempfile.mkdtemp(prefix="herald-browser-")
        self.static = None

    # ---------------------------------------------------------- scratch

    def psql(self, sql):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.base_db, "-c", sql],
                       check=True, timeout=30, stdout=subprocess.DEVNULL)

    def scratch_db(self):
        u = urllib.parse.urlsplit(self.base_db)
        if not u.scheme.startswith("postgres"):
            raise Failure("HERALD_DATABASE_URL must be a postgresql:// URL")
        self.psql('CREATE DATABASE "%s"' % self.db_name)
        self.db_url = urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + self.db_name, u.query, ""))

    def env(self, **extra):
        """A daemon's environment: nothing of ours but what is set here."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        env.update({
            "HERALD_KAFKA_BROKERS": self.brokers,
            "HERALD_DATABASE_URL": self.db_url,
            "HERALD_TOPIC_PREFIX": self.prefix,
            "HERALD_LOG_LEVEL": "info",
            "HERALD_METRICS_ADDR": "127.0.0.1:0",
            "HERALD_KAFKA_OPTS": "",
        })
        env.update(extra)
        return env

    def ctl(self, *args):
        r = subprocess.run([os.path.join(self.bin, "heraldctl")] + list(args), env=self.env(),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise Failure("heraldctl %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
        return r.stdout

    # ---------------------------------------------------------- processes

    def spawn(self, name, argv, env):
        logf = open(os.path.join(self.logs, name + ".log"), "wb")
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        self.procs.append((name, p))
        return p

    def log_tail(self, name, n=3000):
        try:
            with open(os.path.join(self.logs, name + ".log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def from_log(self, name, proc, pattern):
        """Waits for pattern (one group: a port) in a daemon's log."""
        rx = re.compile(pattern)

        def found():
            if proc.poll() is not None:
                raise Failure("%s exited (%d) at start:\n%s" %
                              (name, proc.returncode, self.log_tail(name)))
            m = rx.search(self.log_tail(name, 1 << 20))
            return int(m.group(1)) if m else None
        return wait_until("%s to log %s" % (name, pattern), found, PHASE_S, 0.1)

    def ready(self, name, proc, port):
        def answers():
            if proc.poll() is not None:
                raise Failure("%s exited (%d):\n%s" % (name, proc.returncode, self.log_tail(name)))
            try:
                return request("GET", "http://127.0.0.1:%d/readyz" % port, timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(name + " /readyz", answers, PHASE_S)

    def daemon(self, name, argv, **env):
        p = self.spawn(name, [os.path.join(self.bin, argv[0])] + argv[1:], self.env(**env))
        ops = self.from_log(name, p, r"opsserver 127\.0\.0\.1:(\d+)")
        self.ready(name, p, ops)
        return p

    def start_static(self):
        root = os.path.join(self.src, "examples", "inbox")

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass
        handler = functools.partial(Quiet, directory=root)
        self.static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.static.serve_forever, daemon=True).start()
        return self.static.server_address[1]

    def up(self):
        os.makedirs(self.logs, exist_ok=True)
        for f in os.listdir(self.logs):
            os.remove(os.path.join(self.logs, f))
        log("prefix %s, database %s, logs in %s" % (self.prefix, self.db_name, self.logs))
        self.scratch_db()
        self.ctl("migrate")
        self.topics_made = True
        self.ctl("topics", "create", "--partitions", "1", "--replication-factor", "1")
        self.api_key = self.ctl("apikey", "create", "--name", "browser", "--scope",
                                "admin").strip()
        self.page_port = self.start_static()
        self.origin = "http://127.0.0.1:%d" % self.page_port

        self.daemon("dispatcher", ["herald-dispatcher"],
                    HERALD_DISPATCHER_GROUP=self.prefix + "dispatcher",
                    HERALD_DISPATCHER_TRANSACTIONAL_ID=self.prefix + "dispatcher-1")
        self.daemon("worker-inapp", ["herald-worker", "--channel", "inapp"],
                    HERALD_WORKER_ID=self.prefix + "worker-inapp",
                    HERALD_RETRY_BASE_MS="200", HERALD_RETRY_MAX_MS="2s")
        self.start_realtime("realtime")
        gw = self.spawn("gateway", [os.path.join(self.bin, "herald-gateway"),
                                    "--http-addr", "127.0.0.1:0"],
                        self.env(HERALD_ACCESS_LOG="true", HERALD_AUTH_CACHE_TTL="1s",
                                 HERALD_SHUTDOWN_TIMEOUT="5s",
                                 HERALD_USER_TOKEN_SECRET=TOKEN_SECRET,
                                 HERALD_GATEWAY_CORS_ORIGINS=self.origin))
        self.gateway_port = self.from_log("gateway", gw, r"listening on port (\d+)")
        self.ready("gateway", gw, self.gateway_port)
        self.gateway = "http://127.0.0.1:%d" % self.gateway_port

    def stop_one(self, name):
        """SIGTERM to one daemon, which must exit 0 within 30 s."""
        p = next(p for n, p in self.procs if n == name)
        os.killpg(p.pid, signal.SIGTERM)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
            raise Failure(name + " did not stop within 30 s")
        self.procs = [(n, q) for n, q in self.procs if q is not p]
        if rc != 0:
            raise Failure("%s exited %d on SIGTERM:\n%s" % (name, rc, self.log_tail(name)))

    def start_realtime(self, name, port=0):
        rt = self.spawn(name, [os.path.join(self.bin, "herald-realtime")],
                        self.env(HERALD_REALTIME_LISTEN="127.0.0.1:%d" % port,
                                 HERALD_USER_TOKEN_SECRET=TOKEN_SECRET,
                                 HERALD_SHUTDOWN_TIMEOUT="5s"))
        self.realtime_port = self.from_log(name, rt, r"listening on port (\d+)")
        self.ready(name, rt, self.from_log(name, rt, r"metrics on port (\d+)"))

    def api(self, method, path, body=None, want=200):
        status, doc = request(method, self.gateway + path, body,
                           {"Authorization": "Bearer " + self.api_key})
        if status != want:
            raise Failure("%s %s answered %d, expected %d: %r" % (method, path, status, want, doc))
        return doc

    def close(self):
        """Stops everything started, newest first, then drops the scratch."""
        bad = []
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    log("%s did not stop within 30 s; killing it" % name)
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait(timeout=10)
                # Chromium exits by signal when asked to stop; Herald's daemons exit 0.
                if name != "chromium" and p.returncode != 0:
                    bad.append("%s exited %d on SIGTERM" % (name, p.returncode))
        self.procs = []
        if self.static is not None:
            self.static.shutdown()
            self.static.server_close()
            self.static = None
        if self.db_url is not None:
            try:
                self.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.db_name)
            except (subprocess.SubprocessError, OSError) as e:
                log("database %s not dropped: %s" % (self.db_name, e))
            self.db_url = None
        if self.topics_made:
            self.topics_made = False
            self.delete_topics()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return bad

    def delete_topics(self):
        """Kafka's own tool (dev/lib.sh runs it), as nothing of Herald deletes topics."""
        script = ('set -euo pipefail; source "$1/dev/lib.sh"; herald_kafka_locate; '
                  'herald_kafka_tool "$2" org.apache.kafka.tools.TopicCommand '
                  '--bootstrap-server "$3" --delete --topic "$4" >>"$2/tools.log" 2>&1')
        try:
            subprocess.run(["bash", "-c", script, "delete-topics", self.src, self.logs,
                            self.brokers, re.escape(self.prefix) + ".*"], check=True, timeout=120)
        except (subprocess.SubprocessError, OSError) as e:
            log("topics %s* not deleted: %s" % (self.prefix, e))


class Cdp:
    """One DevTools protocol session over a WebSocket: calls and events."""

    def __init__(self, url):
        # DevTools refuses WebSocket clients that send an Origin.
        self.ws = websocket.create_connection(url, timeout=10, suppress_origin=True)
        self.next_id = 0
        self.notes = []  # console messages, exceptions and browser log lines, for failures
        self.sockets = []  # the URL of every WebSocket the page opened

    def call(self, method, params=None, timeout_s=15):
        self.next_id += 1
        cid = self.next_id
        self.ws.send(json.dumps({"id": cid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout_s
        for _ in range(100000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.ws.settimeout(left)
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            if msg.get("id") == cid:
                if "error" in msg:
                    raise Failure("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.event(msg)
        raise Failure("%s: no answer within %ss" % (method, timeout_s))

    def event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.notes.append("console.%s: %s" % (p.get("type"), text))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.notes.append("exception: %s" % d.get("exception", {}).get("description", d.get("text")))
        elif m == "Network.webSocketCreated":
            self.sockets.append(p.get("url", ""))
            del self.sockets[:-50]
        elif m == "Log.entryAdded":
            e = p.get("entry", {})
            self.notes.append("log %s: %s" % (e.get("level"), e.get("text")))
        del self.notes[:-200]

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise Failure("page script failed: %s" % r["exceptionDetails"])
        return r.get("result", {}).get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        log("screenshot " + path)

    def close(self):
        try:
            self.ws.close()
        except (OSError, websocket.WebSocketException):
            pass


def start_chromium(stack):
    profile = os.path.join(stack.tmp, "chromium-profile")
    os.makedirs(profile)
    p = stack.spawn("chromium", [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
        "--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
        "--disable-extensions", "--disable-background-networking", "--disable-sync",
        "--disable-component-update", "--disable-default-apps", "--password-store=basic",
        "--window-size=900,700", "about:blank"], dict(os.environ))
    port_file = os.path.join(profile, "DevToolsActivePort")

    def port():
        if p.poll() is not None:
            raise Failure("chromium exited (%d):\n%s" % (p.returncode, stack.log_tail("chromium")))
        try:
            with open(port_file) as f:
                first = f.readline().strip()
            return int(first) if first.isdigit() else None
        except OSError:
            return None
    devtools = wait_until("chromium's DevToolsActivePort", port, PHASE_S)

    def page_target():
        status, targets = request("GET", "http://127.0.0.1:%d/json/list" % devtools, timeout=5)
        pages = [t for t in targets or [] if t.get("type") == "page"]
        return pages[0]["webSocketDebuggerUrl"] if status == 200 and pages else None
    return Cdp(wait_until("a page target", page_target, PHASE_S))


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
    stack.up()
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
        url = "%s/index.html#%s" % (stack.origin, frag)
        cdp.call("Page.navigate", {"url": url})
        shots = stack.out

        def state():
            return cdp.evaluate(PAGE_STATE)

        def check(what, cond):
            try:
                return wait_until(what, lambda: (lambda s: s if cond(s) else None)(state()),
                                  EVENT_S)
            except Failure:
                cdp.screenshot(os.path.join(shots, "failed.png"))
                raise

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
        stack.start_realtime("realtime-2", stack.realtime_port)
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


def main():
    out = os.environ.get("HERALD_BROWSER_OUT") or os.path.join(os.getcwd(), "browser-out")
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".png"):
            os.remove(os.path.join(out, f))

    def stop(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    stack = None
    status = 1
    try:
        if not os.access(CHROMIUM, os.X_OK):
            raise Failure(CHROMIUM + " is missing (Debian's chromium: dev/test installs it)")
        stack = Stack(out)
        run(stack)
        status = 0
    except Exception as e:  # noqa: BLE001 - any failure ends the same way
        log("FAILED: %s: %s" % (type(e).__name__, e))
        if stack is not None:
            for name, _ in stack.procs:
                if name != "chromium":
                    log("---- %s (end of log)\n%s" % (name, stack.log_tail(name, 1500)))
    finally:
        if stack is not None:
            for problem in stack.close():
                log("FAILED: " + problem)
                status = 1
    log("passed" if status == 0 else "failed; screenshots and logs in " + out)
    return status


if __name__ == "__main__":
    sys.exit(main())
