/* tessera-bench sched: the CPU tile kernels of the tiled Cholesky factorisation
 * (double precision, column-major, lower triangle) and the measurement of their
 * run times, which become the task costs of the simulated platforms.
 *
 * Plain C, single-threaded (one task runs on one core), written to be fair
 * rather than fast: every flop-heavy loop is a cache-blocked product whose
 * inner loop runs down contiguous columns four output columns at a time, so it
 * vectorises with portable flags; trsm and potrf are blocked so that most of
 * their flops go through that product. A vendor BLAS would be several times
 * faster per core; the simulated GPUs are defined relative to these kernels (GPU
 * time = CPU time / speed-up), so that ratio carries over, but the ratio of
 * compute to transfer time on the simulated links does not (see README.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_chol.h"

#define GEMM_IB 128 /* rows of A and C per block: 4 columns of C stay in L1 */
#define GEMM_KB 128 /* columns of A per block: an IB x KB block of A stays in L2 */
#define PANEL_NB 64 /* column panel of the blocked trsm, syrk and potrf */
#define CHECK_TOLERANCE 1e-9

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* c0..c3 (mb rows each) -= x * bx[0..3] + y * by[0..3], the x updates first
 * (k order, no reassociation). restrict parameters rather than restrict locals:
 * GCC trusts only the former, and without them the loop needs more run-time
 * alias checks than it is willing to emit, so it stays scalar. */
static void update4(size_t mb, const double *restrict x, const double *restrict y,
                    const double *restrict bx, const double *restrict by, double *restrict c0,
                    double *restrict c1, double *restrict c2, double *restrict c3)
{
    for (size_t i = 0; i < mb; i++) {
        double xi = x[i];
        double yi = y[i];

        c0[i] = c0[i] - xi * bx[0] - yi * by[0];
        c1[i] = c1[i] - xi * bx[1] - yi * by[1];
        c2[i] = c2[i] - xi * bx[2] - yi * by[2];
        c3[i] = c3[i] - xi * bx[3] - yi * by[3];
    }
}

/* c0..c3 (mb rows each, ldc apart) -= a (mb x kb) * b (4 x kb)^T; b's rows are
 * consecutive, its columns ldb apart. The k loop is unrolled by two so each
 * element of C is loaded and stored once per two updates; an odd last column of
 * A pairs with zeros. */
static void gemm_cols4(size_t mb, size_t kb, const double *a, size_t lda, const double *b,
                       size_t ldb, double *c, size_t ldc)
{
    static const double zeros[4] = {0.0, 0.0, 0.0, 0.0};

    for (size_t p = 0; p < kb; p += 2) {
        const double *y = p + 1 < kb ? &a[(p + 1) * lda] : &a[p * lda];
        const double *by = p + 1 < kb ? &b[(p + 1) * ldb] : zeros;

        update4(mb, &a[p * lda], y, &b[p * ldb], by, c, c + ldc, c + 2 * ldc, c + 3 * ldc);
    }
}

/* One column of C: c (mb) -= a (mb x kb) * b (1 x kb)^T. */
static void gemm_col1(size_t mb, size_t kb, const double *a, size_t lda, const double *b,
                      size_t ldb, double *restrict c)
{
    for (size_t p = 0; p < kb; p++) {
        const double *restrict x = &a[p * lda];
        double bp = b[p * ldb];

        for (size_t i = 0; i < mb; i++) {
            c[i] -= x[i] * bp;
        }
    }
}

/* C (m x n) -= A (m x k) * B (n x k)^T, column-major with leading dimensions. */
static void gemm_nt(size_t m, size_t n, size_t k, const double *a, size_t lda, const double *b,
                    size_t ldb, double *c, size_t ldc)
{
    for (size_t i0 = 0; i0 < m; i0 += GEMM_IB) {
        size_t mb = min_size(GEMM_IB, m - i0);

        for (size_t p0 = 0; p0 < k; p0 += GEMM_KB) {
            size_t kb = min_size(GEMM_KB, k - p0);
            const double *ab = &a[i0 + p0 * lda];
            size_t j = 0;

            for (; j + 4 <= n; j += 4) {
                gemm_cols4(mb, kb, ab, lda, &b[j + p0 * ldb], ldb, &c[i0 + j * ldc], ldc);
            }
            for (; j < n; j++) {
                gemm_col1(mb, kb, ab, lda, &b[j + p0 * ldb], ldb, &c[i0 + j * ldc]);
            }
        }
    }
}

/* Lower triangle of C (n x n) -= A (n x k) * A^T, by column panels; the strict
 * upper triangle of each PANEL_NB diagonal block is scratch (updated too). */
static void syrk_ln(size_t n, size_t k, const double *a, size_t lda, double *c, size_t ldc)
{
    for (size_t j0 = 0; j0 < n; j0 += PANEL_NB) {
        size_t nb = min_size(PANEL_NB, n - j0);

        gemm_nt(n - j0, nb, k, &a[j0], lda, &a[j0], lda, &c[j0 + j0 * ldc], ldc);
    }
}

/* X (m x nb) = X L^-T for a small lower-triangular L (nb x nb), column by column. */
static void trsm_panel(size_t m, size_t nb, const double *l, size_t ldl, double *x, size_t ldx)
{
    for (size_t p = 0; p < nb; p++) {
        double *restrict xp = &x[p * ldx];
        double inv = 1.0 / l[p + p * ldl];

        for (size_t i = 0; i < m; i++) {
            xp[i] *= inv;
        }
        for (size_t j = p + 1; j < nb; j++) {
            double *restrict xj = &x[j * ldx];
            double ljp = l[j + p * ldl];

            for (size_t i = 0; i < m; i++) {
                xj[i] -= ljp * xp[i];
            }
        }
    }
}

/* X (m x n) = X L^-T, L (n x n) lower-triangular: a panel solve, then the panel's
 * contribution to the columns right of it as one product. */
static void trsm_rltn(size_t m, size_t n, const double *l, size_t ldl, double *x, size_t ldx)
{
    for (size_t j0 = 0; j0 < n; j0 += PANEL_NB) {
        size_t nb = min_size(PANEL_NB, n - j0);
        size_t rest = n - j0 - nb;

        trsm_panel(m, nb, &l[j0 + j0 * ldl], ldl, &x[j0 * ldx], ldx);
        if (rest > 0) {
            gemm_nt(m, rest, nb, &x[j0 * ldx], ldx, &l[j0 + nb + j0 * ldl], ldl,
                    &x[(j0 + nb) * ldx], ldx);
        }
    }
}

/* Unblocked left-looking Cholesky of a small block (lower triangle read only).
 * Returns 0, or -1 if it is not positive definite. */
static int potrf_panel(size_t n, double *a, size_t lda)
{
    for (size_t j = 0; j < n; j++) {
        double *restrict aj = &a[j * lda];
        double d;

        for (size_t p = 0; p < j; p++) {
            const double *restrict ap = &a[p * lda];
            double ajp = ap[j];

            for (size_t i = j; i < n; i++) {
                aj[i] -= ap[i] * ajp;
            }
        }
        if (!(aj[j] > 0.0)) {
            return -1;
        }
        d = sqrt(aj[j]);
        aj[j] = d;
        for (size_t i = j + 1; i < n; i++) {
            aj[i] /= d;
        }
    }
    return 0;
}

/* A = L L^T in place (lower), right-looking by panels. Returns 0 or -1 (not SPD). */
static int potrf_ln(size_t n, double *a, size_t lda)
{
    for (size_t j0 = 0; j0 < n; j0 += PANEL_NB) {
        size_t nb = min_size(PANEL_NB, n - j0);
        size_t rest = n - j0 - nb;
        double *diag = &a[j0 + j0 * lda];

        if (potrf_panel(nb, diag, lda) != 0) {
            return -1;
        }
        if (rest > 0) {
            trsm_rltn(rest, nb, diag, lda, diag + nb, lda);
            syrk_ln(rest, nb, diag + nb, lda, &a[j0 + nb + (j0 + nb) * lda], lda);
        }
    }
    return 0;
}

/* The inputs of the measured calls: an SPD tile, its factor, two general tiles
 * and the work tile each call runs on. */
struct kernel_tiles {
    size_t b;
    double *spd;
    double *factor;
    double *x;
    double *y;
    double *work;
};

/* Entries in [0, 1) from a fixed hash, so runs are repeatable. */
static double unit_entry(uint64_t seed, size_t i)
{
    uint64_t v = (seed << 32) ^ (uint64_t)i;

    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return (double)(v >> 11) * 0x1.0p-53;
}

static void tiles_free(struct kernel_tiles *t)
{
    free(t->spd);
    free(t->factor);
    free(t->x);
    free(t->y);
    free(t->work);
}

/* SPD tile: symmetric entries in [0, 1) plus b on the diagonal (diagonally dominant). */
static int tiles_init(size_t b, struct kernel_tiles *t)
{
    size_t n_bytes = b * b * sizeof(double);

    memset(t, 0, sizeof(*t));
    t->b = b;
    t->spd = malloc(n_bytes);
    t->factor = malloc(n_bytes);
    t->x = malloc(n_bytes);
    t->y = malloc(n_bytes);
    t->work = malloc(n_bytes);
    if (t->spd == NULL || t->factor == NULL || t->x == NULL || t->y == NULL || t->work == NULL) {
        tiles_free(t);
        fprintf(stderr, "tessera-bench: sched: out of memory (tile %zu)\n", b);
        return 1;
    }
    for (size_t j = 0; j < b; j++) {
        for (size_t i = 0; i < b; i++) {
            size_t lo = i > j ? i : j;
            size_t hi = i > j ? j : i;

            t->spd[i + j * b] = unit_entry(1, lo * b + hi) + (i == j ? (double)b : 0.0);
            t->x[i + j * b] = unit_entry(2, i + j * b);
            t->y[i + j * b] = unit_entry(3, i + j * b);
        }
    }
    memcpy(t->factor, t->spd, n_bytes);
    return 0;
}

/* 0 if t->factor holds the Cholesky factor of t->spd: (L L^T)(i, j) checked on
 * the first column, the diagonal and a sampled spread of lower entries. */
static int check_factor(const struct kernel_tiles *t)
{
    size_t b = t->b;

    for (size_t s = 0; s < 3 * b; s++) {
        size_t i = s < b ? s : s < 2 * b ? s - b : (size_t)(unit_entry(4, s) * (double)b);
        size_t j = s < b ? 0 : s < 2 * b ? i : (size_t)(unit_entry(5, s) * (double)(i + 1));
        double sum = 0.0;

        for (size_t p = 0; p <= j; p++) {
            sum += t->factor[i + p * b] * t->factor[j + p * b];
        }
        if (fabs(sum - t->spd[i + j * b]) > CHECK_TOLERANCE * (double)b) {
            fprintf(stderr,
                    "tessera-bench: sched: WRONG potrf kernel: (L L^T)[%zu][%zu] = %.17g, "
                    "expected %.17g\n",
                    i, j, sum, t->spd[i + j * b]);
            return 1;
        }
    }
    return 0;
}

/* One call of the kernel of `kind` on t->work, which is first reset from its
 * input (outside the timed region). Returns the seconds it took, or -1 (potrf on
 * a matrix that is not SPD: cannot happen with these inputs). */
static double time_call(enum chol_kind kind, struct kernel_tiles *t)
{
    size_t b = t->b;
    double t0;
    int rc = 0;

    memcpy(t->work, kind == CHOL_TRSM ? t->x : t->spd, b * b * sizeof(double));
    t0 = bench_now_s();
    switch (kind) {
    case CHOL_POTRF:
        rc = potrf_ln(b, t->work, b);
        break;
    case CHOL_TRSM:
        trsm_rltn(b, b, t->factor, b, t->work, b);
        break;
    case CHOL_SYRK:
        syrk_ln(b, b, t->x, b, t->work, b);
        break;
    default:
        gemm_nt(b, b, b, t->x, b, t->y, b, t->work, b);
        break;
    }
    return rc == 0 ? bench_now_s() - t0 : -1.0;
}

int chol_kernels_measure(size_t b, uint32_t n_runs, double *samples_s)
{
    struct kernel_tiles t;
    int err;

    if (tiles_init(b, &t) != 0) {
        return 1;
    }
    err = potrf_ln(b, t.factor, b) != 0;
    if (err != 0) {
        fprintf(stderr, "tessera-bench: sched: WRONG potrf kernel: an SPD tile found not SPD\n");
    }
    err = err != 0 ? err : check_factor(&t);
    for (int kind = 0; kind < CHOL_N_KINDS && err == 0; kind++) {
        (void)time_call((enum chol_kind)kind, &t);
        for (uint32_t r = 0; r < n_runs; r++) {
            samples_s[(size_t)kind * n_runs + r] = time_call((enum chol_kind)kind, &t);
        }
    }
    tiles_free(&t);
    return err;
}
