/* log.h - JSON log lines: one per request (access) and one per error.
 *
 * Lines are built in a caller's stack buffer and written with one write(2)
 * on an O_APPEND descriptor, so lines from several worker threads never
 * interleave and no lock is held while formatting. SIGUSR1 makes the server
 * call eg_log_reopen() (log rotation).
 */
#ifndef EG_LOG_H
#define EG_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct eg_log_s eg_log_t;

/* `path`: "stderr", "off" or a file path. Returns 0 or a negative EG_E* code. */
int eg_log_open(const char *path, eg_log_t **out);
int eg_log_reopen(eg_log_t *log);
void eg_log_close(eg_log_t *log);
int eg_log_enabled(const eg_log_t *log);

/* A line under construction (fixed size; long values are cut). */
typedef struct {
    char buf[4096];
    size_t len;
    int first;
} eg_logline_t;

void eg_logline_begin(eg_logline_t *l, const char *kind);
void eg_logline_str(eg_logline_t *l, const char *key, const char *v, size_t n);
void eg_logline_int(eg_logline_t *l, const char *key, long long v);
/* A finite number ("%.6g"); NaN and infinities are written as 0. */
void eg_logline_num(eg_logline_t *l, const char *key, double v);
/* A nested object: members added after eg_logline_object go in it until
 * eg_logline_object_end. */
void eg_logline_object(eg_logline_t *l, const char *key);
void eg_logline_object_end(eg_logline_t *l);
/* Writes the line ("...}\n") to the log; drops it when disabled. */
void eg_logline_end(eg_log_t *log, eg_logline_t *l);

/* Repeated lines, rate-limited: a flood of refused requests must not turn
 * into a flood of identical error lines. eg_log_admit returns 1 when a line
 * for `key` (an error code) may be written now, at most one per key and
 * second, and sets *suppressed to how many of that key were dropped since its
 * last line (to write with it, when not 0); it returns 0 when this line is to
 * be dropped, and counts it. eg_log_flush_suppressed writes one line
 * {"kind": kind, "code": key, "suppressed": N} for each key whose drops are
 * not reported yet and whose second is over (`all`: over or not): the
 * server calls it once a second, and with `all` before closing, so every
 * dropped line is counted somewhere. Both are thread-safe. */
int eg_log_admit(eg_log_t *log, const char *key, uint64_t *suppressed);
void eg_log_flush_suppressed(eg_log_t *log, const char *kind, int all);

/* Appends a query string with the values of `redact` parameters replaced by "[REDACTED]". */
void eg_logline_path(eg_logline_t *l, const char *key, const char *target, size_t n,
                     char *const *redact, size_t nredact);

#endif
