/* Shared helpers of the Tessera test suite: RAII owners of runtimes, handles and
 * futures, a task builder, a gate that holds a worker until the test opens it,
 * seeds, scaling and environment guards. */
#ifndef TSR_TESTS_COMMON_TEST_UTIL_H
#define TSR_TESTS_COMMON_TEST_UTIL_H

#include <gtest/gtest.h>
#include <tessera.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tsr_test {

/* ---- Owners ------------------------------------------------------------- */

struct RuntimeDeleter {
    void operator()(tsr_runtime_t *rt) const { tsr_shutdown(rt); }
};
struct DataDeleter {
    void operator()(tsr_data_t *data) const { tsr_data_unregister(data); }
};
struct FutureDeleter {
    void operator()(tsr_future_t *future) const { tsr_future_release(future); }
};

/* Declare a Runtime before the Data and Future owners that belong to it, so that
 * they go first: a future must be released before its runtime shuts down. */
using Runtime = std::unique_ptr<tsr_runtime_t, RuntimeDeleter>;
using Data = std::unique_ptr<tsr_data_t, DataDeleter>;
using Future = std::unique_ptr<tsr_future_t, FutureDeleter>;

/* ---- Configuration and start-up ----------------------------------------- */

/** A configuration that ignores TESSERA_* variables, so tests do not depend on
 *  the environment they run in. */
tsr_config_t TestConfig(int32_t n_workers, tsr_sched_policy_t policy);

/** tsr_init, adding a test failure (and returning null) when it fails. */
Runtime StartRuntime(const tsr_config_t &config);
Runtime StartRuntime(int32_t n_workers, tsr_sched_policy_t policy);

/** Number of CPUs this process may run on (sched_getaffinity). */
uint32_t UsableCores();

/** One runtime shape of a parameterised test. */
struct RtParam {
    tsr_sched_policy_t policy;
    int32_t n_workers;
};
/** eager and ws, each with 1, 2 and 4 workers (4 oversubscribes 2 cores). */
std::vector<RtParam> AllRtParams();
/** The same with 2 workers or more. */
std::vector<RtParam> MultiWorkerRtParams();
/** Both policies with one worker (deterministic execution order). */
std::vector<RtParam> SingleWorkerRtParams();
std::string RtParamName(const testing::TestParamInfo<RtParam> &info);

/** Base of the tests parameterised by RtParam (derive a named suite from it). */
class RtParamTest : public testing::TestWithParam<RtParam> {
protected:
    /** Starts a runtime of the parameter's shape. */
    Runtime Start() const { return StartRuntime(GetParam().n_workers, GetParam().policy); }
};

/* ---- Data ----------------------------------------------------------------- */

Data Register(tsr_runtime_t *rt, void *ptr, size_t n_bytes);
template <class T>
Data RegisterVector(tsr_runtime_t *rt, std::vector<T> &values)
{
    return Register(rt, values.data(), values.size() * sizeof(T));
}
/** One handle for each vector of `vectors`, in order. */
template <class T>
std::vector<Data> RegisterVectors(tsr_runtime_t *rt, std::vector<std::vector<T>> &vectors)
{
    std::vector<Data> handles;
    for (std::vector<T> &values : vectors) {
        handles.push_back(RegisterVector(rt, values));
    }
    return handles;
}
Data CreateData(tsr_runtime_t *rt);

/** Copy of the contents of `data` taken under tsr_data_acquire(R); an empty
 *  optional (and a test failure) when the acquire fails. */
std::optional<std::vector<uint8_t>> ReadBytes(tsr_data_t *data);
std::optional<std::vector<uint64_t>> ReadWords(tsr_data_t *data);
/** Word 0 of `data` (through ReadWords); ~0 when it cannot be read or is empty. */
uint64_t Word0(tsr_data_t *data);

/* ---- Codelets and tasks --------------------------------------------------- */

tsr_codelet_t MakeCodelet(const char *name, tsr_kernel_fn cpu,
                          std::initializer_list<tsr_access_t> modes);
tsr_codelet_t MakeDynamicCodelet(const char *name, tsr_kernel_fn cpu);

/** Copy of a task's argument blob as a T (the blob carries no alignment promise). */
template <class T>
T ArgAs(const void *arg)
{
    T value;
    std::memcpy(&value, arg, sizeof(T));
    return value;
}

/** Builds a tsr_task_desc_t. Modes given with Use() are passed as desc.modes;
 *  without any the codelet's modes apply. */
class Task {
public:
    explicit Task(const tsr_codelet_t *codelet) : codelet_(codelet) {}
    Task &Use(tsr_data_t *handle);
    Task &Use(tsr_data_t *handle, tsr_access_t mode);
    Task &ArgBytes(const void *arg, size_t arg_size);
    template <class T>
    Task &Arg(const T &value)
    {
        return ArgBytes(&value, sizeof(T));
    }
    Task &Priority(int32_t priority);
    Task &After(tsr_future_t *future);
    Task &Name(const char *name);
    /** The descriptor; valid while this builder lives and is unchanged. */
    tsr_task_desc_t Desc() const;
    tsr_status_t Submit(tsr_runtime_t *rt, Future *future_out = nullptr) const;
    /** Submit, adding a test failure if that fails; returns the future. */
    Future Run(tsr_runtime_t *rt) const;

private:
    const tsr_codelet_t *codelet_;
    std::vector<tsr_data_t *> handles_;
    std::vector<tsr_access_t> modes_;
    std::vector<tsr_future_t *> deps_;
    std::vector<unsigned char> arg_;
    bool has_arg_ = false;
    int32_t priority_ = 0;
    const char *name_ = nullptr;
};

/** Release every future of `futures` now (before the runtime goes). */
void ReleaseAll(std::vector<Future> &futures);
/** The pointers `owners` hold, in order (for the calls that take arrays). */
template <class T, class Deleter>
std::vector<T *> RawPointers(const std::vector<std::unique_ptr<T, Deleter>> &owners)
{
    std::vector<T *> raw;
    raw.reserve(owners.size());
    for (const std::unique_ptr<T, Deleter> &owner : owners) {
        raw.push_back(owner.get());
    }
    return raw;
}
inline std::vector<tsr_future_t *> RawFutures(const std::vector<Future> &futures)
{
    return RawPointers(futures);
}

tsr_runtime_stats_t Stats(tsr_runtime_t *rt);

/* ---- Gate ----------------------------------------------------------------- */

/** Holds the tasks that wait on it until the test opens it. Never sleeps on a
 *  clock: waiters block on a condition variable. */
class Gate {
public:
    /** Called by a task: counts the entry, then blocks until Open(). */
    void Wait();
    void Open();
    bool IsOpen();
    /** Block the caller until `n` tasks have entered Wait(). */
    void WaitEntered(int n = 1);

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool is_open_ = false;
    int n_entered_ = 0;
};

/** Opens a gate when it goes out of scope, so that an early return from a test
 *  (a failed ASSERT) cannot leave tasks blocked while owners wait for them.
 *  Declare it after the Runtime and Data owners whose destruction waits. */
class GateOpener {
public:
    explicit GateOpener(Gate &gate) : gate_(gate) {}
    ~GateOpener() { gate_.Open(); }
    GateOpener(const GateOpener &) = delete;
    GateOpener &operator=(const GateOpener &) = delete;

private:
    Gate &gate_;
};

/** Give every task the runtime considers ready the chance to run: submit an
 *  empty task of the lowest priority and wait for it. With two workers or more
 *  (one may be held at a gate), a task wrongly made ready before its
 *  dependencies runs before this returns, so ordering tests catch it for sure
 *  instead of by luck. With one worker it returns at once (the worker may be
 *  the one held). Call it after Gate::WaitEntered(). */
void FlushReadyTasks(tsr_runtime_t *rt);

/** How ordering tests let go of the task they hold: wait until it has entered
 *  `gate`, FlushReadyTasks(rt), then open the gate. */
void FlushThenOpen(Gate &gate, tsr_runtime_t *rt);

/** Records the order in which tasks ran. Thread-safe. */
class OrderLog {
public:
    void Add(int64_t value);
    std::vector<int64_t> Values();

private:
    std::mutex mu_;
    std::vector<int64_t> values_;
};

/* ---- Common codelets ------------------------------------------------------ */

/** No buffers, no argument; does nothing. */
extern const tsr_codelet_t kEmptyCodelet;
/** No buffers; argument std::atomic<uint64_t> *: increments it. */
extern const tsr_codelet_t kCountCodelet;
/** Dynamic buffers (any handles, any modes); argument Gate *: waits on it. */
extern const tsr_codelet_t kGateCodelet;

/** Argument of kWordCodelet. Every buffer is an array of uint64_t; only word 0
 *  is used. After the optional gate the task applies `op`:
 *    kSet      bufs[0] (W):   x = k
 *    kAffine   bufs[0] (RW):  x = x * 31 + k
 *    kCombine  bufs[0..n_in-1] (R), bufs[n_in] (W):  out = fold of the inputs
 *              with acc = k, then acc = acc * 31 + in
 *  and then, when `log` is set, appends `tag` to it. */
struct WordArg {
    enum Op : uint32_t { kSet = 0, kAffine = 1, kCombine = 2 };
    Op op;
    uint32_t n_in;
    uint64_t k;
    Gate *gate;
    OrderLog *log;
    int64_t tag;
};
extern const tsr_codelet_t kWordCodelet; /* dynamic buffers */

/** Tasks of kWordCodelet with their modes filled in. */
Task SetTask(tsr_data_t *x, uint64_t k, Gate *gate = nullptr, OrderLog *log = nullptr,
             int64_t tag = 0);
Task AffineTask(tsr_data_t *x, uint64_t k, Gate *gate = nullptr, OrderLog *log = nullptr,
                int64_t tag = 0);
Task CombineTask(const std::vector<tsr_data_t *> &in, tsr_data_t *out, uint64_t k,
                 Gate *gate = nullptr, OrderLog *log = nullptr, int64_t tag = 0);
/** The value kCombine computes. */
uint64_t CombineRef(const std::vector<uint64_t> &in, uint64_t k);
/** The value of x after kAffine tasks with each k of `ks`, in order. */
uint64_t AffineRef(uint64_t x, const std::vector<uint64_t> &ks);

/** Argument of kFailCodelet: the status to return and a message for
 *  tsr_task_ctx_fail (none when empty). An optional gate is waited on first. */
struct FailArg {
    tsr_status_t status;
    Gate *gate;
    char message[40];
};
extern const tsr_codelet_t kFailCodelet; /* dynamic buffers */
FailArg MakeFailArg(tsr_status_t status, const char *message, Gate *gate = nullptr);

/** Argument of kTreeCodelet: a task of depth d increments *count, then (for
 *  d > 0) submits two tasks of depth d - 1 from inside itself. */
struct TreeArg {
    uint32_t depth;
    std::atomic<uint64_t> *count;
};
extern const tsr_codelet_t kTreeCodelet; /* no buffers */
/** Number of tasks a tree of `depth` runs: 2^(depth + 1) - 1. */
inline uint64_t TreeSize(uint32_t depth)
{
    return (2ull << depth) - 1;
}

/* ---- Randomness, scale, environment ---------------------------------------- */

/** Seed for a test: TSR_TEST_SEED if set, else a fresh random one. Print it with
 *  SCOPED_TRACE(SeedTrace(seed)) so failures can be replayed. */
uint64_t TestSeed();
std::string SeedTrace(uint64_t seed);

/** Factor from TSR_TEST_SCALE (default 1) applied to iteration counts; sanitizer
 *  runs may lower it. Scaled() never returns less than `min`. */
double TestScale();
size_t Scaled(size_t n, size_t min = 1);

/** SplitMix64 finaliser: a cheap, well-mixed hash of a 64-bit value. */
inline uint64_t Mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/** Sets (or unsets, with nullptr) an environment variable and restores the old
 *  value when it goes out of scope. */
class ScopedEnv {
public:
    ScopedEnv(const char *name, const char *value);
    ~ScopedEnv();
    ScopedEnv(const ScopedEnv &) = delete;
    ScopedEnv &operator=(const ScopedEnv &) = delete;

private:
    std::string name_;
    std::optional<std::string> old_value_;
};

/** A fresh path in the temporary directory; the file is removed on scope exit. */
class TempFile {
public:
    explicit TempFile(const char *stem);
    ~TempFile();
    const std::string &path() const { return path_; }

private:
    std::string path_;
};

/** A fresh directory in the temporary directory ($TMPDIR, else /tmp); removed with
 *  everything in it on scope exit. path() is empty (and a failure was added) when
 *  it could not be made. */
class TempDir {
public:
    explicit TempDir(const char *stem);
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const std::string &path() const { return path_; }

private:
    std::string path_;
};

/** Run `fn` on a new thread (whose tsr_last_error() starts empty) and return the
 *  last error it left there. */
template <class Fn>
std::string LastErrorOnFreshThread(Fn fn);

/** Run fn(0) ... fn(n_threads - 1), each on a thread of its own, and join them. */
template <class Fn>
void RunOnThreads(int n_threads, Fn fn);

}  // namespace tsr_test

#include <thread>

template <class Fn>
void tsr_test::RunOnThreads(int n_threads, Fn fn)
{
    std::vector<std::thread> threads;
    for (int t = 0; t < n_threads; t++) {
        threads.emplace_back(fn, t);
    }
    for (std::thread &thread : threads) {
        thread.join();
    }
}

template <class Fn>
std::string tsr_test::LastErrorOnFreshThread(Fn fn)
{
    std::string message;
    std::thread thread([&] {
        fn();
        message = tsr_last_error();
    });
    thread.join();
    return message;
}

#endif /* TSR_TESTS_COMMON_TEST_UTIL_H */
