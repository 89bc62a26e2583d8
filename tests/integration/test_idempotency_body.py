"""Idempotency-Key with large and chunked bodies: the stage reads the whole
body before the upstream is contacted (eg_req_read_body), up to the route's
max_body (1 MiB by default, more when configured); a body that does not fit
the connection's buffer moves to a per-request buffer and is forwarded from
there. The upstream records what it received (length and SHA-256 of the
data, whatever the framing), so every test checks it saw exactly the bytes
sent."""
import hashlib
import os
import socket

import pytest

from conftest import Gateway, QuietHandler, ThreadedUpstream, free_port, read_error, read_response, request

MiB = 1024 * 1024


class BodyUpstream(ThreadedUpstream):
    """Reads a Content-Length or chunked body, records (framing, length,
    sha256) per request, and answers 201 with them and a nonce."""

    def __init__(self):
        outer = self
        self.seen, self.arrived = [], []

        class H(QuietHandler):
            def body(self):
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b""):
                                pass  # trailers
                            return "chunked", out
                        out += self.rfile.read(size)
                        assert self.rfile.read(2) == b"\r\n"
                n = int(self.headers.get("Content-Length") or 0)
                return "length", self.rfile.read(n) if n else b""

            def handle_one(self):
                outer.arrived.append(self.path)  # the head is here; the body may not be
                framing, data = self.body()
                digest = hashlib.sha256(data).hexdigest()
                outer.seen.append((self.path, framing, len(data), digest))
                out = f'{{"len":{len(data)},"sha256":"{digest}","nonce":"{os.urandom(8).hex()}"}}'.encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = handle_one

        super().__init__(H)

    def hits(self, path):
        return [s for s in self.seen if s[0] == path]


@pytest.fixture
def up():
    u = BodyUpstream()
    yield u
    u.close()


@pytest.fixture
def gw(tmp_path, up):
    port, admin = free_port(), free_port()
    text = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
errors: {{ dialect: flat-snake, negotiate: false }}
log: {{ access: stderr }}
store: {{ backend: memory }}
limits: {{ body_timeout: 2s }}
upstreams:
  up: {{ servers: ["127.0.0.1:{up.port}"], timeout: 10s }}
routes:
  - {{ path: /big/, upstream: up, idempotency: {{ max_body: 3MiB }} }}
  - {{ path: /default/, upstream: up, idempotency: {{ }} }}
  - {{ path: /small/, upstream: up, idempotency: {{ max_body: 100KiB }} }}
"""
    g = Gateway(str(tmp_path), text, port, admin)
    yield g
    assert g.stop() == 0, g.log_text()[-3000:]


def data(n, seed):
    """n bytes that differ from one seed to another (and are not all alike)."""
    block = hashlib.sha256(seed.encode()).digest() * 64  # 2 KiB
    return (block * (n // len(block) + 1))[:n]


def head(path, key, extra=""):
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nIdempotency-Key: {key}\r\n{extra}").encode()


def with_length(path, key, body, extra=""):
    return head(path, key, f"{extra}Content-Length: {len(body)}\r\n\r\n") + body


def chunked(path, key, body, size, extra=""):
    """body in chunks of `size` bytes, each with an extension, then a trailer."""
    out = [head(path, key, f"{extra}Transfer-Encoding: chunked\r\n\r\n")]
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out.append(f"{len(part):x};n={i}\r\n".encode() + part + b"\r\n")
    out.append(b"0\r\nX-Trailer: t\r\n\r\n")
    return b"".join(out)


def exchange(port, raw, n=1):
    """Sends raw on one connection and reads n responses."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(raw)
        out, rest = [], b""
        for _ in range(n):
            s2 = _Prefixed(s, rest)
            r, rest = read_response(s2)
            out.append(r)
        return out


class _Prefixed:
    """A socket whose first reads return bytes already read past a response."""

    def __init__(self, sock, pending):
        self.sock, self.pending = sock, pending

    def recv(self, n):
        if self.pending:
            out, self.pending = self.pending, b""
            return out
        return self.sock.recv(n)


def expect(resp, body):
    j = resp.json()
    assert resp.status == 201, resp.body[:300]
    assert j["len"] == len(body) and j["sha256"] == hashlib.sha256(body).hexdigest()


def test_a_1mib_post_reaches_the_upstream_whole_and_replays_byte_equal(gw, up):
    body = data(MiB, "one")
    (a,) = exchange(gw.port, with_length("/big/charges", "big-1", body))
    expect(a, body)
    assert up.hits("/big/charges") == [("/big/charges", "length", MiB, hashlib.sha256(body).hexdigest())]
    (b,) = exchange(gw.port, with_length("/big/charges", "big-1", body))
    assert b.status == 201 and b.body == a.body and b.header("Idempotent-Replayed") == "true"
    assert len(up.hits("/big/charges")) == 1
    # the default max_body is 1 MiB: exactly that much is taken, one byte more is 413
    (c,) = exchange(gw.port, with_length("/default/x", "d-1", body))
    expect(c, body)
    (d,) = exchange(gw.port, with_length("/default/x", "d-2", body + b"!"))
    assert d.status == 413 and read_error(d.body, "flat-snake")["code"] == "payload_too_large"
    assert len(up.hits("/default/x")) == 1


def test_over_max_body_is_413_in_the_dialect_and_the_upstream_never_sees_it(gw, up):
    body = data(200 * 1024, "over")
    for raw in (with_length("/small/x", "o-1", body), chunked("/small/x", "o-2", body, 16384)):
        (r,) = exchange(gw.port, raw)
        e = read_error(r.body, "flat-snake")
        assert r.status == 413 and e["code"] == "payload_too_large", r.body
        assert r.header("X-Error-Code") == "payload_too_large"
        assert "102400" in r.body.decode()  # max_body, in the details
        assert (r.header("Connection") or "").lower() == "close"  # the rest of the body is unread
    assert up.hits("/small/x") == []


def test_a_chunked_200kb_body_is_decoded_for_the_fingerprint_and_forwarded(gw, up):
    body = data(200 * 1024, "chunked")
    (a,) = exchange(gw.port, chunked("/big/c", "ch-1", body, 4096))
    expect(a, body)
    assert up.hits("/big/c") == [("/big/c", "chunked", len(body), hashlib.sha256(body).hexdigest())]
    # the same data in other chunks is the same request: the replay
    (b,) = exchange(gw.port, chunked("/big/c", "ch-1", body, 65536 + 7))
    assert b.status == 201 and b.body == a.body and b.header("Idempotent-Replayed") == "true"
    # and with Content-Length too (the fingerprint hashes the data, not the framing)
    (c,) = exchange(gw.port, with_length("/big/c", "ch-1", body))
    assert c.header("Idempotent-Replayed") == "true" and c.body == a.body
    # other data with the key: 422
    (d,) = exchange(gw.port, chunked("/big/c", "ch-1", data(200 * 1024, "other"), 4096))
    assert d.status == 422 and read_error(d.body, "flat-snake")["code"] == "idempotency_key_mismatch"
    assert len(up.hits("/big/c")) == 1


def test_a_small_chunked_body_and_an_empty_one(gw, up):
    body = b'{"amount": 1}'
    (a,) = exchange(gw.port, chunked("/big/s", "sm-1", body, 5))
    expect(a, body)
    (b,) = exchange(gw.port, chunked("/big/e", "em-1", b"", 5))
    expect(b, b"")
    assert [s[1:3] for s in up.seen] == [("chunked", len(body)), ("chunked", 0)]


def test_a_slow_client_sends_1mib_in_pieces(gw, up):
    """The head with Expect: 100-continue, then, once the gateway asks for
    the body, 1 MiB in 64 pieces sent one by one: the stage runs again as
    each arrives, the body moves out of the connection's buffer, and the
    upstream gets it whole only after the last piece."""
    body = data(MiB, "slow")
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(head("/big/slow", "slow-1", f"Expect: 100-continue\r\nContent-Length: {MiB}\r\n\r\n"))
        cont, rest = read_response(s)
        assert cont.status == 100 and rest == b""
        piece = MiB // 64
        for i in range(0, MiB, piece):
            assert up.arrived == []  # nothing is forwarded before the body is whole
            s.sendall(body[i:i + piece])
        r, _ = read_response(s)
    expect(r, body)
    assert len(up.hits("/big/slow")) == 1


def test_the_connection_stays_usable_after_a_large_body_answered_by_the_stage(gw, up):
    """A 1 MiB body refused (422) or replayed without the upstream was read
    whole: the connection carries the next, pipelined requests."""
    one, two = data(MiB, "ka-1"), data(MiB, "ka-2")
    (first,) = exchange(gw.port, with_length("/big/ka", "ka", one))
    expect(first, one)
    raw = (with_length("/big/ka", "ka", two)          # the key with another body: 422
           + with_length("/big/ka", "ka", one)        # the same request: replay
           + chunked("/big/ka", "ka", two, 100000)    # chunked, another body: 422
           + b"GET /big/after HTTP/1.1\r\nHost: t\r\n\r\n")
    refused, replay, refused2, after = exchange(gw.port, raw, 4)
    for r in (refused, refused2):
        assert r.status == 422 and read_error(r.body, "flat-snake")["code"] == "idempotency_key_mismatch"
        assert (r.header("Connection") or "").lower() != "close", r.headers
    assert replay.status == 201 and replay.body == first.body and replay.header("Idempotent-Replayed") == "true"
    assert after.status == 201 and up.hits("/big/after") == [("/big/after", "length", 0, hashlib.sha256(b"").hexdigest())]
    assert len(up.hits("/big/ka")) == 1


def test_a_large_body_then_a_pipelined_request_both_reach_the_upstream(gw, up):
    body = data(300 * 1024 + 3, "pipe")
    raw = with_length("/big/p", "p-1", body) + with_length("/big/p2", "p-2", b"tail") + chunked(
        "/big/p3", "p-3", body, 30000)
    a, b, c = exchange(gw.port, raw, 3)
    expect(a, body)
    expect(b, b"tail")
    expect(c, body)
    assert [s[0] for s in up.seen] == ["/big/p", "/big/p2", "/big/p3"]


def test_a_request_without_a_key_streams_as_before(gw, up):
    body = data(2 * MiB, "nokey")
    r = request(gw.port, "POST", "/big/nokey", body=body, timeout=20)
    expect(r, body)


def test_a_client_that_stops_inside_the_body_gets_408(gw, up):
    """The stage waits for the body; the body timeout answers it as it
    answers a streamed body (it used to close without a word)."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        s.sendall(head("/big/stalled", "st-1", "Content-Length: 200000\r\n\r\n") + b"x" * 1000)
        r, _ = read_response(s)
    assert r.status == 408 and read_error(r.body, "flat-snake")["code"] == "request_timeout", r.body
    assert up.arrived == []
