/* tessera-bench array: chunked-array expressions (include/tessera/array.h) on the
 * CPU workers, beside dask.array and NumPy doing the same work, and the memory
 * bandwidth bound of each (metric `seconds`, lower better). This file also holds
 * what the GPU and sim cases share with these (bench_array.h): the workloads, the
 * checks and the peer script's lines; --device cuda|sim runs bench_array_gpu.c.
 *
 * Cases (full size; --quick in brackets):
 *   mean_x_plus_xt     (x + x.T).mean(axis=0), x random float64 20000 x 20000 in
 *                      2000 x 2000 chunks [2000 x 2000 in 500 x 500]
 *   sum_f32            x.sum(), x random float32 of 1e9 elements in chunks of 8e6
 *                      [1e7 in 1e6]
 *   elementwise_chain  sqrt(abs(x * 1.5 + 0.5)) * x - 2 (6 ops), x random float32 of
 *                      2e8 elements in chunks of 8e6 [2e6 in 5e5]
 *   matmul_f64         x @ y (tsr_array_matmul), x and y random float64 8000 x 8000
 *                      in 2000 x 2000 chunks [1000 x 1000 in 250 x 250]
 *   math_chain         cos(log(exp(sin(x)) + 1) * x) (6 ops, 4 of them transcendental),
 *                      x random float32 of 1e8 elements in chunks of 8e6 [2e6 in 5e5]:
 *                      not one of the workloads; it measures the math functions
 *                      (kernels/cpu/ew_vmath.h) against NumPy's SIMD ones
 * One case at a time, each in a runtime of its own: x (and y) is generated and
 * persisted (tsr_array_persist) before the timing; a timed run builds the expression and
 * computes it into a host buffer (allocated and touched before the runs) with
 * tsr_array_compute. One untimed warm-up run. The result of the last run is checked
 * in C over the inputs' values (computed into host buffers after the timing): every
 * mean against float64 column and row sums, the sum against a float64 sum, every
 * chain output against the chain in float32 (the C library's functions), 256
 * entries of the product against
 * float64 dot products. A wrong one gives value null, check
 * "FAILED ...", a message on stderr and exit status 1.
 *
 * Peers (peers/array_peers.py, installed beside tessera-bench as tessera-peer-array):
 * dask.array (threaded scheduler, as many workers as Tessera has, same chunks, x
 * persisted; .compute() into a NumPy array) as `peer`, NumPy (x in memory) as
 * `numpy_value`; same sizes, their own random x, warm-up excluded. The peer runs after
 * the case's runtime has shut down and its buffers are freed, so the two never hold
 * their data at once. A missing python3, dask or numpy gives null and a note.
 *
 * floor_value: the bytes the case must move over a STREAM-like bandwidth measured
 * just before the case with as many threads as CPU workers (best of >= 5 passes
 * over two 512 MiB buffers [64 MiB] after a warm-up): reading x once (mean: 8 n^2
 * bytes; sum: 4 n) over the read bandwidth (a sum over both buffers), or reading x
 * and writing the result (chain: 8 n) over the scale bandwidth (b = 3a, read +
 * write bytes counted, as STREAM does; math_chain's too, far below its time).
 * matmul_f64's is the BLAS bound: the same
 * product through NumPy's matmul (one BLAS call, as many threads) in the same run,
 * i.e. 2 n^3 flops at that rate (null without NumPy). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_array.h"

#define FLOOR_BUF_BYTES ((size_t)512 << 20) /* each of the two STREAM buffers */
#define FLOOR_BUF_BYTES_QUICK ((size_t)64 << 20)
#define FLOOR_MIN_RUNS 5u
#define MAX_FLOOR_THREADS 256
#define MEAN_TOL 1e-9 /* float64 means of values near 1, summed in other orders */
#define MATMUL_SAMPLES 256
#define MATMUL_TOL 1e-12 /* relative, float64 dot products of n terms in other orders */

const struct array_case array_cases[] = {
    {"mean_x_plus_xt", "(x + x.T).mean(axis=0)", 20000, 2000, 2000, 500, KIND_MEAN_X_PLUS_XT, 2,
     TSR_FLOAT64, FLOOR_READ, 5000},
    {"sum_f32", "x.sum()", 1000000000, 8000000, 10000000, 1000000, KIND_SUM_F32, 1, TSR_FLOAT32,
     FLOOR_READ, 125000000},
    {"matmul_f64", "x @ y", 8000, 2000, 1000, 250, KIND_MATMUL_F64, 2, TSR_FLOAT64, FLOOR_BLAS,
     4000},
    {"elementwise_chain", "sqrt(abs(x * 1.5 + 0.5)) * x - 2 (6 ops: mul, add, abs, sqrt, mul, sub)",
     200000000, 8000000, 2000000, 500000, KIND_CHAIN, 1, TSR_FLOAT32, FLOOR_SCALE, 50000000},
    {"math_chain", "cos(log(exp(sin(x)) + 1) * x) (6 ops: sin, exp, add, log, mul, cos)", 100000000,
     8000000, 2000000, 500000, KIND_MATH_CHAIN, 1, TSR_FLOAT32, FLOOR_SCALE, 50000000},
};
const size_t array_n_cases = sizeof(array_cases) / sizeof(array_cases[0]);

/* The chains of elementwise_chain and math_chain, step by step (the same as the
 * peers'). */
enum chain_step_kind { STEP_SCALAR, STEP_UNARY, STEP_TIMES_X };

struct chain_step {
    enum chain_step_kind kind;
    int op; /* tsr_binop_t or tsr_unop_t */
    double value;
};

#define N_CHAIN_STEPS 6
static const struct chain_step arith_chain[N_CHAIN_STEPS] = {
    {STEP_SCALAR, TSR_OP_MUL, 1.5}, {STEP_SCALAR, TSR_OP_ADD, 0.5}, {STEP_UNARY, TSR_OP_ABS, 0},
    {STEP_UNARY, TSR_OP_SQRT, 0},   {STEP_TIMES_X, TSR_OP_MUL, 0},  {STEP_SCALAR, TSR_OP_SUB, 2},
};
static const struct chain_step math_chain[N_CHAIN_STEPS] = {
    {STEP_UNARY, TSR_OP_SIN, 0}, {STEP_UNARY, TSR_OP_EXP, 0},   {STEP_SCALAR, TSR_OP_ADD, 1},
    {STEP_UNARY, TSR_OP_LOG, 0}, {STEP_TIMES_X, TSR_OP_MUL, 0}, {STEP_UNARY, TSR_OP_COS, 0},
};

static const struct chain_step *chain_of(enum array_kind kind)
{
    return kind == KIND_MATH_CHAIN ? math_chain : arith_chain;
}

/* The floor's bandwidth for one case, measured just before it. */
struct array_floor {
    double gbps; /* NAN: not measured */
    uint32_t n_threads;
};

/* ---- the floor: STREAM-like kernels on as many threads as CPU workers ---- */

struct floor_job {
    enum floor_kernel kernel;
    const double *a;
    double *b; /* written by SCALE */
    size_t n;  /* doubles of a (and b) this thread owns */
    double sum;
};

#if defined(__GNUC__)
/* Four 4-wide accumulators: a scalar loop is a little slower than memory here
 * (12.4 against 13.5 GB/s on one core of this machine), and the floor must not be. */
typedef double read_vec_t __attribute__((vector_size(32)));

static double read_sum(const double *p, size_t n)
{
    read_vec_t s[4] = {{0}};
    double tail = 0.0;
    size_t i = 0;

    for (; i + 16 <= n; i += 16) {
        for (int k = 0; k < 4; k++) {
            read_vec_t v;

            memcpy(&v, p + i + 4 * (size_t)k, sizeof(v));
            s[k] += v;
        }
    }
    for (; i < n; i++) {
        tail += p[i];
    }
    s[0] += s[1] + s[2] + s[3];
    return tail + (s[0][0] + s[0][1]) + (s[0][2] + s[0][3]);
}
#else
static double read_sum(const double *p, size_t n)
{
    double s[8] = {0};
    size_t i = 0;

    /* Eight independent chains keep the adds ahead of memory. */
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; k++) {
            s[k] += p[i + (size_t)k];
        }
    }
    for (; i < n; i++) {
        s[0] += p[i];
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}
#endif

static void *floor_worker(void *arg)
{
    struct floor_job *j = arg;

    if (j->kernel == FLOOR_READ) {
        j->sum = read_sum(j->a, j->n) + read_sum(j->b, j->n);
    } else {
        for (size_t i = 0; i < j->n; i++) {
            j->b[i] = 3.0 * j->a[i];
        }
    }
    return NULL;
}

/* Seconds for one pass of `kernel` over the two buffers, split among the threads
 * (a thread that cannot start has its share done by this one). */
static double floor_pass(enum floor_kernel kernel, const double *a, double *b, size_t n,
                         uint32_t n_threads)
{
    pthread_t tids[MAX_FLOOR_THREADS];
    struct floor_job jobs[MAX_FLOOR_THREADS];
    int is_started[MAX_FLOOR_THREADS];
    size_t per = n / n_threads;
    double t0 = bench_now_s();

    for (uint32_t t = 0; t < n_threads; t++) {
        size_t first = t * per;

        jobs[t] = (struct floor_job){kernel, a + first, b + first,
                                     t + 1 == n_threads ? n - first : per, 0.0};
        is_started[t] = pthread_create(&tids[t], NULL, floor_worker, &jobs[t]) == 0;
        if (!is_started[t]) {
            floor_worker(&jobs[t]);
        }
    }
    for (uint32_t t = 0; t < n_threads; t++) {
        if (is_started[t]) {
            pthread_join(tids[t], NULL);
        }
    }
    return bench_now_s() - t0;
}

/* GB/s of `kernel` on n_threads threads over two buffers: the best of
 * max(--runs, FLOOR_MIN_RUNS) passes after a warm-up (the floor is a bound: noise
 * from the machine's other users only lowers it). Both kernels move 2 x the buffer
 * size per pass: two reads, or a read and a write, as STREAM counts them. */
static void floor_measure(const struct bench_opts *opts, enum floor_kernel kernel,
                          uint32_t n_threads, struct array_floor *f)
{
    size_t n_bytes = opts->is_quick ? FLOOR_BUF_BYTES_QUICK : FLOOR_BUF_BYTES;
    size_t n = n_bytes / sizeof(double);
    uint32_t n_runs = opts->n_runs > FLOOR_MIN_RUNS ? opts->n_runs : FLOOR_MIN_RUNS;
    double *a = malloc(n_bytes);
    double *b = malloc(n_bytes);
    double best = INFINITY;

    f->gbps = NAN;
    f->n_threads = n_threads < MAX_FLOOR_THREADS ? n_threads : MAX_FLOOR_THREADS;
    if (a == NULL || b == NULL) {
        fprintf(stderr, "tessera-bench: array: no memory for the floor's buffers\n");
        free(a);
        free(b);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        a[i] = (double)(i & 1023);
        b[i] = 0.0;
    }
    for (uint32_t r = 0; r <= n_runs; r++) { /* run 0: warm-up */
        double sec = floor_pass(kernel, a, b, n, f->n_threads);

        best = r > 0 && sec < best ? sec : best;
    }
    f->gbps = 2.0 * (double)n_bytes / best / 1e9;
    free(a);
    free(b);
}

/* ---- Tessera's side ---- */

static void spec_of(const struct array_run *r, tsr_array_spec_t *spec)
{
    *spec = (tsr_array_spec_t)TSR_ARRAY_SPEC_INIT;
    spec->dtype = r->c->dtype;
    spec->ndim = r->c->ndim;
    for (uint32_t d = 0; d < spec->ndim; d++) {
        spec->shape[d] = r->n;
        spec->chunks[d] = r->chunk;
    }
}

size_t array_x_bytes(const struct array_run *r)
{
    size_t n_elems = (size_t)r->n * (r->c->ndim == 2 ? (size_t)r->n : 1);

    return n_elems * tsr_dtype_size(r->c->dtype);
}

tsr_status_t array_make_inputs(struct array_run *r)
{
    tsr_array_spec_t spec;
    tsr_status_t st;

    spec_of(r, &spec);
    st = tsr_array_random_uniform(r->tg.rt, &spec, ARRAY_SEED, 0.0, 1.0, &r->x);
    st = st == TSR_OK ? tsr_array_persist(r->x) : st;
    if (st == TSR_OK && r->c->kind == KIND_MATMUL_F64) {
        st = tsr_array_random_uniform(r->tg.rt, &spec, ARRAY_SEED + 1, 0.0, 1.0, &r->y);
        st = st == TSR_OK ? tsr_array_persist(r->y) : st;
    }
    return st;
}

static tsr_status_t chain_apply(const struct chain_step *s, tsr_array_t *cur, tsr_array_t *x,
                                tsr_array_t **out)
{
    switch (s->kind) {
    case STEP_SCALAR:
        return tsr_array_binary_scalar((tsr_binop_t)s->op, cur, s->value, 0, out);
    case STEP_UNARY:
        return tsr_array_unary((tsr_unop_t)s->op, cur, out);
    case STEP_TIMES_X:
        return tsr_array_binary((tsr_binop_t)s->op, cur, x, out);
    }
    return TSR_EINVAL;
}

static tsr_status_t build_chain(const struct chain_step *chain, tsr_array_t *x, tsr_array_t **y_out)
{
    tsr_array_t *cur = tsr_array_retain(x);
    tsr_status_t st = TSR_OK;

    for (size_t i = 0; i < N_CHAIN_STEPS && st == TSR_OK; i++) {
        tsr_array_t *next = NULL;

        st = chain_apply(&chain[i], cur, x, &next);
        tsr_array_release(cur);
        cur = next;
    }
    *y_out = cur;
    return st;
}

tsr_status_t array_build_expr(const struct array_run *r, tsr_array_t **y_out)
{
    tsr_reduce_opts_t axis0 = TSR_REDUCE_OPTS_INIT;
    tsr_array_t *xt = NULL;
    tsr_array_t *sum = NULL;
    tsr_status_t st = TSR_EINVAL;

    *y_out = NULL;
    switch (r->c->kind) {
    case KIND_MEAN_X_PLUS_XT:
        axis0.n_axes = 1;
        axis0.axes[0] = 0;
        st = tsr_array_transpose(r->x, NULL, &xt);
        st = st == TSR_OK ? tsr_array_binary(TSR_OP_ADD, r->x, xt, &sum) : st;
        st = st == TSR_OK ? tsr_array_reduce(TSR_REDUCE_MEAN, sum, &axis0, y_out) : st;
        tsr_array_release(xt);
        tsr_array_release(sum);
        break;
    case KIND_SUM_F32:
        st = tsr_array_reduce(TSR_REDUCE_SUM, r->x, NULL, y_out);
        break;
    case KIND_CHAIN:
    case KIND_MATH_CHAIN:
        st = build_chain(chain_of(r->c->kind), r->x, y_out);
        break;
    case KIND_MATMUL_F64:
        st = tsr_array_matmul(r->x, r->y, y_out);
        break;
    }
    return st;
}

/* One run: build the expression and compute it into r->out (allocated and touched
 * on the first, untimed, run). `*seconds_out` covers both. */
static tsr_status_t run_once(struct array_run *r, double *seconds_out)
{
    double t0 = bench_now_s();
    tsr_array_t *res = NULL;
    tsr_status_t st = array_build_expr(r, &res);
    size_t n_bytes = 0;

    if (st == TSR_OK) {
        n_bytes = (size_t)tsr_array_size(res) * tsr_dtype_size(tsr_array_dtype(res));
    }
    if (st == TSR_OK && r->out == NULL) {
        r->out = malloc(n_bytes);
        r->out_bytes = n_bytes;
        st = r->out != NULL ? TSR_OK : TSR_ENOMEM;
        if (st == TSR_OK) {
            memset(r->out, 0, n_bytes);
        }
    }
    st = st == TSR_OK ? tsr_array_compute(res, r->out, n_bytes) : st;
    *seconds_out = bench_now_s() - t0;
    tsr_array_release(res);
    return st;
}

/* Persist the inputs, a warm-up run and the timed runs. Returns 0, or 1 after saying why. */
static int run_measure(const struct bench_opts *opts, struct array_run *r)
{
    tsr_runtime_stats_t before = TSR_RUNTIME_STATS_INIT;
    tsr_runtime_stats_t after = TSR_RUNTIME_STATS_INIT;
    double warm_s = 0.0;
    tsr_status_t st = array_make_inputs(r);

    st = st == TSR_OK ? run_once(r, &warm_s) : st;
    tsr_runtime_stats(r->tg.rt, &before);
    for (uint32_t i = 0; i < opts->n_runs && st == TSR_OK; i++) {
        st = run_once(r, &r->seconds[i]);
    }
    tsr_runtime_stats(r->tg.rt, &after);
    r->policy = after.policy;
    r->tasks_per_run = (int64_t)((after.n_submitted - before.n_submitted) / opts->n_runs);
    if (st != TSR_OK) {
        char what[96];

        snprintf(what, sizeof(what), "array %s: persist, build or compute", r->c->name);
        bench_print_error(what, st);
        return 1;
    }
    return bench_check_tasks(r->tg.rt, r->c->name);
}

/* ---- the check: the last result against C over x's values ---- */

/* The values of input `a` (x or y) in a new host buffer (NULL after saying why). */
static void *fetch_input(const struct array_run *r, tsr_array_t *a)
{
    size_t n_bytes = array_x_bytes(r);
    void *h = malloc(n_bytes);
    tsr_status_t st = h != NULL ? tsr_array_compute(a, h, n_bytes) : TSR_ENOMEM;

    if (st != TSR_OK) {
        fprintf(stderr, "tessera-bench: array %s: an input for the check: %s: %s\n", r->c->name,
                tsr_status_str(st), tsr_last_error());
        free(h);
        return NULL;
    }
    return h;
}

/* Largest |out[j] - (colsum_j + rowsum_j) / n|, sums in float64; NAN without memory. */
static double mean_max_error(const struct array_run *r, const double *x)
{
    size_t n = (size_t)r->n;
    double *col = calloc(n, sizeof(double));
    double *row = calloc(n, sizeof(double));
    const double *out = r->out;
    double max_err = col != NULL && row != NULL ? 0.0 : NAN;

    for (size_t i = 0; i < n && col != NULL && row != NULL; i++) {
        double s = 0.0;

        for (size_t j = 0; j < n; j++) {
            col[j] += x[i * n + j];
            s += x[i * n + j];
        }
        row[i] = s;
    }
    for (size_t j = 0; j < n && col != NULL && row != NULL; j++) {
        max_err = fmax(max_err, fabs(out[j] - (col[j] + row[j]) / (double)n));
    }
    free(col);
    free(row);
    return max_err;
}

static double mean_of_out(const struct array_run *r)
{
    size_t es = r->c->dtype == TSR_FLOAT32 ? sizeof(float) : sizeof(double);
    size_t n = r->out_bytes / es;
    double s = 0.0;

    for (size_t i = 0; i < n; i++) {
        s += es == sizeof(float) ? (double)((const float *)r->out)[i] : ((const double *)r->out)[i];
    }
    return n > 0 ? s / (double)n : NAN;
}

static double sum_f32_in_f64(const float *x, size_t n)
{
    double s[4] = {0};
    size_t i = 0;

    for (; i + 4 <= n; i += 4) {
        for (int k = 0; k < 4; k++) {
            s[k] += (double)x[i + (size_t)k];
        }
    }
    for (; i < n; i++) {
        s[0] += (double)x[i];
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* One step of a chain on one float32 value, with the C library's functions. */
static float chain_step_ref(const struct chain_step *s, float v, float x)
{
    const float c = (float)s->value;

    if (s->kind == STEP_TIMES_X) {
        return v * x;
    }
    if (s->kind == STEP_SCALAR) {
        return s->op == TSR_OP_ADD ? v + c : s->op == TSR_OP_SUB ? v - c : v * c;
    }
    switch (s->op) {
    case TSR_OP_ABS:
        return fabsf(v);
    case TSR_OP_SQRT:
        return sqrtf(v);
    case TSR_OP_EXP:
        return expf(v);
    case TSR_OP_LOG:
        return logf(v);
    case TSR_OP_SIN:
        return sinf(v);
    default:
        return cosf(v);
    }
}

/* Largest error of the chain relative to max(1, |reference|), the reference in
 * float32 step by step as NumPy does; *n_bad_out counts those above ARRAY_REL_TOL. */
static double chain_max_error(const struct array_run *r, const float *x, int64_t *n_bad_out)
{
    const struct chain_step *chain = chain_of(r->c->kind);
    const float *out = r->out;
    double max_err = 0.0;

    *n_bad_out = 0;
    for (int64_t i = 0; i < r->n; i++) {
        float ref = x[i];

        for (size_t k = 0; k < N_CHAIN_STEPS; k++) {
            ref = chain_step_ref(&chain[k], ref, x[i]);
        }
        double err = fabs((double)out[i] - (double)ref) / fmax(1.0, fabs((double)ref));

        *n_bad_out += err > ARRAY_REL_TOL;
        max_err = fmax(max_err, err);
    }
    return max_err;
}

static const char *verdict(const struct array_run *r)
{
    return r->is_wrong ? "FAILED" : "passed";
}

static void check_mean(struct array_run *r, const double *x)
{
    double err = mean_max_error(r, x);

    if (isnan(err)) {
        snprintf(r->check, sizeof(r->check), "not done: out of memory");
        return;
    }
    r->is_wrong = !(err <= MEAN_TOL);
    snprintf(r->check, sizeof(r->check),
             "%s: max abs error %.3g (tol %.0e) over all %lld outputs vs (column + row sums of "
             "x) / n in float64 in C",
             verdict(r), err, MEAN_TOL, (long long)r->n);
}

static void check_sum(struct array_run *r, const float *x)
{
    double ref = sum_f32_in_f64(x, (size_t)r->n);
    double got = (double)*(const float *)r->out;
    double err = fabs(got - ref) / fabs(ref);

    r->is_wrong = !(err <= ARRAY_REL_TOL);
    snprintf(r->check, sizeof(r->check),
             "%s: sum %.9g vs %.9g in float64 in C over x (rel error %.3g, tol %.0e)", verdict(r),
             got, ref, err, ARRAY_REL_TOL);
}

static void check_chain(struct array_run *r, const float *x)
{
    int64_t n_bad = 0;
    double err = chain_max_error(r, x, &n_bad);

    r->is_wrong = n_bad != 0;
    snprintf(r->check, sizeof(r->check),
             "%s: %lld of %lld outputs off by more than %.0e (max rel error %.3g) vs the chain in "
             "float32 in C",
             verdict(r), (long long)n_bad, (long long)r->n, ARRAY_REL_TOL, err);
}

/* MATMUL_SAMPLES entries of x @ y, spread over the result, against dot products in
 * float64 in C. */
static void check_matmul(struct array_run *r, const double *x, const double *y)
{
    size_t n = (size_t)r->n;
    const double *out = r->out;
    double max_err = 0.0;

    for (size_t k = 0; k < MATMUL_SAMPLES; k++) {
        size_t i = (k * 7919 + 13) % n;
        size_t j = (k * 104729 + 71) % n;
        double ref = 0.0;

        for (size_t t = 0; t < n; t++) {
            ref += x[i * n + t] * y[t * n + j];
        }
        max_err = fmax(max_err, fabs(out[i * n + j] - ref) / fmax(1.0, fabs(ref)));
    }
    r->is_wrong = !(max_err <= MATMUL_TOL);
    snprintf(r->check, sizeof(r->check),
             "%s: %d sampled entries vs dot products in float64 in C (max rel error %.3g, tol "
             "%.0e)",
             verdict(r), MATMUL_SAMPLES, max_err, MATMUL_TOL);
}

/* A check that cannot run (no memory) says so and leaves the figure. */
void array_run_check(struct array_run *r)
{
    void *x = fetch_input(r, r->x);
    void *y = r->y != NULL && x != NULL ? fetch_input(r, r->y) : NULL;

    r->checksum = mean_of_out(r);
    if (x == NULL || (r->y != NULL && y == NULL)) {
        snprintf(r->check, sizeof(r->check), "not done: the inputs could not be read back");
    } else if (r->c->kind == KIND_MEAN_X_PLUS_XT) {
        check_mean(r, x);
    } else if (r->c->kind == KIND_SUM_F32) {
        check_sum(r, x);
    } else if (r->c->kind == KIND_CHAIN || r->c->kind == KIND_MATH_CHAIN) {
        check_chain(r, x);
    } else {
        check_matmul(r, x, y);
    }
    free(x);
    free(y);
    if (r->is_wrong) {
        fprintf(stderr, "tessera-bench: array %s: wrong result: %s\n", r->c->name, r->check);
    }
}

/* ---- the peers: dask.array and NumPy through peers/array_peers.py ---- */

void array_peer_side_init(struct peer_side *p, const char *lib)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->label, sizeof(p->label), "%s", lib);
    p->seconds = NAN;
    p->spread = NAN;
    p->checksum = NAN;
}

/* Why a library has no figure, from the version its line gave instead. */
static const char *peer_failure(const char *version)
{
    if (strcmp(version, "missing") == 0) {
        return "not importable by python3";
    }
    if (strcmp(version, "oom") == 0) {
        return "OutOfMemoryError under the same device memory limit";
    }
    if (strcmp(version, "nodevice") == 0) {
        return "no CUDA device";
    }
    return "its run failed (see stderr)";
}

/* `lib`'s lines in `res`: "<case>.<lib>=<version>" (n 0 and version "missing" when
 * it could not be imported) and "<case>.<lib>.checksum". */
void array_peer_side_read(const struct bench_peer_result *res, const char *case_name,
                          const char *lib, struct peer_side *p)
{
    char prefix[96];
    char sum_name[96];
    size_t len = (size_t)snprintf(prefix, sizeof(prefix), "%s.%s=", case_name, lib);
    const char *version = NULL;

    snprintf(sum_name, sizeof(sum_name), "%s.%s.checksum", case_name, lib);
    for (size_t i = 0; res->is_ok && i < res->n_cases; i++) {
        const struct bench_peer_case *pc = &res->cases[i];

        if (strncmp(pc->name, prefix, len) == 0) {
            version = pc->name + len;
            p->seconds = pc->n_runs > 0 ? pc->value : NAN;
            p->spread = pc->spread;
        } else if (strcmp(pc->name, sum_name) == 0) {
            p->checksum = pc->value;
        }
    }
    if (!res->is_ok) {
        snprintf(p->note, sizeof(p->note), "%s: %.200s", lib, res->note);
    } else if (version == NULL) {
        snprintf(p->note, sizeof(p->note), "%s: the peer reported no result", lib);
    } else if (!isfinite(p->seconds)) {
        snprintf(p->note, sizeof(p->note), "%s: %s", lib, peer_failure(version));
    } else {
        snprintf(p->label, sizeof(p->label), "%s-%.*s", lib, 40, version);
    }
}

/* Run the peer script for r's case and sizes with `n_threads` threads. */
static void run_peer(const struct bench_opts *opts, struct array_run *r, uint32_t n_threads)
{
    struct bench_peer_result *res = calloc(1, sizeof(*res));
    char args[256];

    array_peer_side_init(&r->dask, "dask");
    array_peer_side_init(&r->numpy, "numpy");
    if (res == NULL || !opts->use_peers) {
        snprintf(r->dask.note, sizeof(r->dask.note), "peers not run (%s)",
                 res == NULL ? "out of memory" : "--no-peer");
        free(res);
        return;
    }
    snprintf(args, sizeof(args), "%s --n %lld --chunk %lld --threads %u --runs %u --seed %d",
             r->c->name, (long long)r->n, (long long)r->chunk, n_threads, opts->n_runs, ARRAY_SEED);
    if (isatty(STDERR_FILENO)) {
        fprintf(stderr, "tessera-bench: array %s: running peers dask and numpy ...\n", r->c->name);
    }
    bench_peer_run(ARRAY_PEER_PROG, args, res);
    array_peer_side_read(res, r->c->name, "dask", &r->dask);
    array_peer_side_read(res, r->c->name, "numpy", &r->numpy);
    free(res);
}

/* ---- records ---- */

double array_ratio(double num, double den)
{
    return isfinite(num) && isfinite(den) && den > 0.0 ? num / den : NAN;
}

void array_describe_sizes(struct array_run *r)
{
    if (r->c->ndim == 2) {
        snprintf(r->shape, sizeof(r->shape), "%lldx%lld", (long long)r->n, (long long)r->n);
        snprintf(r->chunks, sizeof(r->chunks), "%lldx%lld", (long long)r->chunk,
                 (long long)r->chunk);
    } else {
        snprintf(r->shape, sizeof(r->shape), "%lld", (long long)r->n);
        snprintf(r->chunks, sizeof(r->chunks), "%lld", (long long)r->chunk);
    }
}

/* The peers' and the floor's fields; `note` (a buffer of the caller's) gathers the
 * peers' notes. */
static void add_peer_fields(const struct array_run *r, struct bench_record *rec, char *note,
                            size_t note_size)
{
    double value = bench_median(r->seconds, rec->n_samples);

    rec->peer = r->dask.label;
    rec->peer_value = r->dask.seconds;
    bench_record_add_str(rec, "numpy", r->numpy.label);
    bench_record_add_num(rec, "numpy_value", r->numpy.seconds);
    bench_record_add_num(rec, "vs_dask", array_ratio(r->dask.seconds, value));
    bench_record_add_num(rec, "vs_numpy", array_ratio(r->numpy.seconds, value));
    bench_record_add_num(rec, "vs_floor", array_ratio(value, rec->floor_value));
    bench_record_add_num(rec, "peer_spread", r->dask.spread);
    bench_record_add_num(rec, "numpy_spread", r->numpy.spread);
    snprintf(note, note_size, "%s%s%s", r->dask.note,
             r->dask.note[0] != '\0' && r->numpy.note[0] != '\0' ? "; " : "", r->numpy.note);
}

/* floor_value and the fields that say how it was had; `name` is the caller's. */
static void add_floor_fields(const struct array_run *r, const struct array_floor *f,
                             struct bench_record *rec, char *name, size_t name_size)
{
    int is_scale = r->c->floor == FLOOR_SCALE;
    double n = (double)r->n;
    double work = r->c->floor == FLOOR_BLAS ? 2.0 * n * n * n
                                            : (double)array_x_bytes(r) * (is_scale ? 2.0 : 1.0);

    if (r->c->floor == FLOOR_BLAS) {
        /* The same product through one BLAS call, NumPy's, on as many threads. */
        rec->floor_value = r->numpy.seconds;
        snprintf(name, name_size,
                 "2 n^3 flops at the rate of NumPy's matmul (its BLAS, %u threads)", f->n_threads);
        bench_record_add_str(rec, "floor", name);
        bench_record_add_num(rec, "floor_flops", work);
        bench_record_add_num(rec, "floor_gflops", work / r->numpy.seconds / 1e9);
        return;
    }
    rec->floor_value = work / (f->gbps * 1e9);
    snprintf(name, name_size,
             "%s over STREAM-like %s bandwidth, %u threads, measured before the case",
             is_scale ? "read x + write the result" : "read x once",
             is_scale ? "scale (b = 3a)" : "read (sum)", f->n_threads);
    bench_record_add_str(rec, "floor", name);
    bench_record_add_num(rec, "floor_bytes", work);
    bench_record_add_num(rec, "floor_gbps", f->gbps);
}

static void emit_case(const struct bench_opts *opts, const struct array_run *r,
                      const struct array_floor *f)
{
    char floor_name[128];
    char note[2 * BENCH_PEER_NOTE_MAX + 8];
    struct bench_record rec;

    bench_record_init(&rec, "array", r->c->name, "seconds", "s", "lower");
    rec.samples = r->seconds;
    rec.n_samples = r->is_wrong ? 0 : opts->n_runs;
    bench_target_describe(&r->tg, &rec);
    bench_record_add_str(&rec, "dtype", tsr_dtype_name(r->c->dtype));
    bench_record_add_str(&rec, "shape", r->shape);
    bench_record_add_str(&rec, "chunks", r->chunks);
    bench_record_add_str(&rec, "expr", r->c->expr);
    add_floor_fields(r, f, &rec, floor_name, sizeof(floor_name));
    add_peer_fields(r, &rec, note, sizeof(note));
    bench_record_add_int(&rec, "tasks", r->tasks_per_run);
    bench_record_add_str(&rec, "policy", tsr_sched_policy_name(r->policy));
    bench_record_add_str(&rec, "check", r->check);
    bench_record_add_num(&rec, "checksum", r->checksum);
    bench_record_add_num(&rec, "dask_checksum", r->dask.checksum);
    bench_record_add_num(&rec, "numpy_checksum", r->numpy.checksum);
    bench_record_add_str(&rec, "timed",
                         "inputs persisted; build the expression + tsr_array_compute into a host "
                         "buffer. dask: inputs persisted, build + .compute() (threaded scheduler, "
                         "as many workers); numpy: the expression on inputs in memory");
    if (note[0] != '\0') {
        bench_record_add_str(&rec, "note", note);
    }
    bench_report_emit(opts->report, &rec);
}

/* ---- one case, the scenario ---- */

static void run_free(struct array_run *r)
{
    tsr_array_release(r->x);
    tsr_array_release(r->y);
    r->x = NULL;
    r->y = NULL;
    if (r->tg.rt != NULL) {
        bench_target_close(&r->tg);
    }
    free(r->out);
    r->out = NULL;
}

/* The floor, then Tessera: measure, check, free everything; then the peers, with
 * as many threads as Tessera had workers. Returns 0, or 1 after a failure or a
 * wrong result. */
static int run_case(const struct bench_opts *opts, const struct array_case *c, uint32_t n_threads)
{
    struct array_run *r = calloc(1, sizeof(*r));
    struct array_floor f;
    int err;

    if (r == NULL || (r->seconds = calloc(opts->n_runs, sizeof(double))) == NULL) {
        fprintf(stderr, "tessera-bench: array %s: out of memory\n", c->name);
        free(r);
        return 1;
    }
    r->c = c;
    r->n = opts->is_quick ? c->n_quick : c->n;
    r->chunk = opts->is_quick ? c->chunk_quick : c->chunk;
    array_describe_sizes(r);
    f.gbps = NAN;
    f.n_threads = n_threads;
    if (c->floor != FLOOR_BLAS) {
        floor_measure(opts, c->floor, n_threads, &f);
    }
    err = bench_target_open(opts, 0, &r->tg);
    err = err == 0 ? run_measure(opts, r) : err;
    if (err == 0) {
        array_run_check(r);
    }
    run_free(r); /* before the peers, which make their own x */
    if (err == 0) {
        run_peer(opts, r, r->tg.info.n_workers);
        emit_case(opts, r, &f);
    }
    err = err != 0 || r->is_wrong;
    free(r->seconds);
    free(r);
    return err;
}

static const struct array_case *find_case(const char *name)
{
    for (size_t i = 0; i < array_n_cases; i++) {
        if (strcmp(array_cases[i].name, name) == 0) {
            return &array_cases[i];
        }
    }
    return NULL;
}

int bench_array_run(const struct bench_opts *opts)
{
    const struct array_case *only = NULL;
    tsr_config_t resolved;
    int err = 0;

    if (opts->device != BENCH_DEVICE_CPU) {
        return bench_array_gpu_run(opts);
    }
    if (opts->case_filter != NULL && (only = find_case(opts->case_filter)) == NULL) {
        fprintf(stderr, "tessera-bench: array has no case '%s' (see `tessera-bench list`)\n",
                opts->case_filter);
        return 1;
    }
    if (bench_resolve(opts, &resolved) != 0) {
        return 1;
    }
    for (size_t i = 0; i < array_n_cases; i++) {
        if (only == NULL || only == &array_cases[i]) {
            err |= run_case(opts, &array_cases[i], (uint32_t)resolved.n_cpu_workers);
        }
    }
    return err;
}
