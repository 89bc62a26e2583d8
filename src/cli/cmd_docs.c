/* cmd_docs.c - `errgate docs`: the error reference page from the catalog.
 *
 * With --openapi FILE the page also lists, per operation of the document,
 * the errors the gateway can answer for it (routing, validation, and with
 * --config the route's auth, limits, maintenance and idempotency): read
 * off the same structures the gateway serves with (the operation's
 * compiled rule set, the route's configuration), so it cannot drift. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "openapi.h"
#include "params.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: errgate docs [--format markdown|html] [--dialect D] [--catalog FILE]\n"
               "                    [--dialect-file FILE]... [--config FILE] [--openapi FILE]\n\n"
               "Prints the error reference generated from the active catalog: the error\n"
               "format of dialect D (default problem), the status codes, every code with an\n"
               "example, and the retry strategy.\n"
               "--openapi adds, for each operation of the OpenAPI document, the errors the\n"
               "gateway can answer for it: 404/405, validation (400/422, 413, 415) and upstream\n"
               "failures; with --config (a gateway configuration that uses the document) also\n"
               "the route's auth, rate limits, quotas, maintenance and idempotency, and the\n"
               "configuration's catalog and dialect (unless --dialect or --catalog is given).\n"
               "--config alone documents that configuration's catalog (errors.catalog,\n"
               "docs_url, codes include/exclude) and dialect (with its code_map).\n"
               "Exit codes: 0 printed, 2 bad arguments, 3 bad catalog, dialect, document or\n"
               "configuration.\n");
}

#define MAX_ANSWERS 40

typedef struct {
    eg_docs_answer_t a[MAX_ANSWERS];
    size_t n;
} answers_t;

static void add(answers_t *s, const char *code, int status, const char *when)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->a[i].code, code) == 0) return; /* once per code: the first cause */
    if (s->n < MAX_ANSWERS) s->a[s->n++] = (eg_docs_answer_t){code, status, when};
}

/* What the validate stage can answer from a rule set (params.h). */
static void validation_answers(answers_t *s, const eg_validation_t *v)
{
    int required = 0, typed = 0, valued = 0;
    /* every field problem is answered at once with the route's status, or
     * the dialect's validation status (stages/validate.c) */
    const int st = v->status ? v->status : EG_DOCS_VALIDATION_STATUS;
    for (size_t i = 0; i < v->params.n; i++) {
        const eg_param_rule_t *r = &v->params.rules[i];
        required |= r->required;
        typed |= (r->types & ~(unsigned)EG_ST_STRING) != 0;
        valued |= r->schema != NULL;
        if (r->code && r->schema) add(s, r->code, st, "a parameter's value is refused (its own code)");
    }
    if (required) add(s, "missing_parameter", st, "a required parameter is missing");
    if (typed) add(s, "invalid_parameter_type", st, "a parameter is not of its declared type");
    if (valued) add(s, "invalid_parameter_value", st, "a parameter's value breaks its schema");
    if (v->params.max_query_length) add(s, "query_too_long", v->status, "the query string is over max_query_length");
    if (v->body || v->body_required || v->has_form)
        add(s, "validation_error", st, "the request body breaks its schema, or is missing");
    int json = v->body != NULL;
    for (size_t i = 0; i < v->ncontent_types; i++)
        json |= eg_media_type_is_json(v->content_types[i], strlen(v->content_types[i]));
    if (json) add(s, "invalid_json", 0, "the JSON body cannot be parsed");
    if (v->ncontent_types) add(s, "unsupported_media_type", 0, "the body's Content-Type is not one the operation declares");
    if (v->ncontent_types || v->body || v->has_form) add(s, "payload_too_large", 0, "the body is over the size validated");
}

static void route_answers(answers_t *s, const eg_config_t *cfg, const eg_route_cfg_t *r, unsigned method)
{
    if (r->maintenance) add(s, "service_unavailable", 0, "the route is in maintenance");
    if (r->allow_ips) add(s, "ip_not_allowed", 0, "the client address is not allowed");
    if (r->auth == EG_AUTHN_API_KEY || r->auth == EG_AUTHN_ANY) {
        add(s, "missing_api_key", 0, "no API key was presented");
        add(s, "malformed_api_key", 0, "the API key is not well formed");
        add(s, "invalid_api_key", 0, "the API key is not known");
        add(s, "suspended_api_key", 0, "the API key is suspended");
    }
    if (r->auth == EG_AUTHN_JWT || r->auth == EG_AUTHN_ANY) {
        add(s, "unauthorized", 0, "no bearer token was presented");
        add(s, "invalid_token", 0, "the token is invalid or expired");
    }
    if (r->nscopes || r->nscopes_any || r->admin) add(s, "insufficient_scope", 0, "the credentials lack a required scope");
    int plans_limit = 0, plans_conc = 0, plans_quota = 0, plans_credit = 0;
    for (size_t i = 0; r->auth != EG_AUTHN_NONE && i < cfg->nplans; i++) {
        plans_limit |= cfg->plans[i].nlimits > 0;
        plans_conc |= cfg->plans[i].concurrency > 0;
        plans_quota |= cfg->plans[i].quota.limit > 0;
        plans_credit |= cfg->plans[i].credit_cost > 0;
    }
    if (r->nlimits || plans_limit) add(s, "rate_limit_exceeded", 0, "a rate limit is reached (Retry-After)");
    if (r->concurrency || plans_conc) add(s, "concurrent_limit", 0, "too many requests in flight");
    if (r->quota.limit || plans_quota) add(s, "quota_exceeded", 0, "the key's quota for the period is used up");
    if (r->credit_cost || plans_credit) add(s, "credits_depleted", 0, "the key's credits are used up");
    if (r->idem_methods & method) {
        if (r->idem_required) add(s, "idempotency_key_missing", 0, "the Idempotency-Key header is missing");
        add(s, "idempotency_key_in_use", 0, "a request with the same Idempotency-Key is in progress");
        add(s, "idempotency_key_mismatch", 0, "the Idempotency-Key was used with another request");
    }
}

static void common_answers(answers_t *s, int pass)
{
    if (!pass) {
        add(s, "method_not_allowed", 0, "the method is not declared for the path (Allow lists those that are)");
        add(s, "not_found", 0, "a path under the route that the document does not declare");
    }
    add(s, "bad_gateway", 0, "the service cannot be reached or answers malformed");
    add(s, "gateway_timeout", 0, "the service does not answer in time");
}

static char *upper(const char *m)
{
    char *u = strdup(m);
    for (char *p = u; p && *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
    return u;
}

/* One eg_docs_operation_t per operation: from the configuration's routes
 * that use the document when cfg is given, else from the document alone
 * (its own URLs, unknown: reject, default rule sets). */
static int collect(eg_openapi_t *oa, const eg_config_t *cfg, const eg_openapi_t *cfg_oa,
                   eg_docs_operation_t **out, answers_t **sets, char ***strs, size_t *n)
{
    size_t cap = eg_openapi_nops(oa) + (cfg ? cfg->nroutes : 0) + 1;
    *out = calloc(cap, sizeof(**out));
    *sets = calloc(cap, sizeof(**sets));
    *strs = calloc(cap * 2, sizeof(**strs));
    if (!*out || !*sets || !*strs) return EG_ENOMEM;
    size_t k = 0, ns = 0;
    if (cfg) {
        for (size_t i = cfg->nroutes_declared; i < cfg->nroutes; i++) {
            const eg_route_cfg_t *r = &cfg->routes[i];
            if (r->openapi != cfg_oa || !r->oa_op) continue;
            answers_t *s = &(*sets)[k];
            if (r->validate) validation_answers(s, r->validate);
            route_answers(s, cfg, r, r->oa_op->method_bit);
            common_answers(s, r->oa_use.pass);
            char *m = upper(r->oa_op->method);
            if (!m) return EG_ENOMEM;
            (*strs)[ns++] = m;
            (*out)[k++] = (eg_docs_operation_t){m, r->path, r->oa_op->summary, r->oa_op->operation_id, s->a, s->n};
        }
    } else {
        for (size_t i = 0; i < eg_openapi_nops(oa); i++) {
            const eg_oa_op_t *op = eg_openapi_op(oa, i);
            eg_validation_t *v = NULL;
            char err[512];
            int rc = eg_openapi_validation(oa, op, 1024 * 1024, 0, &v, err, sizeof(err));
            if (rc == EG_ENOMEM) return rc;
            if (rc) return eg_cli_fail(EG_EXIT_INPUT, "docs: %s", err);
            answers_t *s = &(*sets)[k];
            validation_answers(s, v);
            eg_validation_free(v);
            common_answers(s, 0);
            char *m = upper(op->method);
            size_t pl = strlen(op->base) + strlen(op->path) + 1;
            char *p = malloc(pl);
            if (!m || !p) {
                free(m);
                free(p);
                return EG_ENOMEM;
            }
            snprintf(p, pl, "%s%s", op->base, op->path);
            (*strs)[ns++] = m;
            (*strs)[ns++] = p;
            (*out)[k++] = (eg_docs_operation_t){m, p, op->summary, op->operation_id, s->a, s->n};
        }
    }
    *n = k;
    return EG_OK;
}

int eg_cmd_docs(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},       {"dialect", required_argument, NULL, 'D'},
        {"catalog", required_argument, NULL, 'c'},      {"dialect-file", required_argument, NULL, 'd'},
        {"openapi", required_argument, NULL, 'o'},      {"config", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},               {NULL, 0, NULL, 0}};
    const char *dialect = NULL, *catalog_file = NULL, *openapi_file = NULL, *config_file = NULL;
    eg_docs_format_t fmt = EG_DOCS_MARKDOWN;
    char *dfiles[16];
    size_t ndfiles = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+f:D:c:d:o:C:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "markdown") == 0) fmt = EG_DOCS_MARKDOWN;
            else if (strcmp(optarg, "html") == 0) fmt = EG_DOCS_HTML;
            else return eg_cli_fail(EG_EXIT_USAGE, "docs: --format must be markdown or html");
            break;
        case 'D': dialect = optarg; break;
        case 'c': catalog_file = optarg; break;
        case 'o': openapi_file = optarg; break;
        case 'C': config_file = optarg; break;
        case 'd':
            if (ndfiles == sizeof(dfiles) / sizeof(dfiles[0]))
                return eg_cli_fail(EG_EXIT_USAGE, "too many --dialect-file options");
            dfiles[ndfiles++] = optarg;
            break;
        case 'h': usage(stdout); return EG_EXIT_OK;
        default:
            return eg_cli_fail(EG_EXIT_USAGE, "docs: bad option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return eg_cli_fail(EG_EXIT_USAGE, "docs: unexpected argument '%s'", argv[optind]);
    eg_catalog_t *cat = NULL;
    eg_dialects_t *set = NULL;
    eg_config_t *cfg = NULL;
    eg_openapi_t *oa = NULL;
    const eg_openapi_t *cfg_oa = NULL;
    eg_docs_operation_t *ops = NULL;
    answers_t *sets = NULL;
    char **strs = NULL;
    size_t nops = 0;
    char *page = NULL;
    size_t len = 0;
    int rc = EG_EXIT_OK;
    if (config_file) {
        char err[EG_CONFIG_ERRLEN];
        int lrc = eg_config_load(config_file, &cfg, err, sizeof(err));
        if (lrc) return eg_cli_fail_lines(lrc == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_INPUT, err);
        char want[PATH_MAX], have[PATH_MAX];
        if (!openapi_file) { /* the configuration's catalog, dialect and code maps alone */
        } else if (!realpath(openapi_file, want))
            rc = eg_cli_fail(EG_EXIT_INPUT, "docs: %s: cannot be read", openapi_file);
        for (size_t i = 0; !rc && openapi_file && !cfg_oa && i < cfg->nopenapis; i++)
            if (realpath(cfg->openapi_paths[i], have) && strcmp(have, want) == 0) cfg_oa = cfg->openapis[i];
        if (!rc && openapi_file && !cfg_oa)
            rc = eg_cli_fail(EG_EXIT_INPUT, "docs: %s does not use the OpenAPI document %s", config_file, openapi_file);
    }
    if (!rc && openapi_file && !cfg_oa) {
        char err[1024];
        int lrc = eg_openapi_load(openapi_file, &oa, err, sizeof(err));
        if (lrc == EG_ENOMEM) rc = eg_cli_fail(EG_EXIT_SOFTWARE, "docs: out of memory");
        else if (lrc) rc = eg_cli_fail(EG_EXIT_INPUT, "docs: %s", err);
    }
    if (!rc && openapi_file) {
        int crc = collect(cfg_oa ? (eg_openapi_t *)cfg_oa : oa, cfg, cfg_oa, &ops, &sets, &strs, &nops);
        if (crc == EG_ENOMEM) rc = eg_cli_fail(EG_EXIT_SOFTWARE, "docs: out of memory");
        else if (crc) rc = crc;
    }
    /* the configuration's catalog and dialect, unless asked otherwise */
    const eg_catalog_t *use_cat = NULL;
    const eg_dialect_t *d = NULL;
    if (!rc && cfg && !catalog_file && !ndfiles) {
        use_cat = cfg->catalog;
        d = dialect ? eg_dialects_get(cfg->dialects, dialect) : cfg->dialect;
        if (!d) rc = eg_cli_fail(EG_EXIT_USAGE, "docs: unknown dialect '%s'", dialect);
    } else if (!rc) {
        rc = eg_cli_catalog(catalog_file, &cat);
        if (!rc) rc = eg_cli_dialects(dfiles, ndfiles, &set);
        use_cat = cat;
        if (!rc && !(d = eg_dialects_get(set, dialect ? dialect : "problem")))
            rc = eg_cli_fail(EG_EXIT_USAGE, "docs: unknown dialect '%s'", dialect);
    }
    if (!rc) {
        const eg_openapi_t *doc = cfg_oa ? cfg_oa : oa;
        if (eg_docs_generate_ops(use_cat, d, fmt, doc ? eg_openapi_title(doc) : NULL, ops, nops, &page, &len) !=
            EG_OK)
            rc = eg_cli_fail(EG_EXIT_SOFTWARE, "docs: out of memory");
        else {
            fwrite(page, 1, len, stdout);
            if (fflush(stdout) != 0) rc = EG_EXIT_INPUT;
        }
    }
    free(page);
    for (size_t i = 0; strs && strs[i]; i++) free(strs[i]);
    free(strs);
    free(sets);
    free(ops);
    eg_openapi_free(oa);
    eg_config_free(cfg);
    eg_dialects_free(set);
    eg_catalog_free(cat);
    return rc;
}
