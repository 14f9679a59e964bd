/* Log lines to stderr, filtered by the runtime's level. */
#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"
#include "core/runtime_impl.h"

static const char *level_name(tsr_log_level_t level)
{
    switch (level) {
    case TSR_LOG_ERROR:
        return "error";
    case TSR_LOG_WARN:
        return "warning";
    case TSR_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void tsr__log(const tsr_runtime_t *rt, tsr_log_level_t level, const char *fmt, ...)
{
    tsr_log_level_t threshold = rt != NULL ? rt->cfg.log_level : TSR_LOG_WARN;
    char line[1024];
    va_list ap;

    if (level > threshold || threshold == TSR_LOG_NONE) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "tessera: %s: %s\n", level_name(level), line);
}
