"""Metrics, /health and the log fields (issue 23 items 1, 4, 6).

Known traffic is sent and the counters' values written here are checked in
the scrape: the exposition is parsed by this file, and `promtool check
metrics` (Debian's prometheus package) must accept it.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import threading

import pytest

from conftest import BIN, Gateway, HeldUpstream, dead_port, free_port, request, wait_for

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels)): value} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def config(port, admin, upstream, extra=""):
    dead = dead_port()
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
errors: {{ dialect: flat-snake }}
log: {{ access: stderr, request_headers: [X-Client-Version] }}
store: {{ backend: memory }}
metrics: {{ buckets: [0.05, 0.5, 2] }}
{extra}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream}"] }}
  slow: {{ servers: ["127.0.0.1:{upstream}"], timeout: 300ms }}
  dead: {{ servers: ["127.0.0.1:{dead}"], connect_timeout: 1s }}
routes:
  - path: /ok/
    upstream: demo
  - path: /limited/
    upstream: demo
    rate_limit: {{ limit: 2, window: 1h, by: ip, name: ip-2h }}
  - path: /slow/
    upstream: slow
  - path: /dead/
    upstream: dead
  - path: /private/
    upstream: demo
    auth: api_key
"""


@pytest.fixture
def mgw(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), config(port, admin, upstream_port, extra="health_path: /healthz"), port, admin)
    gw.upstream_port = upstream_port
    yield gw
    assert gw.stop() == 0, gw.log_text()[-3000:]


def scrape(gw, accept=None):
    r = request(gw.admin_port, "GET", "/metrics", headers={"Accept": accept} if accept else None)
    assert r.status == 200
    return r


def check_exposition(gw):
    """promtool accepts the text format, and the Python client's strict
    parser the OpenMetrics one (each when installed: Debian's prometheus
    and python3-prometheus-client, scripts/deps.sh --test). Returns the
    OpenMetrics families by name, or None."""
    text = scrape(gw)
    assert text.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=text.body, capture_output=True)
        assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    try:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    except ImportError:
        return None
    om = scrape(gw, accept="application/openmetrics-text").body.decode()
    return {f.name: f for f in text_string_to_metric_families(om)}


def scrape_all(gw, total):
    """The parsed scrape once `total` requests in all are counted: a request
    is counted just after its last bytes are queued, so a client can read
    its answer a moment before."""
    def counted():
        s = parse(scrape(gw).body.decode())
        return s if sum(v for (name, _), v in s.items() if name == "errgate_requests_total") >= total else None
    return wait_for(counted, 10, what=f"{total} requests counted")


def test_known_traffic_is_counted_and_promtool_accepts_it(mgw):
    gw = mgw
    n, m, k = 5, 3, 3
    for _ in range(n):
        assert request(gw.port, "GET", "/ok/a", headers={"X-Client-Version": "7.1"}).status == 200
    for _ in range(m):
        assert request(gw.port, "GET", "/nowhere").status == 404
    statuses = [request(gw.port, "GET", "/limited/x").status for _ in range(2 + k)]
    assert statuses == [200, 200] + [429] * k
    assert request(gw.port, "GET", "/slow/x?ms=3000").status == 504  # one upstream timeout
    assert request(gw.port, "GET", "/dead/x").status == 502
    assert request(gw.port, "POST", "/private/x").status == 401

    s = scrape_all(gw, n + m + 2 + k + 3)
    req = "errgate_requests_total"
    assert value(s, req, route="/ok/", method="GET", status="200") == n
    assert value(s, req, route="(none)", method="GET", status="404") == m
    assert value(s, req, route="/limited/", method="GET", status="200") == 2
    assert value(s, req, route="/limited/", method="GET", status="429") == k
    assert value(s, req, route="/slow/", method="GET", status="504") == 1
    assert value(s, req, route="/dead/", method="GET", status="502") == 1
    err = "errgate_errors_total"
    assert value(s, err, route="(none)", code="not_found") == m
    assert value(s, err, route="/limited/", code="rate_limit_exceeded") == k
    assert value(s, err, route="/slow/", code="gateway_timeout") == 1
    assert value(s, err, route="/dead/", code="bad_gateway") == 1
    assert value(s, err, route="/ok/", code="not_found") == 0
    assert value(s, "errgate_traffic_refusals_total", route="/limited/", kind="rate_limit", policy="ip-2h") == k
    assert value(s, "errgate_auth_failures_total", route="/private/", code="missing_api_key") == 1
    slow = f"127.0.0.1:{gw.upstream_port}"
    assert value(s, "errgate_upstream_failures_total", upstream="slow", server=slow, kind="timeout") == 1
    assert [v for (name, labels), v in s.items()
            if name == "errgate_upstream_failures_total" and ("upstream", "dead") in labels
            and ("kind", "connect_failed") in labels] == [1]
    # histograms: every /ok/ request and its upstream answer, under the configured buckets
    assert value(s, "errgate_request_duration_seconds_count", route="/ok/") == n
    assert value(s, "errgate_request_duration_seconds_bucket", route="/ok/", le="+Inf") == n
    assert value(s, "errgate_upstream_duration_seconds_count", route="/ok/") == n
    assert value(s, "errgate_upstream_duration_seconds_count", route="/limited/") == 2
    assert ("errgate_request_duration_seconds_bucket", frozenset({("route", "/ok/"), ("le", "0.05")})) in s
    assert value(s, "errgate_upstream_server_up", upstream="demo", server=f"127.0.0.1:{gw.upstream_port}") == 1
    assert value(s, "errgate_config_reloads_total", result="failure") == 0
    assert value(s, "errgate_build_info", version=s and next(
        dict(l)["version"] for (nm, l) in s if nm == "errgate_build_info")) == 1
    # the JSON snapshot has the same numbers
    j = request(gw.admin_port, "GET", "/metrics.json").json()
    series = j["metrics"]["errgate_requests_total"]["series"]
    assert {"labels": {"route": "/ok/", "method": "GET", "status": "200"}, "value": n} in series
    hist = [x for x in j["metrics"]["errgate_request_duration_seconds"]["series"] if x["labels"]["route"] == "/ok/"]
    assert hist[0]["count"] == n and hist[0]["counts"][-1] == n and len(hist[0]["counts"]) == 4
    assert j["metrics"]["errgate_request_duration_seconds"]["buckets"] == [0.05, 0.5, 2]

    if not shutil.which("promtool"):
        pytest.skip("promtool (Debian package prometheus) is not installed")
    fams = check_exposition(gw)
    if fams:
        assert fams["errgate_requests"].type == "counter"
        assert {(tuple(sorted(x.labels.items())), x.value) for x in fams["errgate_requests"].samples} >= {
            ((("method", "GET"), ("route", "/ok/"), ("status", "200")), n)}
        assert fams["errgate_request_duration_seconds"].type == "histogram"


def test_openmetrics_when_accept_asks(mgw):
    request(mgw.port, "GET", "/ok/a")
    # counted just after its last bytes were queued: the scrape waits for it
    scrape_all(mgw, 1)
    r = scrape(mgw, accept="application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert r.header("Content-Type").startswith("application/openmetrics-text; version=1.0.0")
    text = r.body.decode()
    assert text.endswith("# EOF\n")
    # counters: the family without _total, its samples with it
    assert "# TYPE errgate_requests counter\n" in text
    assert re.search(r'^errgate_requests_total\{route="/ok/",method="GET",status="200"\} 1$', text, re.M)
    assert '# TYPE errgate_request_duration_seconds histogram' in text
    assert re.search(r'^errgate_request_duration_seconds_bucket\{route="/ok/",le="0\.05"\} ', text, re.M)
    assert request(mgw.admin_port, "GET", "/metrics?module=errgate").status == 200
    r = request(mgw.admin_port, "POST", "/metrics", body=b"")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"
    r = request(mgw.admin_port, "HEAD", "/metrics.json")
    assert r.status == 200 and r.body == b"" and r.header("Content-Type") == "application/json"
    plain = scrape(mgw).body.decode()
    assert "# EOF" not in plain and "# TYPE errgate_requests_total counter\n" in plain


def test_counters_survive_a_reload(mgw):
    gw = mgw
    for _ in range(3):
        request(gw.port, "GET", "/ok/a")
    gw.rewrite(config(gw.port, gw.admin_port, gw.upstream_port, extra="health_path: /healthz").replace(
        "  - path: /limited/", "  - path: /new/\n    upstream: demo\n  - path: /limited/"))
    gw.signal(signal.SIGHUP)
    gw.wait_event("reloaded")
    request(gw.port, "GET", "/ok/a")
    request(gw.port, "GET", "/new/a")

    s = scrape_all(gw, 5)
    assert value(s, "errgate_requests_total", route="/new/", method="GET", status="200") == 1
    assert value(s, "errgate_requests_total", route="/ok/", method="GET", status="200") == 4
    assert value(s, "errgate_config_generation") == 1
    assert value(s, "errgate_config_reloads_total", result="success") == 1
    # buckets take effect on restart: a reload that changes them is told so, and they stay
    gw.rewrite(config(gw.port, gw.admin_port, gw.upstream_port).replace("[0.05, 0.5, 2]", "[1, 2]"))
    gw.signal(signal.SIGHUP)
    gw.wait_log(lambda l: l.get("event") == "reload_warning" and "metrics.buckets" in l.get("detail", ""),
                "the buckets' reload warning")
    j = request(gw.admin_port, "GET", "/metrics.json").json()
    assert j["metrics"]["errgate_request_duration_seconds"]["buckets"] == [0.05, 0.5, 2]


def test_health_states(mgw):
    gw = mgw
    r = request(gw.admin_port, "GET", "/health")
    h = r.json()
    assert r.status == 200 and h["status"] == "ok"
    assert h["upstreams"]["demo"] == {"state": "up", "servers_up": 1, "servers": 1}
    assert h["store"]["backend"] == "memory" and h["store"]["state"] == "up"
    # the API listener too (health_path), with the same document
    r = request(gw.port, "GET", "/healthz")
    assert r.status == 200 and r.json()["status"] == "ok" and r.header("X-Request-ID")
    r = request(gw.port, "HEAD", "/healthz")
    assert r.status == 200 and r.body == b"" and int(r.header("Content-Length")) > 0
    # a dead upstream marked down (max_fails 3 by default): degraded, still 200
    for _ in range(3):
        request(gw.port, "GET", "/dead/x")
    h = wait_for(lambda: (lambda d: d if d["status"] == "degraded" else None)(
        request(gw.admin_port, "GET", "/health").json()), 10, what="degraded")
    assert h["upstreams"]["dead"]["state"] == "down"


def test_health_503_while_draining(tmp_path, upstream_port):
    held = HeldUpstream()
    port, admin = free_port(), free_port()
    text = config(port, admin, upstream_port).replace(
        "routes:\n", f"  held: {{ servers: [\"127.0.0.1:{held.port}\"], timeout: 60s }}\nroutes:\n  - path: /held/\n    upstream: held\n")
    gw = Gateway(str(tmp_path), text, port, admin)
    try:
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", request(port, "GET", "/held/x", timeout=60)))
        t.start()
        held.wait_arrived(1)  # in flight: the drain waits for it
        gw.signal(signal.SIGTERM)

        def draining():
            r = request(admin, "GET", "/health")
            return r if r.status == 503 else None
        r = wait_for(draining, 10, what="/health 503 while draining")
        assert r.header("Retry-After") == "5"
        e = r.json()  # the dialect's error (flat-snake), with the health as a detail
        assert e["error"] == "service_unavailable", e
        assert e["details"]["health"]["status"] == "draining", e
        assert e["details"]["health"]["upstreams"]["held"]["state"] == "up", e
        held.release()
        t.join(30)
        assert out["r"].status == 200
        assert gw.proc.wait(30) == 0
    finally:
        held.close()
        gw.kill()


def test_log_fields_and_a_secret_header_refused(mgw, tmp_path, upstream_port):
    gw = mgw
    request(gw.port, "GET", "/ok/a", headers={"X-Client-Version": "7.1", "Authorization": "Bearer x"})
    request(gw.port, "GET", "/slow/x?ms=3000")
    ok = gw.wait_log(lambda l: l.get("kind") == "access" and l.get("path") == "/ok/a", "the access line")[0]
    assert ok["headers"] == {"X-Client-Version": "7.1"}
    assert ok["upstream_status"] == 200 and ok["upstream_latency_us"] >= 0
    slow = gw.wait_log(lambda l: l.get("kind") == "access" and l.get("path", "").startswith("/slow/"), "slow")[0]
    assert slow["status"] == 504 and slow["code"] == "gateway_timeout"
    assert slow["message"] == "The upstream service did not answer within 300ms."
    err = gw.wait_log(lambda l: l.get("kind") == "error" and l.get("code") == "gateway_timeout", "error line")[0]
    assert err["message"] == "The upstream service did not answer within 300ms."
    # secrets are refused at load, with where
    for name in ("Authorization", "Cookie", "X-API-Key", "X-Session-Token", "X-Db-Password"):
        path = os.path.join(str(tmp_path), f"bad-{name}.yaml")
        with open(path, "w") as f:
            f.write(config(free_port(), free_port(), upstream_port).replace(
                "request_headers: [X-Client-Version]", f"request_headers: [{name}]"))
        p = subprocess.run([BIN, "check-config", path], capture_output=True, text=True)
        assert p.returncode == 3, (name, p.stdout, p.stderr)
        assert f"'{name}'" in p.stderr and "never logged" in p.stderr, p.stderr


def test_idempotency_outcomes_and_store_latency(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    text = config(port, admin, upstream_port).replace(
        "store: { backend: memory }", f"store: {{ backend: sqlite, path: {tmp_path}/s.db }}").replace(
        "routes:\n", "routes:\n  - path: /idem/\n    upstream: demo\n    idempotency: { methods: [POST] }\n")
    gw = Gateway(str(tmp_path), text, port, admin)
    try:
        h = {"Idempotency-Key": "k-1", "Content-Type": "application/json"}
        assert request(port, "POST", "/idem/x", headers=h, body=b"{}").status == 200
        # SQLite writes the record just after the answer (docs/idempotency.md):
        # a retry in that moment is 409 idempotency_key_in_use, counted as a
        # conflict; the retries go on until the replay
        statuses = []

        def replayed():
            statuses.append(request(port, "POST", "/idem/x", headers=h, body=b"{}").status)
            return statuses[-1] != 409
        wait_for(replayed, timeout=10, what="the replay of k-1")
        assert statuses[-1] == 200, statuses
        conflicts = len(statuses) - 1
        assert request(port, "POST", "/idem/x", headers=h, body=b'{"other":1}').status == 422

        s = scrape_all(gw, 3 + conflicts)
        assert value(s, "errgate_idempotency_total", route="/idem/", result="stored") == 1
        assert value(s, "errgate_idempotency_total", route="/idem/", result="replayed") == 1
        assert value(s, "errgate_idempotency_total", route="/idem/", result="mismatch") == 1
        assert value(s, "errgate_idempotency_total", route="/idem/", result="conflict") == conflicts
        # every begin went to SQLite off the loop, and was timed
        assert value(s, "errgate_store_duration_seconds_count", store="sqlite", op="idempotency") == 3 + conflicts
        assert value(s, "errgate_store_failures_total", store="sqlite", op="idempotency") == 0
        fams = check_exposition(gw)
        if fams:
            assert fams["errgate_store_duration_seconds"].type == "histogram"
    finally:
        assert gw.stop() == 0


def test_plan_refusals_by_policy(tmp_path, upstream_port):
    """A plan's rate limit and concurrency refuse: counted under the plan's policies."""
    token = "admin-token-for-the-metrics-tests-1"
    with open(f"{tmp_path}/admin.token", "w") as f:
        f.write(token)
    held = HeldUpstream()
    port, admin = free_port(), free_port()
    text = config(port, admin, upstream_port).replace(
        "store: { backend: memory }",
        f"store: {{ backend: memory }}\nauth: {{ admin_token_file: {tmp_path}/admin.token }}\n"
        "plans:\n  free: { rate_limit: [{ limit: 2, window: 1h, name: free-hourly }], concurrency: 1 }").replace(
        "routes:\n", f"  held: {{ servers: [\"127.0.0.1:{held.port}\"], timeout: 60s }}\nroutes:\n"
        "  - { path: /k/, upstream: demo, auth: api_key }\n  - { path: /kh/, upstream: held, auth: api_key }\n")
    gw = Gateway(str(tmp_path), text, port, admin)
    try:
        r = request(admin, "POST", "/keys", body=b'{"name":"t","plan":"free"}',
                    headers={"Authorization": f"Bearer {token}"})
        assert r.status == 201, r.body
        key = {"X-API-Key": r.json()["secret"]}
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", request(port, "GET", "/kh/x", headers=key, timeout=60)))
        t.start()
        held.wait_arrived(1)  # the plan's one slot is taken
        assert request(port, "GET", "/k/x", headers=key).status == 429  # concurrency (the plan's)
        held.release()
        t.join(30)
        assert out["r"].status == 200
        statuses = [request(port, "GET", "/k/x", headers=key).status for _ in range(3)]
        # the hourly 2 went to the held request and the one its slot refused (rates count first)
        assert statuses == [429, 429, 429], statuses

        s = scrape_all(gw, 5)
        assert value(s, "errgate_traffic_refusals_total", route="/k/", kind="rate_limit", policy="free-hourly") == 3
        assert value(s, "errgate_traffic_refusals_total", route="/k/", kind="concurrency", policy="plan:free") == 1
        assert value(s, "errgate_requests_total", route="/k/", method="GET", status="429") == 4
        assert value(s, "errgate_requests_total", route="/kh/", method="GET", status="200") == 1
    finally:
        held.close()
        assert gw.stop() == 0


def test_health_503_when_no_upstream_can_serve(tmp_path):
    """Every server of every upstream marked down: /health is 503 in the
    dialect, Retry-After when the first comes back; the API listener's too."""
    port, admin, dead = free_port(), free_port(), dead_port()
    text = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
errors: {{ dialect: problem }}
health_path: /healthz
upstreams:
  only: {{ servers: ["127.0.0.1:{dead}"], max_fails: 1, fail_timeout: 30s }}
routes:
  - {{ path: /, upstream: only }}
"""
    gw = Gateway(str(tmp_path), text, port, admin)
    try:
        assert request(admin, "GET", "/health").json()["status"] == "ok"
        assert request(port, "GET", "/x").status == 502  # refused: marked down for 30 s
        r = request(admin, "GET", "/health")
        assert r.status == 503 and r.header("Content-Type") == "application/problem+json"
        e = r.json()
        assert e["code"] == "service_unavailable" and e["health"]["status"] == "unavailable", e
        assert e["health"]["upstreams"]["only"] == {"state": "down", "servers_up": 0, "servers": 1}
        assert 1 <= int(r.header("Retry-After")) <= 30
        r = request(port, "GET", "/healthz")
        assert r.status == 503 and r.json()["code"] == "service_unavailable" and r.header("Retry-After")
        r = request(port, "HEAD", "/healthz")
        assert r.status == 503 and r.body == b""
    finally:
        assert gw.stop() == 0


def test_redis_latency_and_health(tmp_path, upstream_port):
    """Rate limits in Redis: each script timed under store="redis"; /health
    shows Redis (its address on the admin listener only); Redis gone: the
    decisions that failed are counted, /health says degraded."""
    if not shutil.which("redis-server") and not os.path.exists("/usr/bin/redis-server"):
        pytest.skip("redis-server is not installed")
    from test_redis import Redis
    rd = Redis(str(tmp_path))
    port, admin = free_port(), free_port()
    text = config(port, admin, upstream_port, extra="health_path: /healthz").replace(
        "store: { backend: memory }",
        f"store: {{ backend: memory }}\nredis: {{ address: \"127.0.0.1:{rd.port}\", timeout: 500ms }}")
    gw = Gateway(str(tmp_path), text, port, admin)
    try:
        assert [request(port, "GET", "/limited/x").status for _ in range(3)] == [200, 200, 429]
        s = scrape_all(gw, 3)
        assert value(s, "errgate_store_duration_seconds_count", store="redis", op="traffic") == 3
        assert value(s, "errgate_traffic_refusals_total", route="/limited/", kind="rate_limit", policy="ip-2h") == 1
        h = request(admin, "GET", "/health").json()
        assert h["status"] == "ok" and h["redis"] == {"address": f"127.0.0.1:{rd.port}", "state": "up"}, h
        assert request(port, "GET", "/healthz").json()["redis"] == {"state": "up"}
        rd.kill()
        assert request(port, "GET", "/limited/x").status == 503  # fail_closed, by default
        s = scrape_all(gw, 4)
        assert value(s, "errgate_store_failures_total", store="redis", op="traffic") == 1
        h = wait_for(lambda: (lambda d: d if d["status"] == "degraded" else None)(
            request(admin, "GET", "/health").json()), 10, what="degraded with Redis down")
        assert h["redis"]["state"] == "down"
    finally:
        if rd.proc.poll() is None:
            rd.kill()
        assert gw.stop() == 0


def test_validation_failures_are_counted_by_route_and_code(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    extra_routes = """
  - path: /v/
    upstream: demo
    validate:
      query: { n: { required: true, type: integer, maximum: 10 } }
      content_types: [application/json]
      body: { schema: { type: object, required: [a] } }
"""
    gw = Gateway(str(tmp_path), config(port, admin, upstream_port) + extra_routes, port, admin)
    try:
        assert request(port, "GET", "/v/x?n=3").status == 200
        for q in ("", "?n=x", "?n=11"):  # missing, wrong type, out of range
            assert request(port, "GET", "/v/x" + q).status == 400
        r = request(port, "POST", "/v/x?n=1", body=b"{", headers={"Content-Type": "application/json"})
        assert r.status == 400 and r.header("X-Error-Code") == "invalid_json"
        r = request(port, "POST", "/v/x?n=1", body=b"a=1", headers={"Content-Type": "text/plain"})
        assert r.status == 415
        s = parse(scrape(gw).body.decode())
        name = "errgate_validation_failures_total"
        assert value(s, name, route="/v/", code="missing_parameter") == 1
        assert value(s, name, route="/v/", code="invalid_parameter_type") == 1
        assert value(s, name, route="/v/", code="invalid_parameter_value") == 1
        assert value(s, name, route="/v/", code="invalid_json") == 1
        assert value(s, name, route="/v/", code="unsupported_media_type") == 1
        assert sum(v for (n, _), v in s.items() if n == name) == 5
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
