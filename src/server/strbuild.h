/* strbuild.h - appending to a bounded buffer without printf.
 *
 * The request path builds limiter keys and rate-limit headers for every
 * request of a limited route; vfprintf's format parsing cost more than the
 * limiter itself. These append and NUL-terminate; past the capacity they
 * stop and set `over`, so callers check once at the end.
 */
#ifndef EG_STRBUILD_H
#define EG_STRBUILD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap; /* cap includes the NUL */
    int over;        /* something did not fit */
} eg_sb_t;

static inline eg_sb_t eg_sb(char *p, size_t cap)
{
    eg_sb_t b = {p, 0, cap, cap == 0};
    if (cap) p[0] = '\0';
    return b;
}

static inline void eg_sb_mem(eg_sb_t *b, const char *s, size_t n)
{
    if (b->over || n >= b->cap - b->len) {
        b->over = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void eg_sb_str(eg_sb_t *b, const char *s)
{
    eg_sb_mem(b, s, strlen(s));
}

#define EG_SB_LIT(b, lit) eg_sb_mem((b), (lit), sizeof(lit) - 1)

static inline void eg_sb_u64(eg_sb_t *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    eg_sb_mem(b, tmp + i, sizeof(tmp) - i);
}

#endif
