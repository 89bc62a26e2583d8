/* sqlite_conn.c - a second connection to the store's file (sqlite_conn.h). */
#include "sqlite_conn.h"

#include <stdio.h>

#include "errgate/common.h"

int eg_sqlite_connect(const char *path, uint64_t busy_ms, const char *check,
                      const eg_sqlite_stmt_t *stmts, size_t n, sqlite3 **db, char *err,
                      size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, *db ? sqlite3_errmsg(*db) : "out of memory");
        return EG_EIO;
    }
    sqlite3_busy_timeout(*db, (int)(busy_ms > 60000 ? 60000 : busy_ms));
    if (sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL, &msg) !=
            SQLITE_OK ||
        (check && sqlite3_exec(*db, check, NULL, NULL, &msg) != SQLITE_OK)) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(*db));
        sqlite3_free(msg);
        return EG_EIO;
    }
    for (size_t i = 0; i < n; i++) {
        if (sqlite3_prepare_v3(*db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].st,
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(*db));
            return EG_EIO;
        }
    }
    return EG_OK;
}
