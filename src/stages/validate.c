/* validate.c - the request validation stage: a route's declared rules
 * (validate:, lib/params.h) checked before the request goes on.
 *
 * It runs after access and before traffic (Kong's order: authentication,
 * then validation, then rate limiting): an unauthenticated caller learns
 * nothing about the API's parameters, and a malformed request does not
 * burn the caller's rate limit or quota (docs/validation.md).
 *
 * What it checks, in one pass that reports every problem at once (up to
 * EG_VALIDATE_MAX_FIELDS field errors, then a count): the query string's
 * length (query_too_long), the query, path and header parameters, and a
 * body: its media type (415 unsupported_media_type listing the accepted
 * ones), then, read whole (eg_req_read_body, so nothing reaches the
 * upstream before the verdict; a chunked one comes decoded), a JSON body
 * checked against the route's JSON Schema as it arrives (each new piece fed
 * to the streaming validator, eg_sv_*; one already whole at the first look
 * parsed onto jsonr's tape and walked, which costs less then, with the same
 * verdict), invalid JSON answered 400 invalid_json with position, line and
 * column, or a form body checked like a query string. A valid
 * request is checked once, counting only (no allocation); a field error
 * list is built only when something failed. A refused request's body is
 * skipped (eg_req_drop_body), so the connection carries the next request.
 */
#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonr.h"
#include "metrics.h"
#include "params.h"
#include "schema.h"
#include "strbuild.h"

/* A worker's body validator between requests (eg_sv_reset keeps its
 * buffers): a request takes it while its body is read and checked. */
static _Thread_local eg_sv_t *spare;

/* The body's check goes back to the worker's spare (or is freed). */
static void put_back(eg_req_t *c)
{
    if (!spare)
        spare = c->vstream;
    else
        eg_sv_free(c->vstream);
    c->vstream = NULL;
    c->vfed = 0;
}

/* The most field errors one answer lists; the rest are counted. */
#define EG_VALIDATE_MAX_FIELDS 20
/* The most {name} captures a route path has that the stage looks at. */
#define EG_VALIDATE_MAX_CAPS 16

/* The query part of the target, without '?' (NULL, 0 when none). */
static const char *query_of(const eg_req_t *c, size_t *n)
{
    size_t len;
    const char *t = eg_req_origin_form(c, &len);
    const char *q = memchr(t, '?', len);
    *n = q ? len - (size_t)(q - t) - 1 : 0;
    return q ? q + 1 : NULL;
}

/* The Content-Type field: its name compared as two words (letters in
 * either case, the '-' exactly: what strncasecmp finds) instead of a
 * call per field of its length. */
static const eg_http_header_t *content_type_of(const eg_req_t *c)
{
    static const unsigned char m1[8] = {0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0};
    uint64_t w1, l1, k1;
    uint32_t w2, l2;
    memcpy(&l1, "content-", 8);
    memcpy(&k1, m1, 8);
    memcpy(&l2, "type", 4);
    for (size_t i = 0; i < c->req.nheaders; i++) {
        const eg_http_header_t *h = &c->req.headers[i];
        if (h->name_len != 12) continue;
        memcpy(&w1, h->name, 8);
        memcpy(&w2, h->name + 8, 4);
        if ((w1 | k1) == l1 && (w2 | 0x20202020u) == l2) return h;
    }
    return NULL;
}

static int has_body(const eg_req_t *c)
{
    return c->req.framing == EG_FRAMING_CHUNKED ||
           (c->req.framing == EG_FRAMING_LENGTH && c->req.content_length > 0);
}

/* The media types a body may have: the configured ones, or the ones the
 * rules imply (json: t is a JSON media type, asked once by the caller). */
static int type_accepted(const eg_validation_t *v, const char *t, size_t n, int json)
{
    if (v->ncontent_types) return eg_media_type_in(t, n, v->content_types, v->ncontent_types);
    if (v->body && json) return 1;
    if (v->has_form && n == 33 && strncasecmp(t, "application/x-www-form-urlencoded", 33) == 0)
        return 1;
    return !v->body && !v->has_form; /* no body rules: any */
}

static void accepted_list(const eg_validation_t *v, char *buf, size_t cap, json_t *arr)
{
    eg_sb_t b = eg_sb(buf, cap);
    if (v->ncontent_types) {
        for (size_t i = 0; i < v->ncontent_types; i++) {
            if (i) EG_SB_LIT(&b, ", ");
            eg_sb_str(&b, v->content_types[i]);
            json_array_append_new(arr, json_string(v->content_types[i]));
        }
    } else {
        if (v->body) {
            EG_SB_LIT(&b, "application/json");
            json_array_append_new(arr, json_string("application/json"));
        }
        if (v->has_form) {
            if (v->body) EG_SB_LIT(&b, ", ");
            EG_SB_LIT(&b, "application/x-www-form-urlencoded");
            json_array_append_new(arr, json_string("application/x-www-form-urlencoded"));
        }
    }
    buf[b.over ? cap - 1 : b.len] = '\0';
}

/* Every refusal of this stage is counted by the code it answers with
 * (errgate_validation_failures_total, docs/metrics.md). */
static void count(eg_req_t *c, const char *code)
{
    eg_metrics_validation_failure(c->gw->metrics, c->w->id, c->route, code);
}

/* 413: the body is over the route's max_body (or the buffer's room). */
static eg_stage_rc_t too_large(eg_req_t *c, const eg_validation_t *v)
{
    /* limits.max_body_size bounds every body, below the route's max_body too */
    uint64_t lim = c->gw->cfg->limits.max_body_size;
    uint64_t max = lim && lim < v->max_body ? lim : v->max_body;
    eg_error_t *e = eg_req_error(c, "payload_too_large");
    if (e) {
        eg_error_setf(e, EG_S_MESSAGE, "The body is larger than the %llu bytes this route checks.",
                      (unsigned long long)max);
        eg_error_set_detail_int(e, "max_body", (long long)max);
    }
    count(c, "payload_too_large");
    eg_req_send_error(c, e, NULL, "body over the validation max_body");
    return EG_STAGE_ANSWERED;
}

/* 400 invalid_json: where the text stopped being JSON. */
static eg_stage_rc_t invalid_json(eg_req_t *c, const eg_validation_t *v, long position, int line,
                                  int column, const char *text, size_t n, size_t framed)
{
    eg_req_drop_body(c, framed);
    eg_error_t *e = eg_req_error(c, "invalid_json");
    if (e) {
        if (v->json_message) eg_error_set(e, EG_S_MESSAGE, v->json_message);
        /* jsonr reports where jansson stopped, after the offending token;
         * jansson's own message (asked only now, on this rare path) names
         * the token, so the position can be the token's own, as the seeds
         * count it ("Unexpected token '}' at position 45") */
        long pos = position;
        char what[160];
        json_error_t je;
        json_t *j = json_loadb(text, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        json_decref(j);
        const char *near = strstr(je.text, "near '");
        if (!j && near && !strstr(je.text, "near end of file")) {
            near += 6;
            size_t tl = strlen(near);
            if (tl && near[tl - 1] == '\'') tl--;
            if (tl > 40) tl = 40;
            if (pos >= (long)tl) pos -= (long)tl;
            snprintf(what, sizeof(what), "Unexpected token '%.*s' at position %ld", (int)tl, near,
                     pos);
        } else {
            snprintf(what, sizeof(what), "Unexpected end of input at position %ld", pos);
        }
        if (v->json_details & EG_VJ_JSON_ERROR)
            eg_error_set_detail_str(e, "json_error", what, strlen(what));
        if (v->json_details & EG_VJ_POSITION) eg_error_set_detail_int(e, "position", pos);
        if (v->json_details & EG_VJ_LINE) eg_error_set_detail_int(e, "line", line);
        if (v->json_details & EG_VJ_COLUMN) eg_error_set_detail_int(e, "column", column);
    }
    count(c, "invalid_json");
    eg_req_send_error(c, e, NULL, "invalid JSON body");
    return EG_STAGE_ANSWERED;
}

/* The status of a validation problem: the route's, else the dialect's
 * (its status for validation_error: 422 in jsonapi, envelope and problem,
 * 400 in typed and the flat dialects), one source with `errgate docs`. */
static int problem_status(const eg_req_t *c, const eg_validation_t *v)
{
    if (v->status) return v->status;
    const eg_config_t *cfg = c->gw->cfg;
    return eg_dialect_code_status(c->dialect ? c->dialect : cfg->dialect, cfg->catalog,
                                  "validation_error");
}

typedef struct {
    const char *q; /* the query, NULL: none */
    size_t qn;
    const char *body; /* the body's data (de-chunked), NULL: none */
    size_t bn;
    int json, form; /* what the body is */
    int present;    /* the request has a body */
    int checked;    /* a JSON body went through the schema as it streamed in */
    size_t bad;     /* ... and this many problems were found (counting: 0 or 1) */
} input_t;

/* Every check, into rep (count only when rep->e is NULL). */
static int check_all(eg_req_t *c, const eg_validation_t *v, const input_t *in,
                     eg_params_report_t *rep)
{
    const eg_params_t *p = &v->params;
    unsigned ins = 0; /* bit per eg_param_in_t that has rules: the others cost nothing */
    for (size_t i = 0; i < p->n; i++)
        ins |= 1u << p->rules[i].in;
    int rc = EG_OK;
    if (ins & 1u << EG_PIN_QUERY) {
        rc = eg_params_check_query(p, EG_PIN_QUERY, in->q ? in->q : "", in->qn, rep);
        if (rc == EG_ENOMEM || (!rep->e && rep->count)) return rc;
    }
    if (ins & 1u << EG_PIN_PATH) {
        eg_path_capture_t caps[EG_VALIDATE_MAX_CAPS];
        size_t ncaps = 0;
        const eg_route_cfg_t *r = c->route;
        if (strchr(r->path, '{') &&
            !eg_path_template_match(r->path, strlen(r->path), c->path, c->path_len, r->prefix, caps,
                                    EG_VALIDATE_MAX_CAPS, &ncaps))
            ncaps = 0;
        if (ncaps > EG_VALIDATE_MAX_CAPS) ncaps = EG_VALIDATE_MAX_CAPS;
        rc = eg_params_check_path(p, caps, ncaps, rep);
        if (rc == EG_ENOMEM || (!rep->e && rep->count)) return rc;
    }
    if (ins & 1u << EG_PIN_HEADER) {
        rc = eg_params_check_headers(p, c->req.headers, c->req.nheaders, rep);
        if (rc == EG_ENOMEM || (!rep->e && rep->count)) return rc;
    }
    if (in->form) {
        rc = eg_params_check_query(p, EG_PIN_FORM, in->body, in->bn, rep);
        if (rc == EG_ENOMEM || (!rep->e && rep->count)) return rc;
    }
    if (in->checked && v->body) {
        eg_schema_report_t sr = {rep->e, "", NULL, 0, in->bad};
        if (rep->e) {
            /* the list: the body streamed again (a refusal only), so the
             * first pass allocates nothing for it */
            sr.max = rep->max > rep->e->nfields ? rep->max - rep->e->nfields : 0;
            eg_sv_t *sv = c->vstream;
            rc = EG_OK;
            if (sv)
                eg_sv_reset(sv, v->body, &sr);
            else
                rc = eg_sv_new(v->body, &sr, &sv);
            if (rc == EG_OK) rc = eg_sv_feed(sv, in->body, in->bn);
            if (rc == EG_OK) rc = eg_sv_finish(sv);
            if (sv != c->vstream) eg_sv_free(sv);
        }
        if (rc == EG_ENOMEM) return rc;
        if (sr.count) {
            if (!rep->count)
                rep->code = "validation_error";
            else if (strcmp(rep->code, "validation_error") != 0)
                rep->mixed = 1;
            rep->count += sr.count;
        }
    } else if (v->body_required && !in->present) {
        if (!rep->count)
            rep->code = "validation_error";
        else if (strcmp(rep->code, "validation_error") != 0)
            rep->mixed = 1;
        rep->count++;
        if (rep->e && rep->e->nfields < rep->max) {
            eg_field_error_t *f = eg_error_add_field(rep->e);
            if (!f || eg_field_set(rep->e, f, EG_F_FIELD, "body") ||
                eg_field_set(rep->e, f, EG_F_POINTER, "") ||
                eg_field_set(rep->e, f, EG_F_CONSTRAINT, "required") ||
                eg_field_set(rep->e, f, EG_F_MESSAGE, "A request body is required"))
                return EG_ENOMEM;
        }
    }
    return EG_OK;
}

/* The field errors of `from` added to `to` (strings copied, values shared). */
static int copy_fields(eg_error_t *to, const eg_error_t *from)
{
    for (size_t i = 0; i < from->nfields; i++) {
        const eg_field_error_t *a = &from->fields[i];
        eg_field_error_t *b = eg_error_add_field(to);
        if (!b) return EG_ENOMEM;
        for (int k = 0; k < EG_F__COUNT; k++)
            if (a->s[k] && eg_field_setn(to, b, (eg_fstr_t)k, a->s[k], a->len[k])) return EG_ENOMEM;
        if (a->value) eg_field_set_value(b, json_incref(a->value));
        if (a->extra) {
            json_t *x = eg_field_extra(b);
            if (!x || json_object_update(x, a->extra)) return EG_ENOMEM;
        }
    }
    return EG_OK;
}

/* A body field error in the seeds' words: its message a sentence of its
 * own ("email is required", as the jsonapi seed words it: the schema's
 * words name no field), its constraint and bounds in snake_case
 * ("min_length", "email_format": flat-snake), and a missing field's value
 * an explicit null (flat-snake's {"field", "constraint": "required",
 * "value": null}). */
static int polish_body_fields(eg_error_t *e)
{
    for (size_t i = 0; i < e->nfields; i++) {
        eg_field_error_t *f = &e->fields[i];
        if (!f->s[EG_F_POINTER]) continue; /* a parameter's: worded already */
        const char *m = f->s[EG_F_MESSAGE], *n = f->s[EG_F_FIELD];
        char buf[512];
        if (m && n && m[0] >= 'a' && m[0] <= 'z') {
            snprintf(buf, sizeof(buf), "%s %s", n, m);
            if (eg_field_set(e, f, EG_F_MESSAGE, buf)) return EG_ENOMEM;
        }
        const char *kw = f->s[EG_F_CONSTRAINT];
        if (kw) {
            json_t *fmt = f->extra ? json_object_get(f->extra, "format") : NULL;
            int required = strcmp(kw, "required") == 0;
            eg_constraint_name(kw, json_string_value(fmt), buf, sizeof(buf));
            if (eg_field_set(e, f, EG_F_CONSTRAINT, buf)) return EG_ENOMEM;
            if (required && !f->value) eg_field_set_value(f, json_null());
        }
        if (f->extra) {
            /* the bounds' names as the constraint's: {"minLength": 2} -> {"min_length": 2} */
            json_t *x = json_object();
            const char *k;
            json_t *v;
            if (!x) return EG_ENOMEM;
            json_object_foreach(f->extra, k, v)
            {
                eg_snake_name(k, buf, sizeof(buf));
                json_object_set(x, buf, v);
            }
            json_decref(f->extra);
            f->extra = x;
        }
    }
    return EG_OK;
}

/* The answer listing every problem. */
static eg_stage_rc_t refuse(eg_req_t *c, const eg_validation_t *v, const input_t *in, size_t framed)
{
    eg_req_drop_body(c, framed);
    eg_error_t *e = eg_error_new();
    eg_params_report_t rep = {e, EG_VALIDATE_MAX_FIELDS, 0, NULL, 0};
    if (!e || check_all(c, v, in, &rep) == EG_ENOMEM || !rep.count) {
        /* out of memory, or a problem that does not show twice: the generic answer */
        eg_error_free(e);
        count(c, "validation_error");
        eg_req_send_simple(c, "validation_error", NULL, "request validation failed");
        return EG_STAGE_ANSWERED;
    }
    const char *code = rep.count == 1 || !rep.mixed ? rep.code : "validation_error";
    eg_error_t *out = eg_req_error(c, code);
    if (!out) {
        eg_error_free(e);
        eg_req_send_error(c, NULL, NULL, "out of memory");
        return EG_STAGE_ANSWERED;
    }
    if (polish_body_fields(e) != EG_OK || copy_fields(out, e) != EG_OK) {
        eg_error_free(e);
        eg_error_free(out);
        eg_req_send_error(c, NULL, NULL, "out of memory");
        return EG_STAGE_ANSWERED;
    }
    eg_error_free(e);
    if (rep.count == 1 && out->nfields == 1 && out->fields[0].s[EG_F_MESSAGE])
        eg_error_set(out, EG_S_MESSAGE, out->fields[0].s[EG_F_MESSAGE]);
    if (rep.count > out->nfields) eg_error_set_detail_int(out, "error_count", (long long)rep.count);
    eg_error_set_status(out, problem_status(c, v));
    char why[96];
    snprintf(why, sizeof(why), "request validation: %zu problem%s", rep.count,
             rep.count == 1 ? "" : "s");
    count(c, code);
    eg_req_send_error(c, out, NULL, why);
    return EG_STAGE_ANSWERED;
}

/* Before a refusal of a request whose body was not read: the body is read
 * (when it fits the buffer) so that it can be skipped and the connection
 * carries the next request. 1: being read (return SUSPENDED: on_request
 * runs again, and decides again); 0: go on and answer (*framed: the bytes
 * to skip, 0 when the body is too large or malformed: the connection then
 * closes after the answer). */
static int read_to_skip(eg_req_t *c, size_t *framed)
{
    const char *b = NULL;
    size_t fr = 0;
    /* a client waiting for 100 Continue is not asked for a body to discard */
    if (*framed || !has_body(c) || c->req.expect_continue) return 0;
    int rc = eg_req_read_body(c, EG_BUFFER_BODY_MAX, &b, &fr);
    if (rc == 0) return 1;
    if (rc == 1) *framed = fr;
    return 0;
}

static eg_stage_rc_t on_request(eg_req_t *c)
{
    const eg_validation_t *v = c->route->validate;
    input_t in;
    memset(&in, 0, sizeof(in));
    in.q = query_of(c, &in.qn);
    in.present = has_body(c);
    size_t framed = 0;
    if (v->params.max_query_length && in.qn > v->params.max_query_length) {
        if (read_to_skip(c, &framed)) return EG_STAGE_SUSPENDED;
        eg_req_drop_body(c, framed);
        eg_error_t *e = eg_req_error(c, "query_too_long");
        if (e) {
            eg_error_setf(e, EG_S_MESSAGE, "Query exceeds maximum length of %zu characters",
                          v->params.max_query_length);
            eg_error_set_detail_int(e, "query_length", (long long)in.qn);
            eg_error_set_detail_int(e, "max_length", (long long)v->params.max_query_length);
            /* a validation problem: the route's or the dialect's status (the
             * catalog's, preset by eg_req_error, would ignore the dialect) */
            const eg_config_t *cfg = c->gw->cfg;
            eg_error_set_status(
                e, v->status ? v->status
                             : eg_dialect_code_status(c->dialect ? c->dialect : cfg->dialect,
                                                      cfg->catalog, "query_too_long"));
        }
        count(c, "query_too_long");
        eg_req_send_error(c, e, NULL, "query over max_query_length");
        return EG_STAGE_ANSWERED;
    }
    if (has_body(c) && (v->body || v->has_form || v->ncontent_types)) {
        const eg_http_header_t *ct = content_type_of(c);
        const char *t = "";
        size_t tn = 0;
        if (ct) eg_media_type_of(ct->value, ct->value_len, &t, &tn);
        int json = tn && eg_media_type_is_json(t, tn);
        if (!type_accepted(v, t, tn, json)) {
            if (read_to_skip(c, &framed)) return EG_STAGE_SUSPENDED;
            eg_req_drop_body(c, framed);
            char list[512];
            json_t *arr = json_array();
            accepted_list(v, list, sizeof(list), arr);
            eg_error_t *e = eg_req_error(c, "unsupported_media_type");
            if (e) {
                if (tn)
                    eg_error_setf(e, EG_S_MESSAGE,
                                  "The body's media type %.*s is not accepted here; send %s.",
                                  (int)(tn > 100 ? 100 : tn), t, list);
                else
                    eg_error_setf(e, EG_S_MESSAGE, "The body has no Content-Type; send %s.", list);
                if (tn) eg_error_set_detail_str(e, "content_type", t, tn > 100 ? 100 : tn);
                eg_error_set_detail(e, "accepted", arr);
                arr = NULL;
            }
            json_decref(arr);
            char accept[600];
            snprintf(accept, sizeof(accept), "Accept-Post: %s\r\n", list);
            count(c, "unsupported_media_type");
            eg_req_send_error(c, e, c->method_bit == EG_M_POST ? accept : NULL,
                              "body media type not accepted");
            return EG_STAGE_ANSWERED;
        }
        in.json = json && v->body;
        in.form =
            tn == 33 && strncasecmp(t, "application/x-www-form-urlencoded", 33) == 0 && v->has_form;
        if (in.json || in.form) {
            const char *body = NULL;
            int rc = eg_req_read_body(c, v->max_body, &body, &framed);
            int whole = in.json && rc == 1 && !c->vstream;
            if (whole && eg_schema_fast(v->body, body, framed)) {
                /* surely valid JSON and valid against the schema, read in one
                 * pass without a tape (lib/schema_fast.c); anything it is not
                 * sure of takes the exact path below, which words the errors */
                in.checked = 1;
            } else if (whole) {
                /* whole at the first look (it came with the head, the usual
                 * case): jsonr's tape and the tree walk cost less than the
                 * stream for a body that is all there (docs/performance.md),
                 * with the same verdict and problems (test_schema_stream) */
                eg_jr_doc_t doc;
                int prc = eg_jr_parse(&doc, body, framed);
                if (prc == EG_EPARSE) {
                    eg_stage_rc_t out = invalid_json(c, v, doc.position, doc.line, doc.column, body,
                                                     framed, framed);
                    eg_jr_free(&doc);
                    return out;
                }
                eg_schema_report_t sr = {NULL, "", NULL, 0, 0};
                int vrc = prc ? prc : eg_schema_validate(v->body, &doc, NULL, &sr);
                eg_jr_free(&doc);
                if (vrc == EG_ENOMEM) {
                    eg_req_send_simple(c, "internal_error", NULL, "out of memory");
                    return EG_STAGE_ANSWERED;
                }
                in.checked = 1;
                in.bad = vrc == EG_ERANGE;
            } else if (in.json && (rc == 0 || rc == 1)) {
                /* the schema checks the body as it comes: what arrived since
                 * the last call is fed now (the body stays whole, for the
                 * upstream after the verdict) */
                size_t have;
                const char *so_far = rc == 1 ? body : eg_req_body_so_far(c, &have);
                if (rc == 1) have = framed;
                if (!c->vstream && spare) { /* the worker's, from its last body */
                    c->vstream = spare;
                    spare = NULL;
                    eg_sv_reset(c->vstream, v->body, NULL);
                }
                if (!c->vstream && eg_sv_new(v->body, NULL, &c->vstream) != EG_OK) {
                    eg_sv_free(c->vstream);
                    c->vstream = NULL;
                    eg_req_send_simple(c, "internal_error", NULL, "out of memory");
                    return EG_STAGE_ANSWERED;
                }
                if (have > c->vfed &&
                    eg_sv_feed(c->vstream, so_far + c->vfed, have - c->vfed) == EG_ENOMEM) {
                    eg_req_send_simple(c, "internal_error", NULL, "out of memory");
                    return EG_STAGE_ANSWERED;
                }
                c->vfed = have;
            }
            if (rc == 0) return EG_STAGE_SUSPENDED; /* on_request runs again with more of it */
            if (rc == EG_ETOOBIG) return too_large(c, v);
            if (rc == EG_EPARSE) {
                count(c, "bad_request");
                eg_req_send_simple(c, "bad_request", "Malformed chunked body.",
                                   "malformed chunked body");
                return EG_STAGE_ANSWERED;
            }
            if (rc < 0) return EG_STAGE_ANSWERED; /* the client is gone */
            /* the data: a chunked body comes decoded (stage.h) */
            in.body = body;
            in.bn = framed;
            if (in.json && !whole) {
                eg_sv_t *sv = c->vstream;
                int src = eg_sv_finish(sv);
                if (src == EG_EPARSE) {
                    long pos;
                    int line, col;
                    eg_sv_error(sv, &pos, &line, &col);
                    put_back(c);
                    return invalid_json(c, v, pos, line, col, in.body, in.bn, framed);
                }
                if (src == EG_ENOMEM) {
                    eg_req_send_simple(c, "internal_error", NULL, "out of memory");
                    return EG_STAGE_ANSWERED;
                }
                in.checked = 1;
                in.bad = src == EG_ERANGE;
            }
        }
    }
    /* the common case: everything valid, counted without building a thing */
    eg_params_report_t rep = {NULL, 0, 0, NULL, 0};
    int rc = check_all(c, v, &in, &rep);
    eg_stage_rc_t out = EG_STAGE_CONTINUE;
    if (rc == EG_ENOMEM) {
        eg_req_send_simple(c, "internal_error", NULL, "out of memory");
        out = EG_STAGE_ANSWERED;
    } else if (rep.count) {
        /* no body rules, so the body was not read: read it to skip it */
        if (!framed && read_to_skip(c, &framed))
            out = EG_STAGE_SUSPENDED;
        else
            out = refuse(c, v, &in, framed);
    }
    if (c->vstream && out != EG_STAGE_SUSPENDED) put_back(c);
    return out;
}

/* whatever became of the request */
static void on_done(eg_req_t *c)
{
    if (c->vstream) put_back(c);
}

static void worker_exit(eg_worker_t *w)
{
    (void)w;
    eg_sv_free(spare);
    spare = NULL;
}

static int applies(const eg_config_t *cfg, const eg_route_cfg_t *route)
{
    (void)cfg;
    return route->validate != NULL;
}

const eg_stage_t eg_stage_validate = {.name = "validate",
                                      .applies = applies,
                                      .on_request = on_request,
                                      .on_done = on_done,
                                      .worker_exit = worker_exit};
