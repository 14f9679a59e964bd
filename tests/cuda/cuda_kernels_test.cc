/* The CUDA array kernels (kernels/cuda/) on a GPU against the CPU ones, through
 * tasks pinned to each device kind: random fused programs (ew_random_program.h)
 * with and without reductions, generators, the combine kernel across devices
 * (partials made on one, combined on the other), matrix products, copies, and
 * malformed arguments failing cleanly. A last test prints the bandwidth of a
 * float32 chain and sum over 2e8 elements beside a device-to-device copy (it
 * asserts nothing about time).
 *
 * Exactness: elementwise programs without transcendental functions must match
 * bit for bit (IEEE +, -, *, /, sqrt, no FMA contraction on either side); with
 * them, CUDA's libm may differ from glibc's by an ulp or two, which later ops
 * can amplify or turn into a different integer or comparison, so a few elements
 * may differ. Float reductions differ by the order of folding.
 *
 * Every test skips without a CUDA device. The seed is printed; TSR_TEST_SEED
 * replays. */
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/test_util.h"
#include "cuda/array_kernel_check.h"
#include "cuda/ew_random_program.h"

namespace {

using tsr_ew_test::Bytes;
using tsr_ew_test::EwCase;
using tsr_ew_test::GenOptions;
using tsr_ew_test::ProgramGen;
using tsr_ew_test::TaskResult;

class CudaKernels : public tsr_ew_test::KernelTest {
protected:
    void SetUp() override
    {
        rt_ = tsr_test::StartRuntime(tsr_test::TestConfig(2, TSR_SCHED_DEFAULT));
        ASSERT_TRUE(rt_);
        bool gpu = false;
        for (uint32_t d = 0; d < tsr_runtime_n_devices(rt_.get()); d++) {
            tsr_device_info_t info;
            ASSERT_EQ(tsr_runtime_device_info(rt_.get(), d, &info), TSR_OK);
            if (info.kind == TSR_DEVICE_CUDA && !gpu) {
                gpu = true;
                gpu_mem_ = info.mem_bytes;
                std::printf("[   GPU    ] %s: %s\n", info.name, info.model);
            }
        }
        if (!gpu) {
            GTEST_SKIP() << "no CUDA device (no GPU, or no NVIDIA driver)";
        }
        Seed();
    }

    /* A random product of `type`: sizes with partial tiles, strides longer than a
     * row, offsets, accumulate on or off. */
    tsr_gemm_arg_t RandomGemm(int32_t type)
    {
        tsr_gemm_arg_t g;
        std::memset(&g, 0, sizeof(g));
        g.type = type;
        g.m = 1 + (int64_t)(rng_() % 300);
        g.n = 1 + (int64_t)(rng_() % 300);
        g.k = 1 + (int64_t)(rng_() % 300);
        g.lda = g.k + (int64_t)(rng_() % 3);
        g.ldb = g.n + (int64_t)(rng_() % 3);
        g.off_a = (int64_t)(rng_() % 5);
        g.off_b = (int64_t)(rng_() % 5);
        g.beta = (int32_t)(rng_() % 2);
        return g;
    }

    /* Product g on the GPU and on the CPU, of operands and initial C made by
     * fill(n elements); both must succeed. Returns {gpu, cpu}. */
    template <class Fill>
    std::pair<TaskResult, TaskResult> RunGemmBoth(const tsr_gemm_arg_t &g, Fill fill)
    {
        std::vector<Bytes> in = {fill((size_t)(g.off_a + (g.m - 1) * g.lda + g.k)),
                                 fill((size_t)(g.off_b + (g.k - 1) * g.ldb + g.n))};
        Bytes c0 = fill((size_t)(g.m * g.n));
        Bytes arg = tsr_ew_test::BytesOf(g);
        TaskResult gr = Run(&tsr__gemm_codelet, arg, in, TSR_DEVICE_CUDA, g.beta ? &c0 : nullptr);
        TaskResult cr = Run(&tsr__gemm_codelet, arg, in, TSR_DEVICE_CPU, g.beta ? &c0 : nullptr);
        EXPECT_EQ(gr.status, TSR_OK) << gr.message;
        EXPECT_EQ(cr.status, TSR_OK) << cr.message;
        EXPECT_EQ(gr.out.size(), cr.out.size());
        return {gr, cr};
    }

    std::vector<double> CpuScale(const EwCase &c, bool square)
    {
        EwCase s = tsr_ew_test::ScaleCase(c, square);
        TaskResult r = Run(&tsr__ew_codelet, s.Blob(), s.inputs, TSR_DEVICE_CPU);
        std::vector<double> out((size_t)s.OutElems(), 0.0);
        if (r.status == TSR_OK && r.out.size() == out.size() * 8) {
            std::memcpy(out.data(), r.out.data(), r.out.size());
        }
        return out;
    }

    /* GPU against CPU for a case: exact, or for reductions within the order of
     * folding. */
    std::string Check(const EwCase &c)
    {
        TaskResult g = Run(&tsr__ew_codelet, c.Blob(), c.inputs, TSR_DEVICE_CUDA);
        if (g.status != TSR_OK) {
            return "the CUDA kernel failed: " + g.message;
        }
        return CompareWithCpu(c, g.out, [&](bool square) { return CpuScale(c, square); });
    }

    uint64_t gpu_mem_ = 0;
};

TEST_F(CudaKernels, ProgramsWithoutTranscendentalsMatchExactly)
{
    for (size_t i = 0; i < tsr_test::Scaled(400, 40); i++) {
        GenOptions opt;
        opt.transcendental = false;
        ProgramGen gen(rng_, opt);
        EwCase c = gen.Make();
        ASSERT_EQ(Check(c), "") << "case " << i << "\n" << c.text;
    }
}

TEST_F(CudaKernels, EveryReductionMatches)
{
    for (int red = TSR_RED_SUM; red <= TSR_RED_ARGMAX; red++) {
        for (size_t i = 0; i < tsr_test::Scaled(40, 8); i++) {
            GenOptions opt;
            opt.transcendental = false;
            opt.red_op = red;
            opt.max_elems = 200000;
            ProgramGen gen(rng_, opt);
            EwCase c = gen.Make();
            ASSERT_EQ(Check(c), "") << "reduction " << red << " case " << i << "\n" << c.text;
        }
    }
}

/* With transcendental functions: float results within a relative 1e-4 (float32)
 * or 1e-10 (float64), and no more than 2% of the elements of any output off by
 * more (ulps amplified by later ops, or turned into other integers). */
TEST_F(CudaKernels, ProgramsWithTranscendentalsAreClose)
{
    size_t n_off = 0, n_total = 0;
    for (size_t i = 0; i < tsr_test::Scaled(200, 20); i++) {
        GenOptions opt;
        opt.red_op = TSR_RED_NONE;
        ProgramGen gen(rng_, opt);
        EwCase c = gen.Make();
        TaskResult g = Run(&tsr__ew_codelet, c.Blob(), c.inputs, TSR_DEVICE_CUDA);
        TaskResult r = Run(&tsr__ew_codelet, c.Blob(), c.inputs, TSR_DEVICE_CPU);
        ASSERT_EQ(g.status, TSR_OK) << g.message;
        ASSERT_EQ(r.status, TSR_OK) << r.message;
        ASSERT_EQ(g.out.size(), r.out.size());
        const int vt = c.vtype();
        const size_t es = (size_t)tsr_ew::dtype_bytes(vt);
        const double rel = vt == TSR_FLOAT32 ? 1e-4 : 1e-10;
        size_t off = 0;
        for (size_t e = 0; e < r.out.size() / es; e++) {
            const unsigned char *x = r.out.data() + e * es;
            const unsigned char *y = g.out.data() + e * es;
            bool ok =
                tsr_ew_test::SameValue(vt, x, y) ||
                (vt >= TSR_FLOAT32 && tsr_ew_test::Close(tsr_ew_test::AsDouble(vt, x),
                                                         tsr_ew_test::AsDouble(vt, y), rel, 1e-30));
            off += !ok;
        }
        EXPECT_LE(off * 50, r.out.size() / es) << "case " << i << "\n" << c.text;
        n_off += off;
        n_total += r.out.size() / es;
    }
    std::printf("  %zu of %zu elements beyond the tolerance\n", n_off, n_total);
}

/* Every generator bit for bit, NORMAL too (its log and cos are ew_vmath.h's on
 * both sides). */
TEST_F(CudaKernels, GeneratorsMatchTheCpu)
{
    for (int kind = TSR_LEAF_ARANGE; kind <= TSR_LEAF_NORMAL; kind++) {
        for (int type = 0; type < TSR_N_DTYPES; type++) {
            tsr_ew_leaf_t lf = tsr_ew_test::GeneratorLeaf(rng_, kind, type);
            lf.stride[0] = 97;
            lf.stride[1] = 1;
            lf.seed = rng_();
            EwCase c = tsr_ew_test::LoadCase(lf, {301, 97});
            TaskResult g = Run(&tsr__ew_codelet, c.Blob(), c.inputs, TSR_DEVICE_CUDA);
            TaskResult r = Run(&tsr__ew_codelet, c.Blob(), c.inputs, TSR_DEVICE_CPU);
            ASSERT_EQ(g.status, TSR_OK) << g.message;
            ASSERT_EQ(r.status, TSR_OK) << r.message;
            EXPECT_EQ(tsr_ew_test::DiffArrays(type, r.out, g.out), "")
                << "generator " << kind << " type " << type;
        }
    }
}

/* Random partials of `red` over `vtype`, valid as the kernels make them. */
Bytes RandomPartials(std::mt19937_64 &rng, int red, int vtype, int64_t n)
{
    const int at = tsr_red_acc_type((tsr_red_op_t)red, (tsr_dtype_t)vtype);
    const int asz = tsr_ew::acc_bytes(red, at);
    Bytes b((size_t)(n * asz), 0);
    for (int64_t k = 0; k < n; k++) {
        tsr_ew::ew_acc a = {{0, 0, 0}};
        uint64_t r = rng();
        double v = r % 9 == 0 ? NAN : (double)(int64_t)(r >> 20) * 1e-6;
        if (red == TSR_RED_MOMENTS) {
            a.w[0] = tsr_ew::raw_put((double)(rng() % 6));
            a.w[1] = tsr_ew::raw_put(v);
            a.w[2] = tsr_ew::raw_put(std::fabs(v) * 3);
        } else {
            a.w[0] = at >= TSR_FLOAT32 ? tsr_ew::cast_rt(TSR_FLOAT64, at, tsr_ew::raw_put(v))
                                       : tsr_ew::cast_rt(TSR_INT64, at, r % 3 ? r % 200 : r);
            a.w[1] = rng() % 50;
        }
        tsr_ew::acc_store(red, at, reinterpret_cast<char *>(b.data() + k * asz), a);
    }
    return b;
}

/* The combine kernel on both devices: the same merges in the same order, so the
 * same bits. */
TEST_F(CudaKernels, CombineMatchesTheCpu)
{
    for (size_t i = 0; i < tsr_test::Scaled(200, 20); i++) {
        int vtype = 0;
        tsr_red_combine_arg_t a = tsr_ew_test::RandomCombineArg(rng_, 5000, &vtype);
        const bool arg = a.red_op == TSR_RED_ARGMIN || a.red_op == TSR_RED_ARGMAX;
        a.out_type = arg ? TSR_INT64 : (int32_t)(rng_() % TSR_N_DTYPES);
        std::vector<Bytes> ins;
        for (uint32_t k = 0; k < a.n_in; k++) {
            ins.push_back(RandomPartials(rng_, a.red_op, vtype, (int64_t)a.n_elems));
        }
        Bytes arg_bytes = tsr_ew_test::BytesOf(a);
        TaskResult g = Run(&tsr__red_combine_codelet, arg_bytes, ins, TSR_DEVICE_CUDA);
        ASSERT_EQ(g.status, TSR_OK) << g.message;
        TaskResult r = Run(&tsr__red_combine_codelet, arg_bytes, ins, TSR_DEVICE_CPU);
        ASSERT_EQ(r.status, TSR_OK) << r.message;
        if (a.final || (!arg && a.red_op != TSR_RED_MOMENTS)) {
            const int type = a.final ? a.out_type : a.acc_type;
            EXPECT_EQ(tsr_ew_test::DiffArrays(type, r.out, g.out), "")
                << "combine " << a.red_op << " final " << a.final;
        } else {
            EXPECT_EQ(tsr_ew_test::DiffArrays(TSR_FLOAT64, r.out, g.out), "")
                << "combine " << a.red_op << " (as doubles)";
        }
    }
}

/* A reduction's partials made on one device and combined on the other give what
 * the CPU alone gives. */
TEST_F(CudaKernels, PartialsCrossDevices)
{
    for (size_t i = 0; i < tsr_test::Scaled(60, 10); i++) {
        GenOptions opt;
        opt.transcendental = false;
        opt.red_op = TSR_RED_SUM + (int)(rng_() % 7);
        ProgramGen gen(rng_, opt);
        EwCase c = gen.Make();
        TaskResult pg = Run(&tsr__ew_codelet, c.Blob(), c.inputs, TSR_DEVICE_CUDA);
        TaskResult pc = Run(&tsr__ew_codelet, c.Blob(), c.inputs, TSR_DEVICE_CPU);
        ASSERT_EQ(pg.status, TSR_OK) << pg.message;
        ASSERT_EQ(pc.status, TSR_OK) << pc.message;
        tsr_red_combine_arg_t a;
        std::memset(&a, 0, sizeof(a));
        a.red_op = c.h.red_op;
        a.acc_type = tsr_red_acc_type((tsr_red_op_t)a.red_op, (tsr_dtype_t)c.vtype());
        a.n_in = 2;
        a.n_elems = (uint64_t)c.OutElems();
        Bytes arg_bytes = tsr_ew_test::BytesOf(a);
        std::vector<Bytes> gc = {pg.out, pc.out};
        std::vector<Bytes> cc = {pc.out, pc.out};
        TaskResult on_cpu = Run(&tsr__red_combine_codelet, arg_bytes, gc, TSR_DEVICE_CPU);
        TaskResult on_gpu = Run(&tsr__red_combine_codelet, arg_bytes, gc, TSR_DEVICE_CUDA);
        TaskResult ref = Run(&tsr__red_combine_codelet, arg_bytes, cc, TSR_DEVICE_CPU);
        ASSERT_EQ(on_cpu.status, TSR_OK) << on_cpu.message;
        ASSERT_EQ(on_gpu.status, TSR_OK) << on_gpu.message;
        ASSERT_EQ(ref.status, TSR_OK) << ref.message;
        /* Two copies of the partial combined: sums and moments twice the data. */
        EXPECT_EQ(on_cpu.out, on_gpu.out) << c.text;
        EwCase twice = c;
        const bool scaled = tsr_ew_test::NeedsScales(c);
        std::vector<double> s1 = scaled ? CpuScale(c, false) : std::vector<double>();
        std::vector<double> s2 = scaled ? CpuScale(c, true) : std::vector<double>();
        for (double &s : s1) {
            s *= 2;
        }
        for (double &s : s2) {
            s *= 2;
        }
        EXPECT_EQ(tsr_ew_test::CompareReduced(twice, ref.out, on_gpu.out, s1, s2), "") << c.text;
    }
}

TEST_F(CudaKernels, MatmulMatchesTheCpu)
{
    for (size_t i = 0; i < tsr_test::Scaled(30, 6); i++) {
        const tsr_gemm_arg_t g = RandomGemm(rng_() % 2 ? TSR_FLOAT32 : TSR_FLOAT64);
        const size_t es = g.type == TSR_FLOAT32 ? 4 : 8;
        auto fill = [&](size_t n) {
            Bytes b(n * es);
            for (size_t e = 0; e < n; e++) {
                double v = (double)(rng_() % 2001) / 1000.0 - 1.0;
                if (es == 4) {
                    float f = (float)v;
                    std::memcpy(b.data() + e * 4, &f, 4);
                } else {
                    std::memcpy(b.data() + e * 8, &v, 8);
                }
            }
            return b;
        };
        auto [gr, cr] = RunGemmBoth(g, fill);
        ASSERT_FALSE(HasFailure());
        const double tol = (g.type == TSR_FLOAT32 ? 1e-5 : 1e-13) * (double)g.k;
        for (size_t e = 0; e < cr.out.size() / es; e++) {
            double x = tsr_ew_test::AsDouble(g.type, cr.out.data() + e * es);
            double y = tsr_ew_test::AsDouble(g.type, gr.out.data() + e * es);
            ASSERT_NEAR(x, y, tol) << "element " << e << " of " << g.m << "x" << g.n << "x" << g.k
                                   << " beta " << g.beta;
        }
    }
}

/* Integer and bool products (the kernel of gemm_int.cuh) against the CPU kernel,
 * which tests/cuda/gemm_emulation_test.cc checks against a brute-force
 * reference: bit for bit, with full-range values (sums that wrap), partial
 * tiles, strides, offsets and beta, and bool bytes other than 0 and 1. */
TEST_F(CudaKernels, IntegerMatmulMatchesTheCpuExactly)
{
    const int32_t types[] = {TSR_BOOL, TSR_UINT8, TSR_UINT16, TSR_INT32, TSR_INT64};
    for (size_t i = 0; i < tsr_test::Scaled(50, 10); i++) {
        const tsr_gemm_arg_t g = RandomGemm(types[i % 5]);
        const size_t es = tsr_dtype_size((tsr_dtype_t)g.type);
        auto fill = [&](size_t n) {
            Bytes b(n * es);
            for (unsigned char &x : b) {
                x = (unsigned char)(g.type == TSR_BOOL ? (rng_() % 3 == 0 ? 0 : rng_() % 4)
                                                       : rng_());
            }
            return b;
        };
        auto [gr, cr] = RunGemmBoth(g, fill);
        ASSERT_FALSE(HasFailure());
        for (size_t e = 0; e < cr.out.size(); e++) {
            ASSERT_EQ(gr.out[e], cr.out[e])
                << "byte " << e << " of " << tsr_dtype_name((tsr_dtype_t)g.type) << " " << g.m
                << "x" << g.n << "x" << g.k << " beta " << g.beta;
        }
    }
}

TEST_F(CudaKernels, CopyMatchesTheCpu)
{
    for (size_t it = 0; it < tsr_test::Scaled(100, 10); it++) {
        tsr_copy_header_t h = tsr_ew_test::RandomCopyHeader(rng_, 40);
        h.alloc = 0; /* RW: every element compared */
        h.n_pieces = 1 + (uint32_t)(rng_() % 6);
        std::vector<Bytes> srcs;
        std::vector<tsr_copy_piece_t> pieces = tsr_ew_test::RandomPieces(rng_, &h, &srcs, false);
        Bytes arg = tsr_ew_test::CopyArg(h, pieces);
        Bytes init = tsr_ew_test::RandomBytes(rng_, h.out_bytes);
        TaskResult g = Run(&tsr__copy_codelet, arg, srcs, TSR_DEVICE_CUDA, &init);
        TaskResult r = Run(&tsr__copy_codelet, arg, srcs, TSR_DEVICE_CPU, &init);
        ASSERT_EQ(g.status, TSR_OK) << g.message;
        ASSERT_EQ(r.status, TSR_OK) << r.message;
        EXPECT_EQ(g.out, r.out) << "copy " << it;
    }
}

/* Malformed arguments fail the task with TSR_EINVAL and a message, and leave the
 * device usable. */
TEST_F(CudaKernels, MalformedArgumentsFailCleanly)
{
    GenOptions opt;
    opt.red_op = TSR_RED_NONE;
    EwCase c;
    do {
        ProgramGen gen(rng_, opt);
        c = gen.Make();
    } while (c.inputs.empty());
    for (tsr_ew_leaf_t &lf : c.leaves) {
        if (lf.kind == TSR_LEAF_BUFFER) {
            lf.offset += (int64_t)c.inputs[(size_t)lf.buf].size();
            break;
        }
    }
    TaskResult g = Run(&tsr__ew_codelet, c.Blob(), c.inputs, TSR_DEVICE_CUDA);
    EXPECT_EQ(g.status, TSR_EINVAL);
    EXPECT_NE(g.message.find("outside"), std::string::npos) << g.message;

    tsr_gemm_arg_t gm;
    std::memset(&gm, 0, sizeof(gm));
    gm.type = TSR_FLOAT32;
    gm.m = gm.n = gm.k = gm.lda = gm.ldb = 4;
    std::vector<Bytes> short_in = {Bytes(60), Bytes(64)};
    Bytes garg = tsr_ew_test::BytesOf(gm);
    EXPECT_EQ(Run(&tsr__gemm_codelet, garg, short_in, TSR_DEVICE_CUDA).status, TSR_EINVAL);

    tsr_red_combine_arg_t ca;
    std::memset(&ca, 0, sizeof(ca));
    ca.red_op = TSR_RED_SUM;
    ca.acc_type = TSR_FLOAT64;
    ca.n_in = 1;
    ca.n_elems = 10;
    Bytes carg = tsr_ew_test::BytesOf(ca);
    std::vector<Bytes> short_partial = {Bytes(72)};
    EXPECT_EQ(Run(&tsr__red_combine_codelet, carg, short_partial, TSR_DEVICE_CUDA).status,
              TSR_EINVAL);

    /* Still working. */
    ProgramGen gen(rng_, opt);
    EwCase ok = gen.Make();
    EXPECT_EQ(Check(ok), "");
}

/* ---- bandwidth ---------------------------------------------------------------------- */

/* Seconds of the fastest of `runs` calls of fn. */
template <class Fn>
double Fastest(int runs, Fn fn)
{
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        auto t0 = std::chrono::steady_clock::now();
        fn();
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

/* One task over x (2e8 float32, resident on the GPU after a first run): the
 * chain sqrt(abs(x * 1.5 + 0.5)) * x - 2 and the sum, against a device-to-device
 * copy of the same bytes. Reports only. */
TEST_F(CudaKernels, ReportsBandwidth)
{
    const int64_t n = 200000000;
    const size_t bytes = (size_t)n * 4;
    if (gpu_mem_ < 4 * bytes) {
        GTEST_SKIP() << "needs " << 4 * bytes << " bytes of GPU memory";
    }
    std::vector<float> x((size_t)n, 0.5f);
    tsr_test::Data hx = tsr_test::Register(rt_.get(), x.data(), bytes);

    EwCase c = tsr_ew_test::ChainCase(n);
    Bytes chain = c.Blob();
    c.h.red_op = TSR_RED_SUM;
    c.h.red_mask = 1;
    c.h.n_instr = 1;
    c.code.resize(1);
    c.h.out_bytes = 8;
    Bytes sum = c.Blob();

    auto run = [&](const Bytes &arg) {
        tsr_test::Data out = tsr_test::CreateData(rt_.get());
        tsr_test::Task task(&tsr__ew_codelet);
        task.Use(hx.get(), TSR_R).Use(out.get(), TSR_W).ArgBytes(arg.data(), arg.size());
        tsr_task_desc_t desc = task.Desc();
        desc.pin = TSR_PIN_KIND;
        desc.pin_value = TSR_DEVICE_CUDA;
        tsr_future_t *f = nullptr;
        ASSERT_EQ(tsr_task_submit(rt_.get(), &desc, &f), TSR_OK);
        tsr_test::Future future(f);
        ASSERT_EQ(tsr_future_wait(f), TSR_OK) << tsr_future_message(f);
    };
    run(chain); /* x moves to the GPU */
    double t_chain = Fastest(5, [&] { run(chain); });
    double t_sum = Fastest(5, [&] { run(sum); });

    void *d_a = nullptr, *d_b = nullptr;
    ASSERT_EQ(cudaMalloc(&d_a, bytes), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&d_b, bytes), cudaSuccess);
    double t_copy = Fastest(5, [&] {
        cudaMemcpy(d_b, d_a, bytes, cudaMemcpyDeviceToDevice);
        cudaDeviceSynchronize();
    });
    cudaFree(d_a);
    cudaFree(d_b);
    const double copy_bw = 2.0 * (double)bytes / t_copy / 1e9;
    std::printf("  device-to-device copy: %.0f GB/s (read + write)\n", copy_bw);
    std::printf("  chain (task, 2e8 float32): %.3f ms, %.0f GB/s, %.0f%% of the copy\n",
                t_chain * 1e3, 2.0 * (double)bytes / t_chain / 1e9,
                100.0 * 2.0 * (double)bytes / t_chain / 1e9 / copy_bw);
    std::printf("  sum (task, 2e8 float32): %.3f ms, %.0f GB/s, %.0f%% of the copy\n", t_sum * 1e3,
                (double)bytes / t_sum / 1e9, 100.0 * (double)bytes / t_sum / 1e9 / copy_bw);
}

}  // namespace
