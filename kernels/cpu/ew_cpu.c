/* CPU implementation of the fused elementwise kernel (with an optional first
 * reduction stage) and of the reduction combine kernel; see kernel_args.h.
 *
 * The program runs on blocks of up to BLOCK elements along the innermost
 * dimension of the chunk, after dimensions that every leaf walks contiguously
 * have been merged. Each instruction is one loop over a block, small enough to
 * stay in L1, which the compiler vectorises; a leaf read with unit stride is
 * used in place, and the last instruction writes straight into the output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tessera/task.h>

#include "kernels/cpu/ew_types.h"
#include "kernels/impl.h"
#include "kernels/kernel_args.h"

#define BLOCK 512

/* The loops over a block are compiled twice, for the x86-64 baseline and for
 * AVX2, and the loader picks per machine. */
/* (Not under sanitizers: an instrumented ifunc resolver runs before their
 * runtime is up.) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&                             \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define EW_SIMD __attribute__((target_clones("avx2", "default")))
#else
#define EW_SIMD
#endif
#define SLOT_BYTES (BLOCK * 8)

typedef void (*ew_fn)(void *d, const void *a, const void *b, const void *c, int64_t n);
typedef void (*cast_fn)(void *d, const void *a, int64_t n);

/* NaN test that compiles to nothing for integer types (F is the is_float flag). */
#define ISNAN_0(x) 0
#define ISNAN_1(x) ((x) != (x))

/* ---- op templates ----------------------------------------------------------------- */

/* A binary op on operands of type T giving type R (T, or bool for comparisons). */
#define DEF_BIN_R(NAME, T, R, SFX, EXPR)                                                           \
    EW_SIMD static void NAME##_##SFX(void *d_, const void *a_, const void *b_, const void *c_,     \
                                     int64_t n)                                                    \
    {                                                                                              \
        R *restrict d = d_;                                                                        \
        const T *a = a_;                                                                           \
        const T *b = b_;                                                                           \
        (void)c_;                                                                                  \
        for (int64_t k = 0; k < n; k++) {                                                          \
            T x = a[k];                                                                            \
            T y = b[k];                                                                            \
            d[k] = (EXPR);                                                                         \
        }                                                                                          \
    }
#define DEF_BIN(NAME, T, UT, SFX, EXPR) DEF_BIN_R(NAME, T, T, SFX, EXPR)
#define DEF_CMP(NAME, T, SFX, OPR) DEF_BIN_R(NAME, T, uint8_t, SFX, x OPR y)
#define DEF_UN(NAME, T, UT, SFX, EXPR)                                                             \
    EW_SIMD static void NAME##_##SFX(void *d_, const void *a_, const void *b_, const void *c_, int64_t n)  \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *a = a_;                                                                           \
        (void)b_;                                                                                  \
        (void)c_;                                                                                  \
        for (int64_t k = 0; k < n; k++) {                                                          \
            T x = a[k];                                                                            \
            d[k] = (EXPR);                                                                         \
        }                                                                                          \
    }

/* Integer power by squaring, wrapping like NumPy (a product modulo 2^64 keeps the
 * low bits right for every narrower type). A negative exponent gives what
 * 1 / x^-e truncates to; NumPy refuses those. */
static int64_t ipow64(int64_t x, int64_t e)
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

#define INST_ALL(E, T, UT, SFX, F)                                                                 \
    DEF_BIN(add, T, UT, SFX, (T)((UT)x + (UT)y))                                                   \
    DEF_BIN(sub, T, UT, SFX, (T)((UT)x - (UT)y))                                                   \
    DEF_BIN(mul, T, UT, SFX, (T)((UT)x * (UT)y))                                                   \
    DEF_BIN(min, T, UT, SFX, (x < y || ISNAN_##F(x)) ? x : y)                                      \
    DEF_BIN(max, T, UT, SFX, (x > y || ISNAN_##F(x)) ? x : y)                                      \
    DEF_CMP(lt, T, SFX, <)                                                                         \
    DEF_CMP(le, T, SFX, <=)                                                                        \
    DEF_CMP(gt, T, SFX, >)                                                                         \
    DEF_CMP(ge, T, SFX, >=)                                                                        \
    DEF_CMP(eq, T, SFX, ==)                                                                        \
    DEF_CMP(ne, T, SFX, !=)                                                                        \
    DEF_UN(neg, T, UT, SFX, (T)(-(UT)x))                                                           \
    EW_SIMD static void where_##SFX(void *d_, const void *a_, const void *b_, const void *c_, int64_t n)   \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const uint8_t *a = a_;                                                                     \
        const T *b = b_;                                                                           \
        const T *c = c_;                                                                           \
        for (int64_t k = 0; k < n; k++) {                                                          \
            d[k] = a[k] ? b[k] : c[k];                                                             \
        }                                                                                          \
    }
EW_TYPES(INST_ALL)

DEF_UN(abs, uint8_t, uint8_t, b, x)
DEF_UN(abs, uint8_t, uint8_t, u8, x)
DEF_UN(abs, uint16_t, uint16_t, u16, x)
DEF_UN(abs, int32_t, uint32_t, i32, x < 0 ? (int32_t)(-(uint32_t)x) : x)
DEF_UN(abs, int64_t, uint64_t, i64, x < 0 ? (int64_t)(-(uint64_t)x) : x)
DEF_UN(abs, float, float, f32, fabsf(x))
DEF_UN(abs, double, double, f64, fabs(x))

#define INST_INT(E, T, UT, SFX, F) DEF_BIN(pow, T, UT, SFX, (T)ipow64((int64_t)x, (int64_t)y))
INST_INT(TSR_BOOL, uint8_t, uint8_t, b, 0)
INST_INT(TSR_UINT8, uint8_t, uint8_t, u8, 0)
INST_INT(TSR_UINT16, uint16_t, uint16_t, u16, 0)
INST_INT(TSR_INT32, int32_t, uint32_t, i32, 0)
INST_INT(TSR_INT64, int64_t, uint64_t, i64, 0)

#define INST_FLT(E, T, SFX, MS)                                                                    \
    DEF_BIN(div, T, T, SFX, x / y)                                                                 \
    DEF_BIN(pow, T, T, SFX, pow##MS(x, y))                                                         \
    DEF_UN(sqrt, T, T, SFX, sqrt##MS(x))                                                           \
    DEF_UN(exp, T, T, SFX, exp##MS(x))                                                             \
    DEF_UN(log, T, T, SFX, log##MS(x))                                                             \
    DEF_UN(sin, T, T, SFX, sin##MS(x))                                                             \
    DEF_UN(cos, T, T, SFX, cos##MS(x))
EW_FLOATS(INST_FLT)

#define ROW_ALL(name)                                                                              \
    {                                                                                              \
        name##_b, name##_u8, name##_u16, name##_i32, name##_i64, name##_f32, name##_f64            \
    }
#define ROW_FLT(name)                                                                              \
    {                                                                                              \
        NULL, NULL, NULL, NULL, NULL, name##_f32, name##_f64                                       \
    }

/* Indexed by op, then by operand type; NULL where the op is not defined. */
static const ew_fn k_ops[TSR_EW_N_OPS][TSR_N_DTYPES] = {
    [TSR_EW_ADD] = ROW_ALL(add),   [TSR_EW_SUB] = ROW_ALL(sub),   [TSR_EW_MUL] = ROW_ALL(mul),
    [TSR_EW_DIV] = ROW_FLT(div),   [TSR_EW_POW] = ROW_ALL(pow),   [TSR_EW_MIN] = ROW_ALL(min),
    [TSR_EW_MAX] = ROW_ALL(max),   [TSR_EW_LT] = ROW_ALL(lt),     [TSR_EW_LE] = ROW_ALL(le),
    [TSR_EW_GT] = ROW_ALL(gt),     [TSR_EW_GE] = ROW_ALL(ge),     [TSR_EW_EQ] = ROW_ALL(eq),
    [TSR_EW_NE] = ROW_ALL(ne),     [TSR_EW_WHERE] = ROW_ALL(where), [TSR_EW_NEG] = ROW_ALL(neg),
    [TSR_EW_ABS] = ROW_ALL(abs),   [TSR_EW_SQRT] = ROW_FLT(sqrt), [TSR_EW_EXP] = ROW_FLT(exp),
    [TSR_EW_LOG] = ROW_FLT(log),   [TSR_EW_SIN] = ROW_FLT(sin),   [TSR_EW_COS] = ROW_FLT(cos),
};

/* ---- casts: one template over every (from, to) pair --------------------------------- */

#define CONV_0(TSFX, x) ew_from_i_##TSFX((int64_t)(x))
#define CONV_1(TSFX, x) ew_from_f_##TSFX((double)(x))
#define DEF_CAST(T1, SFX1, F1, E2, T2, UT2, SFX2, F2)                                              \
    EW_SIMD static void cast_##SFX1##_##SFX2(void *d_, const void *a_, int64_t n)                          \
    {                                                                                              \
        T2 *restrict d = d_;                                                                       \
        const T1 *a = a_;                                                                          \
        for (int64_t k = 0; k < n; k++) {                                                          \
            d[k] = CONV_##F1(SFX2, a[k]);                                                          \
        }                                                                                          \
    }
#define DEF_CASTS_FROM(E, T, UT, SFX, F) EW_TYPES2(DEF_CAST, T, SFX, F)
EW_TYPES(DEF_CASTS_FROM)

#define CAST_ROW(S)                                                                                \
    {                                                                                              \
        cast_##S##_b, cast_##S##_u8, cast_##S##_u16, cast_##S##_i32, cast_##S##_i64,               \
            cast_##S##_f32, cast_##S##_f64                                                         \
    }
static const cast_fn k_cast[TSR_N_DTYPES][TSR_N_DTYPES] = {
    CAST_ROW(b),   CAST_ROW(u8),  CAST_ROW(u16), CAST_ROW(i32),
    CAST_ROW(i64), CAST_ROW(f32), CAST_ROW(f64),
};

/* ---- leaves ----------------------------------------------------------------------- */

EW_SIMD static void gather(void *dst, const char *src, int64_t stride, int64_t n, size_t esize)
{
    switch (esize) {
    case 1:
        for (int64_t k = 0; k < n; k++) {
            ((uint8_t *)dst)[k] = *(const uint8_t *)(src + k * stride);
        }
        break;
    case 2:
        for (int64_t k = 0; k < n; k++) {
            ((uint16_t *)dst)[k] = *(const uint16_t *)(src + k * stride * 2);
        }
        break;
    case 4:
        for (int64_t k = 0; k < n; k++) {
            ((uint32_t *)dst)[k] = *(const uint32_t *)(src + k * stride * 4);
        }
        break;
    default:
        for (int64_t k = 0; k < n; k++) {
            ((uint64_t *)dst)[k] = *(const uint64_t *)(src + k * stride * 8);
        }
        break;
    }
}

/* Counter-based random bits: a strong 64-bit mix of (seed, index), so a value
 * depends only on the seed and its global index. */
static inline uint64_t mix64(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ull;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z;
}

static inline double unit53(uint64_t bits) /* [0, 1) */
{
    return (double)(bits >> 11) * 0x1.0p-53;
}

EW_SIMD static void generate(void *dst, const tsr_ew_leaf_t *leaf, int64_t index, int64_t step, int64_t n)
{
    double v[BLOCK];
    uint64_t key = mix64(leaf->seed ^ 0x5851f42d4c957f2dull);

    switch (leaf->kind) {
    case TSR_LEAF_ARANGE:
        for (int64_t k = 0; k < n; k++) {
            v[k] = leaf->p0 + (double)(index + k * step) * leaf->p1;
        }
        break;
    case TSR_LEAF_UNIFORM:
        for (int64_t k = 0; k < n; k++) {
            uint64_t i = (uint64_t)(index + k * step);
            v[k] = leaf->p0 + (leaf->p1 - leaf->p0) * unit53(mix64(key + 0x9e3779b97f4a7c15ull * i));
        }
        break;
    default: /* TSR_LEAF_NORMAL: Box-Muller on two independent draws per index */
        for (int64_t k = 0; k < n; k++) {
            uint64_t i = (uint64_t)(index + k * step);
            double u1 = 1.0 - unit53(mix64(key + 0x9e3779b97f4a7c15ull * (2 * i)));
            double u2 = unit53(mix64(key + 0x9e3779b97f4a7c15ull * (2 * i + 1)));
            v[k] = leaf->p0 + leaf->p1 * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        }
        break;
    }
    k_cast[TSR_FLOAT64][leaf->type](dst, v, n);
}

/* ---- reductions ------------------------------------------------------------------- */

EW_SIMD static double hsum_f64(const double *x, int64_t n)
{
    double l[8] = {0};
    double s = 0;
    int64_t k = 0;

    for (; k + 8 <= n; k += 8) {
        for (int j = 0; j < 8; j++) {
            l[j] += x[k + j];
        }
    }
    for (; k < n; k++) {
        s += x[k];
    }
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])) + s;
}

static int64_t hsum_i64(const int64_t *x, int64_t n)
{
    uint64_t s = 0;
    for (int64_t k = 0; k < n; k++) {
        s += (uint64_t)x[k];
    }
    return (int64_t)s;
}

/* Fold `n` values (already of the accumulator type, doubles for MOMENTS) into
 * the partial `acc`: into acc[0] when `across` (the block lies along a reduced
 * dimension), else element by element into acc[0..n). */
#define DEF_FOLD_EXTREME(NAME, T, SFX, F, BETTER)                                                 \
    EW_SIMD static void NAME##_##SFX(void *acc_, const void *v_, int64_t n, int across)            \
    {                                                                                              \
        T *acc = acc_;                                                                             \
        const T *v = v_;                                                                           \
        if (across) {                                                                              \
            T a = acc[0];                                                                          \
            for (int64_t k = 0; k < n; k++) {                                                      \
                a = (v[k] BETTER a || ISNAN_##F(v[k])) ? v[k] : a;                                 \
            }                                                                                      \
            acc[0] = a;                                                                            \
        } else {                                                                                   \
            for (int64_t k = 0; k < n; k++) {                                                      \
                acc[k] = (v[k] BETTER acc[k] || ISNAN_##F(v[k])) ? v[k] : acc[k];                  \
            }                                                                                      \
        }                                                                                          \
    }
#define DEF_FOLD_MINMAX(E, T, UT, SFX, F)                                                          \
    DEF_FOLD_EXTREME(fold_min, T, SFX, F, <)                                                       \
    DEF_FOLD_EXTREME(fold_max, T, SFX, F, >)
EW_TYPES(DEF_FOLD_MINMAX)

typedef void (*fold_fn)(void *acc, const void *v, int64_t n, int across);
static const fold_fn k_fold_min[TSR_N_DTYPES] = ROW_ALL(fold_min);
static const fold_fn k_fold_max[TSR_N_DTYPES] = ROW_ALL(fold_max);

/* ARGMIN/ARGMAX: whether value v at index i beats the partial `a` (the rule of
 * tsr_red_arg_t), and the fold of values with their indices and the merge of
 * partials built on it. */
#define DEF_ARG_BEATS(NAME, T, SFX, F, BETTER)                                                     \
    static inline int NAME##_beats_##SFX(T v, int64_t i, const tsr_red_arg_t *a)                   \
    {                                                                                              \
        T cur;                                                                                     \
        memcpy(&cur, &a->v, sizeof(T));                                                            \
        if (ISNAN_##F(v)) {                                                                        \
            return !ISNAN_##F(cur) || i < a->index;                                                \
        }                                                                                          \
        return !ISNAN_##F(cur) && (v BETTER cur || (v == cur && i < a->index));                    \
    }                                                                                              \
    static void NAME##_##SFX(tsr_red_arg_t *acc, const void *v_, const int64_t *ix, int64_t n,     \
                             int across)                                                           \
    {                                                                                              \
        const T *v = v_;                                                                           \
        for (int64_t k = 0; k < n; k++) {                                                          \
            tsr_red_arg_t *a = &acc[across ? 0 : k];                                               \
            if (NAME##_beats_##SFX(v[k], ix[k], a)) {                                              \
                memcpy(&a->v, &v[k], sizeof(T));                                                   \
                a->index = ix[k];                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void NAME##_merge_##SFX(tsr_red_arg_t *acc, const tsr_red_arg_t *b, int64_t n)          \
    {                                                                                              \
        for (int64_t k = 0; k < n; k++) {                                                          \
            T bv;                                                                                  \
            memcpy(&bv, &b[k].v, sizeof(T));                                                       \
            if (NAME##_beats_##SFX(bv, b[k].index, &acc[k])) {                                     \
                acc[k] = b[k];                                                                     \
            }                                                                                      \
        }                                                                                          \
    }
#define DEF_FOLD_ARGS(E, T, UT, SFX, F)                                                            \
    DEF_ARG_BEATS(fold_argmin, T, SFX, F, <)                                                       \
    DEF_ARG_BEATS(fold_argmax, T, SFX, F, >)
EW_TYPES(DEF_FOLD_ARGS)

typedef void (*fold_arg_fn)(tsr_red_arg_t *acc, const void *v, const int64_t *ix, int64_t n,
                            int across);
typedef void (*merge_arg_fn)(tsr_red_arg_t *acc, const tsr_red_arg_t *b, int64_t n);
static const fold_arg_fn k_fold_argmin[TSR_N_DTYPES] = ROW_ALL(fold_argmin);
static const fold_arg_fn k_fold_argmax[TSR_N_DTYPES] = ROW_ALL(fold_argmax);
static const merge_arg_fn k_merge_argmin[TSR_N_DTYPES] = ROW_ALL(fold_argmin_merge);
static const merge_arg_fn k_merge_argmax[TSR_N_DTYPES] = ROW_ALL(fold_argmax_merge);

EW_SIMD static void fold_sum(void *acc_, const void *v_, int64_t n, int across, int is_float)
{
    if (is_float) {
        double *acc = acc_;
        const double *v = v_;
        if (across) {
            acc[0] += hsum_f64(v, n);
        } else {
            for (int64_t k = 0; k < n; k++) {
                acc[k] += v[k];
            }
        }
    } else {
        int64_t *acc = acc_;
        const int64_t *v = v_;
        if (across) {
            acc[0] = (int64_t)((uint64_t)acc[0] + (uint64_t)hsum_i64(v, n));
        } else {
            for (int64_t k = 0; k < n; k++) {
                acc[k] = (int64_t)((uint64_t)acc[k] + (uint64_t)v[k]);
            }
        }
    }
}

static void fold_prod(void *acc_, const void *v_, int64_t n, int across, int is_float)
{
    if (is_float) {
        double *acc = acc_;
        const double *v = v_;
        for (int64_t k = 0; k < n; k++) {
            acc[across ? 0 : k] *= v[k];
        }
    } else {
        int64_t *acc = acc_;
        const int64_t *v = v_;
        for (int64_t k = 0; k < n; k++) {
            acc[across ? 0 : k] = (int64_t)((uint64_t)acc[across ? 0 : k] * (uint64_t)v[k]);
        }
    }
}

/* Chan et al.'s merge of two (count, mean, M2) summaries. */
static void moments_merge(double *a, double n, double mean, double m2)
{
    double total = a[0] + n;
    double d;

    if (n == 0) {
        return;
    }
    d = mean - a[1];
    a[1] += d * n / total;
    a[2] += m2 + d * d * a[0] * n / total;
    a[0] = total;
}

EW_SIMD static void fold_moments(double *acc, const double *v, int64_t n, int across)
{
    if (across) {
        double mean = hsum_f64(v, n) / (double)n;
        double m2 = 0;
        for (int64_t k = 0; k < n; k++) {
            m2 += (v[k] - mean) * (v[k] - mean);
        }
        moments_merge(acc, (double)n, mean, m2);
    } else {
        for (int64_t k = 0; k < n; k++) {
            double *a = acc + 3 * k;
            double c = a[0] + 1;
            double d = v[k] - a[1];
            a[0] = c;
            a[1] += d / c;
            a[2] += d * (v[k] - a[1]);
        }
    }
}

static void acc_init(void *acc, tsr_red_op_t red, tsr_dtype_t type, int64_t n)
{
    switch (red) {
    case TSR_RED_SUM:
    case TSR_RED_MOMENTS:
        memset(acc, 0, (size_t)n * tsr_red_acc_size(red, type));
        return;
    case TSR_RED_PROD: {
        double one_f = 1;
        int64_t one_i = 1;
        for (int64_t k = 0; k < n; k++) {
            memcpy((char *)acc + 8 * k, type >= TSR_FLOAT32 ? (void *)&one_f : (void *)&one_i, 8);
        }
        return;
    }
    default: { /* MIN, MAX: +-inf for floats, the type's extreme otherwise; ARGMIN and
                  ARGMAX: the same with the largest index */
        int lowest = red == TSR_RED_MIN || red == TSR_RED_ARGMIN;
        double f = lowest ? INFINITY : -INFINITY;
        int64_t i = lowest ? INT64_MAX : INT64_MIN;
        char one[8];
        size_t es = tsr_dtype_size(type);
        if (red == TSR_RED_ARGMIN || red == TSR_RED_ARGMAX) {
            tsr_red_arg_t init;
            memset(&init, 0, sizeof(init));
            acc_init(&init.v, lowest ? TSR_RED_MIN : TSR_RED_MAX, type, 1);
            init.index = INT64_MAX;
            for (int64_t k = 0; k < n; k++) {
                ((tsr_red_arg_t *)acc)[k] = init;
            }
            return;
        }
        if (type == TSR_BOOL) {
            one[0] = lowest;
        } else if (type >= TSR_FLOAT32) {
            k_cast[TSR_FLOAT64][type](one, &f, 1);
        } else {
            /* Through double, saturating to the type's range. */
            double fi = (double)i;
            k_cast[TSR_FLOAT64][type](one, &fi, 1);
        }
        for (int64_t k = 0; k < n; k++) {
            memcpy((char *)acc + (size_t)k * es, one, es);
        }
        return;
    }
    }
}

/* ---- the fused kernel ------------------------------------------------------------- */

typedef struct {
    int m;                                  /* merged dimensions, >= 1 */
    int64_t n[TSR_MAX_DIMS];                /* their sizes */
    int64_t ls[TSR_EW_MAX_LEAVES][TSR_MAX_DIMS]; /* leaf strides */
    int64_t os[TSR_MAX_DIMS];               /* output (or partial) strides */
    int red[TSR_MAX_DIMS];                  /* reduced? */
} ew_dims_t;

/* Drop size-1 dimensions and merge neighbours that every leaf and the output walk
 * as one. */
static void collapse_dims(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves, ew_dims_t *g)
{
    int64_t os_full[TSR_MAX_DIMS];
    int64_t s = 1;
    int m = 0;

    for (int d = (int)h->ndim - 1; d >= 0; d--) {
        int red = h->red_op != TSR_RED_NONE && ((h->red_mask >> d) & 1u);
        os_full[d] = red ? 0 : s;
        s *= red ? 1 : h->shape[d];
    }
    for (uint32_t d = 0; d < h->ndim; d++) {
        if (h->shape[d] == 1) {
            continue;
        }
        g->n[m] = h->shape[d];
        g->os[m] = os_full[d];
        g->red[m] = h->red_op != TSR_RED_NONE && ((h->red_mask >> d) & 1u);
        for (uint32_t l = 0; l < h->n_leaves; l++) {
            g->ls[l][m] = leaves[l].stride[d];
        }
        m++;
    }
    if (m == 0) {
        g->n[0] = 1;
        g->os[0] = 0;
        g->red[0] = 0;
        for (uint32_t l = 0; l < h->n_leaves; l++) {
            g->ls[l][0] = 0;
        }
        m = 1;
    }
    for (int i = m - 1; i > 0; i--) {
        int ok = g->red[i - 1] == g->red[i] && g->os[i - 1] == g->os[i] * g->n[i];
        for (uint32_t l = 0; ok && l < h->n_leaves; l++) {
            ok = g->ls[l][i - 1] == g->ls[l][i] * g->n[i];
        }
        if (!ok) {
            continue;
        }
        g->n[i - 1] *= g->n[i];
        g->os[i - 1] = g->os[i];
        for (uint32_t l = 0; l < h->n_leaves; l++) {
            g->ls[l][i - 1] = g->ls[l][i];
        }
        for (int j = i; j < m - 1; j++) {
            g->n[j] = g->n[j + 1];
            g->os[j] = g->os[j + 1];
            g->red[j] = g->red[j + 1];
            for (uint32_t l = 0; l < h->n_leaves; l++) {
                g->ls[l][j] = g->ls[l][j + 1];
            }
        }
        m--;
    }
    g->m = m;
}

static int n_args(int32_t op)
{
    return op == TSR_EW_LOAD || op == TSR_EW_CONST ? 0
           : op == TSR_EW_WHERE                    ? 3
           : op == TSR_EW_CAST || op >= TSR_EW_NEG ? 1
                                                   : 2;
}

static tsr_dtype_t result_type(const tsr_ew_instr_t *in)
{
    if (in->op >= TSR_EW_LT && in->op <= TSR_EW_NE) {
        return TSR_BOOL;
    }
    return in->op == TSR_EW_CAST ? (tsr_dtype_t)in->aux : (tsr_dtype_t)in->type;
}

/* Checks the program so that a malformed blob fails the task instead of reading
 * out of bounds. */
static int program_valid(tsr_task_ctx_t *ctx, const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves,
                         const tsr_ew_instr_t *code, const tsr_buffer_t *bufs)
{
    if (h->magic != TSR_EW_MAGIC || h->ndim > TSR_MAX_DIMS || h->n_leaves > TSR_EW_MAX_LEAVES ||
        h->n_instr == 0 || h->n_instr > TSR_EW_MAX_INSTR || h->out_buf >= TSR_MAX_BUFFERS ||
        h->red_op < TSR_RED_NONE || h->red_op > TSR_RED_ARGMAX) {
        tsr_task_ctx_fail(ctx, "array kernel: malformed program header");
        return 0;
    }
    if ((h->red_op == TSR_RED_ARGMIN || h->red_op == TSR_RED_ARGMAX) &&
        (h->red_index + 1 >= h->n_instr || result_type(&code[h->red_index]) != TSR_INT64)) {
        tsr_task_ctx_fail(ctx, "array kernel: the index of an arg reduction is malformed");
        return 0;
    }
    for (uint32_t l = 0; l < h->n_leaves; l++) {
        if ((unsigned)leaves[l].type >= TSR_N_DTYPES ||
            (leaves[l].kind == TSR_LEAF_BUFFER &&
             ((unsigned)leaves[l].buf >= TSR_MAX_BUFFERS || bufs[leaves[l].buf].ptr == NULL))) {
            tsr_task_ctx_fail(ctx, "array kernel: leaf %u is malformed or its buffer is empty",
                              (unsigned)l);
            return 0;
        }
    }
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const tsr_ew_instr_t *in = &code[i];
        int ok = (unsigned)in->op < TSR_EW_N_OPS && (unsigned)in->type < TSR_N_DTYPES;
        int na = ok ? n_args(in->op) : 0;
        ok = ok && (na < 1 || (in->a >= 0 && (uint32_t)in->a < i));
        ok = ok && (na < 2 || (in->b >= 0 && (uint32_t)in->b < i));
        ok = ok && (na < 3 || (in->c >= 0 && (uint32_t)in->c < i));
        if (ok && in->op == TSR_EW_LOAD) {
            ok = (uint32_t)in->aux < h->n_leaves && leaves[in->aux].type == in->type;
        } else if (ok && in->op == TSR_EW_CAST) {
            ok = (unsigned)in->aux < TSR_N_DTYPES;
        } else if (ok && in->op != TSR_EW_CONST) {
            ok = k_ops[in->op][in->type] != NULL;
        }
        if (!ok) {
            tsr_task_ctx_fail(ctx, "array kernel: instruction %u (op %d on type %d) is malformed",
                              (unsigned)i, (int)in->op, (int)in->type);
            return 0;
        }
    }
    return 1;
}

static tsr_status_t out_buffer(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, uint32_t index,
                               size_t n_bytes, void **out)
{
    if (bufs[index].ptr != NULL && bufs[index].n_bytes == n_bytes) {
        *out = bufs[index].ptr; /* a registered buffer of the right size */
        return TSR_OK;
    }
    return tsr_task_ctx_alloc(ctx, index, n_bytes, out);
}

/* Everything a block needs, set up once per task. */
typedef struct {
    const tsr_ew_header_t *h;
    const tsr_ew_leaf_t *leaves;
    const tsr_ew_instr_t *code;
    const tsr_buffer_t *bufs;
    ew_dims_t g;
    int slot_of[TSR_EW_MAX_INSTR];
    char *slots;
    char *red_tmp;
    char *out;
    tsr_dtype_t vtype;
    tsr_dtype_t acc_type;
    size_t vsize;
    size_t acc_size;
} ew_run_t;

static char *slot_ptr(const ew_run_t *r, uint32_t i)
{
    int s = r->slot_of[i] >= 0 ? r->slot_of[i] : -r->slot_of[i] - 1;
    return r->slots + (size_t)s * SLOT_BYTES;
}

/* Run the program on elements j0 .. j0+n of the row at outer index idx. */
static void run_block(const ew_run_t *r, const int64_t *idx, int64_t j0, int64_t n)
{
    const tsr_ew_header_t *h = r->h;
    const int m = r->g.m;
    const void *val[TSR_EW_MAX_INSTR];
    int64_t obase = 0;
    char *direct;

    for (int d = 0; d < m - 1; d++) {
        obase += idx[d] * r->g.os[d];
    }
    direct = h->red_op == TSR_RED_NONE ? r->out + (size_t)(obase + j0) * r->vsize : NULL;
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const tsr_ew_instr_t *in = &r->code[i];
        void *dst = direct != NULL && i + 1 == h->n_instr ? direct : slot_ptr(r, i);

        switch (in->op) {
        case TSR_EW_LOAD: {
            const tsr_ew_leaf_t *lf = &r->leaves[in->aux];
            const int64_t *ls = r->g.ls[in->aux];
            int64_t st_in = ls[m - 1];
            int64_t at = lf->offset + j0 * st_in;
            size_t es = tsr_dtype_size((tsr_dtype_t)lf->type);
            for (int d = 0; d < m - 1; d++) {
                at += idx[d] * ls[d];
            }
            if (lf->kind != TSR_LEAF_BUFFER) {
                generate(dst, lf, at, st_in, n);
                val[i] = dst;
            } else if (st_in == 1 && dst != direct) {
                val[i] = (const char *)r->bufs[lf->buf].ptr + (size_t)at * es;
            } else {
                gather(dst, (const char *)r->bufs[lf->buf].ptr + (size_t)at * es, st_in, n, es);
                val[i] = dst;
            }
            break;
        }
        case TSR_EW_CONST:
            if (dst == direct) {
                memcpy(dst, slot_ptr(r, i), (size_t)n * r->vsize);
            }
            val[i] = dst == direct ? dst : slot_ptr(r, i);
            break;
        case TSR_EW_CAST:
            k_cast[in->type][in->aux](dst, val[in->a], n);
            val[i] = dst;
            break;
        default:
            k_ops[in->op][in->type](dst, val[in->a], n_args(in->op) > 1 ? val[in->b] : NULL,
                                    n_args(in->op) > 2 ? val[in->c] : NULL, n);
            val[i] = dst;
            break;
        }
    }
    if (h->red_op != TSR_RED_NONE) {
        const void *v = val[h->n_instr - 1];
        int across = r->g.red[m - 1];
        void *acc = r->out + (size_t)(obase + (across ? 0 : j0)) * r->acc_size;

        if (h->red_op != TSR_RED_MIN && h->red_op != TSR_RED_MAX && h->red_op != TSR_RED_ARGMIN &&
            h->red_op != TSR_RED_ARGMAX && r->vtype != r->acc_type) {
            k_cast[r->vtype][r->acc_type](r->red_tmp, v, n);
            v = r->red_tmp;
        }
        switch (h->red_op) {
        case TSR_RED_SUM:
            fold_sum(acc, v, n, across, r->acc_type == TSR_FLOAT64);
            break;
        case TSR_RED_PROD:
            fold_prod(acc, v, n, across, r->acc_type == TSR_FLOAT64);
            break;
        case TSR_RED_MIN:
            k_fold_min[r->vtype](acc, v, n, across);
            break;
        case TSR_RED_MAX:
            k_fold_max[r->vtype](acc, v, n, across);
            break;
        case TSR_RED_ARGMIN:
            k_fold_argmin[r->vtype](acc, v, val[h->red_index], n, across);
            break;
        case TSR_RED_ARGMAX:
            k_fold_argmax[r->vtype](acc, v, val[h->red_index], n, across);
            break;
        default:
            fold_moments(acc, v, n, across);
            break;
        }
    }
}

/* Whether a leaf reads across rows (|inner stride| > 1) while rows are adjacent
 * in it (stride 1 along the next dimension out): a transpose. Such a chunk runs
 * in tiles of TILE_ROWS rows by TILE_COLS columns, so that the cache lines a
 * gather touches for one row serve the next rows too. */
#define TILE_ROWS 32
#define TILE_COLS 128

static int wants_tiles(const ew_run_t *r)
{
    const int m = r->g.m;
    if (m < 2) {
        return 0;
    }
    for (uint32_t l = 0; l < r->h->n_leaves; l++) {
        const int64_t *ls = r->g.ls[l];
        if (r->leaves[l].kind == TSR_LEAF_BUFFER && (ls[m - 1] > 1 || ls[m - 1] < -1) &&
            (ls[m - 2] == 1 || ls[m - 2] == -1)) {
            return 1;
        }
    }
    return 0;
}

tsr_status_t tsr__ew_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const tsr_ew_header_t *h = arg;
    const tsr_ew_leaf_t *leaves = (const tsr_ew_leaf_t *)(h + 1);
    const tsr_ew_instr_t *code = (const tsr_ew_instr_t *)(leaves + h->n_leaves);
    ew_run_t r;
    int last_use[TSR_EW_MAX_INSTR];
    int free_slots[TSR_EW_MAX_INSTR + 2];
    int n_free = 0;
    int n_slots = 0;
    int64_t idx[TSR_MAX_DIMS] = {0};
    tsr_status_t st;

    if (!program_valid(ctx, h, leaves, code, bufs)) {
        return TSR_EINVAL;
    }
    memset(&r, 0, sizeof(r));
    r.h = h;
    r.leaves = leaves;
    r.code = code;
    r.bufs = bufs;
    r.vtype = result_type(&code[h->n_instr - 1]);
    r.vsize = tsr_dtype_size(r.vtype);
    r.acc_type = TSR_FLOAT64;
    r.acc_size = 8;
    if (h->red_op != TSR_RED_NONE) {
        r.acc_type = tsr_red_acc_type((tsr_red_op_t)h->red_op, r.vtype);
        r.acc_size = tsr_red_acc_size((tsr_red_op_t)h->red_op, r.vtype);
    }
    st = out_buffer(ctx, bufs, h->out_buf, (size_t)h->out_bytes, (void **)&r.out);
    if (st != TSR_OK) {
        return st;
    }
    collapse_dims(h, leaves, &r.g);

    /* Slots: value i lives in slot_of[i] until its last use, then the slot is
     * reused. A destination never shares a slot with its operands (the loops
     * are written for distinct arrays). One extra slot holds the accumulator-type
     * copy of a reduced block. */
    for (uint32_t i = 0; i < h->n_instr; i++) {
        last_use[i] = (int)i;
    }
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const tsr_ew_instr_t *in = &code[i];
        int args[3] = {in->a, in->b, in->c};
        for (int k = 0; k < n_args(in->op); k++) {
            last_use[args[k]] = (int)i;
        }
    }
    last_use[h->n_instr - 1] = (int)h->n_instr; /* the result outlives the program */
    if (h->red_op == TSR_RED_ARGMIN || h->red_op == TSR_RED_ARGMAX) {
        last_use[h->red_index] = (int)h->n_instr; /* so do the indices it is folded with */
    }
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const tsr_ew_instr_t *in = &code[i];
        int args[3] = {in->a, in->b, in->c};
        /* A constant is filled once, before the blocks: its slot is its own. */
        r.slot_of[i] = n_free > 0 && in->op != TSR_EW_CONST ? free_slots[--n_free] : n_slots++;
        for (int k = 0; k < n_args(in->op); k++) {
            int a = args[k];
            if (last_use[a] == (int)i && code[a].op != TSR_EW_CONST && r.slot_of[a] >= 0) {
                free_slots[n_free++] = r.slot_of[a];
                r.slot_of[a] = -r.slot_of[a] - 1; /* freed; stays readable during instr i */
            }
        }
    }
    n_slots += 1;
    r.slots = aligned_alloc(64, (size_t)n_slots * SLOT_BYTES);
    if (r.slots == NULL) {
        tsr_task_ctx_fail(ctx, "array kernel: out of memory for %d blocks", n_slots);
        return TSR_ENOMEM;
    }
    r.red_tmp = r.slots + (size_t)(n_slots - 1) * SLOT_BYTES;
    for (uint32_t i = 0; i < h->n_instr; i++) {
        if (code[i].op == TSR_EW_CONST) {
            if (code[i].type >= TSR_FLOAT32) {
                double v[BLOCK];
                for (int k = 0; k < BLOCK; k++) {
                    v[k] = code[i].imm_f;
                }
                k_cast[TSR_FLOAT64][code[i].type](slot_ptr(&r, i), v, BLOCK);
            } else {
                int64_t v[BLOCK];
                for (int k = 0; k < BLOCK; k++) {
                    v[k] = code[i].imm_i;
                }
                k_cast[TSR_INT64][code[i].type](slot_ptr(&r, i), v, BLOCK);
            }
        }
    }
    if (h->red_op != TSR_RED_NONE) {
        acc_init(r.out, (tsr_red_op_t)h->red_op, r.vtype, (int64_t)(h->out_bytes / r.acc_size));
    }

    {
        const int m = r.g.m;
        const int64_t inner = r.g.n[m - 1];
        const int tiles = wants_tiles(&r);
        /* Tiles walk TILE_ROWS rows of dimension m-2 per column strip; the
         * dimensions further out advance as usual. */
        const int row_dim = tiles ? m - 2 : m - 1;
        const int64_t rows = tiles ? r.g.n[m - 2] : 1;

        for (;;) {
            for (int64_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
                int64_t r1 = tiles && r0 + TILE_ROWS < rows ? r0 + TILE_ROWS : rows;
                int64_t step = tiles ? TILE_COLS : BLOCK;
                for (int64_t j0 = 0; j0 < inner; j0 += step) {
                    int64_t n = inner - j0 < step ? inner - j0 : step;
                    for (int64_t i = r0; i < r1; i++) {
                        if (tiles) {
                            idx[m - 2] = i;
                        }
                        run_block(&r, idx, j0, n);
                    }
                }
            }
            /* Next outer index (the tiled dimension is walked above). */
            {
                int d = row_dim - 1;
                if (tiles) {
                    idx[m - 2] = 0;
                }
                while (d >= 0 && ++idx[d] == r.g.n[d]) {
                    idx[d] = 0;
                    d--;
                }
                if (d < 0) {
                    break;
                }
            }
        }
    }
    free(r.slots);
    return TSR_OK;
}

/* ---- the combine kernel ----------------------------------------------------------- */

tsr_status_t tsr__combine_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const tsr_red_combine_arg_t *a = arg;
    tsr_red_op_t red = (tsr_red_op_t)a->red_op;
    tsr_dtype_t at = (tsr_dtype_t)a->acc_type;
    size_t asz;
    int64_t n = (int64_t)a->n_elems;
    char *acc;
    void *out;
    tsr_status_t st;

    if (red <= TSR_RED_NONE || red > TSR_RED_ARGMAX || (unsigned)at >= TSR_N_DTYPES ||
        (unsigned)a->out_type >= TSR_N_DTYPES || a->n_in == 0 || a->n_in >= TSR_MAX_BUFFERS) {
        tsr_task_ctx_fail(ctx, "reduction combine: malformed arguments");
        return TSR_EINVAL;
    }
    asz = tsr_red_acc_size(red, at);
    for (uint32_t i = 0; i < a->n_in; i++) {
        if (bufs[i].n_bytes != (size_t)n * asz) {
            tsr_task_ctx_fail(ctx, "reduction combine: partial %u has %zu bytes, expected %zu",
                              (unsigned)i, bufs[i].n_bytes, (size_t)n * asz);
            return TSR_EINVAL;
        }
    }
    st = out_buffer(ctx, bufs, a->n_in,
                    (size_t)n * (a->final ? tsr_dtype_size((tsr_dtype_t)a->out_type) : asz), &out);
    if (st != TSR_OK) {
        return st;
    }
    acc = a->final ? malloc((size_t)n * asz) : out;
    if (acc == NULL) {
        tsr_task_ctx_fail(ctx, "reduction combine: out of memory");
        return TSR_ENOMEM;
    }
    memcpy(acc, bufs[0].ptr, (size_t)n * asz);
    for (uint32_t i = 1; i < a->n_in; i++) {
        const void *p = bufs[i].ptr;
        switch (red) {
        case TSR_RED_SUM:
            fold_sum(acc, p, n, 0, at == TSR_FLOAT64);
            break;
        case TSR_RED_PROD:
            fold_prod(acc, p, n, 0, at == TSR_FLOAT64);
            break;
        case TSR_RED_MIN:
            k_fold_min[at](acc, p, n, 0);
            break;
        case TSR_RED_MAX:
            k_fold_max[at](acc, p, n, 0);
            break;
        case TSR_RED_ARGMIN:
            k_merge_argmin[at]((tsr_red_arg_t *)acc, p, n);
            break;
        case TSR_RED_ARGMAX:
            k_merge_argmax[at]((tsr_red_arg_t *)acc, p, n);
            break;
        default:
            for (int64_t k = 0; k < n; k++) {
                const double *b = (const double *)p + 3 * k;
                moments_merge((double *)acc + 3 * k, b[0], b[1], b[2]);
            }
            break;
        }
    }
    if (a->final) {
        double *tmp = NULL;
        if (red == TSR_RED_ARGMIN || red == TSR_RED_ARGMAX) {
            for (int64_t k = 0; k < n; k++) {
                int64_t ix = ((const tsr_red_arg_t *)acc)[k].index;
                k_cast[TSR_INT64][a->out_type]((char *)out + (size_t)k * tsr_dtype_size((tsr_dtype_t)a->out_type), &ix, 1);
            }
        } else if (a->fin == TSR_FIN_CAST) {
            k_cast[at][a->out_type](out, acc, n);
        } else if ((tmp = malloc((size_t)n * sizeof(double))) == NULL) {
            free(acc);
            tsr_task_ctx_fail(ctx, "reduction combine: out of memory");
            return TSR_ENOMEM;
        } else {
            if (a->fin == TSR_FIN_MEAN) {
                k_cast[at][TSR_FLOAT64](tmp, acc, n);
                for (int64_t k = 0; k < n; k++) {
                    tmp[k] /= a->count;
                }
            } else {
                for (int64_t k = 0; k < n; k++) {
                    const double *m = (const double *)acc + 3 * k;
                    double v = m[2] / (m[0] - a->ddof);
                    tmp[k] = a->fin == TSR_FIN_STD ? sqrt(v) : v;
                }
            }
            k_cast[TSR_FLOAT64][a->out_type](out, tmp, n);
            free(tmp);
        }
        free(acc);
    }
    return TSR_OK;
}
