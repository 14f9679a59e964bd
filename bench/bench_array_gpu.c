/* tessera-bench array --device cuda | sim: the four workloads of bench_array.c with
 * their data and tasks on one accelerator, beside CuPy on the same GPU (metric
 * `seconds`, lower better); then sum_spill (bench_array_spill.c).
 *
 * Cases: <workload>_gpu on CUDA (the first GPU); <workload>_sim on one simulated
 * accelerator of 512 MiB, which runs the CPU kernels on one thread: it tests the
 * plumbing on machines without a GPU, its figures say nothing about one.
 * Sizes: the CPU cases' (bench_array.c); at full size on a GPU in larger chunks,
 * one task each being cheap there next to its launch (mean 5000 x 5000, sum 1.25e8,
 * matmul 4000 x 4000, chain 5e7: 4 to 16 chunks); --quick, and always on sim, the
 * CPU cases' quick sizes and chunks.
 *
 * GPU only, as CuPy is: the runtime has one CPU worker (it must have one) and
 * TSR_CONFIG_F_ACCEL_FIRST, so every array task the accelerator can run runs there
 * under any policy (the runtime default, dmda with accelerators, unless --policy
 * says otherwise). The array collection still pins a task to the CPU when it needs
 * more than half of the accelerator's memory; no task of these cases comes near
 * that (one would show in pcie_bytes_per_run).
 *
 * Timed: x (and y) are generated on the device and persisted first; a run builds the
 * expression and persists its result (tsr_array_persist), which stays in device
 * memory as CuPy's does (copying the chain's 800 MB or the product's 512 MB to the
 * host would time PCIe, not the work). One untimed warm-up run. pcie_bytes_per_run:
 * bytes copied between host and device during the timed runs, per run (0 when x
 * stayed on the device). After the timing the last result is computed into host
 * memory and checked as the CPU cases' are (a wrong one: value null, exit 1).
 *
 * Peer (CUDA only, run after the case's runtime has shut down): CuPy through
 * peers/array_peers.py --lib cupy, as a user writes it ((x + x.T).mean(axis=0),
 * x.sum(), x @ y, the chain as CuPy expressions) on its own random x of the same
 * size in device memory; timed from the call to the return of
 * cupy.cuda.Device().synchronize(), warm-up excluded, median of --runs. Missing
 * CuPy: peer_value null and a note.
 *
 * floor_value, measured in the same run, runtime up, before x exists: the bytes that
 * must move (x once; x and the result for the chain) over the device-to-device copy
 * bandwidth (cudaMemcpy of 1 GiB [64 MiB], read + write bytes counted, best of
 * max(--runs, 5) after a warm-up; on sim a one-thread memcpy of 64 MiB); for matmul
 * one cublasDgemm of the whole matrices (peers/cublas_dgemm.cu, best of as many;
 * null on sim). floor_fraction = floor_value / value. Targets (issue 6): at least
 * CuPy's speed everywhere (a tie counts where both are within 10% of the floor), 2x
 * CuPy on the chain, floor_fraction >= 0.8 on sum and the chain: `target_met` 1 or
 * 0, null without CuPy's figure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_array.h"
#include "bench_array_cuda.h"
#include "bench_cuda.h"

#define HBM_COPY_BYTES ((size_t)1 << 30)
#define HBM_COPY_BYTES_QUICK ((size_t)64 << 20)
#define SIM_COPY_BYTES ((size_t)64 << 20)
#define SIM_MEM_BYTES ((uint64_t)512 << 20)
#define FLOOR_MIN_RUNS 5u
#define TIE_FRACTION 0.9                    /* both within 10% of the floor: a tie */
#define FLOOR_TARGET 0.8                    /* sum and chain: floor_fraction */
#define CHAIN_TARGET 2.0                    /* chain: x CuPy's speed */
#define PCIE_NOTE_BYTES ((uint64_t)1 << 20) /* per run: more is noted (x is 4 MB and up) */

/* One GPU (or sim) case being measured. */
struct gpu_run {
    struct array_run r;
    char name[64];     /* "sum_f32_gpu" */
    tsr_array_t *res;  /* the last timed run's result, persisted */
    double floor_s;    /* floor_value; NAN: none */
    double floor_rate; /* GB/s of the copy, or GFLOP/s of cuBLAS */
    char floor_why[160];
    uint64_t pcie_bytes_per_run; /* host-device copies during the timed runs */
    struct peer_side cupy;
};

/* ---- the runtime ---- */

int array_gpu_open(const struct bench_opts *opts, uint64_t dev_mem_bytes, struct bench_target *tg)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    int is_sim = opts->device == BENCH_DEVICE_SIM;

    cfg.n_cpu_workers = 1;
    cfg.policy = opts->policy;
    cfg.flags |= TSR_CONFIG_F_ACCEL_FIRST;
    if (is_sim) {
        cfg.n_sim_devices = 1;
        cfg.sim_mem_bytes = dev_mem_bytes;
        cfg.n_cuda_devices = -1;
    } else {
        cfg.n_cuda_devices = 1;
        cfg.device_memory_limit.bytes = dev_mem_bytes;
    }
    return bench_target_open_config(&cfg, is_sim ? TSR_DEVICE_SIM : TSR_DEVICE_CUDA, tg);
}

/* ---- counters, floors and the CuPy peer, shared with the spill case ---- */

static uint64_t copied(const struct bench_target *tg, uint32_t src, uint32_t dst)
{
    tsr_copy_stats_t s = {0, 0};

    return tsr_runtime_copy_stats(tg->rt, src, dst, &s) == TSR_OK ? s.n_bytes : 0;
}

uint64_t array_link_bytes(const struct bench_target *tg)
{
    return copied(tg, 0, tg->info.mem_node) + copied(tg, tg->info.mem_node, 0);
}

uint64_t array_h2d_bytes(const struct bench_target *tg)
{
    return copied(tg, 0, tg->info.mem_node);
}

double array_memcpy_gbps(size_t n_bytes, uint32_t n_runs)
{
    char *a = malloc(n_bytes);
    char *b = malloc(n_bytes);
    double best = INFINITY;
    volatile char sink = 0;

    if (a == NULL || b == NULL || n_bytes == 0) {
        free(a);
        free(b);
        return NAN;
    }
    memset(a, 1, n_bytes);
    memset(b, 2, n_bytes);
    for (uint32_t r = 0; r <= n_runs; r++) { /* run 0: warm-up */
        double t0 = bench_now_s();
        double sec;

        memcpy(b, a, n_bytes);
        sec = bench_now_s() - t0;
        sink = (char)(sink + b[(r * 4099u) % n_bytes]); /* the copy is used */
        best = r > 0 && sec < best ? sec : best;
    }
    free(a);
    free(b);
    return 2.0 * (double)n_bytes / best / 1e9;
}

void array_cupy_peer(const struct bench_opts *opts, const struct array_run *r,
                     const char *peer_case, const char *extra_args, struct peer_side *cupy)
{
    struct bench_peer_result *res = NULL;
    char args[384];

    array_peer_side_init(cupy, "cupy");
    if (opts->device != BENCH_DEVICE_CUDA || !opts->use_peers) {
        snprintf(cupy->note, sizeof(cupy->note), "cupy: not run (%s)",
                 opts->use_peers ? "the CuPy peer runs with --device cuda" : "--no-peer");
        return;
    }
    res = calloc(1, sizeof(*res));
    if (res == NULL) {
        snprintf(cupy->note, sizeof(cupy->note), "cupy: not run (out of memory)");
        return;
    }
    snprintf(args, sizeof(args),
             "%s --lib cupy --n %lld --chunk %lld --runs %u --seed %d --gpu %u%s%s", peer_case,
             (long long)r->n, (long long)r->chunk, opts->n_runs, ARRAY_SEED, r->tg.info.kind_index,
             extra_args[0] != '\0' ? " " : "", extra_args);
    if (isatty(STDERR_FILENO)) {
        fprintf(stderr, "tessera-bench: array %s: running peer cupy ...\n", peer_case);
    }
    bench_peer_run(ARRAY_PEER_PROG, args, res);
    array_peer_side_read(res, peer_case, "cupy", cupy);
    free(res);
}

/* The best (smallest) of n figures. */
static double min_of(const double *v, uint32_t n)
{
    double best = v[0];

    for (uint32_t i = 1; i < n; i++) {
        best = v[i] < best ? v[i] : best;
    }
    return best;
}

/* The best (largest) of n rates. */
static double max_of(const double *v, uint32_t n)
{
    double best = v[0];

    for (uint32_t i = 1; i < n; i++) {
        best = v[i] > best ? v[i] : best;
    }
    return best;
}

/* matmul's floor: one cublasDgemm of the whole matrices (CUDA only). */
static void gpu_floor_blas(struct gpu_run *g, uint32_t n_runs, double *v)
{
    double n = (double)g->r.n;

    if (g->r.tg.info.kind != TSR_DEVICE_CUDA) {
        snprintf(g->floor_why, sizeof(g->floor_why), "floor: no BLAS floor on a sim device");
        return;
    }
    if (bench_cublas_dgemm_peer((int)g->r.tg.info.kind_index, (size_t)g->r.n, n_runs, v,
                                g->floor_why, sizeof(g->floor_why)) == 0) {
        g->floor_s = min_of(v, n_runs);
        g->floor_rate = 2.0 * n * n * n / g->floor_s / 1e9;
    }
}

/* The other cases' floor: the bytes that must move over the copy bandwidth. */
static void gpu_floor_copy(const struct bench_opts *opts, struct gpu_run *g, uint32_t n_runs,
                           double *v)
{
    int ordinal = (int)g->r.tg.info.kind_index;
    size_t copy_bytes = opts->is_quick ? HBM_COPY_BYTES_QUICK : HBM_COPY_BYTES;
    double bytes = (double)array_x_bytes(&g->r) * (g->r.c->floor == FLOOR_SCALE ? 2.0 : 1.0);

    if (g->r.tg.info.kind != TSR_DEVICE_CUDA) {
        g->floor_rate = array_memcpy_gbps(SIM_COPY_BYTES, n_runs);
    } else if (bench_cuda_memcpy_peer(BENCH_COPY_D2D, ordinal, ordinal, copy_bytes, n_runs, v,
                                      g->floor_why, sizeof(g->floor_why)) == 0) {
        g->floor_rate = 2.0 * max_of(v, n_runs); /* the fastest copy, read + write */
    }
    g->floor_s = bytes / (g->floor_rate * 1e9);
}

/* floor_s and floor_rate of g's case (see the top of the file); NAN and a note in
 * floor_why when there is none. */
static void gpu_floor(const struct bench_opts *opts, struct gpu_run *g)
{
    uint32_t n_runs = opts->n_runs > FLOOR_MIN_RUNS ? opts->n_runs : FLOOR_MIN_RUNS;
    double *v = calloc(n_runs, sizeof(double));

    g->floor_s = NAN;
    g->floor_rate = NAN;
    if (v == NULL) {
        snprintf(g->floor_why, sizeof(g->floor_why), "floor: out of memory");
    } else if (g->r.c->floor == FLOOR_BLAS) {
        gpu_floor_blas(g, n_runs, v);
    } else {
        gpu_floor_copy(opts, g, n_runs, v);
    }
    free(v);
}

/* ---- one case ---- */

/* One run: build the expression and persist its result, which replaces the
 * previous run's (released after the timing). */
static tsr_status_t gpu_run_once(struct gpu_run *g, double *seconds_out)
{
    tsr_array_t *res = NULL;
    double t0 = bench_now_s();
    tsr_status_t st = array_build_expr(&g->r, &res);

    st = st == TSR_OK ? tsr_array_persist(res) : st;
    *seconds_out = bench_now_s() - t0;
    tsr_array_release(g->res);
    g->res = res;
    return st;
}

/* Inputs, warm-up, timed runs. Returns 0, or 1 after saying why. */
static int gpu_measure(const struct bench_opts *opts, struct gpu_run *g)
{
    tsr_runtime_stats_t before = TSR_RUNTIME_STATS_INIT;
    tsr_runtime_stats_t after = TSR_RUNTIME_STATS_INIT;
    double warm_s = 0.0;
    uint64_t link_before;
    tsr_status_t st = array_make_inputs(&g->r);

    st = st == TSR_OK ? gpu_run_once(g, &warm_s) : st;
    tsr_runtime_stats(g->r.tg.rt, &before);
    link_before = array_link_bytes(&g->r.tg);
    for (uint32_t i = 0; i < opts->n_runs && st == TSR_OK; i++) {
        st = gpu_run_once(g, &g->r.seconds[i]);
    }
    g->pcie_bytes_per_run = (array_link_bytes(&g->r.tg) - link_before) / opts->n_runs;
    tsr_runtime_stats(g->r.tg.rt, &after);
    g->r.policy = after.policy;
    g->r.tasks_per_run = (int64_t)((after.n_submitted - before.n_submitted) / opts->n_runs);
    if (st != TSR_OK) {
        char what[160];

        snprintf(what, sizeof(what), "array %s: persist, build or compute", g->name);
        bench_print_error(what, st);
        return 1;
    }
    return 0;
}

/* The last result into host memory, checked. Returns 0, or 1 after saying why. */
static int gpu_check(struct gpu_run *g)
{
    size_t n_bytes = (size_t)tsr_array_size(g->res) * tsr_dtype_size(tsr_array_dtype(g->res));
    tsr_status_t st;

    g->r.out = malloc(n_bytes);
    g->r.out_bytes = n_bytes;
    st = g->r.out != NULL ? tsr_array_compute(g->res, g->r.out, n_bytes) : TSR_ENOMEM;
    if (st != TSR_OK) {
        char what[160];

        snprintf(what, sizeof(what), "array %s: reading the result back", g->name);
        bench_print_error(what, st);
        return 1;
    }
    array_run_check(&g->r);
    return 0;
}

static void gpu_free(struct gpu_run *g)
{
    tsr_array_release(g->res);
    tsr_array_release(g->r.x);
    tsr_array_release(g->r.y);
    g->res = NULL;
    g->r.x = NULL;
    g->r.y = NULL;
    if (g->r.tg.rt != NULL) {
        bench_target_close(&g->r.tg);
    }
    free(g->r.out);
    g->r.out = NULL;
}

/* ---- the record ---- */

static const char *target_text(enum array_kind kind)
{
    switch (kind) {
    case KIND_SUM_F32:
        return "at least CuPy's speed (or both within 10% of the floor) and floor_fraction >= 0.8";
    case KIND_CHAIN:
        return "at least 2x CuPy's speed (fusion) and floor_fraction >= 0.8";
    case KIND_MATMUL_F64:
        return "at least CuPy's speed (or both within 10% of one cublasDgemm)";
    case KIND_MEAN_X_PLUS_XT:
    case KIND_MATH_CHAIN:
        break;
    }
    return "at least CuPy's speed (or both within 10% of the floor)";
}

/* 1 or 0 as the targets are met, NAN without the figures they need. */
static double target_met(const struct gpu_run *g, double value)
{
    double cupy = g->cupy.seconds;
    double frac = array_ratio(g->floor_s, value);
    int is_tie = frac >= TIE_FRACTION && array_ratio(g->floor_s, cupy) >= TIE_FRACTION;
    int is_met = value <= cupy || is_tie;

    int needs_floor = g->r.c->kind == KIND_CHAIN || g->r.c->kind == KIND_SUM_F32;

    if (!isfinite(value) || !isfinite(cupy) || (needs_floor && !isfinite(frac))) {
        return NAN;
    }
    if (g->r.c->kind == KIND_CHAIN) {
        is_met = cupy / value >= CHAIN_TARGET;
    }
    if (needs_floor) {
        is_met = is_met && frac >= FLOOR_TARGET;
    }
    return is_met ? 1.0 : 0.0;
}

static void floor_fields(const struct gpu_run *g, struct bench_record *rec, char *name,
                         size_t name_size)
{
    int is_cuda = g->r.tg.info.kind == TSR_DEVICE_CUDA;

    rec->floor_value = g->floor_s;
    if (g->r.c->floor == FLOOR_BLAS) {
        snprintf(name, name_size,
                 "2 n^3 flops at the rate of one cublasDgemm of the whole "
                 "matrices, same run");
        bench_record_add_str(rec, "floor", name);
        bench_record_add_num(rec, "floor_gflops", g->floor_rate);
        return;
    }
    snprintf(name, name_size, "%s over the %s bandwidth (read + write), same run",
             g->r.c->floor == FLOOR_SCALE ? "read x + write the result" : "read x once",
             is_cuda ? "device-to-device cudaMemcpy" : "one-thread memcpy");
    bench_record_add_str(rec, "floor", name);
    bench_record_add_num(rec, "floor_gbps", g->floor_rate);
}

/* The notes of the peer, the floor and the copies, "; "-separated, into `note`. */
static void gather_notes(const struct gpu_run *g, char *note, size_t size)
{
    const char *moved = g->pcie_bytes_per_run > PCIE_NOTE_BYTES
                            ? "host-device copies during the timed runs (pcie_bytes_per_run): "
                              "data left the device"
                            : "";
    const char *parts[3] = {g->cupy.note, g->floor_why, moved};
    size_t used = 0;

    note[0] = '\0';
    for (size_t i = 0; i < 3 && used < size; i++) {
        if (parts[i][0] != '\0') {
            used +=
                (size_t)snprintf(note + used, size - used, "%s%s", used > 0 ? "; " : "", parts[i]);
        }
    }
}

static void gpu_emit(const struct bench_opts *opts, const struct gpu_run *g)
{
    char floor_name[160];
    char note[3 * BENCH_PEER_NOTE_MAX];
    struct bench_record rec;
    double value;

    bench_record_init(&rec, "array", g->name, "seconds", "s", "lower");
    rec.samples = g->r.seconds;
    rec.n_samples = g->r.is_wrong ? 0 : opts->n_runs;
    value = rec.n_samples > 0 ? bench_median(g->r.seconds, rec.n_samples) : NAN;
    bench_target_describe(&g->r.tg, &rec);
    bench_record_add_str(&rec, "dtype", tsr_dtype_name(g->r.c->dtype));
    bench_record_add_str(&rec, "shape", g->r.shape);
    bench_record_add_str(&rec, "chunks", g->r.chunks);
    floor_fields(g, &rec, floor_name, sizeof(floor_name));
    bench_record_add_num(&rec, "floor_fraction", array_ratio(rec.floor_value, value));
    rec.peer = g->cupy.label;
    rec.peer_value = g->cupy.seconds;
    bench_record_add_num(&rec, "vs_cupy", array_ratio(g->cupy.seconds, value));
    bench_record_add_num(&rec, "peer_spread", g->cupy.spread);
    bench_record_add_int(&rec, "pcie_bytes_per_run", (int64_t)g->pcie_bytes_per_run);
    bench_record_add_int(&rec, "tasks", g->r.tasks_per_run);
    bench_record_add_str(&rec, "policy", tsr_sched_policy_name(g->r.policy));
    bench_record_add_str(&rec, "check", g->r.check);
    bench_record_add_num(&rec, "checksum", g->r.checksum);
    bench_record_add_num(&rec, "cupy_checksum", g->cupy.checksum);
    bench_record_add_str(&rec, "target", target_text(g->r.c->kind));
    bench_record_add_num(&rec, "target_met", target_met(g, value));
    bench_record_add_str(&rec, "timed",
                         "tasks on the accelerator alone (TSR_CONFIG_F_ACCEL_FIRST); x "
                         "persisted on the device; build + tsr_array_persist of the result, "
                         "which stays in device memory (read back and checked after the "
                         "timing). cupy: its own x on the same GPU, the expression, then "
                         "Device().synchronize()");
    gather_notes(g, note, sizeof(note));
    if (note[0] != '\0') {
        bench_record_add_str(&rec, "note", note);
    }
    bench_report_emit(opts->report, &rec);
}

/* The floor, Tessera (measure, check, free), then CuPy. Returns 0, or 1 after a
 * failure or a wrong result. */
static int gpu_case(const struct bench_opts *opts, const struct array_case *c, const char *name)
{
    int is_full_gpu = opts->device == BENCH_DEVICE_CUDA && !opts->is_quick;
    struct gpu_run *g = calloc(1, sizeof(*g));
    int err;

    if (g == NULL || (g->r.seconds = calloc(opts->n_runs, sizeof(double))) == NULL) {
        fprintf(stderr, "tessera-bench: array %s: out of memory\n", name);
        free(g);
        return 1;
    }
    snprintf(g->name, sizeof(g->name), "%s", name);
    g->r.c = c;
    g->r.n = is_full_gpu ? c->n : c->n_quick;
    g->r.chunk = is_full_gpu ? c->chunk_gpu : c->chunk_quick;
    array_describe_sizes(&g->r);
    err = array_gpu_open(opts, opts->device == BENCH_DEVICE_SIM ? SIM_MEM_BYTES : 0, &g->r.tg);
    if (err == 0) {
        gpu_floor(opts, g);
        err = gpu_measure(opts, g);
        err = err == 0 ? gpu_check(g) : err;
        err = err != 0 || bench_check_tasks(g->r.tg.rt, name) != 0;
    }
    gpu_free(g); /* before CuPy, which makes its own x */
    if (err == 0) {
        array_cupy_peer(opts, &g->r, c->name, "", &g->cupy);
        gpu_emit(opts, g);
    }
    err = err != 0 || g->r.is_wrong;
    free(g->r.seconds);
    free(g);
    return err;
}

int bench_array_gpu_run(const struct bench_opts *opts)
{
    const char *suffix = opts->device == BENCH_DEVICE_SIM ? "_sim" : "_gpu";
    const char *only = opts->case_filter;
    const char *spill = array_spill_case_name(opts);
    int n_run = 0;
    int err = 0;

    for (size_t i = 0; i < array_n_cases; i++) {
        char name[64];

        snprintf(name, sizeof(name), "%s%s", array_cases[i].name, suffix);
        if (only == NULL || strcmp(only, name) == 0) {
            err |= gpu_case(opts, &array_cases[i], name);
            n_run++;
        }
    }
    if (only == NULL || strcmp(only, spill) == 0) {
        err |= array_spill_run(opts);
        n_run++;
    }
    if (n_run == 0) {
        fprintf(stderr, "tessera-bench: array --device %s has no case '%s' (its cases end in %s)\n",
                bench_device_name(opts->device), only, suffix);
        return 1;
    }
    return err;
}
