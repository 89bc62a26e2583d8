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
