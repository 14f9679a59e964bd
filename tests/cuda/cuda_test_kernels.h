/* Kernels of the CUDA device tests (cuda_test_kernels.cu) behind C launchers, so that
 * the tests themselves are C++ built by the host compiler with the project's warnings.
 *
 * Each launcher queues one kernel on `stream` (a cudaStream_t, as
 * tsr_task_ctx_stream() gives it) and returns at once, without checking the launch:
 * noticing a failed launch is Tessera's job, and the tests check that it does.
 * Pointers are device pointers. */
#ifndef TSR_TESTS_CUDA_CUDA_TEST_KERNELS_H
#define TSR_TESTS_CUDA_CUDA_TEST_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/oracle_step.h"
#include "cuda/spill_step.h"

#ifdef __cplusplus
extern "C" {
#endif

/* c[i] = a[i] + b[i] */
void tsr_test_launch_add(void *stream, const float *a, const float *b, float *c, size_t n);
/* y[i] = y[i] + x[i] */
void tsr_test_launch_add_inplace(void *stream, const float *x, float *y, size_t n);
/* x[i] = x[i] * 31 + k + i (modulo 2^32) */
void tsr_test_launch_affine_u32(void *stream, uint32_t *x, size_t n, uint32_t k);
/* p[i] = tsr_test_byte_update(p[i], i, k) */
void tsr_test_launch_bytes_update(void *stream, uint8_t *p, size_t n, uint8_t k);
/* p[i] = tsr_test_byte_pattern(i, k) */
void tsr_test_launch_bytes_fill(void *stream, uint8_t *p, size_t n, uint8_t k);
/* *d_sum = sum of p[i] * (i % 251 + 1) (modulo 2^64) */
void tsr_test_launch_bytes_sum(void *stream, const uint8_t *p, size_t n, uint64_t *d_sum);
/* p[i] = i * k + 1 */
void tsr_test_launch_fill_u64(void *stream, uint64_t *p, size_t n, uint64_t k);
/* A kernel launched with 4096 threads per block: always an invalid configuration
 * (the limit is 1024), so the launch fails and p is left alone. */
void tsr_test_launch_bad_config(void *stream, float *p, size_t n);
/* tsr_test_step_apply(a, bufs) in one GPU thread; bufs holds a->n_bufs pointers. */
void tsr_test_launch_step(void *stream, const struct tsr_test_step_arg *a, uint64_t *const *bufs);
/* p[w] = tsr_test_spill_fill_word(key, w) for w < n_words. */
void tsr_test_launch_spill_fill(void *stream, uint64_t *p, size_t n_words, uint64_t key);
/* tsr_test_spill_apply(a, bufs, n_words) as two kernels (hash, then update) that
 * pass the hash through device slot a->slot; bufs and n_words hold a->n_bufs
 * entries, copied into the kernels' parameters. */
void tsr_test_launch_spill_step(void *stream, const struct tsr_test_spill_arg *a,
                                uint64_t *const *bufs, const uint64_t *n_words);

/* The byte functions of the kernels above, for the host references. */
TSR_TEST_HD static inline uint8_t tsr_test_byte_update(uint8_t v, size_t i, uint8_t k)
{
    return (uint8_t)((uint8_t)(v * 3u + (uint8_t)(i * 7u)) ^ k);
}

TSR_TEST_HD static inline uint8_t tsr_test_byte_pattern(size_t i, uint8_t k)
{
    uint32_t h = (uint32_t)(i ^ (i >> 32)) * 2654435761u;
    h ^= h >> 15;
    return (uint8_t)(h ^ (h >> 8) ^ k);
}

#ifdef __cplusplus
}
#endif

#endif /* TSR_TESTS_CUDA_CUDA_TEST_KERNELS_H */
