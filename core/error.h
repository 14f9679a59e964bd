/* The per-thread last-error message and the runtime's log. Private to core/. */
#ifndef TSR_CORE_ERROR_H
#define TSR_CORE_ERROR_H

#include <tessera/runtime.h>
#include <tessera/status.h>

#if defined(__GNUC__) || defined(__clang__)
#define TSR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TSR_PRINTF(a, b)
#endif

/* Record a message as tsr_last_error() of this thread and return `st`. The
 * arguments may include tsr_last_error() (to add context to it). */
tsr_status_t tsr__fail(tsr_status_t st, const char *fmt, ...) TSR_PRINTF(2, 3);

/* Write a line to stderr if `level` passes the runtime's threshold (rt may be
 * NULL: warnings and errors pass). */
void tsr__log(const tsr_runtime_t *rt, tsr_log_level_t level, const char *fmt, ...)
    TSR_PRINTF(3, 4);

#define TSR_TRY(expr)                      \
    do {                                   \
        tsr_status_t tsr_try_st_ = (expr); \
        if (tsr_try_st_ != TSR_OK) {       \
            return tsr_try_st_;            \
        }                                  \
    } while (0)

#endif /* TSR_CORE_ERROR_H */
