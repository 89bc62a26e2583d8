/* retry.c - the retry policy (see retry.h). */
#include "errgate/retry.h"

#include <string.h>
#include <strings.h>

#include "civil.h"

void eg_retry_policy_default(eg_retry_policy_t *p)
{
    static const int statuses[] = {429, 500, 502, 503, 504};
    /* the seeds' quota errors: typed's QUOTA_EXCEEDED is "stop" in its own
     * handling examples, CREDITS_DEPLETED asks to purchase credits */
    static const char *const no_wait[] = {"quota_exceeded", "credits_depleted", NULL};
    memset(p, 0, sizeof(*p));
    p->max_attempts = 3;
    p->base_ms = 1000;
    p->cap_ms = 30000;
    p->retry_after_max_ms = 120000;
    memcpy(p->statuses, statuses, sizeof(statuses));
    p->nstatuses = sizeof(statuses) / sizeof(statuses[0]);
    p->budget_retry_cost = 5;
    p->budget_timeout_cost = 10;
    p->no_wait_codes = no_wait;
}

void eg_retry_budget_init(eg_retry_budget_t *b, unsigned capacity)
{
    b->capacity = capacity ? capacity : 500;
    b->tokens = b->capacity;
}

void eg_retry_budget_success(eg_retry_budget_t *b)
{
    if (b->tokens < b->capacity) b->tokens++;
}

static int digits(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 18) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int month_of(const char *m)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (memcmp(names + 3 * i, m, 3) == 0) return i;
    return -1;
}

static int num(const char *s, size_t n, int *out)
{
    uint64_t v;
    if (digits(s, n, &v) != 0) return -1;
    *out = (int)v;
    return 0;
}

static int hms(const char *s, int *h, int *mi, int *se)
{
    if (s[2] != ':' || s[5] != ':') return -1;
    if (num(s, 2, h) || num(s + 3, 2, mi) || num(s + 6, 2, se)) return -1;
    return *h < 24 && *mi < 60 && *se < 61 ? 0 : -1;
}

int eg_http_date_parse(const char *s, size_t n, int64_t *out)
{
    int d, m, y, h, mi, se;
    char buf[64];
    if (n >= sizeof(buf)) return EG_EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    const char *comma = memchr(buf, ',', n);
    if (n == 29 && comma == buf + 3) {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (buf[4] != ' ' || buf[7] != ' ' || buf[11] != ' ' || buf[16] != ' ' ||
            strcmp(buf + 25, " GMT") != 0 || num(buf + 5, 2, &d) || (m = month_of(buf + 8)) < 0 ||
            num(buf + 12, 4, &y) || hms(buf + 17, &h, &mi, &se))
            return EG_EINVAL;
    } else if (comma && comma > buf + 5) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        const char *p = comma + 1;
        if (strlen(p) != 23 || p[0] != ' ' || p[3] != '-' || p[7] != '-' || p[10] != ' ' ||
            strcmp(p + 19, " GMT") != 0 || num(p + 1, 2, &d) || (m = month_of(p + 4)) < 0 ||
            num(p + 8, 2, &y) || hms(p + 11, &h, &mi, &se))
            return EG_EINVAL;
        y += y < 70 ? 2000 : 1900; /* RFC 9110: a two-digit year more than 50 years ahead is past */
    } else if (n == 24) {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        if (buf[3] != ' ' || buf[7] != ' ' || buf[10] != ' ' || buf[19] != ' ' ||
            (m = month_of(buf + 4)) < 0 || hms(buf + 11, &h, &mi, &se) || num(buf + 20, 4, &y))
            return EG_EINVAL;
        if (buf[8] == ' ') {
            if (num(buf + 9, 1, &d)) return EG_EINVAL;
        } else if (num(buf + 8, 2, &d)) {
            return EG_EINVAL;
        }
    } else {
        return EG_EINVAL;
    }
    if (d < 1 || d > 31) return EG_EINVAL;
    *out = eg__days_from_civil(y, m + 1, d) * 86400 + h * 3600 + mi * 60 + se;
    return EG_OK;
}

int eg_retry_after_parse(const char *s, size_t n, uint64_t now_unix_ms, uint64_t *delay_ms)
{
    while (n && (s[0] == ' ' || s[0] == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    uint64_t secs;
    if (digits(s, n, &secs) == 0) {
        *delay_ms = secs * 1000;
        return EG_OK;
    }
    int64_t when;
    if (eg_http_date_parse(s, n, &when) != EG_OK) return EG_EINVAL;
    int64_t ms = when * 1000 - (int64_t)now_unix_ms;
    *delay_ms = ms > 0 ? (uint64_t)ms : 0;
    return EG_OK;
}

static eg_retry_decision_t stop(const char *why)
{
    eg_retry_decision_t d = {EG_RETRY_STOP, 0, why};
    return d;
}

static int code_is(const eg_error_t *e, const char *code)
{
    return e && e->s[EG_S_CODE] && strcmp(e->s[EG_S_CODE], code) == 0;
}

/* A 429 whose code is one of the policy's no_wait_codes: retrying later
 * meets the same empty quota or balance, so without a wait named by the
 * server the answer is final. */
static int waiting_will_not_help(const eg_retry_policy_t *p, const eg_error_t *e)
{
    if (!p->no_wait_codes || !e || !e->s[EG_S_CODE]) return 0;
    for (const char *const *c = p->no_wait_codes; *c; c++)
        if (strcasecmp(*c, e->s[EG_S_CODE]) == 0) return 1;
    return 0;
}

eg_retry_decision_t eg_retry_decide(const eg_retry_policy_t *p, eg_retry_budget_t *budget,
                                    const eg_retry_input_t *in)
{
    int st = in->status;
    int retryable =
        st == 0 || st == 408 || (st == 409 && code_is(in->error, "idempotency_key_in_use"));
    for (size_t i = 0; i < p->nstatuses && !retryable; i++)
        retryable = p->statuses[i] == st;
    if (st == 401 && (code_is(in->error, "invalid_token") || code_is(in->error, "expired_token")))
        return in->attempt < p->max_attempts
                   ? (eg_retry_decision_t){EG_RETRY_REFRESH, 0, "credentials expired: refresh"}
                   : stop("attempts exhausted");
    if (!retryable)
        return stop(st >= 400 && st < 500 ? "client error: fix the request" : "not retryable");
    uint64_t named;
    if (st == 429 && waiting_will_not_help(p, in->error) && !(in->error->retry_after >= 0) &&
        !(in->retry_after && eg_retry_after_parse(in->retry_after, strlen(in->retry_after),
                                                  in->now_unix_ms, &named) == EG_OK))
        return stop("waiting will not help: the quota or the credits are used up");
    if (in->attempt >= p->max_attempts) return stop("attempts exhausted");
    const char *m = in->method ? in->method : "GET";
    int idempotent = strcasecmp(m, "POST") != 0 && strcasecmp(m, "PATCH") != 0;
    if (!idempotent && !in->has_idempotency_key)
        return stop("not idempotent and no Idempotency-Key");
    uint64_t delay = 0, v;
    const char *why = NULL; /* what set the delay, when the server did */
    if (in->retry_after && eg_retry_after_parse(in->retry_after, strlen(in->retry_after),
                                                in->now_unix_ms, &delay) == EG_OK) {
        why = "Retry-After";
    } else if (in->error && in->error->retry_after >= 0) {
        delay = (uint64_t)in->error->retry_after * 1000;
        why = "retry_after in the body";
    } else if (st == 429 && in->ratelimit_reset &&
               digits(in->ratelimit_reset, strlen(in->ratelimit_reset), &v) == 0) {
        /* over 10^8 it is a Unix time (after 1973), else seconds from now: the seeds differ */
        uint64_t now = in->now_unix_ms / 1000;
        delay = v > 100000000ull ? (v > now ? (v - now) * 1000 : 0) : v * 1000;
        why = "X-RateLimit-Reset";
    }
    if (why && delay > p->retry_after_max_ms)
        return stop("the server asks to wait longer than retry_after_max");
    if (!why) {
        /* full jitter: random(0, min(cap, base * 2^(attempt-1))) */
        uint64_t ceil = p->base_ms;
        for (int i = 1; i < in->attempt && ceil < p->cap_ms; i++)
            ceil *= 2;
        if (ceil > p->cap_ms) ceil = p->cap_ms;
        delay = in->random % (ceil + 1);
        why = "backoff";
    }
    if (p->deadline_ms && in->elapsed_ms + delay >= p->deadline_ms) return stop("deadline reached");
    unsigned cost = in->timed_out ? p->budget_timeout_cost : p->budget_retry_cost;
    if (budget) {
        if (budget->tokens < cost) return stop("retry budget exhausted");
        budget->tokens -= cost;
    }
    eg_retry_decision_t d = {EG_RETRY_WAIT, delay, why};
    return d;
}
