/* Chunked n-dimensional arrays (issue 6, in progress): element types and their
 * promotion, and shape broadcasting. The arrays themselves (creation, lazy
 * expressions, reductions, compute) come next and will be declared here. */
#ifndef TESSERA_ARRAY_H
#define TESSERA_ARRAY_H

#include <stddef.h>
#include <stdint.h>
#include <tessera/export.h>
#include <tessera/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Element types, in promotion order within each kind. */
typedef enum {
    TSR_BOOL = 0,
    TSR_UINT8 = 1,
    TSR_UINT16 = 2,
    TSR_INT32 = 3,
    TSR_INT64 = 4,
    TSR_FLOAT32 = 5,
    TSR_FLOAT64 = 6,
} tsr_dtype_t;

#define TSR_N_DTYPES 7

/** Most dimensions an array has. */
#define TSR_MAX_DIMS 8

/** Bytes per element of `dtype`; 0 if it is not a tsr_dtype_t. */
TSR_API size_t tsr_dtype_size(tsr_dtype_t dtype);

/** NumPy's name of `dtype` ("float32"); "?" if it is not a tsr_dtype_t. */
TSR_API const char *tsr_dtype_name(tsr_dtype_t dtype);

/** The type of a binary operation's result on arrays of types a and b, as NumPy's
 *  `result_type(a, b)`: the smallest type that holds every value of both (bool
 *  goes with anything; an integer with float32 is float32 up to 16 bits, float64
 *  beyond). Errors: TSR_EINVAL if either is not a tsr_dtype_t. */
TSR_API tsr_status_t tsr_dtype_promote(tsr_dtype_t a, tsr_dtype_t b, tsr_dtype_t *out);

/** The shape of `a` and `b` broadcast together by NumPy's rules: shapes are
 *  aligned at their last dimension, and each pair of sizes must be equal or one of
 *  them 1. Writes *ndim_out (max of both) and shape_out[0..*ndim_out).
 *  Errors: TSR_EINVAL (more than TSR_MAX_DIMS dimensions, a NULL shape with
 *  ndim > 0, or sizes that do not broadcast; tsr_last_error() names the
 *  dimension and both sizes). */
TSR_API tsr_status_t tsr_broadcast_shapes(uint32_t ndim_a, const int64_t *shape_a, uint32_t ndim_b,
                                          const int64_t *shape_b, uint32_t *ndim_out,
                                          int64_t *shape_out);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_ARRAY_H */
