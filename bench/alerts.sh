#!/bin/sh
# bench/alerts.sh - alert latency: from the first request of a burst of 5xx
# to the webhook's arrival (issue 23's target: within the rule's window + 1 s).
#
# A gateway (2 workers) in front of a Python upstream that answers /ok 200
# and /boom 503; a webhook receiver in the same process. Healthy traffic
# runs at RATE requests a second on /ok for WARMUP seconds, then the same
# rate goes to /boom (a burst: every request a 503), and the time from the
# first /boom request sent to the webhook's POST received is measured, for
# each rule below, ROUNDS times each (a fresh gateway per round):
#   - server_errors as the defaults have it (5xx > 1%, 1 min window, at
#     least 20 requests) with `for: 0s`: what evaluation and delivery cost;
#   - the same with the default `for: 30s`: what `for` adds on top;
# evaluate_every is the default 1 s. A benchmark, not a test: nothing asserts.
#
# Usage: bench/alerts.sh [BUILD_DIR]   (env: ROUNDS=3 RATE=50 WARMUP=5)
set -eu
BUILD=${1:-build}
[ -x "$BUILD/errgate" ] || { echo "bench: build first (make build)" >&2; exit 2; }
export ERRGATE="$BUILD/errgate" ROUNDS="${ROUNDS:-3}" RATE="${RATE:-50}" WARMUP="${WARMUP:-5}"
exec /usr/bin/python3 - <<'PY'
import http.client, http.server, json, os, signal, socket, subprocess, sys, tempfile, threading, time

ERRGATE, ROUNDS, RATE, WARMUP = os.environ["ERRGATE"], int(os.environ["ROUNDS"]), float(os.environ["RATE"]), float(os.environ["WARMUP"])

def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass

class Up(Quiet):
    def do_GET(self):
        st = 503 if self.path.startswith("/v1/boom") else 200
        self.send_response(st); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")

arrivals = []
class Hook(Quiet):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        arrivals.append(time.monotonic())
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()

def serve(h):
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h); s.daemon_threads = True
    threading.Thread(target=s.serve_forever, daemon=True).start(); return s

up, hook = serve(Up), serve(Hook)

def round_(rule):
    gp, ap = port(), port()
    tmp = tempfile.mkdtemp(prefix="errgate-alerts-bench.")
    cfg = f"""listen: 127.0.0.1:{gp}
admin_listen: 127.0.0.1:{ap}
workers: 2
log: {{ access: off }}
upstreams: {{ app: {{ servers: ["127.0.0.1:{up.server_address[1]}"] }} }}
routes: [ {{ path: /v1/, upstream: app }} ]
alerts:
  defaults: false
  rules: [ {rule} ]
  webhooks: [ {{ url: "http://127.0.0.1:{hook.server_address[1]}/hook" }} ]
"""
    open(f"{tmp}/g.yaml", "w").write(cfg)
    log = open(f"{tmp}/g.log", "wb")
    p = subprocess.Popen([ERRGATE, "serve", "--config", f"{tmp}/g.yaml"], stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while True:
        try: socket.create_connection(("127.0.0.1", gp), 0.2).close(); break
        except OSError:
            if time.monotonic() > deadline: raise SystemExit("gateway did not start")
            time.sleep(0.05)
    conn = http.client.HTTPConnection("127.0.0.1", gp)
    def paced(path, seconds, stop=None):
        t0 = time.monotonic(); n = 0
        while time.monotonic() - t0 < seconds and not (stop and stop()):
            conn.request("GET", path); conn.getresponse().read(); n += 1
            nxt = t0 + n / RATE
            d = nxt - time.monotonic()
            if d > 0: time.sleep(d)
    paced("/v1/ok", WARMUP)
    arrivals.clear()
    first = time.monotonic()
    paced("/v1/boom", 120, stop=lambda: arrivals)
    lat = arrivals[0] - first if arrivals else float("nan")
    p.send_signal(signal.SIGTERM); p.wait(30)
    return lat

rules = [
    ("5xx > 1%, window 1m, min 20, for 0s", "{ name: server_errors, match: 5xx, threshold: 1%, window: 1m, min_requests: 20, for: 0s }", 60),
    ("5xx > 1%, window 1m, min 20, for 30s", "{ name: server_errors, match: 5xx, threshold: 1%, window: 1m, min_requests: 20, for: 30s }", 60),
]
print(f"alert latency, first 5xx sent -> webhook received ({RATE:g} req/s, warm-up {WARMUP:g} s, evaluate_every 1s)")
for name, rule, window in rules:
    lats = sorted(round_(rule) for _ in range(ROUNDS))
    print(f"  {name:40s} min {lats[0]*1000:7.0f} ms  median {lats[len(lats)//2]*1000:7.0f} ms  "
          f"max {lats[-1]*1000:7.0f} ms  (target <= {window + 1} s)")
PY
