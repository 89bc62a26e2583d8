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
#include <strings.h>

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

/* A heading others can link to: id="..." in HTML, an <a id> before it in
 * Markdown (the problem `type` URIs point at the codes' anchors). */
static void heading_id(doc_t *d, int level, const char *id, const char *s)
{
    if (d->fmt == EG_DOCS_HTML) {
        printf_(d, "<h%d id=\"", level);
        text(d, id);
        puts_(d, "\">");
        text(d, s);
        printf_(d, "</h%d>\n", level);
    } else {
        puts_(d, "<a id=\"");
        text(d, id);
        puts_(d, "\"></a>\n\n");
        heading(d, level, s);
    }
}

/* A code linked to its section on the page. */
static void code_link(doc_t *d, const char *anchor, const char *s)
{
    if (d->fmt == EG_DOCS_HTML) {
        puts_(d, "<a href=\"#");
        text(d, anchor);
        puts_(d, "\">");
        code(d, s);
        puts_(d, "</a>");
    } else {
        puts_(d, "[");
        code(d, s);
        puts_(d, "](#");
        text(d, anchor);
        puts_(d, ")");
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
    heading_id(d, 2, "errors-per-operation", "Errors per operation");
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

/* The page's style: embedded, so the file stands alone (no CDN, no fonts
 * to fetch) and can be published as it is. */
static const char css[] =
    ":root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--side:#f6f8fa;--accent:#0969da;"
    "--c4:#9a6700;--c4bg:#fff8c5;--c5:#cf222e;--c5bg:#ffebe9;--code:#eff2f5}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:15px/1.6 -apple-system,BlinkMacSystemFont,\"Segoe UI\",Helvetica,Arial,sans-serif;"
    "color:var(--fg);background:var(--bg)}\n"
    ".layout{display:flex;min-height:100vh}\n"
    "nav.toc{position:sticky;top:0;align-self:flex-start;width:310px;flex:none;height:100vh;overflow-y:auto;"
    "padding:24px 16px 24px 24px;background:var(--side);border-right:1px solid var(--line);font-size:13.5px}\n"
    "nav.toc .brand{font-weight:600;font-size:16px;margin-bottom:12px}\n"
    "nav.toc ul{list-style:none;margin:0;padding:0}\n"
    "nav.toc li{margin:2px 0}\n"
    "nav.toc ul ul{margin:4px 0 8px 6px;padding-left:8px;border-left:2px solid var(--line)}\n"
    "nav.toc a{color:var(--fg);text-decoration:none;display:flex;justify-content:space-between;gap:8px;"
    "align-items:center;padding:1px 6px;border-radius:4px}\n"
    "nav.toc a:hover{background:#e7ebef;color:var(--accent)}\n"
    "nav.toc code{background:none;padding:0;font-size:12.5px;overflow:hidden;text-overflow:ellipsis}\n"
    "nav.toc .status{font-size:10.5px;padding:2px 5px}\n"
    "main{flex:1;min-width:0;max-width:960px;padding:32px 48px 64px}\n"
    "h1{font-size:32px;margin:0 0 8px;letter-spacing:-.5px}\n"
    "h2{font-size:22px;margin:40px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}\n"
    "h3{font-size:17px;margin:0 0 8px;display:flex;align-items:center;gap:10px;flex-wrap:wrap}\n"
    "a{color:var(--accent)}\n"
    "code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--code);"
    "padding:2px 5px;border-radius:4px}\n"
    "pre{background:#0d1117;color:#e6edf3;padding:14px 16px;border-radius:8px;overflow-x:auto;margin:12px 0 0}\n"
    "pre code{background:none;color:inherit;padding:0;font-size:12.5px;line-height:1.5}\n"
    "table{border-collapse:collapse;width:100%;margin:12px 0;font-size:14px}\n"
    "th,td{border:1px solid var(--line);padding:6px 10px;text-align:left;vertical-align:top}\n"
    "th{background:var(--side);font-weight:600}\n"
    "td a{text-decoration:none}\n"
    "td a code{color:var(--accent)}\n"
    ".status{display:inline-block;font:600 12px/1 ui-monospace,Menlo,monospace;padding:4px 7px;border-radius:12px}\n"
    ".s4{color:var(--c4);background:var(--c4bg)}.s5{color:var(--c5);background:var(--c5bg)}\n"
    "section.code{border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:16px 0;"
    "scroll-margin-top:16px}\n"
    "section.code:target{border-color:var(--accent);box-shadow:0 0 0 3px #0969da33}\n"
    "section.code h3 a.anchor{color:var(--muted);text-decoration:none;font-weight:400}\n"
    "section.code .title{color:var(--muted);font-weight:500}\n"
    "section.code>p{margin:4px 0 8px}\n"
    "dl.facts{display:grid;grid-template-columns:140px 1fr;gap:4px 14px;margin:10px 0 0;font-size:14px}\n"
    "dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}\n"
    ".alias{display:inline-block;margin:0 8px 4px 0}\n"
    ".alias small{color:var(--muted)}\n"
    ".lead{color:var(--muted);font-size:16px;max-width:720px}\n"
    "@media (max-width:860px){.layout{display:block}nav.toc{position:static;width:auto;height:auto}"
    "main{padding:24px}}\n";

/* The status pill of a code's heading. */
static void status_badge(doc_t *d, int st)
{
    printf_(d, "<span class=\"status s%d\">%d</span>", st / 100, st);
}

/* Every other way the code is written, so people moving from those APIs
 * find it: its canonical name, each dialect's spelling, its synonyms
 * (none twice, nor the way this page writes it). */
static void aliases(doc_t *d, const eg_catalog_entry_t *e, const char *shown)
{
    const char *seen[32];
    size_t nseen = 0;
    const char *list[32], *where[32];
    size_t n = 0;
    seen[nseen++] = shown;
    if (strcasecmp(e->code, shown) != 0) {
        list[n] = e->code;
        where[n++] = "canonical";
        seen[nseen++] = e->code;
    }
    for (size_t i = 0; i < e->nspellings + e->nsynonyms && n < 32 && nseen < 32; i++) {
        const char *a = i < e->nspellings ? e->spellings[i].spelling : e->synonyms[i - e->nspellings];
        int dup = 0;
        for (size_t k = 0; k < nseen && !dup; k++) dup = strcasecmp(seen[k], a) == 0;
        if (dup) continue;
        seen[nseen++] = a;
        list[n] = a;
        where[n++] = i < e->nspellings ? e->spellings[i].dialect : NULL;
    }
    if (!n) return;
    if (d->fmt == EG_DOCS_HTML) {
        puts_(d, "<dt>Also known as</dt><dd>");
        for (size_t i = 0; i < n; i++) {
            puts_(d, "<span class=\"alias\">");
            code(d, list[i]);
            if (where[i]) {
                puts_(d, " <small>");
                text(d, where[i]);
                puts_(d, "</small>");
            }
            puts_(d, "</span>");
        }
        puts_(d, "</dd>");
        return;
    }
    para_open(d);
    text(d, "Also known as: ");
    for (size_t i = 0; i < n; i++) {
        if (i) text(d, ", ");
        code(d, list[i]);
        if (where[i]) {
            text(d, " (");
            text(d, where[i]);
            text(d, ")");
        }
    }
    text(d, ".");
    para_close(d);
}

/* One code's section: anchor = the canonical code (what `type` URIs and
 * the status table link to). */
static int code_section(doc_t *d, const eg_catalog_t *cat, const eg_dialect_t *dl, const eg_catalog_entry_t *e)
{
    char sp[128], url[512];
    eg_dialect_code(dl, cat, e->code, sp, sizeof(sp));
    int st = entry_status(cat, dl, e);
    const char *to = eg_dialect_answer_code(dl, cat, e->code);
    char tsp[128] = "";
    if (to) eg_dialect_code(dl, cat, to, tsp, sizeof(tsp));
    size_t ulen = eg_catalog_docs_url(cat, e, url, sizeof(url));
    if (d->fmt == EG_DOCS_HTML) {
        puts_(d, "<section class=\"code\" id=\"");
        text(d, e->code);
        puts_(d, "\">\n<h3><a class=\"anchor\" href=\"#");
        text(d, e->code);
        puts_(d, "\">#</a> ");
        code(d, sp);
        status_badge(d, st);
        puts_(d, "<span class=\"title\">");
        text(d, e->title ? e->title : "");
        puts_(d, "</span></h3>\n");
        if (e->description) para(d, e->description);
        puts_(d, "<dl class=\"facts\">");
        if (to) {
            puts_(d, "<dt>Sent as</dt><dd>");
            code_link(d, to, tsp);
            puts_(d, ", with <code>reason</code> = ");
            code(d, e->code);
            puts_(d, " in the details</dd>");
        }
        puts_(d, "<dt>Type</dt><dd>");
        code(d, e->type ? e->type : "");
        puts_(d, "</dd><dt>Retryable</dt><dd>");
        text(d, e->retryable ? "yes" : "no");
        puts_(d, "</dd><dt>Default message</dt><dd>");
        text(d, e->message ? e->message : "");
        puts_(d, "</dd>");
        if (e->resolution) {
            puts_(d, "<dt>Resolution</dt><dd>");
            text(d, e->resolution);
            puts_(d, "</dd>");
        }
        aliases(d, e, sp);
        if (ulen && ulen < sizeof(url)) {
            puts_(d, "<dt>Documentation</dt><dd><a href=\"");
            text(d, url);
            puts_(d, "\">");
            text(d, url);
            puts_(d, "</a></dd>");
        }
        puts_(d, "</dl>\n");
    } else {
        char line[256];
        snprintf(line, sizeof(line), "%s (%d %s)", sp, st, e->title ? e->title : "");
        heading_id(d, 3, e->code, line);
        if (e->description) para(d, e->description);
        if (to) {
            para_open(d);
            text(d, "Sent as ");
            code(d, tsp);
            text(d, " (this format's word for it), with ");
            code(d, "reason");
            text(d, " = ");
            code(d, e->code);
            text(d, " in the error's details.");
            para_close(d);
        }
        para_open(d);
        text(d, "Type: ");
        code(d, e->type ? e->type : "");
        text(d, ". Retryable: ");
        text(d, e->retryable ? "yes" : "no");
        text(d, ". Default message: ");
        text(d, e->message ? e->message : "");
        para_close(d);
        if (e->resolution) {
            para_open(d);
            text(d, "Resolution: ");
            text(d, e->resolution);
            para_close(d);
        }
        aliases(d, e, sp);
        if (ulen && ulen < sizeof(url)) {
            para_open(d);
            text(d, "Documentation: ");
            text(d, url);
            para_close(d);
        }
    }
    eg_error_t *exe = example_error(cat, e);
    if (!exe) return EG_ENOMEM;
    int rc = render_example(cat, dl, exe, d);
    eg_error_free(exe);
    if (d->fmt == EG_DOCS_HTML) puts_(d, "</section>\n");
    return rc;
}

/* The sidebar: the sections, then every listed code with its status. */
static void toc(doc_t *d, const eg_catalog_t *cat, const eg_dialect_t *dl, size_t nops)
{
    puts_(d, "<nav class=\"toc\"><div class=\"brand\">Error reference</div><ul>\n"
             "<li><a href=\"#error-response-format\">Error response format</a></li>\n"
             "<li><a href=\"#http-status-codes\">HTTP status codes</a></li>\n");
    if (nops) puts_(d, "<li><a href=\"#errors-per-operation\">Errors per operation</a></li>\n");
    puts_(d, "<li><a href=\"#error-codes\">Error codes</a><ul>\n");
    for (size_t i = 0; i < eg_catalog_count(cat); i++) {
        const eg_catalog_entry_t *e = eg_catalog_at(cat, i);
        if (!eg_catalog_listed(cat, e)) continue;
        char sp[128];
        eg_dialect_code(dl, cat, e->code, sp, sizeof(sp));
        puts_(d, "<li><a href=\"#");
        text(d, e->code);
        puts_(d, "\">");
        code(d, sp);
        status_badge(d, entry_status(cat, dl, e));
        puts_(d, "</a></li>\n");
    }
    puts_(d, "</ul></li>\n<li><a href=\"#retry-strategy\">Retry strategy</a></li>\n</ul></nav>\n");
}

int eg_docs_generate_ops(const eg_catalog_t *cat, const eg_dialect_t *dl, eg_docs_format_t fmt,
                         const char *api, const eg_docs_operation_t *ops, size_t nops, char **out,
                         size_t *len)
{
    doc_t d = {.fmt = fmt};
    size_t n = eg_catalog_count(cat);
    int rc = EG_OK;
    if (fmt == EG_DOCS_HTML) {
        puts_(&d, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                  "<title>Error reference</title>\n<style>\n");
        puts_(&d, css);
        puts_(&d, "</style></head><body>\n<div class=\"layout\">\n");
        toc(&d, cat, dl, nops);
        puts_(&d, "<main>\n");
    }
    heading(&d, 1, "Error reference");
    if (fmt == EG_DOCS_HTML) puts_(&d, "<p class=\"lead\">");
    else para_open(&d);
    text(&d, "This API answers every error with a consistent JSON body, an HTTP status code, "
             "and the headers X-Request-ID and X-Error-Code. This page is generated from the "
             "error catalog the gateway enforces, so it always matches what is sent.");
    para_close(&d);

    heading_id(&d, 2, "error-response-format", "Error response format");
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

    heading_id(&d, 2, "http-status-codes", "HTTP status codes");
    int statuses[128];
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        if (!eg_catalog_listed(cat, eg_catalog_at(cat, i))) continue;
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
            if (!eg_catalog_listed(cat, e) || entry_status(cat, dl, e) != statuses[k]) continue;
            char sp[128];
            eg_dialect_code(dl, cat, e->code, sp, sizeof(sp));
            if (!first) puts_(&d, ", ");
            first = 0;
            code_link(&d, e->code, sp);
        }
        cell_close(&d);
        row_close(&d);
    }
    table_close(&d);

    if (nops) operations(&d, cat, dl, api, ops, nops);

    heading_id(&d, 2, "error-codes", "Error codes");
    for (size_t i = 0; i < n; i++) {
        const eg_catalog_entry_t *e = eg_catalog_at(cat, i);
        if (!eg_catalog_listed(cat, e)) continue;
        if ((rc = code_section(&d, cat, dl, e))) goto out;
    }

    heading_id(&d, 2, "retry-strategy", "Retry strategy");
    para_open(&d);
    text(&d, "Retry only transient errors. Retryable statuses: ");
    int firstst = 1;
    for (size_t k = 0; k < ns; k++) {
        int retry = 0;
        for (size_t i = 0; i < n; i++) {
            const eg_catalog_entry_t *e = eg_catalog_at(cat, i);
            if (eg_catalog_listed(cat, e) && entry_status(cat, dl, e) == statuses[k] && e->retryable &&
                statuses[k] != 409)
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
    if (fmt == EG_DOCS_HTML) puts_(&d, "</main>\n</div>\n</body></html>\n");
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
