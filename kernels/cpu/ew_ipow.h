/* The integer power of the array kernels' `pow` on integer types, shared by the
 * CPU kernel (ew_ops.c) and the CUDA one (kernels/cuda/ew_eval.cuh) so that both
 * wrap alike: C11, and __host__ __device__ under nvcc. Private to kernels/. */
#ifndef TSR_KERNELS_CPU_EW_IPOW_H
#define TSR_KERNELS_CPU_EW_IPOW_H

#include <stdint.h>

#if defined(__CUDACC__)
#define TSR_IPOW_FN static __host__ __device__ __forceinline__
#else
#define TSR_IPOW_FN static inline
#endif

/* x^e by squaring, wrapping like NumPy (a product modulo 2^64 keeps the low bits
 * right for every narrower type). A negative exponent gives what 1 / x^-e
 * truncates to; NumPy refuses those. */
TSR_IPOW_FN int64_t ipow64(int64_t x, int64_t e)
{
    uint64_t r = 1;
    uint64_t b = (uint64_t)x;

    if (e < 0) {
        return x == 1 ? 1 : x == -1 ? ((e & 1) ? -1 : 1) : 0;
    }
    for (uint64_t k = (uint64_t)e; k; k >>= 1) {
        if (k & 1) {
            r *= b;
        }
        b *= b;
    }
    return (int64_t)r;
}

#endif /* TSR_KERNELS_CPU_EW_IPOW_H */
