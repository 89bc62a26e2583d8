/* fuzz_fastre.c - the patterns schema_fastre.c matches without PCRE2 give
 * PCRE2's verdicts. Input: a pattern, a NUL byte, a subject (no NUL: the
 * first byte says where to split). When the pattern compiles both ways
 * (eg_fastre_compile takes it, and eg_schema_regex as "pattern" compiles
 * it) and the subject is valid UTF-8 without NUL (what a JSON string
 * gives), eg_fastre_match must equal pcre2_match; any disagreement aborts.
 * Also: eg_fastre_compile never crashes or leaks on any bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_int.h"
#include "utf8.h"

static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (!s[i]) return 0;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = eg_utf8_len(s + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const uint8_t *nul = memchr(data, 0, size);
    const char *pat;
    size_t pn;
    const unsigned char *sub;
    size_t sn;
    if (nul) {
        pat = (const char *)data;
        pn = (size_t)(nul - data);
        sub = nul + 1;
        sn = size - pn - 1;
    } else {
        pn = data[0] % (size - 1);
        pat = (const char *)data + 1;
        sub = data + 1 + pn;
        sn = size - 1 - pn;
    }
    eg_fastre_t *f = eg_fastre_compile(pat, pn);
    if (!f) return 0;
    size_t off = 0;
    pcre2_code *re = eg_schema_regex(pat, pn, NULL, 0, &off);
    if (re && valid_utf8(sub, sn)) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        if (!md) abort();
        int r = pcre2_match(re, (PCRE2_SPTR)sub, sn, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        int fast = eg_fastre_match(f, (const char *)sub, sn);
        if (r < 0 && r != PCRE2_ERROR_NOMATCH) abort(); /* limits: not for these patterns */
        if (fast != (r >= 0)) {
            fprintf(stderr, "fuzz_fastre: /%.*s/ on \"%.*s\": fast %d, PCRE2 %d\n", (int)pn, pat,
                    (int)sn, (const char *)sub, fast, r >= 0);
            abort();
        }
    }
    pcre2_code_free(re);
    free(f);
    return 0;
}
