/* webhook.c - the webhook sender thread (see webhook.h).
 *
 * The queue is a mutex and a condition variable: it is touched once per
 * alert transition, never per request. The client's sleeps (its backoff)
 * wait on the same condition variable, so stopping the gateway does not
 * wait out a backoff. Each delivery is signed when it is first sent: the
 * signature's timestamp is the first attempt's, and the retries (within
 * minutes) carry the same one, as their Idempotency-Key is the same.
 */
#include "webhook.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/client.h"
#include "errgate/monitor.h"

#define QUEUE_MAX 256

typedef struct item_s {
    struct item_s *next;
    eg_gw_t *gw;
    const char *event;
    char *json, *am;
} item_t;

struct eg_webhooks_s {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    item_t *head, *tail;
    size_t nqueued;
    int stop;
    eg_log_t *errors;
    eg_webhook_stats_t st;
};

static void item_free(item_t *it)
{
    eg_gw_unref(it->gw);
    free(it->json);
    free(it->am);
    free(it);
}

/* The URL as logged: scheme, host and path, never a query (it may hold a token). */
static void url_for_log(const char *url, char *out, size_t cap)
{
    size_t n = strcspn(url, "?#");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), url);
}

typedef struct {
    eg_webhooks_t *w;
    const char *url;
} attempt_ctx_t;

/* The client's sleeper: waits on the queue's condition so that stopping
 * ends a backoff at once. */
static void wait_ms(void *ctx, uint64_t ms)
{
    attempt_ctx_t *c = ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->w->lock);
    while (!c->w->stop && pthread_cond_timedwait(&c->w->cond, &c->w->lock, &ts) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&c->w->lock);
}

static uint64_t now_unix_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Each failed attempt: one line, and counted when it will be retried. */
static void on_attempt(void *ctx, const eg_client_attempt_t *a)
{
    attempt_ctx_t *c = ctx;
    char url[256];
    url_for_log(c->url, url, sizeof(url));
    eg_logline_t l;
    eg_logline_begin(&l, "alert");
    eg_logline_str(&l, "event", "webhook_attempt_failed", 22);
    eg_logline_str(&l, "url", url, strlen(url));
    eg_logline_int(&l, "attempt", a->attempt);
    eg_logline_int(&l, "status", a->status);
    if (a->transport_error)
        eg_logline_str(&l, "transport_error", a->transport_error, strlen(a->transport_error));
    const char *what = a->decision.action == EG_RETRY_WAIT ? "retry" : "stop";
    eg_logline_str(&l, "decision", what, strlen(what));
    if (a->decision.action == EG_RETRY_WAIT)
        eg_logline_int(&l, "delay_ms", (long long)a->decision.delay_ms);
    if (a->decision.reason)
        eg_logline_str(&l, "reason", a->decision.reason, strlen(a->decision.reason));
    eg_logline_end(c->w->errors, &l);
    if (a->decision.action == EG_RETRY_WAIT) {
        pthread_mutex_lock(&c->w->lock);
        c->w->st.retried++;
        pthread_mutex_unlock(&c->w->lock);
    }
}

static void deliver(eg_webhooks_t *w, const item_t *it, const eg_webhook_cfg_t *h)
{
    const char *body = h->alertmanager ? it->am : it->json;
    size_t blen = strlen(body);
    char sig[EG_WEBHOOK_SIG_MAX + 32] = "", event[64], ua[64];
    const char *headers[5] = {"Content-Type: application/json", event, ua, NULL, NULL};
    snprintf(event, sizeof(event), "X-Errgate-Event: %s", it->event);
    snprintf(ua, sizeof(ua), "User-Agent: errgate/%s", EG_VERSION);
    if (h->secret) {
        char v[EG_WEBHOOK_SIG_MAX];
        if (eg_webhook_signature(h->secret, h->secret_len, (long long)time(NULL), body, blen, v) ==
            EG_OK) {
            snprintf(sig, sizeof(sig), "X-Errgate-Signature: %s", v);
            headers[3] = sig;
        }
    }
    eg_client_request_t req = {"POST", h->url, headers, body, blen};
    eg_client_options_t o;
    eg_client_options_default(&o);
    attempt_ctx_t ctx = {w, h->url};
    o.policy.max_attempts = h->max_attempts;
    o.policy.base_ms = 500;
    o.policy.cap_ms = 30000;
    o.timeout_ms = (long)h->timeout_ms;
    o.sleep_ms = wait_ms;
    o.now_ms = now_unix_ms;
    o.log = on_attempt;
    o.ctx = &ctx;
    eg_client_response_t resp;
    memset(&resp, 0, sizeof(resp));
    int rc = eg_client_request(&req, &o, &resp);
    int ok = rc == EG_OK && resp.status >= 200 && resp.status < 300;
    pthread_mutex_lock(&w->lock);
    if (ok)
        w->st.delivered++;
    else
        w->st.failed++;
    pthread_mutex_unlock(&w->lock);
    if (!ok) {
        char url[256];
        url_for_log(h->url, url, sizeof(url));
        eg_logline_t l;
        eg_logline_begin(&l, "alert");
        eg_logline_str(&l, "event", "webhook_failed", 14);
        eg_logline_str(&l, "alert_event", it->event, strlen(it->event));
        eg_logline_str(&l, "url", url, strlen(url));
        eg_logline_int(&l, "status", resp.status);
        eg_logline_int(&l, "attempts", resp.attempts);
        const char *why = rc != EG_OK               ? eg_strerror(rc)
                          : resp.transport_error[0] ? resp.transport_error
                          : resp.stop_reason        ? resp.stop_reason
                                                    : "not a 2xx answer";
        eg_logline_str(&l, "why", why, strlen(why));
        eg_logline_end(w->errors, &l);
    }
    eg_client_response_free(&resp);
}

static void *sender_main(void *arg)
{
    eg_webhooks_t *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->stop && !w->head)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->stop) break;
        item_t *it = w->head;
        w->head = it->next;
        if (!w->head) w->tail = NULL;
        w->nqueued--;
        pthread_mutex_unlock(&w->lock);
        const eg_config_t *cfg = it->gw->cfg;
        for (size_t i = 0; i < cfg->nwebhooks; i++)
            deliver(w, it, &cfg->webhooks[i]);
        item_free(it);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int eg_webhooks_new(eg_log_t *errors, eg_webhooks_t **out)
{
    eg_webhooks_t *w = calloc(1, sizeof(*w));
    if (!w) return EG_ENOMEM;
    w->errors = errors;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, sender_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return EG_EIO;
    }
    *out = w;
    return EG_OK;
}

int eg_webhooks_post(eg_webhooks_t *w, eg_gw_t *gw, const char *event, char *json, char *am)
{
    if (!w || !gw->cfg->nwebhooks || !json || !am) {
        free(json);
        free(am);
        return gw->cfg->nwebhooks ? EG_ENOMEM : EG_OK;
    }
    item_t *it = calloc(1, sizeof(*it));
    if (!it) {
        free(json);
        free(am);
        return EG_ENOMEM;
    }
    it->gw = eg_gw_ref(gw);
    it->event = event;
    it->json = json;
    it->am = am;
    pthread_mutex_lock(&w->lock);
    int full = w->nqueued >= QUEUE_MAX;
    if (full) {
        w->st.dropped++;
    } else {
        if (w->tail)
            w->tail->next = it;
        else
            w->head = it;
        w->tail = it;
        w->nqueued++;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    if (full) {
        item_free(it);
        eg_logline_t l;
        eg_logline_begin(&l, "alert");
        eg_logline_str(&l, "event", "webhook_dropped", 15);
        eg_logline_str(&l, "why", "the webhook queue is full", 25);
        eg_logline_end(w->errors, &l);
        return EG_ERANGE;
    }
    return EG_OK;
}

void eg_webhooks_stats(eg_webhooks_t *w, eg_webhook_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!w) return;
    pthread_mutex_lock(&w->lock);
    *out = w->st;
    out->queued = w->nqueued;
    pthread_mutex_unlock(&w->lock);
}

void eg_webhooks_free(eg_webhooks_t *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    while (w->head) {
        item_t *it = w->head;
        w->head = it->next;
        item_free(it);
    }
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
