/* test_dialect.c - rendering, parsing, detecting and declaring dialects. */
#include "testutil.h"

#include "errgate/errgate.h"

typedef struct {
    eg_catalog_t *cat;
    eg_dialects_t *set;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    if (!fx || eg_catalog_new_builtin(&fx->cat) || eg_dialects_new_builtin(&fx->set)) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    eg_dialects_free(fx->set);
    eg_catalog_free(fx->cat);
    free(fx);
    return 0;
}

static json_t *render_json(const fx_t *fx, const eg_error_t *e, const char *dialect)
{
    const eg_dialect_t *d = eg_dialects_get(fx->set, dialect);
    assert_non_null(d);
    char buf[8192];
    size_t n = eg_render(e, d, fx->cat, buf, sizeof(buf));
    assert_true(n < sizeof(buf));
    assert_int_equal(strlen(buf), n);
    json_error_t je;
    json_t *j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    if (!j) fail_msg("rendered invalid JSON (%s): %s", je.text, buf);
    return j;
}

static eg_error_t *parse_as(const fx_t *fx, const json_t *doc, const char *dialect, int status)
{
    eg_error_t *e = NULL;
    const eg_dialect_t *d = eg_dialects_get(fx->set, dialect);
    assert_non_null(d);
    assert_int_equal(eg_parse_json(doc, d, fx->cat, status, &e), EG_OK);
    return e;
}

/* Every seed example: detected as its dialect, and render(parse(x)) == x. */
static void test_every_seed_example_round_trips(void **state)
{
    fx_t *fx = *state;
    json_t *index = tu_load_fixture("seeds/index.json");
    assert_true(json_array_size(index) >= 40);
    size_t i;
    json_t *item;
    json_array_foreach(index, i, item) {
        const char *file = json_string_value(json_object_get(item, "file"));
        const char *dialect = json_string_value(json_object_get(item, "dialect"));
        int status = (int)json_integer_value(json_object_get(item, "status"));
        char rel[512];
        snprintf(rel, sizeof(rel), "seeds/%s", file);
        json_t *doc = tu_load_fixture(rel);
        const eg_dialect_t *det = eg_dialects_detect(fx->set, doc);
        if (!det || strcmp(eg_dialect_name(det), dialect) != 0)
            fail_msg("%s detected as %s", file, det ? eg_dialect_name(det) : "nothing");
        eg_error_t *e = parse_as(fx, doc, dialect, status);
        assert_int_equal(eg_dialect_status(det, fx->cat, e), status);
        json_t *got = render_json(fx, e, dialect);
        /* RFC 9457: the renderer always states the status; examples may omit it */
        json_t *want = json_deep_copy(doc);
        if (strcmp(dialect, "problem") == 0 && !json_object_get(want, "status"))
            json_object_set_new(want, "status", json_integer(status));
        tu_assert_json_equal(want, got, file);
        json_decref(want);
        json_decref(got);
        eg_error_free(e);
        json_decref(doc);
    }
    json_decref(index);
}

/* The model built by hand renders the seed examples exactly. */
static void test_builder_reproduces_typed_rate_limit(void **state)
{
    fx_t *fx = *state;
    eg_error_t *e = NULL;
    assert_int_equal(eg_error_from_catalog(fx->cat, "rate_limit_exceeded", &e), EG_OK);
    eg_error_set(e, EG_S_MESSAGE, "Rate limit exceeded. Please wait before making another request");
    eg_error_set_retry_after(e, 3600);
    eg_error_set_detail(e, "limit", json_integer(1000));
    eg_error_set_detail(e, "window", json_string("1 hour"));
    eg_error_set_detail(e, "reset_time", json_string("2024-01-15T14:00:00Z"));
    json_t *got = render_json(fx, e, "typed");
    json_t *want = tu_load_fixture("seeds/typed/rate_limit_exceeded.json");
    tu_assert_json_equal(want, got, "typed rate limit");
    json_decref(want);
    json_decref(got);
    eg_error_free(e);
}

static eg_error_t *two_field_validation(const fx_t *fx)
{
    eg_error_t *e = NULL;
    assert_int_equal(eg_error_from_catalog(fx->cat, "validation_error", &e), EG_OK);
    e->status = 0;
    eg_error_set(e, EG_S_MESSAGE, "Invalid request parameters");
    eg_field_error_t *f = eg_error_add_field(e);
    eg_field_set(e, f, EG_F_FIELD, "email");
    eg_field_set(e, f, EG_F_MESSAGE, "Invalid email format");
    f = eg_error_add_field(e);
    eg_field_set(e, f, EG_F_FIELD, "page");
    eg_field_set(e, f, EG_F_MESSAGE, "Must be a positive integer");
    return e;
}

static void test_builder_reproduces_flat_camel_validation(void **state)
{
    fx_t *fx = *state;
    eg_error_t *e = two_field_validation(fx);
    json_t *got = render_json(fx, e, "flat-camel");
    json_t *want = tu_load_fixture("seeds/flat-camel/validation_error.json");
    tu_assert_json_equal(want, got, "flat-camel validation");
    json_decref(want);
    json_decref(got);
    eg_error_free(e);
}

/* Field errors travel between shapes: map, list, split, flat. */
static void test_field_errors_travel_between_dialects(void **state)
{
    fx_t *fx = *state;
    eg_error_t *e = two_field_validation(fx);
    json_t *env = render_json(fx, e, "envelope");
    json_t *details = json_object_get(json_object_get(env, "error"), "details");
    assert_int_equal(json_array_size(details), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(details, 1), "field")), "page");
    json_t *api = render_json(fx, e, "jsonapi");
    json_t *errs = json_object_get(api, "errors");
    assert_int_equal(json_array_size(errs), 2);
    json_t *e0 = json_array_get(errs, 0);
    assert_string_equal(json_string_value(json_object_get(e0, "status")), "422");
    assert_string_equal(json_string_value(json_object_get(e0, "title")), "Validation Failed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e0, "source"), "pointer")),
                        "/data/attributes/email");
    assert_string_equal(json_string_value(json_object_get(e0, "detail")), "Invalid email format");
    /* and back: jsonapi -> model -> flat-camel keeps both fields */
    eg_error_t *back = parse_as(fx, api, "jsonapi", 422);
    assert_int_equal(back->nfields, 2);
    json_t *camel = render_json(fx, back, "flat-camel");
    json_t *fields = json_object_get(json_object_get(camel, "details"), "fields");
    assert_string_equal(json_string_value(json_array_get(json_object_get(fields, "page"), 0)),
                        "Must be a positive integer");
    assert_int_equal(json_integer_value(json_object_get(camel, "statusCode")), 422);
    json_t *prob = render_json(fx, back, "problem");
    assert_int_equal(json_array_size(json_object_get(prob, "errors")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(prob, "errors"), 0), "pointer")),
                        "/data/attributes/email");
    json_decref(prob);
    json_decref(camel);
    eg_error_free(back);
    json_decref(api);
    json_decref(env);
    eg_error_free(e);
}

/* A single field error is flattened into details in flat-snake and typed. */
static void test_single_field_error_is_flattened(void **state)
{
    fx_t *fx = *state;
    eg_error_t *e = NULL;
    assert_int_equal(eg_error_from_catalog(fx->cat, "validation_error", &e), EG_OK);
    eg_field_error_t *f = eg_error_add_field(e);
    eg_field_set(e, f, EG_F_FIELD, "business_name");
    eg_field_set(e, f, EG_F_CONSTRAINT, "required");
    eg_field_set_value(f, json_null());
    json_t *snake = render_json(fx, e, "flat-snake");
    json_t *d = json_object_get(snake, "details");
    assert_string_equal(json_string_value(json_object_get(d, "field")), "business_name");
    assert_true(json_is_null(json_object_get(d, "value")));
    assert_int_equal(json_integer_value(json_object_get(snake, "status_code")), 400);
    json_t *typed = render_json(fx, e, "typed");
    json_t *td = json_object_get(json_object_get(typed, "error"), "details");
    assert_string_equal(json_string_value(json_object_get(td, "parameter")), "business_name");
    assert_string_equal(json_string_value(json_object_get(json_object_get(typed, "error"), "code")),
                        "VALIDATION_ERROR");
    json_decref(typed);
    json_decref(snake);
    eg_error_free(e);
}

static void test_codes_are_spelled_per_dialect(void **state)
{
    fx_t *fx = *state;
    static const struct {
        const char *code, *dialect, *want;
    } cases[] = {
        {"not_found", "flat-snake", "resource_not_found"},
        {"not_found", "flat-camel", "NOT_FOUND"},
        {"not_found", "jsonapi", "not_found"},
        {"not_found", "envelope", "resource_not_found"},
        {"internal_error", "typed", "INTERNAL_SERVER_ERROR"},
        {"internal_error", "flat-camel", "SERVICE_ERROR"},
        {"external_service_error", "flat-camel", "EXTERNAL_SERVICE_ERROR"},
        {"bad_gateway", "flat-camel", "BAD_GATEWAY"}, /* the spelling; its code_map sends it as the above */
        {"rate_limit_exceeded", "typed", "RATE_LIMIT_EXCEEDED"},
        {"some_unknown_code", "typed", "some_unknown_code"}, /* unknown: kept as sent */
        {"WeirdCode", "flat-snake", "WeirdCode"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[64];
        const eg_dialect_t *d = eg_dialects_get(fx->set, cases[i].dialect);
        eg_dialect_code(d, fx->cat, cases[i].code, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
    }
}

/* Upstream synonyms parse to one canonical code. */
static void test_synonyms_parse_to_one_code(void **state)
{
    fx_t *fx = *state;
    const char *bodies[] = {
        "{\"error\":\"NOT_FOUND\",\"message\":\"x\",\"statusCode\":404}",
        "{\"error\":\"resource_not_found\",\"message\":\"x\",\"status_code\":404}",
        "{\"errors\":[{\"status\":\"404\",\"code\":\"not_found\",\"title\":\"Not Found\"}]}",
    };
    for (size_t i = 0; i < 3; i++) {
        eg_error_t *e = NULL;
        assert_int_equal(eg_parse_body(bodies[i], strlen(bodies[i]), fx->set, NULL, fx->cat, 404, &e, NULL), EG_OK);
        assert_string_equal(e->s[EG_S_CODE], "not_found");
        eg_error_free(e);
    }
}

static void test_problem_follows_rfc9457(void **state)
{
    fx_t *fx = *state;
    eg_error_t *e = NULL;
    assert_int_equal(eg_error_from_catalog(fx->cat, "not_found", &e), EG_OK);
    eg_error_set(e, EG_S_REQUEST_ID, "req_1");
    eg_error_set_detail(e, "resource", json_string("user"));
    json_t *p = render_json(fx, e, "problem");
    assert_true(json_is_integer(json_object_get(p, "status")));
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 404);
    assert_string_equal(json_string_value(json_object_get(p, "type")), "about:blank");
    assert_string_equal(json_string_value(json_object_get(p, "resource")), "user"); /* extension */
    assert_string_equal(json_string_value(json_object_get(p, "request_id")), "req_1");
    json_decref(p);
    /* with a docs template the type becomes the code's docs URL */
    assert_int_equal(eg_catalog_set_docs_template(fx->cat, "https://api.example.com/errors/{code}"), EG_OK);
    p = render_json(fx, e, "problem");
    assert_string_equal(json_string_value(json_object_get(p, "type")), "https://api.example.com/errors/not_found");
    assert_int_equal(eg_catalog_set_docs_template(fx->cat, NULL), EG_OK);
    json_decref(p);
    const eg_dialect_t *d = eg_dialects_get(fx->set, "problem");
    assert_string_equal(eg_dialect_media_type(d), "application/problem+json");
    assert_string_equal(eg_dialect_media_type(eg_dialects_get(fx->set, "jsonapi")), "application/vnd.api+json");
    assert_string_equal(eg_dialect_media_type(eg_dialects_get(fx->set, "typed")), "application/json; charset=utf-8");
    eg_error_free(e);
}

/* Several JSON:API errors with different codes: the most general status. */
static void test_jsonapi_mixed_errors_share_general_status(void **state)
{
    fx_t *fx = *state;
    const char *body = "{\"errors\":[{\"status\":\"404\",\"code\":\"not_found\",\"title\":\"Not Found\"},"
                       "{\"status\":\"409\",\"code\":\"conflict\",\"title\":\"Conflict\"}]}";
    eg_error_t *e = NULL;
    assert_int_equal(eg_parse_body(body, strlen(body), fx->set, NULL, fx->cat, 0, &e, NULL), EG_OK);
    assert_int_equal(e->status, 400);
    json_t *others = json_object_get(e->meta, "errors");
    assert_int_equal(json_array_size(others), 1); /* kept, not dropped */
    eg_error_free(e);
}

static void test_strings_are_escaped(void **state)
{
    fx_t *fx = *state;
    eg_error_t *e = NULL;
    assert_int_equal(eg_error_from_catalog(fx->cat, "bad_request", &e), EG_OK);
    const char nasty[] = "quote\" back\\ nl\n tab\t bell\x07 del\x7f bad\xff\xfe utf8 \xc3\xa9 trunc\xe2\x82";
    eg_error_setn(e, EG_S_MESSAGE, nasty, sizeof(nasty) - 1); /* over a plain one */
    eg_field_error_t *f = eg_error_add_field(e);
    eg_field_set(e, f, EG_F_FIELD, "plain");
    eg_field_set(e, f, EG_F_MESSAGE, "plain first");
    eg_field_setn(e, f, EG_F_MESSAGE, nasty, sizeof(nasty) - 1);
    eg_field_setn(e, f, EG_F_FIELD, "a\"b", 3);
    for (size_t i = 0; i < eg_dialects_count(fx->set); i++) {
        const eg_dialect_t *d = eg_dialects_at(fx->set, i);
        json_t *j = render_json(fx, e, eg_dialect_name(d)); /* fails on invalid JSON */
        json_decref(j);
    }
    json_t *p = render_json(fx, e, "problem");
    const char *got = json_string_value(json_object_get(p, "detail"));
    assert_non_null(strstr(got, "quote\" back\\ nl\n tab\t bell\x07"));
    assert_non_null(strstr(got, "bad\xef\xbf\xbd\xef\xbf\xbd utf8 \xc3\xa9 trunc\xef\xbf\xbd"));
    json_decref(p);
    eg_error_free(e);
}

/* snprintf contract: a short buffer reports the full length, never overflows. */
static void test_render_reports_needed_length(void **state)
{
    fx_t *fx = *state;
    eg_error_t *e = two_field_validation(fx);
    const eg_dialect_t *d = eg_dialects_get(fx->set, "jsonapi");
    char full[4096], small[32];
    memset(small, 'X', sizeof(small));
    size_t n = eg_render(e, d, fx->cat, full, sizeof(full));
    size_t m = eg_render(e, d, fx->cat, small, 16);
    assert_int_equal(n, m);
    assert_true(n > 16);
    assert_int_equal(small[15], '\0');
    assert_int_equal(small[16], 'X');
    assert_memory_equal(small, full, 15);
    eg_error_free(e);
}

/* JSON:API items copy the error's own members from the first item: items
 * whose field errors differ in shape still say exactly what is theirs, and
 * the output is the same whatever room the buffer has. */
static void test_jsonapi_items_of_different_shapes(void **state)
{
    fx_t *fx = *state;
    eg_error_t *e = NULL;
    assert_int_equal(eg_error_from_catalog(fx->cat, "validation_error", &e), EG_OK);
    eg_error_set(e, EG_S_REQUEST_ID, "req_1");
    eg_field_error_t *f = eg_error_add_field(e);
    eg_field_set(e, f, EG_F_FIELD, "email");
    eg_field_set(e, f, EG_F_MESSAGE, "Invalid email format");
    eg_field_set(e, f, EG_F_CONSTRAINT, "format");
    f = eg_error_add_field(e);
    eg_field_set(e, f, EG_F_FIELD, "page");
    eg_field_set(e, f, EG_F_MESSAGE, "Must be a positive integer");
    f = eg_error_add_field(e);
    eg_field_set(e, f, EG_F_PARAMETER, "sort");
    eg_field_set_value(f, json_string("sideways"));
    json_t *j = render_json(fx, e, "jsonapi");
    json_t *items = json_object_get(j, "errors");
    assert_int_equal(json_array_size(items), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *it = json_array_get(items, i);
        assert_string_equal(json_string_value(json_object_get(it, "status")), "400");
        assert_string_equal(json_string_value(json_object_get(it, "code")), "validation_error");
        assert_non_null(json_object_get(it, "title"));
        json_t *meta = json_object_get(it, "meta");
        assert_string_equal(json_string_value(json_object_get(meta, "request_id")), "req_1");
        assert_int_equal(json_object_get(meta, "constraint") != NULL, i == 0);
        assert_int_equal(json_object_get(meta, "value") != NULL, i == 2);
    }
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(items, 2), "source"), "parameter")),
                        "sort");
    assert_null(json_object_get(json_array_get(items, 1), "source") ? json_object_get(
                    json_object_get(json_array_get(items, 1), "source"), "parameter")
                                                                   : NULL);
    json_decref(j);
    const eg_dialect_t *d = eg_dialects_get(fx->set, "jsonapi");
    char full[4096], part[4096];
    size_t n = eg_render(e, d, fx->cat, full, sizeof(full));
    for (size_t cap = 1; cap <= n + 1; cap++) {
        memset(part, 'X', sizeof(part));
        assert_int_equal(eg_render(e, d, fx->cat, part, cap), n);
        assert_memory_equal(part, full, cap - 1);
        assert_int_equal(part[cap - 1], '\0');
        assert_int_equal(part[cap], 'X');
    }
    eg_error_free(e);
}

/* Members no dialect knows survive a round trip, in the same dialect. */
static void test_unknown_members_are_kept(void **state)
{
    fx_t *fx = *state;
    const char *body = "{\"error\":{\"type\":\"validation_error\",\"message\":\"m\",\"code\":\"FOO\","
                       "\"hint\":\"h\",\"details\":{\"x\":[1,2]}},\"trace\":\"abc\"}";
    json_t *doc = json_loads(body, 0, NULL);
    eg_error_t *e = parse_as(fx, doc, "typed", 400);
    assert_string_equal(e->s[EG_S_CODE], "FOO");
    assert_non_null(json_object_get(e->meta, "hint"));
    assert_non_null(json_object_get(e->meta, "trace"));
    assert_non_null(json_object_get(eg_error_details_get(e), "x"));
    json_t *got = render_json(fx, e, "typed");
    json_t *err = json_object_get(got, "error");
    assert_string_equal(json_string_value(json_object_get(err, "hint")), "h");
    assert_string_equal(json_string_value(json_object_get(err, "trace")), "abc");
    json_decref(got);
    /* in another dialect they are still there */
    got = render_json(fx, e, "flat-snake");
    assert_string_equal(json_string_value(json_object_get(got, "hint")), "h");
    assert_int_equal(json_array_size(json_object_get(json_object_get(got, "details"), "x")), 2);
    json_decref(got);
    eg_error_free(e);
    json_decref(doc);
}

static void test_html_and_text_bodies_become_errors(void **state)
{
    fx_t *fx = *state;
    const char *html = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>p{color:red}</style>"
                       "<script>alert(1)</script></head><body>\n<h1>Bad   Gateway</h1>\r\n<p>upstream\x01 died</p></body></html>";
    eg_error_t *e = NULL;
    eg_body_info_t info;
    assert_int_equal(eg_parse_body(html, strlen(html), fx->set, NULL, fx->cat, 502, &e, &info), EG_OK);
    assert_int_equal(info.kind, EG_BODY_TEXT);
    assert_string_equal(e->s[EG_S_CODE], "bad_gateway");
    assert_int_equal(e->status, 502);
    assert_string_equal(e->s[EG_S_MESSAGE], "502 Bad Gateway Bad Gateway upstream died");
    eg_error_free(e);
    /* empty body: the catalog's message */
    assert_int_equal(eg_parse_body("", 0, fx->set, NULL, fx->cat, 503, &e, &info), EG_OK);
    assert_string_equal(e->s[EG_S_CODE], "service_unavailable");
    assert_non_null(e->s[EG_S_MESSAGE]);
    eg_error_free(e);
    /* truncated JSON: text, with where parsing stopped */
    const char *trunc = "{\"error\": {\"code\": \"x\",\n \"message\": \"cut";
    assert_int_equal(eg_parse_body(trunc, strlen(trunc), fx->set, NULL, fx->cat, 500, &e, &info), EG_OK);
    assert_int_equal(info.kind, EG_BODY_TEXT);
    assert_int_equal(info.json_line, 2);
    assert_true(info.json_position > 0);
    assert_string_equal(e->s[EG_S_CODE], "internal_error");
    eg_error_free(e);
    /* JSON of no known shape: kept in details, message picked from a common name */
    const char *odd = "{\"msg\":\"disk full\",\"node\":7}";
    assert_int_equal(eg_parse_body(odd, strlen(odd), fx->set, NULL, fx->cat, 507, &e, &info), EG_OK);
    assert_int_equal(info.kind, EG_BODY_JSON);
    assert_string_equal(e->s[EG_S_MESSAGE], "disk full");
    assert_int_equal(json_integer_value(json_object_get(eg_error_details_get(e), "node")), 7);
    eg_error_free(e);
}

static void test_excerpt_is_bounded_and_sanitized(void **state)
{
    (void)state;
    char big[5000], out[64];
    for (size_t i = 0; i < sizeof(big); i++) big[i] = (char)('a' + i % 26);
    size_t n = eg_excerpt(big, sizeof(big), out, sizeof(out));
    assert_int_equal(n, 63);
    assert_int_equal(strlen(out), 63);
    assert_memory_equal(out + 60, "...", 3);
    /* never cuts inside a UTF-8 sequence */
    char eacute[200];
    for (size_t i = 0; i < 100; i++) memcpy(eacute + 2 * i, "\xc3\xa9", 2);
    n = eg_excerpt(eacute, sizeof(eacute), out, 10);
    json_t *s = json_stringn(out, n); /* jansson rejects invalid UTF-8 */
    assert_non_null(s);
    json_decref(s);
}

static void test_invalid_json_error_has_position(void **state)
{
    fx_t *fx = *state;
    json_error_t je;
    const char *bad = "{\n  \"a\": 1,\n  \"b\": }";
    assert_null(json_loads(bad, 0, &je));
    eg_error_t *e = NULL;
    assert_int_equal(eg_error_invalid_json(fx->cat, &je, &e), EG_OK);
    assert_string_equal(e->s[EG_S_CODE], "invalid_json");
    assert_int_equal(json_integer_value(json_object_get(eg_error_details_get(e), "line")), 3);
    assert_int_equal(json_integer_value(json_object_get(eg_error_details_get(e), "column")), je.column);
    assert_int_equal(json_integer_value(json_object_get(eg_error_details_get(e), "position")), je.position);
    json_t *snake = render_json(fx, e, "flat-snake");
    assert_string_equal(json_string_value(json_object_get(snake, "error")), "invalid_json");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(snake, "details"), "line")), 3);
    json_decref(snake);
    eg_error_free(e);
}

static const char soap_dialect[] =
    "name: soapish\n"
    "summary: a fault envelope\n"
    "media_type: application/vnd.fault+json\n"
    "code_case: upper\n"
    "status_overrides: { validation_error: 422 }\n"
    "body:\n"
    "  fault:\n"
    "    faultCode: $code\n"
    "    faultString: { slot: message, fallback: catalog }\n"
    "    httpStatus: { slot: status, as: string }\n"
    "    traceId: $request_id\n"
    "    $fields: { style: list, key: problems, item: { name: $field.field|pointer_field, reason: $field.message|message } }\n"
    "    context: { $details: merge }\n";

/* An API whose format is none of the six needs only a YAML file. */
static void test_declared_dialect_renders_parses_and_detects(void **state)
{
    fx_t *fx = *state;
    char err[256];
    eg_dialect_t *d = NULL;
    assert_int_equal(eg_dialect_load_yaml(soap_dialect, strlen(soap_dialect), "soap.yaml", &d, err, sizeof(err)), EG_OK);
    assert_string_equal(eg_dialect_media_type(d), "application/vnd.fault+json");
    eg_error_t *e = two_field_validation(fx);
    eg_error_set(e, EG_S_REQUEST_ID, "req_9");
    eg_error_set_detail(e, "hint", json_string("see docs"));
    char buf[2048];
    size_t n = eg_render(e, d, fx->cat, buf, sizeof(buf));
    json_t *got = json_loadb(buf, n, 0, NULL);
    json_t *want = json_loads("{\"fault\":{\"faultCode\":\"VALIDATION_ERROR\",\"faultString\":\"Invalid request parameters\","
                              "\"httpStatus\":\"422\",\"traceId\":\"req_9\",\"problems\":[{\"name\":\"email\",\"reason\":\"Invalid email format\"},"
                              "{\"name\":\"page\",\"reason\":\"Must be a positive integer\"}],\"context\":{\"hint\":\"see docs\"}}}", 0, NULL);
    tu_assert_json_equal(want, got, "declared dialect");
    char code[64]; /* the X-Error-Code spelling is the body's */
    assert_int_equal(eg_dialect_error_code(d, fx->cat, e, code, sizeof(code)), 16);
    assert_string_equal(code, "VALIDATION_ERROR");
    assert_int_equal(eg_dialects_add(fx->set, d), EG_OK);
    const eg_dialect_t *det = eg_dialects_detect(fx->set, got);
    assert_non_null(det);
    assert_string_equal(eg_dialect_name(det), "soapish");
    eg_error_t *back = NULL;
    assert_int_equal(eg_parse_json(got, det, fx->cat, 0, &back), EG_OK);
    assert_int_equal(back->status, 422);
    assert_string_equal(back->s[EG_S_CODE], "validation_error");
    assert_int_equal(back->nfields, 2);
    assert_string_equal(json_string_value(json_object_get(eg_error_details_get(back), "hint")), "see docs");
    eg_error_free(back);
    json_decref(want);
    json_decref(got);
    eg_error_free(e);
}

static void test_bad_dialect_files_report_line_and_column(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"name: x\nbody:\n  a: $nosuch\n", "d.yaml:3:6: unknown slot 'nosuch'"},
        {"name: x\nbogus: 1\nbody: {}\n", "d.yaml:2:1: unknown key 'bogus'"},
        {"name: x\n", "d.yaml:1:1: missing 'body' template"},
        {"name: x\nbody:\n  a: { $extra: merge }\n", "d.yaml:3:8: $extra belongs in a field-error item template"},
        {"name: x\nbody:\n  m: $field.message\n", "d.yaml:3:6: field slot 'field.message' outside a field-error item"},
        {"name: x\nbody:\n  $fields: { style: tree, key: k }\n", "d.yaml:3:21: style must be list, map or flat"},
        {"name: X Y\nbody: {}\n", "d.yaml:1:7: name must be lower-case letters, digits, '-' or '_'"},
        {"name: x\nbody:\n  a: 1\n  a: 2\n", "d.yaml:4:3: duplicate key 'a' (first at line 3)"},
        {"name: x\nbody: [\n", "d.yaml:"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        eg_dialect_t *d = NULL;
        int rc = eg_dialect_load_yaml(cases[i].yaml, strlen(cases[i].yaml), "d.yaml", &d, err, sizeof(err));
        assert_int_equal(rc, EG_EPARSE);
        assert_null(d);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].want);
    }
}

static void test_forced_dialect_rejects_other_shapes(void **state)
{
    fx_t *fx = *state;
    const char *body = "{\"errors\":[{\"status\":\"404\",\"code\":\"not_found\"}]}";
    eg_error_t *e = NULL;
    assert_int_equal(eg_parse_body(body, strlen(body), fx->set, eg_dialects_get(fx->set, "typed"), fx->cat, 404, &e, NULL), EG_EPARSE);
    assert_null(e);
    assert_int_equal(eg_parse_body("<html>", 6, fx->set, eg_dialects_get(fx->set, "typed"), fx->cat, 404, &e, NULL), EG_EPARSE);
}

/* A dialect's status for validation_error is its validation status for the
 * whole class (catalog type validation_error, status 400), but invalid_json;
 * `errgate docs` and the gateway read it through eg_dialect_status. */
static void test_validation_status_covers_the_class(void **state)
{
    const fx_t *fx = *state;
    static const struct {
        const char *dialect, *code;
        int status;
    } cases[] = {
        {"problem", "validation_error", 422},
        {"problem", "missing_parameter", 422},
        {"problem", "invalid_parameter_value", 422},
        {"jsonapi", "invalid_country_code", 422},
        {"envelope", "query_too_long", 422},
        {"problem", "invalid_json", 400},
        {"jsonapi", "bad_request", 400},
        {"problem", "user_not_found", 422},
        {"typed", "missing_parameter", 400},
        {"flat-snake", "validation_error", 400},
        {"flat-camel", "invalid_parameter_type", 400},
        {"problem", "not_found", 404},
        {"problem", "no_such_code", 500},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const eg_dialect_t *d = eg_dialects_get(fx->set, cases[i].dialect);
        int got = eg_dialect_code_status(d, fx->cat, cases[i].code);
        if (got != cases[i].status)
            fail_msg("%s %s: %d, want %d", cases[i].dialect, cases[i].code, got, cases[i].status);
    }
    /* an error that carries its own status keeps it */
    eg_error_t *e = eg_error_new();
    eg_error_set(e, EG_S_CODE, "missing_parameter");
    eg_error_set_status(e, 400);
    assert_int_equal(eg_dialect_status(eg_dialects_get(fx->set, "problem"), fx->cat, e), 400);
    eg_error_free(e);
}

/* Issue 27 item 7: jsonapi, flat-camel and flat-snake answer a bad
 * credential with `unauthorized` (the seeds' 401 examples) and keep the
 * gateway's precise code in details as "reason"; typed keeps its own
 * MISSING_API_KEY; the map can be changed per dialect. */
static void test_code_map_answers_in_the_pages_words(void **state)
{
    fx_t *fx = *state;
    eg_error_t *e = NULL;
    assert_int_equal(eg_error_from_catalog(fx->cat, "missing_api_key", &e), EG_OK);
    json_t *got = render_json(fx, e, "jsonapi");
    json_t *want = json_loads("{\"errors\":[{\"status\":\"401\",\"code\":\"unauthorized\",\"title\":\"Unauthorized\","
                              "\"detail\":\"API key is required.\",\"meta\":{\"type\":\"authentication_error\","
                              "\"reason\":\"missing_api_key\"}}]}", 0, NULL);
    tu_assert_json_equal(want, got, "jsonapi missing_api_key");
    json_decref(want);
    json_decref(got);
    got = render_json(fx, e, "flat-snake");
    assert_string_equal(json_string_value(json_object_get(got, "error")), "unauthorized");
    assert_string_equal(json_string_value(json_object_get(json_object_get(got, "details"), "reason")), "missing_api_key");
    json_decref(got);
    got = render_json(fx, e, "typed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(got, "error"), "code")), "MISSING_API_KEY");
    assert_null(json_object_get(json_object_get(got, "error"), "details"));
    json_decref(got);
    char code[64]; /* X-Error-Code says what the body says */
    const eg_dialect_t *camel = eg_dialects_get(fx->set, "flat-camel");
    eg_dialect_error_code(camel, fx->cat, e, code, sizeof(code));
    assert_string_equal(code, "UNAUTHORIZED");
    eg_dialect_code(camel, fx->cat, "missing_api_key", code, sizeof(code)); /* the spelling alone */
    assert_string_equal(code, "MISSING_API_KEY");
    eg_error_free(e);
    assert_int_equal(eg_error_from_catalog(fx->cat, "insufficient_scope", &e), EG_OK);
    eg_dialect_error_code(camel, fx->cat, e, code, sizeof(code));
    assert_string_equal(code, "FORBIDDEN");
    /* a configuration may keep the precise code, or map another (on a set
     * of its own: the fixture's is shared by the other tests) */
    eg_dialects_t *set = NULL;
    assert_int_equal(eg_dialects_new_builtin(&set), EG_OK);
    camel = eg_dialects_get(set, "flat-camel");
    eg_dialect_t *m = eg_dialects_get_mut(set, "flat-camel");
    assert_int_equal(eg_dialect_map_code(m, "insufficient_scope", NULL), EG_OK);
    eg_dialect_error_code(camel, fx->cat, e, code, sizeof(code));
    assert_string_equal(code, "INSUFFICIENT_SCOPE");
    assert_int_equal(eg_dialect_map_code(m, "not_found", "bad_request"), EG_OK);
    assert_string_equal(eg_dialect_mapped_code(camel, "not_found"), "bad_request");
    eg_dialects_free(set);
    eg_error_free(e);
    /* a refused token has a reason of its own: the precise code goes beside it */
    assert_int_equal(eg_error_from_catalog(fx->cat, "invalid_token", &e), EG_OK);
    eg_error_set_detail_str(e, "reason", "expired", 7);
    got = render_json(fx, e, "flat-snake");
    json_t *det = json_object_get(got, "details");
    assert_string_equal(json_string_value(json_object_get(got, "error")), "unauthorized");
    assert_string_equal(json_string_value(json_object_get(det, "reason")), "expired");
    assert_string_equal(json_string_value(json_object_get(det, "reason_code")), "invalid_token");
    json_decref(got);
    eg_error_free(e);
    /* a catalog file can say it too (answered_as), under the dialect's own map */
    eg_catalog_t *cat = NULL;
    assert_int_equal(eg_catalog_new_builtin(&cat), EG_OK);
    static const char cy[] = "codes:\n  not_found: { answered_as: { flat-camel: bad_request, typed: conflict } }\n";
    char cerr[256];
    assert_int_equal(eg_catalog_load_yaml(cat, cy, sizeof(cy) - 1, "c.yaml", cerr, sizeof(cerr)), EG_OK);
    assert_int_equal(eg_error_from_catalog(cat, "not_found", &e), EG_OK);
    eg_dialects_t *set2 = NULL;
    assert_int_equal(eg_dialects_new_builtin(&set2), EG_OK);
    eg_dialect_error_code(eg_dialects_get(set2, "flat-camel"), cat, e, code, sizeof(code));
    assert_string_equal(code, "BAD_REQUEST");
    assert_string_equal(eg_dialect_answer_code(eg_dialects_get(set2, "flat-camel"), cat, "not_found"), "bad_request");
    assert_int_equal(eg_dialect_map_code(eg_dialects_get_mut(set2, "typed"), "not_found", NULL), EG_OK); /* keep */
    eg_dialect_error_code(eg_dialects_get(set2, "typed"), cat, e, code, sizeof(code));
    assert_string_equal(code, "NOT_FOUND");
    char cbuf[512];
    eg_render(e, eg_dialects_get(set2, "flat-camel"), cat, cbuf, sizeof(cbuf));
    assert_non_null(strstr(cbuf, "\"error\":\"BAD_REQUEST\""));
    assert_non_null(strstr(cbuf, "\"reason\":\"not_found\""));
    eg_error_free(e);
    eg_dialects_free(set2);
    eg_catalog_free(cat);
    /* a dialect file declares its own */
    static const char yaml[] = "name: mine\ncode_map: { invalid_token: unauthorized }\nbody: { code: $code, info: { $details: merge } }\n";
    char err[256];
    eg_dialect_t *d = NULL;
    assert_int_equal(eg_dialect_load_yaml(yaml, strlen(yaml), "mine.yaml", &d, err, sizeof(err)), EG_OK);
    assert_int_equal(eg_error_from_catalog(fx->cat, "invalid_token", &e), EG_OK);
    char buf[512];
    eg_render(e, d, fx->cat, buf, sizeof(buf));
    assert_string_equal(buf, "{\"code\":\"unauthorized\",\"info\":{\"reason\":\"invalid_token\"}}");
    eg_error_free(e);
    eg_dialect_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_seed_example_round_trips),
        cmocka_unit_test(test_builder_reproduces_typed_rate_limit),
        cmocka_unit_test(test_builder_reproduces_flat_camel_validation),
        cmocka_unit_test(test_field_errors_travel_between_dialects),
        cmocka_unit_test(test_single_field_error_is_flattened),
        cmocka_unit_test(test_codes_are_spelled_per_dialect),
        cmocka_unit_test(test_synonyms_parse_to_one_code),
        cmocka_unit_test(test_problem_follows_rfc9457),
        cmocka_unit_test(test_jsonapi_mixed_errors_share_general_status),
        cmocka_unit_test(test_strings_are_escaped),
        cmocka_unit_test(test_render_reports_needed_length),
        cmocka_unit_test(test_jsonapi_items_of_different_shapes),
        cmocka_unit_test(test_unknown_members_are_kept),
        cmocka_unit_test(test_html_and_text_bodies_become_errors),
        cmocka_unit_test(test_excerpt_is_bounded_and_sanitized),
        cmocka_unit_test(test_invalid_json_error_has_position),
        cmocka_unit_test(test_declared_dialect_renders_parses_and_detects),
        cmocka_unit_test(test_bad_dialect_files_report_line_and_column),
        cmocka_unit_test(test_forced_dialect_rejects_other_shapes),
        cmocka_unit_test(test_validation_status_covers_the_class),
        cmocka_unit_test(test_code_map_answers_in_the_pages_words),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
