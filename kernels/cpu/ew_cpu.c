/* CPU implementation of the fused elementwise kernel (with an optional first
 * reduction stage) and of the reduction combine kernel; see kernel_args.h.
 *
 * The program runs on blocks of up to BLOCK elements along the innermost
 * dimension of the chunk, after dimensions that every leaf walks contiguously
 * have been merged. Each instruction is one loop over a block, small enough to
 * stay in L1, which the compiler vectorises; a leaf read with unit stride is
 * used in place, and the last instruction writes straight into the output, or,
 * for a large one, into a slot that non-temporal stores copy out. A program of
 * float arithmetic runs its ops together in registers instead (ew_fuse.c), on
 * larger blocks, and streams a large result out from the registers. A float32
 * sum is folded into float64 without a converted copy. The program is checked
 * first (ew_check.h), so that a malformed blob fails the task instead of
 * reading or writing out of bounds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tessera/task.h>

#include "kernels/cpu/ew_check.h"
#include "kernels/cpu/ew_fuse.h"
#include "kernels/cpu/ew_gen.h"
#include "kernels/cpu/ew_types.h"
#include "kernels/impl.h"
#include "kernels/kernel_args.h"

#define BLOCK 512

/* Outputs of at least STREAM_MIN_BYTES (beyond what the caches keep for the next
 * task) are written with non-temporal stores: a plain store first reads the line
 * it writes, a third more memory traffic for a map that reads one input. */
#if defined(__SSE2__)
#include <emmintrin.h>
#define EW_HAVE_STREAM 1
#else
#define EW_HAVE_STREAM 0
#endif
#define STREAM_MIN_BYTES ((uint64_t)4 << 20)

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
/* Elements per block of a fused program whose leaves are all buffers (see
 * plan_blocks). */
#define FUSE_BLOCK 2048

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
    EW_SIMD static void NAME##_##SFX(void *d_, const void *a_, const void *b_, const void *c_,     \
                                     int64_t n)                                                    \
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

/* Ops on every type. */
#define INST_ANY(E, T, UT, SFX, F)                                                                 \
    DEF_CMP(lt, T, SFX, <)                                                                         \
    DEF_CMP(le, T, SFX, <=)                                                                        \
    DEF_CMP(gt, T, SFX, >)                                                                         \
    DEF_CMP(ge, T, SFX, >=)                                                                        \
    DEF_CMP(eq, T, SFX, ==)                                                                        \
    DEF_CMP(ne, T, SFX, !=)                                                                        \
    EW_SIMD static void where_##SFX(void *d_, const void *a_, const void *b_, const void *c_,      \
                                    int64_t n)                                                     \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const uint8_t *a = a_;                                                                     \
        const T *b = b_;                                                                           \
        const T *c = c_;                                                                           \
        for (int64_t k = 0; k < n; k++) {                                                          \
            d[k] = a[k] ? b[k] : c[k];                                                             \
        }                                                                                          \
    }
EW_TYPES(INST_ANY)

/* Arithmetic on numbers wraps for integers (done in UT, never in a signed type). */
#define INST_NUM(E, T, UT, SFX, F)                                                                 \
    DEF_BIN(add, T, UT, SFX, (T)((UT)x + (UT)y))                                                   \
    DEF_BIN(sub, T, UT, SFX, (T)((UT)x - (UT)y))                                                   \
    DEF_BIN(mul, T, UT, SFX, (T)((UT)x * (UT)y))                                                   \
    DEF_BIN(min, T, UT, SFX, (x < y || ISNAN_##F(x)) ? x : y)                                      \
    DEF_BIN(max, T, UT, SFX, (x > y || ISNAN_##F(x)) ? x : y)                                      \
    DEF_UN(neg, T, UT, SFX, (T)(-(UT)x))
EW_NUM_TYPES(INST_NUM)

/* Arithmetic on bools is NumPy's, on truth values, so that every result is 0 or
 * 1: + and max are or, * and min are and, x ** y is x or not y, -x is x (-1 cast
 * to bool), and x - y (which NumPy refuses) is xor, as it once was. */
DEF_BIN(add, uint8_t, uint32_t, b, (uint8_t)((x | y) != 0))
DEF_BIN(sub, uint8_t, uint32_t, b, (uint8_t)((x != 0) ^ (y != 0)))
DEF_BIN(mul, uint8_t, uint32_t, b, (uint8_t)((x != 0) & (y != 0)))
DEF_BIN(min, uint8_t, uint32_t, b, (uint8_t)((x != 0) & (y != 0)))
DEF_BIN(max, uint8_t, uint32_t, b, (uint8_t)((x | y) != 0))
DEF_BIN(pow, uint8_t, uint32_t, b, (uint8_t)((x != 0) | (y == 0)))
DEF_UN(neg, uint8_t, uint32_t, b, (uint8_t)(x != 0))
DEF_UN(abs, uint8_t, uint32_t, b, (uint8_t)(x != 0))

DEF_UN(abs, uint8_t, uint32_t, u8, x)
DEF_UN(abs, uint16_t, uint32_t, u16, x)
DEF_UN(abs, int32_t, uint32_t, i32, x < 0 ? (int32_t)(-(uint32_t)x) : x)
DEF_UN(abs, int64_t, uint64_t, i64, x < 0 ? (int64_t)(-(uint64_t)x) : x)
DEF_UN(abs, float, float, f32, fabsf(x))
DEF_UN(abs, double, double, f64, fabs(x))

#define INST_INT(T, UT, SFX) DEF_BIN(pow, T, UT, SFX, (T)(UT)ipow64((int64_t)x, (int64_t)y))
INST_INT(uint8_t, uint32_t, u8)
INST_INT(uint16_t, uint32_t, u16)
INST_INT(int32_t, uint32_t, i32)
INST_INT(int64_t, uint64_t, i64)

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

/* Copy n bytes to dst, the 16-byte-aligned part with non-temporal stores (the
 * task ends with a fence that orders them). */
static void stream_copy(char *dst, const char *src, size_t n)
{
#if EW_HAVE_STREAM
    size_t head = (16 - ((uintptr_t)dst & 15)) & 15;

    head = head < n ? head : n;
    memcpy(dst, src, head);
    dst += head;
    src += head;
    n -= head;
    for (; n >= 64; n -= 64, dst += 64, src += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)src);
        __m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + 48));
        _mm_stream_si128((__m128i *)dst, a);
        _mm_stream_si128((__m128i *)(dst + 16), b);
        _mm_stream_si128((__m128i *)(dst + 32), c);
        _mm_stream_si128((__m128i *)(dst + 48), d);
    }
    for (; n >= 16; n -= 16, dst += 16, src += 16) {
        _mm_stream_si128((__m128i *)dst, _mm_loadu_si128((const __m128i *)src));
    }
#endif
    memcpy(dst, src, n);
}

/* A bool leaf: any nonzero byte is true, and every bool value of a program is
 * 0 or 1 (its ops keep it so). */
EW_SIMD static void gather_bool(uint8_t *restrict dst, const uint8_t *src, int64_t stride,
                                int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        dst[k] = src[k * stride] != 0;
    }
}

/* The generators (ew_gen.h, shared with the CUDA kernel so that values are the
 * same bits) at global indices index + k * step, in wrapping arithmetic. */
EW_SIMD static void generate(void *dst, const tsr_ew_leaf_t *leaf, int64_t index, int64_t step,
                             int64_t n)
{
    double v[BLOCK];
    const uint64_t key = ew_gen_key(leaf->seed);

    switch (leaf->kind) {
    case TSR_LEAF_ARANGE:
        for (int64_t k = 0; k < n; k++) {
            v[k] = ew_gen_arange(leaf->p0, leaf->p1,
                                 (int64_t)((uint64_t)index + (uint64_t)k * (uint64_t)step));
        }
        break;
    case TSR_LEAF_UNIFORM:
        for (int64_t k = 0; k < n; k++) {
            v[k] = ew_gen_uniform(leaf->p0, leaf->p1, key,
                                  (int64_t)((uint64_t)index + (uint64_t)k * (uint64_t)step));
        }
        break;
    default: /* TSR_LEAF_NORMAL */
        for (int64_t k = 0; k < n; k++) {
            v[k] = ew_gen_normal(leaf->p0, leaf->p1, key,
                                 (int64_t)((uint64_t)index + (uint64_t)k * (uint64_t)step));
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

/* The float32 values summed in float64 as hsum_f64 sums them once converted (the
 * same lanes, so the same rounding), without the converted copy. */
EW_SIMD static double hsum_f32(const float *x, int64_t n)
{
    double l[8] = {0};
    double s = 0;
    int64_t k = 0;

    for (; k + 8 <= n; k += 8) {
        for (int j = 0; j < 8; j++) {
            l[j] += (double)x[k + j];
        }
    }
    for (; k < n; k++) {
        s += (double)x[k];
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

/* SUM of float32 values into float64 partials, converting on the fly. */
EW_SIMD static void fold_sum_f32(double *acc, const float *v, int64_t n, int across)
{
    if (across) {
        acc[0] += hsum_f32(v, n);
    } else {
        for (int64_t k = 0; k < n; k++) {
            acc[k] += (double)v[k];
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

/* A reduction writes a small partial, so the walk may follow its inputs: when the
 * buffer leaves agree on an order of the m dimensions (by decreasing stride,
 * broadcast ones aside) whose innermost is reduced or adjacent in the partial,
 * put the dimensions in that order, so that a reduction of a transpose reads its
 * input in memory order rather than across it. */
static void follow_leaves(const tsr_ew_header_t *h, const tsr_ew_leaf_t *leaves, ew_dims_t *g,
                          int m)
{
    int perm[TSR_MAX_DIMS];
    int key = -1;
    ew_dims_t t;

    if (m < 2) {
        return;
    }
    t = *g;
    for (uint32_t l = 0; l < h->n_leaves && key < 0; l++) {
        int has_zero = 0;
        for (int d = 0; d < m; d++) {
            has_zero |= g->ls[l][d] == 0;
        }
        key = leaves[l].kind == TSR_LEAF_BUFFER && !has_zero ? (int)l : -1;
    }
    if (key < 0) {
        return;
    }
    for (int d = 0; d < m; d++) { /* insertion sort: stable, m <= TSR_MAX_DIMS */
        int j = d;
        while (j > 0 && llabs(g->ls[key][perm[j - 1]]) < llabs(g->ls[key][d])) {
            perm[j] = perm[j - 1];
            j--;
        }
        perm[j] = d;
    }
    if (!t.red[perm[m - 1]] && t.os[perm[m - 1]] != 1) {
        return; /* a block's partials must be one element, or adjacent ones */
    }
    for (uint32_t l = 0; l < h->n_leaves; l++) { /* every buffer leaf agrees */
        int64_t prev = INT64_MAX;
        for (int d = 0; d < m && leaves[l].kind == TSR_LEAF_BUFFER; d++) {
            int64_t s = llabs(g->ls[l][perm[d]]);
            if (s == 0) {
                continue;
            }
            if (s > prev) {
                return;
            }
            prev = s;
        }
    }
    for (int d = 0; d < m; d++) {
        g->n[d] = t.n[perm[d]];
        g->os[d] = t.os[perm[d]];
        g->red[d] = t.red[perm[d]];
        for (uint32_t l = 0; l < h->n_leaves; l++) {
            g->ls[l][d] = t.ls[l][perm[d]];
        }
    }
}

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
    if (h->red_op != TSR_RED_NONE) {
        follow_leaves(h, leaves, g, m);
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
    int stream_out; /* write the output with non-temporal stores */
    tsr__fuse_plan_t fuse;
    int64_t block;                 /* elements per block: BLOCK, or FUSE_BLOCK */
    size_t slot_bytes;             /* block * 8 */
    int n_pre;                     /* the instructions run_block runs one by one (all but */
    uint8_t pre[TSR_EW_MAX_INSTR]; /* the fused ops) */
} ew_run_t;

static char *slot_ptr(const ew_run_t *r, uint32_t i)
{
    int s = r->slot_of[i] >= 0 ? r->slot_of[i] : -r->slot_of[i] - 1;
    return r->slots + (size_t)s * r->slot_bytes;
}

/* The values of leaf l for elements j0 .. j0+n of the row at outer index idx:
 * the buffer itself when it is read with unit stride and `in_place` allows,
 * else gathered (bools normalised) or generated into dst. */
static const void *load_leaf(const ew_run_t *r, uint32_t l, const int64_t *idx, int64_t j0,
                             int64_t n, void *dst, int in_place)
{
    const tsr_ew_leaf_t *lf = &r->leaves[l];
    const int64_t *ls = r->g.ls[l];
    const int m = r->g.m;
    const size_t es = tsr_dtype_size((tsr_dtype_t)lf->type);
    /* Wrapping arithmetic: a generator's index space has no bounds (a buffer
     * leaf's elements were checked to lie inside its buffer). */
    uint64_t at = (uint64_t)lf->offset + (uint64_t)j0 * (uint64_t)ls[m - 1];
    const char *src;

    for (int d = 0; d < m - 1; d++) {
        at += (uint64_t)idx[d] * (uint64_t)ls[d];
    }
    if (lf->kind != TSR_LEAF_BUFFER) {
        generate(dst, lf, (int64_t)at, ls[m - 1], n);
        return dst;
    }
    src = (const char *)r->bufs[lf->buf].ptr + (size_t)at * es;
    if (lf->type == TSR_BOOL) {
        gather_bool(dst, (const uint8_t *)src, ls[m - 1], n);
        return dst;
    }
    if (ls[m - 1] == 1 && in_place) {
        return src;
    }
    gather(dst, src, ls[m - 1], n, es);
    return dst;
}

/* Fold the block's results `v` (and for ARGMIN/ARGMAX their indices) into the
 * partial at obase (+ j0 unless the block lies along a reduced dimension). */
static void fold_block(const ew_run_t *r, const void *v, const void *index, int64_t obase,
                       int64_t j0, int64_t n)
{
    const int red_op = r->h->red_op;
    const int across = r->g.red[r->g.m - 1];
    void *acc = r->out + (size_t)(obase + (across ? 0 : j0)) * r->acc_size;

    if (red_op == TSR_RED_SUM && r->vtype == TSR_FLOAT32) {
        fold_sum_f32(acc, v, n, across);
        return;
    }
    if (red_op != TSR_RED_MIN && red_op != TSR_RED_MAX && red_op != TSR_RED_ARGMIN &&
        red_op != TSR_RED_ARGMAX && r->vtype != r->acc_type) {
        k_cast[r->vtype][r->acc_type](r->red_tmp, v, n);
        v = r->red_tmp;
    }
    switch (red_op) {
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
        k_fold_argmin[r->vtype](acc, v, index, n, across);
        break;
    case TSR_RED_ARGMAX:
        k_fold_argmax[r->vtype](acc, v, index, n, across);
        break;
    default:
        fold_moments(acc, v, n, across);
        break;
    }
}

/* Run the program on elements j0 .. j0+n of the row at outer index idx. */
static void run_block(const ew_run_t *r, const int64_t *idx, int64_t j0, int64_t n)
{
    const tsr_ew_header_t *h = r->h;
    const void *val[TSR_EW_MAX_INSTR];
    int64_t obase = 0;
    char *out = NULL;    /* the block's output elements (no reduction) */
    char *direct = NULL; /* where the last instruction writes them itself */

    for (int d = 0; d < r->g.m - 1; d++) {
        obase += idx[d] * r->g.os[d];
    }
    if (h->red_op == TSR_RED_NONE) {
        out = r->out + (size_t)(obase + j0) * r->vsize;
        direct = r->stream_out ? NULL : out;
    }
    for (int p = 0; p < r->n_pre; p++) {
        const uint32_t i = r->pre[p];
        const tsr_ew_instr_t *in = &r->code[i];
        void *dst = direct != NULL && i + 1 == h->n_instr ? direct : slot_ptr(r, i);

        switch (in->op) {
        case TSR_EW_LOAD:
            val[i] = load_leaf(r, (uint32_t)in->aux, idx, j0, n, dst, dst != direct);
            break;
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
            k_ops[in->op][in->type](dst, val[in->a], ew_n_args(in->op) > 1 ? val[in->b] : NULL,
                                    ew_n_args(in->op) > 2 ? val[in->c] : NULL, n);
            val[i] = dst;
            break;
        }
    }
    if (r->fuse.n_steps > 0) {
        /* A streamed result goes straight from the registers to the output. */
        void *nt = r->stream_out && (uintptr_t)out % r->vsize == 0 ? out : NULL;
        for (int s = 0; s < r->fuse.n_steps; s++) {
            const uint32_t i = r->fuse.step[s].instr;
            val[i] = direct != NULL && i + 1 == h->n_instr ? direct : slot_ptr(r, i);
        }
        tsr__fuse_run(r->vtype, &r->fuse, (void *const *)val, n, nt);
        if (nt != NULL) {
            return;
        }
    }
    if (out != NULL && direct == NULL) {
        stream_copy(out, val[h->n_instr - 1], (size_t)n * r->vsize);
    } else if (h->red_op != TSR_RED_NONE) {
        const int arg = h->red_op == TSR_RED_ARGMIN || h->red_op == TSR_RED_ARGMAX;
        fold_block(r, val[h->n_instr - 1], arg ? val[h->red_index] : NULL, obase, j0, n);
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

/* Run every block of the chunk, in tiles when wants_tiles(). */
static void run_chunk(const ew_run_t *r)
{
    const int m = r->g.m;
    const int64_t inner = r->g.n[m - 1];
    const int tiles = wants_tiles(r);
    /* Tiles walk TILE_ROWS rows of dimension m-2 per column strip; the
     * dimensions further out advance as usual. */
    const int row_dim = tiles ? m - 2 : m - 1;
    const int64_t rows = tiles ? r->g.n[m - 2] : 1;
    const int64_t step = tiles ? TILE_COLS : r->block;
    int64_t idx[TSR_MAX_DIMS] = {0};

    for (;;) {
        for (int64_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            int64_t r1 = tiles && r0 + TILE_ROWS < rows ? r0 + TILE_ROWS : rows;
            for (int64_t j0 = 0; j0 < inner; j0 += step) {
                int64_t n = inner - j0 < step ? inner - j0 : step;
                for (int64_t i = r0; i < r1; i++) {
                    if (tiles) {
                        idx[m - 2] = i;
                    }
                    run_block(r, idx, j0, n);
                }
            }
        }
        /* Next outer index (the tiled dimension is walked above). */
        int d = row_dim - 1;
        if (tiles) {
            idx[m - 2] = 0;
        }
        while (d >= 0 && ++idx[d] == r->g.n[d]) {
            idx[d] = 0;
            d--;
        }
        if (d < 0) {
            return;
        }
    }
}

/* Slots: value i lives in slot_of[i] until its last use, then the slot is
 * reused. A destination never shares a slot with its operands (the loops are
 * written for distinct arrays), and a constant, filled once before the blocks,
 * keeps its own. Returns the number of slots, one more than the values need:
 * the accumulator-type copy of a reduced block. */
static int plan_slots(const tsr_ew_header_t *h, const tsr_ew_instr_t *code, int *slot_of)
{
    int last_use[TSR_EW_MAX_INSTR];
    int free_slots[TSR_EW_MAX_INSTR + 2];
    int n_free = 0;
    int n_slots = 0;

    for (uint32_t i = 0; i < h->n_instr; i++) {
        const int args[3] = {code[i].a, code[i].b, code[i].c};
        last_use[i] = (int)i;
        for (int k = 0; k < ew_n_args(code[i].op); k++) {
            last_use[args[k]] = (int)i;
        }
    }
    last_use[h->n_instr - 1] = (int)h->n_instr; /* the result outlives the program */
    if (h->red_op == TSR_RED_ARGMIN || h->red_op == TSR_RED_ARGMAX) {
        last_use[h->red_index] = (int)h->n_instr; /* so do the indices it is folded with */
    }
    for (uint32_t i = 0; i < h->n_instr; i++) {
        const int args[3] = {code[i].a, code[i].b, code[i].c};
        slot_of[i] = n_free > 0 && code[i].op != TSR_EW_CONST ? free_slots[--n_free] : n_slots++;
        for (int k = 0; k < ew_n_args(code[i].op); k++) {
            int a = args[k];
            if (last_use[a] == (int)i && code[a].op != TSR_EW_CONST && slot_of[a] >= 0) {
                free_slots[n_free++] = slot_of[a];
                slot_of[a] = -slot_of[a] - 1; /* freed; stays readable during instr i */
            }
        }
    }
    return n_slots + 1;
}

/* Fill the slots of the constants, once per task. */
static void fill_consts(const ew_run_t *r)
{
    for (uint32_t i = 0; i < r->h->n_instr; i++) {
        const tsr_ew_instr_t *in = &r->code[i];
        if (in->op != TSR_EW_CONST) {
            continue;
        }
        for (int64_t k0 = 0; k0 < r->block; k0 += BLOCK) {
            char *dst = slot_ptr(r, i) + (size_t)k0 * tsr_dtype_size((tsr_dtype_t)in->type);
        if (in->type >= TSR_FLOAT32) {
            double v[BLOCK];
            for (int k = 0; k < BLOCK; k++) {
                v[k] = in->imm_f;
            }
                k_cast[TSR_FLOAT64][in->type](dst, v, BLOCK);
        } else {
            int64_t v[BLOCK];
            for (int k = 0; k < BLOCK; k++) {
                v[k] = in->imm_i;
            }
                k_cast[TSR_INT64][in->type](dst, v, BLOCK);
            }
        }
    }
}

/* The block size and the instructions run_block runs itself. A fused program
 * (its ops in registers, per-block work its loads) whose leaves are all
 * buffers runs on FUSE_BLOCK elements at a time: its slots hold little more
 * than the loads' values, and the work per block weighs less. */
static void plan_blocks(ew_run_t *r)
{
    int buffers_only = 1;

    for (uint32_t l = 0; l < r->h->n_leaves; l++) {
        buffers_only &= r->leaves[l].kind == TSR_LEAF_BUFFER;
    }
    r->block = r->fuse.n_steps > 0 && buffers_only ? FUSE_BLOCK : BLOCK;
    r->slot_bytes = (size_t)r->block * 8;
    r->n_pre = 0;
    for (uint32_t i = 0; i < r->h->n_instr; i++) {
        if (r->fuse.n_steps == 0 || !tsr__fuse_op(r->code[i].op)) {
            r->pre[r->n_pre++] = (uint8_t)i;
        }
    }
}

static int chunk_is_empty(const tsr_ew_header_t *h)
{
    for (uint32_t d = 0; d < h->ndim; d++) {
        if (h->shape[d] == 0) {
            return 1;
        }
    }
    return 0;
}

tsr_status_t tsr__ew_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const tsr_ew_header_t *h = arg;
    const tsr_ew_leaf_t *leaves = h != NULL ? (const tsr_ew_leaf_t *)(h + 1) : NULL;
    const tsr_ew_instr_t *code = h != NULL && h->n_leaves <= TSR_EW_MAX_LEAVES
                                     ? (const tsr_ew_instr_t *)(leaves + h->n_leaves)
                                                      : NULL;
    ew_run_t r;
    uint64_t need = 0;
    char msg[200];
    int n_slots;
    tsr_status_t st;

    if (!ew_check_program(h, leaves, code, bufs, &need, msg, sizeof(msg))) {
        tsr_task_ctx_fail(ctx, "%s", msg);
        return TSR_EINVAL;
    }
    memset(&r, 0, sizeof(r));
    r.h = h;
    r.leaves = leaves;
    r.code = code;
    r.bufs = bufs;
    r.vtype = ew_result_type(&code[h->n_instr - 1]);
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
    if (h->red_op != TSR_RED_NONE) {
        acc_init(r.out, (tsr_red_op_t)h->red_op, r.vtype, (int64_t)(h->out_bytes / r.acc_size));
    }
    if (chunk_is_empty(h)) {
        return TSR_OK; /* nothing to run; partials keep the fold's identity */
    }
    collapse_dims(h, leaves, &r.g);
    n_slots = plan_slots(h, code, r.slot_of);
    tsr__fuse_plan(h, code, r.vtype, &r.fuse);
    plan_blocks(&r);
    r.slots = aligned_alloc(64, (size_t)n_slots * r.slot_bytes);
    if (r.slots == NULL) {
        tsr_task_ctx_fail(ctx, "array kernel: out of memory for %d blocks", n_slots);
        return TSR_ENOMEM;
    }
    r.red_tmp = r.slots + (size_t)(n_slots - 1) * r.slot_bytes;
    r.stream_out = EW_HAVE_STREAM && h->red_op == TSR_RED_NONE && h->out_bytes >= STREAM_MIN_BYTES;
    fill_consts(&r);
    run_chunk(&r);
#if EW_HAVE_STREAM
    if (r.stream_out) {
        _mm_sfence(); /* the stores are visible before the task completes */
    }
#endif
    free(r.slots);
    return TSR_OK;
}

/* ---- the combine kernel ----------------------------------------------------------- */

/* Merge input partial p into the accumulator `acc` (n elements). */
static void combine_merge(const tsr_red_combine_arg_t *a, char *acc, const void *p, int64_t n)
{
    const tsr_dtype_t at = (tsr_dtype_t)a->acc_type;

    switch (a->red_op) {
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
    default: /* MOMENTS */
        for (int64_t k = 0; k < n; k++) {
            const double *b = (const double *)p + 3 * k;
            moments_merge((double *)acc + 3 * k, b[0], b[1], b[2]);
        }
        break;
    }
}

/* Write the final values of the merged accumulator `acc` (n elements) to out,
 * as ew_check_combine allows: indices for ARGMIN/ARGMAX, a cast, a mean of a
 * SUM, a variance or deviation of MOMENTS. */
static tsr_status_t combine_finish(tsr_task_ctx_t *ctx, const tsr_red_combine_arg_t *a,
                                   const char *acc, void *out, int64_t n)
{
    const tsr_dtype_t at = (tsr_dtype_t)a->acc_type;
    const tsr_dtype_t ot = (tsr_dtype_t)a->out_type;
    double *tmp;

    if (a->red_op == TSR_RED_ARGMIN || a->red_op == TSR_RED_ARGMAX) {
        for (int64_t k = 0; k < n; k++) {
            int64_t ix = ((const tsr_red_arg_t *)acc)[k].index;
            k_cast[TSR_INT64][ot]((char *)out + (size_t)k * tsr_dtype_size(ot), &ix, 1);
        }
        return TSR_OK;
    }
    if (a->fin == TSR_FIN_CAST) {
        k_cast[at][ot](out, acc, n);
        return TSR_OK;
    }
    tmp = malloc((size_t)n * sizeof(double));
    if (tmp == NULL) {
        tsr_task_ctx_fail(ctx, "reduction combine: out of memory");
        return TSR_ENOMEM;
    }
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
    k_cast[TSR_FLOAT64][ot](out, tmp, n);
    free(tmp);
    return TSR_OK;
}

tsr_status_t tsr__combine_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const tsr_red_combine_arg_t *a = arg;
    int64_t n;
    size_t asz;
    char *acc;
    void *out;
    char msg[200];
    tsr_status_t st;

    if (!ew_check_combine(a, bufs, msg, sizeof(msg))) {
        tsr_task_ctx_fail(ctx, "%s", msg);
        return TSR_EINVAL;
    }
    n = (int64_t)a->n_elems;
    asz = tsr_red_acc_size((tsr_red_op_t)a->red_op, (tsr_dtype_t)a->acc_type);
    st = out_buffer(ctx, bufs, a->n_in,
                    (size_t)n * (a->final ? tsr_dtype_size((tsr_dtype_t)a->out_type) : asz), &out);
    if (st != TSR_OK || n == 0) {
        return st;
    }
    acc = a->final ? malloc((size_t)n * asz) : out;
    if (acc == NULL) {
        tsr_task_ctx_fail(ctx, "reduction combine: out of memory");
        return TSR_ENOMEM;
    }
    memcpy(acc, bufs[0].ptr, (size_t)n * asz);
    for (uint32_t i = 1; i < a->n_in; i++) {
        combine_merge(a, acc, bufs[i].ptr, n);
    }
    if (a->final) {
        st = combine_finish(ctx, a, acc, out, n);
        free(acc);
    }
    return st;
}
