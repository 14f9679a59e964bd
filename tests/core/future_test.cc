/* Futures: wait, test, wait_all, messages, task ids, retain and release. */
#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::Future;
using tsr_test::Gate;
using tsr_test::GateOpener;
using tsr_test::Runtime;
using tsr_test::Task;

class FutureP : public tsr_test::RtParamTest {};

TEST_P(FutureP, WaitReturnsStatusOfTheTask)
{
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Future ok = Task(&tsr_test::kEmptyCodelet).Run(rt.get());
    tsr_test::FailArg fail = tsr_test::MakeFailArg(TSR_ENOMEM, "");
    Future bad = Task(&tsr_test::kFailCodelet).Arg(fail).Run(rt.get());
    ASSERT_TRUE(ok && bad);
    EXPECT_EQ(tsr_future_wait(ok.get()), TSR_OK);
    EXPECT_EQ(tsr_future_wait(bad.get()), TSR_ENOMEM);
    /* Waiting again gives the same answer; so does test. */
    EXPECT_EQ(tsr_future_wait(ok.get()), TSR_OK);
    EXPECT_EQ(tsr_future_test(ok.get()), TSR_OK);
    EXPECT_EQ(tsr_future_test(bad.get()), TSR_ENOMEM);
    EXPECT_STREQ(tsr_future_message(ok.get()), "");
}

TEST_P(FutureP, TestIsPendingUntilTheTaskCompletes)
{
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    GateOpener opener(gate);
    Future gated = Task(&tsr_test::kGateCodelet).Arg(&gate).Run(rt.get());
    Future after = Task(&tsr_test::kEmptyCodelet).After(gated.get()).Run(rt.get());
    ASSERT_TRUE(gated && after);
    gate.WaitEntered();
    EXPECT_EQ(tsr_future_test(gated.get()), TSR_PENDING);
    EXPECT_EQ(tsr_future_test(after.get()), TSR_PENDING);
    EXPECT_STREQ(tsr_future_message(gated.get()), "");
    gate.Open();
    EXPECT_EQ(tsr_future_wait(after.get()), TSR_OK);
    EXPECT_EQ(tsr_future_test(gated.get()), TSR_OK);
    EXPECT_EQ(tsr_future_test(after.get()), TSR_OK);
}

TEST_P(FutureP, WaitAllReportsFirstFailureInArrayOrder)
{
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    GateOpener opener(gate);
    /* The failure last in array order completes first. */
    Future early =
        Task(&tsr_test::kFailCodelet).Arg(tsr_test::MakeFailArg(TSR_ETASK, "early")).Run(rt.get());
    ASSERT_TRUE(early);
    EXPECT_EQ(tsr_future_wait(early.get()), TSR_ETASK);
    std::vector<Future> futures;
    futures.push_back(Task(&tsr_test::kEmptyCodelet).Run(rt.get()));
    futures.push_back(Task(&tsr_test::kFailCodelet)
                          .Arg(tsr_test::MakeFailArg(TSR_EBACKEND, "late", &gate))
                          .Run(rt.get()));
    futures.push_back(Task(&tsr_test::kEmptyCodelet).Run(rt.get()));
    futures.push_back(std::move(early));
    for (const Future &f : futures) {
        ASSERT_TRUE(f);
    }
    gate.Open();
    std::vector<tsr_future_t *> raw = tsr_test::RawFutures(futures);
    EXPECT_EQ(tsr_future_wait_all(raw.data(), raw.size()), TSR_EBACKEND);
    EXPECT_EQ(tsr_future_wait_all(raw.data(), 1), TSR_OK);
    EXPECT_EQ(tsr_future_wait_all(raw.data() + 2, 2), TSR_ETASK);
    EXPECT_EQ(tsr_future_wait_all(raw.data(), 0), TSR_OK);
}

TEST_P(FutureP, WaitAllOfManyFutures)
{
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    std::vector<Future> futures;
    for (int i = 0; i < 1000; i++) {
        futures.push_back(Task(&tsr_test::kCountCodelet).Arg(&count).Run(rt.get()));
        ASSERT_TRUE(futures.back());
    }
    std::vector<tsr_future_t *> raw = tsr_test::RawFutures(futures);
    EXPECT_EQ(tsr_future_wait_all(raw.data(), raw.size()), TSR_OK);
    EXPECT_EQ(count.load(), 1000u);
    for (tsr_future_t *f : raw) {
        EXPECT_EQ(tsr_future_test(f), TSR_OK);
    }
}

TEST_P(FutureP, TaskIdsIncreaseWithSubmission)
{
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    uint64_t last = 0;
    for (int i = 0; i < 200; i++) {
        Future f = Task(&tsr_test::kEmptyCodelet).Run(rt.get());
        ASSERT_TRUE(f);
        uint64_t id = tsr_future_task_id(f.get());
        if (i > 0) {
            EXPECT_GT(id, last);
        }
        last = id;
        /* Submissions without a future still take a sequence number. */
        ASSERT_EQ(Task(&tsr_test::kEmptyCodelet).Submit(rt.get()), TSR_OK);
    }
}

TEST_P(FutureP, TaskIdsAreUniqueAcrossThreads)
{
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    const int n_threads = 4, per_thread = 500;
    std::vector<std::vector<uint64_t>> ids(n_threads);
    tsr_test::RunOnThreads(n_threads, [&](int t) {
        uint64_t last = 0;
        for (int i = 0; i < per_thread; i++) {
            Future f = Task(&tsr_test::kEmptyCodelet).Run(rt.get());
            if (!f) {
                return;
            }
            uint64_t id = tsr_future_task_id(f.get());
            EXPECT_TRUE(i == 0 || id > last) << "ids of one thread must increase";
            last = id;
            ids[t].push_back(id);
        }
    });
    std::vector<uint64_t> all;
    for (const auto &v : ids) {
        all.insert(all.end(), v.begin(), v.end());
    }
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all.size(), static_cast<size_t>(n_threads * per_thread));
    EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "duplicate task id";
}

TEST_P(FutureP, RetainSharesAcrossThreads)
{
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    GateOpener opener(gate);
    Future f = Task(&tsr_test::kGateCodelet).Arg(&gate).Run(rt.get());
    ASSERT_TRUE(f);
    std::vector<std::thread> waiters;
    std::atomic<int> n_ok{0};
    for (int i = 0; i < 4; i++) {
        tsr_future_t *shared = tsr_future_retain(f.get());
        EXPECT_EQ(shared, f.get());
        waiters.emplace_back([shared, &n_ok] {
            if (tsr_future_wait(shared) == TSR_OK) {
                n_ok++;
            }
            tsr_future_release(shared);
        });
    }
    /* The creator drops its reference first; the waiters still hold theirs. */
    f.reset();
    gate.Open();
    for (std::thread &t : waiters) {
        t.join();
    }
    EXPECT_EQ(n_ok.load(), 4);
}

TEST_P(FutureP, ReleasingEarlyDoesNotCancelTheTask)
{
    Gate gate;
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    GateOpener opener(gate);
    Future g = Task(&tsr_test::kGateCodelet).Arg(&gate).Run(rt.get());
    for (int i = 0; i < 100; i++) {
        Future f = Task(&tsr_test::kCountCodelet).Arg(&count).After(g.get()).Run(rt.get());
        ASSERT_TRUE(f);
    }
    g.reset();
    gate.Open();
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(count.load(), 100u);
}

TEST_P(FutureP, NullFutureOutIsAllowed)
{
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    std::atomic<uint64_t> *counter = &count;
    desc.codelet = &tsr_test::kCountCodelet;
    desc.arg = &counter;
    desc.arg_size = sizeof(counter);
    for (int i = 0; i < 50; i++) {
        ASSERT_EQ(tsr_task_submit(rt.get(), &desc, nullptr), TSR_OK);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(count.load(), 50u);
}

TEST_P(FutureP, ReleaseNullIsANoOp)
{
    tsr_future_release(nullptr);
    SUCCEED();
}

INSTANTIATE_TEST_SUITE_P(Policies, FutureP, testing::ValuesIn(tsr_test::AllRtParams()),
                         tsr_test::RtParamName);

}  // namespace
