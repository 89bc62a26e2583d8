/* idempotency.h - Idempotency-Key, the pure part: the header, the request
 * fingerprint, the scoped store key and the stored response record.
 *
 * Semantics follow draft-ietf-httpapi-idempotency-key-header-07: a client
 * sends the same key on every retry of one request; the server runs the
 * request once and answers every retry with the first response. What this
 * header gives the gateway's idempotency stage:
 *
 * - eg_idem_key_parse: the header value, as a Structured Field string
 *   ("abc", RFC 8941 section 3.3.3, with \" and \\ escapes; the draft's
 *   form) or as a bare value (unique-request-id-123, the seed's form). Both
 *   name the same key: "abc" and abc are one key. The key is 1 to 255
 *   visible ASCII characters (0x21-0x7E): an sf-string may hold a space,
 *   but a key may not. SF parameters after the string ("abc";a=1) are
 *   refused rather than ignored, so a key has exactly one spelling per form.
 * - eg_idem_fingerprint: SHA-256 of the method, path, query and the body's
 *   SHA-256, each length-prefixed (no two different requests encode alike).
 *   The body hasher streams, for a caller that hashes the body as it
 *   arrives. eg_idem_fingerprint_body: the same parts with the body itself,
 *   in one pass (the gateway's stage, which has the body whole).
 * - eg_idem_scope_key: the store key, SHA-256 hex of the principal, route,
 *   method and key (length-prefixed): bounded length, no separator to
 *   confuse, and one caller's key can never name another caller's entry.
 * - eg_idem_scope_bytes: the same parts unhashed, for a store that compares
 *   them whole (memory: a keyed table hash, no SHA-256 of the scope).
 * - eg_idem_record_encode/decode: the stored response (status, end-to-end
 *   headers, body) as bytes for a store. Decoding checks every length and
 *   refuses what a response could not carry (CR, LF or NUL in a value, a
 *   name that is not a token, a status outside 100-599): a corrupt or
 *   forged record from a store is refused, never trusted and never read
 *   past its end.
 *
 * The fingerprint and the scoped key are hashed with OpenSSL's low-level
 * SHA256_Init/Update/Final (deprecated in OpenSSL 3, still built; 20-50 ns a
 * digest cheaper than EVP's provider dispatch, on every idempotent
 * request), or through the hasher's EVP digest where OpenSSL was built
 * without them; the streaming body hash uses EVP with SHA-256 fetched once
 * per hasher (a one-shot EVP_sha256() use fetches it every time). Functions
 * return 0 or a negative EG_E* code and leave their outputs untouched when
 * they fail. No I/O, no globals.
 */
#ifndef ERRGATE_IDEMPOTENCY_H
#define ERRGATE_IDEMPOTENCY_H

#include <stddef.h>
#include <stdint.h>

#include "errgate/common.h"
#include "errgate/http1.h"

#define EG_IDEM_KEY_MAX    255 /* characters in a key */
#define EG_IDEM_HASH_LEN   32  /* SHA-256 */
#define EG_IDEM_SCOPED_LEN 64  /* hex characters of a scoped key (no NUL) */

/* Parses an Idempotency-Key header value v[0..n) (leading and trailing SP
 * and HTAB are ignored). On success writes the key and a NUL into out and
 * its length into *outlen. EG_EPARSE: not an sf-string nor a bare key (an
 * unterminated string, a bad escape, a control or non-ASCII byte, a space
 * in a bare key, anything after the closing quote); EG_ERANGE: an empty key,
 * a key longer than 255, or a space inside the string. Any failure is the
 * gateway's 400 invalid_idempotency_key. */
int eg_idem_key_parse(const char *v, size_t n, char out[EG_IDEM_KEY_MAX + 1], size_t *outlen);

/* A fetched SHA-256 and a context for one-shot hashes. Not thread-safe:
 * each thread (gateway worker) owns one. A body hash started from it may
 * outlive it. Every function below that takes one accepts NULL (a
 * temporary one is made: correct, slower). */
typedef struct eg_idem_hasher_s eg_idem_hasher_t;

int eg_idem_hasher_new(eg_idem_hasher_t **out); /* EG_ENOMEM, EG_EIO */
void eg_idem_hasher_free(eg_idem_hasher_t *h);

/* The body's SHA-256, fed as it streams. One per request; init, any number
 * of updates, then final (or clear to abandon). clear is safe on a zeroed,
 * finalized or cleared hash; final releases the context whatever it
 * returns. len counts the bytes fed (the stage's max_body check). */
typedef struct {
    void *ctx; /* EVP_MD_CTX */
    uint64_t len;
} eg_idem_body_hash_t;

int eg_idem_body_hash_init(eg_idem_hasher_t *h, eg_idem_body_hash_t *b);
int eg_idem_body_hash_update(eg_idem_body_hash_t *b, const void *p, size_t n);
int eg_idem_body_hash_final(eg_idem_body_hash_t *b, unsigned char out[EG_IDEM_HASH_LEN]);
void eg_idem_body_hash_clear(eg_idem_body_hash_t *b);

/* The request's fingerprint. path is the request target before '?', query
 * what follows it (NULL or empty when there is none: "/a?" and "/a" are
 * one request). body_sha256 NULL means an empty body (the same as the hash
 * of zero bytes). EG_EIO when OpenSSL fails. */
int eg_idem_fingerprint(eg_idem_hasher_t *h, const char *method, size_t method_len,
                        const char *path, size_t path_len, const char *query, size_t query_len,
                        const unsigned char body_sha256[EG_IDEM_HASH_LEN],
                        unsigned char out[EG_IDEM_HASH_LEN]);

/* The request's fingerprint in one SHA-256 pass over the method, path,
 * query and the body itself (each length-prefixed, under its own tag: it
 * never equals an eg_idem_fingerprint). What the gateway stores since the
 * body is read whole before the fingerprint is taken: one digest instead
 * of two. body may be NULL when body_len is 0. EG_EINVAL, EG_EIO. */
int eg_idem_fingerprint_body(eg_idem_hasher_t *h, const char *method, size_t method_len,
                             const char *path, size_t path_len, const char *query, size_t query_len,
                             const void *body, size_t body_len,
                             unsigned char out[EG_IDEM_HASH_LEN]);

/* The store key of an idempotency key: 64 lowercase hex characters and a
 * NUL in out. principal: who is asking ("k:<key id>", "u:<JWT sub>",
 * "ip:<address>" on open routes; the caller's spelling), route: the route's
 * name or path, method, key: as parsed. Each part is taken by length, so
 * any byte is allowed in any of them. */
int eg_idem_scope_key(eg_idem_hasher_t *h, const char *principal, size_t principal_len,
                      const char *route, size_t route_len, const char *method, size_t method_len,
                      const char *key, size_t key_len, char out[EG_IDEM_SCOPED_LEN + 1]);

/* The scope of a key as bytes: the same four parts as eg_idem_scope_key,
 * each a 4-byte big-endian length and its bytes (no two scopes encode
 * alike), for a store that compares the scope whole instead of keeping a
 * SHA-256 of it (the gateway's memory store). Writes at most cap bytes to
 * out and their count to *outlen; EG_ERANGE when they do not fit. */
int eg_idem_scope_bytes(const char *principal, size_t principal_len, const char *route,
                        size_t route_len, const char *method, size_t method_len, const char *key,
                        size_t key_len, unsigned char *out, size_t cap, size_t *outlen);

/* A stored response. On encode the caller gives only what is to be replayed:
 * the end-to-end headers (no Connection, Keep-Alive, Transfer-Encoding,
 * TE, Trailer, Upgrade, Proxy-*, nor hop-by-hop names listed in Connection;
 * no Content-Length either, the replay frames the body itself; no
 * X-Request-ID, the replay has its own). The record keeps the headers in
 * order, duplicates included. */
typedef struct {
    int status;                /* 100-599 */
    eg_http_header_t *headers; /* decode: the caller's array, slices into the record */
    size_t nheaders;
    const unsigned char *body; /* decode: a slice into the record */
    size_t body_len;
} eg_idem_record_t;

#define EG_IDEM_RECORD_MAX_HEADERS 1024 /* more is refused on encode and decode */

/* Bytes eg_idem_record_encode writes for r (0 when r cannot be encoded:
 * too many headers, a part over 4 GiB). */
size_t eg_idem_record_size(const eg_idem_record_t *r);

/* Writes r into out[0..cap) and its length into *outlen. Checks what
 * decode checks (EG_EINVAL: a status outside 100-599, a name that is not a
 * token, CR, LF or NUL in a value, too many headers), so what is stored can
 * be replayed. EG_ERANGE when cap is smaller than eg_idem_record_size(r). */
int eg_idem_record_encode(const eg_idem_record_t *r, unsigned char *out, size_t cap,
                          size_t *outlen);

/* A record written piece by piece, for a caller that builds it as it splits
 * a response head (the gateway's stage, in one pass): eg_idem_record_start
 * writes the first EG_IDEM_RECORD_START bytes (magic, status, a header
 * count of 0), eg_idem_record_put each name, each value and then the body
 * (a 4-byte length and the bytes; returns the end), eg_idem_record_count
 * the count at the end. The caller sizes out (4 + n for each put) and
 * answers for what eg_idem_record_encode would check (a status in 100-599,
 * at most EG_IDEM_RECORD_MAX_HEADERS headers, names that are tokens,
 * values without control bytes but HTAB): a record that breaks them is
 * refused by eg_idem_record_decode, never replayed. */
#define EG_IDEM_RECORD_START 10
void eg_idem_record_start(unsigned char *out, int status);
unsigned char *eg_idem_record_put(unsigned char *o, const void *p, size_t n);
void eg_idem_record_count(unsigned char *out, size_t nheaders);

/* Reads a record rec[0..len) without copying: out->headers is set to the
 * caller's array headers[0..hcap), and every slice (names, values, body)
 * points into rec, valid while rec is. EG_EPARSE when the record is not
 * exactly one well-formed record (a wrong magic, a length past the end,
 * bytes left over, anything encode refuses); EG_ERANGE when it has more
 * than hcap headers. On failure *out is untouched; headers[] may have been
 * written. */
int eg_idem_record_decode(const unsigned char *rec, size_t len, eg_http_header_t *headers,
                          size_t hcap, eg_idem_record_t *out);

#endif
