/* log.c - JSON log lines (see log.h). */
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

struct eg_log_s {
    char *path; /* NULL for stderr */
    int fd;     /* -1 when off */
    pthread_mutex_t lock; /* guards fd swaps on reopen only */
};

int eg_log_open(const char *path, eg_log_t **out)
{
    eg_log_t *l = calloc(1, sizeof(*l));
    if (!l) return EG_ENOMEM;
    pthread_mutex_init(&l->lock, NULL);
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
        free(l);
        return EG_ENOMEM;
    }
    l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (l->fd < 0) {
        free(l->path);
        free(l);
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

void eg_logline_int(eg_logline_t *l, const char *k, long long v)
{
    char tmp[24];
    key(l, k);
    int n = snprintf(tmp, sizeof(tmp), "%lld", v);
    put(l, tmp, (size_t)n);
}

void eg_logline_path(eg_logline_t *l, const char *k, const char *t, size_t n, char *const *redact,
                     size_t nredact)
{
    char out[1024];
    size_t o = 0;
    const char *q = memchr(t, '?', n);
    size_t plen = q ? (size_t)(q - t) : n;
    if (plen > 600) plen = 600;
    memcpy(out, t, plen);
    o = plen;
    if (q) {
        const char *p = q + 1, *end = t + n;
        out[o++] = '?';
        while (p < end && o < sizeof(out) - 20) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *pe = amp ? amp : end;
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            size_t nlen = eq ? (size_t)(eq - p) : (size_t)(pe - p);
            int hide = 0;
            for (size_t i = 0; i < nredact && eq; i++)
                if (strlen(redact[i]) == nlen && memcmp(redact[i], p, nlen) == 0) hide = 1;
            size_t take = hide ? nlen + 1 : (size_t)(pe - p);
            if (o + take + 12 >= sizeof(out)) break;
            memcpy(out + o, p, take);
            o += take;
            if (hide) {
                memcpy(out + o, "[REDACTED]", 10);
                o += 10;
            }
            if (amp) out[o++] = '&';
            p = amp ? amp + 1 : end;
        }
    }
    key(l, k);
    escaped(l, out, o);
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
