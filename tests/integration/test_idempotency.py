"""Idempotency-Key (issue 21 part 2): a retry with the same key gets the first
response without reaching the upstream again; concurrent duplicates reach it
once; a key reused for another request is 422; a missing (required) or
malformed key 400; a 5xx releases the key; keys are per caller; entries
expire; SQLite keeps them across a restart and a kill -9 (the reservation
of the killed gateway expires by itself); two gateways on one Redis share
them. The upstream counts what reaches it, per path."""
import json
import socket
import os
import re
import shutil
import signal
import threading

import pytest

from conftest import (Gateway, Pipelined, QuietHandler, ThreadedUpstream, free_port, read_error, read_response, request,
                      wait_for)

ADMIN = "admin-token-for-the-idempotency-tests-01"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class CountingUpstream(ThreadedUpstream):
    """Counts requests per path and answers each with a body unique to it
    (its count and a nonce), so a replay is told from a second run. A path
    with /status/NNN answers NNN; one with /hold/ waits for release()."""

    def __init__(self):
        outer = self
        self.count, self.lock = {}, threading.Lock()
        self.arrived, self.released = threading.Event(), threading.Event()

        class H(QuietHandler):
            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                path = self.path.split("?")[0]
                with outer.lock:
                    outer.count[path] = k = outer.count.get(path, 0) + 1
                if "/hold/" in path:
                    outer.arrived.set()
                    outer.released.wait(60)
                m = re.search(r"/status/(\d+)", path)
                out = json.dumps({"n": k, "len": len(body), "nonce": os.urandom(8).hex()}).encode()
                self.send_response(int(m.group(1)) if m else 201)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Upstream-N", str(k))
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PATCH = handle_one

        super().__init__(H)

    def hits(self, path):
        with self.lock:
            return self.count.get(path, 0)

    def close(self):
        self.released.set()
        super().close()


def config(tmp, port, admin, up, store="sqlite", redis_port=None, timeout="5s"):
    redis = f'redis: {{ address: "127.0.0.1:{redis_port}", timeout: 500ms }}' if redis_port else ""
    st = f"{{ backend: sqlite, path: {tmp}/errgate.db }}" if store == "sqlite" else "{ backend: memory }"
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
errors: {{ dialect: flat-snake, negotiate: false }}
log: {{ access: stderr }}
store: {st}
auth: {{ admin_token_file: {tmp}/admin.token }}
{redis}
upstreams:
  up: {{ servers: ["127.0.0.1:{up}"], timeout: {timeout}, connect_timeout: 500ms }}
routes:
  - {{ path: /idem/, upstream: up, idempotency: {{ methods: [POST, PATCH], ttl: 24h }} }}
  - {{ path: /req/, upstream: up, idempotency: {{ required: true }} }}
  - {{ path: /short/, upstream: up, idempotency: {{ ttl: 3s }} }}
  - {{ path: /keyed/, upstream: up, auth: api_key, idempotency: {{ ttl: 1h }} }}
"""


def start(tmp, up, **kw):
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN)
    port, admin = free_port(), free_port()
    return Gateway(tmp, config(tmp, port, admin, up.port, **kw), port, admin)


@pytest.fixture
def up():
    u = CountingUpstream()
    yield u
    u.close()


@pytest.fixture
def gw(tmp_path, up):
    g = start(str(tmp_path), up)
    yield g
    assert g.stop() == 0, g.log_text()[-3000:]


def post(gw, path, key=None, body=b'{"amount": 100}', headers=None):
    h = dict(headers or {})
    if key is not None:
        h["Idempotency-Key"] = key
    return request(gw.port, "POST", path, headers=h, body=body)


def retried(gw, path, key, **kw):
    """post() as a client that honours 409 idempotency_key_in_use: with the
    SQLite and Redis stores the record is written (or the key released) just
    after the answer, and
    a retry in that moment is told to come back (docs/idempotency.md)."""
    got = []
    wait_for(lambda: got.append(post(gw, path, key, **kw)) or got[-1].status != 409, 5, interval=0.02,
             what=f"an answer other than 409 for {key}")
    return got[-1]


def code(r):
    return read_error(r.body, "flat-snake")["code"]


def test_a_retry_gets_the_first_response_without_the_upstream(gw, up):
    a = post(gw, "/idem/charges", "order-1")
    assert a.status == 201 and a.header("Idempotent-Replayed") is None
    b = retried(gw, "/idem/charges", '"order-1"')  # the Structured Field form names the same key
    assert b.status == 201 and b.body == a.body
    assert b.header("Idempotent-Replayed") == "true"
    assert b.header("X-Upstream-N") == "1" and b.header("Content-Type") == "application/json"
    assert b.header("X-Request-ID") and b.header("X-Request-ID") != a.header("X-Request-ID")
    assert up.hits("/idem/charges") == 1
    # no key: not idempotent, reaches the upstream
    assert post(gw, "/idem/charges").status == 201 and up.hits("/idem/charges") == 2


def test_a_replay_keeps_the_connection_for_the_next_request(gw, up):
    """The retried body was read whole and answered without the upstream: it
    is skipped, so the connection carries the next requests (it used to be
    closed with Connection: close)."""
    body = b'{"amount": 7}'
    raw = (b"POST /idem/charges HTTP/1.1\r\nHost: t\r\nIdempotency-Key: keep-1\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(raw)
        first, _ = read_response(s)
        # the SQLite record is written just after the answer: wait until it is there
        assert retried(gw, "/idem/charges", "keep-1", body=body).header("Idempotent-Replayed") == "true"
        s.sendall(raw + b"GET /idem/after HTTP/1.1\r\nHost: t\r\n\r\n")  # the replay, then one more, pipelined
        p = Pipelined(s)  # both answers may come in one segment
        again = p.read()
        after = p.read()
    assert first.status == 201 and again.status == 201 and again.body == first.body
    assert again.header("Idempotent-Replayed") == "true"
    assert (again.header("Connection") or "").lower() == "keep-alive", again.headers
    assert after.status == 201 and up.hits("/idem/after") == 1, after.body
    assert up.hits("/idem/charges") == 1


def test_twenty_concurrent_duplicates_reach_the_upstream_once(gw, up):
    results, lock = [], threading.Lock()

    def hit():
        r = post(gw, "/idem/hold/x", "dup-20")
        with lock:
            results.append(r)

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for t in threads:
        t.start()
    assert up.arrived.wait(30)
    # the other 19 are answered while the first is held: 409 in use
    wait_for(lambda: len(results) >= 19, 30, what="19 answers while the first is in flight")
    up.released.set()
    for t in threads:
        t.join(30)
    assert len(results) == 20
    assert up.hits("/idem/hold/x") == 1
    first = [r for r in results if r.status == 201 and r.header("Idempotent-Replayed") is None]
    assert len(first) == 1
    for r in results:
        if r is first[0]:
            continue
        if r.status == 409:
            assert code(r) == "idempotency_key_in_use" and int(r.header("Retry-After")) >= 1
        else:
            assert r.status == 201 and r.header("Idempotent-Replayed") == "true" and r.body == first[0].body


def test_the_key_with_another_request_is_422(gw, up):
    assert post(gw, "/idem/m", "mm-1", body=b'{"amount": 1}').status == 201
    for r in (post(gw, "/idem/m", "mm-1", body=b'{"amount": 2}'),
              request(gw.port, "POST", "/idem/m?x=1", headers={"Idempotency-Key": "mm-1"}, body=b'{"amount": 1}'),
              request(gw.port, "PATCH", "/idem/m", headers={"Idempotency-Key": "mm-1"}, body=b'{"amount": 1}')):
        if r.status == 201:  # PATCH: another method is another scope, not a mismatch
            continue
        assert r.status == 422 and code(r) == "idempotency_key_mismatch", r.body
    assert up.hits("/idem/m") == 2  # the first POST and the PATCH


def test_missing_and_malformed_keys_are_400(gw, up):
    r = post(gw, "/req/x")
    assert r.status == 400 and code(r) == "idempotency_key_missing"
    for bad in ("a b", '""', '"unterminated', "x" * 256, '"k";a=1'):
        r = post(gw, "/idem/bad", bad)
        assert r.status == 400 and code(r) == "invalid_idempotency_key", (bad, r.body)
    raw = (b"POST /idem/bad HTTP/1.1\r\nHost: t\r\nIdempotency-Key: a\r\nIdempotency-Key: b\r\n"
           b"Content-Length: 2\r\n\r\n{}")
    r = request(gw.port, raw=raw)
    assert r.status == 400 and code(r) == "invalid_idempotency_key"
    assert up.hits("/req/x") == 0 and up.hits("/idem/bad") == 0
    assert post(gw, "/req/x", "present").status == 201


def test_a_5xx_releases_the_key_and_a_4xx_is_kept(gw, up):
    assert post(gw, "/idem/status/503", "retry-me").status == 503
    r = retried(gw, "/idem/status/503", "retry-me")  # SQLite releases just after the answer
    assert r.status == 503 and r.header("Idempotent-Replayed") is None
    assert up.hits("/idem/status/503") == 2
    a = post(gw, "/idem/status/404", "keep-me")
    b = retried(gw, "/idem/status/404", "keep-me")
    assert a.status == b.status == 404 and b.body == a.body and b.header("Idempotent-Replayed") == "true"
    assert up.hits("/idem/status/404") == 1


def new_key(gw):
    r = request(gw.admin_port, "POST", "/keys", body=b'{"name": "t"}', headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status == 201, r.body
    return r.json()["secret"]


def test_one_callers_key_is_not_replayed_to_another(gw, up):
    ka, kb = new_key(gw), new_key(gw)
    a = post(gw, "/keyed/p", "shared-key", headers={"X-API-Key": ka})
    b = post(gw, "/keyed/p", "shared-key", headers={"X-API-Key": kb})
    assert a.status == b.status == 201 and b.header("Idempotent-Replayed") is None and b.body != a.body
    assert up.hits("/keyed/p") == 2
    a2 = retried(gw, "/keyed/p", "shared-key", headers={"X-API-Key": ka})
    assert a2.header("Idempotent-Replayed") == "true" and a2.body == a.body
    assert up.hits("/keyed/p") == 2


def test_a_stored_response_expires(gw, up):
    a = post(gw, "/short/e", "exp-1")
    # replayed well within its 3 s; the SQLite store writes the record just
    # after the answer went out, and a retry in that moment is a 409
    assert retried(gw, "/short/e", "exp-1").header("Idempotent-Replayed") == "true"
    wait_for(lambda: post(gw, "/short/e", "exp-1").header("Idempotent-Replayed") is None, 30,
             interval=0.2, what="the entry to expire")
    assert up.hits("/short/e") == 2 and a.status == 201


def test_sqlite_keeps_the_replay_across_a_restart(tmp_path, up):
    g = start(str(tmp_path), up)
    try:
        a = post(g, "/idem/r", "restart-1")
        assert a.status == 201
    finally:
        assert g.stop() == 0
    g = start(str(tmp_path), up)
    try:
        b = post(g, "/idem/r", "restart-1")
        assert b.header("Idempotent-Replayed") == "true" and b.body == a.body
        assert up.hits("/idem/r") == 1
    finally:
        assert g.stop() == 0


def test_kill_9_mid_request_the_key_is_in_use_until_its_reservation_expires(tmp_path, up):
    g = start(str(tmp_path), up)
    result = []
    t = threading.Thread(target=lambda: result.append(_try_post(g, "/idem/hold/k9", "kill-9")))
    t.start()
    try:
        assert up.arrived.wait(30)
        g.proc.send_signal(signal.SIGKILL)
        g.proc.wait()
    finally:
        g.kill()
        t.join(30)
    up.released.set()
    g = start(str(tmp_path), up)
    try:
        # the dead gateway's reservation (upstream timeout 5 s + connect 0.5 s + 2 s) holds the key
        r = post(g, "/idem/hold/k9", "kill-9")
        assert r.status == 409 and code(r) == "idempotency_key_in_use" and int(r.header("Retry-After")) >= 1
        assert up.hits("/idem/hold/k9") == 1
        r = wait_for(lambda: (lambda x: x if x.status != 409 else None)(post(g, "/idem/hold/k9", "kill-9")), 60,
                     interval=0.25, what="the reservation to expire")
        assert r.status == 201 and r.header("Idempotent-Replayed") is None
        assert up.hits("/idem/hold/k9") == 2
    finally:
        assert g.stop() == 0


def _try_post(g, path, key):
    try:
        return post(g, path, key)
    except OSError as e:
        return e


@pytest.mark.skipif(not os.path.exists(REDIS), reason="redis-server is not installed")
def test_two_gateways_on_one_redis_share_keys(tmp_path, up):
    from test_redis import Redis
    redis = Redis(str(tmp_path))
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    ga = gb = None
    try:
        ga = start(str(a_dir), up, store="memory", redis_port=redis.port)
        gb = start(str(b_dir), up, store="memory", redis_port=redis.port)
        a = post(ga, "/idem/redis", "shared-r")
        assert a.status == 201
        # the record goes to Redis just after the answer: a retry in that
        # moment is a 409 in use, the next one the replay
        b = retried(gb, "/idem/redis", "shared-r")
        assert b.header("Idempotent-Replayed") == "true" and b.body == a.body
        assert up.hits("/idem/redis") == 1
        assert post(gb, "/idem/redis", "shared-r", body=b"other").status == 422
    finally:
        for g in (ga, gb):
            if g:
                assert g.stop() == 0
        redis.kill()
