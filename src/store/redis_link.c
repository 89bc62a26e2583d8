/* redis_link.c - each worker's Redis connection (see redis_link.h). */
#include "redis_link.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eg_redis_link_s {
    eg_redis_t *redis; /* made on first use */
    char addr[270];    /* the address it was made for */
    atomic_ullong failures;
    atomic_int up;
    uint64_t logged_ms;
    char tag[17];
    uint64_t seq;
};

eg_redis_link_t *eg_redis_link_new(const unsigned char rnd[8])
{
    eg_redis_link_t *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    for (size_t i = 0; i < 8; i++) snprintf(l->tag + 2 * i, 3, "%02x", rnd[i]);
    return l;
}

void eg_redis_link_close(eg_redis_link_t *l)
{
    if (!l) return;
    eg_redis_free(l->redis);
    l->redis = NULL;
}

void eg_redis_link_free(eg_redis_link_t *l)
{
    if (!l) return;
    eg_redis_link_close(l);
    free(l);
}

static void on_state(void *arg, int up)
{
    eg_redis_link_t *l = arg;
    atomic_store(&l->up, up ? 1 : -1);
}

eg_redis_t *eg_redis_link_get(eg_redis_link_t *l, uv_loop_t *loop, const eg_config_t *cfg)
{
    if (l->redis && strcmp(l->addr, cfg->redis.addr) != 0) { /* a reload moved it */
        eg_redis_free(l->redis);
        l->redis = NULL;
    }
    if (!l->redis) {
        if (eg_redis_new(loop, cfg->redis.host, cfg->redis.port, cfg->redis_db, on_state, l, &l->redis) != 0)
            return NULL;
        snprintf(l->addr, sizeof(l->addr), "%s", cfg->redis.addr);
    }
    eg_redis_set_timeout(l->redis, cfg->redis_timeout_ms); /* a reload may change it */
    return l->redis;
}

eg_redis_t *eg_redis_link_current(eg_redis_link_t *l)
{
    return l ? l->redis : NULL;
}

int eg_redis_link_failed(eg_redis_link_t *l, uint64_t now_ms)
{
    atomic_fetch_add(&l->failures, 1);
    atomic_store(&l->up, -1);
    if (now_ms - l->logged_ms < 1000) return 0;
    l->logged_ms = now_ms;
    return 1;
}

void eg_redis_link_succeeded(eg_redis_link_t *l)
{
    atomic_store(&l->up, 1);
}

void eg_redis_link_token(eg_redis_link_t *l, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%llx", l->tag, (unsigned long long)++l->seq);
}

void eg_redis_link_status(eg_redis_link_t *l, int *up, uint64_t *failures)
{
    *up = l ? atomic_load(&l->up) : 0;
    *failures = l ? atomic_load(&l->failures) : 0;
}
