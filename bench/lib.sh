# bench/lib.sh - shared by the benchmark scripts (sourced, not run): the
# prelude (a built binary, the tools, a temporary folder and the processes
# killed on exit), a free loopback port, the nginx upstream every benchmark
# proxies to, and CPU ticks from /proc, written once so the scripts measure
# errgate alike.

# a free TCP port on 127.0.0.1
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# upstream_conf DIR PORT LOCATIONS [WORKER_CONNECTIONS]: an nginx config in
# DIR/nginx.conf, one worker in the foreground, no access log, its temporary
# files in DIR, keep-alive without a request cap (a benchmark's connections
# never have to reconnect), listening on 127.0.0.1:PORT with the server
# block's LOCATIONS (nginx syntax). Start it with
#   nginx -c DIR/nginx.conf -p DIR
upstream_conf() {
    cat > "$1/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections ${4:-4096}; }
http {
    access_log off;
    client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1;
    uwsgi_temp_path $1; scgi_temp_path $1;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$2;
        $3
    }
}
CONF
}

# bench_key ERRGATE CONFIG [ARG...]: a new API key in CONFIG's store
# (`errgate keys create --name bench ARG...`); prints its secret.
bench_key() {
    _eg=$1 _cf=$2; shift 2
    "$_eg" keys create --config "$_cf" --name bench "$@" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])'
}

# policy_conf FILE PORT STORE UPSTREAM_PORT [ROUTE_LINES]: the policy
# benchmarks' gateway (bench/policy*.sh): one worker, logs off, the SQLite
# store `{ backend: sqlite, path: STORE }` (STORE may add options after the
# path), the upstream at UPSTREAM_PORT, and the routes /v1/ (no policy),
# /auth/ (API key) and /quota/ (API key and a monthly quota), then
# ROUTE_LINES as given.
policy_conf() {
    cat > "$1" <<CONF
listen: 127.0.0.1:$2
workers: 1
log: { access: off, errors: off }
store: { backend: sqlite, path: $3 }
upstreams:
  up: { servers: ["127.0.0.1:$4"], keepalive: 64 }
routes:
  - { path: /v1/, upstream: up }
  - { path: /auth/, upstream: up, auth: api_key }
  - { path: /quota/, upstream: up, auth: api_key, quota: { limit: 2000000000, period: month } }
CONF
    [ -z "${5:-}" ] || printf '%s\n' "$5" >> "$1"
}

# need_errgate [HINT]: $ERRGATE must be built, else exit 2 ("build first (HINT)").
need_errgate() { [ -x "$ERRGATE" ] || { echo "bench: build first${1:+ ($1)}" >&2; exit 2; }; }

# need_tools TOOL...: each on PATH (which gets /usr/sbin, nginx's place),
# else exit 2 saying how to get it.
need_tools() {
    PATH="$PATH:/usr/sbin"
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || { echo "bench: $t is missing (scripts/deps.sh --bench)" >&2; exit 2; }
    done
}

# bench_tmp NAME: a new $TMP (/tmp/NAME.XXXXXX) and an empty $PIDS; on exit
# the PIDS are killed and TMP removed (BENCH_KEEP=1 keeps it to look at).
bench_tmp() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=""
    trap cleanup EXIT INT TERM
}
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$TMP"; }

# ticks_of PID: the process's CPU time (utime + stime, its threads
# included) in clock ticks (getconf CLK_TCK a second).
ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# median: of the numbers on stdin, one a line (the mean of the two middle
# ones when there are an even number).
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# tls_peers NGINX_LISTEN ALPN CURL_FLAGS: bench/tls.sh's and bench/h2.sh's
# three TLS proxies alike (one worker each, one EC P-256 self-signed
# certificate, one cipher list) in front of one nginx `return 200`: nginx
# (`listen ... ssl NGINX_LISTEN`), haproxy (`alpn ALPN`) and errgate, each
# waited for with `curl CURL_FLAGS`. Sets CIPHERS, UP NG HA EG (ports),
# NGPID NGWORKER HAPID EGPID; needs $TMP, $PIDS, $ERRGATE and port().
tls_peers() {
CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
cat "$TMP/cert.pem" "$TMP/key.pem" > "$TMP/both.pem"

UP=$(port); NG=$(port); HA=$(port); EG=$(port)
mkdir -p "$TMP/up" "$TMP/ng"
upstream_conf "$TMP/up" "$UP" "location / { default_type application/json; return 200 '{\"message\":\"hello\"}'; }"
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
        listen 127.0.0.1:$NG ssl$1;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers $CIPHERS;
        ssl_session_tickets on;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-ID \$request_id;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme";
            add_header X-Request-ID \$request_id always;
        }
    }
}
CONF
cat > "$TMP/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4000
    ssl-default-bind-ciphers $CIPHERS
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend fe
    bind 127.0.0.1:$HA ssl crt $TMP/both.pem alpn $2 ssl-min-ver TLSv1.2
    unique-id-format %{+X}o\ %ci%cp%fp%Ts%rt%pid
    unique-id-header X-Request-ID
    http-response set-header X-Request-ID %[unique-id]
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    http-request set-header Forwarded "for=%[src];proto=https"
    default_backend be
backend be
    server up 127.0.0.1:$UP
CONF
cat > "$TMP/errgate.yaml" <<CONF
listen:
  - address: 127.0.0.1:$EG
    tls: { cert: $TMP/cert.pem, key: $TMP/key.pem }
workers: 1
errors: { dialect: problem }
log: { access: off, errors: off }
upstreams:
  up: { servers: ["127.0.0.1:$UP"], keepalive: 64 }
routes:
  - path: /
    upstream: up
CONF
nginx -c "$TMP/up/nginx.conf" -p "$TMP/up" & PIDS="$PIDS $!"
nginx -c "$TMP/ng/nginx.conf" -p "$TMP/ng" & PIDS="$PIDS $!"; NGPID=$!
haproxy -q -f "$TMP/haproxy.cfg" & PIDS="$PIDS $!"; HAPID=$!
"$ERRGATE" serve --config "$TMP/errgate.yaml" & PIDS="$PIDS $!"; EGPID=$!
for p in $NG $HA $EG; do
    i=0; until curl -sk $3 -o /dev/null "https://127.0.0.1:$p/v1/x"; do
        i=$((i+1)); [ $i -lt 100 ] || { echo "bench: port $p did not answer" >&2; exit 1; }; sleep 0.1; done
done
NGWORKER=$(pgrep -P "$NGPID" | head -1)
}

# paired_rounds WHAT: ROUNDS rounds of the script's run_off then run_on
# (each prints "req/s cpu_us_per_request"), a line a round, then the CPU per
# request of each as medians and the median of each round's own on/off
# ratio with its range (a paired ratio cancels the machine's drift).
paired_rounds() {
    what=$1
    : > "$TMP/on.cpu"; : > "$TMP/off.cpu"; : > "$TMP/ratio"
    r=1
    while [ $r -le "$ROUNDS" ]; do
        set -- $(run_off); off_rps=$1; off_cpu=$2
        set -- $(run_on); on_rps=$1; on_cpu=$2
        echo "$on_cpu" >> "$TMP/on.cpu"; echo "$off_cpu" >> "$TMP/off.cpu"
        awk -v a="$on_cpu" -v b="$off_cpu" 'BEGIN { printf "%.4f\n", a / b }' >> "$TMP/ratio"
        echo "  round $r: off $off_rps req/s $off_cpu us CPU/req; on $on_rps req/s $on_cpu us CPU/req"
        r=$((r + 1))
    done
    on=$(median < "$TMP/on.cpu"); off=$(median < "$TMP/off.cpu"); ratio=$(median < "$TMP/ratio")
    lo=$(sort -n "$TMP/ratio" | head -1); hi=$(sort -n "$TMP/ratio" | tail -1)
    awk -v w="$what" -v on="$on" -v off="$off" -v r="$ratio" -v lo="$lo" -v hi="$hi" 'BEGIN {
        printf "CPU per proxied request: %soff %.3f us, on %.3f us: %+.1f%% (medians); paired %+.1f%% (range %+.1f%% .. %+.1f%%)\n",
               w, off, on, (on / off - 1) * 100, (r - 1) * 100, (lo - 1) * 100, (hi - 1) * 100 }'
}
