"""What the browser tests share: a whole Herald stack and Chromium over DevTools.

Stack runs the daemons an operator would start against the Kafka and
PostgreSQL of dev/services: a scratch database (heraldctl migrate), topics
under a prefix no other run uses (heraldctl topics create), an admin key
(heraldctl apikey create), then whichever of herald-dispatcher,
herald-worker, herald-realtime and herald-gateway a test asks for, each
waited for on its /readyz.  Cdp drives headless Chromium
(/usr/bin/chromium) over the DevTools protocol.  main() runs a test with
both and stops every process it started on every way out.

Environment: HERALD_BIN_DIR, HERALD_SOURCE_DIR, HERALD_KAFKA_BROKERS,
HERALD_DATABASE_URL (from dev/services); HERALD_BROWSER_OUT, where the
screenshots and the daemons' logs go (kept after the run).  Every wait is
bounded; only 127.0.0.1 is used.
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
        self.ops = {}  # daemon name -> the port of its ops server (/metrics, /readyz)
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
        self.ops[name] = ops
        return p

    def start_static(self, root):
        """Serves root over HTTP on a port of its own; returns the port."""

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass
        handler = functools.partial(Quiet, directory=root)
        self.static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.static.serve_forever, daemon=True).start()
        return self.static.server_address[1]

    def up(self):
        """The scratch database, topics and admin key; no daemon yet."""
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

    def start_dispatcher(self, name="dispatcher"):
        return self.daemon(name, ["herald-dispatcher"],
                           HERALD_DISPATCHER_GROUP=self.prefix + "dispatcher",
                           HERALD_DISPATCHER_TRANSACTIONAL_ID=self.prefix + "dispatcher-1")

    def start_worker(self, channel, name=None, **env):
        """One herald-worker with fast retries; env adds to (or overrides) its own."""
        settings = {"HERALD_WORKER_ID": self.prefix + "worker-" + channel,
                    "HERALD_RETRY_BASE_MS": "200", "HERALD_RETRY_MAX_MS": "2s"}
        settings.update(env)
        return self.daemon(name or "worker-" + channel,
                           ["herald-worker", "--channel", channel], **settings)

    def start_gateway(self, name="gateway", **env):
        """herald-gateway on a port of its own; sets self.gateway (its URL)."""
        settings = {"HERALD_ACCESS_LOG": "true", "HERALD_AUTH_CACHE_TTL": "1s",
                    "HERALD_SHUTDOWN_TIMEOUT": "5s"}
        settings.update(env)
        gw = self.spawn(name, [os.path.join(self.bin, "herald-gateway"),
                               "--http-addr", "127.0.0.1:0"], self.env(**settings))
        self.gateway_port = self.from_log(name, gw, r"listening on port (\d+)")
        self.ready(name, gw, self.gateway_port)
        self.gateway = "http://127.0.0.1:%d" % self.gateway_port
        return gw

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

    def until(self, what, expr, cond, timeout_s, shot=None):
        """Evaluates expr until cond(value) holds; returns the value.  On a
        timeout, a screenshot to shot (when given) and a Failure."""
        try:
            # Wrapped, so that a value that is false (0, "") can satisfy cond.
            return wait_until(what, lambda: (lambda v: [v] if cond(v) else None)(
                self.evaluate(expr)), timeout_s)[0]
        except Failure:
            if shot:
                self.screenshot(shot)
            raise

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


def start_chromium(stack, window="900,700"):
    profile = os.path.join(stack.tmp, "chromium-profile")
    os.makedirs(profile)
    p = stack.spawn("chromium", [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
        "--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
        "--disable-extensions", "--disable-background-networking", "--disable-sync",
        "--disable-component-update", "--disable-default-apps", "--password-store=basic",
        "--window-size=" + window, "about:blank"], dict(os.environ))
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


def main(run):
    """Runs run(stack) with a fresh Stack; the exit status of the test."""
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
