/* test_params.c - OpenAPI parameter serialization and checking (lib/params.c):
 * each style and explode, percent-decoding and '+', coercion to the
 * schema's type, and each kind of problem with its code, message and
 * extra members. Rules are written as the gateway config writes them. */
#include "testutil.h"

#include "errgate/errgate.h"
#include "params.h"

static eg_catalog_t *cat;

static int setup(void **state)
{
    (void)state;
    return eg_catalog_new_builtin(&cat);
}

static int teardown(void **state)
{
    (void)state;
    eg_catalog_free(cat);
    return 0;
}

/* One rule set from YAML: { name: RULE, ... } all in `in`. */
static eg_params_t *rules(const char *yaml, eg_param_in_t in)
{
    eg_ydoc_t *doc = NULL;
    char err[512] = "";
    if (eg_ydoc_parse(yaml, strlen(yaml), "t.yaml", &doc, err, sizeof(err)) != EG_OK)
        fail_msg("%s", err);
    const eg_ynode_t *root = eg_ydoc_root(doc);
    eg_params_t *p = calloc(1, sizeof(*p));
    p->rules = calloc(root->n, sizeof(*p->rules));
    for (size_t i = 0; i < root->n; i++) {
        int rc = eg_param_rule_from_yaml(&p->rules[i], doc, root->items[2 * i + 1],
                                         root->items[2 * i]->str, in, cat, NULL, err, sizeof(err));
        p->n++;
        if (rc) fail_msg("rule %s: %s", root->items[2 * i]->str, err);
    }
    eg_ydoc_free(doc); /* compiled schemas do not point into the document */
    return p;
}

static void free_rules(eg_params_t *p)
{
    eg_params_free(p);
    free(p);
}

/* Whether rule text `err` comes out of loading. */
static void refused(const char *yaml, eg_param_in_t in, const char *want)
{
    eg_ydoc_t *doc = NULL;
    char err[512] = "";
    assert_int_equal(eg_ydoc_parse(yaml, strlen(yaml), "t.yaml", &doc, err, sizeof(err)), EG_OK);
    const eg_ynode_t *root = eg_ydoc_root(doc);
    eg_param_rule_t r;
    int rc = eg_param_rule_from_yaml(&r, doc, root->items[1], root->items[0]->str, in, cat, NULL,
                                     err, sizeof(err));
    eg_param_rule_free(&r);
    eg_ydoc_free(doc);
    if (rc != EG_EPARSE) fail_msg("%s: accepted", yaml);
    if (!strstr(err, want)) fail_msg("%s: '%s' does not say '%s'", yaml, err, want);
    if (strncmp(err, "t.yaml:1:", 9) != 0) fail_msg("%s: '%s' has no position", yaml, err);
}

typedef struct {
    eg_error_t *e;
    eg_params_report_t rep;
} chk_t;

static int query(eg_params_t *p, const char *q, chk_t *c)
{
    memset(c, 0, sizeof(*c));
    c->e = eg_error_new();
    c->rep.e = c->e;
    c->rep.max = 20;
    return eg_params_check_query(p, EG_PIN_QUERY, q, strlen(q), &c->rep);
}

static void done(chk_t *c)
{
    eg_error_free(c->e);
}

static void ok_query(eg_params_t *p, const char *q)
{
    chk_t c;
    int rc = query(p, q, &c);
    if (rc != EG_OK)
        fail_msg("?%s: %zu problems, first: %s", q, c.rep.count,
                 c.e->nfields ? c.e->fields[0].s[EG_F_MESSAGE] : "?");
    /* counting only (no error) agrees */
    eg_params_report_t r0 = {NULL, 0, 0, NULL, 0};
    assert_int_equal(eg_params_check_query(p, EG_PIN_QUERY, q, strlen(q), &r0), EG_OK);
    done(&c);
}

/* The first problem of ?q: its code, message, and an extra member's JSON. */
static void bad_query(eg_params_t *p, const char *q, const char *code, const char *msg,
                      const char *xkey, const char *xjson)
{
    chk_t c;
    int rc = query(p, q, &c);
    if (rc != EG_ERANGE) fail_msg("?%s: accepted", q);
    eg_params_report_t r0 = {NULL, 0, 0, NULL, 0};
    assert_int_equal(eg_params_check_query(p, EG_PIN_QUERY, q, strlen(q), &r0), EG_ERANGE);
    assert_int_equal(r0.count, 1); /* counting only stops at the first */
    assert_non_null(c.rep.code);
    if (strcmp(c.rep.code, code) != 0) fail_msg("?%s: code %s, want %s", q, c.rep.code, code);
    assert_true(c.e->nfields >= 1);
    const eg_field_error_t *f = &c.e->fields[0];
    if (msg && strcmp(f->s[EG_F_MESSAGE], msg) != 0)
        fail_msg("?%s: message '%s', want '%s'", q, f->s[EG_F_MESSAGE], msg);
    if (xkey) {
        json_t *x = f->extra ? json_object_get(f->extra, xkey) : NULL;
        char *got = x ? json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        if (!got || strcmp(got, xjson) != 0)
            fail_msg("?%s: %s = %s, want %s", q, xkey, got ? got : "(none)", xjson);
        free(got);
    }
    done(&c);
}

static void test_form_explode_and_decoding(void **state)
{
    (void)state;
    eg_params_t *p = rules("q: { required: true, type: string, minLength: 2 }\n"
                           "num: { type: integer, minimum: 1, maximum: 100 }\n"
                           "ids: { type: array, items: { type: integer } }\n"
                           "on: { type: boolean }\n"
                           "ratio: { type: number, exclusiveMaximum: 1 }\n",
                           EG_PIN_QUERY);
    ok_query(p, "q=coffee+shops&num=10");
    ok_query(p, "q=caf%C3%A9&ids=1&ids=2&ids=3&on=true&ratio=0.5");
    ok_query(p, "num=1&q=ab");
    ok_query(p, "q=%2B%2B");                       /* "++": minLength 2 */
    bad_query(p, "q=+", "invalid_parameter_value", /* '+' is a space: one character */
              "Invalid value for parameter 'q'. Must be at least 2 characters long", "min_length",
              "2");
    bad_query(p, "num=5", "missing_parameter", "Parameter 'q' is required", "required", "true");
    bad_query(p, "q=ab&num=150", "invalid_parameter_value",
              "Invalid value for parameter 'num'. Must be between 1 and 100", "valid_range",
              "\"1-100\"");
    bad_query(p, "q=ab&num=abc", "invalid_parameter_type", "Parameter 'num' must be an integer",
              "provided_type", "\"string\"");
    bad_query(p, "q=ab&num=1.5", "invalid_parameter_type", "Parameter 'num' must be an integer",
              "provided_type", "\"number\"");
    bad_query(p, "q=ab&num=01", "invalid_parameter_type", NULL, NULL,
              NULL); /* not a JSON literal */
    bad_query(p, "q=ab&ids=1&ids=x", "invalid_parameter_type",
              "Parameter 'ids' must be a list of integers", "expected_type", "\"array\"");
    bad_query(p, "q=ab&on=yes", "invalid_parameter_type", "Parameter 'on' must be a boolean", NULL,
              NULL);
    bad_query(p, "q=ab&ratio=1", "invalid_parameter_value",
              "Invalid value for parameter 'ratio'. Must be less than 1", "exclusive_maximum", "1");
    bad_query(p, "q=%zz", "invalid_parameter_value", NULL, NULL, NULL);
    bad_query(p, "q=%C3", "invalid_parameter_value", NULL, NULL, NULL);   /* not UTF-8 */
    bad_query(p, "q=a%00b", "invalid_parameter_value", NULL, NULL, NULL); /* NUL */
    /* every problem, in rule order, and the value echoed as coerced */
    chk_t c;
    assert_int_equal(query(p, "num=0&on=maybe", &c), EG_ERANGE);
    assert_int_equal(c.rep.count, 3);
    assert_true(c.rep.mixed);
    assert_string_equal(c.e->fields[0].s[EG_F_PARAMETER], "q");
    assert_string_equal(c.e->fields[1].s[EG_F_PARAMETER], "num");
    assert_string_equal(c.e->fields[1].s[EG_F_CONSTRAINT], "minimum");
    assert_true(json_is_integer(c.e->fields[1].value) &&
                json_integer_value(c.e->fields[1].value) == 0);
    assert_string_equal(c.e->fields[2].s[EG_F_PARAMETER], "on");
    done(&c);
    free_rules(p);
}

/* The rules that take their name's first pair find them in one pass over
 * the query: each still gets its first pair, names decoded or not. */
static void test_one_pass_first_pairs(void **state)
{
    (void)state;
    eg_params_t *p = rules("q: { required: true, type: string, minLength: 2 }\n"
                           "num: { type: integer, minimum: 1, maximum: 100 }\n"
                           "ids: { type: array, items: { type: integer } }\n"
                           "a b: { type: integer }\n"
                           "src: { enum: [web, app] }\n",
                           EG_PIN_QUERY);
    ok_query(p, "num=5&q=ab&num=500"); /* the first num counts */
    bad_query(p, "num=500&q=ab&num=5", "invalid_parameter_value", NULL, NULL, NULL);
    ok_query(p, "n%75m=5&q=ab"); /* "num", encoded */
    bad_query(p, "n%75m=500&q=ab", "invalid_parameter_value", NULL, NULL, NULL);
    bad_query(p, "n%75m=500&q=ab&num=5", "invalid_parameter_value", NULL, NULL, NULL);
    ok_query(p, "a+b=7&q=ab"); /* "a b" */
    ok_query(p, "a%20b=7&q=ab&a+b=x");
    bad_query(p, "a+b=x&q=ab", "invalid_parameter_type", NULL, NULL, NULL);
    bad_query(p, "ab=7&q=ab&a+b=x", "invalid_parameter_type", NULL, NULL, NULL);
    ok_query(p, "&&q=ab&&num=1&&");                                      /* empty pairs */
    bad_query(p, "q&q=ab", "invalid_parameter_value", NULL, NULL, NULL); /* no "=": "" first */
    bad_query(p, "q=&q=ab", "invalid_parameter_value", NULL, NULL, NULL);
    ok_query(p, "q=a=b&src=web"); /* '=' in a value */
    bad_query(p, "q=ab&src=we%62x", "invalid_parameter_value", NULL, NULL, NULL);
    ok_query(p, "q=ab&src=we%62&ids=1&num=2&ids=2"); /* "web" */
    bad_query(p, "q=ab&ids=1&ids=x&num=2", "invalid_parameter_type", NULL, NULL, NULL);
    bad_query(p, "Num=5", "missing_parameter", NULL, NULL, NULL); /* names are exact */
    free_rules(p);
}

static void test_delimited_styles(void **state)
{
    (void)state;
    eg_params_t *p =
        rules("a: { type: array, items: { type: integer }, explode: false }\n"
              "s: { type: array, items: { type: string, maxLength: 3 }, style: spaceDelimited }\n"
              "pp: { type: array, items: { type: integer, maximum: 9 }, style: pipeDelimited }\n"
              "o: { type: object, explode: false }\n",
              EG_PIN_QUERY);
    ok_query(p, "a=1,2,3&s=ab%20cd+ef&pp=1|2%7C3&o=R,100,G,200");
    ok_query(p, "a=&pp="); /* empty lists */
    /* %2C is no delimiter: one item "1,2", which is no integer */
    bad_query(p, "a=1%2C2", "invalid_parameter_type", NULL, NULL, NULL);
    bad_query(p, "a=1,x", "invalid_parameter_type", "Parameter 'a' must be a list of integers",
              NULL, NULL);
    bad_query(p, "s=ab%20abcd", "invalid_parameter_value", NULL, NULL, NULL);
    bad_query(p, "pp=1|10", "invalid_parameter_value", NULL, NULL, NULL);
    free_rules(p);
}

static void test_deep_object(void **state)
{
    (void)state;
    eg_params_t *p = rules(
        "filter: { type: object, style: deepObject, required: true,\n"
        "          properties: { min: { type: integer, minimum: 0 }, name: { type: string } } }\n",
        EG_PIN_QUERY);
    ok_query(p, "filter[min]=3&filter[name]=bob");
    ok_query(p, "filter%5Bmin%5D=3");
    bad_query(p, "filter[min]=-1", "invalid_parameter_value", NULL, NULL, NULL);
    bad_query(p, "filter=3", "missing_parameter", NULL, NULL, NULL);
    free_rules(p);
}

static void test_enum_format_pattern_and_overrides(void **state)
{
    (void)state;
    eg_params_t *p = rules(
        "size: { enum: [large, small] }\n"
        "gl: { type: string, format: iso3166 }\n"
        "img: { enum: [a, b], code: invalid_image_filter, message: \"Invalid image filter\",\n"
        "       details: { hint: see docs } }\n",
        EG_PIN_QUERY);
    bad_query(p, "size=huge", "invalid_parameter_value",
              "Invalid value for parameter 'size'. Must be one of: large, small", "valid_values",
              "[\"large\",\"small\"]");
    bad_query(p, "gl=usa", "invalid_parameter_value",
              "Invalid value for parameter 'gl'. Must be a valid ISO 3166-1 alpha-2 country code",
              "expected_format", "\"iso3166\"");
    bad_query(p, "img=c", "invalid_image_filter", "Invalid image filter", "hint", "\"see docs\"");
    ok_query(p, "size=large&gl=US&img=a");
    free_rules(p);
    refused("q: { code: no_such_code }", EG_PIN_QUERY, "no_such_code");
    refused("q: { style: matrix }", EG_PIN_QUERY, "matrix");
    refused("q: { style: form }", EG_PIN_PATH, "form");
    refused("q: { type: object }", EG_PIN_QUERY, "deepObject");
    refused("q: { type: integer, schema: { type: string } }", EG_PIN_QUERY, "not both");
    refused("q: [1]", EG_PIN_QUERY, "must be a map");
}

static void test_path_styles(void **state)
{
    (void)state;
    eg_params_t *p = rules("id: { type: integer, minimum: 1 }\n", EG_PIN_PATH);
    eg_path_capture_t cap = {"id", "42", 2, 2};
    eg_params_report_t r = {NULL, 0, 0, NULL, 0};
    assert_int_equal(eg_params_check_path(p, &cap, 1, &r), EG_OK);
    cap.value = "0";
    cap.value_len = 1;
    assert_int_equal(eg_params_check_path(p, &cap, 1, &r), EG_ERANGE);
    assert_string_equal(r.code, "invalid_parameter_value");
    r = (eg_params_report_t){NULL, 0, 0, NULL, 0};
    assert_int_equal(eg_params_check_path(p, NULL, 0, &r),
                     EG_ERANGE); /* path parameters are required */
    assert_string_equal(r.code, "missing_parameter");
    free_rules(p);

    static const struct {
        const char *rule, *value;
        int ok;
    } cases[] = {
        {"v: { type: array, items: { type: integer } }", "3,4,5", 1},
        {"v: { type: array, items: { type: integer } }", "3,x", 0},
        {"v: { type: array, items: { type: integer }, style: label }", ".3,4,5", 1},
        {"v: { type: array, items: { type: integer }, style: label, explode: true }", ".3.4.5", 1},
        {"v: { type: array, items: { type: integer }, style: label }", "3,4", 0},
        {"v: { type: array, items: { type: integer }, style: matrix }", ";v=3,4,5", 1},
        {"v: { type: array, items: { type: integer }, style: matrix, explode: true }", ";v=3;v=4",
         1},
        {"v: { type: array, items: { type: integer }, style: matrix, explode: true }", ";v=3;w=4",
         0},
        {"v: { type: integer, style: matrix }", ";v=5", 1},
        {"v: { type: string, maxLength: 3 }", "a%20b", 1}, /* "a b" */
        {"v: { type: string, maxLength: 3 }", "a+bc", 0},  /* '+' is no space in a path */
        {"v: { type: object }", "R,100,G,200", 1},
        {"v: { type: object, explode: true }", "R=100,G=200", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p = rules(cases[i].rule, EG_PIN_PATH);
        eg_path_capture_t c = {"v", cases[i].value, 1, strlen(cases[i].value)};
        eg_params_report_t rr = {NULL, 0, 0, NULL, 0};
        int rc = eg_params_check_path(p, &c, 1, &rr);
        if ((rc == EG_OK) != cases[i].ok)
            fail_msg("%s with %s: rc %d", cases[i].rule, cases[i].value, rc);
        free_rules(p);
    }
}

static void test_headers(void **state)
{
    (void)state;
    eg_params_t *p = rules("X-Version: { required: true, type: integer, maximum: 3 }\n"
                           "X-Tags: { type: array, items: { type: string, maxLength: 2 } }\n"
                           "Authorization: { type: string, minLength: 50 }\n",
                           EG_PIN_HEADER);
    eg_http_header_t h[] = {
        {"x-version", 9, "2", 1}, {"X-TAGS", 6, "ab, cd", 6}, {"X-Tags", 6, "ef", 2}};
    eg_params_report_t r = {NULL, 0, 0, NULL, 0};
    assert_int_equal(eg_params_check_headers(p, h, 3, &r), EG_OK);
    eg_http_header_t bad[] = {{"X-Tags", 6, "abc", 3}, {"Authorization", 13, "Bearer secret", 13}};
    eg_error_t *e = eg_error_new();
    r = (eg_params_report_t){e, 20, 0, NULL, 0};
    assert_int_equal(eg_params_check_headers(p, bad, 2, &r), EG_ERANGE);
    assert_int_equal(r.count, 3);
    assert_string_equal(e->fields[0].s[EG_F_HEADER], "X-Version");
    assert_string_equal(e->fields[0].s[EG_F_MESSAGE], "Header 'X-Version' is required");
    assert_string_equal(e->fields[1].s[EG_F_HEADER], "X-Tags");
    assert_string_equal(e->fields[2].s[EG_F_HEADER], "Authorization");
    assert_null(e->fields[2].value); /* never echoed */
    eg_error_free(e);
    free_rules(p);
    assert_true(eg_param_name_is_secret("Cookie", 6));
    assert_true(eg_param_name_is_secret("X-API-Key", 9));
    assert_true(eg_param_name_is_secret("client_secret", 13));
    assert_false(eg_param_name_is_secret("X-Version", 9));
}

static void test_form_fields_and_bounds(void **state)
{
    (void)state;
    eg_params_t *p = rules("qty: { required: true, type: integer }\n", EG_PIN_FORM);
    eg_error_t *e = eg_error_new();
    eg_params_report_t r = {e, 20, 0, NULL, 0};
    assert_int_equal(eg_params_check_query(p, EG_PIN_FORM, "qty=x", 5, &r), EG_ERANGE);
    assert_string_equal(e->fields[0].s[EG_F_FIELD], "qty");
    assert_null(e->fields[0].s[EG_F_PARAMETER]);
    /* query rules are not form rules */
    eg_params_report_t r2 = {NULL, 0, 0, NULL, 0};
    assert_int_equal(eg_params_check_query(p, EG_PIN_QUERY, "", 0, &r2), EG_OK);
    eg_error_free(e);
    free_rules(p);
    /* a long value is echoed cut at EG_PARAM_ECHO_MAX bytes, on a character boundary */
    p = rules("s: { type: string, maxLength: 3 }\n", EG_PIN_QUERY);
    char q[700] = "s=";
    for (int i = 0; i < 100; i++)
        strcat(q, "%C3%A9"); /* e-acute, 2 bytes */
    chk_t c;
    assert_int_equal(query(p, q, &c), EG_ERANGE);
    const char *v = json_string_value(c.e->fields[0].value);
    assert_non_null(v);
    assert_int_equal(strlen(v), EG_PARAM_ECHO_MAX);
    done(&c);
    /* at most max field errors, every problem counted */
    eg_params_t *many = rules(
        "a: { required: true }\nb: { required: true }\nc: { required: true }\n", EG_PIN_QUERY);
    e = eg_error_new();
    r = (eg_params_report_t){e, 2, 0, NULL, 0};
    assert_int_equal(eg_params_check_query(many, EG_PIN_QUERY, "", 0, &r), EG_ERANGE);
    assert_int_equal(r.count, 3);
    assert_int_equal(e->nfields, 2);
    assert_false(r.mixed);
    eg_error_free(e);
    free_rules(many);
    free_rules(p);
}

static void test_media_types(void **state)
{
    (void)state;
    char cn[64];
    eg_constraint_name("minLength", NULL, cn, sizeof(cn));
    assert_string_equal(cn, "min_length");
    eg_constraint_name("format", "email", cn, sizeof(cn));
    assert_string_equal(cn, "email_format");
    eg_constraint_name("format", "date-time", cn, sizeof(cn));
    assert_string_equal(cn, "date_time_format");
    eg_constraint_name("additionalProperties", NULL, cn, sizeof(cn));
    assert_string_equal(cn, "additional_properties");
    eg_constraint_name("required", NULL, cn, sizeof(cn));
    assert_string_equal(cn, "required");
    const char *t;
    size_t n;
    eg_media_type_of(" application/json ; charset=utf-8", 33, &t, &n);
    assert_int_equal(n, 16);
    assert_memory_equal(t, "application/json", 16);
    char *pats[] = {"application/json", "text/*", "application/*+json"};
    assert_true(eg_media_type_in("APPLICATION/JSON", 16, pats, 3));
    assert_true(eg_media_type_in("text/csv", 8, pats, 3));
    assert_true(eg_media_type_in("application/vnd.api+json", 24, pats, 3));
    assert_false(eg_media_type_in("application/xml", 15, pats, 3));
    assert_false(eg_media_type_in("application/+json", 17, pats, 3));
    assert_false(eg_media_type_in("", 0, pats, 3));
    assert_true(eg_media_type_is_json("application/problem+json", 24));
    assert_false(eg_media_type_is_json("application/jsonx", 17));
    /* letters in any case, the '/' exactly (a byte that is '/' with bit 5 cleared is not) */
    assert_true(eg_media_type_is_json("application/json", 16));
    assert_true(eg_media_type_is_json("Application/JSON", 16));
    assert_false(eg_media_type_is_json("application\x0fjson", 16));
    assert_false(eg_media_type_is_json("applicatioN/jsoM", 16));
    assert_false(eg_media_type_is_json("applic@tion/json", 16));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_explode_and_decoding),
        cmocka_unit_test(test_one_pass_first_pairs),
        cmocka_unit_test(test_delimited_styles),
        cmocka_unit_test(test_deep_object),
        cmocka_unit_test(test_enum_format_pattern_and_overrides),
        cmocka_unit_test(test_path_styles),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_form_fields_and_bounds),
        cmocka_unit_test(test_media_types),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
