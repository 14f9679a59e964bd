/* CUDA implementation of the reduction combine kernel (tsr__combine_cuda;
 * tsr_red_combine_arg_t in kernel_args.h): partials merged element by element
 * in input order, then stored as a partial or finished (cast, mean, var, std,
 * argmin/argmax indices). The argument is checked by the CPU kernel's code
 * (kernels/cpu/ew_check.h). Partials are byte-compatible with the CPU kernel's,
 * so either side may combine what the other made. */
#include <cuda_runtime.h>
#include <tessera/task.h>

#include "kernels/cpu/ew_check.h"
#include "kernels/cuda/ew_eval.cuh"
#include "kernels/cuda/launch_util.cuh"
#include "kernels/impl.h"

namespace tsr_ew {
namespace {

constexpr unsigned kCombineThreads = 256;

__global__ void __launch_bounds__(kCombineThreads)
    combine_kernel(const __grid_constant__ ew_combine c)
{
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < (int64_t)c.arg.n_elems;
         k += (int64_t)gridDim.x * blockDim.x) {
        combine_elem(c, k);
    }
}

}  // namespace
}  // namespace tsr_ew

extern "C" tsr_status_t tsr__combine_cuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                          const void *arg)
{
    const tsr_red_combine_arg_t *a = (const tsr_red_combine_arg_t *)arg;
    cudaStream_t stream = (cudaStream_t)tsr_task_ctx_stream(ctx);
    tsr_ew::ew_combine c;
    size_t asz, osz;
    void *out = NULL;
    int n_sms = 0;
    char msg[200];
    tsr_status_t st;

    if (!ew_check_combine(a, bufs, msg, sizeof(msg))) {
        tsr_task_ctx_fail(ctx, "%s", msg);
        return TSR_EINVAL;
    }
    asz = (size_t)tsr_ew::acc_bytes(a->red_op, a->acc_type);
    osz = a->final ? (size_t)tsr_ew::dtype_bytes(a->out_type) : asz;
    st = tsr_ew::out_buffer(ctx, bufs, a->n_in, (size_t)a->n_elems * osz, &out);
    if (st == TSR_OK) {
        st = tsr_ew::sm_count(ctx, &n_sms);
    }
    if (st != TSR_OK || a->n_elems == 0) {
        return st;
    }
    memset(&c, 0, sizeof(c));
    for (uint32_t i = 0; i < a->n_in; i++) {
        c.in[i] = (const char *)bufs[i].ptr;
    }
    c.out = (char *)out;
    c.arg = *a;
    cudaError_t err =
        tsr_ew::launch(tsr_ew::combine_kernel,
                       tsr_ew::grid_blocks((int64_t)a->n_elems, tsr_ew::kCombineThreads, n_sms),
                       tsr_ew::kCombineThreads, stream, c);
    return err == cudaSuccess
               ? TSR_OK
               : tsr_ew::cuda_fail(ctx, "reduction combine: combine_kernel launch", err);
}
