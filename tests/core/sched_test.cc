/* Scheduler: priorities, many short tasks (no lost wake-ups), ping-pong
 * patterns and the consistency of the runtime counters, for both policies. */
#include <algorithm>
#include <atomic>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::Data;
using tsr_test::Future;
using tsr_test::Gate;
using tsr_test::GateOpener;
using tsr_test::OrderLog;
using tsr_test::Runtime;
using tsr_test::Task;

struct PrioArg {
    OrderLog *log;
    int32_t priority;
};

tsr_status_t PrioKernel(tsr_task_ctx_t *, const tsr_buffer_t *, const void *arg)
{
    PrioArg a = tsr_test::ArgAs<PrioArg>(arg);
    a.log->Add(a.priority);
    return TSR_OK;
}

const tsr_codelet_t kPrioCodelet = tsr_test::MakeDynamicCodelet("prio", PrioKernel);

/* `n` distinct priorities in random order, including the extremes. */
std::vector<int32_t> RandomPriorities(std::mt19937_64 &rng, size_t n)
{
    std::vector<int32_t> prios = {INT32_MIN, INT32_MAX, 0, -1, 1};
    while (prios.size() < n) {
        int32_t p = static_cast<int32_t>(rng() % 2001) - 1000;
        if (std::find(prios.begin(), prios.end(), p) == prios.end()) {
            prios.push_back(p);
        }
    }
    std::shuffle(prios.begin(), prios.end(), rng);
    return prios;
}

void ExpectDescending(const std::vector<int64_t> &order, size_t n)
{
    ASSERT_EQ(order.size(), n);
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end(), std::greater<int64_t>());
    EXPECT_EQ(order, sorted) << "tasks did not run in priority order";
}

class SchedSingle : public tsr_test::RtParamTest {};

/* The only worker is held at a gate while tasks of random priorities queue up;
 * once it is free it must take them highest first. */
TEST_P(SchedSingle, ReadyTasksRunByPriority)
{
    const uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    const size_t n = 64;
    OrderLog log;
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    GateOpener opener(gate);
    ASSERT_EQ(Task(&tsr_test::kGateCodelet).Arg(&gate).Submit(rt.get()), TSR_OK);
    gate.WaitEntered();
    for (int32_t p : RandomPriorities(rng, n)) {
        ASSERT_EQ(Task(&kPrioCodelet).Arg(PrioArg{&log, p}).Priority(p).Submit(rt.get()), TSR_OK);
    }
    gate.Open();
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    ExpectDescending(log.Values(), n);
}

/* Tasks made ready together by the completion of their common dependency. */
TEST_P(SchedSingle, TasksReleasedByADependencyRunByPriority)
{
    const uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    const size_t n = 48;
    std::vector<uint64_t> x(1, 0);
    OrderLog log;
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    GateOpener opener(gate);
    ASSERT_EQ(Task(&tsr_test::kGateCodelet).Use(hx.get(), TSR_W).Arg(&gate).Submit(rt.get()),
              TSR_OK);
    for (int32_t p : RandomPriorities(rng, n)) {
        ASSERT_EQ(Task(&kPrioCodelet)
                      .Use(hx.get(), TSR_R)
                      .Arg(PrioArg{&log, p})
                      .Priority(p)
                      .Submit(rt.get()),
                  TSR_OK);
    }
    gate.Open();
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    ExpectDescending(log.Values(), n);
}

struct SpawnArg {
    OrderLog *log;
    const std::vector<int32_t> *prios;
};

tsr_status_t SpawnKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    SpawnArg a = tsr_test::ArgAs<SpawnArg>(arg);
    for (int32_t p : *a.prios) {
        tsr_status_t st = Task(&kPrioCodelet)
                              .Arg(PrioArg{a.log, p})
                              .Priority(p)
                              .Submit(tsr_task_ctx_runtime(ctx));
        if (st != TSR_OK) {
            return st;
        }
    }
    return TSR_OK;
}

/* Children a task submits (onto its worker's own queue under ws) keep priority order. */
TEST_P(SchedSingle, TasksSubmittedFromATaskRunByPriority)
{
    static const tsr_codelet_t spawn = tsr_test::MakeCodelet("spawn", SpawnKernel, {});
    const uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    const size_t n = 64;
    std::vector<int32_t> prios = RandomPriorities(rng, n);
    OrderLog log;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Future f = Task(&spawn).Arg(SpawnArg{&log, &prios}).Run(rt.get());
    ASSERT_TRUE(f);
    ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK);
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    ExpectDescending(log.Values(), n);
}

INSTANTIATE_TEST_SUITE_P(Policies, SchedSingle, testing::ValuesIn(tsr_test::SingleWorkerRtParams()),
                         tsr_test::RtParamName);

class Sched : public tsr_test::RtParamTest {};

void ExpectCountersConsistent(tsr_runtime_t *rt, uint64_t n_expected)
{
    tsr_runtime_stats_t stats = tsr_test::Stats(rt);
    EXPECT_EQ(stats.n_submitted, n_expected);
    EXPECT_EQ(stats.n_completed, stats.n_submitted);
    EXPECT_EQ(stats.n_failed, 0u);
    EXPECT_EQ(stats.n_cancelled, 0u);
    EXPECT_LE(stats.n_stolen, stats.n_submitted);
}

TEST_P(Sched, ManyEmptyTasksThenWaitAll)
{
    const uint64_t n = tsr_test::Scaled(200000, 1000);
    const int rounds = 3;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    desc.codelet = &tsr_test::kEmptyCodelet;
    for (int round = 1; round <= rounds; round++) {
        for (uint64_t i = 0; i < n; i++) {
            ASSERT_EQ(tsr_task_submit(rt.get(), &desc, nullptr), TSR_OK);
        }
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
        ExpectCountersConsistent(rt.get(), n * round);
    }
}

TEST_P(Sched, CountingTasksFromSeveralThreads)
{
    const uint64_t per_thread = tsr_test::Scaled(20000, 500);
    const int n_threads = 3;
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    tsr_test::RunOnThreads(n_threads, [&](int) {
        for (uint64_t i = 0; i < per_thread; i++) {
            if (Task(&tsr_test::kCountCodelet).Arg(&count).Submit(rt.get()) != TSR_OK) {
                ADD_FAILURE() << "submit failed";
                return;
            }
        }
    });
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(count.load(), per_thread * n_threads);
    ExpectCountersConsistent(rt.get(), per_thread * n_threads);
}

/* Submit one task and wait for it, over and over: every round the workers run
 * out of work and must be woken again. */
TEST_P(Sched, SubmitAndWaitPingPong)
{
    const uint64_t n = tsr_test::Scaled(20000, 500);
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    for (uint64_t i = 0; i < n; i++) {
        Future f = Task(&tsr_test::kCountCodelet).Arg(&count).Run(rt.get());
        ASSERT_TRUE(f);
        ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK);
        ASSERT_EQ(count.load(), i + 1);
        /* The counters are settled once the future says the task completed. */
        tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
        ASSERT_EQ(stats.n_completed, i + 1);
        ASSERT_EQ(stats.n_submitted, i + 1);
    }
    ExpectCountersConsistent(rt.get(), n);
}

/* Several threads ping-pong at once, some with wait_all. */
TEST_P(Sched, ConcurrentPingPong)
{
    const uint64_t n = tsr_test::Scaled(5000, 200);
    const int n_threads = 3;
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    tsr_test::RunOnThreads(n_threads, [&](int t) {
        for (uint64_t i = 0; i < n; i++) {
            Future f = Task(&tsr_test::kCountCodelet).Arg(&count).Run(rt.get());
            if (!f) {
                return;
            }
            tsr_status_t st =
                t == 0 && i % 8 == 0 ? tsr_wait_all(rt.get()) : tsr_future_wait(f.get());
            if (st != TSR_OK) {
                ADD_FAILURE() << tsr_status_str(st);
                return;
            }
        }
    });
    EXPECT_EQ(count.load(), n * n_threads);
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    ExpectCountersConsistent(rt.get(), n * n_threads);
}

/* Two handles passing a value back and forth: each task reads one and writes
 * the other, so only one task is ready at any time. */
TEST_P(Sched, DataPingPong)
{
    const uint64_t n = tsr_test::Scaled(20000, 500);
    std::vector<uint64_t> a(1, 1), b(1, 0);
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data ha = tsr_test::RegisterVector(rt.get(), a);
    Data hb = tsr_test::RegisterVector(rt.get(), b);
    uint64_t expected = 1;
    for (uint64_t i = 0; i < n; i++) {
        tsr_data_t *from = i % 2 == 0 ? ha.get() : hb.get();
        tsr_data_t *to = i % 2 == 0 ? hb.get() : ha.get();
        ASSERT_EQ(tsr_test::CombineTask({from}, to, i).Submit(rt.get()), TSR_OK);
        expected = tsr_test::CombineRef({expected}, i);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    ha.reset();
    hb.reset();
    EXPECT_EQ(n % 2 == 0 ? a[0] : b[0], expected);
    ExpectCountersConsistent(rt.get(), n);
}

/* Bursts of independent tasks: the queues fill and drain repeatedly. */
TEST_P(Sched, BurstsDrainCompletely)
{
    const int n_bursts = static_cast<int>(tsr_test::Scaled(200, 20));
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    for (int burst = 1; burst <= n_bursts; burst++) {
        for (int i = 0; i < 500; i++) {
            ASSERT_EQ(Task(&tsr_test::kCountCodelet).Arg(&count).Submit(rt.get()), TSR_OK);
        }
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
        ASSERT_EQ(count.load(), 500u * burst);
    }
    ExpectCountersConsistent(rt.get(), 500u * n_bursts);
}

INSTANTIATE_TEST_SUITE_P(Policies, Sched, testing::ValuesIn(tsr_test::AllRtParams()),
                         tsr_test::RtParamName);

struct HoldArg {
    std::atomic<uint64_t> *count;
    uint64_t n_children;
};

tsr_status_t HoldKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    HoldArg a = tsr_test::ArgAs<HoldArg>(arg);
    for (uint64_t i = 0; i < a.n_children; i++) {
        tsr_status_t st =
            Task(&tsr_test::kCountCodelet).Arg(a.count).Submit(tsr_task_ctx_runtime(ctx));
        if (st != TSR_OK) {
            return st;
        }
    }
    /* Hold this worker until the others have run every child. */
    while (a.count->load() < a.n_children) {
        std::this_thread::yield();
    }
    return TSR_OK;
}

/* A worker that submitted tasks and then stays busy: idle workers must pick its
 * tasks up (stealing, under ws). */
class SchedMulti : public tsr_test::RtParamTest {};

TEST_P(SchedMulti, IdleWorkersTakeTasksOfABusyWorker)
{
    static const tsr_codelet_t hold = tsr_test::MakeCodelet("hold", HoldKernel, {});
    const uint64_t n_children = 1000;
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Future f = Task(&hold).Arg(HoldArg{&count, n_children}).Run(rt.get());
    ASSERT_TRUE(f);
    ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK);
    EXPECT_EQ(count.load(), n_children);
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
    if (GetParam().policy == TSR_SCHED_WS) {
        EXPECT_GT(stats.n_stolen, 0u) << "children of a busy worker were never stolen";
    }
    EXPECT_LE(stats.n_stolen, stats.n_submitted);
}

INSTANTIATE_TEST_SUITE_P(Policies, SchedMulti, testing::ValuesIn(tsr_test::MultiWorkerRtParams()),
                         tsr_test::RtParamName);

}  // namespace
