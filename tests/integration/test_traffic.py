"""Traffic policy (issue 5): rate limits, plans, concurrency limits and their
headers, on a real gateway process.

Windows are wide enough for a loaded machine: a sequence that must fit in
one emission interval (window / limit) has a second or more for a handful
of requests. Values that depend on when the gateway decided (Retry-After,
reset) are checked against bounds taken from the client's clock just
before and after the requests, so they stay exact without being timed.
Requests that must be in flight are held by the upstream (HeldUpstream),
not slowed by a delay the machine may outlast."""
import json
import math
import socket
import threading
import time

import pytest

from conftest import Gateway, HeldUpstream, dead_port, free_port, read_response, request, wait_for

ADMIN_TOKEN = "admin-token-for-the-traffic-tests-01"


def config(tmp, port, admin, upstream, headers="[legacy, ietf]", reset="seconds", held=None):
    held = held or dead_port()
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
  held: {{ servers: ["127.0.0.1:{held}"], timeout: 120s }}
routes:
  - {{ path: /anon/, upstream: demo, rate_limit: {{ limit: 10, window: 1m, by: ip }} }}
  - {{ path: /short/, upstream: demo, rate_limit: {{ limit: 4, window: 6s, by: ip }} }}
  - {{ path: /burst/, upstream: demo, rate_limit: {{ limit: 20, window: 1m, burst: 5, by: ip }} }}
  - {{ path: /shared/, upstream: demo, rate_limit: {{ limit: 5, window: 1m, by: route }} }}
  - path: /search/
    upstream: demo
    auth: api_key
    rate_limit: [{{ limit: 100, window: 1m, by: key, name: per-minute }}, {{ limit: 5, window: 20s, by: key, name: per-20s }}]
  - path: /counted/
    upstream: demo
    auth: api_key
    rate_limit: [{{ limit: 3, window: 1h, by: key, name: per-hour }}, {{ limit: 1, window: 2s, by: key, name: per-2s }}]
  - {{ path: /classify/, upstream: demo, auth: api_key, rate_limit: {{ limit: 50, window: 1m }} }}
  - {{ path: /risk/, upstream: demo, auth: api_key, rate_limit: {{ limit: 30, window: 1m }} }}
  - {{ path: /slow/, upstream: demo, concurrency: 2 }}
  - {{ path: /held/, upstream: held, concurrency: 2 }}
  - {{ path: /held/k/, upstream: held, auth: api_key }}
  - {{ path: /v1/errors/, upstream: demo, rate_limit: {{ limit: 10, window: 1m, by: ip }} }}
  - {{ path: /v1/, upstream: demo, auth: api_key }}
"""


@pytest.fixture
def tgw(tmp_path, upstream_port):
    tmp = str(tmp_path)
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    held = HeldUpstream()
    port, admin = free_port(), free_port()
    try:
        gw = Gateway(tmp, config(tmp, port, admin, upstream_port, held=held.port), port, admin)
        gw.held = held
        yield gw
        assert gw.stop() == 0
    finally:
        held.close()


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


def get_until(gw, path, want, key=None, timeout=60.0):
    """Asks again (every 0.1 s) until the status is `want`; returns that
    response. Refused requests do not count against a GCRA limit, so asking
    changes nothing but the time."""
    return wait_for(lambda: (lambda r: r if r.status == want else None)(get(gw, path, key)), timeout,
                    interval=0.1, what=f"{path} to answer {want}")


def ceil_s(x):
    return math.ceil(round(x, 3))  # the gateway rounds to the millisecond, then up to the second


def test_exact_limit_then_429_with_consistent_headers(tgw):
    t_first = time.time()  # the first request is counted at or after this
    statuses = [get(tgw, "/anon/x").status for _ in range(10)]
    assert statuses == [200] * 10
    r = get(tgw, "/anon/x")
    t_last = time.time()  # and the 11th refused at or before this
    assert r.status == 429
    body = r.json()
    assert body["error"] == "rate_limit_exceeded" and body["status_code"] == 429
    # Retry-After, the body and the headers tell one story: one interval
    # (60s/10) after the first request, the bucket lets one more through
    retry = int(r.header("Retry-After"))
    assert retry == body["retry_after"]
    assert ceil_s(6 - (t_last - t_first)) <= retry <= 6
    assert body["details"]["limit"] == 10 and body["details"]["window"] == "1 minute"
    assert r.header("X-RateLimit-Limit") == "10" and r.header("X-RateLimit-Remaining") == "0"
    # full again one window after the first request: always 54 s after the retry
    reset = int(r.header("X-RateLimit-Reset"))
    assert reset == retry + 54
    assert r.header("RateLimit-Policy") == '"ip-1m";q=10;w=60'
    assert r.header("RateLimit") == f'"ip-1m";r=0;t={reset}'
    reset_time = time.mktime(time.strptime(body["details"]["reset_time"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert int(t_first) + 59 <= reset_time <= t_last + 61


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
    # 4 per 6 s: one more every 1.5 s
    assert [get(tgw, "/short/x").status for _ in range(5)] == [200, 200, 200, 200, 429]
    # one interval later, one request gets through, and only one
    get_until(tgw, "/short/x", 200)
    r = get(tgw, "/short/x")
    assert r.status == 429
    # the whole allowance is back when the refusal says the bucket is full again
    time.sleep(int(r.header("X-RateLimit-Reset")) + 0.2)
    assert [get(tgw, "/short/x").status for _ in range(5)] == [200, 200, 200, 200, 429]


def test_burst_smaller_than_the_limit(tgw):
    # 20/min with burst 5: five at once, then one every 3 s
    t_first = time.time()
    assert [get(tgw, "/burst/x").status for _ in range(6)] == [200] * 5 + [429]
    r = get(tgw, "/burst/x")
    t_last = time.time()
    retry = int(r.header("Retry-After"))
    assert ceil_s(3 - (t_last - t_first)) <= retry <= 3  # one interval after the first, not a window
    # an honest Retry-After: once it has passed, one more gets through, and only one
    time.sleep(retry)
    assert [get(tgw, "/burst/x").status for _ in range(2)] == [200, 429]


def test_several_limits_the_most_restrictive_decides(tgw):
    k = new_key(tgw)
    codes = [get(tgw, "/search/x", k) for _ in range(6)]
    assert [r.status for r in codes] == [200] * 5 + [429]
    ok, refused = codes[0], codes[5]
    # the 5-per-20s limit is the tighter one: it is reported
    assert ok.header("X-RateLimit-Limit") == "5" and ok.header("X-RateLimit-Remaining") == "4"
    assert refused.json()["details"]["policy"] == "per-20s"
    assert refused.header("RateLimit-Policy") == '"per-minute";q=100;w=60, "per-20s";q=5;w=20'


def test_a_refused_request_is_not_counted_against_the_other_limits(tgw):
    """/counted/ allows 3 an hour and 1 per 2 s. Requests refused by the
    2-second limit must not use up the hourly one: exactly 3 get through
    however many were refused in between (one counted refusal would leave 2)."""
    k = new_key(tgw)
    admitted, refused_short = 0, 0
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, (admitted, refused_short)
        r = get(tgw, "/counted/x", k)
        if r.status == 200:
            admitted += 1
            continue  # the next one comes at once: the 2-second limit refuses it
        assert r.status == 429, r.body
        policy = r.json()["details"]["policy"]
        if policy == "per-hour":
            break
        assert policy == "per-2s"
        refused_short += 1
        time.sleep(0.1)
    assert admitted == 3, f"{admitted} admitted after {refused_short} refusals by the 2-second limit"
    assert refused_short >= 2


def test_limits_are_per_key(tgw):
    a, b = new_key(tgw), new_key(tgw)
    assert [get(tgw, "/search/x", a).status for _ in range(6)] == [200] * 5 + [429]
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

    def held():
        results["held"] = get(tgw, "/held/k/x", k2).status

    t = threading.Thread(target=held)
    t.start()
    try:
        tgw.held.wait_arrived(1)  # in flight: it holds the plan's one slot
        r = get(tgw, "/v1/x", k2)
        assert r.status == 429 and r.json()["error"] == "concurrent_limit"
        assert r.json()["details"] == {**r.json()["details"], "limit": 1, "active": 1}
    finally:
        tgw.held.release()
        t.join()
    assert results["held"] == 200
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

    def held(i):
        done.append(get(tgw, f"/held/{i}").status)

    ts = [threading.Thread(target=held, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    try:
        tgw.held.wait_arrived(2)  # both in flight: the route's two slots are taken
        r = get(tgw, "/held/third")
        assert r.status == 429 and r.json()["error"] == "concurrent_limit"
        assert r.header("Retry-After") == "1"
        assert tgw.held.arrived == 2
    finally:
        tgw.held.release()
        for t in ts:
            t.join()
    assert done == [200, 200]
    assert request(tgw.admin_port, "GET", "/ready").json()["traffic"]["active_slots"] == 0
    assert get(tgw, "/held/after").status == 200


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
    wait_for(lambda: request(tgw.admin_port, "GET", "/ready").json()["traffic"]["active_slots"] == 0, 60,
             interval=0.1, what="every slot to be released after the clients left")
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
    dead = dead_port()
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
        before = time.time()
        r = get(gw, "/anon/x")
        after = time.time()
        assert r.header("RateLimit") is None and r.header("RateLimit-Policy") is None
        reset = int(r.header("X-RateLimit-Reset"))
        assert int(before) + 6 <= reset <= math.ceil(after) + 6  # a Unix time, one interval ahead
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
        out = subprocess.run([BIN, "check-config", str(p)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 3 and want in out.stderr, (route_extra, out.stderr)
