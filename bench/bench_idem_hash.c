/* bench_idem_hash.c - what the Idempotency-Key fingerprint's SHA-256 costs
 * natively, by way of each OpenSSL entry point, for a 1 KB body: the
 * fingerprint as the stage takes it (eg_idem_fingerprint_body), and the
 * same bytes through EVP with the digest fetched once and a reused
 * context, EVP_Digest one-shot, and the low-level SHA256_Init/Update/Final.
 * CPU time of the thread over N runs, the best of R repeats: the floor
 * that any SHA-256 of the body puts under the stage (callgrind runs
 * OpenSSL without the CPU's SHA extensions, so its counts cannot say).
 *
 * Usage: bench_idem_hash [N] [BODY_BYTES] */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co., measured against EVP */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/idempotency.h"

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

enum { REPEATS = 5 };
static unsigned char body[1 << 16], prefix[64], out[32];
static size_t blen = 1024, plen = 56;
static eg_idem_hasher_t *hasher;
static EVP_MD *md;
static EVP_MD_CTX *ctx;
static volatile unsigned sink;

static void fp_stage(void)
{
    eg_idem_fingerprint_body(hasher, "POST", 4, "/v1/charges", 11, NULL, 0, body, blen, out);
}

static void evp_reused(void)
{
    unsigned int n;
    EVP_DigestInit_ex2(ctx, md, NULL);
    EVP_DigestUpdate(ctx, prefix, plen);
    EVP_DigestUpdate(ctx, body, blen);
    EVP_DigestFinal_ex(ctx, out, &n);
}

static void evp_oneshot(void)
{
    unsigned int n;
    EVP_Digest(body, blen, out, &n, md, NULL);
}

static void lowlevel(void)
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, prefix, plen);
    SHA256_Update(&c, body, blen);
    SHA256_Final(out, &c);
}

static void run(const char *name, void (*f)(void), long n)
{
    double best = 1e18;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = cpu_ns();
        for (long i = 0; i < n; i++) {
            f();
            sink += out[0];
        }
        double t = (cpu_ns() - t0) / (double)n;
        if (t < best) best = t;
    }
    printf("%-44s %8.1f ns\n", name, best);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 400000;
    if (argc > 2) blen = (size_t)atol(argv[2]);
    if (blen > sizeof(body)) blen = sizeof(body);
    memset(body, 'x', sizeof(body));
    memset(prefix, 'p', sizeof(prefix));
    if (eg_idem_hasher_new(&hasher) != EG_OK || !(md = EVP_MD_fetch(NULL, "SHA256", NULL)) ||
        !(ctx = EVP_MD_CTX_new())) {
        fprintf(stderr, "bench_idem_hash: OpenSSL failed\n");
        return 1;
    }
    printf("SHA-256, %zu-byte body (%ld runs, best of %d):\n", blen, n, REPEATS);
    run("eg_idem_fingerprint_body (the stage)", fp_stage, n);
    run("EVP, fetched digest, reused context", evp_reused, n);
    run("EVP_Digest one-shot (body only)", evp_oneshot, n);
    run("SHA256_Init/Update/Final", lowlevel, n);
    size_t keep = blen;
    blen = 0;
    run("eg_idem_fingerprint_body, empty body", fp_stage, n);
    run("SHA256_Init/Update/Final, empty body", lowlevel, n);
    blen = keep;
    eg_idem_hasher_free(hasher);
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
    return (int)(sink & 0);
}
