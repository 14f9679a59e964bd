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

/* The checks of tsr__copy_cpu, the same code (kernels/cpu/ew_check.h): the
 * header, and that out_bytes holds the shape (the output buffer itself is
 * checked by the launcher, which owns it). */
inline bool copy_header_ok(const tsr_copy_header_t *h)
{
    char msg[160];
    return ew_check_copy_header(h, msg, sizeof(msg)) != 0;
}

/* Whether piece p is valid for the task's buffers. */
inline bool copy_piece_ok(const tsr_copy_header_t *h, const tsr_copy_piece_t *p,
                          const tsr_buffer_t *bufs)
{
    char msg[160];
    return ew_check_copy_piece(h, p, 0, bufs, msg, sizeof(msg)) != 0;
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
