#!/bin/sh
# bench/policy_ab.sh BASE_BUILD NEW_BUILD - two builds side by side on the
# no-policy, API-key and SQLite-quota routes of bench/policy.sh (one worker
# each, the same upstream, a store each): short wrk runs alternating
# between the builds, the order swapped every round, CPU per request from
# /proc. On a shared machine whose load moves CPU per request by ±20 %
# between minutes, the ratio new/base of the same route in the same few
# seconds is the steadier reading; the no-policy route is the control
# (its code is the same in both: it should read 1.00).
#
# Usage: bench/policy_ab.sh BASE_BUILD NEW_BUILD   (env: ROUNDS=12 SECS=2)
set -eu
. "$(dirname "$0")/lib.sh"
BASE=$1
NEW=$2
ROUNDS=${ROUNDS:-12}
SECS=${SECS:-2}
ERRGATE="$BASE/errgate"; need_errgate "$BASE"
ERRGATE="$NEW/errgate"; need_errgate "$NEW"
need_tools nginx wrk
bench_tmp errgate-policy-ab

UP=$(port)
mkdir -p "$TMP/up"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 200 '{\"message\":\"hello\"}'; }"
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"

start() { # name build: a gateway with its own store; "port pid key" in $TMP/name.info
    p=$(port)
    policy_conf "$TMP/$1.yaml" "$p" "$TMP/$1.db, commit_every: 256, commit_interval: 50ms" "$UP"
    k=$(bench_key "$2/errgate" "$TMP/$1.yaml")
    "$2/errgate" serve --config "$TMP/$1.yaml" & PIDS="$PIDS $!"
    echo "$p $! $k" > "$TMP/$1.info"
    i=0; until curl -s -o /dev/null "http://127.0.0.1:$p/v1/x"; do
        i=$((i+1)); [ $i -lt 100 ] || { echo "bench: port $p did not open" >&2; exit 1; }; sleep 0.1; done
    curl -s -o /dev/null -H "X-API-Key: $k" "http://127.0.0.1:$p/quota/x" # the counter loaded
}
start base "$BASE"
start new "$NEW"

one() { # name path -> CPU us per request of that gateway
    set -- $(cat "$TMP/$1.info") "$2"
    t0=$(ticks_of "$2")
    n=$(wrk -t1 -c50 -d"${SECS}s" -H "X-API-Key: $3" "http://127.0.0.1:$1$4" | awk '/ requests in / { print $1 }')
    t1=$(ticks_of "$2")
    awk -v d=$((t1 - t0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f\n", d * 1000000 / hz / n }'
}
for r in $(seq 1 "$ROUNDS"); do
    for path in /v1/x /auth/x /quota/x; do
        if [ $((r % 2)) = 1 ]; then b=$(one base $path); n=$(one new $path)
        else n=$(one new $path); b=$(one base $path); fi
        echo "$path $b $n"
    done
done > "$TMP/pairs"

printf "policy A/B (wrk -t1 -c50, %s rounds of %ss per build and route, order swapped each round; load %s)\n" \
    "$ROUNDS" "$SECS" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf "| %-8s | %13s | %13s | %22s | %18s |\n" route "base cpu us" "new cpu us" "new/base (min..max)" "÷ own no-policy"
printf "|----------|---------------|---------------|------------------------|--------------------|\n"
medof() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
nb=$(grep "^/v1/x " "$TMP/pairs" | awk '{ print $2 }' | medof)
nn=$(grep "^/v1/x " "$TMP/pairs" | awk '{ print $3 }' | medof)
for path in /v1/x /auth/x /quota/x; do
    mb=$(grep "^$path " "$TMP/pairs" | awk '{ print $2 }' | medof)
    mn=$(grep "^$path " "$TMP/pairs" | awk '{ print $3 }' | medof)
    rr=$(grep "^$path " "$TMP/pairs" | awk '{ print $3 / $2 }' | sort -g |
         awk '{ v[NR] = $1 } END { printf "%.3f (%.2f..%.2f)", v[int((NR + 1) / 2)], v[1], v[NR] }')
    awk -v p="$path" -v mb="$mb" -v mn="$mn" -v rr="$rr" -v nb="$nb" -v nn="$nn" \
        'BEGIN { printf "| %-8s | %13.2f | %13.2f | %22s | %8.2f -> %5.2f |\n", p, mb, mn, rr, mb / nb, mn / nn }'
done
