// User functions on blocks (tsr_array_map_blocks, tsr_array_map_overlap) against
// host references on fresh random inputs: the blocks a function sees (shape,
// origin, chunk coordinates, halo) and its results, every boundary mode against a
// brute-force reading of the padded array, halos deeper than a chunk, borrowed
// and copied inputs, sim devices, and the error paths.
#include <gtest/gtest.h>
#include <tessera.h>

#include "array/array_util.h"
#include "common/test_util.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using tsr_test::Array;
using tsr_test::Compute;
using tsr_test::Runtime;
using tsr_test::Spec;

int64_t Elements(const int64_t *shape, uint32_t ndim)
{
    int64_t n = 1;
    for (uint32_t d = 0; d < ndim; d++) {
        n *= shape[d];
    }
    return n;
}

// out = x * y * scale + (the element's flat index in the result): checks the
// block's origin and shape against the global layout (the result's shape is the
// argument after the scale).
struct AxpyArg {
    double scale;
    uint32_t ndim;
    int64_t shape[TSR_MAX_DIMS];
};

tsr_status_t AxpyBlock(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const auto *info = static_cast<const tsr_block_info_t *>(arg);
    const auto *a = static_cast<const AxpyArg *>(tsr_block_arg(info));
    if (info->n_in != 2 || info->dtype != TSR_FLOAT64 || info->in_dtype[0] != TSR_FLOAT64 ||
        info->in_dtype[1] != TSR_INT32 || info->arg_size != sizeof(AxpyArg) ||
        info->ndim != a->ndim) {
        tsr_task_ctx_fail(ctx, "AxpyBlock: unexpected block description");
        return TSR_EINVAL;
    }
    for (uint32_t d = 0; d < info->ndim; d++) {
        if (info->in_shape[0][d] != info->shape[d] || info->in_shape[1][d] != info->shape[d] ||
            info->depth[d] != 0) {
            tsr_task_ctx_fail(ctx, "AxpyBlock: input block shape differs from the output's");
            return TSR_EINVAL;
        }
    }
    const auto *x = static_cast<const double *>(bufs[0].ptr);
    const auto *y = static_cast<const int32_t *>(bufs[1].ptr);
    auto *out = static_cast<double *>(bufs[2].ptr);
    int64_t n = Elements(info->shape, info->ndim);
    for (int64_t e = 0; e < n; e++) {
        int64_t rem = e;
        int64_t flat = 0;
        int64_t stride = 1;
        for (int d = static_cast<int>(info->ndim) - 1; d >= 0; d--) {
            int64_t c = rem % info->shape[d];
            rem /= info->shape[d];
            flat += (info->origin[d] + c) * stride;
            stride *= a->shape[d];
        }
        out[e] = x[e] * y[e] * a->scale + static_cast<double>(flat);
    }
    return TSR_OK;
}

TEST(ArrayMap, MapBlocksSeesItsBlocksAndMatchesHost)
{
    Runtime rt = tsr_test::StartRuntime(2, TSR_SCHED_DEFAULT);
    std::mt19937_64 rng(std::random_device{}());
    for (int round = 0; round < 6; round++) {
        uint32_t nd = 1 + static_cast<uint32_t>(rng() % 3);
        std::vector<int64_t> shape(nd), chunks(nd);
        for (uint32_t d = 0; d < nd; d++) {
            shape[d] = 1 + static_cast<int64_t>(rng() % 40);
            chunks[d] = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(shape[d]));
        }
        int64_t n = Elements(shape.data(), nd);
        std::vector<double> xs(static_cast<size_t>(n));
        std::vector<int32_t> ys(static_cast<size_t>(n));
        std::uniform_real_distribution<double> u(-2, 2);
        for (int64_t i = 0; i < n; i++) {
            xs[static_cast<size_t>(i)] = u(rng);
            ys[static_cast<size_t>(i)] = static_cast<int32_t>(rng() % 200) - 100;
        }
        tsr_array_spec_t sx = Spec(TSR_FLOAT64, shape, chunks);
        tsr_array_spec_t sy = Spec(TSR_INT32, shape, chunks);
        Array x = MAKE(tsr_array_from_buffer(rt.get(), &sx, xs.data(), xs.size() * sizeof(double),
                                             round % 2 ? TSR_ARRAY_COPY : 0, &out_));
        Array y0 = MAKE(tsr_array_from_buffer(rt.get(), &sy, ys.data(), ys.size() * sizeof(int32_t),
                                              TSR_ARRAY_COPY, &out_));
        // An expression as an input: y + 0 keeps the values, computed first.
        Array y = MAKE(tsr_array_binary_scalar(TSR_OP_ADD, y0.get(), 0, 0, &out_));

        const double scale = u(rng);
        AxpyArg arg{};
        arg.scale = scale;
        arg.ndim = nd;
        std::copy(shape.begin(), shape.end(), arg.shape);
        tsr_block_fn_t fn = TSR_BLOCK_FN_INIT;
        fn.cpu = AxpyBlock;
        fn.name = "test_axpy";
        fn.arg = &arg;
        fn.arg_size = sizeof(arg);
        tsr_array_t *ins[2] = {x.get(), y.get()};
        Array r = MAKE(tsr_array_map_blocks(&fn, ins, 2, TSR_FLOAT64, &out_));
        arg.scale = 1e9;  // the argument was copied when the map was built
        EXPECT_EQ(tsr_array_num_chunks(r.get(), 0), tsr_array_num_chunks(x.get(), 0));

        // Read by a reduction too: the sum of the result.
        Array total = MAKE(tsr_array_reduce(TSR_REDUCE_SUM, r.get(), nullptr, &out_));
        std::vector<double> got = Compute<double>(r.get());
        std::vector<double> sum = Compute<double>(total.get());
        double want_sum = 0;
        double mag = 0;
        for (int64_t i = 0; i < n; i++) {
            size_t k = static_cast<size_t>(i);
            double want = xs[k] * ys[k] * scale + static_cast<double>(i);
            ASSERT_EQ(got[k], want) << "element " << i << " of round " << round;
            want_sum += want;
            mag += std::fabs(want);
        }
        EXPECT_NEAR(sum[0], want_sum, 1e-12 * mag + 1e-300);
    }
}

// The element of `v` (shape sh) at coordinates c widened beyond the edges by
// `mode`: the definition each boundary rule has (dask / numpy.pad), read directly.
double PaddedAt(const std::vector<double> &v, const std::vector<int64_t> &sh,
                std::vector<int64_t> c, tsr_boundary_t mode, double constant)
{
    int64_t flat = 0;
    for (size_t d = 0; d < sh.size(); d++) {
        int64_t n = sh[d];
        int64_t g = c[d];
        if (g < 0 || g >= n) {
            switch (mode) {
            case TSR_BOUNDARY_CONSTANT:
                return constant;
            case TSR_BOUNDARY_NEAREST:
                g = g < 0 ? 0 : n - 1;
                break;
            case TSR_BOUNDARY_PERIODIC:
                g = ((g % n) + n) % n;
                break;
            case TSR_BOUNDARY_REFLECT:
                g = g < 0 ? -1 - g : 2 * n - 1 - g;
                break;
            }
        }
        flat = flat * n + g;
    }
    return v[static_cast<size_t>(flat)];
}

// A weighted window sum: out[c] = sum over offsets o in [-depth, depth] of
// w(o) * in[c + depth + o], each offset with its own weight, so a misplaced halo
// element changes the result. Offsets in C order, as the reference sums them.
double Weight(const int64_t *o, const int64_t *depth, uint32_t nd)
{
    double w = 1;
    for (uint32_t d = 0; d < nd; d++) {
        w = w * 1.25 + static_cast<double>(o[d] + depth[d] + 1) * 0.5;
    }
    return w;
}

tsr_status_t WindowBlock(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    const auto *info = static_cast<const tsr_block_info_t *>(arg);
    const uint32_t nd = info->ndim;
    const auto *in = static_cast<const double *>(bufs[0].ptr);
    auto *out = static_cast<double *>(bufs[1].ptr);
    int64_t win[TSR_MAX_DIMS];
    int64_t n_win = 1;
    for (uint32_t d = 0; d < nd; d++) {
        if (info->in_shape[0][d] != info->shape[d] + 2 * info->depth[d]) {
            tsr_task_ctx_fail(ctx, "WindowBlock: the input block is not the widened chunk");
            return TSR_EINVAL;
        }
        win[d] = 2 * info->depth[d] + 1;
        n_win *= win[d];
    }
    int64_t n = Elements(info->shape, nd);
    for (int64_t e = 0; e < n; e++) {
        int64_t c[TSR_MAX_DIMS];
        int64_t rem = e;
        for (int d = static_cast<int>(nd) - 1; d >= 0; d--) {
            c[d] = rem % info->shape[d];
            rem /= info->shape[d];
        }
        double acc = 0;
        for (int64_t w = 0; w < n_win; w++) {
            int64_t o[TSR_MAX_DIMS];
            int64_t r = w;
            int64_t flat = 0;
            for (int d = static_cast<int>(nd) - 1; d >= 0; d--) {
                o[d] = r % win[d] - info->depth[d];
                r /= win[d];
            }
            for (uint32_t d = 0; d < nd; d++) {
                flat = flat * info->in_shape[0][d] + c[d] + info->depth[d] + o[d];
            }
            acc += Weight(o, info->depth, nd) * in[flat];
        }
        out[e] = acc;
    }
    return TSR_OK;
}

class ArrayMapOverlap : public testing::TestWithParam<tsr_boundary_t> {};

TEST_P(ArrayMapOverlap, MatchesBruteForcePadding)
{
    const tsr_boundary_t mode = GetParam();
    Runtime rt = tsr_test::StartRuntime(2, TSR_SCHED_DEFAULT);
    std::mt19937_64 rng(std::random_device{}());
    std::uniform_real_distribution<double> u(-1, 1);
    for (int round = 0; round < 8; round++) {
        uint32_t nd = 1 + static_cast<uint32_t>(rng() % 3);
        std::vector<int64_t> shape(nd), chunks(nd), depth(nd);
        for (uint32_t d = 0; d < nd; d++) {
            shape[d] = 1 + static_cast<int64_t>(rng() % (nd == 3 ? 9 : 20));
            chunks[d] = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(shape[d]));
            // Up to the size (beyond a chunk), and beyond it where the mode allows.
            int64_t most =
                shape[d] + (mode == TSR_BOUNDARY_NEAREST || mode == TSR_BOUNDARY_CONSTANT ? 3 : 0);
            depth[d] =
                static_cast<int64_t>(rng() % static_cast<uint64_t>(std::min<int64_t>(most, 4) + 1));
        }
        int64_t n = Elements(shape.data(), nd);
        std::vector<double> xs(static_cast<size_t>(n));
        for (double &v : xs) {
            v = u(rng);
        }
        const double constant = std::round(u(rng) * 8) / 4;
        tsr_array_spec_t sx = Spec(TSR_FLOAT64, shape, chunks);
        // Borrowed (read by global coordinates), copied into chunks, or an expression.
        Array x0 = MAKE(tsr_array_from_buffer(rt.get(), &sx, xs.data(), xs.size() * sizeof(double),
                                              round % 3 == 1 ? TSR_ARRAY_COPY : 0, &out_));
        Array x = round % 3 == 2 ? MAKE(tsr_array_binary_scalar(TSR_OP_MUL, x0.get(), 1, 0, &out_))
                                 : Array(tsr_array_retain(x0.get()));
        tsr_block_fn_t fn = TSR_BLOCK_FN_INIT;
        fn.cpu = WindowBlock;
        Array r = MAKE(
            tsr_array_map_overlap(&fn, x.get(), depth.data(), mode, constant, TSR_FLOAT64, &out_));
        std::vector<double> got = Compute<double>(r.get());

        int64_t n_win = 1;
        std::vector<int64_t> win(nd);
        for (uint32_t d = 0; d < nd; d++) {
            win[d] = 2 * depth[d] + 1;
            n_win *= win[d];
        }
        for (int64_t e = 0; e < n; e++) {
            std::vector<int64_t> c(nd);
            int64_t rem = e;
            for (int d = static_cast<int>(nd) - 1; d >= 0; d--) {
                c[static_cast<size_t>(d)] = rem % shape[static_cast<size_t>(d)];
                rem /= shape[static_cast<size_t>(d)];
            }
            double want = 0;
            for (int64_t w = 0; w < n_win; w++) {
                int64_t o[TSR_MAX_DIMS];
                std::vector<int64_t> g(nd);
                int64_t r2 = w;
                for (int d = static_cast<int>(nd) - 1; d >= 0; d--) {
                    o[d] = r2 % win[static_cast<size_t>(d)] - depth[static_cast<size_t>(d)];
                    r2 /= win[static_cast<size_t>(d)];
                }
                for (uint32_t d = 0; d < nd; d++) {
                    g[d] = c[d] + o[d];
                }
                want += Weight(o, depth.data(), nd) * PaddedAt(xs, shape, g, mode, constant);
            }
            ASSERT_EQ(got[static_cast<size_t>(e)], want)
                << "element " << e << ", round " << round << ", " << nd << "-D";
        }
    }
}

std::string BoundaryName(const testing::TestParamInfo<tsr_boundary_t> &param)
{
    static const char *const names[] = {"Reflect", "Nearest", "Constant", "Periodic"};
    return names[param.param];
}

INSTANTIATE_TEST_SUITE_P(Boundaries, ArrayMapOverlap,
                         testing::Values(TSR_BOUNDARY_REFLECT, TSR_BOUNDARY_NEAREST,
                                         TSR_BOUNDARY_CONSTANT, TSR_BOUNDARY_PERIODIC),
                         BoundaryName);

// Integer data with a constant halo, on sim devices that hold a few chunks: the
// copies and the function run where the scheduler puts them.
tsr_status_t SumNeighbours(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)ctx;
    const auto *info = static_cast<const tsr_block_info_t *>(arg);
    const auto *in = static_cast<const int32_t *>(bufs[0].ptr);
    auto *out = static_cast<int64_t *>(bufs[1].ptr);
    for (int64_t i = 0; i < info->shape[0]; i++) {
        out[i] = static_cast<int64_t>(in[i]) + in[i + 1] + in[i + 2];
    }
    return TSR_OK;
}

TEST(ArrayMap, OverlapOnSimDevicesWithIntegerConstant)
{
    tsr_config_t cfg = TSR_CONFIG_INIT;
    cfg.n_cpu_workers = 1;
    cfg.n_sim_devices = 2;
    cfg.sim_mem_bytes = 64u << 10;
    cfg.n_cuda_devices = -1;
    Runtime rt = tsr_test::StartRuntime(cfg);
    std::mt19937_64 rng(std::random_device{}());
    const int64_t n = 20000;
    std::vector<int32_t> xs(n);
    for (int32_t &v : xs) {
        v = static_cast<int32_t>(rng() % 2000001) - 1000000;
    }
    tsr_array_spec_t s = Spec(TSR_INT32, {n}, {1024});
    Array x = MAKE(tsr_array_from_buffer(rt.get(), &s, xs.data(), xs.size() * sizeof(int32_t),
                                         TSR_ARRAY_COPY, &out_));
    tsr_block_fn_t fn = TSR_BLOCK_FN_INIT;
    fn.cpu = SumNeighbours;
    const int64_t depth[1] = {1};
    Array r = MAKE(
        tsr_array_map_overlap(&fn, x.get(), depth, TSR_BOUNDARY_CONSTANT, -7, TSR_INT64, &out_));
    std::vector<int64_t> got = Compute<int64_t>(r.get());
    for (int64_t i = 0; i < n; i++) {
        int64_t l = i > 0 ? xs[static_cast<size_t>(i - 1)] : -7;
        int64_t c = xs[static_cast<size_t>(i)];
        int64_t rr = i + 1 < n ? xs[static_cast<size_t>(i + 1)] : -7;
        ASSERT_EQ(got[static_cast<size_t>(i)], l + c + rr) << i;
    }
}

tsr_status_t Fails(tsr_task_ctx_t *ctx, const tsr_buffer_t *bufs, const void *arg)
{
    (void)bufs;
    (void)arg;
    tsr_task_ctx_fail(ctx, "the user's function refused this block");
    return TSR_EINVAL;
}

TEST(ArrayMap, ErrorsAreClear)
{
    Runtime rt = tsr_test::StartRuntime(2, TSR_SCHED_DEFAULT);
    tsr_array_t *out = nullptr;
    tsr_array_spec_t s = Spec(TSR_UINT8, {6, 5}, {2, 5});
    tsr_array_spec_t s2 = Spec(TSR_UINT8, {6, 4}, {3, 4});
    Array a = MAKE(tsr_array_zeros(rt.get(), &s, &out_));
    Array b = MAKE(tsr_array_zeros(rt.get(), &s2, &out_));
    tsr_block_fn_t none = TSR_BLOCK_FN_INIT;
    tsr_block_fn_t fn = TSR_BLOCK_FN_INIT;
    fn.cpu = Fails;
    tsr_array_t *ab[2] = {a.get(), b.get()};
    tsr_array_t *aa[1] = {a.get()};

    EXPECT_EQ(tsr_array_map_blocks(&none, aa, 1, TSR_UINT8, &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("implementation"), std::string::npos);
    EXPECT_EQ(tsr_array_map_blocks(nullptr, aa, 1, TSR_UINT8, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_map_blocks(&fn, aa, 0, TSR_UINT8, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_map_blocks(&fn, aa, TSR_MAP_MAX_INPUTS + 1, TSR_UINT8, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_map_blocks(&fn, ab, 2, TSR_UINT8, &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("another shape"), std::string::npos);
    EXPECT_EQ(tsr_array_map_blocks(&fn, aa, 1, static_cast<tsr_dtype_t>(77), &out), TSR_EINVAL);
    tsr_block_fn_t big = fn;
    big.arg_size = 16;
    EXPECT_EQ(tsr_array_map_blocks(&big, aa, 1, TSR_UINT8, &out), TSR_EINVAL) << "NULL arg";

    const int64_t neg[2] = {-1, 0};
    const int64_t deep[2] = {7, 0};
    const int64_t ok[2] = {1, 1};
    EXPECT_EQ(tsr_array_map_overlap(&fn, a.get(), neg, TSR_BOUNDARY_NEAREST, 0, TSR_UINT8, &out),
              TSR_EINVAL);
    EXPECT_EQ(tsr_array_map_overlap(&fn, a.get(), deep, TSR_BOUNDARY_REFLECT, 0, TSR_UINT8, &out),
              TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("depth 7"), std::string::npos);
    EXPECT_EQ(tsr_array_map_overlap(&fn, a.get(), deep, TSR_BOUNDARY_PERIODIC, 0, TSR_UINT8, &out),
              TSR_EINVAL);
    EXPECT_EQ(tsr_array_map_overlap(&fn, a.get(), ok, TSR_BOUNDARY_CONSTANT, 300, TSR_UINT8, &out),
              TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("uint8"), std::string::npos);
    EXPECT_EQ(tsr_array_map_overlap(&fn, a.get(), ok, TSR_BOUNDARY_CONSTANT, 1.5, TSR_UINT8, &out),
              TSR_EINVAL);
    EXPECT_EQ(
        tsr_array_map_overlap(&fn, a.get(), ok, static_cast<tsr_boundary_t>(9), 0, TSR_UINT8, &out),
        TSR_EINVAL);
    EXPECT_EQ(
        tsr_array_map_overlap(&fn, a.get(), nullptr, TSR_BOUNDARY_NEAREST, 0, TSR_UINT8, &out),
        TSR_EINVAL);
    EXPECT_EQ(out, nullptr);

    // A function that fails fails the compute, with its message.
    Array r =
        MAKE(tsr_array_map_overlap(&fn, a.get(), ok, TSR_BOUNDARY_NEAREST, 0, TSR_UINT8, &out_));
    std::vector<uint8_t> buf(30);
    EXPECT_NE(tsr_array_compute(r.get(), buf.data(), buf.size()), TSR_OK);
    EXPECT_NE(std::string(tsr_last_error()).find("refused this block"), std::string::npos)
        << tsr_last_error();
}

}  // namespace
