/* User functions on array blocks (tsr_array_map_blocks, tsr_array_map_overlap)
 * with a GPU: a CUDA-only function runs on the GPU on blocks the runtime put
 * there, a function with both implementations runs wherever the scheduler puts
 * it, and a CPU-only halo function reads widened chunks assembled by copy tasks
 * on either device; all against host references on fresh random inputs. Skips
 * without a CUDA device. */
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <vector>

#include "array/array_util.h"
#include "common/test_util.h"
#include "cuda/cuda_test_kernels.h"

namespace {

using tsr_test::Array;
using tsr_test::Spec;

bool HasGpu(tsr_runtime_t *rt)
{
    for (uint32_t d = 0; d < tsr_runtime_n_devices(rt); d++) {
        tsr_device_info_t info;
        if (tsr_runtime_device_info(rt, d, &info) == TSR_OK && info.kind == TSR_DEVICE_CUDA) {
            return true;
        }
    }
    return false;
}

size_t BlockElements(const tsr_block_info_t *info)
{
    size_t n = 1;
    for (uint32_t d = 0; d < info->ndim; d++) {
        n *= static_cast<size_t>(info->shape[d]);
    }
    return n;
}

std::atomic<int> g_gpu_blocks{0};
std::atomic<int> g_cpu_blocks{0};

tsr_status_t AddCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const auto *info = static_cast<const tsr_block_info_t *>(arg);
    tsr_test_launch_add(tsr_task_ctx_stream(ctx), static_cast<const float *>(bufs[0].ptr),
                        static_cast<const float *>(bufs[1].ptr), static_cast<float *>(bufs[2].ptr),
                        BlockElements(info));
    g_gpu_blocks++;
    return TSR_OK;
}

tsr_status_t AddCpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)ctx;
    const auto *info = static_cast<const tsr_block_info_t *>(arg);
    const auto *a = static_cast<const float *>(bufs[0].ptr);
    const auto *b = static_cast<const float *>(bufs[1].ptr);
    auto *c = static_cast<float *>(bufs[2].ptr);
    for (size_t i = 0; i < BlockElements(info); i++) {
        c[i] = a[i] + b[i];
    }
    g_cpu_blocks++;
    return TSR_OK;
}

tsr_status_t Sum3Cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)ctx;
    const auto *info = static_cast<const tsr_block_info_t *>(arg);
    const auto *in = static_cast<const float *>(bufs[0].ptr);
    auto *out = static_cast<float *>(bufs[1].ptr);
    for (int64_t i = 0; i < info->shape[0]; i++) {
        out[i] = in[i] + in[i + 1] + in[i + 2];
    }
    return TSR_OK;
}

TEST(CudaMap, BlocksRunOnTheGpuAndMatchHost)
{
    tsr_test::Runtime rt = tsr_test::StartRuntime(tsr_test::TestConfig(2, TSR_SCHED_DEFAULT));
    ASSERT_TRUE(rt);
    if (!HasGpu(rt.get())) {
        GTEST_SKIP() << "no CUDA device (no GPU, or no NVIDIA driver)";
    }
    std::mt19937_64 rng(tsr_test::TestSeed());
    std::uniform_real_distribution<float> u(-4, 4);
    const int64_t n = 3000000;
    std::vector<float> xs(n), ys(n);
    for (int64_t i = 0; i < n; i++) {
        xs[static_cast<size_t>(i)] = u(rng);
        ys[static_cast<size_t>(i)] = u(rng);
    }
    tsr_array_spec_t s = Spec(TSR_FLOAT32, {n}, {250000});
    tsr_array_t *raw = nullptr;
    ASSERT_EQ(tsr_array_from_buffer(rt.get(), &s, xs.data(), xs.size() * 4, TSR_ARRAY_COPY, &raw),
              TSR_OK);
    Array x(raw);
    ASSERT_EQ(tsr_array_from_buffer(rt.get(), &s, ys.data(), ys.size() * 4, TSR_ARRAY_COPY, &raw),
              TSR_OK);
    Array y(raw);
    tsr_array_t *in[2] = {x.get(), y.get()};

    for (int both = 0; both < 2; both++) {
        tsr_block_fn_t fn = TSR_BLOCK_FN_INIT;
        fn.cuda = AddCuda;
        fn.cpu = both ? AddCpu : nullptr;
        g_gpu_blocks = 0;
        g_cpu_blocks = 0;
        ASSERT_EQ(tsr_array_map_blocks(&fn, in, 2, TSR_FLOAT32, &raw), TSR_OK) << tsr_last_error();
        Array r(raw);
        std::vector<float> got(n);
        ASSERT_EQ(tsr_array_compute(r.get(), got.data(), got.size() * 4), TSR_OK)
            << tsr_last_error();
        for (int64_t i = 0; i < n; i++) {
            size_t k = static_cast<size_t>(i);
            ASSERT_EQ(got[k], xs[k] + ys[k]) << i;
        }
        EXPECT_EQ(g_gpu_blocks + g_cpu_blocks, 12);
        if (!both) {
            EXPECT_EQ(g_gpu_blocks, 12) << "a CUDA-only function runs on the GPU";
        }
    }

    // A CPU halo function over chunks the copy kernels widen on whichever device.
    tsr_block_fn_t sum3 = TSR_BLOCK_FN_INIT;
    sum3.cpu = Sum3Cpu;
    const int64_t depth[1] = {1};
    ASSERT_EQ(
        tsr_array_map_overlap(&sum3, x.get(), depth, TSR_BOUNDARY_PERIODIC, 0, TSR_FLOAT32, &raw),
        TSR_OK);
    Array r(raw);
    std::vector<float> got(n);
    ASSERT_EQ(tsr_array_compute(r.get(), got.data(), got.size() * 4), TSR_OK) << tsr_last_error();
    for (int64_t i = 0; i < n; i++) {
        float want = xs[static_cast<size_t>((i + n - 1) % n)] + xs[static_cast<size_t>(i)] +
                     xs[static_cast<size_t>((i + 1) % n)];
        ASSERT_EQ(got[static_cast<size_t>(i)], want) << i;
    }
}

}  // namespace
