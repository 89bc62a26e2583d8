"""Metering and usage (issue 24, items 1, 3, 4): every request a metered
route served is counted per key, route and status class, in SQLite (group
commits) or Redis; refusals are not usage; the usage API, the admin
listener's /usage and `errgate usage` (CSV parsed back) say the same
numbers; totals survive a restart, and a kill -9 loses no more than
metering.max_uncommitted served requests; quota headers on success."""
import calendar
import csv
import io
import json
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import BIN, Gateway, QuietHandler, ThreadedUpstream, free_port, request, wait_for

ADMIN_TOKEN = "admin-token-for-the-metering-tests-01"


class CountingUpstream(ThreadedUpstream):
    """Answers GET /<anything>/status/NNN with NNN, anything else 200; counts
    the requests that arrived (the upper bound of what was served)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrived = 0
        outer = self

        class H(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with outer.lock:
                    outer.arrived += 1
                parts = self.path.split("/")
                status = int(parts[-1]) if len(parts) >= 2 and parts[-2] == "status" else 200
                body = b'{"ok": true}' if status < 400 else b'{"error": "upstream"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(H)

    def count(self):
        with self.lock:
            return self.arrived


@pytest.fixture
def upstream():
    u = CountingUpstream()
    yield u
    u.close()


def config(tmp, port, admin, upstream_port, redis_port=None, metering="", quota_headers="", workers=2,
           redis_timeout="500ms"):
    redis = f'redis: {{ address: "127.0.0.1:{redis_port}", timeout: {redis_timeout} }}' if redis_port else ""
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: {workers}
errors: {{ dialect: flat-snake, negotiate: false }}
store: {{ backend: sqlite, path: {tmp}/usage.db }}
auth: {{ admin_token_file: {tmp}/admin.token }}
{redis}
metering: {{ usage_path: /v1/usage{metering} }}
rate_limits: {{ headers: [] {quota_headers} }}
plans:
  starter: {{ quota: {{ limit: 5, period: month }} }}
upstreams:
  up: {{ servers: ["127.0.0.1:{upstream_port}"], timeout: 10s }}
routes:
  - {{ path: /m/, upstream: up, auth: api_key, meter: true }}
  - {{ path: /b/, upstream: up, auth: api_key, meter: {{ event_type: custom.search, cost: 2.5, bytes: true }} }}
  - {{ path: /anon/, upstream: up, meter: true }}
  - {{ path: /limited/, upstream: up, auth: api_key, meter: true, rate_limit: {{ limit: 2, window: 1h, by: key }} }}
  - {{ path: /day/, upstream: up, auth: api_key, quota: {{ limit: 3, period: day }} }}
  - {{ path: /plain/, upstream: up, auth: api_key }}
  - {{ path: /v1/usage, upstream: up, auth: api_key, dialect: jsonapi }}
"""


def start(tmp, upstream_port, **kw):
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    port, admin = free_port(), free_port()
    return Gateway(tmp, config(tmp, port, admin, upstream_port, **kw), port, admin)


def restart(gw, tmp, upstream_port, **kw):
    """The same configuration (and store) in a new process on the same ports."""
    with open(gw.path) as f:
        text = f.read()
    return Gateway(tmp, text, gw.port, gw.admin_port)


def new_key(gw, plan=None):
    body = {"name": "m"}
    if plan:
        body["plan"] = plan
    r = request(gw.admin_port, "POST", "/keys", body=json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status == 201, r.body
    return r.json()["key"]["id"], r.json()["secret"]


def get(gw, path, key=None):
    return request(gw.port, "GET", path, headers={"X-API-Key": key} if key else {})


def usage(gw, key, query=""):
    r = get(gw, "/v1/usage" + query, key)
    assert r.status == 200, r.body
    return r.json()


def by_type(doc):
    return {u["event_type"]: u for u in doc["usage"]}


def cli(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)


def month_bounds(now=None):
    t = time.gmtime(now or time.time())
    start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
    end = calendar.timegm((t.tm_year + (t.tm_mon == 12), t.tm_mon % 12 + 1, 1, 0, 0, 0))
    return start, end


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def away_from_month_end(margin=120):
    """Totals are per period: near a month's end, wait until the next began."""
    _, end = month_bounds()
    if end - time.time() < margin:
        time.sleep(end - time.time() + 1)


def send_traffic(gw, ka, kb):
    """What each key sends, with the statuses the upstream answers."""
    for _ in range(7):
        assert get(gw, "/m/x", ka).status == 200
    for _ in range(3):
        assert get(gw, "/m/status/404", ka).status == 404
    for _ in range(2):
        assert get(gw, "/m/status/503", ka).status == 503
    for _ in range(4):
        assert get(gw, "/m/y", kb).status == 200
    for _ in range(5):
        assert get(gw, "/b/q", kb).status == 200
    # refusals are not usage: no key, a bad key, over the rate limit
    assert get(gw, "/m/x").status == 401
    assert get(gw, "/m/x", "eg_live_nope_nope").status == 401
    assert [get(gw, "/limited/x", kb).status for _ in range(3)] == [200, 200, 429]
    # a route without meter: is not counted
    assert get(gw, "/plain/x", ka).status == 200


def check_totals(gw, ka, kb, ida, idb):
    a = usage(gw, ka)
    assert a["subject"] == f"k:{ida}" and a["key_id"] == ida
    start, end = month_bounds()
    assert a["from"] == iso(start) and a["to"] == iso(end)  # no quota: the calendar month
    ua = by_type(a)
    assert set(ua) == {"api.request"}
    assert ua["api.request"]["events"] == 12 and ua["api.request"]["quantity"] == 12
    assert ua["api.request"]["by_status_class"] == {"2": 7, "4": 3, "5": 2}
    assert ua["api.request"]["bytes_in"] == 0  # bytes only where the route meters them

    b = usage(gw, kb, "?group_by=route")
    ub = by_type(b)
    assert ub["api.request"]["events"] == 6  # 4 on /m/, 2 on /limited/ (the 429 is not usage)
    assert ub["custom.search"]["events"] == 5 and ub["custom.search"]["quantity"] == 12.5
    assert ub["custom.search"]["bytes_in"] > 5 * 50 and ub["custom.search"]["bytes_out"] > 5 * 12
    groups = {g["route"]: by_type(g) for g in b["groups"]}
    assert set(groups) == {"/m/", "/b/", "/limited/"}
    assert groups["/m/"]["api.request"]["events"] == 4
    assert groups["/limited/"]["api.request"]["events"] == 2
    assert groups["/b/"]["custom.search"]["quantity"] == 12.5

    d = usage(gw, ka, "?group_by=day")
    assert [g["day"] for g in d["groups"]] == [time.strftime("%Y-%m-%d", time.gmtime())]
    assert by_type(d["groups"][0])["api.request"]["events"] == 12

    # the admin listener: every key, or one
    r = request(gw.admin_port, "GET", "/usage", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status == 200, r.body
    subs = {s["subject"]: s for s in r.json()["subjects"]}
    assert by_type(subs[f"k:{ida}"])["api.request"]["events"] == 12
    assert by_type(subs[f"k:{idb}"])["custom.search"]["quantity"] == 12.5
    assert by_type(subs["ip:127.0.0.1"])["api.request"]["events"] == 2  # the anonymous route
    r = request(gw.admin_port, "GET", f"/usage?key={idb}&group_by=route",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert {g["route"] for g in r.json()["groups"]} == {"/m/", "/b/", "/limited/"}
    assert request(gw.admin_port, "GET", "/usage").status == 401
    # like every read-only admin endpoint: 405 naming both methods it takes
    r = request(gw.admin_port, "POST", "/usage", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status == 405 and r.header("Allow") == "GET, HEAD", r.body
    assert "Use GET or HEAD." in r.body.decode(), r.body


def parse_csv(text):
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    return rows


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_usage_totals_against_traffic_sent(tmp_path, upstream, backend):
    redis = None
    if backend == "redis":
        if not (shutil.which("redis-server") or shutil.which("/usr/bin/redis-server")):
            pytest.skip("redis-server is not installed")
        from test_redis import Redis
        redis = Redis(str(tmp_path))
    try:
        away_from_month_end()
        gw = start(str(tmp_path), upstream.port, redis_port=redis.port if redis else None)
        try:
            ida, ka = new_key(gw)
            idb, kb = new_key(gw)
            send_traffic(gw, ka, kb)
            for _ in range(2):
                assert get(gw, "/anon/x").status == 200
            if redis:  # sent per loop iteration: wait until Redis has them all
                wait_for(lambda: by_type(usage(gw, ka)).get("api.request", {}).get("events") == 12,
                         what="the events in Redis")
            check_totals(gw, ka, kb, ida, idb)
        finally:
            assert gw.stop() == 0
        # after a restart the totals are all there
        gw = restart(gw, str(tmp_path), upstream.port)
        try:
            check_totals(gw, ka, kb, ida, idb)
            assert get(gw, "/m/x", ka).status == 200
            wait_for(lambda: by_type(usage(gw, ka))["api.request"]["events"] == 13, what="one more event")
        finally:
            assert gw.stop() == 0
        # the CLI reads the same store; CSV ready for billing, parsed back
        out = subprocess.run([BIN, "usage", "--config", gw.path, "--format", "csv", "--group-by", "route"],
                             capture_output=True, timeout=60)  # bytes: the CRLFs as written
        assert out.returncode == 0, out.stderr
        text = out.stdout.decode()
        assert text.startswith("period_start,period_end,subject,key_id,event_type,route,status_class,"
                               "events,quantity,bytes_in,bytes_out\r\n")
        assert text.count("\r\n") == text.count("\n")  # every line ends CRLF (RFC 4180)
        rows = parse_csv(text)
        start_, end_ = month_bounds()
        assert all(r["period_start"] == iso(start_) and r["period_end"] == iso(end_) for r in rows)
        mine = [r for r in rows if r["key_id"] == ida]
        assert {(r["route"], r["status_class"]): int(r["events"]) for r in mine} == \
            {("/m/", "2"): 8, ("/m/", "4"): 3, ("/m/", "5"): 2}
        theirs = [r for r in rows if r["key_id"] == idb and r["event_type"] == "custom.search"]
        assert len(theirs) == 1 and float(theirs[0]["quantity"]) == 12.5 and int(theirs[0]["bytes_in"]) > 0
        out = cli("usage", "--config", gw.path, "--key", ida, "--format", "json")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert [s["subject"] for s in doc["subjects"]] == [f"k:{ida}"]
        assert by_type(doc["subjects"][0])["api.request"]["events"] == 13
        out = cli("usage", "--config", gw.path)
        assert out.returncode == 0 and f"k:{ida}" in out.stdout and "api.request" in out.stdout
        # a period before any traffic has none
        out = cli("usage", "--config", gw.path, "--from", "2020-01-01", "--to", "2020-01-31", "--format", "csv")
        assert out.returncode == 0 and out.stdout.count("\n") == 1  # the header alone
        assert cli("usage", "--config", gw.path, "--from", "2020-02-30").returncode == 2
        assert cli("usage", "--config", gw.path, "--from", "2020-02-03", "--to", "2020-02-01").returncode == 2
    finally:
        if redis and redis.proc.poll() is None:
            redis.kill()


def test_usage_api_errors_in_the_routes_dialect_and_periods(tmp_path, upstream):
    gw = start(str(tmp_path), upstream.port)
    try:
        _, k = new_key(gw)
        for q, param in [("?from=2026-13-01", "from"), ("?to=yesterday", "to"), ("?group_by=week", "group_by"),
                         ("?from=2026-12-01T10:00:00", "from")]:
            r = get(gw, "/v1/usage" + q, k)
            assert r.status == 400, (q, r.body)
            err = r.json()["errors"][0]  # jsonapi: the route's dialect
            assert err["code"] == "invalid_parameter_value", err
        r = get(gw, "/v1/usage?from=2026-12-05&to=2026-12-01", k)
        assert r.status == 400 and r.json()["errors"][0]["code"] == "invalid_time_range"
        assert get(gw, "/v1/usage").status == 401
        r = request(gw.port, "POST", "/v1/usage", headers={"X-API-Key": k}, body=b"{}")
        assert r.status == 405 and r.header("Allow") == "GET, HEAD"
        # an explicit period, with %-encoded times
        doc = usage(gw, k, "?from=2026-01-01T00%3A00%3A00Z&to=2026-01-31")
        assert doc["from"] == "2026-01-01T00:00:00Z" and doc["to"] == "2026-02-01T00:00:00Z"
        assert doc["usage"] == []
    finally:
        assert gw.stop() == 0


def test_usage_api_reports_the_quota_and_its_period(tmp_path, upstream):
    away_from_month_end()
    gw = start(str(tmp_path), upstream.port)
    try:
        kid, k = new_key(gw, "starter")
        assert [get(gw, "/m/x", k).status for _ in range(2)] == [200, 200]
        doc = usage(gw, k)
        start_, end_ = month_bounds()
        assert doc["from"] == iso(start_) and doc["to"] == iso(end_)  # the plan quota's month
        plan = [q for q in doc["quotas"] if q["scope"] == "plan"]
        # the plan's quota counts every route's requests, the usage call itself too
        assert plan == [{"scope": "plan", "name": "starter", "period": "month", "limit": 5, "used": 3,
                         "remaining": 2, "reset": iso(end_)}]
        day = [q for q in doc["quotas"] if q["scope"] == "route"]
        assert day and day[0]["name"] == "/day/" and day[0]["limit"] == 3 and day[0]["used"] == 0
    finally:
        assert gw.stop() == 0


def test_quota_headers_on_success(tmp_path, upstream):
    away_from_month_end()
    gw = start(str(tmp_path), upstream.port,
               quota_headers=", quota_headers: [legacy, ietf], quota_header_names: { remaining: X-Quota-Left }")
    try:
        _, k = new_key(gw, "starter")
        _, end = month_bounds()
        window = (end - month_bounds()[0])
        seen = []
        for i in range(5):
            before = time.time()
            r = get(gw, "/plain/x", k)
            after = time.time()
            assert r.status == 200
            assert r.header("X-Quota-Limit") == "5"
            assert r.header("X-Quota-Left") == str(4 - i)
            assert r.header("X-Quota-Remaining") is None  # renamed
            assert int(end - after) - 1 <= int(r.header("X-Quota-Reset")) <= int(end - before) + 1
            assert r.header("RateLimit-Policy") == f'"quota-month";q=5;w={window};qu="request"'
            t = int(r.header("RateLimit").split(";t=")[1])
            assert r.header("RateLimit").startswith(f'"quota-month";r={4 - i};t=')
            assert int(end - after) - 1 <= t <= int(end - before) + 1
            seen.append(r.header("X-Quota-Left"))
        r = get(gw, "/plain/x", k)
        assert r.status == 429 and r.json()["error"] == "quota_exceeded"
        # the route's daily quota is tighter than what the plan has left: it is the one shown
        _, k2 = new_key(gw, "starter")
        r = get(gw, "/day/x", k2)
        assert r.header("X-Quota-Limit") == "3" and r.header("X-Quota-Left") == "2"
        assert r.header("RateLimit-Policy") == '"quota-day";q=3;w=86400;qu="request"'
        # no quota, no quota headers
        _, k3 = new_key(gw)
        r = get(gw, "/plain/x", k3)
        assert r.status == 200 and r.header("X-Quota-Limit") is None and r.header("RateLimit") is None
    finally:
        assert gw.stop() == 0


def test_no_quota_headers_unless_configured(tmp_path, upstream):
    gw = start(str(tmp_path), upstream.port)
    try:
        _, k = new_key(gw, "starter")
        r = get(gw, "/plain/x", k)
        assert r.status == 200 and r.header("X-Quota-Limit") is None and r.header("RateLimit-Policy") is None
    finally:
        assert gw.stop() == 0


def kill9_under_load(gw, upstream, kid, k, clients):
    """clients hammer /m/x with key k (id kid), each waiting for its answer
    before the next request, until 300 were answered 200; then kill -9.
    Returns (answered 200 in full, reached the upstream, metered for kid)."""
    ok = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                r = get(gw, "/m/x", k)
            except (OSError, ValueError):
                continue
            if r.status == 200:
                with lock:
                    ok[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: ok[0] >= 300, timeout=60, what="300 served requests")
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait()
    finally:
        stop.set()
        for t in threads:
            t.join()
        gw.kill()
    served_ok, arrived = ok[0], upstream.count()
    out = cli("usage", "--config", gw.path, "--key", kid, "--format", "json")
    assert out.returncode == 0, out.stderr
    subs = json.loads(out.stdout)["subjects"]
    return served_ok, arrived, by_type(subs[0])["api.request"]["events"] if subs else 0


def test_kill9_loses_at_most_max_uncommitted(tmp_path, upstream):
    """Clients hammer a metered route; the gateway is killed -9 mid-stream and
    restarted. Every response a client got in full was metered but at most
    max_uncommitted, and nothing is metered the upstream never saw."""
    away_from_month_end()
    bound = 40
    metering = f", commit_every: 20, commit_interval: 2s, max_uncommitted: {bound}"
    gw = start(str(tmp_path), upstream.port, metering=metering)
    kid, k = new_key(gw)
    served_ok, arrived, metered = kill9_under_load(gw, upstream, kid, k, 4)
    print(f"kill -9: {arrived} reached the upstream, {served_ok} answered 200 in full, {metered} metered")
    assert metered <= arrived, (metered, arrived)
    assert arrived - metered <= bound, (metered, arrived, served_ok)
    assert served_ok - metered <= bound, (metered, served_ok)
    # and a restart goes on from there
    gw = restart(gw, str(tmp_path), upstream.port)
    try:
        assert get(gw, "/m/x", k).status == 200
        wait_for(lambda: by_type(usage(gw, k))["api.request"]["events"] == metered + 1, what="one more event")
    finally:
        assert gw.stop() == 0


def test_config_refuses_what_cannot_be_metered(tmp_path, upstream):
    tmp = str(tmp_path)
    bad = {
        "memory": "store: { backend: memory }\nupstreams: { up: { servers: [\"127.0.0.1:1\"] } }\n"
                  "routes:\n  - { path: /m/, upstream: up, meter: true }\n",
        "nocover": "upstreams: { up: { servers: [\"127.0.0.1:1\"] } }\nmetering: { usage_path: /v1/usage }\n"
                   "routes:\n  - { path: /m/, upstream: up, meter: true }\n",
        "noauth": "upstreams: { up: { servers: [\"127.0.0.1:1\"] } }\nmetering: { usage_path: /v1/usage }\n"
                  "routes:\n  - { path: /v1/, upstream: up }\n",
        "cost": "upstreams: { up: { servers: [\"127.0.0.1:1\"] } }\n"
                "routes:\n  - { path: /m/, upstream: up, meter: { cost: 0 } }\n",
    }
    for name, text in bad.items():
        p = f"{tmp}/{name}.yaml"
        with open(p, "w") as f:
            f.write("listen: 127.0.0.1:1\n" + text)
        out = cli("check-config", p)
        assert out.returncode != 0, (name, out.stdout, out.stderr)


def test_two_gateways_on_one_redis_add_to_one_total(tmp_path, upstream):
    if not (shutil.which("redis-server") or shutil.which("/usr/bin/redis-server")):
        pytest.skip("redis-server is not installed")
    from test_redis import Redis
    away_from_month_end()
    redis = Redis(str(tmp_path))
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    gws = []
    try:
        a = start(str(a_dir), upstream.port, redis_port=redis.port)
        gws.append(a)
        kid, k = new_key(a)
        # the second gateway shares the key store file and Redis
        with open(a.path) as f:
            text = f.read().replace(str(a.port), "{P}").replace(str(a.admin_port), "{A}")
        bp, ba = free_port(), free_port()
        b = Gateway(str(b_dir), text.replace("{P}", str(bp)).replace("{A}", str(ba)), bp, ba)
        gws.append(b)
        wait_for(lambda: get(b, "/m/x", k).status == 200, what="the key on the second gateway")
        for _ in range(9):
            assert get(a, "/m/x", k).status == 200
        for _ in range(5):
            assert get(b, "/m/status/404", k).status == 404
        # one total in Redis, whichever gateway is asked
        want = {"2": 10, "4": 5}
        for gw in (a, b):
            wait_for(lambda: by_type(usage(gw, k))["api.request"]["by_status_class"] == want,
                     what="both gateways' events in one total")
        out = cli("usage", "--config", b.path, "--key", kid, "--format", "json")
        assert out.returncode == 0, out.stderr
        assert by_type(json.loads(out.stdout)["subjects"][0])["api.request"]["events"] == 15
    finally:
        for gw in gws:
            assert gw.stop() == 0
        redis.kill()


def test_redis_counts_identical_events_sent_together(tmp_path, upstream):
    """Identical events a worker has waiting go to Redis once with their
    count (redis_link.h). Redis paused for writes holds the worker's batch in
    flight, so the requests served meanwhile wait together for the next
    one: 40 requests from one key on one route are 40 events all the same."""
    redis_cli = shutil.which("redis-cli")
    if not (shutil.which("redis-server") or shutil.which("/usr/bin/redis-server")) or not redis_cli:
        pytest.skip("redis-server is not installed")
    from test_redis import Redis
    away_from_month_end()
    redis = Redis(str(tmp_path))
    gw = None
    try:
        gw = start(str(tmp_path), upstream.port, redis_port=redis.port, workers=1, redis_timeout="10s")
        _, k = new_key(gw)
        wait_for(lambda: get(gw, "/m/x", k).status == 200, what="the key")
        wait_for(lambda: by_type(usage(gw, k)).get("api.request", {}).get("events") == 1, what="the first event")
        subprocess.run([redis_cli, "-p", str(redis.port), "CLIENT", "PAUSE", "300", "WRITE"], check=True,
                       capture_output=True, timeout=10)
        assert [get(gw, "/m/x", k).status for _ in range(40)] == [200] * 40
        wait_for(lambda: by_type(usage(gw, k))["api.request"]["events"] == 41, what="41 events in Redis")
        u = by_type(usage(gw, k))["api.request"]
        assert u["quantity"] == 41 and u["by_status_class"] == {"2": 41}
    finally:
        if gw:
            assert gw.stop() == 0
        redis.kill()


def test_a_reload_keeps_counting(tmp_path, upstream):
    away_from_month_end()
    gw = start(str(tmp_path), upstream.port)
    try:
        _, k = new_key(gw)
        for _ in range(3):
            assert get(gw, "/m/x", k).status == 200
        with open(gw.path) as f:  # the same rules in a new configuration generation
            gw.rewrite(f.read().replace("meter: true }", "meter: { cost: 2 } }", 1))
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        for _ in range(4):
            assert get(gw, "/m/x", k).status == 200
        u = by_type(usage(gw, k))["api.request"]
        assert u["events"] == 7 and u["quantity"] == 3 + 4 * 2
    finally:
        assert gw.stop() == 0


def unmetered(text):
    """The same configuration without metering: no meter: and no usage API."""
    text = text.replace(", meter: true", "").replace(
        ", meter: { event_type: custom.search, cost: 2.5, bytes: true }", "")
    lines = [ln for ln in text.splitlines() if not ln.startswith("metering:")]
    return "\n".join(lines) + "\n"


def test_a_reload_brings_metering_and_its_settings(tmp_path, upstream):
    """Started without meter: (nothing opened the usage store), a reload that
    adds it is metered at once, not answered 503 until a restart; a reload
    that changes metering.max_uncommitted / commit_interval applies them."""
    away_from_month_end()
    tmp = str(tmp_path)
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    port, admin = free_port(), free_port()
    metered = config(tmp, port, admin, upstream.port)
    gw = Gateway(tmp, unmetered(metered), port, admin)
    try:
        kid, k = new_key(gw)
        assert get(gw, "/m/x", k).status == 200  # not metered: no usage store yet
        gw.rewrite(metered)
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        assert gw.events("reload_failed") == []
        for _ in range(3):
            assert get(gw, "/m/x", k).status == 200
        assert get(gw, "/anon/x").status == 200
        u = by_type(usage(gw, k))["api.request"]
        assert u["events"] == 3 and u["by_status_class"] == {"2": 3}
        r = request(gw.admin_port, "GET", "/usage", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.status == 200, r.body
        subs = {s["subject"]: s for s in r.json()["subjects"]}
        assert by_type(subs["ip:127.0.0.1"])["api.request"]["events"] == 1
        # one uncommitted event at most, committed a minute after the first:
        # the second request finds the place held and is refused, not served
        gw.rewrite(config(tmp, port, admin, upstream.port,
                          metering=", commit_every: 1000, commit_interval: 60s, max_uncommitted: 1"))
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded", count=2)
        assert get(gw, "/m/x", k).status == 200
        r = get(gw, "/m/x", k)
        assert r.status == 503 and r.header("Retry-After") == "1", r.body
        assert "service_unavailable" in json.dumps(r.json()), r.body
        assert by_type(usage(gw, k))["api.request"]["events"] == 4  # the usage API commits first
        assert get(gw, "/m/x", k).status == 200  # the place is free again
    finally:
        assert gw.stop() == 0
    out = cli("usage", "--config", gw.path, "--key", kid, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert by_type(json.loads(out.stdout)["subjects"][0])["api.request"]["events"] == 5


def test_kill9_with_redis_loses_at_most_the_loop_iterations_events(tmp_path, upstream):
    """Redis: a worker sends the events of a loop iteration in one call at its
    end, so a kill -9 loses at most the events of requests whose response
    was complete and whose event was not sent yet: with C clients that each
    wait for their response before the next request, at most C of the
    responses they got in full, and 2C of what reached the upstream (one
    more request each the gateway had not answered)."""
    if not (shutil.which("redis-server") or shutil.which("/usr/bin/redis-server")):
        pytest.skip("redis-server is not installed")
    from test_redis import Redis
    away_from_month_end()
    redis = Redis(str(tmp_path))
    clients = 4
    try:
        gw = start(str(tmp_path), upstream.port, redis_port=redis.port)
        kid, k = new_key(gw)
        served_ok, arrived, metered = kill9_under_load(gw, upstream, kid, k, clients)
        print(f"kill -9 (Redis): {arrived} reached the upstream, {served_ok} answered 200, {metered} metered")
        assert metered <= arrived, (metered, arrived)
        assert served_ok - metered <= clients, (metered, served_ok)
        assert arrived - metered <= 2 * clients, (metered, arrived)
    finally:
        redis.kill()
