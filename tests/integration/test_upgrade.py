"""Upgrades (issue 26, docs/upgrades.md).

`Upgrade: h2c` (what `curl --http2` sends on http://) is ignored as RFC 9113
3.2 lets a server that does not speak h2c: the request is served over
HTTP/1.1 and the upstream sees none of Upgrade, HTTP2-Settings or the
Connection tokens naming them.

A route with `upgrade: {protocols: [websocket]}` tunnels WebSocket: the
handshake is checked (RFC 6455 shape, 400 in the dialect), passes every
stage (a rate limit counts it), goes to the upstream with Connection and
Upgrade, and after its 101 the two sockets are joined byte for byte, over
plain HTTP and TLS, with an idle timeout and a byte limit per direction.
An upstream that does not switch is relayed like any response; an upgrade a
route does not allow is 400 upgrade_not_allowed. The echo upstream and the
client below speak WebSocket by hand (handshake, masked frames).

HSTS (`listen[].tls.hsts`): every response on a TLS listener carries
Strict-Transport-Security, errors included; a plain listener's never do."""
import base64
import hashlib
import os
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import threading

import pytest

from conftest import (BIN, Gateway, Pipelined, QuietHandler, ThreadedUpstream, closed_after, free_port,
                      read_response, request, wait_for)

OPENSSL = shutil.which("openssl")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


class Recording(ThreadedUpstream):
    def __init__(self):
        outer = self
        self.seen, self.lock = [], threading.Lock()

        class H(QuietHandler):
            def do_GET(self):
                with outer.lock:
                    outer.seen.append({k.lower(): v for k, v in self.headers.items()})
                body = b'{"ok":true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(H)


@pytest.fixture
def env(tmp_path):
    up = Recording()
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
errors: {{ dialect: problem }}
upstreams:
  up: {{ servers: ["127.0.0.1:{up.port}"] }}
routes:
  - {{ path: /, upstream: up }}
""", port, admin)
    yield gw, up
    assert gw.stop() == 0
    up.close()


H2C = {"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA"}
WS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}


def test_upgrade_h2c_is_served_over_http11(env):
    gw, up = env
    r = request(gw.port, "GET", "/a", headers=H2C)
    assert r.status == 200 and r.body == b'{"ok":true}', r.body
    seen = up.seen[-1]
    assert "upgrade" not in seen and "http2-settings" not in seen, seen
    assert "upgrade" not in (seen.get("connection") or "").lower()


def test_curl_http2_on_http_gets_http11(env):
    gw, up = env
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl not found")
    out = subprocess.run([curl, "-s", "--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                          f"http://127.0.0.1:{gw.port}/b"], capture_output=True, text=True, timeout=30)
    assert out.stdout == "200 1.1", (out.stdout, out.stderr)


@pytest.mark.parametrize("offer", ["websocket", "h2c, websocket", "WebSocket"])
def test_upgrades_a_route_does_not_allow_are_refused_in_the_dialect(env, offer):
    gw, up = env
    before = len(up.seen)
    r = request(gw.port, "GET", "/ws", headers=dict(WS, Upgrade=offer))
    assert r.status == 400 and r.header("Content-Type") == "application/problem+json"
    body = r.json()
    assert body["code"] == "upgrade_not_allowed", body
    assert body["protocol"] == offer.split(", ")[-1] and body["allowed"] == [], body
    assert r.header("Connection") == "close"
    assert len(up.seen) == before


# ------------------------------------------------------------- WebSocket by hand

def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame(payload, opcode=1, mask=None):
    """One final frame; masked (as a client must) when mask is 4 bytes."""
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([0x80 | opcode, m | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, m | 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, m | 127]) + struct.pack("!Q", n)
    if mask:
        head += mask
        payload = xor(payload, mask)
    return head + payload


def xor(data, mask):
    if not data:
        return data
    full = (mask * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(full, "big")).to_bytes(len(data), "big")


class Reader:
    """Exact reads off a socket, with what came before (after a head) first."""

    def __init__(self, sock, pre=b""):
        self.sock, self.buf = sock, pre

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError(f"closed after {len(self.buf)} of {n} bytes")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        """(opcode, payload), unmasked."""
        b0, b1 = self.exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.exact(8))[0]
        mask = self.exact(4) if b1 & 0x80 else None
        data = self.exact(n)
        return b0 & 0x0F, xor(data, mask) if mask else data


class EchoUpstream:
    """A WebSocket echo server (and a little HTTP): it answers the handshake
    with 101 and a text frame "hello" in the same write, then echoes every
    frame until a close, which it answers and closes. Paths: /refuse/ is a
    403 in JSON, /other/ switches to a protocol nobody offered, anything
    without Upgrade is a 200."""

    def __init__(self, tls=None):
        """tls: an ssl.SSLContext to serve https with."""
        outer = self
        self.heads, self.connections, self.lock = [], 0, threading.Lock()
        self.hinted = threading.Event()

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                with outer.lock:
                    outer.connections += 1
                if tls:
                    try:
                        self.request = tls.wrap_socket(self.request, server_side=True)
                    except OSError:
                        return
                rd = Reader(self.request)
                while True:
                    try:
                        while b"\r\n\r\n" not in rd.buf:
                            chunk = self.request.recv(65536)
                            if not chunk:
                                return
                            rd.buf += chunk
                    except OSError:
                        return
                    head, rd.buf = rd.buf.split(b"\r\n\r\n", 1)
                    lines = head.decode("latin-1").split("\r\n")
                    path = lines[0].split(" ")[1]
                    hdrs = {k.lower(): v for k, v in (l.split(": ", 1) for l in lines[1:])}
                    with outer.lock:
                        outer.heads.append((path, hdrs))
                    if "upgrade" not in hdrs:
                        body = b'{"plain":true}'
                        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                             b"Strict-Transport-Security: max-age=5\r\n"
                                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                        continue
                    if path.startswith("/refuse/"):
                        body = b'{"error":{"code":"forbidden","message":"no sockets for you"}}'
                        self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                        continue
                    if path.startswith("/hints/"):  # 1xx the client is slow to read, then the 101
                        for i in range(8):
                            self.request.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </%d>; rel=preload; x=%s\r\n\r\n"
                                                 % (i, b"h" * 8000))
                        outer.hinted.set()
                    proto = "gopher" if path.startswith("/other/") else "websocket"
                    self.request.sendall(
                        f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: {proto}\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Accept: {accept_of(hdrs.get('sec-websocket-key', ''))}\r\n\r\n".encode()
                        + frame(b"hello"))
                    try:
                        while True:
                            op, data = rd.frame()
                            if op == 8:
                                self.request.sendall(frame(data, 8))
                                if tls:
                                    self.request = self.request.unwrap()  # close_notify
                                self.request.shutdown(socket.SHUT_WR)
                                while self.request.recv(65536):
                                    pass
                                return
                            self.request.sendall(frame(data, op))
                    except (ConnectionError, OSError):
                        return

        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def handshake(sock, path, headers=None, host="test.local"):
    h = dict(WS, Host=host)
    h.update(headers or {})
    sock.sendall(f"GET {path} HTTP/1.1\r\n".encode() + b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items())
                 + b"\r\n")
    resp, rest = read_response(sock)
    return resp, Reader(sock, rest)


def echo_session(sock, path, host="test.local"):
    """A handshake, the upstream's greeting, echoes small and large (past the
    high water mark, so both directions stop and start reading), the close
    handshake and the end of the connection. Returns the 101."""
    resp, rd = handshake(sock, path, host=host)
    assert resp.status == 101, (resp.status, resp.body)
    assert resp.header("Upgrade") == "websocket" and resp.header("Connection").lower() == "upgrade"
    assert resp.header("Sec-WebSocket-Accept") == accept_of(KEY)
    assert resp.header("X-Request-ID")
    assert rd.frame() == (1, b"hello")
    for i, size in enumerate((5, 300, 70000, 3 * 1024 * 1024)):
        data = os.urandom(size)
        sock.sendall(frame(data, 2, mask=os.urandom(4)))
        assert rd.frame() == (2, data), f"frame {i}"
    sock.sendall(frame(struct.pack("!H", 1000), 8, mask=b"abcd"))
    assert rd.frame() == (8, struct.pack("!H", 1000))
    assert closed_after(sock, 10)
    return resp


def ws_config(port, up, pki=None, tport=None, hsts="{ max_age: 365d, include_subdomains: true }", https=None,
              admin=None):
    tls = f"""
  - address: 127.0.0.1:{tport}
    tls: {{ cert: {pki}/a.pem, key: {pki}/a.key, hsts: {hsts} }}""" if tport else ""
    return f"""
listen:
  - 127.0.0.1:{port}{tls}
{f"admin_listen: 127.0.0.1:{admin}" if admin else ""}
workers: 1
errors: {{ dialect: problem }}
log: {{ access: stderr }}
upstreams:
  ws: {{ servers: ["127.0.0.1:{up}"], keepalive: 8 }}
{f'  secure: {{ servers: ["https://127.0.0.1:{https}"], tls: {{ ca: {pki}/ca.pem, server_name: a.test }} }}' if https else ""}
routes:
{"  - { path: /wss/, upstream: secure, upgrade: { protocols: [websocket] } }" if https else ""}
  - {{ path: /ws/, upstream: ws, upgrade: {{ protocols: [websocket], idle_timeout: 30s }} }}
  - {{ path: /short/, upstream: ws, upgrade: {{ protocols: [websocket], idle_timeout: 1s }} }}
  - {{ path: /small/, upstream: ws, upgrade: {{ protocols: [websocket], max_bytes: 1KiB }} }}
  - {{ path: /limited/, upstream: ws, rate_limit: {{ limit: 1, window: 1h, by: ip }}, upgrade: {{ protocols: [websocket] }} }}
  - {{ path: /refuse/, upstream: ws, upgrade: {{ protocols: [websocket] }} }}
  - {{ path: /one/, upstream: ws, concurrency: 1, upgrade: {{ protocols: [websocket] }} }}
  - {{ path: /hints/, upstream: ws, upgrade: {{ protocols: [websocket] }} }}
  - {{ path: /other/, upstream: ws, upgrade: {{ protocols: [websocket] }} }}
  - {{ path: /mixed/, upstream: ws, upgrade: {{ protocols: [websocket, gopher] }} }}
  - {{ path: /plain/, upstream: ws }}
"""


@pytest.fixture
def ws(tmp_path):
    up = EchoUpstream()
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), ws_config(port, up.port, admin=admin), port, admin)
    yield gw, up
    assert gw.stop() == 0, gw.log_text()[-3000:]
    up.close()


def tunnels(gw):
    return [l for l in gw.log_lines() if l.get("kind") == "tunnel"]


def test_websocket_echo_through_the_gateway(ws):
    gw, up = ws
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        echo_session(s, "/ws/chat?room=1")
    path, seen = [h for h in up.heads if h[0].startswith("/ws/")][-1]
    assert path == "/ws/chat?room=1"
    assert seen["upgrade"] == "websocket" and seen["connection"].lower() == "upgrade", seen
    assert seen["sec-websocket-key"] == KEY and seen["sec-websocket-version"] == "13"
    assert seen.get("x-request-id")
    line = wait_for(lambda: tunnels(gw), 10, what="the tunnel's log line")[-1]
    assert line["end"] == "closed" and line["route"] == "/ws/", line
    sent = 5 + 300 + 70000 + 3 * 1024 * 1024
    assert line["bytes_from_client"] > sent and line["bytes_from_upstream"] > sent, line
    access = [l for l in gw.log_lines() if l.get("kind") == "access" and l.get("status") == 101]
    assert access and access[-1]["request_id"] == line["request_id"]


def test_a_tunneled_connection_never_goes_back_to_the_pool(ws):
    gw, up = ws
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        resp, rd = handshake(s, "/ws/a")
        assert resp.status == 101 and rd.frame() == (1, b"hello")
        # while the tunnel is open, plain requests to the same server get connections of their own
        for _ in range(3):
            r = request(gw.port, "GET", "/plain/x")
            assert r.status == 200 and r.body == b'{"plain":true}'
        s.sendall(frame(b"still here", 1, mask=b"wxyz"))
        assert rd.frame() == (1, b"still here")
    wait_for(lambda: tunnels(gw), 10, what="the tunnel to end")
    r = request(gw.port, "GET", "/plain/y")
    assert r.status == 200 and r.body == b'{"plain":true}'


def metrics(gw):
    text = request(gw.admin_port, "GET", "/metrics").body.decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("errgate_tunnel"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_tunnels_in_metrics(ws):
    gw, up = ws
    assert metrics(gw).get("errgate_tunnels_open") == 0
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        resp, rd = handshake(s, "/ws/m")
        assert resp.status == 101 and rd.frame() == (1, b"hello")
        m = metrics(gw)
        assert m["errgate_tunnels_open"] == 1 and m["errgate_tunnels_total"] == 1, m
        s.sendall(frame(b"abc", 1, mask=b"abcd"))  # 2 + 4 + 3 bytes
        assert rd.frame() == (1, b"abc")
        s.sendall(frame(b"", 8, mask=b"abcd"))  # 6 bytes
        assert rd.frame() == (8, b"")
        assert closed_after(s, 10)
    m = wait_for(lambda: (lambda m: m if m.get("errgate_tunnels_closed_total") == 1 else None)(metrics(gw)), 10,
                 what="the tunnel counted as closed")
    assert m["errgate_tunnels_open"] == 0 and m["errgate_tunnels_total"] == 1, m
    assert m['errgate_tunnel_bytes_total{direction="from_client"}'] == 9 + 6, m
    assert m['errgate_tunnel_bytes_total{direction="from_upstream"}'] == 7 + 5 + 2, m  # hello, abc, close


def test_a_drain_ends_open_tunnels_cleanly(tmp_path):
    up = EchoUpstream()
    port = free_port()
    gw = Gateway(str(tmp_path), ws_config(port, up.port), port, None)
    try:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
            resp, rd = handshake(s, "/ws/d")
            assert resp.status == 101 and rd.frame() == (1, b"hello")
            gw.signal(signal.SIGTERM)
            s.settimeout(20)
            assert s.recv(65536) == b""  # EOF (the write side shut), not a reset
        assert gw.proc.wait(timeout=30) == 0, gw.log_text()[-3000:]
        assert [l["end"] for l in tunnels(gw)] == ["draining"]
    finally:
        gw.stop()
        up.close()


def test_idle_timeout_closes_the_tunnel(ws):
    gw, up = ws
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        resp, rd = handshake(s, "/short/")
        assert resp.status == 101 and rd.frame() == (1, b"hello")
        assert closed_after(s, 20)
    line = wait_for(lambda: tunnels(gw), 10, what="the tunnel's log line")[-1]
    assert line["end"] == "idle timeout", line


def test_byte_limit_closes_the_tunnel(ws):
    gw, up = ws
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        resp, rd = handshake(s, "/small/")
        assert resp.status == 101 and rd.frame() == (1, b"hello")
        s.sendall(frame(b"x" * 500, 2, mask=b"abcd"))  # under 1KiB: echoed
        assert rd.frame() == (2, b"x" * 500)
        s.sendall(frame(b"y" * 2000, 2, mask=b"abcd"))  # past it: the tunnel ends
        with pytest.raises(ConnectionError):
            rd.frame()
    line = wait_for(lambda: tunnels(gw), 10, what="the tunnel's log line")[-1]
    assert line["end"] == "client max_bytes" and line["bytes_from_client"] == 1024, line


def test_an_upstream_refusal_is_relayed_in_the_dialect(ws):
    gw, up = ws
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        resp, _ = handshake(s, "/refuse/")
    assert resp.status == 403 and resp.header("Content-Type") == "application/problem+json"
    assert resp.json()["code"] == "forbidden" and not resp.header("Upgrade")
    assert not tunnels(gw)


def test_an_upstream_switching_to_a_protocol_not_offered_is_502(ws):
    gw, up = ws
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        resp, _ = handshake(s, "/other/")
    assert resp.status == 502 and resp.json()["code"] == "bad_gateway"


def test_only_the_offered_protocols_the_route_allows_are_forwarded(ws):
    gw, up = ws
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        resp, rd = handshake(s, "/mixed/", headers={"Upgrade": "foo/2, websocket, h2c"})
        assert resp.status == 101 and rd.frame() == (1, b"hello")
    path, seen = [h for h in up.heads if h[0].startswith("/mixed/")][-1]
    assert seen["upgrade"] == "websocket", seen


@pytest.mark.parametrize("path,headers,method,message", [
    ("/ws/", {"Sec-WebSocket-Key": "c2hvcnQ="}, "GET", "Sec-WebSocket-Key"),
    ("/ws/", {"Sec-WebSocket-Version": "8"}, "GET", "Sec-WebSocket-Version: 13"),
    ("/ws/", {}, "POST", "GET request"),
    ("/ws/", {"Content-Length": "3"}, "GET", "no body"),
    ("/ws/", {"Upgrade": ","}, "GET", "names no protocol"),
])
def test_bad_websocket_handshakes_are_400_in_the_dialect(ws, path, headers, method, message):
    gw, up = ws
    before = len(up.heads)
    h = dict(WS, **headers)
    r = request(gw.port, method, path, headers=h, body=b"abc" if "Content-Length" in headers else b"")
    assert r.status == 400 and r.header("Content-Type") == "application/problem+json", r.body
    body = r.json()
    assert body["code"] == "bad_request" and message in body["detail"], body
    if "Sec-WebSocket-Version" in headers:
        assert r.header("Sec-WebSocket-Version") == "13"
    assert len(up.heads) == before


def test_a_protocol_the_route_does_not_list_is_refused(ws):
    gw, up = ws
    r = request(gw.port, "GET", "/ws/", headers={"Connection": "upgrade", "Upgrade": "gopher"})
    assert r.status == 400 and r.json()["code"] == "upgrade_not_allowed"
    assert r.json()["protocol"] == "gopher" and r.json()["allowed"] == ["websocket"]


def test_the_rate_limit_counts_the_upgrade_request(ws):
    gw, up = ws
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        resp, rd = handshake(s, "/limited/")
        assert resp.status == 101 and resp.header("RateLimit-Policy"), resp.headers
        assert rd.frame() == (1, b"hello")
        with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s2:
            resp2, _ = handshake(s2, "/limited/")
        assert resp2.status == 429 and resp2.json()["code"] == "rate_limit_exceeded"
        s.sendall(frame(b"ping", 1, mask=b"abcd"))  # the first tunnel goes on
        assert rd.frame() == (1, b"ping")


def test_interim_responses_before_the_101(ws):
    """103s, then the 101: all relayed in order before the tunnel's bytes.
    The client reads late with a small receive buffer, so that the 103s may
    still be queued when the 101 comes (the tunnel then waits for them);
    on loopback the kernel usually takes them all at once, so this checks
    the order more often than the wait."""
    gw, up = ws
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(20)
    s.connect(("127.0.0.1", gw.port))
    with s:
        h = dict(WS, Host="test.local")
        s.sendall(b"GET /hints/ HTTP/1.1\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n")
        assert up.hinted.wait(20)
        p = Pipelined(s)
        statuses = []
        while not statuses or statuses[-1] != 101:
            statuses.append(p.read().status)
        assert statuses == [103] * 8 + [101], statuses
        rd = Reader(s, p.pre)
        assert rd.frame() == (1, b"hello")
        s.sendall(frame(b"after hints", 1, mask=b"abcd"))
        assert rd.frame() == (1, b"after hints")


def test_a_concurrency_slot_is_held_as_long_as_the_tunnel(ws):
    gw, up = ws
    with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s:
        resp, rd = handshake(s, "/one/")
        assert resp.status == 101 and rd.frame() == (1, b"hello")
        with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s2:
            resp2, _ = handshake(s2, "/one/")
        assert resp2.status == 429 and resp2.json()["code"] == "concurrent_limit", resp2.body
    wait_for(lambda: tunnels(gw), 10, what="the first tunnel to end")

    def again():
        with socket.create_connection(("127.0.0.1", gw.port), timeout=20) as s3:
            resp3, rd3 = handshake(s3, "/one/")
            return resp3.status == 101 and rd3.frame() == (1, b"hello")

    wait_for(again, 10, what="the slot given back when the tunnel ended")


def test_upgrade_config_is_checked(tmp_path):
    bad = {
        "upgrade: { protocols: [h2c] }": "h2c is not tunneled",
        "upgrade: { protocols: [] }": "upgrade needs protocols",
        "upgrade: { protocols: [websocket], idle_timeout: 0 }": "idle_timeout must be above 0",
        "upgrade: { protocols: [\"web socket\"] }": "invalid protocol name",
        "upgrade: { protocols: [websocket], max_bytes: lots }": "invalid size",
    }
    for route, want in bad.items():
        path = tmp_path / "bad.yaml"
        path.write_text(f"""
listen: 127.0.0.1:1
upstreams: {{ a: {{ servers: ["127.0.0.1:2"] }} }}
routes:
  - {{ path: /, upstream: a, {route} }}
""")
        out = subprocess.run([BIN, "check-config", "--config", str(path)], capture_output=True, text=True)
        assert out.returncode != 0 and want in out.stderr, (route, out.stderr)


# ------------------------------------------------------------- TLS and HSTS

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if not OPENSSL:
        pytest.skip("the openssl CLI is needed to make test certificates")
    d = str(tmp_path_factory.mktemp("pki"))

    def run(*args):
        subprocess.run([OPENSSL, *args], cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=errgate test ca")
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "a.key",
        "-out", "a.csr", "-subj", "/CN=a.test")
    with open(os.path.join(d, "a.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:a.test\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "a.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-out", "a.pem", "-extfile", "a.ext")
    return d


@pytest.fixture
def wss(tmp_path, pki):
    import ssl
    up = EchoUpstream()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(os.path.join(pki, "a.pem"), os.path.join(pki, "a.key"))
    sup = EchoUpstream(tls=server)
    port, tport = free_port(), free_port()
    gw = Gateway(str(tmp_path), ws_config(port, up.port, pki, tport, https=sup.port), port, None)
    gw.tport = tport
    gw.ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    gw.secure = sup
    yield gw, up
    assert gw.stop() == 0, gw.log_text()[-3000:]
    up.close()
    sup.close()


def tls_socket(gw):
    raw = socket.create_connection(("127.0.0.1", gw.tport), timeout=20)
    return gw.ctx.wrap_socket(raw, server_hostname="a.test")


HSTS = "max-age=31536000; includeSubDomains"


def test_websocket_echo_over_tls(wss):
    gw, up = wss
    with tls_socket(gw) as s:
        resp = echo_session(s, "/ws/secure", host="a.test")
    assert resp.header("Strict-Transport-Security") == HSTS
    line = wait_for(lambda: tunnels(gw), 10, what="the tunnel's log line")[-1]
    assert line["end"] == "closed", line
    path, seen = [h for h in up.heads if h[0].startswith("/ws/")][-1]
    assert seen["x-forwarded-proto"] == "https"


@pytest.mark.parametrize("client_tls", [False, True])
def test_websocket_echo_to_an_https_upstream(wss, client_tls):
    gw, up = wss
    if client_tls:
        s = tls_socket(gw)
    else:
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=20)
    with s:
        echo_session(s, "/wss/x", host="a.test")
    line = wait_for(lambda: tunnels(gw), 10, what="the tunnel's log line")[-1]
    assert line["end"] == "closed" and line["route"] == "/wss/", line
    assert [h for h in gw.secure.heads if h[0] == "/wss/x"]


def test_idle_timeout_over_tls(wss):
    gw, up = wss
    with tls_socket(gw) as s:
        resp, rd = handshake(s, "/short/", host="a.test")
        assert resp.status == 101 and rd.frame() == (1, b"hello")
        with pytest.raises((ConnectionError, OSError)):
            while True:  # the close_notify, then EOF; never anything else
                assert rd.frame() is None
    assert wait_for(lambda: tunnels(gw), 10, what="the tunnel's log line")[-1]["end"] == "idle timeout"


def tls_request(gw, path, headers=None):
    with tls_socket(gw) as s:
        h = {"Host": "a.test"}
        h.update(headers or {})
        s.sendall(f"GET {path} HTTP/1.1\r\n".encode() + b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items())
                  + b"\r\n")
        return read_response(s)[0]


def test_hsts_on_every_response_over_tls_and_never_on_plain(wss):
    gw, up = wss
    ok = tls_request(gw, "/plain/a")
    assert ok.status == 200 and ok.body == b'{"plain":true}'
    # the listener's policy replaces the upstream's own line
    assert [v for k, v in ok.headers if k.lower() == "strict-transport-security"] == [HSTS]
    assert tls_request(gw, "/nowhere").status == 404
    assert tls_request(gw, "/nowhere").header("Strict-Transport-Security") == HSTS
    refused = tls_request(gw, "/refuse/", WS)  # a translated upstream error
    assert refused.status == 403 and refused.header("Strict-Transport-Security") == HSTS
    bad = tls_request(gw, "/ws/", dict(WS, **{"Sec-WebSocket-Version": "7"}))
    assert bad.status == 400 and bad.header("Strict-Transport-Security") == HSTS
    # plain: the upstream's own line passes as it came, the gateway adds none
    assert request(gw.port, "GET", "/plain/a").header("Strict-Transport-Security") == "max-age=5"
    assert request(gw.port, "GET", "/nowhere").header("Strict-Transport-Security") is None
    assert request(gw.port, "GET", "/ws/", headers=dict(WS, Upgrade="gopher")).header(
        "Strict-Transport-Security") is None
    # plain HTTP sent to the TLS port: its 400 is plain HTTP, without HSTS
    plain_to_tls = request(gw.tport, "GET", "/plain/a")
    assert plain_to_tls.status == 400 and plain_to_tls.header("Strict-Transport-Security") is None


def test_hsts_over_h2_too(wss):
    """A stream of an h2 connection is answered with its listener's HSTS line."""
    gw, up = wss
    curl = shutil.which("curl")
    assert curl, "curl is needed (deps.sh --test)"
    for path, status in (("/plain/a", 200), ("/nowhere", 404)):
        out = subprocess.run([curl, "-s", "-S", "-k", "--http2", "-D", "-", "-o", "/dev/null", "--max-time", "20",
                              f"https://127.0.0.1:{gw.tport}{path}"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].strip() == f"HTTP/2 {status}", lines
        hsts = [ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("strict-transport-security:")]
        assert hsts == [HSTS], lines


def test_hsts_follows_a_reload(wss, pki):
    gw, up = wss
    assert tls_request(gw, "/nowhere").header("Strict-Transport-Security") == HSTS
    gw.rewrite(ws_config(gw.port, up.port, pki, gw.tport, hsts="{ max_age: 600 }", https=gw.secure.port))
    gw.signal(signal.SIGHUP)
    gw.wait_event("reloaded")
    assert tls_request(gw, "/nowhere").header("Strict-Transport-Security") == "max-age=600"
    gw.rewrite(ws_config(gw.port, up.port, pki, gw.tport, hsts="false", https=gw.secure.port))
    gw.signal(signal.SIGHUP)
    gw.wait_event("reloaded", 2)
    assert tls_request(gw, "/nowhere").header("Strict-Transport-Security") is None


def test_hsts_options_are_checked(tmp_path, pki):
    cases = {
        "{ max_age: 1d, preload: true }": "preload needs include_subdomains",
        "{ max_age: 30d, include_subdomains: true, preload: true }": "preload needs",
        "{ maxage: 1d }": "unknown key 'maxage'",
    }
    for hsts, want in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(ws_config(1, 2, pki, 3, hsts=hsts))
        out = subprocess.run([BIN, "check-config", "--config", str(path)], capture_output=True, text=True)
        assert out.returncode != 0 and want in out.stderr, (hsts, out.stderr)
