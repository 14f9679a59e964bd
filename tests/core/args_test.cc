/* Argument checking at the public boundary of tsr_task_submit: every bad
 * descriptor is refused with the documented status, a message in
 * tsr_last_error(), no output written and nothing submitted. */
#include <functional>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::Data;
using tsr_test::Runtime;

tsr_status_t NopKernel(tsr_task_ctx_t *, const tsr_buffer_t *, const void *)
{
    return TSR_OK;
}

class Args : public testing::Test {
protected:
    void SetUp() override
    {
        rt_ = tsr_test::StartRuntime(2, TSR_SCHED_WS);
        ASSERT_TRUE(rt_);
        other_rt_ = tsr_test::StartRuntime(1, TSR_SCHED_EAGER);
        ASSERT_TRUE(other_rt_);
        for (auto &buf : bufs_) {
            buf.assign(4, 0);
            handles_.push_back(tsr_test::RegisterVector(rt_.get(), buf));
            raw_.push_back(handles_.back().get());
        }
        foreign_ = tsr_test::RegisterVector(other_rt_.get(), foreign_buf_);
        one_ = tsr_test::MakeCodelet("one", NopKernel, {TSR_RW});
        dynamic_ = tsr_test::MakeDynamicCodelet("dynamic", NopKernel);
    }

    void TearDown() override
    {
        if (!rt_) {
            return;
        }
        tsr_runtime_stats_t stats = tsr_test::Stats(rt_.get());
        EXPECT_EQ(stats.n_submitted, n_expected_submitted_) << "a refused task was submitted";
        foreign_.reset();
        handles_.clear();
    }

    /* Submit `desc` on a fresh thread; expect `expected`, a message, and no
     * future written. */
    void ExpectRefused(const tsr_task_desc_t &desc, tsr_status_t expected, const char *what,
                       tsr_runtime_t *rt = nullptr)
    {
        SCOPED_TRACE(what);
        tsr_future_t *sentinel = reinterpret_cast<tsr_future_t *>(0x5150);
        tsr_future_t *future = sentinel;
        tsr_status_t st = TSR_OK;
        std::string message = tsr_test::LastErrorOnFreshThread(
            [&] { st = tsr_task_submit(rt != nullptr ? rt : rt_.get(), &desc, &future); });
        EXPECT_EQ(st, expected) << tsr_status_str(st);
        EXPECT_EQ(future, sentinel) << "future_out written on error";
        EXPECT_NE(message, "") << "no tsr_last_error() message";
        if (st == TSR_OK && future != sentinel) {
            n_expected_submitted_++;
            tsr_future_release(future);
        }
    }

    tsr_task_desc_t Desc(const tsr_codelet_t *codelet, uint32_t n_handles,
                         const tsr_access_t *modes = nullptr)
    {
        tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
        desc.codelet = codelet;
        desc.handles = raw_.data();
        desc.n_handles = n_handles;
        desc.modes = modes;
        return desc;
    }

    Runtime rt_;
    Runtime other_rt_;
    std::vector<uint64_t> bufs_[TSR_MAX_BUFFERS + 1];
    std::vector<uint64_t> foreign_buf_ = std::vector<uint64_t>(4, 0);
    std::vector<Data> handles_;
    std::vector<tsr_data_t *> raw_;
    Data foreign_;
    tsr_codelet_t one_;
    tsr_codelet_t dynamic_;
    uint64_t n_expected_submitted_ = 0;
};

TEST_F(Args, NullRuntimeDescriptorOrCodelet)
{
    tsr_task_desc_t desc = Desc(&one_, 1);
    {
        tsr_future_t *future = nullptr;
        std::string message = tsr_test::LastErrorOnFreshThread(
            [&] { EXPECT_EQ(tsr_task_submit(nullptr, &desc, &future), TSR_EINVAL); });
        EXPECT_NE(message, "");
        message = tsr_test::LastErrorOnFreshThread(
            [&] { EXPECT_EQ(tsr_task_submit(rt_.get(), nullptr, &future), TSR_EINVAL); });
        EXPECT_NE(message, "");
        EXPECT_EQ(future, nullptr);
    }
    desc.codelet = nullptr;
    ExpectRefused(desc, TSR_EINVAL, "null codelet");
}

TEST_F(Args, HandleCountMustMatchCodelet)
{
    ExpectRefused(Desc(&one_, 0), TSR_EINVAL, "too few handles");
    ExpectRefused(Desc(&one_, 2), TSR_EINVAL, "too many handles");
    tsr_task_desc_t desc = Desc(&one_, 1);
    desc.handles = nullptr;
    ExpectRefused(desc, TSR_EINVAL, "null handle array");
    tsr_data_t *null_handle[1] = {nullptr};
    desc.handles = null_handle;
    ExpectRefused(desc, TSR_EINVAL, "null handle");
}

TEST_F(Args, TooManyBuffers)
{
    std::vector<tsr_access_t> modes(TSR_MAX_BUFFERS + 1, TSR_R);
    ExpectRefused(Desc(&dynamic_, TSR_MAX_BUFFERS + 1, modes.data()), TSR_EINVAL,
                  "dynamic codelet with 17 handles");
    tsr_codelet_t big = tsr_test::MakeDynamicCodelet("big", NopKernel);
    big.n_buffers = TSR_MAX_BUFFERS + 1;
    ExpectRefused(Desc(&big, TSR_MAX_BUFFERS + 1), TSR_EINVAL, "codelet with 17 buffers");
    big.n_buffers = -2;
    ExpectRefused(Desc(&big, 0), TSR_EINVAL, "codelet with a negative buffer count");
    /* The maximum itself is fine. */
    tsr_future_t *future = nullptr;
    tsr_task_desc_t ok = Desc(&dynamic_, TSR_MAX_BUFFERS, modes.data());
    ASSERT_EQ(tsr_task_submit(rt_.get(), &ok, &future), TSR_OK) << tsr_last_error();
    n_expected_submitted_++;
    EXPECT_EQ(tsr_future_wait(future), TSR_OK);
    tsr_future_release(future);
}

TEST_F(Args, ModesAreChecked)
{
    ExpectRefused(Desc(&dynamic_, 2, nullptr), TSR_EINVAL, "dynamic codelet without modes");
    const tsr_access_t bad_zero[2] = {TSR_R, static_cast<tsr_access_t>(0)};
    ExpectRefused(Desc(&dynamic_, 2, bad_zero), TSR_EINVAL, "mode 0");
    const tsr_access_t bad_big[1] = {static_cast<tsr_access_t>(4)};
    ExpectRefused(Desc(&dynamic_, 1, bad_big), TSR_EINVAL, "mode 4");
    tsr_codelet_t bad_codelet = tsr_test::MakeCodelet("bad_mode", NopKernel, {TSR_R});
    bad_codelet.modes[0] = static_cast<tsr_access_t>(9);
    ExpectRefused(Desc(&bad_codelet, 1), TSR_EINVAL, "codelet mode 9");
}

TEST_F(Args, ArgumentBlobIsChecked)
{
    tsr_task_desc_t desc = Desc(&one_, 1);
    desc.arg = nullptr;
    desc.arg_size = 8;
    ExpectRefused(desc, TSR_EINVAL, "null arg with a size");
    std::vector<unsigned char> blob(TSR_TASK_ARG_MAX + 1, 1);
    desc.arg = blob.data();
    desc.arg_size = blob.size();
    ExpectRefused(desc, TSR_EINVAL, "arg_size above TSR_TASK_ARG_MAX");
}

TEST_F(Args, DepsAreChecked)
{
    tsr_task_desc_t desc = Desc(&one_, 1);
    desc.deps = nullptr;
    desc.n_deps = 2;
    ExpectRefused(desc, TSR_EINVAL, "null deps with a count");
    tsr_future_t *null_dep[1] = {nullptr};
    desc.deps = null_dep;
    desc.n_deps = 1;
    ExpectRefused(desc, TSR_EINVAL, "null future in deps");
}

TEST_F(Args, CodeletWithoutCpuImplementationHasNoDevice)
{
    tsr_codelet_t cuda_only = tsr_test::MakeCodelet("cuda_only", nullptr, {TSR_RW});
    cuda_only.impl[TSR_DEVICE_CUDA] = NopKernel;
    ExpectRefused(Desc(&cuda_only, 1), TSR_ENODEV, "CUDA-only codelet on a CPU-only runtime");
    tsr_codelet_t none = tsr_test::MakeCodelet("no_impl", nullptr, {TSR_RW});
    tsr_task_desc_t desc = Desc(&none, 1);
    tsr_future_t *future = reinterpret_cast<tsr_future_t *>(0x5150);
    tsr_status_t st = tsr_task_submit(rt_.get(), &desc, &future);
    EXPECT_TRUE(st == TSR_ENODEV || st == TSR_EINVAL) << tsr_status_str(st);
    EXPECT_EQ(future, reinterpret_cast<tsr_future_t *>(0x5150));
}

TEST_F(Args, HandleOfAnotherRuntime)
{
    tsr_task_desc_t desc = Desc(&one_, 1);
    tsr_data_t *foreign[1] = {foreign_.get()};
    desc.handles = foreign;
    ExpectRefused(desc, TSR_EINVAL, "handle of another runtime");
    /* Mixed with handles of the right runtime. */
    tsr_data_t *mixed[3] = {raw_[0], foreign_.get(), raw_[1]};
    const tsr_access_t modes[3] = {TSR_R, TSR_R, TSR_W};
    tsr_task_desc_t dyn = Desc(&dynamic_, 3, modes);
    dyn.handles = mixed;
    ExpectRefused(dyn, TSR_EINVAL, "mixed handles");
}

TEST_F(Args, FutureOfAnotherRuntimeAsDependency)
{
    tsr_future_t *other = nullptr;
    tsr_task_desc_t empty = TSR_TASK_DESC_INIT;
    empty.codelet = &tsr_test::kEmptyCodelet;
    ASSERT_EQ(tsr_task_submit(other_rt_.get(), &empty, &other), TSR_OK);
    EXPECT_EQ(tsr_future_wait(other), TSR_OK);
    tsr_task_desc_t desc = Desc(&one_, 1);
    desc.deps = &other;
    desc.n_deps = 1;
    tsr_future_t *future = nullptr;
    tsr_status_t st = tsr_task_submit(rt_.get(), &desc, &future);
    /* Not spelled out by the header: refusing (EINVAL) or accepting are both sane. */
    if (st == TSR_OK) {
        n_expected_submitted_++;
        EXPECT_EQ(tsr_future_wait(future), TSR_OK);
        tsr_future_release(future);
    } else {
        EXPECT_EQ(st, TSR_EINVAL);
    }
    tsr_future_release(other);
}

TEST_F(Args, ExtremePrioritiesAreAccepted)
{
    for (int32_t priority : {INT32_MIN, -1, 0, 1, INT32_MAX}) {
        tsr_task_desc_t desc = Desc(&one_, 1);
        desc.priority = priority;
        tsr_future_t *future = nullptr;
        ASSERT_EQ(tsr_task_submit(rt_.get(), &desc, &future), TSR_OK) << priority;
        n_expected_submitted_++;
        EXPECT_EQ(tsr_future_wait(future), TSR_OK);
        tsr_future_release(future);
    }
}

}  // namespace
