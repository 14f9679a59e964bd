/* `tessera info`: what this build of Tessera contains and what a runtime
 * started now would use: the configuration resolved with TESSERA_* overrides,
 * and the devices of a runtime started for the purpose (without its trace). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera_cli.h"

static const char *log_level_name(tsr_log_level_t level)
{
    switch (level) {
    case TSR_LOG_NONE:
        return "none";
    case TSR_LOG_ERROR:
        return "error";
    case TSR_LOG_WARN:
        return "warn";
    case TSR_LOG_INFO:
        return "info";
    case TSR_LOG_DEBUG:
        return "debug";
    case TSR_LOG_DEFAULT:
        break;
    }
    return "default";
}

static const char *kind_name(uint32_t kind)
{
    switch (kind) {
    case TSR_DEVICE_CPU:
        return "cpu";
    case TSR_DEVICE_CUDA:
        return "cuda";
    case TSR_DEVICE_SIM:
        return "sim";
    default:
        return "?";
    }
}

/* The devices a runtime finds now; returns the number of CUDA devices, or -1. */
static int print_devices(const tsr_config_t *resolved)
{
    tsr_config_t cfg = *resolved;
    tsr_runtime_t *rt = NULL;
    tsr_runtime_stats_t stats = TSR_RUNTIME_STATS_INIT;
    tsr_status_t st;
    int n_cuda = 0;

    cfg.trace_path = NULL;
    cfg.flags |= TSR_CONFIG_F_NO_ENV; /* already applied in `resolved` */
    if (getenv("TESSERA_SCHED") == NULL) {
        cfg.policy = TSR_SCHED_DEFAULT; /* the runtime's choice, which depends on the devices */
    }
    st = tsr_init(&cfg, &rt);
    if (st != TSR_OK) {
        cli_print_error("info", "tsr_init", st);
        return -1;
    }
    printf("devices:\n");
    for (uint32_t i = 0; i < tsr_runtime_n_devices(rt); i++) {
        tsr_device_info_t d;

        if (tsr_runtime_device_info(rt, i, &d) != TSR_OK) {
            continue;
        }
        n_cuda += d.kind == TSR_DEVICE_CUDA;
        printf("  %-2u %-6s %-5s memory node %u, %u worker%s", (unsigned)i, d.name,
               kind_name(d.kind), (unsigned)d.mem_node, (unsigned)d.n_workers,
               d.n_workers == 1 ? "" : "s");
        if (d.mem_bytes > 0) {
            printf(", limit %.1f %s (evicts ahead from %.0f%%)",
                   (double)d.mem_bytes /
                       (double)(d.mem_bytes >= (1ull << 30) ? 1ull << 30 : 1ull << 20),
                   d.mem_bytes >= (1ull << 30) ? "GiB" : "MiB",
                   100.0 * resolved->device_spill_mark);
        } else {
            tsr_mem_stats_t host;

            if (tsr_runtime_mem_stats(rt, 0, &host) == TSR_OK) {
                printf(", host memory limit %.1f GiB",
                       (double)host.capacity / (double)(1ull << 30));
            }
        }
        printf(" - %s\n", d.model);
    }
    if (tsr_runtime_stats(rt, &stats) == TSR_OK) {
        printf("policy:      %s\n", tsr_sched_policy_name(stats.policy));
    }
    fflush(stdout);
    tsr_runtime_print_models(rt, stdout);
    tsr_shutdown(rt);
    return n_cuda;
}

/* The backends compiled in (tessera/config.h); CPU is always there. */
static void print_backends(const tsr_config_t *cfg, int n_cuda)
{
    printf("backends:\n");
    printf("  cpu:   built, %d workers\n", (int)cfg->n_cpu_workers);
    if (cfg->n_sim_devices > 0) {
        printf(
            "  sim:   %u simulated accelerators of %llu MiB each (TESSERA_SIM_DEVICES)\n",
            (unsigned)cfg->n_sim_devices,
            (unsigned long long)((cfg->sim_mem_bytes ? cfg->sim_mem_bytes : 256ull << 20) >> 20));
    } else {
        printf("  sim:   built, none configured (TESSERA_SIM_DEVICES=N[:mem=SIZE])\n");
    }
    if (n_cuda > 0) {
        printf("  CUDA:  built, %d GPU%s used, %u compute streams each\n", n_cuda,
               n_cuda == 1 ? "" : "s", (unsigned)cfg->cuda_streams);
    } else if (TSR_HAVE_CUDA && cfg->n_cuda_devices < 0) {
        printf("  CUDA:  built, disabled (TESSERA_CUDA_DEVICES=0); running CPU-only\n");
    } else {
        printf("  CUDA:  %s, no GPU: %s; running CPU-only\n", TSR_HAVE_CUDA ? "built" : "not built",
               tsr_device_kind_absent_reason(TSR_DEVICE_CUDA));
    }
    printf("  UCX:   %s\n", TSR_HAVE_UCX ? "built, transport not used yet" : "not built");
    printf("  NCCL:  %s\n", TSR_HAVE_NCCL ? "built, transport not used yet" : "not built");
}

int cli_info(int argc, char **argv)
{
    tsr_config_t cfg;
    tsr_status_t st;
    int n_cuda;

    if (argc > 1) {
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
            printf(
                "usage: tessera info\n\nPrints the version, the CPU workers, policy and "
                "log level a runtime\nwould use now, the devices it finds, and the backends "
                "built.\n");
            return CLI_EXIT_OK;
        }
        fprintf(stderr, "tessera info: takes no arguments (got '%s')\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    st = tsr_config_resolve(NULL, &cfg);
    if (st != TSR_OK) {
        cli_print_error("info", "tsr_config_resolve", st);
        return CLI_EXIT_FAIL;
    }
    printf("Tessera %s (built against headers %s)\n", tsr_version(), TSR_VERSION_STRING);
    printf("CPU workers: %d\n", (int)cfg.n_cpu_workers);
    printf("log level:   %s\n", log_level_name(cfg.log_level));
    printf("trace:       %s\n", cfg.trace_path != NULL ? cfg.trace_path : "off");
    printf("progress:    %s", cfg.progress == TSR_PROGRESS_ON ? "on"
                              : cfg.progress == TSR_PROGRESS_OFF
                                  ? "off"
                                  : "auto (a bar when stderr is a terminal)");
    if (cfg.progress_interval_s > 0.0) {
        printf(", every %g s", cfg.progress_interval_s);
    }
    printf("\n");
    printf(
        "spill dir:   %s, compression %s (lz4 %s)\n",
        cfg.spill_dir != NULL ? cfg.spill_dir : "$TMPDIR/tessera-spill (else /tmp/tessera-spill)",
        cfg.spill_compression == TSR_SPILL_COMPRESS_NONE  ? "none"
        : cfg.spill_compression == TSR_SPILL_COMPRESS_LZ4 ? "lz4"
                                                          : "auto",
        TSR_HAVE_LZ4 ? "built in" : "not built in");
    n_cuda = print_devices(&cfg);
    if (n_cuda < 0) {
        return CLI_EXIT_FAIL;
    }
    print_backends(&cfg, n_cuda);
    return CLI_EXIT_OK;
}
