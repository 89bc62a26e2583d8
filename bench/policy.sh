#!/bin/sh
# bench/policy.sh - what traffic policy costs at proxy speed (issue 25).
#
# One upstream (nginx `return 200`) on loopback and two errgate processes
# with one worker each: one with its quotas on SQLite (group commits, the
# default store settings), one with its limits and quotas in Redis. Side by
# side in alternating rounds: no policy, API key alone, a monthly quota on
# SQLite (API key + quota), a rate limit in Redis, a quota in Redis (API
# key + quota). Each run reports req/s and the CPU per request (utime+stime
# from /proc) of errgate, plus Redis's for the Redis cases: on a 2-core
# machine shared with wrk and nginx, CPU per request is the steadier
# measure. Redis's own cost per decision is read from INFO commandstats
# (usec_per_call of evalsha) after the run.
#
# Usage: bench/policy.sh [BUILD_DIR]
#   (env: DURATION=5s ROUNDS=3 CONNS=50 COMMIT_EVERY=256 COMMIT_INTERVAL=50ms;
#    COMMIT_EVERY= empty for a build without group commits)
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
COMMIT_EVERY=${COMMIT_EVERY-256}
COMMIT_INTERVAL=${COMMIT_INTERVAL:-50ms}
# COMMIT_EVERY= (empty) leaves the store options out: for builds older than group commits
STORE_OPTS=${COMMIT_EVERY:+", commit_every: $COMMIT_EVERY, commit_interval: $COMMIT_INTERVAL"}
ERRGATE="$BUILD/errgate"
need_errgate
need_tools nginx wrk redis-server redis-cli
bench_tmp errgate-policy

UP=$(port); EG=$(port); EGR=$(port); RD=$(port)
mkdir -p "$TMP/up"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 200 '{\"message\":\"hello\"}'; }"
policy_conf "$TMP/errgate.yaml" "$EG" "$TMP/keys.db$STORE_OPTS" "$UP" \
    "  - { path: /limited/, upstream: up, rate_limit: { limit: 100000000, window: 1h, by: ip } }"
sed -e "s/^listen: .*/listen: 127.0.0.1:$EGR/" "$TMP/errgate.yaml" > "$TMP/errgate-redis.yaml"
echo "redis: { address: \"127.0.0.1:$RD\", timeout: 200ms }" >> "$TMP/errgate-redis.yaml"
KEY=$(bench_key "$ERRGATE" "$TMP/errgate.yaml")

nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"
redis-server --port "$RD" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" >/dev/null & PIDS="$PIDS $!"; RDPID=$!
"$ERRGATE" serve --config "$TMP/errgate.yaml" & PIDS="$PIDS $!"; EGPID=$!
"$ERRGATE" serve --config "$TMP/errgate-redis.yaml" & PIDS="$PIDS $!"; EGRPID=$!
for p in $UP $EG $EGR; do
    i=0; until curl -s -o /dev/null "http://127.0.0.1:$p/v1/x"; do i=$((i+1)); [ $i -lt 100 ] || { echo "bench: port $p did not open" >&2; exit 1; }; sleep 0.1; done
done
# warm: the counters loaded, the script sent
curl -s -o /dev/null -H "X-API-Key: $KEY" "http://127.0.0.1:$EG/quota/x"
curl -s -o /dev/null -H "X-API-Key: $KEY" "http://127.0.0.1:$EGR/quota/x"

ticks_of() { for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null; done | awk '{ s += $1 } END { print s + 0 }'; }

# "req/s cpu_us" for one wrk run; cpu of the PIDs given, per request
run() { # URL header PID...
    url=$1; hdr=$2; shift 2
    t0=$(ticks_of "$@")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" ${hdr:+-H "$hdr"} "$url" 2>/dev/null)
    t1=$(ticks_of "$@")
    echo "$out" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        / requests in / { n = $1 } /Requests\/sec/ { rps = $2 }
        / Non-2xx/ { bad = $NF }
        END { printf "%.0f %.2f %d %d\n", rps, dt * 1000000 / hz / n, bad, n }'
}

# Redis's own cost of one run: "calls usec" of EVALSHA (INFO commandstats)
evalsha() { redis-cli -p "$RD" INFO commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_evalsha:/ { print $3, $5 }'; }
run_redis() { # URL header PID... -> as run, then EVALSHA calls and their usec
    redis-cli -p "$RD" CONFIG RESETSTAT >/dev/null
    line=$(run "$@")
    echo "$line $(evalsha)"
}
for r in $(seq 1 "$ROUNDS"); do
    run "http://127.0.0.1:$EG/v1/x" "" $EGPID >> "$TMP/res.none"
    run "http://127.0.0.1:$EG/auth/x" "X-API-Key: $KEY" $EGPID >> "$TMP/res.api_key"
    run "http://127.0.0.1:$EG/quota/x" "X-API-Key: $KEY" $EGPID >> "$TMP/res.quota_sqlite"
    run_redis "http://127.0.0.1:$EGR/limited/x" "" $EGRPID $RDPID >> "$TMP/res.rate_redis"
    run_redis "http://127.0.0.1:$EGR/quota/x" "X-API-Key: $KEY" $EGRPID $RDPID >> "$TMP/res.quota_redis"
done

med() { sort -g -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print v[int((NR+1)/2)] }'; }
printf "policy at proxy speed (wrk -t1 -c%s -d%s, %s alternating rounds, medians; one worker; commit_every %s, commit_interval %s)\n" \
    "$CONNS" "$DURATION" "$ROUNDS" "$COMMIT_EVERY" "$COMMIT_INTERVAL"
printf "(cpu = CPU us per request of errgate, plus redis-server for the Redis cases; non-2xx must be 0)\n"
printf "| %-24s | %8s | %8s | %10s | %10s | %7s |\n" case "req/s" "cpu us" "rps/none" "cpu/none" "non-2xx"
printf "|--------------------------|----------|----------|------------|------------|---------|\n"
RN=$(med "$TMP/res.none" 1); CN=$(med "$TMP/res.none" 2)
for c in none api_key quota_sqlite rate_redis quota_redis; do
    f="$TMP/res.$c"
    awk -v n="$c" -v r="$(med "$f" 1)" -v cu="$(med "$f" 2)" -v rn="$RN" -v cn="$CN" -v bad="$(awk '{ s += $3 } END { print s }' "$f")" \
        'BEGIN { printf "| %-24s | %8d | %8.2f | %10.2f | %10.2f | %7d |\n", n, r, cu, r / rn, cu / cn, bad }'
done
printf "\nRedis's CPU per decision (INFO commandstats: EVALSHA usec / decisions; medians of the rounds)\n"
for c in rate_redis quota_redis; do
    awk '$5 > 0 { print $4 / $5, $6 / $4 }' "$TMP/res.$c" > "$TMP/redis.$c"
    printf "%-12s decisions per EVALSHA %6.1f   Redis usec per decision %5.2f\n" "$c" "$(med "$TMP/redis.$c" 1)" "$(med "$TMP/redis.$c" 2)"
done
