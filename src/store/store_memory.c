/* store_memory.c - the memory backend: a sorted array, gone at exit.
 * For tests, demos and gateways whose keys are created through the admin
 * API at start; the sqlite backend is the one that survives a restart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"

typedef struct counter_s {
    struct counter_s *next;
    long long value;
    char name[]; /* "q|subject|period" or "c|subject" */
} counter_t;

typedef struct {
    eg_store_t base;
    eg_key_t *keys;
    size_t n, cap;
    uint64_t version;
    counter_t *counters; /* a list: tests and demos hold few */
} mem_t;

static counter_t *counter(mem_t *m, const char *kind, const char *subject, const char *period, int create)
{
    char name[512];
    snprintf(name, sizeof(name), "%s|%s|%s", kind, subject, period ? period : "");
    for (counter_t *c = m->counters; c; c = c->next)
        if (strcmp(c->name, name) == 0) return c;
    if (!create) return NULL;
    size_t n = strlen(name);
    counter_t *c = calloc(1, sizeof(*c) + n + 1);
    if (!c) return NULL;
    memcpy(c->name, name, n + 1);
    c->next = m->counters;
    m->counters = c;
    return c;
}

static int mem_charge(eg_store_t *s, eg_charge_t *items, size_t n)
{
    mem_t *m = (mem_t *)s;
    int all = 1;
    for (size_t i = 0; i < n; i++) {
        eg_charge_t *it = &items[i];
        counter_t *c = counter(m, it->kind == EG_CHARGE_QUOTA ? "q" : "c", it->subject, it->period, 0);
        long long v = c ? c->value : 0;
        it->ok = it->kind == EG_CHARGE_QUOTA ? v + it->cost <= it->limit : v >= it->cost;
        it->value = v;
        all &= it->ok;
    }
    if (!all) return 0;
    for (size_t i = 0; i < n; i++) {
        eg_charge_t *it = &items[i];
        counter_t *c = counter(m, it->kind == EG_CHARGE_QUOTA ? "q" : "c", it->subject, it->period, 1);
        if (!c) return EG_ENOMEM; /* earlier items stay charged: only on allocation failure */
        c->value += it->kind == EG_CHARGE_QUOTA ? it->cost : -it->cost;
        it->value = c->value;
    }
    return 1;
}

static int mem_credits_add(eg_store_t *s, const char *subject, long long amount, long long *balance)
{
    counter_t *c = counter((mem_t *)s, "c", subject, NULL, 1);
    if (!c) return EG_ENOMEM;
    c->value += amount;
    *balance = c->value;
    return EG_OK;
}

static int mem_credits_get(eg_store_t *s, const char *subject, long long *balance)
{
    counter_t *c = counter((mem_t *)s, "c", subject, NULL, 0);
    *balance = c ? c->value : 0;
    return EG_OK;
}

static int mem_quota_get(eg_store_t *s, const char *subject, const char *period, long long *used)
{
    counter_t *c = counter((mem_t *)s, "q", subject, period, 0);
    *used = c ? c->value : 0;
    return EG_OK;
}

static size_t find(const mem_t *m, const char *id, int *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->keys[mid].id, id);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = 0;
    return lo;
}

static int mem_version(eg_store_t *s, uint64_t *out)
{
    *out = ((mem_t *)s)->version;
    return EG_OK;
}

static int mem_insert(eg_store_t *s, const eg_key_t *k)
{
    mem_t *m = (mem_t *)s;
    int found;
    size_t at = find(m, k->id, &found);
    if (found) return EG_EEXIST;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        eg_key_t *nk = realloc(m->keys, cap * sizeof(*nk));
        if (!nk) return EG_ENOMEM;
        m->keys = nk;
        m->cap = cap;
    }
    eg_key_t copy;
    if (eg_key_copy(&copy, k) != EG_OK) return EG_ENOMEM;
    memmove(m->keys + at + 1, m->keys + at, (m->n - at) * sizeof(*m->keys));
    m->keys[at] = copy;
    m->n++;
    m->version++;
    return EG_OK;
}

static int mem_update(eg_store_t *s, const eg_key_t *k)
{
    mem_t *m = (mem_t *)s;
    int found;
    size_t at = find(m, k->id, &found);
    if (!found) return EG_ENOENT;
    eg_key_t copy;
    if (eg_key_copy(&copy, k) != EG_OK) return EG_ENOMEM;
    eg_key_clear(&m->keys[at]);
    m->keys[at] = copy;
    m->version++;
    return EG_OK;
}

static int mem_get(eg_store_t *s, const char *id, eg_key_t *out)
{
    mem_t *m = (mem_t *)s;
    int found;
    size_t at = find(m, id, &found);
    if (!found) return EG_ENOENT;
    return eg_key_copy(out, &m->keys[at]);
}

static int mem_list(eg_store_t *s, eg_key_t **out, size_t *n)
{
    mem_t *m = (mem_t *)s;
    eg_key_t *all = calloc(m->n ? m->n : 1, sizeof(*all));
    if (!all) return EG_ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        if (eg_key_copy(&all[i], &m->keys[i]) != EG_OK) {
            for (size_t j = 0; j < i; j++) eg_key_clear(&all[j]);
            free(all);
            return EG_ENOMEM;
        }
    }
    *out = all;
    *n = m->n;
    return EG_OK;
}

static int mem_touch(eg_store_t *s, const char *id, long long when)
{
    mem_t *m = (mem_t *)s;
    int found;
    size_t at = find(m, id, &found);
    if (!found) return EG_ENOENT;
    if (when > m->keys[at].last_used) m->keys[at].last_used = when;
    return EG_OK;
}

static void mem_close(eg_store_t *s)
{
    mem_t *m = (mem_t *)s;
    for (size_t i = 0; i < m->n; i++) eg_key_clear(&m->keys[i]);
    free(m->keys);
    for (counter_t *c = m->counters, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(m);
}

static const eg_store_ops_t mem_ops = {"memory",   mem_version,     mem_insert,      mem_update,
                                       mem_get,    mem_list,        mem_touch,       mem_charge,
                                       mem_credits_add, mem_credits_get, mem_quota_get, mem_close,
                                       NULL,       NULL,            NULL};

int eg_store_memory_open(eg_store_t **out, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    mem_t *m = calloc(1, sizeof(*m));
    if (!m) return EG_ENOMEM;
    if (eg_store_init(&m->base, &mem_ops) != EG_OK) {
        free(m);
        return EG_ENOMEM;
    }
    *out = &m->base;
    return EG_OK;
}
