"""Idempotency-Key on the memory store (test_idempotency.py runs SQLite by
default): the store names entries by the scope's bytes and compares them
whole (docs/idempotency.md), so the replay, mismatch, per-caller and
expiry tests run again on it. And the captured head is split rather than
parsed again: replays of a chunked response, of one framed by the close,
and of one whose Connection named a hop-by-hop field keep the status, the
body byte for byte and the end-to-end fields, and nothing of the hop."""
import json
import os
import threading

import pytest

from conftest import QuietHandler, ThreadedUpstream, request
from test_idempotency import (  # noqa: F401 (the tests are collected again here, on the memory store)
    post, retried, start, up, test_a_5xx_releases_the_key_and_a_4xx_is_kept,
    test_a_replay_keeps_the_connection_for_the_next_request, test_a_retry_gets_the_first_response_without_the_upstream,
    test_a_stored_response_expires, test_missing_and_malformed_keys_are_400,
    test_one_callers_key_is_not_replayed_to_another, test_the_key_with_another_request_is_422,
    test_twenty_concurrent_duplicates_reach_the_upstream_once)


@pytest.fixture
def gw(tmp_path, up):
    g = start(str(tmp_path), up, store="memory")
    yield g
    assert g.stop() == 0, g.log_text()[-3000:]


class CountingUpstream(ThreadedUpstream):
    """Reads each POST's body, counts it (self.n: how many reached the
    upstream) and lets answer(handler, n) write the response."""

    def __init__(self):
        outer = self
        self.n, self.lock = 0, threading.Lock()

        class H(QuietHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                with outer.lock:
                    outer.n += 1
                    k = outer.n
                outer.answer(self, k)
                self.wfile.flush()

        super().__init__(H)


class FramingUpstream(CountingUpstream):
    """/chunked: a chunked body in three chunks with an end-to-end field;
    /close: a body without a length, ended by closing; /hop: a field that
    Connection names. Every body is unique (a count and a nonce)."""

    def answer(self, h, k):
        body = json.dumps({"n": k, "nonce": os.urandom(8).hex(), "pad": "y" * 300}).encode()
        w = h.wfile
        if "/chunked" in h.path:
            parts = [body[:7], body[7:100], body[100:]]
            w.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Custom:  kept \r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
            for p in parts:
                w.write(b"%x\r\n%s\r\n" % (len(p), p))
            w.write(b"0\r\n\r\n")
        elif "/close" in h.path:
            h.close_connection = True
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + body)
        else:
            w.write(b"HTTP/1.1 202 Accepted\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n"
                    b"X-End: 1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.fixture
def fup():
    u = FramingUpstream()
    yield u
    u.close()


@pytest.fixture
def fgw(tmp_path, fup):
    g = start(str(tmp_path), fup, store="memory")
    yield g
    assert g.stop() == 0, g.log_text()[-3000:]


@pytest.mark.parametrize("path,status", [("/idem/chunked", 201), ("/idem/close", 200), ("/idem/hop", 202)])
def test_replays_of_every_framing_are_byte_equal(fgw, fup, path, status):
    a = post(fgw, path, "f-" + path)
    assert a.status == status and a.header("Idempotent-Replayed") is None, a.body
    b = retried(fgw, path, "f-" + path)
    assert b.status == status and b.header("Idempotent-Replayed") == "true"
    assert b.body == a.body and json.loads(b.body)["n"] == json.loads(a.body)["n"]
    assert b.header("Content-Length") == str(len(a.body)) and b.header("Transfer-Encoding") is None
    assert b.header("Content-Type") == a.header("Content-Type")
    if path == "/idem/chunked":
        assert b.header("X-Custom") == "kept"
    if path == "/idem/hop":
        assert a.header("X-Hop") is None and b.header("X-Hop") is None and b.header("X-End") == "1"
    assert fup.n == 1


# Per-response fields the record leaves out, in other cases than the
# stage's literals, and end-to-end fields of the same lengths that differ
# from one of them only in the first or the last byte: the split compares
# names eight bytes at a time, so a comparison of only some of the words
# would keep the first kind or drop the second.
DROPPED = [("RATELIMIT-Policy", "q=1"), ("x-RateLimit-Remaining", "5"), ("rateLIMIT", "r=1")]
DECOYS = [("Ratelimit-Policx", "a"), ("Xatelimit-Policy", "b"), ("Content-Lengtx", "c"),
          ("Xontent-Length", "d"), ("Transfer-Encodinx", "e"), ("Xransfer-Encoding", "f"),
          ("Connectiox", "g"), ("Keep-Alivx", "h"), ("Ratelimix", "i"), ("Dats", "j"), ("Tx", "k"),
          ("Proxz-Thing", "l"), ("X-Ratelimit", "m")]


class FieldsUpstream(CountingUpstream):
    def answer(self, h, k):
        body = json.dumps({"n": k, "nonce": os.urandom(8).hex()}).encode()
        head = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        for name, v in DROPPED + DECOYS:
            head += b"%s: %s\r\n" % (name.encode(), v.encode())
        h.wfile.write(head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def test_the_replay_keeps_end_to_end_fields_named_like_per_response_ones(tmp_path):
    u = FieldsUpstream()
    g = start(str(tmp_path), u, store="memory")
    try:
        a = post(g, "/idem/fields", "fields-1")
        assert a.status == 201 and a.header("Idempotent-Replayed") is None, a.body
        b = retried(g, "/idem/fields", "fields-1")
        assert b.status == 201 and b.header("Idempotent-Replayed") == "true" and b.body == a.body
        for k, v in DECOYS:
            assert a.header(k) == v, (k, a.headers)
            assert b.header(k) == v, (k, b.headers)
        for k, _ in DROPPED:
            assert b.header(k) is None, (k, b.headers)
        assert u.n == 1
    finally:
        assert g.stop() == 0, g.log_text()[-3000:]
        u.close()


# A forwarded response's record is written from the head's fields as the
# transport relays them (the captured head is not split again): the replay
# has every end-to-end field in order, up to the 128 an upstream response
# may have, and the lines the gateway added to the first response that are
# not per response (CORS here) as they were.
MANY = [("X-F-%03d" % i, "v%d" % i) for i in range(126)]


class ManyFieldsUpstream(CountingUpstream):
    def answer(self, h, k):
        body = json.dumps({"n": k, "nonce": os.urandom(8).hex()}).encode()
        fields = MANY if "/many" in h.path else MANY[:3]
        head = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        for name, v in fields:
            head += b"%s: %s\r\n" % (name.encode(), v.encode())
        h.wfile.write(head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.mark.parametrize("path,n", [("/idem/few", 3), ("/idem/many", 126)])
def test_the_replay_keeps_the_fields_in_order_and_the_cors_lines(tmp_path, path, n):
    from test_idempotency import ADMIN, config
    from conftest import Gateway, free_port
    u = ManyFieldsUpstream()
    tmp = str(tmp_path)
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN)
    port, admin = free_port(), free_port()
    text = config(tmp, port, admin, u.port, store="memory")
    text += 'limits: { max_headers: 300 }\ncors: { origins: ["https://app.example.com"] }\n'
    g = Gateway(tmp, text, port, admin)
    origin = {"Origin": "https://app.example.com"}
    try:
        a = post(g, path, "many-" + path, headers=origin)
        assert a.status == 201 and a.header("Idempotent-Replayed") is None, a.body
        b = retried(g, path, "many-" + path, headers=origin)
        assert b.status == 201 and b.header("Idempotent-Replayed") == "true" and b.body == a.body
        got = [(k, v) for k, v in b.headers if k.startswith("X-F-")]
        assert got == MANY[:n], b.headers
        assert a.header("Access-Control-Allow-Origin") == "https://app.example.com", a.headers
        cors = [(k, v) for k, v in a.headers if k.lower().startswith("access-control-")]
        assert cors and [(k, v) for k, v in b.headers if k.lower().startswith("access-control-")] == cors
        assert b.header("Content-Type") == "application/json"
        assert u.n == 1
    finally:
        assert g.stop() == 0, g.log_text()[-3000:]
        u.close()
