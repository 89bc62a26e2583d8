/* limiter.c - shared rate-limit and concurrency state (see limiter.h). */
#include "limiter.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NSHARDS 64
#define MAX_LIMITS 16

typedef struct entry_s {
    struct entry_s *next;
    uint64_t hash;
    uint64_t tat_us;   /* GCRA theoretical arrival time, 0 = none */
    uint32_t active;   /* concurrency slots held */
    char key[];
} entry_t;

typedef struct {
    pthread_mutex_t lock;
    entry_t **buckets;
    size_t nbuckets, n;
} shard_t;

struct eg_limiter_s {
    shard_t shards[NSHARDS];
};

/* FNV-1a: keys are short and not attacker-chosen in bulk (ids, IPs, paths). */
static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int eg_limiter_new(eg_limiter_t **out)
{
    eg_limiter_t *l = calloc(1, sizeof(*l));
    if (!l) return EG_ENOMEM;
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &l->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->nbuckets = 64;
        if (!(s->buckets = calloc(s->nbuckets, sizeof(entry_t *)))) {
            eg_limiter_free(l);
            return EG_ENOMEM;
        }
    }
    *out = l;
    return EG_OK;
}

void eg_limiter_free(eg_limiter_t *l)
{
    if (!l) return;
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &l->shards[i];
        for (size_t b = 0; s->buckets && b < s->nbuckets; b++) {
            for (entry_t *e = s->buckets[b], *next; e; e = next) {
                next = e->next;
                free(e);
            }
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(l);
}

static void grow(shard_t *s)
{
    size_t nb = s->nbuckets * 2;
    entry_t **b = calloc(nb, sizeof(*b));
    if (!b) return; /* longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        for (entry_t *e = s->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[(e->hash >> 6) & (nb - 1)];
            b[(e->hash >> 6) & (nb - 1)] = e;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

/* Finds or (create) makes the entry; the shard is locked by the caller. */
static entry_t *lookup(shard_t *s, const char *key, uint64_t h, int create)
{
    entry_t **slot = &s->buckets[(h >> 6) & (s->nbuckets - 1)];
    for (entry_t *e = *slot; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0) return e;
    if (!create) return NULL;
    size_t n = strlen(key);
    entry_t *e = calloc(1, sizeof(*e) + n + 1);
    if (!e) return NULL;
    e->hash = h;
    memcpy(e->key, key, n + 1);
    e->next = *slot;
    *slot = e;
    if (++s->n > s->nbuckets * 2) grow(s);
    return e;
}

int eg_limiter_decide(eg_limiter_t *l, const eg_limit_req_t *reqs, size_t n, uint64_t now_us,
                      eg_gcra_result_t *results, size_t *report)
{
    if (n == 0) return 1;
    if (n > MAX_LIMITS) return EG_EINVAL;
    uint64_t h[MAX_LIMITS];
    int shard[MAX_LIMITS], order[MAX_LIMITS];
    for (size_t i = 0; i < n; i++) {
        h[i] = hash_key(reqs[i].key);
        shard[i] = (int)(h[i] % NSHARDS);
    }
    /* the distinct shards, ascending: one lock order for every thread
     * (an insertion sort: n is a handful) */
    int nlocks = 0;
    for (size_t i = 0; i < n; i++) {
        int s = shard[i], k = nlocks;
        while (k > 0 && order[k - 1] > s) k--;
        if (k > 0 && order[k - 1] == s) continue;
        memmove(order + k + 1, order + k, (size_t)(nlocks - k) * sizeof(order[0]));
        order[k] = s;
        nlocks++;
    }
    for (int i = 0; i < nlocks; i++) pthread_mutex_lock(&l->shards[order[i]].lock);
    entry_t *e[MAX_LIMITS];
    uint64_t next[MAX_LIMITS];
    int ok = 1, rc = 1;
    for (size_t i = 0; i < n; i++) {
        if (!(e[i] = lookup(&l->shards[shard[i]], reqs[i].key, h[i], 1))) {
            rc = EG_ENOMEM;
            goto out;
        }
        eg_gcra_decide(&reqs[i].gcra, e[i]->tat_us, now_us, reqs[i].cost, &next[i], &results[i]);
        ok &= results[i].allowed;
    }
    if (ok)
        for (size_t i = 0; i < n; i++) e[i]->tat_us = next[i];
    rc = ok;
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (eg_gcra_more_restrictive(&results[best], &results[i])) best = i;
    *report = best;
out:
    for (int i = nlocks; i-- > 0;) pthread_mutex_unlock(&l->shards[order[i]].lock);
    return rc;
}

int eg_limiter_acquire(eg_limiter_t *l, const char *key, uint32_t max, uint32_t *active)
{
    uint64_t h = hash_key(key);
    shard_t *s = &l->shards[h % NSHARDS];
    pthread_mutex_lock(&s->lock);
    entry_t *e = lookup(s, key, h, 1);
    int rc = EG_ENOMEM;
    if (e) {
        rc = e->active < max;
        if (rc) e->active++;
        *active = e->active;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void eg_limiter_release(eg_limiter_t *l, const char *key)
{
    uint64_t h = hash_key(key);
    shard_t *s = &l->shards[h % NSHARDS];
    pthread_mutex_lock(&s->lock);
    entry_t *e = lookup(s, key, h, 0);
    if (e && e->active) e->active--;
    pthread_mutex_unlock(&s->lock);
}

uint32_t eg_limiter_active(eg_limiter_t *l, const char *key)
{
    uint64_t h = hash_key(key);
    shard_t *s = &l->shards[h % NSHARDS];
    pthread_mutex_lock(&s->lock);
    entry_t *e = lookup(s, key, h, 0);
    uint32_t n = e ? e->active : 0;
    pthread_mutex_unlock(&s->lock);
    return n;
}

uint64_t eg_limiter_active_total(eg_limiter_t *l)
{
    uint64_t total = 0;
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &l->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t b = 0; b < s->nbuckets; b++)
            for (entry_t *e = s->buckets[b]; e; e = e->next) total += e->active;
        pthread_mutex_unlock(&s->lock);
    }
    return total;
}

size_t eg_limiter_sweep(eg_limiter_t *l, uint64_t now_us)
{
    size_t left = 0;
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &l->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t b = 0; b < s->nbuckets; b++) {
            entry_t **p = &s->buckets[b];
            while (*p) {
                entry_t *e = *p;
                if (e->active == 0 && e->tat_us <= now_us) { /* full allowance: as if never seen */
                    *p = e->next;
                    free(e);
                    s->n--;
                } else {
                    p = &e->next;
                }
            }
        }
        left += s->n;
        pthread_mutex_unlock(&s->lock);
    }
    return left;
}
