/* idempotency.c - Idempotency-Key parsing, fingerprints, scoped keys and
 * response records (see idempotency.h).
 *
 * Every hash input is a domain tag followed by length-prefixed fields
 * (4-byte big-endian lengths), so a fingerprint can never equal a scoped
 * key's hash and no two field lists share an encoding. The record format:
 *
 *   "EGI1" | status u16 | nheaders u32 | (name_len u32, name, value_len u32,
 *   value) * nheaders | body_len u32 | body
 *
 * all integers big-endian; a record is exactly that many bytes.
 */
/* SHA256_Init/Update/Final: deprecated by OpenSSL 3 but kept, and 20-50 ns a
 * digest cheaper than EVP's provider dispatch (bench/bench_idem_hash.c), on
 * a path every idempotent request takes; EVP where they are compiled out. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "errgate/idempotency.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

struct eg_idem_hasher_s {
    EVP_MD *md;
    EVP_MD_CTX *ctx;
};

/* ---- the header */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether v[0..n) is all visible ASCII (0x21-0x7E), eight bytes a step: a
 * byte below 0x21 (exact for "any", the borrow trick), or of 0x7F and up
 * (its high bit, or that of its successor; a carry comes only out of 0xFF,
 * itself refused). */
static int visible(const char *v, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, v + i, 8);
        if ((((w - 0x2121212121212121ULL) & ~w) | w | (w + 0x0101010101010101ULL)) &
            0x8080808080808080ULL)
            return 0;
    }
    for (; i < n; i++)
        if ((unsigned char)(v[i] - 0x21) > 0x7E - 0x21) return 0;
    return 1;
}

int eg_idem_key_parse(const char *v, size_t n, char out[EG_IDEM_KEY_MAX + 1], size_t *outlen)
{
    char key[EG_IDEM_KEY_MAX + 1];
    size_t len = 0;
    if (!v) return EG_EINVAL;
    while (n && is_ows(v[0]))
        v++, n--;
    while (n && is_ows(v[n - 1]))
        n--;
    if (n == 0) return EG_ERANGE;
    if (v[0] == '"') {
        /* sf-string: DQUOTE *( unescaped / "\" ( DQUOTE / "\" ) ) DQUOTE,
         * unescaped being %x20-21 / %x23-5B / %x5D-7E */
        size_t i = 1;
        for (;; i++) {
            if (i >= n) return EG_EPARSE; /* unterminated */
            unsigned char c = (unsigned char)v[i];
            if (c == '"') break;
            if (c == '\\') {
                if (++i >= n || (v[i] != '"' && v[i] != '\\')) return EG_EPARSE;
                c = (unsigned char)v[i];
            } else if (c < 0x20 || c > 0x7E) {
                return EG_EPARSE;
            }
            if (c == ' ') return EG_ERANGE; /* a valid sf-string, not a valid key */
            if (len == EG_IDEM_KEY_MAX) return EG_ERANGE;
            key[len++] = (char)c;
        }
        if (i != n - 1) return EG_EPARSE; /* parameters or anything else after it */
    } else {
        /* a bare key is its bytes: checked, then copied at once (a bad
         * byte within the first 256 is EG_EPARSE, as a longer key is
         * EG_ERANGE only past them) */
        if (!visible(v, n <= EG_IDEM_KEY_MAX ? n : EG_IDEM_KEY_MAX + 1)) return EG_EPARSE;
        if (n > EG_IDEM_KEY_MAX) return EG_ERANGE;
        memcpy(out, v, n);
        out[n] = '\0';
        *outlen = n;
        return EG_OK;
    }
    if (len == 0) return EG_ERANGE;
    key[len] = '\0';
    memcpy(out, key, len + 1);
    *outlen = len;
    return EG_OK;
}

/* ---- hashing */

int eg_idem_hasher_new(eg_idem_hasher_t **out)
{
    eg_idem_hasher_t *h = calloc(1, sizeof(*h));
    if (!h) return EG_ENOMEM;
    if (!(h->md = EVP_MD_fetch(NULL, "SHA256", NULL)) || !(h->ctx = EVP_MD_CTX_new())) {
        eg_idem_hasher_free(h);
        return EG_EIO;
    }
    *out = h;
    return EG_OK;
}

void eg_idem_hasher_free(eg_idem_hasher_t *h)
{
    if (!h) return;
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    free(h);
}

/* The caller's hasher, or a temporary one in *tmp (freed by the caller). */
static eg_idem_hasher_t *hasher(eg_idem_hasher_t *h, eg_idem_hasher_t **tmp)
{
    *tmp = NULL;
    if (h) return h;
    return eg_idem_hasher_new(tmp) == EG_OK ? *tmp : NULL;
}

int eg_idem_body_hash_init(eg_idem_hasher_t *h, eg_idem_body_hash_t *b)
{
    eg_idem_hasher_t *tmp, *use = hasher(h, &tmp);
    EVP_MD_CTX *ctx = use ? EVP_MD_CTX_new() : NULL;
    int rc = EG_EIO;
    /* the context takes its own reference to the fetched digest */
    if (ctx && EVP_DigestInit_ex2(ctx, use->md, NULL) == 1) {
        b->ctx = ctx;
        b->len = 0;
        ctx = NULL;
        rc = EG_OK;
    }
    EVP_MD_CTX_free(ctx);
    eg_idem_hasher_free(tmp);
    return rc;
}

int eg_idem_body_hash_update(eg_idem_body_hash_t *b, const void *p, size_t n)
{
    if (!b->ctx) return EG_EINVAL;
    if (n && EVP_DigestUpdate(b->ctx, p, n) != 1) return EG_EIO;
    b->len += n;
    return EG_OK;
}

int eg_idem_body_hash_final(eg_idem_body_hash_t *b, unsigned char out[EG_IDEM_HASH_LEN])
{
    if (!b->ctx) return EG_EINVAL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = EVP_DigestFinal_ex(b->ctx, md, &len) == 1 && len == EG_IDEM_HASH_LEN;
    eg_idem_body_hash_clear(b);
    if (!ok) return EG_EIO;
    memcpy(out, md, EG_IDEM_HASH_LEN);
    return EG_OK;
}

void eg_idem_body_hash_clear(eg_idem_body_hash_t *b)
{
    if (!b) return;
    EVP_MD_CTX_free(b->ctx);
    b->ctx = NULL;
}

typedef struct {
    const void *p;
    size_t n;
} part_t;

static void be32(unsigned char *o, uint32_t v)
{
    o[0] = (unsigned char)(v >> 24);
    o[1] = (unsigned char)(v >> 16);
    o[2] = (unsigned char)(v >> 8);
    o[3] = (unsigned char)v;
}

/* One SHA-256: the low-level calls (no hasher needed), or EVP through the
 * hasher's fetched digest and context when they are compiled out. */
#ifndef OPENSSL_NO_DEPRECATED_3_0
typedef SHA256_CTX digest_t;
static int d_init(eg_idem_hasher_t *h, digest_t *d)
{
    (void)h;
    return SHA256_Init(d) == 1;
}
static int d_update(digest_t *d, const void *p, size_t n)
{
    return SHA256_Update(d, p, n) == 1;
}
static int d_final(digest_t *d, unsigned char out[EG_IDEM_HASH_LEN])
{
    return SHA256_Final(out, d) == 1;
}
#else
typedef EVP_MD_CTX *digest_t;
static int d_init(eg_idem_hasher_t *h, digest_t *d)
{
    *d = h->ctx;
    return EVP_DigestInit_ex2(h->ctx, h->md, NULL) == 1;
}
static int d_update(digest_t *d, const void *p, size_t n)
{
    return EVP_DigestUpdate(*d, p, n) == 1;
}
static int d_final(digest_t *d, unsigned char out[EG_IDEM_HASH_LEN])
{
    unsigned int len = 0;
    return EVP_DigestFinal_ex(*d, out, &len) == 1 && len == EG_IDEM_HASH_LEN;
}
#endif

/* SHA-256 of tag (tl bytes: its NUL included), then each part as a 4-byte length and its bytes. The
 * short parts are laid out in one buffer first: each update call
 * costs more than copying a few dozen bytes, and a request's method, path,
 * principal and key are short. A part that does not fit goes on its own. */
static int hash_parts(eg_idem_hasher_t *h, const char *tag, size_t tl, const part_t *parts,
                      size_t nparts, unsigned char out[EG_IDEM_HASH_LEN])
{
#ifndef OPENSSL_NO_DEPRECATED_3_0
    eg_idem_hasher_t *tmp = NULL, *use = h; /* the low-level calls need no hasher */
#else
    eg_idem_hasher_t *tmp, *use = hasher(h, &tmp);
    if (!use) return EG_EIO;
#endif
    unsigned char md[EG_IDEM_HASH_LEN], buf[512];
    digest_t d;
    size_t n = 0;
    int ok = tl <= sizeof(buf) && d_init(use, &d);
    if (ok) {
        memcpy(buf, tag, tl);
        n = tl;
    }
    for (size_t i = 0; ok && i < nparts; i++) {
        ok = parts[i].n <= UINT32_MAX;
        if (n + 4 > sizeof(buf)) {
            ok = ok && d_update(&d, buf, n);
            n = 0;
        }
        be32(buf + n, (uint32_t)parts[i].n);
        n += 4;
        if (!parts[i].n) continue;
        if (parts[i].n <= sizeof(buf) - n) {
            memcpy(buf + n, parts[i].p, parts[i].n);
            n += parts[i].n;
        } else {
            ok = ok && d_update(&d, buf, n) && d_update(&d, parts[i].p, parts[i].n);
            n = 0;
        }
    }
    ok = ok && (!n || d_update(&d, buf, n)) && d_final(&d, md);
    eg_idem_hasher_free(tmp);
    if (!ok) return EG_EIO;
    memcpy(out, md, EG_IDEM_HASH_LEN);
    return EG_OK;
}

/* hash_parts under a literal tag (its length known at compile time) */
#define TAGGED(h, tag, parts, out) hash_parts(h, tag, sizeof(tag), parts, 4, out)

/* SHA-256 of no bytes, the body hash of a request without a body */
static const unsigned char empty_sha256[EG_IDEM_HASH_LEN] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

int eg_idem_fingerprint(eg_idem_hasher_t *h, const char *method, size_t method_len,
                        const char *path, size_t path_len, const char *query, size_t query_len,
                        const unsigned char body_sha256[EG_IDEM_HASH_LEN],
                        unsigned char out[EG_IDEM_HASH_LEN])
{
    part_t parts[] = {{method, method_len},
                      {path, path_len},
                      {query, query ? query_len : 0},
                      {body_sha256 ? body_sha256 : empty_sha256, EG_IDEM_HASH_LEN}};
    return TAGGED(h, "errgate idempotency fingerprint v1", parts, out);
}

int eg_idem_fingerprint_body(eg_idem_hasher_t *h, const char *method, size_t method_len,
                             const char *path, size_t path_len, const char *query, size_t query_len,
                             const void *body, size_t body_len, unsigned char out[EG_IDEM_HASH_LEN])
{
    if (body_len && !body) return EG_EINVAL;
    if (!query) query_len = 0;
#ifndef OPENSSL_NO_DEPRECATED_3_0
    /* the usual request (method, path and query of under 400 bytes): the
     * same bytes as hash_parts stages, laid out at once (the tag's length
     * known here) and the body hashed in place, with no loop over parts */
    static const char tag[] = "errgate idempotency fingerprint v2";
    unsigned char buf[512];
    if (method_len + path_len + query_len <= sizeof(buf) - sizeof(tag) - 16 &&
        body_len <= UINT32_MAX) {
        unsigned char *o = buf + sizeof(tag);
        memcpy(buf, tag, sizeof(tag));
        be32(o, (uint32_t)method_len);
        if (method_len) memcpy(o + 4, method, method_len);
        o += 4 + method_len;
        be32(o, (uint32_t)path_len);
        if (path_len) memcpy(o + 4, path, path_len);
        o += 4 + path_len;
        be32(o, (uint32_t)query_len);
        if (query_len) memcpy(o + 4, query, query_len);
        o += 4 + query_len;
        be32(o, (uint32_t)body_len);
        o += 4;
        SHA256_CTX d;
        unsigned char md[EG_IDEM_HASH_LEN];
        if (SHA256_Init(&d) != 1 || SHA256_Update(&d, buf, (size_t)(o - buf)) != 1 ||
            (body_len && SHA256_Update(&d, body, body_len) != 1) || SHA256_Final(md, &d) != 1)
            return EG_EIO;
        memcpy(out, md, EG_IDEM_HASH_LEN);
        return EG_OK;
    }
#endif
    part_t parts[] = {{method, method_len}, {path, path_len}, {query, query_len}, {body, body_len}};
    return TAGGED(h, "errgate idempotency fingerprint v2", parts, out);
}

int eg_idem_scope_key(eg_idem_hasher_t *h, const char *principal, size_t principal_len,
                      const char *route, size_t route_len, const char *method, size_t method_len,
                      const char *key, size_t key_len, char out[EG_IDEM_SCOPED_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    part_t parts[] = {
        {principal, principal_len}, {route, route_len}, {method, method_len}, {key, key_len}};
    unsigned char md[EG_IDEM_HASH_LEN];
    int rc = TAGGED(h, "errgate idempotency scope v1", parts, md);
    if (rc != EG_OK) return rc;
    for (size_t i = 0; i < EG_IDEM_HASH_LEN; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[EG_IDEM_SCOPED_LEN] = '\0';
    return EG_OK;
}

int eg_idem_scope_bytes(const char *principal, size_t principal_len, const char *route,
                        size_t route_len, const char *method, size_t method_len, const char *key,
                        size_t key_len, unsigned char *out, size_t cap, size_t *outlen)
{
    part_t parts[] = {
        {principal, principal_len}, {route, route_len}, {method, method_len}, {key, key_len}};
    size_t n = 0;
    for (size_t i = 0; i < 4; i++) {
        if (parts[i].n > UINT32_MAX || cap - n < 4 || cap - n - 4 < parts[i].n) return EG_ERANGE;
        be32(out + n, (uint32_t)parts[i].n);
        if (parts[i].n) memcpy(out + n + 4, parts[i].p, parts[i].n);
        n += 4 + parts[i].n;
    }
    *outlen = n;
    return EG_OK;
}

/* ---- records */

static const unsigned char magic[4] = {'E', 'G', 'I', '1'};

/* RFC 9110 tchar: ALPHA, DIGIT and "!#$%&'*+-.^_`|~" (a table: every
 * byte of every stored header name is checked, on encode and decode) */
static const unsigned char tchar[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0};

static int name_ok(const char *s, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!tchar[(unsigned char)s[i]]) return 0;
    return 1;
}

/* The offset of the first byte of v[0..n) below 0x20 or equal to 0x7F (a
 * control byte or DEL), n when there is none; bytes of 0x80 and up pass
 * (obs-text). Eight bytes a step (a record's values are checked on every
 * encode and decode): the lowest byte flagged by each test is a true one (a
 * borrow only runs upwards), so the lower of the two is the first. */
static size_t value_stop(const char *v, size_t n)
{
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 8 <= n; i += 8) {
        uint64_t w, x;
        memcpy(&w, v + i, 8);
        x = w ^ 0x7F7F7F7F7F7F7F7FULL;
        uint64_t bad = ((w - 0x2020202020202020ULL) & ~w & 0x8080808080808080ULL) |
                       ((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL);
        if (bad) return i + (size_t)(__builtin_ctzll(bad) >> 3);
    }
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7F) return i;
    }
    return n;
}

/* What a field value may hold on the wire (RFC 9110 5.5): HTAB, SP,
 * VCHAR, obs-text. No CR, LF or NUL, so a replay cannot split its head. */
static int value_ok(const char *s, size_t n)
{
    for (size_t i = 0; (i += value_stop(s + i, n - i)) < n; i++)
        if (s[i] != '\t') return 0;
    return 1;
}

size_t eg_idem_record_size(const eg_idem_record_t *r)
{
    if (r->nheaders > EG_IDEM_RECORD_MAX_HEADERS || r->body_len > UINT32_MAX) return 0;
    size_t n = 4 + 2 + 4 + 4 + r->body_len;
    for (size_t i = 0; i < r->nheaders; i++) {
        const eg_http_header_t *h = &r->headers[i];
        if (h->name_len > UINT32_MAX || h->value_len > UINT32_MAX) return 0;
        size_t add = 8 + h->name_len + h->value_len;
        if (add < h->name_len || n + add < n) return 0;
        n += add;
    }
    return n;
}

static int record_ok(const eg_idem_record_t *r)
{
    if (r->status < 100 || r->status > 599 || r->nheaders > EG_IDEM_RECORD_MAX_HEADERS) return 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const eg_http_header_t *h = &r->headers[i];
        if (!name_ok(h->name, h->name_len) || !value_ok(h->value, h->value_len)) return 0;
    }
    return 1;
}

void eg_idem_record_start(unsigned char *out, int status)
{
    memcpy(out, magic, 4);
    out[4] = (unsigned char)(status >> 8);
    out[5] = (unsigned char)status;
    be32(out + 6, 0);
}

void eg_idem_record_count(unsigned char *out, size_t nheaders)
{
    be32(out + 6, (uint32_t)nheaders);
}

unsigned char *eg_idem_record_put(unsigned char *o, const void *p, size_t n)
{
    be32(o, (uint32_t)n);
    if (n) memcpy(o + 4, p, n);
    return o + 4 + n;
}

int eg_idem_record_encode(const eg_idem_record_t *r, unsigned char *out, size_t cap, size_t *outlen)
{
    if (!record_ok(r) || (r->body_len && !r->body)) return EG_EINVAL;
    size_t need = eg_idem_record_size(r);
    if (need == 0) return EG_EINVAL;
    if (cap < need) return EG_ERANGE;
    unsigned char *o = out;
    memcpy(o, magic, 4);
    o[4] = (unsigned char)(r->status >> 8);
    o[5] = (unsigned char)r->status;
    be32(o + 6, (uint32_t)r->nheaders);
    o += 10;
    for (size_t i = 0; i < r->nheaders; i++) {
        const eg_http_header_t *h = &r->headers[i];
        be32(o, (uint32_t)h->name_len);
        memcpy(o + 4, h->name, h->name_len);
        o += 4 + h->name_len;
        be32(o, (uint32_t)h->value_len);
        if (h->value_len) memcpy(o + 4, h->value, h->value_len);
        o += 4 + h->value_len;
    }
    be32(o, (uint32_t)r->body_len);
    if (r->body_len) memcpy(o + 4, r->body, r->body_len);
    o += 4 + r->body_len;
    *outlen = (size_t)(o - out);
    return EG_OK;
}

/* Reads a 4-byte length at *at and the slice after it; 0 when it runs
 * past len. */
static int take(const unsigned char *rec, size_t len, size_t *at, const unsigned char **p,
                size_t *n)
{
    if (len - *at < 4) return 0;
    const unsigned char *l = rec + *at;
    size_t v = (size_t)l[0] << 24 | (size_t)l[1] << 16 | (size_t)l[2] << 8 | (size_t)l[3];
    *at += 4;
    if (len - *at < v) return 0;
    *p = rec + *at;
    *n = v;
    *at += v;
    return 1;
}

int eg_idem_record_decode(const unsigned char *rec, size_t len, eg_http_header_t *headers,
                          size_t hcap, eg_idem_record_t *out)
{
    if (!rec || len < 14 || memcmp(rec, magic, 4) != 0) return EG_EPARSE;
    eg_idem_record_t r = {0};
    r.status = rec[4] << 8 | rec[5];
    size_t nh = (size_t)rec[6] << 24 | (size_t)rec[7] << 16 | (size_t)rec[8] << 8 | rec[9];
    if (r.status < 100 || r.status > 599 || nh > EG_IDEM_RECORD_MAX_HEADERS) return EG_EPARSE;
    /* each header takes at least 8 bytes: a count the record cannot hold
     * is refused before anything is written to headers */
    if (nh > (len - 14) / 8) return EG_EPARSE;
    if (nh > hcap) return EG_ERANGE;
    size_t at = 10;
    for (size_t i = 0; i < nh; i++) {
        const unsigned char *p;
        size_t n;
        if (!take(rec, len, &at, &p, &n) || !name_ok((const char *)p, n)) return EG_EPARSE;
        headers[i].name = (const char *)p;
        headers[i].name_len = n;
        if (!take(rec, len, &at, &p, &n) || !value_ok((const char *)p, n)) return EG_EPARSE;
        headers[i].value = (const char *)p;
        headers[i].value_len = n;
    }
    if (!take(rec, len, &at, &r.body, &r.body_len) || at != len) return EG_EPARSE;
    r.headers = headers;
    r.nheaders = nh;
    *out = r;
    return EG_OK;
}
