/* SAXPY with Tessera: y = a * x + y on the CPU, a GPU, or both.
 *
 * What this example shows:
 * - a user-written CUDA C kernel registered as the CUDA implementation of a
 *   codelet, next to a CPU implementation of the same codelet;
 * - vectors registered in chunks (one data handle per chunk), so independent
 *   chunks can run on different devices at once;
 * - tasks submitted unpinned (the runtime picks a device for each) or forced onto
 *   one kind of device with --device cpu|cuda;
 * - no explicit copies anywhere: Tessera moves each chunk to the device that
 *   needs it, keeps it there while a chain of tasks updates it, and brings the
 *   latest version back when the program acquires it.
 *
 * The result is checked against a sequential computation in double precision.
 * Without a GPU (or without the NVIDIA driver) Tessera finds no CUDA device and
 * runs everything on the CPU implementation; the program still passes.
 *
 * Exit status: 0 PASS, 1 FAIL or error, 2 bad usage, 77 --device cuda was asked
 * for but there is no CUDA device (the "skipped" status of CTest and automake). */
#include <cuda_runtime.h>
#include <tessera.h>
#include <tessera/cuda.h>

#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

namespace {

constexpr int kExitPass = 0;
constexpr int kExitFail = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSkip = 77;
constexpr uint32_t kMaxDevices = 64;

/* ---- The kernel and its two implementations ------------------------------ */

/* Grid-stride loop: any grid size covers any n, so the launch below can cap the
 * number of blocks instead of sizing the grid to the chunk. */
__global__ void saxpy_kernel(size_t n, float a, const float *__restrict__ x, float *__restrict__ y)
{
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        y[i] = a * x[i] + y[i];
    }
}

/* The task argument. Tessera copies it when the task is submitted, so it may
 * live on the caller's stack. It carries no device pointers: the buffers come
 * from the runtime, which knows where each chunk currently lives. */
struct saxpy_arg {
    float a;
    std::atomic<uint64_t> *tasks_per_device; /* kMaxDevices counters, for the report */
};

void count_task(tsr_task_ctx_t *ctx, const saxpy_arg *arg)
{
    uint32_t device = tsr_task_ctx_device(ctx);
    if (device < kMaxDevices) {
        arg->tasks_per_device[device].fetch_add(1, std::memory_order_relaxed);
    }
}

/* Both implementations check what they are given: the handles are (x, y) of one
 * chunk, so they must have the same size. */
bool check_buffers(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs)
{
    if (bufs[0].n_bytes != bufs[1].n_bytes || bufs[0].n_bytes % sizeof(float) != 0) {
        tsr_task_ctx_fail(ctx, "saxpy: x has %zu bytes and y %zu", bufs[0].n_bytes,
                          bufs[1].n_bytes);
        return false;
    }
    return true;
}

/* CUDA implementation. bufs[i].ptr are device pointers on the GPU this task was
 * given. The kernel is queued on the task's stream and the function returns at
 * once: Tessera records an event after it and completes the task (and starts its
 * dependents) when the GPU has finished. Never synchronise here. */
tsr_status_t saxpy_cuda(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg_ptr)
{
    const saxpy_arg *arg = static_cast<const saxpy_arg *>(arg_ptr);
    if (!check_buffers(ctx, bufs)) {
        return TSR_EINVAL;
    }
    size_t n = bufs[1].n_bytes / sizeof(float);
    if (n == 0) {
        return TSR_OK;
    }
    cudaStream_t stream = tsr_task_ctx_cuda_stream(ctx);
    const unsigned threads = 256;
    size_t want_blocks = (n + threads - 1) / threads;
    unsigned blocks = want_blocks < 4096 ? (unsigned)want_blocks : 4096u;
    saxpy_kernel<<<blocks, threads, 0, stream>>>(n, arg->a, static_cast<const float *>(bufs[0].ptr),
                                                 static_cast<float *>(bufs[1].ptr));
    /* Tessera checks the launch too, but this program may use another copy of
     * the CUDA runtime than the library does, and only the copy that launched
     * the kernel knows that the launch failed. Reporting it here also names the
     * kernel in the task's failure message. */
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        tsr_task_ctx_fail(ctx, "saxpy_kernel<<<%u, %u>>>: %s", blocks, threads,
                          cudaGetErrorString(err));
        return TSR_EBACKEND;
    }
    count_task(ctx, arg);
    return TSR_OK;
}

/* CPU implementation: the same arithmetic on host pointers, run synchronously by
 * a CPU worker thread. */
tsr_status_t saxpy_cpu(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg_ptr)
{
    const saxpy_arg *arg = static_cast<const saxpy_arg *>(arg_ptr);
    if (!check_buffers(ctx, bufs)) {
        return TSR_EINVAL;
    }
    size_t n = bufs[1].n_bytes / sizeof(float);
    const float *__restrict__ x = static_cast<const float *>(bufs[0].ptr);
    float *__restrict__ y = static_cast<float *>(bufs[1].ptr);
    float a = arg->a;
    for (size_t i = 0; i < n; i++) {
        y[i] = a * x[i] + y[i];
    }
    count_task(ctx, arg);
    return TSR_OK;
}

/* One codelet, two implementations. A task of this codelet may run on any device
 * kind that has an implementation; the access modes tell Tessera that x is only
 * read and y is read and written, which is all it needs to order the tasks and
 * to know which copies are current. */
tsr_codelet_t make_saxpy_codelet()
{
    tsr_codelet_t cl = {};
    cl.name = "saxpy";
    cl.impl[TSR_DEVICE_CPU] = saxpy_cpu;
    cl.impl[TSR_DEVICE_CUDA] = saxpy_cuda;
    cl.n_buffers = 2;
    cl.modes[0] = TSR_R;
    cl.modes[1] = TSR_RW;
    return cl;
}

/* The codelet must outlive every task that uses it. */
const tsr_codelet_t kSaxpy = make_saxpy_codelet();

/* ---- Inputs and the reference ---------------------------------------------- */

/* Element i of the inputs, in [-1, 1): a hash of (seed, i), so the check can
 * recompute the inputs instead of keeping a copy of them. */
float input_value(uint64_t seed, uint64_t i)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + i + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 40) / (double)(1ull << 23)) - 1.0f;
}

/* ---- Options ----------------------------------------------------------------- */

enum class Where { kAuto, kCpu, kCuda };
const char *const kWhereNames[] = {"auto", "cpu", "cuda"};

struct Options {
    size_t n = size_t(1) << 24; /* elements of x and y */
    size_t chunk = size_t(1) << 20;
    int reps = 4; /* y = a * x + y is applied this many times */
    float a = 2.5f;
    uint64_t seed = 42;
    Where where = Where::kAuto;
};

void usage(FILE *out)
{
    std::fprintf(out,
                 "usage: tessera-saxpy [--n N] [--chunk C] [--reps R] [--a A] [--seed S]\n"
                 "                     [--device auto|cpu|cuda]\n"
                 "\n"
                 "Computes y = A * x + y, R times, over N floats split into chunks of C,\n"
                 "one task per chunk and repetition, and checks the result.\n"
                 "  --device auto  the runtime places every task (default)\n"
                 "  --device cpu   every task runs on the CPU implementation\n"
                 "  --device cuda  every task runs on a GPU (exit 77 if there is none)\n"
                 "Defaults: N = 16777216, C = 1048576, R = 4, A = 2.5, S = 42.\n"
                 "Tessera's own settings come from TESSERA_* variables, e.g.\n"
                 "TESSERA_TRACE=saxpy.json writes a Chrome trace with every task and copy.\n");
}

bool parse_size(const char *text, size_t min, size_t *out)
{
    char *end = nullptr;
    unsigned long long v = std::strtoull(text, &end, 0);
    if (end == text || *end != '\0' || text[0] == '-' || v < min) {
        return false;
    }
    *out = (size_t)v;
    return true;
}

bool parse_option(const char *name, const char *value, Options *o)
{
    size_t v = 0;
    if (std::strcmp(name, "--n") == 0) {
        return parse_size(value, 1, &o->n);
    }
    if (std::strcmp(name, "--chunk") == 0) {
        return parse_size(value, 1, &o->chunk);
    }
    if (std::strcmp(name, "--reps") == 0) {
        bool ok = parse_size(value, 1, &v) && v <= 1000;
        o->reps = (int)v;
        return ok;
    }
    if (std::strcmp(name, "--seed") == 0) {
        bool ok = parse_size(value, 0, &v);
        o->seed = v;
        return ok;
    }
    if (std::strcmp(name, "--a") == 0) {
        char *end = nullptr;
        o->a = std::strtof(value, &end);
        return end != value && *end == '\0' && std::isfinite(o->a);
    }
    if (std::strcmp(name, "--device") == 0) {
        for (int i = 0; i < 3; i++) {
            if (std::strcmp(value, kWhereNames[i]) == 0) {
                o->where = (Where)i;
                return true;
            }
        }
    }
    return false;
}

/* Returns -1 when the options are fine, else the exit status. */
int parse_args(int argc, char **argv, Options *o)
{
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return kExitPass;
        }
        if (i + 1 >= argc || !parse_option(argv[i], argv[i + 1], o)) {
            std::fprintf(stderr, "tessera-saxpy: bad option '%s'\n", argv[i]);
            usage(stderr);
            return kExitUsage;
        }
        i++;
    }
    return -1;
}

/* ---- The run --------------------------------------------------------------- */

double now_s()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct Run {
    Options opts;
    tsr_runtime_t *rt = nullptr;
    std::vector<float> x, y;
    std::vector<tsr_data_t *> hx, hy; /* one handle per chunk of x and of y */
    std::atomic<uint64_t> tasks_per_device[kMaxDevices] = {};
    double compute_s = 0, acquire_s = 0;
};

uint32_t count_cuda_devices(tsr_runtime_t *rt)
{
    uint32_t n = 0;
    for (uint32_t d = 0; d < tsr_runtime_n_devices(rt); d++) {
        tsr_device_info_t info;
        if (tsr_runtime_device_info(rt, d, &info) == TSR_OK && info.kind == TSR_DEVICE_CUDA) {
            n++;
        }
    }
    return n;
}

/* Register the vectors chunk by chunk. The program keeps ownership of x and y,
 * and must not touch them while tasks may use them (until acquire/unregister). */
bool register_chunks(Run *run)
{
    for (size_t off = 0; off < run->opts.n; off += run->opts.chunk) {
        size_t len = run->opts.n - off < run->opts.chunk ? run->opts.n - off : run->opts.chunk;
        tsr_data_t *hx = nullptr, *hy = nullptr;
        if (tsr_data_register(run->rt, &run->x[off], len * sizeof(float), &hx) != TSR_OK ||
            tsr_data_register(run->rt, &run->y[off], len * sizeof(float), &hy) != TSR_OK) {
            std::fprintf(stderr, "tessera-saxpy: register: %s\n", tsr_last_error());
            tsr_data_unregister(hx);
            return false;
        }
        run->hx.push_back(hx);
        run->hy.push_back(hy);
    }
    return true;
}

/* reps x n_chunks tasks. Each repetition of a chunk reads and writes that chunk
 * of y, so Tessera runs the repetitions of one chunk in order, while different
 * chunks are independent and may run at the same time on different devices. */
bool submit_tasks(Run *run)
{
    saxpy_arg arg = {run->opts.a, run->tasks_per_device};
    tsr_task_desc_t desc = TSR_TASK_DESC_INIT;
    desc.codelet = &kSaxpy;
    desc.n_handles = 2;
    desc.arg = &arg;
    desc.arg_size = sizeof(arg);
    if (run->opts.where != Where::kAuto) {
        desc.pin = TSR_PIN_KIND;
        desc.pin_value = run->opts.where == Where::kCpu ? TSR_DEVICE_CPU : TSR_DEVICE_CUDA;
    }
    for (int r = 0; r < run->opts.reps; r++) {
        for (size_t c = 0; c < run->hx.size(); c++) {
            tsr_data_t *handles[2] = {run->hx[c], run->hy[c]};
            desc.handles = handles;
            tsr_status_t st = tsr_task_submit(run->rt, &desc, nullptr);
            if (st != TSR_OK) {
                std::fprintf(stderr, "tessera-saxpy: submit: %s: %s\n", tsr_status_str(st),
                             tsr_last_error());
                return false;
            }
        }
    }
    return true;
}

/* Compare chunk `c` of the result (acquired, so on the host and current) with
 * y0 + a * x applied reps times, in double precision. Each float step rounds
 * twice (or once with a fused multiply-add on the GPU), so the float result may
 * differ from the exact one by at most about reps * eps * (reps |a x| + |y0|). */
bool check_chunk(const Run *run, size_t first, const float *y, size_t len, double *worst)
{
    const Options &o = run->opts;
    for (size_t i = 0; i < len; i++) {
        double x = input_value(o.seed, 2 * (first + i));
        double y0 = input_value(o.seed, 2 * (first + i) + 1);
        double ref = y0;
        for (int r = 0; r < o.reps; r++) {
            ref = (double)o.a * x + ref;
        }
        double tol = FLT_EPSILON * o.reps * (o.reps * std::fabs(o.a * x) + std::fabs(y0)) + FLT_MIN;
        double ratio = std::fabs((double)y[i] - ref) / tol;
        if (!(ratio <= 1.0)) {
            std::fprintf(stderr, "tessera-saxpy: y[%zu] = %.9g, expected %.9g\n", first + i,
                         (double)y[i], ref);
            return false;
        }
        *worst = ratio > *worst ? ratio : *worst;
    }
    return true;
}

/* tsr_data_acquire(R) waits for the last task writing the chunk and brings its
 * latest version to the host buffer registered for it. */
bool acquire_and_check(Run *run)
{
    double worst = 0;
    bool ok = true;
    for (size_t c = 0; c < run->hy.size() && ok; c++) {
        void *ptr = nullptr;
        size_t n_bytes = 0;
        double t0 = now_s();
        tsr_status_t st = tsr_data_acquire(run->hy[c], TSR_R, &ptr, &n_bytes);
        run->acquire_s += now_s() - t0;
        if (st != TSR_OK) {
            std::fprintf(stderr, "tessera-saxpy: acquire: %s: %s\n", tsr_status_str(st),
                         tsr_last_error());
            return false;
        }
        ok = check_chunk(run, c * run->opts.chunk, static_cast<const float *>(ptr),
                         n_bytes / sizeof(float), &worst);
        tsr_data_release(run->hy[c]);
    }
    std::printf("check: %s (largest error %.2f of its bound)\n", ok ? "ok" : "MISMATCH", worst);
    return ok;
}

void report(Run *run)
{
    std::printf("devices used:\n");
    for (uint32_t d = 0; d < tsr_runtime_n_devices(run->rt) && d < kMaxDevices; d++) {
        tsr_device_info_t info;
        if (tsr_runtime_device_info(run->rt, d, &info) != TSR_OK) {
            continue;
        }
        std::printf("  %-6s %8llu tasks\n", info.name,
                    (unsigned long long)run->tasks_per_device[d].load());
        tsr_copy_stats_t in = {0, 0}, out = {0, 0};
        if (info.mem_node != 0 &&
            tsr_runtime_copy_stats(run->rt, 0, info.mem_node, &in) == TSR_OK &&
            tsr_runtime_copy_stats(run->rt, info.mem_node, 0, &out) == TSR_OK) {
            std::printf("         copies host->%s: %llu (%.1f MiB), %s->host: %llu (%.1f MiB)\n",
                        info.name, (unsigned long long)in.n_copies, (double)in.n_bytes / 1048576.0,
                        info.name, (unsigned long long)out.n_copies,
                        (double)out.n_bytes / 1048576.0);
        }
    }
    double bytes = 3.0 * sizeof(float) * (double)run->opts.n * run->opts.reps;
    std::printf(
        "time: %.3f ms to run the tasks (%.1f GB/s of saxpy traffic), %.3f ms to "
        "acquire the result\n",
        run->compute_s * 1e3, bytes / run->compute_s / 1e9, run->acquire_s * 1e3);
}

bool run_saxpy(Run *run)
{
    run->x.resize(run->opts.n);
    run->y.resize(run->opts.n);
    for (size_t i = 0; i < run->opts.n; i++) {
        run->x[i] = input_value(run->opts.seed, 2 * i);
        run->y[i] = input_value(run->opts.seed, 2 * i + 1);
    }
    if (!register_chunks(run)) {
        return false;
    }
    double t0 = now_s();
    if (!submit_tasks(run)) {
        return false;
    }
    /* Every task has completed once this returns; the results may still sit in
     * GPU memory, which is what the acquires below take care of. */
    tsr_wait_all(run->rt);
    run->compute_s = now_s() - t0;
    tsr_runtime_stats_t stats = TSR_RUNTIME_STATS_INIT;
    tsr_runtime_stats(run->rt, &stats);
    if (stats.n_failed != 0 || stats.n_cancelled != 0) {
        std::fprintf(stderr, "tessera-saxpy: %llu tasks failed, %llu cancelled\n",
                     (unsigned long long)stats.n_failed, (unsigned long long)stats.n_cancelled);
    }
    bool ok = acquire_and_check(run);
    report(run);
    return ok && stats.n_failed == 0;
}

}  // namespace

int main(int argc, char **argv)
{
    Run run;
    int early = parse_args(argc, argv, &run.opts);
    if (early >= 0) {
        return early;
    }
    /* Defaults, overridable through TESSERA_* environment variables. CUDA devices
     * are found here; there are none without a GPU or driver, which is not an
     * error. */
    tsr_config_t config = TSR_CONFIG_INIT;
    tsr_status_t st = tsr_init(&config, &run.rt);
    if (st != TSR_OK) {
        std::fprintf(stderr, "tessera-saxpy: tsr_init: %s: %s\n", tsr_status_str(st),
                     tsr_last_error());
        return kExitFail;
    }
    uint32_t n_cuda = count_cuda_devices(run.rt);
    std::printf(
        "tessera %s: %u device(s), %u CUDA; n = %zu floats in chunks of %zu, %d reps, "
        "device %s\n",
        tsr_version(), tsr_runtime_n_devices(run.rt), n_cuda, run.opts.n, run.opts.chunk,
        run.opts.reps, kWhereNames[(int)run.opts.where]);
    if (run.opts.where == Where::kCuda && n_cuda == 0) {
        std::printf("SKIP: --device cuda, but there is no CUDA device\n");
        tsr_shutdown(run.rt);
        return kExitSkip;
    }
    bool ok = run_saxpy(&run);
    /* Unregistering leaves the latest contents in the program's own buffers. */
    for (size_t c = 0; c < run.hx.size(); c++) {
        tsr_data_unregister(run.hx[c]);
        tsr_data_unregister(run.hy[c]);
    }
    tsr_shutdown(run.rt);
    std::printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? kExitPass : kExitFail;
}
