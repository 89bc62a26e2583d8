/* units.h - strict parsing of durations ("500ms", "2s", "1m") and sizes
 * ("1MiB", "512KiB", "1024"), as configuration files write them. */
#ifndef ERRGATE_UNITS_H
#define ERRGATE_UNITS_H

#include <stddef.h>
#include <stdint.h>
#include "common.h"

/* "<digits><unit>", unit one of ms, s, m, h, d; or "0". No sign, no spaces,
 * no fractions. Returns EG_OK or EG_EINVAL (EG_ERANGE on overflow). */
int eg_parse_duration_ms(const char *s, uint64_t *out_ms);

/* "<digits>[unit]", unit one of B, KiB, MiB, GiB (1024) or KB, MB, GB (1000). */
int eg_parse_size(const char *s, uint64_t *out);

/* Shortest exact form of a duration: "30s", "1500ms", "2m". Returns length. */
size_t eg_format_duration(uint64_t ms, char *buf, size_t cap);

#endif
