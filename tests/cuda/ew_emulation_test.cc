/* The CUDA array kernels (kernels/cuda/) emulated on the host, against the CPU
 * kernels. The per-thread work of the kernels is __host__ __device__ code
 * (ew_exec.cuh, copy_exec.cuh, ew_eval.cuh); here a host compiler builds it and
 * runs it in the kernels' order (every thread of every block, team merges level
 * by level, then the merge of splits), for plans made for GPUs of several widths
 * so that every mode, team size and split is exercised. Needs no GPU (label cpu).
 *
 * Random programs (ew_random_program.h) run through tsr__ew_cpu (a task pinned to
 * the CPU) and through the emulation: outputs of elementwise programs must be
 * identical (the host emulation calls the same libm), reductions equal up to the
 * order of float sums and products, exactly for everything else. ARGMIN/ARGMAX
 * partials are checked against a reference folded from the values and indices
 * the CPU kernel computes elementwise (array_kernel_check.h), and against the CPU
 * kernel's own fold. The combine and copy kernels are checked likewise.
 * The seed is printed; TSR_TEST_SEED replays, TSR_TEST_SCALE scales. */
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/ew_blob.h"
#include "common/test_util.h"
#include "cuda/array_kernel_check.h"
#include "cuda/ew_random_program.h"
#include "kernels/cpu/ew_gen.h"
#include "kernels/cuda/copy_exec.cuh"
#include "kernels/cuda/ew_exec.cuh"

namespace {

using tsr_ew::ew_acc;
using tsr_ew::ew_launch;
using tsr_ew::ew_plan;
using tsr_ew_test::Bytes;
using tsr_ew_test::EwCase;
using tsr_ew_test::GenOptions;
using tsr_ew_test::ProgramGen;

const int kWidths[] = {1, 3, 16, 132}; /* multiprocessors of the GPUs planned for */

/* ---- the emulation ---------------------------------------------------------------- */

/* The loops of ew_map_kernel, ew_rinner_kernel, ew_pinner_kernel and
 * ew_merge_kernel, one thread after another, each level of a team's merge tree
 * over all threads before the next (as the barriers order them). */
template <int E, int NS>
void RunPlan(ew_plan &P, const ew_launch &L)
{
    std::vector<ew_acc> scratch(L.scratch_bytes / sizeof(ew_acc));
    P.scratch = scratch.empty() ? nullptr : scratch.data();
    if (P.mode == tsr_ew::EW_MODE_MAP) {
        int64_t ybase[TSR_EW_MAX_LEAVES];
        tsr_ew::leaf_bases(P, nullptr, ybase);
        for (int64_t g = 0; g < (P.n_out + E - 1) / E; g++) {
            tsr_ew::map_group<E, NS>(P, ybase, g);
        }
    } else if (P.mode == tsr_ew::EW_MODE_RINNER) {
        const int per_block = tsr_ew::kThreads / P.team;
        const int64_t items = P.n_out * P.splits;
        std::vector<ew_acc> sh(tsr_ew::kThreads);
        for (int64_t base = 0; base < items; base += per_block) {
            for (int t = 0; t < tsr_ew::kThreads; t++) {
                const int64_t item = base + t / P.team;
                sh[t] = item < items ? tsr_ew::rinner_fold<E, NS>(P, item, t % P.team)
                                     : tsr_ew::acc_init(P.red_op, P.vtype);
            }
            for (int half = P.team / 2; half > 0; half /= 2) {
                for (int t = 0; t < tsr_ew::kThreads; t++) {
                    tsr_ew::team_step(P, P.team, sh.data(), t, half);
                }
            }
            for (int t = 0; t < tsr_ew::kThreads; t += P.team) {
                const int64_t item = base + t / P.team;
                if (item < items) {
                    tsr_ew::write_acc(P, item % P.n_out, item / P.n_out, sh[t]);
                }
            }
        }
    } else {
        const int64_t items = (P.n_out + E - 1) / E * P.splits;
        for (int64_t i = 0; i < items; i++) {
            tsr_ew::pinner_item<E, NS>(P, i);
        }
    }
    if (P.splits > 1) {
        const int per_block = tsr_ew::kThreads / P.merge_team;
        std::vector<ew_acc> sh(tsr_ew::kThreads);
        for (int64_t base = 0; base < P.n_out; base += per_block) {
            for (int t = 0; t < tsr_ew::kThreads; t++) {
                const int64_t p = base + t / P.merge_team;
                sh[t] = p < P.n_out ? tsr_ew::merge_fold(P, p, t % P.merge_team)
                                    : tsr_ew::acc_init(P.red_op, P.vtype);
            }
            for (int half = P.merge_team / 2; half > 0; half /= 2) {
                for (int t = 0; t < tsr_ew::kThreads; t++) {
                    tsr_ew::team_step(P, P.merge_team, sh.data(), t, half);
                }
            }
            for (int t = 0; t < tsr_ew::kThreads; t += P.merge_team) {
                if (base + t / P.merge_team < P.n_out) {
                    tsr_ew::store_partial(P, base + t / P.merge_team, sh[t]);
                }
            }
        }
    }
    P.scratch = nullptr;
}

struct Emulated {
    bool ok = false;
    std::string message;
    Bytes out;
    ew_plan plan;
    ew_launch launch;
};

std::vector<tsr_buffer_t> HostBuffers(const std::vector<Bytes> &inputs)
{
    std::vector<tsr_buffer_t> bufs(TSR_MAX_BUFFERS, tsr_buffer_t{nullptr, 0});
    for (size_t i = 0; i < inputs.size(); i++) {
        bufs[i].ptr = const_cast<unsigned char *>(inputs[i].data());
        bufs[i].n_bytes = inputs[i].size();
    }
    return bufs;
}

Emulated EmulateEw(const EwCase &c, int n_sms)
{
    Emulated e;
    std::vector<tsr_buffer_t> bufs = HostBuffers(c.inputs);
    char msg[200] = "";
    uint64_t need = 0;

    std::memset(&e.plan, 0, sizeof(e.plan));
    std::memset(&e.launch, 0, sizeof(e.launch));
    if (!tsr_ew::ew_check(&c.h, c.leaves.data(), c.code.data(), bufs.data(), &need, msg,
                          sizeof(msg))) {
        e.message = msg;
        return e;
    }
    e.out.assign(c.h.out_bytes, 0);
    tsr_ew::ew_build(&c.h, c.leaves.data(), c.code.data(), bufs.data(),
                     reinterpret_cast<char *>(e.out.data()), n_sms, &e.plan, &e.launch);
    if (e.plan.n_out > 0) {
        if (e.launch.big) {
            RunPlan<1, tsr_ew::kSlotsBig>(e.plan, e.launch);
        } else {
            RunPlan<tsr_ew::kGroup, tsr_ew::kSlots>(e.plan, e.launch);
        }
    }
    e.ok = true;
    return e;
}

/* The scales of a case's float tolerances, from its emulation. */
std::vector<double> EmulatedScale(const EwCase &c, bool square)
{
    EwCase s = tsr_ew_test::ScaleCase(c, square);
    Emulated e = EmulateEw(s, 1);
    std::vector<double> out((size_t)s.OutElems());
    if (e.ok) {
        std::memcpy(out.data(), e.out.data(), out.size() * sizeof(double));
    }
    return out;
}

/* ---- fixture ---------------------------------------------------------------------- */

class Emulation : public tsr_ew_test::KernelTest {
protected:
    void SetUp() override
    {
        rt_ = tsr_test::StartRuntime(tsr_test::TestConfig(2, TSR_SCHED_EAGER));
        ASSERT_TRUE(rt_);
        Seed();
    }

    /* Run one case both ways and compare; returns the failure or "". ARGMIN and
     * ARGMAX partials are also checked against the elementwise reference, which
     * tells a wrong fold from a wrong value. */
    std::string Check(const EwCase &c, int n_sms, Emulated *emu_out = nullptr)
    {
        Emulated e = EmulateEw(c, n_sms);
        if (!e.ok) {
            return "emulation refused the program: " + e.message;
        }
        if (emu_out != nullptr) {
            *emu_out = e;
        }
        if (c.h.red_op == TSR_RED_ARGMIN || c.h.red_op == TSR_RED_ARGMAX) {
            std::string err;
            std::vector<tsr_ew_test::ArgRef> ref = tsr_ew_test::ArgReference(rt_.get(), c, &err);
            if (!err.empty()) {
                return err;
            }
            err = tsr_ew_test::CompareArg(c, ref, e.out);
            if (!err.empty()) {
                return "against the reference: " + err;
            }
        }
        return CompareWithCpu(c, e.out, [&](bool square) { return EmulatedScale(c, square); });
    }
};

/* ---- fused programs --------------------------------------------------------------- */

TEST_F(Emulation, RandomProgramsMatchTheCpuKernel)
{
    const size_t n = tsr_test::Scaled(3000, 50);
    int modes[3] = {0, 0, 0};
    int big = 0, split = 0;
    for (size_t i = 0; i < n; i++) {
        GenOptions opt;
        ProgramGen gen(rng_, opt);
        EwCase c = gen.Make();
        Emulated e;
        std::string err = Check(c, kWidths[rng_() % 4], &e);
        ASSERT_EQ(err, "") << "case " << i << "\n" << c.text;
        modes[e.plan.mode]++;
        big += e.launch.big;
        split += e.plan.splits > 1;
    }
    std::printf("  %zu programs: %d map, %d rinner, %d pinner; %d with big slots, %d split\n", n,
                modes[0], modes[1], modes[2], big, split);
    EXPECT_GT(modes[0], 0);
    EXPECT_GT(modes[1], 0);
    EXPECT_GT(modes[2], 0);
    EXPECT_GT(big, 0);
    EXPECT_GT(split, 0);
}

TEST_F(Emulation, EveryReductionMatches)
{
    for (int red = TSR_RED_SUM; red <= TSR_RED_ARGMAX; red++) {
        for (int i = 0; i < (int)tsr_test::Scaled(200, 10); i++) {
            GenOptions opt;
            opt.red_op = red;
            ProgramGen gen(rng_, opt);
            EwCase c = gen.Make();
            std::string err = Check(c, kWidths[rng_() % 4]);
            ASSERT_EQ(err, "") << "reduction " << red << ", case " << i << "\n" << c.text;
        }
    }
}

/* A program reading one leaf, of each generator kind and type, far into the
 * index space: values must be bit-identical to the CPU kernel's. */
TEST_F(Emulation, GeneratorsAreBitIdentical)
{
    for (int kind = TSR_LEAF_ARANGE; kind <= TSR_LEAF_NORMAL; kind++) {
        for (int type = 0; type < TSR_N_DTYPES; type++) {
            tsr_ew_leaf_t lf = tsr_ew_test::GeneratorLeaf(rng_, kind, type);
            lf.stride[0] = 1 + (int64_t)(rng_() % 1000);
            lf.stride[1] = (int64_t)(rng_() % 5) - 2;
            lf.seed = rng_();
            std::string err = Check(tsr_ew_test::LoadCase(lf, {37, 53}), 132);
            EXPECT_EQ(err, "") << "generator " << kind << " of type " << type;
        }
    }
}

/* NORMAL values, on the CPU and emulated, equal bit for bit a reference computed
 * here from the seed and index with Box-Muller over ew_vmath.h's log and cos,
 * which are within a few ulps of the same formula over the C library's. */
TEST_F(Emulation, NormalValuesMatchBoxMuller)
{
    const int64_t n = 20000;
    for (int type : {TSR_FLOAT64, TSR_FLOAT32}) {
        tsr_ew_leaf_t lf;
        std::memset(&lf, 0, sizeof(lf));
        lf.kind = TSR_LEAF_NORMAL;
        lf.type = type;
        lf.offset = (int64_t)(rng_() >> 16);
        lf.stride[0] = 1;
        lf.p0 = -1.5;
        lf.p1 = 2.75;
        lf.seed = rng_();
        Emulated e;
        ASSERT_EQ(Check(tsr_ew_test::LoadCase(lf, {n}), 132, &e), "")
            << "CPU and emulation differ, type " << type;

        /* The reference: splitmix64's finaliser of (key + golden * 2i) and of
         * (... 2i + 1), Box-Muller with the host's log and cos. */
        auto mix = [](uint64_t z) {
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            return z ^ (z >> 31);
        };
        const uint64_t key = mix(lf.seed ^ 0x5851f42d4c957f2dull);
        int libm_differs = 0;
        for (int64_t k = 0; k < n; k++) {
            const uint64_t i = (uint64_t)(lf.offset + k);
            const double u1 = 1.0 - (double)(mix(key + 0x9e3779b97f4a7c15ull * (2 * i)) >> 11) * 0x1.0p-53;
            const double u2 = (double)(mix(key + 0x9e3779b97f4a7c15ull * (2 * i + 1)) >> 11) * 0x1.0p-53;
            volatile double radius = lf.p1 * std::sqrt(-2.0 * ew_vm_log(u1));
            volatile double angle = 6.283185307179586 * u2;
            volatile double prod = radius * ew_vm_cos(angle);
            const double ref = lf.p0 + prod;
            volatile double r_libm = lf.p1 * std::sqrt(-2.0 * std::log(u1));
            volatile double p_libm = r_libm * std::cos(angle);
            libm_differs += lf.p0 + p_libm != ref;
            /* and within a few ulps of the same formula over the C library's */
            ASSERT_LE(std::fabs(ref - (lf.p0 + p_libm)),
                      4 * DBL_EPSILON * (std::fabs(lf.p0) + std::fabs(p_libm)))
                << "index " << i;
            unsigned char want[8];
            if (type == TSR_FLOAT64) {
                std::memcpy(want, &ref, 8);
            } else {
                const float f = (float)ref;
                std::memcpy(want, &f, 4);
            }
            const size_t es = (size_t)tsr_ew::dtype_bytes(type);
            ASSERT_EQ(std::memcmp(e.out.data() + k * es, want, es), 0)
                << "index " << i << " type " << type;
        }
        std::printf("  %d of %lld float64 values differ in the last bits from libm's log and cos\n",
                    libm_differs, (long long)n);
    }
}

/* Arithmetic on bools, from bytes that are not all 0 or 1: the CPU and the
 * emulation agree, and every result is 0 or 1. */
TEST_F(Emulation, BoolArithmeticMatchesAndStaysZeroOrOne)
{
    const int ops[] = {TSR_EW_ADD, TSR_EW_SUB, TSR_EW_MUL, TSR_EW_POW, TSR_EW_MIN,
                       TSR_EW_MAX, TSR_EW_EQ,  TSR_EW_LT,  TSR_EW_NEG, TSR_EW_ABS};
    const int64_t n = 777;
    for (int op : ops) {
        EwCase c;
        std::memset(&c.h, 0, sizeof(c.h));
        c.h.magic = TSR_EW_MAGIC;
        c.h.ndim = 1;
        c.h.shape[0] = n;
        for (int l = 0; l < 2; l++) {
            Bytes b((size_t)n);
            for (unsigned char &x : b) {
                const unsigned char bytes[] = {0, 1, 2, 255, 0, 1, 64};
                x = bytes[rng_() % 7];
            }
            c.inputs.push_back(b);
            tsr_ew_leaf_t lf;
            std::memset(&lf, 0, sizeof(lf));
            lf.kind = TSR_LEAF_BUFFER;
            lf.type = TSR_BOOL;
            lf.buf = l;
            lf.stride[0] = 1;
            c.leaves.push_back(lf);
            c.code.push_back(tsr_test::EwInstr(TSR_EW_LOAD, TSR_BOOL, -1, -1, -1, l));
        }
        c.code.push_back(
            tsr_test::EwInstr(op, TSR_BOOL, 0, op == TSR_EW_NEG || op == TSR_EW_ABS ? -1 : 1));
        c.h.n_leaves = 2;
        c.h.n_instr = 3;
        c.h.out_buf = 2;
        c.h.out_bytes = (uint64_t)n;
        Emulated e;
        ASSERT_EQ(Check(c, 16, &e), "") << "op " << op;
        for (int64_t k = 0; k < n; k++) {
            ASSERT_LE(e.out[(size_t)k], 1) << "op " << op << " element " << k;
        }
    }
}

/* Shapes that force each mode, team size and split. */
TEST_F(Emulation, ModesTeamsAndSplitsMatch)
{
    struct Shape {
        uint32_t ndim;
        int64_t n[2];
        uint32_t mask;
        int mode, team;
        bool split;
    };
    const Shape shapes[] = {
        {1, {300000, 1}, 1, tsr_ew::EW_MODE_RINNER, 256, true},
        {2, {7, 3000}, 2, tsr_ew::EW_MODE_RINNER, 32, true},
        {2, {4000, 3}, 2, tsr_ew::EW_MODE_RINNER, 1, false},
        {2, {3000, 7}, 1, tsr_ew::EW_MODE_PINNER, 1, true},
        {2, {3, 5000}, 0, tsr_ew::EW_MODE_PINNER, 1, false},
    };
    for (const Shape &s : shapes) {
        for (int red = TSR_RED_SUM; red <= TSR_RED_ARGMAX; red++) {
            EwCase c;
            do {
                GenOptions opt;
                opt.red_op = red;
                opt.max_elems = 300000;
                ProgramGen gen(rng_, opt);
                c = gen.Make();
            } while (c.h.ndim < s.ndim);
            /* The program's leaves were laid out for its own shape: redo them
             * as broadcasts of their first element and generators. */
            for (tsr_ew_leaf_t &lf : c.leaves) {
                std::memset(lf.stride, 0, sizeof(lf.stride));
                if (lf.kind != TSR_LEAF_BUFFER) {
                    lf.stride[0] = 1 + (int64_t)(rng_() % 3);
                    lf.stride[1] = s.n[0] * 2;
                    lf.offset = (int64_t)(rng_() % 1000);
                } else {
                    lf.offset = 0;
                }
            }
            c.h.ndim = s.ndim;
            c.h.shape[0] = s.n[0];
            c.h.shape[1] = s.n[1];
            c.h.red_mask = s.mask;
            c.h.out_bytes = (uint64_t)c.OutElems() * c.OutElemBytes();
            Emulated e;
            std::string err = Check(c, 132, &e);
            ASSERT_EQ(err, "") << "reduction " << red << " over (" << s.n[0] << ", " << s.n[1]
                               << ") mask " << s.mask << "\n"
                               << c.text;
            EXPECT_EQ(e.plan.mode, s.mode);
            if (s.mode == tsr_ew::EW_MODE_RINNER && !e.launch.big) {
                EXPECT_EQ(e.plan.team, s.team);
            }
            EXPECT_EQ(e.plan.splits > 1, s.split) << "splits " << e.plan.splits;
            if (s.n[0] == 300000) {
                EXPECT_GT(e.plan.merge_team, 1) << "splits " << e.plan.splits;
            }
        }
    }
}

/* A contiguous float32 chain over two leaves, as the collections emit it: the
 * fast kernel, vector loads, one mode. */
TEST_F(Emulation, ContiguousChainMatches)
{
    /* sqrt(abs(x * 1.5 + 0.5)) * x - 2 */
    EwCase c = tsr_ew_test::ChainCase(10007);
    std::vector<float> x(10007);
    for (size_t i = 0; i < x.size(); i++) {
        x[i] = (float)((double)(rng_() >> 11) * 0x1.0p-53 * 8 - 4);
    }
    c.inputs.push_back(Bytes((unsigned char *)x.data(), (unsigned char *)(x.data() + x.size())));
    Emulated e;
    EXPECT_EQ(Check(c, 132, &e), "");
    EXPECT_EQ(e.plan.mode, tsr_ew::EW_MODE_MAP);
    EXPECT_FALSE(e.launch.big);
    /* The constants are not run; only x goes through a slot, the rest stays in
     * registers. */
    ASSERT_EQ(e.plan.n_instr, 7u);
    int kept = 0;
    for (uint32_t i = 0; i < e.plan.n_instr; i++) {
        kept += e.plan.code[i].dst != tsr_ew::kSrcNone;
    }
    EXPECT_EQ(kept, 1);
    EXPECT_EQ(e.plan.code[0].dst, 0);
}

/* ---- checks of malformed programs ------------------------------------------------ */

TEST_F(Emulation, MalformedProgramsAreRefused)
{
    GenOptions opt;
    opt.red_op = TSR_RED_NONE;
    EwCase base;
    do {
        ProgramGen gen(rng_, opt);
        base = gen.Make();
    } while (base.inputs.empty() || base.h.ndim == 0 || base.Elems() < 2);
    std::vector<tsr_buffer_t> bufs = HostBuffers(base.inputs);
    char msg[200];
    uint64_t need;
    auto refused = [&](const EwCase &c) {
        return !tsr_ew::ew_check(&c.h, c.leaves.data(), c.code.data(), bufs.data(), &need, msg,
                                 sizeof(msg));
    };
    ASSERT_FALSE(refused(base)) << msg;

    for (size_t l = 0; l < base.leaves.size(); l++) {
        if (base.leaves[l].kind == TSR_LEAF_BUFFER) {
            EwCase c = base;
            c.leaves[l].offset += (int64_t)base.inputs[(size_t)c.leaves[l].buf].size();
            EXPECT_TRUE(refused(c)) << "a leaf past its buffer";
            c = base;
            c.leaves[l].offset = -1 - c.h.shape[0] * std::abs(c.leaves[l].stride[0]);
            EXPECT_TRUE(refused(c)) << "a leaf before its buffer";
        }
    }
    EwCase c = base;
    c.h.out_bytes -= 1;
    EXPECT_TRUE(refused(c)) << "a short output";
    c = base;
    c.code.back().a = (int32_t)c.code.size();
    c.code.back().op = TSR_EW_NEG;
    EXPECT_TRUE(refused(c)) << "an operand from the future";
    c = base;
    c.code.back().op = TSR_EW_SQRT;
    c.code.back().type = TSR_INT32;
    c.code.back().a = 0;
    EXPECT_TRUE(refused(c)) << "sqrt of an integer";
    c = base;
    c.h.red_op = TSR_RED_ARGMAX;
    c.h.red_index = c.h.n_instr;
    EXPECT_TRUE(refused(c)) << "an index instruction past the program";
    c = base;
    c.h.red_op = TSR_RED_ARGMIN;
    c.h.red_index = c.h.n_instr - 1;
    EXPECT_TRUE(refused(c)) << "the last instruction as the index";
    for (uint32_t i = 0; i + 1 < base.h.n_instr; i++) {
        if (tsr_ew_test::EwCase::ResultType(base.code[i]) != TSR_INT64) {
            c.h.red_index = i;
            EXPECT_TRUE(refused(c)) << "an index of another type than int64";
            break;
        }
    }
    c = base;
    c.h.magic = 0;
    EXPECT_TRUE(refused(c)) << "a bad magic";
}

/* ---- the combine kernel ------------------------------------------------------------ */

/* Random partials of `red` over values of `vtype`. */
Bytes RandomPartials(std::mt19937_64 &rng, int red, int vtype, int64_t n)
{
    const int at = tsr_red_acc_type((tsr_red_op_t)red, (tsr_dtype_t)vtype);
    const int asz = tsr_ew::acc_bytes(red, at);
    Bytes b((size_t)(n * asz), 0);
    auto rand_value = [&](int type) -> tsr_ew::ew_raw {
        double specials[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0, 1.0};
        uint64_t r = rng();
        if (type >= TSR_FLOAT32) {
            double v = r % 8 == 0 ? specials[(r >> 8) % 6] : (double)(int64_t)(r >> 20) * 1e-6;
            return tsr_ew::cast_rt(TSR_FLOAT64, type, tsr_ew::raw_put(v));
        }
        return tsr_ew::cast_rt(TSR_INT64, type, r % 3 == 0 ? r : (r % 200) - 100);
    };
    for (int64_t k = 0; k < n; k++) {
        unsigned char *p = b.data() + k * asz;
        tsr_ew::ew_acc a = {{0, 0, 0}};
        if (red == TSR_RED_MOMENTS) {
            a.w[0] = tsr_ew::raw_put((double)(rng() % 6));
            a.w[1] = rand_value(TSR_FLOAT64);
            a.w[2] = tsr_ew::raw_put(std::fabs(tsr_ew::raw_get<double>(rand_value(TSR_FLOAT64))));
        } else {
            a.w[0] = rand_value(at);
            a.w[1] = rng() % 4 == 0 ? (tsr_ew::ew_raw)INT64_MAX : rng() % 50;
        }
        tsr_ew::acc_store(red, at, reinterpret_cast<char *>(p), a);
    }
    return b;
}

TEST_F(Emulation, CombineMatchesTheCpuKernel)
{
    for (size_t i = 0; i < tsr_test::Scaled(400, 40); i++) {
        int vtype = 0;
        tsr_red_combine_arg_t a = tsr_ew_test::RandomCombineArg(rng_, 300, &vtype);
        const bool arg = a.red_op == TSR_RED_ARGMIN || a.red_op == TSR_RED_ARGMAX;
        a.out_type = arg && rng_() % 4 != 0 ? TSR_INT64 : (int32_t)(rng_() % TSR_N_DTYPES);
        std::vector<Bytes> ins;
        for (uint32_t k = 0; k < a.n_in; k++) {
            ins.push_back(RandomPartials(rng_, a.red_op, vtype, (int64_t)a.n_elems));
        }
        tsr_ew::ew_combine c;
        std::memset(&c, 0, sizeof(c));
        for (uint32_t k = 0; k < a.n_in; k++) {
            c.in[k] = reinterpret_cast<const char *>(ins[k].data());
        }
        const size_t osz = a.final ? (size_t)tsr_ew::dtype_bytes(a.out_type)
                                   : (size_t)tsr_ew::acc_bytes(a.red_op, a.acc_type);
        Bytes got(a.n_elems * osz);
        c.out = reinterpret_cast<char *>(got.data());
        c.arg = a;
        for (int64_t k = 0; k < (int64_t)a.n_elems; k++) {
            tsr_ew::combine_elem(c, k);
        }
        tsr_ew_test::TaskResult r =
            Run(&tsr__red_combine_codelet, tsr_ew_test::BytesOf(a), ins, TSR_DEVICE_CPU);
        ASSERT_EQ(r.status, TSR_OK) << r.message;
        const int type = a.final ? a.out_type : a.red_op == TSR_RED_MOMENTS ? -1 : a.acc_type;
        std::string err;
        if (type < 0 || (arg && !a.final)) {
            const size_t asz = osz;
            for (size_t e = 0; e < a.n_elems && err.empty(); e++) {
                const unsigned char *x = r.out.data() + e * asz;
                const unsigned char *y = got.data() + e * asz;
                bool ok = arg ? tsr_ew_test::SameValue(a.acc_type, x, y) &&
                                    std::memcmp(x + 8, y + 8, 8) == 0
                              : tsr_ew_test::SameValue(TSR_FLOAT64, x, y) &&
                                    tsr_ew_test::SameValue(TSR_FLOAT64, x + 8, y + 8) &&
                                    tsr_ew_test::SameValue(TSR_FLOAT64, x + 16, y + 16);
                err = ok ? "" : "element " + std::to_string(e);
            }
        } else {
            err = tsr_ew_test::DiffArrays(type, r.out, got);
        }
        ASSERT_EQ(err, "") << "combine red " << a.red_op << " acc " << a.acc_type << " final "
                           << a.final << " fin " << a.fin << " out " << a.out_type;
    }
}

/* ARGMIN/ARGMAX combines against a reference written here. */
TEST_F(Emulation, CombineOfArgPartialsFollowsTheRule)
{
    for (int red = TSR_RED_ARGMIN; red <= TSR_RED_ARGMAX; red++) {
        for (int vtype = 0; vtype < TSR_N_DTYPES; vtype++) {
            tsr_red_combine_arg_t a;
            std::memset(&a, 0, sizeof(a));
            a.red_op = red;
            a.acc_type = vtype;
            a.final = 1;
            a.fin = TSR_FIN_CAST;
            a.out_type = TSR_INT64;
            a.n_in = 5;
            a.n_elems = 200;
            std::vector<Bytes> ins;
            for (uint32_t k = 0; k < a.n_in; k++) {
                ins.push_back(RandomPartials(rng_, red, vtype, (int64_t)a.n_elems));
            }
            tsr_ew::ew_combine c;
            std::memset(&c, 0, sizeof(c));
            for (uint32_t k = 0; k < a.n_in; k++) {
                c.in[k] = reinterpret_cast<const char *>(ins[k].data());
            }
            std::vector<int64_t> got(a.n_elems);
            c.out = reinterpret_cast<char *>(got.data());
            c.arg = a;
            for (size_t e = 0; e < a.n_elems; e++) {
                tsr_ew::combine_elem(c, (int64_t)e);
                double best = 0;
                int64_t best_i = -1;
                for (uint32_t k = 0; k < a.n_in; k++) {
                    const unsigned char *p = ins[k].data() + e * 16;
                    double v = tsr_ew_test::AsDouble(vtype, p);
                    int64_t i = tsr_ew_test::Get<int64_t>(p + 8);
                    bool wins =
                        best_i < 0 || (std::isnan(v) || std::isnan(best)
                                           ? std::isnan(v) && (!std::isnan(best) || i < best_i)
                                       : v == best             ? i < best_i
                                       : red == TSR_RED_ARGMIN ? v < best
                                                               : v > best);
                    if (wins) {
                        best = v;
                        best_i = i;
                    }
                }
                ASSERT_EQ(got[e], best_i) << "red " << red << " type " << vtype << " element " << e;
            }
        }
    }
}

/* ---- the copy kernel --------------------------------------------------------------- */

TEST_F(Emulation, CopyMatchesTheCpuKernel)
{
    for (size_t it = 0; it < tsr_test::Scaled(300, 30); it++) {
        tsr_copy_header_t h = tsr_ew_test::RandomCopyHeader(rng_, 9);
        const int64_t total = (int64_t)(h.out_bytes / h.elem_size);
        h.alloc = (uint32_t)(rng_() % 2);
        h.n_pieces = 1 + (uint32_t)(rng_() % 5);
        std::vector<Bytes> srcs;
        std::vector<tsr_copy_piece_t> pieces = tsr_ew_test::RandomPieces(rng_, &h, &srcs, true);
        /* Mark what the pieces write (with alloc, the rest of the output is
         * not compared). */
        std::vector<bool> covered((size_t)total, false);
        for (const tsr_copy_piece_t &p : pieces) {
            for (int64_t e = 0; e < total; e++) {
                int64_t rem = e;
                bool in = true;
                for (int d = (int)h.ndim - 1; d >= 0; d--) {
                    int64_t cd = rem % h.shape[d];
                    rem /= h.shape[d];
                    in = in && cd >= p.dst_origin[d] && cd < p.dst_origin[d] + p.shape[d];
                }
                covered[(size_t)e] = covered[(size_t)e] || in;
            }
        }
        Bytes arg = tsr_ew_test::CopyArg(h, pieces);
        Bytes init = tsr_ew_test::RandomBytes(rng_, h.out_bytes);
        tsr_ew_test::TaskResult r =
            Run(&tsr__copy_codelet, arg, srcs, TSR_DEVICE_CPU, h.alloc ? nullptr : &init);
        ASSERT_EQ(r.status, TSR_OK) << r.message;

        std::vector<tsr_buffer_t> bufs = HostBuffers(srcs);
        ASSERT_TRUE(tsr_ew::copy_header_ok(&h));
        Bytes got = init;
        for (const tsr_copy_piece_t &p : pieces) {
            ASSERT_TRUE(tsr_ew::copy_piece_ok(&h, &p, bufs.data()));
            tsr_ew::copy_plan cp =
                tsr_ew::copy_make_plan(&h, &p, bufs.data(), reinterpret_cast<char *>(got.data()));
            for (int64_t i = 0; i < cp.count; i++) {
                switch (h.elem_size) {
                case 1:
                    tsr_ew::copy_elem<1>(cp, i);
                    break;
                case 2:
                    tsr_ew::copy_elem<2>(cp, i);
                    break;
                case 4:
                    tsr_ew::copy_elem<4>(cp, i);
                    break;
                default:
                    tsr_ew::copy_elem<8>(cp, i);
                    break;
                }
            }
        }
        ASSERT_EQ(r.out.size(), got.size());
        for (int64_t e = 0; e < total; e++) {
            if (covered[(size_t)e] || !h.alloc) {
                ASSERT_EQ(std::memcmp(r.out.data() + e * h.elem_size, got.data() + e * h.elem_size,
                                      h.elem_size),
                          0)
                    << "element " << e << " of copy " << it;
            }
        }
        /* A piece reaching one element past its source is refused, by both. */
        for (tsr_copy_piece_t &p : pieces) {
            if (p.kind == TSR_PIECE_COPY) {
                p.src_offset += (int64_t)(srcs[(size_t)p.buf].size() / h.elem_size);
                EXPECT_FALSE(tsr_ew::copy_piece_ok(&h, &p, bufs.data()));
                break;
            }
        }
    }
}

}  // namespace
