/* cidr.h - IP addresses and CIDR blocks (IPv4 and IPv6) for allow lists.
 *
 * Everything is held as 16 bytes: IPv4 as an IPv4-mapped IPv6 address, so a
 * client that reaches a dual-stack listener as ::ffff:10.0.0.1 matches
 * "10.0.0.0/8" like one that reaches an IPv4 listener.
 */
#ifndef ERRGATE_CIDR_H
#define ERRGATE_CIDR_H

#include <stddef.h>

#include "errgate/common.h"

typedef struct {
    unsigned char addr[16];
    unsigned char bits; /* prefix length over the 128-bit form */
} eg_cidr_t;

/* Parses "10.0.0.1", "192.168.1.0/24", "2001:db8::/32" or "::1"; host bits
 * set under the prefix ("10.0.0.1/8") are refused, as a typo. EG_EPARSE. */
int eg_cidr_parse(const char *s, eg_cidr_t *out);

/* Parses a bare address into a /128 block. EG_EPARSE. */
int eg_ip_parse(const char *s, eg_cidr_t *out);

/* 1 when ip (a /128 from eg_ip_parse) is inside block. */
int eg_cidr_contains(const eg_cidr_t *block, const eg_cidr_t *ip);

/* 1 when ip is inside any of the n blocks. */
int eg_cidr_any(const eg_cidr_t *blocks, size_t n, const eg_cidr_t *ip);

#endif
