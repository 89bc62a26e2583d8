/* test_schema_fastre.c - the anchored patterns matched without PCRE2
 * (lib/schema_fastre.c) give PCRE2's verdicts.
 *
 * 1. Which patterns take the fast path, written here: the request
 *    patterns of the benchmarks and examples do; alternations, groups,
 *    negated classes, "." and overlapping varying atoms do not.
 * 2. Verdicts written here for some subjects (a trailing newline, a
 *    non-ASCII character, bounds of counts).
 * 3. Differentially: every pattern of the list, fast or not, against
 *    PCRE2 compiled as "pattern" compiles it (eg_schema_regex), on fixed
 *    subjects and on random ones drawn from the characters the patterns
 *    use plus a few others.
 */
#include "testutil.h"

#include "schema_int.h"

static const char *const fast_patterns[] = {
    "^[A-Z0-9]{4,12}$",
    "^[0-9]{5}$",
    "^[+][1-9][0-9]{6,14}$",
    "^\\+[1-9][0-9]{6,14}$",
    "^[a-z][a-z0-9-]*$",
    "^[0-9A-Z -]{3,10}$",
    "^[A-Z]{3}-[0-9]{4}$",
    "^\\d{3}$",
    "^[a-z]+_[0-9]+$",
    "^ab?c{2,}$",
    "^[\\w.]{1,3}@-$",
    "^[-a]{0,2}[b]?$",
    "^[a-c\\]]{2}$",
    "^x{0}y$",
    "^[A-Za-z_][A-Za-z0-9_]{0,31}$",
};

static const char *const slow_patterns[] = {
    "[A-Z]{3}",         /* not anchored */
    "^[A-Z]{3}",        /* not anchored at the end */
    "^(ab)+$",          /* a group */
    "^a|b$",            /* an alternation */
    "^[^a]{2}$",        /* a negated class */
    "^.{2}$",           /* any character */
    "^[a-z]*[a-z]$",    /* a varying atom meeting a later one */
    "^a*a$",            /* the same with literals */
    "^[-a]{0,2}[b-]?$", /* '-' in both */
    "^[\\w.]{1,3}@x$",  /* \w takes the x after it */
    "^\\s+$",           /* white space (Unicode's in ECMA) */
    "^a{2,}?$",         /* lazy */
    "^[]a]$",           /* an empty class first */
    "^\\u0041$",        /* escapes of code points */
    "^a\\$",            /* an escaped dollar at the end */
    "^é$",              /* non-ASCII */
};

static const char *const subjects[] = {
    "",
    "A",
    "ABCD",
    "WINTER2024",
    "WINTER24\n",
    "winter24",
    "ABCDEFGHIJKLM",
    "12345",
    "1234",
    "123456",
    "12345\n",
    "+33612345678",
    "+0612345678",
    "+3361234",
    "+336123456789012345",
    "gift-wrap",
    "Gift",
    "a",
    "a-",
    "75002",
    "SW1A 1AA",
    "ABC-1234",
    "ABC_1234",
    "AB-1234",
    "123",
    "12a",
    "abc_123",
    "abc_",
    "_1",
    "ac",
    "acc",
    "abcc",
    "abccc",
    "abc",
    "x.y@x",
    "a@x",
    "....@-",
    "-",
    "--",
    "--b",
    "-a-",
    "ab",
    "a]",
    "]]",
    "y",
    "xy",
    "é",
    "ABC\xc3\xa9",
    "A\xc3\xa9",
    "Ab_9",
    "_",
    "9a",
    "\xe2\x82\xac",
    "a b",
};

static pcre2_code *slow_compile(const char *p)
{
    char msg[256];
    size_t off = 0;
    pcre2_code *re = eg_schema_regex(p, strlen(p), msg, sizeof(msg), &off);
    assert_non_null(re);
    return re;
}

static int slow_match(const pcre2_code *re, const char *s, size_t n)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    assert_non_null(md);
    int r = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    assert_true(r >= 0 || r == PCRE2_ERROR_NOMATCH);
    return r >= 0;
}

static void test_which_are_fast(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fast_patterns) / sizeof(fast_patterns[0]); i++) {
        eg_fastre_t *f = eg_fastre_compile(fast_patterns[i], strlen(fast_patterns[i]));
        if (!f) fail_msg("not fast: %s", fast_patterns[i]);
        free(f);
    }
    for (size_t i = 0; i < sizeof(slow_patterns) / sizeof(slow_patterns[0]); i++) {
        eg_fastre_t *f = eg_fastre_compile(slow_patterns[i], strlen(slow_patterns[i]));
        if (f) fail_msg("fast: %s", slow_patterns[i]);
    }
}

static int fast(const char *p, const char *s)
{
    eg_fastre_t *f = eg_fastre_compile(p, strlen(p));
    assert_non_null(f);
    int m = eg_fastre_match(f, s, strlen(s));
    free(f);
    return m;
}

static void test_written_verdicts(void **state)
{
    (void)state;
    assert_int_equal(fast("^[A-Z0-9]{4,12}$", "WINTER2024"), 1);
    assert_int_equal(fast("^[A-Z0-9]{4,12}$", "WINTER24\n"), 0); /* "$" is end-only */
    assert_int_equal(fast("^[A-Z0-9]{4,12}$", "ABC"), 0);
    assert_int_equal(fast("^[A-Z0-9]{4,12}$", "ABCDEFGHIJKLM"), 0);
    assert_int_equal(fast("^[A-Z0-9]{4,12}$", "ABC\xc3\xa9"), 0); /* non-ASCII */
    assert_int_equal(fast("^[+][1-9][0-9]{6,14}$", "+33612345678"), 1);
    assert_int_equal(fast("^[+][1-9][0-9]{6,14}$", "+03612345678"), 0);
    assert_int_equal(fast("^[A-Z]{3}-[0-9]{4}$", "ABC-1234"), 1);
    assert_int_equal(fast("^[A-Z]{3}-[0-9]{4}$", "ABC_1234"), 0);
    assert_int_equal(fast("^[0-9A-Z -]{3,10}$", "SW1A 1AA"), 1);
    assert_int_equal(fast("^[a-z][a-z0-9-]*$", "gift-wrap"), 1);
    assert_int_equal(fast("^[a-z][a-z0-9-]*$", "Gift"), 0);
    assert_int_equal(fast("^x{0}y$", "y"), 1);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void compare(const char *p, const eg_fastre_t *f, const pcre2_code *re, const char *s,
                    size_t n)
{
    int a = eg_fastre_match(f, s, n), b = slow_match(re, s, n);
    if (a != b) fail_msg("%s on \"%.*s\": fast %d, PCRE2 %d", p, (int)n, s, a, b);
}

static void test_same_as_pcre2(void **state)
{
    (void)state;
    static const char alphabet[] = "AZaz09_-+ .@]\n\xc3"
                                   "bcx5";
    for (size_t i = 0; i < sizeof(fast_patterns) / sizeof(fast_patterns[0]); i++) {
        const char *p = fast_patterns[i];
        eg_fastre_t *f = eg_fastre_compile(p, strlen(p));
        pcre2_code *re = slow_compile(p);
        assert_non_null(f);
        for (size_t j = 0; j < sizeof(subjects) / sizeof(subjects[0]); j++)
            compare(p, f, re, subjects[j], strlen(subjects[j]));
        for (int k = 0; k < 3000; k++) {
            char s[40];
            size_t len = 0, n = next_rand() % 16;
            for (size_t j = 0; j < n; j++) {
                char c = alphabet[next_rand() % (sizeof(alphabet) - 1)];
                if ((unsigned char)c == 0xa9) c = 'e';
                s[len++] = c;
                if ((unsigned char)c == 0xc3) s[len++] = (char)0xa9; /* valid UTF-8: é */
            }
            compare(p, f, re, s, len);
        }
        free(f);
        pcre2_code_free(re);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which_are_fast),
        cmocka_unit_test(test_written_verdicts),
        cmocka_unit_test(test_same_as_pcre2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
