/* jwt.h - verifying JSON Web Tokens (compact JWS) for bearer authentication.
 *
 * HS256, RS256 and ES256 through OpenSSL's EVP interfaces; nothing of the
 * cryptography is written here. The rules that matter for safety:
 * `alg: none` is always refused, the algorithm must be one the policy
 * accepts and must match the key's type (an HS256 token is never checked
 * against an RSA public key used as an HMAC secret), `crit` headers are
 * refused, and exp/nbf are checked with a bounded leeway at a caller-given
 * time (tests inject it). A token must name its subject (a non-empty sub:
 * it becomes the caller's identity) and, unless the policy says otherwise,
 * carry exp: a token without one would be good forever. A key set is
 * immutable once built and safe to share between threads.
 */
#ifndef ERRGATE_JWT_H
#define ERRGATE_JWT_H

#include <stddef.h>

#include "errgate/common.h"

#define EG_JWT_HS256 1u
#define EG_JWT_RS256 2u
#define EG_JWT_ES256 4u
#define EG_JWT_MAX_TOKEN 8192

typedef struct eg_jwt_keys_s eg_jwt_keys_t;

int eg_jwt_keys_new(eg_jwt_keys_t **out);
void eg_jwt_keys_free(eg_jwt_keys_t *k);
/* An HS256 secret. kid NULL matches a token with any kid or none. */
int eg_jwt_keys_add_hmac(eg_jwt_keys_t *k, const char *kid, const unsigned char *secret, size_t len);
/* A PEM public key: RSA (RS256) or EC P-256 (ES256). */
int eg_jwt_keys_add_pem(eg_jwt_keys_t *k, const char *kid, const char *pem, size_t len, char *err,
                        size_t errlen);
/* Every signing key of a JWKS document: RSA (n, e), EC P-256 (x, y), oct (k). */
int eg_jwt_keys_add_jwks(eg_jwt_keys_t *k, const char *json, size_t len, char *err, size_t errlen);
size_t eg_jwt_keys_count(const eg_jwt_keys_t *k);

typedef struct {
    const char *issuer;      /* required iss, or NULL */
    const char *audience;    /* required in aud (string or array), or NULL */
    long long leeway_s;      /* clock skew allowed for exp and nbf */
    const char *scope_claim; /* space-separated string or array of strings; NULL = "scope" */
    unsigned algs;           /* EG_JWT_* accepted; 0 = all three */
    int allow_no_exp;        /* 1 accepts a token without exp; 0 (the default) refuses it */
} eg_jwt_policy_t;

typedef enum {
    EG_JWT_OK = 0,
    EG_JWT_MALFORMED,
    EG_JWT_BAD_ALG,
    EG_JWT_NO_KEY,
    EG_JWT_BAD_SIGNATURE,
    EG_JWT_EXPIRED,
    EG_JWT_NOT_YET_VALID,
    EG_JWT_BAD_ISSUER,
    EG_JWT_BAD_AUDIENCE,
    EG_JWT_MISSING_CLAIM /* no exp (unless allowed), or no or an empty sub */
} eg_jwt_status_t;

/* The verified claims; the caller's after EG_JWT_OK (eg_jwt_claims_free).
 * Strings hold printable ASCII only (they become forwarded headers). */
typedef struct {
    char *sub;      /* never NULL or empty after EG_JWT_OK */
    char *kid;      /* NULL when absent */
    char **scopes;
    size_t nscopes;
    long long exp;  /* -1 when absent (only with allow_no_exp) */
} eg_jwt_claims_t;

/* One thread's HMAC context for HS256, as apikey.h's hasher is for keys:
 * keyed once and re-initialised per token while tokens are checked against
 * the same secret, re-keyed when the secret differs (another kid, or a key
 * set built again on reload: the secret is compared, not its address).
 * Never shared between threads; it holds a copy of the last secret, wiped
 * on free. */
typedef struct eg_jwt_mac_s eg_jwt_mac_t;

int eg_jwt_mac_new(eg_jwt_mac_t **out);
void eg_jwt_mac_free(eg_jwt_mac_t *m);

/* Verifies a compact JWS at Unix time now; mac is the calling thread's, or
 * NULL for OpenSSL's one-shot HMAC. On failure, msg gets a one-line
 * reason that is safe to show the caller ("token expired at ..."). */
eg_jwt_status_t eg_jwt_verify(const eg_jwt_keys_t *k, eg_jwt_mac_t *mac, const eg_jwt_policy_t *p,
                              const char *token, size_t len, long long now, eg_jwt_claims_t *claims,
                              char *msg, size_t msglen);
void eg_jwt_claims_free(eg_jwt_claims_t *c);
/* "malformed", "bad_algorithm", "expired", "missing_claim", ... */
const char *eg_jwt_status_name(eg_jwt_status_t s);

/* base64url without padding, for tests and tools: EG_ERANGE when out is too small. */
int eg_base64url_encode(const unsigned char *in, size_t n, char *out, size_t cap, size_t *outlen);
int eg_base64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen);

#endif
