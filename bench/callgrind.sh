#!/bin/sh
# bench/callgrind.sh BUILD_DIR - user-space instructions per request, counted
# by callgrind: repeatable for the same binary and inputs whatever else the
# machine is doing (docs/performance.md). errgate (one worker) runs under
# valgrind behind wrk -c10 for SECONDS; a run without load, as long, is
# subtracted (start-up and exit), and the rest divided by the requests wrk
# counted. Prints instructions per proxied request (GET /v1/hello to an nginx
# `return 200`) and per gateway 404. BENCH_KEEP=1 keeps the callgrind.out
# files (their directory is printed) for callgrind_annotate.
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build-rel}
SECONDS_RUN=${SECONDS_RUN:-5}
ERRGATE=$(cd "$BUILD" && pwd)/errgate
TMP=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
UP=$(port)
EG=$(port)
mkdir -p "$TMP/up"
upstream_conf "$TMP/up" "$UP" "location / { return 200 'hello'; }" 1024
cat > "$TMP/errgate.yaml" <<CONF
listen: 127.0.0.1:$EG
workers: 1
errors: { dialect: problem }
log: { access: off, errors: off }
upstreams:
  up: { servers: ["127.0.0.1:$UP"], keepalive: 64 }
routes:
  - path: /v1/
    upstream: up
CONF
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"

wait_ready() { # an answer from the gateway, not an open port
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$EG/v1/ready"; do
        i=$((i + 1)); [ $i -lt 600 ] || { echo "callgrind: gateway did not answer" >&2; exit 1; }; sleep 0.1
    done
}

# one run: $1 = path or "idle"; prints "instructions requests"
run() {
    out="$TMP/cg.$1.out"
    case "$1" in idle) out="$TMP/cg.idle.out" ;; *) out="$TMP/cg.$(echo "$1" | tr / _).out" ;; esac
    valgrind --tool=callgrind --callgrind-out-file="$out" "$ERRGATE" serve --config "$TMP/errgate.yaml" \
        2>"$TMP/vg.log" & vg=$!
    wait_ready
    if [ "$1" = idle ]; then
        sleep "$SECONDS_RUN"; reqs=0
    else
        reqs=$(wrk -t1 -c10 -d"${SECONDS_RUN}s" "http://127.0.0.1:$EG$1" | awk '/requests in/ {print $1}')
    fi
    kill -TERM "$vg"; wait "$vg" || true
    ir=$(awk '/^summary:/ {print $2}' "$out")
    echo "$ir $reqs"
}

set -- $(run idle); idle_ir=$1
set -- $(run /v1/hello); p_ir=$1; p_n=$2
set -- $(run /no/such); n_ir=$1; n_n=$2
echo "idle run: $idle_ir instructions"
echo "proxied GET /v1/hello: $p_n requests, $(( (p_ir - idle_ir) / p_n )) instructions per request"
echo "gateway 404 /no/such:  $n_n requests, $(( (n_ir - idle_ir) / n_n )) instructions per request"
[ -z "${BENCH_KEEP:-}" ] || echo "callgrind outputs: $TMP"
