/* test_respond.c - gateway errors as HTTP responses: the 404 template gives
 * the generic path's bytes, for every dialect and many paths. */
#include "testutil.h"

#include "errgate/errgate.h"
#include "respond.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char soap[] = "name: soapish\n"
                           "media_type: application/vnd.fault+json\n"
                           "code_case: upper\n"
                           "body:\n"
                           "  fault:\n"
                           "    faultCode: $code\n"
                           "    faultString: { slot: message, fallback: catalog }\n"
                           "    traceId: $request_id\n"
                           "    when: $timestamp\n"
                           "    context: { $details: merge }\n";

/* Request-target bytes (visible ASCII but '#'), quotes and backslashes
 * among them, with a deterministic generator. */
static size_t random_path(unsigned *seed, char *out, size_t cap)
{
    size_t n = 1 + (*seed = *seed * 1103515245u + 12345u) % (cap - 1);
    out[0] = '/';
    for (size_t i = 1; i < n; i++) {
        char ch;
        do ch = (char)(0x21 + (*seed = *seed * 1103515245u + 12345u) / 65536u % 94u);
        while (ch == '#');
        out[i] = ch;
    }
    return n;
}

static void same_as_generic(const eg_notfound_t *t, const eg_dialect_t *d, const eg_catalog_t *cat,
                            const char *rid, const char *path, size_t plen, int keep_alive, int head_only)
{
    static char a[16384], b[16384];
    const char *date = "Wed, 02 Dec 2026 01:02:03 GMT", *ts = "2026-12-02T01:02:03Z";
    eg_respond_info_t ia, ib;
    size_t na = eg_notfound_respond(t, date, rid, ts, path, plen, keep_alive, head_only, a, sizeof(a), &ia);
    eg_error_t *e = eg_notfound_error(cat, rid, ts, path, plen);
    assert_non_null(e);
    size_t nb = eg_respond_error_info(e, d, cat, date, NULL, keep_alive, head_only, b, sizeof(b), &ib);
    eg_error_free(e);
    assert_true(nb > 0);
    if (na != nb || memcmp(a, b, na) != 0)
        fail_msg("dialect %s, path %.*s:\n--- template\n%.*s\n--- generic\n%.*s", eg_dialect_name(d), (int)plen,
                 path, (int)na, a, (int)nb, b);
    assert_int_equal(ia.status, 404);
    assert_string_equal(ia.code, ib.code);
}

static void test_notfound_template_matches_the_generic_path(void **state)
{
    (void)state;
    eg_catalog_t *cat = NULL;
    eg_dialects_t *set = NULL;
    eg_dialect_t *custom = NULL;
    char err[256];
    assert_int_equal(eg_catalog_new_builtin(&cat), EG_OK);
    assert_int_equal(eg_dialects_new_builtin(&set), EG_OK);
    assert_int_equal(eg_dialect_load_yaml(soap, sizeof(soap) - 1, "soap.yaml", &custom, err, sizeof(err)), EG_OK);
    assert_int_equal(eg_dialects_add(set, custom), EG_OK);
    assert_int_equal(eg_dialects_count(set), 7);
    unsigned seed = 7;
    for (size_t i = 0; i < eg_dialects_count(set); i++) {
        const eg_dialect_t *d = eg_dialects_at(set, i);
        eg_notfound_t *t = eg_notfound_new(d, cat);
        if (!t) fail_msg("no 404 template for %s", eg_dialect_name(d));
        static const char *const rids[] = {"req_0123456789abcdef0123456789abcdef", "a", "my+trace/id=._-1"};
        static const char *const fixed[] = {"/", "/x\"y", "/a\\b", "/v1/%22%5C?q=\"1\"&r=\\"};
        for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
            same_as_generic(t, d, cat, rids[k % 3], fixed[k], strlen(fixed[k]), (int)(k & 1), 0);
        char path[320];
        for (int r = 0; r < 300; r++) {
            size_t n = random_path(&seed, path, sizeof(path));
            same_as_generic(t, d, cat, rids[r % 3], path, n, r & 1, r % 7 == 0);
        }
        eg_notfound_free(t);
    }
    eg_dialects_free(set);
    eg_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notfound_template_matches_the_generic_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
