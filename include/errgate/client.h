/* client.h - an HTTP client that retries exactly as the error pages advise
 * (liberrgate-client: libcurl underneath, the policy of retry.h on top).
 *
 * One call makes a request and, on a failed attempt, parses the error body
 * (any dialect) into the canonical model, asks eg_retry_decide() what to do,
 * logs the attempt through the caller's callback, waits with the caller's
 * sleeper and tries again. POST and PATCH get an Idempotency-Key that stays
 * the same across attempts: the caller's own header line (sent as it is, never
 * doubled), else opts->idempotency_key, else a new UUIDv4 (RFC 9562, lowercase
 * hex, 122 random bits from OpenSSL's RAND_bytes). A 409
 * idempotency_key_in_use is retried with that key after its Retry-After; a 422
 * idempotency_key_mismatch (or _reused) is final. A final response that
 * carries `Idempotent-Replayed: true` (or `?1`) is the stored answer to an
 * earlier attempt with the key, and says so in resp->replayed.
 *
 * Ownership: the caller owns the request and the options; eg_client_request
 * fills *resp, whose body and error the caller frees with
 * eg_client_response_free().
 */
#ifndef ERRGATE_CLIENT_H
#define ERRGATE_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "errgate.h"

typedef struct {
    const char *method; /* "GET" when NULL */
    const char *url;
    const char *const *headers; /* "Name: value" lines, NULL-terminated, may be NULL */
    const char *body;
    size_t body_len;
} eg_client_request_t;

typedef struct {
    int attempt;                 /* 1-based */
    int status;                  /* 0 for a transport failure */
    const char *transport_error; /* curl's message, or NULL */
    const char *request_id;      /* from X-Request-ID or the body, or NULL */
    const char *code;            /* canonical code of the error, or NULL */
    const char *message;
    eg_retry_decision_t decision;
} eg_client_attempt_t;

typedef struct {
    eg_retry_policy_t policy;
    eg_retry_budget_t *budget;   /* shared across requests; may be NULL */
    long timeout_ms;             /* per attempt; 0 = none */
    const char *idempotency_key; /* NULL: generated for POST/PATCH; else 1..255 visible
                                    ASCII characters, sent with any method */
    /* injectable for tests; NULL = the real clock, nanosleep, getrandom (for
     * jitter only: the key never comes from `random`) */
    uint64_t (*now_ms)(void *ctx); /* Unix time in ms */
    void (*sleep_ms)(void *ctx, uint64_t ms);
    uint64_t (*random)(void *ctx);
    void (*log)(void *ctx, const eg_client_attempt_t *a); /* each failed attempt */
    void *ctx;
} eg_client_options_t;

typedef struct {
    int status; /* final HTTP status, 0 when no response came */
    char *body; /* final response body (NUL-terminated), owned */
    size_t body_len;
    eg_error_t *error; /* parsed error when status >= 400, owned, or NULL */
    char request_id[256];
    char idempotency_key[256]; /* the key sent, "" when none */
    int replayed;              /* the final response carried Idempotent-Replayed: true */
    int attempts;
    int timed_out;             /* the last attempt failed by timeout */
    char transport_error[256]; /* the last transport failure, "" when none */
    const char *stop_reason;   /* why it stopped retrying (static), NULL on success */
} eg_client_response_t;

/* Fills options with eg_retry_policy_default() and no hooks. */
void eg_client_options_default(eg_client_options_t *o);

/* Makes the request with retries. Returns EG_OK when a final answer (any
 * status) or a final transport failure is in *resp; EG_EINVAL for a bad
 * request (no URL, two Idempotency-Key sources, an invalid option key),
 * EG_EIO when no random key could be made, EG_ENOMEM. */
int eg_client_request(const eg_client_request_t *req, const eg_client_options_t *opts,
                      eg_client_response_t *resp);

void eg_client_response_free(eg_client_response_t *resp);

/* Writes a UUIDv4 from 16 random bytes into out (37 bytes). */
void eg_uuid4(const unsigned char rnd[16], char out[37]);

#endif
