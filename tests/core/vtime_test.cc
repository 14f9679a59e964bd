// Virtual-time simulation: platform files, task and copy durations, placement on a
// simulated GPU, determinism.
#include <gtest/gtest.h>
#include <tessera.h>

#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

struct RtDeleter {
    void operator()(tsr_runtime_t *rt) const { tsr_shutdown(rt); }
};
using Rt = std::unique_ptr<tsr_runtime_t, RtDeleter>;

// A platform file in a temporary directory, removed at the end of the test.
class Platform {
public:
    explicit Platform(const std::string &text)
    {
        char dir[] = "/tmp/tsr-vt-XXXXXX";
        EXPECT_NE(mkdtemp(dir), nullptr);
        dir_ = dir;
        path_ = dir_ + "/platform.txt";
        std::ofstream(path_) << text;
    }
    ~Platform()
    {
        std::remove(path_.c_str());
        rmdir(dir_.c_str());
    }
    const char *path() const { return path_.c_str(); }

private:
    std::string dir_, path_;
};

tsr_status_t Start(const Platform &p, tsr_sched_policy_t policy, Rt *out,
                   const char *trace = nullptr)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.simulate = p.path();
    cfg.policy = policy;
    cfg.model_dir = "";
    cfg.trace_path = trace;
    tsr_runtime_t *rt = nullptr;
    tsr_status_t st = tsr_init(&cfg, &rt);
    out->reset(rt);
    return st;
}

tsr_status_t NeverRuns(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)bufs;
    (void)arg;
    tsr_task_ctx_fail(ctx, "a simulation ran a kernel");
    return TSR_ETASK;
}

tsr_codelet_t Codelet(const char *name, bool cpu, bool gpu, tsr_access_t mode = TSR_RW)
{
    tsr_codelet_t cl = {};
    cl.name = name;
    cl.impl[TSR_DEVICE_CPU] = cpu ? NeverRuns : nullptr;
    cl.impl[TSR_DEVICE_CUDA] = gpu ? NeverRuns : nullptr;
    cl.n_buffers = 1;
    cl.modes[0] = mode;
    return cl;
}

tsr_data_t *Virtual(tsr_runtime_t *rt, size_t n_bytes)
{
    tsr_data_t *h = nullptr;
    EXPECT_EQ(tsr_data_register(rt, nullptr, n_bytes, &h), TSR_OK) << tsr_last_error();
    return h;
}

void Submit(tsr_runtime_t *rt, const tsr_codelet_t *cl, tsr_data_t *h)
{
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;
    d.codelet = cl;
    d.handles = &h;
    d.n_handles = 1;
    ASSERT_EQ(tsr_task_submit(rt, &d, nullptr), TSR_OK) << tsr_last_error();
}

tsr_sim_report_t Report(tsr_runtime_t *rt)
{
    tsr_sim_report_t r;
    EXPECT_EQ(tsr_sim_report(rt, &r), TSR_OK);
    return r;
}

TEST(Simulation, BadPlatformsAreRejectedWithTheirLine)
{
    const char *bad[] = {"cpu cores=2\ngpu count=x\n", "cpu cores=2\nnetwork speed=1\n",
                         "cpu cores=0\n", "link host-gpu bandwidth=fast\n", "task gemm cpu\n"};
    for (const char *text : bad) {
        Platform p(text);
        Rt rt;
        EXPECT_EQ(Start(p, TSR_SCHED_DEFAULT, &rt), TSR_EINVAL) << text;
        EXPECT_NE(std::string(tsr_last_error()).find("platform.txt:"), std::string::npos)
            << tsr_last_error();
    }
    tsr_config_t cfg = TSR_CONFIG_INIT;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.simulate = "/nonexistent/platform.txt";
    tsr_runtime_t *rt = nullptr;
    EXPECT_EQ(tsr_init(&cfg, &rt), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("cannot be read"), std::string::npos);
}

TEST(Simulation, ReportNeedsASimulation)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.n_cpu_workers = 1;
    tsr_runtime_t *rt = nullptr;
    ASSERT_EQ(tsr_init(&cfg, &rt), TSR_OK);
    tsr_sim_report_t r;
    EXPECT_EQ(tsr_sim_report(rt, &r), TSR_EINVAL);
    tsr_data_t *h = nullptr;
    EXPECT_EQ(tsr_data_register(rt, nullptr, 64, &h), TSR_EINVAL) << "no memory: only simulated";
    tsr_shutdown(rt);
}

TEST(Simulation, AChainTakesTheSumOfItsTasks)
{
    Platform p("cpu cores=3\ntask step cpu=2ms\n");
    Rt rt;
    ASSERT_EQ(Start(p, TSR_SCHED_WS, &rt), TSR_OK) << tsr_last_error();
    tsr_codelet_t cl = Codelet("step", true, false);
    tsr_data_t *h = Virtual(rt.get(), 4096);
    for (int i = 0; i < 50; i++) {
        Submit(rt.get(), &cl, h);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_sim_report_t r = Report(rt.get());
    EXPECT_NEAR(r.makespan_s, 0.100, 1e-9);
    EXPECT_EQ(r.n_tasks, 50u);
    EXPECT_EQ(r.bytes_moved, 0u);
    tsr_runtime_stats_t s = TSR_RUNTIME_STATS_INIT;
    ASSERT_EQ(tsr_runtime_stats(rt.get(), &s), TSR_OK);
    EXPECT_EQ(s.n_completed, 50u);
    EXPECT_EQ(s.n_failed, 0u) << "no kernel may run";
}

TEST(Simulation, IndependentTasksFillTheCores)
{
    Platform p("cpu cores=4\ntask step cpu=1ms\n");
    for (tsr_sched_policy_t policy : {TSR_SCHED_EAGER, TSR_SCHED_WS, TSR_SCHED_DMDA}) {
        Rt rt;
        ASSERT_EQ(Start(p, policy, &rt), TSR_OK);
        tsr_codelet_t cl = Codelet("step", true, false);
        for (int i = 0; i < 16; i++) {
            Submit(rt.get(), &cl, Virtual(rt.get(), 64));
        }
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
        tsr_sim_report_t r = Report(rt.get());
        EXPECT_NEAR(r.makespan_s, 0.004, 1e-9) << tsr_sched_policy_name(policy);
        ASSERT_EQ(r.n_workers, 4u);
        for (uint32_t w = 0; w < 4; w++) {
            EXPECT_NEAR(r.busy_s[w], 0.004, 1e-9);
        }
    }
}

// A task only a GPU can run waits for its input to cross the link, then runs at
// the GPU's speed-up.
TEST(Simulation, CopiesTakeTheirTimeOnTheLink)
{
    Platform p(
        "cpu cores=1\ngpu count=1 memory=1GiB speedup=2\n"
        "link host-gpu bandwidth=10GB/s latency=1ms\ntask gpuwork cpu=1ms\n");
    Rt rt;
    ASSERT_EQ(Start(p, TSR_SCHED_DMDA, &rt), TSR_OK) << tsr_last_error();
    tsr_device_info_t info;
    ASSERT_EQ(tsr_runtime_n_devices(rt.get()), 2u);
    ASSERT_EQ(tsr_runtime_device_info(rt.get(), 1, &info), TSR_OK);
    EXPECT_EQ(info.kind, (uint32_t)TSR_DEVICE_CUDA);
    EXPECT_EQ(info.mem_bytes, 1ull << 30);
    tsr_codelet_t cl = Codelet("gpuwork", false, true, TSR_R);
    Submit(rt.get(), &cl, Virtual(rt.get(), 100000000));
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_sim_report_t r = Report(rt.get());
    EXPECT_NEAR(r.makespan_s, 0.001 + 0.010 + 0.0005, 1e-7);
    EXPECT_EQ(r.bytes_moved, 100000000u);
    EXPECT_NEAR(r.busy_s[1], 0.0005, 1e-9);
}

// One core and a GPU four times faster: dmda gives the GPU about four fifths of the
// work and nears the bound; eager, first come first served, does worse.
TEST(Simulation, DmdaUsesTheFasterDeviceWell)
{
    Platform p(
        "cpu cores=1\ngpu count=1 memory=1GiB speedup=4\n"
        "link host-gpu bandwidth=100GB/s latency=1us\ntask work cpu=1ms\n");
    double makespan[2];
    tsr_sched_policy_t policies[2] = {TSR_SCHED_DMDA, TSR_SCHED_EAGER};
    for (int k = 0; k < 2; k++) {
        Rt rt;
        ASSERT_EQ(Start(p, policies[k], &rt), TSR_OK);
        tsr_codelet_t cl = Codelet("work", true, true);
        for (int i = 0; i < 40; i++) {
            Submit(rt.get(), &cl, Virtual(rt.get(), 4096));
        }
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
        makespan[k] = Report(rt.get()).makespan_s;
    }
    const double bound = 0.040 / 5;  // 40 ms of CPU work over 1 + 4 cores' worth
    EXPECT_GE(makespan[0], bound - 1e-9);
    EXPECT_LT(makespan[0], 1.15 * bound) << "dmda";
    EXPECT_LT(makespan[0], makespan[1]) << "dmda should beat eager";
}

// A random DAG over a platform of cores and GPUs: each policy gives the same
// schedule every time.
TEST(Simulation, SameGraphAndPlatformGiveTheSameMakespan)
{
    Platform p(
        "cpu cores=4\ngpu count=2 memory=1GiB speedup=6 speedup.b=2\n"
        "link host-gpu bandwidth=12GB/s latency=8us\nlink gpu-gpu bandwidth=50GB/s latency=3us\n"
        "task a cpu=3ms\ntask b cpu=1ms\n");
    unsigned seed = std::random_device{}();
    SCOPED_TRACE("seed " + std::to_string(seed));
    for (tsr_sched_policy_t policy :
         {TSR_SCHED_DMDA, TSR_SCHED_RANDOM, TSR_SCHED_EAGER, TSR_SCHED_WS}) {
        double first = -1;
        uint64_t first_bytes = 0;
        for (int run = 0; run < 2; run++) {
            Rt rt;
            ASSERT_EQ(Start(p, policy, &rt), TSR_OK);
            tsr_codelet_t a = Codelet("a", true, true), b = Codelet("b", true, true);
            std::vector<tsr_data_t *> hs;
            for (int i = 0; i < 24; i++) {
                hs.push_back(Virtual(rt.get(), (size_t)(1 + i % 5) << 20));
            }
            std::mt19937 rng(seed);
            for (int i = 0; i < 400; i++) {
                Submit(rt.get(), rng() % 2 ? &a : &b, hs[rng() % hs.size()]);
            }
            ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
            tsr_sim_report_t r = Report(rt.get());
            EXPECT_EQ(r.n_tasks, 400u);
            if (run == 0) {
                first = r.makespan_s;
                first_bytes = r.bytes_moved;
            } else {
                EXPECT_EQ(r.makespan_s, first) << tsr_sched_policy_name(policy);
                EXPECT_EQ(r.bytes_moved, first_bytes) << tsr_sched_policy_name(policy);
            }
        }
    }
}

// The trace of a simulation is drawn in virtual time.
TEST(Simulation, TraceIsInVirtualTime)
{
    Platform p("cpu cores=2\ntask step cpu=5ms\n");
    char path[] = "/tmp/tsr-vt-trace-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    {
        Rt rt;
        ASSERT_EQ(Start(p, TSR_SCHED_EAGER, &rt, path), TSR_OK);
        tsr_codelet_t cl = Codelet("step", true, false);
        tsr_data_t *h = Virtual(rt.get(), 64);
        for (int i = 0; i < 4; i++) {
            Submit(rt.get(), &cl, h);
        }
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    }
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::remove(path);
    // Four spans of 5 ms back to back: the last starts at 15 ms.
    EXPECT_NE(text.find("\"dur\":5000"), std::string::npos) << text.substr(0, 400);
    EXPECT_NE(text.find("\"ts\":15000"), std::string::npos) << text.substr(0, 400);
}

}  // namespace
