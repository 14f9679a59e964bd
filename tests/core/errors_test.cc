/* Task failures and cancellation: status and message of a failing task, the
 * cancellation of its dependents with the root cause, poisoned handles and how
 * an overwrite clears them, and long chains of cancelled tasks. */
#include <atomic>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::AffineTask;
using tsr_test::CombineRef;
using tsr_test::CombineTask;
using tsr_test::Data;
using tsr_test::FailArg;
using tsr_test::FlushThenOpen;
using tsr_test::Future;
using tsr_test::Gate;
using tsr_test::GateOpener;
using tsr_test::MakeFailArg;
using tsr_test::RtParam;
using tsr_test::Runtime;
using tsr_test::SetTask;
using tsr_test::Task;
using tsr_test::Word0;

const char kRootName[] = "root_failer";
const char kRootMessage[] = "boom 42";

/* A failing task writing `handles`, named kRootName. */
Task FailTask(std::initializer_list<tsr_data_t *> handles, Gate *gate = nullptr,
              tsr_status_t status = TSR_ETASK)
{
    Task task(&tsr_test::kFailCodelet);
    for (tsr_data_t *h : handles) {
        task.Use(h, TSR_W);
    }
    task.Arg(MakeFailArg(status, kRootMessage, gate)).Name(kRootName);
    return task;
}

bool Contains(const std::string &haystack, const std::string &needle)
{
    return haystack.find(needle) != std::string::npos;
}

/* The message of a task cancelled because of the root failure. */
void ExpectCancelledByRoot(tsr_future_t *f, const char *what)
{
    SCOPED_TRACE(what);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(tsr_future_wait(f), TSR_ECANCELED);
    std::string message = tsr_future_message(f);
    EXPECT_TRUE(Contains(message, kRootName)) << "message '" << message << "'";
    EXPECT_TRUE(Contains(message, kRootMessage)) << "message '" << message << "'";
}

/* `fail_first`: the root has failed before its dependents are submitted;
 * otherwise it fails (at a gate) after they are all queued behind it. */
void RunCancellationScenario(Runtime &rt, bool fail_first)
{
    std::vector<uint64_t> x(1, 1), y(1, 0), z(1, 0), u(1, 2), w(1, 0);
    Gate gate;
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hy = tsr_test::RegisterVector(rt.get(), y);
    Data hz = tsr_test::RegisterVector(rt.get(), z);
    Data hu = tsr_test::RegisterVector(rt.get(), u);
    Data hw = tsr_test::RegisterVector(rt.get(), w);
    GateOpener opener(gate);
    Future root = FailTask({hx.get()}, fail_first ? nullptr : &gate).Run(rt.get());
    ASSERT_TRUE(root);
    if (fail_first) {
        ASSERT_EQ(tsr_future_wait(root.get()), TSR_ETASK);
    }
    Future direct = CombineTask({hx.get()}, hy.get(), 1).Run(rt.get());
    Future transitive = CombineTask({hy.get(), hu.get()}, hz.get(), 2).Run(rt.get());
    Future read_write = AffineTask(hx.get(), 3).Run(rt.get());
    Future unrelated = AffineTask(hu.get(), 4).Run(rt.get());
    Future overwrite = SetTask(hx.get(), 5).Run(rt.get());
    Future reader_after = CombineTask({hx.get()}, hw.get(), 6).Run(rt.get());
    if (fail_first) {
        gate.Open();
    } else {
        FlushThenOpen(gate, rt.get());
    }

    EXPECT_EQ(tsr_future_wait(root.get()), TSR_ETASK);
    EXPECT_TRUE(Contains(tsr_future_message(root.get()), kRootMessage));
    ExpectCancelledByRoot(direct.get(), "direct reader");
    ExpectCancelledByRoot(transitive.get(), "transitive reader");
    ExpectCancelledByRoot(read_write.get(), "read-write after failure");
    EXPECT_EQ(tsr_future_wait(unrelated.get()), TSR_OK);
    EXPECT_EQ(tsr_future_wait(overwrite.get()), TSR_OK) << tsr_future_message(overwrite.get());
    EXPECT_EQ(tsr_future_wait(reader_after.get()), TSR_OK)
        << tsr_future_message(reader_after.get());

    EXPECT_EQ(Word0(hu.get()), 2u * 31 + 4);
    EXPECT_EQ(Word0(hx.get()), 5u);
    EXPECT_EQ(Word0(hw.get()), CombineRef({5}, 6));
    /* y's writer was cancelled, so y is poisoned too: a later reader is
     * cancelled and a read acquire fails, both naming the root. */
    std::vector<uint64_t> v(1, 0);
    Data hv = tsr_test::RegisterVector(rt.get(), v);
    Future late = CombineTask({hy.get()}, hv.get(), 0).Run(rt.get());
    ExpectCancelledByRoot(late.get(), "late reader of a cancelled output");
    std::string message = tsr_test::LastErrorOnFreshThread(
        [&] { EXPECT_EQ(tsr_data_acquire(hy.get(), TSR_R, nullptr, nullptr), TSR_ECANCELED); });
    EXPECT_TRUE(Contains(message, kRootName)) << message;
    /* Cancelled tasks did not run. */
    hy.reset();
    hz.reset();
    EXPECT_EQ(y[0], 0u);
    EXPECT_EQ(z[0], 0u);
}

class ErrorsP : public tsr_test::RtParamTest {
protected:
    /* RunCancellationScenario on a fresh runtime, then its counters: the root
     * failed and its four dependents were cancelled. */
    void ExpectCancellationScenario(bool fail_first)
    {
        Runtime rt = Start();
        ASSERT_TRUE(rt);
        RunCancellationScenario(rt, fail_first);
        tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
        EXPECT_EQ(stats.n_failed, 1u);
        EXPECT_EQ(stats.n_cancelled, 4u);
    }
};

TEST_P(ErrorsP, FailingTaskReportsStatusAndMessage)
{
    std::vector<uint64_t> x(1, 0);
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Future f = FailTask({hx.get()}).Run(rt.get());
    ASSERT_TRUE(f);
    EXPECT_EQ(tsr_future_wait(f.get()), TSR_ETASK);
    EXPECT_TRUE(Contains(tsr_future_message(f.get()), kRootMessage)) << tsr_future_message(f.get());
    tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
    EXPECT_EQ(stats.n_failed, 1u);
    EXPECT_EQ(stats.n_cancelled, 0u);
}

TEST_P(ErrorsP, ImplementationStatusIsKept)
{
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    for (tsr_status_t st : {TSR_ETASK, TSR_ENOMEM, TSR_EBACKEND, TSR_EINVAL, TSR_ENOTSUP}) {
        Future f = Task(&tsr_test::kFailCodelet).Arg(MakeFailArg(st, "")).Run(rt.get());
        ASSERT_TRUE(f);
        EXPECT_EQ(tsr_future_wait(f.get()), st);
        EXPECT_NE(tsr_future_message(f.get()), nullptr);
    }
}

TEST_P(ErrorsP, DependentsOfAFailedTaskAreCancelled)
{
    ExpectCancellationScenario(false);
}

TEST_P(ErrorsP, TasksSubmittedAfterTheFailureAreCancelled)
{
    ExpectCancellationScenario(true);
}

TEST_P(ErrorsP, AcquireOfPoisonedHandleIsCancelled)
{
    std::vector<uint64_t> x(1, 1);
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    ASSERT_EQ(FailTask({hx.get()}).Submit(rt.get()), TSR_OK);
    for (tsr_access_t mode : {TSR_R, TSR_RW}) {
        void *sentinel = reinterpret_cast<void *>(0x42);
        void *ptr = sentinel;
        std::string message = tsr_test::LastErrorOnFreshThread(
            [&] { EXPECT_EQ(tsr_data_acquire(hx.get(), mode, &ptr, nullptr), TSR_ECANCELED); });
        EXPECT_EQ(ptr, sentinel);
        EXPECT_TRUE(Contains(message, kRootMessage)) << "last error '" << message << "'";
    }
    /* The handle stays unacquired; a write acquire overwrites and clears the poison. */
    void *ptr = nullptr;
    ASSERT_EQ(tsr_data_acquire(hx.get(), TSR_W, &ptr, nullptr), TSR_OK);
    *static_cast<uint64_t *>(ptr) = 77;
    ASSERT_EQ(tsr_data_release(hx.get()), TSR_OK);
    EXPECT_EQ(Word0(hx.get()), 77u);
    Future f = AffineTask(hx.get(), 1).Run(rt.get());
    ASSERT_TRUE(f);
    EXPECT_EQ(tsr_future_wait(f.get()), TSR_OK);
    EXPECT_EQ(Word0(hx.get()), 77u * 31 + 1);
}

TEST_P(ErrorsP, ExplicitDepOnFailedFutureCancels)
{
    Gate gate;
    std::atomic<uint64_t> count{0};
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    GateOpener opener(gate);
    Future root = FailTask({}, &gate).Run(rt.get());
    ASSERT_TRUE(root);
    Future child = Task(&tsr_test::kCountCodelet).Arg(&count).After(root.get()).Run(rt.get());
    Future grandchild = Task(&tsr_test::kCountCodelet).Arg(&count).After(child.get()).Run(rt.get());
    Future independent = Task(&tsr_test::kCountCodelet).Arg(&count).Run(rt.get());
    FlushThenOpen(gate, rt.get());
    ExpectCancelledByRoot(child.get(), "explicit dependent");
    ExpectCancelledByRoot(grandchild.get(), "dependent of the dependent");
    EXPECT_EQ(tsr_future_wait(independent.get()), TSR_OK);
    /* A dependency on an already failed future cancels at once. */
    Future late = Task(&tsr_test::kCountCodelet).Arg(&count).After(root.get()).Run(rt.get());
    ExpectCancelledByRoot(late.get(), "late explicit dependent");
    EXPECT_EQ(count.load(), 1u);
}

/* Fan-out and fan-in over many handles: every task reading anything downstream
 * of the failure is cancelled exactly once. */
TEST_P(ErrorsP, CancellationCountsEachTaskOnce)
{
    const size_t n = 200;
    std::vector<std::vector<uint64_t>> mids(n, std::vector<uint64_t>(1, 0));
    std::vector<uint64_t> x(1, 0), out(1, 0);
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hout = tsr_test::RegisterVector(rt.get(), out);
    std::vector<Data> hmids = tsr_test::RegisterVectors(rt.get(), mids);
    GateOpener opener(gate);
    ASSERT_EQ(FailTask({hx.get()}, &gate).Submit(rt.get()), TSR_OK);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(CombineTask({hx.get()}, hmids[i].get(), i).Submit(rt.get()), TSR_OK);
    }
    for (size_t i = 0; i + 1 < n; i += 2) {
        ASSERT_EQ(CombineTask({hmids[i].get(), hmids[i + 1].get()}, hout.get(), i).Submit(rt.get()),
                  TSR_OK);
    }
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
    EXPECT_EQ(stats.n_failed, 1u);
    EXPECT_EQ(stats.n_cancelled, n + n / 2);
    EXPECT_EQ(stats.n_completed, stats.n_submitted);
}

INSTANTIATE_TEST_SUITE_P(Policies, ErrorsP, testing::ValuesIn(tsr_test::AllRtParams()),
                         tsr_test::RtParamName);

/* 100000 read-write tasks behind a failure are cancelled, without recursion deep
 * enough to overflow a stack, whether they were queued before it failed or not. */
class ErrorsLongChain : public tsr_test::RtParamTest {};

TEST_P(ErrorsLongChain, LongChainIsCancelledWithoutStackOverflow)
{
    const size_t n = 100000;
    for (bool fail_first : {true, false}) {
        SCOPED_TRACE(fail_first ? "failed before the chain" : "failed after the chain");
        std::vector<uint64_t> x(1, 0), y(1, 0);
        Gate gate;
        Runtime rt = Start();
        ASSERT_TRUE(rt);
        Data hx = tsr_test::RegisterVector(rt.get(), x);
        Data hy = tsr_test::RegisterVector(rt.get(), y);
        GateOpener opener(gate);
        Future root = FailTask({hx.get()}, fail_first ? nullptr : &gate).Run(rt.get());
        ASSERT_TRUE(root);
        if (fail_first) {
            ASSERT_EQ(tsr_future_wait(root.get()), TSR_ETASK);
        }
        for (size_t i = 0; i + 1 < n; i++) {
            ASSERT_EQ(AffineTask(hx.get(), i).Submit(rt.get()), TSR_OK);
        }
        Future last = CombineTask({hx.get()}, hy.get(), 0).Run(rt.get());
        if (fail_first) {
            gate.Open();
        } else {
            FlushThenOpen(gate, rt.get());
        }
        ExpectCancelledByRoot(last.get(), "end of the chain");
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
        tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
        EXPECT_EQ(stats.n_cancelled, n);
        EXPECT_EQ(stats.n_failed, 1u);
        hx.reset();
        hy.reset();
        EXPECT_EQ(x[0], 0u);
        EXPECT_EQ(y[0], 0u);
    }
}

INSTANTIATE_TEST_SUITE_P(Policies, ErrorsLongChain,
                         testing::Values(RtParam{TSR_SCHED_EAGER, 1}, RtParam{TSR_SCHED_WS, 1},
                                         RtParam{TSR_SCHED_WS, 2}, RtParam{TSR_SCHED_EAGER, 4}),
                         tsr_test::RtParamName);

tsr_status_t LongMessageKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *)
{
    std::string message(2000, 'm');
    message[0] = 'L';
    tsr_task_ctx_fail(ctx, "%s", message.c_str());
    return TSR_ETASK;
}

TEST(Errors, LongMessageIsTruncated)
{
    static const tsr_codelet_t codelet =
        tsr_test::MakeCodelet("long_message", LongMessageKernel, {});
    Runtime rt = tsr_test::StartRuntime(1, TSR_SCHED_WS);
    ASSERT_TRUE(rt);
    Future f = Task(&codelet).Run(rt.get());
    ASSERT_TRUE(f);
    EXPECT_EQ(tsr_future_wait(f.get()), TSR_ETASK);
    std::string message = tsr_future_message(f.get());
    size_t start = message.find("Lmmm");
    ASSERT_NE(start, std::string::npos) << message;
    size_t n_kept = message.size() - start;
    EXPECT_LE(n_kept, 512u);
    EXPECT_GE(n_kept, 400u);
    EXPECT_EQ(message.find_first_not_of('m', start + 1), std::string::npos);
}

TEST(Errors, FailureWithoutMessageStillCancelsDependents)
{
    std::vector<uint64_t> x(1, 0), y(1, 0);
    Runtime rt = tsr_test::StartRuntime(2, TSR_SCHED_EAGER);
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hy = tsr_test::RegisterVector(rt.get(), y);
    Future root = Task(&tsr_test::kFailCodelet)
                      .Use(hx.get(), TSR_RW)
                      .Arg(MakeFailArg(TSR_EBACKEND, ""))
                      .Name("silent")
                      .Run(rt.get());
    Future dep = CombineTask({hx.get()}, hy.get(), 0).Run(rt.get());
    ASSERT_TRUE(root && dep);
    EXPECT_EQ(tsr_future_wait(root.get()), TSR_EBACKEND);
    EXPECT_EQ(tsr_future_wait(dep.get()), TSR_ECANCELED);
    EXPECT_TRUE(Contains(tsr_future_message(dep.get()), "silent")) << tsr_future_message(dep.get());
}

/* Failures from several threads at once leave the runtime working. */
TEST(Errors, RuntimeKeepsRunningAfterManyFailures)
{
    Runtime rt = tsr_test::StartRuntime(2, TSR_SCHED_WS);
    ASSERT_TRUE(rt);
    std::atomic<uint64_t> count{0};
    tsr_test::RunOnThreads(3, [&](int) {
        for (int i = 0; i < 300; i++) {
            EXPECT_EQ(
                Task(&tsr_test::kFailCodelet).Arg(MakeFailArg(TSR_ETASK, "x")).Submit(rt.get()),
                TSR_OK);
            EXPECT_EQ(Task(&tsr_test::kCountCodelet).Arg(&count).Submit(rt.get()), TSR_OK);
        }
    });
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(count.load(), 900u);
    tsr_runtime_stats_t stats = tsr_test::Stats(rt.get());
    EXPECT_EQ(stats.n_failed, 900u);
    EXPECT_EQ(stats.n_completed, 1800u);
}

struct ChildFailArg {
    std::atomic<int> *child_status;
};

tsr_status_t ParentOfFailingChildKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    ChildFailArg a = tsr_test::ArgAs<ChildFailArg>(arg);
    Future child;
    tsr_status_t st = Task(&tsr_test::kFailCodelet)
                          .Arg(MakeFailArg(TSR_ETASK, "child failed"))
                          .Submit(tsr_task_ctx_runtime(ctx), &child);
    if (st != TSR_OK) {
        return st;
    }
    a.child_status->store(tsr_future_wait(child.get()));
    return TSR_OK;
}

TEST(Errors, ParentSeesFailureOfChildItWaitsFor)
{
    static const tsr_codelet_t parent =
        tsr_test::MakeCodelet("parent", ParentOfFailingChildKernel, {});
    std::atomic<int> child_status{TSR_OK};
    Runtime rt = tsr_test::StartRuntime(1, TSR_SCHED_WS);
    ASSERT_TRUE(rt);
    Future f = Task(&parent).Arg(ChildFailArg{&child_status}).Run(rt.get());
    ASSERT_TRUE(f);
    EXPECT_EQ(tsr_future_wait(f.get()), TSR_OK);
    EXPECT_EQ(child_status.load(), TSR_ETASK);
}

}  // namespace
