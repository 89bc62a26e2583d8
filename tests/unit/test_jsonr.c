/* test_jsonr.c - the tape reader accepts exactly what jansson's
 * json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) accepts, with the same values
 * and the same error locations. */
#include "testutil.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>

#include "jsonr.h"

#define JFLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)
#define S(lit) lit, sizeof(lit) - 1

/* Parses text (which jansson must accept too) and checks the value against jansson's. */
static void ok_n(const char *text, size_t len)
{
    eg_jr_doc_t d;
    json_error_t je;
    json_t *want = json_loadb(text, len, JFLAGS, &je);
    if (!want) fail_msg("jansson rejects '%.*s': %s", (int)len, text, je.text);
    int rc = eg_jr_parse(&d, text, len);
    if (rc) fail_msg("eg_jr_parse rejects '%.*s' (%d) at %d:%d", (int)len, text, rc, d.line, d.column);
    assert_true(d.ntoks >= 1);
    assert_int_equal(d.toks[0].end, d.ntoks);
    json_t *got = eg_jr_to_json(&d, &d.toks[0]);
    tu_assert_json_equal(want, got, text);
    json_decref(got);
    json_decref(want);
    eg_jr_free(&d);
}

static void ok(const char *text)
{
    ok_n(text, strlen(text));
}

/* Checks that text is rejected by both, at the same line, column and position. */
static void bad_n(const char *text, size_t len)
{
    eg_jr_doc_t d;
    json_error_t je;
    json_t *j = json_loadb(text, len, JFLAGS, &je);
    if (j) fail_msg("jansson accepts '%.*s': the test is wrong", (int)len, text);
    int rc = eg_jr_parse(&d, text, len);
    if (rc != EG_EPARSE) fail_msg("eg_jr_parse: %d for '%.*s' (jansson: %s)", rc, (int)len, text, je.text);
    if (d.line != je.line || d.column != je.column || d.position != je.position)
        fail_msg("'%.*s': at %d:%d (%ld), jansson at %d:%d (%d): %s", (int)len, text, d.line, d.column,
                 d.position, je.line, je.column, je.position, je.text);
    eg_jr_free(&d);
}

static void bad(const char *text)
{
    bad_n(text, strlen(text));
}

static char *nest(int levels, const char *open, const char *inner, const char *close)
{
    size_t lo = strlen(open), li = strlen(inner), lc = strlen(close);
    char *s = malloc((size_t)levels * (lo + lc) + li + 1), *p = s;
    assert_non_null(s);
    for (int i = 0; i < levels; i++, p += lo) memcpy(p, open, lo);
    memcpy(p, inner, li);
    p += li;
    for (int i = 0; i < levels; i++, p += lc) memcpy(p, close, lc);
    *p = '\0';
    return s;
}

static void test_scalars(void **state)
{
    (void)state;
    const char *docs[] = {"null", "true", "false", "0", "-0", "7", "-7", "123456789",
                          "9223372036854775807", "-9223372036854775808", "0.0", "-0.0", "1.5",
                          "-1.5e-3", "1E+2", "1e2", "2.5E-2", "1e-400", "4.9e-324",
                          "1.7976931348623157e308", "0.1", "123456789012345678901234567890.0",
                          "\"\"", "\"abc\"", " \t\r\n 1 \t\r\n ", "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
                          "\"\\u00e9\\u20ac\\ud83d\\ude00\"", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
                          "\"\\uD834\\uDD1E\"", "\"\x7f\"", "\"\xef\xbb\xbf\"", NULL};
    for (size_t i = 0; docs[i]; i++) ok(docs[i]);

    eg_jr_doc_t d;
    assert_int_equal(eg_jr_parse(&d, S("-0")), 0);
    assert_int_equal(d.toks[0].type, EG_JR_INT); /* jansson: -0 is an integer */
    assert_int_equal(d.toks[0].ival, 0);
    eg_jr_free(&d);
    assert_int_equal(eg_jr_parse(&d, S("-9223372036854775808")), 0);
    assert_true(d.toks[0].ival == LLONG_MIN);
    eg_jr_free(&d);
    assert_int_equal(eg_jr_parse(&d, S(" 12.5e1 ")), 0);
    assert_int_equal(d.toks[0].type, EG_JR_REAL);
    assert_true(d.toks[0].dval == 125.0);
    assert_int_equal(d.toks[0].off, 1);
    assert_int_equal(d.toks[0].len, 6);
    eg_jr_free(&d);
}

/* Reals are strtod()'s value bit for bit, fast path or not. */
static void test_reals(void **state)
{
    (void)state;
    const char *r[] = {"0.1", "0.2", "0.3", "1.1", "3.14159", "2.718281828459045", "1e22", "1e23",
                       "9007199254740992.0", "9007199254740993.0", "9007199254740993e0",
                       "123456789012345678.5", "0.000001", "1e-22", "1e-23", "4.35e-10",
                       "-1.0e-7", "5e-324", "2.2250738585072011e-308", "1.7976931348623157e308",
                       "0.1000000000000000055511151231257827021181583404541015625", "1e0",
                       "0e99999", "-0e-99999", "100000000000000000000000.0e-2", "7.0E22",
                       "8.0E22", NULL};
    for (size_t i = 0; r[i]; i++) {
        eg_jr_doc_t d;
        assert_int_equal(eg_jr_parse(&d, r[i], strlen(r[i])), 0);
        assert_int_equal(d.toks[0].type, EG_JR_REAL);
        double want = strtod(r[i], NULL);
        if (memcmp(&want, &d.toks[0].dval, sizeof(want)))
            fail_msg("%s: %.17g, strtod %.17g", r[i], d.toks[0].dval, want);
        eg_jr_free(&d);
        ok(r[i]);
    }
}

static void test_containers(void **state)
{
    (void)state;
    const char *docs[] = {"[]", "{}", " [ ] ", "{ }", "[1,2,3]", "[[],[[]],{}]", "{\"a\":{\"b\":{}}}",
                          "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}",
                          "[1, -2.5, \"x\", true, false, null, [], {}, {\"k\": [0]}]",
                          "{\"\":0,\"a\":1,\"A\":2,\"a \":3,\"\\u0061b\":4}",
                          "{\"a\":1,\"b\":{\"a\":2}}", "[\"a\",\"a\"]", NULL};
    for (size_t i = 0; docs[i]; i++) ok(docs[i]);

    /* the tape, token by token */
    static const char t[] = "{\"a\": [1, {\"b\": null}], \"c\": \"d\"}";
    eg_jr_doc_t d;
    assert_int_equal(eg_jr_parse(&d, S(t)), 0);
    static const struct {
        uint8_t type;
        uint32_t off, len, end, count;
    } want[] = {
        {EG_JR_OBJECT, 0, sizeof(t) - 1, 9, 2}, {EG_JR_STRING, 2, 1, 2, 0},
        {EG_JR_ARRAY, 6, 16, 7, 2},             {EG_JR_INT, 7, 1, 4, 0},
        {EG_JR_OBJECT, 10, 11, 7, 1},           {EG_JR_STRING, 12, 1, 6, 0},
        {EG_JR_NULL, 16, 4, 7, 0},              {EG_JR_STRING, 25, 1, 8, 0},
        {EG_JR_STRING, 30, 1, 9, 0},
    };
    assert_int_equal(d.ntoks, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < d.ntoks; i++) {
        assert_int_equal(d.toks[i].type, want[i].type);
        assert_int_equal(d.toks[i].off, want[i].off);
        assert_int_equal(d.toks[i].len, want[i].len);
        assert_int_equal(d.toks[i].end, want[i].end);
        assert_int_equal(d.toks[i].count, want[i].count);
    }
    assert_true(d.toks == d.small); /* no allocation */
    eg_jr_free(&d);

    /* the deepest nesting jansson takes: 2048 values, the innermost one included */
    char *s = nest(2048, "[", "", "]");
    ok(s);
    free(s);
    s = nest(2047, "[", "1", "]");
    ok(s);
    free(s);
    s = nest(2047, "{\"k\":", "{}", "}");
    ok(s);
    free(s);
}

/* jansson's lexer puts back the byte after a number or literal and, when that byte is a
   NUL, loses it: so one NUL there is skipped. */
static void test_jansson_nul_quirk(void **state)
{
    (void)state;
    ok_n(S("1\0"));
    ok_n(S("[1\0]"));
    ok_n(S("[1\0,2]"));
    ok_n(S("true\0"));
    ok_n(S("[false\0 ,null\0]"));
    ok_n(S("{\"a\":1.5\0}"));
    ok_n(S("{\"a\":-0\0,\"b\":1e5\0}"));
    bad_n(S("1\0\0"));
    bad_n(S("[1\0\0]"));
    bad_n(S("\"a\"\0"));
    bad_n(S("[1]\0"));
    bad_n(S("1 \0"));
    bad_n(S("1\0 x"));
    bad_n(S("1\n\0x"));
    bad_n(S("nul\0l"));
    bad_n(S("\0"));
}

static void test_rejects_grammar(void **state)
{
    (void)state;
    const char *docs[] = {
        "", " ", "\t\r\n", /* empty */
        "1 2", "{} x", "[]]", "\"a\" \"b\"", "nullnull", "truex", "1true", /* nothing after */
        "[", "{", "[1", "[1,", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,", /* truncated */
        "[1,]", "[,1]", "[,]", "{,}", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{\"a\":1 \"b\":2}",
        "{1:2}", "{a:1}", "{'a':1}", "['a']", "{\"a\"::1}", "{\"a\":}", "]", "}", ":", ",",
        "01", "-01", "00", "-", "--1", "+1", ".5", "1.", "1.e5", "1e", "1e+", "1E-", "0x10", "1.5.3",
        "NaN", "Infinity", "-Infinity", "nan", "True", "FALSE", "nul", "tru", "t", "n",
        "/* c */ 1", "1 // c", "\f1", "\v1", "\xc2\xa0" "1", "\xef\xbb\xbf" "1", "\xc3\xa9",
        "[1,\xc3\xa9]", "\"abc", "\"", "\"\\", "\"\\u12", "\"\\u12x\"", "\"\\q\"", "\"\\x41\"",
        "\"\\U0041\"", "\"\\'\"", "\"\\\xc3\xa9\"", "\"\\\n\"", NULL};
    for (size_t i = 0; docs[i]; i++) bad(docs[i]);
}

static void test_rejects_duplicates(void **state)
{
    (void)state;
    bad("{\"a\":1,\"a\":2}");
    bad("{\"a\":1,\"b\":2,\"a\":3}");
    bad("{\"a\":1,\"\\u0061\":2}"); /* compared unescaped */
    bad("{\"\\u0061\":1,\"a\":2}");
    bad("{\"\\n\":1,\"\\u000a\":2}");
    bad("{\"\xc3\xa9\":1,\"\\u00e9\":2}");
    bad("{\"\":1,\"\":2}");
    bad("{\"x\":{\"a\":1,\"a\":2}}");
    bad("[{\"a\":1},{\"b\":1,\"b\":2}]");
    bad("{\"a\":1,\"a\":2,}"); /* the duplicate comes first */
    ok("{\"a\":1,\"ab\":2,\"b\":{\"a\":3}}");

    /* objects above the pairwise threshold (16 members) */
    char buf[4096];
    for (int dup = 0; dup < 2; dup++) {
        for (int n = 15; n <= 40; n++) {
            size_t o = 0;
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "{");
            for (int i = 0; i < n; i++)
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"k%d\":%d", i ? "," : "", i, i);
            if (dup) o += (size_t)snprintf(buf + o, sizeof(buf) - o, ",\"k%d\":0", n / 2);
            snprintf(buf + o, sizeof(buf) - o, "}");
            if (dup)
                bad(buf);
            else
                ok(buf);
        }
    }
    /* a duplicate in a big object, then a syntax error: jansson stops at the duplicate */
    size_t o = 0;
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "{");
    for (int i = 0; i < 20; i++) o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\"k%d\":%d,", i, i);
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\"k3\":[1,\n{\"x\":1,]");
    bad(buf);
    /* escaped keys in a big object */
    o = 0;
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "{");
    for (int i = 0; i < 20; i++) o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\"\\u006b%d\":%d,", i, i);
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\"k7\":0}");
    bad(buf);
}

/* The same past 32 members, where the pairwise check stops and the hash
   table takes over (keys of every length, a duplicate anywhere, also in the
   input's very last bytes). */
static void test_duplicates_hashed_past_32(void **state)
{
    (void)state;
    static char buf[8 * 1024];
    for (int klen = 2; klen <= 20; klen++) {
        for (int dupat = -1; dupat < 40; dupat += 13) {
            size_t o = 0;
            buf[o++] = '{';
            for (int i = 0; i < 40; i++) {
                char key[32];
                snprintf(key, sizeof(key), "%0*d", klen, i);
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"%s\":%d", i ? "," : "", key, i);
            }
            if (dupat >= 0) {
                char key[32];
                snprintf(key, sizeof(key), "%0*d", klen, dupat);
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, ",\"%s\":0", key);
            }
            buf[o++] = '}';
            buf[o] = '\0';
            if (dupat < 0)
                ok_n(buf, o);
            else
                bad_n(buf, o);
        }
    }
}

/* Objects past 16 members are checked through a hash table of their keys: keys of every
   length around the 8-byte words it hashes, a duplicate anywhere (also the very last
   bytes of the input, where a short key is hashed byte by byte), keys whose hashed bytes
   all collide (the table gives up and sorts), and the size where it stops being used. */
static void test_duplicates_hashed(void **state)
{
    (void)state;
    static char buf[64 * 1024];
    for (int klen = 1; klen <= 20; klen++) {
        for (int dupat = -1; dupat < 20; dupat += 7) {
            size_t o = 0;
            buf[o++] = '{';
            for (int i = 0; i < 20; i++) {
                char key[32];
                snprintf(key, sizeof(key), "%0*d", klen, i); /* "0".."19", "00".."19", ... */
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"%s\":%d", i ? "," : "", key, i);
            }
            if (dupat >= 0) {
                char key[32];
                snprintf(key, sizeof(key), "%0*d", klen, dupat);
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, ",\"%s\":0", key);
            }
            buf[o++] = '}';
            buf[o] = '\0';
            if (dupat < 0)
                ok_n(buf, o);
            else
                bad_n(buf, o);
        }
    }
    /* 300 keys of 24 bytes alike in their first and last 8: every hash collides */
    for (int dup = 0; dup < 2; dup++) {
        size_t o = 0;
        buf[o++] = '{';
        for (int i = 0; i < 300; i++)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"abcdefgh%08dstuvwxyz\":%d",
                                  i ? "," : "", i, i);
        if (dup) o += (size_t)snprintf(buf + o, sizeof(buf) - o, ",\"abcdefgh%08dstuvwxyz\":0", 123);
        buf[o++] = '}';
        if (dup)
            bad_n(buf, o);
        else
            ok_n(buf, o);
    }
    /* 1024 members (the table's limit) and 1025 (sorted), a duplicate of the first last */
    for (int n = 1024; n <= 1025; n++) {
        size_t o = 0;
        buf[o++] = '{';
        for (int i = 0; i < n; i++)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"m%d\":%d", i ? "," : "", i, i);
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, ",\"m0\":0}");
        bad_n(buf, o);
    }
}

static void test_rejects_strings(void **state)
{
    (void)state;
    /* raw control characters */
    bad("\"a\x01\"");
    bad("\"a\nb\"");
    bad("\"a\tb\"");
    bad("\"\x1f\"");
    bad_n(S("\"a\0b\""));
    bad("{\"a\rb\":1}");
    /* UTF-8 */
    bad("\"\x80\"");                 /* a lone continuation byte */
    bad("\"\xc3\"");                 /* truncated */
    bad("\"\xc3");                   /* truncated at the end of input */
    bad("\"\xc3(\"");                /* bad continuation */
    bad("\"\xc0\x80\"");             /* overlong NUL */
    bad("\"\xc1\xbf\"");             /* overlong */
    bad("\"\xe0\x80\xaf\"");         /* overlong */
    bad("\"\xf0\x80\x80\xaf\"");     /* overlong */
    bad("\"\xed\xa0\x80\"");         /* UTF-16 surrogate */
    bad("\"\xed\xbf\xbf\"");         /* UTF-16 surrogate */
    bad("\"\xf4\x90\x80\x80\"");     /* above U+10FFFF */
    bad("\"\xf5\x80\x80\x80\"");     /* never valid */
    bad("\"\xff\"");
    bad("{\"\xfe\":1}");
    ok("\"\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf\""); /* the edges that are valid */
    /* \u escapes */
    bad("\"\\ud800\"");       /* lone high surrogate */
    bad("\"\\udc00\"");       /* lone low surrogate */
    bad("\"\\udbff\\udbff\""); /* high, high */
    bad("\"\\ud800\\u0041\""); /* high, not low */
    bad("\"\\ud800x\"");
    bad("\"\\ud800\\n\"");
    bad("\"\\ud800\\");
    bad("\"\\udc00\\ud800\"");
    bad("\"\\u0000\"");       /* NUL without JSON_ALLOW_NUL */
    bad("[\"a\\u0000b\"]");
    bad("{\"\\u0000\":1}");   /* NUL in a key */
    bad("{\"a\\u0000\":1}");
    bad("\"\\u00G0\"");
    bad("\"\\u 123\"");
    ok("\"\\u0001\\u001f\\u007f\\u0080\\u07ff\\u0800\\uffff\\ud800\\udc00\\udbff\\udfff\"");
}

static void test_rejects_numbers_and_depth(void **state)
{
    (void)state;
    bad("9223372036854775808"); /* too big integer */
    bad("-9223372036854775809");
    bad("99999999999999999999");
    bad("[123456789012345678901234567890]");
    bad("1e309"); /* real overflow */
    bad("-1e309");
    bad("1.8e308");
    bad("[1e99999999999999999999]");
    bad("{\"a\":[-1.7976931348623159e308]}");
    ok("[0e999999999, 1e-999999, -1e-400]"); /* underflow is fine */

    char *s = nest(2049, "[", "", "]");
    bad(s);
    free(s);
    s = nest(2048, "[", "1", "]"); /* the scalar is the 2049th level */
    bad(s);
    free(s);
    s = nest(2048, "[", "\"x\"", "]");
    bad(s);
    free(s);
    s = nest(2048, "{\"k\":", "{}", "}");
    bad(s);
    free(s);
    s = nest(100000, "[", "", "]");
    bad(s);
    free(s);
}

/* Every JSON fixture reads as jansson reads it. */
static void test_fixtures(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/seeds", EG_FIXTURES);
    DIR *top = opendir(dir);
    assert_non_null(top);
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(top))) {
        if (e->d_name[0] == '.') continue;
        char sub[1200];
        if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub)) continue;
        DIR *dd = opendir(sub);
        if (!dd) continue;
        struct dirent *f;
        while ((f = readdir(dd))) {
            size_t l = strlen(f->d_name);
            if (l < 6 || strcmp(f->d_name + l - 5, ".json") != 0) continue;
            char rel[600];
            if (snprintf(rel, sizeof(rel), "seeds/%s/%s", e->d_name, f->d_name) >= (int)sizeof(rel))
                continue;
            size_t len;
            char *text = tu_read_fixture(rel, &len);
            ok_n(text, len);
            free(text);
            seen++;
        }
        closedir(dd);
    }
    closedir(top);
    assert_true(seen >= 10);
}

static void test_get_and_str(void **state)
{
    (void)state;
    static const char t[] = "{\"plain\":\"value\",\"t\\u00e9st\":\"a\\nb\\u00e9\\ud83d\\ude00\","
                            "\"q\\\"\":1,\"empty\":\"\",\"n\":[1]}";
    eg_jr_doc_t d;
    assert_int_equal(eg_jr_parse(&d, S(t)), 0);
    const eg_jr_tok_t *root = &d.toks[0];

    const eg_jr_tok_t *v = eg_jr_get(&d, root, S("plain"));
    assert_non_null(v);
    assert_int_equal(v->type, EG_JR_STRING);
    assert_int_equal(v->escaped, 0);
    assert_int_equal(v->len, 5);
    assert_memory_equal(d.text + v->off, "value", 5);
    assert_true(eg_jr_str_eq(&d, v, S("value")));
    assert_false(eg_jr_str_eq(&d, v, S("valu")));
    assert_false(eg_jr_str_eq(&d, v, S("values")));
    char buf[32];
    assert_int_equal(eg_jr_str(&d, v, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "value", 5);

    v = eg_jr_get(&d, root, S("t\xc3\xa9st")); /* an escaped key, looked up unescaped */
    assert_non_null(v);
    assert_int_equal(v->escaped, 1);
    static const char want[] = "a\nb\xc3\xa9\xf0\x9f\x98\x80";
    assert_int_equal(eg_jr_str(&d, v, buf, sizeof(buf)), sizeof(want) - 1);
    assert_memory_equal(buf, want, sizeof(want) - 1);
    assert_true(eg_jr_str_eq(&d, v, S(want)));
    assert_false(eg_jr_str_eq(&d, v, want, sizeof(want) - 2));
    assert_false(eg_jr_str_eq(&d, v, S("a\nb\xc3\xa9\xf0\x9f\x98\x81")));
    assert_false(eg_jr_str_eq(&d, v, S("a\\nb")));
    /* truncation, like snprintf: the length is the whole value's */
    memset(buf, '#', sizeof(buf));
    assert_int_equal(eg_jr_str(&d, v, buf, 4), sizeof(want) - 1);
    assert_memory_equal(buf, "a\nb\xc3", 4);
    assert_int_equal(buf[4], '#');
    assert_int_equal(eg_jr_str(&d, v, NULL, 0), sizeof(want) - 1);

    assert_null(eg_jr_get(&d, root, S("t\\u00e9st"))); /* keys are compared unescaped */
    v = eg_jr_get(&d, root, S("q\""));
    assert_non_null(v);
    assert_int_equal(v->type, EG_JR_INT);
    assert_int_equal(v->ival, 1);
    v = eg_jr_get(&d, root, S("empty"));
    assert_non_null(v);
    assert_true(eg_jr_str_eq(&d, v, "", 0));
    assert_false(eg_jr_str_eq(&d, v, S("x")));
    v = eg_jr_get(&d, root, S("n"));
    assert_non_null(v);
    assert_null(eg_jr_get(&d, v, S("n"))); /* not an object */
    assert_false(eg_jr_str_eq(&d, v, S("n"))); /* not a string */
    assert_null(eg_jr_get(&d, root, S("missing")));
    assert_null(eg_jr_get(&d, root, S("plai")));
    assert_null(eg_jr_get(&d, root, "plain\0", 6));

    /* the documented iteration idiom visits every member in order */
    const char *keys[] = {"plain", "t\xc3\xa9st", "q\"", "empty", "n"};
    const eg_jr_tok_t *k = root + 1;
    for (uint32_t i = 0; i < root->count; i++) {
        const eg_jr_tok_t *val = k + 1;
        assert_true(eg_jr_str_eq(&d, k, keys[i], strlen(keys[i])));
        assert_ptr_equal(eg_jr_get(&d, root, keys[i], strlen(keys[i])), val);
        k = d.toks + val->end;
    }
    assert_ptr_equal(k, d.toks + d.ntoks);
    eg_jr_free(&d);
}

/* More tokens than doc->small holds: the tape moves to the heap and keeps growing. */
static void test_big_tape(void **state)
{
    (void)state;
    char *buf = malloc(1024 * 1024);
    assert_non_null(buf);
    for (int items = 60; items <= 5000; items = items * 3 / 2) {
        size_t o = 0;
        o += (size_t)sprintf(buf + o, "{\"items\":[");
        for (int i = 0; i < items; i++)
            o += (size_t)sprintf(buf + o, "%s{\"id\":%d,\"s\":\"x\\u00e9%d\"}", i ? "," : "", i, i);
        o += (size_t)sprintf(buf + o, "]}");
        eg_jr_doc_t d;
        assert_int_equal(eg_jr_parse(&d, buf, o), 0);
        assert_int_equal(d.ntoks, 3 + (size_t)items * 5);
        if (d.ntoks > sizeof(d.small) / sizeof(d.small[0])) assert_true(d.toks != d.small);
        const eg_jr_tok_t *arr = eg_jr_get(&d, &d.toks[0], S("items"));
        assert_non_null(arr);
        assert_int_equal(arr->count, items);
        const eg_jr_tok_t *it = arr + 1;
        for (int i = 0; i < items; i++) {
            const eg_jr_tok_t *id = eg_jr_get(&d, it, S("id"));
            assert_non_null(id);
            assert_int_equal(id->ival, i);
            it = d.toks + it->end;
        }
        eg_jr_free(&d);
        ok_n(buf, o);
    }
    free(buf);
}

static void test_error_location(void **state)
{
    (void)state;
    eg_jr_doc_t d;
    static const char trunc[] = "{\n  \"error\": {\n    \"code\": \"x\",\n    \"n\": [1, 2";
    assert_int_equal(eg_jr_parse(&d, S(trunc)), EG_EPARSE);
    assert_int_equal(d.line, 4);
    assert_int_equal(d.column, 14);
    assert_int_equal(d.position, sizeof(trunc) - 1);
    eg_jr_free(&d);
    bad(trunc);
    bad("{\"a\": 1");
    bad("{\n\"message\": \"caf\xc3\xa9\", \"x\": tru }");
    bad("[1,\n2,\n\"\\ud800\"]");
    bad("{\"m\xc3\xa9\": \"v\n\"}");
    bad("\n\n  \xff");
    assert_int_equal(eg_jr_parse(&d, S("")), EG_EPARSE);
    assert_int_equal(d.line, 1);
    assert_int_equal(d.column, 0);
    assert_int_equal(d.position, 0);
    eg_jr_free(&d);
    assert_int_equal(eg_jr_parse(&d, NULL, 0), EG_EPARSE);
    eg_jr_free(&d);
}

/* 100,000 distinct keys in one object: no quadratic duplicate check. */
static void test_many_keys(void **state)
{
    (void)state;
    const int n = 100000;
    char *buf = malloc((size_t)n * 24 + 16);
    assert_non_null(buf);
    size_t o = 0;
    buf[o++] = '{';
    for (int i = 0; i < n; i++) o += (size_t)sprintf(buf + o, "%s\"key%07d\":%d", i ? "," : "", i, i);
    buf[o++] = '}';
    eg_jr_doc_t d;
    assert_int_equal(eg_jr_parse(&d, buf, o), 0);
    assert_int_equal(d.toks[0].count, n);
    assert_int_equal(d.ntoks, 1 + 2 * (size_t)n);
    const eg_jr_tok_t *v = eg_jr_get(&d, &d.toks[0], S("key0099999"));
    assert_non_null(v);
    assert_int_equal(v->ival, 99999);
    eg_jr_free(&d);
    ok_n(buf, o);

    /* the same with the last key repeating the first: rejected where jansson stops */
    o--;
    o += (size_t)sprintf(buf + o, ",\"key0000000\":0}");
    bad_n(buf, o);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_reals),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_jansson_nul_quirk),
        cmocka_unit_test(test_rejects_grammar),
        cmocka_unit_test(test_rejects_duplicates),
        cmocka_unit_test(test_duplicates_hashed),
        cmocka_unit_test(test_duplicates_hashed_past_32),
        cmocka_unit_test(test_rejects_strings),
        cmocka_unit_test(test_rejects_numbers_and_depth),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_get_and_str),
        cmocka_unit_test(test_big_tape),
        cmocka_unit_test(test_error_location),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
