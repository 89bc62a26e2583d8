/* fuzz_respond.c - the gateway's error-response writer (src/server/respond.c) with
 * values from outside: the input is split into a code, a request id and a
 * message (the parts an upstream error or a client supplies), rendered in
 * every dialect, and the head must parse back as one response whose header
 * names are exactly those the writer means to send. A CR or LF that got
 * into a header would add a field or end the head early. Request ids go
 * through eg_reqid_valid first, as they do where they enter the gateway. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/errgate.h"
#include "errgate/http1.h"
#include "errgate/reqid.h"
#include "respond.h"

static eg_catalog_t *cat;
static eg_dialects_t *set;

/* The names the writer may send, lowercased (extra carries Allow here). */
static int expected_name(const eg_http_header_t *h)
{
    static const char *const names[] = {
        "date",        "content-type", "content-length", "x-request-id", "x-error-code",
        "retry-after", "allow",        "cache-control",  "connection",   NULL};
    for (const char *const *n = names; *n; n++)
        if (eg_http1_name_is(h, *n)) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cat && (eg_catalog_new_builtin(&cat) || eg_dialects_new_builtin(&set))) abort();
    /* code \0 request id \0 message; a missing part is absent */
    const char *p = (const char *)data, *end = p + size, *part[3] = {NULL, NULL, NULL};
    size_t plen[3] = {0, 0, 0};
    for (int i = 0; i < 3 && p <= end; i++) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        part[i] = p;
        plen[i] = z ? (size_t)(z - p) : (size_t)(end - p);
        p += plen[i] + 1;
    }
    int status = size ? 400 + data[size - 1] % 200 : 500;
    eg_error_t *e = NULL;
    if (eg_error_from_catalog(cat, "bad_request", &e) != EG_OK) abort();
    e->status = status;
    if (part[0] && plen[0]) eg_error_setn(e, EG_S_CODE, part[0], plen[0]);
    /* an id from a client is kept only when valid (the gateway's contract
     * with the writer, respond.h); otherwise the gateway makes one */
    if (part[1] && plen[1] && eg_reqid_valid(part[1], plen[1])) eg_error_setn(e, EG_S_REQUEST_ID, part[1], plen[1]);
    else eg_error_set(e, EG_S_REQUEST_ID, "req_0123456789abcdef0123456789abcdef");
    if (part[2] && plen[2]) eg_error_setn(e, EG_S_MESSAGE, part[2], plen[2]);
    if (size && data[0] & 1) eg_error_set_retry_after(e, data[0]);
    static char buf[1 << 17];
    for (size_t i = 0; i < eg_dialects_count(set); i++) {
        const eg_dialect_t *d = eg_dialects_at(set, i);
        size_t n = eg_respond_error(e, d, cat, "Mon, 07 Dec 2026 15:00:00 GMT", "Allow: GET\r\n", 1,
                                    0, buf, sizeof(buf));
        if (n == 0) continue; /* did not fit: nothing was written */
        eg_http_header_t hdrs[32];
        eg_http1_msg_t m;
        eg_http1_limits_t lim = {sizeof(buf), 32, 8192};
        size_t scanned = 0;
        int rc = eg_http1_parse_response(buf, n, &lim, hdrs, 32, &scanned, 0, &m);
        if (rc <= 0) {
            fprintf(stderr, "%s: the head does not parse (%s)\n%.*s\n", eg_dialect_name(d),
                    m.why ? m.why : "?", (int)n, buf);
            abort();
        }
        for (size_t k = 0; k < m.nheaders; k++)
            if (!expected_name(&hdrs[k])) {
                fprintf(stderr, "%s: a header the writer never sends: %.*s\n", eg_dialect_name(d),
                        (int)hdrs[k].name_len, hdrs[k].name);
                abort();
            }
        if (m.framing != EG_FRAMING_LENGTH || (size_t)rc + m.content_length != n) {
            fprintf(stderr, "%s: Content-Length does not frame the body\n", eg_dialect_name(d));
            abort();
        }
    }
    eg_error_free(e);
    return 0;
}
