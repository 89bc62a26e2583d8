/* test_http1.c - the strict HTTP/1.1 parser: requests, responses, limits,
 * every smuggling-shaped rejection, and the chunked reader. */
#include "testutil.h"

#include "errgate/http1.h"

static const eg_http1_limits_t lim = {.max_head = 8192, .max_headers = 32, .max_uri = 1024};

typedef struct {
    int rc;
    eg_http1_msg_t m;
    eg_http_header_t h[64];
} parsed_t;

static parsed_t *req(const char *s)
{
    static parsed_t p;
    size_t scanned = 0;
    p.rc = eg_http1_parse_request(s, strlen(s), &lim, p.h, 64, &scanned, &p.m);
    return &p;
}

static void expect_reject(const char *s, eg_http1_error_t err, const char *why)
{
    parsed_t *p = req(s);
    if (p->rc != EG_EPARSE) fail_msg("accepted: %s", s);
    if (p->m.error != err) fail_msg("error %d, want %d for: %s", p->m.error, err, s);
    if (why && strcmp(p->m.why, why) != 0) fail_msg("why '%s', want '%s' for: %s", p->m.why, why, s);
}

static void test_simple_get(void **state)
{
    (void)state;
    const char *s = "GET /v1/search?q=x HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\nX-Empty:\r\n\r\n";
    parsed_t *p = req(s);
    assert_int_equal(p->rc, (int)strlen(s));
    assert_int_equal(p->m.method_len, 3);
    assert_memory_equal(p->m.method, "GET", 3);
    assert_int_equal(p->m.target_len, 14);
    assert_memory_equal(p->m.target, "/v1/search?q=x", 14);
    assert_int_equal(p->m.minor_version, 1);
    assert_int_equal(p->m.nheaders, 3);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    assert_true(p->m.keep_alive);
    const eg_http_header_t *h = eg_http1_header(&p->m, "host");
    assert_non_null(h);
    assert_int_equal(h->value_len, 15);
    assert_memory_equal(h->value, "api.example.com", 15);
    assert_int_equal(eg_http1_header(&p->m, "x-empty")->value_len, 0);
    assert_null(eg_http1_header(&p->m, "cookie"));
}

static void test_post_with_length_and_trimmed_values(void **state)
{
    (void)state;
    parsed_t *p = req("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length:   12 \t\r\nConnection: close\r\n\r\nbody");
    assert_true(p->rc > 0);
    assert_int_equal(p->m.framing, EG_FRAMING_LENGTH);
    assert_int_equal(p->m.content_length, 12);
    assert_false(p->m.keep_alive);
    p = req("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    assert_true(p->rc > 0);
    assert_int_equal(p->m.framing, EG_FRAMING_CHUNKED);
    assert_true(p->m.expect_continue);
    p = req("GET / HTTP/1.0\r\n\r\n");
    assert_true(p->rc > 0);
    assert_false(p->m.keep_alive);
    p = req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(p->m.keep_alive);
    p = req("GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_true(p->m.upgrade);
}

static void test_pipelined_requests_parse_from_offset(void **state)
{
    (void)state;
    const char *two = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    parsed_t *p = req(two);
    assert_int_equal(p->rc, 28);
    p = req(two + 28);
    assert_int_equal(p->rc, 28);
    assert_memory_equal(p->m.target, "/b", 2);
}

/* Byte-by-byte feeding gives EAGAIN until the end, then the same result. */
static void test_incremental_feeding(void **state)
{
    (void)state;
    const char *s = "PUT /items/7 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    size_t n = strlen(s), scanned = 0;
    eg_http1_msg_t m;
    eg_http_header_t h[8];
    for (size_t i = 1; i < n; i++)
        assert_int_equal(eg_http1_parse_request(s, i, &lim, h, 8, &scanned, &m), EG_EAGAIN);
    assert_int_equal(eg_http1_parse_request(s, n, &lim, h, 8, &scanned, &m), (int)n);
    assert_int_equal(m.content_length, 5);
    assert_int_equal(scanned, n);
}

static void test_smuggling_shapes_are_rejected(void **state)
{
    (void)state;
    const eg_http1_error_t B = EG_HTTP1_BAD_REQUEST;
    expect_reject("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", B,
                  "both Content-Length and Transfer-Encoding");
    expect_reject("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", B,
                  "several Content-Length headers");
    expect_reject("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1,1\r\n\r\n", B, "invalid Content-Length");
    expect_reject("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", B, "invalid Content-Length");
    expect_reject("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", B, "invalid Content-Length");
    expect_reject("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", B, "invalid Content-Length");
    expect_reject("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1234567890123456789\r\n\r\n", B, "invalid Content-Length");
    expect_reject("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", B,
                  "Transfer-Encoding other than a final chunked");
    expect_reject("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", B,
                  "Transfer-Encoding other than a final chunked");
    expect_reject("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", B,
                  "Transfer-Encoding other than a final chunked");
    expect_reject("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", B, "Transfer-Encoding in an HTTP/1.0 request");
    expect_reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n", B, "obsolete line folding");
    expect_reject("GET / HTTP/1.1\r\nHost : h\r\n\r\n", B, "whitespace before colon");
    expect_reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", B, "bare CR in header");
    expect_reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nX-B: b\r\n\r\n", B, "bare LF (lines must end with CRLF)");
    expect_reject("GET / HTTP/1.1\nHost: h\n\n", B, "bare LF (lines must end with CRLF)");
    static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n";
    size_t scanned = 0;
    eg_http1_msg_t m;
    eg_http_header_t h[8];
    assert_int_equal(eg_http1_parse_request(nul, sizeof(nul) - 1, &lim, h, 8, &scanned, &m), EG_EPARSE);
    assert_string_equal(m.why, "control character in header");
    expect_reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n", B, "control character in header");
    expect_reject("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", B, "invalid request-target");
    expect_reject("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", B, "invalid request-target");
    expect_reject("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", B, "invalid method");
    expect_reject(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", B, "invalid method");
    expect_reject("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", B, "invalid request-target");
    expect_reject("GET / HTTP/2.0\r\nHost: h\r\n\r\n", B, "invalid HTTP version");
    expect_reject("GET / http/1.1\r\nHost: h\r\n\r\n", B, "invalid HTTP version");
    expect_reject("GET / HTTP/1.1\r\n\r\n", B, "missing Host header");
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", B, "several Host headers");
    expect_reject("GET example.com HTTP/1.1\r\nHost: h\r\n\r\n", B, "invalid request-target");
    expect_reject("GET / HTTP/1.1\r\nHost: h\r\n: novalue\r\n\r\n", B, "invalid header name");
}

static void test_limits_give_414_and_431(void **state)
{
    (void)state;
    char big[12000];
    /* an over-long target is 414, even before the head is complete */
    strcpy(big, "GET /");
    memset(big + 5, 'a', 2000);
    big[2005] = '\0';
    expect_reject(big, EG_HTTP1_URI_TOO_LONG, "request-target too long");
    strcat(big, " HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_reject(big, EG_HTTP1_URI_TOO_LONG, "request-target too long");
    /* too many headers */
    strcpy(big, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < 40; i++) strcat(big, "X-A: b\r\n");
    strcat(big, "\r\n");
    expect_reject(big, EG_HTTP1_HEADERS_TOO_LARGE, "too many headers");
    /* a header section larger than max_head, complete or not */
    strcpy(big, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
    size_t l = strlen(big);
    memset(big + l, 'b', 9000);
    big[l + 9000] = '\0';
    expect_reject(big, EG_HTTP1_HEADERS_TOO_LARGE, "header section too large");
    strcat(big, "\r\n\r\n");
    expect_reject(big, EG_HTTP1_HEADERS_TOO_LARGE, "header section too large");
}

static parsed_t *resp(const char *s, int head)
{
    static parsed_t p;
    size_t scanned = 0;
    p.rc = eg_http1_parse_response(s, strlen(s), &lim, p.h, 64, &scanned, head, &p.m);
    return &p;
}

static void test_responses(void **state)
{
    (void)state;
    parsed_t *p = resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 0);
    assert_int_equal(p->rc, 38);
    assert_int_equal(p->m.status, 200);
    assert_memory_equal(p->m.reason, "OK", 2);
    assert_int_equal(p->m.framing, EG_FRAMING_LENGTH);
    assert_true(p->m.keep_alive);
    p = resp("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_CHUNKED);
    p = resp("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    p = resp("HTTP/1.1 304 Not Modified\r\n\r\n", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    p = resp("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 1);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    p = resp("HTTP/1.0 200 OK\r\n\r\n", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_UNTIL_CLOSE);
    assert_false(p->m.keep_alive);
    p = resp("HTTP/1.1 503 \r\n\r\n", 0);
    assert_true(p->rc > 0);
    assert_int_equal(p->m.reason_len, 0);
    assert_int_equal(resp("HTTP/1.1 20 OK\r\n\r\n", 0)->rc, EG_EPARSE);
    assert_int_equal(resp("HTTP/1.1 600 Nope\r\n\r\n", 0)->rc, EG_EPARSE);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 0)->rc, EG_EPARSE);
    assert_int_equal(resp("ICY 200 OK\r\n\r\n", 0)->rc, EG_EPARSE);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 1", 0)->rc, EG_EAGAIN);
}

/* Feeds a chunked body in pieces of `step` bytes; returns the decoded data. */
static int chunked_run(const char *body, size_t step, char *out, size_t *outlen, const char **why)
{
    eg_chunked_t st;
    memset(&st, 0, sizeof(st));
    size_t n = strlen(body), pos = 0, o = 0;
    while (pos < n) {
        size_t avail = n - pos < step ? n - pos : step;
        size_t used = 0;
        const char *d;
        size_t dl;
        int rc = eg_chunked_data(&st, body + pos, avail, 256, &used, &d, &dl);
        memcpy(out + o, d ? d : "", dl);
        o += dl;
        pos += used;
        if (rc == EG_OK) {
            *outlen = o;
            return pos == n ? EG_OK : EG_ERANGE;
        }
        if (rc == EG_EPARSE) {
            *why = st.why;
            return rc;
        }
    }
    *outlen = o;
    return EG_EAGAIN;
}

static void test_chunked_bodies(void **state)
{
    (void)state;
    const char *ok[] = {
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        "5;ext=1;name=\"quoted \\\" value\"\r\nhello\r\n6;x\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n",
        "A\r\nhello worl\r\n1\r\nd\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < 3; i++) {
        for (size_t step = 1; step <= 64; step *= 2) {
            char out[64];
            size_t ol = 0;
            const char *why = NULL;
            int rc = chunked_run(ok[i], step, out, &ol, &why);
            if (rc != EG_OK) fail_msg("body %zu step %zu: rc %d (%s)", i, step, rc, why ? why : "");
            assert_int_equal(ol, 11);
            assert_memory_equal(out, "hello world", 11);
        }
    }
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"x\r\n", "invalid chunk size"},
        {"\r\n", "invalid chunk size"},
        {"10000000000000000\r\n", "chunk size too large"},
        {"5;a b\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"},
        {"5;a=\x01\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"},
        {"5\rhello", "bare CR after chunk size"},
        {"5\r\nhelloXX0\r\n\r\n", "missing CRLF after chunk data"},
        {"0\r\n folded\r\n\r\n", "obsolete line folding in trailer"},
        {"0\r\nX: a\rb\r\n\r\n", "bare CR in trailer"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[64];
        size_t ol = 0;
        const char *why = NULL;
        int rc = chunked_run(bad[i].body, 3, out, &ol, &why);
        if (rc != EG_EPARSE || strcmp(why, bad[i].why) != 0)
            fail_msg("bad body %zu: rc %d why '%s', want '%s'", i, rc, why ? why : "", bad[i].why);
    }
    /* eg_chunked_feed: consumed stops exactly at the end, leaving the next request */
    eg_chunked_t st;
    memset(&st, 0, sizeof(st));
    const char *two = "3\r\nabc\r\n0\r\n\r\nGET /";
    size_t used = 0;
    assert_int_equal(eg_chunked_feed(&st, two, strlen(two), 256, &used), EG_OK);
    assert_int_equal(used, strlen(two) - 5);
    assert_int_equal(st.body_bytes, 3);
}

static void test_token_lists(void **state)
{
    (void)state;
    assert_true(eg_http1_has_token("keep-alive, Close", 17, "close"));
    assert_true(eg_http1_has_token(" close ", 7, "close"));
    assert_false(eg_http1_has_token("closed", 6, "close"));
    assert_false(eg_http1_has_token("", 0, "close"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_post_with_length_and_trimmed_values),
        cmocka_unit_test(test_pipelined_requests_parse_from_offset),
        cmocka_unit_test(test_incremental_feeding),
        cmocka_unit_test(test_smuggling_shapes_are_rejected),
        cmocka_unit_test(test_limits_give_414_and_431),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_chunked_bodies),
        cmocka_unit_test(test_token_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
