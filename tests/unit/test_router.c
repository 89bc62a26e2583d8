/* test_router.c - routing, request ids, traceparent and dialect negotiation. */
#include "testutil.h"

#include "errgate/errgate.h"
#include "errgate/reqid.h"
#include "errgate/router.h"

static eg_router_t *demo_router(void)
{
    static const eg_route_spec_t specs[] = {
        {"/v1/", 1, EG_M_GET | EG_M_POST}, /* 0 */
        {"/v1/search", 0, EG_M_GET},       /* 1 */
        {"/v1/users", 1, EG_M_DELETE},     /* 2 */
        {"/v1/users", 1, EG_M_PUT},        /* 3: same path, other method */
        {"/health", 0, 0},                 /* 4: all methods */
        {"/", 1, EG_M_OPTIONS},            /* 5 */
    };
    eg_router_t *r = NULL;
    assert_int_equal(eg_router_new(specs, 6, &r), EG_OK);
    return r;
}

static void expect(const eg_router_t *r, const char *method, const char *path, int want_res,
                   size_t want_id, unsigned want_allow)
{
    size_t id = 999;
    unsigned allow = 0;
    eg_route_result_t res =
        eg_router_match(r, path, strlen(path), eg_method_bit(method, strlen(method)), &id, &allow);
    if ((int)res != want_res) fail_msg("%s %s: result %d, want %d", method, path, res, want_res);
    if (res == EG_ROUTE_OK && id != want_id)
        fail_msg("%s %s: route %zu, want %zu", method, path, id, want_id);
    if (res == EG_ROUTE_METHOD_NOT_ALLOWED && allow != want_allow)
        fail_msg("%s %s: allow %x, want %x", method, path, allow, want_allow);
}

static void test_exact_beats_prefix_and_longest_prefix_wins(void **state)
{
    (void)state;
    eg_router_t *r = demo_router();
    expect(r, "GET", "/v1/search", EG_ROUTE_OK, 1, 0);
    expect(r, "GET", "/v1/searching", EG_ROUTE_OK, 0, 0);
    expect(r, "POST", "/v1/other/x", EG_ROUTE_OK, 0, 0);
    expect(r, "GET", "/v1", EG_ROUTE_OK, 0, 0);
    expect(r, "DELETE", "/v1/users/7", EG_ROUTE_OK, 2, 0);
    expect(r, "PUT", "/v1/users/7", EG_ROUTE_OK, 3, 0);
    expect(r, "PATCH", "/health", EG_ROUTE_OK, 4, 0);
    expect(r, "PURGE", "/health", EG_ROUTE_OK, 4, 0);
    expect(r, "OPTIONS", "/anything", EG_ROUTE_OK, 5, 0);
    eg_router_free(r);
}

static void test_prefix_matches_on_segment_boundaries(void **state)
{
    (void)state;
    static const eg_route_spec_t specs[] = {{"/api", 1, 0}};
    eg_router_t *r = NULL;
    assert_int_equal(eg_router_new(specs, 1, &r), EG_OK);
    expect(r, "GET", "/api", EG_ROUTE_OK, 0, 0);
    expect(r, "GET", "/api/x", EG_ROUTE_OK, 0, 0);
    expect(r, "GET", "/apix", EG_ROUTE_NOT_FOUND, 0, 0);
    expect(r, "GET", "/", EG_ROUTE_NOT_FOUND, 0, 0);
    eg_router_free(r);
}

static void test_wrong_method_is_405_with_allow(void **state)
{
    (void)state;
    eg_router_t *r = demo_router();
    expect(r, "DELETE", "/v1/search", EG_ROUTE_METHOD_NOT_ALLOWED, 0, EG_M_GET);
    expect(r, "GET", "/v1/users/1", EG_ROUTE_METHOD_NOT_ALLOWED, 0, EG_M_DELETE | EG_M_PUT);
    char buf[64];
    eg_methods_format(EG_M_DELETE | EG_M_PUT | EG_M_GET, buf, sizeof(buf));
    assert_string_equal(buf, "GET, PUT, DELETE");
    eg_router_free(r);
    static const eg_route_spec_t specs[] = {{"/only", 0, EG_M_GET}};
    assert_int_equal(eg_router_new(specs, 1, &r), EG_OK);
    expect(r, "GET", "/nope", EG_ROUTE_NOT_FOUND, 0, 0);
    eg_router_free(r);
    static const eg_route_spec_t bad[] = {{"nope", 0, 0}};
    assert_int_equal(eg_router_new(bad, 1, &r), EG_EINVAL);
}

/* OpenAPI's precedence: /users/me (concrete) beats /users/{id}; a template
 * beats a prefix; fewer parameters first; 405 among equal templates. */
static void test_templates_concrete_first(void **state)
{
    (void)state;
    static const eg_route_spec_t specs[] = {
        {"/users/{id}/posts/{post}", 0, EG_M_GET}, /* 0 */
        {"/users/{id}", 0, EG_M_GET},              /* 1 */
        {"/users/me", 0, EG_M_GET},                /* 2 */
        {"/users", 1, 0},                          /* 3 */
        {"/users/{id}/posts", 0, EG_M_GET},        /* 4 */
        {"/users/{id}", 0, EG_M_DELETE},           /* 5 */
        {"/files/{name}", 1, EG_M_GET},            /* 6: a templated prefix */
        {"/users/{a}/{b}", 0, EG_M_POST},          /* 7: two parameters, after 4 */
    };
    eg_router_t *r = NULL;
    assert_int_equal(eg_router_new(specs, 8, &r), EG_OK);
    expect(r, "GET", "/users/me", EG_ROUTE_OK, 2, 0);
    expect(r, "GET", "/users/42", EG_ROUTE_OK, 1, 0);
    expect(r, "DELETE", "/users/42", EG_ROUTE_OK, 5, 0);
    expect(r, "GET", "/users/42/posts", EG_ROUTE_OK, 4, 0);
    /* the best matching path decides 404 / 405, as for literal paths */
    expect(r, "POST", "/users/42/posts", EG_ROUTE_METHOD_NOT_ALLOWED, 0, EG_M_GET);
    expect(r, "POST", "/users/42/likes", EG_ROUTE_OK, 7, 0);
    expect(r, "GET", "/users/42/posts/7", EG_ROUTE_OK, 0, 0);
    expect(r, "GET", "/users/42/other/7/8", EG_ROUTE_OK, 3, 0); /* the prefix takes the rest */
    expect(r, "GET", "/users", EG_ROUTE_OK, 3, 0);
    expect(r, "GET", "/users/", EG_ROUTE_OK, 3, 0); /* an empty segment is no value */
    expect(r, "PUT", "/users/42", EG_ROUTE_METHOD_NOT_ALLOWED, 0, EG_M_GET | EG_M_DELETE);
    expect(r, "GET", "/files/a.txt", EG_ROUTE_OK, 6, 0);
    expect(r, "GET", "/files/a.txt/raw", EG_ROUTE_OK, 6, 0);
    expect(r, "GET", "/files", EG_ROUTE_NOT_FOUND, 0, 0);
    expect(r, "GET", "/filesx/a", EG_ROUTE_NOT_FOUND, 0, 0);
    eg_router_free(r);
    static const eg_route_spec_t bad[][1] = {{{"/a{b}", 0, 0}}, {{"/{}", 0, 0}},
                                             {{"/{a", 0, 0}},   {{"/a}", 0, 0}},
                                             {{"/{a}b", 0, 0}}, {{"/{a{b}}", 0, 0}}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = NULL;
        if (eg_router_new(bad[i], 1, &r) != EG_EINVAL) fail_msg("%s accepted", bad[i][0].path);
    }
}

static void test_template_captures(void **state)
{
    (void)state;
    const char *tpl = "/users/{id}/posts/{post}";
    eg_path_capture_t caps[4];
    size_t n = 0;
    const char *p = "/users/a%20b/posts/7";
    assert_int_equal(eg_path_template_match(tpl, strlen(tpl), p, strlen(p), 0, caps, 4, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(caps[0].name_len, 2);
    assert_memory_equal(caps[0].name, "id", 2);
    assert_int_equal(caps[0].value_len, 5);
    assert_memory_equal(caps[0].value, "a%20b", 5);
    assert_memory_equal(caps[1].name, "post", 4);
    assert_int_equal(caps[1].value_len, 1);
    assert_memory_equal(caps[1].value, "7", 1);
    /* more values than room: counted, the first kept */
    assert_int_equal(eg_path_template_match(tpl, strlen(tpl), p, strlen(p), 0, caps, 1, &n), 1);
    assert_int_equal(n, 2);
    const char *no[] = {"/users/1/posts", "/users/1/posts/", "/users//posts/1", "/users/1/post/2",
                        "/users/1/posts/2/x"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (eg_path_template_match(tpl, strlen(tpl), no[i], strlen(no[i]), 0, caps, 4, &n))
            fail_msg("%s matched", no[i]);
    assert_int_equal(
        eg_path_template_match(tpl, strlen(tpl), "/users/1/posts/2/x", 18, 1, caps, 4, &n), 1);
}

static void test_request_ids(void **state)
{
    (void)state;
    assert_true(eg_reqid_valid("req_abc123", 10));
    assert_true(eg_reqid_valid("a+b/c=d-e_f.g", 13));
    assert_false(eg_reqid_valid("", 0));
    assert_false(eg_reqid_valid("has space", 9));
    assert_false(eg_reqid_valid("semi;colon", 10));
    assert_false(eg_reqid_valid("caf\xc3\xa9", 5));
    char long_id[202];
    memset(long_id, 'a', sizeof(long_id));
    assert_true(eg_reqid_valid(long_id, 200));
    assert_false(eg_reqid_valid(long_id, 201));
    uint8_t rnd[16];
    for (int i = 0; i < 16; i++)
        rnd[i] = (uint8_t)(i * 17);
    char out[EG_REQID_GEN_LEN + 1];
    eg_reqid_generate(rnd, out);
    assert_string_equal(out, "req_00112233445566778899aabbccddeeff");
    assert_true(eg_reqid_valid(out, strlen(out)));
}

static void test_traceparent(void **state)
{
    (void)state;
    const char *ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_true(eg_traceparent_valid(ok, strlen(ok)));
    const char *bad[] = {
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* upper case */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* version */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",  "garbage",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(eg_traceparent_valid(bad[i], strlen(bad[i])));
    uint8_t zero[24] = {0};
    char tp[EG_TRACEPARENT_LEN + 1];
    eg_traceparent_generate(zero, tp);
    assert_true(eg_traceparent_valid(tp, strlen(tp)));
}

/* Generated ids and traceparents against snprintf's "%02x", for every byte
 * value at every position (the hex is made four bytes at a time). */
static void test_generated_hex_is_every_byte_in_order(void **state)
{
    (void)state;
    for (unsigned v = 0; v < 256; v++)
        for (size_t at = 0; at < 24; at++) {
            uint8_t rnd[24];
            for (size_t i = 0; i < sizeof(rnd); i++)
                rnd[i] = (uint8_t)(v + 37 * i);
            rnd[at] = (uint8_t)v;
            char want[80], got[80];
            int n = snprintf(want, sizeof(want), "req_");
            for (size_t i = 0; i < 16; i++)
                n += snprintf(want + n, sizeof(want) - (size_t)n, "%02x", rnd[i]);
            eg_reqid_generate(rnd, got);
            assert_string_equal(got, want);
            n = snprintf(want, sizeof(want), "00-");
            for (size_t i = 0; i < 24; i++) {
                unsigned b = rnd[i] | (i == 15 || i == 23); /* never all zero */
                n += snprintf(want + n, sizeof(want) - (size_t)n, i == 16 ? "-%02x" : "%02x", b);
            }
            snprintf(want + n, sizeof(want) - (size_t)n, "-01");
            eg_traceparent_generate(rnd, got);
            assert_string_equal(got, want);
        }
}

static void test_accept_negotiates_problem_and_jsonapi(void **state)
{
    (void)state;
    eg_dialects_t *set = NULL;
    assert_int_equal(eg_dialects_new_builtin(&set), EG_OK);
    const eg_dialect_t *dflt = eg_dialects_get(set, "typed");
    static const struct {
        const char *accept, *want;
    } cases[] = {
        {"application/problem+json", "problem"},
        {"application/vnd.api+json", "jsonapi"},
        {"text/html, application/problem+json;q=0.9", "problem"},
        {"application/problem+json;q=0.5, application/vnd.api+json", "jsonapi"},
        {"application/problem+json;q=0", "typed"},
        {"application/json", "typed"},
        {"*/*", "typed"},
        {"", "typed"},
        {"APPLICATION/PROBLEM+JSON; charset=utf-8", "problem"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const eg_dialect_t *d =
            eg_dialects_negotiate(set, dflt, cases[i].accept, strlen(cases[i].accept));
        if (strcmp(eg_dialect_name(d), cases[i].want) != 0)
            fail_msg("Accept '%s' gave %s, want %s", cases[i].accept, eg_dialect_name(d),
                     cases[i].want);
    }
    assert_ptr_equal(eg_dialects_negotiate(set, dflt, NULL, 0), dflt);
    eg_dialects_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_beats_prefix_and_longest_prefix_wins),
        cmocka_unit_test(test_prefix_matches_on_segment_boundaries),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_templates_concrete_first),
        cmocka_unit_test(test_template_captures),
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_traceparent),
        cmocka_unit_test(test_generated_hex_is_every_byte_in_order),
        cmocka_unit_test(test_accept_negotiates_problem_and_jsonapi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
