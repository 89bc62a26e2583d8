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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_tab_in_the_indentation_is_named),
        cmocka_unit_test(test_other_syntax_errors_keep_their_words),
        cmocka_unit_test(test_tabs_where_yaml_allows_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
