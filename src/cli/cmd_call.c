/* cmd_call.c - `errgate call`: a curl-like request that retries as the error
 * pages advise and, on failure, prints the canonical error.
 *
 * stdout carries only the response body; stderr one line per failed attempt
 * and a summary line at the end: the canonical error on failure, and on
 * success only when there is something a script must know (the answer is a
 * replay of an earlier request with the same Idempotency-Key, so nothing new
 * happened now). Summary lines are printed even with --quiet. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "commands.h"
#include "errgate/client.h"
#include "errgate/units.h"

#define CALL_EXIT_CLIENT  4 /* final answer 4xx */
#define CALL_EXIT_SERVER  5 /* final answer 5xx */
#define CALL_EXIT_NETWORK 6 /* no answer: connection failures or timeouts */
#define CALL_EXIT_GAVE_UP 7 /* deadline or retry budget ended the retries */

static void usage(FILE *f)
{
    fprintf(f, "usage: errgate call [options] URL\n\n"
               "  -X METHOD, --request METHOD\n"
               "                          request method (default GET, POST with a body)\n"
               "  -H 'Name: value', --header 'Name: value'\n"
               "                          a request header (repeatable)\n"
               "  -d DATA, --data DATA    request body; @FILE reads it from FILE\n"
               "  --json DATA             body with Content-Type and Accept application/json\n"
               "  --max-attempts N        attempts in all (default 3)\n"
               "  --base-delay DUR        backoff base (default 1s)\n"
               "  --max-delay DUR         backoff cap (default 30s)\n"
               "  --retry-after-max DUR   a longer Retry-After stops (default 2m)\n"
               "  --deadline DUR          overall time across attempts (default none)\n"
               "  --timeout DUR           per attempt (default none)\n"
               "  --idempotency-key KEY   the key for POST/PATCH, kept across retries\n"
               "                          (default a new random UUIDv4)\n"
               "  --no-retry              one attempt\n"
               "  --retry-budget N        retry tokens (default 500; a retry costs 5, 10 after a "
               "timeout)\n"
               "  --quiet                 no per-attempt lines\n\n"
               "Prints the response body on stdout, ending with a newline. Each failed attempt is "
               "a line on stderr\n"
               "with the request id, status, code and the decision; a final failure prints the\n"
               "canonical error (code, message, request id, field errors); a replayed answer\n"
               "(Idempotent-Replayed: true) is said so in the summary line.\n"
               "Exit codes: 0 success (status < 400), 2 bad arguments, 3 unreadable --data file,\n"
               "4 client error (4xx), 5 server error (5xx), 6 network failure or timeout,\n"
               "7 stopped by the deadline or the retry budget, 70 internal failure.\n");
}

static void log_attempt(void *ctx, const eg_client_attempt_t *a)
{
    if (*(int *)ctx) return;
    const char *what = a->decision.action == EG_RETRY_WAIT      ? "retry"
                       : a->decision.action == EG_RETRY_REFRESH ? "refresh credentials"
                                                                : "stop";
    if (a->status)
        fprintf(stderr, "errgate: attempt %d: %d %s request_id=%s: %s", a->attempt, a->status,
                a->code ? a->code : "-", a->request_id ? a->request_id : "-", what);
    else
        fprintf(stderr, "errgate: attempt %d: %s: %s", a->attempt,
                a->transport_error ? a->transport_error : "network failure", what);
    if (a->decision.action == EG_RETRY_WAIT)
        fprintf(stderr, " in %llu ms (%s)\n", (unsigned long long)a->decision.delay_ms,
                a->decision.reason);
    else
        fprintf(stderr, " (%s)\n", a->decision.reason);
}

static int duration(const char *opt, const char *v, uint64_t *out)
{
    if (eg_parse_duration_ms(v, out) != EG_OK)
        return eg_cli_fail(EG_EXIT_USAGE,
                           "call: %s needs a duration like 500ms, 2s or 1m, got '%s'", opt, v);
    return 0;
}

/* The gateway's rule for a key: 1..255 visible ASCII characters. */
static int key_ok(const char *k)
{
    size_t n = strlen(k);
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e) return 0;
    return n >= 1 && n <= 255;
}

static int is_key_header(const char *h)
{
    return strncasecmp(h, "Idempotency-Key", 15) == 0 && (h[15] == ':' || h[15] == ';');
}

/* A 422 for a key first used with another request: retrying cannot help. */
static int key_mismatch(const eg_error_t *e)
{
    const char *c = e ? e->s[EG_S_CODE] : NULL;
    return c &&
           (strcmp(c, "idempotency_key_mismatch") == 0 || strcmp(c, "idempotency_key_reused") == 0);
}

int eg_cmd_call(int argc, char **argv)
{
    enum {
        O_JSON = 256,
        O_MAX_ATTEMPTS,
        O_BASE,
        O_MAX_DELAY,
        O_RA_MAX,
        O_DEADLINE,
        O_TIMEOUT,
        O_KEY,
        O_NO_RETRY,
        O_QUIET,
        O_BUDGET
    };
    static const struct option opts[] = {{"request", required_argument, NULL, 'X'},
                                         {"header", required_argument, NULL, 'H'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"json", required_argument, NULL, O_JSON},
                                         {"max-attempts", required_argument, NULL, O_MAX_ATTEMPTS},
                                         {"base-delay", required_argument, NULL, O_BASE},
                                         {"max-delay", required_argument, NULL, O_MAX_DELAY},
                                         {"retry-after-max", required_argument, NULL, O_RA_MAX},
                                         {"deadline", required_argument, NULL, O_DEADLINE},
                                         {"timeout", required_argument, NULL, O_TIMEOUT},
                                         {"idempotency-key", required_argument, NULL, O_KEY},
                                         {"no-retry", no_argument, NULL, O_NO_RETRY},
                                         {"quiet", no_argument, NULL, O_QUIET},
                                         {"retry-budget", required_argument, NULL, O_BUDGET},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    eg_client_options_t o;
    eg_client_options_default(&o);
    const char *method = NULL, *data = NULL, *headers[65];
    size_t nh = 0;
    int quiet = 0, json = 0, c;
    unsigned budget_tokens = 500;
    uint64_t ms;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+X:H:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'X':
            method = optarg;
            break;
        case 'H':
            if (nh == 64) return eg_cli_fail(EG_EXIT_USAGE, "call: at most 64 -H options");
            if (!strchr(optarg, ':'))
                return eg_cli_fail(EG_EXIT_USAGE, "call: -H needs 'Name: value', got '%s'", optarg);
            headers[nh++] = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case O_JSON:
            data = optarg;
            json = 1;
            break;
        case O_MAX_ATTEMPTS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 100)
                return eg_cli_fail(EG_EXIT_USAGE, "call: --max-attempts must be 1..100");
            o.policy.max_attempts = (int)v;
            break;
        }
        case O_BASE:
            if (duration("--base-delay", optarg, &o.policy.base_ms)) return EG_EXIT_USAGE;
            break;
        case O_MAX_DELAY:
            if (duration("--max-delay", optarg, &o.policy.cap_ms)) return EG_EXIT_USAGE;
            break;
        case O_RA_MAX:
            if (duration("--retry-after-max", optarg, &o.policy.retry_after_max_ms))
                return EG_EXIT_USAGE;
            break;
        case O_DEADLINE:
            if (duration("--deadline", optarg, &o.policy.deadline_ms)) return EG_EXIT_USAGE;
            break;
        case O_TIMEOUT:
            if (duration("--timeout", optarg, &ms)) return EG_EXIT_USAGE;
            o.timeout_ms = (long)ms;
            break;
        case O_KEY:
            if (!key_ok(optarg))
                return eg_cli_fail(
                    EG_EXIT_USAGE,
                    "call: --idempotency-key needs 1 to 255 visible ASCII characters");
            o.idempotency_key = optarg;
            break;
        case O_NO_RETRY:
            o.policy.max_attempts = 1;
            break;
        case O_QUIET:
            quiet = 1;
            break;
        case O_BUDGET: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 100000)
                return eg_cli_fail(EG_EXIT_USAGE, "call: --retry-budget must be 1..100000");
            budget_tokens = (unsigned)v;
            break;
        }
        case 'h':
            usage(stdout);
            return EG_EXIT_OK;
        default:
            return eg_cli_fail(EG_EXIT_USAGE, "call: bad option '%s' (see --help)",
                               argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return eg_cli_fail(EG_EXIT_USAGE, "call: expected one URL (see --help)");
    int nkeys = 0;
    for (size_t i = 0; i < nh; i++)
        nkeys += is_key_header(headers[i]);
    if (nkeys > 1 || (nkeys && o.idempotency_key))
        return eg_cli_fail(EG_EXIT_USAGE,
                           "call: give one Idempotency-Key (-H or --idempotency-key, once)");
    const char *url = argv[optind];
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return eg_cli_fail(EG_EXIT_USAGE, "call: the URL must start with http:// or https://");
    char *body = NULL;
    size_t blen = 0;
    if (data && data[0] == '@') {
        FILE *f = fopen(data + 1, "rb");
        if (!f) return eg_cli_fail(EG_EXIT_INPUT, "call: cannot read %s", data + 1);
        int r = eg_cli_read_all(f, 64u << 20, &body, &blen);
        fclose(f);
        if (r != EG_OK)
            return eg_cli_fail(EG_EXIT_INPUT, "call: cannot read %s: %s", data + 1, eg_strerror(r));
    } else if (data) {
        blen = strlen(data);
        if (!(body = malloc(blen + 1))) return eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        memcpy(body, data, blen + 1);
    }
    if (json && nh + 2 <= 64) {
        headers[nh++] = "Content-Type: application/json";
        headers[nh++] = "Accept: application/json";
    }
    headers[nh] = NULL;
    eg_retry_budget_t budget;
    eg_retry_budget_init(&budget, budget_tokens);
    o.budget = &budget;
    o.log = log_attempt;
    o.ctx = &quiet;
    eg_client_request_t req = {method ? method : body ? "POST" : "GET", url, headers, body, blen};
    eg_client_response_t resp;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(body);
        return eg_cli_fail(EG_EXIT_SOFTWARE, "call: cannot initialise libcurl");
    }
    int rc = eg_client_request(&req, &o, &resp);
    curl_global_cleanup();
    free(body);
    if (rc != EG_OK) return eg_cli_fail(EG_EXIT_SOFTWARE, "call: %s", eg_strerror(rc));
    /* the body ends with a newline, as curl's output does not: a shell prompt
     * or the next command's output then starts on a line of its own */
    fwrite(resp.body, 1, resp.body_len, stdout);
    if (resp.body_len && resp.body[resp.body_len - 1] != '\n') fputc('\n', stdout);
    fflush(stdout);
    int exit_code = EG_EXIT_OK;
    const char *rid = resp.request_id[0] ? resp.request_id : "-";
    /* a failed write names its key: run again with it, and a first attempt
     * that did get through is answered from the store, not done twice */
    char key[sizeof(resp.idempotency_key) + 24] = "";
    if (resp.idempotency_key[0])
        snprintf(key, sizeof(key), ", idempotency_key %s", resp.idempotency_key);
    if (resp.status > 0 && resp.status < 400 && resp.replayed) {
        fprintf(stderr,
                "errgate: %d replayed: the stored answer to Idempotency-Key %s (request_id %s)\n",
                resp.status, resp.idempotency_key[0] ? resp.idempotency_key : "-", rid);
    } else if (resp.status == 0) {
        fprintf(stderr, "errgate: %s after %d attempt%s%s%s%s\n", resp.transport_error,
                resp.attempts, resp.attempts == 1 ? "" : "s", key[0] ? " (" : "",
                key[0] ? key + 2 : "", key[0] ? ")" : "");
        exit_code = CALL_EXIT_NETWORK;
    } else if (resp.status >= 400) {
        const eg_error_t *e = resp.error;
        fprintf(stderr, "errgate: %d %s: %s (request_id %s%s%s)\n", resp.status,
                e && e->s[EG_S_CODE] ? e->s[EG_S_CODE] : "-",
                e && e->s[EG_S_MESSAGE] ? e->s[EG_S_MESSAGE] : "", rid, key,
                resp.replayed ? ", replayed" : "");
        for (size_t i = 0; e && i < e->nfields; i++) {
            const eg_field_error_t *f = &e->fields[i];
            const char *name = f->s[EG_F_FIELD]       ? f->s[EG_F_FIELD]
                               : f->s[EG_F_POINTER]   ? f->s[EG_F_POINTER]
                               : f->s[EG_F_PARAMETER] ? f->s[EG_F_PARAMETER]
                                                      : "-";
            fprintf(stderr, "errgate:   %s: %s\n", name,
                    f->s[EG_F_MESSAGE] ? f->s[EG_F_MESSAGE] : "");
        }
        if (resp.status == 422 && key_mismatch(e))
            fprintf(stderr,
                    "errgate: not retried: Idempotency-Key %s was first used with a different "
                    "request (method, path or body); send a new request with a new key\n",
                    resp.idempotency_key[0] ? resp.idempotency_key : "-");
        exit_code = resp.status < 500 ? CALL_EXIT_CLIENT : CALL_EXIT_SERVER;
    }
    if (resp.stop_reason && (strcmp(resp.stop_reason, "deadline reached") == 0 ||
                             strcmp(resp.stop_reason, "retry budget exhausted") == 0))
        exit_code = CALL_EXIT_GAVE_UP;
    eg_client_response_free(&resp);
    return exit_code;
}
