/* errgate.h - liberrgate, one header for all of it. */
#ifndef ERRGATE_H
#define ERRGATE_H

#include "common.h"
#include "error.h"
#include "catalog.h"
#include "dialect.h"
#include "docs.h"
#include "retry.h"

#endif
