/* Computing an array: into a host buffer (tsr_array_compute), into chunks the
 * array keeps (tsr_array_persist), or into new handles (tsr__array_materialize),
 * each one lowering (lower.c) from the array as its root, waited for, then its
 * temporaries given back. Empty arrays run nothing. */
#include <stdlib.h>
#include <string.h>
#include <tessera/array.h>
#include <tessera/task.h>

#include "collections/array/array_impl.h"
#include "collections/array/lower.h"
#include "collections/array/lower_impl.h"

/* A lowering from `root`; dev_room: the smallest accelerator memory (tasks
 * needing more than half of it run on the CPU, tsr__lower_submit). */
static void lower_init(lower_t *L, tsr_array_t *root)
{
    uint32_t n = tsr_runtime_n_devices(root->rt);

    memset(L, 0, sizeof(*L));
    L->rt = root->rt;
    L->root = root;
    for (uint32_t d = 1; d < n; d++) {
        tsr_device_info_t info;
        if (tsr_runtime_device_info(root->rt, d, &info) == TSR_OK && info.mem_bytes > 0 &&
            (L->dev_room == 0 || info.mem_bytes < L->dev_room)) {
            L->dev_room = info.mem_bytes;
        }
    }
}

static tsr_status_t wait_root(lower_t *L)
{
    tsr_status_t st = TSR_OK;

    for (size_t i = 0; i < L->n_futs; i++) {
        tsr_status_t s = tsr_future_wait(L->futs[i]);
        if (s != TSR_OK && st == TSR_OK) {
            st = tsr__array_fail(s, "array compute: %s", tsr_future_message(L->futs[i]));
        }
    }
    return st;
}

/* Unregister the temporaries (except `keep`'s chunks, which are returned). */
static tsr_data_t **cleanup(lower_t *L, const tsr_array_t *keep)
{
    tsr_data_t **kept = NULL;

    for (size_t i = 0; i < L->n_futs; i++) {
        tsr_future_release(L->futs[i]);
    }
    for (size_t i = 0; i < L->n_tmps; i++) {
        if (L->tmps[i].node == keep) {
            kept = L->tmps[i].chunks;
            continue;
        }
        for (int64_t c = 0; c < tsr__array_n_chunks(L->tmps[i].node); c++) {
            tsr_data_unregister(L->tmps[i].chunks[c]);
        }
        free(L->tmps[i].chunks);
    }
    for (size_t i = 0; i < L->n_garbage; i++) {
        tsr_data_unregister(L->garbage[i]);
    }
    free(L->futs);
    free(L->tmps);
    free(L->garbage);
    free(L->split);
    return kept;
}

tsr_status_t tsr__array_materialize(tsr_array_t *a, tsr_data_t ***chunks_out)
{
    lower_t L;
    tsr_status_t st;
    tsr_data_t **kept;

    if (tsr_array_size(a) == 0) {
        return tsr__array_empty_chunks(chunks_out); /* nothing to run */
    }
    lower_init(&L, a);
    st = tsr__lower_materialize(&L, a, NULL);
    if (st == TSR_OK) {
        st = wait_root(&L);
    }
    kept = cleanup(&L, st == TSR_OK ? a : NULL);
    if (st == TSR_OK) {
        *chunks_out = kept;
    }
    return st;
}

tsr_status_t tsr_array_persist(tsr_array_t *a)
{
    tsr_data_t **chunks = NULL;
    tsr_status_t st = tsr__array_check(a, "tsr_array_persist");

    if (st != TSR_OK || a->chunks != NULL) {
        return st;
    }
    st = tsr__array_materialize(a, &chunks);
    if (st == TSR_OK) {
        tsr__array_become_source(a, chunks);
    }
    return st;
}

/* Copy a C-order chunk of shape cs at `origin` into the C-order array `dst`. */
static void copy_box(char *dst, const tsr_array_t *a, const int64_t *cs, const int64_t *origin,
                     const char *src)
{
    size_t es = tsr_dtype_size(a->dtype);
    int64_t full[TSR_MAX_DIMS];
    int64_t idx[TSR_MAX_DIMS] = {0};
    uint32_t nd = a->ndim;
    size_t row;

    if (nd == 0) {
        memcpy(dst, src, es);
        return;
    }
    tsr__c_strides(nd, a->shape, full);
    row = (size_t)cs[nd - 1] * es;
    for (;;) {
        int64_t off = 0;
        for (uint32_t d = 0; d < nd; d++) {
            off += (origin[d] + (d + 1 < nd ? idx[d] : 0)) * full[d];
        }
        memcpy(dst + (size_t)off * es, src, row);
        src += row;
        int d = (int)nd - 2;
        while (d >= 0 && ++idx[d] == cs[d]) {
            idx[d] = 0;
            d--;
        }
        if (d < 0) {
            return;
        }
    }
}

/* Whether each chunk of `a` is one contiguous run of the C-order array: before
 * the first dimension split into chunks every size is 1, after it nothing is
 * split. */
static int chunks_contiguous(const tsr_array_t *a)
{
    uint32_t d = 0;
    while (d < a->ndim && a->nch[d] == 1) {
        d++;
    }
    for (uint32_t k = 0; k < d && d < a->ndim; k++) {
        if (a->shape[k] != 1) {
            return 0;
        }
    }
    for (d = d + 1; d < a->ndim; d++) {
        if (a->nch[d] != 1) {
            return 0;
        }
    }
    return 1;
}

tsr_status_t tsr_array_compute(tsr_array_t *a, void *out, size_t n_bytes)
{
    lower_t L;
    tsr_status_t st = tsr__array_check(a, "tsr_array_compute");
    size_t es;
    size_t want;
    int64_t n_chunks;
    tsr_data_t **direct = NULL;
    tsr_data_t **chunks = NULL;

    if (st != TSR_OK) {
        return st;
    }
    es = tsr_dtype_size(a->dtype);
    want = (size_t)tsr_array_size(a) * es;
    if ((out == NULL && want > 0) || n_bytes != want) {
        return tsr__array_fail(TSR_EINVAL,
                               "tsr_array_compute: buffer of %zu bytes for an array of %zu bytes "
                               "(or NULL)",
                               n_bytes, want);
    }
    if (want == 0) {
        return TSR_OK;
    }
    n_chunks = tsr__array_n_chunks(a);
    lower_init(&L, a);
    if (a->chunks == NULL && chunks_contiguous(a)) {
        /* The root's kernels write straight into the caller's buffer. */
        direct = calloc((size_t)n_chunks, sizeof(*direct));
        st = direct != NULL ? TSR_OK : tsr__lower_oom();
        for (int64_t c = 0; c < n_chunks && st == TSR_OK; c++) {
            int64_t coords[TSR_MAX_DIMS];
            int64_t cs[TSR_MAX_DIMS];
            int64_t origin[TSR_MAX_DIMS];
            int64_t full[TSR_MAX_DIMS] = {0};
            int64_t off = 0;
            int64_t n;
            tsr__array_chunk_coords(a, c, coords);
            n = tsr__array_chunk_box(a, coords, cs, origin);
            tsr__c_strides(a->ndim, a->shape, full);
            for (uint32_t d = 0; d < a->ndim; d++) {
                off += origin[d] * full[d];
            }
            st = tsr_data_register(a->rt, (char *)out + (size_t)off * es, (size_t)n * es,
                                   &direct[c]);
        }
        if (st == TSR_OK) {
            st = tsr__lower_materialize(&L, a, direct);
        }
        if (st == TSR_OK) {
            st = wait_root(&L);
        }
    } else {
        if (a->chunks == NULL) {
            st = tsr__lower_materialize(&L, a, NULL);
            if (st == TSR_OK) {
                st = wait_root(&L);
            }
        }
        chunks = tsr__lower_chunks(&L, a);
        for (int64_t c = 0; c < n_chunks && st == TSR_OK; c++) {
            int64_t coords[TSR_MAX_DIMS];
            int64_t cs[TSR_MAX_DIMS];
            int64_t origin[TSR_MAX_DIMS];
            void *p;
            tsr__array_chunk_coords(a, c, coords);
            tsr__array_chunk_box(a, coords, cs, origin);
            st = tsr_data_acquire(chunks[c], TSR_R, &p, NULL);
            if (st == TSR_OK) {
                copy_box(out, a, cs, origin, p);
                tsr_data_release(chunks[c]);
            }
        }
    }
    cleanup(&L, NULL);
    if (direct != NULL) {
        for (int64_t c = 0; c < n_chunks; c++) {
            tsr_data_unregister(direct[c]);
        }
        free(direct);
    }
    return st;
}
