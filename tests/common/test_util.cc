#include "common/test_util.h"

#include <ftw.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>

namespace tsr_test {

tsr_config_t TestConfig(int32_t n_workers, tsr_sched_policy_t policy)
{
    tsr_config_t config = TSR_CONFIG_INIT;
    config.n_cpu_workers = n_workers;
    config.policy = policy;
    config.flags = TSR_CONFIG_F_NO_ENV;
    return config;
}

Runtime StartRuntime(const tsr_config_t &config)
{
    tsr_runtime_t *rt = nullptr;
    tsr_status_t st = tsr_init(&config, &rt);
    if (st != TSR_OK) {
        ADD_FAILURE() << "tsr_init: " << tsr_status_str(st) << ": " << tsr_last_error();
        return Runtime();
    }
    return Runtime(rt);
}

Runtime StartRuntime(int32_t n_workers, tsr_sched_policy_t policy)
{
    return StartRuntime(TestConfig(n_workers, policy));
}

uint32_t UsableCores()
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return static_cast<uint32_t>(sysconf(_SC_NPROCESSORS_ONLN));
    }
    return static_cast<uint32_t>(CPU_COUNT(&set));
}

std::vector<RtParam> AllRtParams()
{
    std::vector<RtParam> params;
    for (tsr_sched_policy_t policy : {TSR_SCHED_EAGER, TSR_SCHED_WS}) {
        for (int32_t n : {1, 2, 4}) {
            params.push_back({policy, n});
        }
    }
    return params;
}

std::vector<RtParam> MultiWorkerRtParams()
{
    std::vector<RtParam> params;
    for (const RtParam &p : AllRtParams()) {
        if (p.n_workers >= 2) {
            params.push_back(p);
        }
    }
    return params;
}

std::vector<RtParam> SingleWorkerRtParams()
{
    return {{TSR_SCHED_EAGER, 1}, {TSR_SCHED_WS, 1}};
}

std::string RtParamName(const testing::TestParamInfo<RtParam> &info)
{
    std::string name = tsr_sched_policy_name(info.param.policy);
    for (char &c : name) {
        if (!isalnum(static_cast<unsigned char>(c))) {
            c = '_';
        }
    }
    return name + "_" + std::to_string(info.param.n_workers) + "w";
}

Data Register(tsr_runtime_t *rt, void *ptr, size_t n_bytes)
{
    tsr_data_t *data = nullptr;
    tsr_status_t st = tsr_data_register(rt, ptr, n_bytes, &data);
    if (st != TSR_OK) {
        ADD_FAILURE() << "tsr_data_register: " << tsr_status_str(st) << ": " << tsr_last_error();
        return Data();
    }
    return Data(data);
}

Data CreateData(tsr_runtime_t *rt)
{
    tsr_data_t *data = nullptr;
    tsr_status_t st = tsr_data_create(rt, &data);
    if (st != TSR_OK) {
        ADD_FAILURE() << "tsr_data_create: " << tsr_status_str(st) << ": " << tsr_last_error();
        return Data();
    }
    return Data(data);
}

std::optional<std::vector<uint8_t>> ReadBytes(tsr_data_t *data)
{
    void *ptr = nullptr;
    size_t n_bytes = 0;
    tsr_status_t st = tsr_data_acquire(data, TSR_R, &ptr, &n_bytes);
    if (st != TSR_OK) {
        ADD_FAILURE() << "tsr_data_acquire: " << tsr_status_str(st) << ": " << tsr_last_error();
        return std::nullopt;
    }
    const uint8_t *bytes = static_cast<const uint8_t *>(ptr);
    std::vector<uint8_t> copy(bytes, bytes + n_bytes);
    st = tsr_data_release(data);
    if (st != TSR_OK) {
        ADD_FAILURE() << "tsr_data_release: " << tsr_status_str(st) << ": " << tsr_last_error();
    }
    return copy;
}

std::optional<std::vector<uint64_t>> ReadWords(tsr_data_t *data)
{
    std::optional<std::vector<uint8_t>> bytes = ReadBytes(data);
    if (!bytes) {
        return std::nullopt;
    }
    std::vector<uint64_t> words(bytes->size() / sizeof(uint64_t));
    if (!words.empty()) {
        std::memcpy(words.data(), bytes->data(), words.size() * sizeof(uint64_t));
    }
    return words;
}

uint64_t Word0(tsr_data_t *data)
{
    std::optional<std::vector<uint64_t>> words = ReadWords(data);
    return words && !words->empty() ? (*words)[0] : ~0ull;
}

tsr_codelet_t MakeCodelet(const char *name, tsr_kernel_fn cpu,
                          std::initializer_list<tsr_access_t> modes)
{
    tsr_codelet_t codelet = {};
    codelet.name = name;
    codelet.impl[TSR_DEVICE_CPU] = cpu;
    codelet.n_buffers = static_cast<int32_t>(modes.size());
    size_t i = 0;
    for (tsr_access_t mode : modes) {
        codelet.modes[i++] = mode;
    }
    return codelet;
}

tsr_codelet_t MakeDynamicCodelet(const char *name, tsr_kernel_fn cpu)
{
    tsr_codelet_t codelet = {};
    codelet.name = name;
    codelet.impl[TSR_DEVICE_CPU] = cpu;
    codelet.n_buffers = TSR_NBUFFERS_DYNAMIC;
    return codelet;
}

Task &Task::Use(tsr_data_t *handle)
{
    handles_.push_back(handle);
    return *this;
}

Task &Task::Use(tsr_data_t *handle, tsr_access_t mode)
{
    handles_.push_back(handle);
    modes_.push_back(mode);
    return *this;
}

Task &Task::ArgBytes(const void *arg, size_t arg_size)
{
    const unsigned char *bytes = static_cast<const unsigned char *>(arg);
    arg_.assign(bytes, bytes + arg_size);
    has_arg_ = true;
    return *this;
}

Task &Task::Priority(int32_t priority)
{
    priority_ = priority;
    return *this;
}

Task &Task::After(tsr_future_t *future)
{
    deps_.push_back(future);
    return *this;
}

Task &Task::Name(const char *name)
{
    name_ = name;
    return *this;
}

tsr_task_desc_t Task::Desc() const
{
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    desc.codelet = codelet_;
    desc.handles = handles_.empty() ? nullptr : handles_.data();
    desc.modes = modes_.empty() ? nullptr : modes_.data();
    desc.n_handles = static_cast<uint32_t>(handles_.size());
    desc.arg = has_arg_ && !arg_.empty() ? arg_.data() : nullptr;
    desc.arg_size = has_arg_ ? arg_.size() : 0;
    desc.priority = priority_;
    desc.deps = deps_.empty() ? nullptr : deps_.data();
    desc.n_deps = static_cast<uint32_t>(deps_.size());
    desc.name = name_;
    return desc;
}

tsr_status_t Task::Submit(tsr_runtime_t *rt, Future *future_out) const
{
    tsr_task_desc_t desc = Desc();
    tsr_future_t *future = nullptr;
    tsr_status_t st = tsr_task_submit(rt, &desc, future_out != nullptr ? &future : nullptr);
    if (st == TSR_OK && future_out != nullptr) {
        future_out->reset(future);
    }
    return st;
}

Future Task::Run(tsr_runtime_t *rt) const
{
    Future future;
    tsr_status_t st = Submit(rt, &future);
    if (st != TSR_OK) {
        ADD_FAILURE() << "tsr_task_submit: " << tsr_status_str(st) << ": " << tsr_last_error();
    }
    return future;
}

void ReleaseAll(std::vector<Future> &futures)
{
    futures.clear();
}

tsr_runtime_stats_t Stats(tsr_runtime_t *rt)
{
    tsr_runtime_stats_t stats = TSR_RUNTIME_STATS_INIT;
    tsr_status_t st = tsr_runtime_stats(rt, &stats);
    if (st != TSR_OK) {
        ADD_FAILURE() << "tsr_runtime_stats: " << tsr_status_str(st);
    }
    return stats;
}

void Gate::Wait()
{
    std::unique_lock<std::mutex> lock(mu_);
    n_entered_++;
    cv_.notify_all();
    cv_.wait(lock, [this] { return is_open_; });
}

void Gate::Open()
{
    std::lock_guard<std::mutex> lock(mu_);
    is_open_ = true;
    cv_.notify_all();
}

bool Gate::IsOpen()
{
    std::lock_guard<std::mutex> lock(mu_);
    return is_open_;
}

void Gate::WaitEntered(int n)
{
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this, n] { return n_entered_ >= n; });
}

void FlushReadyTasks(tsr_runtime_t *rt)
{
    if (Stats(rt).n_cpu_workers < 2) {
        return;
    }
    Future probe = Task(&kEmptyCodelet).Priority(INT32_MIN).Run(rt);
    if (probe) {
        EXPECT_EQ(tsr_future_wait(probe.get()), TSR_OK);
    }
}

void FlushThenOpen(Gate &gate, tsr_runtime_t *rt)
{
    gate.WaitEntered();
    FlushReadyTasks(rt);
    gate.Open();
}

void OrderLog::Add(int64_t value)
{
    std::lock_guard<std::mutex> lock(mu_);
    values_.push_back(value);
}

std::vector<int64_t> OrderLog::Values()
{
    std::lock_guard<std::mutex> lock(mu_);
    return values_;
}

namespace {

tsr_status_t EmptyKernel(tsr_task_ctx_t *, const tsr_buffer_t *, const void *)
{
    return TSR_OK;
}

tsr_status_t CountKernel(tsr_task_ctx_t *, const tsr_buffer_t *, const void *arg)
{
    ArgAs<std::atomic<uint64_t> *>(arg)->fetch_add(1, std::memory_order_relaxed);
    return TSR_OK;
}

tsr_status_t GateKernel(tsr_task_ctx_t *, const tsr_buffer_t *, const void *arg)
{
    ArgAs<Gate *>(arg)->Wait();
    return TSR_OK;
}

uint64_t *Word(const tsr_buffer_t &buf)
{
    return static_cast<uint64_t *>(buf.ptr);
}

tsr_status_t WordKernel(tsr_task_ctx_t *, const tsr_buffer_t *bufs, const void *arg)
{
    WordArg a = ArgAs<WordArg>(arg);
    if (a.gate != nullptr) {
        a.gate->Wait();
    }
    switch (a.op) {
    case WordArg::kSet:
        *Word(bufs[0]) = a.k;
        break;
    case WordArg::kAffine:
        *Word(bufs[0]) = *Word(bufs[0]) * 31 + a.k;
        break;
    case WordArg::kCombine: {
        uint64_t acc = a.k;
        for (uint32_t i = 0; i < a.n_in; i++) {
            acc = acc * 31 + *Word(bufs[i]);
        }
        *Word(bufs[a.n_in]) = acc;
        break;
    }
    }
    if (a.log != nullptr) {
        a.log->Add(a.tag);
    }
    return TSR_OK;
}

tsr_status_t FailKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    FailArg a = ArgAs<FailArg>(arg);
    if (a.gate != nullptr) {
        a.gate->Wait();
    }
    if (a.message[0] != '\0') {
        tsr_task_ctx_fail(ctx, "%s", a.message);
    }
    return a.status;
}

tsr_status_t TreeKernel(tsr_task_ctx_t *ctx, const tsr_buffer_t *, const void *arg)
{
    TreeArg a = ArgAs<TreeArg>(arg);
    a.count->fetch_add(1, std::memory_order_relaxed);
    if (a.depth == 0) {
        return TSR_OK;
    }
    TreeArg child = {a.depth - 1, a.count};
    for (int i = 0; i < 2; i++) {
        tsr_status_t st = Task(&kTreeCodelet).Arg(child).Submit(tsr_task_ctx_runtime(ctx));
        if (st != TSR_OK) {
            tsr_task_ctx_fail(ctx, "submit: %s", tsr_status_str(st));
            return st;
        }
    }
    return TSR_OK;
}

}  // namespace

const tsr_codelet_t kEmptyCodelet = MakeCodelet("empty", EmptyKernel, {});
const tsr_codelet_t kCountCodelet = MakeCodelet("count", CountKernel, {});
const tsr_codelet_t kGateCodelet = MakeDynamicCodelet("gate", GateKernel);
const tsr_codelet_t kWordCodelet = MakeDynamicCodelet("word", WordKernel);
const tsr_codelet_t kFailCodelet = MakeDynamicCodelet("fail", FailKernel);
const tsr_codelet_t kTreeCodelet = MakeCodelet("tree", TreeKernel, {});

namespace {

WordArg MakeWordArg(WordArg::Op op, uint32_t n_in, uint64_t k, Gate *gate, OrderLog *log,
                    int64_t tag)
{
    WordArg arg = {};
    arg.op = op;
    arg.n_in = n_in;
    arg.k = k;
    arg.gate = gate;
    arg.log = log;
    arg.tag = tag;
    return arg;
}

}  // namespace

Task SetTask(tsr_data_t *x, uint64_t k, Gate *gate, OrderLog *log, int64_t tag)
{
    Task task(&kWordCodelet);
    task.Use(x, TSR_W).Arg(MakeWordArg(WordArg::kSet, 0, k, gate, log, tag));
    return task;
}

Task AffineTask(tsr_data_t *x, uint64_t k, Gate *gate, OrderLog *log, int64_t tag)
{
    Task task(&kWordCodelet);
    task.Use(x, TSR_RW).Arg(MakeWordArg(WordArg::kAffine, 0, k, gate, log, tag));
    return task;
}

Task CombineTask(const std::vector<tsr_data_t *> &in, tsr_data_t *out, uint64_t k, Gate *gate,
                 OrderLog *log, int64_t tag)
{
    Task task(&kWordCodelet);
    for (tsr_data_t *h : in) {
        task.Use(h, TSR_R);
    }
    task.Use(out, TSR_W);
    task.Arg(MakeWordArg(WordArg::kCombine, static_cast<uint32_t>(in.size()), k, gate, log, tag));
    return task;
}

uint64_t CombineRef(const std::vector<uint64_t> &in, uint64_t k)
{
    uint64_t acc = k;
    for (uint64_t v : in) {
        acc = acc * 31 + v;
    }
    return acc;
}

uint64_t AffineRef(uint64_t x, const std::vector<uint64_t> &ks)
{
    for (uint64_t k : ks) {
        x = x * 31 + k;
    }
    return x;
}

FailArg MakeFailArg(tsr_status_t status, const char *message, Gate *gate)
{
    FailArg arg = {};
    arg.status = status;
    arg.gate = gate;
    std::snprintf(arg.message, sizeof(arg.message), "%s", message);
    return arg;
}

uint64_t TestSeed()
{
    const char *env = std::getenv("TSR_TEST_SEED");
    if (env != nullptr && env[0] != '\0') {
        return std::strtoull(env, nullptr, 0);
    }
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
}

std::string SeedTrace(uint64_t seed)
{
    return "seed " + std::to_string(seed) + " (replay with TSR_TEST_SEED=" + std::to_string(seed) +
           ")";
}

double TestScale()
{
    const char *env = std::getenv("TSR_TEST_SCALE");
    if (env == nullptr || env[0] == '\0') {
        return 1.0;
    }
    double scale = std::strtod(env, nullptr);
    return scale > 0 ? scale : 1.0;
}

size_t Scaled(size_t n, size_t min)
{
    size_t scaled = static_cast<size_t>(static_cast<double>(n) * TestScale());
    return scaled < min ? min : scaled;
}

ScopedEnv::ScopedEnv(const char *name, const char *value) : name_(name)
{
    const char *old = std::getenv(name);
    if (old != nullptr) {
        old_value_ = old;
    }
    if (value != nullptr) {
        setenv(name, value, 1);
    } else {
        unsetenv(name);
    }
}

ScopedEnv::~ScopedEnv()
{
    if (old_value_) {
        setenv(name_.c_str(), old_value_->c_str(), 1);
    } else {
        unsetenv(name_.c_str());
    }
}

namespace {

/* "$TMPDIR/<stem>-XXXXXX" (/tmp when TMPDIR is unset or empty), NUL-terminated for
 * mkstemp and mkdtemp. */
std::vector<char> TempPattern(const char *stem)
{
    const char *dir = std::getenv("TMPDIR");
    std::string pattern =
        std::string(dir != nullptr && dir[0] != '\0' ? dir : "/tmp") + "/" + stem + "-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    return buf;
}

/* nftw callback: removes the entry and goes on even when that fails, so that as
 * much as possible goes. */
int RemoveEntry(const char *path, const struct stat *, int, struct FTW *)
{
    std::remove(path);
    return 0;
}

}  // namespace

TempFile::TempFile(const char *stem)
{
    std::vector<char> buf = TempPattern(stem);
    std::string pattern = buf.data();
    int fd = mkstemp(buf.data());
    if (fd >= 0) {
        close(fd);
    } else {
        ADD_FAILURE() << "mkstemp failed for " << pattern;
    }
    path_ = buf.data();
}

TempFile::~TempFile()
{
    std::remove(path_.c_str());
}

TempDir::TempDir(const char *stem)
{
    std::vector<char> buf = TempPattern(stem);
    if (mkdtemp(buf.data()) == nullptr) {
        ADD_FAILURE() << "mkdtemp failed for " << buf.data();
        return;
    }
    path_ = buf.data();
}

TempDir::~TempDir()
{
    if (path_.empty()) {
        return;
    }
    /* Depth first (FTW_DEPTH), so each directory is empty when its turn comes; links
     * are removed, not followed (FTW_PHYS). */
    nftw(path_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace tsr_test
