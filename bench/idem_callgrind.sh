#!/bin/sh
# bench/idem_callgrind.sh BUILD_DIR - user-space instructions per request of
# the Idempotency-Key stage, counted by callgrind (repeatable whatever else
# the machine does; docs/performance.md). errgate (one worker, memory store)
# runs under valgrind with instrumentation off; wrk -t1 -c8 warms it up for
# WARM seconds, then instrumentation is switched on (callgrind_control) for
# SECONDS_RUN seconds of the same load and off again, and the instructions
# counted are divided by the requests wrk counted. The load is the one of
# bench/idempotency.sh: a 1 KB JSON POST with a new Idempotency-Key on
# every request, to /plain/ (no stage) and /idem/ (the stage), nginx
# `return 201` behind. BENCH_KEEP=1 keeps the callgrind.out files for
# callgrind_annotate. CASES="new replay": "new" as above; "replay" posts
# one key again and again (stored by a first request before the count,
# route /keep/ with a ttl of 1h), so every request counted is a replay
# from the store, against /plain/ forwarding the same requests.
# ERRGATE=path counts another binary than BUILD_DIR's. CG_OPTS="--cache-sim=yes"
# also simulates the caches (with BENCH_KEEP=1, callgrind_annotate
# --show=Ir,DLmr,DLmw gives each function's last-level misses; --LL=2097152,16,64
# makes the "last level" this VM's 2 MiB L2, and IDEM_TTL=60s a table as
# large as the native rate's 2 s make it).
# Valgrind runs OpenSSL without the SHA extensions, so
# the SHA-256 block function (libcrypto's unnamed
# symbols) is reported apart (its instructions are
# emulated ones; natively the digests are timed apart: docs/performance.md).
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build-rel}
SECONDS_RUN=${SECONDS_RUN:-8}
WARM=${WARM:-4}
ERRGATE=${ERRGATE:-$(cd "$BUILD" && pwd)/errgate}
CASES=${CASES:-new}
PATH="$PATH:/usr/sbin"
bench_tmp errgate-idem-cg
UP=$(port)
EG=$(port)
mkdir -p "$TMP/up"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 201 '{\"id\":\"ch_1\",\"status\":\"created\"}'; }"
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"
cat > "$TMP/errgate.yaml" <<CONF
listen: 127.0.0.1:$EG
workers: 1
log: { access: off }
store: { backend: memory }
upstreams:
  up: { servers: ["127.0.0.1:$UP"], timeout: 10s }
routes:
  - { path: /plain/, upstream: up }
  - { path: /idem/, upstream: up, idempotency: { methods: [POST], ttl: ${IDEM_TTL:-2s} } }
  - { path: /keep/, upstream: up, idempotency: { methods: [POST], ttl: 1h } }
CONF
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
wrk.headers["Idempotency-Key"] = "replay-1"
LUA
printf '%s' "$BODY" > "$TMP/body.json"

# one run: $1 = the route's prefix, $2 = the wrk script; prints
# "instructions requests sha256_instructions"
run() {
    out="$TMP/cg.$1.$(basename "$2" .lua).out"
    valgrind --tool=callgrind --instr-atstart=no ${CG_OPTS:-} --callgrind-out-file="$out" \
        "$ERRGATE" serve --config "$TMP/errgate.yaml" 2>"$TMP/vg.$1.log" & vg=$!
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$EG/plain/ready"; do
        i=$((i + 1)); [ $i -lt 600 ] || { echo "idem_callgrind: gateway did not answer" >&2; exit 1; }; sleep 0.1
    done
    curl -s -o /dev/null -X POST -H "Idempotency-Key: replay-1" -H "Content-Type: application/json" \
        --data-binary @"$TMP/body.json" "http://127.0.0.1:$EG/$1/charges"
    wrk -t1 -c8 -d"${WARM}s" -s "$2" "http://127.0.0.1:$EG/$1/charges" >/dev/null
    callgrind_control -i on "$vg" >/dev/null
    reqs=$(wrk -t1 -c8 -d"${SECONDS_RUN}s" -s "$2" "http://127.0.0.1:$EG/$1/charges" |
        awk '/requests in/ {print $1}')
    callgrind_control -i off "$vg" >/dev/null
    kill -TERM "$vg"; wait "$vg" || true
    ir=$(awk '/^totals:/ {print $2}' "$out")
    sha=$(callgrind_annotate --inclusive=no "$out" 2>/dev/null |
        awk '/[?]:0x.*libcrypto/ { gsub(",", "", $1); s += $1 } END { printf "%.0f\n", s }')
    echo "$ir $reqs $sha"
}

for kase in $CASES; do
    script="$TMP/new-key.lua"; route=idem
    [ "$kase" = replay ] && { script="$TMP/same-key.lua"; route=keep; }
    set -- $(run plain "$script"); p_ir=$1; p_n=$2
    set -- $(run $route "$script"); i_ir=$1; i_n=$2; i_sha=$3
    p=$((p_ir / p_n)); i=$(((i_ir - i_sha) / i_n))
    echo "[$kase] without the stage: $p_n requests, $p instructions per request"
    echo "[$kase] with the stage:    $i_n requests, $i instructions per request besides SHA-256 ($((i_sha / i_n)) emulated in libcrypto's SHA-256 block function)"
    echo "[$kase] the stage:         $((i - p)) instructions per request besides SHA-256"
done
[ -z "${BENCH_KEEP:-}" ] || echo "callgrind outputs: $TMP"
