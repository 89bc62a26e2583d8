/* fuzz_schema.c - any schema against any instance: eg_ydoc_parse_json, then
 * eg_schema_compile (2020-12 or, by a bit of the input, OpenAPI 3.0), then
 * eg_schema_validate with field errors, with a bound of 3, and count-only.
 * Input: schema JSON, a NUL byte, instance JSON; without a NUL the first
 * byte says where to split the rest. Properties checked: no crash, no leak
 * (ASan), bounded time (libFuzzer's -timeout catches a runaway), the three
 * validations agree on valid / invalid, rep.count never below the field
 * errors written and those never above the bound, and every field error has
 * a pointer, a field, a constraint and a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/errgate.h"
#include "jsonr.h"
#include "schema.h"
#include "ytree.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_schema: %s\n", what);
    abort();
}

static void ignore(void *ctx, const char *msg)
{
    (void)ctx;
    if (!msg || !*msg) fail("empty warning");
}

/* "$ref" to another file reads a one-item in-memory set: exercises the
 * loader path without touching the file system. */
static int load(void *ctx, const char *path, const eg_ydoc_t **doc, char *err, size_t errlen)
{
    eg_ydoc_t **other = ctx;
    if (!*other) {
        static const char text[] = "{\"$defs\":{\"s\":{\"type\":\"string\",\"maxLength\":3},"
                                   "\"n\":{\"type\":\"integer\",\"minimum\":0}}}";
        int rc = eg_ydoc_parse_json(text, sizeof(text) - 1, path, other, err, errlen);
        if (rc) return rc;
    }
    *doc = *other;
    return EG_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 << 16) return 0;
    const char *text = (const char *)data;
    size_t slen, ioff;
    const uint8_t *nul = memchr(data, 0, size);
    int oas30 = 0;
    if (nul) {
        slen = (size_t)(nul - data);
        ioff = slen + 1;
        oas30 = (int)(size & 1);
    } else {
        oas30 = data[0] & 0x80;
        text += 1;
        size -= 1;
        slen = (size_t)(data[0] & 0x7f) * size / 128;
        ioff = slen;
    }
    eg_ydoc_t *doc = NULL, *other = NULL;
    eg_schema_t *s = NULL;
    eg_jr_doc_t jd;
    int parsed = 0;
    char err[512];
    if (eg_ydoc_parse_json(text, slen, "f.json", &doc, err, sizeof(err)) != EG_OK) goto done;
    eg_schema_opts_t opts = {oas30, load, &other, ignore, NULL};
    int rc = eg_schema_compile(doc, NULL, &opts, &s, err, sizeof(err));
    if (rc != EG_OK) {
        if (rc == EG_EPARSE && !err[0]) fail("refused without a message");
        goto done;
    }
    (void)eg_schema_types(s);
    (void)eg_schema_item_types(s);
    eg_ydoc_free(doc); /* the schema must not point into its document */
    doc = NULL;
    parsed = 1;
    if (eg_jr_parse(&jd, text + ioff, size - ioff) != EG_OK) goto done;

    eg_error_t *e = eg_error_new();
    if (!e) goto done;
    eg_schema_report_t all = {e, "/p", NULL, 1000, 0};
    int r1 = eg_schema_validate(s, &jd, NULL, &all);
    if (r1 != EG_OK && r1 != EG_ERANGE) fail("unexpected result");
    if ((r1 == EG_OK) != (all.count == 0)) fail("count disagrees with the verdict");
    if (e->nfields > all.count) fail("more field errors than problems");
    for (size_t i = 0; i < e->nfields; i++) {
        const eg_field_error_t *f = &e->fields[i];
        if (!f->s[EG_F_POINTER] || strncmp(f->s[EG_F_POINTER], "/p", 2) || !f->s[EG_F_FIELD] ||
            !f->s[EG_F_CONSTRAINT] || !f->s[EG_F_MESSAGE])
            fail("incomplete field error");
        if (json_is_string(f->value) && json_string_length(f->value) > 64) fail("echo not bounded");
    }
    eg_error_free(e);

    e = eg_error_new();
    if (!e) goto done;
    eg_schema_report_t few = {e, "", "q", 3, 0};
    int r2 = eg_schema_validate(s, &jd, NULL, &few);
    if (r2 != r1) fail("verdict depends on the bound");
    if (e->nfields > 3) fail("more field errors than the bound");
    eg_error_free(e);

    eg_schema_report_t quiet = {NULL, "", NULL, 0, 0};
    int r3 = eg_schema_validate(s, &jd, NULL, &quiet);
    if (r3 != r1) fail("count-only verdict differs");
done:
    if (parsed) eg_jr_free(&jd);
    eg_schema_free(s);
    eg_ydoc_free(doc);
    eg_ydoc_free(other);
    return 0;
}
