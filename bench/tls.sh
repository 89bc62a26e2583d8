#!/bin/sh
# bench/tls.sh - errgate's HTTPS listener against nginx and haproxy
# terminating TLS alike, each proxying to the same nginx `return 200`.
#
# Like with like: one worker process/thread each, the same certificate (EC
# P-256, self-signed) and the same TLS 1.2 cipher list (errgate's default,
# Mozilla intermediate without DHE) and TLS 1.3 suites (OpenSSL's defaults),
# TLS 1.2 and 1.3 enabled, session tickets on, ALPN http/1.1, a keep-alive
# pool to the upstream. Two cases, in alternating rounds:
#   keepalive  wrk over TLS keep-alive connections (CONNS): requests/s and
#              the proxy's CPU time per request (utime+stime from /proc);
#   handshake  wrk with Connection: close, so every request is a new TCP
#              connection and TLS handshake: connections/s and CPU per
#              connection (wrk offers no session: full handshakes).
# Usage: bench/tls.sh [BUILD_DIR]   (env: DURATION=8s ROUNDS=3 CONNS=50 HS_CONNS=20)
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build}
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
HS_CONNS=${HS_CONNS:-20}
ERRGATE="$BUILD/errgate"
need_errgate "make build"
need_tools nginx haproxy wrk openssl
bench_tmp errgate-bench-tls
tls_peers "" http/1.1 ""

# one wrk run: "req/s cpu_us_per_request" for the process PID
run() { # URL PID CONNS [header]
    t0=$(ticks_of "$2")
    out=$(wrk -t1 -c"$3" -d"$DURATION" ${4:+-H "$4"} "$1" 2>/dev/null)
    t1=$(ticks_of "$2")
    echo "$out" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        / requests in / { n = $1 } /Requests\/sec/ { rps = $2 }
        END { printf "%.0f %.1f\n", rps, dt * 1000000 / hz / n }'
}
for case in keepalive handshake; do
    for r in $(seq 1 "$ROUNDS"); do
        for t in nginx:$NG:$NGWORKER haproxy:$HA:$HAPID errgate:$EG:$EGPID; do
            name=${t%%:*}; rest=${t#*:}; p=${rest%%:*}; pid=${rest#*:}
            if [ $case = keepalive ]; then set -- $(run "https://127.0.0.1:$p/v1/hello" "$pid" "$CONNS")
            else set -- $(run "https://127.0.0.1:$p/v1/hello" "$pid" "$HS_CONNS" "Connection: close"); fi
            echo "$1 $2" >> "$TMP/res.$case.$name"
        done
    done
done
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf "%-10s %-8s %12s %14s\n" case proxy "req/s" "CPU us/req"
for case in keepalive handshake; do
    for name in nginx haproxy errgate; do
        f="$TMP/res.$case.$name"
        printf "%-10s %-8s %12s %14s\n" $case $name "$(cut -d' ' -f1 "$f" | median)" "$(cut -d' ' -f2 "$f" | median)"
    done
done
