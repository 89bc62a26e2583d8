#!/bin/sh
# bench/idempotency.sh - what the Idempotency-Key stage adds to a request.
#
# POST with a 1 KB JSON body through errgate (one worker) to nginx
# `return 201`, on a route without the stage and on one with it, every
# request with a new Idempotency-Key (the first-request path: fingerprint,
# reserve, capture, store; ttl 2s keeps the memory store under its cap), for each store: memory, SQLite (the key store's
# file), Redis. The two routes run in rounds, alternating, so drift hits
# both alike. Reported: req/s and the gateway's CPU per request (utime+stime
# from /proc/<pid>/stat over the requests wrk counted; with Redis, Redis's
# CPU is added: it does the reservation's work), and the added % against the
# route without the stage. A benchmark, not a test: nothing asserts.
#
# CASES: "new" (above) and "replay": every request with one key (each wrk
# run its own, stored by a first request before the run), so the route with
# the stage answers every request from the store without the upstream,
# against the route without it forwarding the same requests.
#
# Usage: bench/idempotency.sh [BUILD_DIR]
#   (env: DURATION=5s ROUNDS=3 CONNS=32 BACKENDS="memory sqlite redis"
#    CASES="new replay" IDEM_TTL=2s ERRGATE=path/to/errgate instead of BUILD_DIR's)
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
BACKENDS=${BACKENDS:-memory sqlite redis}
CASES=${CASES:-new}
ERRGATE=${ERRGATE:-$BUILD/errgate}
[ -x "$ERRGATE" ] || { echo "bench: build first (make build)" >&2; exit 2; }
PATH="$PATH:/usr/sbin"
for t in nginx wrk redis-server; do
    command -v $t >/dev/null 2>&1 || { echo "bench: $t is missing (scripts/deps.sh --bench)" >&2; exit 2; }
done
TMP=$(mktemp -d /tmp/errgate-idem-bench.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
UP=$(port); RD=$(port)

mkdir -p "$TMP/up"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 201 '{\"id\":\"ch_1\",\"status\":\"created\"}'; }"
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"
redis-server --port "$RD" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" >/dev/null & PIDS="$PIDS $!"; RDPID=$!

# a 1 KB body and a new key per request (the wrk thread's id, the time and a counter)
BODY=$(python3 -c 'import json; print(json.dumps({"amount": 100, "currency": "usd", "pad": "x" * 970}))')
cat > "$TMP/new-key.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
local n, run = 0, tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
request = function()
    n = n + 1
    wrk.headers["Idempotency-Key"] = "k-" .. run .. "-" .. n
    return wrk.format()
end
LUA
cat > "$TMP/same-key.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Idempotency-Key"] = os.getenv("IDEM_KEY")
LUA
printf '%s' "$BODY" > "$TMP/body.json"

# "utime stime" in ticks, summed over the PIDs
ticks_of() { for p in "$@"; do awk '{ print $14, $15 }' "/proc/$p/stat" 2>/dev/null; done | awk '{ u += $1; s += $2 } END { print u + 0, s + 0 }'; }

# "req/s cpu_us non2xx user_us sys_us" of one wrk run of case CASE against URL, CPU of the PIDs
run() { # CASE URL PID...
    kase=$1; url=$2; shift 2
    script="$TMP/new-key.lua"
    if [ "$kase" = replay ]; then
        script="$TMP/same-key.lua"
        IDEM_KEY="r-$(date +%s%N)"; export IDEM_KEY
        curl -s -o /dev/null -X POST -H "Idempotency-Key: $IDEM_KEY" -H "Content-Type: application/json" \
            --data-binary @"$TMP/body.json" "$url"
    fi
    t0=$(ticks_of "$@")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" -s "$script" "$url" 2>/dev/null)
    t1=$(ticks_of "$@")
    echo "$out" | awk -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" '
        /requests in/ { n = $1 } /Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $NF }
        END { split(t0, a, " "); split(t1, b, " "); du = b[1] - a[1]; ds = b[2] - a[2]
              k = n ? 1000000 / hz / n : 0
              printf "%.0f %.2f %d %.2f %.2f\n", rps, (du + ds) * k, bad + 0, du * k, ds * k }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf "%-8s %-7s %-10s %10s %12s %8s %9s\n" store case route "req/s" "CPU us/req" "added" "non-2xx"
for kase in $CASES; do
for b in $BACKENDS; do
    EG=$(port)
    case $b in
    memory) store="store: { backend: memory }"; redis="" ;;
    sqlite) store="store: { backend: sqlite, path: $TMP/errgate-$EG.db }"; redis="" ;;
    redis) store="store: { backend: memory }"; redis="redis: { address: \"127.0.0.1:$RD\", timeout: 200ms }" ;;
    esac
    cat > "$TMP/errgate-$b.yaml" <<CONF
listen: 127.0.0.1:$EG
workers: 1
log: { access: off }
$store
$redis
upstreams:
  up: { servers: ["127.0.0.1:$UP"], timeout: 10s }
routes:
  - { path: /plain/, upstream: up }
  - { path: /idem/, upstream: up, idempotency: { methods: [POST], ttl: ${IDEM_TTL:-2s} } }
  - { path: /keep/, upstream: up, idempotency: { methods: [POST], ttl: 1h } }
CONF
    "$ERRGATE" serve --config "$TMP/errgate-$b.yaml" 2>"$TMP/errgate-$b.log" & EGPID=$!
    PIDS="$PIDS $EGPID"
    i=0; until curl -s -o /dev/null "http://127.0.0.1:$EG/plain/x"; do i=$((i+1)); [ $i -lt 100 ] || { echo "bench: errgate ($b) did not start" >&2; cat "$TMP/errgate-$b.log" >&2; exit 1; }; sleep 0.1; done
    pids=$EGPID
    [ "$b" = redis ] && pids="$EGPID $RDPID"
    : > "$TMP/plain"; : > "$TMP/idem"
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        run "$kase" "http://127.0.0.1:$EG/plain/charges" $pids >> "$TMP/plain"
        iroute=idem; [ "$kase" = replay ] && iroute=keep
        run "$kase" "http://127.0.0.1:$EG/$iroute/charges" $pids >> "$TMP/idem"
        r=$((r + 1))
    done
    prps=$(cut -d' ' -f1 "$TMP/plain" | median); pcpu=$(cut -d' ' -f2 "$TMP/plain" | median)
    irps=$(cut -d' ' -f1 "$TMP/idem" | median); icpu=$(cut -d' ' -f2 "$TMP/idem" | median)
    pbad=$(awk '{ s += $3 } END { print s + 0 }' "$TMP/plain"); ibad=$(awk '{ s += $3 } END { print s + 0 }' "$TMP/idem")
    printf "%-8s %-7s %-10s %10s %12s %8s %9s\n" "$b" "$kase" without "$prps" "$pcpu" "" "$pbad"
    printf "%-8s %-7s %-10s %10s %12s %8s %9s\n" "$b" "$kase" with "$irps" "$icpu" \
        "$(awk -v a="$icpu" -v b="$pcpu" 'BEGIN { printf "%+.1f%%", (a - b) * 100 / b }')" "$ibad"
    [ -z "${BENCH_ROUNDS:-}" ] || { echo "  without (req/s cpu non-2xx user sys):"; cat "$TMP/plain"; echo "  with:"; cat "$TMP/idem"; }
    kill "$EGPID"; wait "$EGPID" 2>/dev/null || true
done
done
echo "(medians of $ROUNDS rounds of $DURATION, $CONNS connections, wrk -t1; CPU: errgate's, plus redis-server's for redis)"
