/* cmd_alerts.c - `errgate alerts`: the alert rules of a configuration, as
 * the gateway's monitor runs them (a table, JSON) or as a Prometheus
 * alerting-rules file over the metrics the gateway exports, for teams whose
 * alerting already lives in Prometheus (the same thresholds, windows, `for`
 * and hysteresis; docs/alerts.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "errgate/monitor.h"

/* The counter the rules are written over (docs/metrics.md). */
#define REQUESTS_METRIC "errgate_requests_total"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: errgate alerts [--format table|json|prometheus-rules] [--config FILE]\n\n"
            "Prints the alert rules: those of FILE's alerts section, or the defaults (the\n"
            "seed's thresholds) without one. prometheus-rules writes them as a Prometheus\n"
            "alerting-rules file over " REQUESTS_METRIC " (check it with promtool check rules).\n"
            "Exit codes: 0 printed, 2 bad arguments, 3 bad configuration.\n");
}

static const char *route_text(const eg_alert_rule_t *r, const eg_config_t *cfg)
{
    if (r->route == EG_ALERT_ALL) return "all";
    if (r->route == EG_ALERT_EACH) return "each";
    return cfg && (size_t)r->route < cfg->nroutes ? cfg->routes[r->route].path : "?";
}

int eg_cmd_alerts(int argc, char **argv)
{
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *format = "table";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+f:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage(stdout);
            return EG_EXIT_OK;
        default:
            return eg_cli_fail(EG_EXIT_USAGE, "alerts: bad option '%s' (see --help)",
                               argv[optind - 1]);
        }
    }
    if (optind < argc)
        return eg_cli_fail(EG_EXIT_USAGE, "alerts: unexpected argument '%s'", argv[optind]);
    if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0 &&
        strcmp(format, "prometheus-rules") != 0)
        return eg_cli_fail(EG_EXIT_USAGE,
                           "alerts: --format must be table, json or prometheus-rules");
    eg_config_t *cfg = NULL;
    eg_alert_rule_t defaults[8];
    const eg_alert_rule_t *rules = defaults;
    size_t n = eg_alert_rules_default(defaults, 8);
    if (config) {
        char err[EG_CONFIG_ERRLEN];
        if (eg_config_load(config, &cfg, err, sizeof(err)) != EG_OK) {
            fprintf(stderr, "errgate: alerts: %s is not a valid configuration:\n", config);
            return eg_cli_fail_lines(EG_EXIT_INPUT, err);
        }
        rules = cfg->alert_rules;
        n = cfg->nalert_rules;
    }
    const char **names = calloc(cfg && cfg->nroutes ? cfg->nroutes : 1, sizeof(char *));
    for (size_t i = 0; names && cfg && i < cfg->nroutes; i++)
        names[i] = cfg->routes[i].path;
    int rc = EG_EXIT_OK;
    if (!names) {
        rc = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
    } else if (strcmp(format, "prometheus-rules") == 0) {
        char *text =
            eg_alert_rules_prometheus(rules, n, names, cfg ? cfg->nroutes : 0, REQUESTS_METRIC);
        if (!text)
            rc = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        else
            fputs(text, stdout);
        free(text);
    } else if (strcmp(format, "json") == 0) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++) {
            const eg_alert_rule_t *r = &rules[i];
            json_array_append_new(
                arr,
                json_pack("{s:s, s:s, s:s, s:f, s:f, s:I, s:I, s:f, s:s}", "name", r->name, "match",
                          r->match_text, "route", route_text(r, cfg), "threshold", r->threshold,
                          "resolve", r->resolve, "min_requests", (json_int_t)r->min_requests,
                          "window_s", (json_int_t)r->window_s, "for_s", (double)r->for_ms / 1000,
                          "severity", eg_alert_severity_name(r->severity)));
        }
        char *s = arr ? json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(arr);
        if (!s)
            rc = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        else
            printf("%s\n", s);
        free(s);
    } else {
        printf("%-20s %-12s %-16s %-10s %-10s %-8s %-8s %-6s %s\n", "NAME", "MATCH", "ROUTE",
               "THRESHOLD", "RESOLVE", "WINDOW", "FOR", "MIN", "SEVERITY");
        for (size_t i = 0; i < n; i++) {
            const eg_alert_rule_t *r = &rules[i];
            char t[16], res[16], w[16], f[16];
            snprintf(t, sizeof(t), "%.4g%%", r->threshold * 100);
            snprintf(res, sizeof(res), "%.4g%%", r->resolve * 100);
            snprintf(w, sizeof(w), "%us", r->window_s);
            snprintf(f, sizeof(f), "%.3gs", (double)r->for_ms / 1000);
            printf("%-20s %-12s %-16s %-10s %-10s %-8s %-8s %-6u %s\n", r->name, r->match_text,
                   route_text(r, cfg), t, res, w, f, r->min_requests,
                   eg_alert_severity_name(r->severity));
        }
    }
    free(names);
    eg_config_free(cfg);
    if (fflush(stdout) != 0 && !rc) rc = EG_EXIT_INPUT;
    return rc;
}
