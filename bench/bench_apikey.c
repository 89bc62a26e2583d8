/* bench_apikey.c - what checking a presented API key's bytes costs natively
 * (callgrind runs OpenSSL without the CPU's SHA extensions, so its counts
 * overstate the hashes): the hasher's parse (format and SHA-256 checksum)
 * plus its HMAC-SHA-256 lookup hash, as every request paid before the memo;
 * a memo hit; and a miss that hashes and memoises (the keyring defers the
 * checksum until a key does not match), cycling through
 * more keys than the memo holds (against parse + hash over as many keys:
 * the same cache misses). CPU time of the thread over N keys, the
 * best of R repeats.
 *
 * Usage: bench_apikey [N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/apikey.h"

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

enum { REPEATS = 5, NKEYS = 1024, MEMO = 128 };
static char keys[NKEYS][EG_APIKEY_LEN + 1];
static eg_apikey_hasher_t *h;
static volatile unsigned sink;

static size_t nkeys = 8; /* the keys parse_hash cycles through */

static void parse_hash(size_t i)
{
    eg_apikey_info_t info;
    unsigned char out[EG_APIKEY_HASH_LEN];
    if (eg_apikey_hasher_parse(h, keys[i % nkeys], EG_APIKEY_LEN, &info) == EG_OK &&
        eg_apikey_hasher_hash(h, keys[i % nkeys], EG_APIKEY_LEN, out) == EG_OK)
        sink += out[0];
}

static void memo_hit(size_t i)
{
    eg_apikey_info_t info;
    unsigned char out[EG_APIKEY_HASH_LEN];
    sink += (unsigned)eg_apikey_memo_get(h, keys[i % 8], EG_APIKEY_LEN, &info, out);
}

/* 1024 keys through 128 entries: nearly every lookup misses. As the
 * keyring does for a key that then matches: the shape, the hash and the
 * memo, the checksum left out (a matching key was generated). */
static void memo_miss(size_t i)
{
    eg_apikey_info_t info;
    unsigned char out[EG_APIKEY_HASH_LEN];
    const char *k = keys[i % NKEYS];
    if (!eg_apikey_memo_get(h, k, EG_APIKEY_LEN, &info, out) &&
        eg_apikey_shape(k, EG_APIKEY_LEN, &info) == EG_OK &&
        eg_apikey_hasher_hash(h, k, EG_APIKEY_LEN, out) == EG_OK)
        eg_apikey_memo_put(h, k, EG_APIKEY_LEN, out);
    sink += out[0];
}

static double run(void (*fn)(size_t), size_t n)
{
    double best = 1e300;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = cpu_ns();
        for (size_t i = 0; i < n; i++) fn(i);
        double t = (cpu_ns() - t0) / (double)n;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    const unsigned char pepper[] = "a pepper of thirty-two bytes....";
    if (eg_apikey_hasher_new(pepper, sizeof(pepper) - 1, &h) != EG_OK) return 1;
    for (size_t i = 0; i < NKEYS; i++)
        if (eg_apikey_generate("live", NULL, keys[i], sizeof(keys[i]), NULL) != EG_OK) return 1;
    double ph = run(parse_hash, n);
    nkeys = NKEYS;
    double ph_many = run(parse_hash, n);
    if (eg_apikey_hasher_memo(h, MEMO) != EG_OK) return 1;
    for (size_t i = 0; i < 8; i++) memo_miss(i); /* the eight keys memoised */
    double hit = run(memo_hit, n);
    double miss = run(memo_miss, n);
    printf("API key check, ns per key (CPU time, best of %d x %zu)\n", REPEATS, n);
    printf("  parse + hash, 8 keys        %8.1f   (every request before the memo)\n", ph);
    printf("  memo hit, 8 keys            %8.1f\n", hit);
    printf("  parse + hash, %4d keys     %8.1f\n", NKEYS, ph_many);
    printf("  memo miss, %4d keys        %8.1f   (lookup, shape, hash, memoise)\n", NKEYS, miss);
    eg_apikey_hasher_free(h);
    return sink == 42 ? 2 : 0;
}
