#!/bin/sh
# bench/redis_script_cg.sh - what one admission decision costs Redis, in
# instructions (issue 25): redis-server under callgrind runs the traffic
# stage's script (taken from src/stages/traffic.c), called CALLS times one
# after the other by a small client (a policy is binary: struct.pack), 12
# decisions a call, as a worker's batch would send them: one subject
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
for t in valgrind callgrind_control redis-server redis-cli python3; do
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
cat > "$TMP/drive.py" <<'PY'
# drive.py PORT SHA CASE CALLS: CALLS EVALSHAs of one case, each answered before the next
import socket, struct, sys
port, sha, case, calls = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
NOW = b"1765000000000000"
pol = lambda *v: struct.pack("<%dq" % len(v), *v)
RATE = pol(1, 0, 0, 36, 100000000, 1)       # 100,000,000 an hour: interval 36 us
QUOTA = pol(0, 0, 1, 2000000000, 1, 1800000000000)  # a monthly quota of 2e9
kind, subjects = case.split(":")
p, pre = (RATE, b"r:") if kind == "rate" else (QUOTA, b"q:")
if subjects == "one":   # one group of 12: sent once with its count
    keys, args = [pre + b"one"], [b"1", NOW, b"12", p]
else:                   # 12 groups of one, 12 keys
    keys = [pre + b"k%d" % i for i in range(12)]
    args = [b"12", NOW] + [b"1", p] * 12
argv = [b"EVALSHA", sha.encode(), str(len(keys)).encode()] + keys + args
cmd = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def reply():
    line = f.readline()
    if line[:1] == b"-":
        sys.exit("redis: " + line.decode().strip())
    if line[:1] == b"*":
        for _ in range(int(line[1:])):
            reply()
    elif line[:1] == b"$" and int(line[1:]) >= 0:
        f.read(int(line[1:]) + 2)
for _ in range(calls):
    s.sendall(cmd)
    reply()
PY
RP=$(port)
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/cg.out" \
    redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" >/dev/null 2>&1 &
VG=$!
i=0; until redis-cli -p "$RP" ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1)); [ $i -lt 300 ] || { echo "bench: redis did not start" >&2; exit 1; }; sleep 0.1
done
SHA=$(redis-cli -p "$RP" SCRIPT LOAD "$(cat "$TMP/admit.lua")")
measure() { # label case
    python3 "$TMP/drive.py" "$RP" "$SHA" "$2" 200
    callgrind_control -z "$VG" >/dev/null; callgrind_control -i on "$VG" >/dev/null
    python3 "$TMP/drive.py" "$RP" "$SHA" "$2" "$CALLS"
    callgrind_control -i off "$VG" >/dev/null; callgrind_control -d "$VG" >/dev/null
    f=$(ls -t "$TMP"/cg.out* | head -1)
    ir=$(awk '/^totals:/ { print $2; exit }' "$f")
    printf "%-40s %8d instructions a decision\n" "$1" $((ir / CALLS / 12))
}
measure "rate limit, one subject (one group)" rate:one
measure "rate limit, 12 subjects" rate:many
measure "quota, one subject (one group)" quota:one
measure "quota, 12 subjects" quota:many
redis-cli -p "$RP" shutdown nosave >/dev/null 2>&1 || true
wait "$VG" 2>/dev/null || true
VG=""
