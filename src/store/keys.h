/* keys.h - API key administration: what `errgate keys` and the admin API do.
 *
 * One implementation for both front ends, so the CLI and the HTTP API
 * cannot disagree on validation. Every function validates its input and
 * writes a one-line reason to err on failure: EG_EINVAL for bad input,
 * EG_ENOENT for an unknown id, EG_EIO when the store failed.
 */
#ifndef EG_KEYS_H
#define EG_KEYS_H

#include <jansson.h>

#include "config.h"
#include "redis.h"
#include "store.h"

typedef struct {
    const char *name;
    const char *owner;   /* NULL = none */
    const char *plan;    /* NULL = none */
    const char *scopes;  /* comma- or space-separated; NULL = none */
    const char *ips;     /* comma-separated IPs and CIDRs; NULL = any */
    const char *env;     /* "live" (default) or "test" */
    long long expires;   /* Unix seconds, 0 = never */
} eg_keyspec_t;

/* Creates a key; the secret (shown once) goes to secret, the record to out. */
int eg_keys_create(eg_store_t *s, const unsigned char *pepper, size_t pepper_len,
                   const eg_keyspec_t *spec, long long now, char secret[EG_APIKEY_LEN + 1],
                   eg_key_t *out, char *err, size_t errlen);
/* suspend (reason required), resume, revoke. */
int eg_keys_set_status(eg_store_t *s, const char *id, eg_key_status_t status, const char *reason,
                       eg_key_t *out, char *err, size_t errlen);
/* EG_OK when plan is NULL, "" (none) or a plan under plans: in cfg, else
 * EG_EINVAL with the reason in err: every front end (keys create and plan,
 * POST /keys and /keys/{id}/plan) checks with it, so a key can never be
 * given a plan that does not exist (it would run without plan limits). */
int eg_keys_plan_ok(const eg_config_t *cfg, const char *plan, char *err, size_t errlen);
/* Moves a key to another plan (NULL or "" = none). A running gateway
 * applies it within store.refresh. */
int eg_keys_set_plan(eg_store_t *s, const char *id, const char *plan, eg_key_t *out, char *err, size_t errlen);
/* A new secret for the same id; the old one stays valid for grace_s seconds. */
int eg_keys_rotate(eg_store_t *s, const unsigned char *pepper, size_t pepper_len, const char *id,
                   long long grace_s, long long now, char secret[EG_APIKEY_LEN + 1], eg_key_t *out,
                   char *err, size_t errlen);
int eg_keys_get(eg_store_t *s, const char *id, eg_key_t *out, char *err, size_t errlen);

/* Adds credits to a key's balance (add may be 0: just read it; negative:
 * take some back, never below zero). *balance after. With redis non-NULL
 * the balance lives in Redis (the gateway's `redis:`), else in the store. */
/* The Redis holding credits for a configuration, in *buf; NULL when the
 * configuration keeps them in the store. */
const eg_redis_target_t *eg_keys_credit_redis(const eg_config_t *cfg, eg_redis_target_t *buf);
int eg_keys_credits(eg_store_t *s, const eg_redis_target_t *redis, const char *id, long long add,
                    long long *balance, char *err, size_t errlen);

/* The public view of a record (never the hash). */
json_t *eg_key_json(const eg_key_t *k);

/* Parses "2027-01-31" or "2027-01-31T12:00:00Z" to Unix seconds. */
int eg_keys_parse_date(const char *s, long long *out);

#endif
