/* tessera-bench gemm: a tiled float32 matrix product C = A·B, one task per tile
 * product, on an accelerator.
 *
 * The n x n matrices are cut into square tiles, each its own data handle (row-major
 * inside the tile). Task (i, j, k) computes C[i][j] = A[i][k]·B[k][j] + beta·C[i][j]
 * with beta 0 for k = 0 and 1 after; it reads the A and B tiles and accesses the C
 * tile RW, so the products of one C tile are chained in k order. Tasks are
 * submitted k-major and pinned to the first device of the kind.
 *
 * Cases: `tiled_f32` on CUDA (n 16384, tiles 4096; quick 2048/512), one cublasSgemm
 * per task (bench_cuda_sgemm_impl); `tiled_f32_sim` on a simulated device (n 1024,
 * tiles 256; quick 256/64) with the CPU tile kernel below. Metric: TFLOP/s =
 * 2 n^3 / time.
 *
 * Timed: from the first submit of the whole graph to the return of tsr_wait_all,
 * with A and B already on the device: one untimed warm-up run of the graph moves
 * them there, where their replicas stay valid (C is written there and stays too).
 * Generating the data, registering it and starting the runtime are outside.
 *
 * Peers, in the same invocation: on CUDA "cublas-single-call" (peers/cublas_gemm.cu:
 * one cublasSgemm on the whole matrices, already on the GPU); on sim "single-call"
 * (the same tile kernel run once on the whole matrices on the calling thread, as the
 * one simulated device runs its tasks on one thread).
 *
 * Check: after the timed runs, sampled entries of C (eight per tile: two corners,
 * six spread out) against a float64 reference; a wrong entry is an error (exit
 * status 1, no record). The entries of A and B are multiples of 1/1024 in [0, 1),
 * exact in float32 and TF32, and all products are non-negative, so a missing or
 * doubled k block (a quarter of each sum at the sizes used) or a transposed operand
 * is far outside the tolerance (1e-3 relative). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_cuda.h"

#define SEED_A 0x1234u
#define SEED_B 0xabcdu
#define N_SAMPLES_PER_TILE 8
#define REL_TOLERANCE 1e-3

struct gemm_case {
    const char *name;
    size_t n;
    size_t tile;
    size_t n_quick;
    size_t tile_quick;
};

static const struct gemm_case sim_case = {"tiled_f32_sim", 1024, 256, 256, 64};
static const struct gemm_case cuda_case = {"tiled_f32", 16384, 4096, 2048, 512};

/* The matrices, tile-major (tile (i, j) of A at h_a + (i * nt + j) * t * t), and
 * their handles, same order. */
struct gemm_state {
    struct bench_target tg;
    size_t n;
    size_t t;
    size_t nt;
    float *h_a;
    float *h_b;
    float *h_c;
    tsr_data_t **handles; /* nt*nt of A, then of B, then of C */
    size_t n_handles;
};

/* C = A·B + beta·C on t x t row-major tiles, i-k-j order so the inner loop runs
 * along rows of B and C (unit stride; it vectorises). */
static void tile_sgemm(size_t t, float beta, const float *restrict a, const float *restrict b,
                       float *restrict c)
{
    for (size_t i = 0; i < t; i++) {
        float *restrict ci = &c[i * t];

        for (size_t j = 0; j < t; j++) {
            ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
        }
        for (size_t k = 0; k < t; k++) {
            const float *restrict bk = &b[k * t];
            float aik = a[i * t + k];

            for (size_t j = 0; j < t; j++) {
                ci[j] += aik * bk[j];
            }
        }
    }
}

static tsr_status_t gemm_tile_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const struct bench_gemm_arg *g = arg;

    (void)ctx;
    tile_sgemm(g->tile, g->beta, bufs[0].ptr, bufs[1].ptr, bufs[2].ptr);
    return TSR_OK;
}

static const tsr_codelet_t gemm_cl = {
    .name = "sgemm_tile",
    .impl = {[TSR_DEVICE_CPU] = gemm_tile_cpu, [TSR_DEVICE_CUDA] = bench_cuda_sgemm_impl},
    .n_buffers = 3,
    .modes = {TSR_R, TSR_R, TSR_RW},
};

/* Entry (r, c) of matrix `seed`: a multiple of 1/1024 in [0, 1). */
static float entry(uint32_t seed, size_t r, size_t c)
{
    uint64_t x = ((uint64_t)seed << 40) ^ ((uint64_t)r << 20) ^ (uint64_t)c;

    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return (float)(x & 1023u) / 1024.0f;
}

/* Index of entry (r, c) of an n x n matrix stored as t x t tiles (t == n: row-major). */
static size_t tiled_index(size_t n, size_t t, size_t r, size_t c)
{
    return ((r / t) * (n / t) + c / t) * t * t + (r % t) * t + c % t;
}

static void fill_matrix(uint32_t seed, size_t n, size_t t, float *out)
{
    size_t nt = n / t;

    for (size_t bi = 0; bi < nt; bi++) {
        for (size_t bj = 0; bj < nt; bj++) {
            float *tile = &out[(bi * nt + bj) * t * t];

            for (size_t i = 0; i < t; i++) {
                for (size_t j = 0; j < t; j++) {
                    tile[i * t + j] = entry(seed, bi * t + i, bj * t + j);
                }
            }
        }
    }
}

/* 0 if entry (r, col) of c (layout n, t) matches the float64 reference. */
static int check_entry(const char *name, const float *c, size_t n, size_t t, size_t r, size_t col)
{
    double ref = 0.0;
    double got = c[tiled_index(n, t, r, col)];

    for (size_t k = 0; k < n; k++) {
        ref += (double)entry(SEED_A, r, k) * (double)entry(SEED_B, k, col);
    }
    if (fabs(got - ref) <= REL_TOLERANCE * ref + 1e-6) {
        return 0;
    }
    fprintf(stderr, "tessera-bench: gemm %s: WRONG RESULT: C[%zu][%zu] = %.9g, expected %.9g\n",
            name, r, col, got, ref);
    return 1;
}

/* Sampled entries of c (layout n, t): N_SAMPLES_PER_TILE per tile of size t_check. */
static int check_matrix(const char *name, const float *c, size_t n, size_t t, size_t t_check)
{
    size_t nt = n / t_check;
    int err = 0;

    for (size_t b = 0; b < nt * nt && err == 0; b++) {
        size_t r0 = (b / nt) * t_check;
        size_t c0 = (b % nt) * t_check;

        for (uint32_t s = 0; s < N_SAMPLES_PER_TILE && err == 0; s++) {
            size_t dr = s == 0 ? 0 : s == 1 ? t_check - 1 : (size_t)(entry(s, b, 1) * t_check);
            size_t dc = s == 0 ? 0 : s == 1 ? t_check - 1 : (size_t)(entry(s, b, 2) * t_check);

            err = check_entry(name, c, n, t, r0 + dr, c0 + dc);
        }
    }
    return err;
}

static void state_close(struct gemm_state *st)
{
    for (size_t i = 0; st->handles != NULL && i < st->n_handles; i++) {
        tsr_data_unregister(st->handles[i]);
    }
    bench_target_close(&st->tg);
    free(st->handles);
    free(st->h_a);
    free(st->h_b);
    free(st->h_c);
    memset(st, 0, sizeof(*st));
}

static int state_register(struct gemm_state *st)
{
    size_t n_tiles = st->nt * st->nt;
    size_t tile_bytes = st->t * st->t * sizeof(float);
    float *const mats[3] = {st->h_a, st->h_b, st->h_c};

    for (; st->n_handles < 3 * n_tiles; st->n_handles++) {
        size_t m = st->n_handles / n_tiles;
        float *p = mats[m] + (st->n_handles % n_tiles) * st->t * st->t;
        tsr_status_t rc = tsr_data_register(st->tg.rt, p, tile_bytes, &st->handles[st->n_handles]);

        if (rc != TSR_OK) {
            bench_print_error("tsr_data_register", rc);
            return 1;
        }
    }
    return 0;
}

static int state_open(const struct bench_opts *opts, size_t n, size_t t, struct gemm_state *st)
{
    size_t n_floats = n * n;

    memset(st, 0, sizeof(*st));
    st->n = n;
    st->t = t;
    st->nt = n / t;
    st->h_a = malloc(n_floats * sizeof(float));
    st->h_b = malloc(n_floats * sizeof(float));
    st->h_c = calloc(n_floats, sizeof(float));
    st->handles = calloc(3 * st->nt * st->nt, sizeof(tsr_data_t *));
    if (st->h_a == NULL || st->h_b == NULL || st->h_c == NULL || st->handles == NULL) {
        fprintf(stderr, "tessera-bench: gemm: out of memory (n %zu)\n", n);
        state_close(st);
        return 1;
    }
    fill_matrix(SEED_A, n, t, st->h_a);
    fill_matrix(SEED_B, n, t, st->h_b);
    if (bench_target_open(opts, 0, &st->tg) != 0 || state_register(st) != 0) {
        state_close(st);
        return 1;
    }
    return 0;
}

/* Submit the nt^3 tile products, k-major. With futures (nt^3 of them), each
 * task's future is stored there (new, owned by the caller). */
static tsr_status_t submit_graph(const struct gemm_state *st, tsr_future_t **futures)
{
    size_t nt = st->nt;
    tsr_data_t *const *a = st->handles;
    tsr_data_t *const *b = a + nt * nt;
    tsr_data_t *const *c = b + nt * nt;
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    tsr_status_t rc = TSR_OK;

    desc.codelet = &gemm_cl;
    desc.n_handles = 3;
    desc.pin = TSR_PIN_DEVICE;
    desc.pin_value = st->tg.dev;
    for (size_t q = 0; q < nt * nt * nt && rc == TSR_OK; q++) {
        size_t k = q / (nt * nt);
        size_t i = (q / nt) % nt;
        size_t j = q % nt;
        tsr_data_t *hs[3] = {a[i * nt + k], b[k * nt + j], c[i * nt + j]};
        struct bench_gemm_arg arg = {(uint32_t)st->t, k == 0 ? 0.0f : 1.0f};

        desc.handles = hs;
        desc.arg = &arg;
        desc.arg_size = sizeof(arg);
        rc = tsr_task_submit(st->tg.rt, &desc, futures != NULL ? &futures[q] : NULL);
    }
    return rc;
}

/* One run of the graph; `*seconds_out` from the first submit to wait_all's return. */
static int run_once(const struct gemm_state *st, tsr_future_t **futures, double *seconds_out)
{
    double t0 = bench_now_s();
    tsr_status_t rc = submit_graph(st, futures);
    tsr_status_t rc_wait = tsr_wait_all(st->tg.rt);

    *seconds_out = bench_now_s() - t0;
    if (rc != TSR_OK || rc_wait != TSR_OK) {
        bench_print_error(rc != TSR_OK ? "tsr_task_submit" : "tsr_wait_all",
                          rc != TSR_OK ? rc : rc_wait);
        return 1;
    }
    return 0;
}

/* The untimed run that moves A and B to the device; a failing task is reported
 * with its message. */
static int warm_up(const struct gemm_state *st, const char *name)
{
    size_t n_tasks = st->nt * st->nt * st->nt;
    tsr_future_t **futures = calloc(n_tasks, sizeof(*futures));
    double seconds;
    int err = futures == NULL || run_once(st, futures, &seconds) != 0;

    for (size_t q = 0; q < n_tasks && futures != NULL; q++) {
        tsr_status_t rc = futures[q] != NULL ? tsr_future_wait(futures[q]) : TSR_OK;

        if (err == 0 && rc != TSR_OK) {
            fprintf(stderr, "tessera-bench: gemm %s: task %zu failed: %s: %s\n", name, q,
                    tsr_status_str(rc), tsr_future_message(futures[q]));
            err = 1;
        }
        tsr_future_release(futures[q]);
    }
    free(futures);
    return err;
}

/* Check C as the tasks left it (acquired back to the host, every tile at once). */
static int check_result(struct gemm_state *st, const char *name)
{
    tsr_data_t **c = st->handles + 2 * st->nt * st->nt;
    size_t n_tiles = st->nt * st->nt;
    size_t n_acquired = 0;
    int err = 0;

    for (; n_acquired < n_tiles && err == 0; n_acquired++) {
        tsr_status_t rc = tsr_data_acquire(c[n_acquired], TSR_R, NULL, NULL);

        if (rc != TSR_OK) {
            bench_print_error("tsr_data_acquire", rc);
            err = 1;
            break;
        }
    }
    if (err == 0) {
        err = check_matrix(name, st->h_c, st->n, st->t, st->t);
    }
    for (size_t i = 0; i < n_acquired; i++) {
        tsr_data_release(c[i]);
    }
    return err;
}

/* The sim peer: the tile kernel once on the whole matrices; 0 when it ran and its
 * result checked out. */
static int single_call_peer(const struct bench_opts *opts, size_t n, double *seconds_out,
                            char *note, size_t n_note)
{
    float *a = malloc(n * n * sizeof(float));
    float *b = malloc(n * n * sizeof(float));
    float *c = malloc(n * n * sizeof(float));
    int err = a == NULL || b == NULL || c == NULL;

    if (err) {
        snprintf(note, n_note, "single-call: out of memory");
    } else {
        fill_matrix(SEED_A, n, n, a);
        fill_matrix(SEED_B, n, n, b);
        tile_sgemm(n, 0.0f, a, b, c);
        for (uint32_t r = 0; r < opts->n_runs; r++) {
            double t0 = bench_now_s();

            tile_sgemm(n, 0.0f, a, b, c);
            seconds_out[r] = bench_now_s() - t0;
        }
        err = check_matrix("single-call peer", c, n, n, n / 4);
        snprintf(note, n_note, "%s", err ? "single-call: wrong result" : "");
    }
    free(a);
    free(b);
    free(c);
    return err;
}

static int cublas_peer(const struct bench_opts *opts, const struct gemm_state *st,
                       double *seconds_out, char *note, size_t n_note)
{
    size_t n = st->n;
    float *a = malloc(n * n * sizeof(float));
    float *b = malloc(n * n * sizeof(float));
    int err = a == NULL || b == NULL;

    if (err) {
        snprintf(note, n_note, "cublas-single-call: out of host memory");
    } else {
        fill_matrix(SEED_A, n, n, a);
        fill_matrix(SEED_B, n, n, b);
        err = bench_cublas_gemm_peer((int)st->tg.info.kind_index, n, a, b, opts->n_runs,
                                     seconds_out, note, n_note) != 0;
    }
    free(a);
    free(b);
    return err;
}

/* Peer figures in TFLOP/s into tflops (n_runs); 0 when there are some, else 1 with
 * `note` saying why. */
static int run_peer(const struct bench_opts *opts, const struct gemm_state *st, double *tflops,
                    char *note, size_t n_note)
{
    double flops = 2.0 * (double)st->n * (double)st->n * (double)st->n;
    int err;

    if (!opts->use_peers) {
        snprintf(note, n_note, "peer not run (--no-peer)");
        return 1;
    }
    if (opts->device == BENCH_DEVICE_SIM) {
        err = single_call_peer(opts, st->n, tflops, note, n_note);
    } else {
        err = cublas_peer(opts, st, tflops, note, n_note);
    }
    for (uint32_t r = 0; r < opts->n_runs && err == 0; r++) {
        tflops[r] = flops / tflops[r] / 1e12;
    }
    return err;
}

static void emit_case(const struct bench_opts *opts, const struct gemm_case *gc,
                      const struct gemm_state *st, const double *tflops, const double *peer,
                      const char *note)
{
    int is_cuda = opts->device == BENCH_DEVICE_CUDA;
    struct bench_record rec;

    bench_record_init(&rec, "gemm", gc->name, "TFLOPs", "TFLOP/s", "higher");
    rec.samples = tflops;
    rec.n_samples = opts->n_runs;
    rec.peer = is_cuda ? "cublas-single-call" : "single-call";
    if (peer != NULL) {
        rec.peer_value = bench_median(peer, opts->n_runs);
        bench_record_add_num(&rec, "peer_spread", bench_spread(peer, opts->n_runs));
    } else {
        bench_record_add_str(&rec, "note", note);
    }
    bench_target_describe(&st->tg, &rec);
    bench_record_add_int(&rec, "matrix_n", (int64_t)st->n);
    bench_record_add_int(&rec, "tile", (int64_t)st->t);
    bench_record_add_int(&rec, "tasks", (int64_t)(st->nt * st->nt * st->nt));
    bench_record_add_str(&rec, "dtype", "float32");
    bench_record_add_str(&rec, "kernel", is_cuda ? "cublasSgemm per tile" : "C i-k-j tile loop");
    bench_record_add_str(&rec, "timed", "graph submit to wait_all return, A and B on the device");
    bench_record_add_str(
        &rec, "peer_timed",
        is_cuda ? "cublasSgemm on the whole matrices + sync" : "tile kernel on the whole matrices");
    bench_report_emit(opts->report, &rec);
}

static int run_case(const struct bench_opts *opts, const struct gemm_case *gc)
{
    size_t n = opts->is_quick ? gc->n_quick : gc->n;
    size_t t = opts->is_quick ? gc->tile_quick : gc->tile;
    double *tflops = calloc(2 * (size_t)opts->n_runs, sizeof(*tflops));
    double *peer = tflops != NULL ? tflops + opts->n_runs : NULL;
    char note[256] = "";
    struct gemm_state st;
    double seconds = 0.0;
    int has_peer;
    int err;

    if (tflops == NULL || state_open(opts, n, t, &st) != 0) {
        free(tflops);
        return 1;
    }
    has_peer = run_peer(opts, &st, peer, note, sizeof(note)) == 0;
    err = warm_up(&st, gc->name);
    for (uint32_t r = 0; r < opts->n_runs && err == 0; r++) {
        err = run_once(&st, NULL, &seconds);
        tflops[r] = 2.0 * (double)n * (double)n * (double)n / seconds / 1e12;
    }
    err = err != 0 ? err : bench_check_tasks(st.tg.rt, gc->name);
    err = err != 0 ? err : check_result(&st, gc->name);
    if (err == 0) {
        emit_case(opts, gc, &st, tflops, has_peer ? peer : NULL, note);
    }
    state_close(&st);
    free(tflops);
    return err;
}

int bench_gemm_run(const struct bench_opts *opts)
{
    const struct gemm_case *gc = opts->device == BENCH_DEVICE_CUDA ? &cuda_case : &sim_case;

    if (opts->device == BENCH_DEVICE_CPU) {
        fprintf(stderr, "tessera-bench: gemm has no cpu case; use --device sim or --device cuda\n");
        return 0;
    }
    if (opts->case_filter != NULL && strcmp(opts->case_filter, gc->name) != 0) {
        fprintf(stderr, "tessera-bench: gemm has no case '%s' on --device %s (%s)\n",
                opts->case_filter, bench_device_name(opts->device), gc->name);
        return 1;
    }
    return run_case(opts, gc);
}
