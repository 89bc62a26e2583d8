/* respond.c - gateway errors as HTTP responses (see respond.h). */
#include "respond.h"
#include "strbuild.h"
#include "jsonw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The head is built by hand: this runs for every gateway error, and
 * snprintf's format parsing showed in the profile. */
size_t eg_respond_error(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat,
                        const char *date, const char *extra, int keep_alive, int head_only,
                        char *buf, size_t cap)
{
    eg_respond_info_t info;
    return eg_respond_error_info(e, d, cat, date, extra, keep_alive, head_only, buf, cap, &info);
}

/* 1 when s[0..n) holds only visible ASCII and spaces (no control byte, DEL
 * or byte above 0x7f): nothing in it can end a header line or the head, and
 * a strict parser reads it back. Eight bytes at a time (a word has a byte
 * below 0x20 when (x - 0x20..) & ~x & 0x80.. is non-zero): this runs
 * for every gateway error, on ids and codes that are nearly always the
 * gateway's own. */
static int header_safe(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t bad = 0, x;
    if (n < 8) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            bad |= (uint64_t)(c < 0x20 || c >= 0x7f) << 7;
        }
        return bad == 0;
    }
    /* whole words, then the last eight bytes (overlapping the one before) */
    for (size_t i = 0;; i += 8) {
        if (i + 8 > n) i = n - 8;
        memcpy(&x, s + i, 8);
        uint64_t del = x ^ (0x7f * ones);
        bad |= ((x - 0x20 * ones) & ~x) | ((del - ones) & ~del) | x;
        if (i + 8 == n) break;
    }
    return (bad & high) == 0;
}

/* The head every gateway error carries, for a body of blen bytes. Returns
 * its length, or 0 when it does not fit in cap. */
static size_t error_head(int status, const char *mt, const char *date, const char *rid,
                         size_t ridlen, const char *code, size_t codelen, long long retry_after,
                         const char *extra, int keep_alive, size_t blen, char *head, size_t cap)
{
    const char *reason = eg_reason_phrase(status);
    size_t reasonlen = strlen(reason), mtlen = strlen(mt), extralen = extra ? strlen(extra) : 0;
    size_t datelen = date ? strlen(date) : 0;
    if (300 + reasonlen + mtlen + ridlen + codelen + extralen + datelen > cap) return 0;
    eg_sb_t h = eg_sb(head, cap);
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
    /* the code can come from outside (an upstream's, a catalog file's): one
     * that could split the head is left out, never written. The request id
     * is checked where it enters (eg_reqid_valid, or generated): see
     * respond.h */
    {
        EG_SB_LIT(&h, "\r\nX-Request-ID: ");
        eg_sb_mem(&h, rid, ridlen);
    }
    if (codelen && codelen <= EG_CODE_MAX && header_safe(code, codelen)) {
        EG_SB_LIT(&h, "\r\nX-Error-Code: ");
        eg_sb_mem(&h, code, codelen);
    }
    EG_SB_LIT(&h, "\r\n");
    if (retry_after >= 0) {
        EG_SB_LIT(&h, "Retry-After: ");
        eg_sb_u64(&h, (uint64_t)retry_after);
        EG_SB_LIT(&h, "\r\n");
    }
    if (extra) eg_sb_mem(&h, extra, extralen);
    EG_SB_LIT(&h, "Cache-Control: no-store\r\n");
    if (keep_alive)
        EG_SB_LIT(&h, "Connection: keep-alive\r\n\r\n");
    else
        EG_SB_LIT(&h, "Connection: close\r\n\r\n");
    return h.over ? 0 : h.len;
}

size_t eg_respond_error_info(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat,
                             const char *date, const char *extra, int keep_alive, int head_only,
                             char *buf, size_t cap, eg_respond_info_t *info)
{
    char code[128];
    int status = eg_dialect_status(d, cat, e);
    size_t codelen = eg_dialect_error_code(d, cat, e, code, sizeof(code));
    if (codelen >= sizeof(code)) codelen = sizeof(code) - 1;
    info->status = status;
    memcpy(info->code, code, codelen < sizeof(info->code) ? codelen + 1 : sizeof(info->code));
    info->code[sizeof(info->code) - 1] = '\0';
    /* the entry whoever made e looked up (eg_error_from_catalog), else one lookup */
    const char *cc = e->s[EG_S_CODE];
    info->entry = !cc                                                ? NULL
                  : e->ent && e->ent_cat == cat && e->ent_code == cc ? e->ent
                                                                     : eg_catalog_find(cat, cc);
    /* render the body first, at an offset that leaves room for the head */
    enum { HEAD_MAX = 2048 };
    if (cap <= HEAD_MAX) return 0;
    char *body = buf + HEAD_MAX;
    size_t blen = eg_render(e, d, cat, body, cap - HEAD_MAX);
    if (blen >= cap - HEAD_MAX) return 0;
    const char *rid = e->s[EG_S_REQUEST_ID] ? e->s[EG_S_REQUEST_ID] : "-";
    size_t ridlen = e->s[EG_S_REQUEST_ID] ? e->len[EG_S_REQUEST_ID] : 1;
    char head[HEAD_MAX];
    size_t at = error_head(status, eg_dialect_media_type(d), date, rid, ridlen, code, codelen,
                           e->retry_after, extra, keep_alive, blen, head, sizeof(head));
    if (at == 0) return 0;
    memmove(buf + at, body, head_only ? 0 : blen);
    memcpy(buf, head, at);
    return at + (head_only ? 0 : blen);
}

/* ------------------------------------------------------------ 404 template */

size_t eg_notfound_message(const char *path, size_t plen, char out[EG_NOT_FOUND_MESSAGE_MAX])
{
    size_t n = plen > EG_NOT_FOUND_PATH_MAX ? EG_NOT_FOUND_PATH_MAX : plen,
           p = sizeof(EG_NOT_FOUND_PREFIX) - 1;
    memcpy(out, EG_NOT_FOUND_PREFIX, p);
    memcpy(out + p, path, n);
    out[p + n] = '\0';
    return p + n;
}

eg_error_t *eg_notfound_error(const eg_catalog_t *cat, const char *rid, const char *ts,
                              const char *path, size_t plen)
{
    eg_error_t *e = NULL;
    if (eg_error_from_catalog(cat, "not_found", &e) != EG_OK) return NULL;
    size_t n = plen > EG_NOT_FOUND_PATH_MAX ? EG_NOT_FOUND_PATH_MAX : plen;
    char msg[EG_NOT_FOUND_MESSAGE_MAX];
    size_t mlen = eg_notfound_message(path, plen, msg);
    if (eg_error_set_static(e, EG_S_REQUEST_ID, rid, strlen(rid), 0) != EG_OK ||
        eg_error_set_static(e, EG_S_TIMESTAMP, ts, strlen(ts), 0) != EG_OK ||
        eg_error_setn(e, EG_S_MESSAGE, msg, mlen) != EG_OK ||
        eg_error_set_detail_str(e, "path", path, n) != EG_OK) {
        eg_error_free(e);
        return NULL;
    }
    return e;
}

/* Markers rendered in place of the per-request strings: plain JSON (copied
 * as they are), and nothing a catalog or dialect would say. */
enum { NF_RID, NF_TS, NF_PATH, NF_NONE };
#define NF_RID_HDR "\r\nX-Request-ID: " /* as error_head writes it */
static const char *const nf_marker[] = {"@@eg-rid-9f3@@", "@@eg-ts-9f3@@", "@@eg-path-9f3@@"};

typedef struct {
    uint32_t off, len; /* text before the slot */
    int slot;          /* NF_RID, NF_TS, NF_PATH, or NF_NONE after the last text */
} nf_seg_t;

struct eg_notfound_s {
    char *text;
    nf_seg_t *segs;
    size_t nsegs;
    int status;
    char code[64];
    size_t codelen;
    const char *media_type;
    const eg_catalog_entry_t *entry; /* not_found's */
    /* error_head's fixed runs around the per-request values (date,
     * Content-Length, request id), made once: the status line, the media
     * type, the code and its check, Cache-Control and each Connection */
    char hpre[128], hmid[192], htail[2][192]; /* htail[keep_alive] */
    size_t hprelen, hmidlen, htaillen[2];
    int hready;
};

void eg_notfound_free(eg_notfound_t *t)
{
    if (!t) return;
    free(t->text);
    free(t->segs);
    free(t);
}

/* First occurrence of m (mn bytes) in s[0..n), or NULL. */
static const char *find(const char *s, size_t n, const char *m, size_t mn)
{
    for (const char *p = s; mn <= n - (size_t)(p - s) && (p = memchr(p, m[0], n - (size_t)(p - s)));
         p++)
        if (mn <= n - (size_t)(p - s) && memcmp(p, m, mn) == 0) return p;
    return NULL;
}

/* Splits a body rendered with the markers into text runs and slots. */
static int nf_split(eg_notfound_t *t, const char *body, size_t blen)
{
    size_t cap = 8, at = 0, from = 0;
    if (!(t->text = malloc(blen + 1)) || !(t->segs = malloc(cap * sizeof(*t->segs))))
        return EG_ENOMEM;
    memcpy(t->text, body, blen);
    for (;;) {
        const char *hit = NULL;
        int slot = NF_NONE;
        for (int k = 0; k < NF_NONE; k++) {
            const char *p = find(body + at, blen - at, nf_marker[k], strlen(nf_marker[k]));
            if (p && (!hit || p < hit)) {
                hit = p;
                slot = k;
            }
        }
        size_t end = hit ? (size_t)(hit - body) : blen;
        if (t->nsegs == cap) {
            nf_seg_t *g = realloc(t->segs, (cap *= 2) * sizeof(*g));
            if (!g) return EG_ENOMEM;
            t->segs = g;
        }
        t->segs[t->nsegs++] = (nf_seg_t){(uint32_t)from, (uint32_t)(end - from), slot};
        if (!hit) return EG_OK;
        at = from = end + strlen(nf_marker[slot]);
    }
}

/* Fills the template's head runs from what error_head would write; hready
 * stays 0 (error_head per request) when one does not fit. */
static void nf_head_runs(eg_notfound_t *t)
{
    eg_sb_t a = eg_sb(t->hpre, sizeof(t->hpre)), m = eg_sb(t->hmid, sizeof(t->hmid));
    EG_SB_LIT(&a, "HTTP/1.1 ");
    eg_sb_u64(&a, (unsigned)t->status);
    EG_SB_LIT(&a, " ");
    eg_sb_str(&a, eg_reason_phrase(t->status));
    EG_SB_LIT(&a, "\r\nDate: ");
    EG_SB_LIT(&m, "\r\nContent-Type: ");
    eg_sb_str(&m, t->media_type);
    EG_SB_LIT(&m, "\r\nContent-Length: ");
    int over = a.over || m.over;
    for (int ka = 0; ka < 2; ka++) {
        eg_sb_t z = eg_sb(t->htail[ka], sizeof(t->htail[ka]));
        if (t->codelen && t->codelen <= EG_CODE_MAX && header_safe(t->code, t->codelen)) {
            EG_SB_LIT(&z, "\r\nX-Error-Code: ");
            eg_sb_mem(&z, t->code, t->codelen);
        }
        EG_SB_LIT(&z, "\r\nCache-Control: no-store\r\n");
        if (ka)
            EG_SB_LIT(&z, "Connection: keep-alive\r\n\r\n");
        else
            EG_SB_LIT(&z, "Connection: close\r\n\r\n");
        over |= z.over;
        t->htaillen[ka] = z.len;
    }
    t->hprelen = a.len;
    t->hmidlen = m.len;
    t->hready = !over;
}

/* Why: a 404 is the gateway error scanners send most, and modelling and
 * rendering it per request was a third of its cost. The template is the
 * generic path's own output with markers; it is checked against that path
 * on sample values and not used when they differ. */
eg_notfound_t *eg_notfound_new(const eg_dialect_t *d, const eg_catalog_t *cat)
{
    eg_notfound_t *t = calloc(1, sizeof(*t));
    eg_error_t *e = eg_notfound_error(cat, nf_marker[NF_RID], nf_marker[NF_TS], nf_marker[NF_PATH],
                                      strlen(nf_marker[NF_PATH]));
    char *body = malloc(16384);
    int ok = t && e && body;
    if (ok) {
        size_t blen = eg_render(e, d, cat, body, 16384);
        t->status = eg_dialect_status(d, cat, e);
        t->codelen = eg_dialect_error_code(d, cat, e, t->code, sizeof(t->code));
        t->media_type = eg_dialect_media_type(d);
        t->entry = eg_catalog_find(cat, "not_found");
        ok = blen < 16384 && t->codelen < sizeof(t->code) && e->retry_after < 0 &&
             nf_split(t, body, blen) == EG_OK;
        if (ok) nf_head_runs(t);
    }
    eg_error_free(e);
    /* the same answer as the generic path, or no template */
    static const char *const paths[] = {
        "/no/such", "/q\"uote\\back?x=1&y=%22",
        "/long/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    char *a = malloc(16384);
    ok = ok && a;
    for (size_t i = 0; ok && i < sizeof(paths) / sizeof(paths[0]); i++) {
        const char *rid = "req_0123456789abcdef0123456789abcdef", *ts = "2026-01-02T03:04:05Z";
        eg_respond_info_t ia, ib;
        size_t na = eg_notfound_respond(t, "Fri, 02 Jan 2026 03:04:05 GMT", rid, ts, paths[i],
                                        strlen(paths[i]), (int)(i & 1), 0, a, 16384, &ia);
        eg_error_t *g = eg_notfound_error(cat, rid, ts, paths[i], strlen(paths[i]));
        size_t nb = g ? eg_respond_error_info(g, d, cat, "Fri, 02 Jan 2026 03:04:05 GMT", NULL,
                                              (int)(i & 1), 0, body, 16384, &ib)
                      : 0;
        eg_error_free(g);
        ok = na && na == nb && memcmp(a, body, na) == 0 && ia.status == ib.status &&
             strcmp(ia.code, ib.code) == 0;
    }
    free(a);
    free(body);
    if (!ok) {
        eg_notfound_free(t);
        return NULL;
    }
    return t;
}

size_t eg_notfound_respond(const eg_notfound_t *t, const char *date, const char *rid,
                           const char *ts, const char *path, size_t plen, int keep_alive,
                           int head_only, char *buf, size_t cap, eg_respond_info_t *info)
{
    size_t n = plen > EG_NOT_FOUND_PATH_MAX ? EG_NOT_FOUND_PATH_MAX : plen;
    char esc[6 * EG_NOT_FOUND_PATH_MAX + 3];
    eg_jsonw_t w = {esc, sizeof(esc), 0};
    eg_jsonw_str(&w, path, n);
    if (w.pos >= sizeof(esc)) return 0;
    const char *val[NF_NONE] = {rid, ts, esc + 1};
    size_t vlen[NF_NONE] = {strlen(rid), strlen(ts), w.pos - 2};
    size_t blen = 0;
    for (size_t i = 0; i < t->nsegs; i++)
        blen += t->segs[i].len + (t->segs[i].slot != NF_NONE ? vlen[t->segs[i].slot] : 0);
    size_t at;
    if (t->hready && date) { /* the runs made at load and the request's values: no formatting */
        char num[20];
        size_t nl = sizeof(num), dl = strlen(date), ka = keep_alive != 0;
        uint64_t v = blen;
        do {
            num[--nl] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        at = t->hprelen + dl + t->hmidlen + (sizeof(num) - nl) + sizeof(NF_RID_HDR) - 1 +
             vlen[NF_RID] + t->htaillen[ka];
        if (at > cap) return 0;
        char *o = buf;
        memcpy(o, t->hpre, t->hprelen), o += t->hprelen;
        memcpy(o, date, dl), o += dl;
        memcpy(o, t->hmid, t->hmidlen), o += t->hmidlen;
        memcpy(o, num + nl, sizeof(num) - nl), o += sizeof(num) - nl;
        memcpy(o, NF_RID_HDR, sizeof(NF_RID_HDR) - 1), o += sizeof(NF_RID_HDR) - 1;
        memcpy(o, rid, vlen[NF_RID]), o += vlen[NF_RID];
        memcpy(o, t->htail[ka], t->htaillen[ka]);
    } else {
        at = error_head(t->status, t->media_type, date, rid, vlen[NF_RID], t->code, t->codelen, -1,
                        NULL, keep_alive, blen, buf, cap);
    }
    if (at == 0 || (!head_only && cap - at < blen)) return 0;
    info->status = t->status;
    memcpy(info->code, t->code,
           t->codelen + 1 < sizeof(info->code) ? t->codelen + 1 : sizeof(info->code));
    info->code[sizeof(info->code) - 1] = '\0';
    info->entry = t->entry;
    if (head_only) return at;
    for (size_t i = 0; i < t->nsegs; i++) {
        const nf_seg_t *g = &t->segs[i];
        memcpy(buf + at, t->text + g->off, g->len);
        at += g->len;
        if (g->slot != NF_NONE) {
            memcpy(buf + at, val[g->slot], vlen[g->slot]);
            at += vlen[g->slot];
        }
    }
    return at;
}
