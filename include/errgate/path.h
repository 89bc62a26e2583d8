/* path.h - request-path normalization, pure logic.
 *
 * A gateway that routes and checks access on the raw path can be walked
 * around: "/v1/../admin/x", "/v1/%2e%2e/admin/x", "/v1//private/y" all start
 * with "/v1/" but name something else once an upstream decodes and resolves
 * them. eg_path_normalize() turns the path into the one form the router, the
 * access rules and the upstream all see (RFC 3986 sections 2.3, 2.4, 5.2.4,
 * 6.2.2, as Envoy's normalize_path, merge_slashes and
 * path_with_escaped_slashes_action: REJECT_REQUEST do), and refuses what has
 * no single meaning: encoded NUL, bad percent-encoding, invalid UTF-8, ".."
 * above the root, backslashes and (by default) encoded slashes.
 * See docs/path.md.
 */
#ifndef ERRGATE_PATH_H
#define ERRGATE_PATH_H

#include <stddef.h>
#include "common.h"

typedef struct {
    /* 1: decode percent-encoded unreserved characters, uppercase the hex of
     * the others, remove "." and ".." segments. 0: leave the bytes as they
     * are (the refusals below still apply). */
    int normalize;
    /* 1: collapse runs of '/' into one, before dot segments are removed
     * ("/a//../b" is "/b", as nginx's merge_slashes). */
    int merge_slashes;
    /* 1: refuse %2F and %5C. 0: keep them encoded (uppercased), never
     * decoded; safe only if no upstream decodes them into separators. */
    int reject_encoded_slash;
} eg_path_opts_t;

/* Sets the safe defaults: every option on. */
void eg_path_opts_default(eg_path_opts_t *o);

/* Normalizes the path of an origin-form request-target: in[0..n), which
 * starts with '/' and holds no query (the caller splits at '?'). o may be
 * NULL for the defaults.
 *
 * Writes the result into the caller's out (cap bytes; cap >= n is required,
 * as the result is never longer than the input; a NUL follows the result
 * when it fits, so always with cap >= n + 1), sets *out_len and returns EG_OK. out may be in itself
 * (in-place normalization); no other overlap is allowed. Nothing is allocated; time is linear in n.
 *
 * Refuses with EG_EPARSE and sets *reason to a static string naming why
 * ("encoded slash", "dot-segment above the root", ...), when reason is not
 * NULL. Returns EG_EINVAL for NULL in/out/out_len, EG_ERANGE when cap < n.
 * On failure *out_len is left untouched and out holds unspecified bytes. */
int eg_path_normalize(const char *in, size_t n, const eg_path_opts_t *o, char *out, size_t cap,
                      size_t *out_len, const char **reason);

/* 1 when in[0..n) is a path that eg_path_normalize would return unchanged
 * under any options and refuse under none: it starts with '/', holds only
 * unreserved characters, sub-delims, ':', '@' and '/', no "//" and no
 * segment starting with '.'. A caller may then use it as it is, without a
 * copy. 0 says only "ask eg_path_normalize". */
int eg_path_is_normal(const char *in, size_t n);

#endif
