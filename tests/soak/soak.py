#!/usr/bin/python3
"""Soak test for `errgate serve` (issue 20): minutes of mixed traffic with
faults, then checks that the gateway is alive, gave its descriptors back,
did not grow without bound, answered every request (or failed it only where
a fault explains it), logged one access line per request, and stops cleanly.

Run it with `make soak` (SOAK_MINUTES=30 by default) or directly:
    /usr/bin/python3 tests/soak/soak.py --bin build-soak/errgate --minutes 1

What runs (all on loopback, in a fresh directory):
  - redis-server on a free port (kill -9 and start again on a schedule);
  - `errgate demo-upstream`, and a scripted upstream in this process that
    answers, answers slowly, resets before its head or in the middle of its
    body on request, and on a schedule resets every connection it has
    (in flight and pooled) at once;
  - two gateways, each with 2 workers under an open-file limit of 512 (set
    with setrlimit in the child, as `prlimit --nofile=512:512` does): "redis"
    keeps its rate limit and quota in Redis (fail_closed), "sqlite" keeps
    them in the process and in its SQLite key store. With `redis:`
    configured every quota is charged in Redis, so one gateway cannot have
    both; the API key of each is created through its admin API.
    Routes: /v1/ plain proxy to the demo upstream (no policy), /slow/ the
    demo upstream's delay path, /limited/ a rate limit, /quota/ API key and
    quota, /flaky/ plain proxy to the scripted upstream.
  - client threads: keep-alive connections (each kept for a random number of
    requests), one request per connection, slow readers, clients that stop
    reading (write_timeout), clients that trickle their request head and
    clients that never finish it (header_timeout);
  - faults on a schedule: Redis restarts, bursts of 600 idle connections on
    one gateway at a time (more than its open-file limit allows), resets of
    every upstream connection.

Every request carries its own X-Request-ID (trust_inbound keeps it), so the
access log can be matched request by request. Expected statuses and bodies
are written here (the demo upstream's bodies are in src/demo_upstream.c);
an error status or a connection error is accepted only when its request
overlapped a fault that explains it, by kind. Samples of VmRSS, open
descriptors and CPU time are taken every 2 s. Exit status 0 when every
check passes, 1 otherwise; the summary table is printed either way.

Reuses tests/integration/conftest.py (ports, Gateway, wait_for) and the
Redis helper of tests/integration/test_redis.py, imported by path."""
import argparse
import array
import collections
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
INTEGRATION = os.path.join(ROOT, "tests", "integration")

conftest = None  # tests/integration/conftest.py, imported in main() once ERRGATE_BIN is set
ADMIN_TOKEN = "soak-admin-token-0123456789abcdef"
NOFILE = 512  # the gateways' open-file limit (soft and hard)
FLOOD_CONNS = 600  # idle connections per burst: more than NOFILE allows
SQUEEZE_SPARE, SQUEEZE_CONNS = 40, 300  # fd_squeeze: descriptors left, idle connections opened
SAMPLE_EVERY = 2.0
CLIENT_TIMEOUT = 30.0  # a response not complete by then is a wedge
BIG = 1000000  # /v1/big size for slow readers
STALL_BIG = 8000000  # /v1/big size for clients that stop reading
WRITE_TIMEOUT, HEADER_TIMEOUT = 4, 3  # seconds, as in the config below
CHUNKED_BODY = b"hello chunky world\n"  # src/demo_upstream.c, /v1/chunked


def big_pattern(n):
    """The demo upstream's /v1/big body: 'a' + i % 26."""
    return (bytes(range(ord("a"), ord("a") + 26)) * (n // 26 + 1))[:n]


# ------------------------------------------------------------ HTTP client

class NoResponse(Exception):
    """The connection closed or was reset before any byte of a response."""


class Truncated(Exception):
    """A response head arrived and then the connection was cut."""


class Malformed(Exception):
    """Bytes that are not an HTTP/1.1 response."""


class ClientTimeout(Exception):
    """Nothing complete within CLIENT_TIMEOUT."""


STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*\Z")


class Reader:
    """Reads one response at a time from a socket, with an overall deadline
    and every way of ending (EOF, reset, timeout) turned into one of the
    exceptions above. slow=(bytes, pause): read the body that many bytes at
    a time with a pause between reads."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _more(self, deadline, got_head, want=65536):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ClientTimeout()
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(want)
        except socket.timeout:
            raise ClientTimeout()
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as e:
            if got_head or self.buf:
                raise Truncated(f"reset: {e}")
            raise NoResponse(f"reset: {e}")
        if not data:
            if got_head or self.buf:
                raise Truncated("eof")
            raise NoResponse("eof")
        self.buf += data

    def response(self, deadline, slow=None, stall=0.0, head_only=False):
        """Returns (status, headers (lower-case names), body, closes)."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise Malformed("head over 64 KiB")
            self._more(deadline, False)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        m = STATUS_LINE.match(lines[0])
        if not m:
            raise Malformed(f"status line {lines[0][:80]!r}")
        status = int(m.group(1))
        headers = {}
        for ln in lines[1:]:
            name, sep, value = ln.partition(b":")
            if not sep or not name or name != name.strip():
                raise Malformed(f"header line {ln[:80]!r}")
            headers.setdefault(name.decode("latin-1").lower(), value.strip().decode("latin-1"))
        closes = "close" in headers.get("connection", "").lower()
        if 100 <= status < 200:
            return self.response(deadline, slow, stall, head_only)
        if stall:
            time.sleep(stall)  # the client stops reading: the fault itself
        if head_only or status in (204, 304):
            return status, headers, b"", closes
        te, cl = headers.get("transfer-encoding"), headers.get("content-length")
        want = slow[0] if slow else 65536
        if te is not None:
            if te.lower() != "chunked" or cl is not None:
                raise Malformed(f"framing te={te!r} cl={cl!r}")
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._more(deadline, True, want)
                line, self.buf = self.buf.split(b"\r\n", 1)
                try:
                    size = int(line.split(b";")[0], 16)
                except ValueError:
                    raise Malformed(f"chunk size {line[:40]!r}")
                while len(self.buf) < size + 2:
                    self._more(deadline, True, want)
                if self.buf[size:size + 2] != b"\r\n":
                    raise Malformed("chunk without CRLF")
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    return status, headers, body, closes
        if cl is not None:
            if not cl.isdigit():
                raise Malformed(f"content-length {cl!r}")
            n = int(cl)
            while len(self.buf) < n:
                self._more(deadline, True, want)
                if slow:
                    time.sleep(slow[1])
            body, self.buf = self.buf[:n], self.buf[n:]
            return status, headers, body, closes
        if not closes:
            raise Malformed("no framing on a keep-alive response")
        try:
            while True:
                self._more(deadline, True, want)
        except Truncated:  # EOF ends this body
            pass
        body, self.buf = self.buf, b""
        return status, headers, body, True


def build_request(method, path, rid, headers=(), body=b""):
    h = [("Host", "soak.local"), ("X-Request-ID", rid)] + list(headers)
    if body:
        h.append(("Content-Length", str(len(body))))
    return (f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h)
            + "\r\n").encode() + body


# ------------------------------------------------------ scripted upstream

class FaultUpstream:
    """An HTTP/1.1 keep-alive upstream, a thread per connection. Paths (the
    query after '?'):
      /flaky/ok?size=N          200, N bytes: "ok <request id> " then '.'
      /flaky/slow?ms=M&size=N   the same after M ms
      /flaky/reset-head         reset (RST) before any byte of a response
      /flaky/reset-body         a 200 head promising 20000 bytes, 5000, then RST
    reset_all() resets every connection it has (idle or in flight) within
    a quarter second. The listening socket is bound at construction, so the
    port is known before start() runs the accept thread."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1024)
        self.port = self.lsock.getsockname()[1]
        self.gen = 0
        self.stopping = False
        self.lock = threading.Lock()
        self.counts = collections.Counter()

    def start(self):
        threading.Thread(target=self._accept, daemon=True, name="upstream-accept").start()

    def stop(self):
        self.stopping = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()

    def reset_all(self):
        with self.lock:
            self.gen += 1
            self.counts["reset_all"] += 1

    def _count(self, what):
        with self.lock:
            self.counts[what] += 1

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _rst(conn):
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        conn.close()

    def _wait(self, conn, gen, seconds):
        """Sleeps, but resets the connection if reset_all() comes first."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.gen != gen:
                return False
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        return self.gen == gen

    def _serve(self, conn):
        gen = self.gen
        conn.settimeout(0.25)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    if self.gen != gen:
                        self._count("reset_by_fault")
                        return self._rst(conn)
                    if self.stopping:
                        return conn.close()
                    try:
                        data = conn.recv(65536)
                    except socket.timeout:
                        continue
                    if not data:
                        return conn.close()
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                hdr = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    hdr[k.strip().lower()] = v.strip()
                n = int(hdr.get("content-length", "0") or 0)
                while len(buf) < n:
                    data = conn.recv(65536)
                    if not data:
                        return conn.close()
                    buf += data
                buf = buf[n:]
                path, _, query = target.partition("?")
                q = dict(p.partition("=")[::2] for p in query.split("&") if p)
                rid = hdr.get("x-request-id", "-")
                size = max(64, int(q.get("size", "200")))
                if path == "/flaky/reset-head":
                    self._count("reset_head")
                    return self._rst(conn)
                if path == "/flaky/reset-body":
                    self._count("reset_body")
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20000\r\n\r\n"
                                 + b"x" * 5000)
                    return self._rst(conn)
                if path == "/flaky/slow":
                    self._count("slow")
                    if not self._wait(conn, gen, int(q.get("ms", "100")) / 1000.0):
                        self._count("reset_by_fault")
                        return self._rst(conn)
                else:
                    self._count("ok")
                body = f"ok {rid} ".encode()
                body += b"." * (size - len(body))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
        except OSError:
            try:
                conn.close()
            except OSError:
                pass


# ------------------------------------------------------------- the setup

# slowdemo and flaky time out and fail on purpose (delay_timeout, the resets):
# max_fails 1000 keeps them from being marked down by it. Three timeouts in a
# row did mark slowdemo down once, at the end of a run (the 2 s requests are
# the last to finish), and /ready said 503 for fail_timeout.
def gateway_config(d, port, admin, demo, flaky, redis_port):
    redis = (f'redis: {{ address: "127.0.0.1:{redis_port}", timeout: 100ms, on_failure: fail_closed }}'
             if redis_port else "")
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
errors: {{ dialect: problem, negotiate: false }}
limits: {{ header_timeout: {HEADER_TIMEOUT}s, body_timeout: 3s, idle_timeout: 30s, write_timeout: {WRITE_TIMEOUT}s }}
log: {{ access: {d}/access.log, errors: stderr }}
store: {{ backend: sqlite, path: {d}/keys.db }}
auth: {{ admin_token_file: {d}/admin.token }}
{redis}
upstreams:
  demo: {{ servers: ["127.0.0.1:{demo}"], timeout: 5s, keepalive_timeout: 10s }}
  slowdemo: {{ servers: ["127.0.0.1:{demo}"], timeout: 2s, max_fails: 1000, keepalive_timeout: 10s }}
  flaky: {{ servers: ["127.0.0.1:{flaky}"], timeout: 2s, max_fails: 1000, fail_timeout: 1s, keepalive_timeout: 10s }}
routes:
  - {{ path: /v1/, upstream: demo }}
  - {{ path: /slow/, upstream: slowdemo }}
  - {{ path: /limited/, upstream: demo, rate_limit: {{ limit: 20, window: 1s, by: ip }} }}
  - {{ path: /quota/, upstream: demo, auth: api_key, quota: {{ limit: 1000000000, period: day }} }}
  - {{ path: /flaky/, upstream: flaky }}
"""


def limit_nofile():
    """In the gateway's child before exec: the open-file limit (prlimit)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


class Target:
    """One gateway under test, its key and its samples."""

    def __init__(self, idx, name, gw, uses_redis):
        self.idx, self.name, self.gw, self.uses_redis = idx, name, gw, uses_redis
        self.pid = gw.proc.pid
        self.port, self.admin_port = gw.port, gw.admin_port
        self.access_log = os.path.join(os.path.dirname(gw.path), "access.log")
        self.key = None
        self.samples = []  # (t, rss_kb, fds, cpu_s, threads)
        self.baseline = None
        self.died = None


def proc_sample(pid):
    """(rss_kb, fds, cpu seconds, threads) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            st = f.read()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rss = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", st).group(1))
    tck = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tck  # utime, stime
    return rss, fds, cpu, threads


# ------------------------------------------------------------ the traffic

# kind: (weight, method, path maker, expected statuses, validator name)
# The statuses are what the route answers with no fault at all.
KINDS = {
    "hello": (30, "GET", lambda r: "/v1/hello", {200}, "hello"),
    "big": (2, "GET", lambda r: "/v1/big?bytes=200000", {200}, "big"),
    "chunked": (5, "GET", lambda r: "/v1/chunked", {200}, "chunked"),
    "echo": (5, "POST", lambda r: "/v1/echo", {200}, "echo"),
    "translated400": (4, "GET", lambda r: "/v1/errors/flat-camel/validation", {400}, None),
    "translated500": (2, "GET", lambda r: "/v1/errors/typed/internal", {500}, None),
    "noroute": (3, "GET", lambda r: "/nowhere", {404}, None),
    "delay": (5, "GET", lambda r: f"/slow/x?ms={r.randint(5, 300)}", {200}, None),
    "delay_timeout": (0.3, "GET", lambda r: "/slow/x?ms=3000", {504}, None),
    "limited": (10, "GET", lambda r: "/limited/x", {200, 429}, None),
    "quota": (10, "GET", lambda r: "/quota/x", {200}, "quota"),
    "quota_nokey": (2, "GET", lambda r: "/quota/x", {401}, None),
    "quota_badkey": (2, "GET", lambda r: "/quota/x", {401}, None),
    "flaky_ok": (10, "GET", lambda r: f"/flaky/ok?size={r.randint(64, 8000)}", {200}, "flaky"),
    "flaky_slow": (3, "GET", lambda r: f"/flaky/slow?ms={r.randint(5, 500)}&size=300", {200}, "flaky"),
    "flaky_timeout": (0.2, "GET", lambda r: "/flaky/slow?ms=3000", {504}, None),
    "flaky_reset_head": (1, "GET", lambda r: "/flaky/reset-head", {502}, None),
    # the gateway either cuts the client's response or, when nothing had
    # gone out yet, answers 502: both are what this fault may give
    "flaky_reset_body": (1, "GET", lambda r: "/flaky/reset-body", {502, "truncated"}, None),
}
KIND_NAMES = list(KINDS)
KIND_WEIGHTS = [KINDS[k][0] for k in KIND_NAMES]
# the slow clients' kinds (their own thread)
SLOW_KINDS = {
    "slow_reader": {200},
    "stall_reader": {200, "truncated"},  # cut by write_timeout, or the kernel buffered it all
    "trickle_head": {200},
    "trickle_stall": {408},
}

# outcome codes kept per request (negative: no complete response)
E_NORESP, E_TRUNC, E_MALFORMED, E_TIMEOUT, E_CONNECT = -1, -2, -3, -4, -5
E_NAMES = {E_NORESP: "no_response", E_TRUNC: "truncated", E_MALFORMED: "malformed",
           E_TIMEOUT: "client_timeout", E_CONNECT: "connect_error"}


class Recorder:
    """One per client thread: what each of its requests got. outcome[n] is
    the status or an E_* code of request n (id sk<tid>x<n>), gw[n] the
    gateway it went to; `odd` keeps every request whose outcome is not in
    its kind's expected set, with its time span, for attribution."""

    def __init__(self, tid):
        self.tid = tid
        self.outcome = array.array("h")
        self.gw = array.array("b")
        self.counts = collections.Counter()  # (gw, kind, outcome name)
        self.odd = []  # (t0, t1, gw, kind, outcome name, detail, reused)
        self.bad = []  # wrong bodies / request ids: never explained by a fault
        self.unlogged = set()  # requests answered before the gateway read them (no line with our id)
        self.foreign = collections.Counter()  # of those, per gateway

    def next_id(self):
        return f"sk{self.tid}x{len(self.outcome)}"

    def record(self, gwi, kind, outcome, t0, t1, expected, reused, detail="", logged=True):
        if not logged:
            self.unlogged.add(len(self.outcome))
            self.foreign[gwi] += 1
        self.outcome.append(outcome)
        self.gw.append(gwi)
        name = E_NAMES.get(outcome, outcome)
        self.counts[(gwi, kind, name)] += 1
        if name not in expected:
            self.odd.append((t0, t1, gwi, kind, name, detail[:200], reused))


class Soak:
    def __init__(self, args):
        self.args = args
        self.stop = threading.Event()
        self.windows = []  # (kind, gw index or None, t0, t1)
        self.wlock = threading.Lock()
        self.recorders = []
        self.rlock = threading.Lock()
        self.fault_log = collections.Counter()
        self.redis_reconnect = []  # seconds from Redis ready to every worker up again
        self.flood_stats = collections.Counter()
        self.notes = []
        self.t_start = time.monotonic()

    # ---- helpers
    def recorder(self, tid):
        r = Recorder(tid)
        with self.rlock:
            self.recorders.append(r)
        return r

    def window(self, kind, gwi, t0, t1):
        with self.wlock:
            self.windows.append((kind, gwi, t0, t1))

    def connect(self, t, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(10)
        s.connect(("127.0.0.1", t.port))
        return s

    # ---- one request
    def exchange(self, rec, t, sock, reader, kind, reused):
        """Sends one request of `kind` on sock and records its outcome.
        Returns True when the connection can carry another request."""
        r = random
        _, method, mkpath, expected, check = KINDS[kind]
        rid = rec.next_id()
        headers, body = [], b""
        if kind == "quota":
            headers.append(("X-API-Key", t.key))
        elif kind == "quota_badkey":
            headers.append(("X-API-Key", t.key[:-3] + ("AAA" if not t.key.endswith("AAA") else "BBB")))
        elif kind == "echo":
            body = os.urandom(r.randint(1, 4096))
        t0 = time.monotonic()
        try:
            sock.sendall(build_request(method, mkpath(r), rid, headers, body))
            status, hdrs, rbody, closes = reader.response(t0 + CLIENT_TIMEOUT)
        except (NoResponse, BrokenPipeError, ConnectionResetError) as e:
            rec.record(t.idx, kind, E_NORESP, t0, time.monotonic(), expected, reused, str(e))
            return False
        except socket.timeout:  # sendall blocked that long
            rec.record(t.idx, kind, E_TIMEOUT, t0, time.monotonic(), expected, reused, "send")
            return False
        except OSError as e:
            rec.record(t.idx, kind, E_NORESP, t0, time.monotonic(), expected, reused, repr(e))
            return False
        except Truncated as e:
            rec.record(t.idx, kind, E_TRUNC, t0, time.monotonic(), expected, reused, str(e))
            return False
        except Malformed as e:
            rec.record(t.idx, kind, E_MALFORMED, t0, time.monotonic(), expected, reused, str(e))
            return False
        except ClientTimeout:
            rec.record(t.idx, kind, E_TIMEOUT, t0, time.monotonic(), expected, reused)
            return False
        t1 = time.monotonic()
        wrong = self.validate(check, rid, hdrs, rbody, body) if status in expected else None
        # a connection over the limit is answered 503 before its request is
        # read: the id is the gateway's own, and so is its access line
        unread = status == 503 and not reused and hdrs.get("x-request-id") != rid
        if hdrs.get("x-request-id") != rid and not unread:
            wrong = f"X-Request-ID {hdrs.get('x-request-id')!r} for {rid}"
        rec.record(t.idx, kind, status, t0, t1, expected, reused,
                   f"code={hdrs.get('x-error-code')}{' unread' if unread else ''}", logged=not unread)
        if wrong:
            rec.bad.append((t.name, kind, rid, status, wrong))
        return not closes

    @staticmethod
    def validate(check, rid, hdrs, body, sent):
        """None when a body is the one the upstream sends, else why not."""
        if check in ("hello", "quota"):
            try:
                got = json.loads(body).get("request_id")
            except ValueError:
                return f"not JSON: {body[:80]!r}"
            return None if got == rid else f"upstream saw request_id {got!r}, sent {rid}"
        if check == "big":
            return None if body == big_pattern(200000) else f"big body of {len(body)} bytes differs"
        if check == "chunked":
            return None if body == CHUNKED_BODY else f"chunked body {body[:80]!r}"
        if check == "echo":
            return None if body == sent else f"echo of {len(sent)} bytes came back as {len(body)} other bytes"
        if check == "flaky":
            return None if body.startswith(f"ok {rid} ".encode()) else f"flaky body {body[:60]!r} for {rid}"
        return None

    # ---- client threads
    def keepalive_client(self, tid):
        rec = self.recorder(tid)
        rng = random.Random(tid)
        while not self.stop.is_set():
            t = rng.choice(self.targets)
            try:
                sock = self.connect(t)
            except OSError as e:
                kind = rng.choices(KIND_NAMES, KIND_WEIGHTS)[0]
                now = time.monotonic()
                rec.record(t.idx, kind, E_CONNECT, now, now, KINDS[kind][3], False, str(e))
                self.stop.wait(0.05)
                continue
            reader, left, reused = Reader(sock), rng.randint(20, 400), False
            try:
                while left > 0 and not self.stop.is_set():
                    kind = rng.choices(KIND_NAMES, KIND_WEIGHTS)[0]
                    if not self.exchange(rec, t, sock, reader, kind, reused):
                        break
                    reused, left = True, left - 1
                    self.pace(rng)
            finally:
                sock.close()

    def fresh_client(self, tid):
        rec = self.recorder(tid)
        rng = random.Random(tid)
        while not self.stop.is_set():
            t = rng.choice(self.targets)
            kind = rng.choices(KIND_NAMES, KIND_WEIGHTS)[0]
            try:
                sock = self.connect(t)
            except OSError as e:
                now = time.monotonic()
                rec.record(t.idx, kind, E_CONNECT, now, now, KINDS[kind][3], False, str(e))
                self.stop.wait(0.05)
                continue
            try:
                self.exchange(rec, t, sock, Reader(sock), kind, False)
            finally:
                sock.close()
            self.pace(rng)

    def pace(self, rng):
        if self.args.pause_ms:
            time.sleep(rng.uniform(0, 2 * self.args.pause_ms) / 1000.0)

    def slow_client(self, tid):
        """Slow readers, readers that stop, trickled and unfinished heads."""
        rec = self.recorder(tid)
        rng = random.Random(tid)
        while not self.stop.is_set():
            t = rng.choice(self.targets)
            kind = rng.choices(list(SLOW_KINDS), [40, 15, 30, 15])[0]
            expected = SLOW_KINDS[kind]
            rid = rec.next_id()
            t0 = time.monotonic()
            try:
                sock = self.connect(t, rcvbuf=16384 if kind in ("slow_reader", "stall_reader") else None)
            except OSError as e:
                rec.record(t.idx, kind, E_CONNECT, t0, time.monotonic(), expected, False, str(e))
                self.stop.wait(0.5)
                continue
            reader = Reader(sock)
            try:
                if kind == "slow_reader":
                    sock.sendall(build_request("GET", f"/v1/big?bytes={BIG}", rid))
                    res = reader.response(t0 + 120, slow=(16384, 0.02))
                    want = big_pattern(BIG)
                elif kind == "stall_reader":
                    sock.sendall(build_request("GET", f"/v1/big?bytes={STALL_BIG}", rid))
                    res = reader.response(t0 + 120, stall=WRITE_TIMEOUT + 2)
                    want = big_pattern(STALL_BIG)
                elif kind == "trickle_head":
                    req = build_request("GET", "/v1/hello", rid)
                    for i in range(0, len(req), 8):
                        sock.sendall(req[i:i + 8])
                        time.sleep(1.0 / (len(req) / 8))  # the whole head in about a second
                    res = reader.response(t0 + CLIENT_TIMEOUT)
                    want = None
                else:  # trickle_stall: half a head, then nothing
                    req = build_request("GET", "/v1/hello", rid)
                    sock.sendall(req[:len(req) // 2])
                    res = reader.response(t0 + CLIENT_TIMEOUT)
                    want = None
                status, hdrs, body, _ = res
                t1 = time.monotonic()
                unread = kind == "trickle_stall" or (status == 503 and hdrs.get("x-request-id") != rid)
                rec.record(t.idx, kind, status, t0, t1, expected, False, f"code={hdrs.get('x-error-code')}",
                           logged=not unread)
                if status == 200:
                    if want is not None and body != want:
                        rec.bad.append((t.name, kind, rid, status, f"body of {len(body)} bytes differs"))
                    if want is None and json.loads(body).get("request_id") != rid:
                        rec.bad.append((t.name, kind, rid, status, "upstream saw another request id"))
                if not unread and hdrs.get("x-request-id") != rid:
                    rec.bad.append((t.name, kind, rid, status, f"X-Request-ID {hdrs.get('x-request-id')!r}"))
            except (NoResponse, BrokenPipeError, ConnectionResetError) as e:
                rec.record(t.idx, kind, E_NORESP, t0, time.monotonic(), expected, False, str(e))
            except Truncated as e:
                rec.record(t.idx, kind, E_TRUNC, t0, time.monotonic(), expected, False, str(e))
            except Malformed as e:
                rec.record(t.idx, kind, E_MALFORMED, t0, time.monotonic(), expected, False, str(e))
            except ClientTimeout:
                rec.record(t.idx, kind, E_TIMEOUT, t0, time.monotonic(), expected, False)
            except socket.timeout:
                rec.record(t.idx, kind, E_TIMEOUT, t0, time.monotonic(), expected, False, "send")
            except OSError as e:
                rec.record(t.idx, kind, E_NORESP, t0, time.monotonic(), expected, False, repr(e))
            finally:
                sock.close()
            self.stop.wait(rng.uniform(0.2, 1.0))

    # ---- faults
    def fault_schedule(self):
        """(time from the start, name) of every fault of the run."""
        d = self.args.minutes * 60.0
        ev = []

        def every(period, name):
            t = period / 2
            while t < d - 5:
                ev.append((t, name))
                t += period

        every(min(120.0, d / 2), "redis_restart")
        every(min(90.0, d / 2), "flood")
        every(min(75.0, d / 3), "upstream_reset")
        every(min(150.0, d / 2), "fd_squeeze")
        return sorted(ev)

    def faults(self, t_start):
        nflood = nsqueeze = 0
        for at, name in self.fault_schedule():
            if self.stop.wait(max(0.0, t_start + at - time.monotonic())):
                return
            try:
                if name == "redis_restart":
                    self.redis_restart()
                elif name == "flood":
                    self.flood(self.targets[nflood % len(self.targets)])
                    nflood += 1
                elif name == "fd_squeeze":
                    self.squeeze(self.targets[nsqueeze % len(self.targets)])
                    nsqueeze += 1
                else:
                    t0 = time.monotonic()
                    self.upstream.reset_all()
                    # every connection is reset within 0.25 s; a server failing
                    # then may stay down for fail_timeout (1 s)
                    self.window("upstream_reset", None, t0, time.monotonic() + 2.5)
                self.fault_log[name] += 1
            except Exception as e:  # a fault that could not be made is reported, not fatal
                self.notes.append(f"fault {name} at {at:.0f}s failed: {e!r}")

    def redis_restart(self):
        t0 = time.monotonic()
        self.redis.kill()
        self.stop.wait(random.uniform(1.0, 3.0))  # Redis stays down this long: the fault
        self.redis.start()  # waits for PONG and loading:0
        ready = time.monotonic()
        ta = self.targets[0]

        def redis_up():
            try:
                r = conftest.request(ta.admin_port, "GET", "/ready", timeout=5)
                return r.json()["traffic"]["redis"]["state"] == "up"
            except (OSError, ValueError, KeyError, ConnectionError):
                return False

        try:
            self.wait_for(redis_up, 30, what="every worker connected to Redis again")
            self.redis_reconnect.append(time.monotonic() - ready)
        except AssertionError as e:
            self.notes.append(f"redis restart: {e}")
        # a request decided before the reconnect may still be answered by
        # on_failure for up to its timeout (100 ms)
        self.window("redis", ta.idx, t0, time.monotonic() + 1.0)

    def flood(self, t):
        """FLOOD_CONNS idle connections at once, held a few seconds: past
        the gateway's (clamped) connection limit new connections get a 503
        and are closed; the rest stay idle until closed here."""
        t0 = time.monotonic()
        socks = []
        try:
            for _ in range(FLOOD_CONNS):
                try:
                    socks.append(socket.create_connection(("127.0.0.1", t.port), timeout=5))
                except OSError:
                    self.flood_stats[(t.name, "connect_failed")] += 1
            self.stop.wait(5.0)  # the burst's duration: the fault itself
            peak = proc_sample(t.pid)
            if peak:
                self.flood_stats[(t.name, "max_fds_during")] = max(self.flood_stats[(t.name, "max_fds_during")],
                                                                    peak[1])
            for s in socks:
                s.setblocking(False)
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    self.flood_stats[(t.name, "held_idle")] += 1
                    continue
                except OSError:
                    self.flood_stats[(t.name, "reset")] += 1
                    continue
                if data.startswith(b"HTTP/1.1 503 "):
                    self.flood_stats[(t.name, "got_503")] += 1
                elif data:
                    self.flood_stats[(t.name, "got_other")] += 1
                    self.notes.append(f"flood connection on {t.name} got {data[:60]!r}")
                else:
                    self.flood_stats[(t.name, "closed_silently")] += 1
        finally:
            for s in socks:
                s.close()
            self.window("flood", t.idx, t0, time.monotonic() + 1.0)

    def squeeze(self, t):
        """Descriptors run out under a running gateway: its soft open-file
        limit is lowered to what it has open plus SQUEEZE_SPARE (what
        `prlimit --pid` does), idle connections are opened past that, held,
        closed, and the limit is set back. The acceptor must shed (503) or
        back off instead of spinning, and everything must come back."""
        t0 = time.monotonic()
        before = proc_sample(t.pid)
        socks = []
        try:
            resource.prlimit(t.pid, resource.RLIMIT_NOFILE, (before[1] + SQUEEZE_SPARE, NOFILE))
            for _ in range(SQUEEZE_CONNS):
                try:
                    socks.append(socket.create_connection(("127.0.0.1", t.port), timeout=5))
                except OSError:
                    self.flood_stats[(t.name, "squeeze_connect_failed")] += 1
            self.stop.wait(5.0)
            for s in socks:
                s.setblocking(False)
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    self.flood_stats[(t.name, "squeeze_held_idle")] += 1
                    continue
                except OSError:
                    self.flood_stats[(t.name, "squeeze_reset")] += 1
                    continue
                k = "squeeze_got_503" if data.startswith(b"HTTP/1.1 503 ") else "squeeze_got_other" if data \
                    else "squeeze_closed_silently"
                self.flood_stats[(t.name, k)] += 1
        finally:
            for s in socks:
                s.close()
            try:
                resource.prlimit(t.pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
            except OSError as e:
                self.notes.append(f"could not restore {t.name}'s open-file limit: {e!r}")
            self.window("fd_squeeze", t.idx, t0, time.monotonic() + 1.0)

    # ---- sampling
    def sampler(self):
        while not self.stop.is_set():
            now = time.monotonic()
            for t in self.targets:
                s = proc_sample(t.pid)
                if s is None or t.gw.proc.poll() is not None:
                    if t.died is None:
                        t.died = now
                        self.notes.append(f"gateway {t.name} died during the run: exit {t.gw.proc.poll()}")
                    continue
                t.samples.append((now,) + s)
            if any(t.died for t in self.targets):
                self.stop.set()  # nothing more to learn; go to the checks
            self.stop.wait(SAMPLE_EVERY)

    @staticmethod
    def wait_for(pred, timeout, what):
        return conftest.wait_for(pred, timeout, interval=0.1, what=what)


# ------------------------------------------------------------- the checks

def explain(odd, windows, targets):
    """The fault that explains an unexpected outcome, or None."""
    t0, t1, gwi, kind, name, _, _ = odd

    def overlaps(wkind, which=None):
        return any(w[0] == wkind and (which is None or w[1] in (None, which)) and w[2] <= t1 and t0 <= w[3]
                   for w in windows)

    flaky = kind.startswith("flaky_")
    if name == 503:
        if overlaps("flood", gwi):
            return "fd pressure: connection limit"
        if targets[gwi].uses_redis and kind in ("limited", "quota") and overlaps("redis", gwi):
            return "redis down: fail_closed"
    if name in ("no_response", "connect_error") and overlaps("flood", gwi):
        return "fd pressure: connection refused or dropped"
    if name in (502, 503, 504, "no_response", "connect_error", "truncated") and overlaps("fd_squeeze", gwi):
        return "out of descriptors (limit lowered)"
    if flaky and name in (502, "truncated") and overlaps("upstream_reset"):
        return "upstream reset: connection reset in flight"
    return None


def read_access_log(path):
    """{request id: [statuses]} and the lines without a soak id."""
    ids, others = collections.defaultdict(list), []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                d = json.loads(line)
            except ValueError:
                others.append({"unparsable": line[:200]})
                continue
            rid = d.get("request_id", "")
            if rid.startswith("sk") or rid == "final-check":
                ids[rid].append(d.get("status"))
            else:
                others.append(d)
    return ids, others


def fmt_kb(kb):
    return f"{kb / 1024:.1f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-soak", "errgate"))
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "30")))
    ap.add_argument("--keepalive-clients", type=int, default=10)
    ap.add_argument("--fresh-clients", type=int, default=4)
    ap.add_argument("--slow-clients", type=int, default=2)
    ap.add_argument("--pause-ms", type=float, default=1.0, help="mean pause between a thread's requests")
    ap.add_argument("--dir", help="work directory (default: a new one under /tmp, removed when all passes)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        sys.exit(f"soak: no errgate binary at {binary} (build it, or pass --bin)")
    os.environ["ERRGATE_BIN"] = binary
    sys.path.insert(0, INTEGRATION)
    global conftest
    import conftest  # noqa: E402  (reads ERRGATE_BIN when imported)
    from test_redis import Redis  # noqa: E402

    # the flood and the clients need descriptors of their own
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))

    work = args.dir or tempfile.mkdtemp(prefix="errgate-soak-")
    os.makedirs(work, exist_ok=True)
    soak = Soak(args)
    procs = []
    failures = []
    print(f"soak: {args.minutes:g} min, binary {binary}, work directory {work}", flush=True)

    rdir = os.path.join(work, "redis")
    os.makedirs(rdir, exist_ok=True)
    redis = Redis(rdir)
    soak.redis = redis
    demo_port = conftest.free_port()
    demo = subprocess.Popen([binary, "demo-upstream", "--listen", f"127.0.0.1:{demo_port}"],
                            stdout=open(os.path.join(work, "demo.log"), "wb"), stderr=subprocess.STDOUT)
    procs.append(demo)
    conftest.wait_port(demo_port, demo)
    upstream = FaultUpstream()
    soak.upstream = upstream

    targets = []
    for idx, (name, with_redis) in enumerate([("redis", True), ("sqlite", False)]):
        d = os.path.join(work, f"gw-{name}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "admin.token"), "w") as f:
            f.write(ADMIN_TOKEN)
        port, admin = conftest.free_port(), conftest.free_port()
        text = gateway_config(d, port, admin, demo_port, upstream.port, redis.port if with_redis else None)
        # no thread runs yet, so preexec_fn is safe here
        gw = conftest.Gateway(d, text, port, admin, preexec_fn=limit_nofile)
        targets.append(Target(idx, name, gw, with_redis))
    soak.targets = targets
    upstream.start()

    try:
        for t in targets:
            r = conftest.request(t.admin_port, "POST", "/keys", headers={
                "Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
                body=json.dumps({"name": "soak", "scopes": ["soak:read"]}).encode())
            if r.status != 201:
                raise RuntimeError(f"{t.name}: POST /keys answered {r.status}: {r.body[:200]!r}")
            t.key = r.json()["secret"]
            clamp = [l for l in t.gw.log_lines() if l.get("event") == "max_connections_clamped"]
            if clamp:
                print(f"soak: {t.name}: {clamp[0].get('detail')}", flush=True)
            s = proc_sample(t.pid)
            t.baseline = s
            print(f"soak: {t.name} gateway pid {t.pid}, port {t.port}: RSS {fmt_kb(s[0])}, {s[1]} fds before traffic",
                  flush=True)

        # ---- run
        threads = [threading.Thread(target=soak.sampler, name="sampler", daemon=True)]
        tid = 0
        for kind, n, fn in (("ka", args.keepalive_clients, soak.keepalive_client),
                            ("fresh", args.fresh_clients, soak.fresh_client),
                            ("slow", args.slow_clients, soak.slow_client)):
            for _ in range(n):
                threads.append(threading.Thread(target=fn, args=(tid,), name=f"{kind}{tid}", daemon=True))
                tid += 1
        t_start = soak.t_start = time.monotonic()
        threads.append(threading.Thread(target=soak.faults, args=(t_start,), name="faults", daemon=True))
        for th in threads:
            th.start()
        end = t_start + args.minutes * 60
        last_report = t_start
        while time.monotonic() < end and not soak.stop.is_set():
            soak.stop.wait(min(5.0, max(0.0, end - time.monotonic())))
            if time.monotonic() - last_report >= 60:
                last_report = time.monotonic()
                n = sum(len(r.outcome) for r in soak.recorders)
                line = ", ".join(f"{t.name} RSS {fmt_kb(t.samples[-1][1])} fds {t.samples[-1][2]}"
                                 for t in targets if t.samples)
                print(f"soak: {(last_report - t_start) / 60:.0f} min: {n} requests; {line}", flush=True)
        soak.stop.set()
        t_traffic_end = time.monotonic()
        for th in threads:
            th.join(CLIENT_TIMEOUT + 130)  # a slow reader's own deadline
            if th.is_alive():
                failures.append(f"client thread {th.name} did not finish (wedged on a response?)")

        # ---- settle: descriptors near the baseline and no change for longer
        # than keepalive_timeout (10 s), so pooled upstream connections are gone
        settle = {}
        for t in targets:
            if t.gw.proc.poll() is not None:
                failures.append(f"{t.name}: the gateway is not running (exit {t.gw.proc.returncode})")
                continue
            hist = []

            def settled(t=t, hist=hist):
                s = proc_sample(t.pid)
                if s is None:
                    return False
                hist.append(s[1])
                return s[1] <= t.baseline[1] + 20 and len(hist) >= 12 and len(set(hist[-12:])) == 1

            try:
                conftest.wait_for(settled, 90, interval=1.0, what=f"{t.name}'s descriptors to come back")
            except AssertionError as e:
                failures.append(f"{t.name}: {e} (baseline {t.baseline[1]}, now {hist[-1] if hist else '?'})")
            settle[t.name] = time.monotonic() - t_traffic_end

        # ---- alive, answers, idle
        for t in targets:
            if t.gw.proc.poll() is not None:
                continue
            try:
                r = conftest.request(t.port, "GET", "/v1/hello", headers={"X-Request-ID": "final-check"})
                if r.status != 200 or r.json().get("request_id") != "final-check":
                    failures.append(f"{t.name}: GET /v1/hello after the run answered {r.status}")
                last = []

                def ready(t=t, last=last):
                    last[:] = [conftest.request(t.admin_port, "GET", "/ready")]
                    return last[0].status == 200

                try:
                    conftest.wait_for(ready, 30, interval=0.5, what=f"{t.name}'s /ready to answer 200")
                except AssertionError:
                    pass
                h = last[0]
                if h.status != 200:
                    failures.append(f"{t.name}: /ready after the run answered {h.status}: {h.body[:300]!r}")
                elif t.uses_redis and h.json()["traffic"]["redis"]["state"] != "up":
                    failures.append(f"{t.name}: Redis not up after the run: {h.json()['traffic']}")
            except (OSError, ConnectionError, ValueError) as e:
                failures.append(f"{t.name}: no answer after the run: {e!r}")
            a = proc_sample(t.pid)
            time.sleep(3.0)  # a measuring interval, not a wait for a state
            b = proc_sample(t.pid)
            if a and b:
                busy = (b[2] - a[2]) / 3.0
                t.idle_cpu = busy
                if busy > 0.2:
                    failures.append(f"{t.name}: {busy:.0%} of a core while idle after the run (spinning?)")
            t.end = b or a

        # ---- SIGTERM exits 0
        for t in targets:
            if t.gw.proc.poll() is None:
                code = t.gw.stop()
                t.exit = code
                if code != 0:
                    failures.append(f"{t.name}: exit {code} after SIGTERM")
            else:
                t.exit = t.gw.proc.returncode
    finally:
        soak.stop.set()
        for t in targets:
            t.gw.kill()
        upstream.stop()
        if redis.proc.poll() is None:
            redis.kill()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except Exception:
                    p.kill()

    # ---- requests and the access log
    totals = collections.Counter()
    per_gw = collections.defaultdict(collections.Counter)
    per_kind_gw = collections.defaultdict(collections.Counter)
    for r in soak.recorders:
        for (gwi, kind, name), n in r.counts.items():
            per_gw[gwi][name] += n
            per_kind_gw[(gwi, kind)][name] += n
            totals["requests"] += n
    explained = collections.Counter()
    unexplained = []
    for r in soak.recorders:
        for o in r.odd:
            why = explain(o, soak.windows, targets)
            if why:
                explained[(targets[o[2]].name, o[4], why)] += 1
            else:
                unexplained.append(o)
    if unexplained:
        failures.append(f"{len(unexplained)} request(s) got an outcome no fault explains")
    bad = [b for r in soak.recorders for b in r.bad]
    if bad:
        failures.append(f"{len(bad)} response(s) with a wrong body or request id")

    log_figures = {}
    for t in targets:
        ids, others = read_access_log(t.access_log)
        got = {"final-check": 200}  # id -> status, requests to this gateway that got a whole response
        sent = {"final-check"}
        unread = set()
        for r in soak.recorders:
            for n, (o, g) in enumerate(zip(r.outcome, r.gw)):
                if g != t.idx:
                    continue
                rid = f"sk{r.tid}x{n}"
                sent.add(rid)
                if n in r.unlogged:
                    unread.add(rid)
                elif o > 0:
                    got[rid] = o
        missing = [rid for rid in got if rid not in ids]
        wrong = [(rid, got[rid], ids[rid]) for rid in got if rid in ids and ids[rid] != [got[rid]]]
        dup = [rid for rid, v in ids.items() if len(v) > 1]
        stray = [rid for rid in ids if rid not in sent or rid in unread]
        failed_logged = [rid for rid in ids if rid in sent and rid not in got and rid not in unread]
        flood503 = sum(v for (name, k), v in soak.flood_stats.items() if name == t.name and k in ("got_503", "squeeze_got_503"))
        stalled = sum(r.foreign[t.idx] for r in soak.recorders)  # 408s and 503s to unread requests
        other_bad = [d for d in others if d.get("status") not in (503, 408)]
        log_figures[t.name] = (len(got), sum(len(v) for v in ids.values()), len(others), flood503 + stalled,
                               len(failed_logged))
        for what, items in (("responses without an access line", missing),
                            ("access lines with another status than the client got", wrong),
                            ("request ids logged twice", dup),
                            ("access lines for ids never sent, or for requests answered unread", stray),
                            ("gateway-made access lines that are not 503/408", other_bad)):
            if items:
                failures.append(f"{t.name}: {len(items)} {what}, e.g. {items[:3]}")
        if len(others) > flood503 + stalled:
            failures.append(f"{t.name}: {len(others)} access lines without a client id, more than the "
                            f"{flood503} refused flood connections and {stalled} requests answered unread")

    # ---- samples
    def thirds(t):
        s = t.samples
        if len(s) < 6:
            return None
        t0 = s[0][0]
        span = s[-1][0] - t0
        warm = min(120.0, 0.2 * span)
        rest = [x for x in s if x[0] - t0 >= warm]
        k = len(rest) // 3
        if k < 2:
            return None
        first = sum(x[1] for x in rest[:k]) / k
        last = sum(x[1] for x in rest[-k:]) / k
        return first, last

    rss_figures = {}
    for t in targets:
        th = thirds(t)
        rss_figures[t.name] = th
        if th is None:
            failures.append(f"{t.name}: too few samples to judge RSS")
        elif th[1] > th[0] * 1.25:
            failures.append(f"{t.name}: RSS grew {th[1] / th[0] - 1:.0%} from the first third to the last "
                            f"(after warm-up): {fmt_kb(th[0])} -> {fmt_kb(th[1])}")
        if t.died:
            failures.append(f"{t.name}: died during the run")

    # ---- summary
    out = []
    P = out.append
    P("")
    P(f"== errgate soak: {args.minutes:g} min, {totals['requests']} requests "
      f"({totals['requests'] / (args.minutes * 60):.0f}/s), faults: "
      + ", ".join(f"{k} x{v}" for k, v in sorted(soak.fault_log.items())))
    hdr = f"{'':34}" + "".join(f"{t.name:>18}" for t in targets)
    P(hdr)

    def row(label, vals):
        P(f"{label:34}" + "".join(f"{v:>18}" for v in vals))

    row("requests", [sum(per_gw[t.idx].values()) for t in targets])
    names = sorted({n for t in targets for n in per_gw[t.idx]}, key=lambda x: (isinstance(x, str), str(x)))
    for n in names:
        row(f"  {n}", [per_gw[t.idx].get(n, 0) for t in targets])
    row("access lines (client ids)", [log_figures[t.name][1] for t in targets])
    row("responses the clients got", [log_figures[t.name][0] for t in targets])
    row("  + cut/failed requests logged", [log_figures[t.name][4] for t in targets])
    row("access lines (gateway ids)", [log_figures[t.name][2] for t in targets])
    row("  bound: flood 503s + unread", [log_figures[t.name][3] for t in targets])
    row("RSS before traffic", [fmt_kb(t.baseline[0]) for t in targets])
    row("RSS first/last third avg", [f"{rss_figures[t.name][0] / 1024:.1f}/{rss_figures[t.name][1] / 1024:.1f}"
                                     if rss_figures[t.name] else "-" for t in targets])
    row("RSS max", [fmt_kb(max(x[1] for x in t.samples)) if t.samples else "-" for t in targets])
    row("RSS end (settled)", [fmt_kb(t.end[0]) if getattr(t, "end", None) else "-" for t in targets])
    row("fds before traffic", [t.baseline[1] for t in targets])
    row("fds max (samples)", [max(x[2] for x in t.samples) if t.samples else "-" for t in targets])
    row("fds max (during a flood)", [soak.flood_stats.get((t.name, "max_fds_during"), "-") for t in targets])
    row("fds end (settled)", [t.end[1] if getattr(t, "end", None) else "-" for t in targets])
    row("settle time (s)", [f"{settle.get(t.name, float('nan')):.1f}" for t in targets])
    row("threads", [t.samples[-1][4] if t.samples else "-" for t in targets])
    row("CPU seconds (user+sys)", [f"{t.end[2]:.1f}" if getattr(t, "end", None) else "-" for t in targets])
    row("CPU ms per 1000 requests", [f"{1e6 * t.end[2] / max(1, sum(per_gw[t.idx].values())):.0f}"
                                     if getattr(t, "end", None) else "-" for t in targets])
    row("CPU idle after (share of a core)", [f"{getattr(t, 'idle_cpu', float('nan')):.3f}" for t in targets])
    row("exit after SIGTERM", [getattr(t, "exit", "-") for t in targets])
    for k in ("held_idle", "got_503", "reset", "closed_silently", "got_other", "connect_failed",
              "squeeze_held_idle", "squeeze_got_503", "squeeze_reset", "squeeze_closed_silently",
              "squeeze_got_other", "squeeze_connect_failed"):
        row(f"flood: {k}", [soak.flood_stats.get((t.name, k), 0) for t in targets])
    if soak.redis_reconnect:
        P(f"redis restarts: {len(soak.redis_reconnect)}, every worker up again after Redis answered: "
          f"max {max(soak.redis_reconnect):.2f} s, mean {sum(soak.redis_reconnect) / len(soak.redis_reconnect):.2f} s")
    P("scripted upstream: " + ", ".join(f"{k} {v}" for k, v in sorted(upstream.counts.items())))
    P("outcomes outside the expected set, explained by a fault:")
    for (gname, name, why), n in sorted(explained.items(), key=str):
        P(f"  {gname:8} {str(name):14} {n:7}  {why}")
    for t in targets:
        P(f"per kind ({t.name}):")
        for kind in KIND_NAMES + list(SLOW_KINDS):
            c = per_kind_gw.get((t.idx, kind))
            if c:
                P(f"  {kind:18} " + ", ".join(f"{k}: {v}" for k, v in sorted(c.items(), key=str)))
    errlog = collections.Counter()
    for t in targets:
        for l in t.gw.log_lines():
            errlog[(t.name, l.get("kind"), l.get("event") or l.get("code"))] += 1 + (l.get("suppressed") or 0)
    P("gateway error log (lines + suppressed):")
    for (gname, kind, what), n in sorted(errlog.items(), key=str):
        P(f"  {gname:8} {str(kind):7} {str(what):28} {n}")
    for n in soak.notes:
        P(f"note: {n}")
    for o in unexplained[:20]:
        t0, t1, gwi, kind, name, detail, reused = o
        P(f"UNEXPLAINED: {targets[gwi].name} {kind} -> {name} ({detail}) at {t0 - soak.t_start:.1f}s "
          f"for {t1 - t0:.2f}s{' on a reused connection' if reused else ''}")
    for b in bad[:20]:
        P(f"WRONG: {b}")
    for f in failures:
        P(f"FAIL: {f}")
    P("soak: PASS" if not failures else f"soak: FAIL ({len(failures)} check(s))")
    print("\n".join(out), flush=True)
    with open(os.path.join(work, "summary.txt"), "w") as f:
        f.write("\n".join(out) + "\n")
        f.write("samples (t, rss_kb, fds, cpu_s, threads):\n")
        for t in targets:
            for s in t.samples:
                f.write(f"{t.name} {s[0]:.1f} {s[1]} {s[2]} {s[3]:.2f} {s[4]}\n")
    if not failures and not args.keep and not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"soak: logs and samples kept in {work}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
