/* The integer and bool matrix product on CUDA (tsr_gemm_arg_t of TSR_BOOL,
 * TSR_UINT8, TSR_UINT16, TSR_INT32 or TSR_INT64; cuBLAS has no integer GEMM
 * that wraps as NumPy's does): the plan and the work of one thread, which the
 * kernel (gemm_cuda.cu) and its host emulation (tests/cuda/gemm_emulation_test.cc)
 * share.
 *
 * A block of kGemmTile x kGemmTile threads computes a tile of C, one element per
 * thread. For each step of kGemmTile along k, every thread loads one element of
 * A's tile and one of B's into shared memory (0 past the edges, which adds
 * nothing to a sum nor to an OR), the block synchronises, every thread folds its
 * row of A's tile with its column of B's, and the block synchronises again. Then
 * each thread inside C stores its element. Blocks stride over the tiles, so any
 * m and n fit in a grid.
 *
 * The arithmetic is tsr__gemm_cpu's: elements are read as the unsigned type of
 * their width (S), products summed in at least 32 bits (A), which wraps as the
 * element type does once truncated, without signed overflow; bools are an OR of
 * ANDs of nonzero bytes, stored as 0 or 1. */
#ifndef TSR_KERNELS_CUDA_GEMM_INT_CUH
#define TSR_KERNELS_CUDA_GEMM_INT_CUH

#include <stdint.h>
#include <string.h>

#include <type_traits>

#include "kernels/cuda/ew_eval.cuh"
#include "kernels/kernel_args.h"

namespace tsr_ew {

constexpr int kGemmTile = 16;
constexpr int kGemmThreads = kGemmTile * kGemmTile; /* per block */

template <int DT>
struct gemm_int_type {
    typedef typename std::make_unsigned<typename dt<DT>::T>::type S;
    typedef typename std::conditional<sizeof(S) == 8, uint64_t, uint32_t>::type A;
};

/* One product, ready for the kernel: a and b point at element (0, 0) of the
 * blocks of A and B (the offsets applied), c at the contiguous m x n C. */
struct gemm_int_plan {
    const char *a;
    const char *b;
    char *c;
    int64_t m, n, k;
    int64_t lda, ldb;
    int64_t tiles_n; /* tiles along n */
    int64_t n_tiles;
    int32_t beta;
};

/* Host: the plan of a checked argument (see gemm_arg_ok in gemm_cuda.cu). */
inline gemm_int_plan gemm_int_make_plan(const tsr_gemm_arg_t *g, const tsr_buffer_t *bufs, void *c)
{
    const int64_t es = dtype_bytes(g->type);
    gemm_int_plan P;

    memset(&P, 0, sizeof(P));
    P.a = (const char *)bufs[0].ptr + g->off_a * es;
    P.b = (const char *)bufs[1].ptr + g->off_b * es;
    P.c = (char *)c;
    P.m = g->m;
    P.n = g->n;
    P.k = g->k;
    P.lda = g->lda;
    P.ldb = g->ldb;
    P.tiles_n = (g->n + kGemmTile - 1) / kGemmTile;
    P.n_tiles = (g->m + kGemmTile - 1) / kGemmTile * P.tiles_n;
    P.beta = g->beta != 0;
    return P;
}

/* Thread t's element of the step at p0 of `tile`: A's tile (row ty, column tx) into
 * sa[t], B's (row ty, column tx) into sb[t]. */
template <int DT>
TSR_HDI void gemm_int_load(const gemm_int_plan &P, int64_t tile, int64_t p0, int t,
                           typename gemm_int_type<DT>::S *sa, typename gemm_int_type<DT>::S *sb)
{
    typedef typename gemm_int_type<DT>::S S;
    const int64_t i = tile / P.tiles_n * kGemmTile + t / kGemmTile;
    const int64_t j = tile % P.tiles_n * kGemmTile + t % kGemmTile;
    const int64_t pa = p0 + t % kGemmTile;
    const int64_t pb = p0 + t / kGemmTile;
    S x = i < P.m && pa < P.k ? ((const S *)P.a)[i * P.lda + pa] : (S)0;
    S y = pb < P.k && j < P.n ? ((const S *)P.b)[pb * P.ldb + j] : (S)0;

    if constexpr (DT == TSR_BOOL) {
        x = (S)(x != 0);
        y = (S)(y != 0);
    }
    sa[t] = x;
    sb[t] = y;
}

/* Thread t's fold of the loaded step into acc: its row of sa with its column of sb. */
template <int DT>
TSR_HDI typename gemm_int_type<DT>::A gemm_int_fold(typename gemm_int_type<DT>::A acc,
                                                    const typename gemm_int_type<DT>::S *sa,
                                                    const typename gemm_int_type<DT>::S *sb, int t)
{
    typedef typename gemm_int_type<DT>::A A;
    const int ty = t / kGemmTile;
    const int tx = t % kGemmTile;

    TSR_UNROLL
    for (int q = 0; q < kGemmTile; q++) {
        if constexpr (DT == TSR_BOOL) {
            acc |= (A)(sa[ty * kGemmTile + q] & sb[q * kGemmTile + tx]);
        } else {
            acc += (A)sa[ty * kGemmTile + q] * (A)sb[q * kGemmTile + tx];
        }
    }
    return acc;
}

/* Thread t's element of C in `tile`, if inside C: acc, plus (or, for bools)
 * what C holds when beta is 1. */
template <int DT>
TSR_HDI void gemm_int_store(const gemm_int_plan &P, int64_t tile, int t,
                            typename gemm_int_type<DT>::A acc)
{
    typedef typename gemm_int_type<DT>::S S;
    typedef typename gemm_int_type<DT>::A A;
    const int64_t i = tile / P.tiles_n * kGemmTile + t / kGemmTile;
    const int64_t j = tile % P.tiles_n * kGemmTile + t % kGemmTile;

    if (i >= P.m || j >= P.n) {
        return;
    }
    S *c = (S *)P.c + i * P.n + j;
    if constexpr (DT == TSR_BOOL) {
        *c = (S)((acc != 0) | (P.beta && *c != 0));
    } else {
        *c = (S)(P.beta ? acc + (A)*c : acc);
    }
}

}  // namespace tsr_ew

#endif /* TSR_KERNELS_CUDA_GEMM_INT_CUH */
