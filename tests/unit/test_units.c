/* test_units.c - strict durations and sizes. */
#include "testutil.h"

#include "errgate/units.h"

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {{"500ms", 500}, {"2s", 2000}, {"1m", 60000}, {"24h", 86400000}, {"1d", 86400000}, {"0", 0}, {"0s", 0}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;
        assert_int_equal(eg_parse_duration_ms(ok[i].s, &v), EG_OK);
        assert_int_equal(v, ok[i].ms);
    }
    const char *bad[] = {"", "s", "5", "-1s", "+1s", "1.5s", " 1s", "1s ", "1 s", "1sec", "1S", "1ms2", NULL};
    for (size_t i = 0; bad[i]; i++) {
        uint64_t v = 7;
        if (eg_parse_duration_ms(bad[i], &v) == EG_OK) fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(v, 7);
    }
    uint64_t v;
    assert_int_equal(eg_parse_duration_ms("99999999999999999999s", &v), EG_ERANGE);
    assert_int_equal(eg_parse_duration_ms("999999999999999999d", &v), EG_ERANGE);
    char buf[32];
    eg_format_duration(30000, buf, sizeof(buf));
    assert_string_equal(buf, "30s");
    eg_format_duration(1500, buf, sizeof(buf));
    assert_string_equal(buf, "1500ms");
    eg_format_duration(120000, buf, sizeof(buf));
    assert_string_equal(buf, "2m");
    eg_format_duration(0, buf, sizeof(buf));
    assert_string_equal(buf, "0ms");
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {{"1024", 1024}, {"1B", 1}, {"1KiB", 1024}, {"1MiB", 1048576}, {"2GiB", 2147483648ull}, {"1KB", 1000}, {"3MB", 3000000}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 0;
        assert_int_equal(eg_parse_size(ok[i].s, &v), EG_OK);
        assert_int_equal(v, ok[i].v);
    }
    const char *bad[] = {"", "MiB", "1mib", "1 MiB", "-1", "1.5MiB", "1MiBs", "1k", NULL};
    for (size_t i = 0; bad[i]; i++) {
        uint64_t v;
        if (eg_parse_size(bad[i], &v) == EG_OK) fail_msg("accepted '%s'", bad[i]);
    }
    uint64_t v;
    assert_int_equal(eg_parse_size("99999999999GiB", &v), EG_ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_durations), cmocka_unit_test(test_sizes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
