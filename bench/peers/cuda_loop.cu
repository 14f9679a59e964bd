/* Peer of `tessera-bench overhead --device cuda` (bare-cuda-loop), run in-process:
 * the tiny kernel of the Tessera tasks launched n times in a plain loop on one
 * stream, then one cudaStreamSynchronize. Timed from the first launch to the
 * return of the synchronise; the stream, the cells and the CUDA context are set up
 * outside that region and one untimed warm-up run comes first, as on Tessera's
 * side. The cells' final values are checked so a launch that silently did nothing
 * cannot pass for a fast one. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cuda_runtime.h>

#include "../bench_cuda.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One run: n launches, one synchronise; seconds it took. */
static double run_loop(cudaStream_t stream, uint32_t *d_cells, uint32_t n, int is_chain)
{
    double t0 = now_s();

    for (uint32_t i = 0; i < n; i++) {
        bench_cuda_tiny_launch(stream, is_chain ? d_cells : d_cells + i);
    }
    cudaStreamSynchronize(stream);
    return now_s() - t0;
}

/* Every cell holds what n_rounds runs must have left there. */
static int check_cells(const uint32_t *d_cells, uint32_t n, int is_chain, uint32_t n_rounds,
                       char *why, size_t n_why)
{
    size_t n_cells = is_chain ? 1 : n;
    uint32_t want = is_chain ? n * n_rounds : n_rounds;
    uint32_t *h = (uint32_t *)malloc(n_cells * sizeof(uint32_t));
    int rc = 0;

    if (h == NULL ||
        cudaMemcpy(h, d_cells, n_cells * sizeof(uint32_t), cudaMemcpyDeviceToHost) != cudaSuccess) {
        snprintf(why, n_why, "bare-cuda-loop: reading the cells back failed");
        free(h);
        return -1;
    }
    for (size_t i = 0; i < n_cells && rc == 0; i++) {
        if (h[i] != want) {
            snprintf(why, n_why, "bare-cuda-loop: cell %zu is %u, expected %u", i, h[i], want);
            rc = -1;
        }
    }
    free(h);
    return rc;
}

extern "C" int bench_cuda_loop_peer(int ordinal, uint32_t n_kernels, int is_chain, uint32_t n_runs,
                                    double *us_out, char *why, size_t n_why)
{
    size_t n_bytes = (size_t)(is_chain ? 1 : n_kernels) * sizeof(uint32_t);
    cudaStream_t stream = NULL;
    uint32_t *d_cells = NULL;
    cudaError_t err;
    int rc = -1;

    err = cudaSetDevice(ordinal);
    if (err == cudaSuccess) {
        err = cudaStreamCreate(&stream);
    }
    if (err == cudaSuccess) {
        err = cudaMalloc((void **)&d_cells, n_bytes);
    }
    if (err == cudaSuccess) {
        err = cudaMemset(d_cells, 0, n_bytes);
    }
    if (err != cudaSuccess) {
        snprintf(why, n_why, "bare-cuda-loop: set-up failed: %s", cudaGetErrorString(err));
        goto free_all;
    }
    run_loop(stream, d_cells, n_kernels, is_chain);
    for (uint32_t r = 0; r < n_runs; r++) {
        us_out[r] = run_loop(stream, d_cells, n_kernels, is_chain) * 1e6 / (double)n_kernels;
    }
    err = cudaGetLastError();
    if (err != cudaSuccess) {
        snprintf(why, n_why, "bare-cuda-loop: %s", cudaGetErrorString(err));
        goto free_all;
    }
    rc = check_cells(d_cells, n_kernels, is_chain, n_runs + 1, why, n_why);
free_all:
    cudaFree(d_cells);
    if (stream != NULL) {
        cudaStreamDestroy(stream);
    }
    return rc;
}
