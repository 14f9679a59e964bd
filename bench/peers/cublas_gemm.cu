/* Peer of `tessera-bench gemm --device cuda` (cublas-single-call), run in-process:
 * one cublasSgemm on the whole n x n float32 matrices, already on the GPU. The
 * upload, the handle and one untimed warm-up call are outside the timed region,
 * which runs from the call to the return of cudaStreamSynchronize; the same
 * default math mode as the tasks' handles (plain FP32 unless the environment says
 * otherwise, e.g. NVIDIA_TF32_OVERRIDE). */
#include <stdio.h>
#include <time.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "../bench_cuda.h"

struct gemm_peer {
    cublasHandle_t blas;
    cudaStream_t stream;
    float *d_a;
    float *d_b;
    float *d_c;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void gemm_peer_close(struct gemm_peer *p)
{
    if (p->blas != NULL) {
        cublasDestroy(p->blas);
    }
    if (p->stream != NULL) {
        cudaStreamDestroy(p->stream);
    }
    cudaFree(p->d_a);
    cudaFree(p->d_b);
    cudaFree(p->d_c);
}

static int gemm_peer_open(struct gemm_peer *p, int ordinal, size_t n, const float *h_a,
                          const float *h_b, char *why, size_t n_why)
{
    size_t n_bytes = n * n * sizeof(float);
    cudaError_t err = cudaSetDevice(ordinal);

    if (err == cudaSuccess) {
        err = cudaStreamCreate(&p->stream);
    }
    if (err == cudaSuccess) {
        err = cudaMalloc((void **)&p->d_a, n_bytes);
    }
    if (err == cudaSuccess) {
        err = cudaMalloc((void **)&p->d_b, n_bytes);
    }
    if (err == cudaSuccess) {
        err = cudaMalloc((void **)&p->d_c, n_bytes);
    }
    if (err == cudaSuccess) {
        err = cudaMemcpy(p->d_a, h_a, n_bytes, cudaMemcpyHostToDevice);
    }
    if (err == cudaSuccess) {
        err = cudaMemcpy(p->d_b, h_b, n_bytes, cudaMemcpyHostToDevice);
    }
    if (err != cudaSuccess) {
        snprintf(why, n_why, "cublas-single-call: set-up failed: %s", cudaGetErrorString(err));
        return -1;
    }
    if (cublasCreate(&p->blas) != CUBLAS_STATUS_SUCCESS ||
        cublasSetStream(p->blas, p->stream) != CUBLAS_STATUS_SUCCESS) {
        p->blas = NULL;
        snprintf(why, n_why, "cublas-single-call: cublasCreate failed");
        return -1;
    }
    return 0;
}

/* One product; its seconds, or a negative number after writing why. */
static double gemm_once(const struct gemm_peer *p, int n, char *why, size_t n_why)
{
    const float alpha = 1.0f;
    const float beta = 0.0f;
    double t0 = now_s();
    cublasStatus_t st;
    cudaError_t err;

    /* Row-major C = A·B as column-major C^T = B^T·A^T, as the tile tasks do. */
    st = cublasSgemm(p->blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, p->d_b, n, p->d_a, n,
                     &beta, p->d_c, n);
    err = cudaStreamSynchronize(p->stream);
    if (st != CUBLAS_STATUS_SUCCESS || err != cudaSuccess) {
        snprintf(why, n_why, "cublas-single-call: %s / %s", cublasGetStatusString(st),
                 cudaGetErrorString(err));
        return -1.0;
    }
    return now_s() - t0;
}

extern "C" int bench_cublas_gemm_peer(int ordinal, size_t n, const float *h_a, const float *h_b,
                                      uint32_t n_runs, double *seconds_out, char *why, size_t n_why)
{
    struct gemm_peer p = {NULL, NULL, NULL, NULL, NULL};
    int rc = gemm_peer_open(&p, ordinal, n, h_a, h_b, why, n_why);

    if (rc == 0 && gemm_once(&p, (int)n, why, n_why) < 0.0) {
        rc = -1;
    }
    for (uint32_t r = 0; r < n_runs && rc == 0; r++) {
        seconds_out[r] = gemm_once(&p, (int)n, why, n_why);
        rc = seconds_out[r] < 0.0 ? -1 : 0;
    }
    gemm_peer_close(&p);
    return rc;
}
