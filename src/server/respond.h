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

/* Writes the response into buf. `request_id` must be set on `e` already,
 * to an id that passed eg_reqid_valid (or one the gateway generated): it is
 * written into X-Request-ID as it is. The code is written into X-Error-Code
 * only when it holds nothing that could end a header line.
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
    /* the catalog's entry for the code (NULL when the catalog has none, or
     * a stage rendered the answer): what metrics count it under without a
     * lookup of the spelled code */
    const eg_catalog_entry_t *entry;
} eg_respond_info_t;

/* eg_respond_error that also fills `info` (the catalog is asked once). */
size_t eg_respond_error_info(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat,
                             const char *date, const char *extra, int keep_alive, int head_only, char *buf, size_t cap,
                             eg_respond_info_t *info);

/* --- 404 for an unknown route ---------------------------------------------
 * The gateway's 404: code not_found, message EG_NOT_FOUND_PREFIX + the path,
 * details.path, the request id and timestamp. eg_notfound_error models it
 * (rid and ts are referred to, not copied: they must outlive the error). */
#define EG_NOT_FOUND_PREFIX "No route for "
#define EG_NOT_FOUND_PATH_MAX 200 /* longer paths are cut to this many bytes */
#define EG_NOT_FOUND_MESSAGE_MAX (sizeof(EG_NOT_FOUND_PREFIX) + EG_NOT_FOUND_PATH_MAX)
/* Writes the message ("No route for /x", the path cut as above) into out,
 * NUL-terminated; returns its length. */
size_t eg_notfound_message(const char *path, size_t plen, char out[EG_NOT_FOUND_MESSAGE_MAX]);
eg_error_t *eg_notfound_error(const eg_catalog_t *cat, const char *rid, const char *ts, const char *path,
                              size_t plen);

/* The same 404 from a template made once per dialect and catalog: the
 * generic path's response rendered with markers, checked against it on
 * sample paths. eg_notfound_new returns NULL when it cannot be made or does
 * not match (then use eg_notfound_error + eg_respond_error_info); the
 * caller frees it with eg_notfound_free. eg_notfound_respond writes the
 * response for one request into buf and returns its length (0 when it does
 * not fit); the bytes are eg_respond_error_info's for that request. */
typedef struct eg_notfound_s eg_notfound_t;
eg_notfound_t *eg_notfound_new(const eg_dialect_t *d, const eg_catalog_t *cat);
size_t eg_notfound_respond(const eg_notfound_t *t, const char *date, const char *rid, const char *ts,
                           const char *path, size_t plen, int keep_alive, int head_only, char *buf, size_t cap,
                           eg_respond_info_t *info);
void eg_notfound_free(eg_notfound_t *t);

#endif
