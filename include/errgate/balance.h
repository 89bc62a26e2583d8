/* balance.h - which upstream server takes a request: round robin, least
 * connections, weighted round robin, or consistent hashing on a key.
 *
 * Pure logic: no clock, no sockets, no shared state. The caller passes each
 * server's view (usable or not, its weight, its requests in flight, a
 * stable id) and a cursor (a counter it advances per pick), so every choice
 * is reproducible in tests. Consistent hashing is rendezvous (highest
 * random weight) hashing over the servers' ids: a key goes to the usable
 * server with the highest score for it, so taking one server out moves only
 * the keys it had, and a weight of w counts as w virtual nodes.
 */
#ifndef ERRGATE_BALANCE_H
#define ERRGATE_BALANCE_H

#include <stddef.h>
#include <stdint.h>
#include "common.h"

typedef enum {
    EG_BALANCE_ROUND_ROBIN = 0,
    EG_BALANCE_LEAST_CONN,
    EG_BALANCE_WEIGHTED,
    EG_BALANCE_HASH
} eg_balance_t;

#define EG_BALANCE_MAX_WEIGHT 100

/* One server as a pick sees it. */
typedef struct {
    uint64_t id;     /* stable across reloads and reorderings: eg_balance_hash of its address */
    unsigned weight; /* 1..EG_BALANCE_MAX_WEIGHT (0 counts as 1) */
    unsigned load;   /* requests in flight (least_conn) */
    int usable;      /* 0: skipped (down, or tried already for this request) */
} eg_balance_server_t;

/* eg_balance_pick sets *out to the index of the server of s[0..n) that
 * policy chooses among the usable ones. cursor: a counter the caller
 * advances by one per pick (round robin, weighted, and least_conn's tie
 * break); key: eg_balance_hash of the request's key (hash only). Returns
 * EG_ENOENT when no server is usable. */
int eg_balance_pick(eg_balance_t policy, const eg_balance_server_t *s, size_t n, uint64_t cursor,
                    uint64_t key, size_t *out);

/* A 64-bit hash of len bytes (FNV-1a, then a finalizer so nearby keys
 * spread): server ids and request keys. */
uint64_t eg_balance_hash(const void *data, size_t len);

/* The policy named name ("round_robin", "least_conn", "weighted", "hash"),
 * or EG_EINVAL. */
int eg_balance_parse(const char *name, eg_balance_t *out);
const char *eg_balance_name(eg_balance_t policy);

#endif
