/* test_redact.c - the query parameters the access log hides: every spelling
 * of a configured name that a server reads as that name, and nothing else. */
#include "testutil.h"

#include "redact.h"

static char *const names[] = {"api_key", "token"};

static void expect(const char *target, const char *want)
{
    char out[1024];
    size_t n = eg_redact_target(target, strlen(target), names, 2, out, sizeof(out));
    if (n != strlen(want) || memcmp(out, want, n) != 0)
        fail_msg("%s\n got  %.*s\n want %s", target, (int)n, out, want);
}

static void test_spellings_are_hidden(void **state)
{
    (void)state;
    expect("/v1/x?api_key=s0", "/v1/x?api_key=[REDACTED]");
    expect("/v1/x?API_KEY=s1", "/v1/x?API_KEY=[REDACTED]");
    expect("/v1/x?Api_Key=s2", "/v1/x?Api_Key=[REDACTED]");
    expect("/v1/x?api%5Fkey=s3", "/v1/x?api%5Fkey=[REDACTED]");
    expect("/v1/x?api%5fKEY=s3", "/v1/x?api%5fKEY=[REDACTED]");
    expect("/v1/x?%61%70%69_key=s3", "/v1/x?%61%70%69_key=[REDACTED]");
    expect("/v1/x?a=1;api_key=s4", "/v1/x?a=1;api_key=[REDACTED]");
    expect("/v1/x?api_key[]=s5", "/v1/x?api_key[]=[REDACTED]");
    expect("/v1/x?api_key%5B%5D=s5", "/v1/x?api_key%5B%5D=[REDACTED]");
    expect("/v1/x?api_key[0]=s5", "/v1/x?api_key[0]=[REDACTED]");
    expect("/v1/x?auth[api_key]=s6", "/v1/x?auth[api_key]=[REDACTED]");
    expect("/v1/x?api.key=s7", "/v1/x?api.key=[REDACTED]");
    expect("/v1/x?api+key=s7", "/v1/x?api+key=[REDACTED]");
    expect("/v1/x?api_key%00junk=s8", "/v1/x?api_key%00junk=[REDACTED]");
    expect("/v1/x?TOKEN=s9", "/v1/x?TOKEN=[REDACTED]");
    /* every one in a single query, with other parameters kept around them */
    expect("/v1/x?q=1&API_KEY=a&Api_Key=b;api%5Fkey=c&a=1;api_key=d&api_key[]=e&z=2",
           "/v1/x?q=1&API_KEY=[REDACTED]&Api_Key=[REDACTED];api%5Fkey=[REDACTED]&a=1;"
           "api_key=[REDACTED]&api_key[]=[REDACTED]&z=2");
    /* an empty value and a repeated parameter */
    expect("/x?api_key=&api_key=s", "/x?api_key=[REDACTED]&api_key=[REDACTED]");
}

static void test_other_names_are_kept(void **state)
{
    (void)state;
    const char *kept[] = {
        "/x?api_keys=1", "/x?xapi_key=1", "/x?api=1&key=2",
        "/x?key_api=1",  "/x?api_key",    "/x?q=api_key",
        "/x?api%5key=1", "/x?api-key=1",  "/x?tokens=1",
        "/x?a=1&&b=2;",  "/x?",           "/x",
        "/x?%=1&%4=2",   "/x?[]=1&[=2",   NULL,
    };
    for (size_t i = 0; kept[i]; i++)
        expect(kept[i], kept[i]);
    assert_int_equal(eg_redact_name("api_key", 7, names, 0), 0);
    assert_int_equal(eg_redact_name("", 0, names, 2), 0);
}

static void test_names_from_the_config_fold_too(void **state)
{
    (void)state;
    char *const upper[] = {"API_Key"};
    assert_int_equal(eg_redact_name("api_key", 7, upper, 1), 1);
    assert_int_equal(eg_redact_name("Api%5FKEY", 9, upper, 1), 1);
    assert_int_equal(eg_redact_name("api_ke", 6, upper, 1), 0);
    assert_int_equal(eg_redact_name("api_keyy", 8, upper, 1), 0);
}

/* A query longer than the output keeps whole parameters only: no part of
 * a secret is ever written, and nothing past the buffer. */
static void test_cuts_keep_whole_parameters(void **state)
{
    (void)state;
    const char *t = "/p?a=1&api_key=SECRET&b=22";
    char out[64];
    for (size_t cap = 0; cap <= strlen("/p?a=1&api_key=[REDACTED]&b=22"); cap++) {
        memset(out, '#', sizeof(out));
        size_t n = eg_redact_target(t, strlen(t), names, 2, out, cap);
        assert_true(n <= cap);
        assert_int_equal(out[cap], '#');
        for (size_t i = 0; i + 1 < n; i++)
            if (memcmp(out + i, "SE", 2) == 0) fail_msg("cap %zu: %.*s", cap, (int)n, out);
        const char *full = "/p?a=1&api_key=[REDACTED]&b=22";
        assert_memory_equal(out, full, n); /* a prefix of the whole answer */
    }
    /* a path longer than 600 bytes keeps 600 of them, then the query */
    char longp[800], want[800];
    memset(longp, 'p', 700);
    strcpy(longp + 700, "?api_key=s");
    memset(want, 'p', 600);
    strcpy(want + 600, "?api_key=[REDACTED]");
    expect(longp, want);
    /* a parameter name longer than the decoder's buffer is hidden */
    char longn[700];
    memset(longn, 'n', 600);
    strcpy(longn + 600, "=v");
    assert_int_equal(eg_redact_name(longn, 600, names, 2), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spellings_are_hidden),
        cmocka_unit_test(test_other_names_are_kept),
        cmocka_unit_test(test_names_from_the_config_fold_too),
        cmocka_unit_test(test_cuts_keep_whole_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
