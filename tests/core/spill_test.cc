// Memory pressure: host and device limits far below the working set, eviction
// device -> host -> disk, read-back, back-pressure, and the disk tier's errors
// (unwritable directory, full disk, corrupted file, oversized tasks). Every result
// is checked against a sequential replay on fresh random inputs.
#include <gtest/gtest.h>
#include <tessera.h>

#include "common/test_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

// Tests only (core/spill.h): the next `count` spill writes fail with errno `err`.
extern "C" void tsr__spill_inject_fault(tsr_runtime_t *rt, int err, uint32_t count);

namespace {

using tsr_test::TestSeed;

using Rt = tsr_test::Runtime;

// A fresh spill directory, removed with its contents.
class TempDir : public tsr_test::TempDir {
public:
    TempDir() : tsr_test::TempDir("tsr-spill-test") {}
};

struct Limits {
    uint32_t n_sim = 0;
    uint64_t sim_mem = 0;
    uint64_t host_limit = 0;
    const char *spill_dir = nullptr;
    tsr_spill_compress_t compress = TSR_SPILL_COMPRESS_DEFAULT;
    int32_t n_cpu = 2;
};

Rt Start(const Limits &l)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    cfg.flags = TSR_CONFIG_F_NO_ENV;
    cfg.n_cpu_workers = l.n_cpu;
    cfg.n_sim_devices = l.n_sim;
    cfg.sim_mem_bytes = l.sim_mem;
    cfg.host_memory_limit.bytes = l.host_limit;
    cfg.spill_dir = l.spill_dir;
    cfg.spill_compression = l.compress;
    cfg.log_level = TSR_LOG_NONE;
    tsr_runtime_t *rt = nullptr;
    EXPECT_EQ(tsr_init(&cfg, &rt), TSR_OK) << tsr_last_error();
    return Rt(rt);
}

// The CPU alone with a 1 MiB host limit, spilling to spill_dir.
constexpr uint64_t kSmallHostLimit = 1 << 20;

Rt StartSmallHost(const std::string &spill_dir)
{
    Limits l;
    l.host_limit = kSmallHostLimit;
    l.spill_dir = spill_dir.c_str();
    return Start(l);
}

uint64_t Mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

// ---- Kernels --------------------------------------------------------------------

// fill: allocates its one output (words words) and writes Mix(key, i), or zeros
// when key is 0 (compressible).
struct FillArg {
    uint64_t key;
    uint64_t words;
};

uint64_t FillWord(uint64_t key, uint64_t i)
{
    return key == 0 ? 0 : Mix(key, i);
}

tsr_status_t FillKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    FillArg a;
    std::memcpy(&a, arg, sizeof(a));
    void *p = nullptr;
    tsr_status_t st = tsr_task_ctx_alloc(ctx, 0, a.words * sizeof(uint64_t), &p);
    if (st != TSR_OK) {
        tsr_task_ctx_fail(ctx, "%s", tsr_last_error());
        return st;
    }
    uint64_t *w = static_cast<uint64_t *>(p);
    for (uint64_t i = 0; i < a.words; i++) {
        w[i] = FillWord(a.key, i);
    }
    return TSR_OK;
}

// What square then reduce add to the accumulator for a chunk filled with key.
uint64_t SquaredSum(uint64_t key, uint64_t words)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < words; i++) {
        uint64_t x = FillWord(key, i);
        s += x * x + 7;
    }
    return s;
}

// step: every written buffer becomes old*31 + Mix(hash of the read ones, index).
struct StepArg {
    uint64_t key;
    uint32_t n;
    uint32_t modes[3];
};

void ApplyStep(const StepArg &a, const std::vector<uint64_t *> &bufs, size_t words)
{
    uint64_t h = a.key;
    for (uint32_t i = 0; i < a.n; i++) {
        if (a.modes[i] & TSR_R) {
            for (size_t w = 0; w < words; w += 7) {
                h = Mix(h, bufs[i][w]);
            }
        }
    }
    for (uint32_t i = 0; i < a.n; i++) {
        if (a.modes[i] & TSR_W) {
            for (size_t w = 0; w < words; w++) {
                bufs[i][w] = bufs[i][w] * 31 + Mix(h, w + i);
            }
        }
    }
}

tsr_status_t StepKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    StepArg a;
    std::memcpy(&a, arg, sizeof(a));
    std::vector<uint64_t *> p;
    for (uint32_t i = 0; i < a.n; i++) {
        if (bufs[i].n_bytes != bufs[0].n_bytes) {
            tsr_task_ctx_fail(ctx, "buffer %u has %zu bytes", i, bufs[i].n_bytes);
            return TSR_ETASK;
        }
        p.push_back(static_cast<uint64_t *>(bufs[i].ptr));
    }
    ApplyStep(a, p, bufs[0].n_bytes / sizeof(uint64_t));
    return TSR_OK;
}

// square: x = x*x + 7 on every word (runs anywhere).
tsr_status_t SquareKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *)
{
    uint64_t *x = static_cast<uint64_t *>(bufs[0].ptr);
    for (size_t i = 0; i < bufs[0].n_bytes / sizeof(uint64_t); i++) {
        x[i] = x[i] * x[i] + 7;
    }
    return TSR_OK;
}

// reduce: acc[0] += sum of the chunk's words.
tsr_status_t ReduceKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *)
{
    const uint64_t *x = static_cast<const uint64_t *>(bufs[0].ptr);
    uint64_t s = 0;
    for (size_t i = 0; i < bufs[0].n_bytes / sizeof(uint64_t); i++) {
        s += x[i];
    }
    static_cast<uint64_t *>(bufs[1].ptr)[0] += s;
    return TSR_OK;
}

// hash: out[0] = Mix folded over the chunk's words (slower than a sum: time for
// the I/O thread to read the next chunk while it runs).
uint64_t HashWords(const uint64_t *x, size_t n)
{
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) {
        h = Mix(h, x[i]);
    }
    return h;
}

tsr_status_t HashKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *)
{
    static_cast<uint64_t *>(bufs[1].ptr)[0] =
        HashWords(static_cast<const uint64_t *>(bufs[0].ptr), bufs[0].n_bytes / sizeof(uint64_t));
    return TSR_OK;
}

tsr_codelet_t Codelet(const char *name, tsr_kernel_fn fn, uint32_t n_buffers)
{
    tsr_codelet_t cl = {};
    cl.name = name;
    cl.impl[TSR_DEVICE_CPU] = fn;
    cl.n_buffers = n_buffers;
    return cl;
}

const tsr_codelet_t kFill = Codelet("fill", FillKernel, 1);
const tsr_codelet_t kGatedFill = Codelet("gated_fill", FillKernel, 2);  // 2nd buffer unused
const tsr_codelet_t kStep = Codelet("step", StepKernel, TSR_NBUFFERS_DYNAMIC);
const tsr_codelet_t kSquare = Codelet("square", SquareKernel, 1);
const tsr_codelet_t kReduce = Codelet("reduce", ReduceKernel, 2);
const tsr_codelet_t kHash = Codelet("hash", HashKernel, 2);

tsr_status_t Submit(tsr_runtime_t *rt, const tsr_codelet_t *cl, std::vector<tsr_data_t *> handles,
                    std::vector<tsr_access_t> modes, const void *arg, size_t arg_size,
                    uint32_t device = UINT32_MAX, tsr_future_t **future = nullptr)
{
    tsr_task_desc_t d = TSR_TASK_DESC_INIT;
    d.codelet = cl;
    d.handles = handles.data();
    d.modes = modes.data();
    d.n_handles = static_cast<uint32_t>(handles.size());
    d.arg = arg;
    d.arg_size = arg_size;
    if (device != UINT32_MAX) {
        d.pin = TSR_PIN_DEVICE;
        d.pin_value = device;
    }
    return tsr_task_submit(rt, &d, future);
}

tsr_status_t Fill(tsr_runtime_t *rt, tsr_data_t *h, uint64_t key, uint64_t words,
                  tsr_future_t **future = nullptr)
{
    FillArg a = {key, words};
    return Submit(rt, &kFill, {h}, {TSR_W}, &a, sizeof(a), 0, future);
}

std::vector<tsr_data_t *> Create(tsr_runtime_t *rt, size_t n)
{
    std::vector<tsr_data_t *> h(n, nullptr);
    for (auto &p : h) {
        EXPECT_EQ(tsr_data_create(rt, &p), TSR_OK);
    }
    return h;
}

void Unregister(std::vector<tsr_data_t *> &h)
{
    for (tsr_data_t *p : h) {
        if (p != nullptr) {
            tsr_data_unregister(p);
        }
    }
    h.clear();
}

// The handle's contents, or the acquire's status.
tsr_status_t Read(tsr_data_t *h, std::vector<uint64_t> *out)
{
    void *p = nullptr;
    size_t n = 0;
    tsr_status_t st = tsr_data_acquire(h, TSR_R, &p, &n);
    if (st != TSR_OK) {
        return st;
    }
    out->assign(static_cast<uint64_t *>(p), static_cast<uint64_t *>(p) + n / sizeof(uint64_t));
    EXPECT_EQ(tsr_data_release(h), TSR_OK);
    return TSR_OK;
}

tsr_spill_stats_t SpillStats(tsr_runtime_t *rt)
{
    tsr_spill_stats_t s;
    EXPECT_EQ(tsr_runtime_spill_stats(rt, &s), TSR_OK);
    return s;
}

tsr_mem_stats_t MemStats(tsr_runtime_t *rt, uint32_t node)
{
    tsr_mem_stats_t s;
    EXPECT_EQ(tsr_runtime_mem_stats(rt, node, &s), TSR_OK);
    return s;
}

std::vector<std::string> ChunkFiles(const std::string &spill_dir)
{
    std::vector<std::string> files;
    DIR *top = opendir(spill_dir.c_str());
    if (top == nullptr) {
        return files;
    }
    while (struct dirent *e = readdir(top)) {
        if (std::strncmp(e->d_name, "tessera-", 8) != 0) {
            continue;
        }
        std::string sub = spill_dir + "/" + e->d_name;
        DIR *d = opendir(sub.c_str());
        while (d != nullptr && (e = readdir(d)) != nullptr) {
            if (std::strstr(e->d_name, ".chunk") != nullptr) {
                files.push_back(sub + "/" + e->d_name);
            }
        }
        if (d != nullptr) {
            closedir(d);
        }
    }
    closedir(top);
    return files;
}

// Flip the bits `mask` of the byte at `at` in the file at `path`.
void FlipByte(const std::string &path, std::streamoff at, int mask)
{
    std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(at);
    char c = 0;
    io.read(&c, 1);
    c = static_cast<char>(c ^ mask);
    io.seekp(at);
    io.write(&c, 1);
}

// Read every handle back after its spill files were damaged: each comes back as
// filled (every `stride`-th word checked against keys) or fails with TSR_EIO for
// its checksum. *n_corrupt_out: the handles that failed.
void ReadBackSomeCorrupt(const std::vector<tsr_data_t *> &h, const std::vector<uint64_t> &keys,
                         uint64_t words, uint64_t stride, size_t *n_corrupt_out)
{
    *n_corrupt_out = 0;
    for (size_t i = 0; i < h.size(); i++) {
        std::vector<uint64_t> got;
        tsr_status_t st = Read(h[i], &got);
        if (st == TSR_EIO) {
            ++*n_corrupt_out;
            EXPECT_NE(std::string(tsr_last_error()).find("checksum"), std::string::npos)
                << tsr_last_error();
            continue;
        }
        ASSERT_EQ(st, TSR_OK) << tsr_last_error();
        for (uint64_t w = 0; w < words; w += stride) {
            ASSERT_EQ(got[w], FillWord(keys[i], w)) << "chunk " << i;
        }
    }
}

// ---- Randomised oracle under tight limits -------------------------------------------

// Random tasks over dynamic handles on the CPU and two sim devices whose memory holds
// ~7% of the working set, with host memory limited to a quarter of it: the results
// equal a sequential replay bit for bit, and data went down both tiers.
TEST(Spill, RandomDagOracleUnderTightLimits)
{
    const uint64_t seed = TestSeed();
    std::mt19937_64 rng(seed);
    constexpr size_t kHandles = 48;
    constexpr uint64_t kWords = 8192;  // 64 KiB chunks, 3 MiB in all
    const uint64_t chunk = kWords * sizeof(uint64_t);
    const uint64_t working_set = kHandles * chunk;
    TempDir dir;
    Limits l;
    l.n_sim = 2;
    l.sim_mem = working_set / 10;  // room for 4.8 chunks
    l.host_limit = working_set / 4;
    l.spill_dir = dir.path().c_str();
    Rt rt = Start(l);
    ASSERT_TRUE(rt);

    std::vector<tsr_data_t *> h = Create(rt.get(), kHandles);
    std::vector<std::vector<uint64_t>> ref(kHandles, std::vector<uint64_t>(kWords));
    for (size_t i = 0; i < kHandles; i++) {
        uint64_t key = rng() | 1;
        ASSERT_EQ(Fill(rt.get(), h[i], key, kWords), TSR_OK) << tsr_last_error();
        for (uint64_t w = 0; w < kWords; w++) {
            ref[i][w] = FillWord(key, w);
        }
    }
    const int n_tasks = static_cast<int>(400 * tsr_test::TestScale());
    for (int k = 0; k < n_tasks; k++) {
        StepArg a = {};
        a.key = rng();
        a.n = 1 + static_cast<uint32_t>(rng() % 3);
        std::vector<size_t> idx;
        while (idx.size() < a.n) {
            size_t i = rng() % kHandles;
            if (std::find(idx.begin(), idx.end(), i) == idx.end()) {
                idx.push_back(i);
            }
        }
        std::vector<tsr_data_t *> hs;
        std::vector<tsr_access_t> modes;
        std::vector<uint64_t *> refs;
        for (uint32_t i = 0; i < a.n; i++) {
            a.modes[i] = i == 0 ? TSR_RW : (rng() % 4 == 0 ? TSR_RW : TSR_R);
            hs.push_back(h[idx[i]]);
            modes.push_back(static_cast<tsr_access_t>(a.modes[i]));
            refs.push_back(ref[idx[i]].data());
        }
        uint32_t device = static_cast<uint32_t>(rng() % 4);  // 3: anywhere
        ASSERT_EQ(
            Submit(rt.get(), &kStep, hs, modes, &a, sizeof(a), device == 3 ? UINT32_MAX : device),
            TSR_OK)
            << tsr_last_error();
        ApplyStep(a, refs, kWords);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    tsr_runtime_stats_t st = tsr_test::Stats(rt.get());
    EXPECT_EQ(st.n_failed, 0u);
    for (size_t i = 0; i < kHandles; i++) {
        std::vector<uint64_t> got;
        ASSERT_EQ(Read(h[i], &got), TSR_OK) << tsr_last_error();
        ASSERT_EQ(got, ref[i]) << "handle " << i << ", seed " << seed;
    }
    tsr_spill_stats_t sp = SpillStats(rt.get());
    EXPECT_GT(sp.n_writes, 0u) << "nothing reached the disk";
    EXPECT_GT(sp.n_reads, 0u);
    EXPECT_EQ(sp.n_errors, 0u);
    uint64_t device_spilled =
        MemStats(rt.get(), 1).spilled_bytes + MemStats(rt.get(), 2).spilled_bytes;
    EXPECT_GT(device_spilled, 0u) << "no device replica was written back";
    Unregister(h);
    EXPECT_EQ(SpillStats(rt.get()).on_disk_bytes, 0u) << "spill files outlived their handles";
}

// ---- Streaming reduction ----------------------------------------------------------

// fill -> square (on the sim device) -> reduce over data 10x the device's memory and
// 3x the host limit: the sum is right and the accounting stays under both limits.
TEST(Spill, StreamingReductionStaysUnderLimits)
{
    const uint64_t seed = TestSeed();
    constexpr uint64_t kWords = 8192;  // 64 KiB
    const uint64_t chunk = kWords * sizeof(uint64_t);
    const uint64_t device_mem = 16 * chunk;  // 1 MiB
    const size_t n_chunks = 160;             // 10 MiB
    TempDir dir;
    Limits l;
    l.n_sim = 1;
    l.sim_mem = device_mem;
    l.host_limit = n_chunks * chunk / 3;
    l.spill_dir = dir.path().c_str();
    Rt rt = Start(l);
    ASSERT_TRUE(rt);

    std::vector<uint64_t> acc_init(1, 0);
    tsr_data_t *acc = nullptr;
    ASSERT_EQ(tsr_data_register(rt.get(), acc_init.data(), sizeof(uint64_t), &acc), TSR_OK);
    std::vector<tsr_data_t *> h = Create(rt.get(), n_chunks);
    uint64_t expect = 0;
    for (size_t i = 0; i < n_chunks; i++) {
        uint64_t key = Mix(seed, i) | 1;
        ASSERT_EQ(Fill(rt.get(), h[i], key, kWords), TSR_OK);
        ASSERT_EQ(Submit(rt.get(), &kSquare, {h[i]}, {TSR_RW}, nullptr, 0, 1), TSR_OK);
        ASSERT_EQ(Submit(rt.get(), &kReduce, {h[i], acc}, {TSR_R, TSR_RW}, nullptr, 0, 0), TSR_OK);
        expect += SquaredSum(key, kWords);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(tsr_test::Stats(rt.get()).n_failed, 0u);
    std::vector<uint64_t> got;
    ASSERT_EQ(Read(acc, &got), TSR_OK);
    EXPECT_EQ(got[0], expect) << "seed " << seed;

    tsr_mem_stats_t host = MemStats(rt.get(), 0);
    tsr_mem_stats_t dev = MemStats(rt.get(), 1);
    tsr_spill_stats_t sp = SpillStats(rt.get());
    EXPECT_LE(host.peak_bytes, l.host_limit)
        << "host peak over its limit; over-limit allocations " << sp.n_over_limit
        << ", roots deferred " << sp.n_deferred << ", read ahead " << sp.n_read_ahead;
    EXPECT_LE(dev.peak_bytes, device_mem) << "device peak over its memory";
    EXPECT_GT(sp.n_writes, 0u);
    EXPECT_GE(sp.bytes_written, n_chunks * chunk / 2) << "most of the data must have gone to disk";
    Unregister(h);
    tsr_data_unregister(acc);
}

// A graph submitted layer by layer (all fills, then all squares, then all
// reductions, as a collection lowers an expression) and started at once, on a
// device holding 1/8 of it: the device queue runs the deepest ready task first,
// so each chunk is made, used and given up once instead of being evicted after
// its fill and brought back for its square.
TEST(Spill, LayerByLayerGraphStreamsDepthFirst)
{
    const uint64_t seed = TestSeed();
    constexpr uint64_t kWords = 8192;  // 64 KiB
    const uint64_t chunk = kWords * sizeof(uint64_t);
    const size_t n_chunks = 64;
    Limits l;
    l.n_sim = 1;
    l.sim_mem = 8 * chunk;
    l.n_cpu = 1;
    Rt rt = Start(l);
    ASSERT_TRUE(rt);

    std::vector<uint64_t> acc_init(1, 0);
    tsr_data_t *acc = nullptr;
    ASSERT_EQ(tsr_data_register(rt.get(), acc_init.data(), sizeof(uint64_t), &acc), TSR_OK);
    std::vector<tsr_data_t *> h = Create(rt.get(), n_chunks);
    // The fills read `gate`, held by this thread until the whole graph is in.
    uint64_t gate_word = 0;
    tsr_data_t *gate = nullptr;
    ASSERT_EQ(tsr_data_register(rt.get(), &gate_word, sizeof(gate_word), &gate), TSR_OK);
    ASSERT_EQ(tsr_data_acquire(gate, TSR_RW, nullptr, nullptr), TSR_OK);
    std::vector<uint64_t> keys(n_chunks);
    std::vector<tsr_future_t *> fills;
    uint64_t expect = 0;
    for (size_t i = 0; i < n_chunks; i++) {
        keys[i] = Mix(seed, i) | 1;
        FillArg a = {keys[i], kWords};
        tsr_future_t *f = nullptr;
        ASSERT_EQ(Submit(rt.get(), &kGatedFill, {h[i], gate}, {TSR_W, TSR_R}, &a, sizeof(a), 1, &f),
                  TSR_OK);
        fills.push_back(f);
        expect += SquaredSum(keys[i], kWords);
    }
    for (size_t i = 0; i < n_chunks; i++) {
        ASSERT_EQ(Submit(rt.get(), &kSquare, {h[i]}, {TSR_RW}, nullptr, 0, 1), TSR_OK);
    }
    for (size_t i = 0; i < n_chunks; i++) {
        ASSERT_EQ(Submit(rt.get(), &kReduce, {h[i], acc}, {TSR_R, TSR_RW}, nullptr, 0, 1), TSR_OK);
    }
    ASSERT_EQ(tsr_data_release(gate), TSR_OK);
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    for (tsr_future_t *f : fills) {
        EXPECT_EQ(tsr_future_wait(f), TSR_OK) << tsr_future_message(f);
        tsr_future_release(f);
    }
    EXPECT_EQ(tsr_test::Stats(rt.get()).n_failed, 0u);
    std::vector<uint64_t> got;
    ASSERT_EQ(Read(acc, &got), TSR_OK);
    EXPECT_EQ(got[0], expect) << "seed " << seed;

    tsr_copy_stats_t to_device;
    ASSERT_EQ(tsr_runtime_copy_stats(rt.get(), 0, 1, &to_device), TSR_OK);
    EXPECT_LT(to_device.n_bytes, n_chunks * chunk / 4)
        << "chunks went back to the device: the layers ran breadth-first";
    EXPECT_GT(MemStats(rt.get(), 1).spilled_bytes, 0u) << "the device never had to give data up";
    Unregister(h);
    tsr_data_unregister(acc);
    tsr_data_unregister(gate);
}

// ---- Errors -------------------------------------------------------------------------

// n non-zero fill keys (0 means zeros) from the test's seed.
std::vector<uint64_t> RandomKeys(size_t n)
{
    std::mt19937_64 rng(TestSeed());
    std::vector<uint64_t> keys(n);
    for (auto &k : keys) {
        k = rng() | 1;
    }
    return keys;
}

// Fill n chunks one by one; returns each task's status (futures waited).
std::vector<tsr_status_t> FillAll(tsr_runtime_t *rt, std::vector<tsr_data_t *> &h,
                                  const std::vector<uint64_t> &keys, uint64_t words,
                                  std::vector<std::string> *msgs)
{
    std::vector<tsr_status_t> out;
    for (size_t i = 0; i < h.size(); i++) {
        tsr_future_t *f = nullptr;
        EXPECT_EQ(Fill(rt, h[i], keys[i], words, &f), TSR_OK);
        tsr_status_t st = tsr_future_wait(f);
        out.push_back(st);
        if (msgs != nullptr) {
            const char *m = tsr_future_message(f);
            msgs->push_back(m != nullptr ? m : "");
        }
        tsr_future_release(f);
    }
    return out;
}

// Spilling must fail (directory or disk): the allocations that needed room fail with
// TSR_EIO and a message saying why; every chunk that was made keeps its contents,
// and the runtime still runs tasks afterwards.
void ExpectSpillFailureIsClean(tsr_runtime_t *rt, const char *why)
{
    constexpr uint64_t kWords = 8192;
    const size_t n = 40;  // 2.5 MiB against a 1 MiB limit
    std::vector<uint64_t> keys = RandomKeys(n);
    std::vector<tsr_data_t *> h = Create(rt, n);
    std::vector<std::string> msgs;
    std::vector<tsr_status_t> st = FillAll(rt, h, keys, kWords, &msgs);
    size_t n_eio = 0;
    for (size_t i = 0; i < n; i++) {
        if (st[i] == TSR_EIO) {
            n_eio++;
            EXPECT_NE(msgs[i].find(why), std::string::npos) << msgs[i];
            continue;
        }
        ASSERT_EQ(st[i], TSR_OK) << msgs[i];
    }
    EXPECT_GT(n_eio, 0u) << "no allocation reported the spill failure";
    for (size_t i = 0; i < n; i++) {
        if (st[i] != TSR_OK) {
            continue;
        }
        std::vector<uint64_t> got;
        ASSERT_EQ(Read(h[i], &got), TSR_OK) << tsr_last_error();
        ASSERT_EQ(got.size(), kWords);
        for (uint64_t w = 0; w < kWords; w += 97) {
            ASSERT_EQ(got[w], FillWord(keys[i], w)) << "chunk " << i << " lost its contents";
        }
    }
    EXPECT_GT(SpillStats(rt).n_errors, 0u);
    Unregister(h);
    // Still working: a small task runs.
    std::vector<tsr_data_t *> one = Create(rt, 1);
    std::vector<tsr_status_t> ok = FillAll(rt, one, {5}, 16, nullptr);
    EXPECT_EQ(ok[0], TSR_OK);
    Unregister(one);
}

TEST(Spill, UnwritableSpillDirIsAClearError)
{
    TempDir dir;
    std::string file = dir.path() + "/not-a-directory";
    std::ofstream(file) << "x";
    std::string spill = file + "/spill";  // ENOTDIR, even for root
    Rt rt = StartSmallHost(spill);
    ASSERT_TRUE(rt);
    ExpectSpillFailureIsClean(rt.get(), "spill directory");
}

TEST(Spill, FullDiskIsAClearError)
{
    TempDir dir;
    Rt rt = StartSmallHost(dir.path());
    ASSERT_TRUE(rt);
    tsr__spill_inject_fault(rt.get(), ENOSPC, 1u << 30);
    ExpectSpillFailureIsClean(rt.get(), "No space left on device");
    tsr__spill_inject_fault(rt.get(), 0, 0);
    EXPECT_TRUE(ChunkFiles(dir.path()).empty()) << "a failed write left its file";
}

// Flip a byte in every spill file: reading a chunk back fails with TSR_EIO naming
// the checksum, the others read back intact, and nothing crashes.
TEST(Spill, CorruptedSpillFileIsDetected)
{
    constexpr uint64_t kWords = 8192;
    const size_t n = 40;
    TempDir dir;
    Rt rt = StartSmallHost(dir.path());
    ASSERT_TRUE(rt);
    std::vector<uint64_t> keys = RandomKeys(n);
    std::vector<tsr_data_t *> h = Create(rt.get(), n);
    for (tsr_status_t st : FillAll(rt.get(), h, keys, kWords, nullptr)) {
        ASSERT_EQ(st, TSR_OK);
    }
    std::vector<std::string> files = ChunkFiles(dir.path());
    ASSERT_FALSE(files.empty()) << "nothing was spilled";
    for (const std::string &f : files) {
        FlipByte(f, 1000, 0x10);
    }
    size_t n_corrupt = 0;
    ReadBackSomeCorrupt(h, keys, kWords, 97, &n_corrupt);
    EXPECT_GT(n_corrupt, 0u);
    // A task reading a corrupted chunk fails with the same status.
    size_t n_failed = 0;
    for (size_t i = 0; i < n; i++) {
        StepArg a = {};
        a.n = 1;
        a.modes[0] = TSR_RW;
        tsr_future_t *f = nullptr;
        ASSERT_EQ(Submit(rt.get(), &kStep, {h[i]}, {TSR_RW}, &a, sizeof(a), 0, &f), TSR_OK);
        tsr_status_t st = tsr_future_wait(f);
        tsr_future_release(f);
        EXPECT_TRUE(st == TSR_OK || st == TSR_EIO) << tsr_status_str(st);
        n_failed += st == TSR_EIO;
    }
    EXPECT_EQ(n_failed, n_corrupt);
    Unregister(h);
}

// Compressible chunks (zeros) take less disk with lz4 and come back the same.
TEST(Spill, CompressedChunksRoundTrip)
{
    tsr_config_t probe = TSR_CONFIG_INIT;
    probe.flags = TSR_CONFIG_F_NO_ENV;
    probe.spill_compression = TSR_SPILL_COMPRESS_LZ4;
    tsr_config_t out;
    if (tsr_config_resolve(&probe, &out) == TSR_ENOTSUP) {
        GTEST_SKIP() << "built without lz4";
    }
    constexpr uint64_t kWords = 8192;
    const size_t n = 40;
    TempDir dir;
    Rt rt = StartSmallHost(dir.path());  // default compression: on where a sample compresses
    ASSERT_TRUE(rt);
    std::vector<uint64_t> keys(n);
    for (size_t i = 0; i < n; i++) {
        keys[i] = i % 2 == 0 ? 0 : Mix(TestSeed(), i) | 1;  // zeros, random
    }
    std::vector<tsr_data_t *> h = Create(rt.get(), n);
    for (tsr_status_t st : FillAll(rt.get(), h, keys, kWords, nullptr)) {
        ASSERT_EQ(st, TSR_OK);
    }
    tsr_spill_stats_t sp = SpillStats(rt.get());
    ASSERT_GT(sp.n_writes, 2u);
    EXPECT_LT(sp.bytes_stored, sp.bytes_written) << "zeros did not compress";
    EXPECT_GT(sp.bytes_stored, sp.bytes_written / 4) << "random chunks must be stored raw";
    for (size_t i = 0; i < n; i++) {
        std::vector<uint64_t> got;
        ASSERT_EQ(Read(h[i], &got), TSR_OK) << tsr_last_error();
        for (uint64_t w = 0; w < kWords; w++) {
            ASSERT_EQ(got[w], FillWord(keys[i], w)) << "chunk " << i;
        }
    }
    Unregister(h);
}

// 48 chunks of 1 MiB made through a host limit of 16 of them, all before any is
// used, so most go to disk: filled with keys Mix(seed, i) | 1, returned.
constexpr uint64_t kMiBWords = (1u << 20) / sizeof(uint64_t);
constexpr size_t kMiBChunks = 48;
constexpr uint64_t kMiBHostLimit = 16 * kMiBWords * sizeof(uint64_t);

std::vector<uint64_t> FillMiBChunks(tsr_runtime_t *rt, uint64_t seed, std::vector<tsr_data_t *> *h)
{
    std::vector<uint64_t> keys(kMiBChunks);
    *h = Create(rt, kMiBChunks);
    for (size_t i = 0; i < kMiBChunks; i++) {
        keys[i] = Mix(seed, i) | 1;
        EXPECT_EQ(Fill(rt, (*h)[i], keys[i], kMiBWords), TSR_OK);
    }
    EXPECT_EQ(tsr_wait_all(rt), TSR_OK);
    return keys;
}

// Chunks of 1 MiB and more are mapped host memory: the freed ones are kept as
// spare blocks (part of the accounted usage) and handed to the next chunk of the
// same size, read back from disk or made by a task, without a fresh mapping's
// faults. Streaming a reduction through 3x the host limit reuses them, gives the
// right answer and keeps usage, spares included, under the limit.
TEST(Spill, LargeChunksReuseSpareHostBlocks)
{
    const uint64_t seed = TestSeed();
    TempDir dir;
    Limits l;
    l.host_limit = kMiBHostLimit;
    l.spill_dir = dir.path().c_str();
    Rt rt = Start(l);
    ASSERT_TRUE(rt);

    uint64_t acc_init = 0;
    tsr_data_t *acc = nullptr;
    ASSERT_EQ(tsr_data_register(rt.get(), &acc_init, sizeof(uint64_t), &acc), TSR_OK);
    std::vector<tsr_data_t *> h;
    uint64_t expect = 0;
    for (uint64_t key : FillMiBChunks(rt.get(), seed, &h)) {
        expect += SquaredSum(key, kMiBWords);
    }
    for (size_t i = 0; i < kMiBChunks; i++) {
        ASSERT_EQ(Submit(rt.get(), &kSquare, {h[i]}, {TSR_RW}, nullptr, 0, 0), TSR_OK);
        ASSERT_EQ(Submit(rt.get(), &kReduce, {h[i], acc}, {TSR_R, TSR_RW}, nullptr, 0, 0), TSR_OK);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(tsr_test::Stats(rt.get()).n_failed, 0u);
    std::vector<uint64_t> got;
    ASSERT_EQ(Read(acc, &got), TSR_OK);
    EXPECT_EQ(got[0], expect) << "seed " << seed;

    tsr_mem_stats_t host = MemStats(rt.get(), 0);
    tsr_spill_stats_t sp = SpillStats(rt.get());
    EXPECT_GT(sp.n_reads, 0u) << "nothing came back from disk";
    EXPECT_GT(host.n_reuses, 0u) << "no spare host block was reused";
    EXPECT_LE(host.cached_bytes, l.host_limit / 8);
    EXPECT_LE(host.used_bytes + host.cached_bytes, l.host_limit);
    EXPECT_LE(host.peak_bytes, l.host_limit)
        << "host peak (spares included) over its limit; over-limit allocations " << sp.n_over_limit;
    Unregister(h);
    tsr_data_unregister(acc);
}

// Tasks that become ready with their input only on disk have it read back ahead by
// the I/O thread, in the order they became ready, even with host memory at its
// high mark: the room comes from chunks whose tasks are done (dropped, never
// written). Nothing is read twice: no chunk read ahead is given up before its task
// uses it, and every result is right.
TEST(Spill, SpilledChunksAreReadAheadOfTheirTasks)
{
    const uint64_t seed = TestSeed();
    TempDir dir;
    Limits l;
    l.host_limit = kMiBHostLimit;
    l.spill_dir = dir.path().c_str();
    l.n_cpu = 1;
    Rt rt = Start(l);
    ASSERT_TRUE(rt);

    std::vector<tsr_data_t *> h;
    std::vector<uint64_t> keys = FillMiBChunks(rt.get(), seed, &h);
    std::vector<uint64_t> sums(kMiBChunks * 8, 0);  // a cache line each
    std::vector<tsr_data_t *> slots(kMiBChunks, nullptr);
    for (size_t i = 0; i < kMiBChunks; i++) {
        ASSERT_EQ(tsr_data_register(rt.get(), &sums[i * 8], sizeof(uint64_t), &slots[i]), TSR_OK);
        ASSERT_EQ(Submit(rt.get(), &kHash, {h[i], slots[i]}, {TSR_R, TSR_W}, nullptr, 0, 0),
                  TSR_OK);
    }
    ASSERT_EQ(tsr_wait_all(rt.get()), TSR_OK);
    EXPECT_EQ(tsr_test::Stats(rt.get()).n_failed, 0u);
    Unregister(slots);
    for (size_t i = 0; i < kMiBChunks; i++) {
        std::vector<uint64_t> words(kMiBWords);
        for (uint64_t w = 0; w < kMiBWords; w++) {
            words[w] = FillWord(keys[i], w);
        }
        ASSERT_EQ(sums[i * 8], HashWords(words.data(), kMiBWords))
            << "chunk " << i << ", seed " << seed;
    }
    Unregister(h);  // a chunk read ahead and never used would count as wasted here
    tsr_spill_stats_t sp = SpillStats(rt.get());
    EXPECT_GT(sp.n_writes, kMiBChunks / 2) << "most chunks should have gone to disk";
    EXPECT_GT(sp.n_read_ahead, 0u) << "no chunk was read ahead; reads " << sp.n_reads;
    EXPECT_EQ(sp.n_read_ahead_wasted, 0u);
    EXPECT_LE(sp.n_reads, sp.n_writes) << "a chunk was read back twice";
    // The I/O thread and the worker read at once: the wall time with a read under
    // way is at most the reads' own times added up, and at least half of it.
    EXPECT_GT(sp.read_busy_ns, 0u);
    EXPECT_LE(sp.read_busy_ns, sp.read_ns);
    EXPECT_GE(2 * sp.read_busy_ns, sp.read_ns);
    EXPECT_GT(sp.write_busy_ns, 0u);
    EXPECT_LE(sp.write_busy_ns, sp.write_ns);
    std::printf("[ info ] writes %llu, reads %llu, read ahead %llu\n",
                (unsigned long long)sp.n_writes, (unsigned long long)sp.n_reads,
                (unsigned long long)sp.n_read_ahead);
}

// A spilled chunk is read back and checked in pieces: a flipped byte far from the
// start, in a chunk whose size is no multiple of the checksum's block, is found.
TEST(Spill, CorruptionDeepInALargeChunkIsDetected)
{
    const uint64_t seed = TestSeed();
    std::mt19937_64 rng(seed);
    constexpr uint64_t kWords = (1u << 20) / sizeof(uint64_t) + 5;
    const uint64_t chunk = kWords * sizeof(uint64_t);
    const size_t n = 12;
    TempDir dir;
    Limits l;
    l.host_limit = 4 * chunk;
    l.spill_dir = dir.path().c_str();
    l.compress = TSR_SPILL_COMPRESS_NONE;
    Rt rt = Start(l);
    ASSERT_TRUE(rt);
    std::vector<uint64_t> keys = RandomKeys(n);
    std::vector<tsr_data_t *> h = Create(rt.get(), n);
    for (tsr_status_t st : FillAll(rt.get(), h, keys, kWords, nullptr)) {
        ASSERT_EQ(st, TSR_OK);
    }
    std::vector<std::string> files = ChunkFiles(dir.path());
    ASSERT_FALSE(files.empty()) << "nothing was spilled";
    for (const std::string &f : files) {
        FlipByte(f, static_cast<std::streamoff>(chunk / 2 + rng() % (chunk / 2)), 1 << (rng() % 8));
    }
    size_t n_corrupt = 0;
    ReadBackSomeCorrupt(h, keys, kWords, 1, &n_corrupt);
    EXPECT_GT(n_corrupt, 0u) << "seed " << seed;
    Unregister(h);
}

TEST(Spill, ChunkLargerThanHostLimitFailsFast)
{
    TempDir dir;
    Rt rt = StartSmallHost(dir.path());
    ASSERT_TRUE(rt);
    std::vector<tsr_data_t *> h = Create(rt.get(), 1);
    std::vector<std::string> msgs;
    std::vector<tsr_status_t> st = FillAll(rt.get(), h, {3}, (2u << 20) / 8, &msgs);
    EXPECT_EQ(st[0], TSR_ENOMEM);
    EXPECT_NE(msgs[0].find("host limit"), std::string::npos) << msgs[0];
    Unregister(h);
}

// A task pinned to a device whose memory cannot hold its buffers fails at once with
// TSR_ENOMEM naming it and the sizes; unpinned, it runs where it fits.
TEST(Spill, TaskLargerThanDeviceFailsFastOrGoesElsewhere)
{
    const uint64_t words = 32768;  // 256 KiB per buffer
    Limits l;
    l.n_sim = 1;
    l.sim_mem = 384 << 10;  // holds one buffer, not two
    Rt rt = Start(l);
    ASSERT_TRUE(rt);
    std::vector<std::vector<uint64_t>> v(2, std::vector<uint64_t>(words, 1));
    std::vector<tsr_data_t *> h(2);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(tsr_data_register(rt.get(), v[i].data(), words * 8, &h[i]), TSR_OK);
    }
    StepArg a = {};
    a.n = 2;
    a.modes[0] = TSR_RW;
    a.modes[1] = TSR_R;
    tsr_future_t *f = nullptr;
    ASSERT_EQ(Submit(rt.get(), &kStep, h, {TSR_RW, TSR_R}, &a, sizeof(a), 1, &f), TSR_OK);
    EXPECT_EQ(tsr_future_wait(f), TSR_ENOMEM);
    const char *msg = tsr_future_message(f);
    std::string m = msg != nullptr ? msg : "";
    EXPECT_NE(m.find("step"), std::string::npos) << m;
    EXPECT_NE(m.find("524288"), std::string::npos) << m;
    tsr_future_release(f);

    // The failure poisoned h[0]: run the unpinned task on fresh copies.
    std::vector<std::vector<uint64_t>> v2(2, std::vector<uint64_t>(words, 2));
    std::vector<tsr_data_t *> h2(2);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(tsr_data_register(rt.get(), v2[i].data(), words * 8, &h2[i]), TSR_OK);
    }
    ASSERT_EQ(Submit(rt.get(), &kStep, h2, {TSR_RW, TSR_R}, &a, sizeof(a), UINT32_MAX, &f), TSR_OK);
    EXPECT_EQ(tsr_future_wait(f), TSR_OK) << tsr_last_error();
    tsr_future_release(f);
    for (tsr_data_t *p : h) {
        tsr_data_unregister(p);
    }
    for (tsr_data_t *p : h2) {
        tsr_data_unregister(p);
    }
}

TEST(Spill, ConfigFromEnvironment)
{
    setenv("TESSERA_SPILL_COMPRESSION", "none", 1);
    tsr_config_t out;
    ASSERT_EQ(tsr_config_resolve(nullptr, &out), TSR_OK);
    EXPECT_EQ(out.spill_compression, TSR_SPILL_COMPRESS_NONE);
    setenv("TESSERA_SPILL_COMPRESSION", "zstd", 1);
    EXPECT_EQ(tsr_config_resolve(nullptr, &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("TESSERA_SPILL_COMPRESSION"), std::string::npos);
    unsetenv("TESSERA_SPILL_COMPRESSION");
    EXPECT_EQ(tsr_runtime_spill_stats(nullptr, nullptr), TSR_EINVAL);
}

}  // namespace
