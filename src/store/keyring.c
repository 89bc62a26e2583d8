/* keyring.c - API key checks from an in-memory snapshot (see keyring.h). */
#include "keyring.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/apikey.h"

typedef struct {
    eg_cidr_t *cidrs;
    size_t ncidrs;
    atomic_llong used; /* last use seen through this snapshot */
} extra_t;

/* A key by its owner, for the metering API's user_id (eg_keyring_user). */
typedef struct {
    const char *owner;
    size_t at;
} owner_t;

typedef struct {
    eg_key_t *keys; /* sorted by id */
    extra_t *extra;
    size_t n;
    owner_t *owners; /* the keys that have an owner, sorted by it */
    size_t nowners;
} snap_t;

struct eg_keyring_s {
    eg_store_t *store;
    unsigned char pepper[256];
    size_t pepper_len;
    uint64_t refresh_ms;
    pthread_rwlock_t lock; /* guards snap */
    snap_t *snap;
    uint64_t version;
    atomic_int healthy;
    pthread_mutex_t reload_lock; /* one reload at a time */
    pthread_mutex_t wait_lock;
    pthread_cond_t wake;
    int stop, started;
    pthread_t thread;
};

int eg_cidr_list_parse(const char *list, eg_cidr_t **out, size_t *n, char *bad, size_t badlen)
{
    *out = NULL;
    *n = 0;
    if (!list || !*list) return EG_OK;
    size_t cap = 1;
    for (const char *p = list; *p; p++) cap += *p == ',';
    eg_cidr_t *v = calloc(cap, sizeof(*v));
    if (!v) return EG_ENOMEM;
    size_t cnt = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char item[80];
        while (len && *p == ' ') p++, len--;
        while (len && p[len - 1] == ' ') len--;
        if (len == 0 || len >= sizeof(item)) goto bad;
        memcpy(item, p, len);
        item[len] = '\0';
        if (eg_cidr_parse(item, &v[cnt]) != EG_OK) goto bad;
        cnt++;
        p = e ? e + 1 : p + len;
        continue;
    bad:
        if (bad) snprintf(bad, badlen, "%.*s", (int)(len > 79 ? 79 : len), p);
        free(v);
        return EG_EPARSE;
    }
    *out = v;
    *n = cnt;
    return EG_OK;
}

static void snap_free(snap_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        eg_key_clear(&s->keys[i]);
        free(s->extra[i].cidrs);
    }
    free(s->keys);
    free(s->extra);
    free(s->owners);
    free(s);
}

static int owner_cmp(const void *a, const void *b)
{
    return strcmp(((const owner_t *)a)->owner, ((const owner_t *)b)->owner);
}

/* The owner index of a loaded snapshot. */
static int index_owners(snap_t *s)
{
    if (!(s->owners = malloc((s->n ? s->n : 1) * sizeof(*s->owners)))) return EG_ENOMEM;
    for (size_t i = 0; i < s->n; i++)
        if (s->keys[i].owner && s->keys[i].owner[0])
            s->owners[s->nowners++] = (owner_t){s->keys[i].owner, i};
    qsort(s->owners, s->nowners, sizeof(*s->owners), owner_cmp);
    return EG_OK;
}

static const eg_key_t *snap_find(const snap_t *s, const char *id, size_t *at)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->keys[mid].id, id);
        if (c == 0) {
            *at = mid;
            return &s->keys[mid];
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* Writes back last-used times the snapshot collected. Runs on the refresh
 * thread (or at exit), never on a worker. */
static void flush_used(eg_keyring_t *kr, snap_t *s)
{
    for (size_t i = 0; s && i < s->n; i++) {
        long long used = atomic_load(&s->extra[i].used);
        if (used > s->keys[i].last_used) {
            if (eg_store_key_touch(kr->store, s->keys[i].id, used) == EG_OK) s->keys[i].last_used = used;
        }
    }
}

static int load(eg_keyring_t *kr, char *err, size_t errlen)
{
    uint64_t version;
    snap_t *s = calloc(1, sizeof(*s));
    int rc = s ? EG_OK : EG_ENOMEM;
    if (rc == EG_OK && (rc = eg_store_version(kr->store, &version)) == EG_OK)
        rc = eg_store_key_list(kr->store, &s->keys, &s->n);
    if (rc == EG_OK && !(s->extra = calloc(s->n ? s->n : 1, sizeof(*s->extra)))) rc = EG_ENOMEM;
    for (size_t i = 0; rc == EG_OK && i < s->n; i++) {
        s->extra[i].used = s->keys[i].last_used;
        /* a list the CLI validated; a bad entry (hand-edited file) allows nothing */
        if (eg_cidr_list_parse(s->keys[i].ips, &s->extra[i].cidrs, &s->extra[i].ncidrs, NULL, 0) != EG_OK)
            s->extra[i].ncidrs = 0, s->extra[i].cidrs = NULL, s->keys[i].status = EG_KEY_REVOKED;
    }
    if (rc == EG_OK) rc = index_owners(s);
    if (rc != EG_OK) {
        if (err) snprintf(err, errlen, "%s", rc == EG_ENOMEM ? "out of memory" : eg_store_error(kr->store));
        if (s && !s->extra) { /* keys loaded but no room for the rest */
            for (size_t i = 0; i < s->n; i++) eg_key_clear(&s->keys[i]);
            free(s->keys);
            free(s);
        } else {
            snap_free(s);
        }
        atomic_store(&kr->healthy, 0);
        return rc;
    }
    pthread_rwlock_wrlock(&kr->lock);
    snap_t *old = kr->snap;
    /* carry over uses recorded since the last flush */
    for (size_t i = 0; old && i < old->n; i++) {
        size_t at;
        long long used = atomic_load(&old->extra[i].used);
        if (snap_find(s, old->keys[i].id, &at) && used > atomic_load(&s->extra[at].used))
            atomic_store(&s->extra[at].used, used);
    }
    kr->snap = s;
    kr->version = version;
    pthread_rwlock_unlock(&kr->lock);
    snap_free(old);
    atomic_store(&kr->healthy, 1);
    return EG_OK;
}

int eg_keyring_reload(eg_keyring_t *kr)
{
    pthread_mutex_lock(&kr->reload_lock);
    int rc = load(kr, NULL, 0);
    pthread_mutex_unlock(&kr->reload_lock);
    return rc;
}

/* One poll: reload when the version moved, then write back uses. */
static void poll_once(eg_keyring_t *kr)
{
    pthread_mutex_lock(&kr->reload_lock);
    uint64_t v;
    if (eg_store_version(kr->store, &v) != EG_OK) {
        atomic_store(&kr->healthy, 0);
    } else if (v != kr->version || !atomic_load(&kr->healthy)) {
        load(kr, NULL, 0);
    }
    pthread_rwlock_rdlock(&kr->lock);
    snap_t *s = kr->snap;
    pthread_rwlock_unlock(&kr->lock);
    /* the snapshot cannot be swapped while we hold reload_lock */
    if (atomic_load(&kr->healthy)) flush_used(kr, s);
    pthread_mutex_unlock(&kr->reload_lock);
}

static void *refresh_main(void *arg)
{
    eg_keyring_t *kr = arg;
    pthread_mutex_lock(&kr->wait_lock);
    while (!kr->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (kr->refresh_ms % 1000) * 1000000ull;
        ts.tv_sec += (time_t)(kr->refresh_ms / 1000 + ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        int rc = 0;
        while (!kr->stop && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&kr->wake, &kr->wait_lock, &ts);
        if (kr->stop) break;
        pthread_mutex_unlock(&kr->wait_lock);
        poll_once(kr);
        pthread_mutex_lock(&kr->wait_lock);
    }
    pthread_mutex_unlock(&kr->wait_lock);
    return NULL;
}

int eg_keyring_new(eg_store_t *store, const unsigned char *pepper, size_t pepper_len,
                   uint64_t refresh_ms, eg_keyring_t **out, char *err, size_t errlen)
{
    if (pepper_len > sizeof(((eg_keyring_t *)0)->pepper)) {
        snprintf(err, errlen, "the pepper is longer than 256 bytes");
        return EG_EINVAL;
    }
    eg_keyring_t *kr = calloc(1, sizeof(*kr));
    if (!kr) return EG_ENOMEM;
    kr->store = store;
    if (pepper_len) memcpy(kr->pepper, pepper, pepper_len);
    kr->pepper_len = pepper_len;
    kr->refresh_ms = refresh_ms;
    pthread_rwlock_init(&kr->lock, NULL);
    pthread_mutex_init(&kr->reload_lock, NULL);
    pthread_mutex_init(&kr->wait_lock, NULL);
    pthread_cond_init(&kr->wake, NULL);
    int rc = load(kr, err, errlen);
    if (rc != EG_OK) {
        eg_keyring_free(kr);
        return rc;
    }
    *out = kr;
    return EG_OK;
}

int eg_keyring_start(eg_keyring_t *kr)
{
    if (kr->refresh_ms == 0 || kr->started) return EG_OK;
    if (pthread_create(&kr->thread, NULL, refresh_main, kr) != 0) return EG_ENOMEM;
    kr->started = 1;
    return EG_OK;
}

void eg_keyring_free(eg_keyring_t *kr)
{
    if (!kr) return;
    if (kr->started) {
        pthread_mutex_lock(&kr->wait_lock);
        kr->stop = 1;
        pthread_cond_signal(&kr->wake);
        pthread_mutex_unlock(&kr->wait_lock);
        pthread_join(kr->thread, NULL);
    }
    if (atomic_load(&kr->healthy)) flush_used(kr, kr->snap);
    snap_free(kr->snap);
    pthread_rwlock_destroy(&kr->lock);
    pthread_mutex_destroy(&kr->reload_lock);
    pthread_mutex_destroy(&kr->wait_lock);
    pthread_cond_destroy(&kr->wake);
    memset(kr->pepper, 0, sizeof(kr->pepper));
    free(kr);
}

eg_store_t *eg_keyring_store(eg_keyring_t *kr)
{
    return kr->store;
}

int eg_keyring_healthy(eg_keyring_t *kr)
{
    return atomic_load(&kr->healthy);
}

size_t eg_keyring_count(eg_keyring_t *kr)
{
    pthread_rwlock_rdlock(&kr->lock);
    size_t n = kr->snap ? kr->snap->n : 0;
    pthread_rwlock_unlock(&kr->lock);
    return n;
}

int eg_keyring_hash(const eg_keyring_t *kr, const char *key, size_t len,
                    unsigned char out[EG_APIKEY_HASH_LEN])
{
    return eg_apikey_hash(kr->pepper, kr->pepper_len, key, len, out);
}

/* Runs for every authenticated request: a bounded copy without printf. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

/* With a memo of EG_KEYRING_MEMO keys: a worker sees its clients' keys
 * again and again, and a key's checksum and hash (two SHA-256 through EVP)
 * cost about 0.4 us where a memo hit costs 0.01 (bench_apikey). */
int eg_keyring_hasher_new(const eg_keyring_t *kr, eg_apikey_hasher_t **out)
{
    int rc = eg_apikey_hasher_new(kr->pepper, kr->pepper_len, out);
    if (rc == EG_OK && (rc = eg_apikey_hasher_memo(*out, EG_KEYRING_MEMO)) != EG_OK) {
        eg_apikey_hasher_free(*out);
        *out = NULL;
    }
    return rc;
}

static eg_auth_result_t malformed(eg_principal_t *p)
{
    copy_str(p->why, sizeof(p->why), "not a well-formed errgate API key");
    return EG_AUTH_MALFORMED;
}

/* The format and the checksum (a SHA-256), with the thread's hasher if any. */
static int checksum_ok(eg_apikey_hasher_t *hasher, const char *key, size_t len)
{
    return (hasher ? eg_apikey_hasher_parse(hasher, key, len, NULL) : eg_apikey_parse(key, len, NULL)) == EG_OK;
}

eg_auth_result_t eg_keyring_check(eg_keyring_t *kr, eg_apikey_hasher_t *hasher, const char *key, size_t len,
                                  const eg_cidr_t *client, long long now, eg_principal_t *p)
{
    p->detail[0] = p->why[0] = '\0';
    if (len == 0) {
        copy_str(p->why, sizeof(p->why), "no API key presented");
        return EG_AUTH_MISSING;
    }
    eg_apikey_info_t info;
    unsigned char h[EG_APIKEY_HASH_LEN];
    /* a memoised key parsed and hashed the same before (pure functions of
     * its bytes): everything from the snapshot on is decided afresh */
    int memo = hasher && eg_apikey_memo_get(hasher, key, len, &info, h);
    if (!memo && eg_apikey_shape(key, len, &info) != EG_OK) return malformed(p);
    /* the checksum only tells a malformed key from an unknown one: it is
     * verified before any answer but a match (only generated keys, whose
     * checksums are right, have stored hashes), so the answers are the ones
     * a check up front would give, and a key that matches skips a SHA-256 */
    if (!atomic_load(&kr->healthy)) {
        if (!memo && !checksum_ok(hasher, key, len)) return malformed(p);
        copy_str(p->why, sizeof(p->why), "the key store is unavailable");
        return EG_AUTH_UNAVAILABLE;
    }
    if (!memo && (hasher ? eg_apikey_hasher_hash(hasher, key, len, h)
                         : eg_keyring_hash(kr, key, len, h)) != EG_OK) {
        if (!checksum_ok(hasher, key, len)) return malformed(p);
        copy_str(p->why, sizeof(p->why), "hashing failed");
        return EG_AUTH_UNAVAILABLE;
    }
    eg_auth_result_t res = EG_AUTH_INVALID;
    pthread_rwlock_rdlock(&kr->lock);
    size_t at;
    const eg_key_t *k = snap_find(kr->snap, info.id, &at);
    int cur = k && eg_apikey_hash_equal(k->hash, h);
    int prev = k && !cur && k->prev_until && eg_apikey_hash_equal(k->prev_hash, h);
    int genuine = cur || prev; /* a stored key's hash, current or previous */
    if (!k) {
        copy_str(p->why, sizeof(p->why), "unknown key id");
    } else if (!cur && !(prev && k->prev_until > now)) {
        copy_str(p->why, sizeof(p->why),
                 prev ? "rotated secret past its grace period" : "wrong secret");
    } else if (k->status == EG_KEY_REVOKED) {
        copy_str(p->why, sizeof(p->why), "key revoked");
    } else if (k->expires && k->expires <= now) {
        copy_str(p->why, sizeof(p->why), "key expired");
    } else if (k->status == EG_KEY_SUSPENDED) {
        copy_str(p->detail, sizeof(p->detail), k->reason);
        copy_str(p->why, sizeof(p->why), "key suspended");
        res = EG_AUTH_SUSPENDED;
    } else if (kr->snap->extra[at].ncidrs &&
               (!client || !eg_cidr_any(kr->snap->extra[at].cidrs, kr->snap->extra[at].ncidrs, client))) {
        copy_str(p->detail, sizeof(p->detail), k->ips);
        copy_str(p->why, sizeof(p->why), "client address not in the key's allow list");
        res = EG_AUTH_IP;
    } else {
        copy_str(p->consumer, sizeof(p->consumer), k->owner && *k->owner ? k->owner : k->id);
        copy_str(p->plan, sizeof(p->plan), k->plan);
        copy_str(p->scopes, sizeof(p->scopes), k->scopes);
        if (atomic_load_explicit(&kr->snap->extra[at].used, memory_order_relaxed) < now)
            atomic_store_explicit(&kr->snap->extra[at].used, now, memory_order_relaxed);
        res = EG_AUTH_OK;
    }
    pthread_rwlock_unlock(&kr->lock);
    /* no match: only now is the checksum needed (a non-match set only why) */
    if (!memo && !genuine && !checksum_ok(hasher, key, len)) return malformed(p);
    copy_str(p->key_id, sizeof(p->key_id), info.id);
    /* only keys that were issued: guesses and typos are not kept (their raw
     * bytes stay out of memory, and they cannot push real keys out) */
    if (!memo && genuine && hasher) eg_apikey_memo_put(hasher, key, len, h);
    return res;
}

int eg_keyring_user(eg_keyring_t *kr, const char *user, char *subject, size_t cap)
{
    if (!atomic_load(&kr->healthy)) return EG_EIO;
    int found = 0;
    size_t at;
    pthread_rwlock_rdlock(&kr->lock);
    const snap_t *s = kr->snap;
    if (s && snap_find(s, user, &at)) {
        snprintf(subject, cap, "k:%s", user);
        found = 1;
    } else if (s) {
        owner_t key = {user, 0};
        if (bsearch(&key, s->owners, s->nowners, sizeof(*s->owners), owner_cmp)) {
            snprintf(subject, cap, "u:%s", user);
            found = 1;
        }
    }
    pthread_rwlock_unlock(&kr->lock);
    return found;
}
