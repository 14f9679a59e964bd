// Placement at readiness: dmda puts work where it is expected to finish first and
// keeps chains where their data is; random spreads; both give the results of a
// sequential run. Runs on simulated accelerators, with implementations of known
// relative cost.
#include <gtest/gtest.h>
#include <tessera.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace {

struct RtDeleter {
    void operator()(tsr_runtime_t *rt) const { tsr_shutdown(rt); }
};
using Rt = std::unique_ptr<tsr_runtime_t, RtDeleter>;

Rt Start(tsr_sched_policy_t policy, uint32_t n_sim, int32_t n_cpu = 2)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.n_cpu_workers = n_cpu;
    cfg.n_sim_devices = n_sim;
    cfg.policy = policy;
    cfg.model_dir = "";  // nothing persisted by tests
    tsr_runtime_t *rt = nullptr;
    EXPECT_EQ(tsr_init(&cfg, &rt), TSR_OK) << tsr_last_error();
    return Rt(rt);
}

std::atomic<uint32_t> g_ran_on[8];

void Busy(std::chrono::microseconds d)
{
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
    }
}

// Adds 1 to every word; costs `arg` microseconds on the CPU and ten times that as
// the sim implementation.
tsr_status_t AddCpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    uint32_t us;
    std::memcpy(&us, arg, sizeof(us));
    Busy(std::chrono::microseconds(us));
    auto *p = static_cast<uint64_t *>(bufs[0].ptr);
    for (size_t i = 0; i < bufs[0].n_bytes / 8; i++) {
        p[i] += 1;
    }
    g_ran_on[tsr_task_ctx_device(ctx)]++;
    return TSR_OK;
}

tsr_status_t AddSimSlow(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    uint32_t us;
    std::memcpy(&us, arg, sizeof(us));
    Busy(std::chrono::microseconds(9 * us));
    return AddCpu(ctx, bufs, arg);
}

void ResetCounts()
{
    for (auto &c : g_ran_on) {
        c = 0;
    }
}

tsr_status_t SubmitAdd(tsr_runtime_t *rt, const tsr_codelet_t *cl, tsr_data_t *h, uint32_t us)
{
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;
    d.codelet = cl;
    d.handles = &h;
    d.n_handles = 1;
    d.arg = &us;
    d.arg_size = sizeof(us);
    return tsr_task_submit(rt, &d, nullptr);
}

TEST(Place, DefaultPolicyIsDmdaWithAcceleratorsAndWsWithout)
{
    tsr_runtime_stats_t s = TSR_RUNTIME_STATS_INIT;
    Rt with = Start(TSR_SCHED_DEFAULT, 1);
    ASSERT_TRUE(with);
    ASSERT_EQ(tsr_runtime_stats(with.get(), &s), TSR_OK);
    EXPECT_EQ(s.policy, TSR_SCHED_DMDA);
    Rt without = Start(TSR_SCHED_DEFAULT, 0);
    ASSERT_TRUE(without);
    ASSERT_EQ(tsr_runtime_stats(without.get(), &s), TSR_OK);
    EXPECT_EQ(s.policy, TSR_SCHED_WS);
}

// With TSR_CONFIG_F_ACCEL_FIRST, tasks the sim devices can run never run on the
// CPU workers, under every policy, even where the CPU is the faster place; a task
// pinned to the CPU still runs there.
TEST(Place, AccelFirstKeepsTasksOffTheCpu)
{
    tsr_codelet_t both = {};
    both.name = "add_both";
    both.impl[TSR_DEVICE_CPU] = AddCpu;
    both.impl[TSR_DEVICE_SIM] = AddSimSlow;
    both.n_buffers = 1;
    both.modes[0] = TSR_RW;
    for (tsr_sched_policy_t policy : {TSR_SCHED_EAGER, TSR_SCHED_WS, TSR_SCHED_DMDA}) {
        tsr_config_t cfg = TSR_CONFIG_INIT;
        cfg.flags = TSR_CONFIG_F_NO_ENV | TSR_CONFIG_F_ACCEL_FIRST;
        cfg.n_cpu_workers = 2;
        cfg.n_sim_devices = 2;
        cfg.policy = policy;
        cfg.model_dir = "";
        tsr_runtime_t *raw = nullptr;
        ASSERT_EQ(tsr_init(&cfg, &raw), TSR_OK) << tsr_last_error();
        Rt rt(raw);
        ResetCounts();
        std::vector<uint64_t> words(64, 0);
        std::vector<tsr_data_t *> hs(words.size());
        for (size_t i = 0; i < words.size(); i++) {
            ASSERT_EQ(tsr_data_register(rt.get(), &words[i], sizeof(uint64_t), &hs[i]), TSR_OK);
            ASSERT_EQ(SubmitAdd(rt.get(), &both, hs[i], 20), TSR_OK) << tsr_last_error();
        }
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
        EXPECT_EQ(g_ran_on[0].load(), 0u) << "policy " << policy;
        EXPECT_EQ(g_ran_on[1] + g_ran_on[2], words.size());
        tsr_task_desc_t d = TSR_TASK_DESC_INIT;
        uint32_t us = 0;
        d.codelet = &both;
        d.handles = &hs[0];
        d.n_handles = 1;
        d.arg = &us;
        d.arg_size = sizeof(us);
        d.pin = TSR_PIN_KIND;
        d.pin_value = TSR_DEVICE_CPU;
        ASSERT_EQ(tsr_task_submit(rt.get(), &d, nullptr), TSR_OK) << tsr_last_error();
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
        EXPECT_EQ(g_ran_on[0].load(), 1u) << "the pinned task";
        for (size_t i = 0; i < words.size(); i++) {
            tsr_data_unregister(hs[i]);
            EXPECT_EQ(words[i], i < 1 ? 2u : 1u) << i;
        }
    }
}

// The CPU runs this codelet ten times faster than the sim device: once the model
// knows it, dmda sends the CPU most of the work.
TEST(Place, DmdaSendsWorkWhereItFinishesFirst)
{
    tsr_codelet_t cl = {};
    cl.name = "place_add_fast_cpu";
    cl.impl[TSR_DEVICE_CPU] = AddCpu;
    cl.impl[TSR_DEVICE_SIM] = AddSimSlow;
    cl.n_buffers = 1;
    cl.modes[0] = TSR_RW;
    Rt rt = Start(TSR_SCHED_DMDA, 1);
    ASSERT_TRUE(rt);
    const int n = 400;
    std::vector<std::vector<uint64_t>> bufs(n, std::vector<uint64_t>(8, 0));
    std::vector<tsr_data_t *> hs(n);
    for (int i = 0; i < n; i++) {
        ASSERT_EQ(tsr_data_register(rt.get(), bufs[i].data(), 64, &hs[i]), TSR_OK);
    }
    // Warm-up: both devices get runs, so the model has history for both.
    for (int i = 0; i < 20; i++) {
        tsr_task_desc_t d = TSR_TASK_DESC_INIT;
        uint32_t us = 200;
        d.codelet = &cl;
        d.handles = &hs[i];
        d.n_handles = 1;
        d.arg = &us;
        d.arg_size = sizeof(us);
        d.pin = TSR_PIN_DEVICE;
        d.pin_value = (uint32_t)(i % 2);
        ASSERT_EQ(tsr_task_submit(rt.get(), &d, nullptr), TSR_OK);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    ResetCounts();
    for (int i = 0; i < n; i++) {
        ASSERT_EQ(SubmitAdd(rt.get(), &cl, hs[i], 200), TSR_OK);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    uint32_t on_cpu = g_ran_on[0], on_sim = g_ran_on[1];
    EXPECT_EQ(on_cpu + on_sim, (uint32_t)n);
    EXPECT_GT(on_cpu, 4 * on_sim) << "cpu " << on_cpu << " sim " << on_sim;
    for (int i = 0; i < n; i++) {
        tsr_data_unregister(hs[i]);
        EXPECT_EQ(bufs[i][0], i < 20 ? 2u : 1u);
    }
}

tsr_status_t AddSimOnly(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    return AddCpu(ctx, bufs, arg);
}

// Two equal accelerators (and a CPU that cannot run the codelet): work spreads.
TEST(Place, DmdaSpreadsOverEqualDevices)
{
    tsr_codelet_t cl = {};
    cl.name = "place_add_sim_only";
    cl.impl[TSR_DEVICE_SIM] = AddSimOnly;
    cl.n_buffers = 1;
    cl.modes[0] = TSR_RW;
    Rt rt = Start(TSR_SCHED_DMDA, 2);
    ASSERT_TRUE(rt);
    const int n = 300;
    std::vector<std::vector<uint64_t>> bufs(n, std::vector<uint64_t>(8, 0));
    std::vector<tsr_data_t *> hs(n);
    ResetCounts();
    for (int i = 0; i < n; i++) {
        ASSERT_EQ(tsr_data_register(rt.get(), bufs[i].data(), 64, &hs[i]), TSR_OK);
        ASSERT_EQ(SubmitAdd(rt.get(), &cl, hs[i], 100), TSR_OK);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(g_ran_on[0].load(), 0u);
    EXPECT_GT(g_ran_on[1].load(), (uint32_t)n / 4);
    EXPECT_GT(g_ran_on[2].load(), (uint32_t)n / 4);
    for (int i = 0; i < n; i++) {
        tsr_data_unregister(hs[i]);
        EXPECT_EQ(bufs[i][3], 1u);
    }
}

// Adds 1 to the first and last words only: cheap next to moving the buffer.
tsr_status_t AddEnds(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    uint32_t us;
    std::memcpy(&us, arg, sizeof(us));
    Busy(std::chrono::microseconds(us));
    auto *p = static_cast<uint64_t *>(bufs[0].ptr);
    p[0] += 1;
    p[bufs[0].n_bytes / 8 - 1] += 1;
    g_ran_on[tsr_task_ctx_device(ctx)]++;
    return TSR_OK;
}

// Moves between the two accelerators of chains of cheap tasks on 4 MiB handles,
// under `policy`; checks the results.
uint64_t ChainMoves(tsr_sched_policy_t policy)
{
    tsr_codelet_t cl = {};
    cl.name = "place_add_chain";
    cl.impl[TSR_DEVICE_SIM] = AddEnds;
    cl.n_buffers = 1;
    cl.modes[0] = TSR_RW;
    Rt rt = Start(policy, 2, 1);
    EXPECT_TRUE(rt);
    const int n_chains = 4, len = 50;
    const size_t words = (4u << 20) / 8;
    std::vector<std::vector<uint64_t>> bufs(n_chains, std::vector<uint64_t>(words, 7));
    std::vector<tsr_data_t *> hs(n_chains);
    for (int c = 0; c < n_chains; c++) {
        EXPECT_EQ(tsr_data_register(rt.get(), bufs[c].data(), words * 8, &hs[c]), TSR_OK);
    }
    for (int k = 0; k < len; k++) {
        for (int c = 0; c < n_chains; c++) {
            EXPECT_EQ(SubmitAdd(rt.get(), &cl, hs[c], 10), TSR_OK);
        }
    }
    EXPECT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_copy_stats_t s12, s21;
    EXPECT_EQ(tsr_runtime_copy_stats(rt.get(), 1, 2, &s12), TSR_OK);
    EXPECT_EQ(tsr_runtime_copy_stats(rt.get(), 2, 1, &s21), TSR_OK);
    for (int c = 0; c < n_chains; c++) {
        tsr_data_unregister(hs[c]);
        EXPECT_EQ(bufs[c][0], 7u + len);
        EXPECT_EQ(bufs[c][words - 1], 7u + len);
        EXPECT_EQ(bufs[c][words / 2], 7u);
    }
    return s12.n_copies + s21.n_copies;
}

// Chains stay on the device that holds their data: moving 4 MiB costs more than
// waiting behind the other chain there. Random placement, blind to data, moves
// about every other task (100 of 200, give or take 7). (Idle, dmda moves at most
// 10 of 200; on a loaded 2-core machine the sim drivers run late and it reached
// 20, so the bounds leave room for that; the comparison with random is the point.)
TEST(Place, DmdaKeepsChainsWhereTheirDataIs)
{
    uint64_t dmda = ChainMoves(TSR_SCHED_DMDA);
    uint64_t random = ChainMoves(TSR_SCHED_RANDOM);
    EXPECT_LE(dmda, 25u) << "of 200 tasks";
    EXPECT_GT(random, 2 * dmda + 20) << "dmda " << dmda;
}

// Chains of tasks on 1 MiB handles: each chain's input comes once.
TEST(Place, DmdaCopiesEachChainInputOnce)
{
    tsr_codelet_t cl = {};
    cl.name = "place_add_chain_once";
    cl.impl[TSR_DEVICE_SIM] = AddSimOnly;
    cl.n_buffers = 1;
    cl.modes[0] = TSR_RW;
    Rt rt = Start(TSR_SCHED_DMDA, 2);
    ASSERT_TRUE(rt);
    const int n_chains = 4, len = 50;
    const size_t words = (1u << 20) / 8;
    std::vector<std::vector<uint64_t>> bufs(n_chains, std::vector<uint64_t>(words, 7));
    std::vector<tsr_data_t *> hs(n_chains);
    for (int c = 0; c < n_chains; c++) {
        ASSERT_EQ(tsr_data_register(rt.get(), bufs[c].data(), words * 8, &hs[c]), TSR_OK);
    }
    for (int k = 0; k < len; k++) {
        for (int c = 0; c < n_chains; c++) {
            ASSERT_EQ(SubmitAdd(rt.get(), &cl, hs[c], 20), TSR_OK);
        }
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_copy_stats_t h1, h2;
    ASSERT_EQ(tsr_runtime_copy_stats(rt.get(), 0, 1, &h1), TSR_OK);
    ASSERT_EQ(tsr_runtime_copy_stats(rt.get(), 0, 2, &h2), TSR_OK);
    EXPECT_EQ(h1.n_copies + h2.n_copies, (uint64_t)n_chains) << "each chain's input comes once";
    for (int c = 0; c < n_chains; c++) {
        tsr_data_unregister(hs[c]);
        EXPECT_EQ(bufs[c][words - 1], 7u + len);
    }
}

// Random placement: spread over every device that can run the task, and the
// results of a sequential run.
TEST(Place, RandomSpreadsAndStaysCorrect)
{
    tsr_codelet_t cl = {};
    cl.name = "place_add_random";
    cl.impl[TSR_DEVICE_CPU] = AddCpu;
    cl.n_buffers = 1;
    cl.modes[0] = TSR_RW;
    Rt rt = Start(TSR_SCHED_RANDOM, 2);
    ASSERT_TRUE(rt);
    tsr_runtime_stats_t s = TSR_RUNTIME_STATS_INIT;
    ASSERT_EQ(tsr_runtime_stats(rt.get(), &s), TSR_OK);
    EXPECT_EQ(s.policy, TSR_SCHED_RANDOM);
    std::mt19937 rng(std::random_device{}());
    const int n_handles = 16, n = 600;
    std::vector<std::vector<uint64_t>> bufs(n_handles, std::vector<uint64_t>(8, 0));
    std::vector<uint64_t> expect(n_handles, 0);
    std::vector<tsr_data_t *> hs(n_handles);
    for (int i = 0; i < n_handles; i++) {
        ASSERT_EQ(tsr_data_register(rt.get(), bufs[i].data(), 64, &hs[i]), TSR_OK);
    }
    ResetCounts();
    for (int i = 0; i < n; i++) {
        int h = (int)(rng() % n_handles);
        ASSERT_EQ(SubmitAdd(rt.get(), &cl, hs[h], 0), TSR_OK);
        expect[h]++;
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    for (int d = 0; d < 3; d++) {
        EXPECT_GT(g_ran_on[d].load(), (uint32_t)n / 8) << "device " << d;
    }
    for (int i = 0; i < n_handles; i++) {
        tsr_data_unregister(hs[i]);
        EXPECT_EQ(bufs[i][5], expect[i]);
    }
}

// Prioritised tasks reach every queue's workers: an accelerator's own queue, and
// the queue eager and ws share between devices.
TEST(Place, PrioritisedTasksRunOnEveryQueue)
{
    tsr_codelet_t cl = {};
    cl.name = "place_add_prio";
    cl.impl[TSR_DEVICE_CPU] = AddCpu;
    cl.n_buffers = 1;
    cl.modes[0] = TSR_RW;
    for (tsr_sched_policy_t policy :
         {TSR_SCHED_EAGER, TSR_SCHED_WS, TSR_SCHED_DMDA, TSR_SCHED_RANDOM}) {
        Rt rt = Start(policy, 1);
        ASSERT_TRUE(rt);
        std::vector<uint64_t> x(8, 0);
        tsr_data_t *h;
        ASSERT_EQ(tsr_data_register(rt.get(), x.data(), 64, &h), TSR_OK);
        for (int i = 0; i < 40; i++) {
            tsr_task_desc_t d = TSR_TASK_DESC_INIT;
            uint32_t us = 0;
            d.codelet = &cl;
            d.handles = &h;
            d.n_handles = 1;
            d.arg = &us;
            d.arg_size = sizeof(us);
            d.priority = i % 3 - 1;  // -1, 0, +1
            if (i % 4 == 0) {
                d.pin = TSR_PIN_DEVICE;
                d.pin_value = 1;
            }
            ASSERT_EQ(tsr_task_submit(rt.get(), &d, nullptr), TSR_OK);
        }
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK) << tsr_sched_policy_name(policy);
        tsr_data_unregister(h);
        EXPECT_EQ(x[7], 40u) << tsr_sched_policy_name(policy);
    }
}

}  // namespace
