// Element types and shape broadcasting (include/tessera/array.h): promotion against a
// brute-force oracle (the smallest type that holds every value of both), broadcasting
// against NumPy's documented cases and random shapes, and the error paths.
#include <gtest/gtest.h>
#include <tessera.h>

#include "common/test_util.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

const tsr_dtype_t kAll[] = {TSR_BOOL,  TSR_UINT8,   TSR_UINT16, TSR_INT32,
                            TSR_INT64, TSR_FLOAT32, TSR_FLOAT64};

// What a type can hold exactly: integers in [lo, hi] (floats: up to 2^mantissa).
struct Range {
    bool is_float;
    bool is_bool;
    double lo;
    double hi;
    int mantissa;  // floats: bits of exact integers
};

Range RangeOf(tsr_dtype_t t)
{
    switch (t) {
    case TSR_BOOL:
        return {false, true, 0, 1, 0};
    case TSR_UINT8:
        return {false, false, 0, 255, 0};
    case TSR_UINT16:
        return {false, false, 0, 65535, 0};
    case TSR_INT32:
        return {false, false, -2147483648.0, 2147483647.0, 0};
    case TSR_INT64:
        return {false, false, -9223372036854775808.0, 9223372036854775807.0, 0};
    case TSR_FLOAT32:
        return {true, false, 0, 0, 24};
    case TSR_FLOAT64:
        return {true, false, 0, 0, 53};
    }
    return {};
}

// Whether every value of `from` is a value of `to`.
bool Holds(tsr_dtype_t to, tsr_dtype_t from)
{
    Range t = RangeOf(to);
    Range f = RangeOf(from);
    if (f.is_bool) {
        return true;
    }
    if (t.is_bool) {
        return false;
    }
    if (f.is_float) {
        return t.is_float && t.mantissa >= f.mantissa;
    }
    if (t.is_float) {
        return std::max(std::fabs(f.lo), f.hi) <= std::ldexp(1.0, t.mantissa);
    }
    return t.lo <= f.lo && f.hi <= t.hi;
}

// The smallest type (by size, then integers before floats) holding both; float64
// when none does (int64 with a float), as NumPy.
tsr_dtype_t OraclePromote(tsr_dtype_t a, tsr_dtype_t b)
{
    tsr_dtype_t best = TSR_FLOAT64;
    bool found = false;
    for (tsr_dtype_t t : kAll) {
        if (!Holds(t, a) || !Holds(t, b)) {
            continue;
        }
        if (!found || tsr_dtype_size(t) < tsr_dtype_size(best)) {
            best = t;
            found = true;
        }
    }
    return best;
}

TEST(Dtype, SizesAndNames)
{
    const size_t sizes[] = {1, 1, 2, 4, 8, 4, 8};
    const char *names[] = {"bool", "uint8", "uint16", "int32", "int64", "float32", "float64"};
    for (int i = 0; i < TSR_N_DTYPES; i++) {
        EXPECT_EQ(tsr_dtype_size(kAll[i]), sizes[i]);
        EXPECT_STREQ(tsr_dtype_name(kAll[i]), names[i]);
    }
    EXPECT_EQ(tsr_dtype_size(static_cast<tsr_dtype_t>(7)), 0u);
    EXPECT_STREQ(tsr_dtype_name(static_cast<tsr_dtype_t>(-1)), "?");
}

TEST(Dtype, PromotionIsTheSmallestTypeHoldingBoth)
{
    for (tsr_dtype_t a : kAll) {
        for (tsr_dtype_t b : kAll) {
            tsr_dtype_t got = TSR_BOOL;
            ASSERT_EQ(tsr_dtype_promote(a, b, &got), TSR_OK);
            EXPECT_EQ(got, OraclePromote(a, b))
                << tsr_dtype_name(a) << " with " << tsr_dtype_name(b) << " gave "
                << tsr_dtype_name(got);
        }
    }
    // NumPy's result_type, spelled out for the cases users trip on.
    tsr_dtype_t t;
    ASSERT_EQ(tsr_dtype_promote(TSR_INT32, TSR_FLOAT32, &t), TSR_OK);
    EXPECT_EQ(t, TSR_FLOAT64);
    ASSERT_EQ(tsr_dtype_promote(TSR_UINT16, TSR_FLOAT32, &t), TSR_OK);
    EXPECT_EQ(t, TSR_FLOAT32);
    ASSERT_EQ(tsr_dtype_promote(TSR_UINT8, TSR_INT32, &t), TSR_OK);
    EXPECT_EQ(t, TSR_INT32);
    ASSERT_EQ(tsr_dtype_promote(TSR_BOOL, TSR_BOOL, &t), TSR_OK);
    EXPECT_EQ(t, TSR_BOOL);
}

TEST(Dtype, PromotionRejectsBadTypes)
{
    tsr_dtype_t t;
    EXPECT_EQ(tsr_dtype_promote(static_cast<tsr_dtype_t>(9), TSR_INT32, &t), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("not a tsr_dtype_t"), std::string::npos);
    EXPECT_EQ(tsr_dtype_promote(TSR_INT32, TSR_INT32, nullptr), TSR_EINVAL);
}

std::vector<int64_t> Broadcast(std::vector<int64_t> a, std::vector<int64_t> b, tsr_status_t *st)
{
    uint32_t n = 0;
    int64_t out[TSR_MAX_DIMS];
    *st = tsr_broadcast_shapes(static_cast<uint32_t>(a.size()), a.data(),
                               static_cast<uint32_t>(b.size()), b.data(), &n, out);
    return *st == TSR_OK ? std::vector<int64_t>(out, out + n) : std::vector<int64_t>{};
}

TEST(Broadcast, NumpyDocumentedCases)
{
    tsr_status_t st;
    EXPECT_EQ(Broadcast({256, 256, 3}, {3}, &st), (std::vector<int64_t>{256, 256, 3}));
    EXPECT_EQ(Broadcast({8, 1, 6, 1}, {7, 1, 5}, &st), (std::vector<int64_t>{8, 7, 6, 5}));
    EXPECT_EQ(Broadcast({5, 4}, {1}, &st), (std::vector<int64_t>{5, 4}));
    EXPECT_EQ(Broadcast({15, 3, 5}, {15, 1, 5}, &st), (std::vector<int64_t>{15, 3, 5}));
    EXPECT_EQ(Broadcast({}, {2, 3}, &st), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(Broadcast({0, 3}, {1, 3}, &st), (std::vector<int64_t>{0, 3}));
    Broadcast({3}, {4}, &st);
    EXPECT_EQ(st, TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("sizes 3 and 4"), std::string::npos)
        << tsr_last_error();
    Broadcast({2, 1}, {8, 4, 3}, &st);
    EXPECT_EQ(st, TSR_EINVAL);
}

// Random pairs made by stretching a common shape: each result size is the shape's,
// and replacing any size of either input by a different non-1 size is an error.
TEST(Broadcast, RandomShapes)
{
    const uint64_t seed = tsr_test::TestSeed();
    std::mt19937_64 rng(seed);
    for (int iter = 0; iter < 2000; iter++) {
        uint32_t n = 1 + rng() % TSR_MAX_DIMS;
        std::vector<int64_t> full(n);
        for (auto &s : full) {
            s = 2 + static_cast<int64_t>(rng() % 5);
        }
        auto make = [&](uint32_t drop) {
            std::vector<int64_t> s(full.begin() + drop, full.end());
            for (auto &x : s) {
                if (rng() % 3 == 0) {
                    x = 1;
                }
            }
            return s;
        };
        std::vector<int64_t> a = make(static_cast<uint32_t>(rng() % n));
        std::vector<int64_t> b = make(0);
        tsr_status_t st;
        std::vector<int64_t> got = Broadcast(a, b, &st);
        ASSERT_EQ(st, TSR_OK) << tsr_test::SeedTrace(seed);
        for (uint32_t i = 0; i < n; i++) {
            int64_t want = 1;
            for (const auto *s : {&a, &b}) {
                size_t off = n - s->size();
                if (i >= off && (*s)[i - off] != 1) {
                    want = (*s)[i - off];
                }
            }
            ASSERT_EQ(got[i], want) << "dim " << i << ", " << tsr_test::SeedTrace(seed);
        }
        // Break one non-1 size of b: no longer broadcastable with a where a has it.
        size_t off = n - a.size();
        for (size_t i = 0; i < a.size(); i++) {
            if (a[i] != 1 && b[off + i] != 1) {
                std::vector<int64_t> bad = b;
                bad[off + i] = a[i] + 1;
                Broadcast(a, bad, &st);
                ASSERT_EQ(st, TSR_EINVAL) << tsr_test::SeedTrace(seed);
                break;
            }
        }
    }
    tsr_status_t st;
    std::vector<int64_t> nine(TSR_MAX_DIMS + 1, 2);
    Broadcast(nine, {2}, &st);
    EXPECT_EQ(st, TSR_EINVAL);
}

}  // namespace
