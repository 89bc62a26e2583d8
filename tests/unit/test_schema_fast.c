/* test_schema_fast.c - the accept-only fast path (schema.h: eg_schema_fast)
 * against the exact one (eg_jr_parse + eg_schema_validate).
 *
 * Its one promise: 1 ("surely valid") only for a text that eg_jr_parse
 * accepts and eg_schema_validate finds valid. Checked on:
 * 1. every case of test_schema.c, run again with eg_schema_validate
 *    replaced by a wrapper that also asks the fast path about the same
 *    text (test_schema.c's own assertions hold as well);
 * 2. written cases: texts the fast path must accept (so it is taken at
 *    all: the request bodies it exists for), and ones it must not (invalid
 *    JSON of every kind jsonr refuses, each keyword failing);
 * 3. random mutations of a valid body (bytes replaced, dropped, doubled):
 *    whenever the fast path says valid, the exact path must agree.
 * eg_schema_fast_token (a parameter's scalar) is asked about every scalar
 * instance of 1. likewise.
 */
#include "testutil.h"

#include "errgate/errgate.h"
#include "jsonr.h"
#include "schema.h"

static int tree_validate(const eg_schema_t *s, const eg_jr_doc_t *doc, const eg_jr_tok_t *tok,
                         eg_schema_report_t *rep)
{
    return eg_schema_validate(s, doc, tok, rep);
}

static size_t nasked, naccepted, ntoken; /* test_schema.c's instances asked, accepted fast,
                                           and scalars accepted by eg_schema_fast_token */

/* eg_schema_validate, and the fast path on the same whole text. */
static int fast_validate(const eg_schema_t *s, const eg_jr_doc_t *doc, const eg_jr_tok_t *tok,
                         eg_schema_report_t *rep)
{
    int rc = tree_validate(s, doc, tok, rep);
    if (tok && tok != doc->toks) return rc; /* a subtree: not a body */
    nasked++;
    if (eg_schema_fast(s, doc->text, doc->len)) {
        naccepted++;
        if (rc != EG_OK)
            fail_msg("%.*s: the fast path accepts it, the exact one answers %d", (int)doc->len,
                     doc->text, rc);
    }
    /* a scalar: the parameters' way in, on the parsed token */
    if (doc->ntoks == 1 && eg_schema_fast_token(s, doc->text, doc->toks)) {
        ntoken++;
        if (rc != EG_OK)
            fail_msg("%.*s: eg_schema_fast_token accepts it, the exact path answers %d",
                     (int)doc->len, doc->text, rc);
    }
    return rc;
}

#define eg_schema_validate fast_validate
#define main               test_schema_main
int test_schema_main(void);
#include "test_schema.c"
#undef main
#undef eg_schema_validate

static size_t nasked_schema, naccepted_schema, ntoken_schema;

static void test_schema_cases_fast(void **state)
{
    (void)state;
    /* test_schema.c's cases did go through it, and it took many of the valid ones */
    assert_true(nasked_schema > 200);
    assert_true(naccepted_schema > 50);
    assert_true(ntoken_schema > 20);
}

static eg_schema_t *compile_text(const char *text, eg_ydoc_t **doc)
{
    char err[512] = "";
    assert_int_equal(eg_ydoc_parse_json(text, strlen(text), "s.json", doc, err, sizeof(err)),
                     EG_OK);
    eg_schema_t *s = NULL;
    if (eg_schema_compile(*doc, NULL, NULL, &s, err, sizeof(err)))
        fail_msg("%s does not compile: %s", text, err);
    return s;
}

/* The exact verdict: EG_OK, EG_ERANGE, or EG_EPARSE for invalid JSON. */
static int exact(const eg_schema_t *s, const char *text, size_t len)
{
    eg_jr_doc_t d;
    int rc = eg_jr_parse(&d, text, len);
    if (rc == EG_OK) {
        eg_schema_report_t rep = {NULL, "", NULL, 0, 0};
        rc = tree_validate(s, &d, NULL, &rep);
    }
    eg_jr_free(&d);
    return rc;
}

typedef struct {
    const char *schema, *instance;
    int fast; /* what eg_schema_fast must answer */
} fcase_t;

static void run_fast(const fcase_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        eg_ydoc_t *doc = NULL;
        eg_schema_t *s = compile_text(k[i].schema, &doc);
        size_t len = strlen(k[i].instance);
        int f = eg_schema_fast(s, k[i].instance, len), x = exact(s, k[i].instance, len);
        if (f != k[i].fast)
            fail_msg("%s against %s: fast %d, want %d", k[i].instance, k[i].schema, f, k[i].fast);
        /* the cases written as accepted are valid, by the exact path too */
        if (f && x != EG_OK) fail_msg("%s against %s: exact %d", k[i].instance, k[i].schema, x);
        eg_schema_free(s);
        eg_ydoc_free(doc);
    }
}

#define ORDER                                                                                      \
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"id\",\"qty\"],"           \
    "\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"                            \
    "\"qty\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},"                                 \
    "\"price\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"multipleOf\":0.01},"                  \
    "\"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\"},"                                   \
    "\"name\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":4},"                              \
    "\"kind\":{\"enum\":[\"a\",\"b\",1,null]},"                                                    \
    "\"tags\":{\"type\":\"array\",\"uniqueItems\":true,\"maxItems\":3,"                            \
    "\"items\":{\"type\":\"string\"}},"                                                            \
    "\"meta\":{\"type\":\"object\"},"                                                              \
    "\"ok\":{\"type\":\"boolean\"}}}"
#define OK_ID "\"id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\""

static void test_accepted(void **state)
{
    (void)state;
    static const fcase_t k[] = {
        {ORDER, "{" OK_ID ",\"qty\":3}", 1},
        {ORDER, " {\n\t" OK_ID " , \"qty\" : 3 }\r\n", 1},
        {ORDER, "{" OK_ID ",\"qty\":3,\"price\":149.97,\"code\":\"ABC\",\"name\":\"Jo\"}", 1},
        {ORDER, "{" OK_ID ",\"qty\":3.0}", 1}, /* an integer-valued real is an integer */
        {ORDER, "{" OK_ID ",\"qty\":1e1}", 1}, /* 10 */
        {ORDER, "{" OK_ID ",\"qty\":3,\"name\":\"\\u00e9t\\u00e9\"}",
         1}, /* escaped, 4 code points */
        {ORDER, "{" OK_ID ",\"qty\":3,\"name\":\"été\"}", 1},
        {ORDER, "{" OK_ID ",\"qty\":3,\"kind\":\"b\"}", 1},
        {ORDER, "{" OK_ID ",\"qty\":3,\"code\":\"A\\u0042C\"}", 1}, /* "ABC" once unescaped */
        {ORDER, "{" OK_ID ",\"qty\":3,\"kind\":1.0}", 1},
        {ORDER, "{" OK_ID ",\"qty\":3,\"kind\":null}", 1},
        {ORDER, "{" OK_ID ",\"qty\":3,\"tags\":[\"a\",\"b\",\"c\"]}", 1},
        {ORDER, "{" OK_ID ",\"qty\":3,\"tags\":[]}", 1},
        {ORDER,
         "{" OK_ID
         ",\"qty\":3,\"meta\":{\"a\":[1,{\"b\":\"\\n\"}],\"a2\":null,\"c\":{}},\"ok\":true}",
         1},
        {"{\"$defs\":{\"p\":{\"type\":\"integer\"},\"q\":{\"$ref\":\"#/$defs/p\"}},"
         "\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/q\"}}",
         "[1,2,3]", 1},
        {"{\"prefixItems\":[{\"type\":\"string\"}],\"items\":{\"type\":\"integer\"}}",
         "[\"a\",1,2]", 1},
        {"{\"additionalProperties\":{\"type\":\"integer\"},\"minProperties\":2}",
         "{\"x\":1,\"y\":2}", 1},
        {"{\"required\":[\"z\"]}", "{\"z\":0}", 1},
        {"true", "[1,{\"a\":\"b\"},\"\\ud83d\\ude00\",-0,1.5e-3]", 1},
        {"{\"enum\":[\"AD\",\"AE\",\"AF\",\"AG\",\"AI\",\"AL\",\"AM\",\"AO\",\"AQ\",\"AR\"]}",
         "\"AQ\"", 1},
        {"{\"const\":\"x\"}", "\"x\"", 1},
        /* numbers inline and by eg_jr_number, to jsonr's values */
        {"{\"items\":{\"type\":\"integer\"}}",
         "[9223372036854775807,-9223372036854775808,123456789012345678,-0,-0.0,1E2,2.50e1]", 1},
        /* integer-valued reals on both sides of 2^52 */
        {"{\"items\":{\"type\":\"integer\"}}",
         "[4503599627370496.0,4503599627370495.0,1e300,-1e300,-2.0,123456789.000,-0.0]", 1},
        {"{\"items\":{\"type\":\"number\",\"maximum\":0.30000000000000004}}",
         "[0.1,0.30000000000000004,1e-400,-1.5]", 1},
        {"{\"items\":{\"enum\":[0.1,2,-3.25]}}", "[0.1,2.0,-3.25,2e0]", 1},
        {"{\"type\":\"string\",\"format\":\"date-time\"}", "\"2024-01-15T12:34:56Z\"", 1},
    };
    run_fast(k, sizeof(k) / sizeof(k[0]));
}

static void test_not_sure(void **state)
{
    (void)state;
    static const fcase_t k[] = {
        /* invalid JSON, each kind jsonr refuses */
        {ORDER, "", 0},
        {ORDER, " ", 0},
        {ORDER, "{" OK_ID ",\"qty\":3", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3} x", 0},
        {ORDER, "{" OK_ID ",\"qty\":03}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3.}", 0},
        {ORDER, "{" OK_ID ",\"qty\":-}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3e}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"qty\":3}", 0},                  /* a duplicate, declared */
        {ORDER, "{" OK_ID ",\"qty\":3,\"meta\":{\"a\":1,\"a\":1}}", 0}, /* undeclared */
        {"true", "{\"a\":1,\"b\":{\"a\":1},\"a\":2}", 0},
        {"true", "{\"a\\u0062\":1,\"ab\":2}", 0}, /* the same key, escaped */
        {"true", "[\"\\x\"]", 0},
        {"true", "[\"\\ud800\"]", 0}, /* a lone surrogate */
        {"true", "[\"\\u0000\"]", 0},
        {"true", "[\"a\tb\"]", 0},         /* a raw control character */
        {"true", "[\"\xc3\"]", 0},         /* truncated UTF-8 */
        {"true", "[\"\xed\xa0\x80\"]", 0}, /* an encoded surrogate */
        {"true", "[tru]", 0},
        {"true", "[truex]", 0},
        {"true", "[1 2]", 0},
        {"true", "[1]]", 0},
        {"true", "[99999999999999999999]", 0}, /* over long long: jsonr refuses it */
        {"true", "[1e999]", 0},
        {"true", "[9223372036854775808]", 0},
        {"{\"items\":{\"type\":\"number\",\"maximum\":0.3}}", "[0.30000000000000004]", 0},
        {"{\"items\":{\"type\":\"integer\"}}", "[1.0000000000000002]", 0},
        {"{\"items\":{\"type\":\"integer\"}}", "[4503599627370495.5]", 0},
        {"{\"items\":{\"type\":\"integer\"}}", "[-2.5]", 0},
        {"{\"items\":{\"type\":\"integer\"}}", "[1e-300]", 0},
        {"true", "[+1]", 0},
        {"true", "[.5]", 0},
        {"true", "{'a':1}", 0},
        {"true", "{\"a\" 1}", 0},
        /* valid JSON, invalid by the schema: every keyword */
        {ORDER, "[]", 0},
        {ORDER, "{\"qty\":3}", 0},
        {ORDER, "{" OK_ID "}", 0},
        {ORDER, "{" OK_ID ",\"qty\":0}", 0},
        {ORDER, "{" OK_ID ",\"qty\":11}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3.5}", 0},
        {ORDER, "{" OK_ID ",\"qty\":\"3\"}", 0},
        {ORDER, "{\"id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae\",\"qty\":3}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"price\":0}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"price\":1.005}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"code\":\"ABCD\"}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"name\":\"J\"}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"name\":\"Jones\"}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"kind\":\"c\"}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"kind\":true}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"tags\":[\"a\",\"a\"]}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"tags\":[\"a\",\"b\",\"c\",\"d\"]}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"tags\":[1]}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"meta\":[]}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"other\":1}", 0},
        {ORDER, "{" OK_ID ",\"qty\":3,\"ok\":null}", 0},
        {"{\"prefixItems\":[{}],\"items\":false}", "[1,2]", 0},
        {"{\"minProperties\":2}", "{\"x\":1}", 0},
        {"{\"maxProperties\":1}", "{\"x\":1,\"y\":2}", 0},
        {"{\"required\":[\"z\"]}", "{\"y\":0}", 0},
        {"{\"const\":\"x\"}", "\"y\"", 0},
        {"{\"minItems\":1}", "[]", 0},
        {"false", "1", 0},
        /* what the fast path leaves to the exact one, valid or not */
        {"{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "1", 0},
        {"{\"allOf\":[{\"type\":\"integer\"}]}", "1", 0},
        {"{\"$defs\":{\"p\":{\"type\":\"integer\"}},\"$ref\":\"#/$defs/p\",\"minimum\":0}", "1", 0},
        {"{\"const\":{\"a\":1}}", "{\"a\":1}", 0},
        {"{\"patternProperties\":{\"^x\":{}}}", "{\"x\":1}", 0},
        {"true", "{\"a\\u0062\":1}", 0}, /* an escaped key */
    };
    run_fast(k, sizeof(k) / sizeof(k[0]));
}

/* A deeper nest than the fast path keeps: left to the exact path. */
static void test_deep(void **state)
{
    (void)state;
    eg_ydoc_t *doc = NULL;
    eg_schema_t *s = compile_text("true", &doc);
    char buf[400];
    /* jansson's lost NUL after a number: valid for the exact path, left to it */
    assert_int_equal(eg_schema_fast(s, "[1\0]", 4), 0);
    assert_int_equal(exact(s, "[1\0]", 4), EG_OK);
    for (int depth = 60; depth <= 70; depth++) {
        memset(buf, '[', (size_t)depth);
        memset(buf + depth, ']', (size_t)depth);
        int f = eg_schema_fast(s, buf, 2 * (size_t)depth);
        assert_int_equal(f, depth <= 64);
        assert_int_equal(exact(s, buf, 2 * (size_t)depth), EG_OK);
    }
    eg_schema_free(s);
    eg_ydoc_free(doc);
}

static uint64_t rng2 = 0x9E3779B97F4A7C15ull;
static uint64_t rand2(void)
{
    rng2 ^= rng2 << 13;
    rng2 ^= rng2 >> 7;
    rng2 ^= rng2 << 17;
    return rng2;
}

/* Mutations of a valid body: fast "valid" always implies exact "valid". */
static void test_mutations(void **state)
{
    (void)state;
    static const char body[] =
        "{\"id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"qty\":3,\"price\":149.97,"
        "\"code\":\"ABC\",\"name\":\"Jo\",\"kind\":\"a\",\"tags\":[\"x\",\"y\"],"
        "\"meta\":{\"k\":[1,2.5,\"s\",null,true,{\"z\":\"\\u00e9\"}]},\"ok\":false}";
    static const char alphabet[] = "{}[]\",:\\ 0123456789.eE+-abtrufnlsxyzu\x01\x80\xc3\xa9\xff";
    eg_ydoc_t *doc = NULL;
    eg_schema_t *s = compile_text(ORDER, &doc);
    size_t n = sizeof(body) - 1;
    assert_int_equal(eg_schema_fast(s, body, n), 1);
    char buf[2 * sizeof(body)];
    size_t accepted = 0, rounds = 40000;
    for (size_t r = 0; r < rounds; r++) {
        memcpy(buf, body, n);
        size_t m = n;
        int edits = 1 + (int)(rand2() % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(rand2() % m);
            switch (rand2() % 4) {
            case 0:
                buf[at] = alphabet[rand2() % (sizeof(alphabet) - 1)];
                break;
            case 1: /* drop a byte */
                memmove(buf + at, buf + at + 1, m - at - 1);
                m--;
                break;
            case 2: { /* double a short run */
                size_t k = 1 + (size_t)(rand2() % 12);
                if (at + k > m || m + k > sizeof(buf)) break;
                memmove(buf + at + k, buf + at, m - at);
                m += k;
                break;
            }
            default: /* a digit or letter nudged */
                buf[at] = (char)(buf[at] ^ (1 << (rand2() % 3)));
                break;
            }
        }
        if (eg_schema_fast(s, buf, m)) {
            accepted++;
            if (exact(s, buf, m) != EG_OK)
                fail_msg("the fast path accepts %.*s, the exact one does not", (int)m, buf);
        }
    }
    /* some mutations stay valid (a digit of 149.97, a letter of a free string) */
    assert_true(accepted > 100);
    eg_schema_free(s);
    eg_ydoc_free(doc);
}

/* The order fixture of the other schema tests, with a body it allows. */
static void test_order_fixture(void **state)
{
    (void)state;
    size_t n;
    char *text = tu_read_fixture("schemas/order.json", &n);
    char err[512];
    eg_ydoc_t *doc = NULL;
    eg_schema_t *s = NULL;
    assert_int_equal(eg_ydoc_parse_json(text, n, "order.json", &doc, err, sizeof(err)), EG_OK);
    assert_int_equal(eg_schema_compile(doc, NULL, NULL, &s, err, sizeof(err)), EG_OK);
    static const char *const bad[] = {
        "{}",
        "{\"email\":\"x\",\"items\":[{\"sku\":1},{}],\"num\":150,\"id\":\"nope\"}",
        "[1,2]",
        "\"order\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(eg_schema_fast(s, bad[i], strlen(bad[i])), 0);
        assert_int_equal(exact(s, bad[i], strlen(bad[i])), EG_ERANGE);
    }
    eg_schema_free(s);
    eg_ydoc_free(doc);
    free(text);
}

int main(void)
{
    int rc = test_schema_main();
    nasked_schema = nasked;
    naccepted_schema = naccepted;
    ntoken_schema = ntoken;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_cases_fast), cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_not_sure),          cmocka_unit_test(test_deep),
        cmocka_unit_test(test_mutations),         cmocka_unit_test(test_order_fixture),
    };
    return rc | cmocka_run_group_tests(tests, NULL, NULL);
}
