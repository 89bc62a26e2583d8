/* respond.c - gateway errors as HTTP responses (see respond.h). */
#include "respond.h"
#include "strbuild.h"

#include <string.h>

/* The head is built by hand: this runs for every gateway error, and
 * snprintf's format parsing showed in the profile. */
size_t eg_respond_error(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat,
                        const char *date, const char *extra, int keep_alive, int head_only, char *buf,
                        size_t cap)
{
    eg_respond_info_t info;
    return eg_respond_error_info(e, d, cat, date, extra, keep_alive, head_only, buf, cap, &info);
}

size_t eg_respond_error_info(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat,
                             const char *date, const char *extra, int keep_alive, int head_only, char *buf, size_t cap,
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
    size_t datelen = date ? strlen(date) : 0;
    size_t need = 300 + reasonlen + mtlen + ridlen + codelen + extralen + datelen;
    if (need > HEAD_MAX) return 0;
    char head[HEAD_MAX];
    eg_sb_t h = eg_sb(head, sizeof(head));
    EG_SB_LIT(&h, "HTTP/1.1 ");
    eg_sb_u64(&h, (unsigned)status);
    EG_SB_LIT(&h, " ");
    eg_sb_mem(&h, reason, reasonlen);
    if (date) {
        EG_SB_LIT(&h, "\r\nDate: ");
        eg_sb_mem(&h, date, datelen);
    }
    EG_SB_LIT(&h, "\r\nContent-Type: ");
    eg_sb_mem(&h, mt, mtlen);
    EG_SB_LIT(&h, "\r\nContent-Length: ");
    eg_sb_u64(&h, blen);
    EG_SB_LIT(&h, "\r\nX-Request-ID: ");
    eg_sb_mem(&h, rid, ridlen);
    EG_SB_LIT(&h, "\r\nX-Error-Code: ");
    eg_sb_mem(&h, code, codelen);
    EG_SB_LIT(&h, "\r\n");
    if (e->retry_after >= 0) {
        EG_SB_LIT(&h, "Retry-After: ");
        eg_sb_u64(&h, (uint64_t)e->retry_after);
        EG_SB_LIT(&h, "\r\n");
    }
    if (extra) eg_sb_mem(&h, extra, extralen);
    EG_SB_LIT(&h, "Cache-Control: no-store\r\n");
    if (keep_alive) EG_SB_LIT(&h, "Connection: keep-alive\r\n\r\n");
    else EG_SB_LIT(&h, "Connection: close\r\n\r\n");
    if (h.over) return 0;
    size_t at = h.len;
    memmove(buf + at, body, head_only ? 0 : blen);
    memcpy(buf, head, at);
    return at + (head_only ? 0 : blen);
}
