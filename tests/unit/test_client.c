/* test_client.c - the retrying client against a scripted local server, with
 * an injected clock, sleeper and randomness: waits are recorded, not slept.
 * The server records the Idempotency-Key lines of every request, so the tests
 * see what went over the wire, not what the client says it sent. */
#include "testutil.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errgate/client.h"

/* A one-thread server answering each accepted request with the next script entry. */
typedef struct {
    int fd, port;
    const char *const *answers; /* full HTTP responses, NULL-terminated; the last repeats */
    int served;
    char keys[8][300]; /* Idempotency-Key of each request */
    int nkeys[8];      /* how many Idempotency-Key lines it had */
    pthread_t thread;
} server_t;

static void *serve(void *arg)
{
    server_t *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) return NULL;
        char buf[8192];
        size_t len = 0;
        for (;;) { /* read the head and a Content-Length body */
            ssize_t k = read(c, buf + len, sizeof(buf) - 1 - len);
            if (k <= 0) break;
            len += (size_t)k;
            buf[len] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (!end) continue;
            char *cl = strcasestr(buf, "Content-Length: ");
            size_t want = (size_t)(end - buf) + 4 + (cl ? (size_t)atoi(cl + 16) : 0);
            if (len >= want) break;
        }
        char *key = strcasestr(buf, "\r\nIdempotency-Key:");
        if (s->served < 8) {
            s->keys[s->served][0] = '\0';
            s->nkeys[s->served] = 0;
            if (key) sscanf(key + 18, " %299[^\r]", s->keys[s->served]);
            for (char *k = key; k; k = strcasestr(k + 1, "\r\nIdempotency-Key:"))
                s->nkeys[s->served]++;
        }
        const char *a = s->answers[s->served];
        if (!a)
            a = s->answers[s->served - 1];
        else if (!s->answers[s->served + 1])
            s->served--; /* the last one repeats */
        s->served++;
        ssize_t w = write(c, a, strlen(a));
        (void)w;
        close(c);
    }
}

static void server_start(server_t *s, const char *const *answers)
{
    memset(s, 0, sizeof(*s));
    s->answers = answers;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(s->fd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    listen(s->fd, 16);
    pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(server_t *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
}

typedef struct {
    uint64_t now;
    uint64_t slept[8];
    int nsleeps;
} fake_t;

static uint64_t fake_now(void *ctx)
{
    return ((fake_t *)ctx)->now;
}

static void fake_sleep(void *ctx, uint64_t ms)
{
    fake_t *f = ctx;
    if (f->nsleeps < 8) f->slept[f->nsleeps++] = ms;
    f->now += ms;
}

static uint64_t fake_random(void *ctx)
{
    (void)ctx;
    return 0x0123456789abcdefull;
}

/* What a test may add to a request: header lines and the option key. */
typedef struct {
    const char *const *headers;
    const char *key;
} extra_t;

static int run_full(const char *const *answers, const char *method, fake_t *f,
                    eg_client_response_t *r, server_t *s, const eg_retry_policy_t *policy,
                    eg_retry_budget_t *budget, const extra_t *x)
{
    server_start(s, answers);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", s->port);
    eg_client_options_t o;
    eg_client_options_default(&o);
    if (policy) o.policy = *policy;
    o.budget = budget;
    o.idempotency_key = x ? x->key : NULL;
    o.now_ms = fake_now;
    o.sleep_ms = fake_sleep;
    o.random = fake_random;
    o.ctx = f;
    f->now = 784111777000ull; /* Sun, 06 Nov 1994 08:49:37 GMT */
    eg_client_request_t req = {method, url, x ? x->headers : NULL,
                               method && strcmp(method, "POST") == 0 ? "{}" : NULL, 2};
    int rc = eg_client_request(&req, &o, r);
    server_stop(s);
    return rc;
}

static int run_with(const char *const *answers, const char *method, fake_t *f,
                    eg_client_response_t *r, server_t *s, const eg_retry_policy_t *policy,
                    eg_retry_budget_t *budget)
{
    return run_full(answers, method, f, r, s, policy, budget, NULL);
}

static int run(const char *const *answers, const char *method, fake_t *f, eg_client_response_t *r,
               server_t *s)
{
    return run_with(answers, method, f, r, s, NULL, NULL);
}

static void test_retry_after_is_honoured_without_waiting(void **state)
{
    (void)state;
    static const char *const answers[] = {
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\nConnection: "
        "close\r\n\r\n",
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: Sun, 06 Nov 1994 08:49:49 "
        "GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", NULL};
    fake_t f = {0};
    eg_client_response_t r;
    server_t s;
    assert_int_equal(run(answers, "GET", &f, &r, &s), EG_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 3);
    assert_string_equal(r.body, "ok");
    assert_int_equal(f.nsleeps, 2);
    assert_int_equal(f.slept[0], 2000);  /* Retry-After: 2 */
    assert_int_equal(f.slept[1], 10000); /* the date, 12 s after the start minus the 2 s slept */
    eg_client_response_free(&r);
}

static void test_post_gets_one_key_across_attempts(void **state)
{
    (void)state;
    static const char *const answers[] = {
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", NULL};
    fake_t f = {0};
    eg_client_response_t r;
    server_t s;
    assert_int_equal(run(answers, "POST", &f, &r, &s), EG_OK);
    assert_int_equal(r.status, 201);
    assert_int_equal(strlen(r.idempotency_key), 36);
    assert_int_equal(r.idempotency_key[14], '4');
    assert_string_equal(s.keys[0], r.idempotency_key);
    assert_string_equal(s.keys[1], r.idempotency_key);
    /* full jitter with the fake random number: 0x...cdef % 1001 */
    assert_int_equal(f.slept[0], 0x0123456789abcdefull % 1001);
    eg_client_response_free(&r);
}

static void test_400_stops_with_the_parsed_error(void **state)
{
    (void)state;
    static const char *const answers[] = {
        "HTTP/1.1 400 Bad Request\r\nX-Request-ID: req_9\r\nContent-Length: 76\r\nConnection: "
        "close\r\n\r\n"
        "{\"error\":\"VALIDATION_ERROR\",\"message\":\"bad\",\"statusCode\":400,\"details\":{}}  ",
        NULL};
    fake_t f = {0};
    eg_client_response_t r;
    server_t s;
    assert_int_equal(run(answers, "GET", &f, &r, &s), EG_OK);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(f.nsleeps, 0);
    assert_non_null(r.error);
    assert_string_equal(r.error->s[EG_S_CODE], "validation_error");
    assert_string_equal(r.request_id, "req_9");
    assert_string_equal(r.stop_reason, "client error: fix the request");
    eg_client_response_free(&r);
}

/* Deadline and budget on the fake clock: decisions, not wall time. */
static void test_deadline_and_budget_stop_retries(void **state)
{
    (void)state;
    static const char *const answers[] = {"HTTP/1.1 503 Service Unavailable\r\nRetry-After: "
                                          "4\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                          NULL};
    eg_retry_policy_t p;
    eg_retry_policy_default(&p);
    p.max_attempts = 10;
    p.deadline_ms = 10000;
    fake_t f = {0};
    eg_client_response_t r;
    server_t s;
    assert_int_equal(run_with(answers, "GET", &f, &r, &s, &p, NULL), EG_OK);
    assert_int_equal(r.attempts, 3); /* waits at 0 s and 4 s; a third wait would end at 12 s */
    assert_int_equal(f.nsleeps, 2);
    assert_string_equal(r.stop_reason, "deadline reached");
    eg_client_response_free(&r);
    p.deadline_ms = 0;
    eg_retry_budget_t b;
    eg_retry_budget_init(&b, 11);
    memset(&f, 0, sizeof(f));
    assert_int_equal(run_with(answers, "GET", &f, &r, &s, &p, &b), EG_OK);
    assert_int_equal(r.attempts, 3); /* 11 tokens pay for two retries of 5 */
    assert_string_equal(r.stop_reason, "retry budget exhausted");
    eg_client_response_free(&r);
}

/* A UUIDv4 as RFC 9562 writes it: lowercase hex 8-4-4-4-12, version 4, variant 10. */
static void assert_uuid4(const char *k)
{
    assert_int_equal(strlen(k), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(k[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", k[i]));
    }
    assert_int_equal(k[14], '4');
    assert_non_null(strchr("89ab", k[19]));
}

#define R503 "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#define R201 "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
#define IN_USE_BODY                                                                                \
    "{\"type\":\"about:blank\",\"title\":\"Idempotency Key In "                                    \
    "Use\",\"status\":409,\"code\":\"idempotency_key_in_use\"}"
#define R409                                                                                       \
    "HTTP/1.1 409 Conflict\r\nRetry-After: 1\r\nContent-Type: application/problem+json\r\n"        \
    "Content-Length: 100\r\nConnection: close\r\n\r\n" IN_USE_BODY

/* 503, 503, 200: three attempts, one key on the wire, a random UUIDv4 that
 * does not come from the (here constant) injected random number: a second
 * request gets another key. */
static void test_post_keeps_one_key_across_three_attempts(void **state)
{
    (void)state;
    static const char *const answers[] = {
        R503, R503, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", NULL};
    fake_t f = {0};
    eg_client_response_t r;
    server_t s;
    assert_int_equal(run(answers, "POST", &f, &r, &s), EG_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.replayed, 0);
    assert_uuid4(r.idempotency_key);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.nkeys[i], 1);
        assert_string_equal(s.keys[i], r.idempotency_key);
    }
    char first[sizeof(r.idempotency_key)];
    snprintf(first, sizeof(first), "%s", r.idempotency_key);
    eg_client_response_free(&r);
    memset(&f, 0, sizeof(f));
    assert_int_equal(run(answers, "POST", &f, &r, &s), EG_OK);
    assert_uuid4(r.idempotency_key);
    assert_string_not_equal(r.idempotency_key, first);
    eg_client_response_free(&r);
}

/* 409 idempotency_key_in_use: the first request is still running; wait its
 * Retry-After and ask again with the same key, and the answer is a replay. */
static void test_409_in_use_waits_retry_after_with_the_same_key(void **state)
{
    (void)state;
    static const char *const answers[] = {
        R409,
        "HTTP/1.1 201 Created\r\nIdempotent-Replayed: true\r\nContent-Length: 2\r\nConnection: "
        "close\r\n\r\nok",
        NULL};
    fake_t f = {0};
    eg_client_response_t r;
    server_t s;
    assert_int_equal(run(answers, "POST", &f, &r, &s), EG_OK);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(f.nsleeps, 1);
    assert_int_equal(f.slept[0], 1000);
    assert_int_equal(s.nkeys[0], 1);
    assert_int_equal(s.nkeys[1], 1);
    assert_string_equal(s.keys[0], r.idempotency_key);
    assert_string_equal(s.keys[1], r.idempotency_key);
    assert_int_equal(r.replayed, 1);
    eg_client_response_free(&r);
}

/* The retry budget bounds 409 retries like any other: 4 tokens buy none. */
static void test_409_in_use_stays_within_the_budget(void **state)
{
    (void)state;
    static const char *const answers[] = {R409, R201, NULL};
    eg_retry_budget_t b;
    eg_retry_budget_init(&b, 4);
    fake_t f = {0};
    eg_client_response_t r;
    server_t s;
    assert_int_equal(run_with(answers, "POST", &f, &r, &s, NULL, &b), EG_OK);
    assert_int_equal(r.status, 409);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(f.nsleeps, 0);
    assert_string_equal(r.error->s[EG_S_CODE], "idempotency_key_in_use");
    assert_string_equal(r.stop_reason, "retry budget exhausted");
    eg_client_response_free(&r);
}

/* 422: the key was used for another request; waiting cannot help, and the
 * reason says what to do. Both spellings of the code (the _mismatch
 * and the catalog's _reused) are final. */
static void test_422_mismatch_is_not_retried(void **state)
{
    (void)state;
    static const char *const mismatch[] = {
        "HTTP/1.1 422 Unprocessable Content\r\nRetry-After: 1\r\nContent-Length: 72\r\nConnection: "
        "close\r\n\r\n"
        "{\"error\":\"idempotency_key_mismatch\",\"message\":\"other\",\"status_code\":422}",
        R201, NULL};
    static const char *const reused[] = {
        "HTTP/1.1 422 Unprocessable Content\r\nContent-Length: 70\r\nConnection: close\r\n\r\n"
        "{\"error\":\"idempotency_key_reused\",\"message\":\"other\",\"status_code\":422}",
        R201, NULL};
    const char *const *scripts[] = {mismatch, reused};
    for (int i = 0; i < 2; i++) {
        fake_t f = {0};
        eg_client_response_t r;
        server_t s;
        assert_int_equal(run(scripts[i], "POST", &f, &r, &s), EG_OK);
        assert_int_equal(r.status, 422);
        assert_int_equal(r.attempts, 1);
        assert_int_equal(f.nsleeps, 0);
        assert_string_equal(
            r.stop_reason,
            "Idempotency-Key already used for a different request: a new request needs a new key");
        eg_client_response_free(&r);
    }
}

/* Only the final response's Idempotent-Replayed counts; the name is matched
 * in any case, the value is "true" or the Structured Field "?1". */
static void test_replayed_is_read_from_the_final_response(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        int replayed;
    } cases[] = {{"Idempotent-Replayed: true", 1}, {"idempotent-replayed: ?1", 1},
                 {"IDEMPOTENT-REPLAYED:TRUE", 1},  {"Idempotent-Replayed: false", 0},
                 {"Idempotent-Replayed: ?0", 0},   {"X-Idempotent-Replayed: true", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char a[256];
        snprintf(a, sizeof(a),
                 "HTTP/1.1 201 Created\r\n%s\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                 cases[i].header);
        const char *const answers[] = {a, NULL};
        fake_t f = {0};
        eg_client_response_t r;
        server_t s;
        assert_int_equal(run(answers, "POST", &f, &r, &s), EG_OK);
        assert_int_equal(r.status, 201);
        assert_int_equal(r.replayed, cases[i].replayed);
        eg_client_response_free(&r);
    }
    /* a replayed 503 then a fresh 201: not a replay */
    static const char *const answers[] = {
        "HTTP/1.1 503 Service Unavailable\r\nIdempotent-Replayed: true\r\nContent-Length: "
        "0\r\nConnection: close\r\n\r\n",
        R201, NULL};
    fake_t f = {0};
    eg_client_response_t r;
    server_t s;
    assert_int_equal(run(answers, "POST", &f, &r, &s), EG_OK);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(r.replayed, 0);
    eg_client_response_free(&r);
}

/* The caller's own Idempotency-Key header goes out as it is, once, on every
 * attempt; curl's "Name:" (remove the header) sends none, and then a POST is
 * not retried. */
static void test_caller_key_is_sent_as_is_and_once(void **state)
{
    (void)state;
    static const char *const answers[] = {R503, R201, NULL};
    static const char *const mine[] = {"idempotency-key:  \"abc\"", NULL};
    extra_t x = {mine, NULL};
    fake_t f = {0};
    eg_client_response_t r;
    server_t s;
    assert_int_equal(run_full(answers, "POST", &f, &r, &s, NULL, NULL, &x), EG_OK);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.attempts, 2);
    assert_string_equal(r.idempotency_key, "\"abc\"");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s.nkeys[i], 1);
        assert_string_equal(s.keys[i], "\"abc\"");
    }
    eg_client_response_free(&r);

    static const char *const none[] = {"Idempotency-Key:", NULL};
    x.headers = none;
    memset(&f, 0, sizeof(f));
    assert_int_equal(run_full(answers, "POST", &f, &r, &s, NULL, NULL, &x), EG_OK);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(s.nkeys[0], 0);
    assert_string_equal(r.idempotency_key, "");
    assert_string_equal(r.stop_reason, "not idempotent and no Idempotency-Key");
    eg_client_response_free(&r);
}

/* The option's key: up to 255 characters go out whole; two sources of a key
 * or a key the gateway would refuse are the caller's mistake. */
static void test_option_key_rules(void **state)
{
    (void)state;
    static const char *const answers[] = {R201, NULL};
    char longkey[256];
    memset(longkey, 'k', 255);
    longkey[255] = '\0';
    extra_t x = {NULL, longkey};
    fake_t f = {0};
    eg_client_response_t r;
    server_t s;
    assert_int_equal(run_full(answers, "POST", &f, &r, &s, NULL, NULL, &x), EG_OK);
    assert_int_equal(s.nkeys[0], 1);
    assert_string_equal(s.keys[0], longkey);
    assert_string_equal(r.idempotency_key, longkey);
    eg_client_response_free(&r);

    char toolong[257];
    memset(toolong, 'k', 256);
    toolong[256] = '\0';
    static const char *const one[] = {"Idempotency-Key: a", NULL};
    static const char *const two[] = {"Idempotency-Key: a", "Idempotency-Key: b", NULL};
    const extra_t bad[] = {{NULL, toolong},          {NULL, ""}, {NULL, "a b"},
                           {NULL, "a\r\nX-Evil: 1"}, {one, "a"}, {two, NULL}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&f, 0, sizeof(f));
        assert_int_equal(run_full(answers, "POST", &f, &r, &s, NULL, NULL, &bad[i]), EG_EINVAL);
        assert_int_equal(s.served, 0);
    }
}

static int setup(void **state)
{
    (void)state;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_is_honoured_without_waiting),
        cmocka_unit_test(test_post_gets_one_key_across_attempts),
        cmocka_unit_test(test_400_stops_with_the_parsed_error),
        cmocka_unit_test(test_deadline_and_budget_stop_retries),
        cmocka_unit_test(test_post_keeps_one_key_across_three_attempts),
        cmocka_unit_test(test_409_in_use_waits_retry_after_with_the_same_key),
        cmocka_unit_test(test_409_in_use_stays_within_the_budget),
        cmocka_unit_test(test_422_mismatch_is_not_retried),
        cmocka_unit_test(test_replayed_is_read_from_the_final_response),
        cmocka_unit_test(test_caller_key_is_sent_as_is_and_once),
        cmocka_unit_test(test_option_key_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
