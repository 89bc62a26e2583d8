/* common.h - return codes shared by every liberrgate function.
 *
 * Functions return 0 (EG_OK) or a negative EG_E* code and, when they fail,
 * leave their outputs untouched (libuv's contract). eg_strerror() names a code.
 */
#ifndef ERRGATE_COMMON_H
#define ERRGATE_COMMON_H

#include <stddef.h>

#define EG_OK 0
#define EG_ENOMEM (-1)   /* allocation failed */
#define EG_EINVAL (-2)   /* invalid argument */
#define EG_EPARSE (-3)   /* input could not be parsed; details in err buffer */
#define EG_ENOENT (-4)   /* no such item (dialect, code, file) */
#define EG_EIO (-5)      /* reading or writing a file failed */
#define EG_ERANGE (-6)   /* value out of range or output does not fit */
#define EG_EAGAIN (-7)   /* incomplete input: feed more bytes */
#define EG_ETOOBIG (-8)  /* input exceeds a configured limit */

/* eg_strerror returns a static, human-readable name for an EG_E* code. */
const char *eg_strerror(int code);

/* eg_version returns the library version string, e.g. "0.1.0". */
const char *eg_version(void);

#endif
