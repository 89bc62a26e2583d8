/* access.h - the authenticate and authorize stages of the request path.
 *
 * Given a parsed request and its route, decides who the caller is (API key
 * from the keyring, or a JWT) and whether the route lets them in (route
 * allow list, the key's allow list, scopes, admin). It never writes bytes:
 * a refusal is a decision (catalog code, message, details, headers) that
 * the proxy turns into an error in the dialect, like every other stage.
 */
#ifndef EG_ACCESS_H
#define EG_ACCESS_H

#include <jansson.h>

#include "config.h"
#include "errgate/http1.h"
#include "keyring.h"

typedef struct {
    int authenticated;
    eg_principal_t p;
    const eg_http_header_t *cred; /* the header that carried an API key: not forwarded */
} eg_access_t;

typedef struct {
    const char *code;     /* catalog code */
    char message[200];    /* "" = the catalog's message */
    json_t *details;      /* owned; NULL or an object */
    long long retry_after; /* -1 = none */
    char extra[400];      /* extra response headers, each ending in CRLF */
    char why[160];        /* for the error log: never a secret */
} eg_refusal_t;

/* cert_subject: the verified TLS client certificate's subject (RFC 2253),
 * NULL or "" when there is none; auth: client_cert takes it as the
 * principal (consumer), checked against the route's client_subjects.
 * 0 when the request may go on (a fills in), -1 with *out filled when it is
 * refused (free out->details with json_decref). kr may be NULL when no
 * route takes API keys; hasher (keyring.h) and jwt_mac (jwt.h) are the calling
 * thread's, or NULL for one-shot OpenSSL calls. */
int eg_access_check(const eg_config_t *cfg, const eg_route_cfg_t *r, eg_keyring_t *kr,
                    eg_apikey_hasher_t *hasher, eg_jwt_mac_t *jwt_mac, const eg_http1_msg_t *req, const char *client_ip, const eg_cidr_t *client,
                    const char *cert_subject, long long now, eg_access_t *a, eg_refusal_t *out);

/* 1 when h is the configured API key header (cfg->key_header, in any
 * case). One comparison for both places that ask: the access stage, which
 * refuses two of them, and the proxy, which never forwards one on a route
 * with auth. */
int eg_access_is_key_header(const eg_config_t *cfg, const eg_http_header_t *h);

/* 1 when the header is one the gateway sets from the principal (X-Consumer-ID,
 * X-Key-ID, X-Scopes): inbound copies are never forwarded. */
int eg_access_is_principal_header(const eg_http_header_t *h);
/* 1 when the space-separated list (a key's or a token's scopes; NULL: none)
 * has the scope. */
int eg_access_has_scope(const char *list, const char *scope);

#endif
