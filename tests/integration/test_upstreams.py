"""Upstream pools: active health checks beside the passive ones, and the
balancing policies (round_robin, least_conn, weighted, hash).

Every wait polls the gateway's own answer (/ready, the upstreams' counts)
with a deadline; no fixed sleeps. Probe intervals are 100 ms."""
import base64
import hashlib
import hmac
import json
import signal
import threading
import time

import pytest

from conftest import (Gateway, HeldUpstream, ThreadedUpstream, QuietHandler, _Server, free_port, request,
                      wait_for)


class Named:
    """A Python upstream answering its name for every path but its health
    path, which answers `health` (200 unless a test changes it); counts the
    requests it served, health probes apart."""

    def __init__(self, name, port=0):
        self.name, self.health, self.hits, self.probes = name, 200, 0, 0
        self.lock = threading.Lock()
        outer = self

        class H(QuietHandler):
            def do_GET(self):
                if self.path == "/healthz":
                    with outer.lock:
                        outer.probes += 1
                    status, body = outer.health, b"ok"
                else:
                    with outer.lock:
                        outer.hits += 1
                    status, body = 200, outer.name.encode()
                # head and body in one write: a probe closes once it has the status line
                head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                try:
                    self.wfile.write(head + body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.up = ThreadedUpstream.__new__(ThreadedUpstream)
        self.up.httpd = _Server(("127.0.0.1", port), H)
        self.up.httpd.daemon_threads = True
        self.port = self.up.httpd.server_address[1]
        threading.Thread(target=self.up.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def count(self):
        with self.lock:
            return self.hits

    def close(self):
        self.up.close()


def config(port, admin, upstream, auth=""):
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
log: {{ access: stderr }}
{auth}
upstreams:
  pool:
{upstream}
routes:
  - path: /
    upstream: pool
    {"auth: jwt" if auth else ""}
"""


@pytest.fixture
def start(tmp_path):
    started = []

    def run(upstream_yaml, auth=""):
        port, admin = free_port(), free_port()
        gw = Gateway(str(tmp_path), config(port, admin, upstream_yaml, auth), port, admin)
        started.append(gw)
        return gw

    yield run
    for gw in started:
        code = gw.stop()
        assert code == 0, f"gateway exited with {code}; log:\n" + open(gw.log, errors="replace").read()[-4000:]


def ready(gw):
    r = request(gw.admin_port, path="/ready")
    return r.status, r.json()


def server(gw, addr):
    return next(s for s in ready(gw)[1]["upstreams"]["pool"]["servers"] if s["address"] == addr)


def get(gw, path="/x", headers=None):
    r = request(gw.port, path=path, headers=headers)
    assert r.status == 200, (r.status, r.body)
    return r.body.decode()


def test_health_check_takes_a_failing_server_out_and_back(start):
    a, b = Named("a"), Named("b")
    baddr = f"127.0.0.1:{b.port}"
    try:
        gw = start(f"""    servers: ["127.0.0.1:{a.port}", "{baddr}"]
    max_fails: 1000
    health_check: {{ path: /healthz, interval: 100ms, timeout: 500ms, expect: [2xx], rise: 2, fall: 3 }}""")
        wait_for(lambda: server(gw, baddr)["check"]["state"] == "passing", 10, what="b's first passing probe")
        assert server(gw, baddr)["state"] == "up"
        b.health = 503
        # failing first (probes failing, still in rotation), then out after `fall` probes
        st = wait_for(lambda: (lambda s: s if s["state"] == "down" else None)(server(gw, baddr)), 10,
                      interval=0.02, what="b out of rotation")
        assert st["reason"] == "health_check"
        assert st["check"]["state"] == "failing"
        assert st["check"]["fails"] >= 3
        assert "503" in st["check"]["last"]
        status, doc = ready(gw)
        assert status == 200 and doc["upstreams"]["pool"]["state"] == "up"  # a is still there
        # out of rotation: every request answers, none of them from b
        before = b.count()
        assert {get(gw) for _ in range(20)} == {"a"}
        assert b.count() == before
        h = request(gw.admin_port, path="/health").json()
        assert h["status"] == "degraded" and h["upstreams"]["pool"]["servers_up"] == 1
        # back after `rise` passing probes
        b.health = 200
        wait_for(lambda: server(gw, baddr)["state"] == "up", 10, interval=0.02, what="b back in rotation")
        assert server(gw, baddr)["check"]["passes"] >= 2
        assert {get(gw) for _ in range(20)} == {"a", "b"}
        lines = gw.events("upstream_server_down") + gw.events("upstream_server_up")
        assert [l["event"] for l in lines] == ["upstream_server_down", "upstream_server_up"]
        assert lines[0]["server"] == baddr
    finally:
        a.close()
        b.close()


def test_a_server_that_stops_answering_costs_no_request(start):
    a, b = Named("a"), Named("b")
    baddr, bport = f"127.0.0.1:{b.port}", b.port
    try:
        gw = start(f"""    servers: ["127.0.0.1:{a.port}", "{baddr}"]
    retries: 1
    max_fails: 1000
    health_check: {{ interval: 100ms, timeout: 300ms, rise: 2, fall: 2 }}""")
        wait_for(lambda: server(gw, baddr)["check"]["state"] == "passing", 10, what="b's first passing probe")
        b.close()  # refused from now on: requests to b are retried on a
        deadline_hits = []
        while server(gw, baddr)["state"] != "down":
            deadline_hits.append(get(gw))  # each must answer 200 (get asserts)
            assert len(deadline_hits) < 5000, "b never went down"
        assert set(deadline_hits) <= {"a"}
        assert server(gw, baddr)["reason"] == "health_check"
        assert "refused" in server(gw, baddr)["check"]["last"]
        b = Named("b", port=bport)  # the same address again
        wait_for(lambda: server(gw, baddr)["state"] == "up", 10, interval=0.02, what="b back after rise")
        wait_for(lambda: get(gw) == "b", 5, interval=0, what="a request reaching b again")
    finally:
        a.close()
        b.close()


def test_ready_says_not_ready_when_every_server_fails_its_checks(start):
    a = Named("a")
    try:
        gw = start(f"""    servers: ["127.0.0.1:{a.port}"]
    health_check: {{ interval: 100ms, timeout: 500ms, expect: 204, rise: 1, fall: 1 }}""")
        # 200 is not the 204 expected: out after one probe
        wait_for(lambda: ready(gw)[0] == 503, 10, interval=0.02, what="/ready 503")
        status, doc = ready(gw)
        assert doc["status"] == "not_ready"
        assert doc["upstreams"]["pool"]["state"] == "down"
        s = doc["upstreams"]["pool"]["servers"][0]
        assert s["state"] == "down" and s["reason"] == "health_check" and s["check"]["state"] == "failing"
    finally:
        a.close()


def test_weighted_three_to_one(start):
    a, b = Named("a"), Named("b")
    try:
        gw = start(f"""    balance: weighted
    servers: [{{ address: "127.0.0.1:{a.port}", weight: 3 }}, "127.0.0.1:{b.port} weight=1"]""")
        got = [get(gw) for _ in range(400)]
        # 3:1 of 400 is 300:100; allow 5% of the total either way
        tol = 400 * 0.05
        assert abs(got.count("a") - 300) <= tol and abs(got.count("b") - 100) <= tol, (got.count("a"), got.count("b"))
        weights = {s["address"]: s["weight"] for s in ready(gw)[1]["upstreams"]["pool"]["servers"]}
        assert weights == {f"127.0.0.1:{a.port}": 3, f"127.0.0.1:{b.port}": 1}
    finally:
        a.close()
        b.close()


def test_hash_on_a_header_keeps_a_client_on_one_server(start):
    ups = [Named(n) for n in "abc"]
    try:
        servers = ", ".join(f'"127.0.0.1:{u.port}"' for u in ups)
        gw = start(f"""    balance: hash
    hash_on: header:X-User
    health_check: {{ interval: 100ms, rise: 1, fall: 1 }}
    servers: [{servers}]""")
        where = {}
        for user in range(30):
            seen = {get(gw, headers={"X-User": f"user-{user}"}) for _ in range(4)}
            assert len(seen) == 1, (user, seen)
            where[user] = seen.pop()
        # 30 users over 3 servers: none on a has probability (2/3)**30, 5e-6
        assert len(set(where.values())) >= 2 and "a" in where.values()
        # one server out (failing its checks): only its users move
        ups[0].health = 503
        aaddr = f"127.0.0.1:{ups[0].port}"
        wait_for(lambda: server(gw, aaddr)["state"] == "down", 10, interval=0.02, what="a out of rotation")
        for user, name in where.items():
            now = get(gw, headers={"X-User": f"user-{user}"})
            if name != "a":
                assert now == name, (user, name, now)
            else:
                assert now != "a"
        # and back: every user where it was
        ups[0].health = 200
        wait_for(lambda: server(gw, aaddr)["state"] == "up", 10, interval=0.02, what="a back")
        assert {u: get(gw, headers={"X-User": f"user-{u}"}) for u in where} == where
    finally:
        for u in ups:
            u.close()


def test_least_conn_avoids_the_busy_server(start):
    held, b = HeldUpstream(body=b"held"), Named("b")
    results = []
    try:
        gw = start(f"""    balance: least_conn
    timeout: 60s
    servers: ["127.0.0.1:{held.port}", "127.0.0.1:{b.port}"]""")

        def one():
            results.append(request(gw.port, path="/x", timeout=60).body)

        # requests go out until one is held at the first server (an idle tie goes either way)
        threads = []
        while held.arrived == 0:
            t = threading.Thread(target=one)
            t.start()
            threads.append(t)
            wait_for(lambda: held.arrived > 0 or len(results) == len(threads), 10, interval=0.01,
                     what="a request answered or held")
            assert len(threads) < 50
        # held has one in flight, b none: every new request goes to b. A request
        # b answered leaves b's count a moment after its answer can reach the
        # client (another worker may pick in that moment): wait for b's 0 first
        baddr = f"127.0.0.1:{b.port}"
        got = set()
        for _ in range(20):
            wait_for(lambda: server(gw, baddr).get("in_flight", 0) == 0, 10, interval=0.01,
                     what="b's earlier request released")
            got.add(get(gw))
        assert got == {"b"}
        assert held.arrived == 1
        assert server(gw, f"127.0.0.1:{held.port}")["in_flight"] == 1
        held.release()
        for t in threads:
            t.join(30)
        assert b"held" in results
    finally:
        held.close()
        b.close()


SECRET = b"upstream-tests-hs256-secret-0123456789abcdef"


def jwt(sub):
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def test_hash_on_the_principal(start, tmp_path):
    ups = [Named(n) for n in "ab"]
    (tmp_path / "jwt.secret").write_bytes(SECRET)
    try:
        servers = ", ".join(f'"127.0.0.1:{u.port}"' for u in ups)
        gw = start(f"""    balance: hash
    hash_on: principal
    servers: [{servers}]""", auth=f"auth: {{ jwt: {{ secret_file: {tmp_path}/jwt.secret }} }}")
        where = {}
        for user in range(20):
            tok = jwt(f"user-{user}")
            # the same subject from anywhere (another header, another connection): one server
            seen = {get(gw, headers={"Authorization": f"Bearer {tok}", "X-Other": str(i)}) for i in range(4)}
            assert len(seen) == 1, (user, seen)
            where[user] = seen.pop()
        # 20 subjects over 2 servers: all on one has probability 2 / 2**20
        assert set(where.values()) == {"a", "b"}
    finally:
        for u in ups:
            u.close()


def test_a_probe_that_gets_no_answer_times_out(start):
    a, held = Named("a"), HeldUpstream()
    haddr = f"127.0.0.1:{held.port}"
    try:
        gw = start(f"""    servers: ["127.0.0.1:{a.port}", "{haddr}"]
    health_check: {{ interval: 100ms, timeout: 150ms, rise: 1, fall: 2 }}""")
        st = wait_for(lambda: (lambda s: s if s["state"] == "down" else None)(server(gw, haddr)), 10,
                      interval=0.02, what="the silent server out of rotation")
        assert st["reason"] == "health_check" and st["check"]["last"] == "GET /healthz: timed out"
        assert {get(gw) for _ in range(10)} == {"a"}
        assert held.arrived >= 2  # the probes reached it; no request did (they are all a's)
        assert all(p == "/healthz" for p in held.paths)
    finally:
        a.close()
        held.close()


def test_a_reload_starts_the_checks(start):
    a, b = Named("a"), Named("b")
    baddr = f"127.0.0.1:{b.port}"
    try:
        gw = start(f"""    servers: ["127.0.0.1:{a.port}", "{baddr}"]""")
        b.health = 503
        assert "check" not in server(gw, baddr) and server(gw, baddr)["state"] == "up"
        gw.rewrite(config(gw.port, gw.admin_port, f"""    servers: ["127.0.0.1:{a.port}", "{baddr}"]
    health_check: {{ interval: 100ms, rise: 1, fall: 1 }}"""))
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        wait_for(lambda: server(gw, baddr)["state"] == "down", 10, interval=0.02, what="b down after the reload")
        assert server(gw, baddr)["check"]["state"] == "failing"
    finally:
        a.close()
        b.close()
