/* admin.h - the key administration API on the admin listener.
 *
 *   GET  /keys                 list
 *   POST /keys                 create: {"name", "scopes", "plan", "owner", "ips", "expires", "env"}
 *   GET  /keys/{id}            show
 *   POST /keys/{id}/suspend    {"reason": "..."}
 *   POST /keys/{id}/resume
 *   POST /keys/{id}/revoke     {"reason": "..."} (optional)
 *   POST /keys/{id}/rotate     {"grace": "1h"} (optional; default auth.rotation_grace)
 *
 * Protected by the admin token (Authorization: Bearer <token>), compared as
 * SHA-256 digests in constant time. Refusals are errors in the configured
 * dialect (as is every error of the admin listener, see eg_admin_error): 401 unauthorized without
 * or with a wrong token, 403 forbidden when no token is configured. A change reloads the keyring
 * before the answer is sent, so every worker applies it to the next request.
 */
#ifndef EG_ADMIN_H
#define EG_ADMIN_H

#include "config.h"
#include "errgate/dialect.h"
#include "errgate/http1.h"
#include "keyring.h"

/* The dialect of the admin listener's errors: admin.dialect, else
 * errors.dialect; the request's Accept picks another when errors.negotiate
 * is on (req may be NULL: nothing was read). */
const eg_dialect_t *eg_admin_dialect(const eg_config_t *cfg, const eg_http1_msg_t *req);

/* The request id of an admin request, as the gateway's request_id stage
 * makes it: the request_id.header's value when trusted and valid, else
 * "req_" + hex of rnd (req may be NULL). out holds EG_REQID_MAX + 1. */
void eg_admin_request_id(const eg_config_t *cfg, const eg_http1_msg_t *req,
                         const unsigned char rnd[16], char *out);

/* Every error the admin listener writes, in eg_admin_dialect() with the
 * catalog's entry for code (message replaces its default when not NULL),
 * the request id, extra header lines ("Allow: GET\r\n") when not NULL and
 * Retry-After when retry_after >= 0 (-1: 5 s for service_unavailable):
 * a malloc'd complete response (Connection: close) and its length, or NULL
 * when out of memory. */
char *eg_admin_error(const eg_config_t *cfg, const eg_http1_msg_t *req, const char *code,
                     const char *message, const char *extra, long long retry_after,
                     const char *reqid, size_t *outlen);

/* eg_admin_error with details (taken; NULL: none), e.g. /health's 503. */
char *eg_admin_error_details(const eg_config_t *cfg, const eg_http1_msg_t *req, const char *code,
                             const char *message, const char *extra, long long retry_after,
                             json_t *details, const char *reqid, size_t *outlen);

/* The method check of the admin resources that only read (/health, /ready,
 * /metrics, /alerts, the dashboard): 1 for GET or HEAD (*head, when not
 * NULL, says which), else 0. One place, so that they all agree. */
int eg_admin_is_get(const eg_http1_msg_t *req, int *head);

/* Their answer to any other method: 405 method_not_allowed, "Use GET or
 * HEAD.", Allow: GET, HEAD (as eg_admin_error: NULL when out of memory). */
char *eg_admin_not_get(const eg_config_t *cfg, const eg_http1_msg_t *req, const char *reqid,
                       size_t *outlen);

/* 1 when the path belongs to this API (so the listener reads a body for it). */
int eg_admin_is_keys_path(const char *target, size_t len);

/* Handles one request; returns a malloc'd complete HTTP response (the
 * caller frees it) in *out and its length, or NULL on allocation failure. */
char *eg_admin_keys(const eg_config_t *cfg, eg_keyring_t *kr, const eg_http1_msg_t *req,
                    const char *body, size_t blen, const char *reqid, size_t *outlen);

/* GET /usage[?key=ID|subject=S&from=DATE&to=DATE&group_by=day|route&format=json|csv]:
 * usage totals (docs/metering.md), behind the admin token. u: the gateway's
 * usage recorder (committed first), NULL when it has none. */
struct eg_usage_s;
int eg_admin_is_usage_path(const char *target, size_t len);
char *eg_admin_usage(const eg_config_t *cfg, struct eg_usage_s *u, const eg_http1_msg_t *req, const char *reqid,
                     size_t *outlen);

#endif
