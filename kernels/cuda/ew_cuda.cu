/* CUDA implementation of the fused elementwise kernel with its first reduction
 * stage (tsr__ew_cuda; kernel_args.h). The launcher checks and compiles the
 * program (ew_plan.cuh) and queues, on the task's stream, one kernel for the
 * plan's mode, and when the reduction is split, a second kernel that merges the
 * splits from a stream-ordered scratch allocation. Nothing synchronises: the
 * runtime's event after the task covers both kernels and the scratch's free.
 *
 * Each mode has two instantiations: kGroup elements per thread group with
 * kSlots value slots, and one element per group with a slot per instruction for
 * the rare programs that need more slots (thread-local memory is reserved per
 * resident thread, so the common kernel keeps it small). */
#include <cuda_runtime.h>
#include <tessera/task.h>

#include "kernels/cuda/ew_exec.cuh"
#include "kernels/cuda/launch_util.cuh"
#include "kernels/impl.h"

namespace tsr_ew {
namespace {

template <int E, int NS>
__global__ void __launch_bounds__(kThreads) ew_map_kernel(const __grid_constant__ ew_plan P)
{
    int64_t ybase[TSR_EW_MAX_LEAVES];
    const int64_t n_groups = (P.n_out + E - 1) / E;

    leaf_bases(P, nullptr, ybase);
    for (int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; g < n_groups;
         g += (int64_t)gridDim.x * blockDim.x) {
        map_group<E, NS>(P, ybase, g);
    }
}

/* Teams of P.team threads, kThreads / P.team per block, one item each per
 * round; the rounds are block-uniform so that every thread reaches the
 * barriers. */
template <int E, int NS>
__global__ void __launch_bounds__(kThreads) ew_rinner_kernel(const __grid_constant__ ew_plan P)
{
    __shared__ ew_acc sh[kThreads];
    const int t = (int)threadIdx.x;
    const int lane = t % P.team;
    const int64_t per_block = kThreads / P.team;
    const int64_t items = P.n_out * P.splits;

    for (int64_t base = blockIdx.x * per_block; base < items; base += gridDim.x * per_block) {
        const int64_t item = base + t / P.team;
        sh[t] = item < items ? rinner_fold<E, NS>(P, item, lane) : acc_init(P.red_op, P.vtype);
        __syncthreads();
        for (int half = P.team / 2; half > 0; half /= 2) {
            team_step(P, P.team, sh, t, half);
            __syncthreads();
        }
        if (lane == 0 && item < items) {
            write_acc(P, item % P.n_out, item / P.n_out, sh[t]);
        }
        __syncthreads();
    }
}

template <int E, int NS>
__global__ void __launch_bounds__(kThreads) ew_pinner_kernel(const __grid_constant__ ew_plan P)
{
    const int64_t items = (P.n_out + E - 1) / E * P.splits;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < items;
         i += (int64_t)gridDim.x * blockDim.x) {
        pinner_item<E, NS>(P, i);
    }
}

/* The merge of splits: teams of P.merge_team threads per partial element, as
 * ew_rinner_kernel's. */
__global__ void __launch_bounds__(kThreads) ew_merge_kernel(const __grid_constant__ ew_plan P)
{
    __shared__ ew_acc sh[kThreads];
    const int t = (int)threadIdx.x;
    const int lane = t % P.merge_team;
    const int64_t per_block = kThreads / P.merge_team;

    for (int64_t base = blockIdx.x * per_block; base < P.n_out; base += gridDim.x * per_block) {
        const int64_t p = base + t / P.merge_team;
        sh[t] = p < P.n_out ? merge_fold(P, p, lane) : acc_init(P.red_op, P.vtype);
        __syncthreads();
        for (int half = P.merge_team / 2; half > 0; half /= 2) {
            team_step(P, P.merge_team, sh, t, half);
            __syncthreads();
        }
        if (lane == 0 && p < P.n_out) {
            store_partial(P, p, sh[t]);
        }
        __syncthreads();
    }
}

template <int E, int NS>
cudaError_t launch_mode(const ew_plan &P, const ew_launch &L, cudaStream_t stream,
                        const char **what)
{
    switch (P.mode) {
    case EW_MODE_MAP:
        *what = "array kernel: ew_map_kernel launch";
        return launch(ew_map_kernel<E, NS>, L.blocks, kThreads, stream, P);
    case EW_MODE_RINNER:
        *what = "array kernel: ew_rinner_kernel launch";
        return launch(ew_rinner_kernel<E, NS>, L.blocks, kThreads, stream, P);
    default:
        *what = "array kernel: ew_pinner_kernel launch";
        return launch(ew_pinner_kernel<E, NS>, L.blocks, kThreads, stream, P);
    }
}

/* Queue the plan's kernels; the scratch (if any) is allocated and freed in
 * stream order around them. */
tsr_status_t launch_plan(tsr_task_ctx_t *ctx, ew_plan *P, const ew_launch &L, cudaStream_t stream)
{
    const char *what = "array kernel: scratch allocation";
    cudaError_t err = cudaSuccess;
    void *scratch = NULL;

    if (L.scratch_bytes > 0) {
        err = cudaMallocAsync(&scratch, L.scratch_bytes, stream);
        P->scratch = (ew_acc *)scratch;
    }
    if (err == cudaSuccess) {
        err = L.big ? launch_mode<1, kSlotsBig>(*P, L, stream, &what)
                    : launch_mode<kGroup, kSlots>(*P, L, stream, &what);
    }
    if (err == cudaSuccess && P->splits > 1) {
        what = "array kernel: ew_merge_kernel launch";
        err = launch(ew_merge_kernel, L.blocks_merge, kThreads, stream, *P);
    }
    if (scratch != NULL) {
        cudaError_t free_err = cudaFreeAsync(scratch, stream);
        if (err == cudaSuccess && free_err != cudaSuccess) {
            what = "array kernel: scratch free";
            err = free_err;
        }
    }
    return err == cudaSuccess ? TSR_OK : cuda_fail(ctx, what, err);
}

}  // namespace
}  // namespace tsr_ew

extern "C" tsr_status_t tsr__ew_cuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const tsr_ew_header_t *h = (const tsr_ew_header_t *)arg;
    cudaStream_t stream = (cudaStream_t)tsr_task_ctx_stream(ctx);
    tsr_ew::ew_plan plan;
    tsr_ew::ew_launch launch;
    char msg[200];
    uint64_t need = 0;
    void *out = NULL;
    int n_sms = 0;
    tsr_status_t st;

    if (h == NULL || h->n_leaves > TSR_EW_MAX_LEAVES) {
        tsr_task_ctx_fail(ctx, "array kernel: malformed program header");
        return TSR_EINVAL;
    }
    const tsr_ew_leaf_t *leaves = (const tsr_ew_leaf_t *)(h + 1);
    const tsr_ew_instr_t *code = (const tsr_ew_instr_t *)(leaves + h->n_leaves);
    if (!tsr_ew::ew_check(h, leaves, code, bufs, &need, msg, sizeof(msg))) {
        tsr_task_ctx_fail(ctx, "%s", msg);
        return TSR_EINVAL;
    }
    st = tsr_ew::out_buffer(ctx, bufs, h->out_buf, (size_t)h->out_bytes, &out);
    if (st == TSR_OK) {
        st = tsr_ew::sm_count(ctx, &n_sms);
    }
    if (st != TSR_OK) {
        return st;
    }
    tsr_ew::ew_build(h, leaves, code, bufs, (char *)out, n_sms, &plan, &launch);
    if (plan.n_out == 0) {
        return TSR_OK; /* an empty chunk */
    }
    return tsr_ew::launch_plan(ctx, &plan, launch, stream);
}
