/* fuzz_format.c - any bytes through every format check (lib/format.h).
 * Invariants checked (abort() on violation):
 *  - nothing is read outside the string: each check gets an exact-size
 *    heap copy, so ASan sees any overrun (the string is not NUL-terminated);
 *  - the input is not written, and every verdict is 0 or 1;
 *  - checks agree with references: ipv4 and ipv6 with glibc's inet_pton
 *    (which also refuses leading zeros in a dotted quad); uuid with its
 *    8-4-4-4-12 shape; the iso codes accept two-byte strings only;
 *  - checks agree with each other: a uri is a uri-reference; a date-time
 *    is a date, a 'T' and a time; an ipv4 is a hostname; an int32 number is
 *    an int64 one; names round-trip through eg_format_lookup;
 *  - formats that do not assert pass everything (none, annotation, int32 /
 *    int64 on strings, string formats on numbers).
 * The first byte, when the input is longer than one, also picks a format
 * to run alone on the rest, so the fuzzer can steer towards one grammar.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/common.h"
#include "format.h"

static void check(int ok)
{
    if (!ok) abort();
}

static int run(eg_format_t f, const uint8_t *data, size_t size, int number)
{
    char *copy = malloc(size ? size : 1);
    check(copy != NULL);
    memcpy(copy, data, size);
    int v = number ? eg_format_check_number(f, copy, size) : eg_format_check(f, copy, size);
    check(memcmp(copy, data, size) == 0);
    check(v == 0 || v == 1);
    free(copy);
    return v;
}

/* inet_pton on a NUL-terminated copy; -1 when the bytes hold a NUL or are
 * too long to be an address (then there is nothing to compare). */
static int pton(int af, const uint8_t *data, size_t size)
{
    char buf[64];
    unsigned char out[16];
    if (size >= sizeof(buf) || memchr(data, 0, size)) return -1;
    memcpy(buf, data, size);
    buf[size] = '\0';
    return inet_pton(af, buf, out) == 1;
}

static int uuid_ref(const uint8_t *s, size_t n)
{
    if (n != 36) return 0;
    for (size_t i = 0; i < n; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        int hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                  (s[i] >= 'A' && s[i] <= 'F');
        if (dash ? s[i] != '-' : !hex) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int v[EG_FMT_ANNOTATION + 1];
    for (int f = EG_FMT_NONE; f <= EG_FMT_ANNOTATION; f++) {
        v[f] = run((eg_format_t)f, data, size, 0);
        int num = run((eg_format_t)f, data, size, 1);
        if (f != EG_FMT_INT32 && f != EG_FMT_INT64) check(num == 1);
    }
    check(v[EG_FMT_NONE] == 1 && v[EG_FMT_ANNOTATION] == 1);
    check(v[EG_FMT_INT32] == 1 && v[EG_FMT_INT64] == 1);

    int i32 = run(EG_FMT_INT32, data, size, 1), i64 = run(EG_FMT_INT64, data, size, 1);
    if (i32) check(i64);

    int p4 = pton(AF_INET, data, size), p6 = pton(AF_INET6, data, size);
    if (p4 >= 0) check(v[EG_FMT_IPV4] == p4);
    if (p6 >= 0) check(v[EG_FMT_IPV6] == p6);
    check(v[EG_FMT_UUID] == uuid_ref(data, size));
    if (v[EG_FMT_URI]) check(v[EG_FMT_URI_REFERENCE]);
    if (v[EG_FMT_IPV4]) check(v[EG_FMT_HOSTNAME]);
    if (v[EG_FMT_DATE_TIME]) {
        check(run(EG_FMT_DATE, data, 10, 0));
        check(data[10] == 'T' || data[10] == 't');
        check(run(EG_FMT_TIME, data + 11, size - 11, 0));
    }
    if (v[EG_FMT_ISO3166] || v[EG_FMT_ISO639]) check(size == 2);

    /* names round-trip, and lookup on arbitrary bytes never crashes */
    for (int f = EG_FMT_DATE; f < EG_FMT_ANNOTATION; f++) {
        const char *name = eg_format_name((eg_format_t)f);
        eg_format_t back;
        check(eg_format_lookup(name, strlen(name), &back) == EG_OK && back == (eg_format_t)f);
    }
    {
        char *copy = malloc(size ? size : 1);
        check(copy != NULL);
        memcpy(copy, data, size);
        eg_format_t out = EG_FMT_NONE;
        int rc = eg_format_lookup(copy, size, &out);
        check(rc == EG_OK || (rc == EG_ENOENT && out == EG_FMT_NONE));
        free(copy);
    }

    /* steer: the first byte picks one format for the rest */
    if (size > 1) {
        eg_format_t f = (eg_format_t)(data[0] % (EG_FMT_ANNOTATION + 1));
        run(f, data + 1, size - 1, 0);
        run(f, data + 1, size - 1, 1);
    }
    return 0;
}
