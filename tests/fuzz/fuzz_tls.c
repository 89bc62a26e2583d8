/* fuzz_tls.c - any bytes as what a peer sends to the TLS entry points of
 * src/server/tls.c: a listener's server side (ClientHello and what
 * follows, SNI and ALPN callbacks, tickets) or an upstream's client side
 * (ServerHello onwards), fed through the memory BIOs the way proxy.c feeds
 * them, in pieces whose sizes the input chooses (a handshake cut anywhere).
 * Nothing may crash or leak; a connection ends done, waiting or failed,
 * and a failed one has a reason. The certificate is made in memory at start
 * (a self-signed P-256 key) and written to temporary files for the loader.
 *
 * Input: byte 0 bit 0 picks the side, bits 1..7 the piece size (1..128);
 * the rest is the peer's bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls.h"

static eg_tls_server_t *g_server;
static SSL_CTX *g_client;
static eg_tls_tickets_t *g_tickets;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_tls: %s\n", what);
    abort();
}

/* A self-signed certificate for a.test and b.test, as PEM files. */
static void make_cert(char *cert_path, char *key_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!key || !x) die("cannot make a key");
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"a.test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (!X509_sign(x, key, EVP_sha256())) die("cannot sign");
    int fd = mkstemp(cert_path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || !PEM_write_X509(f, x)) die("cannot write the certificate");
    fclose(f);
    fd = mkstemp(key_path);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)) die("cannot write the key");
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char cert[] = "/tmp/fuzz_tls_cert_XXXXXX", key[] = "/tmp/fuzz_tls_key_XXXXXX";
    make_cert(cert, key);
    eg_tls_cert_cfg_t cc = {cert, key, NULL};
    eg_tls_listen_cfg_t cfg = {.certs = &cc, .ncerts = 1, .min_version = 12, .session_tickets = 1};
    char err[512];
    g_tickets = eg_tls_tickets_new();
    if (eg_tls_server_new(&cfg, g_tickets, &g_server, err, sizeof(err)) != 0) die(err);
    eg_upstream_tls_cfg_t up = {.on = 1, .ca = cert, .verify = 1};
    if (eg_tls_client_ctx_new(&up, &g_client, err, sizeof(err)) != 0) die(err);
    unlink(cert);
    unlink(key);
    return 0;
}

static void session(void *data, SSL_SESSION *s)
{
    (void)data;
    SSL_SESSION_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int client = data[0] & 1;
    size_t piece = (size_t)(data[0] >> 1) + 1;
    data++;
    size--;
    (void)eg_tls_looks_like_http((const char *)data, size);
    eg_tls_t *t = client ? eg_tls_connect_new(g_client, "a.test", NULL, NULL, session, NULL)
                         : eg_tls_accept_new(g_server);
    if (!t) return 0;
    char out[4096];
    int state = 0;
    if (client) { /* the ClientHello goes first */
        state = eg_tls_handshake(t);
        while (eg_tls_out_take(t, out, sizeof(out)) > 0) {
        }
    }
    for (size_t at = 0; at < size && state >= 0; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        if (eg_tls_feed(t, (const char *)data + at, n) != 0) break;
        if (!eg_tls_done(t)) state = eg_tls_handshake(t);
        while (state > 0) {
            ssize_t r = eg_tls_read(t, out, sizeof(out));
            if (r <= 0) {
                if (r < 0) state = -1;
                break;
            }
            if (eg_tls_write(t, out, (size_t)r) != 0) state = -1;
        }
        while (eg_tls_out_take(t, out, sizeof(out)) > 0) {
        }
    }
    if (state < 0 && !eg_tls_why(t)[0]) die("a failed connection without a reason");
    if (eg_tls_done(t)) {
        (void)eg_tls_alpn(t);
        (void)eg_tls_sni(t);
        (void)eg_tls_peer_subject(t);
        eg_tls_shutdown(t);
    }
    eg_tls_free(t);
    return 0;
}
