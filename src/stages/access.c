/* access.c - the access stage: who the caller is and whether the route lets
 * them in (routes[].auth, scopes, admin, allow_ips; src/access.c decides,
 * this stage runs it and answers its refusals). Two of a credential header
 * are refused first: which one counts is a question two parsers answer
 * differently (the first here, the last in many upstreams). */
#include "stage.h"
#include "tls.h"

#include <string.h>
#include <time.h>

#include "keyring.h"
#include "metrics.h"

static eg_stage_rc_t on_request(eg_req_t *c)
{
    const eg_config_t *cfg = c->gw->cfg;
    if (c->route->auth == EG_AUTHN_NONE && !c->route->nallow_ips) return EG_STAGE_CONTINUE;
    eg_refusal_t o;
    if (c->route->auth != EG_AUTHN_NONE) {
        int nkey = 0, nauth = 0;
        for (size_t i = 0; i < c->req.nheaders; i++) {
            const eg_http_header_t *h = &c->req.headers[i];
            nkey += eg_access_is_key_header(cfg, h);
            nauth += eg_http1_name_is(h, "authorization");
        }
        if (nkey > 1 || nauth > 1) {
            eg_error_t *e = eg_req_error(c, "bad_request");
            if (e)
                eg_error_setf(e, EG_S_MESSAGE, "The request has more than one %s header; send one credential.",
                              nkey > 1 ? cfg->key_header : "Authorization");
            eg_metrics_auth_failure(c->gw->metrics, c->w->id, c->route, "bad_request");
            eg_req_send_error(c, e, NULL, "duplicate credential header");
            return EG_STAGE_ANSWERED;
        }
    }
    eg_keyring_t *kr = eg_server_keyring(c->w->srv);
    if (kr && !c->w->hasher && eg_keyring_hasher_new(kr, &c->w->hasher) != EG_OK) c->w->hasher = NULL;
    if (cfg->jwt_keys && !c->w->jwt_mac && eg_jwt_mac_new(&c->w->jwt_mac) != EG_OK) c->w->jwt_mac = NULL;
    if (eg_access_check(cfg, c->route, kr, c->w->hasher, c->w->jwt_mac, &c->req, c->client_ip,
                        c->has_client_addr ? &c->client_addr : NULL, eg_req_tls(c) ? eg_tls_peer_subject(eg_req_tls(c)) : NULL,
                        (long long)time(NULL), &c->access, &o) == 0)
        return EG_STAGE_CONTINUE;
    eg_error_t *e = eg_req_error(c, o.code);
    if (e) {
        if (o.message[0]) eg_error_set(e, EG_S_MESSAGE, o.message);
        const char *k;
        json_t *v;
        json_object_foreach(o.details, k, v) eg_error_set_detail(e, k, json_incref(v));
        if (o.retry_after >= 0) eg_error_set_retry_after(e, o.retry_after);
    }
    json_decref(o.details);
    eg_metrics_auth_failure(c->gw->metrics, c->w->id, c->route, o.code);
    eg_req_send_error(c, e, o.extra[0] ? o.extra : NULL, o.why);
    return EG_STAGE_ANSWERED;
}

static int applies(const eg_config_t *cfg, const eg_route_cfg_t *route)
{
    (void)cfg;
    return route->auth != EG_AUTHN_NONE || route->nallow_ips;
}

const eg_stage_t eg_stage_access = {.name = "access", .on_request = on_request, .applies = applies};
