/* Chrome/Perfetto trace: written at shutdown to config.trace_path (or
 * TESSERA_TRACE), loaded back as JSON and checked span by span. */
#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace {

using json = nlohmann::json;
using tsr_test::Gate;
using tsr_test::GateOpener;
using tsr_test::RtParam;
using tsr_test::Runtime;
using tsr_test::ScopedEnv;
using tsr_test::Task;
using tsr_test::TempFile;

tsr_status_t ProbeKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *)
{
    uint64_t *x = static_cast<uint64_t *>(bufs[0].ptr);
    for (int i = 0; i < 100; i++) {
        x[0] = x[0] * 31 + static_cast<uint64_t>(i);
    }
    return TSR_OK;
}

const tsr_codelet_t kProbeCodelet = tsr_test::MakeCodelet("trace_probe", ProbeKernel, {TSR_RW});

std::optional<json> LoadTrace(const std::string &path)
{
    std::ifstream in(path);
    if (!in) {
        ADD_FAILURE() << "no trace file at " << path;
        return std::nullopt;
    }
    json doc = json::parse(in, nullptr, false);
    if (doc.is_discarded()) {
        ADD_FAILURE() << "trace is not valid JSON";
        return std::nullopt;
    }
    return doc;
}

/* Complete events ("ph":"X") named `name`. */
std::vector<json> SpansNamed(const json &events, const std::string &name)
{
    std::vector<json> spans;
    for (const json &ev : events) {
        if (ev.value("ph", "") == "X" && ev.value("name", "") == name) {
            spans.push_back(ev);
        }
    }
    return spans;
}

/* Structure shared by every trace: a traceEvents array, complete events with
 * numeric ts/dur on a worker's tid, a thread_name for every worker, and spans of
 * one worker that do not overlap. */
void CheckStructure(const json &doc, uint32_t n_workers)
{
    ASSERT_TRUE(doc.is_object());
    ASSERT_TRUE(doc.contains("traceEvents"));
    const json &events = doc["traceEvents"];
    ASSERT_TRUE(events.is_array());
    std::set<int64_t> named_tids;
    std::map<int64_t, std::vector<std::pair<double, double>>> spans_by_tid;
    for (const json &ev : events) {
        ASSERT_TRUE(ev.is_object());
        ASSERT_TRUE(ev.contains("ph") && ev["ph"].is_string()) << ev.dump();
        const std::string ph = ev["ph"];
        if (ph == "M" && ev.value("name", "") == "thread_name") {
            ASSERT_TRUE(ev.contains("tid") && ev["tid"].is_number_integer()) << ev.dump();
            ASSERT_TRUE(ev.contains("args") && ev["args"].contains("name")) << ev.dump();
            EXPECT_TRUE(ev["args"]["name"].is_string()) << ev.dump();
            named_tids.insert(ev["tid"].get<int64_t>());
        }
        if (ph != "X") {
            continue;
        }
        ASSERT_TRUE(ev.contains("name") && ev["name"].is_string()) << ev.dump();
        ASSERT_TRUE(ev.contains("ts") && ev["ts"].is_number()) << ev.dump();
        ASSERT_TRUE(ev.contains("dur") && ev["dur"].is_number()) << ev.dump();
        ASSERT_TRUE(ev.contains("pid")) << ev.dump();
        ASSERT_TRUE(ev.contains("tid") && ev["tid"].is_number_integer()) << ev.dump();
        double ts = ev["ts"].get<double>();
        double dur = ev["dur"].get<double>();
        int64_t tid = ev["tid"].get<int64_t>();
        EXPECT_GE(ts, 0.0) << ev.dump();
        EXPECT_GE(dur, 0.0) << ev.dump();
        EXPECT_GE(tid, 0) << ev.dump();
        EXPECT_LT(tid, static_cast<int64_t>(n_workers)) << ev.dump();
        spans_by_tid[tid].push_back({ts, ts + dur});
    }
    for (uint32_t w = 0; w < n_workers; w++) {
        EXPECT_TRUE(named_tids.count(w)) << "no thread_name for worker " << w;
    }
    /* A worker runs one task at a time (no task here waits inside another). The
     * slack covers the rounding of microseconds printed with 3 decimals. */
    for (auto &[tid, spans] : spans_by_tid) {
        std::sort(spans.begin(), spans.end());
        for (size_t i = 1; i < spans.size(); i++) {
            EXPECT_LE(spans[i - 1].second, spans[i].first + 0.002)
                << "overlapping spans on tid " << tid;
        }
    }
}

class Trace : public testing::TestWithParam<RtParam> {};

TEST_P(Trace, HasOneSpanPerTaskOnTheWorkers)
{
    const uint32_t n_workers = static_cast<uint32_t>(GetParam().n_workers);
    const size_t n = 300;
    const size_t n_renamed = 37;
    static const char kOddName[] = "we\"ird\\name\twith \xc3\xa9";
    TempFile file("tessera-trace");
    std::vector<std::vector<uint64_t>> xs(16, std::vector<uint64_t>(1, 0));
    Gate gate;
    {
        tsr_config_t config = tsr_test::TestConfig(GetParam().n_workers, GetParam().policy);
        config.trace_path = file.path().c_str();
        Runtime rt = tsr_test::StartRuntime(config);
        ASSERT_TRUE(rt);
        std::vector<tsr_test::Data> hs = tsr_test::RegisterVectors(rt.get(), xs);
        GateOpener opener(gate);
        /* One task per worker, all running at once: spans on every tid. */
        for (uint32_t w = 0; w < n_workers; w++) {
            ASSERT_EQ(Task(&tsr_test::kGateCodelet).Arg(&gate).Submit(rt.get()), TSR_OK);
        }
        gate.WaitEntered(static_cast<int>(n_workers));
        gate.Open();
        for (size_t i = 0; i < n; i++) {
            ASSERT_EQ(Task(&kProbeCodelet).Use(hs[i % hs.size()].get()).Submit(rt.get()), TSR_OK);
        }
        for (size_t i = 0; i < n_renamed; i++) {
            ASSERT_EQ(
                Task(&kProbeCodelet).Use(hs[i % hs.size()].get()).Name(kOddName).Submit(rt.get()),
                TSR_OK);
        }
        /* Shutdown without waiting: the trace is written once all have run. */
    }
    std::optional<json> doc = LoadTrace(file.path());
    ASSERT_TRUE(doc);
    CheckStructure(*doc, n_workers);
    const json &events = (*doc)["traceEvents"];
    EXPECT_EQ(SpansNamed(events, "trace_probe").size(), n);
    EXPECT_EQ(SpansNamed(events, kOddName).size(), n_renamed);
    std::vector<json> gates = SpansNamed(events, "gate");
    ASSERT_EQ(gates.size(), n_workers);
    std::set<int64_t> gate_tids;
    for (const json &ev : gates) {
        gate_tids.insert(ev["tid"].get<int64_t>());
    }
    EXPECT_EQ(gate_tids.size(), n_workers) << "concurrent tasks shown on the same worker";
}

INSTANTIATE_TEST_SUITE_P(Policies, Trace,
                         testing::Values(RtParam{TSR_SCHED_EAGER, 2}, RtParam{TSR_SCHED_WS, 4},
                                         RtParam{TSR_SCHED_WS, 1}),
                         tsr_test::RtParamName);

TEST(TraceEnv, TesseraTraceVariableEnablesIt)
{
    TempFile file("tessera-env-trace");
    ScopedEnv trace("TESSERA_TRACE", file.path().c_str());
    ScopedEnv ncpus("TESSERA_NCPUS", "2");
    ScopedEnv sched("TESSERA_SCHED", nullptr);
    ScopedEnv log("TESSERA_LOG_LEVEL", nullptr);
    std::vector<uint64_t> x(1, 0);
    {
        tsr_config_t config = TSR_CONFIG_INIT;
        Runtime rt = tsr_test::StartRuntime(config);
        ASSERT_TRUE(rt);
        tsr_test::Data hx = tsr_test::RegisterVector(rt.get(), x);
        for (int i = 0; i < 25; i++) {
            ASSERT_EQ(Task(&kProbeCodelet).Use(hx.get()).Submit(rt.get()), TSR_OK);
        }
    }
    std::optional<json> doc = LoadTrace(file.path());
    ASSERT_TRUE(doc);
    CheckStructure(*doc, 2);
    EXPECT_EQ(SpansNamed((*doc)["traceEvents"], "trace_probe").size(), 25u);
}

TEST(TraceEnv, FailedTasksAreTracedToo)
{
    TempFile file("tessera-fail-trace");
    tsr_config_t config = tsr_test::TestConfig(1, TSR_SCHED_WS);
    config.trace_path = file.path().c_str();
    {
        Runtime rt = tsr_test::StartRuntime(config);
        ASSERT_TRUE(rt);
        ASSERT_EQ(Task(&tsr_test::kFailCodelet)
                      .Arg(tsr_test::MakeFailArg(TSR_ETASK, "traced failure"))
                      .Submit(rt.get()),
                  TSR_OK);
        ASSERT_EQ(Task(&tsr_test::kEmptyCodelet).Submit(rt.get()), TSR_OK);
    }
    std::optional<json> doc = LoadTrace(file.path());
    ASSERT_TRUE(doc);
    CheckStructure(*doc, 1);
    EXPECT_EQ(SpansNamed((*doc)["traceEvents"], "empty").size(), 1u);
    EXPECT_EQ(SpansNamed((*doc)["traceEvents"], "fail").size(), 1u);
}

}  // namespace
