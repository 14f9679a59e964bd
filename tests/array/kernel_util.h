// Shared by the tests of the CPU array kernels (kernel_test.cc,
// kernel_float_test.cc): byte buffers, fused programs built by hand
// (kernels/kernel_args.h), running one directly or through a task, and the
// fixture that prints and replays the seed (TSR_TEST_SEED).
#ifndef TSR_TESTS_ARRAY_KERNEL_UTIL_H
#define TSR_TESTS_ARRAY_KERNEL_UTIL_H

#include <gtest/gtest.h>
#include <tessera.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../kernels/impl.h"
#include "../../kernels/kernel_args.h"
#include "common/ew_blob.h"
#include "common/test_util.h"

namespace tsr_kernel_test {

using Bytes = std::vector<unsigned char>;

template <class T>
Bytes ToBytes(const std::vector<T> &v)
{
    Bytes b(v.size() * sizeof(T));
    if (!v.empty()) {
        std::memcpy(b.data(), v.data(), b.size());
    }
    return b;
}

template <class T>
std::vector<T> FromBytes(const Bytes &b)
{
    std::vector<T> v(b.size() / sizeof(T));
    if (!v.empty()) {
        std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
    }
    return v;
}

// ---- hand-built fused programs ---------------------------------------------------------

struct Program {
    tsr_ew_header_t h;
    std::vector<tsr_ew_leaf_t> leaves;
    std::vector<tsr_ew_instr_t> code;

    explicit Program(std::vector<int64_t> shape)
    {
        std::memset(&h, 0, sizeof(h));
        h.magic = TSR_EW_MAGIC;
        h.ndim = (uint32_t)shape.size();
        for (size_t d = 0; d < shape.size(); d++) {
            h.shape[d] = shape[d];
        }
    }
    // A leaf with C-order unit strides over the chunk's shape.
    int Leaf(int kind, int type, int buf = 0)
    {
        tsr_ew_leaf_t lf;
        std::memset(&lf, 0, sizeof(lf));
        lf.kind = kind;
        lf.type = type;
        lf.buf = buf;
        int64_t s = 1;
        for (int d = (int)h.ndim - 1; d >= 0; d--) {
            lf.stride[d] = s;
            s *= h.shape[d];
        }
        leaves.push_back(lf);
        return (int)leaves.size() - 1;
    }
    int Op(int op, int type, int a = -1, int b = -1, int c = -1, int aux = 0)
    {
        code.push_back(tsr_test::EwInstr(op, type, a, b, c, aux));
        return (int)code.size() - 1;
    }
    int Load(int leaf) { return Op(TSR_EW_LOAD, leaves[(size_t)leaf].type, -1, -1, -1, leaf); }
    int64_t Elems() const
    {
        int64_t n = 1;
        for (uint32_t d = 0; d < h.ndim; d++) {
            n *= h.shape[d];
        }
        return n;
    }
    // Finish the header: output buffer `out_buf` of `out_bytes`.
    Bytes Blob(uint32_t out_buf, uint64_t out_bytes)
    {
        h.n_leaves = (uint32_t)leaves.size();
        h.n_instr = (uint32_t)code.size();
        h.out_buf = out_buf;
        h.out_bytes = out_bytes;
        return tsr_test::EwBlob(h, leaves, code);
    }
};

// Buffers 0..n-1 are `inputs`, buffer n the output (`out`, already of its size);
// the rest are empty, as every slot of a task's buffer array beyond its handles
// should be.
inline std::vector<tsr_buffer_t> Buffers(std::vector<Bytes> &inputs, Bytes *out)
{
    std::vector<tsr_buffer_t> bufs(TSR_MAX_BUFFERS, tsr_buffer_t{nullptr, 0});
    for (size_t i = 0; i < inputs.size(); i++) {
        bufs[i] = tsr_buffer_t{inputs[i].data(), inputs[i].size()};
    }
    if (out != nullptr) {
        bufs[inputs.size()] = tsr_buffer_t{out->data(), out->size()};
    }
    return bufs;
}

// Run `p` directly with its output after the inputs; the output is `out_bytes`
// long unless the program says otherwise.
inline tsr_status_t RunEw(Program &p, std::vector<Bytes> inputs, Bytes *out, uint64_t out_bytes)
{
    Bytes blob = p.Blob((uint32_t)inputs.size(), out_bytes);
    out->assign((size_t)out_bytes, 0xAB);
    std::vector<tsr_buffer_t> bufs = Buffers(inputs, out);
    return tsr__ew_cpu(nullptr, bufs.data(), blob.data());
}

// A blob through a task on the CPU: its status and message.
struct TaskOutcome {
    tsr_status_t status;
    std::string message;
};

inline TaskOutcome RunTask(const tsr_codelet_t *codelet, const Bytes &blob,
                           std::vector<Bytes> inputs)
{
    tsr_test::Runtime rt = tsr_test::StartRuntime(tsr_test::TestConfig(1, TSR_SCHED_EAGER));
    std::vector<tsr_test::Data> handles;
    tsr_test::Task task(codelet);
    for (Bytes &b : inputs) {
        handles.push_back(tsr_test::Register(rt.get(), b.data(), b.size()));
        task.Use(handles.back().get(), TSR_R);
    }
    tsr_test::Data out = tsr_test::CreateData(rt.get());
    task.Use(out.get(), TSR_W);
    task.ArgBytes(blob.data(), blob.size());
    tsr_test::Future f = task.Run(rt.get());
    if (!f) {
        return {TSR_EINVAL, "not submitted"};
    }
    TaskOutcome o{tsr_future_wait(f.get()), ""};
    const char *msg = tsr_future_message(f.get());
    o.message = msg != nullptr ? msg : "";
    return o;
}

class KernelTest : public testing::Test {
protected:
    void SetUp() override
    {
        seed_ = tsr_test::TestSeed();
        std::printf("[   SEED   ] %s\n", tsr_test::SeedTrace(seed_).c_str());
        rng_.seed(seed_);
    }
    uint64_t seed_ = 0;
    std::mt19937_64 rng_;
};

// (count, mean, M2) of values, two-pass in float64.
inline void Moments(const double *v, int64_t n, double *m)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        s += v[i];
    }
    m[0] = (double)n;
    m[1] = n > 0 ? s / (double)n : 0;
    m[2] = 0;
    for (int64_t i = 0; i < n; i++) {
        m[2] += (v[i] - m[1]) * (v[i] - m[1]);
    }
}

}  // namespace tsr_kernel_test

#endif  // TSR_TESTS_ARRAY_KERNEL_UTIL_H
