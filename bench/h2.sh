#!/bin/sh
# bench/h2.sh - HTTP/2 over TLS: errgate against nginx (http2 on) and
# haproxy (alpn h2), each proxying to the same nginx `return 200` over an
# HTTP/1.1 keep-alive pool.
#
# Like with like: one worker process/thread each, the same certificate (EC
# P-256, self-signed) and cipher list as bench/tls.sh, ALPN h2. h2load
# opens CONNS connections with STREAMS concurrent streams each (-m) for
# DURATION, in alternating rounds; the figures are the median round's
# requests/s and the proxy's CPU time per request (utime+stime from /proc).
# Usage: bench/h2.sh [BUILD_DIR]   (env: DURATION=8 ROUNDS=3 CONNS=4 STREAMS=100)
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-4}
STREAMS=${STREAMS:-100}
ERRGATE="$BUILD/errgate"
need_errgate "make build"
need_tools nginx haproxy h2load openssl curl
bench_tmp errgate-bench-h2
tls_peers " http2" h2,http/1.1 --http2

# one h2load run: "req/s cpu_us_per_request" for the process PID
run() { # URL PID
    t0=$(ticks_of "$2")
    out=$(h2load -t1 -c"$CONNS" -m"$STREAMS" -D"$DURATION" "$1" 2>/dev/null)
    t1=$(ticks_of "$2")
    echo "$out" | grep -qi "application protocol: h2" || { echo "bench: $1 did not negotiate h2" >&2; exit 1; }
    echo "$out" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        /^finished in/ { rps = $4 } /^requests:/ { n = $8 }
        END { printf "%.0f %.1f\n", rps, dt * 1000000 / hz / n }'
}
for r in $(seq 1 "$ROUNDS"); do
    for t in nginx:$NG:$NGWORKER haproxy:$HA:$HAPID errgate:$EG:$EGPID; do
        name=${t%%:*}; rest=${t#*:}; p=${rest%%:*}; pid=${rest#*:}
        run "https://127.0.0.1:$p/v1/hello" "$pid" >> "$TMP/res.$name"
    done
done
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf "%-8s %12s %14s\n" proxy "req/s" "CPU us/req"
for name in nginx haproxy errgate; do
    f="$TMP/res.$name"
    printf "%-8s %12s %14s\n" $name "$(cut -d' ' -f1 "$f" | median)" "$(cut -d' ' -f2 "$f" | median)"
done
