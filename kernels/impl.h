/* The implementations behind the codelets of kernel_args.h, one per device kind;
 * kernels/codelets.c puts them together. Private to kernels/. */
#ifndef TSR_KERNELS_IMPL_H
#define TSR_KERNELS_IMPL_H

#include <tessera/config.h>
#include <tessera/task.h>

#ifdef __cplusplus
extern "C" {
#endif

tsr_status_t tsr__ew_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);
tsr_status_t tsr__combine_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);
tsr_status_t tsr__gemm_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);
tsr_status_t tsr__copy_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);
/* For tests: 0 makes tsr__ew_cpu's float programs take the x86-64 baseline's
 * code even where AVX2 is there, 1 (the default) lets the machine choose.
 * Returns the previous setting. */
int tsr__ew_cpu_allow_avx2(int allow);

#ifdef TSR_KERNELS_CUDA
tsr_status_t tsr__ew_cuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);
tsr_status_t tsr__combine_cuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);
tsr_status_t tsr__gemm_cuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);
tsr_status_t tsr__copy_cuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);
#endif

#ifdef __cplusplus
}
#endif

#endif /* TSR_KERNELS_IMPL_H */
