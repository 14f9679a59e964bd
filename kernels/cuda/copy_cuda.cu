/* CUDA implementation of the copy kernel (tsr__copy_cuda; kernel_args.h): the
 * output chunk assembled from boxes of other buffers or constants, for rechunk
 * and halos. Every piece is checked as tsr__copy_cpu does before anything is
 * queued, then each piece is one grid-stride kernel on the task's stream, in
 * order, so that later pieces win where pieces overlap, as on the CPU. */
#include <cuda_runtime.h>
#include <tessera/task.h>

#include "kernels/cuda/copy_exec.cuh"
#include "kernels/cuda/launch_util.cuh"
#include "kernels/impl.h"

namespace tsr_ew {
namespace {

template <int ES>
__global__ void __launch_bounds__(kThreads) copy_kernel(const __grid_constant__ copy_plan c)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < c.count;
         i += (int64_t)gridDim.x * blockDim.x) {
        copy_elem<ES>(c, i);
    }
}

cudaError_t launch_piece(const copy_plan &c, uint32_t elem_size, int n_sms, cudaStream_t stream)
{
    const unsigned blocks = grid_blocks(c.count, kThreads, n_sms);
    switch (elem_size) {
    case 1:
        return launch(copy_kernel<1>, blocks, kThreads, stream, c);
    case 2:
        return launch(copy_kernel<2>, blocks, kThreads, stream, c);
    case 4:
        return launch(copy_kernel<4>, blocks, kThreads, stream, c);
    default:
        return launch(copy_kernel<8>, blocks, kThreads, stream, c);
    }
}

/* The output, as tsr__copy_cpu finds it: allocated (or a registered buffer of the
 * right size) for the first task of a chunk, the existing one for the others. */
tsr_status_t copy_output(tsr_task_ctx_t *ctx, const tsr_copy_header_t *h, const tsr_buffer_t *bufs,
                         void **out)
{
    if (h->alloc) {
        return out_buffer(ctx, bufs, h->out_buf, (size_t)h->out_bytes, out);
    }
    *out = bufs[h->out_buf].ptr;
    if (*out == NULL || bufs[h->out_buf].n_bytes != h->out_bytes) {
        tsr_task_ctx_fail(ctx, "array copy: output of %zu bytes, expected %llu",
                          bufs[h->out_buf].n_bytes, (unsigned long long)h->out_bytes);
        return TSR_EINVAL;
    }
    return TSR_OK;
}

}  // namespace
}  // namespace tsr_ew

extern "C" tsr_status_t tsr__copy_cuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                       const void *arg)
{
    const tsr_copy_header_t *h = (const tsr_copy_header_t *)arg;
    cudaStream_t stream = (cudaStream_t)tsr_task_ctx_stream(ctx);
    void *out = NULL;
    int n_sms = 0;
    tsr_status_t st;

    if (!tsr_ew::copy_header_ok(h)) {
        tsr_task_ctx_fail(ctx, "array copy: malformed argument");
        return TSR_EINVAL;
    }
    const tsr_copy_piece_t *pieces = (const tsr_copy_piece_t *)(h + 1);
    for (uint32_t i = 0; i < h->n_pieces; i++) {
        if (!tsr_ew::copy_piece_ok(h, &pieces[i], bufs)) {
            tsr_task_ctx_fail(ctx, "array copy: piece %u falls outside its buffers", i);
            return TSR_EINVAL;
        }
    }
    st = tsr_ew::copy_output(ctx, h, bufs, &out);
    if (st == TSR_OK) {
        st = tsr_ew::sm_count(ctx, &n_sms);
    }
    if (st != TSR_OK) {
        return st;
    }
    for (uint32_t i = 0; i < h->n_pieces; i++) {
        tsr_ew::copy_plan c = tsr_ew::copy_make_plan(h, &pieces[i], bufs, (char *)out);
        cudaError_t err = tsr_ew::launch_piece(c, h->elem_size, n_sms, stream);
        if (err != cudaSuccess) {
            return tsr_ew::cuda_fail(ctx, "array copy: copy_kernel launch", err);
        }
    }
    return TSR_OK;
}
