#!/bin/sh
# bench/policy_callgrind.sh BUILD_DIR - instructions per request of no
# policy, the API-key route and the monthly quota on SQLite (issue 25), counted by
# callgrind (every thread of errgate, the writer's included): steadier than
# CPU time on a shared machine. errgate (one worker, the store of
# bench/policy.sh with its default group commits) runs under valgrind
# behind wrk -c20 for SECONDS_RUN; a run without load, as long, is
# subtracted, and the rest divided by the requests wrk counted.
# BENCH_KEEP=1 keeps the callgrind.out files for
#   callgrind_annotate --inclusive=yes <file>
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build-rel}
SECONDS_RUN=${SECONDS_RUN:-6}
ERRGATE=$(cd "$BUILD" && pwd)/errgate
PATH="$PATH:/usr/sbin"
TMP=$(mktemp -d /tmp/errgate-policycg.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
UP=$(port)
EG=$(port)
mkdir -p "$TMP/up"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 200 '{\"message\":\"hello\"}'; }"
policy_conf "$TMP/errgate.yaml" "$EG" "$TMP/keys.db" "$UP"
KEY=$(bench_key "$ERRGATE" "$TMP/errgate.yaml")
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"

wait_ready() {
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$EG/v1/ready"; do
        i=$((i + 1)); [ $i -lt 600 ] || { echo "policy_callgrind: gateway did not answer" >&2; exit 1; }; sleep 0.1
    done
}

# one run: $1 = name, $2 = path or "idle"; prints "instructions requests"
run() {
    out="$TMP/cg.$1.out"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$ERRGATE" serve --config "$TMP/errgate.yaml" \
        2>"$TMP/vg.$1.log" & vg=$!
    wait_ready
    curl -s -o /dev/null -H "X-API-Key: $KEY" "http://127.0.0.1:$EG/quota/warm"
    if [ "$2" = idle ]; then
        sleep "$SECONDS_RUN"; reqs=0
    else
        reqs=$(wrk -t1 -c20 -d"${SECONDS_RUN}s" -H "X-API-Key: $KEY" "http://127.0.0.1:$EG$2" |
               awk '/requests in/ {print $1}')
    fi
    kill -TERM "$vg"; wait "$vg" || true
    ir=$(awk '/^summary:/ {print $2}' "$out")
    echo "$ir $reqs"
}

set -- $(run idle idle); idle_ir=$1
set -- $(run none /v1/x); n_ir=$1; n_n=$2
set -- $(run key /auth/x); k_ir=$1; k_n=$2
set -- $(run quota /quota/x); q_ir=$1; q_n=$2
ni=$(( (n_ir - idle_ir) / n_n )); ki=$(( (k_ir - idle_ir) / k_n )); qi=$(( (q_ir - idle_ir) / q_n ))
echo "no policy /v1/x:   $n_n requests, $ni instructions per request"
echo "API key  /auth/x:  $k_n requests, $ki instructions per request (+$((ki - ni)) over no policy)"
echo "quota    /quota/x: $q_n requests, $qi instructions per request (+$((qi - ki)) over the key)"
[ -z "${BENCH_KEEP:-}" ] || echo "callgrind outputs: $TMP"
