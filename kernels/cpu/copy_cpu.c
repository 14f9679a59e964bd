/* The copy kernel on CPU: boxes of input buffers (or constants) into an output
 * chunk, the innermost dimension as one memcpy when both sides are contiguous. */
#include <stdint.h>
#include <string.h>
#include <tessera/task.h>

#include "kernels/impl.h"
#include "kernels/kernel_args.h"

/* Validate a piece against the sizes of its source and of the output; returns
 * 0 if any element would fall outside. */
static int piece_fits(const tsr_copy_header_t *h, const tsr_copy_piece_t *p, size_t src_bytes)
{
    int64_t lo = p->src_offset;
    int64_t hi = p->src_offset;

    for (uint32_t d = 0; d < h->ndim; d++) {
        if (p->shape[d] < 1 || p->dst_origin[d] < 0 ||
            p->dst_origin[d] + p->shape[d] > h->shape[d]) {
            return 0;
        }
        int64_t span = (p->shape[d] - 1) * p->src_stride[d];
        if (span < 0) {
            lo += span;
        } else {
            hi += span;
        }
    }
    return p->kind == TSR_PIECE_FILL ||
           (lo >= 0 && (uint64_t)(hi + 1) * h->elem_size <= (uint64_t)src_bytes);
}

static void put(char *dst, const void *src, uint32_t es)
{
    switch (es) {
    case 1: memcpy(dst, src, 1); break;
    case 2: memcpy(dst, src, 2); break;
    case 4: memcpy(dst, src, 4); break;
    default: memcpy(dst, src, 8); break;
    }
}

static void copy_piece(const tsr_copy_header_t *h, const tsr_copy_piece_t *p, const char *src,
                       char *out)
{
    const uint32_t nd = h->ndim;
    const uint32_t es = h->elem_size;
    int64_t dst_stride[TSR_MAX_DIMS];
    int64_t idx[TSR_MAX_DIMS] = {0};
    int64_t s = 1;

    for (int d = (int)nd - 1; d >= 0; d--) {
        dst_stride[d] = s;
        s *= h->shape[d];
    }
    if (nd == 0) {
        put(out, p->kind == TSR_PIECE_FILL ? (const void *)&p->fill : src + p->src_offset * es, es);
        return;
    }
    const int64_t n = p->shape[nd - 1];
    const int64_t ss = p->src_stride[nd - 1];
    for (;;) {
        int64_t so = p->src_offset;
        int64_t dof = 0;
        for (uint32_t d = 0; d < nd; d++) {
            int64_t c = d + 1 < nd ? idx[d] : 0;
            so += c * p->src_stride[d];
            dof += (p->dst_origin[d] + c) * dst_stride[d];
        }
        char *drow = out + dof * es;
        if (p->kind == TSR_PIECE_FILL) {
            for (int64_t i = 0; i < n; i++) {
                put(drow + i * es, &p->fill, es);
            }
        } else if (ss == 1) {
            memcpy(drow, src + so * es, (size_t)n * es);
        } else {
            for (int64_t i = 0; i < n; i++) {
                put(drow + i * es, src + (so + i * ss) * es, es);
            }
        }
        int d = (int)nd - 2;
        while (d >= 0 && ++idx[d] == p->shape[d]) {
            idx[d] = 0;
            d--;
        }
        if (d < 0) {
            return;
        }
    }
}

tsr_status_t tsr__copy_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const tsr_copy_header_t *h = arg;
    const tsr_copy_piece_t *pieces = (const tsr_copy_piece_t *)(h + 1);
    void *out = NULL;
    tsr_status_t st;

    if (h == NULL || h->magic != TSR_COPY_MAGIC || h->ndim > TSR_MAX_DIMS || h->n_pieces == 0 ||
        h->n_pieces > TSR_COPY_MAX_PIECES ||
        (h->elem_size != 1 && h->elem_size != 2 && h->elem_size != 4 && h->elem_size != 8)) {
        tsr_task_ctx_fail(ctx, "array copy: malformed argument");
        return TSR_EINVAL;
    }
    if (h->alloc) {
        st = bufs[h->out_buf].ptr != NULL && bufs[h->out_buf].n_bytes == h->out_bytes
                 ? TSR_OK
                 : tsr_task_ctx_alloc(ctx, h->out_buf, (size_t)h->out_bytes, &out);
        if (st != TSR_OK) {
            return st;
        }
        if (out == NULL) {
            out = bufs[h->out_buf].ptr;
        }
    } else {
        out = bufs[h->out_buf].ptr;
        if (out == NULL || bufs[h->out_buf].n_bytes != h->out_bytes) {
            tsr_task_ctx_fail(ctx, "array copy: output of %zu bytes, expected %llu",
                              bufs[h->out_buf].n_bytes, (unsigned long long)h->out_bytes);
            return TSR_EINVAL;
        }
    }
    for (uint32_t i = 0; i < h->n_pieces; i++) {
        const tsr_copy_piece_t *p = &pieces[i];
        size_t src_bytes = p->kind == TSR_PIECE_FILL ? 0 : bufs[p->buf].n_bytes;
        if ((p->kind != TSR_PIECE_COPY && p->kind != TSR_PIECE_FILL) ||
            (p->kind == TSR_PIECE_COPY && (uint32_t)p->buf == h->out_buf) ||
            !piece_fits(h, p, src_bytes)) {
            tsr_task_ctx_fail(ctx, "array copy: piece %u falls outside its buffers", i);
            return TSR_EINVAL;
        }
        copy_piece(h, p, p->kind == TSR_PIECE_FILL ? NULL : bufs[p->buf].ptr, out);
    }
    return TSR_OK;
}
