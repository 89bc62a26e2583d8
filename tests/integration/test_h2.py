"""HTTP/2 (issue 26, docs/http2.md): h2 over TLS by ALPN and h2c by prior
knowledge; every stream is a request through the same stages and upstream
pool as HTTP/1.1, so each gateway error is compared with the same request
over HTTP/1.1 (status, body, headers but the hop-by-hop ones). Malformed
requests, the limits and the known attacks (rapid reset, CONTINUATION,
SETTINGS and PING floods) are sent as raw frames by the small encoder
below; responses are read with hpack (python3-h2)."""
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading

import pytest

from conftest import Gateway, HeldUpstream, closed_after, free_port, dead_port, request

hpack = pytest.importorskip("hpack", reason="python3-h2 (hpack) reads the gateway's HPACK")
CURL = shutil.which("curl")
H2LOAD = shutil.which("h2load")
OPENSSL = shutil.which("openssl")

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
REFUSED_STREAM, ENHANCE_YOUR_CALM = 7, 11
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# ---------------------------------------------------------------- frames

def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def _int7(n):
    """An HPACK integer with a 7-bit prefix, no Huffman bit."""
    if n < 127:
        return bytes([n])
    out, n = [127], n - 127
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    return bytes(out + [n])


def literal(name, value):
    """A literal field without indexing, new name (RFC 7541 6.2.2): what
    the test says is what goes on the wire, uppercase included."""
    name, value = (x.encode() if isinstance(x, str) else x for x in (name, value))
    return b"\x00" + _int7(len(name)) + name + _int7(len(value)) + value


def block(fields):
    return b"".join(literal(n, v) for n, v in fields)


def settings(**kv):
    ids = {"header_table_size": 1, "enable_push": 2, "max_concurrent_streams": 3, "initial_window_size": 4,
           "max_frame_size": 5, "max_header_list_size": 6}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in kv.items()))


class H2:
    """A raw client connection: the preface and SETTINGS are sent at once;
    frames are read one by one, the server's SETTINGS acked."""

    def __init__(self, port, tls=None, window=None, timeout=10.0, name="localhost"):
        """tls: a CA file, or a client ssl.SSLContext that offers h2."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            ctx = tls if isinstance(tls, ssl.SSLContext) else ssl.create_default_context(cafile=tls)
            if not isinstance(tls, ssl.SSLContext):
                ctx.set_alpn_protocols(["h2"])
            raw = ctx.wrap_socket(raw, server_hostname=name)
            assert raw.selected_alpn_protocol() == "h2"
        self.s, self.buf, self.dec = raw, b"", hpack.Decoder()
        self.server_settings = {}
        self.streams, self.done = {}, {}  # sid: (fields, [body]); sid: None (ended) or the RST code
        opts = {"initial_window_size": window} if window is not None else {}
        self.s.sendall(PREFACE + settings(**opts))

    def close(self):
        self.s.close()

    def send(self, *frames):
        self.s.sendall(b"".join(frames))

    def headers(self, sid, fields, end=True):
        self.send(frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid, block(fields)))

    def read_frame(self):
        """(type, flags, sid, payload), or None at the end of the connection."""
        while True:
            if len(self.buf) >= 9:
                n = struct.unpack(">I", b"\0" + self.buf[:3])[0]
                if len(self.buf) >= 9 + n:
                    t, fl = self.buf[3], self.buf[4]
                    sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
                    payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
                    if t == SETTINGS and not fl & ACK:
                        for i in range(0, len(payload), 6):
                            k, v = struct.unpack(">HI", payload[i:i + 6])
                            self.server_settings[k] = v
                        self.send(frame(SETTINGS, ACK, 0))
                    return t, fl, sid, payload
            try:
                chunk = self.s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def response(self, sid, window_updates=True):
        """Reads until stream sid ends: (status, headers [(name, value)], body, rst code or None).
        Other streams' frames are kept for their own response() call."""
        while sid not in self.done:
            f = self.read_frame()
            if f is None:
                raise AssertionError(f"connection closed before stream {sid} ended")
            t, fl, fsid, payload = f
            if t == GOAWAY and struct.unpack(">II", payload[:8])[1] != NO_ERROR:
                raise AssertionError(f"GOAWAY {struct.unpack('>II', payload[:8])}")
            st = self.streams.setdefault(fsid, ([], [b""]))
            if t in (HEADERS, CONTINUATION):
                st[0].extend(self.dec.decode(payload))  # (the gateway sends END_HEADERS blocks)
                if fl & END_STREAM:
                    self.done[fsid] = None
            elif t == DATA:
                if payload and window_updates:
                    inc = struct.pack(">I", len(payload))
                    self.send(frame(WINDOW_UPDATE, 0, 0, inc), frame(WINDOW_UPDATE, 0, fsid, inc))
                st[1][0] += payload
                if fl & END_STREAM:
                    self.done[fsid] = None
            elif t == RST_STREAM:
                self.done.setdefault(fsid, struct.unpack(">I", payload)[0])
        heads, body = self.streams.get(sid, ([], [b""]))
        if self.done[sid] is not None:
            return None, heads, body[0], self.done[sid]
        status = int(dict(heads)[":status"])
        return status, [(k, v) for k, v in heads if not k.startswith(":")], body[0], None

    def wait_for_frame(self, want):
        """Reads frames until want(frame) is true; returns it (None: the connection ended first)."""
        while True:
            f = self.read_frame()
            if f is None or want(f):
                return f


def goaway_code(f):
    return struct.unpack(">II", f[3][:8])[1]


# ---------------------------------------------------------------- the gateway

@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    if not OPENSSL:
        pytest.skip("the openssl CLI makes the test certificate")
    d = str(tmp_path_factory.mktemp("h2pki"))
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   cwd=d, check=True, capture_output=True)
    with open(os.path.join(d, "pepper"), "w") as f:
        f.write("pepper-for-the-h2-integration-tests\n")
    return d


def h2_config(d, port, tport, upstream, http2="", limits=""):
    return f"""
listen:
  - 127.0.0.1:{port}
  - address: 127.0.0.1:{tport}
    tls: {{ cert: {d}/cert.pem, key: {d}/key.pem }}
workers: 2
errors: {{ dialect: problem, negotiate: true }}
limits:
  header_timeout: 2s
  body_timeout: 2s
  max_body_size: 1MiB
  max_uri: 1KiB
  max_header_size: 8KiB
{limits}
{http2}
log: {{ access: stderr }}
store: {{ backend: memory }}
auth: {{ pepper_file: {d}/pepper }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream}"], timeout: 5s }}
  slow: {{ servers: ["127.0.0.1:{upstream}"], timeout: 1s }}
  dead: {{ servers: ["127.0.0.1:{dead_port()}"], connect_timeout: 1s }}
routes:
  - path: /v1/maintenance
    upstream: demo
    maintenance: {{ until: "2030-01-01T06:00:00Z", retry_after: 120 }}
  - {{ path: /v1/readonly, methods: [GET], upstream: demo }}
  - {{ path: /key/, upstream: demo, auth: api_key }}
  - {{ path: /ip/, upstream: demo, allow_ips: [192.0.2.0/24] }}
  - {{ path: /once/, upstream: demo, rate_limit: {{ limit: 1, window: 1h, by: ip }} }}
  - {{ path: /idem/, upstream: demo, idempotency: {{ ttl: 1h }} }}
  - path: /val/
    upstream: demo
    validate:
      query:
        q: {{ required: true, type: integer, minimum: 1 }}
  - {{ path: /v1/, upstream: demo }}
  - {{ path: /slow/, upstream: slow }}
  - {{ path: /dead/, upstream: dead }}
"""


def start(cert, tmp_path, upstream, **kw):
    port, tport = free_port(), free_port()
    gw = Gateway(str(tmp_path), h2_config(cert, port, tport, upstream, **kw), port, None)
    gw.tport, gw.ca = tport, os.path.join(cert, "cert.pem")
    return gw


@pytest.fixture
def gw(cert, tmp_path, upstream_port):
    g = start(cert, tmp_path, upstream_port)
    yield g
    assert g.stop() == 0, g.log_text()[-3000:]


# ---------------------------------------------------------------- clients

def curl(*args):
    if not CURL:
        pytest.skip("curl is needed (deps.sh --test)")
    out = subprocess.run([CURL, "-s", "-S", "--max-time", "20", *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_curl_h2_over_tls_by_alpn(gw):
    out = curl("--http2", "--cacert", gw.ca, "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
               f"https://localhost:{gw.tport}/v1/hello", "--resolve", f"localhost:{gw.tport}:127.0.0.1")
    assert out == "2 200"


def test_curl_h2c_prior_knowledge(gw):
    out = curl("--http2-prior-knowledge", "-D", "-", "-w", "\n%{http_version}", f"http://127.0.0.1:{gw.port}/v1/hello")
    assert out.startswith("HTTP/2 200")
    assert out.endswith("\n2")
    doc = json.loads(out.split("\n\n", 1)[1].rsplit("\n", 1)[0])  # (text mode: CRLF read as LF)
    # the upstream saw an HTTP/1.1 request: Host from :authority, no h2 pseudo-headers
    assert doc["headers"]["host"] == f"127.0.0.1:{gw.port}"
    assert doc["headers"]["x-forwarded-proto"] == "http"
    assert not any(k.startswith(":") for k in doc["headers"])
    gw.wait_log(lambda l: l.get("kind") == "access" and l.get("path") == "/v1/hello" and l.get("proto") == "h2"
                and l.get("status") == 200, "the stream's access line")


def test_request_and_response_bodies_stream_with_flow_control(gw, tmp_path):
    # 600 KB each way: more than every window (64 KiB client, 256 KiB stream, 1 MiB connection
    # for two streams at once)
    body = bytes(range(256)) * 2400
    src = tmp_path / "body"
    src.write_bytes(body)
    for url in (f"http://127.0.0.1:{gw.port}/v1/echo", f"http://127.0.0.1:{gw.port}/v1/echo?again"):
        out = subprocess.run([CURL, "-s", "--http2-prior-knowledge", "--data-binary", f"@{src}", "-H",
                              "content-type: application/octet-stream", url], capture_output=True, timeout=30)
        assert out.stdout == body, (out.returncode, out.stderr, len(out.stdout), gw.log_text()[-3000:])
    # chunked to the upstream: a body without content-length
    c = H2(gw.port)
    try:
        c.headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "t"), (":path", "/v1/echo")],
                  end=False)
        for i in range(0, 40000, 10000):
            c.send(frame(DATA, END_STREAM if i == 30000 else 0, 1, body[i:i + 10000]))
        status, _, data, rst = c.response(1)
        assert status == 200 and data == body[:40000]
    finally:
        c.close()
    out = subprocess.run([CURL, "-s", "--http2-prior-knowledge", f"http://127.0.0.1:{gw.port}/v1/big?bytes=307200"],
                         capture_output=True, timeout=30)
    assert out.stdout == bytes(ord("a") + i % 26 for i in range(307200))


def test_response_waits_for_the_client_window(gw):
    """The client grants a 1000-byte window: the gateway sends no more until a WINDOW_UPDATE."""
    c = H2(gw.port, window=1000)
    try:
        c.headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/v1/big?bytes=50000")])
        got = 0
        while got < 1000:
            t, fl, sid, payload = c.read_frame()
            if t == DATA:
                got += len(payload)
        assert got == 1000
        # nothing more comes until the window opens: a PING's ack arrives first
        c.send(frame(PING, 0, 0, b"12345678"))
        f = c.wait_for_frame(lambda f: f[0] in (PING, DATA))
        assert f[0] == PING and f[1] & ACK
        inc = struct.pack(">I", 100000)
        c.send(frame(WINDOW_UPDATE, 0, 1, inc), frame(WINDOW_UPDATE, 0, 0, inc))
        while True:
            t, fl, sid, payload = c.read_frame()
            if t == DATA:
                got += len(payload)
                if fl & END_STREAM:
                    break
        assert got == 50000
    finally:
        c.close()


def test_h2load_many_streams(gw):
    if not H2LOAD:
        pytest.skip("h2load is needed (nghttp2-client, deps.sh --test)")
    for url in (f"http://127.0.0.1:{gw.port}/v1/hello", f"https://127.0.0.1:{gw.tport}/v1/hello"):
        out = subprocess.run([H2LOAD, "-n", "2000", "-c", "4", "-m", "100", url], capture_output=True, text=True,
                             timeout=120)
        assert "2000 succeeded" in out.stdout and "2000 2xx" in out.stdout, out.stdout + out.stderr


# ---------------------------------------------------------------- the same errors as HTTP/1.1

HOP = {"connection", "keep-alive", "transfer-encoding", "date", "upgrade", "proxy-connection"}


def h1(port, method, path, headers, body):
    r = request(port, method, path, headers=headers, body=body)
    return r.status, [(k.lower(), v) for k, v in r.headers if k.lower() not in HOP], r.body


def h2(port, method, path, headers, body, tls=None):
    c = H2(port, tls=tls)
    try:
        fields = [(":method", method), (":scheme", "https" if tls else "http"), (":authority", "test.local"),
                  (":path", path)] + [(k.lower(), v) for k, v in headers.items()]
        cl = int(headers.get("Content-Length", len(body)))
        if body and "Content-Length" not in headers:
            fields.append(("content-length", str(len(body))))
        c.headers(1, fields, end=not body)
        if body:
            c.send(frame(DATA, END_STREAM if cl == len(body) else 0, 1, body))
        status, heads, data, rst = c.response(1)
        assert rst is None, f"stream reset ({rst})"
        return status, [(k, v) for k, v in heads if k not in HOP], data
    finally:
        c.close()


TS = re.compile(rb'"(timestamp|time|ts)":"[^"]*"')


def same(a, b):
    """Status, body (but the time) and every header (Retry-After within a second)."""
    assert a[0] == b[0]
    assert TS.sub(b"T", a[2]) == TS.sub(b"T", b[2])
    ha, hb = dict(a[1]), dict(b[1])
    for k in ("retry-after", "ratelimit-reset", "x-ratelimit-reset"):
        if k in ha and k in hb:
            assert abs(int(ha.pop(k)) - int(hb.pop(k))) <= 1, k
    assert ha == hb


CASES = [
    ("not_found", 404, "GET", "/nope", {}, b""),
    ("method", 405, "POST", "/v1/readonly", {}, b"x"),
    ("no_key", 401, "GET", "/key/x", {}, b""),
    ("bad_key", 401, "GET", "/key/x", {"x-api-key": "eg_live_nope"}, b""),
    ("ip", 403, "GET", "/ip/x", {}, b""),
    ("too_large", 413, "POST", "/v1/echo", {"Content-Length": "2000000"}, b"x"),
    ("validation", 422, "GET", "/val/x?q=zero", {}, b""),
    ("bad_gateway", 502, "GET", "/dead/x", {}, b""),
    ("timeout", 504, "GET", "/slow/x?ms=3000", {}, b""),
    ("maintenance", 503, "GET", "/v1/maintenance", {}, b""),
    ("bad_path", 400, "GET", "/v1/%zz", {}, b""),
    ("upstream_error", 422, "POST", "/v1/errors/problem/validation", {"content-type": "application/json"}, b"{}"),
    ("head", 404, "HEAD", "/nope", {}, b""),
    ("translated_html_502", 502, "GET", "/v1/html-error", {}, b""),
    ("chunked_200", 200, "GET", "/v1/chunked", {}, b""),
]


@pytest.mark.parametrize("name,status,method,path,headers,body", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("over", ["h2c", "h2"])
def test_error_same_as_http11(gw, over, name, status, method, path, headers, body):
    headers = dict(headers, **{"x-request-id": f"req-{name}-{over}", "accept": "application/problem+json"})
    a = h1(gw.port, method, path, headers, body)
    b = h2(gw.tport if over == "h2" else gw.port, method, path, headers, body, tls=gw.ca if over == "h2" else None)
    assert a[0] == status, a
    same(a, b)


@pytest.mark.parametrize("over", ["h2c", "h2"])
def test_rate_limit_429_same_as_http11(gw, over):
    hd = {"x-request-id": "req-rl"}
    assert h1(gw.port, "GET", "/once/x", hd, b"")[0] == 200
    a = h1(gw.port, "GET", "/once/x", hd, b"")
    b = h2(gw.tport if over == "h2" else gw.port, "GET", "/once/x", hd, b"", tls=gw.ca if over == "h2" else None)
    assert a[0] == 429 and dict(a[1]).get("retry-after")
    same(a, b)


def test_idempotency_replay_same_as_http11(gw):
    hd = {"x-request-id": "req-idem", "idempotency-key": "key-h2-1", "content-type": "application/json"}
    first = h1(gw.port, "POST", "/idem/x", hd, b'{"a":1}')
    assert first[0] == 200
    again = h1(gw.port, "POST", "/idem/x", hd, b'{"a":1}')
    replay = h2(gw.port, "POST", "/idem/x", hd, b'{"a":1}')
    same(again, replay)
    mismatch_a = h1(gw.port, "POST", "/idem/x", hd, b'{"a":2}')
    mismatch_b = h2(gw.port, "POST", "/idem/x", hd, b'{"a":2}')
    assert mismatch_a[0] == 422
    same(mismatch_a, mismatch_b)


def test_upgrade_h2c_still_http11(gw):
    """curl --http2 on http:// sends Upgrade: h2c: answered over HTTP/1.1 (test_upgrade.py)."""
    out = curl("--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", f"http://127.0.0.1:{gw.port}/v1/hello")
    assert out == "1.1 200"


# ---------------------------------------------------------------- malformed requests (RFC 9113 8.2, 8.3)

BASE = [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/v1/hello")]


@pytest.mark.parametrize("fields", [
    BASE + [("Accept", "*/*")],                      # an uppercase name
    BASE + [("connection", "keep-alive")],           # a connection-specific field
    BASE + [("transfer-encoding", "chunked")],
    BASE + [("te", "gzip")],                         # te other than trailers
    [f for f in BASE if f[0] != ":path"],            # a pseudo-header missing
    [f for f in BASE if f[0] != ":method"],
    [("accept", "*/*")] + BASE,                      # a pseudo-header after a regular one
    BASE + [(":path", "/again")],                    # one twice
    BASE + [(":status", "200")],                     # a response pseudo-header
], ids=["uppercase", "connection", "transfer-encoding", "te", "no-path", "no-method", "pseudo-after",
        "pseudo-twice", "status"])
def test_malformed_request_is_a_stream_error(gw, fields):
    c = H2(gw.port)
    try:
        c.headers(1, fields)
        status, _, _, rst = c.response(1)
        assert status is None and rst == PROTOCOL_ERROR
        # the connection goes on
        c.headers(3, BASE)
        assert c.response(3)[0] == 200
    finally:
        c.close()


def test_content_length_mismatch_is_a_stream_error(gw):
    c = H2(gw.port)
    try:
        c.headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "t"), (":path", "/v1/echo"),
                      ("content-length", "10")], end=False)
        c.send(frame(DATA, END_STREAM, 1, b"12345"))
        assert c.response(1)[3] == PROTOCOL_ERROR
    finally:
        c.close()


def test_garbage_after_preface_is_a_connection_error(gw):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    try:
        s.sendall(PREFACE + b"\x00\x00\x04\xff\xff\xff\xff\xff\xffnope")  # not SETTINGS first
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        assert bytes([GOAWAY]) in data  # a GOAWAY, then the close
    finally:
        s.close()
    assert request(gw.port, "GET", "/v1/hello").status == 200


# ---------------------------------------------------------------- limits and attacks

def test_settings_advertise_the_limits(cert, tmp_path, upstream_port):
    g = start(cert, tmp_path, upstream_port, http2="""http2:
  max_concurrent_streams: 7
  initial_window_size: 32KiB
  max_header_list_size: 4KiB""")
    try:
        c = H2(g.port)
        c.wait_for_frame(lambda f: f[0] == SETTINGS and not f[1] & ACK)
        assert c.server_settings[3] == 7 and c.server_settings[4] == 32768 and c.server_settings[6] == 4096
        c.close()
    finally:
        assert g.stop() == 0


def test_max_concurrent_streams(cert, tmp_path):
    """Three streams at once are served; a fourth while they are open is
    refused. nghttp2 makes it a connection error (GOAWAY PROTOCOL_ERROR)
    rather than REFUSED_STREAM once the limit was acknowledged."""
    held = HeldUpstream()
    g = start(cert, tmp_path, held.port, http2="http2: { max_concurrent_streams: 3 }")
    try:
        c = H2(g.port)
        c.wait_for_frame(lambda f: f[0] == SETTINGS and not f[1] & ACK)
        for sid in (1, 3, 5):
            c.headers(sid, BASE)
        held.wait_arrived(3)
        c.headers(7, BASE)
        f = c.wait_for_frame(lambda f: (f[0] == RST_STREAM and f[2] == 7) or f[0] == GOAWAY)
        assert f is not None
        if f[0] == GOAWAY:
            assert goaway_code(f) == PROTOCOL_ERROR
        else:
            assert struct.unpack(">I", f[3])[0] == REFUSED_STREAM
        c.close()
        held.release()
        # within the limit, all are served
        c = H2(g.port)
        for sid in (1, 3, 5):
            c.headers(sid, BASE)
        for sid in (1, 3, 5):
            assert c.response(sid)[0] == 200
        c.close()
    finally:
        held.close()
        assert g.stop() == 0


def test_header_list_too_large_is_431_in_the_dialect(cert, tmp_path, upstream_port):
    g = start(cert, tmp_path, upstream_port, http2="http2: { max_header_list_size: 2KiB }")
    try:
        c = H2(g.port)
        c.headers(1, BASE + [("x-big", "b" * 3000)])
        status, heads, body, rst = c.response(1)
        assert status == 431
        assert dict(heads)["content-type"] == "application/problem+json"
        assert json.loads(body)["code"] == "request_header_fields_too_large"
        c.close()
    finally:
        assert g.stop() == 0


def test_request_window_is_enforced(cert, tmp_path, upstream_port):
    """More DATA than the advertised window is a FLOW_CONTROL_ERROR (GOAWAY)."""
    g = start(cert, tmp_path, upstream_port, http2="http2: { initial_window_size: 4KiB, connection_window_size: 64KiB }")
    try:
        c = H2(g.port)
        c.wait_for_frame(lambda f: f[0] == SETTINGS and not f[1] & ACK)
        c.headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "t"), (":path", "/slow/x?ms=100")],
                  end=False)
        c.send(*[frame(DATA, 0, 1, b"z" * 4096) for _ in range(3)])
        f = c.wait_for_frame(lambda f: f[0] in (GOAWAY, RST_STREAM) and f[2] in (0, 1))
        code = goaway_code(f) if f[0] == GOAWAY else struct.unpack(">I", f[3])[0]
        assert code == FLOW_CONTROL_ERROR
        c.close()
    finally:
        assert g.stop() == 0


def test_rapid_reset_gets_goaway_enhance_your_calm(cert, tmp_path, upstream_port):
    g = start(cert, tmp_path, upstream_port, http2="http2: { max_resets: 20, reset_window: 1m }")
    try:
        c = H2(g.port)
        out = b""
        for i in range(50):
            sid = 1 + 2 * i
            out += frame(HEADERS, END_HEADERS | END_STREAM, sid, block(BASE))
            out += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))  # CANCEL
        c.send(out)
        f = c.wait_for_frame(lambda f: f[0] == GOAWAY)
        assert f is not None and goaway_code(f) == ENHANCE_YOUR_CALM
        assert c.read_frame() is None  # then the close
        c.close()
        g.wait_log(lambda l: l.get("code") == "h2_protocol_error" and "rapid reset" in l.get("why", ""),
                   "the rapid reset line", timeout=10)
        # the gateway is fine, for others
        assert request(g.port, "GET", "/v1/hello").status == 200
    finally:
        assert g.stop() == 0


def test_continuation_flood_closes_the_connection(gw):
    c = H2(gw.port)
    try:
        c.send(frame(HEADERS, 0, 1, block(BASE)))  # no END_HEADERS
        filler = literal("x-a", "b" * 10)
        for _ in range(50):
            c.send(frame(CONTINUATION, 0, 1, filler))
        f = c.wait_for_frame(lambda f: f[0] == GOAWAY)
        assert f is None or goaway_code(f) != NO_ERROR  # a GOAWAY with an error, or the close
        assert c.read_frame() is None
    except (ConnectionResetError, BrokenPipeError):
        pass  # the gateway closed while the flood was still being written
    finally:
        c.close()
    assert request(gw.port, "GET", "/v1/hello").status == 200


def test_settings_flood_closes_the_connection(gw):
    c = H2(gw.port)
    try:
        many = frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", 0x100 + i, 1) for i in range(100)))
        c.send(many)
        f = c.wait_for_frame(lambda f: f[0] == GOAWAY)
        assert f is None or goaway_code(f) != NO_ERROR
        assert c.read_frame() is None
    finally:
        c.close()
    assert request(gw.port, "GET", "/v1/hello").status == 200


def test_ping_flood_without_reading_closes_the_connection(cert, tmp_path, upstream_port):
    """PINGs sent while never reading the acks: once the socket backs up,
    acks queue in the session, and past max_outbound_ack it ends."""
    g = start(cert, tmp_path, upstream_port, http2="http2: { max_outbound_ack: 100 }")
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", g.port))
        s.settimeout(20)
        s.sendall(PREFACE + settings())
        ping = frame(PING, 0, 0, b"12345678") * 1000
        for _ in range(5000):  # at most 5 million pings, 85 MB of acks
            try:
                s.sendall(ping)
            except (ConnectionResetError, BrokenPipeError, socket.timeout):
                break
            if any(l.get("code") == "h2_protocol_error" for l in g.log_lines()):
                break
        g.wait_log(lambda l: l.get("code") == "h2_protocol_error" and "flood" in l.get("why", ""),
                   "the flood's error line", timeout=10)
        assert closed_after(s, 10)
        s.close()
        assert request(g.port, "GET", "/v1/hello").status == 200
    finally:
        assert g.stop() == 0


def test_h2c_off_keeps_the_400(cert, tmp_path, upstream_port):
    port, tport = free_port(), free_port()
    cfg = h2_config(cert, port, tport, upstream_port).replace(f"  - 127.0.0.1:{port}\n",
                                                               f"  - {{ address: 127.0.0.1:{port}, h2c: false }}\n")
    g = Gateway(str(tmp_path), cfg, port, None)
    try:
        r = request(port, raw=PREFACE + settings())
        assert r.status == 400
    finally:
        assert g.stop() == 0


def test_slow_reader_is_cut_after_write_timeout(cert, tmp_path, upstream_port):
    """A client that opens no window for its answers: the stream's request is
    done, its answer waits, and after write_timeout the connection goes."""
    g = start(cert, tmp_path, upstream_port, limits="  write_timeout: 1s")
    try:
        c = H2(g.port, window=0)
        c.headers(1, BASE)
        f = c.wait_for_frame(lambda f: f[0] == HEADERS and f[2] == 1)
        assert f is not None  # the head goes (HEADERS are not flow-controlled), the body cannot
        g.wait_log(lambda l: l.get("kind") == "access" and l.get("path") == "/v1/hello", "the request's line")
        assert closed_after(c.s, 15)
        c.close()
    finally:
        assert g.stop() == 0


def test_drain_sends_goaway_and_finishes_streams(cert, tmp_path):
    held = HeldUpstream()
    g = start(cert, tmp_path, held.port)
    try:
        c = H2(g.port)
        c.headers(1, BASE)
        held.wait_arrived(1)
        g.signal(signal.SIGTERM)
        f = c.wait_for_frame(lambda f: f[0] == GOAWAY)
        assert f is not None and goaway_code(f) == NO_ERROR
        held.release()
        status, _, body, _ = c.response(1)
        assert status == 200 and body == b"held"
        assert c.read_frame() is None  # then the connection closes
        c.close()
        assert g.proc.wait(30) == 0
    finally:
        held.close()
        g.stop()


@pytest.mark.parametrize("path", ["/v1/a b", "/v1/a\tb", "/v1/x HTTP/1.1"])
def test_no_request_smuggling_through_the_path(gw, path):
    """A :path that would change the HTTP/1.1 request line is refused, never
    forwarded: nghttp2 resets it, or the strict parser answers 400."""
    c = H2(gw.port)
    try:
        c.headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", path)])
        status, _, _, rst = c.response(1)
        assert (status, rst) in ((400, None), (None, PROTOCOL_ERROR)), (status, rst)
    finally:
        c.close()


def test_idle_connection_gets_goaway_then_close(cert, tmp_path, upstream_port):
    g = start(cert, tmp_path, upstream_port, limits="  idle_timeout: 1s")
    try:
        c = H2(g.port, timeout=30)
        c.headers(1, BASE)
        assert c.response(1)[0] == 200
        f = c.wait_for_frame(lambda f: f[0] == GOAWAY)  # no stream open: idle_timeout runs
        assert f is not None and goaway_code(f) == NO_ERROR and struct.unpack(">I", f[3][:4])[0] == 1
        assert c.read_frame() is None
        c.close()
    finally:
        assert g.stop() == 0


def test_early_hints_are_forwarded(gw):
    """The upstream's 103 reaches the h2 client as interim HEADERS, as an
    HTTP/1.1 client gets it (RFC 9110 15.2), then the answer."""
    c = H2(gw.port)
    try:
        c.headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/v1/early-hints")])
        status, heads, body, _ = c.response(1)
        assert status == 200 and json.loads(body) == {"message": "hinted"}
        fields = c.streams[1][0]
        assert fields[0] == (":status", "103") and ("link", "</style.css>; rel=preload; as=style") in fields
    finally:
        c.close()
