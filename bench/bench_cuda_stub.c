/* tessera-bench without CUDA: bench_cuda.h answers "not built". The CUDA cases are
 * never started in such a build (bench_cuda_absent stops them first); these keep
 * the C files free of #if and fail cleanly should one be reached anyway. */
#include <stdio.h>

#include "bench_cuda.h"

#define NOT_BUILT "this tessera-bench was built without CUDA"

int bench_cuda_is_built(void)
{
    return 0;
}

int bench_cuda_probe(char *why, size_t n_why)
{
    snprintf(why, n_why, NOT_BUILT);
    return 0;
}

void bench_cuda_describe(int ordinal, char *gpu, size_t n_gpu, char *cuda_driver,
                         size_t n_cuda_driver, char *runtime, size_t n_runtime)
{
    (void)ordinal;
    snprintf(gpu, n_gpu, "?");
    snprintf(cuda_driver, n_cuda_driver, "?");
    snprintf(runtime, n_runtime, "?");
}

void *bench_cuda_host_alloc(size_t n_bytes)
{
    (void)n_bytes;
    return NULL;
}

void bench_cuda_host_free(void *ptr)
{
    (void)ptr;
}

static tsr_status_t not_built(tsr_task_ctx_t *ctx)
{
    tsr_task_ctx_fail(ctx, NOT_BUILT);
    return TSR_ENOTSUP;
}

tsr_status_t bench_cuda_tiny_impl(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)bufs;
    (void)arg;
    return not_built(ctx);
}

tsr_status_t bench_cuda_sgemm_impl(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)bufs;
    (void)arg;
    return not_built(ctx);
}

tsr_status_t bench_cuda_scale_impl(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)bufs;
    (void)arg;
    return not_built(ctx);
}

void bench_cuda_tiny_launch(void *stream, uint32_t *d_cell)
{
    (void)stream;
    (void)d_cell;
}

int bench_cuda_loop_peer(int ordinal, uint32_t n_kernels, int is_chain, uint32_t n_runs,
                         double *us_out, char *why, size_t n_why)
{
    (void)ordinal;
    (void)n_kernels;
    (void)is_chain;
    (void)n_runs;
    (void)us_out;
    snprintf(why, n_why, NOT_BUILT);
    return -1;
}

int bench_cublas_gemm_peer(int ordinal, size_t n, const float *h_a, const float *h_b,
                           uint32_t n_runs, double *seconds_out, char *why, size_t n_why)
{
    (void)ordinal;
    (void)n;
    (void)h_a;
    (void)h_b;
    (void)n_runs;
    (void)seconds_out;
    snprintf(why, n_why, NOT_BUILT);
    return -1;
}

int bench_cuda_memcpy_peer(enum bench_copy_dir dir, int src_ordinal, int dst_ordinal,
                           size_t n_bytes, uint32_t n_runs, double *gbps_out, char *why,
                           size_t n_why)
{
    (void)dir;
    (void)src_ordinal;
    (void)dst_ordinal;
    (void)n_bytes;
    (void)n_runs;
    (void)gbps_out;
    snprintf(why, n_why, NOT_BUILT);
    return -1;
}
