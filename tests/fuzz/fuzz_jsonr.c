/* fuzz_jsonr.c - differential: any bytes through eg_jr_parse and through jansson's
 * json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES). Both accept or both reject;
 * when both accept, eg_jr_to_json(root) is json_equal to jansson's value and the tape is
 * well formed (every end/count consistent, eg_jr_get finds each member, eg_jr_str and
 * eg_jr_str_eq agree with jansson's strings); when both reject, line/column/position
 * are jansson's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonr.h"

static void fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_jsonr: %s for %zu bytes: ", what, size);
    for (size_t i = 0; i < size && i < 400; i++)
        fprintf(stderr, data[i] >= 0x20 && data[i] < 0x7f ? "%c" : "\\x%02x", data[i]);
    fprintf(stderr, "\n");
    abort();
}

/* Checks the subtree at index i against v; returns the index after it. */
static size_t check(const eg_jr_doc_t *d, size_t i, const json_t *v, const uint8_t *data,
                    size_t size)
{
    if (i >= d->ntoks) fail("token index out of range", data, size);
    const eg_jr_tok_t *t = &d->toks[i];
    if ((size_t)t->off + t->len > d->len) fail("token text out of range", data, size);
    size_t next = i + 1;
    switch (t->type) {
    case EG_JR_STRING: {
        char buf[64];
        size_t n = eg_jr_str(d, t, buf, sizeof(buf));
        if (n != json_string_length(v)) fail("eg_jr_str length", data, size);
        if (memcmp(buf, json_string_value(v), n < sizeof(buf) ? n : sizeof(buf)))
            fail("eg_jr_str bytes", data, size);
        if (!eg_jr_str_eq(d, t, json_string_value(v), json_string_length(v)))
            fail("eg_jr_str_eq", data, size);
        if (n && eg_jr_str_eq(d, t, json_string_value(v), n - 1))
            fail("eg_jr_str_eq on a prefix", data, size);
        if (!t->escaped && (n != t->len || memcmp(d->text + t->off, json_string_value(v), n)))
            fail("unescaped string not in place", data, size);
        break;
    }
    case EG_JR_ARRAY:
        if (t->count != json_array_size(v)) fail("array count", data, size);
        for (uint32_t k = 0; k < t->count; k++) next = check(d, next, json_array_get(v, k), data, size);
        break;
    case EG_JR_OBJECT:
        if (t->count != json_object_size(v)) fail("object count", data, size);
        for (uint32_t k = 0; k < t->count; k++) {
            const eg_jr_tok_t *key = &d->toks[next];
            if (next >= d->ntoks || key->type != EG_JR_STRING || key->end != next + 1)
                fail("object key token", data, size);
            char kb[256];
            size_t kl = eg_jr_str(d, key, kb, sizeof(kb));
            if (kl <= sizeof(kb)) {
                const json_t *jv = json_object_getn(v, kb, kl);
                if (!jv) fail("key not in jansson's object", data, size);
                if (eg_jr_get(d, t, kb, kl) != &d->toks[next + 1]) fail("eg_jr_get", data, size);
                check(d, next + 1, jv, data, size);
            }
            next = d->toks[next + 1].end;
        }
        break;
    default: break;
    }
    if (t->end != next) fail("token end", data, size);
    if (t->type == EG_JR_ARRAY || t->type == EG_JR_OBJECT) {
        const char *c = d->text + t->off;
        if (t->len < 2 || c[0] != (t->type == EG_JR_ARRAY ? '[' : '{') ||
            c[t->len - 1] != (t->type == EG_JR_ARRAY ? ']' : '}'))
            fail("container text", data, size);
    }
    return next;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eg_jr_doc_t doc;
    int rc = eg_jr_parse(&doc, (const char *)data, size);
    json_error_t je;
    json_t *want = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (rc == EG_ENOMEM) goto out;
    if ((rc == 0) != (want != NULL)) {
        fprintf(stderr, "jansson: %s (line %d column %d position %d)\n", want ? "accepts" : je.text,
                je.line, je.column, je.position);
        fail(rc == 0 ? "eg_jr_parse accepts what jansson rejects" : "eg_jr_parse rejects what jansson accepts",
             data, size);
    }
    if (rc) {
        if (doc.line != je.line || doc.column != je.column || doc.position != je.position) {
            fprintf(stderr, "jansson: %s at line %d column %d position %d; eg_jr: line %d column %d position %ld\n",
                    je.text, je.line, je.column, je.position, doc.line, doc.column, doc.position);
            fail("error location differs", data, size);
        }
        goto out;
    }
    json_t *got = eg_jr_to_json(&doc, &doc.toks[0]);
    if (!got) goto out; /* out of memory */
    if (!json_equal(got, want)) fail("values differ", data, size);
    json_decref(got);
    if (check(&doc, 0, want, data, size) != doc.ntoks) fail("tokens after the root", data, size);
out:
    json_decref(want);
    eg_jr_free(&doc);
    return 0;
}
