/* The generator leaves of the array kernels (TSR_LEAF_ARANGE, UNIFORM, NORMAL;
 * kernel_args.h), shared by the CPU kernel (ew_cpu.c) and the CUDA one
 * (kernels/cuda/ew_eval.cuh): C11, and __host__ __device__ under nvcc.
 *
 * ARANGE and UNIFORM are the same bits on every device: each product and sum is
 * rounded on its own, never contracted into an FMA (on the device through the
 * __d*_rn intrinsics, and the CUDA build passes --fmad=false; GCC does not
 * contract in the ISO C modes the library is built in, clang is told not to per
 * function (TSR_GEN_NOFMA), and in a GNU or C++ dialect on a target with FMA, GCC
 * compiles these functions apart with contraction off). So is NORMAL: its
 * Box-Muller transform takes its log and cos from ew_vmath.h, written under the
 * same rules, rather than from the platform's libraries (glibc's and CUDA's differ
 * in the last bits).
 * Private to kernels/. */
#ifndef TSR_KERNELS_CPU_EW_GEN_H
#define TSR_KERNELS_CPU_EW_GEN_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ew_vmath.h" /* beside this file: tests include it by a relative path */

#if defined(__CUDACC__)
#define TSR_GEN_FN static __host__ __device__ __forceinline__
#else
#define TSR_GEN_FN static inline
#endif

/* The rounded operations below. Clang keeps its permission to contract per
 * instruction, so the pragma in their bodies holds after inlining. GCC decides
 * per function after inlining: in the dialects where it contracts (GNU C, C++)
 * on a target with FMA, they stay out of line, where nothing can fuse them. */
#if defined(__clang__) && !defined(__CUDACC__)
#define TSR_GEN_NOFMA _Pragma("clang fp contract(off)")
#else
#define TSR_GEN_NOFMA
#endif
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && defined(__FP_FAST_FMA) && \
    (defined(__cplusplus) || !defined(__STRICT_ANSI__))
#define TSR_GEN_ARITH static __attribute__((noinline, unused))
#else
#define TSR_GEN_ARITH TSR_GEN_FN
#endif

/* ---- rounded arithmetic and bits ----------------------------------------------------- */

TSR_GEN_ARITH double ew_gmul(double a, double b)
{
    TSR_GEN_NOFMA
#ifdef __CUDA_ARCH__
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}

TSR_GEN_ARITH double ew_gadd(double a, double b)
{
    TSR_GEN_NOFMA
#ifdef __CUDA_ARCH__
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}

TSR_GEN_ARITH double ew_gsub(double a, double b)
{
    TSR_GEN_NOFMA
#ifdef __CUDA_ARCH__
    return __dsub_rn(a, b);
#else
    return a - b;
#endif
}

TSR_GEN_ARITH double ew_gdiv(double a, double b)
{
    TSR_GEN_NOFMA
#ifdef __CUDA_ARCH__
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}

/* IEEE square root, correctly rounded on both sides. */
TSR_GEN_FN double ew_gsqrt(double x)
{
#ifdef __CUDA_ARCH__
    return __dsqrt_rn(x);
#else
    return sqrt(x);
#endif
}

/* ---- the generators ------------------------------------------------------------------ */

/* Counter-based random bits: a strong 64-bit mix (splitmix64's finaliser) of
 * (seed, index), so that a value depends on its seed and global index only. */
TSR_GEN_FN uint64_t ew_mix64(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ull;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z;
}

/* 53 random bits as a double in [0, 1): (bits >> 11) * 2^-53, with the integer
 * converted exactly in two 32-bit halves (ew_vm_u52_to_double). */
TSR_GEN_FN double ew_unit53(uint64_t bits)
{
    const uint64_t m = bits >> 11;
    const double hi = ew_vm_u52_to_double(m >> 32);
    const double lo = ew_vm_u52_to_double(m & 0xffffffffull);

    return ew_gmul(ew_gadd(ew_gmul(hi, 0x1p32), lo), 0x1.0p-53);
}

/* The key of a leaf's seed, computed once per leaf. */
TSR_GEN_FN uint64_t ew_gen_key(uint64_t seed)
{
    return ew_mix64(seed ^ 0x5851f42d4c957f2dull);
}

#define EW_GEN_GOLDEN 0x9e3779b97f4a7c15ull

/* (double)i, rounded once as the conversion is, from two exact halves (see
 * ew_unit53), the high one signed: less 2^32 when i is negative. */
TSR_GEN_FN double ew_gen_i64_to_double(int64_t i)
{
    const uint64_t u = (uint64_t)i;
    const double hi = ew_gsub(ew_vm_u52_to_double(u >> 32), (u >> 63) ? 0x1p32 : 0.0);
    const double lo = ew_vm_u52_to_double(u & 0xffffffffull);

    return ew_gadd(ew_gmul(hi, 0x1p32), lo);
}

/* p0 + i * p1. */
TSR_GEN_FN double ew_gen_arange(double p0, double p1, int64_t i)
{
    return ew_gadd(p0, ew_gmul(ew_gen_i64_to_double(i), p1));
}

/* Uniform in [p0, p1). */
TSR_GEN_FN double ew_gen_uniform(double p0, double p1, uint64_t key, int64_t i)
{
    const double u = ew_unit53(ew_mix64(key + EW_GEN_GOLDEN * (uint64_t)i));
    return ew_gadd(p0, ew_gmul(ew_gsub(p1, p0), u));
}

/* Normal of mean p0 and deviation p1: Box-Muller on two independent draws per
 * index, u1 in (0, 1] so that its log is finite. */
TSR_GEN_FN double ew_gen_normal(double p0, double p1, uint64_t key, int64_t i)
{
    const uint64_t k = 2 * (uint64_t)i;
    const double u1 = ew_gsub(1.0, ew_unit53(ew_mix64(key + EW_GEN_GOLDEN * k)));
    const double u2 = ew_unit53(ew_mix64(key + EW_GEN_GOLDEN * (k + 1)));
    const double radius = ew_gmul(p1, ew_gsqrt(ew_gmul(-2.0, ew_vm_log(u1))));

    return ew_gadd(p0, ew_gmul(radius, ew_vm_cos(ew_gmul(6.283185307179586, u2))));
}

#endif /* TSR_KERNELS_CPU_EW_GEN_H */
