/* store.h - the one interface for state the gateway keeps.
 *
 * Backends: memory (lives and dies with the process) and sqlite (the
 * embedded default: WAL, migrations recorded in schema_version, a busy
 * timeout, prepared statements). Keys are the first tenant; quota counters,
 * credits, idempotency records and metering events join them later.
 *
 * A store is safe to use from several threads (each call takes the store's
 * lock). Calls may block on disk, so worker loops never call it: the
 * gateway reads keys from the keyring's in-memory snapshot (keyring.h).
 * Every function returns 0 or a negative EG_E* code; EG_EIO means the store
 * itself failed (the caller answers 503 service_unavailable), and the
 * message is in the store's last error (eg_store_error).
 */
#ifndef EG_STORE_H
#define EG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "errgate/apikey.h"
#include "errgate/common.h"

#define EG_EEXIST (-20) /* an item with that id is already stored */

typedef enum { EG_KEY_ACTIVE = 0, EG_KEY_SUSPENDED = 1, EG_KEY_REVOKED = 2 } eg_key_status_t;

/* One API key as stored. Strings are owned by the record (eg_key_clear). */
typedef struct {
    char id[EG_APIKEY_ID_LEN + 1];
    char env[5];               /* "live" or "test", as in the key's prefix */
    char *name, *owner, *plan; /* owner and plan may be NULL */
    char *scopes;              /* space-separated, may be NULL */
    char *ips;                 /* comma-separated IPs and CIDRs, NULL = any address */
    eg_key_status_t status;
    char *reason;              /* why it was suspended or revoked */
    long long expires;         /* Unix seconds, 0 = never */
    long long created, last_used;
    unsigned char hash[EG_APIKEY_HASH_LEN];
    unsigned char prev_hash[EG_APIKEY_HASH_LEN]; /* the secret before a rotation ... */
    long long prev_until;                        /* ... valid until then (0 = none) */
} eg_key_t;

void eg_key_clear(eg_key_t *k);
const char *eg_key_status_name(eg_key_status_t s);

typedef enum { EG_STORE_MEMORY = 0, EG_STORE_SQLITE } eg_store_backend_t;

typedef struct eg_store_s eg_store_t;

/* Opens the backend; for sqlite, creates the file and applies migrations.
 * On failure writes a one-line reason to err. */
int eg_store_open(eg_store_backend_t backend, const char *path, uint64_t busy_timeout_ms,
                  eg_store_t **out, char *err, size_t errlen);
void eg_store_close(eg_store_t *s);
const char *eg_store_backend_name(const eg_store_t *s);
/* The message of the last failure (thread-local to the store's lock holder:
 * read it right after the failing call). */
const char *eg_store_error(eg_store_t *s);

/* A number that changes whenever any process changed the stored keys. */
int eg_store_version(eg_store_t *s, uint64_t *out);

int eg_store_key_insert(eg_store_t *s, const eg_key_t *k); /* EG_EEXIST */
int eg_store_key_update(eg_store_t *s, const eg_key_t *k); /* replaces by id; EG_ENOENT */
int eg_store_key_get(eg_store_t *s, const char *id, eg_key_t *out); /* EG_ENOENT */
/* Every key, sorted by id; *out is the caller's (free each with eg_key_clear, then free). */
int eg_store_key_list(eg_store_t *s, eg_key_t **out, size_t *n);
/* Records use; does not change the version (it is not a change of policy). */
int eg_store_key_touch(eg_store_t *s, const char *id, long long when);

/* Quotas and credits. A request's charges are made together: all of them
 * or none (a request refused for lack of credits does not use quota). */
typedef enum { EG_CHARGE_QUOTA = 0, EG_CHARGE_CREDITS } eg_charge_kind_t;

typedef struct {
    eg_charge_kind_t kind;
    const char *subject; /* "k:<key id>" or "u:<consumer>" */
    const char *period;  /* quota: "2026-11" or "2026-11-25" (UTC) */
    long long limit;     /* quota: the most the period may use */
    long long cost;
    /* out */
    int ok;              /* this charge alone would fit */
    long long value;     /* quota: usage after (or as it stands when refused); credits: balance */
} eg_charge_t;

/* 1 when every charge was made, 0 when one did not fit (nothing was made;
 * see each ok), EG_EIO when the store failed. Durable when it returns 1
 * (sqlite: committed to the WAL, which survives the process being killed). */
int eg_store_charge(eg_store_t *s, eg_charge_t *items, size_t n);
/* Adds to (or, negative, takes from) a credit balance; *balance after. */
int eg_store_credits_add(eg_store_t *s, const char *subject, long long amount, long long *balance);
int eg_store_credits_get(eg_store_t *s, const char *subject, long long *balance);
int eg_store_quota_get(eg_store_t *s, const char *subject, const char *period, long long *used);

/* Group commits (sqlite; the memory store ignores it). commit_every 1 (the
 * default) is one IMMEDIATE transaction per request, committed before the
 * request is admitted: exact across processes sharing the file. Above 1,
 * the store decides against counters it loaded into memory (one short lock
 * per decision, shared by every thread of the process) and a writer thread
 * commits the charges of many requests in one transaction, once
 * commit_every wait or commit_interval_ms after the first. A request is
 * admitted only while fewer than commit_every admitted charges are not yet
 * committed, so a kill -9 leaves at most commit_every - 1 served requests
 * uncounted (per process). Other processes' commits (the CLI's top-ups,
 * another gateway) are read back within about commit_interval_ms. */
int eg_store_set_commit(eg_store_t *s, size_t commit_every, uint64_t commit_interval_ms);
/* eg_store_charge that never waits on the disk or a lock held across disk
 * I/O: EG_EAGAIN when it would (a counter not loaded yet, the uncommitted
 * bound reached, commit_every 1): then call eg_store_charge off the loop. */
int eg_store_charge_now(eg_store_t *s, eg_charge_t *items, size_t n);

/* Backend vtable, for store_memory.c and store_sqlite.c. */
typedef struct {
    const char *name;
    int (*version)(eg_store_t *s, uint64_t *out);
    int (*key_insert)(eg_store_t *s, const eg_key_t *k);
    int (*key_update)(eg_store_t *s, const eg_key_t *k);
    int (*key_get)(eg_store_t *s, const char *id, eg_key_t *out);
    int (*key_list)(eg_store_t *s, eg_key_t **out, size_t *n);
    int (*key_touch)(eg_store_t *s, const char *id, long long when);
    int (*charge)(eg_store_t *s, eg_charge_t *items, size_t n);
    int (*credits_add)(eg_store_t *s, const char *subject, long long amount, long long *balance);
    int (*credits_get)(eg_store_t *s, const char *subject, long long *balance);
    int (*quota_get)(eg_store_t *s, const char *subject, const char *period, long long *used);
    void (*close)(eg_store_t *s);
    /* optional: charge without the store's lock (the backend locks what it
     * needs); may_block 0 answers EG_EAGAIN rather than wait */
    int (*charge_nl)(eg_store_t *s, eg_charge_t *items, size_t n, int may_block);
    int (*set_commit)(eg_store_t *s, size_t commit_every, uint64_t commit_interval_ms);
    void (*stop)(eg_store_t *s); /* optional: before the lock goes (a writer thread's last commit) */
} eg_store_ops_t;

int eg_store_memory_open(eg_store_t **out, char *err, size_t errlen);
int eg_store_sqlite_open(const char *path, uint64_t busy_timeout_ms, eg_store_t **out, char *err,
                         size_t errlen);

/* Deep copy of a record; EG_ENOMEM. */
int eg_key_copy(eg_key_t *dst, const eg_key_t *src);

#endif
