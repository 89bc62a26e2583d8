/* fuzz_credentials.c - any bytes as a presented credential: an API key, an
 * IP or CIDR, a JWT as sent, and a JWT whose header and payload are the
 * input but whose HS256 signature is right (so the claims code is reached).
 * Nothing may crash or leak, and a verified token's strings must be
 * printable (they become forwarded headers). */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/apikey.h"
#include "errgate/cidr.h"
#include "errgate/jwt.h"

static eg_jwt_keys_t *keys;
static eg_jwt_mac_t *wmac; /* a worker's HS256 context, used for two inputs in three */
static const unsigned char secret[] = "fuzz-secret-fuzz-secret-fuzz";

static void check_printable(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) abort();
}

static void verify(const char *tok, size_t n)
{
    eg_jwt_policy_t p = {"iss", "aud", 30, n % 2 ? "scp" : NULL, 0, 0};
    eg_jwt_claims_t c;
    char msg[160];
    if (eg_jwt_verify(keys, n % 3 ? wmac : NULL, &p, tok, n, 1800000000LL, &c, msg, sizeof(msg)) == EG_JWT_OK) {
        check_printable(c.sub);
        check_printable(c.kid);
        for (size_t i = 0; i < c.nscopes; i++) check_printable(c.scopes[i]);
        eg_jwt_claims_free(&c);
    } else if (!memchr(msg, '\0', sizeof(msg))) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys && (eg_jwt_keys_new(&keys) || eg_jwt_keys_add_hmac(keys, NULL, secret, sizeof(secret) - 1) ||
                  eg_jwt_mac_new(&wmac)))
        abort();
    if (size > 6000) return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    eg_apikey_info_t info;
    if (eg_apikey_parse(s, size, &info) == EG_OK && strlen(info.id) != EG_APIKEY_ID_LEN) abort();
    eg_cidr_t c, ip;
    if (eg_cidr_parse(s, &c) == EG_OK && eg_ip_parse("10.0.0.1", &ip) == EG_OK) (void)eg_cidr_contains(&c, &ip);
    verify(s, size);
    /* header \n payload, signed for real */
    const char *nl = memchr(s, '\n', size);
    if (nl) {
        static char tok[16384];
        size_t hl, pl, sl;
        if (eg_base64url_encode((const unsigned char *)s, (size_t)(nl - s), tok, sizeof(tok), &hl) == EG_OK) {
            tok[hl] = '.';
            size_t rest = size - (size_t)(nl - s) - 1;
            if (eg_base64url_encode((const unsigned char *)nl + 1, rest, tok + hl + 1, sizeof(tok) - hl - 1, &pl) == EG_OK) {
                unsigned char mac[32];
                unsigned int ml;
                HMAC(EVP_sha256(), secret, sizeof(secret) - 1, (const unsigned char *)tok, hl + 1 + pl, mac, &ml);
                tok[hl + 1 + pl] = '.';
                if (eg_base64url_encode(mac, ml, tok + hl + pl + 2, sizeof(tok) - hl - pl - 2, &sl) == EG_OK)
                    verify(tok, hl + pl + 2 + sl);
            }
        }
    }
    free(s);
    return 0;
}
