/* usage_redis.c - usage totals read back from Redis (see usage_redis.h).
 *
 * The meter stage adds to one hash per subject and hour,
 * `<prefix>u:{<subject>}:<hour>`, with fields `<event_type>|<route>|<status
 * class>` (quantity), `#...` (events), `<...` and `>...` (bytes in, out).
 * One Lua call reads a subject's hours of a period (the hash tag keeps a
 * subject's keys on one cluster slot); every subject is found with SCAN.
 * The rows are the SQLite query's (usage.h), sorted and merged the same
 * way, so every report says the same thing whichever store holds them.
 */
#include "usage_redis.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/common.h"

const char eg_usage_redis_lua[] = "local out={} local p=ARGV[1] local s=ARGV[2]\n"
                                  "for h=tonumber(ARGV[3]),tonumber(ARGV[4])-1 do\n"
                                  "  local v=redis.call('HGETALL',p..'u:{'..s..'}:'..h)\n"
                                  "  if #v>0 then out[#out+1]=tostring(h) out[#out+1]=v end\n"
                                  "end\n"
                                  "return out\n";

/* Hours [from, to) of a query, as usage.c counts them. */
void eg_usage_hours(const eg_usage_query_t *q, int64_t *from_h, int64_t *to_h)
{
    *from_h = q->from >= 0 ? q->from / 3600 : -((-q->from + 3599) / 3600);
    *to_h = q->to >= 0 ? (q->to + 3599) / 3600 : -(-q->to / 3600);
}

typedef struct {
    char key[300];
    eg_usage_row_t row;
} acc_t;

/* One hash's fields into rows: a field and its '#', '<', '>' siblings
 * make one row. */
int eg_usage_rows_from_hash(eg_usage_row_t **rows, size_t *n, size_t *cap, const char *subject,
                            int64_t hour, eg_usage_group_t g, const char *const *fv,
                            const size_t *lens, size_t nfv)
{
    acc_t *acc = calloc(nfv / 2 + 1, sizeof(*acc));
    size_t na = 0;
    int rc = acc ? EG_OK : EG_ENOMEM;
    for (size_t i = 0; rc == EG_OK && i + 1 < nfv; i += 2) {
        const char *f = fv[i];
        size_t fl = lens[i];
        int kind = 0; /* 0 quantity, 1 events, 2 bytes in, 3 bytes out */
        if (fl && (f[0] == '#' || f[0] == '<' || f[0] == '>')) {
            kind = f[0] == '#' ? 1 : f[0] == '<' ? 2 : 3;
            f++;
            fl--;
        }
        if (fl >= sizeof(acc[0].key)) continue;
        size_t k = 0;
        while (k < na && !(strlen(acc[k].key) == fl && memcmp(acc[k].key, f, fl) == 0))
            k++;
        if (k == na) {
            memcpy(acc[na].key, f, fl);
            acc[na].key[fl] = '\0';
            na++;
        }
        char num[64];
        size_t vl = lens[i + 1] < sizeof(num) - 1 ? lens[i + 1] : sizeof(num) - 1;
        memcpy(num, fv[i + 1], vl);
        num[vl] = '\0';
        eg_usage_row_t *r = &acc[k].row;
        if (kind == 0)
            r->quantity += strtod(num, NULL);
        else if (kind == 1)
            r->events += strtoull(num, NULL, 10);
        else if (kind == 2)
            r->bytes_in += strtoull(num, NULL, 10);
        else
            r->bytes_out += strtoull(num, NULL, 10);
    }
    char day[16];
    time_t t = (time_t)(hour * 3600);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    for (size_t k = 0; rc == EG_OK && k < na; k++) {
        /* "<event_type>|<route>|<status class>": the route may hold '|' */
        char *a = strchr(acc[k].key, '|'), *b = strrchr(acc[k].key, '|');
        if (!a || a == b) continue;
        *a = *b = '\0';
        eg_usage_row_t r = acc[k].row;
        r.subject = (char *)subject;
        r.event_type = acc[k].key;
        r.status_class = atoi(b + 1);
        r.group = g == EG_USAGE_GROUP_DAY ? day : g == EG_USAGE_GROUP_ROUTE ? a + 1 : (char *)"";
        rc = eg_usage_rows_add(rows, n, cap, &r);
    }
    free(acc);
    return rc;
}

/* The script's reply for one subject into rows. */
int eg_usage_rows_from_reply(eg_usage_row_t **rows, size_t *n, size_t *cap, const char *subject,
                             eg_usage_group_t g, const void *reply)
{
    const redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) return EG_EIO;
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *h = rep->element[i], *v = rep->element[i + 1];
        if (h->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_ARRAY) return EG_EIO;
        const char **fv = malloc((v->elements + 1) * sizeof(*fv));
        size_t *lens = malloc((v->elements + 1) * sizeof(*lens));
        int rc = fv && lens ? EG_OK : EG_ENOMEM;
        for (size_t k = 0; rc == EG_OK && k < v->elements; k++) {
            if (v->element[k]->type != REDIS_REPLY_STRING)
                rc = EG_EIO;
            else {
                fv[k] = v->element[k]->str;
                lens[k] = v->element[k]->len;
            }
        }
        if (rc == EG_OK)
            rc = eg_usage_rows_from_hash(rows, n, cap, subject, strtoll(h->str, NULL, 10), g, fv,
                                         lens, v->elements);
        free(fv);
        free(lens);
        if (rc != EG_OK) return rc;
    }
    return EG_OK;
}

static redisContext *connect_to(const eg_redis_target_t *t, char *err, size_t errlen)
{
    struct timeval tv = {(time_t)(t->timeout_ms / 1000),
                         (suseconds_t)(t->timeout_ms % 1000 * 1000)};
    redisContext *c = redisConnectWithTimeout(t->host, t->port, tv);
    if (!c || c->err) {
        snprintf(err, errlen, "redis %s:%d: %s", t->host, t->port, c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (t->db) {
        redisReply *rep = redisCommand(c, "SELECT %d", t->db);
        int ok = rep && rep->type != REDIS_REPLY_ERROR;
        if (rep) freeReplyObject(rep);
        if (!ok) {
            snprintf(err, errlen, "redis %s:%d: SELECT %d failed", t->host, t->port, t->db);
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static int one_subject(redisContext *c, const eg_redis_target_t *t, const char *subject, int64_t fh,
                       int64_t th, eg_usage_group_t g, eg_usage_row_t **rows, size_t *n,
                       size_t *cap, char *err, size_t errlen)
{
    redisReply *rep = redisCommand(c, "EVAL %s 0 %s %s %lld %lld", eg_usage_redis_lua, t->prefix,
                                   subject, (long long)fh, (long long)th);
    int rc = eg_usage_rows_from_reply(rows, n, cap, subject, g, rep);
    if (rc == EG_EIO)
        snprintf(err, errlen, "redis %s:%d: %s", t->host, t->port,
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                 : c->errstr[0]                        ? c->errstr
                                                       : "unexpected reply");
    if (rep) freeReplyObject(rep);
    return rc;
}

int eg_usage_redis_query(const eg_redis_target_t *t, const eg_usage_query_t *q,
                         eg_usage_row_t **rows, size_t *n, char *err, size_t errlen)
{
    int64_t fh, th;
    eg_usage_hours(q, &fh, &th);
    eg_usage_row_t *out = NULL;
    size_t cnt = 0, cap = 0;
    *rows = NULL;
    *n = 0;
    redisContext *c = connect_to(t, err, errlen);
    if (!c) return EG_EIO;
    int rc = EG_OK;
    if (q->subject) {
        rc = one_subject(c, t, q->subject, fh, th, q->group, &out, &cnt, &cap, err, errlen);
    } else {
        /* every subject with a key in Redis: SCAN for them, then each one's hours */
        char match[300], cursor[32] = "0";
        snprintf(match, sizeof(match), "%su:{*}:*", t->prefix);
        char **subs = NULL;
        size_t ns = 0, scap = 0;
        do {
            redisReply *rep = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, match);
            if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
                snprintf(err, errlen, "redis %s:%d: SCAN failed", t->host, t->port);
                if (rep) freeReplyObject(rep);
                rc = EG_EIO;
                break;
            }
            snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
            const redisReply *keys = rep->element[1];
            size_t plen = strlen(t->prefix) + 3;
            for (size_t i = 0; rc == EG_OK && i < keys->elements; i++) {
                const char *k = keys->element[i]->str;
                const char *end = strrchr(k, '}');
                if (!k || strlen(k) < plen || !end || end < k + plen) continue;
                size_t sl = (size_t)(end - (k + plen));
                int seen = 0;
                for (size_t s = 0; s < ns && !seen; s++)
                    seen = strlen(subs[s]) == sl && !memcmp(subs[s], k + plen, sl);
                if (seen) continue;
                if (ns == scap) {
                    size_t nc = scap ? scap * 2 : 16;
                    char **p = realloc(subs, nc * sizeof(*p));
                    if (!p) {
                        rc = EG_ENOMEM;
                        break;
                    }
                    subs = p;
                    scap = nc;
                }
                if (!(subs[ns] = strndup(k + plen, sl)))
                    rc = EG_ENOMEM;
                else
                    ns++;
            }
            freeReplyObject(rep);
        } while (rc == EG_OK && strcmp(cursor, "0") != 0);
        for (size_t s = 0; rc == EG_OK && s < ns; s++)
            rc = one_subject(c, t, subs[s], fh, th, q->group, &out, &cnt, &cap, err, errlen);
        for (size_t s = 0; s < ns; s++)
            free(subs[s]);
        free(subs);
    }
    redisFree(c);
    if (rc != EG_OK) {
        if (rc == EG_ENOMEM) snprintf(err, errlen, "out of memory");
        eg_usage_rows_free(out, cnt);
        return rc;
    }
    eg_usage_rows_sort(out, &cnt);
    *rows = out;
    *n = cnt;
    return EG_OK;
}

int eg_usage_redis_quota(const eg_redis_target_t *t, const char *subject, const char *period,
                         long long *used, char *err, size_t errlen)
{
    redisContext *c = connect_to(t, err, errlen);
    if (!c) return EG_EIO;
    redisReply *rep = redisCommand(c, "GET %sq:%s:%s", t->prefix, subject, period);
    int rc = EG_OK;
    if (rep && rep->type == REDIS_REPLY_STRING)
        *used = strtoll(rep->str, NULL, 10);
    else if (rep && rep->type == REDIS_REPLY_NIL)
        *used = 0;
    else {
        snprintf(err, errlen, "redis %s:%d: %s", t->host, t->port,
                 c->errstr[0] ? c->errstr : "unexpected reply");
        rc = EG_EIO;
    }
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return rc;
}
