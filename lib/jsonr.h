/* jsonr.h - a strict, fast JSON reader onto a flat token "tape" (internal).
 *
 * Accepts exactly the documents that jansson 2.14's
 * json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err)
 * accepts, with the same values, so that hot paths (an upstream error body)
 * can skip building a jansson tree; eg_jr_to_json() builds one when needed.
 * One pass, no allocation while the document has at most 128 tokens.
 *
 * What that acceptance means: RFC 8259 grammar; any value at top level with
 * whitespace (space, tab, CR, LF) around it and nothing after; duplicate keys
 * in one object rejected (compared unescaped); strings with no raw control
 * character, valid UTF-8 only, \u escapes with surrogate pairs combined, no
 * lone surrogate and no \u0000; integers must fit in long long ("-0" is the
 * integer 0); a real that overflows a double is rejected (underflow is not);
 * at most 2048 nested values (a scalar counts as one level). And one jansson
 * quirk: a single NUL byte right after a number or a literal is skipped
 * ("[1\0]" is [1]), because jansson's lexer loses a NUL it puts back.
 *
 * Iterating over an object's members (an array's items likewise, without
 * the key):
 *
 *     const eg_jr_tok_t *k = obj + 1;
 *     for (uint32_t i = 0; i < obj->count; i++) {
 *         const eg_jr_tok_t *v = k + 1;
 *         ... k is the key (a STRING token), v its value ...
 *         k = doc->toks + v->end;
 *     }
 */
#ifndef EG_JSONR_H
#define EG_JSONR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "errgate/common.h"

#define EG_JR_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

typedef enum {
    EG_JR_NULL = 0,
    EG_JR_FALSE,
    EG_JR_TRUE,
    EG_JR_INT,
    EG_JR_REAL,
    EG_JR_STRING,
    EG_JR_ARRAY,
    EG_JR_OBJECT
} eg_jr_type_t;

typedef struct {
    uint8_t type;      /* eg_jr_type_t */
    uint8_t escaped;   /* STRING: the text has backslash escapes (use eg_jr_str to read it) */
    uint32_t off, len; /* bytes in the input: a STRING's contents without the quotes; a number's
                          or literal's text; a container's whole text from '{' / '[' to the
                          matching '}' / ']' inclusive */
    uint32_t end;      /* index of the first token after this value's whole subtree */
    uint32_t count;    /* OBJECT: number of members; ARRAY: number of items */
    union {
        long long ival; /* INT: the value */
        double dval;    /* REAL: the value, as strtod() reads the text */
    };
} eg_jr_tok_t;

/* Tape order: a value is one token; an OBJECT token is followed by, for each member in
   document order, its key (a STRING token) and then the value's subtree; an ARRAY token
   is followed by its items' subtrees. toks[0] is the document's root value.
   toks may point into the doc itself (small): do not copy an eg_jr_doc_t. */
typedef struct {
    const char *text; /* the input (borrowed; must outlive the doc) */
    size_t len;
    eg_jr_tok_t *toks;
    size_t ntoks, cap;
    eg_jr_tok_t small[128]; /* used before anything is allocated: a typical error body or 1 KB
                               request body (about 100 tokens) needs no malloc */
    /* on failure: */
    int line, column; /* 1-based, as jansson counts them (column in code points; 0 at a line's
                         start or in an empty input) */
    long position;    /* byte offset of the failure, as jansson counts it */
} eg_jr_doc_t;

/* Parses text[0..len) into doc (which the caller provides, e.g. on the stack; no prior init
   needed). Returns 0, EG_EPARSE (invalid JSON; doc->line/column/position set), or EG_ENOMEM
   (also for an input of 4 GiB or more, which token offsets cannot address).
   Call eg_jr_free() afterwards in every case. */
int eg_jr_parse(eg_jr_doc_t *doc, const char *text, size_t len);
void eg_jr_free(eg_jr_doc_t *doc);

/* A string token's value, unescaped (UTF-8), into buf; returns its length (may exceed cap:
   then the buffer holds a truncated prefix, like snprintf; no NUL added). For a token with
   escaped == 0 this is just doc->text + tok->off, tok->len (callers use that directly).
   The unescaped value is never longer than tok->len. */
size_t eg_jr_str(const eg_jr_doc_t *doc, const eg_jr_tok_t *tok, char *buf, size_t cap);

/* The member `key` (klen bytes, unescaped) of an OBJECT token: the value token, or NULL
   (also when obj is not an object). */
const eg_jr_tok_t *eg_jr_get(const eg_jr_doc_t *doc, const eg_jr_tok_t *obj, const char *key,
                             size_t klen);

/* 1 when the STRING token's unescaped value equals s[0..n). No allocation. */
int eg_jr_str_eq(const eg_jr_doc_t *doc, const eg_jr_tok_t *tok, const char *s, size_t n);

/* eg_jr_str_eq for a member name: lengths and the first byte decide most
 * comparisons inline, and an escaped key (rare) takes the full path. */
static inline int eg_jr_key_is(const eg_jr_doc_t *doc, const eg_jr_tok_t *k, const char *s, size_t n)
{
    if (k->escaped) return eg_jr_str_eq(doc, k, s, n);
    return k->len == n && (n == 0 || (doc->text[k->off] == s[0] && memcmp(doc->text + k->off, s, n) == 0));
}

/* For the streaming reader (schema_stream.c), which must read exactly as
 * eg_jr_parse does: the unescaped value of a string's raw text (validated
 * already), as eg_jr_str; a number token from its whole text (0, EG_EPARSE
 * as eg_jr_parse would refuse it, EG_ENOMEM); and how far jansson's lexer
 * reads from the token at p when it fails there (text[0..len) being what
 * there is from the start of input, or from p on with p = 0). */
size_t eg_jr_unescape(const char *text, size_t len, char *buf, size_t cap);
int eg_jr_number(const char *text, size_t len, eg_jr_tok_t *t);
size_t eg_jr_lexer_stop(const char *text, size_t len, size_t p);

/* A new jansson value (one reference, caller owns) equal to the subtree at tok, or NULL when
   out of memory. json_equal() to what json_loadb makes of the same text. */
json_t *eg_jr_to_json(const eg_jr_doc_t *doc, const eg_jr_tok_t *tok);

#endif
