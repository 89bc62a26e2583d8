/* reqid.c - request ids and traceparent (see reqid.h). */
#include "errgate/reqid.h"

#include <string.h>

static const char hexd[] = "0123456789abcdef";

int eg_reqid_valid(const char *s, size_t n)
{
    if (n < 1 || n > EG_REQID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
        if (c == '+' || c == '/' || c == '=' || c == '-' || c == '_' || c == '.') continue;
        return 0;
    }
    return 1;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[b[i] >> 4];
        out[2 * i + 1] = hexd[b[i] & 15];
    }
}

void eg_reqid_generate(const uint8_t rnd[16], char *out)
{
    memcpy(out, "req_", 4);
    hex(rnd, 16, out + 4);
    out[EG_REQID_GEN_LEN] = '\0';
}

static int lowhex(const char *s, size_t n, int *allzero)
{
    *allzero = 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
        if (c != '0') *allzero = 0;
    }
    return 1;
}

int eg_traceparent_valid(const char *s, size_t n)
{
    int z;
    if (n != EG_TRACEPARENT_LEN) return 0;
    if (s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' || s[52] != '-') return 0;
    if (!lowhex(s + 3, 32, &z) || z) return 0;
    if (!lowhex(s + 36, 16, &z) || z) return 0;
    return lowhex(s + 53, 2, &z);
}

void eg_traceparent_generate(const uint8_t rnd[24], char *out)
{
    uint8_t b[24];
    memcpy(b, rnd, sizeof(b));
    b[15] |= 1; /* never all zero */
    b[23] |= 1;
    memcpy(out, "00-", 3);
    hex(b, 16, out + 3);
    out[35] = '-';
    hex(b + 16, 8, out + 36);
    memcpy(out + 52, "-01", 3);
    out[EG_TRACEPARENT_LEN] = '\0';
}
