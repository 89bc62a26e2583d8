/* dashboard.h - the live dashboard on the admin listener: GET / and its
 * two assets (/ui/style.css, /ui/app.js), static files compiled into the
 * binary from dashboard/ (cmake/embed.cmake). The page polls /alerts and
 * /metrics.json; nothing is fetched from outside (a Content-Security-Policy
 * of 'self' says so to the browser). Behind the admin token when one is
 * configured: a browser is asked for it (Basic, any user name, the token as
 * the password) and sends it again with the page's own requests. */
#ifndef EG_DASHBOARD_H
#define EG_DASHBOARD_H

#include <stddef.h>

#include "config.h"
#include "errgate/http1.h"

/* 1 for the paths the dashboard answers. */
int eg_dashboard_is_path(const char *target, size_t len);

/* The answer: a malloc'd complete HTTP response, NULL when out of memory. */
char *eg_dashboard_admin(const eg_config_t *cfg, const eg_http1_msg_t *req, const char *reqid,
                         size_t *outlen);

#endif
