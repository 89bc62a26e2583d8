/* cmd_keys.c - `errgate keys`: API key administration on the configured store.
 *
 * Works on the store the configuration names, so it runs next to a live
 * gateway (SQLite WAL lets both use the file; the gateway sees changes
 * within store.refresh). The memory store lives inside the gateway process:
 * for it, use the admin API instead.
 */
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "errgate/units.h"
#include "keys.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: errgate keys create  --config FILE --name NAME [--scopes a,b] [--plan P]\n"
            "                            [--owner USER] [--ips CIDR,...] [--expires DATE] [--env live|test]\n"
            "       errgate keys list    --config FILE [--format table|json]\n"
            "       errgate keys show    --config FILE ID\n"
            "       errgate keys suspend --config FILE ID --reason TEXT\n"
            "       errgate keys resume  --config FILE ID\n"
            "       errgate keys revoke  --config FILE ID [--reason TEXT]\n"
            "       errgate keys rotate  --config FILE ID [--grace DURATION]\n"
            "       errgate keys plan    --config FILE ID --plan NAME|none\n"
            "       errgate keys credits --config FILE ID [--add N]\n\n"
            "Manages API keys in the store of the configuration (store: sqlite). create and\n"
            "rotate print the secret once, as JSON with the key's record; only its hash is\n"
            "stored. DATE is 2027-01-31 or 2027-01-31T12:00:00Z (UTC). rotate keeps the old\n"
            "secret valid for --grace (default auth.rotation_grace, 24h). credits shows a\n"
            "key's credit balance, or tops it up with --add N (negative takes back); with\n"
            "redis: in the configuration the balance is the one in Redis. plan moves a key\n"
            "to another plan of the configuration (none: no plan); a running gateway\n"
            "applies it within store.refresh, without a restart.\n"
            "Exit codes: 0 done, 2 bad arguments, 3 bad configuration or invalid value,\n"
            "4 no such key, 69 the store cannot be opened or written, 70 internal failure.\n");
}

typedef struct {
    const char *config, *name, *scopes, *plan, *owner, *ips, *expires, *env, *reason, *grace, *format, *add;
} args_t;

static int print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_INDENT(2));
    json_decref(doc);
    if (!s) return eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
    printf("%s\n", s);
    free(s);
    return EG_EXIT_OK;
}

static int fail_rc(int rc, const char *err)
{
    int code = rc == EG_EINVAL ? EG_EXIT_INPUT : rc == EG_ENOENT ? EG_EXIT_NOT_FOUND
               : rc == EG_EIO  ? EG_EXIT_UNAVAILABLE
                               : EG_EXIT_SOFTWARE;
    return eg_cli_fail(code, "keys: %s", err);
}

static int list(eg_store_t *s, const args_t *a)
{
    eg_key_t *all = NULL;
    size_t n = 0;
    if (eg_store_key_list(s, &all, &n) != EG_OK) return fail_rc(EG_EIO, eg_store_error(s));
    int json = a->format && strcmp(a->format, "json") == 0, rc = EG_EXIT_OK;
    json_t *arr = json ? json_array() : NULL;
    if (!json) printf("%-8s  %-9s  %-20s  %-12s  %s\n", "ID", "STATUS", "NAME", "PLAN", "SCOPES");
    for (size_t i = 0; i < n; i++) {
        const eg_key_t *k = &all[i];
        if (json) json_array_append_new(arr, eg_key_json(k));
        else
            printf("%-8s  %-9s  %-20.20s  %-12.12s  %s\n", k->id, eg_key_status_name(k->status), k->name,
                   k->plan ? k->plan : "-", k->scopes ? k->scopes : "-");
        eg_key_clear(&all[i]);
    }
    free(all);
    if (json) rc = print_json(json_pack("{s:o}", "keys", arr));
    return rc;
}

static int run(eg_store_t *s, const eg_config_t *cfg, const char *verb, const char *id, const args_t *a)
{
    char err[300], secret[EG_APIKEY_LEN + 1] = "";
    eg_key_t k;
    int rc;
    long long now = (long long)time(NULL);
    if (strcmp(verb, "list") == 0) return list(s, a);
    if (strcmp(verb, "credits") == 0) {
        long long add = 0, balance = 0;
        char *end = NULL;
        if (a->add && ((add = strtoll(a->add, &end, 10)), !*a->add || *end))
            return eg_cli_fail(EG_EXIT_USAGE, "keys: --add must be an integer");
        eg_redis_target_t rt;
        rc = eg_keys_credits(s, eg_keys_credit_redis(cfg, &rt), id, add, &balance, err, sizeof(err));
        if (rc != EG_OK) return fail_rc(rc, err);
        return print_json(json_pack("{s:s, s:I}", "id", id, "credits", (json_int_t)balance));
    }
    if (strcmp(verb, "create") == 0) {
        eg_keyspec_t spec = {a->name, a->owner, a->plan, a->scopes, a->ips, a->env, 0};
        if (a->expires && eg_keys_parse_date(a->expires, &spec.expires) != EG_OK)
            return eg_cli_fail(EG_EXIT_USAGE, "keys: --expires must be a date like 2027-01-31 or 2027-01-31T12:00:00Z");
        if ((rc = eg_keys_plan_ok(cfg, a->plan, err, sizeof(err))) != EG_OK)
            return fail_rc(rc, err);
        rc = eg_keys_create(s, cfg->pepper, cfg->pepper_len, &spec, now, secret, &k, err, sizeof(err));
    } else if (strcmp(verb, "show") == 0) {
        rc = eg_keys_get(s, id, &k, err, sizeof(err));
    } else if (strcmp(verb, "suspend") == 0) {
        if (!a->reason) return eg_cli_fail(EG_EXIT_USAGE, "keys: suspend needs --reason TEXT");
        rc = eg_keys_set_status(s, id, EG_KEY_SUSPENDED, a->reason, &k, err, sizeof(err));
    } else if (strcmp(verb, "resume") == 0) {
        rc = eg_keys_set_status(s, id, EG_KEY_ACTIVE, NULL, &k, err, sizeof(err));
    } else if (strcmp(verb, "revoke") == 0) {
        rc = eg_keys_set_status(s, id, EG_KEY_REVOKED, a->reason, &k, err, sizeof(err));
    } else if (strcmp(verb, "plan") == 0) {
        if (!a->plan) return eg_cli_fail(EG_EXIT_USAGE, "keys: plan needs --plan NAME (or none)");
        const char *plan = strcmp(a->plan, "none") == 0 ? NULL : a->plan;
        if ((rc = eg_keys_plan_ok(cfg, plan, err, sizeof(err))) != EG_OK) return fail_rc(rc, err);
        rc = eg_keys_set_plan(s, id, plan, &k, err, sizeof(err));
    } else { /* rotate */
        uint64_t grace = cfg->rotation_grace_ms;
        if (a->grace && eg_parse_duration_ms(a->grace, &grace) != EG_OK)
            return eg_cli_fail(EG_EXIT_USAGE, "keys: --grace must be a duration like 1h or 0s");
        rc = eg_keys_rotate(s, cfg->pepper, cfg->pepper_len, id, (long long)(grace / 1000), now, secret, &k,
                            err, sizeof(err));
    }
    if (rc != EG_OK) return fail_rc(rc, err);
    json_t *doc = json_pack("{s:o}", "key", eg_key_json(&k));
    if (secret[0]) json_object_set_new(doc, "secret", json_string(secret));
    OPENSSL_cleanse(secret, sizeof(secret));
    eg_key_clear(&k);
    return print_json(doc);
}

int eg_cmd_keys(int argc, char **argv)
{
    static const char *const verbs[] = {"create", "list", "show", "suspend", "resume", "revoke", "rotate", "plan", "credits", NULL};
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"name", required_argument, NULL, 'n'},
        {"scopes", required_argument, NULL, 's'}, {"plan", required_argument, NULL, 'p'},
        {"owner", required_argument, NULL, 'o'},  {"ips", required_argument, NULL, 'i'},
        {"expires", required_argument, NULL, 'e'}, {"env", required_argument, NULL, 'E'},
        {"reason", required_argument, NULL, 'r'}, {"grace", required_argument, NULL, 'g'},
        {"format", required_argument, NULL, 'f'}, {"add", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EG_EXIT_USAGE : EG_EXIT_OK;
    }
    const char *verb = argv[1];
    int known = 0;
    for (const char *const *v = verbs; *v; v++) known |= strcmp(*v, verb) == 0;
    if (!known) return eg_cli_fail(EG_EXIT_USAGE, "keys: unknown action '%s' (see errgate keys --help)", verb);
    args_t a = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "c:n:s:p:o:i:e:E:r:g:f:a:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a.config = optarg; break;
        case 'n': a.name = optarg; break;
        case 's': a.scopes = optarg; break;
        case 'p': a.plan = optarg; break;
        case 'o': a.owner = optarg; break;
        case 'i': a.ips = optarg; break;
        case 'e': a.expires = optarg; break;
        case 'E': a.env = optarg; break;
        case 'r': a.reason = optarg; break;
        case 'g': a.grace = optarg; break;
        case 'f': a.format = optarg; break;
        case 'a': a.add = optarg; break;
        case 'h': usage(stdout); return EG_EXIT_OK;
        default: return eg_cli_fail(EG_EXIT_USAGE, "keys: bad option '%s' (see --help)", argv[optind]);
        }
    }
    int want_id = strcmp(verb, "create") != 0 && strcmp(verb, "list") != 0;
    int nargs = argc - 1 - optind;
    const char *id = nargs >= 1 ? argv[1 + optind] : NULL;
    if (nargs > (want_id ? 1 : 0))
        return eg_cli_fail(EG_EXIT_USAGE, "keys: unexpected argument '%s'", argv[1 + optind + (want_id ? 1 : 0)]);
    if (want_id && !id) return eg_cli_fail(EG_EXIT_USAGE, "keys: %s needs a key ID", verb);
    if (!a.config) return eg_cli_fail(EG_EXIT_USAGE, "keys: --config FILE is required");
    if (a.format && strcmp(a.format, "json") && strcmp(a.format, "table"))
        return eg_cli_fail(EG_EXIT_USAGE, "keys: --format must be table or json");
    char err[EG_CONFIG_ERRLEN];
    eg_config_t *cfg = NULL;
    int rc = eg_config_load(a.config, &cfg, err, sizeof(err));
    if (rc != EG_OK) return eg_cli_fail_lines(rc == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_INPUT, err);
    if (cfg->store_backend == EG_STORE_MEMORY) {
        eg_config_free(cfg);
        return eg_cli_fail(EG_EXIT_INPUT, "keys: the memory store lives inside the gateway process; "
                                          "use the admin API (POST /keys) or store: {backend: sqlite}");
    }
    eg_store_t *s = NULL;
    if (eg_store_open(cfg->store_backend, cfg->store_path, cfg->store_busy_timeout_ms, &s, err, sizeof(err)) != EG_OK) {
        eg_config_free(cfg);
        return eg_cli_fail(EG_EXIT_UNAVAILABLE, "keys: store: %s", err);
    }
    int code = run(s, cfg, verb, id, &a);
    eg_store_close(s);
    eg_config_free(cfg);
    return code;
}
