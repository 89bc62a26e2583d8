/* webhook.h - delivering alert transitions to the configured webhooks.
 *
 * One thread of its own with a bounded queue: the main loop (the monitor)
 * hands over an event and returns at once; the thread POSTs it to every
 * webhook of the configuration the event was raised under, signed, with
 * the project's retrying client (liberrgate-client: backoff with full
 * jitter, Retry-After, an Idempotency-Key that stays the same across
 * attempts). No worker ever waits on it, and a webhook that is down delays
 * only the events behind it.
 */
#ifndef EG_WEBHOOK_H
#define EG_WEBHOOK_H

#include <stdint.h>

#include "gateway.h"

typedef struct eg_webhooks_s eg_webhooks_t;

/* Starts the thread; errors: the error log (attempts that failed, drops). */
int eg_webhooks_new(eg_log_t *errors, eg_webhooks_t **out);

/* Queues an event for gw's webhooks (gw is referenced until sent). json and
 * am (the Alertmanager body) are taken, freed after. event:
 * "alert.firing" or "alert.resolved" (static). Drops it with a log line
 * when the queue is full (EG_ERANGE), takes nothing when gw has no
 * webhooks. */
int eg_webhooks_post(eg_webhooks_t *w, eg_gw_t *gw, const char *event, char *json, char *am);

typedef struct {
    uint64_t delivered; /* deliveries a webhook answered with 2xx */
    uint64_t failed;    /* deliveries that gave up */
    uint64_t retried;   /* attempts after a failed one */
    uint64_t dropped;   /* events the full queue refused */
    uint64_t queued;    /* events waiting now */
} eg_webhook_stats_t;

void eg_webhooks_stats(eg_webhooks_t *w, eg_webhook_stats_t *out);

/* Stops the thread (pending waits end at once; an attempt under way ends
 * by its timeout) and frees everything, events not sent included. */
void eg_webhooks_free(eg_webhooks_t *w);

#endif
