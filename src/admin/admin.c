/* admin.c - the key administration API (see admin.h). */
#include "admin.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "errgate/http1.h"
#include "errgate/reqid.h"
#include "errgate/units.h"
#include "keys.h"
#include "respond.h"
#include "usage_report.h"

typedef struct {
    const eg_config_t *cfg;
    const eg_dialect_t *dialect;
    const char *reqid;
    char *out;
    size_t outlen;
    int head_only; /* a HEAD request: the head of the answer alone */
} reply_t;

int eg_admin_is_keys_path(const char *t, size_t n)
{
    return (n == 5 && memcmp(t, "/keys", 5) == 0) || (n > 6 && memcmp(t, "/keys/", 6) == 0);
}

/* retry_after: seconds for Retry-After, -1 for the default (5 for a
 * store that is unavailable, none otherwise). */
static void error_reply_details(reply_t *r, const char *code, const char *message,
                                const char *extra, long long retry_after, json_t *details)
{
    eg_error_t *e = NULL;
    if (eg_error_from_catalog(r->cfg->catalog, code, &e) != EG_OK) {
        json_decref(details);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(details, k, v) eg_error_set_detail(e, k, json_incref(v));
    json_decref(details);
    eg_error_set(e, EG_S_REQUEST_ID, r->reqid);
    if (message) eg_error_set(e, EG_S_MESSAGE, message);
    if (retry_after < 0 && strcmp(code, "service_unavailable") == 0) retry_after = 5;
    if (retry_after >= 0) eg_error_set_retry_after(e, retry_after);
    size_t cap = 16384;
    if ((r->out = malloc(cap))) {
        char date[EG_HTTP1_DATE_LEN + 1];
        eg_http1_date((int64_t)time(NULL), date);
        r->outlen = eg_respond_error(e, r->dialect, r->cfg->catalog, date, extra, 0, r->head_only,
                                     r->out, cap);
        if (!r->outlen) {
            free(r->out);
            r->out = NULL;
        }
    }
    eg_error_free(e);
}

static void error_reply_after(reply_t *r, const char *code, const char *message, const char *extra,
                              long long retry_after)
{
    error_reply_details(r, code, message, extra, retry_after, NULL);
}

static void error_reply(reply_t *r, const char *code, const char *message, const char *extra)
{
    error_reply_after(r, code, message, extra, -1);
}

const eg_dialect_t *eg_admin_dialect(const eg_config_t *cfg, const eg_http1_msg_t *req)
{
    const eg_dialect_t *d = cfg->admin_dialect ? cfg->admin_dialect : cfg->dialect;
    const eg_http_header_t *acc = req ? eg_http1_header(req, "accept") : NULL;
    if (cfg->negotiate && acc)
        d = eg_dialects_negotiate(cfg->dialects, d, acc->value, acc->value_len);
    return d;
}

void eg_admin_request_id(const eg_config_t *cfg, const eg_http1_msg_t *req,
                         const unsigned char rnd[16], char *out)
{
    const eg_http_header_t *h = req ? eg_http1_header(req, cfg->request_id_header) : NULL;
    if (cfg->trust_request_id && h && eg_reqid_valid(h->value, h->value_len)) {
        memcpy(out, h->value, h->value_len);
        out[h->value_len] = '\0';
    } else {
        eg_reqid_generate(rnd, out);
    }
}

char *eg_admin_error(const eg_config_t *cfg, const eg_http1_msg_t *req, const char *code,
                     const char *message, const char *extra, long long retry_after,
                     const char *reqid, size_t *outlen)
{
    return eg_admin_error_details(cfg, req, code, message, extra, retry_after, NULL, reqid, outlen);
}

char *eg_admin_error_details(const eg_config_t *cfg, const eg_http1_msg_t *req, const char *code,
                             const char *message, const char *extra, long long retry_after,
                             json_t *details, const char *reqid, size_t *outlen)
{
    reply_t r = {cfg,   eg_admin_dialect(cfg, req),
                 reqid, NULL,
                 0,     req && eg_method_bit(req->method, req->method_len) == EG_M_HEAD};
    error_reply_details(&r, code, message, extra, retry_after, details);
    *outlen = r.outlen;
    return r.out;
}

int eg_admin_is_get(const eg_http1_msg_t *req, int *head)
{
    unsigned m = eg_method_bit(req->method, req->method_len);
    if (head) *head = m == EG_M_HEAD;
    return m == EG_M_GET || m == EG_M_HEAD;
}

char *eg_admin_not_get(const eg_config_t *cfg, const eg_http1_msg_t *req, const char *reqid,
                       size_t *outlen)
{
    return eg_admin_error(cfg, req, "method_not_allowed", "Use GET or HEAD.",
                          "Allow: GET, HEAD\r\n", -1, reqid, outlen);
}

/* Takes doc. */
static void json_reply(reply_t *r, int status, json_t *doc)
{
    char *body = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_INDENT(2));
    json_decref(doc);
    if (!body) return;
    size_t blen = strlen(body), cap = blen + 512;
    if ((r->out = malloc(cap))) {
        char date[EG_HTTP1_DATE_LEN + 1];
        eg_http1_date((int64_t)time(NULL), date);
        int n = snprintf(r->out, 512,
                         "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: "
                         "application/json\r\nContent-Length: %zu\r\n"
                         "X-Request-ID: %s\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                         status, eg_reason_phrase(status), date, blen + 1, r->reqid);
        memcpy(r->out + n, body, blen);
        r->out[n + (int)blen] = '\n';
        r->outlen = (size_t)n + blen + 1;
    }
    free(body);
}

/* Maps a keys.c failure to the error the API answers. */
static void keys_failure(reply_t *r, int rc, const char *err)
{
    if (rc == EG_EINVAL)
        error_reply(r, "validation_error", err, NULL);
    else if (rc == EG_ENOENT)
        error_reply(r, "not_found", err, NULL);
    else if (rc == EG_EIO)
        error_reply(r, "service_unavailable", "The key store is unavailable.", NULL);
    else
        error_reply(r, "internal_error", NULL, NULL);
}

static int authorized(reply_t *r, const eg_http1_msg_t *req)
{
    char extra[200];
    snprintf(extra, sizeof(extra), "WWW-Authenticate: Bearer realm=\"%s-admin\"\r\n",
             r->cfg->realm);
    if (!r->cfg->has_admin_token) {
        error_reply(
            r, "forbidden",
            "The admin API is disabled: configure auth.admin_token_file or auth.admin_token_env.",
            NULL);
        return 0;
    }
    const eg_http_header_t *h = eg_http1_header(req, "authorization");
    if (!h || h->value_len <= 7 || strncasecmp(h->value, "Bearer ", 7) != 0) {
        error_reply(r, "unauthorized", "The admin API needs Authorization: Bearer <admin token>.",
                    extra);
        return 0;
    }
    unsigned char digest[32];
    if (eg_apikey_hash(NULL, 0, h->value + 7, h->value_len - 7, digest) != EG_OK ||
        CRYPTO_memcmp(digest, r->cfg->admin_token_hash, 32) != 0) {
        snprintf(extra, sizeof(extra),
                 "WWW-Authenticate: Bearer realm=\"%s-admin\", error=\"invalid_token\"\r\n",
                 r->cfg->realm);
        error_reply(r, "unauthorized", "The admin token is not valid.", extra);
        return 0;
    }
    return 1;
}

/* A string member, or a list of strings joined with sep; NULL when absent. */
static int member_text(json_t *o, const char *name, char sep, char *buf, size_t cap,
                       const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, name);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) {
        snprintf(buf, cap, "%s", json_string_value(v));
    } else if (json_is_array(v)) {
        size_t at = 0, i;
        json_t *x;
        buf[0] = '\0';
        json_array_foreach(v, i, x)
        {
            if (!json_is_string(x)) {
                snprintf(err, errlen, "%s must be a list of strings", name);
                return -1;
            }
            int n = snprintf(buf + at, cap - at, "%s%s", at ? (char[]){sep, 0} : "",
                             json_string_value(x));
            if (n < 0 || (size_t)n >= cap - at) {
                snprintf(err, errlen, "%s is too long", name);
                return -1;
            }
            at += (size_t)n;
        }
    } else {
        snprintf(err, errlen, "%s must be a string or a list of strings", name);
        return -1;
    }
    *out = buf;
    return 0;
}

static json_t *parse_body(reply_t *r, const char *body, size_t blen)
{
    if (blen == 0) return json_object();
    json_error_t je;
    json_t *doc = json_loadb(body, blen, JSON_REJECT_DUPLICATES, &je);
    if (!doc || !json_is_object(doc)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "The body must be a JSON object: %s (line %d, column %d).",
                 doc ? "not an object" : je.text, je.line, je.column);
        json_decref(doc);
        error_reply(r, "invalid_json", msg, NULL);
        return NULL;
    }
    return doc;
}

static void create(reply_t *r, eg_keyring_t *kr, json_t *in)
{
    char scopes[1024], ips[1024], err[300];
    eg_keyspec_t spec = {0};
    json_t *v;
    if ((v = json_object_get(in, "name")) && json_is_string(v)) spec.name = json_string_value(v);
    if ((v = json_object_get(in, "owner")) && json_is_string(v)) spec.owner = json_string_value(v);
    if ((v = json_object_get(in, "plan")) && json_is_string(v)) spec.plan = json_string_value(v);
    if (v && !json_is_string(v) && !json_is_null(v)) {
        error_reply(r, "validation_error", "plan must be the name of a plan, or null for none",
                    NULL);
        return;
    }
    if ((v = json_object_get(in, "env")) && json_is_string(v)) spec.env = json_string_value(v);
    if (member_text(in, "scopes", ',', scopes, sizeof(scopes), &spec.scopes, err, sizeof(err)) ||
        member_text(in, "ips", ',', ips, sizeof(ips), &spec.ips, err, sizeof(err))) {
        error_reply(r, "validation_error", err, NULL);
        return;
    }
    if ((v = json_object_get(in, "expires")) && !json_is_null(v)) {
        if (!json_is_string(v) ||
            eg_keys_parse_date(json_string_value(v), &spec.expires) != EG_OK) {
            error_reply(r, "validation_error",
                        "expires must be a date like 2027-01-31 or 2027-01-31T12:00:00Z", NULL);
            return;
        }
    }
    if (eg_keys_plan_ok(r->cfg, spec.plan, err, sizeof(err)) != EG_OK) {
        error_reply(r, "validation_error", err, NULL);
        return;
    }
    char secret[EG_APIKEY_LEN + 1];
    eg_key_t k;
    int rc = eg_keys_create(eg_keyring_store(kr), r->cfg->pepper, r->cfg->pepper_len, &spec,
                            (long long)time(NULL), secret, &k, err, sizeof(err));
    if (rc != EG_OK) {
        keys_failure(r, rc, err);
        return;
    }
    eg_keyring_reload(kr);
    json_t *doc = json_pack("{s:o, s:s}", "key", eg_key_json(&k), "secret", secret);
    OPENSSL_cleanse(secret, sizeof(secret));
    eg_key_clear(&k);
    json_reply(r, 201, doc);
}

static void list(reply_t *r, eg_keyring_t *kr)
{
    eg_key_t *all = NULL;
    size_t n = 0;
    if (eg_store_key_list(eg_keyring_store(kr), &all, &n) != EG_OK) {
        error_reply(r, "service_unavailable", "The key store is unavailable.", NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, eg_key_json(&all[i]));
        eg_key_clear(&all[i]);
    }
    free(all);
    json_reply(r, 200, json_pack("{s:o}", "keys", arr));
}

static void one(reply_t *r, eg_keyring_t *kr, const char *id, const char *action, json_t *in)
{
    char err[300];
    eg_key_t k;
    int rc;
    char secret[EG_APIKEY_LEN + 1] = "";
    const char *reason = json_string_value(json_object_get(in, "reason"));
    if (!action) {
        rc = eg_keys_get(eg_keyring_store(kr), id, &k, err, sizeof(err));
    } else if (strcmp(action, "suspend") == 0) {
        rc = eg_keys_set_status(eg_keyring_store(kr), id, EG_KEY_SUSPENDED, reason, &k, err,
                                sizeof(err));
    } else if (strcmp(action, "resume") == 0) {
        rc =
            eg_keys_set_status(eg_keyring_store(kr), id, EG_KEY_ACTIVE, NULL, &k, err, sizeof(err));
    } else if (strcmp(action, "revoke") == 0) {
        rc = eg_keys_set_status(eg_keyring_store(kr), id, EG_KEY_REVOKED, reason, &k, err,
                                sizeof(err));
    } else if (strcmp(action, "credits") == 0) {
        long long add = 0, balance = 0;
        json_t *a = json_object_get(in, "add");
        if (a && !json_is_integer(a)) {
            error_reply(r, "validation_error", "add must be an integer", NULL);
            return;
        }
        if (a) add = (long long)json_integer_value(a);
        eg_redis_target_t rt;
        rc = eg_keys_credits(eg_keyring_store(kr), eg_keys_credit_redis(r->cfg, &rt), id, add,
                             &balance, err, sizeof(err));
        if (rc != EG_OK) {
            keys_failure(r, rc, err);
            return;
        }
        json_reply(r, 200, json_pack("{s:s, s:I}", "id", id, "credits", (json_int_t)balance));
        return;
    } else if (strcmp(action, "plan") == 0) {
        json_t *p = json_object_get(in, "plan");
        if (!p || !(json_is_string(p) || json_is_null(p))) {
            error_reply(r, "validation_error", "plan must be the name of a plan, or null for none",
                        NULL);
            return;
        }
        const char *plan = json_string_value(p);
        if (eg_keys_plan_ok(r->cfg, plan, err, sizeof(err)) != EG_OK) {
            error_reply(r, "validation_error", err, NULL);
            return;
        }
        rc = eg_keys_set_plan(eg_keyring_store(kr), id, plan, &k, err, sizeof(err));
    } else if (strcmp(action, "rotate") == 0) {
        uint64_t grace = r->cfg->rotation_grace_ms;
        json_t *g = json_object_get(in, "grace");
        if (g &&
            (!json_is_string(g) || eg_parse_duration_ms(json_string_value(g), &grace) != EG_OK)) {
            error_reply(r, "validation_error", "grace must be a duration like 1h or 0s", NULL);
            return;
        }
        rc = eg_keys_rotate(eg_keyring_store(kr), r->cfg->pepper, r->cfg->pepper_len, id,
                            (long long)(grace / 1000), (long long)time(NULL), secret, &k, err,
                            sizeof(err));
    } else {
        error_reply(r, "not_found",
                    "Unknown key action (suspend, resume, revoke, rotate, plan, credits).", NULL);
        return;
    }
    if (rc != EG_OK) {
        keys_failure(r, rc, err);
        return;
    }
    if (action) eg_keyring_reload(kr);
    json_t *doc = json_pack("{s:o}", "key", eg_key_json(&k));
    if (secret[0]) json_object_set_new(doc, "secret", json_string(secret));
    OPENSSL_cleanse(secret, sizeof(secret));
    eg_key_clear(&k);
    json_reply(r, 200, doc);
}

char *eg_admin_keys(const eg_config_t *cfg, eg_keyring_t *kr, const eg_http1_msg_t *req,
                    const char *body, size_t blen, const char *reqid, size_t *outlen)
{
    reply_t r = {cfg,   eg_admin_dialect(cfg, req),
                 reqid, NULL,
                 0,     eg_method_bit(req->method, req->method_len) == EG_M_HEAD};
    unsigned m = eg_method_bit(req->method, req->method_len);
    /* /keys, /keys/ID, /keys/ID/ACTION */
    char id[16] = "", action[16] = "";
    const char *t = req->target + 5;
    size_t tl = req->target_len - 5;
    int shape_ok = 1;
    if (tl > 0) {
        const char *slash = memchr(t + 1, '/', tl - 1);
        size_t idl = slash ? (size_t)(slash - t - 1) : tl - 1;
        size_t al = slash ? tl - (size_t)(slash - t) - 1 : 0;
        if (idl == 0 || idl >= sizeof(id) || al >= sizeof(action) || (slash && al == 0))
            shape_ok = 0;
        else {
            memcpy(id, t + 1, idl);
            if (slash) memcpy(action, slash + 1, al);
        }
    }
    if (!authorized(&r, req)) {
        /* r.out holds the refusal */
    } else if (!kr) {
        error_reply(&r, "service_unavailable", "No key store is configured.", NULL);
    } else if (!shape_ok) {
        error_reply(&r, "not_found", "No such admin resource.", NULL);
    } else if (!id[0] && m == EG_M_GET) {
        list(&r, kr);
    } else if (!id[0] && m == EG_M_POST) {
        json_t *in = parse_body(&r, body, blen);
        if (in) create(&r, kr, in);
        json_decref(in);
    } else if (id[0] && !action[0] && m == EG_M_GET) {
        one(&r, kr, id, NULL, NULL);
    } else if (id[0] && strcmp(action, "credits") == 0 && m == EG_M_GET) {
        json_t *in = json_object();
        one(&r, kr, id, action, in);
        json_decref(in);
    } else if (id[0] && action[0] && m == EG_M_POST) {
        json_t *in = parse_body(&r, body, blen);
        if (in) one(&r, kr, id, action, in);
        json_decref(in);
    } else {
        error_reply(&r, "method_not_allowed", id[0] && action[0] ? "Use POST." : "Use GET or POST.",
                    id[0] && action[0] ? "Allow: POST\r\n"
                    : !id[0]           ? "Allow: GET, POST\r\n"
                                       : "Allow: GET\r\n");
    }
    *outlen = r.outlen;
    return r.out;
}

int eg_admin_is_usage_path(const char *t, size_t n)
{
    return n >= 6 && memcmp(t, "/usage", 6) == 0 && (n == 6 || t[6] == '?');
}

/* GET /usage?key=ID|subject=S&from=&to=&group_by=day|route&format=json|csv:
 * every key's usage (or one's), as `errgate usage` prints it. Reads the
 * store on this thread (the admin listener's), as /keys does; u, when the
 * gateway records to SQLite, commits what it holds first. */
char *eg_admin_usage(const eg_config_t *cfg, eg_usage_t *u, const eg_http1_msg_t *req, const char *reqid,
                     size_t *outlen)
{
    int head;
    int get = eg_admin_is_get(req, &head);
    reply_t r = {cfg, eg_admin_dialect(cfg, req), reqid, NULL, 0, head};
    const char *qm = memchr(req->target, '?', req->target_len);
    const char *qs = qm ? qm + 1 : "";
    size_t qn = qm ? req->target_len - (size_t)(qm + 1 - req->target) : 0;
    char key[160] = "", subject[200] = "", from[80] = "", to[80] = "", group[16] = "", format[16] = "json";
    eg_usage_query_t q = {0};
    eg_usage_period_at(0, (int64_t)time(NULL), &q.from, &q.to);
    const char *bad = NULL;
    if (eg_usage_query_param(qs, qn, "key", key, sizeof(key)) < 0) bad = "key";
    else if (eg_usage_query_param(qs, qn, "subject", subject, sizeof(subject)) < 0) bad = "subject";
    else if (eg_usage_query_param(qs, qn, "from", from, sizeof(from)) < 0 ||
             (from[0] && eg_usage_parse_time(from, 0, &q.from) != EG_OK))
        bad = "from";
    else if (eg_usage_query_param(qs, qn, "to", to, sizeof(to)) < 0 ||
             (to[0] && eg_usage_parse_time(to, 1, &q.to) != EG_OK))
        bad = "to";
    else if (eg_usage_query_param(qs, qn, "group_by", group, sizeof(group)) < 0 ||
             eg_usage_group_parse(group, &q.group) != EG_OK)
        bad = "group_by";
    else if (eg_usage_query_param(qs, qn, "format", format, sizeof(format)) < 0 ||
             (strcmp(format, "json") != 0 && strcmp(format, "csv") != 0))
        bad = "format";
    if (!authorized(&r, req)) {
        /* r.out holds the refusal */
    } else if (!get) {
        error_reply(&r, "method_not_allowed", "Use GET or HEAD.", "Allow: GET, HEAD\r\n");
    } else if (bad) {
        char msg[160];
        snprintf(msg, sizeof(msg), "The %s parameter is not valid (see docs/metering.md).", bad);
        error_reply_details(&r, "invalid_parameter_value", msg, NULL, -1, json_pack("{s:s}", "parameter", bad));
    } else if (q.from >= q.to) {
        error_reply_details(&r, "invalid_time_range", "from must come before to.", NULL, -1,
                            json_pack("{s:s}", "parameter", "from"));
    } else {
        char sub[200];
        if (key[0]) {
            snprintf(sub, sizeof(sub), "k:%s", key);
            q.subject = sub;
        } else if (subject[0]) {
            q.subject = subject;
        }
        if (u) eg_usage_sync(u, 2000);
        eg_usage_row_t *rows = NULL;
        size_t n = 0;
        char err[256];
        if (eg_usage_read(cfg, &q, &rows, &n, err, sizeof(err)) != EG_OK) {
            error_reply(&r, "service_unavailable", "Usage cannot be read now.", NULL);
        } else if (strcmp(format, "csv") == 0) {
            char *body = NULL;
            size_t blen = 0;
            FILE *f = open_memstream(&body, &blen);
            if (f) {
                eg_usage_report_csv(f, rows, n, q.from, q.to, q.group);
                fclose(f);
            }
            size_t cap = blen + 512;
            if (body && (r.out = malloc(cap))) {
                char date[EG_HTTP1_DATE_LEN + 1];
                eg_http1_date((int64_t)time(NULL), date);
                int k = snprintf(r.out, 512,
                                 "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: text/csv; charset=utf-8; "
                                 "header=present\r\nContent-Length: %zu\r\nX-Request-ID: %s\r\n"
                                 "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                                 date, blen, reqid);
                if (!r.head_only) memcpy(r.out + k, body, blen);
                r.outlen = (size_t)k + (r.head_only ? 0 : blen);
            }
            free(body);
        } else {
            json_t *doc = eg_usage_report_json(rows, n, q.from, q.to, q.group, q.subject != NULL);
            if (doc && q.subject) json_object_set_new(doc, "subject", json_string(q.subject));
            if (doc) json_reply(&r, 200, doc);
        }
        eg_usage_rows_free(rows, n);
    }
    *outlen = r.outlen;
    return r.out;
}
