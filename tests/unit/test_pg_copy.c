/* test_pg_copy.c - the PostgreSQL sink's pure half (src/metering/pg_copy.c):
 * COPY text escaping byte by byte (tabs, newlines, backslashes, bytes that
 * are not UTF-8), whole rows, the sink URL's check and its description,
 * and that no message or description carries the password. */
#include "testutil.h"

#include <math.h>

#include "errgate/common.h"
#include "pg_copy.h"

static char *field(const char *in)
{
    static char out[256];
    size_t n = 0;
    assert_int_equal(eg_pg_copy_field(out, sizeof(out) - 1, &n, in), EG_OK);
    out[n] = '\0';
    return out;
}

static void test_field_escapes(void **state)
{
    (void)state;
    assert_string_equal(field("k:abc"), "k:abc");
    assert_string_equal(field(""), "");
    assert_string_equal(field(NULL), "");
    assert_string_equal(field("a\tb"), "a\\tb");
    assert_string_equal(field("a\nb\r\n"), "a\\nb\\r\\n");
    assert_string_equal(field("C:\\dir\\"), "C:\\\\dir\\\\");
    /* COPY's NULL marker and end-of-data marker, written as data */
    assert_string_equal(field("\\N"), "\\\\N");
    assert_string_equal(field("\\."), "\\\\.");
    /* other control bytes and ';' mean nothing to COPY's text format */
    assert_string_equal(field("a;b\x01"), "a;b\x01");
}

static void test_field_utf8(void **state)
{
    (void)state;
    /* valid sequences of 2, 3 and 4 bytes stay */
    assert_string_equal(field("u:jos\xC3\xA9"), "u:jos\xC3\xA9");
    assert_string_equal(field("\xE2\x82\xAC\xF0\x9F\x98\x80"), "\xE2\x82\xAC\xF0\x9F\x98\x80");
    /* a lone byte, an overlong form, a surrogate, a cut sequence: U+FFFD a byte */
    assert_string_equal(field("a\xFF"
                              "b"),
                        "a\xEF\xBF\xBD"
                        "b");
    assert_string_equal(field("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_string_equal(field("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_string_equal(field("x\xE2\x82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_string_equal(field("\xF4\x90\x80\x80"),
                        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* > U+10FFFF */
}

static void test_field_does_not_fit(void **state)
{
    (void)state;
    char out[8] = "abc";
    size_t n = 3;
    assert_int_equal(eg_pg_copy_field(out, sizeof(out), &n, "de\tfg"), EG_ERANGE); /* 9 > 8 */
    assert_int_equal(n, 3);
    assert_int_equal(eg_pg_copy_field(out, sizeof(out), &n, "f"), EG_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "abcf", 4);
}

static void test_rows(void **state)
{
    (void)state;
    char *line;
    size_t len;
    eg_pg_row_t served = {.subject = "k:key_1",
                          .event_type = "api.request",
                          .route = "users",
                          .status_class = 2,
                          .quantity = 1,
                          .ts = 1700000000, /* 2023-11-14T22:13:20Z */
                          .bytes_in = 10,
                          .bytes_out = 20};
    assert_int_equal(eg_pg_copy_row(&served, &line, &len), EG_OK);
    assert_string_equal(
        line, "k:key_1\tapi.request\tusers\t2\t1\t1\t2023-11-14 22:13:20+00\t10\t20\t\\N\n");
    assert_int_equal(len, strlen(line));
    free(line);
    /* a metering-API event: its id, a fraction, hostile strings */
    eg_pg_row_t api = {.subject = "u:a\tb",
                       .event_type = "custom.x\ny",
                       .route = "",
                       .event_id = "evt\\1",
                       .quantity = 2.5,
                       .ts = 0};
    assert_int_equal(eg_pg_copy_row(&api, &line, &len), EG_OK);
    assert_string_equal(
        line, "u:a\\tb\tcustom.x\\ny\t\t0\t2.5\t1\t1970-01-01 00:00:00+00\t0\t0\tevt\\\\1\n");
    free(line);
    /* a quantity written back exactly: 17 significant digits */
    api.quantity = 0.1;
    assert_int_equal(eg_pg_copy_row(&api, &line, &len), EG_OK);
    assert_non_null(strstr(line, "\t0.10000000000000001\t1\t"));
    free(line);
    /* a commit's sum of 37 requests in one hour: the hour's start */
    served.quantity = 37;
    served.events = 37;
    served.ts = 1700000000 / 3600 * 3600;
    assert_int_equal(eg_pg_copy_row(&served, &line, &len), EG_OK);
    assert_string_equal(
        line, "k:key_1\tapi.request\tusers\t2\t37\t37\t2023-11-14 22:00:00+00\t10\t20\t\\N\n");
    free(line);
    /* the worst case fits: every byte of every string one that grows */
    char big[301];
    memset(big, '\xFF', 300);
    big[300] = '\0';
    eg_pg_row_t worst = {.subject = big,
                         .event_type = big,
                         .route = big,
                         .event_id = big,
                         .quantity = 1,
                         .events = UINT64_MAX,
                         .bytes_in = UINT64_MAX};
    assert_int_equal(eg_pg_copy_row(&worst, &line, &len), EG_OK);
    assert_int_equal(
        len,
        4 * 900 + 3 +
            strlen("0\t1\t9223372036854775807\t1970-01-01 00:00:00+00\t9223372036854775807\t0\t") +
            1);
    free(line);
}

static void test_rows_refuse_bad_quantities(void **state)
{
    (void)state;
    char *line = NULL;
    size_t len;
    eg_pg_row_t r = {.subject = "k:1", .event_type = "api.request", .route = "r"};
    const double bad[] = {0, -1, NAN, INFINITY};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.quantity = bad[i];
        assert_int_equal(eg_pg_copy_row(&r, &line, &len), EG_EINVAL);
        assert_null(line);
    }
}

static void test_url_check(void **state)
{
    (void)state;
    char err[256];
    const char *good[] = {"postgres://errgate@127.0.0.1:5432/metering",
                          "postgresql://u:pw@db.example/billing?sslmode=require",
                          "postgres://u@h1:5432,h2:5433/db", "postgres:///db"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        err[0] = '\0';
        assert_int_equal(eg_pg_url_check(good[i], err, sizeof(err)), EG_OK);
    }
    struct {
        const char *url, *msg;
    } bad[] = {
        {"mysql://u@h/db", "sink must be a postgres:// URL"},
        {"host=h dbname=db", "sink must be a postgres:// URL"},
        {"postgres://u@h/db?nosuch=1", "invalid URI query parameter"},
        {"postgres://u@h:54x2/db", "port must be a number 1..65535"},
        {"postgres://u@h:70000/db", "port must be a number 1..65535"},
        {"postgres://u:s3cret-pw@[::1/db", "IPv6 host address"},
        {"postgres://u:s3cret%zz@h/db", "invalid percent-encoded token"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(eg_pg_url_check(bad[i].url, err, sizeof(err)), EG_EINVAL);
        if (!strstr(err, bad[i].msg)) fail_msg("%s: '%s' lacks '%s'", bad[i].url, err, bad[i].msg);
        /* libpq quotes the whole URI back in some messages: masked */
        assert_null(strstr(err, "s3cret"));
    }
}

static void test_describe_and_redact(void **state)
{
    (void)state;
    char d[128];
    eg_pg_url_describe("postgres://alice:pw-secret@db.example:5433/billing", d, sizeof(d));
    assert_string_equal(d, "alice@db.example:5433/billing");
    eg_pg_url_describe("postgres://h/db", d, sizeof(d));
    assert_string_equal(d, "h/db");
    eg_pg_url_describe("postgres:///db", d, sizeof(d));
    assert_string_equal(d, "(local socket)/db");
    /* the raw and the decoded password (%40 is '@') both go */
    char msg[200] = "URI \"postgres://a:p%40ss-word@h/db\" said p@ss-word twice: p@ss-word";
    eg_pg_redact("postgres://a:p%40ss-word@h/db", msg);
    assert_string_equal(msg, "URI \"postgres://a:***@h/db\" said *** twice: ***");
    /* no password, nothing masked */
    char plain[] = "connection refused";
    eg_pg_redact("postgres://a@h/db", plain);
    assert_string_equal(plain, "connection refused");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_escapes),
        cmocka_unit_test(test_field_utf8),
        cmocka_unit_test(test_field_does_not_fit),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_rows_refuse_bad_quantities),
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_describe_and_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
