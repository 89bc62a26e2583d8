#!/bin/sh
# bench/validate.sh - what the request validation stage adds to a request.
#
# POST with a ~1 KB JSON body (20 properties) and two query parameters
# through errgate (one worker) to nginx `return 201`, on a route without
# validate:, on one with only the two query rules ("params"), and on one
# with the query rules and the body's JSON Schema (20 typed properties,
# formats, enums, bounds, patterns: "body"). The routes run in rounds,
# alternating, so drift hits them alike. Reported:
# req/s and the gateway's CPU per request (utime+stime from /proc/<pid>/stat
# over the requests wrk counted), and the added % against the route without
# the stage. A benchmark, not a test: nothing asserts.
#
# Usage: bench/validate.sh [BUILD_DIR]   (env: DURATION=5s ROUNDS=3 CONNS=32)
#        MODE=callgrind bench/validate.sh [BUILD_DIR]: instructions per request
#        instead (valgrind; SECONDS_RUN=5, BENCH_KEEP=1 keeps the outputs)
set -eu
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
ERRGATE="$BUILD/errgate"
need_errgate "make build"
need_tools nginx wrk
bench_tmp errgate-validate-bench
UP=$(port); EG=$(port)

mkdir -p "$TMP/up"
cat > "$TMP/up/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/up/nginx.pid;
error_log $TMP/up/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/up; proxy_temp_path $TMP/up; fastcgi_temp_path $TMP/up;
    uwsgi_temp_path $TMP/up; scgi_temp_path $TMP/up;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$UP;
        location / { default_type application/json; return 201 '{"id":"ord_1","status":"created"}'; }
    }
}
CONF
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"

# the body: 20 properties, ~1 KB
BODY=$(python3 -c '
import json
b = {"id": "3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60", "email": "jane.doe@example.com", "name": "Jane Doe",
     "country": "DE", "language": "de", "currency": "EUR", "status": "pending",
     "created_at": "2024-01-15T10:30:00Z", "delivery_date": "2024-01-20", "total": 129.5, "quantity": 3,
     "gift": False, "coupon": "WINTER24", "tags": ["books", "gifts", "sale"],
     "note": "Please leave the parcel with the neighbour at number 12 if nobody is at home." * 3,
     "shipping": {"street": "Hauptstrasse 1", "city": "Berlin", "zip": "10115"},
     "phone": "+4930123456", "channel": "web", "priority": 2, "ref": "A" * 260}
print(json.dumps(b))')
cat > "$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
LUA

# the body's schema (also for `bench_schema N fast $TMP/schema.yaml $TMP/body.json`)
cat > "$TMP/schema.yaml" <<'SCHEMA'
type: object
additionalProperties: false
required: [id, email, name, country, currency, total, quantity]
properties:
  id: { type: string, format: uuid }
  email: { type: string, format: email, maxLength: 254 }
  name: { type: string, minLength: 1, maxLength: 100 }
  country: { type: string, format: iso3166 }
  language: { type: string, format: iso639 }
  currency: { enum: [EUR, USD, GBP, JPY, CHF] }
  status: { enum: [pending, paid, shipped, cancelled] }
  created_at: { type: string, format: date-time }
  delivery_date: { type: string, format: date }
  total: { type: number, minimum: 0 }
  quantity: { type: integer, minimum: 1, maximum: 1000 }
  gift: { type: boolean }
  coupon: { type: string, pattern: "^[A-Z0-9]{4,12}$" }
  tags: { type: array, maxItems: 10, items: { type: string, maxLength: 20 } }
  note: { type: string, maxLength: 1000 }
  shipping:
    type: object
    required: [street, city, zip]
    properties: { street: { type: string }, city: { type: string }, zip: { type: string, pattern: "^[0-9]{5}$" } }
  phone: { type: string, pattern: "^[+][1-9][0-9]{6,14}$" }
  channel: { enum: [web, app, api] }
  priority: { type: integer, minimum: 0, maximum: 5 }
  ref: { type: string, maxLength: 300 }
SCHEMA
printf %s "$BODY" > "$TMP/body.json"
cat > "$TMP/errgate.yaml" <<CONF
listen: 127.0.0.1:$EG
workers: 1
log: { access: off }
upstreams:
  up: { servers: ["127.0.0.1:$UP"], timeout: 10s }
routes:
  - { path: /plain/orders, upstream: up }
  - path: /params/orders
    upstream: up
    validate:
      query:
        source: { required: true, enum: [web, app, api] }
        page: { type: integer, minimum: 1, maximum: 1000 }
  - path: /valid/orders
    upstream: up
    validate:
      query:
        source: { required: true, enum: [web, app, api] }
        page: { type: integer, minimum: 1, maximum: 1000 }
      body:
        schema:
$(sed 's/^/          /' "$TMP/schema.yaml")
CONF
if [ "${MODE:-}" = callgrind ]; then
    # user-space instructions per request under callgrind (bench/callgrind.sh's
    # way): errgate alone under valgrind for each route behind wrk -c10, an
    # idle run of the same length subtracted, divided by the requests counted
    SECONDS_RUN=${SECONDS_RUN:-5}
    cg() { # $1: "idle" or a route's URL path; prints "instructions requests"
        out="$TMP/cg.$(echo "$1" | tr / _).out"
        valgrind --tool=callgrind --callgrind-out-file="$out" "$ERRGATE" serve --config "$TMP/errgate.yaml" \
            2>"$TMP/vg.log" & vg=$!
        i=0; until curl -s -o /dev/null "http://127.0.0.1:$EG/plain/orders"; do
            i=$((i+1)); [ $i -lt 600 ] || { echo "bench: errgate did not start" >&2; exit 1; }; sleep 0.1; done
        if [ "$1" = idle ]; then sleep "$SECONDS_RUN"; n=0
        else n=$(wrk -t1 -c10 -d"${SECONDS_RUN}s" -s "$TMP/post.lua" "http://127.0.0.1:$EG$1?source=web&page=3" |
                 awk '/requests in/ {print $1}'); fi
        kill -TERM "$vg"; wait "$vg" || true
        echo "$(awk '/^summary:/ {print $2}' "$out") $n"
    }
    set -- $(cg idle); idle=$1
    set -- $(cg /plain/orders); plain=$(( ($1 - idle) / $2 ))
    set -- $(cg /params/orders); params=$(( ($1 - idle) / $2 ))
    set -- $(cg /valid/orders); valid=$(( ($1 - idle) / $2 ))
    printf "%-10s %14s %8s\n" route "instr/req" added
    printf "%-10s %14s\n" without "$plain"
    for r in params valid; do
        eval v=\$$r
        printf "%-10s %14s %+7.1f%%\n" "$( [ $r = valid ] && echo body || echo params)" "$v" \
            "$(awk -v a="$v" -v b="$plain" 'BEGIN { print (a - b) * 100 / b }')"
    done
    [ -z "${BENCH_KEEP:-}" ] || echo "callgrind outputs: $TMP"
    exit 0
fi
"$ERRGATE" serve --config "$TMP/errgate.yaml" 2>"$TMP/errgate.log" & EGPID=$!
PIDS="$PIDS $EGPID"
i=0; until curl -s -o /dev/null "http://127.0.0.1:$EG/plain/orders"; do i=$((i+1)); [ $i -lt 100 ] || { echo "bench: errgate did not start" >&2; cat "$TMP/errgate.log" >&2; exit 1; }; sleep 0.1; done
code=$(curl -s -o "$TMP/check" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$BODY" \
    "http://127.0.0.1:$EG/valid/orders?source=web&page=3")
[ "$code" = 201 ] || { echo "bench: the body is refused ($code): $(cat "$TMP/check")" >&2; exit 1; }

run() { # URL -> "req/s cpu_us non2xx"
    t0=$(ticks_of "$EGPID")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" -s "$TMP/post.lua" "$1" 2>/dev/null)
    t1=$(ticks_of "$EGPID")
    echo "$out" | awk -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        /requests in/ { n = $1 } /Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $NF }
        END { printf "%.0f %.1f %d\n", rps, n ? dt * 1000000 / hz / n : 0, bad + 0 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

: > "$TMP/plain"; : > "$TMP/params"; : > "$TMP/valid"
r=0
while [ $r -lt "$ROUNDS" ]; do
    run "http://127.0.0.1:$EG/plain/orders?source=web&page=3" >> "$TMP/plain"
    run "http://127.0.0.1:$EG/params/orders?source=web&page=3" >> "$TMP/params"
    run "http://127.0.0.1:$EG/valid/orders?source=web&page=3" >> "$TMP/valid"
    r=$((r + 1))
done
pcpu=$(cut -d' ' -f2 "$TMP/plain" | median)
printf "%-10s %10s %12s %8s %9s\n" route "req/s" "CPU us/req" "added" "non-2xx"
for f in plain params valid; do
    rps=$(cut -d' ' -f1 "$TMP/$f" | median); cpu=$(cut -d' ' -f2 "$TMP/$f" | median)
    bad=$(awk '{ s += $3 } END { print s + 0 }' "$TMP/$f")
    name=$f; [ $f = plain ] && name=without; [ $f = valid ] && name=body
    added=""; [ $f = plain ] || added=$(awk -v a="$cpu" -v b="$pcpu" 'BEGIN { printf "%+.1f%%", (a - b) * 100 / b }')
    printf "%-10s %10s %12s %8s %9s\n" "$name" "$rps" "$cpu" "$added" "$bad"
done
echo "(medians of $ROUNDS rounds of $DURATION, $CONNS connections, wrk -t1; body $(printf %s "$BODY" | wc -c) bytes)"
