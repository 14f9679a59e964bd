/* Floor of `tessera-bench array --device cuda`'s matmul_f64_gpu (cublas-dgemm), run
 * in-process: one cublasDgemm on the whole n x n float64 matrices, already on the
 * GPU, the product the tiled tasks compute. The matrices are filled on the device
 * (values k/1024 in [0, 1), as the tasks' operands are uniform in [0, 1)); that, the
 * handle and one untimed warm-up call are outside the timed region, which runs from
 * the call to the return of cudaStreamSynchronize. Default math mode, as the tasks'
 * handles. */
#include <stdio.h>
#include <time.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "../bench_array_cuda.h"

#define FILL_THREADS 256u
#define FILL_MAX_BLOCKS 4096u

struct dgemm_peer {
    cublasHandle_t blas;
    cudaStream_t stream;
    double *d_a;
    double *d_b;
    double *d_c;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* w[i] = (hash of i and salt) / 1024 in [0, 1), grid-stride. */
__global__ void bench_dgemm_fill_kernel(double *w, size_t n, uint32_t salt)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;

    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        uint32_t h = (uint32_t)i * 2654435761u ^ salt;

        w[i] = (double)((h >> 7) & 1023u) / 1024.0;
    }
}

static cudaError_t fill(double *d_w, size_t n, uint32_t salt, cudaStream_t stream)
{
    size_t n_blocks = (n + FILL_THREADS - 1) / FILL_THREADS;

    if (n_blocks > FILL_MAX_BLOCKS) {
        n_blocks = FILL_MAX_BLOCKS;
    }
    bench_dgemm_fill_kernel<<<(unsigned)n_blocks, FILL_THREADS, 0, stream>>>(d_w, n, salt);
    return cudaGetLastError();
}

static void dgemm_peer_close(struct dgemm_peer *p)
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

static int dgemm_peer_open(struct dgemm_peer *p, int ordinal, size_t n, char *why, size_t n_why)
{
    size_t n_bytes = n * n * sizeof(double);
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
        err = fill(p->d_a, n * n, 0x1234u, p->stream);
    }
    if (err == cudaSuccess) {
        err = fill(p->d_b, n * n, 0xabcdu, p->stream);
    }
    if (err == cudaSuccess) {
        err = cudaStreamSynchronize(p->stream);
    }
    if (err != cudaSuccess) {
        snprintf(why, n_why, "cublas-dgemm: set-up failed: %s", cudaGetErrorString(err));
        return -1;
    }
    if (cublasCreate(&p->blas) != CUBLAS_STATUS_SUCCESS ||
        cublasSetStream(p->blas, p->stream) != CUBLAS_STATUS_SUCCESS) {
        p->blas = NULL;
        snprintf(why, n_why, "cublas-dgemm: cublasCreate failed");
        return -1;
    }
    return 0;
}

/* One product; its seconds, or a negative number after writing why. */
static double dgemm_once(const struct dgemm_peer *p, int n, char *why, size_t n_why)
{
    const double alpha = 1.0;
    const double beta = 0.0;
    double t0 = now_s();
    cublasStatus_t st;
    cudaError_t err;

    /* Row-major C = A·B as column-major C^T = B^T·A^T, as the tasks do. */
    st = cublasDgemm(p->blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, p->d_b, n, p->d_a, n,
                     &beta, p->d_c, n);
    err = cudaStreamSynchronize(p->stream);
    if (st != CUBLAS_STATUS_SUCCESS || err != cudaSuccess) {
        snprintf(why, n_why, "cublas-dgemm: %s / %s", cublasGetStatusString(st),
                 cudaGetErrorString(err));
        return -1.0;
    }
    return now_s() - t0;
}

extern "C" int bench_cublas_dgemm_peer(int ordinal, size_t n, uint32_t n_runs, double *seconds_out,
                                       char *why, size_t n_why)
{
    struct dgemm_peer p = {NULL, NULL, NULL, NULL, NULL};
    int rc = dgemm_peer_open(&p, ordinal, n, why, n_why);

    if (rc == 0 && dgemm_once(&p, (int)n, why, n_why) < 0.0) {
        rc = -1;
    }
    for (uint32_t r = 0; r < n_runs && rc == 0; r++) {
        seconds_out[r] = dgemm_once(&p, (int)n, why, n_why);
        rc = seconds_out[r] < 0.0 ? -1 : 0;
    }
    dgemm_peer_close(&p);
    return rc;
}
