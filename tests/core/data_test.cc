/* Data handles: registration, host access through acquire/release and how it
 * orders against tasks, unregister, and dynamic-size outputs. */
#include <algorithm>
#include <atomic>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::AffineTask;
using tsr_test::CombineRef;
using tsr_test::CombineTask;
using tsr_test::Data;
using tsr_test::Future;
using tsr_test::Gate;
using tsr_test::GateOpener;
using tsr_test::Runtime;
using tsr_test::SetTask;
using tsr_test::Task;
using tsr_test::Word0;

class DataP : public tsr_test::RtParamTest {};

Runtime StartDefault()
{
    return tsr_test::StartRuntime(2, TSR_SCHED_WS);
}

TEST(Data, RegisterAcquireReleaseUnregister)
{
    std::vector<uint64_t> x(16);
    std::iota(x.begin(), x.end(), 100);
    std::vector<uint64_t> y(1, 0);
    Runtime rt = StartDefault();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hy = tsr_test::RegisterVector(rt.get(), y);
    ASSERT_TRUE(hx && hy);
    EXPECT_EQ(tsr_data_size(hx.get()), x.size() * sizeof(uint64_t));

    void *ptr = nullptr;
    size_t n_bytes = 0;
    ASSERT_EQ(tsr_data_acquire(hx.get(), TSR_R, &ptr, &n_bytes), TSR_OK);
    EXPECT_EQ(ptr, x.data());
    EXPECT_EQ(n_bytes, x.size() * sizeof(uint64_t));
    ASSERT_EQ(tsr_data_release(hx.get()), TSR_OK);

    ASSERT_EQ(tsr_data_acquire(hx.get(), TSR_RW, &ptr, nullptr), TSR_OK);
    static_cast<uint64_t *>(ptr)[0] = 5;
    ASSERT_EQ(tsr_data_release(hx.get()), TSR_OK);
    ASSERT_EQ(CombineTask({hx.get()}, hy.get(), 1).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(AffineTask(hx.get(), 3).Submit(rt.get()), TSR_OK);
    EXPECT_EQ(Word0(hy.get()), CombineRef({5}, 1));

    /* Unregister waits and leaves the latest contents in the user's buffer. */
    hx.reset();
    EXPECT_EQ(x[0], 5u * 31 + 3);
    EXPECT_EQ(x[15], 115u);
}

TEST_P(DataP, AcquireWaitsForPendingWriter)
{
    std::vector<uint64_t> x(1, 0);
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    GateOpener opener(gate);
    ASSERT_EQ(SetTask(hx.get(), 1).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(AffineTask(hx.get(), 42, &gate).Submit(rt.get()), TSR_OK);
    std::thread open_thread([&] { gate.Open(); });
    void *ptr = nullptr;
    tsr_status_t st = tsr_data_acquire(hx.get(), TSR_R, &ptr, nullptr);
    open_thread.join();
    ASSERT_EQ(st, TSR_OK);
    EXPECT_EQ(*static_cast<uint64_t *>(ptr), 31u + 42);
    EXPECT_EQ(tsr_data_release(hx.get()), TSR_OK);
}

TEST_P(DataP, AcquireForWriteWaitsForPendingReaders)
{
    std::vector<uint64_t> x(1, 7), y(1, 0), z(1, 0);
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hy = tsr_test::RegisterVector(rt.get(), y);
    Data hz = tsr_test::RegisterVector(rt.get(), z);
    GateOpener opener(gate);
    ASSERT_EQ(CombineTask({hx.get()}, hy.get(), 3, &gate).Submit(rt.get()), TSR_OK);
    std::thread open_thread([&] { gate.Open(); });
    void *ptr = nullptr;
    tsr_status_t st = tsr_data_acquire(hx.get(), TSR_W, &ptr, nullptr);
    open_thread.join();
    ASSERT_EQ(st, TSR_OK);
    *static_cast<uint64_t *>(ptr) = 99;
    ASSERT_EQ(tsr_data_release(hx.get()), TSR_OK);
    ASSERT_EQ(CombineTask({hx.get()}, hz.get(), 4).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(Word0(hy.get()), CombineRef({7}, 3)) << "the reader saw the acquirer's write";
    EXPECT_EQ(Word0(hz.get()), CombineRef({99}, 4)) << "a W acquire counts as a write";
}

/* A conflicting task submitted during an acquire waits for the release, while
 * unrelated work goes on. */
TEST_P(DataP, ConflictingTasksWaitForRelease)
{
    std::vector<uint64_t> x(1, 1), y(1, 0), other(1, 0);
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hy = tsr_test::RegisterVector(rt.get(), y);
    Data hother = tsr_test::RegisterVector(rt.get(), other);

    void *ptr = nullptr;
    ASSERT_EQ(tsr_data_acquire(hx.get(), TSR_RW, &ptr, nullptr), TSR_OK);
    Future writer = AffineTask(hx.get(), 2).Run(rt.get());
    Future reader = CombineTask({hx.get()}, hy.get(), 0).Run(rt.get());
    Future unrelated = AffineTask(hother.get(), 9).Run(rt.get());
    ASSERT_TRUE(writer && reader && unrelated);
    ASSERT_EQ(tsr_future_wait(unrelated.get()), TSR_OK);
    EXPECT_EQ(tsr_future_test(writer.get()), TSR_PENDING);
    EXPECT_EQ(tsr_future_test(reader.get()), TSR_PENDING);
    *static_cast<uint64_t *>(ptr) = 10;
    ASSERT_EQ(tsr_data_release(hx.get()), TSR_OK);
    ASSERT_EQ(tsr_future_wait(reader.get()), TSR_OK);
    EXPECT_EQ(Word0(hx.get()), 10u * 31 + 2);
    EXPECT_EQ(Word0(hy.get()), CombineRef({10u * 31 + 2}, 0));
}

/* A read acquire lets readers through but holds back writers. */
TEST_P(DataP, ReadAcquireBlocksOnlyWriters)
{
    std::vector<uint64_t> x(1, 6), y(1, 0);
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hy = tsr_test::RegisterVector(rt.get(), y);

    void *ptr = nullptr;
    ASSERT_EQ(tsr_data_acquire(hx.get(), TSR_R, &ptr, nullptr), TSR_OK);
    Future reader = CombineTask({hx.get()}, hy.get(), 2).Run(rt.get());
    Future writer = SetTask(hx.get(), 50).Run(rt.get());
    ASSERT_TRUE(reader && writer);
    ASSERT_EQ(tsr_future_wait(reader.get()), TSR_OK);
    EXPECT_EQ(tsr_future_test(writer.get()), TSR_PENDING);
    EXPECT_EQ(*static_cast<uint64_t *>(ptr), 6u);
    ASSERT_EQ(tsr_data_release(hx.get()), TSR_OK);
    ASSERT_EQ(tsr_future_wait(writer.get()), TSR_OK);
    EXPECT_EQ(Word0(hy.get()), CombineRef({6}, 2));
    EXPECT_EQ(Word0(hx.get()), 50u);
}

TEST_P(DataP, ReadAcquireDoesNotWaitForReaders)
{
    std::vector<uint64_t> x(1, 4), y(1, 0);
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    Data hy = tsr_test::RegisterVector(rt.get(), y);
    GateOpener opener(gate);
    ASSERT_EQ(CombineTask({hx.get()}, hy.get(), 0, &gate).Submit(rt.get()), TSR_OK);
    void *ptr = nullptr;
    /* Would hang if it waited for the gated reader. */
    ASSERT_EQ(tsr_data_acquire(hx.get(), TSR_R, &ptr, nullptr), TSR_OK);
    EXPECT_EQ(*static_cast<uint64_t *>(ptr), 4u);
    EXPECT_EQ(tsr_data_release(hx.get()), TSR_OK);
    gate.Open();
    EXPECT_EQ(Word0(hy.get()), CombineRef({4}, 0));
}

TEST(Data, AcquireTwiceIsBusyAndReleaseNeedsAcquire)
{
    std::vector<uint64_t> x(4, 0);
    Runtime rt = StartDefault();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    std::string message = tsr_test::LastErrorOnFreshThread(
        [&] { EXPECT_EQ(tsr_data_release(hx.get()), TSR_EINVAL); });
    EXPECT_NE(message, "");

    ASSERT_EQ(tsr_data_acquire(hx.get(), TSR_R, nullptr, nullptr), TSR_OK);
    void *sentinel = reinterpret_cast<void *>(0x99);
    void *ptr = sentinel;
    EXPECT_EQ(tsr_data_acquire(hx.get(), TSR_R, &ptr, nullptr), TSR_EBUSY);
    EXPECT_EQ(ptr, sentinel) << "output written on error";
    EXPECT_EQ(tsr_data_acquire(hx.get(), TSR_RW, nullptr, nullptr), TSR_EBUSY);
    EXPECT_NE(std::string(tsr_last_error()), "");
    EXPECT_EQ(tsr_data_release(hx.get()), TSR_OK);
    EXPECT_EQ(tsr_data_release(hx.get()), TSR_EINVAL);
    EXPECT_EQ(tsr_data_acquire(hx.get(), TSR_W, nullptr, nullptr), TSR_OK);
    EXPECT_EQ(tsr_data_release(hx.get()), TSR_OK);
}

TEST(Data, BadArgumentsAreRejected)
{
    std::vector<uint64_t> x(4, 0);
    Runtime rt = StartDefault();
    ASSERT_TRUE(rt);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    tsr_data_t *sentinel = reinterpret_cast<tsr_data_t *>(0x77);
    tsr_data_t *out = sentinel;
    auto expect_einval = [](auto fn) {
        std::string message =
            tsr_test::LastErrorOnFreshThread([&] { EXPECT_EQ(fn(), TSR_EINVAL); });
        EXPECT_NE(message, "");
    };
    expect_einval([&] { return tsr_data_register(nullptr, x.data(), 8, &out); });
    expect_einval([&] { return tsr_data_register(rt.get(), nullptr, 8, &out); });
    expect_einval([&] { return tsr_data_register(rt.get(), x.data(), 0, &out); });
    expect_einval([&] { return tsr_data_register(rt.get(), x.data(), 8, nullptr); });
    expect_einval([&] { return tsr_data_create(nullptr, &out); });
    expect_einval([&] { return tsr_data_create(rt.get(), nullptr); });
    expect_einval([&] { return tsr_data_acquire(nullptr, TSR_R, nullptr, nullptr); });
    expect_einval(
        [&] { return tsr_data_acquire(hx.get(), static_cast<tsr_access_t>(0), nullptr, nullptr); });
    expect_einval(
        [&] { return tsr_data_acquire(hx.get(), static_cast<tsr_access_t>(8), nullptr, nullptr); });
    expect_einval([&] { return tsr_data_release(nullptr); });
    EXPECT_EQ(out, sentinel);
    tsr_data_unregister(nullptr);
}

TEST_P(DataP, UnregisterWaitsForUsers)
{
    std::vector<uint64_t> x(1, 3), y(1, 0);
    Gate gate;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    Data hy = tsr_test::RegisterVector(rt.get(), y);
    Data hx = tsr_test::RegisterVector(rt.get(), x);
    GateOpener opener(gate);
    ASSERT_EQ(CombineTask({hx.get()}, hy.get(), 8, &gate).Submit(rt.get()), TSR_OK);
    ASSERT_EQ(AffineTask(hx.get(), 5).Submit(rt.get()), TSR_OK);
    std::thread open_thread([&] { gate.Open(); });
    hx.reset();
    open_thread.join();
    EXPECT_EQ(x[0], 3u * 31 + 5) << "unregister returned before the writer ran";
    x[0] = 12345;
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(Word0(hy.get()), CombineRef({3}, 8));
}

TEST_P(DataP, RegisterAndUnregisterFromManyThreads)
{
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    const int n_threads = 4, per_thread = 200;
    tsr_test::RunOnThreads(n_threads, [&](int t) {
        for (int i = 0; i < per_thread; i++) {
            std::vector<uint64_t> x(1, static_cast<uint64_t>(i));
            Data hx = tsr_test::RegisterVector(rt.get(), x);
            if (!hx) {
                return;
            }
            EXPECT_EQ(AffineTask(hx.get(), static_cast<uint64_t>(t)).Submit(rt.get()), TSR_OK);
            hx.reset();
            EXPECT_EQ(x[0], static_cast<uint64_t>(i) * 31 + static_cast<uint64_t>(t));
        }
    });
}

/* ---- Dynamic-size outputs ---------------------------------------------------- */

struct FilterArg {
    uint32_t modulus;
    std::atomic<int> *n_errors;
};

/* bufs[0] (R): uint32 values; bufs[1] (W, created): the values divisible by modulus. */
tsr_status_t FilterKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    FilterArg a = tsr_test::ArgAs<FilterArg>(arg);
    const uint32_t *in = static_cast<const uint32_t *>(bufs[0].ptr);
    size_t n_in = bufs[0].n_bytes / sizeof(uint32_t);
    size_t n_out = 0;
    for (size_t i = 0; i < n_in; i++) {
        n_out += in[i] % a.modulus == 0;
    }
    if (bufs[1].ptr != nullptr || bufs[1].n_bytes != 0) {
        a.n_errors->fetch_add(1);
    }
    void *ptr = nullptr;
    tsr_status_t st = tsr_task_ctx_alloc(ctx, 1, n_out * sizeof(uint32_t), &ptr);
    if (st != TSR_OK) {
        tsr_task_ctx_fail(ctx, "alloc: %s", tsr_status_str(st));
        return st;
    }
    uint32_t *out = static_cast<uint32_t *>(ptr);
    for (size_t i = 0; i < n_in; i++) {
        if (in[i] % a.modulus == 0) {
            *out++ = in[i];
        }
    }
    return TSR_OK;
}

/* bufs[0] (R): uint32 values; bufs[1] (W): {count, sum}. */
tsr_status_t SumKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *)
{
    const uint32_t *in = static_cast<const uint32_t *>(bufs[0].ptr);
    size_t n = bufs[0].n_bytes / sizeof(uint32_t);
    uint64_t *out = static_cast<uint64_t *>(bufs[1].ptr);
    out[0] = n;
    out[1] = 0;
    for (size_t i = 0; i < n; i++) {
        out[1] += in[i];
    }
    return TSR_OK;
}

const tsr_codelet_t kFilterCodelet = tsr_test::MakeCodelet("filter", FilterKernel, {TSR_R, TSR_W});
const tsr_codelet_t kSumCodelet = tsr_test::MakeCodelet("sum", SumKernel, {TSR_R, TSR_W});

TEST_P(DataP, FilterProducesDynamicOutput)
{
    const uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    std::atomic<int> n_errors{0};
    for (int round = 0; round < 20; round++) {
        std::vector<uint32_t> in(1 + rng() % 5000);
        for (uint32_t &v : in) {
            v = static_cast<uint32_t>(rng() % 100000);
        }
        in[0] = 0; /* at least one value passes */
        uint32_t modulus = 2 + static_cast<uint32_t>(rng() % 9);
        std::vector<uint32_t> expected;
        std::copy_if(in.begin(), in.end(), std::back_inserter(expected),
                     [&](uint32_t v) { return v % modulus == 0; });
        std::vector<uint64_t> summary(2, 0);
        Data hin = tsr_test::RegisterVector(rt.get(), in);
        Data hout = tsr_test::CreateData(rt.get());
        Data hsum = tsr_test::RegisterVector(rt.get(), summary);
        ASSERT_TRUE(hin && hout && hsum);
        EXPECT_EQ(tsr_data_size(hout.get()), 0u);
        ASSERT_EQ(Task(&kFilterCodelet)
                      .Use(hin.get())
                      .Use(hout.get())
                      .Arg(FilterArg{modulus, &n_errors})
                      .Submit(rt.get()),
                  TSR_OK);
        ASSERT_EQ(Task(&kSumCodelet).Use(hout.get()).Use(hsum.get()).Submit(rt.get()), TSR_OK);

        void *ptr = nullptr;
        size_t n_bytes = 0;
        ASSERT_EQ(tsr_data_acquire(hout.get(), TSR_R, &ptr, &n_bytes), TSR_OK);
        ASSERT_EQ(n_bytes, expected.size() * sizeof(uint32_t)) << "round " << round;
        EXPECT_EQ(std::memcmp(ptr, expected.data(), n_bytes), 0) << "round " << round;
        ASSERT_EQ(tsr_data_release(hout.get()), TSR_OK);
        EXPECT_EQ(tsr_data_size(hout.get()), n_bytes);
        hsum.reset();
        EXPECT_EQ(summary[0], expected.size());
        EXPECT_EQ(summary[1], std::accumulate(expected.begin(), expected.end(), uint64_t{0}));
    }
    EXPECT_EQ(n_errors.load(), 0) << "a fresh dynamic output was not empty";
}

struct RecordArg {
    void **ptr;
    size_t *n_bytes;
};

tsr_status_t RecordKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *arg)
{
    RecordArg a = tsr_test::ArgAs<RecordArg>(arg);
    *a.ptr = bufs[0].ptr;
    *a.n_bytes = bufs[0].n_bytes;
    return TSR_OK;
}

TEST(Data, CreatedHandleIsEmptyUntilWritten)
{
    static const tsr_codelet_t record = tsr_test::MakeCodelet("record", RecordKernel, {TSR_R});
    Runtime rt = StartDefault();
    ASSERT_TRUE(rt);
    Data h = tsr_test::CreateData(rt.get());
    ASSERT_TRUE(h);
    void *seen_ptr = reinterpret_cast<void *>(0x1);
    size_t seen_size = 1234;
    Future f = Task(&record).Use(h.get()).Arg(RecordArg{&seen_ptr, &seen_size}).Run(rt.get());
    ASSERT_TRUE(f);
    ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK);
    EXPECT_EQ(seen_ptr, nullptr);
    EXPECT_EQ(seen_size, 0u);
    void *ptr = reinterpret_cast<void *>(0x1);
    size_t n_bytes = 1234;
    ASSERT_EQ(tsr_data_acquire(h.get(), TSR_R, &ptr, &n_bytes), TSR_OK);
    EXPECT_EQ(ptr, nullptr);
    EXPECT_EQ(n_bytes, 0u);
    ASSERT_EQ(tsr_data_release(h.get()), TSR_OK);
    EXPECT_EQ(tsr_data_size(h.get()), 0u);
}

struct FillArg {
    uint32_t first_size;  /* bytes of the first allocation */
    uint32_t second_size; /* 0: no second allocation (resize) */
    uint8_t seed;
};

/* bufs[0] (W, created): allocate first_size bytes, fill them with seed + i,
 * optionally resize to second_size and fill any new bytes the same way. */
tsr_status_t FillKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    FillArg a = tsr_test::ArgAs<FillArg>(arg);
    void *ptr = nullptr;
    if (tsr_task_ctx_alloc(ctx, 0, a.first_size, &ptr) != TSR_OK || ptr == nullptr) {
        tsr_task_ctx_fail(ctx, "first alloc failed");
        return TSR_ENOMEM;
    }
    uint8_t *bytes = static_cast<uint8_t *>(ptr);
    for (uint32_t i = 0; i < a.first_size; i++) {
        bytes[i] = static_cast<uint8_t>(a.seed + i);
    }
    if (a.second_size == 0) {
        return TSR_OK;
    }
    if (tsr_task_ctx_alloc(ctx, 0, a.second_size, &ptr) != TSR_OK) {
        tsr_task_ctx_fail(ctx, "resize failed");
        return TSR_ENOMEM;
    }
    bytes = static_cast<uint8_t *>(ptr);
    for (uint32_t i = a.first_size; i < a.second_size; i++) {
        bytes[i] = static_cast<uint8_t>(a.seed + i);
    }
    return TSR_OK;
}

const tsr_codelet_t kFillCodelet = tsr_test::MakeCodelet("fill", FillKernel, {TSR_W});

void ExpectFilled(tsr_data_t *h, size_t n_bytes, uint8_t seed)
{
    std::optional<std::vector<uint8_t>> bytes = tsr_test::ReadBytes(h);
    ASSERT_TRUE(bytes);
    ASSERT_EQ(bytes->size(), n_bytes);
    for (size_t i = 0; i < n_bytes; i++) {
        ASSERT_EQ((*bytes)[i], static_cast<uint8_t>(seed + i)) << "byte " << i;
    }
}

TEST(Data, AllocResizeKeepsThePrefix)
{
    Runtime rt = StartDefault();
    ASSERT_TRUE(rt);
    Data grow = tsr_test::CreateData(rt.get());
    Data shrink = tsr_test::CreateData(rt.get());
    ASSERT_TRUE(grow && shrink);
    Future g = Task(&kFillCodelet).Use(grow.get()).Arg(FillArg{16, 4096, 3}).Run(rt.get());
    Future s = Task(&kFillCodelet).Use(shrink.get()).Arg(FillArg{64, 8, 9}).Run(rt.get());
    ASSERT_TRUE(g && s);
    ASSERT_EQ(tsr_future_wait(g.get()), TSR_OK) << tsr_future_message(g.get());
    ASSERT_EQ(tsr_future_wait(s.get()), TSR_OK) << tsr_future_message(s.get());
    ExpectFilled(grow.get(), 4096, 3);
    ExpectFilled(shrink.get(), 8, 9);
}

TEST(Data, LaterWriterReallocates)
{
    static const tsr_codelet_t record = tsr_test::MakeCodelet("record", RecordKernel, {TSR_RW});
    Runtime rt = StartDefault();
    ASSERT_TRUE(rt);
    Data h = tsr_test::CreateData(rt.get());
    ASSERT_TRUE(h);
    ASSERT_EQ(Task(&kFillCodelet).Use(h.get()).Arg(FillArg{100, 0, 1}).Submit(rt.get()), TSR_OK);
    void *seen_ptr = nullptr;
    size_t seen_size = 0;
    ASSERT_EQ(Task(&record).Use(h.get()).Arg(RecordArg{&seen_ptr, &seen_size}).Submit(rt.get()),
              TSR_OK);
    ASSERT_EQ(Task(&kFillCodelet).Use(h.get()).Arg(FillArg{40, 0, 7}).Submit(rt.get()), TSR_OK);
    ExpectFilled(h.get(), 40, 7);
    EXPECT_NE(seen_ptr, nullptr) << "an RW task did not see the earlier output";
    EXPECT_EQ(seen_size, 100u);
}

struct AllocErrorsArg {
    tsr_status_t *statuses; /* 4 results */
};

/* bufs: 0 created (R), 1 registered (W), 2 created (W). */
tsr_status_t AllocErrorsKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    AllocErrorsArg a = tsr_test::ArgAs<AllocErrorsArg>(arg);
    void *ptr = nullptr;
    a.statuses[0] = tsr_task_ctx_alloc(ctx, 0, 8, &ptr);
    a.statuses[1] = tsr_task_ctx_alloc(ctx, 1, 8, &ptr);
    a.statuses[2] = tsr_task_ctx_alloc(ctx, 3, 8, &ptr);
    a.statuses[3] = tsr_task_ctx_alloc(ctx, 2, 8, &ptr);
    if (a.statuses[3] == TSR_OK) {
        std::memset(ptr, 0x5a, 8);
    }
    return TSR_OK;
}

TEST(Data, AllocRejectsBadUse)
{
    static const tsr_codelet_t codelet =
        tsr_test::MakeCodelet("alloc_errors", AllocErrorsKernel, {TSR_R, TSR_W, TSR_W});
    std::vector<uint64_t> reg(2, 0);
    tsr_status_t statuses[4] = {TSR_OK, TSR_OK, TSR_OK, TSR_EBUSY};
    Runtime rt = StartDefault();
    ASSERT_TRUE(rt);
    Data created_r = tsr_test::CreateData(rt.get());
    Data registered = tsr_test::RegisterVector(rt.get(), reg);
    Data created_w = tsr_test::CreateData(rt.get());
    Future f = Task(&codelet)
                   .Use(created_r.get())
                   .Use(registered.get())
                   .Use(created_w.get())
                   .Arg(AllocErrorsArg{statuses})
                   .Run(rt.get());
    ASSERT_TRUE(f);
    ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK);
    EXPECT_EQ(statuses[0], TSR_EINVAL) << "alloc of a read-only handle";
    EXPECT_EQ(statuses[1], TSR_EINVAL) << "alloc of a registered user buffer";
    EXPECT_EQ(statuses[2], TSR_EINVAL) << "alloc of an index out of range";
    EXPECT_EQ(statuses[3], TSR_OK);
    std::optional<std::vector<uint8_t>> bytes = tsr_test::ReadBytes(created_w.get());
    ASSERT_TRUE(bytes);
    EXPECT_EQ(*bytes, std::vector<uint8_t>(8, 0x5a));
}

struct AppendArg {
    uint64_t value;
};

/* bufs[0] (R): uint64 values (maybe empty); bufs[1] (W, created): them + value. */
tsr_status_t AppendKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    AppendArg a = tsr_test::ArgAs<AppendArg>(arg);
    size_t n = bufs[0].n_bytes / sizeof(uint64_t);
    void *ptr = nullptr;
    tsr_status_t st = tsr_task_ctx_alloc(ctx, 1, (n + 1) * sizeof(uint64_t), &ptr);
    if (st != TSR_OK) {
        return st;
    }
    uint64_t *out = static_cast<uint64_t *>(ptr);
    if (n > 0) {
        std::memcpy(out, bufs[0].ptr, n * sizeof(uint64_t));
    }
    out[n] = a.value;
    return TSR_OK;
}

TEST_P(DataP, ChainOfDynamicOutputsGrows)
{
    static const tsr_codelet_t append =
        tsr_test::MakeCodelet("append", AppendKernel, {TSR_R, TSR_W});
    const size_t n = 64;
    Runtime rt = Start();
    ASSERT_TRUE(rt);
    std::vector<Data> hs;
    for (size_t i = 0; i <= n; i++) {
        hs.push_back(tsr_test::CreateData(rt.get()));
        ASSERT_TRUE(hs.back());
    }
    std::vector<uint64_t> expected;
    for (size_t i = 0; i < n; i++) {
        uint64_t value = tsr_test::Mix64(i);
        expected.push_back(value);
        ASSERT_EQ(Task(&append)
                      .Use(hs[i].get())
                      .Use(hs[i + 1].get())
                      .Arg(AppendArg{value})
                      .Submit(rt.get()),
                  TSR_OK);
    }
    std::optional<std::vector<uint64_t>> words = tsr_test::ReadWords(hs[n].get());
    ASSERT_TRUE(words);
    EXPECT_EQ(*words, expected);
    /* Drop the handles in submission order: unregister of runtime-owned buffers frees them. */
    for (Data &h : hs) {
        h.reset();
    }
}

INSTANTIATE_TEST_SUITE_P(Policies, DataP, testing::ValuesIn(tsr_test::AllRtParams()),
                         tsr_test::RtParamName);

}  // namespace
