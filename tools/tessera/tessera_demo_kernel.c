/* Kernels of `tessera demo`: a tile product for the tasks and the sequential
 * reference it is checked against.
 *
 * Both sum each C element over k in increasing order, which the task graph
 * preserves too (the tile products of one C tile are chained through its RW
 * access in k order), so the blocked result normally equals the reference
 * exactly; the check still allows a relative error of 1e-12. The tile kernel
 * unrolls k by four but writes the sum as c + a0*b0 + a1*b1 + ..., which C
 * evaluates left to right: the same order as four separate updates, with one
 * load and store of c instead of four. Two rows of C share each load of B.
 * The inner j loops are unit-stride on restrict pointers and vectorise. */
#include "tessera_demo_kernel.h"

/* c0 += a0 * b and c1 += a1 * b for one block of four k (b: 4 rows of stride t). */
static void rows2_k4(size_t t, const double *restrict a0, const double *restrict a1,
                     const double *restrict b, double *restrict c0, double *restrict c1)
{
    const double *restrict b0 = b;
    const double *restrict b1 = b + t;
    const double *restrict b2 = b + 2 * t;
    const double *restrict b3 = b + 3 * t;

    for (size_t j = 0; j < t; j++) {
        c0[j] = c0[j] + a0[0] * b0[j] + a0[1] * b1[j] + a0[2] * b2[j] + a0[3] * b3[j];
        c1[j] = c1[j] + a1[0] * b0[j] + a1[1] * b1[j] + a1[2] * b2[j] + a1[3] * b3[j];
    }
}

/* c += a[k] * b for one k (b: one row). */
static void row_k1(size_t t, double a, const double *restrict b, double *restrict c)
{
    for (size_t j = 0; j < t; j++) {
        c[j] = c[j] + a * b[j];
    }
}

/* Rows i and i+1 of C (if present) for every k. */
static void row_pair(size_t t, size_t i, size_t n_rows, const double *restrict a,
                     const double *restrict b, double *restrict c)
{
    size_t k = 0;

    if (n_rows == 2) {
        for (; k + 4 <= t; k += 4) {
            rows2_k4(t, &a[i * t + k], &a[(i + 1) * t + k], &b[k * t], &c[i * t], &c[(i + 1) * t]);
        }
    }
    for (; k < t; k++) {
        row_k1(t, a[i * t + k], &b[k * t], &c[i * t]);
        if (n_rows == 2) {
            row_k1(t, a[(i + 1) * t + k], &b[k * t], &c[(i + 1) * t]);
        }
    }
}

void demo_tile_gemm(size_t t, const double *restrict a, const double *restrict b,
                    double *restrict c)
{
    for (size_t i = 0; i < t; i += 2) {
        row_pair(t, i, (i + 1 < t) ? 2 : 1, a, b, c);
    }
}

void demo_ref_gemm(size_t n, const double *restrict a, const double *restrict b, double *restrict c)
{
    for (size_t i = 0; i < n * n; i++) {
        c[i] = 0.0;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < n; k++) {
            double aik = a[i * n + k];

            for (size_t j = 0; j < n; j++) {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
}
