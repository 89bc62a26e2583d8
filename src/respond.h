/* respond.h - a gateway error as a complete HTTP/1.1 response.
 *
 * Every error the gateway produces leaves through here, so every one carries
 * the same headers: Date, Content-Type of the dialect, X-Request-ID, X-Error-Code,
 * Retry-After when the error says when to come back, Allow for 405, plus any
 * extra header lines the caller passes. The body is rendered straight into
 * the caller's buffer after the head; nothing is allocated.
 */
#ifndef EG_RESPOND_H
#define EG_RESPOND_H

#include <stddef.h>
#include "errgate/errgate.h"

/* Writes the response into buf. `request_id` must be set on `e` already.
 * `date` is the Date header's value (an IMF-fixdate, eg_http1_date), or
 * NULL to send none (RFC 9110 requires it from a server with a clock).
 * `extra` is additional header lines ("Allow: GET\r\n"), may be NULL.
 * `head_only` leaves the body out (HEAD requests; Content-Length still says
 * how long it would be). `keep_alive` chooses the Connection header.
 * Returns the response length, or 0 when it does not fit in cap. */
size_t eg_respond_error(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat,
                        const char *date, const char *extra, int keep_alive, int head_only, char *buf, size_t cap);

/* What the response says, for the access log: its status and code as the
 * dialect spells it. */
typedef struct {
    int status;
    char code[64];
} eg_respond_info_t;

/* eg_respond_error that also fills `info` (the catalog is asked once). */
size_t eg_respond_error_info(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat,
                             const char *date, const char *extra, int keep_alive, int head_only, char *buf, size_t cap,
                             eg_respond_info_t *info);

#endif
