/* meter.c - the metering API's batch document, parsed and checked (see
 * errgate/meter.h).
 *
 * One pass over the token tape of lib/jsonr.c (no jansson tree: a batch of
 * 1000 events is about 15,000 tokens). Each event's strings are copied out
 * unescaped, because the daemon hands them to another thread (SQLite) or
 * to Redis after the request buffer may have moved. Checks never stop at
 * the first bad event: every event gets its own verdict.
 */
#include "errgate/meter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil.h"
#include "jsonr.h"

static const char *const default_types[] = {"api.request", "compute.minutes", "storage.gb",
                                            "bandwidth.gb", "custom.*"};

void eg_meter_rules_default(eg_meter_rules_t *r)
{
    r->event_types = default_types;
    r->nevent_types = sizeof(default_types) / sizeof(default_types[0]);
    r->max_future_s = 60;
    r->max_age_s = 7 * 86400;
    r->max_metadata = 4096;
    r->max_events = EG_METER_MAX_EVENTS;
}

static int suffix_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == ':' || ch == '-';
}

int eg_meter_type_allowed(const eg_meter_rules_t *r, const char *type, size_t n)
{
    for (size_t i = 0; i < r->nevent_types; i++) {
        const char *p = r->event_types[i];
        size_t pl = strlen(p);
        if (pl >= 2 && p[pl - 2] == '.' && p[pl - 1] == '*') {
            /* "prefix.*": the prefix and its dot, then a short safe suffix */
            size_t keep = pl - 1;
            if (n <= keep || n - keep > 64 || memcmp(type, p, keep) != 0) continue;
            size_t j = keep;
            while (j < n && suffix_char(type[j]))
                j++;
            if (j == n) return 1;
        } else if (pl == n && memcmp(p, type, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static int digits(const char *s, size_t n, size_t at, size_t k, int *out)
{
    if (at + k > n) return 0;
    int v = 0;
    for (size_t i = 0; i < k; i++) {
        char ch = s[at + i];
        if (ch < '0' || ch > '9') return 0;
        v = v * 10 + (ch - '0');
    }
    *out = v;
    return 1;
}

int eg_meter_parse_time(const char *s, size_t n, int64_t *out)
{
    int Y, M, D, h, m, sec;
    if (!digits(s, n, 0, 4, &Y) || n < 20 || s[4] != '-' || !digits(s, n, 5, 2, &M) ||
        s[7] != '-' || !digits(s, n, 8, 2, &D) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s, n, 11, 2, &h) || s[13] != ':' || !digits(s, n, 14, 2, &m) || s[16] != ':' ||
        !digits(s, n, 17, 2, &sec))
        return EG_EPARSE;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || (M == 2 && D == 29 && !leap) || h > 23 ||
        m > 59 || sec > 60)
        return EG_EPARSE;
    size_t i = 19;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f) return EG_EPARSE;
    }
    int off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (!digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
            !digits(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
            return EG_EPARSE;
        off = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return EG_EPARSE;
    }
    if (i != n) return EG_EPARSE;
    if (sec == 60) sec = 59; /* a leap second: Unix time has none */
    *out = eg__days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec - off;
    return EG_OK;
}

size_t eg_meter_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max) return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

void eg_meter_reject(eg_meter_batch_t *b, size_t i, const char *code, const char *member,
                     const char *message)
{
    eg_meter_event_t *e = &b->ev[i];
    if (!e->code) b->rejected++;
    e->code = code;
    snprintf(e->pointer, sizeof(e->pointer), "/data/%zu%s", i, member);
    snprintf(e->message, sizeof(e->message), "%s", message);
}

/* A string token's value, unescaped, as a new NUL-terminated string. */
static char *dup_str(const eg_jr_doc_t *d, const eg_jr_tok_t *t)
{
    char *s = malloc((size_t)t->len + 1);
    if (!s) return NULL;
    size_t n = t->escaped ? eg_jr_str(d, t, s, t->len) : t->len;
    if (!t->escaped) memcpy(s, d->text + t->off, n);
    s[n] = '\0';
    return s;
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* A string member 1..EG_METER_ID_MAX bytes without control characters:
 * EG_OK with *out, EG_EINVAL (a sentence in why), EG_ENOMEM. */
static int id_member(const eg_jr_doc_t *d, const eg_jr_tok_t *v, const char *name, char **out,
                     char *why, size_t whylen)
{
    if (!v) {
        snprintf(why, whylen, "%s is required.", name);
        return EG_EINVAL;
    }
    if (v->type != EG_JR_STRING) {
        snprintf(why, whylen, "%s must be a string.", name);
        return EG_EINVAL;
    }
    char *s = dup_str(d, v);
    if (!s) return EG_ENOMEM;
    size_t n = strlen(s);
    if (n == 0 || n > EG_METER_ID_MAX || has_control(s)) {
        snprintf(why, whylen, "%s must be 1 to %d characters, without control characters.", name,
                 EG_METER_ID_MAX);
        free(s);
        return EG_EINVAL;
    }
    *out = s;
    return EG_OK;
}

/* Checks event i (token ev) into b->ev[i]. */
static int check_event(const eg_meter_rules_t *r, const eg_jr_doc_t *d, const eg_jr_tok_t *ev,
                       size_t i, int64_t now, eg_meter_batch_t *b)
{
    eg_meter_event_t *e = &b->ev[i];
    char why[200];
    int rc;
    if (ev->type != EG_JR_OBJECT) {
        eg_meter_reject(b, i, "validation_error", "", "An event must be an object.");
        return EG_OK;
    }
    if ((rc = id_member(d, eg_jr_get(d, ev, "id", 2), "id", &e->id, why, sizeof(why)))) {
        if (rc == EG_ENOMEM) return rc;
        eg_meter_reject(b, i, "validation_error", "/id", why);
        return EG_OK;
    }
    const eg_jr_tok_t *t = eg_jr_get(d, ev, "type", 4);
    if (!t || t->type != EG_JR_STRING || !eg_jr_str_eq(d, t, "usage_events", 12)) {
        eg_meter_reject(b, i, "validation_error", "/type", "type must be \"usage_events\".");
        return EG_OK;
    }
    const eg_jr_tok_t *a = eg_jr_get(d, ev, "attributes", 10);
    if (!a || a->type != EG_JR_OBJECT) {
        eg_meter_reject(b, i, "validation_error", "/attributes", "attributes must be an object.");
        return EG_OK;
    }
    if ((rc = id_member(d, eg_jr_get(d, a, "user_id", 7), "user_id", &e->user_id, why,
                        sizeof(why)))) {
        if (rc == EG_ENOMEM) return rc;
        eg_meter_reject(b, i, "validation_error", "/attributes/user_id", why);
        return EG_OK;
    }
    t = eg_jr_get(d, a, "event_type", 10);
    if (!t || t->type != EG_JR_STRING) {
        eg_meter_reject(b, i, "invalid_event_type", "/attributes/event_type",
                        t ? "event_type must be a string." : "event_type is required.");
        return EG_OK;
    }
    if (!(e->event_type = dup_str(d, t))) return EG_ENOMEM;
    size_t tl = strlen(e->event_type);
    if (tl > EG_METER_TYPE_MAX || !eg_meter_type_allowed(r, e->event_type, tl)) {
        snprintf(why, sizeof(why), "Unknown event type '%.*s'.",
                 (int)eg_meter_utf8_cut(e->event_type, tl, 64),
                 has_control(e->event_type) ? "?" : e->event_type);
        eg_meter_reject(b, i, "invalid_event_type", "/attributes/event_type", why);
        return EG_OK;
    }
    t = eg_jr_get(d, a, "quantity", 8);
    if (!t || (t->type != EG_JR_INT && t->type != EG_JR_REAL)) {
        eg_meter_reject(b, i, "invalid_quantity", "/attributes/quantity",
                        !t                        ? "quantity is required."
                        : t->type == EG_JR_STRING ? "quantity must be a JSON number, not a string."
                                                  : "quantity must be a number.");
        return EG_OK;
    }
    e->quantity = t->type == EG_JR_INT ? (double)t->ival : t->dval;
    if (!(e->quantity > 0) || !isfinite(e->quantity)) {
        eg_meter_reject(b, i, "invalid_quantity", "/attributes/quantity",
                        "quantity must be greater than 0.");
        return EG_OK;
    }
    t = eg_jr_get(d, a, "timestamp", 9);
    if (!t || t->type != EG_JR_STRING || t->escaped ||
        eg_meter_parse_time(d->text + t->off, t->len, &e->ts) != EG_OK) {
        eg_meter_reject(b, i, "invalid_timestamp", "/attributes/timestamp",
                        t ? "timestamp must be an RFC 3339 date-time such as "
                            "2026-12-07T20:00:00Z."
                          : "timestamp is required.");
        return EG_OK;
    }
    if (e->ts > now + r->max_future_s) {
        snprintf(why, sizeof(why), "timestamp is more than %lld seconds in the future.",
                 (long long)r->max_future_s);
        eg_meter_reject(b, i, "invalid_timestamp", "/attributes/timestamp", why);
        return EG_OK;
    }
    if (e->ts < now - r->max_age_s) {
        snprintf(why, sizeof(why), "timestamp is more than %lld seconds old.",
                 (long long)r->max_age_s);
        eg_meter_reject(b, i, "invalid_timestamp", "/attributes/timestamp", why);
        return EG_OK;
    }
    t = eg_jr_get(d, a, "metadata", 8);
    if (t && t->type != EG_JR_NULL) {
        if (t->type != EG_JR_OBJECT) {
            eg_meter_reject(b, i, "validation_error", "/attributes/metadata",
                            "metadata must be an object.");
            return EG_OK;
        }
        if (t->len > r->max_metadata) {
            snprintf(why, sizeof(why), "metadata is larger than %zu bytes.", r->max_metadata);
            eg_meter_reject(b, i, "validation_error", "/attributes/metadata", why);
            return EG_OK;
        }
        if (!(e->metadata = malloc((size_t)t->len + 1))) return EG_ENOMEM;
        memcpy(e->metadata, d->text + t->off, t->len);
        e->metadata[t->len] = '\0';
    }
    return EG_OK;
}

static int doc_error(eg_meter_doc_error_t *err, const char *pointer, const char *msg)
{
    err->code = "validation_error";
    snprintf(err->pointer, sizeof(err->pointer), "%s", pointer);
    snprintf(err->message, sizeof(err->message), "%s", msg);
    return EG_EPARSE;
}

int eg_meter_parse(const eg_meter_rules_t *rules, const char *body, size_t len, int64_t now,
                   eg_meter_batch_t *out, eg_meter_doc_error_t *err)
{
    memset(err, 0, sizeof(*err));
    eg_jr_doc_t d;
    int rc = eg_jr_parse(&d, body, len);
    if (rc == EG_EPARSE) {
        err->code = "invalid_json";
        snprintf(err->message, sizeof(err->message), "The body is not valid JSON.");
        err->position = d.position;
        err->line = d.line;
        err->column = d.column;
        eg_jr_free(&d);
        return EG_EPARSE;
    }
    if (rc != EG_OK) {
        eg_jr_free(&d);
        return rc;
    }
    const eg_jr_tok_t *data = eg_jr_get(&d, &d.toks[0], "data", 4);
    if (d.toks[0].type != EG_JR_OBJECT) {
        rc = doc_error(err, "", "The body must be a JSON:API document: {\"data\": [events]}.");
    } else if (!data || data->type != EG_JR_ARRAY) {
        rc = doc_error(err, "/data", "data must be an array of usage_events.");
    } else if (data->count == 0 || data->count > rules->max_events) {
        char m[200];
        snprintf(m, sizeof(m), "A batch holds 1 to %zu events; this one has %u.", rules->max_events,
                 data->count);
        rc = doc_error(err, "/data", m);
    }
    if (rc != EG_OK) {
        eg_jr_free(&d);
        return rc;
    }
    eg_meter_batch_t b = {calloc(data->count, sizeof(eg_meter_event_t)), data->count, 0};
    if (!b.ev) {
        eg_jr_free(&d);
        return EG_ENOMEM;
    }
    const eg_jr_tok_t *ev = data + 1;
    for (size_t i = 0; i < b.n && rc == EG_OK; i++) {
        rc = check_event(rules, &d, ev, i, now, &b);
        ev = d.toks + ev->end;
    }
    eg_jr_free(&d);
    if (rc != EG_OK) {
        eg_meter_batch_free(&b);
        return rc;
    }
    *out = b;
    return EG_OK;
}

void eg_meter_batch_free(eg_meter_batch_t *b)
{
    for (size_t i = 0; b->ev && i < b->n; i++) {
        free(b->ev[i].id);
        free(b->ev[i].user_id);
        free(b->ev[i].event_type);
        free(b->ev[i].metadata);
    }
    free(b->ev);
    b->ev = NULL;
    b->n = b->rejected = 0;
}
