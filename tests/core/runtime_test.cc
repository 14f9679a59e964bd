/* Runtime life cycle: start-up in every shape, workers, several runtimes in one
 * process, whole-runtime waits and counters. */
#include <dirent.h>

#include <atomic>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::Future;
using tsr_test::Gate;
using tsr_test::GateOpener;
using tsr_test::Runtime;
using tsr_test::StartRuntime;
using tsr_test::Stats;
using tsr_test::Task;

class RuntimeP : public tsr_test::RtParamTest {};

TEST_P(RuntimeP, ReportsItsShape)
{
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    tsr_runtime_stats_t stats = Stats(rt.get());
    EXPECT_EQ(stats.n_cpu_workers, static_cast<uint32_t>(GetParam().n_workers));
    EXPECT_EQ(stats.policy, GetParam().policy);
    EXPECT_EQ(stats.n_submitted, 0u);
    EXPECT_EQ(stats.n_completed, 0u);
    EXPECT_EQ(stats.n_failed, 0u);
    EXPECT_EQ(stats.n_cancelled, 0u);
}

TEST_P(RuntimeP, WaitAllOnIdleRuntimeReturns)
{
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    EXPECT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(tsr_wait_all(rt.get()), TSR_OK);
}

TEST_P(RuntimeP, StartsAndStopsRepeatedly)
{
    for (int i = 0; i < 20; i++) {
        Runtime rt = Start();
        ASSERT_TRUE(rt);
        if (i % 2 == 0) {
            std::atomic<uint64_t> count{0};
            for (int j = 0; j < 10; j++) {
                ASSERT_EQ(Task(&tsr_test::kCountCodelet).Arg(&count).Submit(rt.get()), TSR_OK);
            }
            rt.reset();
            EXPECT_EQ(count.load(), 10u);
        }
    }
}

/* All n workers run at once: n tasks each wait until all n have started. A lost
 * wake-up leaves one queued behind a sleeping worker and hangs here; fresh
 * runtimes, repeated, since the race is in start-up and idle paths. */
TEST_P(RuntimeP, WorkersRunConcurrently)
{
    const int32_t n = GetParam().n_workers;
    for (int round = 0; round < 25; round++) {
        Gate gate;
        Runtime rt = Start();
        ASSERT_TRUE(rt);
        GateOpener opener(gate);
        std::vector<Future> futures;
        for (int32_t i = 0; i < n; i++) {
            futures.push_back(Task(&tsr_test::kGateCodelet).Arg(&gate).Run(rt.get()));
        }
        gate.WaitEntered(n);
        gate.Open();
        std::vector<tsr_future_t *> raw = tsr_test::RawFutures(futures);
        EXPECT_EQ(tsr_future_wait_all(raw.data(), raw.size()), TSR_OK);
    }
}

struct CtxRecord {
    std::atomic<uint32_t> bad_worker{0};
    std::atomic<uint32_t> bad_kind{0};
    std::atomic<uint32_t> bad_stream{0};
    std::atomic<uint32_t> bad_runtime{0};
    std::atomic<uint64_t> seen_mask{0};
    tsr_runtime_t *rt = nullptr;
    uint32_t n_workers = 0;
};

tsr_status_t CtxKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    CtxRecord *rec = tsr_test::ArgAs<CtxRecord *>(arg);
    uint32_t worker = tsr_task_ctx_worker(ctx);
    if (worker >= rec->n_workers) {
        rec->bad_worker++;
    } else {
        rec->seen_mask.fetch_or(1ull << worker);
    }
    if (tsr_task_ctx_device_kind(ctx) != TSR_DEVICE_CPU) {
        rec->bad_kind++;
    }
    if (tsr_task_ctx_stream(ctx) != nullptr) {
        rec->bad_stream++;
    }
    if (tsr_task_ctx_runtime(ctx) != rec->rt) {
        rec->bad_runtime++;
    }
    return TSR_OK;
}

TEST_P(RuntimeP, TaskContextDescribesWhereItRuns)
{
    static const tsr_codelet_t codelet = tsr_test::MakeCodelet("ctx", CtxKernel, {});
    CtxRecord rec;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    rec.rt = rt.get();
    rec.n_workers = static_cast<uint32_t>(GetParam().n_workers);
    for (int i = 0; i < 2000; i++) {
        ASSERT_EQ(Task(&codelet).Arg(&rec).Submit(rt.get()), TSR_OK);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(rec.bad_worker.load(), 0u);
    EXPECT_EQ(rec.bad_kind.load(), 0u);
    EXPECT_EQ(rec.bad_stream.load(), 0u);
    EXPECT_EQ(rec.bad_runtime.load(), 0u);
    EXPECT_NE(rec.seen_mask.load(), 0u);
}

TEST_P(RuntimeP, StatsCountCompletedTasks)
{
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    const uint64_t n = tsr_test::Scaled(5000);
    for (uint64_t i = 0; i < n; i++) {
        ASSERT_EQ(Task(&tsr_test::kEmptyCodelet).Submit(rt.get()), TSR_OK);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_runtime_stats_t stats = Stats(rt.get());
    EXPECT_EQ(stats.n_submitted, n);
    EXPECT_EQ(stats.n_completed, n);
    EXPECT_EQ(stats.n_failed, 0u);
    EXPECT_EQ(stats.n_cancelled, 0u);
    EXPECT_LE(stats.n_stolen, n);
    if (GetParam().policy == TSR_SCHED_EAGER) {
        EXPECT_EQ(stats.n_stolen, 0u) << "eager has no deques to steal from";
    }
}

INSTANTIATE_TEST_SUITE_P(Policies, RuntimeP, testing::ValuesIn(tsr_test::AllRtParams()),
                         tsr_test::RtParamName);

TEST(Runtime, SeveralRuntimesRunSideBySide)
{
    const int kRuntimes = 3;
    std::vector<std::atomic<uint64_t>> counts(kRuntimes);
    std::vector<Runtime> rts;
    for (int i = 0; i < kRuntimes; i++) {
        rts.push_back(StartRuntime(2, i % 2 == 0 ? TSR_SCHED_WS : TSR_SCHED_EAGER));
        ASSERT_TRUE(rts.back());
    }
    tsr_test::RunOnThreads(kRuntimes, [&](int i) {
        for (int j = 0; j < 3000; j++) {
            EXPECT_EQ(Task(&tsr_test::kCountCodelet).Arg(&counts[i]).Submit(rts[i].get()), TSR_OK);
        }
        EXPECT_EQ(tsr_wait_all(rts[i].get()), TSR_OK);
    });
    for (int i = 0; i < kRuntimes; i++) {
        EXPECT_EQ(counts[i].load(), 3000u);
        EXPECT_EQ(Stats(rts[i].get()).n_submitted, 3000u);
    }
}

TEST(Runtime, ShutdownOnAnotherThread)
{
    Runtime rt = StartRuntime(2, TSR_SCHED_WS);
    ASSERT_TRUE(rt);
    std::atomic<uint64_t> count{0};
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ(Task(&tsr_test::kCountCodelet).Arg(&count).Submit(rt.get()), TSR_OK);
    }
    tsr_runtime_t *raw = rt.release();
    std::thread([raw] { tsr_shutdown(raw); }).join();
    EXPECT_EQ(count.load(), 100u);
}

TEST(Runtime, NullArgumentsAreHandled)
{
    tsr_shutdown(nullptr);
    EXPECT_EQ(tsr_wait_all(nullptr), TSR_EINVAL);
    EXPECT_EQ(tsr_runtime_cancel(nullptr), TSR_EINVAL);
    tsr_runtime_stats_t stats;
    EXPECT_EQ(tsr_runtime_stats(nullptr, &stats), TSR_EINVAL);
    Runtime rt = StartRuntime(1, TSR_SCHED_EAGER);
    ASSERT_TRUE(rt);
    EXPECT_EQ(tsr_runtime_stats(rt.get(), nullptr), TSR_EINVAL);
}

// The names of this process's threads (/proc/self/task/<tid>/comm).
std::multiset<std::string> ThreadNames()
{
    std::multiset<std::string> names;
    DIR *dir = opendir("/proc/self/task");
    for (struct dirent *e = dir != nullptr ? readdir(dir) : nullptr; e != nullptr;
         e = readdir(dir)) {
        std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
        std::string name;
        if (e->d_name[0] != '.' && std::getline(comm, name)) {
            names.insert(name);
        }
    }
    if (dir != nullptr) {
        closedir(dir);
    }
    return names;
}

// Threads are named after what they do, for top -H, gdb and perf: a worker per
// device and index, the spill I/O thread and the progress thread; none is left
// once the runtime stops.
TEST(Runtime, ThreadsAreNamed)
{
    tsr_config_t cfg = tsr_test::TestConfig(2, TSR_SCHED_WS);
    cfg.n_sim_devices = 1;
    cfg.host_memory_limit.bytes = 64u << 20;
    cfg.progress_fn = [](void *, const tsr_progress_t *) {};
    Runtime rt = StartRuntime(cfg);
    ASSERT_TRUE(rt);
    std::multiset<std::string> names = ThreadNames();
    EXPECT_EQ(names.count("tsr-progress"), 1u);
    EXPECT_EQ(names.count("tsr-cpu-0"), 1u);
    EXPECT_EQ(names.count("tsr-cpu-1"), 1u);
    EXPECT_EQ(names.count("tsr-spill-io"), 1u);
    size_t n_sim = 0;
    for (const std::string &n : names) {
        n_sim += n.rfind("tsr-sim", 0) == 0 ? 1 : 0;
    }
    EXPECT_GE(n_sim, 1u) << "no sim device worker named tsr-sim<N>-<i>";
    rt.reset();
    for (const std::string &n : ThreadNames()) {
        EXPECT_NE(n.rfind("tsr-", 0), 0u) << n << " still runs after tsr_shutdown";
    }
    // The disk tier is on by default, CPU alone and no limit set (the default limit
    // keeps data that outgrows memory from getting the program killed).
    Runtime plain = StartRuntime(tsr_test::TestConfig(1, TSR_SCHED_WS));
    ASSERT_TRUE(plain);
    EXPECT_EQ(ThreadNames().count("tsr-spill-io"), 1u);
}

TEST(Runtime, OversubscribedRuntimeWorks)
{
    const int32_t n = static_cast<int32_t>(tsr_test::UsableCores()) * 4;
    Runtime rt = StartRuntime(n, TSR_SCHED_WS);
    ASSERT_TRUE(rt);
    EXPECT_EQ(Stats(rt.get()).n_cpu_workers, static_cast<uint32_t>(n));
    std::atomic<uint64_t> count{0};
    for (int i = 0; i < 5000; i++) {
        ASSERT_EQ(Task(&tsr_test::kCountCodelet).Arg(&count).Submit(rt.get()), TSR_OK);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(count.load(), 5000u);
}

}  // namespace
