/* usage_redis.h - usage totals kept in Redis (the meter stage's writes when
 * `redis:` holds the traffic state), read into usage.h's rows. */
#ifndef EG_USAGE_REDIS_H
#define EG_USAGE_REDIS_H

#include <stddef.h>

#include "redis.h"
#include "usage.h"

/* ARGV: prefix, subject, first hour, hour after the last; returns
 * {hour, {field, value, ...}, ...} for the hours that have a hash. */
extern const char eg_usage_redis_lua[];

void eg_usage_hours(const eg_usage_query_t *q, int64_t *from_h, int64_t *to_h);
/* The script's reply (a hiredis redisReply) for one subject, into rows. */
int eg_usage_rows_from_reply(eg_usage_row_t **rows, size_t *n, size_t *cap, const char *subject,
                             eg_usage_group_t g, const void *reply);
int eg_usage_rows_from_hash(eg_usage_row_t **rows, size_t *n, size_t *cap, const char *subject,
                            int64_t hour, eg_usage_group_t g, const char *const *fv,
                            const size_t *lens, size_t nfv);
/* Blocking (the CLI, the admin API): one subject's (q->subject) or every
 * subject's totals, sorted as eg_usage_query sorts them. */
int eg_usage_redis_query(const eg_redis_target_t *t, const eg_usage_query_t *q,
                         eg_usage_row_t **rows, size_t *n, char *err, size_t errlen);

/* Blocking: a quota counter as traffic.c keeps it in Redis
 * (<prefix>q:<subject>:<period>), 0 when there is none. */
int eg_usage_redis_quota(const eg_redis_target_t *t, const char *subject, const char *period,
                         long long *used, char *err, size_t errlen);

#endif
