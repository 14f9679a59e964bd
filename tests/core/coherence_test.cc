// Memory nodes and replica coherence, exercised on simulated accelerators: tasks
// pinned to random devices must see exactly what a sequential run sees, and data
// must move only when it has to.
#include <gtest/gtest.h>
#include <tessera.h>

#include "common/test_util.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kWords = 16;

using Rt = tsr_test::Runtime;

Rt StartSim(uint32_t n_sim, uint64_t sim_mem = 0, int32_t n_cpu = 2, const char *trace = nullptr,
            double spill_mark = 0.0)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.n_cpu_workers = n_cpu;
    cfg.n_sim_devices = n_sim;
    cfg.sim_mem_bytes = sim_mem;
    cfg.trace_path = trace;
    cfg.device_spill_mark = spill_mark;
    tsr_runtime_t *rt = nullptr;
    EXPECT_EQ(tsr_init(&cfg, &rt), TSR_OK) << tsr_last_error();
    return Rt(rt);
}

// One step of the oracle: buffers the task writes become a mix of their old value
// (RW only), the words of everything it reads, the task's key and the device it
// ran on is not mixed in (results must not depend on placement).
struct StepArg {
    uint64_t key;
    uint32_t pinned_device;
    uint32_t n;
    uint32_t modes[4];
};

uint64_t Mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

uint64_t ReadHash(const StepArg &a, const std::vector<const uint64_t *> &in)
{
    uint64_t h = a.key;
    for (uint32_t i = 0; i < a.n; i++) {
        if (a.modes[i] & TSR_R) {
            for (int w = 0; w < kWords; w++) {
                h = Mix(h, in[i][w]);
            }
        }
    }
    return h;
}

void ApplyStep(const StepArg &a, const std::vector<uint64_t *> &bufs)
{
    std::vector<const uint64_t *> in(bufs.begin(), bufs.end());
    uint64_t h = ReadHash(a, in);
    for (uint32_t i = 0; i < a.n; i++) {
        if (!(a.modes[i] & TSR_W)) {
            continue;
        }
        for (int w = 0; w < kWords; w++) {
            uint64_t old = (a.modes[i] & TSR_R) ? bufs[i][w] : 0;
            bufs[i][w] = old * 31 + Mix(h, (uint64_t)w + i);
        }
    }
}

std::atomic<uint64_t> g_misplaced{0};

tsr_status_t StepKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    StepArg a;
    std::memcpy(&a, arg, sizeof(a));
    if (a.pinned_device != UINT32_MAX && tsr_task_ctx_device(ctx) != a.pinned_device) {
        g_misplaced++;
    }
    std::vector<uint64_t *> p;
    for (uint32_t i = 0; i < a.n; i++) {
        if (bufs[i].n_bytes != kWords * sizeof(uint64_t)) {
            tsr_task_ctx_fail(ctx, "buffer %u has %zu bytes", i, bufs[i].n_bytes);
            return TSR_ETASK;
        }
        p.push_back(static_cast<uint64_t *>(bufs[i].ptr));
    }
    ApplyStep(a, p);
    return TSR_OK;
}

tsr_codelet_t StepCodelet()
{
    tsr_codelet_t cl = {};
    cl.name = "step";
    cl.impl[TSR_DEVICE_CPU] = StepKernel;
    cl.n_buffers = TSR_NBUFFERS_DYNAMIC;
    return cl;
}

const tsr_codelet_t kStep = StepCodelet();

tsr_status_t Submit(tsr_runtime_t *rt, const StepArg &a, tsr_data_t *const *handles,
                    uint32_t device)
{
    tsr_access_t modes[4];
    for (uint32_t i = 0; i < a.n; i++) {
        modes[i] = static_cast<tsr_access_t>(a.modes[i]);
    }
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;
    d.codelet = &kStep;
    d.handles = handles;
    d.modes = modes;
    d.n_handles = a.n;
    d.arg = &a;
    d.arg_size = sizeof(a);
    if (device != UINT32_MAX) {
        d.pin = TSR_PIN_DEVICE;
        d.pin_value = device;
    }
    return tsr_task_submit(rt, &d, nullptr);
}

uint64_t Copies(tsr_runtime_t *rt, uint32_t src, uint32_t dst)
{
    tsr_copy_stats_t s;
    EXPECT_EQ(tsr_runtime_copy_stats(rt, src, dst, &s), TSR_OK);
    return s.n_copies;
}

TEST(Coherence, DevicesAreListed)
{
    Rt rt = StartSim(2, 64ull << 20);
    ASSERT_TRUE(rt);
    ASSERT_EQ(tsr_runtime_n_devices(rt.get()), 3u);
    tsr_device_info_t info;
    ASSERT_EQ(tsr_runtime_device_info(rt.get(), 0, &info), TSR_OK);
    EXPECT_EQ(info.kind, (uint32_t)TSR_DEVICE_CPU);
    EXPECT_EQ(info.mem_node, 0u);
    EXPECT_EQ(info.n_workers, 2u);
    for (uint32_t d = 1; d < 3; d++) {
        ASSERT_EQ(tsr_runtime_device_info(rt.get(), d, &info), TSR_OK);
        EXPECT_EQ(info.kind, (uint32_t)TSR_DEVICE_SIM);
        EXPECT_EQ(info.kind_index, d - 1);
        EXPECT_EQ(info.mem_node, d);
        EXPECT_EQ(info.mem_bytes, 64ull << 20);
        EXPECT_EQ(std::string(info.name), "sim" + std::to_string(d - 1));
    }
    EXPECT_EQ(tsr_runtime_device_info(rt.get(), 3, &info), TSR_EINVAL);
    tsr_runtime_stats_t st;
    ASSERT_EQ(tsr_runtime_stats(rt.get(), &st), TSR_OK);
    EXPECT_EQ(st.n_cpu_workers, 2u);
}

TEST(Coherence, SimDevicesFromEnvironment)
{
    struct Case {
        const char *text;
        tsr_status_t st;
        uint32_t n;
        uint64_t mem;
    };
    const Case cases[] = {{"2", TSR_OK, 2, 0},
                          {"3:mem=64MiB", TSR_OK, 3, 64ull << 20},
                          {"1:mem=4096", TSR_OK, 1, 4096},
                          {"0", TSR_OK, 0, 0},
                          {"9", TSR_EINVAL, 0, 0},
                          {"-1", TSR_EINVAL, 0, 0},
                          {"2:mem=", TSR_EINVAL, 0, 0},
                          {"2:mem=12XB", TSR_EINVAL, 0, 0},
                          {"2:size=1", TSR_EINVAL, 0, 0},
                          {"two", TSR_EINVAL, 0, 0}};
    for (const Case &c : cases) {
        setenv("TESSERA_SIM_DEVICES", c.text, 1);
        tsr_config_t out = TSR_CONFIG_INIT;
        tsr_status_t st = tsr_config_resolve(nullptr, &out);
        EXPECT_EQ(st, c.st) << c.text;
        if (st == TSR_OK) {
            EXPECT_EQ(out.n_sim_devices, c.n) << c.text;
            EXPECT_EQ(out.sim_mem_bytes, c.mem) << c.text;
        } else {
            EXPECT_NE(std::string(tsr_last_error()).find("TESSERA_SIM_DEVICES"), std::string::npos);
        }
    }
    unsetenv("TESSERA_SIM_DEVICES");
}

// Random DAG, each task pinned to a random device (CPU or one of the sims), compared
// with a sequential replay on plain memory.
// sim_mem: memory of each sim device (0: default); *spilled_out (if given): the
// bytes they evicted to host memory.
void RunOracle(uint32_t n_sim, int n_tasks, int n_handles, uint32_t seed, uint64_t sim_mem = 0,
               uint64_t *spilled_out = nullptr)
{
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rt rt = StartSim(n_sim, sim_mem);
    ASSERT_TRUE(rt);
    std::mt19937 rng(seed);
    std::vector<std::vector<uint64_t>> data(n_handles, std::vector<uint64_t>(kWords));
    for (auto &v : data) {
        for (auto &w : v) {
            w = rng();
        }
    }
    std::vector<std::vector<uint64_t>> ref = data;
    std::vector<tsr_data_t *> h(n_handles);
    for (int i = 0; i < n_handles; i++) {
        ASSERT_EQ(tsr_data_register(rt.get(), data[i].data(), kWords * 8, &h[i]), TSR_OK);
    }
    g_misplaced = 0;
    for (int t = 0; t < n_tasks; t++) {
        StepArg a = {};
        a.key = ((uint64_t)seed << 32) | (uint64_t)t;
        a.n = 1 + rng() % 3;
        a.pinned_device = rng() % (n_sim + 1);
        tsr_data_t *hs[4];
        std::vector<uint64_t *> refs;
        for (uint32_t i = 0; i < a.n; i++) {
            int k = rng() % n_handles;
            hs[i] = h[k];
            refs.push_back(ref[k].data());
            a.modes[i] = 1 + rng() % 3;
        }
        // A handle listed twice must be one buffer: keep the replay honest by
        // giving duplicates the same mode set the runtime merges them into.
        for (uint32_t i = 0; i < a.n; i++) {
            for (uint32_t j = 0; j < a.n; j++) {
                if (hs[i] == hs[j]) {
                    a.modes[i] |= a.modes[j];
                }
            }
        }
        ASSERT_EQ(Submit(rt.get(), a, hs, a.pinned_device), TSR_OK) << tsr_last_error();
        ApplyStep(a, refs);
        if (t % 997 == 996) {  // a host checkpoint in the middle of the run
            int k = rng() % n_handles;
            void *p = nullptr;
            ASSERT_EQ(tsr_data_acquire(h[k], TSR_R, &p, nullptr), TSR_OK);
            EXPECT_EQ(std::memcmp(p, ref[k].data(), kWords * 8), 0) << "handle " << k;
            ASSERT_EQ(tsr_data_release(h[k]), TSR_OK);
        }
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_runtime_stats_t st;
    ASSERT_EQ(tsr_runtime_stats(rt.get(), &st), TSR_OK);
    EXPECT_EQ(st.n_failed, 0u);
    EXPECT_EQ(g_misplaced.load(), 0u);
    uint64_t n_moved = 0;
    for (uint32_t s = 0; s <= n_sim; s++) {
        for (uint32_t d = 0; d <= n_sim; d++) {
            n_moved += Copies(rt.get(), s, d);
        }
    }
    EXPECT_GT(n_moved, 0u);  // the data really travelled between nodes
    for (uint32_t s = 1; spilled_out != nullptr && s <= n_sim; s++) {
        tsr_mem_stats_t m;
        ASSERT_EQ(tsr_runtime_mem_stats(rt.get(), s, &m), TSR_OK);
        *spilled_out += m.spilled_bytes;
        EXPECT_LE(m.peak_bytes, sim_mem) << "sim" << s - 1;
    }
    for (int i = 0; i < n_handles; i++) {
        tsr_data_unregister(h[i]);  // brings the latest contents back to data[i]
        EXPECT_EQ(data[i], ref[i]) << "handle " << i;
    }
}

// A full device gives up its least recently used replica: the one read long ago
// goes, the one read again stays. (No eviction ahead of need here: mark 1.)
TEST(Coherence, EvictionTakesTheLeastRecentlyUsedReplica)
{
    Rt rt = StartSim(1, 2 * 256, 2, nullptr, 1.0);  // room for two blocks of the smallest class
    ASSERT_TRUE(rt);
    std::vector<std::vector<uint64_t>> data(3, std::vector<uint64_t>(kWords, 9));
    tsr_data_t *h[3];
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(tsr_data_register(rt.get(), data[i].data(), kWords * 8, &h[i]), TSR_OK);
    }
    auto read_on_sim = [&](int i) {
        StepArg a = {};
        a.n = 1;
        a.modes[0] = TSR_R;
        a.pinned_device = 1;
        ASSERT_EQ(Submit(rt.get(), a, &h[i], 1), TSR_OK);
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    };
    read_on_sim(0);  // A
    read_on_sim(1);  // B
    read_on_sim(0);  // A again: B is now the least recently used
    EXPECT_EQ(Copies(rt.get(), 0, 1), 2u);
    read_on_sim(2);  // C: the device is full, B goes
    EXPECT_EQ(Copies(rt.get(), 0, 1), 3u);
    read_on_sim(0);  // A is still there
    EXPECT_EQ(Copies(rt.get(), 0, 1), 3u);
    read_on_sim(1);  // B comes back
    EXPECT_EQ(Copies(rt.get(), 0, 1), 4u);
    tsr_mem_stats_t m;
    ASSERT_EQ(tsr_runtime_mem_stats(rt.get(), 1, &m), TSR_OK);
    EXPECT_EQ(m.spilled_bytes, 0u) << "clean replicas are dropped";
    for (tsr_data_t *x : h) {
        tsr_data_unregister(x);
    }
}

// Above its spill mark (0.9 by default) a device gives up its least recently used
// replicas between launches, down to 0.8 of its memory, before any allocation
// needs the room; the data stays right.
TEST(Coherence, DeviceAboveItsSpillMarkEvictsAhead)
{
    constexpr size_t kBlocks = 20;
    Rt rt = StartSim(1, kBlocks * 256);
    ASSERT_TRUE(rt);
    const uint64_t seed = tsr_test::TestSeed();
    std::mt19937_64 rng(seed);
    std::vector<std::vector<uint64_t>> data(19, std::vector<uint64_t>(kWords));
    std::vector<tsr_data_t *> h(data.size());
    for (size_t i = 0; i < data.size(); i++) {
        for (auto &w : data[i]) {
            w = rng();
        }
        ASSERT_EQ(tsr_data_register(rt.get(), data[i].data(), kWords * 8, &h[i]), TSR_OK);
    }
    // Each handle read then written on the device: 19 dirty blocks of 20, 95%.
    for (size_t i = 0; i < h.size(); i++) {
        StepArg a = {};
        a.key = i;
        a.n = 1;
        a.modes[0] = TSR_RW;
        a.pinned_device = 1;
        ASSERT_EQ(Submit(rt.get(), a, &h[i], 1), TSR_OK);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_mem_stats_t m = {};
    for (int i = 0; i < 1000; i++) {  // the driver evicts once idle: up to 1 s
        ASSERT_EQ(tsr_runtime_mem_stats(rt.get(), 1, &m), TSR_OK);
        if (m.used_bytes <= kBlocks * 256 * 8 / 10) {
            break;
        }
        usleep(1000);
    }
    EXPECT_LE(m.used_bytes, kBlocks * 256 * 8 / 10) << "the device stayed above its low mark";
    EXPECT_GE(m.n_evicted_ahead, 3u);
    EXPECT_EQ(m.n_evicted, 0u) << "no allocation should have had to evict";
    EXPECT_GE(m.spilled_bytes, 3u * kWords * 8) << "dirty replicas are written back";
    // Every handle holds what a sequential run gives, each written back once: ahead
    // of need or at unregister.
    for (size_t i = 0; i < h.size(); i++) {
        tsr_data_unregister(h[i]);
        std::vector<uint64_t> ref(kWords);
        std::mt19937_64 replay(seed);
        for (size_t j = 0; j <= i; j++) {
            for (auto &w : ref) {
                w = replay();
            }
        }
        StepArg a = {};
        a.key = i;
        a.n = 1;
        a.modes[0] = TSR_RW;
        ApplyStep(a, {ref.data()});
        EXPECT_EQ(data[i], ref) << "handle " << i << ", " << tsr_test::SeedTrace(seed);
    }
    EXPECT_EQ(Copies(rt.get(), 1, 0), h.size());
}

// Devices with room for a few blocks only: replicas are evicted (dirty ones written
// to host memory) and the results stay those of a sequential run.
TEST(Coherence, RandomDagOnTinyDevicesEvictsAndMatchesReplay)
{
    uint32_t seed = (uint32_t)tsr_test::TestSeed();
    uint64_t spilled = 0;
    RunOracle(2, 3000, 64, seed, 8 * 256, &spilled);
    EXPECT_GT(spilled, 0u) << "no dirty replica was ever evicted";
}

TEST(Coherence, RandomDagOnCpuAndTwoSimsMatchesReplay)
{
    uint32_t seed = std::random_device{}();
    RunOracle(2, 4000, 64, seed);
}

TEST(Coherence, RandomDagOnCpuAndThreeSimsMatchesReplay)
{
    uint32_t seed = std::random_device{}();
    RunOracle(3, 3000, 100, seed);
}

TEST(Coherence, ChainOnOneDeviceCopiesItsInputOnce)
{
    Rt rt = StartSim(1);
    ASSERT_TRUE(rt);
    std::vector<uint64_t> x(kWords, 7), ref = x;
    tsr_data_t *h;
    ASSERT_EQ(tsr_data_register(rt.get(), x.data(), kWords * 8, &h), TSR_OK);
    for (int t = 0; t < 200; t++) {
        StepArg a = {};
        a.key = (uint64_t)t;
        a.n = 1;
        a.modes[0] = TSR_RW;
        a.pinned_device = 1;
        ASSERT_EQ(Submit(rt.get(), a, &h, 1), TSR_OK);
        ApplyStep(a, {ref.data()});
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(Copies(rt.get(), 0, 1), 1u);
    EXPECT_EQ(Copies(rt.get(), 1, 0), 0u);  // nothing comes back until asked for
    void *p = nullptr;
    ASSERT_EQ(tsr_data_acquire(h, TSR_R, &p, nullptr), TSR_OK);
    EXPECT_EQ(std::memcmp(p, ref.data(), kWords * 8), 0);
    ASSERT_EQ(tsr_data_release(h), TSR_OK);
    EXPECT_EQ(Copies(rt.get(), 1, 0), 1u);
    // Reading again on the device needs no copy: its replica is still valid.
    StepArg r = {};
    r.n = 1;
    r.modes[0] = TSR_R;
    r.pinned_device = 1;
    ASSERT_EQ(Submit(rt.get(), r, &h, 1), TSR_OK);
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(Copies(rt.get(), 0, 1), 1u);
    tsr_data_unregister(h);
}

// A chain on one accelerator is launched ahead: each task goes behind its running
// predecessor (stream order on a GPU) instead of waiting for its completion.
TEST(Coherence, ChainOnOneDeviceIsLaunchedBehindRunningPredecessors)
{
    Rt rt = StartSim(2);
    ASSERT_TRUE(rt);
    std::vector<uint64_t> x(kWords, 3), ref = x;
    tsr_data_t *h;
    ASSERT_EQ(tsr_data_register(rt.get(), x.data(), kWords * 8, &h), TSR_OK);
    for (int t = 0; t < 2000; t++) {
        StepArg a = {};
        a.key = (uint64_t)t * 7 + 1;
        a.n = 1;
        a.modes[0] = TSR_RW;
        a.pinned_device = 2;
        ASSERT_EQ(Submit(rt.get(), a, &h, 2), TSR_OK);
        ApplyStep(a, {ref.data()});
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_runtime_stats_t stats = TSR_RUNTIME_STATS_INIT;
    ASSERT_EQ(tsr_runtime_stats(rt.get(), &stats), TSR_OK);
    EXPECT_GT(stats.n_launched_early, 0u) << "no task was launched behind its predecessor";
    EXPECT_EQ(stats.n_failed, 0u);
    EXPECT_EQ(g_misplaced.load(), 0u);
    void *p = nullptr;
    ASSERT_EQ(tsr_data_acquire(h, TSR_R, &p, nullptr), TSR_OK);
    EXPECT_EQ(std::memcmp(p, ref.data(), kWords * 8), 0);
    ASSERT_EQ(tsr_data_release(h), TSR_OK);
    EXPECT_EQ(Copies(rt.get(), 0, 2), 1u);
    tsr_data_unregister(h);
}

tsr_status_t FailAtKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)bufs;
    (void)arg;
    tsr_task_ctx_fail(ctx, "planned failure");
    return TSR_ETASK;
}

// Failures inside a chain launched ahead: tasks before the failure take effect,
// the failing one reports its message, everything after it is cancelled, and no
// task finishes before its predecessor (futures complete in chain order).
TEST(Coherence, FailureInAChainLaunchedAheadCancelsTheRest)
{
    tsr_codelet_t fail = {};
    fail.name = "fail";
    fail.impl[TSR_DEVICE_CPU] = FailAtKernel;
    fail.n_buffers = 1;
    fail.modes[0] = TSR_RW;
    std::mt19937_64 rng(std::random_device{}());
    for (int round = 0; round < 20; round++) {
        Rt rt = StartSim(1);
        ASSERT_TRUE(rt);
        std::vector<uint64_t> x(kWords, 5), ref = x;
        tsr_data_t *h;
        ASSERT_EQ(tsr_data_register(rt.get(), x.data(), kWords * 8, &h), TSR_OK);
        const int n = 300;
        const int bad = (int)(rng() % n);
        std::vector<tsr_future_t *> futs(n);
        for (int t = 0; t < n; t++) {
            tsr_task_desc_t d = TSR_TASK_DESC_INIT;
            StepArg a = {};
            a.key = (uint64_t)t;
            a.n = 1;
            a.modes[0] = TSR_RW;
            a.pinned_device = 1;
            tsr_access_t mode = TSR_RW;
            d.codelet = t == bad ? &fail : &kStep;
            d.handles = &h;
            d.modes = &mode;
            d.n_handles = 1;
            d.arg = &a;
            d.arg_size = sizeof(a);
            d.pin = TSR_PIN_DEVICE;
            d.pin_value = 1;
            ASSERT_EQ(tsr_task_submit(rt.get(), &d, &futs[t]), TSR_OK);
            if (t < bad) {
                ApplyStep(a, {ref.data()});
            }
        }
        for (int t = n - 1; t >= 0; t--) {
            tsr_status_t st = tsr_future_wait(futs[t]);
            // Once a task is done, every earlier one is too.
            for (int e = 0; e < t; e++) {
                ASSERT_NE(tsr_future_test(futs[e]), TSR_PENDING) << "task " << e;
            }
            if (t < bad) {
                EXPECT_EQ(st, TSR_OK) << "task " << t;
            } else if (t == bad) {
                EXPECT_EQ(st, TSR_ETASK);
                EXPECT_NE(std::string(tsr_future_message(futs[t])).find("planned failure"),
                          std::string::npos);
            } else {
                EXPECT_EQ(st, TSR_ECANCELED) << "task " << t;
            }
        }
        for (tsr_future_t *f : futs) {
            tsr_future_release(f);
        }
        tsr_runtime_stats_t stats = TSR_RUNTIME_STATS_INIT;
        ASSERT_EQ(tsr_runtime_stats(rt.get(), &stats), TSR_OK);
        EXPECT_EQ(stats.n_failed, 1u);
        EXPECT_EQ(stats.n_cancelled, (uint64_t)(n - bad - 1));
        // The handle is poisoned by the failure; a plain W write cures it.
        tsr_data_unregister(h);
        EXPECT_EQ(std::memcmp(x.data(), ref.data(), kWords * 8), 0)
            << "unregister must bring back the last good contents written before the failure";
    }
}

TEST(Coherence, WriteInvalidatesOtherReplicas)
{
    Rt rt = StartSim(2);
    ASSERT_TRUE(rt);
    std::vector<uint64_t> x(kWords, 1), ref = x;
    tsr_data_t *h;
    ASSERT_EQ(tsr_data_register(rt.get(), x.data(), kWords * 8, &h), TSR_OK);
    auto run = [&](uint32_t device, uint32_t mode, uint64_t key) {
        StepArg a = {};
        a.key = key;
        a.n = 1;
        a.modes[0] = mode;
        a.pinned_device = device;
        ASSERT_EQ(Submit(rt.get(), a, &h, device), TSR_OK);
        ApplyStep(a, {ref.data()});
    };
    run(1, TSR_R, 1);  // host -> sim0
    run(2, TSR_R, 2);  // host -> sim1 (host still valid)
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(Copies(rt.get(), 0, 1), 1u);
    EXPECT_EQ(Copies(rt.get(), 0, 2), 1u);
    run(0, TSR_RW, 3);  // written on the CPU: both sim replicas are stale now
    run(1, TSR_R, 4);   // host -> sim0 again
    run(2, TSR_RW, 5);  // host -> sim1 again, then sim1 holds the only valid copy
    run(1, TSR_R, 6);   // sim1 -> sim0
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(Copies(rt.get(), 0, 1), 2u);
    EXPECT_EQ(Copies(rt.get(), 0, 2), 2u);
    EXPECT_EQ(Copies(rt.get(), 2, 1), 1u);
    tsr_data_unregister(h);
    EXPECT_EQ(x, ref);  // unregister copied sim1's version back to the user buffer
}

tsr_status_t FilterKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    uint64_t threshold;
    std::memcpy(&threshold, arg, sizeof(threshold));
    const uint64_t *in = static_cast<const uint64_t *>(bufs[0].ptr);
    size_t n = bufs[0].n_bytes / 8;
    size_t n_out = 0;
    for (size_t i = 0; i < n; i++) {
        n_out += in[i] < threshold;
    }
    void *p = nullptr;
    tsr_status_t st = tsr_task_ctx_alloc(ctx, 1, n_out * 8, &p);
    if (st != TSR_OK) {
        return st;
    }
    uint64_t *out = static_cast<uint64_t *>(p);
    for (size_t i = 0, j = 0; i < n; i++) {
        if (in[i] < threshold) {
            out[j++] = in[i];
        }
    }
    return TSR_OK;
}

TEST(Coherence, DynamicOutputMadeOnADeviceReachesTheHost)
{
    Rt rt = StartSim(1);
    ASSERT_TRUE(rt);
    std::mt19937_64 rng(std::random_device{}());
    std::vector<uint64_t> in(4096);
    for (auto &v : in) {
        v = rng();
    }
    uint64_t threshold = rng();
    std::vector<uint64_t> expect;
    for (uint64_t v : in) {
        if (v < threshold) {
            expect.push_back(v);
        }
    }
    tsr_data_t *h[2];
    ASSERT_EQ(tsr_data_register(rt.get(), in.data(), in.size() * 8, &h[0]), TSR_OK);
    ASSERT_EQ(tsr_data_create(rt.get(), &h[1]), TSR_OK);
    tsr_codelet_t cl = {};
    cl.name = "filter";
    cl.impl[TSR_DEVICE_SIM] = FilterKernel;  // a dedicated sim implementation only
    cl.n_buffers = 2;
    cl.modes[0] = TSR_R;
    cl.modes[1] = TSR_W;
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;
    d.codelet = &cl;
    d.handles = h;
    d.n_handles = 2;
    d.arg = &threshold;
    d.arg_size = sizeof(threshold);
    tsr_future_t *f = nullptr;
    ASSERT_EQ(tsr_task_submit(rt.get(), &d, &f), TSR_OK);  // no pin: only sim0 can run it
    ASSERT_EQ(tsr_future_wait(f), TSR_OK) << tsr_future_message(f);
    tsr_future_release(f);
    void *p = nullptr;
    size_t n = 0;
    ASSERT_EQ(tsr_data_acquire(h[1], TSR_R, &p, &n), TSR_OK);
    ASSERT_EQ(n, expect.size() * 8);
    EXPECT_EQ(std::memcmp(p, expect.data(), n), 0);
    ASSERT_EQ(tsr_data_release(h[1]), TSR_OK);
    EXPECT_EQ(Copies(rt.get(), 1, 0), 1u);
    tsr_data_unregister(h[0]);
    tsr_data_unregister(h[1]);
}

TEST(Coherence, TaskTooBigForTheDeviceFailsWithENOMEM)
{
    Rt rt = StartSim(1, 4096);
    ASSERT_TRUE(rt);
    std::vector<uint64_t> big(1024, 3);  // 8 KiB on a 4 KiB device
    tsr_data_t *h;
    ASSERT_EQ(tsr_data_register(rt.get(), big.data(), big.size() * 8, &h), TSR_OK);
    tsr_codelet_t cl = StepCodelet();
    tsr_access_t mode = TSR_RW;
    StepArg a = {};
    a.n = 1;
    a.modes[0] = TSR_RW;
    a.pinned_device = UINT32_MAX;
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;
    d.codelet = &cl;
    d.handles = &h;
    d.modes = &mode;
    d.n_handles = 1;
    d.arg = &a;
    d.arg_size = sizeof(a);
    d.pin = TSR_PIN_DEVICE;
    d.pin_value = 1;
    tsr_future_t *f = nullptr;
    ASSERT_EQ(tsr_task_submit(rt.get(), &d, &f), TSR_OK);
    EXPECT_EQ(tsr_future_wait(f), TSR_ENOMEM);
    EXPECT_NE(std::string(tsr_future_message(f)).find("sim0"), std::string::npos)
        << tsr_future_message(f);
    tsr_future_release(f);
    tsr_data_unregister(h);
    EXPECT_EQ(big, std::vector<uint64_t>(1024, 3));  // nothing was lost
}

TEST(Coherence, PinsAreChecked)
{
    Rt rt = StartSim(1);
    ASSERT_TRUE(rt);
    tsr_codelet_t cl = StepCodelet();
    StepArg a = {};
    a.pinned_device = UINT32_MAX;
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;
    d.codelet = &cl;
    d.arg = &a;
    d.arg_size = sizeof(a);
    d.pin = TSR_PIN_DEVICE;
    d.pin_value = 2;
    EXPECT_EQ(tsr_task_submit(rt.get(), &d, nullptr), TSR_EINVAL);
    d.pin = TSR_PIN_KIND;
    d.pin_value = TSR_DEVICE_CUDA;
    EXPECT_EQ(tsr_task_submit(rt.get(), &d, nullptr), TSR_ENODEV);
    d.pin_value = 77;
    EXPECT_EQ(tsr_task_submit(rt.get(), &d, nullptr), TSR_EINVAL);
    d.pin = static_cast<tsr_pin_t>(9);
    EXPECT_EQ(tsr_task_submit(rt.get(), &d, nullptr), TSR_EINVAL);
    d.pin = TSR_PIN_KIND;
    d.pin_value = TSR_DEVICE_SIM;
    tsr_future_t *f = nullptr;
    ASSERT_EQ(tsr_task_submit(rt.get(), &d, &f), TSR_OK);
    EXPECT_EQ(tsr_future_wait(f), TSR_OK);
    tsr_future_release(f);

    Rt cpu_only = StartSim(0);
    tsr_codelet_t sim_only = {};
    sim_only.name = "sim_only";
    sim_only.impl[TSR_DEVICE_SIM] = StepKernel;
    d.codelet = &sim_only;
    d.pin = TSR_PIN_NONE;
    EXPECT_EQ(tsr_task_submit(cpu_only.get(), &d, nullptr), TSR_ENODEV);
}

TEST(Coherence, TraceShowsCopies)
{
    std::string path = testing::TempDir() + "tsr_coherence_trace.json";
    {
        Rt rt = StartSim(1, 0, 1, path.c_str());
        ASSERT_TRUE(rt);
        std::vector<uint64_t> x(kWords, 5);
        tsr_data_t *h;
        ASSERT_EQ(tsr_data_register(rt.get(), x.data(), kWords * 8, &h), TSR_OK);
        StepArg a = {};
        a.n = 1;
        a.modes[0] = TSR_RW;
        a.pinned_device = 1;
        ASSERT_EQ(Submit(rt.get(), a, &h, 1), TSR_OK);
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
        tsr_data_unregister(h);
    }
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    EXPECT_NE(ss.str().find("\"name\":\"copy host->sim0\",\"cat\":\"copy\""), std::string::npos);
    EXPECT_NE(ss.str().find("sim0 worker 0"), std::string::npos);
    // A memory counter track per node: sim0 held the replica, then gave it back.
    const std::string text = ss.str();
    size_t first = text.find("\"name\":\"memory sim0\",\"cat\":\"memory\",\"ph\":\"C\"");
    ASSERT_NE(first, std::string::npos) << text.substr(0, 600);
    EXPECT_NE(text.find("\"used_bytes\":" + std::to_string(256), first), std::string::npos)
        << "the 128-byte replica takes a block of the smallest class";
    size_t last = text.rfind("\"name\":\"memory sim0\"");
    EXPECT_NE(text.find("\"used_bytes\":0}", last), std::string::npos) << "freed at unregister";
    std::remove(path.c_str());
}

tsr_status_t FillKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    uint64_t n;
    std::memcpy(&n, arg, sizeof(n));
    void *p = nullptr;
    tsr_status_t st = tsr_task_ctx_alloc(ctx, 0, n * 8, &p);
    for (uint64_t i = 0; st == TSR_OK && i < n; i++) {
        static_cast<uint64_t *>(p)[i] = i * n;
    }
    return st;
}

tsr_mem_stats_t MemStats(tsr_runtime_t *rt, uint32_t node)
{
    tsr_mem_stats_t s;
    EXPECT_EQ(tsr_runtime_mem_stats(rt, node, &s), TSR_OK);
    return s;
}

tsr_codelet_t FillCodelet()
{
    tsr_codelet_t cl = {};
    cl.name = "fill";
    cl.impl[TSR_DEVICE_CPU] = FillKernel;
    cl.n_buffers = 1;
    cl.modes[0] = TSR_W;
    return cl;
}

const tsr_codelet_t kFill = FillCodelet();

// A new dynamic output of n_words words, filled by a task on sim0; the status is
// the task's.
std::pair<tsr_data_t *, tsr_status_t> MakeOnSim(tsr_runtime_t *rt, uint64_t n_words)
{
    tsr_data_t *h = nullptr;
    EXPECT_EQ(tsr_data_create(rt, &h), TSR_OK);
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;
    d.codelet = &kFill;
    d.handles = &h;
    d.n_handles = 1;
    d.arg = &n_words;
    d.arg_size = sizeof(n_words);
    d.pin = TSR_PIN_DEVICE;
    d.pin_value = 1;
    tsr_future_t *f = nullptr;
    EXPECT_EQ(tsr_task_submit(rt, &d, &f), TSR_OK);
    tsr_status_t st = tsr_future_wait(f);
    tsr_future_release(f);
    return std::make_pair(h, st);
}

// A device memory limit caps the node below its capacity; host memory the runtime
// allocates, and buffers the program registers, are counted on node 0.
TEST(MemCache, LimitsAndHostAccounting)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.n_cpu_workers = 2;
    cfg.n_sim_devices = 1;
    cfg.sim_mem_bytes = 8 << 20;
    cfg.device_memory_limit.fraction = 0.5;
    cfg.host_memory_limit.bytes = 3ull << 30;
    tsr_runtime_t *raw = nullptr;
    ASSERT_EQ(tsr_init(&cfg, &raw), TSR_OK);
    Rt rt(raw);
    EXPECT_EQ(MemStats(rt.get(), 1).capacity, 4u << 20);
    EXPECT_EQ(MemStats(rt.get(), 0).capacity, 3ull << 30);
    std::vector<uint64_t> buf(1 << 16, 1);
    tsr_data_t *h;
    ASSERT_EQ(tsr_data_register(rt.get(), buf.data(), buf.size() * 8, &h), TSR_OK);
    EXPECT_EQ(MemStats(rt.get(), 0).registered_bytes, buf.size() * 8);
    auto made = MakeOnSim(rt.get(), 1000);  // made on sim0, copied to the host below
    ASSERT_EQ(made.second, TSR_OK);
    void *p = nullptr;
    ASSERT_EQ(tsr_data_acquire(made.first, TSR_R, &p, nullptr), TSR_OK);
    ASSERT_EQ(tsr_data_release(made.first), TSR_OK);
    EXPECT_EQ(MemStats(rt.get(), 0).used_bytes, 8000u);
    tsr_data_unregister(made.first);
    EXPECT_EQ(MemStats(rt.get(), 0).used_bytes, 0u);
    EXPECT_EQ(MemStats(rt.get(), 0).peak_bytes, 8000u);
    // A task needing more than the limit (but less than the capacity) is refused.
    auto big = MakeOnSim(rt.get(), (5u << 20) / 8);
    EXPECT_EQ(big.second, TSR_ENOMEM);
    tsr_data_unregister(big.first);
    tsr_data_unregister(h);
    EXPECT_EQ(MemStats(rt.get(), 0).registered_bytes, 0u);
}

// Outputs made and dropped one after another on a device reuse the same block.
TEST(MemCache, DeviceBlocksAreReused)
{
    Rt rt = StartSim(1, 1 << 20);
    ASSERT_TRUE(rt);
    for (uint64_t i = 0; i < 50; i++) {
        uint64_t n = 65 + i;  // 520..912 bytes: different sizes, one 1 KiB class
        auto made = MakeOnSim(rt.get(), n);
        ASSERT_EQ(made.second, TSR_OK);
        void *p = nullptr;
        size_t n_bytes = 0;
        ASSERT_EQ(tsr_data_acquire(made.first, TSR_R, &p, &n_bytes), TSR_OK);
        ASSERT_EQ(n_bytes, n * 8);
        EXPECT_EQ(static_cast<uint64_t *>(p)[n - 1], (n - 1) * n);
        ASSERT_EQ(tsr_data_release(made.first), TSR_OK);
        tsr_data_unregister(made.first);
    }
    tsr_mem_stats_t s = MemStats(rt.get(), 1);
    EXPECT_EQ(s.n_allocs, 1u);
    EXPECT_EQ(s.n_reuses, 49u);
    EXPECT_EQ(s.used_bytes, 0u);
    EXPECT_GT(s.cached_bytes, 0u);
    EXPECT_EQ(s.capacity, 1u << 20);
    EXPECT_EQ(MemStats(rt.get(), 0).n_allocs, 0u);
    tsr_mem_stats_t bad;
    EXPECT_EQ(tsr_runtime_mem_stats(rt.get(), 2, &bad), TSR_EINVAL);
}

// A device full of cached blocks of another size still serves a request that
// fits once the cache is given back.
TEST(MemCache, FullCacheIsFlushedBeforeGivingUp)
{
    Rt rt = StartSim(1, 64 << 10);
    ASSERT_TRUE(rt);
    std::vector<tsr_data_t *> small;
    for (int i = 0; i < 7; i++) {  // 7 x 8 KiB blocks on a 64 KiB device
        auto made = MakeOnSim(rt.get(), 1024);
        ASSERT_EQ(made.second, TSR_OK);
        small.push_back(made.first);
    }
    for (tsr_data_t *h : small) {
        tsr_data_unregister(h);  // 56 KiB now cached, not in use
    }
    EXPECT_EQ(MemStats(rt.get(), 1).cached_bytes, 7u * 8192);
    auto big = MakeOnSim(rt.get(), 4096);  // 32 KiB: fits only after the cache is flushed
    EXPECT_EQ(big.second, TSR_OK);
    EXPECT_EQ(MemStats(rt.get(), 1).cached_bytes, 0u);
    tsr_data_unregister(big.first);
}

}  // namespace
