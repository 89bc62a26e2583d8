/* test_idempotency.c - Idempotency-Key parsing, fingerprints, scoped keys and
 * response records (lib/idempotency.c). Hash vectors were computed with
 * Python's hashlib from the encoding idempotency.c documents (tag, NUL,
 * then 4-byte big-endian length and bytes per field), not by this code. */
#include "testutil.h"

#include "errgate/idempotency.h"

/* ---- the header */

static void parses(const char *v, const char *want)
{
    char out[EG_IDEM_KEY_MAX + 1];
    size_t len = 0;
    int rc = eg_idem_key_parse(v, strlen(v), out, &len);
    if (rc != EG_OK) fail_msg("%s: refused (%d)", v, rc);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
}

static void refused(const char *v, size_t n, int want)
{
    char out[EG_IDEM_KEY_MAX + 1];
    memset(out, 'X', sizeof(out));
    size_t len = 12345;
    int rc = eg_idem_key_parse(v, n, out, &len);
    if (rc != want) fail_msg("%.*s: got %d, want %d", (int)n, v, rc, want);
    /* the outputs are untouched */
    assert_int_equal(len, 12345);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 'X');
}

static void test_key_forms(void **state)
{
    (void)state;
    parses("unique-request-id-123", "unique-request-id-123"); /* the seed's bare form */
    parses("\"8e03978e-40d5-43e8-bc93-6894a57f9324\"",
           "8e03978e-40d5-43e8-bc93-6894a57f9324"); /* the draft's sf-string */
    parses("\"abc\"", "abc");
    parses("abc", "abc"); /* the same key either way */
    parses("  \t\"abc\" \t", "abc");
    parses("\"a\\\"b\\\\c\"", "a\"b\\c"); /* \" and \\ */
    parses("a\"b", "a\"b");               /* a bare key may hold any visible character */
    parses("!#$%&'*+-.^_`|~:;,/?@[]{}", "!#$%&'*+-.^_`|~:;,/?@[]{}");
    parses("x", "x");
}

static void test_key_refused(void **state)
{
    (void)state;
    refused("", 0, EG_ERANGE);
    refused("   ", 3, EG_ERANGE);
    refused("\"\"", 2, EG_ERANGE);    /* an empty string */
    refused("\"a b\"", 5, EG_ERANGE); /* a valid sf-string, not a valid key */
    refused("a b", 3, EG_EPARSE);     /* two tokens (or two headers joined) */
    refused("a, b", 4, EG_EPARSE);
    refused("\"abc", 4, EG_EPARSE);       /* unterminated */
    refused("\"abc\\\"", 6, EG_EPARSE);   /* the closing quote is escaped */
    refused("\"a\\nb\"", 6, EG_EPARSE);   /* only \" and \\ escape */
    refused("\"abc\";x=1", 9, EG_EPARSE); /* parameters */
    refused("\"abc\"def", 8, EG_EPARSE);
    refused("\"abc\" \"def\"", 11, EG_EPARSE); /* a list */
    refused("\"a\tb\"", 5, EG_EPARSE);         /* HTAB inside a string */
    refused("a\x01"
            "b",
            3, EG_EPARSE);
    refused("a\x7f"
            "b",
            3, EG_EPARSE);
    refused("caf\xc3\xa9", 5, EG_EPARSE); /* not ASCII */
    refused("\"caf\xc3\xa9\"", 7, EG_EPARSE);
    refused("a\0b", 3, EG_EPARSE);
    char out[EG_IDEM_KEY_MAX + 1];
    size_t len;
    assert_int_equal(eg_idem_key_parse(NULL, 0, out, &len), EG_EINVAL);
}

static void test_key_length(void **state)
{
    (void)state;
    char v[600], out[EG_IDEM_KEY_MAX + 1];
    size_t len;
    memset(v, 'k', 255);
    assert_int_equal(eg_idem_key_parse(v, 255, out, &len), EG_OK);
    assert_int_equal(len, 255);
    assert_int_equal(strlen(out), 255);
    memset(v, 'k', 256);
    refused(v, 256, EG_ERANGE); /* 256 bare */
    /* sf-string: 255 characters, each escaped, is 512 bytes and fine */
    v[0] = '"';
    for (int i = 0; i < 255; i++) {
        v[1 + 2 * i] = '\\';
        v[2 + 2 * i] = '\\';
    }
    v[511] = '"';
    assert_int_equal(eg_idem_key_parse(v, 512, out, &len), EG_OK);
    assert_int_equal(len, 255);
    assert_int_equal(out[0], '\\');
    assert_int_equal(out[254], '\\');
    /* 256 characters in a string */
    v[0] = '"';
    memset(v + 1, 'q', 256);
    v[257] = '"';
    refused(v, 258, EG_ERANGE);
    memset(v + 1, 'q', 255);
    v[256] = '"';
    assert_int_equal(eg_idem_key_parse(v, 257, out, &len), EG_OK);
    assert_int_equal(len, 255);
}

/* Every byte at every position of a bare key (the check reads eight bytes
 * a step, then the tail): only 0x21-0x7E pass. */
static void test_key_bytes(void **state)
{
    (void)state;
    char v[21], out[EG_IDEM_KEY_MAX + 1];
    for (size_t at = 0; at < sizeof(v); at++)
        for (int c = 0; c < 256; c++) {
            memset(v, 'k', sizeof(v));
            v[at] = (char)c;
            if (at + 1 < sizeof(v)) v[at + 1] = '~'; /* 0x7E beside it: no carry to hide behind */
            size_t len = 0;
            int ok = c >= 0x21 && c <= 0x7e;
            /* a leading or trailing SP/HTAB is trimmed, not refused */
            if ((c == ' ' || c == '\t') && (at == 0 || at == sizeof(v) - 1)) continue;
            if (c == '"' && at == 0) continue; /* an sf-string: test_key_refused */
            int rc = eg_idem_key_parse(v, sizeof(v), out, &len);
            if ((rc == EG_OK) != ok) fail_msg("byte 0x%02x at %zu: rc %d", c, at, rc);
        }
}

/* ---- hashes */

static void unhex(const char *h, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

static void test_body_hash(void **state)
{
    (void)state;
    eg_idem_hasher_t *h;
    assert_int_equal(eg_idem_hasher_new(&h), EG_OK);
    const char *body = "{\"amount\":100}";
    unsigned char want[32], got[32], got2[32];
    unhex("4d4bbe59c6aad22442cde199a6a8a5f034405fcd78fb5a81c24ef249de1c45f1", want, 32);
    /* in pieces, as a body streams */
    eg_idem_body_hash_t b = {0};
    assert_int_equal(eg_idem_body_hash_init(h, &b), EG_OK);
    for (size_t i = 0; i < strlen(body); i += 3) {
        size_t n = strlen(body) - i < 3 ? strlen(body) - i : 3;
        assert_int_equal(eg_idem_body_hash_update(&b, body + i, n), EG_OK);
    }
    assert_int_equal(eg_idem_body_hash_update(&b, "", 0), EG_OK);
    assert_int_equal(b.len, strlen(body));
    assert_int_equal(eg_idem_body_hash_final(&b, got), EG_OK);
    assert_memory_equal(got, want, 32);
    assert_null(b.ctx);
    assert_int_equal(eg_idem_body_hash_update(&b, "x", 1), EG_EINVAL); /* finished */
    eg_idem_body_hash_clear(&b);                                       /* harmless */
    /* without a hasher, and outliving it */
    eg_idem_body_hash_t b2 = {0};
    assert_int_equal(eg_idem_body_hash_init(h, &b2), EG_OK);
    eg_idem_hasher_free(h);
    assert_int_equal(eg_idem_body_hash_update(&b2, body, strlen(body)), EG_OK);
    assert_int_equal(eg_idem_body_hash_final(&b2, got2), EG_OK);
    assert_memory_equal(got2, want, 32);
    assert_int_equal(eg_idem_body_hash_init(NULL, &b2), EG_OK);
    assert_int_equal(eg_idem_body_hash_update(&b2, body, strlen(body)), EG_OK);
    eg_idem_body_hash_clear(&b2); /* abandoned: no leak */
    eg_idem_body_hash_clear(&b2);
}

static void test_fingerprint(void **state)
{
    (void)state;
    eg_idem_hasher_t *h;
    assert_int_equal(eg_idem_hasher_new(&h), EG_OK);
    unsigned char body[32], want[32], fp[32], fp2[32];
    unhex("4d4bbe59c6aad22442cde199a6a8a5f034405fcd78fb5a81c24ef249de1c45f1", body, 32);
    unhex("fa96b4055b072a85fcbbed36dfea99d1c9debd46b235eefc100aa9abe80ca719", want, 32);
    assert_int_equal(eg_idem_fingerprint(h, "POST", 4, "/v1/charges", 11, "a=1", 3, body, fp),
                     EG_OK);
    assert_memory_equal(fp, want, 32);
    assert_int_equal(eg_idem_fingerprint(NULL, "POST", 4, "/v1/charges", 11, "a=1", 3, body, fp2),
                     EG_OK);
    assert_memory_equal(fp2, want, 32);
    /* no body and no query: NULL is the empty one */
    unhex("40c462565d879cd4d709edbdda897b5f04b0a0acfec5a334606e2f6c26e32a5f", want, 32);
    assert_int_equal(eg_idem_fingerprint(h, "POST", 4, "/v1/charges", 11, NULL, 0, NULL, fp),
                     EG_OK);
    assert_memory_equal(fp, want, 32);
    unsigned char empty[32];
    unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", empty, 32);
    assert_int_equal(eg_idem_fingerprint(h, "POST", 4, "/v1/charges", 11, "", 0, empty, fp2),
                     EG_OK);
    assert_memory_equal(fp2, want, 32);
    /* every field counts, and a boundary moved is another request */
    unsigned char a[32], b[32];
    assert_int_equal(eg_idem_fingerprint(h, "POST", 4, "/ab", 3, "c", 1, body, a), EG_OK);
    assert_int_equal(eg_idem_fingerprint(h, "POST", 4, "/a", 2, "bc", 2, body, b), EG_OK);
    assert_memory_not_equal(a, b, 32);
    assert_int_equal(eg_idem_fingerprint(h, "PATCH", 5, "/ab", 3, "c", 1, body, b), EG_OK);
    assert_memory_not_equal(a, b, 32);
    body[31] ^= 1;
    assert_int_equal(eg_idem_fingerprint(h, "POST", 4, "/ab", 3, "c", 1, body, b), EG_OK);
    assert_memory_not_equal(a, b, 32);
    eg_idem_hasher_free(h);
}

/* The one-pass fingerprint the stage uses: expected digests computed apart
 * (Python hashlib over the documented layout: the v2 tag and NUL, then each
 * part as a big-endian 4-byte length and its bytes). Parts longer than the
 * function's 512-byte staging buffer take its other path. */
static void test_fingerprint_body(void **state)
{
    (void)state;
    eg_idem_hasher_t *h;
    assert_int_equal(eg_idem_hasher_new(&h), EG_OK);
    unsigned char body[1024], want[32], fp[32];
    for (int i = 0; i < 1024; i++)
        body[i] = (unsigned char)(i * 7);
    unhex("fa70d18aa741afee4339a35c6fd18f0a6f4b0a43655f4703a393d6d1dd9a489a", want, 32);
    assert_int_equal(
        eg_idem_fingerprint_body(h, "POST", 4, "/v1/charges", 11, "a=1", 3, body, 1024, fp), EG_OK);
    assert_memory_equal(fp, want, 32);
    assert_int_equal(
        eg_idem_fingerprint_body(NULL, "POST", 4, "/v1/charges", 11, "a=1", 3, body, 1024, fp),
        EG_OK);
    assert_memory_equal(fp, want, 32);
    unhex("645bba75ebcf03fc24dcff5f7c4c71e8fb6c32f276054ab5c4cfba2033db34a2", want, 32);
    assert_int_equal(
        eg_idem_fingerprint_body(h, "POST", 4, "/v1/charges", 11, NULL, 0, NULL, 0, fp), EG_OK);
    assert_memory_equal(fp, want, 32);
    char path[600], query[300];
    path[0] = '/';
    memset(path + 1, 'p', sizeof(path) - 1);
    memset(query, 'q', sizeof(query));
    unhex("e72174aec7e076ec5a3ec2a8f11b97e5b56159b575856bbd7b0c371ba56a4371", want, 32);
    assert_int_equal(eg_idem_fingerprint_body(h, "PUT", 3, path, sizeof(path), query, sizeof(query),
                                              body, 1024, fp),
                     EG_OK);
    assert_memory_equal(fp, want, 32);
    /* not the two-pass fingerprint of the same request */
    unsigned char two[32], bh[32];
    eg_idem_body_hash_t b;
    assert_int_equal(eg_idem_body_hash_init(h, &b), EG_OK);
    assert_int_equal(eg_idem_body_hash_update(&b, body, 1024), EG_OK);
    assert_int_equal(eg_idem_body_hash_final(&b, bh), EG_OK);
    assert_int_equal(
        eg_idem_fingerprint(h, "PUT", 3, path, sizeof(path), query, sizeof(query), bh, two), EG_OK);
    assert_memory_not_equal(fp, two, 32);
    assert_int_equal(eg_idem_fingerprint_body(h, "POST", 4, "/", 1, NULL, 0, NULL, 1, fp),
                     EG_EINVAL);
    /* a scope key whose parts straddle the staging buffer */
    char who[252], route[241], out[EG_IDEM_SCOPED_LEN + 1];
    memcpy(who, "k:", 2);
    memset(who + 2, 'a', 250);
    route[0] = '/';
    memset(route + 1, 'r', 240);
    assert_int_equal(
        eg_idem_scope_key(h, who, sizeof(who), route, sizeof(route), "POST", 4, "key", 3, out),
        EG_OK);
    assert_string_equal(out, "8ea26514b0d7bb57f98eb5255160786d391b0392280eb52d6ef3701197a489c8");
    eg_idem_hasher_free(h);
}

/* The scope as bytes: length-prefixed parts, so moving a byte from one
 * part to the next is another scope; too small a buffer is EG_ERANGE. */
static void test_scope_bytes(void **state)
{
    (void)state;
    unsigned char a[64], b[64];
    size_t an = 0, bn = 0;
    assert_int_equal(eg_idem_scope_bytes("k:ab", 4, "/r/", 3, "POST", 4, "x", 1, a, sizeof(a), &an),
                     EG_OK);
    static const unsigned char want[] = {0,   0, 0, 4, 'k', ':', 'a', 'b', 0,   0, 0, 3, '/', 'r',
                                         '/', 0, 0, 0, 4,   'P', 'O', 'S', 'T', 0, 0, 0, 1,   'x'};
    assert_int_equal(an, sizeof(want));
    assert_memory_equal(a, want, sizeof(want));
    /* "k:a" + "b/r/" is not "k:ab" + "/r/" */
    assert_int_equal(eg_idem_scope_bytes("k:a", 3, "b/r/", 4, "POST", 4, "x", 1, b, sizeof(b), &bn),
                     EG_OK);
    assert_int_equal(bn, an);
    assert_memory_not_equal(a, b, an);
    /* an empty part still has its length */
    assert_int_equal(eg_idem_scope_bytes("", 0, "/r/", 3, "POST", 4, "x", 1, b, sizeof(b), &bn),
                     EG_OK);
    assert_int_equal(bn, an - 4);
    /* one byte short of fitting */
    bn = 7;
    assert_int_equal(eg_idem_scope_bytes("k:ab", 4, "/r/", 3, "POST", 4, "x", 1, b, an - 1, &bn),
                     EG_ERANGE);
    assert_int_equal(bn, 7);
    assert_int_equal(eg_idem_scope_bytes("k:ab", 4, "/r/", 3, "POST", 4, "x", 1, b, an, &bn),
                     EG_OK);
    assert_int_equal(bn, an);
}

static void test_scope_key(void **state)
{
    (void)state;
    eg_idem_hasher_t *h;
    assert_int_equal(eg_idem_hasher_new(&h), EG_OK);
    char out[EG_IDEM_SCOPED_LEN + 1], other[EG_IDEM_SCOPED_LEN + 1];
    assert_int_equal(eg_idem_scope_key(h, "k:abcd1234", 10, "/v1/charges", 11, "POST", 4,
                                       "unique-request-id-123", 21, out),
                     EG_OK);
    assert_string_equal(out, "cef3f9e8d9a96d508ccdfeb23f38b170ac67fb6eaa44a627197d0e689ab63218");
    assert_int_equal(eg_idem_scope_key(NULL, "k:abcd1234", 10, "/v1/charges", 11, "POST", 4,
                                       "unique-request-id-123", 21, other),
                     EG_OK);
    assert_string_equal(out, other);
    /* another caller, route or method: another entry */
    assert_int_equal(eg_idem_scope_key(h, "k:abcd1235", 10, "/v1/charges", 11, "POST", 4,
                                       "unique-request-id-123", 21, other),
                     EG_OK);
    assert_string_not_equal(out, other);
    assert_int_equal(eg_idem_scope_key(h, "k:abcd1234", 10, "/v1/refunds", 11, "POST", 4,
                                       "unique-request-id-123", 21, other),
                     EG_OK);
    assert_string_not_equal(out, other);
    assert_int_equal(eg_idem_scope_key(h, "k:abcd1234", 10, "/v1/charges", 11, "PATCH", 5,
                                       "unique-request-id-123", 21, other),
                     EG_OK);
    assert_string_not_equal(out, other);
    /* no separator to forge: "a" + "b:c" is not "a:b" + "c" */
    char x[EG_IDEM_SCOPED_LEN + 1], y[EG_IDEM_SCOPED_LEN + 1];
    assert_int_equal(eg_idem_scope_key(h, "u:a", 3, "b:c", 3, "POST", 4, "k", 1, x), EG_OK);
    assert_int_equal(eg_idem_scope_key(h, "u:a:b", 5, "c", 1, "POST", 4, "k", 1, y), EG_OK);
    assert_string_not_equal(x, y);
    for (int i = 0; i < EG_IDEM_SCOPED_LEN; i++)
        assert_true((x[i] >= '0' && x[i] <= '9') || (x[i] >= 'a' && x[i] <= 'f'));
    eg_idem_hasher_free(h);
}

/* ---- records */

static const unsigned char small_rec[] = "EGI1\x00\xc9"
                                         "\x00\x00\x00\x02"
                                         "\x00\x00\x00\x0c"
                                         "Content-Type"
                                         "\x00\x00\x00\x10"
                                         "application/json"
                                         "\x00\x00\x00\x08"
                                         "Location"
                                         "\x00\x00\x00\x04"
                                         "/c/1"
                                         "\x00\x00\x00\x02"
                                         "{}";
#define SMALL_LEN (sizeof(small_rec) - 1)

static eg_http_header_t hdr(const char *n, const char *v)
{
    eg_http_header_t h = {n, strlen(n), v, strlen(v)};
    return h;
}

/* Every byte as a one-byte header name: exactly RFC 9110's tchar pass. */
static void test_record_name_bytes(void **state)
{
    (void)state;
    const char *tchar =
        "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char out[64];
    for (int c = 0; c < 256; c++) {
        char name[1] = {(char)c};
        eg_http_header_t h = {name, 1, "v", 1};
        eg_idem_record_t r = {200, &h, 1, NULL, 0};
        size_t len = 0;
        int want = c != 0 && strchr(tchar, c) != NULL;
        int rc = eg_idem_record_encode(&r, out, sizeof(out), &len);
        if ((rc == EG_OK) != want) fail_msg("byte 0x%02x: rc %d", c, rc);
    }
}

static void test_record_encode(void **state)
{
    (void)state;
    eg_http_header_t hs[] = {hdr("Content-Type", "application/json"), hdr("Location", "/c/1")};
    eg_idem_record_t r = {201, hs, 2, (const unsigned char *)"{}", 2};
    assert_int_equal(eg_idem_record_size(&r), SMALL_LEN);
    unsigned char buf[128];
    size_t len = 0;
    assert_int_equal(eg_idem_record_encode(&r, buf, sizeof(buf), &len), EG_OK);
    assert_int_equal(len, SMALL_LEN);
    assert_memory_equal(buf, small_rec, SMALL_LEN);
    /* exactly the size fits, one less does not */
    assert_int_equal(eg_idem_record_encode(&r, buf, SMALL_LEN, &len), EG_OK);
    len = 7;
    assert_int_equal(eg_idem_record_encode(&r, buf, SMALL_LEN - 1, &len), EG_ERANGE);
    assert_int_equal(len, 7);
    /* what could not be replayed is not stored */
    eg_idem_record_t bad = r;
    bad.status = 99;
    assert_int_equal(eg_idem_record_encode(&bad, buf, sizeof(buf), &len), EG_EINVAL);
    bad.status = 600;
    assert_int_equal(eg_idem_record_encode(&bad, buf, sizeof(buf), &len), EG_EINVAL);
    eg_http_header_t evil[][1] = {{hdr("X-A", "a\r\nSet-Cookie: x=1")},
                                  {hdr("X-A", "a\nb")},
                                  {{"X-A", 3, "a\0b", 3}},
                                  {hdr("X A", "v")},
                                  {hdr("", "v")},
                                  {hdr("X:A", "v")},
                                  {hdr("X-A", "a\x7f")}};
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        eg_idem_record_t e = {200, evil[i], 1, NULL, 0};
        assert_int_equal(eg_idem_record_encode(&e, buf, sizeof(buf), &len), EG_EINVAL);
    }
    /* a value may be empty and hold HTAB and obs-text; a record may be bare */
    eg_http_header_t ok[] = {hdr("X-Empty", ""), hdr("X-T", "a\tb \xe9")};
    eg_idem_record_t e = {204, ok, 2, NULL, 0};
    assert_int_equal(eg_idem_record_encode(&e, buf, sizeof(buf), &len), EG_OK);
    eg_idem_record_t none = {200, NULL, 0, NULL, 0};
    assert_int_equal(eg_idem_record_size(&none), 14);
    assert_int_equal(eg_idem_record_encode(&none, buf, sizeof(buf), &len), EG_OK);
    assert_int_equal(len, 14);
    eg_idem_record_t many = {200, hs, EG_IDEM_RECORD_MAX_HEADERS + 1, NULL, 0};
    assert_int_equal(eg_idem_record_size(&many), 0);
    assert_int_equal(eg_idem_record_encode(&many, buf, sizeof(buf), &len), EG_EINVAL);
}

/* Every byte at every position of a value (checked eight bytes a step,
 * then the tail): control bytes but HTAB, and DEL, are refused by encode
 * and by decode; everything else passes both. */
static void test_record_value_bytes(void **state)
{
    (void)state;
    char v[19];
    unsigned char buf[128];
    eg_http_header_t got[1];
    for (size_t at = 0; at < sizeof(v); at++)
        for (int c = 0; c < 256; c++) {
            memset(v, 'v', sizeof(v));
            v[at] = (char)c;
            eg_http_header_t h = {"X-V", 3, v, sizeof(v)};
            eg_idem_record_t r = {200, &h, 1, NULL, 0}, d;
            size_t len = 0;
            int ok = !((c < 0x20 && c != '\t') || c == 0x7f);
            int rc = eg_idem_record_encode(&r, buf, sizeof(buf), &len);
            if ((rc == EG_OK) != ok) fail_msg("encode: byte 0x%02x at %zu: rc %d", c, at, rc);
            /* the same record written piece by piece, as the stage does */
            eg_idem_record_start(buf, 200);
            unsigned char *o = eg_idem_record_put(buf + EG_IDEM_RECORD_START, "X-V", 3);
            o = eg_idem_record_put(o, v, sizeof(v));
            o = eg_idem_record_put(o, NULL, 0);
            eg_idem_record_count(buf, 1);
            rc = eg_idem_record_decode(buf, (size_t)(o - buf), got, 1, &d);
            if ((rc == EG_OK) != ok) fail_msg("decode: byte 0x%02x at %zu: rc %d", c, at, rc);
        }
}

/* The piecewise writer gives the bytes encode gives. */
static void test_record_put(void **state)
{
    (void)state;
    unsigned char buf[128];
    memset(buf, 0xaa, sizeof(buf));
    eg_idem_record_start(buf, 201);
    unsigned char *o = eg_idem_record_put(buf + EG_IDEM_RECORD_START, "Content-Type", 12);
    o = eg_idem_record_put(o, "application/json", 16);
    o = eg_idem_record_put(o, "Location", 8);
    o = eg_idem_record_put(o, "/c/1", 4);
    o = eg_idem_record_put(o, "{}", 2);
    eg_idem_record_count(buf, 2);
    assert_int_equal(o - buf, SMALL_LEN);
    assert_memory_equal(buf, small_rec, SMALL_LEN);
    assert_int_equal(buf[SMALL_LEN], 0xaa); /* nothing past it */
}

static void test_record_decode(void **state)
{
    (void)state;
    eg_http_header_t hs[4];
    eg_idem_record_t r;
    assert_int_equal(eg_idem_record_decode(small_rec, SMALL_LEN, hs, 4, &r), EG_OK);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.nheaders, 2);
    assert_ptr_equal(r.headers, hs);
    assert_int_equal(hs[0].name_len, 12);
    assert_memory_equal(hs[0].name, "Content-Type", 12);
    assert_int_equal(hs[0].value_len, 16);
    assert_memory_equal(hs[0].value, "application/json", 16);
    assert_memory_equal(hs[1].name, "Location", 8);
    assert_memory_equal(hs[1].value, "/c/1", 4);
    assert_int_equal(r.body_len, 2);
    assert_memory_equal(r.body, "{}", 2);
    /* zero-copy: slices into the record */
    assert_ptr_equal(r.body, small_rec + SMALL_LEN - 2);

    eg_idem_record_t untouched;
    memset(&untouched, 0x5a, sizeof(untouched));
    /* every truncation is refused, read from an exact-size copy (ASan) */
    for (size_t n = 0; n < SMALL_LEN; n++) {
        unsigned char *c = malloc(n ? n : 1);
        memcpy(c, small_rec, n);
        eg_idem_record_t o = untouched;
        assert_int_equal(eg_idem_record_decode(c, n, hs, 4, &o), EG_EPARSE);
        assert_memory_equal(&o, &untouched, sizeof(o));
        free(c);
    }
    unsigned char c[SMALL_LEN + 1];
    memcpy(c, small_rec, SMALL_LEN);
    c[SMALL_LEN] = 'x'; /* a byte left over */
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN + 1, hs, 4, &r), EG_EPARSE);
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN, hs, 1, &r), EG_ERANGE); /* room for 1 */
    c[3] = '2'; /* another format */
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN, hs, 4, &r), EG_EPARSE);
    c[3] = '1';
    c[4] = 0x02, c[5] = 0x58; /* status 600 */
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN, hs, 4, &r), EG_EPARSE);
    c[4] = 0x00, c[5] = 0xc9;
    c[14 + 12 + 4 + 3] = '\n'; /* LF in the first value */
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN, hs, 4, &r), EG_EPARSE);
    c[14 + 12 + 4 + 3] = 'l';
    c[14 + 3] = ' '; /* space in the first name */
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN, hs, 4, &r), EG_EPARSE);
    c[14 + 3] = 't';
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN, hs, 4, &r), EG_OK);
    c[9] = 0xff; /* 255 headers claimed */
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN, hs, 4, &r), EG_EPARSE);
    c[6] = 0xff; /* 4 billion */
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN, hs, 4, &r), EG_EPARSE);
    c[6] = 0, c[9] = 2;
    c[SMALL_LEN - 3] = 3; /* the body claims one byte more than there is */
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN, hs, 4, &r), EG_EPARSE);
    c[SMALL_LEN - 6] = 0xff; /* ... or 4 GiB */
    assert_int_equal(eg_idem_record_decode(c, SMALL_LEN, hs, 4, &r), EG_EPARSE);
    assert_int_equal(eg_idem_record_decode(NULL, 0, hs, 4, &r), EG_EPARSE);
}

static void test_record_roundtrip(void **state)
{
    (void)state;
    /* a large body and many headers, duplicates kept in order */
    size_t blen = 1 << 20;
    unsigned char *body = malloc(blen);
    for (size_t i = 0; i < blen; i++)
        body[i] = (unsigned char)(i * 31 + 7);
    eg_http_header_t hs[40];
    char names[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "X-H%d", i % 7);
        hs[i] = hdr(names[i], i % 2 ? "odd" : "even value");
    }
    eg_idem_record_t r = {200, hs, 40, body, blen};
    size_t cap = eg_idem_record_size(&r), len;
    unsigned char *buf = malloc(cap);
    assert_int_equal(eg_idem_record_encode(&r, buf, cap, &len), EG_OK);
    assert_int_equal(len, cap);
    eg_http_header_t got[40];
    eg_idem_record_t d;
    assert_int_equal(eg_idem_record_decode(buf, len, got, 40, &d), EG_OK);
    assert_int_equal(d.status, 200);
    assert_int_equal(d.nheaders, 40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(got[i].name_len, hs[i].name_len);
        assert_memory_equal(got[i].name, hs[i].name, hs[i].name_len);
        assert_int_equal(got[i].value_len, hs[i].value_len);
        assert_memory_equal(got[i].value, hs[i].value, hs[i].value_len);
    }
    assert_int_equal(d.body_len, blen);
    assert_memory_equal(d.body, body, blen);
    free(buf);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_forms),         cmocka_unit_test(test_key_refused),
        cmocka_unit_test(test_key_length),        cmocka_unit_test(test_body_hash),
        cmocka_unit_test(test_fingerprint),       cmocka_unit_test(test_fingerprint_body),
        cmocka_unit_test(test_record_name_bytes), cmocka_unit_test(test_scope_key),
        cmocka_unit_test(test_scope_bytes),       cmocka_unit_test(test_record_encode),
        cmocka_unit_test(test_record_decode),     cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_key_bytes),         cmocka_unit_test(test_record_value_bytes),
        cmocka_unit_test(test_record_put),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
