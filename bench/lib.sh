# bench/lib.sh - shared by the benchmark scripts (sourced, not run): a free
# loopback port, and the nginx upstream every benchmark proxies to, written
# once so the scripts measure errgate against the same upstream.

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
