/* test_ytree.c - YAML syntax errors as lib/ytree.c words them: a tab in the
 * indentation is named plainly ("tabs are not allowed for indentation"),
 * at the tab's own line and column, while other errors keep libyaml's words
 * and a tab where YAML allows one is no error. */
#include "testutil.h"

#include "ytree.h"

/* Parses y, expects a failure, and checks the message is exactly want. */
static void expect_error(const char *y, const char *want)
{
    char err[256] = "";
    eg_ydoc_t *doc = NULL;
    assert_int_equal(eg_ydoc_parse(y, strlen(y), "t.yaml", &doc, err, sizeof(err)), EG_EPARSE);
    assert_null(doc);
    assert_string_equal(err, want);
}

static void test_a_tab_in_the_indentation_is_named(void **state)
{
    (void)state;
    /* libyaml: "found character that cannot start any token" */
    expect_error("listen: :8080\nroutes:\n\t- path: /\n",
                 "t.yaml:3:1: tabs are not allowed for indentation (use spaces)");
    /* libyaml: "found a tab character that violates indentation" */
    expect_error("a:\n  b: 1\n\tc: 2\n",
                 "t.yaml:3:1: tabs are not allowed for indentation (use spaces)");
    /* spaces, then a tab: the column is the tab's */
    expect_error("a:\n  b: 1\n  \tc: 2\n",
                 "t.yaml:3:3: tabs are not allowed for indentation (use spaces)");
    /* after a multi-byte character on an earlier line: lines are counted, not bytes */
    expect_error("a: \"\xc3\xa9t\xc3\xa9\"\nb:\n\tc: 2\n",
                 "t.yaml:3:1: tabs are not allowed for indentation (use spaces)");
}

static void test_other_syntax_errors_keep_their_words(void **state)
{
    (void)state;
    expect_error("a: [1, 2\n",
                 "t.yaml:2:1: did not find expected ',' or ']' while parsing a flow sequence");
    /* a tab after the value is no indentation: the real problem is named */
    expect_error("a: b\t: c\n", "t.yaml:1:6: mapping values are not allowed in this context");
}

static void test_tabs_where_yaml_allows_them(void **state)
{
    (void)state;
    const char *y = "a: \"x\ty\"\t# a comment after a tab\nb:\n  - 1\t\n";
    char err[256] = "";
    eg_ydoc_t *doc = NULL;
    assert_int_equal(eg_ydoc_parse(y, strlen(y), "t.yaml", &doc, err, sizeof(err)), EG_OK);
    assert_string_equal(eg_ymap_get(eg_ydoc_root(doc), "a")->str, "x\ty");
    eg_ydoc_free(doc);
}

/* A fixed environment for the ${VAR} tests: the library never reads the
 * process's own. */
static const char *fake_env(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "PORT") == 0) return "8090";
    if (strcmp(name, "HOST") == 0) return "10.0.0.5";
    if (strcmp(name, "EMPTY") == 0) return "";
    return NULL;
}

static eg_ydoc_t *expanded(const char *y, int want_rc, char *err, size_t errlen)
{
    eg_ydoc_t *doc = NULL;
    assert_int_equal(eg_ydoc_parse(y, strlen(y), "t.yaml", &doc, err, errlen), EG_OK);
    assert_int_equal(eg_ydoc_expand_env(doc, fake_env, NULL, err, errlen), want_rc);
    return doc;
}

static void test_env_variables_in_values(void **state)
{
    (void)state;
    char err[256] = "";
    eg_ydoc_t *doc = expanded("a: ${HOST}:${PORT}\n"
                              "b: { port: \"${PORT}\" }\n"
                              "c: ${NOPE:-fallback}\n"
                              "d: ${EMPTY:-dflt}\n"
                              "e: x${EMPTY}y\n"
                              "f: \"^[0-9]+$\"\n"
                              "g: \"$${HOST}\"\n"
                              "h: \"${PORT} and more\"\n"
                              "i: a${NOPE:-}b\n",
                              EG_OK, err, sizeof(err));
    const eg_ynode_t *r = eg_ydoc_root(doc);
    assert_string_equal(eg_ymap_get(r, "a")->str, "10.0.0.5:8090");
    const eg_ynode_t *port = eg_ymap_get(eg_ymap_get(r, "b"), "port");
    assert_string_equal(port->str, "8090");
    assert_int_equal(port->len, 4);
    assert_int_equal(port->quoted, 0); /* one ${...} alone: typed by what it became */
    long long v = 0;
    assert_int_equal(eg_yscalar_int(doc, port, 1, 65535, &v, err, sizeof(err)), EG_OK);
    assert_int_equal(v, 8090);
    assert_string_equal(eg_ymap_get(r, "c")->str, "fallback");
    assert_string_equal(eg_ymap_get(r, "d")->str, "dflt"); /* :- also when set but empty */
    assert_string_equal(eg_ymap_get(r, "e")->str, "xy");
    assert_string_equal(eg_ymap_get(r, "f")->str, "^[0-9]+$"); /* a lone $ is kept */
    assert_string_equal(eg_ymap_get(r, "g")->str, "${HOST}");  /* $${ is a literal ${ */
    assert_int_equal(eg_ymap_get(r, "h")->quoted, 1);           /* more than one ${...}: still a string */
    assert_string_equal(eg_ymap_get(r, "i")->str, "ab");       /* an empty default */
    eg_ydoc_free(doc);
}

static void test_env_variable_errors_say_where(void **state)
{
    (void)state;
    char err[256] = "";
    eg_ydoc_free(expanded("a: 1\nb: ${NOPE}\n", EG_EPARSE, err, sizeof(err)));
    assert_string_equal(err, "t.yaml:2:4: environment variable NOPE is not set (${NOPE:-default} gives a default)");
    eg_ydoc_free(expanded("a: ${PORT\n", EG_EPARSE, err, sizeof(err)));
    assert_string_equal(err, "t.yaml:1:4: '${' without its closing '}'");
    eg_ydoc_free(expanded("a: ${1X}\n", EG_EPARSE, err, sizeof(err)));
    assert_non_null(strstr(err, "is not ${NAME} or ${NAME:-default}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_tab_in_the_indentation_is_named),
        cmocka_unit_test(test_other_syntax_errors_keep_their_words),
        cmocka_unit_test(test_tabs_where_yaml_allows_them),
        cmocka_unit_test(test_env_variables_in_values),
        cmocka_unit_test(test_env_variable_errors_say_where),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
