/* log.c - JSON log lines (see log.h).
 *
 * Rate limiting keeps a small table of keys (error codes), each with the
 * second of its last written line and the count dropped since; one mutex
 * guards it, taken only by lines that go through eg_log_admit (gateway
 * errors), never by access lines. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "errgate/common.h"
#include "jsonw.h"
#include "redact.h"

/* One rate-limited key: the second of its last line and what was dropped since. */
typedef struct {
    char key[64];
    long long sec;
    uint64_t dropped;
} rl_slot_t;

#define RL_SLOTS 64 /* keys are error codes: a catalog's worth */

struct eg_log_s {
    char *path;              /* NULL for stderr */
    int fd;                  /* -1 when off */
    pthread_mutex_t lock;    /* guards fd swaps on reopen only */
    pthread_mutex_t rl_lock; /* guards rl */
    rl_slot_t rl[RL_SLOTS];
    size_t nrl;
};

int eg_log_open(const char *path, eg_log_t **out)
{
    eg_log_t *l = calloc(1, sizeof(*l));
    if (!l) return EG_ENOMEM;
    pthread_mutex_init(&l->lock, NULL);
    pthread_mutex_init(&l->rl_lock, NULL);
    l->fd = -1;
    if (strcmp(path, "off") == 0) {
        *out = l;
        return EG_OK;
    }
    if (strcmp(path, "stderr") == 0) {
        l->fd = STDERR_FILENO;
        *out = l;
        return EG_OK;
    }
    if (!(l->path = strdup(path))) {
        eg_log_close(l);
        return EG_ENOMEM;
    }
    l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (l->fd < 0) {
        eg_log_close(l);
        return EG_EIO;
    }
    *out = l;
    return EG_OK;
}

int eg_log_reopen(eg_log_t *l)
{
    if (!l || !l->path) return EG_OK;
    int fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return EG_EIO;
    pthread_mutex_lock(&l->lock);
    int old = l->fd;
    l->fd = fd;
    pthread_mutex_unlock(&l->lock);
    if (old >= 0) close(old);
    return EG_OK;
}

void eg_log_close(eg_log_t *l)
{
    if (!l) return;
    if (l->path && l->fd >= 0) close(l->fd);
    pthread_mutex_destroy(&l->lock);
    pthread_mutex_destroy(&l->rl_lock);
    free(l->path);
    free(l);
}

int eg_log_enabled(const eg_log_t *l)
{
    return l && l->fd >= 0;
}

static void put(eg_logline_t *l, const char *s, size_t n)
{
    /* keep 3 bytes for "}\n" */
    if (l->len + n + 3 > sizeof(l->buf)) n = sizeof(l->buf) - 3 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void key(eg_logline_t *l, const char *k)
{
    if (!l->first) put(l, ",", 1);
    l->first = 0;
    put(l, "\"", 1);
    put(l, k, strlen(k));
    put(l, "\":", 2);
}

static void escaped(eg_logline_t *l, const char *v, size_t n)
{
    char tmp[1024];
    eg_jsonw_t w = {tmp, sizeof(tmp), 0};
    eg_jsonw_str(&w, v, n > 400 ? 400 : n);
    size_t len = w.pos < sizeof(tmp) ? w.pos : sizeof(tmp) - 1;
    put(l, tmp, len);
}

void eg_logline_begin(eg_logline_t *l, const char *kind)
{
    struct timeval tv;
    struct tm tm;
    char ts[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%06ldZ", (long)tv.tv_usec);
    l->len = 0;
    l->first = 1;
    put(l, "{", 1);
    key(l, "ts");
    escaped(l, ts, strlen(ts));
    key(l, "kind");
    escaped(l, kind, strlen(kind));
}

void eg_logline_str(eg_logline_t *l, const char *k, const char *v, size_t n)
{
    if (!v) return;
    key(l, k);
    escaped(l, v, n);
}

void eg_logline_object(eg_logline_t *l, const char *k)
{
    key(l, k);
    put(l, "{", 1);
    l->first = 1;
}

void eg_logline_object_end(eg_logline_t *l)
{
    put(l, "}", 1);
    l->first = 0;
}

void eg_logline_int(eg_logline_t *l, const char *k, long long v)
{
    char tmp[24];
    key(l, k);
    int n = snprintf(tmp, sizeof(tmp), "%lld", v);
    put(l, tmp, (size_t)n);
}

void eg_logline_num(eg_logline_t *l, const char *k, double v)
{
    char tmp[32];
    key(l, k);
    int n = snprintf(tmp, sizeof(tmp), "%.6g", v == v && v - v == 0 ? v : 0.0);
    put(l, tmp, (size_t)n);
}

void eg_logline_path(eg_logline_t *l, const char *k, const char *t, size_t n, char *const *redact,
                     size_t nredact)
{
    char out[1024];
    size_t o = eg_redact_target(t, n, redact, nredact, out, sizeof(out));
    key(l, k);
    escaped(l, out, o);
}

static long long now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

static int same_key(const rl_slot_t *x, const char *key, size_t klen)
{
    return strncmp(x->key, key, klen) == 0 && x->key[klen] == '\0';
}

int eg_log_admit(eg_log_t *log, const char *key, uint64_t *suppressed)
{
    *suppressed = 0;
    if (!eg_log_enabled(log)) return 0;
    long long now = now_sec();
    size_t klen = strnlen(key, sizeof(log->rl[0].key) - 1);
    int admit = 1;
    pthread_mutex_lock(&log->rl_lock);
    rl_slot_t *s = NULL, *idle = NULL;
    for (size_t i = 0; i < log->nrl && !s; i++) {
        rl_slot_t *x = &log->rl[i];
        if (same_key(x, key, klen))
            s = x;
        else if (!x->dropped && x->sec < now && (!idle || x->sec < idle->sec))
            idle = x;
    }
    if (!s && (log->nrl < RL_SLOTS || idle)) {
        /* a new key, in a free slot or one quiet since an earlier second */
        s = log->nrl < RL_SLOTS ? &log->rl[log->nrl++] : idle;
        memcpy(s->key, key, klen);
        s->key[klen] = '\0';
        s->dropped = 0;
        s->sec = now - 1;
    }
    if (s && s->sec == now) {
        s->dropped++;
        admit = 0;
    } else if (s) {
        *suppressed = s->dropped;
        s->dropped = 0;
        s->sec = now;
    } /* else every slot has drops of this second: the line is written, never lost unseen */
    pthread_mutex_unlock(&log->rl_lock);
    return admit;
}

void eg_log_flush_suppressed(eg_log_t *log, const char *kind, int all)
{
    if (!eg_log_enabled(log)) return;
    struct {
        char key[64];
        uint64_t n;
    } out[RL_SLOTS];
    size_t nout = 0;
    long long now = now_sec();
    pthread_mutex_lock(&log->rl_lock);
    for (size_t i = 0; i < log->nrl; i++) {
        rl_slot_t *x = &log->rl[i];
        if (!x->dropped || (!all && x->sec >= now)) continue;
        memcpy(out[nout].key, x->key, sizeof(x->key));
        out[nout++].n = x->dropped;
        x->dropped = 0;
    }
    pthread_mutex_unlock(&log->rl_lock);
    for (size_t i = 0; i < nout; i++) {
        eg_logline_t l;
        eg_logline_begin(&l, kind);
        eg_logline_str(&l, "code", out[i].key, strlen(out[i].key));
        eg_logline_int(&l, "suppressed", (long long)out[i].n);
        eg_logline_end(log, &l);
    }
}

void eg_logline_end(eg_log_t *log, eg_logline_t *l)
{
    if (!eg_log_enabled(log)) return;
    memcpy(l->buf + l->len, "}\n", 2);
    l->len += 2;
    pthread_mutex_lock(&log->lock);
    ssize_t w = write(log->fd, l->buf, l->len);
    pthread_mutex_unlock(&log->lock);
    (void)w; /* a full disk must not stop the gateway */
}
