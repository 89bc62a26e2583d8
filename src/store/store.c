/* store.c - the store interface: dispatch, locking and key records (see store.h). */
#include "store_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void eg_key_clear(eg_key_t *k)
{
    if (!k) return;
    free(k->name);
    free(k->owner);
    free(k->plan);
    free(k->scopes);
    free(k->ips);
    free(k->reason);
    memset(k, 0, sizeof(*k));
}

const char *eg_key_status_name(eg_key_status_t s)
{
    switch (s) {
    case EG_KEY_ACTIVE: return "active";
    case EG_KEY_SUSPENDED: return "suspended";
    case EG_KEY_REVOKED: return "revoked";
    }
    return "unknown";
}

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    return (!src || (*dst = strdup(src))) ? EG_OK : EG_ENOMEM;
}

int eg_key_copy(eg_key_t *dst, const eg_key_t *src)
{
    *dst = *src;
    dst->name = dst->owner = dst->plan = dst->scopes = dst->ips = dst->reason = NULL;
    if (dup_opt(&dst->name, src->name) || dup_opt(&dst->owner, src->owner) ||
        dup_opt(&dst->plan, src->plan) || dup_opt(&dst->scopes, src->scopes) ||
        dup_opt(&dst->ips, src->ips) || dup_opt(&dst->reason, src->reason)) {
        eg_key_clear(dst);
        return EG_ENOMEM;
    }
    return EG_OK;
}

int eg_store_open(eg_store_backend_t backend, const char *path, uint64_t busy_timeout_ms,
                  eg_store_t **out, char *err, size_t errlen)
{
    if (backend == EG_STORE_SQLITE) return eg_store_sqlite_open(path, busy_timeout_ms, out, err, errlen);
    return eg_store_memory_open(out, err, errlen);
}

int eg_store_init(eg_store_t *s, const eg_store_ops_t *ops)
{
    s->ops = ops;
    s->err[0] = '\0';
    return pthread_mutex_init(&s->lock, NULL) == 0 ? EG_OK : EG_ENOMEM;
}

void eg_store_fail(eg_store_t *s, const char *fmt, const char *what)
{
    snprintf(s->err, sizeof(s->err), fmt, what ? what : "");
}

void eg_store_close(eg_store_t *s)
{
    if (!s) return;
    if (s->ops->stop) s->ops->stop(s);
    pthread_mutex_destroy(&s->lock);
    s->ops->close(s);
}

const char *eg_store_backend_name(const eg_store_t *s)
{
    return s->ops->name;
}

const char *eg_store_error(eg_store_t *s)
{
    return s->err[0] ? s->err : "no error";
}

/* Every call runs under the store's lock: backends need not be thread-safe. */
#define LOCKED(s, call)                                                                            \
    do {                                                                                           \
        pthread_mutex_lock(&(s)->lock);                                                            \
        int rc_ = (call);                                                                          \
        pthread_mutex_unlock(&(s)->lock);                                                          \
        return rc_;                                                                                \
    } while (0)

int eg_store_version(eg_store_t *s, uint64_t *out)
{
    LOCKED(s, s->ops->version(s, out));
}

int eg_store_key_insert(eg_store_t *s, const eg_key_t *k)
{
    LOCKED(s, s->ops->key_insert(s, k));
}

int eg_store_key_update(eg_store_t *s, const eg_key_t *k)
{
    LOCKED(s, s->ops->key_update(s, k));
}

int eg_store_key_get(eg_store_t *s, const char *id, eg_key_t *out)
{
    LOCKED(s, s->ops->key_get(s, id, out));
}

int eg_store_key_list(eg_store_t *s, eg_key_t **out, size_t *n)
{
    LOCKED(s, s->ops->key_list(s, out, n));
}

int eg_store_key_touch(eg_store_t *s, const char *id, long long when)
{
    LOCKED(s, s->ops->key_touch(s, id, when));
}

int eg_store_charge(eg_store_t *s, eg_charge_t *items, size_t n)
{
    if (s->ops->charge_nl) return s->ops->charge_nl(s, items, n, 1);
    LOCKED(s, s->ops->charge(s, items, n));
}

/* The memory store never waits: its charge under the lock is "now". */
int eg_store_charge_now(eg_store_t *s, eg_charge_t *items, size_t n)
{
    if (s->ops->charge_nl) return s->ops->charge_nl(s, items, n, 0);
    LOCKED(s, s->ops->charge(s, items, n));
}

int eg_store_set_commit(eg_store_t *s, size_t commit_every, uint64_t commit_interval_ms)
{
    if (!s->ops->set_commit) return EG_OK;
    return s->ops->set_commit(s, commit_every, commit_interval_ms);
}

int eg_store_credits_add(eg_store_t *s, const char *subject, long long amount, long long *balance)
{
    LOCKED(s, s->ops->credits_add(s, subject, amount, balance));
}

int eg_store_credits_get(eg_store_t *s, const char *subject, long long *balance)
{
    LOCKED(s, s->ops->credits_get(s, subject, balance));
}

int eg_store_quota_get(eg_store_t *s, const char *subject, const char *period, long long *used)
{
    LOCKED(s, s->ops->quota_get(s, subject, period, used));
}
