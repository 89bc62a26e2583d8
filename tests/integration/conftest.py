"""Shared fixtures for the integration tests: real processes on loopback,
raw sockets so every byte is under control.

Ports. A gateway binds its port with SO_REUSEPORT; it refuses to start on a
port another process listens on (exit 4), but a port handed out twice is
still a failed start of an unrelated test. Ports therefore come from a
block of 100 that this process owns: it holds the block's first port bound
(never listening) for as long as it runs, which no other process can bind,
and hands out the rest in turn, each checked free first. The blocks lie
below the kernel's ephemeral range (32768 and up), so outgoing connections
never take them. The held first port refuses connections: it is the dead
server (`dead_port()`).

Waiting. Nothing sleeps for a fixed time: `wait_for` polls for a state
(a log line, a server's answer, a count) until a deadline that is generous
because only a failing run ever reaches it.

Expected values are written here or in tests/fixtures, never read back from
the binary under test: `spell` and `read_error` know the six dialects'
shapes (dialects/*.yaml) and the catalog's spellings (lib/catalog_builtin.c).

EG_REQUIRE_ALL=1 (set by CI) turns every skip into a failure: a missing
prerequisite must not pass as green."""
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

BIN = os.environ.get("ERRGATE_BIN", os.path.join(os.path.dirname(__file__), "../../build/errgate"))
REQUIRE_ALL = os.environ.get("EG_REQUIRE_ALL", "") not in ("", "0")

_PORT_LOW, _PORT_HIGH, _BLOCK = 20000, 32000, 100
_ports = {"claim": None, "base": 0, "next": 0}


def _claim_block():
    """Binds the first port of a free block (start: by pid) and keeps it."""
    nblocks = (_PORT_HIGH - _PORT_LOW) // _BLOCK
    first = os.getpid() % nblocks
    for i in range(nblocks):
        base = _PORT_LOW + ((first + i) % nblocks) * _BLOCK
        s = socket.socket()  # no SO_REUSEADDR: nobody else may bind it
        try:
            s.bind(("127.0.0.1", base))
        except OSError:
            s.close()
            continue
        _ports.update(claim=s, base=base, next=0)
        return
    raise RuntimeError(f"no free block of {_BLOCK} ports in {_PORT_LOW}..{_PORT_HIGH}")


def free_port():
    """A port of this process's block that nothing listens on right now."""
    if _ports["claim"] is None:
        _claim_block()
    for _ in range(_BLOCK):
        _ports["next"] = _ports["next"] % (_BLOCK - 1) + 1
        port = _ports["base"] + _ports["next"]
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the gateway binds
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port left in the block at {_ports['base']}")


def dead_port():
    """A port that refuses every connection for the whole run (held bound,
    never listening): an upstream server that is down."""
    if _ports["claim"] is None:
        _claim_block()
    return _ports["base"]


def wait_for(predicate, timeout=30.0, interval=0.05, what="the expected state"):
    """Polls predicate() until it returns a true value (returned) or the
    deadline passes (AssertionError naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def wait_port(port, proc=None, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


class Response:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)


def read_response(sock, head_only=False):
    """Reads one HTTP/1.1 response (Content-Length, chunked or until close)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    _, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers = [tuple(x.split(": ", 1)) for x in lines[1:]]
    resp = Response(int(status), reason, headers, b"")
    if head_only or resp.status in (204, 304) or 100 <= resp.status < 200:
        return resp, rest
    cl = resp.header("Content-Length")
    te = resp.header("Transfer-Encoding")
    if te and "chunked" in te.lower():
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            line, rest = rest.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            while len(rest) < size + 2:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed inside a chunk")
                rest += chunk
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                break
        resp.body = body
        return resp, rest
    if cl is not None:
        n = int(cl)
        while len(rest) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside a body")
            rest += chunk
        resp.body = rest[:n]
        return resp, rest[n:]
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    resp.body = rest
    return resp, b""


class Pipelined:
    """Reads pipelined responses off one socket: read_response() may take
    more than one response in a recv(); what follows the first is kept here
    for the next read instead of being lost (a race on TCP segmenting)."""

    def __init__(self, sock):
        self.sock, self.pre = sock, b""

    def recv(self, n):
        if self.pre:
            out, self.pre = self.pre, b""
            return out
        return self.sock.recv(n)

    def read(self, head_only=False):
        resp, self.pre = read_response(self, head_only)
        return resp


def request(port, method="GET", path="/", headers=None, body=b"", raw=None, timeout=10.0):
    """One request on a fresh connection; returns the Response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if raw is None:
            h = {"Host": "test.local"}
            if body:
                h["Content-Length"] = str(len(body))
            h.update(headers or {})
            raw = f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(
                f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n" + body
        s.sendall(raw)
        resp, _ = read_response(s, head_only=(method == "HEAD"))
        return resp


def closed_after(sock, timeout=3.0):
    """True when the peer closes the connection (reads EOF) within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class Gateway:
    """An errgate serve process with a config written from a template.

    Started means ready: its "started" log line (written once every
    listener is bound and the signal handlers are in place, so a SIGHUP or
    SIGTERM sent at once is handled, not fatal); when its errors log is not
    stderr, its ports answering. A start that fails kills the process and
    raises with the log's tail."""

    def __init__(self, tmp, config_text, port, admin_port, env=None, timeout=60.0, **popen):
        """env: the process environment (None: this one's); popen: more
        subprocess.Popen arguments (preexec_fn...)."""
        self.port, self.admin_port = port, admin_port
        self.path = os.path.join(tmp, "gateway.yaml")
        self.log = os.path.join(tmp, "gateway.log")
        with open(self.path, "w") as f:
            f.write(config_text)
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.path], stdout=self.logf, stderr=self.logf,
                                     env=env, **popen)
        try:
            if re.search(r"\berrors:\s*(?!stderr\b)[^\s{]", config_text):
                wait_port(port, self.proc, timeout)
            else:
                wait_for(self._started, timeout, what=f"the gateway on port {port} to start")
        except BaseException as e:
            self.kill()
            raise RuntimeError(f"gateway did not start: {e}; log:\n{self.log_text()[-3000:]}") from e

    def _started(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {self.proc.returncode}")
        return any(l.get("event") == "started" for l in self.log_lines())

    def rewrite(self, config_text):
        with open(self.path, "w") as f:
            f.write(config_text)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def log_text(self):
        if not self.logf.closed:
            self.logf.flush()
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        """The JSON lines of the log; a last line still being written is left out."""
        out = []
        for line in self.log_text().splitlines(keepends=True):
            if line.startswith("{") and line.endswith("\n"):
                out.append(json.loads(line))
        return out

    def events(self, name):
        """The server log lines of one event (started, reloaded, reload_failed...)."""
        return [l for l in self.log_lines() if l.get("event") == name]

    def wait_log(self, predicate, what, timeout=30.0):
        """Waits for log lines matching predicate(line); returns them."""
        return wait_for(lambda: [l for l in self.log_lines() if predicate(l)], timeout, what=what)

    def wait_event(self, name, count=1, timeout=30.0):
        """Waits until the event has been logged `count` times in all."""
        return wait_for(lambda: len(self.events(name)) >= count, timeout,
                        what=f"{count} '{name}' log line(s)")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.logf.closed:
            self.logf.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.logf.closed:
            self.logf.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def upstream_port():
    port = free_port()
    proc = subprocess.Popen([BIN, "demo-upstream", "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port(port, proc)
    yield port
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, "demo upstream did not exit cleanly"


def base_config(port, admin_port, upstream_port, extra_routes="", dialect="problem", limits="", demo_options=""):
    """demo_options: more keys for the demo upstream (", host: rewrite")."""
    dead = dead_port()
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin_port}
workers: 2
errors: {{ dialect: {dialect}, negotiate: true }}
limits:
  header_timeout: 1s
  body_timeout: 2s
  max_body_size: 8MiB
  max_uri: 1KiB
  max_header_size: 8KiB
{limits}
log: {{ access: stderr, redact_query: [api_key] }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream_port}"], timeout: 5s{demo_options} }}
  slow: {{ servers: ["127.0.0.1:{upstream_port}"], timeout: 1s }}
  dead: {{ servers: ["127.0.0.1:{dead}"], connect_timeout: 1s }}
  pair: {{ servers: ["127.0.0.1:{dead}", "127.0.0.1:{upstream_port}"], retries: 1 }}
routes:
  - path: /v1/maintenance
    upstream: demo
    maintenance: {{ until: "2030-01-01T06:00:00Z", retry_after: 120 }}
  - path: /v1/readonly
    methods: [GET]
    upstream: demo
{extra_routes}
  - path: /v1/
    upstream: demo
  - path: /slow/
    upstream: slow
  - path: /dead/
    upstream: dead
  - path: /pair/
    upstream: pair
"""


@pytest.fixture
def gateway(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), base_config(port, admin, upstream_port), port, admin)
    gw.upstream_port = upstream_port
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited with {code}; log:\n" + open(gw.log, errors="replace").read()[-4000:]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive), no access log on stderr, and TCP_NODELAY:
    http.server writes the head and the body apart, and with Nagle the body
    waited for the peer's delayed ACK (40 ms an answer)."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass


class _Server(http.server.ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a sixth simultaneous connect
    # was dropped and its SYN resent a second later
    request_queue_size = 128


class ThreadedUpstream:
    """An http.server upstream on a port the kernel picks when it binds (no
    race), a thread per connection."""

    def __init__(self, handler):
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        # a short poll: shutdown() waits for it, and every test closes one
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def python_upstream(do_get):
    """A ThreadedUpstream whose GET handler is do_get(handler)."""

    class H(QuietHandler):
        def do_GET(self):
            do_get(self)

    return ThreadedUpstream(H)


class HeldUpstream(ThreadedUpstream):
    """An upstream whose answers wait until release(): a request stays in
    flight for exactly as long as a test needs, instead of a delay that a
    loaded machine may outlast. Every request is counted when it arrives
    (wait_arrived); after release() answers are immediate."""

    def __init__(self, body=b"held"):
        outer = self
        self.arrived, self.paths = 0, []
        self.cond = threading.Condition()
        self.released = threading.Event()

        class H(QuietHandler):
            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                with outer.cond:
                    outer.arrived += 1
                    outer.paths.append(self.path)
                    outer.cond.notify_all()
                outer.released.wait(120)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = handle_one

        super().__init__(H)

    def wait_arrived(self, n, timeout=30.0):
        """Waits until n requests in all have reached this upstream."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.arrived >= n, timeout):
                raise AssertionError(f"{self.arrived} of {n} requests reached the held upstream")

    def release(self):
        self.released.set()

    def close(self):
        self.release()
        super().close()


# --- the six dialects, read independently of the binary --------------------

DIALECTS = ["problem", "jsonapi", "envelope", "typed", "flat-camel", "flat-snake"]
MEDIA = {"problem": "application/problem+json", "jsonapi": "application/vnd.api+json"}
# each dialect's code_case (dialects/*.yaml)
CODE_CASE = {"problem": "keep", "jsonapi": "keep", "envelope": "lower", "typed": "upper",
             "flat-camel": "upper", "flat-snake": "lower"}
# catalog codes a dialect spells with another word (the eg_spelling_t lists of lib/catalog_builtin.c)
SPELLINGS = {
    "insufficient_scope": {"typed": "INSUFFICIENT_PERMISSIONS", "flat-snake": "insufficient_permissions"},
    "not_found": {"envelope": "resource_not_found", "flat-snake": "resource_not_found"},
    "conflict": {"flat-snake": "resource_conflict"},
    "internal_error": {"typed": "INTERNAL_SERVER_ERROR", "flat-snake": "internal_server_error",
                       "flat-camel": "SERVICE_ERROR"},
}
# what a dialect answers a precise code with (its code_map, dialects/*.yaml, read
# off the seed pages' 401/403 examples); the precise code stays in details.reason
_AUTH_401 = ("missing_api_key", "invalid_api_key", "malformed_api_key", "invalid_token")
CODE_MAP = {
    "jsonapi": {**{c: "unauthorized" for c in _AUTH_401}, "suspended_api_key": "forbidden",
                "ip_not_allowed": "forbidden"},
    "flat-camel": {**{c: "unauthorized" for c in _AUTH_401}, "insufficient_scope": "forbidden",
                   "bad_gateway": "external_service_error",
                   "suspended_api_key": "forbidden", "ip_not_allowed": "forbidden"},
    "flat-snake": {**{c: "unauthorized" for c in _AUTH_401}, "suspended_api_key": "insufficient_scope",
                   "ip_not_allowed": "insufficient_scope"},
}
# the catalog's messages for the codes the tests meet (lib/catalog_builtin.c)
CATALOG_MESSAGES = {
    "internal_error": "An unexpected error occurred. Please try again later.",
    "database_error": "Database operation failed.",
    "bad_gateway": "An upstream service failed.",
    "external_service_error": "An external service failed.",
    "search_engine_error": "Search engine temporarily unavailable.",
    "service_unavailable": "Service temporarily unavailable. Please try again later.",
    "gateway_timeout": "Request timed out. Please try again.",
}


def spell(code, dialect, in_catalog=True):
    """How a dialect writes a canonical code (X-Error-Code and the body): the
    code its code_map answers it with, in the catalog's spelling if it has
    one, else in the dialect's case; a code the catalog does not know is
    written as it came."""
    if not in_catalog:
        return code
    code = CODE_MAP.get(dialect, {}).get(code, code)
    sp = SPELLINGS.get(code, {}).get(dialect)
    if sp:
        return sp
    case = CODE_CASE[dialect]
    return code.upper() if case == "upper" else code.lower() if case == "lower" else code


def read_error(body, dialect):
    """Reads an error body in one of the six dialects by its shape
    (dialects/*.yaml): {code, message, request_id, fields}, fields being the
    number of field errors. Raises if the body does not have the shape."""
    b = json.loads(body) if isinstance(body, (bytes, str)) else body
    if dialect == "problem":
        return {"code": b.get("code"), "message": b.get("detail"), "request_id": b.get("request_id"),
                "fields": len(b.get("errors", []))}
    if dialect == "jsonapi":
        items = b["errors"]
        first = items[0]
        return {"code": first.get("code"), "message": first.get("detail"),
                "request_id": first.get("meta", {}).get("request_id"),
                "fields": sum(1 for it in items if "source" in it)}
    if dialect == "envelope":
        e = b["error"]
        return {"code": e.get("code"), "message": e.get("message"), "request_id": e.get("request_id"),
                "fields": len(e.get("details", []))}
    if dialect == "typed":
        e = b["error"]
        d = e.get("details", {})
        return {"code": e.get("code"), "message": e.get("message"), "request_id": d.get("request_id"),
                "fields": 1 if "parameter" in d else len(d.get("errors", []))}
    if dialect == "flat-camel":
        d = b.get("details", {})
        return {"code": b.get("error"), "message": b.get("message"), "request_id": d.get("requestId"),
                "fields": sum(len(v) if isinstance(v, list) else 1 for v in d.get("fields", {}).values())}
    if dialect == "flat-snake":
        d = b.get("details", {})
        return {"code": b.get("error"), "message": b.get("message"), "request_id": d.get("request_id"),
                "fields": 1 if "field" in d else len(d.get("errors", []))}
    raise ValueError(f"unknown dialect {dialect}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under EG_REQUIRE_ALL=1 a skipped test is a failed one."""
    outcome = yield
    rep = outcome.get_result()
    if REQUIRE_ALL and rep.skipped and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"skipped, and EG_REQUIRE_ALL=1 makes a skip a failure: {reason}"
