/* fuzz_schema.c - any schema against any instance: eg_ydoc_parse_json, then
 * eg_schema_compile (2020-12 or, by a bit of the input, OpenAPI 3.0), then
 * eg_schema_validate with field errors, with a bound of 3, and count-only.
 * Input: schema JSON, a NUL byte, instance JSON; without a NUL the first
 * byte says where to split the rest. Properties checked: no crash, no leak
 * (ASan), bounded time (libFuzzer's -timeout catches a runaway), the three
 * validations agree on valid / invalid, rep.count never below the field
 * errors written and those never above the bound, and every field error has
 * a pointer, a field, a constraint and a message.
 * The streaming validator (eg_sv_*) is run on the same instance fed whole,
 * in random cuts (from a seed the input gives) and byte by byte: it must
 * give the same verdict and, field for field, the same problems as the
 * tree validator, and on invalid JSON the same position, line and column
 * as eg_jr_parse (also without a schema: syntax only). The accept-only
 * fast path (eg_schema_fast) may only say "valid" where jsonr accepts the
 * instance and the tree validator finds it valid.
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

/* Feeds text to a new stream validator in cuts: how 0 whole, 1 byte by
 * byte, 2 random from *seed. */
static int stream(const eg_schema_t *s, const char *text, size_t len, int how, uint64_t *seed,
                  eg_schema_report_t *rep, long *pos, int *line, int *col)
{
    eg_sv_t *v = NULL;
    if (eg_sv_new(s, rep, &v) != EG_OK) fail("eg_sv_new");
    for (size_t i = 0; i < len;) {
        size_t k = len - i;
        if (how == 1) k = 1;
        if (how == 2) {
            *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
            k = (size_t)(*seed >> 33) % 64;
        }
        if (k > len - i) k = len - i;
        int r = eg_sv_feed(v, text + i, k);
        if (r != EG_OK && r != EG_EPARSE) fail("feed");
        i += k;
    }
    int rc = eg_sv_finish(v);
    if (rc == EG_EPARSE) eg_sv_error(v, pos, line, col);
    eg_sv_free(v);
    return rc;
}

static int has_complexity(const eg_error_t *e)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (e->fields[i].s[EG_F_CONSTRAINT] &&
            strcmp(e->fields[i].s[EG_F_CONSTRAINT], "complexity") == 0)
            return 1;
    return 0;
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The stream against the tape: verdicts, counts and field errors. */
static void differential(const eg_schema_t *s, const eg_jr_doc_t *jd, int jrc, const char *text,
                         size_t len, uint64_t seed, const eg_error_t *tree, size_t tcount, int trc,
                         const char *prefix, const char *root, size_t max)
{
    for (int how = 0; how < 3; how++) {
        if (how == 1 && len > 4096) continue;
        eg_error_t *e = s ? eg_error_new() : NULL;
        eg_schema_report_t rep = {e, prefix, root, max, 0};
        long pos = 0;
        int line = 0, col = 0;
        int rc = stream(s, text, len, how, &seed, s ? &rep : NULL, &pos, &line, &col);
        if (jrc == EG_EPARSE) {
            if (rc != EG_EPARSE) fail("stream accepts what jsonr refuses");
            if (pos != jd->position || line != jd->line || col != jd->column)
                fail("stream places a syntax error elsewhere than jsonr");
        } else if (jrc == EG_OK && rc == EG_EPARSE) {
            fail("stream refuses what jsonr accepts");
        } else if (jrc == EG_OK && s && tree && !has_complexity(tree) && !has_complexity(e)) {
            if (rc != trc || rep.count != tcount) fail("stream verdict differs from the tree's");
            if (e->nfields != tree->nfields) fail("stream lists other problems");
            for (size_t i = 0; i < e->nfields; i++) {
                for (int k = 0; k < EG_F__COUNT; k++)
                    if (!same(e->fields[i].s[k], tree->fields[i].s[k]))
                        fail("stream words a problem differently");
                if (!((!e->fields[i].value && !tree->fields[i].value) ||
                      (e->fields[i].value && tree->fields[i].value &&
                       json_equal(e->fields[i].value, tree->fields[i].value))))
                    fail("stream echoes another value");
            }
        }
        eg_error_free(e);
    }
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
    uint64_t seed = size * 0x9E3779B97F4A7C15ull ^ data[size - 1];
    {
        /* the instance's syntax alone, whatever the schema */
        eg_jr_doc_t sd;
        int src = eg_jr_parse(&sd, text + ioff, size - ioff);
        differential(NULL, &sd, src, text + ioff, size - ioff, seed, NULL, 0, 0, "", NULL, 0);
        eg_jr_free(&sd);
    }
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
    /* the accept-only fast path: "valid" only where the exact path agrees */
    int fast = eg_schema_fast(s, text + ioff, size - ioff);
    if (eg_jr_parse(&jd, text + ioff, size - ioff) != EG_OK) {
        if (fast) fail("the fast path accepts what jsonr refuses");
        goto done;
    }

    eg_error_t *e = eg_error_new();
    if (!e) goto done;
    eg_schema_report_t all = {e, "/p", NULL, 1000, 0};
    int r1 = eg_schema_validate(s, &jd, NULL, &all);
    if (r1 != EG_OK && r1 != EG_ERANGE) fail("unexpected result");
    if (fast && r1 != EG_OK) fail("the fast path accepts an invalid instance");
    if ((r1 == EG_OK) != (all.count == 0)) fail("count disagrees with the verdict");
    if (e->nfields > all.count) fail("more field errors than problems");
    for (size_t i = 0; i < e->nfields; i++) {
        const eg_field_error_t *f = &e->fields[i];
        if (!f->s[EG_F_POINTER] || strncmp(f->s[EG_F_POINTER], "/p", 2) || !f->s[EG_F_FIELD] ||
            !f->s[EG_F_CONSTRAINT] || !f->s[EG_F_MESSAGE])
            fail("incomplete field error");
        if (json_is_string(f->value) && json_string_length(f->value) > 64) fail("echo not bounded");
    }
    differential(s, &jd, EG_OK, text + ioff, size - ioff, seed, e, all.count, r1, "/p", NULL, 1000);
    eg_error_free(e);

    e = eg_error_new();
    if (!e) goto done;
    eg_schema_report_t few = {e, "", "q", 3, 0};
    int r2 = eg_schema_validate(s, &jd, NULL, &few);
    if (r2 != r1) fail("verdict depends on the bound");
    if (e->nfields > 3) fail("more field errors than the bound");
    differential(s, &jd, EG_OK, text + ioff, size - ioff, seed, e, few.count, r2, "", "q", 3);
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
