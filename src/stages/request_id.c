/* request_id.c - the request id stage: the id every answer and log line of
 * the request carries (the client's when valid and trusted, else `req_` and
 * 128 random bits), and the dialect errors are answered in (Accept, when
 * negotiation is on; the route may change it later). First in the table:
 * every stage after it can answer. */
#include "stage.h"

#include <string.h>

static eg_stage_rc_t on_request(eg_req_t *c)
{
    const eg_config_t *cfg = c->gw->cfg;
    const eg_http_header_t *h = eg_http1_header(&c->req, cfg->request_id_header);
    if (cfg->trust_request_id && h && eg_reqid_valid(h->value, h->value_len)) {
        memcpy(c->reqid, h->value, h->value_len);
        c->reqid[h->value_len] = '\0';
    } else {
        unsigned char r[16];
        eg_worker_random(c->w, r, sizeof(r));
        eg_reqid_generate(r, c->reqid);
    }
    c->dialect = cfg->dialect;
    if (cfg->negotiate && (h = eg_http1_header(&c->req, "accept")))
        c->dialect = eg_dialects_negotiate(cfg->dialects, cfg->dialect, h->value, h->value_len);
    return EG_STAGE_CONTINUE;
}

const eg_stage_t eg_stage_request_id = {.name = "request_id", .on_request = on_request};
