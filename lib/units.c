/* units.c - durations and sizes (see units.h). */
#include "errgate/units.h"

#include <stdio.h>
#include <string.h>

/* Reads the leading digits; returns how many, 0 on none or overflow. */
static size_t digits(const char *s, uint64_t *v, int *overflow)
{
    size_t i = 0;
    *v = 0;
    *overflow = 0;
    while (s[i] >= '0' && s[i] <= '9') {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (*v > (UINT64_MAX - d) / 10) *overflow = 1;
        else *v = *v * 10 + d;
        i++;
    }
    return i;
}

static int scaled(uint64_t v, uint64_t mul, uint64_t *out)
{
    if (mul && v > UINT64_MAX / mul) return EG_ERANGE;
    *out = v * mul;
    return EG_OK;
}

int eg_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    uint64_t v;
    int of;
    size_t n = s ? digits(s, &v, &of) : 0;
    if (n == 0) return EG_EINVAL;
    if (of) return EG_ERANGE;
    if (s[n] == '\0') return v == 0 ? (*out = 0, EG_OK) : EG_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(s + n, units[i].unit) == 0) return scaled(v, units[i].ms, out);
    return EG_EINVAL;
}

int eg_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {{"", 1},           {"B", 1},           {"KiB", 1024ull},   {"MiB", 1048576ull},
                 {"GiB", 1073741824ull}, {"KB", 1000ull}, {"MB", 1000000ull}, {"GB", 1000000000ull}};
    uint64_t v;
    int of;
    size_t n = s ? digits(s, &v, &of) : 0;
    if (n == 0) return EG_EINVAL;
    if (of) return EG_ERANGE;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(s + n, units[i].unit) == 0) return scaled(v, units[i].mul, out);
    return EG_EINVAL;
}

size_t eg_format_duration(uint64_t ms, char *buf, size_t cap)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (ms && ms % units[i].ms == 0) {
            int k = snprintf(buf, cap, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].unit);
            return k < 0 ? 0 : (size_t)k;
        }
    int k = snprintf(buf, cap, "%llums", (unsigned long long)ms);
    return k < 0 ? 0 : (size_t)k;
}
