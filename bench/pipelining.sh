#!/bin/bash
# bench/pipelining.sh - HTTP/1.1 pipelining through errgate, nginx and
# haproxy: h2load --h1 at -m 1 (one request in flight per connection) and
# -m PIPELINE, against two upstreams: nginx `return 200` (bench/lib.sh) and
# `errgate demo-upstream`, whose answers once left in two writes under Nagle
# and so waited 40 ms each for the reader's delayed ACK (any proxy in front
# got about 22 requests a second per connection, pipelined or not). Prints
# req/s and the CPU time (utime+stime from /proc) each proxy spent per
# request; "direct" is the upstream alone (its CPU).
#
# Usage: bench/pipelining.sh [BUILD_DIR]   (env: DURATION=5 CONNS=10 PIPELINE=10)
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build-rel}
DURATION=${DURATION:-5}
CONNS=${CONNS:-10}
PIPELINE=${PIPELINE:-10}
ERRGATE="$BUILD/errgate"
need_errgate "make build"
PATH="$PATH:/usr/sbin"
for t in nginx haproxy h2load; do
    command -v $t >/dev/null 2>&1 || { echo "bench: $t is missing (nghttp2-client for h2load)" >&2; exit 2; }
done
bench_tmp errgate-pipe

UP=$(port); DEMO=$(port)
mkdir -p "$TMP/up"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 200 '{\"message\":\"hello\"}'; }"
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"; UPPID=$!
"$ERRGATE" demo-upstream --listen "127.0.0.1:$DEMO" 2>/dev/null & PIDS="$PIDS $!"; DEMOPID=$!

# the three proxies in front of upstream $1 (name $2), like with like: one
# worker each, keep-alive upstream pools, request ids and X-Forwarded-For
proxies() { # UPSTREAM_PORT NAME -> sets NG HA EG and their pids
    NG=$(port); HA=$(port); EG=$(port)
    mkdir -p "$TMP/$2"
    cat > "$TMP/$2/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/$2/nginx.pid;
error_log $TMP/$2/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/$2; proxy_temp_path $TMP/$2; fastcgi_temp_path $TMP/$2;
    uwsgi_temp_path $TMP/$2; scgi_temp_path $TMP/$2;
    keepalive_requests 1000000;
    upstream up { server 127.0.0.1:$1; keepalive 64; }
    server {
        listen 127.0.0.1:$NG;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-ID \$request_id;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            add_header X-Request-ID \$request_id always;
        }
    }
}
CONF
    cat > "$TMP/$2/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend fe
    bind 127.0.0.1:$HA
    unique-id-format %{+X}o\ %ci%cp%fp%Ts%rt%pid
    unique-id-header X-Request-ID
    http-response set-header X-Request-ID %[unique-id]
    option forwardfor
    default_backend be
backend be
    server up 127.0.0.1:$1
CONF
    cat > "$TMP/$2/errgate.yaml" <<CONF
listen: 127.0.0.1:$EG
workers: 1
errors: { dialect: problem }
log: { access: off, errors: off }
upstreams:
  up: { servers: ["127.0.0.1:$1"], keepalive: 64 }
routes:
  - path: /v1/
    upstream: up
CONF
    nginx -c "$TMP/$2/nginx.conf" -p "$TMP/$2" & PIDS="$PIDS $!"; NGPID=$!
    haproxy -q -f "$TMP/$2/haproxy.cfg" & PIDS="$PIDS $!"; HAPID=$!
    "$ERRGATE" serve --config "$TMP/$2/errgate.yaml" & PIDS="$PIDS $!"; EGPID=$!
    for p in $1 $NG $HA $EG; do
        i=0; until curl -s -o /dev/null "http://127.0.0.1:$p/v1/hello"; do
            i=$((i + 1)); [ $i -lt 100 ] || { echo "bench: port $p did not open" >&2; exit 1; }; sleep 0.1
        done
    done
    NGWORKER=$(pgrep -P "$NGPID" | head -1)
}

run() { # UPSTREAM_NAME UPSTREAM_PORT UPSTREAM_PID
    proxies "$2" "$1"
    for m in 1 "$PIPELINE"; do
        for t in direct:$2:$3 nginx:$NG:$NGWORKER haproxy:$HA:$HAPID errgate:$EG:$EGPID; do
            IFS=: read -r name p pid <<< "$t"
            t0=$(ticks_of "$pid")
            out=$(h2load --h1 -m "$m" -c "$CONNS" -D "$DURATION" "http://127.0.0.1:$p/v1/hello" 2>&1)
            t1=$(ticks_of "$pid")
            echo "$out" | awk -v up="$1" -v m="$m" -v name="$name" -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
                /^finished in/ { rps = $4 }
                /^requests:/ { n = $8 }
                END { printf "%-6s -m %-3s %-8s %10.0f req/s %7.2f us CPU/request\n", up, m, name, rps,
                      n ? dt * 1000000 / hz / n : 0 }'
        done
    done
}

run nginx "$UP" "$(pgrep -P "$UPPID" | head -1)"
run demo "$DEMO" "$DEMOPID"
