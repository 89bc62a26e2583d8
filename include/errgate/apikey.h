/* apikey.h - the API key format: generated, parsed and hashed.
 *
 * A key reads   eg_live_AbCd1234_<43 base62 secret><6 base62 checksum>
 *               ^env    ^public id
 * - the prefix says what it is (secret scanners and people can tell);
 * - the public id (8 base62 characters) names the stored record, so a key
 *   is found without a hash index and shown in logs without the secret;
 * - the secret is 32 random bytes from OpenSSL's CSPRNG in base62;
 * - the checksum (first 4 bytes of SHA-256 of everything before it) lets a
 *   mistyped or truncated key be answered `malformed_api_key` without a
 *   store lookup, and tells it apart from an unknown (`invalid_api_key`) one.
 * Only a hash of the whole key is stored: HMAC-SHA-256 with the server's
 * pepper, or plain SHA-256 when no pepper is configured.
 */
#ifndef ERRGATE_APIKEY_H
#define ERRGATE_APIKEY_H

#include <stddef.h>

#include "errgate/common.h"

#define EG_APIKEY_ID_LEN 8
#define EG_APIKEY_LEN 66 /* "eg_live_" + id + "_" + secret 43 + checksum 6 */
#define EG_APIKEY_HASH_LEN 32

typedef struct {
    char env[5];                      /* "live" or "test" */
    char id[EG_APIKEY_ID_LEN + 1];    /* the public id */
} eg_apikey_info_t;

/* Generates a new key for env "live" or "test" into out (at least
 * EG_APIKEY_LEN + 1 bytes) and its public id into info. id is NULL for a
 * new random id, or an existing one (a rotation keeps the id). Randomness
 * comes from OpenSSL's RAND_bytes; EG_EIO if it fails. */
int eg_apikey_generate(const char *env, const char *id, char *out, size_t cap, eg_apikey_info_t *info);

/* 1 when id is a well-formed public id (8 base62 characters). */
int eg_apikey_id_valid(const char *id);

/* Checks the format and checksum of a presented key; EG_EPARSE when it is
 * not a well-formed errgate key. Costs one SHA-256 of 60 bytes. */
int eg_apikey_parse(const char *key, size_t len, eg_apikey_info_t *info);

/* The format alone, without the checksum: EG_EPARSE when key is not shaped
 * like an errgate key, else info filled. No hashing: for a caller that can
 * leave the checksum until it matters (a key whose hash matches a stored
 * one was generated, so its checksum is right). */
int eg_apikey_shape(const char *key, size_t len, eg_apikey_info_t *info);

/* The stored form of a key: HMAC-SHA-256(pepper, key), or SHA-256(key) when
 * pepper_len is 0. */
int eg_apikey_hash(const unsigned char *pepper, size_t pepper_len, const char *key, size_t len,
                   unsigned char out[EG_APIKEY_HASH_LEN]);

/* A hasher does what eg_apikey_parse and eg_apikey_hash do with OpenSSL
 * objects fetched and keyed once, instead of on every call (the one-shot
 * calls cost about 2 us per key, mostly in algorithm fetches). It is not
 * thread-safe: each thread (gateway worker) owns one. */
typedef struct eg_apikey_hasher_s eg_apikey_hasher_t;

int eg_apikey_hasher_new(const unsigned char *pepper, size_t pepper_len, eg_apikey_hasher_t **out);
void eg_apikey_hasher_free(eg_apikey_hasher_t *h);
int eg_apikey_hasher_parse(eg_apikey_hasher_t *h, const char *key, size_t len, eg_apikey_info_t *info);
int eg_apikey_hasher_hash(eg_apikey_hasher_t *h, const char *key, size_t len,
                          unsigned char out[EG_APIKEY_HASH_LEN]);

/* The hasher's memo: a small table of keys presented recently and matched,
 * so a client's next request skips both SHA-256 computations (a checksum
 * and a hash are pure functions of the key bytes and the hasher's pepper).
 * A hit is confirmed by a constant-time comparison of the whole key; set
 * indexes come from a hash seeded at random per hasher. Entries are wiped
 * when replaced and when the hasher is freed. It answers only "this exact
 * key parses and hashes to this": what the hash means (unknown, revoked,
 * expired, ...) is the caller's to decide on every request.
 *
 * eg_apikey_hasher_memo sizes it: entries rounded down to a power of two
 * (at most 4096; 0 turns it off, the default; 1 counts as 2); two ways per
 * set. EG_EIO when no random seed can be had. */
int eg_apikey_hasher_memo(eg_apikey_hasher_t *h, size_t entries);
/* 1 and *info, out filled when key is memoised; 0 otherwise. */
int eg_apikey_memo_get(eg_apikey_hasher_t *h, const char *key, size_t len, eg_apikey_info_t *info,
                       unsigned char out[EG_APIKEY_HASH_LEN]);
/* Memoises key with its hash, as eg_apikey_hasher_hash computed it. The
 * caller vouches that key is well-formed (eg_apikey_hasher_parse passed, or
 * its hash matched a stored key's, which only generated keys have); one
 * that is not even shaped like a key is ignored. */
void eg_apikey_memo_put(eg_apikey_hasher_t *h, const char *key, size_t len,
                        const unsigned char hash[EG_APIKEY_HASH_LEN]);

/* Constant-time comparison of two hashes: 1 when equal. */
int eg_apikey_hash_equal(const unsigned char a[EG_APIKEY_HASH_LEN],
                         const unsigned char b[EG_APIKEY_HASH_LEN]);

#endif
