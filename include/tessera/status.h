/* Tessera status codes and the per-thread last-error message. */
#ifndef TESSERA_STATUS_H
#define TESSERA_STATUS_H

#include <tessera/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Result of every fallible Tessera call. TSR_OK is 0, errors are negative and
 *  TSR_PENDING (> 0) means asynchronous work is still in flight. */
typedef enum {
    TSR_OK = 0,
    TSR_PENDING = 1,    /* not finished yet (tsr_future_test) */
    TSR_EINVAL = -1,    /* an argument or configuration value is invalid */
    TSR_ENOMEM = -2,    /* out of memory */
    TSR_EBUSY = -3,     /* the object is in use (already acquired, waited on from a task) */
    TSR_ENOTSUP = -4,   /* not built in this configuration, or the backend lacks the op */
    TSR_ENODEV = -5,    /* no present device can run the task */
    TSR_EBACKEND = -6,  /* a vendor library or the OS failed; see tsr_last_error() */
    TSR_ECANCELED = -7, /* cancelled: a dependency failed, or the runtime cancelled it */
    TSR_ETASK = -8,     /* generic failure reported by a task implementation */
    TSR_EIO = -9,       /* spilling to disk failed: the spill directory is unwritable or
                         * full, or a spilled chunk read back corrupt; see tsr_last_error() */
} tsr_status_t;

/** Short constant name of `st` ("TSR_EINVAL"); never NULL, even for unknown codes.
 *  Thread-safe. */
TSR_API const char *tsr_status_str(tsr_status_t st);

/** Detail of the last error raised on the calling thread by a Tessera call
 *  ("tsr_init: TESSERA_SCHED='fifo' is not one of eager, ws"). Returns a
 *  thread-local string owned by Tessera, valid until the next Tessera call on this
 *  thread; "" when there is none. Successful calls do not clear it. */
TSR_API const char *tsr_last_error(void);

/** Record a printf-formatted message as the calling thread's tsr_last_error() and
 *  return `st`, for libraries built on Tessera that report errors the same way
 *  (the arguments may include tsr_last_error() itself, to add context). A NULL
 *  fmt leaves the message as it is. */
TSR_API tsr_status_t tsr_set_error(tsr_status_t st, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_STATUS_H */
