#!/bin/sh
# bench/meter_api.sh - the metering API's throughput in events per second,
# for batches of 1000 events (issue 24).
#
# wrk POSTs JSON:API batches of BATCH events (every event id new: each
# request's ids carry the wrk connection, the run and a counter) to
# metering.path on one gateway, with the events recorded in SQLite (the key
# store's file: one IMMEDIATE transaction a batch on the thread pool) and
# in Redis (one Lua call a batch). Reported: batches/s, events/s, the
# gateway's CPU per batch (utime+stime from /proc/<pid>/stat; with Redis,
# redis-server's CPU is added: the script does the recording) and answers
# other than 201 (a benchmark that counted refusals would measure nothing).
# The upstream is never contacted. A benchmark, not a test: nothing asserts.
#
# Usage: bench/meter_api.sh [BUILD_DIR]
#   (env: DURATION=10s ROUNDS=3 CONNS=4 WORKERS=1 BATCH=1000 BACKENDS="sqlite redis")
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-4}
WORKERS=${WORKERS:-1}
BATCH=${BATCH:-1000}
BACKENDS=${BACKENDS:-sqlite redis}
ERRGATE="$BUILD/errgate"
[ -x "$ERRGATE" ] || { echo "bench: build first (make build)" >&2; exit 2; }
for t in wrk redis-server curl python3; do
    command -v $t >/dev/null 2>&1 || { echo "bench: $t is missing (scripts/deps.sh --bench)" >&2; exit 2; }
done
TMP=$(mktemp -d /tmp/errgate-meter-bench.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
RD=$(port); UP=$(port) # the upstream port is never connected to
TOKEN=bench-admin-token-0123456789abcdef
printf %s "$TOKEN" > "$TMP/admin.token"
redis-server --port "$RD" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" >/dev/null & PIDS="$PIDS $!"; RDPID=$!

ticks_of() { for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null; done | awk '{ s += $1 } END { print s + 0 }'; }

# the batch body as a Lua function of the request's id prefix: the events'
# text is made once, only the ids change per request
lua_script() { # KEY USER
    cat > "$TMP/batch.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/vnd.api+json"
wrk.headers["X-API-Key"] = "$1"
local ts = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 30)
local tail = '","type":"usage_events","attributes":{"user_id":"$2","event_type":"compute.minutes","quantity":1.5,"timestamp":"' .. ts .. '","metadata":{"region":"eu-west-1"}}}'
local n, run = 0, tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
local parts = {}
request = function()
    n = n + 1
    local p = run .. "-" .. n .. "-"
    for i = 1, $BATCH do
        parts[i] = (i == 1 and '{"data":[{"id":"' or ',{"id":"') .. p .. i .. tail
    end
    wrk.body = table.concat(parts) .. "]}"
    return wrk.format()
end
LUA
}

# "batches/s cpu_us_per_batch non201" of one wrk run, CPU of the PIDs
run() { # URL PID...
    url=$1; shift
    t0=$(ticks_of "$@")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" -s "$TMP/batch.lua" "$url" 2>/dev/null)
    t1=$(ticks_of "$@")
    echo "$out" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        /requests in/ { n = $1 } /Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $NF }
        END { printf "%.1f %.0f %d\n", rps, n ? dt * 1000000 / hz / n : 0, bad + 0 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf "%-7s %10s %12s %14s %8s\n" store "batches/s" "events/s" "CPU us/batch" "non-201"
for b in $BACKENDS; do
    EG=$(port); AD=$(port)
    redis=""
    [ "$b" = redis ] && redis="redis: { address: \"127.0.0.1:$RD\", timeout: 1s }"
    cat > "$TMP/errgate-$b.yaml" <<CONF
listen: 127.0.0.1:$EG
admin_listen: 127.0.0.1:$AD
workers: $WORKERS
log: { access: off }
errors: { dialect: jsonapi }
store: { backend: sqlite, path: $TMP/errgate-$EG.db }
auth: { admin_token_file: $TMP/admin.token }
$redis
metering: { path: /v1/meter }
upstreams:
  up: { servers: ["127.0.0.1:$UP"] }
routes:
  - { path: /v1/meter, upstream: up, auth: api_key }
CONF
    "$ERRGATE" serve --config "$TMP/errgate-$b.yaml" 2>"$TMP/errgate-$b.log" & EGPID=$!
    PIDS="$PIDS $EGPID"
    i=0; until curl -s -o /dev/null "http://127.0.0.1:$AD/health"; do i=$((i+1)); [ $i -lt 100 ] || { echo "bench: errgate ($b) did not start" >&2; cat "$TMP/errgate-$b.log" >&2; exit 1; }; sleep 0.1; done
    doc=$(curl -s -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
        -d '{"name":"bench","scopes":["meter:write"]}' "http://127.0.0.1:$AD/keys")
    secret=$(printf %s "$doc" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
    kid=$(printf %s "$doc" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"]["id"])')
    lua_script "$secret" "$kid"
    pids=$EGPID
    [ "$b" = redis ] && pids="$EGPID $RDPID"
    : > "$TMP/res"
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        run "http://127.0.0.1:$EG/v1/meter" $pids >> "$TMP/res"
        r=$((r + 1))
    done
    bps=$(cut -d' ' -f1 "$TMP/res" | median); cpu=$(cut -d' ' -f2 "$TMP/res" | median)
    bad=$(awk '{ s += $3 } END { print s + 0 }' "$TMP/res")
    printf "%-7s %10s %12s %14s %8s\n" "$b" "$bps" "$(awk -v r="$bps" -v n="$BATCH" 'BEGIN { printf "%.0f", r * n }')" "$cpu" "$bad"
    kill "$EGPID"; wait "$EGPID" 2>/dev/null || true
done
echo "(medians of $ROUNDS rounds of $DURATION, $CONNS connections, wrk -t1, $WORKERS worker(s), $BATCH events a batch; CPU: errgate's, plus redis-server's for redis)"
