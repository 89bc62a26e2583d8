"""OpenAPI documents as the gateway's routes (docs/openapi.md): `openapi:` on
a route or an upstream, the document's operations routed (templates, the
server base path), 404/405 in the dialect for what it does not declare
(unknown: reject) or passed through (unknown: pass), check-config's
warnings with positions. The upstream records every request it gets, so a
refusal is also shown not to have reached it."""
import json
import os
import subprocess
import threading

import pytest

from conftest import (BIN, Gateway, QuietHandler, ThreadedUpstream, free_port, read_error, request, spell)

FIXTURES = os.path.abspath(os.environ.get("EG_FIXTURES", os.path.join(os.path.dirname(__file__), "../fixtures")))
DOCS = os.path.join(FIXTURES, "openapi")


class Recorder(ThreadedUpstream):
    """Answers every method 200 with what it got, and keeps (method, path, body)."""

    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()
        rec = self

        class H(QuietHandler):
            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with rec.lock:
                    rec.seen.append((self.command, self.path, body))
                out = json.dumps({"upstream": True, "method": self.command, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

        super().__init__(H)

    def paths(self):
        with self.lock:
            return [(m, p) for m, p, _ in self.seen]


@pytest.fixture
def upstream():
    up = Recorder()
    yield up
    up.close()


def config(port, up, routes, upstream_extra="", dialect="problem"):
    return f"""
listen: 127.0.0.1:{port}
workers: 1
errors: {{ dialect: {dialect}, negotiate: false }}
log: {{ access: stderr }}
upstreams:
  app: {{ servers: ["127.0.0.1:{up.port}"]{upstream_extra} }}
routes:
{routes}
"""


@pytest.fixture
def start(tmp_path, upstream):
    started = []

    def go(routes, upstream_extra="", dialect="problem"):
        port = free_port()
        gw = Gateway(str(tmp_path), config(port, upstream, routes, upstream_extra, dialect), port, free_port())
        started.append(gw)
        return gw

    yield go
    for gw in started:
        code = gw.stop()
        assert code == 0, f"gateway exited with {code}; log:\n" + gw.log_text()[-4000:]


PETS = os.path.join(DOCS, "pets.yaml")
TRACE = {"X-Trace": "0badcafe"}


def test_declared_operations_are_routed_with_the_base_path(start, upstream):
    gw = start(f"""
  - path: /
    upstream: app
    openapi: {PETS}
""")
    r = request(gw.port, "GET", "/v1/pets?limit=5", headers=TRACE)
    assert r.status == 200, r.body
    assert r.json()["path"] == "/v1/pets?limit=5"  # forwarded as it came: the base path stays
    r = request(gw.port, "GET", "/v1/pets/7?verbose=true")
    assert r.status == 200, r.body
    r = request(gw.port, "GET", "/v1/pets/mine")  # the concrete path wins over {petId}
    assert r.status == 200
    r = request(gw.port, "DELETE", "/v1/pets/7")
    assert r.status == 200
    r = request(gw.port, "HEAD", "/v1/pets/mine")  # GET answers HEAD
    assert r.status == 200
    r = request(gw.port, "GET", "/health")  # servers on the path item: no base
    assert r.status == 200
    assert upstream.paths() == [("GET", "/v1/pets?limit=5"), ("GET", "/v1/pets/7?verbose=true"),
                                ("GET", "/v1/pets/mine"), ("DELETE", "/v1/pets/7"), ("HEAD", "/v1/pets/mine"),
                                ("GET", "/health")]
    # what the document says that the gateway does not enforce is in the log at start
    details = [l.get("detail", "") for l in gw.events("config_warning")]
    assert f"{PETS}:27:11: cookie parameter 'session' is not checked by the gateway" in details, details
    assert len(details) == 6, details


@pytest.mark.parametrize("dialect", ["problem", "jsonapi", "typed"])
def test_undeclared_path_is_404_and_method_405_in_the_dialect(start, upstream, dialect):
    gw = start(f"""
  - path: /
    upstream: app
    openapi: {{ file: {PETS}, unknown: reject }}
""", dialect=dialect)
    for path in ("/v1/owners", "/pets", "/v1/pets/7/toys", "/"):
        r = request(gw.port, "GET", path)
        assert r.status == 404, (path, r.body)
        assert r.header("X-Error-Code") == spell("not_found", dialect)
        assert read_error(r.body, dialect)["code"] == spell("not_found", dialect)
    r = request(gw.port, "POST", "/v1/pets/7", body=b"{}", headers={"Content-Type": "application/json"})
    assert r.status == 405, r.body
    assert r.header("Allow") == "GET, HEAD, DELETE"
    assert read_error(r.body, dialect)["code"] == spell("method_not_allowed", dialect)
    r = request(gw.port, "PUT", "/v1/pets")
    assert r.status == 405
    assert r.header("Allow") == "GET, HEAD, POST"
    assert upstream.paths() == []  # nothing refused reached the upstream


def test_unknown_pass_sends_the_undeclared_upstream(start, upstream):
    gw = start(f"""
  - path: /
    upstream: app
    openapi: {{ file: {PETS}, unknown: pass }}
""")
    assert request(gw.port, "GET", "/v1/owners").status == 200
    assert request(gw.port, "PUT", "/v1/pets/7").status == 200  # a declared path, another method
    assert request(gw.port, "GET", "/v1/pets/mine").status == 200
    assert upstream.paths() == [("GET", "/v1/owners"), ("PUT", "/v1/pets/7"), ("GET", "/v1/pets/mine")]


def test_a_route_mounts_the_document_at_its_path(start, upstream):
    """A route's path other than / stands where the server base path stood."""
    gw = start(f"""
  - path: /api/
    upstream: app
    openapi: {PETS}
  - path: /other/
    upstream: app
""")
    assert request(gw.port, "GET", "/api/pets/3?verbose=true").status == 200
    assert request(gw.port, "GET", "/api/v1/pets/3").status == 404
    assert request(gw.port, "GET", "/api/nothing").status == 404  # under the route, not declared
    assert request(gw.port, "GET", "/v1/pets/3").status == 404     # no route at all
    assert request(gw.port, "GET", "/other/x").status == 200       # other routes as before
    assert upstream.paths() == [("GET", "/api/pets/3?verbose=true"), ("GET", "/other/x")]


def test_an_upstreams_document_applies_to_its_routes(start, upstream):
    """Each operation is served by the route routing would give its path
    (the longest prefix): /v1/pets/... by /v1/, /health by /."""
    gw = start("""
  - path: /
    upstream: app
    maintenance: { retry_after: 60 }
  - path: /v1/
    upstream: app
  - path: /health
    upstream: app
""", upstream_extra=f", openapi: {PETS}")
    assert request(gw.port, "GET", "/v1/pets/3?verbose=false").status == 200
    assert request(gw.port, "GET", "/v1/pets/3").status == 422  # the document's rules on /v1/
    assert request(gw.port, "GET", "/v1/nothing").status == 404
    assert request(gw.port, "POST", "/health").status == 405
    assert request(gw.port, "GET", "/health").status == 200
    assert request(gw.port, "GET", "/elsewhere").status == 404  # under /, not in the document
    assert upstream.paths() == [("GET", "/v1/pets/3?verbose=false"), ("GET", "/health")]


def test_declared_routes_win_over_the_documents(start, upstream):
    """A route of the configuration on the same path and method comes first."""
    gw = start(f"""
  - path: /v1/pets/mine
    upstream: app
    maintenance: {{ retry_after: 60 }}
  - path: /
    upstream: app
    openapi: {PETS}
""")
    assert request(gw.port, "GET", "/v1/pets/mine").status == 503
    assert request(gw.port, "GET", "/v1/pets/3?verbose=false").status == 200


def test_parameters_are_validated_as_declared(start, upstream):
    gw = start(f"""
  - path: /
    upstream: app
    openapi: {PETS}
""")
    # limit from common.yaml (1..100), ids form unexploded integers, colors pipe-delimited enum
    ok = "/v1/pets?limit=100&tags=a&tags=b&ids=1,2,3&colors=red|blue"
    r = request(gw.port, "GET", ok, headers=TRACE)
    assert r.status == 200, r.body
    r = request(gw.port, "GET", "/v1/pets?limit=500&ids=1,x&colors=red|purple")  # and no X-Trace
    assert r.status == 422, r.body  # problem's validation status
    b = r.json()
    got = sorted((e.get("parameter") or e.get("header"), e.get("constraint")) for e in b["errors"])
    assert got == [("X-Trace", "required"), ("colors", "enum"), ("ids", "type"), ("limit", "maximum")], b
    r = request(gw.port, "GET", "/v1/pets/0?verbose=true")  # petId minimum 1, from components
    assert r.status == 422
    assert [(e["parameter"], e["constraint"]) for e in r.json()["errors"]] == [("petId", "minimum")]
    r = request(gw.port, "GET", "/v1/pets/7")  # the operation made verbose required
    assert r.status == 422
    assert r.json()["code"] == "missing_parameter"
    assert upstream.paths() == [("GET", ok)]


def test_bodies_are_validated_json_and_form(start, upstream):
    gw = start(f"""
  - path: /
    upstream: app
    openapi: {{ file: {PETS}, status: 400 }}
""", dialect="jsonapi")
    ok = b'{"name": "Rex", "species": "dog", "age": 3}'
    r = request(gw.port, "POST", "/v1/pets", body=ok, headers={"Content-Type": "application/json"})
    assert r.status == 200, r.body
    # allOf: Named (a sibling file) and the local object, every problem at once, with pointers
    bad = b'{"name": "", "species": "cow", "age": 41}'
    r = request(gw.port, "POST", "/v1/pets", body=bad, headers={"Content-Type": "application/json"})
    assert r.status == 400, r.body  # the route's status: 400
    errs = r.json()["errors"]
    assert sorted(e["source"]["pointer"] for e in errs) == ["/age", "/name", "/species"], errs
    r = request(gw.port, "POST", "/v1/pets", body=b'{"species": "cat"}', headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert [e["source"]["pointer"] for e in r.json()["errors"]] == ["/name"]
    r = request(gw.port, "POST", "/v1/pets", body=b'{"name": }', headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert r.header("X-Error-Code") == spell("invalid_json", "jsonapi")
    # the form body, checked like a query string against the same schema's properties
    r = request(gw.port, "POST", "/v1/pets", body=b"name=Tom&species=cat",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r.body
    r = request(gw.port, "POST", "/v1/pets", body=b"name=Tom&age=x",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400, r.body
    assert len(r.json()["errors"]) == 2  # species required, age an integer
    r = request(gw.port, "POST", "/v1/pets", body=b"Rex", headers={"Content-Type": "text/plain"})
    assert r.status == 415
    r = request(gw.port, "POST", "/v1/pets")  # required body
    assert r.status == 400
    assert [(m, p) for m, p in upstream.paths()] == [("POST", "/v1/pets"), ("POST", "/v1/pets")]


def check_config(tmp_path, text):
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    p = subprocess.run([BIN, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_check_config_lists_the_documents_warnings(tmp_path, upstream):
    rc, out, err = check_config(tmp_path, config(free_port(), upstream, f"""
  - path: /
    upstream: app
    openapi: {PETS}
"""))
    assert rc == 0, err
    assert "1 routes (+6 from OpenAPI operations)" in out
    want = [
        f"errgate: warning: {PETS}:7:5: only the first server's base path is used",
        f"errgate: warning: {PETS}:27:11: cookie parameter 'session' is not checked by the gateway",
        f"errgate: warning: {PETS}:50:9: callbacks are requests the API makes",
        f"errgate: warning: {PETS}:48:15: encoding of 'application/x-www-form-urlencoded' is not checked",
        f"errgate: warning: {PETS}:79:7: unknown key 'frobnicate' in an operation is ignored",
        f"errgate: warning: {PETS}:35:7: 1 operation(s) declare security (the first: post /v1/pets) but the "
        "route / has no auth:",
    ]
    for w in want:
        assert w in err, err


def test_the_example_configuration_loads_without_warnings():
    example = os.path.join(os.path.dirname(__file__), "../../examples/openapi.yaml")
    p = subprocess.run([BIN, "check-config", example], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "1 routes (+4 from OpenAPI operations)" in p.stdout
    assert p.stderr == ""


def test_check_config_refuses_bad_documents_and_combinations(tmp_path, upstream):
    rc, _, err = check_config(tmp_path, config(free_port(), upstream, f"""
  - path: /
    upstream: app
    openapi: {os.path.join(DOCS, "swagger2.yaml")}
"""))
    assert rc == 3
    assert f"gw.yaml:12:14: openapi: {DOCS}/swagger2.yaml:1:10: a Swagger 2.0 document" in err, err
    rc, _, err = check_config(tmp_path, config(free_port(), upstream, f"""
  - path: /
    upstream: app
    methods: [GET]
    openapi: {PETS}
"""))
    assert rc == 3
    assert "gw.yaml:12:14: methods: and openapi: on one route" in err, err
    rc, _, err = check_config(tmp_path, config(free_port(), upstream, f"""
  - path: /
    upstream: app
    openapi: {{ file: {PETS}, unknown: maybe }}
"""))
    assert rc == 3
    assert "unknown must be reject" in err, err
    rc, _, err = check_config(tmp_path, config(free_port(), upstream, f"""
  - path: /
    upstream: app
    openapi: {PETS}
    validate: {{ query: {{ q: {{ required: true }} }} }}
"""))
    assert rc == 3
    assert "gw.yaml:13:15: a route has validate: or openapi:, not both" in err, err


def test_a_routes_declared_rules_replace_the_upstreams_document(start, upstream):
    gw = start("""
  - path: /v1/
    upstream: app
    validate: { query: { key: { required: true } } }
  - path: /
    upstream: app
""", upstream_extra=f", openapi: {PETS}")
    r = request(gw.port, "GET", "/v1/pets/3")  # the route's rules, not the document's (verbose)
    assert r.status == 422
    assert [e["parameter"] for e in r.json()["errors"]] == ["key"]
    assert request(gw.port, "GET", "/v1/owners?key=1").status == 200  # no 404 from the document there
    assert request(gw.port, "GET", "/health").status == 200           # / has the document
    assert request(gw.port, "GET", "/elsewhere").status == 404
    assert upstream.paths() == [("GET", "/v1/owners?key=1"), ("GET", "/health")]


def docs(*args):
    p = subprocess.run([BIN, "docs", *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def section(page, heading):
    """The lines of one operation's section of the page."""
    start = page.index(heading)
    end = page.find("\n### ", start + 1)
    return page[start:end if end > 0 else len(page)]


def test_docs_lists_each_operations_errors_from_the_document(tmp_path):
    rc, out, err = docs("--openapi", PETS)
    assert rc == 0, err
    assert "## Errors per operation" in out
    s = section(out, "### GET /v1/pets/{petId}")
    for row in ["| 422 | `missing_parameter` |", "| 422 | `invalid_parameter_value` |", "| 404 | `not_found` |",
                "| 405 | `method_not_allowed` |", "| 502 | `bad_gateway` |", "| 504 | `gateway_timeout` |"]:
        assert row in s, s
    assert "unsupported_media_type" not in s  # no body declared
    s = section(out, "### POST /v1/pets")
    for row in ["| 422 | `validation_error` |", "| 400 | `invalid_json` |", "| 413 | `payload_too_large` |",
                "| 415 | `unsupported_media_type` |"]:
        assert row in s, s
    assert "api_key" not in s  # auth is the configuration's, not given here
    s = section(out, "### GET /v1/pets/mine")
    assert "missing_parameter" not in s
    # statuses sorted in each table
    statuses = [int(l.split("|")[1]) for l in s.splitlines() if l.startswith("| ") and l[2].isdigit()]
    assert statuses == sorted(statuses)


def test_docs_with_the_configuration_adds_auth_and_limits(tmp_path, upstream):
    path = tmp_path / "gw.yaml"
    path.write_text(f"""
listen: 127.0.0.1:{free_port()}
errors: {{ dialect: typed }}
upstreams:
  app: {{ servers: ["127.0.0.1:{upstream.port}"] }}
routes:
  - path: /
    upstream: app
    auth: api_key
    scopes: [pets:write]
    rate_limit: {{ limit: 10, window: 1s }}
    openapi: {{ file: {PETS}, status: 400, unknown: pass }}
""")
    rc, out, err = docs("--openapi", PETS, "--config", str(path), "--format", "html")
    assert rc == 0, err
    assert out.startswith("<!DOCTYPE html>")
    start = out.index("<h3>POST /v1/pets</h3>")
    s = out[start:out.find("<h3>", start + 1)]
    # the configuration's dialect (typed: upper case codes), its status 400, auth and limits
    for cell in ["<td>400</td><td><code>VALIDATION_ERROR</code></td>", "<td>401</td><td><code>MISSING_API_KEY</code></td>",
                 "<td><code>INSUFFICIENT_PERMISSIONS</code></td>", "<td>429</td><td><code>RATE_LIMIT_EXCEEDED</code></td>"]:
        assert cell in s, s
    assert "NOT_FOUND" not in s  # unknown: pass
    rc, _, err = docs("--openapi", os.path.join(DOCS, "legacy30.yaml"), "--config", str(path))
    assert rc == 3
    assert "does not use the OpenAPI document" in err


def test_check_config_warns_of_a_route_the_document_does_not_cover(tmp_path, upstream):
    rc, out, err = check_config(tmp_path, config(free_port(), upstream, """
  - path: /admin/
    upstream: app
  - path: /v1/
    upstream: app
""", upstream_extra=f", openapi: {PETS}"))
    assert rc == 0, err
    assert ("gw.yaml:10:5: none of the document's 6 operations is under the route /admin/: with unknown: reject, "
            "every request to it is 404 not_found") in err, err


@pytest.mark.parametrize("unknown", ["reject", "pass"])
def test_one_path_shape_with_two_names(start, upstream, unknown):
    """/x/{a} (GET) and /x/{b} (PUT) are one path: each method its own
    parameter name and rules; another method is 405 or passed."""
    doc = os.path.join(DOCS, "shapes.yaml")
    gw = start(f"""
  - path: /
    upstream: app
    openapi: {{ file: {doc}, unknown: {unknown} }}
""")
    assert request(gw.port, "GET", "/x/12").status == 200
    assert request(gw.port, "GET", "/x/abc").status == 422     # a: integer
    assert request(gw.port, "PUT", "/x/abc").status == 200
    assert request(gw.port, "PUT", "/x/abcd").status == 422    # b: at most 3
    r = request(gw.port, "DELETE", "/x/1")
    if unknown == "reject":
        assert r.status == 405
        assert r.header("Allow") == "GET, HEAD, PUT"
    else:
        assert r.status == 200
    want = [("GET", "/x/12"), ("PUT", "/x/abc")] + ([("DELETE", "/x/1")] if unknown == "pass" else [])
    assert upstream.paths() == want


def test_path_styles_and_deep_objects_through_the_gateway(start, upstream):
    doc = os.path.join(DOCS, "styles.yaml")
    gw = start(f"""
  - path: /
    upstream: app
    openapi: {doc}
""")
    ok = "/items/.1.2/;color=red?words=a%20b&filter[min]=3"
    assert request(gw.port, "GET", ok).status == 200
    r = request(gw.port, "GET", "/items/.1.x/;color=red?filter[min]=x")
    assert r.status == 422, r.body
    assert sorted(e["parameter"] for e in r.json()["errors"]) == ["filter", "ids"]
    assert upstream.paths() == [("GET", ok)]
