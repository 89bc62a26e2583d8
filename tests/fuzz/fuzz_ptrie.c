/* fuzz_ptrie.c - path templates and paths against the segment index
 * (lib/ptrie.c), checked against the router's template matcher
 * (eg_path_template_match) as the oracle: a path the index routes matches
 * that template; a path it finds no way for matches no template; a 405
 * names a path some template matches. Input: lines; "T<methods byte>
 * <template>" adds a template (as the next id), any other line is a path
 * matched with GET, then with POST. The methods byte: bit 0 GET, bit 1
 * POST, neither GET. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/router.h"
#include "ptrie.h"

#define MAXT 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eg_ptrie_t *t = NULL;
    if (eg_ptrie_new(&t)) return 0;
    char *tpl[MAXT];
    size_t nt = 0;
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len >= 2 && p[0] == 'T' && nt < MAXT) {
            unsigned b = (unsigned char)p[1];
            unsigned methods =
                (b & 1u ? (unsigned)EG_M_GET : 0u) | (b & 2u ? (unsigned)EG_M_POST : 0u);
            if (!methods) methods = EG_M_GET;
            char *s = strndup(p + 2, len - 2);
            if (!s) break;
            if (!memchr(s, '\0', len - 2) && eg_ptrie_add(t, s, methods, nt) == EG_OK)
                tpl[nt++] = s;
            else
                free(s);
        } else if (!memchr(p, '\0', len)) {
            for (int m = 0; m < 2; m++) {
                size_t id = 0;
                unsigned allow = 0;
                eg_route_result_t r =
                    eg_ptrie_match(t, p, len, m ? EG_M_POST : EG_M_GET, &id, &allow);
                int any = 0;
                for (size_t i = 0; i < nt && !any; i++)
                    any = eg_path_template_match(tpl[i], strlen(tpl[i]), p, len, 0, NULL, 0, NULL);
                if (r == EG_ROUTE_OK &&
                    (id >= nt ||
                     !eg_path_template_match(tpl[id], strlen(tpl[id]), p, len, 0, NULL, 0, NULL))) {
                    fprintf(stderr, "routed to a template that does not match\n");
                    abort();
                }
                if (r == EG_ROUTE_NOT_FOUND && any) {
                    fprintf(stderr, "no way found for a path a template matches: %.*s\n", (int)len,
                            p);
                    abort();
                }
                if (r == EG_ROUTE_METHOD_NOT_ALLOWED && (!any || !allow)) {
                    fprintf(stderr, "405 for a path no template matches\n");
                    abort();
                }
            }
        }
        p += len + 1;
    }
    for (size_t i = 0; i < nt; i++)
        free(tpl[i]);
    eg_ptrie_free(t);
    return 0;
}
