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

/* Everything a scenario needs to know about the invocation. */
struct bench_opts {
    int is_quick;                /* --quick: sizes for smoke tests */
    uint32_t n_runs;             /* --runs: timed runs per case (warm-up excluded) */
    int32_t n_workers;           /* --workers: n_cpu_workers; 0 = every core */
    tsr_sched_policy_t policy;   /* --policy: TSR_SCHED_DEFAULT = runtime default */
    const char *case_filter;     /* --case: run only this case; NULL = all */
    int use_peers;               /* 0 with --no-peer */
    struct bench_report *report; /* where records go; borrowed */
};

/* Entry point of a scenario: returns 0, or nonzero after printing why to stderr. */
typedef int (*bench_fn)(const struct bench_opts *opts);

struct bench_scenario {
    const char *name;
    const char *description;
    bench_fn run;
};

/* Scenarios. */
int bench_overhead_run(const struct bench_opts *opts);
int bench_transfer_run(const struct bench_opts *opts);

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

#endif /* TESSERA_BENCH_H */
