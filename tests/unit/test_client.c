/* test_client.c - the retrying client against a scripted local server, with
 * an injected clock, sleeper and randomness: waits are recorded, not slept. */
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
    char keys[8][64];           /* Idempotency-Key of each request */
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
        char *key = strcasestr(buf, "Idempotency-Key: ");
        if (s->served < 8) {
            s->keys[s->served][0] = '\0';
            if (key) sscanf(key + 17, "%63[^\r]", s->keys[s->served]);
        }
        const char *a = s->answers[s->served];
        if (!a) a = s->answers[s->served - 1];
        else if (!s->answers[s->served + 1]) s->served--; /* the last one repeats */
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

static int run_with(const char *const *answers, const char *method, fake_t *f, eg_client_response_t *r,
                    server_t *s, const eg_retry_policy_t *policy, eg_retry_budget_t *budget)
{
    server_start(s, answers);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", s->port);
    eg_client_options_t o;
    eg_client_options_default(&o);
    if (policy) o.policy = *policy;
    o.budget = budget;
    o.now_ms = fake_now;
    o.sleep_ms = fake_sleep;
    o.random = fake_random;
    o.ctx = f;
    f->now = 784111777000ull; /* Sun, 06 Nov 1994 08:49:37 GMT */
    eg_client_request_t req = {method, url, NULL, method && strcmp(method, "POST") == 0 ? "{}" : NULL, 2};
    int rc = eg_client_request(&req, &o, r);
    server_stop(s);
    return rc;
}

static int run(const char *const *answers, const char *method, fake_t *f, eg_client_response_t *r, server_t *s)
{
    return run_with(answers, method, f, r, s, NULL, NULL);
}

static void test_retry_after_is_honoured_without_waiting(void **state)
{
    (void)state;
    static const char *const answers[] = {
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: Sun, 06 Nov 1994 08:49:49 GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
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
        "HTTP/1.1 400 Bad Request\r\nX-Request-ID: req_9\r\nContent-Length: 76\r\nConnection: close\r\n\r\n"
        "{\"error\":\"VALIDATION_ERROR\",\"message\":\"bad\",\"statusCode\":400,\"details\":{}}  ", NULL};
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
    static const char *const answers[] = {
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 4\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", NULL};
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
