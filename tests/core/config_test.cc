/* Configuration: defaults, TESSERA_* environment overrides, and the refusal of
 * bad values in the struct or the environment. These tests set environment
 * variables on purpose and restore them afterwards. */
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::ScopedEnv;
using tsr_test::Stats;
using tsr_test::UsableCores;

const char *const kVars[] = {"TESSERA_DEVICE_MEMORY_LIMIT",
                             "TESSERA_HOST_MEMORY_LIMIT",
                             "TESSERA_SPILL_DIR",
                             "TESSERA_DEVICE_SPILL_MARK",
                             "TESSERA_SIMULATE",
                             "TESSERA_NCPUS",
                             "TESSERA_SCHED",
                             "TESSERA_TRACE",
                             "TESSERA_LOG_LEVEL",
                             "TESSERA_SIM_DEVICES",
                             "TESSERA_CUDA_DEVICES",
                             "TESSERA_CUDA_STREAMS",
                             "TESSERA_MODEL_DIR",
                             "TESSERA_PROGRESS",
                             "TESSERA_PROGRESS_INTERVAL"};

/* Every test starts from an environment without TESSERA_* variables. */
class Config : public testing::Test {
protected:
    /* Every variable of kVars is unset for the test, and restored after it. */
    Config()
    {
        for (const char *var : kVars) {
            cleared_.push_back(std::make_unique<ScopedEnv>(var, nullptr));
        }
    }

    /* Require a non-empty message that mentions every string of `needles`. */
    static void ExpectMessageNames(const std::string &message,
                                   std::initializer_list<const char *> needles)
    {
        EXPECT_NE(message, "");
        for (const char *needle : needles) {
            EXPECT_NE(message.find(needle), std::string::npos)
                << "message '" << message << "' does not name " << needle;
        }
    }

    /* Resolve `config` and require TSR_EINVAL, an untouched output and a message
     * that mentions every string of `needles`. */
    static void ExpectResolveRejects(const tsr_config_t *config,
                                     std::initializer_list<const char *> needles)
    {
        tsr_config_t out;
        std::memset(&out, 0xab, sizeof(out));
        tsr_config_t untouched = out;
        std::string message = tsr_test::LastErrorOnFreshThread(
            [&] { EXPECT_EQ(tsr_config_resolve(config, &out), TSR_EINVAL); });
        EXPECT_EQ(std::memcmp(&out, &untouched, sizeof(out)), 0) << "output written on error";
        ExpectMessageNames(message, needles);
    }

    /* tsr_init must fail the same way and leave *rt_out alone. */
    static void ExpectInitRejects(const tsr_config_t *config,
                                  std::initializer_list<const char *> needles)
    {
        tsr_runtime_t *sentinel = reinterpret_cast<tsr_runtime_t *>(0x1234);
        tsr_runtime_t *rt = sentinel;
        std::string message =
            tsr_test::LastErrorOnFreshThread([&] { EXPECT_EQ(tsr_init(config, &rt), TSR_EINVAL); });
        EXPECT_EQ(rt, sentinel) << "rt_out written on error";
        if (rt != sentinel) {
            tsr_shutdown(rt);
        }
        ExpectMessageNames(message, needles);
    }

    /* Each of `values` in environment variable `var` makes resolve and init
     * fail, naming the variable (and, for resolve, the value). */
    static void ExpectEnvValuesRejected(const char *var, std::initializer_list<const char *> values)
    {
        tsr_config_t config = TSR_CONFIG_INIT;
        for (const char *value : values) {
            SCOPED_TRACE(value);
            ScopedEnv env(var, value);
            ExpectResolveRejects(&config, {var, value});
            ExpectInitRejects(&config, {var});
        }
    }

    /* A runtime started with `config` has `n_workers` workers and `policy`. */
    static void ExpectRuntimeShape(const tsr_config_t &config, uint32_t n_workers,
                                   tsr_sched_policy_t policy)
    {
        tsr_test::Runtime rt = tsr_test::StartRuntime(config);
        ASSERT_TRUE(rt);
        tsr_runtime_stats_t stats = Stats(rt.get());
        EXPECT_EQ(stats.n_cpu_workers, n_workers);
        EXPECT_EQ(stats.policy, policy);
    }

    static tsr_config_t Resolve(const tsr_config_t *config)
    {
        tsr_config_t out = TSR_CONFIG_INIT;
        tsr_status_t st = tsr_config_resolve(config, &out);
        EXPECT_EQ(st, TSR_OK) << tsr_last_error();
        return out;
    }

private:
    std::vector<std::unique_ptr<ScopedEnv>> cleared_;
};

TEST_F(Config, DefaultsAreResolved)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    for (const tsr_config_t *in :
         {static_cast<const tsr_config_t *>(nullptr), static_cast<const tsr_config_t *>(&config)}) {
        tsr_config_t out = Resolve(in);
        EXPECT_EQ(out.n_cpu_workers, static_cast<int32_t>(UsableCores()));
        EXPECT_EQ(out.policy, TSR_SCHED_WS);
        EXPECT_EQ(out.log_level, TSR_LOG_WARN);
        EXPECT_EQ(out.trace_path, nullptr);
    }
}

TEST_F(Config, StructValuesAreKept)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    config.n_cpu_workers = 3;
    config.policy = TSR_SCHED_EAGER;
    config.log_level = TSR_LOG_ERROR;
    config.trace_path = "/tmp/some-trace.json";
    tsr_config_t out = Resolve(&config);
    EXPECT_EQ(out.n_cpu_workers, 3);
    EXPECT_EQ(out.policy, TSR_SCHED_EAGER);
    EXPECT_EQ(out.log_level, TSR_LOG_ERROR);
    EXPECT_STREQ(out.trace_path, "/tmp/some-trace.json");
}

TEST_F(Config, NcpusFromEnvironment)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    config.n_cpu_workers = 2;
    for (const char *value : {"1", "3", "17", "1024"}) {
        ScopedEnv env("TESSERA_NCPUS", value);
        EXPECT_EQ(Resolve(&config).n_cpu_workers, std::stoi(value)) << value;
    }
}

TEST_F(Config, SchedFromEnvironment)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    config.policy = TSR_SCHED_WS;
    {
        ScopedEnv env("TESSERA_SCHED", "eager");
        EXPECT_EQ(Resolve(&config).policy, TSR_SCHED_EAGER);
    }
    config.policy = TSR_SCHED_EAGER;
    {
        ScopedEnv env("TESSERA_SCHED", "ws");
        EXPECT_EQ(Resolve(&config).policy, TSR_SCHED_WS);
    }
    {
        ScopedEnv env("TESSERA_SCHED", "dmda");
        EXPECT_EQ(Resolve(&config).policy, TSR_SCHED_DMDA);
    }
    {
        ScopedEnv env("TESSERA_SCHED", "random");
        EXPECT_EQ(Resolve(&config).policy, TSR_SCHED_RANDOM);
    }
    EXPECT_STREQ(tsr_sched_policy_name(TSR_SCHED_DMDA), "dmda");
    EXPECT_STREQ(tsr_sched_policy_name(TSR_SCHED_RANDOM), "random");
}

TEST_F(Config, MemoryLimitsFromEnvironment)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    {
        ScopedEnv env("TESSERA_DEVICE_MEMORY_LIMIT", "12GiB");
        tsr_config_t out = Resolve(&config);
        EXPECT_EQ(out.device_memory_limit.bytes, 12ull << 30);
        EXPECT_EQ(out.device_memory_limit.fraction, 0.0);
    }
    {
        ScopedEnv env("TESSERA_HOST_MEMORY_LIMIT", "0.25");
        tsr_config_t out = Resolve(&config);
        EXPECT_EQ(out.host_memory_limit.bytes, 0u);
        EXPECT_DOUBLE_EQ(out.host_memory_limit.fraction, 0.25);
    }
    {
        ScopedEnv env("TESSERA_HOST_MEMORY_LIMIT", "80%");
        EXPECT_DOUBLE_EQ(Resolve(&config).host_memory_limit.fraction, 0.8);
    }
    {
        ScopedEnv env("TESSERA_SPILL_DIR", "/tmp/tsr-spill-test");
        EXPECT_STREQ(Resolve(&config).spill_dir, "/tmp/tsr-spill-test");
    }
    ExpectEnvValuesRejected("TESSERA_DEVICE_MEMORY_LIMIT", {"0", "-1", "1.5", "120%", "lots"});
    ExpectEnvValuesRejected("TESSERA_HOST_MEMORY_LIMIT", {"0%", "2 GiB", "GiB"});
    EXPECT_DOUBLE_EQ(Resolve(&config).device_spill_mark, 0.9);
    {
        ScopedEnv env("TESSERA_DEVICE_SPILL_MARK", "75%");
        EXPECT_DOUBLE_EQ(Resolve(&config).device_spill_mark, 0.75);
    }
    ExpectEnvValuesRejected("TESSERA_DEVICE_SPILL_MARK", {"0", "1.5", "12GiB", "high"});
    tsr_config_t out;
    config.device_spill_mark = -0.5;
    EXPECT_EQ(tsr_config_resolve(&config, &out), TSR_EINVAL);
    config.device_spill_mark = 0.0;
    config.device_memory_limit.fraction = 1.5;
    EXPECT_EQ(tsr_config_resolve(&config, &out), TSR_EINVAL);
}

TEST_F(Config, CudaAndModelSettingsFromEnvironment)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    EXPECT_EQ(Resolve(&config).cuda_streams, 4u);
    EXPECT_EQ(Resolve(&config).n_cuda_devices, 0);
    {
        ScopedEnv env("TESSERA_CUDA_DEVICES", "0");
        EXPECT_EQ(Resolve(&config).n_cuda_devices, -1) << "0 GPUs means none";
    }
    {
        ScopedEnv env("TESSERA_CUDA_DEVICES", "3");
        EXPECT_EQ(Resolve(&config).n_cuda_devices, 3);
    }
    {
        ScopedEnv env("TESSERA_CUDA_STREAMS", "9");
        EXPECT_EQ(Resolve(&config).cuda_streams, 9u);
    }
    {
        ScopedEnv env("TESSERA_MODEL_DIR", "/tmp/tessera-models");
        ASSERT_NE(Resolve(&config).model_dir, nullptr);
        EXPECT_STREQ(Resolve(&config).model_dir, "/tmp/tessera-models");
    }
    {
        ScopedEnv env("TESSERA_MODEL_DIR", "none");
        ASSERT_NE(Resolve(&config).model_dir, nullptr);
        EXPECT_STREQ(Resolve(&config).model_dir, "") << "none: models are not saved";
    }
    ExpectEnvValuesRejected("TESSERA_CUDA_DEVICES", {"-1", "x", "16", "2 "});
    ExpectEnvValuesRejected("TESSERA_CUDA_STREAMS", {"0", "33", "four"});
    config.n_cuda_devices = -2;
    tsr_config_t out;
    EXPECT_EQ(tsr_config_resolve(&config, &out), TSR_EINVAL);
    config.n_cuda_devices = 0;
    config.cuda_streams = 64;
    EXPECT_EQ(tsr_config_resolve(&config, &out), TSR_EINVAL);
}

TEST_F(Config, TraceFromEnvironment)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    config.trace_path = "/tmp/from-struct.json";
    ScopedEnv env("TESSERA_TRACE", "/tmp/from-env.json");
    tsr_config_t out = Resolve(&config);
    ASSERT_NE(out.trace_path, nullptr);
    EXPECT_STREQ(out.trace_path, "/tmp/from-env.json");
}

TEST_F(Config, LogLevelFromEnvironment)
{
    const std::pair<const char *, tsr_log_level_t> levels[] = {
        {"none", TSR_LOG_NONE}, {"error", TSR_LOG_ERROR}, {"warn", TSR_LOG_WARN},
        {"info", TSR_LOG_INFO}, {"debug", TSR_LOG_DEBUG},
    };
    tsr_config_t config = TSR_CONFIG_INIT;
    for (const auto &level : levels) {
        ScopedEnv env("TESSERA_LOG_LEVEL", level.first);
        EXPECT_EQ(Resolve(&config).log_level, level.second) << level.first;
    }
}

TEST_F(Config, AccelFirstFromEnvironment)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    {
        ScopedEnv env("TESSERA_ACCEL_FIRST", "1");
        EXPECT_NE(Resolve(&config).flags & TSR_CONFIG_F_ACCEL_FIRST, 0u);
    }
    config.flags = TSR_CONFIG_F_ACCEL_FIRST;
    {
        ScopedEnv env("TESSERA_ACCEL_FIRST", "0");
        EXPECT_EQ(Resolve(&config).flags & TSR_CONFIG_F_ACCEL_FIRST, 0u);
    }
    EXPECT_NE(Resolve(&config).flags & TSR_CONFIG_F_ACCEL_FIRST, 0u) << "kept from the struct";
    ExpectEnvValuesRejected("TESSERA_ACCEL_FIRST", {"yes", "2", ""});
}

TEST_F(Config, ProgressFromEnvironment)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    EXPECT_EQ(Resolve(&config).progress, TSR_PROGRESS_AUTO);
    EXPECT_EQ(Resolve(&config).progress_interval_s, 0.0);
    const std::pair<const char *, tsr_progress_mode_t> modes[] = {{"on", TSR_PROGRESS_ON},
                                                                  {"1", TSR_PROGRESS_ON},
                                                                  {"off", TSR_PROGRESS_OFF},
                                                                  {"0", TSR_PROGRESS_OFF},
                                                                  {"auto", TSR_PROGRESS_AUTO}};
    config.progress = TSR_PROGRESS_ON;
    for (const auto &[text, mode] : modes) {
        ScopedEnv env("TESSERA_PROGRESS", text);
        EXPECT_EQ(Resolve(&config).progress, mode) << text;
    }
    {
        ScopedEnv env("TESSERA_PROGRESS_INTERVAL", "2.5");
        EXPECT_DOUBLE_EQ(Resolve(&config).progress_interval_s, 2.5);
    }
    ExpectEnvValuesRejected("TESSERA_PROGRESS", {"yes", "2", "", "ON"});
    ExpectEnvValuesRejected("TESSERA_PROGRESS_INTERVAL", {"0", "0.001", "-1", "5s", "7200", ""});

    tsr_config_t mode = tsr_test::TestConfig(1, TSR_SCHED_WS);
    mode.progress = static_cast<tsr_progress_mode_t>(7);
    ExpectResolveRejects(&mode, {"progress"});
    ExpectInitRejects(&mode, {"progress"});
    for (double seconds : {-1.0, 0.001, 3601.0, std::nan("")}) {
        tsr_config_t interval = tsr_test::TestConfig(1, TSR_SCHED_WS);
        interval.progress_interval_s = seconds;
        ExpectResolveRejects(&interval, {"progress_interval_s"});
    }
}

TEST_F(Config, BadNcpusIsRejected)
{
    ExpectEnvValuesRejected("TESSERA_NCPUS", {"0", "-3", "abc", "2x", "1025"});
}

TEST_F(Config, BadSchedIsRejected)
{
    ExpectEnvValuesRejected("TESSERA_SCHED", {"fifo", "dmda2", "eagerly"});
}

TEST_F(Config, BadLogLevelIsRejected)
{
    ExpectEnvValuesRejected("TESSERA_LOG_LEVEL", {"loud", "7", "warning!"});
}

TEST_F(Config, NoEnvFlagIgnoresEnvironment)
{
    ScopedEnv ncpus("TESSERA_NCPUS", "abc");
    ScopedEnv sched("TESSERA_SCHED", "fifo");
    ScopedEnv log("TESSERA_LOG_LEVEL", "loud");
    ScopedEnv trace("TESSERA_TRACE", "/nonexistent/dir/trace.json");
    tsr_config_t config = tsr_test::TestConfig(3, TSR_SCHED_EAGER);
    tsr_config_t out = Resolve(&config);
    EXPECT_EQ(out.n_cpu_workers, 3);
    EXPECT_EQ(out.policy, TSR_SCHED_EAGER);
    EXPECT_EQ(out.log_level, TSR_LOG_WARN);
    EXPECT_EQ(out.trace_path, nullptr);

    ExpectRuntimeShape(config, 3, TSR_SCHED_EAGER);
}

TEST_F(Config, EnvironmentReachesTheRuntime)
{
    ScopedEnv ncpus("TESSERA_NCPUS", "3");
    ScopedEnv sched("TESSERA_SCHED", "eager");
    tsr_config_t config = TSR_CONFIG_INIT;
    config.n_cpu_workers = 1;
    config.policy = TSR_SCHED_WS;
    ExpectRuntimeShape(config, 3, TSR_SCHED_EAGER);
}

TEST_F(Config, DefaultRuntimeUsesEveryUsableCore)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    config.flags = TSR_CONFIG_F_NO_ENV;
    tsr_test::Runtime rt = tsr_test::StartRuntime(config);
    ASSERT_TRUE(rt);
    tsr_runtime_stats_t stats = Stats(rt.get());
    EXPECT_EQ(stats.n_cpu_workers, UsableCores());
    EXPECT_EQ(stats.policy, TSR_SCHED_WS);

    tsr_runtime_t *rt_null = nullptr;
    ASSERT_EQ(tsr_init(nullptr, &rt_null), TSR_OK) << tsr_last_error();
    EXPECT_EQ(Stats(rt_null).n_cpu_workers, UsableCores());
    tsr_shutdown(rt_null);
}

TEST_F(Config, BadStructValuesAreRejected)
{
    tsr_config_t negative = tsr_test::TestConfig(-1, TSR_SCHED_WS);
    ExpectResolveRejects(&negative, {});
    ExpectInitRejects(&negative, {});

    tsr_config_t policy = tsr_test::TestConfig(1, static_cast<tsr_sched_policy_t>(99));
    ExpectResolveRejects(&policy, {});
    ExpectInitRejects(&policy, {});

    tsr_config_t level = tsr_test::TestConfig(1, TSR_SCHED_WS);
    level.log_level = static_cast<tsr_log_level_t>(99);
    ExpectResolveRejects(&level, {});
    ExpectInitRejects(&level, {});

    /* The environment does not rescue a bad struct value. */
    ScopedEnv ncpus("TESSERA_NCPUS", "2");
    tsr_config_t with_env = TSR_CONFIG_INIT;
    with_env.policy = static_cast<tsr_sched_policy_t>(-5);
    ExpectResolveRejects(&with_env, {});
}

TEST_F(Config, NullOutputsAreRejected)
{
    tsr_config_t config = tsr_test::TestConfig(1, TSR_SCHED_WS);
    std::string message = tsr_test::LastErrorOnFreshThread([&] {
        EXPECT_EQ(tsr_config_resolve(&config, nullptr), TSR_EINVAL);
        EXPECT_EQ(tsr_init(&config, nullptr), TSR_EINVAL);
    });
    EXPECT_NE(message, "");
}

}  // namespace
