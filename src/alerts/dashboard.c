/* dashboard.c - serves the embedded dashboard (see dashboard.h). */
#include "dashboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "alerts.h"
#include "embedded.h"

extern const eg__embedded_t eg__dashboard[];
extern const size_t eg__dashboard_count;

static const struct {
    const char *path, *name, *type;
} assets[] = {
    {"/", "index", "text/html; charset=utf-8"},
    {"/ui/style.css", "style", "text/css; charset=utf-8"},
    {"/ui/app.js", "app", "text/javascript; charset=utf-8"},
};
#define NASSETS (sizeof(assets) / sizeof(assets[0]))

static int asset_of(const char *t, size_t n)
{
    /* the query string is ignored: /?route=/v1/ is the page */
    const char *q = memchr(t, '?', n);
    if (q) n = (size_t)(q - t);
    for (size_t i = 0; i < NASSETS; i++)
        if (strlen(assets[i].path) == n && memcmp(assets[i].path, t, n) == 0) return (int)i;
    return -1;
}

int eg_dashboard_is_path(const char *t, size_t n)
{
    return asset_of(t, n) >= 0;
}

char *eg_dashboard_admin(const eg_config_t *cfg, const eg_http1_msg_t *req, const char *reqid,
                         size_t *outlen)
{
    int head;
    if (!eg_admin_is_get(req, &head)) return eg_admin_not_get(cfg, req, reqid, outlen);
    if (!eg_alerts_token_ok(cfg, req)) {
        /* Basic, so that a browser asks for the token (as the password) */
        char extra[200];
        snprintf(extra, sizeof(extra),
                 "WWW-Authenticate: Basic realm=\"%s-admin\", charset=\"UTF-8\"\r\n", cfg->realm);
        return eg_admin_error(cfg, req, "unauthorized",
                              "The dashboard needs the admin token (as the password).", extra, -1,
                              reqid, outlen);
    }
    int a = asset_of(req->target, req->target_len);
    const eg__embedded_t *f = NULL;
    for (size_t i = 0; a >= 0 && i < eg__dashboard_count; i++)
        if (strcmp(eg__dashboard[i].name, assets[a].name) == 0) f = &eg__dashboard[i];
    if (!f)
        return eg_admin_error(cfg, req, "not_found", "No such dashboard file.", NULL, -1, reqid,
                              outlen);
    /* the page's own requests ride on a session cookie (alerts.h) */
    char cookie[256] = "";
    if (a == 0) eg_alerts_session_cookie(cfg, (long long)time(NULL), cookie, sizeof(cookie));
    char *out = malloc(f->len + 1280);
    if (!out) return NULL;
    char date[EG_HTTP1_DATE_LEN + 1];
    eg_http1_date((int64_t)time(NULL), date);
    int n = snprintf(out, 1280,
                     "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "X-Request-ID: %s\r\nCache-Control: no-store\r\n"
                     "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src "
                     "'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                     "form-action 'none'; frame-ancestors 'none'\r\n"
                     "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
                     "X-Frame-Options: DENY\r\n%sConnection: close\r\n\r\n",
                     date, assets[a].type, f->len, reqid, cookie);
    if (!head) memcpy(out + n, f->data, f->len);
    *outlen = (size_t)n + (head ? 0 : f->len);
    return out;
}
