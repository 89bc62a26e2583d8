"""Quotas and credits (issue 5): exact, durable across kill -9 and restart,
period rollover with an injected clock, top-ups through the admin API and CLI."""
import calendar
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import BIN, Gateway, free_port, request

ADMIN_TOKEN = "admin-token-for-the-quota-tests-0123"


def config(tmp, port, admin, upstream, backend="sqlite"):
    store = f"{{ backend: sqlite, path: {tmp}/quota.db }}" if backend == "sqlite" else "{ backend: memory }"
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
errors: {{ dialect: flat-snake, negotiate: false }}
store: {store}
auth: {{ admin_token_file: {tmp}/admin.token }}
plans:
  starter: {{ quota: {{ limit: 6, period: month, upgrade_url: "https://example.com/upgrade" }} }}
  metered: {{ credits: {{ cost: 1, purchase_url: "https://example.com/plan-credits" }} }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream}"] }}
routes:
  - {{ path: /day/, upstream: demo, auth: api_key, quota: {{ limit: 10, period: day }} }}
  - {{ path: /tight/, upstream: demo, auth: api_key, quota: {{ limit: 15, period: day }} }}
  - {{ path: /month/, upstream: demo, auth: api_key, quota: {{ limit: 2, period: month }} }}
  - {{ path: /paid/, upstream: demo, auth: api_key, credits: {{ cost: 3, purchase_url: "https://example.com/buy" }} }}
  - {{ path: /v1/, upstream: demo, auth: api_key }}
"""


def start(tmp, upstream, backend="sqlite", offset=None, port=None, admin=None):
    port, admin = port or free_port(), admin or free_port()
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    old = os.environ.get("ERRGATE_CLOCK_OFFSET")
    if offset is not None:
        os.environ["ERRGATE_CLOCK_OFFSET"] = str(offset)
    try:
        return Gateway(tmp, config(tmp, port, admin, upstream, backend), port, admin)
    finally:
        if offset is not None:
            if old is None:
                del os.environ["ERRGATE_CLOCK_OFFSET"]
            else:
                os.environ["ERRGATE_CLOCK_OFFSET"] = old


def new_key(gw, plan=None):
    body = {"name": "q"}
    if plan:
        body["plan"] = plan
    r = request(gw.admin_port, "POST", "/keys", body=json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status == 201, r.body
    return r.json()["key"]["id"], r.json()["secret"]


def get(gw, path, key):
    return request(gw.port, "GET", path, headers={"X-API-Key": key})


@pytest.fixture
def qgw(tmp_path, upstream_port):
    gw = start(str(tmp_path), upstream_port)
    yield gw
    assert gw.stop() == 0


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_quota_exact_then_429_with_the_seed_details(tmp_path, upstream_port, backend):
    gw = start(str(tmp_path), upstream_port, backend)
    try:
        _, k = new_key(gw)
        assert [get(gw, "/day/x", k).status for _ in range(10)] == [200] * 10
        r = get(gw, "/day/x", k)
        assert r.status == 429
        body = r.json()
        assert body["error"] == "quota_exceeded"
        d = body["details"]
        assert d["current_usage"] == 10 and d["quota_limit"] == 10 and d["quota_period"] == "day"
        midnight = (int(time.time()) // 86400 + 1) * 86400
        assert d["reset_date"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(midnight))
        assert abs(int(r.header("Retry-After")) - (midnight - time.time())) <= 2
        # another key has its own quota
        _, k2 = new_key(gw)
        assert get(gw, "/day/x", k2).status == 200
    finally:
        assert gw.stop() == 0


def test_plan_quota_with_upgrade_url(qgw):
    _, k = new_key(qgw, "starter")
    statuses = [get(qgw, "/v1/x", k).status for _ in range(7)]
    assert statuses == [200] * 6 + [429]
    d = get(qgw, "/v1/x", k).json()["details"]
    assert d["quota_period"] == "month" and d["quota_limit"] == 6
    assert d["upgrade_url"] == "https://example.com/upgrade"
    assert d["reset_date"].endswith("-01T00:00:00Z")


def test_quota_exact_under_concurrency(qgw):
    _, k = new_key(qgw)
    results = []
    lock = threading.Lock()

    def hit():
        s = get(qgw, "/tight/x", k).status
        with lock:
            results.append(s)

    threads = [threading.Thread(target=hit) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) == 15 and results.count(429) == 25


def test_credits_top_up_spend_and_deplete(qgw):
    kid, k = new_key(qgw)
    r = get(qgw, "/paid/x", k)
    assert r.status == 429 and r.json()["error"] == "credits_depleted"
    d = r.json()["details"]
    assert d["remaining_credits"] == 0 and d["required_credits"] == 3 and d["purchase_url"] == "https://example.com/buy"
    top = request(qgw.admin_port, "POST", f"/keys/{kid}/credits", body=b'{"add": 10}',
                  headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert top.status == 200 and top.json()["credits"] == 10
    assert [get(qgw, "/paid/x", k).status for _ in range(4)] == [200, 200, 200, 429]
    out = subprocess.run([BIN, "keys", "credits", "--config", qgw.path, kid], capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["credits"] == 1
    out = subprocess.run([BIN, "keys", "credits", "--config", qgw.path, kid, "--add", "5"], capture_output=True, text=True)
    assert json.loads(out.stdout)["credits"] == 6
    assert get(qgw, "/paid/x", k).status == 200
    r = request(qgw.admin_port, "GET", f"/keys/{kid}/credits", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.json()["credits"] == 3
    # taking back more than there is, or bad amounts, are refused
    out = subprocess.run([BIN, "keys", "credits", "--config", qgw.path, kid, "--add", "-100"], capture_output=True, text=True)
    assert out.returncode == 3
    out = subprocess.run([BIN, "keys", "credits", "--config", qgw.path, kid, "--add", "ten"], capture_output=True, text=True)
    assert out.returncode == 2
    r = request(qgw.admin_port, "POST", f"/keys/{kid}/credits", body=b'{"add": "ten"}',
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status == 400


def test_nothing_lost_or_counted_twice_across_kill_9(tmp_path, upstream_port):
    tmp = str(tmp_path)
    gw = start(tmp, upstream_port)
    kid, k = new_key(gw)
    request(gw.admin_port, "POST", f"/keys/{kid}/credits", body=b'{"add": 30}',
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert [get(gw, "/day/x", k).status for _ in range(4)] == [200] * 4
    assert [get(gw, "/paid/x", k).status for _ in range(3)] == [200] * 3  # 9 credits spent
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait()
    gw.logf.close()
    gw = start(tmp, upstream_port, port=gw.port, admin=gw.admin_port)
    try:
        # exactly 6 left of the day's 10, and 21 credits = 7 requests
        assert [get(gw, "/day/x", k).status for _ in range(7)] == [200] * 6 + [429]
        assert [get(gw, "/paid/x", k).status for _ in range(8)] == [200] * 7 + [429]
    finally:
        assert gw.stop() == 0
    # and a clean restart keeps it too
    gw = start(tmp, upstream_port, port=gw.port, admin=gw.admin_port)
    try:
        assert get(gw, "/day/x", k).status == 429
        out = subprocess.run([BIN, "keys", "credits", "--config", gw.path, kid], capture_output=True, text=True)
        assert json.loads(out.stdout)["credits"] == 0
    finally:
        assert gw.stop() == 0


def seconds_to(year, month, day, hour, minute, second):
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - time.time()


def test_day_and_month_rollover_with_an_injected_clock(tmp_path, upstream_port):
    # the gateway's clock is set to 2 seconds before midnight on 31 January 2027
    offset = int(seconds_to(2027, 1, 31, 23, 59, 58))
    gw = start(str(tmp_path), upstream_port, offset=offset)
    try:
        _, k = new_key(gw)
        assert [get(gw, "/month/x", k).status for _ in range(3)] == [200, 200, 429]
        r = get(gw, "/month/x", k)
        assert r.json()["details"]["reset_date"] == "2027-02-01T00:00:00Z"
        for _ in range(10):
            get(gw, "/day/x", k)
        assert get(gw, "/day/x", k).status == 429
        # past midnight on the gateway's clock: a new day and a new month.
        # Waited for by the clock rather than a fixed sleep: the whole-second
        # offset starts the clock anywhere in 23:59:57-58, so 2.6 s after
        # these requests could still be before midnight.
        midnight = calendar.timegm((2027, 2, 1, 0, 0, 0, 0, 0, 0)) - offset
        time.sleep(max(0.0, midnight - time.time()) + 0.5)
        assert [get(gw, "/month/x", k).status for _ in range(3)] == [200, 200, 429]
        assert get(gw, "/day/x", k).status == 200
        assert get(gw, "/month/x", k).json()["details"]["reset_date"] == "2027-03-01T00:00:00Z"
    finally:
        assert gw.stop() == 0


def test_bad_clock_offset_is_refused(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("listen: 127.0.0.1:1\nupstreams: { a: { servers: [127.0.0.1:2] } }\nroutes: [{ path: /x, upstream: a }]\n")
    out = subprocess.run([BIN, "serve", "--config", str(p)], capture_output=True, text=True,
                         env={**os.environ, "ERRGATE_CLOCK_OFFSET": "soon"})
    assert out.returncode == 2 and "ERRGATE_CLOCK_OFFSET" in out.stderr


def test_cli_moves_a_key_to_another_plan_live(qgw):
    kid, k = new_key(qgw)
    assert [get(qgw, "/v1/x", k).status for _ in range(7)] == [200] * 7  # no plan: no quota
    out = subprocess.run([BIN, "keys", "plan", "--config", qgw.path, kid, "--plan", "starter"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["key"]["plan"] == "starter"
    deadline = time.time() + 5  # the gateway picks it up within store.refresh (1s)
    while get(qgw, "/v1/x", k).status == 200:
        assert time.time() < deadline, "the new plan was never applied"
        time.sleep(0.2)
    r = get(qgw, "/v1/x", k)
    assert r.status == 429 and r.json()["details"]["quota_limit"] == 6
    out = subprocess.run([BIN, "keys", "plan", "--config", qgw.path, kid, "--plan", "gold"], capture_output=True, text=True)
    assert out.returncode == 3 and "gold" in out.stderr
    out = subprocess.run([BIN, "keys", "plan", "--config", qgw.path, kid], capture_output=True, text=True)
    assert out.returncode == 2
    out = subprocess.run([BIN, "keys", "plan", "--config", qgw.path, kid, "--plan", "none"], capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["key"]["plan"] is None


def test_plan_credits_add_to_the_routes_cost(qgw):
    kid, k = new_key(qgw, "metered")
    r = get(qgw, "/v1/x", k)
    assert r.status == 429 and r.json()["error"] == "credits_depleted"
    assert r.json()["details"]["purchase_url"] == "https://example.com/plan-credits"
    assert r.json()["details"]["required_credits"] == 1
    request(qgw.admin_port, "POST", f"/keys/{kid}/credits", body=b'{"add": 6}',
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert get(qgw, "/v1/x", k).status == 200        # 1 credit: 5 left
    assert get(qgw, "/paid/x", k).status == 200      # 3 + 1: 1 left
    r = get(qgw, "/paid/x", k)
    assert r.status == 429 and r.json()["details"]["required_credits"] == 4
    assert r.json()["details"]["remaining_credits"] == 1
    assert r.json()["details"]["purchase_url"] == "https://example.com/buy"  # the route's own wins
    assert get(qgw, "/v1/x", k).status == 200
    assert get(qgw, "/v1/x", k).status == 429
