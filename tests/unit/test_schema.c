/* test_schema.c - JSON Schema compile and validate (lib/schema.h), and JSON
 * documents as ytree (eg_ydoc_parse_json).
 *
 * Keyword cases are (schema, instance, verdict) triples written here from
 * draft 2020-12; field errors are checked member by member against what
 * schema.h promises.
 */
#include "testutil.h"

#include "errgate/errgate.h"
#include "jsonr.h"
#include "schema.h"
#include "ytree.h"

typedef struct {
    const char *schema, *instance;
    int valid;
} kcase_t;

/* Compiles schema (JSON text) with opts; asserts success. */
static eg_schema_t *compile(const char *schema, const eg_schema_opts_t *opts, eg_ydoc_t **doc)
{
    char err[512] = "";
    int rc = eg_ydoc_parse_json(schema, strlen(schema), "s.json", doc, err, sizeof(err));
    if (rc) fail_msg("schema %s does not parse: %s", schema, err);
    eg_schema_t *s = NULL;
    rc = eg_schema_compile(*doc, NULL, opts, &s, err, sizeof(err));
    if (rc) fail_msg("schema %s does not compile: %s", schema, err);
    return s;
}

/* Validates instance against schema; returns the validate rc, fills *e when wanted. */
static int check(const char *schema, const char *instance, const eg_schema_opts_t *opts,
                 eg_error_t *e, size_t max, size_t *count)
{
    eg_ydoc_t *doc = NULL;
    eg_schema_t *s = compile(schema, opts, &doc);
    eg_jr_doc_t jd;
    if (eg_jr_parse(&jd, instance, strlen(instance))) fail_msg("instance %s is not JSON", instance);
    eg_schema_report_t rep = {e, "", NULL, max, 0};
    int rc = eg_schema_validate(s, &jd, NULL, &rep);
    if (count) *count = rep.count;
    eg_jr_free(&jd);
    eg_schema_free(s);
    eg_ydoc_free(doc);
    return rc;
}

static void run_cases(const kcase_t *k, size_t n, int oas30)
{
    eg_schema_opts_t opts = {.openapi30 = oas30};
    for (size_t i = 0; i < n; i++) {
        eg_error_t *e = eg_error_new();
        size_t count = 0;
        int rc = check(k[i].schema, k[i].instance, &opts, e, 10, &count);
        if (rc != (k[i].valid ? EG_OK : EG_ERANGE))
            fail_msg("%s against %s: rc %d, want %s", k[i].instance, k[i].schema, rc,
                     k[i].valid ? "valid" : "invalid");
        if (!k[i].valid && (count == 0 || e->nfields == 0))
            fail_msg("%s against %s: invalid but no field error", k[i].instance, k[i].schema);
        /* the quiet mode (no error object) agrees */
        if (check(k[i].schema, k[i].instance, &opts, NULL, 0, &count) != rc)
            fail_msg("%s against %s: count-only mode disagrees", k[i].instance, k[i].schema);
        eg_error_free(e);
    }
}
#define RUN(cases, oas30) run_cases(cases, sizeof(cases) / sizeof(cases[0]), oas30)

static void test_keywords(void **state)
{
    (void)state;
    static const kcase_t k[] = {
        {"{\"type\":\"string\"}", "\"a\"", 1},
        {"{\"type\":\"string\"}", "1", 0},
        {"{\"type\":\"integer\"}", "1.0", 1}, /* integer-valued reals are integers */
        {"{\"type\":\"integer\"}", "1e2", 1},
        {"{\"type\":\"integer\"}", "1.5", 0},
        {"{\"type\":\"number\"}", "3", 1},
        {"{\"type\":[\"string\",\"null\"]}", "null", 1},
        {"{\"type\":[\"string\",\"null\"]}", "true", 0},
        {"{\"type\":\"object\"}", "[]", 0},
        {"{\"type\":\"array\"}", "[]", 1},
        {"{\"type\":\"boolean\"}", "false", 1},
        {"{\"type\":\"boolean\"}", "0", 0},
        {"{\"properties\":{\"a\":{\"type\":\"integer\"}}}", "{\"a\":1,\"b\":\"x\"}", 1},
        {"{\"properties\":{\"a\":{\"type\":\"integer\"}}}", "{\"a\":\"1\"}", 0},
        {"{\"properties\":{\"a\\\\u0062\":{\"type\":\"integer\"}}}", "{\"a\\\\u0062\":1}", 1},
        {"{\"properties\":{\"ab\":{\"type\":\"integer\"}}}", "{\"a\\u0062\":\"x\"}", 0},
        {"{\"required\":[\"a\",\"b\"]}", "{\"a\":1,\"b\":2}", 1},
        {"{\"required\":[\"a\",\"b\"]}", "{\"a\":1}", 0},
        {"{\"required\":[\"a\"]}", "[]", 1}, /* applies to objects only */
        {"{\"properties\":{\"a\":{}},\"required\":[\"a\"]}", "{\"\\u0061\":1}", 1},
        {"{\"properties\":{\"a\":{}},\"additionalProperties\":false}", "{\"a\":1}", 1},
        {"{\"properties\":{\"a\":{}},\"additionalProperties\":false}", "{\"a\":1,\"b\":2}", 0},
        {"{\"additionalProperties\":{\"type\":\"integer\"}}", "{\"a\":1}", 1},
        {"{\"additionalProperties\":{\"type\":\"integer\"}}", "{\"a\":true}", 0},
        {"{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":false}",
         "{\"x-a\":\"s\"}", 1},
        {"{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":false}",
         "{\"x-a\":1}", 0},
        {"{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":false}",
         "{\"y\":\"s\"}", 0},
        {"{\"items\":{\"type\":\"integer\"}}", "[1,2,3]", 1},
        {"{\"items\":{\"type\":\"integer\"}}", "[1,\"2\"]", 0},
        {"{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "[\"a\",1,true]", 1},
        {"{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "[1]", 0},
        {"{\"prefixItems\":[{}],\"items\":false}", "[1]", 1},
        {"{\"prefixItems\":[{}],\"items\":false}", "[1,2]", 0},
        {"{\"enum\":[\"a\",1,null,{\"k\":[1]}]}", "\"a\"", 1},
        {"{\"enum\":[\"a\",1,null,{\"k\":[1]}]}", "1.0", 1},
        {"{\"enum\":[\"a\",1,null,{\"k\":[1]}]}", "{\"k\":[1.0]}", 1},
        {"{\"enum\":[\"a\",1,null,{\"k\":[1]}]}", "{\"k\":[1],\"j\":2}", 0},
        {"{\"enum\":[\"a\",1,null,{\"k\":[1]}]}", "\"b\"", 0},
        {"{\"enum\":[false]}", "0", 0},
        {"{\"const\":{\"a\":[1,\"x\"]}}", "{\"a\":[1,\"\\u0078\"]}", 1},
        {"{\"const\":{\"a\":[1,\"x\"]}}", "{\"a\":[1,\"y\"]}", 0},
        {"{\"const\":\"caf\\u00e9\"}", "\"café\"", 1},
        {"{\"minimum\":1}", "1", 1},
        {"{\"minimum\":1}", "0.9", 0},
        {"{\"maximum\":100}", "100", 1},
        {"{\"maximum\":100}", "100.5", 0},
        {"{\"exclusiveMinimum\":1}", "1.1", 1},
        {"{\"exclusiveMinimum\":1}", "1", 0},
        {"{\"exclusiveMaximum\":1}", "0", 1},
        {"{\"exclusiveMaximum\":1}", "1.0", 0},
        {"{\"minimum\":1}", "\"0\"", 1}, /* numbers only */
        {"{\"multipleOf\":2}", "10", 1},
        {"{\"multipleOf\":2}", "7", 0},
        {"{\"multipleOf\":0.0001}", "0.0075", 1},
        {"{\"multipleOf\":0.0001}", "0.00751", 0},
        {"{\"multipleOf\":0.01}", "19.99", 1},
        {"{\"multipleOf\":1.5}", "4.5", 1},
        {"{\"multipleOf\":1.5}", "35", 0},
        {"{\"multipleOf\":0.123456789}", "1e308", 0},
        {"{\"type\":\"integer\",\"multipleOf\":0.5}", "1e308", 1},
        {"{\"minLength\":2}", "\"ab\"", 1},
        {"{\"minLength\":2}", "\"\\ud83d\\ude00\"", 0}, /* one code point */
        {"{\"maxLength\":2}", "\"\xc3\xa9\xc3\xa9\"", 1},
        {"{\"maxLength\":2}", "\"abc\"", 0},
        {"{\"maxLength\":2.0}", "\"ab\"", 1},
        {"{\"pattern\":\"^a*$\"}", "\"aaa\"", 1},
        {"{\"pattern\":\"^a*$\"}", "\"abc\"", 0},
        {"{\"pattern\":\"b\"}", "\"abc\"", 1},            /* unanchored search */
        {"{\"pattern\":\"^a$\"}", "\"a\\n\"", 0},         /* $ only at the very end, as in ECMA */
        {"{\"pattern\":\"^.$\"}", "\"\xc3\xa9\"", 1},     /* . is a code point */
        {"{\"pattern\":\"^\\\\d$\"}", "\"\xd9\xa3\"", 0}, /* \\d is ASCII, as in ECMA */
        {"{\"pattern\":\"^\\\\u0041$\"}", "\"A\"", 1},
        /* ECMA's long property names: \p{Letter} is PCRE2's \p{L} */
        {"{\"pattern\":\"^\\\\p{Letter}+$\"}", "\"\xcf\x80\x61\"", 1},
        {"{\"pattern\":\"^\\\\p{gc=Decimal_Number}$\"}", "\"\xd9\xa3\"", 1},
        {"{\"pattern\":\"^\\\\p{Letter}+$\"}", "\"123\"", 0},
        /* an escaped backslash keeps what follows literal */
        {"{\"pattern\":\"^\\\\\\\\p{Letter}$\"}", "\"\\\\p{Letter}\"", 1},
        {"{\"format\":\"email\"}", "\"a@example.com\"", 1},
        {"{\"format\":\"email\"}", "\"not an email\"", 0},
        {"{\"format\":\"uuid\"}", "\"123e4567-e89b-12d3-a456-426614174000\"", 1},
        {"{\"format\":\"date\"}", "\"2023-02-29\"", 0},
        {"{\"format\":\"int32\"}", "2147483648", 0},
        {"{\"format\":\"int32\"}", "2147483647", 1},
        {"{\"format\":\"float\"}", "\"x\"", 1}, /* annotation */
        {"{\"minItems\":1}", "[1]", 1},
        {"{\"minItems\":1}", "[]", 0},
        {"{\"maxItems\":1}", "[1,2]", 0},
        {"{\"uniqueItems\":true}", "[1,2]", 1},
        {"{\"uniqueItems\":true}", "[1,1.0]", 0},
        {"{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]", 0},
        {"{\"uniqueItems\":true}", "[[1],[true]]", 1},
        {"{\"uniqueItems\":true}", "[\"a\",\"\\u0061\"]", 0},
        {"{\"uniqueItems\":false}", "[1,1]", 1},
        {"{\"minProperties\":1}", "{\"a\":1}", 1},
        {"{\"minProperties\":1}", "{}", 0},
        {"{\"maxProperties\":1}", "{\"a\":1,\"b\":2}", 0},
        {"{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "3", 1},
        {"{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1", 0},
        {"{\"anyOf\":[{\"type\":\"integer\"},{\"minLength\":2}]}", "\"ab\"", 1},
        {"{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"minLength\":2}]}", "\"a\"", 0},
        {"{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1.5", 0},
        {"{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1", 1},
        {"{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "3", 0},
        {"{\"not\":{\"type\":\"integer\"}}", "\"a\"", 1},
        {"{\"not\":{\"type\":\"integer\"}}", "1", 0},
        {"true", "{\"x\":1}", 1},
        {"false", "null", 0},
        {"{\"properties\":{\"a\":false}}", "{\"a\":1}", 0},
        {"{\"properties\":{\"a\":false}}", "{\"b\":1}", 1},
        {"{\"$defs\":{\"p\":{\"type\":\"integer\"}},\"items\":{\"$ref\":\"#/$defs/p\"}}", "[1]", 1},
        {"{\"$defs\":{\"p\":{\"type\":\"integer\"}},\"items\":{\"$ref\":\"#/$defs/p\"}}", "[\"1\"]",
         0},
        {"{\"definitions\":{\"a~b\":{\"type\":\"integer\"}},\"$ref\":\"#/definitions/a~0b\"}",
         "\"x\"", 0},
        {"{\"$defs\":{\"a%b\":{\"type\":\"integer\"}},\"$ref\":\"#/$defs/a%25b\"}", "1", 1},
        {"{\"properties\":{\"n\":{\"$ref\":\"#\"}},\"additionalProperties\":false}",
         "{\"n\":{\"n\":{}}}", 1},
        {"{\"properties\":{\"n\":{\"$ref\":\"#\"}},\"additionalProperties\":false}",
         "{\"n\":{\"n\":{\"x\":1}}}", 0},
        {"{\"prefixItems\":[{\"type\":\"integer\"},{\"$ref\":\"#/prefixItems/0\"}]}", "[1,\"a\"]",
         0},
        /* more than 8 values: looked up by structural hash */
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "\"caf\\u00e9\"", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "\"caf\xc3\xa9\"", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "\"cafe\"", 0},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "1.0", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "1", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "2.5", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "2", 0},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "0", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "null", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "false", 0},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "true", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "[1.0,\"\\u0078\"]", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "[\"x\",1]", 0},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "{\"j\":[2.0],\"k\":1}", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "{\"j\":[2],\"k\":1,\"l\":0}", 0},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "\"z\"", 1},
        {"{\"enum\":[\"a\",\"b\",\"caf\u00e9\",1,2.5,-0.0,null,true,[1,\"x\"],{\"k\":1,\"j\":[2]},"
         "\"z\"]}",
         "\"y\"", 0},
        /* the rest of 2020-12's applicators */
        {"{\"contains\":{\"type\":\"integer\"}}", "[\"a\",1]", 1},
        {"{\"contains\":{\"type\":\"integer\"}}", "[\"a\"]", 0},
        {"{\"contains\":{\"type\":\"integer\"},\"minContains\":2}", "[1,\"a\"]", 0},
        {"{\"contains\":{\"type\":\"integer\"},\"maxContains\":1}", "[1,2]", 0},
        {"{\"contains\":{\"type\":\"integer\"},\"minContains\":0}", "[]", 1},
        {"{\"minContains\":2}", "[]", 1}, /* without contains: nothing */
        {"{\"propertyNames\":{\"maxLength\":3}}", "{\"abc\":1}", 1},
        {"{\"propertyNames\":{\"maxLength\":3}}", "{\"abcd\":1}", 0},
        {"{\"propertyNames\":{\"pattern\":\"^[a-z]+$\"}}", "{\"a\\u0042\":1}", 0},
        {"{\"dependentRequired\":{\"card\":[\"cvv\"]}}", "{\"card\":1,\"cvv\":2}", 1},
        {"{\"dependentRequired\":{\"card\":[\"cvv\"]}}", "{\"card\":1}", 0},
        {"{\"dependentRequired\":{\"card\":[\"cvv\"]}}", "{\"cvv\":1}", 1},
        {"{\"dependentSchemas\":{\"card\":{\"required\":[\"cvv\"]}}}", "{\"card\":1}", 0},
        {"{\"dependentSchemas\":{\"card\":{\"required\":[\"cvv\"]}}}", "{}", 1},
        {"{\"if\":{\"type\":\"integer\"},\"then\":{\"minimum\":5},\"else\":{\"type\":\"string\"}}",
         "7", 1},
        {"{\"if\":{\"type\":\"integer\"},\"then\":{\"minimum\":5},\"else\":{\"type\":\"string\"}}",
         "3", 0},
        {"{\"if\":{\"type\":\"integer\"},\"then\":{\"minimum\":5},\"else\":{\"type\":\"string\"}}",
         "\"s\"", 1},
        {"{\"if\":{\"type\":\"integer\"},\"then\":{\"minimum\":5},\"else\":{\"type\":\"string\"}}",
         "null", 0},
        {"{\"then\":{\"minimum\":5}}", "3", 1}, /* then without if: nothing */
    };
    RUN(k, 0);
}

static void test_openapi30(void **state)
{
    (void)state;
    static const kcase_t k[] = {
        {"{\"type\":\"string\",\"nullable\":true}", "null", 1},
        {"{\"type\":\"string\",\"nullable\":false}", "null", 0},
        {"{\"type\":\"string\"}", "null", 0},
        {"{\"minimum\":1,\"exclusiveMinimum\":true}", "1", 0},
        {"{\"minimum\":1,\"exclusiveMinimum\":true}", "1.5", 1},
        {"{\"minimum\":1,\"exclusiveMinimum\":false}", "1", 1},
        {"{\"maximum\":5,\"exclusiveMaximum\":true}", "5", 0},
        {"{\"maximum\":5,\"exclusiveMaximum\":true}", "4", 1},
    };
    RUN(k, 1);
    /* in 2020-12 a boolean exclusiveMinimum is a mistake, and nullable unknown */
    eg_ydoc_t *doc = NULL;
    eg_schema_t *s = NULL;
    char err[256];
    const char *bad = "{\"minimum\":1,\n \"exclusiveMinimum\":true}";
    assert_int_equal(eg_ydoc_parse_json(bad, strlen(bad), "x.json", &doc, err, sizeof(err)), EG_OK);
    assert_int_equal(eg_schema_compile(doc, NULL, NULL, &s, err, sizeof(err)), EG_EPARSE);
    assert_string_equal(err, "x.json:2:21: 'exclusiveMinimum' must be a number");
    eg_ydoc_free(doc);
}

/* Finds the field error whose pointer is ptr. */
static const eg_field_error_t *field(const eg_error_t *e, const char *ptr)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (e->fields[i].s[EG_F_POINTER] && strcmp(e->fields[i].s[EG_F_POINTER], ptr) == 0)
            return &e->fields[i];
    fail_msg("no field error at %s", ptr);
    return NULL;
}

static void assert_json(const json_t *j, const char *want)
{
    assert_non_null(j);
    char *got = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(got);
    if (strcmp(got, want)) fail_msg("got %s, want %s", got, want);
    free(got);
}

static void test_field_errors(void **state)
{
    (void)state;
    const char *schema =
        "{\"type\":\"object\",\"required\":[\"email\",\"items\"],\"properties\":{"
        "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
        "\"num\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100},"
        "\"kind\":{\"enum\":[\"a\",\"b\"]},"
        "\"name\":{\"type\":\"string\",\"maxLength\":3},"
        "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"qty\":{"
        "\"type\":\"integer\",\"minimum\":1}}}}},\"additionalProperties\":false}";
    const char *inst = "{\"num\":150,\"kind\":\"c\",\"name\":\"" /* 70 x's */
                       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
                       "\"items\":[{\"qty\":1},{\"qty\":2},{\"qty\":0}],\"a/b~\":{\"deep\":[1]}}";
    eg_error_t *e = eg_error_new();
    size_t count = 0;
    eg_schema_opts_t opts = {0};
    eg_ydoc_t *doc = NULL;
    eg_schema_t *s = compile(schema, &opts, &doc);
    eg_jr_doc_t jd;
    assert_int_equal(eg_jr_parse(&jd, inst, strlen(inst)), 0);
    eg_schema_report_t rep = {e, "/data", NULL, 10, 0};
    assert_int_equal(eg_schema_validate(s, &jd, NULL, &rep), EG_ERANGE);
    count = rep.count;
    assert_int_equal(count, 6);
    assert_int_equal(e->nfields, 6);

    const eg_field_error_t *f = field(e, "/data/num");
    assert_string_equal(f->s[EG_F_FIELD], "num");
    assert_string_equal(f->s[EG_F_CONSTRAINT], "maximum");
    assert_string_equal(f->s[EG_F_MESSAGE], "must be at most 100");
    assert_json(f->value, "150");
    assert_json(f->extra, "{\"maximum\":100}");

    f = field(e, "/data/kind");
    assert_string_equal(f->s[EG_F_CONSTRAINT], "enum");
    assert_string_equal(f->s[EG_F_MESSAGE], "must be one of: \"a\", \"b\"");
    assert_json(f->extra, "{\"allowed\":[\"a\",\"b\"]}");
    assert_json(f->value, "\"c\"");

    f = field(e, "/data/name");
    assert_string_equal(f->s[EG_F_CONSTRAINT], "maxLength");
    assert_string_equal(f->s[EG_F_MESSAGE], "must be at most 3 characters long");
    assert_int_equal(json_string_length(f->value), 64); /* echo bounded */
    assert_json(f->extra, "{\"maxLength\":3}");

    f = field(e, "/data/items/2/qty");
    assert_string_equal(f->s[EG_F_FIELD], "items[2].qty");
    assert_string_equal(f->s[EG_F_CONSTRAINT], "minimum");
    assert_string_equal(f->s[EG_F_MESSAGE], "must be at least 1");

    f = field(e, "/data/a~1b~0");
    assert_string_equal(f->s[EG_F_FIELD], "a/b~");
    assert_string_equal(f->s[EG_F_CONSTRAINT], "additionalProperties");
    assert_string_equal(f->s[EG_F_MESSAGE], "is not allowed");
    assert_null(f->value); /* containers are not echoed */

    f = field(e, "/data/email");
    assert_string_equal(f->s[EG_F_FIELD], "email");
    assert_string_equal(f->s[EG_F_CONSTRAINT], "required");
    assert_string_equal(f->s[EG_F_MESSAGE], "is required");
    assert_null(f->value);
    eg_error_free(e);

    /* max bounds the field errors, count stays true */
    e = eg_error_new();
    rep = (eg_schema_report_t){e, "", "payload", 2, 0};
    assert_int_equal(eg_schema_validate(s, &jd, NULL, &rep), EG_ERANGE);
    assert_int_equal(rep.count, 6);
    assert_int_equal(e->nfields, 2);
    eg_error_free(e);

    /* no error object: stop at the first, count 1 */
    rep = (eg_schema_report_t){NULL, "", NULL, 10, 0};
    assert_int_equal(eg_schema_validate(s, &jd, NULL, &rep), EG_ERANGE);
    assert_int_equal(rep.count, 1);
    eg_jr_free(&jd);

    /* the root is field_root, or "body"; type messages */
    assert_int_equal(eg_jr_parse(&jd, "[]", 2), 0);
    e = eg_error_new();
    rep = (eg_schema_report_t){e, "", NULL, 10, 0};
    assert_int_equal(eg_schema_validate(s, &jd, NULL, &rep), EG_ERANGE);
    assert_int_equal(e->nfields, 1);
    assert_string_equal(e->fields[0].s[EG_F_FIELD], "body");
    assert_string_equal(e->fields[0].s[EG_F_POINTER], "");
    assert_string_equal(e->fields[0].s[EG_F_MESSAGE], "must be an object");
    assert_json(e->fields[0].extra, "{\"type\":\"object\"}");
    eg_error_free(e);
    e = eg_error_new();
    rep = (eg_schema_report_t){e, "", "q", 10, 0};
    assert_int_equal(eg_schema_validate(s, &jd, NULL, &rep), EG_ERANGE);
    assert_string_equal(e->fields[0].s[EG_F_FIELD], "q");
    eg_error_free(e);
    eg_jr_free(&jd);
    eg_schema_free(s);
    eg_ydoc_free(doc);

    /* a multi-type message and a format's */
    e = eg_error_new();
    assert_int_equal(check("{\"type\":[\"string\",\"integer\",\"null\"]}", "1.5", NULL, e, 5, NULL),
                     EG_ERANGE);
    assert_string_equal(e->fields[0].s[EG_F_MESSAGE], "must be a string, an integer or null");
    assert_json(e->fields[0].extra, "{\"type\":[\"string\",\"integer\",\"null\"]}");
    eg_error_free(e);
    e = eg_error_new();
    assert_int_equal(check("{\"format\":\"uuid\"}", "\"x\"", NULL, e, 5, NULL), EG_ERANGE);
    assert_string_equal(e->fields[0].s[EG_F_CONSTRAINT], "format");
    assert_string_equal(e->fields[0].s[EG_F_MESSAGE], "must be a valid UUID");
    assert_json(e->fields[0].extra, "{\"format\":\"uuid\"}");
    eg_error_free(e);
}

/* A loader over named in-memory JSON documents. */
typedef struct {
    const char *names[4], *texts[4];
    eg_ydoc_t *docs[4];
    int loads;
} mem_loader_t;

static int mem_load(void *ctx, const char *path, const eg_ydoc_t **doc, char *err, size_t errlen)
{
    mem_loader_t *m = ctx;
    for (int i = 0; i < 4 && m->names[i]; i++) {
        if (strcmp(m->names[i], path)) continue;
        m->loads++;
        if (!m->docs[i]) {
            int rc = eg_ydoc_parse_json(m->texts[i], strlen(m->texts[i]), path, &m->docs[i], err,
                                        errlen);
            if (rc) return rc;
        }
        *doc = m->docs[i];
        return EG_OK;
    }
    snprintf(err, errlen, "%s: no such file", path);
    return EG_EIO;
}

static void test_ref_files(void **state)
{
    (void)state;
    mem_loader_t m = {{"dir/common.json", "dir/sub/other.json"},
                      {"{\"$defs\":{\"Pet\":{\"type\":\"object\",\"required\":[\"name\"],"
                       "\"properties\":{\"tag\":{\"$ref\":\"sub/other.json#/Tag\"}}}}}",
                       "{\"Tag\":{\"type\":\"string\",\"maxLength\":3}}"},
                      {NULL},
                      0};
    eg_schema_opts_t opts = {.load = mem_load, .load_ctx = &m};
    const char *text = "{\"type\":\"array\",\"items\":{\"$ref\":\"common.json#/$defs/Pet\"},"
                       "\"contains\":{\"$ref\":\"common.json#/$defs/Pet\"}}";
    eg_ydoc_t *doc = NULL;
    char err[256];
    assert_int_equal(
        eg_ydoc_parse_json(text, strlen(text), "dir/main.json", &doc, err, sizeof(err)), 0);
    eg_schema_t *s = NULL;
    assert_int_equal(eg_schema_compile(doc, NULL, &opts, &s, err, sizeof(err)), EG_OK);
    assert_int_equal(m.loads, 2); /* common.json once, then other.json relative to it */
    eg_ydoc_free(doc);            /* the schema does not point into its document */
    const char *inst = "[{\"name\":\"a\",\"tag\":\"abcd\"},{}]";
    eg_jr_doc_t jd;
    assert_int_equal(eg_jr_parse(&jd, inst, strlen(inst)), 0);
    eg_error_t *e = eg_error_new();
    eg_schema_report_t rep = {e, "", NULL, 10, 0};
    assert_int_equal(eg_schema_validate(s, &jd, NULL, &rep), EG_ERANGE);
    assert_int_equal(rep.count, 3); /* neither item is a Pet: contains fails too */
    assert_string_equal(field(e, "")->s[EG_F_CONSTRAINT], "contains");
    assert_string_equal(field(e, "/0/tag")->s[EG_F_CONSTRAINT], "maxLength");
    assert_string_equal(field(e, "/1/name")->s[EG_F_CONSTRAINT], "required");
    eg_error_free(e);
    eg_jr_free(&jd);
    assert_int_equal(eg_schema_types(s), EG_ST_ARRAY);
    assert_int_equal(eg_schema_item_types(s), EG_ST_OBJECT);
    eg_schema_free(s);
    for (int i = 0; i < 4; i++)
        eg_ydoc_free(m.docs[i]);

    /* no loader, a missing file */
    assert_int_equal(
        eg_ydoc_parse_json(text, strlen(text), "dir/main.json", &doc, err, sizeof(err)), 0);
    assert_int_equal(eg_schema_compile(doc, NULL, NULL, &s, err, sizeof(err)), EG_EPARSE);
    assert_string_equal(err,
                        "dir/main.json:1:33: $ref to another file ('common.json') needs a loader");
    mem_loader_t none = {{NULL}, {NULL}, {NULL}, 0};
    opts.load_ctx = &none;
    assert_int_equal(eg_schema_compile(doc, NULL, &opts, &s, err, sizeof(err)), EG_EPARSE);
    assert_string_equal(err,
                        "dir/main.json:1:33: $ref 'common.json': dir/common.json: no such file");
    eg_ydoc_free(doc);
}

/* Compiles YAML or JSON text expecting a refusal with this exact message. */
static void refused(const char *text, int json, const char *want, int oas30)
{
    eg_ydoc_t *doc = NULL;
    eg_schema_t *s = NULL;
    char err[512];
    int rc = json ? eg_ydoc_parse_json(text, strlen(text), "b.json", &doc, err, sizeof(err))
                  : eg_ydoc_parse(text, strlen(text), "b.yaml", &doc, err, sizeof(err));
    assert_int_equal(rc, EG_OK);
    eg_schema_opts_t opts = {.openapi30 = oas30};
    rc = eg_schema_compile(doc, NULL, &opts, &s, err, sizeof(err));
    if (rc != EG_EPARSE) fail_msg("%s: compiled (rc %d), want '%s'", text, rc, want);
    if (strcmp(err, want)) fail_msg("%s: '%s', want '%s'", text, err, want);
    eg_ydoc_free(doc);
}

static void test_refused(void **state)
{
    (void)state;
    refused("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}}}", 1,
            "b.json:1:15: $ref cycle: this schema refers back to itself without checking any value "
            "in between",
            0);
    refused("{\"allOf\":[{\"$ref\":\"#\"}]}", 1,
            "b.json:1:1: $ref cycle: this schema refers back to itself without checking any value "
            "in between",
            0);
    refused("{\"$ref\":\"#/$defs/nope\"}", 1,
            "b.json:1:9: $ref target '#/$defs/nope' does not exist", 0);
    refused("{\"$ref\":\"#anchor\"}", 1,
            "b.json:1:9: $ref '#anchor': only JSON pointer fragments are supported, not anchors",
            0);
    refused("{\"$ref\":\"http://x/y.json\"}", 1,
            "b.json:1:9: $ref 'http://x/y.json': remote references are not supported", 0);
    refused("type: object\nproperties:\n  a:\n    type: strng\n", 0,
            "b.yaml:4:11: unknown type 'strng'", 0);
    refused("properties:\n  a:\n    minimum: '1'\n", 0, "b.yaml:3:14: 'minimum' must be a number",
            0);
    refused("maxLength: -1\n", 0, "b.yaml:1:12: 'maxLength' must be a non-negative integer", 0);
    refused("maxLength: 1.5\n", 0, "b.yaml:1:12: 'maxLength' must be a non-negative integer", 0);
    refused("required: a\n", 0, "b.yaml:1:11: 'required' must be an array of strings", 0);
    refused("required: [a, a]\n", 0, "b.yaml:1:15: 'required' lists 'a' twice", 0);
    refused("properties: []\n", 0, "b.yaml:1:13: 'properties' must be an object", 0);
    refused("pattern: '(a'\n", 0,
            "b.yaml:1:10: invalid pattern '(a': missing closing parenthesis at offset 2", 0);
    refused("format: colour\n", 0, "b.yaml:1:9: unknown format 'colour'", 0);
    refused("multipleOf: 0\n", 0, "b.yaml:1:13: 'multipleOf' must be greater than 0", 0);
    refused("allOf: []\n", 0, "b.yaml:1:8: 'allOf' must be a non-empty array of schemas", 0);
    refused("items: [{}]\n", 0, "b.yaml:1:8: 'items' must be a schema (use prefixItems for tuples)",
            0);
    refused("uniqueItems: 1\n", 0, "b.yaml:1:14: 'uniqueItems' must be true or false", 0);
    refused("not: 3\n", 0, "b.yaml:1:6: a schema must be an object or a boolean", 0);
    refused("nullable: yes\n", 0, "b.yaml:1:11: 'nullable' must be true or false", 1);
    refused("{\"type\":\n\n   \"x\"}", 1, "b.json:3:4: unknown type 'x'", 0);
    refused("dependentRequired: {a: b}\n", 0,
            "b.yaml:1:24: 'dependentRequired' values must be arrays of strings", 0);
    refused("dependentSchemas: []\n", 0, "b.yaml:1:19: 'dependentSchemas' must be an object", 0);
    refused("contains: {}\nminContains: -1\n", 0,
            "b.yaml:2:14: 'minContains' must be a non-negative integer", 0);
    refused("{\"if\":{\"$ref\":\"#\"}}", 1,
            "b.json:1:1: $ref cycle: this schema refers back to itself without checking any value "
            "in between",
            0);
}

static void collect(void *ctx, const char *msg)
{
    char *buf = ctx;
    strncat(buf, msg, 1023 - strlen(buf));
    strncat(buf, "\n", 1023 - strlen(buf));
}

static void test_warnings(void **state)
{
    (void)state;
    const char *text =
        "title: t\nx-internal: 1\ntype: object\nunevaluatedProperties: false\n"
        "properties:\n  a:\n    contains: {}\n    description: d\n    nullable: true\n    "
        "$dynamicRef: '#x'\n";
    eg_ydoc_t *doc = NULL;
    eg_schema_t *s = NULL;
    char err[256], warns[1024] = "";
    assert_int_equal(eg_ydoc_parse(text, strlen(text), "w.yaml", &doc, err, sizeof(err)), EG_OK);
    eg_schema_opts_t opts = {.warn = collect, .warn_ctx = warns};
    assert_int_equal(eg_schema_compile(doc, NULL, &opts, &s, err, sizeof(err)), EG_OK);
    assert_string_equal(
        warns, "w.yaml:4:1: keyword 'unevaluatedProperties' is not supported and is ignored\n"
               "w.yaml:9:5: keyword 'nullable' is not supported and is ignored\n"
               "w.yaml:10:5: keyword '$dynamicRef' is not supported and is ignored\n");
    eg_schema_free(s);
    /* OpenAPI 3.0 knows nullable, not contains */
    warns[0] = '\0';
    opts.openapi30 = 1;
    assert_int_equal(eg_schema_compile(doc, NULL, &opts, &s, err, sizeof(err)), EG_OK);
    assert_string_equal(
        warns, "w.yaml:4:1: keyword 'unevaluatedProperties' is not supported and is ignored\n"
               "w.yaml:7:5: keyword 'contains' is not supported and is ignored\n"
               "w.yaml:10:5: keyword '$dynamicRef' is not supported and is ignored\n");
    eg_schema_free(s);
    eg_ydoc_free(doc);
}

static void test_types(void **state)
{
    (void)state;
    static const struct {
        const char *schema;
        unsigned types, items;
    } k[] = {
        {"{\"type\":\"integer\"}", EG_ST_INTEGER, 0},
        {"{\"type\":[\"string\",\"null\"]}", EG_ST_STRING | EG_ST_NULL, 0},
        {"{\"enum\":[1,2]}", EG_ST_INTEGER, 0},
        {"{\"enum\":[\"a\",1.5]}", EG_ST_STRING | EG_ST_NUMBER, 0},
        {"{\"type\":\"array\",\"items\":{\"type\":\"boolean\"}}", EG_ST_ARRAY, EG_ST_BOOLEAN},
        {"{\"minimum\":1}", 0, 0},
        {"{\"$defs\":{\"a\":{\"type\":\"number\"}},\"$ref\":\"#/$defs/a\"}", EG_ST_NUMBER, 0},
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        eg_ydoc_t *doc = NULL;
        eg_schema_t *s = compile(k[i].schema, NULL, &doc);
        assert_int_equal(eg_schema_types(s), k[i].types);
        assert_int_equal(eg_schema_item_types(s), k[i].items);
        eg_schema_free(s);
        eg_ydoc_free(doc);
    }
}

static void test_limits(void **state)
{
    (void)state;
    /* a recursive schema over an instance deeper than the cap: a problem, no crash */
    enum { DEEP = 400 };
    char *inst = malloc(2 * DEEP + 1);
    assert_non_null(inst);
    for (int i = 0; i < DEEP; i++)
        inst[i] = '[', inst[2 * DEEP - 1 - i] = ']';
    inst[2 * DEEP] = '\0';
    eg_error_t *e = eg_error_new();
    assert_int_equal(check("{\"items\":{\"$ref\":\"#\"}}", inst, NULL, e, 5, NULL), EG_ERANGE);
    assert_string_equal(e->fields[0].s[EG_F_CONSTRAINT], "depth");
    eg_error_free(e);
    free(inst);

    /* a pathological pattern stops at the match limit and fails its value */
    e = eg_error_new();
    assert_int_equal(check("{\"pattern\":\"^(a+)+$\"}",
                           "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"", NULL, e, 5, NULL),
                     EG_ERANGE);
    assert_string_equal(e->fields[0].s[EG_F_CONSTRAINT], "pattern");
    assert_non_null(strstr(e->fields[0].s[EG_F_MESSAGE], "match limit"));
    eg_error_free(e);
}

static void test_unique_long(void **state)
{
    (void)state;
    /* more than 16 scalars: sorted, with 1 == 1.0 and "b" == "\u0062" */
    eg_error_t *e = eg_error_new();
    assert_int_equal(
        check("{\"uniqueItems\":true}",
              "[\"b\",0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,null,true,false,\"a\",1.0]", NULL, e,
              5, NULL),
        EG_ERANGE);
    assert_string_equal(e->fields[0].s[EG_F_CONSTRAINT], "uniqueItems");
    assert_json(e->fields[0].extra, "{\"duplicates\":[2,22]}");
    eg_error_free(e);
    assert_int_equal(
        check("{\"uniqueItems\":true}",
              "[\"b\",0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,null,true,false,\"a\",1.5,"
              "\"\\u0062\"]",
              NULL, NULL, 0, NULL),
        EG_ERANGE);
    assert_int_equal(
        check("{\"uniqueItems\":true}",
              "[\"b\",0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,null,true,false,\"a\",1.5]", NULL,
              NULL, 0, NULL),
        EG_OK);
}

/* more than 16 containers: hashed, then only equal hashes compared */
static void test_unique_containers(void **state)
{
    (void)state;
    char inst[2048];
    size_t o = (size_t)snprintf(inst, sizeof(inst), "[");
    for (int i = 0; i < 20; i++)
        o +=
            (size_t)snprintf(inst + o, sizeof(inst) - o, "{\"a\":%d,\"b\":[%d,\"x%d\"]},", i, i, i);
    snprintf(inst + o, sizeof(inst) - o, "{\"b\":[3,\"\\u0078\\u0033\"],\"a\":3.0}]");
    eg_error_t *e = eg_error_new();
    assert_int_equal(check("{\"uniqueItems\":true}", inst, NULL, e, 5, NULL), EG_ERANGE);
    assert_json(e->fields[0].extra, "{\"duplicates\":[3,20]}");
    eg_error_free(e);
    inst[o] = '\0';
    snprintf(inst + o, sizeof(inst) - o, "{\"b\":[3,\"x4\"],\"a\":3}]");
    assert_int_equal(check("{\"uniqueItems\":true}", inst, NULL, NULL, 0, NULL), EG_OK);
}

/* anyOf over anyOf over ... 40 levels: 2^40 evaluations unless bounded */
static void test_budget(void **state)
{
    (void)state;
    char schema[4096];
    size_t o = (size_t)snprintf(schema, sizeof(schema), "{\"$ref\":\"#/$defs/d0\",\"$defs\":{");
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(
            schema + o, sizeof(schema) - o,
            "\"d%d\":{\"anyOf\":[{\"$ref\":\"#/$defs/d%d\"},{\"$ref\":\"#/$defs/d%d\"}]},", i,
            i + 1, i + 1);
    snprintf(schema + o, sizeof(schema) - o, "\"d40\":{\"type\":\"string\"}}}");
    eg_error_t *e = eg_error_new();
    assert_int_equal(check(schema, "1", NULL, e, 5, NULL), EG_ERANGE);
    assert_int_equal(e->nfields, 1);
    assert_string_equal(e->fields[0].s[EG_F_CONSTRAINT], "complexity");
    assert_string_equal(e->fields[0].s[EG_F_MESSAGE],
                        "could not be validated within the work limit");
    eg_error_free(e);
    assert_int_equal(check(schema, "\"s\"", NULL, NULL, 0, NULL), EG_OK); /* first branches pass */
}

static void test_ydoc_json(void **state)
{
    (void)state;
    const char *text =
        "{\n  \"a\": [1, \"x\\u00e9\", true],\n  \"\xc3\xa9t\xc3\xa9\": {\"b\": null}\n}";
    eg_ydoc_t *doc = NULL;
    char err[256];
    assert_int_equal(eg_ydoc_parse_json(text, strlen(text), "t.json", &doc, err, sizeof(err)),
                     EG_OK);
    const eg_ynode_t *r = eg_ydoc_root(doc);
    assert_int_equal(r->kind, EG_Y_MAP);
    assert_int_equal(r->n, 2);
    assert_int_equal(r->line, 1);
    assert_int_equal(r->col, 1);
    const eg_ynode_t *k = r->items[0], *a = r->items[1];
    assert_string_equal(k->str, "a");
    assert_true(k->quoted);
    assert_int_equal(k->line, 2);
    assert_int_equal(k->col, 3);
    assert_int_equal(a->kind, EG_Y_SEQ);
    assert_int_equal(a->col, 8);
    assert_string_equal(a->items[0]->str, "1");
    assert_false(a->items[0]->quoted);
    assert_int_equal(a->items[0]->col, 9);
    assert_string_equal(a->items[1]->str, "x\xc3\xa9");
    assert_true(a->items[1]->quoted);
    assert_int_equal(a->items[1]->col, 12);
    assert_string_equal(a->items[2]->str, "true");
    assert_false(a->items[2]->quoted);
    /* columns count code points: "été" is 3 */
    const eg_ynode_t *b = eg_ymap_get(r, "\xc3\xa9t\xc3\xa9");
    assert_non_null(b);
    assert_int_equal(b->line, 3);
    assert_int_equal(b->col, 10);
    assert_int_equal(eg_ymap_get(b, "b")->col, 16);
    eg_ydoc_free(doc);

    assert_int_equal(
        eg_ydoc_parse_json("{\"a\":1,\n \"a\":2}", 15, "d.json", &doc, err, sizeof(err)),
        EG_EPARSE);
    assert_non_null(strstr(err, "d.json:2:"));
    assert_int_equal(eg_ydoc_parse_json("[1,]", 4, "e.json", &doc, err, sizeof(err)), EG_EPARSE);
    assert_string_equal(err, "e.json:1:4: invalid JSON: unexpected token near ']'");
    /* deeper than a tree is built for */
    char deep[200];
    for (int i = 0; i < 100; i++)
        deep[i] = '[', deep[199 - i] = ']';
    assert_int_equal(eg_ydoc_parse_json(deep, sizeof(deep), "f.json", &doc, err, sizeof(err)),
                     EG_EPARSE);
    assert_string_equal(err, "f.json:1:65: nesting deeper than 64 levels");
}

/* Properties are found through a hash table of their names: names of every length around
 * the 8-byte words it hashes, names alike but for their middle (a collision is only a
 * probe), an escaped key, a key at the very end of the input (hashed byte by byte), and
 * a name that is not declared. Each declared property is checked by a bound only it has. */
static void test_property_lookup(void **state)
{
    (void)state;
    static char schema[64 * 1024], inst[64 * 1024];
    static const char *const names[] = {"a", "ab", "abcdefg", "abcdefgh", "abcdefghi",
                                        "abcdefgh_middle_1_abcdefgh", "abcdefgh_middle_2_abcdefgh",
                                        "", "q1", "q2", "abcdefgh12345678", "abcdefgh87654321",
                                        /* 17 bytes: the ninth is in neither 8-byte word */
                                        "abcdefgh1ijklmnop", "abcdefgh2ijklmnop"};
    const size_t nn = sizeof(names) / sizeof(names[0]);
    size_t o = (size_t)snprintf(schema, sizeof(schema),
                                "{\"type\":\"object\",\"additionalProperties\":false,"
                                "\"properties\":{");
    for (size_t i = 0; i < nn; i++)
        o += (size_t)snprintf(schema + o, sizeof(schema) - o, "%s\"%s\":{\"maximum\":%zu}",
                              i ? "," : "", names[i], i);
    for (int i = 0; i < 300; i++) /* generated names: field_000..field_299 */
        o += (size_t)snprintf(schema + o, sizeof(schema) - o, ",\"field_%03d\":{\"maximum\":%d}", i,
                              i);
    snprintf(schema + o, sizeof(schema) - o, "}}");
    for (size_t i = 0; i < nn; i++) {
        for (int bad = 0; bad < 2; bad++) { /* the value at the bound, then past it */
            snprintf(inst, sizeof(inst), "{\"field_007\":7,\"%s\":%zu}", names[i], i + (size_t)bad);
            if (check(schema, inst, NULL, NULL, 0, NULL) != (bad ? EG_ERANGE : EG_OK))
                fail_msg("%s: wrong verdict", inst);
            snprintf(inst, sizeof(inst), "{\"%s\":%zu,\"field_007\":7}", names[i], i + (size_t)bad);
            if (check(schema, inst, NULL, NULL, 0, NULL) != (bad ? EG_ERANGE : EG_OK))
                fail_msg("%s: wrong verdict", inst);
        }
    }
    for (int i = 0; i < 300; i += 37) {
        snprintf(inst, sizeof(inst), "{\"field_%03d\":%d}", i, i);
        assert_int_equal(check(schema, inst, NULL, NULL, 0, NULL), EG_OK);
        snprintf(inst, sizeof(inst), "{\"field_%03d\":%d}", i, i + 1);
        assert_int_equal(check(schema, inst, NULL, NULL, 0, NULL), EG_ERANGE);
    }
    /* escaped: "\u0061b" is "ab" (maximum 1) */
    assert_int_equal(check(schema, "{\"\\u0061b\":1}", NULL, NULL, 0, NULL), EG_OK);
    assert_int_equal(check(schema, "{\"\\u0061b\":2}", NULL, NULL, 0, NULL), EG_ERANGE);
    /* not declared: additionalProperties false refuses it */
    assert_int_equal(check(schema, "{\"abcdefgh_middle_3_abcdefgh\":0}", NULL, NULL, 0, NULL),
                     EG_ERANGE);
    assert_int_equal(check(schema, "{\"field_300\":0}", NULL, NULL, 0, NULL), EG_ERANGE);
    assert_int_equal(check(schema, "{\"abcdefgh3ijklmnop\":0}", NULL, NULL, 0, NULL), EG_ERANGE);
    assert_int_equal(check(schema, "{\"b\":0}", NULL, NULL, 0, NULL), EG_ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keywords),     cmocka_unit_test(test_openapi30),
        cmocka_unit_test(test_field_errors), cmocka_unit_test(test_ref_files),
        cmocka_unit_test(test_refused),      cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_types),        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_ydoc_json),    cmocka_unit_test(test_unique_long),
        cmocka_unit_test(test_budget),       cmocka_unit_test(test_unique_containers),
        cmocka_unit_test(test_property_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
