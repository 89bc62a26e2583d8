/* test_store.c - the store backends, key administration and the keyring. */
#include "testutil.h"

#include <sys/stat.h>
#include <sqlite3.h>
#include <unistd.h>

#include "keyring.h"
#include "keys.h"
#include "store.h"

static char dbpath[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dbpath, sizeof(dbpath), "/tmp/eg_test_store_%d.db", (int)getpid());
    unlink(dbpath);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[300];
    unlink(dbpath);
    snprintf(p, sizeof(p), "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", dbpath);
    unlink(p);
    return 0;
}

static eg_store_t *open_store(eg_store_backend_t b)
{
    eg_store_t *s = NULL;
    char err[256] = "";
    if (eg_store_open(b, dbpath, 1000, &s, err, sizeof(err)) != EG_OK) fail_msg("open: %s", err);
    return s;
}

/* The same contract for both backends. */
static void backend_contract(eg_store_backend_t b)
{
    eg_store_t *s = open_store(b);
    eg_key_t k, got;
    memset(&k, 0, sizeof(k));
    strcpy(k.id, "abcd1234");
    strcpy(k.env, "test");
    k.name = "one";
    k.scopes = "a b";
    k.ips = "10.0.0.0/8";
    k.created = 100;
    memset(k.hash, 7, sizeof(k.hash));
    uint64_t v0, v1, v2;
    assert_int_equal(eg_store_version(s, &v0), EG_OK);
    assert_int_equal(eg_store_key_insert(s, &k), EG_OK);
    assert_int_equal(eg_store_key_insert(s, &k), EG_EEXIST);
    assert_int_equal(eg_store_version(s, &v1), EG_OK);
    assert_true(v1 != v0);
    assert_int_equal(eg_store_key_get(s, "abcd1234", &got), EG_OK);
    assert_string_equal(got.name, "one");
    assert_string_equal(got.scopes, "a b");
    assert_string_equal(got.ips, "10.0.0.0/8");
    assert_string_equal(got.env, "test");
    assert_null(got.owner);
    assert_memory_equal(got.hash, k.hash, sizeof(k.hash));
    assert_int_equal(got.status, EG_KEY_ACTIVE);
    eg_key_clear(&got);
    assert_int_equal(eg_store_key_get(s, "zzzz0000", &got), EG_ENOENT);
    k.status = EG_KEY_SUSPENDED;
    k.reason = "abuse";
    assert_int_equal(eg_store_key_update(s, &k), EG_OK);
    assert_int_equal(eg_store_version(s, &v2), EG_OK);
    assert_true(v2 != v1);
    strcpy(k.id, "zzzz0000");
    assert_int_equal(eg_store_key_update(s, &k), EG_ENOENT);
    strcpy(k.id, "0000aaaa");
    assert_int_equal(eg_store_key_insert(s, &k), EG_OK);
    /* touching records use without counting as a change */
    assert_int_equal(eg_store_version(s, &v1), EG_OK);
    assert_int_equal(eg_store_key_touch(s, "abcd1234", 500), EG_OK);
    assert_int_equal(eg_store_key_touch(s, "abcd1234", 400), EG_OK); /* never goes back */
    assert_int_equal(eg_store_version(s, &v2), EG_OK);
    assert_true(v1 == v2);
    eg_key_t *all;
    size_t n;
    assert_int_equal(eg_store_key_list(s, &all, &n), EG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].id, "0000aaaa"); /* sorted by id */
    assert_string_equal(all[1].id, "abcd1234");
    assert_int_equal(all[1].status, EG_KEY_SUSPENDED);
    assert_string_equal(all[1].reason, "abuse");
    assert_int_equal(all[1].last_used, 500);
    for (size_t i = 0; i < n; i++) eg_key_clear(&all[i]);
    free(all);
    eg_store_close(s);
}

static void test_memory(void **state)
{
    (void)state;
    backend_contract(EG_STORE_MEMORY);
}

static void test_sqlite(void **state)
{
    (void)state;
    backend_contract(EG_STORE_SQLITE);
    /* reopening finds what was written: keys survive a restart */
    eg_store_t *s = open_store(EG_STORE_SQLITE);
    eg_key_t got;
    assert_int_equal(eg_store_key_get(s, "abcd1234", &got), EG_OK);
    assert_string_equal(got.reason, "abuse");
    eg_key_clear(&got);
    eg_store_close(s);
}

static void test_sqlite_schema(void **state)
{
    (void)state;
    /* a file from a newer errgate is refused, not guessed at */
    eg_store_t *s = open_store(EG_STORE_SQLITE);
    eg_store_close(s);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99)", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    char err[256] = "";
    assert_int_equal(eg_store_open(EG_STORE_SQLITE, dbpath, 1000, &s, err, sizeof(err)), EG_EINVAL);
    assert_non_null(strstr(err, "newer"));
    /* not a database at all */
    teardown(NULL);
    FILE *f = fopen(dbpath, "wb");
    assert_non_null(f);
    fputs("this is not a database, just text that is long enough to fill a header......", f);
    fclose(f);
    assert_int_not_equal(eg_store_open(EG_STORE_SQLITE, dbpath, 1000, &s, err, sizeof(err)), EG_OK);
    assert_true(strlen(err) > 0);
    /* a directory that does not exist */
    assert_int_not_equal(eg_store_open(EG_STORE_SQLITE, "/nonexistent/dir/x.db", 1000, &s, err, sizeof(err)),
                         EG_OK);
}

/* The mode of the store's file, or of its "-wal" / "-shm" companion; -1 when absent. */
static int file_mode(const char *suffix)
{
    char p[300];
    struct stat st;
    snprintf(p, sizeof(p), "%s%s", dbpath, suffix);
    return stat(p, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* Hashes and usage are the owner's: a new file and the -wal and -shm that
 * SQLite makes next to it are 0600 whatever the umask (0 here, where the
 * default would be 0666), and a file the operator made 0640 stays 0640. */
static void test_sqlite_file_modes(void **state)
{
    (void)state;
    mode_t old = umask(0);
    eg_store_t *s = open_store(EG_STORE_SQLITE);
    umask(old);
    eg_key_t k;
    memset(&k, 0, sizeof(k));
    strcpy(k.id, "mode0001");
    k.name = "m";
    assert_int_equal(eg_store_key_insert(s, &k), EG_OK); /* a write: the -wal is in use */
    assert_int_equal(file_mode(""), 0600);
    assert_int_equal(file_mode("-wal"), 0600);
    assert_int_equal(file_mode("-shm"), 0600);
    eg_store_close(s);
    assert_int_equal(chmod(dbpath, 0640), 0);
    old = umask(0);
    s = open_store(EG_STORE_SQLITE);
    umask(old);
    strcpy(k.id, "mode0002");
    assert_int_equal(eg_store_key_insert(s, &k), EG_OK);
    assert_int_equal(file_mode(""), 0640);
    assert_int_equal(file_mode("-wal"), 0640);
    assert_int_equal(file_mode("-shm"), 0640);
    eg_store_close(s);
}

static void test_keys_admin(void **state)
{
    (void)state;
    eg_store_t *s = open_store(EG_STORE_MEMORY);
    char secret[EG_APIKEY_LEN + 1], err[300];
    eg_key_t k;
    eg_keyspec_t spec = {"svc", "user_1", "pro", "search:basic, search:advanced", "10.0.0.0/8,::1", NULL, 0};
    assert_int_equal(eg_keys_create(s, NULL, 0, &spec, 1000, secret, &k, err, sizeof(err)), EG_OK);
    assert_string_equal(k.scopes, "search:basic search:advanced");
    assert_int_equal(eg_apikey_parse(secret, strlen(secret), NULL), EG_OK);
    unsigned char h[32];
    eg_apikey_hash(NULL, 0, secret, strlen(secret), h);
    assert_memory_equal(h, k.hash, 32); /* only the hash is kept */
    json_t *j = eg_key_json(&k);
    char *dump = json_dumps(j, 0);
    assert_null(strstr(dump, secret));
    assert_null(strstr(dump, "hash"));
    free(dump);
    json_decref(j);
    char id[16];
    strcpy(id, k.id);
    eg_key_clear(&k);
    /* validation */
    eg_keyspec_t bad = spec;
    bad.ips = "10.0.0.1/8";
    assert_int_equal(eg_keys_create(s, NULL, 0, &bad, 1000, secret, &k, err, sizeof(err)), EG_EINVAL);
    assert_non_null(strstr(err, "10.0.0.1/8"));
    bad = spec;
    bad.scopes = "bad scope\n";
    assert_int_equal(eg_keys_create(s, NULL, 0, &bad, 1000, secret, &k, err, sizeof(err)), EG_EINVAL);
    bad = spec;
    bad.name = "";
    assert_int_equal(eg_keys_create(s, NULL, 0, &bad, 1000, secret, &k, err, sizeof(err)), EG_EINVAL);
    bad = spec;
    bad.expires = 999;
    assert_int_equal(eg_keys_create(s, NULL, 0, &bad, 1000, secret, &k, err, sizeof(err)), EG_EINVAL);
    /* suspend needs a reason; revoked is final */
    assert_int_equal(eg_keys_set_status(s, id, EG_KEY_SUSPENDED, NULL, &k, err, sizeof(err)), EG_EINVAL);
    assert_int_equal(eg_keys_set_status(s, id, EG_KEY_SUSPENDED, "abuse", &k, err, sizeof(err)), EG_OK);
    eg_key_clear(&k);
    assert_int_equal(eg_keys_set_status(s, id, EG_KEY_ACTIVE, NULL, &k, err, sizeof(err)), EG_OK);
    assert_null(k.reason);
    eg_key_clear(&k);
    assert_int_equal(eg_keys_set_status(s, id, EG_KEY_REVOKED, NULL, &k, err, sizeof(err)), EG_OK);
    eg_key_clear(&k);
    assert_int_equal(eg_keys_set_status(s, id, EG_KEY_ACTIVE, NULL, &k, err, sizeof(err)), EG_EINVAL);
    assert_int_equal(eg_keys_rotate(s, NULL, 0, id, 60, 1000, secret, &k, err, sizeof(err)), EG_EINVAL);
    assert_int_equal(eg_keys_get(s, "nope", &k, err, sizeof(err)), EG_EINVAL);
    assert_int_equal(eg_keys_get(s, "zzzz9999", &k, err, sizeof(err)), EG_ENOENT);
    long long t;
    assert_int_equal(eg_keys_parse_date("2027-01-31", &t), EG_OK);
    assert_int_equal(t, 1801353600LL);
    assert_int_equal(eg_keys_parse_date("2027-01-31T12:00:00Z", &t), EG_OK);
    assert_int_equal(t, 1801353600LL + 43200);
    assert_int_not_equal(eg_keys_parse_date("31/01/2027", &t), EG_OK);
    eg_store_close(s);
}

static eg_auth_result_t check(eg_keyring_t *kr, const char *key, const char *ip, long long now, eg_principal_t *p)
{
    eg_cidr_t c;
    if (ip) assert_int_equal(eg_ip_parse(ip, &c), EG_OK);
    /* both paths: the thread's hasher and the one-shot functions agree */
    eg_apikey_hasher_t *h;
    assert_int_equal(eg_keyring_hasher_new(kr, &h), EG_OK);
    eg_principal_t p2;
    eg_auth_result_t r1 = eg_keyring_check(kr, h, key, key ? strlen(key) : 0, ip ? &c : NULL, now, p);
    eg_auth_result_t r2 = eg_keyring_check(kr, NULL, key, key ? strlen(key) : 0, ip ? &c : NULL, now, &p2);
    eg_apikey_hasher_free(h);
    assert_int_equal(r1, r2);
    return r1;
}

static void test_keyring(void **state)
{
    (void)state;
    const unsigned char pepper[] = "0123456789abcdef-pepper";
    eg_store_t *s = open_store(EG_STORE_SQLITE);
    char k1[EG_APIKEY_LEN + 1], k2[EG_APIKEY_LEN + 1], err[300];
    eg_key_t rec;
    eg_keyspec_t spec = {"a", "user_1", "pro", "read", "10.0.0.0/8,2001:db8::/32", NULL, 0};
    assert_int_equal(eg_keys_create(s, pepper, sizeof(pepper) - 1, &spec, 1000, k1, &rec, err, sizeof(err)), EG_OK);
    char id1[16];
    strcpy(id1, rec.id);
    eg_key_clear(&rec);
    eg_keyspec_t spec2 = {"b", NULL, NULL, NULL, NULL, "test", 5000};
    assert_int_equal(eg_keys_create(s, pepper, sizeof(pepper) - 1, &spec2, 1000, k2, &rec, err, sizeof(err)), EG_OK);
    eg_key_clear(&rec);
    eg_keyring_t *kr;
    assert_int_equal(eg_keyring_new(s, pepper, sizeof(pepper) - 1, 0, &kr, err, sizeof(err)), EG_OK);
    assert_int_equal(eg_keyring_count(kr), 2);
    eg_principal_t p;
    assert_int_equal(check(kr, k1, "10.1.2.3", 2000, &p), EG_AUTH_OK);
    assert_string_equal(p.key_id, id1);
    assert_string_equal(p.consumer, "user_1");
    assert_string_equal(p.plan, "pro");
    assert_string_equal(p.scopes, "read");
    assert_int_equal(check(kr, k1, "2001:db8::7", 2000, &p), EG_AUTH_OK);
    assert_int_equal(check(kr, k1, "192.168.0.1", 2000, &p), EG_AUTH_IP);
    assert_string_equal(p.detail, "10.0.0.0/8,2001:db8::/32");
    assert_int_equal(check(kr, k1, NULL, 2000, &p), EG_AUTH_IP);
    assert_int_equal(check(kr, NULL, NULL, 2000, &p), EG_AUTH_MISSING);
    assert_int_equal(check(kr, "eg_live_nonsense", NULL, 2000, &p), EG_AUTH_MALFORMED);
    /* no IP list: any address; the consumer defaults to the key id */
    assert_int_equal(check(kr, k2, "192.168.0.1", 2000, &p), EG_AUTH_OK);
    assert_string_equal(p.consumer, p.key_id);
    assert_int_equal(check(kr, k2, "192.168.0.1", 5000, &p), EG_AUTH_INVALID); /* expired */
    /* a well-formed key that was never issued */
    char k3[EG_APIKEY_LEN + 1];
    assert_int_equal(eg_apikey_generate("live", NULL, k3, sizeof(k3), NULL), EG_OK);
    assert_int_equal(check(kr, k3, "10.0.0.1", 2000, &p), EG_AUTH_INVALID);
    /* the right id with another secret */
    assert_int_equal(eg_apikey_generate("live", id1, k3, sizeof(k3), NULL), EG_OK);
    assert_int_equal(check(kr, k3, "10.0.0.1", 2000, &p), EG_AUTH_INVALID);
    /* suspension is seen after a reload, with its reason */
    assert_int_equal(eg_keys_set_status(s, id1, EG_KEY_SUSPENDED, "Terms of service violation", &rec, err, sizeof(err)), EG_OK);
    eg_key_clear(&rec);
    assert_int_equal(check(kr, k1, "10.0.0.1", 2000, &p), EG_AUTH_OK); /* the snapshot until then */
    assert_int_equal(eg_keyring_reload(kr), EG_OK);
    assert_int_equal(check(kr, k1, "10.0.0.1", 2000, &p), EG_AUTH_SUSPENDED);
    assert_string_equal(p.detail, "Terms of service violation");
    assert_int_equal(eg_keys_set_status(s, id1, EG_KEY_ACTIVE, NULL, &rec, err, sizeof(err)), EG_OK);
    eg_key_clear(&rec);
    /* rotation: the old secret works during the grace period only */
    char k1b[EG_APIKEY_LEN + 1];
    assert_int_equal(eg_keys_rotate(s, pepper, sizeof(pepper) - 1, id1, 100, 2000, k1b, &rec, err, sizeof(err)), EG_OK);
    eg_key_clear(&rec);
    assert_int_equal(eg_keyring_reload(kr), EG_OK);
    assert_int_equal(check(kr, k1b, "10.0.0.1", 2050, &p), EG_AUTH_OK);
    assert_int_equal(check(kr, k1, "10.0.0.1", 2050, &p), EG_AUTH_OK);
    assert_int_equal(check(kr, k1, "10.0.0.1", 2100, &p), EG_AUTH_INVALID);
    assert_int_equal(check(kr, k1b, "10.0.0.1", 2100, &p), EG_AUTH_OK);
    /* revoked: neither secret */
    assert_int_equal(eg_keys_set_status(s, id1, EG_KEY_REVOKED, "leaked", &rec, err, sizeof(err)), EG_OK);
    eg_key_clear(&rec);
    assert_int_equal(eg_keyring_reload(kr), EG_OK);
    assert_int_equal(check(kr, k1b, "10.0.0.1", 2050, &p), EG_AUTH_INVALID);
    assert_int_equal(check(kr, k1, "10.0.0.1", 2050, &p), EG_AUTH_INVALID);
    /* a keyring with another pepper knows none of the keys */
    eg_keyring_t *other;
    assert_int_equal(eg_keyring_new(s, (const unsigned char *)"another pepper!!", 16, 0, &other, err, sizeof(err)), EG_OK);
    assert_int_equal(check(other, k2, "10.0.0.1", 2000, &p), EG_AUTH_INVALID);
    eg_keyring_free(other);
    /* last-used times reach the store when the keyring is freed */
    eg_keyring_free(kr);
    eg_key_t *all;
    size_t n;
    assert_int_equal(eg_store_key_list(s, &all, &n), EG_OK);
    long long used = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].id, id1) != 0) used = all[i].last_used;
        eg_key_clear(&all[i]);
    }
    free(all);
    assert_int_equal(used, 2000);
    eg_store_close(s);
}

/* One hasher (a worker's) across requests: its memo keeps a key's parse
 * and hash, never a decision. Suspension, revocation, rotation and expiry
 * apply to the next request of a memoised key; a wrong key is never
 * memoised, and a memoised one still answers as it did. */
static void test_keyring_memo(void **state)
{
    (void)state;
    const unsigned char pepper[] = "0123456789abcdef-pepper";
    eg_store_t *s = open_store(EG_STORE_SQLITE);
    char k1[EG_APIKEY_LEN + 1], err[300];
    eg_key_t rec;
    eg_keyspec_t spec = {"a", "user_1", "pro", "read", "10.0.0.0/8", NULL, 9000};
    assert_int_equal(
        eg_keys_create(s, pepper, sizeof(pepper) - 1, &spec, 1000, k1, &rec, err, sizeof(err)),
        EG_OK);
    char id1[16];
    strcpy(id1, rec.id);
    eg_key_clear(&rec);
    eg_keyring_t *kr;
    assert_int_equal(eg_keyring_new(s, pepper, sizeof(pepper) - 1, 0, &kr, err, sizeof(err)),
                     EG_OK);
    eg_apikey_hasher_t *h;
    assert_int_equal(eg_keyring_hasher_new(kr, &h), EG_OK);
    eg_cidr_t in, out;
    assert_int_equal(eg_ip_parse("10.1.2.3", &in), EG_OK);
    assert_int_equal(eg_ip_parse("192.168.0.1", &out), EG_OK);
    eg_principal_t p;
    eg_apikey_info_t info;
    unsigned char hash[EG_APIKEY_HASH_LEN], want[EG_APIKEY_HASH_LEN];
    assert_int_equal(eg_keyring_hash(kr, k1, EG_APIKEY_LEN, want), EG_OK);
    /* a well-formed key with the right id and another secret: refused, not memoised */
    char wrong[EG_APIKEY_LEN + 1];
    assert_int_equal(eg_apikey_generate("live", id1, wrong, sizeof(wrong), NULL), EG_OK);
    assert_int_equal(eg_keyring_check(kr, h, wrong, EG_APIKEY_LEN, &in, 2000, &p), EG_AUTH_INVALID);
    assert_string_equal(p.why, "wrong secret");
    assert_int_equal(eg_apikey_memo_get(h, wrong, EG_APIKEY_LEN, &info, hash), 0);
    /* the first request memoises the key; the next ones hit */
    assert_int_equal(eg_apikey_memo_get(h, k1, EG_APIKEY_LEN, &info, hash), 0);
    assert_int_equal(eg_keyring_check(kr, h, k1, EG_APIKEY_LEN, &in, 2000, &p), EG_AUTH_OK);
    assert_int_equal(eg_apikey_memo_get(h, k1, EG_APIKEY_LEN, &info, hash), 1);
    assert_memory_equal(hash, want, EG_APIKEY_HASH_LEN);
    assert_string_equal(info.id, id1);
    assert_int_equal(eg_keyring_check(kr, h, k1, EG_APIKEY_LEN, &in, 2000, &p), EG_AUTH_OK);
    assert_string_equal(p.key_id, id1);
    assert_string_equal(p.consumer, "user_1");
    assert_string_equal(p.plan, "pro");
    /* the allow list and expiry are the snapshot's, request by request */
    assert_int_equal(eg_keyring_check(kr, h, k1, EG_APIKEY_LEN, &out, 2000, &p), EG_AUTH_IP);
    assert_int_equal(eg_keyring_check(kr, h, k1, EG_APIKEY_LEN, &in, 9000, &p), EG_AUTH_INVALID);
    assert_string_equal(p.why, "key expired");
    /* the memoised key with one byte of its secret changed: still wrong */
    char near[EG_APIKEY_LEN + 1];
    memcpy(near, k1, sizeof(near));
    near[30] = near[30] == 'a' ? 'b' : 'a';
    assert_int_equal(eg_keyring_check(kr, h, near, EG_APIKEY_LEN, &in, 2000, &p),
                     EG_AUTH_MALFORMED);
    assert_string_equal(p.why, "not a well-formed errgate API key");
    /* a bad checksum is malformed whatever the id: unknown, or known */
    char unknown[EG_APIKEY_LEN + 1];
    assert_int_equal(eg_apikey_generate("live", NULL, unknown, sizeof(unknown), NULL), EG_OK);
    unknown[EG_APIKEY_LEN - 1] = unknown[EG_APIKEY_LEN - 1] == 'a' ? 'b' : 'a';
    assert_int_equal(eg_keyring_check(kr, h, unknown, EG_APIKEY_LEN, &in, 2000, &p),
                     EG_AUTH_MALFORMED);
    assert_int_equal(eg_keyring_check(kr, NULL, unknown, EG_APIKEY_LEN, &in, 2000, &p),
                     EG_AUTH_MALFORMED);
    assert_int_equal(eg_keyring_check(kr, NULL, near, EG_APIKEY_LEN, &in, 2000, &p),
                     EG_AUTH_MALFORMED);
    assert_int_equal(eg_apikey_memo_get(h, near, EG_APIKEY_LEN, &info, hash), 0);
    /* suspended while memoised: the next request is refused */
    assert_int_equal(eg_keys_set_status(s, id1, EG_KEY_SUSPENDED, "unpaid", &rec, err, sizeof(err)),
                     EG_OK);
    eg_key_clear(&rec);
    assert_int_equal(eg_keyring_reload(kr), EG_OK);
    assert_int_equal(eg_apikey_memo_get(h, k1, EG_APIKEY_LEN, &info, hash), 1);
    assert_int_equal(eg_keyring_check(kr, h, k1, EG_APIKEY_LEN, &in, 2000, &p), EG_AUTH_SUSPENDED);
    assert_string_equal(p.detail, "unpaid");
    assert_int_equal(eg_keys_set_status(s, id1, EG_KEY_ACTIVE, NULL, &rec, err, sizeof(err)),
                     EG_OK);
    eg_key_clear(&rec);
    assert_int_equal(eg_keyring_reload(kr), EG_OK);
    assert_int_equal(eg_keyring_check(kr, h, k1, EG_APIKEY_LEN, &in, 2000, &p), EG_AUTH_OK);
    /* rotated: the memoised old secret works for the grace period only */
    char k1b[EG_APIKEY_LEN + 1];
    assert_int_equal(
        eg_keys_rotate(s, pepper, sizeof(pepper) - 1, id1, 100, 2000, k1b, &rec, err, sizeof(err)),
        EG_OK);
    eg_key_clear(&rec);
    assert_int_equal(eg_keyring_reload(kr), EG_OK);
    assert_int_equal(eg_keyring_check(kr, h, k1, EG_APIKEY_LEN, &in, 2050, &p), EG_AUTH_OK);
    assert_int_equal(eg_keyring_check(kr, h, k1b, EG_APIKEY_LEN, &in, 2050, &p), EG_AUTH_OK);
    assert_int_equal(eg_apikey_memo_get(h, k1b, EG_APIKEY_LEN, &info, hash), 1);
    assert_int_equal(eg_keyring_check(kr, h, k1, EG_APIKEY_LEN, &in, 2100, &p), EG_AUTH_INVALID);
    assert_string_equal(p.why, "rotated secret past its grace period");
    /* revoked while memoised: refused at once, both secrets */
    assert_int_equal(eg_keys_set_status(s, id1, EG_KEY_REVOKED, "leaked", &rec, err, sizeof(err)),
                     EG_OK);
    eg_key_clear(&rec);
    assert_int_equal(eg_keyring_reload(kr), EG_OK);
    assert_int_equal(eg_apikey_memo_get(h, k1b, EG_APIKEY_LEN, &info, hash), 1);
    assert_int_equal(eg_keyring_check(kr, h, k1b, EG_APIKEY_LEN, &in, 2050, &p), EG_AUTH_INVALID);
    assert_string_equal(p.why, "key revoked");
    assert_int_equal(eg_keyring_check(kr, h, k1, EG_APIKEY_LEN, &in, 2050, &p), EG_AUTH_INVALID);
    /* the store failing: a memoised key gets the 503 like any other */
    char saved[300];
    snprintf(saved, sizeof(saved), "%s.saved", dbpath);
    assert_int_equal(rename(dbpath, saved), 0);
    assert_int_not_equal(eg_keyring_reload(kr), EG_OK);
    assert_int_equal(eg_apikey_memo_get(h, k1b, EG_APIKEY_LEN, &info, hash), 1);
    assert_int_equal(eg_keyring_check(kr, h, k1b, EG_APIKEY_LEN, &in, 2050, &p),
                     EG_AUTH_UNAVAILABLE);
    /* and a malformed key is still told apart while the store is down */
    assert_int_equal(eg_keyring_check(kr, h, near, EG_APIKEY_LEN, &in, 2050, &p),
                     EG_AUTH_MALFORMED);
    assert_int_equal(eg_keyring_check(kr, h, wrong, EG_APIKEY_LEN, &in, 2050, &p),
                     EG_AUTH_UNAVAILABLE);
    assert_int_equal(rename(saved, dbpath), 0);
    eg_apikey_hasher_free(h);
    eg_keyring_free(kr);
    eg_store_close(s);
}

static void test_keyring_store_removed(void **state)
{
    (void)state;
    eg_store_t *s = open_store(EG_STORE_SQLITE);
    char k[EG_APIKEY_LEN + 1], err[300];
    eg_key_t rec;
    eg_keyspec_t spec = {"a", NULL, NULL, NULL, NULL, NULL, 0};
    assert_int_equal(eg_keys_create(s, NULL, 0, &spec, 1000, k, &rec, err, sizeof(err)), EG_OK);
    eg_key_clear(&rec);
    eg_keyring_t *kr;
    assert_int_equal(eg_keyring_new(s, NULL, 0, 0, &kr, err, sizeof(err)), EG_OK);
    eg_principal_t p;
    assert_int_equal(check(kr, k, NULL, 2000, &p), EG_AUTH_OK);
    char saved[300];
    snprintf(saved, sizeof(saved), "%s.saved", dbpath);
    assert_int_equal(rename(dbpath, saved), 0);
    assert_int_not_equal(eg_keyring_reload(kr), EG_OK);
    assert_false(eg_keyring_healthy(kr));
    assert_int_equal(check(kr, k, NULL, 2000, &p), EG_AUTH_UNAVAILABLE);
    /* the file put back is reopened */
    assert_int_equal(rename(saved, dbpath), 0);
    assert_int_equal(eg_keyring_reload(kr), EG_OK);
    assert_int_equal(check(kr, k, NULL, 2000, &p), EG_AUTH_OK);
    eg_keyring_free(kr);
    eg_store_close(s);
}

/* Group commits: decisions in memory, exact; at most commit_every - 1
 * admitted and uncommitted (the next one is not decided "now"); what was
 * admitted is in the file once the writer committed, and at close. */
static void test_sqlite_group_commit(void **state)
{
    (void)state;
    /* a wait for the writer's commit is bounded by busy_timeout + 1 s; give
     * a machine loaded by a parallel build (and ASan) time for the fsync */
    eg_store_t *s = NULL;
    char err[256] = "";
    if (eg_store_open(EG_STORE_SQLITE, dbpath, 30000, &s, err, sizeof(err)) != EG_OK) fail_msg("open: %s", err);
    assert_int_equal(eg_store_set_commit(s, 4, 10000), EG_OK);
    eg_charge_t q = {EG_CHARGE_QUOTA, "q:/x|k1", "2026-11", 5, 1, 0, 0};
    /* not loaded yet: the loop's path must not read the file */
    assert_int_equal(eg_store_charge_now(s, &q, 1), EG_EAGAIN);
    assert_int_equal(eg_store_charge(s, &q, 1), 1); /* loads, decides, 1 uncommitted */
    assert_int_equal(eg_store_charge_now(s, &q, 1), 1);
    assert_int_equal(eg_store_charge_now(s, &q, 1), 1);
    /* three admitted and uncommitted (the interval is 10 s): the fourth waits */
    assert_int_equal(eg_store_charge_now(s, &q, 1), EG_EAGAIN);
    assert_int_equal(eg_store_charge(s, &q, 1), 1); /* waits for the commit of the first */
    long long used = 0;
    assert_int_equal(eg_store_quota_get(s, "q:/x|k1", "2026-11", &used), EG_OK);
    assert_int_equal(used, 4);
    /* the file has at least the first, read by another connection */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT used FROM quota_usage WHERE subject = 'q:/x|k1'", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_int64(st, 0) >= 1);
    sqlite3_finalize(st);
    assert_int_equal(eg_store_charge(s, &q, 1), 1);
    /* the limit, exactly: refused, with the usage as it stands */
    assert_int_equal(eg_store_charge(s, &q, 1), 0);
    assert_int_equal(q.ok, 0);
    assert_int_equal(q.value, 5);
    /* credits: a top-up reaches the cached balance once */
    eg_charge_t c = {EG_CHARGE_CREDITS, "k1", NULL, 0, 2, 0, 0};
    long long bal = 0;
    assert_int_equal(eg_store_charge(s, &c, 1), 0);
    assert_int_equal(eg_store_credits_add(s, "k1", 3, &bal), EG_OK);
    assert_int_equal(bal, 3);
    assert_int_equal(eg_store_charge(s, &c, 1), 1);
    assert_int_equal(eg_store_charge(s, &c, 1), 0);
    assert_int_equal(c.value, 1);
    eg_store_close(s); /* the writer's last commit */
    s = open_store(EG_STORE_SQLITE);
    assert_int_equal(eg_store_quota_get(s, "q:/x|k1", "2026-11", &used), EG_OK);
    assert_int_equal(used, 5);
    assert_int_equal(eg_store_credits_get(s, "k1", &bal), EG_OK);
    assert_int_equal(bal, 1);
    eg_store_close(s);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_file_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_memo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_store_removed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
