/* Kernels of `tessera demo` (tessera_demo_kernel.c): matrices row-major, double. */
#ifndef TESSERA_DEMO_KERNEL_H
#define TESSERA_DEMO_KERNEL_H

#include <stddef.h>

/* C += A * B on t x t tiles, summing over k in increasing order per element. */
void demo_tile_gemm(size_t t, const double *restrict a, const double *restrict b,
                    double *restrict c);

/* C = A * B on n x n matrices: the plain sequential triple loop (i-k-j order). */
void demo_ref_gemm(size_t n, const double *restrict a, const double *restrict b,
                   double *restrict c);

#endif /* TESSERA_DEMO_KERNEL_H */
