"""errgate call against a scripted server: retries, waits, keys, budget,
deadline, every dialect read into one canonical error, and the idempotency
answers (409 in use, 422 mismatch, Idempotent-Replayed) as the gateway's
idempotency stage gives them."""
import re
import subprocess
import time
import email.utils

import pytest

from conftest import BIN, QuietHandler, ThreadedUpstream, dead_port


class Script:
    """A server answering each path from a list of (status, headers, body), in order;
    the last entry repeats. It records what each request carried, and every
    Idempotency-Key line of it (a dict of the headers would hide a second one)."""

    def __init__(self):
        self.scripts, self.seen, self.keys = {}, [], []
        outer = self

        class H(QuietHandler):
            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.seen.append((self.command, self.path, dict(self.headers), body))
                outer.keys.append(self.headers.get_all("Idempotency-Key") or [])
                seq = outer.scripts.get(self.path, [(404, {}, b"{}")])
                status, headers, out = seq.pop(0) if len(seq) > 1 else seq[0]
                if callable(headers):
                    headers = headers()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_one

        self.upstream = ThreadedUpstream(H)  # the kernel picks the port as it binds: no race
        self.port = self.upstream.port
        self.httpd = self.upstream.httpd

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def srv():
    s = Script()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def call(*args, timeout=60):
    t0 = time.monotonic()
    p = subprocess.run([BIN, "call", *args], capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(), time.monotonic() - t0


OK = (200, {"Content-Type": "application/json"}, b'{"ok":true}')
UNAVAILABLE = (503, {"Content-Type": "application/json", "X-Request-ID": "req_up_1"},
               b'{"error":"service_unavailable","message":"down","status_code":503}')


def test_503_then_200_is_retried(srv):
    srv.scripts["/a"] = [UNAVAILABLE, OK]
    code, out, err, _ = call("--base-delay", "10ms", srv.url("/a"))
    assert code == 0 and out == b'{"ok":true}\n'
    assert "attempt 1: 503 service_unavailable request_id=req_up_1: retry in" in err
    assert len(srv.seen) == 2


def test_429_retry_after_is_waited_for(srv):
    srv.scripts["/b"] = [(429, {"Retry-After": "1"}, b'{"error":{"code":"RATE_LIMIT_EXCEEDED","message":"slow down","type":"rate_limit_error"}}'), OK]
    code, out, err, elapsed = call(srv.url("/b"))
    assert code == 0 and elapsed >= 1.0
    assert "retry in 1000 ms (Retry-After)" in err


def test_http_date_retry_after(srv):
    srv.scripts["/c"] = [(503, lambda: {"Retry-After": email.utils.formatdate(time.time() + 2, usegmt=True)}, b""), OK]
    code, out, err, elapsed = call(srv.url("/c"))
    assert code == 0 and elapsed >= 0.9
    assert "(Retry-After)" in err


def test_body_output_ends_with_one_newline(srv):
    """The body on stdout ends with a newline, added only when missing (issue 27)."""
    srv.scripts["/nl1"] = [(200, {"Content-Type": "application/json"}, b'{"a":1}')]
    srv.scripts["/nl2"] = [(200, {"Content-Type": "text/plain"}, b"line one\nline two\n")]
    srv.scripts["/nl3"] = [(204, {}, b"")]
    srv.scripts["/nl4"] = [(404, {"Content-Type": "application/json"}, b'{"error":"not_found","message":"gone"}')]
    assert call(srv.url("/nl1"))[:2] == (0, b'{"a":1}\n')
    assert call(srv.url("/nl2"))[:2] == (0, b"line one\nline two\n")
    assert call(srv.url("/nl3"))[:2] == (0, b"")
    assert call(srv.url("/nl4"))[:2] == (4, b'{"error":"not_found","message":"gone"}\n')


@pytest.mark.parametrize("body", [
    b'{"error":{"type":"quota_error","message":"No credits remaining. Please purchase additional credits","code":"CREDITS_DEPLETED","details":{"remaining_credits":0}}}',
    b'{"error":"credits_depleted","message":"No credits remaining","status_code":429}',
    b'{"error":{"type":"quota_error","message":"API quota exceeded for your subscription plan","code":"QUOTA_EXCEEDED"}}',
])
def test_429_that_waiting_does_not_cure_is_not_retried(srv, body):
    """A 429 for used-up credits or quota without Retry-After is final (issue 27)."""
    srv.scripts["/cd"] = [(429, {"Content-Type": "application/json"}, body), OK]
    code, out, err, _ = call("--base-delay", "1ms", srv.url("/cd"))
    assert code == 4 and len(srv.seen) == 1
    assert "stop (waiting will not help: the quota or the credits are used up)" in err


def test_400_is_never_retried(srv):
    srv.scripts["/d"] = [(400, {}, b'{"errors":[{"status":"400","code":"bad_request","title":"Bad Request","detail":"Invalid JSON body"}]}')]
    code, out, err, _ = call(srv.url("/d"))
    assert code == 4 and len(srv.seen) == 1
    assert "errgate: 400 bad_request: Invalid JSON body" in err


def test_post_keeps_its_idempotency_key(srv):
    srv.scripts["/e"] = [UNAVAILABLE, UNAVAILABLE, OK]
    code, out, err, _ = call("--base-delay", "5ms", "--json", '{"a":1}', srv.url("/e"))
    assert code == 0 and len(srv.seen) == 3
    keys = {s[2]["Idempotency-Key"] for s in srv.seen}
    assert len(keys) == 1
    assert re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", keys.pop())
    assert all(s[0] == "POST" and s[3] == b'{"a":1}' for s in srv.seen)


def test_deadline_cuts_retries_short(srv):
    # attempt 1, a 2 s wait, attempt 2; the next 2 s wait would end past the
    # 3 s deadline: stopped there (each attempt has 1 s of slack either way)
    srv.scripts["/f"] = [(503, {"Retry-After": "2"}, b"")]
    code, out, err, elapsed = call("--max-attempts", "10", "--deadline", "3000ms", srv.url("/f"))
    assert code == 7 and "deadline reached" in err
    assert len(srv.seen) == 2
    assert elapsed >= 2.0


def test_retry_budget_runs_dry(srv):
    srv.scripts["/g"] = [UNAVAILABLE]
    code, out, err, _ = call("--max-attempts", "50", "--base-delay", "1ms", "--retry-budget", "12", srv.url("/g"))
    assert code == 7 and "retry budget exhausted" in err
    assert len(srv.seen) == 3  # two retries of 5 tokens each, the third needs 5 of 2


def test_network_failure(srv):
    code, out, err, _ = call("--base-delay", "1ms", f"http://127.0.0.1:{dead_port()}/x")
    assert code == 6
    assert err.count("attempt ") == 3


@pytest.mark.parametrize("body", [
    b'{"type":"about:blank","title":"Not Found","status":404,"detail":"no user","code":"not_found"}',
    b'{"errors":[{"status":"404","code":"not_found","title":"Not Found","detail":"no user"}]}',
    b'{"error":{"code":"resource_not_found","message":"no user","request_id":"req_x"}}',
    b'{"error":{"type":"not_found_error","message":"no user","code":"NOT_FOUND"}}',
    b'{"error":"NOT_FOUND","message":"no user","statusCode":404}',
    b'{"error":"resource_not_found","message":"no user","status_code":404,"timestamp":"2024-01-15T10:30:00Z"}',
])
def test_every_dialect_reads_as_one_canonical_error(srv, body):
    srv.scripts["/h"] = [(404, {"Content-Type": "application/json"}, body)]
    code, out, err, _ = call(srv.url("/h"))
    assert code == 4
    assert "errgate: 404 not_found: no user" in err


def test_field_errors_and_bad_arguments(srv):
    srv.scripts["/i"] = [(400, {}, b'{"error":"VALIDATION_ERROR","message":"Invalid request parameters","statusCode":400,"details":{"fields":{"email":["Invalid email format"]}}}')]
    code, out, err, _ = call(srv.url("/i"))
    assert code == 4 and "errgate:   email: Invalid email format" in err
    for args, msg in [(["--max-attempts", "0", "http://x/"], "--max-attempts"), (["ftp://x"], "http://"),
                      (["--deadline", "soon", "http://x/"], "duration"), (["-d", "@/nonexistent", "http://x/"], "cannot read")]:
        code, _, err, _ = call(*args)
        assert code in (2, 3) and msg in err


@pytest.mark.parametrize("headers", [{"X-RateLimit-Reset": "1"}, {"RateLimit": '"default";r=0;t=1'},
                                     {"RateLimit-Reset": "1"}])
def test_rate_limit_reset_headers_are_honoured(srv, headers):
    srv.scripts["/rl"] = [(429, headers, b'{"error":"rate_limit_exceeded","message":"slow","status_code":429}'), OK]
    code, out, err, elapsed = call(srv.url("/rl"))
    assert code == 0 and elapsed >= 1.0
    assert "retry in 1000 ms (X-RateLimit-Reset)" in err


UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
CREATED = (201, {"Content-Type": "application/json", "X-Request-ID": "req_new"}, b'{"id":7}')
REPLAYED = (201, {"Content-Type": "application/json", "X-Request-ID": "req_replay", "Idempotent-Replayed": "true"},
            b'{"id":7}')
IN_USE = (409, {"Content-Type": "application/problem+json", "Retry-After": "1", "X-Error-Code": "idempotency_key_in_use"},
          b'{"type":"about:blank","title":"Idempotency Key In Use","status":409,'
          b'"detail":"A request with this idempotency key is still being processed.","code":"idempotency_key_in_use"}')
MISMATCH = (422, {"Content-Type": "application/json", "X-Request-ID": "req_mm"},
            b'{"error":"idempotency_key_mismatch","message":"This idempotency key was used with a different request.",'
            b'"status_code":422}')


def one_key(srv, n):
    """The requests, n of them, carried one Idempotency-Key line each, all the same."""
    assert len(srv.keys) == n and all(len(k) == 1 for k in srv.keys), srv.keys
    assert len({k[0] for k in srv.keys}) == 1
    return srv.keys[0][0]


def test_replay_after_a_failed_attempt_is_said_in_the_summary(srv):
    # the first attempt's answer was lost (503 here); the retry, with the same
    # key, gets the stored response: the summary says nothing new happened
    srv.scripts["/r"] = [UNAVAILABLE, REPLAYED]
    code, out, err, _ = call("--base-delay", "5ms", "--json", '{"a":1}', srv.url("/r"))
    key = one_key(srv, 2)
    assert re.fullmatch(UUID4, key)
    assert code == 0 and out == b'{"id":7}\n'
    assert f"errgate: 201 replayed: the stored answer to Idempotency-Key {key} (request_id req_replay)\n" in err
    # --quiet drops the attempt lines, not the summary
    srv.scripts["/r2"] = [UNAVAILABLE, REPLAYED]
    code, out, err, _ = call("--quiet", "--base-delay", "5ms", "--json", '{"a":1}', srv.url("/r2"))
    assert code == 0 and "attempt" not in err and "201 replayed" in err


def test_a_fresh_success_has_no_summary_line(srv):
    srv.scripts["/n"] = [CREATED]
    code, out, err, _ = call("--json", '{"a":1}', srv.url("/n"))
    assert code == 0 and out == b'{"id":7}\n' and err == ""


def test_409_in_use_is_retried_with_the_same_key(srv):
    srv.scripts["/u"] = [IN_USE, REPLAYED]
    code, out, err, _ = call("--json", '{"a":1}', srv.url("/u"))
    key = one_key(srv, 2)
    assert code == 0 and out == b'{"id":7}\n'
    assert "attempt 1: 409 idempotency_key_in_use request_id=-: retry in 1000 ms (Retry-After)" in err
    assert f"201 replayed: the stored answer to Idempotency-Key {key}" in err


def test_409_in_use_past_the_attempts_is_reported(srv):
    srv.scripts["/u2"] = [IN_USE]
    code, out, err, _ = call("--max-attempts", "2", "--json", '{"a":1}', srv.url("/u2"))
    one_key(srv, 2)
    assert code == 4
    assert "errgate: 409 idempotency_key_in_use: A request with this idempotency key is still being processed." in err


def test_422_mismatch_is_not_retried_and_says_why(srv):
    srv.scripts["/m"] = [MISMATCH, CREATED]
    code, out, err, _ = call("--idempotency-key", "order-42", "--json", '{"a":2}', srv.url("/m"))
    assert code == 4 and srv.keys == [["order-42"]]
    assert ("attempt 1: 422 idempotency_key_mismatch request_id=req_mm: stop (Idempotency-Key already used "
            "for a different request: a new request needs a new key)") in err
    assert "errgate: 422 idempotency_key_mismatch: This idempotency key was used with a different request." in err
    assert "errgate: not retried: Idempotency-Key order-42 was first used with a different request" in err


def test_a_replayed_error_is_marked(srv):
    srv.scripts["/re"] = [(400, {"Idempotent-Replayed": "?1", "X-Request-ID": "req_b"},
                           b'{"error":"bad_request","message":"nope","status_code":400}')]
    code, out, err, _ = call("--json", "{}", srv.url("/re"))
    key = one_key(srv, 1)
    assert code == 4 and f"errgate: 400 bad_request: nope (request_id req_b, idempotency_key {key}, replayed)" in err


def test_a_failed_write_names_its_key(srv):
    # so that it can be run again with --idempotency-key without being done twice
    srv.scripts["/f5"] = [UNAVAILABLE]
    code, out, err, _ = call("--base-delay", "1ms", "--json", "{}", srv.url("/f5"))
    key = one_key(srv, 3)
    assert code == 5 and f"errgate: 503 service_unavailable: down (request_id req_up_1, idempotency_key {key})" in err
    code, out, err, _ = call("--base-delay", "1ms", "--idempotency-key", "k-1", "-d", "x", f"http://127.0.0.1:{dead_port()}/x")
    assert code == 6 and re.search(r"after 3 attempts \(idempotency_key k-1\)\n", err)


def test_caller_key_is_sent_as_is_and_once(srv):
    srv.scripts["/k"] = [UNAVAILABLE, UNAVAILABLE, CREATED]
    code, out, err, _ = call("--base-delay", "5ms", "-H", 'Idempotency-Key: "abc"', "--json", "{}", srv.url("/k"))
    assert code == 0 and one_key(srv, 3) == '"abc"'
    long_key = "k" * 255
    srv.scripts["/k2"] = [CREATED]
    code, out, err, _ = call("--idempotency-key", long_key, "-d", "x", srv.url("/k2"))
    assert code == 0 and srv.keys[-1] == [long_key]


@pytest.mark.parametrize("args", [
    ["-H", "Idempotency-Key: a", "--idempotency-key", "b"],
    ["-H", "Idempotency-Key: a", "-H", "idempotency-key: b"],
    ["--idempotency-key", "a b"],
    ["--idempotency-key", ""],
    ["--idempotency-key", "k" * 256],
])
def test_bad_keys_are_refused_before_sending(srv, args):
    srv.scripts["/bad"] = [CREATED]
    code, out, err, _ = call(*args, "-d", "x", srv.url("/bad"))
    assert code == 2 and "Idempotency-Key" in err.replace("idempotency-key", "Idempotency-Key")
    assert srv.seen == []
