/* client.c - the retrying HTTP client on libcurl (see client.h).
 *
 * One easy handle per call, reused across attempts (connection reuse). The
 * header list, and with it the Idempotency-Key, is built once before the
 * first attempt, so every retry carries the same key: that is what lets the
 * gateway answer a retry of a completed write with the stored response. Each
 * attempt collects the body and the few headers the policy and the summary
 * read; a failed one is parsed, judged by eg_retry_decide(), logged and slept
 * on. curl's global state is set up once per process (curl_global_init is
 * not thread-safe, so the CLI calls this from one thread).
 */
#include "errgate/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
    char retry_after[128];
    char ratelimit_reset[64];
    char request_id[256];
    char replayed[16]; /* Idempotent-Replayed */
} sink_t;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sink_t *s = ud;
    size_t k = size * n;
    if (s->len + k + 1 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16384;
        while (ncap < s->len + k + 1)
            ncap *= 2;
        char *q = realloc(s->buf, ncap);
        if (!q) {
            s->oom = 1;
            return 0;
        }
        s->buf = q;
        s->cap = ncap;
    }
    memcpy(s->buf + s->len, p, k);
    s->len += k;
    s->buf[s->len] = '\0';
    return k;
}

/* Keeps a header's value (trimmed) when its name matches. */
static void keep(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return;
    const char *v = line + nl + 1;
    size_t vl = n - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= cap) vl = cap - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    sink_t *s = ud;
    size_t k = size * n;
    if (k > 5 &&
        strncmp(p, "HTTP/", 5) == 0) { /* a new response (after 100 Continue): start over */
        s->retry_after[0] = s->ratelimit_reset[0] = s->request_id[0] = s->replayed[0] = '\0';
    }
    keep(p, k, "Retry-After", s->retry_after, sizeof(s->retry_after));
    keep(p, k, "X-RateLimit-Reset", s->ratelimit_reset, sizeof(s->ratelimit_reset));
    if (!s->ratelimit_reset[0])
        keep(p, k, "RateLimit-Reset", s->ratelimit_reset, sizeof(s->ratelimit_reset));
    char rl[256] = "";
    keep(p, k, "RateLimit", rl, sizeof(rl)); /* IETF draft: "name";r=0;t=30 */
    const char *t = strstr(rl, ";t=");
    if (t && !s->ratelimit_reset[0]) {
        size_t dn = strspn(t + 3, "0123456789");
        if (dn && dn < sizeof(s->ratelimit_reset)) {
            memcpy(s->ratelimit_reset, t + 3, dn);
            s->ratelimit_reset[dn] = '\0';
        }
    }
    keep(p, k, "X-Request-ID", s->request_id, sizeof(s->request_id));
    keep(p, k, "Idempotent-Replayed", s->replayed, sizeof(s->replayed));
    return k;
}

static uint64_t real_now(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void real_sleep(void *ctx, uint64_t ms)
{
    (void)ctx;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t real_random(void *ctx)
{
    (void)ctx;
    uint64_t v = 0;
    while (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
    }
    return v;
}

void eg_uuid4(const unsigned char rnd[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    memcpy(b, rnd, 16);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void eg_client_options_default(eg_client_options_t *o)
{
    memset(o, 0, sizeof(*o));
    eg_retry_policy_default(&o->policy);
}

void eg_client_response_free(eg_client_response_t *r)
{
    free(r->body);
    eg_error_free(r->error);
    r->body = NULL;
    r->error = NULL;
}

/* The reason a 422 for a reused key stops: the request must change, not wait. */
static const char mismatch_reason[] =
    "Idempotency-Key already used for a different request: a new request needs a new key";

/* A replay is announced as Stripe does ("true") or as a Structured Field
 * boolean ("?1"). */
static int replay_value(const char *v)
{
    return strcasecmp(v, "true") == 0 || strcmp(v, "?1") == 0;
}

/* 1..255 visible ASCII characters: what the gateway accepts as a bare token
 * or, with its quotes, as a Structured Field string; anything else could
 * split the head or be refused with invalid_idempotency_key. */
static int key_valid(const char *k)
{
    size_t n = strlen(k);
    if (n < 1 || n > 255) return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e) return 0;
    return 1;
}

/* Counts the caller's Idempotency-Key lines ("Name: value", or curl's "Name:"
 * that removes a header and "Name;" that sends it empty) and points *value at
 * what follows the separator of the first one. */
static int caller_keys(const char *const *h, const char **value)
{
    static const char name[] = "Idempotency-Key";
    size_t nl = sizeof(name) - 1;
    int n = 0;
    for (; h && *h; h++) {
        if (strncasecmp(*h, name, nl) != 0 || ((*h)[nl] != ':' && (*h)[nl] != ';')) continue;
        if (n++ == 0) *value = (*h)[nl] == ':' ? *h + nl + 1 : "";
    }
    return n;
}

/* Fills resp->idempotency_key with the key the attempts will carry and adds
 * its header line when the client supplies it: the caller's header is sent
 * as it is (never a second one beside it), else the option's key, else for
 * POST and PATCH a new UUIDv4 from OpenSSL's CSPRNG (122 random bits; not
 * from the injectable `random`, which a test or a caller may make
 * predictable, and a predictable key would replay another request's answer).
 * *has_key says whether a non-empty key goes out, which makes a write safe to
 * retry. Returns EG_EINVAL for two keys or an invalid option key. */
static int set_key(const eg_client_request_t *req, const eg_client_options_t *o, int write,
                   struct curl_slist **hdrs, eg_client_response_t *resp, int *has_key)
{
    const char *v = NULL;
    int n = caller_keys(req->headers, &v);
    *has_key = 0;
    if (n > 1 || (n == 1 && o->idempotency_key)) return EG_EINVAL;
    if (o->idempotency_key && !key_valid(o->idempotency_key)) return EG_EINVAL;
    if (n == 1) {
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (vl >= sizeof(resp->idempotency_key)) vl = sizeof(resp->idempotency_key) - 1;
        memcpy(resp->idempotency_key, v, vl);
        resp->idempotency_key[vl] = '\0';
        *has_key = vl > 0;
        return EG_OK;
    }
    if (!write && !o->idempotency_key) return EG_OK;
    if (o->idempotency_key) {
        snprintf(resp->idempotency_key, sizeof(resp->idempotency_key), "%s", o->idempotency_key);
    } else {
        unsigned char r[16];
        if (RAND_bytes(r, (int)sizeof(r)) != 1) return EG_EIO;
        eg_uuid4(r, resp->idempotency_key);
    }
    char line[sizeof(resp->idempotency_key) + 20];
    snprintf(line, sizeof(line), "Idempotency-Key: %s", resp->idempotency_key);
    struct curl_slist *t = curl_slist_append(*hdrs, line);
    if (!t) return EG_ENOMEM;
    *hdrs = t;
    *has_key = 1;
    return EG_OK;
}

int eg_client_request(const eg_client_request_t *req, const eg_client_options_t *o,
                      eg_client_response_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    if (!req || !req->url || !o) return EG_EINVAL;
    uint64_t (*now)(void *) = o->now_ms ? o->now_ms : real_now;
    void (*sleeper)(void *, uint64_t) = o->sleep_ms ? o->sleep_ms : real_sleep;
    uint64_t (*rnd)(void *) = o->random ? o->random : real_random;
    const char *method = req->method ? req->method : "GET";
    int rc = EG_OK, has_key = 0;
    eg_catalog_t *cat = NULL;
    eg_dialects_t *set = NULL;
    struct curl_slist *hdrs = NULL;
    CURL *h = curl_easy_init();
    sink_t sink;
    memset(&sink, 0, sizeof(sink));
    if (!h || eg_catalog_new_builtin(&cat) || eg_dialects_new_builtin(&set)) {
        rc = EG_ENOMEM;
        goto out;
    }
    for (const char *const *p = req->headers; p && *p; p++) {
        struct curl_slist *t = curl_slist_append(hdrs, *p);
        if (!t) {
            rc = EG_ENOMEM;
            goto out;
        }
        hdrs = t;
    }
    int write = strcasecmp(method, "POST") == 0 || strcasecmp(method, "PATCH") == 0;
    if ((rc = set_key(req, o, write, &hdrs, resp, &has_key)) != EG_OK) goto out;
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcasecmp(method, "HEAD") == 0) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (req->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (o->timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    uint64_t start = now(o->ctx);
    for (int attempt = 1;; attempt++) {
        sink.len = 0;
        if (sink.buf) sink.buf[0] = '\0';
        sink.retry_after[0] = sink.ratelimit_reset[0] = sink.request_id[0] = sink.replayed[0] =
            '\0';
        eg_error_free(resp->error);
        resp->error = NULL;
        resp->attempts = attempt;
        resp->transport_error[0] = '\0';
        CURLcode cc = curl_easy_perform(h);
        if (sink.oom) {
            rc = EG_ENOMEM;
            goto out;
        }
        long status = 0;
        resp->timed_out = cc == CURLE_OPERATION_TIMEDOUT;
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        else
            snprintf(resp->transport_error, sizeof(resp->transport_error), "%s",
                     curl_easy_strerror(cc));
        resp->status = (int)status;
        resp->replayed = cc == CURLE_OK && replay_value(sink.replayed);
        snprintf(resp->request_id, sizeof(resp->request_id), "%s", sink.request_id);
        if (cc == CURLE_OK && status < 400) {
            resp->stop_reason = NULL;
            if (o->budget) eg_retry_budget_success(o->budget);
            break;
        }
        if (cc == CURLE_OK && eg_parse_body(sink.buf ? sink.buf : "", sink.len, set, NULL, cat,
                                            (int)status, &resp->error, NULL) != EG_OK) {
            rc = EG_ENOMEM;
            goto out;
        }
        if (!resp->request_id[0] && resp->error && resp->error->s[EG_S_REQUEST_ID])
            snprintf(resp->request_id, sizeof(resp->request_id), "%s",
                     resp->error->s[EG_S_REQUEST_ID]);
        eg_retry_input_t in = {method,
                               (int)status,
                               resp->timed_out,
                               resp->error,
                               sink.retry_after[0] ? sink.retry_after : NULL,
                               sink.ratelimit_reset[0] ? sink.ratelimit_reset : NULL,
                               has_key,
                               attempt,
                               now(o->ctx),
                               now(o->ctx) - start,
                               rnd(o->ctx)};
        eg_retry_decision_t d = eg_retry_decide(&o->policy, o->budget, &in);
        if (status == 422 && resp->error && resp->error->s[EG_S_CODE] &&
            (strcmp(resp->error->s[EG_S_CODE], "idempotency_key_mismatch") == 0 ||
             strcmp(resp->error->s[EG_S_CODE], "idempotency_key_reused") == 0))
            d = (eg_retry_decision_t){EG_RETRY_STOP, 0, mismatch_reason};
        if (o->log) {
            eg_client_attempt_t a = {attempt,
                                     (int)status,
                                     resp->transport_error[0] ? resp->transport_error : NULL,
                                     resp->request_id[0] ? resp->request_id : NULL,
                                     resp->error ? resp->error->s[EG_S_CODE] : NULL,
                                     resp->error ? resp->error->s[EG_S_MESSAGE] : NULL,
                                     d};
            o->log(o->ctx, &a);
        }
        if (d.action == EG_RETRY_STOP || d.action == EG_RETRY_REFRESH) {
            /* refreshing credentials is the caller's business: report and stop */
            resp->stop_reason = d.reason;
            break;
        }
        sleeper(o->ctx, d.delay_ms);
    }
    resp->body = sink.buf ? sink.buf : calloc(1, 1);
    resp->body_len = sink.len;
    sink.buf = NULL;
    if (!resp->body) rc = EG_ENOMEM;
out:
    free(sink.buf);
    curl_slist_free_all(hdrs);
    if (h) curl_easy_cleanup(h);
    eg_dialects_free(set);
    eg_catalog_free(cat);
    if (rc != EG_OK) eg_client_response_free(resp);
    return rc;
}
