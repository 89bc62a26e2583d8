"""CORS checked by a real browser (docs/cors.md): headless Chromium, driven by
Selenium through chromedriver, loads a page from one origin (a static server
in this test, http://127.0.0.1:<page port>) and runs fetch() against errgate
on another port, a different origin. test_cors.py checks the gateway's header
lines against a model of the Fetch standard's CORS check; here the browser
itself decides what the page may read, so a mistake in that model, or a
header line a browser refuses, shows.

What makes a failure here mean something: every refusal the page sees is
paired with proof that the gateway answered (the upstream saw the request, or
the access log has the refused preflight), so a TypeError is the browser
enforcing CORS, never a server that was down.

One browser and one gateway for the module (Chromium starts in about a
second). Nothing sleeps: driver.get returns after the page's load event, the
gateway is ready when it logs "started", the static servers are listening
before their port is known, and every fetch() is awaited in the page
(execute_async_script) with a deadline.

Needs Debian's chromium, chromium-driver and python3-selenium
(scripts/deps.sh --test installs them); without them the tests are skipped
with the reason, and under EG_REQUIRE_ALL=1 (CI) they fail."""
import importlib
import json
import os
import shutil
import tempfile
import threading

import pytest

from conftest import Gateway, QuietHandler, ThreadedUpstream, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# The page: probe() runs one fetch() and reports what the page can see of it,
# exactly what a script on that origin would get: the status, the body, the
# headers it may read (headers.get gives null for the others), or the error
# fetch() rejected with.
PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>cors probe</title>
<link rel="icon" href="data:,">
<script>
window.probe = async (url, init, names) => {
  try {
    const r = await fetch(url, init);
    const body = await r.text();
    const headers = {};
    for (const n of names) headers[n] = r.headers.get(n);
    return {status: r.status, type: r.type, body, headers, visible: [...r.headers.keys()]};
  } catch (e) {
    return {error: e.name, message: String(e.message)};
  }
};
</script></head><body>probe</body></html>
"""

# The headers the page asks about in every probe.
NAMES = ["content-type", "x-request-id", "x-error-code", "retry-after", "ratelimit", "ratelimit-policy",
         "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-echo", "x-hidden",
         "access-control-allow-origin"]


def missing_prerequisite():
    """Why the browser cannot run here, or None."""
    try:
        importlib.import_module("selenium.webdriver")
    except ImportError:
        return "python3-selenium is not installed (scripts/deps.sh --test)"
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (Debian's {pkg}; scripts/deps.sh --test)"
    return None


class PageHandler(QuietHandler):
    """Serves PAGE at / (and 404 for anything else, favicon included)."""

    def do_GET(self):
        body, status = (PAGE, 200) if self.path == "/" else (b"not here", 404)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


class Echo(QuietHandler):
    """The upstream: records every request that reaches it and answers it
    with what it saw, as JSON; X-Echo is exposed on the /v1/items/ route,
    X-Hidden nowhere (a browser must hide it)."""
    hits = []
    lock = threading.Lock()

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(n).decode() if n else ""
        seen = {"method": self.command, "path": self.path, "content_type": self.headers.get("Content-Type"),
                "trace": self.headers.get("X-Client-Trace"), "cookie": self.headers.get("Cookie"), "body": sent}
        with self.lock:
            self.hits.append(seen)
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo", f"{self.command.lower()}-seen")
        self.send_header("X-Hidden", "upstream-only")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = answer


def hits_for(method, path):
    with Echo.lock:
        return [h for h in Echo.hits if h["method"] == method and h["path"] == path]


def config(port, admin, up, tmp, origin):
    """The allowed origin is the page server's; /session/ alone allows credentials."""
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
errors: {{ dialect: problem }}
log: {{ access: stderr }}
store: {{ path: {tmp}/keys.db }}
rate_limits: {{ headers: [legacy, ietf] }}
cors:
  origins: ["{origin}"]
upstreams:
  up: {{ servers: ["127.0.0.1:{up}"], timeout: 5s }}
routes:
  - path: /v1/items/
    upstream: up
    cors:
      origins: ["{origin}"]
      headers: [Content-Type, X-Client-Trace]
      expose: [X-Echo]
  - path: /session/
    upstream: up
    cors: {{ origins: ["{origin}"], credentials: true }}
  - {{ path: /key/, upstream: up, auth: api_key }}
  - {{ path: /limited/, upstream: up, rate_limit: {{ limit: 1, window: 1h, by: ip }} }}
"""


class Stack:
    """The servers of the module: the upstream, the gateway, the allowed
    page's origin and another one."""

    def __init__(self, tmp):
        self.up = ThreadedUpstream(Echo)
        self.page = ThreadedUpstream(PageHandler)  # the allowed origin
        self.other = ThreadedUpstream(PageHandler)  # same page, another origin
        self.origin = f"http://127.0.0.1:{self.page.port}"
        self.other_origin = f"http://127.0.0.1:{self.other.port}"
        port, admin = free_port(), free_port()
        try:
            self.gw = Gateway(str(tmp), config(port, admin, self.up.port, tmp, self.origin), port, admin)
        except BaseException:
            self.close_servers()
            raise
        self.api = f"http://127.0.0.1:{port}"

    def close_servers(self):
        for s in (self.up, self.page, self.other):
            s.close()

    def access(self, method, path, what):
        """Waits for the gateway's access lines of one method and path (the
        line is written once the answer is sent) and returns their statuses."""
        lines = self.gw.wait_log(lambda l: l.get("kind") == "access" and l.get("method") == method
                                 and l.get("path") == path, what)
        return [l["status"] for l in lines]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("cors-browser"))
    yield s
    code = s.gw.stop()
    s.close_servers()
    assert code == 0, s.gw.log_text()[-3000:]


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """One headless Chromium for the module; skipped (failed under
    EG_REQUIRE_ALL=1) when it is not installed. An installed browser that
    does not start is a failure, not a skip."""
    why = missing_prerequisite()
    if why:
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="eg-chromium-", dir=str(tmp_path_factory.getbasetemp()))
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new",
                "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
                f"--user-data-dir={profile}",
                "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-proxy-server"):  # an http_proxy in the environment must not carry the test's requests
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_script_timeout(30)  # a fetch() that never settles fails the test, it does not hang it
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def open_page(drv, origin):
    drv.get(origin + "/")  # returns after the load event: probe() is defined
    assert drv.execute_script("return typeof window.probe") == "function"


def probe(drv, url, init=None):
    """Runs fetch(url, init) in the page; returns what the page saw."""
    init = dict(init or {}, cache="no-store")
    return drv.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.probe(arguments[0], arguments[1], arguments[2]).then(done);", url, init, NAMES)


def read(seen):
    """The page's view of an answer: asserts fetch() resolved."""
    assert "error" not in seen, f"the browser refused the answer: {seen}"
    return seen


def assert_blocked(seen):
    """fetch() rejected: the page gets a TypeError and nothing else (no
    status, body or header)."""
    assert seen.get("error") == "TypeError", seen
    assert set(seen) == {"error", "message"}, seen


def test_preflighted_put_reaches_the_upstream_and_the_page_reads_the_answer(driver, stack):
    open_page(driver, stack.origin)
    path = "/v1/items/42"
    seen = read(probe(driver, stack.api + path, {
        "method": "PUT", "body": json.dumps({"name": "lamp"}),
        "headers": {"Content-Type": "application/json", "X-Client-Trace": "trace-1"}}))
    assert seen["status"] == 200 and seen["type"] == "cors"
    assert json.loads(seen["body"]) == {"method": "PUT", "path": path, "content_type": "application/json",
                                        "trace": "trace-1", "cookie": None, "body": '{"name": "lamp"}'}
    h = seen["headers"]
    assert h["content-type"] == "application/json"
    assert h["x-echo"] == "put-seen"  # the route's expose
    assert h["x-request-id"]  # always exposed
    assert h["x-hidden"] is None  # not exposed: the browser hides it
    assert "x-hidden" not in seen["visible"]
    assert h["access-control-allow-origin"] is None  # not exposed either
    # the browser preflighted, the gateway answered it and the upstream never saw it
    assert stack.access("OPTIONS", path, "the preflight's access line") == [204]
    assert hits_for("OPTIONS", path) == []
    assert len(hits_for("PUT", path)) == 1


def assert_error_seen(seen, status, code):
    seen = read(seen)
    assert seen["status"] == status, seen
    h = seen["headers"]
    assert h["content-type"] == "application/problem+json"
    assert h["x-error-code"] == code
    body = json.loads(seen["body"])
    assert body["status"] == status and body["code"] == code
    assert h["x-request-id"] and body["request_id"] == h["x-request-id"]
    return h


def test_gateway_errors_are_readable_by_the_page(driver, stack):
    open_page(driver, stack.origin)
    # 401 from access control, on a preflighted request (JSON), as a page sends it
    seen = probe(driver, stack.api + "/key/orders", {
        "method": "PUT", "body": "{}", "headers": {"Content-Type": "application/json"}})
    assert_error_seen(seen, 401, "missing_api_key")
    assert hits_for("PUT", "/key/orders") == []
    # 404 from routing: the global policy
    assert_error_seen(probe(driver, stack.api + "/nowhere"), 404, "not_found")
    # 429 from the rate limit (1 an hour by address): the page reads when to come back
    first = read(probe(driver, stack.api + "/limited/a"))
    assert first["status"] == 200
    assert first["headers"]["x-ratelimit-limit"] == "1" and first["headers"]["x-ratelimit-remaining"] == "0"
    h = assert_error_seen(probe(driver, stack.api + "/limited/a"), 429, "rate_limit_exceeded")
    assert 0 < int(h["retry-after"]) <= 3600
    assert h["x-ratelimit-limit"] == "1" and h["x-ratelimit-remaining"] == "0"
    assert int(h["x-ratelimit-reset"]) > 0
    assert h["ratelimit-policy"] == '"ip-1h";q=1;w=3600'
    assert h["ratelimit"].startswith('"ip-1h";r=0;t=')


def test_another_origin_gets_a_type_error_and_sees_nothing(driver, stack):
    open_page(driver, stack.other_origin)
    # a simple GET is sent (the upstream answers it) but the browser hides the answer
    path = "/v1/items/7"
    assert_blocked(probe(driver, stack.api + path))
    assert len(hits_for("GET", path)) == 1
    # so is an error body
    assert_blocked(probe(driver, stack.api + "/key/orders"))
    assert stack.access("GET", "/key/orders", "the hidden 401's access line") == [401]
    # a preflighted PUT never leaves the browser: the gateway refuses the preflight
    path = "/v1/items/8"
    assert_blocked(probe(driver, stack.api + path, {
        "method": "PUT", "body": "{}", "headers": {"Content-Type": "application/json"}}))
    assert stack.access("OPTIONS", path, "the refused preflight's access line") == [403]
    assert hits_for("PUT", path) == [] and hits_for("OPTIONS", path) == []


def test_credentials_include_only_where_configured(driver, stack):
    open_page(driver, stack.origin)
    # a cookie of 127.0.0.1 (cookies ignore ports): the browser sends it to
    # the gateway only with credentials: "include"
    driver.execute_script("document.cookie = 'sid=s3cret; path=/; SameSite=Lax'")
    path = "/session/me"
    seen = read(probe(driver, stack.api + path, {"credentials": "include"}))
    assert seen["status"] == 200
    assert json.loads(seen["body"])["cookie"] == "sid=s3cret"
    assert seen["headers"]["x-request-id"]
    # without credentials the same request carries no cookie, and is readable too
    seen = read(probe(driver, stack.api + path))
    assert seen["status"] == 200 and json.loads(seen["body"])["cookie"] is None
    # a route without credentials: true: the request goes out with the cookie,
    # the browser refuses the answer (no Access-Control-Allow-Credentials)
    path = "/v1/items/9"
    assert_blocked(probe(driver, stack.api + path, {"credentials": "include"}))
    got = hits_for("GET", path)
    assert [h["cookie"] for h in got] == ["sid=s3cret"]
    # and a preflighted one with credentials is stopped at the preflight
    path = "/v1/items/10"
    assert_blocked(probe(driver, stack.api + path, {
        "method": "PUT", "body": "{}", "credentials": "include", "headers": {"Content-Type": "application/json"}}))
    assert hits_for("PUT", path) == []
    # the same origin without credentials reads that route (the refusal was the credentials)
    assert read(probe(driver, stack.api + path, {
        "method": "PUT", "body": "{}", "headers": {"Content-Type": "application/json"}}))["status"] == 200
