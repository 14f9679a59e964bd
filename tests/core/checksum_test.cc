// The spill files' checksum (core/checksum.c, private to core/): the AVX2 loop and
// the portable one agree, pieces give the one-shot result, and the corruptions a
// disk can make (a flipped bit, blocks moved, a truncated file) all change it.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/checksum.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <vector>

namespace {

using tsr_test::TestSeed;

std::vector<unsigned char> RandomBytes(std::mt19937_64 &rng, size_t n)
{
    std::vector<unsigned char> b(n);
    for (unsigned char &c : b) {
        c = static_cast<unsigned char>(rng());
    }
    return b;
}

uint64_t Portable(const unsigned char *p, size_t n)
{
    tsr__cksum_set_simd(0);
    uint64_t h = tsr__cksum_of(p, n);
    tsr__cksum_set_simd(1);
    return h;
}

TEST(Checksum, SimdAndPortableLoopsAgree)
{
    const uint64_t seed = TestSeed();
    std::mt19937_64 rng(seed);
    std::vector<unsigned char> b = RandomBytes(rng, 70000);
    for (int i = 0; i < 300; i++) {
        size_t off = rng() % 64;
        size_t n = i < 100 ? static_cast<size_t>(i) * 13 : rng() % (b.size() - off);
        ASSERT_EQ(tsr__cksum_of(b.data() + off, n), Portable(b.data() + off, n))
            << "n " << n << " offset " << off << " seed " << seed;
    }
}

TEST(Checksum, PiecesGiveTheOneShotResult)
{
    const uint64_t seed = TestSeed();
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 50; i++) {
        std::vector<unsigned char> b = RandomBytes(rng, 1 + rng() % 300000);
        tsr__cksum c;
        tsr__cksum_init(&c);
        size_t off = 0;
        while (off < b.size()) {
            size_t k = (rng() % 40) * TSR_CKSUM_BLOCK;
            if (k == 0 || off + k > b.size()) {
                k = b.size() - off;  // the last piece: any size
            }
            tsr__cksum_add(&c, b.data() + off, k);
            off += k;
        }
        ASSERT_EQ(tsr__cksum_end(&c), tsr__cksum_of(b.data(), b.size()))
            << "size " << b.size() << " seed " << seed;
    }
}

TEST(Checksum, EveryFlippedBitChangesIt)
{
    const uint64_t seed = TestSeed();
    std::mt19937_64 rng(seed);
    // Three whole blocks and a tail of 8-byte words and bytes.
    std::vector<unsigned char> b = RandomBytes(rng, 3 * TSR_CKSUM_BLOCK + 53);
    for (int simd = 0; simd < 2; simd++) {
        tsr__cksum_set_simd(simd);
        const uint64_t h0 = tsr__cksum_of(b.data(), b.size());
        for (size_t bit = 0; bit < b.size() * 8; bit++) {
            b[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
            uint64_t h = tsr__cksum_of(b.data(), b.size());
            b[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
            ASSERT_NE(h, h0) << "bit " << bit << " simd " << simd << " seed " << seed;
        }
    }
    tsr__cksum_set_simd(1);
}

TEST(Checksum, MovedBlocksZerosAndTruncationChangeIt)
{
    const uint64_t seed = TestSeed();
    std::mt19937_64 rng(seed);
    const size_t n = 64 * TSR_CKSUM_BLOCK;
    std::vector<unsigned char> b = RandomBytes(rng, n);
    std::set<uint64_t> seen = {tsr__cksum_of(b.data(), n)};
    auto expect_new = [&](const std::vector<unsigned char> &v, const char *what) {
        uint64_t h = tsr__cksum_of(v.data(), v.size());
        EXPECT_TRUE(seen.insert(h).second) << what << " gave a checksum seen before, seed " << seed;
    };
    for (size_t unit : {size_t{8}, size_t{64}, size_t{TSR_CKSUM_BLOCK}}) {
        std::vector<unsigned char> v = b;
        size_t i = rng() % (n / unit / 2);
        size_t j = n / unit / 2 + rng() % (n / unit / 2);
        std::swap_ranges(v.begin() + i * unit, v.begin() + (i + 1) * unit, v.begin() + j * unit);
        expect_new(v, "swapping two units");
    }
    std::vector<unsigned char> zeros(n, 0);
    expect_new(zeros, "all zeros");
    zeros[n - 1] = 1;
    expect_new(zeros, "zeros and a one");
    std::vector<unsigned char> cut(b.begin(), b.end() - TSR_CKSUM_BLOCK);
    expect_new(cut, "a block cut off");
    std::vector<unsigned char> grown = b;
    grown.push_back(0);
    expect_new(grown, "a zero byte added");
}

}  // namespace
