/* keys.c - API key administration (see keys.h). */
#define _XOPEN_SOURCE 700 /* strptime */
#include "keys.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyring.h"

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return code;                                                                               \
    } while (0)

/* Scopes are tokens like "search:basic" or "admin": letters, digits and
 * ":._-/" and "*". Comma- or space-separated in; space-separated out (the form
 * X-Scopes and OAuth's scope claim use). */
static int scopes_normalize(const char *in, char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!in || !*in) return EG_OK;
    size_t n = strlen(in);
    char *s = malloc(n + 1);
    if (!s) return EG_ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == ',' || ch == ' ') {
            if (at && s[at - 1] != ' ') s[at++] = ' ';
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr(":._-/*", ch))) {
            free(s);
            FAIL(EG_EINVAL, "invalid character '%c' in scopes (letters, digits and :._-/* only)", ch);
        }
        s[at++] = ch;
    }
    while (at && s[at - 1] == ' ') at--;
    s[at] = '\0';
    if (at > 900) {
        free(s);
        FAIL(EG_EINVAL, "scopes are longer than 900 characters");
    }
    if (!at) {
        free(s);
        s = NULL;
    }
    *out = s;
    return EG_OK;
}

static int text_ok(const char *what, const char *v, size_t max, char *err, size_t errlen)
{
    if (!v) return EG_OK;
    size_t n = strlen(v);
    if (n > max) FAIL(EG_EINVAL, "%s is longer than %zu characters", what, max);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) FAIL(EG_EINVAL, "%s contains a control character", what);
    return EG_OK;
}

int eg_keys_parse_date(const char *s, long long *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%d", &tm);
        if (!end || *end) return EG_EPARSE;
    }
    time_t t = timegm(&tm);
    if (t <= 0) return EG_EPARSE;
    *out = (long long)t;
    return EG_OK;
}

int eg_keys_create(eg_store_t *s, const unsigned char *pepper, size_t pepper_len,
                   const eg_keyspec_t *spec, long long now, char secret[EG_APIKEY_LEN + 1],
                   eg_key_t *out, char *err, size_t errlen)
{
    int rc;
    if (!spec->name || !*spec->name) FAIL(EG_EINVAL, "a key needs a name");
    if ((rc = text_ok("name", spec->name, 200, err, errlen)) || (rc = text_ok("owner", spec->owner, 120, err, errlen)) ||
        (rc = text_ok("plan", spec->plan, 60, err, errlen)))
        return rc;
    const char *env = spec->env ? spec->env : "live";
    if (strcmp(env, "live") && strcmp(env, "test")) FAIL(EG_EINVAL, "env must be live or test");
    if (spec->expires && spec->expires <= now) FAIL(EG_EINVAL, "the expiry date is in the past");
    eg_key_t k;
    memset(&k, 0, sizeof(k));
    if (spec->ips && *spec->ips) {
        eg_cidr_t *v;
        size_t n;
        char bad[80];
        if ((rc = eg_cidr_list_parse(spec->ips, &v, &n, bad, sizeof(bad))) != EG_OK) {
            if (rc == EG_ENOMEM) return rc;
            FAIL(EG_EINVAL, "'%s' is not an IP address or CIDR block", bad);
        }
        free(v);
        if (strlen(spec->ips) > 900) FAIL(EG_EINVAL, "ips are longer than 900 characters");
    }
    if ((rc = scopes_normalize(spec->scopes, &k.scopes, err, errlen))) return rc;
    if (!(k.name = strdup(spec->name)) || (spec->owner && *spec->owner && !(k.owner = strdup(spec->owner))) ||
        (spec->plan && *spec->plan && !(k.plan = strdup(spec->plan))) ||
        (spec->ips && *spec->ips && !(k.ips = strdup(spec->ips)))) {
        eg_key_clear(&k);
        return EG_ENOMEM;
    }
    snprintf(k.env, sizeof(k.env), "%s", env);
    k.status = EG_KEY_ACTIVE;
    k.expires = spec->expires;
    k.created = now;
    /* a fresh random id; retry the rare collision */
    for (int attempt = 0; attempt < 5; attempt++) {
        eg_apikey_info_t info;
        if ((rc = eg_apikey_generate(env, NULL, secret, EG_APIKEY_LEN + 1, &info)) != EG_OK ||
            (rc = eg_apikey_hash(pepper, pepper_len, secret, EG_APIKEY_LEN, k.hash)) != EG_OK) {
            snprintf(err, errlen, "generating the key failed");
            break;
        }
        memcpy(k.id, info.id, sizeof(k.id));
        rc = eg_store_key_insert(s, &k);
        if (rc != EG_EEXIST) break;
    }
    if (rc == EG_OK) {
        *out = k;
        return EG_OK;
    }
    if (rc == EG_EIO || rc == EG_EEXIST) snprintf(err, errlen, "%s", eg_store_error(s));
    OPENSSL_cleanse(secret, EG_APIKEY_LEN + 1);
    eg_key_clear(&k);
    return rc == EG_EEXIST ? EG_EIO : rc;
}

int eg_keys_get(eg_store_t *s, const char *id, eg_key_t *out, char *err, size_t errlen)
{
    if (!eg_apikey_id_valid(id)) FAIL(EG_EINVAL, "'%.20s' is not a key id (8 letters and digits)", id);
    int rc = eg_store_key_get(s, id, out);
    if (rc == EG_ENOENT) FAIL(rc, "no key with id %s", id);
    if (rc == EG_EIO) FAIL(rc, "%s", eg_store_error(s));
    return rc;
}

int eg_keys_set_status(eg_store_t *s, const char *id, eg_key_status_t status, const char *reason,
                       eg_key_t *out, char *err, size_t errlen)
{
    int rc;
    if (status == EG_KEY_SUSPENDED && (!reason || !*reason)) FAIL(EG_EINVAL, "suspending a key needs a reason");
    if ((rc = text_ok("reason", reason, 300, err, errlen))) return rc;
    eg_key_t k;
    if ((rc = eg_keys_get(s, id, &k, err, errlen))) return rc;
    if (k.status == EG_KEY_REVOKED && status != EG_KEY_REVOKED) {
        eg_key_clear(&k);
        FAIL(EG_EINVAL, "key %s is revoked; a revoked key cannot be %s", id,
             status == EG_KEY_ACTIVE ? "resumed" : "suspended");
    }
    char *r = NULL;
    if (reason && *reason && !(r = strdup(reason))) {
        eg_key_clear(&k);
        return EG_ENOMEM;
    }
    free(k.reason);
    k.reason = status == EG_KEY_ACTIVE ? (free(r), NULL) : r;
    k.status = status;
    if (status == EG_KEY_REVOKED) k.prev_until = 0; /* no grace for a revoked key's old secret */
    if ((rc = eg_store_key_update(s, &k)) != EG_OK) {
        snprintf(err, errlen, "%s", rc == EG_ENOENT ? "the key was deleted meanwhile" : eg_store_error(s));
        eg_key_clear(&k);
        return rc;
    }
    *out = k;
    return EG_OK;
}

int eg_keys_plan_ok(const eg_config_t *cfg, const char *plan, char *err, size_t errlen)
{
    if (!plan || !*plan) return EG_OK;
    for (size_t i = 0; i < cfg->nplans; i++) /* not eg_config_plan: keys.c links without config.c */
        if (strcmp(cfg->plans[i].name, plan) == 0) return EG_OK;
    size_t at = (size_t)snprintf(err, errlen,
                                 "no plan named '%.60s' under plans: in the configuration", plan);
    /* the names there are, so the caller sees the choice */
    for (size_t i = 0; i < cfg->nplans && at < errlen; i++)
        at += (size_t)snprintf(err + at, errlen - at, "%s%s",
                               i ? ", " : " (plans: ", cfg->plans[i].name);
    if (at < errlen) snprintf(err + at, errlen - at, "%s", cfg->nplans ? ")" : " (none defined)");
    return EG_EINVAL;
}

int eg_keys_set_plan(eg_store_t *s, const char *id, const char *plan, eg_key_t *out, char *err, size_t errlen)
{
    int rc;
    if ((rc = text_ok("plan", plan, 60, err, errlen))) return rc;
    eg_key_t k;
    if ((rc = eg_keys_get(s, id, &k, err, errlen))) return rc;
    char *p = NULL;
    if (plan && *plan && !(p = strdup(plan))) {
        eg_key_clear(&k);
        return EG_ENOMEM;
    }
    free(k.plan);
    k.plan = p;
    if ((rc = eg_store_key_update(s, &k)) != EG_OK) {
        snprintf(err, errlen, "%s", rc == EG_ENOENT ? "the key was deleted meanwhile" : eg_store_error(s));
        eg_key_clear(&k);
        return rc;
    }
    *out = k;
    return EG_OK;
}

int eg_keys_rotate(eg_store_t *s, const unsigned char *pepper, size_t pepper_len, const char *id,
                   long long grace_s, long long now, char secret[EG_APIKEY_LEN + 1], eg_key_t *out,
                   char *err, size_t errlen)
{
    int rc;
    eg_key_t k;
    if (grace_s < 0) FAIL(EG_EINVAL, "the grace period cannot be negative");
    if ((rc = eg_keys_get(s, id, &k, err, errlen))) return rc;
    if (k.status == EG_KEY_REVOKED) {
        eg_key_clear(&k);
        FAIL(EG_EINVAL, "key %s is revoked; create a new one", id);
    }
    memcpy(k.prev_hash, k.hash, sizeof(k.hash));
    k.prev_until = grace_s ? now + grace_s : 0;
    if ((rc = eg_apikey_generate(k.env[0] ? k.env : "live", k.id, secret, EG_APIKEY_LEN + 1, NULL)) ||
        (rc = eg_apikey_hash(pepper, pepper_len, secret, EG_APIKEY_LEN, k.hash))) {
        eg_key_clear(&k);
        FAIL(EG_EIO, "generating the key failed");
    }
    if ((rc = eg_store_key_update(s, &k)) != EG_OK) {
        snprintf(err, errlen, "%s", eg_store_error(s));
        OPENSSL_cleanse(secret, EG_APIKEY_LEN + 1);
        eg_key_clear(&k);
        return rc;
    }
    *out = k;
    return EG_OK;
}

/* The CLI and the admin API wait on Redis at least a second: the
 * gateway's timeout (50ms by default) is for requests, not for operators. */
const eg_redis_target_t *eg_keys_credit_redis(const eg_config_t *cfg, eg_redis_target_t *buf)
{
    if (!cfg->has_redis) return NULL;
    *buf = (eg_redis_target_t){cfg->redis.host, cfg->redis.port, cfg->redis_db,
                               cfg->redis_timeout_ms > 1000 ? cfg->redis_timeout_ms : 1000, cfg->redis_prefix};
    return buf;
}

int eg_keys_credits(eg_store_t *s, const eg_redis_target_t *redis, const char *id, long long add,
                    long long *balance, char *err, size_t errlen)
{
    eg_key_t k;
    int rc;
    if (add < -1000000000000LL || add > 1000000000000LL) FAIL(EG_EINVAL, "the amount must be within +-10^12");
    if ((rc = eg_keys_get(s, id, &k, err, errlen))) return rc;
    eg_key_clear(&k);
    if (redis) {
        rc = eg_redis_sync_credits(redis, id, add, balance, err, errlen);
        if (rc == -2) FAIL(EG_EINVAL, "the balance is %lld: cannot take %lld", *balance, -add);
        return rc == 0 ? EG_OK : EG_EIO;
    }
    long long now = 0;
    if ((rc = eg_store_credits_get(s, id, &now)) != EG_OK) FAIL(EG_EIO, "%s", eg_store_error(s));
    if (now + add < 0) FAIL(EG_EINVAL, "the balance is %lld: cannot take %lld", now, -add);
    rc = add ? eg_store_credits_add(s, id, add, balance) : (*balance = now, EG_OK);
    if (rc != EG_OK) FAIL(EG_EIO, "%s", eg_store_error(s));
    return EG_OK;
}

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *time_json(long long t)
{
    if (!t) return json_null();
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *split(const char *s, const char *sep)
{
    json_t *a = json_array();
    if (!s) return a;
    char *copy = strdup(s), *save = NULL;
    if (!copy) return a;
    for (char *t = strtok_r(copy, sep, &save); t; t = strtok_r(NULL, sep, &save)) {
        while (*t == ' ') t++;
        if (*t) json_array_append_new(a, json_string(t));
    }
    free(copy);
    return a;
}

json_t *eg_key_json(const eg_key_t *k)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(k->id));
    json_object_set_new(o, "name", json_string(k->name ? k->name : ""));
    json_object_set_new(o, "owner", opt_str(k->owner));
    json_object_set_new(o, "plan", opt_str(k->plan));
    json_object_set_new(o, "env", json_string(k->env[0] ? k->env : "live"));
    json_object_set_new(o, "scopes", split(k->scopes, " "));
    json_object_set_new(o, "allowed_ips", split(k->ips, ","));
    json_object_set_new(o, "status", json_string(eg_key_status_name(k->status)));
    json_object_set_new(o, "reason", opt_str(k->reason));
    json_object_set_new(o, "expires", time_json(k->expires));
    json_object_set_new(o, "created", time_json(k->created));
    json_object_set_new(o, "last_used", time_json(k->last_used));
    json_object_set_new(o, "previous_secret_valid_until", time_json(k->prev_until));
    return o;
}
