/* usage_report.h - usage totals (usage.h rows) as the usage API, the admin
 * API and `errgate usage` show them: JSON, CSV for a billing system
 * (RFC 4180: a header row, CRLF, fields quoted when they hold a comma, a
 * quote or a line break), and a table for people. One renderer, so the
 * three say the same numbers. docs/metering.md shows the shapes.
 */
#ifndef EG_USAGE_REPORT_H
#define EG_USAGE_REPORT_H

#include <stdio.h>

#include <jansson.h>

#include "config.h"
#include "usage.h"

/* Unix seconds as "2026-12-07T00:00:00Z" (out: 21 bytes at least). */
void eg_usage_time_text(int64_t t, char *out, size_t cap);

/* The JSON report of rows for [from, to). one_subject 1: the rows are one
 * caller's, {"subject", "from", "to", "group_by", "usage": [...]} (with
 * "groups" when grouped); 0: {"from", "to", "group_by", "subjects":
 * [{"subject", "usage", ...}]}. Each usage item is one event type:
 * {"event_type", "quantity", "events", "bytes_in", "bytes_out",
 * "by_status_class": {"2": events, ...}}. NULL when out of memory. */
json_t *eg_usage_report_json(const eg_usage_row_t *rows, size_t n, int64_t from, int64_t to,
                             eg_usage_group_t g, int one_subject);
/* CSV: period_start, period_end, subject, key_id, event_type, day|route
 * (when grouped), status_class, events, quantity, bytes_in, bytes_out. */
int eg_usage_report_csv(FILE *f, const eg_usage_row_t *rows, size_t n, int64_t from, int64_t to,
                        eg_usage_group_t g);
/* Aligned columns for a terminal. */
int eg_usage_report_table(FILE *f, const eg_usage_row_t *rows, size_t n, eg_usage_group_t g);

const char *eg_usage_group_name(eg_usage_group_t g); /* NULL, "day", "route" */
/* "day" / "route" / NULL or "" (none); EG_EINVAL for anything else. */
int eg_usage_group_parse(const char *s, eg_usage_group_t *out);

/* Totals from where the configuration keeps them (Redis when redis: is
 * set, else the store's SQLite file): blocking, for the CLI and the admin
 * API. EG_EIO with err. */
int eg_usage_read(const eg_config_t *cfg, const eg_usage_query_t *q, eg_usage_row_t **rows,
                  size_t *n, char *err, size_t errlen);

/* The value of query parameter `name` in q[0..qn) into out, %-decoded:
 * 1 found, 0 not there, -1 too long or badly encoded. */
int eg_usage_query_param(const char *q, size_t qn, const char *name, char *out, size_t cap);

#endif
