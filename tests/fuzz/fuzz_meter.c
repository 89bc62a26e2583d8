/* fuzz_meter.c - any bytes through eg_meter_parse (the metering API's batch
 * document, lib/meter.c): it never crashes or leaks; a batch it accepts has
 * 1..max_events events, rejected counts exactly the events with a code, each
 * pointer starts with its own "/data/<i>", and each accepted event has every
 * value the daemon uses (id, user_id, event_type, quantity > 0, a timestamp
 * inside the window). The body is also read as an RFC 3339 time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/meter.h"

#define NOW 1796673600LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eg_meter_rules_t r;
    eg_meter_rules_default(&r);
    r.max_events = 50;
    eg_meter_batch_t b;
    eg_meter_doc_error_t err;
    int64_t t;
    (void)eg_meter_parse_time((const char *)data, size, &t);
    int rc = eg_meter_parse(&r, (const char *)data, size, NOW, &b, &err);
    if (rc == EG_EPARSE) {
        if (!err.code) abort();
        return 0;
    }
    if (rc != EG_OK) return 0;
    if (b.n == 0 || b.n > r.max_events) abort();
    size_t rejected = 0;
    for (size_t i = 0; i < b.n; i++) {
        const eg_meter_event_t *e = &b.ev[i];
        char want[32];
        snprintf(want, sizeof(want), "/data/%zu", i);
        if (e->code) {
            rejected++;
            if (strncmp(e->pointer, want, strlen(want)) != 0) abort();
            continue;
        }
        if (!e->id || !e->user_id || !e->event_type || !(e->quantity > 0) ||
            e->ts > NOW + r.max_future_s || e->ts < NOW - r.max_age_s)
            abort();
        if (!eg_meter_type_allowed(&r, e->event_type, strlen(e->event_type))) abort();
    }
    if (rejected != b.rejected) abort();
    eg_meter_batch_free(&b);
    return 0;
}
