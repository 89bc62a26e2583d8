/* error.c - the canonical error model and its builder.
 *
 * An error owns a small arena: every string a setter copies goes there, so
 * freeing an error is one walk over a few chunks and the struct can be read
 * without indirection through owned-string wrappers. Setting an attribute
 * twice leaves the old copy in the arena until the error is freed; errors
 * live for one request, so that waste is bounded and cheap.
 */
#include "errgate/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonw.h"

struct eg_arena_chunk_s {
    eg_arena_chunk_t *next;
    size_t used, cap;
    char data[];
};

#define EG_ARENA_CHUNK 1024

/* Arena allocation, 8-byte aligned. */
static void *arena_alloc(eg_error_t *e, size_t n)
{
    size_t need = (n + 7u) & ~(size_t)7u;
    eg_arena_chunk_t *c = e->arena;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > EG_ARENA_CHUNK ? need : EG_ARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = e->arena;
        e->arena = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    return p;
}

char *eg_error_strdup(eg_error_t *e, const char *s, size_t n)
{
    char *p = arena_alloc(e, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* The first arena chunk comes with the error, in one allocation: most
 * errors (a gateway's 404, a translated 4xx) never need a second. */
#define EG_ARENA_FIRST 768

static eg_arena_chunk_t *embedded_chunk(const eg_error_t *e)
{
    return (eg_arena_chunk_t *)(void *)((char *)(uintptr_t)e + sizeof(*e));
}

eg_error_t *eg_error_new(void)
{
    _Static_assert(sizeof(eg_error_t) % _Alignof(eg_arena_chunk_t) == 0, "chunk alignment");
    eg_error_t *e = malloc(sizeof(*e) + sizeof(eg_arena_chunk_t) + EG_ARENA_FIRST);
    if (!e) return NULL;
    memset(e, 0, sizeof(*e));
    e->retry_after = -1;
    eg_arena_chunk_t *c = embedded_chunk(e);
    c->next = NULL;
    c->used = 0;
    c->cap = EG_ARENA_FIRST;
    e->arena = c;
    return e;
}

/* [A-Za-z0-9_.-], one bit each (see eg_reqid_valid). */
static const uint64_t code_bits[2] = {0x03ff600000000000ull, 0x07fffffe87fffffeull};

int eg_error_code_valid(const char *s, size_t n)
{
    if (!s || n < 1 || n > EG_CODE_MAX) return 0;
    uint64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bad |= (c >> 7) | (~code_bits[(c >> 6) & 1] >> (c & 63) & 1);
    }
    return bad == 0;
}

void eg_error_free(eg_error_t *e)
{
    if (!e) return;
    for (size_t i = 0; i < e->nfields; i++) {
        json_decref(e->fields[i].value);
        json_decref(e->fields[i].extra);
    }
    free(e->fields);
    json_decref(e->details);
    json_decref(e->meta);
    eg_arena_chunk_t *first = embedded_chunk(e);
    for (eg_arena_chunk_t *c = e->arena, *next; c; c = next) {
        next = c->next;
        if (c != first) free(c);
    }
    free(e);
}

static int setn(eg_error_t *e, eg_str_t which, const char *v, size_t n, int known_plain);

int eg_error_setn(eg_error_t *e, eg_str_t which, const char *v, size_t n)
{
    return setn(e, which, v, n, 0);
}

int eg_error_setn_known(eg_error_t *e, eg_str_t which, const char *v, size_t n, int plain)
{
    return setn(e, which, v, n, plain);
}

static int setn(eg_error_t *e, eg_str_t which, const char *v, size_t n, int known_plain)
{
    if ((unsigned)which >= EG_S__COUNT) return EG_EINVAL;
    e->plain &= ~(1u << which);
    if (!v) {
        e->s[which] = NULL;
        e->len[which] = 0;
        return EG_OK;
    }
    if (n > UINT32_MAX) return EG_ERANGE;
    char *p = eg_error_strdup(e, v, n);
    if (!p) return EG_ENOMEM;
    e->s[which] = p;
    e->len[which] = (uint32_t)strlen(p); /* up to an embedded NUL, as C strings go */
    if (known_plain || eg_jsonw_is_plain(p, e->len[which])) e->plain |= 1u << which;
    return EG_OK;
}

int eg_error_set_static(eg_error_t *e, eg_str_t which, const char *v, size_t n, int plain)
{
    if ((unsigned)which >= EG_S__COUNT || !v || v[n] != '\0') return EG_EINVAL;
    if (n > UINT32_MAX) return EG_ERANGE;
    e->s[which] = v;
    e->len[which] = (uint32_t)n;
    e->plain &= ~(1u << which);
    if (plain || eg_jsonw_is_plain(v, n)) e->plain |= 1u << which;
    return EG_OK;
}

int eg_error_set(eg_error_t *e, eg_str_t which, const char *v)
{
    return eg_error_setn(e, which, v, v ? strlen(v) : 0);
}

int eg_error_setf(eg_error_t *e, eg_str_t which, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return EG_EINVAL;
    if ((size_t)n < sizeof(small)) return eg_error_setn(e, which, small, (size_t)n);
    if ((unsigned)which >= EG_S__COUNT) return EG_EINVAL;
    char *p = arena_alloc(e, (size_t)n + 1);
    if (!p) return EG_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    e->s[which] = p;
    e->len[which] = (uint32_t)strlen(p);
    e->plain &= ~(1u << which);
    if (eg_jsonw_is_plain(p, e->len[which])) e->plain |= 1u << which;
    return EG_OK;
}

void eg_error_set_status(eg_error_t *e, int status)
{
    e->status = status;
}

void eg_error_set_retry_after(eg_error_t *e, long long seconds)
{
    e->retry_after = seconds < 0 ? -1 : seconds;
}

eg_field_error_t *eg_error_add_field(eg_error_t *e)
{
    if (e->nfields == e->capfields) {
        size_t ncap = e->capfields ? e->capfields * 2 : 4;
        eg_field_error_t *p = realloc(e->fields, ncap * sizeof(*p));
        if (!p) return NULL;
        e->fields = p;
        e->capfields = ncap;
    }
    eg_field_error_t *f = &e->fields[e->nfields++];
    memset(f, 0, sizeof(*f));
    return f;
}

int eg_field_setn(eg_error_t *e, eg_field_error_t *f, eg_fstr_t which, const char *v, size_t n)
{
    if ((unsigned)which >= EG_F__COUNT) return EG_EINVAL;
    f->plain &= ~(1u << which);
    if (!v) {
        f->s[which] = NULL;
        f->len[which] = 0;
        return EG_OK;
    }
    if (n > UINT32_MAX) return EG_ERANGE;
    char *p = eg_error_strdup(e, v, n);
    if (!p) return EG_ENOMEM;
    f->s[which] = p;
    f->len[which] = (uint32_t)strlen(p);
    if (eg_jsonw_is_plain(p, f->len[which])) f->plain |= 1u << which;
    return EG_OK;
}

int eg_field_set(eg_error_t *e, eg_field_error_t *f, eg_fstr_t which, const char *v)
{
    return eg_field_setn(e, f, which, v, v ? strlen(v) : 0);
}

void eg_field_set_value(eg_field_error_t *f, json_t *v)
{
    json_decref(f->value);
    f->value = v;
}

json_t *eg_field_extra(eg_field_error_t *f)
{
    if (!f->extra) f->extra = json_object();
    return f->extra;
}

/* Raw members become jansson values (in order) the first time anyone
 * needs the details as an object. */
static int materialize(eg_error_t *e)
{
    if (!e->nraw) return EG_OK;
    json_t *d = e->details ? e->details : json_object();
    if (!d) return EG_ENOMEM;
    e->details = d;
    for (size_t i = 0; i < e->nraw; i++) {
        json_t *v = json_loadb(e->raw[i].json, e->raw[i].jsonlen, JSON_DECODE_ANY, NULL);
        if (!v || json_object_set_new(d, e->raw[i].key, v) != 0) return EG_ENOMEM;
    }
    e->nraw = 0;
    return EG_OK;
}

json_t *eg_error_details(eg_error_t *e)
{
    if (materialize(e) != EG_OK) return NULL;
    if (!e->details) e->details = json_object();
    return e->details;
}

json_t *eg_error_details_get(eg_error_t *e)
{
    if (materialize(e) != EG_OK) return NULL;
    return e->details;
}

int eg_error_set_detail_str(eg_error_t *e, const char *key, const char *v, size_t n)
{
    if (e->details) {
        json_t *j = json_stringn(v, n);
        if (!j) return EG_ENOMEM;
        return eg_error_set_detail(e, key, j);
    }
    char small[512];
    eg_jsonw_t w = {small, sizeof(small), 0};
    eg_jsonw_str(&w, v, n); /* escaped, invalid UTF-8 replaced: valid JSON text */
    size_t len = eg_jsonw_finish(&w);
    if (len < sizeof(small)) return eg_error_keep_detail_raw(e, key, strlen(key), small, len);
    char *big = malloc(len + 1);
    if (!big) return EG_ENOMEM;
    w = (eg_jsonw_t){big, len + 1, 0};
    eg_jsonw_str(&w, v, n);
    int rc = eg_error_keep_detail_raw(e, key, strlen(key), big, eg_jsonw_finish(&w));
    free(big);
    return rc;
}

int eg_error_set_detail_int(eg_error_t *e, const char *key, long long v)
{
    if (e->details) {
        json_t *j = json_integer(v);
        if (!j) return EG_ENOMEM;
        return eg_error_set_detail(e, key, j);
    }
    char small[24];
    eg_jsonw_t w = {small, sizeof(small), 0};
    eg_jsonw_int(&w, v);
    return eg_error_keep_detail_raw(e, key, strlen(key), small, eg_jsonw_finish(&w));
}

int eg_error_has_details(const eg_error_t *e)
{
    return e->nraw > 0 || (e->details && json_object_size(e->details) > 0);
}

static eg_raw_member_t *raw_find(eg_error_t *e, const char *key, size_t kn)
{
    for (size_t i = 0; i < e->nraw; i++)
        if (e->raw[i].keylen == kn && memcmp(e->raw[i].key, key, kn) == 0) return &e->raw[i];
    return NULL;
}

int eg_error_keep_detail_raw(eg_error_t *e, const char *key, size_t kn, const char *json, size_t jn)
{
    if (kn > UINT32_MAX || jn > UINT32_MAX) return EG_ERANGE;
    if (e->details) { /* no longer raw: a jansson value */
        char *k = eg_error_strdup(e, key, kn);
        json_t *v = k ? json_loadb(json, jn, JSON_DECODE_ANY, NULL) : NULL;
        if (!v) return EG_ENOMEM;
        return json_object_set_new(e->details, k, v) == 0 ? EG_OK : EG_ENOMEM;
    }
    char *j = eg_error_strdup(e, json, jn);
    if (!j) return EG_ENOMEM;
    eg_raw_member_t *m = raw_find(e, key, kn);
    if (m) {
        m->json = j;
        m->jsonlen = (uint32_t)jn;
        return EG_OK;
    }
    if (e->nraw == e->capraw) { /* in the arena: freed with the error, no malloc for a few */
        size_t ncap = e->capraw ? e->capraw * 2 : 4;
        eg_raw_member_t *p = arena_alloc(e, ncap * sizeof(*p));
        if (!p) return EG_ENOMEM;
        if (e->nraw) memcpy(p, e->raw, e->nraw * sizeof(*p));
        e->raw = p;
        e->capraw = ncap;
    }
    char *k = eg_error_strdup(e, key, kn);
    if (!k) return EG_ENOMEM;
    e->raw[e->nraw++] = (eg_raw_member_t){k, j, (uint32_t)kn, (uint32_t)jn};
    return EG_OK;
}

int eg_error_del_detail(eg_error_t *e, const char *key)
{
    size_t kn = strlen(key);
    eg_raw_member_t *m = raw_find(e, key, kn);
    if (m) {
        memmove(m, m + 1, (size_t)(e->raw + e->nraw - (m + 1)) * sizeof(*m));
        e->nraw--;
        return 1;
    }
    return e->details && json_object_del(e->details, key) == 0;
}

void eg_error_clear_details(eg_error_t *e)
{
    e->nraw = 0;
    json_decref(e->details);
    e->details = NULL;
}

json_t *eg_error_meta(eg_error_t *e)
{
    if (!e->meta) e->meta = json_object();
    return e->meta;
}

int eg_error_set_detail(eg_error_t *e, const char *key, json_t *v)
{
    if (!e->details && v) { /* raw until someone needs an object: the value as JSON text */
        char small[512];
        eg_jsonw_t w = {small, sizeof(small), 0};
        eg_jsonw_value(&w, v);
        size_t n = eg_jsonw_finish(&w);
        if (n < sizeof(small)) {
            json_decref(v);
            return eg_error_keep_detail_raw(e, key, strlen(key), small, n);
        }
    }
    json_t *d = eg_error_details(e);
    if (!d || !v) {
        json_decref(v);
        return EG_ENOMEM;
    }
    return json_object_set_new(d, key, v) == 0 ? EG_OK : EG_ENOMEM;
}

eg_error_t *eg_error_clone(const eg_error_t *src)
{
    eg_error_t *e = eg_error_new();
    if (!e) return NULL;
    e->status = src->status;
    e->retry_after = src->retry_after;
    for (int i = 0; i < EG_S__COUNT; i++)
        if (src->s[i] && eg_error_set(e, (eg_str_t)i, src->s[i]) != EG_OK) goto fail;
    for (size_t k = 0; k < src->nfields; k++) {
        const eg_field_error_t *sf = &src->fields[k];
        eg_field_error_t *f = eg_error_add_field(e);
        if (!f) goto fail;
        for (int i = 0; i < EG_F__COUNT; i++)
            if (sf->s[i] && eg_field_set(e, f, (eg_fstr_t)i, sf->s[i]) != EG_OK) goto fail;
        if (sf->value && !(f->value = json_deep_copy(sf->value))) goto fail;
        if (sf->extra && !(f->extra = json_deep_copy(sf->extra))) goto fail;
    }
    if (src->details && !(e->details = json_deep_copy(src->details))) goto fail;
    for (size_t i = 0; i < src->nraw; i++)
        if (eg_error_keep_detail_raw(e, src->raw[i].key, src->raw[i].keylen, src->raw[i].json,
                                     src->raw[i].jsonlen) != EG_OK)
            goto fail;
    if (src->meta && !(e->meta = json_deep_copy(src->meta))) goto fail;
    return e;
fail:
    eg_error_free(e);
    return NULL;
}

int eg_error_set_time(eg_error_t *e, long long unix_seconds)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&t, &tm)) return EG_ERANGE;
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (n == 0) return EG_ERANGE;
    return eg_error_setn(e, EG_S_TIMESTAMP, buf, n);
}

const char *eg_reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 511: return "Network Authentication Required";
    default: return "Unknown Status";
    }
}

const char *eg_strerror(int code)
{
    switch (code) {
    case EG_OK: return "success";
    case EG_ENOMEM: return "out of memory";
    case EG_EINVAL: return "invalid argument";
    case EG_EPARSE: return "parse error";
    case EG_ENOENT: return "not found";
    case EG_EIO: return "input/output error";
    case EG_ERANGE: return "out of range";
    case EG_EAGAIN: return "incomplete input";
    case EG_ETOOBIG: return "limit exceeded";
    default: return "unknown error";
    }
}

const char *eg_version(void)
{
    return EG_VERSION;
}
