/* Kernels of the CUDA device tests; see cuda_test_kernels.h. Elementwise kernels use
 * a grid-stride loop over a capped grid, so any size fits one launch. */
#include <cuda_runtime.h>

#include "cuda/cuda_test_kernels.h"

namespace {

constexpr unsigned kThreads = 256;
constexpr unsigned kMaxBlocks = 2048;

unsigned BlocksFor(size_t n)
{
    size_t blocks = (n + kThreads - 1) / kThreads;
    if (blocks == 0) {
        return 1;
    }
    return blocks < kMaxBlocks ? static_cast<unsigned>(blocks) : kMaxBlocks;
}

cudaStream_t AsStream(void *stream)
{
    return static_cast<cudaStream_t>(stream);
}

__device__ size_t FirstIndex()
{
    return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ size_t Stride()
{
    return static_cast<size_t>(gridDim.x) * blockDim.x;
}

__global__ void AddKernel(const float *a, const float *b, float *c, size_t n)
{
    for (size_t i = FirstIndex(); i < n; i += Stride()) {
        c[i] = a[i] + b[i];
    }
}

__global__ void AddInplaceKernel(const float *x, float *y, size_t n)
{
    for (size_t i = FirstIndex(); i < n; i += Stride()) {
        y[i] = y[i] + x[i];
    }
}

__global__ void AffineU32Kernel(uint32_t *x, size_t n, uint32_t k)
{
    for (size_t i = FirstIndex(); i < n; i += Stride()) {
        x[i] = x[i] * 31u + k + static_cast<uint32_t>(i);
    }
}

__global__ void BytesUpdateKernel(uint8_t *p, size_t n, uint8_t k)
{
    for (size_t i = FirstIndex(); i < n; i += Stride()) {
        p[i] = tsr_test_byte_update(p[i], i, k);
    }
}

__global__ void BytesFillKernel(uint8_t *p, size_t n, uint8_t k)
{
    for (size_t i = FirstIndex(); i < n; i += Stride()) {
        p[i] = tsr_test_byte_pattern(i, k);
    }
}

__global__ void BytesSumKernel(const uint8_t *p, size_t n, unsigned long long *sum)
{
    unsigned long long local = 0;
    for (size_t i = FirstIndex(); i < n; i += Stride()) {
        local += static_cast<unsigned long long>(p[i]) * (i % 251 + 1);
    }
    atomicAdd(sum, local);
}

__global__ void FillU64Kernel(uint64_t *p, size_t n, uint64_t k)
{
    for (size_t i = FirstIndex(); i < n; i += Stride()) {
        p[i] = i * k + 1;
    }
}

__global__ void NeverRunsKernel(float *p, size_t n)
{
    for (size_t i = FirstIndex(); i < n; i += Stride()) {
        p[i] = -1.0f;
    }
}

/* The kernel's parameters hold the buffer pointers by value. */
struct StepParams {
    tsr_test_step_arg arg;
    uint64_t *bufs[TSR_TEST_STEP_MAX_BUFS];
};

__global__ void StepKernel(StepParams params)
{
    tsr_test_step_apply(&params.arg, params.bufs);
}

/* ---- Spill oracle ---- */

constexpr unsigned kHashThreads = 1024;

/* Each step's hash, from its hash kernel to its update kernel (same stream). */
__device__ uint64_t g_spill_hash[TSR_TEST_SPILL_SLOTS];

struct SpillParams {
    tsr_test_spill_arg arg;
    uint64_t *bufs[TSR_TEST_SPILL_MAX_BUFS];
    uint64_t n_words[TSR_TEST_SPILL_MAX_BUFS];
};

__global__ void SpillFillKernel(uint64_t *p, size_t n, uint64_t key)
{
    for (size_t i = FirstIndex(); i < n; i += Stride()) {
        p[i] = tsr_test_spill_fill_word(key, i);
    }
}

/* One block: each thread sums its share of the sampled words, then the block adds
 * the partial sums up (wrapping, so the order does not matter). */
__global__ void SpillHashKernel(SpillParams params)
{
    __shared__ uint64_t partial[kHashThreads];
    const tsr_test_spill_arg &a = params.arg;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < a.n_bufs; i++) {
        if (!(a.modes[i] & TSR_R)) {
            continue;
        }
        const uint64_t *p = params.bufs[i];
        for (uint64_t w = uint64_t(threadIdx.x) * TSR_TEST_SPILL_STRIDE; w < params.n_words[i];
             w += uint64_t(blockDim.x) * TSR_TEST_SPILL_STRIDE) {
            sum += tsr_test_spill_term(i, w, p[w]);
        }
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            partial[threadIdx.x] += partial[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        g_spill_hash[a.slot] = tsr_test_step_mix(a.key, partial[0]);
    }
}

__global__ void SpillUpdateKernel(SpillParams params)
{
    const tsr_test_spill_arg &a = params.arg;
    const uint64_t h = g_spill_hash[a.slot];
    for (uint32_t i = 0; i < a.n_bufs; i++) {
        if (!(a.modes[i] & TSR_W)) {
            continue;
        }
        uint64_t *p = params.bufs[i];
        for (size_t w = FirstIndex(); w < params.n_words[i]; w += Stride()) {
            p[w] = tsr_test_spill_update(h, i, a.modes[i], w, p[w]);
        }
    }
}

}  // namespace

extern "C" void tsr_test_launch_add(void *stream, const float *a, const float *b, float *c,
                                    size_t n)
{
    AddKernel<<<BlocksFor(n), kThreads, 0, AsStream(stream)>>>(a, b, c, n);
}

extern "C" void tsr_test_launch_add_inplace(void *stream, const float *x, float *y, size_t n)
{
    AddInplaceKernel<<<BlocksFor(n), kThreads, 0, AsStream(stream)>>>(x, y, n);
}

extern "C" void tsr_test_launch_affine_u32(void *stream, uint32_t *x, size_t n, uint32_t k)
{
    AffineU32Kernel<<<BlocksFor(n), kThreads, 0, AsStream(stream)>>>(x, n, k);
}

extern "C" void tsr_test_launch_bytes_update(void *stream, uint8_t *p, size_t n, uint8_t k)
{
    BytesUpdateKernel<<<BlocksFor(n), kThreads, 0, AsStream(stream)>>>(p, n, k);
}

extern "C" void tsr_test_launch_bytes_fill(void *stream, uint8_t *p, size_t n, uint8_t k)
{
    BytesFillKernel<<<BlocksFor(n), kThreads, 0, AsStream(stream)>>>(p, n, k);
}

/* Zeroing the sum is queued on the same stream, so it is ordered before the kernel. */
extern "C" void tsr_test_launch_bytes_sum(void *stream, const uint8_t *p, size_t n, uint64_t *d_sum)
{
    cudaMemsetAsync(d_sum, 0, sizeof(*d_sum), AsStream(stream));
    BytesSumKernel<<<BlocksFor(n), kThreads, 0, AsStream(stream)>>>(
        p, n, reinterpret_cast<unsigned long long *>(d_sum));
}

extern "C" void tsr_test_launch_fill_u64(void *stream, uint64_t *p, size_t n, uint64_t k)
{
    FillU64Kernel<<<BlocksFor(n), kThreads, 0, AsStream(stream)>>>(p, n, k);
}

extern "C" void tsr_test_launch_bad_config(void *stream, float *p, size_t n)
{
    NeverRunsKernel<<<1, 4096, 0, AsStream(stream)>>>(p, n);
}

extern "C" void tsr_test_launch_step(void *stream, const tsr_test_step_arg *a,
                                     uint64_t *const *bufs)
{
    StepParams params = {};
    params.arg = *a;
    for (uint32_t i = 0; i < a->n_bufs && i < TSR_TEST_STEP_MAX_BUFS; i++) {
        params.bufs[i] = bufs[i];
    }
    StepKernel<<<1, 1, 0, AsStream(stream)>>>(params);
}

extern "C" void tsr_test_launch_spill_fill(void *stream, uint64_t *p, size_t n_words, uint64_t key)
{
    SpillFillKernel<<<BlocksFor(n_words), kThreads, 0, AsStream(stream)>>>(p, n_words, key);
}

extern "C" void tsr_test_launch_spill_step(void *stream, const tsr_test_spill_arg *a,
                                           uint64_t *const *bufs, const uint64_t *n_words)
{
    SpillParams params = {};
    params.arg = *a;
    size_t max_words = 0;
    for (uint32_t i = 0; i < a->n_bufs && i < TSR_TEST_SPILL_MAX_BUFS; i++) {
        params.bufs[i] = bufs[i];
        params.n_words[i] = n_words[i];
        max_words = n_words[i] > max_words ? n_words[i] : max_words;
    }
    SpillHashKernel<<<1, kHashThreads, 0, AsStream(stream)>>>(params);
    SpillUpdateKernel<<<BlocksFor(max_words), kThreads, 0, AsStream(stream)>>>(params);
}
