"""Shared fixtures for the integration tests: real processes on loopback,
free ports chosen at run time, raw sockets so every byte is under control."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

BIN = os.environ.get("ERRGATE_BIN", os.path.join(os.path.dirname(__file__), "../../build/errgate"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


class Response:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)


def read_response(sock, head_only=False):
    """Reads one HTTP/1.1 response (Content-Length, chunked or until close)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    _, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers = [tuple(x.split(": ", 1)) for x in lines[1:]]
    resp = Response(int(status), reason, headers, b"")
    if head_only or resp.status in (204, 304) or 100 <= resp.status < 200:
        return resp, rest
    cl = resp.header("Content-Length")
    te = resp.header("Transfer-Encoding")
    if te and "chunked" in te.lower():
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            line, rest = rest.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            while len(rest) < size + 2:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed inside a chunk")
                rest += chunk
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                break
        resp.body = body
        return resp, rest
    if cl is not None:
        n = int(cl)
        while len(rest) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside a body")
            rest += chunk
        resp.body = rest[:n]
        return resp, rest[n:]
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    resp.body = rest
    return resp, b""


def request(port, method="GET", path="/", headers=None, body=b"", raw=None, timeout=10.0):
    """One request on a fresh connection; returns the Response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if raw is None:
            h = {"Host": "test.local"}
            if body:
                h["Content-Length"] = str(len(body))
            h.update(headers or {})
            raw = f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(
                f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n" + body
        s.sendall(raw)
        resp, _ = read_response(s, head_only=(method == "HEAD"))
        return resp


def closed_after(sock, timeout=3.0):
    """True when the peer closes the connection (reads EOF) within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class Gateway:
    """An errgate serve process with a config written from a template."""

    def __init__(self, tmp, config_text, port, admin_port):
        self.port, self.admin_port = port, admin_port
        self.path = os.path.join(tmp, "gateway.yaml")
        self.log = os.path.join(tmp, "gateway.log")
        with open(self.path, "w") as f:
            f.write(config_text)
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.path], stdout=self.logf, stderr=self.logf)
        wait_port(port, self.proc)

    def rewrite(self, config_text):
        with open(self.path, "w") as f:
            f.write(config_text)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def log_lines(self):
        self.logf.flush()
        out = []
        with open(self.log, "rb") as f:
            for line in f:
                line = line.strip()
                if line.startswith(b"{"):
                    out.append(json.loads(line))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def upstream_port():
    port = free_port()
    proc = subprocess.Popen([BIN, "demo-upstream", "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port(port, proc)
    yield port
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert proc.returncode == 0, "demo upstream did not exit cleanly"


def base_config(port, admin_port, upstream_port, extra_routes="", dialect="problem", limits="", demo_options=""):
    """demo_options: more keys for the demo upstream (", host: rewrite")."""
    dead = free_port()
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin_port}
workers: 2
errors: {{ dialect: {dialect}, negotiate: true }}
limits:
  header_timeout: 1s
  body_timeout: 2s
  max_body_size: 8MiB
  max_uri: 1KiB
  max_header_size: 8KiB
{limits}
log: {{ access: stderr, redact_query: [api_key] }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream_port}"], timeout: 5s{demo_options} }}
  slow: {{ servers: ["127.0.0.1:{upstream_port}"], timeout: 1s }}
  dead: {{ servers: ["127.0.0.1:{dead}"], connect_timeout: 1s }}
  pair: {{ servers: ["127.0.0.1:{dead}", "127.0.0.1:{upstream_port}"], retries: 1 }}
routes:
  - path: /v1/maintenance
    upstream: demo
    maintenance: {{ until: "2030-01-01T06:00:00Z", retry_after: 120 }}
  - path: /v1/readonly
    methods: [GET]
    upstream: demo
{extra_routes}
  - path: /v1/
    upstream: demo
  - path: /slow/
    upstream: slow
  - path: /dead/
    upstream: dead
  - path: /pair/
    upstream: pair
"""


@pytest.fixture
def gateway(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), base_config(port, admin, upstream_port), port, admin)
    gw.upstream_port = upstream_port
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited with {code}; log:\n" + open(gw.log, errors="replace").read()[-4000:]
