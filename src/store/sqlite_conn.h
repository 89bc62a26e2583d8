/* sqlite_conn.h - a second connection to the store's SQLite file, for the
 * modules that keep their own (the usage writer, the metering API's store).
 *
 * The key store made the file (0600) and its tables; these connections
 * never create it. Each has a busy timeout, WAL with synchronous=NORMAL,
 * and its statements prepared once (persistent).
 */
#ifndef EG_SQLITE_CONN_H
#define EG_SQLITE_CONN_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    sqlite3_stmt **st; /* where the prepared statement goes */
    const char *sql;
} eg_sqlite_stmt_t;

/* Opens path read-write with busy_ms (capped at 60 s), runs check (a query
 * that fails when a table is missing; NULL: none) and prepares stmts[0..n).
 * 0, or EG_EIO with "path: why" in err; *db may be set either way (the
 * caller finalizes the statements and closes it). */
int eg_sqlite_connect(const char *path, uint64_t busy_ms, const char *check,
                      const eg_sqlite_stmt_t *stmts, size_t n, sqlite3 **db, char *err,
                      size_t errlen);

#endif
