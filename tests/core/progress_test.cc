/* Progress of long work (tsr_config_t.progress, progress_fn): the reports of each
 * batch against the tasks the test itself counted running, and the lines drawn
 * on stderr against the same counts. */
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::Runtime;
using tsr_test::StartRuntime;
using tsr_test::Task;

/* A task that waits for its gate (if any), sleeps 1 ms, counts its run, and fails
 * when its argument says so. */
struct SleepArg {
    std::atomic<uint64_t> *ran;
    tsr_test::Gate *gate;
    int fail;
};

tsr_status_t SleepKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    SleepArg a = tsr_test::ArgAs<SleepArg>(arg);
    if (a.gate != nullptr) {
        a.gate->Wait();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    a.ran->fetch_add(1);
    if (a.fail) {
        tsr_task_ctx_fail(ctx, "failing on purpose");
        return TSR_EBACKEND;
    }
    return TSR_OK;
}

const tsr_codelet_t kSleepCodelet = tsr_test::MakeCodelet("progress_sleep", SleepKernel, {});

/* n tasks, every fail_every-th failing (0: none), as one batch: the first holds
 * `gate` until all are submitted, so the runtime cannot be seen idle between
 * two submissions. The gate must outlive the tasks. */
void SubmitSleeps(tsr_runtime_t *rt, std::atomic<uint64_t> *ran, int n, int fail_every,
                  tsr_test::Gate *gate)
{
    tsr_test::GateOpener opener(*gate);
    for (int i = 0; i < n; i++) {
        SleepArg a{ran, i == 0 ? gate : nullptr, fail_every > 0 && i % fail_every == 0};
        ASSERT_EQ(Task(&kSleepCodelet).Arg(a).Submit(rt), TSR_OK);
    }
}

/* What progress_fn saw: each report, with the tasks the test had counted running
 * when it came. */
struct Seen {
    tsr_progress_t report;
    uint64_t ran;
};

class Recorder {
public:
    explicit Recorder(std::atomic<uint64_t> *ran) : ran_(ran) {}

    static void Callback(void *user, const tsr_progress_t *p)
    {
        Recorder *self = static_cast<Recorder *>(user);
        std::lock_guard<std::mutex> lock(self->mu_);
        self->seen_.push_back({*p, self->ran_->load()});
        self->cv_.notify_all();
    }

    /* Wait (at most 10 s) until `n` batches have been reported ended. */
    bool WaitEnded(size_t n)
    {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return Ended() >= n; });
    }

    std::vector<Seen> All()
    {
        std::lock_guard<std::mutex> lock(mu_);
        return seen_;
    }

private:
    size_t Ended() const
    {
        size_t n = 0;
        for (const Seen &s : seen_) {
            n += s.report.is_done ? 1 : 0;
        }
        return n;
    }

    std::atomic<uint64_t> *ran_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Seen> seen_;
};

/* The reports of one batch, whose first task the test counted as run number
 * `ran_before` + 1, are consistent with each other and with the test's count, and
 * the batch ends with `n_tasks` done and `n_failed` failed. */
void CheckBatch(const std::vector<Seen> &batch, uint64_t ran_before, uint64_t n_tasks,
                uint64_t n_failed)
{
    ASSERT_FALSE(batch.empty());
    size_t n_partial = 0;
    for (size_t i = 0; i < batch.size(); i++) {
        const tsr_progress_t &r = batch[i].report;
        SCOPED_TRACE("report " + std::to_string(i));
        EXPECT_EQ(r.is_done, i + 1 == batch.size() ? 1 : 0);
        EXPECT_LE(r.n_done, r.n_tasks);
        EXPECT_LE(r.n_tasks, n_tasks);
        EXPECT_LE(r.n_failed, r.n_done);
        EXPECT_LE(r.n_done, batch[i].ran - ran_before) << "more done than the test saw run";
        if (i > 0) {
            EXPECT_GE(r.n_done, batch[i - 1].report.n_done);
            EXPECT_GE(r.n_tasks, batch[i - 1].report.n_tasks);
            EXPECT_GE(r.elapsed_s, batch[i - 1].report.elapsed_s);
        }
        if (r.is_done) {
            EXPECT_EQ(r.remaining_s, 0.0);
        } else if (r.n_done == 0) {
            EXPECT_EQ(r.remaining_s, -1.0);
        } else {
            EXPECT_GE(r.remaining_s, 0.0);
            n_partial += r.n_done < r.n_tasks ? 1 : 0;
        }
    }
    const tsr_progress_t &last = batch.back().report;
    EXPECT_EQ(last.n_tasks, n_tasks);
    EXPECT_EQ(last.n_done, n_tasks);
    EXPECT_EQ(last.n_failed, n_failed);
    EXPECT_GT(last.elapsed_s, 0.0);
    EXPECT_GE(n_partial, 1u) << "no report while the batch was part done";
}

// Two batches of sleeping tasks, with different numbers of failures: every
// interval brings a report, each batch ends with one report of is_done, and the
// counts, each batch's own, agree with what the test counted.
TEST(Progress, ReportsEachBatchUntilItEnds)
{
    std::atomic<uint64_t> ran{0};
    Recorder rec(&ran);
    tsr_test::Gate gates[2];
    tsr_config_t cfg = tsr_test::TestConfig(2, TSR_SCHED_WS);
    cfg.progress = TSR_PROGRESS_OFF; /* the callback alone */
    cfg.progress_interval_s = 0.01;
    cfg.progress_fn = Recorder::Callback;
    cfg.progress_user = &rec;
    Runtime rt = StartRuntime(cfg);
    ASSERT_TRUE(rt);

    const uint64_t n1 = 300, n2 = 120;
    SubmitSleeps(rt.get(), &ran, static_cast<int>(n1), 50, &gates[0]);
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    ASSERT_TRUE(rec.WaitEnded(1)) << "the first batch's end was not reported";
    SubmitSleeps(rt.get(), &ran, static_cast<int>(n2), 10, &gates[1]);
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    rt.reset(); /* shutdown reports the end of the last batch before it returns */

    std::vector<Seen> seen = rec.All();
    std::vector<Seen> batches[2];
    size_t b = 0;
    for (const Seen &s : seen) {
        ASSERT_LT(b, 2u) << "a report after the second batch ended";
        batches[b].push_back(s);
        b += s.report.is_done ? 1 : 0;
    }
    ASSERT_EQ(b, 2u);
    {
        SCOPED_TRACE("batch 1");
        CheckBatch(batches[0], 0, n1, n1 / 50);
    }
    {
        SCOPED_TRACE("batch 2");
        CheckBatch(batches[1], n1, n2, n2 / 10);
    }
    EXPECT_EQ(ran.load(), n1 + n2);
}

/* Redirects this process's stderr to a file while it lives. */
class StderrToFile {
public:
    StderrToFile() : path_(testing::TempDir() + "tsr-progress-" + std::to_string(getpid()))
    {
        std::fflush(stderr);
        saved_ = dup(STDERR_FILENO);
        int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        EXPECT_GE(fd, 0) << path_;
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    ~StderrToFile()
    {
        Restore();
        unlink(path_.c_str());
    }
    StderrToFile(const StderrToFile &) = delete;
    StderrToFile &operator=(const StderrToFile &) = delete;

    /* Put stderr back, and return what was written to it meanwhile. */
    std::string Restore()
    {
        if (saved_ >= 0) {
            std::fflush(stderr);
            dup2(saved_, STDERR_FILENO);
            close(saved_);
            saved_ = -1;
        }
        std::ifstream in(path_);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }

private:
    std::string path_;
    int saved_ = -1;
};

// TSR_PROGRESS_ON with stderr not a terminal: a line per update, each with a
// bar, percentage and counts that agree, the host memory (a host limit is set),
// and a last line of 100%.
TEST(Progress, WritesLinesOnStderrWhenAsked)
{
    if (isatty(STDERR_FILENO)) {
        GTEST_SKIP() << "stderr is a terminal: the bar would be redrawn in place";
    }
    StderrToFile capture;
    std::atomic<uint64_t> ran{0};
    tsr_test::Gate gate;
    const int n = 200;
    {
        tsr_config_t cfg = tsr_test::TestConfig(2, TSR_SCHED_WS);
        cfg.progress = TSR_PROGRESS_ON;
        cfg.progress_interval_s = 0.02;
        cfg.host_memory_limit.bytes = 64u << 20;
        Runtime rt = StartRuntime(cfg);
        ASSERT_TRUE(rt);
        SubmitSleeps(rt.get(), &ran, n, 0, &gate);
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    }
    std::string text = capture.Restore();
    const std::regex line_re(
        R"(tessera \[([#-]{20})\] +(\d+)%  (\d+)/(\d+) tasks  \d+\.\d s(  ~\d+\.\d s left)?)"
        R"(  host \d+ MiB of 64 MiB)");
    std::istringstream lines(text);
    std::string line;
    std::vector<std::string> drawn;
    uint64_t last_done = 0;
    while (std::getline(lines, line)) {
        std::smatch m;
        if (line.rfind("tessera [", 0) != 0) {
            continue; /* anything else the runtime logged */
        }
        drawn.push_back(line);
        ASSERT_TRUE(std::regex_match(line, m, line_re)) << line;
        uint64_t pct = std::stoull(m[2]), done = std::stoull(m[3]), tasks = std::stoull(m[4]);
        EXPECT_EQ(tasks, static_cast<uint64_t>(n)) << line;
        EXPECT_EQ(pct, done * 100 / tasks) << line;
        EXPECT_EQ(m[1].str(),
                  std::string(done * 20 / tasks, '#') + std::string(20 - done * 20 / tasks, '-'))
            << line;
        EXPECT_GE(done, last_done) << line;
        last_done = done;
    }
    ASSERT_GE(drawn.size(), 2u) << text;
    EXPECT_NE(drawn.back().find("] 100%  200/200 tasks"), std::string::npos) << drawn.back();
    EXPECT_EQ(drawn.back().find("left"), std::string::npos) << drawn.back();
    EXPECT_EQ(ran.load(), static_cast<uint64_t>(n));
}

// With progress off, nothing reaches stderr even when a callback asks for the
// progress thread.
TEST(Progress, OffWritesNothing)
{
    StderrToFile capture;
    std::atomic<uint64_t> ran{0};
    tsr_test::Gate gate;
    Recorder rec(&ran);
    {
        tsr_config_t cfg = tsr_test::TestConfig(2, TSR_SCHED_WS);
        cfg.progress = TSR_PROGRESS_OFF;
        cfg.progress_interval_s = 0.01;
        cfg.progress_fn = Recorder::Callback;
        cfg.progress_user = &rec;
        Runtime rt = StartRuntime(cfg);
        ASSERT_TRUE(rt);
        SubmitSleeps(rt.get(), &ran, 100, 0, &gate);
        ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    }
    EXPECT_EQ(capture.Restore(), "");
    std::vector<Seen> seen = rec.All();
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back().report.is_done, 1);
    EXPECT_EQ(seen.back().report.n_done, 100u);
}

}  // namespace
