/* pg_copy.h - the pure half of the PostgreSQL sink: usage events rendered as
 * lines of COPY's text format, and the sink's URL checked and described.
 *
 * No connection and no thread here (libpq is used only for its connection
 * string parser, PQconninfoParse), so the configuration loader can check a
 * URL at load time and the unit tests can check the escaping byte by byte.
 * The sink (pg_sink.c) renders each event once, when it is queued, and
 * sends the lines of a batch as they are.
 */
#ifndef EG_PG_COPY_H
#define EG_PG_COPY_H

#include <stddef.h>
#include <stdint.h>

/* The columns, in COPY order; the table is in pg_sink.c (EG_PG_SCHEMA). */
#define EG_PG_COPY_COLUMNS                                                                         \
    "subject, event_type, route, status_class, quantity, events, ts, bytes_in, bytes_out, "        \
    "event_id"

/* One row of usage_events; strings borrowed. event_id NULL is SQL NULL
 * (served requests); the others NULL are written as "". A row may sum
 * several events (the usage writer's per-hour sums of a commit): events
 * says how many (0 is taken as 1). */
typedef struct {
    const char *subject, *event_type, *route, *event_id;
    int status_class;
    double quantity;
    uint64_t events;
    int64_t ts; /* Unix seconds, written as a UTC timestamptz */
    uint64_t bytes_in, bytes_out;
} eg_pg_row_t;

/* Appends s as one field of COPY's text format to out[*len..cap): backslash,
 * tab, newline and carriage return escaped (\\ \t \n \r), bytes that are not
 * UTF-8 replaced by U+FFFD (one bad row must not stop every batch after it).
 * EG_ERANGE when it does not fit (*len is then left as it was). */
int eg_pg_copy_field(char *out, size_t cap, size_t *len, const char *s);

/* One whole line ("...\n") in a new string (*line, *len); EG_EINVAL for a
 * quantity that is not finite and > 0. */
int eg_pg_copy_row(const eg_pg_row_t *row, char **line, size_t *len);

/* Checks a metering.sink URL: postgres:// or postgresql://, and what libpq
 * accepts. The message never contains the URL's password. */
int eg_pg_url_check(const char *url, char *err, size_t errlen);

/* "user@host:port/dbname" for log lines: never the password. */
void eg_pg_url_describe(const char *url, char *out, size_t outlen);

/* Replaces each occurrence of the URL's password in msg (in place) with
 * "***": libpq's messages may quote the connection string back. */
void eg_pg_redact(const char *url, char *msg);

#endif
