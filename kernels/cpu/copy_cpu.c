/* The copy kernel on CPU: boxes of input buffers (or constants) into an output
 * chunk, the innermost dimension as one memcpy when both sides are contiguous.
 * The argument is checked by the code the CUDA kernel shares (ew_check.h). */
#include <stdint.h>
#include <string.h>
#include <tessera/task.h>

#include "kernels/cpu/ew_check.h"
#include "kernels/impl.h"
#include "kernels/kernel_args.h"

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

/* The output: allocated (or a registered buffer of the right size) by the first
 * task of a chunk (alloc), the existing one of exactly out_bytes for the others. */
static tsr_status_t copy_output(tsr_task_ctx_t *ctx, const tsr_copy_header_t *h,
                                const tsr_buffer_t *bufs, void **out)
{
    const tsr_buffer_t *o = &bufs[h->out_buf];

    if (h->alloc && !(o->ptr != NULL && o->n_bytes == h->out_bytes)) {
        return tsr_task_ctx_alloc(ctx, h->out_buf, (size_t)h->out_bytes, out);
    }
    if (o->ptr == NULL || o->n_bytes != h->out_bytes) {
        tsr_task_ctx_fail(ctx, "array copy: output of %zu bytes, expected %llu", o->n_bytes,
                          (unsigned long long)h->out_bytes);
        return TSR_EINVAL;
    }
    *out = o->ptr;
    return TSR_OK;
}

tsr_status_t tsr__copy_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const tsr_copy_header_t *h = arg;
    const tsr_copy_piece_t *pieces = h != NULL ? (const tsr_copy_piece_t *)(h + 1) : NULL;
    void *out = NULL;
    char msg[160];
    tsr_status_t st;

    if (!ew_check_copy_header(h, msg, sizeof(msg))) {
        tsr_task_ctx_fail(ctx, "%s", msg);
        return TSR_EINVAL;
    }
    /* Every piece first, so that a malformed one fails the task before any is
     * written. */
    for (uint32_t i = 0; i < h->n_pieces; i++) {
        if (!ew_check_copy_piece(h, &pieces[i], i, bufs, msg, sizeof(msg))) {
            tsr_task_ctx_fail(ctx, "%s", msg);
            return TSR_EINVAL;
        }
    }
    st = copy_output(ctx, h, bufs, &out);
    if (st != TSR_OK) {
        return st;
    }
    for (uint32_t i = 0; i < h->n_pieces; i++) {
        const tsr_copy_piece_t *p = &pieces[i];
        copy_piece(h, p, p->kind == TSR_PIECE_FILL ? NULL : bufs[p->buf].ptr, out);
    }
    return TSR_OK;
}
