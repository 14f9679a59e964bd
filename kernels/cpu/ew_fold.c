/* The partials of a reduction on the CPU (ew_fold.h). A block of values folds
 * in with one loop per op and type, written for the vectoriser: a sum or product
 * along a reduced dimension in eight lanes, a float32 sum into float64 without a
 * converted copy, MOMENTS along one as the block's own (count, mean, M2) merged
 * in, else by Welford's update of each partial. Private to kernels/cpu/. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/ew_fold.h"
#include "kernels/cpu/ew_ops.h"
#include "kernels/cpu/ew_types.h"
#include "kernels/cpu/ew_util.h"
#include "kernels/kernel_args.h"

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
 * dimension), else element by element into acc[0..n). Along a reduced
 * dimension min and max keep FOLD_LANES independent extremes with plain
 * compares the vectoriser turns into blends; a NaN taken into a lane stays
 * there (no compare with it holds), so a NaN lane tells that one went by, and
 * then the first NaN is the result (NaN wins, as in NumPy). Noting NaNs in an
 * int flag instead, or letting GCC unroll the lanes' loop, keeps it from
 * vectorising the loop at all. */
#define FOLD_LANES 16
#define FOLD_PICK(x, a, F, BETTER) ((((x)BETTER(a)) | ISNAN_##F(x)) ? (x) : (a))
#define DEF_FOLD_EXTREME(NAME, T, SFX, F, BETTER)                                                  \
    EW_SIMD static T NAME##_lanes_##SFX(T a, const T *v, int64_t n)                                \
    {                                                                                              \
        T l[FOLD_LANES];                                                                           \
        int nan = 0;                                                                               \
        int64_t k = FOLD_LANES;                                                                    \
        memcpy(l, v, sizeof(l));                                                                   \
        for (; k + FOLD_LANES <= n; k += FOLD_LANES) {                                             \
            _Pragma("GCC unroll 1") /* unrolled, GCC -O3 no longer vectorises it */                \
            for (int j = 0; j < FOLD_LANES; j++) {                                                 \
                l[j] = FOLD_PICK(v[k + j], l[j], F, BETTER);                                       \
            }                                                                                      \
        }                                                                                          \
        for (int j = 0; j < FOLD_LANES; j++) {                                                     \
            nan |= ISNAN_##F(l[j]);                                                                \
            a = FOLD_PICK(l[j], a, F, BETTER);                                                     \
        }                                                                                          \
        for (int64_t i = FOLD_LANES; nan && i < k; i++) {                                          \
            if (ISNAN_##F(v[i])) {                                                                 \
                return FOLD_PICK(v[i], a, F, BETTER);                                              \
            }                                                                                      \
        }                                                                                          \
        for (; k < n; k++) {                                                                       \
            a = FOLD_PICK(v[k], a, F, BETTER);                                                     \
        }                                                                                          \
        return a;                                                                                  \
    }                                                                                              \
    EW_SIMD static void NAME##_##SFX(void *acc_, const void *v_, int64_t n, int across)            \
    {                                                                                              \
        T *acc = acc_;                                                                             \
        const T *v = v_;                                                                           \
        if (across && n >= FOLD_LANES) {                                                           \
            acc[0] = NAME##_lanes_##SFX(acc[0], v, n);                                             \
        } else if (across) {                                                                       \
            T a = acc[0];                                                                          \
            for (int64_t k = 0; k < n; k++) {                                                      \
                a = FOLD_PICK(v[k], a, F, BETTER);                                                 \
            }                                                                                      \
            acc[0] = a;                                                                            \
        } else {                                                                                   \
            for (int64_t k = 0; k < n; k++) {                                                      \
                acc[k] = FOLD_PICK(v[k], acc[k], F, BETTER);                                       \
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

/* Whether the n indices increase along the block. */
EW_SIMD static int ascending(const int64_t *ix, int64_t n)
{
    int64_t bad = 0;

    for (int64_t k = 1; k < n; k++) {
        bad |= (int64_t)(ix[k] <= ix[k - 1]);
    }
    return bad == 0;
}

/* The position of the first (find_first) or last (find_last) of the n values v
 * holding m (a NaN: any NaN), which one of them does. One pass in FOLD_LANES
 * lanes, each keeping the position (+ 1, 0: none) of its first or last hit, in
 * integers as wide as T (32 bits at least): the vectoriser takes that, not a
 * search that stops at the first hit. */
#define FIND_HIT(x, m, nan, F) (((x) == (m)) | ((nan) & ISNAN_##F(x)))
#define DEF_FIND(E, T, UT, SFX, F)                                                                 \
    EW_SIMD static int64_t find_first_##SFX(T m, const T *v, int64_t n)                            \
    {                                                                                              \
        typedef __typeof__((UT)0 + (uint32_t)0) IX;                                                \
        const int nan = ISNAN_##F(m);                                                              \
        IX l[FOLD_LANES] = {0};                                                                    \
        IX best = 0;                                                                               \
        int64_t k = 0;                                                                             \
        IX at = 1;                                                                                 \
        for (; k + FOLD_LANES <= n; k += FOLD_LANES, at += FOLD_LANES) {                           \
            _Pragma("GCC unroll 1") /* as in DEF_FOLD_EXTREME */                                   \
            for (int j = 0; j < FOLD_LANES; j++) {                                                 \
                l[j] = (l[j] == 0) & FIND_HIT(v[k + j], m, nan, F) ? at + (IX)j : l[j];            \
            }                                                                                      \
        }                                                                                          \
        for (int j = 0; j < FOLD_LANES; j++) {                                                     \
            best = l[j] != 0 && (best == 0 || l[j] < best) ? l[j] : best;                          \
        }                                                                                          \
        if (best != 0) {                                                                           \
            return (int64_t)best - 1;                                                              \
        }                                                                                          \
        while (!FIND_HIT(v[k], m, nan, F)) {                                                       \
            k++;                                                                                   \
        }                                                                                          \
        return k;                                                                                  \
    }                                                                                              \
    EW_SIMD static int64_t find_last_##SFX(T m, const T *v, int64_t n)                             \
    {                                                                                              \
        typedef __typeof__((UT)0 + (uint32_t)0) IX;                                                \
        const int nan = ISNAN_##F(m);                                                              \
        const int64_t full = n - n % FOLD_LANES;                                                   \
        IX l[FOLD_LANES] = {0};                                                                    \
        IX best = 0;                                                                               \
        for (int64_t k = n - 1; k >= full; k--) {                                                  \
            if (FIND_HIT(v[k], m, nan, F)) {                                                       \
                return k;                                                                          \
            }                                                                                      \
        }                                                                                          \
        IX at = 1;                                                                                 \
        for (int64_t k = 0; k < full; k += FOLD_LANES, at += FOLD_LANES) {                         \
            _Pragma("GCC unroll 1") /* as in DEF_FOLD_EXTREME */                                   \
            for (int j = 0; j < FOLD_LANES; j++) {                                                 \
                l[j] = FIND_HIT(v[k + j], m, nan, F) ? at + (IX)j : l[j];                          \
            }                                                                                      \
        }                                                                                          \
        for (int j = 0; j < FOLD_LANES; j++) {                                                     \
            best = l[j] > best ? l[j] : best;                                                      \
        }                                                                                          \
        return (int64_t)best - 1;                                                                  \
    }
EW_TYPES(DEF_FIND)

/* ARGMIN/ARGMAX: whether value v at index i beats the partial `a` (the rule of
 * tsr_red_arg_t), and the fold of values with their indices and the merge of
 * partials built on it. Along a reduced dimension a block is folded in two
 * passes instead of one test per value: its extreme by EXT's vectorised lanes
 * (the first NaN if there is one), then, unless the partial beats that value
 * wherever it is, the lowest index holding it (a NaN: any NaN), which then meets
 * the partial as one value. */
#define DEF_ARG_BEATS(NAME, T, SFX, F, BETTER, EXT)                                                \
    static inline int NAME##_beats_##SFX(T v, int64_t i, const tsr_red_arg_t *a)                   \
    {                                                                                              \
        T cur;                                                                                     \
        memcpy(&cur, &a->v, sizeof(T));                                                            \
        if (ISNAN_##F(v)) {                                                                        \
            return !ISNAN_##F(cur) || i < a->index;                                                \
        }                                                                                          \
        return !ISNAN_##F(cur) && (v BETTER cur || (v == cur && i < a->index));                    \
    }                                                                                              \
    /* Value v at index i replaces the partial if it beats it. */                                  \
    static inline void NAME##_offer_##SFX(tsr_red_arg_t *a, T v, int64_t i)                        \
    {                                                                                              \
        if (NAME##_beats_##SFX(v, i, a)) {                                                         \
            memcpy(&a->v, &v, sizeof(T));                                                          \
            a->index = i;                                                                          \
        }                                                                                          \
    }                                                                                              \
    /* The position of the entry holding m (NaN: any NaN) with the lowest index: the               \
     * first one, unless the indices do not increase along the block. */                           \
    EW_SIMD static int64_t NAME##_lowest_##SFX(T m, const T *v, const int64_t *ix, int64_t n)      \
    {                                                                                              \
        const int nan = ISNAN_##F(m);                                                              \
        int64_t at = find_first_##SFX(m, v, n);                                                    \
        if (!ascending(ix, n)) {                                                                   \
            for (int64_t k = at + 1; k < n; k++) {                                                 \
                if (FIND_HIT(v[k], m, nan, F) && ix[k] < ix[at]) {                                 \
                    at = k;                                                                        \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        return at;                                                                                 \
    }                                                                                              \
    static void NAME##_block_##SFX(tsr_red_arg_t *a, const T *v, const int64_t *ix, int64_t n)     \
    {                                                                                              \
        const T m = EXT##_lanes_##SFX(v[0], v, n);                                                 \
        if (!NAME##_beats_##SFX(m, INT64_MIN, a)) {                                                \
            return; /* not even at the lowest index: no need to find where it is */                \
        }                                                                                          \
        const int64_t at = NAME##_lowest_##SFX(m, v, ix, n);                                       \
        NAME##_offer_##SFX(a, v[at], ix[at]);                                                      \
    }                                                                                              \
    static void NAME##_##SFX(tsr_red_arg_t *acc, const void *v_, const int64_t *ix, int64_t n,     \
                             int across)                                                           \
    {                                                                                              \
        const T *v = v_;                                                                           \
        if (across && n >= FOLD_LANES) {                                                           \
            NAME##_block_##SFX(acc, v, ix, n);                                                     \
            return;                                                                                \
        }                                                                                          \
        for (int64_t k = 0; k < n; k++) {                                                          \
            NAME##_offer_##SFX(&acc[across ? 0 : k], v[k], ix[k]);                                 \
        }                                                                                          \
    }                                                                                              \
    /* The same fold along a reduced dimension for indices first + k * step, not in                \
     * memory: the lowest index holding the extreme is its first entry, or its last                \
     * one when the indices fall. */                                                               \
    EW_SIMD static void NAME##_affine_##SFX(tsr_red_arg_t *a, const void *v_, int64_t first,       \
                                            int64_t step, int64_t n)                               \
    {                                                                                              \
        const T *v = v_;                                                                           \
        if (n < FOLD_LANES) {                                                                      \
            for (int64_t k = 0; k < n; k++) {                                                      \
                NAME##_offer_##SFX(a, v[k], first + k * step);                                     \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        const T m = EXT##_lanes_##SFX(v[0], v, n);                                                 \
        if (!NAME##_beats_##SFX(m, INT64_MIN, a)) {                                                \
            return;                                                                                \
        }                                                                                          \
        const int64_t at = step < 0 ? find_last_##SFX(m, v, n) : find_first_##SFX(m, v, n);        \
        NAME##_offer_##SFX(a, v[at], first + at * step);                                           \
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
    DEF_ARG_BEATS(fold_argmin, T, SFX, F, <, fold_min)                                             \
    DEF_ARG_BEATS(fold_argmax, T, SFX, F, >, fold_max)
EW_TYPES(DEF_FOLD_ARGS)

typedef void (*fold_arg_fn)(tsr_red_arg_t *acc, const void *v, const int64_t *ix, int64_t n,
                            int across);
typedef void (*merge_arg_fn)(tsr_red_arg_t *acc, const tsr_red_arg_t *b, int64_t n);
static const fold_arg_fn k_fold_argmin[TSR_N_DTYPES] = ROW_ALL(fold_argmin);
static const fold_arg_fn k_fold_argmax[TSR_N_DTYPES] = ROW_ALL(fold_argmax);
static const merge_arg_fn k_merge_argmin[TSR_N_DTYPES] = ROW_ALL(fold_argmin_merge);
static const merge_arg_fn k_merge_argmax[TSR_N_DTYPES] = ROW_ALL(fold_argmax_merge);
typedef void (*affine_arg_fn)(tsr_red_arg_t *acc, const void *v, int64_t first, int64_t step,
                              int64_t n);
static const affine_arg_fn k_affine_argmin[TSR_N_DTYPES] = ROW_ALL(fold_argmin_affine);
static const affine_arg_fn k_affine_argmax[TSR_N_DTYPES] = ROW_ALL(fold_argmax_affine);

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

/* The product of n values in eight lanes, as hsum_f64 sums: one running product
 * would wait for each multiply before the next. Wrapping integer products (T
 * uint64_t over int64_t values) are exact in any order. */
#define DEF_HPROD(NAME, T, IN)                                                                     \
    EW_SIMD static T NAME(const IN *x, int64_t n)                                                  \
    {                                                                                              \
        T l[8] = {1, 1, 1, 1, 1, 1, 1, 1};                                                         \
        T p = 1;                                                                                   \
        int64_t k = 0;                                                                             \
        for (; k + 8 <= n; k += 8) {                                                               \
            for (int j = 0; j < 8; j++) {                                                          \
                l[j] *= (T)x[k + j];                                                               \
            }                                                                                      \
        }                                                                                          \
        for (; k < n; k++) {                                                                       \
            p *= (T)x[k];                                                                          \
        }                                                                                          \
        return ((l[0] * l[1]) * (l[2] * l[3])) * ((l[4] * l[5]) * (l[6] * l[7])) * p;              \
    }
DEF_HPROD(hprod_f64, double, double)
DEF_HPROD(hprod_u64, uint64_t, int64_t)

EW_SIMD static void fold_prod(void *acc_, const void *v_, int64_t n, int across, int is_float)
{
    if (is_float) {
        double *acc = acc_;
        const double *v = v_;
        if (across) {
            acc[0] *= hprod_f64(v, n);
        } else {
            for (int64_t k = 0; k < n; k++) {
                acc[k] *= v[k];
            }
        }
    } else {
        int64_t *acc = acc_;
        const int64_t *v = v_;
        if (across) {
            acc[0] = (int64_t)((uint64_t)acc[0] * hprod_u64(v, n));
        } else {
            for (int64_t k = 0; k < n; k++) {
                acc[k] = (int64_t)((uint64_t)acc[k] * (uint64_t)v[k]);
            }
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

void tsr__fold_init(void *acc, tsr_red_op_t red, tsr_dtype_t type, int64_t n)
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
            tsr__fold_init(&init.v, lowest ? TSR_RED_MIN : TSR_RED_MAX, type, 1);
            init.index = INT64_MAX;
            for (int64_t k = 0; k < n; k++) {
                ((tsr_red_arg_t *)acc)[k] = init;
            }
            return;
        }
        if (type == TSR_BOOL) {
            one[0] = lowest;
        } else if (type >= TSR_FLOAT32) {
            tsr__ew_cast[TSR_FLOAT64][type](one, &f, 1);
        } else {
            /* Through double, saturating to the type's range. */
            double fi = (double)i;
            tsr__ew_cast[TSR_FLOAT64][type](one, &fi, 1);
        }
        for (int64_t k = 0; k < n; k++) {
            memcpy((char *)acc + (size_t)k * es, one, es);
        }
        return;
    }
    }
}

void tsr__fold_block(const struct tsr__fold *f, void *acc, const void *v, const int64_t *index,
                     int64_t n)
{
    const tsr_red_op_t red_op = f->red_op;
    const int across = f->across;

    if (red_op == TSR_RED_SUM && f->vtype == TSR_FLOAT32) {
        fold_sum_f32(acc, v, n, across);
        return;
    }
    if (red_op != TSR_RED_MIN && red_op != TSR_RED_MAX && red_op != TSR_RED_ARGMIN &&
        red_op != TSR_RED_ARGMAX && f->vtype != f->acc_type) {
        tsr__ew_cast[f->vtype][f->acc_type](f->tmp, v, n);
        v = f->tmp;
    }
    switch (red_op) {
    case TSR_RED_SUM:
        fold_sum(acc, v, n, across, f->acc_type == TSR_FLOAT64);
        break;
    case TSR_RED_PROD:
        fold_prod(acc, v, n, across, f->acc_type == TSR_FLOAT64);
        break;
    case TSR_RED_MIN:
        k_fold_min[f->vtype](acc, v, n, across);
        break;
    case TSR_RED_MAX:
        k_fold_max[f->vtype](acc, v, n, across);
        break;
    case TSR_RED_ARGMIN:
        k_fold_argmin[f->vtype](acc, v, index, n, across);
        break;
    case TSR_RED_ARGMAX:
        k_fold_argmax[f->vtype](acc, v, index, n, across);
        break;
    default:
        fold_moments(acc, v, n, across);
        break;
    }
}

void tsr__fold_arg_affine(const struct tsr__fold *f, void *acc, const void *v, int64_t first,
                          int64_t step, int64_t n)
{
    if (f->red_op == TSR_RED_ARGMIN) {
        k_affine_argmin[f->vtype](acc, v, first, step, n);
    } else {
        k_affine_argmax[f->vtype](acc, v, first, step, n);
    }
}

void tsr__fold_merge(void *acc, tsr_red_op_t red, tsr_dtype_t acc_type, const void *p, int64_t n)
{
    switch (red) {
    case TSR_RED_SUM:
        fold_sum(acc, p, n, 0, acc_type == TSR_FLOAT64);
        break;
    case TSR_RED_PROD:
        fold_prod(acc, p, n, 0, acc_type == TSR_FLOAT64);
        break;
    case TSR_RED_MIN:
        k_fold_min[acc_type](acc, p, n, 0);
        break;
    case TSR_RED_MAX:
        k_fold_max[acc_type](acc, p, n, 0);
        break;
    case TSR_RED_ARGMIN:
        k_merge_argmin[acc_type]((tsr_red_arg_t *)acc, p, n);
        break;
    case TSR_RED_ARGMAX:
        k_merge_argmax[acc_type]((tsr_red_arg_t *)acc, p, n);
        break;
    default: /* MOMENTS */
        for (int64_t k = 0; k < n; k++) {
            const double *b = (const double *)p + 3 * k;
            moments_merge((double *)acc + 3 * k, b[0], b[1], b[2]);
        }
        break;
    }
}
