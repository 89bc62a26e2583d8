#!/bin/sh
# bench/metering.sh - what automatic metering (a route's `meter:`) costs on
# the proxy path, with the SQLite store (docs/metering.md).
#
# Two gateways from the same binary and configuration, one worker each, in
# front of one nginx `return 200`; the only difference is `meter: true` on
# the route. Each has its own SQLite store with one API key, and the route
# takes the key (`auth: api_key`): usage is billed per key, and so the
# store is open in both (ANON=1: a route without auth, where metering is
# what opens the store; its figure includes the store's own upkeep).
# 1. CPU per request: measured alternately in ROUNDS rounds with wrk; the
#    CPU is the gateway process's (utime + stime from /proc: every thread,
#    the worker's recording and the writer thread's commits) divided by the
#    requests wrk counted; the ratio is the median of each round's own
#    ratio (a paired ratio cancels the machine's drift).
# 2. Instructions per request (CALLGRIND=1, the default): each gateway once
#    under callgrind behind wrk -c10 for CG_SECONDS, an idle run as long
#    subtracted, as bench/callgrind.sh does; repeatable whatever else the
#    machine is doing.
# A benchmark, not a test: nothing asserts. The target is <= 5 % CPU.
#
# Usage: bench/metering.sh [BUILD_DIR]   (env: DURATION=5s ROUNDS=5 CONNS=50
#        CALLGRIND=1 CG_SECONDS=5 ANON=0; ROUNDS=0 only counts instructions,
#        BENCH_KEEP=1 keeps the callgrind outputs for callgrind_annotate)
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build-rel}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-50}
CALLGRIND=${CALLGRIND:-1}
CG_SECONDS=${CG_SECONDS:-5}
ANON=${ANON:-0}
ERRGATE=$(cd "$BUILD" && pwd)/errgate
need_errgate "cmake -DCMAKE_BUILD_TYPE=Release -B $BUILD"
need_tools nginx wrk curl
bench_tmp errgate-metering
UP=$(port); ON=$(port); OFF=$(port)
mkdir -p "$TMP/up" "$TMP/on" "$TMP/off"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 200 '{\"message\":\"hello\"}'; }"
AUTH=api_key; [ "$ANON" = 1 ] && AUTH=none
gateway_conf() { # PORT DIR METER
    cat <<CONF
listen: 127.0.0.1:$1
workers: 1
log: { access: off, errors: off }
store: { backend: sqlite, path: $2/usage.db }
upstreams:
  up: { servers: ["127.0.0.1:$UP"], keepalive: 64 }
routes:
  - path: /v1/
    upstream: up
    auth: $AUTH
    meter: $3
CONF
}
gateway_conf "$ON" "$TMP/on" true > "$TMP/on.yaml"
gateway_conf "$OFF" "$TMP/off" false > "$TMP/off.yaml"

ONKEY=x; OFFKEY=x
if [ "$ANON" != 1 ]; then ONKEY=$(bench_key "$ERRGATE" "$TMP/on.yaml"); OFFKEY=$(bench_key "$ERRGATE" "$TMP/off.yaml"); fi
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"
"$ERRGATE" serve --config "$TMP/on.yaml" 2>/dev/null & PIDS="$PIDS $!"; ONPID=$!
"$ERRGATE" serve --config "$TMP/off.yaml" 2>/dev/null & PIDS="$PIDS $!"; OFFPID=$!
wait_port() { # an answer, not an open port
    i=0; until curl -s -o /dev/null "http://127.0.0.1:$1/v1/x"; do i=$((i+1)); [ $i -lt 600 ] || { echo "bench: port $1 did not open" >&2; exit 1; }; sleep 0.1; done
}
for p in $UP $ON $OFF; do wait_port "$p"; done

run() { # PORT PID KEY -> "req/s cpu_us_per_request"
    t0=$(ticks_of "$2")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" -H "X-API-Key: $3" "http://127.0.0.1:$1/v1/hello" 2>/dev/null)
    t1=$(ticks_of "$2")
    echo "$out" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        / requests in / { n = $1 } /Requests\/sec/ { rps = $2 }
        END { printf "%.0f %.3f\n", rps, dt * 1000000 / hz / n }'
}

if [ "$ROUNDS" -gt 0 ]; then
echo "meter on/off: $ROUNDS rounds of $DURATION, $CONNS connections, one worker each, SQLite, auth: $AUTH"
run_off() { run "$OFF" "$OFFPID" "$OFFKEY"; }
run_on() { run "$ON" "$ONPID" "$ONKEY"; }
paired_rounds "meter "
# the usage the metered gateway recorded: every request wrk counted, and the few curl made
echo "recorded on the metered gateway (after its last commit):"
kill -TERM "$ONPID"; wait "$ONPID" 2>/dev/null || true
"$ERRGATE" usage --config "$TMP/on.yaml" --from 2000-01-01 --to 2100-01-01
fi

[ "$CALLGRIND" = 1 ] || exit 0
command -v valgrind >/dev/null 2>&1 || { echo "bench: valgrind is missing: no instruction counts" >&2; exit 0; }
kill -TERM "$ONPID" "$OFFPID" 2>/dev/null; wait "$ONPID" "$OFFPID" 2>/dev/null || true
cg() { # CONFIG LOAD(0|1) KEY -> "instructions requests"
    out="$TMP/cg.$$.$(date +%s%N).out"
    port=$(awk '/^listen:/ { split($2, a, ":"); print a[2] }' "$1")
    valgrind --tool=callgrind --callgrind-out-file="$out" "$ERRGATE" serve --config "$1" 2>"$TMP/vg.log" & vg=$!
    wait_port "$port"
    if [ "$2" = 0 ]; then
        sleep "$CG_SECONDS"; reqs=0
    else
        reqs=$(wrk -t1 -c10 -d"${CG_SECONDS}s" -H "X-API-Key: $3" "http://127.0.0.1:$port/v1/hello" | awk '/requests in/ {print $1}')
    fi
    kill -TERM "$vg"; wait "$vg" || true
    echo "$(awk '/^summary:/ {print $2}' "$out") $reqs"
}
set -- $(cg "$TMP/off.yaml" 0 "$OFFKEY"); idle_off=$1
set -- $(cg "$TMP/off.yaml" 1 "$OFFKEY"); off_ir=$1; off_n=$2
set -- $(cg "$TMP/on.yaml" 0 "$ONKEY"); idle_on=$1
set -- $(cg "$TMP/on.yaml" 1 "$ONKEY"); on_ir=$1; on_n=$2
awk -v a="$off_ir" -v ai="$idle_off" -v an="$off_n" -v b="$on_ir" -v bi="$idle_on" -v bn="$on_n" 'BEGIN {
    x = (a - ai) / an; y = (b - bi) / bn
    printf "instructions per proxied request (callgrind): meter off %.0f (%d requests), on %.0f (%d requests): %+.1f%%\n",
           x, an, y, bn, (y / x - 1) * 100 }'
[ -z "${BENCH_KEEP:-}" ] || echo "callgrind outputs (cg.*.out, in run order: idle off, off, idle on, on): $TMP"
