/* The elementwise ops and casts of the CPU array kernels (ew_ops.h): each
 * template below is instantiated for the types it is defined on, with NumPy's
 * results (wrapping integers, logic on bools, NaN winning min and max). Private
 * to kernels/cpu/. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu/ew_ipow.h"
#include "kernels/cpu/ew_ops.h"
#include "kernels/cpu/ew_types.h"
#include "kernels/cpu/ew_util.h"
#include "kernels/cpu/ew_vmath.h"
#include "kernels/kernel_args.h"

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
/* A unary op, its loop compiled with CLONES (EW_SIMD or EW_SIMD_WIDE). */
#define DEF_UN_CLONES(CLONES, NAME, T, SFX, EXPR)                                                  \
    CLONES static void NAME##_##SFX(void *d_, const void *a_, const void *b_, const void *c_,      \
                                    int64_t n)                                                     \
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
#define DEF_UN(NAME, T, UT, SFX, EXPR) DEF_UN_CLONES(EW_SIMD, NAME, T, SFX, EXPR)

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
    DEF_UN(sqrt, T, T, SFX, sqrt##MS(x))
EW_FLOATS(INST_FLT)

/* exp, log, sin and cos are ew_vmath.h's, which vectorise; a float is computed
 * as a double with shorter polynomials. The C library takes the sines and
 * cosines of the few arguments beyond EW_VM_TRIG_MAX, in a second pass. */
DEF_UN_CLONES(EW_SIMD_WIDE, exp, float, f32, (float)ew_vm_exp_prec(x, 0))
DEF_UN_CLONES(EW_SIMD_WIDE, exp, double, f64, ew_vm_exp(x))
DEF_UN_CLONES(EW_SIMD_WIDE, log, float, f32, (float)ew_vm_log_prec(x, 0))
DEF_UN_CLONES(EW_SIMD_WIDE, log, double, f64, ew_vm_log(x))

#define DEF_TRIG(NAME, T, SFX, COS_WANTED, FULL, MS)                                               \
    EW_SIMD_WIDE static void NAME##_##SFX(void *d_, const void *a_, const void *b_,                \
                                          const void *c_, int64_t n)                               \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *a = a_;                                                                           \
        int far = 0;                                                                               \
        (void)b_;                                                                                  \
        (void)c_;                                                                                  \
        for (int64_t k = 0; k < n; k++) {                                                          \
            T x = a[k];                                                                            \
            d[k] = (T)ew_vm_sincos(x, COS_WANTED, FULL);                                           \
            far |= fabs##MS(x) > (T)EW_VM_TRIG_MAX;                                                \
        }                                                                                          \
        for (int64_t k = 0; far && k < n; k++) {                                                   \
            if (fabs##MS(a[k]) > (T)EW_VM_TRIG_MAX) {                                              \
                d[k] = NAME##MS(a[k]);                                                             \
            }                                                                                      \
        }                                                                                          \
    }
DEF_TRIG(sin, float, f32, 0, 0, f)
DEF_TRIG(sin, double, f64, 0, 1, )
DEF_TRIG(cos, float, f32, 1, 0, f)
DEF_TRIG(cos, double, f64, 1, 1, )

#define ROW_FLT(name)                                                                              \
    {                                                                                              \
        NULL, NULL, NULL, NULL, NULL, name##_f32, name##_f64                                       \
    }

/* Indexed by op, then by operand type; NULL where the op is not defined. */
const tsr__ew_op_fn tsr__ew_ops[TSR_EW_N_OPS][TSR_N_DTYPES] = {
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
    EW_SIMD static void cast_##SFX1##_##SFX2(void *d_, const void *a_, int64_t n)                  \
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
const tsr__ew_cast_fn tsr__ew_cast[TSR_N_DTYPES][TSR_N_DTYPES] = {
    CAST_ROW(b),   CAST_ROW(u8),  CAST_ROW(u16), CAST_ROW(i32),
    CAST_ROW(i64), CAST_ROW(f32), CAST_ROW(f64),
};
