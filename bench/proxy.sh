#!/bin/sh
# bench/proxy.sh - errgate against nginx and haproxy as a reverse proxy.
#
# One upstream (nginx `return 200` with a small body) on loopback, measured
# with wrk directly, through nginx (proxy_pass, keep-alive upstream pool),
# through haproxy (http-reuse) and through errgate, alternating in rounds so
# drift hits all alike. Like with like: one worker process/thread each,
# request ids on in all three (nginx $request_id, haproxy unique-id, errgate
# always), and the same forwarding headers to the upstream (X-Forwarded-For,
# X-Forwarded-Proto, Forwarded; errgate adds traceparent too). The proxy
# case runs again at CONNS_HIGH connections, more than the 64 idle upstream
# connections each proxy keeps. A second case measures gateway-generated
# errors: 404 for an unknown route, as a JSON body from each; with wrk -t1
# on a 2-core machine it is bound by wrk itself (one core for wrk, one for
# the proxy), so it runs again with two wrk threads (the load generator no
# longer capped at one core; it then shares both with the proxy) and with
# PIPELINE requests in flight per connection, as TechEmpower's plaintext
# test does, which takes most of wrk's per-request system calls out of the
# way. A third compares errgate with
# API-key authentication (sqlite store, peppered HMAC, scope check) and with
# rate limiting (in memory, and in Redis on a second errgate) against the
# same route without it.
#
# Ratios are given twice: of the medians, and the median (with the range)
# of each round's own ratio, whose runs are seconds apart: on a shared VM
# the speed of the machine drifts between rounds, and a paired ratio
# cancels what the two runs shared.
#
# Usage: bench/proxy.sh [BUILD_DIR]
#   (env: DURATION=10s ROUNDS=3 CONNS=50 CONNS_HIGH=200 PIPELINE=16
#    CASES="proxy proxy_high error error_t2 error_pipelined xlate auth", the cases to run)
set -eu
. "$(dirname "$0")/lib.sh"
[ -n "${BENCH_DEBUG:-}" ] && set -x
BUILD=${1:-build}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
CONNS_HIGH=${CONNS_HIGH:-200}
PIPELINE=${PIPELINE:-16}
CASES=${CASES:-proxy proxy_high error error_t2 error_pipelined xlate auth}
want() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }
for c in $CASES; do
    case " proxy proxy_high error error_t2 error_pipelined xlate auth " in
    *" $c "*) ;;
    *) echo "bench: unknown case '$c' in CASES (proxy proxy_high error error_t2 error_pipelined xlate auth)" >&2; exit 2 ;;
    esac
done
ERRGATE="$BUILD/errgate"
need_errgate "make build"
need_tools nginx haproxy wrk
bench_tmp errgate-bench

UP=$(port); NG=$(port); HA=$(port); EG=$(port); EGR=$(port); RD=$(port)

mkdir -p "$TMP/up" "$TMP/ng"
upstream_conf "$TMP/up" "$UP" "$(cat <<'LOC'
location /err/ { default_type application/json; return 400 '{"error":{"type":"validation_error","message":"Invalid value for parameter num. Must be between 1 and 100","code":"INVALID_PARAMETER_VALUE","details":{"parameter":"num","provided_value":150,"valid_range":"1-100","request_id":"req_upstream_1"}}}'; }
location /raw/ { default_type application/json; return 400 '{"error":{"type":"validation_error","message":"Invalid value for parameter num. Must be between 1 and 100","code":"INVALID_PARAMETER_VALUE","details":{"parameter":"num","provided_value":150,"valid_range":"1-100","request_id":"req_upstream_1"}}}'; }
location / { default_type application/json; return 200 '{"message":"hello"}'; }
LOC
)"
cat > "$TMP/ng/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/ng/nginx.pid;
error_log $TMP/ng/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/ng; proxy_temp_path $TMP/ng; fastcgi_temp_path $TMP/ng;
    uwsgi_temp_path $TMP/ng; scgi_temp_path $TMP/ng;
    keepalive_requests 1000000;
    upstream up { server 127.0.0.1:$UP; keepalive 64; }
    server {
        listen 127.0.0.1:$NG;
        location /v1/ {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-ID \$request_id;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme";
            add_header X-Request-ID \$request_id always;
        }
        location / {
            default_type application/problem+json;
            add_header X-Request-ID \$request_id always;
            return 404 '{"type":"about:blank","title":"Not Found","status":404,"code":"not_found","request_id":"\$request_id"}';
        }
    }
}
CONF
cat > "$TMP/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend fe
    bind 127.0.0.1:$HA
    unique-id-format %{+X}o\ %ci%cp%fp%Ts%rt%pid
    unique-id-header X-Request-ID
    http-response set-header X-Request-ID %[unique-id]
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header Forwarded "for=%[src];proto=http"
    acl v1 path_beg /v1/
    http-request return status 404 content-type application/problem+json lf-string '{"type":"about:blank","title":"Not Found","status":404,"code":"not_found","request_id":"%[unique-id]"}' hdr X-Request-ID %[unique-id] unless v1
    default_backend be
backend be
    server up 127.0.0.1:$UP
CONF
cat > "$TMP/errgate.yaml" <<CONF
listen: 127.0.0.1:$EG
workers: 1
errors: { dialect: problem }
log: { access: off, errors: off }
upstreams:
  up: { servers: ["127.0.0.1:$UP"], keepalive: 64 }
routes:
  - path: /v1/
    upstream: up
  - path: /err/
    upstream: up
  - path: /raw/
    upstream: up
    normalize: false
  - path: /auth/
    upstream: up
    auth: api_key
    scopes: [bench]
  - path: /limited/
    upstream: up
    rate_limit: [{ limit: 1000000, window: 1s, by: ip }, { limit: 100000000, window: 1h, by: ip }]
    concurrency: 10000
store: { backend: sqlite, path: $TMP/keys.db }
auth: { pepper_file: $TMP/pepper }
CONF
echo "bench-pepper-0123456789abcdef" > "$TMP/pepper"
# the same gateway with its rate limits and slots in Redis
sed -e "s/^listen: .*/listen: 127.0.0.1:$EGR/" "$TMP/errgate.yaml" > "$TMP/errgate-redis.yaml"
echo "redis: { address: \"127.0.0.1:$RD\", timeout: 100ms }" >> "$TMP/errgate-redis.yaml"
KEY=$(bench_key "$ERRGATE" "$TMP/errgate.yaml" --scopes bench)

nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"; UPPID=$!
nginx -c "$TMP/ng/nginx.conf" -p "$TMP/ng" & PIDS="$PIDS $!"; NGPID=$!
haproxy -q -f "$TMP/haproxy.cfg" & PIDS="$PIDS $!"; HAPID=$!
"$ERRGATE" serve --config "$TMP/errgate.yaml" & PIDS="$PIDS $!"; EGPID=$!
redis-server --port "$RD" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" >/dev/null & PIDS="$PIDS $!"
"$ERRGATE" serve --config "$TMP/errgate-redis.yaml" & PIDS="$PIDS $!"
for p in $UP $NG $HA $EG $EGR; do
    i=0; until curl -s -o /dev/null "http://127.0.0.1:$p/v1/x"; do i=$((i+1)); [ $i -lt 100 ] || { echo "bench: port $p did not open" >&2; exit 1; }; sleep 0.1; done
done


# CPU time (utime+stime, clock ticks) of a process and its children's
# threads: nginx's work is in its worker, a child of the master we started.
ticks_of() { # PID...
    for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null; done | awk '{ s += $1 } END { print s + 0 }'
}
NGWORKER=$(pgrep -P "$NGPID" | head -1)
UPWORKER=$(pgrep -P "$UPPID" | head -1)

# one wrk run that also reports the CPU time the measured process spent per
# request: "req/s p50_us p99_us cpu_us". Throughput with wrk, the upstream
# and the proxy on two cores is bounded by whichever saturates first (wrk,
# for errors answered by the proxy itself), so CPU per request is the measure
# of the proxy's own cost.
run_pid() { # URL PID [header] [connections] [duration] [wrk script] [wrk threads]
    t0=$(ticks_of $2)
    out=$(wrk -t"${7:-1}" -c"${4:-$CONNS}" -d"${5:-$DURATION}" --latency ${3:+-H "$3"} ${6:+-s "$6"} "$1" 2>/dev/null)
    t1=$(ticks_of $2)
    echo "$out" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
        / requests in / { n = $1 }
        /Requests\/sec/ { rps = $2 }
        /^ +50%/ { p50 = us($2) }
        /^ +99%/ { p99 = us($2) }
        END { printf "%.0f %.0f %.0f %.2f\n", rps, p50, p99, dt * 1000000 / hz / n }'
}

measure() { # case path [connections] [wrk script] [wrk threads] -> results in $TMP/res.<case>.<name>
    want "$1" || return 0
    for r in $(seq 1 "$ROUNDS"); do
        for t in direct:$UP:$UPWORKER nginx:$NG:$NGWORKER haproxy:$HA:$HAPID errgate:$EG:$EGPID; do
            name=${t%%:*}; rest=${t#*:}; p=${rest%%:*}; pid=${rest#*:}
            case "$2" in /unknown/*) [ "$name" = direct ] && continue ;; esac
            run_pid "http://127.0.0.1:$p$2" "$pid" "" "${3:-}" "" "${4:-}" "${5:-}" >> "$TMP/res.$1.$name"
        done
    done
}

# the median of each of a result file's four columns, into $TMP/med.1-4
medians() { # file
    for col in 1 2 3 4; do
        sort -g -k$col "$1" | awk -v c=$col '{ v[NR] = $c } END { print v[int((NR+1)/2)] }' > "$TMP/med.$col"
    done
}

# one table row of those medians
row() { # name-width name
    printf "| %-${1}s | %10s | %8s | %8s | %8s |\n" "$2" "$(cat $TMP/med.1)" "$(cat $TMP/med.2)" "$(cat $TMP/med.3)" "$(cat $TMP/med.4)"
}

# median, lowest and highest of the per-round ratios of req/s: errgate/target
paired() { # case target
    paste "$TMP/res.$1.errgate" "$TMP/res.$1.$2" | awk '{ print $1 / $5 }' | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.2f (%.2f-%.2f)", v[int((NR+1)/2)], v[1], v[NR] }'
}

report() { # case title [connections] [how] [no-p99] [wrk threads]
    want "$1" || return 0
    printf "\n%s (wrk -t%s -c%s -d%s%s, %s rounds, median of rounds)\n" "$2" "${6:-1}" "${3:-$CONNS}" "$DURATION" "${4:-}" "$ROUNDS"
    printf "(cpu = CPU us per request of the process measured: the upstream for direct, else the proxy)\n"
    printf "| %-8s | %10s | %8s | %8s | %8s |\n" target "req/s" "p50 us" "p99 us" "cpu us"
    printf "|----------|------------|----------|----------|----------|\n"
    for name in direct nginx haproxy errgate; do
        f="$TMP/res.$1.$name"; [ -f "$f" ] || continue
        medians "$f"
        [ -n "${5:-}" ] && echo "n/a" > "$TMP/med.3"
        row 8 "$name"
        eval "rps_$name=$(cat $TMP/med.1)"
        eval "cpu_$name=$(cat $TMP/med.4)"
    done
    awk -v e="$rps_errgate" -v n="$rps_nginx" -v h="$rps_haproxy" 'BEGIN { printf "errgate/nginx = %.2f   errgate/haproxy = %.2f (req/s)\n", e/n, e/h }'
    printf "paired, median (range) of the rounds: errgate/nginx = %s   errgate/haproxy = %s\n" \
        "$(paired "$1" nginx)" "$(paired "$1" haproxy)"
    awk -v e="$cpu_errgate" -v n="$cpu_nginx" -v h="$cpu_haproxy" 'BEGIN { printf "CPU per request: nginx/errgate = %.2f   haproxy/errgate = %.2f\n", n/e, h/e }'
}

# wrk's pipelining, as in its own scripts/pipeline.lua: PIPELINE requests
# written at once on each connection, the next batch when all are answered
cat > "$TMP/pipeline.lua" <<LUA
init = function(args)
  local r = {}
  for i = 1, $PIPELINE do r[i] = wrk.format() end
  req = table.concat(r)
end
request = function() return req end
LUA
measure proxy /v1/hello
measure proxy_high /v1/hello "$CONNS_HIGH"
measure error /unknown/route
measure error_t2 /unknown/route "" "" 2
measure error_pipelined /unknown/route "" "$TMP/pipeline.lua"
EGRPID=$(pgrep -f "serve --config $TMP/errgate-redis.yaml" | head -1)
run_cpu() { # URL [header] [connections] [duration]: run_pid for the errgate under test
    run_pid "$1" "$EGPID" "${2:-}" "${3:-}" "${4:-}"
}
# issue 6: what translating an upstream 4xx costs against passing it through,
# with one connection so latency is service time, not queueing. On a shared
# 2-core machine one round's p99 at this load moves by 100 us either way
# (scheduling), so the two alternate in many short rounds and the medians
# are compared; the gateway's CPU time per request is the steadier measure.
if want xlate; then
    XROUNDS=${XROUNDS:-9}
    for r in $(seq 1 "$XROUNDS"); do
        run_cpu "http://127.0.0.1:$EG/raw/x" "" 1 3s >> "$TMP/res.xlate.passthrough"
        run_cpu "http://127.0.0.1:$EG/err/x" "" 1 3s >> "$TMP/res.xlate.translated"
    done
fi
# issue 4: API-key authentication, and issue 5: memory-backed rate limiting
# (two limits and a concurrency slot per request, never refusing), each
# against the same proxying without it.
# Throughput on a 2-core machine shared by wrk, nginx and errgate moves by
# several percent from run to run, more than the cost measured, so the
# gateway's own CPU time per request (utime+stime from /proc) is reported
# too: it is the steadier measure of what authentication costs.
if want auth; then
    for r in $(seq 1 "$ROUNDS"); do
        run_cpu "http://127.0.0.1:$EG/v1/hello" >> "$TMP/res.auth.none"
        run_cpu "http://127.0.0.1:$EG/auth/hello" "X-API-Key: $KEY" >> "$TMP/res.auth.api_key"
        run_cpu "http://127.0.0.1:$EG/limited/hello" >> "$TMP/res.auth.rate_limit"
        run_pid "http://127.0.0.1:$EGR/limited/hello" "$EGRPID" >> "$TMP/res.auth.redis"
    done
fi
report proxy "proxy: GET /v1/hello through each to nginx return 200"
report proxy_high "proxy, more clients than pooled upstream connections" "$CONNS_HIGH"
report error "gateway error: GET /unknown/route (404 JSON from the proxy itself)"
report error_t2 "gateway error, two load-generator threads" "" "" "" 2
# wrk's percentiles under pipelining are not usable (its p99 reads 0.00us in
# some runs), so that table has p50 only
report error_pipelined "gateway error, pipelined: latency is per batch of $PIPELINE" "" ", $PIPELINE pipelined" no-p99
if want xlate; then
    printf "\nupstream 400 (typed error body) through errgate, translated to problem vs passed through (wrk -t1 -c1, %s rounds of 3s, medians; cpu = gateway CPU us per request)\n" "$XROUNDS"
    printf "| %-11s | %10s | %8s | %8s | %8s |\n" case "req/s" "p50 us" "p99 us" "cpu us"
    printf "|-------------|------------|----------|----------|----------|\n"
    for name in passthrough translated; do
        f="$TMP/res.xlate.$name"
        medians "$f"
        row 11 "$name"
        eval "p50_$name=$(cat $TMP/med.2)"
        eval "p99_$name=$(cat $TMP/med.3)"
        eval "cpu_$name=$(cat $TMP/med.4)"
    done
    awk -v a="$p50_translated" -v b="$p50_passthrough" -v c="$p99_translated" -v d="$p99_passthrough" \
        -v e="$cpu_translated" -v f="$cpu_passthrough" \
        'BEGIN { printf "translation adds %d us at p50, %d us at p99, %.2f us of gateway CPU per request\n", a - b, c - d, e - f }'
fi
if want auth; then
    printf "\nerrgate with API-key auth, with rate limiting (memory, redis), and without (wrk -t1 -c%s; cpu = gateway CPU us per request)\n" "$CONNS"
    printf "| %-11s | %10s | %8s | %8s | %8s |\n" case "req/s" "p50 us" "p99 us" "cpu us"
    printf "|-------------|------------|----------|----------|----------|\n"
    for name in none api_key rate_limit redis; do
        f="$TMP/res.auth.$name"
        medians "$f"
        row 11 "$name"
        eval "rps_auth_$name=$(cat $TMP/med.1)"
        eval "cpu_auth_$name=$(cat $TMP/med.4)"
        eval "p99_auth_$name=$(cat $TMP/med.3)"
    done
    # signed changes against the route without them: a run where noise makes
    # the policy look free says so instead of "-3 % lower"
    cost() { # LABEL RPS RPS_NONE CPU CPU_NONE
        awk -v l="$1" -v a="$2" -v n="$3" -v ca="$4" -v cn="$5" \
            'BEGIN { printf "%s: throughput %+.1f%%, gateway CPU per request %+.1f%% (against no policy)\n", l, (a/n - 1) * 100, (ca/cn - 1) * 100 }'
    }
    cost "API-key auth" "$rps_auth_api_key" "$rps_auth_none" "$cpu_auth_api_key" "$cpu_auth_none"
    cost "rate limiting (memory)" "$rps_auth_rate_limit" "$rps_auth_none" "$cpu_auth_rate_limit" "$cpu_auth_none"
    awk -v r="$rps_auth_redis" -v m="$rps_auth_rate_limit" -v pr="$p99_auth_redis" -v pm="$p99_auth_rate_limit" \
        'BEGIN { printf "rate limiting in Redis: %.2f of the memory-backed throughput, p99 %d us vs %d us\n", r/m, pr, pm }'
fi
