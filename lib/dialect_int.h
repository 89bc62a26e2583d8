/* dialect_int.h - the compiled form of a dialect template (private).
 *
 * A dialect's `body:` YAML compiles into a tree of nodes: objects whose
 * members are slots (one attribute of the error or of the current field
 * error), nested objects, or a split array (JSON:API's one-object-per-error).
 * An object may also say where field errors go ($fields) and where free-form
 * details, meta and a field error's extra members are merged.
 * render.c walks the tree to write JSON; parse.c walks it to read JSON back.
 */
#ifndef EG_DIALECT_INT_H
#define EG_DIALECT_INT_H

#include <stdint.h>

#include "errgate/dialect.h"
#include "jsonr.h"

/* Slot ids. 0..EG_S__COUNT-1 are the error's string attributes (eg_str_t). */
enum {
    EG_SL_STATUS = EG_S__COUNT,
    EG_SL_RETRY_AFTER,
    EG_SL_F_BASE, /* + eg_fstr_t: the current field error's strings */
    EG_SL_F_VALUE = EG_SL_F_BASE + EG_F__COUNT,
    EG_SL_FIELD_POINTER, /* pointer made from the field name and pointer_prefix */
    EG_SL_POINTER_FIELD, /* field name derived from the pointer */
    EG_SL__COUNT
};

#define EG_CHAIN_MAX 6

typedef struct {
    int chain[EG_CHAIN_MAX]; /* first that has a value is written; parse fills chain[0] */
    int n;
    int as_string;           /* status written as "404" */
    int fallback_catalog;    /* unset -> catalog / reason phrase default */
    char *deflt;             /* literal when nothing else has a value */
    int when_summary;        /* written only as a summary: the error has field errors and
                                its message is none of theirs (JSON:API's top-level meta) */
} eg_tslot_t;

typedef enum { EG_T_OBJECT, EG_T_SLOT, EG_T_SPLIT } eg_tkind_t;
typedef enum { EG_FS_LIST, EG_FS_MAP, EG_FS_FLAT } eg_fstyle_t;

typedef struct eg_tnode_s eg_tnode_t;

typedef struct {
    eg_fstyle_t style;
    char *key;       /* list/map: member holding them; flat: item member that marks one */
    char *list_key;  /* flat: member for the list when there are several */
    eg_tnode_t *item;                /* list/flat: item template (object) */
    eg_tslot_t name;                 /* map: the member name of each field */
} eg_tfields_t;

typedef struct {
    char *name;
    size_t namelen;
    char *key;      /* pre-escaped `,"name":` so rendering a key is one copy */
    size_t keylen;  /* length of key including the leading comma */
    uint32_t needs; /* copies of node->needs, ->kind and ->slot (the default */
    eg_tkind_t kind; /* literal stays owned by the node), so the render loop */
    eg_tslot_t slot; /* needs no pointer chase for the common case */
    eg_tnode_t *node;
} eg_tmember_t;

/* Bits of eg_tnode_t.needs beyond the slot ids: what else can make a node
 * write something. Rendering skips an object whose needs meet nothing the
 * error has, without writing and rolling back its key. */
#define EG_NEED_DETAILS (1u << 24)
#define EG_NEED_META (1u << 25)
#define EG_NEED_EXTRA (1u << 26)
#define EG_NEED_FIELDS (1u << 27)
#define EG_NEED_ALWAYS (1u << 28)

struct eg_tnode_s {
    eg_tkind_t kind;
    uint32_t needs;          /* slot-id bits and EG_NEED_* this node may write from */
    eg_tslot_t slot;         /* EG_T_SLOT */
    eg_tmember_t *members;   /* EG_T_OBJECT */
    size_t n;
    int merge_details, merge_meta, merge_extra;
    eg_tfields_t *fields;
    eg_tnode_t *item;        /* EG_T_SPLIT: item template (object) */
};

typedef enum { EG_CASE_KEEP, EG_CASE_UPPER, EG_CASE_LOWER } eg_case_t;

typedef struct {
    char *code;
    int status;
} eg_override_t;

/* One code_map pair: the gateway's precise code `from` is answered as the
 * page's coarser `to` (docs/dialects.md). */
typedef struct {
    char *from;
    char *to;
} eg_codemap_t;

struct eg_dialect_s {
    char *name;
    char *summary;
    char *media_type;
    char *pointer_prefix;
    eg_case_t code_case;
    eg_override_t *overrides;
    size_t noverrides;
    eg_codemap_t *cmap;
    size_t ncmap;
    eg_codemap_t *dnames; /* detail_names: the model's details member `from` is `to` here */
    size_t ndnames;
    eg_tnode_t *body;
};

/* A details member's name in d (detail_names), model -> dialect when
 * to_dialect, else back; the name itself when d does not rename it. */
const char *eg__dialect_detail_name(const eg_dialect_t *d, const char *name, size_t n, int to_dialect,
                                    size_t *outlen);
/* The code d answers `code` (catalog entry ent, may be NULL) with: its
 * code_map, else the catalog's answered_as for d; NULL when d keeps it. */
const char *eg__dialect_answer(const eg_dialect_t *d, const eg_catalog_t *cat, const eg_catalog_entry_t *ent,
                               const char *code);
/* d's own code_map pair for `code` (a pair to itself: keep), or NULL. */
const char *eg__dialect_mapped(const eg_dialect_t *d, const char *code);

/* eg_dialect_status() with the catalog entry of e's code already looked up (may be NULL). */
int eg__dialect_status_ent(const eg_dialect_t *d, const eg_catalog_entry_t *ent,
                           const eg_error_t *e);

/* How d spells a code whose catalog entry is ent (NULL: not in the
 * catalog): the source string, and in *cs the casing to apply to it. The
 * entry's spelling for d is used as written, a catalog code is put in d's
 * case, an unknown code is kept exactly as sent. The X-Error-Code header
 * and the rendered body both spell codes through this, so they agree. */
const char *eg__dialect_code_src(const eg_dialect_t *d, const eg_catalog_entry_t *ent, const char *code,
                                 eg_case_t *cs);
/* Copies n bytes of src to dst in casing cs, ASCII only: a code's case must
 * not follow the process locale. */
void eg__code_recase(char *dst, const char *src, size_t n, eg_case_t cs);

/* The tape-reading forms of eg_parse_json, eg_dialect_match and
 * eg_dialects_detect (parse.c, dialect.c): the same, over jsonr's tokens. */
int eg__parse_tape(const eg_jr_doc_t *doc, const eg_dialect_t *d, const eg_catalog_t *cat,
                   int http_status, eg_error_t **out);
/* The same for a document eg__dialects_detect_tape chose `d` for. */
int eg__parse_tape_detected(const eg_jr_doc_t *doc, const eg_dialect_t *d, const eg_catalog_t *cat,
                            int http_status, eg_error_t **out);
int eg__dialect_match_tape(const eg_dialect_t *d, const eg_jr_doc_t *doc);
const eg_dialect_t *eg__dialects_detect_tape(const eg_dialects_t *set, const eg_jr_doc_t *doc);

/* Names of slots as written in dialect files ("message", "field.pointer"). */
const char *eg__slot_name(int slot);

#endif
