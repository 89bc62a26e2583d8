#!/bin/sh
# bench/tls.sh - errgate's HTTPS listener against nginx and haproxy
# terminating TLS alike, each proxying to the same nginx `return 200`.
#
# Like with like: one worker process/thread each, the same certificate (EC
# P-256, self-signed) and the same TLS 1.2 cipher list (errgate's default,
# Mozilla intermediate without DHE) and TLS 1.3 suites (OpenSSL's defaults),
# TLS 1.2 and 1.3 enabled, session tickets on, ALPN http/1.1, a keep-alive
# pool to the upstream. Two cases, in alternating rounds:
#   keepalive  wrk over TLS keep-alive connections (CONNS): requests/s and
#              the proxy's CPU time per request (utime+stime from /proc);
#   handshake  wrk with Connection: close, so every request is a new TCP
#              connection and TLS handshake: connections/s and CPU per
#              connection (wrk offers no session: full handshakes).
# Usage: bench/tls.sh [BUILD_DIR]   (env: DURATION=8s ROUNDS=3 CONNS=50 HS_CONNS=20)
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build}
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
HS_CONNS=${HS_CONNS:-20}
ERRGATE="$BUILD/errgate"
need_errgate "make build"
need_tools nginx haproxy wrk openssl
bench_tmp errgate-bench-tls
CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
cat "$TMP/cert.pem" "$TMP/key.pem" > "$TMP/both.pem"

UP=$(port); NG=$(port); HA=$(port); EG=$(port)
mkdir -p "$TMP/up" "$TMP/ng"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 200 '{\"message\":\"hello\"}'; }"
cat > "$TMP/ng/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/ng/nginx.pid;
error_log $TMP/ng/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/ng; proxy_temp_path $TMP/ng; fastcgi_temp_path $TMP/ng;
    uwsgi_temp_path $TMP/ng; scgi_temp_path $TMP/ng;
    keepalive_requests 1000000;
    upstream up { server 127.0.0.1:$UP; keepalive 64; }
    server {
        listen 127.0.0.1:$NG ssl;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers $CIPHERS;
        ssl_session_tickets on;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-ID \$request_id;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme";
            add_header X-Request-ID \$request_id always;
        }
    }
}
CONF
cat > "$TMP/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4000
    ssl-default-bind-ciphers $CIPHERS
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend fe
    bind 127.0.0.1:$HA ssl crt $TMP/both.pem alpn http/1.1 ssl-min-ver TLSv1.2
    unique-id-format %{+X}o\ %ci%cp%fp%Ts%rt%pid
    unique-id-header X-Request-ID
    http-response set-header X-Request-ID %[unique-id]
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    http-request set-header Forwarded "for=%[src];proto=https"
    default_backend be
backend be
    server up 127.0.0.1:$UP
CONF
cat > "$TMP/errgate.yaml" <<CONF
listen:
  - address: 127.0.0.1:$EG
    tls: { cert: $TMP/cert.pem, key: $TMP/key.pem }
workers: 1
errors: { dialect: problem }
log: { access: off, errors: off }
upstreams:
  up: { servers: ["127.0.0.1:$UP"], keepalive: 64 }
routes:
  - path: /
    upstream: up
CONF
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"
nginx -c "$TMP/ng/nginx.conf" -p "$TMP/ng" & PIDS="$PIDS $!"; NGPID=$!
haproxy -q -f "$TMP/haproxy.cfg" & PIDS="$PIDS $!"; HAPID=$!
"$ERRGATE" serve --config "$TMP/errgate.yaml" & PIDS="$PIDS $!"; EGPID=$!
for p in $NG $HA $EG; do
    i=0; until curl -sk -o /dev/null "https://127.0.0.1:$p/v1/x"; do
        i=$((i+1)); [ $i -lt 100 ] || { echo "bench: port $p did not answer" >&2; exit 1; }; sleep 0.1; done
done
NGWORKER=$(pgrep -P "$NGPID" | head -1)

# one wrk run: "req/s cpu_us_per_request" for the process PID
run() { # URL PID CONNS [header]
    t0=$(ticks_of "$2")
    out=$(wrk -t1 -c"$3" -d"$DURATION" ${4:+-H "$4"} "$1" 2>/dev/null)
    t1=$(ticks_of "$2")
    echo "$out" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        / requests in / { n = $1 } /Requests\/sec/ { rps = $2 }
        END { printf "%.0f %.1f\n", rps, dt * 1000000 / hz / n }'
}
for case in keepalive handshake; do
    for r in $(seq 1 "$ROUNDS"); do
        for t in nginx:$NG:$NGWORKER haproxy:$HA:$HAPID errgate:$EG:$EGPID; do
            name=${t%%:*}; rest=${t#*:}; p=${rest%%:*}; pid=${rest#*:}
            if [ $case = keepalive ]; then set -- $(run "https://127.0.0.1:$p/v1/hello" "$pid" "$CONNS")
            else set -- $(run "https://127.0.0.1:$p/v1/hello" "$pid" "$HS_CONNS" "Connection: close"); fi
            echo "$1 $2" >> "$TMP/res.$case.$name"
        done
    done
done
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf "%-10s %-8s %12s %14s\n" case proxy "req/s" "CPU us/req"
for case in keepalive handshake; do
    for name in nginx haproxy errgate; do
        f="$TMP/res.$case.$name"
        printf "%-10s %-8s %12s %14s\n" $case $name "$(cut -d' ' -f1 "$f" | median)" "$(cut -d' ' -f2 "$f" | median)"
    done
done
