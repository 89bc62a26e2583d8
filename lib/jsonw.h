/* jsonw.h - a JSON writer into a caller's fixed buffer.
 *
 * snprintf semantics: writing never fails; bytes past the capacity are
 * counted but dropped, so one pass yields both the output and the length a
 * retry needs. `pos` may be saved and restored to take back a member that
 * turned out to be empty. Allocates nothing.
 */
#ifndef EG_JSONW_H
#define EG_JSONW_H

#include <jansson.h>
#include <stddef.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t cap; /* bytes available, including room for the final NUL */
    size_t pos; /* bytes produced so far (may exceed cap) */
} eg_jsonw_t;

static inline void eg_jsonw_put(eg_jsonw_t *w, const char *s, size_t n)
{
    if (n <= 16 && w->cap - w->pos > 16 && w->pos < w->cap) {
        /* short pieces (keys, punctuation) dominate: skip the libc call */
        char *d = w->buf + w->pos;
        for (size_t i = 0; i < n; i++) d[i] = s[i];
        w->pos += n;
        return;
    }
    if (w->pos < w->cap) {
        size_t room = w->cap - w->pos;
        memcpy(w->buf + w->pos, s, n < room ? n : room);
    }
    w->pos += n;
}

/* eg_jsonw_put for a source that stays readable 32 bytes past s (template
 * keys are allocated so): short pieces are one fixed-size copy, no loop. */
#define EG_JSONW_PAD 32
static inline void eg_jsonw_put_padded(eg_jsonw_t *w, const char *s, size_t n)
{
    if (n <= EG_JSONW_PAD && w->pos < w->cap && w->cap - w->pos > EG_JSONW_PAD) {
        memcpy(w->buf + w->pos, s, EG_JSONW_PAD);
        w->pos += n;
        return;
    }
    eg_jsonw_put(w, s, n);
}

static inline void eg_jsonw_ch(eg_jsonw_t *w, char c)
{
    if (w->pos < w->cap) w->buf[w->pos] = c;
    w->pos++;
}

/* 1 when eg_jsonw_str would write s[0..n) unchanged between its quotes: no
 * quote, backslash or control character, and valid UTF-8. */
int eg_jsonw_is_plain(const char *s, size_t n);

/* Writes a string eg_jsonw_is_plain() said yes to: quotes and one copy. */
static inline void eg_jsonw_str_plain(eg_jsonw_t *w, const char *s, size_t n)
{
    if (w->pos < w->cap && w->cap - w->pos > n + 2) {
        char *d = w->buf + w->pos;
        d[0] = '"';
        memcpy(d + 1, s, n);
        d[n + 1] = '"';
        w->pos += n + 2;
        return;
    }
    eg_jsonw_ch(w, '"');
    eg_jsonw_put(w, s, n);
    eg_jsonw_ch(w, '"');
}

/* Writes `s` (n bytes) as a JSON string with quotes. Control characters are
 * escaped, invalid UTF-8 sequences become U+FFFD. */
void eg_jsonw_str(eg_jsonw_t *w, const char *s, size_t n);
/* Same for a NUL-terminated string, without a separate strlen(). */
void eg_jsonw_cstr(eg_jsonw_t *w, const char *s);
/* Writes the string body only (no quotes), escaped as above. */
void eg_jsonw_str_body(eg_jsonw_t *w, const char *s, size_t n);
void eg_jsonw_int(eg_jsonw_t *w, long long v);
/* Writes any jansson value. Recursion is bounded by jansson's parse depth. */
void eg_jsonw_value(eg_jsonw_t *w, const json_t *v);
/* NUL-terminates (truncating if needed) and returns the full length. */
size_t eg_jsonw_finish(eg_jsonw_t *w);

#endif
