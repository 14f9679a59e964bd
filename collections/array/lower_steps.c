/* The steps of a compute that are neither fused programs nor reductions:
 * products of chunks (gemm tasks), concatenation (each input computed into its
 * part of the result) and rechunking (copy tasks assembling new chunks). */
#include <stdlib.h>
#include <string.h>
#include <tessera/array.h>
#include <tessera/task.h>

#include "collections/array/lower_impl.h"

/* The operand block of a product whose first element is (r0, c0) of x: the
 * handle holding it, the offset there and the row stride (the block lies inside
 * one chunk). */
static tsr_data_t *gemm_operand(const lower_t *L, const tsr_array_t *x, int64_t r0, int64_t c0,
                                int64_t *off, int64_t *ld)
{
    int64_t ci;
    int64_t cj;

    if (x->whole != NULL) {
        *ld = x->shape[1];
        *off = r0 * x->shape[1] + c0;
        return x->whole;
    }
    ci = tsr__chunk_at(x, 0, r0);
    cj = tsr__chunk_at(x, 1, c0);
    *ld = x->cb[1][cj + 1] - x->cb[1][cj];
    *off = (r0 - x->cb[0][ci]) * *ld + (c0 - x->cb[1][cj]);
    return tsr__lower_chunks(L, x)[ci * x->nch[1] + cj];
}

/* The products of each of a's chunk rows i and b's chunk columns j over the k
 * steps kb[0..nk] (a's and b's boundaries along k merged), into outs. */
static tsr_status_t submit_products(lower_t *L, tsr_array_t *r, const int64_t *kb, uint32_t nk,
                                    tsr_data_t **outs)
{
    tsr_array_t *a = r->in[0];
    tsr_array_t *b = r->in[1];
    tsr_status_t st = TSR_OK;

    for (int64_t i = 0; i < a->nch[0] && st == TSR_OK; i++) {
        for (int64_t j = 0; j < b->nch[1] && st == TSR_OK; j++) {
            for (uint32_t p = 0; p < nk && st == TSR_OK; p++) {
                tsr_gemm_arg_t g;
                tsr_data_t *handles[3];
                tsr_access_t modes[3] = {TSR_R, TSR_R, p == 0 ? TSR_W : TSR_RW};
                tsr_task_desc_t desc = TSR_TASK_DESC_INIT;

                memset(&g, 0, sizeof(g));
                g.m = a->cb[0][i + 1] - a->cb[0][i];
                g.k = kb[p + 1] - kb[p];
                g.n = b->cb[1][j + 1] - b->cb[1][j];
                g.type = (int32_t)r->dtype;
                g.beta = p > 0;
                handles[0] = gemm_operand(L, a, a->cb[0][i], kb[p], &g.off_a, &g.lda);
                handles[1] = gemm_operand(L, b, kb[p], b->cb[1][j], &g.off_b, &g.ldb);
                handles[2] = outs[i * b->nch[1] + j];
                desc.codelet = &tsr__gemm_codelet;
                desc.handles = handles;
                desc.modes = modes;
                desc.n_handles = 3;
                desc.arg = &g;
                desc.arg_size = sizeof(g);
                /* Each output chunk is a chain of products along k. Earlier links
                 * first, across chains, so that the last ones are many
                 * independent tasks the workers share, not a few chains that
                 * one worker runs to the end while the others wait. */
                desc.priority = (int32_t)(nk - p);
                st = tsr__lower_submit(
                    L, &desc,
                    (uint64_t)(g.m * g.k + g.k * g.n + g.m * g.n) * tsr_dtype_size(r->dtype),
                    L->root == r);
            }
        }
    }
    return st;
}

tsr_status_t tsr__lower_matmul(lower_t *L, tsr_array_t *r, tsr_data_t **outs)
{
    tsr_array_t *a = r->in[0];
    tsr_array_t *b = r->in[1];
    int64_t *kb;
    uint32_t nk;
    tsr_status_t st = TSR_OK;

    /* The operands are data: computed first when they are expressions. */
    if (tsr__lower_chunks(L, a) == NULL && a->whole == NULL) {
        st = tsr__lower_materialize(L, a, NULL);
    }
    if (st == TSR_OK && tsr__lower_chunks(L, b) == NULL && b->whole == NULL) {
        st = tsr__lower_materialize(L, b, NULL);
    }
    if (st != TSR_OK) {
        return st;
    }
    /* Each k step lies inside one of a's chunk columns and one of b's chunk rows. */
    kb = malloc(((size_t)a->nch[1] + b->nch[0] + 1) * sizeof(int64_t));
    if (kb == NULL) {
        return tsr__lower_oom();
    }
    nk = tsr__bounds_merge(a->cb[1], a->nch[1], b->cb[0], b->nch[0], kb);
    st = submit_products(L, r, kb, nk, outs);
    free(kb);
    return st;
}

/* Each input computed straight into its chunks of the result. */
tsr_status_t tsr__lower_concat(lower_t *L, tsr_array_t *x, tsr_data_t **outs)
{
    int64_t base = 0;
    tsr_status_t st = TSR_OK;

    for (uint32_t i = 0; i < x->n_in && st == TSR_OK; i++) {
        tsr_array_t *b = x->in[i];
        int64_t nb = tsr__array_n_chunks(b);
        tsr_data_t **mine = malloc((size_t)nb * sizeof(*mine));
        if (mine == NULL) {
            return tsr__lower_oom();
        }
        for (int64_t c = 0; c < nb; c++) {
            int64_t coords[TSR_MAX_DIMS];
            tsr__array_chunk_coords(b, c, coords);
            coords[x->aux] += base;
            mine[c] = outs[tsr__array_chunk_flat(x, coords)];
        }
        st = tsr__lower_compute_into(L, b, mine, L->root == x);
        free(mine);
        base += b->nch[x->aux];
    }
    return st;
}

tsr_status_t tsr__lower_flush_copy(lower_t *L, copy_batch_t *B, tsr_data_t *out, int root)
{
    tsr_access_t modes[TSR_MAX_BUFFERS];
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    tsr_status_t st;

    if (B->h.n_pieces == 0) {
        return TSR_OK;
    }
    for (uint32_t i = 0; i < B->n_h; i++) {
        modes[i] = TSR_R;
    }
    B->h.out_buf = B->n_h;
    B->handles[B->n_h] = out;
    modes[B->n_h] = B->h.alloc ? TSR_W : TSR_RW;
    desc.codelet = &tsr__copy_codelet;
    desc.handles = B->handles;
    desc.modes = modes;
    desc.n_handles = B->n_h + 1;
    desc.arg = B;
    desc.arg_size = sizeof(B->h) + B->h.n_pieces * sizeof(tsr_copy_piece_t);
    st = tsr__lower_submit(L, &desc, 2 * B->h.out_bytes, root);
    B->h.n_pieces = 0;
    B->h.alloc = 0;
    B->n_h = 0;
    return st;
}

tsr_status_t tsr__lower_add_piece(lower_t *L, copy_batch_t *B, tsr_data_t *src,
                                  const tsr_copy_piece_t *p, tsr_data_t *out, int root)
{
    uint32_t k = 0;
    tsr_status_t st;

    while (src != NULL && k < B->n_h && B->handles[k] != src) {
        k++;
    }
    if (B->h.n_pieces == TSR_COPY_MAX_PIECES ||
        (src != NULL && k == B->n_h && B->n_h == TSR_MAX_BUFFERS - 1)) {
        st = tsr__lower_flush_copy(L, B, out, root);
        if (st != TSR_OK) {
            return st;
        }
        k = 0;
    }
    if (src != NULL && k == B->n_h) {
        B->handles[B->n_h++] = src;
    }
    B->p[B->h.n_pieces] = *p;
    B->p[B->h.n_pieces++].buf = src != NULL ? (int32_t)k : 0;
    return TSR_OK;
}

/* Each new chunk assembled from the old chunks it overlaps. */
tsr_status_t tsr__lower_rechunk(lower_t *L, tsr_array_t *x, tsr_data_t **outs)
{
    tsr_array_t *b = x->in[0];
    int root = L->root == x;
    size_t es = tsr_dtype_size(x->dtype);
    copy_batch_t *B;
    tsr_status_t st = TSR_OK;

    if (b->kind == TSR__NODE_GEN || b->whole != NULL) {
        /* Read by global coordinates: any chunks will do. */
        return tsr__lower_run_group(L, b, x, outs, root);
    }
    if (tsr__lower_chunks(L, b) == NULL) {
        st = tsr__lower_materialize(L, b, NULL);
        if (st != TSR_OK) {
            return st;
        }
    }
    B = malloc(sizeof(*B));
    if (B == NULL) {
        return tsr__lower_oom();
    }
    for (int64_t o = 0; o < tsr__array_n_chunks(x) && st == TSR_OK; o++) {
        int64_t oc[TSR_MAX_DIMS], os[TSR_MAX_DIMS], oo[TSR_MAX_DIMS];
        int64_t lo[TSR_MAX_DIMS], hi[TSR_MAX_DIMS], ic[TSR_MAX_DIMS];
        int64_t n;

        tsr__array_chunk_coords(x, o, oc);
        n = tsr__array_chunk_box(x, oc, os, oo);

        memset(&B->h, 0, sizeof(B->h));
        B->h.magic = TSR_COPY_MAGIC;
        B->h.ndim = x->ndim;
        B->h.elem_size = (uint32_t)es;
        memcpy(B->h.shape, os, sizeof(os));
        B->h.alloc = 1;
        B->h.out_bytes = (uint64_t)n * es;
        B->n_h = 0;
        for (uint32_t d = 0; d < x->ndim; d++) {
            lo[d] = tsr__chunk_at(b, d, oo[d]);
            hi[d] = tsr__chunk_at(b, d, oo[d] + os[d] - 1);
            ic[d] = lo[d];
        }
        for (;;) {
            int64_t cs[TSR_MAX_DIMS], co[TSR_MAX_DIMS], cst[TSR_MAX_DIMS];
            tsr_data_t *src = tsr__lower_chunks(L, b)[tsr__array_chunk_flat(b, ic)];
            tsr_copy_piece_t piece;
            tsr_copy_piece_t *p = &piece;

            tsr__array_chunk_box(b, ic, cs, co);
            tsr__c_strides(b->ndim, cs, cst);
            memset(p, 0, sizeof(*p));
            p->kind = TSR_PIECE_COPY;
            for (uint32_t d = 0; d < x->ndim; d++) {
                int64_t a0 = oo[d] > co[d] ? oo[d] : co[d];
                int64_t a1 = oo[d] + os[d] < co[d] + cs[d] ? oo[d] + os[d] : co[d] + cs[d];
                p->src_offset += (a0 - co[d]) * cst[d];
                p->src_stride[d] = cst[d];
                p->dst_origin[d] = a0 - oo[d];
                p->shape[d] = a1 - a0;
            }
            st = tsr__lower_add_piece(L, B, src, p, outs[o], root);
            if (st != TSR_OK) {
                break;
            }
            int d = (int)x->ndim - 1;
            while (d >= 0 && ++ic[d] > hi[d]) {
                ic[d] = lo[d];
                d--;
            }
            if (d < 0) {
                break;
            }
        }
        if (st == TSR_OK) {
            st = tsr__lower_flush_copy(L, B, outs[o], root);
        }
    }
    free(B);
    return st;
}
