/* http1.c - strict zero-copy HTTP/1.1 parsing (see http1.h).
 *
 * The head is parsed only once it is complete: first the end-of-head CRLFCRLF
 * is searched with memchr from where the previous call stopped, then the
 * whole head is checked in one pass with table-driven character classes.
 * Limits are enforced before completion, so a client sending an endless head
 * is refused as soon as it crosses the limit (431, or 414 while still in an
 * over-long request line).
 */
#include "errgate/http1.h"

#include <string.h>
#include <strings.h>

/* Character classes. */
#define C_TCHAR 1 /* token character (RFC 9110 5.6.2) */
#define C_VCHAR 2 /* visible, SP, HTAB or obs-text: allowed in field values */
#define C_TARGET 4 /* allowed in a request-target: visible ASCII */
#define C_HEX 8

/* generated: C_TCHAR | C_VCHAR | C_TARGET | C_HEX per byte */
static const unsigned char cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6, 6, 6, 6, 6, 6,
    6, 15, 15, 15, 15, 15, 15, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7,
    7, 15, 15, 15, 15, 15, 15, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static int fail(eg_http1_msg_t *m, eg_http1_error_t err, const char *why, size_t at)
{
    m->error = err;
    m->why = why;
    m->error_offset = at;
    return EG_EPARSE;
}

/* Finds the end of the head, searching only bytes not seen before. Returns
 * its length, 0 when incomplete, or -1 with *bad at a bare LF (strict CRLF). */
static long find_head_end(const char *buf, size_t len, size_t *scanned, size_t *bad)
{
    size_t from = *scanned;
    while (from < len) {
        const char *lf = memchr(buf + from, '\n', len - from);
        if (!lf) break;
        size_t i = (size_t)(lf - buf);
        if (i == 0 || buf[i - 1] != '\r') {
            *bad = i;
            return -1;
        }
        if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            *scanned = i + 1;
            return (long)(i + 1);
        }
        from = i + 1;
    }
    *scanned = len;
    return 0;
}

static int ieq(const char *a, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(a, lit, n) == 0;
}

int eg_http1_has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0) return 1;
    }
    return 0;
}

/* Last member of a comma list, trimmed; *n its length. */
static const char *last_token(const char *v, size_t len, size_t *n)
{
    size_t e = len;
    while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
    size_t s = e;
    while (s > 0 && v[s - 1] != ',') s--;
    while (s < e && (v[s] == ' ' || v[s] == '\t')) s++;
    *n = e - s;
    return v + s;
}

/* Parses the header lines in buf[p..end) (end = head length - 2). */
static int parse_fields(const char *buf, size_t p, size_t end, const eg_http1_limits_t *lim,
                        eg_http_header_t *hdrs, size_t hcap, int is_request, eg_http1_msg_t *m)
{
    int n_cl = 0, n_te = 0, n_host = 0, conn_close = 0, conn_keep = 0, conn_upgrade = 0;
    int has_upgrade = 0, te_chunked_last = 0, te_bad = 0;
    const char *cl = NULL;
    size_t cl_len = 0;
    m->nheaders = 0;
    while (p < end) {
        size_t line = p;
        if (buf[p] == ' ' || buf[p] == '\t')
            return fail(m, EG_HTTP1_BAD_REQUEST, "obsolete line folding", p);
        while (p < end && (cls[(unsigned char)buf[p]] & C_TCHAR)) p++;
        if (p == line) return fail(m, EG_HTTP1_BAD_REQUEST, "invalid header name", p);
        if (buf[p] != ':') {
            if (buf[p] == ' ' || buf[p] == '\t')
                return fail(m, EG_HTTP1_BAD_REQUEST, "whitespace before colon", p);
            return fail(m, EG_HTTP1_BAD_REQUEST, "invalid header name", p);
        }
        size_t name_len = p - line;
        p++;
        while (p < end && (buf[p] == ' ' || buf[p] == '\t')) p++;
        size_t vs = p;
        while (p < end && (cls[(unsigned char)buf[p]] & C_VCHAR)) p++;
        if (buf[p] != '\r') {
            if (buf[p] == '\n') return fail(m, EG_HTTP1_BAD_REQUEST, "bare LF in header", p);
            return fail(m, EG_HTTP1_BAD_REQUEST, "control character in header", p);
        }
        if (buf[p + 1] != '\n') return fail(m, EG_HTTP1_BAD_REQUEST, "bare CR in header", p);
        size_t ve = p;
        while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t')) ve--;
        p += 2;
        if (m->nheaders >= lim->max_headers || m->nheaders >= hcap)
            return fail(m, EG_HTTP1_HEADERS_TOO_LARGE, "too many headers", line);
        eg_http_header_t *h = &hdrs[m->nheaders++];
        h->name = buf + line;
        h->name_len = name_len;
        h->value = buf + vs;
        h->value_len = ve - vs;
        const char *nm = h->name, *v = h->value;
        size_t vl = h->value_len;
        switch (name_len) {
        case 4:
            if (ieq(nm, 4, "host")) n_host++;
            break;
        case 6:
            if (ieq(nm, 6, "expect") && ieq(v, vl, "100-continue")) m->expect_continue = 1;
            break;
        case 7:
            if (ieq(nm, 7, "upgrade")) has_upgrade = 1;
            break;
        case 10:
            if (ieq(nm, 10, "connection")) {
                conn_close |= eg_http1_has_token(v, vl, "close");
                conn_keep |= eg_http1_has_token(v, vl, "keep-alive");
                conn_upgrade |= eg_http1_has_token(v, vl, "upgrade");
            }
            break;
        case 14:
            if (ieq(nm, 14, "content-length")) {
                n_cl++;
                cl = v;
                cl_len = vl;
            }
            break;
        case 17:
            if (ieq(nm, 17, "transfer-encoding")) {
                n_te++;
                size_t tn;
                const char *t = last_token(v, vl, &tn);
                /* chunked must be the final coding, exactly once */
                int chunked_count = 0;
                size_t i = 0;
                while (i < vl) {
                    while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
                    size_t s = i;
                    while (i < vl && v[i] != ',') i++;
                    size_t e = i;
                    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
                    if (ieq(v + s, e - s, "chunked")) chunked_count++;
                }
                te_chunked_last = ieq(t, tn, "chunked") && chunked_count == 1;
                if (!te_chunked_last || (is_request && !ieq(v, vl, "chunked"))) te_bad = 1;
            }
            break;
        default:
            break;
        }
    }
    if (n_te) {
        if (te_bad || n_te > 1)
            return fail(m, EG_HTTP1_BAD_REQUEST, "Transfer-Encoding other than a final chunked", 0);
        if (n_cl)
            return fail(m, EG_HTTP1_BAD_REQUEST, "both Content-Length and Transfer-Encoding", 0);
        if (m->minor_version == 0 && is_request)
            return fail(m, EG_HTTP1_BAD_REQUEST, "Transfer-Encoding in an HTTP/1.0 request", 0);
        m->framing = EG_FRAMING_CHUNKED;
    } else if (n_cl) {
        if (n_cl > 1) return fail(m, EG_HTTP1_BAD_REQUEST, "several Content-Length headers", 0);
        if (cl_len == 0 || cl_len > 18)
            return fail(m, EG_HTTP1_BAD_REQUEST, "invalid Content-Length", (size_t)(cl - buf));
        uint64_t v = 0;
        for (size_t i = 0; i < cl_len; i++) {
            if (cl[i] < '0' || cl[i] > '9')
                return fail(m, EG_HTTP1_BAD_REQUEST, "invalid Content-Length", (size_t)(cl - buf));
            v = v * 10 + (uint64_t)(cl[i] - '0');
        }
        m->content_length = v;
        m->framing = EG_FRAMING_LENGTH;
    } else {
        m->framing = is_request ? EG_FRAMING_NONE : EG_FRAMING_UNTIL_CLOSE;
    }
    if (is_request && m->minor_version == 1 && n_host != 1)
        return fail(m, EG_HTTP1_BAD_REQUEST, n_host ? "several Host headers" : "missing Host header", 0);
    if (is_request && n_host > 1) return fail(m, EG_HTTP1_BAD_REQUEST, "several Host headers", 0);
    m->keep_alive = m->minor_version == 1 ? !conn_close : (conn_keep && !conn_close);
    m->upgrade = has_upgrade && conn_upgrade;
    return EG_OK;
}

static void msg_reset(eg_http1_msg_t *m, eg_http_header_t *headers)
{
    memset(m, 0, sizeof(*m));
    m->headers = headers;
}

/* Enforces the limits on an incomplete head. */
static int incomplete(const char *buf, size_t len, const eg_http1_limits_t *lim, int is_request,
                      eg_http1_msg_t *m)
{
    if (len < lim->max_head) return EG_EAGAIN;
    if (is_request && !memchr(buf, '\n', len)) {
        const char *sp = memchr(buf, ' ', len);
        if (sp) return fail(m, EG_HTTP1_URI_TOO_LONG, "request-target too long", (size_t)(sp - buf));
    }
    return fail(m, EG_HTTP1_HEADERS_TOO_LARGE, "header section too large", lim->max_head);
}

static int parse_version(const char *p, eg_http1_msg_t *m)
{
    if (memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1')) return -1;
    m->minor_version = p[7] - '0';
    return 0;
}

int eg_http1_parse_request(const char *buf, size_t len, const eg_http1_limits_t *lim,
                           eg_http_header_t *headers, size_t hcap, size_t *scanned,
                           eg_http1_msg_t *m)
{
    msg_reset(m, headers);
    size_t bad = 0;
    long found = find_head_end(buf, len, scanned, &bad);
    if (found < 0) return fail(m, EG_HTTP1_BAD_REQUEST, "bare LF (lines must end with CRLF)", bad);
    size_t head = (size_t)found;
    if (!head || head > lim->max_head) {
        /* an over-long target is 414 even before the head is complete */
        const char *sp = memchr(buf, ' ', len < lim->max_uri + 32 ? len : lim->max_uri + 32);
        if (sp) {
            size_t ts = (size_t)(sp - buf) + 1;
            const char *sp2 = memchr(buf + ts, ' ', len - ts);
            size_t tl = sp2 ? (size_t)(sp2 - buf) - ts : len - ts;
            if (tl > lim->max_uri) return fail(m, EG_HTTP1_URI_TOO_LONG, "request-target too long", ts);
        }
        if (head) return fail(m, EG_HTTP1_HEADERS_TOO_LARGE, "header section too large", lim->max_head);
        return incomplete(buf, len, lim, 1, m);
    }
    size_t p = 0;
    while (p < head && (cls[(unsigned char)buf[p]] & C_TCHAR)) p++;
    if (p == 0 || buf[p] != ' ') return fail(m, EG_HTTP1_BAD_REQUEST, "invalid method", p);
    m->method = buf;
    m->method_len = p;
    size_t ts = ++p;
    while (p < head && (cls[(unsigned char)buf[p]] & C_TARGET)) p++;
    if (p == ts || buf[p] != ' ')
        return fail(m, EG_HTTP1_BAD_REQUEST, "invalid request-target", p);
    if (p - ts > lim->max_uri) return fail(m, EG_HTTP1_URI_TOO_LONG, "request-target too long", ts);
    m->target = buf + ts;
    m->target_len = p - ts;
    if (!(buf[ts] == '/' || (m->target_len == 1 && buf[ts] == '*') ||
          (m->target_len > 7 && (strncasecmp(buf + ts, "http://", 7) == 0 ||
                                 strncasecmp(buf + ts, "https://", 8) == 0))))
        return fail(m, EG_HTTP1_BAD_REQUEST, "invalid request-target", ts);
    p++;
    if (head - p < 10 || parse_version(buf + p, m) != 0 || buf[p + 8] != '\r' || buf[p + 9] != '\n')
        return fail(m, EG_HTTP1_BAD_REQUEST, "invalid HTTP version", p);
    p += 10;
    int rc = parse_fields(buf, p, head - 2, lim, headers, hcap, 1, m);
    if (rc) return rc;
    m->head_len = head;
    return (int)head;
}

int eg_http1_parse_response(const char *buf, size_t len, const eg_http1_limits_t *lim,
                            eg_http_header_t *headers, size_t hcap, size_t *scanned,
                            int head_request, eg_http1_msg_t *m)
{
    msg_reset(m, headers);
    size_t bad = 0;
    long found = find_head_end(buf, len, scanned, &bad);
    if (found < 0) return fail(m, EG_HTTP1_BAD_REQUEST, "bare LF (lines must end with CRLF)", bad);
    size_t head = (size_t)found;
    if (!head) return incomplete(buf, len, lim, 0, m);
    if (head > lim->max_head)
        return fail(m, EG_HTTP1_HEADERS_TOO_LARGE, "header section too large", lim->max_head);
    if (head < 14 || parse_version(buf, m) != 0 || buf[8] != ' ')
        return fail(m, EG_HTTP1_BAD_REQUEST, "invalid status line", 0);
    const char *s = buf + 9;
    if (!(s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'))
        return fail(m, EG_HTTP1_BAD_REQUEST, "invalid status code", 9);
    m->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    size_t p = 12;
    if (buf[p] == ' ') p++;
    else if (buf[p] != '\r') return fail(m, EG_HTTP1_BAD_REQUEST, "invalid status line", p);
    size_t rs = p;
    while (p < head && (cls[(unsigned char)buf[p]] & C_VCHAR)) p++;
    if (buf[p] != '\r' || buf[p + 1] != '\n')
        return fail(m, EG_HTTP1_BAD_REQUEST, "invalid reason phrase", p);
    m->reason = buf + rs;
    m->reason_len = p - rs;
    p += 2;
    int rc = parse_fields(buf, p, head - 2, lim, headers, hcap, 0, m);
    if (rc) return rc;
    if (head_request || m->status < 200 || m->status == 204 || m->status == 304) {
        m->framing = EG_FRAMING_NONE;
        m->content_length = 0;
    }
    if (m->framing == EG_FRAMING_UNTIL_CLOSE) m->keep_alive = 0;
    m->head_len = head;
    return (int)head;
}

const eg_http_header_t *eg_http1_header(const eg_http1_msg_t *m, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < m->nheaders; i++)
        if (m->headers[i].name_len == n && strncasecmp(m->headers[i].name, name, n) == 0)
            return &m->headers[i];
    return NULL;
}

/* --- chunked --- */

enum {
    CK_SIZE = 0, CK_EXT, CK_EXT_VAL, CK_EXT_QUOTED, CK_EXT_ESC, CK_SIZE_LF, CK_DATA, CK_DATA_CR,
    CK_DATA_LF, CK_TRAILER, CK_TRAILER_LF, CK_FINAL_LF, CK_DONE
};

static int ck_fail(eg_chunked_t *st, const char *why)
{
    st->why = why;
    return EG_EPARSE;
}

int eg_chunked_data(eg_chunked_t *st, const char *buf, size_t len, size_t max_trailer,
                    size_t *consumed, const char **data, size_t *data_len)
{
    size_t i = 0;
    *data = NULL;
    *data_len = 0;
    while (i < len) {
        unsigned char c = (unsigned char)buf[i];
        switch (st->state) {
        case CK_SIZE:
            if (cls[c] & C_HEX) {
                if (++st->digits > 15) return ck_fail(st, "chunk size too large");
                st->remaining = st->remaining * 16 +
                                (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            } else if (st->digits && c == ';') {
                st->state = CK_EXT;
            } else if (st->digits && c == '\r') {
                st->state = CK_SIZE_LF;
            } else {
                return ck_fail(st, "invalid chunk size");
            }
            break;
        case CK_EXT: /* ext name (token) */
            if (cls[c] & C_TCHAR) break;
            if (c == '=') st->state = CK_EXT_VAL;
            else if (c == ';') break;
            else if (c == '\r') st->state = CK_SIZE_LF;
            else return ck_fail(st, "invalid chunk extension");
            break;
        case CK_EXT_VAL:
            if (c == '"') st->state = CK_EXT_QUOTED;
            else if (cls[c] & C_TCHAR) break;
            else if (c == ';') st->state = CK_EXT;
            else if (c == '\r') st->state = CK_SIZE_LF;
            else return ck_fail(st, "invalid chunk extension");
            break;
        case CK_EXT_QUOTED:
            if (c == '"') st->state = CK_EXT_VAL;
            else if (c == '\\') st->state = CK_EXT_ESC;
            else if (!(cls[c] & C_VCHAR)) return ck_fail(st, "invalid chunk extension");
            break;
        case CK_EXT_ESC:
            if (!(cls[c] & C_VCHAR)) return ck_fail(st, "invalid chunk extension");
            st->state = CK_EXT_QUOTED;
            break;
        case CK_SIZE_LF:
            if (c != '\n') return ck_fail(st, "bare CR after chunk size");
            if (st->remaining == 0) {
                st->state = CK_TRAILER;
                st->line = 0;
            } else {
                st->state = CK_DATA;
            }
            break;
        case CK_DATA: {
            size_t take = len - i < st->remaining ? len - i : (size_t)st->remaining;
            *data = buf + i;
            *data_len = take;
            st->remaining -= take;
            st->body_bytes += take;
            i += take;
            if (st->remaining == 0) st->state = CK_DATA_CR;
            *consumed = i;
            return EG_EAGAIN; /* hand this data run to the caller */
        }
        case CK_DATA_CR:
            if (c != '\r') return ck_fail(st, "missing CRLF after chunk data");
            st->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (c != '\n') return ck_fail(st, "missing CRLF after chunk data");
            st->state = CK_SIZE;
            st->digits = 0;
            st->remaining = 0;
            break;
        case CK_TRAILER: /* start or middle of a trailer line */
            if (c == '\r') {
                st->state = st->line ? CK_TRAILER_LF : CK_FINAL_LF;
            } else if (st->line == 0 && (c == ' ' || c == '\t')) {
                return ck_fail(st, "obsolete line folding in trailer");
            } else if (!(cls[c] & C_VCHAR) && c != ':') {
                return ck_fail(st, "invalid trailer");
            } else if (++st->line > max_trailer) {
                return ck_fail(st, "trailer line too long");
            }
            break;
        case CK_TRAILER_LF:
            if (c != '\n') return ck_fail(st, "bare CR in trailer");
            st->state = CK_TRAILER;
            st->line = 0;
            break;
        case CK_FINAL_LF:
            if (c != '\n') return ck_fail(st, "bare CR at end of chunked body");
            st->state = CK_DONE;
            *consumed = i + 1;
            return EG_OK;
        case CK_DONE:
            *consumed = i;
            return EG_OK;
        }
        i++;
    }
    *consumed = i;
    return st->state == CK_DONE ? EG_OK : EG_EAGAIN;
}

int eg_chunked_feed(eg_chunked_t *st, const char *buf, size_t len, size_t max_trailer,
                    size_t *consumed)
{
    size_t total = 0;
    for (;;) {
        const char *d;
        size_t dl, used = 0;
        int rc = eg_chunked_data(st, buf + total, len - total, max_trailer, &used, &d, &dl);
        total += used;
        if (rc != EG_EAGAIN || total >= len) {
            *consumed = total;
            return rc;
        }
    }
}
