/* tessera-bench: shared definitions of the benchmark driver and its scenarios.
 *
 * A scenario is a function that runs its cases under `struct bench_opts` and
 * emits one record per measurement through the report (bench_report.h). To add
 * one, write bench_<name>.c with an entry point of type bench_fn, declare it
 * below and list it in the scenario table of bench_main.c. */
#ifndef TESSERA_BENCH_H
#define TESSERA_BENCH_H

#include <stdint.h>
#include <time.h>

#include <tessera.h>

#include "bench_report.h"

/* Where the measured tasks run (--device). */
enum bench_device {
    BENCH_DEVICE_CPU = 0,  /* the CPU workers (and, for transfer, the sim devices) */
    BENCH_DEVICE_SIM = 1,  /* simulated accelerators: the GPU cases on machines without one */
    BENCH_DEVICE_CUDA = 2, /* the CUDA GPUs */
    BENCH_DEVICE_COUNT = 3,
};

/* Everything a scenario needs to know about the invocation. */
struct bench_opts {
    int is_quick;                /* --quick: sizes for smoke tests */
    uint32_t n_runs;             /* --runs: timed runs per case (warm-up excluded) */
    int32_t n_workers;           /* --workers: n_cpu_workers; 0 = every core */
    tsr_sched_policy_t policy;   /* --policy: TSR_SCHED_DEFAULT = runtime default (sched: all) */
    const char *case_filter;     /* --case: run only this case; NULL = all */
    int use_peers;               /* 0 with --no-peer */
    enum bench_device device;    /* --device: cpu (default), sim or cuda */
    struct bench_report *report; /* where records go; borrowed */
};

/* Entry point of a scenario: returns 0, or nonzero after printing why to stderr. */
typedef int (*bench_fn)(const struct bench_opts *opts);

struct bench_scenario {
    const char *name;
    const char *description;
    const char *cases[BENCH_DEVICE_COUNT]; /* its cases per --device, for `list` */
    bench_fn run;
};

/* Scenarios. */
int bench_overhead_run(const struct bench_opts *opts);
int bench_transfer_run(const struct bench_opts *opts);
int bench_gemm_run(const struct bench_opts *opts);
int bench_sched_run(const struct bench_opts *opts);
int bench_spill_run(const struct bench_opts *opts);
int bench_array_run(const struct bench_opts *opts);

/* The accelerator cases of overhead (--device sim|cuda), bench_overhead_gpu.c. */
int bench_overhead_gpu_run(const struct bench_opts *opts);

/* Seconds on a monotonic clock. */
static inline double bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resolve what a runtime started with `opts` would use (env overrides
 * included): the worker count and the policy. Returns 0, or nonzero after
 * printing the tsr error to stderr. */
int bench_resolve(const struct bench_opts *opts, tsr_config_t *resolved_out);

/* Print "tessera-bench: <what>: <status>: <detail>" to stderr. */
void bench_print_error(const char *what, tsr_status_t st);

/* "cpu", "sim" or "cuda". */
const char *bench_device_name(enum bench_device device);

/* The device one case measures on, and the runtime it belongs to. */
struct bench_target {
    tsr_runtime_t *rt;      /* owned: bench_target_close shuts it down */
    uint32_t dev;           /* device index (TSR_PIN_DEVICE) */
    tsr_device_info_t info; /* that device */
    char label[16];         /* record field "device": "sim:1", "cuda:1", ... */
    char gpu[64];           /* CUDA: the GPU's name; else "" */
    char driver[32];        /* CUDA: NVIDIA driver release ("580.65.06"); else "" */
    char cuda_driver[16];   /* CUDA: CUDA version the driver supports ("13.0"); else "" */
    char cuda_runtime[16];  /* CUDA: CUDA runtime tessera-bench runs with; else "" */
};

/* Start a runtime for `opts` (workers, policy; one simulated device with
 * opts->device == BENCH_DEVICE_SIM, `sim_mem_bytes` each, 0: default) and pick its
 * first device of the kind opts->device names. Returns 0, or nonzero after saying
 * why on stderr (nothing to close then). */
int bench_target_open(const struct bench_opts *opts, uint64_t sim_mem_bytes,
                      struct bench_target *target_out);
void bench_target_close(struct bench_target *target);

/* As bench_target_open, for a runtime started with `cfg` (borrowed) whose first
 * device of `kind` is the target: for cases that need settings of their own. */
int bench_target_open_config(const tsr_config_t *cfg, tsr_device_kind_t kind,
                             struct bench_target *target_out);

/* The `nth` device of `kind` in `rt` (0-based): 0 and its index and description,
 * or -1 if there is none. */
int bench_device_find(tsr_runtime_t *rt, tsr_device_kind_t kind, uint32_t nth, uint32_t *index_out,
                      tsr_device_info_t *info_out);

/* Add the fields that say where `target` ran: "device" and, on a GPU, "gpu",
 * "driver", "cuda_driver" and "cuda_runtime". Borrows `target`, which must outlive `rec`. */
void bench_target_describe(const struct bench_target *target, struct bench_record *rec);

/* With --device cuda: 0 when a CUDA device is there to measure on; otherwise 1
 * after a one-line note on stderr saying why not (the run then measures nothing
 * and exits 0), or -1 if the runtime could not start. Always 0 for the other
 * devices. */
int bench_cuda_absent(const struct bench_opts *opts);

/* Every task submitted to `rt` completed and none failed or was cancelled; else
 * 1 after saying so on stderr, naming `what`. */
int bench_check_tasks(tsr_runtime_t *rt, const char *what);

#endif /* TESSERA_BENCH_H */
