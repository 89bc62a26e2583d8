/* jwt.c - JWT verification with OpenSSL (see jwt.h). */
#include "errgate/jwt.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct {
    char *kid;
    unsigned alg; /* EG_JWT_HS256 / RS256 / ES256: what this key can verify */
    unsigned char *secret;
    size_t len;
    EVP_PKEY *pk;
} jkey_t;

struct eg_jwt_keys_s {
    jkey_t *v;
    size_t n, cap;
};

/* ------------------------------------------------------------ base64url */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

int eg_base64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
    if (n % 4 == 1) return EG_EPARSE;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap) return EG_ERANGE;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0) return EG_EPARSE;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* leftover bits must be zero: one encoding per value */
    if (bits && (acc & ((1u << bits) - 1))) return EG_EPARSE;
    *outlen = o;
    return EG_OK;
}

int eg_base64url_encode(const unsigned char *in, size_t n, char *out, size_t cap, size_t *outlen)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (need + 1 > cap) return EG_ERANGE;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = A[v >> 18];
        out[o++] = A[(v >> 12) & 63];
        out[o++] = A[(v >> 6) & 63];
        out[o++] = A[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = A[v >> 18];
        out[o++] = A[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = A[v >> 18];
        out[o++] = A[(v >> 12) & 63];
        out[o++] = A[(v >> 6) & 63];
    }
    out[o] = '\0';
    *outlen = o;
    return EG_OK;
}

/* ------------------------------------------------------------ key sets */

int eg_jwt_keys_new(eg_jwt_keys_t **out)
{
    return (*out = calloc(1, sizeof(**out))) ? EG_OK : EG_ENOMEM;
}

void eg_jwt_keys_free(eg_jwt_keys_t *k)
{
    if (!k) return;
    for (size_t i = 0; i < k->n; i++) {
        free(k->v[i].kid);
        if (k->v[i].secret) OPENSSL_clear_free(k->v[i].secret, k->v[i].len);
        EVP_PKEY_free(k->v[i].pk);
    }
    free(k->v);
    free(k);
}

size_t eg_jwt_keys_count(const eg_jwt_keys_t *k)
{
    return k ? k->n : 0;
}

/* Appends a key; takes pk and secret (freed on failure). */
static int add(eg_jwt_keys_t *k, const char *kid, unsigned alg, unsigned char *secret, size_t len,
               EVP_PKEY *pk)
{
    char *kd = NULL;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 4;
        jkey_t *v = realloc(k->v, cap * sizeof(*v));
        if (!v) goto nomem;
        k->v = v;
        k->cap = cap;
    }
    if (kid && !(kd = strdup(kid))) goto nomem;
    k->v[k->n++] = (jkey_t){kd, alg, secret, len, pk};
    return EG_OK;
nomem:
    if (secret) OPENSSL_clear_free(secret, len);
    EVP_PKEY_free(pk);
    return EG_ENOMEM;
}

int eg_jwt_keys_add_hmac(eg_jwt_keys_t *k, const char *kid, const unsigned char *secret, size_t len)
{
    if (!k || !secret || len == 0) return EG_EINVAL;
    unsigned char *s = OPENSSL_malloc(len);
    if (!s) return EG_ENOMEM;
    memcpy(s, secret, len);
    return add(k, kid, EG_JWT_HS256, s, len, NULL);
}

/* Which algorithm a public key verifies; 0 for a key type we do not take. */
static unsigned pkey_alg(EVP_PKEY *pk)
{
    if (EVP_PKEY_is_a(pk, "RSA")) return EVP_PKEY_get_bits(pk) >= 2048 ? EG_JWT_RS256 : 0;
    if (EVP_PKEY_is_a(pk, "EC")) {
        char group[64];
        size_t gl = 0;
        if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &gl) &&
            (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
            return EG_JWT_ES256;
    }
    return 0;
}

int eg_jwt_keys_add_pem(eg_jwt_keys_t *k, const char *kid, const char *pem, size_t len, char *err,
                        size_t errlen)
{
    if (!k || !pem || len > (1u << 20)) return EG_EINVAL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!pk) {
        snprintf(err, errlen, "not a PEM public key (-----BEGIN PUBLIC KEY-----)");
        return EG_EPARSE;
    }
    unsigned alg = pkey_alg(pk);
    if (!alg) {
        EVP_PKEY_free(pk);
        snprintf(err, errlen, "only RSA (2048 bits or more) and EC P-256 public keys are supported");
        return EG_EINVAL;
    }
    return add(k, kid, alg, NULL, 0, pk);
}

/* A base64url member of a JWK, decoded into a BIGNUM or bytes. */
static int jwk_bytes(json_t *jwk, const char *name, unsigned char *out, size_t cap, size_t *n)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    if (!s) return EG_ENOENT;
    return eg_base64url_decode(s, strlen(s), out, cap, n);
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pk = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

static EVP_PKEY *jwk_rsa(json_t *jwk)
{
    unsigned char nb[1024], eb[16];
    size_t nl, el;
    if (jwk_bytes(jwk, "n", nb, sizeof(nb), &nl) || jwk_bytes(jwk, "e", eb, sizeof(eb), &el)) return NULL;
    BIGNUM *n = BN_bin2bn(nb, (int)nl, NULL), *e = BN_bin2bn(eb, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (n && e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        pk = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pk;
}

static EVP_PKEY *jwk_ec(json_t *jwk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    unsigned char pt[65], x[40], y[40];
    size_t xl, yl;
    if (!crv || strcmp(crv, "P-256") != 0) return NULL;
    if (jwk_bytes(jwk, "x", x, sizeof(x), &xl) || jwk_bytes(jwk, "y", y, sizeof(y), &yl) || xl != 32 || yl != 32)
        return NULL;
    pt[0] = 0x04; /* uncompressed point */
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)))
        pk = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    return pk;
}

int eg_jwt_keys_add_jwks(eg_jwt_keys_t *k, const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    json_t *keys = doc ? json_object_get(doc, "keys") : NULL;
    int rc = EG_OK;
    if (!json_is_array(keys)) {
        snprintf(err, errlen, doc ? "a JWKS is an object with a \"keys\" array" : "invalid JSON: %s (line %d)",
                 je.text, je.line);
        json_decref(doc);
        return EG_EPARSE;
    }
    size_t i;
    json_t *jwk;
    json_array_foreach(keys, i, jwk) {
        const char *kty = json_string_value(json_object_get(jwk, "kty"));
        const char *use = json_string_value(json_object_get(jwk, "use"));
        const char *kid = json_string_value(json_object_get(jwk, "kid"));
        if (use && strcmp(use, "sig") != 0) continue; /* encryption keys are not ours */
        if (!kty) {
            snprintf(err, errlen, "key %zu has no kty", i);
            rc = EG_EPARSE;
            break;
        }
        if (strcmp(kty, "oct") == 0) {
            unsigned char s[512];
            size_t sl;
            if (jwk_bytes(jwk, "k", s, sizeof(s), &sl) || sl == 0) {
                snprintf(err, errlen, "key %zu: oct key without a valid k", i);
                rc = EG_EPARSE;
                break;
            }
            rc = eg_jwt_keys_add_hmac(k, kid, s, sl);
            OPENSSL_cleanse(s, sizeof(s));
        } else if (strcmp(kty, "RSA") == 0 || strcmp(kty, "EC") == 0) {
            EVP_PKEY *pk = kty[0] == 'R' ? jwk_rsa(jwk) : jwk_ec(jwk);
            unsigned alg = pk ? pkey_alg(pk) : 0;
            if (!alg) {
                EVP_PKEY_free(pk);
                snprintf(err, errlen, "key %zu: not a valid %s key (RSA n/e of 2048+ bits, or EC P-256 x/y)", i, kty);
                rc = EG_EPARSE;
                break;
            }
            rc = add(k, kid, alg, NULL, 0, pk);
        } else {
            snprintf(err, errlen, "key %zu: unsupported kty '%.20s' (RSA, EC, oct)", i, kty);
            rc = EG_EPARSE;
            break;
        }
        if (rc) break;
    }
    json_decref(doc);
    return rc;
}

/* ------------------------------------------------------------ verification */

const char *eg_jwt_status_name(eg_jwt_status_t s)
{
    switch (s) {
    case EG_JWT_OK: return "ok";
    case EG_JWT_MALFORMED: return "malformed";
    case EG_JWT_BAD_ALG: return "bad_algorithm";
    case EG_JWT_NO_KEY: return "unknown_key";
    case EG_JWT_BAD_SIGNATURE: return "bad_signature";
    case EG_JWT_EXPIRED: return "expired";
    case EG_JWT_NOT_YET_VALID: return "not_yet_valid";
    case EG_JWT_BAD_ISSUER: return "bad_issuer";
    case EG_JWT_BAD_AUDIENCE: return "bad_audience";
    case EG_JWT_MISSING_CLAIM: return "missing_claim";
    }
    return "unknown";
}

void eg_jwt_claims_free(eg_jwt_claims_t *c)
{
    if (!c) return;
    free(c->sub);
    free(c->kid);
    for (size_t i = 0; i < c->nscopes; i++) free(c->scopes[i]);
    free(c->scopes);
    memset(c, 0, sizeof(*c));
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) return 0;
    return 1;
}

/* Decodes a base64url segment holding a JSON object. */
static json_t *segment_json(const char *s, size_t n)
{
    unsigned char buf[EG_JWT_MAX_TOKEN];
    size_t len;
    if (eg_base64url_decode(s, n, buf, sizeof(buf), &len) != EG_OK) return NULL;
    json_t *o = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

struct eg_jwt_mac_s {
    EVP_MAC *hmac;
    EVP_MAC_CTX *ctx;
    unsigned char *secret; /* what ctx is keyed with; NULL until keyed */
    size_t len;
};

int eg_jwt_mac_new(eg_jwt_mac_t **out)
{
    eg_jwt_mac_t *m = calloc(1, sizeof(*m));
    if (!m) return EG_ENOMEM;
    if (!(m->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) || !(m->ctx = EVP_MAC_CTX_new(m->hmac))) {
        eg_jwt_mac_free(m);
        return EG_EIO;
    }
    *out = m;
    return EG_OK;
}

static void mac_forget(eg_jwt_mac_t *m)
{
    OPENSSL_clear_free(m->secret, m->len);
    m->secret = NULL;
    m->len = 0;
}

void eg_jwt_mac_free(eg_jwt_mac_t *m)
{
    if (!m) return;
    mac_forget(m);
    EVP_MAC_CTX_free(m->ctx);
    EVP_MAC_free(m->hmac);
    free(m);
}

/* HMAC-SHA-256 of input with key's secret into out[32]; 1 on success. With
 * a thread's context, keying (two SHA-256 blocks and a context set-up) is
 * paid only when the secret changes: about 0.3 us a token instead of 1.3. */
static int hs256(eg_jwt_mac_t *m, const jkey_t *key, const char *input, size_t inlen, unsigned char out[32])
{
    if (!m) {
        unsigned int ml = 0;
        return HMAC(EVP_sha256(), key->secret, (int)key->len, (const unsigned char *)input, inlen, out, &ml) &&
               ml == 32;
    }
    size_t n = 0;
    if (m->secret && m->len == key->len && CRYPTO_memcmp(m->secret, key->secret, key->len) == 0) {
        /* a NULL key re-initialises with the key already set */
        if (EVP_MAC_init(m->ctx, NULL, 0, NULL) != 1) return 0;
    } else {
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                               OSSL_PARAM_construct_end()};
        mac_forget(m);
        if (EVP_MAC_init(m->ctx, key->secret, key->len, params) != 1) return 0;
        /* without the copy the next token keys again: slower, still right */
        if ((m->secret = OPENSSL_malloc(key->len))) {
            memcpy(m->secret, key->secret, key->len);
            m->len = key->len;
        }
    }
    return EVP_MAC_update(m->ctx, (const unsigned char *)input, inlen) == 1 &&
           EVP_MAC_final(m->ctx, out, &n, 32) == 1 && n == 32;
}

static int verify_with(eg_jwt_mac_t *m, const jkey_t *key, const char *input, size_t inlen,
                       const unsigned char *sig, size_t siglen)
{
    if (key->alg == EG_JWT_HS256) {
        unsigned char mac[32];
        return hs256(m, key, input, inlen, mac) && siglen == 32 && CRYPTO_memcmp(mac, sig, 32) == 0;
    }
    unsigned char der[80];
    const unsigned char *s = sig;
    size_t sl = siglen;
    if (key->alg == EG_JWT_ES256) {
        /* JWS carries r||s; EVP wants the DER ECDSA-Sig-Value */
        if (siglen != 64) return 0;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
        if (!es || !r || !ss || !ECDSA_SIG_set0(es, r, ss)) {
            BN_free(r);
            BN_free(ss);
            ECDSA_SIG_free(es);
            return 0;
        }
        unsigned char *p = der;
        int dl = i2d_ECDSA_SIG(es, NULL);
        if (dl <= 0 || (size_t)dl > sizeof(der)) dl = 0;
        else dl = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);
        if (dl <= 0) return 0;
        s = der;
        sl = (size_t)dl;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key->pk) == 1 &&
             EVP_DigestVerify(ctx, s, sl, (const unsigned char *)input, inlen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

static void fmt_time(long long t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(buf, cap, "%lld", t);
}

static int add_scope(eg_jwt_claims_t *c, const char *s, size_t n)
{
    if (n == 0) return EG_OK;
    if (c->nscopes >= 64) return EG_ERANGE;
    char *d = strndup(s, n);
    if (!d) return EG_ENOMEM;
    if (!printable(d)) {
        free(d);
        return EG_EPARSE;
    }
    char **v = realloc(c->scopes, (c->nscopes + 1) * sizeof(*v));
    if (!v) {
        free(d);
        return EG_ENOMEM;
    }
    c->scopes = v;
    c->scopes[c->nscopes++] = d;
    return EG_OK;
}

static int scopes_from(json_t *v, eg_jwt_claims_t *c)
{
    if (!v) return EG_OK;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s) {
            const char *e = strchr(s, ' ');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            int rc = add_scope(c, s, n);
            if (rc) return rc;
            s += n + (e ? 1 : 0);
        }
        return EG_OK;
    }
    if (!json_is_array(v)) return EG_EPARSE;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_string(x)) return EG_EPARSE;
        int rc = add_scope(c, json_string_value(x), strlen(json_string_value(x)));
        if (rc) return rc;
    }
    return EG_OK;
}

/* A NumericDate, clamped so a hostile 1e300 cannot overflow the cast. */
static long long numeric_date(json_t *v)
{
    double d = json_number_value(v);
    if (!(d > -1e15)) return -1000000000000000LL;
    if (d > 1e15) return 1000000000000000LL;
    return (long long)d;
}

#define REFUSE(st, ...)                                                                            \
    do {                                                                                           \
        snprintf(msg, msglen, __VA_ARGS__);                                                        \
        res = (st);                                                                                \
        goto out;                                                                                  \
    } while (0)

eg_jwt_status_t eg_jwt_verify(const eg_jwt_keys_t *k, eg_jwt_mac_t *mac, const eg_jwt_policy_t *p,
                              const char *token, size_t len, long long now, eg_jwt_claims_t *claims,
                              char *msg, size_t msglen)
{
    eg_jwt_status_t res = EG_JWT_OK;
    json_t *hdr = NULL, *pay = NULL;
    eg_jwt_claims_t c;
    memset(&c, 0, sizeof(c));
    c.exp = -1;
    unsigned char sig[600];
    size_t siglen = 0;
    if (!token || len == 0 || len > EG_JWT_MAX_TOKEN) REFUSE(EG_JWT_MALFORMED, "token is empty or too long");
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        REFUSE(EG_JWT_MALFORMED, "token is not three base64url segments");
    if (!(hdr = segment_json(token, (size_t)(d1 - token))))
        REFUSE(EG_JWT_MALFORMED, "token header is not base64url JSON");
    if (!(pay = segment_json(d1 + 1, (size_t)(d2 - d1 - 1))))
        REFUSE(EG_JWT_MALFORMED, "token payload is not base64url JSON");
    if (eg_base64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof(sig), &siglen) != EG_OK)
        REFUSE(EG_JWT_MALFORMED, "token signature is not base64url");
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    const char *typ = json_string_value(json_object_get(hdr, "typ"));
    const char *kid = json_string_value(json_object_get(hdr, "kid"));
    if (json_object_get(hdr, "typ") && (!typ || (strcasecmp(typ, "JWT") && strcasecmp(typ, "at+jwt"))))
        REFUSE(EG_JWT_MALFORMED, "token typ is not JWT");
    if (json_object_get(hdr, "crit")) REFUSE(EG_JWT_MALFORMED, "token has critical header extensions");
    if (json_object_get(hdr, "kid") && (!kid || !*kid || strlen(kid) > 200 || !printable(kid)))
        REFUSE(EG_JWT_MALFORMED, "token kid is not a printable string");
    unsigned want = !alg ? 0 : strcmp(alg, "HS256") == 0 ? EG_JWT_HS256
                           : strcmp(alg, "RS256") == 0 ? EG_JWT_RS256
                           : strcmp(alg, "ES256") == 0 ? EG_JWT_ES256
                                                       : 0;
    if (!want || !(want & (p->algs ? p->algs : (EG_JWT_HS256 | EG_JWT_RS256 | EG_JWT_ES256))))
        REFUSE(EG_JWT_BAD_ALG, "algorithm %.20s is not accepted", alg ? alg : "(none)");
    /* verify before reading claims: nothing unauthenticated is trusted */
    size_t inlen = (size_t)(d2 - token);
    int tried = 0, ok = 0;
    for (size_t i = 0; k && i < k->n && !ok; i++) {
        const jkey_t *key = &k->v[i];
        if (key->alg != want) continue; /* never an RSA key as an HMAC secret */
        if (kid && key->kid && strcmp(kid, key->kid) != 0) continue;
        tried++;
        ok = verify_with(mac, key, token, inlen, sig, siglen);
    }
    if (!tried) REFUSE(EG_JWT_NO_KEY, "no key for this token (alg %s%s%.60s)", alg, kid ? ", kid " : "", kid ? kid : "");
    if (!ok) REFUSE(EG_JWT_BAD_SIGNATURE, "signature does not verify");
    json_t *v;
    char when[40];
    if (!(v = json_object_get(pay, "exp")) && !p->allow_no_exp)
        REFUSE(EG_JWT_MISSING_CLAIM, "token has no exp claim (an expiry is required)");
    if (v) {
        if (!json_is_number(v)) REFUSE(EG_JWT_MALFORMED, "exp is not a number");
        c.exp = numeric_date(v);
        if (c.exp <= now - p->leeway_s) {
            fmt_time(c.exp, when, sizeof(when));
            REFUSE(EG_JWT_EXPIRED, "token expired at %s", when);
        }
    }
    if ((v = json_object_get(pay, "nbf"))) {
        if (!json_is_number(v)) REFUSE(EG_JWT_MALFORMED, "nbf is not a number");
        long long nbf = numeric_date(v);
        if (nbf > now + p->leeway_s) {
            fmt_time(nbf, when, sizeof(when));
            REFUSE(EG_JWT_NOT_YET_VALID, "token is not valid before %s", when);
        }
    }
    if (p->issuer) {
        const char *iss = json_string_value(json_object_get(pay, "iss"));
        if (!iss || strcmp(iss, p->issuer) != 0) REFUSE(EG_JWT_BAD_ISSUER, "token issuer is not accepted");
    }
    if (p->audience) {
        json_t *aud = json_object_get(pay, "aud");
        int found = json_is_string(aud) && strcmp(json_string_value(aud), p->audience) == 0;
        size_t i;
        json_t *x;
        if (json_is_array(aud)) json_array_foreach(aud, i, x) found |= json_is_string(x) && strcmp(json_string_value(x), p->audience) == 0;
        if (!found) REFUSE(EG_JWT_BAD_AUDIENCE, "token audience does not include %.100s", p->audience);
    }
    /* the subject becomes X-Consumer-ID and the log's consumer: an empty
     * one would be an anonymous caller that passed authentication */
    if (!(v = json_object_get(pay, "sub")))
        REFUSE(EG_JWT_MISSING_CLAIM, "token has no sub claim (a subject is required)");
    const char *sub = json_string_value(v);
    if (!sub || strlen(sub) > 120 || !printable(sub))
        REFUSE(EG_JWT_MALFORMED, "sub is not a printable string");
    if (!*sub) REFUSE(EG_JWT_MISSING_CLAIM, "token sub claim is empty (a subject is required)");
    if (!(c.sub = strdup(sub)) || (kid && !(c.kid = strdup(kid))))
        REFUSE(EG_JWT_MALFORMED, "out of memory");
    if (scopes_from(json_object_get(pay, p->scope_claim ? p->scope_claim : "scope"), &c) != EG_OK)
        REFUSE(EG_JWT_MALFORMED, "scope claim is not a list of printable scopes");
out:
    json_decref(hdr);
    json_decref(pay);
    if (res == EG_JWT_OK) *claims = c;
    else eg_jwt_claims_free(&c);
    return res;
}
