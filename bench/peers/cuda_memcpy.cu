/* Peer of `tessera-bench transfer --device cuda` (cudaMemcpy), run in-process: the
 * plain synchronous cudaMemcpy (cudaMemcpyPeer between GPUs) of the same size in
 * the same direction, from the same kind of host memory. Timed from the call to
 * the return of a cudaDeviceSynchronize after it (a copy from pageable memory may
 * return before its DMA has finished); buffers are allocated and touched, and one
 * untimed warm-up copy made, outside that region. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime.h>

#include "../bench_cuda.h"

struct copy_bufs {
    void *host; /* pinned or pageable; NULL for D2D */
    int is_pinned;
    void *d_src; /* D2H and D2D */
    void *d_dst; /* H2D and D2D */
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bufs_free(struct copy_bufs *b)
{
    if (b->is_pinned) {
        cudaFreeHost(b->host);
    } else {
        free(b->host);
    }
    cudaFree(b->d_src);
    cudaFree(b->d_dst);
}

static cudaError_t host_alloc(struct copy_bufs *b, int is_pinned, size_t n_bytes)
{
    b->is_pinned = is_pinned;
    if (is_pinned) {
        return cudaMallocHost(&b->host, n_bytes);
    }
    b->host = malloc(n_bytes);
    return b->host != NULL ? cudaSuccess : cudaErrorMemoryAllocation;
}

static cudaError_t bufs_alloc(struct copy_bufs *b, enum bench_copy_dir dir, int src, int dst,
                              size_t n_bytes)
{
    cudaError_t err = cudaSetDevice(src);

    if (err == cudaSuccess && dir != BENCH_COPY_H2D_PINNED && dir != BENCH_COPY_H2D_PAGEABLE) {
        err = cudaMalloc(&b->d_src, n_bytes);
    }
    if (err == cudaSuccess && dir == BENCH_COPY_D2D) {
        err = cudaSetDevice(dst);
    }
    if (err == cudaSuccess && dir != BENCH_COPY_D2H_PINNED) {
        err = cudaMalloc(&b->d_dst, n_bytes);
    }
    if (err == cudaSuccess && dir != BENCH_COPY_D2D) {
        err = host_alloc(b, dir != BENCH_COPY_H2D_PAGEABLE, n_bytes);
    }
    if (err == cudaSuccess && b->host != NULL) {
        memset(b->host, 3, n_bytes); /* page faults outside the timed region */
    }
    return err;
}

static cudaError_t copy_once(const struct copy_bufs *b, enum bench_copy_dir dir, int src, int dst,
                             size_t n_bytes)
{
    cudaError_t err;

    switch (dir) {
    case BENCH_COPY_D2D:
        err = cudaMemcpyPeer(b->d_dst, dst, b->d_src, src, n_bytes);
        break;
    case BENCH_COPY_D2H_PINNED:
        err = cudaMemcpy(b->host, b->d_src, n_bytes, cudaMemcpyDeviceToHost);
        break;
    default:
        err = cudaMemcpy(b->d_dst, b->host, n_bytes, cudaMemcpyHostToDevice);
        break;
    }
    return err == cudaSuccess ? cudaDeviceSynchronize() : err;
}

extern "C" int bench_cuda_memcpy_peer(enum bench_copy_dir dir, int src_ordinal, int dst_ordinal,
                                      size_t n_bytes, uint32_t n_runs, double *gbps_out, char *why,
                                      size_t n_why)
{
    struct copy_bufs b = {NULL, 0, NULL, NULL};
    cudaError_t err = bufs_alloc(&b, dir, src_ordinal, dst_ordinal, n_bytes);

    if (err == cudaSuccess) {
        err = copy_once(&b, dir, src_ordinal, dst_ordinal, n_bytes);
    }
    for (uint32_t r = 0; r < n_runs && err == cudaSuccess; r++) {
        double t0 = now_s();

        err = copy_once(&b, dir, src_ordinal, dst_ordinal, n_bytes);
        gbps_out[r] = (double)n_bytes / (now_s() - t0) / 1e9;
    }
    bufs_free(&b);
    if (err != cudaSuccess) {
        snprintf(why, n_why, "cudaMemcpy peer: %s", cudaGetErrorString(err));
        return -1;
    }
    return 0;
}
