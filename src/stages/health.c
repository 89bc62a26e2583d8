/* health.c - the health stage: GET or HEAD of health_path on the API
 * listener (when configured) answers /health's document, as the admin
 * listener does: 200 with the state of upstreams, the store and Redis, or,
 * draining or unable to serve, 503 service_unavailable in the request's
 * dialect with Retry-After and the document as details.health (without
 * Redis's address: this listener is the public one). Before
 * route, so the path needs no route; bound only when health_path is set,
 * so other configurations never call it. */
#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static eg_stage_rc_t on_request(eg_req_t *c)
{
    const char *hp = c->gw->cfg->health_path;
    size_t n, hl = strlen(hp);
    const char *t = eg_req_origin_form(c, &n);
    const char *q = memchr(t, '?', n);
    if (q) n = (size_t)(q - t);
    if (n != hl || memcmp(t, hp, hl) != 0 || !(c->method_bit & (EG_M_GET | EG_M_HEAD)))
        return EG_STAGE_CONTINUE;
    int serve;
    long long retry;
    json_t *h = eg_server_health(c->w->srv, &serve, &retry);
    /* a public listener: no internal address (the admin listener's has it) */
    json_object_del(json_object_get(h, "redis"), "address");
    if (!serve) {
        eg_error_t *e = eg_req_error(c, "service_unavailable");
        const char *st = json_string_value(json_object_get(h, "status"));
        if (e) {
            eg_error_set(e, EG_S_MESSAGE,
                         st && strcmp(st, "draining") == 0
                             ? "The gateway is shutting down."
                             : "The gateway cannot serve requests now.");
            eg_error_set_retry_after(e, retry);
            eg_error_set_detail(e, "health", json_incref(h));
        }
        json_decref(h);
        eg_req_send_error(c, e, NULL, "health: cannot serve");
        return EG_STAGE_ANSWERED;
    }
    char *body = json_dumps(h, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(h);
    eg_req_send_json(c, body, "health: out of memory");
    return EG_STAGE_ANSWERED;
}

static int applies(const eg_config_t *cfg, const eg_route_cfg_t *route)
{
    (void)route;
    return cfg->health_path != NULL;
}

const eg_stage_t eg_stage_health = {.name = "health", .on_request = on_request, .applies = applies};
