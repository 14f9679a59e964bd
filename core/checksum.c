/* The spill files' checksum (see checksum.h): a portable loop and an AVX2 one
 * that give the same result, chosen at run time. */
#include "core/checksum.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CKSUM_X86 1
#else
#define CKSUM_X86 0
#endif

#define STRIPE 64
#define STRIPES_PER_BLOCK (TSR_CKSUM_BLOCK / STRIPE)
#define K1 0x9e3779b185ebca87ull
#define K2 0xc2b2ae3d27d4eb4full

/* The lanes' first keys (fractional digits of pi). */
static const uint64_t key0[8] = {
    0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull, 0x082efa98ec4e6c89ull,
    0x452821e638d01377ull, 0xbe5466cf34e90c6cull, 0xc0ac29b7c97c50ddull, 0x3f84d5b5b5470917ull,
};

static atomic_int simd_off;

static void scramble(uint64_t acc[8])
{
    for (int j = 0; j < 8; j++) {
        acc[j] = (acc[j] ^ (acc[j] >> 29)) * K2;
    }
}

/* n_blocks whole blocks at p; `stripe` is the index of p's first stripe. */
static void blocks_portable(uint64_t acc[8], const unsigned char *p, size_t n_blocks,
                            uint64_t stripe)
{
    uint64_t key[8];

    for (int j = 0; j < 8; j++) {
        key[j] = key0[j] + stripe * K1;
    }
    for (size_t b = 0; b < n_blocks; b++) {
        for (int s = 0; s < STRIPES_PER_BLOCK; s++, p += STRIPE) {
            uint64_t v[8];

            memcpy(v, p, sizeof(v));
            for (int j = 0; j < 8; j++) {
                uint64_t x = v[j] ^ key[j];

                acc[j] += (x & 0xffffffffu) * (x >> 32) + v[j ^ 4];
                key[j] += K1;
            }
        }
        scramble(acc);
    }
}

#if CKSUM_X86
/* a + lo(x) * hi(x) + partner, per 64-bit lane. */
__attribute__((target("avx2"))) static inline __m256i lane_avx2(__m256i a, __m256i x,
                                                                __m256i partner)
{
    return _mm256_add_epi64(
        a, _mm256_add_epi64(_mm256_mul_epu32(x, _mm256_srli_epi64(x, 32)), partner));
}

__attribute__((target("avx2"))) static void blocks_avx2(uint64_t acc[8], const unsigned char *p,
                                                        size_t n_blocks, uint64_t stripe)
{
    const __m256i step = _mm256_set1_epi64x((long long)K1);
    const __m256i first = _mm256_set1_epi64x((long long)(stripe * K1));
    __m256i k0 = _mm256_add_epi64(_mm256_loadu_si256((const void *)key0), first);
    __m256i k1 = _mm256_add_epi64(_mm256_loadu_si256((const void *)(key0 + 4)), first);

    for (size_t b = 0; b < n_blocks; b++) {
        __m256i a0 = _mm256_loadu_si256((const void *)acc);
        __m256i a1 = _mm256_loadu_si256((const void *)(acc + 4));

        for (int s = 0; s < STRIPES_PER_BLOCK; s++, p += STRIPE) {
            __m256i v0 = _mm256_loadu_si256((const void *)p);
            __m256i v1 = _mm256_loadu_si256((const void *)(p + 32));

            a0 = lane_avx2(a0, _mm256_xor_si256(v0, k0), v1);
            a1 = lane_avx2(a1, _mm256_xor_si256(v1, k1), v0);
            k0 = _mm256_add_epi64(k0, step);
            k1 = _mm256_add_epi64(k1, step);
        }
        _mm256_storeu_si256((void *)acc, a0);
        _mm256_storeu_si256((void *)(acc + 4), a1);
        scramble(acc);
    }
}
#endif

static void blocks(uint64_t acc[8], const unsigned char *p, size_t n_blocks, uint64_t stripe)
{
#if CKSUM_X86
    if (!atomic_load_explicit(&simd_off, memory_order_relaxed) && __builtin_cpu_supports("avx2")) {
        blocks_avx2(acc, p, n_blocks, stripe);
        return;
    }
#endif
    blocks_portable(acc, p, n_blocks, stripe);
}

void tsr__cksum_init(struct tsr__cksum *c)
{
    memset(c, 0, sizeof(*c));
    for (int j = 0; j < 8; j++) {
        c->acc[j] = key0[j] ^ K2;
    }
}

void tsr__cksum_add(struct tsr__cksum *c, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t n_blocks = n / TSR_CKSUM_BLOCK;
    size_t i = n_blocks * TSR_CKSUM_BLOCK;
    uint64_t h = 0;

    blocks(c->acc, b, n_blocks, c->n_blocks * STRIPES_PER_BLOCK);
    c->n_blocks += n_blocks;
    c->n_bytes += n;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;

        memcpy(&v, b + i, sizeof(v));
        h = (h ^ v) * K1;
        h ^= h >> 29;
    }
    for (; i < n; i++) {
        h = (h ^ b[i]) * K1;
    }
    c->tail ^= h;
}

uint64_t tsr__cksum_end(const struct tsr__cksum *c)
{
    uint64_t h = c->n_bytes * K1;

    for (int j = 0; j < 8; j++) {
        h = (h ^ c->acc[j]) * K2;
        h ^= h >> 31;
    }
    h = (h ^ c->tail) * K1;
    h ^= h >> 29;
    h *= K2;
    return h ^ (h >> 32);
}

uint64_t tsr__cksum_of(const void *p, size_t n)
{
    struct tsr__cksum c;

    tsr__cksum_init(&c);
    tsr__cksum_add(&c, p, n);
    return tsr__cksum_end(&c);
}

void tsr__cksum_set_simd(int on)
{
    atomic_store_explicit(&simd_off, !on, memory_order_relaxed);
}
