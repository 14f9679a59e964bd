// Chunked arrays (include/tessera/array.h) beyond the NumPy oracle: generators
// against direct formulas and across chunkings, large tree reductions against a
// float64 sequential sum, expressions too large for one kernel, persist and
// reference counting, out-of-core reductions on a small sim device, and the error
// paths.
#include <gtest/gtest.h>
#include <tessera.h>

#include "array/array_util.h"
#include "common/test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using tsr_test::Array;
using tsr_test::Compute;
using tsr_test::Runtime;
using tsr_test::Spec;


Runtime Cpu2()
{
    return tsr_test::StartRuntime(2, TSR_SCHED_DEFAULT);
}

TEST(ArrayGen, RandomDependsOnlyOnSeedAndIndex)
{
    Runtime rt = Cpu2();
    tsr_array_spec_t s1 = Spec(TSR_FLOAT64, {301, 77}, {64, 20});
    tsr_array_spec_t s2 = Spec(TSR_FLOAT64, {301, 77}, {301, 7});
    for (int normal = 0; normal < 2; normal++) {
        Array a = normal ? MAKE(tsr_array_random_normal(rt.get(), &s1, 42, 0, 1, &out_))
                         : MAKE(tsr_array_random_uniform(rt.get(), &s1, 42, -2, 3, &out_));
        Array b = normal ? MAKE(tsr_array_random_normal(rt.get(), &s2, 42, 0, 1, &out_))
                         : MAKE(tsr_array_random_uniform(rt.get(), &s2, 42, -2, 3, &out_));
        Array c = normal ? MAKE(tsr_array_random_normal(rt.get(), &s2, 43, 0, 1, &out_))
                         : MAKE(tsr_array_random_uniform(rt.get(), &s2, 43, -2, 3, &out_));
        std::vector<double> va = Compute<double>(a.get());
        std::vector<double> vb = Compute<double>(b.get());
        std::vector<double> vc = Compute<double>(c.get());
        EXPECT_EQ(0, std::memcmp(va.data(), vb.data(), va.size() * sizeof(double)));
        size_t same = 0;
        double sum = 0;
        double sq = 0;
        for (size_t i = 0; i < va.size(); i++) {
            same += va[i] == vc[i];
            sum += va[i];
            sq += va[i] * va[i];
            if (!normal) {
                ASSERT_GE(va[i], -2.0);
                ASSERT_LT(va[i], 3.0);
            }
        }
        EXPECT_EQ(same, 0u) << "another seed gives other values";
        double n = static_cast<double>(va.size());
        double mean = sum / n;
        double var = sq / n - mean * mean;
        // 23177 samples: the mean's standard error is sd / 152.
        EXPECT_NEAR(mean, normal ? 0.0 : 0.5, 0.05);
        EXPECT_NEAR(var, normal ? 1.0 : 25.0 / 12.0, normal ? 0.05 : 0.1);
    }
}

TEST(ArrayGen, ArangeLinspaceFullMatchFormulas)
{
    Runtime rt = Cpu2();
    Array a = MAKE(tsr_array_arange(rt.get(), TSR_INT64, 5, 2000, 3, 100, &out_));
    ASSERT_EQ(tsr_array_size(a.get()), (2000 - 5 + 2) / 3);
    std::vector<int64_t> va = Compute<int64_t>(a.get());
    for (size_t i = 0; i < va.size(); i++) {
        ASSERT_EQ(va[i], 5 + 3 * static_cast<int64_t>(i));
    }
    Array l = MAKE(tsr_array_linspace(rt.get(), TSR_FLOAT32, -1, 1, 1001, 64, &out_));
    std::vector<float> vl = Compute<float>(l.get());
    for (size_t i = 0; i < vl.size(); i++) {
        ASSERT_NEAR(vl[i], -1.0 + 2.0 * static_cast<double>(i) / 1000.0, 1e-6);
    }
    tsr_array_spec_t s = Spec(TSR_UINT16, {33, 5}, {8, 2});
    Array f = MAKE(tsr_array_full(rt.get(), &s, 65535.0, &out_));
    for (uint16_t v : Compute<uint16_t>(f.get())) {
        ASSERT_EQ(v, 65535);
    }
    Array z = MAKE(tsr_array_zeros(rt.get(), &s, &out_));
    Array o = MAKE(tsr_array_ones(rt.get(), &s, &out_));
    Array zo = MAKE(tsr_array_binary(TSR_OP_ADD, z.get(), o.get(), &out_));
    for (uint16_t v : Compute<uint16_t>(zo.get())) {
        ASSERT_EQ(v, 1);
    }
}

// Sums of a million values through trees of every fan-in, against a float64
// sequential sum (compensated) of the same values.
TEST(ArrayReduce, LargeTreesMatchSequentialSum)
{
    Runtime rt = Cpu2();
    std::mt19937_64 rng(tsr_test::TestSeed());
    std::normal_distribution<double> dist(3.0, 10.0);
    const int64_t n0 = 1000;
    const int64_t n1 = 1000;
    std::vector<double> host(static_cast<size_t>(n0 * n1));
    for (double &v : host) {
        v = dist(rng);
    }
    tsr_array_spec_t s = Spec(TSR_FLOAT64, {n0, n1}, {37, 333});
    Array x = MAKE(tsr_array_from_buffer(rt.get(), &s, host.data(), host.size() * 8,
                                         TSR_ARRAY_COPY, &out_));
    for (uint32_t fan : {2u, 3u, 8u, 15u}) {
        tsr_reduce_opts_t o = TSR_REDUCE_OPTS_INIT;
        o.split_every = fan;
        Array total = MAKE(tsr_array_reduce(TSR_REDUCE_SUM, x.get(), &o, &out_));
        double got = Compute<double>(total.get())[0];
        double sum = 0, c = 0;
        for (double v : host) {
            double y = v - c;
            double t = sum + y;
            c = (t - sum) - y;
            sum = t;
        }
        EXPECT_NEAR(got, sum, 1e-9 * 1e7) << "split_every " << fan;
        o.n_axes = 1;
        o.axes[0] = 0;
        Array cols = MAKE(tsr_array_reduce(TSR_REDUCE_VAR, x.get(), &o, &out_));
        std::vector<double> vc = Compute<double>(cols.get());
        ASSERT_EQ(vc.size(), static_cast<size_t>(n1));
        for (int64_t j = 0; j < n1; j += 97) {
            double m = 0, m2 = 0;
            for (int64_t i = 0; i < n0; i++) {
                m += host[i * n1 + j];
            }
            m /= n0;
            for (int64_t i = 0; i < n0; i++) {
                m2 += (host[i * n1 + j] - m) * (host[i * n1 + j] - m);
            }
            EXPECT_NEAR(vc[j], m2 / n0, 1e-9 * m2 / n0) << "column " << j;
        }
    }
}

// min and max along long rows (the CPU folds them in lanes), with a NaN at a
// random place in some rows, against a host scan: the extreme, or NaN when the
// row has one.
template <class T>
void CheckRowExtremes(tsr_runtime_t *rt, tsr_dtype_t dtype, uint64_t seed)
{
    const int64_t rows = 24;
    const int64_t cols = 3001;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> dist(-1e6, 1e6);
    std::vector<T> host(rows * cols);
    for (T &v : host) {
        v = static_cast<T>(dist(rng));
    }
    for (int64_t r = 0; r < rows; r += 3) {
        if (std::numeric_limits<T>::has_quiet_NaN) {
            host[r * cols + static_cast<int64_t>(rng() % cols)] = std::numeric_limits<T>::quiet_NaN();
        }
    }
    tsr_array_spec_t s = Spec(dtype, {rows, cols}, {5, cols});
    Array x = MAKE(tsr_array_from_buffer(rt, &s, host.data(), host.size() * sizeof(T),
                                         TSR_ARRAY_COPY, &out_));
    tsr_reduce_opts_t o = TSR_REDUCE_OPTS_INIT;
    o.n_axes = 1;
    o.axes[0] = 1;
    for (tsr_reduce_op_t op : {TSR_REDUCE_MIN, TSR_REDUCE_MAX}) {
        Array r = MAKE(tsr_array_reduce(op, x.get(), &o, &out_));
        std::vector<T> got = Compute<T>(r.get());
        for (int64_t i = 0; i < rows; i++) {
            T want = host[i * cols];
            bool nan = false;
            for (int64_t j = 0; j < cols; j++) {
                T v = host[i * cols + j];
                nan = nan || v != v;
                want = op == TSR_REDUCE_MIN ? std::min(want, v) : std::max(want, v);
            }
            if (nan) {
                EXPECT_NE(got[i], got[i]) << "row " << i << " has a NaN, op " << op;
            } else {
                EXPECT_EQ(got[i], want) << "row " << i << ", op " << op;
            }
        }
    }
}

TEST(ArrayReduce, RowExtremesMatchAScanWithNaN)
{
    Runtime rt = Cpu2();
    uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    CheckRowExtremes<float>(rt.get(), TSR_FLOAT32, seed);
    CheckRowExtremes<double>(rt.get(), TSR_FLOAT64, seed);
    CheckRowExtremes<int32_t>(rt.get(), TSR_INT32, seed);
}

// Sums and means of x + x.T and x.T - x (x of shape (n, m, n) with its axes
// reversed, so that the operands lie in memory in different orders), float32 and
// float64, along random axes with and without keepdims, against float64 sums on
// the host.
TEST(ArrayReduce, SumsOfATransposeMatchAFloat64Reference)
{
    Runtime rt = Cpu2();
    std::mt19937_64 rng(tsr_test::TestSeed());
    for (int rep = 0; rep < 24; rep++) {
        const bool f32 = rep % 2 == 0;
        const int64_t n = 20 + (int64_t)(rng() % 60);
        const int64_t m = 1 + (int64_t)(rng() % 5);
        const int64_t c = 5 + (int64_t)(rng() % 30);
        const bool sub = rng() % 2 == 0;
        const bool mean = rng() % 2 == 0;
        std::vector<double> host((size_t)(n * n * m));
        for (double &v : host) {
            v = (double)(int64_t)(rng() % 2001 - 1000) / 64.0; /* exact in float32 */
        }
        std::vector<float> host32(host.begin(), host.end());
        tsr_array_spec_t s = Spec(f32 ? TSR_FLOAT32 : TSR_FLOAT64, {n, m, n}, {c, 2, c});
        Array x = MAKE(tsr_array_from_buffer(
            rt.get(), &s, f32 ? (void *)host32.data() : (void *)host.data(),
            host.size() * (f32 ? 4 : 8), TSR_ARRAY_COPY, &out_));
        const int32_t axes[3] = {2, 1, 0};
        Array xt = MAKE(tsr_array_transpose(x.get(), axes, &out_));
        Array e = MAKE(tsr_array_binary(sub ? TSR_OP_SUB : TSR_OP_ADD, sub ? xt.get() : x.get(),
                                        sub ? x.get() : xt.get(), &out_));
        tsr_reduce_opts_t o = TSR_REDUCE_OPTS_INIT;
        const uint32_t mask = (uint32_t)(rng() % 8); /* 0: every axis */
        for (int32_t d = 0; d < 3; d++) {
            if ((mask >> d) & 1u) {
                o.axes[o.n_axes++] = d;
            }
        }
        o.keepdims = rng() % 2 == 0;
        Array r = MAKE(tsr_array_reduce(mean ? TSR_REDUCE_MEAN : TSR_REDUCE_SUM, e.get(), &o,
                                        &out_));
        /* The reference: e[i][j][k] summed over the reduced axes, in float64. */
        const uint32_t red = mask == 0 ? 7u : mask;
        const int64_t dims[3] = {n, m, n};
        int64_t count = 1;
        int64_t ostride[3];
        int64_t s_out = 1;
        for (int d = 2; d >= 0; d--) {
            const bool reduced = (red >> d) & 1u;
            count *= reduced ? dims[d] : 1;
            ostride[d] = reduced ? 0 : s_out;
            s_out *= reduced ? 1 : dims[d];
        }
        std::vector<double> want((size_t)s_out, 0.0);
        for (int64_t i = 0; i < n; i++) {
            for (int64_t k = 0; k < m; k++) {
                for (int64_t j = 0; j < n; j++) {
                    double a = host[(size_t)((i * m + k) * n + j)];
                    double b = host[(size_t)((j * m + k) * n + i)]; /* xt[i][k][j] */
                    want[(size_t)(i * ostride[0] + k * ostride[1] + j * ostride[2])] +=
                        sub ? b - a : a + b;
                }
            }
        }
        ASSERT_EQ(tsr_array_size(r.get()), s_out) << "rep " << rep;
        std::vector<double> got((size_t)s_out);
        if (f32) {
            std::vector<float> g = Compute<float>(r.get());
            got.assign(g.begin(), g.end());
        } else {
            got = Compute<double>(r.get());
        }
        for (size_t q = 0; q < want.size(); q++) {
            const double w = mean ? want[q] / (double)count : want[q];
            const double tol = (f32 ? 1e-5 : 1e-12) * std::max(1.0, std::fabs(w) + (double)count);
            ASSERT_NEAR(got[q], w, tol) << "rep " << rep << (f32 ? " float32" : " float64")
                                        << (sub ? " xt - x" : " x + xt")
                                        << (mean ? " mean" : " sum") << " mask " << mask
                                        << " element " << q;
        }
    }
}

// Twenty inputs and a long chain: more leaves and instructions than one kernel
// holds, so compute materialises part of it first.
TEST(ArrayFuse, ExpressionLargerThanOneKernelIsSplit)
{
    Runtime rt = Cpu2();
    const int64_t n = 5000;
    std::vector<std::vector<float>> in(20, std::vector<float>(n));
    std::vector<Array> arrays;
    std::mt19937 rng(tsr_test::TestSeed());
    std::uniform_real_distribution<float> dist(-1, 1);
    tsr_array_spec_t s = Spec(TSR_FLOAT32, {n}, {700});
    Array acc = MAKE(tsr_array_zeros(rt.get(), &s, &out_));
    std::vector<double> ref(n, 0.0);
    for (size_t k = 0; k < in.size(); k++) {
        for (float &v : in[k]) {
            v = dist(rng);
        }
        arrays.push_back(MAKE(tsr_array_from_buffer(rt.get(), &s, in[k].data(), n * 4,
                                                    TSR_ARRAY_BORROW, &out_)));
        for (int rep = 0; rep < 6; rep++) {
            Array t = MAKE(tsr_array_binary(TSR_OP_MUL, acc.get(), arrays.back().get(), &out_));
            acc = MAKE(tsr_array_binary_scalar(TSR_OP_ADD, t.get(), 0.5, 0, &out_));
            for (int64_t i = 0; i < n; i++) {
                ref[i] = static_cast<float>(static_cast<float>(ref[i] * in[k][i]) + 0.5f);
            }
        }
    }
    std::vector<float> got = Compute<float>(acc.get());
    for (int64_t i = 0; i < n; i++) {
        ASSERT_EQ(got[i], static_cast<float>(ref[i])) << "at " << i;
    }
}

// Float programs of several loads that are gathered rather than read in place
// (transposes, and chunks of one element): (x.T + y.T) * z.T - w.T and the same
// of x, y, z, w in chunks that leave single elements, in float32 and float64,
// against the host.
template <class T>
void CheckGatheredLoads(tsr_runtime_t *rt, tsr_dtype_t dtype, uint64_t seed)
{
    const int64_t n = 67;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> dist(-2, 2);
    std::vector<std::vector<T>> host(4, std::vector<T>(n * n));
    std::vector<Array> in;
    std::vector<Array> tr;
    for (int64_t chunk : {n, int64_t{33}, int64_t{66}}) {
        in.clear();
        tr.clear();
        tsr_array_spec_t s = Spec(dtype, {n, n}, {chunk, chunk});
        for (auto &h : host) {
            for (T &v : h) {
                v = static_cast<T>(dist(rng));
            }
            in.push_back(MAKE(tsr_array_from_buffer(rt, &s, h.data(), h.size() * sizeof(T),
                                                    TSR_ARRAY_COPY, &out_)));
            tr.push_back(MAKE(tsr_array_transpose(in.back().get(), nullptr, &out_)));
        }
        for (const std::vector<Array> *ops : {&tr, &in}) {
            const bool t = ops == &tr;
            Array s01 = MAKE(tsr_array_binary(TSR_OP_ADD, (*ops)[0].get(), (*ops)[1].get(), &out_));
            Array p = MAKE(tsr_array_binary(TSR_OP_MUL, s01.get(), (*ops)[2].get(), &out_));
            Array r = MAKE(tsr_array_binary(TSR_OP_SUB, p.get(), (*ops)[3].get(), &out_));
            std::vector<T> got = Compute<T>(r.get());
            for (int64_t i = 0; i < n; i++) {
                for (int64_t j = 0; j < n; j++) {
                    int64_t k = t ? j * n + i : i * n + j;
                    T want = static_cast<T>(static_cast<T>(host[0][k] + host[1][k]) * host[2][k]) -
                             host[3][k];
                    ASSERT_EQ(got[i * n + j], want) << (t ? "transposed" : "direct") << " chunks "
                                                    << chunk << " at " << i << "," << j;
                }
            }
        }
    }
}

TEST(ArrayFuse, GatheredLoadsKeepTheirValues)
{
    Runtime rt = Cpu2();
    uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    CheckGatheredLoads<float>(rt.get(), TSR_FLOAT32, seed);
    CheckGatheredLoads<double>(rt.get(), TSR_FLOAT64, seed);
}

TEST(ArrayPersist, KeepsValuesAfterInputsAreReleased)
{
    Runtime rt = Cpu2();
    tsr_array_spec_t s = Spec(TSR_FLOAT64, {40, 30}, {16, 16});
    Array x = MAKE(tsr_array_random_uniform(rt.get(), &s, 7, 0, 1, &out_));
    std::vector<double> vx = Compute<double>(x.get());
    Array xt = MAKE(tsr_array_transpose(x.get(), nullptr, &out_));
    Array y = MAKE(tsr_array_unary(TSR_OP_SQRT, xt.get(), &out_));
    x.reset();
    xt.reset();
    ASSERT_EQ(tsr_array_persist(y.get()), TSR_OK) << tsr_last_error();
    std::vector<double> vy = Compute<double>(y.get());
    for (int64_t i = 0; i < 30; i++) {
        for (int64_t j = 0; j < 40; j++) {
            ASSERT_EQ(vy[i * 40 + j], std::sqrt(vx[j * 30 + i]));
        }
    }
    tsr_reduce_opts_t o = TSR_REDUCE_OPTS_INIT;
    o.n_axes = 1;
    o.axes[0] = -1;
    o.keepdims = 1;
    Array m = MAKE(tsr_array_reduce(TSR_REDUCE_MAX, y.get(), &o, &out_));
    Array centred = MAKE(tsr_array_binary(TSR_OP_SUB, y.get(), m.get(), &out_));
    std::vector<double> vc = Compute<double>(centred.get());
    for (int64_t i = 0; i < 30; i++) {
        double mx = -1;
        for (int64_t j = 0; j < 40; j++) {
            mx = std::max(mx, vy[i * 40 + j]);
        }
        for (int64_t j = 0; j < 40; j++) {
            ASSERT_EQ(vc[i * 40 + j], vy[i * 40 + j] - mx);
        }
    }
}

// 16 MiB of float64 through a sim device holding 1 MiB: the reduction and the
// elementwise result stream through it, evicting as they go.
TEST(ArraySim, OutOfCoreOnSmallDevice)
{
    tsr_config_t cfg = tsr_test::TestConfig(2, TSR_SCHED_DMDA);
    cfg.n_sim_devices = 2;
    cfg.sim_mem_bytes = 1u << 20;
    Runtime rt = tsr_test::StartRuntime(cfg);
    ASSERT_TRUE(rt);
    tsr_array_spec_t s = Spec(TSR_FLOAT64, {2048, 1024}, {128, 256});
    Array x = MAKE(tsr_array_random_normal(rt.get(), &s, 3, 1, 2, &out_));
    ASSERT_EQ(tsr_array_persist(x.get()), TSR_OK) << tsr_last_error();
    std::vector<double> vx = Compute<double>(x.get());
    Array y = MAKE(tsr_array_binary(TSR_OP_MUL, x.get(), x.get(), &out_));
    Array m = MAKE(tsr_array_reduce(TSR_REDUCE_MEAN, y.get(), nullptr, &out_));
    double got = Compute<double>(m.get())[0];
    double ref = 0;
    for (double v : vx) {
        ref += v * v;
    }
    ref /= static_cast<double>(vx.size());
    EXPECT_NEAR(got, ref, 1e-12 * ref);
    EXPECT_NEAR(ref, 5.0, 0.05); // E[x^2] = var + mean^2 = 4 + 1
    // The sim devices did part of the work, and had to give memory back for it.
    uint64_t d2h = 0;
    uint64_t evicted = 0;
    for (uint32_t i = 0; i < tsr_runtime_n_devices(rt.get()); i++) {
        tsr_device_info_t info;
        tsr_copy_stats_t cs;
        tsr_mem_stats_t ms;
        ASSERT_EQ(tsr_runtime_device_info(rt.get(), i, &info), TSR_OK);
        if (info.kind != TSR_DEVICE_SIM) {
            continue;
        }
        ASSERT_EQ(tsr_runtime_copy_stats(rt.get(), info.mem_node, 0, &cs), TSR_OK);
        ASSERT_EQ(tsr_runtime_mem_stats(rt.get(), info.mem_node, &ms), TSR_OK);
        d2h += cs.n_bytes;
        evicted += ms.n_evicted + ms.n_evicted_ahead;
    }
    EXPECT_GT(d2h, 0u);
    EXPECT_GT(evicted, 0u);
}

TEST(ArrayErrors, ClearMessagesNoCrash)
{
    Runtime rt = Cpu2();
    tsr_array_t *out = nullptr;
    tsr_array_spec_t s34 = Spec(TSR_FLOAT32, {3, 4}, {2, 2});
    tsr_array_spec_t s35 = Spec(TSR_FLOAT32, {3, 5}, {2, 2});
    Array a = MAKE(tsr_array_zeros(rt.get(), &s34, &out_));
    Array b = MAKE(tsr_array_zeros(rt.get(), &s35, &out_));

    EXPECT_EQ(tsr_array_binary(TSR_OP_ADD, a.get(), b.get(), &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("broadcast"), std::string::npos) << tsr_last_error();
    EXPECT_EQ(tsr_array_binary(TSR_OP_ADD, a.get(), nullptr, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_binary(static_cast<tsr_binop_t>(99), a.get(), a.get(), &out), TSR_EINVAL);

    tsr_array_spec_t sb = Spec(TSR_BOOL, {3}, {2});
    Array t = MAKE(tsr_array_ones(rt.get(), &sb, &out_));
    EXPECT_EQ(tsr_array_binary(TSR_OP_SUB, t.get(), t.get(), &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_unary(TSR_OP_NEG, t.get(), &out), TSR_EINVAL);
    tsr_array_spec_t su8 = Spec(TSR_UINT8, {3}, {2});
    Array u = MAKE(tsr_array_ones(rt.get(), &su8, &out_));
    EXPECT_EQ(tsr_array_binary_scalar(TSR_OP_ADD, u.get(), 300, 0, &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("out of range"), std::string::npos);

    tsr_reduce_opts_t o = TSR_REDUCE_OPTS_INIT;
    o.n_axes = 1;
    o.axes[0] = 2;
    EXPECT_EQ(tsr_array_reduce(TSR_REDUCE_SUM, a.get(), &o, &out), TSR_EINVAL);
    o.n_axes = 2;
    o.axes[0] = 1;
    o.axes[1] = -1;
    EXPECT_EQ(tsr_array_reduce(TSR_REDUCE_SUM, a.get(), &o, &out), TSR_EINVAL);
    o.axes[1] = 0;
    EXPECT_EQ(tsr_array_reduce(TSR_REDUCE_ARGMIN, a.get(), &o, &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("one axis"), std::string::npos);
    o.n_axes = 0;
    o.split_every = 1;
    EXPECT_EQ(tsr_array_reduce(TSR_REDUCE_SUM, a.get(), &o, &out), TSR_EINVAL);

    int32_t bad_perm[2] = {0, 0};
    EXPECT_EQ(tsr_array_transpose(a.get(), bad_perm, &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("permutation"), std::string::npos);

    std::vector<float> buf(12);
    EXPECT_EQ(tsr_array_compute(a.get(), buf.data(), 11 * sizeof(float)), TSR_EINVAL);
    EXPECT_EQ(tsr_array_compute(a.get(), nullptr, 12 * sizeof(float)), TSR_EINVAL);
    EXPECT_EQ(tsr_array_from_buffer(rt.get(), &s34, buf.data(), 13 * sizeof(float),
                                    TSR_ARRAY_COPY, &out),
              TSR_EINVAL);
    tsr_array_spec_t negative = Spec(TSR_FLOAT32, {3, -1}, {});
    EXPECT_EQ(tsr_array_zeros(rt.get(), &negative, &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("size -1"), std::string::npos);
    tsr_array_spec_t many = Spec(TSR_FLOAT32, {}, {});
    many.ndim = TSR_MAX_DIMS + 1;
    EXPECT_EQ(tsr_array_zeros(rt.get(), &many, &out), TSR_EINVAL);
    tsr_array_spec_t bad_type = Spec(static_cast<tsr_dtype_t>(42), {3}, {});
    EXPECT_EQ(tsr_array_zeros(rt.get(), &bad_type, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_arange(rt.get(), TSR_INT32, 0, 10, 0, 0, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_arange(rt.get(), TSR_INT32, 0, NAN, 1, 0, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_persist(nullptr), TSR_EINVAL);
    tsr_array_release(nullptr);
    EXPECT_EQ(out, nullptr) << "outputs are written only on success";
}

// A reshape keeps each chunk's bytes: of a persisted array, of an expression, and
// read by a reduction, against the same reshape of a host copy; and chunkings that
// do not allow it are refused with the rechunk that would.
TEST(ArrayStructure, ReshapeMatchesHostAndRefusesSplitRuns)
{
    Runtime rt = Cpu2();
    std::mt19937_64 rng(std::random_device{}());
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<double> host(6 * 8 * 10);
    for (double &v : host) {
        v = u(rng);
    }
    tsr_array_spec_t s = Spec(TSR_FLOAT64, {6, 8, 10}, {2, 1, 10});
    Array x = MAKE(tsr_array_from_buffer(rt.get(), &s, host.data(), host.size() * sizeof(double),
                                         TSR_ARRAY_COPY, &out_));
    ASSERT_EQ(tsr_array_persist(x.get()), TSR_OK) << tsr_last_error();

    // (6, 8, 10) -> (6, 80) -> (3, 2, 4, 20): chunks of 1 along 8 and whole 10s merge.
    const int64_t s2[2] = {6, 80};
    Array y = MAKE(tsr_array_reshape(x.get(), 2, s2, &out_));
    EXPECT_EQ(tsr_array_num_chunks(y.get(), 1), 8);
    const int64_t s4[4] = {3, 2, 4, -1};
    Array z = MAKE(tsr_array_reshape(y.get(), 4, s4, &out_));
    EXPECT_EQ(tsr_array_dim(z.get(), 3), 20);
    std::vector<double> got = Compute<double>(z.get());
    EXPECT_EQ(got, host) << "a reshape keeps the C-order elements";

    // An expression reshaped, then summed over the new last axis.
    Array sq = MAKE(tsr_array_binary(TSR_OP_MUL, x.get(), x.get(), &out_));
    Array r = MAKE(tsr_array_reshape(sq.get(), 2, s2, &out_));
    tsr_reduce_opts_t o = TSR_REDUCE_OPTS_INIT;
    o.n_axes = 1;
    o.axes[0] = 1;
    Array sum = MAKE(tsr_array_reduce(TSR_REDUCE_SUM, r.get(), &o, &out_));
    std::vector<double> sums = Compute<double>(sum.get());
    ASSERT_EQ(sums.size(), 6u);
    for (size_t i = 0; i < 6; i++) {
        double want = 0;
        for (size_t j = 0; j < 80; j++) {
            want += host[i * 80 + j] * host[i * 80 + j];
        }
        EXPECT_NEAR(sums[i], want, 1e-12 * 80) << i;
    }

    tsr_array_t *out = nullptr;
    tsr_array_spec_t s3 = Spec(TSR_INT32, {4, 6}, {2, 3});
    Array w = MAKE(tsr_array_zeros(rt.get(), &s3, &out_));
    const int64_t flat[1] = {24};
    EXPECT_EQ(tsr_array_reshape(w.get(), 1, flat, &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("rechunk dimension 1"), std::string::npos)
        << tsr_last_error();
    const int64_t bad[2] = {5, 5};
    EXPECT_EQ(tsr_array_reshape(w.get(), 2, bad, &out), TSR_EINVAL);
    const int64_t two_infer[2] = {-1, -1};
    EXPECT_EQ(tsr_array_reshape(w.get(), 2, two_infer, &out), TSR_EINVAL);
    const int64_t zero[2] = {0, 24};
    EXPECT_EQ(tsr_array_reshape(w.get(), 2, zero, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_reshape(w.get(), 2, nullptr, &out), TSR_EINVAL);
    // (4, 6) in (2, 3) -> (4, 2, 3): 6 splits into 2 x 3, chunks of 3 are rows.
    const int64_t split[3] = {4, 2, 3};
    Array v = MAKE(tsr_array_reshape(w.get(), 3, split, &out_));
    EXPECT_EQ(tsr_array_num_chunks(v.get(), 1), 2);
    // (4, 6) in (2, 3) -> (4, 3, 2): a chunk of 3 would straddle rows of 2.
    const int64_t straddle[3] = {4, 3, 2};
    EXPECT_EQ(tsr_array_reshape(w.get(), 3, straddle, &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("multiples of"), std::string::npos)
        << tsr_last_error();

    Array m = MAKE(tsr_array_zeros(rt.get(), &s3, &out_));
    EXPECT_EQ(tsr_array_tensordot(m.get(), m.get(), 2, 0, &out), TSR_EINVAL);
    // Integer operands contract too, as numpy.tensordot: m @ m.T, int32 zeros.
    Array mm = MAKE(tsr_array_tensordot(m.get(), m.get(), 1, 1, &out_));
    EXPECT_EQ(tsr_array_dtype(mm.get()), TSR_INT32);
    EXPECT_EQ(Compute<int32_t>(mm.get()), std::vector<int32_t>(16, 0));
    EXPECT_EQ(tsr_array_tensordot(x.get(), m.get(), 1, 1, &out), TSR_EINVAL) << "3-D operand";
    EXPECT_EQ(out, nullptr);
}

// Integer and bool operands of matmul and tensordot, promoted together: each
// element against a brute-force triple loop in uint64 truncated to the result's
// width (NumPy's wrapping integer matmul), or an OR of ANDs for bool @ bool. Full-
// range values, so sums of uint8 and int32 wrap; chunks that leave uneven edges.
uint64_t RandomElement(std::mt19937_64 &rng, tsr_dtype_t t)
{
    return t == TSR_BOOL ? rng() % 2 : rng() % 4 == 0 ? rng() % 5 : rng();
}

// Element e of a C-order buffer of dtype t, as the value it converts to in a
// wider integer type (signed types sign-extended).
int64_t ElementAt(const std::vector<unsigned char> &buf, size_t e, tsr_dtype_t t)
{
    const size_t es = tsr_dtype_size(t);
    uint64_t u = 0;
    std::memcpy(&u, buf.data() + e * es, es);
    if (t == TSR_INT32) {
        return (int32_t)(uint32_t)u;
    }
    return (int64_t)u;
}

TEST(ArrayMatmul, IntegerAndBoolProductsWrapLikeNumpy)
{
    Runtime rt = Cpu2();
    const uint64_t seed = tsr_test::TestSeed();
    std::mt19937_64 rng(seed);
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    const tsr_dtype_t pairs[][2] = {
        {TSR_BOOL, TSR_BOOL},   {TSR_UINT8, TSR_UINT8}, {TSR_UINT16, TSR_UINT16},
        {TSR_INT32, TSR_INT32}, {TSR_INT64, TSR_INT64}, {TSR_INT32, TSR_INT64},
        {TSR_BOOL, TSR_UINT8},  {TSR_UINT8, TSR_INT32}, {TSR_UINT16, TSR_BOOL}};
    size_t n_wrapped[TSR_N_DTYPES] = {0}; /* elements whose exact sum left the range */
    for (const auto &pair : pairs) {
        for (int dot = 0; dot < 2; dot++) {
            const int64_t m = 1 + (int64_t)(rng() % 40), k = 1 + (int64_t)(rng() % 40);
            const int64_t n = 1 + (int64_t)(rng() % 40);
            const int64_t cm = 1 + (int64_t)(rng() % (uint64_t)m);
            const int64_t ck = 1 + (int64_t)(rng() % (uint64_t)k);
            const int64_t cn = 1 + (int64_t)(rng() % (uint64_t)n);
            tsr_dtype_t t;
            ASSERT_EQ(tsr_dtype_promote(pair[0], pair[1], &t), TSR_OK);
            // With dot, a is stored as (k, m) and b as (n, k), contracted over
            // a's axis 0 and b's axis -1.
            tsr_array_spec_t sa =
                dot ? Spec(pair[0], {k, m}, {ck, cm}) : Spec(pair[0], {m, k}, {cm, ck});
            tsr_array_spec_t sb =
                dot ? Spec(pair[1], {n, k}, {cn, ck}) : Spec(pair[1], {k, n}, {ck, cn});
            std::vector<unsigned char> ha((size_t)(m * k) * tsr_dtype_size(pair[0]));
            std::vector<unsigned char> hb((size_t)(k * n) * tsr_dtype_size(pair[1]));
            for (size_t e = 0; e < (size_t)(m * k); e++) {
                uint64_t v = RandomElement(rng, pair[0]);
                std::memcpy(ha.data() + e * tsr_dtype_size(pair[0]), &v, tsr_dtype_size(pair[0]));
            }
            for (size_t e = 0; e < (size_t)(k * n); e++) {
                uint64_t v = RandomElement(rng, pair[1]);
                std::memcpy(hb.data() + e * tsr_dtype_size(pair[1]), &v, tsr_dtype_size(pair[1]));
            }
            Array a = MAKE(
                tsr_array_from_buffer(rt.get(), &sa, ha.data(), ha.size(), TSR_ARRAY_COPY, &out_));
            Array b = MAKE(
                tsr_array_from_buffer(rt.get(), &sb, hb.data(), hb.size(), TSR_ARRAY_COPY, &out_));
            Array c = dot ? MAKE(tsr_array_tensordot(a.get(), b.get(), 0, -1, &out_))
                          : MAKE(tsr_array_matmul(a.get(), b.get(), &out_));
            ASSERT_TRUE(c) << tsr_dtype_name(pair[0]) << " @ " << tsr_dtype_name(pair[1]);
            ASSERT_EQ(tsr_array_dtype(c.get()), t);
            const size_t es = tsr_dtype_size(t);
            std::vector<unsigned char> got((size_t)(m * n) * es);
            ASSERT_EQ(tsr_array_compute(c.get(), got.data(), got.size()), TSR_OK)
                << tsr_last_error();
            const bool is_signed = t == TSR_INT32 || t == TSR_INT64;
            const double hi = std::ldexp(1.0, (int)es * 8 - (is_signed ? 1 : 0));
            for (int64_t i = 0; i < m; i++) {
                for (int64_t j = 0; j < n; j++) {
                    uint64_t acc = 0;
                    double exact = 0;
                    bool any = false;
                    for (int64_t p = 0; p < k; p++) {
                        const int64_t x =
                            ElementAt(ha, (size_t)(dot ? p * m + i : i * k + p), pair[0]);
                        const int64_t y =
                            ElementAt(hb, (size_t)(dot ? j * k + p : p * n + j), pair[1]);
                        acc += (uint64_t)x * (uint64_t)y;
                        exact += (double)x * (double)y;
                        any = any || (x != 0 && y != 0);
                    }
                    uint64_t want = t == TSR_BOOL ? (uint64_t)any : acc;
                    uint64_t g = 0;
                    std::memcpy(&g, got.data() + (size_t)(i * n + j) * es, es);
                    if (es < 8) {
                        want &= (UINT64_C(1) << (es * 8)) - 1;
                    }
                    n_wrapped[t] += exact >= hi || exact < (is_signed ? -hi : 0.0);
                    ASSERT_EQ(g, want)
                        << tsr_dtype_name(pair[0]) << " @ " << tsr_dtype_name(pair[1])
                        << (dot ? " tensordot" : " matmul") << " (" << m << ", " << k << ", " << n
                        << ") chunks (" << cm << ", " << ck << ", " << cn << ") element (" << i
                        << ", " << j << ")";
                }
            }
        }
    }
    EXPECT_GT(n_wrapped[TSR_UINT8], 0u) << "no uint8 sum wrapped: the test checks too little";
    EXPECT_GT(n_wrapped[TSR_INT32], 0u) << "no int32 sum wrapped: the test checks too little";
}

} // namespace
