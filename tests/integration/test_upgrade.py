"""Upgrades (issue 26): `Upgrade: h2c` (what `curl --http2` sends on http://)
is ignored as RFC 9113 3.2 lets a server that does not speak h2c: the
request is served over HTTP/1.1 and the upstream sees none of Upgrade,
HTTP2-Settings or the Connection tokens naming them. Any other upgrade
(WebSocket) is still refused with 501 in the dialect."""
import shutil
import subprocess
import threading

import pytest

from conftest import Gateway, QuietHandler, ThreadedUpstream, free_port, request


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
def test_other_upgrades_are_refused_in_the_dialect(env, offer):
    gw, up = env
    before = len(up.seen)
    r = request(gw.port, "GET", "/ws", headers={"Connection": "Upgrade", "Upgrade": offer,
                                                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                 "Sec-WebSocket-Version": "13"})
    assert r.status == 501 and r.header("Content-Type") == "application/problem+json"
    assert r.json()["code"] == "not_implemented"
    assert len(up.seen) == before
