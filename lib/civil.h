/* civil.h - calendar arithmetic for the library's date parsers (RFC 3339
 * timestamps in meter.c, HTTP dates in retry.c), private to the library:
 * no timegm, no time zone, no locale, so parsing is pure and the same on
 * every machine. */
#ifndef EG_CIVIL_H
#define EG_CIVIL_H

#include <stdint.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil); m 1..12. */
static inline int64_t eg__days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

#endif
