/* test_path.c - request-path normalization: the attack paths of issue 20,
 * RFC 3986's examples, each refusal with its reason, and the options off. */
#include "testutil.h"

#include "errgate/path.h"

static const eg_path_opts_t DEF = {1, 1, 1};

/* Normalizes `in` into a buffer of exactly strlen(in) bytes (ASan sees any
 * overrun, and the result must fit: it is never longer than the input), then
 * again in place, and expects `want` from both. */
static void expect_opts(const eg_path_opts_t *o, const char *in, const char *want)
{
    size_t n = strlen(in), len = 12345;
    const char *why = "unset";
    char *out = malloc(n ? n : 1);
    assert_non_null(out);
    int rc = eg_path_normalize(in, n, o, out, n, &len, &why);
    if (rc != EG_OK) fail_msg("%s: refused (%d, %s), want %s", in, rc, why ? why : "-", want);
    if (len != strlen(want) || memcmp(out, want, len) != 0)
        fail_msg("%s: got %.*s, want %s", in, (int)len, out, want);
    assert_null(why);
    assert_true(len <= n);
    free(out);

    char *buf = malloc(n + 1);
    assert_non_null(buf);
    memcpy(buf, in, n + 1);
    len = 12345;
    assert_int_equal(eg_path_normalize(buf, n, o, buf, n + 1, &len, NULL), EG_OK);
    if (strcmp(buf, want) != 0) fail_msg("%s in place: got %s, want %s", in, buf, want);
    assert_int_equal(len, strlen(want));
    free(buf);
}

static void expect(const char *in, const char *want)
{
    expect_opts(&DEF, in, want);
}

static void expect_refused_opts(const eg_path_opts_t *o, const char *in, size_t n,
                                const char *reason)
{
    size_t len = 12345;
    const char *why = NULL;
    char *out = malloc(n ? n : 1);
    assert_non_null(out);
    int rc = eg_path_normalize(in, n, o, out, n, &len, &why);
    if (rc != EG_EPARSE) fail_msg("%s: rc %d, want EG_EPARSE (%s)", in, rc, reason);
    if (!why || strcmp(why, reason) != 0)
        fail_msg("%s: reason %s, want %s", in, why ? why : "-", reason);
    assert_int_equal(len, 12345); /* untouched on failure */
    free(out);
}

static void expect_refused(const char *in, const char *reason)
{
    expect_refused_opts(&DEF, in, strlen(in), reason);
}

static void test_defaults_are_all_on(void **state)
{
    (void)state;
    eg_path_opts_t o = {0, 0, 0};
    eg_path_opts_default(&o);
    assert_int_equal(o.normalize, 1);
    assert_int_equal(o.merge_slashes, 1);
    assert_int_equal(o.reject_encoded_slash, 1);
    /* NULL options mean the defaults */
    char out[32];
    size_t len = 0;
    assert_int_equal(eg_path_normalize("/a//./%62", 9, NULL, out, sizeof(out), &len, NULL), EG_OK);
    assert_int_equal(len, 4);
    assert_string_equal(out, "/a/b");
}

static void test_issue_20_attack_paths_lose_their_prefix(void **state)
{
    (void)state;
    expect("/v1/../admin/x", "/admin/x");
    expect("/v1/%2e%2e/admin/x", "/admin/x");
    expect("/v1//private/y", "/v1/private/y");
    expect("/v1/./private/y", "/v1/private/y");
    expect("/v1/%70rivate/y", "/v1/private/y");
    /* dots spelled every way */
    expect("/v1/%2E%2e/admin/x", "/admin/x");
    expect("/v1/%2E%2E/admin/x", "/admin/x");
    expect("/v1/.%2e/x", "/x");
    expect("/v1/%2e./x", "/x");
    expect("/v1/%2e/x", "/v1/x");
    expect("/v1/%2E/x", "/v1/x");
}

static void test_unreserved_are_decoded_and_other_hex_uppercased(void **state)
{
    (void)state;
    expect("/%70", "/p");
    expect("/%41%5a%61%7A%30%39%2D%2E%5F%7E", "/AZaz09-._~");
    expect("/a%3ab", "/a%3Ab");
    expect("/a%3Ab", "/a%3Ab");
    expect("/%20%25%3f%23", "/%20%25%3F%23");
    expect("/%c3%a9t%C3%A9", "/%C3%A9t%C3%A9");
    expect("/%0a", "/%0A");
    expect("/%7f", "/%7F");
    /* "%2541" is an encoded '%' then "41": decoding once, never twice */
    expect("/%2541", "/%2541");
    /* sub-delims, ':' and '@' are left as they are */
    expect("/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;=");
    expect("/", "/");
    expect("/a", "/a");
    expect("/a/", "/a/");
}

static void test_dot_segments(void **state)
{
    (void)state;
    expect("/a/b/..", "/a/");
    expect("/a/b/.", "/a/b/");
    expect("/a/b/../", "/a/");
    expect("/a/b/./", "/a/b/");
    expect("/.", "/");
    expect("/./", "/");
    expect("/a/..", "/");
    expect("/a/../", "/");
    expect("/a/./b/../../c", "/c");
    expect("/a/.../b", "/a/.../b");
    expect("/a/..b/c", "/a/..b/c");
    expect("/a/b../c", "/a/b../c");
    expect("/a/.b/c", "/a/.b/c");
    expect("/a/%2e%2e%2e", "/a/...");
    expect("/./././a", "/a");
    expect("/a/b/c/../../../d", "/d");
}

/* RFC 3986 5.2.4's own example and 5.4's reference resolutions against
 * "http://a/b/c/d;p?q", as the merged paths that remove_dot_segments gets. */
static void test_rfc3986_examples(void **state)
{
    (void)state;
    expect("/a/b/c/./../../g", "/a/g");
    expect("/mid/content=5/../6", "/mid/6");
    /* 5.4.1 */
    expect("/b/c/g", "/b/c/g");
    expect("/b/c/./g", "/b/c/g");
    expect("/b/c/g/", "/b/c/g/");
    expect("/g", "/g");
    expect("/b/c/.", "/b/c/");
    expect("/b/c/./", "/b/c/");
    expect("/b/c/..", "/b/");
    expect("/b/c/../", "/b/");
    expect("/b/c/../g", "/b/g");
    expect("/b/c/../..", "/");
    expect("/b/c/../../", "/");
    expect("/b/c/../../g", "/g");
    /* 5.4.2: the RFC clamps "/b/c/../../../g" and "/../g" to "/g"; a gateway
     * refuses instead, as the client meant something it cannot have */
    expect_refused("/b/c/../../../g", "dot-segment above the root");
    expect_refused("/b/c/../../../../g", "dot-segment above the root");
    expect_refused("/../g", "dot-segment above the root");
    expect("/./g", "/g");
    expect("/b/c/g.", "/b/c/g.");
    expect("/b/c/.g", "/b/c/.g");
    expect("/b/c/g..", "/b/c/g..");
    expect("/b/c/..g", "/b/c/..g");
    expect("/b/c/./../g", "/b/g");
    expect("/b/c/./g/.", "/b/c/g/");
    expect("/b/c/g/./h", "/b/c/g/h");
    expect("/b/c/g/../h", "/b/c/h");
    expect("/b/c/g;x=1/./y", "/b/c/g;x=1/y");
    expect("/b/c/g;x=1/../y", "/b/c/y");
}

static void test_slashes_merge_before_dot_segments(void **state)
{
    (void)state;
    expect("//", "/");
    expect("///a///b//", "/a/b/");
    expect("/a//../b", "/b"); /* as nginx: "/a/../b" */
    expect("/a/b//..//c", "/a/c");
    expect_refused("//..", "dot-segment above the root"); /* "/.." once merged */
    expect_refused("/a//../..", "dot-segment above the root");
}

/* merge_slashes off: RFC 3986 alone, where an empty segment is a segment
 * that ".." can remove. */
static void test_slashes_kept_when_merge_is_off(void **state)
{
    (void)state;
    const eg_path_opts_t o = {1, 0, 1};
    expect_opts(&o, "//", "//");
    expect_opts(&o, "/v1//private/y", "/v1//private/y");
    expect_opts(&o, "/a//../b", "/a/b");
    expect_opts(&o, "//..", "/");
    expect_opts(&o, "/a/.//b", "/a//b");
    expect_opts(&o, "/a//..", "/a/");
    expect_refused_opts(&o, "//../..", 7, "dot-segment above the root");
}

static void test_refusals_name_their_reason(void **state)
{
    (void)state;
    expect_refused("", "path does not start with '/'");
    expect_refused("a/b", "path does not start with '/'");
    expect_refused("*", "path does not start with '/'");
    expect_refused("%2F", "path does not start with '/'");
    expect_refused("/a%2Fb", "encoded slash");
    expect_refused("/a%2fb", "encoded slash");
    expect_refused("/a%5Cb", "encoded backslash");
    expect_refused("/a%5cb", "encoded backslash");
    expect_refused("/a\\b", "backslash");
    expect_refused("/a%00b", "encoded NUL");
    expect_refused("/a%", "invalid percent-encoding");
    expect_refused("/a%2", "invalid percent-encoding");
    expect_refused("/a%2/", "invalid percent-encoding");
    expect_refused("/a%g0", "invalid percent-encoding");
    expect_refused("/a%0g", "invalid percent-encoding");
    expect_refused("/a%%41", "invalid percent-encoding");
    expect_refused("/a%-1", "invalid percent-encoding");
    expect_refused("/..", "dot-segment above the root");
    expect_refused("/../", "dot-segment above the root");
    expect_refused("/%2e%2e", "dot-segment above the root");
    expect_refused("/a/../..", "dot-segment above the root");
    expect_refused("/a/./../../b", "dot-segment above the root");
    expect_refused("/a b", "control character or space");
    expect_refused("/a\tb", "control character or space");
    expect_refused("/a\x7f", "control character or space");
    expect_refused("/a\xc3\xa9", "non-ASCII byte");
    expect_refused("/a?b", "'?' or '#' in path");
    expect_refused("/a#b", "'?' or '#' in path");
    /* a raw NUL inside the given length */
    expect_refused_opts(&DEF, "/a\0b", 4, "control character or space");
}

static void test_invalid_utf8_in_percent_encoding_is_refused(void **state)
{
    (void)state;
    const char *bad = "invalid UTF-8 in percent-encoding";
    expect_refused("/%C0%AE", bad);       /* overlong '.' */
    expect_refused("/%C1%81", bad);       /* overlong 'A' */
    expect_refused("/%E0%80%AF", bad);    /* overlong '/' */
    expect_refused("/%F0%80%80%AF", bad); /* overlong '/' */
    expect_refused("/%ED%A0%80", bad);    /* surrogate U+D800 */
    expect_refused("/%ED%BF%BF", bad);    /* surrogate U+DFFF */
    expect_refused("/%F4%90%80%80", bad); /* U+110000 */
    expect_refused("/%F5%80%80%80", bad);
    expect_refused("/%FF", bad);
    expect_refused("/%80", bad);        /* stray continuation */
    expect_refused("/a%C3%A9%A9", bad); /* one continuation too many */
    expect_refused("/%C3", bad);        /* cut by the end */
    expect_refused("/%C3/", bad);       /* cut by a '/' */
    expect_refused("/%C3a", bad);       /* cut by a literal byte */
    expect_refused("/%E2%82", bad);
    expect_refused("/%E2%82x", bad);
    expect_refused("/%F0%9F%98", bad);
    expect_refused("/%C3%41", bad); /* not a continuation */
    /* the edges that are valid */
    expect("/%C2%80", "/%C2%80");             /* U+0080 */
    expect("/%DF%BF", "/%DF%BF");             /* U+07FF */
    expect("/%E0%A0%80", "/%E0%A0%80");       /* U+0800 */
    expect("/%ED%9F%BF", "/%ED%9F%BF");       /* U+D7FF */
    expect("/%EE%80%80", "/%EE%80%80");       /* U+E000 */
    expect("/%ef%bf%bf", "/%EF%BF%BF");       /* U+FFFF */
    expect("/%F0%90%80%80", "/%F0%90%80%80"); /* U+10000 */
    expect("/%f0%9f%98%80/x", "/%F0%9F%98%80/x");
    expect("/%F4%8F%BF%BF", "/%F4%8F%BF%BF"); /* U+10FFFF */
}

/* reject_encoded_slash off: %2F and %5C stay encoded (uppercased), never
 * become separators, and do not make a dot-segment. */
static void test_encoded_slash_kept_when_allowed(void **state)
{
    (void)state;
    const eg_path_opts_t o = {1, 1, 0};
    expect_opts(&o, "/a%2fb", "/a%2Fb");
    expect_opts(&o, "/a%2Fb", "/a%2Fb");
    expect_opts(&o, "/a%5cb", "/a%5Cb");
    expect_opts(&o, "/a/..%2f..%2fadmin", "/a/..%2F..%2Fadmin");
    expect_opts(&o, "/a/%2e%2e%2f/b", "/a/..%2F/b");
    /* the other refusals still hold */
    expect_refused_opts(&o, "/a\\b", 4, "backslash");
    expect_refused_opts(&o, "/a%00", 5, "encoded NUL");
    expect_refused_opts(&o, "/..", 3, "dot-segment above the root");
}

/* normalize off: the bytes pass as they are (slashes merged only if
 * merge_slashes), and the refusals, which look at decoded bytes, still apply. */
static void test_normalize_off_passes_through_but_still_refuses(void **state)
{
    (void)state;
    const eg_path_opts_t raw = {0, 0, 1};
    expect_opts(&raw, "/v1/../admin/x", "/v1/../admin/x");
    expect_opts(&raw, "/v1/%2e%2e/admin/x", "/v1/%2e%2e/admin/x");
    expect_opts(&raw, "/v1//private/y", "/v1//private/y");
    expect_opts(&raw, "/v1/./private/y", "/v1/./private/y");
    expect_opts(&raw, "/v1/%70rivate/y", "/v1/%70rivate/y");
    expect_opts(&raw, "/a%3ab", "/a%3ab");
    expect_opts(&raw, "//..", "//..");
    expect_refused_opts(&raw, "/..", 3, "dot-segment above the root");
    expect_refused_opts(&raw, "/a/%2E%2e/..", 12, "dot-segment above the root");
    expect_refused_opts(&raw, "/a%2fb", 6, "encoded slash");
    expect_refused_opts(&raw, "/a%00", 5, "encoded NUL");
    expect_refused_opts(&raw, "/%C0%AE", 7, "invalid UTF-8 in percent-encoding");
    expect_refused_opts(&raw, "/a%zz", 5, "invalid percent-encoding");
    expect_refused_opts(&raw, "/a\\", 3, "backslash");

    const eg_path_opts_t merge = {0, 1, 1};
    expect_opts(&merge, "/v1//./private//y", "/v1/./private/y");
    expect_refused_opts(&merge, "//..", 4, "dot-segment above the root");

    const eg_path_opts_t none = {0, 0, 0};
    expect_opts(&none, "/a%2fb%5c", "/a%2fb%5c");
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char out[8];
    size_t len = 0;
    assert_int_equal(eg_path_normalize(NULL, 0, NULL, out, sizeof(out), &len, NULL), EG_EINVAL);
    assert_int_equal(eg_path_normalize("/a", 2, NULL, NULL, 0, &len, NULL), EG_EINVAL);
    assert_int_equal(eg_path_normalize("/a", 2, NULL, out, sizeof(out), NULL, NULL), EG_EINVAL);
    /* the buffer must hold the input, even when the result would be shorter */
    assert_int_equal(eg_path_normalize("/a/..", 5, NULL, out, 4, &len, NULL), EG_ERANGE);
    /* a NUL follows the result when it fits, and nothing is written past cap */
    memset(out, 'x', sizeof(out));
    assert_int_equal(eg_path_normalize("/%61", 4, NULL, out, 4, &len, NULL), EG_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(out, "/a\0x", 4);
    memset(out, 'x', sizeof(out));
    assert_int_equal(eg_path_normalize("/ab", 3, NULL, out, 3, &len, NULL), EG_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "/abx", 4);
}

/* The output never grows: each transformation only keeps or shortens. */
static void test_output_never_longer_than_input(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/", "/%41", "/a%3ab", "/a/b/..", "//a//b//", "/%e2%82%ac", "/a/./b/../c/", "/~%7e",
    };
    for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
        size_t n = strlen(paths[k]), len = 0;
        char out[64];
        memset(out, 0x55, sizeof(out));
        assert_int_equal(eg_path_normalize(paths[k], n, NULL, out, n, &len, NULL), EG_OK);
        assert_true(len <= n);
        for (size_t j = n; j < sizeof(out); j++)
            assert_int_equal((unsigned char)out[j], 0x55);
    }
}

/* eg_path_is_normal: the cheap check the proxy asks first. */
static void test_fast_check_of_normal_paths(void **state)
{
    (void)state;
    static const char *const normal[] = {"/", "/v1/hello", "/v1/a-b_c~d/e.json", "/a/b/", "/x:y@z/!$&'()*+,;=",
                                         "/v1/hello.world/x..y"};
    static const char *const not_normal[] = {"",         "v1",      "/v1//x",  "/v1/./x", "/v1/../x", "/.hidden",
                                             "/v1/%70", "/v1/a b", "/v1/a\\b", "/v1/\x80", "/v1/a?b",  "/v1/\"q\"",
                                             "//"};
    for (size_t i = 0; i < sizeof(normal) / sizeof(normal[0]); i++)
        if (!eg_path_is_normal(normal[i], strlen(normal[i]))) fail_msg("'%s' should be normal", normal[i]);
    for (size_t i = 0; i < sizeof(not_normal) / sizeof(not_normal[0]); i++)
        if (eg_path_is_normal(not_normal[i], strlen(not_normal[i]))) fail_msg("'%s' is not normal", not_normal[i]);
}

/* The fast check against its definition, written out here (path.h): a
 * byte that passes as it is (RFC 3986 3.3: unreserved, sub-delims, ':',
 * '@', '/'), no "//", no segment starting with '.'. Every path of up to three
 * bytes after the '/' over all 256 byte values for two of them, and every
 * length up to 9 for the unrolled loop's remainders. */
static int passes(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()*+,;=:@/", c);
}

static int normal_by_definition(const unsigned char *s, size_t n)
{
    if (n == 0 || s[0] != '/') return 0;
    for (size_t i = 1; i < n; i++) {
        if (!s[i] || !passes(s[i])) return 0;
        if (s[i - 1] == '/' && (s[i] == '/' || s[i] == '.')) return 0;
    }
    return 1;
}

static void test_fast_check_matches_its_definition(void **state)
{
    (void)state;
    unsigned char p[12] = {'/'};
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++) {
            p[1] = (unsigned char)a;
            p[2] = (unsigned char)b;
            for (size_t n = 2; n <= 3; n++)
                if (eg_path_is_normal((const char *)p, n) != normal_by_definition(p, n))
                    fail_msg("/ %02x %02x (length %zu)", a, b, n);
        }
    static const char third[] = "a./%?#\x80 -~";
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t k = 0; k < sizeof(third) - 1; k++) {
                p[1] = (unsigned char)a;
                p[2] = (unsigned char)third[k];
                p[3] = (unsigned char)b;
                if (eg_path_is_normal((const char *)p, 4) != normal_by_definition(p, 4))
                    fail_msg("/ %02x %02x %02x", a, (unsigned char)third[k], b);
            }
    /* the bad byte or "//" at each place of paths of length 1 to 11 */
    for (size_t n = 1; n <= sizeof(p) - 1; n++)
        for (size_t at = 1; at < n; at++) {
            memset(p + 1, 'x', sizeof(p) - 1);
            assert_int_equal(eg_path_is_normal((const char *)p, n), 1);
            p[at] = '%';
            assert_int_equal(eg_path_is_normal((const char *)p, n), 0);
            p[at] = '/';
            assert_int_equal(eg_path_is_normal((const char *)p, n), at > 1); /* "//" at 1 */
            if (at + 1 < n) {
                p[at + 1] = '.';
                assert_int_equal(eg_path_is_normal((const char *)p, n), 0);
                p[at + 1] = '/';
                assert_int_equal(eg_path_is_normal((const char *)p, n), 0);
            }
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_all_on),
        cmocka_unit_test(test_issue_20_attack_paths_lose_their_prefix),
        cmocka_unit_test(test_unreserved_are_decoded_and_other_hex_uppercased),
        cmocka_unit_test(test_dot_segments),
        cmocka_unit_test(test_rfc3986_examples),
        cmocka_unit_test(test_slashes_merge_before_dot_segments),
        cmocka_unit_test(test_slashes_kept_when_merge_is_off),
        cmocka_unit_test(test_refusals_name_their_reason),
        cmocka_unit_test(test_invalid_utf8_in_percent_encoding_is_refused),
        cmocka_unit_test(test_encoded_slash_kept_when_allowed),
        cmocka_unit_test(test_normalize_off_passes_through_but_still_refuses),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_output_never_longer_than_input),
        cmocka_unit_test(test_fast_check_of_normal_paths),
        cmocka_unit_test(test_fast_check_matches_its_definition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
