/* test_openapi.c - OpenAPI documents read as operations (lib/openapi.c), on
 * the documents under tests/fixtures/openapi/. */
#include "testutil.h"

#include "errgate/router.h"
#include "openapi.h"
#include "params.h"

#define FIX EG_FIXTURES "/openapi/"

static eg_openapi_t *load_ok(const char *name)
{
    eg_openapi_t *oa = NULL;
    char err[1024] = "";
    int rc = eg_openapi_load(name, &oa, err, sizeof(err));
    if (rc != EG_OK) fail_msg("%s: %s (%d)", name, err, rc);
    return oa;
}

/* The message of a refused document; fails when it loads. */
static void load_fails(const char *name, int want_rc, const char *want)
{
    eg_openapi_t *oa = NULL;
    char err[1024] = "";
    int rc = eg_openapi_load(name, &oa, err, sizeof(err));
    if (rc == EG_OK) {
        eg_openapi_free(oa);
        fail_msg("%s loaded; want %s", name, want);
    }
    if (rc != want_rc) fail_msg("%s: rc %d, want %d (%s)", name, rc, want_rc, err);
    if (!strstr(err, want)) fail_msg("%s: '%s' does not contain '%s'", name, err, want);
}

static const eg_oa_op_t *find_op(const eg_openapi_t *oa, const char *method, const char *path)
{
    for (size_t i = 0; i < eg_openapi_nops(oa); i++) {
        const eg_oa_op_t *op = eg_openapi_op(oa, i);
        if (strcmp(op->method, method) == 0 && strcmp(op->path, path) == 0) return op;
    }
    fail_msg("no operation %s %s", method, path);
    return NULL;
}

static const eg_oa_param_t *find_param(const eg_oa_op_t *op, const char *name, eg_oa_in_t in)
{
    for (size_t i = 0; i < op->nparams; i++)
        if (strcmp(op->params[i].name, name) == 0 && op->params[i].in == in) return &op->params[i];
    return NULL;
}

static int has_warning(const eg_openapi_t *oa, const char *want)
{
    for (size_t i = 0; i < eg_openapi_nwarnings(oa); i++)
        if (strstr(eg_openapi_warning(oa, i), want)) return 1;
    return 0;
}

static void expect_warning(const eg_openapi_t *oa, const char *want)
{
    if (has_warning(oa, want)) return;
    for (size_t i = 0; i < eg_openapi_nwarnings(oa); i++)
        fprintf(stderr, "  warning: %s\n", eg_openapi_warning(oa, i));
    fail_msg("no warning containing '%s'", want);
}

static void test_operations_paths_and_base(void **state)
{
    (void)state;
    eg_openapi_t *oa = load_ok(FIX "pets.yaml");
    assert_string_equal(eg_openapi_version(oa), "3.1.0");
    assert_false(eg_openapi_is30(oa));
    assert_string_equal(eg_openapi_title(oa), "Pet store");
    assert_int_equal(eg_openapi_nops(oa), 6);
    const eg_oa_op_t *op = find_op(oa, "get", "/pets");
    assert_string_equal(op->base, "/v1"); /* the first server, its trailing '/' dropped */
    assert_int_equal(op->method_bit, EG_M_GET);
    assert_string_equal(op->operation_id, "listPets");
    assert_string_equal(op->summary, "List pets");
    assert_false(op->has_body);
    assert_false(op->security);
    op = find_op(oa, "get", "/pets/{petId}");
    assert_string_equal(op->base, "/v1");
    op = find_op(oa, "delete", "/pets/{petId}");
    assert_int_equal(op->method_bit, EG_M_DELETE);
    find_op(oa, "get", "/pets/mine");
    /* servers on the path item win: "/" is no base at all */
    op = find_op(oa, "get", "/health");
    assert_string_equal(op->base, "");
    eg_openapi_free(oa);
}

static void test_parameters_merged_and_refs_followed(void **state)
{
    (void)state;
    eg_openapi_t *oa = load_ok(FIX "pets.yaml");
    const eg_oa_op_t *op = find_op(oa, "get", "/pets");
    /* limit comes from the sibling file common.yaml */
    const eg_oa_param_t *p = find_param(op, "limit", EG_OA_QUERY);
    assert_non_null(p);
    assert_string_equal(eg_ydoc_name(p->doc), FIX "common.yaml");
    assert_non_null(p->schema.node);
    assert_ptr_equal(p->schema.doc, p->doc);
    assert_string_equal(eg_ymap_get(p->schema.node, "maximum")->str, "100");
    assert_false(p->required);
    /* arrays in query strings: form explode (the default), form unexploded, pipes */
    p = find_param(op, "tags", EG_OA_QUERY);
    assert_int_equal(p->style, EG_PSTYLE_FORM);
    assert_true(p->explode);
    p = find_param(op, "ids", EG_OA_QUERY);
    assert_int_equal(p->style, EG_PSTYLE_FORM);
    assert_false(p->explode);
    p = find_param(op, "colors", EG_OA_QUERY);
    assert_int_equal(p->style, EG_PSTYLE_PIPE);
    assert_false(p->explode);
    p = find_param(op, "X-Trace", EG_OA_HEADER);
    assert_int_equal(p->style, EG_PSTYLE_SIMPLE);
    assert_true(p->required);
    /* the cookie parameter is left out (and warned about) */
    assert_null(find_param(op, "session", EG_OA_COOKIE));
    assert_int_equal(op->nparams, 5);

    /* path-level parameters ($ref to components) merged; the operation's
     * verbose (required) replaces the path item's */
    op = find_op(oa, "get", "/pets/{petId}");
    assert_int_equal(op->nparams, 2);
    p = find_param(op, "petId", EG_OA_PATH);
    assert_true(p->required);
    assert_int_equal(p->style, EG_PSTYLE_SIMPLE);
    assert_string_equal(eg_ymap_get(p->schema.node, "type")->str, "integer");
    assert_true(find_param(op, "verbose", EG_OA_QUERY)->required);
    op = find_op(oa, "delete", "/pets/{petId}");
    assert_int_equal(op->nparams, 2);
    assert_false(find_param(op, "verbose", EG_OA_QUERY)->required);
    eg_openapi_free(oa);
}

static void test_request_body_media_and_allof(void **state)
{
    (void)state;
    eg_openapi_t *oa = load_ok(FIX "pets.yaml");
    const eg_oa_op_t *op = find_op(oa, "post", "/pets");
    assert_true(op->has_body);
    assert_true(op->body_required);
    assert_true(op->security);
    assert_int_equal(op->nmedia, 2);
    assert_string_equal(op->media[0].type, "application/json");
    assert_string_equal(op->media[1].type, "application/x-www-form-urlencoded");
    /* the schema stays a $ref for the compiler, and it resolves to the allOf */
    const eg_ynode_t *ref = eg_ymap_get(op->media[0].schema.node, "$ref");
    assert_string_equal(ref->str, "#/components/schemas/NewPet");
    const eg_ydoc_t *d = NULL;
    const eg_ynode_t *n = NULL;
    char err[512];
    assert_int_equal(
        eg_openapi_resolve(oa, op->media[0].schema.doc, ref, ref->str, &d, &n, err, sizeof(err)),
        EG_OK);
    const eg_ynode_t *all = eg_ymap_get(n, "allOf");
    assert_non_null(all);
    assert_int_equal(all->n, 2);
    /* and the allOf's first member reaches the sibling file */
    const eg_ynode_t *r2 = eg_ymap_get(all->items[0], "$ref");
    assert_int_equal(eg_openapi_resolve(oa, d, r2, r2->str, &d, &n, err, sizeof(err)), EG_OK);
    assert_string_equal(eg_ydoc_name(d), FIX "common.yaml");
    assert_non_null(eg_ymap_get(eg_ymap_get(n, "properties"), "name"));
    /* the schema compiler's options: 3.1 vocabulary, the document cache */
    eg_schema_opts_t so;
    eg_openapi_schema_opts(oa, &so);
    assert_false(so.openapi30);
    assert_non_null(so.load);
    const eg_ydoc_t *again = NULL;
    assert_int_equal(so.load(so.load_ctx, FIX "common.yaml", &again, err, sizeof(err)), EG_OK);
    assert_ptr_equal(again, d); /* cached: parsed once */
    assert_int_not_equal(so.load(so.load_ctx, FIX "../seed_codes.txt", &again, err, sizeof(err)),
                         EG_OK);
    assert_non_null(strstr(err, "outside the directory"));
    eg_openapi_free(oa);
}

/* Compiles the schema of an operation's media type and counts the problems
 * of `json` against it (0: valid). */
static size_t problems(eg_openapi_t *oa, const eg_oa_schema_t *sc, const char *json)
{
    eg_schema_opts_t so;
    eg_openapi_schema_opts(oa, &so);
    eg_schema_t *s = NULL;
    char err[512] = "";
    if (eg_schema_compile(sc->doc, sc->node, &so, &s, err, sizeof(err)) != EG_OK)
        fail_msg("compile: %s", err);
    eg_jr_doc_t doc;
    if (eg_jr_parse(&doc, json, strlen(json)) != EG_OK) fail_msg("bad test JSON %s", json);
    eg_schema_report_t rep = {NULL, "", NULL, 0, 0};
    int rc = eg_schema_validate(s, &doc, NULL, &rep);
    assert_true(rc == EG_OK || rc == EG_ERANGE);
    eg_jr_free(&doc);
    eg_schema_free(s);
    return rc == EG_OK ? 0 : rep.count ? rep.count : 1;
}

static void test_schemas_compile_through_the_document_cache(void **state)
{
    (void)state;
    eg_openapi_t *oa = load_ok(FIX "pets.yaml");
    const eg_oa_op_t *op = find_op(oa, "post", "/pets");
    /* allOf of a sibling file's Named and the local object: both apply */
    assert_int_equal(
        problems(oa, &op->media[0].schema, "{\"name\": \"Rex\", \"species\": \"dog\"}"), 0);
    assert_int_not_equal(problems(oa, &op->media[0].schema, "{\"species\": \"dog\"}"),
                         0); /* Named.name */
    assert_int_not_equal(problems(oa, &op->media[0].schema, "{\"name\": \"Rex\"}"),
                         0); /* species */
    assert_int_not_equal(
        problems(oa, &op->media[0].schema, "{\"name\": \"\", \"species\": \"cow\"}"), 0);
    /* a parameter's schema from common.yaml */
    const eg_oa_param_t *limit = find_param(find_op(oa, "get", "/pets"), "limit", EG_OA_QUERY);
    assert_int_equal(problems(oa, &limit->schema, "100"), 0);
    assert_int_not_equal(problems(oa, &limit->schema, "101"), 0);
    eg_openapi_free(oa);

    /* 3.0: nullable in the compiler's 3.0 dialect */
    oa = load_ok(FIX "legacy30.yaml");
    op = find_op(oa, "post", "/notes");
    assert_int_equal(problems(oa, &op->media[0].schema, "{\"due\": null}"), 0);
    assert_int_equal(problems(oa, &op->media[0].schema, "{\"due\": \"2024-02-29\"}"), 0);
    assert_int_not_equal(problems(oa, &op->media[0].schema, "{\"due\": \"2023-02-29\"}"), 0);
    assert_int_not_equal(problems(oa, &op->media[0].schema, "{\"text\": null}"),
                         0); /* not nullable */
    eg_openapi_free(oa);
}

static const eg_param_rule_t *rule(const eg_validation_t *v, const char *name, eg_param_in_t in)
{
    for (size_t i = 0; i < v->params.n; i++)
        if (strcmp(v->params.rules[i].name, name) == 0 && v->params.rules[i].in == in)
            return &v->params.rules[i];
    fail_msg("no rule %s", name);
    return NULL;
}

static void test_operations_become_rule_sets(void **state)
{
    (void)state;
    eg_openapi_t *oa = load_ok(FIX "pets.yaml");
    char err[512] = "";
    eg_validation_t *v = NULL;
    assert_int_equal(
        eg_openapi_validation(oa, find_op(oa, "get", "/pets"), 4096, 0, &v, err, sizeof(err)),
        EG_OK);
    assert_int_equal(v->params.n, 5);
    assert_int_equal(v->max_body, 4096);
    assert_int_equal(v->status, 0);
    assert_null(v->content_types); /* no requestBody: any */
    const eg_param_rule_t *r = rule(v, "ids", EG_PIN_QUERY);
    assert_int_equal(r->style, EG_PSTYLE_FORM);
    assert_false(r->explode);
    assert_int_equal(r->types, EG_ST_ARRAY);
    assert_int_equal(r->item_types, EG_ST_INTEGER);
    assert_int_equal(rule(v, "colors", EG_PIN_QUERY)->style, EG_PSTYLE_PIPE);
    assert_true(rule(v, "tags", EG_PIN_QUERY)->explode);
    assert_true(rule(v, "X-Trace", EG_PIN_HEADER)->required);
    assert_int_equal(rule(v, "X-Trace", EG_PIN_HEADER)->style, EG_PSTYLE_SIMPLE);
    assert_int_equal(rule(v, "limit", EG_PIN_QUERY)->types, EG_ST_INTEGER);
    eg_validation_free(v);

    v = NULL;
    assert_int_equal(
        eg_openapi_validation(oa, find_op(oa, "post", "/pets"), 1024, 422, &v, err, sizeof(err)),
        EG_OK);
    assert_int_equal(v->status, 422);
    assert_true(v->body_required);
    assert_non_null(v->body);
    assert_int_equal(v->ncontent_types, 2);
    assert_string_equal(v->content_types[1], "application/x-www-form-urlencoded");
    /* the form schema's properties, through $ref and allOf (name from the sibling file) */
    assert_true(v->has_form);
    assert_true(rule(v, "name", EG_PIN_FORM)->required);
    assert_true(rule(v, "species", EG_PIN_FORM)->required);
    assert_false(rule(v, "age", EG_PIN_FORM)->required);
    assert_int_equal(rule(v, "age", EG_PIN_FORM)->types, EG_ST_INTEGER);
    assert_int_equal(v->params.n, 4);
    eg_validation_free(v);

    v = NULL;
    assert_int_equal(eg_openapi_validation(oa, find_op(oa, "get", "/pets/{petId}"), 1024, 0, &v,
                                           err, sizeof(err)),
                     EG_OK);
    assert_int_equal(rule(v, "petId", EG_PIN_PATH)->style, EG_PSTYLE_SIMPLE);
    assert_true(rule(v, "verbose", EG_PIN_QUERY)->required);
    eg_validation_free(v);
    eg_openapi_free(oa);

    /* a parameter described by content: presence only */
    oa = load_ok(FIX "legacy30.yaml");
    v = NULL;
    assert_int_equal(
        eg_openapi_validation(oa, find_op(oa, "get", "/notes"), 1024, 0, &v, err, sizeof(err)),
        EG_OK);
    assert_null(rule(v, "q", EG_PIN_QUERY)->schema);
    eg_validation_free(v);
    eg_openapi_free(oa);
}

static void test_media_types_of_a_body(void **state)
{
    (void)state;
    eg_openapi_t *oa = load_ok(FIX "media.yaml");
    char err[512] = "";
    eg_validation_t *v = NULL;
    assert_int_equal(
        eg_openapi_validation(oa, find_op(oa, "put", "/upload"), 1024, 0, &v, err, sizeof(err)),
        EG_OK);
    assert_int_equal(v->ncontent_types, 4);
    assert_string_equal(v->content_types[0], "application/json"); /* parameters dropped */
    assert_string_equal(v->content_types[1], "application/*+json");
    assert_non_null(v->body); /* the first JSON type's schema */
    assert_false(v->body_required);
    assert_false(v->has_form);
    eg_validation_free(v);
    expect_warning(
        oa, FIX "media.yaml:11:21: put /upload: the schema of 'application/*+json' is not checked");
    expect_warning(oa,
                   FIX "media.yaml:13:21: put /upload: the schema of 'text/plain' is not checked");
    expect_warning(
        oa,
        FIX "media.yaml:15:21: put /upload: the schema of 'multipart/form-data' is not checked");
    eg_openapi_free(oa);
}

static void test_every_style_maps_to_a_rule(void **state)
{
    (void)state;
    eg_openapi_t *oa = load_ok(FIX "styles.yaml");
    char err[512] = "";
    eg_validation_t *v = NULL;
    assert_int_equal(eg_openapi_validation(oa, find_op(oa, "get", "/items/{ids}/{color}"), 1024, 0,
                                           &v, err, sizeof(err)),
                     EG_OK);
    const eg_param_rule_t *r = rule(v, "ids", EG_PIN_PATH);
    assert_int_equal(r->style, EG_PSTYLE_LABEL);
    assert_true(r->explode);
    assert_int_equal(r->item_types, EG_ST_INTEGER);
    assert_int_equal(rule(v, "color", EG_PIN_PATH)->style, EG_PSTYLE_MATRIX);
    assert_false(rule(v, "color", EG_PIN_PATH)->explode);
    assert_int_equal(rule(v, "words", EG_PIN_QUERY)->style, EG_PSTYLE_SPACE);
    assert_int_equal(rule(v, "filter", EG_PIN_QUERY)->style, EG_PSTYLE_DEEP);
    assert_true(rule(v, "filter", EG_PIN_QUERY)->explode);
    assert_int_equal(rule(v, "X-Ids", EG_PIN_HEADER)->style, EG_PSTYLE_SIMPLE);
    assert_false(rule(v, "X-Ids", EG_PIN_HEADER)->required);
    eg_validation_free(v);
    eg_openapi_free(oa);
    load_fails(
        FIX "badstyle.yaml", EG_EPARSE,
        FIX "badstyle.yaml:7:39: parameter 'q': style matrix does not apply to query parameters");
}

static void test_warnings_have_positions(void **state)
{
    (void)state;
    eg_openapi_t *oa = load_ok(FIX "pets.yaml");
    expect_warning(oa, FIX "pets.yaml:7:5: only the first server's base path is used");
    expect_warning(oa, FIX "pets.yaml:27:11: cookie parameter 'session' is not checked");
    expect_warning(
        oa, FIX "pets.yaml:48:15: encoding of 'application/x-www-form-urlencoded' is not checked");
    expect_warning(oa, FIX "pets.yaml:50:9: callbacks are requests the API makes");
    expect_warning(oa, FIX "pets.yaml:79:7: unknown key 'frobnicate' in an operation is ignored");
    assert_false(has_warning(oa, "x-internal")); /* extensions are the author's own */
    assert_int_equal(eg_openapi_nwarnings(oa), 5);
    /* a caller's own, in the same form */
    const eg_oa_op_t *op = find_op(oa, "post", "/pets");
    eg_openapi_warn(oa, op->doc, op->at, "%s needs %s", "createPet", "auth");
    expect_warning(oa, FIX "pets.yaml:35:7: createPet needs auth");
    eg_openapi_free(oa);
}

static void test_openapi30_with_variables_and_content(void **state)
{
    (void)state;
    eg_openapi_t *oa = load_ok(FIX "legacy30.yaml");
    assert_true(eg_openapi_is30(oa));
    eg_schema_opts_t so;
    eg_openapi_schema_opts(oa, &so);
    assert_true(so.openapi30); /* nullable is the compiler's, in its 3.0 dialect */
    const eg_oa_op_t *op = find_op(oa, "post", "/notes");
    assert_string_equal(op->base, "/v2"); /* {version}'s default */
    assert_false(op->body_required);
    const eg_ynode_t *due = eg_ymap_get(eg_ymap_get(op->media[0].schema.node, "properties"), "due");
    assert_string_equal(eg_ymap_get(due, "nullable")->str, "true");
    op = find_op(oa, "get", "/notes");
    assert_true(find_param(op, "q", EG_OA_QUERY)->content);
    assert_null(find_param(op, "q", EG_OA_QUERY)->schema.node);
    expect_warning(oa,
                   FIX "legacy30.yaml:26:13: parameter 'q' is described by content, not schema");
    eg_openapi_free(oa);
}

static void test_json_document(void **state)
{
    (void)state;
    eg_openapi_t *oa = load_ok(FIX "pets.json");
    assert_int_equal(eg_openapi_nops(oa), 1);
    const eg_oa_op_t *op = find_op(oa, "get", "/pets/{id}");
    assert_string_equal(op->base, "");
    const eg_oa_param_t *p = find_param(op, "id", EG_OA_PATH);
    assert_string_equal(eg_ymap_get(p->schema.node, "format")->str, "uuid");
    assert_int_equal(p->at->line, 8); /* positions in JSON too */
    eg_openapi_free(oa);
}

static void test_refused_documents(void **state)
{
    (void)state;
    load_fails(FIX "swagger2.yaml", EG_EPARSE, FIX "swagger2.yaml:1:10: a Swagger 2.0 document");
    load_fails(FIX "noversion.yaml", EG_EPARSE, FIX "noversion.yaml:1:1: not an OpenAPI document");
    load_fails(FIX "v4.yaml", EG_EPARSE, FIX "v4.yaml:1:10: unsupported OpenAPI version '4.0.0'");
    load_fails(FIX "badref.yaml", EG_EPARSE,
               FIX "badref.yaml:7:17: $ref '#/components/parameters/Missing' does not resolve");
    load_fails(FIX "cycle.yaml", EG_EPARSE, "$ref chain longer than 32");
    load_fails(FIX "inner/escape.yaml", EG_EPARSE,
               "is outside the directory of the OpenAPI document");
    load_fails(FIX "badpath.yaml", EG_EPARSE,
               FIX "badpath.yaml:4:3: path '/report.{format}' cannot be routed");
    load_fails(FIX "nonexistent.yaml", EG_EIO, "nonexistent.yaml");
}

static void test_documents_in_memory(void **state)
{
    (void)state;
    static const char doc[] = "openapi: 3.1.0\ninfo: {title: mem, version: '1'}\npaths:\n"
                              "  /a/{id}:\n    get:\n      parameters:\n"
                              "        - $ref: 'common.yaml#/components/parameters/Limit'\n"
                              "      responses: {'200': {description: ok}}\n";
    eg_openapi_t *oa = NULL;
    char err[512] = "";
    /* named in the fixtures' directory: the sibling resolves there */
    assert_int_equal(eg_openapi_parse(doc, sizeof(doc) - 1, FIX "mem.yaml", &oa, err, sizeof(err)),
                     EG_OK);
    const eg_oa_op_t *op = find_op(oa, "get", "/a/{id}");
    assert_non_null(find_param(op, "limit", EG_OA_QUERY));
    expect_warning(oa, FIX "mem.yaml:6:7: get /a/{id}: path parameter 'id' is not declared");
    eg_openapi_free(oa);
    /* named where nothing exists: no sibling can be read */
    assert_int_equal(
        eg_openapi_parse(doc, sizeof(doc) - 1, "/nonexistent-dir/mem.yaml", &oa, err, sizeof(err)),
        EG_EPARSE);
    assert_non_null(strstr(err, "/nonexistent-dir/mem.yaml:7:17: $ref file"));
    /* JSON by the name, with its positions */
    static const char bad[] = "{\"openapi\": \"3.1.0\", \"paths\": {\"/x\": 7,}}";
    assert_int_equal(
        eg_openapi_parse(bad, sizeof(bad) - 1, "/nonexistent-dir/d.json", &oa, err, sizeof(err)),
        EG_EPARSE);
    assert_non_null(strstr(err, "/nonexistent-dir/d.json:1:"));
    /* over the cap on a file: refused before parsing */
    size_t big = EG_OPENAPI_MAX_BYTES + 1;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, ' ', big);
    assert_int_equal(
        eg_openapi_parse(text, big, "/nonexistent-dir/big.yaml", &oa, err, sizeof(err)),
        EG_ETOOBIG);
    assert_non_null(strstr(err, "larger than 8 MiB"));
    free(text);
}

static void test_base_path_of_server_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url, *want;
    } cases[] = {
        {"https://api.example.com/v1", "/v1"},
        {"https://api.example.com/v1/", "/v1"},
        {"http://h:8080", ""},
        {"/", ""},
        {"/api/v2", "/api/v2"},
        {"v3", "/v3"},
        {"//cdn.example.com/x", "/x"},
        {"https://h/a/b?x=1", "/a/b"},
        {"", ""},
    };
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(eg_openapi_base_path(cases[i].url, NULL, out, sizeof(out)), EG_OK);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%s -> '%s', want '%s'", cases[i].url, out, cases[i].want);
    }
    assert_int_equal(eg_openapi_base_path("https://h/{v}", NULL, out, sizeof(out)), EG_EINVAL);
    assert_int_equal(eg_openapi_base_path("https://h/long/path", NULL, out, 4), EG_ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operations_paths_and_base),
        cmocka_unit_test(test_parameters_merged_and_refs_followed),
        cmocka_unit_test(test_request_body_media_and_allof),
        cmocka_unit_test(test_schemas_compile_through_the_document_cache),
        cmocka_unit_test(test_operations_become_rule_sets),
        cmocka_unit_test(test_media_types_of_a_body),
        cmocka_unit_test(test_every_style_maps_to_a_rule),
        cmocka_unit_test(test_warnings_have_positions),
        cmocka_unit_test(test_openapi30_with_variables_and_content),
        cmocka_unit_test(test_json_document),
        cmocka_unit_test(test_refused_documents),
        cmocka_unit_test(test_documents_in_memory),
        cmocka_unit_test(test_base_path_of_server_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
