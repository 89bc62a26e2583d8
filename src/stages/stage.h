/* stage.h - the request path as a pipeline of stages.
 *
 * Between a complete request head and the first byte to the upstream, a
 * request passes the stages of one fixed table (src/stages/pipeline.c), in
 * order: request id, route, maintenance, access, validate, traffic, ... Each stage is
 * one file under src/stages/ with one eg_stage_t, its config section in
 * config.c, and nothing in proxy.c (docs/architecture.md).
 *
 * The contract (Envoy's filter return values, without re-entry):
 *  - on_request returns EG_STAGE_CONTINUE (the next stage runs),
 *    EG_STAGE_ANSWERED (the stage answered with eg_req_send_error or
 *    eg_req_answer; nothing else runs), or EG_STAGE_SUSPENDED (it started
 *    asynchronous work: a store on the thread pool, Redis; its callback,
 *    on the worker's loop, calls eg_req_resume() to go on with the next
 *    stage, or eg_req_wake() and then answers). A stage is never entered
 *    twice for one request, except while it reads the body
 *    (eg_req_read_body). A callback that comes before on_request
 *    returned (a store that answers at once) is safe: the runner notices
 *    and goes on when the stage returns SUSPENDED.
 *  - on_response_bytes (optional) sees the response as it leaves, for
 *    requests where a stage set r->capture (storing an idempotent answer).
 *  - on_done (optional) runs once per request when its response is
 *    complete, before its last bytes are sent, or when the request ended
 *    without one (client gone, timeout): slot releases, storing a
 *    response, metering.
 *  - worker_exit (optional) frees what the stage keeps per worker thread.
 * A stage that refuses builds a catalog error (eg_req_error) and never
 * writes bytes itself.
 */
#ifndef EG_STAGE_H
#define EG_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"
#include "respond.h"

typedef enum { EG_STAGE_CONTINUE = 0, EG_STAGE_ANSWERED, EG_STAGE_SUSPENDED } eg_stage_rc_t;

/* The most upstream fields a head given in fields (eg_resp_head_t) can
 * hold; a response with more is captured as bytes only. */
#define EG_RESP_HEAD_MAX 128

/* A forwarded response's head as the transport wrote it, in fields, for a
 * stage that keeps responses (on_response_head): what its bytes say,
 * without splitting them again. The head is, in order: the status line;
 * headers[relayed[0..nrelayed)] (the upstream's fields that were passed on,
 * as parsed: names tokens, values trimmed and free of control bytes but
 * HTAB), each written "Name: value"; Date when the upstream sent none; the
 * request id; added[0..3) as they are (rate-limit and quota lines, CORS,
 * HSTS: whole "Name: value\r\n" lines the gateway made, or empty); then
 * "Transfer-Encoding: chunked" when chunked, and Connection. Its bytes are
 * bytes[0..len), the first len bytes of the next on_response_bytes call
 * (the body's first bytes follow them in the same call). */
typedef struct {
    int status;
    const eg_http_header_t *headers;
    uint16_t relayed[EG_RESP_HEAD_MAX];
    size_t nrelayed;
    const char *added[3];
    size_t added_len[3];
    int chunked; /* the body goes out chunk-framed */
    const char *bytes;
    size_t len;
} eg_resp_head_t;

/* Defined with designated initializers; every hook but on_request may be
 * left out. */
typedef struct {
    const char *name;
    eg_stage_rc_t (*on_request)(eg_req_t *r);
    void (*on_done)(eg_req_t *r);
    /* The bytes of the request's response as they are queued to the client,
     * head first (1xx interim responses excepted), while r->capture is set:
     * a stage that keeps a response (idempotency) sets it in on_request.
     * Called before on_done for the last bytes. */
    void (*on_response_bytes)(eg_req_t *r, const char *data, size_t n);
    /* (with on_response_bytes) A forwarded response's head in fields,
     * just before its bytes come to on_response_bytes; not every answer
     * path gives it (a translated or held error, a gateway answer: bytes
     * only), so the bytes stay the reference. */
    void (*on_response_head)(eg_req_t *r, const eg_resp_head_t *h);
    void (*worker_exit)(eg_worker_t *w);
    /* Whether the stage has anything to do on a route, asked once per route
     * at load (eg_pipeline_bind): a stage that does not apply is not called
     * at all for its requests. NULL: always. A stage before route (which
     * runs before a request has one) is asked once, with route NULL: whether
     * it has anything to do under cfg at all. */
    int (*applies)(const eg_config_t *cfg, const eg_route_cfg_t *route);
} eg_stage_t;

/* The stages, in the order they run (pipeline.c). */
extern const eg_stage_t eg_stage_request_id, eg_stage_route, eg_stage_maintenance, eg_stage_access,
    eg_stage_traffic;
extern const eg_stage_t eg_stage_cors;
extern const eg_stage_t eg_stage_health;
extern const eg_stage_t eg_stage_idempotency;
extern const eg_stage_t eg_stage_validate;
extern const eg_stage_t eg_stage_meter_api;
extern const eg_stage_t eg_stage_meter;
extern const eg_stage_t eg_stage_usage;
/* The route stage's canonical path (c->path), for a stage that routes
 * before it (cors): 0, or -1 when the request was answered (400/414). */
int eg_req_canonical_path(eg_req_t *r);

/* --- the runner (pipeline.c) --------------------------------------------- */

/* Runs the request's stages from r->stage on; when the last one continues,
 * the request goes upstream (eg_req_admit). */
void eg_pipeline_run(eg_req_t *r);
/* Fills m (m->routes: one per route of cfg) for eg_gw_t.stages: bit s of
 * routes[i] when stage s applies to route i, of unrouted when it runs for
 * requests without a route yet (the stages up to route), of done when it
 * has an on_done hook. */
void eg_pipeline_bind(const eg_config_t *cfg, eg_pipeline_masks_t *m);
/* The on_done hooks of the stages that ran, once per request. */
void eg_pipeline_done(eg_req_t *r);
/* The response bytes to the stages that asked (r->capture). */
void eg_pipeline_capture(eg_req_t *r, const char *data, size_t n);
/* A forwarded response's head in fields to the same stages, before its
 * bytes (eg_pipeline_capture). */
void eg_pipeline_head(eg_req_t *r, const eg_resp_head_t *h);
/* Every stage's worker_exit, when a worker thread ends. */
void eg_pipeline_worker_exit(eg_worker_t *w);

/* --- what the transport (proxy.c) offers stages ---------------------------- */

/* A catalog error with the request's id and the time; NULL when out of
 * memory (eg_req_send_error(NULL) then closes the connection). */
eg_error_t *eg_req_error(eg_req_t *r, const char *code);
/* Answers with the error in the request's dialect, with `extra` header
 * lines and the request's response headers; takes e. `why` is logged. */
void eg_req_send_error(eg_req_t *r, eg_error_t *e, const char *extra, const char *why);
/* eg_req_error + message + eg_req_send_error. */
void eg_req_send_simple(eg_req_t *r, const char *code, const char *message, const char *why);
/* 503 service_unavailable with `message` and Retry-After: 1: a store or
 * Redis the stage depends on failed or did not answer (traffic,
 * idempotency); the client may retry in a second. */
void eg_req_send_unavailable(eg_req_t *r, const char *message, const char *why);
/* A 200 whose JSON body the gateway made (usage, health): the request id,
 * the headers earlier stages set (rate limits, CORS), Cache-Control:
 * no-store, no body for HEAD. Takes body (malloc'd; NULL: a 500
 * internal_error logged with why). */
void eg_req_send_json(eg_req_t *r, char *body, const char *why);
/* Answers with a response the stage rendered itself (n bytes of buf, 0:
 * close); info says its status and code for the logs. */
void eg_req_answer(eg_req_t *r, const char *buf, size_t n, const eg_respond_info_t *info, const char *why);
/* One error-log line for the request (rate-limited per code). */
void eg_req_log_error(eg_req_t *r, const char *code, int status, const char *why);
/* The worker with its once-a-second timestamp and Date value fresh. */
eg_worker_t *eg_req_clock(eg_req_t *r);

/* Suspends the request on `pending` (the stage's own work): reading stops,
 * the connection stays alive until eg_req_wait_over. With timeout_ms, the
 * stage's on_timeout runs if the work is not back by then (the request is
 * no longer waiting then: the late answer must find pending's link to the
 * request cleared). */
void eg_req_wait(eg_req_t *r, void *pending, uint64_t timeout_ms, void (*on_timeout)(eg_req_t *r));
/* The work came back: 1 when the request is still there to go on with, 0
 * when it went away meanwhile (its memory is freed here then). */
int eg_req_wait_over(eg_req_t *r);
/* Goes on with the next stage after a suspension. `async`: called from a
 * callback (not from within the stage's on_request). */
void eg_req_resume(eg_req_t *r, int async);
/* Leaves the wait to answer: call before eg_req_send_error from a callback. */
void eg_req_wake(eg_req_t *r);
/* For a stage that needs the whole request body before it decides (and
 * before the upstream is contacted): idempotency's fingerprint, a JSON
 * validation. Call it from on_request; it returns
 *  - 1: the body is whole. *body, *len: its data, valid until the request
 *    ends; a chunked body decoded (chunk framing and trailers removed), a
 *    Content-Length body as sent; *len 0 when there is none. Read only.
 *  - 0: it is being read. Return EG_STAGE_SUSPENDED: on_request runs anew
 *    (from the top) each time more arrives, and calls this again; the
 *    client gets 100 Continue if it asked for it.
 *  - EG_ETOOBIG: the body is larger than max, or than limits.max_body_size
 *    when that is smaller (a Content-Length says so before any byte; a
 *    chunked body as soon as its data or a declared chunk passes it):
 *    answer 413. The rest of the body is unread: the connection closes
 *    after the answer.
 *  - EG_EPARSE: malformed chunks (answer 400, the connection closes).
 *  - EG_EIO: the connection is closed (client gone, out of memory): return
 *    EG_STAGE_ANSWERED without answering.
 * Memory: a Content-Length body that fits the connection's buffer (64 KiB
 * after the head) stays there; a larger one, or any chunked one, moves to a
 * per-request buffer grown as it arrives, never past the bound above,
 * freed when the request ends (kept up to 16 KiB for the connection's next
 * request). So a connection holds at most its buffer plus the largest max
 * a stage asks for (config: at most EG_STAGE_BODY_MAX, 16 MiB), plus 320 KiB
 * queued to the upstream. Whichever way it was read, the body goes to the
 * upstream as it would have (a chunked one re-framed, as always) when the
 * request is admitted. Several stages may call it: later calls return the
 * same body at once (EG_ETOOBIG when it is larger than their max). */
int eg_req_read_body(eg_req_t *r, uint64_t max, const char **body, size_t *len);
/* While eg_req_read_body returns 0: the body's data that came so far (a
 * chunked one decoded), *len bytes from its start; each call returns a
 * prefix of what a later one returns, so a stage can check the body as it
 * streams in (validate: a JSON body against its schema). Valid until the
 * stage returns. */
const char *eg_req_body_so_far(eg_req_t *r, size_t *len);
/* The body eg_req_read_body returned whole is skipped: the stage answered
 * without the upstream (a replay, a 409), and the connection stays usable
 * for the next request. len (what eg_req_read_body gave) is not needed:
 * the transport knows where the body is. */
void eg_req_drop_body(eg_req_t *r, size_t len);


/* The request passed every stage: on to the upstream (the runner calls it). */
void eg_req_admit(eg_req_t *r);

#endif
