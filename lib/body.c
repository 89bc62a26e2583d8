/* body.c - turning whatever an upstream sent into the model.
 *
 * Upstreams do not always answer in a dialect: a crashed application server
 * sends an HTML page, a proxy sends plain text, a timeout truncates JSON.
 * Every such body still becomes a proper error: the catalog's error for the
 * HTTP status, with a short sanitized excerpt of the body as its message so
 * that markup, control characters and huge pages never reach a client.
 */
#include "dialect_int.h"
#include "utf8.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EG_EXCERPT_MAX 200

/* Length of the character at s: 1 for ASCII, 0 for invalid UTF-8. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    return s[0] < 0x80 ? 1 : eg_utf8_len(s, n);
}

/* Skips <script>/<style> bodies entirely: their text is never a message. */
static size_t skip_block(const char *t, size_t len, size_t i)
{
    static const char *const blocks[] = {"script", "style"};
    for (size_t b = 0; b < 2; b++) {
        size_t bl = strlen(blocks[b]);
        if (i + 1 + bl <= len && strncasecmp(t + i + 1, blocks[b], bl) == 0) {
            for (size_t j = i + 1; j + 2 + bl < len; j++)
                if (t[j] == '<' && t[j + 1] == '/' && strncasecmp(t + j + 2, blocks[b], bl) == 0) {
                    const char *gt = memchr(t + j, '>', len - j);
                    return gt ? (size_t)(gt - t) + 1 : len;
                }
            return len;
        }
    }
    return i;
}

size_t eg_excerpt(const char *text, size_t len, char *buf, size_t cap)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t out = 0, i = 0;
    int space = 0, cut = 0;
    if (cap == 0) return 0;
    size_t limit = cap - 1;
    while (i < len) {
        unsigned c = s[i];
        if (c == '<') {
            size_t j = skip_block(text, len, i);
            if (j != i) {
                i = j;
                space = out > 0;
                continue;
            }
            const char *gt = memchr(text + i, '>', len - i);
            i = gt ? (size_t)(gt - text) + 1 : len;
            space = out > 0;
            continue;
        }
        if (c < 0x20 || c == 0x7F || c == ' ') {
            space = out > 0;
            i++;
            continue;
        }
        size_t k = utf8_seq(s + i, len - i);
        if (!k) {
            i++;
            continue;
        }
        if (out + space + k > limit) {
            cut = 1;
            break;
        }
        if (space) buf[out++] = ' ';
        space = 0;
        memcpy(buf + out, text + i, k);
        out += k;
        i += k;
    }
    if (cut) {
        /* make room for "..." at a character boundary */
        while (out > 0 && out + 3 > limit) {
            out--;
            while (out > 0 && ((unsigned char)buf[out] & 0xC0) == 0x80) out--;
        }
        if (out + 3 <= limit) {
            memcpy(buf + out, "...", 3);
            out += 3;
        }
    }
    buf[out] = '\0';
    return out;
}

int eg_error_from_catalog(const eg_catalog_t *cat, const char *code, eg_error_t **out)
{
    eg_error_t *e = eg_error_new();
    if (!e) return EG_ENOMEM;
    const eg_catalog_entry_t *ent = cat && code ? eg_catalog_find(cat, code) : NULL;
    /* the catalog's strings are referred to, not copied, and were checked
     * for escaping once, at load */
    int rc = ent && strcmp(code, ent->code) == 0
                 ? eg_error_set_static(e, EG_S_CODE, ent->code, ent->len[EG_S_CODE], ent->plain >> EG_S_CODE & 1)
                 : eg_error_set(e, EG_S_CODE, code);
    if (!rc && ent) {
        static const eg_str_t from[] = {EG_S_TYPE, EG_S_TITLE, EG_S_MESSAGE};
        const char *v[] = {ent->type, ent->title, ent->message};
        e->ent_cat = cat;
        e->ent = ent;
        e->ent_code = e->s[EG_S_CODE];
        e->status = ent->status;
        for (size_t i = 0; !rc && i < 3; i++)
            if (v[i]) rc = eg_error_set_static(e, from[i], v[i], ent->len[from[i]], ent->plain >> from[i] & 1);
    }
    if (rc) {
        eg_error_free(e);
        return rc;
    }
    *out = e;
    return EG_OK;
}

int eg_error_invalid_json(const eg_catalog_t *cat, const json_error_t *je, eg_error_t **out)
{
    eg_error_t *e = NULL;
    int rc = eg_error_from_catalog(cat, "invalid_json", &e);
    if (rc) return rc;
    char text[256];
    snprintf(text, sizeof(text), "%s at position %d", je->text, je->position);
    json_t *d = eg_error_details(e);
    if (!d || json_object_set_new(d, "json_error", json_string(text)) ||
        json_object_set_new(d, "position", json_integer(je->position)) ||
        json_object_set_new(d, "line", json_integer(je->line)) ||
        json_object_set_new(d, "column", json_integer(je->column))) {
        eg_error_free(e);
        return EG_ENOMEM;
    }
    *out = e;
    return EG_OK;
}

/* Common member names for the message and code of JSON of no known shape. */
static const char *const message_names[] = {"message", "detail", "error_description", "msg",
                                            "description", "title", "error"};
static const char *const code_names[] = {"code", "error_code", "errorCode", "error", "type"};

static int from_unknown_json(const eg_catalog_t *cat, json_t *doc, int status, eg_error_t *e)
{
    int rc = EG_OK;
    if (json_is_object(doc)) {
        for (size_t i = 0; i < sizeof(code_names) / sizeof(code_names[0]); i++) {
            json_t *v = json_object_get(doc, code_names[i]);
            if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64)
                continue;
            const char *s = json_string_value(v);
            int codeish = 1;
            for (const char *p = s; *p; p++)
                if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-')) codeish = 0;
            if (!codeish) continue;
            const eg_catalog_entry_t *ent = cat ? eg_catalog_lookup(cat, s, strlen(s)) : NULL;
            rc = eg_error_set(e, EG_S_CODE, ent ? ent->code : s);
            break;
        }
        for (size_t i = 0; !rc && i < sizeof(message_names) / sizeof(message_names[0]); i++) {
            json_t *v = json_object_get(doc, message_names[i]);
            if (json_is_string(v) && json_string_length(v) > 0) {
                char ex[EG_EXCERPT_MAX + 1];
                size_t n = eg_excerpt(json_string_value(v), json_string_length(v), ex, sizeof(ex));
                rc = eg_error_setn(e, EG_S_MESSAGE, ex, n);
                break;
            }
        }
        if (!rc) {
            eg_error_clear_details(e);
            e->details = json_incref(doc);
        }
    } else if (!rc) {
        rc = eg_error_set_detail(e, "body", json_incref(doc));
    }
    (void)status;
    return rc;
}

int eg_parse_body(const char *body, size_t len, const eg_dialects_t *set,
                  const eg_dialect_t *from, const eg_catalog_t *cat, int http_status,
                  eg_error_t **out, eg_body_info_t *info)
{
    eg_body_info_t scratch;
    if (!info) info = &scratch;
    memset(info, 0, sizeof(*info));
    info->json_position = -1;
    eg_jr_doc_t jd;
    int prc = eg_jr_parse(&jd, body ? body : "", len); /* an empty body is not JSON */
    if (prc == EG_ENOMEM) {
        eg_jr_free(&jd);
        return EG_ENOMEM;
    }
    int is_json = prc == EG_OK;
    if (!is_json && len) {
        /* jansson words the failure and says where; the tape reader refuses
         * exactly what jansson refuses, so this is the same verdict */
        json_error_t je;
        json_t *again = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        int accepted = again != NULL;
        char *canon = again ? json_dumps(again, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(again);
        if (canon && (strlen(canon) != len || memcmp(canon, body, len) != 0)) {
            /* the two disagree (the differential fuzzer has found no input
             * where they do): jansson's reading wins, through its compact
             * text; that text differs from this one, so this recurses once */
            eg_jr_free(&jd);
            int rc = eg_parse_body(canon, strlen(canon), set, from, cat, http_status, out, info);
            free(canon);
            return rc;
        }
        if (accepted) {
            free(canon);
            info->json_line = jd.line;
            info->json_column = jd.column;
            info->json_position = jd.position;
            snprintf(info->json_error, sizeof(info->json_error), "invalid JSON");
        } else {
            info->json_line = je.line;
            info->json_column = je.column;
            info->json_position = je.position;
            snprintf(info->json_error, sizeof(info->json_error), "%s", je.text);
        }
    }
    if (from) {
        int rc = is_json ? eg__parse_tape(&jd, from, cat, http_status, out) : EG_EPARSE;
        eg_jr_free(&jd);
        if (rc == EG_OK) {
            info->kind = EG_BODY_DIALECT;
            info->dialect = from;
        }
        return rc;
    }
    if (is_json && set) {
        const eg_dialect_t *d = eg__dialects_detect_tape(set, &jd);
        if (d && eg__parse_tape_detected(&jd, d, cat, http_status, out) == EG_OK) {
            eg_jr_free(&jd);
            info->kind = EG_BODY_DIALECT;
            info->dialect = d;
            return EG_OK;
        }
    }
    int status = http_status >= 400 && http_status <= 599 ? http_status : 502;
    eg_error_t *e = eg_error_new();
    int rc = e ? EG_OK : EG_ENOMEM;
    json_t *doc = NULL;
    if (!rc) {
        e->status = status;
        if (is_json) {
            info->kind = EG_BODY_JSON;
            doc = eg_jr_to_json(&jd, jd.toks);
            rc = doc ? from_unknown_json(cat, doc, status, e) : EG_ENOMEM;
        } else {
            info->kind = EG_BODY_TEXT;
            char ex[EG_EXCERPT_MAX + 1];
            size_t n = eg_excerpt(body ? body : "", len, ex, sizeof(ex));
            if (n) rc = eg_error_setn(e, EG_S_MESSAGE, ex, n);
        }
    }
    eg_jr_free(&jd);
    if (!rc && !e->s[EG_S_CODE]) {
        const eg_catalog_entry_t *ent = cat ? eg_catalog_for_status(cat, status) : NULL;
        rc = eg_error_set(e, EG_S_CODE, ent ? ent->code : "error");
        if (!rc && ent && !e->s[EG_S_MESSAGE]) rc = eg_error_set(e, EG_S_MESSAGE, ent->message);
    }
    json_decref(doc);
    if (rc) {
        eg_error_free(e);
        return rc;
    }
    *out = e;
    return EG_OK;
}
