/* Element types: sizes, names, NumPy's promotion; and NumPy's shape broadcasting. */
#include <stdio.h>
#include <tessera/array.h>

#include "collections/array/array_impl.h"

static const struct {
    size_t size;
    const char *name;
} k_dtypes[TSR_N_DTYPES] = {
    {1, "bool"},  {1, "uint8"},   {2, "uint16"},  {4, "int32"},
    {8, "int64"}, {4, "float32"}, {8, "float64"},
};

static int is_dtype(tsr_dtype_t dtype)
{
    return (unsigned)dtype < TSR_N_DTYPES;
}

size_t tsr_dtype_size(tsr_dtype_t dtype)
{
    return is_dtype(dtype) ? k_dtypes[dtype].size : 0;
}

const char *tsr_dtype_name(tsr_dtype_t dtype)
{
    return is_dtype(dtype) ? k_dtypes[dtype].name : "?";
}

tsr_status_t tsr_dtype_promote(tsr_dtype_t a, tsr_dtype_t b, tsr_dtype_t *out)
{
    tsr_dtype_t hi;
    tsr_dtype_t lo;

    if (!is_dtype(a) || !is_dtype(b) || out == NULL) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_dtype_promote: dtype %d or %d is not a tsr_dtype_t, "
                               "or out is NULL",
                               (int)a, (int)b);
    }
    /* The enum is ordered so that the larger of two types holds the smaller, except
     * float32, which holds integers only up to 16 bits. */
    hi = a > b ? a : b;
    lo = a > b ? b : a;
    *out = hi == TSR_FLOAT32 && (lo == TSR_INT32 || lo == TSR_INT64) ? TSR_FLOAT64 : hi;
    return TSR_OK;
}

tsr_status_t tsr_broadcast_shapes(uint32_t ndim_a, const int64_t *shape_a, uint32_t ndim_b,
                                  const int64_t *shape_b, uint32_t *ndim_out, int64_t *shape_out)
{
    uint32_t n = ndim_a > ndim_b ? ndim_a : ndim_b;
    int64_t shape[TSR_MAX_DIMS];

    if (ndim_a > TSR_MAX_DIMS || ndim_b > TSR_MAX_DIMS || (ndim_a > 0 && shape_a == NULL) ||
        (ndim_b > 0 && shape_b == NULL) || ndim_out == NULL || (n > 0 && shape_out == NULL)) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_broadcast_shapes: %u and %u dimensions (at most %d), or a NULL "
                               "shape",
                               (unsigned)ndim_a, (unsigned)ndim_b, TSR_MAX_DIMS);
    }
    for (uint32_t i = 0; i < n; i++) {
        /* Dimension i of the result, counted from the last. */
        int64_t x = i < ndim_a ? shape_a[ndim_a - 1 - i] : 1;
        int64_t y = i < ndim_b ? shape_b[ndim_b - 1 - i] : 1;

        if (x < 0 || y < 0 || (x != y && x != 1 && y != 1)) {
            return tsr__array_fail(TSR_EINVAL,
                                   "shapes do not broadcast: dimension %u of the result (from the "
                                   "left) has sizes %lld and %lld",
                                   (unsigned)(n - 1 - i), (long long)x, (long long)y);
        }
        shape[n - 1 - i] = x == 1 ? y : x;
    }
    for (uint32_t i = 0; i < n; i++) {
        shape_out[i] = shape[i];
    }
    *ndim_out = n;
    return TSR_OK;
}
