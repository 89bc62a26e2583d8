"""Redis backend (issue 5): several gateway processes on one Redis enforce one
limit exactly; Redis killed mid-run in fail_open and fail_closed; the gateway
reconnects by itself, also after a kill mid-burst (20 in a row), a hang, and a
restart still loading its data (issue 20); concurrency slots held in Redis are
released. Each test starts its own redis-server on a free port and waits for
it to answer PONG, not for its port."""
import json
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, Gateway, free_port, read_response, request

ADMIN_TOKEN = "admin-token-for-the-redis-tests-0123"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"

pytestmark = pytest.mark.skipif(not shutil.which("redis-server") and not shutil.which("/usr/bin/redis-server"),
                                reason="redis-server is not installed")


class Redis:
    def __init__(self, tmp, port=None, durable=False):
        self.port = port or free_port()
        self.tmp = tmp
        self.durable = durable  # an append-only file: the data outlives a kill
        self.start()

    def start(self, *extra, wait=True):
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else ["--appendonly", "no"]
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      *aof, "--dir", self.tmp, "--enable-debug-command", "local", *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10.0):
        """Until Redis answers PING with PONG and has loaded its data: an open
        port is not enough (a restart from an append-only file answers
        LOADING to every command while it reads the file)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                if self.command("PING") == "PONG" and "loading:0" in self.command("INFO", "persistence"):
                    return
            except (OSError, RuntimeError):  # not listening yet, or LOADING
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis on port {self.port} did not become ready")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def command(self, *args):
        """One command over RESP; returns the decoded reply (int, str, None or list)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            out = f"*{len(args)}\r\n".encode()
            for a in args:
                a = str(a).encode()
                out += f"${len(a)}\r\n".encode() + a + b"\r\n"
            s.sendall(out)
            f = s.makefile("rb")
            return self._read(f)

    def _read(self, f):
        line = f.readline().rstrip(b"\r\n")
        t, rest = line[:1], line[1:]
        if t == b":":
            return int(rest)
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = f.read(n + 2)[:n]
            return data.decode()
        if t == b"*":
            return [self._read(f) for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")


def config(tmp, port, admin, upstream, redis_port, on_failure="fail_closed", timeout="100ms", workers=2):
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: {workers}
errors: {{ dialect: flat-snake, negotiate: false }}
log: {{ access: stderr }}
store: {{ backend: sqlite, path: {tmp}/keys.db }}
auth: {{ admin_token_file: {tmp}/admin.token }}
redis: {{ address: "127.0.0.1:{redis_port}", timeout: {timeout}, on_failure: {on_failure} }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream}"], timeout: 10s }}
routes:
  - {{ path: /shared/, upstream: demo, rate_limit: {{ limit: 5, window: 1m, by: route }} }}
  - {{ path: /ip/, upstream: demo, rate_limit: {{ limit: 1000, window: 1m, by: ip }} }}
  - {{ path: /slow/, upstream: demo, concurrency: 1 }}
  - {{ path: /day/, upstream: demo, auth: api_key, quota: {{ limit: 4, period: day }} }}
  - {{ path: /paid/, upstream: demo, auth: api_key, credits: {{ cost: 2, purchase_url: "https://example.com/buy" }} }}
  - {{ path: /load/, upstream: demo, rate_limit: {{ limit: 1000000, window: 1m, by: ip }} }}
  - {{ path: /count/, upstream: demo, rate_limit: {{ limit: 1000000, window: 1m, by: route }} }}
  - {{ path: /race/, upstream: demo, auth: api_key, quota: {{ limit: 50, period: month }} }}
  - {{ path: /burst/, upstream: demo, rate_limit: {{ limit: 1000, window: 1h, by: route }} }}
"""


def gateway(tmp, upstream, redis_port, **kw):
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    port, admin = free_port(), free_port()
    return Gateway(tmp, config(tmp, port, admin, upstream, redis_port, **kw), port, admin)


def get(gw, path, key=None):
    return request(gw.port, "GET", path, headers={"X-API-Key": key} if key else {})


def ready(gw):
    return request(gw.admin_port, "GET", "/ready").json()["traffic"]["redis"]


def wait_until(pred, timeout=10.0, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return False


@pytest.fixture
def redis(tmp_path):
    r = Redis(str(tmp_path))
    yield r
    if r.proc.poll() is None:
        r.kill()


def test_two_gateways_on_one_redis_enforce_one_limit_exactly(tmp_path, upstream_port, redis):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    # exactness, not fail-closed, is under test: a timeout no loaded CI
    # machine reaches (a 100 ms one gave a 503 once under load 20)
    a = gateway(str(a_dir), upstream_port, redis.port, timeout="2s")
    b = gateway(str(b_dir), upstream_port, redis.port, timeout="2s")
    try:
        results = []
        lock = threading.Lock()

        def hit(gw):
            s = get(gw, "/shared/x").status
            with lock:
                results.append(s)

        threads = [threading.Thread(target=hit, args=(a if i % 2 else b,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count(200) == 5 and results.count(429) == 11
        r = get(a, "/shared/x")
        assert r.status == 429 and r.json()["error"] == "rate_limit_exceeded"
        assert r.header("X-RateLimit-Remaining") == "0"
        assert ready(a)["state"] == "up"
    finally:
        assert a.stop() == 0
        assert b.stop() == 0


def test_redis_killed_fail_closed_then_reconnects(tmp_path, upstream_port, redis):
    gw = gateway(str(tmp_path), upstream_port, redis.port, on_failure="fail_closed")
    try:
        assert get(gw, "/ip/x").status == 200
        redis.kill()
        t0 = time.time()
        r = get(gw, "/ip/x")
        assert time.time() - t0 < 2.0  # bounded, never a hang
        assert r.status == 503 and r.json()["error"] == "service_unavailable"
        assert int(r.header("Retry-After")) >= 1
        assert r.header("X-Request-ID")
        assert ready(gw)["state"] == "down" and ready(gw)["failures"] >= 1
        redis.start()
        # back by itself, without a restart or a reload
        assert wait_until(lambda: get(gw, "/ip/x").status == 200)
        # every worker, even one no request reached, is connected again
        assert wait_until(lambda: ready(gw)["state"] == "up", timeout=5)
        logged = [x for x in gw.log_lines() if x.get("why") == "redis unavailable"]
        assert logged and logged[0]["code"] == "fail_closed", "the failure is logged"
    finally:
        assert gw.stop() == 0


def test_redis_killed_fail_open_serves_and_counts(tmp_path, upstream_port, redis):
    gw = gateway(str(tmp_path), upstream_port, redis.port, on_failure="fail_open")
    try:
        assert [get(gw, "/shared/x").status for _ in range(6)] == [200] * 5 + [429]
        redis.kill()
        # unlimited while Redis is away: served, logged, counted
        assert [get(gw, "/shared/x").status for _ in range(8)] == [200] * 8
        assert ready(gw)["failures"] >= 8
        logged = [x for x in gw.log_lines() if x.get("why") == "redis unavailable"]
        assert logged and logged[0]["code"] == "fail_open", "the failure is logged"
        redis.start()  # empty: a fresh window
        assert wait_until(lambda: get(gw, "/ip/x").status == 200 and ready(gw)["state"] == "up")
        assert [get(gw, "/shared/x").status for _ in range(6)] == [200] * 5 + [429]
    finally:
        assert gw.stop() == 0


def test_a_slow_redis_times_out_within_the_bound(tmp_path, upstream_port, redis):
    gw = gateway(str(tmp_path), upstream_port, redis.port, on_failure="fail_closed", timeout="100ms")
    try:
        assert get(gw, "/ip/x").status == 200
        # DEBUG SLEEP blocks the whole server for a second
        t = threading.Thread(target=lambda: redis.command("DEBUG", "SLEEP", "1.5"))
        t.start()
        time.sleep(0.2)
        t0 = time.time()
        r = get(gw, "/ip/x")
        took = time.time() - t0
        t.join()
        assert r.status == 503 and took < 1.0
        assert wait_until(lambda: get(gw, "/ip/x").status == 200)
    finally:
        assert gw.stop() == 0


def test_concurrency_slots_in_redis_are_released(tmp_path, upstream_port, redis):
    gw = gateway(str(tmp_path), upstream_port, redis.port)
    try:
        slow = threading.Thread(target=lambda: get(gw, "/slow/x?ms=3000"))
        slow.start()

        def held():
            return sum(redis.command("ZCARD", k) for k in redis.command("KEYS", "errgate:c:*"))

        assert wait_until(lambda: held() == 1, timeout=5)  # the slow request holds its slot
        r = get(gw, "/slow/x")
        assert r.status == 429 and r.json()["error"] == "concurrent_limit"
        slow.join()
        # the release is sent as the answer goes out, on that worker's connection:
        # another worker's next decision may come first
        assert wait_until(lambda: held() == 0, timeout=5)
        assert get(gw, "/slow/x").status == 200
        # 200 clients that go away mid-request (RST) leave no slot behind
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", gw.port))
            s.sendall(b"GET /slow/x?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()

        assert wait_until(lambda: held() == 0, timeout=5)
        time.sleep(0.5)
        assert held() == 0
        assert get(gw, "/slow/x").status == 200
    finally:
        assert gw.stop() == 0


def test_a_release_while_redis_is_down_is_sent_once_it_is_back(tmp_path, upstream_port):
    redis = Redis(str(tmp_path), durable=True)
    # data that takes seconds to load back (with a delay per key, below): the
    # gateway connects while Redis still answers LOADING to every command
    redis.command("DEBUG", "POPULATE", "12000")
    redis.command("BGREWRITEAOF")
    assert wait_until(lambda: "aof_rewrite_in_progress:0" in redis.command("INFO", "persistence")
                      and "aof_rewrite_scheduled:0" in redis.command("INFO", "persistence"))
    gw = gateway(str(tmp_path), upstream_port, redis.port)
    try:
        slow = threading.Thread(target=lambda: get(gw, "/slow/x?ms=1500"))
        slow.start()

        def held(keys):
            return sum(redis.command("ZCARD", k) for k in keys)

        assert wait_until(lambda: held(redis.command("KEYS", "errgate:c:*")) == 1), "the slot is held in Redis"
        keys = redis.command("KEYS", "errgate:c:*")
        # Redis goes away while the request is in flight and is still away
        # when it ends: the release cannot be sent then, and must not be lost
        redis.kill()
        slow.join()
        time.sleep(0.3)
        redis.start("--key-load-delay", "100", wait=False)  # the same data, from its append-only file
        redis.wait_ready()  # not before: a command now would be answered LOADING
        assert wait_until(lambda: held(keys) == 0, timeout=5), "the release was sent once Redis had loaded"
        assert get(gw, "/slow/x").status == 200
    finally:
        assert gw.stop() == 0
        if redis.proc.poll() is None:
            redis.kill()


def test_quotas_and_credits_shared_in_redis(tmp_path, upstream_port, redis):
    a_dir = tmp_path / "a"
    a_dir.mkdir()
    a = gateway(str(a_dir), upstream_port, redis.port)
    try:
        r = request(a.admin_port, "POST", "/keys", body=b'{"name": "r"}',
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        kid, k = r.json()["key"]["id"], r.json()["secret"]
        assert [get(a, "/day/x", k).status for _ in range(5)] == [200] * 4 + [429]
        assert get(a, "/day/x", k).json()["error"] == "quota_exceeded"
        # credits: topped up through the admin API and the CLI into Redis
        assert get(a, "/paid/x", k).json()["error"] == "credits_depleted"
        top = request(a.admin_port, "POST", f"/keys/{kid}/credits", body=b'{"add": 5}',
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert top.status == 200 and top.json()["credits"] == 5
        assert [get(a, "/paid/x", k).status for _ in range(3)] == [200, 200, 429]
        out = subprocess.run([BIN, "keys", "credits", "--config", a.path, kid, "--add", "4"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["credits"] == 5
        assert [get(a, "/paid/x", k).status for _ in range(3)] == [200, 200, 429]
        out = subprocess.run([BIN, "keys", "credits", "--config", a.path, kid, "--add", "-5"],
                             capture_output=True, text=True)
        assert out.returncode == 3  # more than there is: refused, nothing taken
        r = request(a.admin_port, "GET", f"/keys/{kid}/credits", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.json()["credits"] == 1
        redis.kill()
        out = subprocess.run([BIN, "keys", "credits", "--config", a.path, kid, "--add", "4"],
                             capture_output=True, text=True)
        assert out.returncode != 0 and "redis" in out.stderr
    finally:
        assert a.stop() == 0


def test_gateway_killed_loses_no_count_kept_in_redis(tmp_path, upstream_port, redis):
    gw = gateway(str(tmp_path), upstream_port, redis.port)
    r = request(gw.admin_port, "POST", "/keys", body=b'{"name": "k9"}',
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    k = r.json()["secret"]
    assert [get(gw, "/day/x", k).status for _ in range(2)] == [200, 200]
    gw.proc.kill()
    gw.proc.wait()
    gw.logf.close()
    gw = gateway(str(tmp_path), upstream_port, redis.port)  # same key store, new process
    try:
        assert [get(gw, "/day/x", k).status for _ in range(3)] == [200, 200, 429]
    finally:
        assert gw.stop() == 0


class Load:
    """Clients sending requests back to back until stopped; counts the answers."""

    def __init__(self, gw, clients=6):
        self.gw, self.answered, self.stopping = gw, 0, threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                get(self.gw, "/load/x")
            except OSError:
                continue
            with self.lock:
                self.answered += 1

    def count(self):
        with self.lock:
            return self.answered

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()


def decided_in_redis(gw, redis):
    """A request the gateway decided in Redis: it carries the limit's headers
    (neither fail_open nor fail_closed has them) and its counter is in Redis
    (a restarted Redis starts empty)."""
    r = get(gw, "/count/x")
    return (r.status == 200 and r.header("X-RateLimit-Limit") == "1000000"
            and len(redis.command("KEYS", "errgate:r:*/count/*")) == 1)


def stall(redis):
    """Blocks Redis (DEBUG SLEEP) from a thread: what the gateway sends
    meanwhile stays unread in Redis's sockets, so a kill then resets the
    gateway's connections (EPOLLERR) instead of closing them (EOF)."""
    def sleep():
        try:
            redis.command("DEBUG", "SLEEP", "10")
        except (OSError, RuntimeError):  # killed while asleep
            pass

    t = threading.Thread(target=sleep)
    t.start()
    return t


@pytest.mark.parametrize("on_failure", ["fail_closed", "fail_open"])
def test_redis_killed_mid_burst_20_times_recovers_each_time(tmp_path, upstream_port, redis, on_failure):
    # issue 20: a kill -9 under load left a worker "connected" on a dead
    # socket for good (503 forever, or served unmetered after the timeout)
    gw = gateway(str(tmp_path), upstream_port, redis.port, on_failure=on_failure, timeout="100ms")
    load = Load(gw)
    try:
        assert wait_until(lambda: decided_in_redis(gw, redis))
        for i in range(20):
            n = load.count()
            assert wait_until(lambda: load.count() >= n + 10), "the clients are being answered"
            sleeper = None
            if i % 2:  # every other round, with the burst's commands unread
                failures = ready(gw)["failures"]
                sleeper = stall(redis)
                assert wait_until(lambda: ready(gw)["failures"] >= failures + 3, interval=0.02)
            redis.kill()  # mid-burst: the clients have requests in flight
            if sleeper:
                sleeper.join()
            redis.start()  # returns once Redis answers PING
            # every worker is connected again and decides in Redis within 2 s
            ok = wait_until(lambda: decided_in_redis(gw, redis) and ready(gw)["state"] == "up",
                            timeout=2.0, interval=0.02)
            assert ok, f"round {i}: not deciding in Redis 2 s after it was back; /ready: {ready(gw)}"
    finally:
        load.stop()
        assert gw.stop() == 0


def test_a_hung_redis_is_noticed_without_traffic_and_left_once_it_answers(tmp_path, upstream_port, redis):
    gw = gateway(str(tmp_path), upstream_port, redis.port, timeout="100ms")
    try:
        assert wait_until(lambda: decided_in_redis(gw, redis) and ready(gw)["state"] == "up")
        # stopped, Redis keeps its sockets open and the kernel still accepts
        # connections: only the health PING, unanswered, shows it is gone
        redis.proc.send_signal(signal.SIGSTOP)
        assert wait_until(lambda: ready(gw)["state"] == "down", timeout=5), "noticed with no request"
        redis.proc.send_signal(signal.SIGCONT)
        assert wait_until(lambda: decided_in_redis(gw, redis) and ready(gw)["state"] == "up",
                          timeout=2.0, interval=0.02)
    finally:
        redis.proc.send_signal(signal.SIGCONT)
        assert gw.stop() == 0


def test_eight_clients_race_for_the_last_10_units_on_two_workers(tmp_path, upstream_port, redis):
    """A quota of 50 in Redis with 40 used: 8 concurrent clients (32
    requests over two workers, decisions batched per worker) get exactly
    10 served."""
    gw = gateway(str(tmp_path), upstream_port, redis.port, timeout="2s")
    try:
        r = request(gw.admin_port, "POST", "/keys", body=b'{"name": "race"}',
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        k = r.json()["secret"]
        assert [get(gw, "/race/x", k).status for _ in range(40)] == [200] * 40
        go = threading.Barrier(8)
        out, lock = [], threading.Lock()

        def client():
            go.wait()
            for _ in range(4):
                s = get(gw, "/race/x", k).status
                with lock:
                    out.append(s)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out.count(200) == 10 and out.count(429) == 22, out
    finally:
        assert gw.stop() == 0


def test_requests_decided_together_each_see_the_one_before(tmp_path, upstream_port, redis):
    """Requests of one subject that reach a worker in the same round go to
    Redis as one group (sent once, with a count; the script reads the key
    once and writes it once): each is still decided after the one before
    it. 40 requests at once on a limit of 1000 an hour (one every 3.6 s
    back) get 40 different X-RateLimit-Remaining values, 999 down to 960,
    and the next request sees all 40 counted. One worker: two workers'
    batches carry their own clocks, and one that reaches Redis after a later
    one may read its remaining one lower (never admitting more)."""
    gw = gateway(str(tmp_path), upstream_port, redis.port, timeout="2s", workers=1)
    try:
        socks = [socket.create_connection(("127.0.0.1", gw.port), timeout=10) for _ in range(40)]
        for s in socks:
            s.sendall(b"GET /burst/x HTTP/1.1\r\nHost: t\r\n\r\n")
        left = []
        for s in socks:
            resp, _ = read_response(s)
            assert resp.status == 200
            left.append(int(resp.header("X-RateLimit-Remaining")))
            s.close()
        assert sorted(left) == list(range(960, 1000)), left
        assert get(gw, "/burst/x").header("X-RateLimit-Remaining") == "959"
    finally:
        assert gw.stop() == 0


def test_a_group_that_crosses_its_limit_is_cut_exactly(tmp_path, upstream_port, redis):
    """Requests of one subject in one round are decided together (a group:
    Redis answers k admitted and the state the group started from, and the
    gateway derives each request's own answer by its place in the group).
    At once, one worker: 12 requests on a limit of 5 a minute, 8 on a quota
    of 4 a day, 6 on 7 credits at 2 each. Exactly 5, 4 and 3 are served, each
    with its own remaining value, and each refusal says what the state was
    after the served ones."""
    with open(f"{tmp_path}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    port, admin = free_port(), free_port()
    text = config(str(tmp_path), port, admin, upstream_port, redis.port, timeout="2s", workers=1)
    gw = Gateway(str(tmp_path), text + "rate_limits: { quota_headers: [legacy] }\n", port, admin)

    def at_once(n, path, key=None):
        socks = [socket.create_connection(("127.0.0.1", gw.port), timeout=10) for _ in range(n)]
        hdr = f"X-API-Key: {key}\r\n" if key else ""
        for s in socks:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{hdr}\r\n".encode())
        out = []
        for s in socks:
            resp, _ = read_response(s)
            out.append(resp)
            s.close()
        return out

    try:
        r = request(gw.admin_port, "POST", "/keys", body=b'{"name": "g"}',
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        kid, k = r.json()["key"]["id"], r.json()["secret"]
        rate = at_once(12, "/shared/x")
        served = [x for x in rate if x.status == 200]
        assert len(served) == 5 and sorted(int(x.header("X-RateLimit-Remaining")) for x in served) == [0, 1, 2, 3, 4]
        refused = [x for x in rate if x.status != 200]
        assert {x.status for x in refused} == {429} and {x.json()["error"] for x in refused} == {"rate_limit_exceeded"}
        # the five served filled the burst: each refused one waits one interval (12 s)
        assert {x.header("Retry-After") for x in refused} == {"12"}

        quota = at_once(8, "/day/x", k)
        served = [x for x in quota if x.status == 200]
        assert len(served) == 4 and sorted(int(x.header("X-Quota-Remaining")) for x in served) == [0, 1, 2, 3]
        assert [x.json()["details"]["current_usage"] if "details" in x.json() else x.json()["current_usage"]
                for x in quota if x.status != 200] == [4] * 4
        assert redis.command("GET", next(iter(redis.command("KEYS", "errgate:q:*")))) == "4"

        top = request(gw.admin_port, "POST", f"/keys/{kid}/credits", body=b'{"add": 7}',
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert top.status == 200 and top.json()["credits"] == 7
        paid = at_once(6, "/paid/x", k)
        assert sum(x.status == 200 for x in paid) == 3
        refused = [x.json() for x in paid if x.status != 200]
        assert len(refused) == 3 and all(x["error"] == "credits_depleted" for x in refused)
        assert {(x.get("details") or x)["remaining_credits"] for x in refused} == {1}
        r = request(gw.admin_port, "GET", f"/keys/{kid}/credits", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.json()["credits"] == 1
    finally:
        assert gw.stop() == 0
