"""Hardening (issue 20, items 13, 17, 18, 19) through the real binary: query
secrets hidden from the access log in every spelling a server reads as the
same name, the key store's files private to the owner, JWTs without exp or
a subject refused, and check-config escaping what it quotes."""
import base64
import hashlib
import hmac
import json
import os
import signal
import stat
import subprocess
import time

import pytest

from conftest import BIN, Gateway, free_port, request

JWT_SECRET = b"jwt-hs256-secret-for-the-hardening-tests"
ADMIN_TOKEN = "admin-token-for-the-hardening-tests-0123"


def poll(what, fn, timeout=10.0):
    """fn() until it returns something truthy, or fail saying what was awaited."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims):
    signing = f"{b64u(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64u(json.dumps(claims).encode())}"
    sig = hmac.new(JWT_SECRET, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64u(sig)}"


# ------------------------------------------------------------------ item 13

SECRETS = {
    "API_KEY": "s3cr3t-upper",
    "Api_Key": "s3cr3t-mixed",
    "api%5Fkey": "s3cr3t-encoded",
    "api%5fKEY": "s3cr3t-encoded-lower",
    "api_key[]": "s3cr3t-array",
    "auth[api_key]": "s3cr3t-nested",
    "api.key": "s3cr3t-dotted",
}


def test_query_secrets_are_redacted_in_every_spelling(gateway):
    # base_config: log: { access: stderr, redact_query: [api_key] }
    query = "q=kept&" + "&".join(f"{k}={v}" for k, v in SECRETS.items()) + "&a=1;api_key=s3cr3t-semicolon&z=also-kept"
    rid = "hardening-redact-1"
    r = request(gateway.port, "GET", f"/v1/hello?{query}", headers={"X-Request-ID": rid})
    assert r.status == 200
    line = poll("the access line", lambda: next(
        (l for l in gateway.log_lines() if l.get("kind") == "access" and l.get("request_id") == rid), None))
    path = line["path"]
    raw = open(gateway.log, "rb").read()
    for secret in list(SECRETS.values()) + ["s3cr3t-semicolon"]:
        assert secret not in path, path
        assert secret.encode() not in raw
    want = ("/v1/hello?q=kept&" + "&".join(f"{k}=[REDACTED]" for k in SECRETS)
            + "&a=1;api_key=[REDACTED]&z=also-kept")
    assert path == want


# ------------------------------------------------------------------ items 17 and 18

def auth_config(tmp, port, admin, upstream, require_exp=None):
    extra = "" if require_exp is None else f", require_exp: {require_exp}"
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
errors: {{ dialect: problem, negotiate: false }}
log: {{ access: stderr }}
store: {{ backend: sqlite, path: {tmp}/keys.db, refresh: 200ms }}
auth:
  pepper_file: {tmp}/pepper
  admin_token_file: {tmp}/admin.token
  jwt: {{ secret_file: {tmp}/jwt.secret, leeway: 5s{extra} }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream}"] }}
routes:
  - {{ path: /key/, upstream: demo, auth: api_key }}
  - {{ path: /jwt/, upstream: demo, auth: jwt }}
"""


@pytest.fixture
def authgw(tmp_path, upstream_port):
    tmp = str(tmp_path)
    with open(f"{tmp}/pepper", "w") as f:
        f.write("pepper-for-the-hardening-tests\n")
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN + "\n")
    with open(f"{tmp}/jwt.secret", "wb") as f:
        f.write(JWT_SECRET)
    port, admin = free_port(), free_port()
    # umask 0: left to SQLite the store would be 0666, its -wal and -shm too
    old = os.umask(0)
    try:
        gw = Gateway(tmp, auth_config(tmp, port, admin, upstream_port), port, admin)
    finally:
        os.umask(old)
    gw.tmp = tmp
    gw.upstream_port = upstream_port
    yield gw
    code = gw.stop()
    assert code == 0, open(gw.log, errors="replace").read()[-3000:]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_key_store_files_are_private(authgw):
    gw = authgw
    db = f"{gw.tmp}/keys.db"
    r = request(gw.admin_port, "POST", "/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                                                         "Content-Type": "application/json"},
                body=json.dumps({"name": "m"}).encode())
    assert r.status == 201, r.body
    secret = r.json()["secret"]
    # the gateway keeps the database open: its -wal and -shm are there while it runs
    poll("keys.db-wal and keys.db-shm", lambda: os.path.exists(db + "-wal") and os.path.exists(db + "-shm"))
    assert poll("the new key to be accepted", lambda: request(
        gw.port, "GET", "/key/x", headers={"X-API-Key": secret}).status == 200)
    for f in (db, db + "-wal", db + "-shm"):
        assert mode(f) == 0o600, (f, oct(mode(f)))


def test_keys_cli_creates_a_private_store(tmp_path, upstream_port):
    tmp = str(tmp_path)
    with open(f"{tmp}/pepper", "w") as f:
        f.write("pepper-for-the-hardening-tests\n")
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN + "\n")
    with open(f"{tmp}/jwt.secret", "wb") as f:
        f.write(JWT_SECRET)
    cfg = f"{tmp}/gateway.yaml"
    with open(cfg, "w") as f:
        f.write(auth_config(tmp, free_port(), free_port(), upstream_port))
    out = subprocess.run([BIN, "keys", "create", "--config", cfg, "--name", "cli"], capture_output=True,
                         preexec_fn=lambda: os.umask(0))
    assert out.returncode == 0, out.stderr
    assert mode(f"{tmp}/keys.db") == 0o600
    for f in (f"{tmp}/keys.db-wal", f"{tmp}/keys.db-shm"):
        if os.path.exists(f):  # SQLite removes them at the last close
            assert mode(f) == 0o600, f


def call(gw, token):
    return request(gw.port, "GET", "/jwt/x", headers={"Authorization": f"Bearer {token}"})


def test_jwt_without_exp_or_subject_is_refused(authgw):
    gw = authgw
    now = int(time.time())
    good = call(gw, hs256({"sub": "user_7", "exp": now + 600}))
    assert good.status == 200, good.body
    assert good.json()["headers"]["x-consumer-id"] == "user_7"
    cases = {
        "no exp": ({"sub": "user_7"}, "missing_claim", "no exp claim"),
        "no sub": ({"exp": now + 600}, "missing_claim", "no sub claim"),
        "empty sub": ({"sub": "", "exp": now + 600}, "missing_claim", "sub claim is empty"),
        "numeric sub": ({"sub": 7, "exp": now + 600}, "malformed", "sub is not a printable string"),
    }
    for name, (claims, reason, says) in cases.items():
        r = call(gw, hs256(claims))
        assert r.status == 401, (name, r.body)
        assert r.header("X-Error-Code") == "invalid_token", name
        assert 'error="invalid_token"' in r.header("WWW-Authenticate"), name
        body = r.json()
        assert body["code"] == "invalid_token" and body["reason"] == reason, (name, body)
        assert says in body["detail"], (name, body["detail"])


def test_require_exp_false_lets_tokens_without_exp_in(authgw):
    gw = authgw
    no_exp = hs256({"sub": "user_8"})
    assert call(gw, no_exp).status == 401
    gw.rewrite(auth_config(gw.tmp, gw.port, gw.admin_port, gw.upstream_port, require_exp="false"))
    gw.signal(signal.SIGHUP)
    r = poll("the reload to accept a token without exp", lambda: (lambda x: x if x.status == 200 else None)(
        call(gw, no_exp)))
    assert r.json()["headers"]["x-consumer-id"] == "user_8"
    # a subject is still required
    assert call(gw, hs256({"exp": int(time.time()) + 600})).status == 401


# ------------------------------------------------------------------ item 19

def test_check_config_escapes_what_it_quotes(tmp_path):
    path = str(tmp_path / "c.yaml")
    with open(path, "w") as f:
        f.write('listen: "127.0.0.1:99999\\nc.yaml: ok"\n'
                "upstreams:\n  a: { servers: [127.0.0.1:1], timeout: \"5\\r\\x1b[2J\" }\n"
                "routes:\n  - { path: /x, upstream: a }\n")
    out = subprocess.run([BIN, "check-config", path], capture_output=True)
    assert out.returncode == 3
    text = (out.stdout + out.stderr).decode()
    lines = [l for l in text.split("\n") if l]
    assert len(lines) == 2, lines
    for l in lines:
        assert not any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in l), repr(l)
    assert f"{path}:1:9: invalid address '127.0.0.1:99999\\nc.yaml: ok'" in lines[0]
    assert f"{path}:3:41: invalid duration '5\\r\\x1b[2J'" in lines[1]
