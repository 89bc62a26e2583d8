/* respond.c - gateway errors as HTTP responses (see respond.h). */
#include "respond.h"

#include <stdio.h>
#include <string.h>

size_t eg_respond_error(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat,
                        const char *extra, int keep_alive, int head_only, char *buf, size_t cap)
{
    char code[128];
    int status = eg_dialect_status(d, cat, e);
    eg_dialect_code(d, cat, e->s[EG_S_CODE], code, sizeof(code));
    /* render the body first, at an offset that leaves room for the head */
    enum { HEAD_MAX = 1024 };
    if (cap <= HEAD_MAX) return 0;
    char *body = buf + HEAD_MAX;
    size_t blen = eg_render(e, d, cat, body, cap - HEAD_MAX);
    if (blen >= cap - HEAD_MAX) return 0;
    char retry[48] = "";
    if (e->retry_after >= 0) snprintf(retry, sizeof(retry), "Retry-After: %lld\r\n", e->retry_after);
    char head[HEAD_MAX];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "X-Request-ID: %s\r\nX-Error-Code: %s\r\n%s%sCache-Control: no-store\r\n"
                      "Connection: %s\r\n\r\n",
                      status, eg_reason_phrase(status), eg_dialect_media_type(d), blen,
                      e->s[EG_S_REQUEST_ID] ? e->s[EG_S_REQUEST_ID] : "-", code, retry,
                      extra ? extra : "", keep_alive ? "keep-alive" : "close");
    if (hl < 0 || (size_t)hl >= sizeof(head)) return 0;
    memmove(buf + hl, body, head_only ? 0 : blen);
    memcpy(buf, head, (size_t)hl);
    return (size_t)hl + (head_only ? 0 : blen);
}
