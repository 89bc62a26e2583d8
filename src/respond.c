/* respond.c - gateway errors as HTTP responses (see respond.h). */
#include "respond.h"

#include <string.h>

/* Appends a string; the caller checked the room. */
static size_t put(char *out, size_t at, const char *s, size_t n)
{
    memcpy(out + at, s, n);
    return at + n;
}

static size_t put_uint(char *out, size_t at, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(out, at, tmp + i, sizeof(tmp) - i);
}

#define PUT_LIT(out, at, lit) put(out, at, lit, sizeof(lit) - 1)

/* The head is built by hand: this runs for every gateway error, and
 * snprintf's format parsing showed in the profile. */
size_t eg_respond_error(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat,
                        const char *extra, int keep_alive, int head_only, char *buf, size_t cap)
{
    eg_respond_info_t info;
    return eg_respond_error_info(e, d, cat, extra, keep_alive, head_only, buf, cap, &info);
}

size_t eg_respond_error_info(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat,
                             const char *extra, int keep_alive, int head_only, char *buf, size_t cap,
                             eg_respond_info_t *info)
{
    char code[128];
    int status = eg_dialect_status(d, cat, e);
    size_t codelen = eg_dialect_error_code(d, cat, e, code, sizeof(code));
    if (codelen >= sizeof(code)) codelen = sizeof(code) - 1;
    info->status = status;
    memcpy(info->code, code, codelen < sizeof(info->code) ? codelen + 1 : sizeof(info->code));
    info->code[sizeof(info->code) - 1] = '\0';
    /* render the body first, at an offset that leaves room for the head */
    enum { HEAD_MAX = 2048 };
    if (cap <= HEAD_MAX) return 0;
    char *body = buf + HEAD_MAX;
    size_t blen = eg_render(e, d, cat, body, cap - HEAD_MAX);
    if (blen >= cap - HEAD_MAX) return 0;
    const char *rid = e->s[EG_S_REQUEST_ID] ? e->s[EG_S_REQUEST_ID] : "-";
    const char *reason = eg_reason_phrase(status), *mt = eg_dialect_media_type(d);
    size_t ridlen = e->s[EG_S_REQUEST_ID] ? e->len[EG_S_REQUEST_ID] : 1;
    size_t reasonlen = strlen(reason), mtlen = strlen(mt), extralen = extra ? strlen(extra) : 0;
    size_t need = 300 + reasonlen + mtlen + ridlen + codelen + extralen;
    if (need > HEAD_MAX) return 0;
    char head[HEAD_MAX];
    size_t at = PUT_LIT(head, 0, "HTTP/1.1 ");
    at = put_uint(head, at, (unsigned)status);
    head[at++] = ' ';
    at = put(head, at, reason, reasonlen);
    at = PUT_LIT(head, at, "\r\nContent-Type: ");
    at = put(head, at, mt, mtlen);
    at = PUT_LIT(head, at, "\r\nContent-Length: ");
    at = put_uint(head, at, blen);
    at = PUT_LIT(head, at, "\r\nX-Request-ID: ");
    at = put(head, at, rid, ridlen);
    at = PUT_LIT(head, at, "\r\nX-Error-Code: ");
    at = put(head, at, code, codelen);
    at = PUT_LIT(head, at, "\r\n");
    if (e->retry_after >= 0) {
        at = PUT_LIT(head, at, "Retry-After: ");
        at = put_uint(head, at, (unsigned long long)e->retry_after);
        at = PUT_LIT(head, at, "\r\n");
    }
    if (extra) at = put(head, at, extra, extralen);
    at = PUT_LIT(head, at, "Cache-Control: no-store\r\n");
    at = keep_alive ? PUT_LIT(head, at, "Connection: keep-alive\r\n\r\n")
                    : PUT_LIT(head, at, "Connection: close\r\n\r\n");
    memmove(buf + at, body, head_only ? 0 : blen);
    memcpy(buf, head, at);
    return at + (head_only ? 0 : blen);
}
