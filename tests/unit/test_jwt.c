/* test_jwt.c - JWT verification: algorithms, key sets (PEM, JWKS), claims,
 * and the attacks the rules exist for. Keys are generated and tokens signed
 * here with OpenSSL, so nothing is a canned answer. */
#include "testutil.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "errgate/jwt.h"

static EVP_PKEY *rsa_key, *ec_key;
static const unsigned char hs_secret[] = "hs256-secret-for-unit-tests-0123";
#define NOW 1800000000LL

static int setup(void **state)
{
    (void)state;
    rsa_key = EVP_RSA_gen(2048);
    ec_key = EVP_EC_gen("P-256");
    return rsa_key && ec_key ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    return 0;
}

static char *pub_pem(EVP_PKEY *k, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(b);
    return out;
}

static void b64(const void *in, size_t n, char *out, size_t cap)
{
    size_t len;
    assert_int_equal(eg_base64url_encode(in, n, out, cap, &len), EG_OK);
}

/* header and payload are JSON text; alg picks the signer; returns malloc'd token. */
static char *sign(const char *header, const char *payload, const char *alg, EVP_PKEY *key,
                  const unsigned char *secret, size_t slen)
{
    char h[1024], p[2048], s[1024];
    b64(header, strlen(header), h, sizeof(h));
    b64(payload, strlen(payload), p, sizeof(p));
    char *input = malloc(strlen(h) + strlen(p) + 2);
    sprintf(input, "%s.%s", h, p);
    unsigned char sig[512];
    size_t siglen = 0;
    if (strcmp(alg, "HS256") == 0) {
        unsigned int n;
        HMAC(EVP_sha256(), secret, (int)slen, (const unsigned char *)input, strlen(input), sig, &n);
        siglen = n;
    } else if (strcmp(alg, "none") != 0) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        siglen = sizeof(sig);
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, strlen(input)), 1);
        EVP_MD_CTX_free(ctx);
        if (strcmp(alg, "ES256") == 0) { /* DER -> r||s */
            const unsigned char *q = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)siglen);
            assert_non_null(es);
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
            ECDSA_SIG_free(es);
            siglen = 64;
        }
    }
    b64(sig, siglen, s, sizeof(s));
    char *tok = malloc(strlen(input) + strlen(s) + 2);
    sprintf(tok, "%s.%s", input, s);
    free(input);
    return tok;
}

static eg_jwt_keys_t *all_keys(void)
{
    eg_jwt_keys_t *k;
    char err[200];
    size_t n;
    assert_int_equal(eg_jwt_keys_new(&k), EG_OK);
    assert_int_equal(eg_jwt_keys_add_hmac(k, NULL, hs_secret, sizeof(hs_secret) - 1), EG_OK);
    char *pem = pub_pem(rsa_key, &n);
    assert_int_equal(eg_jwt_keys_add_pem(k, NULL, pem, n, err, sizeof(err)), EG_OK);
    free(pem);
    pem = pub_pem(ec_key, &n);
    assert_int_equal(eg_jwt_keys_add_pem(k, NULL, pem, n, err, sizeof(err)), EG_OK);
    free(pem);
    assert_int_equal(eg_jwt_keys_count(k), 3);
    return k;
}

/* what every accepted token carries: a subject and an expiry (10 min after NOW) */
#define SUB_EXP "\"sub\":\"u\",\"exp\":1800000600"

static const char *payload_ok = "{\"sub\":\"user_1\",\"iss\":\"iss\",\"aud\":[\"x\",\"api\"],\"exp\":1800000600,"
                                "\"nbf\":1799999000,\"scope\":\"read write\"}";

static eg_jwt_status_t verify(const eg_jwt_keys_t *k, const eg_jwt_policy_t *p, const char *tok, eg_jwt_claims_t *c)
{
    char msg[200] = "";
    eg_jwt_claims_t tmp;
    eg_jwt_status_t st = eg_jwt_verify(k, NULL, p, tok, strlen(tok), NOW, c ? c : &tmp, msg, sizeof(msg));
    if (st != EG_JWT_OK) assert_true(strlen(msg) > 0); /* every refusal says why */
    else if (!c) eg_jwt_claims_free(&tmp);
    return st;
}

static void test_three_algorithms(void **state)
{
    (void)state;
    eg_jwt_keys_t *k = all_keys();
    eg_jwt_policy_t p = {"iss", "api", 0, NULL, 0, 0};
    static const char *const algs[] = {"HS256", "RS256", "ES256"};
    for (int i = 0; i < 3; i++) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", algs[i]);
        char *tok = sign(hdr, payload_ok, algs[i], i == 1 ? rsa_key : ec_key, hs_secret, sizeof(hs_secret) - 1);
        eg_jwt_claims_t c;
        assert_int_equal(verify(k, &p, tok, &c), EG_JWT_OK);
        assert_string_equal(c.sub, "user_1");
        assert_int_equal(c.nscopes, 2);
        assert_string_equal(c.scopes[1], "write");
        assert_int_equal(c.exp, 1800000600);
        eg_jwt_claims_free(&c);
        /* the policy can narrow the algorithms */
        eg_jwt_policy_t only = p;
        only.algs = i == 0 ? EG_JWT_RS256 : EG_JWT_HS256;
        assert_int_equal(verify(k, &only, tok, NULL), EG_JWT_BAD_ALG);
        /* a flipped bit anywhere in the signed part or the signature fails */
        size_t n = strlen(tok);
        for (size_t at = 0; at < n; at += 7) {
            if (tok[at] == '.') continue;
            char *t2 = strdup(tok);
            t2[at] = t2[at] == 'A' ? 'B' : 'A';
            eg_jwt_status_t st = verify(k, &p, t2, NULL);
            if (st == EG_JWT_OK) fail_msg("%s: a change at %zu verified", algs[i], at);
            free(t2);
        }
        free(tok);
    }
    eg_jwt_keys_free(k);
}

static void test_refusals(void **state)
{
    (void)state;
    eg_jwt_keys_t *k = all_keys();
    eg_jwt_policy_t p = {"iss", "api", 30, NULL, 0, 0};
    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const unsigned char *s = hs_secret;
    size_t sl = sizeof(hs_secret) - 1;
    struct {
        const char *header, *payload, *alg;
        eg_jwt_status_t want;
    } cases[] = {
        {"{\"alg\":\"none\"}", payload_ok, "none", EG_JWT_BAD_ALG},
        {"{\"alg\":\"HS512\"}", payload_ok, "HS256", EG_JWT_BAD_ALG},
        {"{\"typ\":\"JWT\"}", payload_ok, "HS256", EG_JWT_BAD_ALG},
        {"{\"alg\":\"HS256\",\"typ\":\"JWE\"}", payload_ok, "HS256", EG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", payload_ok, "HS256", EG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"kid\":\"a\\r\\nb\"}", payload_ok, "HS256", EG_JWT_MALFORMED},
        {hs, "{\"exp\":1799999960}", "HS256", EG_JWT_EXPIRED}, /* 40 s ago, leeway 30 */
        {hs, "{\"exp\":1799999980,\"sub\":\"u\",\"aud\":\"api\",\"iss\":\"iss\"}", "HS256",
         EG_JWT_OK}, /* 20 s ago */
        {hs, "{\"exp\":\"tomorrow\"}", "HS256", EG_JWT_MALFORMED},
        {hs, "{\"exp\":1e300,\"sub\":\"u\",\"aud\":\"api\",\"iss\":\"iss\"}", "HS256",
         EG_JWT_OK}, /* clamped, no overflow */
        {hs, "{" SUB_EXP ",\"nbf\":1800000100,\"aud\":\"api\",\"iss\":\"iss\"}", "HS256",
         EG_JWT_NOT_YET_VALID},
        {hs, "{" SUB_EXP ",\"aud\":\"api\",\"iss\":\"other\"}", "HS256", EG_JWT_BAD_ISSUER},
        {hs, "{" SUB_EXP ",\"aud\":\"api\"}", "HS256", EG_JWT_BAD_ISSUER},
        {hs, "{" SUB_EXP ",\"aud\":[\"a\",\"b\"],\"iss\":\"iss\"}", "HS256", EG_JWT_BAD_AUDIENCE},
        {hs, "{" SUB_EXP ",\"aud\":\"apix\",\"iss\":\"iss\"}", "HS256", EG_JWT_BAD_AUDIENCE},
        {hs, "{\"exp\":1800000600,\"aud\":\"api\",\"iss\":\"iss\",\"sub\":\"a\\nb\"}", "HS256",
         EG_JWT_MALFORMED},
        {hs, "{" SUB_EXP ",\"aud\":\"api\",\"iss\":\"iss\",\"scope\":[\"a b\"]}", "HS256",
         EG_JWT_MALFORMED},
        {hs, "[1,2]", "HS256", EG_JWT_MALFORMED},
        {hs, "{\"aud\":\"api\",\"aud\":\"x\"}", "HS256", EG_JWT_MALFORMED}, /* duplicate member */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = sign(cases[i].header, cases[i].payload, cases[i].alg, NULL, s, sl);
        eg_jwt_status_t st = verify(k, &p, tok, NULL);
        if (st != cases[i].want)
            fail_msg("case %zu: got %s, want %s", i, eg_jwt_status_name(st), eg_jwt_status_name(cases[i].want));
        free(tok);
    }
    /* shapes that are not a JWS at all */
    const char *bad[] = {"", "abc", "a.b", "a.b.c.d", "e30.e30.", "e30=.e30.AAAA", "e30.e30.AA+A", "e30.e30.A",
                         "...", NULL};
    for (size_t i = 0; bad[i]; i++)
        if (verify(k, &p, bad[i], NULL) == EG_JWT_OK) fail_msg("accepted '%s'", bad[i]);
    char *huge = malloc(EG_JWT_MAX_TOKEN + 10);
    memset(huge, 'A', EG_JWT_MAX_TOKEN + 9);
    huge[EG_JWT_MAX_TOKEN + 9] = '\0';
    assert_int_equal(verify(k, &p, huge, NULL), EG_JWT_MALFORMED);
    free(huge);
    eg_jwt_keys_free(k);
}

/* A token must say who it is for and until when: without exp it would be
 * good forever (unless the policy allows that), without a sub or with an
 * empty one the caller would pass as nobody. Each refusal says what is missing. */
static void test_required_claims(void **state)
{
    (void)state;
    eg_jwt_keys_t *k = all_keys();
    eg_jwt_policy_t p = {"iss", "api", 30, NULL, 0, 0};
    eg_jwt_policy_t lax = p;
    lax.allow_no_exp = 1;
    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    struct {
        const char *payload;
        const eg_jwt_policy_t *policy;
        eg_jwt_status_t want;
        const char *says; /* in the message */
    } cases[] = {
        {"{\"sub\":\"u\",\"aud\":\"api\",\"iss\":\"iss\"}", &p, EG_JWT_MISSING_CLAIM,
         "no exp claim"},
        {"{\"sub\":\"u\",\"aud\":\"api\",\"iss\":\"iss\"}", &lax, EG_JWT_OK, NULL},
        {"{\"exp\":1800000600,\"aud\":\"api\",\"iss\":\"iss\"}", &p, EG_JWT_MISSING_CLAIM,
         "no sub claim"},
        {"{\"aud\":\"api\",\"iss\":\"iss\"}", &lax, EG_JWT_MISSING_CLAIM, "no sub claim"},
        {"{\"exp\":1800000600,\"sub\":\"\",\"aud\":\"api\",\"iss\":\"iss\"}", &p,
         EG_JWT_MISSING_CLAIM, "sub claim is empty"},
        {"{\"exp\":1800000600,\"sub\":42,\"aud\":\"api\",\"iss\":\"iss\"}", &p, EG_JWT_MALFORMED,
         "sub"},
        {"{\"exp\":1800000600,\"sub\":null,\"aud\":\"api\",\"iss\":\"iss\"}", &p, EG_JWT_MALFORMED,
         "sub"},
        {"{\"exp\":1800000600,\"sub\":\"a b\",\"aud\":\"api\",\"iss\":\"iss\"}", &p,
         EG_JWT_MALFORMED, "sub"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = sign(hs, cases[i].payload, "HS256", NULL, hs_secret, sizeof(hs_secret) - 1);
        char msg[200] = "";
        eg_jwt_claims_t c;
        eg_jwt_status_t st =
            eg_jwt_verify(k, NULL, cases[i].policy, tok, strlen(tok), NOW, &c, msg, sizeof(msg));
        if (st != cases[i].want)
            fail_msg("case %zu: got %s (%s), want %s", i, eg_jwt_status_name(st), msg,
                     eg_jwt_status_name(cases[i].want));
        if (st == EG_JWT_OK) {
            assert_string_equal(c.sub, "u");
            assert_int_equal(c.exp, -1);
            eg_jwt_claims_free(&c);
        } else if (!strstr(msg, cases[i].says)) {
            fail_msg("case %zu: '%s' does not say '%s'", i, msg, cases[i].says);
        }
        free(tok);
    }
    assert_string_equal(eg_jwt_status_name(EG_JWT_MISSING_CLAIM), "missing_claim");
    eg_jwt_keys_free(k);
}

/* HS256 signed with the RSA public key (PEM text) as the HMAC secret: a
 * verifier that feeds any key to any algorithm accepts it. */
static void test_key_confusion(void **state)
{
    (void)state;
    eg_jwt_keys_t *k;
    char err[200];
    size_t n;
    char *pem = pub_pem(rsa_key, &n);
    assert_int_equal(eg_jwt_keys_new(&k), EG_OK);
    assert_int_equal(eg_jwt_keys_add_pem(k, NULL, pem, n, err, sizeof(err)), EG_OK);
    eg_jwt_policy_t p = {NULL, NULL, 0, NULL, 0, 0};
    char *tok = sign("{\"alg\":\"HS256\"}", "{\"sub\":\"admin\"}", "HS256", NULL,
                     (const unsigned char *)pem, n);
    assert_int_equal(verify(k, &p, tok, NULL), EG_JWT_NO_KEY);
    free(tok);
    /* and an RS256 token is never checked with the EC key */
    tok = sign("{\"alg\":\"ES256\"}", "{\"sub\":\"admin\"}", "ES256", ec_key, NULL, 0);
    assert_int_equal(verify(k, &p, tok, NULL), EG_JWT_NO_KEY);
    free(tok);
    free(pem);
    eg_jwt_keys_free(k);
}

static void test_kid_selection(void **state)
{
    (void)state;
    eg_jwt_keys_t *k;
    assert_int_equal(eg_jwt_keys_new(&k), EG_OK);
    const unsigned char a[] = "secret-a-secret-a-secret-a", b[] = "secret-b-secret-b-secret-b";
    assert_int_equal(eg_jwt_keys_add_hmac(k, "ka", a, sizeof(a) - 1), EG_OK);
    assert_int_equal(eg_jwt_keys_add_hmac(k, "kb", b, sizeof(b) - 1), EG_OK);
    eg_jwt_policy_t p = {NULL, NULL, 0, "scp", 0, 0};
    eg_jwt_claims_t c;
    char *tok = sign("{\"alg\":\"HS256\",\"kid\":\"kb\"}", "{" SUB_EXP ",\"scp\":[\"x\",\"y\"]}",
                     "HS256", NULL, b, sizeof(b) - 1);
    assert_int_equal(verify(k, &p, tok, &c), EG_JWT_OK);
    assert_string_equal(c.kid, "kb");
    assert_int_equal(c.nscopes, 2); /* scopes from an array claim */
    assert_string_equal(c.scopes[0], "x");
    assert_string_equal(c.sub, "u");
    eg_jwt_claims_free(&c);
    free(tok);
    /* signed with b but naming ka: only ka is tried */
    tok = sign("{\"alg\":\"HS256\",\"kid\":\"ka\"}", "{}", "HS256", NULL, b, sizeof(b) - 1);
    assert_int_equal(verify(k, &p, tok, NULL), EG_JWT_BAD_SIGNATURE);
    free(tok);
    tok = sign("{\"alg\":\"HS256\",\"kid\":\"kc\"}", "{}", "HS256", NULL, b, sizeof(b) - 1);
    assert_int_equal(verify(k, &p, tok, NULL), EG_JWT_NO_KEY);
    free(tok);
    /* no kid: every key of the type is tried */
    tok = sign("{\"alg\":\"HS256\"}", "{" SUB_EXP "}", "HS256", NULL, a, sizeof(a) - 1);
    assert_int_equal(verify(k, &p, tok, NULL), EG_JWT_OK);
    free(tok);
    eg_jwt_keys_free(k);
}

static eg_jwt_keys_t *hmac_keys(const char *kid, const unsigned char *secret, size_t len)
{
    eg_jwt_keys_t *k;
    assert_int_equal(eg_jwt_keys_new(&k), EG_OK);
    assert_int_equal(eg_jwt_keys_add_hmac(k, kid, secret, len), EG_OK);
    return k;
}

static eg_jwt_status_t verify_mac(const eg_jwt_keys_t *k, eg_jwt_mac_t *mac, const char *tok)
{
    eg_jwt_policy_t p = {NULL, NULL, 0, NULL, 0, 0};
    eg_jwt_claims_t c;
    char msg[200] = "";
    eg_jwt_status_t st = eg_jwt_verify(k, mac, &p, tok, strlen(tok), NOW, &c, msg, sizeof(msg));
    if (st == EG_JWT_OK) eg_jwt_claims_free(&c);
    return st;
}

/* A thread's MAC context keeps its key between tokens: it must follow the
 * secret each token is checked against (another kid, another key set as
 * after a reload, a secret one byte longer), and answer exactly as the
 * one-shot HMAC does. */
static void test_thread_mac(void **state)
{
    (void)state;
    const unsigned char a[] = "secret-a-secret-a-secret-a", b[] = "secret-b-secret-b-secret-b";
    const unsigned char a_longer[] = "secret-a-secret-a-secret-ax";
    eg_jwt_keys_t *sets[4] = {hmac_keys(NULL, a, sizeof(a) - 1), hmac_keys(NULL, b, sizeof(b) - 1),
                              hmac_keys(NULL, a_longer, sizeof(a_longer) - 1),
                              hmac_keys("ka", a, sizeof(a) - 1)};
    assert_int_equal(eg_jwt_keys_add_hmac(sets[3], "kb", b, sizeof(b) - 1), EG_OK);
    char *tok[4] = {sign("{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1800000600}", "HS256", NULL,
                         a, sizeof(a) - 1),
                    sign("{\"alg\":\"HS256\"}", "{\"sub\":\"b\",\"exp\":1800000600}", "HS256", NULL,
                         b, sizeof(b) - 1),
                    sign("{\"alg\":\"HS256\",\"kid\":\"kb\"}", "{" SUB_EXP "}", "HS256", NULL, b,
                         sizeof(b) - 1),
                    sign("{\"alg\":\"HS256\",\"kid\":\"ka\"}", "{" SUB_EXP "}", "HS256", NULL, a,
                         sizeof(a) - 1)};
    eg_jwt_mac_t *mac;
    assert_int_equal(eg_jwt_mac_new(&mac), EG_OK);
    /* the same secret twice, then another: re-keyed, not reused */
    assert_int_equal(verify_mac(sets[0], mac, tok[0]), EG_JWT_OK);
    assert_int_equal(verify_mac(sets[0], mac, tok[0]), EG_JWT_OK);
    assert_int_equal(verify_mac(sets[1], mac, tok[1]), EG_JWT_OK);
    assert_int_equal(verify_mac(sets[1], mac, tok[0]), EG_JWT_BAD_SIGNATURE);
    assert_int_equal(verify_mac(sets[2], mac, tok[0]), EG_JWT_BAD_SIGNATURE);
    assert_int_equal(verify_mac(sets[0], mac, tok[0]), EG_JWT_OK);
    assert_int_equal(verify_mac(sets[2], mac, tok[0]), EG_JWT_BAD_SIGNATURE);
    /* two kids in one set, alternating */
    for (int i = 0; i < 4; i++) assert_int_equal(verify_mac(sets[3], mac, tok[2 + i % 2]), EG_JWT_OK);
    /* a key set freed and built again with another secret, as on reload */
    eg_jwt_keys_free(sets[0]);
    sets[0] = hmac_keys(NULL, b, sizeof(b) - 1);
    assert_int_equal(verify_mac(sets[0], mac, tok[0]), EG_JWT_BAD_SIGNATURE);
    assert_int_equal(verify_mac(sets[0], mac, tok[1]), EG_JWT_OK);
    /* every token against every set, in a fixed scrambled order: as one-shot */
    for (int n = 0; n < 64; n++) {
        int s = (n * 7 + 3) % 4, t = (n * 5 + 1) % 4;
        assert_int_equal(verify_mac(sets[s], mac, tok[t]), verify_mac(sets[s], NULL, tok[t]));
    }
    eg_jwt_mac_free(mac);
    eg_jwt_mac_free(NULL);
    for (int i = 0; i < 4; i++) {
        eg_jwt_keys_free(sets[i]);
        free(tok[i]);
    }
}

static void bn_b64(const BIGNUM *bn, char *out, size_t cap)
{
    unsigned char buf[512];
    int n = BN_bn2bin(bn, buf);
    b64(buf, (size_t)n, out, cap);
}

static void test_jwks(void **state)
{
    (void)state;
    BIGNUM *n = NULL, *e = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(rsa_key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(rsa_key, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    unsigned char pt[65];
    size_t ptl = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(ec_key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptl), 1);
    assert_int_equal(ptl, 65);
    char nb[600], eb[16], xb[64], yb[64], kb[64], doc[2000];
    bn_b64(n, nb, sizeof(nb));
    bn_b64(e, eb, sizeof(eb));
    b64(pt + 1, 32, xb, sizeof(xb));
    b64(pt + 33, 32, yb, sizeof(yb));
    b64(hs_secret, sizeof(hs_secret) - 1, kb, sizeof(kb));
    BN_free(n);
    BN_free(e);
    snprintf(
        doc, sizeof(doc),
        "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"},"
        "{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
        "{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"%s\"},"
        "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        nb, eb, xb, yb, kb);
    eg_jwt_keys_t *k;
    char err[200] = "";
    assert_int_equal(eg_jwt_keys_new(&k), EG_OK);
    assert_int_equal(eg_jwt_keys_add_jwks(k, doc, strlen(doc), err, sizeof(err)), EG_OK);
    assert_int_equal(eg_jwt_keys_count(k), 3); /* the encryption key is skipped */
    eg_jwt_policy_t p = {NULL, NULL, 0, NULL, 0, 0};
    char *tok =
        sign("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{" SUB_EXP "}", "RS256", rsa_key, NULL, 0);
    assert_int_equal(verify(k, &p, tok, NULL), EG_JWT_OK);
    free(tok);
    tok = sign("{\"alg\":\"ES256\",\"kid\":\"e1\"}", "{" SUB_EXP "}", "ES256", ec_key, NULL, 0);
    assert_int_equal(verify(k, &p, tok, NULL), EG_JWT_OK);
    free(tok);
    tok = sign("{\"alg\":\"HS256\",\"kid\":\"h1\"}", "{" SUB_EXP "}", "HS256", NULL, hs_secret,
               sizeof(hs_secret) - 1);
    assert_int_equal(verify(k, &p, tok, NULL), EG_JWT_OK);
    free(tok);
    /* an RS256 token naming the EC key's kid finds no RSA key under it */
    tok = sign("{\"alg\":\"RS256\",\"kid\":\"e1\"}", "{}", "RS256", rsa_key, NULL, 0);
    assert_int_equal(verify(k, &p, tok, NULL), EG_JWT_NO_KEY);
    free(tok);
    eg_jwt_keys_free(k);
    /* documents that are refused, each with a reason */
    const char *bad[] = {
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", /* far too small */
        "{\"keys\":[{\"kty\":\"oct\"}]}",
        "{\"keys\":[{\"n\":\"x\"}]}",
        "{\"keys\":{}}",
        "{\"keys\":[",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        assert_int_equal(eg_jwt_keys_new(&k), EG_OK);
        err[0] = '\0';
        if (eg_jwt_keys_add_jwks(k, bad[i], strlen(bad[i]), err, sizeof(err)) == EG_OK)
            fail_msg("accepted JWKS %zu", i);
        assert_true(strlen(err) > 0);
        eg_jwt_keys_free(k);
    }
    /* PEM that is not a usable public key */
    assert_int_equal(eg_jwt_keys_new(&k), EG_OK);
    assert_int_not_equal(eg_jwt_keys_add_pem(k, NULL, "not a pem", 9, err, sizeof(err)), EG_OK);
    eg_jwt_keys_free(k);
}

static void test_base64url(void **state)
{
    (void)state;
    unsigned char out[16];
    size_t n;
    char enc[32];
    assert_int_equal(eg_base64url_decode("aGk", 3, out, sizeof(out), &n), EG_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "hi", 2);
    assert_int_equal(eg_base64url_decode("aGl", 3, out, sizeof(out), &n), EG_EPARSE); /* non-zero pad bits */
    assert_int_equal(eg_base64url_decode("aGk=", 4, out, sizeof(out), &n), EG_EPARSE);
    assert_int_equal(eg_base64url_decode("a", 1, out, sizeof(out), &n), EG_EPARSE);
    assert_int_equal(eg_base64url_decode("-_-_", 4, out, sizeof(out), &n), EG_OK);
    assert_int_equal(eg_base64url_decode("+/+/", 4, out, sizeof(out), &n), EG_EPARSE);
    assert_int_equal(eg_base64url_decode("AAAAAAAAAAAAAAAAAAAAAAAA", 24, out, sizeof(out), &n), EG_ERANGE);
    for (size_t len = 0; len < 10; len++) {
        unsigned char in[10];
        for (size_t i = 0; i < len; i++) in[i] = (unsigned char)(0xf0 + i * 7);
        assert_int_equal(eg_base64url_encode(in, len, enc, sizeof(enc), &n), EG_OK);
        assert_null(strchr(enc, '='));
        size_t m;
        assert_int_equal(eg_base64url_decode(enc, n, out, sizeof(out), &m), EG_OK);
        assert_int_equal(m, len);
        assert_memory_equal(out, in, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_algorithms), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_key_confusion),    cmocka_unit_test(test_kid_selection),
        cmocka_unit_test(test_jwks),             cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_thread_mac),
        cmocka_unit_test(test_required_claims),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
