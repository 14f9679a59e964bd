/* Status names and the thread-local last-error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <tessera/status.h>

#include "core/error.h"

static _Thread_local char tls_last_error[512];

const char *tsr_status_str(tsr_status_t st)
{
    switch (st) {
    case TSR_OK:
        return "TSR_OK";
    case TSR_PENDING:
        return "TSR_PENDING";
    case TSR_EINVAL:
        return "TSR_EINVAL";
    case TSR_ENOMEM:
        return "TSR_ENOMEM";
    case TSR_EBUSY:
        return "TSR_EBUSY";
    case TSR_ENOTSUP:
        return "TSR_ENOTSUP";
    case TSR_ENODEV:
        return "TSR_ENODEV";
    case TSR_EBACKEND:
        return "TSR_EBACKEND";
    case TSR_ECANCELED:
        return "TSR_ECANCELED";
    case TSR_ETASK:
        return "TSR_ETASK";
    case TSR_EIO:
        return "TSR_EIO";
    }
    return "TSR_E(unknown)";
}

const char *tsr_last_error(void)
{
    return tls_last_error;
}

static void set_message(const char *fmt, va_list ap)
{
    char msg[sizeof(tls_last_error)];

    /* Formatted aside first: the arguments may include tsr_last_error() itself,
     * when a caller adds context to a lower layer's message. */
    vsnprintf(msg, sizeof(msg), fmt, ap);
    memcpy(tls_last_error, msg, sizeof(msg));
}

tsr_status_t tsr_set_error(tsr_status_t st, const char *fmt, ...)
{
    va_list ap;

    if (fmt == NULL) {
        return st;
    }
    va_start(ap, fmt);
    set_message(fmt, ap);
    va_end(ap);
    return st;
}

tsr_status_t tsr__fail(tsr_status_t st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_message(fmt, ap);
    va_end(ap);
    return st;
}
