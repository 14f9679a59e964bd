/* The integer and bool matrix product: the CUDA kernel's per-thread code
 * (kernels/cuda/gemm_int.cuh) built for the host and run in the kernel's order,
 * and the CPU kernel (tsr__gemm_cpu, called directly), both against a reference
 * computed here by a brute-force triple loop in uint64 (wrapping modulo 2^64,
 * hence modulo 2^bits once truncated) or, for bools, an OR of ANDs. Random
 * shapes that leave partial tiles, row strides past the row, offsets, beta 0 and
 * 1, full-range values (so uint8, uint16 and int32 sums wrap, which the test
 * checks happened), and bool bytes other than 0 and 1. Needs no GPU (label cpu).
 * The seed is printed; TSR_TEST_SEED replays, TSR_TEST_SCALE scales. */
#include <gtest/gtest.h>
#include <tessera.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "kernels/cuda/gemm_int.cuh"
#include "kernels/impl.h"

namespace {

using Bytes = std::vector<unsigned char>;

const int kIntTypes[] = {TSR_BOOL, TSR_UINT8, TSR_UINT16, TSR_INT32, TSR_INT64};

size_t ElemSize(int type)
{
    return tsr_dtype_size((tsr_dtype_t)type);
}

/* Element e of b as an integer: signed types sign-extended, bools 0 or 1 (any
 * nonzero byte is true). */
int64_t Get(const Bytes &b, size_t e, int type)
{
    switch (type) {
    case TSR_BOOL:
        return b[e] != 0;
    case TSR_UINT8:
        return b[e];
    case TSR_UINT16: {
        uint16_t v;
        std::memcpy(&v, &b[e * 2], 2);
        return v;
    }
    case TSR_INT32: {
        int32_t v;
        std::memcpy(&v, &b[e * 4], 4);
        return v;
    }
    default: {
        int64_t v;
        std::memcpy(&v, &b[e * 8], 8);
        return v;
    }
    }
}

/* v truncated to the element's width (little-endian: its low bytes). */
void Put(Bytes &b, size_t e, int type, uint64_t v)
{
    std::memcpy(&b[e * ElemSize(type)], &v, ElemSize(type));
}

struct GemmCase {
    tsr_gemm_arg_t g;
    Bytes a, b, c0; /* c0: C before the product (accumulated into when beta is 1) */
};

/* Full-range values for most integers; for bools 0, 1 or other nonzero bytes. */
uint64_t RandomValue(std::mt19937_64 &rng, int type, bool small)
{
    if (type == TSR_BOOL) {
        static const uint64_t bytes[] = {0, 0, 0, 1, 1, 2, 255};
        return bytes[rng() % 7];
    }
    return small ? rng() % 7 : rng();
}

GemmCase RandomCase(std::mt19937_64 &rng, int type)
{
    GemmCase c;
    tsr_gemm_arg_t &g = c.g;
    const bool small = rng() % 5 == 0;
    auto dim = [&]() {
        /* A multiple of the kernel's tile now and then, else anything (partial tiles). */
        return rng() % 4 == 0 ? (int64_t)tsr_ew::kGemmTile * (1 + (int64_t)(rng() % 3))
                              : 1 + (int64_t)(rng() % 70);
    };
    std::memset(&g, 0, sizeof(g));
    g.type = type;
    g.m = dim();
    g.n = dim();
    g.k = dim();
    g.lda = g.k + (int64_t)(rng() % 3);
    g.ldb = g.n + (int64_t)(rng() % 3);
    g.off_a = (int64_t)(rng() % 5);
    g.off_b = (int64_t)(rng() % 5);
    g.beta = (int32_t)(rng() % 2);
    const size_t es = ElemSize(type);
    c.a.resize((size_t)(g.off_a + (g.m - 1) * g.lda + g.k) * es);
    c.b.resize((size_t)(g.off_b + (g.k - 1) * g.ldb + g.n) * es);
    c.c0.resize((size_t)(g.m * g.n) * es);
    for (Bytes *x : {&c.a, &c.b, &c.c0}) {
        for (size_t e = 0; e < x->size() / es; e++) {
            Put(*x, e, type, RandomValue(rng, type, small));
        }
    }
    return c;
}

std::string Describe(const GemmCase &c)
{
    char s[160];
    std::snprintf(s, sizeof(s), "%s %lldx%lldx%lld lda %lld ldb %lld off %lld,%lld beta %d",
                  tsr_dtype_name((tsr_dtype_t)c.g.type), (long long)c.g.m, (long long)c.g.n,
                  (long long)c.g.k, (long long)c.g.lda, (long long)c.g.ldb, (long long)c.g.off_a,
                  (long long)c.g.off_b, c.g.beta);
    return s;
}

/* C as the product must leave it. *wrapped: whether some element's exact sum
 * lies outside its type's range (for types of 32 bits or fewer), or some
 * product of int64s overflows. */
Bytes Reference(const GemmCase &c, bool *wrapped)
{
    const tsr_gemm_arg_t &g = c.g;
    const int t = g.type;
    const unsigned bits = (unsigned)ElemSize(t) * 8;
    const bool is_signed = t == TSR_INT32 || t == TSR_INT64;
    const __int128 lo = is_signed ? -((__int128)1 << (bits - 1)) : 0;
    const __int128 hi = is_signed ? ((__int128)1 << (bits - 1)) - 1 : ((__int128)1 << bits) - 1;
    Bytes out(c.c0.size());

    for (int64_t i = 0; i < g.m; i++) {
        for (int64_t j = 0; j < g.n; j++) {
            const size_t e = (size_t)(i * g.n + j);
            const int64_t c0 = g.beta ? Get(c.c0, e, t) : 0;
            uint64_t acc = (uint64_t)c0;
            __int128 exact = c0;
            bool any = c0 != 0;
            for (int64_t p = 0; p < g.k; p++) {
                const int64_t x = Get(c.a, (size_t)(g.off_a + i * g.lda + p), t);
                const int64_t y = Get(c.b, (size_t)(g.off_b + p * g.ldb + j), t);
                int64_t prod;
                acc += (uint64_t)x * (uint64_t)y;
                any = any || (x != 0 && y != 0);
                if (bits < 64) {
                    exact += (__int128)x * y;
                } else if (__builtin_mul_overflow(x, y, &prod)) {
                    *wrapped = true;
                }
            }
            if (bits < 64 && (exact < lo || exact > hi)) {
                *wrapped = true;
            }
            Put(out, e, t, t == TSR_BOOL ? (uint64_t)any : acc);
        }
    }
    return out;
}

/* The kernel's threads one after another in its order: for each tile, every
 * thread's loads of a step, then every thread's fold of it (the two barriers),
 * and after the last step every thread's store. */
template <int DT>
void EmulateTiles(const tsr_ew::gemm_int_plan &P)
{
    typedef typename tsr_ew::gemm_int_type<DT>::S S;
    typedef typename tsr_ew::gemm_int_type<DT>::A A;
    std::vector<S> sa(tsr_ew::kGemmThreads), sb(tsr_ew::kGemmThreads);
    std::vector<A> acc(tsr_ew::kGemmThreads);

    for (int64_t tile = 0; tile < P.n_tiles; tile++) {
        std::fill(acc.begin(), acc.end(), (A)0);
        for (int64_t p0 = 0; p0 < P.k; p0 += tsr_ew::kGemmTile) {
            for (int t = 0; t < tsr_ew::kGemmThreads; t++) {
                tsr_ew::gemm_int_load<DT>(P, tile, p0, t, sa.data(), sb.data());
            }
            for (int t = 0; t < tsr_ew::kGemmThreads; t++) {
                acc[t] = tsr_ew::gemm_int_fold<DT>(acc[t], sa.data(), sb.data(), t);
            }
        }
        for (int t = 0; t < tsr_ew::kGemmThreads; t++) {
            tsr_ew::gemm_int_store<DT>(P, tile, t, acc[t]);
        }
    }
}

/* C after the emulated kernel, from c0 (which beta 0 must ignore). */
Bytes Emulate(GemmCase c)
{
    tsr_buffer_t bufs[3] = {{c.a.data(), c.a.size()}, {c.b.data(), c.b.size()}, {nullptr, 0}};
    Bytes out = c.c0;
    tsr_ew::gemm_int_plan P = tsr_ew::gemm_int_make_plan(&c.g, bufs, out.data());

    switch (c.g.type) {
    case TSR_BOOL:
        EmulateTiles<TSR_BOOL>(P);
        break;
    case TSR_UINT8:
        EmulateTiles<TSR_UINT8>(P);
        break;
    case TSR_UINT16:
        EmulateTiles<TSR_UINT16>(P);
        break;
    case TSR_INT32:
        EmulateTiles<TSR_INT32>(P);
        break;
    default:
        EmulateTiles<TSR_INT64>(P);
        break;
    }
    return out;
}

/* tsr__gemm_cpu with C a registered buffer holding c0. */
tsr_status_t RunCpu(GemmCase c, Bytes *out)
{
    *out = c.c0;
    tsr_buffer_t bufs[3] = {
        {c.a.data(), c.a.size()}, {c.b.data(), c.b.size()}, {out->data(), out->size()}};
    return tsr__gemm_cpu(nullptr, bufs, &c.g);
}

/* The first element where got and want differ, or "". */
std::string FirstDifference(const GemmCase &c, const Bytes &got, const Bytes &want)
{
    if (got.size() != want.size()) {
        return "size " + std::to_string(got.size()) + ", expected " + std::to_string(want.size());
    }
    for (size_t e = 0; e < want.size() / ElemSize(c.g.type); e++) {
        if (Get(got, e, c.g.type) != Get(want, e, c.g.type) ||
            (c.g.type == TSR_BOOL && got[e] > 1)) {
            return "element " + std::to_string(e) + " is " +
                   std::to_string(c.g.type == TSR_BOOL ? got[e] : Get(got, e, c.g.type)) +
                   ", expected " + std::to_string(Get(want, e, c.g.type));
        }
    }
    return "";
}

class GemmInt : public testing::Test {
protected:
    void SetUp() override
    {
        seed_ = tsr_test::TestSeed();
        rng_.seed(seed_);
        std::printf("[   SEED   ] %s\n", tsr_test::SeedTrace(seed_).c_str());
    }

    uint64_t seed_ = 0;
    std::mt19937_64 rng_;
};

TEST_F(GemmInt, EmulatedKernelAndCpuMatchABruteForceReference)
{
    for (int type : kIntTypes) {
        bool wrapped = false;
        for (size_t i = 0; i < tsr_test::Scaled(60, 10); i++) {
            GemmCase c = RandomCase(rng_, type);
            Bytes want = Reference(c, &wrapped);
            Bytes cpu;
            ASSERT_EQ(RunCpu(c, &cpu), TSR_OK) << Describe(c);
            EXPECT_EQ(FirstDifference(c, cpu, want), "") << "CPU kernel, " << Describe(c);
            EXPECT_EQ(FirstDifference(c, Emulate(c), want), "")
                << "emulated CUDA kernel, " << Describe(c);
        }
        if (type != TSR_BOOL) {
            EXPECT_TRUE(wrapped) << tsr_dtype_name((tsr_dtype_t)type)
                                 << ": no sum wrapped around, the test checks too little";
        }
    }
}

/* A product with one row of A all true (or all ones) against columns of B that
 * hold one true (one) each: sums and ORs that one wrong element would change. */
TEST_F(GemmInt, OneHotColumnsPickRows)
{
    for (int type : kIntTypes) {
        GemmCase c;
        std::memset(&c.g, 0, sizeof(c.g));
        c.g.type = type;
        c.g.m = 3;
        c.g.k = 37; /* two full tiles and a partial one */
        c.g.n = 37;
        c.g.lda = c.g.k;
        c.g.ldb = c.g.n;
        const size_t es = ElemSize(type);
        c.a.assign((size_t)(c.g.m * c.g.k) * es, 0);
        c.b.assign((size_t)(c.g.k * c.g.n) * es, 0);
        c.c0.assign((size_t)(c.g.m * c.g.n) * es, 0x5a); /* ignored: beta is 0 */
        for (int64_t p = 0; p < c.g.k; p++) {
            Put(c.a, (size_t)(0 * c.g.k + p), type, 1);
            Put(c.a, (size_t)(1 * c.g.k + p), type, type == TSR_BOOL ? (p % 2) : (uint64_t)p);
            Put(c.b, (size_t)(p * c.g.n + (c.g.n - 1 - p)), type, 1); /* B anti-diagonal */
        }
        bool wrapped = false;
        Bytes want = Reference(c, &wrapped);
        for (int64_t j = 0; j < c.g.n; j++) {
            const int64_t p = c.g.n - 1 - j;
            ASSERT_EQ(Get(want, (size_t)j, type), 1) << "the reference";
            ASSERT_EQ(Get(want, (size_t)(c.g.n + j), type), type == TSR_BOOL ? p % 2 : p);
            ASSERT_EQ(Get(want, (size_t)(2 * c.g.n + j), type), 0);
        }
        Bytes cpu;
        ASSERT_EQ(RunCpu(c, &cpu), TSR_OK);
        EXPECT_EQ(FirstDifference(c, cpu, want), "") << "CPU kernel, " << Describe(c);
        EXPECT_EQ(FirstDifference(c, Emulate(c), want), "")
            << "emulated CUDA kernel, " << Describe(c);
    }
}

/* The CPU kernel's checks size integer and bool buffers by their element size,
 * and refuse what is not a dtype or a negative offset. */
TEST_F(GemmInt, CpuKernelChecksBuffersByElementSize)
{
    for (int type : kIntTypes) {
        GemmCase c = RandomCase(rng_, type);
        Bytes out;
        ASSERT_EQ(RunCpu(c, &out), TSR_OK) << Describe(c);
        GemmCase short_a = c;
        short_a.a.pop_back();
        EXPECT_EQ(RunCpu(short_a, &out), TSR_EINVAL) << "A a byte short, " << Describe(c);
        GemmCase short_b = c;
        short_b.b.pop_back();
        EXPECT_EQ(RunCpu(short_b, &out), TSR_EINVAL) << "B a byte short, " << Describe(c);
        GemmCase neg = c;
        neg.g.off_a = -1;
        EXPECT_EQ(RunCpu(neg, &out), TSR_EINVAL) << "negative offset, " << Describe(c);
    }
    for (int32_t bad : {-1, TSR_N_DTYPES}) {
        GemmCase c = RandomCase(rng_, TSR_INT64);
        c.g.type = bad;
        Bytes out;
        EXPECT_EQ(RunCpu(c, &out), TSR_EINVAL) << "type " << bad;
    }
}

}  // namespace
