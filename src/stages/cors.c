/* cors.c - the CORS stage (docs/cors.md; the decisions are lib/cors.c's).
 *
 * It runs before the route stage, for two reasons: a preflight (OPTIONS
 * with Origin and Access-Control-Request-Method) must be answered on any
 * path a route matches, whatever the route's methods, where the route
 * stage would answer 405; and the route stage's own errors (400, 404, 405,
 * 413) must carry the Access-Control-* lines too. So it routes the request
 * itself: by the asked method for a preflight (the route the actual request
 * will reach, whose policy it must pass), by the request's method
 * otherwise. That route's cors replaces the global one; a path no route
 * matches has the global one.
 *
 * For every request it writes the policy's lines into r->cors_hdrs, which
 * the transport appends to every response of the request, errors and the
 * upstream's answers alike (replacing the upstream's Access-Control-*).
 * A preflight is then answered here, before access control and rate limits
 * (browsers send preflights without credentials): 204 with the lines, or
 * 403 cors_preflight_refused without any.
 */
#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/cors.h"
#include "errgate/router.h"

/* The 204 answer to an allowed preflight: no body, the request id, the
 * policy's lines. */
static void answer_preflight(eg_req_t *c, const char *lines, size_t llen)
{
    const eg_config_t *cfg = c->gw->cfg;
    eg_worker_t *w = eg_req_clock(c);
    if (!c->body_done) c->keep_alive = 0; /* the unread body would be taken for a request */
    char buf[EG_CORS_LINES_LIMIT + 512];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 204 No Content\r\nDate: %s\r\n%s: %s\r\n%.*sConnection: %s\r\n\r\n",
                     w->date, cfg->request_id_header, c->reqid, (int)llen, lines,
                     c->keep_alive ? "keep-alive" : "close");
    eg_respond_info_t info = {.status = 204, .code = ""};
    eg_req_answer(c, buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : 0, &info, NULL);
}

static eg_stage_rc_t on_request(eg_req_t *c)
{
    const eg_config_t *cfg = c->gw->cfg;
    if (!cfg->uses_cors) return EG_STAGE_CONTINUE;
    if (c->cors_cap <
        cfg->cors_lines_max) { /* a connection's first request (or a reload raised it) */
        char *p = realloc(c->cors_hdrs, cfg->cors_lines_max);
        if (!p) {
            eg_req_send_error(c, NULL, NULL, NULL); /* out of memory: closes */
            return EG_STAGE_ANSWERED;
        }
        c->cors_hdrs = p;
        c->cors_cap = cfg->cors_lines_max;
    }
    c->cors_hdrs[0] = '\0';
    const eg_http_header_t *o = eg_http1_header(&c->req, "origin");
    const eg_http_header_t *acrm = o && c->method_bit == EG_M_OPTIONS
                                       ? eg_http1_header(&c->req, "access-control-request-method")
                                       : NULL;
    const char *origin = o ? o->value : NULL;
    size_t olen = o ? o->value_len : 0, len = 0;
    /* the global policy's lines first: an unroutable path keeps them */
    if (cfg->cors &&
        eg_cors_response_headers(cfg->cors, origin, olen, c->cors_hdrs, c->cors_cap, &len) != EG_OK)
        c->cors_hdrs[0] = '\0';
    if (eg_req_canonical_path(c) != 0) return EG_STAGE_ANSWERED;
    unsigned method = acrm ? eg_method_bit(acrm->value, acrm->value_len) : c->method_bit;
    size_t id = 0;
    unsigned allow = 0;
    const eg_route_cfg_t *route = NULL;
    eg_route_result_t rr =
        eg_router_match(c->gw->router, c->path, c->path_len, method, &id, &allow);
    /* the path has routes, not for this method: the route of one of the
     * methods it allows stands for the path (its policy and dialect; the
     * route stage answers 405, a preflight is refused here) */
    if (rr == EG_ROUTE_METHOD_NOT_ALLOWED && allow &&
        eg_router_match(c->gw->router, c->path, c->path_len, allow & (0u - allow), &id, &allow) ==
            EG_ROUTE_OK)
        route = &cfg->routes[id];
    else if (rr == EG_ROUTE_OK)
        route = &cfg->routes[id];
    const eg_cors_policy_t *p = route && route->cors ? route->cors : cfg->cors;
    if (!p)
        return EG_STAGE_CONTINUE; /* no policy here: an OPTIONS preflight too is an ordinary request
                                   */
    if (p != cfg->cors &&
        eg_cors_response_headers(p, origin, olen, c->cors_hdrs, c->cors_cap, &len) != EG_OK)
        c->cors_hdrs[0] = '\0';
    if (!acrm) return EG_STAGE_CONTINUE;

    const eg_http_header_t *acrh = eg_http1_header(&c->req, "access-control-request-headers");
    char lines[EG_CORS_LINES_LIMIT]; /* the config refuses a policy whose lines could pass it */
    eg_cors_verdict_t verdict = EG_CORS_DENIED;
    const char *reason = NULL;
    if (eg_cors_preflight(p, origin, olen, acrm->value, acrm->value_len, acrh ? acrh->value : NULL,
                          acrh ? acrh->value_len : 0, lines, sizeof(lines), &len, &verdict,
                          &reason) != EG_OK) {
        verdict = EG_CORS_DENIED;
        reason = "no room for the lines";
    }
    if (verdict == EG_CORS_NOT_PREFLIGHT) return EG_STAGE_CONTINUE;
    if (verdict == EG_CORS_ALLOWED &&
        rr != EG_ROUTE_OK) { /* the actual request would be 404 or 405 */
        verdict = EG_CORS_DENIED;
        reason = "method not routed on this path";
    }
    /* the preflight's answer carries its own lines, or none when refused */
    c->cors_hdrs[0] = '\0';
    if (verdict == EG_CORS_ALLOWED) {
        answer_preflight(c, lines, len);
        return EG_STAGE_ANSWERED;
    }
    if (route && route->dialect && !(cfg->negotiate && c->dialect != cfg->dialect))
        c->dialect = route->dialect;
    char why[96];
    snprintf(why, sizeof(why), "cors preflight refused: %s", reason ? reason : "not allowed");
    eg_req_send_error(c, eg_req_error(c, "cors_preflight_refused"), NULL, why);
    return EG_STAGE_ANSWERED;
}

/* Before the route stage: asked once with no route, whether any policy
 * exists (without one, the stage is not called at all). */
static int applies(const eg_config_t *cfg, const eg_route_cfg_t *route)
{
    (void)route;
    return cfg->uses_cors;
}

const eg_stage_t eg_stage_cors = {.name = "cors", .on_request = on_request, .applies = applies};
