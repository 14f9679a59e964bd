// The CPU array kernels on floats (kernels/cpu/: tsr__ew_cpu) called directly with
// hand-built programs (kernel_util.h): arithmetic run in registers against a scalar
// reference bit for bit, large outputs written exactly, and the generators (normal
// and uniform statistics, values that depend on the global index only). The seed is
// printed; TSR_TEST_SEED replays.
#include <gtest/gtest.h>
#include <tessera.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../../kernels/cpu/ew_gen.h"
#include "../../kernels/impl.h"
#include "../../kernels/kernel_args.h"
#include "array/kernel_util.h"
#include "common/test_util.h"

namespace {

using tsr_kernel_test::Buffers;
using tsr_kernel_test::Bytes;
using tsr_kernel_test::FromBytes;
using tsr_kernel_test::KernelTest;
using tsr_kernel_test::Moments;
using tsr_kernel_test::Program;
using tsr_kernel_test::RunEw;
using tsr_kernel_test::ToBytes;

// ---- float arithmetic (run in registers by the kernel) --------------------------------------

template <class T>
T ScalarOp(int op, T x, T y)
{
    switch (op) {
    case TSR_EW_ADD:
        return x + y;
    case TSR_EW_SUB:
        return x - y;
    case TSR_EW_MUL:
        return x * y;
    case TSR_EW_DIV:
        return x / y;
    case TSR_EW_MIN:
        return (x < y || x != x) ? x : y;
    case TSR_EW_MAX:
        return (x > y || x != x) ? x : y;
    case TSR_EW_NEG:
        return -x;
    case TSR_EW_ABS:
        return std::fabs(x);
    default:
        return std::sqrt(x);
    }
}

template <class T>
bool SameBits(T a, T b)
{
    return (a != a && b != b) || std::memcmp(&a, &b, sizeof(T)) == 0;
}

// A random program of loads, constants and float arithmetic over n elements (in
// place, gathered and broadcast leaves; values used next, later or twice), with
// its inputs and its result computed here one element at a time.
template <class T>
struct FloatCase {
    Program p{{1}};
    std::vector<Bytes> inputs;
    std::vector<T> want;
};

template <class T>
FloatCase<T> MakeFloatCase(std::mt19937_64 &rng, int64_t n)
{
    const int type = sizeof(T) == 4 ? TSR_FLOAT32 : TSR_FLOAT64;
    const int ops[] = {TSR_EW_ADD, TSR_EW_SUB, TSR_EW_MUL, TSR_EW_DIV, TSR_EW_MIN,
                       TSR_EW_MAX, TSR_EW_NEG, TSR_EW_ABS, TSR_EW_SQRT};
    const T specials[] = {0, -0.0f, 1, -1, INFINITY, -INFINITY, NAN, 0.5f};
    FloatCase<T> c;
    c.p = Program({n});
    std::vector<std::vector<T>> vals; /* every value, element by element */
    const int n_leaves = 1 + (int)(rng() % 3);
    for (int l = 0; l < n_leaves; l++) {
        const int64_t stride = (int64_t)(rng() % 3); /* broadcast, in place, gathered */
        std::vector<T> buf((size_t)(stride * (n - 1) + 1));
        for (T &x : buf) {
            x = rng() % 10 == 0 ? specials[rng() % 8]
                                : (T)((double)(int64_t)(rng() % 2000001 - 1000000) * 1e-3);
        }
        int leaf = c.p.Leaf(TSR_LEAF_BUFFER, type, l);
        c.p.leaves[(size_t)leaf].stride[0] = stride;
        c.p.Load(leaf);
        c.inputs.push_back(ToBytes(buf));
        std::vector<T> v((size_t)n);
        for (int64_t i = 0; i < n; i++) {
            v[(size_t)i] = buf[(size_t)(i * stride)];
        }
        vals.push_back(v);
    }
    for (int k = 0; k < (int)(rng() % 3); k++) {
        int i = c.p.Op(TSR_EW_CONST, type);
        c.p.code[(size_t)i].imm_f = (double)(int64_t)(rng() % 201 - 100) * 0.25;
        vals.push_back(std::vector<T>((size_t)n, (T)c.p.code[(size_t)i].imm_f));
    }
    const int n_ops = 1 + (int)(rng() % 12);
    for (int k = 0; k < n_ops; k++) {
        const int op = ops[rng() % 9];
        const int last = (int)vals.size() - 1;
        /* Mostly the previous value, as chains are; any earlier one otherwise. */
        const int a = rng() % 3 != 0 ? last : (int)(rng() % vals.size());
        const int b = rng() % 2 != 0 ? (int)(rng() % vals.size()) : last;
        const bool unary = op == TSR_EW_NEG || op == TSR_EW_ABS || op == TSR_EW_SQRT;
        c.p.Op(op, type, a, unary ? -1 : b);
        std::vector<T> v((size_t)n);
        for (int64_t i = 0; i < n; i++) {
            v[(size_t)i] = ScalarOp<T>(op, vals[(size_t)a][(size_t)i], vals[(size_t)b][(size_t)i]);
        }
        vals.push_back(v);
    }
    c.want = vals.back();
    return c;
}

template <class T>
void CheckFloatPrograms(std::mt19937_64 &rng)
{
    for (int rep = 0; rep < 300; rep++) {
        const int64_t n = rep % 3 == 0 ? 1 + (int64_t)(rng() % 40) : 1 + (int64_t)(rng() % 3000);
        FloatCase<T> c = MakeFloatCase<T>(rng, n);
        Bytes out;
        ASSERT_EQ(RunEw(c.p, c.inputs, &out, (uint64_t)n * sizeof(T)), TSR_OK);
        std::vector<T> got = FromBytes<T>(out);
        for (int64_t i = 0; i < n; i++) {
            ASSERT_TRUE(SameBits(got[(size_t)i], c.want[(size_t)i]))
                << "case " << rep << " (" << c.p.code.size() << " instructions, " << n
                << " elements), element " << i << ": " << got[(size_t)i] << " vs "
                << c.want[(size_t)i];
        }
    }
}

TEST_F(KernelTest, FloatArithmeticMatchesAScalarReference)
{
    CheckFloatPrograms<float>(rng_);
    CheckFloatPrograms<double>(rng_);
}

// The same with the x86-64 baseline's code where the machine would pick AVX2.
TEST_F(KernelTest, BaselineFloatArithmeticMatchesAScalarReference)
{
    int was = tsr__ew_cpu_allow_avx2(0);
    CheckFloatPrograms<float>(rng_);
    CheckFloatPrograms<double>(rng_);
    tsr__ew_cpu_allow_avx2(was);
}

// ---- reductions along a chunk ---------------------------------------------------------------

// One MIN, MAX or PROD of the values x along their one dimension, through the kernel.
template <class Acc, class T>
Acc ReduceAlong(int red, int type, const std::vector<T> &x)
{
    Program p({(int64_t)x.size()});
    p.Load(p.Leaf(TSR_LEAF_BUFFER, type, 0));
    p.h.red_op = (uint32_t)red;
    p.h.red_mask = 1;
    Bytes out;
    EXPECT_EQ(RunEw(p, {ToBytes(x)}, &out, sizeof(Acc)), TSR_OK);
    return FromBytes<Acc>(out)[0];
}

// Min and max bit for bit against a sequential fold (a NaN anywhere is the
// result), products within a relative 1e-11 of a long double product (the kernel
// multiplies in lanes). Lengths cross the kernel's blocks and lanes; NaNs,
// infinities and zeros land anywhere, or nowhere.
template <class T>
void CheckFloatReductions(std::mt19937_64 &rng)
{
    const int type = sizeof(T) == 4 ? TSR_FLOAT32 : TSR_FLOAT64;
    const T specials[] = {NAN, INFINITY, -INFINITY, 0};
    std::uniform_real_distribution<double> near_one(0.9, 1.1);
    for (int rep = 0; rep < 300; rep++) {
        const int64_t n = 1 + (int64_t)(rng() % 5000);
        std::vector<T> x((size_t)n);
        for (T &v : x) {
            v = (T)(near_one(rng) * (rng() % 2 ? 1.0 : -1.0));
        }
        for (int k = (int)(rng() % 4); k > 0; k--) {
            x[rng() % (uint64_t)n] = specials[rng() % 4];
        }
        T lo = INFINITY, hi = -INFINITY;
        long double prod = 1;
        for (T v : x) {
            lo = ScalarOp<T>(TSR_EW_MIN, v, lo);
            hi = ScalarOp<T>(TSR_EW_MAX, v, hi);
            prod *= v;
        }
        const std::string what =
            "case " + std::to_string(rep) + ", " + std::to_string(n) + " values";
        T got_lo = ReduceAlong<T>(TSR_RED_MIN, type, x);
        T got_hi = ReduceAlong<T>(TSR_RED_MAX, type, x);
        EXPECT_TRUE(SameBits(got_lo, lo)) << what << ": min " << got_lo << " vs " << lo;
        EXPECT_TRUE(SameBits(got_hi, hi)) << what << ": max " << got_hi << " vs " << hi;
        double got = ReduceAlong<double>(TSR_RED_PROD, type, x);
        if (std::isnan((double)prod) || std::isinf((double)prod) || prod == 0) {
            EXPECT_TRUE(SameBits(got, (double)prod) || (prod == 0 && got == 0))
                << what << ": product " << got << " vs " << (double)prod;
        } else {
            EXPECT_NEAR(got, (double)prod, 1e-11 * std::fabs((double)prod)) << what << ": product";
        }
    }
}

// ARGMIN (max_wanted false) or ARGMAX of x along its one dimension, the elements
// numbered by an arange leaf from `first` by `step` (as the array's lowering numbers
// them; a negative step numbers them backwards, as a reversed view does). When
// `index_read`, the program also reads the indices (an unused ix + ix), so that
// the kernel holds them in memory instead of letting the fold make them.
template <class T>
tsr_red_arg_t ArgAlong(bool max_wanted, int type, const std::vector<T> &x, int64_t first,
                       int64_t step, bool index_read)
{
    Program p({(int64_t)x.size()});
    int idx = p.Leaf(TSR_LEAF_ARANGE, TSR_INT64);
    p.leaves[(size_t)idx].p0 = (double)first;
    p.leaves[(size_t)idx].p1 = (double)step;
    int ix = p.Load(idx);
    if (index_read) {
        p.Op(TSR_EW_ADD, TSR_INT64, ix, ix);
    }
    p.Load(p.Leaf(TSR_LEAF_BUFFER, type, 0));
    p.h.red_op = max_wanted ? TSR_RED_ARGMAX : TSR_RED_ARGMIN;
    p.h.red_mask = 1;
    p.h.red_index = (uint32_t)ix;
    Bytes out;
    EXPECT_EQ(RunEw(p, {ToBytes(x)}, &out, sizeof(tsr_red_arg_t)), TSR_OK);
    tsr_red_arg_t r;
    std::memcpy(&r, out.data(), sizeof(r));
    return r;
}

// Argmin and argmax against a sequential fold of NumPy's rule (the lowest index of
// the extreme; the lowest index of a NaN if there is one), with values drawn from
// a few so that the extreme repeats, NaNs now and then, and indices running
// forwards or backwards along the chunk.
template <class T>
void CheckArgReductions(std::mt19937_64 &rng)
{
    const int type = sizeof(T) == 4 ? TSR_FLOAT32 : TSR_FLOAT64;
    for (int rep = 0; rep < 200; rep++) {
        const int64_t n = 1 + (int64_t)(rng() % 5000);
        const bool backwards = rng() % 2 != 0;
        const int64_t first = backwards ? n - 1 + (int64_t)(rng() % 100) : (int64_t)(rng() % 100);
        const int64_t step = backwards ? -1 : 1;
        const uint64_t n_distinct = 1 + rng() % 50;
        std::vector<T> x((size_t)n);
        for (T &v : x) {
            v = (T)((double)(rng() % n_distinct) - 20.0);
        }
        if (rng() % 3 == 0) {
            x[rng() % (uint64_t)n] = NAN;
            x[rng() % (uint64_t)n] = NAN;
        }
        for (bool max_wanted : {false, true}) {
            int64_t want = -1;
            T best = 0;
            for (int64_t k = 0; k < n; k++) {
                const int64_t i = first + k * step;
                const T v = x[(size_t)k];
                bool take;
                if (want < 0) {
                    take = true;
                } else if (v != v) {
                    take = best == best || i < want;
                } else {
                    take = best == best &&
                           ((max_wanted ? v > best : v < best) || (v == best && i < want));
                }
                if (take) {
                    want = i;
                    best = v;
                }
            }
            for (bool index_read : {false, true}) {
                tsr_red_arg_t got = ArgAlong<T>(max_wanted, type, x, first, step, index_read);
                EXPECT_EQ(got.index, want)
                    << "case " << rep << ", " << n << " values, "
                    << (max_wanted ? "argmax" : "argmin") << (backwards ? ", backwards" : "")
                    << (index_read ? ", indices read" : "");
            }
        }
    }
}

// The same across the rows of a rows x cols chunk: ARGMIN or ARGMAX down each
// column, the rows numbered from `first` by `step` (the index leaf does not move
// along a row), each column against a sequential fold of NumPy's rule.
template <class T>
void CheckArgDownColumns(std::mt19937_64 &rng)
{
    const int type = sizeof(T) == 4 ? TSR_FLOAT32 : TSR_FLOAT64;
    for (int rep = 0; rep < 40; rep++) {
        const int64_t rows = 1 + (int64_t)(rng() % 60);
        const int64_t cols = 1 + (int64_t)(rng() % 1500);
        const int64_t step = rng() % 2 != 0 ? -1 : 1;
        const int64_t first = step < 0 ? rows - 1 : 0;
        const uint64_t n_distinct = 1 + rng() % 6;
        std::vector<T> x((size_t)(rows * cols));
        for (T &v : x) {
            v = (T)((double)(rng() % n_distinct) - 3.0);
        }
        if (rng() % 2 == 0) {
            x[rng() % x.size()] = NAN;
        }
        for (bool max_wanted : {false, true}) {
            Program p({rows, cols});
            int idx = p.Leaf(TSR_LEAF_ARANGE, TSR_INT64);
            p.leaves[(size_t)idx].stride[0] = step;
            p.leaves[(size_t)idx].stride[1] = 0;
            p.leaves[(size_t)idx].offset = first;
            p.leaves[(size_t)idx].p1 = 1;
            int ix = p.Load(idx);
            p.Load(p.Leaf(TSR_LEAF_BUFFER, type, 0));
            p.h.red_op = max_wanted ? TSR_RED_ARGMAX : TSR_RED_ARGMIN;
            p.h.red_mask = 1;
            p.h.red_index = (uint32_t)ix;
            Bytes out;
            ASSERT_EQ(RunEw(p, {ToBytes(x)}, &out, (uint64_t)cols * sizeof(tsr_red_arg_t)), TSR_OK);
            for (int64_t c = 0; c < cols; c++) {
                int64_t want = -1;
                T best = 0;
                for (int64_t r = 0; r < rows; r++) {
                    const int64_t i = first + r * step;
                    const T v = x[(size_t)(r * cols + c)];
                    bool take =
                        want < 0 || (v != v ? best == best || i < want
                                            : best == best && ((max_wanted ? v > best : v < best) ||
                                                               (v == best && i < want)));
                    if (take) {
                        want = i;
                        best = v;
                    }
                }
                tsr_red_arg_t got;
                std::memcpy(&got, out.data() + (size_t)c * sizeof(got), sizeof(got));
                ASSERT_EQ(got.index, want)
                    << "case " << rep << ", " << rows << "x" << cols << ", column " << c
                    << (max_wanted ? ", argmax" : ", argmin") << (step < 0 ? ", backwards" : "");
            }
        }
    }
}

TEST_F(KernelTest, ReductionsAlongAChunkMatchASequentialFold)
{
    CheckArgReductions<float>(rng_);
    CheckArgReductions<double>(rng_);
    CheckArgDownColumns<float>(rng_);
    CheckArgDownColumns<double>(rng_);
    CheckFloatReductions<float>(rng_);
    CheckFloatReductions<double>(rng_);
    // Integer products wrap (int64 accumulator), so any order gives the same bits.
    for (int rep = 0; rep < 100; rep++) {
        std::vector<int32_t> x(1 + rng_() % 5000);
        uint64_t want = 1;
        for (int32_t &v : x) {
            v = (int32_t)(uint32_t)rng_();
            want *= (uint64_t)(int64_t)v;
        }
        EXPECT_EQ((uint64_t)ReduceAlong<int64_t>(TSR_RED_PROD, TSR_INT32, x), want)
            << x.size() << " values";
    }
}

// An output large enough for non-temporal stores, at an address that is 32-byte
// aligned, 16-byte aligned (malloc's) or neither (its first elements stored one
// by one, the rest streamed from the registers), of a length that is not a
// multiple of a vector: every element is written, and nothing around it.
TEST_F(KernelTest, LargeOutputsAreWrittenExactly)
{
    const int64_t n = (1 << 20) + 5; /* 4 MiB and 20 bytes of float32 */
    std::vector<float> x((size_t)n);
    for (float &v : x) {
        v = (float)((double)(rng_() >> 11) * 0x1.0p-53 * 8 - 4);
    }
    Program p({n});
    int a = p.Load(p.Leaf(TSR_LEAF_BUFFER, TSR_FLOAT32, 0));
    int k = p.Op(TSR_EW_CONST, TSR_FLOAT32);
    p.code[(size_t)k].imm_f = 1.5;
    int t = p.Op(TSR_EW_MUL, TSR_FLOAT32, a, k);
    p.Op(TSR_EW_SQRT, TSR_FLOAT32, p.Op(TSR_EW_ABS, TSR_FLOAT32, t));
    std::vector<Bytes> ins = {ToBytes(x)};
    Bytes blob = p.Blob(1, (uint64_t)n * 4);
    for (size_t misalign : {0, 4, 16}) {
        Bytes out((size_t)n * 4 + 72, 0xAB);
        const size_t at = (32 - (uintptr_t)out.data() % 32) % 32 + misalign;
        std::vector<tsr_buffer_t> bufs = Buffers(ins, nullptr);
        bufs[1] = tsr_buffer_t{out.data() + at, (size_t)n * 4};
        ASSERT_EQ(tsr__ew_cpu(nullptr, bufs.data(), blob.data()), TSR_OK);
        for (int64_t i = 0; i < n; i++) {
            float want = std::sqrt(std::fabs(x[(size_t)i] * 1.5f));
            float got;
            std::memcpy(&got, out.data() + at + i * 4, 4);
            ASSERT_TRUE(SameBits(got, want)) << "misaligned by " << misalign << ", element " << i;
        }
        for (size_t i = 0; i < at; i++) {
            EXPECT_EQ(out[i], 0xAB);
        }
        for (size_t i = at + (size_t)n * 4; i < out.size(); i++) {
            EXPECT_EQ(out[i], 0xAB);
        }
    }
}

// ---- exp, log, sin, cos (ew_vmath.h) ----------------------------------------------------

// Distance of got from the exact value ref in units in the last place of T at
// ref (the smallest subnormal's spacing below the normal range).
template <class T>
double UlpsOff(T got, long double ref)
{
    const T r = (T)ref;
    const T above = std::nextafter(std::fabs(r), std::numeric_limits<T>::infinity());
    const double ulp = std::fabs(r) < std::numeric_limits<T>::min()
                           ? (double)std::numeric_limits<T>::denorm_min()
                           : (double)(above - std::fabs(r));
    return (double)(std::fabs((long double)got - ref) / ulp);
}

template <class T>
long double ExactOf(int op, T x)
{
    const long double v = x;
    switch (op) {
    case TSR_EW_EXP:
        return std::exp(v);
    case TSR_EW_LOG:
        return std::log(v);
    case TSR_EW_SIN:
        return std::sin(v);
    default:
        return std::cos(v);
    }
}

// Arguments for op: ordinary ones, the whole range, the edges of exp, specials,
// points next to multiples of pi/2 (where sine and cosine lose bits to the
// reduction), and sines and cosines past EW_VM_TRIG_MAX (the C library's).
template <class T>
std::vector<T> TranscendentalArguments(std::mt19937_64 &rng, int n)
{
    const T specials[] = {0,
                          (T)-0.0,
                          1,
                          -1,
                          std::numeric_limits<T>::infinity(),
                          -std::numeric_limits<T>::infinity(),
                          std::numeric_limits<T>::quiet_NaN(),
                          std::numeric_limits<T>::denorm_min(),
                          std::numeric_limits<T>::min(),
                          std::numeric_limits<T>::max()};
    const double exp_edge = sizeof(T) == 4 ? 105.0 : 746.0;
    auto unit = [&rng]() { return (double)(rng() >> 11) * 0x1.0p-53; };
    std::vector<T> x((size_t)n);
    for (T &v : x) {
        switch (rng() % 8) {
        case 0:
        case 1:
            v = (T)((unit() - 0.5) * 60);
            break;
        case 2:
            v = (T)((unit() - 0.5) * 2 * EW_VM_TRIG_MAX);
            break;
        case 3: { /* any positive finite value, uniform in its bits */
            const uint64_t bits = rng();
            if (sizeof(T) == 4) {
                uint32_t b = (uint32_t)bits % 0x7f800000u;
                std::memcpy(&v, &b, 4);
            } else {
                uint64_t b = bits % 0x7ff0000000000000ull;
                std::memcpy(&v, &b, 8);
            }
            break;
        }
        case 4:
            v = (T)(exp_edge - unit() * 0.1 * exp_edge) * (rng() % 2 ? 1 : -1);
            break;
        case 5:
            v = specials[rng() % 10];
            break;
        case 6: {
            const long double half_pi = 1.5707963267948966192313216916397514L;
            const int64_t k = (int64_t)(rng() % 120000) - 60000;
            v = (T)((long double)k * half_pi);
            for (int s = (int)(rng() % 5) - 2; s != 0; s += s > 0 ? -1 : 1) {
                v = std::nextafter(v, (T)(s > 0 ? 1e30 : -1e30));
            }
            break;
        }
        default:
            v = (T)((unit() - 0.5) * 2e12);
            break;
        }
    }
    return x;
}

// Each op over random arguments: within an ulp of the exact value (a float
// within 0.51 ulp: computed as a double and rounded once), NaN exactly where the
// exact value is, infinities and the sign of zero as they should be; and the
// kernel's values (vectorised, with the machine's instruction set) the same bits
// as ew_vmath.h's functions called one at a time here.
template <class T>
void CheckTranscendentals(std::mt19937_64 &rng)
{
    const int type = sizeof(T) == 4 ? TSR_FLOAT32 : TSR_FLOAT64;
    const bool is_float = sizeof(T) == 4;
    const int n = 20000;
    for (int op : {TSR_EW_EXP, TSR_EW_LOG, TSR_EW_SIN, TSR_EW_COS}) {
        std::vector<T> x = TranscendentalArguments<T>(rng, n);
        Program p({n});
        p.Op(op, type, p.Load(p.Leaf(TSR_LEAF_BUFFER, type, 0)));
        Bytes out;
        ASSERT_EQ(RunEw(p, {ToBytes(x)}, &out, (uint64_t)n * sizeof(T)), TSR_OK);
        std::vector<T> got = FromBytes<T>(out);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            const T v = x[(size_t)i];
            const T g = got[(size_t)i];
            const long double ref = ExactOf<T>(op, v);
            const bool far =
                (op == TSR_EW_SIN || op == TSR_EW_COS) && !(std::fabs((double)v) <= EW_VM_TRIG_MAX);
            if (std::isnan(ref)) {
                ASSERT_TRUE(std::isnan(g)) << "op " << op << " of " << v << " gives " << g;
                continue;
            }
            if (std::isinf((T)ref) || (T)ref == 0) {
                ASSERT_TRUE(SameBits(g, (T)ref)) << "op " << op << " of " << v << " gives " << g;
                continue;
            }
            const double off = UlpsOff(g, ref);
            ASSERT_LE(off, far        ? 1.0
                           : is_float ? 0.51
                                      : 1.5)
                << "op " << op << " of " << std::hexfloat << v << " gives " << g;
            if (!far) {
                worst = std::max(worst, off);
                const int full = !is_float;
                const double one = op == TSR_EW_EXP   ? ew_vm_exp_prec(v, full)
                                   : op == TSR_EW_LOG ? ew_vm_log_prec(v, full)
                                                      : ew_vm_sincos(v, op == TSR_EW_COS, full);
                ASSERT_TRUE(SameBits(g, (T)one)) << "op " << op << " of " << std::hexfloat << v;
            }
        }
        std::printf("  op %d on %s: at most %.3f ulp off\n", op, is_float ? "float32" : "float64",
                    worst);
    }
}

TEST_F(KernelTest, TranscendentalsAreWithinAnUlp)
{
    CheckTranscendentals<float>(rng_);
    CheckTranscendentals<double>(rng_);
}

// Random float programs over outputs streamed from the registers (at least 4 MiB,
// 32-byte aligned or one to three elements past that), against the
// element-by-element reference.
template <class T>
void CheckLargeFloatPrograms(std::mt19937_64 &rng)
{
    for (int rep = 0; rep < 6; rep++) {
        const int64_t n = ((int64_t)4 << 20) / (int64_t)sizeof(T) + (int64_t)(rng() % 5000);
        FloatCase<T> c = MakeFloatCase<T>(rng, n);
        Bytes blob = c.p.Blob((uint32_t)c.inputs.size(), (uint64_t)n * sizeof(T));
        Bytes out((size_t)n * sizeof(T) + 64, 0xAB);
        const size_t at = (32 - (uintptr_t)out.data() % 32) % 32 + (size_t)(rep % 4) * sizeof(T);
        std::vector<tsr_buffer_t> bufs = Buffers(c.inputs, nullptr);
        bufs[c.inputs.size()] = tsr_buffer_t{out.data() + at, (size_t)n * sizeof(T)};
        ASSERT_EQ(tsr__ew_cpu(nullptr, bufs.data(), blob.data()), TSR_OK);
        for (int64_t i = 0; i < n; i++) {
            T got;
            std::memcpy(&got, out.data() + at + (size_t)i * sizeof(T), sizeof(T));
            ASSERT_TRUE(SameBits(got, c.want[(size_t)i]))
                << "case " << rep << " (" << c.p.code.size() << " instructions, " << n
                << " elements), element " << i << ": " << got << " vs " << c.want[(size_t)i];
        }
    }
}

TEST_F(KernelTest, LargeFloatProgramsMatchAScalarReference)
{
    CheckLargeFloatPrograms<float>(rng_);
    CheckLargeFloatPrograms<double>(rng_);
    int was = tsr__ew_cpu_allow_avx2(0);
    CheckLargeFloatPrograms<float>(rng_);
    CheckLargeFloatPrograms<double>(rng_);
    tsr__ew_cpu_allow_avx2(was);
}

// ---- the generators ----------------------------------------------------------------------

// n values of a generator leaf (float64) at global indices offset, offset + 1, ...
std::vector<double> Generate(int kind, double p0, double p1, uint64_t seed, int64_t offset,
                             int64_t n)
{
    Program p({n});
    int l = p.Leaf(kind, TSR_FLOAT64);
    p.leaves[(size_t)l].p0 = p0;
    p.leaves[(size_t)l].p1 = p1;
    p.leaves[(size_t)l].seed = seed;
    p.leaves[(size_t)l].offset = offset;
    p.Load(l);
    Bytes out;
    EXPECT_EQ(RunEw(p, {}, &out, (uint64_t)n * 8), TSR_OK);
    return FromBytes<double>(out);
}

// ARANGE and UNIFORM values against their definitions computed here with plain
// casts (the kernel converts integers without them, to vectorise): p0 + i * p1,
// and p0 + (p1 - p0) * (mix(key + golden * i) >> 11) * 2^-53, at offsets small,
// past 2^53, and negative.
TEST_F(KernelTest, ArangeAndUniformMatchTheirDefinitions)
{
    auto mix = [](uint64_t z) {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    };
    const int64_t n = 3001;
    for (int64_t offset : {(int64_t)0, (int64_t)(rng_() >> 8), (int64_t)(rng_() >> 1),
                           -(int64_t)(rng_() >> 2), (int64_t)1 << 53, -((int64_t)1 << 62)}) {
        const double p0 = (double)(int64_t)(rng_() % 2001 - 1000) * 0.125;
        const double p1 = (double)(rng_() >> 11) * 0x1.0p-53 * 8 - 4;
        const uint64_t seed = rng_();
        std::vector<double> a = Generate(TSR_LEAF_ARANGE, p0, p1, seed, offset, n);
        std::vector<double> u = Generate(TSR_LEAF_UNIFORM, p0, p0 + 3 * p1, seed, offset, n);
        const uint64_t key = mix(seed ^ 0x5851f42d4c957f2dull);
        for (int64_t k = 0; k < n; k++) {
            const int64_t i = (int64_t)((uint64_t)offset + (uint64_t)k);
            volatile double prod = (double)i * p1; /* rounded before the sum, as the kernel */
            ASSERT_TRUE(SameBits(a[(size_t)k], p0 + prod)) << "arange at index " << i;
            const double unit =
                (double)(mix(key + 0x9e3779b97f4a7c15ull * (uint64_t)i) >> 11) * 0x1.0p-53;
            volatile double scaled = ((p0 + 3 * p1) - p0) * unit;
            ASSERT_TRUE(SameBits(u[(size_t)k], p0 + scaled)) << "uniform at index " << i;
        }
    }
}

TEST_F(KernelTest, NormalValuesHaveTheirMeanAndDeviation)
{
    const int64_t n = 1 << 20;
    const double mean = 3, dev = 2;
    std::vector<double> v = Generate(TSR_LEAF_NORMAL, mean, dev, rng_(), (int64_t)(rng_() >> 8), n);
    double m[3];
    Moments(v.data(), n, m);
    double sd = std::sqrt(m[2] / (double)n);
    double in1 = 0, in2 = 0, m3 = 0, m4 = 0;
    for (double x : v) {
        double z = (x - mean) / dev;
        in1 += std::fabs(z) < 1;
        in2 += std::fabs(z) < 2;
        m3 += z * z * z;
        m4 += z * z * z * z;
    }
    /* Five standard errors of each statistic. */
    EXPECT_NEAR(m[1], mean, 5 * dev / std::sqrt((double)n));
    EXPECT_NEAR(sd, dev, 5 * dev / std::sqrt(2.0 * (double)n));
    EXPECT_NEAR(in1 / (double)n, 0.682689492, 5 * std::sqrt(0.6827 * 0.3173 / (double)n));
    EXPECT_NEAR(in2 / (double)n, 0.954499736, 5 * std::sqrt(0.9545 * 0.0455 / (double)n));
    EXPECT_NEAR(m3 / (double)n, 0, 5 * std::sqrt(15.0 / (double)n));
    EXPECT_NEAR(m4 / (double)n, 3, 5 * std::sqrt(96.0 / (double)n));
    for (double x : v) {
        ASSERT_TRUE(std::isfinite(x));
    }
}

TEST_F(KernelTest, UniformValuesAreUniform)
{
    const int64_t n = 1 << 20;
    const double lo = -7.25, hi = 12.5;
    std::vector<double> v = Generate(TSR_LEAF_UNIFORM, lo, hi, rng_(), (int64_t)(rng_() >> 8), n);
    const int bins = 64;
    std::vector<double> count(bins, 0);
    double m[3];
    Moments(v.data(), n, m);
    for (double x : v) {
        ASSERT_GE(x, lo);
        ASSERT_LT(x, hi);
        count[(size_t)std::min(bins - 1, (int)((x - lo) / (hi - lo) * bins))] += 1;
    }
    double chi2 = 0;
    const double expected = (double)n / bins;
    for (double c : count) {
        chi2 += (c - expected) * (c - expected) / expected;
    }
    const double w = hi - lo;
    EXPECT_NEAR(m[1], (lo + hi) / 2, 5 * w / std::sqrt(12.0 * (double)n));
    EXPECT_NEAR(m[2] / (double)n, w * w / 12, 5 * w * w / std::sqrt(180.0 * (double)n));
    EXPECT_LT(chi2, 130) << "63 degrees of freedom: p < 1e-6";
}

// A value depends on its seed and global index only, not on the chunk's layout.
TEST_F(KernelTest, GeneratedValuesDependOnTheirIndexOnly)
{
    const uint64_t seed = rng_();
    const int64_t base = (int64_t)(rng_() >> 4);
    for (int kind : {TSR_LEAF_ARANGE, TSR_LEAF_UNIFORM, TSR_LEAF_NORMAL}) {
        std::vector<double> flat = Generate(kind, 1, 2, seed, base, 600);
        Program p({20, 30}); /* the same indices, transposed: element (i, j) is base + 20 j + i */
        int l = p.Leaf(kind, TSR_FLOAT64);
        p.leaves[(size_t)l].p0 = 1;
        p.leaves[(size_t)l].p1 = 2;
        p.leaves[(size_t)l].seed = seed;
        p.leaves[(size_t)l].offset = base;
        p.leaves[(size_t)l].stride[0] = 1;
        p.leaves[(size_t)l].stride[1] = 20;
        p.Load(l);
        Bytes out;
        ASSERT_EQ(RunEw(p, {}, &out, 600 * 8), TSR_OK);
        std::vector<double> t = FromBytes<double>(out);
        for (int i = 0; i < 20; i++) {
            for (int j = 0; j < 30; j++) {
                ASSERT_EQ(std::memcmp(&t[(size_t)(i * 30 + j)], &flat[(size_t)(20 * j + i)], 8), 0)
                    << "kind " << kind;
            }
        }
    }
}

}  // namespace
