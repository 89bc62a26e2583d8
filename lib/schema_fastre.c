/* schema_fastre.c - the common anchored patterns matched without PCRE2.
 *
 * Request schemas mostly carry patterns like ^[A-Z0-9]{4,12}$,
 * ^[A-Z]{3}-[0-9]{4}$ or ^\+[1-9][0-9]{6,14}$: a sequence of ASCII
 * classes (or literals), each with a count, anchored at both ends. A call
 * into PCRE2's JIT costs about 280 instructions for them; walking the
 * subject once, a table lookup a byte (bit k of in[c]: c is in atom k's
 * class), costs a few per byte. Such a
 * pattern is recognised when the schema is compiled (anything else, and
 * anything this file is unsure of, stays PCRE2's) and is only taken when
 * greedy matching without backtracking gives PCRE2's answer: every atom
 * whose count can vary has a class disjoint from all the atoms after it,
 * so no character it takes could have let a later atom match. Classes hold
 * printable ASCII only, so a non-ASCII character (one code point for
 * PCRE2's UTF mode) fails any atom here as it fails there, and counts in
 * bytes are counts in characters. "$" is end-only (PCRE2_DOLLAR_ENDONLY).
 */
#include "schema_int.h"

#include <stdlib.h>
#include <string.h>

static void set_bit(eg_fastre_atom_t *a, unsigned c)
{
    a->cls[c >> 6] |= 1ull << (c & 63);
}

/* A literal the pattern may escape (ECMA's syntax characters and '-', '/'):
 * the character, or -1. \d and \w are classes, handled by the caller. */
static int escaped_literal(char c)
{
    return c && strchr("^$\\.*+?()[]{}|/-", c) ? (unsigned char)c : -1;
}

static int printable(unsigned c)
{
    return c >= 0x20 && c < 0x7f;
}

/* \d or \w into a; 0, or -1 for another escape. */
static int class_escape(eg_fastre_atom_t *a, char e)
{
    if (e == 'd') {
        for (unsigned c = '0'; c <= '9'; c++)
            set_bit(a, c);
        return 0;
    }
    if (e == 'w') {
        for (unsigned c = 0x20; c < 0x7f; c++)
            if ((c | 0x20) - 'a' < 26u || c - '0' < 10u || c == '_') set_bit(a, c);
        return 0;
    }
    return -1;
}

/* A bracket class at p[0] == '[' (not negated, printable ASCII, ranges, \d
 * \w and escaped literals): the index after its ']', or 0. */
static size_t parse_class(const char *p, size_t n, size_t i, eg_fastre_atom_t *a)
{
    i++;
    if (i < n && p[i] == '^') return 0;
    int prev = -1; /* the last single character, which a '-' may start a range from */
    int first = 1;
    while (i < n && (p[i] != ']' || first)) {
        int c;
        if (p[i] == ']') return 0; /* "[]" matches nothing in ECMA: PCRE2's */
        if (p[i] == '\\') {
            if (i + 1 >= n) return 0;
            if (p[i + 1] == 'd' || p[i + 1] == 'w') {
                if (class_escape(a, p[i + 1])) return 0;
                prev = -1;
                i += 2;
                first = 0;
                continue;
            }
            if ((c = escaped_literal(p[i + 1])) < 0) return 0;
            i += 2;
        } else {
            c = (unsigned char)p[i++];
            if (c == '-' && prev >= 0 && i < n && p[i] != ']') { /* a range prev-hi */
                int hi;
                if (p[i] == '\\') {
                    if (i + 1 >= n || (hi = escaped_literal(p[i + 1])) < 0) return 0;
                    i += 2;
                } else if (p[i] == '[') {
                    return 0;
                } else {
                    hi = (unsigned char)p[i++];
                }
                if (!printable((unsigned)hi) || hi < prev) return 0;
                for (int k = prev; k <= hi; k++)
                    set_bit(a, (unsigned)k);
                prev = -1;
                first = 0;
                continue;
            }
            if (c == '[') return 0; /* POSIX classes and the like */
        }
        if (!printable((unsigned)c)) return 0;
        set_bit(a, (unsigned)c);
        prev = c;
        first = 0;
    }
    if (i >= n || first) return 0;
    return i + 1;
}

/* A quantifier at p[i]: sets min/max, returns the index after it (i when
 * there is none), or 0 on one this file does not take ({,n}, lazy ones). */
static size_t parse_count(const char *p, size_t n, size_t i, eg_fastre_atom_t *a)
{
    a->min = a->max = 1;
    if (i >= n) return i;
    size_t j = i + 1;
    switch (p[i]) {
    case '*':
        a->min = 0, a->max = UINT32_MAX;
        break;
    case '+':
        a->min = 1, a->max = UINT32_MAX;
        break;
    case '?':
        a->min = 0, a->max = 1;
        break;
    case '{': {
        uint64_t m = 0, x;
        size_t d = j;
        while (j < n && p[j] >= '0' && p[j] <= '9' && m < 100000)
            m = m * 10 + (uint64_t)(p[j++] - '0');
        if (j == d || j >= n) return 0;
        x = m;
        if (p[j] == ',') {
            j++;
            if (j < n && p[j] == '}') {
                x = UINT32_MAX;
            } else {
                x = 0;
                d = j;
                while (j < n && p[j] >= '0' && p[j] <= '9' && x < 100000)
                    x = x * 10 + (uint64_t)(p[j++] - '0');
                if (j == d) return 0;
            }
        }
        if (j >= n || p[j] != '}' || m >= 100000 || (x != UINT32_MAX && (x >= 100000 || x < m)))
            return 0;
        j++;
        a->min = (uint32_t)m;
        a->max = (uint32_t)x;
        break;
    }
    default:
        return i;
    }
    if (j < n && (p[j] == '?' || p[j] == '+' || p[j] == '*' || p[j] == '{')) return 0;
    return j;
}

eg_fastre_t *eg_fastre_compile(const char *p, size_t n)
{
    if (n < 2 || p[0] != '^' || p[n - 1] != '$' || (n >= 3 && p[n - 2] == '\\')) return NULL;
    eg_fastre_atom_t atoms[EG_FASTRE_MAX];
    size_t na = 0, i = 1, end = n - 1;
    while (i < end) {
        if (na == EG_FASTRE_MAX) return NULL;
        eg_fastre_atom_t *a = &atoms[na];
        memset(a, 0, sizeof(*a));
        char c = p[i];
        if (c == '[') {
            size_t j = parse_class(p, end, i, a);
            if (!j) return NULL;
            i = j;
        } else if (c == '\\') {
            if (i + 1 >= end) return NULL;
            int l;
            if (p[i + 1] == 'd' || p[i + 1] == 'w') {
                if (class_escape(a, p[i + 1])) return NULL;
            } else if ((l = escaped_literal(p[i + 1])) >= 0) {
                set_bit(a, (unsigned)l);
            } else {
                return NULL;
            }
            i += 2;
        } else if (strchr("^$.*+?()[]{}|", c) || !printable((unsigned char)c)) {
            return NULL;
        } else {
            set_bit(a, (unsigned char)c);
            i++;
        }
        size_t j = parse_count(p, end, i, a);
        if (!j) return NULL;
        i = j;
        na++;
    }
    if (!na) return NULL;
    /* greedy is exact only when a varying atom's class meets no later one */
    uint64_t later0 = 0, later1 = 0;
    for (size_t k = na; k-- > 0;) {
        const eg_fastre_atom_t *a = &atoms[k];
        if (a->min != a->max && ((a->cls[0] & later0) || (a->cls[1] & later1))) return NULL;
        later0 |= a->cls[0];
        later1 |= a->cls[1];
    }
    eg_fastre_t *f = malloc(sizeof(*f) + na * sizeof(atoms[0]));
    if (!f) return NULL;
    f->n = (uint32_t)na;
    memcpy(f->atoms, atoms, na * sizeof(atoms[0]));
    for (unsigned c = 0; c < 256; c++) {
        f->in[c] = 0;
        for (size_t k = 0; c < 0x80 && k < na; k++)
            if (atoms[k].cls[c >> 6] >> (c & 63) & 1) f->in[c] |= (uint16_t)(1u << k);
    }
    return f;
}

int eg_fastre_match(const eg_fastre_t *f, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    if (f->n == 1) { /* ^[class]{min,max}$ (the commonest): its length, then every byte */
        if (n < f->atoms[0].min || n > f->atoms[0].max) return 0;
        for (; n - i >= 4; i += 4)
            if (!(f->in[u[i]] & f->in[u[i + 1]] & f->in[u[i + 2]] & f->in[u[i + 3]] & 1u)) return 0;
        for (; i < n; i++)
            if (!(f->in[u[i]] & 1u)) return 0;
        return 1;
    }
    for (uint32_t k = 0; k < f->n; k++) {
        const eg_fastre_atom_t *a = &f->atoms[k];
        size_t st = i, lim = n - i < a->max ? n : i + a->max;
        unsigned bit = 1u << k;
        /* four bytes a test while they are all in the class: the same greedy end */
        while (lim - i >= 4 &&
               (f->in[u[i]] & f->in[u[i + 1]] & f->in[u[i + 2]] & f->in[u[i + 3]] & bit))
            i += 4;
        while (i < lim && (f->in[u[i]] & bit))
            i++;
        if (i - st < a->min) return 0;
    }
    return i == n;
}
