/* access.c - authentication and authorization (see access.h). */
#include "access.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int hname(const eg_http_header_t *h, const char *lit)
{
    return h->name_len == strlen(lit) && strncasecmp(h->name, lit, h->name_len) == 0;
}

int eg_access_is_principal_header(const eg_http_header_t *h)
{
    return h->name_len >= 8 && (h->name[0] | 0x20) == 'x' && h->name[1] == '-' &&
           (hname(h, "x-consumer-id") || hname(h, "x-key-id") || hname(h, "x-scopes"));
}

int eg_access_is_key_header(const eg_config_t *cfg, const eg_http_header_t *h)
{
    return hname(h, cfg->key_header);
}

static void refuse(eg_refusal_t *o, const char *code, const char *why)
{
    o->code = code;
    snprintf(o->why, sizeof(o->why), "%s", why);
}

static void www_auth(eg_refusal_t *o, const eg_config_t *cfg, const char *error, const char *scope)
{
    int n = snprintf(o->extra, sizeof(o->extra), "WWW-Authenticate: Bearer realm=\"%s\"", cfg->realm);
    if (error && n > 0 && (size_t)n < sizeof(o->extra))
        n += snprintf(o->extra + n, sizeof(o->extra) - (size_t)n, ", error=\"%s\"", error);
    if (scope && n > 0 && (size_t)n < sizeof(o->extra))
        n += snprintf(o->extra + n, sizeof(o->extra) - (size_t)n, ", scope=\"%.200s\"", scope);
    if (n > 0 && (size_t)n + 3 <= sizeof(o->extra)) memcpy(o->extra + n, "\r\n", 3);
    else o->extra[0] = '\0';
}

static json_t *split_json(const char *s, char sep)
{
    json_t *a = json_array();
    while (s && *s) {
        const char *e = strchr(s, sep);
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n) json_array_append_new(a, json_stringn(s, n));
        s = e ? e + 1 : s + n;
    }
    return a;
}

int eg_access_has_scope(const char *list, const char *scope)
{
    size_t n = strlen(scope);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, scope, n) == 0) return 1;
        p = e ? e + 1 : p + len;
    }
    return 0;
}

static int ip_refusal(eg_refusal_t *o, const char *client_ip, const char *allowed, const char *why)
{
    refuse(o, "ip_not_allowed", why);
    o->details = json_object();
    json_object_set_new(o->details, "client_ip", json_string(client_ip));
    json_object_set_new(o->details, "allowed_ips", split_json(allowed, ','));
    return -1;
}

/* Finds the credential: the API key header, or Authorization: Bearer. */
static void credentials(const eg_config_t *cfg, const eg_http1_msg_t *req, const eg_http_header_t **keyh,
                        const char **key, size_t *keylen, const char **bearer, size_t *bearerlen,
                        const eg_http_header_t **authh)
{
    *keyh = eg_http1_header(req, cfg->key_header);
    *key = *keyh ? (*keyh)->value : NULL;
    *keylen = *keyh ? (*keyh)->value_len : 0;
    *authh = eg_http1_header(req, "authorization");
    *bearer = NULL;
    *bearerlen = 0;
    if (*authh && (*authh)->value_len > 7 && strncasecmp((*authh)->value, "Bearer ", 7) == 0) {
        *bearer = (*authh)->value + 7;
        *bearerlen = (*authh)->value_len - 7;
        while (*bearerlen && **bearer == ' ') (*bearer)++, (*bearerlen)--;
    }
}

static int check_key(const eg_config_t *cfg, eg_keyring_t *kr, eg_apikey_hasher_t *hasher, const char *key, size_t len,
                     const char *client_ip, const eg_cidr_t *client, long long now, eg_access_t *a,
                     eg_refusal_t *o)
{
    eg_auth_result_t res = eg_keyring_check(kr, hasher, key, len, client, now, &a->p);
    switch (res) {
    case EG_AUTH_OK: a->authenticated = 1; return 0;
    case EG_AUTH_MISSING:
        refuse(o, "missing_api_key", a->p.why);
        www_auth(o, cfg, NULL, NULL);
        return -1;
    case EG_AUTH_MALFORMED:
        refuse(o, "malformed_api_key", a->p.why);
        www_auth(o, cfg, "invalid_token", NULL);
        return -1;
    case EG_AUTH_INVALID:
        refuse(o, "invalid_api_key", a->p.why);
        www_auth(o, cfg, "invalid_token", NULL);
        return -1;
    case EG_AUTH_SUSPENDED:
        refuse(o, "suspended_api_key", a->p.why);
        o->details = json_object();
        json_object_set_new(o->details, "suspension_reason", json_string(a->p.detail));
        if (cfg->contact) json_object_set_new(o->details, "contact", json_string(cfg->contact));
        return -1;
    case EG_AUTH_IP: return ip_refusal(o, client_ip, a->p.detail, a->p.why);
    case EG_AUTH_UNAVAILABLE:
        refuse(o, "service_unavailable", a->p.why);
        snprintf(o->message, sizeof(o->message), "Authentication is temporarily unavailable.");
        o->retry_after = (long long)(cfg->store_refresh_ms / 1000) + 1;
        return -1;
    }
    return -1;
}

static int check_jwt(const eg_config_t *cfg, eg_jwt_mac_t *mac, const char *tok, size_t len, long long now,
                     eg_access_t *a, eg_refusal_t *o)
{
    eg_jwt_claims_t claims;
    char msg[160] = "";
    memset(&claims, 0, sizeof(claims));
    eg_jwt_status_t st = eg_jwt_verify(cfg->jwt_keys, mac, &cfg->jwt, tok, len, now, &claims, msg, sizeof(msg));
    if (st != EG_JWT_OK) {
        refuse(o, "invalid_token", msg);
        snprintf(o->message, sizeof(o->message), "Access token is invalid: %s.", msg);
        o->details = json_pack("{s:s}", "reason", eg_jwt_status_name(st));
        www_auth(o, cfg, "invalid_token", NULL);
        return -1;
    }
    memset(&a->p, 0, sizeof(a->p));
    snprintf(a->p.consumer, sizeof(a->p.consumer), "%s", claims.sub ? claims.sub : "");
    snprintf(a->p.key_id, sizeof(a->p.key_id), "%s", claims.kid ? claims.kid : "");
    size_t at = 0;
    for (size_t i = 0; i < claims.nscopes; i++) {
        size_t n = strlen(claims.scopes[i]);
        if (at + n + 2 > sizeof(a->p.scopes)) break;
        if (at) a->p.scopes[at++] = ' ';
        memcpy(a->p.scopes + at, claims.scopes[i], n);
        at += n;
    }
    a->p.scopes[at] = '\0';
    eg_jwt_claims_free(&claims);
    a->authenticated = 1;
    return 0;
}

static int check_scopes(const eg_config_t *cfg, const eg_route_cfg_t *r, eg_access_t *a, eg_refusal_t *o);

/* auth: client_cert: the TLS layer verified the certificate against the
 * listener's client_ca; here its subject is the principal, and the route
 * may name the subjects it lets in. */
static int check_cert(const eg_config_t *cfg, const eg_route_cfg_t *r, const char *subject, eg_access_t *a,
                      eg_refusal_t *o)
{
    if (!subject || !subject[0]) {
        refuse(o, "unauthorized", "no verified client certificate");
        snprintf(o->message, sizeof(o->message), "A client certificate is required.");
        return -1;
    }
    int ok = r->nsubjects == 0;
    for (size_t i = 0; !ok && i < r->nsubjects; i++) ok = strcmp(r->subjects[i], subject) == 0;
    if (!ok) {
        refuse(o, "forbidden", "client certificate subject not in client_subjects");
        snprintf(o->message, sizeof(o->message), "The client certificate is not allowed on this route.");
        o->details = json_pack("{s:s}", "subject", subject);
        return -1;
    }
    memset(&a->p, 0, sizeof(a->p));
    snprintf(a->p.consumer, sizeof(a->p.consumer), "%s", subject);
    a->authenticated = 1;
    return check_scopes(cfg, r, a, o);
}

static int check_scopes(const eg_config_t *cfg, const eg_route_cfg_t *r, eg_access_t *a, eg_refusal_t *o)
{
    const char *missing = NULL;
    if (r->admin && !eg_access_has_scope(a->p.scopes, "admin")) missing = "admin";
    for (size_t i = 0; !missing && i < r->nscopes; i++)
        if (!eg_access_has_scope(a->p.scopes, r->scopes[i])) missing = r->scopes[i];
    int any_ok = r->nscopes_any == 0;
    for (size_t i = 0; !any_ok && i < r->nscopes_any; i++)
        any_ok = eg_access_has_scope(a->p.scopes, r->scopes_any[i]);
    if (!missing && any_ok) return 0;
    refuse(o, "insufficient_scope", missing ? "a required scope is missing" : "none of the accepted scopes");
    o->details = json_object();
    char want[256] = "";
    if (missing) {
        json_object_set_new(o->details, "required_permission", json_string(missing));
        snprintf(want, sizeof(want), "%s", missing);
    } else {
        json_t *anyof = json_array();
        for (size_t i = 0; i < r->nscopes_any; i++) {
            json_array_append_new(anyof, json_string(r->scopes_any[i]));
            size_t n = strlen(want);
            snprintf(want + n, sizeof(want) - n, "%s%s", n ? " " : "", r->scopes_any[i]);
        }
        json_object_set_new(o->details, "required_any_of", anyof);
    }
    json_object_set_new(o->details, "current_permissions", split_json(a->p.scopes, ' '));
    www_auth(o, cfg, "insufficient_scope", want);
    return -1;
}

int eg_access_check(const eg_config_t *cfg, const eg_route_cfg_t *r, eg_keyring_t *kr,
                    eg_apikey_hasher_t *hasher, eg_jwt_mac_t *jwt_mac, const eg_http1_msg_t *req, const char *client_ip, const eg_cidr_t *client,
                    const char *cert_subject, long long now, eg_access_t *a, eg_refusal_t *o)
{
    /* not a memset: this runs for every request of an authenticated route */
    o->code = NULL;
    o->message[0] = o->extra[0] = o->why[0] = '\0';
    o->details = NULL;
    o->retry_after = -1;
    a->authenticated = 0;
    a->cred = NULL;
    if (r->nallow_ips && !eg_cidr_any(r->allow_ips, r->nallow_ips, client))
        return ip_refusal(o, client_ip, r->allow_ips_text, "client address not in the route's allow list");
    if (r->auth == EG_AUTHN_NONE) return 0;
    if (r->auth == EG_AUTHN_CERT) return check_cert(cfg, r, cert_subject, a, o);
    const eg_http_header_t *keyh, *authh;
    const char *key, *bearer;
    size_t keylen, bearerlen;
    credentials(cfg, req, &keyh, &key, &keylen, &bearer, &bearerlen, &authh);
    /* optional: no credential at all is an anonymous caller; one that is
     * there is checked, and a bad one refused (never taken as anonymous) */
    if (r->auth_optional && !keyh && !authh) return 0;
    int rc;
    int bearer_is_key = bearer && bearerlen > 3 && memcmp(bearer, "eg_", 3) == 0;
    if (r->auth == EG_AUTHN_API_KEY || (r->auth == EG_AUTHN_ANY && (key || bearer_is_key))) {
        if (!kr) {
            refuse(o, "service_unavailable", "no key store");
            o->retry_after = 5;
            return -1;
        }
        if (!key && bearer) { /* Authorization: Bearer eg_live_... */
            key = bearer;
            keylen = bearerlen;
            keyh = authh;
        }
        rc = check_key(cfg, kr, hasher, key, keylen, client_ip, client, now, a, o);
        a->cred = keyh;
    } else if (!bearer) {
        refuse(o, "unauthorized", "no bearer token presented");
        snprintf(o->message, sizeof(o->message), "%s",
                 r->auth == EG_AUTHN_ANY ? "An API key or a bearer token is required."
                                         : "A bearer token is required (Authorization: Bearer <token>).");
        www_auth(o, cfg, NULL, NULL);
        return -1;
    } else {
        rc = check_jwt(cfg, jwt_mac, bearer, bearerlen, now, a, o);
    }
    if (rc != 0) return rc;
    return check_scopes(cfg, r, a, o);
}
