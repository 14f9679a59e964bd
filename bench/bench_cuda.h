/* tessera-bench: the CUDA side of the benchmarks, as plain C.
 *
 * Implemented by bench_cuda.cu and the .cu files of peers/ when the build has CUDA, and by
 * bench_cuda_stub.c (everything "not built") when it does not, so the C files of
 * tessera-bench call these without any #if. No CUDA type crosses this header:
 * streams are void *, errors are a message in `why`.
 *
 * The CUDA runtime tessera-bench links (the shared libcudart) is not the one inside
 * libtessera (static); both drive the same primary context of each GPU, so device
 * pointers, streams and the cuBLAS handle Tessera hands to an implementation are
 * valid here. GPUs are named by CUDA ordinal, which is tsr_device_info_t.kind_index
 * of Tessera's CUDA devices. */
#ifndef TESSERA_BENCH_CUDA_H
#define TESSERA_BENCH_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include <tessera.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Argument of the GEMM tile task: C = A·B + beta·C on square row-major tiles. */
struct bench_gemm_arg {
    uint32_t tile; /* rows (= columns) of each tile */
    float beta;    /* 0 for the first k block, 1 after */
};

/* Direction of a copy timed by bench_cuda_memcpy_peer. */
enum bench_copy_dir {
    BENCH_COPY_H2D_PINNED = 0,
    BENCH_COPY_H2D_PAGEABLE = 1,
    BENCH_COPY_D2H_PINNED = 2,
    BENCH_COPY_D2D = 3,
};

/* 1 when this tessera-bench was built with CUDA. */
int bench_cuda_is_built(void);

/* Number of GPUs the CUDA runtime sees; 0 with the reason in `why`. */
int bench_cuda_probe(char *why, size_t n_why);

/* Name of GPU `ordinal`, the CUDA version its driver supports and the CUDA runtime
 * version tessera-bench runs with ("13.0"); "?" where unknown. */
void bench_cuda_describe(int ordinal, char *gpu, size_t n_gpu, char *cuda_driver,
                         size_t n_cuda_driver, char *runtime, size_t n_runtime);

/* Page-locked host memory (cudaMallocHost); NULL on failure. */
void *bench_cuda_host_alloc(size_t n_bytes);
void bench_cuda_host_free(void *ptr); /* NULL: no-op */

/* Task implementations (tsr_kernel_fn) for impl[TSR_DEVICE_CUDA]; each queues its
 * work on the task's stream (tsr_task_ctx_stream) and returns TSR_EBACKEND, with the
 * task failed, when the launch fails.
 * tiny:  bufs[0] is one uint32_t, incremented by a <<<1, 1>>> kernel.
 * sgemm: bufs[0..2] are tiles A, B, C (float32, row-major, arg: bench_gemm_arg);
 *        one cublasSgemm on the task's cuBLAS handle.
 * scale: bufs[0] (RW) is uint64 words, x = 2x + 1 in place by a grid-stride kernel
 *        (spill stream_4x_device); arg unused. */
tsr_status_t bench_cuda_tiny_impl(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);
tsr_status_t bench_cuda_sgemm_impl(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);
tsr_status_t bench_cuda_scale_impl(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg);

/* Queue the tiny kernel on `stream` for the uint32_t at device address d_cell;
 * the caller checks for launch errors. For the .cu files (the peer loop). */
void bench_cuda_tiny_launch(void *stream, uint32_t *d_cell);

/* Peers: the same work without Tessera, measured in this process. Each returns 0
 * and one figure per run in `out` (n_runs of them, after one untimed warm-up),
 * or -1 with the reason in `why`. */

/* bare-cuda-loop: n_kernels tiny kernels launched in a plain loop on one stream
 * of GPU `ordinal`, then one stream synchronise; us_out: microseconds per kernel.
 * With is_chain every kernel increments the same cell, else each its own. */
int bench_cuda_loop_peer(int ordinal, uint32_t n_kernels, int is_chain, uint32_t n_runs,
                         double *us_out, char *why, size_t n_why);

/* cublas-single-call: one cublasSgemm of the n x n row-major float32 matrices
 * h_a·h_b, already on GPU `ordinal` (uploaded before the warm-up); seconds_out:
 * launch to synchronise return. */
int bench_cublas_gemm_peer(int ordinal, size_t n, const float *h_a, const float *h_b,
                           uint32_t n_runs, double *seconds_out, char *why, size_t n_why);

/* cudaMemcpy of n_bytes in direction `dir` (D2D: from GPU src_ordinal to
 * dst_ordinal; otherwise the GPU is src_ordinal), followed by a device
 * synchronise; gbps_out: GB/s. */
int bench_cuda_memcpy_peer(enum bench_copy_dir dir, int src_ordinal, int dst_ordinal,
                           size_t n_bytes, uint32_t n_runs, double *gbps_out, char *why,
                           size_t n_why);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_BENCH_CUDA_H */
