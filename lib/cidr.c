/* cidr.c - IP allow-list matching (see cidr.h). */
#include "errgate/cidr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static int parse_addr(const char *s, size_t n, eg_cidr_t *out, int *v4)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp)) return EG_EPARSE;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    memset(out, 0, sizeof(*out));
    unsigned char a4[4];
    if (inet_pton(AF_INET, tmp, a4) == 1) {
        out->addr[10] = out->addr[11] = 0xff;
        memcpy(out->addr + 12, a4, 4);
        *v4 = 1;
        return EG_OK;
    }
    if (inet_pton(AF_INET6, tmp, out->addr) == 1) {
        *v4 = 0;
        return EG_OK;
    }
    return EG_EPARSE;
}

int eg_ip_parse(const char *s, eg_cidr_t *out)
{
    int v4;
    eg_cidr_t c;
    if (!s || parse_addr(s, strlen(s), &c, &v4) != EG_OK) return EG_EPARSE;
    c.bits = 128;
    *out = c;
    return EG_OK;
}

int eg_cidr_parse(const char *s, eg_cidr_t *out)
{
    if (!s) return EG_EPARSE;
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    int v4;
    eg_cidr_t c;
    if (parse_addr(s, n, &c, &v4) != EG_OK) return EG_EPARSE;
    unsigned max = v4 ? 32 : 128, bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (*p < '0' || *p > '9' || (p[0] == '0' && p[1])) return EG_EPARSE;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9') return EG_EPARSE;
            bits = bits * 10 + (unsigned)(*p - '0');
            if (bits > max) return EG_EPARSE;
        }
    }
    c.bits = (unsigned char)(bits + (v4 ? 96 : 0));
    for (unsigned i = c.bits; i < 128; i++) /* host bits must be zero */
        if (c.addr[i / 8] & (0x80u >> (i % 8))) return EG_EPARSE;
    *out = c;
    return EG_OK;
}

int eg_cidr_contains(const eg_cidr_t *block, const eg_cidr_t *ip)
{
    unsigned full = block->bits / 8, rest = block->bits % 8;
    if (memcmp(block->addr, ip->addr, full) != 0) return 0;
    if (!rest) return 1;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (block->addr[full] & mask) == (ip->addr[full] & mask);
}

int eg_cidr_any(const eg_cidr_t *blocks, size_t n, const eg_cidr_t *ip)
{
    for (size_t i = 0; i < n; i++)
        if (eg_cidr_contains(&blocks[i], ip)) return 1;
    return 0;
}
