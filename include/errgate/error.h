/* error.h - the canonical error model.
 *
 * One struct holds the union of what every dialect can say about an error:
 * HTTP status, canonical code, type (category), title, message, field errors,
 * a free-form details object, request id, timestamp, retry-after, instance,
 * docs link and meta (members no dialect knows, kept so nothing is dropped).
 *
 * Ownership: an eg_error_t owns everything it points to. Strings are copied
 * into the error's own arena by the setters; `details`, `meta` and the json
 * members of field errors are jansson values holding one reference owned by
 * the error. eg_error_free() releases all of it at once. Readers may look at
 * the struct directly; writers go through the setters.
 */
#ifndef ERRGATE_ERROR_H
#define ERRGATE_ERROR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "common.h"

/* String attributes of an error, indexable so dialect templates can name them. */
typedef enum {
    EG_S_CODE = 0,   /* canonical code (snake_case) or an unknown code kept as sent */
    EG_S_TYPE,       /* category, e.g. "authentication_error" */
    EG_S_TITLE,      /* short summary, e.g. "Not Found" */
    EG_S_MESSAGE,    /* human-readable message / RFC 9457 detail */
    EG_S_REQUEST_ID, /* request id, e.g. "req_abc123" */
    EG_S_TIMESTAMP,  /* RFC 3339 UTC time the error happened */
    EG_S_INSTANCE,   /* URI of this occurrence (RFC 9457 instance) */
    EG_S_DOCS,       /* documentation link for the code (RFC 9457 type) */
    EG_S__COUNT
} eg_str_t;

/* String attributes of a field error. */
typedef enum {
    EG_F_FIELD = 0,   /* field name, e.g. "email" or "address.city" */
    EG_F_POINTER,     /* JSON pointer, e.g. "/data/attributes/email" */
    EG_F_PARAMETER,   /* query parameter, e.g. "page[number]" */
    EG_F_HEADER,      /* request header, e.g. "Authorization" */
    EG_F_MESSAGE,     /* what is wrong with it */
    EG_F_CONSTRAINT,  /* violated rule, e.g. "required", "min_length" */
    EG_F__COUNT
} eg_fstr_t;

typedef struct {
    const char *s[EG_F__COUNT]; /* NULL when absent */
    uint32_t len[EG_F__COUNT];  /* strlen of each, kept by the setters */
    uint32_t plain;             /* bit i: s[i] needs no JSON escaping (the setters check once) */
    json_t *value;              /* offending value: NULL = absent, json null = explicit null */
    json_t *extra;              /* object or NULL: bounds (min_length, max_length,
                                   actual_length, min, max, ...) and any other member */
} eg_field_error_t;

typedef struct eg_arena_chunk_s eg_arena_chunk_t;

/* A details member kept as JSON text, as a parser read it, instead of a
 * jansson value: translating an upstream error then never builds a tree for
 * context it only passes on. Key and text live in the error's arena. */
typedef struct {
    const char *key;  /* unescaped UTF-8, NUL-terminated */
    const char *json; /* the value's JSON text: valid, UTF-8 */
    uint32_t keylen, jsonlen;
} eg_raw_member_t;

typedef struct eg_error_s {
    int status;              /* HTTP status; 0 = not set (catalog decides) */
    long long retry_after;   /* seconds; -1 = absent */
    const char *s[EG_S__COUNT];
    uint32_t len[EG_S__COUNT]; /* strlen of each, kept by the setters */
    uint32_t plain;            /* bit i: s[i] needs no JSON escaping, checked once by the
                                  setters so every rendering is a plain copy */
    eg_field_error_t *fields;
    size_t nfields;
    size_t capfields;
    json_t *details;         /* object or NULL: free-form context; read it through
                                eg_error_details()/eg_error_details_get(), since
                                the members may still be in raw[] */
    eg_raw_member_t *raw;    /* details not yet made jansson values, in order;
                                never non-empty together with `details`; in
                                the arena (freed with the error) */
    size_t nraw, capraw;
    json_t *meta;            /* object or NULL: members no dialect knows */
    eg_arena_chunk_t *arena; /* private */
    /* private: the catalog entry of s[EG_S_CODE], remembered by whoever looked
     * it up (eg_error_from_catalog, the parsers); valid only while s[EG_S_CODE]
     * is still that same pointer, so any setter call invalidates it */
    const void *ent_cat;
    const void *ent;
    const char *ent_code;
} eg_error_t;

/* eg_error_new allocates an empty error (status 0, retry_after -1).
 * Returns NULL when out of memory. Free with eg_error_free(). */
eg_error_t *eg_error_new(void);

/* eg_error_free releases the error and everything it owns. NULL is fine. */
void eg_error_free(eg_error_t *e);

/* eg_error_code_valid: s[0..n) is a code that may appear in a header
 * (X-Error-Code) as it is: 1..EG_CODE_MAX bytes of [A-Za-z0-9_.-]. A code
 * an upstream sent that is not is replaced by the catalog's for its status,
 * so nothing from outside can split a response head. */
#define EG_CODE_MAX 64
int eg_error_code_valid(const char *s, size_t n);

/* eg_error_set copies `v` (may be NULL to clear) into attribute `which`.
 * eg_error_setn does the same for a string of length n (need not be NUL-ended). */
int eg_error_set(eg_error_t *e, eg_str_t which, const char *v);
/* eg_error_setn for a string whose escaping the caller already knows (the
 * catalog's own strings: eg_catalog_entry_t.plain); plain = 1 claims it
 * needs none, 0 has it checked as usual. */
int eg_error_setn_known(eg_error_t *e, eg_str_t which, const char *v, size_t n, int plain);
int eg_error_setn(eg_error_t *e, eg_str_t which, const char *v, size_t n);
/* eg_error_set_static sets attribute `which` to the NUL-ended `v` without
 * copying it: the caller guarantees that v outlives e and does not change
 * while e is alive (literals, a catalog's strings, a buffer freed after e).
 * plain = 1 claims it needs no JSON escaping, 0 has it checked. */
int eg_error_set_static(eg_error_t *e, eg_str_t which, const char *v, size_t n, int plain);
int eg_error_setf(eg_error_t *e, eg_str_t which, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline const char *eg_error_get(const eg_error_t *e, eg_str_t which)
{
    return e->s[which];
}

void eg_error_set_status(eg_error_t *e, int status);
void eg_error_set_retry_after(eg_error_t *e, long long seconds);

/* eg_error_add_field appends a field error and returns it (owned by `e`) with
 * all members unset, or NULL when out of memory. Fill it with
 * eg_field_set(); set value/extra with eg_field_set_value()/eg_field_extra(). */
eg_field_error_t *eg_error_add_field(eg_error_t *e);
int eg_field_set(eg_error_t *e, eg_field_error_t *f, eg_fstr_t which, const char *v);
int eg_field_setn(eg_error_t *e, eg_field_error_t *f, eg_fstr_t which, const char *v,
                  size_t n);
/* Takes (steals) the reference to `v`. */
void eg_field_set_value(eg_field_error_t *f, json_t *v);
/* Returns the field error's extra object, creating it; borrowed reference. */
json_t *eg_field_extra(eg_field_error_t *f);

/* eg_error_details / eg_error_meta return the object, creating it if needed
 * (borrowed reference; NULL only when out of memory). eg_error_details turns
 * raw members into jansson values first. eg_error_details_get does the same
 * but returns NULL, creating nothing, when there are no details. */
json_t *eg_error_details(eg_error_t *e);
json_t *eg_error_details_get(eg_error_t *e);
json_t *eg_error_meta(eg_error_t *e);
/* Sets details[key] = v, stealing the reference to v. Until the details
 * are needed as an object (eg_error_details), v is kept as JSON text. */
int eg_error_set_detail(eg_error_t *e, const char *key, json_t *v);
/* details[key] = the string v[0..n) or the integer v, without making a
 * jansson value while the details are raw. */
int eg_error_set_detail_str(eg_error_t *e, const char *key, const char *v, size_t n);
int eg_error_set_detail_int(eg_error_t *e, const char *key, long long v);
/* 1 when the error has at least one details member (raw or not). */
int eg_error_has_details(const eg_error_t *e);
/* Keeps details[key] = the JSON text json[0..jn), which must be one valid
 * JSON value in UTF-8 (a parser vouches for it); copied into the arena.
 * Raw while the details are, else parsed into a jansson value. A key already
 * there has its value replaced in place. */
int eg_error_keep_detail_raw(eg_error_t *e, const char *key, size_t kn, const char *json, size_t jn);
/* Removes details[key] if present; returns 1 when it was. */
int eg_error_del_detail(eg_error_t *e, const char *key);
/* Drops every details member. */
void eg_error_clear_details(eg_error_t *e);

/* eg_error_strdup copies a string into the error's arena (it lives as long as
 * the error); NULL when out of memory. For callers that build their own
 * attributes. */
char *eg_error_strdup(eg_error_t *e, const char *s, size_t n);

/* eg_error_clone makes a deep copy; NULL when out of memory. */
eg_error_t *eg_error_clone(const eg_error_t *e);

/* eg_error_set_now sets the timestamp to `unix_seconds` as RFC 3339 UTC. */
int eg_error_set_time(eg_error_t *e, long long unix_seconds);

/* eg_reason_phrase returns the standard reason phrase for an HTTP status
 * ("Not Found") or "Unknown Status"; static storage. */
const char *eg_reason_phrase(int status);

#endif
