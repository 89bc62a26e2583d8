/* test_apikey.c - the API key format and IP allow lists. */
#include "testutil.h"

#include "errgate/apikey.h"
#include "errgate/cidr.h"

static void test_generate_parse(void **state)
{
    (void)state;
    char k1[EG_APIKEY_LEN + 1], k2[EG_APIKEY_LEN + 1];
    eg_apikey_info_t i1, i2, p;
    assert_int_equal(eg_apikey_generate("live", NULL, k1, sizeof(k1), &i1), EG_OK);
    assert_int_equal(eg_apikey_generate("test", NULL, k2, sizeof(k2), &i2), EG_OK);
    assert_int_equal(strlen(k1), EG_APIKEY_LEN);
    assert_memory_equal(k1, "eg_live_", 8);
    assert_memory_equal(k2, "eg_test_", 8);
    assert_string_not_equal(i1.id, i2.id);
    /* keys of one environment share their prefix: each has its own id and
     * its own secret (nothing repeats across 64 of them) */
    enum { NKEYS = 64, SECRET_AT = 8 + EG_APIKEY_ID_LEN + 1 };
    static char many[NKEYS][EG_APIKEY_LEN + 1];
    static eg_apikey_info_t info[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        assert_int_equal(eg_apikey_generate("live", NULL, many[i], sizeof(many[i]), &info[i]),
                         EG_OK);
    for (int i = 0; i < NKEYS; i++) {
        assert_memory_equal(many[i], k1, 8);
        assert_memory_equal(many[i] + 8, info[i].id, EG_APIKEY_ID_LEN);
        for (int j = 0; j < i; j++) {
            if (strcmp(info[i].id, info[j].id) == 0) fail_msg("id %s twice", info[i].id);
            size_t secret_len = EG_APIKEY_LEN - SECRET_AT - 6; /* without the checksum */
            if (memcmp(many[i] + SECRET_AT, many[j] + SECRET_AT, secret_len) == 0)
                fail_msg("one secret in keys %d and %d", j, i);
        }
    }
    assert_int_equal(eg_apikey_parse(k1, strlen(k1), &p), EG_OK);
    assert_string_equal(p.id, i1.id);
    assert_string_equal(p.env, "live");
    assert_memory_equal(k1 + 8, i1.id, EG_APIKEY_ID_LEN);
    /* a rotation keeps the id and changes the secret */
    char k3[EG_APIKEY_LEN + 1];
    assert_int_equal(eg_apikey_generate("live", i1.id, k3, sizeof(k3), &p), EG_OK);
    assert_string_equal(p.id, i1.id);
    assert_string_not_equal(k1, k3);
    assert_int_equal(eg_apikey_parse(k3, strlen(k3), NULL), EG_OK);
    /* bad arguments */
    assert_int_equal(eg_apikey_generate("prod", NULL, k3, sizeof(k3), NULL), EG_EINVAL);
    assert_int_equal(eg_apikey_generate("live", "short", k3, sizeof(k3), NULL), EG_EINVAL);
    assert_int_equal(eg_apikey_generate("live", NULL, k3, 10, NULL), EG_EINVAL);
}

static void test_malformed(void **state)
{
    (void)state;
    char k[EG_APIKEY_LEN + 1], bad[EG_APIKEY_LEN + 2];
    assert_int_equal(eg_apikey_generate("live", NULL, k, sizeof(k), NULL), EG_OK);
    /* every single-character change is caught: the checksum or the format */
    for (size_t i = 0; i < EG_APIKEY_LEN; i++) {
        memcpy(bad, k, sizeof(k));
        bad[i] = bad[i] == 'a' ? 'b' : 'a';
        if (eg_apikey_parse(bad, EG_APIKEY_LEN, NULL) == EG_OK) fail_msg("accepted a change at %zu: %s", i, bad);
    }
    assert_int_equal(eg_apikey_parse(k, EG_APIKEY_LEN - 1, NULL), EG_EPARSE); /* truncated */
    memcpy(bad, k, sizeof(k));
    bad[EG_APIKEY_LEN] = 'x';
    assert_int_equal(eg_apikey_parse(bad, EG_APIKEY_LEN + 1, NULL), EG_EPARSE); /* too long */
    assert_int_equal(eg_apikey_parse("", 0, NULL), EG_EPARSE);
    assert_int_equal(eg_apikey_parse("sk_live_whatever", 16, NULL), EG_EPARSE);
    /* swapping two characters of the secret also fails the checksum */
    memcpy(bad, k, sizeof(k));
    size_t a = 20, b = 30;
    while (bad[a] == bad[b]) b++;
    char t = bad[a];
    bad[a] = bad[b];
    bad[b] = t;
    assert_int_equal(eg_apikey_parse(bad, EG_APIKEY_LEN, NULL), EG_EPARSE);
    assert_false(eg_apikey_id_valid("abc"));
    assert_false(eg_apikey_id_valid("abcd-fgh"));
    assert_true(eg_apikey_id_valid("abcD1234"));
}

static void test_hash(void **state)
{
    (void)state;
    const char *key = "eg_live_abcdefgh_secret";
    unsigned char h1[32], h2[32], h3[32], h4[32];
    const unsigned char pepper[] = "pepper-pepper-pepper";
    assert_int_equal(eg_apikey_hash(NULL, 0, key, strlen(key), h1), EG_OK);
    assert_int_equal(eg_apikey_hash(pepper, sizeof(pepper) - 1, key, strlen(key), h2), EG_OK);
    assert_int_equal(eg_apikey_hash(pepper, sizeof(pepper) - 1, key, strlen(key), h3), EG_OK);
    assert_int_equal(eg_apikey_hash(pepper, sizeof(pepper) - 2, key, strlen(key), h4), EG_OK);
    assert_false(eg_apikey_hash_equal(h1, h2)); /* the pepper matters */
    assert_true(eg_apikey_hash_equal(h2, h3));
    assert_false(eg_apikey_hash_equal(h2, h4));
    /* SHA-256("abc") from FIPS 180-2: the unpeppered hash is plain SHA-256 */
    static const unsigned char abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                          0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                          0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    assert_int_equal(eg_apikey_hash(NULL, 0, "abc", 3, h1), EG_OK);
    assert_memory_equal(h1, abc, 32);
}

static void test_hasher_matches_one_shot(void **state)
{
    (void)state;
    const unsigned char pepper[] = "pepper-pepper-pepper";
    eg_apikey_hasher_t *hp, *hn;
    assert_int_equal(eg_apikey_hasher_new(pepper, sizeof(pepper) - 1, &hp), EG_OK);
    assert_int_equal(eg_apikey_hasher_new(NULL, 0, &hn), EG_OK);
    for (int i = 0; i < 50; i++) {
        char k[EG_APIKEY_LEN + 1], bad[EG_APIKEY_LEN + 1];
        eg_apikey_info_t a, b;
        unsigned char h1[32], h2[32];
        assert_int_equal(eg_apikey_generate(i % 2 ? "live" : "test", NULL, k, sizeof(k), NULL), EG_OK);
        assert_int_equal(eg_apikey_parse(k, EG_APIKEY_LEN, &a), EG_OK);
        assert_int_equal(eg_apikey_hasher_parse(hp, k, EG_APIKEY_LEN, &b), EG_OK);
        assert_string_equal(a.id, b.id);
        assert_string_equal(a.env, b.env);
        memcpy(bad, k, sizeof(k));
        bad[10 + i % 50] ^= 1;
        assert_int_equal(eg_apikey_parse(bad, EG_APIKEY_LEN, NULL), eg_apikey_hasher_parse(hp, bad, EG_APIKEY_LEN, NULL));
        /* the same hasher, used again and again, keeps its pepper */
        assert_int_equal(eg_apikey_hash(pepper, sizeof(pepper) - 1, k, EG_APIKEY_LEN, h1), EG_OK);
        assert_int_equal(eg_apikey_hasher_hash(hp, k, EG_APIKEY_LEN, h2), EG_OK);
        assert_memory_equal(h1, h2, 32);
        assert_int_equal(eg_apikey_hash(NULL, 0, k, EG_APIKEY_LEN, h1), EG_OK);
        assert_int_equal(eg_apikey_hasher_hash(hn, k, EG_APIKEY_LEN, h2), EG_OK);
        assert_memory_equal(h1, h2, 32);
    }
    eg_apikey_hasher_free(hp);
    eg_apikey_hasher_free(hn);
}

/* The shape without the checksum: a key with a wrong checksum has one,
 * anything that is not laid out like a key has none. */
static void test_shape(void **state)
{
    (void)state;
    char k[EG_APIKEY_LEN + 1];
    eg_apikey_info_t info, want;
    assert_int_equal(eg_apikey_generate("test", NULL, k, sizeof(k), &want), EG_OK);
    assert_int_equal(eg_apikey_shape(k, EG_APIKEY_LEN, &info), EG_OK);
    assert_string_equal(info.id, want.id);
    assert_string_equal(info.env, "test");
    k[EG_APIKEY_LEN - 1] = k[EG_APIKEY_LEN - 1] == 'a' ? 'b' : 'a'; /* the checksum broken */
    assert_int_equal(eg_apikey_parse(k, EG_APIKEY_LEN, NULL), EG_EPARSE);
    assert_int_equal(eg_apikey_shape(k, EG_APIKEY_LEN, NULL), EG_OK);
    assert_int_equal(eg_apikey_shape(k, EG_APIKEY_LEN - 1, NULL), EG_EPARSE);
    k[3] = 'x'; /* "eg_xest_" */
    assert_int_equal(eg_apikey_shape(k, EG_APIKEY_LEN, NULL), EG_EPARSE);
    k[3] = 't';
    k[20] = '-';
    assert_int_equal(eg_apikey_shape(k, EG_APIKEY_LEN, NULL), EG_EPARSE);
}

/* Equal only when all 32 bytes are: a difference in any bit of any byte,
 * the highest included, is one. */
static void test_hash_equal(void **state)
{
    (void)state;
    unsigned char a[EG_APIKEY_HASH_LEN], b[EG_APIKEY_HASH_LEN];
    for (int i = 0; i < EG_APIKEY_HASH_LEN; i++) a[i] = (unsigned char)(i * 37 + 11);
    memcpy(b, a, sizeof(a));
    assert_true(eg_apikey_hash_equal(a, b));
    for (int i = 0; i < EG_APIKEY_HASH_LEN; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (unsigned char)(1u << bit);
            assert_false(eg_apikey_hash_equal(a, b));
            b[i] ^= (unsigned char)(1u << bit);
        }
    }
    memset(a, 0, sizeof(a));
    memset(b, 0xff, sizeof(b));
    assert_false(eg_apikey_hash_equal(a, b));
    memset(b, 0, sizeof(b));
    assert_true(eg_apikey_hash_equal(a, b));
}

/* The memo: a hit gives what parse and hash give; a miss for anything not
 * put; two ways per set, the one used less recently replaced. With two
 * entries there is one set: every key shares it, so only the comparison of
 * the whole key tells them apart. */
static void test_memo(void **state)
{
    (void)state;
    const unsigned char pepper[] = "pepper-pepper-pepper";
    eg_apikey_hasher_t *h;
    assert_int_equal(eg_apikey_hasher_new(pepper, sizeof(pepper) - 1, &h), EG_OK);
    char a[EG_APIKEY_LEN + 1], b[EG_APIKEY_LEN + 1], c[EG_APIKEY_LEN + 1];
    assert_int_equal(eg_apikey_generate("live", NULL, a, sizeof(a), NULL), EG_OK);
    assert_int_equal(eg_apikey_generate("test", NULL, b, sizeof(b), NULL), EG_OK);
    assert_int_equal(eg_apikey_generate("live", NULL, c, sizeof(c), NULL), EG_OK);
    unsigned char ha[32], hb[32], hc[32], got[32];
    assert_int_equal(eg_apikey_hasher_hash(h, a, EG_APIKEY_LEN, ha), EG_OK);
    assert_int_equal(eg_apikey_hasher_hash(h, b, EG_APIKEY_LEN, hb), EG_OK);
    assert_int_equal(eg_apikey_hasher_hash(h, c, EG_APIKEY_LEN, hc), EG_OK);
    eg_apikey_info_t info;
    /* off by default: put is a no-op */
    eg_apikey_memo_put(h, a, EG_APIKEY_LEN, ha);
    assert_int_equal(eg_apikey_memo_get(h, a, EG_APIKEY_LEN, &info, got), 0);

    assert_int_equal(eg_apikey_hasher_memo(h, 2), EG_OK);
    assert_int_equal(eg_apikey_memo_get(h, a, EG_APIKEY_LEN, &info, got), 0); /* miss: never put */
    eg_apikey_memo_put(h, a, EG_APIKEY_LEN, ha);
    memset(&info, 0, sizeof(info));
    assert_int_equal(eg_apikey_memo_get(h, a, EG_APIKEY_LEN, &info, got), 1); /* hit */
    assert_memory_equal(got, ha, 32);
    eg_apikey_info_t want;
    assert_int_equal(eg_apikey_parse(a, EG_APIKEY_LEN, &want), EG_OK);
    assert_string_equal(info.id, want.id);
    assert_string_equal(info.env, "live");
    /* a key differing in any one byte never hits, wherever the byte is */
    for (size_t i = 0; i < EG_APIKEY_LEN; i++) {
        char x[EG_APIKEY_LEN + 1];
        memcpy(x, a, sizeof(x));
        x[i] ^= 1;
        assert_int_equal(eg_apikey_memo_get(h, x, EG_APIKEY_LEN, &info, got), 0);
    }
    /* nor does a prefix or the key with a byte more */
    assert_int_equal(eg_apikey_memo_get(h, a, EG_APIKEY_LEN - 1, &info, got), 0);
    char longer[EG_APIKEY_LEN + 2];
    memcpy(longer, a, EG_APIKEY_LEN);
    longer[EG_APIKEY_LEN] = 'x';
    longer[EG_APIKEY_LEN + 1] = '\0';
    assert_int_equal(eg_apikey_memo_get(h, longer, EG_APIKEY_LEN + 1, &info, got), 0);
    /* different keys in the same set: each hits with its own hash */
    eg_apikey_memo_put(h, b, EG_APIKEY_LEN, hb);
    assert_int_equal(eg_apikey_memo_get(h, b, EG_APIKEY_LEN, &info, got), 1);
    assert_memory_equal(got, hb, 32);
    assert_string_equal(info.env, "test");
    assert_int_equal(eg_apikey_memo_get(h, a, EG_APIKEY_LEN, &info, got), 1); /* a used last */
    assert_memory_equal(got, ha, 32);
    /* a third replaces the one used less recently (b) */
    eg_apikey_memo_put(h, c, EG_APIKEY_LEN, hc);
    assert_int_equal(eg_apikey_memo_get(h, b, EG_APIKEY_LEN, &info, got), 0);
    assert_int_equal(eg_apikey_memo_get(h, a, EG_APIKEY_LEN, &info, got), 1);
    assert_int_equal(eg_apikey_memo_get(h, c, EG_APIKEY_LEN, &info, got), 1);
    assert_memory_equal(got, hc, 32);
    /* a key put twice keeps one entry: a stays next to it */
    eg_apikey_memo_put(h, c, EG_APIKEY_LEN, hc);
    assert_int_equal(eg_apikey_memo_get(h, a, EG_APIKEY_LEN, &info, got), 1);
    /* what is not shaped like a key is never kept */
    char junk[EG_APIKEY_LEN + 1];
    memset(junk, '!', EG_APIKEY_LEN);
    junk[EG_APIKEY_LEN] = '\0';
    eg_apikey_memo_put(h, junk, EG_APIKEY_LEN, ha);
    assert_int_equal(eg_apikey_memo_get(h, junk, EG_APIKEY_LEN, &info, got), 0);
    assert_int_equal(eg_apikey_memo_get(h, a, EG_APIKEY_LEN, &info, got), 1);

    /* a bigger memo keeps many keys at once; resizing forgets */
    assert_int_equal(eg_apikey_hasher_memo(h, 256), EG_OK);
    assert_int_equal(eg_apikey_memo_get(h, a, EG_APIKEY_LEN, &info, got), 0);
    enum { N = 40 };
    static char keys[N][EG_APIKEY_LEN + 1];
    static unsigned char hashes[N][32];
    for (int i = 0; i < N; i++) {
        assert_int_equal(eg_apikey_generate("live", NULL, keys[i], sizeof(keys[i]), NULL), EG_OK);
        assert_int_equal(eg_apikey_hasher_hash(h, keys[i], EG_APIKEY_LEN, hashes[i]), EG_OK);
        eg_apikey_memo_put(h, keys[i], EG_APIKEY_LEN, hashes[i]);
    }
    int hits = 0;
    for (int i = 0; i < N; i++) {
        if (eg_apikey_memo_get(h, keys[i], EG_APIKEY_LEN, &info, got)) {
            hits++;
            assert_memory_equal(got, hashes[i], 32); /* a hit is always the key's own hash */
        }
    }
    assert_true(hits >= N / 2); /* 40 keys in 128 sets of two: evictions are rare */
    /* off again */
    assert_int_equal(eg_apikey_hasher_memo(h, 0), EG_OK);
    assert_int_equal(eg_apikey_memo_get(h, keys[0], EG_APIKEY_LEN, &info, got), 0);
    eg_apikey_hasher_free(h);
}

static void test_cidr(void **state)
{
    (void)state;
    eg_cidr_t b, ip;
    assert_int_equal(eg_cidr_parse("192.168.1.0/24", &b), EG_OK);
    assert_int_equal(eg_ip_parse("192.168.1.77", &ip), EG_OK);
    assert_true(eg_cidr_contains(&b, &ip));
    assert_int_equal(eg_ip_parse("192.168.2.1", &ip), EG_OK);
    assert_false(eg_cidr_contains(&b, &ip));
    /* a v4-mapped client address matches an IPv4 block */
    assert_int_equal(eg_ip_parse("::ffff:192.168.1.5", &ip), EG_OK);
    assert_true(eg_cidr_contains(&b, &ip));
    assert_int_equal(eg_cidr_parse("10.0.0.1", &b), EG_OK);
    assert_int_equal(eg_ip_parse("10.0.0.1", &ip), EG_OK);
    assert_true(eg_cidr_contains(&b, &ip));
    assert_int_equal(eg_ip_parse("10.0.0.2", &ip), EG_OK);
    assert_false(eg_cidr_contains(&b, &ip));
    /* IPv6 */
    assert_int_equal(eg_cidr_parse("2001:db8::/32", &b), EG_OK);
    assert_int_equal(eg_ip_parse("2001:db8:1::5", &ip), EG_OK);
    assert_true(eg_cidr_contains(&b, &ip));
    assert_int_equal(eg_ip_parse("2001:db9::5", &ip), EG_OK);
    assert_false(eg_cidr_contains(&b, &ip));
    assert_int_equal(eg_cidr_parse("2001:db8:abcd:12::/63", &b), EG_OK);
    assert_int_equal(eg_ip_parse("2001:db8:abcd:13::1", &ip), EG_OK);
    assert_true(eg_cidr_contains(&b, &ip));
    assert_int_equal(eg_ip_parse("2001:db8:abcd:14::1", &ip), EG_OK);
    assert_false(eg_cidr_contains(&b, &ip));
    assert_int_equal(eg_cidr_parse("::/0", &b), EG_OK);
    assert_true(eg_cidr_contains(&b, &ip));
    /* an IPv4 block never matches a plain IPv6 address */
    assert_int_equal(eg_cidr_parse("0.0.0.0/0", &b), EG_OK);
    assert_false(eg_cidr_contains(&b, &ip));
    eg_cidr_t list[2];
    assert_int_equal(eg_cidr_parse("10.0.0.0/8", &list[0]), EG_OK);
    assert_int_equal(eg_cidr_parse("::1", &list[1]), EG_OK);
    assert_int_equal(eg_ip_parse("::1", &ip), EG_OK);
    assert_true(eg_cidr_any(list, 2, &ip));
    assert_false(eg_cidr_any(list, 1, &ip));
    const char *bad[] = {"10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "10.0.0", "host",
                         "2001:db8::1/32", "::/129", "1.2.3.4/-1", "", "10.0.0.0/8x", NULL};
    for (size_t i = 0; bad[i]; i++)
        if (eg_cidr_parse(bad[i], &b) == EG_OK) fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(eg_ip_parse("10.0.0.0/8", &ip), EG_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_parse),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_hasher_matches_one_shot),
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_hash_equal),
        cmocka_unit_test(test_memo),
        cmocka_unit_test(test_cidr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
