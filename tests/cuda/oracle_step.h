/* One step of the mixed CPU/GPU oracle (cuda_device_test.cc), shared by its CPU
 * implementation, its CUDA kernel (cuda_test_kernels.cu) and the sequential replay,
 * so that all three compute exactly the same thing. Plain C with inline functions;
 * compiled as host code by the C++ compiler and as host + device code by nvcc.
 *
 * A step reads every buffer it has in R or RW mode, hashes their words with its key,
 * then overwrites each buffer it has in W or RW mode with a mix of that hash (and,
 * for RW, the buffer's old words). The device a step runs on is not mixed in:
 * results must not depend on placement. */
#ifndef TSR_TESTS_CUDA_ORACLE_STEP_H
#define TSR_TESTS_CUDA_ORACLE_STEP_H

#include <stdint.h>
#include <tessera/data.h>

#ifdef __CUDACC__
#define TSR_TEST_HD __host__ __device__
#else
#define TSR_TEST_HD
#endif

#define TSR_TEST_STEP_WORDS 16
#define TSR_TEST_STEP_MAX_BUFS 4

/* The task argument (copied by value into the kernel's parameters). */
struct tsr_test_step_arg {
    uint64_t key;
    uint32_t pinned_device; /* UINT32_MAX: not pinned */
    uint32_t n_bufs;
    uint32_t modes[TSR_TEST_STEP_MAX_BUFS]; /* tsr_access_t */
};

TSR_TEST_HD static inline uint64_t tsr_test_step_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

/* Applies the step to `bufs` (n_bufs arrays of TSR_TEST_STEP_WORDS words). A handle
 * listed twice is one buffer: the hash is taken before anything is written, and the
 * writes happen in buffer order, in the replay as on a device. */
TSR_TEST_HD static inline void tsr_test_step_apply(const struct tsr_test_step_arg *a,
                                                   uint64_t *const *bufs)
{
    uint64_t h = a->key;
    for (uint32_t i = 0; i < a->n_bufs; i++) {
        if (a->modes[i] & TSR_R) {
            for (uint32_t w = 0; w < TSR_TEST_STEP_WORDS; w++) {
                h = tsr_test_step_mix(h, bufs[i][w]);
            }
        }
    }
    for (uint32_t i = 0; i < a->n_bufs; i++) {
        if (!(a->modes[i] & TSR_W)) {
            continue;
        }
        for (uint32_t w = 0; w < TSR_TEST_STEP_WORDS; w++) {
            uint64_t old = (a->modes[i] & TSR_R) ? bufs[i][w] : 0;
            bufs[i][w] = old * 31 + tsr_test_step_mix(h, (uint64_t)w + i);
        }
    }
}

#endif /* TSR_TESTS_CUDA_ORACLE_STEP_H */
