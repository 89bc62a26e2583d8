/* fuzz_http1.c - any bytes as a request head, a response head and a chunked
 * body: the parser must never read outside the buffer, and every slice it
 * returns must lie inside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/http1.h"

static void check_slice(const char *buf, size_t len, const char *p, size_t n)
{
    if (n && (p < buf || p + n > buf + len)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* copy so ASan catches any read past the end */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    const eg_http1_limits_t lim = {.max_head = 4096, .max_headers = 16, .max_uri = 512};
    eg_http_header_t h[16];
    eg_http1_msg_t m;
    size_t scanned = 0;
    /* incremental: the result on the whole buffer must not depend on how it arrived */
    int split = size ? data[0] % (int)(size + 1) : 0;
    int rc0 = eg_http1_parse_request(buf, (size_t)split, &lim, h, 16, &scanned, &m);
    int rc = eg_http1_parse_request(buf, size, &lim, h, 16, &scanned, &m);
    size_t fresh = 0;
    eg_http1_msg_t m2;
    int rc2 = eg_http1_parse_request(buf, size, &lim, h, 16, &fresh, &m2);
    if (rc0 == EG_EAGAIN && rc != rc2) abort(); /* scanned carries over only while incomplete */
    if (rc > 0) {
        if ((size_t)rc > size) abort();
        check_slice(buf, size, m.method, m.method_len);
        check_slice(buf, size, m.target, m.target_len);
        for (size_t i = 0; i < m.nheaders; i++) {
            check_slice(buf, size, m.headers[i].name, m.headers[i].name_len);
            check_slice(buf, size, m.headers[i].value, m.headers[i].value_len);
        }
    }
    scanned = 0;
    rc = eg_http1_parse_response(buf, size, &lim, h, 16, &scanned, size & 1, &m);
    if (rc > 0) {
        if (m.status < 100 || m.status > 599) abort();
        check_slice(buf, size, m.reason, m.reason_len);
    }
    eg_chunked_t st;
    memset(&st, 0, sizeof(st));
    size_t pos = 0;
    while (pos < size) {
        size_t used = 0, dl = 0;
        const char *d = NULL;
        rc = eg_chunked_data(&st, buf + pos, size - pos, 256, &used, &d, &dl);
        check_slice(buf + pos, size - pos, d, dl);
        if (used > size - pos) abort();
        pos += used;
        if (rc != EG_EAGAIN || used == 0) break;
    }
    free(buf);
    return 0;
}
