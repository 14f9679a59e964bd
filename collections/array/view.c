/* Structure: slices, new axes, concatenation, stacking and rechunking.
 *
 * Slices and new axes are VIEW nodes, read by the fused kernels through an
 * affine map of coordinates (no copy). A view's chunks are the parts of its
 * input's chunks that it keeps, so each chunk of a view reads one chunk of its
 * input, and a chunk-aligned slice reads only the chunks it needs.
 * Concatenation and rechunking are steps of their own (lower.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tessera/array.h>

#include "collections/array/array_impl.h"

/* Python's slice.indices(n) for a non-zero step: the first index and the count. */
static void slice_indices(const tsr_slice_t *s, int64_t n, int64_t *first, int64_t *len)
{
    int64_t step = s->step;
    int64_t start = s->start;
    int64_t stop = s->stop;

    if (step > 0) {
        start = start == TSR_SLICE_NONE ? 0 : start < 0 ? (start + n < 0 ? 0 : start + n)
                                                        : (start > n ? n : start);
        stop = stop == TSR_SLICE_NONE ? n : stop < 0 ? (stop + n < 0 ? 0 : stop + n)
                                                     : (stop > n ? n : stop);
        *len = stop > start ? (stop - start + step - 1) / step : 0;
    } else {
        start = start == TSR_SLICE_NONE ? n - 1
                : start < 0             ? (start + n < 0 ? -1 : start + n)
                                        : (start >= n ? n - 1 : start);
        stop = stop == TSR_SLICE_NONE ? -1
               : stop < 0             ? (stop + n < 0 ? -1 : stop + n)
                                      : (stop >= n ? n - 1 : stop);
        *len = start > stop ? (start - stop - 1) / -step + 1 : 0;
    }
    *first = start;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The chunk boundaries of indices first + j * step, j < len, over chunks cb[0..nch]:
 * one result chunk per input chunk holding any of them, in the order of j.
 * Writes out[0..*n_out]. */
static void slice_bounds(const int64_t *cb, uint32_t nch, int64_t first, int64_t step, int64_t len,
                         int64_t *out, uint32_t *n_out)
{
    uint32_t n = 0;

    out[0] = 0;
    for (uint32_t i = 0; i < nch; i++) {
        uint32_t c = step > 0 ? i : nch - 1 - i;
        int64_t lo = cb[c];
        int64_t hi = cb[c + 1];
        int64_t jl;
        int64_t jh;
        if (step > 0) {
            jl = -floor_div(-(lo - first), step); /* ceil((lo - first) / step) */
            jh = -floor_div(-(hi - first), step);
        } else {
            jl = floor_div(first - hi, -step) + 1;
            jh = floor_div(first - lo, -step) + 1;
        }
        jl = jl < 0 ? 0 : jl;
        jh = jh > len ? len : jh;
        if (jh > jl) {
            out[++n] = jh;
        }
    }
    *n_out = n;
}

/* A VIEW of a: shape/vmap/vstart/vstep given, and bounds[r] the chunk boundaries
 * of result dimension r (nch[r] chunks). */
static tsr_status_t new_view(tsr_array_t *a, uint32_t nd, const int64_t *shape, const uint32_t *nch,
                             const int64_t *const *bounds, const int32_t *vmap,
                             const int64_t *vstart, const int64_t *vstep, tsr_array_t **out)
{
    tsr_array_t *v;
    tsr_status_t st = tsr__array_new_bounds(a->rt, a->dtype, nd, shape, nch, bounds, &v);

    if (st != TSR_OK) {
        return st;
    }
    v->kind = TSR__NODE_VIEW;
    memcpy(v->vmap, vmap, sizeof(v->vmap));
    memcpy(v->vstart, vstart, sizeof(v->vstart));
    memcpy(v->vstep, vstep, sizeof(v->vstep));
    v->in[0] = tsr_array_retain(a);
    v->n_in = 1;
    *out = v;
    return TSR_OK;
}

tsr_status_t tsr_array_slice(tsr_array_t *a, uint32_t n, const tsr_slice_t *slices,
                             tsr_array_t **out)
{
    int64_t shape[TSR_MAX_DIMS];
    uint32_t nch[TSR_MAX_DIMS];
    int64_t *bounds[TSR_MAX_DIMS] = {NULL};
    int32_t vmap[TSR_MAX_DIMS] = {0};
    int64_t vstart[TSR_MAX_DIMS] = {0};
    int64_t vstep[TSR_MAX_DIMS] = {0};
    uint32_t nd = 0;
    tsr_status_t st = tsr__array_check(a, "tsr_array_slice");

    if (st == TSR_OK && (out == NULL || n > a->ndim || (n > 0 && slices == NULL))) {
        st = tsr__array_fail(TSR_EINVAL,
                             "tsr_array_slice: %u slices for %u dimensions (or slices or out "
                             "is NULL)",
                             (unsigned)n, (unsigned)(a != NULL ? a->ndim : 0));
    }
    for (uint32_t d = 0; st == TSR_OK && d < a->ndim; d++) {
        tsr_slice_t s = {TSR_SLICE_NONE, TSR_SLICE_NONE, 1, 0};
        int64_t first;
        int64_t len;
        if (d < n) {
            s = slices[d];
        }
        if (s.flags & TSR_SLICE_INDEX) {
            int64_t i = s.start < 0 ? s.start + a->shape[d] : s.start;
            if (s.start == TSR_SLICE_NONE || i < 0 || i >= a->shape[d]) {
                st = tsr__array_fail(TSR_EINVAL,
                                     "tsr_array_slice: index %lld is out of range for dimension "
                                     "%u of size %lld",
                                     (long long)s.start, (unsigned)d, (long long)a->shape[d]);
                break;
            }
            vmap[d] = -1;
            vstart[d] = i;
            continue;
        }
        if (s.step == 0 || s.step == TSR_SLICE_NONE) {
            st = tsr__array_fail(TSR_EINVAL, "tsr_array_slice: step 0 along dimension %u",
                                 (unsigned)d);
            break;
        }
        slice_indices(&s, a->shape[d], &first, &len); /* len 0: an empty view, no chunks */
        bounds[nd] = malloc(((size_t)a->nch[d] + 1) * sizeof(int64_t));
        if (bounds[nd] == NULL) {
            st = tsr__array_fail(TSR_ENOMEM, "tsr_array_slice: out of memory");
            break;
        }
        slice_bounds(a->cb[d], a->nch[d], first, s.step, len, bounds[nd], &nch[nd]);
        vmap[d] = (int32_t)nd;
        vstart[d] = first;
        vstep[d] = s.step;
        shape[nd++] = len;
    }
    if (st == TSR_OK) {
        st = new_view(a, nd, shape, nch, (const int64_t *const *)bounds, vmap, vstart, vstep, out);
    }
    for (uint32_t d = 0; d < TSR_MAX_DIMS; d++) {
        free(bounds[d]);
    }
    return st;
}

tsr_status_t tsr_array_expand_dims(tsr_array_t *a, int32_t axis, tsr_array_t **out)
{
    int64_t shape[TSR_MAX_DIMS];
    uint32_t nch[TSR_MAX_DIMS];
    const int64_t *bounds[TSR_MAX_DIMS];
    int64_t one[2] = {0, 1};
    int32_t vmap[TSR_MAX_DIMS] = {0};
    int64_t vstart[TSR_MAX_DIMS] = {0};
    int64_t vstep[TSR_MAX_DIMS] = {0};
    tsr_status_t st = tsr__array_check(a, "tsr_array_expand_dims");
    int32_t ax;

    if (st != TSR_OK) {
        return st;
    }
    ax = axis < 0 ? axis + (int32_t)a->ndim + 1 : axis;
    if (out == NULL || a->ndim == TSR_MAX_DIMS || ax < 0 || ax > (int32_t)a->ndim) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_expand_dims: axis %d for %u dimensions (at most %d "
                               "after), or out is NULL",
                               (int)axis, (unsigned)a->ndim, TSR_MAX_DIMS);
    }
    for (uint32_t r = 0, d = 0; r <= a->ndim; r++) {
        if ((int32_t)r == ax) {
            shape[r] = 1;
            nch[r] = 1;
            bounds[r] = one;
            continue;
        }
        shape[r] = a->shape[d];
        nch[r] = a->nch[d];
        bounds[r] = a->cb[d];
        vmap[d] = (int32_t)r;
        vstep[d] = 1;
        d++;
    }
    return new_view(a, a->ndim + 1, shape, nch, bounds, vmap, vstart, vstep, out);
}

tsr_status_t tsr__array_refined(tsr_array_t *a, const uint32_t *nch, const int64_t *const *cb,
                                tsr_array_t **out)
{
    int32_t vmap[TSR_MAX_DIMS] = {0};
    int64_t vstart[TSR_MAX_DIMS] = {0};
    int64_t vstep[TSR_MAX_DIMS] = {0};
    int same = 1;

    for (uint32_t d = 0; d < a->ndim; d++) {
        vmap[d] = (int32_t)d;
        vstep[d] = 1;
        same = same && nch[d] == a->nch[d] &&
               memcmp(cb[d], a->cb[d], ((size_t)nch[d] + 1) * sizeof(int64_t)) == 0;
    }
    if (same) {
        *out = tsr_array_retain(a);
        return TSR_OK;
    }
    return new_view(a, a->ndim, a->shape, nch, cb, vmap, vstart, vstep, out);
}

/* The arrays of a concatenation along ax checked (same runtime, dimensions and
 * sizes but along ax); *t gets their promoted dtype and shape the result's. */
static tsr_status_t concat_check(tsr_array_t *const *arrays, uint32_t n, int32_t ax,
                                 tsr_dtype_t *t, int64_t *shape)
{
    const tsr_array_t *a0 = arrays[0];
    tsr_status_t st = TSR_OK;

    *t = a0->dtype;
    memcpy(shape, a0->shape, sizeof(int64_t) * a0->ndim);
    shape[ax] = 0;
    for (uint32_t i = 0; i < n && st == TSR_OK; i++) {
        const tsr_array_t *b = arrays[i];
        if (b->rt != a0->rt || b->ndim != a0->ndim) {
            return tsr__array_fail(TSR_EINVAL,
                                   "tsr_array_concatenate: array %u has %u dimensions, array 0 "
                                   "%u (or another runtime)",
                                   (unsigned)i, (unsigned)b->ndim, (unsigned)a0->ndim);
        }
        for (uint32_t d = 0; d < a0->ndim; d++) {
            if ((int32_t)d != ax && b->shape[d] != a0->shape[d]) {
                return tsr__array_fail(TSR_EINVAL,
                                       "tsr_array_concatenate: array %u has size %lld along "
                                       "dimension %u, array 0 %lld",
                                       (unsigned)i, (long long)b->shape[d], (unsigned)d,
                                       (long long)a0->shape[d]);
            }
        }
        shape[ax] += b->shape[ax];
        st = tsr_dtype_promote(*t, b->dtype, t);
    }
    return st;
}

/* The chunk boundaries along ax of a concatenation: each array's chunks, one
 * array after the other (*cb allocated; it replaces what was there). */
static tsr_status_t concat_axis_bounds(tsr_array_t *const *arrays, uint32_t n, int32_t ax,
                                       uint32_t *nch, int64_t **cb)
{
    uint32_t k = 0;
    int64_t *cat;

    *nch = 0;
    for (uint32_t i = 0; i < n; i++) {
        *nch += arrays[i]->nch[ax];
    }
    cat = malloc(((size_t)*nch + 1) * sizeof(int64_t));
    if (cat == NULL) {
        return tsr__array_fail(TSR_ENOMEM, "tsr_array_concatenate: out of memory");
    }
    cat[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < arrays[i]->nch[ax]; j++, k++) {
            cat[k + 1] = cat[k] + arrays[i]->cb[ax][j + 1] - arrays[i]->cb[ax][j];
        }
    }
    free(*cb);
    *cb = cat;
    return TSR_OK;
}

/* The inputs of concatenation c: each array cast to c's dtype and seen with c's
 * chunks across ax (bounds[d], d != ax), so that each chunk of c is one chunk of
 * an input. Arrays empty along ax add nothing to c and are left out. */
static tsr_status_t concat_inputs(tsr_array_t *c, tsr_array_t *const *arrays, uint32_t n,
                                  int64_t *const *bounds)
{
    tsr_status_t st = TSR_OK;
    uint32_t ax = (uint32_t)c->aux;

    for (uint32_t i = 0; i < n && st == TSR_OK; i++) {
        tsr_array_t *x = NULL;
        uint32_t nch[TSR_MAX_DIMS];
        const int64_t *cb[TSR_MAX_DIMS];
        if (arrays[i]->shape[ax] == 0) {
            continue;
        }
        for (uint32_t d = 0; d < c->ndim; d++) {
            nch[d] = d == ax ? arrays[i]->nch[d] : c->nch[d];
            cb[d] = d == ax ? arrays[i]->cb[d] : bounds[d];
        }
        st = tsr_array_cast(arrays[i], c->dtype, &x);
        if (st == TSR_OK) {
            st = tsr__array_refined(x, nch, cb, &c->in[c->n_in]);
            c->n_in += st == TSR_OK;
        }
        tsr_array_release(x);
    }
    return st;
}

tsr_status_t tsr_array_concatenate(tsr_array_t *const *arrays, uint32_t n, int32_t axis,
                                   tsr_array_t **out)
{
    tsr_array_t *c = NULL;
    tsr_dtype_t t;
    int64_t shape[TSR_MAX_DIMS];
    uint32_t nch[TSR_MAX_DIMS];
    int64_t *bounds[TSR_MAX_DIMS] = {NULL};
    uint32_t nd;
    int32_t ax;
    tsr_status_t st = TSR_OK;

    if (arrays == NULL || n == 0 || out == NULL) {
        return tsr__array_fail(TSR_EINVAL, "tsr_array_concatenate: no arrays, or out is NULL");
    }
    for (uint32_t i = 0; i < n && st == TSR_OK; i++) {
        st = tsr__array_check(arrays[i], "tsr_array_concatenate");
    }
    if (st != TSR_OK) {
        return st;
    }
    nd = arrays[0]->ndim;
    ax = axis < 0 ? axis + (int32_t)nd : axis;
    if (nd == 0 || ax < 0 || ax >= (int32_t)nd) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_concatenate: axis %d is out of range for %u dimensions",
                               (int)axis, (unsigned)nd);
    }
    st = concat_check(arrays, n, ax, &t, shape);
    if (st == TSR_OK) {
        /* The chunks across ax unified; along ax (size -1 here, which no array
         * has) each array's own, one after the other. */
        int64_t along = shape[ax];
        shape[ax] = -1;
        st = tsr__array_unified_bounds(arrays, n, nd, shape, nch, bounds);
        shape[ax] = along;
    }
    if (st == TSR_OK) {
        st = concat_axis_bounds(arrays, n, ax, &nch[ax], &bounds[ax]);
    }
    if (st == TSR_OK) {
        st = tsr__array_new_bounds(arrays[0]->rt, t, nd, shape, nch,
                                   (const int64_t *const *)bounds, &c);
    }
    if (st == TSR_OK && n > 3 && (c->in = calloc(n, sizeof(*c->in))) == NULL) {
        c->in = c->in_fixed;
        st = tsr__array_fail(TSR_ENOMEM, "tsr_array_concatenate: out of memory");
    }
    if (st == TSR_OK) {
        c->kind = TSR__NODE_CONCAT;
        c->aux = ax;
        st = concat_inputs(c, arrays, n, bounds);
    }
    for (uint32_t d = 0; d < nd; d++) {
        free(bounds[d]);
    }
    if (st != TSR_OK) {
        tsr_array_release(c);
        return st;
    }
    *out = c;
    return TSR_OK;
}

tsr_status_t tsr_array_stack(tsr_array_t *const *arrays, uint32_t n, int32_t axis,
                             tsr_array_t **out)
{
    tsr_array_t **ex;
    tsr_status_t st = TSR_OK;
    uint32_t made = 0;

    if (arrays == NULL || n == 0 || out == NULL) {
        return tsr__array_fail(TSR_EINVAL, "tsr_array_stack: no arrays, or out is NULL");
    }
    for (uint32_t i = 0; i < n && st == TSR_OK; i++) {
        st = tsr__array_check(arrays[i], "tsr_array_stack");
        if (st == TSR_OK && (arrays[i]->ndim != arrays[0]->ndim ||
                             memcmp(arrays[i]->shape, arrays[0]->shape,
                                    arrays[0]->ndim * sizeof(int64_t)) != 0)) {
            st = tsr__array_fail(TSR_EINVAL,
                                 "tsr_array_stack: array %u has another shape than array 0",
                                 (unsigned)i);
        }
    }
    if (st != TSR_OK) {
        return st;
    }
    ex = calloc(n, sizeof(*ex));
    if (ex == NULL) {
        return tsr__array_fail(TSR_ENOMEM, "tsr_array_stack: out of memory");
    }
    for (; made < n && st == TSR_OK; made++) {
        st = tsr_array_expand_dims(arrays[made], axis, &ex[made]);
    }
    if (st == TSR_OK) {
        st = tsr_array_concatenate(ex, n, axis, out);
    }
    for (uint32_t i = 0; i < made; i++) {
        tsr_array_release(ex[i]);
    }
    free(ex);
    return st;
}

tsr_status_t tsr_array_rechunk(tsr_array_t *a, const int64_t *chunks, tsr_array_t **out)
{
    int64_t cs[TSR_MAX_DIMS];
    uint32_t nch[TSR_MAX_DIMS];
    int64_t *bounds[TSR_MAX_DIMS] = {NULL};
    int same = 1;
    tsr_array_t *r = NULL;
    tsr_status_t st = tsr__array_check(a, "tsr_array_rechunk");

    if (st == TSR_OK && (out == NULL || (chunks == NULL && a->ndim > 0))) {
        st = tsr__array_fail(TSR_EINVAL, "tsr_array_rechunk: chunks or out is NULL");
    }
    for (uint32_t d = 0; st == TSR_OK && d < a->ndim; d++) {
        if (chunks[d] < -1) {
            st = tsr__array_fail(TSR_EINVAL,
                                 "tsr_array_rechunk: chunk size %lld along dimension %u (sizes "
                                 ">= 1, 0 to keep, -1 for one chunk)",
                                 (long long)chunks[d], (unsigned)d);
            break;
        }
        cs[d] = chunks[d] == -1 || chunks[d] > a->shape[d] ? a->shape[d] : chunks[d];
        if (cs[d] == 0) {
            nch[d] = a->nch[d];
            bounds[d] = malloc(((size_t)nch[d] + 1) * sizeof(int64_t));
            if (bounds[d] != NULL) {
                memcpy(bounds[d], a->cb[d], ((size_t)nch[d] + 1) * sizeof(int64_t));
            }
        } else {
            int64_t k = (a->shape[d] + cs[d] - 1) / cs[d];
            if (k > UINT32_MAX) {
                st = tsr__array_fail(TSR_EINVAL, "tsr_array_rechunk: %lld chunks along dimension %u",
                                     (long long)k, (unsigned)d);
                break;
            }
            nch[d] = (uint32_t)k;
            bounds[d] = malloc(((size_t)nch[d] + 1) * sizeof(int64_t));
            for (uint32_t i = 0; bounds[d] != NULL && i <= nch[d]; i++) {
                int64_t b = (int64_t)i * cs[d];
                bounds[d][i] = b < a->shape[d] ? b : a->shape[d];
            }
        }
        if (bounds[d] == NULL) {
            st = tsr__array_fail(TSR_ENOMEM, "tsr_array_rechunk: out of memory");
            break;
        }
        same = same && nch[d] == a->nch[d] &&
               memcmp(bounds[d], a->cb[d], ((size_t)nch[d] + 1) * sizeof(int64_t)) == 0;
    }
    if (st == TSR_OK && same) {
        *out = tsr_array_retain(a);
    } else if (st == TSR_OK) {
        st = tsr__array_new_bounds(a->rt, a->dtype, a->ndim, a->shape, nch,
                                   (const int64_t *const *)bounds, &r);
        if (st == TSR_OK) {
            r->kind = TSR__NODE_RECHUNK;
            r->in[0] = tsr_array_retain(a);
            r->n_in = 1;
            *out = r;
        }
    }
    for (uint32_t d = 0; d < TSR_MAX_DIMS; d++) {
        free(bounds[d]);
    }
    return st;
}

/* ---- reshape ------------------------------------------------------------------------- */

/* The dimensions of a reshape fall into groups: runs of input and output
 * dimensions (sizes 1 left out) with equal products. Within a group, each input
 * chunk must be a contiguous run of the group's C-order elements, and those runs
 * must be the boxes of a chunk grid of the output dimensions. */

/* The flat boundaries within a group of input dimensions dims[0..n): each chunk
 * is a run when the dimensions before the last chunked one have chunks of 1.
 * Writes a malloc'd F[0..*nf] (F[0] = 0, F[*nf] = the group's size). */
static tsr_status_t reshape_runs(const tsr_array_t *a, const uint32_t *dims, uint32_t n,
                                 int64_t **F_out, int64_t *nf)
{
    int64_t prefix = 1;
    int64_t tail = 1;
    int64_t total = 1;
    int64_t *F;
    int64_t m = 0;
    int k = -1;

    for (uint32_t i = 0; i < n; i++) {
        total *= a->shape[dims[i]];
        if (a->nch[dims[i]] > 1) {
            k = (int)i;
        }
    }
    for (int i = 0; i < k; i++) {
        uint32_t d = dims[i];
        if (a->nch[d] != a->shape[d]) {
            return tsr__array_fail(TSR_EINVAL,
                                   "tsr_array_reshape: dimension %u of the array (size %lld, %u "
                                   "chunks) merges with dimension %u, which has %u chunks: a "
                                   "chunk would not be a contiguous run of the merged "
                                   "dimension; rechunk dimension %u to one chunk (-1) first",
                                   (unsigned)d, (long long)a->shape[d], (unsigned)a->nch[d],
                                   (unsigned)dims[k], (unsigned)a->nch[dims[k]],
                                   (unsigned)dims[k]);
        }
        prefix *= a->shape[d];
    }
    for (uint32_t i = (uint32_t)(k + 1); k >= 0 && i < n; i++) {
        tail *= a->shape[dims[i]];
    }
    if (k < 0) {
        F = malloc(2 * sizeof(*F));
        if (F == NULL) {
            return tsr__array_fail(TSR_ENOMEM, "tsr_array_reshape: out of memory");
        }
        F[0] = 0;
        F[1] = total;
        *F_out = F;
        *nf = 1;
        return TSR_OK;
    }
    F = malloc(((size_t)(prefix * a->nch[dims[k]]) + 1) * sizeof(*F));
    if (F == NULL) {
        return tsr__array_fail(TSR_ENOMEM, "tsr_array_reshape: out of memory");
    }
    for (int64_t p = 0; p < prefix; p++) {
        for (uint32_t c = 0; c < a->nch[dims[k]]; c++) {
            F[m++] = (p * a->shape[dims[k]] + a->cb[dims[k]][c]) * tail;
        }
    }
    F[m] = total;
    *F_out = F;
    *nf = m;
    return TSR_OK;
}

/* A chunk grid of output sizes os[0..n) whose boxes are the runs F[0..nf]:
 * chunks of 1 along os[0..k), the runs of one row along os[k], one chunk along
 * the rest, for the first k that fits. Writes nch[0..n) and malloc'd bounds. */
static int reshape_grid(const int64_t *os, uint32_t n, const int64_t *F, int64_t nf,
                        uint32_t *nch, int64_t **bounds)
{
    for (uint32_t k = 0; k < n; k++) {
        int64_t T = 1;
        int64_t R;
        int64_t per_row = 0;
        int fits = 1;

        for (uint32_t i = k + 1; i < n; i++) {
            T *= os[i];
        }
        R = os[k] * T;
        while (per_row < nf && F[per_row + 1] <= R) {
            per_row++;
        }
        if (F[per_row] != R || nf % per_row != 0) {
            continue;
        }
        for (int64_t j = 0; j <= nf && fits; j++) {
            fits = F[j] % T == 0 && F[j] == (j / per_row) * R + F[j % per_row];
        }
        if (!fits) {
            continue;
        }
        for (uint32_t i = 0; i < n; i++) {
            int64_t c = i < k ? os[i] : i == k ? per_row : 1;
            bounds[i] = malloc(((size_t)c + 1) * sizeof(int64_t));
            if (bounds[i] == NULL) {
                return -1;
            }
            nch[i] = (uint32_t)c;
            for (int64_t j = 0; j <= c; j++) {
                bounds[i][j] = i < k ? j : i == k ? F[j] / T : j * os[i];
            }
        }
        return 1;
    }
    return 0;
}

tsr_status_t tsr_array_reshape(tsr_array_t *a, uint32_t ndim, const int64_t *shape,
                               tsr_array_t **out)
{
    int64_t ns[TSR_MAX_DIMS];
    uint32_t nch[TSR_MAX_DIMS];
    int64_t *bounds[TSR_MAX_DIMS] = {NULL};
    uint32_t idims[TSR_MAX_DIMS], odims[TSR_MAX_DIMS];
    uint32_t ni = 0, no = 0;
    int64_t known = 1;
    int infer = -1;
    tsr_array_t *r = NULL;
    tsr_status_t st = tsr__array_check(a, "tsr_array_reshape");

    if (st != TSR_OK) {
        return st;
    }
    if (out == NULL || ndim > TSR_MAX_DIMS || (ndim > 0 && shape == NULL)) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_reshape: %u dimensions (at most %d), or shape or out "
                               "is NULL",
                               (unsigned)ndim, TSR_MAX_DIMS);
    }
    for (uint32_t d = 0; d < ndim; d++) {
        if (shape[d] == -1 && infer < 0) {
            infer = (int)d;
        } else if (shape[d] < 0) {
            return tsr__array_fail(TSR_EINVAL,
                                   "tsr_array_reshape: size %lld for dimension %u (sizes >= 0, "
                                   "and one -1 to infer)",
                                   (long long)shape[d], (unsigned)d);
        } else {
            known *= shape[d];
        }
        ns[d] = shape[d];
    }
    if (infer >= 0 && known == 0) {
        return tsr__array_fail(TSR_EINVAL, "tsr_array_reshape: a -1 beside a size of 0 could "
                                           "be any size (as NumPy, refused)");
    }
    if (infer >= 0 && tsr_array_size(a) % known == 0) {
        ns[infer] = tsr_array_size(a) / known;
        known *= ns[infer];
    }
    if (known != tsr_array_size(a)) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_reshape: cannot reshape an array of %lld elements into "
                               "a shape of %lld%s",
                               (long long)tsr_array_size(a), (long long)known,
                               infer >= 0 ? " times a whole number" : "");
    }
    if (ndim == a->ndim && memcmp(ns, a->shape, ndim * sizeof(int64_t)) == 0) {
        *out = tsr_array_retain(a);
        return TSR_OK;
    }
    if (known == 0) {
        return tsr__array_new_empty(a->rt, a->dtype, ndim, ns, NULL, out);
    }
    for (uint32_t d = 0; d < a->ndim; d++) {
        if (a->shape[d] > 1) {
            idims[ni++] = d;
        }
    }
    for (uint32_t d = 0; d < ndim; d++) {
        if (ns[d] > 1) {
            odims[no++] = d;
        } else {
            nch[d] = 1;
            bounds[d] = malloc(2 * sizeof(int64_t));
            if (bounds[d] == NULL) {
                st = tsr__array_fail(TSR_ENOMEM, "tsr_array_reshape: out of memory");
                break;
            }
            bounds[d][0] = 0;
            bounds[d][1] = 1;
        }
    }
    /* Each group: input dimensions idims[i0..i), output ones odims[o0..o). */
    for (uint32_t i = 0, o = 0; st == TSR_OK && i < ni;) {
        uint32_t i0 = i, o0 = o;
        int64_t pi = a->shape[idims[i++]];
        int64_t po = ns[odims[o++]];
        int64_t os[TSR_MAX_DIMS];
        uint32_t gnch[TSR_MAX_DIMS];
        int64_t *F = NULL;
        int64_t nf = 0;
        int fit;

        while (pi != po) {
            if (pi < po) {
                pi *= a->shape[idims[i++]];
            } else {
                po *= ns[odims[o++]];
            }
        }
        st = reshape_runs(a, idims + i0, i - i0, &F, &nf);
        if (st != TSR_OK) {
            break;
        }
        for (uint32_t j = o0; j < o; j++) {
            os[j - o0] = ns[odims[j]];
        }
        int64_t *gb[TSR_MAX_DIMS] = {NULL};
        fit = reshape_grid(os, o - o0, F, nf, gnch, gb);
        free(F);
        for (uint32_t j = o0; j < o; j++) {
            nch[odims[j]] = gnch[j - o0];
            bounds[odims[j]] = gb[j - o0];
        }
        if (fit < 0) {
            st = tsr__array_fail(TSR_ENOMEM, "tsr_array_reshape: out of memory");
        } else if (fit == 0) {
            int64_t t = pi / os[0];
            st = tsr__array_fail(TSR_EINVAL,
                                 "tsr_array_reshape: the chunks of dimensions %u..%u of the "
                                 "array are no chunk grid of the new dimensions %u..%u; rechunk "
                                 "them to one chunk each (-1) first, or to chunk boundaries "
                                 "that are multiples of %lld",
                                 (unsigned)idims[i0], (unsigned)idims[i - 1],
                                 (unsigned)odims[o0], (unsigned)odims[o - 1], (long long)t);
        }
    }
    if (st == TSR_OK) {
        st = tsr__array_new_bounds(a->rt, a->dtype, ndim, ns, nch,
                                   (const int64_t *const *)bounds, &r);
    }
    if (st == TSR_OK) {
        r->kind = TSR__NODE_RESHAPE;
        r->in[0] = tsr_array_retain(a);
        r->n_in = 1;
        *out = r;
    }
    for (uint32_t d = 0; d < TSR_MAX_DIMS; d++) {
        free(bounds[d]);
    }
    return st;
}
