/* format.c - the "format" values of JSON Schema and OpenAPI (see format.h).
 *
 * Each check is a hand-written recognizer for the grammar of its RFC, one
 * left-to-right pass over the bytes with no backtracking, so its time is
 * linear and it reads nothing outside s[0..n) (the string is not
 * NUL-terminated). Nothing is allocated, except for "regex", which is
 * answered by compiling the pattern with PCRE2 (the engine the schema's
 * "pattern" keyword uses, so a pattern the format accepts is one a schema
 * could use) and freeing it at once.
 *
 * Where the JSON Schema Test Suite and the RFC disagree with a lenient
 * reading, the RFC wins: non-ASCII digits are not digits, "t"/"z" are
 * accepted where RFC 3339 says they are case-insensitive, an IPv4 part
 * with a leading zero is refused (it reads as octal to inet_aton).
 */
#include "format.h"

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "errgate/common.h"
#include "format_tables.h"

/* Names in the order of eg_format_t, so that a name is names[f]; the
 * annotation-only ones follow and all map to EG_FMT_ANNOTATION. */
static const char *const names[] = {
    [EG_FMT_NONE] = "",
    [EG_FMT_DATE] = "date",
    [EG_FMT_DATE_TIME] = "date-time",
    [EG_FMT_TIME] = "time",
    [EG_FMT_EMAIL] = "email",
    [EG_FMT_UUID] = "uuid",
    [EG_FMT_URI] = "uri",
    [EG_FMT_URI_REFERENCE] = "uri-reference",
    [EG_FMT_HOSTNAME] = "hostname",
    [EG_FMT_IPV4] = "ipv4",
    [EG_FMT_IPV6] = "ipv6",
    [EG_FMT_REGEX] = "regex",
    [EG_FMT_JSON_POINTER] = "json-pointer",
    [EG_FMT_INT32] = "int32",
    [EG_FMT_INT64] = "int64",
    [EG_FMT_ISO3166] = "iso3166",
    [EG_FMT_ISO639] = "iso639",
    [EG_FMT_ANNOTATION] = "annotation",
};

/* OpenAPI's formats that describe rather than constrain: known, so a
 * schema using them loads, and never asserted. */
static const char *const annotations[] = {"float", "double", "byte", "binary", "password"};

int eg_format_lookup(const char *name, size_t n, eg_format_t *out)
{
    if (!name) return EG_ENOENT;
    for (int f = EG_FMT_DATE; f < EG_FMT_ANNOTATION; f++)
        if (strlen(names[f]) == n && memcmp(names[f], name, n) == 0) {
            *out = (eg_format_t)f;
            return EG_OK;
        }
    for (size_t i = 0; i < sizeof(annotations) / sizeof(annotations[0]); i++)
        if (strlen(annotations[i]) == n && memcmp(annotations[i], name, n) == 0) {
            *out = EG_FMT_ANNOTATION;
            return EG_OK;
        }
    return EG_ENOENT;
}

const char *eg_format_name(eg_format_t f)
{
    if ((unsigned)f > EG_FMT_ANNOTATION) return "";
    return names[f];
}

/* ---- character classes (ASCII only: non-ASCII digits are not digits) ---- */

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The value of the 2 or 4 digits at s (all checked to be digits), or -1
 * (unrolled: dates and times are most of what formats check). */
static inline int dig2(const unsigned char *s)
{
    unsigned a = (unsigned)s[0] - '0', b = (unsigned)s[1] - '0';
    return a < 10 && b < 10 ? (int)(a * 10 + b) : -1;
}

static int digits(const unsigned char *s, size_t k)
{
    int hi = dig2(s);
    if (k == 2 || hi < 0) return hi;
    int lo = dig2(s + 2);
    return lo < 0 ? -1 : hi * 100 + lo;
}

/* ---- RFC 3339 dates and times ---- */

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return days[m - 1];
}

/* full-date = YYYY-MM-DD, a day that exists in the proleptic Gregorian
 * calendar (RFC 3339 5.7). Exactly 10 bytes. */
static int check_date(const unsigned char *s, size_t n)
{
    if (n != 10 || s[4] != '-' || s[7] != '-') return 0;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || m < 1 || m > 12 || d < 1) return 0;
    return d <= days_in_month(y, m);
}

/* full-time = HH:MM:SS[.frac](Z|+HH:MM|-HH:MM). A second of 60 is a leap
 * second, which only exists at 23:59 UTC: the offset is taken away first
 * (RFC 3339 5.7 and its appendix D), so "15:59:60-08:00" is one. */
static int check_time(const unsigned char *s, size_t n)
{
    if (n < 9 || s[2] != ':' || s[5] != ':') return 0;
    int h = digits(s, 2), m = digits(s + 3, 2), sec = digits(s + 6, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60) return 0;
    size_t i = 8;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == start) return 0;
    }
    if (i >= n) return 0; /* the offset is required */
    int off = 0;          /* minutes east of UTC */
    if (s[i] == 'Z' || s[i] == 'z') {
        if (i + 1 != n) return 0;
    } else if (s[i] == '+' || s[i] == '-') {
        if (n - i != 6 || s[i + 3] != ':') return 0;
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59) return 0;
        off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
    } else {
        return 0;
    }
    if (sec == 60) {
        int utc = ((h * 60 + m - off) % 1440 + 1440) % 1440;
        if (utc != 23 * 60 + 59) return 0;
    }
    return 1;
}

/* date-time = full-date "T" full-time; RFC 3339 5.6 lets the T be lower case. */
static int check_date_time(const unsigned char *s, size_t n)
{
    if (n < 11 || (s[10] != 'T' && s[10] != 't')) return 0;
    return check_date(s, 10) && check_time(s + 11, n - 11);
}

/* ---- identifiers ---- */

/* 8-4-4-4-12 hex digits in either case (RFC 9562 4: input is
 * case-insensitive); any version and variant, nil and max included. */
#if defined(__SSE2__) && defined(__GNUC__)
/* bit k: byte k of v is a hex digit (bytes from 0x80 are negative: none) */
static inline unsigned hex_mask16(__m128i v)
{
    __m128i lc = _mm_or_si128(v, _mm_set1_epi8(0x20)); /* 'A'-'F' as 'a'-'f' */
    __m128i dig = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
    __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lc, _mm_set1_epi8('a' - 1)),
                                  _mm_cmplt_epi8(lc, _mm_set1_epi8('f' + 1)));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(dig, alpha));
}
#endif

static int check_uuid(const unsigned char *s, size_t n)
{
    if (n != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return 0;
#if defined(__SSE2__) && defined(__GNUC__)
    /* the 36 bytes in three loads (0-15, 16-31, 20-35): every one but the
     * hyphens' a hex digit */
    const uint64_t want = 0xFFFFFFFFFull & ~(1ull << 8 | 1ull << 13 | 1ull << 18 | 1ull << 23);
    uint64_t hx =
        hex_mask16(_mm_loadu_si128((const __m128i *)(const void *)s)) |
        (uint64_t)hex_mask16(_mm_loadu_si128((const __m128i *)(const void *)(s + 16))) << 16 |
        (uint64_t)(hex_mask16(_mm_loadu_si128((const __m128i *)(const void *)(s + 20))) >> 12)
            << 32;
    return (hx & want) == want;
#else
    /* one load a byte and no branch in the loop: the 32 bytes other than
     * the hyphens all hex digits (a hyphen counts 0) */
    static const unsigned char hex[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
        ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
        ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1};
    unsigned k = 0;
    for (size_t i = 0; i < 36; i++)
        k += hex[s[i]];
    return k == 32;
#endif
}

/* RFC 6901: "" or "/"-prefixed tokens in which "~" is only "~0" or "~1". */
static int check_json_pointer(const unsigned char *s, size_t n)
{
    if (n == 0) return 1;
    if (s[0] != '/') return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1'))) return 0;
    return 1;
}

/* ---- addresses and names ---- */

/* dotted quad, each part 0-255 in decimal without a leading zero (a "010"
 * part means 8 to inet_aton and 10 to a reader: refusing it avoids the
 * ambiguity, as RFC 3986's dec-octet does). */
static int check_ipv4(const unsigned char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.') return 0;
            i++;
        }
        size_t start = i;
        int v = 0;
        while (i < n && is_digit(s[i]) && i - start < 3)
            v = v * 10 + (s[i++] - '0');
        size_t len = i - start;
        if (len == 0 || v > 255 || (len > 1 && s[start] == '0')) return 0;
    }
    return i == n;
}

/* RFC 4291 2.2: up to eight 1-4 digit hex groups, one "::" standing for
 * one or more zero groups, the last 32 bits optionally as a dotted quad.
 * No zone ("%eth0") and no brackets: those belong to URIs, not addresses. */
static int check_ipv6(const unsigned char *s, size_t n)
{
    int groups = 0, gap = 0;
    size_t i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 1;
        i = 2;
        if (i == n) return 1;
    } else if (n == 0 || s[0] == ':') {
        return 0;
    }
    for (;;) {
        /* a group, or the dotted quad that ends the address */
        size_t start = i;
        while (i < n && is_hex(s[i]) && i - start < 5)
            i++;
        if (i < n && s[i] == '.') {
            if (!check_ipv4(s + start, n - start)) return 0;
            groups += 2;
            i = n;
            break;
        }
        size_t len = i - start;
        if (len == 0 || len > 4) return 0;
        groups++;
        if (i == n) break;
        if (s[i] != ':') return 0;
        i++;
        if (i < n && s[i] == ':') {
            if (gap) return 0;
            gap = 1;
            i++;
            if (i == n) break;
        } else if (i == n) {
            return 0; /* a single trailing ':' */
        }
        if (groups > 8) return 0;
    }
    return gap ? groups <= 7 : groups == 8;
}

/* Byte classes of the host name and email checks, one load a byte:
 * HC_LABEL a host label's letter, digit or '-'; HC_ATEXT RFC 5322's atext
 * (letters, digits and !#$%&'*+-/=?^_`{|}~). */
#define HC_LABEL 1
#define HC_ATEXT 2
static unsigned char host_class(unsigned char c)
{
    static const unsigned char t[256] = {
        ['!'] = HC_ATEXT, ['#'] = HC_ATEXT, ['$'] = HC_ATEXT,
        ['%'] = HC_ATEXT, ['&'] = HC_ATEXT, ['\''] = HC_ATEXT,
        ['*'] = HC_ATEXT, ['+'] = HC_ATEXT, ['-'] = HC_ATEXT | HC_LABEL,
        ['/'] = HC_ATEXT, ['='] = HC_ATEXT, ['?'] = HC_ATEXT,
        ['^'] = HC_ATEXT, ['_'] = HC_ATEXT, ['`'] = HC_ATEXT,
        ['{'] = HC_ATEXT, ['|'] = HC_ATEXT, ['}'] = HC_ATEXT,
        ['~'] = HC_ATEXT,
#define HC_ALNUM(ch) [ch] = HC_ATEXT | HC_LABEL
        HC_ALNUM('0'),    HC_ALNUM('1'),    HC_ALNUM('2'),
        HC_ALNUM('3'),    HC_ALNUM('4'),    HC_ALNUM('5'),
        HC_ALNUM('6'),    HC_ALNUM('7'),    HC_ALNUM('8'),
        HC_ALNUM('9'),    HC_ALNUM('a'),    HC_ALNUM('b'),
        HC_ALNUM('c'),    HC_ALNUM('d'),    HC_ALNUM('e'),
        HC_ALNUM('f'),    HC_ALNUM('g'),    HC_ALNUM('h'),
        HC_ALNUM('i'),    HC_ALNUM('j'),    HC_ALNUM('k'),
        HC_ALNUM('l'),    HC_ALNUM('m'),    HC_ALNUM('n'),
        HC_ALNUM('o'),    HC_ALNUM('p'),    HC_ALNUM('q'),
        HC_ALNUM('r'),    HC_ALNUM('s'),    HC_ALNUM('t'),
        HC_ALNUM('u'),    HC_ALNUM('v'),    HC_ALNUM('w'),
        HC_ALNUM('x'),    HC_ALNUM('y'),    HC_ALNUM('z'),
        HC_ALNUM('A'),    HC_ALNUM('B'),    HC_ALNUM('C'),
        HC_ALNUM('D'),    HC_ALNUM('E'),    HC_ALNUM('F'),
        HC_ALNUM('G'),    HC_ALNUM('H'),    HC_ALNUM('I'),
        HC_ALNUM('J'),    HC_ALNUM('K'),    HC_ALNUM('L'),
        HC_ALNUM('M'),    HC_ALNUM('N'),    HC_ALNUM('O'),
        HC_ALNUM('P'),    HC_ALNUM('Q'),    HC_ALNUM('R'),
        HC_ALNUM('S'),    HC_ALNUM('T'),    HC_ALNUM('U'),
        HC_ALNUM('V'),    HC_ALNUM('W'),    HC_ALNUM('X'),
        HC_ALNUM('Y'),    HC_ALNUM('Z'),
#undef HC_ALNUM
    };
    return t[c];
}

/* Dot-separated labels of letters, digits and hyphens, 1-63 bytes each,
 * not starting or ending with a hyphen, at most 253 bytes in all (255 on
 * the wire less the length octets): RFC 1123 2.1 and RFC 5321's Domain.
 * With alabel_rules (the hostname format), a label with "--" in positions
 * 3-4 must be an A-label ("xn--" and something after it): RFC 5891
 * 4.2.3.1 reserves the others. An email domain is SMTP's grammar only. */
static int host_labels(const unsigned char *s, size_t n, int alabel_rules)
{
    if (n == 0 || n > 253) return 0;
    size_t start = 0;
    for (size_t i = 0;; start = ++i) {
        while (i < n && (host_class(s[i]) & HC_LABEL))
            i++;
        if (i < n && s[i] != '.') return 0;
        size_t len = i - start;
        if (len == 0 || len > 63) return 0;
        if (s[start] == '-' || s[i - 1] == '-') return 0;
        if (alabel_rules && len >= 4 && s[start + 2] == '-' && s[start + 3] == '-') {
            int xn = (s[start] | 0x20) == 'x' && (s[start + 1] | 0x20) == 'n';
            if (!xn || len == 4) return 0;
        }
        if (i == n) return 1;
    }
}

/* A host name; a trailing dot (the root) is accepted, as DNS writes a
 * fully qualified name. */
static int check_hostname(const unsigned char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '.') n--;
    return host_labels(s, n, 1);
}

/* ---- email (RFC 5321 4.1.2 Mailbox) ---- */

/* atext of RFC 5322 3.2.3: letters, digits and !#$%&'*+-/=?^_`{|}~ */
static int is_atext(unsigned char c)
{
    return host_class(c) & HC_ATEXT;
}

/* The local part ends at the '@' found here; returns its length or 0.
 * Dot-string: atoms of atext joined by single dots. Quoted-string: printable
 * ASCII in quotes, '"' and '\' only as quoted pairs (qtextSMTP / quoted-pairSMTP). */
static size_t email_local(const unsigned char *s, size_t n)
{
    size_t i = 0;
    if (n > 0 && s[0] == '"') {
        for (i = 1; i < n; i++) {
            if (s[i] == '\\') {
                if (++i >= n || s[i] < 32 || s[i] > 126) return 0;
            } else if (s[i] == '"') {
                break;
            } else if (s[i] < 32 || s[i] > 126) {
                return 0;
            }
        }
        if (i >= n) return 0; /* unclosed */
        i++;
    } else {
        for (;;) { /* atoms joined by single dots */
            size_t a0 = i;
            while (i < n && is_atext(s[i]))
                i++;
            if (i == a0) return 0; /* empty, a leading, double or trailing dot */
            if (i < n && s[i] == '.') {
                i++;
                continue;
            }
            break;
        }
    }
    return i < n && s[i] == '@' ? i : 0;
}

/* address-literal: "[" IPv4 "]" or "[IPv6:" IPv6 "]" (the tag is
 * case-insensitive, as every ABNF literal string is). General literals
 * ("[tag:...]") need a tag registered with IANA; none are, so none pass. */
static int email_literal(const unsigned char *s, size_t n)
{
    if (n < 2 || s[0] != '[' || s[n - 1] != ']') return 0;
    s++;
    n -= 2;
    if (n >= 5 && (s[0] | 0x20) == 'i' && (s[1] | 0x20) == 'p' && (s[2] | 0x20) == 'v' &&
        s[3] == '6' && s[4] == ':')
        return check_ipv6(s + 5, n - 5);
    return check_ipv4(s, n);
}

static int check_email(const unsigned char *s, size_t n)
{
    size_t at = email_local(s, n);
    /* 64 bytes of local part and 255 of domain: RFC 5321 4.5.3.1 */
    if (at == 0 || at > 64) return 0;
    const unsigned char *d = s + at + 1;
    size_t dn = n - at - 1;
    if (dn > 0 && d[0] == '[') return email_literal(d, dn);
    /* the Domain of RFC 5321 is a host name without the root's dot */
    return host_labels(d, dn, 0);
}

/* ---- URIs (RFC 3986) ---- */

static int is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_sub_delim(unsigned char c)
{
    return c && strchr("!$&'()*+,;=", c) != NULL;
}

/* uri_chars() classes: a byte's bits in uri_class[] */
#define UC_PLAIN 1u  /* unreserved or sub-delims */
#define UC_COLON 2u  /* ':' */
#define UC_AT    4u  /* '@' */
#define UC_SLASH 8u  /* '/' */
#define UC_QUERY 16u /* '?' */
#define UC_PCHAR (UC_PLAIN | UC_COLON | UC_AT | UC_SLASH)

/* is_unreserved() || is_sub_delim() and the extras, as one lookup per byte */
static const unsigned char uri_class[256] = {
    ['A'] = 1,     ['B'] = 1,        ['C'] = 1,        ['D'] = 1,  ['E'] = 1, ['F'] = 1,
    ['G'] = 1,     ['H'] = 1,        ['I'] = 1,        ['J'] = 1,  ['K'] = 1, ['L'] = 1,
    ['M'] = 1,     ['N'] = 1,        ['O'] = 1,        ['P'] = 1,  ['Q'] = 1, ['R'] = 1,
    ['S'] = 1,     ['T'] = 1,        ['U'] = 1,        ['V'] = 1,  ['W'] = 1, ['X'] = 1,
    ['Y'] = 1,     ['Z'] = 1,        ['a'] = 1,        ['b'] = 1,  ['c'] = 1, ['d'] = 1,
    ['e'] = 1,     ['f'] = 1,        ['g'] = 1,        ['h'] = 1,  ['i'] = 1, ['j'] = 1,
    ['k'] = 1,     ['l'] = 1,        ['m'] = 1,        ['n'] = 1,  ['o'] = 1, ['p'] = 1,
    ['q'] = 1,     ['r'] = 1,        ['s'] = 1,        ['t'] = 1,  ['u'] = 1, ['v'] = 1,
    ['w'] = 1,     ['x'] = 1,        ['y'] = 1,        ['z'] = 1,  ['0'] = 1, ['1'] = 1,
    ['2'] = 1,     ['3'] = 1,        ['4'] = 1,        ['5'] = 1,  ['6'] = 1, ['7'] = 1,
    ['8'] = 1,     ['9'] = 1,        ['-'] = 1,        ['.'] = 1,  ['_'] = 1, ['~'] = 1,
    ['!'] = 1,     ['$'] = 1,        ['&'] = 1,        ['\''] = 1, ['('] = 1, [')'] = 1,
    ['*'] = 1,     ['+'] = 1,        [','] = 1,        [';'] = 1,  ['='] = 1, [':'] = UC_COLON,
    ['@'] = UC_AT, ['/'] = UC_SLASH, ['?'] = UC_QUERY,
};

/* Bytes s[i..end) are each unreserved, sub-delims, a pct-encoded triple,
 * or of one of the extra classes (UC_*) allowed where they are. */
static int uri_chars(const unsigned char *s, size_t i, size_t end, unsigned extra)
{
    unsigned ok = UC_PLAIN | extra;
    while (i < end) {
        /* runs of plain bytes, four at a time (their classes all have UC_PLAIN) */
        while (end - i >= 4 && (uri_class[s[i]] & uri_class[s[i + 1]] & uri_class[s[i + 2]] &
                                uri_class[s[i + 3]] & UC_PLAIN))
            i += 4;
        if (i >= end) break;
        unsigned char c = s[i];
        if (uri_class[c] & ok) {
            i++;
            continue;
        }
        if (c != '%' || end - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return 0;
        i += 3;
    }
    return 1;
}

/* authority = [ userinfo "@" ] host [ ":" port ] (3.2). host is an
 * IP-literal in brackets (IPv6 or IPvFuture), or a reg-name, which an
 * IPv4 address also is. */
static int uri_authority(const unsigned char *s, size_t n)
{
    size_t at = n, i;
    for (i = 0; i < n; i++)
        if (s[i] == '@') at = i; /* '@' cannot be in host or port: the last is the one */
    size_t h = 0;
    if (at < n) {
        if (!uri_chars(s, 0, at, UC_COLON)) return 0;
        h = at + 1;
    }
    size_t port = n; /* index of the ':' before the port */
    if (h < n && s[h] == '[') {
        size_t close = h;
        while (close < n && s[close] != ']')
            close++;
        if (close >= n) return 0;
        const unsigned char *lit = s + h + 1;
        size_t ln = close - h - 1;
        if (ln > 0 && (lit[0] | 0x20) == 'v') {
            /* IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
            size_t k = 1;
            while (k < ln && is_hex(lit[k]))
                k++;
            if (k == 1 || k >= ln || lit[k] != '.' || k + 1 >= ln) return 0;
            for (k++; k < ln; k++)
                if (!is_unreserved(lit[k]) && !is_sub_delim(lit[k]) && lit[k] != ':') return 0;
        } else if (!check_ipv6(lit, ln)) {
            return 0;
        }
        if (close + 1 < n) {
            if (s[close + 1] != ':') return 0;
            port = close + 1;
        }
    } else {
        for (i = h; i < n && s[i] != ':'; i++)
            ;
        if (!uri_chars(s, h, i, 0)) return 0;
        port = i;
    }
    for (i = port + 1; i < n; i++)
        if (!is_digit(s[i])) return 0;
    return 1;
}

/* The part after the scheme (or all of a relative reference): hier-part
 * or relative-part, then ?query and #fragment. noscheme: in a relative
 * reference, the first segment of a path may not hold a ':' (it would
 * read as a scheme, 4.2). */
static int uri_rest(const unsigned char *s, size_t n, int noscheme)
{
    size_t q = n, f = n, i;
    const unsigned char *hash = n ? memchr(s, '#', n) : NULL, *qm;
    if (hash) f = (size_t)(hash - s);
    if (f && (qm = memchr(s, '?', f))) q = (size_t)(qm - s);
    size_t pend = q < f ? q : f, p = 0;
    if (pend >= 2 && s[0] == '/' && s[1] == '/') {
        size_t a = 2;
        while (a < pend && s[a] != '/')
            a++;
        if (!uri_authority(s + 2, a - 2)) return 0;
        p = a; /* path-abempty */
    } else if (noscheme) {
        for (i = 0; i < pend && s[i] != '/'; i++)
            if (s[i] == ':') return 0;
    }
    /* the path: pchars and slashes ("//" right after no authority cannot
     * happen: it would have been read as one) */
    if (!uri_chars(s, p, pend, UC_COLON | UC_AT | UC_SLASH)) return 0;
    if (q < f && !uri_chars(s, q + 1, f, UC_PCHAR | UC_QUERY)) return 0;
    if (f < n && !uri_chars(s, f + 1, n, UC_PCHAR | UC_QUERY)) return 0;
    return 1;
}

/* The length of a scheme ending in ':' at s, or 0: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static size_t uri_scheme(const unsigned char *s, size_t n)
{
    if (n == 0 || !is_alpha(s[0])) return 0;
    size_t i = 1;
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    return i < n && s[i] == ':' ? i : 0;
}

static int check_uri(const unsigned char *s, size_t n)
{
    size_t k = uri_scheme(s, n);
    if (k == 0) return 0;
    return uri_rest(s + k + 1, n - k - 1, 0);
}

static int check_uri_reference(const unsigned char *s, size_t n)
{
    size_t k = uri_scheme(s, n);
    if (k > 0) return uri_rest(s + k + 1, n - k - 1, 0);
    return uri_rest(s, n, 1);
}

/* ---- regex ---- */

/* Compiles as the schema's "pattern" keyword would: UTF, and \u / \x / \U
 * the way ECMA-262 reads them (ALT_BSUX, EXTRA_ALT_BSUX for \u{...}). The
 * compiled code is freed at once; only the verdict is kept. An allocation
 * failure reads as "not valid", which is the safe side for a schema load. */
static int check_regex(const unsigned char *s, size_t n)
{
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) return 0;
    pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *re = pcre2_compile(n ? (PCRE2_SPTR)s : (PCRE2_SPTR) "", n,
                                   PCRE2_UTF | PCRE2_ALT_BSUX, &err, &off, cc);
    int ok = re != NULL;
    pcre2_code_free(re);
    pcre2_compile_context_free(cc);
    return ok;
}

/* ---- numbers (OpenAPI int32 / int64) ---- */

/* 1 when the JSON number text is an integer (JSON Schema counts 1.0 and
 * 1e2 as integers) within [-limit_neg, limit_pos]. Exact for any text: the
 * digits are read as a decimal significand and exponent instead of being
 * converted to double, so 9223372036854775808 is not rounded into range;
 * an exponent too large to matter saturates, so "1e999999999" is linear. */
static int int_in_range(const unsigned char *s, size_t n, uint64_t limit_pos, uint64_t limit_neg)
{
    size_t i = 0;
    int neg = i < n && s[i] == '-';
    i += (size_t)neg;
    size_t istart = i;
    while (i < n && is_digit(s[i]))
        i++;
    size_t ints = i - istart, fstart = i, fracs = 0;
    if (ints == 0 || (ints > 1 && s[istart] == '0')) return 0;
    if (i < n && s[i] == '.') {
        fstart = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        fracs = i - fstart;
        if (fracs == 0) return 0;
    }
    long long exp10 = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = i < n && s[i] == '-';
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t start = i;
        for (; i < n && is_digit(s[i]); i++)
            if (exp10 < 1000000000LL) exp10 = exp10 * 10 + (s[i] - '0');
        if (i == start) return 0;
        if (eneg) exp10 = -exp10;
    }
    if (i != n) return 0;
    /* digit k of the significand (integer digits, then fraction digits)
     * stands for d * 10^(ints - 1 - k + exp10) */
    size_t total = ints + fracs, fnz = total, lnz = 0;
    for (size_t k = 0; k < total; k++) {
        unsigned char d = k < ints ? s[istart + k] : s[fstart + k - ints];
        if (d != '0') {
            if (fnz == total) fnz = k;
            lnz = k;
        }
    }
    if (fnz == total) return 1; /* zero, however written */
    long long low = (long long)ints - 1 - (long long)lnz + exp10;
    long long high = (long long)ints - 1 - (long long)fnz + exp10;
    if (low < 0) return 0;   /* a nonzero fraction remains */
    if (high > 18) return 0; /* at least 10^19 > 2^63 */
    uint64_t v = 0;
    for (size_t k = fnz; k <= lnz; k++)
        v = v * 10 + (unsigned)((k < ints ? s[istart + k] : s[fstart + k - ints]) - '0');
    for (long long k = 0; k < low; k++)
        v *= 10; /* high <= 18 keeps this below 10^19 < 2^64 */
    return v <= (neg ? limit_neg : limit_pos);
}

int eg_format_check_number(eg_format_t f, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    if (!text && n) return 0;
    switch (f) {
    case EG_FMT_INT32:
        return int_in_range(s, n, INT32_MAX, (uint64_t)INT32_MAX + 1);
    case EG_FMT_INT64:
        return int_in_range(s, n, INT64_MAX, (uint64_t)INT64_MAX + 1);
    default:
        return 1;
    }
}

int eg_format_check(eg_format_t f, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (!str && n) return 0;
    switch (f) {
    case EG_FMT_DATE:
        return check_date(s, n);
    case EG_FMT_DATE_TIME:
        return check_date_time(s, n);
    case EG_FMT_TIME:
        return check_time(s, n);
    case EG_FMT_UUID:
        return check_uuid(s, n);
    case EG_FMT_HOSTNAME:
        return check_hostname(s, n);
    case EG_FMT_EMAIL:
        return check_email(s, n);
    case EG_FMT_URI:
        return check_uri(s, n);
    case EG_FMT_URI_REFERENCE:
        return check_uri_reference(s, n);
    case EG_FMT_REGEX:
        return check_regex(s, n);
    case EG_FMT_IPV4:
        return check_ipv4(s, n);
    case EG_FMT_IPV6:
        return check_ipv6(s, n);
    case EG_FMT_JSON_POINTER:
        return check_json_pointer(s, n);
    case EG_FMT_ISO3166:
        return eg__format_country(str, n);
    case EG_FMT_ISO639:
        return eg__format_language(str, n);
    default:
        return 1;
    }
}
