/* hcheck.h - active health checks of upstream servers (health_check: in an
 * upstream). One timer on the main loop probes every checked server with a
 * plain HTTP/1.1 GET of its health path, so no worker ever waits on a probe;
 * a server whose `fall` probes in a row fail is taken out of rotation (its
 * eg_server_health_t.active_down, read by the workers' pick) until `rise`
 * probes in a row pass.
 */
#ifndef EG_HCHECK_H
#define EG_HCHECK_H

#include <uv.h>

#include "gateway.h"

typedef struct eg_hcheck_s eg_hcheck_t;

/* Starts checking the servers of srv's active configuration on loop. */
int eg_hcheck_start(uv_loop_t *loop, eg_server_t *srv, eg_hcheck_t **out);
/* The configuration changed (SIGHUP): check the new one's servers. */
void eg_hcheck_reload(eg_hcheck_t *hc);
/* Stops the timer and closes the probes in flight (their memory is freed
 * as their handles close: run the loop after this, then eg_hcheck_free). */
void eg_hcheck_stop(eg_hcheck_t *hc);
void eg_hcheck_free(eg_hcheck_t *hc);

/* Whether the status a probe got passes the upstream's expect list. */
int eg_hcheck_expected(const eg_health_check_cfg_t *hc, int status);

#endif
