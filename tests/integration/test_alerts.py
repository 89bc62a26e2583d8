"""The error-rate monitor end to end (docs/alerts.md): a burst of 5xx fires
the 5xx rule, the transition is one JSON line in the error log, GET /alerts
shows it, a webhook receives it signed (HMAC-SHA256 over "t.body", checked
here with Python's hmac), and it resolves once the window holds no more
errors; a webhook answering 503 with Retry-After is retried with the same
Idempotency-Key; the admin token guards /alerts; `errgate alerts --format
prometheus-rules` passes `promtool check rules` and `promtool test rules`
with series that cross each default threshold.

Expected values are written here: the rule is configured in the test, the
signature is recomputed from the secret the test chose."""
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import threading

import pytest

from conftest import (BIN, Gateway, QuietHandler, ThreadedUpstream, free_port, python_upstream,
                      request, wait_for)

SECRET = "whsec-test-0123456789abcdef"


class Hooks:
    """A webhook receiver: records every POST (headers, body); answers the
    first `fail` of them 503 with Retry-After: 1, the rest 200."""

    def __init__(self, fail=0):
        outer = self
        self.got, self.fail = [], fail
        self.lock = threading.Lock()

        class H(QuietHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    outer.got.append((dict((k.lower(), v) for k, v in self.headers.items()), body))
                    failing = len(outer.got) <= outer.fail
                if failing:
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Type", "application/json")
                    out = b'{"error":"busy"}'
                else:
                    self.send_response(200)
                    out = b"{}"
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadedUpstream(H)
        self.url = f"http://127.0.0.1:{self.server.port}/hook"

    def events(self):
        with self.lock:
            return [(h, json.loads(b)) for h, b in self.got]

    def close(self):
        self.server.close()


def upstream():
    def do_get(h):
        status = {"/v1/boom": 503, "/v1/ok": 200}.get(h.path, 404)
        body = b'{"ok":true}' if status == 200 else b'{"error":"x"}'
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return python_upstream(do_get)


def config(port, admin, up, hooks_url, extra=""):
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
upstreams:
  app: {{ servers: ["127.0.0.1:{up}"], timeout: 5s }}
routes:
  - {{ path: /v1/, upstream: app }}
  - {{ path: /other/, upstream: app }}
{extra}
alerts:
  evaluate_every: 100ms
  defaults: false
  rules:
    - {{ name: server_errors, match: 5xx, route: /v1/, threshold: 10%, resolve: 5%, min_requests: 5,
        window: 2s, for: 0s, severity: critical }}
  webhooks:
    - {{ url: "{hooks_url}", secret_env: EG_HOOK_SECRET, timeout: 2s, max_attempts: 4 }}
    - {{ url: "{hooks_url}?format=am", format: alertmanager, timeout: 2s }}
"""


def gateway(tmp_path, hooks, extra=""):
    up = upstream()
    port, admin = free_port(), free_port()
    env = dict(os.environ, EG_HOOK_SECRET=SECRET)
    gw = Gateway(str(tmp_path), config(port, admin, up.port, hooks.url, extra), port, admin, env=env)
    gw.up = up
    return gw


def stop(gw):
    code = gw.stop()
    gw.up.close()
    assert code == 0, gw.log_text()[-4000:]
    assert "LeakSanitizer" not in gw.log_text()


def alert_lines(gw, event):
    return [l for l in gw.log_lines() if l.get("kind") == "alert" and l.get("event") == event]


def verify(headers, body_bytes):
    """The X-Errgate-Signature of a delivery, checked as a receiver would."""
    sig = headers["x-errgate-signature"]
    parts = dict(p.split("=", 1) for p in sig.split(","))
    want = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + body_bytes, hashlib.sha256).hexdigest()
    return hmac.compare_digest(parts["v1"], want)


def test_burst_of_5xx_fires_logs_lists_signs_and_resolves(tmp_path):
    hooks = Hooks()
    gw = gateway(tmp_path, hooks)
    try:
        # healthy traffic first, on another route too: nothing fires
        for _ in range(5):
            assert request(gw.port, path="/v1/ok").status == 200
            assert request(gw.port, path="/other/x").status == 404
        for _ in range(10):
            assert request(gw.port, path="/v1/boom").status == 503
        fired = gw.wait_log(lambda l: l.get("kind") == "alert" and l.get("event") == "alert.firing",
                            "the alert.firing line")[0]
        assert fired["name"] == "server_errors"
        assert fired["route"] == "/v1/"
        assert fired["severity"] == "critical"
        assert fired["match"] == "5xx"
        assert fired["threshold"] == 0.1
        assert fired["matched"] >= 1 and fired["requests"] >= 5
        assert fired["value"] > 0.1

        # GET /alerts: firing, on /v1/ only (once every request is folded in:
        # a worker counts a request after its answer is written)
        doc = wait_for(lambda: (d := request(gw.admin_port, path="/alerts").json())["windows"][0]["all"]["requests"]
                       >= 20 and d, what="the 20 requests in the 1 min window")
        assert doc["enabled"] is True
        firing = doc["firing"]
        assert [(a["name"], a["route"], a["state"]) for a in firing] == [("server_errors", "/v1/", "firing")]
        assert firing[0]["fired_at"] is not None and firing[0]["resolved_at"] is None
        assert [r["name"] for r in doc["rules"]] == ["server_errors"]
        w = [x for x in doc["windows"] if x["window_s"] == 60][0]
        v1 = [r for r in w["routes"] if r["route"] == "/v1/"][0]
        assert v1["requests"] == 15 and v1["status"]["5xx"] == 10 and v1["status"]["2xx"] == 5
        other = [r for r in w["routes"] if r["route"] == "/other/"][0]
        assert other["requests"] == 5 and other["status"]["4xx"] == 5
        assert w["all"]["requests"] == 20
        assert "history" in doc
        lean = request(gw.admin_port, path="/alerts?history=0").json()
        assert "history" not in lean and lean["firing"][0]["name"] == "server_errors"

        # the webhooks: errgate's body, signed; Alertmanager's list, unsigned
        got = wait_for(lambda: len(hooks.got) >= 2 and hooks.got, what="two webhook deliveries")
        mine = [(h, b) for h, b in got if not b.startswith(b"[")]
        am = [(h, b) for h, b in got if b.startswith(b"[")]
        assert len(mine) == 1 and len(am) == 1
        h, b = mine[0]
        assert verify(h, b)
        assert h["x-errgate-event"] == "alert.firing"
        assert h["content-type"] == "application/json"
        assert h.get("idempotency-key")
        body = json.loads(b)
        assert body["event"] == "alert.firing" and body["version"] == "1"
        assert body["alert"]["name"] == "server_errors" and body["alert"]["route"] == "/v1/"
        assert body["alert"]["state"] == "firing"
        # a tampered body does not verify
        assert not verify(h, b.replace(b"firing", b"resolved"))
        hh, ab = am[0]
        assert "x-errgate-signature" not in hh
        one = json.loads(ab)[0]
        assert one["labels"] == {"alertname": "server_errors", "severity": "critical", "service": "errgate",
                                 "instance": one["labels"]["instance"], "route": "/v1/"}
        assert "endsAt" not in one

        # no more errors: the 2 s window empties and it resolves, once
        resolved = gw.wait_log(lambda l: l.get("kind") == "alert" and l.get("event") == "alert.resolved",
                               "the alert.resolved line")[0]
        assert resolved["name"] == "server_errors" and resolved["route"] == "/v1/"
        assert resolved["value"] < 0.05
        got = wait_for(lambda: len(hooks.got) >= 4 and hooks.got, what="the resolved deliveries")
        res = [json.loads(b) for h, b in got if not b.startswith(b"[")][1]
        assert res["event"] == "alert.resolved" and res["alert"]["resolved_at"]
        am_res = [json.loads(b)[0] for h, b in got if b.startswith(b"[")][1]
        assert am_res["endsAt"]
        doc = request(gw.admin_port, path="/alerts").json()
        assert doc["firing"] == []
        assert [a["state"] for a in doc["alerts"]] == ["resolved"]
        assert doc["webhooks"]["delivered"] == 4 and doc["webhooks"]["failed"] == 0
        assert len(alert_lines(gw, "alert.firing")) == 1
    finally:
        stop(gw)
        hooks.close()


def test_webhook_503_with_retry_after_is_retried_with_the_same_key(tmp_path):
    hooks = Hooks(fail=1)
    gw = gateway(tmp_path, hooks)
    try:
        for _ in range(10):
            assert request(gw.port, path="/v1/boom").status == 503
        # the first POST is refused (503, Retry-After: 1); it is sent again
        got = wait_for(lambda: len([1 for h, b in hooks.got if not b.startswith(b"[")]) >= 2 and hooks.got,
                       what="the retried delivery")
        mine = [(h, b) for h, b in got if not b.startswith(b"[")]
        (h1, b1), (h2, b2) = mine[0], mine[1]
        assert b1 == b2
        assert h1["idempotency-key"] == h2["idempotency-key"]
        assert verify(h2, b2)
        retry = gw.wait_log(lambda l: l.get("event") == "webhook_attempt_failed", "the failed attempt's line")[0]
        assert retry["status"] == 503 and retry["decision"] == "retry"
        assert retry["delay_ms"] >= 1000  # Retry-After: 1 was honoured
        wait_for(lambda: request(gw.admin_port, path="/alerts").json()["webhooks"]["delivered"] >= 2,
                 what="both webhooks delivered")
        doc = request(gw.admin_port, path="/alerts").json()
        assert doc["webhooks"]["retried"] == 1 and doc["webhooks"]["failed"] == 0
    finally:
        stop(gw)
        hooks.close()


def test_alerts_needs_the_admin_token_when_one_is_set(tmp_path):
    hooks = Hooks()
    token = "admin-token-0123456789abcdef"
    with open(tmp_path / "admin.token", "w") as f:
        f.write(token + "\n")
    gw = gateway(tmp_path, hooks, extra=f"auth: {{ admin_token_file: {tmp_path}/admin.token }}")
    try:
        r = request(gw.admin_port, path="/alerts")
        assert r.status == 401
        assert r.header("www-authenticate").startswith("Bearer")
        assert request(gw.admin_port, path="/alerts",
                       headers={"Authorization": "Bearer wrong-token-0123456789"}).status == 401
        r = request(gw.admin_port, path="/alerts", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 200 and r.json()["enabled"] is True
        import base64
        basic = base64.b64encode(f"admin:{token}".encode()).decode()
        assert request(gw.admin_port, path="/alerts", headers={"Authorization": f"Basic {basic}"}).status == 200
        bad = base64.b64encode(b"admin:nope").decode()
        assert request(gw.admin_port, path="/alerts", headers={"Authorization": f"Basic {bad}"}).status == 401
        assert request(gw.admin_port, method="POST", path="/alerts").status == 405
        # the dashboard's session cookie: set with the page, good for /alerts, not for /keys
        r = request(gw.admin_port, path="/", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 200
        set_cookie = r.header("set-cookie")
        assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
        cookie = set_cookie.split(";")[0]
        assert cookie.startswith("errgate_admin=")
        assert request(gw.admin_port, path="/alerts", headers={"Cookie": f"a=b; {cookie}"}).status == 200
        assert request(gw.admin_port, path="/ui/app.js", headers={"Cookie": cookie}).status == 200
        exp, mac = cookie.split("=", 1)[1].split(".")
        forged = f"errgate_admin={int(exp) + 3600}.{mac}"
        assert request(gw.admin_port, path="/alerts", headers={"Cookie": forged}).status == 401
        flipped = f"errgate_admin={exp}.{'0' if mac[0] != '0' else '1'}{mac[1:]}"
        assert request(gw.admin_port, path="/alerts", headers={"Cookie": flipped}).status == 401
        assert request(gw.admin_port, path="/keys", headers={"Cookie": cookie}).status == 401
        assert request(gw.admin_port, path="/").status == 401
    finally:
        stop(gw)
        hooks.close()


# --- the same rules for Prometheus ---------------------------------------

PROMTOOL = shutil.which("promtool")


def series(route, status, per_step, steps=80, start_after=0):
    """A counter of errgate_requests_total growing by per_step every 15 s
    (flat at 0 for start_after steps first)."""
    flat = f"0x{start_after} " if start_after else ""
    return (f"      - series: 'errgate_requests_total{{route=\"{route}\",method=\"GET\",status=\"{status}\"}}'\n"
            f"        values: '{flat}0+{per_step}x{steps}'\n")


def alert(name, route, severity, summary):
    return (f"          - exp_labels: {{severity: {severity}, errgate_rule: {name}, route: \"{route}\"}}\n"
            f"            exp_annotations: {{summary: \"{summary}\"}}\n")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_prometheus_rules_pass_promtool_and_fire_on_each_threshold(tmp_path):
    rules = subprocess.run([BIN, "alerts", "--format", "prometheus-rules"], capture_output=True, check=True).stdout
    (tmp_path / "rules.yml").write_bytes(rules)
    out = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 rules found" in out.stdout

    # Per 15 s: /a 90 200s and 10 503s (10% 5xx: errors and 5xx fire);
    # /b 85 200s and 15 429s (15% > 10%: rate limited and errors fire);
    # /c 75 200s and 25 401s (25% > 20%: auth and errors fire);
    # /d 199 200s and 1 500 (0.5%: under every threshold);
    # /e 10 requests of which 5 are 503 but 2 per minute... below min_requests.
    # The errors start after 5 min: nothing fires before; `for` is 30 s.
    inp = "".join([
        series("/a", "200", 90), series("/a", "503", 10, steps=60, start_after=20),
        series("/b", "200", 85), series("/b", "429", 15, steps=60, start_after=20),
        series("/c", "200", 75), series("/c", "401", 25, steps=60, start_after=20),
        series("/d", "200", 199), series("/d", "500", 1, steps=60, start_after=20),
        series("/e", "200", 1), series("/e", "503", 1, steps=60, start_after=20),
    ])

    def t(name, at, alerts):
        exp = "".join(alerts) if alerts else ""
        return (f"      - eval_time: {at}\n        alertname: {name}\n"
                + (f"        exp_alerts:\n{exp}" if exp else "        exp_alerts: []\n"))

    s5 = "5xx at {v} of requests over 1m on {r} (threshold 1%, resolves below 0.5%)"
    er = "errors at {v} of requests over 1m on {r} (threshold 5%, resolves below 2.5%)"
    rl = "429 at {v} of requests over 1m on {r} (threshold 10%, resolves below 5%)"
    au = "401,403 at {v} of requests over 1m on {r} (threshold 20%, resolves below 10%)"
    tests = "".join([
        t("ErrgateServerErrors", "4m", []),
        t("ErrgateServerErrors", "10m", [alert("server_errors", "/a", "critical", s5.format(v="10%", r="/a"))]),
        t("ErrgateErrorRate", "10m", [alert("error_rate", "/a", "warning", er.format(v="10%", r="/a")),
                                      alert("error_rate", "/b", "warning", er.format(v="15%", r="/b")),
                                      alert("error_rate", "/c", "warning", er.format(v="25%", r="/c"))]),
        t("ErrgateRateLimited", "10m", [alert("rate_limited", "/b", "warning", rl.format(v="15%", r="/b"))]),
        t("ErrgateAuthFailures", "10m", [alert("auth_failures", "/c", "warning", au.format(v="25%", r="/c"))]),
        t("ErrgateAuthFailures", "4m", []),
    ])
    (tmp_path / "test.yml").write_text(
        "rule_files: [rules.yml]\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n    input_series:\n"
        + inp + "    alert_rule_test:\n" + tests)
    out = subprocess.run([PROMTOOL, "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_prometheus_rules_hysteresis(tmp_path):
    """10% 5xx fires; 0.7% (under 1%, over the 0.5% resolve threshold) keeps
    it firing; 0.2% resolves it."""
    rules = subprocess.run([BIN, "alerts", "--format", "prometheus-rules"], capture_output=True, check=True).stdout
    (tmp_path / "rules.yml").write_bytes(rules)
    # per 15 s: 1000 requests; 5xx: 100 for 5 min, then 7 for 5 min, then 2
    inp = (series("/a", "200", 1000, steps=60)
           + "      - series: 'errgate_requests_total{route=\"/a\",method=\"GET\",status=\"500\"}'\n"
           + "        values: '0+100x20 2000+7x20 2140+2x20'\n")
    s5 = "5xx at {v} of requests over 1m on /a (threshold 1%, resolves below 0.5%)"

    def t(at, alerts):
        return (f"      - eval_time: {at}\n        alertname: ErrgateServerErrors\n"
                + ("        exp_alerts:\n" + "".join(alerts) if alerts else "        exp_alerts: []\n"))

    tests = (t("4m", [alert("server_errors", "/a", "critical", s5.format(v="9.091%"))])
             + t("9m", [alert("server_errors", "/a", "critical", s5.format(v="0.6951%"))])
             + t("14m", []))
    (tmp_path / "test.yml").write_text(
        "rule_files: [rules.yml]\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n    input_series:\n"
        + inp + "    alert_rule_test:\n" + tests)
    out = subprocess.run([PROMTOOL, "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_reload_keeps_firing_alerts_and_windows(tmp_path):
    """SIGHUP with a changed configuration (a route added before /v1/, the
    rule's window longer): the alert stays firing without a second firing
    line, the window keeps its counts, and it resolves as the new rule says."""
    import signal
    hooks = Hooks()
    gw = gateway(tmp_path, hooks)
    try:
        for _ in range(5):
            assert request(gw.port, path="/v1/ok").status == 200
        for _ in range(10):
            assert request(gw.port, path="/v1/boom").status == 503
        gw.wait_log(lambda l: l.get("event") == "alert.firing", "the alert.firing line")
        wait_for(lambda: request(gw.admin_port, path="/alerts?history=0").json()["windows"][0]["all"]["requests"] == 15,
                 what="the 15 requests counted before the reload")
        text = open(gw.path).read()
        text = text.replace("routes:\n", "routes:\n  - { path: /new/, upstream: app }\n", 1)
        text = text.replace("window: 2s", "window: 4s")
        gw.rewrite(text)
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        # the monitor takes the new configuration at its next evaluation
        doc = wait_for(lambda: (d := request(gw.admin_port, path="/alerts").json())["rules"][0]["window_s"] == 4
                       and d, what="the monitor on the new configuration")
        assert [(a["name"], a["route"], a["state"]) for a in doc["firing"]] == [("server_errors", "/v1/", "firing")]
        w = [x for x in doc["windows"] if x["window_s"] == 60][0]
        v1 = [r for r in w["routes"] if r["route"] == "/v1/"][0]
        assert v1["requests"] == 15 and v1["status"]["5xx"] == 10
        assert [r["route"] for r in w["routes"]] == ["/new/", "/v1/", "/other/", None]
        gw.wait_log(lambda l: l.get("event") == "alert.resolved", "the alert.resolved line")
        assert len(alert_lines(gw, "alert.firing")) == 1
        assert len(alert_lines(gw, "alert.resolved")) == 1
    finally:
        stop(gw)
        hooks.close()


def test_errgate_alerts_lists_the_rules(tmp_path):
    out = subprocess.run([BIN, "alerts", "--format", "json"], capture_output=True, text=True, check=True).stdout
    rules = json.loads(out)
    assert [(r["name"], r["match"], r["threshold"], r["severity"]) for r in rules] == [
        ("error_rate", "errors", 0.05, "warning"), ("server_errors", "5xx", 0.01, "critical"),
        ("rate_limited", "429", 0.10, "warning"), ("auth_failures", "401,403", 0.20, "warning")]
    assert all(r["route"] == "each" and r["window_s"] == 60 and r["for_s"] == 30 and r["min_requests"] == 20
               for r in rules)
    cfg = tmp_path / "g.yaml"
    cfg.write_text("listen: 127.0.0.1:1\nupstreams: { a: { servers: [127.0.0.1:2] } }\n"
                   "routes: [ { path: /v1/, upstream: a } ]\n"
                   "alerts: { defaults: false, rules: [ { name: v1_5xx, match: 5xx, route: /v1/, threshold: 2% } ] }\n")
    rules = json.loads(subprocess.run([BIN, "alerts", "--format", "json", "--config", str(cfg)], capture_output=True,
                                      text=True, check=True).stdout)
    assert [(r["name"], r["route"], r["threshold"], r["resolve"]) for r in rules] == [("v1_5xx", "/v1/", 0.02, 0.01)]
    table = subprocess.run([BIN, "alerts", "--config", str(cfg)], capture_output=True, text=True, check=True).stdout
    assert table.splitlines()[1].split()[:5] == ["v1_5xx", "5xx", "/v1/", "2%", "1%"]
    assert subprocess.run([BIN, "alerts", "--format", "xml"], capture_output=True).returncode == 2
    cfg.write_text("listen: 127.0.0.1:1\nupstreams: { a: { servers: [127.0.0.1:2] } }\n"
                   "routes: [ { path: /v1/, upstream: a } ]\nalerts: { rules: [ { name: x, match: 7xx } ] }\n")
    bad = subprocess.run([BIN, "alerts", "--config", str(cfg)], capture_output=True, text=True)
    assert bad.returncode == 3 and "g.yaml:4:" in bad.stderr and "invalid match '7xx'" in bad.stderr
