/* test_decode.c - content codings: the Content-Encoding field, gzip, x-gzip
 * and deflate (zlib and raw) decoded exactly, corrupt and truncated streams
 * refused, and both bounds against decompression bombs (issue 27). The
 * compressed bytes were made by Python's gzip and zlib modules, so the
 * decoder is checked against another implementation; the large inputs are
 * made here with zlib's deflate. */
#include "testutil.h"

#include <zlib.h>

#include "errgate/decode.h"

static const char BODY[] =
    "{\"error\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"Email is not valid\"}}";

/* gzip.compress(BODY, mtime=0) */
static const unsigned char GZ[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56, 0x4a, 0x2d, 0x2a,
    0xca, 0x2f, 0x52, 0xb2, 0xaa, 0x56, 0x4a, 0xce, 0x4f, 0x49, 0x55, 0xb2, 0x52, 0x0a, 0x73,
    0xf4, 0xf1, 0x74, 0x71, 0x0c, 0xf1, 0xf4, 0xf7, 0x8b, 0x77, 0x0d, 0x0a, 0xf2, 0x0f, 0x52,
    0xd2, 0x51, 0xca, 0x4d, 0x2d, 0x2e, 0x4e, 0x4c, 0x07, 0x49, 0xba, 0xe6, 0x26, 0x66, 0xe6,
    0x28, 0x64, 0x16, 0x2b, 0xe4, 0xe5, 0x97, 0x28, 0x94, 0x25, 0xe6, 0x64, 0xa6, 0x28, 0xd5,
    0xd6, 0x02, 0x00, 0xd9, 0x21, 0x4f, 0x40, 0x44, 0x00, 0x00, 0x00};
/* zlib.compress(BODY) */
static const unsigned char ZL[] = {
    0x78, 0x9c, 0xab, 0x56, 0x4a, 0x2d, 0x2a, 0xca, 0x2f, 0x52, 0xb2, 0xaa, 0x56, 0x4a, 0xce,
    0x4f, 0x49, 0x55, 0xb2, 0x52, 0x0a, 0x73, 0xf4, 0xf1, 0x74, 0x71, 0x0c, 0xf1, 0xf4, 0xf7,
    0x8b, 0x77, 0x0d, 0x0a, 0xf2, 0x0f, 0x52, 0xd2, 0x51, 0xca, 0x4d, 0x2d, 0x2e, 0x4e, 0x4c,
    0x07, 0x49, 0xba, 0xe6, 0x26, 0x66, 0xe6, 0x28, 0x64, 0x16, 0x2b, 0xe4, 0xe5, 0x97, 0x28,
    0x94, 0x25, 0xe6, 0x64, 0xa6, 0x28, 0xd5, 0xd6, 0x02, 0x00, 0xea, 0x15, 0x16, 0x22};
/* ZL without its 2-byte header and 4-byte Adler-32: raw deflate */
#define RAW     (ZL + 2)
#define RAW_LEN (sizeof(ZL) - 6)

static void test_content_encoding_field(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        eg_coding_t want;
    } cases[] = {
        {"gzip", EG_CODING_GZIP},
        {"x-gzip", EG_CODING_GZIP},
        {"GZip", EG_CODING_GZIP},
        {" \tdeflate ", EG_CODING_DEFLATE},
        {"DEFLATE", EG_CODING_DEFLATE},
        {"identity", EG_CODING_IDENTITY},
        {"", EG_CODING_IDENTITY},
        {" , ", EG_CODING_IDENTITY},
        {"gzip, identity", EG_CODING_GZIP},
        {"identity,gzip", EG_CODING_GZIP},
        {"br", EG_CODING_UNSUPPORTED},
        {"zstd", EG_CODING_UNSUPPORTED},
        {"compress", EG_CODING_UNSUPPORTED},
        {"gzip2", EG_CODING_UNSUPPORTED},
        {"gzip, br", EG_CODING_UNSUPPORTED},
        {"deflate, gzip", EG_CODING_UNSUPPORTED},
        {"gzip,gzip", EG_CODING_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        eg_coding_t got = eg_content_coding(EG_CODING_IDENTITY, cases[i].v, strlen(cases[i].v));
        if (got != cases[i].want) fail_msg("'%s': %d, want %d", cases[i].v, got, cases[i].want);
    }
    /* two field lines fold into one list (RFC 9110 5.3) */
    eg_coding_t c = eg_content_coding(EG_CODING_IDENTITY, "gzip", 4);
    assert_int_equal(eg_content_coding(c, "identity", 8), EG_CODING_GZIP);
    assert_int_equal(eg_content_coding(c, "gzip", 4), EG_CODING_UNSUPPORTED);
    assert_string_equal(eg_coding_name(EG_CODING_GZIP), "gzip");
    assert_string_equal(eg_coding_name(EG_CODING_DEFLATE), "deflate");
}

static void expect_body(eg_coding_t coding, const void *in, size_t n)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(eg_decode_body(coding, in, n, 65536, 100, &out, &len), EG_OK);
    assert_int_equal(len, strlen(BODY));
    assert_memory_equal(out, BODY, len);
    assert_int_equal(out[len], '\0');
    free(out);
}

static void test_gzip_and_deflate_decode_exactly(void **state)
{
    (void)state;
    expect_body(EG_CODING_GZIP, GZ, sizeof(GZ));
    expect_body(EG_CODING_DEFLATE, ZL, sizeof(ZL)); /* zlib-wrapped, as RFC 9110 says */
    expect_body(EG_CODING_DEFLATE, RAW, RAW_LEN);   /* raw, as some servers send */
    expect_body(EG_CODING_IDENTITY, BODY, strlen(BODY));
    /* two gzip members are one body (RFC 1952 2.2) */
    unsigned char two[2 * sizeof(GZ)];
    memcpy(two, GZ, sizeof(GZ));
    memcpy(two + sizeof(GZ), GZ, sizeof(GZ));
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(
        eg_decode_body(EG_CODING_GZIP, (const char *)two, sizeof(two), 65536, 100, &out, &len),
        EG_OK);
    assert_int_equal(len, 2 * strlen(BODY));
    assert_memory_equal(out, BODY, strlen(BODY));
    assert_memory_equal(out + strlen(BODY), BODY, strlen(BODY));
    free(out);
}

static void expect_rc(eg_coding_t coding, const void *in, size_t n, int want)
{
    char *out = (char *)"untouched";
    size_t len = 12345;
    int rc = eg_decode_body(coding, in, n, 65536, 100, &out, &len);
    if (rc != want) fail_msg("rc %d, want %d", rc, want);
    assert_string_equal(out, "untouched"); /* outputs untouched on failure */
    assert_int_equal(len, 12345);
}

static void test_corrupt_truncated_and_unsupported_are_refused(void **state)
{
    (void)state;
    unsigned char bad[sizeof(GZ)];
    memcpy(bad, GZ, sizeof(GZ));
    bad[sizeof(GZ) - 6] ^= 0x01; /* the CRC-32 no longer matches */
    expect_rc(EG_CODING_GZIP, bad, sizeof(bad), EG_EPARSE);
    memcpy(bad, GZ, sizeof(GZ));
    bad[20] ^= 0xff; /* the deflate data itself */
    expect_rc(EG_CODING_GZIP, bad, sizeof(bad), EG_EPARSE);
    expect_rc(EG_CODING_GZIP, GZ, sizeof(GZ) - 1, EG_EPARSE); /* truncated in the trailer */
    expect_rc(EG_CODING_GZIP, GZ, 30, EG_EPARSE);             /* truncated in the data */
    expect_rc(EG_CODING_GZIP, GZ, 0, EG_EPARSE);              /* nothing at all */
    expect_rc(EG_CODING_DEFLATE, ZL, sizeof(ZL) - 2, EG_EPARSE);
    /* the JSON itself is not gzip, nor deflate */
    expect_rc(EG_CODING_GZIP, BODY, strlen(BODY), EG_EPARSE);
    expect_rc(EG_CODING_DEFLATE, BODY, strlen(BODY), EG_EPARSE);
    /* bytes after the end that are not another member */
    unsigned char tail[sizeof(GZ) + 3];
    memcpy(tail, GZ, sizeof(GZ));
    memcpy(tail + sizeof(GZ), "abc", 3);
    expect_rc(EG_CODING_GZIP, tail, sizeof(tail), EG_EPARSE);
    expect_rc(EG_CODING_UNSUPPORTED, GZ, sizeof(GZ), EG_EINVAL);
}

/* n bytes of 'x' (compressible a thousandfold), gzip- or zlib-wrapped by zlib. */
static unsigned char *squeeze(size_t n, int wbits, size_t *outlen)
{
    unsigned char *plain = malloc(n);
    assert_non_null(plain);
    memset(plain, 'x', n);
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, wbits, 9, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)n);
    unsigned char *out = malloc(cap);
    assert_non_null(out);
    z.next_in = plain;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    free(plain);
    return out;
}

static void test_decompression_bombs_stop_at_either_bound(void **state)
{
    (void)state;
    size_t zn = 0;
    unsigned char *bomb = squeeze(8u << 20, 15 + 16, &zn); /* 8 MiB in about 8 KiB */
    assert_true(zn < 16384);
    char *out = NULL;
    size_t len = 0;
    /* the absolute cap (max_translate_body's default, 64 KiB) */
    assert_int_equal(eg_decode_body(EG_CODING_GZIP, (const char *)bomb, zn, 65536, 0, &out, &len),
                     EG_ETOOBIG);
    /* the ratio: a cap large enough, but 100 times the input is not */
    assert_int_equal(
        eg_decode_body(EG_CODING_GZIP, (const char *)bomb, zn, 16u << 20, 100, &out, &len),
        EG_ETOOBIG);
    /* both bounds far enough: decoded whole */
    assert_int_equal(
        eg_decode_body(EG_CODING_GZIP, (const char *)bomb, zn, 16u << 20, 0, &out, &len), EG_OK);
    assert_int_equal(len, 8u << 20);
    assert_true(out[0] == 'x' && out[len - 1] == 'x' && out[len] == '\0');
    free(out);
    free(bomb);
    /* exactly at the cap is allowed, one byte under it is not */
    bomb = squeeze(100000, 15, &zn);
    assert_int_equal(
        eg_decode_body(EG_CODING_DEFLATE, (const char *)bomb, zn, 100000, 0, &out, &len), EG_OK);
    assert_int_equal(len, 100000);
    free(out);
    assert_int_equal(
        eg_decode_body(EG_CODING_DEFLATE, (const char *)bomb, zn, 99999, 0, &out, &len),
        EG_ETOOBIG);
    /* and the ratio at its edge: 100000 bytes out of zn in */
    unsigned r_ok = (unsigned)((100000 + zn - 1) / zn), r_short = (unsigned)(99999 / zn);
    assert_int_equal(
        eg_decode_body(EG_CODING_DEFLATE, (const char *)bomb, zn, 1u << 20, r_ok, &out, &len),
        EG_OK);
    assert_int_equal(len, 100000);
    free(out);
    assert_int_equal(
        eg_decode_body(EG_CODING_DEFLATE, (const char *)bomb, zn, 1u << 20, r_short, &out, &len),
        EG_ETOOBIG);
    free(bomb);
    /* identity obeys the cap too */
    assert_int_equal(eg_decode_body(EG_CODING_IDENTITY, BODY, strlen(BODY), 10, 0, &out, &len),
                     EG_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_encoding_field),
        cmocka_unit_test(test_gzip_and_deflate_decode_exactly),
        cmocka_unit_test(test_corrupt_truncated_and_unsupported_are_refused),
        cmocka_unit_test(test_decompression_bombs_stop_at_either_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
