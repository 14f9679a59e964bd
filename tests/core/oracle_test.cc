/* Randomised oracle for dependency inference: thousands of tasks with random
 * R/W/RW accesses over ~100 handles, each applying a non-commutative update,
 * submitted from several threads. The runtime's final buffers must equal a
 * sequential replay bit for bit.
 *
 * Variant SerialisedSubmit: a test mutex serialises the submit calls of all
 *   threads, which fixes one global order; the replay follows it.
 * Variant DisjointOwners: each thread owns a disjoint set of handles and reads
 *   shared read-only ones, without a lock; each thread's tasks are replayed in
 *   that thread's order.
 * Both replay as they submit, and now and then acquire a handle from the
 * submitting thread and compare it with the replay at that point. */
#include <array>
#include <atomic>
#include <mutex>
#include <random>
#include <vector>

#include "common/test_util.h"

namespace {

using tsr_test::Data;
using tsr_test::Mix64;
using tsr_test::Runtime;
using tsr_test::Task;

constexpr size_t kWords = 8;     /* uint64 words per handle */
constexpr size_t kMaxRefs = 5;   /* up to 4 handles, plus one listed twice */
constexpr size_t kHandles = 100; /* SerialisedSubmit: all shared */
constexpr size_t kOwned = 84;    /* DisjointOwners: split among threads */
constexpr size_t kShared = 16;   /* DisjointOwners: read-only for everyone */
constexpr int kThreads = 4;

struct OracleArg {
    uint64_t tag;
    uint32_t n;
    uint8_t modes[kMaxRefs];
};
static_assert(sizeof(OracleArg) <= TSR_TASK_ARG_INLINE, "keep the blob inline");

/* The update of one task. The digest of everything the task reads is taken
 * first; then W buffers are overwritten without being read and RW buffers are
 * updated in place, in the order listed (a handle listed twice sees the effect
 * of its first listing). The update depends on the tag (the task's identity) and
 * on the order of operations, so a misordered run gives other bits. */
void Apply(const OracleArg &a, uint64_t *const *bufs)
{
    uint64_t digest = Mix64(a.tag);
    for (uint32_t i = 0; i < a.n; i++) {
        if (a.modes[i] & TSR_R) {
            for (size_t k = 0; k < kWords; k++) {
                digest = Mix64(digest ^ bufs[i][k]) + k;
            }
        }
    }
    for (uint32_t i = 0; i < a.n; i++) {
        for (size_t k = 0; k < kWords; k++) {
            uint64_t salt = Mix64(digest + i * kWords + k);
            if (a.modes[i] == TSR_W) {
                bufs[i][k] = salt;
            } else if (a.modes[i] == TSR_RW) {
                bufs[i][k] = bufs[i][k] * 31 + salt;
            }
        }
    }
}

tsr_status_t OracleKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    OracleArg a = tsr_test::ArgAs<OracleArg>(arg);
    uint64_t *ptrs[kMaxRefs];
    for (uint32_t i = 0; i < a.n; i++) {
        if (bufs[i].ptr == nullptr || bufs[i].n_bytes != kWords * sizeof(uint64_t)) {
            tsr_task_ctx_fail(ctx, "buffer %u: %zu bytes", i, bufs[i].n_bytes);
            return TSR_ETASK;
        }
        ptrs[i] = static_cast<uint64_t *>(bufs[i].ptr);
    }
    Apply(a, ptrs);
    return TSR_OK;
}

const tsr_codelet_t kOracleCodelet = tsr_test::MakeDynamicCodelet("oracle", OracleKernel);

struct Spec {
    OracleArg arg;
    uint32_t handles[kMaxRefs];
    int32_t priority;
};

tsr_access_t RandomMode(std::mt19937_64 &rng)
{
    uint64_t r = rng() % 10;
    return r < 4 ? TSR_R : r < 8 ? TSR_RW : TSR_W;
}

/* A random task over the handles `pick` chooses; `pick` returns a handle and
 * may force its mode to R (shared read-only handles). */
template <class Pick>
Spec RandomSpec(std::mt19937_64 &rng, Pick pick)
{
    Spec s = {};
    s.arg.n = 1 + static_cast<uint32_t>(rng() % 4);
    for (uint32_t i = 0; i < s.arg.n; i++) {
        bool read_only = false;
        s.handles[i] = pick(rng, &read_only);
        s.arg.modes[i] = static_cast<uint8_t>(read_only ? TSR_R : RandomMode(rng));
    }
    if (rng() % 16 == 0) {
        /* List one handle again, possibly with another mode. */
        uint32_t j = static_cast<uint32_t>(rng() % s.arg.n);
        s.handles[s.arg.n] = s.handles[j];
        s.arg.modes[s.arg.n] = s.arg.modes[j] == TSR_R ? TSR_R : RandomMode(rng);
        s.arg.n++;
    }
    s.priority = static_cast<int32_t>(rng() % 7) - 3;
    return s;
}

class Oracle : public tsr_test::RtParamTest {
protected:
    void SetUp() override
    {
        seed_ = tsr_test::TestSeed();
        rt_ = Start();
        ASSERT_TRUE(rt_);
        std::mt19937_64 rng(seed_ ^ 0x5eed);
        for (size_t h = 0; h < kHandles; h++) {
            for (size_t k = 0; k < kWords; k++) {
                real_[h][k] = ref_[h][k] = rng();
            }
            handles_.push_back(tsr_test::Register(rt_.get(), real_[h].data(), sizeof(real_[h])));
            ASSERT_TRUE(handles_.back());
        }
    }

    tsr_status_t SubmitSpec(const Spec &s)
    {
        tsr_data_t *hs[kMaxRefs];
        tsr_access_t modes[kMaxRefs];
        for (uint32_t i = 0; i < s.arg.n; i++) {
            hs[i] = handles_[s.handles[i]].get();
            modes[i] = static_cast<tsr_access_t>(s.arg.modes[i]);
        }
        tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
        desc.codelet = &kOracleCodelet;
        desc.handles = hs;
        desc.modes = modes;
        desc.n_handles = s.arg.n;
        desc.arg = &s.arg;
        desc.arg_size = sizeof(s.arg);
        desc.priority = s.priority;
        return tsr_task_submit(rt_.get(), &desc, nullptr);
    }

    /* SubmitSpec, then Replay; false (and a test failure) if the submit fails. */
    bool SubmitAndReplay(const Spec &s)
    {
        tsr_status_t st = SubmitSpec(s);
        if (st != TSR_OK) {
            ADD_FAILURE() << "submit: " << tsr_status_str(st) << " " << tsr_last_error();
            return false;
        }
        Replay(s);
        return true;
    }

    void Replay(const Spec &s)
    {
        uint64_t *ptrs[kMaxRefs];
        for (uint32_t i = 0; i < s.arg.n; i++) {
            ptrs[i] = ref_[s.handles[i]].data();
        }
        Apply(s.arg, ptrs);
    }

    /* Acquire handle h from the submitting thread, compare it with the replay
     * so far, and (for RW) change it on both sides. */
    bool CheckpointAndTouch(uint32_t h, uint64_t salt)
    {
        void *ptr = nullptr;
        tsr_access_t mode = salt % 2 == 0 ? TSR_R : TSR_RW;
        tsr_status_t st = tsr_data_acquire(handles_[h].get(), mode, &ptr, nullptr);
        if (st != TSR_OK) {
            ADD_FAILURE() << "acquire: " << tsr_status_str(st) << " " << tsr_last_error();
            return false;
        }
        uint64_t *words = static_cast<uint64_t *>(ptr);
        bool same = std::equal(words, words + kWords, ref_[h].begin());
        if (mode == TSR_RW) {
            words[salt % kWords] ^= salt;
            ref_[h][salt % kWords] ^= salt;
        }
        EXPECT_EQ(tsr_data_release(handles_[h].get()), TSR_OK);
        EXPECT_TRUE(same) << "handle " << h << " differs from the replay at a checkpoint";
        return same;
    }

    void ExpectFinalStateMatches()
    {
        ASSERT_EQ(tsr_wait_all(rt_.get()), TSR_OK);
        tsr_runtime_stats_t stats = tsr_test::Stats(rt_.get());
        EXPECT_EQ(stats.n_failed, 0u);
        EXPECT_EQ(stats.n_completed, stats.n_submitted);
        size_t n_bad = 0;
        for (size_t h = 0; h < kHandles; h++) {
            std::optional<std::vector<uint64_t>> words = tsr_test::ReadWords(handles_[h].get());
            ASSERT_TRUE(words);
            if (!std::equal(words->begin(), words->end(), ref_[h].begin()) && n_bad++ < 5) {
                ADD_FAILURE() << "handle " << h << " differs from the sequential replay";
            }
        }
        EXPECT_EQ(n_bad, 0u);
        handles_.clear();
        for (size_t h = 0; h < kHandles; h++) {
            EXPECT_EQ(real_[h], ref_[h]) << "user buffer " << h << " after unregister";
        }
    }

    size_t TasksPerThread() const { return tsr_test::Scaled(10000, 400) / kThreads; }

    uint64_t seed_ = 0;
    Runtime rt_;
    std::array<std::array<uint64_t, kWords>, kHandles> real_;
    std::array<std::array<uint64_t, kWords>, kHandles> ref_;
    std::vector<Data> handles_;
};

TEST_P(Oracle, SerialisedSubmitMatchesGlobalReplay)
{
    SCOPED_TRACE(tsr_test::SeedTrace(seed_));
    std::mutex submit_mu;
    std::atomic<bool> ok{true};
    uint64_t n_submitted = 0;
    tsr_test::RunOnThreads(kThreads, [&](int t) {
        std::mt19937_64 rng(seed_ + static_cast<uint64_t>(t));
        auto pick = [](std::mt19937_64 &r, bool *) {
            return static_cast<uint32_t>(r() % kHandles);
        };
        for (size_t i = 0; i < TasksPerThread() && ok; i++) {
            Spec s = RandomSpec(rng, pick);
            uint64_t salt = rng();
            std::lock_guard<std::mutex> lock(submit_mu);
            s.arg.tag = n_submitted++;
            if (!SubmitAndReplay(s)) {
                ok = false;
                return;
            }
            if (salt % 256 == 0 && !CheckpointAndTouch(s.handles[0], salt >> 8)) {
                ok = false;
            }
        }
    });
    ASSERT_TRUE(ok);
    ExpectFinalStateMatches();
}

TEST_P(Oracle, DisjointOwnersMatchPerThreadReplay)
{
    SCOPED_TRACE(tsr_test::SeedTrace(seed_));
    static_assert(kOwned + kShared == kHandles, "handle split");
    std::atomic<bool> ok{true};
    tsr_test::RunOnThreads(kThreads, [&](int t) {
        std::mt19937_64 rng(seed_ + 1000 + static_cast<uint64_t>(t));
        auto pick = [t](std::mt19937_64 &r, bool *read_only) {
            if (r() % 4 == 0) {
                *read_only = true;
                return static_cast<uint32_t>(kOwned + r() % kShared);
            }
            /* Owned: h % kThreads == t. */
            return static_cast<uint32_t>((r() % (kOwned / kThreads)) * kThreads + t);
        };
        for (size_t i = 0; i < TasksPerThread() && ok; i++) {
            Spec s = RandomSpec(rng, pick);
            s.arg.tag = (static_cast<uint64_t>(t) << 32) | i;
            if (!SubmitAndReplay(s)) {
                ok = false;
                return;
            }
            uint64_t salt = rng();
            uint32_t h = s.handles[0];
            if (salt % 256 == 0 && h < kOwned && !CheckpointAndTouch(h, salt >> 8)) {
                ok = false;
            }
        }
    });
    ASSERT_TRUE(ok);
    ExpectFinalStateMatches();
}

INSTANTIATE_TEST_SUITE_P(Policies, Oracle, testing::ValuesIn(tsr_test::AllRtParams()),
                         tsr_test::RtParamName);

}  // namespace
