/* test_cli.c - the errgate binary: translate, docs, catalog, errors and exit codes. */
#include "testutil.h"

#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int status;
    char *out;
    char *err;
} run_t;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    return b;
}

/* Runs `errgate ARGS` with `input` on stdin (NULL: /dev/null). */
static run_t run(const char *args, const char *input)
{
    char dir[] = "/tmp/eg-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char in[512], out[512], err[512], cmd[4096];
    snprintf(in, sizeof(in), "%s/in", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(err, sizeof(err), "%s/err", dir);
    FILE *f = fopen(in, "wb");
    assert_non_null(f);
    if (input) fputs(input, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "%s %s < %s > %s 2> %s", EG_CLI, args, in, out, err);
    int st = system(cmd);
    run_t r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(out), slurp(err)};
    unlink(in);
    unlink(out);
    unlink(err);
    rmdir(dir);
    return r;
}

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

static void test_version_and_help(void **state)
{
    (void)state;
    run_t r = run("--version", NULL);
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "errgate ", 8) == 0);
    run_free(&r);
    const char *cmds[] = {"translate --help", "docs --help", "catalog --help", "--help"};
    for (size_t i = 0; i < 4; i++) {
        r = run(cmds[i], NULL);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "usage: errgate"));
        run_free(&r);
    }
}

static void test_translate_flat_camel_to_jsonapi(void **state)
{
    (void)state;
    char *in = tu_read_fixture("seeds/flat-camel/validation_error.json", NULL);
    run_t r = run("translate --to jsonapi", in);
    assert_int_equal(r.status, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    json_t *errs = json_object_get(j, "errors");
    assert_int_equal(json_array_size(errs), 2);
    json_t *e0 = json_array_get(errs, 0);
    assert_string_equal(json_string_value(json_object_get(e0, "code")), "validation_error");
    assert_string_equal(json_string_value(json_object_get(e0, "status")), "400");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e0, "source"), "pointer")),
                        "/data/attributes/email");
    json_decref(j);
    run_free(&r);
    free(in);
}

static void test_translate_html_with_status(void **state)
{
    (void)state;
    run_t r = run("translate --to typed --status 503",
                  "<html><body><h1>Service Unavailable</h1></body></html>");
    assert_int_equal(r.status, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    json_t *err = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "SERVICE_UNAVAILABLE");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "Service Unavailable");
    json_decref(j);
    run_free(&r);
    /* without --status, what the help says: 502, the gateway's code for an
     * upstream error it cannot read */
    r = run("translate --to problem", "<html><body>oops</body></html>");
    assert_int_equal(r.status, 0);
    j = json_loads(r.out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 502);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "bad_gateway");
    json_decref(j);
    run_free(&r);
    r = run("translate --to typed --strict", "<html>");
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(r.err, "not JSON"));
    run_free(&r);
}

static void test_translate_bad_arguments(void **state)
{
    (void)state;
    static const struct {
        const char *args;
        int status;
        const char *msg;
    } cases[] = {
        {"translate", 2, "--to DIALECT is required"},
        {"translate --to klingon", 2, "unknown dialect 'klingon'"},
        {"translate --to problem --from nope", 2, "unknown dialect 'nope'"},
        {"translate --to problem --status 99", 2, "--status must be 100..599"},
        {"translate --to problem --bogus", 2, "bad option"},
        {"translate --to problem extra", 2, "unexpected argument 'extra'"},
        {"translate --to problem --catalog /nonexistent.yaml", 3, "/nonexistent.yaml"},
        {"translate --to problem --dialect-file /nonexistent.yaml", 3, "/nonexistent.yaml"},
        {"frobnicate", 2, "unknown command 'frobnicate'"},
        {"docs --format pdf", 2, "--format must be markdown or html"},
        {"docs --dialect nope", 2, "unknown dialect 'nope'"},
        {"catalog", 2, "expected 'list'"},
        {"catalog list --format xml", 2, "--format must be table or json"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_t r = run(cases[i].args, "{}");
        if (r.status != cases[i].status || !strstr(r.err, cases[i].msg))
            fail_msg("'%s': exit %d, stderr '%s'", cases[i].args, r.status, r.err);
        /* one line on stderr */
        assert_non_null(strchr(r.err, '\n'));
        assert_null(strchr(strchr(r.err, '\n') + 1, '\n'));
        run_free(&r);
    }
}

static void test_translate_forced_dialect_mismatch(void **state)
{
    (void)state;
    run_t r = run("translate --to problem --from typed", "{\"errors\":[{\"status\":\"404\"}]}");
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(r.err, "not a typed error body"));
    run_free(&r);
    r = run("translate --to problem --from typed", "{\"error\": ");
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(r.err, "line 1"));
    run_free(&r);
}

static void test_docs_lists_every_code(void **state)
{
    (void)state;
    run_t r = run("docs --dialect flat-snake", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "# Error reference"));
    assert_non_null(strstr(r.out, "## HTTP status codes"));
    assert_non_null(strstr(r.out, "## Retry strategy"));
    assert_non_null(strstr(r.out, "### resource_not_found (404"));
    assert_non_null(strstr(r.out, "`status_code`"));
    run_t c = run("catalog list --format json", NULL);
    assert_int_equal(c.status, 0);
    json_t *arr = json_loads(c.out, 0, NULL);
    assert_true(json_array_size(arr) > 30);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        /* every catalog code has its own section in the reference */
        char needle[128];
        char sp[96];
        snprintf(sp, sizeof(sp), "%s", json_string_value(json_object_get(v, "code")));
        json_t *spell = json_object_get(json_object_get(v, "spellings"), "flat-snake");
        if (spell) snprintf(sp, sizeof(sp), "%s", json_string_value(spell));
        snprintf(needle, sizeof(needle), "### %s (", sp);
        if (!strstr(r.out, needle)) fail_msg("docs lack %s", needle);
    }
    json_decref(arr);
    run_free(&c);
    run_free(&r);
    r = run("docs --format html --dialect typed", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "<h1>Error reference</h1>"));
    assert_non_null(strstr(r.out, "RATE_LIMIT_EXCEEDED"));
    assert_null(strstr(r.out, "```"));
    run_free(&r);
}

static void test_catalog_file_changes_docs_and_list(void **state)
{
    (void)state;
    char path[] = "/tmp/eg-cat-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *y = "docs_url: \"https://api.example.com/errors/{code}\"\n"
                    "codes:\n  out_of_stock: { status: 409, title: Out of Stock, message: \"The item is out of stock\" }\n";
    assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    char args[256];
    snprintf(args, sizeof(args), "catalog list --catalog %s", path);
    run_t r = run(args, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "out_of_stock"));
    run_free(&r);
    snprintf(args, sizeof(args), "docs --catalog %s", path);
    r = run(args, NULL);
    assert_non_null(strstr(r.out, "https://api.example.com/errors/out_of_stock"));
    run_free(&r);
    snprintf(args, sizeof(args), "translate --to problem --catalog %s", path);
    r = run(args, "{\"error\":\"OUT_OF_STOCK\",\"message\":\"gone\",\"statusCode\":409}");
    json_t *j = json_loads(r.out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "type")),
                        "https://api.example.com/errors/out_of_stock");
    assert_string_equal(json_string_value(json_object_get(j, "code")), "out_of_stock");
    json_decref(j);
    run_free(&r);
    unlink(path);
}

/* The text of the code section with anchor `id` (up to the next section). */
static char *section_of(const char *page, const char *id)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "<section class=\"code\" id=\"%s\">", id);
    const char *a = strstr(page, needle);
    if (!a) fail_msg("no section %s", id);
    const char *b = strstr(a, "</section>");
    assert_non_null(b);
    return strndup(a, (size_t)(b - a));
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* Issue 27 item 12: a page people would publish: styled with its own CSS
 * (nothing fetched), a table of contents, one anchor per code, the seed
 * spellings listed per code, and the codes an API leaves out of it. */
static void test_docs_html_is_a_publishable_page(void **state)
{
    (void)state;
    run_t r = run("docs --format html --dialect flat-snake", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "<style>"));
    assert_null(strstr(r.out, "<link"));
    assert_null(strstr(r.out, "<script"));
    assert_null(strstr(r.out, "@import"));
    assert_non_null(strstr(r.out, "<nav class=\"toc\">"));
    assert_non_null(strstr(r.out, "<a href=\"#rate_limit_exceeded\">"));
    /* one anchor per code, named by the canonical code */
    assert_int_equal(count_of(r.out, " id=\"rate_limit_exceeded\""), 1);
    assert_int_equal(count_of(r.out, " id=\"not_found\""), 1);
    assert_int_equal(count_of(r.out, "<section class=\"code\""), 58); /* the catalog's codes (upgrade_not_allowed: issue 26) */
    /* the aliases people migrating from the seeds' APIs look for */
    char *s = section_of(r.out, "not_found");
    assert_non_null(strstr(s, "<code>resource_not_found</code>") ); /* flat-snake's own word: the heading */
    assert_non_null(strstr(s, "<code>not_found</code> <small>canonical</small>"));
    assert_non_null(strstr(s, "<code>route_not_found</code>"));
    free(s);
    s = section_of(r.out, "internal_error");
    assert_non_null(strstr(s, "<code>SERVICE_ERROR</code> <small>flat-camel</small>"));
    assert_non_null(strstr(s, "<code>internal_error</code> <small>canonical</small>"));
    free(s);
    s = section_of(r.out, "missing_api_key"); /* the code_map, said */
    assert_non_null(strstr(s, "<dt>Sent as</dt><dd><a href=\"#unauthorized\"><code>unauthorized</code></a>"));
    free(s);
    run_free(&r);
    /* a configuration's page: its docs_url's anchors, and only the codes it uses */
    char path[] = "/tmp/eg-docs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char cfg[] = "listen: 127.0.0.1:1\n"
                              "errors:\n  dialect: problem\n  docs_url: https://api.example.com/errors\n"
                              "  codes: { exclude: [duplicate_event, invalid_event_type] }\n"
                              "upstreams: { a: { servers: [\"127.0.0.1:2\"] } }\nroutes: [{ path: /, upstream: a }]\n";
    assert_int_equal(write(fd, cfg, sizeof(cfg) - 1), (ssize_t)(sizeof(cfg) - 1));
    close(fd);
    char args[256];
    snprintf(args, sizeof(args), "docs --format html --config %s", path);
    r = run(args, NULL);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, "duplicate_event"));
    assert_null(strstr(r.out, "invalid_event_type"));
    assert_int_equal(count_of(r.out, "<section class=\"code\""), 56);
    assert_non_null(strstr(r.out, "&quot;type&quot;: &quot;https://api.example.com/errors#rate_limit_exceeded&quot;"));
    assert_non_null(strstr(r.out, "<a href=\"https://api.example.com/errors#not_found\">"));
    s = section_of(r.out, "insufficient_scope");
    assert_non_null(strstr(s, "<code>INSUFFICIENT_PERMISSIONS</code> <small>typed</small>"));
    free(s);
    s = section_of(r.out, "internal_error");
    assert_non_null(strstr(s, "<code>INTERNAL_SERVER_ERROR</code> <small>typed</small>"));
    assert_non_null(strstr(s, "<code>SERVICE_ERROR</code> <small>flat-camel</small>"));
    free(s);
    run_free(&r);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_help),
        cmocka_unit_test(test_translate_flat_camel_to_jsonapi),
        cmocka_unit_test(test_translate_html_with_status),
        cmocka_unit_test(test_translate_bad_arguments),
        cmocka_unit_test(test_translate_forced_dialect_mismatch),
        cmocka_unit_test(test_docs_lists_every_code),
        cmocka_unit_test(test_docs_html_is_a_publishable_page),
        cmocka_unit_test(test_catalog_file_changes_docs_and_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
