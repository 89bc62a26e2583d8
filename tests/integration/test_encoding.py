"""Compressed upstream errors (issue 27): a gzip, x-gzip or deflate error
body is decoded before it is translated, and the translated answer leaves
uncompressed with its own Content-Length; a body that cannot be decoded
(br, a corrupt stream) or that inflates past the bounds passes through as
it came, with one log line; a 5xx past the bounds becomes the catalog's
error. The upstream's bodies are compressed here by Python's gzip and zlib,
and the expected words are written here."""
import gzip
import json
import zlib

import pytest

from conftest import Gateway, QuietHandler, ThreadedUpstream, free_port, request

FLAT_CAMEL = json.dumps({"error": "VALIDATION_ERROR", "message": "Invalid request parameters", "statusCode": 400,
                         "details": {"fields": {"email": ["Invalid email format"]}}}).encode()
TYPED_404 = json.dumps({"error": {"type": "not_found_error", "message": "No user with id 7",
                                  "code": "NOT_FOUND"}}).encode()
LEAKY_500 = json.dumps({"error": {"type": "internal_error", "code": "DATABASE_ERROR",
                                  "message": "relation users does not exist at 10.0.3.17"}}).encode()


def raw_deflate(b):
    c = zlib.compressobj(wbits=-15)
    return c.compress(b) + c.flush()


def corrupt(b):
    b = bytearray(b)
    b[-6] ^= 1  # the gzip trailer's CRC-32
    return bytes(b)


BOMB = gzip.compress(b"x" * (1 << 20), mtime=0)  # 1 MiB from about 1 KiB: past 100 times and 64 KiB
# path -> (status, Content-Encoding, body as sent, chunked)
ROUTES = {
    "/gzip": (400, "gzip", gzip.compress(FLAT_CAMEL, mtime=0), False),
    "/x-gzip": (404, "x-gzip", gzip.compress(TYPED_404), False),
    "/gzip-chunked": (400, "GZIP", gzip.compress(FLAT_CAMEL), True),
    "/deflate": (400, "deflate", zlib.compress(FLAT_CAMEL), False),
    "/raw-deflate": (404, "deflate", raw_deflate(TYPED_404), False),
    "/gzip-500": (500, "gzip", gzip.compress(LEAKY_500), False),
    "/br": (400, "br", b"\x1b\x8d\x00\xf8\x25\x14\x6c\x6c\x84\x43\x8f\x07\x8c\xfe", False),
    "/stacked": (400, "gzip, br", b"not decodable here", False),
    "/corrupt": (400, "gzip", corrupt(gzip.compress(FLAT_CAMEL, mtime=0)), False),
    "/truncated": (404, "gzip", gzip.compress(TYPED_404)[:25], True),
    "/bomb-400": (400, "gzip", BOMB, False),
    "/bomb-503": (503, "gzip", BOMB, False),
    "/br-502": (502, "br", b"\x1b\x8d\x00\xf8\x25\x14\x6c\x6c\x84\x43\x8f\x07\x8c\xfe", False),
    "/corrupt-500": (500, "gzip", corrupt(gzip.compress(LEAKY_500, mtime=0)), False),
    "/identity": (400, "identity", FLAT_CAMEL, False),
}


class H(QuietHandler):
    def do_GET(self):
        status, coding, body, chunked = ROUTES[self.path]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", coding)
        self.send_header("Vary", "Accept-Encoding")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = len(body) // 2
            for part in (body[:half], body[half:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture(scope="module")
def gz():
    import tempfile
    app = ThreadedUpstream(H)
    tmp = tempfile.mkdtemp(prefix="eg-encoding-")
    port, admin = free_port(), free_port()
    cfg = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
errors: {{ dialect: problem, negotiate: false }}
upstreams:
  app: {{ servers: ["127.0.0.1:{app.port}"] }}
routes:
  - {{ path: /, upstream: app }}
"""
    g = Gateway(tmp, cfg, port, admin)
    yield g
    try:
        assert g.stop() == 0
    finally:
        app.close()


def translated(r, status):
    """A translated answer: the status, in the dialect, not compressed, framed by its own length."""
    assert r.status == status, r.body
    assert r.header("Content-Encoding") is None
    assert r.header("Content-Type") == "application/problem+json"
    assert int(r.header("Content-Length")) == len(r.body)
    return r.json()


@pytest.mark.parametrize("path", ["/gzip", "/gzip-chunked", "/deflate", "/identity"])
def test_a_compressed_validation_error_is_translated_from_its_words(gz, path):
    r = request(gz.port, "GET", path, headers={"X-Request-ID": "gz-1", "Accept-Encoding": "gzip, deflate"})
    # the problem dialect answers the validation class with 422 (docs/validation.md),
    # whatever status the upstream used
    body = translated(r, 422)
    assert body["code"] == "validation_error"
    assert body["detail"] == "Invalid request parameters"
    assert body["request_id"] == "gz-1"
    assert [(e["field"], e["detail"]) for e in body["errors"]] == [("email", "Invalid email format")]
    assert r.header("X-Error-Code") == "validation_error"


@pytest.mark.parametrize("path", ["/x-gzip", "/raw-deflate"])
def test_x_gzip_and_raw_deflate(gz, path):
    body = translated(request(gz.port, "GET", path), 404)
    assert body["code"] == "not_found" and body["detail"] == "No user with id 7"


def test_a_compressed_5xx_keeps_its_internals_in(gz):
    r = request(gz.port, "GET", "/gzip-500")
    body = translated(r, 500)
    assert body["code"] == "database_error"
    assert "10.0.3.17" not in r.body.decode() and "relation" not in r.body.decode()


def log_for(gz, rid):
    return gz.wait_log(lambda l: l.get("kind") == "upstream_error" and l.get("request_id") == rid,
                       f"the upstream_error line of {rid}")


@pytest.mark.parametrize("path,why", [
    ("/br", "error body in Content-Encoding 'br' cannot be decoded: passed through untranslated"),
    ("/stacked", "error body in Content-Encoding 'gzip, br' cannot be decoded: passed through untranslated"),
    ("/corrupt", "gzip error body cannot be decoded (corrupt or truncated): passed through untranslated"),
    ("/truncated", "gzip error body cannot be decoded (corrupt or truncated): passed through untranslated"),
    ("/bomb-400", "gzip error body decodes to more than max_translate_body or 100 times its size: passed "
                  "through untranslated"),
])
def test_what_cannot_be_decoded_passes_through_with_one_log_line(gz, path, why):
    status, coding, sent, _ = ROUTES[path]
    rid = "pass" + path.replace("/", "-")
    r = request(gz.port, "GET", path, headers={"X-Request-ID": rid})
    assert r.status == status
    assert r.header("Content-Encoding") == coding
    assert r.body == sent  # byte for byte as the upstream sent it
    assert r.header("X-Request-ID") == rid
    lines = log_for(gz, rid)
    assert len(lines) == 1 and lines[0]["why"] == why and lines[0]["status"] == status
    # the connection and the gateway are fine afterwards
    assert request(gz.port, "GET", "/gzip").status == 422


def test_a_5xx_bomb_becomes_the_catalogs_error(gz):
    r = request(gz.port, "GET", "/bomb-503", headers={"X-Request-ID": "bomb-503"})
    body = translated(r, 503)
    assert body["code"] == "service_unavailable"
    assert "xxxx" not in r.body.decode()
    lines = log_for(gz, "bomb-503")
    assert any(l.get("why") == "gzip error body decodes to more than max_translate_body or 100 times its "
               "size: answered with the catalog's error" for l in lines)


@pytest.mark.parametrize("path,code,why", [
    ("/br-502", "bad_gateway", "error body in Content-Encoding 'br' cannot be decoded: answered with the "
     "catalog's error"),
    ("/corrupt-500", "internal_error", "gzip error body cannot be decoded (corrupt or truncated): answered "
     "with the catalog's error"),
])
def test_a_5xx_that_cannot_be_decoded_becomes_the_catalogs_error(gz, path, code, why):
    # a 5xx may carry internals (a stack trace): what the gateway cannot read
    # is not passed on as it came, unlike a 4xx
    status = ROUTES[path][0]
    rid = "undecodable" + path.replace("/", "-")
    r = request(gz.port, "GET", path, headers={"X-Request-ID": rid})
    body = translated(r, status)
    assert body["code"] == code
    assert r.header("Content-Encoding") is None
    assert r.body != ROUTES[path][2]
    lines = log_for(gz, rid)
    assert any(l.get("why") == why for l in lines), [l.get("why") for l in lines]
