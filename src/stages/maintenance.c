/* maintenance.c - the maintenance stage: a route in a maintenance window
 * (routes[].maintenance) is answered 503 service_unavailable with the
 * window's end and Retry-After, without calling the upstream. */
#include "stage.h"

#include <stdio.h>

static eg_stage_rc_t on_request(eg_req_t *c)
{
    const eg_route_cfg_t *r = c->route;
    if (!r->maintenance) return EG_STAGE_CONTINUE;
    eg_error_t *e = eg_req_error(c, "service_unavailable");
    if (e) {
        eg_error_set(e, EG_S_MESSAGE, r->maintenance_message ? r->maintenance_message
                                                              : "Service temporarily unavailable due to maintenance");
        if (r->maintenance_retry_after >= 0) eg_error_set_retry_after(e, r->maintenance_retry_after);
        if (r->maintenance_until) eg_error_set_detail(e, "maintenance_end", json_string(r->maintenance_until));
        if (r->maintenance_from && r->maintenance_until) { /* flat-snake's "START - END" */
            char win[96];
            snprintf(win, sizeof(win), "%s - %s", r->maintenance_from, r->maintenance_until);
            eg_error_set_detail(e, "maintenance_window", json_string(win));
        }
        if (r->maintenance_status_page)
            eg_error_set_detail(e, "status_page", json_string(r->maintenance_status_page));
    }
    eg_req_send_error(c, e, NULL, "maintenance");
    return EG_STAGE_ANSWERED;
}

static int applies(const eg_config_t *cfg, const eg_route_cfg_t *route)
{
    (void)cfg;
    return route->maintenance;
}

const eg_stage_t eg_stage_maintenance = {.name = "maintenance", .on_request = on_request, .applies = applies};
