#!/bin/sh
# tests/tls/testssl.sh ERRGATE - testssl.sh (Debian's testssl) against an
# errgate HTTPS listener; fails when any finding is rated HIGH or CRITICAL.
# Opt-in (it takes about a minute): `ctest -C testssl -L testssl`, or run it
# directly. The certificate is made here by the openssl CLI, from a test CA
# that testssl is told to trust (--add-ca), valid for 400 days and naming an
# OCSP responder and a CRL, so that the certificate's own findings (expiry,
# no revocation information) do not hide the server's. BIN_TESTSSL overrides
# the testssl path.
set -eu
ERRGATE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
TESTSSL=${BIN_TESTSSL:-$(command -v testssl || command -v testssl.sh || true)}
[ -n "$TESTSSL" ] || { echo "testssl: not installed (apt-get install testssl.sh)" >&2; exit 1; }
TMP=$(mktemp -d)
UPID=""; GPID=""
cleanup() { for p in $GPID $UPID; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
cd "$TMP"
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
    -days 800 -subj "/CN=errgate testssl CA" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr \
    -subj "/CN=localhost" 2>/dev/null
cat > srv.ext <<EXT
basicConstraints=CA:FALSE
subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth
keyUsage=digitalSignature
authorityInfoAccess=OCSP;URI:http://ocsp.errgate.test/
crlDistributionPoints=URI:http://crl.errgate.test/ca.crl
EXT
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 400 -out srv.pem \
    -extfile srv.ext 2>/dev/null
UP=$(free_port); GW=$(free_port)
cat > gw.yaml <<CONF
listen:
  - address: 127.0.0.1:$GW
    tls: { cert: srv.pem, key: srv.key }
workers: 1
log: { access: off }
upstreams:
  demo: { servers: ["127.0.0.1:$UP"] }
routes:
  - { path: /, upstream: demo }
CONF
"$ERRGATE" demo-upstream --listen "127.0.0.1:$UP" >/dev/null 2>&1 & UPID=$!
"$ERRGATE" serve --config gw.yaml >gw.log 2>&1 & GPID=$!
i=0
until curl -sk -o /dev/null "https://127.0.0.1:$GW/"; do
    i=$((i + 1)); [ $i -lt 300 ] || { echo "testssl: gateway did not answer" >&2; cat gw.log >&2; exit 1; }; sleep 0.1
done
timeout 600 "$TESTSSL" --add-ca "$TMP/ca.pem" --quiet --color 0 --warnings off --jsonfile "$TMP/out.json" \
    "127.0.0.1:$GW" >"$TMP/out.txt" 2>&1 || true
/usr/bin/python3 - "$TMP/out.json" <<'PY'
import collections, json, sys
d = json.load(open(sys.argv[1]))
bad = [x for x in d if x["severity"] in ("HIGH", "CRITICAL")]
print("testssl:", dict(collections.Counter(x["severity"] for x in d)))
for x in d:
    if x["severity"] not in ("OK", "INFO"):
        print(f'  {x["severity"]:8} {x["id"]}: {x["finding"][:150]}')
sys.exit(1 if bad or not d else 0)
PY
