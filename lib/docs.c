/* docs.c - the generated error reference (see docs.h).
 *
 * One walk over the catalog writes through a tiny "document" interface
 * (headings, paragraphs, tables, code blocks) that has a Markdown and an HTML
 * back end, so both formats always say the same thing. Example bodies are
 * rendered by the real renderer; the field table is read off the dialect's
 * compiled template, so the page describes exactly what is sent.
 */
#include "errgate/docs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialect_int.h"

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
    eg_docs_format_t fmt;
} doc_t;

static void put(doc_t *d, const char *s, size_t n)
{
    if (d->oom) return;
    if (d->len + n + 1 > d->cap) {
        size_t ncap = d->cap ? d->cap : 8192;
        while (ncap < d->len + n + 1) ncap *= 2;
        char *p = realloc(d->buf, ncap);
        if (!p) {
            d->oom = 1;
            return;
        }
        d->buf = p;
        d->cap = ncap;
    }
    memcpy(d->buf + d->len, s, n);
    d->len += n;
    d->buf[d->len] = '\0';
}

static void puts_(doc_t *d, const char *s)
{
    put(d, s, strlen(s));
}

static void printf_(doc_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(doc_t *d, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) put(d, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Text in the target format: HTML-escaped, or Markdown with table pipes escaped. */
static void text(doc_t *d, const char *s)
{
    for (; s && *s; s++) {
        if (d->fmt == EG_DOCS_HTML) {
            switch (*s) {
            case '<': puts_(d, "&lt;"); continue;
            case '>': puts_(d, "&gt;"); continue;
            case '&': puts_(d, "&amp;"); continue;
            case '"': puts_(d, "&quot;"); continue;
            default: break;
            }
        } else if (*s == '|') {
            puts_(d, "\\|");
            continue;
        }
        put(d, s, 1);
    }
}

static void code(doc_t *d, const char *s)
{
    puts_(d, d->fmt == EG_DOCS_HTML ? "<code>" : "`");
    text(d, s);
    puts_(d, d->fmt == EG_DOCS_HTML ? "</code>" : "`");
}

static void heading(doc_t *d, int level, const char *s)
{
    if (d->fmt == EG_DOCS_HTML) {
        printf_(d, "<h%d>", level);
        text(d, s);
        printf_(d, "</h%d>\n", level);
    } else {
        for (int i = 0; i < level; i++) put(d, "#", 1);
        put(d, " ", 1);
        text(d, s);
        puts_(d, "\n\n");
    }
}

static void para_open(doc_t *d)
{
    if (d->fmt == EG_DOCS_HTML) puts_(d, "<p>");
}

static void para_close(doc_t *d)
{
    puts_(d, d->fmt == EG_DOCS_HTML ? "</p>\n" : "\n\n");
}

static void para(doc_t *d, const char *s)
{
    para_open(d);
    text(d, s);
    para_close(d);
}

static void block(doc_t *d, const char *lang, const char *body)
{
    if (d->fmt == EG_DOCS_HTML) {
        printf_(d, "<pre><code class=\"language-%s\">", lang);
        text(d, body);
        puts_(d, "</code></pre>\n");
    } else {
        printf_(d, "```%s\n", lang);
        puts_(d, body);
        puts_(d, "\n```\n\n");
    }
}

static void table_head(doc_t *d, const char *const *cols, int n)
{
    if (d->fmt == EG_DOCS_HTML) {
        puts_(d, "<table>\n<tr>");
        for (int i = 0; i < n; i++) {
            puts_(d, "<th>");
            text(d, cols[i]);
            puts_(d, "</th>");
        }
        puts_(d, "</tr>\n");
        return;
    }
    for (int i = 0; i < n; i++) {
        puts_(d, "| ");
        text(d, cols[i]);
        puts_(d, " ");
    }
    puts_(d, "|\n");
    for (int i = 0; i < n; i++) puts_(d, "|---");
    puts_(d, "|\n");
}

static void row_open(doc_t *d)
{
    puts_(d, d->fmt == EG_DOCS_HTML ? "<tr>" : "");
}

static void cell_open(doc_t *d)
{
    puts_(d, d->fmt == EG_DOCS_HTML ? "<td>" : "| ");
}

static void cell_close(doc_t *d)
{
    puts_(d, d->fmt == EG_DOCS_HTML ? "</td>" : " ");
}

static void row_close(doc_t *d)
{
    puts_(d, d->fmt == EG_DOCS_HTML ? "</tr>\n" : "|\n");
}

static void table_close(doc_t *d)
{
    puts_(d, d->fmt == EG_DOCS_HTML ? "</table>\n" : "\n");
}

static void cell_text(doc_t *d, const char *s)
{
    cell_open(d);
    text(d, s);
    cell_close(d);
}

static void cell_code(doc_t *d, const char *s)
{
    cell_open(d);
    code(d, s);
    cell_close(d);
}

static const char *slot_doc(int id)
{
    switch (id) {
    case EG_S_CODE: return "Machine-readable error code (see the codes below)";
    case EG_S_TYPE: return "Error category";
    case EG_S_TITLE: return "Short, human-readable summary of the code";
    case EG_S_MESSAGE: return "Human-readable description of this occurrence";
    case EG_S_REQUEST_ID: return "Unique request identifier; quote it to support";
    case EG_S_TIMESTAMP: return "When the error happened (RFC 3339, UTC)";
    case EG_S_INSTANCE: return "URI identifying this occurrence";
    case EG_S_DOCS: return "Link to the documentation of the code";
    case EG_SL_STATUS: return "HTTP status code";
    case EG_SL_RETRY_AFTER: return "Seconds to wait before retrying (when present)";
    case EG_SL_F_BASE + EG_F_FIELD: return "Field the error is about";
    case EG_SL_F_BASE + EG_F_POINTER: return "JSON pointer to the offending member";
    case EG_SL_F_BASE + EG_F_PARAMETER: return "Query parameter that caused the error";
    case EG_SL_F_BASE + EG_F_HEADER: return "Header that caused the error";
    case EG_SL_F_BASE + EG_F_MESSAGE: return "What is wrong with the field";
    case EG_SL_F_BASE + EG_F_CONSTRAINT: return "Rule that was violated";
    case EG_SL_F_VALUE: return "The value that was sent";
    default: return "";
    }
}

/* One table row per template member, with its dotted path. */
static void field_rows(doc_t *d, const eg_tnode_t *t, const char *prefix)
{
    char path[256];
    for (size_t i = 0; i < t->n; i++) {
        const eg_tmember_t *m = &t->members[i];
        snprintf(path, sizeof(path), "%s%s", prefix, m->name);
        if (m->node->kind == EG_T_SLOT) {
            const eg_tslot_t *sl = &m->node->slot;
            int id = sl->chain[0];
            row_open(d);
            cell_code(d, path);
            cell_text(d, id == EG_SL_STATUS && sl->as_string ? "string"
                         : id == EG_SL_STATUS || id == EG_SL_RETRY_AFTER ? "integer"
                         : id == EG_SL_F_VALUE ? "any" : "string");
            cell_text(d, slot_doc(id));
            row_close(d);
        } else if (m->node->kind == EG_T_OBJECT) {
            char sub[260];
            snprintf(sub, sizeof(sub), "%s.", path);
            row_open(d);
            cell_code(d, path);
            cell_text(d, "object");
            cell_text(d, m->node->merge_details ? "Additional context for this error" : "");
            row_close(d);
            field_rows(d, m->node, sub);
        } else {
            char sub[260];
            snprintf(sub, sizeof(sub), "%s[].", path);
            row_open(d);
            cell_code(d, path);
            cell_text(d, "array");
            cell_text(d, "One object per error (one per invalid field for validation errors)");
            row_close(d);
            field_rows(d, m->node->item, sub);
        }
    }
    if (t->fields) {
        const eg_tfields_t *f = t->fields;
        const char *key = f->style == EG_FS_FLAT ? f->list_key : f->key;
        snprintf(path, sizeof(path), "%s%s", prefix, key);
        row_open(d);
        cell_code(d, path);
        cell_text(d, f->style == EG_FS_MAP ? "object" : "array");
        cell_text(d, f->style == EG_FS_MAP ? "Field name to the list of its error messages"
                     : f->style == EG_FS_FLAT
                         ? "Field errors when there are several (a single one is inlined here)"
                         : "Field-level errors (when applicable)");
        row_close(d);
        if (f->item) {
            char sub[260];
            snprintf(sub, sizeof(sub), "%s[].", path);
            field_rows(d, f->item, sub);
        }
    }
}

static int render_example(const eg_catalog_t *cat, const eg_dialect_t *dl, eg_error_t *e,
                          doc_t *d)
{
    char small[2048];
    size_t n = eg_render(e, dl, cat, small, sizeof(small));
    if (n >= sizeof(small)) return EG_ERANGE;
    json_t *j = json_loadb(small, n, 0, NULL);
    char *pretty = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!pretty) return EG_ENOMEM;
    block(d, "json", pretty);
    free(pretty);
    return EG_OK;
}

/* A realistic example error for an entry: validation errors get field errors. */
static eg_error_t *example_error(const eg_catalog_t *cat, const eg_catalog_entry_t *ent)
{
    eg_error_t *e = NULL;
    if (eg_error_from_catalog(cat, ent->code, &e)) return NULL;
    e->status = 0; /* let the dialect decide (validation is 422 in some) */
    int rc = eg_error_set(e, EG_S_REQUEST_ID, "req_4f2a9c1e7b3d4e8f9a0b1c2d3e4f5a6b");
    if (!rc && strcmp(ent->code, "validation_error") == 0) {
        eg_field_error_t *f = eg_error_add_field(e);
        rc = f ? eg_field_set(e, f, EG_F_FIELD, "email") : EG_ENOMEM;
        if (!rc) rc = eg_field_set(e, f, EG_F_MESSAGE, "Invalid email format");
        if (!rc) rc = eg_field_set(e, f, EG_F_CONSTRAINT, "email_format");
    }
    if (!rc && ent->status == 429) e->retry_after = 60;
    if (rc) {
        eg_error_free(e);
        return NULL;
    }
    return e;
}

/* The status an entry is answered with in this dialect (overrides apply). */
static int entry_status(const eg_catalog_t *cat, const eg_dialect_t *dl,
                        const eg_catalog_entry_t *ent)
{
    eg_error_t e;
    memset(&e, 0, sizeof(e));
    e.s[EG_S_CODE] = ent->code;
    return eg_dialect_status(dl, cat, &e);
}

static int cmp_status(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* The status of `code` for an answer: its own, else the dialect's. */
static int answer_status(const eg_catalog_t *cat, const eg_dialect_t *dl, const eg_docs_answer_t *a)
{
    if (a->status > 0) return a->status;
    eg_error_t e;
    memset(&e, 0, sizeof(e));
    e.s[EG_S_CODE] = a->status == EG_DOCS_VALIDATION_STATUS ? "validation_error" : a->code;
    return eg_dialect_status(dl, cat, &e);
}

/* Per operation, a table of what the gateway can answer instead of the
 * API: sorted by status, each code spelled as the dialect spells it. */
static void operations(doc_t *d, const eg_catalog_t *cat, const eg_dialect_t *dl, const char *api,
                       const eg_docs_operation_t *ops, size_t nops)
{
    heading(d, 2, "Errors per operation");
    para_open(d);
    text(d, "Besides its own answers, each operation");
    if (api && *api) {
        text(d, " of ");
        text(d, api);
    }
    text(d, " can be answered by the gateway with these errors, before the request reaches the "
            "service (status, code as sent in the body and in X-Error-Code, and the cause).");
    para_close(d);
    for (size_t i = 0; i < nops; i++) {
        const eg_docs_operation_t *op = &ops[i];
        char title[1024];
        snprintf(title, sizeof(title), "%s %s%s%s", op->method, op->path, op->summary ? ": " : "",
                 op->summary ? op->summary : "");
        heading(d, 3, title);
        if (op->operation_id) {
            para_open(d);
            text(d, "Operation id: ");
            code(d, op->operation_id);
            para_close(d);
        }
        static const char *const cols[] = {"Status", "Code", "When"};
        table_head(d, cols, 3);
        /* by status, then as listed: a few rows, so a selection pass per row */
        unsigned char done[64] = {0};
        size_t na = op->nanswers < sizeof(done) ? op->nanswers : sizeof(done);
        for (size_t k = 0; k < na; k++) {
            size_t best = na;
            for (size_t j = 0; j < na; j++)
                if (!done[j] && (best == na || answer_status(cat, dl, &op->answers[j]) <
                                                   answer_status(cat, dl, &op->answers[best])))
                    best = j;
            done[best] = 1;
            const eg_docs_answer_t *a = &op->answers[best];
            char st[8], sp[128];
            snprintf(st, sizeof(st), "%d", answer_status(cat, dl, a));
            eg_dialect_code(dl, cat, a->code, sp, sizeof(sp));
            row_open(d);
            cell_text(d, st);
            cell_code(d, sp);
            cell_text(d, a->when ? a->when : "");
            row_close(d);
        }
        table_close(d);
    }
}

int eg_docs_generate(const eg_catalog_t *cat, const eg_dialect_t *dl, eg_docs_format_t fmt,
                     char **out, size_t *len)
{
    return eg_docs_generate_ops(cat, dl, fmt, NULL, NULL, 0, out, len);
}

int eg_docs_generate_ops(const eg_catalog_t *cat, const eg_dialect_t *dl, eg_docs_format_t fmt,
                         const char *api, const eg_docs_operation_t *ops, size_t nops, char **out,
                         size_t *len)
{
    doc_t d = {.fmt = fmt};
    size_t n = eg_catalog_count(cat);
    int rc = EG_OK;
    if (fmt == EG_DOCS_HTML)
        puts_(&d, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                  "<title>Error reference</title></head><body>\n");
    heading(&d, 1, "Error reference");
    para(&d, "This API answers every error with a consistent JSON body, an HTTP status code, "
             "and the headers X-Request-ID and X-Error-Code. This page is generated from the "
             "error catalog the gateway enforces, so it always matches what is sent.");

    heading(&d, 2, "Error response format");
    para_open(&d);
    text(&d, "Errors use the ");
    code(&d, eg_dialect_name(dl));
    text(&d, " format (Content-Type: ");
    code(&d, eg_dialect_media_type(dl));
    text(&d, "): ");
    text(&d, eg_dialect_summary(dl));
    para_close(&d);
    const eg_catalog_entry_t *val = eg_catalog_find(cat, "validation_error");
    eg_error_t *ex = val ? example_error(cat, val) : NULL;
    if (ex) {
        eg_field_error_t *f = eg_error_add_field(ex);
        if (f && !eg_field_set(ex, f, EG_F_FIELD, "name"))
            eg_field_set(ex, f, EG_F_MESSAGE, "name is required");
        rc = render_example(cat, dl, ex, &d);
        eg_error_free(ex);
        if (rc) goto out;
    }
    static const char *const fcols[] = {"Member", "Type", "Description"};
    table_head(&d, fcols, 3);
    field_rows(&d, dl->body, "");
    table_close(&d);

    heading(&d, 2, "HTTP status codes");
    int statuses[128];
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        int st = entry_status(cat, dl, eg_catalog_at(cat, i));
        size_t k = 0;
        while (k < ns && statuses[k] != st) k++;
        if (k == ns && ns < sizeof(statuses) / sizeof(statuses[0])) statuses[ns++] = st;
    }
    qsort(statuses, ns, sizeof(int), cmp_status);
    static const char *const scols[] = {"Status", "Meaning", "Codes"};
    table_head(&d, scols, 3);
    for (size_t k = 0; k < ns; k++) {
        char st[8];
        snprintf(st, sizeof(st), "%d", statuses[k]);
        row_open(&d);
        cell_text(&d, st);
        cell_text(&d, eg_reason_phrase(statuses[k]));
        cell_open(&d);
        int first = 1;
        for (size_t i = 0; i < n; i++) {
            const eg_catalog_entry_t *e = eg_catalog_at(cat, i);
            if (entry_status(cat, dl, e) != statuses[k]) continue;
            char sp[128];
            eg_dialect_code(dl, cat, e->code, sp, sizeof(sp));
            if (!first) puts_(&d, ", ");
            first = 0;
            code(&d, sp);
        }
        cell_close(&d);
        row_close(&d);
    }
    table_close(&d);

    if (nops) operations(&d, cat, dl, api, ops, nops);

    heading(&d, 2, "Error codes");
    for (size_t i = 0; i < n; i++) {
        const eg_catalog_entry_t *e = eg_catalog_at(cat, i);
        char sp[128], line[256];
        eg_dialect_code(dl, cat, e->code, sp, sizeof(sp));
        int st = entry_status(cat, dl, e);
        snprintf(line, sizeof(line), "%s (%d %s)", sp, st, e->title ? e->title : "");
        heading(&d, 3, line);
        if (e->description) para(&d, e->description);
        const char *to = eg_dialect_mapped_code(dl, e->code);
        if (to) {
            char tsp[128];
            eg_dialect_code(dl, cat, to, tsp, sizeof(tsp));
            para_open(&d);
            text(&d, "Sent as ");
            code(&d, tsp);
            text(&d, " (this format's word for it), with ");
            code(&d, "reason");
            text(&d, " = ");
            code(&d, e->code);
            text(&d, " in the error's details.");
            para_close(&d);
        }
        para_open(&d);
        text(&d, "Type: ");
        code(&d, e->type ? e->type : "");
        text(&d, ". Retryable: ");
        text(&d, e->retryable ? "yes" : "no");
        text(&d, ". Default message: ");
        text(&d, e->message ? e->message : "");
        para_close(&d);
        if (e->resolution) {
            para_open(&d);
            text(&d, "Resolution: ");
            text(&d, e->resolution);
            para_close(&d);
        }
        char url[512];
        if (eg_catalog_docs_url(cat, e, url, sizeof(url))) {
            para_open(&d);
            text(&d, "Documentation: ");
            text(&d, url);
            para_close(&d);
        }
        eg_error_t *exe = example_error(cat, e);
        if (!exe) {
            rc = EG_ENOMEM;
            goto out;
        }
        rc = render_example(cat, dl, exe, &d);
        eg_error_free(exe);
        if (rc) goto out;
    }

    heading(&d, 2, "Retry strategy");
    para_open(&d);
    text(&d, "Retry only transient errors. Retryable statuses: ");
    int firstst = 1;
    for (size_t k = 0; k < ns; k++) {
        int retry = 0;
        for (size_t i = 0; i < n; i++) {
            const eg_catalog_entry_t *e = eg_catalog_at(cat, i);
            if (entry_status(cat, dl, e) == statuses[k] && e->retryable && statuses[k] != 409)
                retry = 1;
        }
        if (!retry) continue;
        char st[8];
        snprintf(st, sizeof(st), "%d", statuses[k]);
        if (!firstst) text(&d, ", ");
        firstst = 0;
        code(&d, st);
    }
    text(&d, ", plus connection failures and timeouts. Never retry other 4xx errors without "
             "changing the request.");
    para_close(&d);
    para(&d, "Wait with exponential backoff and full jitter: delay = random(0, min(cap, "
             "base * 2^attempt)), with base 1s and cap 30s, for at most 3 attempts. When a "
             "response carries Retry-After (seconds or an HTTP date), wait exactly that long "
             "instead; it takes precedence over backoff. On 429, X-RateLimit-Reset tells when "
             "the window resets.");
    para(&d, "Retry POST and PATCH only with an Idempotency-Key header: a repeated request with "
             "the same key returns the original response instead of acting twice.");
    para(&d, "Log the request id (X-Request-ID header, also in the error body) of every failed "
             "attempt and include it when contacting support.");
    if (fmt == EG_DOCS_HTML) puts_(&d, "</body></html>\n");
out:
    if (!rc && d.oom) rc = EG_ENOMEM;
    if (rc) {
        free(d.buf);
        return rc;
    }
    *out = d.buf;
    *len = d.len;
    return EG_OK;
}
