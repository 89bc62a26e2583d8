"""Issue 20: what a gateway must not let through. Each test here failed on
the code before its fix. Upstreams are scripted on raw sockets so every byte
(and every pause) is under the test's control."""
import base64
import hashlib
import hmac
import json
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, Gateway, free_port, read_response, request


class ScriptedUpstream:
    """An upstream on a free port that reads each request head (and a
    Content-Length body) and hands the socket to answer(sock, head, body),
    which writes whatever bytes it wants. Every request received is kept in
    `requests` as (head, body) bytes."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.accepted = 0
        self.open = 0  # connections not yet closed
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.open += 1
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = s.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                length, chunked = 0, False
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                    if k.strip().lower() == b"transfer-encoding":
                        chunked = True
                if chunked:  # kept as it came, framing and trailers included
                    body, buf = self._chunked(s, buf)
                    if body is None:
                        return
                else:
                    while len(buf) < length:
                        data = s.recv(65536)
                        if not data:
                            return
                        buf += data
                    body, buf = buf[:length], buf[length:]
                with self.lock:
                    self.requests.append((head, body))
                if self.answer(s, head, body) is False:
                    return
        except OSError:
            return
        finally:
            s.close()
            with self.lock:
                self.open -= 1

    @staticmethod
    def _chunked(s, buf):
        """Reads one chunked body; returns (raw bytes, rest) or (None, _) on EOF."""
        pos = 0

        def need(n):
            nonlocal buf
            while len(buf) < n:
                data = s.recv(65536)
                if not data:
                    raise EOFError
                buf += data

        try:
            while True:
                while b"\r\n" not in buf[pos:]:
                    need(len(buf) + 1)
                eol = buf.index(b"\r\n", pos)
                size = int(buf[pos:eol].split(b";")[0], 16)
                pos = eol + 2
                if size == 0:
                    while True:  # trailer lines, then the empty line
                        while b"\r\n" not in buf[pos:]:
                            need(len(buf) + 1)
                        eol = buf.index(b"\r\n", pos)
                        empty = eol == pos
                        pos = eol + 2
                        if empty:
                            return buf[:pos], buf[pos:]
                need(pos + size + 2)
                pos += size + 2
        except EOFError:
            return None, b""

    def close(self):
        self.closed = True
        self.sock.close()


def config(port, admin, up_port, upstream_extra="", extra=""):
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
errors: {{ dialect: problem }}
log: {{ access: stderr, errors: stderr }}
{extra}
upstreams:
  up: {{ servers: ["127.0.0.1:{up_port}"], max_fails: 1000{upstream_extra} }}
routes:
  - path: /
    upstream: up
"""


def start(tmp_path, answer, upstream_extra="", extra=""):
    up = ScriptedUpstream(answer)
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), config(port, admin, up.port, upstream_extra, extra), port, admin)
    return gw, up, port


def stop(gw, up):
    code = gw.stop()
    up.close()
    assert code == 0, open(gw.log, errors="replace").read()[-3000:]


def wait_log(gw, pred, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        hits = [l for l in gw.log_lines() if pred(l)]
        if hits:
            return hits
        time.sleep(0.05)
    raise AssertionError("no such log line; log:\n" + open(gw.log, errors="replace").read()[-3000:])


def read_until_close(s, timeout=10.0):
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d
    except (ConnectionResetError, socket.timeout):
        return out


# --- item 2: nothing from an upstream error splits the response head ----------

def test_an_upstream_code_with_crlf_never_becomes_a_header(tmp_path):
    bodies = {
        b"/cookie": {"title": "Bad", "status": 400, "code": "x\r\nSet-Cookie: inj=1"},
        b"/split": {"title": "Bad", "status": 400, "code": "x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"},
        b"/long": {"title": "Bad", "status": 400, "code": "a" * 65},
        b"/space": {"title": "Bad", "status": 400, "code": "two words"},
    }

    def answer(s, head, body):
        path = head.split(b" ")[1]
        if path == b"/ok":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return
        b = json.dumps(bodies[path]).encode()
        s.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\n"
                  b"Content-Length: " + str(len(b)).encode() + b"\r\n\r\n" + b)

    gw, up, port = start(tmp_path, answer)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            for path in ("/cookie", "/split", "/long", "/space"):
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                r, _ = read_response(s)
                assert r.status == 400, (path, r.body)
                names = [k.lower() for k, _ in r.headers]
                assert "set-cookie" not in names, (path, r.headers)
                assert r.header("X-Error-Code") == "bad_request", (path, r.headers)
                assert r.json()["code"] == "bad_request", (path, r.body)
            # the head ended where it should: the next response on the same
            # connection is the upstream's 200, not a forged one
            s.sendall(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
            r, _ = read_response(s)
            assert r.status == 200 and r.body == b"ok"
    finally:
        stop(gw, up)


def test_a_valid_upstream_code_is_kept(tmp_path):
    def answer(s, head, body):
        b = json.dumps({"title": "Nope", "status": 409, "code": "order.already_paid-2"}).encode()
        s.sendall(b"HTTP/1.1 409 Conflict\r\nContent-Type: application/problem+json\r\n"
                  b"Content-Length: " + str(len(b)).encode() + b"\r\n\r\n" + b)

    gw, up, port = start(tmp_path, answer)
    try:
        r = request(port, "GET", "/x")
        assert r.status == 409
        assert r.header("X-Error-Code") == "order.already_paid-2"
    finally:
        stop(gw, up)


# --- item 3: a slow but flowing response is not cut; a stalled one is logged cut

def drip(s, head, body):
    """A 20-byte body, one byte every 0.15 s: 3 s in all, never 1 s without a byte."""
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
    for i in range(20):
        time.sleep(0.15)
        s.sendall(b"abcdefghijklmnopqrst"[i:i + 1])


def test_a_slow_but_flowing_body_is_not_cut_by_the_response_timeout(tmp_path):
    gw, up, port = start(tmp_path, drip, ", timeout: 1s, read_timeout: 1s")
    try:
        r = request(port, "GET", "/drip", timeout=20)
        assert r.status == 200
        assert r.body == b"abcdefghijklmnopqrst"
        line = wait_log(gw, lambda l: l.get("kind") == "access" and l.get("path") == "/drip")[0]
        assert line["status"] == 200 and "truncated" not in line, line
    finally:
        stop(gw, up)


def test_a_stalled_body_is_cut_after_read_timeout_and_logged_as_truncated(tmp_path):
    def stall(s, head, body):
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
        time.sleep(6)
        return False

    gw, up, port = start(tmp_path, stall, ", read_timeout: 1s")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /stall HTTP/1.1\r\nHost: t\r\n\r\n")
            got = read_until_close(s)
        assert got.startswith(b"HTTP/1.1 200 OK") and got.endswith(b"hello"), got
        line = wait_log(gw, lambda l: l.get("kind") == "access" and l.get("path") == "/stall")[0]
        assert line["status"] == 200
        assert line["truncated"] == "response timeout", line
        assert line["bytes_out"] == len(got), (line, len(got))
        err = wait_log(gw, lambda l: l.get("kind") == "error" and l.get("code") == "response_truncated")[0]
        assert err["why"] == "response timeout" and err["status"] == 200, err
    finally:
        stop(gw, up)


def test_total_timeout_bounds_a_flowing_response(tmp_path):
    gw, up, port = start(tmp_path, drip, ", read_timeout: 1s, total_timeout: 1s")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /drip HTTP/1.1\r\nHost: t\r\n\r\n")
            got = read_until_close(s)
        body = got.split(b"\r\n\r\n", 1)[1]
        assert 0 < len(body) < 20, got
        line = wait_log(gw, lambda l: l.get("kind") == "access" and l.get("path") == "/drip")[0]
        assert line["truncated"] == "response timeout", line
    finally:
        stop(gw, up)


def test_an_upstream_cut_mid_body_is_logged_as_truncated(tmp_path):
    def cut(s, head, body):
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
        return False  # closes with 95 bytes owed

    gw, up, port = start(tmp_path, cut)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /cut HTTP/1.1\r\nHost: t\r\n\r\n")
            got = read_until_close(s)
        assert got.endswith(b"hello")
        line = wait_log(gw, lambda l: l.get("kind") == "access" and l.get("path") == "/cut")[0]
        assert line["truncated"] == "response cut before its end", line
    finally:
        stop(gw, up)


# --- item 4: an upstream error cut after its head is a 502, not an empty reply --

def test_an_error_cut_after_its_head_is_a_502_in_the_dialect(tmp_path):
    def cut_error(s, head, body):
        s.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"error\": \"boom")
        return False

    gw, up, port = start(tmp_path, cut_error)
    try:
        r = request(port, "GET", "/err")
        assert r.status == 502, r.body
        assert r.header("Content-Type") == "application/problem+json"
        assert r.header("X-Error-Code") == "bad_gateway"
        body = r.json()
        assert body["detail"] == "The upstream service sent an incomplete response.", body
        line = wait_log(gw, lambda l: l.get("kind") == "access" and l.get("path") == "/err")[0]
        assert line["status"] == 502 and line["bytes_out"] > 0, line
    finally:
        stop(gw, up)


# --- item 14: a 5xx too large to translate never passes through ---------------

def test_a_huge_5xx_body_is_replaced_by_the_generic_error(tmp_path):
    secret = b"Traceback (most recent call last): db password=hunter2\n" * 4000  # ~220 KiB

    def huge(s, head, body):
        s.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\n"
                  b"Content-Length: " + str(len(secret)).encode() + b"\r\n\r\n" + secret)

    gw, up, port = start(tmp_path, huge)
    try:
        r = request(port, "GET", "/huge")
        assert r.status == 500
        assert r.header("X-Error-Code") == "internal_error"
        assert b"hunter2" not in r.body and b"Traceback" not in r.body
        assert r.json()["code"] == "internal_error"
        # the log keeps an excerpt for the operator
        err = wait_log(gw, lambda l: l.get("kind") == "upstream_error" and l.get("status") == 500)[0]
        assert "Traceback" in err.get("body", ""), err
    finally:
        stop(gw, up)


# --- items 8 and 9: chunked request bodies are re-framed -----------------------

def ok_answer(s, head, body):
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def send_chunked(port, chunks_raw):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks_raw)
        r, _ = read_response(s)
        return r


def test_a_chunk_larger_than_max_body_size_is_refused_before_it_is_forwarded(tmp_path):
    gw, up, port = start(tmp_path, ok_answer, extra="limits: { max_body_size: 1MiB }")
    try:
        for size in (b"ffffffffffffffff", b"8000000000000000", b"100001"):
            r = send_chunked(port, b"5\r\nhello\r\n" + size + b"\r\nxx")
            assert r.status == 413, (size, r.body)
            assert r.header("X-Error-Code") == "payload_too_large"
        for head, body in up.requests:
            assert b"ffffffffffffffff" not in body and b"8000000000000000" not in body
            assert b"100001" not in body, body
        # a body that fits goes through whole
        r = send_chunked(port, b"100000\r\n" + b"a" * 0x100000 + b"\r\n0\r\n\r\n")
        assert r.status == 200, r.body
        assert dechunk(up.requests[-1][1]) == (b"a" * 0x100000, b"\r\n")
    finally:
        stop(gw, up)


def dechunk(raw):
    out, pos = b"", 0
    while True:
        eol = raw.index(b"\r\n", pos)
        size = int(raw[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            return out, raw[pos:]
        out += raw[pos:pos + size]
        pos += size + 2


def test_request_trailers_and_chunk_extensions_never_reach_the_upstream(tmp_path):
    gw, up, port = start(tmp_path, ok_answer)
    try:
        r = send_chunked(port, b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n"
                               b"X-API-Key: eg_live_secret\r\nContent-Length: 5\r\nHost: evil\r\n"
                               b"X-Consumer-ID: admin\r\nTransfer-Encoding: gzip\r\n\r\n")
        assert r.status == 200, r.body
        head, raw = up.requests[-1]
        data, tail = dechunk(raw)
        assert data == b"hello world"
        assert tail == b"\r\n", raw  # no trailer field at all
        assert b"ext=1" not in raw and b"secret" not in raw and b"evil" not in raw
    finally:
        stop(gw, up)


def test_only_allow_listed_request_trailers_are_forwarded(tmp_path):
    gw, up, port = start(tmp_path, ok_answer, extra="request: { forward_trailers: [X-Checksum, Digest] }")
    try:
        r = send_chunked(port, b"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\nX-API-Key: eg_live_secret\r\n"
                               b"Host: evil\r\ndigest: sha-256=xyz\r\n\r\n")
        assert r.status == 200, r.body
        data, tail = dechunk(up.requests[-1][1])
        assert data == b"hello"
        assert tail == b"X-Checksum: abc123\r\ndigest: sha-256=xyz\r\n\r\n", tail
    finally:
        stop(gw, up)


def test_forward_trailers_cannot_name_a_field_the_gateway_controls(tmp_path):
    for name in ("Host", "content-length", "X-API-Key", "Authorization", "X-Consumer-ID", "Proxy-Auth"):
        cfg = config(free_port(), free_port(), free_port(), extra=f"request: {{ forward_trailers: [{name}] }}")
        path = tmp_path / "c.yaml"
        path.write_text(cfg)
        out = subprocess.run([BIN, "check-config", str(path)], capture_output=True, text=True, timeout=30)
        assert out.returncode != 0, (name, out.stdout)
        assert "field the gateway controls" in out.stderr + out.stdout, (name, out.stderr)


# --- item 10: small bodies are read whole before an upstream is chosen ---------

def test_a_bad_chunk_in_a_small_body_never_reaches_the_upstream(tmp_path):
    gw, up, port = start(tmp_path, ok_answer)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            time.sleep(0.3)  # the rest comes later, as from a slow client
            s.sendall(b"zz\r\nbad\r\n0\r\n\r\n")
            r, _ = read_response(s)
        assert r.status == 400 and r.header("X-Error-Code") == "bad_request", r.body
        assert "invalid chunk size" in r.json()["detail"]
        # a slow Content-Length body is forwarded whole, in one request
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345")
            time.sleep(0.3)
            s.sendall(b"67890")
            r, _ = read_response(s)
        assert r.status == 200
        assert up.accepted == 1 and up.requests[0][1] == b"1234567890", (up.accepted, up.requests)
    finally:
        stop(gw, up)


def test_buffer_body_0_streams_and_the_upstream_sees_the_head(tmp_path):
    gw, up, port = start(tmp_path, ok_answer, extra="request: { buffer_body: 0 }")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            deadline = time.time() + 10
            while up.accepted == 0 and time.time() < deadline:  # streamed: connected at once
                time.sleep(0.02)
            s.sendall(b"zz\r\n")
            r, _ = read_response(s)
        assert r.status == 400
        assert up.accepted == 1
    finally:
        stop(gw, up)


# --- item 11: header names with '_' are dropped unless allowed -----------------

def test_header_names_with_underscores_are_dropped_by_default(tmp_path):
    gw, up, port = start(tmp_path, ok_answer)
    try:
        r = request(port, "GET", "/u", headers={"X_Consumer_ID": "admin", "X_Key_ID": "k", "X-Normal": "1"})
        assert r.status == 200
        head = up.requests[-1][0].lower()
        assert b"x_consumer_id" not in head and b"x_key_id" not in head
        assert b"x-normal: 1" in head
    finally:
        stop(gw, up)


def test_underscores_in_headers_true_forwards_them(tmp_path):
    gw, up, port = start(tmp_path, ok_answer, extra="request: { underscores_in_headers: true }")
    try:
        r = request(port, "GET", "/u", headers={"X_Custom_Thing": "v"})
        assert r.status == 200
        assert b"x_custom_thing: v" in up.requests[-1][0].lower()
    finally:
        stop(gw, up)


# --- item 12: credentials errgate consumed never reach the upstream ------------

JWT_SECRET = b"jwt-hs256-secret-for-the-security-tests-0123"


def hs256(claims):
    b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    signing = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}"
    return signing + "." + b64(hmac.new(JWT_SECRET, signing.encode(), hashlib.sha256).digest())


def credential_gateway(tmp_path, up):
    tmp = str(tmp_path)
    with open(f"{tmp}/jwt.secret", "wb") as f:
        f.write(JWT_SECRET)
    port, admin = free_port(), free_port()
    cfg = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
log: {{ access: stderr }}
store: {{ backend: sqlite, path: {tmp}/keys.db }}
auth: {{ jwt: {{ secret_file: {tmp}/jwt.secret }} }}
upstreams:
  up: {{ servers: ["127.0.0.1:{up.port}"] }}
routes:
  - {{ path: /k/, upstream: up, auth: api_key }}
  - {{ path: /j/, upstream: up, auth: jwt }}
"""
    with open(f"{tmp}/gateway.yaml", "w") as f:
        f.write(cfg)
    out = subprocess.run([BIN, "keys", "create", "--config", f"{tmp}/gateway.yaml", "--name", "t"],
                         capture_output=True, check=True, timeout=30)
    key = json.loads(out.stdout)["secret"]
    return Gateway(tmp, cfg, port, admin), port, key


def test_consumed_credentials_are_stripped_and_duplicates_refused(tmp_path):
    up = ScriptedUpstream(ok_answer)
    gw, port, key = credential_gateway(tmp_path, up)
    token = hs256({"sub": "user_1", "exp": int(time.time()) + 600})
    try:
        r = request(port, "GET", "/k/x", headers={"X-API-Key": key, "Authorization": f"Bearer {token}"})
        assert r.status == 200, r.body
        head = up.requests[-1][0].lower()
        assert b"x-api-key" not in head and b"authorization" not in head, head
        assert key.lower().encode() not in head and token.lower().encode() not in head
        r = request(port, "GET", "/j/x", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 200, r.body
        assert b"authorization" not in up.requests[-1][0].lower()
        seen = len(up.requests)
        for raw in (f"GET /k/x HTTP/1.1\r\nHost: t\r\nX-API-Key: {key}\r\nX-API-Key: {key}\r\n\r\n",
                    f"GET /j/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
                    f"Authorization: Bearer {token}\r\n\r\n"):
            r = request(port, raw=raw.encode())
            assert r.status == 400, r.body
            assert r.header("X-Error-Code") == "bad_request"
        assert len(up.requests) == seen  # refused before the upstream
    finally:
        stop(gw, up)


# --- item 1: routing and access control see the normalized path ---------------

import os
import shutil
import signal
import wsgiref.simple_server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx:
    """A real nginx on a free port that answers every path with the
    request-target it received: what an upstream resolves, it resolves."""

    def __init__(self, tmp):
        self.port = free_port()
        prefix = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
daemon off;
master_process off;
worker_processes 1;
error_log {prefix}/logs/error.log;
pid {prefix}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        location /admin/ {{ return 200 "admin area: $uri\\n"; }}
        location /v1/private/ {{ return 200 "private area: $uri\\n"; }}
        location / {{ return 200 "public: $request_uri\\n"; }}
    }}
}}
""")
        self.proc = subprocess.Popen([NGINX, "-p", prefix, "-c", conf], stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while True:  # ready when it answers, not when the port opens
            try:
                if request(self.port, "GET", "/ready", timeout=1).status == 200:
                    break
            except OSError:
                pass
            assert self.proc.poll() is None, self.proc.stderr.read()
            assert time.time() < deadline, "nginx did not answer"
            time.sleep(0.05)

    def close(self):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Wsgi:
    """Python's stock WSGI server (wsgiref): PATH_INFO is percent-decoded,
    as every WSGI app sees it. Records the PATH_INFO of each request."""

    def __init__(self):
        self.seen = []

        def app(environ, start):
            path = environ["PATH_INFO"]
            self.seen.append(path)
            area = "private" if path.startswith("/v1/private/") else "admin" if path.startswith("/admin/") else "public"
            start("200 OK", [("Content-Type", "text/plain")])
            return [f"{area}: {path}\n".encode()]

        class Quiet(wsgiref.simple_server.WSGIRequestHandler):
            def log_message(self, *a):
                pass

        self.httpd = wsgiref.simple_server.make_server("127.0.0.1", 0, app, handler_class=Quiet)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def protected_gateway(tmp_path, up_port, path_section=""):
    tmp = str(tmp_path)
    port, admin = free_port(), free_port()
    cfg = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
log: {{ access: stderr }}
store: {{ backend: memory }}
{path_section}
upstreams:
  up: {{ servers: ["127.0.0.1:{up_port}"] }}
routes:
  - {{ path: /admin/, upstream: up, allow_ips: [192.0.2.0/24] }}
  - {{ path: /v1/private/, upstream: up, auth: api_key }}
  - {{ path: /v1/, upstream: up }}
"""
    return Gateway(tmp, cfg, port, admin), port


ATTACKS = {  # the review's paths: each must meet the protected route's rules
    "/v1/../admin/x": ("ip_not_allowed", 403),
    "/v1/%2e%2e/admin/x": ("ip_not_allowed", 403),
    "/v1/%2E%2e/admin/x": ("ip_not_allowed", 403),
    "/v1/.%2e/admin/x": ("ip_not_allowed", 403),
    "/v1//private/y": ("missing_api_key", 401),
    "/v1/./private/y": ("missing_api_key", 401),
    "/v1/%70rivate/y": ("missing_api_key", 401),
    "/v1/public/../private/y": ("missing_api_key", 401),
    "/v1/x/..//private/y": ("missing_api_key", 401),
}

REFUSED = [  # no single meaning: 400 before routing
    "/v1/%2F..%2Fadmin/x", "/v1/%2f..%2fadmin/x", "/v1/a%00b", "/v1/%C0%AE%C0%AE/admin/x",
    "/v1/%E0%80%AF", "/v1/%ED%A0%80", "/../admin/x", "/v1/../../admin/x", "/v1/%zz", "/v1/a%5Cb",
]


def check_attacks(port):
    for path, (code, status) in ATTACKS.items():
        r = request(port, "GET", path)
        assert (r.status, r.header("X-Error-Code")) == (status, code), (path, r.status, r.body)
    for path in REFUSED:
        r = request(port, "GET", path)
        assert r.status == 400 and r.header("X-Error-Code") == "bad_request", (path, r.status, r.body)
        assert r.header("Content-Type") == "application/problem+json"


def test_normalized_path_protects_areas_behind_a_real_nginx(tmp_path):
    ng = Nginx(str(tmp_path))
    gw, port = protected_gateway(tmp_path, ng.port)
    try:
        check_attacks(port)
        # what is allowed goes upstream in its normalized form; the query as it came
        for sent, received in (("/v1/./a/../hello?x=%2e%2e", "/v1/hello?x=%2e%2e"),
                               ("/v1//a///b", "/v1/a/b"),
                               ("/v1/%7euser/a%3ab", "/v1/~user/a%3Ab")):
            r = request(port, "GET", sent)
            assert r.status == 200 and r.body == f"public: {received}\n".encode(), (sent, r.body)
    finally:
        code = gw.stop()
        ng.close()
        assert code == 0


def test_normalized_path_protects_areas_behind_a_wsgi_app(tmp_path):
    app = Wsgi()
    gw, port = protected_gateway(tmp_path, app.port)
    try:
        check_attacks(port)
        assert not [p for p in app.seen if p.startswith(("/admin/", "/v1/private/"))], app.seen
        r = request(port, "GET", "/v1/%70ublic/x")
        assert r.status == 200 and r.body == b"public: /v1/public/x\n"
    finally:
        code = gw.stop()
        app.close()
        assert code == 0


def test_reject_encoded_slash_off_keeps_it_encoded(tmp_path):
    ng = Nginx(str(tmp_path))
    gw, port = protected_gateway(tmp_path, ng.port, "path: { reject_encoded_slash: false }")
    try:
        r = request(port, "GET", "/v1/a%2fb")
        assert r.status == 200 and r.body == b"public: /v1/a%2Fb\n", r.body
        r = request(port, "GET", "/v1/%2e%2e/admin/x")  # still normalized
        assert r.status == 403
    finally:
        code = gw.stop()
        ng.close()
        assert code == 0


# --- item 15: what a kill -9 can over-count on SQLite quotas, bounded ------------

ADMIN_TOKEN = "admin-token-for-the-security-tests-01"


@pytest.mark.parametrize("commit_every", [1, 16])
def test_kill_9_over_counts_a_quota_by_at_most_the_requests_in_flight(tmp_path, commit_every):
    """docs/traffic.md: with commit_every 1 a charge is committed before the
    request is forwarded, so a kill -9 never loses a served request and
    over-counts at most the requests admitted and not yet answered (here 8
    clients). With group commits at most commit_every - 1 admitted charges
    are uncommitted at any moment: a kill -9 loses at most that many (the
    interval is long here, so only the count bound is at work)."""
    tmp = str(tmp_path)
    clients, limit = 8, 400
    lost = commit_every - 1

    def slow_ok(s, head, body):
        time.sleep(0.01)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    up = ScriptedUpstream(slow_ok)
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    port, admin = free_port(), free_port()
    cfg = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
log: {{ access: off }}
store: {{ backend: sqlite, path: {tmp}/quota.db, commit_every: {commit_every}, commit_interval: 10s }}
auth: {{ admin_token_file: {tmp}/admin.token }}
upstreams:
  up: {{ servers: ["127.0.0.1:{up.port}"] }}
routes:
  - {{ path: /q/, upstream: up, auth: api_key, quota: {{ limit: {limit}, period: day }} }}
"""
    day = time.gmtime().tm_yday
    gw = Gateway(tmp, cfg, port, admin)
    r = request(admin, "POST", "/keys", body=b'{"name": "q"}', headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status == 201, r.body
    key = r.json()["secret"]
    stop_flag = threading.Event()

    def hammer():
        while not stop_flag.is_set():
            try:
                request(port, "GET", "/q/x", headers={"X-API-Key": key}, timeout=5)
            except (OSError, ConnectionError):
                pass

    threads = [threading.Thread(target=hammer) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 30
        while len(up.requests) < 100 and time.time() < deadline:
            time.sleep(0.01)
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait()
        gw.logf.close()
    finally:
        stop_flag.set()
        for t in threads:
            t.join()
    deadline = time.time() + 10
    while up.open and time.time() < deadline:  # every connection the dead gateway had is gone
        time.sleep(0.01)
    received = len(up.requests)
    assert 100 <= received < limit
    gw = Gateway(tmp, cfg, port, admin)
    try:
        left = 0
        while request(port, "GET", "/q/x", headers={"X-API-Key": key}).status == 200:
            left += 1
            assert left <= limit
        counted = limit - left
        if time.gmtime().tm_yday != day:  # the quota is per UTC day: midnight came, the count began anew
            pytest.skip("the run crossed midnight UTC; the day's quota restarted")
        assert received - lost <= counted <= received + clients, (received, counted)
    finally:
        stop(gw, up)


# --- lingering close (found by the soak test) ------------------------------------

def test_an_answer_to_a_client_still_sending_is_not_destroyed_by_a_reset(tmp_path):
    """A 413 for a declared body over max_body_size while the client goes on
    sending it: the gateway shuts its write side and drops what still comes
    (nginx's lingering close), so the client reads the answer instead of a
    connection reset that discards it. (Loopback delivers a small answer
    before the reset, so the build before passes this too: it guards the
    behaviour, the soak showed the loss.)"""
    gw, up, port = start(tmp_path, ok_answer, extra="limits: { max_body_size: 1MiB }")
    try:
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 104857600\r\n\r\n")

            def push():
                try:
                    for _ in range(32):
                        s.sendall(b"x" * 65536)
                except OSError:
                    pass

            t = threading.Thread(target=push)
            t.start()
            t.join(20)
            try:
                r, _ = read_response(s)
            finally:
                s.close()
            assert r.status == 413 and r.header("X-Error-Code") == "payload_too_large", r.status
        assert up.accepted == 0
    finally:
        stop(gw, up)
