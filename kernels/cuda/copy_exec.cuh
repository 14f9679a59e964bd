/* The copy kernel (tsr_copy_header_t, kernel_args.h) on CUDA: the host checks of
 * tsr__copy_cpu, the plan of one piece, and the work on one element, which the
 * kernel (copy_cuda.cu) and the host emulation share. */
#ifndef TSR_KERNELS_CUDA_COPY_EXEC_CUH
#define TSR_KERNELS_CUDA_COPY_EXEC_CUH

#include "kernels/cuda/ew_exec.cuh"

namespace tsr_ew {

/* One piece, ready for the kernel: element i of the box (C order over n) is read
 * at src + (src_offset + sum c[d] * src_stride[d]) * es (or is `fill`) and
 * written at out + (dst_offset + sum c[d] * dst_stride[d]) * es. */
struct copy_plan {
    const char *src; /* NULL for a FILL piece */
    char *out;
    int64_t src_offset;
    int64_t dst_offset;
    int64_t src_stride[TSR_MAX_DIMS];
    int64_t dst_stride[TSR_MAX_DIMS];
    int64_t n[TSR_MAX_DIMS];
    int64_t count;
    uint64_t fill;
    int32_t nd;
};

/* Whether piece p lies inside the output and (COPY) inside its source of
 * src_bytes, as the CPU kernel's piece_fits, without overflowing. */
inline bool copy_piece_fits(const tsr_copy_header_t *h, const tsr_copy_piece_t *p, size_t src_bytes)
{
    int64_t lo = p->src_offset;
    int64_t hi = p->src_offset;

    for (uint32_t d = 0; d < h->ndim; d++) {
        int64_t span, end;
        if (p->shape[d] < 1 || p->dst_origin[d] < 0 ||
            __builtin_add_overflow(p->dst_origin[d], p->shape[d], &end) || end > h->shape[d]) {
            return false;
        }
        if (__builtin_mul_overflow(p->shape[d] - 1, p->src_stride[d], &span) ||
            __builtin_add_overflow(span < 0 ? lo : hi, span, span < 0 ? &lo : &hi)) {
            return false;
        }
    }
    return p->kind == TSR_PIECE_FILL ||
           (lo >= 0 && (uint64_t)hi < (uint64_t)src_bytes / h->elem_size);
}

/* The checks of tsr__copy_cpu on the header, and that out_bytes holds the
 * shape (the pieces are checked against the shape only; the output buffer
 * itself is checked by the launcher, which owns it). */
inline bool copy_header_ok(const tsr_copy_header_t *h)
{
    uint64_t n_bytes;
    bool ok = h != NULL && h->magic == TSR_COPY_MAGIC && h->ndim <= TSR_MAX_DIMS &&
              h->n_pieces != 0 && h->n_pieces <= TSR_COPY_MAX_PIECES &&
              h->out_buf < TSR_MAX_BUFFERS &&
              (h->elem_size == 1 || h->elem_size == 2 || h->elem_size == 4 || h->elem_size == 8);
    n_bytes = ok ? h->elem_size : 0;
    for (uint32_t d = 0; ok && d < h->ndim; d++) {
        ok = h->shape[d] >= 0 && !__builtin_mul_overflow(n_bytes, (uint64_t)h->shape[d], &n_bytes);
    }
    return ok && n_bytes <= h->out_bytes;
}

/* Whether piece p is valid for the task's buffers. */
inline bool copy_piece_ok(const tsr_copy_header_t *h, const tsr_copy_piece_t *p,
                          const tsr_buffer_t *bufs)
{
    if (p->kind == TSR_PIECE_FILL) {
        return copy_piece_fits(h, p, 0);
    }
    return p->kind == TSR_PIECE_COPY && (uint32_t)p->buf < TSR_MAX_BUFFERS &&
           (uint32_t)p->buf != h->out_buf && bufs[p->buf].ptr != NULL &&
           copy_piece_fits(h, p, bufs[p->buf].n_bytes);
}

inline copy_plan copy_make_plan(const tsr_copy_header_t *h, const tsr_copy_piece_t *p,
                                const tsr_buffer_t *bufs, char *out)
{
    copy_plan c;
    int64_t s = 1;

    memset(&c, 0, sizeof(c));
    c.src = p->kind == TSR_PIECE_FILL ? NULL : (const char *)bufs[p->buf].ptr;
    c.out = out;
    c.src_offset = p->src_offset;
    c.fill = p->fill;
    c.nd = (int32_t)h->ndim;
    c.count = 1;
    for (int d = (int)h->ndim - 1; d >= 0; d--) {
        c.dst_stride[d] = s;
        c.dst_offset += p->dst_origin[d] * s;
        c.src_stride[d] = p->src_stride[d];
        c.n[d] = p->shape[d];
        c.count *= p->shape[d];
        s *= h->shape[d];
    }
    return c;
}

/* Element i of the piece, ES bytes. */
template <int ES>
TSR_HDI void copy_elem(const copy_plan &c, int64_t i)
{
    int64_t so = c.src_offset;
    int64_t dof = c.dst_offset;

    for (int d = c.nd - 1; d >= 0; d--) {
        int64_t q = i, r = 0;
        if (d > 0) {
            divmod(i, c.n[d], &q, &r);
        } else {
            r = i;
        }
        so += r * c.src_stride[d];
        dof += r * c.dst_stride[d];
        i = q;
    }
    st_raw<ES>(c.out + dof * ES, c.src == NULL ? (ew_raw)c.fill : ld_raw<ES>(c.src + so * ES));
}

}  // namespace tsr_ew

#endif /* TSR_KERNELS_CUDA_COPY_EXEC_CUH */
