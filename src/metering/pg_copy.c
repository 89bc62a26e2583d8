/* pg_copy.c - COPY text lines, the sink URL's check and description (see
 * pg_copy.h).
 *
 * COPY's text format is one line a row, fields split by tabs, \N for NULL,
 * and backslash escapes for what would break that framing. A subject comes
 * from a key id, a JWT subject or an address, an event type from the
 * metering API: any of them may hold a tab or a newline, and an unescaped
 * one would shift every column after it or start a new row. PostgreSQL also
 * refuses a whole COPY for one byte that is not UTF-8, which would block
 * every later batch behind it; such bytes become U+FFFD here.
 */
#include "pg_copy.h"

#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/common.h"

/* The length of the valid UTF-8 sequence at p (1..4), 0 when it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

int eg_pg_copy_field(char *out, size_t cap, size_t *len, const char *s)
{
    size_t n = *len;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        char esc = 0;
        switch (*p) {
        case '\\':
            esc = '\\';
            break;
        case '\t':
            esc = 't';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        default:
            break;
        }
        if (esc) {
            if (n + 2 > cap) return EG_ERANGE;
            out[n++] = '\\';
            out[n++] = esc;
            p++;
            continue;
        }
        size_t k = utf8_len(p); /* stops at the NUL: continuation tests fail on it */
        if (k == 0) {
            if (n + 3 > cap) return EG_ERANGE;
            memcpy(out + n, "\xEF\xBF\xBD", 3); /* U+FFFD for the one bad byte */
            n += 3;
            p++;
            continue;
        }
        if (n + k > cap) return EG_ERANGE;
        memcpy(out + n, p, k);
        n += k;
        p += k;
    }
    *len = n;
    return EG_OK;
}

/* Worst case of one field: every byte one that becomes three. */
static size_t field_max(const char *s)
{
    return (s ? strlen(s) : 0) * 3;
}

int eg_pg_copy_row(const eg_pg_row_t *row, char **line, size_t *len)
{
    if (!(isfinite(row->quantity) && row->quantity > 0)) return EG_EINVAL;
    size_t cap = field_max(row->subject) + field_max(row->event_type) + field_max(row->route) +
                 field_max(row->event_id) + 200;
    char *out = malloc(cap);
    if (!out) return EG_ENOMEM;
    size_t n = 0;
    /* the three strings, then the numbers (they need no escaping) */
    const char *const strs[3] = {row->subject, row->event_type, row->route};
    for (int i = 0; i < 3; i++) {
        eg_pg_copy_field(out, cap, &n, strs[i]); /* fits: cap is the worst case */
        out[n++] = '\t';
    }
    struct tm tm;
    time_t t = (time_t)row->ts;
    if (!gmtime_r(&t, &tm)) memset(&tm, 0, sizeof(tm));
    /* bigint columns: a count beyond INT64_MAX cannot be real */
    long long bin = row->bytes_in > INT64_MAX ? INT64_MAX : (long long)row->bytes_in;
    long long bout = row->bytes_out > INT64_MAX ? INT64_MAX : (long long)row->bytes_out;
    long long events = row->events > INT64_MAX ? INT64_MAX
                       : row->events           ? (long long)row->events
                                               : 1;
    n += (size_t)snprintf(out + n, cap - n,
                          "%d\t%.17g\t%lld\t%04d-%02d-%02d %02d:%02d:%02d+00\t%lld\t%lld\t",
                          row->status_class, row->quantity, events, tm.tm_year + 1900,
                          tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, bin, bout);
    if (row->event_id) {
        eg_pg_copy_field(out, cap, &n, row->event_id);
    } else {
        memcpy(out + n, "\\N", 2);
        n += 2;
    }
    out[n++] = '\n';
    out[n] = '\0';
    *line = out;
    *len = n;
    return EG_OK;
}

/* The value of one keyword of a parsed connection string, or NULL. */
static const char *opt(const PQconninfoOption *o, const char *key)
{
    for (; o && o->keyword; o++)
        if (strcmp(o->keyword, key) == 0) return o->val && *o->val ? o->val : NULL;
    return NULL;
}

/* The password as written in the URL (user:password@), percent-encoded or
 * not: [*at, *at + *n). */
static int url_password(const char *url, const char **at, size_t *n)
{
    const char *p = strstr(url, "://");
    if (!p) return 0;
    p += 3;
    size_t auth = strcspn(p, "@/?");
    if (p[auth] != '@') return 0;
    const char *colon = memchr(p, ':', auth);
    if (!colon || colon + 1 == p + auth) return 0;
    *at = colon + 1;
    *n = (size_t)(p + auth - *at);
    return 1;
}

/* Replaces every occurrence of secret[0..n) in msg with "***" (shorter
 * secrets are masked in place, so msg never grows). */
static void mask(char *msg, const char *secret, size_t n)
{
    char *needle = n ? strndup(secret, n) : NULL;
    if (!needle) return;
    char *from = msg, *hit;
    while ((hit = strstr(from, needle))) {
        if (n >= 3) {
            memcpy(hit, "***", 3);
            memmove(hit + 3, hit + n, strlen(hit + n) + 1);
            from = hit + 3;
        } else {
            memset(hit, '*', n);
            from = hit + n;
        }
    }
    free(needle);
}

void eg_pg_redact(const char *url, char *msg)
{
    const char *pw;
    size_t n;
    if (!url || !msg) return;
    if (url_password(url, &pw, &n)) mask(msg, pw, n);
    PQconninfoOption *o = PQconninfoParse(url, NULL);
    const char *dec = opt(o, "password"); /* the decoded form too */
    if (dec) mask(msg, dec, strlen(dec));
    PQconninfoFree(o);
}

int eg_pg_url_check(const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0) {
        snprintf(err, errlen, "sink must be a postgres:// URL (postgres://user@host:port/dbname)");
        return EG_EINVAL;
    }
    char *perr = NULL;
    PQconninfoOption *o = PQconninfoParse(url, &perr);
    if (!o) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", perr ? perr : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        eg_pg_redact(url, msg);
        snprintf(err, errlen, "sink is not a valid URL: %s", msg);
        PQfreemem(perr);
        return EG_EINVAL;
    }
    /* libpq reads the port only when it connects: a typo would surface as
     * a failing sink at run time instead of here */
    const char *port = opt(o, "port");
    for (const char *p = port; p && *p;) {
        size_t n = strcspn(p, ","); /* one a host: host1:5432,host2:5433 */
        char *end = NULL;
        long v = n ? strtol(p, &end, 10) : 0;
        if (!n || end != p + n || v < 1 || v > 65535) {
            snprintf(err, errlen, "sink's port must be a number 1..65535");
            PQconninfoFree(o);
            return EG_EINVAL;
        }
        p += n + (p[n] == ',');
    }
    PQconninfoFree(o);
    return EG_OK;
}

void eg_pg_url_describe(const char *url, char *out, size_t outlen)
{
    PQconninfoOption *o = PQconninfoParse(url, NULL);
    const char *user = opt(o, "user"), *host = opt(o, "host"), *port = opt(o, "port");
    const char *db = opt(o, "dbname");
    snprintf(out, outlen, "%s%s%s%s%s/%s", user ? user : "", user ? "@" : "",
             host ? host : "(local socket)", port ? ":" : "", port ? port : "", db ? db : "");
    PQconninfoFree(o);
}
