/* format_tables.c - the code lists behind the iso3166 and iso639 formats.
 *
 * iso3166: the 249 officially assigned ISO 3166-1 alpha-2 codes, as the
 * ISO 3166 Maintenance Agency lists them (ISO 3166-1:2020 and its later
 * newsletters; the newest code is SS, South Sudan, 2011). Withdrawn codes
 * (AN, CS, TP, YU, ...) and the reserved ones (UK, EU, EL, XK, ...) do not
 * name a country in the standard and are refused. Checked against Debian's
 * iso-codes 4.15 (iso_3166-1.json) and a public copy of the 249-code list.
 *
 * iso639: the 183 ISO 639-1:2002 alpha-2 codes in force since June 2021,
 * when the Registration Authority withdrew "bh" (Bihari, a collective
 * code); codes withdrawn earlier (iw, in, ji, jw, mo, sh) are refused too.
 * Checked against iso-codes' ISO 639-2 list, whose alpha-2 column is this
 * list plus "bh".
 *
 * Both tables are sorted (ASCII); a lookup reads one bit of a 26 x 26
 * bitmap generated from them (the binary search over the rows, ten times
 * dearer, remains as the reference the tests compare it with). Case is as
 * the standards write the codes, upper for countries and lower for
 * languages: "us" and "EN" are refused rather than guessed at.
 */
#include "format_tables.h"

#include <stdint.h>
#include <string.h>

static const char iso3166[][3] = {
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
};

static const char iso639[][3] = {
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bi",
    "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de",
    "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy",
    "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia",
    "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj", "kk",
    "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln", "lo",
    "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd",
    "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl",
    "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl",
    "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk",
    "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo", "wa",
    "wo", "xh", "yi", "yo", "za", "zh", "zu",
};

/* The same lists as bitmaps, for the lookup itself: bit (second letter)
 * of word (first letter), 'A' or 'a' being 0. Generated from the tables
 * above; test_format checks every two-byte input against them (through
 * eg__format_*_listed, the binary search below). */
static const uint32_t iso3166_bits[26] = {
    0x2df5978, 0x36f7bfb, 0x3f27ded, 0x2005610, 0x00e00d4, 0x0025700, 0x15fb9fb,
    0x01a3400, 0x00f7818, 0x000d010, 0x342b1d0, 0x13e0507, 0x3fffcfd, 0x212c975,
    0x0001000, 0x14e3cf1, 0x0000001, 0x0544010, 0x3ae7fdf, 0x26a7eec, 0x3041041,
    0x0102155, 0x0040020, 0x0000000, 0x0080010, 0x0401001,
};

static const uint32_t iso639_bits[26] = {
    0x3263433, 0x0067151, 0x1364091, 0x2200011, 0x01c6810, 0x1024321, 0x0302809,
    0x31a4111, 0x01c4559, 0x0200001, 0x1767f41, 0x0386143, 0x10e2dc0, 0x122685b,
    0x0061204, 0x00c0901, 0x0100000, 0x0507000, 0x07f7d5d, 0x14e6dd1, 0x2020440,
    0x0004110, 0x0004001, 0x0000080, 0x0004100, 0x0100081,
};

static int in_bits(const uint32_t *bits, unsigned base, const char *s, size_t n)
{
    if (n != 2) return 0;
    unsigned a = (unsigned)(unsigned char)s[0] - base, b = (unsigned)(unsigned char)s[1] - base;
    return a < 26 && b < 26 && (bits[a] >> b & 1);
}

/* Binary search of a two-letter code in a sorted table of rows. */
static int find2(const char (*t)[3], size_t count, const char *s, size_t n)
{
    if (n != 2) return 0;
    /* the two bytes as one number in memcmp order: no call per comparison */
    unsigned key = (unsigned)(unsigned char)s[0] << 8 | (unsigned char)s[1];
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        unsigned row = (unsigned)(unsigned char)t[mid][0] << 8 | (unsigned char)t[mid][1];
        if (row == key) return 1;
        if (row < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

int eg__format_country(const char *s, size_t n)
{
    return in_bits(iso3166_bits, 'A', s, n);
}

int eg__format_language(const char *s, size_t n)
{
    return in_bits(iso639_bits, 'a', s, n);
}

int eg__format_country_listed(const char *s, size_t n)
{
    return find2(iso3166, sizeof(iso3166) / sizeof(iso3166[0]), s, n);
}

int eg__format_language_listed(const char *s, size_t n)
{
    return find2(iso639, sizeof(iso639) / sizeof(iso639[0]), s, n);
}

size_t eg__format_country_count(void)
{
    return sizeof(iso3166) / sizeof(iso3166[0]);
}

size_t eg__format_language_count(void)
{
    return sizeof(iso639) / sizeof(iso639[0]);
}
