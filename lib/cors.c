/* cors.c - CORS policies and their header lines (see cors.h).
 *
 * Everything that does not depend on the request is rendered once when the
 * policy is built: the Allow-Methods, Allow-Headers, Max-Age, Expose-Headers
 * and Allow-Credentials lines are stored whole, so the request path is one
 * origin match (a parse of the Origin value into scheme, host and port, then
 * a compare with each listed origin: they are few) and a few memcpy. The
 * same strict parser reads the configured origins and the request's, so a
 * value that could not be configured is never echoed, and what is echoed
 * contains only [A-Za-z0-9+.:_[\]/-] bytes.
 */
#include "errgate/cors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEME_MAX 32

typedef struct {
    char *scheme; /* lowercase */
    size_t scheme_len;
    char *host; /* lowercase; for a wildcard, the part after "*." */
    size_t host_len;
    long port; /* -1: none, or the scheme's default */
    int wildcard;
} origin_t;

typedef struct {
    char *name;
    size_t len;
} name_t;

struct eg_cors_policy_s {
    origin_t *origins;
    size_t n_origins;
    int any_origin;  /* "*" listed */
    int allow_null;  /* "null" listed */
    int credentials; /* Access-Control-Allow-Credentials: true */
    unsigned methods;
    int any_header; /* "*": the request's list is echoed */
    name_t *headers;
    size_t n_headers;
    char *l_methods, *l_headers, *l_max_age, *l_expose; /* whole lines; NULL when not sent */
    size_t n_l_methods, n_l_headers, n_l_max_age, n_l_expose;
    size_t max_out;
};

static const char H_ORIGIN[] = "Access-Control-Allow-Origin: ";
static const char L_CREDENTIALS[] = "Access-Control-Allow-Credentials: true\r\n";
static const char H_HEADERS[] = "Access-Control-Allow-Headers: ";
static const char L_VARY[] = "Vary: Origin\r\n";
#define LIT_LEN(s) (sizeof(s) - 1)

/* ---- characters ---------------------------------------------------------- */

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 9110 tchar */
static int is_tchar(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token(const char *s, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i])) return 0;
    return 1;
}

/* a host byte of a registered name as browsers serialize it (after IDNA) */
static int is_host_char(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static int ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
    return 1;
}

/* ---- origins --------------------------------------------------------------- */

typedef struct {
    const char *scheme;
    size_t scheme_len;
    const char *host;
    size_t host_len;
    long port; /* -1: none or default */
    int wildcard;
} parts_t;

/* Splits a serialized origin scheme "://" host [ ":" port ] (RFC 6454 4).
 * `wild` accepts "*." as the whole first label (configuration only).
 * Returns NULL, or a static reason; the reasons are for configuration
 * errors, a request's Origin is only ever "not allowed". */
static const char *parse_origin(const char *s, size_t n, int wild, parts_t *o)
{
    size_t i = 0;
    memset(o, 0, sizeof(*o));
    o->port = -1;
    if (n == 0 || !is_alpha((unsigned char)s[0])) goto not_origin;
    while (i < n && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) ||
                     s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i > SCHEME_MAX || n - i < 3 || memcmp(s + i, "://", 3) != 0) goto not_origin;
    o->scheme = s;
    o->scheme_len = i;
    i += 3;

    size_t h = i;
    if (wild && n - i >= 2 && s[i] == '*' && s[i + 1] == '.') {
        o->wildcard = 1;
        h = i += 2;
    }
    if (i < n && s[i] == '[') { /* IPv6 literal */
        if (o->wildcard) return "a wildcard cannot stand for part of an IP address";
        i++;
        while (i < n && (is_hex((unsigned char)s[i]) || s[i] == ':' || s[i] == '.'))
            i++;
        if (i >= n || s[i] != ']' || i - h < 3) return "invalid IPv6 address";
        i++;
    } else {
        while (i < n && is_host_char((unsigned char)s[i]))
            i++;
    }
    o->host = s + h;
    o->host_len = i - h;
    if (o->host_len == 0) {
        if (i < n && s[i] == '*') goto bad_wildcard;
        return "no host";
    }
    if (i < n && s[i] == ':') {
        size_t p = ++i;
        long v = 0;
        while (i < n && is_digit((unsigned char)s[i]) && i - p < 6)
            v = v * 10 + (s[i++] - '0');
        if (i == p || i - p > 5 || v > 65535) return "the port must be a number from 0 to 65535";
        o->port = v;
    }
    if (i < n) {
        if (s[i] == '/') return "an origin has no path";
        if (s[i] == '@') return "an origin has no user name";
        if (s[i] == '*') goto bad_wildcard;
        return "invalid character in the host";
    }
    if (o->port >= 0) {
        int http = o->scheme_len == 4 && ieq(o->scheme, "http", 4);
        int https = o->scheme_len == 5 && ieq(o->scheme, "https", 5);
        int ws = o->scheme_len == 2 && ieq(o->scheme, "ws", 2);
        int wss = o->scheme_len == 3 && ieq(o->scheme, "wss", 3);
        if (((http || ws) && o->port == 80) || ((https || wss) && o->port == 443)) o->port = -1;
    }
    return NULL;
not_origin:
    return "not an origin: write scheme://host[:port]";
bad_wildcard:
    return "a wildcard is only allowed as the whole first label, as in https://*.example.com";
}

/* host (request, validated) under a wildcard's suffix: one or more
 * non-empty labels, then "." suffix */
static int wildcard_match(const char *host, size_t n, const char *suffix, size_t sl)
{
    if (n < sl + 2 || host[n - sl - 1] != '.' || !ieq(host + n - sl, suffix, sl)) return 0;
    size_t pl = n - sl - 1; /* the labels the '*' stands for */
    if (host[0] == '.' || host[0] == '[' || host[pl - 1] == '.') return 0;
    for (size_t i = 1; i < pl; i++)
        if (host[i] == '.' && host[i - 1] == '.') return 0;
    return 1;
}

enum { M_NONE = 0, M_ECHO, M_STAR };

/* How the policy answers this Origin (NULL: absent). */
static int classify(const eg_cors_policy_t *p, const char *origin, size_t len)
{
    if (!origin) return p->any_origin && !p->credentials ? M_STAR : M_NONE;
    if (len == 4 && memcmp(origin, "null", 4) == 0) return p->allow_null ? M_ECHO : M_NONE;
    if (len > EG_CORS_ORIGIN_MAX) return M_NONE;
    parts_t o;
    if (parse_origin(origin, len, 0, &o) != NULL) return M_NONE;
    if (p->any_origin) return p->credentials ? M_ECHO : M_STAR;
    for (size_t i = 0; i < p->n_origins; i++) {
        const origin_t *c = &p->origins[i];
        if (c->scheme_len != o.scheme_len || !ieq(c->scheme, o.scheme, o.scheme_len)) continue;
        if (c->port != o.port) continue;
        if (c->wildcard) {
            if (wildcard_match(o.host, o.host_len, c->host, c->host_len)) return M_ECHO;
        } else if (c->host_len == o.host_len && ieq(c->host, o.host, o.host_len)) {
            return M_ECHO;
        }
    }
    return M_NONE;
}

int eg_cors_origin_allowed(const eg_cors_policy_t *p, const char *origin, size_t len)
{
    return origin && classify(p, origin, len) != M_NONE;
}

/* ---- checking a spec ------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return EG_EINVAL;
}

/* A configured value as quoted in a message: at most QUOTE_MAX bytes of it,
 * control bytes as '?', so an error stays one printable line. */
#define QUOTE_MAX 80
typedef struct {
    char s[QUOTE_MAX + 1];
} quote_t;

static quote_t quote(const char *v, size_t n)
{
    quote_t q;
    size_t i = 0;
    for (; v && i < n && i < QUOTE_MAX && v[i]; i++)
        q.s[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
    q.s[i] = '\0';
    return q;
}
#define Q(v) quote((v), (size_t)-1).s

static int is_star(const char *s)
{
    return s && strcmp(s, "*") == 0;
}

static int check_origin(const char *s, size_t idx, char *err, size_t errlen)
{
    if (!s || !*s) return fail(err, errlen, "origins[%zu]: empty", idx);
    if (is_star(s) || strcmp(s, "null") == 0) return EG_OK;
    size_t n = strlen(s);
    if (n > EG_CORS_ORIGIN_MAX)
        return fail(err, errlen, "origins[%zu]: longer than %d bytes", idx, EG_CORS_ORIGIN_MAX);
    parts_t o;
    const char *why = parse_origin(s, n, 1, &o);
    if (why && strcmp(why, "an origin has no path") == 0) {
        size_t keep = (size_t)(strchr(s + o.scheme_len + 3, '/') - s);
        return fail(err, errlen, "origins[%zu] '%s': an origin has no path; write '%s'", idx, Q(s),
                    quote(s, keep).s);
    }
    if (why) return fail(err, errlen, "origins[%zu] '%s': %s", idx, Q(s), why);
    if (o.wildcard && !memchr(o.host, '.', o.host_len))
        return fail(err, errlen,
                    "origins[%zu] '%s': a wildcard over a top-level domain allows every site "
                    "under it; name your domain, as in https://*.example.com",
                    idx, Q(s));
    if (o.wildcard && (o.host[0] == '.' || o.host[o.host_len - 1] == '.'))
        return fail(err, errlen, "origins[%zu] '%s': empty label in the host", idx, Q(s));
    return EG_OK;
}

static int check_names(const char *key, const char *const *v, size_t n, char *err, size_t errlen)
{
    if (n && !v) return fail(err, errlen, "%s: missing list", key);
    for (size_t i = 0; i < n; i++) {
        if (is_star(v[i])) continue;
        size_t l = v[i] ? strlen(v[i]) : 0;
        if (l > EG_CORS_NAME_MAX)
            return fail(err, errlen, "%s[%zu]: longer than %d bytes", key, i, EG_CORS_NAME_MAX);
        if (!is_token(v[i], l))
            return fail(err, errlen, "%s[%zu] '%s': not a header name", key, i, Q(v[i]));
    }
    return EG_OK;
}

int eg_cors_spec_check(const eg_cors_spec_t *s, char *err, size_t errlen)
{
    if (!s) return fail(err, errlen, "no cors settings");
    if (s->n_origins == 0 || !s->origins)
        return fail(err, errlen,
                    "origins: list the origins allowed, as in [\"https://app.example.com\"], "
                    "or \"*\" for any");
    int any = 0;
    for (size_t i = 0; i < s->n_origins; i++) {
        int rc = check_origin(s->origins[i], i, err, errlen);
        if (rc) return rc;
        any |= is_star(s->origins[i]);
    }
    if (any && s->credentials)
        return fail(err, errlen,
                    "credentials: true cannot go with origins \"*\": browsers refuse "
                    "Access-Control-Allow-Origin: * on credentialed requests, and echoing every "
                    "origin would let any site read your users' responses; list the origins");
    const unsigned ok = EG_CORS_METHODS_DEFAULT | EG_M_OPTIONS;
    if (s->methods & ~ok)
        return fail(err, errlen,
                    "methods: only GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS (browsers "
                    "never send TRACE or CONNECT)");
    int rc = check_names("headers", s->headers, s->n_headers, err, errlen);
    if (!rc) rc = check_names("expose", s->expose, s->n_expose, err, errlen);
    if (rc) return rc;
    for (size_t i = 0; i < s->n_expose; i++)
        if (is_star(s->expose[i]) && s->credentials)
            return fail(err, errlen,
                        "expose: \"*\" means a literal header named '*' on credentialed "
                        "requests; list the headers to expose");
    if (s->max_age < -1 || s->max_age > EG_CORS_MAX_AGE_LIMIT)
        return fail(err, errlen,
                    "max_age: from 0 to %d seconds (browsers cap it: Chromium at 7200, "
                    "Firefox at 86400)",
                    EG_CORS_MAX_AGE_LIMIT);
    return EG_OK;
}

void eg_cors_spec_init(eg_cors_spec_t *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->max_age = EG_CORS_MAX_AGE_DEFAULT;
}

/* ---- building ---------------------------------------------------------------- */

static char *lowdup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)lower((unsigned char)s[i]);
    d[n] = '\0';
    return d;
}

/* "Name: a, b, c\r\n" from a list of names; *len set; NULL on ENOMEM */
static char *list_line(const char *name, const char *const *v, size_t n, size_t *len)
{
    size_t cap = strlen(name) + 2 + 3;
    for (size_t i = 0; i < n; i++)
        cap += strlen(v[i]) + 2;
    char *l = malloc(cap);
    if (!l) return NULL;
    size_t at = (size_t)snprintf(l, cap, "%s: ", name);
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(l + at, cap - at, "%s%s", i ? ", " : "", v[i]);
    at += (size_t)snprintf(l + at, cap - at, "\r\n");
    *len = at;
    return l;
}

static int in_names(const char *const *v, size_t n, const char *s)
{
    size_t l = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) == l && ieq(v[i], s, l)) return 1;
    return 0;
}

int eg_cors_policy_new(const eg_cors_spec_t *s, eg_cors_policy_t **out, char *err, size_t errlen)
{
    static const char *const def_headers[] = {EG_CORS_HEADERS_DEFAULT};
    static const char *const def_expose[] = {EG_CORS_EXPOSE_DEFAULT};
    const size_t n_def_expose = sizeof(def_expose) / sizeof(def_expose[0]);
    const char **expose = NULL;
    int rc = eg_cors_spec_check(s, err, errlen);
    if (rc) return rc;
    rc = EG_ENOMEM;
    eg_cors_policy_t *p = calloc(1, sizeof(*p));
    if (!p) goto fail_nomem;
    p->credentials = s->credentials ? 1 : 0;
    p->methods = s->methods ? s->methods : EG_CORS_METHODS_DEFAULT;

    /* origins */
    if (!(p->origins = calloc(s->n_origins, sizeof(*p->origins)))) goto fail_nomem;
    for (size_t i = 0; i < s->n_origins; i++) {
        const char *o = s->origins[i];
        if (is_star(o)) {
            p->any_origin = 1;
            continue;
        }
        if (strcmp(o, "null") == 0) {
            p->allow_null = 1;
            continue;
        }
        parts_t pt;
        (void)parse_origin(o, strlen(o), 1, &pt); /* checked above */
        origin_t *c = &p->origins[p->n_origins++];
        c->port = pt.port;
        c->wildcard = pt.wildcard;
        c->scheme_len = pt.scheme_len;
        c->host_len = pt.host_len;
        if (!(c->scheme = lowdup(pt.scheme, pt.scheme_len)) ||
            !(c->host = lowdup(pt.host, pt.host_len)))
            goto fail_nomem;
    }

    /* methods */
    char mbuf[96], *ml;
    eg_methods_format(p->methods, mbuf, sizeof(mbuf));
    const char *mv[] = {mbuf};
    if (!(ml = list_line("Access-Control-Allow-Methods", mv, 1, &p->n_l_methods))) goto fail_nomem;
    p->l_methods = ml;

    /* request headers */
    const char *const *hv = s->n_headers ? s->headers : def_headers;
    size_t hn = s->n_headers ? s->n_headers : sizeof(def_headers) / sizeof(def_headers[0]);
    for (size_t i = 0; i < hn; i++)
        p->any_header |= is_star(hv[i]);
    if (!p->any_header) {
        if (!(p->headers = calloc(hn, sizeof(*p->headers)))) goto fail_nomem;
        for (size_t i = 0; i < hn; i++) {
            p->headers[i].len = strlen(hv[i]);
            if (!(p->headers[i].name = lowdup(hv[i], p->headers[i].len))) goto fail_nomem;
            p->n_headers++;
        }
        if (!(p->l_headers = list_line("Access-Control-Allow-Headers", hv, hn, &p->n_l_headers)))
            goto fail_nomem;
    }

    /* exposed headers: the defaults, then the spec's, each name once */
    int expose_all = 0;
    for (size_t i = 0; i < s->n_expose; i++)
        expose_all |= is_star(s->expose[i]);
    if (expose_all) {
        const char *star[] = {"*"};
        if (!(p->l_expose = list_line("Access-Control-Expose-Headers", star, 1, &p->n_l_expose)))
            goto fail_nomem;
    } else {
        size_t en = 0;
        if (!(expose = calloc(n_def_expose + s->n_expose, sizeof(*expose)))) goto fail_nomem;
        for (size_t i = 0; i < n_def_expose; i++)
            expose[en++] = def_expose[i];
        for (size_t i = 0; i < s->n_expose; i++)
            if (!in_names(expose, en, s->expose[i])) expose[en++] = s->expose[i];
        if (!(p->l_expose = list_line("Access-Control-Expose-Headers", expose, en, &p->n_l_expose)))
            goto fail_nomem;
    }

    if (s->max_age >= 0) {
        char v[24];
        snprintf(v, sizeof(v), "%ld", s->max_age);
        const char *av[] = {v};
        if (!(p->l_max_age = list_line("Access-Control-Max-Age", av, 1, &p->n_l_max_age)))
            goto fail_nomem;
    }

    /* the largest output: every line, the longest origin, the longest
     * echoed header list (tokens joined by ", ": at most twice the input) */
    size_t echo = LIT_LEN(H_HEADERS) + 2 * EG_CORS_REQUEST_HEADERS_MAX + 2;
    p->max_out = LIT_LEN(H_ORIGIN) + EG_CORS_ORIGIN_MAX + 2 + LIT_LEN(L_CREDENTIALS) +
                 p->n_l_methods + (p->n_l_headers > echo ? p->n_l_headers : echo) + p->n_l_max_age +
                 p->n_l_expose + LIT_LEN(L_VARY) + 1;
    free(expose);
    *out = p;
    return EG_OK;
fail_nomem:
    free(expose);
    eg_cors_policy_free(p);
    if (err && errlen) snprintf(err, errlen, "out of memory");
    return rc;
}

void eg_cors_policy_free(eg_cors_policy_t *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_origins; i++) {
        free(p->origins[i].scheme);
        free(p->origins[i].host);
    }
    free(p->origins);
    for (size_t i = 0; i < p->n_headers; i++)
        free(p->headers[i].name);
    free(p->headers);
    free(p->l_methods);
    free(p->l_headers);
    free(p->l_max_age);
    free(p->l_expose);
    free(p);
}

size_t eg_cors_headers_max(const eg_cors_policy_t *p)
{
    return p->max_out;
}

/* ---- writing ------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap, len;
} writer_t;

/* cap >= max_out is checked first, so this never truncates; the check is
 * kept so that a wrong bound shows as a short answer, not an overrun */
static void put(writer_t *w, const char *s, size_t n)
{
    if (n >= w->cap - w->len) return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void put_origin(writer_t *w, int m, const char *origin, size_t len)
{
    put(w, H_ORIGIN, LIT_LEN(H_ORIGIN));
    if (m == M_STAR)
        put(w, "*", 1);
    else
        put(w, origin, len);
    put(w, "\r\n", 2);
}

static int name_allowed(const eg_cors_policy_t *p, const char *t, size_t n)
{
    for (size_t i = 0; i < p->n_headers; i++)
        if (p->headers[i].len == n && ieq(p->headers[i].name, t, n)) return 1;
    return 0;
}

/* Walks an Access-Control-Request-Headers value (a #field-name list):
 * NULL when every name is a token the policy allows (and, with `w`, writes
 * them joined by ", "), or a static reason. */
static const char *request_headers(const eg_cors_policy_t *p, const char *v, size_t n, writer_t *w)
{
    if (n > EG_CORS_REQUEST_HEADERS_MAX) return "Access-Control-Request-Headers too long";
    size_t i = 0, k = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t b = i;
        while (i < n && is_tchar((unsigned char)v[i]))
            i++;
        size_t e = i;
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (i < n && v[i] != ',') return "invalid Access-Control-Request-Headers";
        if (e == b) continue;
        if (!p->any_header && !name_allowed(p, v + b, e - b)) return "header not allowed";
        if (w) {
            if (k++) put(w, ", ", 2);
            put(w, v + b, e - b);
        }
    }
    return NULL;
}

int eg_cors_preflight(const eg_cors_policy_t *p, const char *origin, size_t origin_len,
                      const char *method, size_t method_len, const char *headers,
                      size_t headers_len, char *out, size_t cap, size_t *outlen,
                      eg_cors_verdict_t *verdict, const char **reason)
{
    if (cap < p->max_out) return EG_ERANGE;
    writer_t w = {out, cap, 0};
    const char *why = NULL;
    eg_cors_verdict_t v = EG_CORS_DENIED;
    int m = M_NONE;
    out[0] = '\0';
    if (!origin || !method) {
        v = EG_CORS_NOT_PREFLIGHT;
        goto done;
    }
    if ((m = classify(p, origin, origin_len)) == M_NONE) {
        why = "origin not allowed";
        goto done;
    }
    if (!is_token(method, method_len)) {
        why = "invalid Access-Control-Request-Method";
        goto done;
    }
    /* case-sensitive, as browsers compare it: "patch" is not PATCH */
    unsigned bit = eg_method_bit(method, method_len);
    if (!(bit & p->methods) || bit == EG_M_OTHER) {
        why = "method not allowed";
        goto done;
    }
    if (headers && (why = request_headers(p, headers, headers_len, NULL)) != NULL) goto done;

    v = EG_CORS_ALLOWED;
    put_origin(&w, m, origin, origin_len);
    if (p->credentials) put(&w, L_CREDENTIALS, LIT_LEN(L_CREDENTIALS));
    put(&w, p->l_methods, p->n_l_methods);
    if (!p->any_header) {
        put(&w, p->l_headers, p->n_l_headers);
    } else if (headers) {
        size_t mark = w.len;
        put(&w, H_HEADERS, LIT_LEN(H_HEADERS));
        size_t first = w.len;
        (void)request_headers(p, headers, headers_len, &w);
        if (w.len == first)
            w.len = mark; /* nothing asked for: no line */
        else
            put(&w, "\r\n", 2);
    }
    if (p->l_max_age) put(&w, p->l_max_age, p->n_l_max_age);
    if (m != M_STAR) put(&w, L_VARY, LIT_LEN(L_VARY));
done:
    out[w.len] = '\0';
    *outlen = w.len;
    *verdict = v;
    if (reason) *reason = why;
    return EG_OK;
}

int eg_cors_response_headers(const eg_cors_policy_t *p, const char *origin, size_t origin_len,
                             char *out, size_t cap, size_t *outlen)
{
    if (cap < p->max_out) return EG_ERANGE;
    writer_t w = {out, cap, 0};
    int m = classify(p, origin, origin_len);
    if (m != M_NONE) {
        put_origin(&w, m, origin, origin_len);
        if (p->credentials) put(&w, L_CREDENTIALS, LIT_LEN(L_CREDENTIALS));
        put(&w, p->l_expose, p->n_l_expose);
    }
    if (m != M_STAR) put(&w, L_VARY, LIT_LEN(L_VARY));
    out[w.len] = '\0';
    *outlen = w.len;
    return EG_OK;
}

int eg_cors_is_cors_header(const char *name, size_t len)
{
    return len > 15 && ieq(name, "access-control-", 15);
}
