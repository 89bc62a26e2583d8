/* tls.c - OpenSSL 3 behind memory BIOs (see tls.h).
 *
 * Listener contexts: one SSL_CTX per certificate, configured alike (the
 * first is the default); the servername callback moves a connection to the
 * context whose certificate names the SNI host (exact, then one-label
 * wildcard), as nginx does. Versions TLS 1.2 and 1.3 (1.3 only by
 * min_version), Mozilla's "intermediate" ciphers (ECDHE with AES-GCM and
 * ChaCha20 only), no compression, no renegotiation. ALPN prefers h2
 * then http/1.1 (tls.h2: false offers http/1.1 only; docs/http2.md). Session tickets are encrypted with
 * the process's keys (eg_tls_tickets_t), rotated by the main thread, so
 * every worker and every reload resumes the same tickets. Contexts are
 * reference-counted by OpenSSL: a reload makes new ones, connections keep
 * the ones they started with.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "errgate/common.h"

#define EG_TLS12_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define EG_TLS_GROUPS "X25519:prime256v1:secp384r1"

/* ------------------------------------------------------------ ticket keys */

typedef struct {
    unsigned char name[16], aes[32], hmac[32];
} tkey_t;

struct eg_tls_tickets_s {
    pthread_mutex_t lock;
    tkey_t cur, prev;
    int has_prev;
};

static int tkey_make(tkey_t *k)
{
    return RAND_bytes(k->name, sizeof(k->name)) == 1 && RAND_bytes(k->aes, sizeof(k->aes)) == 1 &&
                   RAND_bytes(k->hmac, sizeof(k->hmac)) == 1
               ? 0
               : -1;
}

eg_tls_tickets_t *eg_tls_tickets_new(void)
{
    eg_tls_tickets_t *tk = calloc(1, sizeof(*tk));
    if (!tk) return NULL;
    if (tkey_make(&tk->cur) != 0) {
        free(tk);
        return NULL;
    }
    pthread_mutex_init(&tk->lock, NULL);
    return tk;
}

void eg_tls_tickets_rotate(eg_tls_tickets_t *tk)
{
    tkey_t k;
    if (!tk || tkey_make(&k) != 0) return;
    pthread_mutex_lock(&tk->lock);
    tk->prev = tk->cur;
    tk->has_prev = 1;
    tk->cur = k;
    pthread_mutex_unlock(&tk->lock);
    OPENSSL_cleanse(&k, sizeof(k));
}

void eg_tls_tickets_free(eg_tls_tickets_t *tk)
{
    if (!tk) return;
    pthread_mutex_destroy(&tk->lock);
    OPENSSL_cleanse(tk, sizeof(*tk));
    free(tk);
}

static int g_ctx_tickets = -1; /* ex_data index of a context's eg_tls_tickets_t */
static int g_ctx_server = -1;  /* and of its eg_tls_server_t */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void ex_init(void)
{
    g_ctx_tickets = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    g_ctx_server = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* RFC 5077's construction, as OpenSSL's own: AES-256-CBC and HMAC-SHA256.
 * 1: key found (current), 2: found and the ticket should be renewed
 * (previous key), 0: unknown key (a full handshake), -1: failure. */
static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    eg_tls_tickets_t *tk = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), g_ctx_tickets);
    if (!tk) return -1;
    tkey_t k;
    int rc = 1;
    pthread_mutex_lock(&tk->lock);
    if (enc) {
        k = tk->cur;
    } else if (memcmp(key_name, tk->cur.name, 16) == 0) {
        k = tk->cur;
    } else if (tk->has_prev && memcmp(key_name, tk->prev.name, 16) == 0) {
        k = tk->prev;
        rc = 2;
    } else {
        rc = 0;
    }
    pthread_mutex_unlock(&tk->lock);
    if (rc == 0) return 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    if (enc) {
        memcpy(key_name, k.name, 16);
        if (RAND_bytes(iv, 16) != 1 ||
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1)
            rc = -1;
    } else if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1) {
        rc = -1;
    }
    if (rc > 0 && EVP_MAC_CTX_set_params(hctx, params) != 1) rc = -1;
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

/* ------------------------------------------------------------ listener contexts */

typedef struct {
    SSL_CTX *ctx;
    const char *file; /* the configuration's cert path (outlives this: the gw holds both) */
    char **names; /* DNS names of the certificate (SAN, else CN), lower case */
    size_t nnames;
    unsigned char *ocsp; /* DER OCSP response, NULL = none */
    size_t ocsp_len;
} tcert_t;

struct eg_tls_server_s {
    tcert_t *certs; /* [0] is the default */
    size_t ncerts;
    int h2;
};

static void set_err(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";
    if (e) ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s%s%s%s%s", what, file ? " " : "", file ? file : "", e ? ": " : "",
             buf);
    ERR_clear_error();
}

static int add_name(tcert_t *c, const char *n, size_t len)
{
    if (len == 0 || len > 253) return 0;
    char **names = realloc(c->names, (c->nnames + 1) * sizeof(*names));
    if (!names) return -1;
    c->names = names;
    char *s = malloc(len + 1);
    if (!s) return -1;
    for (size_t i = 0; i < len; i++)
        s[i] = (char)((n[i] >= 'A' && n[i] <= 'Z') ? n[i] + 32 : n[i]);
    s[len] = '\0';
    c->names[c->nnames++] = s;
    return 0;
}

/* The names SNI matches: the certificate's DNS subjectAltNames, or its
 * CN when it has none (as browsers no longer do, but old certificates). */
static int cert_names(tcert_t *c, X509 *x)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && !rc; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS) continue;
        rc = add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                      (size_t)ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
    if (!rc && c->nnames == 0) {
        char cn[256];
        int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
        if (n > 0) rc = add_name(c, cn, (size_t)n);
    }
    return rc;
}

static int name_match(const char *pat, const char *host)
{
    if (strcasecmp(pat, host) == 0) return 1;
    if (pat[0] != '*' || pat[1] != '.') return 0;
    const char *dot = strchr(host, '.');
    return dot && dot != host && strcasecmp(pat + 1, dot) == 0;
}

static tcert_t *cert_for(eg_tls_server_t *s, const char *host)
{
    for (int wild = 0; wild < 2; wild++)
        for (size_t i = 0; i < s->ncerts; i++)
            for (size_t k = 0; k < s->certs[i].nnames; k++) {
                const char *p = s->certs[i].names[k];
                if ((p[0] == '*') == wild && name_match(p, host)) return &s->certs[i];
            }
    return NULL;
}

static int servername_cb(SSL *ssl, int *al, void *arg)
{
    (void)al;
    eg_tls_server_t *s = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!host) return SSL_TLSEXT_ERR_NOACK;
    tcert_t *c = cert_for(s, host);
    if (c && c->ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, c->ctx);
    return SSL_TLSEXT_ERR_OK;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    eg_tls_server_t *s = arg;
    static const unsigned char h2[] = "\x02h2\x08http/1.1";
    static const unsigned char h1[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    unsigned char sellen = 0;
    if (SSL_select_next_proto(&sel, &sellen, s->h2 ? h2 : h1,
                              s->h2 ? sizeof(h2) - 1 : sizeof(h1) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no common protocol: go on as HTTP/1.1 without ALPN */
    *out = sel;
    *outlen = sellen;
    return SSL_TLSEXT_ERR_OK;
}

static int ocsp_cb(SSL *ssl, void *arg)
{
    tcert_t *c = arg;
    /* the context the connection ended on (SNI) decides */
    tcert_t *cur = c;
    eg_tls_server_t *s = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), g_ctx_server);
    for (size_t i = 0; s && i < s->ncerts; i++)
        if (s->certs[i].ctx == SSL_get_SSL_CTX(ssl)) cur = &s->certs[i];
    if (!cur->ocsp) return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_malloc(cur->ocsp_len);
    if (!copy) return SSL_TLSEXT_ERR_NOACK;
    memcpy(copy, cur->ocsp, cur->ocsp_len);
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)cur->ocsp_len);
    return SSL_TLSEXT_ERR_OK;
}

/* A whole file, for the OCSP response (DER, small). */
static int slurp(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char *buf = malloc(65536);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    int bad = !buf || ferror(f) || n == 0 || n == 65536;
    fclose(f);
    if (bad) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int server_ctx(const eg_tls_listen_cfg_t *cfg, const eg_tls_cert_cfg_t *cc,
                      eg_tls_tickets_t *tk, eg_tls_server_t *s, tcert_t *c, char *err,
                      size_t errlen)
{
    SSL_CTX *ctx = c->ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return set_err(err, errlen, "cannot make a TLS context", NULL), EG_ENOMEM;
    SSL_CTX_set_min_proto_version(ctx, cfg->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, cfg->ciphers ? cfg->ciphers : EG_TLS12_CIPHERS) != 1)
        return set_err(err, errlen, "ciphers: no usable cipher in", cfg->ciphers), EG_EINVAL;
    if (SSL_CTX_set1_groups_list(ctx, EG_TLS_GROUPS) != 1)
        return set_err(err, errlen, "cannot set the key exchange groups", NULL), EG_EINVAL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cc->cert) != 1)
        return set_err(err, errlen, "cannot load the certificate", cc->cert), EG_EINVAL;
    if (SSL_CTX_use_PrivateKey_file(ctx, cc->key, SSL_FILETYPE_PEM) != 1)
        return set_err(err, errlen,
                       "cannot load the private key (or it does not match the certificate)",
                       cc->key),
               EG_EINVAL;
    if (SSL_CTX_check_private_key(ctx) != 1)
        return set_err(err, errlen, "the private key does not match the certificate", cc->cert),
               EG_EINVAL;
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        snprintf(err, errlen, "the certificate %s has expired", cc->cert);
        return EG_EINVAL;
    }
    if (cert_names(c, x) != 0) return EG_ENOMEM;
    c->file = cc->cert;
    if (cc->ocsp) {
        if (slurp(cc->ocsp, &c->ocsp, &c->ocsp_len) != 0) {
            snprintf(err, errlen, "cannot read the OCSP response %s", cc->ocsp);
            return EG_EINVAL;
        }
        const unsigned char *p = c->ocsp;
        OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)c->ocsp_len);
        if (!r) {
            snprintf(err, errlen, "%s is not a DER OCSP response", cc->ocsp);
            return EG_EINVAL;
        }
        OCSP_RESPONSE_free(r);
    }
    SSL_CTX_set_tlsext_status_cb(ctx, ocsp_cb);
    SSL_CTX_set_tlsext_status_arg(ctx, c);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, s);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, s);
    SSL_CTX_set_ex_data(ctx, g_ctx_server, s);
    static const unsigned char sid[] = "errgate";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    if (cfg->session_tickets && tk) {
        SSL_CTX_set_ex_data(ctx, g_ctx_tickets, tk);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        /* one TLS 1.3 ticket per handshake, not OpenSSL's two: each costs an
         * encryption and a MAC, and a client resumes with one */
        SSL_CTX_set_num_tickets(ctx, 1);
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (cfg->client_ca) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->client_ca, NULL) != 1)
            return set_err(err, errlen, "cannot load client_ca", cfg->client_ca), EG_EINVAL;
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca);
        if (!names)
            return set_err(err, errlen, "no CA certificate in client_ca", cfg->client_ca),
                   EG_EINVAL;
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(
            ctx,
            SSL_VERIFY_PEER |
                (cfg->verify == EG_VERIFY_REQUIRED ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
            NULL);
        SSL_CTX_set_verify_depth(ctx, 8);
    }
    return EG_OK;
}

int eg_tls_server_new(const eg_tls_listen_cfg_t *cfg, eg_tls_tickets_t *tk, eg_tls_server_t **out,
                      char *err, size_t errlen)
{
    pthread_once(&g_once, ex_init);
    eg_tls_server_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->certs = calloc(cfg->ncerts, sizeof(*s->certs)))) {
        free(s);
        return EG_ENOMEM;
    }
    s->h2 = cfg->h2;
    int rc = EG_OK;
    for (size_t i = 0; rc == EG_OK && i < cfg->ncerts; i++) {
        s->ncerts++;
        rc = server_ctx(cfg, &cfg->certs[i], tk, s, &s->certs[i], err, errlen);
    }
    if (rc != EG_OK) {
        eg_tls_server_free(s);
        return rc;
    }
    *out = s;
    return EG_OK;
}

void eg_tls_server_free(eg_tls_server_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->ncerts; i++) {
        /* connections still holding the context keep it alive (OpenSSL's count),
         * but not its callbacks' argument: detach them */
        SSL_CTX *ctx = s->certs[i].ctx;
        if (ctx) {
            SSL_CTX_set_ex_data(ctx, g_ctx_server, NULL);
            SSL_CTX_free(ctx);
        }
        for (size_t k = 0; k < s->certs[i].nnames; k++)
            free(s->certs[i].names[k]);
        free(s->certs[i].names);
        free(s->certs[i].ocsp);
    }
    free(s->certs);
    free(s);
}

void eg_tls_server_describe(const eg_tls_server_t *s, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->ncerts && at < cap; i++)
        for (size_t k = 0; k < s->certs[i].nnames && at < cap; k++) {
            int n = snprintf(out + at, cap - at, "%s%s%s", at ? ", " : "",
                             i == 0 && k == 0 ? "default=" : "", s->certs[i].names[k]);
            if (n < 0) break;
            at += (size_t)n;
        }
}

int eg_tls_server_expiring(const eg_tls_server_t *s, int days, char *out, size_t cap)
{
    time_t limit = time(NULL) + (time_t)days * 86400;
    size_t at = 0;
    int found = 0;
    for (size_t i = 0; i < s->ncerts && at < cap; i++) {
        const ASN1_TIME *na = X509_get0_notAfter(SSL_CTX_get0_certificate(s->certs[i].ctx));
        if (X509_cmp_time(na, &limit) >= 0) continue;
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        ASN1_TIME_to_tm(na, &tm);
        int n = snprintf(out + at, cap - at, "%s%s expires on %04d-%02d-%02d", found ? "; " : "",
                         s->certs[i].file ? s->certs[i].file : "?", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        if (n < 0) break;
        at += (size_t)n;
        found = 1;
    }
    if (found && at < cap) snprintf(out + at, cap - at, " (less than %d days left)", days);
    return found;
}

/* ------------------------------------------------------------ upstream contexts */

static int client_new_session(SSL *ssl, SSL_SESSION *sess);

int eg_tls_client_ctx_new(const eg_upstream_tls_cfg_t *cfg, SSL_CTX **out, char *err, size_t errlen)
{
    pthread_once(&g_once, ex_init);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return set_err(err, errlen, "cannot make a TLS context", NULL), EG_ENOMEM;
    int rc = EG_EINVAL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (cfg->verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (cfg->ca ? SSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != 1
                    : SSL_CTX_set_default_verify_paths(ctx) != 1) {
            set_err(err, errlen, "cannot load the CA", cfg->ca ? cfg->ca : "(system store)");
            goto fail;
        }
    }
    if (cfg->cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1) {
            set_err(err, errlen, "cannot load the client certificate", cfg->cert);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            set_err(err, errlen, "cannot load the client key (or it does not match)", cfg->key);
            goto fail;
        }
    }
    static const unsigned char h1[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, h1, sizeof(h1) - 1);
    /* sessions are kept by the caller's pool (eg_tls_connect_new's on_session) */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, client_new_session);
    *out = ctx;
    return EG_OK;
fail:
    SSL_CTX_free(ctx);
    return rc;
}

/* ------------------------------------------------------------ connections */

struct eg_tls_s {
    SSL *ssl;
    BIO *in, *out;
    int done;
    int failed;
    void (*on_session)(void *data, SSL_SESSION *s);
    void *data;
    char why[200];
    char subject[256];
};

static int client_new_session(SSL *ssl, SSL_SESSION *sess)
{
    eg_tls_t *t = SSL_get_app_data(ssl);
    if (!t || !t->on_session) return 0;
    t->on_session(t->data, sess);
    return 1; /* the reference is the callee's */
}

static eg_tls_t *conn_new(SSL_CTX *ctx)
{
    eg_tls_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->ssl = SSL_new(ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out) {
        SSL_free(t->ssl);
        BIO_free(t->in);
        BIO_free(t->out);
        free(t);
        return NULL;
    }
    BIO_set_mem_eof_return(t->in, -1); /* empty means "more to come", not EOF */
    SSL_set_bio(t->ssl, t->in, t->out);
    SSL_set_app_data(t->ssl, t);
    return t;
}

/* The connection changes owner (a tunnel, tunnel.h): new sessions are no
 * longer reported to the old one, which is about to be freed. */
void eg_tls_drop_session_cb(eg_tls_t *t)
{
    if (t) t->on_session = NULL;
}

eg_tls_t *eg_tls_accept_new(eg_tls_server_t *s)
{
    eg_tls_t *t = conn_new(s->certs[0].ctx);
    if (t) SSL_set_accept_state(t->ssl);
    return t;
}

eg_tls_t *eg_tls_connect_new(SSL_CTX *ctx, const char *host, const char *server_name,
                             SSL_SESSION *session, void (*on_session)(void *data, SSL_SESSION *s),
                             void *data)
{
    eg_tls_t *t = conn_new(ctx);
    if (!t) return NULL;
    t->on_session = on_session;
    t->data = data;
    SSL_set_connect_state(t->ssl);
    const char *name = server_name ? server_name : host;
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    int ok = 1;
    if (!is_ip)
        ok = SSL_set_tlsext_host_name(t->ssl, name) == 1 && SSL_set1_host(t->ssl, name) == 1;
    else
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) == 1;
    if (ok && session) ok = SSL_set_session(t->ssl, session) == 1;
    if (!ok) {
        eg_tls_free(t);
        return NULL;
    }
    return t;
}

void eg_tls_free(eg_tls_t *t)
{
    if (!t) return;
    /* a connection that ends without close_notify (a pooled upstream
     * connection closed, a client gone) would otherwise mark its session
     * not resumable: it was not a failure, so the session stays good */
    if (t->done && !t->failed) SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(t->ssl); /* frees the BIOs */
    free(t);
}

int eg_tls_feed(eg_tls_t *t, const char *in, size_t n)
{
    return n == 0 || BIO_write(t->in, in, (int)n) == (int)n ? 0 : -1;
}

/* Why the connection failed: the certificate check first (what an
 * operator can act on), else OpenSSL's last error. */
static void failed(eg_tls_t *t, int ssl_err)
{
    t->failed = 1;
    long v = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_peek_last_error();
    if (v != X509_V_OK) {
        snprintf(t->why, sizeof(t->why), "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    } else if (e) {
        char buf[160];
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(t->why, sizeof(t->why), "%s", buf);
    } else {
        snprintf(t->why, sizeof(t->why), "TLS error %d", ssl_err);
    }
    ERR_clear_error();
}

int eg_tls_handshake(eg_tls_t *t)
{
    if (t->done) return 1;
    if (t->failed) return -1;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->done = 1;
        return 1;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    failed(t, e);
    return -1;
}

int eg_tls_done(const eg_tls_t *t)
{
    return t->done;
}

ssize_t eg_tls_read(eg_tls_t *t, char *out, size_t cap)
{
    if (t->failed) return -1;
    if (cap == 0) return 0;
    size_t n = 0;
    int r = SSL_read_ex(t->ssl, out, cap, &n);
    if (r == 1) return (ssize_t)n;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(t->why, sizeof(t->why), "closed (close_notify)");
        return -1;
    }
    failed(t, e);
    return -1;
}

int eg_tls_buffered(const eg_tls_t *t)
{
    return SSL_pending(t->ssl) > 0 || BIO_ctrl_pending(t->in) > 0;
}

int eg_tls_write(eg_tls_t *t, const char *p, size_t n)
{
    size_t done = 0;
    if (t->failed) return -1;
    while (done < n) {
        size_t w = 0;
        if (SSL_write_ex(t->ssl, p + done, n - done, &w) != 1) {
            failed(t, SSL_get_error(t->ssl, 0));
            return -1;
        }
        done += w;
    }
    return 0;
}

void eg_tls_shutdown(eg_tls_t *t)
{
    if (t->done && !t->failed) SSL_shutdown(t->ssl);
    ERR_clear_error();
}

size_t eg_tls_out_pending(const eg_tls_t *t)
{
    return BIO_ctrl_pending(t->out);
}

size_t eg_tls_out_take(eg_tls_t *t, char *out, size_t cap)
{
    int n = BIO_read(t->out, out, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

const char *eg_tls_why(const eg_tls_t *t)
{
    return t->why[0] ? t->why : "TLS handshake failed";
}

eg_alpn_t eg_tls_alpn(const eg_tls_t *t)
{
    const unsigned char *p;
    unsigned int n;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    if (n == 2 && memcmp(p, "h2", 2) == 0) return EG_ALPN_H2;
    if (n == 8 && memcmp(p, "http/1.1", 8) == 0) return EG_ALPN_HTTP11;
    return EG_ALPN_NONE;
}

const char *eg_tls_version(const eg_tls_t *t)
{
    return SSL_get_version(t->ssl);
}

const char *eg_tls_sni(const eg_tls_t *t)
{
    const char *h = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
    return h ? h : "";
}

int eg_tls_resumed(const eg_tls_t *t)
{
    return SSL_session_reused(t->ssl);
}

const char *eg_tls_peer_subject(const eg_tls_t *t)
{
    eg_tls_t *m = (eg_tls_t *)t;
    if (m->subject[0] || !t->done) return m->subject;
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x || SSL_get_verify_result(t->ssl) != X509_V_OK) return m->subject;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) return m->subject;
    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    int n = BIO_read(b, m->subject, sizeof(m->subject) - 1);
    m->subject[n > 0 ? n : 0] = '\0';
    BIO_free(b);
    return m->subject;
}

int eg_tls_looks_like_http(const char *p, size_t n)
{
    /* a TLS record starts with 0x16 (handshake); a request line with a
     * method token of upper-case letters and a space */
    size_t i = 0;
    while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z')
        i++;
    return i >= 3 && i < n && p[i] == ' ';
}
