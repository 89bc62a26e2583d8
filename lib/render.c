/* render.c - writing an error as JSON in a dialect, without allocating.
 *
 * The compiled template is walked once. Each member is written
 * optimistically; when its value turns out to be empty (an unset slot, an
 * object with nothing in it) the writer position is rolled back, which is why
 * the writer counts bytes past its capacity instead of failing. Names already
 * written in an object are remembered so merged details never duplicate them.
 */
#include "dialect_int.h"

#include <string.h>

#include "jsonw.h"

#define EG_EMITTED_MAX 48
#define EG_MEMO_MAX 16

/* Needs-bits of what a field error can supply: members without them write
 * the same bytes in every item. */
#define EG_NEED_FE_MASK                                                                          \
    ((((1u << (EG_SL_POINTER_FIELD + 1)) - 1) & ~((1u << EG_SL_F_BASE) - 1)) | EG_NEED_EXTRA |   \
     EG_NEED_FIELDS)

typedef struct {
    const eg_tmember_t *m;
    size_t at, len; /* where in the output; len 0 = it wrote nothing */
    int first;      /* written as the object's first member (no comma) */
} memo_t;

typedef struct {
    const eg_error_t *e;
    const eg_dialect_t *d;
    const eg_catalog_t *cat;
    const eg_catalog_entry_t *ent; /* catalog entry of the code written, or NULL */
    const char *code;              /* the code written: e's, or the dialect's code_map of it */
    const char *reason;            /* e's precise code when the code_map replaced it, else NULL */
    const eg_catalog_entry_t *orig; /* with reason: the precise code's entry */
    const eg_field_error_t *fe;    /* current field error inside an item */
    int status;
    uint32_t have_error; /* needs-bits the error itself can satisfy */
    uint32_t have;       /* have_error plus the current field error's */
    /* JSON:API repeats the error's own members (status, code, title,
     * request id...) in every item: the first item's bytes for them are
     * remembered and copied into the later ones */
    int memo;            /* 1 recording (first item), 2 replaying (later items) */
    int nmemo;
    memo_t memos[EG_MEMO_MAX];
} rctx_t;

/* What the current field error has, as needs-bits; keeps c->have in step. */
static void set_fe(rctx_t *c, const eg_field_error_t *fe)
{
    uint32_t m = c->have_error;
    c->fe = fe;
    if (fe) {
        for (int i = 0; i < EG_F__COUNT; i++)
            if (fe->s[i]) m |= 1u << (EG_SL_F_BASE + i);
        if (fe->value) m |= 1u << EG_SL_F_VALUE;
        if (fe->s[EG_F_FIELD]) m |= 1u << EG_SL_FIELD_POINTER;
        if (fe->s[EG_F_POINTER]) m |= 1u << EG_SL_POINTER_FIELD;
        if (fe->extra) m |= EG_NEED_EXTRA;
    }
    c->have = m;
}

typedef struct {
    int first;
    int track; /* something will be merged here: remember the names written */
    const char *emitted[EG_EMITTED_MAX];
    size_t emitted_len[EG_EMITTED_MAX];
    int nemitted;
} objstate_t;

/* Lengths first: a merged object's names mostly differ in length from the
 * ones the template wrote. */
static int was_emitted(const objstate_t *st, const char *k, size_t n)
{
    for (int i = 0; i < st->nemitted; i++)
        if (st->emitted_len[i] == n && memcmp(st->emitted[i], k, n) == 0) return 1;
    return 0;
}

static void member_key(eg_jsonw_t *w, objstate_t *st, const char *k)
{
    if (!st->first) eg_jsonw_ch(w, ',');
    eg_jsonw_str(w, k, strlen(k));
    eg_jsonw_ch(w, ':');
}

static void member_done(objstate_t *st, const char *k, size_t n)
{
    st->first = 0;
    if (st->track && st->nemitted < EG_EMITTED_MAX) {
        st->emitted[st->nemitted] = k;
        st->emitted_len[st->nemitted++] = n;
    }
}

/* Writes the code as the dialect spells it; 0 when there is none to write
 * (no code set, and no catalog fallback wanted or available). */
static int write_code(rctx_t *c, eg_jsonw_t *w, int fallback)
{
    const char *code = c->code;
    if (!code && fallback && c->ent) code = c->ent->code;
    if (!code) return 0;
    /* c->ent is the entry of this very code (set_code and eg_catalog_find
     * match it exactly), or of the status when the code is the fallback */
    eg_case_t cs;
    const char *src = eg__dialect_code_src(c->d, c->ent, code, &cs);
    size_t n = strlen(src);
    char tmp[128];
    if (cs == EG_CASE_KEEP || n > sizeof(tmp)) {
        eg_jsonw_str(w, src, n);
        return 1;
    }
    eg__code_recase(tmp, src, n, cs);
    eg_jsonw_str(w, tmp, n);
    return 1;
}

static const char *catalog_default(rctx_t *c, int slot)
{
    const eg_catalog_entry_t *ent = c->ent;
    switch (slot) {
    case EG_S_TYPE: return ent ? ent->type : NULL;
    case EG_S_TITLE: return ent && ent->title ? ent->title : eg_reason_phrase(c->status);
    case EG_S_MESSAGE: return ent && ent->message ? ent->message : eg_reason_phrase(c->status);
    default: return NULL;
    }
}

/* Writes one chain element; returns 1 when it had a value. */
static int write_one(rctx_t *c, eg_jsonw_t *w, const eg_tslot_t *sl, int id, int fallback)
{
    const eg_error_t *e = c->e;
    const eg_field_error_t *fe = c->fe;
    if (id == EG_S_CODE) return write_code(c, w, fallback);
    if (id < EG_S__COUNT) {
        const char *v = e->s[id];
        /* a mapped code's title and type are the page's code's, unless the
         * error says something of its own */
        if (v && c->reason && c->orig && c->ent &&
            ((id == EG_S_TITLE && c->orig->title && strcmp(v, c->orig->title) == 0) ||
             (id == EG_S_TYPE && c->orig->type && strcmp(v, c->orig->type) == 0))) {
            const char *m = id == EG_S_TITLE ? c->ent->title : c->ent->type;
            if (m) {
                eg_jsonw_cstr(w, m);
                return 1;
            }
        }
        if (v) {
            if (e->plain >> id & 1) eg_jsonw_str_plain(w, v, e->len[id]);
            else eg_jsonw_str(w, v, e->len[id]);
            return 1;
        }
        if (fallback) v = catalog_default(c, id);
        if (!v && fallback && id == EG_S_DOCS && c->ent && c->cat) {
            char url[512];
            size_t n = eg_catalog_docs_url(c->cat, c->ent, url, sizeof(url));
            if (n && n < sizeof(url)) {
                eg_jsonw_str(w, url, n);
                return 1;
            }
        }
        if (!v) return 0;
        eg_jsonw_cstr(w, v);
        return 1;
    }
    switch (id) {
    case EG_SL_STATUS:
        if (sl->as_string) eg_jsonw_ch(w, '"');
        eg_jsonw_int(w, c->status);
        if (sl->as_string) eg_jsonw_ch(w, '"');
        return 1;
    case EG_SL_RETRY_AFTER:
        if (e->retry_after < 0) return 0;
        if (sl->as_string) eg_jsonw_ch(w, '"');
        eg_jsonw_int(w, e->retry_after);
        if (sl->as_string) eg_jsonw_ch(w, '"');
        return 1;
    case EG_SL_F_VALUE:
        if (!fe || !fe->value) return 0;
        eg_jsonw_value(w, fe->value);
        return 1;
    case EG_SL_FIELD_POINTER: {
        const char *f = fe ? fe->s[EG_F_FIELD] : NULL;
        if (!f) return 0;
        /* "address.city" -> prefix + "address/city" */
        eg_jsonw_ch(w, '"');
        eg_jsonw_str_body(w, c->d->pointer_prefix, strlen(c->d->pointer_prefix));
        for (const char *p = f; *p;) {
            size_t run = strcspn(p, ".");
            eg_jsonw_str_body(w, p, run);
            p += run;
            if (*p == '.') {
                eg_jsonw_ch(w, '/');
                p++;
            }
        }
        eg_jsonw_ch(w, '"');
        return 1;
    }
    case EG_SL_POINTER_FIELD: {
        const char *p = fe ? fe->s[EG_F_POINTER] : NULL;
        if (!p) return 0;
        /* the JSON:API and RFC 9457 prefixes first: they are longer than "/" */
        size_t plen = strlen(c->d->pointer_prefix);
        if (strncmp(p, "/data/attributes/", 17) == 0) p += 17;
        else if (strncmp(p, "#/", 2) == 0) p += 2;
        else if (strncmp(p, c->d->pointer_prefix, plen) == 0) p += plen;
        else if (*p == '/') p++;
        eg_jsonw_ch(w, '"');
        for (; *p;) {
            size_t run = strcspn(p, "/");
            eg_jsonw_str_body(w, p, run);
            p += run;
            if (*p == '/') {
                eg_jsonw_ch(w, '.');
                p++;
            }
        }
        eg_jsonw_ch(w, '"');
        return 1;
    }
    default:
        if (id >= EG_SL_F_BASE && id < EG_SL_F_VALUE) {
            const char *v = fe ? fe->s[id - EG_SL_F_BASE] : NULL;
            if (!v) return 0;
            if (fe->plain >> (id - EG_SL_F_BASE) & 1) eg_jsonw_str_plain(w, v, fe->len[id - EG_SL_F_BASE]);
            else eg_jsonw_str(w, v, fe->len[id - EG_SL_F_BASE]);
            return 1;
        }
        return 0;
    }
}

/* The error's message summarises its field errors: there are some, and it
 * is none of their messages (a JSON:API body's first detail is not). */
static int is_summary(const rctx_t *c)
{
    const eg_error_t *e = c->e;
    if (!e->nfields || !e->s[EG_S_MESSAGE]) return 0;
    for (size_t i = 0; i < e->nfields; i++) {
        const char *m = e->fields[i].s[EG_F_MESSAGE];
        if (m && strcmp(m, e->s[EG_S_MESSAGE]) == 0) return 0;
    }
    return 1;
}

static int write_slot(rctx_t *c, eg_jsonw_t *w, const eg_tslot_t *sl)
{
    if (sl->when_summary && !is_summary(c)) return 0;
    for (int i = 0; i < sl->n; i++)
        if (write_one(c, w, sl, sl->chain[i], 0)) return 1;
    if (sl->fallback_catalog && write_one(c, w, sl, sl->chain[0], 1)) return 1;
    if (sl->deflt) {
        eg_jsonw_str(w, sl->deflt, strlen(sl->deflt));
        return 1;
    }
    return 0;
}

static int write_node(rctx_t *c, eg_jsonw_t *w, const eg_tnode_t *t);

/* Merges the members of a JSON object, skipping names already written. */
/* A kept member named like one of the template's nested objects or arrays
 * would give that name another type and make the output unreadable as the
 * dialect: such a member is left out of this dialect's rendering. */
static int structural(const eg_tnode_t *t, const char *k, size_t n)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->members[i].kind != EG_T_SLOT && t->members[i].namelen == n &&
            memcmp(t->members[i].name, k, n) == 0)
            return 1;
    return 0;
}

/* 1 when the error's details, raw or not, have member k. */
static int details_has(const eg_error_t *e, const char *k)
{
    for (size_t i = 0; i < e->nraw; i++)
        if (strcmp(e->raw[i].key, k) == 0) return 1;
    return e->details && json_object_get(e->details, k);
}

/* skip_details: an error whose details' names are skipped too (or NULL). */
static void merge_object(const eg_dialect_t *d, eg_jsonw_t *w, objstate_t *st, const eg_tnode_t *t,
                         const json_t *obj, const json_t *skip1, const eg_error_t *skip_details)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        size_t kn = strlen(k);
        const char *name = d && d->ndnames ? eg__dialect_detail_name(d, k, kn, 1, &kn) : k;
        if (was_emitted(st, name, kn) || (skip1 && json_object_get(skip1, k)) ||
            (skip_details && details_has(skip_details, k)) || structural(t, name, kn))
            continue;
        member_key(w, st, name);
        eg_jsonw_value(w, v);
        st->first = 0;
    }
}

/* Raw details go out as the text they came in: it was valid JSON then. */
static void merge_raw(const eg_dialect_t *d, eg_jsonw_t *w, objstate_t *st, const eg_tnode_t *t,
                      const eg_error_t *e, const json_t *skip1)
{
    for (size_t i = 0; i < e->nraw; i++) {
        const eg_raw_member_t *m = &e->raw[i];
        size_t kn = m->keylen;
        const char *name = d->ndnames ? eg__dialect_detail_name(d, m->key, kn, 1, &kn) : m->key;
        if (was_emitted(st, name, kn) || (skip1 && json_object_get(skip1, m->key)) || structural(t, name, kn))
            continue;
        if (!st->first) eg_jsonw_ch(w, ',');
        eg_jsonw_str(w, name, kn);
        eg_jsonw_ch(w, ':');
        eg_jsonw_put(w, m->json, m->jsonlen);
        st->first = 0;
    }
}

static void write_members(rctx_t *c, eg_jsonw_t *w, const eg_tnode_t *t, objstate_t *st);

/* Writes an object template as a JSON object; returns 0 when it was empty. */
static int write_object(rctx_t *c, eg_jsonw_t *w, const eg_tnode_t *t)
{
    objstate_t st; /* emitted[] is written before it is read: no need to zero it */
    st.first = 1;
    st.nemitted = 0;
    st.track = t->merge_details || t->merge_meta || t->merge_extra ||
               (t->fields && t->fields->style == EG_FS_FLAT);
    eg_jsonw_ch(w, '{');
    write_members(c, w, t, &st);
    eg_jsonw_ch(w, '}');
    return !st.first;
}

static void write_list(rctx_t *c, eg_jsonw_t *w, const eg_tnode_t *item)
{
    const eg_field_error_t *saved = c->fe;
    eg_jsonw_ch(w, '[');
    for (size_t i = 0; i < c->e->nfields; i++) {
        if (i) eg_jsonw_ch(w, ',');
        set_fe(c, &c->e->fields[i]);
        size_t at = w->pos;
        if (!write_object(c, w, item)) {
            w->pos = at;
            eg_jsonw_put(w, "{}", 2);
        }
    }
    eg_jsonw_ch(w, ']');
    set_fe(c, saved);
}

/* Map style: {"email": ["msg", ...], ...}, grouped by name in first-seen order. */
static void write_map(rctx_t *c, eg_jsonw_t *w, const eg_tfields_t *f)
{
    const eg_error_t *e = c->e;
    const eg_field_error_t *saved = c->fe;
    char a[256], b[256];
    int first = 1;
    eg_jsonw_ch(w, '{');
    for (size_t i = 0; i < e->nfields; i++) {
        /* name of field i, rendered as a JSON string into a scratch buffer */
        eg_jsonw_t wa = {a, sizeof(a), 0};
        c->fe = &e->fields[i];
        if (!write_slot(c, &wa, &f->name)) eg_jsonw_str(&wa, "_", 1);
        size_t na = eg_jsonw_finish(&wa);
        int seen = 0;
        for (size_t j = 0; j < i && !seen && na < sizeof(a); j++) {
            eg_jsonw_t wb = {b, sizeof(b), 0};
            c->fe = &e->fields[j];
            if (!write_slot(c, &wb, &f->name)) eg_jsonw_str(&wb, "_", 1);
            seen = eg_jsonw_finish(&wb) == na && memcmp(a, b, na) == 0;
        }
        if (seen) continue;
        if (!first) eg_jsonw_ch(w, ',');
        first = 0;
        c->fe = &e->fields[i];
        if (!write_slot(c, w, &f->name)) eg_jsonw_str(w, "_", 1);
        eg_jsonw_put(w, ":[", 2);
        int nmsg = 0;
        for (size_t j = i; j < e->nfields; j++) {
            if (j != i) {
                eg_jsonw_t wb = {b, sizeof(b), 0};
                c->fe = &e->fields[j];
                if (!write_slot(c, &wb, &f->name)) eg_jsonw_str(&wb, "_", 1);
                if (!(eg_jsonw_finish(&wb) == na && na < sizeof(a) && memcmp(a, b, na) == 0))
                    continue;
            }
            const char *m = e->fields[j].s[EG_F_MESSAGE];
            if (!m) m = e->s[EG_S_MESSAGE];
            if (!m) m = eg_reason_phrase(c->status);
            if (nmsg++) eg_jsonw_ch(w, ',');
            eg_jsonw_str(w, m, strlen(m));
        }
        eg_jsonw_ch(w, ']');
    }
    eg_jsonw_ch(w, '}');
    c->fe = saved;
}

static void write_fields(rctx_t *c, eg_jsonw_t *w, const eg_tfields_t *f, objstate_t *st)
{
    if (c->e->nfields == 0) return;
    if (f->style == EG_FS_FLAT && c->e->nfields == 1) {
        const eg_field_error_t *saved = c->fe;
        /* folded into the error's details, the field's message is the
         * error's own when they say the same: not repeated (the typed and
         * flat-snake seeds' single field errors have none in details) */
        eg_field_error_t one = c->e->fields[0];
        const char *em = c->e->s[EG_S_MESSAGE];
        if (one.s[EG_F_MESSAGE] && em && one.len[EG_F_MESSAGE] == c->e->len[EG_S_MESSAGE] &&
            memcmp(one.s[EG_F_MESSAGE], em, one.len[EG_F_MESSAGE]) == 0)
            one.s[EG_F_MESSAGE] = NULL;
        set_fe(c, &one);
        write_members(c, w, f->item, st);
        set_fe(c, saved);
        return;
    }
    const char *key = f->style == EG_FS_FLAT ? f->list_key : f->key;
    member_key(w, st, key);
    if (f->style == EG_FS_MAP) write_map(c, w, f);
    else write_list(c, w, f->item);
    member_done(st, key, strlen(key));
}

/* Cheap test whether a slot will write anything, so an absent member costs
 * no key copy and rollback. Mirrors write_one(). */
static int slot_has_value(const rctx_t *c, const eg_tslot_t *sl)
{
    if (sl->when_summary) return is_summary(c);
    if (sl->fallback_catalog || sl->deflt) return 1;
    const eg_field_error_t *fe = c->fe;
    for (int i = 0; i < sl->n; i++) {
        int id = sl->chain[i];
        if (id < EG_S__COUNT) {
            if (c->e->s[id]) return 1;
        } else if (id == EG_SL_STATUS) {
            return 1;
        } else if (id == EG_SL_RETRY_AFTER) {
            if (c->e->retry_after >= 0) return 1;
        } else if (!fe) {
            continue;
        } else if (id == EG_SL_F_VALUE) {
            if (fe->value) return 1;
        } else if (id == EG_SL_FIELD_POINTER) {
            if (fe->s[EG_F_FIELD]) return 1;
        } else if (id == EG_SL_POINTER_FIELD) {
            if (fe->s[EG_F_POINTER]) return 1;
        } else if (fe->s[id - EG_SL_F_BASE]) {
            return 1;
        }
    }
    return 0;
}

/* A later item's copy of what the first item wrote for member m; 1 when done. */
static int replay(rctx_t *c, eg_jsonw_t *w, const eg_tmember_t *m, objstate_t *st)
{
    for (int k = 0; k < c->nmemo; k++) {
        if (c->memos[k].m != m) continue;
        if (c->memos[k].first != st->first) return 0;
        size_t at = c->memos[k].at, len = c->memos[k].len;
        if (len == 0) return 1; /* it wrote nothing, and still would */
        if (at + len > w->cap) return 0; /* those bytes were not kept */
        eg_jsonw_put(w, w->buf + at, len); /* earlier bytes of the same buffer: no overlap */
        member_done(st, m->name, m->namelen);
        return 1;
    }
    return 0;
}

/* Writes member m (its key and value); 0 when it turned out empty and was
 * taken back. */
static inline int write_member(rctx_t *c, eg_jsonw_t *w, const eg_tmember_t *m, objstate_t *st)
{
    if (m->kind == EG_T_SLOT && !slot_has_value(c, &m->slot)) return 0;
    size_t at = w->pos;
    int first = st->first;
    eg_jsonw_put_padded(w, m->key + first, m->keylen - (size_t)first);
    if (!(m->kind == EG_T_SLOT ? write_slot(c, w, &m->slot) : write_node(c, w, m->node))) {
        w->pos = at;
        st->first = first;
        return 0;
    }
    member_done(st, m->name, m->namelen);
    return 1;
}

/* write_member inside a JSON:API item: members that depend on the error
 * alone (a slot like status, or a whole object like meta when the field
 * error has nothing for it) are copied from the first item into the later
 * ones. */
static __attribute__((noinline)) void write_member_memo(rctx_t *c, eg_jsonw_t *w, const eg_tmember_t *m,
                                                        objstate_t *st)
{
    /* what this member would read of the current field error, it has none
     * of: it writes the same bytes as in the first item */
    if (m->needs & EG_NEED_FE_MASK & c->have) {
        write_member(c, w, m, st);
        return;
    }
    if (c->memo == 2 && replay(c, w, m, st)) return;
    size_t at = w->pos;
    int first = st->first;
    int wrote = write_member(c, w, m, st);
    if (c->memo == 1 && c->nmemo < EG_MEMO_MAX)
        c->memos[c->nmemo++] = (memo_t){m, at, wrote ? w->pos - at : 0, first};
}

static void write_members(rctx_t *c, eg_jsonw_t *w, const eg_tnode_t *t, objstate_t *st)
{
    for (size_t i = 0; i < t->n; i++) {
        const eg_tmember_t *m = &t->members[i];
        if (!(m->needs & c->have)) continue;
        if (c->memo) write_member_memo(c, w, m, st);
        else write_member(c, w, m, st);
    }
    if (t->fields) write_fields(c, w, t->fields, st);
    /* the precise code a code_map replaced stays readable, where details
     * go: as "reason", or "reason_code" when the error has a reason of its
     * own (a refused JWT's "expired") */
    if (t->merge_details && c->reason) {
        const char *k = details_has(c->e, "reason") ? "reason_code" : "reason";
        size_t kn = strlen(k);
        if (!was_emitted(st, k, kn) && !details_has(c->e, k)) {
            member_key(w, st, k);
            eg_jsonw_str(w, c->reason, strlen(c->reason));
            member_done(st, k, kn);
        }
    }
    /* several merges into one object: a name already written by an earlier
     * merge is skipped, so the output never has duplicate members */
    const json_t *extra = t->merge_extra && c->fe ? c->fe->extra : NULL;
    const json_t *details = t->merge_details ? c->e->details : NULL;
    int raw = t->merge_details && c->e->nraw;
    if (extra) merge_object(NULL, w, st, t, extra, NULL, NULL);
    if (details) merge_object(c->d, w, st, t, details, extra, NULL);
    if (raw) merge_raw(c->d, w, st, t, c->e, extra);
    if (t->merge_meta && c->e->meta)
        merge_object(NULL, w, st, t, c->e->meta, extra, details || raw ? c->e : NULL);
}

static int write_node(rctx_t *c, eg_jsonw_t *w, const eg_tnode_t *t)
{
    switch (t->kind) {
    case EG_T_SLOT: return write_slot(c, w, &t->slot);
    case EG_T_OBJECT: return write_object(c, w, t);
    case EG_T_SPLIT: {
        eg_jsonw_ch(w, '[');
        if (c->e->nfields == 0) {
            write_object(c, w, t->item);
        } else {
            c->nmemo = 0;
            for (size_t i = 0; i < c->e->nfields; i++) {
                if (i) eg_jsonw_ch(w, ',');
                set_fe(c, &c->e->fields[i]);
                c->memo = i == 0 ? 1 : 2;
                write_object(c, w, t->item);
            }
            c->memo = 0;
            set_fe(c, NULL);
        }
        eg_jsonw_ch(w, ']');
        return 1;
    }
    }
    return 0;
}

size_t eg_render(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat, char *buf,
                 size_t cap)
{
    rctx_t c; /* not zeroed whole: memos[] is written before it is read */
    c.e = e;
    c.d = d;
    c.cat = cat;
    c.fe = NULL;
    c.memo = c.nmemo = 0;
    /* one catalog lookup serves the status, the spelling and every fallback */
    if (e->ent && e->ent_cat == cat && e->ent_code == e->s[EG_S_CODE])
        c.ent = e->ent; /* looked up when the code was set */
    else
        c.ent = e->s[EG_S_CODE] ? eg_catalog_find(cat, e->s[EG_S_CODE]) : NULL;
    c.status = eg__dialect_status_ent(d, c.ent, e);
    if (!e->s[EG_S_CODE]) c.ent = eg_catalog_for_status(cat, c.status);
    c.code = e->s[EG_S_CODE];
    c.reason = NULL;
    c.orig = NULL;
    const char *to = eg__dialect_answer(d, cat, c.ent, c.code);
    if (to) {
        c.reason = c.code;
        c.orig = c.ent;
        c.code = to;
        c.ent = eg_catalog_find(cat, to);
    }
    uint32_t have = EG_NEED_ALWAYS | (1u << EG_SL_STATUS);
    for (int i = 0; i < EG_S__COUNT; i++)
        if (e->s[i]) have |= 1u << i;
    if (e->retry_after >= 0) have |= 1u << EG_SL_RETRY_AFTER;
    if (eg_error_has_details(e) || c.reason) have |= EG_NEED_DETAILS;
    if (e->meta && json_object_size(e->meta)) have |= EG_NEED_META;
    if (e->nfields) have |= EG_NEED_FIELDS;
    c.have_error = c.have = have;
    eg_jsonw_t w = {buf, cap, 0};
    if (!write_object(&c, &w, d->body)) {
        w.pos = 0;
        eg_jsonw_put(&w, "{}", 2);
    }
    return eg_jsonw_finish(&w);
}
