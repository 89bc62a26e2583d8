#!/bin/sh
# bench/metrics.sh - what metrics cost (docs/metrics.md, issue 23).
#
# 1. CPU per proxied request with metrics on and off: two gateways from the
#    same binary and the same configuration but `metrics: { enabled: false }`
#    on one, in front of one nginx `return 200`, measured alternately in
#    ROUNDS rounds with wrk; the CPU time is the gateway process's
#    (utime + stime from /proc, its threads included) divided by the
#    requests wrk counted, as bench/proxy.sh does. The ratio is given of the
#    medians and as the median of each round's own ratio (rounds are seconds
#    apart: a paired ratio cancels the machine's drift).
# 2. A scrape of a configuration with 100 routes, every route having
#    answered GET and POST and a 404 under it (so each exports requests,
#    errors and both histograms): SCRAPES scrapes of /metrics; the main
#    thread's CPU time per scrape (it answers the admin listener), the
#    median and slowest time to the last byte, and the body's size.
#
# Usage: bench/metrics.sh [BUILD_DIR]   (env: DURATION=10s ROUNDS=5 CONNS=50 SCRAPES=500;
#        ROUNDS=0: the scrape alone)
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build-rel}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-50}
SCRAPES=${SCRAPES:-500}
ERRGATE="$BUILD/errgate"
need_errgate "cmake -DCMAKE_BUILD_TYPE=Release -B $BUILD"
need_tools nginx wrk curl
bench_tmp errgate-bench

UP=$(port); ON=$(port); OFF=$(port); BIG=$(port); BIGADM=$(port)
mkdir -p "$TMP/up"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 200 '{\"message\":\"hello\"}'; }"
gateway_conf() { # PORT METRICS
    cat <<CONF
listen: 127.0.0.1:$1
workers: 1
errors: { dialect: problem }
log: { access: off, errors: off }
metrics: { enabled: $2 }
upstreams:
  up: { servers: ["127.0.0.1:$UP"], keepalive: 64 }
routes:
  - path: /v1/
    upstream: up
CONF
}
gateway_conf "$ON" true > "$TMP/on.yaml"
gateway_conf "$OFF" false > "$TMP/off.yaml"
{
    printf 'listen: 127.0.0.1:%s\nadmin_listen: 127.0.0.1:%s\nworkers: 2\nlog: { access: off, errors: off }\n' "$BIG" "$BIGADM"
    printf 'upstreams:\n  up: { servers: ["127.0.0.1:%s"], keepalive: 64 }\nroutes:\n' "$UP"
    i=0; while [ $i -lt 100 ]; do printf '  - { path: /r%d/, upstream: up, methods: [GET, POST] }\n' $i; i=$((i + 1)); done
} > "$TMP/big.yaml"

nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"
"$ERRGATE" serve --config "$TMP/on.yaml" 2>/dev/null & PIDS="$PIDS $!"; ONPID=$!
"$ERRGATE" serve --config "$TMP/off.yaml" 2>/dev/null & PIDS="$PIDS $!"; OFFPID=$!
"$ERRGATE" serve --config "$TMP/big.yaml" 2>/dev/null & PIDS="$PIDS $!"; BIGPID=$!
for p in $UP $ON $OFF $BIG; do
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

if [ "$ROUNDS" -gt 0 ]; then
echo "metrics on/off: $ROUNDS rounds of $DURATION, $CONNS connections, one worker each"
run_off() { run "$OFF" "$OFFPID"; }
run_on() { run "$ON" "$ONPID"; }
paired_rounds ""
fi

# the 100-route scrape
i=0
while [ $i -lt 100 ]; do
    curl -s -o /dev/null "http://127.0.0.1:$BIG/r$i/a" -o /dev/null "http://127.0.0.1:$BIG/r$i/b" \
        -X GET -o /dev/null "http://127.0.0.1:$BIG/r$i/c"
    curl -s -o /dev/null -X POST "http://127.0.0.1:$BIG/r$i/a"
    curl -s -o /dev/null -X DELETE "http://127.0.0.1:$BIG/r$i/a" # 405 under the route
    i=$((i + 1))
done
: > "$TMP/scrape"
# the scrapes are answered on the main thread (the admin listener): its own
# CPU time per scrape is the cost, whatever else the machine is doing
urls=$(i=0; while [ $i -lt "$SCRAPES" ]; do printf -- '-o /dev/null http://127.0.0.1:%s/metrics ' "$BIGADM"; i=$((i + 1)); done)
m0=$(awk '{ print $14 + $15 }' "/proc/$BIGPID/task/$BIGPID/stat")
# shellcheck disable=SC2086
curl -s -w '%{time_total}\n' $urls >> "$TMP/scrape"
m1=$(awk '{ print $14 + $15 }' "/proc/$BIGPID/task/$BIGPID/stat")
curl -s -o "$TMP/body" "http://127.0.0.1:$BIGADM/metrics"
ms=$(awk '{ print $1 * 1000 }' "$TMP/scrape" | median)
worst=$(awk '{ print $1 * 1000 }' "$TMP/scrape" | sort -n | tail -1)
cpu=$(awk -v d=$((m1 - m0)) -v hz="$(getconf CLK_TCK)" -v n="$SCRAPES" 'BEGIN { printf "%.2f", d * 1000 / hz / n }')
echo "scrape of 100 routes: $(wc -c < "$TMP/body") bytes, $(grep -vc '^#' "$TMP/body") series;" \
     "main-thread CPU ${cpu} ms a scrape; wall time median ${ms} ms, slowest ${worst} ms over $SCRAPES scrapes"
