/* fuzz_config.c - any bytes as a gateway configuration. Loading goes on past
 * bad values (config.c's problem()), so half-loaded sections, upstreams and
 * routes are freed on every path; the sanitizers check that. The report
 * must be whole: accepted means no report, refused means one or more lines,
 * none empty, at most EG_CONFIG_MAX_PROBLEMS of them plus the count line.
 * A value quoted in a message is escaped, so it can neither start a line of
 * its own (forging "ok") nor drive a terminal: no line holds a control
 * character, and every line has a shape the loader writes (a position in
 * f.yaml, the count line, an eg_strerror() text, or, when the input names a
 * catalog or dialect file, "that file: what is wrong").
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

/* 1 when the line (len bytes, no newline) is one the loader writes. */
static int known_shape(const char *p, size_t len, int names_files)
{
    static const char *const fixed[] = {"out of memory",      "invalid argument",
                                        "parse error",        "not found",
                                        "input/output error", "out of range",
                                        "incomplete input",   "limit exceeded",
                                        "unknown error",      NULL};
    char line[EG_CONFIG_ERRLEN];
    memcpy(line, p, len);
    line[len] = '\0';
    int a = 0, b = 0, n = 0;
    if (sscanf(line, "f.yaml:%d:%d: %n", &a, &b, &n) == 2 && n > 0) return 1;
    n = 0;
    if (sscanf(line, "(%d more problems not shown)%n", &a, &n) == 1 && (size_t)n == len) return 1;
    for (const char *const *f = fixed; *f; f++)
        if (strcmp(line, *f) == 0) return 1;
    return names_files && strstr(line, ": ") != NULL;
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
    int names_files = names(data, size, "catalog") || names(data, size, "dialects");
    int lines = 0;
    for (const char *p = err; p; lines++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len == 0) {
            fprintf(stderr, "empty line in the report:\n%s\n", err);
            abort();
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)p[i];
            if (ch < 0x20 || ch == 0x7f) {
                fprintf(stderr, "control character 0x%02x in report line %d: %.*s\n", ch, lines + 1,
                        (int)len, p);
                abort();
            }
        }
        if (!known_shape(p, len, names_files)) {
            fprintf(stderr, "report line %d is not one the loader writes: %.*s\n", lines + 1,
                    (int)len, p);
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
