/* Memory pressure on real GPUs: a random DAG of CUDA tasks over a working set
 * several times the GPUs' memory limit and three times the host limit, so that
 * data goes device -> host -> disk and back. The results must equal a sequential
 * CPU replay bit for bit.
 *
 * The test skips when the runtime finds no CUDA device (no GPU or no driver).
 * Inputs are random; the seed is printed and TSR_TEST_SEED replays a run;
 * TSR_TEST_SCALE scales the number of steps (not the working set). */
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cuda/cuda_test_kernels.h"
#include "cuda/spill_step.h"

namespace {

using tsr_test::Data;
using tsr_test::Runtime;

constexpr const char *kNoGpu = "no CUDA device (no GPU, or no NVIDIA driver)";

constexpr uint64_t kMiB = uint64_t(1) << 20;
/* Each GPU keeps at most this much; a step's three largest chunks (96 MiB in
 * their allocator class) fit, a tenth of the working set does not. */
constexpr uint64_t kDeviceLimit = 256 * kMiB;
constexpr uint64_t kHostLimit = 512 * kMiB;
constexpr uint64_t kWorkingSet = 1536 * kMiB;
/* Chunks of 8 to 32 MiB, of odd sizes, so that the allocator's size classes mix. */
constexpr uint64_t kMinWords = 8 * kMiB / sizeof(uint64_t);
constexpr uint64_t kMaxWords = 32 * kMiB / sizeof(uint64_t);
/* At most this many GPUs, so that their memory stays well below the working set. */
constexpr int32_t kMaxGpus = 2;

struct Gpu {
    uint32_t device; /* index for TSR_PIN_DEVICE */
    uint32_t node;   /* its memory node */
};

std::vector<Gpu> CudaGpus(tsr_runtime_t *rt)
{
    std::vector<Gpu> gpus;
    for (uint32_t d = 0; d < tsr_runtime_n_devices(rt); d++) {
        tsr_device_info_t info;
        EXPECT_EQ(tsr_runtime_device_info(rt, d, &info), TSR_OK);
        if (info.kind == TSR_DEVICE_CUDA) {
            gpus.push_back(Gpu{d, info.mem_node});
        }
    }
    return gpus;
}

/* A fresh seed (or TSR_TEST_SEED), printed in every run so that any run can be
 * replayed. */
uint64_t PrintedSeed()
{
    uint64_t seed = tsr_test::TestSeed();
    std::printf("[   SEED   ] %s\n", tsr_test::SeedTrace(seed).c_str());
    return seed;
}

tsr_mem_stats_t MemStats(tsr_runtime_t *rt, uint32_t node)
{
    tsr_mem_stats_t s = {};
    EXPECT_EQ(tsr_runtime_mem_stats(rt, node, &s), TSR_OK);
    return s;
}

tsr_spill_stats_t SpillStats(tsr_runtime_t *rt)
{
    tsr_spill_stats_t s = {};
    EXPECT_EQ(tsr_runtime_spill_stats(rt, &s), TSR_OK);
    return s;
}

/* ---- Codelets (CUDA only) ----------------------------------------------------- */

struct FillArg {
    uint64_t key;
    uint64_t n_words;
};

/* (out W, dynamic size): allocates n_words on the GPU and fills them. */
tsr_status_t FillCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    FillArg a = tsr_test::ArgAs<FillArg>(arg);
    void *p = nullptr;
    tsr_status_t st = tsr_task_ctx_alloc(ctx, 0, a.n_words * sizeof(uint64_t), &p);
    if (st != TSR_OK) {
        tsr_task_ctx_fail(ctx, "%s", tsr_last_error());
        return st;
    }
    tsr_test_launch_spill_fill(tsr_task_ctx_stream(ctx), static_cast<uint64_t *>(p), a.n_words,
                               a.key);
    return TSR_OK;
}

/* (dynamic buffers, modes in the argument): one step of spill_step.h. */
tsr_status_t StepCuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    tsr_test_spill_arg a = tsr_test::ArgAs<tsr_test_spill_arg>(arg);
    if (a.n_bufs == 0 || a.n_bufs > TSR_TEST_SPILL_MAX_BUFS || a.slot >= TSR_TEST_SPILL_SLOTS) {
        tsr_task_ctx_fail(ctx, "bad step: %u buffers, slot %u", a.n_bufs, a.slot);
        return TSR_EINVAL;
    }
    uint64_t *ptrs[TSR_TEST_SPILL_MAX_BUFS];
    uint64_t n_words[TSR_TEST_SPILL_MAX_BUFS];
    for (uint32_t i = 0; i < a.n_bufs; i++) {
        if (bufs[i].n_bytes == 0 || bufs[i].n_bytes % sizeof(uint64_t) != 0) {
            tsr_task_ctx_fail(ctx, "buffer %u has %zu bytes", i, bufs[i].n_bytes);
            return TSR_ETASK;
        }
        ptrs[i] = static_cast<uint64_t *>(bufs[i].ptr);
        n_words[i] = bufs[i].n_bytes / sizeof(uint64_t);
    }
    tsr_test_launch_spill_step(tsr_task_ctx_stream(ctx), &a, ptrs, n_words);
    return TSR_OK;
}

tsr_codelet_t CudaCodelet(const char *name, tsr_kernel_fn cuda, uint32_t n_buffers)
{
    tsr_codelet_t cl = {};
    cl.name = name;
    cl.impl[TSR_DEVICE_CUDA] = cuda;
    cl.n_buffers = n_buffers;
    return cl;
}

const tsr_codelet_t kFill = CudaCodelet("spill_fill", FillCuda, 1);
const tsr_codelet_t kStep = CudaCodelet("spill_step", StepCuda, TSR_NBUFFERS_DYNAMIC);

/* ---- The oracle ------------------------------------------------------------------- */

/* A runtime with at most kMaxGpus GPUs, each limited to kDeviceLimit, host memory
 * limited to kHostLimit and spilling to `spill_dir`. */
Runtime StartLimited(const std::string &spill_dir)
{
    tsr_config_t config = tsr_test::TestConfig(2, TSR_SCHED_DEFAULT);
    config.n_cuda_devices = kMaxGpus;
    config.device_memory_limit.bytes = kDeviceLimit;
    config.host_memory_limit.bytes = kHostLimit;
    config.spill_dir = spill_dir.c_str();
    return tsr_test::StartRuntime(config);
}

/* Submit `desc` on a random GPU, or (one time in four) wherever the scheduler
 * places it: a GPU too, since the codelets have no other implementation. */
tsr_status_t SubmitOnGpu(tsr_runtime_t *rt, tsr_task_desc_t desc, const std::vector<Gpu> &gpus,
                         std::mt19937_64 &rng)
{
    if (rng() % 4 != 0) {
        desc.pin = TSR_PIN_DEVICE;
        desc.pin_value = gpus[rng() % gpus.size()].device;
    }
    return tsr_task_submit(rt, &desc, nullptr);
}

/* The random chunks: their handles, and the replay's copies (filled here). */
struct Chunks {
    std::vector<Data> handles;
    std::vector<std::vector<uint64_t>> ref;
    uint64_t n_bytes = 0;
};

/* Chunks of random sizes, made by fills on the GPUs, until kWorkingSet is reached. */
void SubmitFills(tsr_runtime_t *rt, const std::vector<Gpu> &gpus, std::mt19937_64 &rng,
                 Chunks &chunks)
{
    while (chunks.n_bytes < kWorkingSet) {
        FillArg a = {rng() | 1, kMinWords + rng() % (kMaxWords - kMinWords + 1)};
        chunks.handles.push_back(tsr_test::CreateData(rt));
        chunks.ref.emplace_back(a.n_words);
        for (uint64_t w = 0; w < a.n_words; w++) {
            chunks.ref.back()[w] = tsr_test_spill_fill_word(a.key, w);
        }
        chunks.n_bytes += a.n_words * sizeof(uint64_t);
        tsr_data_t *h = chunks.handles.back().get();
        tsr_access_t mode = TSR_W;
        tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
        desc.codelet = &kFill;
        desc.handles = &h;
        desc.modes = &mode;
        desc.n_handles = 1;
        desc.arg = &a;
        desc.arg_size = sizeof(a);
        ASSERT_EQ(SubmitOnGpu(rt, desc, gpus, rng), TSR_OK) << tsr_last_error();
    }
}

/* One random step over 1 to 3 distinct chunks (the first RW, the others R or, one
 * time in four, RW), submitted, then replayed on the reference. */
void SubmitStep(tsr_runtime_t *rt, const std::vector<Gpu> &gpus, std::mt19937_64 &rng,
                uint32_t slot, Chunks &chunks)
{
    tsr_test_spill_arg a = {};
    a.key = rng();
    a.slot = slot;
    a.n_bufs = 1 + static_cast<uint32_t>(rng() % TSR_TEST_SPILL_MAX_BUFS);
    std::vector<size_t> idx;
    while (idx.size() < a.n_bufs) {
        size_t i = rng() % chunks.handles.size();
        if (std::find(idx.begin(), idx.end(), i) == idx.end()) {
            idx.push_back(i);
        }
    }
    tsr_data_t *handles[TSR_TEST_SPILL_MAX_BUFS];
    tsr_access_t modes[TSR_TEST_SPILL_MAX_BUFS];
    uint64_t *refs[TSR_TEST_SPILL_MAX_BUFS];
    uint64_t n_words[TSR_TEST_SPILL_MAX_BUFS];
    for (uint32_t i = 0; i < a.n_bufs; i++) {
        modes[i] = i == 0 || rng() % 4 == 0 ? TSR_RW : TSR_R;
        a.modes[i] = modes[i];
        handles[i] = chunks.handles[idx[i]].get();
        refs[i] = chunks.ref[idx[i]].data();
        n_words[i] = chunks.ref[idx[i]].size();
    }
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    desc.codelet = &kStep;
    desc.handles = handles;
    desc.modes = modes;
    desc.n_handles = a.n_bufs;
    desc.arg = &a;
    desc.arg_size = sizeof(a);
    ASSERT_EQ(SubmitOnGpu(rt, desc, gpus, rng), TSR_OK) << tsr_last_error();
    tsr_test_spill_apply(&a, refs, n_words);
}

/* Acquire chunk i on the host and compare it with the replay's copy. */
void ExpectChunk(const Chunks &chunks, size_t i, const char *when)
{
    SCOPED_TRACE(std::string(when) + ", chunk " + std::to_string(i));
    const std::vector<uint64_t> &ref = chunks.ref[i];
    tsr_data_t *h = chunks.handles[i].get();
    void *p = nullptr;
    size_t n_bytes = 0;
    ASSERT_EQ(tsr_data_acquire(h, TSR_R, &p, &n_bytes), TSR_OK) << tsr_last_error();
    EXPECT_EQ(n_bytes, ref.size() * sizeof(uint64_t));
    if (n_bytes == ref.size() * sizeof(uint64_t) && std::memcmp(p, ref.data(), n_bytes) != 0) {
        const uint64_t *got = static_cast<const uint64_t *>(p);
        size_t w = 0;
        while (got[w] == ref[w]) {
            w++;
        }
        ADD_FAILURE() << "word " << w << " of " << ref.size() << " is " << got[w] << ", expected "
                      << ref[w];
    }
    ASSERT_EQ(tsr_data_release(h), TSR_OK);
}

/* Random steps on the GPUs over ~1.5 GiB of chunks of 8 to 32 MiB, with each GPU
 * limited to 256 MiB and host memory to 512 MiB: every chunk ends (and, at a few
 * checkpoints, is in the middle) equal to the replay's, and data went down both
 * tiers. */
TEST(CudaSpill, RandomDagOracleThroughHostAndDisk)
{
    tsr_test::TempDir dir("tsr-cuda-spill-test");
    ASSERT_FALSE(dir.path().empty());
    Runtime rt = StartLimited(dir.path());
    ASSERT_TRUE(rt);
    const std::vector<Gpu> gpus = CudaGpus(rt.get());
    if (gpus.empty()) {
        GTEST_SKIP() << kNoGpu;
    }
    const uint64_t seed = PrintedSeed();
    std::mt19937_64 rng(seed);
    Chunks chunks;
    ASSERT_NO_FATAL_FAILURE(SubmitFills(rt.get(), gpus, rng, chunks));

    const size_t n_steps = std::min<size_t>(tsr_test::Scaled(300, 30), TSR_TEST_SPILL_SLOTS);
    for (size_t s = 0; s < n_steps; s++) {
        ASSERT_NO_FATAL_FAILURE(SubmitStep(rt.get(), gpus, rng, static_cast<uint32_t>(s), chunks));
        if (s % 100 == 99) {
            ASSERT_NO_FATAL_FAILURE(
                ExpectChunk(chunks, rng() % chunks.handles.size(), "checkpoint"));
        }
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK) << tsr_last_error();
    EXPECT_EQ(tsr_test::Stats(rt.get()).n_failed, 0u);
    for (size_t i = 0; i < chunks.handles.size(); i++) {
        ASSERT_NO_FATAL_FAILURE(ExpectChunk(chunks, i, "at the end"));
    }

    tsr_spill_stats_t sp = SpillStats(rt.get());
    uint64_t device_spilled = 0;
    for (const Gpu &g : gpus) {
        tsr_mem_stats_t m = MemStats(rt.get(), g.node);
        std::printf("[   INFO   ] node %u: peak %llu MiB, spilled %llu MiB, %llu evicted\n", g.node,
                    (unsigned long long)(m.peak_bytes / kMiB),
                    (unsigned long long)(m.spilled_bytes / kMiB), (unsigned long long)m.n_evicted);
        EXPECT_EQ(m.capacity, kDeviceLimit);
        EXPECT_LE(m.peak_bytes, kDeviceLimit) << "node " << g.node << " went over its limit";
        device_spilled += m.spilled_bytes;
    }
    std::printf("[   INFO   ] %zu chunks, %llu MiB; disk: %llu MiB written, %llu MiB read\n",
                chunks.handles.size(), (unsigned long long)(chunks.n_bytes / kMiB),
                (unsigned long long)(sp.bytes_written / kMiB),
                (unsigned long long)(sp.bytes_read / kMiB));
    EXPECT_GT(device_spilled, 0u) << "no GPU replica was written back to the host";
    EXPECT_GT(sp.bytes_written, 0u) << "nothing reached the disk";
    EXPECT_GT(sp.n_reads, 0u) << "nothing came back from the disk";
    EXPECT_EQ(sp.n_errors, 0u);
    chunks.handles.clear();
    EXPECT_EQ(SpillStats(rt.get()).on_disk_bytes, 0u) << "spill files outlived their handles";
}

}  // namespace
