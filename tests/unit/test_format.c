/* test_format.c - format names and checks (lib/format.h).
 *
 * Each check runs on an exact-size heap copy of its string (no NUL after
 * it), so ASan reports any read past the end. Expected verdicts are
 * written here from the RFCs, never read back from the code.
 */
#include "testutil.h"

#include "errgate/common.h"
#include "format.h"
#include "format_tables.h"

typedef struct {
    const char *s;
    int want;
} tcase_t;

static int run_check(eg_format_t f, const char *s, size_t n, int number)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    int got = number ? eg_format_check_number(f, copy, n) : eg_format_check(f, copy, n);
    free(copy);
    return got;
}

static void check_cases(eg_format_t f, const tcase_t *c, size_t count, int number)
{
    for (size_t i = 0; i < count; i++) {
        int got = run_check(f, c[i].s, strlen(c[i].s), number);
        if (got != c[i].want)
            fail_msg("%s: \"%s\" gave %d, want %d", eg_format_name(f), c[i].s, got, c[i].want);
    }
}

#define CHECK(f, cases)        check_cases(f, cases, sizeof(cases) / sizeof(cases[0]), 0)
#define CHECK_NUMBER(f, cases) check_cases(f, cases, sizeof(cases) / sizeof(cases[0]), 1)

static void test_lookup(void **state)
{
    static const struct {
        const char *name;
        eg_format_t f;
    } known[] = {
        {"date", EG_FMT_DATE},
        {"date-time", EG_FMT_DATE_TIME},
        {"time", EG_FMT_TIME},
        {"email", EG_FMT_EMAIL},
        {"uuid", EG_FMT_UUID},
        {"uri", EG_FMT_URI},
        {"uri-reference", EG_FMT_URI_REFERENCE},
        {"hostname", EG_FMT_HOSTNAME},
        {"ipv4", EG_FMT_IPV4},
        {"ipv6", EG_FMT_IPV6},
        {"regex", EG_FMT_REGEX},
        {"json-pointer", EG_FMT_JSON_POINTER},
        {"int32", EG_FMT_INT32},
        {"int64", EG_FMT_INT64},
        {"iso3166", EG_FMT_ISO3166},
        {"iso639", EG_FMT_ISO639},
        {"float", EG_FMT_ANNOTATION},
        {"double", EG_FMT_ANNOTATION},
        {"byte", EG_FMT_ANNOTATION},
        {"binary", EG_FMT_ANNOTATION},
        {"password", EG_FMT_ANNOTATION},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        eg_format_t f = EG_FMT_NONE;
        assert_int_equal(eg_format_lookup(known[i].name, strlen(known[i].name), &f), EG_OK);
        assert_int_equal(f, known[i].f);
        if (f != EG_FMT_ANNOTATION) assert_string_equal(eg_format_name(f), known[i].name);
    }
    assert_string_equal(eg_format_name(EG_FMT_NONE), "");
    /* names are exact: no case folding, no prefixes, no trailing bytes */
    const char *unknown[] = {"",          "Date", "datetime", "date-", "dat",   "uri-template",
                             "idn-email", "iri",  "duration", "int",   "int16", "iso3166-1",
                             "ipv4 "};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        eg_format_t f = EG_FMT_DATE;
        assert_int_equal(eg_format_lookup(unknown[i], strlen(unknown[i]), &f), EG_ENOENT);
        assert_int_equal(f, EG_FMT_DATE); /* untouched on failure */
    }
    /* the length is what counts, not a NUL: "date" within "date-time" */
    eg_format_t f;
    assert_int_equal(eg_format_lookup("date-time", 4, &f), EG_OK);
    assert_int_equal(f, EG_FMT_DATE);
}

static void test_annotations_and_none_pass(void **state)
{
    const char *any[] = {"", "not a date", "\xff\xfe", "1.5"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(run_check(EG_FMT_NONE, any[i], strlen(any[i]), 0), 1);
        assert_int_equal(run_check(EG_FMT_ANNOTATION, any[i], strlen(any[i]), 0), 1);
        /* number formats pass strings; string formats pass numbers */
        assert_int_equal(run_check(EG_FMT_INT32, any[i], strlen(any[i]), 0), 1);
        assert_int_equal(run_check(EG_FMT_DATE, any[i], strlen(any[i]), 1), 1);
    }
}

static void test_date(void **state)
{
    static const tcase_t c[] = {
        {"2024-02-29", 1}, /* leap year */
        {"2023-02-29", 0}, /* not one */
        {"2000-02-29", 1}, /* divisible by 400 */
        {"1900-02-29", 0}, /* by 100, not 400 */
        {"2023-02-28", 1},
        {"2023-04-30", 1},
        {"2023-04-31", 0},
        {"2023-12-31", 1},
        {"2023-01-32", 0},
        {"2023-13-01", 0},
        {"2023-00-10", 0},
        {"2023-01-00", 0},
        {"0000-01-01", 1},
        {"2023-1-01", 0},
        {"2023-01-1", 0},
        {"20230101", 0},
        {"2023-W01", 0},
        {"2023-01-01T00:00:00Z", 0},
        {"2023-01-01 ", 0},
        {" 2023-01-01", 0},
        {"2023/01/01", 0},
        {"1963-06-1\xe0\xa7\xa8", 0}, /* a Bengali digit is not a digit */
        {"", 0},
    };
    CHECK(EG_FMT_DATE, c);
}

static void test_time(void **state)
{
    static const tcase_t c[] = {
        {"08:30:06Z", 1},
        {"08:30:06z", 1}, /* RFC 3339 5.6: case-insensitive */
        {"08:30:06.283185Z", 1},
        {"08:30:06+02:00", 1},
        {"08:30:06-08:00", 1},
        {"08:30:06", 0}, /* the offset is required */
        {"08:30:06.Z", 0},
        {"8:30:06Z", 0},
        {"24:00:00Z", 0},
        {"23:60:00Z", 0},
        {"23:59:61Z", 0},
        {"08:30:06+24:00", 0},
        {"08:30:06+02:60", 0},
        {"08:30:06+0200", 0},
        {"08:30:06 Z", 0},
        {"08:30:06ZZ", 0},
        /* leap seconds: only when the UTC time is 23:59 */
        {"23:59:60Z", 1},
        {"23:59:60+00:00", 1},
        {"15:59:60-08:00", 1},
        {"01:29:60+01:30", 1},
        {"00:29:60+00:30", 1},
        {"23:58:60Z", 0},
        {"22:59:60Z", 0},
        {"23:59:60+01:00", 0},
        {"23:59:60-01:00", 0},
        {"", 0},
    };
    CHECK(EG_FMT_TIME, c);
}

static void test_date_time(void **state)
{
    static const tcase_t c[] = {
        {"1963-06-19T08:30:06.283185Z", 1},
        {"1963-06-19t08:30:06z", 1},
        {"1963-06-19T08:30:06+01:00", 1},
        {"1998-12-31T23:59:60Z", 1},
        {"1998-12-31T15:59:60.123-08:00", 1},
        {"1998-12-31T22:59:60Z", 0},
        {"1963-06-19 08:30:06Z", 0}, /* RFC 3339 allows a space only by agreement */
        {"1963-06-19T08:30:06", 0},
        {"2023-02-29T08:30:06Z", 0},
        {"1963-06-19", 0},
        {"1963-06-19T", 0},
        {"06/19/1963 08:30:06 PST", 0},
    };
    CHECK(EG_FMT_DATE_TIME, c);
}

static void test_uuid(void **state)
{
    static const tcase_t c[] = {
        {"2eb8aa08-aa98-11ea-b4aa-73b441d16380", 1},
        {"2EB8AA08-AA98-11EA-B4AA-73B441D16380", 1},
        {"2eb8aa08-AA98-11ea-B4Aa-73B441D16380", 1},
        {"00000000-0000-0000-0000-000000000000", 1}, /* nil */
        {"ffffffff-ffff-ffff-ffff-ffffffffffff", 1}, /* max */
        {"98d80576-482e-427f-8434-7f86890ab222", 1},
        {"2eb8aa08-aa98-11ea-b4aa-73b441d1638", 0},
        {"2eb8aa08-aa98-11ea-b4aa-73b441d163800", 0},
        {"2eb8aa08aa9811eab4aa73b441d16380", 0},
        {"2eb8aa08-aa98-11ea-b4ga-73b441d16380", 0},
        {"2eb8-aa08-aa98-11ea-b4aa73b441d16380", 0},
        {"{2eb8aa08-aa98-11ea-b4aa-73b441d16380}", 0},
        {"urn:uuid:2eb8aa08-aa98-11ea-b4aa-73b441d16380", 0},
        {"", 0},
    };
    CHECK(EG_FMT_UUID, c);
}

static void test_ipv4(void **state)
{
    static const tcase_t c[] = {
        {"192.168.0.1", 1},     {"0.0.0.0", 1},
        {"255.255.255.255", 1}, {"256.0.0.1", 0},
        {"1.2.3", 0},           {"1.2.3.4.5", 0},
        {"087.10.0.1", 0}, /* leading zero: octal to inet_aton */
        {"1.2.3.04", 0},        {"00.1.2.3", 0},
        {"1.2.3.4 ", 0},        {"1..2.3", 0},
        {".1.2.3", 0},          {"1.2.3.", 0},
        {"0x7f000001", 0},      {"2130706433", 0},
        {"192.168.1.0/24", 0},  {"1.2.3.\xe0\xa7\xa8", 0},
        {"1234.1.1.1", 0},      {"", 0},
    };
    CHECK(EG_FMT_IPV4, c);
}

static void test_ipv6(void **state)
{
    static const tcase_t c[] = {
        {"::1", 1},
        {"::", 1},
        {"1::", 1},
        {"::abcd", 1},
        {"1:2:3:4:5:6:7:8", 1},
        {"1:2:3:4:5:6:7::", 1},
        {"::2:3:4:5:6:7:8", 1},
        {"1:2:3::6:7:8", 1},
        {"fe80::a:b:c:d", 1},
        {"ABCD:EF01:2345:6789:ABCD:EF01:2345:6789", 1},
        {"::ffff:192.168.0.1", 1}, /* embedded IPv4 */
        {"::192.168.0.1", 1},
        {"1:2:3:4:5:6:1.2.3.4", 1},
        {"1::6:1.2.3.4", 1},
        {"1:2:3:4:5:6:7:1.2.3.4", 0}, /* nine groups' worth */
        {"1:2:3:4:5:6:7:8:9", 0},
        {"1:2:3:4:5:6:7", 0},
        {"1:2:3:4:5:6:7:8::", 0}, /* "::" must stand for at least one group */
        {"1::2::3", 0},
        {":::", 0},
        {":1::", 0},
        {"1:", 0},
        {":1", 0},
        {"1::2:", 0},
        {"12345::", 0},
        {"::ffff:192.168.0.01", 0}, /* leading zero in the IPv4 part */
        {"::ffff:192.168.0.256", 0},
        {"::ffff:1.2.3", 0},
        {"1.2.3.4::", 0},
        {"1.2.3.4", 0},
        {"fe80::1%eth0", 0}, /* no zone id */
        {"[::1]", 0},
        {"::g", 0},
        {" ::1", 0},
        {"::1 ", 0},
        {"", 0},
    };
    CHECK(EG_FMT_IPV6, c);
}

static void test_hostname(void **state)
{
    char label63[64], label64[65], long253[254], long254[255];
    memset(label63, 'a', 63);
    label63[63] = '\0';
    memset(label64, 'a', 64);
    label64[64] = '\0';
    /* 4 labels of 63 = 252 + 3 dots = 255: too long; 3 * 63 + 61 + 3 = 253 */
    memset(long253, 'a', 253);
    long253[63] = long253[127] = long253[191] = '.';
    long253[253] = '\0';
    memset(long254, 'a', 254);
    long254[63] = long254[127] = long254[191] = '.';
    long254[254] = '\0';
    tcase_t c[] = {
        {"www.example.com", 1},
        {"localhost", 1},
        {"example.com.", 1}, /* fully qualified */
        {"a", 1},
        {"1host", 1},
        {"host1", 1},
        {"123.example", 1},
        {"xn--4gbwdl.xn--wgbh1c", 1},
        {"a-b.c", 1},
        {label63, 1},
        {label64, 0},
        {long253, 1},
        {long254, 0},
        {"-a.example", 0},
        {"a-.example", 0},
        {"a..example", 0},
        {".example", 0},
        {".", 0},
        {"a_b.example", 0},
        {"a b", 0},
        {"ex*ample.com", 0},
        {"ab--cd", 0}, /* "--" at 3-4 is reserved for A-labels */
        {"xn--", 0},
        {"", 0},
    };
    CHECK(EG_FMT_HOSTNAME, c);
}

static void test_json_pointer(void **state)
{
    static const tcase_t c[] = {
        {"", 1},      {"/", 1},  {"/foo/bar", 1}, {"/foo/0", 1}, {"/a~0b", 1}, /* ~0 is ~ */
        {"/a~1b", 1},                                                          /* ~1 is / */
        {"/~0~1", 1}, {"//", 1}, {"/ ", 1},       {"/%25", 1},   {"/\xc3\xa9", 1}, {"foo", 0},
        {"#/foo", 0}, {"/~", 0}, {"/~2", 0},      {"/a~", 0},    {"/~~", 0},       {"/~-1", 0},
    };
    CHECK(EG_FMT_JSON_POINTER, c);
}

static void test_email(void **state)
{
    char local64[80], local65[80];
    memset(local64, 'a', 64);
    strcpy(local64 + 64, "@example.com");
    memset(local65, 'a', 65);
    strcpy(local65 + 65, "@example.com");
    tcase_t c[] = {
        {"joe.bloggs@example.com", 1},
        {"a@b", 1},
        {"te~st@example.com", 1},
        {"!#$%&'*+-/=?^_`{|}~@example.com", 1},
        {"\"joe bloggs\"@example.com", 1}, /* quoted local parts */
        {"\"joe..bloggs\"@example.com", 1},
        {"\"joe@bloggs\"@example.com", 1},
        {"\"\"@example.com", 1},
        {"\"a\\\"b\"@example.com", 1}, /* quoted pair */
        {"\"a\\\\\"@example.com", 1},
        {"joe@[127.0.0.1]", 1}, /* IP literals */
        {"joe@[IPv6:::1]", 1},
        {"joe@[ipv6:2001:db8::1]", 1},
        {"joe@[IPv6:::ffff:1.2.3.4]", 1},
        {"joe@[127.0.0.300]", 0},
        {"joe@[::1]", 0}, /* IPv6 needs its tag */
        {"joe@[IPv6:1.2.3.4]", 0},
        {"joe@[tag:value]", 0}, /* general literals: no tag is registered */
        {"joe@[]", 0},
        {"joe@[127.0.0.1", 0},
        {"joe@a[127.0.0.1]", 0},
        {local64, 1},
        {local65, 0},
        {".joe@example.com", 0},
        {"joe.@example.com", 0},
        {"jo..e@example.com", 0},
        {"jo e@example.com", 0},
        {"jo\"e@example.com", 0},
        {"\"joe\"x@example.com", 0},
        {"a.\"b\"@example.com", 0},
        {"\"unclosed@example.com", 0},
        {"\"a\\\"@example.com", 0}, /* the backslash eats the closing quote */
        {"\"a\x01\"@example.com", 0},
        {"\"caf\xc3\xa9\"@example.com", 0},
        {"caf\xc3\xa9@example.com", 0},
        {"joe@exa_mple.com", 0},
        {"joe@-example.com", 0},
        {"joe@example.com.", 0},
        {"joe@example..com", 0},
        {"joe@", 0},
        {"@example.com", 0},
        {"joe", 0},
        {"joe@example.com ", 0},
        {"a@b@c", 0},
        {"Joe <joe@example.com>", 0},
        {"", 0},
    };
    CHECK(EG_FMT_EMAIL, c);
}

static void test_uri(void **state)
{
    static const tcase_t c[] = {
        {"http://example.com", 1},
        {"https://example.com/a/b?c=d&e#f", 1},
        {"HTTP://EXAMPLE.COM/", 1},
        {"http://user:pass@example.com:8080/p", 1},
        {"http://[2001:db8::7]:80/x", 1},
        {"http://[v1.fe80::a+en1]/", 1}, /* IPvFuture */
        {"http://127.0.0.1/", 1},
        {"http://example.com:/", 1}, /* empty port */
        {"http://example.com/a%20b", 1},
        {"urn:isbn:0451450523", 1},
        {"mailto:joe@example.com", 1},
        {"file:///etc/hosts", 1},
        {"a+b.c-d:x", 1},
        {"x:", 1},
        {"http://", 1},     /* empty reg-name is allowed by RFC 3986 */
        {"example.com", 0}, /* no scheme */
        {"/a/b", 0},
        {"//example.com/", 0},
        {"", 0},
        {"1http://example.com", 0},
        {"ht tp://example.com", 0},
        {":foo", 0},
        {"http://exa mple.com", 0},
        {"http://example.com/a b", 0},
        {"http://example.com/%zz", 0},
        {"http://example.com/%2", 0},
        {"http://example.com/\xc3\xa9", 0},
        {"http://example.com:80a/", 0},
        {"http://[::1/", 0},
        {"http://[::1]x/", 0},
        {"http://[1.2.3.4]/", 0},
        {"http://[vz.x]/", 0},
        {"http://a@b@c/", 0},
        {"http://example.com/<>", 0},
        {"http://example.com/#a#b", 0},
        {"http://example.com\\", 0},
        /* a bad byte at each place of a run read four at a time, and at its end */
        {"http://e.com/abcdefgh", 1},
        {"http://e.com/abcdefg<", 0},
        {"http://e.com/abcdef<h", 0},
        {"http://e.com/abcde<gh", 0},
        {"http://e.com/abcd<fgh", 0},
        {"http://e.com/abc<efgh", 0},
        {"http://e.com/?abcdefgh%41bcd:@/?", 1},
        {"http://e.com/?abcd efgh", 0},
        {"http://e.com/#abcdefg\x7f", 0},
    };
    CHECK(EG_FMT_URI, c);
}

static void test_uri_reference(void **state)
{
    static const tcase_t c[] = {
        {"http://example.com/x", 1},
        {"//example.com/x", 1},
        {"/a/b", 1},
        {"a/b", 1},
        {"a", 1},
        {"", 1},
        {"?q=1", 1},
        {"#frag", 1},
        {"./a:b", 1},
        {"../x", 1},
        {"a/b:c", 1}, /* ':' after the first segment is fine */
        {"a:b/c", 1}, /* that is a URI with scheme "a" */
        {"1a:b", 0},  /* not a scheme, and ':' in the first segment */
        {"#a#b", 0},
        {"#frag\\ment", 0},
        {"/a b", 0},
        {"\\\\server\\share", 0},
        {"/caf\xc3\xa9", 0},
        {"//[::1", 0},
    };
    CHECK(EG_FMT_URI_REFERENCE, c);
}

static void test_regex(void **state)
{
    static const tcase_t c[] = {
        {"", 1},
        {"^[a-z]+$", 1},
        {"([abc])+\\s+$", 1},
        {"a{2,3}", 1},
        {"\\u0041", 1},    /* ECMA's \u escape */
        {"\\u{1F600}", 1}, /* and its braced form */
        {"\\p{L}+", 1},
        {"(?<year>\\d{4})", 1},
        {"caf\xc3\xa9", 1},
        {"^(abc]", 0},
        {"\\u{FFFFFF}", 0}, /* beyond Unicode: read as \u{...}, not as "u{FFFFFF}" */
        {"[z-a]", 0},
        {"*a", 0},
        {"a)", 0},
        {"[abc", 0},
        {"\\", 0},
        {"(?<n>a)(?<n>b)", 0},
        {"\xff", 0}, /* not UTF-8 */
    };
    CHECK(EG_FMT_REGEX, c);
    /* the pattern is the n bytes given, not up to a NUL */
    assert_int_equal(run_check(EG_FMT_REGEX, "(a)", 2, 0), 0);
    assert_int_equal(run_check(EG_FMT_REGEX, "a\0b", 3, 0), 1);
}

static void test_int32(void **state)
{
    static const tcase_t c[] = {
        {"0", 1},
        {"-0", 1},
        {"2147483647", 1},
        {"-2147483648", 1},
        {"2147483648", 0},
        {"-2147483649", 0},
        {"1.0", 1}, /* an integer-valued real is an integer */
        {"1.50", 0},
        {"1e2", 1},
        {"1E+2", 1},
        {"2.147483647e9", 1},
        {"2.147483648e9", 0},
        {"21474836470e-1", 1},
        {"1e-1", 0},
        {"0.0", 1},
        {"0e99999999999999999999", 1},
        {"1e99999999999999999999", 0},
        {"100e-2", 1},
        {"123e-2", 0},
        {"99999999999999999999999", 0},
        {"", 0},
        {"-", 0},
        {"1.", 0},
        {"abc", 0},
    };
    CHECK_NUMBER(EG_FMT_INT32, c);
}

static void test_int64(void **state)
{
    static const tcase_t c[] = {
        {"9223372036854775807", 1},
        {"-9223372036854775808", 1},
        {"9223372036854775808", 0},
        {"-9223372036854775809", 0},
        {"18446744073709551616", 0},
        {"99999999999999999999", 0},
        {"2147483648", 1},
        {"9.223372036854775807e18", 1},
        {"9.223372036854775808e18", 0},
        {"9223372036854775807.000", 1},
        {"9223372036854775807.001", 0},
        {"1e18", 1},
        {"1e19", 0},
        {"-1e18", 1},
        {"1.0", 1},
    };
    CHECK_NUMBER(EG_FMT_INT64, c);
}

/* The bitmaps the lookups read agree with the code lists, for every
 * two-byte input. */
static void test_iso_bitmaps(void **state)
{
    (void)state;
    size_t nc = 0, nl = 0;
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++) {
            char s[2] = {(char)a, (char)b};
            assert_int_equal(eg__format_country(s, 2), eg__format_country_listed(s, 2));
            assert_int_equal(eg__format_language(s, 2), eg__format_language_listed(s, 2));
            nc += (size_t)eg__format_country(s, 2);
            nl += (size_t)eg__format_language(s, 2);
        }
    assert_int_equal(nc, 249);
    assert_int_equal(nl, 183);
    assert_int_equal(eg__format_country("US", 1), 0);
    assert_int_equal(eg__format_country("USA", 3), 0);
}

static void test_iso_codes(void **state)
{
    static const tcase_t country[] = {
        {"US", 1}, {"DE", 1}, {"AD", 1},  {"ZW", 1}, {"SS", 1}, {"AX", 1},
        {"GB", 1}, {"us", 0}, {"UK", 0},  {"EU", 0}, {"XK", 0}, {"AN", 0},
        {"CS", 0}, {"ZZ", 0}, {"USA", 0}, {"U", 0},  {"", 0},   {"AA", 0},
    };
    static const tcase_t language[] = {
        {"en", 1}, {"aa", 1}, {"zu", 1}, {"fr", 1},  {"zh", 1}, {"nb", 1}, {"EN", 0}, {"bh", 0},
        {"iw", 0}, {"sh", 0}, {"mo", 0}, {"eng", 0}, {"e", 0},  {"", 0},   {"zz", 0}, {"en-US", 0},
    };
    CHECK(EG_FMT_ISO3166, country);
    CHECK(EG_FMT_ISO639, language);

    /* every two-letter combination: exactly the tables' counts match (a
     * table out of order would lose codes to the binary search) */
    assert_int_equal(eg__format_country_count(), 249);
    assert_int_equal(eg__format_language_count(), 183);
    size_t nc = 0, nl = 0;
    for (char a = 'A'; a <= 'Z'; a++)
        for (char b = 'A'; b <= 'Z'; b++) {
            char up[2] = {a, b}, lo[2] = {(char)(a | 0x20), (char)(b | 0x20)};
            nc += (size_t)eg_format_check(EG_FMT_ISO3166, up, 2);
            nl += (size_t)eg_format_check(EG_FMT_ISO639, lo, 2);
        }
    assert_int_equal(nc, 249);
    assert_int_equal(nl, 183);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),        cmocka_unit_test(test_annotations_and_none_pass),
        cmocka_unit_test(test_date),          cmocka_unit_test(test_time),
        cmocka_unit_test(test_date_time),     cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_ipv4),          cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_hostname),      cmocka_unit_test(test_json_pointer),
        cmocka_unit_test(test_email),         cmocka_unit_test(test_uri),
        cmocka_unit_test(test_uri_reference), cmocka_unit_test(test_regex),
        cmocka_unit_test(test_int32),         cmocka_unit_test(test_int64),
        cmocka_unit_test(test_iso_codes),     cmocka_unit_test(test_iso_bitmaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
