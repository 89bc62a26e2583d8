/* test_error.c - the canonical error model and its builder. */
#include "testutil.h"

#include "errgate/error.h"
#include "ytree.h"

static void test_new_error_is_empty(void **state)
{
    (void)state;
    eg_error_t *e = eg_error_new();
    assert_non_null(e);
    assert_int_equal(e->status, 0);
    assert_int_equal(e->retry_after, -1);
    for (int i = 0; i < EG_S__COUNT; i++) assert_null(e->s[i]);
    assert_int_equal(e->nfields, 0);
    assert_null(e->details);
    eg_error_free(e);
    eg_error_free(NULL);
}

static void test_setters_copy_their_input(void **state)
{
    (void)state;
    eg_error_t *e = eg_error_new();
    char buf[32];
    strcpy(buf, "not_found");
    assert_int_equal(eg_error_set(e, EG_S_CODE, buf), EG_OK);
    strcpy(buf, "clobbered");
    assert_string_equal(eg_error_get(e, EG_S_CODE), "not_found");
    assert_int_equal(eg_error_setn(e, EG_S_MESSAGE, "abcdef", 3), EG_OK);
    assert_string_equal(e->s[EG_S_MESSAGE], "abc");
    assert_int_equal(eg_error_setf(e, EG_S_TITLE, "%d %s", 404, "Not Found"), EG_OK);
    assert_string_equal(e->s[EG_S_TITLE], "404 Not Found");
    assert_int_equal(eg_error_set(e, EG_S_TITLE, NULL), EG_OK);
    assert_null(e->s[EG_S_TITLE]);
    assert_int_equal(eg_error_set(e, (eg_str_t)99, "x"), EG_EINVAL);
    eg_error_free(e);
}

/* set_static refers to the caller's string; escaping is still checked unless
 * claimed plain; a clone copies it, so the clone outlives the buffer. */
static void test_set_static_refers_and_clone_copies(void **state)
{
    (void)state;
    eg_error_t *e = eg_error_new();
    char buf[32];
    strcpy(buf, "say \"hi\"");
    assert_int_equal(eg_error_set_static(e, EG_S_MESSAGE, buf, strlen(buf), 0), EG_OK);
    assert_ptr_equal(e->s[EG_S_MESSAGE], buf);
    assert_int_equal(e->len[EG_S_MESSAGE], strlen(buf));
    assert_false(e->plain >> EG_S_MESSAGE & 1); /* the quotes need escaping */
    assert_int_equal(eg_error_set_static(e, EG_S_CODE, "not_found", 9, 0), EG_OK);
    assert_true(e->plain >> EG_S_CODE & 1);
    assert_int_equal(eg_error_set_static(e, EG_S_TITLE, "abcdef", 3, 1), EG_EINVAL); /* not NUL-ended at n */
    assert_int_equal(eg_error_set_static(e, EG_S_TITLE, NULL, 0, 1), EG_EINVAL);
    eg_error_t *c = eg_error_clone(e);
    assert_non_null(c);
    strcpy(buf, "clobbered");
    assert_string_equal(eg_error_get(c, EG_S_MESSAGE), "say \"hi\"");
    assert_string_equal(eg_error_get(e, EG_S_MESSAGE), "clobbered");
    eg_error_free(c);
    eg_error_free(e);
}

/* Strings larger than an arena chunk and many small ones all survive. */
static void test_arena_holds_large_and_many_strings(void **state)
{
    (void)state;
    eg_error_t *e = eg_error_new();
    char *big = malloc(10000);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    assert_int_equal(eg_error_setf(e, EG_S_MESSAGE, "%s!", big), EG_OK);
    assert_int_equal(strlen(e->s[EG_S_MESSAGE]), 10000);
    for (int i = 0; i < 200; i++) {
        eg_field_error_t *f = eg_error_add_field(e);
        assert_non_null(f);
        char name[16];
        snprintf(name, sizeof(name), "f%d", i);
        assert_int_equal(eg_field_set(e, f, EG_F_FIELD, name), EG_OK);
    }
    assert_int_equal(e->nfields, 200);
    assert_string_equal(e->fields[0].s[EG_F_FIELD], "f0");
    assert_string_equal(e->fields[199].s[EG_F_FIELD], "f199");
    free(big);
    eg_error_free(e);
}

static void test_clone_is_deep(void **state)
{
    (void)state;
    eg_error_t *e = eg_error_new();
    eg_error_set(e, EG_S_CODE, "validation_error");
    eg_error_set_status(e, 422);
    eg_error_set_retry_after(e, 5);
    eg_field_error_t *f = eg_error_add_field(e);
    eg_field_set(e, f, EG_F_FIELD, "email");
    eg_field_set_value(f, json_string("bad"));
    json_object_set_new(eg_field_extra(f), "max_length", json_integer(10));
    eg_error_set_detail(e, "k", json_integer(1));
    json_object_set_new(eg_error_meta(e), "m", json_true());
    eg_error_t *c = eg_error_clone(e);
    assert_non_null(c);
    eg_error_free(e);
    assert_string_equal(c->s[EG_S_CODE], "validation_error");
    assert_int_equal(c->status, 422);
    assert_int_equal(c->retry_after, 5);
    assert_string_equal(c->fields[0].s[EG_F_FIELD], "email");
    assert_string_equal(json_string_value(c->fields[0].value), "bad");
    assert_int_equal(json_integer_value(json_object_get(c->fields[0].extra, "max_length")), 10);
    assert_int_equal(json_integer_value(json_object_get(eg_error_details_get(c), "k")), 1);
    assert_true(json_is_true(json_object_get(c->meta, "m")));
    eg_error_free(c);
}

static void test_time_is_rfc3339_utc(void **state)
{
    (void)state;
    eg_error_t *e = eg_error_new();
    assert_int_equal(eg_error_set_time(e, 1705314600), EG_OK);
    assert_string_equal(e->s[EG_S_TIMESTAMP], "2024-01-15T10:30:00Z");
    eg_error_free(e);
}

static void test_reason_phrases_and_strerror(void **state)
{
    (void)state;
    assert_string_equal(eg_reason_phrase(404), "Not Found");
    assert_string_equal(eg_reason_phrase(429), "Too Many Requests");
    assert_string_equal(eg_reason_phrase(599), "Unknown Status");
    assert_string_equal(eg_strerror(EG_EPARSE), "parse error");
    assert_string_equal(eg_strerror(-1000), "unknown error");
}

static void test_yaml_tree_keeps_positions_and_types(void **state)
{
    (void)state;
    const char *y = "a: 1\nb:\n  - x\n  - \"2\"\n  - true\nc: { d: null, e: 1.5 }\n";
    char err[128];
    eg_ydoc_t *doc = NULL;
    assert_int_equal(eg_ydoc_parse(y, strlen(y), "t.yaml", &doc, err, sizeof(err)), EG_OK);
    const eg_ynode_t *root = eg_ydoc_root(doc);
    const eg_ynode_t *b = eg_ymap_get(root, "b");
    assert_int_equal(b->kind, EG_Y_SEQ);
    assert_int_equal(b->n, 3);
    assert_int_equal(b->items[1]->line, 4);
    assert_int_equal(b->items[1]->col, 5);
    json_t *j = eg_ynode_to_json(root);
    json_t *want = json_loads("{\"a\":1,\"b\":[\"x\",\"2\",true],\"c\":{\"d\":null,\"e\":1.5}}", 0, NULL);
    tu_assert_json_equal(want, j, "yaml to json");
    long long v;
    assert_int_equal(eg_yscalar_int(doc, eg_ymap_get(root, "a"), 0, 10, &v, err, sizeof(err)), EG_OK);
    assert_int_equal(v, 1);
    assert_int_equal(eg_yscalar_int(doc, b->items[0], 0, 10, &v, err, sizeof(err)), EG_EPARSE);
    assert_string_equal(err, "t.yaml:3:5: expected an integer, got 'x'");
    json_decref(j);
    json_decref(want);
    eg_ydoc_free(doc);
}

static void test_yaml_rejects_aliases_duplicates_and_garbage(void **state)
{
    (void)state;
    static const struct {
        const char *y, *want;
    } cases[] = {
        {"a: &x 1\nb: *x\n", "y:1:4: anchors are not supported"},
        {"a: 1\na: 2\n", "y:2:1: duplicate key 'a' (first at line 1)"},
        {"a: [1,\n", "y:"},
        {"a: 1\n---\nb: 2\n", "y:2:1: only one YAML document is allowed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[160] = "";
        eg_ydoc_t *doc = NULL;
        assert_int_equal(eg_ydoc_parse(cases[i].y, strlen(cases[i].y), "y", &doc, err, sizeof(err)), EG_EPARSE);
        assert_null(doc);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: got '%s'", i, err);
    }
    char err[160];
    eg_ydoc_t *doc = NULL;
    assert_int_equal(eg_ydoc_load_file("/nonexistent/x.yaml", &doc, err, sizeof(err)), EG_EIO);
    assert_non_null(strstr(err, "No such file"));
}

/* Details kept as JSON text stay text until someone needs an object, then
 * become jansson values in their order; replacing keeps the place. */
static void test_raw_details_are_lazy_and_ordered(void **state)
{
    (void)state;
    eg_error_t *e = eg_error_new();
    assert_false(eg_error_has_details(e));
    assert_null(eg_error_details_get(e));
    const char *obj = "{\"x\": [1, 2.5, \"\\u00e9\"]}";
    assert_int_equal(eg_error_keep_detail_raw(e, "a", 1, obj, strlen(obj)), EG_OK);
    assert_int_equal(eg_error_keep_detail_raw(e, "b", 1, "true", 4), EG_OK);
    assert_int_equal(eg_error_keep_detail_raw(e, "a", 1, "7", 1), EG_OK); /* replaced in place */
    assert_int_equal(eg_error_set_detail(e, "c", json_string("v")), EG_OK);
    assert_true(eg_error_has_details(e));
    assert_null(e->details); /* still raw */
    assert_int_equal(e->nraw, 3);
    eg_error_t *c = eg_error_clone(e);
    assert_non_null(c);
    assert_int_equal(c->nraw, 3);
    assert_string_equal(c->raw[2].json, "\"v\"");
    assert_int_equal(eg_error_del_detail(c, "b"), 1);
    assert_int_equal(eg_error_del_detail(c, "b"), 0);
    assert_int_equal(c->nraw, 2);
    json_t *d = eg_error_details_get(e);
    assert_non_null(d);
    assert_int_equal(e->nraw, 0);
    const char *names[] = {"a", "b", "c"};
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(d, k, v) assert_string_equal(k, names[i++]);
    assert_int_equal(i, 3);
    assert_int_equal(json_integer_value(json_object_get(d, "a")), 7);
    assert_true(json_is_true(json_object_get(d, "b")));
    /* once an object, raw text is parsed into it */
    assert_int_equal(eg_error_keep_detail_raw(e, "d", 1, "[null]", 6), EG_OK);
    assert_int_equal(e->nraw, 0);
    assert_true(json_is_null(json_array_get(json_object_get(d, "d"), 0)));
    eg_error_clear_details(e);
    assert_false(eg_error_has_details(e));
    /* strings and integers go in as JSON text: escaped, bad UTF-8 replaced */
    assert_int_equal(eg_error_set_detail_str(e, "path", "/a\"b\xff", 5), EG_OK);
    assert_int_equal(eg_error_set_detail_int(e, "n", -42), EG_OK);
    assert_null(e->details);
    assert_string_equal(e->raw[0].json, "\"/a\\\"b\xef\xbf\xbd\"");
    assert_string_equal(e->raw[1].json, "-42");
    d = eg_error_details_get(e);
    assert_string_equal(json_string_value(json_object_get(d, "path")), "/a\"b\xef\xbf\xbd");
    assert_int_equal(json_integer_value(json_object_get(d, "n")), -42);
    /* and straight into the object once there is one */
    assert_int_equal(eg_error_set_detail_int(e, "m", 7), EG_OK);
    assert_int_equal(eg_error_set_detail_str(e, "s", "x", 1), EG_OK);
    assert_int_equal(json_integer_value(json_object_get(d, "m")), 7);
    assert_string_equal(json_string_value(json_object_get(d, "s")), "x");
    eg_error_free(e);
    assert_int_equal(json_object_size(eg_error_details(c)), 2);
    eg_error_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_error_is_empty),
        cmocka_unit_test(test_setters_copy_their_input),
        cmocka_unit_test(test_set_static_refers_and_clone_copies),
        cmocka_unit_test(test_arena_holds_large_and_many_strings),
        cmocka_unit_test(test_clone_is_deep),
        cmocka_unit_test(test_raw_details_are_lazy_and_ordered),
        cmocka_unit_test(test_time_is_rfc3339_utc),
        cmocka_unit_test(test_reason_phrases_and_strerror),
        cmocka_unit_test(test_yaml_tree_keeps_positions_and_types),
        cmocka_unit_test(test_yaml_rejects_aliases_duplicates_and_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
