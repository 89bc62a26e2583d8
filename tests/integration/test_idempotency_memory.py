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


class FramingUpstream(ThreadedUpstream):
    """/chunked: a chunked body in three chunks with an end-to-end field;
    /close: a body without a length, ended by closing; /hop: a field that
    Connection names. Every body is unique (a count and a nonce)."""

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
                body = json.dumps({"n": k, "nonce": os.urandom(8).hex(), "pad": "y" * 300}).encode()
                w = self.wfile
                if "/chunked" in self.path:
                    parts = [body[:7], body[7:100], body[100:]]
                    w.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Custom:  kept \r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n")
                    for p in parts:
                        w.write(b"%x\r\n%s\r\n" % (len(p), p))
                    w.write(b"0\r\n\r\n")
                elif "/close" in self.path:
                    self.close_connection = True
                    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + body)
                else:
                    w.write(b"HTTP/1.1 202 Accepted\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n"
                            b"X-End: 1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                w.flush()

        super().__init__(H)


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
