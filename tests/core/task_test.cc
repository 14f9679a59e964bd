/* Task dependency semantics: read-after-write, write-after-read and
 * write-after-write orderings inferred from access modes, duplicate handles,
 * explicit dependencies and argument blobs. Each ordering test blocks the first
 * task on a gate until everything is submitted, so a runtime that ignored the
 * dependency could run the later tasks first, and the results would differ. */
#include <algorithm>
#include <atomic>
#include <numeric>
#include <random>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::AffineTask;
using tsr_test::CombineRef;
using tsr_test::CombineTask;
using tsr_test::Data;
using tsr_test::FlushThenOpen;
using tsr_test::Future;
using tsr_test::Gate;
using tsr_test::GateOpener;
using tsr_test::OrderLog;
using tsr_test::Runtime;
using tsr_test::SetTask;
using tsr_test::Task;
using tsr_test::Word0;

class TaskP : public tsr_test::RtParamTest {};

TEST_P(TaskP, ReadAfterWriteOrders)
{
    std::vector<uint64_t> x(1, 0);
    std::vector<std::vector<uint64_t>> ys(8, std::vector<uint64_t>(1, 0));
    Gate gate;
    OrderLog log;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    std::vector<Data> hys = tsr_test::RegisterVectors(rt.get(), ys);
    GateOpener opener(gate);
    ASSERT_EQ(SetTask(hx.get(), 41, &gate, &log, 0).Submit(rt.get()), TSR_OK);
    for (size_t i = 0; i < hys.size(); i++) {
        ASSERT_EQ(CombineTask({hx.get()}, hys[i].get(), i, nullptr, &log, 1).Submit(rt.get()),
                  TSR_OK);
    }
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    for (size_t i = 0; i < hys.size(); i++) {
        EXPECT_EQ(Word0(hys[i].get()), CombineRef({41}, i)) << "reader " << i;
    }
    std::vector<int64_t> order = log.Values();
    ASSERT_EQ(order.size(), 1 + hys.size());
    EXPECT_EQ(order[0], 0) << "a reader ran before the writer";
}

TEST_P(TaskP, WriteAfterReadOrders)
{
    std::vector<uint64_t> x(1, 7), y(1, 0), z(1, 0);
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hy = tsr_test::RegisterVector(rt.get(), y);
    Data hz = tsr_test::RegisterVector(rt.get(), z);
    GateOpener opener(gate);
    /* The reader is held at the gate; the writer must not overtake it. */
    ASSERT_EQ(CombineTask({hx.get()}, hy.get(), 3, &gate).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(SetTask(hx.get(), 99).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(CombineTask({hx.get()}, hz.get(), 4).Submit(rt.get()), TSR_OK);
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(Word0(hy.get()), CombineRef({7}, 3)) << "the writer ran before the reader";
    EXPECT_EQ(Word0(hx.get()), 99u);
    EXPECT_EQ(Word0(hz.get()), CombineRef({99}, 4));
}

TEST_P(TaskP, WriteAfterWriteOrders)
{
    std::vector<uint64_t> x(1, 0), y(1, 0);
    Gate gate;
    OrderLog log;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hy = tsr_test::RegisterVector(rt.get(), y);
    GateOpener opener(gate);
    ASSERT_EQ(SetTask(hx.get(), 1, &gate, &log, 1).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(SetTask(hx.get(), 2, nullptr, &log, 2).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(CombineTask({hx.get()}, hy.get(), 0).Submit(rt.get()), TSR_OK);
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(Word0(hx.get()), 2u) << "the first write landed last";
    EXPECT_EQ(Word0(hy.get()), CombineRef({2}, 0));
    EXPECT_EQ(log.Values(), (std::vector<int64_t>{1, 2}));
}

/* Writer, a crowd of readers, a second writer that must wait for all of them,
 * then a last reader that must see the second write. */
TEST_P(TaskP, WriterWaitsForEveryEarlierReader)
{
    const size_t n_readers = 16;
    std::vector<uint64_t> x(1, 0), z(1, 0);
    std::vector<std::vector<uint64_t>> ys(n_readers, std::vector<uint64_t>(1, 0));
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hz = tsr_test::RegisterVector(rt.get(), z);
    std::vector<Data> hys = tsr_test::RegisterVectors(rt.get(), ys);
    GateOpener opener(gate);
    ASSERT_EQ(SetTask(hx.get(), 5).Submit(rt.get()), TSR_OK);
    for (size_t i = 0; i < n_readers; i++) {
        /* The last reader waits at the gate. */
        Gate *g = i == n_readers - 1 ? &gate : nullptr;
        ASSERT_EQ(CombineTask({hx.get()}, hys[i].get(), i, g).Submit(rt.get()), TSR_OK);
    }
    ASSERT_EQ(AffineTask(hx.get(), 11).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(CombineTask({hx.get()}, hz.get(), 1).Submit(rt.get()), TSR_OK);
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    for (size_t i = 0; i < n_readers; i++) {
        EXPECT_EQ(Word0(hys[i].get()), CombineRef({5}, i)) << "reader " << i;
    }
    EXPECT_EQ(Word0(hx.get()), 5u * 31 + 11);
    EXPECT_EQ(Word0(hz.get()), CombineRef({5u * 31 + 11}, 1));
}

TEST_P(TaskP, ReadWriteChainIsSequential)
{
    const uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    const size_t n = tsr_test::Scaled(3000, 10);
    std::vector<uint64_t> x(1, rng()), ks(n);
    for (uint64_t &k : ks) {
        k = rng();
    }
    const uint64_t expected = tsr_test::AffineRef(x[0], ks);
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    GateOpener opener(gate);
    ASSERT_EQ(Task(&tsr_test::kGateCodelet).Use(hx.get(), TSR_RW).Arg(&gate).Submit(rt.get()),
              TSR_OK);
    for (size_t i = 0; i < n; i++) {
        /* Rising priorities must not reorder dependent tasks. */
        ASSERT_EQ(AffineTask(hx.get(), ks[i]).Priority(static_cast<int32_t>(i)).Submit(rt.get()),
                  TSR_OK);
    }
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(Word0(hx.get()), expected);
}

TEST_P(TaskP, JoinWaitsForEveryInput)
{
    const size_t n_in = TSR_MAX_BUFFERS - 1;
    std::vector<std::vector<uint64_t>> ins(n_in, std::vector<uint64_t>(1, 0));
    std::vector<uint64_t> out(1, 0), expect_in(n_in);
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    std::vector<Data> hins = tsr_test::RegisterVectors(rt.get(), ins);
    std::vector<tsr_data_t *> raw = tsr_test::RawPointers(hins);
    Data hout = tsr_test::RegisterVector(rt.get(), out);
    GateOpener opener(gate);
    for (size_t i = 0; i < n_in; i++) {
        expect_in[i] = 1000 + i;
        Gate *g = i == n_in / 2 ? &gate : nullptr;
        ASSERT_EQ(SetTask(raw[i], expect_in[i], g).Submit(rt.get()), TSR_OK);
    }
    Future join = CombineTask(raw, hout.get(), 17).Run(rt.get());
    ASSERT_TRUE(join);
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_future_wait(join.get()), TSR_OK);
    EXPECT_EQ(Word0(hout.get()), CombineRef(expect_in, 17));
}

struct SameBufferArg {
    std::atomic<int> *n_same;
    std::atomic<int> *n_diff;
};

tsr_status_t SameBufferKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *arg)
{
    SameBufferArg a = tsr_test::ArgAs<SameBufferArg>(arg);
    bool same = bufs[0].ptr == bufs[1].ptr && bufs[0].n_bytes == bufs[1].n_bytes;
    (same ? a.n_same : a.n_diff)->fetch_add(1);
    return TSR_OK;
}

/* A handle listed twice counts once with the union of its modes: R + W makes a
 * read-write access, ordered after earlier writers and before later readers. */
TEST_P(TaskP, HandleListedTwiceCountsOnceWithUnionOfModes)
{
    static const tsr_codelet_t same_codelet =
        tsr_test::MakeDynamicCodelet("same_buffer", SameBufferKernel);
    std::vector<uint64_t> x(1, 0), y(1, 0);
    std::atomic<int> n_same{0}, n_diff{0};
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hy = tsr_test::RegisterVector(rt.get(), y);
    GateOpener opener(gate);
    ASSERT_EQ(SetTask(hx.get(), 5, &gate).Submit(rt.get()), TSR_OK);
    /* Reads x twice and writes x: x = (3 * 31 + 5) * 31 + 5. */
    Task twice = CombineTask({hx.get(), hx.get()}, hx.get(), 3);
    ASSERT_EQ(twice.Submit(rt.get()), TSR_OK);
    ASSERT_EQ(CombineTask({hx.get()}, hy.get(), 9).Submit(rt.get()), TSR_OK);
    /* Written twice in W mode: still one write, after the reader above. */
    Task ww(&tsr_test::kWordCodelet);
    ww.Use(hx.get(), TSR_W).Use(hx.get(), TSR_W);
    tsr_test::WordArg set = {};
    set.op = tsr_test::WordArg::kSet;
    set.k = 77;
    ww.Arg(set);
    ASSERT_EQ(ww.Submit(rt.get()), TSR_OK);
    for (tsr_access_t second : {TSR_R, TSR_W, TSR_RW}) {
        SameBufferArg arg = {&n_same, &n_diff};
        ASSERT_EQ(Task(&same_codelet)
                      .Use(hx.get(), TSR_R)
                      .Use(hx.get(), second)
                      .Arg(arg)
                      .Submit(rt.get()),
                  TSR_OK);
    }
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    const uint64_t after_twice = CombineRef({5, 5}, 3);
    EXPECT_EQ(Word0(hy.get()), CombineRef({after_twice}, 9));
    EXPECT_EQ(Word0(hx.get()), 77u);
    EXPECT_EQ(n_same.load(), 3);
    EXPECT_EQ(n_diff.load(), 0);
}

struct LogArg {
    OrderLog *log;
    int64_t tag;
    Gate *gate;
};

tsr_status_t LogKernel(tsr_task_ctx_t *, const tsr_buffer_t *, const void *arg)
{
    LogArg a = tsr_test::ArgAs<LogArg>(arg);
    if (a.gate != nullptr) {
        a.gate->Wait();
    }
    a.log->Add(a.tag);
    return TSR_OK;
}

const tsr_codelet_t kLogCodelet = tsr_test::MakeCodelet("log", LogKernel, {});

TEST_P(TaskP, ExplicitDepsOrderTasksWithoutData)
{
    OrderLog log;
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    GateOpener opener(gate);
    Future first = Task(&kLogCodelet).Arg(LogArg{&log, 1, &gate}).Run(rt.get());
    Future second = Task(&kLogCodelet).Arg(LogArg{&log, 2, nullptr}).Run(rt.get());
    ASSERT_TRUE(first && second);
    /* Depends on both; listed twice on purpose. */
    Future third = Task(&kLogCodelet)
                       .Arg(LogArg{&log, 3, nullptr})
                       .After(first.get())
                       .After(second.get())
                       .After(first.get())
                       .Run(rt.get());
    Future fourth =
        Task(&kLogCodelet).Arg(LogArg{&log, 4, nullptr}).After(third.get()).Run(rt.get());
    ASSERT_TRUE(third && fourth);
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_future_wait(fourth.get()), TSR_OK);
    std::vector<int64_t> order = log.Values();
    ASSERT_EQ(order.size(), 4u);
    EXPECT_EQ(order[2], 3);
    EXPECT_EQ(order[3], 4);
    /* A dependency that has already completed is satisfied at once. */
    Future late =
        Task(&kLogCodelet).Arg(LogArg{&log, 5, nullptr}).After(fourth.get()).Run(rt.get());
    ASSERT_TRUE(late);
    EXPECT_EQ(tsr_future_wait(late.get()), TSR_OK);
}

TEST_P(TaskP, ExplicitDepsCombineWithDataDeps)
{
    std::vector<uint64_t> x(1, 3);
    OrderLog log;
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    GateOpener opener(gate);
    Future side = Task(&kLogCodelet).Arg(LogArg{&log, 1, &gate}).Run(rt.get());
    ASSERT_TRUE(side);
    /* No data in common with `side`, only the explicit dependency. */
    Future w = AffineTask(hx.get(), 2, nullptr, &log, 2).After(side.get()).Run(rt.get());
    Future r = AffineTask(hx.get(), 4, nullptr, &log, 3).Run(rt.get());
    ASSERT_TRUE(w && r);
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_future_wait(r.get()), TSR_OK);
    EXPECT_EQ(log.Values(), (std::vector<int64_t>{1, 2, 3}));
    EXPECT_EQ(Word0(hx.get()), (3u * 31 + 2) * 31 + 4);
}

/* Argument blob: first word its size, then bytes derived from a seed. */
std::vector<unsigned char> MakeBlob(size_t n_bytes, uint64_t seed)
{
    std::vector<unsigned char> blob(n_bytes);
    uint64_t header[2] = {n_bytes, seed};
    std::memcpy(blob.data(), header, sizeof(header));
    for (size_t i = sizeof(header); i < n_bytes; i++) {
        blob[i] = static_cast<unsigned char>(tsr_test::Mix64(seed + i));
    }
    return blob;
}

struct BlobCheck {
    std::atomic<int> n_good{0};
    std::atomic<int> n_bad{0};
};

BlobCheck *g_blob_check = nullptr;
Gate *g_blob_gate = nullptr;

tsr_status_t BlobKernel(tsr_task_ctx_t *, const tsr_buffer_t *, const void *arg)
{
    g_blob_gate->Wait();
    uint64_t header[2];
    std::memcpy(header, arg, sizeof(header));
    std::vector<unsigned char> expected = MakeBlob(header[0], header[1]);
    bool good = std::memcmp(arg, expected.data(), expected.size()) == 0;
    (good ? g_blob_check->n_good : g_blob_check->n_bad).fetch_add(1);
    return TSR_OK;
}

TEST_P(TaskP, ArgumentBlobIsCopiedAtSubmit)
{
    static const tsr_codelet_t blob_codelet = tsr_test::MakeCodelet("blob", BlobKernel, {});
    const uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    BlobCheck check;
    Gate gate;
    g_blob_check = &check;
    g_blob_gate = &gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    GateOpener opener(gate);
    const size_t sizes[] = {
        16, 63, TSR_TASK_ARG_INLINE, TSR_TASK_ARG_INLINE + 1, 4096, TSR_TASK_ARG_MAX};
    for (size_t n_bytes : sizes) {
        std::vector<unsigned char> blob = MakeBlob(n_bytes, seed + n_bytes);
        tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
        desc.codelet = &blob_codelet;
        desc.arg = blob.data();
        desc.arg_size = blob.size();
        ASSERT_EQ(tsr_task_submit(rt.get(), &desc, nullptr), TSR_OK) << n_bytes;
        /* The task has not run yet (gate): clobber the caller's copy. */
        std::fill(blob.begin(), blob.end(), 0xee);
    }
    gate.Open();
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(check.n_good.load(), static_cast<int>(std::size(sizes)));
    EXPECT_EQ(check.n_bad.load(), 0);
}

tsr_status_t NullArgKernel(tsr_task_ctx_t *, const tsr_buffer_t *, const void *arg)
{
    return arg == nullptr ? TSR_OK : TSR_ETASK;
}

TEST_P(TaskP, TaskWithoutArgumentSeesNull)
{
    static const tsr_codelet_t codelet = tsr_test::MakeCodelet("null_arg", NullArgKernel, {});
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Future f = Task(&codelet).Run(rt.get());
    ASSERT_TRUE(f);
    EXPECT_EQ(tsr_future_wait(f.get()), TSR_OK);
}

tsr_status_t OneBufferKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *)
{
    if (bufs[0].ptr == nullptr || bufs[0].n_bytes != sizeof(uint64_t)) {
        return TSR_ETASK;
    }
    for (int i = 1; i < TSR_MAX_BUFFERS; i++) {
        if (bufs[i].ptr != nullptr || bufs[i].n_bytes != 0) {
            return TSR_ETASK;
        }
    }
    return TSR_OK;
}

tsr_status_t ManyBuffersKernel(tsr_task_ctx_t *, const tsr_buffer_t *, const void *)
{
    return TSR_OK;
}

/* The slots of a task's buffer array past its handles are empty, also after a
 * task with more handles ran on the same worker. */
TEST_P(TaskP, BuffersPastTheHandlesAreEmpty)
{
    static const tsr_codelet_t one = tsr_test::MakeDynamicCodelet("one_buffer", OneBufferKernel);
    static const tsr_codelet_t many =
        tsr_test::MakeDynamicCodelet("many_buffers", ManyBuffersKernel);
    std::vector<std::vector<uint64_t>> xs(TSR_MAX_BUFFERS, std::vector<uint64_t>(1, 0));
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    std::vector<Data> hs = tsr_test::RegisterVectors(rt.get(), xs);
    for (int rep = 0; rep < 20; rep++) {
        Task all(&many);
        for (Data &h : hs) {
            all.Use(h.get(), TSR_R);
        }
        Future f = all.Run(rt.get());
        ASSERT_TRUE(f);
        ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK);
        Future g = Task(&one).Use(hs[(size_t)rep % hs.size()].get(), TSR_R).Run(rt.get());
        ASSERT_TRUE(g);
        EXPECT_EQ(tsr_future_wait(g.get()), TSR_OK) << "rep " << rep;
    }
}

INSTANTIATE_TEST_SUITE_P(Policies, TaskP, testing::ValuesIn(tsr_test::AllRtParams()),
                         tsr_test::RtParamName);

tsr_status_t ModesKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *)
{
    /* Fixed modes R, W: out = in * 2. */
    *static_cast<uint64_t *>(bufs[1].ptr) = *static_cast<const uint64_t *>(bufs[0].ptr) * 2;
    return TSR_OK;
}

TEST(Task, FixedCodeletModesApplyWithoutDescModes)
{
    static const tsr_codelet_t codelet =
        tsr_test::MakeCodelet("double", ModesKernel, {TSR_R, TSR_W});
    std::vector<uint64_t> a(1, 0), b(1, 0), c(1, 0);
    Gate gate;
    Runtime rt = tsr_test::StartRuntime(2, TSR_SCHED_WS);
    ASSERT_TRUE(rt);
    Data ha = tsr_test::RegisterVector(rt.get(), a);
    Data hb = tsr_test::RegisterVector(rt.get(), b);
    Data hc = tsr_test::RegisterVector(rt.get(), c);
    GateOpener opener(gate);
    ASSERT_EQ(SetTask(ha.get(), 21, &gate).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(Task(&codelet).Use(ha.get()).Use(hb.get()).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(Task(&codelet).Use(hb.get()).Use(hc.get()).Submit(rt.get()), TSR_OK);
    FlushThenOpen(gate, rt.get());
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(Word0(hb.get()), 42u);
    EXPECT_EQ(Word0(hc.get()), 84u);
}

}  // namespace
