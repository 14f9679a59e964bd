// Operands chunked differently (elementwise ops, matmul, map_blocks, concatenate),
// which Tessera unifies, and empty arrays (a dimension of size 0), against host
// computations on fresh random inputs.
#include <gtest/gtest.h>
#include <tessera.h>

#include "array/array_util.h"
#include "common/test_util.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <unistd.h>
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

std::vector<double> RandomValues(std::mt19937_64 &rng, size_t n)
{
    std::uniform_real_distribution<double> dist(-4.0, 4.0);
    std::vector<double> v(n);
    for (double &x : v) {
        x = dist(rng);
    }
    return v;
}

Array FromHost(tsr_runtime_t *rt, std::vector<double> &host, std::vector<int64_t> shape,
               std::vector<int64_t> chunks)
{
    tsr_array_spec_t s = Spec(TSR_FLOAT64, shape, chunks);
    return MAKE(tsr_array_from_buffer(rt, &s, host.data(), host.size() * sizeof(double),
                                      TSR_ARRAY_COPY, &out_));
}

// The chunk boundaries of dimension d of a.
std::vector<int64_t> Bounds(const tsr_array_t *a, uint32_t d)
{
    std::vector<int64_t> b{0};
    for (int64_t i = 0; i < tsr_array_num_chunks(a, d); i++) {
        b.push_back(b.back() + tsr_array_chunk_size(a, d, i));
    }
    return b;
}

// Every boundary of both, sorted.
std::vector<int64_t> Merged(const std::vector<int64_t> &x, const std::vector<int64_t> &y)
{
    std::set<int64_t> s(x.begin(), x.end());
    s.insert(y.begin(), y.end());
    return std::vector<int64_t>(s.begin(), s.end());
}

// a * b + c with a (n0, n1) and b (n0, n1) in unrelated chunks and c (n1,)
// broadcast in chunks of its own: the result has both operands' boundaries and
// equals the host's values; its column sums too.
TEST(ArrayChunks, DifferentlyChunkedOperandsAreUnified)
{
    Runtime rt = Cpu2();
    uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    for (int round = 0; round < 6; round++) {
        const int64_t n0 = 1 + static_cast<int64_t>(rng() % 60);
        const int64_t n1 = 1 + static_cast<int64_t>(rng() % 60);
        auto chunk = [&](int64_t n) { return 1 + static_cast<int64_t>(rng() % n); };
        std::vector<double> ha = RandomValues(rng, n0 * n1);
        std::vector<double> hb = RandomValues(rng, n0 * n1);
        std::vector<double> hc = RandomValues(rng, n1);
        Array a = FromHost(rt.get(), ha, {n0, n1}, {chunk(n0), chunk(n1)});
        Array b = FromHost(rt.get(), hb, {n0, n1}, {chunk(n0), chunk(n1)});
        Array c = FromHost(rt.get(), hc, {n1}, {chunk(n1)});
        Array ab = MAKE(tsr_array_binary(TSR_OP_MUL, a.get(), b.get(), &out_));
        Array r = MAKE(tsr_array_binary(TSR_OP_ADD, ab.get(), c.get(), &out_));
        ASSERT_NE(r, nullptr);
        EXPECT_EQ(Bounds(r.get(), 0), Merged(Bounds(a.get(), 0), Bounds(b.get(), 0)));
        EXPECT_EQ(Bounds(r.get(), 1),
                  Merged(Merged(Bounds(a.get(), 1), Bounds(b.get(), 1)), Bounds(c.get(), 0)));
        std::vector<double> got = Compute<double>(r.get());
        std::vector<double> want_sums(n1, 0.0);
        for (int64_t i = 0; i < n0; i++) {
            for (int64_t j = 0; j < n1; j++) {
                double want = ha[i * n1 + j] * hb[i * n1 + j] + hc[j];
                want_sums[j] += want;
                ASSERT_EQ(got[i * n1 + j], want) << "round " << round << " at " << i << "," << j;
            }
        }
        tsr_reduce_opts_t o = TSR_REDUCE_OPTS_INIT;
        o.n_axes = 1;
        o.axes[0] = 0;
        Array sums = MAKE(tsr_array_reduce(TSR_REDUCE_SUM, r.get(), &o, &out_));
        std::vector<double> gs = Compute<double>(sums.get());
        for (int64_t j = 0; j < n1; j++) {
            EXPECT_NEAR(gs[j], want_sums[j], 1e-12 * 32 * n0) << "round " << round;
        }
    }
}

// a @ b where a's chunks along k and b's along k differ (and tensordot of the
// transposes), against a float64 triple loop.
TEST(ArrayChunks, MatmulSumsOverMismatchedInnerChunks)
{
    Runtime rt = Cpu2();
    uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    for (int round = 0; round < 5; round++) {
        const int64_t m = 1 + static_cast<int64_t>(rng() % 50);
        const int64_t k = 1 + static_cast<int64_t>(rng() % 80);
        const int64_t n = 1 + static_cast<int64_t>(rng() % 50);
        auto chunk = [&](int64_t x) { return 1 + static_cast<int64_t>(rng() % x); };
        std::vector<double> ha = RandomValues(rng, m * k);
        std::vector<double> hb = RandomValues(rng, k * n);
        Array a = FromHost(rt.get(), ha, {m, k}, {chunk(m), chunk(k)});
        Array b = FromHost(rt.get(), hb, {k, n}, {chunk(k), chunk(n)});
        Array p = MAKE(tsr_array_matmul(a.get(), b.get(), &out_));
        ASSERT_NE(p, nullptr);
        std::vector<double> got = Compute<double>(p.get());
        for (int64_t i = 0; i < m; i++) {
            for (int64_t j = 0; j < n; j++) {
                double want = 0;
                double scale = 0;
                for (int64_t q = 0; q < k; q++) {
                    want += ha[i * k + q] * hb[q * n + j];
                    scale += std::fabs(ha[i * k + q] * hb[q * n + j]);
                }
                ASSERT_NEAR(got[i * n + j], want, 1e-14 * (k + 4) * scale)
                    << "round " << round << " (" << m << "x" << k << ")@(" << k << "x" << n
                    << ") at " << i << "," << j;
            }
        }
    }
}

// x - y for each block, checking that the blocks line up.
tsr_status_t SubtractBlocks(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const auto *info = static_cast<const tsr_block_info_t *>(arg);
    int64_t n = 1;
    for (uint32_t d = 0; d < info->ndim; d++) {
        if (info->in_shape[0][d] != info->shape[d] || info->in_shape[1][d] != info->shape[d]) {
            tsr_task_ctx_fail(ctx, "SubtractBlocks: the input blocks differ from the output's");
            return TSR_EINVAL;
        }
        n *= info->shape[d];
    }
    const auto *x = static_cast<const double *>(bufs[0].ptr);
    const auto *y = static_cast<const double *>(bufs[1].ptr);
    auto *out = static_cast<double *>(bufs[2].ptr);
    for (int64_t i = 0; i < n; i++) {
        out[i] = x[i] - y[i];
    }
    return TSR_OK;
}

// map_blocks over two inputs chunked differently gets blocks that line up, and
// concatenate joins arrays chunked differently across its axis.
TEST(ArrayChunks, MapBlocksAndConcatenateUnifyTheirInputs)
{
    Runtime rt = Cpu2();
    uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    const int64_t n0 = 37;
    const int64_t n1 = 23;
    std::vector<double> hx = RandomValues(rng, n0 * n1);
    std::vector<double> hy = RandomValues(rng, n0 * n1);
    std::vector<double> hz = RandomValues(rng, 5 * n1);
    Array x = FromHost(rt.get(), hx, {n0, n1}, {10, 7});
    Array y = FromHost(rt.get(), hy, {n0, n1}, {6, 23});
    Array z = FromHost(rt.get(), hz, {5, n1}, {5, 4});

    tsr_block_fn_t fn = TSR_BLOCK_FN_INIT;
    fn.cpu = SubtractBlocks;
    tsr_array_t *xy[2] = {x.get(), y.get()};
    Array d = MAKE(tsr_array_map_blocks(&fn, xy, 2, TSR_FLOAT64, &out_));
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(Bounds(d.get(), 0), Merged(Bounds(x.get(), 0), Bounds(y.get(), 0)));
    std::vector<double> got = Compute<double>(d.get());
    for (size_t i = 0; i < got.size(); i++) {
        ASSERT_EQ(got[i], hx[i] - hy[i]) << "element " << i;
    }

    tsr_array_t *parts[3] = {x.get(), z.get(), y.get()};
    Array cat = MAKE(tsr_array_concatenate(parts, 3, 0, &out_));
    ASSERT_NE(cat, nullptr);
    EXPECT_EQ(Bounds(cat.get(), 1),
              Merged(Merged(Bounds(x.get(), 1), Bounds(y.get(), 1)), Bounds(z.get(), 1)));
    std::vector<double> want(hx);
    want.insert(want.end(), hz.begin(), hz.end());
    want.insert(want.end(), hy.begin(), hy.end());
    EXPECT_EQ(Compute<double>(cat.get()), want);
}

// Empty arrays are made, computed (with or without a buffer), persisted, sliced,
// reshaped, stored and loaded, and run no task.
TEST(ArrayEmpty, BehaveAsNumpysEmptyArrays)
{
    Runtime rt = Cpu2();
    tsr_array_t *out = nullptr;
    tsr_array_spec_t s = Spec(TSR_FLOAT32, {4, 0, 3}, {2, 0, 2});
    Array z = MAKE(tsr_array_zeros(rt.get(), &s, &out_));
    EXPECT_EQ(tsr_array_size(z.get()), 0);
    EXPECT_EQ(tsr_array_num_chunks(z.get(), 1), 0);
    EXPECT_EQ(tsr_array_compute(z.get(), nullptr, 0), TSR_OK) << tsr_last_error();
    EXPECT_EQ(tsr_array_compute(z.get(), nullptr, 4), TSR_EINVAL);
    EXPECT_EQ(tsr_array_persist(z.get()), TSR_OK) << tsr_last_error();
    Array e = MAKE(tsr_array_binary_scalar(TSR_OP_ADD, z.get(), 1.0, 0, &out_));
    EXPECT_EQ(tsr_array_compute(e.get(), nullptr, 0), TSR_OK) << tsr_last_error();

    Array b = MAKE(tsr_array_from_buffer(rt.get(), &s, nullptr, 0, TSR_ARRAY_BORROW, &out_));
    EXPECT_EQ(tsr_array_compute(b.get(), nullptr, 0), TSR_OK);
    Array r = MAKE(tsr_array_arange(rt.get(), TSR_INT32, 5, 5, 1, 0, &out_));
    EXPECT_EQ(tsr_array_dim(r.get(), 0), 0);
    Array l = MAKE(tsr_array_linspace(rt.get(), TSR_FLOAT64, 0, 1, 0, 0, &out_));
    EXPECT_EQ(tsr_array_dim(l.get(), 0), 0);
    EXPECT_EQ(tsr_array_linspace(rt.get(), TSR_FLOAT64, 0, 1, -1, 0, &out), TSR_EINVAL);

    // An empty slice of a full array; a reshape of an empty one.
    tsr_array_spec_t s2 = Spec(TSR_FLOAT64, {6, 5}, {4, 2});
    Array x = MAKE(tsr_array_ones(rt.get(), &s2, &out_));
    tsr_slice_t sl[2] = {{3, 3, 1, 0}, {TSR_SLICE_NONE, TSR_SLICE_NONE, 1, 0}};
    Array v = MAKE(tsr_array_slice(x.get(), 2, sl, &out_));
    EXPECT_EQ(tsr_array_dim(v.get(), 0), 0);
    EXPECT_EQ(tsr_array_dim(v.get(), 1), 5);
    const int64_t to[3] = {5, 0, 1};
    Array rs = MAKE(tsr_array_reshape(v.get(), 3, to, &out_));
    EXPECT_EQ(tsr_array_size(rs.get()), 0);
    EXPECT_EQ(tsr_array_dim(rs.get(), 0), 5);
    const int64_t ambiguous[2] = {-1, 0};
    EXPECT_EQ(tsr_array_reshape(v.get(), 2, ambiguous, &out), TSR_EINVAL);

    // Stored and loaded as .npy.
    char path[] = "/tmp/tsr_empty_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    EXPECT_EQ(tsr_array_to_npy(v.get(), path), TSR_OK) << tsr_last_error();
    Array back = MAKE(tsr_array_from_npy(rt.get(), path, nullptr, &out_));
    ASSERT_NE(back, nullptr);
    EXPECT_EQ(tsr_array_ndim(back.get()), 2u);
    EXPECT_EQ(tsr_array_dim(back.get(), 0), 0);
    EXPECT_EQ(tsr_array_dim(back.get(), 1), 5);
    unlink(path);
    EXPECT_EQ(out, nullptr) << "outputs are written only on success";
}

// Reductions of an empty array: over an empty axis each op's identity (NumPy's),
// min/max/argmin/argmax refused; over the other axes an empty result. A product
// over an empty inner dimension is zeros; an empty part adds nothing to a
// concatenation.
TEST(ArrayEmpty, ReductionsProductsAndConcatenations)
{
    Runtime rt = Cpu2();
    tsr_array_t *out = nullptr;
    tsr_array_spec_t s = Spec(TSR_INT32, {0, 3}, {});
    Array z = MAKE(tsr_array_zeros(rt.get(), &s, &out_));
    tsr_reduce_opts_t o = TSR_REDUCE_OPTS_INIT;
    o.n_axes = 1;
    o.axes[0] = 0;
    struct {
        tsr_reduce_op_t op;
        double want;
    } cases[] = {{TSR_REDUCE_SUM, 0},  {TSR_REDUCE_PROD, 1}, {TSR_REDUCE_ANY, 0},
                 {TSR_REDUCE_ALL, 1},  {TSR_REDUCE_MEAN, NAN}, {TSR_REDUCE_VAR, NAN},
                 {TSR_REDUCE_STD, NAN}};
    for (const auto &c : cases) {
        Array r = MAKE(tsr_array_reduce(c.op, z.get(), &o, &out_));
        ASSERT_NE(r, nullptr);
        ASSERT_EQ(tsr_array_size(r.get()), 3);
        Array f = MAKE(tsr_array_cast(r.get(), TSR_FLOAT64, &out_));
        for (double v : Compute<double>(f.get())) {
            if (std::isnan(c.want)) {
                EXPECT_TRUE(std::isnan(v)) << "op " << c.op;
            } else {
                EXPECT_EQ(v, c.want) << "op " << c.op;
            }
        }
    }
    for (tsr_reduce_op_t op :
         {TSR_REDUCE_MIN, TSR_REDUCE_MAX, TSR_REDUCE_ARGMIN, TSR_REDUCE_ARGMAX}) {
        EXPECT_EQ(tsr_array_reduce(op, z.get(), &o, &out), TSR_EINVAL) << "op " << op;
        EXPECT_NE(std::string(tsr_last_error()).find("empty"), std::string::npos);
    }
    o.axes[0] = 1;
    Array m = MAKE(tsr_array_reduce(TSR_REDUCE_MIN, z.get(), &o, &out_));
    EXPECT_EQ(tsr_array_size(m.get()), 0) << "the min of each of no rows";
    // As NumPy: an empty axis has no min even when the result is empty too.
    tsr_array_spec_t s00 = Spec(TSR_INT32, {0, 0}, {});
    Array z00 = MAKE(tsr_array_zeros(rt.get(), &s00, &out_));
    EXPECT_EQ(tsr_array_reduce(TSR_REDUCE_MAX, z00.get(), &o, &out), TSR_EINVAL);
    Array s00_sum = MAKE(tsr_array_reduce(TSR_REDUCE_SUM, z00.get(), &o, &out_));
    EXPECT_EQ(tsr_array_size(s00_sum.get()), 0);

    // (4 x 0) @ (0 x 3) is a 4 x 3 matrix of zeros.
    tsr_array_spec_t sa = Spec(TSR_FLOAT64, {4, 0}, {});
    tsr_array_spec_t sb = Spec(TSR_FLOAT64, {0, 3}, {});
    Array a = MAKE(tsr_array_ones(rt.get(), &sa, &out_));
    Array b = MAKE(tsr_array_ones(rt.get(), &sb, &out_));
    Array p = MAKE(tsr_array_matmul(a.get(), b.get(), &out_));
    EXPECT_EQ(Compute<double>(p.get()), std::vector<double>(12, 0.0));

    // [x, empty, x] along 0.
    std::mt19937_64 rng(tsr_test::TestSeed());
    std::vector<double> hx = RandomValues(rng, 2 * 3);
    tsr_array_spec_t sx = Spec(TSR_FLOAT64, {2, 3}, {1, 2});
    Array x = MAKE(tsr_array_from_buffer(rt.get(), &sx, hx.data(), hx.size() * 8, TSR_ARRAY_COPY,
                                         &out_));
    tsr_array_spec_t se = Spec(TSR_FLOAT64, {0, 3}, {});
    Array none = MAKE(tsr_array_zeros(rt.get(), &se, &out_));
    tsr_array_t *parts[3] = {x.get(), none.get(), x.get()};
    Array cat = MAKE(tsr_array_concatenate(parts, 3, 0, &out_));
    std::vector<double> want(hx);
    want.insert(want.end(), hx.begin(), hx.end());
    EXPECT_EQ(Compute<double>(cat.get()), want);
    EXPECT_EQ(out, nullptr);
}

}  // namespace
