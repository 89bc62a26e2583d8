/* testutil.h - small helpers shared by the unit tests (header-only). */
#ifndef EG_TESTUTIL_H
#define EG_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads EG_FIXTURES/rel into a malloc'd NUL-terminated buffer; fails the test if missing. */
static inline char *tu_read_fixture(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", EG_FIXTURES, rel);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open fixture %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

static inline json_t *tu_load_fixture(const char *rel)
{
    char path[1024];
    json_error_t je;
    snprintf(path, sizeof(path), "%s/%s", EG_FIXTURES, rel);
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("%s:%d: %s", path, je.line, je.text);
    return j;
}

/* Fails with both documents printed when they are not JSON-equal. */
static inline void tu_assert_json_equal(const json_t *want, const json_t *got, const char *what)
{
    if (json_equal(want, got)) return;
    char *a = json_dumps(want, JSON_SORT_KEYS | JSON_INDENT(1));
    char *b = got ? json_dumps(got, JSON_SORT_KEYS | JSON_INDENT(1)) : strdup("(null)");
    print_error("%s: JSON differs\nwant: %s\ngot:  %s\n", what, a, b);
    free(a);
    free(b);
    fail();
}

#endif
