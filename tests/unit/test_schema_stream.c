/* test_schema_stream.c - the streaming validator (schema.h: eg_sv_*) against
 * the tree one (eg_jr_parse + eg_schema_validate), differentially.
 *
 * 1. Every case of test_schema.c, run again with eg_schema_validate
 *    replaced by a wrapper that also streams the same instance (whole, one
 *    byte at a time, and cut at random places) and asserts the same
 *    verdict, count and field errors (pointer, field, constraint, message,
 *    value, extra) in the same order. test_schema.c's own assertions hold
 *    as well, so the expected values stay the ones written there.
 * 2. JSON syntax: documents valid and invalid, each fed whole, byte by byte
 *    and in random splits: the same verdict, position, line and column as
 *    eg_jr_parse, and for some, the values written here.
 * 3. The order fixture and bodies of our own under a schema that mixes
 *    streamed and captured containers.
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

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Streams text into a new validator with cuts chosen by `how`: 0 whole,
 * 1 byte by byte, 2 random. */
static int stream(const eg_schema_t *s, const char *text, size_t len, int how,
                  eg_schema_report_t *rep, long *pos, int *line, int *col)
{
    eg_sv_t *v = NULL;
    assert_int_equal(eg_sv_new(s, rep, &v), EG_OK);
    size_t i = 0;
    while (i < len) {
        size_t k = how == 0 ? len - i : how == 1 ? 1 : 1 + next_rand() % 17;
        if (how == 2 && next_rand() % 8 == 0) k = 0; /* empty chunks too */
        if (k > len - i) k = len - i;
        int r = eg_sv_feed(v, text + i, k);
        if (r != EG_OK && r != EG_EPARSE) fail_msg("feed: %d", r);
        i += k;
    }
    int rc = eg_sv_finish(v);
    if (rc == EG_EPARSE) eg_sv_error(v, pos, line, col);
    eg_sv_free(v);
    return rc;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_json(const json_t *a, const json_t *b)
{
    return (!a && !b) || (a && b && json_equal(a, b));
}

static void same_fields(const eg_error_t *a, const eg_error_t *b, const char *what)
{
    if (a->nfields != b->nfields)
        fail_msg("%s: %zu field errors streamed, %zu on the tape", what, b->nfields, a->nfields);
    for (size_t i = 0; i < a->nfields; i++) {
        const eg_field_error_t *x = &a->fields[i], *y = &b->fields[i];
        for (int k = 0; k < EG_F__COUNT; k++)
            if (!same_str(x->s[k], y->s[k]))
                fail_msg("%s: field error %zu member %d: streamed '%s', tape '%s'", what, i, k,
                         y->s[k] ? y->s[k] : "(null)", x->s[k] ? x->s[k] : "(null)");
        if (!same_json(x->value, y->value)) fail_msg("%s: field error %zu: value differs", what, i);
        if (!same_json(x->extra, y->extra)) fail_msg("%s: field error %zu: extra differs", what, i);
    }
}

static size_t ndiff; /* instances compared */

/* eg_schema_validate, and the same instance streamed three ways. */
static int diff_validate(const eg_schema_t *s, const eg_jr_doc_t *doc, const eg_jr_tok_t *tok,
                         eg_schema_report_t *rep)
{
    int rc = tree_validate(s, doc, tok, rep);
    if (tok && tok != doc->toks) return rc; /* a subtree: not a body */
    if (rep->e)
        for (size_t i = 0; i < rep->e->nfields; i++)
            if (rep->e->fields[i].s[EG_F_CONSTRAINT] &&
                strcmp(rep->e->fields[i].s[EG_F_CONSTRAINT], "complexity") == 0)
                return rc; /* the budget counts the tokens read so far: stricter */
    for (int how = 0; how < 3; how++) {
        eg_error_t *e = rep->e ? eg_error_new() : NULL;
        eg_error_t *t = rep->e ? eg_error_new() : NULL;
        eg_schema_report_t r1 = {t, rep->prefix, rep->field_root, rep->max, 0};
        eg_schema_report_t r2 = {e, rep->prefix, rep->field_root, rep->max, 0};
        int trc = tree_validate(s, doc, tok, &r1);
        long pos;
        int line, col;
        int src = stream(s, doc->text, doc->len, how, &r2, &pos, &line, &col);
        if (src != trc)
            fail_msg("%.*s: streamed (%d) rc %d, tape %d", (int)doc->len, doc->text, how, src, trc);
        if (e) {
            if (r1.count != r2.count)
                fail_msg("%.*s: streamed count %zu, tape %zu", (int)doc->len, doc->text, r2.count,
                         r1.count);
            same_fields(t, e, doc->text);
        }
        eg_error_free(e);
        eg_error_free(t);
    }
    ndiff++;
    return rc;
}

#define eg_schema_validate diff_validate
#define main               test_schema_main
int test_schema_main(void);
#include "test_schema.c"
#undef main
#undef eg_schema_validate

static size_t ndiff_schema; /* what test_schema.c's cases compared, run first */

static void test_schema_cases_streamed(void **state)
{
    (void)state;
    assert_true(ndiff_schema > 200); /* its cases did go through both */
}

/* ---- syntax ---- */

static void syntax_one(const char *text, size_t len)
{
    eg_jr_doc_t d;
    int jrc = eg_jr_parse(&d, text, len);
    for (int how = 0; how < 3; how++) {
        for (int rep = 0; rep < (how == 2 ? 4 : 1); rep++) {
            long pos = -1;
            int line = -1, col = -1;
            int rc = stream(NULL, text, len, how, NULL, &pos, &line, &col);
            if (rc != (jrc ? EG_EPARSE : EG_OK))
                fail_msg("'%.*s' (%d): streamed rc %d, jsonr %d", (int)len, text, how, rc, jrc);
            if (jrc && (pos != d.position || line != d.line || col != d.column))
                fail_msg("'%.*s' (%d): streamed at %ld %d:%d, jsonr at %ld %d:%d", (int)len, text,
                         how, pos, line, col, d.position, d.line, d.column);
        }
    }
    /* and cut in two at every place */
    for (size_t k = 1; len <= 400 && k < len; k++) {
        eg_sv_t *v = NULL;
        assert_int_equal(eg_sv_new(NULL, NULL, &v), EG_OK);
        eg_sv_feed(v, text, k);
        eg_sv_feed(v, text + k, len - k);
        int rc = eg_sv_finish(v);
        if (rc != (jrc ? EG_EPARSE : EG_OK))
            fail_msg("'%.*s' cut at %zu: streamed rc %d, jsonr %d", (int)len, text, k, rc, jrc);
        if (jrc) {
            long pos;
            int line, col;
            eg_sv_error(v, &pos, &line, &col);
            if (pos != d.position || line != d.line || col != d.column)
                fail_msg("'%.*s' cut at %zu: streamed at %ld %d:%d, jsonr at %ld %d:%d", (int)len,
                         text, k, pos, line, col, d.position, d.line, d.column);
        }
        eg_sv_free(v);
    }
    eg_jr_free(&d);
}

#define SYN(lit) syntax_one(lit, sizeof(lit) - 1)

static void test_syntax(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "",
        " ",
        "\n\n",
        "{}",
        "[]",
        "{ }",
        "[ ]",
        "1",
        "-0",
        "0",
        "01",
        "-",
        "-a",
        "1.",
        "1.5",
        "1.5e",
        "1e+",
        "1e-5",
        "1E5",
        "1.5.3",
        "1-2",
        "00",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "1e400",
        "1e-400",
        "123456789012345678901234567890.5",
        "true",
        "tru",
        "truex",
        "false",
        "fals",
        "nul",
        "null ",
        "nulll",
        "[true,false,null]",
        "[tru]",
        "\"abc\"",
        "\"abc",
        "\"a\\\"b\"",
        "\"\\u00e9\"",
        "\"\\u0000\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"\\ude00\"",
        "\"\\ud83dx\"",
        "\"\\uzzzz\"",
        "\"\\x\"",
        "\"\t\"",
        "\"é\"",
        "\"\xc3\"",
        "\"\xc3\x28\"",
        "\"\xe2\x82\xac\"",
        "\"\xf0\x9f\x98\x80\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\xc3\xa9",
        "{\"a\":1}",
        "{\"a\":1,\"a\":2}",
        "{\"a\":1,\"b\":{\"a\":1},\"a\":2}",
        "{\"a\" 1}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\"}",
        "{1:2}",
        "[1,]",
        "[,1]",
        "[1 2]",
        "[1,2",
        "{\"a\":1",
        "{\"a\":[1,{\"b\":null}]}",
        "[1]x",
        "[1] [2]",
        "{\"email\": }",
        "{\n  \"a\": 1,\n  \"b\": tru\n}",
        "{\n\t\"é\": \"ü\",\n  \"x\": @\n}",
        "[\"\xe2\x82\xac\xe2\x82\xac\", x]",
        "\r\n[1,\r\n 2,\r\n ?]",
        "[1\0]",
        "1\0",
        "1\0\0",
        "[true\0,false]",
        "[1\0 ,\0 2]",
        "[\"a\"\0]",
        "{\"\\u00e9\":1,\"\xc3\xa9\":2}",
        "{\"a\\/b\":1,\"a/b\":2}",
        "[1e5x]",
        "[-]",
        "[--1]",
        "{\"a\":\"b\\",
        "[\"\\u12",
        "[\"\\ud83d\\u",
        "{\"k\":\"v\"}  \n ",
        "{\"k\":\"v\"}  \n x",
        /* the lexer reads a UTF-8 character past the escape that failed */
        "[\"0123456789abcdef\\ud82d \\udaf\xc3\xa9 more text\"]",
        "{\"0123456789abcdef\\ud82d \\u00\xe2\x82\xac x\":1}",
        ("[\"a\\u0\xf0\x9f\x98\x80"
         "bcdefgh\"]"),
        "[\"\\\xc3\xa9 after\"]",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
        syntax_one(docs[i], strlen(docs[i]));
    SYN("[1\0]");
    SYN("1\0");
    SYN("1\0\0");
    SYN("[true\0,false]");
    SYN("[1\0 ,\0 2]");
    SYN("\"a\0\"");
    SYN("[1,\0]");
    SYN("{\"a\":null\0}");
    /* large objects: duplicates found at the key (jsonr: when it closes) */
    char big[4096];
    size_t o = 0;
    big[o++] = '{';
    for (int k = 0; k < 40; k++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"key%d\":%d", k ? "," : "", k, k);
    size_t mid = o;
    o += (size_t)snprintf(big + o, sizeof(big) - o, ",\"key7\":1}");
    syntax_one(big, o);
    o = mid + (size_t)snprintf(big + mid, sizeof(big) - mid, ",\"key77\":1}");
    syntax_one(big, o);
    o = mid + (size_t)snprintf(big + mid, sizeof(big) - mid, ",\"key7\":[1,2,x]}");
    syntax_one(big, o);
    /* 2,000 keys whose hashes collide (same length, first and last 8
     * bytes: the property tables' hash), then one of them again */
    static char coll[80000];
    o = 0;
    coll[o++] = '{';
    for (int k = 0; k < 2000; k++)
        o += (size_t)snprintf(coll + o, sizeof(coll) - o, "%s\"aaaaaaaa%06dbbbbbbbb\":%d",
                              k ? "," : "", k, k);
    size_t before = o;
    o += (size_t)snprintf(coll + o, sizeof(coll) - o, ",\"aaaaaaaa%06dbbbbbbbb\":1}", 1234);
    syntax_one(coll, o);
    o = before + (size_t)snprintf(coll + before, sizeof(coll) - before, "}");
    syntax_one(coll, o);
    /* nesting: 2048 levels are fine, 2049 are not */
    static char deep[2 * 2050 + 1];
    for (int d = 2047; d <= 2049; d++) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        syntax_one(deep, 2 * (size_t)d);
    }
    /* a long string and a long number cut everywhere */
    static char lng[3000];
    lng[0] = '"';
    for (int k = 1; k < 2998; k++)
        lng[k] = k % 100 == 0 ? '\\' : k % 100 == 1 ? 'n' : (char)('a' + k % 26);
    lng[2998] = '"';
    syntax_one(lng, 2999);
    syntax_one(lng, 2000);
    memset(lng, '7', 500);
    syntax_one(lng, 500);
    /* the values written here: position, line, column */
    long pos;
    int line, col;
    static const char bad[] = "{\n  \"email\": }";
    for (int how = 0; how < 3; how++) {
        assert_int_equal(stream(NULL, bad, sizeof(bad) - 1, how, NULL, &pos, &line, &col),
                         EG_EPARSE);
        assert_int_equal(pos, 14);
        assert_int_equal(line, 2);
        assert_int_equal(col, 12);
    }
}

/* ---- schemas of our own and the order fixture ---- */

static eg_schema_t *compile_text(const char *text, eg_ydoc_t **doc)
{
    char err[512] = "";
    if (eg_ydoc_parse_json(text, strlen(text), "s.json", doc, err, sizeof(err)))
        fail_msg("schema: %s", err);
    eg_schema_t *s = NULL;
    if (eg_schema_compile(*doc, NULL, NULL, &s, err, sizeof(err))) fail_msg("schema: %s", err);
    return s;
}

static void diff_one(const eg_schema_t *s, const char *inst, size_t max)
{
    eg_jr_doc_t d;
    if (eg_jr_parse(&d, inst, strlen(inst))) fail_msg("%s is not JSON", inst);
    eg_error_t *e = eg_error_new();
    eg_schema_report_t rep = {e, "", NULL, max, 0};
    diff_validate(s, &d, NULL, &rep);
    eg_schema_report_t quiet = {NULL, "", NULL, 0, 0};
    diff_validate(s, &d, NULL, &quiet);
    eg_error_free(e);
    eg_jr_free(&d);
}

static void test_mixed(void **state)
{
    (void)state;
    static const char schema[] =
        "{\"type\":\"object\",\"required\":[\"id\",\"items\",\"zz\"],\"minProperties\":3,"
        "\"maxProperties\":6,\"additionalProperties\":false,"
        "\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
        "\"items\":{\"type\":\"array\",\"minItems\":2,\"maxItems\":3,\"items\":{\"$ref\":\"#/$defs/"
        "item\"}},"
        "\"tags\":{\"type\":\"array\",\"uniqueItems\":true,\"items\":{\"type\":\"string\","
        "\"maxLength\":3}},"
        "\"meta\":{\"anyOf\":[{\"type\":\"object\",\"required\":[\"a\"]},{\"type\":\"object\","
        "\"required\":[\"b\"]}]},"
        "\"pair\":{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\"}"
        "],\"items\":false},"
        "\"deep\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"object\","
        "\"minProperties\":2,"
        "\"properties\":{\"y\":{\"enum\":[1,2]}},\"required\":[\"q\"]}}},"
        "\"zz\":{\"const\":{\"a\":[1,2]}},"
        "\"pp\":{\"type\":\"object\",\"patternProperties\":{\"^n\":{\"type\":\"integer\"}},"
        "\"properties\":{\"nx\":{\"minimum\":5}},\"additionalProperties\":{\"type\":\"string\"}}},"
        "\"$defs\":{\"item\":{\"type\":\"object\",\"required\":[\"sku\",\"qty\"],"
        "\"properties\":{\"sku\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}-[0-9]+$\"},"
        "\"qty\":{\"type\":\"integer\",\"minimum\":1,\"multipleOf\":2}}}}}";
    static const char *const inst[] = {
        "{\"id\":\"3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60\",\"items\":[{\"sku\":\"ABC-1\",\"qty\":2},"
        "{\"sku\":\"DEF-2\",\"qty\":4}],\"zz\":{\"a\":[1,2]}}",
        "{}",
        "[]",
        "{\"id\":5,\"items\":{},\"zz\":1,\"extra\":[1,{\"a\":2}],\"more\":{\"x\":1},\"m2\":\"s\"}",
        "{\"items\":[{\"sku\":\"abc\",\"qty\":0},{\"qty\":3},[1],{\"sku\":1}],\"tags\":[\"a\","
        "\"a\",\"long\"]}",
        "{\"items\":[],\"meta\":{\"c\":1},\"pair\":[1,\"a\",true,{\"x\":1}],\"zz\":{\"a\":[1,3]}}",
        "{\"deep\":{\"x\":{\"y\":3}},\"pp\":{\"n1\":1.5,\"nx\":3,\"other\":1,\"n2\":{\"a\":1},"
        "\"o2\":[1]}}",
        "{\"deep\":{\"x\":[]},\"pp\":[],\"tags\":{},\"meta\":{\"a\":1,\"b\":2},\"pair\":[\"x\"]}",
        "{\"id\":\"\\u0033f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f6\",\"items\":[{\"sku\":\"ABC-\\u0031\","
        "\"qty\":2.0}],"
        "\"z\\u007a\":{\"a\":[1.0,2]},\"e\\u0078tra\\/x\":\"\\u00e9\\ud83d\\ude00\"}",
    };
    eg_ydoc_t *doc = NULL;
    eg_schema_t *s = compile_text(schema, &doc);
    for (size_t i = 0; i < sizeof(inst) / sizeof(inst[0]); i++) {
        diff_one(s, inst[i], 100);
        diff_one(s, inst[i], 3); /* a bound that cuts: the same ones are kept */
        diff_one(s, inst[i], 1);
    }
    eg_schema_free(s);
    eg_ydoc_free(doc);
    /* required names found among 20 keys (the tree of a big object) */
    s = compile_text("{\"required\":[\"k19\",\"k3\",\"nope\",\"a\"],\"properties\":{\"a\":{},"
                     "\"k3\":{\"type\":\"string\"}},\"maxProperties\":19}",
                     &doc);
    char wide[1024];
    size_t w = 0;
    wide[w++] = '{';
    for (int k = 0; k < 20; k++)
        w += (size_t)snprintf(wide + w, sizeof(wide) - w, "%s\"k%d\":%d", k ? "," : "", k, k);
    wide[w++] = '}';
    wide[w] = '\0';
    diff_one(s, wide, 100);
    eg_schema_free(s);
    eg_ydoc_free(doc);
    /* order.json: the benchmark's schema */
    size_t n;
    char *text = tu_read_fixture("schemas/order.json", &n);
    char err[512];
    assert_int_equal(eg_ydoc_parse_json(text, n, "order.json", &doc, err, sizeof(err)), EG_OK);
    assert_int_equal(eg_schema_compile(doc, NULL, NULL, &s, err, sizeof(err)), EG_OK);
    static const char *const orders[] = {
        "{}",
        "{\"email\":\"x\",\"items\":[{\"sku\":1},{}],\"num\":150,\"id\":\"nope\"}",
        "{\"email\":\"jane@example.com\",\"items\":[],\"x\":null}",
        "[1,2]",
        "\"order\"",
    };
    for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++)
        diff_one(s, orders[i], 100);
    eg_schema_free(s);
    eg_ydoc_free(doc);
    free(text);
}

/* One validator reset between bodies (as a gateway worker keeps one),
 * after bodies left half-read, long keys, deep and wide ones: every
 * verdict and problem list as a new validator's. */
static void test_reset(void **state)
{
    (void)state;
    static const char schema[] =
        "{\"type\":\"object\",\"required\":[\"a\"],\"properties\":{\"a\":{\"type\":\"integer\","
        "\"maximum\":3},\"b\":{\"type\":\"array\",\"uniqueItems\":true,\"items\":{\"type\":"
        "\"string\"}}},"
        "\"additionalProperties\":{\"type\":\"string\",\"maxLength\":2}}";
    eg_ydoc_t *doc = NULL;
    eg_schema_t *s = compile_text(schema, &doc);
    /* bodies that grow the validator: a 6,000-byte key, 300 keys, 1,500 levels */
    static char big[20000];
    size_t o = 0;
    big[o++] = '{';
    big[o++] = '"';
    memset(big + o, 'k', 6000);
    o += 6000;
    o += (size_t)snprintf(big + o, sizeof(big) - o, "\":\"x\"");
    for (int k = 0; k < 300; k++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, ",\"m%d\":\"v\"", k);
    big[o++] = '}';
    static char deep[3001];
    memset(deep, '[', 1500);
    memset(deep + 1500, ']', 1500);
    static const char *const bodies[] = {
        "{\"a\":1,\"b\":[\"x\",\"y\"]}",
        "{\"a\":9,\"b\":[\"x\",\"x\",3],\"zz\":\"long\"}",
        "{}",
        "[1]",
        "{\"a\":1,\"a\":2}",
        "{\"b\":[\"x\"",
        "{\"a\":\"3\",\"c\":[1,{\"d\":2}]}",
    };
    eg_sv_t *shared = NULL;
    assert_int_equal(eg_sv_new(s, NULL, &shared), EG_OK);
    for (int round = 0; round < 3; round++) {
        /* grow it, and leave one half-read (a client gone mid-body) */
        eg_sv_reset(shared, s, NULL);
        eg_sv_feed(shared, big, o);
        assert_int_equal(eg_sv_finish(shared), EG_ERANGE); /* the long values */
        eg_sv_reset(shared, NULL, NULL);
        eg_sv_feed(shared, deep, 3000);
        assert_int_equal(eg_sv_finish(shared), EG_OK);
        eg_sv_reset(shared, s, NULL);
        eg_sv_feed(shared, deep, 700); /* not finished */
        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
            const char *b = bodies[i];
            size_t n = strlen(b);
            eg_error_t *e1 = eg_error_new(), *e2 = eg_error_new();
            eg_schema_report_t r1 = {e1, "", NULL, 10, 0}, r2 = {e2, "", NULL, 10, 0};
            eg_sv_t *fresh = NULL;
            assert_int_equal(eg_sv_new(s, &r1, &fresh), EG_OK);
            eg_sv_feed(fresh, b, n);
            int rc1 = eg_sv_finish(fresh);
            eg_sv_reset(shared, s, &r2);
            for (size_t k = 0; k < n; k += 3)
                eg_sv_feed(shared, b + k, n - k < 3 ? n - k : 3);
            int rc2 = eg_sv_finish(shared);
            assert_int_equal(rc1, rc2);
            if (rc1 == EG_EPARSE) {
                long p1, p2;
                int l1, l2, c1, c2;
                eg_sv_error(fresh, &p1, &l1, &c1);
                eg_sv_error(shared, &p2, &l2, &c2);
                assert_true(p1 == p2 && l1 == l2 && c1 == c2);
            } else {
                assert_int_equal(r1.count, r2.count);
                same_fields(e1, e2, b);
            }
            eg_sv_free(fresh);
            eg_error_free(e1);
            eg_error_free(e2);
        }
    }
    eg_sv_free(shared);
    eg_schema_free(s);
    eg_ydoc_free(doc);
}

int main(void)
{
    /* test_schema.c's own group first (it is a group of its own) */
    int rc = test_schema_main();
    ndiff_schema = ndiff;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_schema_cases_streamed),
    };
    return rc | cmocka_run_group_tests(tests, NULL, NULL);
}
