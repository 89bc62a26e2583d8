/* fuzz_openapi.c - any bytes as an OpenAPI document (YAML, or JSON when
 * the input starts with '{'), then a rule set built for every operation
 * (parameter and body schemas compiled, form fields gathered through $ref
 * and allOf) and freed: the sanitizers check every path of the loader,
 * half-loaded operations included. The document is named in a directory
 * that does not exist, so no sibling file is ever read. An error is one
 * NUL-terminated line that names the document; a warning holds no control
 * character (a name from the document cannot forge a line of check-config). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openapi.h"
#include "params.h"

#define DIR "/nonexistent-errgate-fuzz/"

static void check_line(const char *s, size_t cap, const char *what)
{
    if (!memchr(s, '\0', cap) || strchr(s, '\n')) {
        fprintf(stderr, "%s is not one line\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char err[1024];
    memset(err, 'x', sizeof(err));
    const char *name = size && data[0] == '{' ? DIR "f.json" : DIR "f.yaml";
    eg_openapi_t *oa = NULL;
    int rc = eg_openapi_parse((const char *)data, size, name, &oa, err, sizeof(err));
    if (rc) {
        check_line(err, sizeof(err), "the error");
        if (rc != EG_ENOMEM && strncmp(err, DIR, strlen(DIR)) != 0) {
            fprintf(stderr, "error does not name the document: %s\n", err);
            abort();
        }
        return 0;
    }
    for (size_t i = 0; i < eg_openapi_nops(oa); i++) {
        eg_validation_t *v = NULL;
        if (eg_openapi_validation(oa, eg_openapi_op(oa, i), 1024, 0, &v, err, sizeof(err)) == EG_OK)
            eg_validation_free(v);
        else
            check_line(err, sizeof(err), "a rule set's error");
    }
    for (size_t i = 0; i < eg_openapi_nwarnings(oa); i++) {
        const char *w = eg_openapi_warning(oa, i);
        for (const char *p = w; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                fprintf(stderr, "a control character in a warning: %s\n", w);
                abort();
            }
    }
    eg_openapi_free(oa);
    return 0;
}
