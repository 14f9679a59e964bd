/* Without a usable GPU, tsr_init succeeds and the runtime has no CUDA device:
 * tasks run on the CPU and pins to CUDA are refused with TSR_ENODEV. Built in every
 * configuration (a build without CUDA has no CUDA device either). CTest runs it with
 * CUDA_VISIBLE_DEVICES=-1, which hides every GPU from the process, so it checks the
 * no-device path on GPU machines too; where a GPU is visible anyway, it skips. */
#include <tessera.h>
#if TSR_HAVE_CUDA
#include <cuda_runtime.h>
#include <tessera/cuda.h>
#endif

#include <string>

#include "common/test_util.h"

namespace {

using tsr_test::Future;
using tsr_test::Runtime;
using tsr_test::Task;

/* Number of GPUs this process can see through the CUDA runtime (0 without CUDA,
 * a driver or a device). */
int VisibleGpus()
{
#if TSR_HAVE_CUDA
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // "no device" / "no driver" is the expected answer here
        return 0;
    }
    return n;
#else
    return 0;
#endif
}

tsr_status_t RecordKind(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    *tsr_test::ArgAs<tsr_device_kind_t *>(arg) = tsr_task_ctx_device_kind(ctx);
    return TSR_OK;
}

tsr_codelet_t TwoImplCodelet()
{
    tsr_codelet_t cl = {};
    cl.name = "cpu_or_cuda";
    cl.impl[TSR_DEVICE_CPU] = RecordKind;
    cl.impl[TSR_DEVICE_CUDA] = RecordKind;
    return cl;
}

tsr_codelet_t CudaOnlyCodelet()
{
    tsr_codelet_t cl = {};
    cl.name = "cuda_only";
    cl.impl[TSR_DEVICE_CUDA] = RecordKind;
    return cl;
}

const tsr_codelet_t kTwoImpl = TwoImplCodelet();
const tsr_codelet_t kCudaOnly = CudaOnlyCodelet();

TEST(CudaAbsent, InitSucceedsWithZeroCudaDevices)
{
    int n_gpus = VisibleGpus();
    if (n_gpus > 0) {
        GTEST_SKIP() << n_gpus << " GPU(s) visible to this process";
    }
    Runtime rt = tsr_test::StartRuntime(tsr_test::TestConfig(2, TSR_SCHED_DEFAULT));
    ASSERT_TRUE(rt);
    uint32_t n_devices = tsr_runtime_n_devices(rt.get());
    ASSERT_GE(n_devices, 1u);
    for (uint32_t d = 0; d < n_devices; d++) {
        tsr_device_info_t info;
        ASSERT_EQ(tsr_runtime_device_info(rt.get(), d, &info), TSR_OK);
        EXPECT_NE(info.kind, static_cast<uint32_t>(TSR_DEVICE_CUDA)) << "device " << info.name;
        EXPECT_NE(std::string(info.name).rfind("cuda", 0), 0u) << "device " << info.name;
    }
    tsr_device_info_t cpu;
    ASSERT_EQ(tsr_runtime_device_info(rt.get(), 0, &cpu), TSR_OK);
    EXPECT_EQ(cpu.kind, static_cast<uint32_t>(TSR_DEVICE_CPU));
}

TEST(CudaAbsent, TasksRunOnCpuAndCudaPinsAreRefused)
{
    int n_gpus = VisibleGpus();
    if (n_gpus > 0) {
        GTEST_SKIP() << n_gpus << " GPU(s) visible to this process";
    }
    Runtime rt = tsr_test::StartRuntime(tsr_test::TestConfig(2, TSR_SCHED_DEFAULT));
    ASSERT_TRUE(rt);
    tsr_device_kind_t kind = TSR_DEVICE_KIND_COUNT;
    Task task(&kTwoImpl);
    task.Arg(&kind);
    Future f = task.Run(rt.get());
    ASSERT_TRUE(f);
    ASSERT_EQ(tsr_future_wait(f.get()), TSR_OK) << tsr_future_message(f.get());
    EXPECT_EQ(kind, TSR_DEVICE_CPU);

    tsr_task_desc_t desc = task.Desc();
    desc.pin = TSR_PIN_KIND;
    desc.pin_value = TSR_DEVICE_CUDA;
    EXPECT_EQ(tsr_task_submit(rt.get(), &desc, nullptr), TSR_ENODEV);
    Task cuda_only(&kCudaOnly);
    cuda_only.Arg(&kind);
    EXPECT_EQ(cuda_only.Submit(rt.get()), TSR_ENODEV);
    EXPECT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(tsr_test::Stats(rt.get()).n_submitted, 1u);
}

#if TSR_HAVE_CUDA
/* <tessera/cuda.h> works in any implementation; on the CPU, with no GPU at all
 * (CUDA's error names and texts need no driver). The argument is the CUDA error
 * to report; the stream seen is recorded. */
struct ResultArg {
    cudaError_t err;
    cudaStream_t *stream_seen;
};

tsr_status_t ReportCudaError(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    ResultArg a = tsr_test::ArgAs<ResultArg>(arg);
    *a.stream_seen = tsr_task_ctx_cuda_stream(ctx);
    return tsr_cuda_result(ctx, a.err);
}

const tsr_codelet_t kReportCudaError =
    tsr_test::MakeCodelet("report_cuda_error", ReportCudaError, {});

// tsr_cuda_result: cudaSuccess is TSR_OK; a CUDA error fails the task with
// TSR_EBACKEND and CUDA's own name and text; tsr_task_ctx_cuda_stream is the
// (null) stream of a CPU implementation.
TEST(CudaHeader, ResultTurnsCudaErrorsIntoTaskFailures)
{
    Runtime rt = tsr_test::StartRuntime(tsr_test::TestConfig(1, TSR_SCHED_WS));
    ASSERT_TRUE(rt);
    cudaStream_t poison = reinterpret_cast<cudaStream_t>(0x1);
    for (cudaError_t err : {cudaSuccess, cudaErrorInvalidValue, cudaErrorMemoryAllocation}) {
        SCOPED_TRACE(static_cast<int>(err));
        cudaStream_t seen = poison;
        Future f = Task(&kReportCudaError).Arg(ResultArg{err, &seen}).Run(rt.get());
        ASSERT_TRUE(f);
        tsr_status_t st = tsr_future_wait(f.get());
        EXPECT_EQ(seen, nullptr);
        if (err == cudaSuccess) {
            EXPECT_EQ(st, TSR_OK) << tsr_future_message(f.get());
            continue;
        }
        EXPECT_EQ(st, TSR_EBACKEND);
        std::string message = tsr_future_message(f.get());
        EXPECT_NE(message.find(cudaGetErrorName(err)), std::string::npos) << message;
        EXPECT_NE(message.find(cudaGetErrorString(err)), std::string::npos) << message;
    }
}
#endif

}  // namespace
