/* Shutdown with work still pending, tsr_runtime_cancel, and objects the user
 * never released (the sanitizer build checks that nothing leaks). */
#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::AffineTask;
using tsr_test::Data;
using tsr_test::Future;
using tsr_test::Gate;
using tsr_test::GateOpener;
using tsr_test::Runtime;
using tsr_test::Task;
using tsr_test::TreeArg;

class Shutdown : public tsr_test::RtParamTest {};

/* Shutdown without waiting: every task submitted (and every task those submit)
 * runs, and registered buffers hold their final contents. */
TEST_P(Shutdown, DrainsPendingWork)
{
    const uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    const uint64_t n = tsr_test::Scaled(20000, 500);
    const uint32_t depth = 8;
    std::atomic<uint64_t> count{0}, tree_count{0};
    std::vector<std::vector<uint64_t>> xs(8, std::vector<uint64_t>(1, 0));
    std::vector<uint64_t> expected(xs.size());
    for (size_t i = 0; i < xs.size(); i++) {
        xs[i][0] = expected[i] = rng();
    }
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    ASSERT_EQ(Task(&tsr_test::kTreeCodelet).Arg(TreeArg{depth, &tree_count}).Submit(rt.get()),
              TSR_OK);
    std::vector<tsr_data_t *> hs;
    for (auto &x : xs) {
        tsr_data_t *h = nullptr;
        ASSERT_EQ(tsr_data_register(rt.get(), x.data(), sizeof(uint64_t), &h), TSR_OK);
        hs.push_back(h); /* left registered: shutdown unregisters it */
    }
    for (uint64_t i = 0; i < n; i++) {
        if (i % 4 == 0) {
            size_t j = rng() % hs.size();
            uint64_t k = rng();
            ASSERT_EQ(AffineTask(hs[j], k).Submit(rt.get()), TSR_OK);
            expected[j] = expected[j] * 31 + k;
        } else {
            ASSERT_EQ(Task(&tsr_test::kCountCodelet).Arg(&count).Submit(rt.get()), TSR_OK);
        }
    }
    rt.reset();
    EXPECT_EQ(count.load(), n - (n + 3) / 4);
    EXPECT_EQ(tree_count.load(), tsr_test::TreeSize(depth));
    for (size_t i = 0; i < xs.size(); i++) {
        EXPECT_EQ(xs[i][0], expected[i]) << "handle " << i;
    }
}

/* Futures never released and handles never unregistered (registered and
 * dynamic, with runtime-owned memory) are freed by shutdown. */
TEST_P(Shutdown, UnreleasedObjectsAreFreed)
{
    std::vector<uint64_t> x(4, 0);
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    tsr_data_t *registered = nullptr;
    tsr_data_t *created = nullptr;
    ASSERT_EQ(tsr_data_register(rt.get(), x.data(), 32, &registered), TSR_OK);
    ASSERT_EQ(tsr_data_create(rt.get(), &created), TSR_OK);
    std::vector<tsr_future_t *> leaked;
    for (int i = 0; i < 100; i++) {
        tsr_future_t *f = nullptr;
        tsr_task_desc_t desc = Task(&tsr_test::kEmptyCodelet).Desc();
        ASSERT_EQ(tsr_task_submit(rt.get(), &desc, &f), TSR_OK);
        leaked.push_back(f);
    }
    tsr_future_t *writer = nullptr;
    tsr_data_t *pair[2] = {registered, created};
    const tsr_access_t modes[2] = {TSR_R, TSR_W};
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    static const tsr_codelet_t fill = tsr_test::MakeDynamicCodelet(
        "fill_created", [](tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *) {
            void *ptr = nullptr;
            tsr_status_t st = tsr_task_ctx_alloc(ctx, 1, 1000, &ptr);
            if (st == TSR_OK) {
                std::memset(ptr, 1, 1000);
            }
            return st;
        });
    desc.codelet = &fill;
    desc.handles = pair;
    desc.modes = modes;
    desc.n_handles = 2;
    ASSERT_EQ(tsr_task_submit(rt.get(), &desc, &writer), TSR_OK);
    /* A failed task and its cancelled dependent, never released either. */
    tsr_future_t *failed = nullptr;
    tsr_future_t *cancelled = nullptr;
    tsr_task_desc_t fail_desc = TSR_TASK_DESC_INIT;
    tsr_test::FailArg fail_arg = tsr_test::MakeFailArg(TSR_ETASK, "left behind");
    const tsr_access_t rw = TSR_RW;
    fail_desc.codelet = &tsr_test::kFailCodelet;
    fail_desc.handles = &registered;
    fail_desc.modes = &rw;
    fail_desc.n_handles = 1;
    fail_desc.arg = &fail_arg;
    fail_desc.arg_size = sizeof(fail_arg);
    ASSERT_EQ(tsr_task_submit(rt.get(), &fail_desc, &failed), TSR_OK);
    ASSERT_EQ(tsr_task_submit(rt.get(), &fail_desc, &cancelled), TSR_OK);
    EXPECT_EQ(tsr_future_wait(writer), TSR_OK);
    rt.reset();
    SUCCEED() << leaked.size() << " futures left to shutdown";
}

INSTANTIATE_TEST_SUITE_P(Policies, Shutdown, testing::ValuesIn(tsr_test::AllRtParams()),
                         tsr_test::RtParamName);

/* With the only worker held at a gate, every queued task is cancelled: chains,
 * readers, independents; the running task finishes normally; later tasks run. */
TEST(ShutdownCancel, CancelsEveryTaskNotStarted)
{
    for (tsr_sched_policy_t policy : {TSR_SCHED_EAGER, TSR_SCHED_WS}) {
        SCOPED_TRACE(tsr_sched_policy_name(policy));
        std::vector<uint64_t> x(1, 3), y(1, 0);
        std::atomic<uint64_t> count{0};
        Gate gate;
        Runtime rt = tsr_test::StartRuntime(1, policy);
        ASSERT_TRUE(rt);
        Data hx = tsr_test::RegisterVector(rt.get(), x);
        Data hy = tsr_test::RegisterVector(rt.get(), y);
        GateOpener opener(gate);
        Future held = Task(&tsr_test::kGateCodelet).Arg(&gate).Run(rt.get());
        ASSERT_TRUE(held);
        gate.WaitEntered();
        std::vector<Future> futures;
        for (int i = 0; i < 300; i++) {
            switch (i % 3) {
            case 0:
                futures.push_back(AffineTask(hx.get(), i).Run(rt.get()));
                break;
            case 1:
                futures.push_back(tsr_test::CombineTask({hx.get()}, hy.get(), i).Run(rt.get()));
                break;
            default:
                futures.push_back(Task(&tsr_test::kCountCodelet).Arg(&count).Run(rt.get()));
                break;
            }
            ASSERT_TRUE(futures.back());
        }
        ASSERT_EQ(tsr_runtime_cancel(rt.get()), TSR_OK);
        gate.Open();
        EXPECT_EQ(tsr_future_wait(held.get()), TSR_OK) << "the running task was cancelled";
        for (size_t i = 0; i < futures.size(); i++) {
            EXPECT_EQ(tsr_future_wait(futures[i].get()), TSR_ECANCELED) << "task " << i;
            EXPECT_NE(std::string(tsr_future_message(futures[i].get())), "") << "task " << i;
        }
        EXPECT_EQ(count.load(), 0u);
        EXPECT_EQ(x[0], 3u);
        /* Tasks submitted after the cancel run as usual (x is overwritten, so the
         * cancelled writers do not poison the new readers). */
        Future after = tsr_test::SetTask(hx.get(), 8).Run(rt.get());
        Future after_read = tsr_test::CombineTask({hx.get()}, hy.get(), 1).Run(rt.get());
        Future after_count = Task(&tsr_test::kCountCodelet).Arg(&count).Run(rt.get());
        ASSERT_TRUE(after && after_read && after_count);
        EXPECT_EQ(tsr_future_wait(after_read.get()), TSR_OK)
            << tsr_future_message(after_read.get());
        EXPECT_EQ(tsr_future_wait(after_count.get()), TSR_OK);
        EXPECT_EQ(count.load(), 1u);
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
        tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
        EXPECT_EQ(stats.n_cancelled, futures.size());
        EXPECT_EQ(stats.n_completed, stats.n_submitted);
    }
}

/* Cancel while several workers are busy: every future ends OK or ECANCELED, and
 * in each read-write chain no task after a cancelled one succeeded. */
class ShutdownCancelMulti : public tsr_test::RtParamTest {};

TEST_P(ShutdownCancelMulti, CancelMidFlightKeepsChainsConsistent)
{
    const size_t n_chains = 8;
    const size_t n = tsr_test::Scaled(8000, 400);
    std::vector<std::vector<uint64_t>> xs(n_chains, std::vector<uint64_t>(1, 0));
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    std::vector<Data> hs = tsr_test::RegisterVectors(rt.get(), xs);
    std::vector<Future> futures;
    for (size_t i = 0; i < n; i++) {
        futures.push_back(AffineTask(hs[i % n_chains].get(), i).Run(rt.get()));
        ASSERT_TRUE(futures.back());
    }
    ASSERT_EQ(tsr_runtime_cancel(rt.get()), TSR_OK);
    size_t n_seen_cancelled = 0;
    std::vector<bool> chain_broken(n_chains, false);
    for (size_t i = 0; i < n; i++) {
        tsr_status_t st = tsr_future_wait(futures[i].get());
        ASSERT_TRUE(st == TSR_OK || st == TSR_ECANCELED) << tsr_status_str(st);
        if (st == TSR_ECANCELED) {
            n_seen_cancelled++;
            chain_broken[i % n_chains] = true;
        } else {
            EXPECT_FALSE(chain_broken[i % n_chains]) << "task " << i << " ran after a cancelled "
                                                     << "task of its chain";
        }
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
    EXPECT_EQ(stats.n_cancelled, n_seen_cancelled);
    EXPECT_EQ(stats.n_completed, stats.n_submitted);
    ReleaseAll(futures);
}

INSTANTIATE_TEST_SUITE_P(Policies, ShutdownCancelMulti,
                         testing::ValuesIn(tsr_test::MultiWorkerRtParams()), tsr_test::RtParamName);

/* A task held at `gate`, then `n` counting tasks. */
void SubmitGateThenCounts(tsr_runtime_t *rt, Gate &gate, std::atomic<uint64_t> &count, int n)
{
    ASSERT_EQ(Task(&tsr_test::kGateCodelet).Arg(&gate).Submit(rt), TSR_OK);
    for (int i = 0; i < n; i++) {
        ASSERT_EQ(Task(&tsr_test::kCountCodelet).Arg(&count).Submit(rt), TSR_OK);
    }
}

/* Cancel, then shut down at once while the held task is released: no hang. */
TEST(ShutdownCancel, CancelThenShutdownDoesNotHang)
{
    Gate gate;
    std::atomic<uint64_t> count{0};
    Runtime rt = tsr_test::StartRuntime(2, TSR_SCHED_WS);
    ASSERT_TRUE(rt);
    GateOpener opener(gate);
    ASSERT_NO_FATAL_FAILURE(SubmitGateThenCounts(rt.get(), gate, count, 5000));
    ASSERT_EQ(tsr_runtime_cancel(rt.get()), TSR_OK);
    gate.Open();
    rt.reset();
    EXPECT_LE(count.load(), 5000u);
}

/* Every task is accounted for: it ran or it was cancelled. */
TEST(ShutdownCancel, CancelledAndRunTasksAddUp)
{
    Gate gate;
    std::atomic<uint64_t> count{0};
    Runtime rt = tsr_test::StartRuntime(2, TSR_SCHED_WS);
    ASSERT_TRUE(rt);
    GateOpener opener(gate);
    ASSERT_NO_FATAL_FAILURE(SubmitGateThenCounts(rt.get(), gate, count, 5000));
    gate.WaitEntered();
    ASSERT_EQ(tsr_runtime_cancel(rt.get()), TSR_OK);
    gate.Open();
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    uint64_t n_cancelled = tsr_test::Stats(rt.get()).n_cancelled;
    rt.reset();
    EXPECT_EQ(count.load() + n_cancelled, 5000u);
}

tsr_status_t IncrementKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *)
{
    *static_cast<uint64_t *>(bufs[0].ptr) += 1;
    return TSR_OK;
}

// Regression: shutdown used to wait forever for the tasks queued behind a handle
// the caller forgot to release.
TEST(Shutdown, ReleasesAForgottenAcquire)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.n_cpu_workers = 2;
    cfg.log_level = TSR_LOG_NONE;
    tsr_runtime_t *rt = nullptr;
    ASSERT_EQ(tsr_init(&cfg, &rt), TSR_OK);
    uint64_t x = 41;
    tsr_data_t *h = nullptr;
    ASSERT_EQ(tsr_data_register(rt, &x, sizeof(x), &h), TSR_OK);
    void *p = nullptr;
    ASSERT_EQ(tsr_data_acquire(h, TSR_RW, &p, nullptr), TSR_OK);
    tsr_codelet_t cl = {};
    cl.name = "increment";
    cl.impl[TSR_DEVICE_CPU] = IncrementKernel;
    cl.n_buffers = 1;
    cl.modes[0] = TSR_RW;
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;
    d.codelet = &cl;
    d.handles = &h;
    d.n_handles = 1;
    ASSERT_EQ(tsr_task_submit(rt, &d, nullptr), TSR_OK);
    tsr_shutdown(rt);  // must release the acquire, run the task and return
    EXPECT_EQ(x, 42u);
}

}  // namespace
