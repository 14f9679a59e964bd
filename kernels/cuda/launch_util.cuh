/* What the C launchers of the CUDA array kernels share: the output buffer of a
 * task, the GPU's width, and the mapping of CUDA failures to TSR_EBACKEND with
 * the kernel's name. Host code; private to kernels/cuda/. */
#ifndef TSR_KERNELS_CUDA_LAUNCH_UTIL_CUH
#define TSR_KERNELS_CUDA_LAUNCH_UTIL_CUH

#include <cuda_runtime.h>
#include <stdint.h>
#include <tessera/task.h>

namespace tsr_ew {

/* The output buffer `index` of `n_bytes`: a registered buffer of that size as it
 * is, else allocated for the task (device memory), as the CPU kernels do. Must
 * run before any work that uses it is queued. */
inline tsr_status_t out_buffer(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, uint32_t index,
                               size_t n_bytes, void **out)
{
    if (bufs[index].ptr != NULL && bufs[index].n_bytes == n_bytes) {
        *out = bufs[index].ptr;
        return TSR_OK;
    }
    return tsr_task_ctx_alloc(ctx, index, n_bytes, out);
}

/* Fail the task with CUDA's words for `err` (clearing it unless sticky). */
inline tsr_status_t cuda_fail(tsr_task_ctx_t *ctx, const char *what, cudaError_t err)
{
    tsr_task_ctx_fail(ctx, "%s failed: %s: %s", what, cudaGetErrorName(err),
                      cudaGetErrorString(err));
    (void)cudaGetLastError();
    return err == cudaErrorMemoryAllocation ? TSR_ENOMEM : TSR_EBACKEND;
}

/* Multiprocessors of the current device (the task's). */
inline tsr_status_t sm_count(tsr_task_ctx_t *ctx, int *n_out)
{
    int dev = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err == cudaSuccess) {
        err = cudaDeviceGetAttribute(n_out, cudaDevAttrMultiProcessorCount, dev);
    }
    return err == cudaSuccess ? TSR_OK : cuda_fail(ctx, "array kernel: device query", err);
}

/* Queue `kernel` (a __global__ function taking one parameter by value) on
 * `stream`, and return the launch's status. cudaLaunchKernel rather than <<< >>>:
 * the launch stubs nvcc generates initialise statics under guards that need the
 * C++ runtime, which this C library does not link; the kernels are built with
 * -fno-threadsafe-statics and their stubs are never run. */
template <class P>
cudaError_t launch(void (*kernel)(P), unsigned blocks, unsigned threads, cudaStream_t stream,
                   const P &param)
{
    void *args[] = {const_cast<P *>(&param)};
    cudaError_t err =
        cudaLaunchKernel((const void *)kernel, dim3(blocks), dim3(threads), args, 0, stream);
    cudaError_t last = cudaGetLastError();
    return err != cudaSuccess ? err : last;
}

/* Blocks of `threads` for a grid-stride loop over n items: enough to fill the
 * GPU a few times over, at least one. */
inline unsigned grid_blocks(int64_t n, unsigned threads, int n_sms)
{
    int64_t b = (n + threads - 1) / threads;
    int64_t cap = (int64_t)n_sms * 16;
    return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}

}  // namespace tsr_ew

#endif /* TSR_KERNELS_CUDA_LAUNCH_UTIL_CUH */
