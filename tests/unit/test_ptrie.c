/* test_ptrie.c - path templates indexed by segment (lib/ptrie.c). */
#include "testutil.h"

#include "errgate/router.h"
#include "ptrie.h"

static void expect(const eg_ptrie_t *t, const char *method, const char *path, int want,
                   size_t want_id, unsigned want_allow)
{
    size_t id = 999;
    unsigned allow = 0;
    eg_route_result_t r =
        eg_ptrie_match(t, path, strlen(path), eg_method_bit(method, strlen(method)), &id, &allow);
    if ((int)r != want) fail_msg("%s %s: result %d, want %d", method, path, r, want);
    if (r == EG_ROUTE_OK && id != want_id)
        fail_msg("%s %s: id %zu, want %zu", method, path, id, want_id);
    if (r == EG_ROUTE_METHOD_NOT_ALLOWED && allow != want_allow)
        fail_msg("%s %s: allow %x, want %x", method, path, allow, want_allow);
}

static void test_concrete_segments_win(void **state)
{
    (void)state;
    eg_ptrie_t *t = NULL;
    assert_int_equal(eg_ptrie_new(&t), EG_OK);
    assert_int_equal(eg_ptrie_add(t, "/pets/{id}", EG_M_GET | EG_M_HEAD, 1), EG_OK);
    assert_int_equal(eg_ptrie_add(t, "/pets/mine", EG_M_GET | EG_M_HEAD, 2), EG_OK);
    assert_int_equal(eg_ptrie_add(t, "/pets/{id}", EG_M_DELETE, 3), EG_OK);
    assert_int_equal(eg_ptrie_add(t, "/pets", EG_M_GET | EG_M_POST, 4), EG_OK);
    assert_int_equal(eg_ptrie_add(t, "/a/{x}/c", EG_M_GET, 5), EG_OK);
    assert_int_equal(eg_ptrie_add(t, "/a/b/d", EG_M_GET, 6), EG_OK);
    assert_int_equal(eg_ptrie_add(t, "/", EG_M_GET, 7), EG_OK);
    expect(t, "GET", "/pets/mine", EG_ROUTE_OK, 2, 0);
    expect(t, "GET", "/pets/7", EG_ROUTE_OK, 1, 0);
    expect(t, "HEAD", "/pets/7", EG_ROUTE_OK, 1, 0);
    expect(t, "DELETE", "/pets/7", EG_ROUTE_OK, 3, 0);
    expect(t, "GET", "/pets", EG_ROUTE_OK, 4, 0);
    expect(t, "POST", "/pets", EG_ROUTE_OK, 4, 0);
    expect(t, "GET", "/", EG_ROUTE_OK, 7, 0);
    /* the literal way leads nowhere (b has only d): the parameter way */
    expect(t, "GET", "/a/b/c", EG_ROUTE_OK, 5, 0);
    expect(t, "GET", "/a/b/d", EG_ROUTE_OK, 6, 0);
    /* the first path found decides: /pets/mine has no DELETE */
    expect(t, "DELETE", "/pets/mine", EG_ROUTE_METHOD_NOT_ALLOWED, 0, EG_M_GET | EG_M_HEAD);
    expect(t, "PUT", "/pets/7", EG_ROUTE_METHOD_NOT_ALLOWED, 0, EG_M_GET | EG_M_HEAD | EG_M_DELETE);
    expect(t, "PATCH", "/pets", EG_ROUTE_METHOD_NOT_ALLOWED, 0, EG_M_GET | EG_M_POST);
    /* whole segments, as they are */
    expect(t, "GET", "/pets/", EG_ROUTE_NOT_FOUND, 0, 0);
    expect(t, "GET", "/pets//x", EG_ROUTE_NOT_FOUND, 0, 0);
    expect(t, "GET", "/pets/7/toys", EG_ROUTE_NOT_FOUND, 0, 0);
    expect(t, "GET", "/petsx", EG_ROUTE_NOT_FOUND, 0, 0);
    expect(t, "GET", "/a/b", EG_ROUTE_NOT_FOUND, 0, 0);
    expect(t, "GET", "", EG_ROUTE_NOT_FOUND, 0, 0);
    expect(t, "GET", "pets", EG_ROUTE_NOT_FOUND, 0, 0);
    /* a path deeper than any template is refused without walking it */
    char deep[8192];
    for (size_t i = 0; i + 2 < sizeof(deep); i += 2)
        memcpy(deep + i, "/a", 2);
    deep[sizeof(deep) - 2] = '\0';
    expect(t, "GET", deep, EG_ROUTE_NOT_FOUND, 0, 0);
    eg_ptrie_free(t);
}

static void test_bad_templates_and_duplicates(void **state)
{
    (void)state;
    eg_ptrie_t *t = NULL;
    assert_int_equal(eg_ptrie_new(&t), EG_OK);
    static const char *const bad[] = {"pets", "",      "/a{b}", "/{}",
                                      "/{a",  "/a}/b", "/{a}b", "/{a{b}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (eg_ptrie_add(t, bad[i], EG_M_GET, 1) != EG_EINVAL) fail_msg("'%s' was taken", bad[i]);
    assert_int_equal(eg_ptrie_add(t, "/x/{a}", EG_M_GET, 1), EG_OK);
    assert_int_equal(eg_ptrie_add(t, "/x/{b}", EG_M_GET | EG_M_PUT, 2),
                     EG_ERANGE); /* the same shape */
    assert_int_equal(eg_ptrie_add(t, "/x/{b}", EG_M_PUT, 2), EG_OK);
    expect(t, "PUT", "/x/1", EG_ROUTE_OK, 2, 0);
    expect(t, "GET", "/x/1", EG_ROUTE_OK, 1, 0);
    eg_ptrie_free(t);
}

static void test_many_templates(void **state)
{
    (void)state;
    eg_ptrie_t *t = NULL;
    assert_int_equal(eg_ptrie_new(&t), EG_OK);
    char tpl[64], path[64];
    for (size_t i = 0; i < 1000; i++) {
        snprintf(tpl, sizeof(tpl), "/v1/res%zu/{id}", i);
        assert_int_equal(eg_ptrie_add(t, tpl, EG_M_GET, i), EG_OK);
        snprintf(tpl, sizeof(tpl), "/v1/res%zu", i);
        assert_int_equal(eg_ptrie_add(t, tpl, EG_M_POST, 1000 + i), EG_OK);
    }
    for (size_t i = 0; i < 1000; i += 37) {
        snprintf(path, sizeof(path), "/v1/res%zu/42", i);
        expect(t, "GET", path, EG_ROUTE_OK, i, 0);
        snprintf(path, sizeof(path), "/v1/res%zu", i);
        expect(t, "POST", path, EG_ROUTE_OK, 1000 + i, 0);
    }
    expect(t, "GET", "/v1/res1000/1", EG_ROUTE_NOT_FOUND, 0, 0);
    eg_ptrie_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concrete_segments_win),
        cmocka_unit_test(test_bad_templates_and_duplicates),
        cmocka_unit_test(test_many_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
