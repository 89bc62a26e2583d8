/* cmd_usage.c - `errgate usage`: usage totals for every key (or one), for
 * a period, from where the configuration keeps them (the SQLite store, or
 * Redis), as a table, JSON or CSV for a billing system (docs/metering.md).
 *
 * It reads what the gateway committed: a running gateway's last
 * metering.commit_interval of events may not be in yet.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "usage_report.h"

static void usage(FILE *f)
{
    fprintf(
        f, "usage: errgate usage --config FILE [--key ID | --subject S] [--from DATE] [--to DATE]\n"
           "                     [--group-by day|route] [--format table|json|csv]\n\n"
           "Usage totals per key (subject), event type and status class for a period, from\n"
           "the store of the configuration (SQLite, or Redis with redis:). DATE is 2026-12-01\n"
           "(UTC; --to includes that day) or 2026-12-01T10:00:00Z; totals are hourly, so a\n"
           "time is taken to its hour. The default period is the current calendar month.\n"
           "--key ID is a key's usage (subject k:ID); --subject takes any subject (u:alice for\n"
           "a JWT subject, ip:203.0.113.9 for anonymous callers). csv is RFC 4180 with a\n"
           "header row, one line per subject, event type, group and status class.\n"
           "Exit codes: 0 done, 2 bad arguments, 3 bad configuration, 69 the store cannot\n"
           "be read, 70 internal failure.\n");
}

int eg_cmd_usage(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"subject", required_argument, NULL, 's'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"to", required_argument, NULL, 't'},
                                         {"group-by", required_argument, NULL, 'g'},
                                         {"format", required_argument, NULL, 'F'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *key = NULL, *subject = NULL, *from = NULL, *to = NULL,
               *group = NULL;
    const char *format = "table";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:k:s:f:t:g:F:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 's':
            subject = optarg;
            break;
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'g':
            group = optarg;
            break;
        case 'F':
            format = optarg;
            break;
        case 'h':
            usage(stdout);
            return EG_EXIT_OK;
        default:
            return eg_cli_fail(EG_EXIT_USAGE, "usage: bad option '%s' (see --help)",
                               argv[optind - 1]);
        }
    }
    if (optind < argc)
        return eg_cli_fail(EG_EXIT_USAGE, "usage: unexpected argument '%s'", argv[optind]);
    if (!config) return eg_cli_fail(EG_EXIT_USAGE, "usage: --config FILE is required");
    if (key && subject) return eg_cli_fail(EG_EXIT_USAGE, "usage: --key or --subject, not both");
    if (strcmp(format, "table") && strcmp(format, "json") && strcmp(format, "csv"))
        return eg_cli_fail(EG_EXIT_USAGE, "usage: --format must be table, json or csv");
    eg_usage_query_t q = {0};
    if (eg_usage_group_parse(group, &q.group) != EG_OK)
        return eg_cli_fail(EG_EXIT_USAGE, "usage: --group-by must be day or route");
    /* the current calendar month (UTC) unless told */
    eg_usage_period_at(0, (int64_t)time(NULL), &q.from, &q.to);
    if (from && eg_usage_parse_time(from, 0, &q.from) != EG_OK)
        return eg_cli_fail(EG_EXIT_USAGE,
                           "usage: --from must be a date like 2026-12-01 or 2026-12-01T10:00:00Z");
    if (to && eg_usage_parse_time(to, 1, &q.to) != EG_OK)
        return eg_cli_fail(EG_EXIT_USAGE,
                           "usage: --to must be a date like 2026-12-31 or 2026-12-31T10:00:00Z");
    if (q.from >= q.to) return eg_cli_fail(EG_EXIT_USAGE, "usage: --from must come before --to");
    char sub[200];
    if (key) {
        snprintf(sub, sizeof(sub), "k:%s", key);
        q.subject = sub;
    } else {
        q.subject = subject;
    }
    char err[EG_CONFIG_ERRLEN];
    eg_config_t *cfg = NULL;
    int rc = eg_config_load(config, &cfg, err, sizeof(err));
    if (rc != EG_OK)
        return eg_cli_fail_lines(rc == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_INPUT, err);
    eg_usage_row_t *rows = NULL;
    size_t n = 0;
    rc = eg_usage_read(cfg, &q, &rows, &n, err, sizeof(err));
    eg_config_free(cfg);
    if (rc != EG_OK)
        return eg_cli_fail(rc == EG_EINVAL   ? EG_EXIT_INPUT
                           : rc == EG_ENOMEM ? EG_EXIT_SOFTWARE
                                             : EG_EXIT_UNAVAILABLE,
                           "usage: %s", err);
    int code = EG_EXIT_OK;
    if (strcmp(format, "csv") == 0) {
        if (eg_usage_report_csv(stdout, rows, n, q.from, q.to, q.group) != 0)
            code = EG_EXIT_SOFTWARE;
    } else if (strcmp(format, "json") == 0) {
        json_t *doc = eg_usage_report_json(rows, n, q.from, q.to, q.group, 0);
        char *s = doc ? json_dumps(doc, JSON_PRESERVE_ORDER | JSON_INDENT(2)) : NULL;
        json_decref(doc);
        if (s)
            printf("%s\n", s);
        else
            code = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        free(s);
    } else {
        eg_usage_report_table(stdout, rows, n, q.group);
    }
    eg_usage_rows_free(rows, n);
    return code;
}
