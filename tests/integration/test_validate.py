"""Request validation (issue 22): a route's validate: section checks query,
path and header parameters and bodies before the upstream. The typed seed's
nine validation errors come out byte for byte (but for the request id and
time the gateway adds to every typed error); every dialect lists all the
failing fields in its own form; 415 lists the accepted media types; invalid
JSON says where; oversized and over-deep bodies are refused without the
upstream; the connection stays usable after a refusal. The upstream counts
what reaches it."""
import json
import os
import re
import socket
import threading

import pytest

from conftest import (DIALECTS, Gateway, QuietHandler, ThreadedUpstream, free_port, read_response, request,
                      wait_for)

FIXTURES = os.environ.get("EG_FIXTURES", os.path.join(os.path.dirname(__file__), "../fixtures"))


class CountingUpstream(ThreadedUpstream):
    """Answers 200 with what it got; counts the requests that reached it."""

    def __init__(self):
        outer = self
        self.hits, self.lock = 0, threading.Lock()

        class H(QuietHandler):
            def handle_one(self):
                body = b""
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size:
                            body += self.rfile.read(size + 2)[:size]
                        else:
                            while self.rfile.readline() not in (b"\r\n", b""):
                                pass
                            break
                else:
                    n = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(n) if n else b""
                with outer.lock:
                    outer.hits += 1
                out = json.dumps({"path": self.path, "body_bytes": len(body)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = handle_one

        super().__init__(H)


def dialect_routes():
    """One route per dialect with the same two query rules."""
    out = ""
    for d in DIALECTS:
        out += f"""
  - path: /d/{d}
    methods: [GET, POST]
    upstream: counted
    dialect: {d}
    validate:
      query:
        q: {{ required: true, type: string }}
        num: {{ type: integer, minimum: 1, maximum: 100 }}
      body:
        schema: {{ type: object, required: [email], properties: {{ email: {{ type: string, minLength: 3 }} }} }}
"""
    return out


def config(port, upstream):
    routes = open(os.path.join(FIXTURES, "validate", "routes.yaml")).read()
    return f"""
listen: 127.0.0.1:{port}
workers: 1
errors: {{ dialect: problem }}
limits: {{ header_timeout: 2s, body_timeout: 2s, max_body_size: 64MiB }}
log: {{ access: stderr }}
upstreams:
  counted: {{ servers: ["127.0.0.1:{upstream}"] }}
routes:
{routes}
{dialect_routes()}
  - path: /status422
    upstream: counted
    dialect: typed
    validate:
      status: 422
      query: {{ q: {{ required: true }} }}
  - path: /plain
    upstream: counted
  - path: /longq
    upstream: counted
    validate: {{ max_query_length: 20 }}
  - path: /limited
    upstream: counted
    rate_limit: {{ limit: 2, window: 1h, by: ip }}
    validate: {{ query: {{ n: {{ required: true, type: integer }} }} }}
  - path: /private
    upstream: counted
    auth: api_key
    validate: {{ query: {{ n: {{ required: true, type: integer }} }} }}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    up = CountingUpstream()
    port = free_port()
    gw = Gateway(str(tmp_path_factory.mktemp("validate")), config(port, up.port), port, free_port())
    gw.up = up
    yield gw
    code = gw.stop()
    up.close()
    assert code == 0, gw.log_text()[-3000:]


def hits(gw):
    with gw.up.lock:
        return gw.up.hits


# --- the typed seed's nine validation errors ---------------------------------

# The seed's bodies (typed-errors.md, "Validation Errors" and the endpoint
# errors), as the requests that make them.
TYPED_SEEDS = [
    ("/search", None, 400, {"error": {
        "type": "validation_error", "message": "Search query is required", "code": "MISSING_PARAMETER",
        "details": {"parameter": "q", "required": True}}}),
    ("/search?q=coffee&num=150", None, 400, {"error": {
        "type": "validation_error", "message": "Invalid value for parameter 'num'. Must be between 1 and 100",
        "code": "INVALID_PARAMETER_VALUE",
        "details": {"parameter": "num", "provided_value": 150, "valid_range": "1-100"}}}),
    ("/search?q=coffee&num=abc", None, 400, {"error": {
        "type": "validation_error", "message": "Parameter 'num' must be an integer", "code": "INVALID_PARAMETER_TYPE",
        "details": {"parameter": "num", "expected_type": "integer", "provided_type": "string"}}}),
    ("/search?q=" + "a" * 565, None, 400, {"error": {
        "type": "validation_error", "message": "Query exceeds maximum length of 500 characters",
        "code": "QUERY_TOO_LONG", "details": {"query_length": 567, "max_length": 500}}}),
    ("/search?q=coffee&gl=usa", None, 400, {"error": {
        "type": "validation_error", "message": "Invalid country code. Must be a valid ISO 3166-1 alpha-2 code",
        "code": "INVALID_COUNTRY_CODE",
        "details": {"parameter": "gl", "provided_value": "usa",
                    "expected_format": "ISO 3166-1 alpha-2 (e.g., 'us', 'gb', 'de')"}}}),
    ("/search?q=coffee&hl=english", None, 400, {"error": {
        "type": "validation_error", "message": "Invalid language code format", "code": "INVALID_LANGUAGE_CODE",
        "details": {"parameter": "hl", "provided_value": "english",
                    "expected_format": "ISO 639-1 (e.g., 'en', 'es', 'fr')"}}}),
    # '}' at byte 45: the body's stray comma before it
    ("/search?q=coffee", b'{"query": "coffee shop", "location": "Paris",}', 400, {"error": {
        "type": "validation_error", "message": "Request body contains invalid JSON", "code": "INVALID_JSON",
        "details": {"json_error": "Unexpected token '}' at position 45"}}}),
    ("/search?q=coffee&imgSize=huge", None, 400, {"error": {
        "type": "validation_error", "message": "Invalid value for image filter parameter",
        "code": "INVALID_IMAGE_FILTER",
        "details": {"parameter": "imgSize", "provided_value": "huge",
                    "valid_values": ["large", "medium", "small", "icon"]}}}),
    ("/search?q=coffee&tbs=qdr:invalid", None, 400, {"error": {
        "type": "validation_error", "message": "Invalid time-based search parameter", "code": "INVALID_TIME_RANGE",
        "details": {"parameter": "tbs", "provided_value": "qdr:invalid",
                    "valid_values": ["qdr:h", "qdr:d", "qdr:w", "qdr:m", "qdr:y"]}}}),
]


@pytest.mark.parametrize("target,body,status,seed", TYPED_SEEDS, ids=[s[3]["error"]["code"] for s in TYPED_SEEDS])
def test_typed_seed_byte_for_byte(env, target, body, status, seed):
    before = hits(env)
    headers = {"X-Request-ID": "seed-1"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    r = request(env.port, "POST" if body is not None else "GET", target, headers=headers, body=body or b"")
    assert r.status == status, r.body
    assert r.header("X-Error-Code") == seed["error"]["code"]
    # every typed error carries the request id and its time first in details:
    # those two members aside, the bytes are the seed's, in its order
    text = r.body.decode()
    m = re.search(r'"request_id":"seed-1","timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",?', text)
    assert m, text
    text = text[:m.start()] + text[m.end():]
    assert text == json.dumps(seed, separators=(",", ":")), text
    assert hits(env) == before


def test_valid_request_reaches_the_upstream(env):
    before = hits(env)
    r = request(env.port, "GET", "/search?q=coffee+shops&num=10&gl=US&hl=en&imgSize=large&tbs=qdr:d")
    assert r.status == 200, r.body
    assert r.json()["path"] == "/search?q=coffee+shops&num=10&gl=US&hl=en&imgSize=large&tbs=qdr:d"
    assert hits(env) == before + 1


# --- every problem at once, in each dialect's form ------------------------------

def test_each_dialect_lists_every_field(env):
    before = hits(env)
    for d in DIALECTS:
        r = request(env.port, "GET", f"/d/{d}?num=150")
        body = r.json()
        want_status = 422 if d in ("jsonapi", "envelope", "problem") else 400
        assert r.status == want_status, (d, r.status, body)
        if d == "jsonapi":
            errs = body["errors"]
            assert [e["source"] for e in errs] == [{"parameter": "q"}, {"parameter": "num"}]
            assert all(e["status"] == "422" and e["code"] == "missing_parameter" or e["code"] == "validation_error"
                       for e in errs), errs
            assert errs[1]["detail"] == "Invalid value for parameter 'num'. Must be between 1 and 100"
        elif d == "problem":
            assert body["status"] == 422
            assert [e.get("parameter") for e in body["errors"]] == ["q", "num"]
            assert body["errors"][1]["detail"] == "Invalid value for parameter 'num'. Must be between 1 and 100"
            assert body["errors"][1]["value"] == 150
        elif d == "envelope":
            det = body["error"]["details"]
            assert [x["field"] for x in det] == ["q", "num"]
            assert det[0]["message"] == "Parameter 'q' is required"
        elif d == "flat-camel":
            assert body["statusCode"] == 400
            assert body["details"]["fields"] == {
                "q": ["Parameter 'q' is required"],
                "num": ["Invalid value for parameter 'num'. Must be between 1 and 100"]}
        elif d == "flat-snake":
            assert body["status_code"] == 400
            errs = body["details"]["errors"]
            assert [(e["field"], e["constraint"]) for e in errs] == [("q", "required"), ("num", "maximum")]
            assert errs[1]["value"] == 150
        elif d == "typed":
            errs = body["error"]["details"]["errors"]
            assert [e["parameter"] for e in errs] == ["q", "num"]
            assert errs[1]["provided_value"] == 150 and errs[1]["valid_range"] == "1-100"
    assert hits(env) == before


def test_flat_snake_single_field_is_flat(env):
    r = request(env.port, "POST", "/d/flat-snake?q=x", headers={"Content-Type": "application/json"},
                body=b'{"email": "ab"}')
    assert r.status == 400, r.body
    body = r.json()
    assert body["error"] == "validation_error"
    det = body["details"]
    # the seed's shape and words: {field, constraint (snake_case), value, the bound}
    assert {k: det[k] for k in ("field", "constraint", "value", "min_length")} == {
        "field": "email", "constraint": "min_length", "value": "ab", "min_length": 3}, det
    assert body["message"] == "email must be at least 3 characters long", body
    # a missing field: "value": null, as the seed shows it
    r = request(env.port, "POST", "/d/flat-snake?q=x", headers={"Content-Type": "application/json"}, body=b'{}')
    det = r.json()["details"]
    assert det["field"] == "email" and det["constraint"] == "required" and det["value"] is None, det


def test_jsonapi_body_fields_have_pointers(env):
    # the body's own pointer (a JSON:API body would have /data/attributes/
    # in it itself: nothing is prefixed to a real pointer)
    r = request(env.port, "POST", "/d/jsonapi?q=x", headers={"Content-Type": "application/json"}, body=b'{}')
    assert r.status == 422, r.body
    errs = r.json()["errors"]
    assert len(errs) == 1 and errs[0]["source"] == {"pointer": "/email"}, errs
    assert errs[0]["meta"]["constraint"] == "required"
    assert errs[0]["detail"] == "email is required"  # the jsonapi seed's words


def test_route_status_overrides_the_dialect(env):
    r = request(env.port, "GET", "/status422")
    assert r.status == 422, r.body
    assert r.json()["error"]["code"] == "MISSING_PARAMETER"


def test_path_and_header_parameters(env):
    before = hits(env)
    r = request(env.port, "GET", "/users/0/posts?ids=1,x", headers={"X-Client-Version": "1.2"})
    assert r.status == 422, r.body
    errs = {e.get("parameter") or e.get("header"): e for e in r.json()["errors"]}
    assert errs["id"]["detail"] == "Invalid value for parameter 'id'. Must be at least 1"
    assert errs["ids"]["detail"] == "Parameter 'ids' must be a list of integers"
    r = request(env.port, "GET", "/users/7/posts")
    assert r.status == 422, r.body
    errs = r.json()["errors"]
    assert errs[0]["header"] == "X-Client-Version" and errs[0]["detail"] == "Header 'X-Client-Version' is required"
    r = request(env.port, "GET", "/users/7/posts?ids=1,2&tags=a&tags=b", headers={"X-Client-Version": "1.2"})
    assert r.status == 200, r.body
    assert hits(env) == before + 1


def test_secret_header_values_are_not_echoed(env):
    r = request(env.port, "GET", "/users/7/posts",
                headers={"X-Client-Version": "1.2", "X-Api-Token": "hunter2-secret"})
    assert r.status == 422, r.body
    assert b"hunter2" not in r.body
    err = r.json()["errors"][0]
    assert err["header"] == "X-Api-Token" and "value" not in err


def test_form_bodies_are_checked_like_queries(env):
    before = hits(env)
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    r = request(env.port, "POST", "/forms", headers=h, body=b"qty=0&color=blue")
    assert r.status == 422, r.body
    errs = r.json()["errors"]
    assert [(e["field"], e["constraint"]) for e in errs] == [("qty", "minimum"), ("color", "enum")]
    r = request(env.port, "POST", "/forms", headers=h, body=b"qty=3&color=red")
    assert r.status == 200, r.body
    assert hits(env) == before + 1


# --- bodies ---------------------------------------------------------------------

def test_query_too_long_follows_the_dialect(env):
    # problem (the default here) is a 422 dialect: query_too_long is in the
    # validation class; typed (/search) a 400 one
    r = request(env.port, "GET", "/search?q=" + "a" * 600)
    assert r.status == 400, r.body
    r = request(env.port, "GET", "/longq?q=" + "a" * 30)
    assert r.status == 422 and r.json()["code"] == "query_too_long", r.body


def test_problems_are_bounded_then_counted(env):
    r = request(env.port, "POST", "/many", headers={"Content-Type": "application/json"}, body=b"{}")
    assert r.status == 422, r.body
    err = r.json()["error"]
    assert [d["field"] for d in err["details"]] == [f"f{i:02d}" for i in range(20)]
    assert err["meta"]["error_count"] == 25, err


def test_unsupported_media_type_lists_the_accepted(env):
    before = hits(env)
    r = request(env.port, "POST", "/users/7/posts", headers={"X-Client-Version": "1.2", "Content-Type": "text/plain"},
                body=b"hello")
    assert r.status == 415, r.body
    body = r.json()
    assert body["code"] == "unsupported_media_type" and body["accepted"] == ["application/json"]
    assert "application/json" in body["detail"]
    assert hits(env) == before


def test_invalid_json_says_where(env):
    body = b'{\n  "email": "a@b.co",\n  "name": }\n'
    r = request(env.port, "POST", "/d/flat-snake?q=x", headers={"Content-Type": "application/json"}, body=body)
    assert r.status == 400, r.body
    d = r.json()
    assert d["error"] == "invalid_json"
    det = d["details"]
    assert det["position"] == body.index(b"}") and det["line"] == 3, det
    assert det["json_error"] == f"Unexpected token '}}' at position {body.index(b'}')}"
    assert "column" in det


def test_invalid_json_is_400_in_422_dialects(env):
    # a syntax error, not a validation problem: 400 in every dialect
    r = request(env.port, "POST", "/d/jsonapi?q=x", headers={"Content-Type": "application/json"}, body=b'{"a" 1}')
    assert r.status == 400, r.body
    err = r.json()["errors"][0]
    assert err["status"] == "400" and err["code"] == "invalid_json", err


def test_deep_json_is_refused(env):
    before = hits(env)
    body = b"[" * 10000 + b"]" * 10000
    r = request(env.port, "POST", "/users/7/posts",
                headers={"X-Client-Version": "1.2", "Content-Type": "application/json"}, body=body)
    assert r.status == 400, r.body
    assert r.json()["code"] == "invalid_json"
    assert hits(env) == before


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_large_body_is_refused_without_reading_it(env):
    before = hits(env)
    rss0 = rss_kib(env.proc.pid)
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"POST /users/7/posts HTTP/1.1\r\nHost: x\r\nX-Client-Version: 1.2\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n" + b"[" * 4096)
        resp, _ = read_response(s)
    assert resp.status == 413, resp.body
    # chunked: refused once more than the route checks has come
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"POST /users/7/posts HTTP/1.1\r\nHost: x\r\nX-Client-Version: 1.2\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
        try:
            for _ in range(160):  # up to 10 MiB, stopping when the gateway answers
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp, _ = read_response(s)
    assert resp.status == 413, resp.body
    assert hits(env) == before
    # bounded memory: the 10 MiB were never held (at most the 64 KiB buffer)
    assert rss_kib(env.proc.pid) - rss0 < 4096, (rss0, rss_kib(env.proc.pid))


def test_chunked_json_body_is_checked(env):
    before = hits(env)
    data = b'{"email": "a@b.co", "name": "Al"}'
    raw = (b"POST /users/7/posts HTTP/1.1\r\nHost: x\r\nX-Client-Version: 1.2\r\n"
           b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
           + b"%x\r\n" % 10 + data[:10] + b"\r\n" + b"%x\r\n" % (len(data) - 10) + data[10:] + b"\r\n0\r\n\r\n")
    r = request(env.port, raw=raw)
    assert r.status == 200, r.body
    assert r.json()["body_bytes"] == len(data)
    bad = data.replace(b'"Al"', b'"A"')
    raw = (b"POST /users/7/posts HTTP/1.1\r\nHost: x\r\nX-Client-Version: 1.2\r\n"
           b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
           + b"%x\r\n" % len(bad) + bad + b"\r\n0\r\n\r\n")
    r = request(env.port, raw=raw)
    assert r.status == 422, r.body
    assert r.json()["errors"][0]["field"] == "name"
    assert hits(env) == before + 1


def test_keep_alive_after_a_refusal(env):
    before = hits(env)
    bad = b'{"email": 1}'
    good = b'{"email": "a@b.co", "name": "Al"}'

    def req(body):
        return (b"POST /users/7/posts HTTP/1.1\r\nHost: x\r\nX-Client-Version: 1.2\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(req(bad))
        r1, rest = read_response(s)
        assert r1.status == 422, r1.body
        assert (r1.header("Connection") or "").lower() != "close"
        s.sendall(req(good))
        r2, _ = read_response(s)
        assert r2.status == 200, r2.body
    assert hits(env) == before + 1


def test_validation_runs_after_access_and_before_traffic(env):
    before = hits(env)
    # after access: a caller without credentials learns nothing of the rules
    r = request(env.port, "GET", "/private?n=x")
    assert r.status == 401, r.body
    # before traffic: refused requests do not spend the limit of 2
    for _ in range(5):
        r = request(env.port, "GET", "/limited?n=x")
        assert r.status == 422 and r.json()["code"] == "invalid_parameter_type", r.body
    for _ in range(2):
        assert request(env.port, "GET", "/limited?n=1").status == 200
    assert request(env.port, "GET", "/limited?n=1").status == 429
    assert hits(env) == before + 2


def test_keep_alive_after_a_parameter_refusal_with_a_body(env):
    # the route has no body rules: the body is read only to be skipped
    before = hits(env)
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.sendall(b"POST /status422 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                  b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        r1, rest = read_response(s)
        assert r1.status == 422, r1.body
        s.settimeout(10)
        while b"\r\n\r\n" not in rest:
            rest += s.recv(65536)
        assert rest.startswith(b"HTTP/1.1 200"), rest[:100]
    wait_for(lambda: hits(env) == before + 1, 10, what="the second request upstream")


def test_routes_without_validate_are_untouched(env):
    before = hits(env)
    r = request(env.port, "POST", "/plain?num=abc", headers={"Content-Type": "text/plain"}, body=b"{bad")
    assert r.status == 200
    assert hits(env) == before + 1


def test_bad_rules_are_refused_at_load(tmp_path):
    import subprocess
    from conftest import BIN
    bad = [
        ("query: { q: { type: integr } }", "integr"),
        ("query: { q: { code: no_such_code } }", "no_such_code"),
        ("query: { q: { style: matrix } }", "matrix"),
        ("path: { nope: { type: integer } }", "nope"),
        ("status: 418", "400 or 422"),
        ("body: { invalid_json: { details: [where] } }", "where"),
        ("query: { n: { type: integer, maximun: 5 } }", "maximun"),
        ("body: { schema: { type: object, propertys: {} } }", "propertys"),
        ("query: { n: { format: no-such-format } }", "no-such-format"),
        ("query: { n: { pattern: \"([a-z\" } }", "pattern"),
    ]
    for rule, word in bad:
        p = tmp_path / "bad.yaml"
        p.write_text(f"""listen: 127.0.0.1:1
upstreams: {{ u: {{ servers: ["127.0.0.1:2"] }} }}
routes:
  - path: /users/{{id}}
    upstream: u
    validate: {{ {rule} }}
""")
        r = subprocess.run([BIN, "check-config", str(p)], capture_output=True, text=True)
        assert r.returncode != 0, rule
        assert re.search(r"bad\.yaml:\d+:\d+: ", r.stderr + r.stdout), (rule, r.stderr)
        assert word in r.stderr + r.stdout, (rule, r.stderr)


def bulk_items(n, bad_at=None):
    items = [{"sku": "ABC-%04d" % (i % 10000), "qty": 1 + i % 7} for i in range(n)]
    if bad_at is not None:
        items[bad_at]["qty"] = 0
    return json.dumps(items).encode()


def test_bodies_past_the_connection_buffer_are_checked_whole(env):
    # 1.3 MB: far past the 64 KiB the connection buffer holds, within the route's 2 MiB
    good = bulk_items(40000)
    assert 1_000_000 < len(good) < 2 * 1024 * 1024
    before = hits(env)
    r = request(env.port, "POST", "/bulk", body=good, headers={"Content-Type": "application/json"})
    assert r.status == 200, r.body
    assert r.json()["body_bytes"] == len(good)  # the upstream got every byte
    bad = bulk_items(40000, bad_at=39999)
    r = request(env.port, "POST", "/bulk", body=bad, headers={"Content-Type": "application/json"})
    assert r.status == 422, r.body
    assert [e["pointer"] for e in r.json()["errors"]] == ["/39999/qty"]
    assert hits(env) == before + 1


def test_a_large_chunked_body_is_checked_decoded(env):
    good = bulk_items(10000)  # ~330 KB in 4 KiB chunks
    framed = b"".join(b"%x\r\n" % len(good[i:i + 4096]) + good[i:i + 4096] + b"\r\n"
                      for i in range(0, len(good), 4096)) + b"0\r\n\r\n"
    raw = (b"POST /bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + framed)
    before = hits(env)
    r = request(env.port, raw=raw)
    assert r.status == 200, r.body
    assert r.json()["body_bytes"] == len(good)
    assert hits(env) == before + 1


def test_invalid_json_in_a_body_read_in_many_pieces_says_where(env):
    # ~430 KB over many lines: read in many pieces, checked as they come;
    # the error's place counts every line and character before it
    items = [{"sku": "ABC-%04d" % i, "note": "caf\u00e9 \u20ac%d" % i} for i in range(8000)]
    text = json.dumps(items, indent=1, ensure_ascii=False)
    cut = text.rindex('"note"')
    body = (text[:cut] + "@" + text[cut + 1:]).encode()
    assert len(body) > 400_000
    before = hits(env)
    r = request(env.port, "POST", "/d/flat-snake?q=x", headers={"Content-Type": "application/json"}, body=body)
    assert r.status == 400, r.body[:300]
    det = r.json()["details"]
    at = body.index(b"@")
    line_start = body.rindex(b"\n", 0, at) + 1
    assert det["position"] == at, det
    assert det["line"] == body.count(b"\n", 0, at) + 1, det
    assert det["column"] == len(body[line_start:at + 1].decode()), det
    assert det["json_error"] == f"Unexpected token '@' at position {at}", det
    assert hits(env) == before
