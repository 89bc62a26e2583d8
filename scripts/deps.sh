#!/bin/sh
# Installs the Debian packages errgate needs to build, test and run, and only
# those that are missing. Needs root (or sudo) only when something is missing.
# --test adds what only the tests need (a headless browser, `make test`),
# --bench the benchmark tools (`make bench`).
set -eu
PKGS="cmake make pkg-config gcc clang libclang-rt-14-dev libjansson-dev libyaml-dev \
libcmocka-dev libpcre2-dev libuv1-dev libssl-dev libcurl4-openssl-dev libnghttp2-dev libsqlite3-dev libhiredis-dev zlib1g-dev libsystemd-dev libpq-dev \
redis-server nginx openssl python3 python3-pytest python3-pytest-xdist python3-requests"
case "${1:-}" in
  --test) PKGS="$PKGS chromium chromium-driver python3-selenium systemd logrotate groff-base prometheus python3-prometheus-client curl nghttp2-client python3-h2 postgresql" ;; # test_h2.py (h2load, hpack), test_metering_pg.py (a PostgreSQL server), test_cors_browser.py, test_service.py, test_install.py, test_metrics.py (promtool, OpenMetrics parser), test_tls.py and test_upgrade.py (curl)
  --bench) PKGS="$PKGS wrk haproxy valgrind nghttp2-client" ;; # bench/h2.sh (h2load)
esac
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
