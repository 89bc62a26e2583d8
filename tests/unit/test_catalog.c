/* test_catalog.c - the catalog: completeness against the seeds, lookups,
 * spellings, synonyms, statuses, docs links and catalog files. */
#include "testutil.h"

#include <unistd.h>

#include "errgate/catalog.h"
#include "errgate/errgate.h"

static int setup(void **state)
{
    eg_catalog_t *cat = NULL;
    if (eg_catalog_new_builtin(&cat)) return -1;
    *state = cat;
    return 0;
}

static int teardown(void **state)
{
    eg_catalog_free(*state);
    return 0;
}

/* Every code any seed page uses resolves, with the seed's status (validation
 * is 422 in two seeds and 400 in the catalog: the dialect carries that). */
static void test_every_seed_code_is_in_the_catalog(void **state)
{
    eg_catalog_t *cat = *state;
    char *text = tu_read_fixture("seed_codes.txt", NULL);
    int checked = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char dialect[32], code[64];
        int status;
        if (sscanf(line, "%31s %63s %d", dialect, code, &status) != 3) fail_msg("bad line %s", line);
        const eg_catalog_entry_t *e = eg_catalog_lookup(cat, code, strlen(code));
        if (!e) fail_msg("%s code %s is not in the catalog", dialect, code);
        if (e->status != status && !(strcmp(e->code, "validation_error") == 0 && status == 422))
            fail_msg("%s code %s: catalog status %d, seed %d", dialect, code, e->status, status);
        checked++;
    }
    assert_true(checked >= 60);
    free(text);
}

static void test_entries_are_complete(void **state)
{
    eg_catalog_t *cat = *state;
    assert_true(eg_catalog_count(cat) >= 50);
    for (size_t i = 0; i < eg_catalog_count(cat); i++) {
        const eg_catalog_entry_t *e = eg_catalog_at(cat, i);
        assert_true(e->status >= 400 && e->status <= 599);
        assert_true(e->type && *e->type);
        assert_true(e->title && *e->title);
        assert_true(e->message && *e->message);
        assert_true(e->resolution && *e->resolution);
        for (const char *p = e->code; *p; p++) assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
        assert_ptr_equal(eg_catalog_find(cat, e->code), e);
    }
    assert_null(eg_catalog_at(cat, eg_catalog_count(cat)));
}

static void test_spellings_and_synonyms(void **state)
{
    eg_catalog_t *cat = *state;
    const eg_catalog_entry_t *ie = eg_catalog_find(cat, "internal_error");
    assert_string_equal(eg_catalog_spelling(ie, "typed"), "INTERNAL_SERVER_ERROR");
    assert_string_equal(eg_catalog_spelling(ie, "flat-snake"), "internal_server_error");
    assert_string_equal(eg_catalog_spelling(ie, "flat-camel"), "SERVICE_ERROR");
    assert_null(eg_catalog_spelling(ie, "jsonapi"));
    const char *nf[] = {"NOT_FOUND", "resource_not_found", "not_found", "Resource_Not_Found"};
    for (size_t i = 0; i < 4; i++)
        assert_ptr_equal(eg_catalog_lookup(cat, nf[i], strlen(nf[i])), eg_catalog_find(cat, "not_found"));
    assert_ptr_equal(eg_catalog_lookup(cat, "EXTERNAL_SERVICE_ERROR", 22), eg_catalog_find(cat, "external_service_error"));
    assert_ptr_equal(eg_catalog_lookup(cat, "insufficient_permissions", 24), eg_catalog_find(cat, "insufficient_scope"));
    /* find is exact: spellings and other cases are not canonical codes */
    assert_null(eg_catalog_find(cat, "NOT_FOUND"));
    assert_null(eg_catalog_find(cat, "resource_not_found"));
    assert_null(eg_catalog_lookup(cat, "no_such_code", 12));
    /* lengths are honoured: a prefix is not a match */
    assert_null(eg_catalog_lookup(cat, "not_found", 3));
}

static void test_generic_code_per_status(void **state)
{
    eg_catalog_t *cat = *state;
    static const struct {
        int status;
        const char *code;
    } cases[] = {{400, "bad_request"}, {401, "unauthorized"}, {403, "forbidden"}, {404, "not_found"},
                 {405, "method_not_allowed"}, {409, "conflict"}, {413, "payload_too_large"},
                 {414, "uri_too_long"}, {422, "unprocessable_entity"}, {429, "rate_limit_exceeded"},
                 {431, "request_header_fields_too_large"}, {418, "bad_request"}, {500, "internal_error"},
                 {502, "bad_gateway"}, {503, "service_unavailable"}, {504, "gateway_timeout"},
                 {599, "internal_error"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const eg_catalog_entry_t *e = eg_catalog_for_status(cat, cases[i].status);
        assert_non_null(e);
        if (strcmp(e->code, cases[i].code) != 0)
            fail_msg("status %d -> %s, want %s", cases[i].status, e->code, cases[i].code);
    }
    assert_null(eg_catalog_for_status(cat, 200));
}

static void test_retryable_flags(void **state)
{
    eg_catalog_t *cat = *state;
    assert_true(eg_catalog_find(cat, "rate_limit_exceeded")->retryable);
    assert_true(eg_catalog_find(cat, "service_unavailable")->retryable);
    assert_true(eg_catalog_find(cat, "gateway_timeout")->retryable);
    assert_false(eg_catalog_find(cat, "validation_error")->retryable);
    assert_false(eg_catalog_find(cat, "invalid_api_key")->retryable);
    assert_false(eg_catalog_find(cat, "quota_exceeded")->retryable);
}

static void test_docs_url_template(void **state)
{
    eg_catalog_t *cat = *state;
    const eg_catalog_entry_t *e = eg_catalog_find(cat, "not_found");
    char buf[128];
    assert_int_equal(eg_catalog_docs_url(cat, e, buf, sizeof(buf)), 0);
    assert_int_equal(eg_catalog_set_docs_template(cat, "https://x.dev/errors/{code}#{code}"), EG_OK);
    size_t n = eg_catalog_docs_url(cat, e, buf, sizeof(buf));
    assert_string_equal(buf, "https://x.dev/errors/not_found#not_found");
    assert_int_equal(n, strlen(buf));
    char small[8];
    assert_int_equal(eg_catalog_docs_url(cat, e, small, sizeof(small)), n);
    assert_string_equal(small, "https:/");
    assert_int_equal(eg_catalog_set_docs_template(cat, NULL), EG_OK);
}

static const char good_file[] =
    "docs_url: \"https://api.example.com/errors/{code}\"\n"
    "codes:\n"
    "  validation_error: { status: 422, message: \"Check your input\", docs: \"https://docs/v\" }\n"
    "  out_of_stock:\n"
    "    status: 409\n"
    "    title: Out of Stock\n"
    "    message: The item is out of stock\n"
    "    type: inventory_error\n"
    "    retryable: false\n"
    "    spellings: { typed: OUT_OF_STOCK_ERROR }\n"
    "    synonyms: [sold_out]\n";

static void test_catalog_file_overrides_and_adds(void **state)
{
    (void)state;
    eg_catalog_t *cat = NULL;
    assert_int_equal(eg_catalog_new_builtin(&cat), EG_OK);
    size_t before = eg_catalog_count(cat);
    char path[] = "/tmp/eg-catalog-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, good_file, sizeof(good_file) - 1), (ssize_t)(sizeof(good_file) - 1));
    close(fd);
    char err[256];
    assert_int_equal(eg_catalog_load_file(cat, path, err, sizeof(err)), EG_OK);
    unlink(path);
    assert_int_equal(eg_catalog_count(cat), before + 1);
    const eg_catalog_entry_t *v = eg_catalog_find(cat, "validation_error");
    assert_int_equal(v->status, 422);
    assert_string_equal(v->message, "Check your input");
    assert_string_equal(v->title, "Validation Failed"); /* untouched */
    char url[128];
    eg_catalog_docs_url(cat, v, url, sizeof(url));
    assert_string_equal(url, "https://docs/v");
    const eg_catalog_entry_t *o = eg_catalog_lookup(cat, "SOLD_OUT", 8);
    assert_non_null(o);
    assert_string_equal(o->code, "out_of_stock");
    assert_int_equal(o->status, 409);
    assert_string_equal(eg_catalog_spelling(o, "typed"), "OUT_OF_STOCK_ERROR");
    assert_ptr_equal(eg_catalog_lookup(cat, "out_of_stock_error", 18), o);
    eg_catalog_docs_url(cat, o, url, sizeof(url));
    assert_string_equal(url, "https://api.example.com/errors/out_of_stock");
    /* the built-in entries are still found after the table grew */
    assert_non_null(eg_catalog_find(cat, "gateway_timeout"));
    eg_catalog_free(cat);
}

/* The catalog says once which of its strings need JSON escaping; an error
 * made from an entry whose message does need it still renders valid JSON. */
static void test_catalog_strings_escape_when_they_must(void **state)
{
    (void)state;
    eg_catalog_t *cat = NULL;
    eg_dialects_t *set = NULL;
    assert_int_equal(eg_catalog_new_builtin(&cat), EG_OK);
    assert_int_equal(eg_dialects_new_builtin(&set), EG_OK);
    const eg_catalog_entry_t *nf = eg_catalog_find(cat, "not_found");
    assert_true(nf->plain & (1u << EG_S_MESSAGE));
    static const char yaml[] = "codes:\n  not_found:\n    message: \"say \\\"no\\\"\\n\"\n";
    char err[256];
    assert_int_equal(eg_catalog_load_yaml(cat, yaml, sizeof(yaml) - 1, "c.yaml", err, sizeof(err)), EG_OK);
    nf = eg_catalog_find(cat, "not_found");
    assert_string_equal(nf->message, "say \"no\"\n");
    assert_false(nf->plain & (1u << EG_S_MESSAGE));
    assert_true(nf->plain & (1u << EG_S_CODE));
    /* the lengths an error takes from the entry follow an override too */
    assert_int_equal(nf->len[EG_S_MESSAGE], strlen(nf->message));
    for (size_t i = 0; i < eg_catalog_count(cat); i++) {
        const eg_catalog_entry_t *x = eg_catalog_at(cat, i);
        const char *s[] = {x->code, x->type, x->title, x->message};
        for (int k = 0; k < 4; k++) assert_int_equal(x->len[k], s[k] ? strlen(s[k]) : 0);
    }
    eg_error_t *e = NULL;
    assert_int_equal(eg_error_from_catalog(cat, "not_found", &e), EG_OK);
    assert_int_equal(e->len[EG_S_MESSAGE], strlen(nf->message));
    char buf[2048];
    size_t n = eg_render(e, eg_dialects_get(set, "problem"), cat, buf, sizeof(buf));
    json_t *j = json_loadb(buf, n, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "detail")), "say \"no\"\n");
    json_decref(j);
    eg_error_free(e);
    eg_dialects_free(set);
    eg_catalog_free(cat);
}

static void test_bad_catalog_files_are_refused_whole(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"codes:\n  Bad-Code: { status: 400 }\n", "c.yaml:2:3: code 'Bad-Code' must be snake_case"},
        {"codes:\n  new_code: { title: x }\n", "c.yaml:2:13: new code 'new_code' needs a status"},
        {"codes:\n  not_found: { status: 200 }\n", "c.yaml:2:24: 200 is out of range 400..599"},
        {"codes:\n  not_found: { colour: red }\n", "c.yaml:2:16: unknown attribute 'colour'"},
        {"codes:\n  resource_not_found: { status: 404 }\n", "c.yaml:2:3: code 'resource_not_found' is already a spelling of 'not_found'"},
        {"codes:\n  x_y: { status: 400, synonyms: [not_found] }\n", "c.yaml:2:34: synonym 'not_found' already means 'not_found'"},
        {"codes:\n  not_found: { retryable: maybe }\n", "c.yaml:2:27: expected true or false"},
        {"docs: 1\n", "c.yaml:1:1: unknown key 'docs'"},
        {"- a\n", "c.yaml:1:1: a catalog file is a map"},
        /* the first entry is fine, the second is not: nothing may be applied */
        {"codes:\n  not_found: { status: 410 }\n  bad: { status: nope }\n", "c.yaml:3:18: expected an integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        eg_catalog_t *cat = NULL;
        assert_int_equal(eg_catalog_new_builtin(&cat), EG_OK);
        char err[256] = "";
        int rc = eg_catalog_load_yaml(cat, cases[i].yaml, strlen(cases[i].yaml), "c.yaml", err, sizeof(err));
        assert_int_equal(rc, EG_EPARSE);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].want);
        assert_int_equal(eg_catalog_find(cat, "not_found")->status, 404);
        eg_catalog_free(cat);
    }
    eg_catalog_t *cat = NULL;
    char err[256];
    assert_int_equal(eg_catalog_new_builtin(&cat), EG_OK);
    assert_int_equal(eg_catalog_load_file(cat, "/nonexistent/c.yaml", err, sizeof(err)), EG_EIO);
    eg_catalog_free(cat);
}

/* Issue 27 item 8: which details a translated 5xx keeps is an allow-list
 * per code (the seeds' documented members), changeable in a catalog file. */
static void test_safe_details_per_code(void **state)
{
    (void)state;
    eg_catalog_t *cat = NULL;
    assert_int_equal(eg_catalog_new_builtin(&cat), EG_OK);
    const char *const *names;
    size_t n = eg_catalog_safe_details(cat, eg_catalog_find(cat, "service_unavailable"), &names);
    assert_int_equal(n, 3);
    assert_string_equal(names[2], "status_page");
    n = eg_catalog_safe_details(cat, eg_catalog_find(cat, "external_service_error"), &names);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "service");
    assert_int_equal(eg_catalog_safe_details(cat, eg_catalog_find(cat, "database_error"), &names), 0);
    assert_null(names);
    assert_int_equal(eg_catalog_find(cat, "external_service_error")->status, 502);
    static const char yaml[] = "codes:\n  database_error: { safe_details: [table] }\n"
                               "  ledger_down: { status: 503, safe_details: [ledger, eta] }\n";
    char err[256];
    assert_int_equal(eg_catalog_load_yaml(cat, yaml, sizeof(yaml) - 1, "c.yaml", err, sizeof(err)), EG_OK);
    n = eg_catalog_safe_details(cat, eg_catalog_find(cat, "database_error"), &names);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "table");
    n = eg_catalog_safe_details(cat, eg_catalog_find(cat, "ledger_down"), &names);
    assert_int_equal(n, 2);
    assert_string_equal(names[1], "eta");
    /* the others are untouched by the reload */
    assert_int_equal(eg_catalog_safe_details(cat, eg_catalog_find(cat, "gateway_timeout"), &names), 2);
    eg_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_seed_code_is_in_the_catalog),
        cmocka_unit_test(test_entries_are_complete),
        cmocka_unit_test(test_safe_details_per_code),
        cmocka_unit_test(test_spellings_and_synonyms),
        cmocka_unit_test(test_generic_code_per_status),
        cmocka_unit_test(test_retryable_flags),
        cmocka_unit_test(test_docs_url_template),
        cmocka_unit_test(test_catalog_file_overrides_and_adds),
        cmocka_unit_test(test_catalog_strings_escape_when_they_must),
        cmocka_unit_test(test_bad_catalog_files_are_refused_whole),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
