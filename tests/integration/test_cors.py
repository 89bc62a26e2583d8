"""CORS as a stage (docs/cors.md): preflights answered by the gateway on any
path a route matches, whatever its methods; Access-Control-* on every answer
of an allowed origin, the gateway's own errors included, checked the way a
browser checks them (the Fetch standard's CORS check, below); nothing for an
origin that is not allowed; the upstream's own Access-Control-* replaced."""
import json
import subprocess
import threading

import pytest

from conftest import BIN, Gateway, QuietHandler, ThreadedUpstream, free_port, read_error, request, spell

APP = "https://app.example.com"
SUB = "https://a.b.example.com"
EVIL = "https://evil.test"

# the Fetch standard's CORS-safelisted response-header names: a script reads them without Expose-Headers
SAFELISTED = {"cache-control", "content-language", "content-length", "content-type", "expires",
              "last-modified", "pragma"}
EXPOSED_BY_DEFAULT = ["X-Request-ID", "X-Error-Code", "Retry-After", "RateLimit", "RateLimit-Policy",
                      "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Idempotent-Replayed"]


def values(r, name):
    return [v for k, v in r.headers if k.lower() == name.lower()]


def cors_lines(r):
    return [(k, v) for k, v in r.headers if k.lower().startswith("access-control-")]


def browser_readable(r, origin, credentials):
    """The Fetch standard's CORS check (https://fetch.spec.whatwg.org/#cors-check) on a
    response to a request from `origin`: None when the browser hides the response
    from the page (a network error to the script), else the set of header names
    (lower case) the script can read with r.headers.get(). Status and body are
    readable exactly when this is not None."""
    acao = values(r, "Access-Control-Allow-Origin")
    if len(acao) != 1:  # none, or two values (a browser refuses a list)
        return None
    if acao[0] == "*":
        if credentials:
            return None
    elif acao[0] != origin:  # byte for byte
        return None
    if credentials and values(r, "Access-Control-Allow-Credentials") != ["true"]:
        return None
    exposed = set()
    for v in values(r, "Access-Control-Expose-Headers"):
        exposed |= {n.strip().lower() for n in v.split(",") if n.strip()}
    if "*" in exposed and not credentials:
        return {k.lower() for k, _ in r.headers}
    return SAFELISTED | exposed


class Upstream(QuietHandler):
    """Answers every method with 200 and its own CORS headers, which the
    gateway must replace; counts what reaches it."""
    hits = []
    lock = threading.Lock()

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        with self.lock:
            self.hits.append((self.command, self.path))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "PUT")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_OPTIONS = do_DELETE = answer


def config(port, admin, up, tmp):
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
errors: {{ dialect: problem }}
log: {{ access: stderr }}
store: {{ path: {tmp}/keys.db }}
cors:
  origins: ["{APP}", "https://*.example.com"]
upstreams:
  up: {{ servers: ["127.0.0.1:{up}"], timeout: 5s }}
routes:
  - path: /v1/profiles
    methods: [POST]
    upstream: up
    dialect: envelope
    cors:
      origins: ["{APP}"]
      methods: [GET, POST]
      headers: [Content-Type, Authorization, Idempotency-Key]
      expose: [ETag]
      max_age: 10m
      credentials: true
  - {{ path: /pub/, upstream: up }}
  - {{ path: /key/, upstream: up, auth: api_key }}
  - {{ path: /limited/, upstream: up, rate_limit: {{ limit: 1, window: 1h, by: ip }} }}
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cors")
    up = ThreadedUpstream(Upstream)
    port, admin = free_port(), free_port()
    g = Gateway(str(tmp), config(port, admin, up.port, tmp), port, admin)
    yield g
    code = g.stop()
    up.close()
    assert code == 0, g.log_text()[-3000:]


def preflight(gw, path, origin, method, headers=None):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return request(gw.port, "OPTIONS", path, headers=h)


def test_preflight_allowed_on_a_post_only_route(gw):
    before = len(Upstream.hits)
    r = preflight(gw, "/v1/profiles", APP, "POST", "content-type,idempotency-key")
    assert r.status == 204, r.body
    assert r.body == b""
    assert cors_lines(r) == [
        ("Access-Control-Allow-Origin", APP),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Methods", "GET, POST"),
        ("Access-Control-Allow-Headers", "Content-Type, Authorization, Idempotency-Key"),
        ("Access-Control-Max-Age", "600"),
    ]
    assert values(r, "Vary") == ["Origin"]
    assert r.header("X-Request-ID")
    assert len(Upstream.hits) == before  # never reaches the upstream
    # the connection stays usable: a preflight then the request, as browsers do
    r = preflight(gw, "/pub/x", SUB, "GET")
    assert r.status == 204 and r.header("Access-Control-Allow-Origin") == SUB


@pytest.mark.parametrize("origin,method,hdrs,why", [
    (EVIL, "POST", None, "origin not allowed"),
    (APP, "DELETE", None, "method not allowed"),
    (APP, "POST", "x-custom", "header not allowed"),
    ("https://app.example.com/", "POST", None, "malformed origin"),
])
def test_preflight_refused_in_the_routes_dialect_without_cors_headers(gw, origin, method, hdrs, why):
    before = len(Upstream.hits)
    r = preflight(gw, "/v1/profiles", origin, method, hdrs)
    assert r.status == 403, (why, r.status, r.body)
    assert cors_lines(r) == [], why
    e = read_error(r.body, "envelope")  # the route's dialect
    assert e["code"] == spell("cors_preflight_refused", "envelope")
    assert r.header("X-Error-Code") == spell("cors_preflight_refused", "envelope")
    # the body says nothing of what was refused or what would be allowed
    assert e["message"] == "The cross-origin request is not allowed."
    text = r.body.decode()
    for leak in ("example.com", "POST", "Content-Type", "Idempotency-Key", "x-custom"):
        assert leak not in text, (why, leak, text)
    assert browser_readable(r, origin, credentials=False) is None
    assert len(Upstream.hits) == before


def test_options_without_preflight_headers_is_routed_as_usual(gw):
    r = request(gw.port, "OPTIONS", "/v1/profiles", headers={"Origin": APP})
    assert r.status == 405  # the route's methods: [POST]
    assert r.header("Allow") == "POST"


def test_upstream_answer_readable_and_its_own_cors_headers_replaced(gw):
    r = request(gw.port, "GET", "/pub/x", headers={"Origin": SUB})
    assert r.status == 200 and r.json() == {"ok": True}
    # the upstream's "*" and its Allow-Methods are gone; the gateway's lines instead
    assert values(r, "Access-Control-Allow-Origin") == [SUB]
    assert values(r, "Access-Control-Allow-Methods") == []
    assert values(r, "Access-Control-Expose-Headers") == [", ".join(EXPOSED_BY_DEFAULT)]
    assert "Origin" in values(r, "Vary")
    readable = browser_readable(r, SUB, credentials=False)
    assert readable is not None and "x-request-id" in readable


def test_credentials_echo_the_origin_never_star(gw):
    r = request(gw.port, "POST", "/v1/profiles", headers={"Origin": APP, "Content-Type": "application/json"},
                body=b"{}")
    assert r.status == 200
    assert values(r, "Access-Control-Allow-Origin") == [APP]
    assert values(r, "Access-Control-Allow-Credentials") == ["true"]
    assert values(r, "Access-Control-Expose-Headers") == [", ".join(EXPOSED_BY_DEFAULT + ["ETag"])]
    readable = browser_readable(r, APP, credentials=True)
    assert readable is not None and {"x-request-id", "etag"} <= readable
    # the global policy's wildcard does not reach this route: its own policy replaces it
    r = request(gw.port, "POST", "/v1/profiles", headers={"Origin": SUB}, body=b"{}")
    assert r.status == 200 and cors_lines(r) == []


def assert_error_readable(r, origin, status, code, extra=()):
    assert r.status == status, r.body
    readable = browser_readable(r, origin, credentials=False)
    assert readable is not None, r.headers  # the page gets the status and the body
    for name in ("x-request-id", "x-error-code", "content-type") + tuple(extra):
        assert name in readable, (name, readable)
        assert r.header(name), (name, r.headers)
    assert r.header("X-Error-Code") == code
    body = read_error(r.body, "problem")
    assert body["code"] == code and body["request_id"] == r.header("X-Request-ID")


def test_gateway_errors_are_readable_by_an_allowed_origin(gw):
    # 401 from access control
    r = request(gw.port, "GET", "/key/x", headers={"Origin": APP})
    assert_error_readable(r, APP, 401, "missing_api_key")
    # 404 with no route: the global policy
    r = request(gw.port, "GET", "/nowhere", headers={"Origin": SUB})
    assert_error_readable(r, SUB, 404, "not_found")
    # 429 from the rate limit, with Retry-After and the rate-limit headers
    first = request(gw.port, "GET", "/limited/a", headers={"Origin": APP})
    assert first.status == 200
    assert browser_readable(first, APP, False) >= {"x-ratelimit-remaining", "ratelimit"}
    r = request(gw.port, "GET", "/limited/a", headers={"Origin": APP})
    assert_error_readable(r, APP, 429, "rate_limit_exceeded",
                          extra=("retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "ratelimit"))


def comparable(body):
    b = json.loads(body)
    for k in ("request_id", "timestamp", "instance"):
        b.pop(k, None)
    return b


def test_disallowed_origin_gets_no_cors_headers_and_the_same_error(gw):
    for path, status in (("/key/x", 401), ("/nowhere", 404), ("/pub/x", 200)):
        plain = request(gw.port, "GET", path)
        r = request(gw.port, "GET", path, headers={"Origin": EVIL})
        assert r.status == plain.status == status
        assert cors_lines(r) == [], (path, r.headers)
        assert browser_readable(r, EVIL, credentials=False) is None
        assert values(r, "Vary") == ["Origin"]  # a cache keeps the origins apart
        if status >= 400:
            assert comparable(r.body) == comparable(plain.body)
        # the same header names as without an Origin
        names = sorted(k.lower() for k, _ in r.headers)
        assert names == sorted(k.lower() for k, _ in plain.headers)


def test_config_errors_name_the_cors_key_with_its_position(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("listen: 127.0.0.1:8080\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n"
                 "cors:\n  origins: ['https://app.example.com/']\n"
                 "routes:\n  - path: /\n    upstream: a\n"
                 "    cors: { origins: ['*'], credentials: true }\n")
    out = subprocess.run([BIN, "check-config", str(p)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out
    lines = out.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"errgate: {p}:5:12: cors.origins[0] 'https://app.example.com/': an origin has no path")
    assert lines[1].startswith(f"errgate: {p}:9:"), lines[1]
    assert "cors.credentials: true cannot go with origins \"*\"" in lines[1]
