/* demo_upstream.c - `errgate demo-upstream`: a small HTTP service to put
 * behind the gateway, so a newcomer (and the integration tests) can see
 * every behaviour: successes, errors in each of the six dialects, an HTML
 * error page, slow answers, dropped connections, chunked and large bodies.
 *
 *   GET  /v1/hello                 200 JSON with the request id it received
 *   ANY  /v1/echo                  200 echo of the request body and headers
 *   GET  /v1/errors/DIALECT/KIND   an error in DIALECT (problem, jsonapi, envelope,
 *                                  typed, flat-camel, flat-snake); KIND one of
 *                                  validation, not_found, rate_limit, internal
 *   GET  /v1/html-error            502 with an HTML page
 *   GET  /v1/drop                  closes the connection without answering
 *   GET  /v1/chunked               200 with a chunked body
 *   GET  /v1/big?bytes=N           200 with N bytes
 *   ANY  /slow/...?ms=N            answers after N ms (default 3000)
 *   anything else                  200 JSON describing the request
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "errgate/http1.h"

typedef struct {
    uv_tcp_t tcp;
    uv_timer_t timer;
    char buf[9 << 20]; /* room for the largest body the tests echo */
    size_t len, scanned;
    int closes;
    int waiting; /* a slow answer is pending */
} dconn_t;

static const struct {
    const char *dialect, *kind;
    int status;
    const char *body;
} examples[] = {
    {"problem", "validation", 422, "{\"type\":\"about:blank\",\"title\":\"Validation Failed\",\"status\":422,\"detail\":\"The request contains invalid parameters.\",\"code\":\"validation_error\",\"errors\":[{\"detail\":\"Invalid email format\",\"pointer\":\"#/email\"}]}"},
    {"problem", "not_found", 404, "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"The requested user was not found\"}"},
    {"problem", "rate_limit", 429, "{\"type\":\"about:blank\",\"title\":\"Too Many Requests\",\"status\":429,\"detail\":\"Rate limit exceeded\",\"retry_after\":60}"},
    {"problem", "internal", 500, "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\",\"status\":500,\"detail\":\"NullPointerException at com.example.Users.find(Users.java:42)\"}"},
    {"jsonapi", "validation", 422, "{\"errors\":[{\"status\":\"422\",\"code\":\"validation_error\",\"title\":\"Validation Failed\",\"detail\":\"email is required\",\"source\":{\"pointer\":\"/data/attributes/email\"}},{\"status\":\"422\",\"code\":\"validation_error\",\"title\":\"Validation Failed\",\"detail\":\"name is required\",\"source\":{\"pointer\":\"/data/attributes/name\"}}]}"},
    {"jsonapi", "not_found", 404, "{\"errors\":[{\"status\":\"404\",\"code\":\"not_found\",\"title\":\"Not Found\",\"detail\":\"The requested user was not found\"}]}"},
    {"jsonapi", "rate_limit", 429, "{\"errors\":[{\"status\":\"429\",\"code\":\"rate_limit_exceeded\",\"title\":\"Too Many Requests\",\"detail\":\"Rate limit exceeded. Try again in 15 seconds.\"}]}"},
    {"jsonapi", "internal", 500, "{\"errors\":[{\"status\":\"500\",\"code\":\"internal_error\",\"title\":\"Internal Server Error\",\"detail\":\"An internal error occurred\"}]}"},
    {"envelope", "validation", 422, "{\"error\":{\"code\":\"validation_error\",\"message\":\"The request contains invalid parameters.\",\"details\":[{\"field\":\"email\",\"message\":\"Invalid email format\"}],\"request_id\":\"req_abc123\"}}"},
    {"envelope", "not_found", 404, "{\"error\":{\"code\":\"resource_not_found\",\"message\":\"Requested item does not exist\"}}"},
    {"envelope", "rate_limit", 429, "{\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"Too many requests\"}}"},
    {"envelope", "internal", 500, "{\"error\":{\"code\":\"internal_error\",\"message\":\"Server-side issue\"}}"},
    {"typed", "validation", 400, "{\"error\":{\"type\":\"validation_error\",\"message\":\"Invalid value for parameter 'num'. Must be between 1 and 100\",\"code\":\"INVALID_PARAMETER_VALUE\",\"details\":{\"parameter\":\"num\",\"provided_value\":150,\"valid_range\":\"1-100\"}}}"},
    {"typed", "not_found", 404, "{\"error\":{\"type\":\"search_error\",\"message\":\"No results found for the given query\",\"code\":\"NO_RESULTS_FOUND\",\"details\":{\"query\":\"very specific search\"}}}"},
    {"typed", "rate_limit", 429, "{\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Rate limit exceeded. Please wait before making another request\",\"code\":\"RATE_LIMIT_EXCEEDED\",\"details\":{\"limit\":1000,\"window\":\"1 hour\",\"reset_time\":\"2024-01-15T14:00:00Z\",\"retry_after\":3600}}}"},
    {"typed", "internal", 500, "{\"error\":{\"type\":\"internal_error\",\"message\":\"An unexpected error occurred. Please try again later\",\"code\":\"INTERNAL_SERVER_ERROR\",\"details\":{\"request_id\":\"req_1234567890abcdef\",\"timestamp\":\"2024-01-15T12:34:56Z\"}}}"},
    {"flat-camel", "validation", 400, "{\"error\":\"VALIDATION_ERROR\",\"message\":\"Invalid request parameters\",\"statusCode\":400,\"details\":{\"fields\":{\"email\":[\"Invalid email format\"],\"page\":[\"Must be a positive integer\"]}}}"},
    {"flat-camel", "not_found", 404, "{\"error\":\"NOT_FOUND\",\"message\":\"Prospect with id '123e4567-e89b-12d3-a456-426614174000' not found\",\"statusCode\":404,\"details\":{\"resource\":\"Prospect\",\"id\":\"123e4567-e89b-12d3-a456-426614174000\"}}"},
    {"flat-camel", "rate_limit", 429, "{\"error\":\"RATE_LIMIT_EXCEEDED\",\"message\":\"Rate limit exceeded\",\"statusCode\":429,\"details\":{\"retryAfter\":60}}"},
    {"flat-camel", "internal", 500, "{\"error\":\"DATABASE_ERROR\",\"message\":\"Database operation failed\",\"statusCode\":500,\"details\":{\"originalMessage\":\"Connection timeout\"}}"},
    {"flat-snake", "validation", 400, "{\"error\":\"validation_error\",\"message\":\"Business name is required\",\"status_code\":400,\"timestamp\":\"2024-01-15T10:30:00Z\",\"details\":{\"field\":\"business_name\",\"constraint\":\"required\",\"value\":null}}"},
    {"flat-snake", "not_found", 404, "{\"error\":\"resource_not_found\",\"message\":\"Business with ID 'business_123' not found\",\"status_code\":404,\"timestamp\":\"2024-01-15T10:30:00Z\",\"details\":{\"resource_type\":\"business\",\"resource_id\":\"business_123\"}}"},
    {"flat-snake", "rate_limit", 429, "{\"error\":\"rate_limit_exceeded\",\"message\":\"Rate limit exceeded. Please try again later.\",\"status_code\":429,\"timestamp\":\"2024-01-15T10:30:00Z\",\"retry_after\":60,\"details\":{\"limit\":100,\"window\":\"1 minute\",\"reset_time\":\"2024-01-15T10:31:00Z\"}}"},
    {"flat-snake", "internal", 500, "{\"error\":\"internal_server_error\",\"message\":\"An unexpected error occurred. Please try again later.\",\"status_code\":500,\"timestamp\":\"2024-01-15T10:30:00Z\",\"details\":{\"request_id\":\"req_123456789\"}}"},
};

static void dclosed(uv_handle_t *h)
{
    dconn_t *c = h->data;
    if (--c->closes == 0) free(c);
}

static void dclose(dconn_t *c)
{
    if (c->closes) return;
    c->closes = 2;
    uv_close((uv_handle_t *)&c->tcp, dclosed);
    uv_close((uv_handle_t *)&c->timer, dclosed);
}

static void dwritten(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

/* One write of a then b. An answer's head and body go in one write: written
 * apart, the body waited under Nagle for the reader's delayed ACK, 40 ms an
 * answer on a kept-alive connection (about 90 requests a second per
 * connection for any proxy in front, pipelined or not). */
static void dsend2(dconn_t *c, const char *a, size_t an, const char *b, size_t bn)
{
    uv_write_t *req = malloc(sizeof(*req) + an + bn);
    if (!req) return;
    memcpy(req + 1, a, an);
    if (bn) memcpy((char *)(req + 1) + an, b, bn);
    uv_buf_t buf = uv_buf_init((char *)(req + 1), (unsigned)(an + bn));
    if (uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, dwritten) != 0) free(req);
}

static void dsend(dconn_t *c, const char *data, size_t n)
{
    dsend2(c, data, n, NULL, 0);
}

static int head_request; /* the request being answered is HEAD: headers only (one loop, one thread) */

static void respond(dconn_t *c, int status, const char *ctype, const char *extra, const char *body,
                    size_t blen, int keep)
{
    char head[1024], date[EG_HTTP1_DATE_LEN + 1];
    eg_http1_date((int64_t)time(NULL), date);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Server: demo-upstream\r\n%s%s\r\n",
                     status, eg_reason_phrase(status), date, ctype, blen, extra ? extra : "",
                     keep ? "" : "Connection: close\r\n");
    dsend2(c, head, (size_t)n, body, head_request ? 0 : blen);
}

static long query_num(const char *t, size_t tl, const char *name, long dflt)
{
    char key[32];
    snprintf(key, sizeof(key), "%s=", name);
    const char *q = memchr(t, '?', tl);
    if (!q) return dflt;
    const char *p = strstr(q, key);
    if (!p || p >= t + tl) return dflt;
    return strtol(p + strlen(key), NULL, 10);
}

static void dread(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void dalloc(uv_handle_t *h, size_t sz, uv_buf_t *b);
static void serve_requests(dconn_t *c);

static void slow_done(uv_timer_t *t)
{
    dconn_t *c = t->data;
    static const char body[] = "{\"message\":\"sorry, that took a while\"}";
    respond(c, 200, "application/json", NULL, body, sizeof(body) - 1, 1);
    c->waiting = 0;
    uv_read_start((uv_stream_t *)&c->tcp, dalloc, dread);
    serve_requests(c);
}

static void dalloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)sz;
    dconn_t *c = h->data;
    b->base = c->buf + c->len;
    b->len = sizeof(c->buf) - c->len;
}

/* Handles every complete request in the buffer. */
static void serve_requests(dconn_t *c)
{
    while (!c->waiting && c->len) {
        eg_http1_limits_t lim = {65536, 200, 16384};
        eg_http_header_t h[200];
        eg_http1_msg_t m;
        int rc = eg_http1_parse_request(c->buf, c->len, &lim, h, 200, &c->scanned, &m);
        if (rc == EG_EAGAIN) return;
        if (rc < 0) {
            static const char bad[] = "{\"error\":\"bad request\"}";
            respond(c, 400, "application/json", NULL, bad, sizeof(bad) - 1, 0);
            dclose(c);
            return;
        }
        size_t head = (size_t)rc, body_len = 0, consumed = head;
        static char body[9 << 20];
        if (m.framing == EG_FRAMING_LENGTH) {
            if (m.content_length > sizeof(c->buf) - head) {
                dclose(c);
                return;
            }
            if (c->len - head < m.content_length) {
                c->scanned = 0; /* the head is parsed again once the body is here */
                return;
            }
            memcpy(body, c->buf + head, m.content_length);
            body_len = m.content_length;
            consumed += m.content_length;
        } else if (m.framing == EG_FRAMING_CHUNKED) {
            eg_chunked_t ck;
            memset(&ck, 0, sizeof(ck));
            size_t pos = head;
            int rc2 = EG_EAGAIN;
            while (pos < c->len) {
                const char *d;
                size_t dl, used;
                rc2 = eg_chunked_data(&ck, c->buf + pos, c->len - pos, 8192, &used, &d, &dl);
                if (dl && body_len + dl <= sizeof(body)) memcpy(body + body_len, d, dl);
                body_len += dl;
                pos += used;
                if (rc2 != EG_EAGAIN) break;
            }
            if (rc2 == EG_EAGAIN) {
                c->scanned = 0;
                return;
            }
            if (rc2 != EG_OK) {
                dclose(c);
                return;
            }
            consumed = pos;
        }
        char path[2048];
        size_t pl = m.target_len < sizeof(path) - 1 ? m.target_len : sizeof(path) - 1;
        memcpy(path, m.target, pl);
        path[pl] = '\0';
        char *q = strchr(path, '?');
        if (q) *q = '\0';
        const eg_http_header_t *rid = eg_http1_header(&m, "x-request-id");
        char reqid[256] = "";
        if (rid) snprintf(reqid, sizeof(reqid), "%.*s", (int)rid->value_len, rid->value);
        int keep = m.keep_alive;
        head_request = m.method_len == 4 && memcmp(m.method, "HEAD", 4) == 0;
        if (strcmp(path, "/v1/drop") == 0) {
            dclose(c);
            return;
        }
        if (strncmp(path, "/slow/", 6) == 0) {
            long ms = query_num(m.target, m.target_len, "ms", 3000);
            memmove(c->buf, c->buf + consumed, c->len - consumed);
            c->len -= consumed;
            c->scanned = 0;
            c->waiting = 1;
            uv_read_stop((uv_stream_t *)&c->tcp);
            uv_timer_start(&c->timer, slow_done, (uint64_t)(ms < 0 ? 0 : ms), 0);
            return;
        }
        char out[4096];
        if (strncmp(path, "/v1/errors/", 11) == 0) {
            const char *dk = path + 11, *slash = strchr(dk, '/');
            int found = 0;
            for (size_t i = 0; slash && i < sizeof(examples) / sizeof(examples[0]); i++) {
                if (strlen(examples[i].dialect) == (size_t)(slash - dk) &&
                    strncmp(examples[i].dialect, dk, (size_t)(slash - dk)) == 0 &&
                    strcmp(examples[i].kind, slash + 1) == 0) {
                    const char *ct = strcmp(examples[i].dialect, "problem") == 0 ? "application/problem+json"
                                     : strcmp(examples[i].dialect, "jsonapi") == 0 ? "application/vnd.api+json"
                                                                                   : "application/json";
                    const char *extra = examples[i].status == 429 ? "Retry-After: 60\r\nX-RateLimit-Limit: 100\r\nX-RateLimit-Remaining: 0\r\n" : NULL;
                    respond(c, examples[i].status, ct, extra, examples[i].body, strlen(examples[i].body), keep);
                    found = 1;
                }
            }
            if (!found) {
                static const char nf[] = "{\"error\":\"no such example\"}";
                respond(c, 404, "application/json", NULL, nf, sizeof(nf) - 1, keep);
            }
        } else if (strcmp(path, "/v1/html-error") == 0) {
            static const char html[] = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
                                       "<body><h1>Bad Gateway</h1><p>The application server crashed.</p></body></html>";
            respond(c, 502, "text/html", NULL, html, sizeof(html) - 1, keep);
        } else if (strcmp(path, "/v1/chunked") == 0) {
            static const char ch[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "6\r\nhello \r\n6\r\nchunky\r\n7\r\n world\n\r\n0\r\n\r\n";
            dsend(c, ch, sizeof(ch) - 1);
        } else if (strcmp(path, "/v1/early-hints") == 0) {
            /* an interim 103 before the answer: the gateway forwards it */
            static const char eh[] = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n";
            static const char ok[] = "{\"message\":\"hinted\"}";
            dsend(c, eh, sizeof(eh) - 1);
            respond(c, 200, "application/json", NULL, ok, sizeof(ok) - 1, keep);
        } else if (strcmp(path, "/v1/big") == 0) {
            long n = query_num(m.target, m.target_len, "bytes", 1 << 20);
            if (n < 0) n = 0;
            char *big = malloc((size_t)n + 1);
            if (big) {
                for (long i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
                respond(c, 200, "application/octet-stream", NULL, big, (size_t)n, keep);
                free(big);
            }
        } else if (strcmp(path, "/v1/echo") == 0) {
            respond(c, 200, "application/octet-stream", NULL, body, body_len, keep);
        } else {
            json_t *headers = json_object();
            for (size_t i = 0; i < m.nheaders; i++) {
                char name[256];
                snprintf(name, sizeof(name), "%.*s", (int)m.headers[i].name_len, m.headers[i].name);
                for (char *p = name; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
                json_object_set_new(headers, name, json_stringn_nocheck(m.headers[i].value, m.headers[i].value_len));
            }
            json_t *doc = json_pack("{s:s, s:s%, s:s%, s:s, s:I, s:o}", "message", "hello from the demo upstream",
                                    "method", m.method, m.method_len, "path", m.target, m.target_len,
                                    "request_id", reqid, "body_bytes", (json_int_t)body_len, "headers", headers);
            char *s = json_dumps(doc, JSON_COMPACT);
            json_decref(doc);
            if (s) {
                respond(c, 200, "application/json", NULL, s, strlen(s), keep);
                free(s);
            }
        }
        (void)out;
        memmove(c->buf, c->buf + consumed, c->len - consumed);
        c->len -= consumed;
        c->scanned = 0;
        if (!keep) {
            dclose(c);
            return;
        }
    }
}

static void dread(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    dconn_t *c = s->data;
    if (nread < 0) {
        dclose(c);
        return;
    }
    c->len += (size_t)nread;
    serve_requests(c);
}

static void dconnection(uv_stream_t *l, int status)
{
    if (status < 0) return;
    dconn_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    uv_tcp_init(l->loop, &c->tcp);
    uv_timer_init(l->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        dclose(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* what is written goes at once (a 103 before its answer) */
    uv_read_start((uv_stream_t *)&c->tcp, dalloc, dread);
}

static void dsignal(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_stop(s->loop);
}

static void dwalk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h)) return;
    if (h->data && h->type == UV_TCP) dclose(h->data); /* a connection: closes its timer too */
    else if (!h->data) uv_close(h, NULL);
}

int eg_cmd_demo_upstream(int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *listen_at = "127.0.0.1:9000";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+l:h", opts, NULL)) != -1) {
        if (c == 'l') listen_at = optarg;
        else if (c == 'h') {
            printf("usage: errgate demo-upstream [--listen HOST:PORT]\n\n"
                   "A demo HTTP service for the gateway (default 127.0.0.1:9000). Paths:\n"
                   "  /v1/hello, /v1/echo, /v1/errors/DIALECT/{validation,not_found,rate_limit,internal},\n"
                   "  /v1/html-error, /v1/drop, /v1/chunked, /v1/big?bytes=N, /slow/...?ms=N\n");
            return EG_EXIT_OK;
        } else {
            return eg_cli_fail(EG_EXIT_USAGE, "demo-upstream: bad option '%s'", argv[optind - 1]);
        }
    }
    eg_hostport_t hp;
    if (eg_hostport_parse(listen_at, &hp) != 0)
        return eg_cli_fail(EG_EXIT_USAGE, "demo-upstream: invalid address '%s'", listen_at);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_tcp_t server;
    uv_tcp_init(&loop, &server);
    server.data = NULL;
    struct sockaddr_storage ss;
    int rc = strchr(hp.host, ':') ? uv_ip6_addr(hp.host, hp.port, (struct sockaddr_in6 *)&ss)
                                  : uv_ip4_addr(strcmp(hp.host, "localhost") ? hp.host : "127.0.0.1", hp.port,
                                                (struct sockaddr_in *)&ss);
    if (!rc) rc = uv_tcp_bind(&server, (struct sockaddr *)&ss, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)&server, 512, dconnection);
    if (rc) {
        uv_close((uv_handle_t *)&server, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return eg_cli_fail(4, "demo-upstream: cannot listen on %s: %s", listen_at, uv_strerror(rc));
    }
    uv_signal_t st, si;
    uv_signal_init(&loop, &st);
    uv_signal_init(&loop, &si);
    st.data = si.data = NULL;
    uv_signal_start(&st, dsignal, SIGTERM);
    uv_signal_start(&si, dsignal, SIGINT);
    fprintf(stderr, "demo-upstream listening on %s\n", listen_at);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_walk(&loop, dwalk, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return EG_EXIT_OK;
}
