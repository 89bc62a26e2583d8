/* fuzz_cors.c - any Origin, Access-Control-Request-Method and
 * Access-Control-Request-Headers bytes against four policies, one of them
 * built from the fuzzed origin as a configured value.
 * Input: byte 0 flags (bit 0/1/2: origin/method/headers absent; bits 3-6
 * methods of the built policy; bit 7 its credentials), bytes 1-2 the origin
 * length (big-endian), byte 3 the method length, then origin, method and
 * headers (the rest). Each field is an exact-size heap copy, so ASan sees
 * any read past it.
 * Invariants checked (abort() on violation):
 *  - both writers succeed with exactly eg_cors_headers_max bytes, and the
 *    output is NUL-terminated with *outlen == strlen;
 *  - the output is a run of "Name: value\r\n" lines: no CR or LF but as a
 *    line end, names from the CORS set, each at most once, values of
 *    visible ASCII and inner spaces only;
 *  - Access-Control-Allow-Origin is "*" or exactly the Origin bytes; it is
 *    there only when eg_cors_origin_allowed says so (or "*" to an absent
 *    Origin); never "*" with Allow-Credentials; any other value comes with
 *    "Vary: Origin"; an Origin with a control, space or non-ASCII byte is
 *    never echoed;
 *  - preflight: not a preflight exactly when Origin or the method is
 *    absent; denied writes nothing and says why; allowed names the asked
 *    method in Access-Control-Allow-Methods;
 *  - a configured exact origin that the builder accepts is allowed when it
 *    comes back as a request's Origin; a refused one says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/cors.h"

static void check(int ok)
{
    if (!ok) abort();
}

static char *dup_exact(const uint8_t *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    check(d != NULL);
    memcpy(d, p, n);
    return d;
}

static const char *const names[] = {
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Expose-Headers",
    "Vary",
};
enum { N_ORIGIN, N_CRED, N_METHODS, N_HEADERS, N_MAXAGE, N_EXPOSE, N_VARY, N_COUNT };

typedef struct {
    const char *val[N_COUNT];
    size_t len[N_COUNT];
} lines_t;

/* Splits out[0..n) into lines; aborts on anything that is not a header line. */
static void parse(const char *out, size_t n, lines_t *l)
{
    memset(l, 0, sizeof(*l));
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && out[e] != '\r' && out[e] != '\n')
            e++;
        check(e + 1 < n && out[e] == '\r' && out[e + 1] == '\n');
        const char *colon = memchr(out + i, ':', e - i);
        check(colon != NULL);
        size_t nl = (size_t)(colon - (out + i));
        int k = -1;
        for (int j = 0; j < N_COUNT; j++)
            if (strlen(names[j]) == nl && memcmp(names[j], out + i, nl) == 0) k = j;
        check(k >= 0 && l->val[k] == NULL);
        check(colon + 2 <= out + e && colon[1] == ' ');
        const char *v = colon + 2;
        size_t vl = (size_t)(out + e - v);
        check(vl > 0 && v[0] != ' ' && v[vl - 1] != ' ');
        for (size_t j = 0; j < vl; j++)
            check((unsigned char)v[j] >= 0x20 && (unsigned char)v[j] < 0x7f);
        l->val[k] = v;
        l->len[k] = vl;
        i = e + 2;
    }
    check(i == n);
}

static int is_val(const lines_t *l, int k, const char *s)
{
    return l->val[k] && l->len[k] == strlen(s) && memcmp(l->val[k], s, l->len[k]) == 0;
}

static int clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
    return 1;
}

/* the Allow-Origin line against the Origin and the policy */
static void check_origin_line(const eg_cors_policy_t *p, const lines_t *l, const char *o, size_t ol)
{
    int allowed = eg_cors_origin_allowed(p, o, ol);
    if (!l->val[N_ORIGIN]) {
        check(!allowed);
        check(is_val(l, N_VARY, "Origin"));
        check(!l->val[N_CRED] && !l->val[N_EXPOSE] && !l->val[N_METHODS]);
        return;
    }
    if (is_val(l, N_ORIGIN, "*")) {
        check(allowed || !o);
        check(!l->val[N_CRED] && !l->val[N_VARY]);
        return;
    }
    check(o && allowed && clean(o, ol));
    check(l->len[N_ORIGIN] == ol && memcmp(l->val[N_ORIGIN], o, ol) == 0);
    check(is_val(l, N_VARY, "Origin"));
}

static void run(const eg_cors_policy_t *p, const char *o, size_t ol, const char *m, size_t ml,
                const char *h, size_t hl)
{
    size_t max = eg_cors_headers_max(p);
    char *out = malloc(max);
    check(out != NULL);
    size_t len = (size_t)-1;
    lines_t l;

    check(eg_cors_response_headers(p, o, ol, out, max, &len) == EG_OK);
    check(len < max && out[len] == '\0' && strlen(out) == len);
    parse(out, len, &l);
    check(!l.val[N_METHODS] && !l.val[N_HEADERS] && !l.val[N_MAXAGE]);
    check_origin_line(p, &l, o, ol);
    if (l.val[N_ORIGIN]) check(l.val[N_EXPOSE] != NULL);

    eg_cors_verdict_t v = (eg_cors_verdict_t)99;
    const char *why = "unset";
    len = (size_t)-1;
    check(eg_cors_preflight(p, o, ol, m, ml, h, hl, out, max, &len, &v, &why) == EG_OK);
    check(len < max && out[len] == '\0' && strlen(out) == len);
    if (!o || !m) {
        check(v == EG_CORS_NOT_PREFLIGHT && len == 0 && why == NULL);
    } else if (v == EG_CORS_DENIED) {
        check(len == 0 && why != NULL && why[0] != '\0');
    } else {
        check(v == EG_CORS_ALLOWED && why == NULL);
        parse(out, len, &l);
        check(l.val[N_ORIGIN] != NULL && l.val[N_METHODS] != NULL && !l.val[N_EXPOSE]);
        check_origin_line(p, &l, o, ol);
        /* the asked method is one of the listed ones */
        int found = 0;
        for (size_t i = 0; i + ml <= l.len[N_METHODS]; i++)
            if ((i == 0 || l.val[N_METHODS][i - 1] == ' ') &&
                memcmp(l.val[N_METHODS] + i, m, ml) == 0 &&
                (i + ml == l.len[N_METHODS] || l.val[N_METHODS][i + ml] == ','))
                found = 1;
        check(ml > 0 && found);
    }
    free(out);
}

static eg_cors_policy_t *fixed[3];

static eg_cors_policy_t *mk(const char *const *o, size_t n, const char *const *h, size_t nh,
                            int cred, long max_age)
{
    eg_cors_spec_t s;
    eg_cors_spec_init(&s);
    s.origins = o;
    s.n_origins = n;
    s.headers = h;
    s.n_headers = nh;
    s.credentials = cred;
    s.max_age = max_age;
    eg_cors_policy_t *p = NULL;
    check(eg_cors_policy_new(&s, &p, NULL, 0) == EG_OK);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fixed[0]) { /* built once, kept for the whole run */
        static const char *const o0[] = {"https://app.example.com", "http://localhost:3000",
                                         "null"};
        static const char *const o1[] = {"*"};
        static const char *const o2[] = {"https://*.example.com", "http://[::1]:8080"};
        static const char *const any[] = {"*"};
        fixed[0] = mk(o0, 3, NULL, 0, 0, 600);
        fixed[1] = mk(o1, 1, any, 1, 0, 0);
        fixed[2] = mk(o2, 2, any, 1, 1, -1);
    }
    if (size < 4) return 0;
    uint8_t flags = data[0];
    size_t ol = ((size_t)data[1] << 8 | data[2]), ml = data[3];
    data += 4;
    size -= 4;
    if (ol > size) ol = size;
    if (ml > size - ol) ml = size - ol;
    size_t hl = size - ol - ml;
    char *o = dup_exact(data, ol), *m = dup_exact(data + ol, ml),
         *h = dup_exact(data + ol + ml, hl);
    const char *po = flags & 1 ? NULL : o, *pm = flags & 2 ? NULL : m, *ph = flags & 4 ? NULL : h;

    for (int i = 0; i < 3; i++)
        run(fixed[i], po, ol, pm, ml, ph, hl);

    /* the origin bytes as a configured origin */
    if (!memchr(o, '\0', ol)) {
        char *cfg = malloc(ol + 1);
        check(cfg != NULL);
        memcpy(cfg, o, ol);
        cfg[ol] = '\0';
        const char *co[] = {cfg};
        eg_cors_spec_t s;
        eg_cors_spec_init(&s);
        s.origins = co;
        s.n_origins = 1;
        s.methods = (unsigned)((flags >> 3) & 0xF) << 2; /* POST PUT PATCH DELETE */
        s.credentials = flags >> 7;
        char err[160];
        err[0] = '\0';
        eg_cors_policy_t *p = NULL;
        int rc = eg_cors_policy_new(&s, &p, err, sizeof(err));
        check(rc == EG_OK || rc == EG_EINVAL);
        if (rc == EG_EINVAL) {
            check(p == NULL && err[0] != '\0' && strlen(err) < sizeof(err));
            for (size_t i = 0; err[i]; i++)
                check((unsigned char)err[i] >= 0x20 && err[i] != 0x7f);
        } else {
            if (strcmp(cfg, "*") != 0 && !memchr(cfg, '*', ol))
                check(eg_cors_origin_allowed(p, cfg, ol));
            run(p, po, ol, pm, ml, ph, hl);
            eg_cors_policy_free(p);
        }
        free(cfg);
    }
    free(o);
    free(m);
    free(h);
    return 0;
}
