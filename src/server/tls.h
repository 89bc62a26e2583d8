/* tls.h - TLS over memory BIOs: the transport seam's TLS half (docs/tls.md).
 *
 * A connection's bytes go through a small I/O layer that is either the
 * socket itself (plain) or an eg_tls_t: ciphertext read from the socket is
 * fed in (eg_tls_feed), the handshake and decryption run on the worker's
 * loop without ever blocking (OpenSSL never touches the socket), plaintext
 * comes out of eg_tls_read, and what OpenSSL has to send (handshake
 * records, encrypted data, alerts) is taken with eg_tls_out_take and
 * written by the caller like any other bytes. proxy.c owns the sockets; this
 * file owns OpenSSL: the contexts of a TLS listener (certificates chosen by
 * SNI, versions, ciphers, ALPN, OCSP stapling, client certificates, session
 * tickets with the process's rotating keys) and those of https upstreams
 * (verification, SNI, client certificate, session reuse).
 */
#ifndef EG_TLS_H
#define EG_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "config.h"

typedef struct eg_tls_s eg_tls_t;
typedef struct eg_tls_server_s eg_tls_server_t;
typedef struct eg_tls_tickets_s eg_tls_tickets_t;

/* The application protocol ALPN chose (none: http/1.1 by default). */
typedef enum { EG_ALPN_NONE = 0, EG_ALPN_HTTP11, EG_ALPN_H2 } eg_alpn_t;

/* ---- session ticket keys: one set per process, shared by every listener */

/* Made at start with a random key; NULL when out of memory. */
eg_tls_tickets_t *eg_tls_tickets_new(void);
/* A new key for new tickets; the previous one still decrypts (and renews)
 * tickets for one more period, so a resumption survives one rotation. */
void eg_tls_tickets_rotate(eg_tls_tickets_t *tk);
void eg_tls_tickets_free(eg_tls_tickets_t *tk);

/* ---- contexts */

/* The contexts of one TLS listener: every certificate and key is loaded
 * and checked (the key matches, the OCSP file reads) here, so a bad one
 * fails a start or a reload with err saying which and why. tk may be NULL
 * (check-config). */
int eg_tls_server_new(const eg_tls_listen_cfg_t *cfg, eg_tls_tickets_t *tk, eg_tls_server_t **out,
                      char *err, size_t errlen);
void eg_tls_server_free(eg_tls_server_t *s);
/* The names (SNI) the listener's certificates answer, for the log line:
 * "default=a.example, b.example". */
void eg_tls_server_describe(const eg_tls_server_t *s, char *out, size_t cap);
/* 1 when a certificate of the listener expires within `days` (out: which
 * file and when), so the operator hears of it at start and on each reload. */
int eg_tls_server_expiring(const eg_tls_server_t *s, int days, char *out, size_t cap);

/* The client context of an https upstream. */
int eg_tls_client_ctx_new(const eg_upstream_tls_cfg_t *cfg, SSL_CTX **out, char *err,
                          size_t errlen);

/* ---- connections */

/* A server-side connection of the listener; NULL when out of memory. */
eg_tls_t *eg_tls_accept_new(eg_tls_server_t *s);
/* A client-side connection to an upstream at host (an IP or a name):
 * SNI and the verified name are server_name when set, else host.
 * session (may be NULL) is offered for resumption. on_session, when set,
 * gets each new session the server gives (its reference: keep or free). */
eg_tls_t *eg_tls_connect_new(SSL_CTX *ctx, const char *host, const char *server_name,
                             SSL_SESSION *session, void (*on_session)(void *data, SSL_SESSION *s),
                             void *data);
void eg_tls_free(eg_tls_t *t);
/* Stops reporting new sessions to on_session (the connection moved to a
 * tunnel: its pool entry's owner goes away). */
void eg_tls_drop_session_cb(eg_tls_t *t);

/* Ciphertext from the peer; -1 when out of memory. */
int eg_tls_feed(eg_tls_t *t, const char *in, size_t n);
/* Moves the handshake on: 1 once complete, 0 while it needs more bytes
 * from the peer, -1 when it failed (eg_tls_why says why). */
int eg_tls_handshake(eg_tls_t *t);
int eg_tls_done(const eg_tls_t *t);
/* Plaintext: > 0 bytes, 0 when more ciphertext is needed, -1 at the end
 * (close_notify, or an error). */
ssize_t eg_tls_read(eg_tls_t *t, char *out, size_t cap);
/* 1 when bytes wait inside (plaintext decrypted, or ciphertext fed) that a
 * read would return without new input from the peer. */
int eg_tls_buffered(const eg_tls_t *t);
/* Encrypts n bytes of plaintext (all of them, the output is memory); -1 on failure. */
int eg_tls_write(eg_tls_t *t, const char *p, size_t n);
/* close_notify, queued as output. */
void eg_tls_shutdown(eg_tls_t *t);
/* Ciphertext waiting to be sent, and taking up to cap bytes of it. */
size_t eg_tls_out_pending(const eg_tls_t *t);
size_t eg_tls_out_take(eg_tls_t *t, char *out, size_t cap);

const char *eg_tls_why(const eg_tls_t *t);
eg_alpn_t eg_tls_alpn(const eg_tls_t *t);
/* "TLSv1.3", for the log. */
const char *eg_tls_version(const eg_tls_t *t);
/* The SNI name the client sent ("" when none). */
const char *eg_tls_sni(const eg_tls_t *t);
/* 1 when the handshake resumed a session. */
int eg_tls_resumed(const eg_tls_t *t);
/* The verified client certificate's subject, RFC 2253 ("CN=alice,O=Example"),
 * "" when the client sent none. */
const char *eg_tls_peer_subject(const eg_tls_t *t);

/* 1 when the first bytes of a connection to a TLS port are an HTTP request
 * line rather than a TLS record ("GET /", "POST "...): plain HTTP on the
 * wrong port, which gets an HTTP answer, not a TLS alert. */
int eg_tls_looks_like_http(const char *p, size_t n);

#endif
