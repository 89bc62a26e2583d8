/* store_impl.h - what store backends share (private to store*.c). */
#ifndef EG_STORE_IMPL_H
#define EG_STORE_IMPL_H

#include <pthread.h>

#include "store.h"

struct eg_store_s {
    const eg_store_ops_t *ops;
    pthread_mutex_t lock;
    char err[256];
    void *impl;
};

int eg_store_init(eg_store_t *s, const eg_store_ops_t *ops);
/* Records the last failure: fmt has one %s for what. */
void eg_store_fail(eg_store_t *s, const char *fmt, const char *what);

#endif
