// The cost models: performance models per codelet × device kind × footprint
// (core/perfmodel.c) and the transfer model per pair of memory nodes
// (core/xfer_model.c), with their files (core/model_file.c). No timing: every
// duration here is synthetic.
#include <gtest/gtest.h>
#include <tessera.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/perfmodel.h"
#include "core/xfer_model.h"

namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
public:
    TempDir()
    {
        std::string tmpl = (fs::temp_directory_path() / "tsr_pm_XXXXXX").string();
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (mkdtemp(buf.data()) != nullptr) {
            path_ = buf.data();
        }
    }
    ~TempDir()
    {
        std::error_code ec;
        if (!path_.empty()) {
            fs::remove_all(path_, ec);
        }
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const std::string &path() const { return path_; }
    std::string sub(const std::string &name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

struct PmDeleter {
    void operator()(tsr__pm *pm) const { tsr__pm_destroy(pm); }
};
using Pm = std::unique_ptr<tsr__pm, PmDeleter>;

Pm MakePm(const char *dir = nullptr)
{
    tsr__pm *pm = nullptr;
    EXPECT_EQ(tsr__pm_create(dir, &pm), TSR_OK);
    return Pm(pm);
}

Pm MakePm(const std::string &dir)
{
    return MakePm(dir.c_str());
}

struct XmDeleter {
    void operator()(tsr__xm *xm) const { tsr__xm_destroy(xm); }
};
using Xm = std::unique_ptr<tsr__xm, XmDeleter>;

Xm MakeXm(uint32_t n_nodes)
{
    tsr__xm *xm = nullptr;
    EXPECT_EQ(tsr__xm_create(n_nodes, &xm), TSR_OK);
    return Xm(xm);
}

// A key for one buffer of n_bytes (the footprint follows from the size).
tsr__pm_key Key(const char *name, uint32_t kind, uint64_t n_bytes)
{
    size_t size = static_cast<size_t>(n_bytes);
    tsr__pm_key key = {};
    key.name = name;
    key.kind = kind;
    key.footprint = tsr__pm_footprint(&size, 1, &key.n_bytes);
    return key;
}

tsr__pm_estimate Predict(tsr__pm *pm, const tsr__pm_key &key, double flops = 0, double bytes = 0)
{
    tsr__pm_estimate est;
    tsr__pm_predict(pm, &key, flops, bytes, &est);
    return est;
}

void RecordN(tsr__pm *pm, const tsr__pm_key &key, int n, double seconds)
{
    for (int i = 0; i < n; i++) {
        ASSERT_EQ(tsr__pm_record(pm, &key, seconds), TSR_OK);
    }
}

std::string ReadAll(FILE *f)
{
    std::string text;
    char buf[4096];
    size_t n;
    rewind(f);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        text.append(buf, n);
    }
    return text;
}

std::string PmSummary(tsr__pm *pm)
{
    FILE *f = tmpfile();
    if (f == nullptr) {
        return "";
    }
    tsr__pm_print(pm, f);
    std::string text = ReadAll(f);
    fclose(f);
    return text;
}

void WriteFile(const std::string &path, const std::string &text)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string ReadFile(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string FileName(const char *codelet)
{
    char buf[128];
    tsr__pm_file_name(codelet, buf, sizeof(buf));
    return buf;
}

std::vector<std::string> ListDir(const std::string &dir)
{
    std::vector<std::string> names;
    for (const auto &de : fs::directory_iterator(dir)) {
        names.push_back(de.path().filename().string());
    }
    return names;
}

// ---- performance model ---------------------------------------------------------------

TEST(PerfModel, FootprintHashesTheSizeList)
{
    const size_t a[] = {4096, 8192};
    const size_t b[] = {8192, 4096};
    const size_t c[] = {4096, 8192, 0};
    uint64_t total = 0;

    uint32_t fa = tsr__pm_footprint(a, 2, &total);
    EXPECT_EQ(total, 12288u);
    EXPECT_EQ(fa, tsr__pm_footprint(a, 2, nullptr));
    EXPECT_NE(fa, tsr__pm_footprint(b, 2, nullptr));
    EXPECT_NE(fa, tsr__pm_footprint(c, 3, nullptr));
    EXPECT_NE(tsr__pm_footprint(nullptr, 0, &total), fa);
    EXPECT_EQ(total, 0u);
}

TEST(PerfModel, OneOutlierDoesNotMoveTheEstimate)
{
    Pm pm = MakePm();
    tsr__pm_key key = Key("gemm", TSR_DEVICE_CPU, 1 << 20);

    // A 100x warm-up first, then steady runs: three samples are enough already.
    ASSERT_EQ(tsr__pm_record(pm.get(), &key, 100.0), TSR_OK);
    RecordN(pm.get(), key, 2, 1.0);
    tsr__pm_estimate est = Predict(pm.get(), key);
    EXPECT_EQ(est.source, TSR_PM_HISTORY);
    EXPECT_DOUBLE_EQ(est.seconds, 1.0);

    // A full history of ~1 s (±1 %) and one 100 s sample in the middle of it.
    for (int i = 0; i < 40; i++) {
        double t = i == 20 ? 100.0 : 1.0 + 0.01 * std::sin(i * 1.7);
        ASSERT_EQ(tsr__pm_record(pm.get(), &key, t), TSR_OK);
    }
    est = Predict(pm.get(), key);
    EXPECT_EQ(est.source, TSR_PM_HISTORY);
    EXPECT_NEAR(est.seconds, 1.0, 0.02);
    EXPECT_LT(est.spread, 0.05);
    EXPECT_EQ(est.n_samples, 43u);
}

TEST(PerfModel, HistoryFollowsTheLastSamples)
{
    Pm pm = MakePm();
    tsr__pm_key key = Key("axpy", TSR_DEVICE_CUDA, 4096);

    RecordN(pm.get(), key, TSR_PM_KEEP, 1.0);
    RecordN(pm.get(), key, TSR_PM_KEEP / 2 + 1, 2.0);
    tsr__pm_estimate est = Predict(pm.get(), key);
    EXPECT_DOUBLE_EQ(est.seconds, 2.0);
    EXPECT_EQ(est.n_samples, static_cast<uint64_t>(TSR_PM_KEEP + TSR_PM_KEEP / 2 + 1));
}

TEST(PerfModel, RegressionRecoversAPowerLaw)
{
    Pm pm = MakePm();
    const double a = 2e-9;
    const double b = 1.5;
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> noise(0.95, 1.05);

    for (int p = 10; p <= 24; p++) {
        uint64_t n = uint64_t{1} << p;
        tsr__pm_key key = Key("potrf", TSR_DEVICE_CUDA, n);
        for (int i = 0; i < 5; i++) {
            double t = a * std::pow(static_cast<double>(n), b) * noise(rng);
            ASSERT_EQ(tsr__pm_record(pm.get(), &key, t), TSR_OK);
        }
    }
    double fit_a = 0;
    double fit_b = 0;
    ASSERT_EQ(tsr__pm_regression(pm.get(), "potrf", TSR_DEVICE_CUDA, &fit_a, &fit_b), TSR_OK);
    EXPECT_NEAR(fit_b, b, 0.02);
    EXPECT_NEAR(fit_a / a, 1.0, 0.15);

    // A size never seen, between the measured ones and beyond them.
    for (uint64_t n : {uint64_t{3} << 20, uint64_t{1} << 26}) {
        tsr__pm_estimate est = Predict(pm.get(), Key("potrf", TSR_DEVICE_CUDA, n));
        double truth = a * std::pow(static_cast<double>(n), b);
        EXPECT_EQ(est.source, TSR_PM_REGRESSION);
        EXPECT_NEAR(est.seconds / truth, 1.0, 0.1) << n;
        EXPECT_GT(est.spread, 0.0);
        EXPECT_LT(est.spread, est.seconds);
    }
    EXPECT_EQ(tsr__pm_regression(pm.get(), "potrf", TSR_DEVICE_CPU, &fit_a, &fit_b), TSR_ENOTSUP);
    EXPECT_EQ(tsr__pm_regression(pm.get(), "nope", TSR_DEVICE_CUDA, &fit_a, &fit_b), TSR_ENOTSUP);
}

TEST(PerfModel, SourcesGoFromNoneToHintToRegressionToHistory)
{
    Pm pm = MakePm();
    const char *name = "stencil";
    tsr__pm_key small = Key(name, TSR_DEVICE_CPU, 1000);
    tsr__pm_key large = Key(name, TSR_DEVICE_CPU, 100000);
    tsr__pm_key mid = Key(name, TSR_DEVICE_CPU, 10000);

    EXPECT_EQ(Predict(pm.get(), mid, 1e9, 1e6).source, TSR_PM_NONE);  // no peaks yet
    EXPECT_EQ(Predict(pm.get(), mid).seconds, 0.0);
    tsr__pm_set_peaks(pm.get(), TSR_DEVICE_CPU, 1e11, 1e10);
    EXPECT_EQ(Predict(pm.get(), mid).source, TSR_PM_NONE);  // no hints

    tsr__pm_estimate est = Predict(pm.get(), mid, 1e9, 1e6);
    EXPECT_EQ(est.source, TSR_PM_HINT);
    EXPECT_DOUBLE_EQ(est.seconds, 1e-2);  // compute-bound: 1e9 / 1e11

    // One size with enough samples: no fit yet, and mid has none of its own.
    RecordN(pm.get(), small, TSR_PM_MIN_SAMPLES, 1.0);
    EXPECT_EQ(Predict(pm.get(), mid, 1e9, 1e6).source, TSR_PM_HINT);
    RecordN(pm.get(), large, TSR_PM_MIN_SAMPLES - 1, 100.0);
    EXPECT_EQ(Predict(pm.get(), mid, 1e9, 1e6).source, TSR_PM_HINT);  // too few at large
    RecordN(pm.get(), large, 1, 100.0);

    est = Predict(pm.get(), mid, 1e9, 1e6);
    EXPECT_EQ(est.source, TSR_PM_REGRESSION);
    EXPECT_NEAR(est.seconds, 10.0, 1e-9);  // t = n / 1000 through both points

    RecordN(pm.get(), mid, TSR_PM_MIN_SAMPLES - 1, 7.0);
    est = Predict(pm.get(), mid, 1e9, 1e6);
    EXPECT_EQ(est.source, TSR_PM_REGRESSION);
    EXPECT_EQ(est.n_samples, static_cast<uint64_t>(TSR_PM_MIN_SAMPLES - 1));
    RecordN(pm.get(), mid, 1, 7.0);
    est = Predict(pm.get(), mid, 1e9, 1e6);
    EXPECT_EQ(est.source, TSR_PM_HISTORY);
    EXPECT_DOUBLE_EQ(est.seconds, 7.0);

    // Other kinds know nothing of it.
    EXPECT_EQ(Predict(pm.get(), Key(name, TSR_DEVICE_CUDA, 10000), 1e9, 1e6).source, TSR_PM_NONE);
}

TEST(PerfModel, HintIsTheRoofline)
{
    Pm pm = MakePm();
    tsr__pm_key key = Key("mystery", TSR_DEVICE_CUDA, 1 << 20);

    tsr__pm_set_peaks(pm.get(), TSR_DEVICE_CUDA, 1e13, 1e12);
    EXPECT_DOUBLE_EQ(Predict(pm.get(), key, 1e10, 1e6).seconds, 1e-3);  // compute-bound
    EXPECT_DOUBLE_EQ(Predict(pm.get(), key, 1e6, 1e10).seconds, 1e-2);  // memory-bound
    EXPECT_DOUBLE_EQ(Predict(pm.get(), key, 0, 1e10).seconds, 1e-2);    // bytes only
    tsr__pm_estimate est = Predict(pm.get(), key, 1e10, 0);             // flops only
    EXPECT_DOUBLE_EQ(est.seconds, 1e-3);
    EXPECT_DOUBLE_EQ(est.spread, est.seconds);
    tsr__pm_set_peaks(pm.get(), TSR_DEVICE_CUDA, 0, 1e12);
    EXPECT_DOUBLE_EQ(Predict(pm.get(), key, 1e10, 1e6).seconds, 1e-6);  // flops peak unknown
    EXPECT_EQ(Predict(pm.get(), key, NAN, -1).source, TSR_PM_NONE);
}

TEST(PerfModel, RejectsBadArguments)
{
    Pm pm = MakePm();
    tsr__pm_key key = Key("ok", TSR_DEVICE_CPU, 64);
    std::string long_name(TSR_PM_MAX_NAME + 1, 'x');

    EXPECT_EQ(tsr__pm_record(pm.get(), &key, -1.0), TSR_EINVAL);
    EXPECT_EQ(tsr__pm_record(pm.get(), &key, NAN), TSR_EINVAL);
    EXPECT_EQ(tsr__pm_record(pm.get(), &key, INFINITY), TSR_EINVAL);
    EXPECT_EQ(tsr__pm_record(nullptr, &key, 1.0), TSR_EINVAL);
    EXPECT_EQ(tsr__pm_record(pm.get(), nullptr, 1.0), TSR_EINVAL);
    tsr__pm_key bad = key;
    bad.kind = TSR_DEVICE_KIND_COUNT;
    EXPECT_EQ(tsr__pm_record(pm.get(), &bad, 1.0), TSR_EINVAL);
    EXPECT_EQ(Predict(pm.get(), bad).source, TSR_PM_NONE);
    bad = key;
    bad.name = "";
    EXPECT_EQ(tsr__pm_record(pm.get(), &bad, 1.0), TSR_EINVAL);
    bad.name = nullptr;
    EXPECT_EQ(tsr__pm_record(pm.get(), &bad, 1.0), TSR_EINVAL);
    EXPECT_EQ(Predict(pm.get(), bad).source, TSR_PM_NONE);
    bad.name = long_name.c_str();
    EXPECT_EQ(tsr__pm_record(pm.get(), &bad, 1.0), TSR_EINVAL);
    long_name.pop_back();
    bad.name = long_name.c_str();
    EXPECT_EQ(tsr__pm_record(pm.get(), &bad, 1.0), TSR_OK);
    EXPECT_EQ(tsr__pm_create(nullptr, nullptr), TSR_EINVAL);
    tsr__pm_destroy(nullptr);
}

TEST(PerfModel, DropsFootprintsBeyondTheLimit)
{
    Pm pm = MakePm();
    for (uint64_t n = 1; n <= TSR_PM_MAX_ENTRIES; n++) {
        tsr__pm_key key = Key("many", TSR_DEVICE_SIM, n);
        ASSERT_EQ(tsr__pm_record(pm.get(), &key, 1.0), TSR_OK);
    }
    tsr__pm_key extra = Key("many", TSR_DEVICE_SIM, TSR_PM_MAX_ENTRIES + 1);
    EXPECT_EQ(tsr__pm_record(pm.get(), &extra, 1.0), TSR_OK);
    EXPECT_EQ(Predict(pm.get(), extra).n_samples, 0u);
    EXPECT_EQ(Predict(pm.get(), Key("many", TSR_DEVICE_SIM, 1)).n_samples, 1u);
    EXPECT_NE(PmSummary(pm.get()).find("1 dropped"), std::string::npos);
}

// Codelets on several kinds and sizes; returns the keys used.
std::vector<tsr__pm_key> Populate(tsr__pm *pm)
{
    static const char *const names[] = {"gemm", "trsm", "odd name %x"};
    std::vector<tsr__pm_key> keys;
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> noise(0.9, 1.1);

    for (const char *name : names) {
        for (uint32_t kind : {uint32_t{TSR_DEVICE_CPU}, uint32_t{TSR_DEVICE_CUDA}}) {
            for (uint64_t n : {4096u, 65536u, 1048576u}) {
                tsr__pm_key key = Key(name, kind, n);
                int n_samples = static_cast<int>(n % 7) + 2;  // 3, 4 and 6 samples
                for (int i = 0; i < n_samples + (kind == TSR_DEVICE_CUDA ? 40 : 0); i++) {
                    double t = 1e-8 * static_cast<double>(n) * (kind + 1) * noise(rng);
                    EXPECT_EQ(tsr__pm_record(pm, &key, t), TSR_OK);
                }
                keys.push_back(key);
            }
            keys.push_back(Key(name, kind, 300000));  // never recorded: regression
        }
    }
    return keys;
}

void ExpectSamePredictions(tsr__pm *a, tsr__pm *b, const std::vector<tsr__pm_key> &keys)
{
    for (const tsr__pm_key &key : keys) {
        tsr__pm_estimate ea = Predict(a, key);
        tsr__pm_estimate eb = Predict(b, key);
        EXPECT_EQ(ea.source, eb.source) << key.name << " " << key.n_bytes;
        // Exact for histories; a fit may sum its points in another order.
        EXPECT_NEAR(ea.seconds, eb.seconds, 1e-12 * ea.seconds) << key.name << " " << key.n_bytes;
        EXPECT_NEAR(ea.spread, eb.spread, 1e-9 * ea.seconds) << key.name << " " << key.n_bytes;
        EXPECT_EQ(ea.n_samples, eb.n_samples) << key.name << " " << key.n_bytes;
    }
}

TEST(PerfModel, SaveAndLoadGiveTheSamePredictions)
{
    TempDir tmp;
    std::string dir = tmp.sub("models/host1");  // created on save
    Pm pm = MakePm(dir);
    std::vector<tsr__pm_key> keys = Populate(pm.get());
    ASSERT_EQ(tsr__pm_save(pm.get()), TSR_OK);
    EXPECT_EQ(ListDir(dir).size(), 3u);

    Pm loaded = MakePm(dir);
    tsr__pm_load_report report;
    tsr__pm_get_load_report(loaded.get(), &report);
    EXPECT_EQ(report.n_files, 3u);
    EXPECT_EQ(report.n_bad_files, 0u);
    EXPECT_EQ(report.n_entries, 18u);
    EXPECT_EQ(report.n_skipped_lines, 0u);
    EXPECT_STREQ(report.first_problem, "");
    ExpectSamePredictions(pm.get(), loaded.get(), keys);
    EXPECT_EQ(Predict(loaded.get(), keys[0]).source, TSR_PM_HISTORY);
    EXPECT_EQ(Predict(loaded.get(), keys[3]).source, TSR_PM_REGRESSION);

    // Destroy saves too, and the ring keeps its order across the round trip: the
    // next samples replace the oldest (the 5 s ones), leaving 3 s and 9 s ones.
    tsr__pm_key key = keys[0];
    RecordN(loaded.get(), key, TSR_PM_KEEP / 2, 5.0);
    RecordN(loaded.get(), key, TSR_PM_KEEP / 2, 3.0);
    loaded.reset();
    Pm again = MakePm(dir);
    RecordN(again.get(), key, TSR_PM_KEEP / 2, 9.0);
    EXPECT_DOUBLE_EQ(Predict(again.get(), key).seconds, 6.0);
}

TEST(PerfModel, SaveRewritesOnlyChangedCodelets)
{
    TempDir tmp;
    Pm pm = MakePm(tmp.path());
    tsr__pm_key a = Key("alpha", TSR_DEVICE_CPU, 64);
    tsr__pm_key b = Key("beta", TSR_DEVICE_CPU, 64);
    RecordN(pm.get(), a, 3, 1.0);
    RecordN(pm.get(), b, 3, 1.0);
    ASSERT_EQ(tsr__pm_save(pm.get()), TSR_OK);
    ASSERT_TRUE(fs::remove(tmp.sub(FileName("alpha"))));

    RecordN(pm.get(), b, 1, 2.0);
    ASSERT_EQ(tsr__pm_save(pm.get()), TSR_OK);
    EXPECT_FALSE(fs::exists(tmp.sub(FileName("alpha"))));
    EXPECT_TRUE(fs::exists(tmp.sub(FileName("beta"))));
    EXPECT_NE(ReadFile(tmp.sub(FileName("beta"))).find(" 4 "), std::string::npos);
}

TEST(PerfModel, SaveWithoutDirectoryIsANoOp)
{
    Pm pm = MakePm();
    tsr__pm_key key = Key("x", TSR_DEVICE_CPU, 8);
    RecordN(pm.get(), key, 3, 1.0);
    EXPECT_EQ(tsr__pm_save(pm.get()), TSR_OK);
    EXPECT_EQ(tsr__pm_save(nullptr), TSR_EINVAL);
}

TEST(PerfModel, SaveReportsAnUnwritableDirectory)
{
    TempDir tmp;
    WriteFile(tmp.sub("file"), "not a directory");
    Pm pm = MakePm(tmp.sub("file/models"));
    tsr__pm_key key = Key("x", TSR_DEVICE_CPU, 8);
    RecordN(pm.get(), key, 3, 1.0);
    EXPECT_EQ(tsr__pm_save(pm.get()), TSR_EBACKEND);
    EXPECT_STRNE(tsr_last_error(), "");
}

std::string GoodFile(const char *name)
{
    TempDir tmp;
    {
        Pm pm = MakePm(tmp.path());
        RecordN(pm.get(), Key(name, TSR_DEVICE_CPU, 4096), 5, 0.25);
        RecordN(pm.get(), Key(name, TSR_DEVICE_CUDA, 4096), 4, 0.125);
        RecordN(pm.get(), Key(name, TSR_DEVICE_CUDA, 8192), 3, 0.5);
    }
    return ReadFile(tmp.sub(FileName(name)));
}

TEST(PerfModel, GarbageFilesAreReportedNotFatal)
{
    TempDir tmp;
    std::string good = GoodFile("good");
    ASSERT_NE(good.find("tessera-perfmodel 1\ncodelet good\n"), std::string::npos) << good;

    std::string binary(300, '\0');
    std::mt19937 rng(3);
    for (char &c : binary) {
        c = static_cast<char>(rng());
    }
    WriteFile(tmp.sub("binary-00000001.model"), binary);
    WriteFile(tmp.sub("empty-00000002.model"), "");
    WriteFile(tmp.sub("magic-00000003.model"), "tessera-perfmodel 2\ncodelet x\n");
    WriteFile(tmp.sub("nocodelet-00000004.model"),
              "tessera-perfmodel 1\ncpu 00000001 1 1 1 0 1 1\n");
    WriteFile(tmp.sub("badname-00000005.model"), "tessera-perfmodel 1\ncodelet a%zz\n");
    const char *bad_lines[] = {
        "gpu 00000001 64 3 1 0 3 1 1 1",                    // unknown kind
        "cpu 0000000g 64 3 1 0 3 1 1 1",                    // bad footprint
        "cpu 123456789 64 3 1 0 3 1 1 1",                   // footprint over 32 bits
        "cpu 00000001 -64 3 1 0 3 1 1 1",                   // negative size
        "cpu 00000001 64 3 1 0 0",                          // no samples
        "cpu 00000001 64 3 1 0 33 1",                       // too many samples
        "cpu 00000001 64 2 1 0 3 1 1 1",                    // count < kept
        "cpu 00000001 64 3 1 0 3 1 1",                      // missing sample
        "cpu 00000001 64 3 1 0 3 1 1 1 1",                  // trailing text
        "cpu 00000001 64 3 1 0 3 1 nan 1",                  // nan
        "cpu 00000001 64 3 1 0 3 1 inf 1",                  // inf
        "cpu 00000001 64 3 1 0 3 1 -1 1",                   // negative time
        "cpu 00000001 64 3 1 0 3 1 1e999 1",                // overflow
        "cpu 00000001 99999999999999999999 3 1 0 3 1 1 1",  // size overflow
        "cpu 00000002 64 3 1 0 3 2 2 2",                    // duplicate of the good line below
        "cpu 00000001 6",                                   // truncated
    };
    std::string mixed = "tessera-perfmodel 1\n# a comment\n\ncodelet mixed\n";
    mixed += "cpu 00000002 64 3 1 0 3 1 1 1\n";
    for (const char *line : bad_lines) {
        mixed += std::string(line) + "\n";
    }
    mixed += "cuda 00000003 128 3 2 0 3 2 2 2";  // good, no final newline
    WriteFile(tmp.sub("mixed-00000006.model"), mixed);
    WriteFile(tmp.sub("notes.txt"), "ignored");
    WriteFile(tmp.sub("transfers.model"), "tessera-xfer 1\n");
    fs::create_directory(tmp.sub("dir-00000007.model"));
    WriteFile(tmp.sub(FileName("good")), good);

    Pm pm = MakePm(tmp.path());
    tsr__pm_load_report report;
    tsr__pm_get_load_report(pm.get(), &report);
    EXPECT_EQ(report.n_files, 8u);
    EXPECT_EQ(report.n_bad_files, 6u);
    EXPECT_EQ(report.n_entries, 5u);
    EXPECT_EQ(report.n_skipped_lines, sizeof(bad_lines) / sizeof(bad_lines[0]));
    EXPECT_STRNE(report.first_problem, "");

    tsr__pm_key mixed_key = {"mixed", TSR_DEVICE_CPU, 2, 64};
    EXPECT_EQ(Predict(pm.get(), mixed_key).seconds, 1.0);
    tsr__pm_key mixed_cuda = {"mixed", TSR_DEVICE_CUDA, 3, 128};
    EXPECT_EQ(Predict(pm.get(), mixed_cuda).seconds, 2.0);
    EXPECT_EQ(Predict(pm.get(), Key("good", TSR_DEVICE_CPU, 4096)).seconds, 0.25);
    EXPECT_EQ(Predict(pm.get(), Key("good", TSR_DEVICE_CUDA, 8192)).seconds, 0.5);
}

TEST(PerfModel, EveryTruncationOfAFileLoadsSafely)
{
    std::string good = GoodFile("cut");
    TempDir tmp;
    std::string path = tmp.sub(FileName("cut"));

    for (size_t n = 0; n <= good.size(); n++) {
        WriteFile(path, good.substr(0, n));
        Pm pm = MakePm(tmp.path());
        tsr__pm_load_report report;
        tsr__pm_get_load_report(pm.get(), &report);
        ASSERT_EQ(report.n_files, 1u);
        ASSERT_LE(report.n_entries, 3u);
        // A cut inside the last field may still parse (fewer digits); anything
        // loaded is a prefix of the good file's values, never garbage.
        tsr__pm_estimate est = Predict(pm.get(), Key("cut", TSR_DEVICE_CPU, 4096));
        if (est.source == TSR_PM_HISTORY) {
            ASSERT_GE(est.seconds, 0.0);
            ASSERT_LE(est.seconds, 0.25);
        }
        pm.reset();  // saves nothing: nothing changed
        ASSERT_EQ(ReadFile(path), good.substr(0, n));
    }
}

TEST(PerfModel, OddNamesStayInsideTheDirectory)
{
    TempDir tmp;
    std::string dir = tmp.sub("models");
    std::vector<std::string> names = {
        "../../escape",
        "/etc/passwd",
        "a/b/c",
        ".hidden",
        "..",
        ".",
        "with space\tand\ttab",
        "line\nbreak",
        "percent%2fslash",
        "caf\xc3\xa9",
        std::string(TSR_PM_MAX_NAME, '/'),
        std::string(TSR_PM_MAX_NAME, 'n'),
        "A",
        "a",
    };
    {
        Pm pm = MakePm(dir);
        for (size_t i = 0; i < names.size(); i++) {
            RecordN(pm.get(), Key(names[i].c_str(), TSR_DEVICE_CPU, 64), 3, 1.0 + i);
        }
        ASSERT_EQ(tsr__pm_save(pm.get()), TSR_OK);
    }
    // Everything it wrote is a plain file right in dir, and nothing beside dir.
    EXPECT_EQ(ListDir(tmp.path()), std::vector<std::string>{"models"});
    std::vector<std::string> files = ListDir(dir);
    EXPECT_EQ(files.size(), names.size());
    for (const std::string &f : files) {
        EXPECT_TRUE(fs::is_regular_file(dir + "/" + f)) << f;
        EXPECT_NE(f[0], '.') << f;
        EXPECT_EQ(f.find('/'), std::string::npos) << f;
        EXPECT_LE(f.size(), 96u) << f;
    }
    Pm pm = MakePm(dir);
    for (size_t i = 0; i < names.size(); i++) {
        tsr__pm_estimate est = Predict(pm.get(), Key(names[i].c_str(), TSR_DEVICE_CPU, 64));
        EXPECT_EQ(est.source, TSR_PM_HISTORY) << i;
        EXPECT_EQ(est.seconds, 1.0 + i) << i;
    }
}

TEST(PerfModel, ConcurrentRecordsAllCount)
{
    Pm pm = MakePm();
    const int n_threads = 4;
    const int n_per_thread = 5000;
    const char *const names[] = {"k0", "k1", "k2"};
    std::atomic<int> n_history{0};
    std::vector<std::thread> threads;

    for (int t = 0; t < n_threads; t++) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < n_per_thread; i++) {
                tsr__pm_key key = Key(names[i % 3], (i / 3) % 2, 64u << ((i + t) % 8));
                EXPECT_EQ(tsr__pm_record(pm.get(), &key, 1e-3 * (1 + i % 5)), TSR_OK);
                if (i % 16 == 0 && Predict(pm.get(), key).source == TSR_PM_HISTORY) {
                    n_history++;
                }
            }
        });
    }
    std::thread printer([&] {
        for (int i = 0; i < 10; i++) {
            EXPECT_NE(PmSummary(pm.get()).find("models:"), std::string::npos);
        }
    });
    for (std::thread &th : threads) {
        th.join();
    }
    printer.join();

    uint64_t total = 0;
    for (const char *name : names) {
        for (uint32_t kind = 0; kind < 2; kind++) {
            for (int s = 0; s < 8; s++) {
                total += Predict(pm.get(), Key(name, kind, 64u << s)).n_samples;
            }
        }
    }
    EXPECT_EQ(total, static_cast<uint64_t>(n_threads) * n_per_thread);
    EXPECT_GT(n_history.load(), 0);
}

TEST(PerfModel, PrintSummarises)
{
    Pm pm = MakePm();
    for (uint64_t n : {1024u, 2048u, 4096u}) {
        RecordN(pm.get(), Key("gemm", TSR_DEVICE_CUDA, n), 3, 1e-9 * n);
    }
    RecordN(pm.get(), Key("gemm", TSR_DEVICE_CPU, 1024), 2, 1.0);
    RecordN(pm.get(), Key("axpy", TSR_DEVICE_CPU, 1024), 1, 1.0);
    std::string text = PmSummary(pm.get());
    EXPECT_NE(text.find("models: 2 codelets, 5 entries"), std::string::npos) << text;
    EXPECT_NE(
        text.find(
            "codelet gemm on cuda: 3 sizes (1 KiB .. 4 KiB), 9 samples, t = 1e-09 s * n^1.00"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find("codelet axpy on cpu: 1 sizes"), std::string::npos) << text;
    EXPECT_LT(text.find("axpy"), text.find("gemm")) << text;
    EXPECT_STREQ(tsr__pm_kind_name(TSR_DEVICE_SIM), "sim");
    EXPECT_STREQ(tsr__pm_kind_name(99), "?");
}

// ---- transfer model ------------------------------------------------------------------

struct FakeLink {
    double latency_s;
    double bytes_per_s;
};

// Copies that take latency + n / bandwidth, with ±2 % noise and every 4th one 10x
// slower (a noisy neighbour); pairs marked unsupported or failing say so.
struct FakeCopier {
    FakeLink links[TSR_XM_MAX_NODES][TSR_XM_MAX_NODES];
    uint32_t unsupported_src = UINT32_MAX, unsupported_dst = UINT32_MAX;
    uint32_t failing_src = UINT32_MAX, failing_dst = UINT32_MAX;
    std::mt19937 rng{11};
    int n_calls = 0;

    static tsr_status_t Copy(void *ctx, uint32_t src, uint32_t dst, size_t n_bytes,
                             double *seconds_out)
    {
        auto *self = static_cast<FakeCopier *>(ctx);
        if (src == self->unsupported_src && dst == self->unsupported_dst) {
            return TSR_ENOTSUP;
        }
        if (src == self->failing_src && dst == self->failing_dst) {
            return TSR_EBACKEND;
        }
        self->n_calls++;
        const FakeLink &l = self->links[src][dst];
        std::uniform_real_distribution<double> noise(0.98, 1.02);
        double t = (l.latency_s + static_cast<double>(n_bytes) / l.bytes_per_s) * noise(self->rng);
        *seconds_out = self->n_calls % 4 == 0 ? 10 * t : t;
        return TSR_OK;
    }
};

FakeCopier ThreeNodeLinks()
{
    FakeCopier c;
    for (uint32_t s = 0; s < 3; s++) {
        for (uint32_t d = 0; d < 3; d++) {
            c.links[s][d] = {(2.0 + s + 3 * d) * 1e-6, (5.0 + 4 * s + d) * 1e9};
        }
    }
    return c;
}

TEST(XferModel, PredictIsLatencyPlusSizeOverBandwidth)
{
    Xm xm = MakeXm(3);
    ASSERT_EQ(tsr__xm_set(xm.get(), 0, 1, 5e-6, 1e10), TSR_OK);
    EXPECT_DOUBLE_EQ(tsr__xm_predict(xm.get(), 0, 1, 1000000), 5e-6 + 1e-4);
    EXPECT_DOUBLE_EQ(tsr__xm_predict(xm.get(), 1, 0, 0), TSR_XM_DEFAULT_LATENCY_S);
    EXPECT_EQ(tsr__xm_predict(xm.get(), 1, 1, 1 << 30), 0.0);
    EXPECT_EQ(tsr__xm_predict(xm.get(), 0, 3, 1), 0.0);
    double lat = -1, bw = -1;
    ASSERT_EQ(tsr__xm_get(xm.get(), 2, 2, &lat, &bw), TSR_OK);
    EXPECT_EQ(lat, 0.0);
    EXPECT_TRUE(std::isinf(bw));
    EXPECT_EQ(tsr__xm_set(xm.get(), 0, 1, -1, 1e9), TSR_EINVAL);
    EXPECT_EQ(tsr__xm_set(xm.get(), 0, 1, 1e-6, 0), TSR_EINVAL);
    EXPECT_EQ(tsr__xm_set(xm.get(), 0, 16, 1e-6, 1e9), TSR_EINVAL);
    tsr__xm *none = nullptr;
    EXPECT_EQ(tsr__xm_create(0, &none), TSR_EINVAL);
    EXPECT_EQ(tsr__xm_create(TSR_XM_MAX_NODES + 1, &none), TSR_EINVAL);
    EXPECT_EQ(none, nullptr);
    tsr__xm_destroy(nullptr);
}

TEST(XferModel, CalibrationRecoversLatencyAndBandwidth)
{
    Xm xm = MakeXm(3);
    FakeCopier copier = ThreeNodeLinks();
    ASSERT_EQ(tsr__xm_calibrate(xm.get(), FakeCopier::Copy, &copier, nullptr), TSR_OK);
    EXPECT_EQ(copier.n_calls, 6 * (1 + 5 + 3));
    for (uint32_t s = 0; s < 3; s++) {
        for (uint32_t d = 0; d < 3; d++) {
            if (s == d) {
                continue;
            }
            double lat, bw;
            ASSERT_EQ(tsr__xm_get(xm.get(), s, d, &lat, &bw), TSR_OK);
            EXPECT_NEAR(bw / copier.links[s][d].bytes_per_s, 1.0, 0.05) << s << "->" << d;
            EXPECT_NEAR(lat, copier.links[s][d].latency_s, 1.5e-6) << s << "->" << d;
        }
    }
}

TEST(XferModel, CalibrationSkipsUnsupportedPairsAndStopsOnErrors)
{
    Xm xm = MakeXm(3);
    FakeCopier copier = ThreeNodeLinks();
    copier.unsupported_src = 1;
    copier.unsupported_dst = 2;
    ASSERT_EQ(tsr__xm_calibrate(xm.get(), FakeCopier::Copy, &copier, nullptr), TSR_OK);
    double lat, bw;
    ASSERT_EQ(tsr__xm_get(xm.get(), 1, 2, &lat, &bw), TSR_OK);
    EXPECT_EQ(lat, TSR_XM_DEFAULT_LATENCY_S);
    EXPECT_EQ(bw, TSR_XM_DEFAULT_BYTES_PER_S);

    copier.failing_src = 2;
    copier.failing_dst = 0;
    EXPECT_EQ(tsr__xm_calibrate(xm.get(), FakeCopier::Copy, &copier, nullptr), TSR_EBACKEND);
    tsr__xm_calib_opts opts = TSR_XM_CALIB_OPTS_INIT;
    opts.small_bytes = 1 << 20;
    opts.large_bytes = 1 << 10;
    EXPECT_EQ(tsr__xm_calibrate(xm.get(), FakeCopier::Copy, &copier, &opts), TSR_EINVAL);
    EXPECT_EQ(tsr__xm_calibrate(xm.get(), nullptr, &copier, nullptr), TSR_EINVAL);
}

TEST(XferModel, ObserveFollowsEvidenceButNotOneOutlier)
{
    Xm xm = MakeXm(2);
    ASSERT_EQ(tsr__xm_set(xm.get(), 0, 1, 10e-6, 10e9), TSR_OK);
    const uint64_t big = 64 << 20;
    const uint64_t small = 64;
    double lat, bw;

    // One copy 100x slower than predicted.
    tsr__xm_observe(xm.get(), 0, 1, big, 100 * tsr__xm_predict(xm.get(), 0, 1, big));
    ASSERT_EQ(tsr__xm_get(xm.get(), 0, 1, &lat, &bw), TSR_OK);
    EXPECT_GT(bw, 0.9 * 10e9);
    EXPECT_LT(bw, 10e9);
    EXPECT_DOUBLE_EQ(lat, 10e-6);

    // Contention: the link now gives half its bandwidth.
    for (int i = 0; i < 60; i++) {
        tsr__xm_observe(xm.get(), 0, 1, big, 10e-6 + static_cast<double>(big) / 5e9);
    }
    ASSERT_EQ(tsr__xm_get(xm.get(), 0, 1, &lat, &bw), TSR_OK);
    EXPECT_NEAR(bw / 5e9, 1.0, 0.05);

    // Small copies refine the latency instead.
    for (int i = 0; i < 80; i++) {
        tsr__xm_observe(xm.get(), 0, 1, small, 30e-6 + static_cast<double>(small) / 5e9);
    }
    ASSERT_EQ(tsr__xm_get(xm.get(), 0, 1, &lat, &bw), TSR_OK);
    EXPECT_NEAR(lat / 30e-6, 1.0, 0.05);
    EXPECT_NEAR(bw / 5e9, 1.0, 0.05);

    // Nonsense is ignored; the reverse direction is untouched.
    tsr__xm_observe(xm.get(), 0, 1, big, -1);
    tsr__xm_observe(xm.get(), 0, 1, big, NAN);
    tsr__xm_observe(xm.get(), 0, 1, 0, 1);
    tsr__xm_observe(xm.get(), 1, 1, big, 1);
    tsr__xm_observe(xm.get(), 0, 7, big, 1);
    double lat2, bw2;
    ASSERT_EQ(tsr__xm_get(xm.get(), 0, 1, &lat2, &bw2), TSR_OK);
    EXPECT_EQ(lat2, lat);
    EXPECT_EQ(bw2, bw);
    ASSERT_EQ(tsr__xm_get(xm.get(), 1, 0, &lat, &bw), TSR_OK);
    EXPECT_EQ(bw, TSR_XM_DEFAULT_BYTES_PER_S);
}

TEST(XferModel, SmallCopiesDoNotDragTheBandwidthDown)
{
    // Calibration found no measurable latency (a memcpy-like link); small copies
    // then show one, which must go to the latency, not to the bandwidth.
    Xm xm = MakeXm(2);
    ASSERT_EQ(tsr__xm_set(xm.get(), 0, 1, 0, 10e9), TSR_OK);
    for (int i = 0; i < 300; i++) {
        tsr__xm_observe(xm.get(), 0, 1, 64, 1e-6);
    }
    double lat, bw;
    ASSERT_EQ(tsr__xm_get(xm.get(), 0, 1, &lat, &bw), TSR_OK);
    EXPECT_EQ(bw, 10e9);
    EXPECT_NEAR(lat / 1e-6, 1.0, 0.05);
}

TEST(XferModel, ConcurrentObserveAndPredict)
{
    Xm xm = MakeXm(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 20000; i++) {
                uint32_t src = static_cast<uint32_t>(i % 4);
                uint32_t dst = static_cast<uint32_t>((i / 4 + t) % 4);
                uint64_t n = uint64_t{1} << (i % 24);
                tsr__xm_observe(xm.get(), src, dst, n, 5e-6 + static_cast<double>(n) / 8e9);
                double p = tsr__xm_predict(xm.get(), dst, src, n);
                EXPECT_TRUE(std::isfinite(p) && p >= 0);
            }
        });
    }
    for (std::thread &th : threads) {
        th.join();
    }
    double lat, bw;
    ASSERT_EQ(tsr__xm_get(xm.get(), 0, 1, &lat, &bw), TSR_OK);
    EXPECT_NEAR(bw / 8e9, 1.0, 0.1);
}

TEST(XferModel, CacheIsReusedOnlyForTheSamePlatform)
{
    TempDir tmp;
    std::string dir = tmp.sub("cache");
    FakeCopier copier = ThreeNodeLinks();
    double lat0, bw0;
    {
        Xm xm = MakeXm(3);
        ASSERT_EQ(tsr__xm_setup(xm.get(), dir.c_str(), "host+sim0+sim1", FakeCopier::Copy, &copier),
                  TSR_OK);
        EXPECT_EQ(tsr__xm_cache_state(xm.get()), TSR_XM_CACHE_ABSENT);
        EXPECT_GT(copier.n_calls, 0);
        ASSERT_EQ(tsr__xm_get(xm.get(), 2, 1, &lat0, &bw0), TSR_OK);
        // Live refinements are not what the cache keeps.
        for (int i = 0; i < 50; i++) {
            tsr__xm_observe(xm.get(), 2, 1, 1 << 24, 1.0);
        }
        ASSERT_EQ(tsr__xm_save(xm.get(), dir.c_str(), "host+sim0+sim1"), TSR_OK);
    }
    ASSERT_TRUE(fs::exists(dir + "/transfers.model"));

    copier.n_calls = 0;
    Xm same = MakeXm(3);
    ASSERT_EQ(tsr__xm_setup(same.get(), dir.c_str(), "host+sim0+sim1", FakeCopier::Copy, &copier),
              TSR_OK);
    EXPECT_EQ(tsr__xm_cache_state(same.get()), TSR_XM_CACHE_LOADED);
    EXPECT_EQ(copier.n_calls, 0);
    double lat, bw;
    ASSERT_EQ(tsr__xm_get(same.get(), 2, 1, &lat, &bw), TSR_OK);
    EXPECT_EQ(lat, lat0);
    EXPECT_EQ(bw, bw0);

    Xm other = MakeXm(3);
    EXPECT_EQ(tsr__xm_load(other.get(), dir.c_str(), "host+NVIDIA H100+sim1"), TSR_XM_CACHE_STALE);
    ASSERT_EQ(tsr__xm_get(other.get(), 2, 1, &lat, &bw), TSR_OK);
    EXPECT_EQ(bw, TSR_XM_DEFAULT_BYTES_PER_S);
    Xm fewer = MakeXm(2);
    EXPECT_EQ(tsr__xm_load(fewer.get(), dir.c_str(), "host+sim0+sim1"), TSR_XM_CACHE_STALE);
    Xm fresh = MakeXm(3);
    EXPECT_EQ(tsr__xm_load(fresh.get(), tmp.sub("nowhere").c_str(), "x"), TSR_XM_CACHE_ABSENT);

    // A new platform recalibrates and replaces the cache.
    ASSERT_EQ(
        tsr__xm_setup(other.get(), dir.c_str(), "host+NVIDIA H100+sim1", FakeCopier::Copy, &copier),
        TSR_OK);
    EXPECT_EQ(tsr__xm_cache_state(other.get()), TSR_XM_CACHE_STALE);
    EXPECT_GT(copier.n_calls, 0);
    EXPECT_EQ(tsr__xm_load(same.get(), dir.c_str(), "host+sim0+sim1"), TSR_XM_CACHE_STALE);
    EXPECT_NE(ReadFile(dir + "/transfers.model").find("signature host+NVIDIA%20H100+sim1\n"),
              std::string::npos);
}

TEST(XferModel, MalformedCacheIsIgnoredWhole)
{
    TempDir tmp;
    std::string path = tmp.sub("transfers.model");
    Xm xm = MakeXm(2);
    ASSERT_EQ(tsr__xm_set(xm.get(), 0, 1, 1e-6, 2e9), TSR_OK);
    ASSERT_EQ(tsr__xm_set(xm.get(), 1, 0, 2e-6, 3e9), TSR_OK);
    ASSERT_EQ(tsr__xm_save(xm.get(), tmp.path().c_str(), "sig"), TSR_OK);
    std::string good = ReadFile(path);

    std::vector<std::string> bad = {
        "",
        "tessera-xfer 2\nsignature sig\nnodes 2\n",
        "tessera-xfer 1\nsignature sig\nnodes 2\npair 0 1 1e-6 2e9\n",  // missing pair
        "tessera-xfer 1\nsignature sig\nnodes 2\npair 0 1 1e-6 2e9\npair 0 1 1e-6 2e9\n",
        "tessera-xfer 1\nsignature sig\nnodes 2\npair 0 1 1e-6 2e9\npair 1 0 1e-6 0\n",
        "tessera-xfer 1\nsignature sig\nnodes 2\npair 0 1 1e-6 2e9\npair 1 2 1e-6 1e9\n",
        "tessera-xfer 1\nsignature sig\nnodes 2\npair 0 1 1e-6 2e9\npair 1 0 1e-6 1e9 x\n",
        std::string("tessera-xfer 1\nsignature sig\0\nnodes 2\n", 38),
    };
    for (size_t n = 0; n < good.size(); n++) {
        bad.push_back(good.substr(0, n));
    }
    for (const std::string &text : bad) {
        WriteFile(path, text);
        Xm fresh = MakeXm(2);
        enum tsr__xm_cache c = tsr__xm_load(fresh.get(), tmp.path().c_str(), "sig");
        if (c == TSR_XM_CACHE_LOADED) {
            // Only a cut in the last number can still parse; the rest must match.
            EXPECT_EQ(text.substr(0, good.rfind(' ')), good.substr(0, good.rfind(' ')));
            continue;
        }
        EXPECT_TRUE(c == TSR_XM_CACHE_BAD || c == TSR_XM_CACHE_STALE) << text;
        double lat, bw;
        ASSERT_EQ(tsr__xm_get(fresh.get(), 0, 1, &lat, &bw), TSR_OK);
        EXPECT_EQ(bw, TSR_XM_DEFAULT_BYTES_PER_S) << text;
    }
    WriteFile(path, good);
    Xm fresh = MakeXm(2);
    EXPECT_EQ(tsr__xm_load(fresh.get(), tmp.path().c_str(), "sig"), TSR_XM_CACHE_LOADED);
    double lat, bw;
    ASSERT_EQ(tsr__xm_get(fresh.get(), 1, 0, &lat, &bw), TSR_OK);
    EXPECT_EQ(lat, 2e-6);
    EXPECT_EQ(bw, 3e9);
}

TEST(XferModel, PrintShowsTheMatrix)
{
    Xm xm = MakeXm(2);
    ASSERT_EQ(tsr__xm_set(xm.get(), 0, 1, 5e-6, 12.5e9), TSR_OK);
    const char *const names[] = {"host", "cuda0"};
    FILE *f = tmpfile();
    ASSERT_NE(f, nullptr);
    tsr__xm_print(xm.get(), f, names);
    tsr__xm_print(xm.get(), f, nullptr);
    std::string text = ReadAll(f);
    fclose(f);
    EXPECT_NE(text.find("cuda0"), std::string::npos) << text;
    EXPECT_NE(text.find("12.5 / 5"), std::string::npos) << text;
    EXPECT_NE(text.find("node1"), std::string::npos) << text;
}

}  // namespace
