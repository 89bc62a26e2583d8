/* retry.h - when and how long to wait before retrying an HTTP request, as
 * the error pages advise: retryable statuses, exponential backoff with full
 * jitter, Retry-After (seconds or HTTP-date) first, rate-limit reset
 * headers, an overall deadline, a retry budget, and writes retried only
 * with an Idempotency-Key.
 *
 * Pure logic: no clock, no randomness, no I/O. The caller passes the time
 * and a random number in, so every decision is reproducible in tests. The
 * libcurl client (issue 7) is built on top of it.
 */
#ifndef ERRGATE_RETRY_H
#define ERRGATE_RETRY_H

#include <stddef.h>
#include <stdint.h>
#include "common.h"
#include "error.h"

typedef struct {
    int max_attempts;            /* attempts in all, the first included (default 3) */
    uint64_t base_ms;            /* backoff base (default 1000) */
    uint64_t cap_ms;             /* backoff cap (default 30000) */
    uint64_t retry_after_max_ms; /* a longer Retry-After means stop (default 120000) */
    uint64_t deadline_ms;        /* overall time across attempts; 0 = none (default 0) */
    int statuses[16];            /* retryable statuses (default 429, 500, 502, 503, 504) */
    size_t nstatuses;
    unsigned budget_retry_cost;   /* tokens a retry costs (default 5) */
    unsigned budget_timeout_cost; /* tokens a retry after a timeout costs (default 10) */
    /* 429 codes that waiting does not cure (a used-up quota, no credits
     * left): final unless the server names a wait (Retry-After or a
     * retry_after in the body). NULL-terminated, compared without case;
     * default quota_exceeded and credits_depleted, the catalog's 429 codes
     * that are not retryable. */
    const char *const *no_wait_codes;
} eg_retry_policy_t;

/* Fills the documented defaults. */
void eg_retry_policy_default(eg_retry_policy_t *p);

/* A token bucket shared by the requests to one service (AWS standard mode):
 * retries spend tokens, successes earn one back, so a failing service is not
 * stormed. */
typedef struct {
    unsigned tokens, capacity;
} eg_retry_budget_t;

void eg_retry_budget_init(eg_retry_budget_t *b, unsigned capacity); /* default capacity 500 */
void eg_retry_budget_success(eg_retry_budget_t *b);

typedef enum {
    EG_RETRY_STOP = 0, /* give up: the answer is final */
    EG_RETRY_WAIT,     /* retry after delay_ms */
    EG_RETRY_REFRESH,  /* refresh credentials, then retry */
} eg_retry_action_t;

typedef struct {
    eg_retry_action_t action;
    uint64_t delay_ms;
    const char *reason; /* static, for the log line of the attempt */
} eg_retry_decision_t;

typedef struct {
    const char *method;          /* "GET", "POST", ... */
    int status;                  /* HTTP status; 0 when the request failed in transport */
    int timed_out;               /* the transport failure was a timeout */
    const eg_error_t *error;     /* the parsed error body, or NULL */
    const char *retry_after;     /* Retry-After header value, or NULL */
    const char *ratelimit_reset; /* X-RateLimit-Reset value (delta seconds or Unix time), or NULL */
    int has_idempotency_key;     /* the request carries an Idempotency-Key */
    int attempt;                 /* attempts made so far (1 after the first) */
    uint64_t now_unix_ms;        /* wall clock, for HTTP-dates and Unix-time resets */
    uint64_t elapsed_ms;         /* time since the first attempt started */
    uint64_t random;             /* a uniformly random number, for jitter */
} eg_retry_input_t;

/* Decides what to do after a failed attempt; spends budget when it retries. */
eg_retry_decision_t eg_retry_decide(const eg_retry_policy_t *p, eg_retry_budget_t *budget,
                                    const eg_retry_input_t *in);

/* Parses an HTTP-date (IMF-fixdate, RFC 850 or asctime, RFC 9110 5.6.7) into
 * Unix seconds. Returns EG_OK or EG_EINVAL. */
int eg_http_date_parse(const char *s, size_t n, int64_t *unix_seconds);

/* Parses a Retry-After value (delta-seconds or HTTP-date) into a delay from
 * now; a date in the past is a delay of 0. Returns EG_OK or EG_EINVAL. */
int eg_retry_after_parse(const char *s, size_t n, uint64_t now_unix_ms, uint64_t *delay_ms);

#endif
