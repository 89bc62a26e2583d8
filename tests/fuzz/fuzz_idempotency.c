/* fuzz_idempotency.c - any bytes as an Idempotency-Key value and as a stored
 * response record (a store's data is not trusted). Invariants checked
 * (abort() on violation):
 *  - key parsing: a key is 1-255 characters of 0x21-0x7E and a NUL; it
 *    parses back to itself written as an sf-string (\" and \\ escaped) and,
 *    when it does not start with '"', written bare; a refusal leaves the
 *    outputs untouched;
 *  - record decoding reads only the exact-size copy of the input (ASan sees
 *    any overrun) and never writes past the header array it is given; a
 *    record it accepts encodes back to the same bytes (the format has one
 *    spelling per record), with a status in 100-599, token names and
 *    values without CR, LF or NUL; a refusal leaves the output untouched;
 *  - round trip: a record built from the input (status, headers and body
 *    cut from it, names and values made valid) encodes to exactly
 *    eg_idem_record_size bytes and decodes to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/idempotency.h"

static void check(int ok)
{
    if (!ok) abort();
}

static void fuzz_key(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    check(in != NULL);
    memcpy(in, data, size);
    char out[EG_IDEM_KEY_MAX + 1];
    memset(out, 0x5a, sizeof(out));
    size_t len = 999;
    int rc = eg_idem_key_parse(in, size, out, &len);
    if (rc != EG_OK) {
        check(rc == EG_EPARSE || rc == EG_ERANGE);
        check(len == 999);
        for (size_t i = 0; i < sizeof(out); i++)
            check(out[i] == 0x5a);
        free(in);
        return;
    }
    check(len >= 1 && len <= EG_IDEM_KEY_MAX && out[len] == '\0');
    for (size_t i = 0; i < len; i++)
        check(out[i] >= 0x21 && out[i] <= 0x7E);
    /* as an sf-string */
    char sf[2 * EG_IDEM_KEY_MAX + 2], again[EG_IDEM_KEY_MAX + 1];
    size_t n = 0, alen = 0;
    sf[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '"' || out[i] == '\\') sf[n++] = '\\';
        sf[n++] = out[i];
    }
    sf[n++] = '"';
    check(eg_idem_key_parse(sf, n, again, &alen) == EG_OK);
    check(alen == len && memcmp(again, out, len + 1) == 0);
    /* bare */
    if (out[0] != '"') {
        check(eg_idem_key_parse(out, len, again, &alen) == EG_OK);
        check(alen == len && memcmp(again, out, len + 1) == 0);
    }
    free(in);
}

static int tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

enum { HCAP = 64 };

static void fuzz_decode(const uint8_t *data, size_t size)
{
    unsigned char *rec = malloc(size ? size : 1);
    check(rec != NULL);
    memcpy(rec, data, size);
    /* an exact-size header array: a write past hcap is an overrun */
    size_t hcap = size ? data[0] % (HCAP + 1) : 0;
    eg_http_header_t *hs = malloc((hcap ? hcap : 1) * sizeof(*hs));
    check(hs != NULL);
    eg_idem_record_t r, untouched;
    memset(&untouched, 0x33, sizeof(untouched));
    r = untouched;
    int rc = eg_idem_record_decode(rec, size, hs, hcap, &r);
    if (rc != EG_OK) {
        check(rc == EG_EPARSE || rc == EG_ERANGE);
        check(memcmp(&r, &untouched, sizeof(r)) == 0);
    } else {
        check(r.status >= 100 && r.status <= 599 && r.nheaders <= hcap && r.headers == hs);
        for (size_t i = 0; i < r.nheaders; i++) {
            check(hs[i].name_len >= 1);
            for (size_t k = 0; k < hs[i].name_len; k++)
                check(tchar((unsigned char)hs[i].name[k]));
            for (size_t k = 0; k < hs[i].value_len; k++) {
                unsigned char c = (unsigned char)hs[i].value[k];
                check(c != '\r' && c != '\n' && c != 0);
            }
            check((const unsigned char *)hs[i].name >= rec &&
                  (const unsigned char *)hs[i].value + hs[i].value_len <= rec + size);
        }
        check(r.body >= rec && r.body + r.body_len == rec + size);
        /* canonical: encoding it again gives the input */
        check(eg_idem_record_size(&r) == size);
        unsigned char *enc = malloc(size);
        size_t elen = 0;
        check(enc != NULL);
        check(eg_idem_record_encode(&r, enc, size, &elen) == EG_OK);
        check(elen == size && memcmp(enc, rec, size) == 0);
        free(enc);
    }
    free(hs);
    free(rec);
}

static void fuzz_roundtrip(const uint8_t *data, size_t size)
{
    if (size < 3) return;
    eg_idem_record_t r = {0};
    r.status = 100 + (data[0] << 8 | data[1]) % 500;
    size_t nh = data[2] % 8, at = 3;
    char *names[8], *values[8];
    eg_http_header_t hs[8];
    for (size_t i = 0; i < nh; i++) {
        size_t nl = at < size ? data[at++] % 16 + 1 : 1;
        size_t vl = at < size ? data[at++] % 32 : 0;
        names[i] = malloc(nl);
        values[i] = malloc(vl ? vl : 1);
        check(names[i] && values[i]);
        for (size_t k = 0; k < nl; k++) {
            unsigned char c = at < size ? data[at++] : 'x';
            names[i][k] = tchar(c) ? (char)c : 'x';
        }
        for (size_t k = 0; k < vl; k++) {
            unsigned char c = at < size ? data[at++] : ' ';
            values[i][k] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
        }
        hs[i] = (eg_http_header_t){names[i], nl, values[i], vl};
    }
    r.headers = hs;
    r.nheaders = nh;
    r.body = data + at;
    r.body_len = size - at;
    size_t need = eg_idem_record_size(&r), len = 0;
    check(need > 0);
    unsigned char *buf = malloc(need);
    check(buf != NULL);
    check(eg_idem_record_encode(&r, buf, need, &len) == EG_OK && len == need);
    if (need > 0) check(eg_idem_record_encode(&r, buf, need - 1, &len) == EG_ERANGE);
    eg_http_header_t got[8];
    eg_idem_record_t d;
    check(eg_idem_record_decode(buf, need, got, 8, &d) == EG_OK);
    check(d.status == r.status && d.nheaders == nh && d.body_len == r.body_len);
    check(d.body_len == 0 || memcmp(d.body, r.body, d.body_len) == 0);
    for (size_t i = 0; i < nh; i++) {
        check(got[i].name_len == hs[i].name_len && got[i].value_len == hs[i].value_len);
        check(memcmp(got[i].name, hs[i].name, hs[i].name_len) == 0);
        check(got[i].value_len == 0 || memcmp(got[i].value, hs[i].value, hs[i].value_len) == 0);
    }
    free(buf);
    for (size_t i = 0; i < nh; i++) {
        free(names[i]);
        free(values[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_key(data, size);
    fuzz_decode(data, size);
    fuzz_roundtrip(data, size);
    return 0;
}
