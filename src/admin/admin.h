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
 * dialect: 401 unauthorized without or with a wrong token, 403 forbidden
 * when no token is configured. A change reloads the keyring before the
 * answer is sent, so every worker applies it to the next request.
 */
#ifndef EG_ADMIN_H
#define EG_ADMIN_H

#include "config.h"
#include "errgate/http1.h"
#include "keyring.h"

/* 1 when the path belongs to this API (so the listener reads a body for it). */
int eg_admin_is_keys_path(const char *target, size_t len);

/* Handles one request; returns a malloc'd complete HTTP response (the
 * caller frees it) in *out and its length, or NULL on allocation failure. */
char *eg_admin_keys(const eg_config_t *cfg, eg_keyring_t *kr, const eg_http1_msg_t *req,
                    const char *body, size_t blen, const char *reqid, size_t *outlen);

#endif
