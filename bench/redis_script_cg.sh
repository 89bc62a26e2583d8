#!/bin/sh
# bench/redis_script_cg.sh - what one admission decision costs Redis, in
# instructions (issue 25): redis-server under callgrind runs the traffic
# stage's script (taken from src/stages/traffic.c) through redis-benchmark,
# 12 decisions a call, as a worker's batch would send them: one subject
# (the 12 are one group: sent once with a count, the key read and written
# once) and 12 subjects (12 groups, 12 keys). Instructions of the whole
# server per decision (parsing, the script, the reply), counted only while
# the calls run. Instructions, not time: the figure does not move with the
# machine's load.
#
# Usage: bench/redis_script_cg.sh      (env: CALLS=2000)
set -eu
. "$(dirname "$0")/lib.sh"
CALLS=${CALLS:-2000}
SRC="$(dirname "$0")/../src/stages/traffic.c"
for t in valgrind callgrind_control redis-server redis-cli redis-benchmark python3; do
    command -v $t >/dev/null 2>&1 || { echo "bench: $t is missing" >&2; exit 2; }
done
TMP=$(mktemp -d /tmp/errgate-rscript.XXXXXX)
VG=""
cleanup() { [ -z "$VG" ] || kill "$VG" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
python3 - "$SRC" > "$TMP/admit.lua" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
m = re.search(r'static const char admit_lua\[\] =\n(.*?);\n', s, re.S)
sys.stdout.write(''.join(eval(x) for x in re.findall(r'"(?:[^"\\]|\\.)*"', m.group(1))))
PY
RP=$(port)
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/cg.out" \
    redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" >/dev/null 2>&1 &
VG=$!
i=0; until redis-cli -p "$RP" ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1)); [ $i -lt 300 ] || { echo "bench: redis did not start" >&2; exit 1; }; sleep 0.1
done
SHA=$(redis-cli -p "$RP" SCRIPT LOAD "$(cat "$TMP/admit.lua")")
NOW=1765000000000000
measure() { # label, then EVALSHA's numkeys and arguments
    label=$1; shift
    redis-benchmark -p "$RP" -n 200 -c 1 -q EVALSHA "$SHA" "$@" >/dev/null
    callgrind_control -z "$VG" >/dev/null; callgrind_control -i on "$VG" >/dev/null
    redis-benchmark -p "$RP" -n "$CALLS" -c 1 -q EVALSHA "$SHA" "$@" >/dev/null
    callgrind_control -i off "$VG" >/dev/null; callgrind_control -d "$VG" >/dev/null
    f=$(ls -t "$TMP"/cg.out* | head -1)
    ir=$(awk '/^totals:/ { print $2; exit }' "$f")
    printf "%-40s %8d instructions a decision\n" "$label" $((ir / CALLS / 12))
}
# a rate limit of 100,000,000 an hour (interval 36 us); a monthly quota of 2e9.
# A group's arguments are its count and its policy (one string), after the
# number of groups and the time.
RATE="1 0 0 36 100000000 1"
QUOTA="0 0 1 2000000000 1 1800000000000"
many() { # label, key prefix, policy: 12 groups of one, 12 keys
    label=$1; pre=$2; pol=$3
    set -- 12
    for i in $(seq 1 12); do set -- "$@" "$pre$i"; done
    set -- "$@" 12 $NOW
    for i in $(seq 1 12); do set -- "$@" 1 "$pol"; done
    measure "$label" "$@"
}
measure "rate limit, one subject (one group)" 1 r:one 1 $NOW 12 "$RATE"
many "rate limit, 12 subjects" r:k "$RATE"
measure "quota, one subject (one group)" 1 q:one 1 $NOW 12 "$QUOTA"
many "quota, 12 subjects" q:k "$QUOTA"
redis-cli -p "$RP" shutdown nosave >/dev/null 2>&1 || true
wait "$VG" 2>/dev/null || true
VG=""
