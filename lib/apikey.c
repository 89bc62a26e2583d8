/* apikey.c - the API key format (see apikey.h).
 *
 * The hasher's memo is a 2-way set-associative table: a set is picked by a
 * multiply-xorshift hash of the key under a random 64-bit seed (so nobody
 * can aim keys at one set), a hit needs the whole key equal in constant
 * time, and a miss replaces the way used less recently. */
#include "errgate/apikey.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
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

/* The same test, branch-free over a whole key: every presented key goes through it. */
static int all_b62(const char *s, size_t n)
{
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned d = (unsigned)(c - '0') < 10u, u = (unsigned)(c - 'A') < 26u, l = (unsigned)(c - 'a') < 26u;
        bad |= !(d | u | l);
    }
    return !bad;
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

/* The format checks shared by both parsers; the checksum is the caller's. */
static int well_formed(const char *key, size_t len)
{
    if (!key || len != EG_APIKEY_LEN || memcmp(key, "eg_", 3) != 0 ||
        (memcmp(key + 3, "live_", 5) != 0 && memcmp(key + 3, "test_", 5) != 0) ||
        key[PREFIX_LEN + EG_APIKEY_ID_LEN] != '_')
        return EG_EPARSE;
    if (!all_b62(key + PREFIX_LEN, EG_APIKEY_ID_LEN) ||
        !all_b62(key + PREFIX_LEN + EG_APIKEY_ID_LEN + 1, SECRET_LEN + CHECK_LEN))
        return EG_EPARSE;
    return EG_OK;
}

static void fill_info(const char *key, eg_apikey_info_t *info)
{
    if (info) {
        memcpy(info->env, key + 3, 4);
        info->env[4] = '\0';
        memcpy(info->id, key + PREFIX_LEN, EG_APIKEY_ID_LEN);
        info->id[EG_APIKEY_ID_LEN] = '\0';
    }
}

int eg_apikey_shape(const char *key, size_t len, eg_apikey_info_t *info)
{
    if (well_formed(key, len) != EG_OK) return EG_EPARSE;
    fill_info(key, info);
    return EG_OK;
}

int eg_apikey_parse(const char *key, size_t len, eg_apikey_info_t *info)
{
    char check[CHECK_LEN];
    if (well_formed(key, len) != EG_OK || checksum(key, check) != EG_OK ||
        memcmp(check, key + BODY_END, CHECK_LEN) != 0)
        return EG_EPARSE;
    fill_info(key, info);
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

/* Four words OR-ed together, no branch on the data: constant time like
 * CRYPTO_memcmp, whose byte loop was 240 instructions of every
 * authenticated request. */
int eg_apikey_hash_equal(const unsigned char a[EG_APIKEY_HASH_LEN],
                         const unsigned char b[EG_APIKEY_HASH_LEN])
{
    uint64_t d = 0, x, y;
    for (size_t i = 0; i < EG_APIKEY_HASH_LEN; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        d |= x ^ y;
    }
    return (int)(1 ^ ((d | (0 - d)) >> 63)); /* d == 0, without a comparison */
}

/* One memoised key: its bytes and its hash (the info is in the bytes). */
typedef struct {
    unsigned char key[EG_APIKEY_LEN];
    unsigned char used;
    unsigned char hash[EG_APIKEY_HASH_LEN];
} memo_t;

struct eg_apikey_hasher_s {
    EVP_MD *sha256;
    EVP_MD_CTX *md;
    EVP_MAC *hmac;
    EVP_MAC_CTX *mac;   /* keyed with the pepper once; re-initialised per key */
    memo_t *memo;       /* nsets * 2 entries, or NULL */
    unsigned char *mru; /* per set: the way hit or filled last */
    size_t nsets;       /* a power of two */
    uint64_t seed;
};

static void memo_free(eg_apikey_hasher_t *h)
{
    if (h->memo) OPENSSL_cleanse(h->memo, h->nsets * 2 * sizeof(*h->memo));
    free(h->memo);
    free(h->mru);
    h->memo = NULL;
    h->mru = NULL;
    h->nsets = 0;
}

void eg_apikey_hasher_free(eg_apikey_hasher_t *h)
{
    if (!h) return;
    memo_free(h);
    EVP_MAC_CTX_free(h->mac);
    EVP_MAC_free(h->hmac);
    EVP_MD_CTX_free(h->md);
    EVP_MD_free(h->sha256);
    free(h);
}

int eg_apikey_hasher_new(const unsigned char *pepper, size_t pepper_len, eg_apikey_hasher_t **out)
{
    eg_apikey_hasher_t *h = calloc(1, sizeof(*h));
    if (!h) return EG_ENOMEM;
    int ok = (h->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) && (h->md = EVP_MD_CTX_new());
    if (ok && pepper_len) {
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                               OSSL_PARAM_construct_end()};
        ok = (h->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) && (h->mac = EVP_MAC_CTX_new(h->hmac)) &&
             EVP_MAC_init(h->mac, pepper, pepper_len, params) == 1;
    }
    if (!ok) {
        eg_apikey_hasher_free(h);
        return EG_EIO;
    }
    *out = h;
    return EG_OK;
}

static int digest(eg_apikey_hasher_t *h, const void *data, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    return EVP_DigestInit_ex2(h->md, h->sha256, NULL) == 1 && EVP_DigestUpdate(h->md, data, n) == 1 &&
                   EVP_DigestFinal_ex(h->md, out, &len) == 1 && len == 32
               ? EG_OK
               : EG_EIO;
}

int eg_apikey_hasher_parse(eg_apikey_hasher_t *h, const char *key, size_t len, eg_apikey_info_t *info)
{
    unsigned char md[32];
    char check[CHECK_LEN];
    if (well_formed(key, len) != EG_OK || digest(h, key, BODY_END, md) != EG_OK) return EG_EPARSE;
    base62(md, 4, check, CHECK_LEN);
    if (memcmp(check, key + BODY_END, CHECK_LEN) != 0) return EG_EPARSE;
    fill_info(key, info);
    return EG_OK;
}

int eg_apikey_hasher_hash(eg_apikey_hasher_t *h, const char *key, size_t len,
                          unsigned char out[EG_APIKEY_HASH_LEN])
{
    if (!h->mac) return digest(h, key, len, out);
    size_t n = 0;
    /* a NULL key re-initialises with the pepper given at creation */
    if (EVP_MAC_init(h->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(h->mac, (const unsigned char *)key, len) != 1 ||
        EVP_MAC_final(h->mac, out, &n, EG_APIKEY_HASH_LEN) != 1 || n != EG_APIKEY_HASH_LEN)
        return EG_EIO;
    return EG_OK;
}

int eg_apikey_hasher_memo(eg_apikey_hasher_t *h, size_t entries)
{
    memo_free(h);
    if (!entries) return EG_OK;
    size_t n = 2;
    while (n * 2 <= entries && n < 4096)
        n *= 2;
    if (RAND_bytes((unsigned char *)&h->seed, sizeof(h->seed)) != 1) return EG_EIO;
    h->memo = calloc(n, sizeof(*h->memo));
    h->mru = calloc(n / 2, 1);
    if (!h->memo || !h->mru) {
        free(h->memo);
        free(h->mru);
        h->memo = NULL;
        h->mru = NULL;
        return EG_ENOMEM;
    }
    h->nsets = n / 2;
    return EG_OK;
}

/* The set of a key (EG_APIKEY_LEN bytes): eight words and the last two
 * bytes through a seeded multiply-xorshift, then a final avalanche. Not a
 * MAC: it only has to spread keys nobody can predict the sets of. */
static size_t memo_set(const eg_apikey_hasher_t *h, const char *key)
{
    uint64_t x = h->seed, w;
    for (size_t i = 0; i + 8 <= EG_APIKEY_LEN; i += 8) {
        memcpy(&w, key + i, 8);
        x = (x ^ w) * 0x9e3779b97f4a7c15ull;
        x ^= x >> 29;
    }
    w = (uint64_t)(unsigned char)key[EG_APIKEY_LEN - 2] |
        (uint64_t)(unsigned char)key[EG_APIKEY_LEN - 1] << 8;
    x = (x ^ w ^ h->seed) * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 31;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 29;
    return (size_t)x & (h->nsets - 1);
}

/* 1 when a memoised key's bytes equal key's: constant time like
 * CRYPTO_memcmp (every byte read, differences OR-ed together, no branch
 * on the data) but a word at a time, four times faster than its byte loop;
 * two of them run on every lookup. */
static int key_equal(const unsigned char *a, const char *b)
{
    uint64_t d = 0, x, y;
    for (size_t i = 0; i + 8 <= EG_APIKEY_LEN; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        d |= x ^ y;
    }
    for (size_t i = EG_APIKEY_LEN / 8 * 8; i < EG_APIKEY_LEN; i++)
        d |= (uint64_t)(a[i] ^ (unsigned char)b[i]);
    return (int)(1 ^ ((d | (0 - d)) >> 63)); /* d == 0, without a comparison */
}

int eg_apikey_memo_get(eg_apikey_hasher_t *h, const char *key, size_t len, eg_apikey_info_t *info,
                       unsigned char out[EG_APIKEY_HASH_LEN])
{
    if (!h || !h->memo || !key || len != EG_APIKEY_LEN) return 0;
    size_t set = memo_set(h, key);
    memo_t *e = &h->memo[set * 2];
    for (unsigned way = 0; way < 2; way++) {
        /* the whole key, in constant time: how much of a key matches never shows */
        if (key_equal(e[way].key, key) & e[way].used) {
            memcpy(out, e[way].hash, EG_APIKEY_HASH_LEN);
            fill_info(key, info);
            h->mru[set] = (unsigned char)way;
            return 1;
        }
    }
    return 0;
}

void eg_apikey_memo_put(eg_apikey_hasher_t *h, const char *key, size_t len,
                        const unsigned char hash[EG_APIKEY_HASH_LEN])
{
    if (!h || !h->memo || well_formed(key, len) != EG_OK) return;
    size_t set = memo_set(h, key);
    memo_t *e = &h->memo[set * 2];
    unsigned way = !e[0].used ? 0 : !e[1].used ? 1 : !h->mru[set];
    for (unsigned i = 0; i < 2; i++) /* a key put twice keeps one entry */
        if (e[i].used && key_equal(e[i].key, key)) way = i;
    OPENSSL_cleanse(&e[way], sizeof(e[way]));
    memcpy(e[way].key, key, EG_APIKEY_LEN);
    memcpy(e[way].hash, hash, EG_APIKEY_HASH_LEN);
    e[way].used = 1;
    h->mru[set] = (unsigned char)way;
}
