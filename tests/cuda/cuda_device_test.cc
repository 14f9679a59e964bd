/* The CUDA device backend on a real GPU, through the public API: user kernels and
 * cuBLAS as CUDA implementations, failed launches and failing implementations,
 * replica locality, a mixed CPU/GPU oracle, the caching allocator, large transfers
 * from pageable and pinned memory, and copy spans in the trace.
 *
 * Every test skips when the runtime finds no CUDA device (no GPU or no driver).
 * Inputs are random; the seed is printed and TSR_TEST_SEED replays a run. */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cuda/cuda_test_kernels.h"
#include "cuda/oracle_step.h"

namespace {

using json = nlohmann::json;
using tsr_test::Data;
using tsr_test::Future;
using tsr_test::Runtime;
using tsr_test::Task;

constexpr const char *kNoGpu = "no CUDA device (no GPU, or no NVIDIA driver)";

/* ---- Devices and runtimes -------------------------------------------------- */

struct Gpu {
    uint32_t device; /* index for TSR_PIN_DEVICE */
    uint32_t node;   /* its memory node */
    std::string name;
    uint64_t mem_bytes;
};

std::vector<Gpu> CudaGpus(tsr_runtime_t *rt)
{
    std::vector<Gpu> gpus;
    for (uint32_t d = 0; d < tsr_runtime_n_devices(rt); d++) {
        tsr_device_info_t info;
        EXPECT_EQ(tsr_runtime_device_info(rt, d, &info), TSR_OK);
        if (info.kind == TSR_DEVICE_CUDA) {
            gpus.push_back(Gpu{d, info.mem_node, info.name, info.mem_bytes});
        }
    }
    return gpus;
}

/* A runtime with two CPU workers and every CUDA device; skips without one. */
class CudaDevice : public testing::Test {
protected:
    void SetUp() override
    {
        rt_ = tsr_test::StartRuntime(tsr_test::TestConfig(2, TSR_SCHED_DEFAULT));
        ASSERT_TRUE(rt_);
        gpus_ = CudaGpus(rt_.get());
        if (gpus_.empty()) {
            GTEST_SKIP() << kNoGpu;
        }
    }

    tsr_runtime_t *rt() const { return rt_.get(); }
    const Gpu &gpu() const { return gpus_[0]; }

    Runtime rt_;
    std::vector<Gpu> gpus_;
};

/* A fresh seed (or TSR_TEST_SEED), printed in every run (not only on failure) so that
 * any run can be replayed. */
uint64_t PrintedSeed()
{
    uint64_t seed = tsr_test::TestSeed();
    std::printf("[   SEED   ] %s\n", tsr_test::SeedTrace(seed).c_str());
    return seed;
}

/* Submit `task` pinned as given; the future goes to *future_out when not null. */
tsr_status_t SubmitPinned(tsr_runtime_t *rt, const Task &task, tsr_pin_t pin, uint32_t value,
                          Future *future_out = nullptr)
{
    tsr_task_desc_t desc = task.Desc();
    desc.pin = pin;
    desc.pin_value = pin == TSR_PIN_NONE ? 0 : value;
    tsr_future_t *f = nullptr;
    tsr_status_t st = tsr_task_submit(rt, &desc, future_out != nullptr ? &f : nullptr);
    if (st == TSR_OK && future_out != nullptr) {
        future_out->reset(f);
    }
    return st;
}

/* On any GPU; on one GPU (device index). */
tsr_status_t OnGpu(tsr_runtime_t *rt, const Task &task, Future *future_out = nullptr)
{
    return SubmitPinned(rt, task, TSR_PIN_KIND, TSR_DEVICE_CUDA, future_out);
}

tsr_status_t OnDevice(tsr_runtime_t *rt, const Task &task, uint32_t device,
                      Future *future_out = nullptr)
{
    return SubmitPinned(rt, task, TSR_PIN_DEVICE, device, future_out);
}

tsr_copy_stats_t CopyStats(tsr_runtime_t *rt, uint32_t src, uint32_t dst)
{
    tsr_copy_stats_t s = {0, 0};
    EXPECT_EQ(tsr_runtime_copy_stats(rt, src, dst, &s), TSR_OK);
    return s;
}

tsr_mem_stats_t MemStats(tsr_runtime_t *rt, uint32_t node)
{
    tsr_mem_stats_t s = {};
    EXPECT_EQ(tsr_runtime_mem_stats(rt, node, &s), TSR_OK);
    return s;
}

bool Contains(const std::string &haystack, const std::string &needle)
{
    return haystack.find(needle) != std::string::npos;
}

/* Index of the first element where a and b differ (as bytes); -1 if none. */
template <class T>
long FirstMismatch(const T *a, const T *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) {
            return static_cast<long>(i);
        }
    }
    return -1;
}

/* Acquire `h` for reading and compare it, byte for byte, with `expect`. */
template <class T>
void ExpectContents(tsr_data_t *h, const std::vector<T> &expect, const char *what)
{
    SCOPED_TRACE(what);
    void *p = nullptr;
    size_t n_bytes = 0;
    ASSERT_EQ(tsr_data_acquire(h, TSR_R, &p, &n_bytes), TSR_OK) << tsr_last_error();
    EXPECT_EQ(n_bytes, expect.size() * sizeof(T));
    if (n_bytes == expect.size() * sizeof(T)) {
        EXPECT_EQ(FirstMismatch(static_cast<const T *>(p), expect.data(), expect.size()), -1);
    }
    ASSERT_EQ(tsr_data_release(h), TSR_OK);
}

std::vector<float> RandomFloats(std::mt19937_64 &rng, size_t n)
{
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float &x : v) {
        x = dist(rng);
    }
    return v;
}

/* ---- Codelets ---------------------------------------------------------------- */

bool SameSizes(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        if (bufs[i].n_bytes != bufs[0].n_bytes) {
            tsr_task_ctx_fail(ctx, "buffer %u has %zu bytes, buffer 0 %zu", i, bufs[i].n_bytes,
                              bufs[0].n_bytes);
            return false;
        }
    }
    return true;
}

tsr_codelet_t CudaCodelet(const char *name, tsr_kernel_fn cuda,
                          std::initializer_list<tsr_access_t> modes)
{
    tsr_codelet_t cl = tsr_test::MakeCodelet(name, nullptr, modes);
    cl.impl[TSR_DEVICE_CUDA] = cuda;
    return cl;
}

/* (a R, b R, c W): c = a + b */
tsr_status_t AddCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *)
{
    if (!SameSizes(ctx, bufs, 3)) {
        return TSR_EINVAL;
    }
    tsr_test_launch_add(tsr_task_ctx_stream(ctx), static_cast<const float *>(bufs[0].ptr),
                        static_cast<const float *>(bufs[1].ptr), static_cast<float *>(bufs[2].ptr),
                        bufs[0].n_bytes / sizeof(float));
    return TSR_OK;
}

/* (x R, y RW): y += x */
tsr_status_t AddInplaceCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *)
{
    if (!SameSizes(ctx, bufs, 2)) {
        return TSR_EINVAL;
    }
    tsr_test_launch_add_inplace(tsr_task_ctx_stream(ctx), static_cast<const float *>(bufs[0].ptr),
                                static_cast<float *>(bufs[1].ptr), bufs[0].n_bytes / sizeof(float));
    return TSR_OK;
}

/* (x RW), argument uint32_t k: x[i] = x[i] * 31 + k + i */
tsr_status_t AffineCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    tsr_test_launch_affine_u32(tsr_task_ctx_stream(ctx), static_cast<uint32_t *>(bufs[0].ptr),
                               bufs[0].n_bytes / sizeof(uint32_t), tsr_test::ArgAs<uint32_t>(arg));
    return TSR_OK;
}

void AffineRef(std::vector<uint32_t> &x, uint32_t k)
{
    for (size_t i = 0; i < x.size(); i++) {
        x[i] = x[i] * 31u + k + static_cast<uint32_t>(i);
    }
}

/* (x R): reads on the GPU and queues nothing. */
tsr_status_t TouchCuda(tsr_task_ctx_t *, const tsr_buffer_t *, const void *)
{
    return TSR_OK;
}

/* (x RW): a launch with an invalid configuration; returns TSR_OK as if all was well. */
tsr_status_t BadLaunchCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *)
{
    tsr_test_launch_bad_config(tsr_task_ctx_stream(ctx), static_cast<float *>(bufs[0].ptr),
                               bufs[0].n_bytes / sizeof(float));
    return TSR_OK;
}

/* Argument of FailingCuda. */
struct FailingArg {
    tsr_status_t status;
    uint32_t tile;
    uint32_t launch_first; /* queue a valid kernel on the buffer before failing */
};

/* (x RW): rejects its input through tsr_task_ctx_fail. */
tsr_status_t FailingCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    FailingArg a = tsr_test::ArgAs<FailingArg>(arg);
    if (a.launch_first != 0) {
        tsr_test_launch_affine_u32(tsr_task_ctx_stream(ctx), static_cast<uint32_t *>(bufs[0].ptr),
                                   bufs[0].n_bytes / sizeof(uint32_t), 1);
    }
    tsr_task_ctx_fail(ctx, "tile %u rejected on the GPU", a.tile);
    return a.status;
}

const tsr_codelet_t kAdd = CudaCodelet("vadd", AddCuda, {TSR_R, TSR_R, TSR_W});
const tsr_codelet_t kAddInplace = CudaCodelet("vadd_inplace", AddInplaceCuda, {TSR_R, TSR_RW});
const tsr_codelet_t kAffine = CudaCodelet("affine_u32", AffineCuda, {TSR_RW});
const tsr_codelet_t kTouch = CudaCodelet("touch", TouchCuda, {TSR_R});
const tsr_codelet_t kBadLaunch = CudaCodelet("bad_launch", BadLaunchCuda, {TSR_RW});
const tsr_codelet_t kFailing = CudaCodelet("rejecting", FailingCuda, {TSR_RW});

/* ---- Vector add -------------------------------------------------------------- */

/* Chunks of c = a + b, then c += a a few times, all on the GPU: the chain stays on
 * the device and the acquired result equals the host computation bit for bit
 * (single float additions round the same way everywhere). */
TEST_F(CudaDevice, VectorAddChainMatchesHostExactly)
{
    const uint64_t seed = PrintedSeed();
    std::mt19937_64 rng(seed);
    const size_t kChunks = 8, kLen = (size_t(1) << 18) + 3, kSteps = 4;
    std::vector<std::vector<float>> a, b, c, ref;
    for (size_t i = 0; i < kChunks; i++) {
        a.push_back(RandomFloats(rng, kLen));
        b.push_back(RandomFloats(rng, kLen));
        c.push_back(std::vector<float>(kLen, NAN));  // overwritten (W): never read
        ref.push_back(std::vector<float>(kLen));
        for (size_t j = 0; j < kLen; j++) {
            ref[i][j] = a[i][j] + b[i][j];
            for (size_t s = 0; s < kSteps; s++) {
                ref[i][j] = ref[i][j] + a[i][j];
            }
        }
    }
    std::vector<Data> ha = tsr_test::RegisterVectors(rt(), a);
    std::vector<Data> hb = tsr_test::RegisterVectors(rt(), b);
    std::vector<Data> hc = tsr_test::RegisterVectors(rt(), c);
    for (size_t i = 0; i < kChunks; i++) {
        Task add(&kAdd);
        add.Use(ha[i].get()).Use(hb[i].get()).Use(hc[i].get());
        ASSERT_EQ(OnGpu(rt(), add), TSR_OK) << tsr_last_error();
    }
    for (size_t s = 0; s < kSteps; s++) {
        for (size_t i = 0; i < kChunks; i++) {
            Task acc(&kAddInplace);
            acc.Use(ha[i].get()).Use(hc[i].get());
            ASSERT_EQ(OnGpu(rt(), acc), TSR_OK) << tsr_last_error();
        }
    }
    ASSERT_EQ(tsr_wait_all(rt()), TSR_OK);
    EXPECT_EQ(tsr_test::Stats(rt()).n_failed, 0u);
    for (size_t i = 0; i < kChunks; i++) {
        ExpectContents(hc[i].get(), ref[i], ("chunk " + std::to_string(i)).c_str());
    }
}

/* ---- cuBLAS ------------------------------------------------------------------- */

struct GemmArg {
    int32_t m, n, k;
    float beta;
};

/* (A R, B R, C W or RW), column-major tiles: C = A * B + beta * C with the
 * runtime's cuBLAS handle, which is bound to the task's stream. */
tsr_status_t GemmCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    GemmArg g = tsr_test::ArgAs<GemmArg>(arg);
    cublasHandle_t blas = static_cast<cublasHandle_t>(tsr_task_ctx_blas(ctx));
    if (blas == nullptr) {
        tsr_task_ctx_fail(ctx, "no cuBLAS handle");
        return TSR_ENOTSUP;
    }
    size_t f = sizeof(float);
    if (bufs[0].n_bytes != f * g.m * g.k || bufs[1].n_bytes != f * g.k * g.n ||
        bufs[2].n_bytes != f * g.m * g.n) {
        tsr_task_ctx_fail(ctx, "tile sizes do not match %d x %d x %d", g.m, g.n, g.k);
        return TSR_EINVAL;
    }
    const float alpha = 1.0f;
    cublasStatus_t st = cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, g.m, g.n, g.k, &alpha,
                                    static_cast<const float *>(bufs[0].ptr), g.m,
                                    static_cast<const float *>(bufs[1].ptr), g.k, &g.beta,
                                    static_cast<float *>(bufs[2].ptr), g.m);
    if (st != CUBLAS_STATUS_SUCCESS) {
        tsr_task_ctx_fail(ctx, "cublasSgemm: %s", cublasGetStatusString(st));
        return TSR_EBACKEND;
    }
    return TSR_OK;
}

tsr_codelet_t GemmCodelet()
{
    tsr_codelet_t cl = {};
    cl.name = "sgemm_tile";
    cl.impl[TSR_DEVICE_CUDA] = GemmCuda;
    cl.n_buffers = TSR_NBUFFERS_DYNAMIC;  // C is W for the first k tile, RW after
    return cl;
}

const tsr_codelet_t kGemm = GemmCodelet();

/* A matrix of rows x cols floats split into tiles of tr x tc, each column-major. */
struct TiledMatrix {
    size_t rows, cols, tr, tc;
    std::vector<std::vector<float>> tiles; /* tile (i, j) at i * (cols / tc) + j */

    TiledMatrix(size_t r, size_t c, size_t tile_r, size_t tile_c)
        : rows(r), cols(c), tr(tile_r), tc(tile_c)
    {
        tiles.assign((r / tile_r) * (c / tile_c), std::vector<float>(tile_r * tile_c, NAN));
    }
    std::vector<float> &Tile(size_t i, size_t j) { return tiles[i * (cols / tc) + j]; }
    float &At(size_t r, size_t c) { return Tile(r / tr, c / tc)[(r % tr) + (c % tc) * tr]; }
};

/* C (512 x 384) = A (512 x 256) * B (256 x 384) as 4 x 3 C tiles of 128 x 128, each
 * accumulated over 2 k tiles, against a float64 product of the same inputs. */
TEST_F(CudaDevice, CublasGemmTilesMatchFloat64Product)
{
    const uint64_t seed = PrintedSeed();
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    const size_t M = 512, N = 384, K = 256, T = 128;
    TiledMatrix A(M, K, T, T), B(K, N, T, T), C(M, N, T, T);
    for (size_t r = 0; r < M; r++) {
        for (size_t k = 0; k < K; k++) {
            A.At(r, k) = dist(rng);
        }
    }
    for (size_t k = 0; k < K; k++) {
        for (size_t c = 0; c < N; c++) {
            B.At(k, c) = dist(rng);
        }
    }
    std::vector<Data> ha = tsr_test::RegisterVectors(rt(), A.tiles);
    std::vector<Data> hb = tsr_test::RegisterVectors(rt(), B.tiles);
    std::vector<Data> hc = tsr_test::RegisterVectors(rt(), C.tiles);
    for (size_t kt = 0; kt < K / T; kt++) {
        for (size_t i = 0; i < M / T; i++) {
            for (size_t j = 0; j < N / T; j++) {
                GemmArg g = {int32_t(T), int32_t(T), int32_t(T), kt == 0 ? 0.0f : 1.0f};
                Task t(&kGemm);
                t.Use(ha[i * (K / T) + kt].get(), TSR_R)
                    .Use(hb[kt * (N / T) + j].get(), TSR_R)
                    .Use(hc[i * (N / T) + j].get(), kt == 0 ? TSR_W : TSR_RW)
                    .Arg(g);
                ASSERT_EQ(OnGpu(rt(), t), TSR_OK) << tsr_last_error();
            }
        }
    }
    ASSERT_EQ(tsr_wait_all(rt()), TSR_OK);
    ASSERT_EQ(tsr_test::Stats(rt()).n_failed, 0u);
    hc.clear();  // unregistering brings every C tile back to C.tiles
    double err2 = 0, ref2 = 0;
    for (size_t r = 0; r < M; r++) {
        for (size_t c = 0; c < N; c++) {
            double ref = 0;
            for (size_t k = 0; k < K; k++) {
                ref += double(A.At(r, k)) * double(B.At(k, c));
            }
            double d = double(C.At(r, c)) - ref;
            err2 += d * d;
            ref2 += ref * ref;
        }
    }
    double rel = std::sqrt(err2 / ref2);
    std::printf("[   INFO   ] sgemm |C - C64|_F / |C64|_F = %.3g\n", rel);
    EXPECT_LT(rel, 1e-5);  // NaN (a tile never written) fails too
}

/* ---- Failures ------------------------------------------------------------------ */

/* After a failure on a GPU, fresh work on the same GPU still runs correctly. */
void ExpectGpuStillWorks(tsr_runtime_t *rt, uint32_t device, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::vector<float> a = RandomFloats(rng, 100003), b = RandomFloats(rng, a.size());
    std::vector<float> c(a.size(), NAN), ref(a.size());
    for (size_t i = 0; i < a.size(); i++) {
        ref[i] = a[i] + b[i];
    }
    Data ha = tsr_test::RegisterVector(rt, a), hb = tsr_test::RegisterVector(rt, b);
    Data hc = tsr_test::RegisterVector(rt, c);
    Task add(&kAdd);
    add.Use(ha.get()).Use(hb.get()).Use(hc.get());
    Future f;
    ASSERT_EQ(OnDevice(rt, add, device, &f), TSR_OK) << tsr_last_error();
    ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK) << tsr_future_message(f.get());
    ExpectContents(hc.get(), ref, "after the failure");
}

/* A kernel launched with 4096 threads per block: the runtime notices after the
 * implementation returns, fails the task with TSR_EBACKEND and CUDA's text,
 * cancels its dependent, and the GPU stays usable. */
TEST_F(CudaDevice, InvalidLaunchFailsTaskAndCancelsDependents)
{
    const uint64_t seed = PrintedSeed();
    std::vector<float> x(4099, 1.0f), y(x.size(), 2.0f);
    Data hx = tsr_test::RegisterVector(rt(), x);
    Data hy = tsr_test::RegisterVector(rt(), y);
    Task bad(&kBadLaunch);
    bad.Use(hx.get());
    Task dependent(&kAddInplace);
    dependent.Use(hy.get()).Use(hx.get());  // x += y: reads what the bad task wrote
    Future f_bad, f_dep;
    ASSERT_EQ(OnDevice(rt(), bad, gpu().device, &f_bad), TSR_OK) << tsr_last_error();
    ASSERT_EQ(OnDevice(rt(), dependent, gpu().device, &f_dep), TSR_OK) << tsr_last_error();

    EXPECT_EQ(tsr_future_wait(f_bad.get()), TSR_EBACKEND);
    std::string msg = tsr_future_message(f_bad.get());
    EXPECT_TRUE(Contains(msg, cudaGetErrorString(cudaErrorInvalidConfiguration)) ||
                Contains(msg, cudaGetErrorName(cudaErrorInvalidConfiguration)))
        << "message '" << msg << "'";
    EXPECT_EQ(tsr_future_wait(f_dep.get()), TSR_ECANCELED);
    EXPECT_TRUE(Contains(tsr_future_message(f_dep.get()), "bad_launch"))
        << "message '" << tsr_future_message(f_dep.get()) << "'";
    tsr_runtime_stats_t st = tsr_test::Stats(rt());
    EXPECT_EQ(st.n_failed, 1u);
    EXPECT_EQ(st.n_cancelled, 1u);
    // x's last writer failed: reading it reports the cancellation.
    void *p = nullptr;
    EXPECT_EQ(tsr_data_acquire(hx.get(), TSR_R, &p, nullptr), TSR_ECANCELED);

    // An overwrite on the GPU makes x valid again; other work runs as usual.
    std::vector<float> a(x.size(), 0.5f), ref(x.size(), 2.5f);
    Data ha = tsr_test::RegisterVector(rt(), a);
    Task rewrite(&kAdd);
    rewrite.Use(ha.get()).Use(hy.get()).Use(hx.get());
    ASSERT_EQ(OnDevice(rt(), rewrite, gpu().device), TSR_OK) << tsr_last_error();
    ExpectContents(hx.get(), ref, "x rewritten");
    ExpectGpuStillWorks(rt(), gpu().device, seed);
}

/* An implementation that reports an error itself (tsr_task_ctx_fail), with or
 * without work already queued on its stream. */
TEST_F(CudaDevice, ImplementationFailureIsReported)
{
    const uint64_t seed = PrintedSeed();
    for (uint32_t launch_first = 0; launch_first < 2; launch_first++) {
        SCOPED_TRACE(launch_first ? "after queuing a kernel" : "before queuing anything");
        std::vector<uint32_t> x(1 << 16, 3);
        Data hx = tsr_test::RegisterVector(rt(), x);
        Task failing(&kFailing);
        failing.Use(hx.get()).Arg(FailingArg{TSR_EINVAL, 7 + launch_first, launch_first});
        Task dependent(&kAffine);
        dependent.Use(hx.get()).Arg(uint32_t(5));
        Future f_fail, f_dep;
        ASSERT_EQ(OnDevice(rt(), failing, gpu().device, &f_fail), TSR_OK) << tsr_last_error();
        ASSERT_EQ(OnDevice(rt(), dependent, gpu().device, &f_dep), TSR_OK) << tsr_last_error();

        EXPECT_EQ(tsr_future_wait(f_fail.get()), TSR_EINVAL);
        std::string expect = "tile " + std::to_string(7 + launch_first) + " rejected on the GPU";
        EXPECT_TRUE(Contains(tsr_future_message(f_fail.get()), expect))
            << "message '" << tsr_future_message(f_fail.get()) << "'";
        EXPECT_EQ(tsr_future_wait(f_dep.get()), TSR_ECANCELED);
        EXPECT_TRUE(Contains(tsr_future_message(f_dep.get()), expect))
            << "message '" << tsr_future_message(f_dep.get()) << "'";
    }
    ExpectGpuStillWorks(rt(), gpu().device, seed);
}

/* ---- Locality ------------------------------------------------------------------- */

/* A chain of RW tasks on one GPU: the input goes host->GPU once, nothing comes
 * back until the host asks, then exactly once; a later read on the GPU needs no
 * copy, its replica being still valid. */
TEST_F(CudaDevice, ChainOnOneGpuCopiesInputOnceEachWay)
{
    const uint64_t seed = PrintedSeed();
    std::mt19937_64 rng(seed);
    std::vector<uint32_t> x(size_t(1) << 18);  // 1 MiB
    for (uint32_t &w : x) {
        w = static_cast<uint32_t>(rng());
    }
    std::vector<uint32_t> ref = x;
    const uint64_t n_bytes = x.size() * sizeof(uint32_t);
    const Gpu g = gpu();
    tsr_copy_stats_t in0 = CopyStats(rt(), 0, g.node), out0 = CopyStats(rt(), g.node, 0);
    Data hx = tsr_test::RegisterVector(rt(), x);
    const size_t kTasks = tsr_test::Scaled(64, 8);
    for (size_t t = 0; t < kTasks; t++) {
        uint32_t k = static_cast<uint32_t>(rng());
        Task step(&kAffine);
        step.Use(hx.get()).Arg(k);
        ASSERT_EQ(OnDevice(rt(), step, g.device), TSR_OK) << tsr_last_error();
        AffineRef(ref, k);
    }
    ASSERT_EQ(tsr_wait_all(rt()), TSR_OK);
    EXPECT_EQ(tsr_test::Stats(rt()).n_failed, 0u);
    tsr_copy_stats_t in1 = CopyStats(rt(), 0, g.node), out1 = CopyStats(rt(), g.node, 0);
    EXPECT_EQ(in1.n_copies - in0.n_copies, 1u);
    EXPECT_EQ(in1.n_bytes - in0.n_bytes, n_bytes);
    EXPECT_EQ(out1.n_copies - out0.n_copies, 0u);

    ExpectContents(hx.get(), ref, "after the chain");
    tsr_copy_stats_t out2 = CopyStats(rt(), g.node, 0);
    EXPECT_EQ(out2.n_copies - out0.n_copies, 1u);
    EXPECT_EQ(out2.n_bytes - out0.n_bytes, n_bytes);

    Task read(&kTouch);
    read.Use(hx.get());
    ASSERT_EQ(OnDevice(rt(), read, g.device), TSR_OK) << tsr_last_error();
    ASSERT_EQ(tsr_wait_all(rt()), TSR_OK);
    EXPECT_EQ(CopyStats(rt(), 0, g.node).n_copies - in0.n_copies, 1u);
}

/* ---- Mixed CPU/GPU oracle ----------------------------------------------------------- */

std::atomic<uint64_t> g_misplaced{0};

void CountMisplaced(tsr_task_ctx_t *ctx, const tsr_test_step_arg &a)
{
    if (a.pinned_device != UINT32_MAX && tsr_task_ctx_device(ctx) != a.pinned_device) {
        g_misplaced++;
    }
}

bool StepBuffers(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const tsr_test_step_arg &a,
                 uint64_t **ptrs)
{
    for (uint32_t i = 0; i < a.n_bufs; i++) {
        if (bufs[i].n_bytes != TSR_TEST_STEP_WORDS * sizeof(uint64_t)) {
            tsr_task_ctx_fail(ctx, "buffer %u has %zu bytes", i, bufs[i].n_bytes);
            return false;
        }
        ptrs[i] = static_cast<uint64_t *>(bufs[i].ptr);
    }
    return true;
}

tsr_status_t StepCpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    tsr_test_step_arg a = tsr_test::ArgAs<tsr_test_step_arg>(arg);
    uint64_t *ptrs[TSR_TEST_STEP_MAX_BUFS];
    CountMisplaced(ctx, a);
    if (!StepBuffers(ctx, bufs, a, ptrs)) {
        return TSR_ETASK;
    }
    tsr_test_step_apply(&a, ptrs);
    return TSR_OK;
}

tsr_status_t StepCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    tsr_test_step_arg a = tsr_test::ArgAs<tsr_test_step_arg>(arg);
    uint64_t *ptrs[TSR_TEST_STEP_MAX_BUFS];
    CountMisplaced(ctx, a);
    if (!StepBuffers(ctx, bufs, a, ptrs)) {
        return TSR_ETASK;
    }
    tsr_test_launch_step(tsr_task_ctx_stream(ctx), &a, ptrs);
    return TSR_OK;
}

tsr_codelet_t StepCodelet()
{
    tsr_codelet_t cl = {};
    cl.name = "step";
    cl.impl[TSR_DEVICE_CPU] = StepCpu;
    cl.impl[TSR_DEVICE_CUDA] = StepCuda;
    cl.n_buffers = TSR_NBUFFERS_DYNAMIC;
    return cl;
}

const tsr_codelet_t kStep = StepCodelet();

/* One random step of the oracle over `handles`, submitted and replayed on `ref`. */
void SubmitRandomStep(tsr_runtime_t *rt, std::mt19937_64 &rng, uint64_t key,
                      const std::vector<uint32_t> &devices, std::vector<Data> &handles,
                      std::vector<std::vector<uint64_t>> &ref)
{
    tsr_test_step_arg a = {};
    a.key = key;
    a.n_bufs = 1 + rng() % 3;
    // One task in eight is not pinned: the runtime places it.
    a.pinned_device = rng() % 8 == 0 ? UINT32_MAX : devices[rng() % devices.size()];
    size_t idx[TSR_TEST_STEP_MAX_BUFS];
    for (uint32_t i = 0; i < a.n_bufs; i++) {
        idx[i] = rng() % handles.size();
        a.modes[i] = 1 + rng() % 3;
    }
    // A handle listed twice is one buffer with the union of its modes.
    for (uint32_t i = 0; i < a.n_bufs; i++) {
        for (uint32_t j = 0; j < a.n_bufs; j++) {
            a.modes[i] |= idx[i] == idx[j] ? a.modes[j] : 0;
        }
    }
    Task task(&kStep);
    uint64_t *ref_ptrs[TSR_TEST_STEP_MAX_BUFS];
    for (uint32_t i = 0; i < a.n_bufs; i++) {
        task.Use(handles[idx[i]].get(), static_cast<tsr_access_t>(a.modes[i]));
        ref_ptrs[i] = ref[idx[i]].data();
    }
    task.Arg(a);
    tsr_pin_t pin = a.pinned_device == UINT32_MAX ? TSR_PIN_NONE : TSR_PIN_DEVICE;
    ASSERT_EQ(SubmitPinned(rt, task, pin, a.pinned_device), TSR_OK) << tsr_last_error();
    tsr_test_step_apply(&a, ref_ptrs);
}

/* A random DAG, each task on the CPU or a GPU at random (a few left to the
 * scheduler), must leave exactly what a sequential replay does. */
TEST_F(CudaDevice, RandomDagOnCpuAndGpusMatchesReplay)
{
    const uint64_t seed = PrintedSeed();
    std::mt19937_64 rng(seed);
    const size_t kHandles = 64, kTasks = tsr_test::Scaled(3000, 100);
    std::vector<std::vector<uint64_t>> data(kHandles, std::vector<uint64_t>(TSR_TEST_STEP_WORDS));
    for (std::vector<uint64_t> &v : data) {
        for (uint64_t &w : v) {
            w = rng();
        }
    }
    std::vector<std::vector<uint64_t>> ref = data;
    std::vector<Data> handles = tsr_test::RegisterVectors(rt(), data);
    std::vector<uint32_t> devices = {0};
    for (const Gpu &g : gpus_) {
        devices.push_back(g.device);
    }
    g_misplaced = 0;
    for (size_t t = 0; t < kTasks; t++) {
        ASSERT_NO_FATAL_FAILURE(
            SubmitRandomStep(rt(), rng, seed ^ (t << 20), devices, handles, ref));
        if (t % 499 == 498) {  // a host checkpoint in the middle of the run
            size_t k = rng() % kHandles;
            ExpectContents(handles[k].get(), ref[k],
                           ("checkpoint of handle " + std::to_string(k)).c_str());
        }
    }
    ASSERT_EQ(tsr_wait_all(rt()), TSR_OK);
    EXPECT_EQ(tsr_test::Stats(rt()).n_failed, 0u);
    EXPECT_EQ(g_misplaced.load(), 0u);
    uint64_t n_to_gpu = 0, n_from_gpu = 0;
    for (const Gpu &g : gpus_) {
        n_to_gpu += CopyStats(rt(), 0, g.node).n_copies;
        n_from_gpu += CopyStats(rt(), g.node, 0).n_copies;
    }
    EXPECT_GT(n_to_gpu, 0u);  // the data really travelled both ways
    EXPECT_GT(n_from_gpu, 0u);
    handles.clear();  // brings the latest contents back to `data`
    for (size_t i = 0; i < kHandles; i++) {
        EXPECT_EQ(data[i], ref[i]) << "handle " << i;
    }
}

/* ---- Caching allocator ------------------------------------------------------------ */

/* Registering, using on the GPU and unregistering buffers of one size again and
 * again reuses the same device block. */
TEST_F(CudaDevice, RepeatedSameSizeDataReusesDeviceBlocks)
{
    const uint64_t seed = PrintedSeed();
    std::mt19937_64 rng(seed);
    const Gpu g = gpu();
    tsr_mem_stats_t before = MemStats(rt(), g.node);
    const size_t kCycles = 40;
    for (size_t i = 0; i < kCycles; i++) {
        std::vector<uint32_t> x(size_t(1) << 18);
        for (uint32_t &w : x) {
            w = static_cast<uint32_t>(rng());
        }
        std::vector<uint32_t> ref = x;
        AffineRef(ref, uint32_t(i));
        Data hx = tsr_test::RegisterVector(rt(), x);
        Task step(&kAffine);
        step.Use(hx.get()).Arg(uint32_t(i));
        ASSERT_EQ(OnDevice(rt(), step, g.device), TSR_OK) << tsr_last_error();
        hx.reset();  // waits, brings the result back, frees the GPU replica
        ASSERT_EQ(x, ref) << "cycle " << i;
    }
    tsr_mem_stats_t after = MemStats(rt(), g.node);
    std::printf("[   INFO   ] %s: %llu allocs, %llu reuses\n", g.name.c_str(),
                (unsigned long long)(after.n_allocs - before.n_allocs),
                (unsigned long long)(after.n_reuses - before.n_reuses));
    EXPECT_LE(after.n_allocs - before.n_allocs, 2u);
    EXPECT_GE(after.n_reuses - before.n_reuses, kCycles - 2);
    EXPECT_EQ(after.used_bytes, 0u);
    EXPECT_GT(after.cached_bytes, 0u);
    EXPECT_GT(after.capacity, 0u);
    EXPECT_EQ(after.capacity, g.mem_bytes);
}

/* (out W, dynamic size), argument uint64_t n: allocates n words on the GPU with
 * tsr_task_ctx_alloc and fills them there. */
tsr_status_t FillDynamicCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    uint64_t n = tsr_test::ArgAs<uint64_t>(arg);
    void *p = nullptr;
    tsr_status_t st = tsr_task_ctx_alloc(ctx, 0, n * sizeof(uint64_t), &p);
    if (st != TSR_OK) {
        return st;
    }
    tsr_test_launch_fill_u64(tsr_task_ctx_stream(ctx), static_cast<uint64_t *>(p), n, n);
    return TSR_OK;
}

const tsr_codelet_t kFillDynamic = CudaCodelet("fill_dynamic", FillDynamicCuda, {TSR_W});

/* Dynamic-size outputs made on the GPU reach the host, and their blocks (sizes
 * of one power-of-two class) are reused. */
TEST_F(CudaDevice, DynamicOutputsMadeOnGpuReachHostAndReuseBlocks)
{
    const Gpu g = gpu();
    tsr_mem_stats_t before = MemStats(rt(), g.node);
    const uint64_t kCycles = 30;
    for (uint64_t i = 0; i < kCycles; i++) {
        uint64_t n = (uint64_t(1) << 16) + 1 + i * 997;  // 512 KiB + a little: one class
        Data h = tsr_test::CreateData(rt());
        Task fill(&kFillDynamic);
        fill.Use(h.get()).Arg(n);
        Future f;
        ASSERT_EQ(OnDevice(rt(), fill, g.device, &f), TSR_OK) << tsr_last_error();
        ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK) << tsr_future_message(f.get());
        std::vector<uint64_t> expect(n);
        for (uint64_t j = 0; j < n; j++) {
            expect[j] = j * n + 1;
        }
        ExpectContents(h.get(), expect, ("cycle " + std::to_string(i)).c_str());
    }
    tsr_mem_stats_t after = MemStats(rt(), g.node);
    EXPECT_LE(after.n_allocs - before.n_allocs, 2u);
    EXPECT_GE(after.n_reuses - before.n_reuses, kCycles - 2);
    EXPECT_EQ(after.used_bytes, 0u);
}

/* ---- Large transfers ------------------------------------------------------------------- */

/* (p RW), argument uint8_t k: p[i] = tsr_test_byte_update(p[i], i, k) */
tsr_status_t BytesUpdateCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    tsr_test_launch_bytes_update(tsr_task_ctx_stream(ctx), static_cast<uint8_t *>(bufs[0].ptr),
                                 bufs[0].n_bytes, tsr_test::ArgAs<uint8_t>(arg));
    return TSR_OK;
}

/* (p W), argument uint8_t k: p[i] = tsr_test_byte_pattern(i, k) */
tsr_status_t BytesFillCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    tsr_test_launch_bytes_fill(tsr_task_ctx_stream(ctx), static_cast<uint8_t *>(bufs[0].ptr),
                               bufs[0].n_bytes, tsr_test::ArgAs<uint8_t>(arg));
    return TSR_OK;
}

/* (p R, sum W): sum = weighted sum of p's bytes */
tsr_status_t BytesSumCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *)
{
    if (bufs[1].n_bytes != sizeof(uint64_t)) {
        tsr_task_ctx_fail(ctx, "sum buffer has %zu bytes", bufs[1].n_bytes);
        return TSR_EINVAL;
    }
    tsr_test_launch_bytes_sum(tsr_task_ctx_stream(ctx), static_cast<const uint8_t *>(bufs[0].ptr),
                              bufs[0].n_bytes, static_cast<uint64_t *>(bufs[1].ptr));
    return TSR_OK;
}

const tsr_codelet_t kBytesUpdate = CudaCodelet("bytes_update", BytesUpdateCuda, {TSR_RW});
const tsr_codelet_t kBytesFill = CudaCodelet("bytes_fill", BytesFillCuda, {TSR_W});
const tsr_codelet_t kBytesSum = CudaCodelet("bytes_sum", BytesSumCuda, {TSR_R, TSR_W});

uint64_t BytesSumRef(const uint8_t *p, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += uint64_t(p[i]) * (i % 251 + 1);
    }
    return sum;
}

/* Host memory of either kind, freed the matching way. */
struct HostFree {
    bool pinned;
    void operator()(uint8_t *p) const
    {
        if (pinned) {
            cudaFreeHost(p);
        } else {
            std::free(p);
        }
    }
};
using HostBuffer = std::unique_ptr<uint8_t, HostFree>;

HostBuffer AllocHost(size_t n, bool pinned)
{
    void *p = nullptr;
    if (pinned) {
        cudaError_t err = cudaMallocHost(&p, n);
        EXPECT_EQ(err, cudaSuccess) << cudaGetErrorString(err);
        if (err != cudaSuccess) {
            p = nullptr;
        }
    } else {
        p = std::malloc(n);
    }
    return HostBuffer(static_cast<uint8_t *>(p), HostFree{pinned});
}

/* Acquire `h` (n bytes) and compare with expect. */
void ExpectBytes(tsr_data_t *h, const uint8_t *expect, size_t n, const char *what)
{
    SCOPED_TRACE(what);
    void *p = nullptr;
    size_t n_bytes = 0;
    ASSERT_EQ(tsr_data_acquire(h, TSR_R, &p, &n_bytes), TSR_OK) << tsr_last_error();
    ASSERT_EQ(n_bytes, n);
    EXPECT_EQ(FirstMismatch(static_cast<const uint8_t *>(p), expect, n), -1);
    ASSERT_EQ(tsr_data_release(h), TSR_OK);
}

/* One buffer of n bytes through the GPU and back, three ways: both directions (RW
 * on the GPU, then acquire), GPU to host only (W on the GPU), host to GPU only
 * (written on the host, then read by the GPU, which returns a checksum). */
void RoundTrip(tsr_runtime_t *rt, const Gpu &g, size_t n, bool pinned, std::mt19937_64 &rng)
{
    SCOPED_TRACE(std::to_string(n) + (pinned ? " bytes, pinned" : " bytes, pageable"));
    HostBuffer buf = AllocHost(n, pinned);
    ASSERT_TRUE(buf);
    std::vector<uint8_t> ref(n);
    for (size_t i = 0; i < n; i++) {
        ref[i] = static_cast<uint8_t>(rng() >> 56);
    }
    std::memcpy(buf.get(), ref.data(), n);
    const uint8_t k = static_cast<uint8_t>(rng());
    for (size_t i = 0; i < n; i++) {
        ref[i] = tsr_test_byte_update(ref[i], i, k);
    }
    tsr_copy_stats_t in0 = CopyStats(rt, 0, g.node), out0 = CopyStats(rt, g.node, 0);
    Data h = tsr_test::Register(rt, buf.get(), n);

    Task update(&kBytesUpdate);
    update.Use(h.get()).Arg(k);
    ASSERT_EQ(OnDevice(rt, update, g.device), TSR_OK) << tsr_last_error();
    ExpectBytes(h.get(), ref.data(), n, "host -> GPU -> host");
    EXPECT_EQ(CopyStats(rt, 0, g.node).n_bytes - in0.n_bytes, n);
    EXPECT_EQ(CopyStats(rt, g.node, 0).n_bytes - out0.n_bytes, n);

    Task fill(&kBytesFill);
    fill.Use(h.get()).Arg(uint8_t(k + 1));
    ASSERT_EQ(OnDevice(rt, fill, g.device), TSR_OK) << tsr_last_error();
    for (size_t i = 0; i < n; i++) {
        ref[i] = tsr_test_byte_pattern(i, uint8_t(k + 1));
    }
    ExpectBytes(h.get(), ref.data(), n, "made on the GPU -> host");

    void *p = nullptr;
    ASSERT_EQ(tsr_data_acquire(h.get(), TSR_RW, &p, nullptr), TSR_OK);
    for (size_t i = 0; i < n; i += 4099) {
        static_cast<uint8_t *>(p)[i] ^= 0xa5;
    }
    uint64_t expect_sum = BytesSumRef(static_cast<const uint8_t *>(p), n);
    ASSERT_EQ(tsr_data_release(h.get()), TSR_OK);
    std::vector<uint64_t> sum(1, ~uint64_t(0));
    Data hsum = tsr_test::RegisterVector(rt, sum);
    Task check(&kBytesSum);
    check.Use(h.get()).Use(hsum.get());
    ASSERT_EQ(OnDevice(rt, check, g.device), TSR_OK) << tsr_last_error();
    ExpectContents(hsum.get(), std::vector<uint64_t>{expect_sum}, "host -> GPU (checksum)");
    EXPECT_EQ(CopyStats(rt, 0, g.node).n_bytes - in0.n_bytes, 2 * n);
}

TEST_F(CudaDevice, LargeTransfersFromPageableMemory)
{
    const uint64_t seed = PrintedSeed();
    std::mt19937_64 rng(seed);
    for (size_t n : {size_t(64) << 20, (size_t(23) << 20) + 4093}) {
        ASSERT_NO_FATAL_FAILURE(RoundTrip(rt(), gpu(), n, false, rng));
    }
}

TEST_F(CudaDevice, LargeTransfersFromPinnedMemory)
{
    const uint64_t seed = PrintedSeed();
    std::mt19937_64 rng(seed);
    for (size_t n : {size_t(64) << 20, (size_t(23) << 20) + 4093}) {
        ASSERT_NO_FATAL_FAILURE(RoundTrip(rt(), gpu(), n, true, rng));
    }
}

/* ---- Trace ---------------------------------------------------------------------------- */

/* A GPU run's trace has copy spans both ways, with their byte counts. */
TEST(CudaTrace, CopySpansAppearForGpuRun)
{
    tsr_test::TempFile trace("tsr_cuda_trace");
    const size_t n = 12345 * sizeof(uint32_t);
    std::string gpu_name;
    {
        tsr_config_t config = tsr_test::TestConfig(1, TSR_SCHED_DEFAULT);
        config.trace_path = trace.path().c_str();
        Runtime rt = tsr_test::StartRuntime(config);
        ASSERT_TRUE(rt);
        std::vector<Gpu> gpus = CudaGpus(rt.get());
        if (gpus.empty()) {
            GTEST_SKIP() << kNoGpu;
        }
        gpu_name = gpus[0].name;
        std::vector<uint32_t> x(n / sizeof(uint32_t), 9), ref = x;
        AffineRef(ref, 3);
        Data hx = tsr_test::RegisterVector(rt.get(), x);
        Task step(&kAffine);
        step.Use(hx.get()).Arg(uint32_t(3));
        ASSERT_EQ(OnDevice(rt.get(), step, gpus[0].device), TSR_OK) << tsr_last_error();
        ExpectContents(hx.get(), ref, "result");
    }  // shutdown writes the trace
    std::ifstream in(trace.path());
    ASSERT_TRUE(in) << "no trace at " << trace.path();
    json doc = json::parse(in, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << "trace is not valid JSON";
    ASSERT_TRUE(doc.contains("traceEvents"));
    int n_in = 0, n_out = 0, n_tasks = 0;
    for (const json &ev : doc["traceEvents"]) {
        std::string name = ev.value("name", "");
        if (ev.value("cat", "") == "task" && name == "affine_u32") {
            n_tasks++;
        }
        if (ev.value("cat", "") != "copy" || ev.value("ph", "") != "X") {
            continue;
        }
        ASSERT_TRUE(ev.contains("args") && ev["args"].contains("bytes")) << ev.dump();
        EXPECT_EQ(ev["args"]["bytes"].get<uint64_t>(), n) << ev.dump();
        n_in += name == "copy host->" + gpu_name;
        n_out += name == "copy " + gpu_name + "->host";
    }
    EXPECT_EQ(n_in, 1) << "copy host->" << gpu_name;
    EXPECT_EQ(n_out, 1) << "copy " << gpu_name << "->host";
    EXPECT_EQ(n_tasks, 1);
}

}  // namespace
