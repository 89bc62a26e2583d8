/* apikey.c - the API key format (see apikey.h). */
#include "errgate/apikey.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>

static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#define PREFIX_LEN 8 /* "eg_live_" */
#define SECRET_LEN 43
#define CHECK_LEN 6
#define BODY_END (PREFIX_LEN + EG_APIKEY_ID_LEN + 1 + SECRET_LEN)

static int is_b62(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* Writes the big-endian number in[0..n) as exactly `digits` base62
 * characters (most significant first); in is consumed. */
static void base62(unsigned char *in, size_t n, char *out, size_t digits)
{
    for (size_t d = digits; d-- > 0;) {
        unsigned rem = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned cur = (rem << 8) | in[i];
            in[i] = (unsigned char)(cur / 62);
            rem = cur % 62;
        }
        out[d] = B62[rem];
    }
}

static int checksum(const char *body, char out[CHECK_LEN])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    if (!SHA256((const unsigned char *)body, BODY_END, md)) return EG_EIO;
    base62(md, 4, out, CHECK_LEN); /* 62^6 > 2^32: all four bytes survive */
    return EG_OK;
}

int eg_apikey_id_valid(const char *id)
{
    if (!id || strlen(id) != EG_APIKEY_ID_LEN) return 0;
    for (size_t i = 0; i < EG_APIKEY_ID_LEN; i++)
        if (!is_b62(id[i])) return 0;
    return 1;
}

int eg_apikey_generate(const char *env, const char *id, char *out, size_t cap, eg_apikey_info_t *info)
{
    if (!env || (strcmp(env, "live") && strcmp(env, "test")) || !out || cap < EG_APIKEY_LEN + 1 ||
        (id && !eg_apikey_id_valid(id)))
        return EG_EINVAL;
    unsigned char rnd[6 + 32];
    if (RAND_bytes(rnd, (int)sizeof(rnd)) != 1) return EG_EIO;
    char key[EG_APIKEY_LEN + 1];
    memcpy(key, "eg_", 3);
    memcpy(key + 3, env, 4);
    key[7] = '_';
    if (id) memcpy(key + PREFIX_LEN, id, EG_APIKEY_ID_LEN);
    else base62(rnd, 6, key + PREFIX_LEN, EG_APIKEY_ID_LEN); /* 48 bits in 8 digits */
    key[PREFIX_LEN + EG_APIKEY_ID_LEN] = '_';
    base62(rnd + 6, 32, key + PREFIX_LEN + EG_APIKEY_ID_LEN + 1, SECRET_LEN);
    int rc = checksum(key, key + BODY_END);
    OPENSSL_cleanse(rnd, sizeof(rnd));
    if (rc) return rc;
    key[EG_APIKEY_LEN] = '\0';
    memcpy(out, key, EG_APIKEY_LEN + 1);
    OPENSSL_cleanse(key, sizeof(key));
    if (info) {
        memcpy(info->env, env, 5);
        memcpy(info->id, out + PREFIX_LEN, EG_APIKEY_ID_LEN);
        info->id[EG_APIKEY_ID_LEN] = '\0';
    }
    return EG_OK;
}

int eg_apikey_parse(const char *key, size_t len, eg_apikey_info_t *info)
{
    if (!key || len != EG_APIKEY_LEN || memcmp(key, "eg_", 3) != 0 ||
        (memcmp(key + 3, "live_", 5) != 0 && memcmp(key + 3, "test_", 5) != 0) ||
        key[PREFIX_LEN + EG_APIKEY_ID_LEN] != '_')
        return EG_EPARSE;
    for (size_t i = PREFIX_LEN; i < EG_APIKEY_LEN; i++)
        if (i != PREFIX_LEN + EG_APIKEY_ID_LEN && !is_b62(key[i])) return EG_EPARSE;
    char check[CHECK_LEN];
    if (checksum(key, check) != EG_OK || memcmp(check, key + BODY_END, CHECK_LEN) != 0)
        return EG_EPARSE;
    if (info) {
        memcpy(info->env, key + 3, 4);
        info->env[4] = '\0';
        memcpy(info->id, key + PREFIX_LEN, EG_APIKEY_ID_LEN);
        info->id[EG_APIKEY_ID_LEN] = '\0';
    }
    return EG_OK;
}

int eg_apikey_hash(const unsigned char *pepper, size_t pepper_len, const char *key, size_t len,
                   unsigned char out[EG_APIKEY_HASH_LEN])
{
    if (!key || !out) return EG_EINVAL;
    if (pepper_len == 0)
        return SHA256((const unsigned char *)key, len, out) ? EG_OK : EG_EIO;
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), pepper, (int)pepper_len, (const unsigned char *)key, len, out, &n) ||
        n != EG_APIKEY_HASH_LEN)
        return EG_EIO;
    return EG_OK;
}

int eg_apikey_hash_equal(const unsigned char a[EG_APIKEY_HASH_LEN],
                         const unsigned char b[EG_APIKEY_HASH_LEN])
{
    return CRYPTO_memcmp(a, b, EG_APIKEY_HASH_LEN) == 0;
}
