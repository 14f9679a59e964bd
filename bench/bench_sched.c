/* tessera-bench sched: makespans of the scheduling policies on simulated
 * platforms, for a tiled Cholesky factorisation, against a lower bound.
 *
 * What runs: the task graph of bench_chol.h (T x T tiles of b x b doubles; T 16,
 * b 960; --quick T 6, b 192) is submitted to a runtime in virtual-time
 * simulation (tsr_config_t.simulate): no kernel runs, tiles are registered
 * without memory, and tsr_wait_all plays the schedule the policy makes, each
 * task taking its modelled time on the device chosen, each copy its time on its
 * link. Metric: the simulated makespan (seconds of virtual time). The simulation
 * is deterministic, so each case runs once (n 1, spread 0); dmda runs twice on
 * every platform and a difference is an error (exit 1).
 *
 * Task costs ("models measured on CPU"): the CPU time of each codelet is the
 * median time of this machine's C tile kernel at size b on one core
 * (bench_chol_kernels.c; also emitted as the `kernel_<codelet>` records). A GPU
 * runs a task `speed-up` times faster than one core, per codelet:
 *   potrf 2.3, trsm 11, syrk 26, gemm 29
 * the acceleration factors of one GPU over one CPU core for these four kernels at
 * tile size 960 reported by Agullo, Beaumont, Eyraud-Dubois and Kumar, "Are
 * Static Schedules so Bad? A Case Study on Cholesky Factorization" (IPDPS 2016),
 * for StarPU's tiled Cholesky on the platform its scheduling studies use. Its
 * abstract gives the range, 2.3 for POTRF to 29 for GEMM; the trsm and syrk
 * figures (11, 26) are to be checked against the paper's table. A Hopper GPU
 * against a modern core is further apart on gemm (hundreds of times in FP64),
 * but ratios of this size are the regime where placing work on the cores matters
 * at all, which is what the scenario tests; they are also the published
 * reference for this graph at this tile size.
 *
 * Platforms: 8 CPU cores (a socket's share of a GPU node; one worker per core),
 * plus 0, 1, 2, 4 or 8 GPUs of 80 GiB, each with a host link of 25 GB/s and 10 us
 * (PCIe 5.0 x16 moves about 50 GB/s one way; half of that allows for GPUs that
 * share a switch) and GPU-GPU links of 300 GB/s and 5 us (NVLink 4 through
 * NVSwitch, below its 450 GB/s one-way peak). The files are written to a
 * temporary directory and removed at the end.
 *
 * Cases: `cholesky_<policy>_<N>gpu` for the policies dmda, eager, ws and random
 * on N = 0, 1, 2, 4, 8; `cholesky_dmda_<N>gpu_gpuonly` (N >= 1) with codelets that
 * have no CPU implementation, so every task runs on a GPU.
 *
 * Priorities: every task gets its bottom level (its cost plus the longest path
 * after it, each task at its fastest device on the platform), scaled to 0..10^6:
 * the critical path first, as StarPU's Cholesky examples do by hand (potrf, then
 * the trsm and syrk of the next panel, high).
 *
 * Floor: max(critical path, area bound) from bench_chol.c, transfers free; the
 * record's `bound_kind` says which; a makespan below it is an error (exit 1), as
 * is a worker busy longer than the makespan. Peer: none. The targets
 * (README.md): dmda within 1.3x of the floor and best of the policies on every
 * GPU platform, and CPU+GPU faster than GPU-only. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_chol.h"

#define SCHED_CORES 8
#define SCHED_TILE_ROWS 16
#define SCHED_TILE 960
#define SCHED_QUICK_TILE_ROWS 6
#define SCHED_QUICK_TILE 192
#define SCHED_PRIORITY_MAX 1000000.0
#define N_POLICIES 4
#define N_PLATFORMS 5

/* Speed-up of a GPU over one core, per codelet (see above). */
static const double gpu_speedup[CHOL_N_KINDS] = {2.3, 11.0, 26.0, 29.0};

static const uint32_t platform_gpus[N_PLATFORMS] = {0, 1, 2, 4, 8};

static const tsr_sched_policy_t policies[N_POLICIES] = {TSR_SCHED_DMDA, TSR_SCHED_EAGER,
                                                        TSR_SCHED_WS, TSR_SCHED_RANDOM};

/* Never called: in a simulation no kernel runs. Should one run, its task fails
 * and bench_check_tasks reports it. */
static tsr_status_t not_simulated(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)bufs;
    (void)arg;
    tsr_task_ctx_fail(ctx, "a kernel ran in a simulation");
    return TSR_ETASK;
}

/* Per kind: with CPU and GPU implementations, then with a GPU one only. The
 * names are those of the platform files' `task` lines. */
static const tsr_codelet_t codelets[2][CHOL_N_KINDS] = {
    {
        {.name = "potrf",
         .impl = {[TSR_DEVICE_CPU] = not_simulated, [TSR_DEVICE_CUDA] = not_simulated},
         .n_buffers = 1,
         .modes = {TSR_RW}},
        {.name = "trsm",
         .impl = {[TSR_DEVICE_CPU] = not_simulated, [TSR_DEVICE_CUDA] = not_simulated},
         .n_buffers = 2,
         .modes = {TSR_R, TSR_RW}},
        {.name = "syrk",
         .impl = {[TSR_DEVICE_CPU] = not_simulated, [TSR_DEVICE_CUDA] = not_simulated},
         .n_buffers = 2,
         .modes = {TSR_R, TSR_RW}},
        {.name = "gemm",
         .impl = {[TSR_DEVICE_CPU] = not_simulated, [TSR_DEVICE_CUDA] = not_simulated},
         .n_buffers = 3,
         .modes = {TSR_R, TSR_R, TSR_RW}},
    },
    {
        {.name = "potrf",
         .impl = {[TSR_DEVICE_CUDA] = not_simulated},
         .n_buffers = 1,
         .modes = {TSR_RW}},
        {.name = "trsm",
         .impl = {[TSR_DEVICE_CUDA] = not_simulated},
         .n_buffers = 2,
         .modes = {TSR_R, TSR_RW}},
        {.name = "syrk",
         .impl = {[TSR_DEVICE_CUDA] = not_simulated},
         .n_buffers = 2,
         .modes = {TSR_R, TSR_RW}},
        {.name = "gemm",
         .impl = {[TSR_DEVICE_CUDA] = not_simulated},
         .n_buffers = 3,
         .modes = {TSR_R, TSR_R, TSR_RW}},
    },
};

/* One simulated platform and the run on it. */
struct sched_case {
    uint32_t n_gpus;
    int is_gpu_only;
    tsr_sched_policy_t policy;
    char name[64];
};

/* What a run gave. */
struct sched_result {
    double makespan_s;
    uint64_t bytes_moved;
    uint64_t n_tasks;
    double cpu_busy; /* mean over the cores of busy / makespan; NAN without cores */
    double gpu_busy; /* likewise over the GPUs */
    double max_busy; /* largest busy / makespan of one worker (> 1: overlapping tasks) */
};

struct sched_ctx {
    const struct bench_opts *opts;
    struct chol_dag dag;
    size_t tile;
    struct chol_costs costs;               /* CPU and GPU, as in the platform files */
    char dir[PATH_MAX];                    /* temporary directory of the platform files */
    double ratio[N_POLICIES][N_PLATFORMS]; /* makespan / floor, NAN: not run */
    double gpu_only_ratio[N_PLATFORMS];    /* dmda GPU-only makespan / CPU+GPU makespan */
};

static void platform_path(const struct sched_ctx *sc, uint32_t n_gpus, char *out, size_t n_out)
{
    snprintf(out, n_out, "%s/cpu%u_gpu%u.platform", sc->dir, (unsigned)SCHED_CORES,
             (unsigned)n_gpus);
}

static int write_platform(const struct sched_ctx *sc, uint32_t n_gpus)
{
    char path[PATH_MAX + 64];
    FILE *f;

    platform_path(sc, n_gpus, path, sizeof(path));
    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "tessera-bench: sched: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "# tessera-bench sched: %u cores, %u GPUs; task costs measured here (tile %zu)\n",
            (unsigned)SCHED_CORES, (unsigned)n_gpus, sc->tile);
    fprintf(f, "cpu cores=%u\n", (unsigned)SCHED_CORES);
    if (n_gpus > 0) {
        fprintf(f, "gpu count=%u memory=80GiB speedup=1", (unsigned)n_gpus);
        for (int k = 0; k < CHOL_N_KINDS; k++) {
            fprintf(f, " speedup.%s=%g", chol_kind_name((enum chol_kind)k), gpu_speedup[k]);
        }
        fprintf(f, "\nlink host-gpu bandwidth=25GB/s latency=10us\n");
        fprintf(f, "link gpu-gpu bandwidth=300GB/s latency=5us\n");
    }
    for (int k = 0; k < CHOL_N_KINDS; k++) {
        fprintf(f, "task %s cpu=%.9gs\n", chol_kind_name((enum chol_kind)k), sc->costs.cpu_s[k]);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "tessera-bench: sched: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

/* Task priorities for a platform: bottom levels scaled to 0..SCHED_PRIORITY_MAX. */
static int priorities_compute(const struct sched_ctx *sc, const struct chol_costs *costs,
                              int32_t *prio)
{
    double *bottom = calloc(sc->dag.n_tasks, sizeof(*bottom));
    double top = 0.0;

    if (bottom == NULL) {
        fprintf(stderr, "tessera-bench: sched: out of memory\n");
        return 1;
    }
    chol_dag_bottom_levels(&sc->dag, costs, bottom);
    for (uint32_t i = 0; i < sc->dag.n_tasks; i++) {
        top = fmax(top, bottom[i]);
    }
    for (uint32_t i = 0; i < sc->dag.n_tasks; i++) {
        prio[i] = (int32_t)lround(bottom[i] / top * SCHED_PRIORITY_MAX);
    }
    free(bottom);
    return 0;
}

/* The costs a case's bounds and priorities use: classes it cannot use are -1. */
static void case_costs(const struct sched_ctx *sc, const struct sched_case *c,
                       struct chol_costs *out)
{
    for (int k = 0; k < CHOL_N_KINDS; k++) {
        out->cpu_s[k] = c->is_gpu_only ? -1.0 : sc->costs.cpu_s[k];
        out->gpu_s[k] = c->n_gpus > 0 ? sc->costs.gpu_s[k] : -1.0;
    }
}

static tsr_status_t submit_dag(const struct sched_ctx *sc, const struct sched_case *c,
                               tsr_runtime_t *rt, tsr_data_t **tiles, const int32_t *prio)
{
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    tsr_status_t st = TSR_OK;

    for (uint32_t i = 0; i < sc->dag.n_tasks && st == TSR_OK; i++) {
        const struct chol_task *task = &sc->dag.tasks[i];
        tsr_data_t *hs[3];

        for (uint32_t h = 0; h < task->n_tiles; h++) {
            hs[h] = tiles[task->tiles[h]];
        }
        desc.codelet = &codelets[c->is_gpu_only][task->kind];
        desc.handles = hs;
        desc.n_handles = task->n_tiles;
        desc.priority = prio[i];
        st = tsr_task_submit(rt, &desc, NULL);
    }
    return st;
}

/* Busy fractions per class from the report (device 0 is the CPU). */
static void result_fill(const tsr_sim_report_t *rep, struct sched_result *out)
{
    double busy[2] = {0.0, 0.0};
    uint32_t n[2] = {0, 0};

    out->makespan_s = rep->makespan_s;
    out->bytes_moved = rep->bytes_moved;
    out->n_tasks = rep->n_tasks;
    out->max_busy = 0.0;
    for (uint32_t w = 0; w < rep->n_workers; w++) {
        int is_gpu = rep->worker_device[w] != 0;
        double frac = rep->makespan_s > 0.0 ? rep->busy_s[w] / rep->makespan_s : 0.0;

        busy[is_gpu] += frac;
        n[is_gpu]++;
        out->max_busy = fmax(out->max_busy, frac);
    }
    out->cpu_busy = n[0] > 0 ? busy[0] / n[0] : NAN;
    out->gpu_busy = n[1] > 0 ? busy[1] / n[1] : NAN;
}

/* Registers the tiles (no memory behind them), submits, simulates, reports. */
static int run_dag(const struct sched_ctx *sc, const struct sched_case *c, tsr_runtime_t *rt,
                   const int32_t *prio, struct sched_result *out)
{
    size_t tile_bytes = sc->tile * sc->tile * sizeof(double);
    tsr_data_t **tiles = calloc(sc->dag.n_tiles, sizeof(*tiles));
    tsr_sim_report_t *rep = calloc(1, sizeof(*rep));
    tsr_status_t st = tiles != NULL && rep != NULL ? TSR_OK : TSR_ENOMEM;
    uint32_t n_registered = 0;
    int err;

    for (; st == TSR_OK && n_registered < sc->dag.n_tiles; n_registered++) {
        st = tsr_data_register(rt, NULL, tile_bytes, &tiles[n_registered]);
    }
    st = st == TSR_OK ? submit_dag(sc, c, rt, tiles, prio) : st;
    st = st == TSR_OK ? tsr_wait_all(rt) : st;
    err = st != TSR_OK || bench_check_tasks(rt, c->name) != 0;
    st = err == 0 ? tsr_sim_report(rt, rep) : st;
    if (st != TSR_OK) {
        bench_print_error(c->name, st);
        err = 1;
    }
    if (err == 0) {
        result_fill(rep, out);
    }
    for (uint32_t i = 0; i < n_registered; i++) {
        tsr_data_unregister(tiles[i]);
    }
    free(rep);
    free(tiles);
    return err;
}

/* One simulation of case `c` on a fresh runtime. */
static int simulate(const struct sched_ctx *sc, const struct sched_case *c, const int32_t *prio,
                    struct sched_result *out)
{
    char path[PATH_MAX + 64];
    tsr_config_t cfg = TSR_CONFIG_INIT;
    tsr_runtime_t *rt = NULL;
    tsr_status_t st;
    int err;

    platform_path(sc, c->n_gpus, path, sizeof(path));
    cfg.simulate = path;
    cfg.n_cpu_workers = SCHED_CORES;
    cfg.policy = c->policy;
    cfg.model_dir = "";
    /* The platform and the policy are the case: TESSERA_NCPUS, _SCHED, _SIMULATE
     * and the rest must not change them. */
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    st = tsr_init(&cfg, &rt);
    if (st != TSR_OK) {
        bench_print_error("tsr_init", st);
        return 1;
    }
    err = run_dag(sc, c, rt, prio, out);
    tsr_shutdown(rt);
    return err;
}

static void emit_case(const struct sched_ctx *sc, const struct sched_case *c,
                      const struct sched_result *res, const struct chol_bounds *b)
{
    double floor_s = fmax(b->critical_path_s, b->area_s);
    struct bench_record rec;

    bench_record_init(&rec, "sched", c->name, "makespan_s", "s", "lower");
    rec.samples = &res->makespan_s;
    rec.n_samples = 1;
    rec.floor_value = floor_s;
    bench_record_add_str(&rec, "device", "simulated");
    bench_record_add_str(&rec, "policy", tsr_sched_policy_name(c->policy));
    bench_record_add_int(&rec, "gpus", c->n_gpus);
    bench_record_add_int(&rec, "cpus", c->is_gpu_only ? 0 : SCHED_CORES);
    bench_record_add_int(&rec, "tiles", sc->dag.n_tile_rows);
    bench_record_add_int(&rec, "tile", (int64_t)sc->tile);
    bench_record_add_int(&rec, "tasks", (int64_t)res->n_tasks);
    bench_record_add_num(&rec, "vs_floor", res->makespan_s / floor_s);
    bench_record_add_str(&rec, "bound_kind",
                         b->critical_path_s >= b->area_s ? "critical_path" : "area");
    bench_record_add_num(&rec, "critical_path_s", b->critical_path_s);
    bench_record_add_num(&rec, "area_s", b->area_s);
    bench_record_add_int(&rec, "bytes_moved", (int64_t)res->bytes_moved);
    bench_record_add_num(&rec, "cpu_busy", res->cpu_busy);
    bench_record_add_num(&rec, "gpu_busy", res->gpu_busy);
    bench_record_add_str(&rec, "costs", "cpu: kernels timed here; gpu: cpu / speedup");
    bench_report_emit(sc->opts->report, &rec);
}

/* 0 when a result is possible: a makespan below the floor, a worker busy longer
 * than the makespan or a task count off the graph's means the simulation (or the
 * bound) is wrong, which is an error (said on stderr; no record). */
static int check_result(const struct sched_ctx *sc, const struct sched_case *c,
                        const struct sched_result *res, double floor_s)
{
    /* The simulator counts whole nanoseconds, truncating each task's time. */
    if (res->makespan_s < floor_s - 1e-9 * (double)sc->dag.n_tasks) {
        fprintf(stderr,
                "tessera-bench: sched: %s: WRONG: makespan %.6g s below the lower bound %.6g s\n",
                c->name, res->makespan_s, floor_s);
        return 1;
    }
    if (res->max_busy > 1.0 + 1e-9) {
        fprintf(stderr, "tessera-bench: sched: %s: WRONG: a worker was busy %.3gx the makespan\n",
                c->name, res->max_busy);
        return 1;
    }
    if (res->n_tasks != sc->dag.n_tasks) {
        fprintf(stderr, "tessera-bench: sched: %s: WRONG: %llu tasks simulated, the graph has %u\n",
                c->name, (unsigned long long)res->n_tasks, sc->dag.n_tasks);
        return 1;
    }
    return 0;
}

/* Run case `c` (twice for dmda: the runs must agree) and emit its record; its
 * makespan and floor into makespan_out[0..1] (NAN when --case filters it out). */
static int run_case(const struct sched_ctx *sc, const struct sched_case *c, double *makespan_out)
{
    struct chol_costs costs;
    struct chol_bounds b;
    struct sched_result res;
    struct sched_result again;
    int32_t *prio;
    int err;

    makespan_out[0] = NAN;
    makespan_out[1] = NAN;
    if (sc->opts->case_filter != NULL && strcmp(sc->opts->case_filter, c->name) != 0) {
        return 0;
    }
    prio = calloc(sc->dag.n_tasks, sizeof(*prio));
    case_costs(sc, c, &costs);
    err = prio == NULL || priorities_compute(sc, &costs, prio) != 0;
    err = err != 0 ? err : simulate(sc, c, prio, &res);
    if (err == 0 && c->policy == TSR_SCHED_DMDA) {
        err = simulate(sc, c, prio, &again);
        if (err == 0 &&
            (again.makespan_s != res.makespan_s || again.bytes_moved != res.bytes_moved)) {
            fprintf(stderr,
                    "tessera-bench: sched: %s: NOT DETERMINISTIC: makespans %.9g s and %.9g s, "
                    "%llu and %llu bytes moved\n",
                    c->name, res.makespan_s, again.makespan_s, (unsigned long long)res.bytes_moved,
                    (unsigned long long)again.bytes_moved);
            err = 1;
        }
    }
    if (err == 0) {
        chol_dag_bounds(&sc->dag, &costs, c->is_gpu_only ? 0 : SCHED_CORES, c->n_gpus, &b);
        err = check_result(sc, c, &res, fmax(b.critical_path_s, b.area_s));
    }
    if (err == 0) {
        emit_case(sc, c, &res, &b);
        makespan_out[0] = res.makespan_s;
        makespan_out[1] = fmax(b.critical_path_s, b.area_s);
    }
    free(prio);
    return err;
}

/* Time the CPU kernels: costs of the platforms and the kernel_<codelet> records. */
static int measure_costs(struct sched_ctx *sc)
{
    static const char *const cases[CHOL_N_KINDS] = {"kernel_potrf", "kernel_trsm", "kernel_syrk",
                                                    "kernel_gemm"};
    uint32_t n = sc->opts->n_runs < 3 ? 3 : sc->opts->n_runs;
    double *samples = calloc((size_t)CHOL_N_KINDS * n, sizeof(*samples));
    struct bench_record rec;

    if (samples == NULL || chol_kernels_measure(sc->tile, n, samples) != 0) {
        free(samples);
        return 1;
    }
    for (int k = 0; k < CHOL_N_KINDS; k++) {
        double cpu_s = bench_median(&samples[k * n], n);

        sc->costs.cpu_s[k] = cpu_s;
        sc->costs.gpu_s[k] = cpu_s / gpu_speedup[k];
        if (sc->opts->case_filter != NULL && strcmp(sc->opts->case_filter, cases[k]) != 0) {
            continue;
        }
        bench_record_init(&rec, "sched", cases[k], "cpu_s", "s", "lower");
        rec.samples = &samples[k * n];
        rec.n_samples = n;
        bench_record_add_str(&rec, "device", "cpu:1");
        bench_record_add_int(&rec, "tile", (int64_t)sc->tile);
        bench_record_add_num(&rec, "gflops",
                             chol_kind_flops((enum chol_kind)k, sc->tile) / cpu_s / 1e9);
        bench_record_add_num(&rec, "gpu_speedup", gpu_speedup[k]);
        bench_record_add_str(&rec, "kernel", "C, blocked, one core, double");
        bench_report_emit(sc->opts->report, &rec);
    }
    free(samples);
    return 0;
}

static int policy_selected(const struct sched_ctx *sc, tsr_sched_policy_t policy)
{
    return sc->opts->policy == TSR_SCHED_DEFAULT || sc->opts->policy == policy;
}

/* Every policy on platform p, then dmda GPU-only; fills the summary table. */
static int run_platform(struct sched_ctx *sc, int p)
{
    struct sched_case c = {platform_gpus[p], 0, TSR_SCHED_DMDA, ""};
    double dmda_s = NAN;
    double ms[2];
    int err = write_platform(sc, c.n_gpus);

    for (int q = 0; q < N_POLICIES && err == 0; q++) {
        if (!policy_selected(sc, policies[q])) {
            continue;
        }
        c.policy = policies[q];
        snprintf(c.name, sizeof(c.name), "cholesky_%s_%ugpu", tsr_sched_policy_name(c.policy),
                 (unsigned)c.n_gpus);
        err = run_case(sc, &c, ms);
        sc->ratio[q][p] = ms[0] / ms[1];
        dmda_s = q == 0 ? ms[0] : dmda_s;
    }
    if (err == 0 && c.n_gpus > 0 && policy_selected(sc, TSR_SCHED_DMDA)) {
        c.is_gpu_only = 1;
        c.policy = TSR_SCHED_DMDA;
        snprintf(c.name, sizeof(c.name), "cholesky_dmda_%ugpu_gpuonly", (unsigned)c.n_gpus);
        err = run_case(sc, &c, ms);
        sc->gpu_only_ratio[p] = ms[0] / dmda_s;
    }
    return err;
}

/* One cell of the summary: the ratio, or "-" when the case did not run. */
static void print_cell(FILE *out, double ratio, char mark)
{
    char text[32] = "-";

    if (isfinite(ratio)) {
        snprintf(text, sizeof(text), "%.3f", ratio);
    }
    fprintf(out, " %9s%c", text, mark);
}

/* The human summary (table output only): makespan / floor per policy and
 * platform, the best policy of each platform starred. */
static void print_summary(const struct sched_ctx *sc)
{
    FILE *out = sc->opts->report->out;

    fprintf(out, "\nsched: makespan / floor (* best policy of the platform; %u cores + N GPUs)\n",
            (unsigned)SCHED_CORES);
    fprintf(out, "%-22s", "policy");
    for (int p = 0; p < N_PLATFORMS; p++) {
        fprintf(out, " %7ugpu ", (unsigned)platform_gpus[p]);
    }
    for (int q = 0; q < N_POLICIES; q++) {
        fprintf(out, "\n%-22s", tsr_sched_policy_name(policies[q]));
        for (int p = 0; p < N_PLATFORMS; p++) {
            int is_best = isfinite(sc->ratio[q][p]);

            for (int o = 0; o < N_POLICIES; o++) {
                is_best &= !(sc->ratio[o][p] < sc->ratio[q][p]);
            }
            print_cell(out, sc->ratio[q][p], is_best ? '*' : ' ');
        }
    }
    fprintf(out, "\n%-22s", "dmda gpu-only/cpu+gpu");
    for (int p = 0; p < N_PLATFORMS; p++) {
        print_cell(out, sc->gpu_only_ratio[p], ' ');
    }
    fputc('\n', out);
}

static void remove_platforms(const struct sched_ctx *sc)
{
    char path[PATH_MAX + 64];

    for (int p = 0; p < N_PLATFORMS; p++) {
        platform_path(sc, platform_gpus[p], path, sizeof(path));
        (void)unlink(path);
    }
    (void)rmdir(sc->dir);
}

static int make_dir(struct sched_ctx *sc)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(sc->dir, sizeof(sc->dir), "%s/tessera-bench-sched-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(sc->dir) == NULL) {
        fprintf(stderr, "tessera-bench: sched: cannot create %s: %s\n", sc->dir, strerror(errno));
        sc->dir[0] = '\0';
        return 1;
    }
    return 0;
}

int bench_sched_run(const struct bench_opts *opts)
{
    struct sched_ctx *sc;
    int err;

    if (opts->device != BENCH_DEVICE_CPU) {
        fprintf(stderr,
                "tessera-bench: sched simulates its platforms; it runs with --device cpu\n");
        return 0;
    }
    sc = calloc(1, sizeof(*sc));
    if (sc == NULL) {
        fprintf(stderr, "tessera-bench: sched: out of memory\n");
        return 1;
    }
    sc->opts = opts;
    sc->tile = opts->is_quick ? SCHED_QUICK_TILE : SCHED_TILE;
    for (int p = 0; p < N_PLATFORMS; p++) {
        sc->gpu_only_ratio[p] = NAN;
        for (int q = 0; q < N_POLICIES; q++) {
            sc->ratio[q][p] = NAN;
        }
    }
    err = chol_dag_build(opts->is_quick ? SCHED_QUICK_TILE_ROWS : SCHED_TILE_ROWS, &sc->dag);
    if (err == 0) {
        err = measure_costs(sc) != 0 || make_dir(sc) != 0;
        for (int p = 0; p < N_PLATFORMS && err == 0; p++) {
            err = run_platform(sc, p);
        }
        if (sc->dir[0] != '\0') {
            remove_platforms(sc);
        }
        chol_dag_free(&sc->dag);
    }
    if (err == 0 && opts->report->format == BENCH_FORMAT_TABLE && opts->case_filter == NULL) {
        print_summary(sc);
    }
    free(sc);
    return err;
}
