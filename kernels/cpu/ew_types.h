/* The element types of the CPU array kernels as one X-macro list, with the
 * conversions between them: one template per op family is instantiated from this
 * list (see ew_ops.c and ew_fold.c). Private to kernels/cpu/. */
#ifndef TSR_KERNELS_CPU_EW_TYPES_H
#define TSR_KERNELS_CPU_EW_TYPES_H

#include <math.h>
#include <stdint.h>
#include <tessera/array.h>

/* X(dtype enum, C type, unsigned type for wrapping arithmetic, suffix, is_float).
 * The unsigned type is at least unsigned int: a narrower one would be promoted
 * to (signed) int, where 65535 * 65535 overflows. */
#define EW_TYPES(X)                                                                                \
    X(TSR_BOOL, uint8_t, uint32_t, b, 0)                                                           \
    EW_NUM_TYPES(X)
/* The same without bool, whose arithmetic is logic (see ew_ops.c). */
#define EW_NUM_TYPES(X)                                                                            \
    X(TSR_UINT8, uint8_t, uint32_t, u8, 0)                                                         \
    X(TSR_UINT16, uint16_t, uint32_t, u16, 0)                                                      \
    X(TSR_INT32, int32_t, uint32_t, i32, 0)                                                        \
    X(TSR_INT64, int64_t, uint64_t, i64, 0)                                                        \
    X(TSR_FLOAT32, float, float, f32, 1)                                                           \
    X(TSR_FLOAT64, double, double, f64, 1)

/* The same list again, passing the leading arguments through, for templates over
 * pairs of types (a macro does not expand inside its own expansion). */
#define EW_TYPES2(X, ...)                                                                          \
    X(__VA_ARGS__, TSR_BOOL, uint8_t, uint32_t, b, 0)                                              \
    X(__VA_ARGS__, TSR_UINT8, uint8_t, uint32_t, u8, 0)                                            \
    X(__VA_ARGS__, TSR_UINT16, uint16_t, uint32_t, u16, 0)                                         \
    X(__VA_ARGS__, TSR_INT32, int32_t, uint32_t, i32, 0)                                           \
    X(__VA_ARGS__, TSR_INT64, int64_t, uint64_t, i64, 0)                                           \
    X(__VA_ARGS__, TSR_FLOAT32, float, float, f32, 1)                                              \
    X(__VA_ARGS__, TSR_FLOAT64, double, double, f64, 1)

/* The float types with the suffix of their <math.h> functions. */
#define EW_FLOATS(X)                                                                               \
    X(TSR_FLOAT32, float, f32, f)                                                                  \
    X(TSR_FLOAT64, double, f64, )

/* Conversions from double, defined for every input: NaN gives 0 and values
 * beyond the target's range saturate (C leaves both undefined); to bool, any
 * nonzero value (NaN included) is true, as in NumPy. */
static inline uint8_t ew_from_f_b(double x)
{
    return x != 0;
}
#define EW_FROM_F_INT(sfx, T, lo, hi)                                                              \
    static inline T ew_from_f_##sfx(double x)                                                      \
    {                                                                                              \
        return x != x ? (T)0 : x <= (double)(lo) ? (T)(lo) : x >= (double)(hi) ? (T)(hi) : (T)x;  \
    }
EW_FROM_F_INT(u8, uint8_t, 0, UINT8_MAX)
EW_FROM_F_INT(u16, uint16_t, 0, UINT16_MAX)
EW_FROM_F_INT(i32, int32_t, INT32_MIN, INT32_MAX)
/* (double)INT64_MAX rounds up to 2^63, which is out of range: compare with >=. */
EW_FROM_F_INT(i64, int64_t, INT64_MIN, INT64_MAX)
static inline float ew_from_f_f32(double x)
{
    return (float)x;
}
static inline double ew_from_f_f64(double x)
{
    return x;
}

/* Conversions from an integer (as int64): wrap modulo the width, as C and NumPy. */
#define EW_FROM_I(sfx, T)                                                                          \
    static inline T ew_from_i_##sfx(int64_t x)                                                     \
    {                                                                                              \
        return (T)x;                                                                               \
    }
static inline uint8_t ew_from_i_b(int64_t x)
{
    return x != 0;
}
EW_FROM_I(u8, uint8_t)
EW_FROM_I(u16, uint16_t)
EW_FROM_I(i32, int32_t)
EW_FROM_I(i64, int64_t)
EW_FROM_I(f32, float)
EW_FROM_I(f64, double)

#endif /* TSR_KERNELS_CPU_EW_TYPES_H */
