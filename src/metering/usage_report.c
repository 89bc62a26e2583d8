/* usage_report.c - usage rows as JSON, CSV and a table (see usage_report.h).
 *
 * Rows come sorted by subject, event type, group, status class
 * (eg_usage_query), so each renderer is one pass that opens a subject, a
 * group or an event type where the previous row's ends.
 */
#include "usage_report.h"

#include <string.h>
#include <time.h>

#include "usage_redis.h"

void eg_usage_time_text(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *eg_usage_group_name(eg_usage_group_t g)
{
    return g == EG_USAGE_GROUP_DAY ? "day" : g == EG_USAGE_GROUP_ROUTE ? "route" : NULL;
}

/* A quantity as JSON: an integer when it is one (requests), else a real. */
static json_t *quantity_json(double q)
{
    if (q >= 0 && q < 9e15 && q == (double)(long long)q) return json_integer((json_int_t)q);
    return json_real(q);
}

/* The usage items (one per event type) of rows[i..j). */
static json_t *usage_items(const eg_usage_row_t *rows, size_t i, size_t j)
{
    json_t *arr = json_array();
    while (arr && i < j) {
        size_t k = i;
        double q = 0;
        uint64_t ev = 0, bi = 0, bo = 0;
        json_t *by = json_object();
        for (; k < j && strcmp(rows[k].event_type, rows[i].event_type) == 0; k++) {
            q += rows[k].quantity;
            ev += rows[k].events;
            bi += rows[k].bytes_in;
            bo += rows[k].bytes_out;
            char sc[16];
            snprintf(sc, sizeof(sc), "%d", rows[k].status_class);
            json_object_set_new(by, sc, json_integer((json_int_t)rows[k].events));
        }
        json_array_append_new(arr, json_pack("{s:s, s:o, s:I, s:I, s:I, s:o}", "event_type",
                                             rows[i].event_type, "quantity", quantity_json(q),
                                             "events", (json_int_t)ev, "bytes_in", (json_int_t)bi,
                                             "bytes_out", (json_int_t)bo, "by_status_class",
                                             by ? by : json_object()));
        i = k;
    }
    return arr;
}

/* One subject's rows[i..j): "usage" summed over groups, and "groups". */
static void subject_body(json_t *o, const eg_usage_row_t *rows, size_t i, size_t j,
                         eg_usage_group_t g)
{
    if (g == EG_USAGE_GROUP_NONE) {
        json_object_set_new(o, "usage", usage_items(rows, i, j));
        return;
    }
    /* the totals over every group: the rows again, grouped by event type */
    size_t n = j - i;
    eg_usage_row_t *flat = malloc((n ? n : 1) * sizeof(*flat));
    if (flat) {
        for (size_t k = 0; k < n; k++) {
            flat[k] = rows[i + k];
            flat[k].group = (char *)"";
        }
        /* sorted by event type, status class: one pass merges them */
        for (size_t a = 1; a < n; a++)
            for (size_t b = a; b > 0; b--) {
                int c = strcmp(flat[b - 1].event_type, flat[b].event_type);
                if (c < 0 || (c == 0 && flat[b - 1].status_class <= flat[b].status_class)) break;
                eg_usage_row_t t = flat[b - 1];
                flat[b - 1] = flat[b];
                flat[b] = t;
            }
        size_t m = 0;
        for (size_t k = 0; k < n; k++) {
            if (m && strcmp(flat[m - 1].event_type, flat[k].event_type) == 0 &&
                flat[m - 1].status_class == flat[k].status_class) {
                flat[m - 1].quantity += flat[k].quantity;
                flat[m - 1].events += flat[k].events;
                flat[m - 1].bytes_in += flat[k].bytes_in;
                flat[m - 1].bytes_out += flat[k].bytes_out;
            } else {
                flat[m++] = flat[k];
            }
        }
        json_object_set_new(o, "usage", usage_items(flat, 0, m));
        free(flat);
    }
    json_t *groups = json_array();
    const char *gname = eg_usage_group_name(g);
    while (groups && i < j) {
        size_t k = i;
        while (k < j && strcmp(rows[k].group, rows[i].group) == 0)
            k++;
        json_array_append_new(groups, json_pack("{s:s, s:o}", gname, rows[i].group, "usage",
                                                usage_items(rows, i, k)));
        i = k;
    }
    json_object_set_new(o, "groups", groups ? groups : json_array());
}

json_t *eg_usage_report_json(const eg_usage_row_t *rows, size_t n, int64_t from, int64_t to,
                             eg_usage_group_t g, int one_subject)
{
    char f[32], t[32];
    eg_usage_time_text(from, f, sizeof(f));
    eg_usage_time_text(to, t, sizeof(t));
    const char *gname = eg_usage_group_name(g);
    json_t *doc = json_pack("{s:s, s:s, s:o}", "from", f, "to", t, "group_by",
                            gname ? json_string(gname) : json_null());
    if (!doc) return NULL;
    if (one_subject) {
        subject_body(doc, rows, 0, n, g);
        return doc;
    }
    json_t *subs = json_array();
    for (size_t i = 0; subs && i < n;) {
        size_t k = i;
        while (k < n && strcmp(rows[k].subject, rows[i].subject) == 0)
            k++;
        json_t *o = json_pack("{s:s}", "subject", rows[i].subject);
        if (o) {
            if (strncmp(rows[i].subject, "k:", 2) == 0)
                json_object_set_new(o, "key_id", json_string(rows[i].subject + 2));
            subject_body(o, rows, i, k, g);
            json_array_append_new(subs, o);
        }
        i = k;
    }
    json_object_set_new(doc, "subjects", subs ? subs : json_array());
    return doc;
}

/* One CSV field, quoted when it must be (RFC 4180 2.6, 2.7). */
static void csv_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\r\n" : ",", f);
}

int eg_usage_report_csv(FILE *f, const eg_usage_row_t *rows, size_t n, int64_t from, int64_t to,
                        eg_usage_group_t g)
{
    char fs[32], ts[32], num[64];
    eg_usage_time_text(from, fs, sizeof(fs));
    eg_usage_time_text(to, ts, sizeof(ts));
    const char *gname = eg_usage_group_name(g);
    fprintf(f,
            "period_start,period_end,subject,key_id,event_type,%s%sstatus_class,events,quantity,"
            "bytes_in,bytes_out\r\n",
            gname ? gname : "", gname ? "," : "");
    for (size_t i = 0; i < n; i++) {
        const eg_usage_row_t *r = &rows[i];
        csv_field(f, fs, 0);
        csv_field(f, ts, 0);
        csv_field(f, r->subject, 0);
        csv_field(f, strncmp(r->subject, "k:", 2) == 0 ? r->subject + 2 : "", 0);
        csv_field(f, r->event_type, 0);
        if (gname) csv_field(f, r->group, 0);
        fprintf(f, "%d,%llu,", r->status_class, (unsigned long long)r->events);
        snprintf(num, sizeof(num), "%.15g", r->quantity);
        fprintf(f, "%s,%llu,%llu\r\n", num, (unsigned long long)r->bytes_in,
                (unsigned long long)r->bytes_out);
    }
    return ferror(f) ? -1 : 0;
}

int eg_usage_report_table(FILE *f, const eg_usage_row_t *rows, size_t n, eg_usage_group_t g)
{
    const char *gname = eg_usage_group_name(g);
    int ws = 7, we = 10, wg = gname ? 5 : 0;
    for (size_t i = 0; i < n; i++) {
        int a = (int)strlen(rows[i].subject), b = (int)strlen(rows[i].event_type),
            c = (int)strlen(rows[i].group);
        ws = a > ws ? a : ws;
        we = b > we ? b : we;
        wg = gname && c > wg ? c : wg;
    }
    fprintf(f, "%-*s  %-*s  ", ws, "SUBJECT", we, "EVENT TYPE");
    if (gname) fprintf(f, "%-*s  ", wg, g == EG_USAGE_GROUP_DAY ? "DAY" : "ROUTE");
    fprintf(f, "%6s  %10s  %14s  %12s  %12s\n", "STATUS", "EVENTS", "QUANTITY", "BYTES IN",
            "BYTES OUT");
    for (size_t i = 0; i < n; i++) {
        const eg_usage_row_t *r = &rows[i];
        fprintf(f, "%-*s  %-*s  ", ws, r->subject, we, r->event_type);
        if (gname) fprintf(f, "%-*s  ", wg, r->group);
        /* status class 0: an event posted to the metering API, not a request */
        char sc[16] = "     -";
        if (r->status_class > 0) snprintf(sc, sizeof(sc), "%5dxx", r->status_class);
        fprintf(f, "%s  %10llu  %14.15g  %12llu  %12llu\n", sc, (unsigned long long)r->events,
                r->quantity, (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out);
    }
    if (!n) fprintf(f, "(no usage in this period)\n");
    return ferror(f) ? -1 : 0;
}

int eg_usage_group_parse(const char *s, eg_usage_group_t *out)
{
    if (!s || !*s || strcmp(s, "none") == 0)
        *out = EG_USAGE_GROUP_NONE;
    else if (strcmp(s, "day") == 0)
        *out = EG_USAGE_GROUP_DAY;
    else if (strcmp(s, "route") == 0)
        *out = EG_USAGE_GROUP_ROUTE;
    else
        return EG_EINVAL;
    return EG_OK;
}

int eg_usage_read(const eg_config_t *cfg, const eg_usage_query_t *q, eg_usage_row_t **rows,
                  size_t *n, char *err, size_t errlen)
{
    if (cfg->has_redis) {
        eg_redis_target_t t = {cfg->redis.host, cfg->redis.port, cfg->redis_db,
                               cfg->redis_timeout_ms < 2000 ? 2000 : cfg->redis_timeout_ms,
                               cfg->redis_prefix};
        return eg_usage_redis_query(&t, q, rows, n, err, errlen);
    }
    if (cfg->store_backend != EG_STORE_SQLITE) {
        snprintf(err, errlen,
                 "usage is kept in the SQLite store or Redis; this configuration has neither");
        return EG_EINVAL;
    }
    return eg_usage_query(cfg->store_path, cfg->store_busy_timeout_ms, q, rows, n, err, errlen);
}

/* The value of query parameter `name` into out, %-decoded; 1 found, 0 not,
 * -1 too long or badly encoded. */
int eg_usage_query_param(const char *q, size_t qn, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < qn;) {
        size_t j = i;
        while (j < qn && q[j] != '&')
            j++;
        if (j - i > nl && memcmp(q + i, name, nl) == 0 && q[i + nl] == '=') {
            size_t o = 0;
            for (size_t k = i + nl + 1; k < j; k++) {
                char ch = q[k];
                if (ch == '%') {
                    if (k + 2 >= j) return -1;
                    char hex[3] = {q[k + 1], q[k + 2], 0};
                    char *end;
                    long v = strtol(hex, &end, 16);
                    if (*end || v <= 0) return -1;
                    ch = (char)v;
                    k += 2;
                } else if (ch == '+') {
                    ch = ' ';
                }
                if (o + 1 >= cap) return -1;
                out[o++] = ch;
            }
            out[o] = '\0';
            return 1;
        }
        i = j + 1;
    }
    return 0;
}
