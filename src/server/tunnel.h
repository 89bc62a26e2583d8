/* tunnel.h - an upgraded connection (WebSocket and the other protocols a
 * route allows): after the upstream's 101, the client's and the upstream's
 * sockets are joined byte for byte (docs/upgrades.md).
 *
 * proxy.c decides the upgrade and builds the 101 for the client; then it
 * hands both sockets over (a duplicate of each descriptor, and the TLS state
 * when a side speaks TLS) and closes its own connection objects, so a
 * tunneled upstream connection can never go back to the pool. From there the
 * tunnel owns everything: reads on one side become writes on the other, with
 * the proxy's backpressure (a side is not read while the other's write queue
 * is above the high water mark), an idle timeout, a byte limit per
 * direction, half-closes passed on (EOF or close_notify from one side shuts
 * the write side of the other once its queue drained), and one log line when
 * it ends. A tunnel counts in the worker's connections (max_connections,
 * draining); a drain ends tunnels at once, cleanly (close_notify, FIN).
 * Metrics: its start in the request's configuration generation, its end
 * and bytes in the one current then (the families sum every generation).
 * on_end lets proxy.c end the request (its on_done hooks: a concurrency
 * slot is held as long as the tunnel) once the tunnel's handles closed.
 */
#ifndef EG_TUNNEL_H
#define EG_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

#include "gateway.h"

struct eg_tls_s;

/* One side as proxy.c hands it over. */
typedef struct {
    int fd;               /* a socket descriptor the tunnel takes */
    struct eg_tls_s *tls; /* its TLS state, taken too (NULL: plain) */
    const char *early;    /* plaintext already read from this side, for the other */
    size_t nearly;
} eg_tunnel_side_t;

typedef struct {
    uint64_t idle_ms;   /* no byte either way for this long ends the tunnel */
    uint64_t max_bytes; /* per direction, 0 = none */
    const char *head;   /* the 101 for the client, sent before anything else */
    size_t nhead;
    /* for the log line */
    const char *request_id, *route, *upstream, *client;
    struct eg_metrics_gen_s *metrics; /* the request's counters: the tunnel's start (NULL: off) */
    /* called once when the tunnel ends (the request's on_done hooks: a
     * concurrency slot is held as long as the tunnel), NULL: none */
    void (*on_end)(void *data);
    void *data;
} eg_tunnel_opts_t;

/* Starts a tunnel on the worker's loop. Both sides (descriptors and TLS)
 * are the tunnel's whatever it returns. 0: on_end will be called, from a
 * later loop iteration, never from within this call; a negative EG_E*
 * code (out of memory): it will not. */
int eg_tunnel_start(eg_worker_t *w, const eg_tunnel_side_t *client, const eg_tunnel_side_t *up,
                    const eg_tunnel_opts_t *o);

/* The worker drains: every tunnel ends now (close_notify and FIN, after
 * what is queued). */
void eg_tunnel_drain(eg_worker_t *w);

#endif
