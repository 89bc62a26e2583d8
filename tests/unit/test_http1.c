/* test_http1.c - the strict HTTP/1.1 parser: requests, responses, limits,
 * every smuggling-shaped rejection with its reason, incremental feeding, and
 * the chunked decoder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/http1.h"

static const eg_http1_limits_t lim = {.max_head = 8192, .max_headers = 32, .max_uri = 1024};

typedef struct {
    int rc;
    eg_http1_msg_t m;
    eg_http_header_t h[64];
} parsed_t;

/* Parses buf[0..n) in one call with the given limits. */
static parsed_t *req_n(const char *s, size_t n, const eg_http1_limits_t *l)
{
    static parsed_t p;
    size_t scanned = 0;
    memset(&p, 0, sizeof(p));
    p.rc = eg_http1_parse_request(s, n, l, p.h, 64, &scanned, &p.m);
    return &p;
}

static parsed_t *req(const char *s)
{
    return req_n(s, strlen(s), &lim);
}

static parsed_t *resp(const char *s, int head_request)
{
    static parsed_t p;
    size_t scanned = 0;
    memset(&p, 0, sizeof(p));
    p.rc = eg_http1_parse_response(s, strlen(s), &lim, p.h, 64, &scanned, head_request, &p.m);
    return &p;
}

static void check_reject(const parsed_t *p, const char *s, eg_http1_error_t err, const char *why)
{
    if (p->rc != EG_EPARSE) fail_msg("rc %d, want EG_EPARSE for: %s", p->rc, s);
    if (p->m.error != err) fail_msg("error %d, want %d for: %s", (int)p->m.error, (int)err, s);
    if (strcmp(p->m.why, why) != 0) fail_msg("why '%s', want '%s' for: %s", p->m.why, why, s);
}

static void reject(const char *s, const char *why)
{
    check_reject(req(s), s, EG_HTTP1_BAD_REQUEST, why);
}

static void reject_n(const char *s, size_t n, const char *why)
{
    check_reject(req_n(s, n, &lim), s, EG_HTTP1_BAD_REQUEST, why);
}

static void test_simple_get_yields_slices_into_the_buffer(void **state)
{
    (void)state;
    const char *s = "GET /v1/search?q=x HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\nX-Empty:\r\n\r\n";
    parsed_t *p = req(s);
    assert_int_equal(p->rc, (int)strlen(s));
    assert_int_equal(p->m.head_len, strlen(s));
    assert_ptr_equal(p->m.method, s);
    assert_int_equal(p->m.method_len, 3);
    assert_ptr_equal(p->m.target, s + 4);
    assert_int_equal(p->m.target_len, 14);
    assert_int_equal(p->m.minor_version, 1);
    assert_int_equal(p->m.nheaders, 3);
    assert_ptr_equal(p->m.headers, p->h);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    assert_true(p->m.keep_alive);
    assert_false(p->m.expect_continue);
    assert_false(p->m.upgrade);
    assert_int_equal(p->m.host_len, 15);
    assert_memory_equal(p->m.host, "api.example.com", 15);
    assert_int_equal(p->m.error, EG_HTTP1_OK);
    assert_null(p->m.why);
    const eg_http_header_t *h = eg_http1_header(&p->m, "ACCEPT");
    assert_non_null(h);
    assert_ptr_equal(h->name, strstr(s, "Accept"));
    assert_int_equal(h->value_len, 3);
    assert_memory_equal(h->value, "*/*", 3);
    assert_int_equal(eg_http1_header(&p->m, "x-empty")->value_len, 0);
    assert_null(eg_http1_header(&p->m, "cookie"));
}

static void test_post_with_content_length_frames_the_body(void **state)
{
    (void)state;
    const char *s = "POST /items HTTP/1.1\r\nHost: h\r\nContent-Length:   12 \t\r\n\r\n{\"a\":\"b\"}...";
    parsed_t *p = req(s);
    assert_int_equal(p->rc, (int)(strstr(s, "{") - s));
    assert_memory_equal(p->m.method, "POST", 4);
    assert_int_equal(p->m.framing, EG_FRAMING_LENGTH);
    assert_int_equal(p->m.content_length, 12);
    assert_memory_equal(eg_http1_header(&p->m, "content-length")->value, "12", 2);
    assert_int_equal(eg_http1_header(&p->m, "content-length")->value_len, 2);
    /* the largest accepted length: 18 digits */
    p = req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n");
    assert_true(p->rc > 0);
    assert_true(p->m.content_length == 999999999999999999ULL);
    p = req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(p->m.framing, EG_FRAMING_LENGTH);
    assert_int_equal(p->m.content_length, 0);
    p = req("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
    assert_true(p->rc > 0);
    assert_int_equal(p->m.framing, EG_FRAMING_CHUNKED);
}

static void test_connection_options_expect_and_upgrade(void **state)
{
    (void)state;
    parsed_t *p = req("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_true(p->rc > 0);
    assert_false(p->m.keep_alive);
    p = req("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE \r\n\r\n");
    assert_false(p->m.keep_alive);
    p = req("GET / HTTP/1.0\r\n\r\n");
    assert_true(p->rc > 0);
    assert_int_equal(p->m.minor_version, 0);
    assert_false(p->m.keep_alive);
    assert_null(p->m.host);
    p = req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert_true(p->m.keep_alive);
    p = req("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert_false(p->m.keep_alive);
    p = req("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
    assert_true(p->m.expect_continue);
    p = req("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continued\r\nContent-Length: 3\r\n\r\n");
    assert_false(p->m.expect_continue);
    p = req("GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_true(p->m.upgrade);
    p = req("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
    assert_false(p->m.upgrade);
}

static void test_pipelined_requests_parse_from_the_offset(void **state)
{
    (void)state;
    const char *two = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi";
    parsed_t *p = req(two);
    assert_int_equal(p->rc, 28);
    assert_memory_equal(p->m.target, "/a", 2);
    p = req(two + 28);
    assert_int_equal(p->rc, (int)strlen(two + 28) - 2);
    assert_ptr_equal(p->m.target, two + 28 + 5);
    assert_memory_equal(p->m.target, "/b", 2);
    assert_int_equal(p->m.content_length, 2);
}

/* Compares two parse results field by field (slices by address). */
static void assert_same_result(int rc1, const eg_http1_msg_t *a, int rc2, const eg_http1_msg_t *b)
{
    assert_int_equal(rc1, rc2);
    assert_int_equal(a->error, b->error);
    if (rc1 < 0) {
        assert_string_equal(a->why, b->why);
        assert_int_equal(a->error_offset, b->error_offset);
        return;
    }
    assert_ptr_equal(a->method, b->method);
    assert_int_equal(a->method_len, b->method_len);
    assert_ptr_equal(a->target, b->target);
    assert_int_equal(a->target_len, b->target_len);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->minor_version, b->minor_version);
    assert_int_equal(a->nheaders, b->nheaders);
    assert_int_equal(a->framing, b->framing);
    assert_true(a->content_length == b->content_length);
    assert_int_equal(a->keep_alive, b->keep_alive);
    assert_int_equal(a->expect_continue, b->expect_continue);
    assert_int_equal(a->upgrade, b->upgrade);
    assert_int_equal(a->head_len, b->head_len);
}

/* Byte-by-byte feeding answers EG_EAGAIN until the head is complete, then
 * exactly what one call on the whole buffer answers - for good heads and
 * for heads refused only once complete. */
static void test_byte_by_byte_feeding_gives_the_same_result(void **state)
{
    (void)state;
    static const char *const heads[] = {
        "PUT /items/7 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\nX-Tab:\tv\t\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
    };
    for (size_t k = 0; k < sizeof(heads) / sizeof(heads[0]); k++) {
        const char *s = heads[k];
        size_t n = strlen(s), scanned = 0;
        eg_http1_msg_t m, whole;
        eg_http_header_t h[8], hw[8];
        int rc = EG_EAGAIN;
        size_t i = 1;
        for (; i <= n; i++) {
            rc = eg_http1_parse_request(s, i, &lim, h, 8, &scanned, &m);
            if (rc != EG_EAGAIN) break;
        }
        if (rc > 0) assert_int_equal(i, n); /* not a byte earlier */
        size_t fresh = 0;
        int rcw = eg_http1_parse_request(s, n, &lim, hw, 8, &fresh, &whole);
        assert_same_result(rc, &m, rcw, &whole);
        if (rc > 0) {
            assert_int_equal(scanned, n);
            for (size_t j = 0; j < m.nheaders; j++) {
                assert_ptr_equal(h[j].name, hw[j].name);
                assert_int_equal(h[j].value_len, hw[j].value_len);
            }
        }
    }
    /* responses too */
    const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t n = strlen(r), scanned = 0;
    eg_http1_msg_t m;
    eg_http_header_t h[4];
    for (size_t i = 1; i < n; i++)
        assert_int_equal(eg_http1_parse_response(r, i, &lim, h, 4, &scanned, 0, &m), EG_EAGAIN);
    assert_int_equal(eg_http1_parse_response(r, n, &lim, h, 4, &scanned, 0, &m), (int)n);
    assert_int_equal(m.framing, EG_FRAMING_CHUNKED);
}

static void test_rejects_content_length_with_transfer_encoding(void **state)
{
    (void)state;
    const char *s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    reject(s, "both Content-Length and Transfer-Encoding");
    assert_int_equal(req(s)->m.error_offset, (size_t)(strstr(s, "Transfer") - s));
    reject("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
           "both Content-Length and Transfer-Encoding");
}

static void test_rejects_two_content_lengths_even_if_equal(void **state)
{
    (void)state;
    const char *s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n";
    reject(s, "several Content-Length headers");
    assert_int_equal(req(s)->m.error_offset, (size_t)(strstr(s, "content-length") - s));
}

static void test_rejects_malformed_content_length(void **state)
{
    (void)state;
    static const char *const bad[] = {"1,1", "1, 1", "+5", "-1", "abc", "0x10", "5 5", "1e3",
                                      "1234567890123456789", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[128];
        snprintf(s, sizeof(s), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %s\r\n\r\n", bad[i]);
        reject(s, "invalid Content-Length");
    }
}

static void test_rejects_transfer_encoding_other_than_chunked(void **state)
{
    (void)state;
    static const char *const bad[] = {"gzip", "chunked, gzip", "gzip, chunked", "chunked;q=1",
                                      "chunked, chunked", "identity", "", "chunkedx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[128];
        snprintf(s, sizeof(s), "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: %s\r\n\r\n", bad[i]);
        reject(s, "Transfer-Encoding other than a final chunked");
    }
    reject("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
           "several Transfer-Encoding headers");
}

static void test_rejects_transfer_encoding_in_http10_request(void **state)
{
    (void)state;
    reject("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding in an HTTP/1.0 request");
    reject("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
           "Transfer-Encoding in an HTTP/1.0 request");
}

static void test_rejects_malformed_header_lines(void **state)
{
    (void)state;
    reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n", "obsolete line folding");
    reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\tfolded\r\n\r\n", "obsolete line folding");
    reject("GET / HTTP/1.1\r\n Host: h\r\n\r\n", "whitespace before the first header");
    reject("GET / HTTP/1.1\r\nHost : h\r\n\r\n", "whitespace before colon");
    reject("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", "whitespace before colon");
    reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", "bare CR in header");
    reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\r\n\r\n", "bare CR in header");
    reject("GET / HTTP/1.1\r\nHost: h\r\n\rX\r\n\r\n", "bare CR in header");
    reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nX-B: b\r\n\r\n", "bare LF (lines must end with CRLF)");
    reject("GET / HTTP/1.1\nHost: h\n\n", "bare LF (lines must end with CRLF)");
    reject("GET / HTTP/1.1\r\nHost: h\r\n\n", "bare LF (lines must end with CRLF)");
    static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n";
    reject_n(nul, sizeof(nul) - 1, "control character in header");
    assert_int_equal(req_n(nul, sizeof(nul) - 1, &lim)->m.error_offset, 31);
    static const char nul_name[] = "GET / HTTP/1.1\r\nHost: h\r\nX\0A: a\r\n\r\n";
    reject_n(nul_name, sizeof(nul_name) - 1, "invalid header name");
    reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01" "b\r\n\r\n", "control character in header");
    reject("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n", "control character in header");
    reject("GET / HTTP/1.1\r\nHost: h\r\n: novalue\r\n\r\n", "empty header name");
    reject("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", "header line without colon");
    reject("GET / HTTP/1.1\r\nHost: h\r\nX(A): b\r\n\r\n", "invalid header name");
    reject("GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: b\r\n\r\n", "invalid header name");
    /* what stays legal: HTAB and obs-text inside values, empty values */
    parsed_t *p = req("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\tb \xc3\xa9\r\nX-B:\r\n\r\n");
    assert_true(p->rc > 0);
    assert_int_equal(p->h[1].value_len, 6);
}

static void test_rejects_malformed_request_lines(void **state)
{
    (void)state;
    reject("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", "invalid request-target");
    reject("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", "invalid request-target");
    reject("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", "invalid request-target");
    reject("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", "invalid request-target");
    reject("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", "invalid HTTP version");
    reject("GET /page#top HTTP/1.1\r\nHost: h\r\n\r\n", "fragment in request-target");
    reject("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", "invalid request-target");
    reject("GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", "invalid request-target");
    reject("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", "invalid request-target");
    reject("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", "invalid request-target");
    reject("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", "invalid method");
    reject("G\xc3\x89T / HTTP/1.1\r\nHost: h\r\n\r\n", "invalid method");
    reject(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", "invalid method");
    reject("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "invalid method");
    reject("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", "invalid HTTP version");
    reject("GET / http/1.1\r\nHost: h\r\n\r\n", "invalid HTTP version");
    reject("GET / HTTP/1.10\r\nHost: h\r\n\r\n", "invalid HTTP version");
    reject("GET / HTTP/11\r\nHost: h\r\n\r\n", "invalid HTTP version");
    reject("GET /\r\nHost: h\r\n\r\n", "invalid request-target");
    reject("GET / HTTP/1.1\rHost: h\r\n\r\n", "bare CR in request line");
    /* absolute-form and asterisk-form are fine */
    assert_true(req("GET http://api.example.com/x HTTP/1.1\r\nHost: api.example.com\r\n\r\n")->rc > 0);
    assert_true(req("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")->rc > 0);
    assert_true(req("M-SEARCH /x HTTP/1.1\r\nHost: h\r\n\r\n")->rc > 0);
}

/* Host values and absolute-form authorities are uri-host [":" port]; an
 * absolute-form target names the host, and a Host naming another is refused. */
static void test_host_and_authority_are_checked(void **state)
{
    (void)state;
    static const char *const good[] = {"h", "api.example.com:8080", "127.0.0.1", "[::1]:80", "[v1.x]",
                                       "a-b_c~d.e", "xn--bcher-kva.example", "%41pi", "h:", ""};
    static const char *const bad[] = {"a b", "a/b", "a@b", "a:b", "[::1", "[::1]x", "%zz", "%4",
                                      "a\"b", "a?b", "a\\b", "a<b>", "h:80:81"};
    char s[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
        parsed_t *p = req(s);
        if (p->rc <= 0) fail_msg("Host \"%s\" refused: %s", good[i], p->m.why);
        assert_int_equal(p->m.host_len, strlen(good[i]));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
        reject(s, "invalid Host header");
    }
    /* absolute-form: the authority is the host, whatever the case of either */
    const char *a = "GET http://API.example.com:8080/x?q=1 HTTP/1.1\r\nHost: api.EXAMPLE.com:8080\r\n\r\n";
    parsed_t *p = req(a);
    assert_true(p->rc > 0);
    assert_ptr_equal(p->m.host, a + 11);
    assert_int_equal(p->m.host_len, 20);
    p = req("GET https://h?q HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(p->rc > 0);
    assert_memory_equal(p->m.host, "h?", 2);
    assert_int_equal(p->m.host_len, 1);
    /* HTTP/1.0 may leave Host out: the authority stands in */
    p = req("GET http://h.example/x HTTP/1.0\r\n\r\n");
    assert_true(p->rc > 0);
    assert_int_equal(p->m.host_len, 9);
    assert_memory_equal(p->m.host, "h.example", 9);
    reject("GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n",
           "Host differs from the request-target's authority");
    reject("GET http://a.example:80/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
           "Host differs from the request-target's authority");
    reject("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", "empty host in request-target");
    reject("GET http://?x HTTP/1.1\r\nHost: h\r\n\r\n", "empty host in request-target");
    reject("GET http://u:p@h/x HTTP/1.1\r\nHost: h\r\n\r\n", "userinfo in request-target");
    reject("GET http://h%zz/x HTTP/1.1\r\nHost: h\r\n\r\n", "invalid request-target");
    reject("GET http://h:8x/ HTTP/1.1\r\nHost: h:8x\r\n\r\n", "invalid Host header");
    /* asterisk-form is OPTIONS only */
    reject("GET * HTTP/1.1\r\nHost: h\r\n\r\n", "asterisk-form target with a method other than OPTIONS");
    reject("OPTIONSX * HTTP/1.1\r\nHost: h\r\n\r\n", "asterisk-form target with a method other than OPTIONS");
}

static void test_unsupported_version_is_505(void **state)
{
    (void)state;
    static const char *const v[] = {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"};
    for (size_t i = 0; i < 4; i++) {
        char s[128];
        snprintf(s, sizeof(s), "GET / %s\r\nHost: h\r\n\r\n", v[i]);
        parsed_t *p = req(s);
        check_reject(p, s, EG_HTTP1_VERSION_NOT_SUPPORTED, "unsupported HTTP version");
        assert_int_equal(p->m.error_offset, 6);
        assert_int_equal(eg_http1_error_status(p->m.error), 505);
    }
}

static void test_http11_requires_exactly_one_host(void **state)
{
    (void)state;
    reject("GET / HTTP/1.1\r\n\r\n", "missing Host header");
    reject("GET / HTTP/1.1\r\nX: y\r\n\r\n", "missing Host header");
    reject("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "several Host headers");
    reject("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", "several Host headers");
    reject("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "several Host headers");
    assert_true(req("GET / HTTP/1.0\r\nHost: a\r\n\r\n")->rc > 0);
}

static void test_long_target_is_414_even_before_the_head_completes(void **state)
{
    (void)state;
    char big[12000];
    strcpy(big, "GET /");
    memset(big + 5, 'a', 1023); /* a target of exactly max_uri bytes is fine */
    strcpy(big + 1028, " HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(req(big)->rc > 0);
    assert_int_equal(req(big)->m.target_len, 1024);
    memset(big + 5, 'a', 2000);
    big[2005] = '\0';
    parsed_t *p = req(big); /* incomplete */
    check_reject(p, "long incomplete target", EG_HTTP1_URI_TOO_LONG, "request-target too long");
    assert_int_equal(p->m.error_offset, 4);
    assert_int_equal(eg_http1_error_status(p->m.error), 414);
    strcat(big, " HTTP/1.1\r\nHost: h\r\n\r\n");
    check_reject(req(big), "long target", EG_HTTP1_URI_TOO_LONG, "request-target too long");
    /* a target that alone fills the head is 414, not 431 */
    eg_http1_limits_t wide = {.max_head = 4096, .max_headers = 8, .max_uri = 100000};
    strcpy(big, "GET /");
    memset(big + 5, 'b', 5000);
    big[5005] = '\0';
    check_reject(req_n(big, strlen(big), &wide), "target fills head", EG_HTTP1_URI_TOO_LONG,
                 "request-target too long");
}

static void test_too_many_headers_is_431(void **state)
{
    (void)state;
    char big[4096];
    strcpy(big, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < 31; i++) strcat(big, "X-A: b\r\n");
    strcat(big, "\r\n");
    assert_true(req(big)->rc > 0); /* 32 = max_headers */
    assert_int_equal(req(big)->m.nheaders, 32);
    big[strlen(big) - 2] = '\0';
    strcat(big, "X-A: b\r\n\r\n");
    parsed_t *p = req(big);
    check_reject(p, "33 headers", EG_HTTP1_HEADERS_TOO_LARGE, "too many headers");
    assert_int_equal(eg_http1_error_status(p->m.error), 431);
    /* the caller's array is a limit too */
    size_t scanned = 0;
    eg_http1_msg_t m;
    eg_http_header_t h[2];
    const char *s = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_int_equal(eg_http1_parse_request(s, strlen(s), &lim, h, 2, &scanned, &m), EG_EPARSE);
    assert_int_equal(m.error, EG_HTTP1_HEADERS_TOO_LARGE);
}

static void test_oversized_head_is_431_complete_or_not(void **state)
{
    (void)state;
    eg_http1_limits_t small = {.max_head = 64, .max_headers = 8, .max_uri = 32};
    const char *fits = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    assert_int_equal(strlen(fits), 64);
    assert_int_equal(req_n(fits, 64, &small)->rc, 64);
    const char *over = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    parsed_t *p = req_n(over, strlen(over), &small);
    check_reject(p, over, EG_HTTP1_HEADERS_TOO_LARGE, "header section too large");
    assert_int_equal(p->m.error_offset, 64);
    /* incomplete: EAGAIN below the limit, 431 on reaching it */
    assert_int_equal(req_n(over, 63, &small)->rc, EG_EAGAIN);
    check_reject(req_n(over, 64, &small), over, EG_HTTP1_HEADERS_TOO_LARGE, "header section too large");
    /* and incrementally */
    size_t scanned = 0;
    eg_http1_msg_t m;
    eg_http_header_t h[8];
    assert_int_equal(eg_http1_parse_request(over, 40, &small, h, 8, &scanned, &m), EG_EAGAIN);
    assert_int_equal(eg_http1_parse_request(over, 64, &small, h, 8, &scanned, &m), EG_EPARSE);
    assert_int_equal(m.error, EG_HTTP1_HEADERS_TOO_LARGE);
}

static void test_error_status_mapping(void **state)
{
    (void)state;
    assert_int_equal(eg_http1_error_status(EG_HTTP1_OK), 0);
    assert_int_equal(eg_http1_error_status(EG_HTTP1_BAD_REQUEST), 400);
    assert_int_equal(eg_http1_error_status(EG_HTTP1_URI_TOO_LONG), 414);
    assert_int_equal(eg_http1_error_status(EG_HTTP1_HEADERS_TOO_LARGE), 431);
    assert_int_equal(eg_http1_error_status(EG_HTTP1_VERSION_NOT_SUPPORTED), 505);
}

static void test_response_with_length_or_chunked(void **state)
{
    (void)state;
    parsed_t *p = resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 0);
    assert_int_equal(p->rc, 38);
    assert_int_equal(p->m.status, 200);
    assert_int_equal(p->m.reason_len, 2);
    assert_memory_equal(p->m.reason, "OK", 2);
    assert_null(p->m.method);
    assert_int_equal(p->m.framing, EG_FRAMING_LENGTH);
    assert_int_equal(p->m.content_length, 2);
    assert_true(p->m.keep_alive);
    p = resp("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_CHUNKED);
    assert_int_equal(p->m.reason_len, 9);
    p = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_CHUNKED);
    p = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0);
    check_reject(p, "chunked, gzip", EG_HTTP1_BAD_REQUEST, "Transfer-Encoding other than a final chunked");
    p = resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 0);
    check_reject(p, "CL+TE", EG_HTTP1_BAD_REQUEST, "both Content-Length and Transfer-Encoding");
    p = resp("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0);
    check_reject(p, "1.0 TE", EG_HTTP1_BAD_REQUEST, "Transfer-Encoding in an HTTP/1.0 response");
    p = resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", 0);
    check_reject(p, "2 CL", EG_HTTP1_BAD_REQUEST, "several Content-Length headers");
    p = resp("HTTP/1.1 503 \r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0);
    assert_true(p->rc > 0);
    assert_int_equal(p->m.reason_len, 0);
    assert_false(p->m.keep_alive);
    p = resp("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0); /* reason and its SP omitted */
    assert_true(p->rc > 0);
    assert_int_equal(p->m.status, 200);
    p = resp("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 0);
    assert_true(p->m.keep_alive);
}

static void test_response_statuses_without_body(void **state)
{
    (void)state;
    parsed_t *p = resp("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 0);
    assert_true(p->rc > 0);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    assert_int_equal(p->m.content_length, 0);
    assert_true(p->m.keep_alive);
    p = resp("HTTP/1.1 304 Not Modified\r\n\r\n", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    assert_true(p->m.keep_alive);
    p = resp("HTTP/1.1 100 Continue\r\n\r\n", 0);
    assert_int_equal(p->m.status, 100);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    p = resp("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    assert_true(p->m.upgrade);
    /* a response to HEAD has no body whatever it announces */
    p = resp("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 1);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    p = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1);
    assert_int_equal(p->m.framing, EG_FRAMING_NONE);
    p = resp("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_LENGTH);
}

static void test_response_without_length_reads_until_close(void **state)
{
    (void)state;
    parsed_t *p = resp("HTTP/1.0 200 OK\r\n\r\n", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_UNTIL_CLOSE);
    assert_false(p->m.keep_alive);
    p = resp("HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody until close", 0);
    assert_int_equal(p->m.framing, EG_FRAMING_UNTIL_CLOSE);
    assert_false(p->m.keep_alive);
}

static void test_bad_status_lines_are_rejected(void **state)
{
    (void)state;
    static const struct {
        const char *s, *why;
        eg_http1_error_t err;
    } bad[] = {
        {"HTTP/1.1 20 OK\r\n\r\n", "invalid status code", EG_HTTP1_BAD_REQUEST},
        {"HTTP/1.1 600 Nope\r\n\r\n", "invalid status code", EG_HTTP1_BAD_REQUEST},
        {"HTTP/1.1 099 Nope\r\n\r\n", "invalid status code", EG_HTTP1_BAD_REQUEST},
        {"HTTP/1.1 2000 OK\r\n\r\n", "invalid status code", EG_HTTP1_BAD_REQUEST},
        {"HTTP/1.1 200OK\r\n\r\n", "invalid status code", EG_HTTP1_BAD_REQUEST},
        {"HTTP/1.1  200 OK\r\n\r\n", "invalid status code", EG_HTTP1_BAD_REQUEST},
        {"ICY 200 OK\r\n\r\n", "invalid HTTP version", EG_HTTP1_BAD_REQUEST},
        {"HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version", EG_HTTP1_VERSION_NOT_SUPPORTED},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", "invalid reason phrase", EG_HTTP1_BAD_REQUEST},
        {"HTTP/1.1 200 OK\rX\r\n\r\n", "bare CR in status line", EG_HTTP1_BAD_REQUEST},
        {"HTTP/1.1 200 OK\n\n", "bare LF (lines must end with CRLF)", EG_HTTP1_BAD_REQUEST},
        {"HTTP/1.1 200 OK\r\nX : y\r\n\r\n", "whitespace before colon", EG_HTTP1_BAD_REQUEST},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_reject(resp(bad[i].s, 0), bad[i].s, bad[i].err, bad[i].why);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 1", 0)->rc, EG_EAGAIN);
    assert_int_equal(resp("HTTP/1.1 2", 0)->rc, EG_EAGAIN);
}

/* --- chunked ------------------------------------------------------------- */

/* Decodes body with eg_chunked_data in pieces of `step` bytes into out. */
static int chunked_run(const char *body, size_t n, size_t step, char *out, size_t *outlen,
                       eg_chunked_t *st)
{
    memset(st, 0, sizeof(*st));
    size_t pos = 0, o = 0;
    while (pos < n) {
        size_t end = n - pos < step ? n : pos + step;
        size_t piece = pos;
        int rc = EG_EAGAIN;
        while (piece < end) { /* the caller's loop over one read */
            size_t used = 0, dl = 0;
            const char *d = NULL;
            rc = eg_chunked_data(st, body + piece, end - piece, 64, &used, &d, &dl);
            if (dl) {
                assert_true(d >= body + piece && d + dl <= body + end);
                memcpy(out + o, d, dl);
                o += dl;
            }
            piece += used;
            if (rc != EG_EAGAIN) break;
        }
        pos = piece;
        if (rc == EG_OK) {
            *outlen = o;
            return pos == n ? EG_OK : EG_ERANGE;
        }
        if (rc == EG_EPARSE) return rc;
    }
    *outlen = o;
    return EG_EAGAIN;
}

/* keep: the trailer lines as received, whatever the split; a section over
 * keep_cap is refused; the final empty line is not kept. */
static void test_chunked_keeps_trailers_for_the_caller(void **state)
{
    (void)state;
    static const char body[] = "3\r\nabc\r\n0\r\nX-Checksum: 1\r\nDigest: sha-256=x\r\n\r\n";
    static const char want[] = "X-Checksum: 1\r\nDigest: sha-256=x\r\n";
    size_t n = sizeof(body) - 1;
    for (size_t split = 1; split < n; split++) {
        char keep[64];
        eg_chunked_t st;
        memset(&st, 0, sizeof(st));
        st.keep = keep;
        st.keep_cap = sizeof(keep);
        size_t used = 0;
        assert_int_equal(eg_chunked_feed(&st, body, split, 1024, &used), EG_EAGAIN);
        assert_int_equal(eg_chunked_feed(&st, body + split, n - split, 1024, &used), EG_OK);
        assert_int_equal(st.keep_len, sizeof(want) - 1);
        assert_memory_equal(keep, want, sizeof(want) - 1);
    }
    char small[8];
    eg_chunked_t st;
    memset(&st, 0, sizeof(st));
    st.keep = small;
    st.keep_cap = sizeof(small);
    size_t used = 0;
    assert_int_equal(eg_chunked_feed(&st, body, n, 1024, &used), EG_EPARSE);
    assert_string_equal(st.why, "trailer section too large");
}

static void test_chunked_decodes_across_any_split(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        "A\r\nhello worl\r\n1\r\nd\r\n0\r\n\r\n",
        "000000000000000b\r\nhello world\r\n0000\r\n\r\n",
        "3\r\nhel\r\n3\r\nlo \r\n5\r\nworld\r\n0\r\nX-Checksum: abc\r\nX-Other:\t1 \r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        for (size_t step = 1; step <= strlen(ok[i]); step++) {
            char out[64];
            size_t ol = 0;
            eg_chunked_t st;
            int rc = chunked_run(ok[i], strlen(ok[i]), step, out, &ol, &st);
            if (rc != EG_OK) fail_msg("body %zu step %zu: rc %d (%s)", i, step, rc, st.why ? st.why : "");
            assert_int_equal(ol, 11);
            assert_memory_equal(out, "hello world", 11);
            assert_int_equal(st.body_bytes, 11);
            assert_int_equal(st.trailers, i == 3 ? 2 : 0);
        }
    }
    /* incomplete bodies ask for more */
    char out[64];
    size_t ol;
    eg_chunked_t st;
    assert_int_equal(chunked_run("5\r\nhel", 6, 3, out, &ol, &st), EG_EAGAIN);
    assert_int_equal(ol, 3);
    assert_int_equal(chunked_run("0\r\n", 3, 3, out, &ol, &st), EG_EAGAIN);
}

static const char *chunked_error(const char *body)
{
    char out[256];
    size_t ol = 0;
    static eg_chunked_t st;
    int rc = chunked_run(body, strlen(body), 3, out, &ol, &st);
    return rc == EG_EPARSE ? st.why : NULL;
}

static void expect_chunked_error(const char *body, const char *why)
{
    const char *got = chunked_error(body);
    if (!got || strcmp(got, why) != 0)
        fail_msg("body '%s': got '%s', want '%s'", body, got ? got : "(accepted)", why);
}

static void test_chunked_extensions_valid_and_invalid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "5;a\r\nhello\r\n0\r\n\r\n",
        "5;a=b\r\nhello\r\n0\r\n\r\n",
        "5;a=\"quoted \\\" value; with = signs\"\r\nhello\r\n0\r\n\r\n",
        "5;a;b=c;d=\"\"\r\nhello\r\n0;last=1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (chunked_error(good[i])) fail_msg("rejected '%s': %s", good[i], chunked_error(good[i]));
    static const char *const bad[] = {
        "5;\r\nhello\r\n0\r\n\r\n",           /* empty name */
        "5;=b\r\nhello\r\n0\r\n\r\n",         /* no name */
        "5;a=\r\nhello\r\n0\r\n\r\n",         /* empty value */
        "5; a\r\nhello\r\n0\r\n\r\n",
        "5;a b\r\nhello\r\n0\r\n\r\n",
        "5;a=b c\r\nhello\r\n0\r\n\r\n",
        "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n",  /* junk after the quoted string */
        "5;a=b\"c\"\r\nhello\r\n0\r\n\r\n",
        "5;a=\x01\r\nhello\r\n0\r\n\r\n",
        "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n",
        "5;a=\"b\rc\"\r\nhello\r\n0\r\n\r\n", /* bare CR in a quoted string */
        "5;a=\"open\r\nhello\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_chunked_error(bad[i], "invalid chunk extension");
    expect_chunked_error("5;a\rhello\r\n0\r\n\r\n", "bare CR after chunk size");
    expect_chunked_error("5;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nhello",
                         "chunk-size line too long");
}

static void test_chunked_size_is_strict_hex(void **state)
{
    (void)state;
    expect_chunked_error("x\r\n", "invalid chunk size");
    expect_chunked_error("\r\n", "invalid chunk size");
    expect_chunked_error("-5\r\n", "invalid chunk size");
    expect_chunked_error(" 5\r\n", "invalid chunk size");
    expect_chunked_error("5 ;a\r\n", "invalid chunk size"); /* no BWS before extensions */
    expect_chunked_error("0x5\r\n", "invalid chunk size");
    expect_chunked_error("5\nhello\r\n", "invalid chunk size");
    expect_chunked_error("5\rhello", "bare CR after chunk size");
    expect_chunked_error("10000000000000000\r\n", "chunk size too large"); /* 17 digits */
    /* 16 digits, the largest size, decode without overflow */
    eg_chunked_t st;
    memset(&st, 0, sizeof(st));
    size_t used;
    assert_int_equal(eg_chunked_feed(&st, "ffffffffffffffff\r\nabc", 21, 64, &used), EG_EAGAIN);
    assert_int_equal(used, 21);
    assert_true(st.remaining == UINT64_MAX - 3);
    assert_int_equal(st.body_bytes, 3);
}

static void test_chunked_requires_crlf_after_data(void **state)
{
    (void)state;
    expect_chunked_error("5\r\nhelloXX0\r\n\r\n", "missing CRLF after chunk data");
    expect_chunked_error("5\r\nhello\n0\r\n\r\n", "missing CRLF after chunk data");
    expect_chunked_error("5\r\nhello\rX0\r\n\r\n", "missing CRLF after chunk data");
    expect_chunked_error("5\r\nhello world\r\n0\r\n\r\n", "missing CRLF after chunk data");
}

static void test_chunked_trailers_follow_header_rules(void **state)
{
    (void)state;
    expect_chunked_error("0\r\n folded\r\n\r\n", "obsolete line folding in trailer");
    expect_chunked_error("0\r\nX: a\r\n folded\r\n\r\n", "obsolete line folding in trailer");
    expect_chunked_error("0\r\nX : a\r\n\r\n", "whitespace before colon in trailer");
    expect_chunked_error("0\r\nX: a\rb\r\n\r\n", "bare CR in trailer");
    expect_chunked_error("0\r\nX: a\x01\r\n\r\n", "control character in trailer");
    expect_chunked_error("0\r\nX: a\nY: b\r\n\r\n", "control character in trailer");
    expect_chunked_error("0\r\nNoColon\r\n\r\n", "invalid trailer name");
    expect_chunked_error("0\r\n: v\r\n\r\n", "invalid trailer name");
    expect_chunked_error("0\r\n\rX", "bare CR at end of chunked body");
    expect_chunked_error("0\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
                         "trailer line too long");
}

static void test_chunked_feed_stops_at_the_end_of_the_body(void **state)
{
    (void)state;
    eg_chunked_t st;
    memset(&st, 0, sizeof(st));
    const char *two = "3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /";
    size_t used = 0;
    assert_int_equal(eg_chunked_feed(&st, two, strlen(two), 256, &used), EG_OK);
    assert_int_equal(used, strlen(two) - 5);
    assert_int_equal(st.body_bytes, 3);
    assert_int_equal(st.trailers, 1);
    /* once done it consumes nothing more */
    assert_int_equal(eg_chunked_feed(&st, "GET /", 5, 256, &used), EG_OK);
    assert_int_equal(used, 0);
    /* the offset of a bad byte */
    memset(&st, 0, sizeof(st));
    assert_int_equal(eg_chunked_feed(&st, "3\r\nabcX", 7, 256, &used), EG_EPARSE);
    assert_int_equal(used, 6);
}

static void test_chunked_decode_in_place(void **state)
{
    (void)state;
    char buf[128];
    const char *src = "5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\nNEXT";
    strcpy(buf, src);
    eg_chunked_t st;
    memset(&st, 0, sizeof(st));
    size_t len = strlen(buf), rest = 99;
    assert_int_equal(eg_chunked_decode(&st, buf, &len, 64, &rest), EG_OK);
    assert_int_equal(len, 11);
    assert_memory_equal(buf, "hello world", 11);
    assert_int_equal(rest, 4);
    assert_memory_equal(buf + len, "NEXT", 4);
    /* in two reads: the caller keeps decoded bytes and appends the next read */
    memset(&st, 0, sizeof(st));
    strcpy(buf, "5\r\nhel");
    len = 6;
    assert_int_equal(eg_chunked_decode(&st, buf, &len, 64, &rest), EG_EAGAIN);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "hel", 3);
    strcpy(buf + len, "lo\r\n0\r\n\r\n");
    size_t more = strlen("lo\r\n0\r\n\r\n");
    assert_int_equal(eg_chunked_decode(&st, buf + len, &more, 64, &rest), EG_OK);
    assert_int_equal(more, 2);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(rest, 0);
    /* errors keep what was decoded */
    memset(&st, 0, sizeof(st));
    strcpy(buf, "2\r\nab\r\nzz");
    len = strlen(buf);
    assert_int_equal(eg_chunked_decode(&st, buf, &len, 64, &rest), EG_EPARSE);
    assert_int_equal(len, 2);
    assert_string_equal(st.why, "invalid chunk size");
}

static void test_header_lookup_and_token_helper(void **state)
{
    (void)state;
    assert_true(eg_http1_has_token("keep-alive, Close", 17, "close"));
    assert_true(eg_http1_has_token(" close ", 7, "close"));
    assert_true(eg_http1_has_token(",,close,,", 9, "CLOSE"));
    assert_true(eg_http1_has_token("a,\tclose\t", 9, "close"));
    assert_false(eg_http1_has_token("closed", 6, "close"));
    assert_false(eg_http1_has_token("close", 4, "close")); /* bounded by n */
    assert_false(eg_http1_has_token("not close", 9, "close"));
    assert_false(eg_http1_has_token("", 0, "close"));
    parsed_t *p = req("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n");
    const eg_http_header_t *h = eg_http1_header(&p->m, "X-a");
    assert_non_null(h);
    assert_memory_equal(h->value, "1", 1); /* the first one */
    assert_null(eg_http1_header(&p->m, "X-"));
    /* the inline name test the proxy runs on every header */
    const eg_http_header_t *c = eg_http1_header(&p->m, "host");
    assert_non_null(c);
    assert_true(eg_http1_name_is(c, "host"));
    assert_false(eg_http1_name_is(c, "hos"));
    assert_false(eg_http1_name_is(h, "x-b"));
    assert_true(eg_http1_name_is(h, "x-a"));
    assert_true(eg_http1_lower_eq("Content-LENGTH", "content-length", 14));
    assert_false(eg_http1_lower_eq("Content-Lengtx", "content-length", 14));
    assert_true(eg_http1_lower_eq("abc", "abd", 2)); /* bounded by n */
}

/* The Date header's form, against RFC 9110's own example, the ends of the
 * range and libc's gmtime_r + strftime (C locale) over leap days, century
 * years and a sweep of ordinary seconds. */
static void test_http_date_is_imf_fixdate(void **state)
{
    (void)state;
    char out[EG_HTTP1_DATE_LEN + 1];
    eg_http1_date(784111777, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    eg_http1_date(0, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    eg_http1_date(-5, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    eg_http1_date(INT64_MAX, out);
    assert_string_equal(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_int_equal(strlen(out), EG_HTTP1_DATE_LEN);
    const int64_t fixed[] = {68169599, 68169600, 951782399, 951782400, 951868800, 4107542400,
                             4107456000, 1798761599, 1798761600, 253402300799};
    char want[64];
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]) + 20000; i++) {
        int64_t t = i < sizeof(fixed) / sizeof(fixed[0]) ? fixed[i]
                                                         : (int64_t)(i * 12659977ull % 253402300800ull);
        time_t tt = (time_t)t;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        eg_http1_date(t, out);
        if (strcmp(out, want) != 0) fail_msg("t=%lld: got \"%s\", want \"%s\"", (long long)t, out, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get_yields_slices_into_the_buffer),
        cmocka_unit_test(test_post_with_content_length_frames_the_body),
        cmocka_unit_test(test_connection_options_expect_and_upgrade),
        cmocka_unit_test(test_pipelined_requests_parse_from_the_offset),
        cmocka_unit_test(test_byte_by_byte_feeding_gives_the_same_result),
        cmocka_unit_test(test_rejects_content_length_with_transfer_encoding),
        cmocka_unit_test(test_rejects_two_content_lengths_even_if_equal),
        cmocka_unit_test(test_rejects_malformed_content_length),
        cmocka_unit_test(test_rejects_transfer_encoding_other_than_chunked),
        cmocka_unit_test(test_rejects_transfer_encoding_in_http10_request),
        cmocka_unit_test(test_rejects_malformed_header_lines),
        cmocka_unit_test(test_rejects_malformed_request_lines),
        cmocka_unit_test(test_host_and_authority_are_checked),
        cmocka_unit_test(test_unsupported_version_is_505),
        cmocka_unit_test(test_http11_requires_exactly_one_host),
        cmocka_unit_test(test_long_target_is_414_even_before_the_head_completes),
        cmocka_unit_test(test_too_many_headers_is_431),
        cmocka_unit_test(test_oversized_head_is_431_complete_or_not),
        cmocka_unit_test(test_error_status_mapping),
        cmocka_unit_test(test_response_with_length_or_chunked),
        cmocka_unit_test(test_response_statuses_without_body),
        cmocka_unit_test(test_response_without_length_reads_until_close),
        cmocka_unit_test(test_bad_status_lines_are_rejected),
        cmocka_unit_test(test_chunked_decodes_across_any_split),
        cmocka_unit_test(test_chunked_keeps_trailers_for_the_caller),
        cmocka_unit_test(test_chunked_extensions_valid_and_invalid),
        cmocka_unit_test(test_chunked_size_is_strict_hex),
        cmocka_unit_test(test_chunked_requires_crlf_after_data),
        cmocka_unit_test(test_chunked_trailers_follow_header_rules),
        cmocka_unit_test(test_chunked_feed_stops_at_the_end_of_the_body),
        cmocka_unit_test(test_chunked_decode_in_place),
        cmocka_unit_test(test_header_lookup_and_token_helper),
        cmocka_unit_test(test_http_date_is_imf_fixdate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
