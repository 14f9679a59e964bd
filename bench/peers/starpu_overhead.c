/* Peer of `tessera-bench overhead`: the same three cases through StarPU 1.3.
 *
 * usage: tessera-peer-starpu-overhead [--workers N] [--policy eager|ws] [--runs N]
 *                                     [--quick] [--case NAME]
 * Prints, per case, "case=<name> value=<median us_per_task> spread=<max-min> n=<runs>"
 * followed by informative key=value pairs. Like Tessera's side: StarPU is
 * started and handles registered outside the timed region, one untimed warm-up
 * run per case, and the timed region runs from the first submit to the return
 * of starpu_task_wait_for_all. Tasks are built with starpu_task_create and
 * starpu_task_submit (StarPU's cheapest submission path, cheaper than
 * starpu_task_insert); the codelets' CPU function is empty and carries no
 * performance model, so nothing is calibrated. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <starpu.h>

struct peer_case {
    const char *name;
    uint64_t n_tasks;
    uint32_t n_handles; /* 0: tasks access no data */
};

static const struct peer_case cases[] = {
    {"independent", 1000000, 0},
    {"rw_1000_handles", 1000000, 1000},
    {"chain", 100000, 1},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

struct peer_opts {
    int n_workers; /* 0: StarPU's default (every core) */
    const char *policy;
    int n_runs;
    int is_quick;
    const char *case_filter;
};

static void empty_func(void *buffers[], void *cl_arg)
{
    (void)buffers;
    (void)cl_arg;
}

static struct starpu_codelet cl_empty = {
    .cpu_funcs = {empty_func},
    .nbuffers = 0,
    .name = "empty",
};

static struct starpu_codelet cl_empty_rw = {
    .cpu_funcs = {empty_func},
    .nbuffers = 1,
    .modes = {STARPU_RW},
    .name = "empty_rw",
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Sorts `v` in place; returns the median. */
static double median_sorted(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return (n % 2 == 1) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Submit `n_tasks` tasks, wait for all; returns seconds, or a negative value on error. */
static double run_once(starpu_data_handle_t *handles, uint32_t n_handles, uint64_t n_tasks)
{
    uint32_t h = 0;
    double t0 = now_s();

    for (uint64_t i = 0; i < n_tasks; i++) {
        struct starpu_task *task = starpu_task_create();

        task->cl = n_handles > 0 ? &cl_empty_rw : &cl_empty;
        if (n_handles > 0) {
            task->handles[0] = handles[h];
            h = (h + 1 == n_handles) ? 0 : h + 1;
        }
        if (starpu_task_submit(task) != 0) {
            fprintf(stderr, "starpu_overhead: starpu_task_submit failed\n");
            starpu_task_wait_for_all();
            return -1.0;
        }
    }
    if (starpu_task_wait_for_all() != 0) {
        fprintf(stderr, "starpu_overhead: starpu_task_wait_for_all failed\n");
        return -1.0;
    }
    return now_s() - t0;
}

/* One untimed warm-up run, then n_runs timed ones into us[] (us per task). */
static int time_runs(starpu_data_handle_t *handles, uint32_t n_handles, uint64_t n_tasks,
                     int n_runs, double *us)
{
    if (run_once(handles, n_handles, n_tasks) < 0.0) {
        return 1;
    }
    for (int r = 0; r < n_runs; r++) {
        double seconds = run_once(handles, n_handles, n_tasks);

        if (seconds < 0.0) {
            return 1;
        }
        us[r] = seconds * 1e6 / (double)n_tasks;
    }
    return 0;
}

/* Register the case's handles, time it, print its result line. */
static int run_case(const struct peer_opts *opts, const struct peer_case *c)
{
    uint64_t n_tasks = opts->is_quick ? c->n_tasks / 10 : c->n_tasks;
    starpu_data_handle_t *handles = calloc(c->n_handles + 1, sizeof(starpu_data_handle_t));
    uint64_t *cells = calloc(c->n_handles + 1, sizeof(uint64_t));
    double *us = calloc((size_t)opts->n_runs, sizeof(double));
    int err = handles == NULL || cells == NULL || us == NULL;

    for (uint32_t i = 0; !err && i < c->n_handles; i++) {
        starpu_variable_data_register(&handles[i], STARPU_MAIN_RAM, (uintptr_t)&cells[i],
                                      sizeof(cells[i]));
    }
    err = err || time_runs(handles, c->n_handles, n_tasks, opts->n_runs, us);
    if (!err) {
        double med = median_sorted(us, opts->n_runs); /* us is sorted from here on */

        printf(
            "case=%s value=%.6g spread=%.6g n=%d metric=us_per_task tasks=%llu workers=%u "
            "sched=%s\n",
            c->name, med, us[opts->n_runs - 1] - us[0], opts->n_runs, (unsigned long long)n_tasks,
            starpu_cpu_worker_get_count(), opts->policy);
        fflush(stdout);
    }
    for (uint32_t i = 0; handles != NULL && cells != NULL && i < c->n_handles; i++) {
        starpu_data_unregister(handles[i]);
    }
    free(us);
    free(cells);
    free(handles);
    return err;
}

static int parse_int(const char *opt, const char *text, int lo, int hi, int *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = text != NULL ? strtol(text, &end, 10) : 0;
    if (text == NULL || end == text || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "starpu_overhead: %s needs an integer in [%d, %d]\n", opt, lo, hi);
        return 1;
    }
    *out = (int)v;
    return 0;
}

static int parse_args(struct peer_opts *opts, int argc, char **argv)
{
    int err = 0;

    for (int i = 1; i < argc && err == 0; i++) {
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(argv[i], "--quick") == 0) {
            opts->is_quick = 1;
            continue;
        }
        if (strcmp(argv[i], "--workers") == 0) {
            err = parse_int(argv[i], val, 0, 1024, &opts->n_workers);
        } else if (strcmp(argv[i], "--runs") == 0) {
            err = parse_int(argv[i], val, 1, 1000, &opts->n_runs);
        } else if (strcmp(argv[i], "--policy") == 0 && val != NULL) {
            opts->policy = val;
        } else if (strcmp(argv[i], "--case") == 0 && val != NULL) {
            opts->case_filter = val;
        } else {
            fprintf(stderr, "starpu_overhead: bad argument '%s'\n", argv[i]);
            err = 1;
        }
        i++;
    }
    return err;
}

/* CPU workers only, the requested policy, no output noise. The conf fields win
 * over the environment, which is set as well for StarPU's own helpers. */
static int start_starpu(const struct peer_opts *opts)
{
    struct starpu_conf conf;
    char ncpu[16];
    int ret;

    setenv("STARPU_SILENT", "1", 1);
    setenv("STARPU_SCHED", opts->policy, 1);
    if (opts->n_workers > 0) {
        snprintf(ncpu, sizeof(ncpu), "%d", opts->n_workers);
        setenv("STARPU_NCPU", ncpu, 1);
    }
    starpu_conf_init(&conf);
    conf.precedence_over_environment_variables = 1;
    conf.sched_policy_name = opts->policy;
    conf.ncpus = opts->n_workers > 0 ? opts->n_workers : -1;
    conf.ncuda = 0;
    conf.nopencl = 0;
    ret = starpu_init(&conf);
    if (ret != 0) {
        fprintf(stderr, "starpu_overhead: starpu_init failed (%d)\n", ret);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct peer_opts opts = {0, "ws", 5, 0, NULL};
    int err;

    if (parse_args(&opts, argc, argv) != 0 || start_starpu(&opts) != 0) {
        return 2;
    }
    err = 0;
    for (size_t i = 0; i < N_CASES && err == 0; i++) {
        if (opts.case_filter == NULL || strcmp(opts.case_filter, cases[i].name) == 0) {
            err = run_case(&opts, &cases[i]);
        }
    }
    starpu_shutdown();
    return err;
}
