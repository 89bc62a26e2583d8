/* fuzz_path.c - any bytes as a request path, under each of the 8 option sets.
 * Invariants checked (abort() on violation):
 *  - nothing is read or written outside the buffers (input and output are
 *    exact-size heap blocks, so ASan sees any overrun);
 *  - a result starts with '/', is never longer than the input, and
 *    normalizing it again gives it back (idempotent);
 *  - with normalize on: no "/./" or "/../" and no "/." or "/.." at the end,
 *    no '%' but before two uppercase hex digits, no encoded unreserved
 *    character; with merge_slashes on no "//"; with reject_encoded_slash on
 *    no %2F or %5C; no control, space, non-ASCII byte or backslash ever;
 *  - in place gives the same as into another buffer;
 *  - the verdict does not depend on `normalize`, and a path accepted with
 *    reject_encoded_slash on is accepted with it off, unchanged;
 *  - result and verdict equal a slow reference written from RFC 3986's text:
 *    section 5.2.4's buffer-rewriting rules A-E (with "remove the last
 *    segment" of an empty output meaning "above the root"), and the UTF-8
 *    check of lib/utf8.h over each run of percent-encoded high bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/path.h"
#include "utf8.h"

static void check(int ok)
{
    if (!ok) abort();
}

static int has(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0) return 1;
    return 0;
}

static int ends_with(const char *s, size_t n, const char *t)
{
    size_t k = strlen(t);
    return n >= k && memcmp(s + n - k, t, k) == 0;
}

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int unres(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* RFC 3986 5.2.4 on a NUL-free string of n bytes, literally: returns the
 * output length in out, or -1 when a ".." has no segment left to remove. */
static long remove_dot_segments(const char *src, size_t n, char *out)
{
    char *in = malloc(n + 1);
    check(in != NULL);
    memcpy(in, src, n);
    size_t il = n, ol = 0;
    long rc = 0;
    while (il > 0) {
        if (il >= 3 && memcmp(in, "../", 3) == 0) { /* A */
            memmove(in, in + 3, il -= 3);
        } else if (il >= 2 && memcmp(in, "./", 2) == 0) {
            memmove(in, in + 2, il -= 2);
        } else if (il >= 3 && memcmp(in, "/./", 3) == 0) { /* B */
            memmove(in, in + 2, il -= 2);
        } else if (il == 2 && memcmp(in, "/.", 2) == 0) {
            il = 1;
        } else if ((il >= 4 && memcmp(in, "/../", 4) == 0) ||
                   (il == 3 && memcmp(in, "/..", 3) == 0)) {
            /* C */
            if (il == 3)
                il = 1;
            else
                memmove(in, in + 3, il -= 3);
            if (ol == 0) {
                rc = -1;
                break;
            }
            while (ol > 0 && out[ol - 1] != '/')
                ol--;
            if (ol > 0) ol--;
        } else if ((il == 1 && in[0] == '.') || (il == 2 && memcmp(in, "..", 2) == 0)) { /* D */
            il = 0;
        } else { /* E */
            size_t k = in[0] == '/' ? 1 : 0;
            while (k < il && in[k] != '/')
                k++;
            memcpy(out + ol, in, k);
            ol += k;
            memmove(in, in + k, il -= k);
        }
    }
    free(in);
    return rc < 0 ? -1 : (long)ol;
}

/* The reference: 0 and the result in out/len, or -1 when refused. */
static int reference(const unsigned char *s, size_t n, const eg_path_opts_t *o, char *out,
                     size_t *len)
{
    if (n == 0 || s[0] != '/') return -1;
    /* R: the rendered path; D: its shape for dot-segments ('/', '.' or 'x'
     * for each character, as decoded); both with slashes merged if asked */
    char *r = malloc(3 * n + 1), *d = malloc(n + 1), *hi = malloc(n + 1);
    check(r && d && hi);
    size_t rl = 0, dl = 0, hl = 0;
    int rc = -1;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c != '%') {
            if (hl) {
                /* a run of encoded high bytes ended: valid UTF-8 only */
                for (size_t k = 0; k < hl;) {
                    size_t l = eg_utf8_len((const unsigned char *)hi + k, hl - k);
                    if (!l) goto done;
                    k += l;
                }
                hl = 0;
            }
            if (c <= 0x20 || c >= 0x7F || c == '\\' || c == '?' || c == '#') goto done;
            i++;
            if (c == '/' && o->merge_slashes && dl && d[dl - 1] == '/') continue;
            r[rl++] = (char)c;
            d[dl++] = c == '/' ? '/' : c == '.' ? '.' : 'x';
            continue;
        }
        if (i + 2 >= n || hexv(s[i + 1]) < 0 || hexv(s[i + 2]) < 0) goto done;
        unsigned char b = (unsigned char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
        if (b == 0) goto done;
        if ((b == '/' || b == '\\') && o->reject_encoded_slash) goto done;
        if (b >= 0x80)
            hi[hl++] = (char)b;
        else if (hl) {
            for (size_t k = 0; k < hl;) {
                size_t l = eg_utf8_len((const unsigned char *)hi + k, hl - k);
                if (!l) goto done;
                k += l;
            }
            hl = 0;
        }
        if (!o->normalize) {
            memcpy(r + rl, s + i, 3);
            rl += 3;
        } else if (unres(b)) {
            r[rl++] = (char)b;
        } else {
            r[rl++] = '%';
            r[rl++] = "0123456789ABCDEF"[b >> 4];
            r[rl++] = "0123456789ABCDEF"[b & 15];
        }
        d[dl++] = b == '.' ? '.' : 'x';
        i += 3;
    }
    for (size_t k = 0; k < hl;) {
        size_t l = eg_utf8_len((const unsigned char *)hi + k, hl - k);
        if (!l) goto done;
        k += l;
    }
    char *scratch = malloc(dl + 1);
    check(scratch != NULL);
    long climbed = remove_dot_segments(d, dl, scratch);
    free(scratch);
    if (climbed < 0) goto done;
    if (o->normalize) {
        long l = remove_dot_segments(r, rl, out);
        check(l >= 0); /* R and D have the same segments */
        *len = (size_t)l;
    } else {
        memcpy(out, r, rl);
        *len = rl;
    }
    rc = 0;
done:
    free(r);
    free(d);
    free(hi);
    return rc;
}

static const char *const reasons[] = {
    "path does not start with '/'",
    "control character or space",
    "non-ASCII byte",
    "backslash",
    "'?' or '#' in path",
    "invalid percent-encoding",
    "invalid UTF-8 in percent-encoding",
    "encoded NUL",
    "encoded slash",
    "encoded backslash",
    "dot-segment above the root",
};

static void check_result(const char *p, size_t len, const eg_path_opts_t *o)
{
    check(len >= 1 && p[0] == '/');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        check(c > 0x20 && c < 0x7F && c != '\\' && c != '?' && c != '#');
    }
    if (o->merge_slashes) check(!has(p, len, "//"));
    if (o->reject_encoded_slash) {
        check(!has(p, len, "%2F") && !has(p, len, "%2f"));
        check(!has(p, len, "%5C") && !has(p, len, "%5c"));
    }
    if (!o->normalize) return;
    check(!has(p, len, "/./") && !has(p, len, "/../"));
    check(!ends_with(p, len, "/.") && !ends_with(p, len, "/.."));
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '%') continue;
        check(i + 2 < len);
        unsigned char a = (unsigned char)p[i + 1], b = (unsigned char)p[i + 2];
        check(((a >= '0' && a <= '9') || (a >= 'A' && a <= 'F')) &&
              ((b >= '0' && b <= '9') || (b >= 'A' && b <= 'F')));
        check(!unres((unsigned char)(hexv(a) * 16 + hexv(b))));
    }
}

/* Runs one option set; returns the verdict and leaves the result in res. */
static int run(const unsigned char *data, size_t size, const eg_path_opts_t *o, char *res,
               size_t *rlen)
{
    char *in = malloc(size ? size : 1), *out = malloc(size ? size : 1);
    check(in && out);
    memcpy(in, data, size);
    size_t len = (size_t)-1;
    const char *why = NULL;
    int rc = eg_path_normalize(in, size, o, out, size, &len, &why);
    check(memcmp(in, data, size) == 0); /* the input is not written */
    check(rc == EG_OK || rc == EG_EPARSE);
    if (rc == EG_EPARSE) {
        check(len == (size_t)-1 && why != NULL);
        int known = 0;
        for (size_t k = 0; k < sizeof(reasons) / sizeof(reasons[0]); k++)
            known |= strcmp(why, reasons[k]) == 0;
        check(known);
    } else {
        check(why == NULL && len <= size);
        check_result(out, len, o);
        memcpy(res, out, len);
        *rlen = len;

        /* idempotent: into an exact-size copy so reads past it are seen */
        char *again_in = malloc(len), *again = malloc(len);
        check(again_in && again);
        memcpy(again_in, out, len);
        size_t l2 = 0;
        check(eg_path_normalize(again_in, len, o, again, len, &l2, NULL) == EG_OK);
        check(l2 == len && memcmp(again, out, len) == 0);
        free(again_in);
        free(again);
    }

    /* in place agrees */
    memcpy(in, data, size);
    size_t l3 = (size_t)-1;
    int rc3 = eg_path_normalize(in, size, o, in, size, &l3, NULL);
    check(rc3 == rc);
    if (rc == EG_OK) check(l3 == len && memcmp(in, out, len) == 0);

    /* the reference agrees */
    char *ref = malloc(size ? size : 1);
    check(ref != NULL);
    size_t rl = 0;
    int want = reference(data, size, o, ref, &rl);
    check((want == 0) == (rc == EG_OK));
    if (rc == EG_OK) check(rl == len && memcmp(ref, out, len) == 0);
    free(ref);
    free(in);
    free(out);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *res[8];
    size_t len[8] = {0};
    int rc[8];
    for (int k = 0; k < 8; k++) {
        eg_path_opts_t o = {k & 1, (k >> 1) & 1, (k >> 2) & 1};
        res[k] = malloc(size ? size : 1);
        check(res[k] != NULL);
        rc[k] = run(data, size, &o, res[k], &len[k]);
    }
    for (int k = 0; k < 8; k++) {
        check(rc[k] == rc[k ^ 1]); /* normalize changes the form, not the verdict */
        if ((k & 4) && rc[k] == EG_OK) {
            /* accepted with reject_encoded_slash: the same without it */
            check(rc[k & 3] == EG_OK && len[k & 3] == len[k]);
            check(memcmp(res[k & 3], res[k], len[k]) == 0);
        }
    }
    /* the fast check is never wrong: what it calls normal is returned as it
     * is, under every option, and refused under none */
    if (eg_path_is_normal((const char *)data, size))
        for (int k = 0; k < 8; k++)
            check(rc[k] == EG_OK && len[k] == size && memcmp(res[k], data, size) == 0);
    for (int k = 0; k < 8; k++)
        free(res[k]);
    return 0;
}
