#!/bin/sh
# bench/alerts_cost.sh - what the alert monitor costs on the proxy path.
#
# Two gateways from the same binary and configuration (metrics on in both),
# one with `alerts: { enabled: false }`, in front of one nginx `return 200`,
# measured alternately in ROUNDS rounds with wrk. The CPU time is the
# gateway process's (utime + stime from /proc, every thread: the workers'
# counting and the main thread's evaluation once a second) divided by the
# requests wrk counted, as bench/metrics.sh does; the ratio is the median
# of each round's own ratio (a paired ratio cancels the machine's drift).
# A benchmark, not a test: nothing asserts.
#
# Usage: bench/alerts_cost.sh [BUILD_DIR]   (env: DURATION=5s ROUNDS=5 CONNS=50)
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build-rel}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-50}
ERRGATE="$BUILD/errgate"
need_errgate "cmake -DCMAKE_BUILD_TYPE=Release -B $BUILD"
need_tools nginx wrk curl
bench_tmp errgate-alerts-cost
UP=$(port); ON=$(port); OFF=$(port)
mkdir -p "$TMP/up"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 200 '{\"message\":\"hello\"}'; }"
gateway_conf() { # PORT ALERTS
    cat <<CONF
listen: 127.0.0.1:$1
workers: 1
log: { access: off, errors: off }
alerts: { enabled: $2 }
upstreams:
  up: { servers: ["127.0.0.1:$UP"], keepalive: 64 }
routes:
  - path: /v1/
    upstream: up
CONF
}
gateway_conf "$ON" true > "$TMP/on.yaml"
gateway_conf "$OFF" false > "$TMP/off.yaml"
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"
"$ERRGATE" serve --config "$TMP/on.yaml" 2>/dev/null & PIDS="$PIDS $!"; ONPID=$!
"$ERRGATE" serve --config "$TMP/off.yaml" 2>/dev/null & PIDS="$PIDS $!"; OFFPID=$!
for p in $UP $ON $OFF; do
    i=0; until curl -s -o /dev/null "http://127.0.0.1:$p/v1/x"; do i=$((i+1)); [ $i -lt 100 ] || { echo "bench: port $p did not open" >&2; exit 1; }; sleep 0.1; done
done

run() { # PORT PID -> "req/s cpu_us_per_request"
    t0=$(ticks_of "$2")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$1/v1/hello" 2>/dev/null)
    t1=$(ticks_of "$2")
    echo "$out" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        / requests in / { n = $1 } /Requests\/sec/ { rps = $2 }
        END { printf "%.0f %.3f\n", rps, dt * 1000000 / hz / n }'
}

echo "alerts on/off: $ROUNDS rounds of $DURATION, $CONNS connections, one worker each"
run_off() { run "$OFF" "$OFFPID"; }
run_on() { run "$ON" "$ONPID"; }
paired_rounds "alerts "
