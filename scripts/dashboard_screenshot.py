#!/usr/bin/python3
"""Makes docs/dashboard.png: a gateway under a few minutes of generated
traffic (four routes at different rates and latencies, a burst of 5xx on
one, rate-limit refusals on another, requests for no route), then headless
Chromium opens the dashboard and saves a screenshot.

Usage: scripts/dashboard_screenshot.py [BUILD_DIR] [OUT.png]   (env: MINUTES=4)
Needs chromium, chromium-driver and python3-selenium (scripts/deps.sh --test)."""
import http.server
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
OUT = sys.argv[2] if len(sys.argv) > 2 else "docs/dashboard.png"
MINUTES = float(os.environ.get("MINUTES", "4"))
state = {"boom": False}


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        p = self.path
        delay = {"/v1/orders": 0.012, "/v1/search": 0.003, "/v1/payments": 0.025}.get(p.split("?")[0], 0.001)
        time.sleep(random.expovariate(1 / delay))
        status = 200
        if p.startswith("/v1/payments") and state["boom"] and random.random() < 0.35:
            status = random.choice([500, 502, 503])
        if p.startswith("/v1/orders") and random.random() < 0.02:
            status = 404
        body = b'{"ok":true}' if status == 200 else b'{"error":"failed"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    gp, ap = port(), port()
    tmp = tempfile.mkdtemp(prefix="errgate-dash.")
    with open(f"{tmp}/g.yaml", "w") as f:
        f.write(f"""listen: 127.0.0.1:{gp}
admin_listen: 127.0.0.1:{ap}
workers: 2
log: {{ access: off }}
upstreams:
  shop: {{ servers: ["127.0.0.1:{httpd.server_address[1]}"] }}
  legacy: {{ servers: ["127.0.0.1:{httpd.server_address[1]}", "127.0.0.1:9"], max_fails: 1, fail_timeout: 1h }}
routes:
  - {{ path: /v1/orders, upstream: shop }}
  - {{ path: /v1/search, upstream: shop, rate_limit: {{ limit: 300, window: 1m, by: ip }} }}
  - {{ path: /v1/payments, upstream: shop }}
  - {{ path: /v1/legacy/, upstream: legacy }}
alerts:
  rules:
    - {{ name: server_errors, for: 10s }}
""")
    log = open(f"{tmp}/g.log", "wb")
    gw = subprocess.Popen([f"{BUILD}/errgate", "serve", "--config", f"{tmp}/g.yaml"], stdout=log, stderr=log)
    time.sleep(1)
    stop = threading.Event()

    def client(path, rate):
        while not stop.is_set():
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{gp}{path}", timeout=5).read()
            except Exception:
                pass
            time.sleep(random.expovariate(rate))

    for path, rate in (("/v1/orders", 9), ("/v1/orders", 9), ("/v1/search", 8), ("/v1/payments", 4),
                       ("/v1/legacy/items", 1.5), ("/nowhere", 0.3)):
        threading.Thread(target=client, args=(path, rate), daemon=True).start()
    total = MINUTES * 60
    t0 = time.monotonic()
    while time.monotonic() - t0 < total:
        el = time.monotonic() - t0
        state["boom"] = total * 0.45 < el < total * 0.45 + 70 or el > total - 25
        time.sleep(0.5)

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", f"--user-data-dir={tmp}/profile", "--disable-gpu",
              "--no-proxy-server", "--window-size=1440,1320", "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    d.get(f"http://127.0.0.1:{ap}/")
    deadline = time.monotonic() + 20
    while "live" not in d.find_element("id", "updated").text and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.5)
    d.save_screenshot(OUT)
    d.quit()
    stop.set()
    gw.send_signal(signal.SIGTERM)
    gw.wait(30)
    print(OUT)


main()
