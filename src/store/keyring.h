/* keyring.h - API key authentication from an in-memory snapshot of the store.
 *
 * Workers never touch the store: they look keys up in an immutable snapshot
 * (sorted by public id, IP lists parsed) under a read lock held for a few
 * hundred nanoseconds. A refresh thread polls the store's version every
 * `refresh` interval and swaps in a new snapshot when another process (the
 * `errgate keys` CLI) changed it; the admin API reloads synchronously after
 * each change, so a suspension is seen by every worker before the admin
 * call returns. Last-used times are collected in the snapshot and written
 * back by the refresh thread. When the store fails, the keyring turns
 * unhealthy and authentication answers 503 until a refresh succeeds:
 * serving from a stale snapshot could honour a revoked key.
 */
#ifndef EG_KEYRING_H
#define EG_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "errgate/apikey.h"
#include "errgate/cidr.h"
#include "store.h"

typedef enum {
    EG_AUTH_OK = 0,
    EG_AUTH_MISSING,     /* missing_api_key */
    EG_AUTH_MALFORMED,   /* malformed_api_key */
    EG_AUTH_INVALID,     /* invalid_api_key: unknown, wrong secret, revoked or expired */
    EG_AUTH_SUSPENDED,   /* suspended_api_key: reason in detail */
    EG_AUTH_IP,          /* ip_not_allowed: the key's allow list in detail */
    EG_AUTH_UNAVAILABLE  /* the store failed: 503 */
} eg_auth_result_t;

/* Who a request is, copied out of the snapshot (no pointer into it survives
 * the lock). For JWTs the same struct carries sub, kid and the scopes. */
typedef struct {
    char key_id[64];
    char consumer[128]; /* the key's owner, else its id; a JWT's sub */
    char plan[64];
    char scopes[1024];  /* space-separated */
    char detail[1024];  /* failure detail: suspension reason, or allowed IPs comma-separated */
    char why[128];      /* failure reason for the log and message (never the secret) */
} eg_principal_t;

typedef struct eg_keyring_s eg_keyring_t;

/* Loads the first snapshot; fails (with err) when the store cannot be read.
 * The pepper is copied. refresh_ms 0 disables polling. */
int eg_keyring_new(eg_store_t *store, const unsigned char *pepper, size_t pepper_len,
                   uint64_t refresh_ms, eg_keyring_t **out, char *err, size_t errlen);
/* Starts the refresh thread. */
int eg_keyring_start(eg_keyring_t *kr);
/* Reloads now (after a change through the admin API). */
int eg_keyring_reload(eg_keyring_t *kr);
/* Stops the thread, writes back last-used times, frees. The store is the caller's. */
void eg_keyring_free(eg_keyring_t *kr);
eg_store_t *eg_keyring_store(eg_keyring_t *kr);
int eg_keyring_healthy(eg_keyring_t *kr);
size_t eg_keyring_count(eg_keyring_t *kr);

/* Hashes a presented key the way stored ones are hashed. */
int eg_keyring_hash(const eg_keyring_t *kr, const char *key, size_t len,
                    unsigned char out[EG_APIKEY_HASH_LEN]);

/* How many recently presented keys a worker's hasher remembers. */
#define EG_KEYRING_MEMO 128

/* A hasher with the keyring's pepper and a memo of EG_KEYRING_MEMO keys,
 * for one thread (see apikey.h). */
int eg_keyring_hasher_new(const eg_keyring_t *kr, eg_apikey_hasher_t **out);

/* Authenticates a presented key (len 0 = none presented) from client (NULL
 * = unknown address) at Unix time now, hashing with h (the calling
 * thread's; NULL = the slower one-shot functions). Fills p on success and
 * p->detail / p->why on failure. A key in h's memo skips its parse and
 * hash only: the snapshot decides every time (a revocation applies to the
 * next request); a key whose hash matches a stored one is memoised. */
eg_auth_result_t eg_keyring_check(eg_keyring_t *kr, eg_apikey_hasher_t *h, const char *key, size_t len,
                                  const eg_cidr_t *client, long long now, eg_principal_t *p);

/* The metering API's user_id: 1 when user is a stored key's id (subject
 * "k:<id>") or a key's owner ("u:<owner>"), whatever the key's status (a
 * suspended customer's usage is still theirs); 0 when it is neither;
 * EG_EIO while the keyring is unhealthy. A key id wins over an owner of
 * the same name. */
int eg_keyring_user(eg_keyring_t *kr, const char *user, char *subject, size_t cap);

/* Parses a comma-separated list of IPs and CIDRs; *out is the caller's. */
int eg_cidr_list_parse(const char *list, eg_cidr_t **out, size_t *n, char *bad, size_t badlen);

#endif
