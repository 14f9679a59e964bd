/* `tessera info`: what this build of Tessera contains and what a runtime
 * started now would use (the configuration resolved with TESSERA_* overrides;
 * no runtime is started, so TESSERA_TRACE writes nothing). */
#include <stdio.h>
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

/* The backends compiled in (tessera/config.h); CPU is always there. */
static void print_backends(const tsr_config_t *cfg)
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
    printf("  CUDA:  %s\n", TSR_HAVE_CUDA ? "built, devices arrive with issue 3" : "not built");
    printf("  UCX:   %s\n", TSR_HAVE_UCX ? "built, transport not used yet" : "not built");
    printf("  NCCL:  %s\n", TSR_HAVE_NCCL ? "built, transport not used yet" : "not built");
}

int cli_info(int argc, char **argv)
{
    tsr_config_t cfg;
    tsr_status_t st;

    if (argc > 1) {
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
            printf(
                "usage: tessera info\n\nPrints the version, the CPU workers, policy and "
                "log level a runtime\nwould use now, and the backends built.\n");
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
    printf("policy:      %s\n", tsr_sched_policy_name(cfg.policy));
    printf("log level:   %s\n", log_level_name(cfg.log_level));
    printf("trace:       %s\n", cfg.trace_path != NULL ? cfg.trace_path : "off");
    print_backends(&cfg);
    return CLI_EXIT_OK;
}
