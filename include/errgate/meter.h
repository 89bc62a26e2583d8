/* meter.h - the metering API's request document, parsed and checked (pure).
 *
 * A batch is a JSON:API document {"data": [event, ...]} of 1 to max_events
 * events, each {id, type: "usage_events", attributes: {user_id, event_type,
 * quantity, timestamp, metadata}}. eg_meter_parse reads it with the
 * library's strict JSON reader (the validation stage's: the same documents
 * as jansson, positions for invalid JSON) and checks every event against
 * the rules, one verdict per event, so that a batch can be accepted in part:
 * what the gateway still has to decide (does user_id exist, was the id seen
 * before) needs the key store and the usage store, and is the daemon's
 * (src/stages/meter_api.c).
 *
 * Each rejected event carries one code (the first rule it breaks, in the
 * order id, type, attributes, user_id, event_type, quantity, timestamp,
 * metadata) and a JSON pointer to the member at fault, e.g.
 * "/data/3/attributes/quantity". Values are never coerced: a quantity sent
 * as a string ("5") is invalid_quantity, as is 0 or a negative number.
 */
#ifndef ERRGATE_METER_H
#define ERRGATE_METER_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define EG_METER_MAX_EVENTS 1000 /* the most a batch may hold (and the default) */
#define EG_METER_ID_MAX     255  /* bytes of an event id or a user_id */
#define EG_METER_TYPE_MAX   128  /* bytes of an event type */

/* What a batch is checked against. event_types: exact names, or a pattern
 * "prefix.*" that matches prefix. followed by 1 to 64 of [A-Za-z0-9_.:-]
 * ("custom.*" matches "custom.gpu_hours"). */
typedef struct {
    const char *const *event_types;
    size_t nevent_types;
    int64_t max_future_s; /* a timestamp at most this far ahead of now (default 60) */
    int64_t max_age_s;    /* and at most this far behind (default 7 days) */
    size_t max_metadata;  /* bytes of metadata's JSON text (default 4096) */
    size_t max_events;    /* events per batch, 1..EG_METER_MAX_EVENTS */
} eg_meter_rules_t;

/* The defaults above, with the default event types (api.request,
 * compute.minutes, storage.gb, bandwidth.gb, custom.*). */
void eg_meter_rules_default(eg_meter_rules_t *r);

/* One event of a batch. Strings are NUL-terminated, owned by the batch, and
 * NULL where the event did not carry a valid value. */
typedef struct {
    char *id;
    char *user_id;
    char *event_type;
    double quantity;
    int64_t ts;     /* Unix seconds (fractions dropped) */
    char *metadata; /* the object's JSON text as sent, NULL when absent */
    /* the verdict: code NULL while the event is acceptable; a catalog code
     * (validation_error, invalid_event_type, invalid_quantity,
     * invalid_timestamp; the daemon adds user_not_found, duplicate_event)
     * with the member's pointer and a sentence saying what is wrong */
    const char *code;
    char pointer[48];
    char message[200];
} eg_meter_event_t;

typedef struct {
    eg_meter_event_t *ev;
    size_t n;
    size_t rejected; /* events with a code */
} eg_meter_batch_t;

/* Why a whole document was refused (no event is looked at then). */
typedef struct {
    const char *code; /* "invalid_json" (400) or "validation_error" */
    char pointer[16]; /* "" (the document) or "/data" */
    char message[200];
    long position; /* invalid_json: byte offset, line and column as jansson counts them */
    int line, column;
} eg_meter_doc_error_t;

/* Parses and checks body[0..len) at Unix time now. EG_OK with *out (free it
 * with eg_meter_batch_free) when the document is a batch, whatever its
 * events' verdicts; EG_EPARSE with *err when the document itself is
 * refused (invalid JSON, no data array, 0 or more than max_events events);
 * EG_ENOMEM. */
int eg_meter_parse(const eg_meter_rules_t *rules, const char *body, size_t len, int64_t now,
                   eg_meter_batch_t *out, eg_meter_doc_error_t *err);
void eg_meter_batch_free(eg_meter_batch_t *b);

/* Marks event i rejected with code, member (appended to "/data/<i>") and
 * message; counts it once. For the daemon's own checks. */
void eg_meter_reject(eg_meter_batch_t *b, size_t i, const char *code, const char *member,
                     const char *message);

/* How many of s's n bytes (valid UTF-8) to keep to show at most max bytes
 * without cutting a character (messages quote what was sent). */
size_t eg_meter_utf8_cut(const char *s, size_t n, size_t max);

/* 1 when type[0..n) is one of the rules' event types. */
int eg_meter_type_allowed(const eg_meter_rules_t *r, const char *type, size_t n);

/* An RFC 3339 date-time (T or t, fraction optional, Z or an offset; leap
 * second 60 read as 59) to Unix seconds: EG_OK, or EG_EPARSE. */
int eg_meter_parse_time(const char *s, size_t n, int64_t *out);

#endif
