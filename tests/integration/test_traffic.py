"""Traffic policy (issue 5): rate limits, plans, concurrency limits and their
headers, on a real gateway process."""
import json
import socket
import threading
import time

import pytest

from conftest import Gateway, free_port, read_response, request

ADMIN_TOKEN = "admin-token-for-the-traffic-tests-01"


def config(tmp, port, admin, upstream, headers="[legacy, ietf]", reset="seconds"):
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
errors: {{ dialect: flat-snake, negotiate: false }}
log: {{ access: stderr }}
store: {{ backend: memory }}
auth: {{ admin_token_file: {tmp}/admin.token }}
rate_limits: {{ headers: {headers}, reset: {reset} }}
plans:
  free: {{ rate_limit: [{{ limit: 3, window: 1m }}], concurrency: 1 }}
  pro: {{ rate_limit: [{{ limit: 1000, window: 1m }}] }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream}"], timeout: 10s }}
routes:
  - {{ path: /anon/, upstream: demo, rate_limit: {{ limit: 10, window: 1m, by: ip }} }}
  - {{ path: /short/, upstream: demo, rate_limit: {{ limit: 4, window: 2s, by: ip }} }}
  - {{ path: /burst/, upstream: demo, rate_limit: {{ limit: 60, window: 1m, burst: 5, by: ip }} }}
  - {{ path: /shared/, upstream: demo, rate_limit: {{ limit: 5, window: 1m, by: route }} }}
  - path: /search/
    upstream: demo
    auth: api_key
    rate_limit: [{{ limit: 100, window: 1m, by: key, name: per-minute }}, {{ limit: 5, window: 1s, by: key, name: per-second }}]
  - {{ path: /classify/, upstream: demo, auth: api_key, rate_limit: {{ limit: 50, window: 1m }} }}
  - {{ path: /risk/, upstream: demo, auth: api_key, rate_limit: {{ limit: 30, window: 1m }} }}
  - {{ path: /slow/, upstream: demo, concurrency: 2 }}
  - {{ path: /slow/k/, upstream: demo, auth: api_key }}
  - {{ path: /v1/errors/, upstream: demo, rate_limit: {{ limit: 10, window: 1m, by: ip }} }}
  - {{ path: /v1/, upstream: demo, auth: api_key }}
"""


@pytest.fixture
def tgw(tmp_path, upstream_port):
    tmp = str(tmp_path)
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    port, admin = free_port(), free_port()
    gw = Gateway(tmp, config(tmp, port, admin, upstream_port), port, admin)
    yield gw
    assert gw.stop() == 0


def new_key(gw, plan=None):
    body = {"name": "t"}
    if plan:
        body["plan"] = plan
    r = request(gw.admin_port, "POST", "/keys", body=json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status == 201, r.body
    return r.json()["secret"]


def get(gw, path, key=None):
    return request(gw.port, "GET", path, headers={"X-API-Key": key} if key else {})


def test_exact_limit_then_429_with_consistent_headers(tgw):
    statuses = [get(tgw, "/anon/x").status for _ in range(10)]
    assert statuses == [200] * 10
    r = get(tgw, "/anon/x")
    assert r.status == 429
    body = r.json()
    assert body["error"] == "rate_limit_exceeded" and body["status_code"] == 429
    # Retry-After, the body and the headers tell one story
    assert int(r.header("Retry-After")) == body["retry_after"] == 6  # one interval of 60s/10
    assert body["details"]["limit"] == 10 and body["details"]["window"] == "1 minute"
    assert r.header("X-RateLimit-Limit") == "10" and r.header("X-RateLimit-Remaining") == "0"
    reset = int(r.header("X-RateLimit-Reset"))
    assert 59 <= reset <= 60
    assert r.header("RateLimit-Policy") == '"ip-1m";q=10;w=60'
    assert r.header("RateLimit") == f'"ip-1m";r=0;t={reset}'
    reset_time = time.mktime(time.strptime(body["details"]["reset_time"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(reset_time - (time.time() + reset)) <= 2


def test_remaining_counts_down_on_successes(tgw):
    seen = []
    for _ in range(4):
        r = get(tgw, "/shared/x")
        assert r.status == 200
        seen.append(int(r.header("X-RateLimit-Remaining")))
        assert r.header("RateLimit").startswith('"route-1m";r=')
        assert int(r.header("RateLimit").split("r=")[1].split(";")[0]) == seen[-1]
    assert seen == [4, 3, 2, 1]


def test_recovery_after_the_window(tgw):
    assert [get(tgw, "/short/x").status for _ in range(5)] == [200, 200, 200, 200, 429]
    time.sleep(0.6)  # one interval (2s/4 = 0.5s): one more request
    assert [get(tgw, "/short/x").status for _ in range(2)] == [200, 429]
    time.sleep(2.1)  # a whole window: the full allowance is back
    assert [get(tgw, "/short/x").status for _ in range(5)] == [200, 200, 200, 200, 429]


def test_burst_smaller_than_the_limit(tgw):
    # 60/min with burst 5: five at once, then one per second
    assert [get(tgw, "/burst/x").status for _ in range(6)] == [200] * 5 + [429]
    r = get(tgw, "/burst/x")
    assert r.header("Retry-After") == "1"
    time.sleep(1.05)
    assert [get(tgw, "/burst/x").status for _ in range(2)] == [200, 429]


def test_several_limits_the_most_restrictive_decides(tgw):
    k = new_key(tgw)
    codes = [get(tgw, "/search/x", k) for _ in range(6)]
    assert [r.status for r in codes] == [200] * 5 + [429]
    ok, refused = codes[0], codes[5]
    # the per-second limit is the tighter one: it is reported
    assert ok.header("X-RateLimit-Limit") == "5" and ok.header("X-RateLimit-Remaining") == "4"
    assert refused.json()["details"]["policy"] == "per-second"
    assert refused.header("RateLimit-Policy") == '"per-minute";q=100;w=60, "per-second";q=5;w=1'
    # a refused request was not counted against the per-minute limit
    time.sleep(1.1)
    r = get(tgw, "/search/x", k)
    assert r.status == 200


def test_limits_are_per_key(tgw):
    a, b = new_key(tgw), new_key(tgw)
    assert [get(tgw, "/search/x", a).status for _ in range(6)][-1] == 429
    assert get(tgw, "/search/x", b).status == 200


def test_seed_limits_are_expressible(tgw):
    # authenticated 100/min, unauthenticated 10/min, a route at 50/min, another at 30/min
    k = new_key(tgw, "pro")
    assert get(tgw, "/classify/x", k).header("X-RateLimit-Limit") == "50"
    assert get(tgw, "/risk/x", k).header("X-RateLimit-Limit") == "30"
    assert get(tgw, "/anon/x").header("X-RateLimit-Limit") == "10"
    assert get(tgw, "/search/x", k).header("RateLimit-Policy").startswith('"per-minute";q=100;w=60')


def test_plan_limits_and_plan_concurrency(tgw):
    k = new_key(tgw, "free")
    statuses = [get(tgw, "/v1/x", k).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    r = get(tgw, "/v1/x", k)
    assert r.json()["details"]["policy"] == "free-1m"
    # the plan's limits are not the route's: written per request, same form
    assert r.header("RateLimit-Policy") == '"free-1m";q=3;w=60'
    k2 = new_key(tgw, "free")
    results = {}

    def slow():
        results["slow"] = get(tgw, "/slow/k/x?ms=1500", k2).status

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    r = get(tgw, "/v1/x", k2)
    assert r.status == 429 and r.json()["error"] == "concurrent_limit"
    assert r.json()["details"] == {**r.json()["details"], "limit": 1, "active": 1}
    t.join()
    assert results["slow"] == 200
    assert get(tgw, "/v1/x", k2).status == 200


def test_changing_a_keys_plan_takes_effect_without_a_restart(tgw, tmp_path):
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = request(tgw.admin_port, "POST", "/keys", body=b'{"name": "mover", "plan": "free"}', headers=admin)
    kid, k = r.json()["key"]["id"], r.json()["secret"]
    assert [get(tgw, "/v1/x", k).status for _ in range(4)] == [200, 200, 200, 429]
    r = request(tgw.admin_port, "POST", f"/keys/{kid}/plan", body=b'{"plan": "pro"}', headers=admin)
    assert r.status == 200 and r.json()["key"]["plan"] == "pro"
    r = get(tgw, "/v1/x", k)
    assert r.status == 200 and r.header("X-RateLimit-Limit") == "1000"
    # back to free: its bucket is still spent; then no plan at all
    request(tgw.admin_port, "POST", f"/keys/{kid}/plan", body=b'{"plan": "free"}', headers=admin)
    assert get(tgw, "/v1/x", k).status == 429
    r = request(tgw.admin_port, "POST", f"/keys/{kid}/plan", body=b'{"plan": null}', headers=admin)
    assert r.status == 200 and r.json()["key"]["plan"] is None
    r = get(tgw, "/v1/x", k)
    assert r.status == 200 and r.header("X-RateLimit-Limit") is None
    # a plan the configuration does not define, or a wrong type, is refused
    for body in (b'{"plan": "platinum"}', b'{"plan": 3}', b'{}'):
        r = request(tgw.admin_port, "POST", f"/keys/{kid}/plan", body=body, headers=admin)
        assert r.status == 400 and r.json()["error"] == "validation_error"


def test_concurrency_limit_and_release(tgw):
    done = []

    def slow(i):
        done.append(get(tgw, f"/slow/{i}?ms=1500").status)

    ts = [threading.Thread(target=slow, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    r = get(tgw, "/slow/third")
    assert r.status == 429 and r.json()["error"] == "concurrent_limit"
    assert r.header("Retry-After") == "1"
    for t in ts:
        t.join()
    assert done == [200, 200]
    assert request(tgw.admin_port, "GET", "/ready").json()["traffic"]["active_slots"] == 0


def test_no_leaked_slots_after_1000_aborted_requests(tgw):
    # clients that go away mid-request: on the slow path (upstream still
    # working) and before the head is complete
    for i in range(1000):
        s = socket.create_connection(("127.0.0.1", tgw.port))
        if i % 2:
            s.sendall(f"GET /slow/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        else:
            s.sendall(f"GET /slow/{i} HTTP/1.1\r\nHost: x\r\n".encode())
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
    deadline = time.time() + 10
    while True:
        active = request(tgw.admin_port, "GET", "/ready").json()["traffic"]["active_slots"]
        if active == 0:
            break
        assert time.time() < deadline, f"{active} slots still held after the clients left"
        time.sleep(0.1)
    # and the limit still admits two at once
    done = []
    ts = [threading.Thread(target=lambda: done.append(get(tgw, "/slow/again").status)) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert done == [200, 200]


def test_upstream_timeout_and_error_release_slots(tgw, tmp_path, upstream_port):
    # a route whose upstream times out, and one whose upstream is dead, both limited to 1
    port, admin = free_port(), free_port()
    dead = free_port()
    text = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
upstreams:
  slow: {{ servers: ["127.0.0.1:{upstream_port}"], timeout: 300ms }}
  dead: {{ servers: ["127.0.0.1:{dead}"], connect_timeout: 300ms }}
routes:
  - {{ path: /slow/, upstream: slow, concurrency: 1 }}
  - {{ path: /dead/, upstream: dead, concurrency: 1 }}
"""
    import os
    os.makedirs(tmp_path / "second", exist_ok=True)
    gw = Gateway(str(tmp_path / "second"), text, port, admin)
    try:
        for _ in range(5):
            assert request(port, "GET", "/slow/x").status == 504
            assert request(port, "GET", "/dead/x").status == 502
        assert request(admin, "GET", "/ready").json()["traffic"]["active_slots"] == 0
    finally:
        assert gw.stop() == 0


def test_header_families_and_reset_unit(tmp_path, upstream_port):
    tmp = str(tmp_path)
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    port, admin = free_port(), free_port()
    gw = Gateway(tmp, config(tmp, port, admin, upstream_port, headers="[legacy]", reset="unix"), port, admin)
    try:
        r = get(gw, "/anon/x")
        assert r.header("RateLimit") is None and r.header("RateLimit-Policy") is None
        reset = int(r.header("X-RateLimit-Reset"))
        assert abs(reset - (time.time() + 6)) <= 2  # a Unix time, one interval ahead
    finally:
        assert gw.stop() == 0


def test_upstream_rate_headers_give_way_to_the_gateways(tgw):
    # the demo upstream answers this path with its own X-RateLimit-* headers
    r = get(tgw, "/v1/errors/flat-camel/rate_limit")
    assert r.status == 429
    assert r.header("X-RateLimit-Limit") == "10"  # the gateway's limit, not the upstream's 100
    assert [k for k, _ in r.headers].count("X-RateLimit-Limit") == 1


def test_bad_traffic_configuration_is_refused(tmp_path):
    import subprocess
    from conftest import BIN
    cases = {
        "rate_limit: { limit: 0, window: 1m }": "out of range 1..",
        "rate_limit: { limit: 10 }": "needs window",
        "rate_limit: { limit: 10, window: 1m, by: user }": "by must be key, ip or route",
        "rate_limit: { limit: 10, window: 1m, burst: 1000 }": "rate limit out of range",
        "concurrency: 0": "out of range",
    }
    for route_extra, want in cases.items():
        p = tmp_path / "c.yaml"
        p.write_text(f"listen: 127.0.0.1:1\nupstreams: {{ a: {{ servers: [127.0.0.1:2] }} }}\n"
                     f"routes:\n  - {{ path: /x, upstream: a, {route_extra} }}\n")
        out = subprocess.run([BIN, "check-config", str(p)], capture_output=True, text=True)
        assert out.returncode == 3 and want in out.stderr, (route_extra, out.stderr)
