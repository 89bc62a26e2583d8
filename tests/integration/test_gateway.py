"""errgate serve against the demo upstream: proxying, errors in the dialect,
strict parsing, timeouts, request ids, negotiation, reload and drain."""
import json
import re
import select
import signal
import socket
import threading
import time

import pytest

from conftest import (Gateway, HeldUpstream, Pipelined, QuietHandler, ThreadedUpstream, base_config,
                      closed_after, free_port, python_upstream, read_response, request, wait_for)

REQID = re.compile(r"^req_[0-9a-f]{32}$")


def assert_gateway_error(resp, status, code, content_type="application/problem+json"):
    assert resp.status == status, resp.body
    assert resp.header("Content-Type") == content_type
    assert resp.header("X-Error-Code") == code
    rid = resp.header("X-Request-ID")
    assert rid
    body = resp.json()
    if content_type == "application/problem+json":
        assert body["status"] == status
        assert body["code"] == code
        assert body["request_id"] == rid
    return body


def test_get_is_proxied_with_forwarding_headers(gateway):
    r = request(gateway.port, "GET", "/v1/hello?x=1")
    assert r.status == 200
    body = r.json()
    assert body["path"] == "/v1/hello?x=1"
    h = body["headers"]
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["forwarded"] == "for=127.0.0.1;proto=http"
    assert h["host"] == "test.local"
    assert REQID.match(h["x-request-id"])
    assert r.header("X-Request-ID") == h["x-request-id"]
    assert re.match(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", h["traceparent"])
    assert "connection" not in h  # keep-alive is HTTP/1.1's default: nothing to say


def test_hop_by_hop_and_spoofed_headers_do_not_pass(gateway):
    r = request(gateway.port, "GET", "/v1/hello", headers={
        "Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "1", "Keep-Alive": "timeout=5",
        "X-Forwarded-For": "10.0.0.1", "Forwarded": "for=evil", "X-Forwarded-Proto": "https"})
    h = r.json()["headers"]
    assert "x-secret-hop" not in h and "keep-alive" not in h
    assert h["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert h["forwarded"] == "for=127.0.0.1;proto=http"
    assert h["x-forwarded-proto"] == "http"


def test_post_body_is_streamed_both_ways(gateway):
    body = bytes(range(256)) * 4096  # 1 MiB
    r = request(gateway.port, "POST", "/v1/echo", headers={"Content-Type": "application/octet-stream"}, body=body)
    assert r.status == 200
    assert r.body == body


def test_chunked_request_and_response(gateway):
    raw = (b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
    r = request(gateway.port, raw=raw)
    assert r.status == 200 and r.body == b"hello world"
    r = request(gateway.port, "GET", "/v1/chunked")
    assert r.status == 200
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.body == b"hello chunky world\n"


def test_large_response_body(gateway):
    n = 5 * 1024 * 1024
    r = request(gateway.port, "GET", f"/v1/big?bytes={n}", timeout=30)
    assert r.status == 200 and len(r.body) == n
    assert r.body[:26] == b"abcdefghijklmnopqrstuvwxyz"


def test_keep_alive_and_pipelining(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        for i in range(3):
            s.sendall(f"GET /v1/hello?n={i} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            r, rest = read_response(s)
            assert r.status == 200 and r.json()["path"] == f"/v1/hello?n={i}"
            assert rest == b""
        # three pipelined requests in one write, one of them a gateway error
        s.sendall(b"GET /v1/hello?p=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /v1/hello?p=3 HTTP/1.1\r\nHost: t\r\n\r\n")
        rest = b""
        got = []
        for _ in range(3):
            class Wrapped:
                def __init__(self, sock, pre):
                    self.sock, self.pre = sock, pre

                def recv(self, n):
                    if self.pre:
                        out, self.pre = self.pre, b""
                        return out
                    return self.sock.recv(n)
            r, rest = read_response(Wrapped(s, rest))
            got.append(r.status)
        assert got == [200, 404, 200]


def test_fifty_pipelined_requests_in_one_write(gateway):
    """50 requests in one write on one connection: 50 answers, in order,
    each the upstream's answer to its own request (the path it echoes, and
    the request id the gateway sent it, which is the answer's X-Request-ID),
    and 50 access lines in the same order. The requests after the first
    wait in the connection's buffer: each is started from there when the one
    before has been answered, not when more bytes arrive (none do)."""
    n = 50
    batch = b"".join(f"GET /v1/hello?n={i} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(n))
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=20) as s:
        s.sendall(batch)
        p = Pipelined(s)
        rids = []
        for i in range(n):
            r = p.read()
            assert r.status == 200, (i, r.body)
            body = r.json()
            assert body["path"] == f"/v1/hello?n={i}"
            assert REQID.match(r.header("X-Request-ID"))
            assert body["request_id"] == r.header("X-Request-ID")
            rids.append(body["request_id"])
        assert p.pre == b""  # nothing more than the 50 answers
    assert len(set(rids)) == n

    def logged():
        lines = [l for l in gateway.log_lines() if l.get("kind") == "access" and l.get("request_id") in rids]
        return lines if len(lines) == n else None
    lines = wait_for(logged, what="50 access lines")
    assert [l["request_id"] for l in lines] == rids
    assert [l["path"] for l in lines] == [f"/v1/hello?n={i}" for i in range(n)]


def _whole_in_one_read(sock, raw):
    """Sends one request and reads once when the answer starts to arrive:
    whether that one read holds the whole answer (head and body)."""
    sock.sendall(raw)
    sock.settimeout(20)
    readable, _, _ = select.select([sock], [], [], 20)
    assert readable, "no answer"
    got = sock.recv(65536)
    head, _, body = got.partition(b"\r\n\r\n")
    cl = re.search(rb"\r\nContent-Length: (\d+)\r\n", head + b"\r\n", re.I)
    assert cl, head
    if len(body) >= int(cl.group(1)):
        return True
    while len(body) < int(cl.group(1)):  # the rest, so the connection stays in step
        chunk = sock.recv(65536)
        assert chunk, "closed inside the body"
        body += chunk
    return False


@pytest.mark.parametrize("via", ["upstream", "gateway"])
def test_keep_alive_answer_leaves_in_one_piece(gateway, via):
    """The demo upstream writes each answer's head and body in one write (and
    sets TCP_NODELAY): written apart, the body waited under Nagle for the
    reader's delayed ACK, 40 ms an answer on a kept-alive connection, which
    capped anything in front of it (errgate, nginx, haproxy alike) at about
    90 requests a second per connection, pipelined or not. Structural, not
    timed: the whole answer (about 550 bytes, one segment on loopback) is in
    the first read once it starts arriving; the gateway passes head and body
    on in one write when they came in one read. Written apart, the first
    read held the head alone. The first answers of a connection were quick
    (the kernel ACKs at once at first): 20 answers in a row on one
    connection are checked."""
    port = gateway.upstream_port if via == "upstream" else gateway.port
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        split = [i for i in range(20)
                 if not _whole_in_one_read(s, f"GET /v1/hello?n={i} HTTP/1.1\r\nHost: t\r\n\r\n".encode())]
    assert split == []


def test_unknown_route_is_404_with_path(gateway):
    r = request(gateway.port, "GET", "/nowhere/at/all")
    body = assert_gateway_error(r, 404, "not_found")
    assert body["path"] == "/nowhere/at/all"


def test_wrong_method_is_405_with_allow(gateway):
    r = request(gateway.port, "DELETE", "/v1/readonly")
    body = assert_gateway_error(r, 405, "method_not_allowed")
    assert r.header("Allow") == "GET, HEAD"
    assert body["method"] == "DELETE"


def test_maintenance_is_503_with_retry_after(gateway):
    r = request(gateway.port, "GET", "/v1/maintenance")
    body = assert_gateway_error(r, 503, "service_unavailable")
    assert r.header("Retry-After") == "120"
    assert body["retry_after"] == 120
    assert body["maintenance_end"] == "2030-01-01T06:00:00Z"


def test_slow_upstream_is_504_with_timeout_and_name(gateway):
    # the upstream would answer after 10 s: a 504 at all says the 1 s
    # timeout fired; the bounds say not early, and not at some later time
    t0 = time.monotonic()
    r = request(gateway.port, "GET", "/slow/x?ms=10000", timeout=30)
    body = assert_gateway_error(r, 504, "gateway_timeout")
    assert body["timeout_duration"] == "1s"
    assert body["upstream_service"] == "slow"
    assert 0.9 < time.monotonic() - t0 < 5


def test_dead_upstream_is_502(gateway):
    r = request(gateway.port, "GET", "/dead/x")
    body = assert_gateway_error(r, 502, "bad_gateway")
    assert body["upstream_service"] == "dead"
    assert "127.0.0.1" not in json.dumps(body), "internal addresses must not leak"


def test_dropped_connection_is_502(gateway):
    r = request(gateway.port, "GET", "/v1/drop")
    assert_gateway_error(r, 502, "bad_gateway")


def test_idempotent_request_retried_on_next_server(gateway):
    # /pair/ has a dead server and a live one: round robin hits both, never fails
    for _ in range(4):
        r = request(gateway.port, "GET", "/pair/hello")
        assert r.status == 200


def test_dialect_spelling_of_502_in_flat_camel(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), base_config(port, admin, upstream_port, dialect="flat-camel"), port, admin)
    try:
        r = request(port, "GET", "/dead/x")
        assert r.status == 502
        assert r.header("X-Error-Code") == "EXTERNAL_SERVICE_ERROR"
        body = r.json()
        assert body["error"] == "EXTERNAL_SERVICE_ERROR" and body["statusCode"] == 502
        assert body["details"]["requestId"] == r.header("X-Request-ID")
    finally:
        assert gw.stop() == 0


def test_request_id_kept_or_generated(gateway):
    r = request(gateway.port, "GET", "/v1/hello", headers={"X-Request-ID": "abc-123_x.y+z/w="})
    assert r.header("X-Request-ID") == "abc-123_x.y+z/w="
    assert r.json()["headers"]["x-request-id"] == "abc-123_x.y+z/w="
    for bad in ["has space", "semi;colon", "x" * 201]:
        r = request(gateway.port, "GET", "/v1/hello", headers={"X-Request-ID": bad})
        assert REQID.match(r.header("X-Request-ID")), bad
        assert r.json()["headers"]["x-request-id"] == r.header("X-Request-ID")
    r = request(gateway.port, "GET", "/nowhere", headers={"X-Request-ID": "mine-1"})
    assert r.header("X-Request-ID") == "mine-1" and r.json()["request_id"] == "mine-1"


def test_traceparent_passed_or_replaced(gateway):
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = request(gateway.port, "GET", "/v1/hello", headers={"traceparent": tp})
    assert r.json()["headers"]["traceparent"] == tp
    r = request(gateway.port, "GET", "/v1/hello", headers={"traceparent": "00-zz-bad-01"})
    got = r.json()["headers"]["traceparent"]
    assert got != "00-zz-bad-01" and re.match(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", got)


def test_accept_negotiates_the_dialect(gateway):
    r = request(gateway.port, "GET", "/nowhere", headers={"Accept": "application/vnd.api+json"})
    assert r.header("Content-Type") == "application/vnd.api+json"
    err = r.json()["errors"][0]
    assert err["status"] == "404" and err["code"] == "not_found"
    r = request(gateway.port, "GET", "/nowhere", headers={"Accept": "application/problem+json"})
    assert r.header("Content-Type") == "application/problem+json"


@pytest.mark.parametrize("raw,status,code", [
    (b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "bad_request"),
    (b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, "bad_request"),
    (b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello", 400, "bad_request"),
    (b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, "bad_request"),
    (b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad_request"),
    (b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;a b\r\nhello\r\n0\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/hello HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/hello HTTP/1.1\r\nHost : t\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/hello HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/hello HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400, "bad_request"),
    (b"G(T /v1/hello HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/hello HTTP/3.0\r\nHost: t\r\n\r\n", 505, "http_version_not_supported"),
    (b"GET /v1/hello HTTX/1.1\r\nHost: t\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/hello HTTP/1.1\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/hello HTTP/1.1\r\nHost: evil.example/x\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/hello HTTP/1.1\r\nHost: a@b\r\n\r\n", 400, "bad_request"),
    (b"GET http://a.example/v1/hello HTTP/1.1\r\nHost: b.example\r\n\r\n", 400, "bad_request"),
    (b"GET http://u@t/v1/hello HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad_request"),
    (b"GET * HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad_request"),
    (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "uri_too_long"),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, "request_header_fields_too_large"),
])
def test_malformed_requests_are_refused_and_closed(gateway, raw, status, code):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(raw)
        r, _ = read_response(s)
        assert_gateway_error(r, status, code)
        assert r.header("Connection") == "close"
        assert closed_after(s)


def test_body_over_limit_is_413(gateway):
    r = request(gateway.port, raw=b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n")
    body = assert_gateway_error(r, 413, "payload_too_large")
    assert body["max_body_size"] == 8 * 1024 * 1024


def test_slowloris_gets_408_and_is_closed(gateway):
    """A client that keeps trickling header lines does not keep the head
    open: header_timeout (1s) counts from its first byte."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        t0 = time.monotonic()
        s.sendall(b"GET /v1/hello HTTP/1.1\r\nHost: t\r\n")
        while not select.select([s], [], [], 0.2)[0]:  # a line every 0.2 s until the gateway answers
            assert time.monotonic() - t0 < 10, "no answer to a head that never ends"
            s.sendall(b"X-Slow: 1\r\n")
        r, _ = read_response(s)
        assert r.status == 408 and r.header("X-Error-Code") == "request_timeout"
        assert 0.9 < time.monotonic() - t0 < 5
        assert closed_after(s)


def test_idle_keepalive_connection_is_closed(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    cfg = base_config(port, admin, upstream_port, limits="  idle_timeout: 1s")
    gw = Gateway(str(tmp_path), cfg, port, admin)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            t0 = time.monotonic()
            assert closed_after(s, timeout=10)
            assert 0.9 < time.monotonic() - t0 < 5
    finally:
        assert gw.stop() == 0


def test_admin_health_and_ready(gateway):
    r = request(gateway.admin_port, "GET", "/health")
    assert r.status == 200 and r.json()["status"] == "ok"
    assert set(r.json()["upstreams"]) == {"demo", "slow", "dead", "pair"}
    r = request(gateway.admin_port, "GET", "/ready")
    body = r.json()
    assert set(body["upstreams"]) == {"demo", "slow", "dead", "pair"}
    assert body["upstreams"]["demo"]["servers"][0]["state"] == "up"
    # three failures mark the dead server down, and /ready says so
    for _ in range(3):
        request(gateway.port, "GET", "/dead/x")
    r = request(gateway.admin_port, "GET", "/ready")
    assert r.status == 503
    assert r.json()["upstreams"]["dead"]["state"] == "down"
    assert request(gateway.admin_port, "GET", "/nope").status == 404


def test_access_log_lines(gateway):
    request(gateway.port, "GET", "/v1/hello?api_key=SECRET123&q=x",
            headers={"Authorization": "Bearer TOPSECRET", "X-Request-ID": "log-test-1", "Cookie": "sid=COOKIE9"})
    lines = gateway.wait_log(lambda l: l.get("request_id") == "log-test-1", "the access line")
    assert len(lines) == 1
    line = lines[0]
    assert line["kind"] == "access" and line["status"] == 200 and line["method"] == "GET"
    assert line["path"] == "/v1/hello?api_key=[REDACTED]&q=x"
    assert line["route"] == "/v1/" and line["latency_us"] > 0 and line["bytes_out"] > 0
    raw = open(gateway.log, errors="replace").read()
    for secret in ["SECRET123", "TOPSECRET", "COOKIE9"]:
        assert secret not in raw


def test_sighup_reload_adds_a_route_and_bad_config_keeps_the_old(gateway):
    assert request(gateway.port, "GET", "/v2/new").status == 404
    cfg = base_config(gateway.port, gateway.admin_port, gateway.upstream_port,
                      extra_routes="  - path: /v2/\n    upstream: demo\n")
    gateway.rewrite(cfg)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as held:
        held.sendall(b"GET /v1/hello HTTP/1.1\r\nHost: t\r\n\r\n")  # accepted and served before
        assert read_response(held)[0].status == 200
        gateway.signal(signal.SIGHUP)
        gateway.wait_event("reloaded")
        assert request(gateway.port, "GET", "/v2/new").status == 200
        # a connection opened before the reload still works
        held.sendall(b"GET /v1/hello HTTP/1.1\r\nHost: t\r\n\r\n")
        r, _ = read_response(held)
        assert r.status == 200
        # and the request after that has the new configuration (a connection
        # takes the active one when a request ends)
        held.sendall(b"GET /v2/new HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(held)[0].status == 200
    gateway.rewrite("listen: [broken\n")
    gateway.signal(signal.SIGHUP)
    gateway.wait_event("reload_failed")
    assert request(gateway.port, "GET", "/v2/new").status == 200
    # a config with two problems: both are in the one log line
    gateway.rewrite(cfg.replace("workers: 2", "workers: 0", 1).replace("routes:\n", "routes:\n  - { path: nope, upstream: demo }\n", 1))
    gateway.signal(signal.SIGHUP)
    gateway.wait_event("reload_failed", 2)
    assert request(gateway.port, "GET", "/v2/new").status == 200
    failed = gateway.events("reload_failed")
    assert len(failed) == 2 and len(gateway.events("reloaded")) == 1
    problems = failed[-1]["detail"].split("\n")
    assert len(problems) == 2, problems
    assert "0 is out of range 1..256" in problems[0] and "a route needs path" in problems[1]


def refuses(port):
    """True when a connection to the port is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def test_sigterm_drains_in_flight_requests(tmp_path):
    """SIGTERM with a request in flight (the upstream has it and holds its
    answer): the listener closes, the process waits, the request is answered
    in full, then the process exits 0."""
    up = HeldUpstream(b"drained")
    port, admin = free_port(), free_port()
    cfg = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
upstreams:
  held: {{ servers: ["127.0.0.1:{up.port}"], timeout: 120s }}
routes:
  - {{ path: /, upstream: held }}
"""
    gw = Gateway(str(tmp_path), cfg, port, admin)
    s = None
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(b"GET /in-flight HTTP/1.1\r\nHost: t\r\n\r\n")
        up.wait_arrived(1)
        gw.signal(signal.SIGTERM)
        gw.wait_event("stopping")
        wait_for(lambda: refuses(port), what="the listener to close while draining")
        assert gw.proc.poll() is None, "exited with a request in flight"
        up.release()
        r, _ = read_response(s)
        assert r.status == 200 and r.body == b"drained"
        assert gw.proc.wait(timeout=60) == 0
        assert not gw.events("drain_timeout")
        assert refuses(port)
    finally:
        if s:
            s.close()
        up.close()
        gw.stop()


def test_check_config_reports_every_problem_with_position(tmp_path):
    import subprocess
    from conftest import BIN
    p = tmp_path / "bad.yaml"
    p.write_text("listen: 127.0.0.1:8080\nupstreams:\n  a: { servers: [127.0.0.1:1], timeout: 5 }\n"
                 "routes:\n  - { path: /, upstream: a }\n  - { path: /b, upstream: z }\n")
    out = subprocess.run([BIN, "check-config", str(p)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"errgate: {p}:3:41: invalid duration '5'")
    assert lines[1] == f"errgate: {p}:6:27: unknown upstream 'z'"
    # serve refuses the same file with the same report
    out = subprocess.run([BIN, "serve", "--config", str(p)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    assert out.stderr.splitlines() == lines


def test_client_that_stops_reading_is_cut_off(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    cfg = base_config(port, admin, upstream_port, limits="  write_timeout: 1s")
    gw = Gateway(str(tmp_path), cfg, port, admin)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /v1/big?bytes=8000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        # read nothing: the gateway's writes stall until write_timeout ends
        # the connection, which its access line records
        line = gw.wait_log(lambda l: l.get("path") == "/v1/big?bytes=8000000", "the cut response's access line")
        assert closed_after(s, timeout=10), "the stalled connection was not closed"
        s.close()
        # the gateway still serves others
        assert request(port, "GET", "/v1/hello").status == 200
        assert line[0]["status"] == 200 and line[0]["bytes_out"] < 8000000
    finally:
        assert gw.stop() == 0


def test_sigusr1_reopens_the_log_file(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    log = tmp_path / "access.log"
    cfg = base_config(port, admin, upstream_port).replace(
        "log: { access: stderr, redact_query: [api_key] }", f"log: {{ access: {log}, errors: stderr }}")
    gw = Gateway(str(tmp_path), cfg, port, admin)
    try:
        request(port, "GET", "/v1/hello", headers={"X-Request-ID": "before-rotation"})
        wait_for(lambda: "before-rotation" in log.read_text(), what="the first access line")
        rotated = tmp_path / "access.log.1"
        log.rename(rotated)
        gw.signal(signal.SIGUSR1)
        gw.wait_event("logs_reopened")
        request(port, "GET", "/v1/hello", headers={"X-Request-ID": "after-rotation"})
        wait_for(lambda: log.exists() and "after-rotation" in log.read_text(), what="the line in the new file")
        assert "before-rotation" in rotated.read_text()
        assert "after-rotation" not in rotated.read_text()
    finally:
        assert gw.stop() == 0


def test_head_request_has_no_body_and_keeps_the_connection(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(b"HEAD /v1/big?bytes=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
        r, rest = read_response(s, head_only=True)
        assert r.status == 200 and r.header("Content-Length") == "1000" and rest == b""
        s.sendall(b"GET /v1/hello HTTP/1.1\r\nHost: t\r\n\r\n")
        r, _ = read_response(s)
        assert r.status == 200 and r.json()["path"] == "/v1/hello"


def test_expect_100_continue_is_answered_by_the_gateway(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim, rest = read_response(s, head_only=True)
        assert interim.status == 100 and rest == b""
        s.sendall(b"hello")
        r, _ = read_response(s)
        assert r.status == 200 and r.body == b"hello"


def test_post_is_retried_only_after_a_failed_connect(gateway):
    # /pair/ = [dead, live]: a refused connect sent nothing, so even a POST moves on
    for _ in range(4):
        r = request(gateway.port, "POST", "/pair/echo", body=b"data")
        assert r.status == 200


class DroppingUpstream(ThreadedUpstream):
    """Reads each request whole, records its method, and closes the
    connection without answering: the request was sent, its outcome unknown."""

    def __init__(self):
        outer = self
        self.seen = []

        class H(QuietHandler):
            def drop(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                outer.seen.append(self.command)
                self.close_connection = True  # no answer at all

            do_GET = do_POST = drop

        super().__init__(H)


class AnsweringUpstream(ThreadedUpstream):
    """Answers 200 and records each request's method."""

    def __init__(self):
        outer = self
        self.seen = []

        class H(QuietHandler):
            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                outer.seen.append(self.command)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = answer

        super().__init__(H)


def test_a_post_already_sent_is_not_retried_but_a_get_is(tmp_path):
    """Two servers, retries: 1; the first takes the request and drops the
    connection. A GET is idempotent: it moves on to the second server. A
    POST was sent (the first server may have acted on it): it is a 502 and
    the second server never sees it."""
    drop, good = DroppingUpstream(), AnsweringUpstream()
    port, admin = free_port(), free_port()
    cfg = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
upstreams:
  two: {{ servers: ["127.0.0.1:{drop.port}", "127.0.0.1:{good.port}"], retries: 1, max_fails: 1000 }}
routes:
  - {{ path: /, upstream: two }}
"""
    gw = Gateway(str(tmp_path), cfg, port, admin)
    try:
        posts = []
        while drop.seen.count("POST") < 2:  # round robin: every other request meets the dropper
            assert len(posts) < 20, "the dropping server never got a POST"
            posts.append(request(port, "POST", "/x", body=b"data").status)
        assert good.seen.count("POST") == posts.count(200)
        assert posts.count(502) == drop.seen.count("POST") == 2
        gets = [request(port, "GET", "/x").status for _ in range(4)]
        assert gets == [200] * 4
        assert drop.seen.count("GET") >= 1, "the dropping server never got a GET"
        assert good.seen.count("GET") == 4  # each GET the dropper took was retried on the other
    finally:
        assert gw.stop() == 0
        drop.close()
        good.close()


def read_all(port, raw):
    """Sends raw on a fresh connection; everything read until the peer closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def test_http10_client_gets_a_dechunked_body_and_close(gateway):
    data = read_all(gateway.port, b"GET /v1/chunked HTTP/1.0\r\n\r\n")
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == b"hello chunky world\n"


def test_http10_client_keeps_content_length_and_keep_alive(gateway):
    """A length-framed response to an HTTP/1.0 client keeps its
    Content-Length, so a client that asked for keep-alive can send again."""
    pattern = bytes(ord("a") + i % 26 for i in range(1000))  # what the demo's /v1/big sends
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        for n in (1000, 1):
            s.sendall(b"GET /v1/big?bytes=%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % n)
            r, rest = read_response(s)
            assert r.status == 200 and rest == b""
            assert r.header("Content-Length") == str(n) and r.body == pattern[:n]
            assert r.header("Connection") == "keep-alive"
        s.sendall(b"GET /v1/hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r, rest = read_response(s)
        assert rest == b"" and r.json()["path"] == "/v1/hello"  # the whole body: it parses
        s.sendall(b"GET /v1/big?bytes=26 HTTP/1.0\r\n\r\n")  # no keep-alive asked: closed after
        data = b""
        while True:  # read to the close: the body must be the whole length and nothing more
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        assert b"\r\nContent-Length: 26\r\n" in head and b"\r\nConnection: close\r\n" in head + b"\r\n"
        assert body == pattern[:26]


def test_host_rewrite_sends_the_server_address(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), base_config(port, admin, upstream_port, demo_options=", host: rewrite"), port, admin)
    try:
        r = request(port, "GET", "/v1/hello")
        assert r.json()["headers"]["host"] == f"127.0.0.1:{upstream_port}"
    finally:
        assert gw.stop() == 0


class CountingUpstream(ThreadedUpstream):
    """A keep-alive HTTP/1.1 upstream that answers after `delay` seconds and
    counts the connections it accepted and those still open."""

    def __init__(self, delay):
        outer = self
        self.accepted = 0
        self.open = 0
        self.lock = threading.Lock()

        class H(QuietHandler):
            def setup(self):
                super().setup()
                with outer.lock:
                    outer.accepted += 1
                    outer.open += 1

            def finish(self):
                super().finish()
                with outer.lock:
                    outer.open -= 1

            def do_GET(self):
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        super().__init__(H)


def test_a_burst_over_keepalive_reuses_connections_then_the_surplus_closes(tmp_path):
    """Eight clients at once in front of `keepalive: 2`: the connections over
    the count stay pooled for a moment, so the next rounds reuse them instead
    of reconnecting (closing them at once reconnected six of eight requests a
    round); once idle, all but two are closed."""
    up = CountingUpstream(0.1)
    port, admin = free_port(), free_port()
    cfg = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
log: {{ access: off }}
upstreams:
  u: {{ servers: ["127.0.0.1:{up.port}"], keepalive: 2 }}
routes:
  - path: /
    upstream: u
"""
    gw = Gateway(str(tmp_path), cfg, port, admin)
    socks = []
    try:
        socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(8)]
        statuses = []
        # a round: the eight requests written back to back, then the eight
        # answers read; the next round follows the last answer at once (one
        # thread: no thread start-up between rounds for a loaded machine to
        # stretch past the surplus connections' moment)
        for _ in range(5):
            for s in socks:
                s.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
            for s in socks:
                r, rest = read_response(s)
                assert rest == b""
                statuses.append(r.status)
        assert statuses == [200] * 40
        assert up.accepted <= 10, f"{up.accepted} upstream connections for 5 rounds of 8"
        wait_for(lambda: up.open <= 2, what=f"the idle upstream connections to come down to 2 (keepalive)")
        assert up.open == 2, f"{up.open} idle upstream connections kept, keepalive is 2"
    finally:
        for s in socks:
            s.close()
        assert gw.stop() == 0
        up.close()


def dates(resp):
    return [v for k, v in resp.headers if k.lower() == "date"]


def test_every_response_carries_one_date(gateway):
    """RFC 9110 6.6.1: an origin with a clock sends Date; the gateway is the
    origin of its errors and of the admin answers."""
    import email.utils
    for port, path in ((gateway.port, "/no/such/route"), (gateway.port, "/v1/hello"),
                       (gateway.port, "/dead/x"), (gateway.admin_port, "/health"),
                       (gateway.admin_port, "/nope")):
        before = int(time.time())
        r = request(port, "GET", path)
        after = time.time()
        d = dates(r)
        assert len(d) == 1, (path, r.headers)
        assert d[0].endswith(" GMT") and len(d[0]) == 29, d[0]
        when = email.utils.parsedate_to_datetime(d[0]).timestamp()
        assert before <= when <= after, (path, d[0])  # the gateway's now, to the second


def test_a_date_the_upstream_left_out_is_added_and_one_it_sent_is_kept(tmp_path):
    import email.utils

    def raw_answer(h):  # written by hand: BaseHTTPRequestHandler would add a Date
        date = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" if h.path == "/v1/dated" else b""
        h.wfile.write(b"HTTP/1.1 200 OK\r\n" + date + b"Content-Length: 2\r\n\r\nok")

    up = python_upstream(raw_answer)
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), base_config(port, admin, up.port), port, admin)
    try:
        r = request(port, "GET", "/v1/dated")
        assert r.status == 200 and r.body == b"ok"
        assert dates(r) == ["Sun, 06 Nov 1994 08:49:37 GMT"]
        before = int(time.time())
        r = request(port, "GET", "/v1/undated")
        after = time.time()
        assert r.status == 200 and r.body == b"ok"
        assert len(dates(r)) == 1
        assert before <= email.utils.parsedate_to_datetime(dates(r)[0]).timestamp() <= after
    finally:
        assert gw.stop() == 0
        up.close()


def test_absolute_form_goes_upstream_as_origin_form_with_its_authority_as_host(tmp_path):
    """RFC 9112 3.2.2 / RFC 9110 7.2: the target's authority is the host."""

    def echo(h):
        body = json.dumps({"line": h.requestline, "host": h.headers.get_all("Host")}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    up = python_upstream(echo)
    port, admin = free_port(), free_port()
    root = "  - path: /\n    match: exact\n    upstream: demo\n"
    gw = Gateway(str(tmp_path), base_config(port, admin, up.port, extra_routes=root), port, admin)
    try:
        for raw, line, host in (
                (b"GET http://Test.Local/v1/hello?x=1 HTTP/1.1\r\nHost: test.local\r\n\r\n",
                 "GET /v1/hello?x=1 HTTP/1.1", "Test.Local"),
                (b"GET http://abs.example:8080/v1/a HTTP/1.0\r\n\r\n", "GET /v1/a HTTP/1.1", "abs.example:8080"),
                (b"GET https://abs.example?q=1 HTTP/1.1\r\nHost: abs.example\r\n\r\n",
                 "GET /?q=1 HTTP/1.1", "abs.example"),
                (b"GET http://abs.example HTTP/1.1\r\nHost: abs.example\r\n\r\n", "GET / HTTP/1.1", "abs.example")):
            r = request(port, raw=raw)
            assert r.status == 200, (raw, r.body)
            assert r.json() == {"line": line, "host": [host]}, raw
    finally:
        assert gw.stop() == 0
        up.close()


def interim_answer(h):
    """100 Continue, then 103 Early Hints carrying a Link, a Server and a
    field its Connection header names, then 200."""
    h.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    h.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
                  b"Server: secret/1.0\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n")
    h.send_response(200)
    h.send_header("Content-Length", "2")
    h.end_headers()
    h.wfile.write(b"ok")


def test_interim_responses_are_forwarded_without_hop_by_hop_fields(tmp_path):
    """RFC 9110 15.2: a 103 from the upstream reaches an HTTP/1.1 client
    before the final response, without the fields its Connection header
    names and without Server; the upstream's 100 is not forwarded (the
    gateway answers Expect itself), and an HTTP/1.0 client gets no 1xx."""
    up = python_upstream(interim_answer)
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), base_config(port, admin, up.port), port, admin)
    try:
        data = read_all(port, b"GET /v1/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        heads = data.split(b"\r\n\r\n")
        assert heads[0].startswith(b"HTTP/1.1 103 Early Hints\r\n"), data
        interim = heads[0].decode().split("\r\n")[1:]
        assert "Link: </style.css>; rel=preload" in interim
        names = {h.split(":")[0].lower() for h in interim}
        assert not names & {"x-hop", "connection", "server"}, interim
        assert heads[1].startswith(b"HTTP/1.1 200 OK\r\n"), data
        assert heads[2] == b"ok"
        assert b" 100 " not in data
        old = read_all(port, b"GET /v1/x HTTP/1.0\r\nHost: a\r\n\r\n")
        assert old.startswith(b"HTTP/1.1 200 OK\r\n"), old
        assert old.endswith(b"\r\n\r\nok")
    finally:
        up.close()
        assert gw.stop() == 0


def test_at_most_eight_interim_responses_are_forwarded_per_request(tmp_path):
    """An upstream sending 1xx without end cannot keep the gateway writing:
    the first 8 are forwarded, the rest dropped, the final response still
    arrives."""
    def flood(h):
        for i in range(20):
            h.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </%d.css>; rel=preload\r\n\r\n" % i)
        h.send_response(200)
        h.send_header("Content-Length", "2")
        h.end_headers()
        h.wfile.write(b"ok")

    up = python_upstream(flood)
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), base_config(port, admin, up.port), port, admin)
    try:
        data = read_all(port, b"GET /v1/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert data.count(b"HTTP/1.1 103 ") == 8, data
        assert b"</7.css>" in data and b"</8.css>" not in data
        assert data.endswith(b"\r\n\r\nok") and data.count(b"HTTP/1.1 200 OK\r\n") == 1
    finally:
        up.close()
        assert gw.stop() == 0


def test_demo_upstream_early_hints_reach_the_client_on_a_kept_connection(gateway):
    """The README's /v1/early-hints: the 103 and then the 200 on one
    keep-alive connection, and the next request on it is answered too."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(b"GET /v1/early-hints HTTP/1.1\r\nHost: a\r\n\r\n")
        first, rest = read_response(s)
        assert first.status == 103
        assert first.header("Link") == "</style.css>; rel=preload; as=style"
        data = rest
        while b'{"message":"hinted"}' not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data
        s.sendall(b"GET /v1/hello HTTP/1.1\r\nHost: a\r\n\r\n")
        again, _ = read_response(s)
        assert again.status == 200


INVALID_UPSTREAM_ANSWERS = {
    "garbage": b"HTTP/1.1 OK\r\n\r\n",
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    "cl-abc": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nok",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok",
    "nul": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "status-2000": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "http2": b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "huge-head": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\nContent-Length: 2\r\n\r\nok",
    "space-name": b"HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 2\r\n\r\nok",
}


def raw_upstream_gateway(tmp_path, raw_answer):
    """A gateway in front of a python upstream whose GET handler raw_answer(h)
    writes bytes by hand; max_fails is high so the server is never marked down."""

    def answer_and_close(h):
        raw_answer(h)
        h.wfile.flush()
        h.close_connection = True

    up = python_upstream(answer_and_close)
    port, admin = free_port(), free_port()
    cfg = base_config(port, admin, up.port, demo_options=", max_fails: 1000")
    return Gateway(str(tmp_path), cfg, port, admin), up, port


def test_invalid_upstream_responses_are_502_in_the_dialect(tmp_path):
    answers = dict(INVALID_UPSTREAM_ANSWERS, ok=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    gw, up, port = raw_upstream_gateway(tmp_path, lambda h: h.wfile.write(answers[h.path.rsplit("/", 1)[1]]))
    try:
        for name in INVALID_UPSTREAM_ANSWERS:
            r = request(port, "GET", "/v1/" + name)
            body = assert_gateway_error(r, 502, "bad_gateway")
            assert body["upstream_service"] == "demo", name
            assert body["detail"] == "The upstream service sent an invalid response.", (name, body)
        r = request(port, "GET", "/v1/ok")  # the gateway is unharmed
        assert r.status == 200 and r.body == b"ok"
    finally:
        assert gw.stop() == 0
        up.close()


def test_a_bad_chunk_is_502_before_the_head_went_out_and_cuts_the_response_after(tmp_path):
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"
    bad = b"zz\r\nxx\r\n0\r\n\r\n"
    client_has_head = threading.Event()

    def raw_answer(h):
        h.wfile.write(head if h.path == "/v1/late" else head + bad)
        if h.path == "/v1/late":  # the bad chunk only once the client has the head and first chunk
            h.wfile.flush()
            client_has_head.wait(60)
            h.wfile.write(bad)

    gw, up, port = raw_upstream_gateway(tmp_path, raw_answer)
    try:
        r = request(port, "GET", "/v1/early")
        body = assert_gateway_error(r, 502, "bad_gateway")
        assert body["detail"] == "The upstream service sent an invalid response."
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /v1/late HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"\r\n\r\n2\r\nok\r\n"):
                chunk = s.recv(65536)
                assert chunk, data
                data += chunk
            client_has_head.set()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        got_head, got_body = data.split(b"\r\n\r\n", 1)
        assert got_head.startswith(b"HTTP/1.1 200")
        assert got_body == b"2\r\nok\r\n", "cut after the last good chunk, no last chunk"
    finally:
        assert gw.stop() == 0
        up.close()


def test_gateway_details_in_the_seeds_words(tmp_path, upstream_port):
    """Issue 27 item 9: a maintenance answer with flat-snake's
    maintenance_window and typed's status_page (configured), retry_suggested
    on a 504 (typed), and a 429 whose message says when to retry, as the
    jsonapi seed's "Rate limit exceeded. Try again in 15 seconds." does."""
    import re
    port, admin = free_port(), free_port()
    routes = """  - path: /v1/down
    upstream: demo
    maintenance: { from: "2030-01-01T04:00:00Z", until: "2030-01-01T06:00:00Z", retry_after: 300,
                   status_page: "https://status.example.com" }
  - { path: /v1/once, upstream: demo, rate_limit: { limit: 1, window: 1m, by: ip } }
"""
    gw = Gateway(str(tmp_path), base_config(port, admin, upstream_port, dialect="flat-snake", extra_routes=routes),
                 port, admin)
    try:
        body = request(port, "GET", "/v1/down").json()
        assert body["error"] == "service_unavailable" and body["retry_after"] == 300
        assert body["details"]["maintenance_window"] == "2030-01-01T04:00:00Z - 2030-01-01T06:00:00Z"
        assert body["details"]["status_page"] == "https://status.example.com"
        assert body["details"]["maintenance_end"] == "2030-01-01T06:00:00Z"
        body = request(port, "GET", "/slow/x?ms=10000", timeout=30).json()
        assert body["error"] == "gateway_timeout" and body["details"]["retry_suggested"] is True
        assert body["details"]["timeout_duration"] == "1s"
        assert request(port, "GET", "/v1/once").status == 200
        r = request(port, "GET", "/v1/once")
        assert r.status == 429
        m = re.fullmatch(r"Rate limit exceeded\. Try again in (\d+) seconds?\.", r.json()["message"])
        assert m and m.group(1) == r.header("Retry-After"), r.json()["message"]
    finally:
        assert gw.stop() == 0


def test_problem_type_points_at_the_published_pages_anchor(tmp_path, upstream_port):
    """Issue 27 item 12: errors.docs_url naming one page (no {code}) makes
    each problem `type` that page's anchor for the code, as `errgate docs
    --format html` writes them (id = the canonical code)."""
    port, admin = free_port(), free_port()
    cfg = base_config(port, admin, upstream_port).replace(
        "errors: { dialect: problem, negotiate: true }",
        "errors: { dialect: problem, negotiate: true, docs_url: \"https://api.example.com/errors\" }")
    gw = Gateway(str(tmp_path), cfg, port, admin)
    try:
        assert request(port, "GET", "/nowhere").json()["type"] == "https://api.example.com/errors#not_found"
        body = request(port, "GET", "/v1/maintenance").json()
        assert body["type"] == "https://api.example.com/errors#service_unavailable"
    finally:
        assert gw.stop() == 0
