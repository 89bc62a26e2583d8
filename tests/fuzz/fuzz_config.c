/* fuzz_config.c - any bytes as a gateway configuration. Loading goes on past
 * bad values (config.c's problem()), so half-loaded sections, upstreams and
 * routes are freed on every path; the sanitizers check that. The report
 * must be whole: accepted means no report, refused means one or more lines,
 * none empty, at most EG_CONFIG_MAX_PROBLEMS of them plus the count line.
 *
 * Inputs naming /dev or /proc are skipped: a secret_file or jwks_file there
 * could block on a read, which is the file's fault, not the parser's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static int names(const uint8_t *data, size_t size, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= size; i++)
        if (memcmp(data + i, s, n) == 0) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (names(data, size, "/dev") || names(data, size, "/proc") || names(data, size, "/sys")) return 0;
    static char err[EG_CONFIG_ERRLEN];
    memset(err, 'x', sizeof(err)); /* the report is written, not left over */
    eg_config_t *cfg = NULL;
    int rc = eg_config_parse((const char *)data, size, "f.yaml", &cfg, err, sizeof(err));
    if (!memchr(err, '\0', sizeof(err))) {
        fprintf(stderr, "report not terminated\n");
        abort();
    }
    if (rc == EG_OK) {
        if (!cfg || cfg->nupstreams == 0 || cfg->nroutes == 0) abort();
        eg_config_free(cfg);
        return 0;
    }
    if (cfg || !err[0]) {
        fprintf(stderr, "refused (%d) with %s\n", rc, cfg ? "a config" : "no report");
        abort();
    }
    int lines = 0;
    for (const char *p = err; p; lines++) {
        const char *nl = strchr(p, '\n');
        if ((nl ? (size_t)(nl - p) : strlen(p)) == 0) {
            fprintf(stderr, "empty line in the report:\n%s\n", err);
            abort();
        }
        p = nl ? nl + 1 : NULL;
    }
    if (lines > EG_CONFIG_MAX_PROBLEMS + 1) {
        fprintf(stderr, "%d lines in the report\n", lines);
        abort();
    }
    return 0;
}
