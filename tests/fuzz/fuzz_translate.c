/* fuzz_translate.c - any bytes as an upstream error body: parse (detecting
 * the dialect), render in every dialect, and check the output is valid JSON
 * that parses back into the same dialect's model. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/errgate.h"

static eg_catalog_t *cat;
static eg_dialects_t *set;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cat && (eg_catalog_new_builtin(&cat) || eg_dialects_new_builtin(&set))) abort();
    int status = size ? 400 + data[0] % 200 : 500;
    eg_error_t *e = NULL;
    if (eg_parse_body((const char *)data, size, set, NULL, cat, status, &e, NULL) != EG_OK)
        abort(); /* auto-detection always yields an error model */
    static char buf[1 << 16];
    for (size_t i = 0; i < eg_dialects_count(set); i++) {
        const eg_dialect_t *d = eg_dialects_at(set, i);
        size_t n = eg_render(e, d, cat, buf, sizeof(buf));
        if (n >= sizeof(buf)) continue; /* truncated on purpose: nothing to check */
        json_error_t je;
        json_t *j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
        if (!j) {
            fprintf(stderr, "invalid JSON from %s: %s\n%s\n", eg_dialect_name(d), je.text, buf);
            abort();
        }
        eg_error_t *back = NULL;
        if (eg_parse_json(j, d, cat, status, &back) != EG_OK) {
            fprintf(stderr, "%s cannot read its own output: %s\n", eg_dialect_name(d), buf);
            abort();
        }
        eg_error_free(back);
        json_decref(j);
    }
    eg_error_free(e);
    return 0;
}
