/* Per-element semantics of the array kernels (kernel_args.h) on CUDA: element
 * types, conversions, the ops of the fused program, the generators, and the
 * folds and merges of reductions. Every function is __host__ __device__ inline,
 * so the same code runs in the kernels and, built by a plain C++ compiler, in
 * their host emulation (tests/cuda/ew_emulation_test.cc), which checks it
 * against the CPU kernels.
 *
 * A value travels as a raw 64-bit word holding the element's bytes at its low
 * end (ew_raw); an op reads it back as its operand type. The semantics are those
 * of kernels/cpu/ew_cpu.c and ew_types.h: wrapping integer arithmetic,
 * saturating float-to-integer casts (NaN gives 0), NaN-propagating min and max,
 * integer pow by squaring, bools always 0 or 1 (loads normalise any nonzero
 * byte to 1, arithmetic on bools is logic).
 * Type x op variants are templates over the dtype, instantiated from the lists
 * below. C++17 (if constexpr); nothing that needs the C++ runtime library. */
#ifndef TSR_KERNELS_CUDA_EW_EVAL_CUH
#define TSR_KERNELS_CUDA_EW_EVAL_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <tessera/config.h>

#include <type_traits>

#include "kernels/cpu/ew_gen.h"
#include "kernels/cpu/ew_ipow.h"
#include "kernels/kernel_args.h"

/* __host__ __device__ under nvcc, nothing for a host compiler; the unrolling
 * hints only in device code (a host compiler would warn about them). */
#ifdef __CUDACC__
#define TSR_HD __host__ __device__
#define TSR_HDI __host__ __device__ __forceinline__
#else
#define TSR_HD
#define TSR_HDI inline
#endif
#ifdef __CUDA_ARCH__
#define TSR_UNROLL _Pragma("unroll")
#define TSR_NO_UNROLL _Pragma("unroll 1")
#else
#define TSR_UNROLL
#define TSR_NO_UNROLL
#endif

namespace tsr_ew {

typedef uint64_t ew_raw;

/* ---- element types ---------------------------------------------------------------- */

/* X(dtype, C type, is_float, lowest, highest) */
#define TSR_EW_DTYPES(X)                               \
    X(TSR_BOOL, uint8_t, false, 0, 1)                  \
    X(TSR_UINT8, uint8_t, false, 0, UINT8_MAX)         \
    X(TSR_UINT16, uint16_t, false, 0, UINT16_MAX)      \
    X(TSR_INT32, int32_t, false, INT32_MIN, INT32_MAX) \
    X(TSR_INT64, int64_t, false, INT64_MIN, INT64_MAX) \
    X(TSR_FLOAT32, float, true, 0, 0)                  \
    X(TSR_FLOAT64, double, true, 0, 0)

template <int DT>
struct dt;
#define TSR_EW_TRAIT(E, CT, F, LO, HI)      \
    template <>                             \
    struct dt<E> {                          \
        typedef CT T;                       \
        static constexpr bool is_float = F; \
        static constexpr int64_t lo = LO;   \
        static constexpr int64_t hi = HI;   \
    };
TSR_EW_DTYPES(TSR_EW_TRAIT)
#undef TSR_EW_TRAIT

/* Bytes per element of a dtype (tsr_dtype_size, usable on the device). */
TSR_HDI int dtype_bytes(int type)
{
    return type == TSR_UINT16                         ? 2
           : type == TSR_INT32 || type == TSR_FLOAT32 ? 4
           : type >= TSR_INT64                        ? 8
                                                      : 1;
}

template <class T>
TSR_HDI T raw_get(ew_raw r)
{
    T v;
    memcpy(&v, &r, sizeof(T));
    return v;
}

template <class T>
TSR_HDI ew_raw raw_put(T v)
{
    ew_raw r = 0;
    memcpy(&r, &v, sizeof(T));
    return r;
}

template <class T>
TSR_HDI bool is_nan(T x)
{
    return x != x; /* false for integers, folded away */
}

/* ---- conversions ------------------------------------------------------------------ */

/* From double: NaN gives 0, values beyond the range saturate; to bool, nonzero
 * (NaN included) is true. (double)INT64_MAX rounds up to 2^63: hence >=. */
template <int DT>
TSR_HDI typename dt<DT>::T from_f(double x)
{
    typedef typename dt<DT>::T T;
    if constexpr (DT == TSR_BOOL) {
        return (T)(x != 0);
    } else if constexpr (dt<DT>::is_float) {
        return (T)x;
    } else {
        return x != x                    ? (T)0
               : x <= (double)dt<DT>::lo ? (T)dt<DT>::lo
               : x >= (double)dt<DT>::hi ? (T)dt<DT>::hi
                                         : (T)x;
    }
}

/* From an integer (as int64): wraps modulo the width. */
template <int DT>
TSR_HDI typename dt<DT>::T from_i(int64_t x)
{
    typedef typename dt<DT>::T T;
    if constexpr (DT == TSR_BOOL) {
        return (T)(x != 0);
    } else {
        return (T)x;
    }
}

template <int FROM, int TO>
TSR_HDI ew_raw cast(ew_raw r)
{
    typename dt<FROM>::T v = raw_get<typename dt<FROM>::T>(r);
    if constexpr (dt<FROM>::is_float) {
        return raw_put(from_f<TO>((double)v));
    } else {
        return raw_put(from_i<TO>((int64_t)v));
    }
}

/* ---- the ops of the program -------------------------------------------------------- */

/* The libm functions by precision (CUDA's device versions in kernels). */
TSR_HDI float m_abs(float x)
{
    return fabsf(x);
}
TSR_HDI double m_abs(double x)
{
    return fabs(x);
}
TSR_HDI float m_sqrt(float x)
{
    return sqrtf(x);
}
TSR_HDI double m_sqrt(double x)
{
    return sqrt(x);
}
/* exp, log, sin and cos are ew_vmath.h's, as on the CPU, so that they give the
 * same bits on both (sines and cosines of |x| > EW_VM_TRIG_MAX aside: those come
 * from the platform's library on each side). */
TSR_HDI float m_exp(float x)
{
    return (float)ew_vm_exp_prec(x, 0);
}
TSR_HDI double m_exp(double x)
{
    return ew_vm_exp(x);
}
TSR_HDI float m_log(float x)
{
    return (float)ew_vm_log_prec(x, 0);
}
TSR_HDI double m_log(double x)
{
    return ew_vm_log(x);
}
TSR_HDI float m_sin(float x)
{
    return fabsf(x) <= (float)EW_VM_TRIG_MAX ? (float)ew_vm_sincos(x, 0, 0) : sinf(x);
}
TSR_HDI double m_sin(double x)
{
    return fabs(x) <= EW_VM_TRIG_MAX ? ew_vm_sincos(x, 0, 1) : sin(x);
}
TSR_HDI float m_cos(float x)
{
    return fabsf(x) <= (float)EW_VM_TRIG_MAX ? (float)ew_vm_sincos(x, 1, 0) : cosf(x);
}
TSR_HDI double m_cos(double x)
{
    return fabs(x) <= EW_VM_TRIG_MAX ? ew_vm_sincos(x, 1, 1) : cos(x);
}
TSR_HDI float m_pow(float x, float y)
{
    return powf(x, y);
}
TSR_HDI double m_pow(double x, double y)
{
    return pow(x, y);
}

/* Integer arithmetic wraps: it is done on uint64_t, whose low bits are right for
 * every narrower type (and which, unlike uint16_t promoted to int, never
 * overflows a signed type); floats use their own arithmetic. */
template <int DT>
struct wrap {
    typedef typename std::conditional<dt<DT>::is_float, typename dt<DT>::T, uint64_t>::type W;
};

/* Whether OP on bools is logic (bool_op2) rather than the generic code. */
template <int OP>
struct op_is_bool_logic {
    static constexpr bool value = OP == TSR_EW_ADD || OP == TSR_EW_SUB || OP == TSR_EW_MUL ||
                                  OP == TSR_EW_POW || OP == TSR_EW_MIN || OP == TSR_EW_MAX;
};

/* Arithmetic on bools as NumPy's, on truth values, so that the result is 0 or
 * 1: + and max are or, * and min are and, x ** y is x or not y, and - (which
 * NumPy refuses) is xor, as it once was. */
template <int OP>
TSR_HDI uint8_t bool_op2(bool x, bool y)
{
    return OP == TSR_EW_ADD || OP == TSR_EW_MAX   ? (uint8_t)(x || y)
           : OP == TSR_EW_MUL || OP == TSR_EW_MIN ? (uint8_t)(x && y)
           : OP == TSR_EW_SUB                     ? (uint8_t)(x != y)
                                                  : (uint8_t)(x || !y);
}

/* Binary ops and comparisons on operands of type DT. */
template <int OP, int DT>
TSR_HDI ew_raw op2(ew_raw ra, ew_raw rb)
{
    typedef typename dt<DT>::T T;
    typedef typename wrap<DT>::W W;
    const T x = raw_get<T>(ra);
    const T y = raw_get<T>(rb);

    if constexpr (DT == TSR_BOOL && op_is_bool_logic<OP>::value) {
        return raw_put<uint8_t>(bool_op2<OP>(x != 0, y != 0));
    } else if constexpr (OP == TSR_EW_ADD) {
        return raw_put((T)((W)x + (W)y));
    } else if constexpr (OP == TSR_EW_SUB) {
        return raw_put((T)((W)x - (W)y));
    } else if constexpr (OP == TSR_EW_MUL) {
        return raw_put((T)((W)x * (W)y));
    } else if constexpr (OP == TSR_EW_DIV) {
        return raw_put(x / y);
    } else if constexpr (OP == TSR_EW_POW && dt<DT>::is_float) {
        return raw_put(m_pow(x, y));
    } else if constexpr (OP == TSR_EW_POW) {
        return raw_put((T)ipow64((int64_t)x, (int64_t)y));
    } else if constexpr (OP == TSR_EW_MIN) {
        return raw_put((x < y || is_nan(x)) ? x : y);
    } else if constexpr (OP == TSR_EW_MAX) {
        return raw_put((x > y || is_nan(x)) ? x : y);
    } else if constexpr (OP == TSR_EW_LT) {
        return raw_put<uint8_t>(x < y);
    } else if constexpr (OP == TSR_EW_LE) {
        return raw_put<uint8_t>(x <= y);
    } else if constexpr (OP == TSR_EW_GT) {
        return raw_put<uint8_t>(x > y);
    } else if constexpr (OP == TSR_EW_GE) {
        return raw_put<uint8_t>(x >= y);
    } else if constexpr (OP == TSR_EW_EQ) {
        return raw_put<uint8_t>(x == y);
    } else {
        static_assert(OP == TSR_EW_NE, "not a binary op");
        return raw_put<uint8_t>(x != y);
    }
}

/* Unary ops on type DT (SQRT and below: float types only). */
template <int OP, int DT>
TSR_HDI ew_raw op1(ew_raw ra)
{
    typedef typename dt<DT>::T T;
    typedef typename wrap<DT>::W W;
    const T x = raw_get<T>(ra);

    if constexpr (DT == TSR_BOOL && (OP == TSR_EW_NEG || OP == TSR_EW_ABS)) {
        return raw_put<uint8_t>(x != 0); /* -True is True, as -1 cast to bool */
    } else if constexpr (OP == TSR_EW_NEG) {
        return raw_put((T)(-(W)x));
    } else if constexpr (OP == TSR_EW_ABS && dt<DT>::is_float) {
        return raw_put(m_abs(x));
    } else if constexpr (OP == TSR_EW_ABS && dt<DT>::lo < 0) {
        return raw_put(x < 0 ? (T)(-(W)x) : x);
    } else if constexpr (OP == TSR_EW_ABS) {
        return raw_put(x);
    } else if constexpr (OP == TSR_EW_SQRT) {
        return raw_put(m_sqrt(x));
    } else if constexpr (OP == TSR_EW_EXP) {
        return raw_put(m_exp(x));
    } else if constexpr (OP == TSR_EW_LOG) {
        return raw_put(m_log(x));
    } else if constexpr (OP == TSR_EW_SIN) {
        return raw_put(m_sin(x));
    } else {
        static_assert(OP == TSR_EW_COS, "not a unary op");
        return raw_put(m_cos(x));
    }
}

/* Ops costly enough that the kernels do not unroll them over a group. */
template <int OP>
struct op_is_heavy {
    static constexpr bool value = OP == TSR_EW_POW || OP == TSR_EW_EXP || OP == TSR_EW_LOG ||
                                  OP == TSR_EW_SIN || OP == TSR_EW_COS;
};

/* ---- generators: counter-based, a value depends only on (seed, global index) ------- */

/* The generators are kernels/cpu/ew_gen.h's, shared with the CPU kernel: their
 * products and sums are rounded one by one (never fused into an FMA), so that
 * ARANGE and UNIFORM values are bit-identical; NORMAL uses each platform's log
 * and cos. */

/* The key of a leaf's seed, computed once per program. */
TSR_HDI uint64_t gen_key(uint64_t seed)
{
    return ew_gen_key(seed);
}

/* The value of generator `kind` at global index `index`, as a double. */
TSR_HDI double gen_value(int kind, double p0, double p1, uint64_t key, int64_t index)
{
    if (kind == TSR_LEAF_ARANGE) {
        return ew_gen_arange(p0, p1, index);
    }
    if (kind == TSR_LEAF_UNIFORM) {
        return ew_gen_uniform(p0, p1, key, index);
    }
    return ew_gen_normal(p0, p1, key, index);
}

/* ---- reductions ----------------------------------------------------------------------- */

/* An accumulator in the byte layout of a partial element (kernel_args.h): one
 * word for SUM/PROD (int64 or double) and MIN/MAX (the value), (count, mean, M2)
 * doubles for MOMENTS, (value, index) for ARGMIN/ARGMAX (tsr_red_arg_t). */
struct ew_acc {
    ew_raw w[3];
};

/* Bytes of a partial element of `red` over values (or accumulators) of `type`. */
TSR_HDI int acc_bytes(int red, int type)
{
    if (red == TSR_RED_ARGMIN || red == TSR_RED_ARGMAX) {
        return 16;
    }
    if (red == TSR_RED_MOMENTS) {
        return 24;
    }
    return red == TSR_RED_SUM || red == TSR_RED_PROD ? 8 : dtype_bytes(type);
}

/* The identity of MIN (or MAX) over DT: +inf (-inf), saturated to an integer
 * type's range, 1 (0) for bool. */
template <int DT, bool IS_MIN>
TSR_HDI ew_raw extreme_init()
{
    if constexpr (DT == TSR_BOOL) {
        return IS_MIN ? 1 : 0;
    } else if constexpr (dt<DT>::is_float) {
        return raw_put(from_f<DT>(IS_MIN ? (double)INFINITY : -(double)INFINITY));
    } else {
        return raw_put(from_f<DT>(IS_MIN ? (double)INT64_MAX : (double)INT64_MIN));
    }
}

/* The identity of each fold, as the CPU kernel's. An ARGMIN/ARGMAX partial
 * starts at MIN's (MAX's) identity with index INT64_MAX, which any element
 * beats, by value or by index on a tie (bools being 0 or 1). */
template <int RED, int DT>
TSR_HDI ew_acc acc_init()
{
    ew_acc a = {{0, 0, 0}};
    if constexpr (RED == TSR_RED_PROD) {
        a.w[0] = dt<DT>::is_float ? raw_put(1.0) : raw_put((int64_t)1);
    } else if constexpr (RED == TSR_RED_MIN || RED == TSR_RED_MAX) {
        a.w[0] = extreme_init<DT, RED == TSR_RED_MIN>();
    } else if constexpr (RED == TSR_RED_ARGMIN || RED == TSR_RED_ARGMAX) {
        a.w[0] = extreme_init<DT, RED == TSR_RED_ARGMIN>();
        a.w[1] = raw_put((int64_t)INT64_MAX);
    }
    return a;
}

/* Whether (x, i) beats (y, j) for ARGMIN (or ARGMAX): a NaN beats any number,
 * then the smaller (larger) value, then, for equal values or two NaNs, the
 * smaller index. */
template <int RED, class T>
TSR_HDI bool arg_beats(T x, int64_t i, T y, int64_t j)
{
    if (is_nan(x) || is_nan(y)) {
        return is_nan(x) && (!is_nan(y) || i < j);
    }
    if (x == y) {
        return i < j;
    }
    return RED == TSR_RED_ARGMIN ? x < y : x > y;
}

/* Chan et al.'s merge of two (count, mean, M2) summaries, as the CPU kernel. */
TSR_HDI void moments_merge(ew_acc &a, double n, double mean, double m2)
{
    double a0 = raw_get<double>(a.w[0]);
    double a1 = raw_get<double>(a.w[1]);
    double a2 = raw_get<double>(a.w[2]);
    double total = a0 + n;
    double d;

    if (n == 0) {
        return;
    }
    d = mean - a1;
    a1 += d * n / total;
    a2 += m2 + d * d * a0 * n / total;
    a.w[0] = raw_put(total);
    a.w[1] = raw_put(a1);
    a.w[2] = raw_put(a2);
}

/* Fold one value `v` (of type DT) with index `idx` into `a`. */
template <int RED, int DT>
TSR_HDI void fold_one(ew_acc &a, ew_raw v, int64_t idx)
{
    typedef typename dt<DT>::T T;
    const T x = raw_get<T>(v);

    if constexpr (RED == TSR_RED_SUM || RED == TSR_RED_PROD) {
        if constexpr (dt<DT>::is_float) {
            double s = raw_get<double>(a.w[0]);
            a.w[0] = raw_put(RED == TSR_RED_SUM ? s + (double)x : s * (double)x);
        } else {
            uint64_t s = a.w[0];
            uint64_t y = (uint64_t)(int64_t)x;
            a.w[0] = RED == TSR_RED_SUM ? s + y : s * y;
        }
    } else if constexpr (RED == TSR_RED_MIN || RED == TSR_RED_MAX) {
        const T cur = raw_get<T>(a.w[0]);
        const bool better = RED == TSR_RED_MIN ? x < cur : x > cur;
        a.w[0] = raw_put((better || is_nan(x)) ? x : cur);
    } else if constexpr (RED == TSR_RED_MOMENTS) {
        /* Welford's update, as the CPU kernel folds elements one by one. */
        double xd = (double)x;
        double c = raw_get<double>(a.w[0]) + 1;
        double mean = raw_get<double>(a.w[1]);
        double d = xd - mean;
        mean += d / c;
        a.w[0] = raw_put(c);
        a.w[1] = raw_put(mean);
        a.w[2] = raw_put(raw_get<double>(a.w[2]) + d * (xd - mean));
    } else {
        if (arg_beats<RED>(x, idx, raw_get<T>(a.w[0]), raw_get<int64_t>(a.w[1]))) {
            a.w[0] = raw_put(x);
            a.w[1] = raw_put(idx);
        }
    }
}

/* Fold the `n` values of a group (all into `a`). MOMENTS summarises the group
 * first (mean, then M2 about it) and merges, as the CPU kernel does a block. */
template <int RED, int DT, int E>
TSR_HDI void fold_group(ew_acc &a, const ew_raw *v, const int64_t *idx, int n)
{
    typedef typename dt<DT>::T T;
    if constexpr (RED == TSR_RED_MOMENTS) {
        double s = 0;
        double m2 = 0;
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            s += k < n ? (double)raw_get<T>(v[k]) : 0.0;
        }
        const double mean = s / (double)n;
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            double d = (double)raw_get<T>(v[k]) - mean;
            m2 += k < n ? d * d : 0.0;
        }
        moments_merge(a, (double)n, mean, m2);
    } else {
        TSR_UNROLL
        for (int k = 0; k < E; k++) {
            if (k < n) {
                fold_one<RED, DT>(a, v[k], idx != nullptr ? idx[k] : 0);
            }
        }
    }
}

/* Merge accumulator `b` into `a`. DT is the value type, or for SUM and PROD
 * equally the accumulator type (only whether it is a float matters). */
template <int RED, int DT>
TSR_HDI void merge(ew_acc &a, const ew_acc &b)
{
    if constexpr (RED == TSR_RED_SUM || RED == TSR_RED_PROD) {
        if constexpr (dt<DT>::is_float) {
            double x = raw_get<double>(a.w[0]);
            double y = raw_get<double>(b.w[0]);
            a.w[0] = raw_put(RED == TSR_RED_SUM ? x + y : x * y);
        } else {
            a.w[0] = RED == TSR_RED_SUM ? a.w[0] + b.w[0] : a.w[0] * b.w[0];
        }
    } else if constexpr (RED == TSR_RED_MOMENTS) {
        moments_merge(a, raw_get<double>(b.w[0]), raw_get<double>(b.w[1]), raw_get<double>(b.w[2]));
    } else if constexpr (RED == TSR_RED_MIN || RED == TSR_RED_MAX) {
        fold_one<RED, DT>(a, b.w[0], 0);
    } else {
        fold_one<RED, DT>(a, b.w[0], raw_get<int64_t>(b.w[1]));
    }
}

/* ---- dispatch from run-time (red, dtype) to the templates ---------------------------- */

#define TSR_EW_DT_LIST(X, ...)  \
    X(__VA_ARGS__, TSR_BOOL)    \
    X(__VA_ARGS__, TSR_UINT8)   \
    X(__VA_ARGS__, TSR_UINT16)  \
    X(__VA_ARGS__, TSR_INT32)   \
    X(__VA_ARGS__, TSR_INT64)   \
    X(__VA_ARGS__, TSR_FLOAT32) \
    X(__VA_ARGS__, TSR_FLOAT64)
/* The same list again, for lists of pairs (a macro does not expand in its own expansion). */
#define TSR_EW_DT_LIST2(X, ...) \
    X(__VA_ARGS__, TSR_BOOL)    \
    X(__VA_ARGS__, TSR_UINT8)   \
    X(__VA_ARGS__, TSR_UINT16)  \
    X(__VA_ARGS__, TSR_INT32)   \
    X(__VA_ARGS__, TSR_INT64)   \
    X(__VA_ARGS__, TSR_FLOAT32) \
    X(__VA_ARGS__, TSR_FLOAT64)
#define TSR_EW_RED_DT_LIST(X)          \
    TSR_EW_DT_LIST(X, TSR_RED_SUM)     \
    TSR_EW_DT_LIST(X, TSR_RED_PROD)    \
    TSR_EW_DT_LIST(X, TSR_RED_MIN)     \
    TSR_EW_DT_LIST(X, TSR_RED_MAX)     \
    TSR_EW_DT_LIST(X, TSR_RED_MOMENTS) \
    TSR_EW_DT_LIST(X, TSR_RED_ARGMIN)  \
    TSR_EW_DT_LIST(X, TSR_RED_ARGMAX)
#define TSR_EW_RED_DT(RED, DT) ((RED)*8 + (DT))

TSR_HDI ew_acc acc_init(int red, int type)
{
    switch (TSR_EW_RED_DT(red, type)) {
#define TSR_EW_CASE(RED, DT)     \
    case TSR_EW_RED_DT(RED, DT): \
        return acc_init<RED, DT>();
        TSR_EW_RED_DT_LIST(TSR_EW_CASE)
#undef TSR_EW_CASE
    default:
        return ew_acc{{0, 0, 0}};
    }
}

template <int E>
TSR_HDI void fold_group(int red, int type, ew_acc &a, const ew_raw *v, const int64_t *idx, int n)
{
    switch (TSR_EW_RED_DT(red, type)) {
#define TSR_EW_CASE(RED, DT)                  \
    case TSR_EW_RED_DT(RED, DT):              \
        fold_group<RED, DT, E>(a, v, idx, n); \
        break;
        TSR_EW_RED_DT_LIST(TSR_EW_CASE)
#undef TSR_EW_CASE
    default:
        break;
    }
}

/* Fold value k of a group into accumulator k, for k < n. */
template <int E>
TSR_HDI void fold_each(int red, int type, ew_acc *a, const ew_raw *v, const int64_t *idx, int n)
{
    switch (TSR_EW_RED_DT(red, type)) {
#define TSR_EW_CASE(RED, DT)                                                \
    case TSR_EW_RED_DT(RED, DT):                                            \
        TSR_UNROLL for (int k = 0; k < E; k++)                              \
        {                                                                   \
            if (k < n) {                                                    \
                fold_one<RED, DT>(a[k], v[k], idx != nullptr ? idx[k] : 0); \
            }                                                               \
        }                                                                   \
        break;
        TSR_EW_RED_DT_LIST(TSR_EW_CASE)
#undef TSR_EW_CASE
    default:
        break;
    }
}

TSR_HDI void merge(int red, int type, ew_acc &a, const ew_acc &b)
{
    switch (TSR_EW_RED_DT(red, type)) {
#define TSR_EW_CASE(RED, DT)     \
    case TSR_EW_RED_DT(RED, DT): \
        merge<RED, DT>(a, b);    \
        break;
        TSR_EW_RED_DT_LIST(TSR_EW_CASE)
#undef TSR_EW_CASE
    default:
        break;
    }
}

/* Loads and stores of naturally aligned values (typed on the device, where a
 * memcpy of unknown alignment would go byte by byte). */
template <int BYTES>
struct uint_of;
template <>
struct uint_of<1> {
    typedef uint8_t T;
};
template <>
struct uint_of<2> {
    typedef uint16_t T;
};
template <>
struct uint_of<4> {
    typedef uint32_t T;
};
template <>
struct uint_of<8> {
    typedef uint64_t T;
};

template <class T>
TSR_HDI T ld(const char *p)
{
#ifdef __CUDA_ARCH__
    return *reinterpret_cast<const T *>(p);
#else
    T v;
    memcpy(&v, p, sizeof(T));
    return v;
#endif
}

template <class T>
TSR_HDI void st(char *p, T v)
{
#ifdef __CUDA_ARCH__
    *reinterpret_cast<T *>(p) = v;
#else
    memcpy(p, &v, sizeof(T));
#endif
}

template <int ES>
TSR_HDI ew_raw ld_raw(const char *p)
{
    return (ew_raw)ld<typename uint_of<ES>::T>(p);
}

template <int ES>
TSR_HDI void st_raw(char *p, ew_raw v)
{
    st<typename uint_of<ES>::T>(p, (typename uint_of<ES>::T)v);
}

/* A partial element in memory <-> an accumulator. */
TSR_HDI ew_acc acc_load(int red, int type, const char *p)
{
    ew_acc a = {{0, 0, 0}};
    switch (acc_bytes(red, type)) {
    case 1:
        a.w[0] = ld_raw<1>(p);
        break;
    case 2:
        a.w[0] = ld_raw<2>(p);
        break;
    case 4:
        a.w[0] = ld_raw<4>(p);
        break;
    default: /* 8, 16 or 24 */
        a.w[0] = ld_raw<8>(p);
        if (acc_bytes(red, type) > 8) {
            a.w[1] = ld_raw<8>(p + 8);
        }
        if (acc_bytes(red, type) > 16) {
            a.w[2] = ld_raw<8>(p + 16);
        }
        break;
    }
    return a;
}

TSR_HDI void acc_store(int red, int type, char *p, const ew_acc &a)
{
    switch (acc_bytes(red, type)) {
    case 1:
        st_raw<1>(p, a.w[0]);
        break;
    case 2:
        st_raw<2>(p, a.w[0]);
        break;
    case 4:
        st_raw<4>(p, a.w[0]);
        break;
    default:
        st_raw<8>(p, a.w[0]);
        if (acc_bytes(red, type) > 8) {
            st_raw<8>(p + 8, a.w[1]);
        }
        if (acc_bytes(red, type) > 16) {
            st_raw<8>(p + 16, a.w[2]);
        }
        break;
    }
}

/* Store `v`, raw bits of `type`. */
TSR_HDI void store_rt(int type, char *p, ew_raw v)
{
    switch (dtype_bytes(type)) {
    case 1:
        st_raw<1>(p, v);
        break;
    case 2:
        st_raw<2>(p, v);
        break;
    case 4:
        st_raw<4>(p, v);
        break;
    default:
        st_raw<8>(p, v);
        break;
    }
}

/* Conversion between run-time dtypes (the CAST op with both types known only at
 * run time; used outside the hot loops). */
TSR_HDI ew_raw cast_rt(int from, int to, ew_raw v)
{
    switch (from * 8 + to) {
#define TSR_EW_CASE2(FROM, TO) \
    case (FROM)*8 + (TO):      \
        return cast<FROM, TO>(v);
#define TSR_EW_CASE(UNUSED, FROM) TSR_EW_DT_LIST2(TSR_EW_CASE2, FROM)
        TSR_EW_DT_LIST(TSR_EW_CASE, 0)
#undef TSR_EW_CASE
#undef TSR_EW_CASE2
    default:
        return 0;
    }
}

/* The final value of a combined accumulator `a` (see tsr_red_combine_arg_t),
 * as raw bits of out_type. */
TSR_HDI ew_raw finish(const tsr_red_combine_arg_t &c, const ew_acc &a)
{
    double v;
    if (c.fin == TSR_FIN_CAST) {
        if (c.red_op == TSR_RED_ARGMIN || c.red_op == TSR_RED_ARGMAX) {
            return cast_rt(TSR_INT64, c.out_type, a.w[1]);
        }
        return cast_rt(c.red_op == TSR_RED_MOMENTS ? TSR_FLOAT64 : c.acc_type, c.out_type, a.w[0]);
    }
    if (c.fin == TSR_FIN_MEAN) {
        v = raw_get<double>(cast_rt(c.acc_type, TSR_FLOAT64, a.w[0])) / c.count;
    } else {
        v = raw_get<double>(a.w[2]) / (raw_get<double>(a.w[0]) - c.ddof);
        v = c.fin == TSR_FIN_STD ? sqrt(v) : v;
    }
    return cast_rt(TSR_FLOAT64, c.out_type, raw_put(v));
}

/* The combine kernel's work on element k (tsr__combine_cpu's semantics): merge
 * the inputs in order, then store the partial or the final value. */
struct ew_combine {
    const char *in[TSR_MAX_BUFFERS];
    char *out;
    tsr_red_combine_arg_t arg;
};

TSR_HDI void combine_elem(const ew_combine &C, int64_t k)
{
    const int red = C.arg.red_op;
    const int at = C.arg.acc_type;
    const int64_t asz = acc_bytes(red, at);
    ew_acc a = acc_load(red, at, C.in[0] + k * asz);

    for (uint32_t i = 1; i < C.arg.n_in; i++) {
        merge(red, at, a, acc_load(red, at, C.in[i] + k * asz));
    }
    if (!C.arg.final) {
        acc_store(red, at, C.out + k * asz, a);
    } else {
        store_rt(C.arg.out_type, C.out + k * dtype_bytes(C.arg.out_type), finish(C.arg, a));
    }
}

}  // namespace tsr_ew

#endif /* TSR_KERNELS_CUDA_EW_EVAL_CUH */
