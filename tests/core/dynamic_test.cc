/* Dynamic graphs: tasks that submit tasks, and tasks that wait for futures (the
 * worker runs other tasks meanwhile, so this works with a single worker). */
#include <atomic>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::Data;
using tsr_test::Future;
using tsr_test::kTreeCodelet;
using tsr_test::Runtime;
using tsr_test::Task;
using tsr_test::TreeArg;

class Dynamic : public tsr_test::RtParamTest {};

struct FibArg {
    uint32_t n;
    uint64_t *out;
};

tsr_status_t FibKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg);
const tsr_codelet_t kFibCodelet = tsr_test::MakeCodelet("fib", FibKernel, {});

tsr_status_t FibKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    FibArg a = tsr_test::ArgAs<FibArg>(arg);
    if (a.n < 2) {
        *a.out = a.n;
        return TSR_OK;
    }
    uint64_t parts[2] = {0, 0};
    tsr_future_t *futures[2] = {nullptr, nullptr};
    tsr_runtime_t *rt = tsr_task_ctx_runtime(ctx);
    for (uint32_t i = 0; i < 2; i++) {
        FibArg child = {a.n - 1 - i, &parts[i]};
        tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
        desc.codelet = &kFibCodelet;
        desc.arg = &child;
        desc.arg_size = sizeof(child);
        tsr_status_t st = tsr_task_submit(rt, &desc, &futures[i]);
        if (st != TSR_OK) {
            tsr_task_ctx_fail(ctx, "submit fib(%u): %s", child.n, tsr_status_str(st));
            tsr_future_release(futures[0]);
            return st;
        }
    }
    /* Alternate the two ways of waiting. */
    tsr_status_t st = a.n % 2 == 0 ? tsr_future_wait_all(futures, 2) : tsr_future_wait(futures[0]);
    if (st == TSR_OK && a.n % 2 != 0) {
        st = tsr_future_wait(futures[1]);
    }
    tsr_future_release(futures[0]);
    tsr_future_release(futures[1]);
    if (st != TSR_OK) {
        tsr_task_ctx_fail(ctx, "child of fib(%u): %s", a.n, tsr_status_str(st));
        return st;
    }
    *a.out = parts[0] + parts[1];
    return TSR_OK;
}

uint64_t FibRef(uint32_t n)
{
    uint64_t a = 0, b = 1;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

TEST_P(Dynamic, RecursiveFibWaitsInsideTasks)
{
    const uint32_t n = tsr_test::TestScale() < 1 ? 12 : 15;
    uint64_t result = 0;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    FibArg arg = {n, &result};
    Future root = Task(&kFibCodelet).Arg(arg).Run(rt.get());
    ASSERT_TRUE(root);
    ASSERT_EQ(tsr_future_wait(root.get()), TSR_OK) << tsr_future_message(root.get());
    EXPECT_EQ(result, FibRef(n));
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
    /* fib(n) makes 2 * fib(n + 1) - 1 tasks. */
    EXPECT_EQ(stats.n_submitted, 2 * FibRef(n + 1) - 1);
    EXPECT_EQ(stats.n_completed, stats.n_submitted);
}

/* wait_all counts tasks submitted by tasks, even those submitted after it began. */
TEST_P(Dynamic, TreeOfTasksCompletesUnderWaitAll)
{
    const uint32_t depth = tsr_test::TestScale() < 1 ? 10 : 13;
    const uint64_t n_nodes = tsr_test::TreeSize(depth);
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    for (int round = 0; round < 2; round++) {
        count = 0;
        ASSERT_EQ(Task(&kTreeCodelet).Arg(TreeArg{depth, &count}).Submit(rt.get()), TSR_OK);
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
        EXPECT_EQ(count.load(), n_nodes);
    }
    tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
    EXPECT_EQ(stats.n_submitted, 2 * n_nodes);
    EXPECT_EQ(stats.n_completed, stats.n_submitted);
    EXPECT_EQ(stats.n_failed, 0u);
}

struct ContinuationArg {
    uint32_t left;
    std::atomic<uint64_t> *count;
};

tsr_status_t ContinuationKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg);
const tsr_codelet_t kContinuationCodelet =
    tsr_test::MakeCodelet("continuation", ContinuationKernel, {});

tsr_status_t ContinuationKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    ContinuationArg a = tsr_test::ArgAs<ContinuationArg>(arg);
    a.count->fetch_add(1, std::memory_order_relaxed);
    if (a.left == 0) {
        return TSR_OK;
    }
    ContinuationArg next = {a.left - 1, a.count};
    return Task(&kContinuationCodelet).Arg(next).Submit(tsr_task_ctx_runtime(ctx));
}

/* One task at a time, each submitting its successor: the queue keeps running
 * empty, which exposes lost wake-ups. */
TEST_P(Dynamic, LongContinuationChain)
{
    const uint32_t n = static_cast<uint32_t>(tsr_test::Scaled(20000, 100));
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    ASSERT_EQ(Task(&kContinuationCodelet).Arg(ContinuationArg{n, &count}).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(count.load(), n + 1ull);
}

struct ChainArg {
    tsr_data_t *x;
    const std::vector<uint64_t> *ks;
};

tsr_status_t ChainParentKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    ChainArg a = tsr_test::ArgAs<ChainArg>(arg);
    for (uint64_t k : *a.ks) {
        tsr_status_t st = tsr_test::AffineTask(a.x, k).Submit(tsr_task_ctx_runtime(ctx));
        if (st != TSR_OK) {
            tsr_task_ctx_fail(ctx, "submit: %s", tsr_status_str(st));
            return st;
        }
    }
    return TSR_OK;
}

/* Data dependencies among tasks submitted from a task follow their submission
 * order, and a task submitted by the test after the parent finished comes last. */
TEST_P(Dynamic, TasksSubmittedFromTaskKeepDataOrder)
{
    static const tsr_codelet_t parent =
        tsr_test::MakeCodelet("chain_parent", ChainParentKernel, {});
    const uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> ks(500), x(1, rng());
    for (uint64_t &k : ks) {
        k = rng();
    }
    const uint64_t expected = tsr_test::AffineRef(x[0], ks) * 31 + 5;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Future f = Task(&parent).Arg(ChainArg{hx.get(), &ks}).Run(rt.get());
    ASSERT_TRUE(f);
    ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK) << tsr_future_message(f.get());
    ASSERT_EQ(tsr_test::AffineTask(hx.get(), 5).Submit(rt.get()), TSR_OK);
    std::optional<std::vector<uint64_t>> words = tsr_test::ReadWords(hx.get());
    ASSERT_TRUE(words);
    EXPECT_EQ((*words)[0], expected);
}

struct WaitAllArg {
    std::atomic<int> *status;
};

tsr_status_t WaitAllKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    WaitAllArg a = tsr_test::ArgAs<WaitAllArg>(arg);
    a.status->store(tsr_wait_all(tsr_task_ctx_runtime(ctx)));
    return TSR_OK;
}

TEST_P(Dynamic, WaitAllInsideTaskIsBusy)
{
    static const tsr_codelet_t codelet = tsr_test::MakeCodelet("wait_all", WaitAllKernel, {});
    std::atomic<int> status{TSR_OK};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Future f = Task(&codelet).Arg(WaitAllArg{&status}).Run(rt.get());
    ASSERT_TRUE(f);
    ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK);
    EXPECT_EQ(status.load(), TSR_EBUSY);
}

/* Outside threads and tasks submit at the same time. */
TEST_P(Dynamic, ConcurrentSubmittersInsideAndOutside)
{
    const uint32_t depth = 9;
    const uint64_t n_nodes = tsr_test::TreeSize(depth);
    const int n_threads = 3;
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    tsr_test::RunOnThreads(n_threads, [&](int) {
        for (int i = 0; i < 4; i++) {
            EXPECT_EQ(Task(&kTreeCodelet).Arg(TreeArg{depth, &count}).Submit(rt.get()), TSR_OK);
        }
    });
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(count.load(), n_threads * 4 * n_nodes);
}

INSTANTIATE_TEST_SUITE_P(Policies, Dynamic, testing::ValuesIn(tsr_test::AllRtParams()),
                         tsr_test::RtParamName);

}  // namespace
