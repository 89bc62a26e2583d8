/* request.h - a request as the pipeline's stages see it.
 *
 * One struct per client connection carries both the request being served
 * (what stages read and write: the parsed head, request id, route, dialect,
 * principal, the headers every response carries, per-stage state) and the
 * transport that serves it (socket, buffers, timers, the upstream side),
 * which only proxy.c touches. nginx's ngx_http_request_t is the model: one
 * struct, its transport fields private by convention, so a stage reads a
 * field directly instead of through a call. Stages get it as eg_req_t and
 * act on it only through their own fields and the functions of stage.h.
 */
#ifndef EG_REQUEST_H
#define EG_REQUEST_H

#include <stdint.h>
#include <uv.h>

#include "access.h"
#include "errgate/http1.h"
#include "errgate/reqid.h"
#include "gateway.h"
#include "ltimer.h"

typedef struct conn_s eg_req_t;
struct up_s;

/* Connection states (transport). C_WAIT: admitted so far, waiting for the store (quotas, credits) off the loop. */
/* C_LINGER: the answer is written and the write side shut; what the client
 * still sends is read and dropped until it closes (lingering close). */
typedef enum { C_HEAD, C_WAIT, C_PROXY, C_DONE_WRITING, C_LINGER, C_CLOSING } cstate_t;
/* T_HANDSHAKE: a TLS handshake, bounded by header_timeout; nothing is answered when it runs out. */
typedef enum { T_NONE, T_IDLE, T_HEADER, T_BODY, T_WRITE, T_STORE, T_HANDSHAKE } tmode_t;

struct conn_s {
    uv_tcp_t tcp;
    /* the transport seam: NULL is the socket itself (plain), else TLS over
     * memory BIOs (tls.h); kick drains plaintext OpenSSL still holds when
     * reading resumes */
    struct eg_tls_s *tls;
    uv_idle_t kick;
    int has_kick;
    int is_tls;      /* accepted on a TLS listener (X-Forwarded-Proto: https) */
    int tls_started; /* the first bytes were a TLS record, not plain HTTP */
    int alpn;        /* eg_alpn_t once the handshake is done: what HTTP/2 dispatches on */
    eg_ltimer_t timer;
    uv_shutdown_t shut; /* the write side's shutdown before a lingering close */
    eg_worker_t *w;
    eg_gw_t *gw;
    struct conn_s *prev, *next; /* the worker's connections */
    int closes;
    int holds; /* store work in flight that points at this connection */
    int wpending;
    int in_process;
    cstate_t state;
    tmode_t tmode;
    char *buf;
    size_t len, cap, off, scanned;
    int reading;
    char *npath;       /* room for a normalized path (after buf, npath_cap bytes) */
    size_t npath_cap;
    const char *path;  /* the path routed on and forwarded: the target's own when already normal, else npath */
    size_t path_len;
    /* the request */
    int has_request;
    eg_http1_msg_t req;
    eg_http_header_t *hdrs;
    size_t hcap;
    char reqid[EG_REQID_MAX + 1];
    char traceparent[EG_TRACEPARENT_LEN + 1];
    char client_ip[64];
    eg_cidr_t client_addr;
    int has_client_addr;
    eg_access_t access; /* who the caller is, once authenticated */
    char rl_hdrs[768];  /* headers every response of this request carries (rate limits) */
    char *cors_hdrs;    /* more such lines, the cors stage's (Access-Control-*, Vary); NULL or "": none */
    size_t cors_cap;    /* bytes at cors_hdrs: allocated by the stage, kept for the connection's requests */
    char slots[2][320]; /* concurrency slots held until the request ends (traffic stage) */
    int nslots;
    int slots_redis;    /* the slots are in Redis, not the memory limiter */
    char slot_token[40]; /* this request's member in the Redis slot sets */
    void *pending;      /* the store or Redis work this request waits for (C_WAIT) */
    void (*on_wait_timeout)(eg_req_t *r); /* called when a wait with a timeout runs out */
    /* the pipeline (stage.h) */
    unsigned stage;     /* index of the next stage to run */
    int in_stage;       /* a stage's on_request is running */
    int resume_now;     /* it resumed the request before returning (answered at once) */
    int done_run;       /* the on_done hooks ran for this request */
    char *trailers;     /* request trailer lines kept for request.forward_trailers (EG_MAX_TRAILER) */
    unsigned capture;   /* a stage wants the response bytes (on_response_bytes) */
    struct eg_idem_ctx_s *idem; /* the idempotency stage's entry, until its on_done */
    int meter_held;     /* the meter stage holds a usage place until its on_done */
    const eg_route_cfg_t *route;
    const eg_dialect_t *dialect;
    unsigned method_bit;
    int keep_alive;
    int idempotent;
    uint64_t body_left;
    eg_chunked_t ck;
    int body_done;
    int body_sent;
    int buffering; /* reading a small body before choosing an upstream (request.buffer_body) */
    /* The request body moved out of buf for a stage (eg_req_read_body), as
     * data (a chunked body decoded), when it did not fit buf's body room or
     * was chunked: at most the stage's max bytes, forwarded from here,
     * emptied by conn_next and freed by conn_free. */
    char *rbody;
    size_t rbody_len, rbody_cap;
    size_t rbody_sent; /* bytes of it queued to the upstream */
    int rbody_moving;  /* body bytes go to rbody as they arrive */
    int rbody_held;    /* the whole body is in rbody (read from the client: body_done) */
    int rbody_fin;     /* all of it, and a chunked body's last chunk, went to the upstream */
    /* the upstream side */
    struct up_s *up;
    unsigned tried;
    eg_server_health_t *lb_held; /* the server this request counts in (inflight), NULL = none */
    int attempts;
    int response_started;
    /* the log line */
    uint64_t start_ns;
    int status;
    char code[64];
    const eg_catalog_entry_t *code_entry; /* code's catalog entry when the answer knew it (metrics) */
    uint64_t bytes_in, bytes_out;
    char upstream[300];
    int logged;
    uint64_t up_start_ns; /* the first upstream attempt, for metrics and logs */
    int up_status;        /* the upstream's response status (0: none came) */
    char message[160];    /* the message of the error the gateway answered with, for the logs */
    const char *cut; /* why a started response ended early (static), NULL when whole */
};

/* The target as path and query: itself in origin-form; in absolute-form
 * what follows the authority (the parser checked it), which may be empty or
 * start with '?', where the path is "/" (RFC 9112 3.2.2). */
static inline const char *eg_req_origin_form(const eg_req_t *c, size_t *n)
{
    const char *t = c->req.target;
    size_t len = c->req.target_len;
    if (t[0] == 'h' || t[0] == 'H') {
        size_t skip = (size_t)(c->req.host - t) + c->req.host_len;
        t += skip;
        len -= skip;
    }
    *n = len;
    return t;
}

#endif
