/* balance.c - the server pick of an upstream (balance.h).
 *
 * Each policy is a scan over at most a few hundred servers: no tables to
 * rebuild when a server goes down or a weight changes, and nothing kept
 * between picks except the caller's cursor. Weighted round robin maps the
 * cursor onto the usable servers' summed weights, so over any window of
 * that many picks each server gets exactly its share; hashing is
 * rendezvous hashing (see balance.h).
 */
#include "errgate/balance.h"

#include <string.h>

static unsigned weight_of(const eg_balance_server_t *s)
{
    if (s->weight == 0) return 1;
    return s->weight > EG_BALANCE_MAX_WEIGHT ? EG_BALANCE_MAX_WEIGHT : s->weight;
}

/* splitmix64's finalizer: every input bit moves every output bit */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t eg_balance_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

static int pick_rr(const eg_balance_server_t *s, size_t n, uint64_t cursor, size_t *out)
{
    for (size_t k = 0; k < n; k++) {
        size_t i = (size_t)((cursor + k) % n);
        if (s[i].usable) {
            *out = i;
            return EG_OK;
        }
    }
    return EG_ENOENT;
}

/* Fewest in flight per unit of weight (load_a / w_a < load_b / w_b,
 * compared crosswise); ties go round robin from the cursor so equal
 * servers share the work. */
static int pick_least(const eg_balance_server_t *s, size_t n, uint64_t cursor, size_t *out)
{
    size_t best = n;
    for (size_t k = 0; k < n; k++) {
        size_t i = (size_t)((cursor + k) % n);
        if (!s[i].usable) continue;
        if (best == n ||
            (uint64_t)s[i].load * weight_of(&s[best]) < (uint64_t)s[best].load * weight_of(&s[i]))
            best = i;
    }
    if (best == n) return EG_ENOENT;
    *out = best;
    return EG_OK;
}

static int pick_weighted(const eg_balance_server_t *s, size_t n, uint64_t cursor, size_t *out)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i].usable) total += weight_of(&s[i]);
    if (total == 0) return EG_ENOENT;
    uint64_t slot = cursor % total;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].usable) continue;
        if (slot < weight_of(&s[i])) {
            *out = i;
            return EG_OK;
        }
        slot -= weight_of(&s[i]);
    }
    return EG_ENOENT; /* not reached: slot < total */
}

static int pick_hash(const eg_balance_server_t *s, size_t n, uint64_t key, size_t *out)
{
    size_t best = n;
    uint64_t top = 0;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].usable) continue;
        for (unsigned v = 0; v < weight_of(&s[i]); v++) {
            uint64_t score = mix64(key ^ mix64(s[i].id + v * 0x9e3779b97f4a7c15ULL));
            /* equal scores (vanishingly rare) go to the lower id: the same on every worker */
            if (best == n || score > top || (score == top && s[i].id < s[best].id)) {
                best = i;
                top = score;
            }
        }
    }
    if (best == n) return EG_ENOENT;
    *out = best;
    return EG_OK;
}

int eg_balance_pick(eg_balance_t policy, const eg_balance_server_t *s, size_t n, uint64_t cursor,
                    uint64_t key, size_t *out)
{
    if (!s || !out || n == 0) return EG_ENOENT;
    switch (policy) {
    case EG_BALANCE_LEAST_CONN:
        return pick_least(s, n, cursor, out);
    case EG_BALANCE_WEIGHTED:
        return pick_weighted(s, n, cursor, out);
    case EG_BALANCE_HASH:
        return pick_hash(s, n, key, out);
    case EG_BALANCE_ROUND_ROBIN:
    default:
        return pick_rr(s, n, cursor, out);
    }
}

static const char *const names[] = {"round_robin", "least_conn", "weighted", "hash"};

int eg_balance_parse(const char *name, eg_balance_t *out)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (eg_balance_t)i;
            return EG_OK;
        }
    return EG_EINVAL;
}

const char *eg_balance_name(eg_balance_t policy)
{
    return (unsigned)policy < sizeof(names) / sizeof(names[0]) ? names[policy] : "round_robin";
}
