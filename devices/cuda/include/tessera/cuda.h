/* Helpers for CUDA implementations of codelets. Header-only: include it from CUDA C
 * (or C with the CUDA toolkit's include directory); it uses the CUDA runtime the
 * program links. Not included by <tessera.h>. */
#ifndef TESSERA_CUDA_H
#define TESSERA_CUDA_H

#include <cuda_runtime_api.h>
#include <tessera/task.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The stream a CUDA implementation launches on (see tsr_task_ctx_stream). */
static inline cudaStream_t tsr_task_ctx_cuda_stream(const tsr_task_ctx_t *ctx)
{
    return (cudaStream_t)tsr_task_ctx_stream(ctx);
}

/** The result of a CUDA implementation from a CUDA error code: TSR_OK for
 *  cudaSuccess, else TSR_EBACKEND with the CUDA error's name and text as the
 *  task's failure message. Typical use, after queuing the work:
 *      return tsr_cuda_result(ctx, cudaGetLastError());
 *  Checking here matters when the program and Tessera use different copies of
 *  the CUDA runtime (nvcc links a static one by default): the runtime only sees
 *  launch errors recorded in its own copy. Errors while the work runs are caught
 *  by the runtime either way. */
static inline tsr_status_t tsr_cuda_result(tsr_task_ctx_t *ctx, cudaError_t err)
{
    if (err == cudaSuccess) {
        return TSR_OK;
    }
    tsr_task_ctx_fail(ctx, "%s: %s", cudaGetErrorName(err), cudaGetErrorString(err));
    return TSR_EBACKEND;
}

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_CUDA_H */
