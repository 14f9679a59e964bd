/* exp, log, sin and cos for the array kernels, written so that a loop over a
 * block of values vectorises: no branch and no call, special values chosen with
 * selects, integers of the binary representation instead of int <-> double
 * conversions the vector units lack. Shared by the CPU kernels (ew_ops.c, and the
 * NORMAL generator of ew_gen.h) and the CUDA ones, as C11 and __host__
 * __device__ under nvcc.
 *
 * Every product and sum is rounded on its own, never contracted into an FMA (the
 * library is ISO C, where GCC does not contract; clang is told not to per
 * function, EW_VM_NOFMA; nvcc is given --fmad=false; a GNU C or C++ includer
 * built for a target with FMA needs -ffp-contract=off), so a value is the same
 * bits on every device, and the NORMAL generator that uses ew_vm_log and ew_vm_cos
 * gives a chunk the same values on a CPU and a GPU.
 *
 * Accuracy: float64 within about an ulp (measured: at most 1.2 ulp for exp and
 * log over their whole range, 0.9 for sin and cos, next to multiples of pi/2
 * too), sin and cos for |x| <= EW_VM_TRIG_MAX only (callers hand larger
 * arguments to the C library). The float32 versions compute in float64 and round
 * once at the end: almost always the correctly rounded float (at most 0.503 ulp
 * over every 13th float32).
 *
 * Private to kernels/. */
#ifndef TSR_KERNELS_CPU_EW_VMATH_H
#define TSR_KERNELS_CPU_EW_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define EW_VM_FN static __host__ __device__ __forceinline__
#else
#define EW_VM_FN static inline
#endif
#if defined(__clang__) && !defined(__CUDACC__)
#define EW_VM_NOFMA _Pragma("clang fp contract(off)")
#else
#define EW_VM_NOFMA
#endif

/* Largest |x| whose sine and cosine the reduction below gets right: the
 * quadrant k = x * 2/pi then stays below 2^17, so that k times each 33-bit part of
 * pi/2 is exact. */
#define EW_VM_TRIG_MAX 1.0e5

/* Adding 1.5 * 2^52 to a double of magnitude below 2^51 rounds it to an integer,
 * which then sits in the low bits of the sum's representation. */
#define EW_VM_SHIFT 0x1.8p52

EW_VM_FN uint64_t ew_vm_bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof(u));
    return u;
}

EW_VM_FN double ew_vm_from_bits(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof(x));
    return x;
}

/* u as a double, exactly, for u < 2^52: through the representation of 2^52 + u,
 * which vector units without a 64-bit integer conversion (AVX2) can do. */
EW_VM_FN double ew_vm_u52_to_double(uint64_t u)
{
    return ew_vm_from_bits(0x4330000000000000ull | u) - 0x1p52;
}

/* 2^e for -1022 <= e <= 1023. */
EW_VM_FN double ew_vm_pow2(int64_t e)
{
    return ew_vm_from_bits((uint64_t)(e + 1023) << 52);
}

/* ln 2 in two parts, the first with 42 bits so that n times it is exact for the
 * exponents n of exp and log. */
#define EW_VM_LN2_HI 0x1.62e42fefa38p-1
#define EW_VM_LN2_LO 0x1.ef35793c7673p-45

/* ---- exp ------------------------------------------------------------------------ */

/* exp(x) = 2^n exp(r) with n = round(x / ln 2) and |r| <= ln(2) / 2, r computed
 * against ln 2 in two parts (EW_VM_LN2_HI, _LO).
 * exp(r) by its Taylor polynomial of degree 13 (error below 2^-60 on that
 * interval), or of degree 8 (below 2^-32, enough for a float) when !full. */
EW_VM_FN double ew_vm_exp_prec(double x, int full)
{
    EW_VM_NOFMA
    /* Beyond the limit the result is inf or 0 already (for a float, beyond 200);
     * NaN goes through as 0 and is put back at the end. */
    const double lim = full ? 750.0 : 200.0;
    double xc = x > lim ? lim : x;
    xc = xc < -lim ? -lim : xc;
    xc = x != x ? 0.0 : xc;

    const double t = xc * 1.4426950408889634 + EW_VM_SHIFT;
    const double nd = t - EW_VM_SHIFT;
    const int64_t n = (int64_t)(ew_vm_bits(t) - ew_vm_bits(EW_VM_SHIFT));
    const double r = (xc - nd * EW_VM_LN2_HI) - nd * EW_VM_LN2_LO;

    double p = 1.0 / 40320.0;
    if (full) {
        p = 1.0 / 6227020800.0;
        p = p * r + 1.0 / 479001600.0;
        p = p * r + 1.0 / 39916800.0;
        p = p * r + 1.0 / 3628800.0;
        p = p * r + 1.0 / 362880.0;
        p = p * r + 1.0 / 40320.0;
    }
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;

    double y;
    if (full) {
        /* 2^n in two factors, each a normal double, so that results near
         * overflow and in the subnormal range are rounded once, by the last
         * product. */
        const int64_t n1 = n / 2;
        y = p * ew_vm_pow2(n1) * ew_vm_pow2(n - n1);
    } else {
        y = p * ew_vm_pow2(n); /* |n| <= 289, and the float rounds the rest */
    }
    return x != x ? x : y;
}

EW_VM_FN double ew_vm_exp(double x)
{
    return ew_vm_exp_prec(x, 1);
}

/* ---- log ------------------------------------------------------------------------ */

/* log(x) = e ln 2 + log(1 + f) with x = 2^e (1 + f), sqrt(1/2) < 1 + f <= sqrt(2),
 * and log(1 + f) = 2 atanh(s), s = f / (2 + f), |s| < 0.1716, as f - s (f - R)
 * with R = 2 (s^2/3 + s^4/5 + ...), the form that keeps f exact: 10 terms of R
 * leave a relative error below 2^-62, or 5 (below 2^-34) when !full. */
EW_VM_FN double ew_vm_log_prec(double x, int full)
{
    EW_VM_NOFMA
    /* Subnormals (and zeros and negatives, fixed at the end) are scaled by 2^54
     * into the normal range first. */
    const int tiny = x < 0x1p-1022;
    const double xs = x * (tiny ? 0x1p54 : 1.0);
    const uint64_t b = ew_vm_bits(xs);
    double m = ew_vm_from_bits((b & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
    const int big = m > 1.4142135623730951;
    m = m * (big ? 0.5 : 1.0);
    const uint64_t biased = ((b >> 52) & 0x7ff) + (uint64_t)big;
    const double e = ew_vm_u52_to_double(biased) - (tiny ? 1077.0 : 1023.0);

    const double f = m - 1.0;
    const double s = f / (2.0 + f);
    const double z = s * s;
    double R = 2.0 / 11.0;
    if (full) {
        R = 2.0 / 21.0;
        R = R * z + 2.0 / 19.0;
        R = R * z + 2.0 / 17.0;
        R = R * z + 2.0 / 15.0;
        R = R * z + 2.0 / 13.0;
        R = R * z + 2.0 / 11.0;
    }
    R = R * z + 2.0 / 9.0;
    R = R * z + 2.0 / 7.0;
    R = R * z + 2.0 / 5.0;
    R = R * z + 2.0 / 3.0;
    R = R * z;
    const double log1p = f - s * (f - R);
    double y = e * EW_VM_LN2_HI + (log1p + e * EW_VM_LN2_LO);

    y = x == (double)INFINITY ? x : y;
    y = x == 0.0 ? -(double)INFINITY : y;
    y = x < 0.0 ? (double)NAN : y;
    return x != x ? x : y;
}

EW_VM_FN double ew_vm_log(double x)
{
    return ew_vm_log_prec(x, 1);
}

/* ---- sin and cos ------------------------------------------------------------------ */

/* x - k pi/2 with k = round(x * 2/pi), for |x| <= EW_VM_TRIG_MAX, as r + *tail
 * with |*tail| about an ulp of r: pi/2 in four parts, the first three of 33 bits
 * so that k times them is exact; x - k p1 is exact, the rounding of - k p2 is
 * recovered exactly (Knuth's two-sum) and goes into the tail with the rest. Since
 * the only roundings left are the tail's, this holds for x however close to a
 * multiple of pi/2. For a float (!full), three parts rounded in turn are enough
 * and the tail is 0. *quadrant gets k (mod 4 in its low bits). */
EW_VM_FN double ew_vm_reduce(double x, double *tail, uint64_t *quadrant, int full)
{
    EW_VM_NOFMA
    const double t = x * 0x1.45f306dc9c883p-1 + EW_VM_SHIFT;
    const double k = t - EW_VM_SHIFT;
    *quadrant = ew_vm_bits(t) - ew_vm_bits(EW_VM_SHIFT);
    const double r0 = x - k * 0x1.921fb544p+0;
    if (!full) {
        *tail = 0.0;
        return (r0 - k * 0x1.0b4611a6p-34) - k * 0x1.3198a2ep-69;
    }
    const double a = -(k * 0x1.0b4611a6p-34);
    const double r = r0 + a;
    const double a_part = r - r0;
    const double err = (r0 - (r - a_part)) + (a - a_part);
    *tail = err - (k * 0x1.3198a2ep-69 + k * 0x1.b839a252049c1p-104);
    return r;
}

/* sin(r + t) and cos(r + t) for |r| <= pi/4 and |t| tiny, by Taylor polynomials
 * of r to degree 17 and 18 (errors below 2^-60) plus t times the derivative, or
 * of degree 11 and 12 (below 2^-35) when !full (and t is 0). */
EW_VM_FN double ew_vm_sin_poly(double r, double t, int full)
{
    EW_VM_NOFMA
    const double z = r * r;
    double p = 1.0 / 39916800.0;
    if (full) {
        p = -1.0 / 355687428096000.0;
        p = p * z + 1.0 / 1307674368000.0;
        p = p * z - 1.0 / 6227020800.0;
        p = p * z + 1.0 / 39916800.0;
    }
    p = p * z - 1.0 / 362880.0;
    p = p * z + 1.0 / 5040.0;
    p = p * z - 1.0 / 120.0;
    p = p * z + 1.0 / 6.0;
    /* r - r^3 p + t (1 - r^2/2), with p = 1/6 - ...: the large term r stays exact. */
    if (!full) {
        return r - (r * z) * p;
    }
    return r + ((t - (0.5 * z) * t) - (r * z) * p);
}

EW_VM_FN double ew_vm_cos_poly(double r, double t, int full)
{
    EW_VM_NOFMA
    const double z = r * r;
    double p = -1.0 / 479001600.0;
    if (full) {
        p = 1.0 / 6402373705728000.0;
        p = p * z - 1.0 / 20922789888000.0;
        p = p * z + 1.0 / 87178291200.0;
        p = p * z - 1.0 / 479001600.0;
    }
    p = p * z + 1.0 / 3628800.0;
    p = p * z - 1.0 / 40320.0;
    p = p * z + 1.0 / 720.0;
    p = p * z - 1.0 / 24.0;
    /* 1 - z/2 + z^2 (1/24 - ...) - t r: w = 1 - z/2 rounded, and what that
     * rounding lost added back with the small terms. */
    const double hz = 0.5 * z;
    const double w = 1.0 - hz;
    if (!full) {
        return w + (((1.0 - w) - hz) - (z * z) * p);
    }
    return w + ((((1.0 - w) - hz) - (z * z) * p) - t * r);
}

/* sin (cos_wanted 0) or cos (1) of x, |x| <= EW_VM_TRIG_MAX. */
EW_VM_FN double ew_vm_sincos(double x, int cos_wanted, int full)
{
    EW_VM_NOFMA
    uint64_t q;
    double t;
    const double r = ew_vm_reduce(x, &t, &q, full);
    const double s = ew_vm_sin_poly(r, t, full);
    const double c = ew_vm_cos_poly(r, t, full);
    /* sin(r + k pi/2) is sin r, cos r, -sin r, -cos r for k = 0, 1, 2, 3 (mod 4),
     * and cos(y) = sin(y + pi/2). */
    q += (uint64_t)cos_wanted;
    const double v = (q & 1) ? c : s;
    const double y = (q & 2) ? -v : v;
    /* sin(-0) is -0, which the sums above turn into +0. */
    return x == 0.0 ? (cos_wanted ? 1.0 : x) : y;
}

EW_VM_FN double ew_vm_sin(double x)
{
    return ew_vm_sincos(x, 0, 1);
}

EW_VM_FN double ew_vm_cos(double x)
{
    return ew_vm_sincos(x, 1, 1);
}

#endif /* TSR_KERNELS_CPU_EW_VMATH_H */
