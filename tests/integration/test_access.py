"""Access control (issue 4): API keys from the store, JWTs, scopes, IP allow
lists, the admin API and `errgate keys`, with every refusal in every dialect."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, DIALECTS, MEDIA, Gateway, free_port, read_error, request, spell, wait_for

ADMIN_TOKEN = "admin-token-for-the-tests-0123456789"
JWT_SECRET = b"jwt-hs256-secret-for-the-tests-0123456789"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_to_raw(der):
    """ECDSA DER signature (openssl dgst) -> JWS r||s."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\x00").rjust(32, b"\x00")
        i += 2 + n
    return out


def make_jwt(claims, alg="HS256", key=None, header=None, secret=JWT_SECRET):
    h = {"alg": alg, "typ": "JWT"}
    h.update(header or {})
    signing = f"{b64u(json.dumps(h).encode())}.{b64u(json.dumps(claims).encode())}".encode()
    if alg == "HS256":
        sig = hmac.new(secret, signing, hashlib.sha256).digest()
    elif alg in ("RS256", "ES256"):
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing,
                             capture_output=True, check=True, timeout=60).stdout
        if alg == "ES256":
            sig = der_to_raw(sig)
    else:
        sig = b""
    return f"{signing.decode()}.{b64u(sig)}"


B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def forge_key(key_id=None):
    """A key in the documented format (docs/access.md) that was never issued."""
    rnd = lambda n: "".join(B62[b % 62] for b in os.urandom(n))
    body = f"eg_live_{key_id or rnd(8)}_{rnd(43)}"
    v = int.from_bytes(hashlib.sha256(body.encode()).digest()[:4], "big")
    check = ""
    for _ in range(6):
        check = B62[v % 62] + check
        v //= 62
    return body + check


def keys_cli(*args):
    """errgate keys with a deadline."""
    return subprocess.run([BIN, "keys", *args], capture_output=True, text=True, timeout=60)


def config(tmp, port, admin, upstream, store="sqlite", refresh="200ms"):
    routes = ""
    for d in DIALECTS:
        routes += f"""
  - {{ path: /d/{d}/key/, upstream: demo, auth: api_key, scopes: [read], dialect: {d} }}
  - {{ path: /d/{d}/admin/, upstream: demo, auth: api_key, admin: true, dialect: {d} }}
  - {{ path: /d/{d}/jwt/, upstream: demo, auth: jwt, scopes: [read], dialect: {d} }}
  - {{ path: /d/{d}/ip/, upstream: demo, allow_ips: [192.0.2.0/24, "2001:db8::/32"], dialect: {d} }}"""
    store_line = f"store: {{ backend: sqlite, path: {tmp}/keys.db, refresh: {refresh} }}" if store == "sqlite" \
        else "store: { backend: memory }"
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
errors: {{ dialect: problem, negotiate: false }}
log: {{ access: stderr }}
{store_line}
auth:
  pepper_file: {tmp}/pepper
  admin_token_file: {tmp}/admin.token
  contact: support@example.com
  rotation_grace: 1h
  jwt:
    secret_file: {tmp}/jwt.secret
    public_keys: [{tmp}/rsa.pub.pem, {tmp}/ec.pub.pem]
    issuer: https://issuer.example
    audience: errgate-tests
    leeway: 5s
plans: {{ free: {{}}, pro: {{}} }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream}"] }}
routes:{routes}
  - {{ path: /any/, upstream: demo, auth: any }}
  - {{ path: /scoped-any/, upstream: demo, auth: api_key, scopes_any: [write, admin] }}
  - {{ path: /v1/, upstream: demo }}
"""


def write_secrets(tmp):
    with open(os.path.join(tmp, "pepper"), "w") as f:
        f.write("pepper-for-the-integration-tests\n")
    with open(os.path.join(tmp, "admin.token"), "w") as f:
        f.write(ADMIN_TOKEN + "\n")
    with open(os.path.join(tmp, "jwt.secret"), "wb") as f:
        f.write(JWT_SECRET)
    run = lambda *a: subprocess.run(a, capture_output=True, check=True, timeout=300)
    run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", f"{tmp}/rsa.pem")
    run("openssl", "pkey", "-in", f"{tmp}/rsa.pem", "-pubout", "-out", f"{tmp}/rsa.pub.pem")
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{tmp}/ec.pem")
    run("openssl", "pkey", "-in", f"{tmp}/ec.pem", "-pubout", "-out", f"{tmp}/ec.pub.pem")
    # a key of the right type that the gateway does not know
    run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", f"{tmp}/rogue.pem")


@pytest.fixture
def authgw(tmp_path, upstream_port):
    tmp = str(tmp_path)
    write_secrets(tmp)
    port, admin = free_port(), free_port()
    gw = Gateway(tmp, config(tmp, port, admin, upstream_port), port, admin)
    gw.tmp = tmp
    gw.upstream_port = upstream_port
    gw.secrets = []
    yield gw
    code = gw.stop()
    assert code == 0, open(gw.log, errors="replace").read()[-3000:]


def admin(gw, method, path, body=None, token=ADMIN_TOKEN):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else b""
    return request(gw.admin_port, method, path, headers=headers, body=data)


def create_key(gw, **spec):
    spec.setdefault("name", "test")
    r = admin(gw, "POST", "/keys", spec)
    assert r.status == 201, r.body
    doc = r.json()
    if not hasattr(gw, "secrets"):
        gw.secrets = []
    gw.secrets.append(doc["secret"])
    return doc["key"]["id"], doc["secret"]


def claims(**extra):
    now = int(time.time())
    c = {"sub": "user_42", "iss": "https://issuer.example", "aud": "errgate-tests", "exp": now + 600,
         "iat": now, "scope": "read write"}
    c.update(extra)
    return c


def assert_refused(r, dialect, status, code, rid=None):
    """The refusal in the dialect: status, media type, the code as the
    dialect spells it in X-Error-Code and in the body (conftest.spell, from
    the catalog's written spellings), and the request id where the dialect
    puts it."""
    assert r.status == status, (dialect, code, r.body)
    assert r.header("Content-Type") == MEDIA.get(dialect, "application/json; charset=utf-8")
    assert r.header("X-Error-Code") == spell(code, dialect), (dialect, r.header("X-Error-Code"))
    back = read_error(r.body, dialect)
    assert back["code"] == spell(code, dialect), (dialect, r.body)
    assert back["message"], (dialect, r.body)
    if rid:
        assert back["request_id"] == rid, (dialect, r.body)
    return back


def test_every_refusal_in_every_dialect(authgw):
    gw = authgw
    good_id, good = create_key(gw, scopes=["read"])
    _, noscope = create_key(gw, scopes=["other"])
    sus_id, suspended = create_key(gw, scopes=["read"])
    _, wrong_ip = create_key(gw, scopes=["read"], ips=["10.9.9.0/24"])
    assert admin(gw, "POST", f"/keys/{sus_id}/suspend", {"reason": "Terms of service violation"}).status == 200
    unknown = forge_key()  # well-formed, checksum right, never issued
    for d in DIALECTS:
        rid = f"t-{d}"
        h = {"X-Request-ID": rid}
        r = request(gw.port, "GET", f"/d/{d}/key/x", headers=h)
        assert_refused(r, d, 401, "missing_api_key", rid)
        assert r.header("WWW-Authenticate").startswith('Bearer realm="errgate"')
        assert_refused(request(gw.port, "GET", f"/d/{d}/key/x", headers={**h, "X-API-Key": "sk_test_123"}),
                       d, 401, "malformed_api_key", rid)
        assert_refused(request(gw.port, "GET", f"/d/{d}/key/x", headers={**h, "X-API-Key": unknown}),
                       d, 401, "invalid_api_key", rid)
        # the last character changed (a key may already end in "x"): its checksum fails
        bad_sum = good[:-1] + ("y" if good.endswith("x") else "x")
        assert_refused(request(gw.port, "GET", f"/d/{d}/key/x", headers={**h, "X-API-Key": bad_sum}),
                       d, 401, "malformed_api_key", rid)
        r = request(gw.port, "GET", f"/d/{d}/key/x", headers={**h, "X-API-Key": suspended})
        assert_refused(r, d, 403, "suspended_api_key", rid)
        r = request(gw.port, "GET", f"/d/{d}/key/x", headers={**h, "X-API-Key": noscope})
        assert_refused(r, d, 403, "insufficient_scope", rid)
        assert 'error="insufficient_scope"' in r.header("WWW-Authenticate")
        r = request(gw.port, "GET", f"/d/{d}/key/x", headers={**h, "X-API-Key": wrong_ip})
        assert_refused(r, d, 403, "ip_not_allowed", rid)
        assert_refused(request(gw.port, "GET", f"/d/{d}/ip/x", headers=h), d, 403, "ip_not_allowed", rid)
        assert_refused(request(gw.port, "GET", f"/d/{d}/admin/x", headers={**h, "X-API-Key": good}),
                       d, 403, "insufficient_scope", rid)
        assert_refused(request(gw.port, "GET", f"/d/{d}/jwt/x", headers=h), d, 401, "unauthorized", rid)
        bad = make_jwt(claims(exp=int(time.time()) - 3600))
        assert_refused(request(gw.port, "GET", f"/d/{d}/jwt/x", headers={**h, "Authorization": f"Bearer {bad}"}),
                       d, 401, "invalid_token", rid)
        ok = request(gw.port, "GET", f"/d/{d}/key/x", headers={**h, "X-API-Key": good})
        assert ok.status == 200 and ok.json()["headers"]["x-key-id"] == good_id


def test_refusal_details_match_the_seeds(authgw):
    gw = authgw
    sus_id, suspended = create_key(gw, scopes=["search:basic"])
    admin(gw, "POST", f"/keys/{sus_id}/suspend", {"reason": "Terms of service violation"})
    body = request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": suspended}).json()
    assert body["suspension_reason"] == "Terms of service violation"
    assert body["contact"] == "support@example.com"
    assert body["status"] == 403 and body["code"] == "suspended_api_key"
    _, k = create_key(gw, scopes=["search:basic"])
    body = request(gw.port, "GET", "/d/typed/key/x", headers={"X-API-Key": k}).json()["error"]
    assert body["code"] == "INSUFFICIENT_PERMISSIONS" and body["type"] == "authorization_error"
    assert body["details"]["required_permission"] == "read"
    assert body["details"]["current_permissions"] == ["search:basic"]
    _, k = create_key(gw, scopes=["read"], ips=["192.168.1.0/24", "10.0.0.1"])
    body = request(gw.port, "GET", "/d/typed/key/x", headers={"X-API-Key": k}).json()["error"]
    assert body["code"] == "IP_NOT_ALLOWED"
    assert body["details"] == {**body["details"], "client_ip": "127.0.0.1",
                               "allowed_ips": ["192.168.1.0/24", "10.0.0.1"]}


def test_key_in_authorization_bearer_and_credentials_not_forwarded(authgw):
    gw = authgw
    kid, k = create_key(gw, scopes=["read", "write"], owner="user_7", plan="pro")
    r = request(gw.port, "GET", "/d/problem/key/x", headers={"Authorization": f"Bearer {k}"})
    assert r.status == 200, r.body
    seen = r.json()["headers"]
    assert seen["x-consumer-id"] == "user_7" and seen["x-key-id"] == kid and seen["x-scopes"] == "read write"
    assert "authorization" not in seen
    r = request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k})
    assert "x-api-key" not in r.json()["headers"]


def test_spoofed_principal_headers_are_stripped(authgw):
    gw = authgw
    kid, k = create_key(gw, scopes=["read"])
    spoof = {"X-Consumer-ID": "admin", "X-Key-ID": "root", "X-Scopes": "admin everything"}
    seen = request(gw.port, "GET", "/d/problem/key/x", headers={**spoof, "X-API-Key": k}).json()["headers"]
    assert seen["x-consumer-id"] == kid and seen["x-key-id"] == kid and seen["x-scopes"] == "read"
    # on a route without auth they are dropped, not passed on
    seen = request(gw.port, "GET", "/v1/open", headers=spoof).json()["headers"]
    assert not {"x-consumer-id", "x-key-id", "x-scopes"} & set(seen)


def test_suspension_through_the_admin_api_applies_at_once_on_every_worker(authgw):
    gw = authgw
    kid, k = create_key(gw, scopes=["read"])
    for _ in range(8):
        assert request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status == 200
    assert admin(gw, "POST", f"/keys/{kid}/suspend", {"reason": "abuse"}).status == 200
    # every new connection may land on either worker: none lets the key through
    codes = {request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status for _ in range(40)}
    assert codes == {403}
    assert admin(gw, "POST", f"/keys/{kid}/resume").status == 200
    assert request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status == 200
    assert admin(gw, "POST", f"/keys/{kid}/revoke", {"reason": "leaked"}).status == 200
    r = request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k})
    assert r.status == 401 and r.json()["code"] == "invalid_api_key"
    r = admin(gw, "POST", f"/keys/{kid}/resume")
    assert r.status == 400 and r.json()["code"] == "validation_error"


def test_cli_changes_reach_the_running_gateway(authgw):
    gw = authgw
    out = keys_cli("create", "--config", gw.path, "--name", "cli", "--scopes", "read", "--plan", "free",
                   "--owner", "u1")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    kid, k = doc["key"]["id"], doc["secret"]
    gw.secrets.append(k)
    assert doc["key"]["plan"] == "free" and doc["key"]["scopes"] == ["read"]
    wait_for(lambda: request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status == 200,
             interval=0.1, what="the gateway to see the key the CLI created")
    out = keys_cli("suspend", "--config", gw.path, kid, "--reason", "billing")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status == 403,
             interval=0.1, what="the suspension to reach the gateway")
    out = keys_cli("list", "--config", gw.path, "--format", "json")
    listed = {x["id"]: x for x in json.loads(out.stdout)["keys"]}
    assert listed[kid]["status"] == "suspended" and listed[kid]["reason"] == "billing"
    assert k not in out.stdout
    # bad input: exit codes and one line on stderr
    for args, code in [(["show", "--config", gw.path, "zzzzzzzz"], 4), (["show", "--config", gw.path, "bad!"], 3),
                       (["suspend", "--config", gw.path, kid], 2), (["create", "--config", gw.path], 3),
                       (["create", "--config", gw.path, "--name", "x", "--ips", "10.0.0.1/8"], 3),
                       (["frobnicate"], 2), (["list"], 2)]:
        out = keys_cli(*args)
        assert out.returncode == code, (args, out.returncode, out.stderr)
        assert out.stderr.startswith("errgate: ") and out.stderr.count("\n") == 1, out.stderr


def test_rotation_keeps_the_old_secret_for_the_grace_period(authgw):
    gw = authgw
    kid, old = create_key(gw, scopes=["read"])
    r = admin(gw, "POST", f"/keys/{kid}/rotate", {"grace": "1h"})
    assert r.status == 200, r.body
    new = r.json()["secret"]
    gw.secrets.append(new)
    assert new != old and new.startswith(f"eg_live_{kid}_")
    assert r.json()["key"]["previous_secret_valid_until"] is not None
    for k in (old, new):
        assert request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status == 200
    r = admin(gw, "POST", f"/keys/{kid}/rotate", {"grace": "0s"})
    newer = r.json()["secret"]
    gw.secrets.append(newer)
    assert request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": newer}).status == 200
    for k in (old, new):
        assert request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status == 401


def test_expired_key_is_invalid(authgw):
    gw = authgw
    r = admin(gw, "POST", "/keys", {"name": "past", "expires": "2020-01-01"})
    assert r.status == 400 and r.json()["code"] == "validation_error"
    expires = int(time.time()) + 5
    kid, k = create_key(gw, scopes=["read"], expires=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)))
    assert request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status == 200
    assert time.time() < expires, "the key was not used before it expired: the 200 above proves nothing"
    r = wait_for(lambda: (lambda r: r if r.status != 200 else None)(
        request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k})), interval=0.2,
        what="the key to expire")
    assert time.time() >= expires, "refused before it expired"
    assert r.status == 401 and r.json()["code"] == "invalid_api_key"


def test_scopes_any_of(authgw):
    gw = authgw
    _, w = create_key(gw, scopes=["write"])
    _, r_only = create_key(gw, scopes=["read"])
    assert request(gw.port, "GET", "/scoped-any/x", headers={"X-API-Key": w}).status == 200
    body = request(gw.port, "GET", "/scoped-any/x", headers={"X-API-Key": r_only}).json()
    assert body["code"] == "insufficient_scope" and body["required_any_of"] == ["write", "admin"]


def test_jwt_algorithms_and_edge_cases(authgw):
    gw = authgw
    t = gw.tmp

    def call(token, path="/d/problem/jwt/x"):
        return request(gw.port, "GET", path, headers={"Authorization": f"Bearer {token}"})

    for tok in (make_jwt(claims()), make_jwt(claims(), "RS256", f"{t}/rsa.pem"),
                make_jwt(claims(), "ES256", f"{t}/ec.pem")):
        r = call(tok)
        assert r.status == 200, r.body
        seen = r.json()["headers"]
        assert seen["x-consumer-id"] == "user_42" and seen["x-scopes"] == "read write"
        assert "authorization" not in seen  # a consumed token is never forwarded (issue 20 item 12)
    # a token without the route's scope is authenticated but not authorized
    assert call(make_jwt(claims(scope="other"))).json()["code"] == "insufficient_scope"
    now = int(time.time())
    cases = {
        "alg none": make_jwt(claims(), "none"),
        "expired": make_jwt(claims(exp=now - 60)),
        "not yet valid": make_jwt(claims(nbf=now + 600)),
        "wrong audience": make_jwt(claims(aud="someone-else")),
        "wrong audience list": make_jwt(claims(aud=["a", "b"])),
        "wrong issuer": make_jwt(claims(iss="https://evil.example")),
        "unknown RSA key": make_jwt(claims(), "RS256", f"{t}/rogue.pem"),
        "wrong HMAC secret": make_jwt(claims(), secret=b"not-the-secret-at-all-0123456789"),
        # key confusion: HS256 signed with the RSA public key the gateway trusts
        "HS256 with the public key": make_jwt(claims(), secret=open(f"{t}/rsa.pub.pem", "rb").read()),
        "crit header": make_jwt(claims(), header={"crit": ["exp"]}),
        "two segments": "abc.def",
        "garbage": "not a token at all",
    }
    good = make_jwt(claims())
    h, p, s = good.split(".")
    tampered_payload = b64u(json.dumps(claims(sub="admin")).encode())
    cases["tampered payload"] = f"{h}.{tampered_payload}.{s}"
    cases["tampered signature"] = f"{h}.{p}.{s[:-2]}AA"
    reasons = {}
    for name, tok in cases.items():
        r = call(tok)
        assert r.status == 401, (name, r.body)
        body = r.json()
        assert body["code"] == "invalid_token", (name, body)
        assert 'error="invalid_token"' in r.header("WWW-Authenticate")
        reasons[name] = body["reason"]
    assert reasons["expired"] == "expired" and reasons["not yet valid"] == "not_yet_valid"
    assert reasons["alg none"] == "bad_algorithm" and reasons["wrong audience"] == "bad_audience"
    assert reasons["wrong issuer"] == "bad_issuer" and reasons["tampered payload"] == "bad_signature"
    # within the leeway (5s) an expiry just past is still accepted
    assert call(make_jwt(claims(exp=now - 2))).status == 200


def test_auth_any_takes_keys_and_tokens(authgw):
    gw = authgw
    _, k = create_key(gw)
    assert request(gw.port, "GET", "/any/x", headers={"X-API-Key": k}).status == 200
    assert request(gw.port, "GET", "/any/x", headers={"Authorization": f"Bearer {make_jwt(claims())}"}).status == 200
    r = request(gw.port, "GET", "/any/x")
    assert r.status == 401 and r.json()["code"] == "unauthorized"


def test_admin_api_is_protected_and_validates(authgw):
    gw = authgw
    r = admin(gw, "GET", "/keys", token=None)
    assert r.status == 401 and r.json()["code"] == "unauthorized" and r.header("WWW-Authenticate")
    r = admin(gw, "GET", "/keys", token="wrong-token-wrong-token")
    assert r.status == 401 and 'error="invalid_token"' in r.header("WWW-Authenticate")
    assert r.header("Content-Type") == "application/problem+json"
    r = request(gw.admin_port, "POST", "/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, body=b"{nope")
    assert r.status == 400 and r.json()["code"] == "invalid_json"
    for bad in ({"scopes": ["a"]}, {"name": "x", "scopes": "bad scope!"}, {"name": "x", "ips": ["nope"]},
                {"name": "x", "env": "prod"}, {"name": "x", "scopes": [1]}):
        r = admin(gw, "POST", "/keys", bad)
        assert r.status == 400 and r.json()["code"] == "validation_error", (bad, r.body)
    assert admin(gw, "GET", "/keys/zzzzzzzz").status == 404
    assert admin(gw, "DELETE", "/keys").status == 405
    kid, k = create_key(gw, name="listed", scopes=["read"])
    listed = admin(gw, "GET", "/keys").json()["keys"]
    assert any(x["id"] == kid and x["name"] == "listed" for x in listed)
    assert k not in admin(gw, "GET", "/keys").body.decode()
    r = admin(gw, "POST", f"/keys/{kid}/suspend", {})
    assert r.status == 400  # a suspension needs a reason


def test_admin_api_without_a_token_is_forbidden(tmp_path, upstream_port):
    port, adm = free_port(), free_port()
    text = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{adm}
store: {{ backend: memory }}
upstreams: {{ demo: {{ servers: ["127.0.0.1:{upstream_port}"] }} }}
routes: [{{ path: /k/, upstream: demo, auth: api_key }}]
"""
    gw = Gateway(str(tmp_path), text, port, adm)
    try:
        r = request(adm, "GET", "/keys", headers={"Authorization": "Bearer anything-at-all"})
        assert r.status == 403 and r.json()["code"] == "forbidden"
        assert request(port, "GET", "/k/x").json()["code"] == "missing_api_key"
    finally:
        assert gw.stop() == 0


def test_keys_survive_a_restart(tmp_path, upstream_port):
    tmp = str(tmp_path)
    write_secrets(tmp)
    port, adm = free_port(), free_port()
    gw = Gateway(tmp, config(tmp, port, adm, upstream_port), port, adm)
    try:
        kid, k = create_key(gw, scopes=["read"])
        sus_id, sus = create_key(gw, scopes=["read"])
        admin(gw, "POST", f"/keys/{sus_id}/suspend", {"reason": "x"})
        assert request(port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status == 200
    finally:
        assert gw.stop() == 0
    gw = Gateway(tmp, config(tmp, port, adm, upstream_port), port, adm)
    try:
        assert request(port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status == 200
        assert request(port, "GET", "/d/problem/key/x", headers={"X-API-Key": sus}).status == 403
        shown = admin(gw, "GET", f"/keys/{kid}").json()["key"]
        assert shown["last_used"] is not None  # written back before the first gateway exited
    finally:
        assert gw.stop() == 0


def test_removed_store_gives_503_then_recovers(authgw):
    gw = authgw
    _, k = create_key(gw, scopes=["read"])
    db = os.path.join(gw.tmp, "keys.db")
    os.rename(db, db + ".moved")
    r = wait_for(lambda: (lambda r: r if r.status == 503 else None)(
        request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k})), interval=0.1,
        what="the removed store to be noticed")
    assert r.json()["code"] == "service_unavailable" and int(r.header("Retry-After")) >= 1
    ready = request(gw.admin_port, "GET", "/ready")
    assert ready.status == 503 and ready.json()["store"]["state"] == "down"
    r = admin(gw, "POST", "/keys", {"name": "while-down"})
    assert r.status == 503 and r.header("Retry-After")
    os.rename(db + ".moved", db)
    wait_for(lambda: request(gw.port, "GET", "/d/problem/key/x", headers={"X-API-Key": k}).status == 200,
             interval=0.1, what="the gateway to come back with the store")


def test_ipv6_allow_lists(tmp_path, upstream_port):
    tmp = str(tmp_path)
    port, adm = free_port(), free_port()
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    text = f"""
listen: "[::1]:{port}"
admin_listen: 127.0.0.1:{adm}
store: {{ backend: memory }}
auth: {{ admin_token_file: {tmp}/admin.token }}
upstreams: {{ demo: {{ servers: ["127.0.0.1:{upstream_port}"] }} }}
routes:
  - {{ path: /loop/, upstream: demo, allow_ips: ["::1/128"] }}
  - {{ path: /doc/, upstream: demo, allow_ips: ["2001:db8::/32"] }}
  - {{ path: /k/, upstream: demo, auth: api_key }}
"""
    import socket
    from conftest import read_response

    def req6(p, headers=None):
        with socket.create_connection(("::1", port), timeout=10) as s:
            h = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            s.sendall(f"GET {p} HTTP/1.1\r\nHost: x\r\n{h}\r\n".encode())
            return read_response(s)[0]

    gw = Gateway(tmp, text, port, adm)  # ready at its "started" line: every listener is bound
    try:
        assert req6("/loop/x").status == 200
        r = req6("/doc/x")
        assert r.status == 403 and r.json()["client_ip"] == "::1" and r.json()["allowed_ips"] == ["2001:db8::/32"]
        tok = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
        ok = json.loads(request(adm, "POST", "/keys", headers=tok, body=b'{"name":"v6","ips":["::1"]}').body)["secret"]
        no = json.loads(request(adm, "POST", "/keys", headers=tok,
                                body=b'{"name":"v6b","ips":["2001:db8::/48"]}').body)["secret"]
        assert req6("/k/x", {"X-API-Key": ok}).status == 200
        assert req6("/k/x", {"X-API-Key": no}).json()["code"] == "ip_not_allowed"
    finally:
        assert gw.stop() == 0


def test_no_secret_ever_reaches_the_logs(authgw):
    gw = authgw
    _, k = create_key(gw, scopes=["read"])
    kid2, k2 = create_key(gw, scopes=["read"])
    new = admin(gw, "POST", f"/keys/{kid2}/rotate", {}).json()["secret"]
    gw.secrets.append(new)
    tok = make_jwt(claims())
    for key in (k, k2, new, k[:-3] + "abc"):
        request(gw.port, "GET", "/d/problem/key/x?api_key=" + key, headers={"X-API-Key": key})
        request(gw.port, "GET", "/d/problem/key/x", headers={"Authorization": f"Bearer {key}"})
    request(gw.port, "GET", "/d/problem/jwt/x", headers={"Authorization": f"Bearer {tok}"})
    request(gw.port, "GET", "/d/problem/jwt/x", headers={"Authorization": f"Bearer {tok[:-4]}AAAA"})
    admin(gw, "GET", "/keys", token="wrong-token-for-the-log-test")
    gw.stop()
    text = open(gw.log, "rb").read().decode("utf-8", "replace")
    assert "/d/problem/key/x" in text  # the requests were logged
    for secret in gw.secrets + [k[:-3] + "abc", tok, ADMIN_TOKEN, "wrong-token-for-the-log-test",
                                JWT_SECRET.decode(), "pepper-for-the-integration-tests"]:
        assert secret not in text, "a secret reached the log"
        assert secret[8:40] not in text


def test_auth_codes_in_each_pages_vocabulary(authgw):
    """Issue 27 item 7, read off the seeds' 401/403 examples: jsonapi,
    flat-camel and flat-snake answer a missing or bad credential with
    `unauthorized` (jsonapi's title "Unauthorized"), flat-camel a refusal
    with FORBIDDEN; the precise code stays in details/meta as reason; typed
    keeps MISSING_API_KEY (its page has it)."""
    gw = authgw
    _, noscope = create_key(gw, scopes=["other"])
    r = request(gw.port, "GET", "/d/jsonapi/key/x")
    item = r.json()["errors"][0]
    assert (r.status, item["code"], item["title"], item["meta"]["reason"]) == \
        (401, "unauthorized", "Unauthorized", "missing_api_key")
    assert r.header("X-Error-Code") == "unauthorized"
    body = request(gw.port, "GET", "/d/flat-snake/key/x", headers={"X-API-Key": "sk_test_123"}).json()
    assert (body["error"], body["status_code"], body["details"]["reason"]) == ("unauthorized", 401, "malformed_api_key")
    r = request(gw.port, "GET", "/d/flat-camel/key/x", headers={"X-API-Key": noscope})
    body = r.json()
    assert (r.status, body["error"], body["details"]["reason"]) == (403, "FORBIDDEN", "insufficient_scope")
    assert r.header("X-Error-Code") == "FORBIDDEN"
    body = request(gw.port, "GET", "/d/typed/key/x").json()["error"]
    assert body["code"] == "MISSING_API_KEY" and "reason" not in body.get("details", {})


def test_code_map_is_configurable(tmp_path, upstream_port):
    """errors.code_map: `keep` undoes a dialect's default, a pair applies to
    every dialect, {dialect: {...}} to one; a target outside the catalog is
    refused at load."""
    port, adm = free_port(), free_port()
    text = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{adm}
store: {{ backend: memory }}
errors:
  dialect: flat-snake
  code_map: {{ missing_api_key: keep, not_found: bad_request, typed: {{ missing_api_key: unauthorized }} }}
upstreams: {{ demo: {{ servers: ["127.0.0.1:{upstream_port}"] }} }}
routes:
  - {{ path: /k/, upstream: demo, auth: api_key }}
  - {{ path: /t/, upstream: demo, auth: api_key, dialect: typed }}
"""
    gw = Gateway(str(tmp_path), text, port, adm)
    try:
        body = request(port, "GET", "/k/x").json()
        assert body["error"] == "missing_api_key" and "reason" not in body.get("details", {})
        body = request(port, "GET", "/t/x").json()["error"]
        assert body["code"] == "UNAUTHORIZED" and body["details"]["reason"] == "missing_api_key"
        r = request(port, "GET", "/nowhere")
        assert r.status == 404 and r.json()["error"] == "bad_request" and r.json()["details"]["reason"] == "not_found"
    finally:
        assert gw.stop() == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("not_found: bad_request", "not_found: no_such_code"))
    r = subprocess.run([BIN, "check-config", "--config", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no_such_code" in r.stderr


def test_flat_snake_names_the_callers_permissions_user_permissions(authgw):
    """Issue 27 item 9: flat-snake's insufficient_permissions example says
    user_permissions where typed says current_permissions."""
    gw = authgw
    _, k = create_key(gw, scopes=["user:profile:read"])
    d = request(gw.port, "GET", "/d/flat-snake/key/x", headers={"X-API-Key": k}).json()["details"]
    assert d["user_permissions"] == ["user:profile:read"] and d["required_permission"] == "read"
    assert "current_permissions" not in d
    d = request(gw.port, "GET", "/d/typed/key/x", headers={"X-API-Key": k}).json()["error"]["details"]
    assert d["current_permissions"] == ["user:profile:read"]


def test_optional_authentication_key_limit_or_ip_limit(tmp_path, upstream_port):
    """Issue 27 item 10, flat-snake's "Authenticated requests: 100/min,
    Unauthenticated: 10/min" on one route: a caller with a valid key gets
    the key's limit, an anonymous caller the address's; a key that is there
    but bad is refused (never downgraded to anonymous)."""
    tmp = str(tmp_path)
    with open(os.path.join(tmp, "pepper"), "w") as f:
        f.write("pepper-for-the-integration-tests\n")
    with open(os.path.join(tmp, "admin.token"), "w") as f:
        f.write(ADMIN_TOKEN + "\n")
    port, adm = free_port(), free_port()
    text = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{adm}
workers: 2
errors: {{ dialect: flat-snake }}
store: {{ backend: memory }}
auth: {{ pepper_file: {tmp}/pepper, admin_token_file: {tmp}/admin.token }}
upstreams: {{ demo: {{ servers: ["127.0.0.1:{upstream_port}"] }} }}
routes:
  - path: /search/
    upstream: demo
    auth: {{ api_key: optional }}
    rate_limit: [{{ limit: 100, window: 1m, by: key }}, {{ limit: 10, window: 1m, by: ip }}]
"""
    gw = Gateway(tmp, text, port, adm)
    try:
        _, key = create_key(gw, scopes=["read"])
        for i in range(10):
            r = request(port, "GET", "/search/x")
            assert r.status == 200, (i, r.body)
            assert r.header("X-RateLimit-Limit") == "10"
            assert "x-key-id" not in r.json()["headers"]
        r = request(port, "GET", "/search/x")
        assert r.status == 429 and r.json()["details"]["limit"] == 10
        # the same address with a key: the key's 100/min, not the address's spent 10
        for i in range(12):
            r = request(port, "GET", "/search/x", headers={"X-API-Key": key})
            assert r.status == 200, (i, r.body)
            assert r.header("X-RateLimit-Limit") == "100" and r.json()["headers"]["x-key-id"]
        # a bad key is a 401, not an anonymous request (which would be a 429 here)
        r = request(port, "GET", "/search/x", headers={"X-API-Key": forge_key()})
        assert r.status == 401 and r.json()["details"]["reason"] == "invalid_api_key"
        r = request(port, "GET", "/search/x", headers={"X-API-Key": "sk_test_123"})
        assert r.status == 401 and r.json()["details"]["reason"] == "malformed_api_key"
        r = request(port, "GET", "/search/x", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert r.status == 401
    finally:
        assert gw.stop() == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("auth: {{ api_key: optional }}".replace("{{", "{").replace("}}", "}"),
                                "auth: { api_key: optional }\n    scopes: [read]"))
    r = subprocess.run([BIN, "check-config", "--config", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "optional" in r.stderr
