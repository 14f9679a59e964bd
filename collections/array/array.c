/* Array handles: creation, chunk grids, reference counting, introspection. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tessera/array.h>
#include <tessera/data.h>

#include "collections/array/array_impl.h"
#include "collections/array/lower.h"

/* Automatic chunks hold about this many bytes. */
#define AUTO_CHUNK_BYTES ((int64_t)32 << 20)

tsr_status_t tsr__array_check(const tsr_array_t *a, const char *fn)
{
    if (a == NULL) {
        return tsr__array_fail(TSR_EINVAL, "%s: array is NULL", fn);
    }
    return TSR_OK;
}

static tsr_status_t check_shape(tsr_dtype_t dtype, uint32_t ndim, const int64_t *shape,
                                const char *fn)
{
    if (tsr_dtype_size(dtype) == 0) {
        return tsr__array_fail(TSR_EINVAL, "%s: dtype %d is not a tsr_dtype_t", fn, (int)dtype);
    }
    if (ndim > TSR_MAX_DIMS) {
        return tsr__array_fail(TSR_EINVAL, "%s: %u dimensions (at most %d)", fn, (unsigned)ndim,
                               TSR_MAX_DIMS);
    }
    for (uint32_t d = 0; d < ndim; d++) {
        if (shape[d] < 0) {
            return tsr__array_fail(TSR_EINVAL, "%s: dimension %u has size %lld (sizes >= 0)",
                                   fn, (unsigned)d, (long long)shape[d]);
        }
    }
    return TSR_OK;
}

static tsr_status_t alloc_node(tsr_runtime_t *rt, tsr_dtype_t dtype, uint32_t ndim,
                               const int64_t *shape, const uint32_t *nch, tsr_array_t **out)
{
    tsr_array_t *a = calloc(1, sizeof(*a));
    int64_t total = 0;

    for (uint32_t d = 0; d < ndim; d++) {
        total += (int64_t)nch[d] + 1;
    }
    if (a == NULL || (a->bounds = malloc((size_t)(total > 0 ? total : 1) * sizeof(int64_t))) == NULL) {
        free(a);
        return tsr__array_fail(TSR_ENOMEM, "array: out of memory for a node");
    }
    atomic_init(&a->refs, 1);
    a->in = a->in_fixed;
    a->rt = rt;
    a->dtype = dtype;
    a->ndim = ndim;
    total = 0;
    for (uint32_t d = 0; d < ndim; d++) {
        a->shape[d] = shape[d];
        a->nch[d] = nch[d];
        a->cb[d] = a->bounds + total;
        total += (int64_t)nch[d] + 1;
    }
    *out = a;
    return TSR_OK;
}

tsr_status_t tsr__array_new(tsr_runtime_t *rt, tsr_dtype_t dtype, uint32_t ndim,
                            const int64_t *shape, const int64_t *chunk_sizes, tsr_array_t **out)
{
    int64_t cs[TSR_MAX_DIMS];
    uint32_t nch[TSR_MAX_DIMS] = {0};
    tsr_array_t *a;
    tsr_status_t st;
    int64_t elems = 1;
    int64_t target = AUTO_CHUNK_BYTES / (int64_t)tsr_dtype_size(dtype);

    for (uint32_t d = 0; d < ndim; d++) {
        cs[d] = chunk_sizes != NULL && chunk_sizes[d] > 0 ? chunk_sizes[d] : shape[d];
        if (cs[d] > shape[d] || shape[d] == 0) {
            cs[d] = shape[d] > 0 ? shape[d] : 1; /* a dimension of size 0 has no chunks */
        }
        elems *= cs[d];
    }
    /* Automatic dimensions are halved, the first first, until a chunk fits. */
    for (uint32_t d = 0; d < ndim && elems > target; d++) {
        if (chunk_sizes != NULL && chunk_sizes[d] > 0) {
            continue;
        }
        while (elems > target && cs[d] > 1) {
            elems /= cs[d];
            cs[d] = (cs[d] + 1) / 2;
            elems *= cs[d];
        }
    }
    for (uint32_t d = 0; d < ndim; d++) {
        int64_t n = (shape[d] + cs[d] - 1) / cs[d];
        if (n > UINT32_MAX) {
            return tsr__array_fail(TSR_EINVAL, "array: %lld chunks along dimension %u",
                                   (long long)n, (unsigned)d);
        }
        nch[d] = (uint32_t)n;
    }
    st = alloc_node(rt, dtype, ndim, shape, nch, &a);
    if (st != TSR_OK) {
        return st;
    }
    for (uint32_t d = 0; d < ndim; d++) {
        for (uint32_t i = 0; i <= nch[d]; i++) {
            int64_t b = (int64_t)i * cs[d];
            a->cb[d][i] = b < shape[d] ? b : shape[d];
        }
    }
    *out = a;
    return TSR_OK;
}

tsr_status_t tsr__array_new_like(tsr_runtime_t *rt, tsr_dtype_t dtype, uint32_t ndim,
                                 const int64_t *shape, tsr_array_t *const *like_arr,
                                 const int32_t *like_dim, tsr_array_t **out)
{
    uint32_t nch[TSR_MAX_DIMS] = {0};
    tsr_array_t *a;
    tsr_status_t st;

    for (uint32_t d = 0; d < ndim; d++) {
        nch[d] = like_dim[d] < 0 ? 1 : like_arr[d]->nch[like_dim[d]];
    }
    st = alloc_node(rt, dtype, ndim, shape, nch, &a);
    if (st != TSR_OK) {
        return st;
    }
    for (uint32_t d = 0; d < ndim; d++) {
        if (like_dim[d] < 0) {
            a->cb[d][0] = 0;
            a->cb[d][1] = shape[d];
        } else {
            memcpy(a->cb[d], like_arr[d]->cb[like_dim[d]], (nch[d] + 1) * sizeof(int64_t));
        }
    }
    *out = a;
    return TSR_OK;
}

tsr_status_t tsr__array_new_bounds(tsr_runtime_t *rt, tsr_dtype_t dtype, uint32_t ndim,
                                   const int64_t *shape, const uint32_t *nch,
                                   const int64_t *const *cb, tsr_array_t **out)
{
    tsr_array_t *a;
    tsr_status_t st = alloc_node(rt, dtype, ndim, shape, nch, &a);

    if (st != TSR_OK) {
        return st;
    }
    for (uint32_t d = 0; d < ndim; d++) {
        memcpy(a->cb[d], cb[d], (nch[d] + 1) * sizeof(int64_t));
    }
    *out = a;
    return TSR_OK;
}

uint32_t tsr__bounds_merge(const int64_t *a, uint32_t na, const int64_t *b, uint32_t nb,
                           int64_t *out)
{
    uint32_t i = 1;
    uint32_t j = 1;
    uint32_t n = 0;

    out[0] = 0;
    while (i <= na || j <= nb) {
        int64_t next = i > na ? b[j] : j > nb ? a[i] : a[i] < b[j] ? a[i] : b[j];
        i += i <= na && a[i] == next;
        j += j <= nb && b[j] == next;
        out[++n] = next;
    }
    return n;
}

/* Dimension d of tsr__array_unified_bounds into cb, with tmp as scratch (both
 * with room for every input's boundaries); returns the chunk count. */
static uint32_t unify_dim(tsr_array_t *const *in, uint32_t n, uint32_t nd, uint32_t d,
                          int64_t size, int64_t *cb, int64_t *tmp)
{
    uint32_t nch = 0;
    int any = 0;

    cb[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        const tsr_array_t *x = in[i];
        int32_t k = (int32_t)d - (int32_t)(nd - x->ndim);
        if (k < 0 || x->shape[k] != size || size == 1) {
            continue; /* broadcast along d */
        }
        if (!any) {
            nch = x->nch[k];
            memcpy(cb, x->cb[k], (nch + 1) * sizeof(int64_t));
            any = 1;
        } else {
            nch = tsr__bounds_merge(cb, nch, x->cb[k], x->nch[k], tmp);
            memcpy(cb, tmp, (nch + 1) * sizeof(int64_t));
        }
    }
    if (!any) {
        cb[1] = size;
        nch = size > 0;
    }
    return nch;
}

tsr_status_t tsr__array_unified_bounds(tsr_array_t *const *in, uint32_t n, uint32_t nd,
                                       const int64_t *shape, uint32_t *nch, int64_t **cb)
{
    for (uint32_t d = 0; d < nd; d++) {
        size_t room = 2;
        int64_t *tmp;
        for (uint32_t i = 0; i < n; i++) {
            int32_t k = (int32_t)d - (int32_t)(nd - in[i]->ndim);
            room += k >= 0 ? in[i]->nch[k] : 0;
        }
        cb[d] = malloc(room * sizeof(int64_t));
        tmp = malloc(room * sizeof(int64_t));
        if (cb[d] == NULL || tmp == NULL) {
            free(tmp);
            return tsr__array_fail(TSR_ENOMEM, "array: out of memory for chunk boundaries");
        }
        nch[d] = unify_dim(in, n, nd, d, shape[d], cb[d], tmp);
        free(tmp);
    }
    return TSR_OK;
}

int64_t tsr__array_n_chunks(const tsr_array_t *a)
{
    int64_t n = 1;
    for (uint32_t d = 0; d < a->ndim; d++) {
        n *= a->nch[d];
    }
    return n;
}

void tsr__array_chunk_coords(const tsr_array_t *a, int64_t flat, int64_t *coords)
{
    for (int d = (int)a->ndim - 1; d >= 0; d--) {
        coords[d] = flat % a->nch[d];
        flat /= a->nch[d];
    }
}

int64_t tsr__array_chunk_flat(const tsr_array_t *a, const int64_t *coords)
{
    int64_t flat = 0;
    for (uint32_t d = 0; d < a->ndim; d++) {
        flat = flat * a->nch[d] + coords[d];
    }
    return flat;
}

int64_t tsr__array_chunk_box(const tsr_array_t *a, const int64_t *coords, int64_t *shape,
                             int64_t *origin)
{
    int64_t n = 1;
    for (uint32_t d = 0; d < a->ndim; d++) {
        origin[d] = a->cb[d][coords[d]];
        shape[d] = a->cb[d][coords[d] + 1] - origin[d];
        n *= shape[d];
    }
    return n;
}

static void drop_data(tsr_array_t *a)
{
    if (a->chunks != NULL) {
        int64_t n = tsr__array_n_chunks(a);
        for (int64_t i = 0; i < n; i++) {
            tsr_data_unregister(a->chunks[i]);
        }
        free(a->chunks);
        a->chunks = NULL;
    }
    tsr_data_unregister(a->whole);
    a->whole = NULL;
}

static void drop_inputs(tsr_array_t *a)
{
    for (uint32_t i = 0; i < a->n_in; i++) {
        tsr_array_release(a->in[i]);
        a->in[i] = NULL;
    }
    a->n_in = 0;
    tsr__map_free(a->map);
    a->map = NULL;
    if (a->in != a->in_fixed) {
        free(a->in);
        a->in = a->in_fixed;
    }
}

void tsr__array_become_source(tsr_array_t *a, tsr_data_t **chunks)
{
    drop_data(a);
    drop_inputs(a);
    a->chunks = chunks;
    a->kind = TSR__NODE_SOURCE;
}

tsr_status_t tsr__array_empty_chunks(tsr_data_t ***chunks_out)
{
    *chunks_out = calloc(1, sizeof(**chunks_out));
    return *chunks_out != NULL ? TSR_OK
                               : tsr__array_fail(TSR_ENOMEM, "array: out of memory for a node");
}

tsr_status_t tsr__array_new_empty(tsr_runtime_t *rt, tsr_dtype_t dtype, uint32_t ndim,
                                  const int64_t *shape, const int64_t *chunk_sizes,
                                  tsr_array_t **out)
{
    tsr_data_t **none = NULL;
    tsr_status_t st = tsr__array_empty_chunks(&none);

    if (st == TSR_OK) {
        st = tsr__array_new(rt, dtype, ndim, shape, chunk_sizes, out);
    }
    if (st != TSR_OK) {
        free(none);
        return st;
    }
    tsr__array_become_source(*out, none);
    return TSR_OK;
}

tsr_array_t *tsr_array_retain(tsr_array_t *a)
{
    if (a != NULL) {
        atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    }
    return a;
}

void tsr_array_release(tsr_array_t *a)
{
    if (a == NULL || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    drop_data(a);
    drop_inputs(a);
    free(a->bounds);
    free(a);
}

tsr_dtype_t tsr_array_dtype(const tsr_array_t *a)
{
    return a != NULL ? a->dtype : TSR_FLOAT64;
}

uint32_t tsr_array_ndim(const tsr_array_t *a)
{
    return a != NULL ? a->ndim : 0;
}

int64_t tsr_array_dim(const tsr_array_t *a, uint32_t dim)
{
    return a != NULL && dim < a->ndim ? a->shape[dim] : 0;
}

int64_t tsr_array_size(const tsr_array_t *a)
{
    int64_t n = 1;
    if (a == NULL) {
        return 0;
    }
    for (uint32_t d = 0; d < a->ndim; d++) {
        n *= a->shape[d];
    }
    return n;
}

int64_t tsr_array_num_chunks(const tsr_array_t *a, uint32_t dim)
{
    return a != NULL && dim < a->ndim ? a->nch[dim] : 0;
}

int64_t tsr_array_chunk_size(const tsr_array_t *a, uint32_t dim, int64_t index)
{
    if (a == NULL || dim >= a->ndim || index < 0 || index >= a->nch[dim]) {
        return 0;
    }
    return a->cb[dim][index + 1] - a->cb[dim][index];
}

/* ---- creation --------------------------------------------------------------------- */

static tsr_status_t check_spec(tsr_runtime_t *rt, const tsr_array_spec_t *spec, const char *fn)
{
    if (rt == NULL || spec == NULL) {
        return tsr__array_fail(TSR_EINVAL, "%s: runtime or spec is NULL", fn);
    }
    for (uint32_t d = 0; d < spec->ndim && d < TSR_MAX_DIMS; d++) {
        if (spec->chunks[d] < 0) {
            return tsr__array_fail(TSR_EINVAL, "%s: chunk size %lld along dimension %u", fn,
                                   (long long)spec->chunks[d], (unsigned)d);
        }
    }
    return check_shape(spec->dtype, spec->ndim, spec->shape, fn);
}

tsr_status_t tsr_array_from_buffer(tsr_runtime_t *rt, const tsr_array_spec_t *spec, void *data,
                                   size_t n_bytes, uint32_t flags, tsr_array_t **out)
{
    tsr_status_t st = check_spec(rt, spec, "tsr_array_from_buffer");
    tsr_array_t *a;
    size_t want;

    if (st != TSR_OK) {
        return st;
    }
    want = tsr_dtype_size(spec->dtype);
    for (uint32_t d = 0; d < spec->ndim; d++) {
        want *= (size_t)spec->shape[d];
    }
    if ((data == NULL && want > 0) || out == NULL || n_bytes != want || flags > TSR_ARRAY_BORROW) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_from_buffer: buffer of %zu bytes for an array of %zu "
                               "bytes, a NULL pointer, or unknown flags 0x%x",
                               n_bytes, want, (unsigned)flags);
    }
    if (want == 0) {
        return tsr__array_new_empty(rt, spec->dtype, spec->ndim, spec->shape, spec->chunks, out);
    }
    st = tsr__array_new(rt, spec->dtype, spec->ndim, spec->shape, spec->chunks, &a);
    if (st != TSR_OK) {
        return st;
    }
    st = tsr_data_register(rt, data, n_bytes, &a->whole);
    if (st == TSR_OK && flags == TSR_ARRAY_COPY) {
        tsr_data_t **chunks = NULL;
        st = tsr__array_materialize(a, &chunks);
        if (st == TSR_OK) {
            tsr__array_become_source(a, chunks);
        }
    }
    if (st != TSR_OK) {
        tsr_array_release(a);
        return st;
    }
    *out = a;
    return TSR_OK;
}

static tsr_status_t new_gen(tsr_runtime_t *rt, const tsr_array_spec_t *spec, tsr_leaf_kind_t kind,
                            double p0, double p1, uint64_t seed, const char *fn, tsr_array_t **out)
{
    tsr_status_t st = check_spec(rt, spec, fn);
    tsr_array_t *a;

    if (st == TSR_OK && out == NULL) {
        st = tsr__array_fail(TSR_EINVAL, "%s: out is NULL", fn);
    }
    if (st == TSR_OK) {
        st = tsr__array_new(rt, spec->dtype, spec->ndim, spec->shape, spec->chunks, &a);
    }
    if (st != TSR_OK) {
        return st;
    }
    a->kind = TSR__NODE_GEN;
    a->gen = kind;
    a->p0 = p0;
    a->p1 = p1;
    a->seed = seed;
    *out = a;
    return TSR_OK;
}

tsr_status_t tsr_array_full(tsr_runtime_t *rt, const tsr_array_spec_t *spec, double value,
                            tsr_array_t **out)
{
    /* An arange of step 0. */
    return new_gen(rt, spec, TSR_LEAF_ARANGE, value, 0, 0, "tsr_array_full", out);
}

tsr_status_t tsr_array_zeros(tsr_runtime_t *rt, const tsr_array_spec_t *spec, tsr_array_t **out)
{
    return new_gen(rt, spec, TSR_LEAF_ARANGE, 0, 0, 0, "tsr_array_zeros", out);
}

tsr_status_t tsr_array_ones(tsr_runtime_t *rt, const tsr_array_spec_t *spec, tsr_array_t **out)
{
    return new_gen(rt, spec, TSR_LEAF_ARANGE, 1, 0, 0, "tsr_array_ones", out);
}

static tsr_array_spec_t spec_1d(tsr_dtype_t dtype, int64_t n, int64_t chunk)
{
    tsr_array_spec_t s = TSR_ARRAY_SPEC_INIT;
    s.dtype = dtype;
    s.ndim = 1;
    s.shape[0] = n;
    s.chunks[0] = chunk;
    return s;
}

tsr_status_t tsr_array_arange(tsr_runtime_t *rt, tsr_dtype_t dtype, double start, double stop,
                              double step, int64_t chunk, tsr_array_t **out)
{
    double n = step != 0 ? ceil((stop - start) / step) : NAN;
    tsr_array_spec_t s;

    if (!(n <= 9.0e18)) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_arange: start %g, stop %g, step %g (step 0, a NaN, or "
                               "too many elements)",
                               start, stop, step);
    }
    s = spec_1d(dtype, n > 0 ? (int64_t)n : 0, chunk);
    return new_gen(rt, &s, TSR_LEAF_ARANGE, start, step, 0, "tsr_array_arange", out);
}

tsr_status_t tsr_array_linspace(tsr_runtime_t *rt, tsr_dtype_t dtype, double start, double stop,
                                int64_t num, int64_t chunk, tsr_array_t **out)
{
    tsr_array_spec_t s = spec_1d(dtype, num, chunk);
    return new_gen(rt, &s, TSR_LEAF_ARANGE, start, num > 1 ? (stop - start) / (double)(num - 1) : 0,
                   0, "tsr_array_linspace", out);
}

tsr_status_t tsr_array_random_uniform(tsr_runtime_t *rt, const tsr_array_spec_t *spec,
                                      uint64_t seed, double lo, double hi, tsr_array_t **out)
{
    return new_gen(rt, spec, TSR_LEAF_UNIFORM, lo, hi, seed, "tsr_array_random_uniform", out);
}

tsr_status_t tsr_array_random_normal(tsr_runtime_t *rt, const tsr_array_spec_t *spec,
                                     uint64_t seed, double mean, double stddev, tsr_array_t **out)
{
    if (!(stddev >= 0)) {
        return tsr__array_fail(TSR_EINVAL, "tsr_array_random_normal: stddev %g < 0", stddev);
    }
    return new_gen(rt, spec, TSR_LEAF_NORMAL, mean, stddev, seed, "tsr_array_random_normal", out);
}
