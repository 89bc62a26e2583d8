/* bench_access.c - ns per authentication + authorization of one request:
 * an API key (format check, peppered HMAC-SHA-256, snapshot lookup, scope
 * check) and an HS256 JWT (signature, claims, scopes); and ns per traffic
 * decision with the memory limiter (two rate limits decided together and a
 * concurrency slot taken and given back, bucket names built as the proxy does). The gateway's whole
 * CPU cost per proxied request is ~20 us on the bench machine (see
 * bench/proxy.sh), so these figures are the cost of access control as a
 * share of it. A benchmark, not a test: it prints figures.
 *
 * usage: bench_access [iterations, default 1000000]
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "errgate/jwt.h"
#include "keys.h"
#include "limiter.h"
#include "bench.h"

static const char config[] = "listen: 127.0.0.1:1\n"
                             "store: { backend: memory }\n"
                             "auth: { pepper_env: EG_BENCH_PEPPER, jwt: { secret_env: EG_BENCH_JWT } }\n"
                             "upstreams: { up: { servers: [127.0.0.1:2] } }\n"
                             "routes:\n"
                             "  - { path: /k/, upstream: up, auth: api_key, scopes: [read] }\n"
                             "  - { path: /j/, upstream: up, auth: jwt, scopes: [read] }\n";

static void fail(const char *what)
{
    fprintf(stderr, "bench_access: %s\n", what);
    exit(1);
}

/* Times eg_access_check on one parsed request head. */
static double time_check(const eg_config_t *cfg, const eg_route_cfg_t *r, eg_keyring_t *kr,
                         eg_apikey_hasher_t *h, eg_jwt_mac_t *jm, const char *head, long n)
{
    eg_http_header_t hdrs[32];
    eg_http1_msg_t m;
    size_t scanned = 0;
    eg_http1_limits_t lim = {8192, 32, 4096};
    if (eg_http1_parse_request(head, strlen(head), &lim, hdrs, 32, &scanned, &m) < 0) fail("parse");
    eg_cidr_t client;
    eg_ip_parse("127.0.0.1", &client);
    eg_access_t a;
    eg_refusal_t o;
    long long t = (long long)time(NULL);
    if (eg_access_check(cfg, r, kr, h, jm, &m, "127.0.0.1", &client, NULL, t, &a, &o) != 0) fail(o.why);
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (eg_access_check(cfg, r, kr, h, jm, &m, "127.0.0.1", &client, NULL, t, &a, &o) != 0) fail("refused");
    }
    return (now_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    setenv("EG_BENCH_PEPPER", "bench-pepper-0123456789abcdef", 1);
    setenv("EG_BENCH_JWT", "bench-jwt-secret-0123456789abcdef", 1);
    char err[512];
    eg_config_t *cfg = NULL;
    if (eg_config_parse(config, strlen(config), "bench", &cfg, err, sizeof(err)) != EG_OK) fail(err);
    eg_store_t *store;
    eg_keyring_t *kr;
    eg_apikey_hasher_t *h;
    if (eg_store_open(EG_STORE_MEMORY, NULL, 0, &store, err, sizeof(err)) != EG_OK) fail(err);
    /* a realistic key set: the one used among 10,000 others */
    char secret[EG_APIKEY_LEN + 1];
    eg_key_t k;
    for (int i = 0; i < 10000; i++) {
        eg_keyspec_t spec = {"bench", "user_1", "pro", "read write", NULL, NULL, 0};
        if (eg_keys_create(store, cfg->pepper, cfg->pepper_len, &spec, 1000, secret, &k, err, sizeof(err)) != EG_OK)
            fail(err);
        eg_key_clear(&k);
    }
    if (eg_keyring_new(store, cfg->pepper, cfg->pepper_len, 0, &kr, err, sizeof(err)) != EG_OK) fail(err);
    if (eg_keyring_hasher_new(kr, &h) != EG_OK) fail("hasher");
    char head[2048];
    snprintf(head, sizeof(head),
             "GET /k/search?q=x HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\n"
             "Accept: application/json\r\nX-API-Key: %s\r\n\r\n", secret);
    double key_ns = time_check(cfg, &cfg->routes[0], kr, h, NULL, head, n);
    double key_oneshot_ns = time_check(cfg, &cfg->routes[0], kr, NULL, NULL, head, n / 10);

    /* an HS256 token with a sub, an expiry and scopes */
    char hb[256], pb[512], sb[128], token[1200], payload[256];
    size_t hl, pl, sl;
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    snprintf(payload, sizeof(payload), "{\"sub\":\"user_42\",\"exp\":%lld,\"scope\":\"read write\"}",
             (long long)time(NULL) + 3600);
    eg_base64url_encode((const unsigned char *)header, strlen(header), hb, sizeof(hb), &hl);
    eg_base64url_encode((const unsigned char *)payload, strlen(payload), pb, sizeof(pb), &pl);
    char signing[800];
    int sn = snprintf(signing, sizeof(signing), "%s.%s", hb, pb);
    unsigned char mac[32];
    unsigned int ml;
    const char *js = getenv("EG_BENCH_JWT");
    HMAC(EVP_sha256(), js, (int)strlen(js), (const unsigned char *)signing, (size_t)sn, mac, &ml);
    eg_base64url_encode(mac, ml, sb, sizeof(sb), &sl);
    snprintf(token, sizeof(token), "%s.%s", signing, sb);
    snprintf(head, sizeof(head),
             "GET /j/search?q=x HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\n"
             "Accept: application/json\r\nAuthorization: Bearer %s\r\n\r\n", token);
    eg_jwt_mac_t *jm;
    if (eg_jwt_mac_new(&jm) != EG_OK) fail("jwt mac");
    double jwt_ns = time_check(cfg, &cfg->routes[1], kr, h, jm, head, n / 10);
    double jwt_oneshot_ns = time_check(cfg, &cfg->routes[1], kr, h, NULL, head, n / 10);
    eg_jwt_mac_free(jm);

    /* traffic: 10,000 clients' buckets in the table, one of them asked */
    eg_limiter_t *lim;
    if (eg_limiter_new(&lim) != EG_OK) fail("limiter");
    eg_gcra_t sec, hour;
    eg_gcra_init(&sec, 1000000, 1000, 0);
    eg_gcra_init(&hour, 100000000, 3600000, 0);
    char k1[320], k2[320], slot[320];
    eg_gcra_result_t res[2];
    size_t rep;
    uint64_t now = (uint64_t)time(NULL) * 1000000u;
    for (int i = 0; i < 10000; i++) {
        snprintf(k1, sizeof(k1), "R/v1/#0|i:10.0.%d.%d", i / 256, i % 256);
        eg_limit_req_t r = {k1, sec, 1};
        eg_limiter_decide(lim, &r, 1, now, res, &rep);
    }
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        snprintf(k1, sizeof(k1), "R%s#%zu|%s%s", "/v1/", (size_t)0, "i:", "10.0.3.7");
        snprintf(k2, sizeof(k2), "R%s#%zu|%s%s", "/v1/", (size_t)1, "i:", "10.0.3.7");
        eg_limit_req_t r[2] = {{k1, sec, 1}, {k2, hour, 1}};
        if (eg_limiter_decide(lim, r, 2, now + (uint64_t)i, res, &rep) != 1) fail("refused");
        snprintf(slot, sizeof(slot), "C%s|%s", "/v1/", "10.0.3.7");
        uint32_t active;
        if (eg_limiter_acquire(lim, slot, 10000, &active) != 1) fail("slot");
        eg_limiter_release(lim, slot);
    }
    double traffic_ns = (now_ns() - t0) / (double)n;
    eg_limiter_free(lim);

    printf("access control per request (%ld iterations, 10,000 keys in the store):\n", n);
    printf("  API key, worker's hasher  %7.0f ns\n", key_ns);
    printf("  API key, one-shot OpenSSL %7.0f ns\n", key_oneshot_ns);
    printf("  JWT HS256, worker's MAC   %7.0f ns\n", jwt_ns);
    printf("  JWT HS256, one-shot HMAC  %7.0f ns\n", jwt_oneshot_ns);
    printf("traffic policy per request (memory limiter, 10,000 clients):\n");
    printf("  two rate limits + a slot  %7.0f ns\n", traffic_ns);
    eg_apikey_hasher_free(h);
    eg_keyring_free(kr);
    eg_store_close(store);
    eg_config_free(cfg);
    return 0;
}
