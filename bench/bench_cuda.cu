/* tessera-bench: Tessera's CUDA task implementations for the benchmarks, and the
 * small CUDA queries the C side needs (bench_cuda.h). Built only with CUDA. */
#include <stdio.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "bench_cuda.h"

/* The tiny kernel of the overhead cases: as little work as a launch can carry,
 * but work whose result is checked. */
__global__ void bench_tiny_kernel(uint32_t *cell)
{
    cell[0] += 1u;
}

extern "C" void bench_cuda_tiny_launch(void *stream, uint32_t *d_cell)
{
    bench_tiny_kernel<<<1, 1, 0, (cudaStream_t)stream>>>(d_cell);
}

extern "C" tsr_status_t bench_cuda_tiny_impl(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                             const void *arg)
{
    cudaError_t err;

    (void)arg;
    bench_cuda_tiny_launch(tsr_task_ctx_stream(ctx), (uint32_t *)bufs[0].ptr);
    err = cudaGetLastError();
    if (err != cudaSuccess) {
        tsr_task_ctx_fail(ctx, "bench_tiny_kernel launch: %s", cudaGetErrorString(err));
        return TSR_EBACKEND;
    }
    return TSR_OK;
}

/* Threads per block and most blocks of the grid-stride scale kernel: 1024 x 256
 * threads fill a large GPU (an H100 holds 132 SMs x 2048), and a chunk larger
 * than that is covered by striding rather than by more blocks. */
#define SCALE_THREADS 256u
#define SCALE_MAX_BLOCKS 1024u

/* x = 2x + 1 on n uint64 words, grid-stride: consecutive threads touch consecutive
 * words, so every pass over the chunk is coalesced. */
__global__ void bench_scale_kernel(uint64_t *w, size_t n)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;

    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        w[i] = w[i] * 2u + 1u;
    }
}

extern "C" tsr_status_t bench_cuda_scale_impl(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                              const void *arg)
{
    size_t n = bufs[0].n_bytes / sizeof(uint64_t);
    size_t n_blocks = (n + SCALE_THREADS - 1) / SCALE_THREADS;
    cudaError_t err;

    (void)arg;
    if (n == 0) {
        return TSR_OK; /* a grid of no blocks is a launch error */
    }
    if (n_blocks > SCALE_MAX_BLOCKS) {
        n_blocks = SCALE_MAX_BLOCKS;
    }
    bench_scale_kernel<<<(unsigned)n_blocks, SCALE_THREADS, 0,
                         (cudaStream_t)tsr_task_ctx_stream(ctx)>>>((uint64_t *)bufs[0].ptr, n);
    err = cudaGetLastError();
    if (err != cudaSuccess) {
        tsr_task_ctx_fail(ctx, "bench_scale_kernel launch: %s", cudaGetErrorString(err));
        return TSR_EBACKEND;
    }
    return TSR_OK;
}

extern "C" tsr_status_t bench_cuda_sgemm_impl(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs,
                                              const void *arg)
{
    const struct bench_gemm_arg *g = (const struct bench_gemm_arg *)arg;
    cublasHandle_t blas = (cublasHandle_t)tsr_task_ctx_blas(ctx);
    const float alpha = 1.0f;
    int t = (int)g->tile;
    cublasStatus_t st;

    if (blas == NULL) {
        tsr_task_ctx_fail(ctx, "sgemm tile: no cuBLAS handle (libcublas could not be loaded)");
        return TSR_EBACKEND;
    }
    /* Row-major C = A·B is column-major C^T = B^T·A^T: cuBLAS sees each row-major
     * tile as its transpose, so B goes first. alpha and beta are host scalars, read
     * when the call queues the work. */
    st = cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, t, t, t, &alpha, (const float *)bufs[1].ptr, t,
                     (const float *)bufs[0].ptr, t, &g->beta, (float *)bufs[2].ptr, t);
    if (st != CUBLAS_STATUS_SUCCESS) {
        tsr_task_ctx_fail(ctx, "cublasSgemm: %s", cublasGetStatusString(st));
        return TSR_EBACKEND;
    }
    return TSR_OK;
}

extern "C" int bench_cuda_is_built(void)
{
    return 1;
}

extern "C" int bench_cuda_probe(char *why, size_t n_why)
{
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);

    if (err != cudaSuccess) {
        snprintf(why, n_why, "cudaGetDeviceCount: %s", cudaGetErrorString(err));
        return 0;
    }
    if (n == 0) {
        snprintf(why, n_why, "the CUDA runtime sees no GPU");
    }
    return n;
}

static void version_str(int v, char *buf, size_t n)
{
    snprintf(buf, n, "%d.%d", v / 1000, (v % 1000) / 10);
}

extern "C" void bench_cuda_describe(int ordinal, char *gpu, size_t n_gpu, char *cuda_driver,
                                    size_t n_cuda_driver, char *runtime, size_t n_runtime)
{
    cudaDeviceProp prop;
    int v = 0;

    snprintf(gpu, n_gpu, "?");
    snprintf(cuda_driver, n_cuda_driver, "?");
    snprintf(runtime, n_runtime, "?");
    if (cudaGetDeviceProperties(&prop, ordinal) == cudaSuccess) {
        snprintf(gpu, n_gpu, "%s", prop.name);
    }
    if (cudaDriverGetVersion(&v) == cudaSuccess) {
        version_str(v, cuda_driver, n_cuda_driver);
    }
    if (cudaRuntimeGetVersion(&v) == cudaSuccess) {
        version_str(v, runtime, n_runtime);
    }
}

extern "C" void *bench_cuda_host_alloc(size_t n_bytes)
{
    void *p = NULL;

    return cudaMallocHost(&p, n_bytes) == cudaSuccess ? p : NULL;
}

extern "C" void bench_cuda_host_free(void *ptr)
{
    if (ptr != NULL) {
        cudaFreeHost(ptr);
    }
}
