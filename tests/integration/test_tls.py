"""TLS termination and TLS to upstreams (docs/tls.md).

Certificates are made at test time with the openssl CLI into a temporary
directory (never committed): a test CA, server certificates for a.test and
b.test (and *.b.test), a second certificate for a.test (reload), client
certificates for alice and bob, and a rogue CA that signed nothing the
gateway trusts. The clients are Python's ssl module and Debian's curl; what
they see (version, certificate, ALPN, resumption) is compared with values
written here."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import http.server
import threading

import pytest

from conftest import (Gateway, free_port, dead_port, read_response, wait_for, QuietHandler, _Server)

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(not OPENSSL, reason="the openssl CLI is needed to make test certificates")


def _run(*args, cwd):
    subprocess.run(list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _leaf(d, name, subj, ca, san=None, client=False):
    """A key and a certificate signed by ca, with its SAN (or clientAuth)."""
    _run(OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=d)
    ext = "extendedKeyUsage=clientAuth\n" if client else f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n"
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\n" + ext)
    _run(OPENSSL, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
         "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    for ca in ("ca", "rogue"):
        _run(OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=errgate test {ca}", cwd=d)
    _leaf(d, "a", "/CN=a.test", "ca", "DNS:a.test,IP:127.0.0.1")
    _leaf(d, "a2", "/CN=a.test/O=second", "ca", "DNS:a.test,IP:127.0.0.1")
    _leaf(d, "b", "/CN=b.test", "ca", "DNS:b.test,DNS:*.b.test")
    _leaf(d, "alice", "/O=Test/CN=alice", "ca", client=True)
    _leaf(d, "bob", "/O=Test/CN=bob", "ca", client=True)
    _leaf(d, "mallory", "/O=Test/CN=mallory", "rogue", client=True)
    return d


def p(pki, name):
    return os.path.join(pki, name)


def client_ctx(pki, cert=None, maxv=None, minv=None, alpn=None):
    ctx = ssl.create_default_context(cafile=p(pki, "ca.pem"))
    if cert:
        ctx.load_cert_chain(p(pki, f"{cert}.pem"), p(pki, f"{cert}.key"))
    if maxv:
        ctx.maximum_version = maxv
    if minv:
        ctx.minimum_version = minv
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_connect(port, ctx, name="a.test", timeout=10.0):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=name)
    except BaseException:
        raw.close()
        raise


def http_get(sock, path, headers=None):
    h = {"Host": "a.test"}
    h.update(headers or {})
    sock.sendall(f"GET {path} HTTP/1.1\r\n".encode() + b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items())
                 + b"\r\n")
    resp, _ = read_response(sock)
    return resp


def tls_get(port, ctx, path, name="a.test", headers=None):
    with tls_connect(port, ctx, name) as s:
        return http_get(s, path, headers)


def tls_config(certs, port, tport, upstream_port, tls_extra="", extra_routes="", upstreams=""):
    """certs: the directory of the certificates, which relative paths
    (client_ca: ca.pem, upstreams' tls) are read against through `tls_dir`."""
    dead = dead_port()
    upstreams = upstreams.replace("ca.pem", f"{certs}/ca.pem").replace("rogue.pem", f"{certs}/rogue.pem") \
        .replace("alice.pem", f"{certs}/alice.pem").replace("alice.key", f"{certs}/alice.key")
    tls_extra = tls_extra.replace("ca.pem", f"{certs}/ca.pem")
    return f"""
listen:
  - 127.0.0.1:{port}
  - address: 127.0.0.1:{tport}
    tls:
      cert: {certs}/a.pem
      key: {certs}/a.key
      certificates: [ {{ cert: {certs}/b.pem, key: {certs}/b.key }} ]
{tls_extra}
workers: 2
errors: {{ dialect: problem }}
limits: {{ header_timeout: 2s, max_body_size: 1KiB }}
log: {{ access: stderr }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream_port}"], timeout: 5s }}
  dead: {{ servers: ["127.0.0.1:{dead}"], connect_timeout: 1s }}
{upstreams}
routes:
{extra_routes}
  - {{ path: /v1/readonly, methods: [GET], upstream: demo }}
  - {{ path: /v1/, upstream: demo }}
  - {{ path: /dead/, upstream: dead }}
"""


def start(pki, tmp, upstream_port, **kw):
    port, tport = free_port(), free_port()
    gw = Gateway(str(tmp), tls_config(pki, port, tport, upstream_port, **kw), port, None)
    gw.tport = tport
    return gw


@pytest.fixture
def tls_gw(pki, tmp_path, upstream_port):
    gw = start(pki, tmp_path, upstream_port)
    yield gw
    assert gw.stop() == 0, gw.log_text()[-3000:]


def peer_cn(sock):
    for rdn in sock.getpeercert()["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


# --------------------------------------------------------------- termination

def test_tls12_and_tls13(pki, tls_gw):
    for ver, want in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        ctx = client_ctx(pki, maxv=ver, minv=ver)
        with tls_connect(tls_gw.tport, ctx) as s:
            assert s.version() == want
            r = http_get(s, "/v1/hello")
            assert r.status == 200
            assert json.loads(r.body)["path"] == "/v1/hello"


@pytest.mark.skipif(not CURL, reason="curl is needed")
def test_curl_tls12_and_tls13(pki, tls_gw):
    for flags, want in ((["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"), (["--tlsv1.3"], "TLSv1.3")):
        out = subprocess.run([CURL, "-sS", "-v", "--http1.1", "--cacert", p(pki, "ca.pem"), *flags, "--resolve",
                              f"a.test:{tls_gw.tport}:127.0.0.1", f"https://a.test:{tls_gw.tport}/v1/hello",
                              "-o", "/dev/null", "-w", "%{http_code}"], capture_output=True, text=True, timeout=30)
        assert out.stdout == "200", out.stderr
        assert f"SSL connection using {want}" in out.stderr


def test_tls12_ciphers_are_modern(pki, tls_gw):
    """Only ECDHE with AEAD ciphers in TLS 1.2 (Mozilla intermediate): a
    client offering CBC only is refused."""
    ctx = client_ctx(pki, maxv=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA")
    with pytest.raises(ssl.SSLError):
        tls_connect(tls_gw.tport, ctx).close()
    ctx = client_ctx(pki, maxv=ssl.TLSVersion.TLSv1_2)
    with tls_connect(tls_gw.tport, ctx) as s:
        name, _, _ = s.cipher()
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)


def test_certificates_close_to_expiry_are_logged(pki, tls_gw):
    """The test certificates live two days: each is named at start."""
    lines = [l["detail"] for l in tls_gw.events("tls_certificate_expiring")]
    assert len(lines) == 1, lines
    assert "/a.pem expires on" in lines[0] and "/b.pem expires on" in lines[0], lines


def test_sni_picks_the_certificate(pki, tls_gw):
    ctx = client_ctx(pki)
    with tls_connect(tls_gw.tport, ctx, "a.test") as s:
        assert peer_cn(s) == "a.test"
    with tls_connect(tls_gw.tport, ctx, "b.test") as s:
        assert peer_cn(s) == "b.test"
    with tls_connect(tls_gw.tport, ctx, "api.b.test") as s:  # the wildcard
        assert peer_cn(s) == "b.test"
    # no SNI (an IP address) and an unknown name: the default certificate
    nover = client_ctx(pki)
    nover.check_hostname = False
    with tls_connect(tls_gw.tport, nover, "127.0.0.1") as s:
        assert peer_cn(s) == "a.test"
    with tls_connect(tls_gw.tport, nover, "other.test") as s:
        assert peer_cn(s) == "a.test"


def test_alpn_offers_h2_then_http11(pki, tls_gw):
    # h2 is on by default (docs/http2.md): a client offering both gets h2
    with tls_connect(tls_gw.tport, client_ctx(pki, alpn=["h2", "http/1.1"])) as s:
        assert s.selected_alpn_protocol() == "h2"
    with tls_connect(tls_gw.tport, client_ctx(pki, alpn=["http/1.1"])) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        assert http_get(s, "/v1/hello").status == 200
    # no ALPN at all: HTTP/1.1
    with tls_connect(tls_gw.tport, client_ctx(pki)) as s:
        assert s.selected_alpn_protocol() is None
        assert http_get(s, "/v1/hello").status == 200


def test_min_version_13_refuses_12(pki, tmp_path, upstream_port):
    gw = start(pki, tmp_path, upstream_port, tls_extra='      min_version: "1.3"')
    try:
        with pytest.raises(ssl.SSLError):
            tls_connect(gw.tport, client_ctx(pki, maxv=ssl.TLSVersion.TLSv1_2)).close()
        with tls_connect(gw.tport, client_ctx(pki)) as s:
            assert s.version() == "TLSv1.3"
    finally:
        assert gw.stop() == 0


def test_plain_http_to_tls_port_is_400_in_the_dialect(tls_gw):
    with socket.create_connection(("127.0.0.1", tls_gw.tport), timeout=10) as s:
        s.sendall(b"GET /v1/hello HTTP/1.1\r\nHost: a.test\r\n\r\n")
        r, _ = read_response(s)
    assert r.status == 400
    assert r.header("Content-Type") == "application/problem+json"
    assert r.header("X-Error-Code") == "bad_request"
    assert r.header("Connection") == "close"
    b = r.json()
    assert b["code"] == "bad_request" and "HTTPS" in b["detail"]
    assert b["request_id"] == r.header("X-Request-ID")


def _scrub(v):
    """The body without what differs by request (its id, its time), at any depth."""
    if isinstance(v, dict):
        return {k: _scrub(x) for k, x in v.items() if k not in ("request_id", "timestamp")}
    if isinstance(v, list):
        return [_scrub(x) for x in v]
    return v


def _normalized(r):
    b = _scrub(r.json())
    hdrs = sorted((k.lower(), v) for k, v in r.headers if k.lower() not in ("date", "x-request-id"))
    return r.status, hdrs, b


def test_gateway_errors_over_tls_are_the_same_as_over_http(pki, tls_gw):
    """404, 405, 413, 502 and a malformed request: status, headers and body
    the same over TLS as over plain HTTP (but for the request id and date)."""
    cases = [("GET", "/nowhere", b"", {}), ("POST", "/v1/readonly", b"", {}),
             ("POST", "/v1/x", b"x" * 2000, {}), ("GET", "/dead/x", b"", {}),
             ("GET", "/nowhere", b"", {"Accept": "application/vnd.api+json"})]
    ctx = client_ctx(pki)
    for method, path, body, extra in cases:
        h = {"Host": "a.test", **extra}
        if body:
            h["Content-Length"] = str(len(body))
        raw = f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(
            f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n" + body
        with socket.create_connection(("127.0.0.1", tls_gw.port), timeout=10) as s:
            s.sendall(raw)
            plain, _ = read_response(s)
        with tls_connect(tls_gw.tport, ctx) as s:
            s.sendall(raw)
            over_tls, _ = read_response(s)
        assert plain.status >= 400, (path, plain.status)
        assert _normalized(plain) == _normalized(over_tls), path
    bad = b"GET /v1/x HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", tls_gw.port), timeout=10) as s:
        s.sendall(bad)
        plain, _ = read_response(s)
    with tls_connect(tls_gw.tport, ctx) as s:
        s.sendall(bad)
        over_tls, _ = read_response(s)
    assert plain.status == 400 and _normalized(plain) == _normalized(over_tls)


def test_forwarded_proto_https(pki, tls_gw):
    seen = json.loads(tls_get(tls_gw.tport, client_ctx(pki), "/v1/hello").body)["headers"]
    assert seen["x-forwarded-proto"] == "https"
    assert seen["forwarded"] == "for=127.0.0.1;proto=https"
    with socket.create_connection(("127.0.0.1", tls_gw.port), timeout=10) as s:
        seen = json.loads(http_get(s, "/v1/hello").body)["headers"]
    assert seen["x-forwarded-proto"] == "http"
    assert seen["forwarded"] == "for=127.0.0.1;proto=http"


def test_keep_alive_and_large_bodies_over_tls(pki, tls_gw):
    """Several requests on one TLS connection, and a body larger than a TLS
    record in both directions (the demo upstream echoes its size)."""
    with tls_connect(tls_gw.tport, client_ctx(pki)) as s:
        for i in range(5):
            assert http_get(s, f"/v1/k{i}").status == 200
        body = b"y" * 900
        s.sendall(b"POST /v1/body HTTP/1.1\r\nHost: a.test\r\nContent-Length: 900\r\n\r\n" + body)
        r, _ = read_response(s)
        assert r.status == 200 and json.loads(r.body)["body_bytes"] == 900


def test_pipelined_requests_over_tls(pki, tls_gw):
    """Many requests in one write, more than the connection buffer holds:
    what OpenSSL decrypted but the buffer could not take waits there and is
    read when the buffer drains (no request lost, none waits for new bytes)."""
    n = 100
    raw = b"".join(f"GET /v1/p{i} HTTP/1.1\r\nHost: a.test\r\nX-Pad: {'p' * 800}\r\n\r\n".encode()
                   for i in range(n))
    assert len(raw) > 64 * 1024
    with tls_connect(tls_gw.tport, client_ctx(pki)) as s:
        s.sendall(raw)
        rest = b""
        for i in range(n):
            r, rest = _read_one(s, rest)
            assert r.status == 200 and json.loads(r.body)["path"] == f"/v1/p{i}"


def _read_one(sock, rest):
    """One response with a Content-Length, reading past it kept in rest."""
    while b"\r\n\r\n" not in rest:
        chunk = sock.recv(65536)
        assert chunk, "closed before a response"
        rest += chunk
    head, rest = rest.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(x.split(": ", 1) for x in lines[1:])
    n = int(headers["Content-Length"])
    while len(rest) < n:
        chunk = sock.recv(65536)
        assert chunk, "closed inside a body"
        rest += chunk
    from conftest import Response
    return Response(int(lines[0].split(" ")[1]), "", list(headers.items()), rest[:n]), rest[n:]


def test_session_resumption(pki, tls_gw):
    for ver in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(pki, maxv=ver, minv=ver)
        with tls_connect(tls_gw.tport, ctx) as s:
            assert http_get(s, "/v1/one").status == 200  # a TLS 1.3 ticket comes after the handshake
            sess = s.session
            assert not s.session_reused
        raw = socket.create_connection(("127.0.0.1", tls_gw.tport), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="a.test", session=sess) as s:
            assert s.session_reused, ver
            assert http_get(s, "/v1/two").status == 200


@pytest.mark.skipif(not OPENSSL, reason="openssl is needed")
def test_session_resumption_s_client(pki, tls_gw):
    out = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{tls_gw.tport}", "-tls1_2", "-reconnect",
                          "-servername", "a.test"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.count("Reused, TLSv1.2") == 5, out.stdout[-2000:]


def test_a_stalled_handshake_is_cut_at_header_timeout(tls_gw):
    """Silent after connecting, or half a ClientHello: closed once
    header_timeout (2s here) passes, without an answer."""
    from conftest import closed_after
    for first in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        with socket.create_connection(("127.0.0.1", tls_gw.tport), timeout=10) as s:
            if first:
                s.sendall(first)
            assert closed_after(s, timeout=15)


def test_handshake_garbage_closes_quietly(tls_gw):
    """Bytes that are neither TLS nor HTTP: the connection closes, the gateway lives."""
    with socket.create_connection(("127.0.0.1", tls_gw.tport), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 64)
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
    with socket.create_connection(("127.0.0.1", tls_gw.port), timeout=10) as s:
        assert http_get(s, "/v1/alive").status == 200


def _ocsp_response(pki, tmp):
    """A DER OCSP response saying a.pem is good, signed by the test CA."""
    serial = subprocess.run([OPENSSL, "x509", "-in", p(pki, "a.pem"), "-noout", "-serial"], capture_output=True,
                            text=True, check=True).stdout.strip().split("=")[1]
    d = str(tmp)
    with open(os.path.join(d, "index.txt"), "w") as f:
        f.write(f"V\t491231235959Z\t\t{serial}\tunknown\t/CN=a.test\n")
    _run(OPENSSL, "ocsp", "-issuer", p(pki, "ca.pem"), "-cert", p(pki, "a.pem"), "-reqout", "req.der", "-no_nonce",
         cwd=d)
    _run(OPENSSL, "ocsp", "-index", "index.txt", "-rsigner", p(pki, "ca.pem"), "-rkey", p(pki, "ca.key"), "-CA",
         p(pki, "ca.pem"), "-reqin", "req.der", "-respout", "a.ocsp", "-ndays", "1", cwd=d)
    return os.path.join(d, "a.ocsp")


def test_ocsp_stapling_from_a_file(pki, tmp_path, upstream_port):
    ocsp = _ocsp_response(pki, tmp_path)
    gw = start(pki, tmp_path, upstream_port, tls_extra=f"      ocsp: {ocsp}")
    try:
        def s_client(name):
            return subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{gw.tport}", "-servername", name,
                                   "-status", "-CAfile", p(pki, "ca.pem")], stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=30).stdout
        out = s_client("a.test")
        assert "OCSP Response Status: successful" in out and "Cert Status: good" in out, out[:2000]
        assert "OCSP response: no response sent" in s_client("b.test")  # b.pem has none
    finally:
        assert gw.stop() == 0
    # a file that is not an OCSP response is refused at load
    bad = tmp_path / "bad.ocsp"
    bad.write_bytes(b"not der")
    port, tport = free_port(), free_port()
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(tls_config(pki, port, tport, upstream_port, tls_extra=f"      ocsp: {bad}"))
    from conftest import BIN
    out = subprocess.run([BIN, "check-config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 3 and "is not a DER OCSP response" in out.stderr, out.stderr


def test_reload_under_load_fails_no_request(pki, tmp_path, upstream_port):
    """New TLS connections, one request each, from two threads while the
    certificates are reloaded five times: every request answered 200."""
    gw = start(pki, tmp_path, upstream_port)
    stop, results = threading.Event(), []

    def load():
        ctx = client_ctx(pki)
        while not stop.is_set():
            try:
                results.append(tls_get(gw.tport, ctx, "/v1/load").status)
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                results.append(repr(e))

    threads = [threading.Thread(target=load) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for i in range(5):
            wait_for(lambda: len(results) > 10 * (i + 1), what="requests under load")
            gw.signal(signal.SIGHUP)
            gw.wait_event("reloaded", i + 1)
        wait_for(lambda: len(results) > 60, what="requests after the reloads")
    finally:
        stop.set()
        for t in threads:
            t.join()
        assert gw.stop() == 0
    assert results and all(r == 200 for r in results), [r for r in results if r != 200][:5]


# --------------------------------------------------------------- client certificates

MTLS_ROUTES = """
  - { path: /cert/only-alice, upstream: demo, auth: client_cert, client_subjects: ["CN=alice,O=Test"] }
  - { path: /cert/limited, upstream: demo, auth: client_cert, rate_limit: { limit: 1, window: 1h, by: key } }
  - { path: /cert/any, upstream: demo, auth: client_cert }
"""


def test_mtls_required(pki, tmp_path, upstream_port):
    gw = start(pki, tmp_path, upstream_port, tls_extra="      client_ca: ca.pem\n      verify: required",
               extra_routes=MTLS_ROUTES)
    try:
        # without a certificate the handshake fails (TLS 1.3: on the first read)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            tls_get(gw.tport, client_ctx(pki), "/v1/x")
        # and the error log says why (one line a second at most)
        line = gw.wait_log(lambda l: l.get("code") == "tls_handshake_failed", "the handshake failure")[0]
        assert "certificate" in line["why"] and line["client"] == "127.0.0.1", line
        # a certificate of another CA is refused too
        with pytest.raises((ssl.SSLError, ConnectionError)):
            tls_get(gw.tport, client_ctx(pki, cert="mallory"), "/v1/x")
        r = tls_get(gw.tport, client_ctx(pki, cert="alice"), "/cert/only-alice")
        assert r.status == 200
        assert json.loads(r.body)["headers"]["x-consumer-id"] == "CN=alice,O=Test"
        r = tls_get(gw.tport, client_ctx(pki, cert="bob"), "/cert/only-alice")
        assert r.status == 403 and r.json()["code"] == "forbidden"
        assert r.json()["subject"] == "CN=bob,O=Test"
        assert tls_get(gw.tport, client_ctx(pki, cert="bob"), "/cert/any").status == 200
        # the subject is the key of `by: key` limits: alice and bob each have their own
        assert tls_get(gw.tport, client_ctx(pki, cert="alice"), "/cert/limited").status == 200
        assert tls_get(gw.tport, client_ctx(pki, cert="alice"), "/cert/limited").status == 429
        assert tls_get(gw.tport, client_ctx(pki, cert="bob"), "/cert/limited").status == 200
    finally:
        assert gw.stop() == 0


def test_mtls_optional(pki, tmp_path, upstream_port):
    gw = start(pki, tmp_path, upstream_port, tls_extra="      client_ca: ca.pem\n      verify: optional",
               extra_routes=MTLS_ROUTES)
    try:
        assert tls_get(gw.tport, client_ctx(pki), "/v1/x").status == 200
        r = tls_get(gw.tport, client_ctx(pki), "/cert/any")
        assert r.status == 401 and r.json()["code"] == "unauthorized"
        assert tls_get(gw.tport, client_ctx(pki, cert="alice"), "/cert/only-alice").status == 200
        # a client_cert route over plain HTTP: no certificate, 401
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            assert http_get(s, "/cert/any").status == 401
        # a forged X-Consumer-ID never reaches the upstream
        r = tls_get(gw.tport, client_ctx(pki, cert="alice"), "/cert/any", headers={"X-Consumer-ID": "root"})
        assert json.loads(r.body)["headers"]["x-consumer-id"] == "CN=alice,O=Test"
    finally:
        assert gw.stop() == 0


def test_mtls_over_h2(pki, tmp_path, upstream_port):
    """The client certificate of the connection is every stream's credential."""
    from test_h2 import H2  # (skips when python3-h2's hpack is missing)
    gw = start(pki, tmp_path, upstream_port, tls_extra="      client_ca: ca.pem\n      verify: optional",
               extra_routes=MTLS_ROUTES)
    try:
        for cert, path, status in (("alice", "/cert/only-alice", 200), ("bob", "/cert/only-alice", 403),
                                   (None, "/cert/any", 401)):
            c = H2(gw.tport, tls=client_ctx(pki, cert=cert, alpn=["h2"]), name="a.test")
            try:
                c.headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", "a.test"), (":path", path)])
                got, _, body, _ = c.response(1)
                assert got == status, (cert, path, body)
                if status == 200:
                    seen = json.loads(body)["headers"]
                    assert seen["x-consumer-id"] == "CN=alice,O=Test" and seen["x-forwarded-proto"] == "https"
                else:
                    assert json.loads(body)["code"] == ("forbidden" if status == 403 else "unauthorized")
            finally:
                c.close()
    finally:
        assert gw.stop() == 0


# --------------------------------------------------------------- reload

def _der_cn_o(sock):
    subj = dict(x[0] for x in sock.getpeercert()["subject"])
    return subj.get("commonName"), subj.get("organizationName")


def test_sighup_reloads_certificates_without_dropping_connections(pki, upstream_port, tmp_path):
    d = str(tmp_path)
    for f in ("a.pem", "a.key", "b.pem", "b.key"):
        shutil.copy(p(pki, f), os.path.join(d, f))
    port, tport = free_port(), free_port()
    gw = Gateway(d, tls_config(d, port, tport, upstream_port), port, None)
    try:
        ctx = client_ctx(pki)
        held = tls_connect(tport, ctx)
        assert http_get(held, "/v1/before").status == 200
        assert _der_cn_o(held) == ("a.test", None)
        # a new certificate for a.test: the next handshakes use it
        shutil.copy(p(pki, "a2.pem"), os.path.join(d, "a.pem"))
        shutil.copy(p(pki, "a2.key"), os.path.join(d, "a.key"))
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        with tls_connect(tport, ctx) as s:
            assert _der_cn_o(s) == ("a.test", "second")
        assert http_get(held, "/v1/after").status == 200  # the old connection lives on
        # a broken certificate: the reload fails, saying why; the running one stays
        with open(os.path.join(d, "a.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        gw.signal(signal.SIGHUP)
        line = gw.wait_event("reload_failed") and gw.events("reload_failed")[-1]
        assert "a.pem" in line["detail"] and "certificate" in line["detail"]
        # a key that does not match its certificate: refused as well
        shutil.copy(p(pki, "a2.pem"), os.path.join(d, "a.pem"))
        shutil.copy(p(pki, "b.key"), os.path.join(d, "a.key"))
        gw.signal(signal.SIGHUP)
        gw.wait_event("reload_failed", 2)
        assert "does not match" in gw.events("reload_failed")[-1]["detail"]
        with tls_connect(tport, ctx) as s:
            assert _der_cn_o(s) == ("a.test", "second")
            assert http_get(s, "/v1/still").status == 200
        assert http_get(held, "/v1/last").status == 200
        held.close()
    finally:
        assert gw.stop() == 0


def test_check_config_reports_a_bad_certificate(pki, tmp_path):
    from conftest import BIN
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
listen: {{ address: 127.0.0.1:1, tls: {{ cert: {p(pki, 'a.pem')}, key: {p(pki, 'b.key')} }} }}
upstreams: {{ u: {{ servers: ["127.0.0.1:2"] }} }}
routes: [ {{ path: /, upstream: u }} ]
""")
    out = subprocess.run([BIN, "check-config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 3
    assert "does not match the certificate" in out.stderr


# --------------------------------------------------------------- TLS to upstreams

BIG = 16 * 1024 * 1024


class TLSUpstream:
    """An https upstream (Python's ssl) that says, per request, whether its
    TLS session was resumed and which SNI name it saw."""

    def __init__(self, pki, cert="a", client_ca=None):
        outer = self
        self.snis = []

        class H(QuietHandler):
            def do_GET(self):
                body = json.dumps({"reused": self.connection.session_reused, "path": self.path,
                                   "client": (self.connection.getpeercert() or {}).get("subject")}).encode()
                if self.path.startswith("/sec/big"):
                    body = bytes(range(256)) * (BIG // 256)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(p(pki, f"{cert}.pem"), p(pki, f"{cert}.key"))
        if client_ca:
            ctx.load_verify_locations(p(pki, client_ca))
            ctx.verify_mode = ssl.CERT_REQUIRED

        def sni(sock, name, _ctx):
            outer.snis.append(name)

        ctx.sni_callback = sni
        self.httpd = _Server(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_upstream_tls_verified_with_sni_and_session_reuse(pki, tmp_path, upstream_port):
    up = TLSUpstream(pki)
    ups = f"""  sec: {{ servers: ["https://127.0.0.1:{up.port}"], keepalive: 0, tls: {{ ca: ca.pem, server_name: a.test }} }}
  byip: {{ servers: ["https://127.0.0.1:{up.port}"], tls: {{ ca: ca.pem }} }}"""
    gw = start(pki, tmp_path, upstream_port, upstreams=ups,
               extra_routes="  - { path: /sec/, upstream: sec }\n  - { path: /byip/, upstream: byip }")
    try:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            first = http_get(s, "/sec/one")
            assert first.status == 200, first.body
            assert json.loads(first.body)["reused"] is False
            # keepalive 0: a new connection per request, resuming the session
            second = json.loads(http_get(s, "/sec/two").body)
            assert second == {"reused": True, "path": "/sec/two", "client": None}
            assert "a.test" in up.snis
            # no server_name: the certificate is checked against the IP address (its SAN has it)
            assert http_get(s, "/byip/x").status == 200
    finally:
        assert gw.stop() == 0
        up.close()


@pytest.mark.parametrize("tls, reason", [
    ("{ ca: rogue.pem, server_name: a.test }", "certificate verify failed: unable to get local issuer certificate"),
    ("{ ca: ca.pem, server_name: wrong.test }", "certificate verify failed: hostname mismatch"),
])
def test_upstream_tls_wrong_ca_is_502_with_the_reason_logged(pki, tmp_path, upstream_port, tls, reason):
    up = TLSUpstream(pki)
    ups = f"""  sec: {{ servers: ["https://127.0.0.1:{up.port}"], tls: {tls} }}"""
    gw = start(pki, tmp_path, upstream_port, upstreams=ups, extra_routes="  - { path: /sec/, upstream: sec }")
    try:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            r = http_get(s, "/sec/x")
        assert r.status == 502
        b = r.json()
        assert b["code"] == "bad_gateway"
        assert "certificate" not in r.body.decode()  # the body says only bad gateway
        line = gw.wait_log(lambda l: l.get("kind") == "error" and l.get("request_id") == b["request_id"],
                           "the error line")[0]
        assert reason in line["why"], line
    finally:
        assert gw.stop() == 0
        up.close()


def test_upstream_tls_large_body_to_a_slow_client(pki, tmp_path, upstream_port):
    """16 MiB (past the kernel buffers) from an https upstream to a client with a small receive
    buffer: reading the upstream stops and resumes with the client
    (backpressure), and no byte is lost or reordered on the way."""
    up = TLSUpstream(pki)
    ups = f"""  sec: {{ servers: ["https://127.0.0.1:{up.port}"], tls: {{ ca: ca.pem, server_name: a.test }} }}"""
    gw = start(pki, tmp_path, upstream_port, upstreams=ups, extra_routes="  - { path: /sec/, upstream: sec }")
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        s.connect(("127.0.0.1", gw.port))
        with s:
            s.sendall(b"GET /sec/big HTTP/1.1\r\nHost: a.test\r\n\r\n")
            r, _ = read_response(s)
        assert r.status == 200 and len(r.body) == BIG
        assert r.body == bytes(range(256)) * (BIG // 256)
    finally:
        assert gw.stop() == 0
        up.close()


def test_upstream_tls_client_certificate(pki, tmp_path, upstream_port):
    up = TLSUpstream(pki, client_ca="ca.pem")
    ups = f"""  sec: {{ servers: ["https://127.0.0.1:{up.port}"], tls: {{ ca: ca.pem, server_name: a.test, cert: alice.pem, key: alice.key }} }}
  nocert: {{ servers: ["https://127.0.0.1:{up.port}"], tls: {{ ca: ca.pem, server_name: a.test }} }}"""
    gw = start(pki, tmp_path, upstream_port, upstreams=ups,
               extra_routes="  - { path: /sec/, upstream: sec }\n  - { path: /nocert/, upstream: nocert }")
    try:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            r = http_get(s, "/sec/x")
            assert r.status == 200
            assert [["commonName", "alice"]] in json.loads(r.body)["client"]
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            assert http_get(s, "/nocert/x").status == 502
    finally:
        assert gw.stop() == 0
        up.close()
