/* Configuration: the struct, then TESSERA_* environment overrides (the only place
 * they are read), then defaults made explicit. Invalid values are errors. */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config_impl.h"
#include "core/error.h"
#include "tessera/config.h"
#include "tessera/runtime.h"

#define MAX_CPU_WORKERS 1024

static int32_t usable_cores(void)
{
    cpu_set_t set;
    long n;

    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
    }
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int32_t)n : 1;
}

static tsr_status_t parse_workers(const char *text, int32_t *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || errno != 0 || v < 1 || v > MAX_CPU_WORKERS) {
        return tsr__fail(TSR_EINVAL, "TESSERA_NCPUS='%s' is not a number of workers in 1..%d", text,
                         MAX_CPU_WORKERS);
    }
    *out = (int32_t)v;
    return TSR_OK;
}

static tsr_status_t parse_policy(const char *text, tsr_sched_policy_t *out)
{
    if (strcmp(text, "eager") == 0) {
        *out = TSR_SCHED_EAGER;
    } else if (strcmp(text, "ws") == 0) {
        *out = TSR_SCHED_WS;
    } else if (strcmp(text, "dmda") == 0) {
        *out = TSR_SCHED_DMDA;
    } else if (strcmp(text, "random") == 0) {
        *out = TSR_SCHED_RANDOM;
    } else {
        return tsr__fail(TSR_EINVAL, "TESSERA_SCHED='%s' is not one of eager, ws, dmda, random",
                         text);
    }
    return TSR_OK;
}

static tsr_status_t parse_log_level(const char *text, tsr_log_level_t *out)
{
    static const char *const names[] = {"none", "error", "warn", "info", "debug"};
    static const tsr_log_level_t levels[] = {TSR_LOG_NONE, TSR_LOG_ERROR, TSR_LOG_WARN,
                                             TSR_LOG_INFO, TSR_LOG_DEBUG};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = levels[i];
            return TSR_OK;
        }
    }
    return tsr__fail(TSR_EINVAL,
                     "TESSERA_LOG_LEVEL='%s' is not one of none, error, warn, info, debug", text);
}

#define MAX_SIM_DEVICES 8
#define MAX_CUDA_DEVICES 15
#define MAX_CUDA_STREAMS 32
#define DEFAULT_DEVICE_SPILL_MARK 0.9
#define DEFAULT_CUDA_STREAMS 4

/* "123", "64KiB", "256MiB", "2GiB". */
static int parse_size(const char *text, uint64_t *out)
{
    static const char *const units[] = {"", "B", "KiB", "MiB", "GiB", "TiB"};
    static const unsigned shifts[] = {0, 0, 10, 20, 30, 40};
    char *end = NULL;
    unsigned long long v;

    errno = 0;
    v = strtoull(text, &end, 10);
    if (end == text || errno != 0 || text[0] == '-') {
        return 0;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i]) == 0 && v <= (UINT64_MAX >> shifts[i])) {
            *out = (uint64_t)v << shifts[i];
            return *out > 0;
        }
    }
    return 0;
}

/* "N" or "N:mem=SIZE". */
static tsr_status_t parse_sim_devices(const char *text, tsr_config_t *cfg)
{
    char *end = NULL;
    long n;

    errno = 0;
    n = strtol(text, &end, 10);
    if (end == text || errno != 0 || n < 0 || n > MAX_SIM_DEVICES ||
        (*end != '\0' &&
         (strncmp(end, ":mem=", 5) != 0 || !parse_size(end + 5, &cfg->sim_mem_bytes)))) {
        return tsr__fail(TSR_EINVAL,
                         "TESSERA_SIM_DEVICES='%s' is not N or N:mem=SIZE (N in 0..%d, SIZE "
                         "like 268435456, 256MiB or 1GiB)",
                         text, MAX_SIM_DEVICES);
    }
    cfg->n_sim_devices = (uint32_t)n;
    return TSR_OK;
}

/* A whole decimal number in lo..hi. */
static int parse_int_in(const char *text, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < lo || v > hi) {
        return 0;
    }
    *out = v;
    return 1;
}

static tsr_status_t parse_cuda_env(tsr_config_t *cfg, const char *devices, const char *streams)
{
    long v;

    if (devices != NULL) {
        if (!parse_int_in(devices, 0, MAX_CUDA_DEVICES, &v)) {
            return tsr__fail(TSR_EINVAL,
                             "TESSERA_CUDA_DEVICES='%s' is not a number of GPUs in 0..%d (0: "
                             "use none)",
                             devices, MAX_CUDA_DEVICES);
        }
        cfg->n_cuda_devices = v == 0 ? -1 : (int32_t)v;
    }
    if (streams != NULL) {
        if (!parse_int_in(streams, 1, MAX_CUDA_STREAMS, &v)) {
            return tsr__fail(TSR_EINVAL, "TESSERA_CUDA_STREAMS='%s' is outside 1..%d", streams,
                             MAX_CUDA_STREAMS);
        }
        cfg->cuda_streams = (uint32_t)v;
    }
    return TSR_OK;
}

/* "12GiB", "1000000" (bytes) or "0.8", "80%" (a fraction in (0, 1]). */
static int parse_limit(const char *text, tsr_mem_limit_t *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (end != text && errno == 0 && (strcmp(end, "%") == 0 || (*end == '\0' && v <= 1.0))) {
        double f = strcmp(end, "%") == 0 ? v / 100.0 : v;

        if (f > 0.0 && f <= 1.0) {
            out->bytes = 0;
            out->fraction = f;
            return 1;
        }
        return 0;
    }
    if (parse_size(text, &out->bytes)) {
        out->fraction = 0.0;
        return 1;
    }
    return 0;
}

static tsr_status_t parse_memory_env(tsr_config_t *cfg)
{
    const char *names[2] = {"TESSERA_DEVICE_MEMORY_LIMIT", "TESSERA_HOST_MEMORY_LIMIT"};
    tsr_mem_limit_t *limits[2] = {&cfg->device_memory_limit, &cfg->host_memory_limit};
    const char *v;

    for (int i = 0; i < 2; i++) {
        if ((v = getenv(names[i])) != NULL && !parse_limit(v, limits[i])) {
            return tsr__fail(TSR_EINVAL,
                             "%s='%s' is neither a size (like 12GiB, 512MiB or 1000000) nor a "
                             "fraction of memory (like 0.8 or 80%%)",
                             names[i], v);
        }
    }
    if ((v = getenv("TESSERA_SPILL_DIR")) != NULL) {
        cfg->spill_dir = v[0] != '\0' ? v : NULL;
    }
    if ((v = getenv("TESSERA_DEVICE_SPILL_MARK")) != NULL) {
        tsr_mem_limit_t mark;

        if (!parse_limit(v, &mark) || mark.bytes != 0) {
            return tsr__fail(TSR_EINVAL,
                             "TESSERA_DEVICE_SPILL_MARK='%s' is not a fraction in (0, 1] (like 0.9 "
                             "or 90%%)",
                             v);
        }
        cfg->device_spill_mark = mark.fraction;
    }
    if ((v = getenv("TESSERA_SPILL_COMPRESSION")) != NULL) {
        if (strcmp(v, "auto") == 0) {
            cfg->spill_compression = TSR_SPILL_COMPRESS_DEFAULT;
        } else if (strcmp(v, "none") == 0) {
            cfg->spill_compression = TSR_SPILL_COMPRESS_NONE;
        } else if (strcmp(v, "lz4") == 0) {
            cfg->spill_compression = TSR_SPILL_COMPRESS_LZ4;
        } else {
            return tsr__fail(TSR_EINVAL,
                             "TESSERA_SPILL_COMPRESSION='%s' is not one of auto, none, lz4", v);
        }
    }
    if ((v = getenv("TESSERA_ACCEL_FIRST")) != NULL) {
        if (strcmp(v, "1") == 0) {
            cfg->flags |= TSR_CONFIG_F_ACCEL_FIRST;
        } else if (strcmp(v, "0") == 0) {
            cfg->flags &= ~TSR_CONFIG_F_ACCEL_FIRST;
        } else {
            return tsr__fail(TSR_EINVAL, "TESSERA_ACCEL_FIRST='%s' is not 0 or 1", v);
        }
    }
    return TSR_OK;
}

#define MIN_PROGRESS_INTERVAL_S 0.01
#define MAX_PROGRESS_INTERVAL_S 3600.0

static tsr_status_t parse_progress_env(tsr_config_t *cfg)
{
    static const char *const names[] = {"auto", "on", "off", "1", "0"};
    static const tsr_progress_mode_t modes[] = {
        TSR_PROGRESS_AUTO, TSR_PROGRESS_ON, TSR_PROGRESS_OFF, TSR_PROGRESS_ON, TSR_PROGRESS_OFF};
    const char *v = getenv("TESSERA_PROGRESS");
    size_t i = 0;

    if (v != NULL) {
        while (i < sizeof(names) / sizeof(names[0]) && strcmp(v, names[i]) != 0) {
            i++;
        }
        if (i == sizeof(names) / sizeof(names[0])) {
            return tsr__fail(TSR_EINVAL, "TESSERA_PROGRESS='%s' is not one of auto, on, off", v);
        }
        cfg->progress = modes[i];
    }
    if ((v = getenv("TESSERA_PROGRESS_INTERVAL")) != NULL) {
        char *end = NULL;
        double s;

        errno = 0;
        s = strtod(v, &end);
        if (end == v || *end != '\0' || errno != 0 || !(s >= MIN_PROGRESS_INTERVAL_S) ||
            !(s <= MAX_PROGRESS_INTERVAL_S)) {
            return tsr__fail(TSR_EINVAL,
                             "TESSERA_PROGRESS_INTERVAL='%s' is not a number of seconds in "
                             "%g..%g",
                             v, MIN_PROGRESS_INTERVAL_S, MAX_PROGRESS_INTERVAL_S);
        }
        cfg->progress_interval_s = s;
    }
    return TSR_OK;
}

static tsr_status_t check_limit(const char *name, const tsr_mem_limit_t *l)
{
    if (l->bytes == 0 && !(l->fraction == 0.0 || (l->fraction > 0.0 && l->fraction <= 1.0))) {
        return tsr__fail(TSR_EINVAL, "config.%s.fraction=%g is outside (0, 1]", name, l->fraction);
    }
    return TSR_OK;
}

static tsr_status_t check_struct(const tsr_config_t *cfg)
{
    if (cfg->n_cpu_workers < 0 || cfg->n_cpu_workers > MAX_CPU_WORKERS) {
        return tsr__fail(TSR_EINVAL, "config.n_cpu_workers=%d is outside 0..%d",
                         (int)cfg->n_cpu_workers, MAX_CPU_WORKERS);
    }
    if (cfg->policy < TSR_SCHED_DEFAULT || cfg->policy > TSR_SCHED_RANDOM) {
        return tsr__fail(TSR_EINVAL, "config.policy=%d is not a tsr_sched_policy_t",
                         (int)cfg->policy);
    }
    if (cfg->log_level < TSR_LOG_DEFAULT || cfg->log_level > TSR_LOG_DEBUG) {
        return tsr__fail(TSR_EINVAL, "config.log_level=%d is not a tsr_log_level_t",
                         (int)cfg->log_level);
    }
    if (cfg->n_sim_devices > MAX_SIM_DEVICES) {
        return tsr__fail(TSR_EINVAL, "config.n_sim_devices=%u is outside 0..%d",
                         (unsigned)cfg->n_sim_devices, MAX_SIM_DEVICES);
    }
    if (cfg->n_cuda_devices < -1 || cfg->n_cuda_devices > MAX_CUDA_DEVICES) {
        return tsr__fail(TSR_EINVAL, "config.n_cuda_devices=%d is outside -1..%d",
                         (int)cfg->n_cuda_devices, MAX_CUDA_DEVICES);
    }
    if (cfg->spill_compression < TSR_SPILL_COMPRESS_DEFAULT ||
        cfg->spill_compression > TSR_SPILL_COMPRESS_LZ4) {
        return tsr__fail(TSR_EINVAL, "config.spill_compression=%d is not a tsr_spill_compress_t",
                         (int)cfg->spill_compression);
    }
#if !TSR_HAVE_LZ4
    if (cfg->spill_compression == TSR_SPILL_COMPRESS_LZ4) {
        return tsr__fail(TSR_ENOTSUP,
                         "spill compression lz4: this build has no lz4 (install "
                         "liblz4-dev and reconfigure)");
    }
#endif
    if (cfg->cuda_streams > MAX_CUDA_STREAMS) {
        return tsr__fail(TSR_EINVAL, "config.cuda_streams=%u is outside 0..%d",
                         (unsigned)cfg->cuda_streams, MAX_CUDA_STREAMS);
    }
    TSR_TRY(check_limit("device_memory_limit", &cfg->device_memory_limit));
    TSR_TRY(check_limit("host_memory_limit", &cfg->host_memory_limit));
    if (!(cfg->device_spill_mark >= 0.0 && cfg->device_spill_mark <= 1.0)) {
        return tsr__fail(TSR_EINVAL, "config.device_spill_mark=%g is outside [0, 1]",
                         cfg->device_spill_mark);
    }
    if (cfg->progress < TSR_PROGRESS_AUTO || cfg->progress > TSR_PROGRESS_ON) {
        return tsr__fail(TSR_EINVAL, "config.progress=%d is not a tsr_progress_mode_t",
                         (int)cfg->progress);
    }
    if (!(cfg->progress_interval_s == 0.0 ||
          (cfg->progress_interval_s >= MIN_PROGRESS_INTERVAL_S &&
           cfg->progress_interval_s <= MAX_PROGRESS_INTERVAL_S))) {
        return tsr__fail(TSR_EINVAL, "config.progress_interval_s=%g is neither 0 nor in %g..%g",
                         cfg->progress_interval_s, MIN_PROGRESS_INTERVAL_S,
                         MAX_PROGRESS_INTERVAL_S);
    }
    if ((cfg->flags & ~(TSR_CONFIG_F_NO_ENV | TSR_CONFIG_F_ACCEL_FIRST)) != 0) {
        return tsr__fail(TSR_EINVAL, "config.flags=0x%x has unknown bits", (unsigned)cfg->flags);
    }
    return TSR_OK;
}

static tsr_status_t apply_env(tsr_config_t *cfg)
{
    const char *v;

    if ((v = getenv("TESSERA_NCPUS")) != NULL) {
        TSR_TRY(parse_workers(v, &cfg->n_cpu_workers));
    }
    if ((v = getenv("TESSERA_SCHED")) != NULL) {
        TSR_TRY(parse_policy(v, &cfg->policy));
    }
    if ((v = getenv("TESSERA_TRACE")) != NULL) {
        cfg->trace_path = v[0] != '\0' ? v : NULL;
    }
    if ((v = getenv("TESSERA_LOG_LEVEL")) != NULL) {
        TSR_TRY(parse_log_level(v, &cfg->log_level));
    }
    if ((v = getenv("TESSERA_SIM_DEVICES")) != NULL) {
        TSR_TRY(parse_sim_devices(v, cfg));
    }
    TSR_TRY(parse_cuda_env(cfg, getenv("TESSERA_CUDA_DEVICES"), getenv("TESSERA_CUDA_STREAMS")));
    TSR_TRY(parse_memory_env(cfg));
    TSR_TRY(parse_progress_env(cfg));
    if ((v = getenv("TESSERA_SIMULATE")) != NULL) {
        cfg->simulate = v[0] != '\0' ? v : NULL;
    }
    if ((v = getenv("TESSERA_MODEL_DIR")) != NULL) {
        cfg->model_dir = strcmp(v, "none") == 0 ? "" : v;
    }
    return TSR_OK;
}

tsr_status_t tsr_config_resolve(const tsr_config_t *config, tsr_config_t *resolved_out)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;

    if (resolved_out == NULL) {
        return tsr__fail(TSR_EINVAL, "tsr_config_resolve: resolved_out is NULL");
    }
    if (config != NULL) {
        cfg = *config;
    }
    TSR_TRY(check_struct(&cfg));
    if ((cfg.flags & TSR_CONFIG_F_NO_ENV) == 0) {
        TSR_TRY(apply_env(&cfg));
    }
    if (cfg.n_cpu_workers == 0) {
        cfg.n_cpu_workers = usable_cores();
    }
    if (cfg.policy == TSR_SCHED_DEFAULT) {
        cfg.policy = TSR_SCHED_WS;
    }
    if (cfg.cuda_streams == 0) {
        cfg.cuda_streams = DEFAULT_CUDA_STREAMS;
    }
    if (cfg.log_level == TSR_LOG_DEFAULT) {
        cfg.log_level = TSR_LOG_WARN;
    }
    if (cfg.device_spill_mark == 0.0) {
        cfg.device_spill_mark = DEFAULT_DEVICE_SPILL_MARK;
    }
    if (cfg.simulate != NULL && cfg.simulate[0] == '\0') {
        cfg.simulate = NULL;
    }
    if (cfg.trace_path != NULL && cfg.trace_path[0] == '\0') {
        cfg.trace_path = NULL;
    }
    *resolved_out = cfg;
    return TSR_OK;
}

const char *tsr_sched_policy_name(tsr_sched_policy_t policy)
{
    switch (policy) {
    case TSR_SCHED_EAGER:
        return "eager";
    case TSR_SCHED_WS:
        return "ws";
    case TSR_SCHED_DMDA:
        return "dmda";
    case TSR_SCHED_RANDOM:
        return "random";
    case TSR_SCHED_DEFAULT:
        return "default";
    }
    return "unknown";
}

int tsr__config_policy_is_default(const tsr_config_t *config)
{
    const char *v;

    if (config != NULL && config->policy != TSR_SCHED_DEFAULT) {
        return 0;
    }
    if (config != NULL && (config->flags & TSR_CONFIG_F_NO_ENV)) {
        return 1;
    }
    v = getenv("TESSERA_SCHED");
    return v == NULL;
}

void tsr__config_model_dir(const tsr_config_t *resolved, char *buf, size_t n)
{
    const char *base = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char host[128] = "localhost";

    if (resolved->model_dir != NULL) {
        snprintf(buf, n, "%s", resolved->model_dir);
        return;
    }
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    if (base != NULL && base[0] == '/') {
        snprintf(buf, n, "%s/tessera/models/%s", base, host);
    } else if (home != NULL && home[0] == '/') {
        snprintf(buf, n, "%s/.cache/tessera/models/%s", home, host);
    } else {
        snprintf(buf, n, "%s", ""); /* nowhere sensible: not saved */
    }
}

void tsr__config_spill_dir(const tsr_config_t *resolved, char *buf, size_t n)
{
    const char *tmp = getenv("TMPDIR");

    if (resolved->spill_dir != NULL) {
        snprintf(buf, n, "%s", resolved->spill_dir);
    } else {
        snprintf(buf, n, "%s/tessera-spill", tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
    }
}

uint64_t tsr__config_limit(const tsr_mem_limit_t *limit, uint64_t memory, double default_fraction)
{
    if (limit->bytes != 0) {
        return limit->bytes;
    }
    return (uint64_t)((double)memory *
                      (limit->fraction > 0.0 ? limit->fraction : default_fraction));
}

uint64_t tsr__config_host_ram(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);

    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}
