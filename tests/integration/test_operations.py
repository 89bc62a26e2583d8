"""Operating the gateway (issue 27): a second `errgate serve` on an address
that is taken refuses to start (exit 4) instead of sharing the port through
SO_REUSEPORT, while a reload and a restart on the same port still work; the
admin listener's own errors are in the configured dialect with request ids,
as every error errgate writes."""
import re
import signal
import socket
import subprocess

import pytest

from conftest import MEDIA, BIN, Gateway, base_config, free_port, read_error, request, spell, wait_for

LISTEN_EXIT = 4  # docs/operations.md: 4 cannot listen


def serve_exit(tmp_path, config_text, name="second.yaml"):
    """Runs errgate serve on a configuration that must not start: its exit
    code and stderr. One that does start is stopped and fails the test."""
    path = tmp_path / name
    path.write_text(config_text)
    p = subprocess.Popen([BIN, "serve", "--config", str(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        pytest.fail(f"the second gateway started and ran; stderr:\n{err[-2000:]}")
    return p.returncode, err


def test_a_second_gateway_on_the_same_address_refuses_to_start(gateway, tmp_path):
    """Before: the second process bound the port too (SO_REUSEPORT) and the
    kernel gave it half of the new connections."""
    other_admin = free_port()
    code, err = serve_exit(tmp_path, base_config(gateway.port, other_admin, gateway.upstream_port))
    assert code == LISTEN_EXIT, err
    assert (f"errgate: cannot listen on 127.0.0.1:{gateway.port}: another process holds it "
            "(Address already in use)") in err
    assert '"event":"started"' not in err
    # the admin port of the refused one was never bound
    s = socket.socket()
    try:
        assert s.connect_ex(("127.0.0.1", other_admin)) != 0
    finally:
        s.close()
    # the first gateway has every connection
    for _ in range(20):
        r = request(gateway.port, "GET", "/nowhere")
        assert r.status == 404 and r.header("X-Request-ID")


def test_a_taken_admin_address_refuses_too_before_any_worker_binds(gateway, tmp_path):
    port = free_port()
    code, err = serve_exit(tmp_path, base_config(port, gateway.admin_port, gateway.upstream_port))
    assert code == LISTEN_EXIT, err
    assert (f"errgate: admin: cannot listen on 127.0.0.1:{gateway.admin_port}: another process holds it"
            in err)
    # probed before the workers bound: their port was never listening
    s = socket.socket()
    try:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        s.close()
    assert request(gateway.admin_port, "GET", "/health").status == 200


def test_a_port_held_by_another_program_is_refused(tmp_path, upstream_port):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(8)
    port = holder.getsockname()[1]
    try:
        code, err = serve_exit(tmp_path, base_config(port, free_port(), upstream_port))
        assert code == LISTEN_EXIT, err
        assert f"cannot listen on 127.0.0.1:{port}: another process holds it" in err
    finally:
        holder.close()


def test_reload_keeps_its_own_listeners_and_a_restart_takes_the_port_back(tmp_path, upstream_port):
    """The probe must not refuse the instance itself: a SIGHUP reload binds
    nothing new, and a restart on the same port right after a stop starts
    even with the old connections still in TIME_WAIT on it."""
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), base_config(port, admin, upstream_port), port, admin)
    try:
        for _ in range(5):  # the gateway closes these: TIME_WAIT on its side of the port
            r = request(port, "GET", "/v1/hello", headers={"Connection": "close"})
            assert r.status == 200
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        assert gw.proc.poll() is None
        assert request(port, "GET", "/v1/hello").status == 200
    finally:
        assert gw.stop() == 0
    again = tmp_path / "again"
    again.mkdir()
    gw2 = Gateway(str(again), base_config(port, admin, upstream_port), port, admin)
    try:
        wait_for(lambda: request(port, "GET", "/v1/hello").status == 200, what="the restarted gateway")
    finally:
        assert gw2.stop() == 0


# ---------------------------------------------------------------- the admin listener's errors

ADMIN_TOKEN = "admin-token-for-the-operations-tests-42"


def admin_config(tmp, port, admin, upstream, dialect="typed", admin_extra=""):
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN + "\n")
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
{admin_extra}
workers: 1
errors: {{ dialect: {dialect}, negotiate: true }}
store: {{ backend: memory }}
auth: {{ admin_token_file: {tmp}/admin.token }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream}"] }}
routes:
  - {{ path: /v1/, upstream: demo }}
"""


@pytest.fixture
def admingw(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), admin_config(str(tmp_path), port, admin, upstream_port), port, admin)
    yield gw
    assert gw.stop() == 0


def assert_admin_error(r, status, code, dialect="typed", rid=None):
    """An admin error as the gateway writes its own: the dialect's shape and
    media type, the code as the dialect spells it in the body and in
    X-Error-Code, and one request id in the header and the body."""
    assert r.status == status, r.body
    assert r.header("Content-Type") == MEDIA.get(dialect, "application/json; charset=utf-8")
    e = read_error(r.body, dialect)
    assert e["code"] == spell(code, dialect) and r.header("X-Error-Code") == spell(code, dialect)
    assert r.header("X-Request-ID") and e["request_id"] == r.header("X-Request-ID")
    if rid:
        assert e["request_id"] == rid
    else:
        assert re.fullmatch(r"req_[0-9a-f]{32}", e["request_id"]), e["request_id"]
    assert r.header("Date") and r.header("Cache-Control") == "no-store"
    return e


def test_admin_404_405_400_413_and_401_are_in_the_configured_dialect(admingw):
    """Before: {"error":"not_found"} and friends, in no dialect (issue 27)."""
    gw = admingw
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = request(gw.admin_port, "GET", "/nothing")
    e = assert_admin_error(r, 404, "not_found")
    assert e["message"] == ("No admin resource at /nothing: the admin listener serves /health, /ready, "
                            "/metrics, /metrics.json, /alerts, /keys, /usage and the dashboard at /.")
    # the caller's request id is kept, as the gateway keeps it
    r = request(gw.admin_port, "GET", "/nothing", headers={"X-Request-ID": "adm-trace-1"})
    assert_admin_error(r, 404, "not_found", rid="adm-trace-1")
    for path in ("/health", "/ready"):
        r = request(gw.admin_port, "POST", path, body=b"{}")
        assert_admin_error(r, 405, "method_not_allowed")
        assert r.header("Allow") == "GET, HEAD"
    r = request(gw.admin_port, "DELETE", "/keys", headers=auth)
    assert_admin_error(r, 405, "method_not_allowed")
    r = request(gw.admin_port, "POST", "/keys", headers=auth, body=b"{nope")
    e = assert_admin_error(r, 400, "invalid_json")
    assert e["message"].startswith("The body must be a JSON object")
    r = request(gw.admin_port, raw=b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    e = assert_admin_error(r, 400, "bad_request")
    assert e["message"] == "The request is not valid HTTP/1.1."
    r = request(gw.admin_port, raw=b"POST /keys HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert_admin_error(r, 413, "payload_too_large")
    r = request(gw.admin_port, "GET", "/keys", headers={"Authorization": "Bearer wrong-token-wrong-token"})
    assert_admin_error(r, 401, "unauthorized")
    assert 'error="invalid_token"' in r.header("WWW-Authenticate")
    r = request(gw.admin_port, "GET", "/keys")
    assert_admin_error(r, 401, "unauthorized")
    # negotiation, as on the gateway
    r = request(gw.admin_port, "GET", "/nothing", headers={"Accept": "application/problem+json"})
    assert_admin_error(r, 404, "not_found", dialect="problem")
    # HEAD: the head alone
    r = request(gw.admin_port, "HEAD", "/nothing")
    assert r.status == 404 and r.body == b"" and int(r.header("Content-Length")) > 0
    # what is not an error is as before, with a request id
    r = request(gw.admin_port, "GET", "/health")
    assert r.status == 200 and r.json()["status"] == "ok" and r.header("X-Request-ID")


def test_admin_dialect_of_its_own(tmp_path, upstream_port):
    """admin.dialect sets the admin listener's dialect apart from errors.dialect."""
    port, admin = free_port(), free_port()
    cfg = admin_config(str(tmp_path), port, admin, upstream_port, dialect="typed",
                       admin_extra="admin: { dialect: flat-snake }")
    gw = Gateway(str(tmp_path), cfg, port, admin)
    try:
        assert_admin_error(request(admin, "GET", "/nothing"), 404, "not_found", dialect="flat-snake")
        assert_admin_error(request(admin, "GET", "/keys"), 401, "unauthorized", dialect="flat-snake")
        # the gateway's own errors keep errors.dialect
        r = request(port, "GET", "/nowhere")
        assert r.status == 404 and read_error(r.body, "typed")["code"] == "NOT_FOUND"
    finally:
        assert gw.stop() == 0
    bad = admin_config(str(tmp_path), port, admin, upstream_port, admin_extra="admin: { dialect: klingon }")
    (tmp_path / "bad.yaml").write_text(bad)
    out = subprocess.run([BIN, "check-config", str(tmp_path / "bad.yaml")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 3 and "unknown dialect 'klingon'" in out.stderr
