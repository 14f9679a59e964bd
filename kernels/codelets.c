/* The array codelets: each kernel's implementations side by side. TSR_KERNELS_CUDA
 * is defined when the CUDA implementations (kernels/cuda/) are built in. */
#include <tessera/config.h>
#include <tessera/task.h>

#include "kernels/impl.h"
#include "kernels/kernel_args.h"

#ifdef TSR_KERNELS_CUDA
#define CUDA_IMPL(fn) [TSR_DEVICE_CUDA] = (fn),
#else
#define CUDA_IMPL(fn)
#endif

const tsr_codelet_t tsr__ew_codelet = {
    .name = "array_ew",
    .impl = {[TSR_DEVICE_CPU] = tsr__ew_cpu, [TSR_DEVICE_SIM] = tsr__ew_cpu,
             CUDA_IMPL(tsr__ew_cuda)},
    .n_buffers = TSR_NBUFFERS_DYNAMIC,
};

const tsr_codelet_t tsr__red_combine_codelet = {
    .name = "array_reduce",
    .impl = {[TSR_DEVICE_CPU] = tsr__combine_cpu, [TSR_DEVICE_SIM] = tsr__combine_cpu,
             CUDA_IMPL(tsr__combine_cuda)},
    .n_buffers = TSR_NBUFFERS_DYNAMIC,
};

static double gemm_flops(const size_t *n_bytes, uint32_t n_buffers, const void *arg)
{
    const tsr_gemm_arg_t *g = arg;
    (void)n_bytes;
    (void)n_buffers;
    return 2.0 * (double)g->m * (double)g->n * (double)g->k;
}

const tsr_codelet_t tsr__gemm_codelet = {
    .name = "array_matmul",
    .impl = {[TSR_DEVICE_CPU] = tsr__gemm_cpu, [TSR_DEVICE_SIM] = tsr__gemm_cpu,
             CUDA_IMPL(tsr__gemm_cuda)},
    .n_buffers = TSR_NBUFFERS_DYNAMIC,
    .flops = gemm_flops,
};

const tsr_codelet_t tsr__copy_codelet = {
    .name = "array_copy",
    .impl = {[TSR_DEVICE_CPU] = tsr__copy_cpu, [TSR_DEVICE_SIM] = tsr__copy_cpu,
             CUDA_IMPL(tsr__copy_cuda)},
    .n_buffers = TSR_NBUFFERS_DYNAMIC,
};
