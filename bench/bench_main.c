/* tessera-bench: command line, scenario table and dispatch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Every scenario; add new ones here (name, one-line description, cases per
 * --device cpu|sim|cuda (NULL: none), entry point). */
static const struct bench_scenario scenarios[] = {
    {"overhead",
     "runtime cost per task",
     {"independent, rw_1000_handles, chain", "gpu_chain_sim, gpu_independent_sim",
      "gpu_chain, gpu_independent"},
     bench_overhead_run},
    {"transfer",
     "copy bandwidth between memory nodes",
     {"h2d_sim, d2h_sim, d2d_sim (on sim devices)", "h2d_sim, d2h_sim, d2d_sim",
      "h2d_pinned, h2d_pageable, d2h_pinned, d2d"},
     bench_transfer_run},
    {"gemm",
     "tiled float32 matrix product, one task per tile product",
     {NULL, "tiled_f32_sim", "tiled_f32"},
     bench_gemm_run},
    {"sched",
     "policies' makespans for a tiled Cholesky on simulated CPU+GPU platforms, vs a bound",
     {"kernel_<codelet>, cholesky_<dmda|eager|ws|random>_<0|1|2|4|8>gpu, "
      "cholesky_dmda_<N>gpu_gpuonly (simulated)",
      NULL, NULL},
     bench_sched_run},
    {"spill",
     "data larger than device or host memory: device tier, disk tier, peak RSS",
     {"peak_rss, stream_4x_device (on a sim device), disk_write, disk_read",
      "peak_rss, stream_4x_device, disk_write, disk_read",
      "peak_rss, stream_4x_device (one GPU, 1 GiB device limit), disk_write, disk_read "
      "(host only)"},
     bench_spill_run},
    {"array",
     "chunked-array expressions vs dask.array and NumPy (CuPy on a GPU), and the bandwidth or "
     "BLAS bound",
     {"mean_x_plus_xt, sum_f32, matmul_f64, elementwise_chain, math_chain",
      "mean_x_plus_xt_sim, sum_f32_sim, matmul_f64_sim, elementwise_chain_sim, math_chain_sim, "
      "sum_spill_sim",
      "mean_x_plus_xt_gpu, sum_f32_gpu, matmul_f64_gpu, elementwise_chain_gpu, math_chain_gpu, "
      "sum_spill_gpu (8 GiB device limit)"},
     bench_array_run},
};
#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

struct cli {
    struct bench_opts opts;
    const char *scenario;
    int format; /* -1: by terminal, else enum bench_format */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tessera-bench [options] <scenario> | list | all\n"
            "\n"
            "Runs Tessera's benchmarks and prints one JSON object per measurement\n"
            "(a table when stdout is a terminal). See `tessera-bench list`.\n"
            "\n"
            "options:\n"
            "  --quick            small sizes, for smoke tests\n"
            "  --json | --table   output format (default: table on a terminal, else JSON)\n"
            "  --runs N           timed runs per case, warm-up excluded (default 5)\n"
            "  --workers N        CPU worker threads (default 0: every core)\n"
            "  --policy P         scheduling policy: eager | ws | dmda | random (default:\n"
            "                     runtime default; sched: all four, or only P)\n"
            "  --case NAME        run only this case of the scenario\n"
            "  --device D         where the tasks run: cpu (default) | sim | cuda\n"
            "                     (cuda without a GPU: a note on stderr, no records, exit 0)\n"
            "  --no-peer          do not run peer programs (peer_value null)\n"
            "  -h, --help         this text\n");
}

void bench_print_error(const char *what, tsr_status_t st)
{
    const char *detail = tsr_last_error();

    fprintf(stderr, "tessera-bench: %s: %s%s%s\n", what, tsr_status_str(st),
            detail[0] != '\0' ? ": " : "", detail);
}

int bench_resolve(const struct bench_opts *opts, tsr_config_t *resolved_out)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    tsr_status_t rc;

    cfg.n_cpu_workers = opts->n_workers;
    cfg.policy = opts->policy;
    rc = tsr_config_resolve(&cfg, resolved_out);
    if (rc != TSR_OK) {
        bench_print_error("tsr_config_resolve", rc);
        return 1;
    }
    return 0;
}

static int parse_long(const char *opt, const char *text, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = text != NULL ? strtol(text, &end, 10) : 0;
    if (text == NULL || end == text || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "tessera-bench: %s needs an integer in [%ld, %ld], got '%s'\n", opt, lo, hi,
                text != NULL ? text : "");
        return 1;
    }
    *out = v;
    return 0;
}

static int parse_device(const char *text, enum bench_device *out)
{
    for (int d = 0; d < BENCH_DEVICE_COUNT; d++) {
        if (text != NULL && strcmp(text, bench_device_name((enum bench_device)d)) == 0) {
            *out = (enum bench_device)d;
            return 0;
        }
    }
    fprintf(stderr, "tessera-bench: --device must be cpu, sim or cuda, got '%s'\n",
            text != NULL ? text : "");
    return 1;
}

static int parse_policy(const char *text, tsr_sched_policy_t *out)
{
    static const tsr_sched_policy_t known[] = {TSR_SCHED_EAGER, TSR_SCHED_WS, TSR_SCHED_DMDA,
                                               TSR_SCHED_RANDOM};

    for (size_t i = 0; text != NULL && i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(text, tsr_sched_policy_name(known[i])) == 0) {
            *out = known[i];
            return 0;
        }
    }
    fprintf(stderr, "tessera-bench: --policy must be eager, ws, dmda or random, got '%s'\n",
            text != NULL ? text : "");
    return 1;
}

/* Options taking a value; `*i` is advanced past it. Returns 0, 1 on error, -1 if unknown. */
static int parse_valued(struct cli *cli, int argc, char **argv, int *i)
{
    const char *opt = argv[*i];
    const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    long v = 0;
    int err;

    if (strcmp(opt, "--runs") == 0) {
        err = parse_long(opt, val, 1, 1000, &v);
        cli->opts.n_runs = (uint32_t)v;
    } else if (strcmp(opt, "--workers") == 0) {
        err = parse_long(opt, val, 0, 1024, &v);
        cli->opts.n_workers = (int32_t)v;
    } else if (strcmp(opt, "--policy") == 0) {
        err = parse_policy(val, &cli->opts.policy);
    } else if (strcmp(opt, "--device") == 0) {
        err = parse_device(val, &cli->opts.device);
    } else if (strcmp(opt, "--case") == 0) {
        err = val == NULL;
        if (err) {
            fprintf(stderr, "tessera-bench: --case needs a case name\n");
        }
        cli->opts.case_filter = val;
    } else {
        return -1;
    }
    *i += 1;
    return err;
}

/* Flags without a value. Returns 0, or -1 if `opt` is not one. */
static int parse_flag(struct cli *cli, const char *opt)
{
    if (strcmp(opt, "--quick") == 0) {
        cli->opts.is_quick = 1;
    } else if (strcmp(opt, "--json") == 0) {
        cli->format = BENCH_FORMAT_JSON;
    } else if (strcmp(opt, "--table") == 0) {
        cli->format = BENCH_FORMAT_TABLE;
    } else if (strcmp(opt, "--no-peer") == 0) {
        cli->opts.use_peers = 0;
    } else {
        return -1;
    }
    return 0;
}

/* Returns 0 to run, 1 on a usage error, 2 after --help. */
static int parse_args(struct cli *cli, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int err;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return 2;
        }
        if (arg[0] != '-') {
            if (cli->scenario != NULL) {
                fprintf(stderr, "tessera-bench: one scenario at a time ('%s', '%s')\n",
                        cli->scenario, arg);
                return 1;
            }
            cli->scenario = arg;
            continue;
        }
        err = parse_flag(cli, arg) == 0 ? 0 : parse_valued(cli, argc, argv, &i);
        if (err != 0) {
            if (err < 0) {
                fprintf(stderr, "tessera-bench: unknown option '%s' (see --help)\n", arg);
            }
            return 1;
        }
    }
    return 0;
}

static void list_scenarios(void)
{
    for (size_t i = 0; i < N_SCENARIOS; i++) {
        printf("%-12s %s\n", scenarios[i].name, scenarios[i].description);
        for (int d = 0; d < BENCH_DEVICE_COUNT; d++) {
            const char *cases = scenarios[i].cases[d];

            printf("  --device %-5s %s\n", bench_device_name((enum bench_device)d),
                   cases != NULL ? cases : "(none)");
        }
    }
}

static int run_scenarios(const struct cli *cli)
{
    int is_all = strcmp(cli->scenario, "all") == 0;
    int n_run = 0;
    int err = 0;

    for (size_t i = 0; i < N_SCENARIOS && !is_all; i++) {
        n_run += strcmp(cli->scenario, scenarios[i].name) == 0;
    }
    if (!is_all && n_run == 0) {
        fprintf(stderr, "tessera-bench: no scenario '%s' (see `tessera-bench list`)\n",
                cli->scenario);
        return 1;
    }
    err = bench_cuda_absent(&cli->opts);
    if (err != 0) {
        return err < 0 ? 1 : 0;
    }
    for (size_t i = 0; i < N_SCENARIOS && err == 0; i++) {
        if (is_all || strcmp(cli->scenario, scenarios[i].name) == 0) {
            err = scenarios[i].run(&cli->opts);
        }
    }
    return err;
}

int main(int argc, char **argv)
{
    struct bench_report report;
    tsr_config_t resolved;
    struct cli cli;
    int rc;

    memset(&cli, 0, sizeof(cli));
    cli.opts.n_runs = 5;
    cli.opts.use_peers = 1;
    cli.format = -1;
    rc = parse_args(&cli, argc, argv);
    if (rc != 0) {
        return rc == 2 ? EXIT_SUCCESS : 2;
    }
    if (cli.scenario == NULL) {
        usage(stderr);
        return 2;
    }
    if (strcmp(cli.scenario, "list") == 0) {
        list_scenarios();
        return EXIT_SUCCESS;
    }
    if (cli.format < 0) {
        cli.format = isatty(STDOUT_FILENO) ? BENCH_FORMAT_TABLE : BENCH_FORMAT_JSON;
    }
    if (bench_resolve(&cli.opts, &resolved) != 0) {
        return EXIT_FAILURE;
    }
    bench_report_init(&report, stdout, (enum bench_format)cli.format);
    cli.opts.report = &report;
    return run_scenarios(&cli) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
